/* Mailbox names on the wire and the commands on mailboxes: SELECT,
 * EXAMINE, CLOSE, UNSELECT, NOOP, CHECK, CREATE, DELETE, RENAME,
 * SUBSCRIBE, UNSUBSCRIBE, STATUS, LIST and LSUB.
 *
 * Untrusted input: mailbox names and LIST patterns from clients. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/xmalloc.h"
#include "imap/imap_session.h"
#include "imap/imap_utf7.h"
#include "store/mime.h"
#include "store/notify.h"

/* ---- names ---- */

static bool
mbox_is_inbox_prefixed(const char *name)
{
	return strncasecmp(name, "INBOX", 5) == 0 &&
	    (name[5] == '\0' || name[5] == '/');
}

/* "INBOX" in any case is the inbox, also as the first level of a deeper
 * name, so that its children are named as LIST shows them. */
static char *
mbox_normalize(const char *in)
{
	char *name = x_strdup(in);
	size_t len = strlen(name);

	if (len > 0 && name[len - 1] == '/')
		name[len - 1] = '\0';
	if (mbox_is_inbox_prefixed(name))
		memcpy(name, "INBOX", 5);
	return name;
}

/* Wire text (mUTF-7 or UTF-8) to UTF-8 in out; false when invalid. */
static bool
mbox_wire_decode(const struct imap_session *s, const char *data,
    size_t len, struct buf *out)
{
	if (s->utf8) {
		if (!imap_utf8_is_valid(data, len))
			return false;
		buf_append(out, data, len);
		return true;
	}
	return imap_utf7_decode(data, len, out) == 0;
}

/* The store name, or NULL with the refusal in *status_r, *text_r. */
static char *
mbox_decode(const struct imap_session *s, const struct imap_string *arg,
    const char **status_r, const char **text_r)
{
	struct buf b = BUF_INIT;
	char *name;

	*status_r = "BAD";
	*text_r = "Invalid mailbox name";
	if (arg->is_nil || arg->has_nul || arg->file_ref >= 0) {
		*text_r = "Invalid mailbox name";
		return NULL;
	}
	if (!mbox_wire_decode(s, arg->data, arg->len, &b)) {
		buf_free(&b);
		*text_r = s->utf8 ? "Mailbox name is not UTF-8" :
		    "Mailbox name is not valid modified UTF-7";
		return NULL;
	}
	name = mbox_normalize(buf_cstr(&b));
	buf_free(&b);
	if (!store_mailbox_name_ok(name)) {
		x_free(&name);
		*status_r = "NO";
		*text_r = "[CANNOT] Invalid mailbox name";
		return NULL;
	}
	return name;
}

char *
imap_mailbox_from_client(struct imap_session *s,
    const struct imap_string *arg, struct buf *err)
{
	const char *status, *text;
	char *name = mbox_decode(s, arg, &status, &text);

	if (name)
		return name;
	if (err == &s->out) {
		imap_out_tagged(s, status, "%s", text);
		return NULL;
	}
	buf_printf(err, "%s %s %s\r\n", s->cmd_tag[0] ? s->cmd_tag : "*",
	    status, text);
	if (strcmp(status, "BAD") == 0)
		s->errors++;
	return NULL;
}

void
imap_mailbox_to_client(struct imap_session *s, const char *name,
    struct buf *out)
{
	size_t len = strlen(name);
	struct buf b = BUF_INIT;

	if (s->utf8 || !imap_utf8_is_valid(name, len)) {
		mime_imap_string(out, name, len);
		return;
	}
	imap_utf7_encode(name, len, &b);
	mime_imap_string(out, buf_cstr(&b), b.len);
	buf_free(&b);
}

/* ---- shared ---- */

/* The tagged NO for a store failure (e: its errno); frees err. */
static void
mbox_fail(struct imap_session *s, const char *what, int e, char *err)
{
	const char *code = "SERVERBUG";

	switch (e) {
	case ENOENT:
		code = "NONEXISTENT";
		break;
	case EEXIST:
		code = "ALREADYEXISTS";
		break;
	case EPERM:
		code = "CANNOT";
		break;
	case ENOSPC:
		code = "LIMIT";
		break;
	}
	if (strcmp(code, "SERVERBUG") == 0) {
		log_warnx("session=%llu event=%s error=\"%s\"",
		    (unsigned long long)s->id, what, err ? err : "?");
		imap_out_tagged(s, "NO", "[SERVERBUG] Internal error");
	} else {
		imap_out_tagged(s, "NO", "[%s] %s", code,
		    err ? err : "Failed");
	}
	free(err);
}

/* Reports what changed in the selected mailbox, then the tagged OK. */
static void
mbox_ok(struct imap_session *s)
{
	if (s->selected && imap_view_sync(s, true) < 0)
		log_warnx("session=%llu event=sync error=\"%s\"",
		    (unsigned long long)s->id, s->error ? s->error : "?");
	imap_out_tagged(s, "OK", "%s completed", imap_cmd_name(s->cmd.cmd));
}

/* ---- SELECT, EXAMINE ---- */

static int
mbox_view_keywords(struct imap_session *s)
{
	char **kw = NULL, *err = NULL;
	size_t n = 0;
	struct buf b = BUF_INIT;

	if (store_mailbox_keywords(s->store, s->view.name, &kw, &n, &err) < 0) {
		mbox_fail(s, "select-keywords", errno, err);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			buf_putc(&b, ' ');
		buf_puts(&b, kw[i]);
	}
	store_keywords_free(kw, n);
	x_free(&s->view.keywords);
	if (b.len > 0)
		s->view.keywords = x_strdup(buf_cstr(&b));
	buf_free(&b);
	return 0;
}

static void
mbox_view_fill(struct imap_session *s, char *name, struct store_mailbox *mb)
{
	struct imap_view *v = &s->view;

	v->name = name;
	v->readonly = s->cmd.cmd == IMAP_CMD_EXAMINE;
	v->uidvalidity = mb->uidvalidity;
	v->uidnext = mb->uidnext;
	v->highestmodseq = mb->highestmodseq;
	v->synced_modseq = mb->highestmodseq;
	v->msgs = x_calloc(mb->count ? mb->count : 1, sizeof(*v->msgs));
	v->count = mb->count;
	for (size_t i = 0; i < mb->count; i++) {
		struct imap_msg *m = &v->msgs[i];
		struct store_msg *sm = &mb->msgs[i];
		m->uid = sm->uid;
		m->flags = sm->flags;
		m->modseq = sm->modseq;
		m->size = sm->size;
		m->internaldate = sm->internaldate;
		m->savedate = sm->savedate;
		m->path = sm->path;
		sm->path = NULL;
		if (sm->keywords && *sm->keywords)
			m->keywords = sm->keywords;
		else
			free(sm->keywords);
		sm->keywords = NULL;
	}
}

static void
mbox_select_report(struct imap_session *s)
{
	struct imap_view *v = &s->view;

	imap_view_send_flags(s);
	buf_printf(&s->out, "* %zu EXISTS\r\n", v->count);
	if (!s->rev2) {
		buf_puts(&s->out, "* 0 RECENT\r\n");
		for (size_t i = 0; i < v->count; i++) {
			if (!(v->msgs[i].flags & STORE_F_SEEN)) {
				buf_printf(&s->out, "* OK [UNSEEN %zu] First "
				    "unseen\r\n", i + 1);
				break;
			}
		}
	}
	buf_printf(&s->out, "* OK [UIDVALIDITY %u] UIDs valid\r\n",
	    v->uidvalidity);
	buf_printf(&s->out, "* OK [UIDNEXT %u] Predicted next UID\r\n",
	    v->uidnext);
	buf_printf(&s->out, "* OK [HIGHESTMODSEQ %llu] Highest\r\n",
	    (unsigned long long)(v->highestmodseq ? v->highestmodseq : 1));
	if (s->rev2) {
		/* RFC 9051 6.3.2: the name as the server knows it */
		buf_puts(&s->out, "* LIST () \"/\" ");
		imap_mailbox_to_client(s, v->name, &s->out);
		buf_puts(&s->out, "\r\n");
	}
}

static int
mbox_range_cmp(const void *pa, const void *pb)
{
	const struct imap_seq_range *a = pa, *b = pb;

	return a->first < b->first ? -1 : a->first > b->first;
}

/* Normalised, ascending, merged UID ranges of a client's set ("*" is
 * the top), for the known-uids filter of QRESYNC. */
static struct imap_seq_range *
mbox_ranges_sorted(const struct imap_seqset *set, size_t *n)
{
	struct imap_seq_range *r = x_calloc(set->count ? set->count : 1,
	    sizeof(*r));
	size_t k = 0;

	for (size_t i = 0; i < set->count; i++) {
		r[i] = set->ranges[i];
		if (r[i].first > r[i].last) {
			uint32_t t = r[i].first;
			r[i].first = r[i].last;
			r[i].last = t;
		}
	}
	qsort(r, set->count, sizeof(*r), mbox_range_cmp);
	for (size_t i = 0; i < set->count; i++) {
		if (k > 0 && r[i].first <= r[k - 1].last) {
			if (r[i].last > r[k - 1].last)
				r[k - 1].last = r[i].last;
		} else {
			r[k++] = r[i];
		}
	}
	*n = k;
	return r;
}

/* Keeps the UIDs (ascending) that the client said it knows. */
static size_t
mbox_filter_known(uint32_t *uids, size_t n, const struct imap_seqset *known)
{
	size_t nr, j = 0, k = 0;
	struct imap_seq_range *r;

	if (known->count == 0)
		return n;
	r = mbox_ranges_sorted(known, &nr);
	for (size_t i = 0; i < n; i++) {
		while (j < nr && r[j].last < uids[i])
			j++;
		if (j < nr && r[j].first <= uids[i])
			uids[k++] = uids[i];
	}
	free(r);
	return k;
}

/* RFC 7162 3.2.5.1: what the client missed since its modseq. */
static void
mbox_qresync(struct imap_session *s)
{
	struct imap_view *v = &s->view;
	uint32_t *uids = NULL;
	size_t n = 0;
	char *err = NULL;

	if (store_vanished(s->store, v->name, s->cmd.qr_modseq, &uids, &n,
	    &err) < 0) {
		log_warnx("session=%llu event=qresync error=\"%s\"",
		    (unsigned long long)s->id, err ? err : "?");
		free(err);
		n = 0;
	}
	n = mbox_filter_known(uids, n, &s->cmd.qr_known_uids);
	if (n > 0) {
		buf_puts(&s->out, "* VANISHED (EARLIER) ");
		imap_view_write_seqset(&s->out, uids, n);
		buf_puts(&s->out, "\r\n");
	}
	free(uids);
	for (size_t i = 0; i < v->count; i++) {
		const struct imap_msg *m = &v->msgs[i];
		if (m->modseq <= s->cmd.qr_modseq)
			continue;
		buf_printf(&s->out, "* %zu FETCH (UID %u FLAGS (", i + 1,
		    m->uid);
		imap_flags_write(&s->out, m->flags, m->keywords);
		buf_printf(&s->out, ") MODSEQ (%llu))\r\n",
		    (unsigned long long)m->modseq);
	}
}

static void
mbox_select_work(struct imap_session *s)
{
	struct store_mailbox mb;
	char *err = NULL, *name;

	if (s->selected)
		buf_puts(&s->out, "* OK [CLOSED] Previous mailbox closed\r\n");
	imap_view_free(&s->view);
	s->selected = false;
	name = imap_mailbox_from_client(s, &s->cmd.mailbox, &s->out);
	if (name == NULL)
		return;
	memset(&mb, 0, sizeof(mb));
	if (store_mailbox_load(s->store, name, &mb, &err) < 0) {
		int e = errno;
		store_mailbox_free(&mb);
		free(name);
		mbox_fail(s, "select", e, err);
		return;
	}
	mbox_view_fill(s, name, &mb);
	store_mailbox_free(&mb);
	if (mbox_view_keywords(s) < 0) {
		imap_view_free(&s->view);
		return;
	}
	s->selected = true;
	mbox_select_report(s);
	if (s->cmd.qresync && s->cmd.qr_uidvalidity == s->view.uidvalidity)
		mbox_qresync(s);
	imap_out_tagged(s, "OK", "[%s] %s completed",
	    s->view.readonly ? "READ-ONLY" : "READ-WRITE",
	    imap_cmd_name(s->cmd.cmd));
}

static void
mbox_select_done(struct imap_session *s)
{
	imap_enter_state(s, s->selected ? IMAP_ST_SELECTED : IMAP_ST_AUTH);
}

void
imap_cmd_select(struct imap_session *s)
{
	if (s->cmd.qresync && !s->qresync) {
		imap_tagged(s, "BAD", "QRESYNC is not enabled");
		return;
	}
	if (s->cmd.condstore || s->cmd.qresync)
		s->condstore = true;
	imap_job(s, mbox_select_work, mbox_select_done);
}

/* ---- CLOSE, UNSELECT, NOOP, CHECK ---- */

/* CLOSE's silent expunge of every \Deleted message: job_status is the
 * number removed, for the done callback. */
static int
mbox_expunge_deleted(struct imap_session *s)
{
	struct store_mailbox mb;
	char *err = NULL;
	uint32_t *uids;
	size_t n = 0;

	memset(&mb, 0, sizeof(mb));
	if (store_mailbox_load(s->store, s->view.name, &mb, &err) < 0) {
		int e = errno;
		store_mailbox_free(&mb);
		if (e == ENOENT) {
			free(err);
			return 0;
		}
		mbox_fail(s, "close", e, err);
		return -1;
	}
	uids = x_calloc(mb.count ? mb.count : 1, sizeof(*uids));
	for (size_t i = 0; i < mb.count; i++)
		if (mb.msgs[i].flags & STORE_F_DELETED)
			uids[n++] = mb.msgs[i].uid;
	store_mailbox_free(&mb);
	int r = n ? store_expunge(s->store, s->view.name, uids, n, &err) : 0;
	free(uids);
	if (r < 0) {
		mbox_fail(s, "close", errno, err);
		return -1;
	}
	s->job_status = n > 0;
	return 0;
}

static void
mbox_close_work(struct imap_session *s)
{
	if (s->cmd.cmd == IMAP_CMD_CLOSE && !s->view.readonly &&
	    mbox_expunge_deleted(s) < 0)
		return;
	imap_view_free(&s->view);
	s->selected = false;
	imap_out_tagged(s, "OK", "%s completed", imap_cmd_name(s->cmd.cmd));
}

static void
mbox_close_done(struct imap_session *s)
{
	if (!s->selected)
		imap_enter_state(s, IMAP_ST_AUTH);
	if (s->job_status > 0 && s->root)
		notify_changed(s->root);
}

void
imap_cmd_close(struct imap_session *s)
{
	imap_job(s, mbox_close_work, mbox_close_done);
}

static void
mbox_sync_work(struct imap_session *s)
{
	if (imap_view_sync(s, true) < 0) {
		log_warnx("session=%llu event=sync error=\"%s\"",
		    (unsigned long long)s->id, s->error ? s->error : "?");
		imap_out_tagged(s, "NO", "[SERVERBUG] Internal error");
		return;
	}
	imap_out_tagged(s, "OK", "%s completed", imap_cmd_name(s->cmd.cmd));
}

void
imap_cmd_noop(struct imap_session *s)
{
	if (s->state != IMAP_ST_SELECTED || !s->selected) {
		imap_tagged(s, "OK", "%s completed", imap_cmd_name(s->cmd.cmd));
		return;
	}
	imap_job(s, mbox_sync_work, NULL);
}

void
imap_cmd_check(struct imap_session *s)
{
	imap_cmd_noop(s);
}

/* ---- CREATE, DELETE, RENAME, SUBSCRIBE ---- */

static const struct {
	const char *name;
	unsigned use;
} mbox_uses[] = {
	{ "\\Sent", STORE_USE_SENT },
	{ "\\Drafts", STORE_USE_DRAFTS },
	{ "\\Trash", STORE_USE_TRASH },
	{ "\\Junk", STORE_USE_JUNK },
	{ "\\Archive", STORE_USE_ARCHIVE },
	{ "\\All", STORE_USE_ALL },
	{ "\\Flagged", STORE_USE_FLAGGED },
};

#define MBOX_NUSES (sizeof(mbox_uses) / sizeof(mbox_uses[0]))
/* \All and \Flagged name virtual mailboxes correo does not make. */
#define MBOX_USE_CREATABLE (STORE_USE_SENT | STORE_USE_DRAFTS | \
	STORE_USE_TRASH | STORE_USE_JUNK | STORE_USE_ARCHIVE)

/* CREATE's USE (...) list; -1 for an attribute correo cannot give. */
static int
mbox_create_uses(const struct imap_command *cmd, unsigned *use)
{
	*use = 0;
	for (size_t i = 0; i < cmd->ncreate_use; i++) {
		size_t j = 0;
		while (j < MBOX_NUSES &&
		    strcasecmp(cmd->create_use[i], mbox_uses[j].name) != 0)
			j++;
		if (j == MBOX_NUSES || !(mbox_uses[j].use & MBOX_USE_CREATABLE))
			return -1;
		*use |= mbox_uses[j].use;
	}
	return 0;
}

/* RFC 9051 6.3.4: superior names are created as needed. Failures are
 * ignored: Maildir++ folders do not need their parents. */
static void
mbox_create_parents(struct imap_session *s, const char *name)
{
	for (const char *p = strchr(name, '/'); p; p = strchr(p + 1, '/')) {
		char *parent = x_strndup(name, (size_t)(p - name));
		char *err = NULL;
		if (strcmp(parent, "INBOX") != 0 &&
		    store_mailbox_create(s->store, parent, &err) < 0)
			free(err);
		free(parent);
	}
}

static void
mbox_create_work(struct imap_session *s)
{
	char *err = NULL, *name;
	unsigned use;

	name = imap_mailbox_from_client(s, &s->cmd.mailbox, &s->out);
	if (name == NULL)
		return;
	if (strcmp(name, "INBOX") == 0) {
		imap_out_tagged(s, "NO", "[ALREADYEXISTS] INBOX always exists");
	} else if (mbox_create_uses(&s->cmd, &use) < 0) {
		imap_out_tagged(s, "NO", "[USEATTR] Unsupported special-use "
		    "attribute");
	} else {
		mbox_create_parents(s, name);
		if (store_mailbox_create_special(s->store, name, use, &err) < 0)
			mbox_fail(s, "create", errno, err);
		else
			mbox_ok(s);
	}
	free(name);
}

void
imap_cmd_create(struct imap_session *s)
{
	imap_job(s, mbox_create_work, NULL);
}

static void
mbox_delete_work(struct imap_session *s)
{
	char *err = NULL, *name;

	name = imap_mailbox_from_client(s, &s->cmd.mailbox, &s->out);
	if (name == NULL)
		return;
	if (strcmp(name, "INBOX") == 0)
		imap_out_tagged(s, "NO", "[CANNOT] INBOX cannot be deleted");
	else if (store_mailbox_delete(s->store, name, &err) < 0)
		mbox_fail(s, "delete", errno, err);
	else
		mbox_ok(s);
	free(name);
}

void
imap_cmd_delete(struct imap_session *s)
{
	imap_job(s, mbox_delete_work, NULL);
}

/* The selected mailbox keeps its messages and UIDs under its new name:
 * follow it (not for INBOX, which stays and is emptied). */
static void
mbox_follow_rename(struct imap_session *s, const char *from, const char *to)
{
	struct imap_view *v = &s->view;
	size_t flen = strlen(from);

	if (!s->selected || strcmp(from, "INBOX") == 0 ||
	    strncmp(v->name, from, flen) != 0 ||
	    (v->name[flen] != '\0' && v->name[flen] != '/'))
		return;
	char *nn = x_asprintf("%s%s", to, v->name + flen);
	x_free(&v->name);
	v->name = nn;
}

static void
mbox_rename_work(struct imap_session *s)
{
	char *err = NULL, *from, *to;

	from = imap_mailbox_from_client(s, &s->cmd.mailbox, &s->out);
	if (from == NULL)
		return;
	to = imap_mailbox_from_client(s, &s->cmd.mailbox2, &s->out);
	if (to == NULL) {
		free(from);
		return;
	}
	if (strcmp(to, "INBOX") == 0) {
		imap_out_tagged(s, "NO", "[ALREADYEXISTS] INBOX always exists");
	} else if (store_mailbox_rename(s->store, from, to, &err) < 0) {
		mbox_fail(s, "rename", errno, err);
	} else {
		mbox_create_parents(s, to);
		mbox_follow_rename(s, from, to);
		mbox_ok(s);
	}
	free(from);
	free(to);
}

void
imap_cmd_rename(struct imap_session *s)
{
	imap_job(s, mbox_rename_work, NULL);
}

static void
mbox_subscribe_work(struct imap_session *s)
{
	char *err = NULL, *name;
	bool on = s->cmd.cmd == IMAP_CMD_SUBSCRIBE;

	name = imap_mailbox_from_client(s, &s->cmd.mailbox, &s->out);
	if (name == NULL)
		return;
	if (store_subscribe(s->store, name, on, &err) < 0)
		mbox_fail(s, on ? "subscribe" : "unsubscribe", errno, err);
	else
		mbox_ok(s);
	free(name);
}

void
imap_cmd_subscribe(struct imap_session *s)
{
	imap_job(s, mbox_subscribe_work, NULL);
}

/* ---- STATUS ---- */

static void
mbox_status_item(struct buf *out, const char **sep, const char *name,
    unsigned long long value)
{
	buf_printf(out, "%s%s %llu", *sep, name, value);
	*sep = " ";
}

static void
mbox_status_line(struct imap_session *s, const char *name, unsigned items,
    const struct store_status *st)
{
	struct buf *o = &s->out;
	const char *sep = "";

	buf_puts(o, "* STATUS ");
	imap_mailbox_to_client(s, name, o);
	buf_puts(o, " (");
	if (items & IMAP_STATUS_MESSAGES)
		mbox_status_item(o, &sep, "MESSAGES", st->messages);
	if (items & IMAP_STATUS_RECENT)
		mbox_status_item(o, &sep, "RECENT", 0);
	if (items & IMAP_STATUS_UIDNEXT)
		mbox_status_item(o, &sep, "UIDNEXT", st->uidnext);
	if (items & IMAP_STATUS_UIDVALIDITY)
		mbox_status_item(o, &sep, "UIDVALIDITY", st->uidvalidity);
	if (items & IMAP_STATUS_UNSEEN)
		mbox_status_item(o, &sep, "UNSEEN", st->unseen);
	if (items & IMAP_STATUS_DELETED)
		mbox_status_item(o, &sep, "DELETED", st->deleted);
	if (items & IMAP_STATUS_SIZE)
		mbox_status_item(o, &sep, "SIZE", st->size);
	if (items & IMAP_STATUS_HIGHESTMODSEQ)
		mbox_status_item(o, &sep, "HIGHESTMODSEQ",
		    st->highestmodseq ? st->highestmodseq : 1);
	if ((items & IMAP_STATUS_APPENDLIMIT) && s->cfg->max_message_size)
		mbox_status_item(o, &sep, "APPENDLIMIT",
		    s->cfg->max_message_size);
	else if (items & IMAP_STATUS_APPENDLIMIT)
		buf_printf(o, "%sAPPENDLIMIT NIL", sep);
	buf_puts(o, ")\r\n");
}

static void
mbox_status_work(struct imap_session *s)
{
	struct store_status st;
	char *err = NULL, *name;

	name = imap_mailbox_from_client(s, &s->cmd.mailbox, &s->out);
	if (name == NULL)
		return;
	memset(&st, 0, sizeof(st));
	if (store_mailbox_status(s->store, name, &st, &err) < 0) {
		mbox_fail(s, "status", errno, err);
	} else {
		mbox_status_line(s, name, s->cmd.status_items, &st);
		mbox_ok(s);
	}
	free(name);
}

void
imap_cmd_status(struct imap_session *s)
{
	imap_job(s, mbox_status_work, NULL);
}

/* ---- LIST, LSUB ---- */

/* A name LIST may show: a mailbox, a subscription, or a level above
 * either (implied: "a" of "a/b"). */
struct mbox_entry {
	char *name;
	unsigned special;
	bool exists;
	bool subscribed;
	bool has_children;	/* an existing mailbox below */
	bool matched;		/* by one of the patterns */
	bool sub_below;		/* a subscribed name below that did not
				 * match (CHILDINFO, LSUB's "%" case) */
};

struct mbox_list {
	struct mbox_entry *e;
	size_t n;
	char **pats;		/* canonical patterns, wildcards collapsed */
	size_t npats;
	bool lsub;
	bool ext;		/* \NonExistent (LIST-EXTENDED, rev2) */
	unsigned sel, ret;
};

static int
mbox_entry_cmp(const void *pa, const void *pb)
{
	const struct mbox_entry *a = pa, *b = pb;

	return strcmp(a->name, b->name);
}

static struct mbox_entry *
mbox_list_find(const struct mbox_list *l, const char *name, size_t len)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strncmp(l->e[mid].name, name, len);
		if (c == 0 && l->e[mid].name[len] != '\0')
			c = 1;
		if (c < 0)
			lo = mid + 1;
		else if (c > 0)
			hi = mid;
		else
			return &l->e[mid];
	}
	return NULL;
}

static int
mbox_str_cmp(const void *pa, const void *pb)
{
	return strcmp(*(char *const *)pa, *(char *const *)pb);
}

/* Adds the levels above every name that are not names themselves. */
static void
mbox_list_add_implied(struct mbox_list *l)
{
	char **v = NULL;
	size_t nv = 0, cap = 0;

	for (size_t i = 0; i < l->n; i++) {
		const char *name = l->e[i].name;
		for (const char *p = strchr(name, '/'); p;
		    p = strchr(p + 1, '/')) {
			size_t len = (size_t)(p - name);
			if (mbox_list_find(l, name, len))
				continue;
			if (nv == cap) {
				cap = cap ? cap * 2 : 16;
				v = x_reallocarray(v, cap, sizeof(*v));
			}
			v[nv++] = x_strndup(name, len);
		}
	}
	if (nv == 0)
		return;
	qsort(v, nv, sizeof(*v), mbox_str_cmp);
	l->e = x_reallocarray(l->e, l->n + nv + 1, sizeof(*l->e));
	const char *last = NULL;
	for (size_t i = 0; i < nv; i++) {
		if (last && strcmp(v[i], last) == 0) {
			free(v[i]);
			continue;
		}
		memset(&l->e[l->n], 0, sizeof(*l->e));
		l->e[l->n++].name = v[i];
		last = v[i];
	}
	free(v);
	qsort(l->e, l->n, sizeof(*l->e), mbox_entry_cmp);
}

/* Marks the levels above name: has_children (name exists) or sub_below
 * (name is an unmatched subscription). */
static void
mbox_list_mark_above(struct mbox_list *l, const struct mbox_entry *e)
{
	bool child = e->exists;
	bool sub = e->subscribed && !e->matched;

	if (!child && !sub)
		return;
	for (const char *p = strchr(e->name, '/'); p; p = strchr(p + 1, '/')) {
		struct mbox_entry *a = mbox_list_find(l, e->name,
		    (size_t)(p - e->name));
		if (a == NULL)
			continue;
		if (child)
			a->has_children = true;
		if (sub)
			a->sub_below = true;
	}
}

static int
mbox_list_load(struct imap_session *s, struct mbox_list *l)
{
	struct store_mailbox_info *info = NULL;
	size_t n = 0;
	char *err = NULL;

	if (store_mailbox_list(s->store, &info, &n, &err) < 0) {
		mbox_fail(s, "list", errno, err);
		return -1;
	}
	l->e = x_calloc(n ? n : 1, sizeof(*l->e));
	for (size_t i = 0; i < n; i++) {
		l->e[i].name = info[i].name;
		info[i].name = NULL;
		l->e[i].special = info[i].special;
		l->e[i].exists = info[i].exists;
		l->e[i].subscribed = info[i].subscribed;
	}
	l->n = n;
	store_mailbox_list_free(info, n);
	qsort(l->e, l->n, sizeof(*l->e), mbox_entry_cmp);
	mbox_list_add_implied(l);
	return 0;
}

static void
mbox_list_free(struct mbox_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->e[i].name);
	free(l->e);
	for (size_t i = 0; i < l->npats; i++)
		free(l->pats[i]);
	free(l->pats);
	memset(l, 0, sizeof(*l));
}

/* ---- pattern matching ----
 * Patterns are untrusted: runs of wildcards collapse to one, and the
 * match is a dynamic program over (pattern, name) positions, so its cost
 * is bounded by their product whatever the pattern. */

static char *
mbox_pattern_compile(const char *in)
{
	size_t len = strlen(in), k = 0;
	char *out = x_malloc(len + 1);

	for (size_t i = 0; i < len; ) {
		if (in[i] != '*' && in[i] != '%') {
			out[k++] = in[i++];
			continue;
		}
		char w = '%';
		while (i < len && (in[i] == '*' || in[i] == '%'))
			if (in[i++] == '*')
				w = '*';
		out[k++] = w;
	}
	out[k] = '\0';
	return out;
}

static bool
mbox_char_eq(char p, const char *name, size_t j, bool inbox)
{
	if (p == name[j])
		return true;
	/* INBOX is case-insensitive (RFC 9051 5.1), also in patterns */
	return inbox && j < 5 && (p | 0x20) == (name[j] | 0x20) &&
	    ((p >= 'a' && p <= 'z') || (p >= 'A' && p <= 'Z'));
}

/* Octets of pat that are not wildcards: each matches exactly one octet
 * of a name, so a pattern with more than a name's length cannot match. */
static size_t
mbox_pattern_literals(const char *pat)
{
	size_t n = 0;

	for (const char *p = pat; *p; p++)
		n += *p != '*' && *p != '%';
	return n;
}

static bool
mbox_match(const char *pat, size_t literals, const char *name, bool *dp,
    bool *next)
{
	size_t n = strlen(name);
	bool inbox = mbox_is_inbox_prefixed(name);

	if (literals > n)
		return false;
	dp[0] = true;
	for (size_t j = 1; j <= n; j++)
		dp[j] = false;
	for (const char *p = pat; *p; p++) {
		if (*p == '*') {
			next[0] = dp[0];
			for (size_t j = 1; j <= n; j++)
				next[j] = next[j - 1] || dp[j];
		} else if (*p == '%') {
			next[0] = dp[0];
			for (size_t j = 1; j <= n; j++)
				next[j] = dp[j] ||
				    (next[j - 1] && name[j - 1] != '/');
		} else {
			next[0] = false;
			for (size_t j = 1; j <= n; j++)
				next[j] = dp[j - 1] &&
				    mbox_char_eq(*p, name, j - 1, inbox);
		}
		bool *t = dp;
		dp = next;
		next = t;
	}
	return dp[n];
}

static void
mbox_list_match(struct mbox_list *l)
{
	size_t longest = 0;

	for (size_t i = 0; i < l->n; i++) {
		size_t len = strlen(l->e[i].name);
		if (len > longest)
			longest = len;
	}
	bool *dp = x_calloc(longest + 1, sizeof(*dp));
	bool *next = x_calloc(longest + 1, sizeof(*next));
	size_t *lits = x_calloc(l->npats ? l->npats : 1, sizeof(*lits));
	for (size_t k = 0; k < l->npats; k++)
		lits[k] = mbox_pattern_literals(l->pats[k]);
	for (size_t i = 0; i < l->n; i++)
		for (size_t k = 0; k < l->npats && !l->e[i].matched; k++)
			l->e[i].matched = mbox_match(l->pats[k], lits[k],
			    l->e[i].name, dp, next);
	free(lits);
	free(dp);
	free(next);
	for (size_t i = 0; i < l->n; i++)
		mbox_list_mark_above(l, &l->e[i]);
}

/* The canonical patterns (reference + pattern, decoded); false for one
 * that is not valid on the wire. Empty ones are dropped. */
static bool
mbox_list_patterns(const struct imap_session *s, struct mbox_list *l)
{
	const struct imap_command *c = &s->cmd;
	struct buf ref = BUF_INIT;
	bool ok = c->reference.has_nul ? false :
	    mbox_wire_decode(s, c->reference.data, c->reference.len, &ref);

	l->pats = x_calloc(c->npatterns ? c->npatterns : 1, sizeof(*l->pats));
	for (size_t i = 0; ok && i < c->npatterns; i++) {
		struct buf p = BUF_INIT;
		buf_puts(&p, buf_cstr(&ref));
		ok = !c->patterns[i].has_nul && mbox_wire_decode(s,
		    c->patterns[i].data, c->patterns[i].len, &p);
		if (ok && p.len > 0)
			l->pats[l->npats++] =
			    mbox_pattern_compile(buf_cstr(&p));
		buf_free(&p);
	}
	buf_free(&ref);
	return ok;
}

/* Whether the entry appears, by the command's selection. */
static bool
mbox_list_selected(const struct mbox_list *l, const struct mbox_entry *e)
{
	if (!e->matched)
		return false;
	if (l->lsub)
		return e->subscribed || e->sub_below;
	if (!(l->sel & (IMAP_LIST_SEL_SUBSCRIBED | IMAP_LIST_SEL_SPECIAL_USE)))
		return e->exists || e->has_children;
	/* the options given must all hold */
	if ((l->sel & IMAP_LIST_SEL_SUBSCRIBED) && !e->subscribed &&
	    !((l->sel & IMAP_LIST_SEL_RECURSIVEMATCH) && e->sub_below))
		return false;
	return !(l->sel & IMAP_LIST_SEL_SPECIAL_USE) ||
	    (e->exists && e->special != 0);
}

static void
mbox_list_attrs(const struct mbox_list *l, const struct mbox_entry *e,
    struct buf *o)
{
	const char *sep = "";

	if (!e->exists) {
		buf_puts(o, l->ext && !l->lsub ? "\\NonExistent" :
		    "\\Noselect");
		sep = " ";
	}
	if (l->lsub)
		return;
	if (e->subscribed && ((l->sel & IMAP_LIST_SEL_SUBSCRIBED) ||
	    (l->ret & IMAP_LIST_RET_SUBSCRIBED))) {
		buf_printf(o, "%s\\Subscribed", sep);
		sep = " ";
	}
	buf_printf(o, "%s%s", sep, e->has_children ? "\\HasChildren" :
	    "\\HasNoChildren");
	for (size_t i = 0; e->exists && i < MBOX_NUSES; i++)
		if (e->special & mbox_uses[i].use)
			buf_printf(o, " %s", mbox_uses[i].name);
}

static void
mbox_list_status(struct imap_session *s, const struct mbox_entry *e)
{
	struct store_status st;
	char *err = NULL;

	memset(&st, 0, sizeof(st));
	if (store_mailbox_status(s->store, e->name, &st, &err) < 0) {
		free(err);
		return;
	}
	mbox_status_line(s, e->name, s->cmd.list_status, &st);
}

static void
mbox_list_line(struct imap_session *s, const struct mbox_list *l,
    const struct mbox_entry *e)
{
	if (!mbox_list_selected(l, e))
		return;
	buf_printf(&s->out, "* %s (", l->lsub ? "LSUB" : "LIST");
	mbox_list_attrs(l, e, &s->out);
	buf_puts(&s->out, ") \"/\" ");
	imap_mailbox_to_client(s, e->name, &s->out);
	if (!l->lsub && (l->sel & IMAP_LIST_SEL_SUBSCRIBED) &&
	    (l->sel & IMAP_LIST_SEL_RECURSIVEMATCH) && e->sub_below)
		buf_puts(&s->out, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
	buf_puts(&s->out, "\r\n");
	if (!l->lsub && (l->ret & IMAP_LIST_RET_STATUS) && e->exists)
		mbox_list_status(s, e);
}

static void
mbox_list_work(struct imap_session *s)
{
	struct mbox_list l;

	memset(&l, 0, sizeof(l));
	l.lsub = s->cmd.cmd == IMAP_CMD_LSUB;
	l.sel = s->cmd.list_select;
	l.ret = s->cmd.list_return;
	l.ext = s->rev2 || l.sel || l.ret;
	if (!mbox_list_patterns(s, &l)) {
		mbox_list_free(&l);
		imap_out_tagged(s, "BAD", "Invalid mailbox name or pattern");
		return;
	}
	if (l.npats == 0 && s->cmd.npatterns == 1 && !l.lsub) {
		/* RFC 9051 6.3.9: the delimiter and the root */
		buf_puts(&s->out, "* LIST (\\Noselect) \"/\" \"\"\r\n");
	} else if (l.npats > 0) {
		if (mbox_list_load(s, &l) < 0) {
			mbox_list_free(&l);
			return;
		}
		mbox_list_match(&l);
		/* INBOX first, then the others in name order */
		struct mbox_entry *inbox = mbox_list_find(&l, "INBOX", 5);
		if (inbox)
			mbox_list_line(s, &l, inbox);
		for (size_t i = 0; i < l.n; i++)
			if (&l.e[i] != inbox)
				mbox_list_line(s, &l, &l.e[i]);
	}
	mbox_list_free(&l);
	mbox_ok(s);
}

void
imap_cmd_list(struct imap_session *s)
{
	imap_job(s, mbox_list_work, NULL);
}
