/* Reading only what changed (store_mailbox_changes), and the bookkeeping
 * that makes it safe: the index records the stamps (device, inode, mtime,
 * ctime) of a mailbox's cur/ and new/ as they were when it last matched
 * them.
 *
 * Every change a store makes to cur/ or new/ happens inside a write
 * transaction (BEGIN IMMEDIATE, so one store at a time, in any process),
 * which calls store_touch before it: when the directories still have the
 * recorded stamps, nothing else changed them since, and at commit the
 * stamps after this transaction's own changes are recorded with them.
 * When they do not (a Maildir reader renamed a file, a delivery linked
 * one into new/), the stamps are cleared, and the next session to look
 * makes a full scan, which records them again. A reader whose stamps
 * match the recorded ones may trust the index. A reader that finds them
 * different looks again holding the write lock: another store may have
 * been between its change and its commit, and a scan of 10,000 entries
 * costs far more than that wait.
 *
 * What this cannot see: a change by another program in the same clock
 * tick as a recorded stamp (timestamps have a granularity), or between a
 * transaction's touch and its commit. So a full scan runs at least every
 * STORE_RESCAN_SECS while sessions look at a mailbox: such a change is
 * seen that much later, never lost (a store whose load snapshot still
 * holds needs no rescan: the snapshot's scan was one). A stamp is only
 * recorded while new/ is empty, so an SMTP delivery (a link into new/
 * without the lock) is seen at once even when it lands during another
 * store's transaction. */
#include "store/store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/xmalloc.h"

static void
store_stamp_format(char *out, const struct stat *cur, const struct stat *new)
{
	snprintf(out, STORE_STAMP_MAX,
	    "%jx.%jx.%jx.%lx.%jx.%lx/%jx.%jx.%jx.%lx.%jx.%lx",
	    (uintmax_t)cur->st_dev, (uintmax_t)cur->st_ino,
	    (uintmax_t)cur->st_mtim.tv_sec, (unsigned long)cur->st_mtim.tv_nsec,
	    (uintmax_t)cur->st_ctim.tv_sec, (unsigned long)cur->st_ctim.tv_nsec,
	    (uintmax_t)new->st_dev, (uintmax_t)new->st_ino,
	    (uintmax_t)new->st_mtim.tv_sec, (unsigned long)new->st_mtim.tv_nsec,
	    (uintmax_t)new->st_ctim.tv_sec,
	    (unsigned long)new->st_ctim.tv_nsec);
}

/* The stamp of the directories now: false when they cannot be read. */
static bool
store_stamp_now(int curfd, int newfd, char *out)
{
	struct stat cur, new;

	if (fstat(curfd, &cur) < 0 || fstat(newfd, &new) < 0)
		return false;
	store_stamp_format(out, &cur, &new);
	return true;
}

/* The recorded stamp of row id equals stamp. */
static bool
store_stamp_recorded(struct store *st, int64_t id, const char *stamp)
{
	sqlite3_stmt *s = store_sql(st, SQL_MBOX_STAMP_GET);
	bool same = false;

	store_bind_int(s, 1, id);
	if (sqlite3_step(s) == SQLITE_ROW) {
		const unsigned char *v = sqlite3_column_text(s, 0);
		same = v != NULL && strcmp((const char *)v, stamp) == 0;
	}
	sqlite3_reset(s);
	return same;
}

void
store_touch(struct store *st, const struct store_folder *f, int64_t mbox_id,
    bool scan)
{
	char stamp[STORE_STAMP_MAX];

	for (size_t i = 0; i < st->ntouched; i++) {
		if (st->touched[i].mbox_id == mbox_id) {
			st->touched[i].scan |= scan;
			return;
		}
	}
	/* Past the table the stamps stay as they were: they no longer
	 * match, so the next look scans. Never wrong, only slower. */
	if (st->ntouched == STORE_FOLDERS)
		return;
	struct store_touched *t = &st->touched[st->ntouched++];
	t->mbox_id = mbox_id;
	t->curfd = f->curfd;
	t->newfd = f->newfd;
	t->scan = scan;
	t->clean = !scan && store_stamp_now(f->curfd, f->newfd, stamp) &&
	    store_stamp_recorded(st, mbox_id, stamp);
}

int
store_mbox_touch(struct store *st, const struct store_folder *f,
    struct store_mbox *mb, char **error_r)
{
	if (store_mbox_get(st, f->name, mb, error_r) < 0)
		return -1;
	store_touch(st, f, mb->id, false);
	return 0;
}

/* True when new/ holds no message: a delivery links into new/ without
 * the index lock, so one that lands between a touch and the commit must
 * not be covered by the stamp recorded then. */
static bool
store_new_empty(int newfd)
{
	int fd = openat(newfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;
	bool empty = d != NULL;

	if (d == NULL && fd >= 0)
		close(fd);
	while (empty && (e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			empty = false;
	if (d != NULL)
		closedir(d);
	return empty;
}

void
store_stamps_save(struct store *st)
{
	char stamp[STORE_STAMP_MAX];

	for (size_t i = 0; i < st->ntouched; i++) {
		const struct store_touched *t = &st->touched[i];
		bool keep = (t->clean || t->scan) &&
		    store_stamp_now(t->curfd, t->newfd, stamp) &&
		    store_new_empty(t->newfd);
		sqlite3_stmt *s = store_sql(st, SQL_MBOX_STAMP_SET);
		store_bind_int(s, 1, t->mbox_id);
		if (keep)
			store_bind_str(s, 2, stamp);
		store_bind_int(s, 3, t->scan ? (int64_t)time(NULL) : 0);
		/* A failure leaves the old stamp, which no longer matches
		 * the directories: the next look scans. */
		if (store_run(st, s, NULL) < 0)
			log_warnx("store: recording a folder's stamp: %s",
			    sqlite3_errmsg(st->db));
	}
	st->ntouched = 0;
}

/* ---- reading the changes ------------------------------------------------ */

static void
store_changed_read(const struct store_folder *f, sqlite3_stmt *s,
    struct store_msg *m)
{
	char name[STORE_NAME_MAX + 1];
	const char *base = (const char *)sqlite3_column_text(s, 1);
	size_t baselen = (size_t)sqlite3_column_bytes(s, 1);

	m->uid = (uint32_t)sqlite3_column_int64(s, 0);
	m->flags = (unsigned)sqlite3_column_int(s, 2);
	m->modseq = (uint64_t)sqlite3_column_int64(s, 3);
	m->size = (uint64_t)sqlite3_column_int64(s, 4);
	m->internaldate = (time_t)sqlite3_column_int64(s, 5);
	m->keywords = store_column_str(s, 6);
	m->savedate = (time_t)sqlite3_column_int64(s, 7);
	/* The name a store gives a file with these flags; another name
	 * (letters of other programs) is found by store_msg_open. */
	if (base == NULL || store_name_build(name, base, baselen, m->flags,
	    NULL) < 0)
		snprintf(name, sizeof(name), "%.*s", (int)baselen,
		    base != NULL ? base : "");
	m->path = x_asprintf("%s/cur/%s", f->dir, name);
}

static int
store_changes_read(struct store *st, const struct store_folder *f,
    int64_t id, uint64_t since, struct store_changes *out, char **error_r)
{
	sqlite3_stmt *s = store_sql(st, SQL_MSG_CHANGED);
	size_t cap = 0;
	int rc;

	store_bind_int(s, 1, id);
	store_bind_int(s, 2, (int64_t)since);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (out->count == cap) {
			cap = cap ? cap * 2 : 16;
			out->msgs = x_reallocarray(out->msgs, cap,
			    sizeof(*out->msgs));
		}
		struct store_msg *m = &out->msgs[out->count++];
		memset(m, 0, sizeof(*m));
		store_changed_read(f, s, m);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		store_db_error(st, error_r);
		return -1;
	}
	return store_vanished_read(st, id, since, &out->vanished,
	    &out->nvanished, error_r);
}

/* What the index row says of folder f: STORE_TRUST_YES when the index
 * may be trusted (*mb has the row's values), STORE_TRUST_RACE
 * when the stamps differ (another store may be between its change and
 * its commit), STORE_TRUST_NO otherwise; -1 on an error. Inside a
 * transaction. */
enum { STORE_TRUST_NO, STORE_TRUST_YES, STORE_TRUST_RACE };

static int
store_trust(struct store *st, const struct store_folder *f,
    uint32_t uidvalidity, struct store_mbox *mb, char **error_r)
{
	char stamp[STORE_STAMP_MAX];
	sqlite3_stmt *s = store_sql(st, SQL_MBOX_DELTA);
	struct stat cur, new;
	int r = STORE_TRUST_NO;

	memset(mb, 0, sizeof(*mb));
	/* Now, not when the folder was opened: the second look comes
	 * after a wait for the write lock. */
	if (fstat(f->curfd, &cur) < 0 || fstat(f->newfd, &new) < 0)
		return STORE_TRUST_NO;
	store_stamp_format(stamp, &cur, &new);
	store_bind_text(s, 1, f->name, strlen(f->name));
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const unsigned char *rec = sqlite3_column_text(s, 4);
		int64_t scanned = sqlite3_column_int64(s, 5);
		int64_t now = (int64_t)time(NULL);
		mb->id = sqlite3_column_int64(s, 0);
		mb->uidvalidity = (uint32_t)sqlite3_column_int64(s, 1);
		mb->uidnext = (uint32_t)sqlite3_column_int64(s, 2);
		mb->highestmodseq = (uint64_t)sqlite3_column_int64(s, 3);
		bool same = rec != NULL && strcmp((const char *)rec, stamp) == 0;
		/* A quiet mailbox: no store has scanned it for a while,
		 * but this store's snapshot proves nothing changed. */
		if (uidvalidity != 0 && mb->uidvalidity != uidvalidity)
			r = STORE_TRUST_NO;
		else if (same && ((scanned <= now &&
		    now - scanned < STORE_RESCAN_SECS) ||
		    store_snap_covers(st, f->name, &cur, &new, mb->id,
		    mb->uidvalidity, mb->uidnext, mb->highestmodseq)))
			r = STORE_TRUST_YES;
		else if (!same && rec != NULL)
			r = STORE_TRUST_RACE;
	} else if (rc != SQLITE_DONE) {
		store_db_error(st, error_r);
		r = -1;
	}
	sqlite3_reset(s);
	return r;
}

/* One attempt: without the write lock first (readers do not wait), and
 * when the stamps differ, once more holding it: then no other store is
 * between its change and its commit, and a difference is real. */
static int
store_changes_try(struct store *st, const struct store_folder *f,
    uint32_t uidvalidity, uint64_t since, bool locked,
    struct store_changes *out, char **error_r)
{
	struct store_mbox mb;

	if (store_exec(st, locked ? "BEGIN IMMEDIATE" : "BEGIN",
	    error_r) < 0)
		return -1;
	int r = store_trust(st, f, uidvalidity, &mb, error_r);
	if (r == STORE_TRUST_YES) {
		out->uidvalidity = mb.uidvalidity;
		out->uidnext = mb.uidnext;
		out->highestmodseq = mb.highestmodseq;
		if (mb.highestmodseq > since &&
		    store_changes_read(st, f, mb.id, since, out, error_r) < 0)
			r = -1;
	}
	store_rollback(st);
	return r;
}

int
store_mailbox_changes(struct store *st, const char *mailbox,
    uint32_t uidvalidity, uint64_t since, struct store_changes *out,
    char **error_r)
{
	const struct store_folder *f;

	memset(out, 0, sizeof(*out));
	if ((f = store_folder_open(st, mailbox, error_r)) == NULL)
		return -1;
	int r = store_changes_try(st, f, uidvalidity, since, false, out,
	    error_r);
	if (r == STORE_TRUST_RACE) {
		store_changes_free(out);
		memset(out, 0, sizeof(*out));
		r = store_changes_try(st, f, uidvalidity, since, true, out,
		    error_r);
	}
	if (r != STORE_TRUST_YES) {
		store_changes_free(out);
		memset(out, 0, sizeof(*out));
	}
	return r == STORE_TRUST_YES ? 1 : r < 0 ? -1 : 0;
}

void
store_changes_free(struct store_changes *ch)
{
	if (ch == NULL)
		return;
	for (size_t i = 0; i < ch->count; i++) {
		x_free(&ch->msgs[i].path);
		x_free(&ch->msgs[i].keywords);
	}
	x_free(&ch->msgs);
	x_free(&ch->vanished);
	ch->count = ch->nvanished = 0;
}
