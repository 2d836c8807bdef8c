/* Flags, keywords, expunge and the expunged UIDs QRESYNC asks for.
 * Standard flags live in the file names too (renames first: if the
 * index update is lost, the next load reads them back from the names);
 * keywords only in the index. Untrusted input: keywords from clients
 * (store_keyword_ok). */
#include "store/store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/xmalloc.h"

/* ---- one message's flags ------------------------------------------------ */

/* A message's file as found now, with the flags its name has. */
struct store_file {
	int dirfd;
	char name[STORE_NAME_MAX + 1];
	unsigned flags;
};

/* 1 found, 0 the file is gone, -1 error. */
static int
store_file_find(const struct store_folder *f, struct store_lookup *lk,
    const struct store_row *row, struct store_file *file, char **error_r)
{
	int g = store_find_file(f, lk, row->base, row->flags, &file->dirfd,
	    file->name);

	if (g < 0)
		store_fail(error_r, errno, "%s: %s", f->dir, strerror(errno));
	if (g > 0) {
		const char *letters = store_name_letters(file->name);
		file->flags = letters != NULL ? store_flags_parse(letters) : 0;
	}
	return g;
}

/* Renames the file into cur/ with flags in its name (letters that are
 * not ours kept). */
static int
store_file_reflag(const struct store_folder *f, const struct store_row *row,
    const struct store_file *file, unsigned flags, char **error_r)
{
	char new[STORE_NAME_MAX + 1];

	if (store_name_build(new, row->base, row->baselen, flags,
	    store_name_letters(file->name)) < 0) {
		store_fail(error_r, ENAMETOOLONG, "file name too long");
		return -1;
	}
	if (file->dirfd == f->curfd && strcmp(file->name, new) == 0)
		return 0;
	if (store_rename_noreplace(file->dirfd, file->name, f->curfd,
	    new) < 0) {
		store_fail(error_r, errno, "%s: rename: %s", f->dir,
		    strerror(errno));
		return -1;
	}
	return 0;
}

static int
store_flags_write(struct store *st, struct store_mbox *mb, uint32_t uid,
    unsigned flags, char **error_r)
{
	sqlite3_stmt *s = store_sql(st, SQL_MSG_FLAGS);

	mb->highestmodseq++;
	store_bind_int(s, 1, mb->id);
	store_bind_int(s, 2, uid);
	store_bind_int(s, 3, flags);
	store_bind_int(s, 4, (int64_t)mb->highestmodseq);
	if (store_run(st, s, error_r) < 0)
		return -1;
	return store_mbox_update(st, mb, error_r);
}

static int
store_set_flags_locked(struct store *st, const struct store_folder *f,
    uint32_t uid, unsigned flags, char **error_r)
{
	struct store_lookup lk = { 0 };
	struct store_mbox mb;
	struct store_row row;
	struct store_file file;
	int r = -1;

	if (store_mbox_touch(st, f, &mb, error_r) < 0)
		return -1;
	int g = store_msg_get(st, mb.id, uid, &row, error_r);
	if (g == 0)
		store_fail(error_r, ENOENT, "no such message");
	if (g > 0) {
		g = store_file_find(f, &lk, &row, &file, error_r);
		if (g == 0)
			store_fail(error_r, ENOENT, "message file is gone");
	}
	if (g > 0 && store_file_reflag(f, &row, &file, flags, error_r) == 0)
		r = row.flags == flags && file.flags == flags ? 0 :
		    store_flags_write(st, &mb, uid, flags, error_r);
	store_lookup_free(&lk);
	store_row_free(&row);
	return r;
}

int
store_set_flags(struct store *st, const char *mailbox, uint32_t uid,
    unsigned flags, char **error_r)
{
	struct store_folder *f;
	int r = -1;

	flags &= STORE_F_ALL;
	if ((f = store_folder_open(st, mailbox, error_r)) == NULL)
		return -1;
	if (store_begin(st, error_r) == 0)
		r = store_finish(st, store_set_flags_locked(st, f, uid, flags,
		    error_r), error_r);
	return r;
}

/* ---- many messages (IMAP STORE) ----------------------------------------- */

struct store_update {
	struct store *st;
	const struct store_folder *f;
	const struct store_flag_update *u;
	struct store_mbox mb;
	struct store_kwset ks;
	const char **kws;	/* u's keywords in the mailbox's spelling */
	size_t nkws;
	uint64_t modseq;	/* of this update's changes */
	bool changed;
	struct store_lookup lk;
};

static unsigned
store_update_apply(enum store_flag_op op, unsigned old, unsigned flags)
{
	switch (op) {
	case STORE_FLAGS_SET: return flags;
	case STORE_FLAGS_ADD: return old | flags;
	case STORE_FLAGS_REMOVE: return old & ~flags;
	}
	return old;
}

static int
store_update_row(struct store_update *up, uint32_t uid, unsigned flags,
    const char *kw, char **error_r)
{
	sqlite3_stmt *s = store_sql(up->st, SQL_MSG_UPDATE);

	store_bind_int(s, 1, up->mb.id);
	store_bind_int(s, 2, uid);
	store_bind_int(s, 3, flags);
	store_bind_str(s, 4, kw);
	store_bind_int(s, 5, (int64_t)up->modseq);
	up->changed = true;
	return store_run(up->st, s, error_r);
}

/* The common case of a flag change, without a lookup: the file still
 * has the name the index knows (its base, the row's flags and no other
 * letters), and one rename does it. 1 renamed, 0 not under that name
 * (look it up), -1 error. */
static int
store_file_try_reflag(const struct store_folder *f,
    const struct store_row *row, unsigned flags, char **error_r)
{
	char old[STORE_NAME_MAX + 1], new[STORE_NAME_MAX + 1];

	if (flags == row->flags ||
	    store_name_build(old, row->base, row->baselen, row->flags,
	    NULL) < 0 ||
	    store_name_build(new, row->base, row->baselen, flags, NULL) < 0)
		return 0;
	if (store_rename_noreplace(f->curfd, old, f->curfd, new) == 0)
		return 1;
	if (errno == ENOENT)
		return 0;
	store_fail(error_r, errno, "%s: rename: %s", f->dir, strerror(errno));
	return -1;
}

/* Gives the message's file the flags u makes of the ones its name has
 * now (another Maildir reader may have renamed it since the last
 * load): *flags the result. 1, 0 when the file is gone, -1. */
static int
store_update_file(struct store_update *up, const struct store_row *row,
    unsigned *flags, char **error_r)
{
	const struct store_flag_update *u = up->u;
	struct store_file file;

	*flags = store_update_apply(u->op, row->flags, u->flags & STORE_F_ALL);
	int r = store_file_try_reflag(up->f, row, *flags, error_r);
	if (r != 0)
		return r;
	r = store_file_find(up->f, &up->lk, row, &file, error_r);
	if (r <= 0)
		return r;
	*flags = store_update_apply(u->op, file.flags, u->flags & STORE_F_ALL);
	return store_file_reflag(up->f, row, &file, *flags, error_r) < 0 ?
	    -1 : 1;
}

/* One message. */
static int
store_update_one(struct store_update *up, uint32_t uid,
    struct store_flag_result *res, char **error_r)
{
	const struct store_flag_update *u = up->u;
	struct store_row row;
	unsigned flags = 0;
	int r = store_msg_get(up->st, up->mb.id, uid, &row, error_r);

	res->uid = uid;
	if (r > 0 && (!u->has_unchangedsince ||
	    row.modseq <= u->unchangedsince))
		r = store_update_file(up, &row, &flags, error_r);
	else if (r > 0)
		res->modified = true;
	res->gone = r == 0;
	if (r <= 0)
		goto done;
	res->flags = row.flags;
	res->modseq = row.modseq;
	if (res->modified) {
		res->keywords = row.keywords;
		row.keywords = NULL;
		goto done;
	}
	res->keywords = store_kwlist_apply(row.keywords, u->op, up->kws,
	    up->nkws);
	if (flags != row.flags ||
	    !store_kwlist_equal(res->keywords, row.keywords)) {
		res->changed = true;
		res->flags = flags;
		res->modseq = up->modseq;
		r = store_update_row(up, uid, flags, res->keywords, error_r);
	}
done:
	store_row_free(&row);
	return r < 0 ? -1 : 0;
}

static int
store_update_locked(struct store_update *up, const uint32_t *uids, size_t n,
    struct store_flag_result *res, char **error_r)
{
	if (store_mbox_touch(up->st, up->f, &up->mb, error_r) < 0 ||
	    store_kwset_load(up->st, up->mb.id, &up->ks, error_r) < 0 ||
	    store_kwset_canon_all(up->st, &up->ks, up->u->keywords,
	    up->u->nkeywords, up->u->op != STORE_FLAGS_REMOVE, &up->kws,
	    &up->nkws, error_r) < 0)
		return -1;
	up->modseq = up->mb.highestmodseq + 1;
	for (size_t i = 0; i < n; i++)
		if (store_update_one(up, uids[i], &res[i], error_r) < 0)
			return -1;
	if (!up->changed)
		return 0;
	up->mb.highestmodseq = up->modseq;
	return store_mbox_update(up->st, &up->mb, error_r);
}

static int
store_update_check(const struct store_flag_update *u, char **error_r)
{
	for (size_t i = 0; i < u->nkeywords; i++) {
		if (!store_keyword_ok(u->keywords[i])) {
			store_fail(error_r, EINVAL, "invalid keyword");
			return -1;
		}
	}
	return 0;
}

int
store_update_flags(struct store *st, const char *mailbox,
    const uint32_t *uids, size_t n, const struct store_flag_update *u,
    struct store_flag_result *res, char **error_r)
{
	struct store_update up = { .st = st, .u = u };
	int r = -1;

	if (n > 0)
		memset(res, 0, n * sizeof(*res));
	if (store_update_check(u, error_r) < 0 ||
	    (up.f = store_folder_open(st, mailbox, error_r)) == NULL)
		return -1;
	if (store_begin(st, error_r) == 0)
		r = store_finish(st, store_update_locked(&up, uids, n, res,
		    error_r), error_r);
	if (r < 0 && n > 0) {
		store_flag_results_free(res, n);
		memset(res, 0, n * sizeof(*res));
	}
	store_lookup_free(&up.lk);
	store_kwset_free(&up.ks);
	free((void *)up.kws);
	return r;
}

void
store_flag_results_free(struct store_flag_result *res, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x_free(&res[i].keywords);
}

/* ---- expunge ------------------------------------------------------------ */

/* Which directories an expunge unlinked from, to fsync them. */
struct store_unlinked {
	bool cur;
	bool new;
};

/* Unlinks the file of one message, noting where in *u. */
static int
store_expunge_file(const struct store_folder *f, struct store_lookup *lk,
    const struct store_row *row, struct store_unlinked *u, char **error_r)
{
	char name[STORE_NAME_MAX + 1];
	int dirfd = f->curfd;

	/* First by the name the index knows: no lookup in the common case. */
	bool named = store_name_build(name, row->base, row->baselen,
	    row->flags, NULL) == 0;

	if (named && unlinkat(dirfd, name, 0) == 0) {
		u->cur = true;
		return 0;
	}
	if (named && errno != ENOENT) {
		store_fail(error_r, errno, "%s: unlink: %s", f->dir,
		    strerror(errno));
		return -1;
	}
	int r = store_find_file(f, lk, row->base, row->flags, &dirfd, name);

	if (r == 1 && unlinkat(dirfd, name, 0) == 0)
		*(dirfd == f->newfd ? &u->new : &u->cur) = true;
	else if (r == 1 && errno != ENOENT)
		r = -1;
	if (r < 0)
		store_fail(error_r, errno, "%s: unlink: %s", f->dir,
		    strerror(errno));
	return r < 0 ? -1 : 0;
}

/* The rows go with one new MODSEQ, which their vanished records keep. */
static int
store_expunge_rows(struct store *st, struct store_mbox *mb,
    const uint32_t *uids, size_t n, char **error_r)
{
	mb->highestmodseq++;
	for (size_t i = 0; i < n; i++) {
		sqlite3_stmt *s = store_sql(st, SQL_MSG_DELETE);
		store_bind_int(s, 1, mb->id);
		store_bind_int(s, 2, uids[i]);
		if (store_run(st, s, error_r) < 0 ||
		    store_vanished_add(st, mb->id, uids[i], mb->highestmodseq,
		    error_r) < 0)
			return -1;
	}
	return store_mbox_update(st, mb, error_r);
}

/* Unlinks first, then makes the unlinks durable, then forgets the rows:
 * after a crash a message is either still there with its UID, or gone
 * (its row removed by the next load), never back under a new UID. */
static int
store_expunge_locked(struct store *st, const struct store_folder *f,
    const uint32_t *uids, size_t n, char **error_r)
{
	struct store_lookup lk = { 0 };
	struct store_mbox mb;
	uint32_t *found = x_calloc(n ? n : 1, sizeof(*found));
	size_t nfound = 0;
	struct store_unlinked u = { false, false };
	int r = -1;

	if (store_mbox_touch(st, f, &mb, error_r) < 0)
		goto done;
	for (size_t i = 0; i < n; i++) {
		struct store_row row;
		int g = store_msg_get(st, mb.id, uids[i], &row, error_r);
		if (g > 0 && store_expunge_file(f, &lk, &row, &u, error_r) < 0)
			g = -1;
		store_row_free(&row);
		if (g < 0)
			goto done;
		if (g > 0)
			found[nfound++] = uids[i];
	}
	if ((u.cur && fsync(f->curfd) < 0) || (u.new && fsync(f->newfd) < 0)) {
		store_fail(error_r, errno, "%s: fsync: %s", f->dir,
		    strerror(errno));
		goto done;
	}
	r = nfound == 0 ? 0 : store_expunge_rows(st, &mb, found, nfound,
	    error_r);
done:
	store_lookup_free(&lk);
	x_free(&found);
	return r;
}

int
store_expunge(struct store *st, const char *mailbox, const uint32_t *uids,
    size_t n, char **error_r)
{
	struct store_folder *f;
	int r = -1;

	if ((f = store_folder_open(st, mailbox, error_r)) == NULL)
		return -1;
	if (store_begin(st, error_r) == 0)
		r = store_finish(st, store_expunge_locked(st, f, uids, n,
		    error_r), error_r);
	return r;
}

/* ---- vanished ----------------------------------------------------------- */

int
store_vanished_read(struct store *st, int64_t mbox_id, uint64_t since,
    uint32_t **uids, size_t *n, char **error_r)
{
	sqlite3_stmt *s = store_sql(st, SQL_VANISHED_LIST);
	size_t cap = 0;
	int rc;

	store_bind_int(s, 1, mbox_id);
	store_bind_int(s, 2, (int64_t)since);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			*uids = x_reallocarray(*uids, cap, sizeof(**uids));
		}
		(*uids)[(*n)++] = (uint32_t)sqlite3_column_int64(s, 0);
	}
	if (rc != SQLITE_DONE)
		store_db_error(st, error_r);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
store_vanished(struct store *st, const char *mailbox, uint64_t since_modseq,
    uint32_t **uids, size_t *n, char **error_r)
{
	struct store_folder *f;
	struct store_mbox mb;

	*uids = NULL;
	*n = 0;
	if ((f = store_folder_open(st, mailbox, error_r)) == NULL)
		return -1;
	int r = store_mbox_find(st, f->name, &mb, error_r);
	if (r > 0)
		r = store_vanished_read(st, mb.id, since_modseq, uids, n,
		    error_r);
	if (r < 0) {
		x_free(uids);
		*n = 0;
		return -1;
	}
	return 0;
}
