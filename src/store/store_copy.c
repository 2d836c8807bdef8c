/* New messages in a mailbox: APPEND, COPY, MOVE; and the MIME summary
 * cache. Durability as for delivery: a message file is fsync'd, and the
 * directory it is linked into too, before the index commits it (and the
 * client hears OK). Untrusted input: the message octets (only handed to
 * mime_summarize), keywords from clients (store_keyword_ok). */
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/xmalloc.h"
#include "store/maildir.h"
#include "store/mime.h"

#define STORE_NAME_TRIES	5

/* A message row about to be inserted. */
struct store_newmsg {
	uint32_t uid;
	const char *name;	/* the file's name in cur/ */
	unsigned flags;
	uint64_t modseq;
	uint64_t size;
	int64_t internaldate;
	const char *keywords;
	const struct mime_summary *sum;
};

static int
store_newmsg_insert(struct store *st, int64_t mbox_id,
    const struct store_newmsg *m, char **error_r)
{
	sqlite3_stmt *s = store_sql(st, SQL_MSG_INSERT);
	const char *colon = strchr(m->name, ':');

	store_bind_int(s, 1, mbox_id);
	store_bind_int(s, 2, m->uid);
	store_bind_text(s, 3, m->name, colon != NULL ?
	    (size_t)(colon - m->name) : strlen(m->name));
	store_bind_int(s, 4, m->flags);
	store_bind_int(s, 5, (int64_t)m->modseq);
	store_bind_int(s, 6, (int64_t)m->size);
	store_bind_int(s, 7, m->internaldate);
	store_bind_str(s, 8, m->keywords);
	store_bind_int(s, 9, (int64_t)time(NULL));
	if (m->sum != NULL && m->sum->envelope != NULL) {
		store_bind_str(s, 10, m->sum->envelope);
		store_bind_str(s, 11, m->sum->body);
		store_bind_str(s, 12, m->sum->bodystructure);
		store_bind_int(s, 13, (int64_t)m->sum->sentdate);
		store_bind_blob(s, 14, m->sum->hdrcache,
		    m->sum->hdrcache_len);
	}
	return store_run(st, s, error_r);
}

static int
store_uid_next(struct store_mbox *mb, uint32_t *uid, char **error_r)
{
	if (mb->uidnext == UINT32_MAX) {
		store_fail(error_r, EOVERFLOW, "index: UIDs exhausted");
		return -1;
	}
	*uid = mb->uidnext++;
	return 0;
}

/* A fresh name for cur/ of size octets with flags (and the letters of
 * keep that are not ours). */
static int
store_fresh_name(char *out, uint64_t size, unsigned flags, const char *keep,
    char **error_r)
{
	char uniq[STORE_NAME_MAX + 1];

	maildir_unique_name(uniq, sizeof(uniq), size);
	if (store_name_build(out, uniq, strlen(uniq), flags, keep) < 0) {
		store_fail(error_r, ENAMETOOLONG, "file name too long");
		return -1;
	}
	return 0;
}

static int
store_copy_bytes(int in, int out)
{
	char chunk[65536];

	for (;;) {
		ssize_t r = read(in, chunk, sizeof(chunk));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return (int)r;
		if (fs_write_all(out, chunk, (size_t)r) < 0)
			return -1;
	}
}

/* When a link cannot be made (another file system): a copy written to
 * dst's tmp/, fsync'd, with mtime as its internal date, then moved to
 * cur/NAME. 0 or -1 with errno. */
static int
store_copy_data(int srcdirfd, const char *src, const struct store_folder *dst,
    const char *name, time_t mtime)
{
	char *tmp = x_asprintf("%s/tmp/%s", dst->dir, name);
	struct timespec ts[2] = { { mtime, 0 }, { mtime, 0 } };
	int in = openat(srcdirfd, src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	int out = -1, r = -1, e;

	if (in >= 0)
		out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out >= 0 && store_copy_bytes(in, out) == 0 &&
	    futimens(out, ts) == 0 && fsync(out) == 0 &&
	    store_rename_noreplace(AT_FDCWD, tmp, dst->curfd, name) == 0)
		r = 0;
	e = errno;
	if (r < 0 && out >= 0)
		unlink(tmp);
	if (out >= 0)
		close(out);
	if (in >= 0)
		close(in);
	x_free(&tmp);
	errno = e;
	return r;
}

static bool
store_link_impossible(int e)
{
	return e == EXDEV || e == EPERM || e == EMLINK;
}

/* ---- the summary cache -------------------------------------------------- */

/* The cached summary of uid (fields NULL when not cached): 1, 0 no such
 * message, -1. */
static int
store_summary_get(struct store *st, int64_t mbox_id, uint32_t uid,
    struct mime_summary *out, char **error_r)
{
	sqlite3_stmt *s = store_sql(st, SQL_SUMMARY_GET);

	memset(out, 0, sizeof(*out));
	store_bind_int(s, 1, mbox_id);
	store_bind_int(s, 2, uid);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		out->envelope = store_column_str(s, 0);
		out->body = store_column_str(s, 1);
		out->bodystructure = store_column_str(s, 2);
		out->sentdate = (time_t)sqlite3_column_int64(s, 3);
		out->hdrcache = store_column_blob(s, 4, &out->hdrcache_len);
	} else if (rc != SQLITE_DONE) {
		store_db_error(st, error_r);
	}
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* Opens the file of uid: an fd, or -1 (errno ENOENT: no such message). */
static int
store_msg_file_open(struct store *st, const struct store_folder *f,
    int64_t mbox_id, uint32_t uid, char **error_r)
{
	struct store_lookup lk = { 0 };
	struct store_row row;
	char name[STORE_NAME_MAX + 1];
	int dirfd, fd = -1;
	int r = store_msg_get(st, mbox_id, uid, &row, error_r);

	if (r > 0) {
		r = store_find_file(f, &lk, row.base, row.flags, &dirfd, name);
		if (r > 0 && (fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW |
		    O_CLOEXEC)) < 0)
			r = errno == ENOENT ? 0 : -1;
		if (r < 0)
			store_fail(error_r, errno, "%s: %s", f->dir,
			    strerror(errno));
	}
	if (r == 0)
		store_fail(error_r, ENOENT, "no such message");
	store_lookup_free(&lk);
	store_row_free(&row);
	return fd;
}

/* Computes the summary from the message file. */
static int
store_summary_compute(struct store *st, const struct store_folder *f,
    int64_t mbox_id, uint32_t uid, struct mime_summary *out,
    char **error_r)
{
	int fd = store_msg_file_open(st, f, mbox_id, uid, error_r);

	if (fd < 0)
		return -1;
	int r = mime_summarize(fd, out, error_r);
	close(fd);
	return r;
}

int
store_hdrcache_compute(struct store *st, const struct store_folder *f,
    int64_t mbox_id, uint32_t uid, char **cache_r, size_t *len_r,
    char **error_r)
{
	struct mime_summary sum;

	*cache_r = NULL;
	*len_r = 0;
	memset(&sum, 0, sizeof(sum));
	if (store_summary_compute(st, f, mbox_id, uid, &sum, error_r) < 0)
		return -1;
	*cache_r = sum.hdrcache;
	*len_r = sum.hdrcache_len;
	sum.hdrcache = NULL;
	mime_summary_free(&sum);
	return 0;
}

/* Computes a summary missing from the index and keeps it there. */
static int
store_summary_fill_one(struct store *st, const char *name, int64_t mbox_id,
    uint32_t uid, struct mime_summary *out, char **error_r)
{
	const struct store_folder *f = store_folder_cached(st, name, error_r);
	char *err = NULL;

	if (f == NULL ||
	    store_summary_compute(st, f, mbox_id, uid, out, error_r) < 0)
		return -1;
	/* Only a cache: failing to keep it fails nothing. */
	if (store_begin(st, &err) == 0)
		(void)store_finish(st, store_summary_set(st, mbox_id, uid, out,
		    &err), &err);
	if (err != NULL)
		log_warnx("store: caching a summary: %s", err);
	x_free(&err);
	return 0;
}

/* The cached summary by mailbox name, in one statement: 1 with *mbox_id
 * (fields NULL when not cached), 0 no such message (or mailbox), -1. */
static int
store_summary_by_name(struct store *st, const char *name, uint32_t uid,
    struct mime_summary *out, int64_t *mbox_id, char **error_r)
{
	sqlite3_stmt *s = store_sql(st, SQL_SUMMARY_BY_NAME);

	store_bind_text(s, 1, name, strlen(name));
	store_bind_int(s, 2, uid);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		out->envelope = store_column_str(s, 0);
		out->body = store_column_str(s, 1);
		out->bodystructure = store_column_str(s, 2);
		out->sentdate = (time_t)sqlite3_column_int64(s, 3);
		*mbox_id = sqlite3_column_int64(s, 4);
	} else if (rc != SQLITE_DONE) {
		store_db_error(st, error_r);
	}
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* The common case (a summary cached at delivery or load) is one indexed
 * lookup: no folder, no file, no transaction. */
int
store_msg_summary(struct store *st, const char *mailbox, uint32_t uid,
    struct mime_summary *out, char **error_r)
{
	const char *name = store_name_resolve(st, mailbox, error_r);
	int64_t mbox_id = 0;
	int r = -1;

	memset(out, 0, sizeof(*out));
	if (name == NULL)
		return -1;
	r = store_summary_by_name(st, name, uid, out, &mbox_id, error_r);
	if (r == 0)
		store_fail(error_r, ENOENT, "no such message");
	if (r > 0 && out->envelope == NULL) {
		mime_summary_free(out);
		char *copy = x_strdup(name);
		r = store_summary_fill_one(st, copy, mbox_id, uid, out,
		    error_r) < 0 ? -1 : 1;
		x_free(&copy);
	}
	if (r <= 0) {
		mime_summary_free(out);
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 0;
}

/* ---- APPEND ------------------------------------------------------------- */

int
store_append_begin(struct store *st, char **path_r, char **error_r)
{
	return store_append_begin_at(st->root, path_r, error_r);
}

int
store_append_begin_at(const char *root, char **path_r, char **error_r)
{
	char name[STORE_NAME_MAX + 1];

	*path_r = NULL;
	for (int attempt = 0; attempt < STORE_NAME_TRIES; attempt++) {
		maildir_unique_name(name, sizeof(name), 0);
		char *path = x_asprintf("%s/tmp/%s", root, name);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
		if (fd >= 0) {
			*path_r = path;
			return fd;
		}
		int e = errno;
		x_free(&path);
		/* tmp/ removed behind our back: make it again. */
		if (e == ENOENT && attempt == 0 &&
		    maildir_create(root) == 0)
			continue;
		if (e != EEXIST) {
			store_fail(error_r, e, "%s/tmp: %s", root,
			    strerror(e));
			return -1;
		}
	}
	store_fail(error_r, EEXIST, "%s/tmp: no unique name", root);
	return -1;
}

void
store_append_abort(const char *tmp_path)
{
	int e = errno;	/* callers report the failure that got them here */

	if (tmp_path != NULL && unlink(tmp_path) < 0 && errno != ENOENT)
		log_warn("store: %s: unlink", tmp_path);
	errno = e;
}

/* tmp_path must be what store_append_begin made: a file directly in the
 * root's tmp/. */
static bool
store_append_path_ok(const struct store *st, const char *tmp_path)
{
	size_t n = strlen(st->root);

	if (strncmp(tmp_path, st->root, n) != 0 ||
	    strncmp(tmp_path + n, "/tmp/", 5) != 0)
		return false;
	const char *name = tmp_path + n + 5;
	return strchr(name, '/') == NULL && store_file_name_ok(name);
}

/* The file prepared for commit: fsync'd with its internal date set. */
struct store_append {
	const char *tmp_path;
	int fd;
	uint64_t size;
	time_t date;
	unsigned flags;
	const char *const *keywords;
	size_t nkeywords;
	struct mime_summary sum;
	char name[STORE_NAME_MAX + 1];	/* in cur/, once moved there */
};

static int
store_append_prepare(struct store_append *ap, char **error_r)
{
	struct stat sb;
	struct timespec ts[2] = { { ap->date, 0 }, { ap->date, 0 } };
	char *err = NULL;

	ap->fd = open(ap->tmp_path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (ap->fd < 0 || fstat(ap->fd, &sb) < 0 || !S_ISREG(sb.st_mode) ||
	    futimens(ap->fd, ts) < 0 || fsync(ap->fd) < 0) {
		store_fail(error_r, errno, "%s: %s", ap->tmp_path,
		    strerror(errno));
		return -1;
	}
	ap->size = (uint64_t)sb.st_size;
	if (mime_summarize(ap->fd, &ap->sum, &err) < 0) {
		log_debug("store: summary of %s: %s", ap->tmp_path, err);
		mime_summary_free(&ap->sum);
		memset(&ap->sum, 0, sizeof(ap->sum));
	}
	x_free(&err);
	return 0;
}

/* tmp/ to cur/ under a fresh name; a copy across file systems. */
static int
store_append_move(struct store_append *ap, const struct store_folder *f,
    char **error_r)
{
	for (int attempt = 0; attempt < STORE_NAME_TRIES; attempt++) {
		if (store_fresh_name(ap->name, ap->size, ap->flags, NULL,
		    error_r) < 0)
			break;
		int r = store_rename_noreplace(AT_FDCWD, ap->tmp_path,
		    f->curfd, ap->name);
		if (r < 0 && store_link_impossible(errno) &&
		    (r = store_copy_data(AT_FDCWD, ap->tmp_path, f, ap->name,
		    ap->date)) == 0)
			store_append_abort(ap->tmp_path);
		if (r == 0)
			return 0;
		if (errno != EEXIST) {
			store_fail(error_r, errno, "%s: %s", f->dir,
			    strerror(errno));
			break;
		}
	}
	ap->name[0] = '\0';
	return -1;
}

static int
store_append_locked(struct store *st, const struct store_folder *f,
    struct store_append *ap, uint32_t *uidvalidity_r, uint32_t *uid_r,
    char **error_r)
{
	struct store_kwset ks = { 0 };
	struct store_mbox mb;
	const char **kws = NULL;
	size_t nkws;
	char *kw = NULL;
	struct store_newmsg m = { .flags = ap->flags, .size = ap->size,
	    .internaldate = (int64_t)ap->date, .sum = &ap->sum };
	int r = -1;

	if (store_mbox_touch(st, f, &mb, error_r) < 0 ||
	    store_kwset_load(st, mb.id, &ks, error_r) < 0 ||
	    store_kwset_canon_all(st, &ks, ap->keywords, ap->nkeywords, true,
	    &kws, &nkws, error_r) < 0 ||
	    store_uid_next(&mb, &m.uid, error_r) < 0 ||
	    store_append_move(ap, f, error_r) < 0)
		goto done;
	if (fsync(f->curfd) < 0) {
		store_fail(error_r, errno, "%s/cur: fsync: %s", f->dir,
		    strerror(errno));
		goto done;
	}
	kw = store_kwlist_apply(NULL, STORE_FLAGS_ADD, kws, nkws);
	m.name = ap->name;
	m.keywords = kw;
	m.modseq = ++mb.highestmodseq;
	if (store_newmsg_insert(st, mb.id, &m, error_r) < 0 ||
	    store_mbox_update(st, &mb, error_r) < 0)
		goto done;
	*uidvalidity_r = mb.uidvalidity;
	*uid_r = m.uid;
	r = 0;
done:
	x_free(&kw);
	free((void *)kws);
	store_kwset_free(&ks);
	return r;
}

static int
store_append_check(const struct store *st, const char *tmp_path,
    const char *const *keywords, size_t n, char **error_r)
{
	if (!store_append_path_ok(st, tmp_path)) {
		store_fail(error_r, EINVAL, "not an APPEND file");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (!store_keyword_ok(keywords[i])) {
			store_fail(error_r, EINVAL, "invalid keyword");
			return -1;
		}
	}
	return 0;
}

int
store_append_commit(struct store *st, const char *mailbox,
    const char *tmp_path, unsigned flags, const char *const *keywords,
    size_t nkeywords, time_t internaldate, uint32_t *uidvalidity_r,
    uint32_t *uid_r, char **error_r)
{
	struct store_folder *f = NULL;
	struct store_append ap = { .tmp_path = tmp_path, .fd = -1,
	    .date = internaldate != 0 ? internaldate : time(NULL),
	    .flags = flags & STORE_F_ALL, .keywords = keywords,
	    .nkeywords = nkeywords };
	int r = -1;

	if (store_append_check(st, tmp_path, keywords, nkeywords,
	    error_r) < 0 ||
	    store_append_prepare(&ap, error_r) < 0 ||
	    (f = store_folder_open(st, mailbox, error_r)) == NULL ||
	    store_durable(st, true, error_r) < 0)
		goto done;
	if (store_begin(st, error_r) == 0)
		r = store_finish(st, store_append_locked(st, f, &ap,
		    uidvalidity_r, uid_r, error_r), error_r);
	(void)store_durable(st, false, NULL);
	/* Not indexed: the client hears NO, so the file must not turn up
	 * later as a message. */
	if (r < 0 && ap.name[0] != '\0' && unlinkat(f->curfd, ap.name, 0) < 0)
		log_warn("store: %s/cur/%s: unlink", f->dir, ap.name);
done:
	if (r < 0 && store_append_path_ok(st, tmp_path))
		store_append_abort(tmp_path);
	if (ap.fd >= 0)
		close(ap.fd);
	mime_summary_free(&ap.sum);
	return r;
}

/* ---- COPY and MOVE ------------------------------------------------------ */

/* A file made in the destination for a source file. */
struct store_made {
	int src_dirfd;
	char src[STORE_NAME_MAX + 1];
	char dst[STORE_NAME_MAX + 1];
	uint32_t src_uid;
};

struct store_copier {
	struct store *st;
	const struct store_folder *src;
	const struct store_folder *dst;
	struct store_mbox smb;
	struct store_mbox dmb_own;
	struct store_mbox *dmb;	/* &smb when both are one mailbox */
	struct store_kwset dks;
	struct store_lookup lk;
	uint64_t dmodseq;
	struct store_made *made;
	size_t nmade;
};

/* Links (or copies) the file to a fresh name in dst's cur/. */
static int
store_copy_link(struct store_copier *c, const struct store_row *row,
    struct store_made *m, unsigned flags, char **error_r)
{
	for (int attempt = 0; attempt < STORE_NAME_TRIES; attempt++) {
		if (store_fresh_name(m->dst, row->size, flags,
		    store_name_letters(m->src), error_r) < 0)
			return -1;
		int r = linkat(m->src_dirfd, m->src, c->dst->curfd, m->dst, 0);
		if (r < 0 && store_link_impossible(errno))
			r = store_copy_data(m->src_dirfd, m->src, c->dst,
			    m->dst, (time_t)row->internaldate);
		if (r == 0)
			return 0;
		if (errno != EEXIST)
			break;
	}
	store_fail(error_r, errno, "%s: %s", c->dst->dir, strerror(errno));
	return -1;
}

static int
store_copy_insert(struct store_copier *c, const struct store_row *row,
    const struct store_made *m, unsigned flags, uint32_t uid,
    char **error_r)
{
	struct mime_summary sum;
	char *kw = NULL;
	struct store_newmsg nm = { .uid = uid, .name = m->dst,
	    .flags = flags, .modseq = c->dmodseq, .size = row->size,
	    .internaldate = row->internaldate, .sum = &sum };
	int r = store_summary_get(c->st, c->smb.id, row->uid, &sum, error_r);

	if (r > 0)
		r = store_kwlist_canon(c->st, &c->dks, row->keywords, &kw,
		    error_r);
	nm.keywords = kw;
	if (r == 0)
		r = store_newmsg_insert(c->st, c->dmb->id, &nm, error_r);
	x_free(&kw);
	mime_summary_free(&sum);
	return r < 0 ? -1 : 0;
}

/* One message: skipped (0) when it is gone. */
static int
store_copy_one(struct store_copier *c, uint32_t uid, uint32_t *dst_uid,
    char **error_r)
{
	struct store_row row;
	struct store_made *m = &c->made[c->nmade];
	int r = store_msg_get(c->st, c->smb.id, uid, &row, error_r);

	if (r > 0) {
		r = store_find_file(c->src, &c->lk, row.base, row.flags,
		    &m->src_dirfd, m->src);
		if (r < 0)
			store_fail(error_r, errno, "%s: %s", c->src->dir,
			    strerror(errno));
	}
	if (r > 0) {
		const char *letters = store_name_letters(m->src);
		unsigned flags = letters != NULL ?
		    store_flags_parse(letters) : 0;
		m->src_uid = uid;
		if (store_uid_next(c->dmb, dst_uid, error_r) < 0 ||
		    store_copy_link(c, &row, m, flags, error_r) < 0)
			r = -1;
		/* Counted before the insert: a failure undoes the link. */
		if (r > 0)
			c->nmade++;
		if (r > 0 && store_copy_insert(c, &row, m, flags, *dst_uid,
		    error_r) < 0)
			r = -1;
	}
	store_row_free(&row);
	return r;
}

/* MOVE's second half: the source files go (durably) and their rows with
 * one MODSEQ kept in vanished records. */
static int
store_copy_expunge(struct store_copier *c, char **error_r)
{
	const struct store_folder *f = c->src;
	bool cur = false, new = false;
	uint64_t modseq = c->smb.highestmodseq + 1;

	for (size_t i = 0; i < c->nmade; i++) {
		struct store_made *m = &c->made[i];
		if (unlinkat(m->src_dirfd, m->src, 0) < 0 && errno != ENOENT) {
			store_fail(error_r, errno, "%s: unlink: %s", f->dir,
			    strerror(errno));
			return -1;
		}
		*(m->src_dirfd == f->newfd ? &new : &cur) = true;
	}
	if ((cur && fsync(f->curfd) < 0) || (new && fsync(f->newfd) < 0)) {
		store_fail(error_r, errno, "%s: fsync: %s", f->dir,
		    strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < c->nmade; i++) {
		sqlite3_stmt *s = store_sql(c->st, SQL_MSG_DELETE);
		store_bind_int(s, 1, c->smb.id);
		store_bind_int(s, 2, c->made[i].src_uid);
		if (store_run(c->st, s, error_r) < 0 ||
		    store_vanished_add(c->st, c->smb.id, c->made[i].src_uid,
		    modseq, error_r) < 0)
			return -1;
	}
	c->smb.highestmodseq = modseq;
	return 0;
}

static int
store_copy_setup(struct store_copier *c, char **error_r)
{
	if (store_mbox_touch(c->st, c->src, &c->smb, error_r) < 0)
		return -1;
	c->dmb = &c->smb;
	if (strcmp(c->src->name, c->dst->name) != 0) {
		c->dmb = &c->dmb_own;
		if (store_mbox_touch(c->st, c->dst, c->dmb, error_r) < 0)
			return -1;
	}
	c->dmodseq = c->dmb->highestmodseq + 1;
	return store_kwset_load(c->st, c->dmb->id, &c->dks, error_r);
}

/* Copies, then makes the new links durable; a MOVE then removes the
 * sources. Until the sources go, a failure removes the new files again;
 * after, they stay (the next load indexes them): never lost. */
static int
store_copy_run(struct store_copier *c, const uint32_t *uids, size_t n,
    bool move, uint32_t *src_uids, uint32_t *dst_uids, char **error_r)
{
	for (size_t i = 0; i < n; i++) {
		size_t k = c->nmade;
		if (store_copy_one(c, uids[i], &dst_uids[k], error_r) < 0)
			goto undo;
		if (c->nmade > k)
			src_uids[k] = uids[i];
	}
	if (c->nmade == 0)
		return 0;
	if (fsync(c->dst->curfd) < 0) {
		store_fail(error_r, errno, "%s/cur: fsync: %s", c->dst->dir,
		    strerror(errno));
		goto undo;
	}
	if (move && store_copy_expunge(c, error_r) < 0)
		return -1;
	if (c->dmb->highestmodseq < c->dmodseq)
		c->dmb->highestmodseq = c->dmodseq;
	if (store_mbox_update(c->st, c->dmb, error_r) < 0 ||
	    (c->dmb != &c->smb && move &&
	    store_mbox_update(c->st, &c->smb, error_r) < 0))
		return -1;
	return 0;
undo:
	for (size_t i = 0; i < c->nmade; i++)
		if (unlinkat(c->dst->curfd, c->made[i].dst, 0) < 0)
			log_warn("store: %s/cur: unlink", c->dst->dir);
	return -1;
}

int
store_copy_locked(struct store *st, const struct store_folder *src,
    const struct store_folder *dst, const uint32_t *uids, size_t n,
    bool move, uint32_t *uidvalidity_r, uint32_t *src_uids,
    uint32_t *dst_uids, size_t *ncopied, char **error_r)
{
	struct store_copier c = { .st = st, .src = src, .dst = dst };
	int r = -1;

	*ncopied = 0;
	c.made = x_calloc(n + 1, sizeof(*c.made));
	if (store_copy_setup(&c, error_r) == 0 &&
	    store_copy_run(&c, uids, n, move, src_uids, dst_uids,
	    error_r) == 0) {
		*uidvalidity_r = c.dmb->uidvalidity;
		*ncopied = c.nmade;
		r = 0;
	}
	store_kwset_free(&c.dks);
	store_lookup_free(&c.lk);
	x_free(&c.made);
	return r;
}

int
store_copy(struct store *st, const char *from, const char *to,
    const uint32_t *uids, size_t n, bool move, uint32_t *uidvalidity_r,
    uint32_t *src_uids, uint32_t *dst_uids, size_t *ncopied,
    char **error_r)
{
	struct store_folder *src, *dst;
	int r = -1;

	*ncopied = 0;
	/* The folder got last is never reused by the next get: src stays. */
	if ((src = store_folder_open(st, from, error_r)) == NULL ||
	    (dst = store_folder_open(st, to, error_r)) == NULL ||
	    store_durable(st, true, error_r) < 0)
		return -1;
	if (store_begin(st, error_r) == 0)
		r = store_finish(st, store_copy_locked(st, src, dst, uids, n,
		    move, uidvalidity_r, src_uids, dst_uids, ncopied, error_r),
		    error_r);
	(void)store_durable(st, false, NULL);
	if (r < 0)
		*ncopied = 0;
	return r;
}
