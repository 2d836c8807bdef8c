/* Folder scans and loads: bringing a mailbox's index up to date with its
 * Maildir, and finding a message's file when its name changed.
 * Untrusted input: the file names found in cur/ and new/
 * (store_file_name_ok bounds them before any use). */
#include "store/store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/xmalloc.h"
#include "store/maildir.h"
#include "store/mime.h"

/* A load summarizes every new message (FETCH ENVELOPE or BODYSTRUCTURE
 * of a mailbox then reads no message file): STORE_SUMMARY_CHUNK files
 * are read and parsed outside any transaction, then written in one
 * short one, so other sessions wait for the index at most that long.
 * Deliveries arrive a few at a time; a Maildir moved in may hold many
 * thousands (~20,000 a second here): after STORE_SUMMARY_BUDGET seconds
 * the load stops, and the rest are summarized when first asked for
 * (store_msg_summary), so a first SELECT never blocks for minutes. */
#define STORE_SUMMARY_CHUNK	256
#define STORE_SUMMARY_BUDGET	5

/* A load's snapshot is only kept when cur/ and new/ last changed at
 * least this many seconds before the scan (see store_snap_hit). */
#define STORE_SNAP_AGE		2

/* ---- folder scans ------------------------------------------------------- */

static void
store_ent_init(struct store_ent *e, char *name, bool in_new)
{
	const char *colon = strchr(name, ':');
	const char *letters = store_name_letters(name);

	memset(e, 0, sizeof(*e));
	e->name = name;
	e->baselen = colon != NULL ? (size_t)(colon - name) : strlen(name);
	e->flags = letters != NULL ? store_flags_parse(letters) : 0;
	e->in_new = in_new;
}

static int
store_base_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c != 0)
		return c;
	return (alen > blen) - (alen < blen);
}

/* By base name, then by whole name, so duplicates sort the same way on
 * every load. */
static int
store_ent_cmp(const void *pa, const void *pb)
{
	const struct store_ent *a = pa, *b = pb;
	int c = store_base_cmp(a->name, a->baselen, b->name, b->baselen);

	return c != 0 ? c : strcmp(a->name, b->name);
}

static void
store_scan_add(struct store_scan *sc, char *name, bool in_new)
{
	if (sc->n == sc->cap) {
		sc->cap = sc->cap ? sc->cap * 2 : 64;
		sc->v = x_reallocarray(sc->v, sc->cap, sizeof(*sc->v));
	}
	store_ent_init(&sc->v[sc->n++], name, in_new);
}

void
store_scan_free(struct store_scan *sc)
{
	for (size_t i = 0; i < sc->n; i++)
		x_free(&sc->v[i].name);
	x_free(&sc->v);
	sc->n = sc->cap = 0;
}

/* Appends the message files of the directory dirfd to sc: regular (or
 * unknown type) files with acceptable names. A fresh open of "." gives
 * the scan its own offset, so a folder can be read more than once. */
static int
store_dir_read(int dirfd, bool in_new, struct store_scan *sc,
    size_t *skipped)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;

	if (d == NULL) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	errno = 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' ||
		    (e->d_type != DT_REG && e->d_type != DT_UNKNOWN))
			continue;
		if (!store_file_name_ok(e->d_name))
			(*skipped)++;
		else
			store_scan_add(sc, x_strdup(e->d_name), in_new);
		errno = 0;
	}
	int r = errno != 0 ? -1 : 0;
	closedir(d);
	return r;
}

/* The entry of v[0..n) (sorted by store_ent_cmp) with this base, or NULL. */
static struct store_ent *
store_scan_find(struct store_ent *v, size_t n, const char *base,
    size_t baselen)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = store_base_cmp(v[mid].name, v[mid].baselen, base,
		    baselen);
		if (c == 0)
			return &v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static void
store_ent_set_stat(struct store_ent *e, const struct stat *sb)
{
	e->stat_ok = true;
	e->mtime = sb->st_mtim;
	e->size = (uint64_t)sb->st_size;
}

/* rename(2) that never replaces an existing file: two files that claim
 * the same name must both survive. */
int
store_rename_noreplace(int fromfd, const char *from, int tofd, const char *to)
{
	if (renameat2(fromfd, from, tofd, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	/* A file system without RENAME_NOREPLACE: link() refuses to
	 * replace too. A crash between the two steps leaves two links to
	 * one file, which store_move_new recognises. */
	if (linkat(fromfd, from, tofd, to, 0) < 0)
		return -1;
	if (unlinkat(fromfd, from, 0) < 0 && errno != ENOENT)
		log_warn("store: unlink after link");
	return 0;
}

static bool
store_same_file(int dirfd, const char *name, const struct stat *sb)
{
	struct stat other;

	return fstatat(dirfd, name, &other, AT_SYMLINK_NOFOLLOW) == 0 &&
	    other.st_dev == sb->st_dev && other.st_ino == sb->st_ino;
}

/* Where new/NAME goes in cur/: its name with ":2," (kept when it has that
 * info already), or a fresh unique name when a different file in cur/
 * has the same base. -1: leave it in new/. */
static int
store_new_target(const struct store_folder *f, const struct store_ent *e,
    const struct store_ent *dup, const struct stat *sb, char *out)
{
	const char *letters = store_name_letters(e->name);

	if (dup != NULL) {
		char uniq[STORE_NAME_MAX + 1];
		maildir_unique_name(uniq, sizeof(uniq), (uint64_t)sb->st_size);
		log_warnx("store: %s: base name in new/ and cur/, renaming",
		    f->dir);
		return store_name_build(out, uniq, strlen(uniq),
		    e->flags, letters);
	}
	if (letters != NULL) {
		memcpy(out, e->name, strlen(e->name) + 1);
		return 0;
	}
	return store_name_build(out, e->name, e->baselen, 0, NULL);
}

/* Moves one file of new/ to cur/ and adds it to sc. *raced is set when
 * someone else moved or removed it meanwhile: cur/ must be read again. */
static void
store_move_new(const struct store_folder *f, struct store_scan *sc,
    size_t ncur, const struct store_ent *e, bool *raced)
{
	char target[STORE_NAME_MAX + 1];
	struct stat sb;

	if (fstatat(f->newfd, e->name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			*raced = true;
		return;
	}
	if (!S_ISREG(sb.st_mode))
		return;
	struct store_ent *dup = store_scan_find(sc->v, ncur, e->name,
	    e->baselen);
	if (dup != NULL && store_same_file(f->curfd, dup->name, &sb)) {
		/* Left over from a link-then-unlink move. */
		if (unlinkat(f->newfd, e->name, 0) < 0 && errno != ENOENT)
			log_warn("store: %s/new: unlink", f->dir);
		return;
	}
	if (store_new_target(f, e, dup, &sb, target) < 0) {
		log_warnx("store: %s/new: name too long, left there", f->dir);
		return;
	}
	if (store_rename_noreplace(f->newfd, e->name, f->curfd, target) < 0) {
		if (errno == ENOENT || errno == EEXIST)
			*raced = true;
		else
			log_warn("store: %s: move to cur/", f->dir);
		return;
	}
	store_scan_add(sc, x_strdup(target), false);
	store_ent_set_stat(&sc->v[sc->n - 1], &sb);
}

/* Reads cur/, moves new/ into it; again when another process raced us. */
static int
store_scan_folder(const struct store_folder *f, struct store_scan *sc)
{
	size_t skipped = 0;

	for (int attempt = 1; ; attempt++) {
		struct store_scan fresh = { 0 };
		bool raced = false;

		store_scan_free(sc);
		skipped = 0;
		if (store_dir_read(f->curfd, false, sc, &skipped) < 0 ||
		    store_dir_read(f->newfd, true, &fresh, &skipped) < 0) {
			store_scan_free(&fresh);
			return -1;
		}
		store_sort(sc->v, sc->n, sizeof(*sc->v), store_ent_cmp);
		size_t ncur = sc->n;
		for (size_t i = 0; i < fresh.n; i++)
			store_move_new(f, sc, ncur, &fresh.v[i], &raced);
		store_scan_free(&fresh);
		if (!raced || attempt == STORE_SCAN_TRIES)
			break;
	}
	if (skipped > 0)
		log_warnx("store: %s: %zu files with unusable names skipped",
		    f->dir, skipped);
	store_sort(sc->v, sc->n, sizeof(*sc->v), store_ent_cmp);
	return 0;
}

/* Keeps the first of several files with the same base: a UID names one
 * file. The others stay on disk, unindexed. */
static void
store_scan_dedup(const struct store_folder *f, struct store_scan *sc)
{
	size_t o = 0, dropped = 0;

	for (size_t i = 0; i < sc->n; i++) {
		const struct store_ent *prev = o > 0 ? &sc->v[o - 1] : NULL;
		if (prev != NULL && store_base_cmp(prev->name, prev->baselen,
		    sc->v[i].name, sc->v[i].baselen) == 0) {
			x_free(&sc->v[i].name);
			dropped++;
			continue;
		}
		sc->v[o++] = sc->v[i];
	}
	sc->n = o;
	if (dropped > 0)
		log_warnx("store: %s: %zu files share a base name with another,"
		    " ignored", f->dir, dropped);
}

/* ---- loading ------------------------------------------------------------ */

struct store_load {
	struct store *st;
	const struct store_folder *f;
	struct store_mbox mb;
	uint64_t modseq;	/* of this load's changes */
	bool changed;
	struct store_scan scan;
	struct store_row *rows;
	size_t nrows;
	struct store_ent **unknown;
	size_t nunknown;
	struct store_msg *msgs;
	size_t nmsgs;
	size_t nnew;		/* of msgs, indexed by this load */
};

static int
store_row_cmp(const void *pa, const void *pb)
{
	const struct store_row *a = pa, *b = pb;

	return store_base_cmp(a->base, a->baselen, b->base, b->baselen);
}

void
store_row_free(struct store_row *r)
{
	x_free(&r->base);
	x_free(&r->keywords);
}

static void
store_rows_free(struct store_load *ld)
{
	for (size_t i = 0; i < ld->nrows; i++)
		store_row_free(&ld->rows[i]);
	x_free(&ld->rows);
	ld->nrows = 0;
}

/* A row of SQL_MSG_LIST or SQL_MSG_GET. */
static void
store_row_read(sqlite3_stmt *s, struct store_row *r)
{
	r->uid = (uint32_t)sqlite3_column_int64(s, 0);
	r->baselen = (size_t)sqlite3_column_bytes(s, 1);
	r->base = x_strndup((const char *)sqlite3_column_text(s, 1),
	    r->baselen);
	r->flags = (unsigned)sqlite3_column_int(s, 2);
	r->modseq = (uint64_t)sqlite3_column_int64(s, 3);
	r->size = (uint64_t)sqlite3_column_int64(s, 4);
	r->internaldate = sqlite3_column_int64(s, 5);
	r->keywords = store_column_str(s, 6);
	r->savedate = sqlite3_column_int64(s, 7);
}

/* Every index row of the mailbox, in one query, sorted by base. */
static int
store_load_rows(struct store_load *ld, char **error_r)
{
	sqlite3_stmt *s = store_sql(ld->st, SQL_MSG_LIST);
	size_t cap = 0;
	int rc;

	store_bind_int(s, 1, ld->mb.id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (ld->nrows == cap) {
			cap = cap ? cap * 2 : 256;
			ld->rows = x_reallocarray(ld->rows, cap,
			    sizeof(*ld->rows));
		}
		store_row_read(s, &ld->rows[ld->nrows++]);
	}
	if (rc != SQLITE_DONE)
		store_db_error(ld->st, error_r);
	sqlite3_reset(s);
	store_sort(ld->rows, ld->nrows, sizeof(*ld->rows), store_row_cmp);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* All changes of one load share one new MODSEQ. */
static uint64_t
store_load_modseq(struct store_load *ld)
{
	ld->changed = true;
	return ld->modseq;
}

static void
store_load_out(struct store_load *ld, const struct store_ent *e,
    const struct store_row *r, uint64_t modseq)
{
	struct store_msg *m = &ld->msgs[ld->nmsgs++];

	m->uid = r->uid;
	m->size = r->size;
	m->flags = e->flags;
	m->modseq = modseq;
	m->internaldate = (time_t)r->internaldate;
	m->savedate = (time_t)r->savedate;
	m->path = x_asprintf("%s/cur/%s", ld->f->dir, e->name);
	m->keywords = r->keywords != NULL ? x_strdup(r->keywords) : NULL;
}

/* A file the index knows: flags from its name win. */
static int
store_load_known(struct store_load *ld, const struct store_ent *e,
    const struct store_row *r, char **error_r)
{
	uint64_t modseq = r->modseq;

	if (e->flags != r->flags) {
		modseq = store_load_modseq(ld);
		sqlite3_stmt *s = store_sql(ld->st, SQL_MSG_FLAGS);
		store_bind_int(s, 1, ld->mb.id);
		store_bind_int(s, 2, r->uid);
		store_bind_int(s, 3, e->flags);
		store_bind_int(s, 4, (int64_t)modseq);
		if (store_run(ld->st, s, error_r) < 0)
			return -1;
	}
	store_load_out(ld, e, r, modseq);
	return 0;
}

static int
store_load_gone(struct store_load *ld, const struct store_row *r,
    char **error_r)
{
	sqlite3_stmt *s = store_sql(ld->st, SQL_MSG_DELETE);
	uint64_t modseq = store_load_modseq(ld);

	store_bind_int(s, 1, ld->mb.id);
	store_bind_int(s, 2, r->uid);
	if (store_run(ld->st, s, error_r) < 0)
		return -1;
	return store_vanished_add(ld->st, ld->mb.id, r->uid, modseq,
	    error_r);
}

/* Walks the files and the rows, both sorted by base, side by side. */
static int
store_load_merge(struct store_load *ld, char **error_r)
{
	size_t i = 0, j = 0, n = ld->scan.n;

	ld->msgs = x_calloc(n ? n : 1, sizeof(*ld->msgs));
	ld->unknown = x_calloc(n ? n : 1, sizeof(*ld->unknown));
	while (i < n || j < ld->nrows) {
		struct store_ent *e = i < n ? &ld->scan.v[i] : NULL;
		struct store_row *r = j < ld->nrows ? &ld->rows[j] : NULL;
		int c = e == NULL ? 1 : r == NULL ? -1 :
		    store_base_cmp(e->name, e->baselen, r->base, r->baselen);
		if (c < 0) {
			ld->unknown[ld->nunknown++] = e;
			i++;
		} else if (c > 0) {
			if (store_load_gone(ld, r, error_r) < 0)
				return -1;
			j++;
		} else {
			if (store_load_known(ld, e, r, error_r) < 0)
				return -1;
			i++, j++;
		}
	}
	return 0;
}

/* Arrival order: mtime, then name. */
static int
store_unknown_cmp(const void *pa, const void *pb)
{
	const struct store_ent *a = *(const struct store_ent *const *)pa;
	const struct store_ent *b = *(const struct store_ent *const *)pb;

	if (a->mtime.tv_sec != b->mtime.tv_sec)
		return a->mtime.tv_sec < b->mtime.tv_sec ? -1 : 1;
	if (a->mtime.tv_nsec != b->mtime.tv_nsec)
		return a->mtime.tv_nsec < b->mtime.tv_nsec ? -1 : 1;
	return strcmp(a->name, b->name);
}

/* Stats the files found in cur/ that the index does not know (those moved
 * from new/ were stat'ed already); drops the ones that are not regular
 * files or went away. */
static void
store_load_stat_unknown(struct store_load *ld, int curfd)
{
	size_t o = 0;
	struct stat sb;

	for (size_t i = 0; i < ld->nunknown; i++) {
		struct store_ent *e = ld->unknown[i];
		if (!e->stat_ok) {
			if (fstatat(curfd, e->name, &sb,
			    AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(sb.st_mode))
				continue;
			store_ent_set_stat(e, &sb);
		}
		ld->unknown[o++] = e;
	}
	ld->nunknown = o;
}

/* A file new to the index: it arrived now (SAVEDATE), and its internal
 * date is its mtime, which delivery and APPEND set. */
static int
store_load_insert(struct store_load *ld, const struct store_ent *e,
    const struct store_row *r, char **error_r)
{
	sqlite3_stmt *s = store_sql(ld->st, SQL_MSG_INSERT);

	store_bind_int(s, 1, ld->mb.id);
	store_bind_int(s, 2, r->uid);
	store_bind_text(s, 3, e->name, e->baselen);
	store_bind_int(s, 4, e->flags);
	store_bind_int(s, 5, (int64_t)r->modseq);
	store_bind_int(s, 6, (int64_t)r->size);
	store_bind_int(s, 7, r->internaldate);
	store_bind_int(s, 9, r->savedate);
	return store_run(ld->st, s, error_r);
}

/* New files get the next UIDs, in arrival order. UIDNEXT must stay a
 * 32-bit number; past that, only a new UIDVALIDITY would help. */
static int
store_load_assign(struct store_load *ld, char **error_r)
{
	store_load_stat_unknown(ld, ld->f->curfd);
	if (ld->nunknown == 0)
		return 0;
	if ((uint64_t)ld->mb.uidnext + ld->nunknown > UINT32_MAX) {
		store_set_error(error_r, "index: UIDs exhausted");
		return -1;
	}
	store_sort(ld->unknown, ld->nunknown, sizeof(*ld->unknown),
	    store_unknown_cmp);
	struct store_row r = { .modseq = store_load_modseq(ld),
	    .savedate = (int64_t)time(NULL) };
	for (size_t i = 0; i < ld->nunknown; i++) {
		const struct store_ent *e = ld->unknown[i];
		r.uid = ld->mb.uidnext++;
		r.size = e->size;
		r.internaldate = (int64_t)e->mtime.tv_sec;
		if (store_load_insert(ld, e, &r, error_r) < 0)
			return -1;
		store_load_out(ld, e, &r, r.modseq);
	}
	ld->nnew = ld->nunknown;
	return 0;
}

static int
store_msg_uid_cmp(const void *pa, const void *pb)
{
	const struct store_msg *a = pa, *b = pb;

	return (a->uid > b->uid) - (a->uid < b->uid);
}

/* Inside the transaction: scan, match, write. */
static int
store_load_locked(struct store_load *ld, char **error_r)
{
	if (store_mbox_get(ld->st, ld->f->name, &ld->mb, error_r) < 0)
		return -1;
	store_touch(ld->st, ld->f, ld->mb.id, true);
	ld->modseq = ld->mb.highestmodseq + 1;
	if (store_scan_folder(ld->f, &ld->scan) < 0) {
		store_set_error(error_r, "%s: %s", ld->f->dir,
		    strerror(errno));
		return -1;
	}
	store_scan_dedup(ld->f, &ld->scan);
	if (store_load_rows(ld, error_r) < 0 ||
	    store_load_merge(ld, error_r) < 0 ||
	    store_load_assign(ld, error_r) < 0)
		return -1;
	if (ld->changed) {
		ld->mb.highestmodseq = ld->modseq;
		if (store_mbox_update(ld->st, &ld->mb, error_r) < 0)
			return -1;
	}
	return store_commit(ld->st, error_r);
}

static void
store_load_free(struct store_load *ld)
{
	store_scan_free(&ld->scan);
	store_rows_free(ld);
	x_free(&ld->unknown);
	for (size_t i = 0; i < ld->nmsgs; i++) {
		x_free(&ld->msgs[i].path);
		x_free(&ld->msgs[i].keywords);
	}
	x_free(&ld->msgs);
}

/* ---- the load snapshot -------------------------------------------------- */

/* A load of a mailbox where nothing changed gives what the last one gave:
 * then it need not read cur/ (10,000 entries), the index's rows, nor
 * take the write lock. "Nothing changed" is:
 *
 * - the mailbox's index row is the same (id, UIDVALIDITY, UIDNEXT,
 *   HIGHESTMODSEQ): every change a store makes to a mailbox's messages
 *   (flags, keywords, expunge, APPEND, COPY, a load's own changes)
 *   raises HIGHESTMODSEQ or UIDNEXT in the transaction that makes it;
 * - cur/ and new/ are the same directories with the same mtime and
 *   ctime: anything else that changes the Maildir (a delivery linking
 *   into new/, a Maildir reader renaming a file for its flags or
 *   removing it) adds, renames or removes an entry, which sets both.
 *
 * Timestamps have a granularity (a kernel tick, or a second on some file
 * systems): a change in the same tick as the one a snapshot saw would
 * leave them as they were. So a snapshot is only kept when the stamps,
 * taken before the scan and found unchanged after it, are at least
 * STORE_SNAP_AGE seconds old: any later change then writes a newer time.
 * (A clock set back by more than that, or a network file system whose
 * server clock lags ours, could defeat this; so could anyone setting a
 * directory's mtime by hand, though not its ctime.) One snapshot per
 * store, of the mailbox last loaded by store_mailbox_load: a session's
 * selected mailbox. */

void
store_snap_free(struct store_snap *sn)
{
	for (size_t i = 0; i < sn->count; i++) {
		x_free(&sn->msgs[i].path);
		x_free(&sn->msgs[i].keywords);
	}
	x_free(&sn->msgs);
	x_free(&sn->name);
	memset(sn, 0, sizeof(*sn));
}

static bool
store_ts_equal(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static bool
store_stamp_equal(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	    store_ts_equal(a->st_mtim, b->st_mtim) &&
	    store_ts_equal(a->st_ctim, b->st_ctim);
}

static bool
store_stamp_old(const struct stat *sb, time_t now)
{
	return sb->st_mtim.tv_sec <= now - STORE_SNAP_AGE &&
	    sb->st_ctim.tv_sec <= now - STORE_SNAP_AGE;
}

static void
store_msgs_copy(struct store_msg *dst, const struct store_msg *src, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		dst[i] = src[i];
		dst[i].path = x_strdup(src[i].path);
		dst[i].keywords = src[i].keywords != NULL ?
		    x_strdup(src[i].keywords) : NULL;
	}
}

/* The snapshot into out when it still holds: 1, 0 not, -1 error. f's
 * stats are fresh (store_folder_open). */
static int
store_snap_hit(struct store *st, const struct store_folder *f,
    struct store_mailbox *out, char **error_r)
{
	const struct store_snap *sn = &st->snap;
	struct store_mbox mb;

	if (sn->name == NULL || strcmp(sn->name, f->name) != 0 ||
	    !store_stamp_equal(&sn->cur_st, &f->cur_st) ||
	    !store_stamp_equal(&sn->new_st, &f->new_st))
		return 0;
	int r = store_mbox_find(st, f->name, &mb, error_r);
	if (r <= 0)
		return r;
	if (mb.id != sn->mb.id || mb.uidvalidity != sn->mb.uidvalidity ||
	    mb.uidnext != sn->mb.uidnext ||
	    mb.highestmodseq != sn->mb.highestmodseq)
		return 0;
	out->uidvalidity = mb.uidvalidity;
	out->uidnext = mb.uidnext;
	out->highestmodseq = mb.highestmodseq;
	out->count = sn->count;
	out->msgs = x_calloc(sn->count ? sn->count : 1, sizeof(*out->msgs));
	store_msgs_copy(out->msgs, sn->msgs, sn->count);
	return 1;
}

bool
store_snap_covers(const struct store *st, const char *name,
    const struct stat *cur, const struct stat *new, int64_t id,
    uint32_t uidvalidity, uint32_t uidnext, uint64_t highestmodseq)
{
	const struct store_snap *sn = &st->snap;

	return sn->name != NULL && strcmp(sn->name, name) == 0 &&
	    store_stamp_equal(&sn->cur_st, cur) &&
	    store_stamp_equal(&sn->new_st, new) &&
	    sn->mb.id == id && sn->mb.uidvalidity == uidvalidity &&
	    sn->mb.uidnext == uidnext &&
	    sn->mb.highestmodseq == highestmodseq;
}

/* Keeps a copy of a full load's result when cur/ and new/ did not change
 * since f's stats (taken before the scan) and those are old enough. */
static void
store_snap_keep(struct store *st, const struct store_folder *f,
    const struct store_mbox *mb, const struct store_mailbox *out)
{
	struct store_snap *sn = &st->snap;
	struct stat cur, new;

	store_snap_free(sn);
	time_t now = time(NULL);
	if (fstat(f->curfd, &cur) < 0 || fstat(f->newfd, &new) < 0 ||
	    !store_stamp_equal(&cur, &f->cur_st) ||
	    !store_stamp_equal(&new, &f->new_st) ||
	    !store_stamp_old(&cur, now) || !store_stamp_old(&new, now))
		return;
	sn->name = x_strdup(f->name);
	sn->mb = *mb;
	sn->cur_st = cur;
	sn->new_st = new;
	sn->count = out->count;
	sn->msgs = x_calloc(out->count ? out->count : 1, sizeof(*sn->msgs));
	store_msgs_copy(sn->msgs, out->msgs, out->count);
}

/* ---- loading (continued) ------------------------------------------------ */

/* The full load: scan, index, summaries of the new messages. */
static int
store_load_full(struct store *st, const struct store_folder *f,
    struct store_mailbox *out, bool keep, char **error_r)
{
	struct store_load ld = { .st = st, .f = f };
	int r = -1;

	if (store_durable(st, true, error_r) < 0)
		goto done;
	if (store_begin(st, error_r) < 0 ||
	    store_load_locked(&ld, error_r) < 0) {
		store_rollback(st);
		int e = errno;
		(void)store_durable(st, false, NULL);
		errno = e;
		goto done;
	}
	if (store_durable(st, false, NULL) < 0)
		log_warnx("store: synchronous=NORMAL: %s",
		    sqlite3_errmsg(st->db));
	store_sort(ld.msgs, ld.nmsgs, sizeof(*ld.msgs), store_msg_uid_cmp);
	out->uidvalidity = ld.mb.uidvalidity;
	out->uidnext = ld.mb.uidnext;
	out->highestmodseq = ld.mb.highestmodseq;
	out->count = ld.nmsgs;
	out->msgs = ld.msgs;
	ld.msgs = NULL;
	ld.nmsgs = 0;
	/* New UIDs are above all others: the last ones after the sort. */
	store_summaries_fill(st, ld.mb.id, out->msgs + out->count - ld.nnew,
	    ld.nnew);
	if (keep)
		store_snap_keep(st, f, &ld.mb, out);
	r = 0;
done:
	store_load_free(&ld);
	return r;
}

/* keep: make this the store's snapshot (STATUS of another mailbox does
 * not replace the selected one's). */
static int
store_load(struct store *st, const char *mailbox, struct store_mailbox *out,
    bool keep, char **error_r)
{
	struct store_folder *f;

	memset(out, 0, sizeof(*out));
	if ((f = store_folder_open(st, mailbox, error_r)) == NULL)
		return -1;
	int r = store_snap_hit(st, f, out, error_r);
	if (r != 0)
		return r > 0 ? 0 : -1;
	keep |= st->snap.name != NULL && strcmp(st->snap.name, f->name) == 0;
	return store_load_full(st, f, out, keep, error_r);
}

int
store_mailbox_load(struct store *st, const char *mailbox,
    struct store_mailbox *out, char **error_r)
{
	return store_load(st, mailbox, out, true, error_r);
}

int
store_mailbox_load_peek(struct store *st, const char *mailbox,
    struct store_mailbox *out, char **error_r)
{
	return store_load(st, mailbox, out, false, error_r);
}

void
store_mailbox_free(struct store_mailbox *mb)
{
	if (mb == NULL)
		return;
	for (size_t i = 0; i < mb->count; i++) {
		x_free(&mb->msgs[i].path);
		x_free(&mb->msgs[i].keywords);
	}
	x_free(&mb->msgs);
	memset(mb, 0, sizeof(*mb));
}

/* ---- finding one message's file ----------------------------------------- */

void
store_lookup_free(struct store_lookup *lk)
{
	store_scan_free(&lk->scan);
	lk->done = false;
}

int
store_find_file(const struct store_folder *f, struct store_lookup *lk,
    const char *base, unsigned flags, int *dirfd, char *out)
{
	struct stat sb;
	size_t skipped = 0;

	if (store_name_build(out, base, strlen(base), flags, NULL) == 0 &&
	    fstatat(f->curfd, out, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
		*dirfd = f->curfd;
		return 1;
	}
	if (!lk->done) {
		if (store_dir_read(f->curfd, false, &lk->scan, &skipped) < 0 ||
		    store_dir_read(f->newfd, true, &lk->scan, &skipped) < 0)
			return -1;
		store_sort(lk->scan.v, lk->scan.n, sizeof(*lk->scan.v),
		    store_ent_cmp);
		lk->done = true;
	}
	struct store_ent *e = store_scan_find(lk->scan.v, lk->scan.n, base,
	    strlen(base));
	if (e == NULL)
		return 0;
	memcpy(out, e->name, strlen(e->name) + 1);
	*dirfd = e->in_new ? f->newfd : f->curfd;
	return 1;
}

int
store_msg_get(struct store *st, int64_t mbox_id, uint32_t uid,
    struct store_row *row, char **error_r)
{
	sqlite3_stmt *s = store_sql(st, SQL_MSG_GET);

	memset(row, 0, sizeof(*row));
	store_bind_int(s, 1, mbox_id);
	store_bind_int(s, 2, uid);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		store_row_read(s, row);
	else if (rc != SQLITE_DONE)
		store_db_error(st, error_r);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int
store_vanished_add(struct store *st, int64_t mbox_id, uint32_t uid,
    uint64_t modseq, char **error_r)
{
	sqlite3_stmt *s = store_sql(st, SQL_VANISHED_ADD);

	store_bind_int(s, 1, mbox_id);
	store_bind_int(s, 2, uid);
	store_bind_int(s, 3, (int64_t)modseq);
	return store_run(st, s, error_r);
}

/* ---- summaries of new messages ------------------------------------------ */

int
store_summary_set(struct store *st, int64_t mbox_id, uint32_t uid,
    const struct mime_summary *sum, char **error_r)
{
	sqlite3_stmt *s = store_sql(st, SQL_SUMMARY_SET);

	store_bind_int(s, 1, mbox_id);
	store_bind_int(s, 2, uid);
	store_bind_str(s, 3, sum->envelope);
	store_bind_str(s, 4, sum->body);
	store_bind_str(s, 5, sum->bodystructure);
	store_bind_int(s, 6, (int64_t)sum->sentdate);
	store_bind_blob(s, 7, sum->hdrcache, sum->hdrcache_len);
	return store_run(st, s, error_r);
}

/* One chunk: files read without the lock, one short transaction. */
static void
store_summaries_chunk(struct store *st, int64_t mbox_id,
    const struct store_msg *msgs, size_t n)
{
	struct mime_summary *sums = x_calloc(n ? n : 1, sizeof(*sums));
	bool *ok = x_calloc(n ? n : 1, sizeof(*ok));
	char *err = NULL;
	size_t nok = 0;

	for (size_t i = 0; i < n; i++) {
		int fd = store_msg_open(msgs[i].path);
		if (fd >= 0 && mime_summarize(fd, &sums[i], &err) == 0)
			ok[i] = true, nok++;
		else if (fd >= 0)
			log_debug("store: summary of %s: %s", msgs[i].path,
			    err);
		x_free(&err);
		if (fd >= 0)
			close(fd);
	}
	if (nok > 0 && store_begin(st, &err) == 0) {
		int r = 0;
		for (size_t i = 0; r == 0 && i < n; i++)
			if (ok[i])
				r = store_summary_set(st, mbox_id, msgs[i].uid,
				    &sums[i], &err);
		(void)store_finish(st, r, &err);
	}
	if (err != NULL)
		log_warnx("store: caching summaries: %s", err);
	x_free(&err);
	for (size_t i = 0; i < n; i++)
		mime_summary_free(&sums[i]);
	x_free(&sums);
	x_free(&ok);
}

/* A cache: what cannot be read or parsed now is computed again when
 * asked for (store_msg_summary), so failures are only logged. */
void
store_summaries_fill(struct store *st, int64_t mbox_id,
    const struct store_msg *msgs, size_t n)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t i = 0; i < n; i += STORE_SUMMARY_CHUNK) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec >= STORE_SUMMARY_BUDGET) {
			log_info("store: %zu summaries left for later", n - i);
			break;
		}
		store_summaries_chunk(st, mbox_id, msgs + i,
		    n - i < STORE_SUMMARY_CHUNK ? n - i : STORE_SUMMARY_CHUNK);
	}
}

/* ---- opening a message -------------------------------------------------- */

/* Opens base:2,FLAGS in dirfd for every subset of the standard flag
 * letters (in Maildir's ASCII order), or -1. */
static int
store_msg_open_flags(int dirfd, const char *name)
{
	static const char letters[] = "DFRST";
	char try[NAME_MAX + 1];
	size_t base = strcspn(name, ":");

	if (base + sizeof(":2,DFRST") > sizeof(try))
		return -1;
	memcpy(try, name, base);
	memcpy(try + base, ":2,", 3);
	for (unsigned mask = 0; mask < 32; mask++) {
		size_t n = base + 3;
		for (unsigned i = 0; i < 5; i++)
			if (mask & (1u << i))
				try[n++] = letters[i];
		try[n] = '\0';
		if (strcmp(try, name) == 0)
			continue;
		int fd = openat(dirfd, try, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0 || errno != ENOENT)
			return fd;
	}
	return -1;
}

int
store_msg_open(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd >= 0 || errno != ENOENT)
		return fd;
	const char *slash = strrchr(path, '/');
	if (slash == NULL)
		return -1;
	char *dir = x_strndup(path, (size_t)(slash - path));
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	x_free(&dir);
	if (dirfd < 0)
		return -1;
	/* Most often another session changed the standard flags: try the
	 * 32 names those can give before reading the whole folder. */
	fd = store_msg_open_flags(dirfd, slash + 1);
	if (fd >= 0) {
		close(dirfd);
		return fd;
	}
	struct store_scan sc = { 0 };
	struct store_ent want;
	size_t skipped = 0;
	char *name = x_strdup(slash + 1);
	store_ent_init(&want, name, false);
	if (store_dir_read(dirfd, false, &sc, &skipped) == 0) {
		store_sort(sc.v, sc.n, sizeof(*sc.v), store_ent_cmp);
		struct store_ent *e = store_scan_find(sc.v, sc.n, name,
		    want.baselen);
		errno = ENOENT;
		if (e != NULL)
			fd = openat(dirfd, e->name,
			    O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	int saved = errno;
	x_free(&name);
	store_scan_free(&sc);
	close(dirfd);
	errno = saved;
	return fd;
}
