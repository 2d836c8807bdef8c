/* FETCH and UID FETCH (RFC 9051 6.4.5 and 7.5.2, RFC 3516 BINARY,
 * RFC 7162 CONDSTORE/QRESYNC, RFC 8514 SAVEDATE).
 *
 * Untrusted input: the parsed command (client) and the message files
 * (strangers, over SMTP): any octets, NULs included, any size.
 *
 * A FETCH runs as a chain of pool jobs. Each job writes at most about
 * IMAP_JOB_OUTPUT octets to s->out and keeps its place in s->fetch: the
 * message, the item, and a literal being copied from the file. Message
 * contents are read in chunks straight into s->out, never whole, except
 * what must be computed first (HEADER.FIELDS, decoded BINARY). The next
 * job starts when the connection's output is below IMAP_OUTPUT_HIGH, else
 * when it drained (imap_fetch_continue).
 *
 * Choices where the RFCs leave room:
 * - A NUL octet in a BODY[...] section (message files can hold them) is
 *   sent as a space, so that the literal stays valid (RFC 9051 CHAR8)
 *   and its length, partial offsets and RFC822.SIZE still agree. BINARY
 *   sends such content as literal8 (~{n}), as RFC 3516 allows.
 * - A message expunged by another session but not yet reported is served
 *   while its file can still be opened. When it cannot (or its summary is
 *   gone), it is left out, and the FETCH ends with
 *   "NO [EXPUNGEISSUED]" (RFC 5530, as Dovecot) after the others.
 * - BINARY of a part that does not exist (or of a multipart) is NIL,
 *   BINARY.SIZE of it 0.
 * - \Seen set by BODY[]/BINARY[]/RFC822[.TEXT] is stored for up to
 *   FETCH_SEEN_BATCH messages at a time, just before they are sent: one
 *   transaction per batch, not one per message. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "imap/imap_session.h"
#include "store/mime.h"
#include "store/store.h"

/* Messages whose \Seen is stored in one transaction. */
#define FETCH_SEEN_BATCH	256
/* Octets of a message file read at once into the output. */
#define FETCH_CHUNK		(128 * 1024)
/* The first read when looking for the end of the top-level header. */
#define FETCH_HEADER_CHUNK	(16 * 1024)

/* How an item's value is produced. */
enum fetch_kind {
	FK_VIEW,		/* from s->view: FLAGS, UID, sizes, dates */
	FK_SUMMARY,		/* ENVELOPE, BODY, BODYSTRUCTURE */
	FK_SECTION,		/* BODY[...], RFC822* */
	FK_BINARY,		/* BINARY[...] */
	FK_BINARY_SIZE		/* BINARY.SIZE[...] */
};

struct fetch_item {
	struct imap_fetch_att att;	/* RFC822* mapped to their sections */
	enum imap_fetch_item item;	/* as asked, for the response */
	enum fetch_kind kind;
	char *name;			/* the response's item name */
	bool if_seen_set;		/* FLAGS: if this FETCH set \Seen */
};

/* An item's value for the current message, prepared before its
 * response starts (everything that can fail is done then). */
enum fetch_value_kind {
	FV_NONE,
	FV_NIL,
	FV_NUMBER,
	FV_FILE,		/* octets [off, off + len) of the file */
	FV_MEM			/* octets [off, off + len) of mem */
};

struct fetch_value {
	enum fetch_value_kind kind;
	bool literal8;
	uint64_t off, len, number;
	struct buf mem;
};

struct imap_fetch_job {
	bool started;
	bool finished;
	size_t *idx;			/* view indexes to send */
	size_t n;
	size_t pos;			/* in idx */

	struct fetch_item *items;
	size_t nitems;
	bool need_file;
	bool need_summary;
	bool set_seen;			/* a non-PEEK body item was asked */
	unsigned char *seen_set;	/* per idx: \Seen set here */
	size_t seen_upto;		/* idx below this: \Seen handled */
	bool expunge_issued;

	/* the message being sent */
	bool in_msg;			/* "* n FETCH (" written */
	size_t item;			/* next item */
	bool sep;			/* an item was written: " " first */
	int fd;
	uint64_t fsize;
	bool have_summary;
	struct mime_summary sum;
	bool have_header;		/* top-level header found */
	struct buf hdr;			/* at least [0, body_off) */
	uint64_t body_off;
	struct fetch_value *vals;	/* per item */

	/* a literal being sent */
	const struct fetch_value *lit;
	uint64_t lit_done;
	bool lit_text;			/* NULs become spaces */

	/* how it ends when not OK */
	const char *status;
	const char *text;		/* static */
};

static void fetch_work(struct imap_session *s);
static void fetch_done(struct imap_session *s);

/* ---- setup (loop) ---- */

static bool
fetch_att_sets_seen(const struct imap_fetch_att *att)
{
	switch (att->item) {
	case IMAP_FETCH_RFC822:
	case IMAP_FETCH_RFC822_TEXT:
		return true;
	case IMAP_FETCH_BODY_SECTION:
	case IMAP_FETCH_BINARY_SECTION:
		return !att->peek;
	default:
		return false;
	}
}

static enum fetch_kind
fetch_kind_of(enum imap_fetch_item item)
{
	switch (item) {
	case IMAP_FETCH_ENVELOPE:
	case IMAP_FETCH_BODYSTRUCTURE:
	case IMAP_FETCH_BODY:
		return FK_SUMMARY;
	case IMAP_FETCH_RFC822:
	case IMAP_FETCH_RFC822_HEADER:
	case IMAP_FETCH_RFC822_TEXT:
	case IMAP_FETCH_BODY_SECTION:
		return FK_SECTION;
	case IMAP_FETCH_BINARY_SECTION:
		return FK_BINARY;
	case IMAP_FETCH_BINARY_SIZE:
		return FK_BINARY_SIZE;
	default:
		return FK_VIEW;
	}
}

static bool
fetch_has_item(const struct imap_command *cmd, enum imap_fetch_item item)
{
	for (size_t i = 0; i < cmd->natts; i++) {
		if (cmd->atts[i].item == item)
			return true;
	}
	return false;
}

static void
fetch_item_add(struct imap_fetch_job *j, const struct imap_fetch_att *att)
{
	struct fetch_item *it = &j->items[j->nitems++];
	char small[128];
	size_t len = imap_fetch_att_name(att, small, sizeof(small));

	memset(it, 0, sizeof(*it));
	it->att = *att;
	it->item = att->item;
	it->kind = fetch_kind_of(att->item);
	it->name = x_malloc(len + 1);
	if (len < sizeof(small))
		memcpy(it->name, small, len + 1);
	else
		(void)imap_fetch_att_name(att, it->name, len + 1);
	/* RFC822, RFC822.HEADER and RFC822.TEXT are BODY[], BODY.PEEK[HEADER]
	 * and BODY[TEXT] under their own names. */
	if (att->item == IMAP_FETCH_RFC822_HEADER)
		it->att.section.text = IMAP_SECTION_HEADER;
	else if (att->item == IMAP_FETCH_RFC822_TEXT)
		it->att.section.text = IMAP_SECTION_TEXT;
	if (it->kind == FK_SECTION || it->kind == FK_BINARY ||
	    it->kind == FK_BINARY_SIZE)
		j->need_file = true;
	if (it->kind == FK_SUMMARY)
		j->need_summary = true;
	if (fetch_att_sets_seen(att))
		j->set_seen = true;
}

static void
fetch_add_simple(struct imap_fetch_job *j, enum imap_fetch_item item)
{
	struct imap_fetch_att att;

	memset(&att, 0, sizeof(att));
	att.item = item;
	fetch_item_add(j, &att);
}

/* The items of each response: UID first for UID FETCH (RFC 9051 6.4.9),
 * the asked ones in order, FLAGS when \Seen was set (6.4.5), MODSEQ once
 * CONDSTORE is on (RFC 7162 3.1.4). */
static void
fetch_items_build(struct imap_session *s, struct imap_fetch_job *j)
{
	const struct imap_command *cmd = &s->cmd;

	j->items = x_calloc(cmd->natts + 3, sizeof(*j->items));
	if (cmd->uid && !fetch_has_item(cmd, IMAP_FETCH_UID))
		fetch_add_simple(j, IMAP_FETCH_UID);
	for (size_t i = 0; i < cmd->natts; i++)
		fetch_item_add(j, &cmd->atts[i]);
	if (j->set_seen && !fetch_has_item(cmd, IMAP_FETCH_FLAGS)) {
		fetch_add_simple(j, IMAP_FETCH_FLAGS);
		j->items[j->nitems - 1].if_seen_set = true;
	}
	if (s->condstore && !fetch_has_item(cmd, IMAP_FETCH_MODSEQ))
		fetch_add_simple(j, IMAP_FETCH_MODSEQ);
	j->vals = x_calloc(j->nitems, sizeof(*j->vals));
}

static void
fetch_values_reset(struct imap_fetch_job *j)
{
	for (size_t i = 0; i < j->nitems; i++) {
		struct fetch_value *v = &j->vals[i];
		/* Small buffers are kept for the next message; a big one
		 * (a decoded attachment) is given back at once. */
		if (v->mem.cap > 256 * 1024)
			buf_free(&v->mem);
		else
			buf_reset(&v->mem);
		v->kind = FV_NONE;
		v->literal8 = false;
		v->off = v->len = v->number = 0;
	}
}

/* Forgets the current message: its file, summary and values. */
static void
fetch_msg_clear(struct imap_fetch_job *j)
{
	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
	j->fsize = 0;
	if (j->have_summary)
		mime_summary_free(&j->sum);
	j->have_summary = false;
	memset(&j->sum, 0, sizeof(j->sum));
	j->have_header = false;
	buf_reset(&j->hdr);
	j->body_off = 0;
	if (j->vals != NULL)
		fetch_values_reset(j);
	j->in_msg = false;
	j->item = 0;
	j->sep = false;
	j->lit = NULL;
	j->lit_done = 0;
}

static void
fetch_job_destroy(struct imap_fetch_job *j)
{
	fetch_msg_clear(j);
	for (size_t i = 0; i < j->nitems; i++) {
		x_free(&j->items[i].name);
		if (j->vals != NULL)
			buf_free(&j->vals[i].mem);
	}
	x_free(&j->items);
	x_free(&j->vals);
	x_free(&j->idx);
	x_free(&j->seen_set);
	buf_free(&j->hdr);
	free(j);
}

void
imap_cmd_fetch(struct imap_session *s)
{
	struct imap_command *cmd = &s->cmd;

	/* RFC 7162 3.2.6: VANISHED only once QRESYNC is enabled. */
	if (cmd->vanished && !s->qresync) {
		imap_tagged(s, "BAD", "VANISHED needs ENABLE QRESYNC");
		return;
	}
	if (cmd->changedsince > 0 || fetch_has_item(cmd, IMAP_FETCH_MODSEQ))
		s->condstore = true;

	struct imap_fetch_job *j = x_calloc(1, sizeof(*j));
	j->fd = -1;
	fetch_items_build(s, j);
	s->fetch = j;
	imap_job(s, fetch_work, fetch_done);
}

bool
imap_fetch_continue(struct imap_session *s)
{
	if (s->fetch == NULL || s->busy)
		return s->fetch != NULL;
	imap_job(s, fetch_work, fetch_done);
	return true;
}

void
imap_fetch_free(struct imap_session *s)
{
	if (s->fetch == NULL)
		return;
	fetch_job_destroy(s->fetch);
	s->fetch = NULL;
}

/* The loop, after a job's output was handed to the connection. */
static void
fetch_done(struct imap_session *s)
{
	struct imap_fetch_job *j = s->fetch;

	if (j == NULL)
		return;
	if (j->finished) {
		imap_fetch_free(s);
		return;
	}
	/* Otherwise the connection's drain calls imap_fetch_continue. */
	if (s->conn != NULL && conn_output_length(s->conn) < IMAP_OUTPUT_HIGH)
		imap_job(s, fetch_work, fetch_done);
}

/* ---- the end ---- */

/* The first failure is the one the tagged reply reports. */
static void
fetch_fail(struct imap_fetch_job *j, const char *status, const char *text)
{
	if (j->status != NULL)
		return;
	j->status = status;
	j->text = text;
}

static void
fetch_store_error(struct imap_session *s, struct imap_fetch_job *j,
    const char *what, char **err)
{
	log_warnx("session=%llu fetch: %s: %s", (unsigned long long)s->id,
	    what, *err != NULL ? *err : "?");
	x_free(err);
	fetch_fail(j, "NO", "[SERVERBUG] Internal error fetching messages");
}

static void
fetch_finish(struct imap_session *s, struct imap_fetch_job *j)
{
	fetch_msg_clear(j);
	j->finished = true;
	if (imap_view_sync(s, s->cmd.uid) < 0) {
		log_warnx("session=%llu fetch: view sync: %s",
		    (unsigned long long)s->id, s->error ? s->error : "?");
		x_free(&s->error);
		fetch_fail(j, "NO", "[SERVERBUG] Internal error");
	}
	if (j->status != NULL)
		imap_out_tagged(s, j->status, "%s", j->text);
	else if (j->expunge_issued)
		imap_out_tagged(s, "NO", "[EXPUNGEISSUED] Some of the "
		    "requested messages no longer exist");
	else
		imap_out_tagged(s, "OK", "FETCH completed");
}

/* ---- the first job: the set, VANISHED ---- */

static int
fetch_range_cmp(const void *a, const void *b)
{
	const struct imap_seq_range *x = a, *y = b;

	return x->first < y->first ? -1 : x->first > y->first;
}

/* The UID set as ascending, disjoint ranges ("*" is UINT32_MAX, so the
 * expunged UIDs above the last one that exists count too). */
static struct imap_seq_range *
fetch_uid_ranges(const struct imap_session *s, const struct imap_seqset *set,
    size_t *n)
{
	size_t count = set->is_saved ? s->view.nsaved : set->count, k = 0;
	struct imap_seq_range *r = x_calloc(count ? count : 1, sizeof(*r));

	for (size_t i = 0; i < count; i++) {
		if (set->is_saved) {
			r[i].first = r[i].last = s->view.saved[i];
			continue;
		}
		r[i] = set->ranges[i];
		if (r[i].first > r[i].last) {
			r[i].first = set->ranges[i].last;
			r[i].last = set->ranges[i].first;
		}
	}
	qsort(r, count, sizeof(*r), fetch_range_cmp);
	for (size_t i = 0; i < count; i++) {
		if (k > 0 && (r[k - 1].last == UINT32_MAX ||
		    r[i].first <= r[k - 1].last + 1)) {
			if (r[i].last > r[k - 1].last)
				r[k - 1].last = r[i].last;
		} else {
			r[k++] = r[i];
		}
	}
	*n = k;
	return r;
}

static bool
fetch_uid_in_ranges(const struct imap_seq_range *r, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (uid < r[mid].first)
			hi = mid;
		else if (uid > r[mid].last)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

/* RFC 7162 3.2.6: "* VANISHED (EARLIER)" for the UIDs of the set
 * expunged since CHANGEDSINCE. */
static int
fetch_vanished(struct imap_session *s, struct imap_fetch_job *j)
{
	uint32_t *uids = NULL;
	size_t n = 0, k = 0;
	char *err = NULL;

	if (store_vanished(s->store, s->view.name, s->cmd.changedsince, &uids,
	    &n, &err) < 0) {
		fetch_store_error(s, j, "vanished", &err);
		return -1;
	}
	size_t nr;
	struct imap_seq_range *r = fetch_uid_ranges(s, &s->cmd.set, &nr);
	for (size_t i = 0; i < n; i++) {
		if (fetch_uid_in_ranges(r, nr, uids[i]))
			uids[k++] = uids[i];
	}
	free(r);
	if (k > 0) {
		buf_puts(&s->out, "* VANISHED (EARLIER) ");
		imap_view_write_seqset(&s->out, uids, k);
		buf_puts(&s->out, "\r\n");
	}
	free(uids);
	return 0;
}

/* 0, or -1 when the FETCH ends at once (the tagged reply is written). */
static int
fetch_start(struct imap_session *s, struct imap_fetch_job *j)
{
	j->started = true;
	if (imap_view_resolve(&s->view, &s->cmd.set, s->cmd.uid, &j->idx,
	    &j->n) < 0) {
		j->finished = true;
		imap_out_tagged(s, "BAD", "Invalid message number");
		return -1;
	}
	if (s->cmd.changedsince > 0) {
		size_t k = 0;
		for (size_t i = 0; i < j->n; i++) {
			const struct imap_msg *m = &s->view.msgs[j->idx[i]];
			if (m->modseq > s->cmd.changedsince)
				j->idx[k++] = j->idx[i];
		}
		j->n = k;
	}
	if (s->view.readonly)
		j->set_seen = false;
	if (j->set_seen && j->n > 0)
		j->seen_set = x_calloc(j->n, 1);
	if (s->cmd.vanished && fetch_vanished(s, j) < 0) {
		fetch_finish(s, j);
		return -1;
	}
	return 0;
}

/* ---- \Seen ---- */

static void
fetch_seen_apply(struct imap_session *s, struct imap_fetch_job *j,
    size_t at, const struct store_flag_result *r)
{
	struct imap_msg *m = &s->view.msgs[j->idx[at]];

	if (r->gone || !r->changed)
		return;
	m->flags = r->flags;
	m->modseq = r->modseq;
	if ((r->keywords == NULL) != (m->keywords == NULL) ||
	    (r->keywords != NULL && strcmp(r->keywords, m->keywords) != 0)) {
		/* Another session changed them meanwhile: the FLAGS sent
		 * now must be announced (the view's sync will not see it
		 * again). */
		if (r->keywords != NULL)
			imap_view_note_keywords(s, r->keywords);
		x_free(&m->keywords);
		m->keywords = r->keywords ? x_strdup(r->keywords) : NULL;
	}
	j->seen_set[at] = 1;
}

/* Stores \Seen for the next batch of messages about to be sent. */
static int
fetch_mark_seen(struct imap_session *s, struct imap_fetch_job *j)
{
	if (!j->set_seen || j->pos < j->seen_upto)
		return 0;
	size_t end = j->n - j->pos > FETCH_SEEN_BATCH ?
	    j->pos + FETCH_SEEN_BATCH : j->n;
	uint32_t uids[FETCH_SEEN_BATCH];
	size_t at[FETCH_SEEN_BATCH];
	size_t k = 0;

	for (size_t i = j->pos; i < end; i++) {
		const struct imap_msg *m = &s->view.msgs[j->idx[i]];
		if (m->expunged || (m->flags & STORE_F_SEEN))
			continue;
		uids[k] = m->uid;
		at[k++] = i;
	}
	j->seen_upto = end;
	if (k == 0)
		return 0;

	struct store_flag_update u = { .op = STORE_FLAGS_ADD,
	    .flags = STORE_F_SEEN };
	struct store_flag_result res[FETCH_SEEN_BATCH];
	char *err = NULL;
	if (store_update_flags(s->store, s->view.name, uids, k, &u, res,
	    &err) < 0) {
		fetch_store_error(s, j, "set \\Seen", &err);
		return -1;
	}
	for (size_t i = 0; i < k; i++)
		fetch_seen_apply(s, j, at[i], &res[i]);
	store_flag_results_free(res, k);
	return 0;
}

/* ---- reading the message ---- */

static int
fetch_pread_all(int fd, char *p, size_t n, uint64_t off, size_t *got)
{
	*got = 0;
	while (*got < n) {
		ssize_t r = pread(fd, p + *got, n - *got,
		    (off_t)(off + *got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		*got += (size_t)r;
	}
	return 0;
}

/* Appends [off, off + len) of the file to out; -1 with *err. */
static int
fetch_read_range(int fd, uint64_t off, uint64_t len, struct buf *out,
    char **err)
{
	size_t got;

	if (len > SIZE_MAX / 2) {
		*err = x_strdup("section too large");
		return -1;
	}
	buf_reserve_total(out, out->len + (size_t)len);
	if (fetch_pread_all(fd, out->data + out->len, (size_t)len, off,
	    &got) < 0) {
		*err = x_asprintf("read: %s", strerror(errno));
		return -1;
	}
	/* A file that shrank: what is missing reads as spaces. */
	memset(out->data + out->len + got, ' ', (size_t)len - got);
	out->len += (size_t)len;
	out->data[out->len] = '\0';
	return 0;
}

/* Where the top-level header ends, as mime_tree_parse decides it: after
 * the first empty line ("\n" or "\r\n"), else at the end of the file.
 * Returns true when found in what was read so far. */
static bool
fetch_header_end(const char *d, size_t len, size_t *line, size_t *look,
    uint64_t *body_off)
{
	while (*line < len) {
		if (d[*line] == '\n') {
			*body_off = *line + 1;
			return true;
		}
		if (d[*line] == '\r') {
			if (*line + 1 == len)
				return false;	/* the next octet says */
			if (d[*line + 1] == '\n') {
				*body_off = *line + 2;
				return true;
			}
		}
		if (*look < *line)
			*look = *line;
		const char *lf = memchr(d + *look, '\n', len - *look);
		if (lf == NULL) {
			*look = len;
			return false;
		}
		*line = *look = (size_t)(lf - d) + 1;
	}
	return false;
}

/* Finds the end of the top-level header reading only as far as needed,
 * into j->hdr (which then holds at least [0, body_off)). */
static int
fetch_find_header(struct imap_fetch_job *j, char **err)
{
	size_t line = 0, look = 0, want = FETCH_HEADER_CHUNK;

	if (j->have_header)
		return 0;
	buf_reset(&j->hdr);
	while (!fetch_header_end(buf_cstr(&j->hdr), j->hdr.len, &line, &look,
	    &j->body_off)) {
		uint64_t len = j->hdr.len;
		if (len >= j->fsize) {
			j->body_off = j->fsize;
			break;
		}
		uint64_t n = j->fsize - len < want ? j->fsize - len : want;
		if (fetch_read_range(j->fd, len, n, &j->hdr, err) < 0)
			return -1;
		if (want < FETCH_CHUNK)
			want *= 2;
	}
	j->have_header = true;
	return 0;
}

static void
fetch_nul_to_space(char *p, size_t n)
{
	char *end = p + n;

	while (p < end && (p = memchr(p, '\0', (size_t)(end - p))) != NULL)
		*p++ = ' ';
}

/* Does [off, off + len) of the file hold a NUL? */
static int
fetch_file_has_nul(int fd, uint64_t off, uint64_t len, bool *nul, char **err)
{
	char *chunk = x_malloc(FETCH_CHUNK);
	int r = 0;

	*nul = false;
	while (len > 0 && !*nul) {
		size_t want = len < FETCH_CHUNK ? (size_t)len : FETCH_CHUNK;
		size_t got;
		if (fetch_pread_all(fd, chunk, want, off, &got) < 0) {
			*err = x_asprintf("read: %s", strerror(errno));
			r = -1;
			break;
		}
		if (got == 0)
			break;
		*nul = memchr(chunk, '\0', got) != NULL;
		off += got;
		len -= got;
	}
	free(chunk);
	return r;
}

/* ---- preparing a message's values ---- */

/* <offset.length>: the part of the value asked for ("" past its end). */
static void
fetch_apply_partial(const struct fetch_item *it, struct fetch_value *v)
{
	if (!it->att.partial)
		return;
	uint64_t o = it->att.offset < v->len ? it->att.offset : v->len;
	v->off += o;
	v->len -= o;
	if (v->len > it->att.length)
		v->len = it->att.length;
}

static void
fetch_value_file(struct fetch_value *v, uint64_t from, uint64_t to)
{
	v->kind = FV_FILE;
	v->off = from;
	v->len = to > from ? to - from : 0;
}

static void
fetch_value_mem(struct fetch_value *v)
{
	v->kind = FV_MEM;
	v->off = 0;
	v->len = v->mem.len;
}

static bool
fetch_is_fields(enum imap_section_text t)
{
	return t == IMAP_SECTION_HEADER_FIELDS ||
	    t == IMAP_SECTION_HEADER_FIELDS_NOT;
}

/* The top-level sections, found without parsing the whole message. */
static int
fetch_prep_top(struct imap_fetch_job *j, const struct imap_section *sec,
    struct fetch_value *v, char **err)
{
	if (sec->text == IMAP_SECTION_ALL) {
		fetch_value_file(v, 0, j->fsize);
		return 0;
	}
	if (sec->text == IMAP_SECTION_MIME) {	/* the parser refuses it */
		fetch_value_mem(v);
		return 0;
	}
	if (fetch_find_header(j, err) < 0)
		return -1;
	if (sec->text == IMAP_SECTION_HEADER)
		fetch_value_file(v, 0, j->body_off);
	else if (sec->text == IMAP_SECTION_TEXT)
		fetch_value_file(v, j->body_off, j->fsize);
	else {
		mime_header_filter(buf_cstr(&j->hdr), (size_t)j->body_off,
		    sec->fields, sec->nfields,
		    sec->text == IMAP_SECTION_HEADER_FIELDS_NOT, &v->mem);
		fetch_value_mem(v);
	}
	return 0;
}

/* A section below a part number: mime_section_range finds it. */
static int
fetch_prep_part(struct imap_fetch_job *j, const struct imap_section *sec,
    struct fetch_value *v, char **err)
{
	enum mime_section which = MIME_SECTION_ALL;
	struct mime_range r;

	if (sec->text == IMAP_SECTION_TEXT)
		which = MIME_SECTION_TEXT;
	else if (sec->text == IMAP_SECTION_MIME)
		which = MIME_SECTION_MIME;
	else if (sec->text != IMAP_SECTION_ALL)
		which = MIME_SECTION_HEADER;
	if (mime_section_range(j->fd, sec->part, sec->nparts, which, &r,
	    err) < 0)
		return -1;
	if (!fetch_is_fields(sec->text)) {
		fetch_value_file(v, r.offset, r.offset + r.length);
		return 0;
	}
	if (r.length > 0) {
		struct buf hdr = BUF_INIT;
		if (fetch_read_range(j->fd, r.offset, r.length, &hdr,
		    err) < 0) {
			buf_free(&hdr);
			return -1;
		}
		mime_header_filter(hdr.data, hdr.len, sec->fields,
		    sec->nfields, sec->text == IMAP_SECTION_HEADER_FIELDS_NOT,
		    &v->mem);
		buf_free(&hdr);
	}
	fetch_value_mem(v);
	return 0;
}

static int
fetch_prep_section(struct imap_fetch_job *j, const struct fetch_item *it,
    struct fetch_value *v, char **err)
{
	const struct imap_section *sec = &it->att.section;
	int r = sec->nparts == 0 ? fetch_prep_top(j, sec, v, err) :
	    fetch_prep_part(j, sec, v, err);

	if (r < 0)
		return -1;
	if (v->kind == FV_MEM)
		fetch_nul_to_space(v->mem.data, v->mem.len);
	fetch_apply_partial(it, v);
	return 0;
}

/* BINARY and BINARY.SIZE: 0, -1 with *err, or -2 for UNKNOWN-CTE. */
static int
fetch_prep_binary(struct imap_fetch_job *j, const struct fetch_item *it,
    struct fetch_value *v, char **err)
{
	const struct imap_section *sec = &it->att.section;
	bool size_only = it->kind == FK_BINARY_SIZE;

	if (sec->nparts == 0) {
		/* The whole message as stored: no decoding, no copy. */
		v->kind = size_only ? FV_NUMBER : FV_FILE;
		v->number = j->fsize;
		if (size_only)
			return 0;
		fetch_value_file(v, 0, j->fsize);
		fetch_apply_partial(it, v);
		return fetch_file_has_nul(j->fd, v->off, v->len, &v->literal8,
		    err);
	}
	if (mime_section_decode(j->fd, sec->part, sec->nparts, &v->mem,
	    err) < 0) {
		int e = errno;
		if (e != ENOENT && e != EINVAL)
			return -1;
		x_free(err);
		buf_free(&v->mem);
		if (e == EINVAL)
			return -2;
		v->kind = size_only ? FV_NUMBER : FV_NIL;
		return 0;
	}
	if (size_only) {
		v->kind = FV_NUMBER;
		v->number = v->mem.len;
		buf_free(&v->mem);
		return 0;
	}
	fetch_value_mem(v);
	fetch_apply_partial(it, v);
	v->literal8 = v->len > 0 &&
	    memchr(v->mem.data + v->off, '\0', (size_t)v->len) != NULL;
	return 0;
}

/* Opens the file and gets the summary when the items need them.
 * 0, 1 when the message is gone (skip it), -1 on errors. */
static int
fetch_prep_open(struct imap_session *s, struct imap_fetch_job *j,
    const struct imap_msg *m)
{
	char *err = NULL;
	struct stat st;

	if (j->need_file) {
		j->fd = store_msg_open(m->path);
		if (j->fd < 0 && errno == ENOENT)
			return 1;
		if (j->fd < 0 || fstat(j->fd, &st) < 0) {
			err = x_asprintf("open %s: %s", m->path,
			    strerror(errno));
			fetch_store_error(s, j, "message", &err);
			return -1;
		}
		j->fsize = st.st_size > 0 ? (uint64_t)st.st_size : 0;
	}
	if (j->need_summary) {
		if (store_msg_summary(s->store, s->view.name, m->uid, &j->sum,
		    &err) < 0) {
			if (errno == ENOENT) {
				x_free(&err);
				return 1;
			}
			fetch_store_error(s, j, "summary", &err);
			return -1;
		}
		j->have_summary = true;
	}
	return 0;
}

static int
fetch_prep_message(struct imap_session *s, struct imap_fetch_job *j)
{
	const struct imap_msg *m = &s->view.msgs[j->idx[j->pos]];
	int r = fetch_prep_open(s, j, m);

	for (size_t i = 0; r == 0 && i < j->nitems; i++) {
		const struct fetch_item *it = &j->items[i];
		char *err = NULL;
		if (it->kind == FK_SECTION)
			r = fetch_prep_section(j, it, &j->vals[i], &err);
		else if (it->kind == FK_BINARY || it->kind == FK_BINARY_SIZE)
			r = fetch_prep_binary(j, it, &j->vals[i], &err);
		if (r == -2) {
			fetch_fail(j, "NO", "[UNKNOWN-CTE] Cannot decode the "
			    "part's content transfer encoding");
		} else if (r < 0) {
			fetch_store_error(s, j, m->path, &err);
		}
	}
	return r < 0 ? -1 : r;
}

/* ---- writing ---- */

static void
fetch_write_date(struct buf *out, const char *name, time_t t)
{
	char date[32];

	imap_format_date_time(t, date);
	buf_printf(out, "%s \"%s\"", name, date);
}

static void
fetch_write_view(struct imap_session *s, const struct fetch_item *it,
    const struct imap_msg *m)
{
	struct buf *out = &s->out;

	switch (it->item) {
	case IMAP_FETCH_FLAGS:
		buf_puts(out, "FLAGS (");
		imap_flags_write(out, m->flags, m->keywords);
		buf_putc(out, ')');
		break;
	case IMAP_FETCH_INTERNALDATE:
		fetch_write_date(out, "INTERNALDATE", m->internaldate);
		break;
	case IMAP_FETCH_RFC822_SIZE:
		buf_printf(out, "RFC822.SIZE %" PRIu64, m->size);
		break;
	case IMAP_FETCH_UID:
		buf_printf(out, "UID %" PRIu32, m->uid);
		break;
	case IMAP_FETCH_MODSEQ:
		buf_printf(out, "MODSEQ (%" PRIu64 ")", m->modseq);
		break;
	case IMAP_FETCH_SAVEDATE:
		if (m->savedate == 0)
			buf_puts(out, "SAVEDATE NIL");
		else
			fetch_write_date(out, "SAVEDATE", m->savedate);
		break;
	default:
		/* EMAILID is refused by the parser. */
		buf_printf(out, "%s NIL", it->name);
		break;
	}
}

static void
fetch_write_summary(struct imap_fetch_job *j, const struct fetch_item *it,
    struct buf *out)
{
	const char *v = j->sum.bodystructure;

	if (it->item == IMAP_FETCH_ENVELOPE)
		v = j->sum.envelope;
	else if (it->item == IMAP_FETCH_BODY)
		v = j->sum.body;
	buf_printf(out, "%s %s", it->name, v != NULL ? v : "NIL");
}

/* Writes a prepared value; a literal's octets follow in fetch_stream. */
static void
fetch_write_value(struct imap_fetch_job *j, const struct fetch_item *it,
    const struct fetch_value *v, struct buf *out)
{
	buf_puts(out, it->name);
	switch (v->kind) {
	case FV_NONE:
	case FV_NIL:
		buf_puts(out, " NIL");
		return;
	case FV_NUMBER:
		buf_printf(out, " %" PRIu64, v->number);
		return;
	case FV_FILE:
	case FV_MEM:
		break;
	}
	if (v->len == 0) {
		buf_puts(out, " \"\"");
		return;
	}
	buf_printf(out, " %s{%" PRIu64 "}\r\n", v->literal8 ? "~" : "",
	    v->len);
	j->lit = v;
	j->lit_done = 0;
	j->lit_text = !v->literal8;
}

static void
fetch_write_item(struct imap_session *s, struct imap_fetch_job *j, size_t i)
{
	const struct fetch_item *it = &j->items[i];
	const struct imap_msg *m = &s->view.msgs[j->idx[j->pos]];

	if (it->if_seen_set && (j->seen_set == NULL || !j->seen_set[j->pos]))
		return;
	if (j->sep)
		buf_putc(&s->out, ' ');
	j->sep = true;
	if (it->kind == FK_VIEW)
		fetch_write_view(s, it, m);
	else if (it->kind == FK_SUMMARY)
		fetch_write_summary(j, it, &s->out);
	else
		fetch_write_value(j, it, &j->vals[i], &s->out);
}

/* Copies the next chunk of the literal being sent. */
static void
fetch_stream(struct imap_session *s, struct imap_fetch_job *j)
{
	const struct fetch_value *v = j->lit;
	uint64_t left = v->len - j->lit_done;
	size_t n = left < FETCH_CHUNK ? (size_t)left : FETCH_CHUNK;
	size_t start = s->out.len;
	char *err = NULL;

	if (v->kind == FV_MEM) {
		buf_append(&s->out, v->mem.data + v->off + j->lit_done, n);
	} else if (fetch_read_range(j->fd, v->off + j->lit_done, n, &s->out,
	    &err) < 0) {
		/* The literal's length is announced: keep the protocol in
		 * step with spaces, and say NO at the end. */
		fetch_store_error(s, j, "read", &err);
		n = (size_t)left;
		buf_reserve_total(&s->out, s->out.len + n);
		memset(s->out.data + s->out.len, ' ', n);
		s->out.len += n;
		s->out.data[s->out.len] = '\0';
	}
	if (j->lit_text)
		fetch_nul_to_space(s->out.data + start, s->out.len - start);
	j->lit_done += n;
	if (j->lit_done >= v->len)
		j->lit = NULL;
}

/* ---- the steps of a job ---- */

/* Starts the next message: \Seen, file, values, then its first line. */
static void
fetch_msg_begin(struct imap_session *s, struct imap_fetch_job *j)
{
	if (j->status != NULL || j->pos >= j->n ||
	    fetch_mark_seen(s, j) < 0) {
		fetch_finish(s, j);
		return;
	}
	int r = fetch_prep_message(s, j);
	if (r < 0) {
		fetch_finish(s, j);
		return;
	}
	if (r > 0) {
		j->expunge_issued = true;
		fetch_msg_clear(j);
		j->pos++;
		return;
	}
	buf_printf(&s->out, "* %zu FETCH (", j->idx[j->pos] + 1);
	j->in_msg = true;
}

static void
fetch_step(struct imap_session *s, struct imap_fetch_job *j)
{
	if (j->lit != NULL) {
		fetch_stream(s, j);
	} else if (!j->in_msg) {
		fetch_msg_begin(s, j);
	} else if (j->item < j->nitems) {
		fetch_write_item(s, j, j->item++);
	} else {
		buf_puts(&s->out, ")\r\n");
		fetch_msg_clear(j);
		j->pos++;
	}
}

/* Pool: writes up to about IMAP_JOB_OUTPUT octets of the FETCH. */
static void
fetch_work(struct imap_session *s)
{
	struct imap_fetch_job *j = s->fetch;

	if (!j->started && fetch_start(s, j) < 0)
		return;
	while (!j->finished && s->out.len < IMAP_JOB_OUTPUT)
		fetch_step(s, j);
}
