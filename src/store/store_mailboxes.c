/* Mailboxes: their index rows and Maildir++ folders; LIST, CREATE,
 * DELETE, RENAME, SUBSCRIBE and STATUS. Untrusted input: mailbox names
 * from clients, checked by store_mailbox_name_ok and then only ever
 * turned into one entry of the root (store_name_folder), never a path
 * with a "/" of the client's; and the folder entries found in the root.
 *
 * Folder changes happen inside a BEGIN IMMEDIATE transaction, and a
 * folder's directory entry is made durable (fsync of the root) before
 * the index commits. */
#include "store/store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/xmalloc.h"
#include "store/maildir.h"

/* ---- rows --------------------------------------------------------------- */

/* Never a value this user's index has handed out before, and normally the
 * time of creation (RFC 9051 2.3.1.1). */
static int
store_uidvalidity_new(struct store *st, uint32_t *out, char **error_r)
{
	sqlite3_stmt *s = store_sql(st, SQL_UIDVALIDITY_LAST);

	if (sqlite3_step(s) != SQLITE_ROW) {
		store_db_error(st, error_r);
		sqlite3_reset(s);
		return -1;
	}
	int64_t last = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	int64_t v = (int64_t)time(NULL);
	if (v <= last)
		v = last + 1;
	if (v <= 0 || v > (int64_t)UINT32_MAX) {
		store_fail(error_r, EOVERFLOW, "index: UIDVALIDITY exhausted");
		return -1;
	}
	s = store_sql(st, SQL_UIDVALIDITY_SET);
	store_bind_int(s, 1, v);
	if (store_run(st, s, error_r) < 0)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int
store_mbox_insert(struct store *st, const char *name, unsigned special,
    struct store_mbox *mb, char **error_r)
{
	if (store_uidvalidity_new(st, &mb->uidvalidity, error_r) < 0)
		return -1;
	sqlite3_stmt *s = store_sql(st, SQL_MBOX_INSERT);
	store_bind_text(s, 1, name, strlen(name));
	store_bind_int(s, 2, mb->uidvalidity);
	store_bind_int(s, 3, special);
	if (store_run(st, s, error_r) < 0)
		return -1;
	mb->id = sqlite3_last_insert_rowid(st->db);
	mb->uidnext = 1;
	mb->highestmodseq = 1;
	mb->special = special;
	return 0;
}

int
store_mbox_find(struct store *st, const char *name, struct store_mbox *mb,
    char **error_r)
{
	sqlite3_stmt *s = store_sql(st, SQL_MBOX_GET);

	store_bind_text(s, 1, name, strlen(name));
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		mb->id = sqlite3_column_int64(s, 0);
		mb->uidvalidity = (uint32_t)sqlite3_column_int64(s, 1);
		mb->uidnext = (uint32_t)sqlite3_column_int64(s, 2);
		mb->highestmodseq = (uint64_t)sqlite3_column_int64(s, 3);
		mb->special = (unsigned)sqlite3_column_int(s, 4);
	} else if (rc != SQLITE_DONE) {
		store_db_error(st, error_r);
	}
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* A folder whose row is missing (a Maildir moved in) is indexed as a new
 * mailbox. */
int
store_mbox_get(struct store *st, const char *name, struct store_mbox *mb,
    char **error_r)
{
	int r = store_mbox_find(st, name, mb, error_r);

	if (r != 0)
		return r < 0 ? -1 : 0;
	return store_mbox_insert(st, name, 0, mb, error_r);
}

int
store_mbox_update(struct store *st, const struct store_mbox *mb,
    char **error_r)
{
	sqlite3_stmt *s = store_sql(st, SQL_MBOX_UPDATE);

	store_bind_int(s, 1, mb->id);
	store_bind_int(s, 2, mb->uidnext);
	store_bind_int(s, 3, (int64_t)mb->highestmodseq);
	return store_run(st, s, error_r);
}

int
store_mbox_drop(struct store *st, int64_t id, char **error_r)
{
	static const enum store_sql q[] = { SQL_MBOX_DROP_MSGS,
	    SQL_MBOX_DROP_VANISHED, SQL_MBOX_DROP_KEYWORDS, SQL_MBOX_DROP };

	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		sqlite3_stmt *s = store_sql(st, q[i]);
		store_bind_int(s, 1, id);
		if (store_run(st, s, error_r) < 0)
			return -1;
	}
	return 0;
}

/* ---- folders ------------------------------------------------------------ */

/* Every call of the IMAP session names its mailbox, and most (a FETCH's
 * summaries, one per message) need nothing but the index: resolving the
 * name, opening the folder and making sure its directories exist used
 * to cost ~30 failed mkdir(2) and 3 open(2) per call. Folders now stay
 * open in the store; a check costs two stat(2), and directories are
 * made only when an open finds them missing. */

const char *
store_name_resolve(struct store *st, const char *mailbox, char **error_r)
{
	/* The normalized name given back (it may be freed below). */
	if (mailbox == st->name_norm ||
	    (st->name_in != NULL && strcmp(st->name_in, mailbox) == 0))
		return st->name_norm;
	if (!store_mailbox_name_ok(mailbox)) {
		store_fail(error_r, EINVAL, "invalid mailbox name");
		return NULL;
	}
	x_free(&st->name_in);
	x_free(&st->name_norm);
	st->name_in = x_strdup(mailbox);
	st->name_norm = store_name_normalize(mailbox);
	return st->name_norm;
}

static void
store_folder_clear(struct store_folder *f)
{
	if (f->curfd >= 0)
		close(f->curfd);
	if (f->newfd >= 0)
		close(f->newfd);
	x_free(&f->name);
	x_free(&f->dir);
	x_free(&f->curpath);
	x_free(&f->newpath);
	memset(f, 0, sizeof(*f));
	f->curfd = f->newfd = -1;
}

void
store_folders_forget(struct store *st)
{
	int e = errno;

	for (size_t i = 0; i < STORE_FOLDERS; i++)
		store_folder_clear(&st->folders[i]);
	store_snap_free(&st->snap);
	errno = e;
}

/* Opens the subdirectory sub of dirfd, making it when it is missing. */
static int
store_subdir_open(int dirfd, const char *sub)
{
	int fd = openat(dirfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0 || errno != ENOENT)
		return fd;
	if (mkdirat(dirfd, sub, 0700) < 0 && errno != EEXIST)
		return -1;
	return openat(dirfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* The folder's directory: INBOX's root is made when missing; another
 * mailbox's must exist (symlinks are followed, as LIST counts them). */
static int
store_dir_open(const struct store_folder *f, bool inbox, char **error_r)
{
	int fd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT && inbox &&
	    fs_mkdir_p(f->dir, 0700) == 0)
		fd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	if (!inbox && (errno == ENOENT || errno == ENOTDIR))
		store_fail(error_r, ENOENT, "no such mailbox");
	else
		store_fail(error_r, errno, "%s: %s", f->dir, strerror(errno));
	return -1;
}

/* Opens the Maildir of the normalized name into f (a cleared slot). */
static int
store_folder_load(struct store *st, const char *name, struct store_folder *f,
    char **error_r)
{
	struct stat sb;
	bool inbox = store_name_is_inbox(name);

	f->name = x_strdup(name);
	if (inbox) {
		f->dir = x_strdup(st->root);
	} else {
		char *folder = store_name_folder(name);
		f->dir = x_asprintf("%s/%s", st->root, folder);
		x_free(&folder);
	}
	f->curpath = x_asprintf("%s/cur", f->dir);
	f->newpath = x_asprintf("%s/new", f->dir);
	int dfd = store_dir_open(f, inbox, error_r);
	if (dfd < 0)
		goto fail;
	f->curfd = store_subdir_open(dfd, "cur");
	f->newfd = store_subdir_open(dfd, "new");
	int tmp = fstatat(dfd, "tmp", &sb, 0) == 0 || (errno == ENOENT &&
	    (mkdirat(dfd, "tmp", 0700) == 0 || errno == EEXIST)) ? 0 : -1;
	close(dfd);
	if (f->curfd < 0 || f->newfd < 0 || tmp < 0 ||
	    fstat(f->curfd, &f->cur_st) < 0 || fstat(f->newfd, &f->new_st) < 0) {
		store_fail(error_r, errno, "%s: %s", f->dir, strerror(errno));
		goto fail;
	}
	return 0;
fail:
	store_folder_clear(f);
	return -1;
}

static bool
store_same_dir(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Still the folder at its path? cur/ and new/ as named now must be the
 * directories open: a folder deleted, renamed or replaced by another
 * process fails this. The open descriptors keep the old inodes alive,
 * so their numbers cannot have been reused. Leaves the fresh stats in
 * f. */
static bool
store_folder_check(struct store_folder *f)
{
	struct stat cur, new;

	if (stat(f->curpath, &cur) < 0 || stat(f->newpath, &new) < 0 ||
	    !store_same_dir(&cur, &f->cur_st) ||
	    !store_same_dir(&new, &f->new_st))
		return false;
	f->cur_st = cur;
	f->new_st = new;
	return true;
}

/* The slot for name: its own, or the least recently used (never the one
 * got last, which a caller may still hold). */
static struct store_folder *
store_folder_slot(struct store *st, const char *name, bool *found)
{
	struct store_folder *lru = &st->folders[0];

	for (size_t i = 0; i < STORE_FOLDERS; i++) {
		struct store_folder *f = &st->folders[i];
		if (f->name != NULL && strcmp(f->name, name) == 0) {
			*found = true;
			return f;
		}
		if (f->name == NULL || (lru->name != NULL &&
		    f->used < lru->used))
			lru = f;
	}
	*found = false;
	return lru;
}

static struct store_folder *
store_folder_get(struct store *st, const char *mailbox, bool check,
    char **error_r)
{
	bool found;
	const char *name = store_name_resolve(st, mailbox, error_r);

	if (name == NULL)
		return NULL;
	struct store_folder *f = store_folder_slot(st, name, &found);
	f->used = ++st->tick;
	if (found && (!check || store_folder_check(f)))
		return f;
	char *copy = x_strdup(name);
	store_folder_clear(f);
	int r = store_folder_load(st, copy, f, error_r);
	x_free(&copy);
	if (r < 0)
		return NULL;
	f->used = st->tick;
	return f;
}

struct store_folder *
store_folder_open(struct store *st, const char *mailbox, char **error_r)
{
	return store_folder_get(st, mailbox, true, error_r);
}

struct store_folder *
store_folder_cached(struct store *st, const char *mailbox, char **error_r)
{
	return store_folder_get(st, mailbox, false, error_r);
}

static int
store_rmtree_depth(int dirfd, const char *name, int depth)
{
	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -1;
	if (depth >= 16) {
		errno = ELOOP;
		return -1;
	}
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (d == NULL) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		errno = e;
		return e == ENOENT ? 0 : -1;
	}
	struct dirent *ent;
	int r = 0;
	while ((ent = readdir(d)) != NULL)
		if (strcmp(ent->d_name, ".") != 0 &&
		    strcmp(ent->d_name, "..") != 0 &&
		    store_rmtree_depth(fd, ent->d_name, depth + 1) < 0)
			r = -1;
	closedir(d);
	if (r == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0 &&
	    errno != ENOENT)
		r = -1;
	return r;
}

int
store_rmtree(int dirfd, const char *name)
{
	return store_rmtree_depth(dirfd, name, 0);
}

/* ---- create ------------------------------------------------------------- */

/* The Maildir of one mailbox with the maildirfolder marker (which tells
 * other tools it is a Maildir++ subfolder), and a fresh row: a row left
 * from a folder removed behind our back is dropped, so the new mailbox
 * gets a new UIDVALIDITY. */
static int
store_folder_make(struct store *st, const char *name, unsigned special,
    char **error_r)
{
	struct store_mbox mb;
	char *folder = store_name_folder(name);
	char *dir = x_asprintf("%s/%s", st->root, folder);
	char *marker = x_asprintf("%s/maildirfolder", dir);
	int fd, r = -1;

	if (mkdir(dir, 0700) < 0) {
		int e = errno;
		if (e == EEXIST)
			store_fail(error_r, e, "mailbox exists");
		else
			store_fail(error_r, e, "%s: %s", dir, strerror(e));
		goto done;
	}
	if (maildir_create(dir) < 0 ||
	    (fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) < 0 ||
	    close(fd) < 0) {
		store_fail(error_r, errno, "%s: %s", dir, strerror(errno));
	} else {
		r = store_mbox_find(st, name, &mb, error_r);
		if (r > 0)
			r = store_mbox_drop(st, mb.id, error_r);
		if (r == 0)
			r = store_mbox_insert(st, name, special, &mb, error_r);
	}
	if (r < 0 && store_rmtree(AT_FDCWD, dir) < 0)
		log_warn("store: %s: remove", dir);
done:
	x_free(&marker);
	x_free(&dir);
	x_free(&folder);
	return r;
}

/* RFC 9051 6.3.4: superior names are made too; INBOX always exists. */
static int
store_superiors_make(struct store *st, const char *name, char **error_r)
{
	for (const char *p = strchr(name, '/'); p != NULL;
	    p = strchr(p + 1, '/')) {
		char *sup = x_strndup(name, (size_t)(p - name));
		int r = store_name_is_inbox(sup) ? 0 :
		    store_folder_make(st, sup, 0, error_r);
		x_free(&sup);
		if (r < 0 && errno != EEXIST)
			return -1;
		if (r < 0)
			store_clear_error(error_r);
	}
	return 0;
}

int
store_mailbox_create_locked(struct store *st, const char *name,
    unsigned special, char **error_r)
{
	if (store_superiors_make(st, name, error_r) < 0 ||
	    store_folder_make(st, name, special, error_r) < 0)
		return -1;
	if (fs_fsync_dir(st->root) < 0) {
		store_fail(error_r, errno, "%s: fsync: %s", st->root,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* A client's name, checked and normalized; NULL with EINVAL. */
static char *
store_name_arg(const char *name, char **error_r)
{
	if (!store_mailbox_name_ok(name)) {
		store_fail(error_r, EINVAL, "invalid mailbox name");
		return NULL;
	}
	return store_name_normalize(name);
}

int
store_mailbox_create_special(struct store *st, const char *name,
    unsigned special, char **error_r)
{
	char *norm = store_name_arg(name, error_r);
	int r = -1;

	if (norm == NULL)
		return -1;
	if (store_name_is_inbox(norm))
		store_fail(error_r, EEXIST, "mailbox exists");
	else if (store_begin(st, error_r) == 0)
		r = store_finish(st, store_mailbox_create_locked(st, norm,
		    special, error_r), error_r);
	x_free(&norm);
	return r;
}

int
store_mailbox_create(struct store *st, const char *name, char **error_r)
{
	return store_mailbox_create_special(st, name, 0, error_r);
}

/* ---- subscriptions ------------------------------------------------------ */

int
store_subscribe_locked(struct store *st, const char *name, bool on,
    char **error_r)
{
	sqlite3_stmt *s = store_sql(st, on ? SQL_SUB_ADD : SQL_SUB_DELETE);

	store_bind_text(s, 1, name, strlen(name));
	return store_run(st, s, error_r);
}

int
store_subscribe(struct store *st, const char *name, bool on,
    char **error_r)
{
	char *norm = store_name_arg(name, error_r);
	int r = -1;

	if (norm == NULL)
		return -1;
	if (store_begin(st, error_r) == 0)
		r = store_finish(st, store_subscribe_locked(st, norm, on,
		    error_r), error_r);
	x_free(&norm);
	return r;
}

/* ---- the root's folders ------------------------------------------------- */

struct store_names {
	char **v;
	size_t n;
	size_t cap;
};

static void
store_names_add(struct store_names *ns, char *name)
{
	if (ns->n == ns->cap) {
		ns->cap = ns->cap ? ns->cap * 2 : 16;
		ns->v = x_reallocarray(ns->v, ns->cap, sizeof(*ns->v));
	}
	ns->v[ns->n++] = name;
}

static void
store_names_free(struct store_names *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		x_free(&ns->v[i]);
	x_free(&ns->v);
	ns->n = ns->cap = 0;
}

static int
store_str_cmp(const void *pa, const void *pb)
{
	return strcmp(*(const char *const *)pa, *(const char *const *)pb);
}

static bool
store_names_has(const struct store_names *ns, const char *name)
{
	return ns->n > 0 && bsearch(&name, ns->v, ns->n, sizeof(*ns->v),
	    store_str_cmp) != NULL;
}

/* The mailboxes whose folders are in the root, sorted. Symlinked folders
 * count, as store_folder_open follows them too. */
static int
store_root_read(struct store *st, struct store_names *ns, char **error_r)
{
	DIR *d = opendir(st->root);
	struct dirent *e;
	struct stat sb;

	if (d == NULL) {
		store_fail(error_r, errno, "%s: %s", st->root,
		    strerror(errno));
		return -1;
	}
	errno = 0;
	while ((e = readdir(d)) != NULL) {
		char *name = store_folder_name(e->d_name);
		if (name != NULL && fstatat(dirfd(d), e->d_name, &sb, 0) == 0 &&
		    S_ISDIR(sb.st_mode))
			store_names_add(ns, name);
		else
			x_free(&name);
		errno = 0;
	}
	int e2 = errno;
	closedir(d);
	if (e2 != 0) {
		store_fail(error_r, e2, "%s: %s", st->root, strerror(e2));
		return -1;
	}
	store_sort(ns->v, ns->n, sizeof(*ns->v), store_str_cmp);
	return 0;
}

struct store_mbox_row {
	int64_t id;
	char *name;
	unsigned special;
};

static void
store_mbox_rows_free(struct store_mbox_row *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x_free(&v[i].name);
	free(v);
}

static int
store_mbox_rows(struct store *st, struct store_mbox_row **v, size_t *n,
    char **error_r)
{
	sqlite3_stmt *s = store_sql(st, SQL_MBOX_ALL);
	size_t cap = 0;
	int rc;

	*v = NULL;
	*n = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			*v = x_reallocarray(*v, cap, sizeof(**v));
		}
		struct store_mbox_row *r = &(*v)[(*n)++];
		r->id = sqlite3_column_int64(s, 0);
		r->name = store_column_str(s, 1);
		r->special = (unsigned)sqlite3_column_int(s, 2);
	}
	if (rc != SQLITE_DONE)
		store_db_error(st, error_r);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Makes the rows match the folders: folders moved in get rows, rows of
 * folders removed behind our back go (with their messages). */
static int
store_root_sync_locked(struct store *st, char **error_r)
{
	struct store_names ns = { 0 };
	struct store_mbox_row *rows = NULL;
	struct store_mbox mb;
	size_t nrows = 0;
	int r = -1;

	if (store_root_read(st, &ns, error_r) < 0 ||
	    store_mbox_rows(st, &rows, &nrows, error_r) < 0)
		goto done;
	for (size_t i = 0; i < nrows; i++)
		if (!store_name_is_inbox(rows[i].name) &&
		    !store_names_has(&ns, rows[i].name) &&
		    store_mbox_drop(st, rows[i].id, error_r) < 0)
			goto done;
	for (size_t i = 0; i < ns.n; i++)
		if (store_mbox_get(st, ns.v[i], &mb, error_r) < 0)
			goto done;
	r = 0;
done:
	store_mbox_rows_free(rows, nrows);
	store_names_free(&ns);
	return r;
}

/* ---- list --------------------------------------------------------------- */

static int
store_subs_read(struct store *st, struct store_names *ns, char **error_r)
{
	sqlite3_stmt *s = store_sql(st, SQL_SUB_LIST);
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		store_names_add(ns, store_column_str(s, 0));
	if (rc != SQLITE_DONE)
		store_db_error(st, error_r);
	sqlite3_reset(s);
	store_sort(ns->v, ns->n, sizeof(*ns->v), store_str_cmp);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int
store_info_cmp(const void *pa, const void *pb)
{
	const struct store_mailbox_info *a = pa, *b = pb;
	bool ia = strcmp(a->name, "INBOX") == 0;
	bool ib = strcmp(b->name, "INBOX") == 0;

	if (ia != ib)
		return ia ? -1 : 1;
	return strcmp(a->name, b->name);
}

/* Names below a name sort right after name + "/" in strcmp order: the
 * first name not before it tells. */
static bool
store_has_below(const struct store_names *ns, const char *name)
{
	char *prefix = x_asprintf("%s/", name);
	size_t lo = 0, hi = ns->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(ns->v[mid], prefix) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	x_free(&prefix);
	return lo < ns->n && store_name_is_below(ns->v[lo], name);
}

static void
store_info_build(const struct store_mbox_row *rows, size_t nrows,
    const struct store_names *subs, struct store_mailbox_info **out,
    size_t *n)
{
	struct store_names all = { 0 };
	struct store_mailbox_info *v = x_calloc(nrows + subs->n + 1,
	    sizeof(*v));
	size_t k = 0;

	for (size_t i = 0; i < nrows; i++)
		store_names_add(&all, rows[i].name);
	store_sort(all.v, all.n, sizeof(*all.v), store_str_cmp);
	for (size_t i = 0; i < nrows; i++, k++) {
		v[k].name = x_strdup(rows[i].name);
		v[k].special = rows[i].special;
		v[k].exists = true;
		v[k].subscribed = store_names_has(subs, rows[i].name);
	}
	for (size_t i = 0; i < subs->n; i++) {
		if (store_names_has(&all, subs->v[i]))
			continue;
		v[k].name = x_strdup(subs->v[i]);
		v[k++].subscribed = true;
	}
	for (size_t i = 0; i < k; i++)
		v[i].has_children = store_has_below(&all, v[i].name);
	x_free(&all.v);		/* the names are rows' */
	store_sort(v, k, sizeof(*v), store_info_cmp);
	*out = v;
	*n = k;
}

int
store_mailbox_list(struct store *st, struct store_mailbox_info **out,
    size_t *n, char **error_r)
{
	struct store_names subs = { 0 };
	struct store_mbox_row *rows = NULL;
	size_t nrows = 0;

	*out = NULL;
	*n = 0;
	if (store_begin(st, error_r) < 0)
		return -1;
	int r = store_root_sync_locked(st, error_r);
	if (r == 0)
		r = store_mbox_rows(st, &rows, &nrows, error_r);
	if (r == 0)
		r = store_subs_read(st, &subs, error_r);
	r = store_finish(st, r, error_r);
	if (r == 0)
		store_info_build(rows, nrows, &subs, out, n);
	store_mbox_rows_free(rows, nrows);
	store_names_free(&subs);
	return r;
}

void
store_mailbox_list_free(struct store_mailbox_info *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x_free(&v[i].name);
	free(v);
}

/* ---- delete ------------------------------------------------------------- */

/* Removes what deletes left in the root: their own, and any a crash
 * interrupted. Outside the transaction: it may take a while. */
static void
store_trash_empty(struct store *st)
{
	DIR *d = opendir(st->root);
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, STORE_TRASH_PREFIX,
		    strlen(STORE_TRASH_PREFIX)) == 0 &&
		    store_rmtree(dirfd(d), e->d_name) < 0)
			log_warn("store: %s/%s: remove", st->root, e->d_name);
	closedir(d);
}

/* The folder leaves the namespace with one rename; its files go later. */
static int
store_delete_locked(struct store *st, const char *name, char **error_r)
{
	struct store_mbox mb;
	char uniq[STORE_NAME_MAX + 1];
	char *folder = store_name_folder(name);
	char *dir = x_asprintf("%s/%s", st->root, folder);
	int r = store_mbox_find(st, name, &mb, error_r);

	maildir_unique_name(uniq, sizeof(uniq), 0);
	char *trash = x_asprintf("%s/%s%s", st->root, STORE_TRASH_PREFIX, uniq);
	if (r >= 0 && renameat2(AT_FDCWD, dir, AT_FDCWD, trash,
	    RENAME_NOREPLACE) < 0) {
		if (errno == ENOENT)
			store_fail(error_r, errno, "no such mailbox");
		else
			store_fail(error_r, errno, "%s: rename: %s", dir,
			    strerror(errno));
		r = -1;
	} else if (r >= 0 && fs_fsync_dir(st->root) < 0) {
		store_fail(error_r, errno, "%s: fsync: %s", st->root,
		    strerror(errno));
		r = -1;
	} else if (r > 0) {
		r = store_mbox_drop(st, mb.id, error_r);
	}
	if (r < 0 && access(trash, F_OK) == 0 &&
	    renameat2(AT_FDCWD, trash, AT_FDCWD, dir, RENAME_NOREPLACE) < 0)
		log_warn("store: %s: restore after failed delete", dir);
	x_free(&trash);
	x_free(&dir);
	x_free(&folder);
	return r < 0 ? -1 : 0;
}

int
store_mailbox_delete(struct store *st, const char *name, char **error_r)
{
	char *norm = store_name_arg(name, error_r);
	int r = -1;

	if (norm == NULL)
		return -1;
	if (store_name_is_inbox(norm))
		store_fail(error_r, EPERM, "INBOX cannot be deleted");
	else if (store_begin(st, error_r) == 0)
		r = store_finish(st, store_delete_locked(st, norm, error_r),
		    error_r);
	x_free(&norm);
	store_folders_forget(st);
	if (r == 0)
		store_trash_empty(st);
	return r;
}

/* ---- rename ------------------------------------------------------------- */

struct store_move {
	int64_t id;
	char *from;
	char *to;
	char *from_dir;
	char *to_dir;
};

struct store_moves {
	struct store_move *v;
	size_t n;
};

static void
store_moves_free(struct store_moves *mv)
{
	for (size_t i = 0; i < mv->n; i++) {
		x_free(&mv->v[i].from);
		x_free(&mv->v[i].to);
		x_free(&mv->v[i].from_dir);
		x_free(&mv->v[i].to_dir);
	}
	x_free(&mv->v);
	mv->n = 0;
}

/* Shorter names first: when from is below to ("a/b" to "a"), a target
 * ("a/b" for "a/b/b") is always a name that moved away before. */
static int
store_move_cmp(const void *pa, const void *pb)
{
	const struct store_move *a = pa, *b = pb;
	size_t la = strlen(a->from), lb = strlen(b->from);

	return (la > lb) - (la < lb);
}

static char *
store_folder_path(struct store *st, const char *name)
{
	char *folder = store_name_folder(name);
	char *path = x_asprintf("%s/%s", st->root, folder);

	x_free(&folder);
	return path;
}

static bool
store_moves_has(const struct store_moves *mv, int64_t id)
{
	for (size_t i = 0; i < mv->n; i++)
		if (mv->v[i].id == id)
			return true;
	return false;
}

/* The mailbox from and those below it, with their new names. */
static int
store_rename_plan(struct store *st, const char *from, const char *to,
    struct store_moves *mv, char **error_r)
{
	struct store_mbox_row *rows;
	size_t nrows;
	bool found = false;

	if (store_mbox_rows(st, &rows, &nrows, error_r) < 0)
		return -1;
	mv->v = x_calloc(nrows + 1, sizeof(*mv->v));
	for (size_t i = 0; i < nrows; i++) {
		const char *name = rows[i].name;
		if (strcmp(name, from) != 0 && !store_name_is_below(name, from))
			continue;
		found |= strcmp(name, from) == 0;
		struct store_move *m = &mv->v[mv->n++];
		m->id = rows[i].id;
		m->from = x_strdup(name);
		m->to = x_asprintf("%s%s", to, name + strlen(from));
	}
	store_mbox_rows_free(rows, nrows);
	if (!found) {
		store_fail(error_r, ENOENT, "no such mailbox");
		return -1;
	}
	store_sort(mv->v, mv->n, sizeof(*mv->v), store_move_cmp);
	return 0;
}

/* Every new name valid and free (or freed by this rename). */
static int
store_rename_check(struct store *st, struct store_moves *mv, char **error_r)
{
	struct store_mbox other;

	for (size_t i = 0; i < mv->n; i++) {
		struct store_move *m = &mv->v[i];
		if (!store_mailbox_name_ok(m->to) ||
		    store_name_is_inbox(m->to)) {
			store_fail(error_r, EINVAL, "invalid mailbox name %s",
			    m->to);
			return -1;
		}
		int r = store_mbox_find(st, m->to, &other, error_r);
		if (r < 0)
			return -1;
		if (r > 0 && !store_moves_has(mv, other.id)) {
			store_fail(error_r, EEXIST, "mailbox exists");
			return -1;
		}
		m->from_dir = store_folder_path(st, m->from);
		m->to_dir = store_folder_path(st, m->to);
	}
	return 0;
}

/* The folders move; on failure the moved ones move back. */
static int
store_rename_folders(struct store *st, struct store_moves *mv,
    char **error_r)
{
	size_t i;

	for (i = 0; i < mv->n; i++)
		if (renameat2(AT_FDCWD, mv->v[i].from_dir, AT_FDCWD,
		    mv->v[i].to_dir, RENAME_NOREPLACE) < 0)
			break;
	if (i == mv->n && fs_fsync_dir(st->root) == 0)
		return 0;
	store_fail(error_r, errno, "%s: rename: %s", st->root,
	    strerror(errno));
	while (i-- > 0)
		if (renameat2(AT_FDCWD, mv->v[i].to_dir, AT_FDCWD,
		    mv->v[i].from_dir, RENAME_NOREPLACE) < 0)
			log_warn("store: %s: move back", mv->v[i].to_dir);
	return -1;
}

/* Subscriptions follow the mailboxes they name. */
static int
store_rename_subs(struct store *st, const char *from, const char *to,
    char **error_r)
{
	struct store_names subs = { 0 };
	int r = store_subs_read(st, &subs, error_r);

	for (size_t i = 0; r == 0 && i < subs.n; i++) {
		const char *name = subs.v[i];
		if (strcmp(name, from) != 0 && !store_name_is_below(name, from))
			continue;
		char *new = x_asprintf("%s%s", to, name + strlen(from));
		r = store_subscribe_locked(st, name, false, error_r);
		if (r == 0 && store_mailbox_name_ok(new))
			r = store_subscribe_locked(st, new, true, error_r);
		x_free(&new);
	}
	store_names_free(&subs);
	return r;
}

static int
store_rename_rows(struct store *st, const struct store_moves *mv,
    char **error_r)
{
	for (size_t i = 0; i < mv->n; i++) {
		sqlite3_stmt *s = store_sql(st, SQL_MBOX_RENAME);
		store_bind_int(s, 1, mv->v[i].id);
		store_bind_text(s, 2, mv->v[i].to, strlen(mv->v[i].to));
		if (store_run(st, s, error_r) < 0)
			return -1;
	}
	return 0;
}

static int
store_rename_locked(struct store *st, const char *from, const char *to,
    char **error_r)
{
	struct store_moves mv = { 0 };
	int r = -1;

	if (store_root_sync_locked(st, error_r) < 0 ||
	    store_rename_plan(st, from, to, &mv, error_r) < 0 ||
	    store_rename_check(st, &mv, error_r) < 0 ||
	    store_superiors_make(st, to, error_r) < 0 ||
	    store_rename_folders(st, &mv, error_r) < 0)
		goto done;
	if (store_rename_rows(st, &mv, error_r) == 0 &&
	    store_rename_subs(st, from, to, error_r) == 0) {
		r = 0;
		goto done;
	}
	/* The index keeps the old names: so must the folders. */
	for (size_t i = mv.n; i-- > 0;)
		if (renameat2(AT_FDCWD, mv.v[i].to_dir, AT_FDCWD,
		    mv.v[i].from_dir, RENAME_NOREPLACE) < 0)
			log_warn("store: %s: move back", mv.v[i].to_dir);
done:
	store_moves_free(&mv);
	return r;
}

/* RFC 9051 6.3.6: INBOX's messages move to a new mailbox; INBOX stays,
 * empty, and the mailboxes below it stay where they are. */
static int
store_rename_inbox(struct store *st, const char *to, char **error_r)
{
	struct store_mailbox inbox;
	struct store_folder *src, *dst;
	int r = -1;

	/* Brings messages delivered to new/ in first: all of them move. A
	 * folder made before a failure stays, an empty (or partly filled)
	 * mailbox: removing it could lose messages already moved. */
	if (store_mailbox_load(st, "INBOX", &inbox, error_r) < 0)
		return -1;
	/* The UIDs, then COPYUID's source and destination UIDs. */
	uint32_t *uids = x_calloc(inbox.count + 1, 3 * sizeof(*uids));
	for (size_t i = 0; i < inbox.count; i++)
		uids[i] = inbox.msgs[i].uid;
	size_t n = inbox.count, copied;
	uint32_t uidvalidity;
	store_mailbox_free(&inbox);
	if ((src = store_folder_open(st, "INBOX", error_r)) == NULL ||
	    store_durable(st, true, error_r) < 0)
		goto done;
	if (store_begin(st, error_r) == 0) {
		r = store_mailbox_create_locked(st, to, 0, error_r);
		if (r == 0 && (dst = store_folder_open(st, to, error_r)) ==
		    NULL)
			r = -1;
		if (r == 0)
			r = store_copy_locked(st, src, dst, uids, n, true,
			    &uidvalidity, uids + n, uids + 2 * n, &copied,
			    error_r);
		r = store_finish(st, r, error_r);
	}
	(void)store_durable(st, false, NULL);
done:
	x_free(&uids);
	return r;
}

int
store_mailbox_rename(struct store *st, const char *from, const char *to,
    char **error_r)
{
	char *nf = store_name_arg(from, error_r), *nt = NULL;
	int r = -1;

	if (nf == NULL || (nt = store_name_arg(to, error_r)) == NULL)
		goto done;
	if (store_name_is_inbox(nt) || strcmp(nf, nt) == 0) {
		store_fail(error_r, EEXIST, "mailbox exists");
	} else if (store_name_is_inbox(nf)) {
		r = store_rename_inbox(st, nt, error_r);
	} else if (store_name_is_below(nt, nf)) {
		store_fail(error_r, EINVAL, "cannot rename a mailbox into "
		    "itself");
	} else if (store_begin(st, error_r) == 0) {
		r = store_finish(st, store_rename_locked(st, nf, nt, error_r),
		    error_r);
		store_folders_forget(st);
	}
done:
	x_free(&nt);
	x_free(&nf);
	return r;
}

/* ---- status ------------------------------------------------------------- */

int
store_mailbox_status(struct store *st, const char *name,
    struct store_status *out, char **error_r)
{
	struct store_mailbox mb;

	memset(out, 0, sizeof(*out));
	if (store_mailbox_load_peek(st, name, &mb, error_r) < 0)
		return -1;
	out->messages = (uint32_t)mb.count;
	out->uidnext = mb.uidnext;
	out->uidvalidity = mb.uidvalidity;
	out->highestmodseq = mb.highestmodseq;
	for (size_t i = 0; i < mb.count; i++) {
		if (!(mb.msgs[i].flags & STORE_F_SEEN))
			out->unseen++;
		if (mb.msgs[i].flags & STORE_F_DELETED)
			out->deleted++;
		out->size += mb.msgs[i].size;
	}
	store_mailbox_free(&mb);
	return 0;
}
