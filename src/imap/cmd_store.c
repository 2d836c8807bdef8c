/* STORE, COPY, MOVE, EXPUNGE and APPEND: the IMAP commands that change
 * mail (RFC 9051, UIDPLUS RFC 4315, MOVE RFC 6851, CONDSTORE RFC 7162,
 * MULTIAPPEND RFC 3502).
 *
 * Untrusted input: the parsed command (sets, flags, keywords, mailbox
 * names, message data and file literals from the client).
 *
 * Each handler runs on the loop and starts a job; the work function runs
 * on the pool and writes every response into s->out. A work function sets
 * s->job_status to 1 when it changed mail, so that the done callback wakes
 * the user's other sessions only then.
 *
 * Choices where the RFCs leave room: STORE skips messages another session
 * expunged meanwhile (no NO [EXPUNGEISSUED]); STORE, EXPUNGE and MOVE in
 * a read-only mailbox get NO [READ-ONLY]; MOVE into the selected mailbox
 * gets NO [CANNOT]; APPEND takes the UTF8 (literal8) form whether or not
 * UTF8=ACCEPT was enabled, and an internal date of the epoch means "now"
 * (the store's convention). A MULTIAPPEND that fails part way expunges the
 * messages it already stored (RFC 3502: all or none). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "imap/imap_session.h"
#include "store/notify.h"

#define CMD_STORE_CHANGED	1	/* s->job_status: mail changed */

/* ---- helpers shared by the commands of this file ---- */

/* The response code that fits a failed store call's errno. */
static const char *
cmd_store_code(int err)
{
	switch (err) {
	case ENOENT:
		return "NONEXISTENT";
	case EEXIST:
		return "ALREADYEXISTS";
	case EPERM:
	case EACCES:
		return "CANNOT";
	case ENOSPC:
	case EDQUOT:
		return "LIMIT";
	default:
		return "SERVERBUG";
	}
}

/* Logs a failed store call and answers NO with the best code. */
static void
cmd_store_fail(struct imap_session *s, const char *what, int err,
    const char *error)
{
	log_warnx("session=%llu event=imap-store-failed command=%s "
	    "error=\"%s\"", (unsigned long long)s->id, what,
	    error ? error : strerror(err));
	imap_out_tagged(s, "NO", "[%s] %s failed", cmd_store_code(err), what);
}

/* Brings the view up to date and, when that worked, answers OK with the
 * text (which may start with a response code). */
static void
cmd_store_sync_ok(struct imap_session *s, bool allow_expunge,
    const char *text)
{
	if (imap_view_sync(s, allow_expunge) < 0) {
		cmd_store_fail(s, imap_cmd_name(s->cmd.cmd), errno,
		    s->error);
		return;
	}
	imap_out_tagged(s, "OK", "%s", text);
}

/* The UIDs of the messages at idx (ascending, as the store wants). */
static uint32_t *
cmd_store_uids(const struct imap_view *v, const size_t *idx, size_t n)
{
	uint32_t *uids = x_calloc(n + 1, sizeof(*uids));

	for (size_t i = 0; i < n; i++)
		uids[i] = v->msgs[idx[i]].uid;
	return uids;
}

static void
cmd_store_notify_done(struct imap_session *s)
{
	if (s->job_status == CMD_STORE_CHANGED && s->root)
		notify_changed(s->root);
}

/* ---- STORE ---- */

/* Takes the result of one message into the view, so that the next sync
 * does not announce it again. */
static void
cmd_store_note_result(struct imap_session *s, struct imap_msg *m,
    struct store_flag_result *r)
{
	m->flags = r->flags;
	m->modseq = r->modseq;
	if (r->modseq > s->view.highestmodseq)
		s->view.highestmodseq = r->modseq;
	x_free(&m->keywords);
	m->keywords = r->keywords;
	r->keywords = NULL;
	if (r->changed && m->keywords)
		imap_view_note_keywords(s, m->keywords);
}

/* One untagged FETCH for a stored message. .SILENT with UNCHANGEDSINCE
 * still sends one (RFC 7162 3.1.3), with the MODSEQ but no FLAGS. */
static void
cmd_store_write_fetch(struct imap_session *s, size_t seq,
    const struct imap_msg *m, bool flags)
{
	const char *sp = "";

	buf_printf(&s->out, "* %zu FETCH (", seq);
	if (flags) {
		buf_puts(&s->out, "FLAGS (");
		imap_flags_write(&s->out, m->flags, m->keywords);
		buf_putc(&s->out, ')');
		sp = " ";
	}
	if (s->cmd.uid) {
		buf_printf(&s->out, "%sUID %u", sp, m->uid);
		sp = " ";
	}
	if (s->condstore)
		buf_printf(&s->out, "%sMODSEQ (%llu)", sp,
		    (unsigned long long)m->modseq);
	buf_puts(&s->out, ")\r\n");
}

/* The untagged FETCHes, the view updated, and the numbers (or UIDs) of
 * the messages that failed UNCHANGEDSINCE in *modified (nmod). */
static void
cmd_store_report(struct imap_session *s, const size_t *idx, size_t n,
    struct store_flag_result *res, uint32_t *modified, size_t *nmod)
{
	const struct imap_command *c = &s->cmd;
	bool announce = !c->store_silent || c->has_unchangedsince;

	*nmod = 0;
	for (size_t i = 0; i < n; i++) {
		struct imap_msg *m = &s->view.msgs[idx[i]];
		if (res[i].gone)
			continue;	/* expunged meanwhile: nothing to say */
		if (res[i].modified) {
			modified[(*nmod)++] = c->uid ? m->uid :
			    (uint32_t)(idx[i] + 1);
			continue;
		}
		if (res[i].changed)
			s->job_status = CMD_STORE_CHANGED;
		cmd_store_note_result(s, m, &res[i]);
		if (announce)
			cmd_store_write_fetch(s, idx[i] + 1, m,
			    !c->store_silent);
	}
}

/* The tagged OK, with MODIFIED (RFC 7162 3.1.3) for the messages that
 * failed UNCHANGEDSINCE. Expunges only for UID STORE (RFC 9051 7.5.1). */
static void
cmd_store_answer(struct imap_session *s, const uint32_t *modified,
    size_t nmod)
{
	struct buf text = BUF_INIT;

	if (nmod > 0) {
		buf_puts(&text, "[MODIFIED ");
		imap_view_write_seqset(&text, modified, nmod);
		buf_puts(&text, "] Conditional STORE failed for some");
	} else
		buf_puts(&text, "STORE completed");
	cmd_store_sync_ok(s, s->cmd.uid, buf_cstr(&text));
	buf_free(&text);
}

static void
cmd_store_apply(struct imap_session *s, const size_t *idx, size_t n)
{
	const struct imap_command *c = &s->cmd;
	static const enum store_flag_op ops[] = {
		[IMAP_STORE_SET] = STORE_FLAGS_SET,
		[IMAP_STORE_ADD] = STORE_FLAGS_ADD,
		[IMAP_STORE_REMOVE] = STORE_FLAGS_REMOVE,
	};
	struct store_flag_update u = {
		.op = ops[c->store_mode],
		.flags = c->store_flags.mask,
		.keywords = (const char *const *)c->store_flags.keywords,
		.nkeywords = c->store_flags.nkeywords,
		.unchangedsince = c->unchangedsince,
		.has_unchangedsince = c->has_unchangedsince,
	};
	uint32_t *uids = cmd_store_uids(&s->view, idx, n);
	uint32_t *modified = x_calloc(n + 1, sizeof(*modified));
	struct store_flag_result *res = x_calloc(n + 1, sizeof(*res));
	char *error = NULL;
	size_t nmod = 0;

	if (n > 0 && store_update_flags(s->store, s->view.name, uids, n, &u,
	    res, &error) < 0) {
		cmd_store_fail(s, "STORE", errno, error);
		goto out;
	}
	cmd_store_report(s, idx, n, res, modified, &nmod);
	cmd_store_answer(s, modified, nmod);
out:
	if (n > 0)
		store_flag_results_free(res, n);
	free(res);
	free(modified);
	free(uids);
	free(error);
}

static void
cmd_store_work(struct imap_session *s)
{
	size_t *idx = NULL, n = 0;

	if (s->view.readonly) {
		imap_out_tagged(s, "NO", "[READ-ONLY] The mailbox is "
		    "read-only");
		return;
	}
	if (imap_view_resolve(&s->view, &s->cmd.set, s->cmd.uid, &idx, &n) < 0) {
		free(idx);
		imap_out_tagged(s, "BAD", "Invalid message number");
		return;
	}
	cmd_store_apply(s, idx, n);
	free(idx);
}

void
imap_cmd_store(struct imap_session *s)
{
	if (s->cmd.has_unchangedsince)
		s->condstore = true;
	imap_job(s, cmd_store_work, cmd_store_notify_done);
}

/* ---- EXPUNGE and UID EXPUNGE ---- */

/* The UIDs of the \Deleted messages among idx (all when idx is NULL). */
static uint32_t *
cmd_expunge_pick(const struct imap_view *v, const size_t *idx, size_t n,
    size_t *count)
{
	uint32_t *uids = x_calloc(n + 1, sizeof(*uids));

	*count = 0;
	for (size_t i = 0; i < n; i++) {
		const struct imap_msg *m = &v->msgs[idx ? idx[i] : i];
		if ((m->flags & STORE_F_DELETED) && !m->expunged)
			uids[(*count)++] = m->uid;
	}
	return uids;
}

static void
cmd_expunge_work(struct imap_session *s)
{
	size_t *idx = NULL, n = s->view.count, count = 0;
	uint32_t *uids;
	char *error = NULL;

	if (s->view.readonly) {
		imap_out_tagged(s, "NO", "[READ-ONLY] The mailbox is "
		    "read-only");
		return;
	}
	/* \Deleted set by another session counts too. */
	if (imap_view_sync(s, true) < 0) {
		cmd_store_fail(s, "EXPUNGE", errno, s->error);
		return;
	}
	if (s->cmd.uid && imap_view_resolve(&s->view, &s->cmd.set, true, &idx,
	    &n) < 0) {
		free(idx);
		imap_out_tagged(s, "BAD", "Invalid UID set");
		return;
	}
	uids = cmd_expunge_pick(&s->view, idx, n, &count);
	free(idx);
	if (count > 0 && store_expunge(s->store, s->view.name, uids, count,
	    &error) < 0)
		cmd_store_fail(s, "EXPUNGE", errno, error);
	else {
		if (count > 0)
			s->job_status = CMD_STORE_CHANGED;
		cmd_store_sync_ok(s, true, "EXPUNGE completed");
	}
	free(uids);
	free(error);
}

void
imap_cmd_expunge(struct imap_session *s)
{
	imap_job(s, cmd_expunge_work, cmd_store_notify_done);
}

/* ---- COPY and MOVE ---- */

/* "COPYUID uidvalidity src dst" (RFC 4315) into code. */
static void
cmd_copy_uid_code(struct buf *code, uint32_t uidvalidity,
    const uint32_t *src, const uint32_t *dst, size_t n)
{
	buf_printf(code, "[COPYUID %u ", uidvalidity);
	imap_view_write_seqset(code, src, n);
	buf_putc(code, ' ');
	imap_view_write_seqset(code, dst, n);
	buf_puts(code, "] ");
}

/* Refusals before anything is copied; true when one was sent. */
static bool
cmd_copy_refused(struct imap_session *s, const char *dest, bool move)
{
	if (move && s->view.readonly) {
		imap_out_tagged(s, "NO", "[READ-ONLY] The mailbox is "
		    "read-only");
		return true;
	}
	if (move && strcmp(dest, s->view.name) == 0) {
		imap_out_tagged(s, "NO", "[CANNOT] Source and destination "
		    "are the same mailbox");
		return true;
	}
	return false;
}

/* Answers after store_copy: the COPYUID, the expunges of a MOVE. */
static void
cmd_copy_answer(struct imap_session *s, bool move, uint32_t uidvalidity,
    const uint32_t *src, const uint32_t *dst, size_t ncopied)
{
	struct buf code = BUF_INIT;

	if (ncopied > 0) {
		s->job_status = CMD_STORE_CHANGED;
		cmd_copy_uid_code(&code, uidvalidity, src, dst, ncopied);
	}
	if (move) {
		/* RFC 6851 3.3: COPYUID comes untagged, before the
		 * expunges. */
		if (ncopied > 0)
			buf_printf(&s->out, "* OK %sMoved\r\n",
			    buf_cstr(&code));
		cmd_store_sync_ok(s, true, "MOVE completed");
	} else {
		buf_puts(&code, "COPY completed");
		cmd_store_sync_ok(s, true, buf_cstr(&code));
	}
	buf_free(&code);
}

static void
cmd_copy_run(struct imap_session *s, const char *dest, bool move,
    const size_t *idx, size_t n)
{
	uint32_t *uids = cmd_store_uids(&s->view, idx, n);
	uint32_t *src = x_calloc(n + 1, sizeof(*src));
	uint32_t *dst = x_calloc(n + 1, sizeof(*dst));
	uint32_t uidvalidity = 0;
	size_t ncopied = 0;
	char *error = NULL;

	if (store_copy(s->store, s->view.name, dest, uids, n, move,
	    &uidvalidity, src, dst, &ncopied, &error) < 0) {
		if (errno == ENOENT)
			imap_out_tagged(s, "NO", "[TRYCREATE] No such "
			    "mailbox");
		else
			cmd_store_fail(s, move ? "MOVE" : "COPY", errno,
			    error);
	} else
		cmd_copy_answer(s, move, uidvalidity, src, dst, ncopied);
	free(error);
	free(dst);
	free(src);
	free(uids);
}

static void
cmd_copy_work(struct imap_session *s)
{
	bool move = s->cmd.cmd == IMAP_CMD_MOVE;
	size_t *idx = NULL, n = 0;
	char *dest = imap_mailbox_from_client(s, &s->cmd.mailbox, &s->out);

	if (dest == NULL)
		return;
	if (cmd_copy_refused(s, dest, move)) {
		free(dest);
		return;
	}
	if (imap_view_resolve(&s->view, &s->cmd.set, s->cmd.uid, &idx, &n) < 0)
		imap_out_tagged(s, "BAD", "Invalid message number");
	else
		cmd_copy_run(s, dest, move, idx, n);
	free(idx);
	free(dest);
}

void
imap_cmd_copy(struct imap_session *s)
{
	imap_job(s, cmd_copy_work, cmd_store_notify_done);
}

/* ---- APPEND ---- */

/* The size of one message of the command, or -1 (NO sent) when its
 * file literal is not there (its reception failed). */
static int64_t
cmd_append_size(struct imap_session *s, const struct imap_append_msg *a)
{
	int ref = a->message.file_ref;

	if (ref < 0)
		return (int64_t)a->message.len;
	if ((size_t)ref >= s->nfiles || s->afiles[ref].path == NULL) {
		imap_out_tagged(s, "NO", "[SERVERBUG] The message data is "
		    "missing");
		return -1;
	}
	return (int64_t)s->afiles[ref].size;
}

/* Refuses the whole command before anything is stored when one message
 * is empty or too big; true when it did. */
static bool
cmd_append_refused(struct imap_session *s)
{
	uint64_t max = s->cfg->max_message_size;

	for (size_t i = 0; i < s->cmd.nappend; i++) {
		int64_t size = cmd_append_size(s, &s->cmd.append[i]);
		if (size < 0)
			return true;
		if (size == 0) {
			imap_out_tagged(s, "NO", "Empty message refused");
			return true;
		}
		if (max > 0 && (uint64_t)size > max) {
			imap_out_tagged(s, "NO", "[TOOBIG] The message is "
			    "larger than %llu octets",
			    (unsigned long long)max);
			return true;
		}
	}
	return false;
}

/* The tmp file holding one message: a file literal is taken over (the
 * session no longer removes it), a literal in memory is written out.
 * NULL with *error_r. */
static char *
cmd_append_file(struct imap_session *s, const struct imap_append_msg *a,
    char **error_r)
{
	char *path = NULL;
	int fd;

	if (a->message.file_ref >= 0) {
		path = s->afiles[a->message.file_ref].path;
		s->afiles[a->message.file_ref].path = NULL;
		return path;
	}
	fd = store_append_begin(s->store, &path, error_r);
	if (fd < 0)
		return NULL;
	if (fs_write_all(fd, a->message.data, a->message.len) < 0 ||
	    close(fd) < 0) {
		int err = errno;
		*error_r = x_asprintf("%s: write: %s", path, strerror(err));
		store_append_abort(path);
		free(path);
		errno = err;
		return NULL;
	}
	return path;
}

/* Stores one message of the command; its UID in *uid_r. 0 or -1. */
static int
cmd_append_one(struct imap_session *s, const char *mailbox,
    const struct imap_append_msg *a, uint32_t *uidvalidity_r,
    uint32_t *uid_r, char **error_r)
{
	char *path = cmd_append_file(s, a, error_r);
	int r;

	if (path == NULL)
		return -1;
	r = store_append_commit(s->store, mailbox, path, a->flags.mask,
	    (const char *const *)a->flags.keywords, a->flags.nkeywords,
	    a->has_internaldate ? a->internaldate : 0, uidvalidity_r, uid_r,
	    error_r);
	free(path);
	return r;
}

/* All the messages or none (RFC 3502): after a failure the ones already
 * stored are expunged again. */
static int
cmd_append_all(struct imap_session *s, const char *mailbox, uint32_t *uids,
    uint32_t *uidvalidity_r, char **error_r)
{
	for (size_t i = 0; i < s->cmd.nappend; i++) {
		if (cmd_append_one(s, mailbox, &s->cmd.append[i],
		    uidvalidity_r, &uids[i], error_r) == 0)
			continue;
		int err = errno;
		char *ignored = NULL;
		if (i > 0 && store_expunge(s->store, mailbox, uids, i,
		    &ignored) < 0)
			log_warnx("session=%llu event=imap-append-undo-failed "
			    "error=\"%s\"", (unsigned long long)s->id,
			    ignored ? ignored : "?");
		free(ignored);
		errno = err;
		return -1;
	}
	return 0;
}

static void
cmd_append_answer(struct imap_session *s, const char *mailbox,
    uint32_t uidvalidity, const uint32_t *uids)
{
	struct buf text = BUF_INIT;

	buf_printf(&text, "[APPENDUID %u ", uidvalidity);
	imap_view_write_seqset(&text, uids, s->cmd.nappend);
	buf_puts(&text, "] APPEND completed");
	/* The selected mailbox grew: EXISTS before the tagged OK. */
	if (s->selected && s->view.name && strcmp(s->view.name, mailbox) == 0)
		cmd_store_sync_ok(s, true, buf_cstr(&text));
	else
		imap_out_tagged(s, "OK", "%s", buf_cstr(&text));
	buf_free(&text);
}

static void
cmd_append_work(struct imap_session *s)
{
	char *mailbox = imap_mailbox_from_client(s, &s->cmd.mailbox, &s->out);
	uint32_t *uids, uidvalidity = 0;
	char *error = NULL;

	if (mailbox == NULL)
		return;
	if (cmd_append_refused(s)) {
		free(mailbox);
		return;
	}
	uids = x_calloc(s->cmd.nappend + 1, sizeof(*uids));
	if (cmd_append_all(s, mailbox, uids, &uidvalidity, &error) < 0) {
		if (errno == ENOENT)
			imap_out_tagged(s, "NO", "[TRYCREATE] No such "
			    "mailbox");
		else
			cmd_store_fail(s, "APPEND", errno, error);
	} else {
		s->job_status = CMD_STORE_CHANGED;
		cmd_append_answer(s, mailbox, uidvalidity, uids);
	}
	free(uids);
	free(error);
	free(mailbox);
}

void
imap_cmd_append(struct imap_session *s)
{
	if (s->cmd.nappend == 0) {
		imap_tagged(s, "BAD", "No message to append");
		return;
	}
	imap_job(s, cmd_append_work, cmd_store_notify_done);
}
