/* The per-user mail store: opening it, its index's schema and upgrades,
 * and the helpers every store file uses (errors, statements,
 * transactions). The other parts: store_names.c (mailbox and file
 * names), store_scan.c (folder scans, loads), store_flags.c (flags,
 * expunge), store_mailboxes.c (mailbox list, create, delete, rename,
 * status), store_copy.c (APPEND, COPY, MOVE, summaries), store_keywords.c.
 *
 * Untrusted input: file names found in the Maildir (store_file_name_ok
 * bounds them before any use) and mailbox names from clients
 * (store_mailbox_name_ok).
 *
 * Every change to a folder (moving new/ to cur/, renames for flags,
 * unlinks, mailbox creation, deletion and renames) happens inside a
 * BEGIN IMMEDIATE transaction of index.db, so two stores on the same
 * user, in one process or several, never see a half-done change: a file
 * gets one UID, and a UID one file. */
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/userdb.h"
#include "core/buf.h"
#include "core/fs.h"
#include "core/xmalloc.h"
#include "store/mime.h"

#define STORE_MSG_COLS "uid, base, flags, modseq, size, internaldate, " \
	"keywords, coalesce(savedate, internaldate)"

static const char *const store_sql_text[SQL_COUNT] = {
	[SQL_MBOX_GET] = "SELECT id, uidvalidity, uidnext, highestmodseq, "
	    "special FROM mailboxes WHERE name = ?1",
	[SQL_MBOX_INSERT] = "INSERT INTO mailboxes(name, uidvalidity, "
	    "uidnext, highestmodseq, special) VALUES(?1, ?2, 1, 1, ?3)",
	[SQL_MBOX_UPDATE] = "UPDATE mailboxes SET uidnext = ?2, "
	    "highestmodseq = ?3 WHERE id = ?1",
	[SQL_MBOX_SPECIAL] = "UPDATE mailboxes SET special = ?2 "
	    "WHERE id = ?1",
	[SQL_MBOX_RENAME] = "UPDATE mailboxes SET name = ?2 WHERE id = ?1",
	[SQL_MBOX_ALL] = "SELECT id, name, special FROM mailboxes",
	[SQL_MBOX_DROP_MSGS] = "DELETE FROM messages WHERE mailbox_id = ?1",
	[SQL_MBOX_DROP_VANISHED] = "DELETE FROM vanished "
	    "WHERE mailbox_id = ?1",
	[SQL_MBOX_DROP_KEYWORDS] = "DELETE FROM keywords "
	    "WHERE mailbox_id = ?1",
	[SQL_MBOX_DROP] = "DELETE FROM mailboxes WHERE id = ?1",
	[SQL_UIDVALIDITY_LAST] = "SELECT max("
	    "coalesce((SELECT value FROM meta WHERE name = 'uidvalidity'), 0),"
	    "coalesce((SELECT max(uidvalidity) FROM mailboxes), 0))",
	[SQL_UIDVALIDITY_SET] = "INSERT OR REPLACE INTO meta(name, value) "
	    "VALUES('uidvalidity', ?1)",
	[SQL_MSG_LIST] = "SELECT " STORE_MSG_COLS " FROM messages "
	    "WHERE mailbox_id = ?1",
	[SQL_MSG_GET] = "SELECT " STORE_MSG_COLS " FROM messages "
	    "WHERE mailbox_id = ?1 AND uid = ?2",
	[SQL_MSG_UIDS] = "SELECT uid FROM messages WHERE mailbox_id = ?1 "
	    "ORDER BY uid",
	[SQL_MSG_INSERT] = "INSERT INTO messages(mailbox_id, uid, base, "
	    "flags, modseq, size, internaldate, keywords, savedate, envelope, "
	    "body, bodystructure, sentdate, hdrsearch) VALUES(?1, ?2, ?3, ?4, "
	    "?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
	[SQL_MSG_FLAGS] = "UPDATE messages SET flags = ?3, modseq = ?4 "
	    "WHERE mailbox_id = ?1 AND uid = ?2",
	[SQL_MSG_UPDATE] = "UPDATE messages SET flags = ?3, keywords = ?4, "
	    "modseq = ?5 WHERE mailbox_id = ?1 AND uid = ?2",
	[SQL_MSG_DELETE] = "DELETE FROM messages "
	    "WHERE mailbox_id = ?1 AND uid = ?2",
	[SQL_SUMMARY_GET] = "SELECT envelope, body, bodystructure, sentdate, "
	    "hdrsearch FROM messages WHERE mailbox_id = ?1 AND uid = ?2",
	[SQL_SUMMARY_BY_NAME] = "SELECT m.envelope, m.body, "
	    "m.bodystructure, m.sentdate, m.mailbox_id FROM mailboxes b "
	    "JOIN messages m ON m.mailbox_id = b.id "
	    "WHERE b.name = ?1 AND m.uid = ?2",
	[SQL_SUMMARY_SET] = "UPDATE messages SET envelope = ?3, body = ?4, "
	    "bodystructure = ?5, sentdate = ?6, hdrsearch = ?7 "
	    "WHERE mailbox_id = ?1 AND uid = ?2",
	[SQL_MBOX_DELTA] = "SELECT id, uidvalidity, uidnext, highestmodseq, "
	    "dirstamp, scanned FROM mailboxes WHERE name = ?1",
	[SQL_MBOX_STAMP_GET] = "SELECT dirstamp FROM mailboxes WHERE id = ?1",
	[SQL_MBOX_STAMP_SET] = "UPDATE mailboxes SET dirstamp = ?2, "
	    "scanned = max(scanned, ?3) WHERE id = ?1",
	[SQL_MSG_CHANGED] = "SELECT " STORE_MSG_COLS " FROM messages "
	    "WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid",
	[SQL_HDRSEARCH_SET] = "UPDATE messages SET hdrsearch = ?3 "
	    "WHERE mailbox_id = ?1 AND uid = ?2 AND hdrsearch IS NULL",
	[SQL_HDRSEARCH_LIST] = "SELECT uid, hdrsearch FROM messages "
	    "WHERE mailbox_id = ?1 AND uid >= ?2 ORDER BY uid LIMIT ?3",
	[SQL_VANISHED_ADD] = "INSERT OR REPLACE INTO vanished(mailbox_id, "
	    "uid, modseq) VALUES(?1, ?2, ?3)",
	[SQL_VANISHED_LIST] = "SELECT uid FROM vanished "
	    "WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid",
	[SQL_KW_LIST] = "SELECT name FROM keywords WHERE mailbox_id = ?1 "
	    "ORDER BY rowid",
	[SQL_KW_ADD] = "INSERT INTO keywords(mailbox_id, name) "
	    "VALUES(?1, ?2)",
	[SQL_SUB_LIST] = "SELECT name FROM subscriptions",
	[SQL_SUB_ADD] = "INSERT OR IGNORE INTO subscriptions(name) "
	    "VALUES(?1)",
	[SQL_SUB_DELETE] = "DELETE FROM subscriptions WHERE name = ?1",
};

/* Version 1, as the first store made it. A new index is made with it and
 * then upgraded like an old one, so the upgrade is the one path.
 * meta keeps the last UIDVALIDITY handed out, so that a mailbox row made
 * again (after a DELETE) never gets an old value back. */
static const char store_schema_v1[] =
    "CREATE TABLE IF NOT EXISTS mailboxes("
    " id INTEGER PRIMARY KEY,"
    " name TEXT UNIQUE NOT NULL,"
    " uidvalidity INTEGER NOT NULL,"
    " uidnext INTEGER NOT NULL,"
    " highestmodseq INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS messages("
    " mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id),"
    " uid INTEGER NOT NULL,"
    " base TEXT NOT NULL,"
    " flags INTEGER NOT NULL,"
    " modseq INTEGER NOT NULL,"
    " size INTEGER NOT NULL,"
    " internaldate INTEGER NOT NULL,"
    " PRIMARY KEY(mailbox_id, uid),"
    " UNIQUE(mailbox_id, base));"
    "CREATE TABLE IF NOT EXISTS meta("
    " name TEXT PRIMARY KEY NOT NULL,"
    " value INTEGER NOT NULL);";

/* Version 2 (IMAP): keywords, SAVEDATE and the MIME summary per message,
 * special-use per mailbox, subscriptions, expunged UIDs for QRESYNC
 * (vanished) and the keywords each mailbox has seen. Mailbox names
 * change from the folder's ("a.b") to the client's ("a/b"):
 * store_migrate_names. */
static const char store_schema_v2[] =
    "ALTER TABLE mailboxes ADD COLUMN special INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN keywords TEXT;"
    "ALTER TABLE messages ADD COLUMN savedate INTEGER;"
    "ALTER TABLE messages ADD COLUMN envelope TEXT;"
    "ALTER TABLE messages ADD COLUMN body TEXT;"
    "ALTER TABLE messages ADD COLUMN bodystructure TEXT;"
    "ALTER TABLE messages ADD COLUMN sentdate INTEGER;"
    "CREATE TABLE IF NOT EXISTS subscriptions("
    " name TEXT PRIMARY KEY NOT NULL);"
    "CREATE TABLE IF NOT EXISTS vanished("
    " mailbox_id INTEGER NOT NULL,"
    " uid INTEGER NOT NULL,"
    " modseq INTEGER NOT NULL,"
    " PRIMARY KEY(mailbox_id, uid));"
    "CREATE INDEX IF NOT EXISTS vanished_modseq"
    " ON vanished(mailbox_id, modseq);"
    "CREATE TABLE IF NOT EXISTS keywords("
    " mailbox_id INTEGER NOT NULL,"
    " name TEXT NOT NULL COLLATE NOCASE,"
    " PRIMARY KEY(mailbox_id, name));"
    "PRAGMA user_version=2;";

/* Version 3: the header search cache (mime_hdrcache_make; rows of an
 * older index have none: SEARCH reads their files, as before), and what
 * lets a session read only the changes (store_delta.c): the stamps of
 * cur/ and new/ the index is known to match, when a full scan last ran,
 * and an index by MODSEQ. */
static const char store_schema_v3[] =
    "ALTER TABLE messages ADD COLUMN hdrsearch BLOB;"
    "ALTER TABLE mailboxes ADD COLUMN dirstamp TEXT;"
    "ALTER TABLE mailboxes ADD COLUMN scanned INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX IF NOT EXISTS messages_modseq"
    " ON messages(mailbox_id, modseq);"
    "PRAGMA user_version=3;";

/* Version 4: the search caches in an index of their own, so that SEARCH
 * reads them in UID order from a few compact pages instead of looking up
 * each message's whole row (SQL_HDRSEARCH_LIST is answered from the
 * index alone). */
static const char store_schema_v4[] =
    "CREATE INDEX IF NOT EXISTS messages_hdrsearch"
    " ON messages(mailbox_id, uid, hdrsearch);"
    "PRAGMA user_version=4;";

/* ---- errors, statements, transactions ----------------------------------- */

static void
store_vset_error(char **error_r, const char *fmt, va_list ap)
{
	struct buf b = BUF_INIT;

	if (error_r == NULL)
		return;
	buf_vprintf(&b, fmt, ap);
	*error_r = x_strdup(buf_cstr(&b));
	buf_free(&b);
}

void
store_clear_error(char **error_r)
{
	if (error_r != NULL)
		x_free(error_r);
}

void
store_set_error(char **error_r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	store_vset_error(error_r, fmt, ap);
	va_end(ap);
}

void
store_fail(char **error_r, int e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	store_vset_error(error_r, fmt, ap);
	va_end(ap);
	errno = e;
}

void
store_db_error(struct store *st, char **error_r)
{
	store_fail(error_r, EIO, "index: %s", sqlite3_errmsg(st->db));
}

sqlite3_stmt *
store_sql(struct store *st, enum store_sql q)
{
	sqlite3_stmt *s = st->sql[q];

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

/* Binding only fails on misuse (column out of range): a bug. */
void
store_bind_int(sqlite3_stmt *s, int col, int64_t v)
{
	if (sqlite3_bind_int64(s, col, v) != SQLITE_OK)
		panic("store: bind column %d", col);
}

void
store_bind_text(sqlite3_stmt *s, int col, const char *p, size_t n)
{
	if (n > STORE_NAME_MAX ||
	    sqlite3_bind_text(s, col, p, (int)n, SQLITE_STATIC) != SQLITE_OK)
		panic("store: bind column %d", col);
}

void
store_bind_str(sqlite3_stmt *s, int col, const char *p)
{
	int rc = p == NULL ? sqlite3_bind_null(s, col) :
	    sqlite3_bind_text(s, col, p, -1, SQLITE_STATIC);

	if (rc != SQLITE_OK)
		panic("store: bind column %d", col);
}

void
store_bind_blob(sqlite3_stmt *s, int col, const void *p, size_t n)
{
	int rc = p == NULL ? sqlite3_bind_null(s, col) :
	    sqlite3_bind_blob(s, col, p, (int)n, SQLITE_STATIC);

	if (n > INT_MAX || rc != SQLITE_OK)
		panic("store: bind column %d", col);
}

char *
store_column_blob(sqlite3_stmt *s, int col, size_t *len_r)
{
	const void *p = sqlite3_column_blob(s, col);
	size_t n = (size_t)sqlite3_column_bytes(s, col);

	*len_r = 0;
	if (p == NULL)
		return NULL;
	char *out = x_malloc(n ? n : 1);
	memcpy(out, p, n);
	*len_r = n;
	return out;
}

char *
store_column_str(sqlite3_stmt *s, int col)
{
	const unsigned char *p = sqlite3_column_text(s, col);

	if (p == NULL)
		return NULL;
	return x_strndup((const char *)p, (size_t)sqlite3_column_bytes(s, col));
}

int
store_run(struct store *st, sqlite3_stmt *s, char **error_r)
{
	int rc = sqlite3_step(s);

	if (rc != SQLITE_DONE)
		store_db_error(st, error_r);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
store_exec(struct store *st, const char *sql, char **error_r)
{
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		store_db_error(st, error_r);
		return -1;
	}
	return 0;
}

/* A write transaction from the start: folder scans happen inside it, so
 * they must not be able to interleave with another store's. */
int
store_begin(struct store *st, char **error_r)
{
	return store_exec(st, "BEGIN IMMEDIATE", error_r);
}

void
store_rollback(struct store *st)
{
	int e = errno;

	st->ntouched = 0;
	if (!sqlite3_get_autocommit(st->db) &&
	    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
		log_warnx("store: rollback: %s", sqlite3_errmsg(st->db));
	errno = e;
}

int
store_commit(struct store *st, char **error_r)
{
	store_stamps_save(st);
	int r = store_exec(st, "COMMIT", error_r);

	if (r < 0)
		store_rollback(st);
	return r;
}

int
store_finish(struct store *st, int r, char **error_r)
{
	if (r == 0)
		return store_commit(st, error_r);
	store_rollback(st);
	return -1;
}

/* A load may raise UIDNEXT. Losing that to a power cut would let the same
 * UIDs go to other files next time, while clients may already know them;
 * so loads (and APPEND, COPY) sync the WAL at commit, although the
 * connection otherwise runs with synchronous=NORMAL. SQLite only takes
 * the setting outside a transaction; a load that changes nothing writes,
 * and syncs, nothing. */
int
store_durable(struct store *st, bool on, char **error_r)
{
	int e = errno;
	int r = store_exec(st, on ? "PRAGMA synchronous=FULL" :
	    "PRAGMA synchronous=NORMAL", error_r);

	if (r == 0)
		errno = e;
	return r;
}

void
store_sort(void *v, size_t n, size_t size,
    int (*cmp)(const void *, const void *))
{
	if (n > 1)
		qsort(v, n, size, cmp);
}

static pthread_once_t store_mime_once = PTHREAD_ONCE_INIT;

void
store_mime_init(void)
{
	if (pthread_once(&store_mime_once, mime_init) != 0)
		panic("store: pthread_once");
}

/* ---- schema ------------------------------------------------------------- */

/* Creates path with mode 0600 before SQLite does: SQLite would use 0644,
 * and its -wal and -shm files copy the database file's mode. An index
 * that exists is not opened here: closing any descriptor of a file drops
 * every POSIX lock the process holds on it, the SHARED lock of this
 * process's other connections to the index among them (another process,
 * sqlite3(1) say, could then take it for the last user and remove the
 * WAL under them). */
static int
store_create_file(const char *path, char **error_r)
{
	struct stat sb;

	if (stat(path, &sb) == 0)
		return 0;
	int fd = errno == ENOENT ? open(path, O_RDWR | O_CREAT | O_EXCL |
	    O_CLOEXEC, 0600) : -1;
	if (fd < 0 && errno == EEXIST)
		return 0;	/* made meanwhile by another store */
	if (fd < 0) {
		store_set_error(error_r, "cannot open %s: %s", path,
		    strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

/* Switching to WAL takes an exclusive lock: skip it when another store
 * already did. */
static int
store_wal(struct store *st, char **error_r)
{
	sqlite3_stmt *s;
	bool wal = false;

	if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode", -1, &s,
	    NULL) != SQLITE_OK) {
		store_db_error(st, error_r);
		return -1;
	}
	if (sqlite3_step(s) == SQLITE_ROW)
		wal = strcmp((const char *)sqlite3_column_text(s, 0),
		    "wal") == 0;
	sqlite3_finalize(s);
	if (wal)
		return 0;
	return store_exec(st, "PRAGMA journal_mode=WAL", error_r);
}

static int
store_prepare_all(struct store *st, char **error_r)
{
	for (int i = 0; i < SQL_COUNT; i++) {
		int rc = sqlite3_prepare_v3(st->db, store_sql_text[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &st->sql[i], NULL);
		if (rc != SQLITE_OK) {
			store_db_error(st, error_r);
			return -1;
		}
	}
	return 0;
}

static int
store_user_version(struct store *st, char **error_r)
{
	sqlite3_stmt *s;

	if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s,
	    NULL) != SQLITE_OK) {
		store_db_error(st, error_r);
		return -1;
	}
	int v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
	sqlite3_finalize(s);
	if (v < 0)
		store_db_error(st, error_r);
	return v;
}

struct store_oldname {
	int64_t id;
	char *name;
};

static int
store_oldnames_read(struct store *st, struct store_oldname **v, size_t *n,
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
		(*v)[*n].id = sqlite3_column_int64(s, 0);
		(*v)[(*n)++].name = store_column_str(s, 1);
	}
	if (rc != SQLITE_DONE)
		store_db_error(st, error_r);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Moves the folder of a v1 name to where its v2 name maps: only names
 * with "%" (escaped now) or a first level "inbox" move. 1 moved, 0 not. */
static int
store_migrate_folder(struct store *st, const char *oldname,
    const char *folder, char **error_r)
{
	char *old = x_asprintf("%s/.%s", st->root, oldname);
	char *new = x_asprintf("%s/%s", st->root, folder);
	int r = 0;

	if (strcmp(old, new) != 0) {
		r = 1;
		if (renameat2(AT_FDCWD, old, AT_FDCWD, new,
		    RENAME_NOREPLACE) < 0 && errno != ENOENT) {
			store_fail(error_r, errno, "%s: rename: %s", old,
			    strerror(errno));
			r = -1;
		}
	}
	x_free(&new);
	x_free(&old);
	return r;
}

/* One v1 row: "a.b" becomes "a/b". A row whose name cannot map (or maps
 * onto a name taken) is dropped: its folder, if any, is indexed again
 * under the name it decodes to. 1 when a folder moved, 0, -1. */
static int
store_migrate_name(struct store *st, const struct store_oldname *o,
    char **error_r)
{
	struct store_mbox other;
	char *name = x_strdup(o->name), *norm = NULL, *folder = NULL;
	int r = 0;

	for (char *p = name; *p != '\0'; p++)
		if (*p == '.')
			*p = '/';
	if (!store_mailbox_name_ok(name) || store_name_is_inbox(name) ||
	    (norm = store_name_normalize(name)) == NULL ||
	    (folder = store_name_folder(norm)) == NULL ||
	    ((r = store_mbox_find(st, norm, &other, error_r)) > 0 &&
	    other.id != o->id)) {
		log_warnx("store: %s: mailbox %s dropped from the index",
		    st->root, o->name);
		r = store_mbox_drop(st, o->id, error_r);
		goto done;
	}
	if (r < 0 || (r = store_migrate_folder(st, o->name, folder,
	    error_r)) < 0)
		goto done;
	sqlite3_stmt *s = store_sql(st, SQL_MBOX_RENAME);
	store_bind_int(s, 1, o->id);
	store_bind_text(s, 2, norm, strlen(norm));
	if (store_run(st, s, error_r) < 0)
		r = -1;
done:
	x_free(&folder);
	x_free(&norm);
	x_free(&name);
	return r;
}

static int
store_migrate_names(struct store *st, char **error_r)
{
	struct store_oldname *v;
	size_t n;
	bool moved = false;
	int r = store_oldnames_read(st, &v, &n, error_r);

	for (size_t i = 0; r == 0 && i < n; i++) {
		if (strcmp(v[i].name, "INBOX") == 0)
			continue;
		int m = store_migrate_name(st, &v[i], error_r);
		if (m < 0)
			r = -1;
		moved |= m > 0;
	}
	for (size_t i = 0; i < n; i++)
		x_free(&v[i].name);
	x_free(&v);
	if (r == 0 && moved && fs_fsync_dir(st->root) < 0) {
		store_fail(error_r, errno, "%s: fsync: %s", st->root,
		    strerror(errno));
		r = -1;
	}
	return r;
}

/* Sent, Drafts, Trash, Junk, Archive: made once, with the index (or its
 * upgrade to version 2); a folder of that name that exists already gets
 * the attribute. All subscribed, with INBOX. */
static int
store_create_specials(struct store *st, char **error_r)
{
	static const struct {
		const char *name;
		unsigned use;
	} sp[] = {
		{ "Sent", STORE_USE_SENT }, { "Drafts", STORE_USE_DRAFTS },
		{ "Trash", STORE_USE_TRASH }, { "Junk", STORE_USE_JUNK },
		{ "Archive", STORE_USE_ARCHIVE },
	};
	struct store_mbox mb;

	for (size_t i = 0; i < sizeof(sp) / sizeof(sp[0]); i++) {
		if (store_mailbox_create_locked(st, sp[i].name, sp[i].use,
		    error_r) < 0) {
			if (errno != EEXIST)
				return -1;
			store_clear_error(error_r);
			if (store_mbox_get(st, sp[i].name, &mb, error_r) < 0)
				return -1;
			sqlite3_stmt *s = store_sql(st, SQL_MBOX_SPECIAL);
			store_bind_int(s, 1, mb.id);
			store_bind_int(s, 2, mb.special | sp[i].use);
			if (store_run(st, s, error_r) < 0)
				return -1;
		}
		if (store_subscribe_locked(st, sp[i].name, true, error_r) < 0)
			return -1;
	}
	return store_subscribe_locked(st, "INBOX", true, error_r);
}

/* Only a new or upgraded index is written to: an open of an index of
 * this version commits nothing. */
static int
store_setup_locked(struct store *st, char **error_r)
{
	struct store_mbox mb;
	int v = store_user_version(st, error_r);

	if (v < 0)
		return -1;
	if (v > STORE_SCHEMA_VERSION) {
		store_fail(error_r, EINVAL, "index: schema version %d is "
		    "newer than this program's (%d)", v, STORE_SCHEMA_VERSION);
		return -1;
	}
	if ((v < 1 && store_exec(st, store_schema_v1, error_r) < 0) ||
	    (v < 2 && store_exec(st, store_schema_v2, error_r) < 0) ||
	    (v < 3 && store_exec(st, store_schema_v3, error_r) < 0) ||
	    (v < 4 && store_exec(st, store_schema_v4, error_r) < 0) ||
	    store_prepare_all(st, error_r) < 0 ||
	    (v < 2 && store_migrate_names(st, error_r) < 0) ||
	    store_mbox_get(st, "INBOX", &mb, error_r) < 0 ||
	    (v < 2 && store_create_specials(st, error_r) < 0))
		return -1;
	return 0;
}

static int
store_setup(struct store *st, char **error_r)
{
	sqlite3_busy_timeout(st->db, 5000);
	/* Two first opens of a new index race for the switch to WAL, and
	 * SQLite answers "locked" at once there, without the busy handler. */
	int wal = store_wal(st, error_r);
	for (int i = 0; wal < 0 && i < 100 &&
	    sqlite3_errcode(st->db) == SQLITE_BUSY; i++) {
		store_clear_error(error_r);
		usleep(20000);
		wal = store_wal(st, error_r);
	}
	/* Pages read through a shared mapping, not copied by pread into
	 * each connection's cache: SEARCH and SELECT walk every row of a
	 * mailbox. (An I/O error on the index file then ends the process
	 * with SIGBUS instead of failing one command; what was
	 * acknowledged is on disk either way.) */
	if (wal < 0 ||
	    store_exec(st, "PRAGMA synchronous=NORMAL", error_r) < 0 ||
	    store_exec(st, "PRAGMA mmap_size=" STORE_MMAP_SIZE, error_r) < 0 ||
	    store_begin(st, error_r) < 0)
		return -1;
	return store_finish(st, store_setup_locked(st, error_r), error_r);
}

/* ---- open / close ------------------------------------------------------- */

struct store *
store_open(const char *data_dir, const char *address, char **error_r)
{
	char *root = userdb_maildir_path(data_dir, address);

	store_mime_init();
	if (root == NULL) {
		store_fail(error_r, EINVAL, "invalid address");
		return NULL;
	}
	struct store *st = x_calloc(1, sizeof(*st));
	st->root = root;
	for (size_t i = 0; i < STORE_FOLDERS; i++)
		st->folders[i].curfd = st->folders[i].newfd = -1;
	char *path = x_asprintf("%s/index.db", root);
	/* Makes the root and its cur/ new/ tmp/ when missing. */
	if (store_folder_open(st, "INBOX", error_r) == NULL ||
	    store_create_file(path, error_r) < 0)
		goto fail;
	store_vfs_init();
	int rc = sqlite3_open_v2(path, &st->db,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, STORE_VFS_NAME);
	if (rc != SQLITE_OK) {
		store_set_error(error_r, "cannot open %s: %s", path,
		    st->db != NULL ? sqlite3_errmsg(st->db) :
		    sqlite3_errstr(rc));
		goto fail;
	}
	if (store_setup(st, error_r) < 0)
		goto fail;
	x_free(&path);
	return st;
fail:
	x_free(&path);
	store_close(st);
	return NULL;
}

void
store_close(struct store *st)
{
	if (st == NULL)
		return;
	for (int i = 0; i < SQL_COUNT; i++)
		sqlite3_finalize(st->sql[i]);
	if (st->db != NULL && sqlite3_close(st->db) != SQLITE_OK)
		log_warnx("store: close: %s", sqlite3_errmsg(st->db));
	store_folders_forget(st);
	x_free(&st->name_in);
	x_free(&st->name_norm);
	x_free(&st->root);
	x_free(&st);
}
