/* The per-user mail store: Maildir++ folders and their index, index.db.
 * Untrusted input: file names found in the Maildir (store_file_name_ok
 * bounds them before any use) and mailbox names from clients
 * (store_mailbox_name_ok).
 *
 * Every change to a folder (moving new/ to cur/, renames for flags,
 * unlinks) happens inside a BEGIN IMMEDIATE transaction of index.db, so
 * two stores on the same user, in one process or several, never see a
 * half-done scan: a file gets one UID, and a UID one file. */
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "auth/userdb.h"
#include "core/buf.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/util.h"
#include "core/xmalloc.h"
#include "store/maildir.h"

#define STORE_SCHEMA_VERSION	1
#define STORE_NAME_MAX		255	/* octets of a file name */
#define STORE_SCAN_TRIES	3
#define STORE_F_ALL	(STORE_F_SEEN | STORE_F_ANSWERED | \
			 STORE_F_FLAGGED | STORE_F_DELETED | STORE_F_DRAFT)

enum store_sql {
	SQL_MBOX_GET,
	SQL_MBOX_INSERT,
	SQL_MBOX_UPDATE,
	SQL_UIDVALIDITY_LAST,
	SQL_UIDVALIDITY_SET,
	SQL_MSG_LIST,
	SQL_MSG_GET,
	SQL_MSG_INSERT,
	SQL_MSG_FLAGS,
	SQL_MSG_DELETE,
	SQL_COUNT
};

static const char *const store_sql_text[SQL_COUNT] = {
	[SQL_MBOX_GET] = "SELECT id, uidvalidity, uidnext, highestmodseq "
	    "FROM mailboxes WHERE name = ?1",
	[SQL_MBOX_INSERT] = "INSERT INTO mailboxes"
	    "(name, uidvalidity, uidnext, highestmodseq) VALUES(?1, ?2, 1, 1)",
	[SQL_MBOX_UPDATE] = "UPDATE mailboxes SET uidnext = ?2, "
	    "highestmodseq = ?3 WHERE id = ?1",
	[SQL_UIDVALIDITY_LAST] = "SELECT max("
	    "coalesce((SELECT value FROM meta WHERE name = 'uidvalidity'), 0),"
	    "coalesce((SELECT max(uidvalidity) FROM mailboxes), 0))",
	[SQL_UIDVALIDITY_SET] = "INSERT OR REPLACE INTO meta(name, value) "
	    "VALUES('uidvalidity', ?1)",
	[SQL_MSG_LIST] = "SELECT uid, base, flags, modseq, size, internaldate "
	    "FROM messages WHERE mailbox_id = ?1",
	[SQL_MSG_GET] = "SELECT base, flags FROM messages "
	    "WHERE mailbox_id = ?1 AND uid = ?2",
	[SQL_MSG_INSERT] = "INSERT INTO messages(mailbox_id, uid, base, flags, "
	    "modseq, size, internaldate) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[SQL_MSG_FLAGS] = "UPDATE messages SET flags = ?3, modseq = ?4 "
	    "WHERE mailbox_id = ?1 AND uid = ?2",
	[SQL_MSG_DELETE] = "DELETE FROM messages "
	    "WHERE mailbox_id = ?1 AND uid = ?2",
};

/* meta keeps the last UIDVALIDITY handed out, so that a mailbox row made
 * again (after a future DELETE) never gets an old value back. */
static const char store_schema[] =
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

struct store {
	char *root;		/* the user's Maildir++ root */
	sqlite3 *db;
	sqlite3_stmt *sql[SQL_COUNT];
};

/* A mailbox's row in the index. */
struct store_mbox {
	int64_t id;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
};

/* A mailbox's Maildir, opened for one operation. */
struct store_folder {
	const char *name;	/* as in the index: "INBOX" or the name */
	char *dir;
	int curfd;
	int newfd;
};

/* A message file seen in cur/ (or new/, for lookups). */
struct store_ent {
	char *name;
	size_t baselen;		/* the unique part, before ':' */
	unsigned flags;
	bool in_new;
	bool stat_ok;		/* mtime and size below are known */
	struct timespec mtime;
	uint64_t size;
};

struct store_scan {
	struct store_ent *v;
	size_t n;
	size_t cap;
};

/* An index row of a message. */
struct store_row {
	uint32_t uid;
	unsigned flags;
	char *base;
	size_t baselen;
	uint64_t modseq;
	uint64_t size;
	int64_t internaldate;
};

/* ---- errors, statements, transactions ----------------------------------- */

static void PRINTF_LIKE(2, 3)
store_set_error(char **error_r, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;

	if (error_r == NULL)
		return;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	*error_r = x_strdup(buf_cstr(&b));
	buf_free(&b);
}

static void
store_db_error(struct store *st, char **error_r)
{
	store_set_error(error_r, "index: %s", sqlite3_errmsg(st->db));
}

/* A prepared statement, reset and with no bindings. */
static sqlite3_stmt *
store_sql(struct store *st, enum store_sql q)
{
	sqlite3_stmt *s = st->sql[q];

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

/* Binding only fails on misuse (column out of range): a bug. */
static void
store_bind_int(sqlite3_stmt *s, int col, int64_t v)
{
	if (sqlite3_bind_int64(s, col, v) != SQLITE_OK)
		panic("store: bind column %d", col);
}

static void
store_bind_text(sqlite3_stmt *s, int col, const char *p, size_t n)
{
	if (n > STORE_NAME_MAX ||
	    sqlite3_bind_text(s, col, p, (int)n, SQLITE_STATIC) != SQLITE_OK)
		panic("store: bind column %d", col);
}

/* Steps a statement that returns no rows, then resets it. */
static int
store_run(struct store *st, sqlite3_stmt *s, char **error_r)
{
	int rc = sqlite3_step(s);

	if (rc != SQLITE_DONE)
		store_db_error(st, error_r);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int
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
static int
store_begin(struct store *st, char **error_r)
{
	return store_exec(st, "BEGIN IMMEDIATE", error_r);
}

static void
store_rollback(struct store *st)
{
	if (!sqlite3_get_autocommit(st->db) &&
	    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
		log_warnx("store: rollback: %s", sqlite3_errmsg(st->db));
}

static int
store_commit(struct store *st, char **error_r)
{
	int r = store_exec(st, "COMMIT", error_r);

	if (r < 0)
		store_rollback(st);
	return r;
}

/* A load may raise UIDNEXT. Losing that to a power cut would let the same
 * UIDs go to other files next time, while clients may already know them;
 * so loads sync the WAL at commit, although the connection otherwise runs
 * with synchronous=NORMAL. SQLite only takes the setting outside a
 * transaction; a load that changes nothing writes, and syncs, nothing. */
static int
store_durable(struct store *st, bool on, char **error_r)
{
	return store_exec(st, on ? "PRAGMA synchronous=FULL" :
	    "PRAGMA synchronous=NORMAL", error_r);
}

/* ---- names -------------------------------------------------------------- */

/* Length of the UTF-8 sequence at s (n octets left), 0 when malformed,
 * overlong or a surrogate. */
static size_t
store_utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned cp, min;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		len = 2, min = 0x80, cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		len = 3, min = 0x800, cp = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		len = 4, min = 0x10000, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static bool
store_is_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

bool
store_mailbox_name_ok(const char *name)
{
	if (name == NULL)
		return false;
	if (str_iequal(name, "INBOX"))
		return true;
	size_t n = strlen(name);
	if (n == 0 || n > STORE_NAME_MAX || name[0] == '.' ||
	    name[n - 1] == '.')
		return false;
	const unsigned char *p = (const unsigned char *)name;
	for (size_t i = 0; i < n;) {
		if (store_is_control(p[i]) || p[i] == '/' || p[i] == '\\' ||
		    (p[i] == '.' && p[i + 1] == '.'))
			return false;
		size_t k = store_utf8_len(p + i, n - i);
		if (k == 0)
			return false;
		i += k;
	}
	return true;
}

/* A file name we are willing to index: bounded, no controls, not a
 * dotfile, with a non-empty unique part. */
static bool
store_file_name_ok(const char *name)
{
	size_t n = strnlen(name, STORE_NAME_MAX + 1);

	if (n == 0 || n > STORE_NAME_MAX || name[0] == '.' || name[0] == ':')
		return false;
	for (size_t i = 0; i < n; i++)
		if (store_is_control((unsigned char)name[i]) || name[i] == '/')
			return false;
	return true;
}

static unsigned
store_flags_parse(const char *letters)
{
	unsigned f = 0;

	for (const char *p = letters; *p != '\0'; p++) {
		switch (*p) {
		case 'D': f |= STORE_F_DRAFT; break;
		case 'F': f |= STORE_F_FLAGGED; break;
		case 'R': f |= STORE_F_ANSWERED; break;
		case 'S': f |= STORE_F_SEEN; break;
		case 'T': f |= STORE_F_DELETED; break;
		default: break;	/* P (passed), keywords: not ours */
		}
	}
	return f;
}

/* The flag letters of a name's ":2," info, or NULL when it has none. */
static const char *
store_name_letters(const char *name)
{
	const char *colon = strchr(name, ':');

	if (colon == NULL || strncmp(colon, ":2,", 3) != 0)
		return NULL;
	return colon + 3;
}

/* "base:2,LETTERS" into out (size STORE_NAME_MAX + 1): the letters of
 * flags plus those of keep (the old letters) that are not ours, each once,
 * in ASCII order as the Maildir specification asks. -1 when too long. */
static int
store_name_build(char *out, const char *base, size_t baselen,
    unsigned flags, const char *keep)
{
	static const struct { unsigned flag; char letter; } map[] = {
		{ STORE_F_DRAFT, 'D' }, { STORE_F_FLAGGED, 'F' },
		{ STORE_F_ANSWERED, 'R' }, { STORE_F_SEEN, 'S' },
		{ STORE_F_DELETED, 'T' },
	};
	bool have[256] = { false };
	char letters[257];
	size_t n = 0;

	for (const char *p = keep; p != NULL && *p != '\0'; p++)
		if (strchr("DFRST", *p) == NULL)
			have[(unsigned char)*p] = true;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (flags & map[i].flag)
			have[(unsigned char)map[i].letter] = true;
	for (unsigned c = 1; c < 256; c++)
		if (have[c])
			letters[n++] = (char)c;
	letters[n] = '\0';
	int w = snprintf(out, STORE_NAME_MAX + 1, "%.*s:2,%s", (int)baselen,
	    base, letters);
	return w < 0 || w > STORE_NAME_MAX ? -1 : 0;
}

/* ---- open / close ------------------------------------------------------- */

/* Creates path with mode 0600 before SQLite does: SQLite would use 0644,
 * and its -wal and -shm files copy the database file's mode. */
static int
store_create_file(const char *path, char **error_r)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

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

static int store_mbox_get(struct store *st, const char *name,
    struct store_mbox *mb, char **error_r);

static int
store_setup(struct store *st, char **error_r)
{
	struct store_mbox mb;

	sqlite3_busy_timeout(st->db, 5000);
	/* Two first opens of a new index race for the switch to WAL, and
	 * SQLite answers "locked" at once there, without the busy handler. */
	int wal = store_wal(st, error_r);
	for (int i = 0; wal < 0 && i < 100 &&
	    sqlite3_errcode(st->db) == SQLITE_BUSY; i++) {
		if (error_r)
			x_free(error_r);
		usleep(20000);
		wal = store_wal(st, error_r);
	}
	if (wal < 0 ||
	    store_exec(st, "PRAGMA synchronous=NORMAL", error_r) < 0 ||
	    store_begin(st, error_r) < 0)
		return -1;
	if (store_exec(st, store_schema, error_r) < 0)
		goto fail;
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s,
	    NULL) != SQLITE_OK)
		goto fail_db;
	int v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
	sqlite3_finalize(s);
	if (v < 0)
		goto fail_db;
	if (v > STORE_SCHEMA_VERSION) {
		store_set_error(error_r, "index: schema version %d is newer "
		    "than this program's (%d)", v, STORE_SCHEMA_VERSION);
		goto fail;
	}
	/* Only a new file is written to: an open of an existing index
	 * commits nothing. */
	if ((v < STORE_SCHEMA_VERSION &&
	    store_exec(st, "PRAGMA user_version=1", error_r) < 0) ||
	    store_prepare_all(st, error_r) < 0 ||
	    store_mbox_get(st, "INBOX", &mb, error_r) < 0)
		goto fail;
	return store_commit(st, error_r);
fail_db:
	store_db_error(st, error_r);
fail:
	store_rollback(st);
	return -1;
}

struct store *
store_open(const char *data_dir, const char *address, char **error_r)
{
	char *root = userdb_maildir_path(data_dir, address);

	if (root == NULL) {
		store_set_error(error_r, "invalid address");
		return NULL;
	}
	if (maildir_create(root) < 0) {
		store_set_error(error_r, "cannot create %s: %s", root,
		    strerror(errno));
		x_free(&root);
		return NULL;
	}
	struct store *st = x_calloc(1, sizeof(*st));
	st->root = root;
	char *path = x_asprintf("%s/index.db", root);
	if (store_create_file(path, error_r) < 0)
		goto fail;
	int rc = sqlite3_open_v2(path, &st->db,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
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
	x_free(&st->root);
	x_free(&st);
}

/* ---- mailboxes ---------------------------------------------------------- */

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
		store_set_error(error_r, "index: UIDVALIDITY exhausted");
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
store_mbox_insert(struct store *st, const char *name, struct store_mbox *mb,
    char **error_r)
{
	if (store_uidvalidity_new(st, &mb->uidvalidity, error_r) < 0)
		return -1;
	sqlite3_stmt *s = store_sql(st, SQL_MBOX_INSERT);
	store_bind_text(s, 1, name, strlen(name));
	store_bind_int(s, 2, mb->uidvalidity);
	if (store_run(st, s, error_r) < 0)
		return -1;
	mb->id = sqlite3_last_insert_rowid(st->db);
	mb->uidnext = 1;
	mb->highestmodseq = 1;
	return 0;
}

/* The row of mailbox name, made when missing: a folder whose row is
 * missing (a Maildir moved in) is indexed as a new mailbox. Inside a
 * transaction. 0, or -1 with *error_r. */
static int
store_mbox_get(struct store *st, const char *name, struct store_mbox *mb,
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
		sqlite3_reset(s);
		return 0;
	}
	if (rc != SQLITE_DONE)
		store_db_error(st, error_r);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return -1;
	return store_mbox_insert(st, name, mb, error_r);
}

static int
store_mbox_update(struct store *st, const struct store_mbox *mb,
    char **error_r)
{
	sqlite3_stmt *s = store_sql(st, SQL_MBOX_UPDATE);

	store_bind_int(s, 1, mb->id);
	store_bind_int(s, 2, mb->uidnext);
	store_bind_int(s, 3, (int64_t)mb->highestmodseq);
	return store_run(st, s, error_r);
}

static void
store_folder_close(struct store_folder *f)
{
	if (f->curfd >= 0)
		close(f->curfd);
	if (f->newfd >= 0)
		close(f->newfd);
	f->curfd = f->newfd = -1;
	x_free(&f->dir);
}

/* Resolves mailbox to its Maildir and opens cur/ and new/. INBOX is made
 * when missing; another folder must exist (store_mailbox_create), then
 * its missing subfolders are made. */
static int
store_folder_open(struct store *st, const char *mailbox,
    struct store_folder *f, char **error_r)
{
	struct stat sb;

	memset(f, 0, sizeof(*f));
	f->curfd = f->newfd = -1;
	if (!store_mailbox_name_ok(mailbox)) {
		store_set_error(error_r, "invalid mailbox name");
		return -1;
	}
	bool inbox = str_iequal(mailbox, "INBOX");
	f->name = inbox ? "INBOX" : mailbox;
	f->dir = inbox ? x_strdup(st->root) :
	    x_asprintf("%s/.%s", st->root, mailbox);
	if (!inbox && (stat(f->dir, &sb) < 0 || !S_ISDIR(sb.st_mode))) {
		store_set_error(error_r, "no such mailbox");
		goto fail;
	}
	if (maildir_create(f->dir) < 0)
		goto fail_errno;
	int dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		goto fail_errno;
	f->curfd = openat(dfd, "cur", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	f->newfd = openat(dfd, "new", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	close(dfd);
	if (f->curfd < 0 || f->newfd < 0)
		goto fail_errno;
	return 0;
fail_errno:
	store_set_error(error_r, "%s: %s", f->dir, strerror(errno));
fail:
	store_folder_close(f);
	return -1;
}

int
store_mailbox_create(struct store *st, const char *name, char **error_r)
{
	struct store_mbox mb;

	if (!store_mailbox_name_ok(name)) {
		store_set_error(error_r, "invalid mailbox name");
		errno = EINVAL;
		return -1;
	}
	if (str_iequal(name, "INBOX")) {
		store_set_error(error_r, "mailbox exists");
		errno = EEXIST;
		return -1;
	}
	char *dir = x_asprintf("%s/.%s", st->root, name);
	char *marker = x_asprintf("%s/maildirfolder", dir);
	int r = -1, fd;
	if (mkdir(dir, 0700) < 0) {
		int e = errno;
		if (e == EEXIST)
			store_set_error(error_r, "mailbox exists");
		else
			store_set_error(error_r, "%s: %s", dir, strerror(e));
		errno = e;
		goto done;
	}
	/* maildirfolder marks a Maildir++ subfolder for other tools. */
	if (maildir_create(dir) < 0 ||
	    (fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) < 0 ||
	    close(fd) < 0 || fs_fsync_dir(st->root) < 0) {
		store_set_error(error_r, "%s: %s", dir, strerror(errno));
		goto done;
	}
	if (store_begin(st, error_r) < 0)
		goto done;
	if (store_mbox_get(st, name, &mb, error_r) < 0) {
		store_rollback(st);
		goto done;
	}
	r = store_commit(st, error_r);
done:
	x_free(&marker);
	x_free(&dir);
	return r;
}

/* qsort(), which must not be given NULL even for no elements. */
static void
store_sort(void *v, size_t n, size_t size,
    int (*cmp)(const void *, const void *))
{
	if (n > 1)
		qsort(v, n, size, cmp);
}

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

static void
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
static int
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
};

static int
store_row_cmp(const void *pa, const void *pb)
{
	const struct store_row *a = pa, *b = pb;

	return store_base_cmp(a->base, a->baselen, b->base, b->baselen);
}

static void
store_rows_free(struct store_load *ld)
{
	for (size_t i = 0; i < ld->nrows; i++)
		x_free(&ld->rows[i].base);
	x_free(&ld->rows);
	ld->nrows = 0;
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
		struct store_row *r = &ld->rows[ld->nrows++];
		r->uid = (uint32_t)sqlite3_column_int64(s, 0);
		r->baselen = (size_t)sqlite3_column_bytes(s, 1);
		r->base = x_strndup((const char *)sqlite3_column_text(s, 1),
		    r->baselen);
		r->flags = (unsigned)sqlite3_column_int(s, 2);
		r->modseq = (uint64_t)sqlite3_column_int64(s, 3);
		r->size = (uint64_t)sqlite3_column_int64(s, 4);
		r->internaldate = sqlite3_column_int64(s, 5);
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
    uint32_t uid, uint64_t modseq, uint64_t size, time_t internaldate)
{
	struct store_msg *m = &ld->msgs[ld->nmsgs++];

	m->uid = uid;
	m->size = size;
	m->flags = e->flags;
	m->modseq = modseq;
	m->internaldate = internaldate;
	m->path = x_asprintf("%s/cur/%s", ld->f->dir, e->name);
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
	store_load_out(ld, e, r->uid, modseq, r->size,
	    (time_t)r->internaldate);
	return 0;
}

static int
store_load_gone(struct store_load *ld, const struct store_row *r,
    char **error_r)
{
	sqlite3_stmt *s = store_sql(ld->st, SQL_MSG_DELETE);

	(void)store_load_modseq(ld);
	store_bind_int(s, 1, ld->mb.id);
	store_bind_int(s, 2, r->uid);
	return store_run(ld->st, s, error_r);
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

static int
store_load_insert(struct store_load *ld, const struct store_ent *e,
    uint32_t uid, uint64_t modseq, char **error_r)
{
	sqlite3_stmt *s = store_sql(ld->st, SQL_MSG_INSERT);

	store_bind_int(s, 1, ld->mb.id);
	store_bind_int(s, 2, uid);
	store_bind_text(s, 3, e->name, e->baselen);
	store_bind_int(s, 4, e->flags);
	store_bind_int(s, 5, (int64_t)modseq);
	store_bind_int(s, 6, (int64_t)e->size);
	store_bind_int(s, 7, (int64_t)e->mtime.tv_sec);
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
	uint64_t modseq = store_load_modseq(ld);
	for (size_t i = 0; i < ld->nunknown; i++) {
		const struct store_ent *e = ld->unknown[i];
		uint32_t uid = ld->mb.uidnext++;
		if (store_load_insert(ld, e, uid, modseq, error_r) < 0)
			return -1;
		store_load_out(ld, e, uid, modseq, e->size, e->mtime.tv_sec);
	}
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
	for (size_t i = 0; i < ld->nmsgs; i++)
		x_free(&ld->msgs[i].path);
	x_free(&ld->msgs);
}

int
store_mailbox_load(struct store *st, const char *mailbox,
    struct store_mailbox *out, char **error_r)
{
	struct store_folder f;
	struct store_load ld = { .st = st, .f = &f };
	int r = -1;

	memset(out, 0, sizeof(*out));
	if (store_folder_open(st, mailbox, &f, error_r) < 0)
		return -1;
	if (store_durable(st, true, error_r) < 0)
		goto done;
	if (store_begin(st, error_r) < 0 ||
	    store_load_locked(&ld, error_r) < 0) {
		store_rollback(st);
		(void)store_durable(st, false, NULL);
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
	r = 0;
done:
	store_load_free(&ld);
	store_folder_close(&f);
	return r;
}

void
store_mailbox_free(struct store_mailbox *mb)
{
	if (mb == NULL)
		return;
	for (size_t i = 0; i < mb->count; i++)
		x_free(&mb->msgs[i].path);
	x_free(&mb->msgs);
	memset(mb, 0, sizeof(*mb));
}

/* ---- finding one message's file ----------------------------------------- */

/* The file of an indexed message, found by its name as the index knows it
 * and, when another program renamed it, by a scan of cur/ and new/ made
 * once per operation (lookup). */
struct store_lookup {
	struct store_scan scan;
	bool done;
};

/* Sets *dirfd and copies the file's name to out (STORE_NAME_MAX + 1).
 * 1 found, 0 gone, -1 error. */
static int
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

/* The base and flags of uid from the index: 1, 0 when no such row, -1. */
static int
store_msg_get(struct store *st, int64_t mbox_id, uint32_t uid, char **base_r,
    unsigned *flags_r, char **error_r)
{
	sqlite3_stmt *s = store_sql(st, SQL_MSG_GET);

	store_bind_int(s, 1, mbox_id);
	store_bind_int(s, 2, uid);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*base_r = x_strndup((const char *)sqlite3_column_text(s, 0),
		    (size_t)sqlite3_column_bytes(s, 0));
		*flags_r = (unsigned)sqlite3_column_int(s, 1);
	} else if (rc != SQLITE_DONE) {
		store_db_error(st, error_r);
	}
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
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
    const char *base, unsigned flags, struct store_unlinked *u,
    char **error_r)
{
	char name[STORE_NAME_MAX + 1];
	int dirfd;
	int r = store_find_file(f, lk, base, flags, &dirfd, name);

	if (r == 1 && unlinkat(dirfd, name, 0) == 0)
		*(dirfd == f->newfd ? &u->new : &u->cur) = true;
	else if (r == 1 && errno != ENOENT)
		r = -1;
	if (r < 0)
		store_set_error(error_r, "%s: unlink: %s", f->dir,
		    strerror(errno));
	return r < 0 ? -1 : 0;
}

static int
store_expunge_rows(struct store *st, struct store_mbox *mb,
    const uint32_t *uids, size_t n, char **error_r)
{
	sqlite3_stmt *s;

	for (size_t i = 0; i < n; i++) {
		s = store_sql(st, SQL_MSG_DELETE);
		store_bind_int(s, 1, mb->id);
		store_bind_int(s, 2, uids[i]);
		if (store_run(st, s, error_r) < 0)
			return -1;
	}
	mb->highestmodseq++;
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

	if (store_mbox_get(st, f->name, &mb, error_r) < 0)
		goto done;
	for (size_t i = 0; i < n; i++) {
		char *base = NULL;
		unsigned flags;
		int g = store_msg_get(st, mb.id, uids[i], &base, &flags,
		    error_r);
		if (g > 0 && store_expunge_file(f, &lk, base, flags,
		    &u, error_r) < 0)
			g = -1;
		x_free(&base);
		if (g < 0)
			goto done;
		if (g > 0)
			found[nfound++] = uids[i];
	}
	if ((u.cur && fsync(f->curfd) < 0) || (u.new && fsync(f->newfd) < 0)) {
		store_set_error(error_r, "%s: fsync: %s", f->dir,
		    strerror(errno));
		goto done;
	}
	r = nfound == 0 ? 0 : store_expunge_rows(st, &mb, found, nfound,
	    error_r);
done:
	store_scan_free(&lk.scan);
	x_free(&found);
	return r;
}

int
store_expunge(struct store *st, const char *mailbox, const uint32_t *uids,
    size_t n, char **error_r)
{
	struct store_folder f;
	int r = -1;

	if (store_folder_open(st, mailbox, &f, error_r) < 0)
		return -1;
	if (store_begin(st, error_r) == 0) {
		if (store_expunge_locked(st, &f, uids, n, error_r) == 0)
			r = store_commit(st, error_r);
		else
			store_rollback(st);
	}
	store_folder_close(&f);
	return r;
}

/* ---- flags -------------------------------------------------------------- */

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

/* Renames the file first: if the index update is lost, the next load
 * reads the flags back from the name. */
static int
store_set_flags_locked(struct store *st, const struct store_folder *f,
    uint32_t uid, unsigned flags, char **error_r)
{
	char old[STORE_NAME_MAX + 1], new[STORE_NAME_MAX + 1];
	struct store_lookup lk = { 0 };
	struct store_mbox mb;
	char *base = NULL;
	unsigned oldflags;
	int dirfd, r = -1;

	if (store_mbox_get(st, f->name, &mb, error_r) < 0)
		return -1;
	int g = store_msg_get(st, mb.id, uid, &base, &oldflags, error_r);
	if (g == 0)
		store_set_error(error_r, "no such message");
	if (g <= 0)
		goto done;
	g = store_find_file(f, &lk, base, oldflags, &dirfd, old);
	if (g <= 0) {
		store_set_error(error_r, g == 0 ? "message file is gone" :
		    "%s: %s", f->dir, strerror(errno));
		goto done;
	}
	if (store_name_build(new, base, strlen(base), flags,
	    store_name_letters(old)) < 0) {
		store_set_error(error_r, "file name too long");
		goto done;
	}
	bool same = dirfd == f->curfd && strcmp(old, new) == 0;
	if (same && oldflags == flags) {
		r = 0;
		goto done;
	}
	if (!same && store_rename_noreplace(dirfd, old, f->curfd, new) < 0) {
		store_set_error(error_r, "%s: rename: %s", f->dir,
		    strerror(errno));
		goto done;
	}
	r = store_flags_write(st, &mb, uid, flags, error_r);
done:
	store_scan_free(&lk.scan);
	x_free(&base);
	return r;
}

int
store_set_flags(struct store *st, const char *mailbox, uint32_t uid,
    unsigned flags, char **error_r)
{
	struct store_folder f;
	int r = -1;

	flags &= STORE_F_ALL;
	if (store_folder_open(st, mailbox, &f, error_r) < 0)
		return -1;
	if (store_begin(st, error_r) == 0) {
		if (store_set_flags_locked(st, &f, uid, flags, error_r) == 0)
			r = store_commit(st, error_r);
		else
			store_rollback(st);
	}
	store_folder_close(&f);
	return r;
}

/* ---- opening a message -------------------------------------------------- */

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
