/* The user database: domains, users, aliases in data_dir/correo.db.
 * Untrusted input: RCPT addresses reach userdb_resolve(); they only ever
 * travel as bound statement parameters, never inside SQL text.
 *
 * One handle may be shared by the loop and the pool threads: a mutex
 * serialises every call, so a statement or transaction never interleaves
 * with another thread's. */
#include "auth/userdb.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/buf.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/util.h"
#include "core/xmalloc.h"

#define USERDB_SCHEMA_VERSION 2
#define USERDB_MAX_LOCAL 64
#define USERDB_MAX_DOMAIN 255
#define USERDB_MAX_ALIAS_DEPTH 10

/* Statements kept prepared (SMTP asks four per RCPT: parsing them was
 * most of its cost). */
#define USERDB_STMTS	32

struct userdb_stmt {
	char *sql;
	sqlite3_stmt *st;
	bool busy;		/* handed out and not released yet */
};

struct userdb {
	sqlite3 *db;
	pthread_mutex_t lock;
	char *data_dir;
	struct userdb_stmt stmts[USERDB_STMTS];
	size_t nstmts;
};

static const char userdb_schema[] =
    "CREATE TABLE IF NOT EXISTS domains("
    " name TEXT PRIMARY KEY NOT NULL);"
    "CREATE TABLE IF NOT EXISTS users("
    " address TEXT PRIMARY KEY NOT NULL,"
    " local TEXT NOT NULL,"
    " domain TEXT NOT NULL REFERENCES domains(name),"
    " hash TEXT NOT NULL,"
    " created INTEGER NOT NULL,"
    " scram TEXT);"
    "CREATE INDEX IF NOT EXISTS users_domain ON users(domain);"
    "CREATE TABLE IF NOT EXISTS aliases("
    " address TEXT PRIMARY KEY NOT NULL,"
    " domain TEXT NOT NULL REFERENCES domains(name));"
    "CREATE INDEX IF NOT EXISTS aliases_domain ON aliases(domain);"
    "CREATE TABLE IF NOT EXISTS alias_targets("
    " alias TEXT NOT NULL REFERENCES aliases(address) ON DELETE CASCADE,"
    " pos INTEGER NOT NULL,"
    " target TEXT NOT NULL,"
    " PRIMARY KEY(alias, pos));"
    "CREATE TABLE IF NOT EXISTS settings("
    " name TEXT PRIMARY KEY NOT NULL,"
    " value TEXT NOT NULL);"
    /* On-Demand Mail Relay (RFC 2645): mail for domain is held in the
     * queue until user pulls it with ATRN. Added without a version
     * change: older programs leave the table alone. */
    "CREATE TABLE IF NOT EXISTS odmr("
    " domain TEXT PRIMARY KEY NOT NULL,"
    " user TEXT NOT NULL REFERENCES users(address) ON DELETE CASCADE);"
    "CREATE INDEX IF NOT EXISTS odmr_user ON odmr(user);";

/* ---- errors ------------------------------------------------------------ */

static void PRINTF_LIKE(2, 3)
userdb_set_error(char **error_r, const char *fmt, ...)
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
userdb_db_error(struct userdb *db, char **error_r)
{
	userdb_set_error(error_r, "user database: %s",
	    sqlite3_errmsg(db->db));
}

static bool
userdb_is_constraint(int rc)
{
	return (rc & 0xff) == SQLITE_CONSTRAINT;
}

/* ---- address syntax ----------------------------------------------------- */

/* Length of the UTF-8 sequence starting at s (at most n bytes), 0 when it
 * is malformed, overlong or a surrogate. */
static size_t
utf8_seq_len(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned min;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2, min = 0x80, cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3, min = 0x800, cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4, min = 0x10000, cp = s[0] & 0x07;
	} else
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
utf8_is_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq_len(p + i, n - i);
		if (k == 0)
			return false;
		i += k;
	}
	return true;
}

/* A local part names a directory: no '/', no leading '.' (so neither "."
 * nor ".."), no controls or spaces; '@' and ',' would make it ambiguous in
 * an address or an alias target list. */
static bool
userdb_local_is_valid(const char *s, size_t n)
{
	if (n == 0 || n > USERDB_MAX_LOCAL || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c == 0x7f || c == '/' || c == '@' || c == ',')
			return false;
	}
	return utf8_is_valid(s, n);
}

/* Host names (also U-labels) and address literals: no empty labels, so no
 * leading '.', "..", or trailing '.'. */
static bool
userdb_domain_is_valid(const char *s, size_t n)
{
	if (n == 0 || n > USERDB_MAX_DOMAIN || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c >= 0x80 || c == '-' ||
		    c == '.' || c == '_' || c == '[' || c == ']' || c == ':';
		if (!ok || (c == '.' && s[i + 1] == '.'))
			return false;
	}
	return utf8_is_valid(s, n);
}

int
userdb_split_address(const char *address, char **local_r, char **domain_r)
{
	const char *at = address != NULL ? strrchr(address, '@') : NULL;

	if (at == NULL)
		return -1;
	size_t llen = (size_t)(at - address);
	if (!userdb_local_is_valid(address, llen) ||
	    !userdb_domain_is_valid(at + 1, strlen(at + 1)))
		return -1;
	*local_r = str_lower(x_strndup(address, llen));
	*domain_r = str_lower(x_strdup(at + 1));
	return 0;
}

/* "local@domain" in canonical form, or NULL when address is not valid. */
static char *
userdb_canonical(const char *address)
{
	char *local, *domain;

	if (userdb_split_address(address, &local, &domain) < 0)
		return NULL;
	char *c = x_asprintf("%s@%s", local, domain);
	x_free(&local);
	x_free(&domain);
	return c;
}

/* The lowercased domain of a valid domain name, or NULL. */
static char *
userdb_canonical_domain(const char *domain)
{
	if (domain == NULL || !userdb_domain_is_valid(domain, strlen(domain)))
		return NULL;
	return str_lower(x_strdup(domain));
}

/* An alias address: "local@domain", or "@domain" for the catch-all. */
static int
userdb_alias_split(const char *address, char **key_r, char **domain_r)
{
	if (address != NULL && address[0] == '@') {
		if ((*domain_r = userdb_canonical_domain(address + 1)) == NULL)
			return -1;
		*key_r = x_asprintf("@%s", *domain_r);
		return 0;
	}
	char *local;
	if (userdb_split_address(address, &local, domain_r) < 0)
		return -1;
	*key_r = x_asprintf("%s@%s", local, *domain_r);
	x_free(&local);
	return 0;
}

/* A target keeps its local part as written (remote systems may care about
 * case); only the domain is lowercased. */
static char *
userdb_canonical_target(const char *target)
{
	char *local, *domain;

	if (userdb_split_address(target, &local, &domain) < 0)
		return NULL;
	size_t llen = strlen(local);
	char *c = x_asprintf("%.*s@%s", (int)llen, target, domain);
	x_free(&local);
	x_free(&domain);
	return c;
}

/* ---- statements --------------------------------------------------------- */

/* The statement for sql: a kept one when it is not in use already, else
 * a new one (kept when there is room). NULL on error. */
static sqlite3_stmt *
userdb_stmt_get(struct userdb *db, const char *sql)
{
	struct userdb_stmt *free_slot = NULL;
	sqlite3_stmt *st;

	for (size_t i = 0; i < db->nstmts; i++) {
		struct userdb_stmt *k = &db->stmts[i];
		if (!k->busy && strcmp(k->sql, sql) == 0) {
			k->busy = true;
			return k->st;
		}
	}
	if (db->nstmts < USERDB_STMTS)
		free_slot = &db->stmts[db->nstmts];
	if (sqlite3_prepare_v3(db->db, sql, -1, free_slot != NULL ?
	    SQLITE_PREPARE_PERSISTENT : 0, &st, NULL) != SQLITE_OK) {
		log_warnx("userdb: prepare: %s", sqlite3_errmsg(db->db));
		return NULL;
	}
	if (free_slot != NULL) {
		free_slot->sql = x_strdup(sql);
		free_slot->st = st;
		free_slot->busy = true;
		db->nstmts++;
	}
	return st;
}

/* Gives st back: a kept one is reset (which ends its read), another is
 * finalized. */
static void
userdb_release(struct userdb *db, sqlite3_stmt *st)
{
	for (size_t i = 0; i < db->nstmts; i++) {
		if (db->stmts[i].st == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			db->stmts[i].busy = false;
			return;
		}
	}
	sqlite3_finalize(st);
}

size_t
userdb_statements_kept(const struct userdb *db)
{
	return db->nstmts;
}

/* Prepares sql and binds the non-NULL texts p1, p2 to ?1, ?2; give it back
 * with userdb_release. */
static sqlite3_stmt *
userdb_prepare(struct userdb *db, const char *sql, const char *p1,
    const char *p2)
{
	sqlite3_stmt *st = userdb_stmt_get(db, sql);

	if (st == NULL)
		return NULL;
	if ((p1 != NULL &&
	    sqlite3_bind_text(st, 1, p1, -1, SQLITE_TRANSIENT) != SQLITE_OK) ||
	    (p2 != NULL &&
	    sqlite3_bind_text(st, 2, p2, -1, SQLITE_TRANSIENT) != SQLITE_OK)) {
		log_warnx("userdb: bind: %s", sqlite3_errmsg(db->db));
		userdb_release(db, st);
		return NULL;
	}
	return st;
}

/* Runs a statement that returns no rows. Returns the result of
 * sqlite3_step (SQLITE_DONE on success); the error stays readable with
 * sqlite3_errmsg. */
static int
userdb_run(struct userdb *db, const char *sql, const char *p1, const char *p2)
{
	sqlite3_stmt *st = userdb_prepare(db, sql, p1, p2);
	if (st == NULL)
		return SQLITE_ERROR;
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && !userdb_is_constraint(rc))
		log_warnx("userdb: %s", sqlite3_errmsg(db->db));
	userdb_release(db, st);
	return rc;
}

/* The integer in the first column of the first row; -1 on error or no row. */
static long long
userdb_int(struct userdb *db, const char *sql, const char *p1, const char *p2)
{
	sqlite3_stmt *st = userdb_prepare(db, sql, p1, p2);
	long long v = -1;

	if (st == NULL)
		return -1;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		log_warnx("userdb: %s", sqlite3_errmsg(db->db));
	userdb_release(db, st);
	return v;
}

/* 1 when the query returns a row, 0 when it returns none, -1 on error. */
static int
userdb_exists(struct userdb *db, const char *sql, const char *p1,
    const char *p2)
{
	sqlite3_stmt *st = userdb_prepare(db, sql, p1, p2);

	if (st == NULL)
		return -1;
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		log_warnx("userdb: %s", sqlite3_errmsg(db->db));
	userdb_release(db, st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* Appends the first column of every row to out; the row count or -1. */
static int
userdb_column(struct userdb *db, const char *sql, const char *p1,
    struct strlist *out)
{
	sqlite3_stmt *st = userdb_prepare(db, sql, p1, NULL);
	int rc, n = 0;

	if (st == NULL)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 0);
		strlist_add(out, t != NULL ? (const char *)t : "");
		n++;
	}
	if (rc != SQLITE_DONE) {
		log_warnx("userdb: %s", sqlite3_errmsg(db->db));
		n = -1;
	}
	userdb_release(db, st);
	return n;
}

static int
userdb_exec(struct userdb *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_warnx("userdb: %s: %s", sql, msg != NULL ? msg : "error");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static void
userdb_lock(struct userdb *db)
{
	if (pthread_mutex_lock(&db->lock) != 0)
		panic("userdb: pthread_mutex_lock");
}

static void
userdb_unlock(struct userdb *db)
{
	pthread_mutex_unlock(&db->lock);
}

/* ---- open / close -------------------------------------------------------- */

/* Creates path with mode 0600 before SQLite does: SQLite would use 0644,
 * and its -wal and -shm files copy the database file's mode. */
static int
userdb_create_file(const char *path, char **error_r)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		userdb_set_error(error_r, "cannot open %s: %s", path,
		    strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

/* Version 1 had no scram column. Asking the table rather than trusting
 * user_version also repairs a file whose version was set by hand. */
static int
userdb_migrate(struct userdb *db)
{
	long long has = userdb_int(db, "SELECT count(*) FROM "
	    "pragma_table_info('users') WHERE name = 'scram'", NULL, NULL);
	if (has < 0)
		return -1;
	if (has > 0)
		return 0;
	return userdb_exec(db, "ALTER TABLE users ADD COLUMN scram TEXT");
}

static int
userdb_setup(struct userdb *db, char **error_r)
{
	sqlite3_busy_timeout(db->db, 5000);
	if (userdb_exec(db, "PRAGMA journal_mode=WAL") < 0 ||
	    userdb_exec(db, "PRAGMA synchronous=NORMAL") < 0 ||
	    userdb_exec(db, "PRAGMA foreign_keys=ON") < 0)
		goto fail;
	long long v = userdb_int(db, "PRAGMA user_version", NULL, NULL);
	if (v > USERDB_SCHEMA_VERSION) {
		userdb_set_error(error_r, "user database: schema version %lld "
		    "is newer than this program's (%d)", v,
		    USERDB_SCHEMA_VERSION);
		return -1;
	}
	if (v < 0 || userdb_exec(db, "BEGIN IMMEDIATE") < 0)
		goto fail;
	if (userdb_exec(db, userdb_schema) < 0 ||
	    userdb_migrate(db) < 0 ||
	    userdb_exec(db, "PRAGMA user_version=2") < 0 ||
	    userdb_exec(db, "COMMIT") < 0) {
		userdb_db_error(db, error_r);
		(void)userdb_exec(db, "ROLLBACK");
		return -1;
	}
	return 0;
fail:
	userdb_db_error(db, error_r);
	return -1;
}

struct userdb *
userdb_open(const char *data_dir, char **error_r)
{
	if (fs_mkdir_p(data_dir, 0700) < 0) {
		userdb_set_error(error_r, "cannot create %s: %s", data_dir,
		    strerror(errno));
		return NULL;
	}
	char *path = x_asprintf("%s/correo.db", data_dir);
	if (userdb_create_file(path, error_r) < 0) {
		x_free(&path);
		return NULL;
	}
	struct userdb *db = x_calloc(1, sizeof(*db));
	pthread_mutex_init(&db->lock, NULL);
	db->data_dir = x_strdup(data_dir);
	int rc = sqlite3_open_v2(path, &db->db,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		userdb_set_error(error_r, "cannot open %s: %s", path,
		    db->db != NULL ? sqlite3_errmsg(db->db) :
		    sqlite3_errstr(rc));
		goto fail;
	}
	if (userdb_setup(db, error_r) < 0)
		goto fail;
	x_free(&path);
	return db;
fail:
	x_free(&path);
	userdb_close(db);
	return NULL;
}

void
userdb_close(struct userdb *db)
{
	if (db == NULL)
		return;
	for (size_t i = 0; i < db->nstmts; i++) {
		sqlite3_finalize(db->stmts[i].st);
		x_free(&db->stmts[i].sql);
	}
	db->nstmts = 0;
	if (db->db != NULL && sqlite3_close(db->db) != SQLITE_OK)
		log_warnx("userdb: close: %s", sqlite3_errmsg(db->db));
	pthread_mutex_destroy(&db->lock);
	x_free(&db->data_dir);
	x_free(&db);
}

/* ---- domains ------------------------------------------------------------- */

static int userdb_odmr_check_not_held(struct userdb *db, const char *d,
    char **error_r);

/* domain is canonical. 1, 0, or -1 on error. */
static int
userdb_domain_exists_locked(struct userdb *db, const char *domain)
{
	return userdb_exists(db, "SELECT 1 FROM domains WHERE name = ?1",
	    domain, NULL);
}

bool
userdb_is_local_domain(struct userdb *db, const char *domain)
{
	char *d = userdb_canonical_domain(domain);
	if (d == NULL)
		return false;
	userdb_lock(db);
	int r = userdb_domain_exists_locked(db, d);
	userdb_unlock(db);
	x_free(&d);
	return r == 1;
}

int
userdb_domain_add(struct userdb *db, const char *domain, char **error_r)
{
	char *d = userdb_canonical_domain(domain);
	if (d == NULL) {
		userdb_set_error(error_r, "invalid domain \"%s\"",
		    domain != NULL ? domain : "");
		return -1;
	}
	userdb_lock(db);
	int rc = SQLITE_ERROR;
	if (userdb_odmr_check_not_held(db, d, error_r) == 0)
		rc = userdb_run(db, "INSERT INTO domains(name) VALUES(?1)", d,
		    NULL);
	else
		error_r = NULL;	/* already said why */
	if (userdb_is_constraint(rc))
		userdb_set_error(error_r, "domain %s already exists", d);
	else if (rc != SQLITE_DONE)
		userdb_db_error(db, error_r);
	userdb_unlock(db);
	x_free(&d);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Refuses while users or aliases remain: their mail would become
 * undeliverable without anyone having asked for that. */
static int
userdb_domain_del_locked(struct userdb *db, const char *d, char **error_r)
{
	long long users = userdb_int(db,
	    "SELECT count(*) FROM users WHERE domain = ?1", d, NULL);
	long long aliases = userdb_int(db,
	    "SELECT count(*) FROM aliases WHERE domain = ?1", d, NULL);
	if (users < 0 || aliases < 0) {
		userdb_db_error(db, error_r);
		return -1;
	}
	if (users > 0 || aliases > 0) {
		userdb_set_error(error_r, "domain %s still has %lld user(s) "
		    "and %lld alias(es)", d, users, aliases);
		return -1;
	}
	int rc = userdb_run(db, "DELETE FROM domains WHERE name = ?1", d,
	    NULL);
	if (rc != SQLITE_DONE) {
		userdb_db_error(db, error_r);
		return -1;
	}
	if (sqlite3_changes(db->db) == 0) {
		userdb_set_error(error_r, "no such domain: %s", d);
		return -1;
	}
	return 0;
}

int
userdb_domain_del(struct userdb *db, const char *domain, char **error_r)
{
	char *d = userdb_canonical_domain(domain);
	if (d == NULL) {
		userdb_set_error(error_r, "invalid domain \"%s\"",
		    domain != NULL ? domain : "");
		return -1;
	}
	userdb_lock(db);
	int r = userdb_domain_del_locked(db, d, error_r);
	userdb_unlock(db);
	x_free(&d);
	return r;
}

int
userdb_domain_list(struct userdb *db, struct strlist *out)
{
	userdb_lock(db);
	int n = userdb_column(db, "SELECT name FROM domains ORDER BY name",
	    NULL, out);
	userdb_unlock(db);
	return n < 0 ? -1 : 0;
}

/* ---- users --------------------------------------------------------------- */

char *
userdb_maildir_path(const char *data_dir, const char *address)
{
	char *local, *domain;

	if (userdb_split_address(address, &local, &domain) < 0)
		return NULL;
	char *p = x_asprintf("%s/mail/%s/%s", data_dir, domain, local);
	x_free(&local);
	x_free(&domain);
	return p;
}

static int
userdb_maildir_create(const char *data_dir, const char *address,
    char **error_r)
{
	static const char *const sub[] = { "cur", "new", "tmp" };
	char *dir = userdb_maildir_path(data_dir, address);
	int r = 0;

	for (size_t i = 0; dir != NULL && i < 3 && r == 0; i++) {
		char *p = x_asprintf("%s/%s", dir, sub[i]);
		if ((r = fs_mkdir_p(p, 0700)) < 0)
			userdb_set_error(error_r, "cannot create %s: %s", p,
			    strerror(errno));
		x_free(&p);
	}
	x_free(&dir);
	return r;
}

static int
userdb_user_insert(struct userdb *db, const char *address, const char *local,
    const char *domain, const char *hash)
{
	sqlite3_stmt *st = userdb_prepare(db, "INSERT INTO users"
	    "(address, local, domain, hash, created) VALUES(?1, ?2, ?3, ?4, ?5)",
	    address, local);
	if (st == NULL)
		return SQLITE_ERROR;
	int rc = sqlite3_bind_text(st, 3, domain, -1, SQLITE_TRANSIENT);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 4, hash, -1, SQLITE_TRANSIENT);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 5, (sqlite3_int64)time(NULL));
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	userdb_release(db, st);
	return rc;
}

/* Inside a transaction: the Maildir is made before COMMIT, so a user never
 * exists without one. */
static int
userdb_user_add_locked(struct userdb *db, const char *local,
    const char *domain, const char *hash, char **error_r)
{
	char *address = x_asprintf("%s@%s", local, domain);
	int r = -1;

	if (userdb_exec(db, "BEGIN IMMEDIATE") < 0) {
		userdb_db_error(db, error_r);
		x_free(&address);
		return -1;
	}
	int rc = SQLITE_ERROR;
	if (userdb_odmr_check_not_held(db, domain, error_r) == 0)
		rc = userdb_run(db, "INSERT OR IGNORE INTO domains(name) "
		    "VALUES(?1)", domain, NULL);
	else
		error_r = NULL;	/* already said why */
	if (rc == SQLITE_DONE)
		rc = userdb_user_insert(db, address, local, domain, hash);
	if (userdb_is_constraint(rc))
		userdb_set_error(error_r, "user %s already exists", address);
	else if (rc != SQLITE_DONE)
		userdb_db_error(db, error_r);
	else if (userdb_maildir_create(db->data_dir, address, error_r) == 0) {
		if (userdb_exec(db, "COMMIT") == 0)
			r = 0;
		else
			userdb_db_error(db, error_r);
	}
	if (r < 0)
		(void)userdb_exec(db, "ROLLBACK");
	x_free(&address);
	return r;
}

int
userdb_user_add(struct userdb *db, const char *address, const char *hash,
    char **error_r)
{
	char *local, *domain;

	if (userdb_split_address(address, &local, &domain) < 0) {
		userdb_set_error(error_r, "invalid address \"%s\"",
		    address != NULL ? address : "");
		return -1;
	}
	int r = -1;
	if (hash == NULL || hash[0] == '\0')
		userdb_set_error(error_r, "empty password hash");
	else {
		userdb_lock(db);
		r = userdb_user_add_locked(db, local, domain, hash, error_r);
		userdb_unlock(db);
	}
	x_free(&local);
	x_free(&domain);
	return r;
}

/* Runs a statement on one user's row (?1 = canonical address, ?2 = p2);
 * "no such user" when it touched nothing. */
static int
userdb_user_update(struct userdb *db, const char *sql, const char *address,
    const char *p2, char **error_r)
{
	char *a = userdb_canonical(address);
	if (a == NULL) {
		userdb_set_error(error_r, "invalid address \"%s\"",
		    address != NULL ? address : "");
		return -1;
	}
	int r = -1;
	userdb_lock(db);
	int rc = userdb_run(db, sql, a, p2);
	if (rc != SQLITE_DONE)
		userdb_db_error(db, error_r);
	else if (sqlite3_changes(db->db) == 0)
		userdb_set_error(error_r, "no such user: %s", a);
	else
		r = 0;
	userdb_unlock(db);
	x_free(&a);
	return r;
}

int
userdb_user_del(struct userdb *db, const char *address, char **error_r)
{
	return userdb_user_update(db, "DELETE FROM users WHERE address = ?1",
	    address, NULL, error_r);
}

int
userdb_user_set_hash(struct userdb *db, const char *address,
    const char *hash, char **error_r)
{
	if (hash == NULL || hash[0] == '\0') {
		userdb_set_error(error_r, "empty password hash");
		return -1;
	}
	/* The SCRAM secrets belong to the old password: keeping them would
	 * let it in through SCRAM. */
	return userdb_user_update(db, "UPDATE users SET hash = ?2, "
	    "scram = NULL WHERE address = ?1", address, hash, error_r);
}

int
userdb_user_set_scram(struct userdb *db, const char *address,
    const char *scram, char **error_r)
{
	if (scram != NULL && scram[0] == '\0')
		scram = NULL;
	/* A NULL ?2 is left unbound, and an unbound parameter is NULL. */
	return userdb_user_update(db, "UPDATE users SET scram = ?2 "
	    "WHERE address = ?1", address, scram, error_r);
}

/* The first column of the row of one user (allocated), or NULL when there
 * is no such user or the column is NULL. */
static char *
userdb_user_text(struct userdb *db, const char *sql, const char *address)
{
	char *a = userdb_canonical(address);
	char *text = NULL;

	if (a == NULL)
		return NULL;
	userdb_lock(db);
	sqlite3_stmt *st = userdb_prepare(db, sql, a, NULL);
	if (st != NULL) {
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
			text = x_strdup((const char *)
			    sqlite3_column_text(st, 0));
		else if (rc != SQLITE_DONE && rc != SQLITE_ROW)
			log_warnx("userdb: %s", sqlite3_errmsg(db->db));
		userdb_release(db, st);
	}
	userdb_unlock(db);
	x_free(&a);
	return text;
}

char *
userdb_user_scram(struct userdb *db, const char *address)
{
	return userdb_user_text(db, "SELECT scram FROM users "
	    "WHERE address = ?1", address);
}

char *
userdb_user_hash(struct userdb *db, const char *address)
{
	return userdb_user_text(db, "SELECT hash FROM users "
	    "WHERE address = ?1", address);
}

/* address is canonical. 1, 0, or -1 on error. */
static int
userdb_user_exists_locked(struct userdb *db, const char *address)
{
	return userdb_exists(db, "SELECT 1 FROM users WHERE address = ?1",
	    address, NULL);
}

bool
userdb_user_exists(struct userdb *db, const char *address)
{
	char *a = userdb_canonical(address);
	if (a == NULL)
		return false;
	userdb_lock(db);
	int r = userdb_user_exists_locked(db, a);
	userdb_unlock(db);
	x_free(&a);
	return r == 1;
}

int
userdb_user_count(struct userdb *db)
{
	userdb_lock(db);
	long long n = userdb_int(db, "SELECT count(*) FROM users", NULL, NULL);
	userdb_unlock(db);
	return n < 0 || n > 0x7fffffff ? -1 : (int)n;
}

int
userdb_user_list(struct userdb *db, struct strlist *out)
{
	userdb_lock(db);
	int n = userdb_column(db, "SELECT address FROM users ORDER BY address",
	    NULL, out);
	userdb_unlock(db);
	return n < 0 ? -1 : 0;
}

/* ---- aliases ------------------------------------------------------------- */

/* Canonical, deduplicated targets; -1 with *error_r on a bad one. */
static int
userdb_alias_targets_check(const struct strlist *targets,
    struct strlist *out, char **error_r)
{
	if (targets == NULL || targets->n == 0) {
		userdb_set_error(error_r, "an alias needs at least one target");
		return -1;
	}
	for (size_t i = 0; i < targets->n; i++) {
		char *t = userdb_canonical_target(targets->v[i]);
		if (t == NULL) {
			userdb_set_error(error_r, "invalid target \"%s\"",
			    targets->v[i]);
			return -1;
		}
		strlist_add_unique(out, t);
		x_free(&t);
	}
	return 0;
}

static int
userdb_alias_insert(struct userdb *db, const char *key, const char *domain,
    const struct strlist *targets)
{
	int rc = userdb_run(db, "INSERT INTO aliases(address, domain) "
	    "VALUES(?1, ?2)", key, domain);
	for (size_t i = 0; rc == SQLITE_DONE && i < targets->n; i++) {
		sqlite3_stmt *st = userdb_prepare(db, "INSERT INTO "
		    "alias_targets(alias, pos, target) VALUES(?1, ?2, ?3)",
		    key, NULL);
		if (st == NULL)
			return SQLITE_ERROR;
		rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_text(st, 3, targets->v[i], -1,
			    SQLITE_TRANSIENT);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(st);
		userdb_release(db, st);
	}
	return rc;
}

static int
userdb_alias_add_locked(struct userdb *db, const char *key,
    const char *domain, const struct strlist *targets, char **error_r)
{
	if (userdb_exec(db, "BEGIN IMMEDIATE") < 0) {
		userdb_db_error(db, error_r);
		return -1;
	}
	int r = -1;
	int local = userdb_domain_exists_locked(db, domain);
	if (local == 0)
		userdb_set_error(error_r, "%s is not a local domain", domain);
	else if (local < 0)
		userdb_db_error(db, error_r);
	else {
		int rc = userdb_alias_insert(db, key, domain, targets);
		if (userdb_is_constraint(rc))
			userdb_set_error(error_r, "alias %s already exists",
			    key);
		else if (rc != SQLITE_DONE)
			userdb_db_error(db, error_r);
		else if (userdb_exec(db, "COMMIT") < 0)
			userdb_db_error(db, error_r);
		else
			r = 0;
	}
	if (r < 0)
		(void)userdb_exec(db, "ROLLBACK");
	return r;
}

int
userdb_alias_add(struct userdb *db, const char *address,
    const struct strlist *targets, char **error_r)
{
	struct strlist canon = STRLIST_INIT;
	char *key, *domain;

	if (userdb_alias_split(address, &key, &domain) < 0) {
		userdb_set_error(error_r, "invalid alias address \"%s\"",
		    address != NULL ? address : "");
		return -1;
	}
	int r = userdb_alias_targets_check(targets, &canon, error_r);
	if (r == 0) {
		userdb_lock(db);
		r = userdb_alias_add_locked(db, key, domain, &canon, error_r);
		userdb_unlock(db);
	}
	strlist_free(&canon);
	x_free(&key);
	x_free(&domain);
	return r;
}

int
userdb_alias_del(struct userdb *db, const char *address, char **error_r)
{
	char *key, *domain;

	if (userdb_alias_split(address, &key, &domain) < 0) {
		userdb_set_error(error_r, "invalid alias address \"%s\"",
		    address != NULL ? address : "");
		return -1;
	}
	int r = -1;
	userdb_lock(db);
	int rc = userdb_run(db, "DELETE FROM aliases WHERE address = ?1", key,
	    NULL);
	if (rc != SQLITE_DONE)
		userdb_db_error(db, error_r);
	else if (sqlite3_changes(db->db) == 0)
		userdb_set_error(error_r, "no such alias: %s", key);
	else
		r = 0;
	userdb_unlock(db);
	x_free(&key);
	x_free(&domain);
	return r;
}

int
userdb_alias_list(struct userdb *db, struct strlist *out)
{
	struct buf line = BUF_INIT;
	char *cur = NULL;
	int rc;

	userdb_lock(db);
	sqlite3_stmt *st = userdb_prepare(db, "SELECT alias, target FROM "
	    "alias_targets ORDER BY alias, pos", NULL, NULL);
	if (st == NULL) {
		userdb_unlock(db);
		return -1;
	}
	/* Rows of one alias are adjacent; a new alias starts a new line. */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *a = (const char *)sqlite3_column_text(st, 0);
		const char *t = (const char *)sqlite3_column_text(st, 1);
		if (a == NULL || t == NULL)
			continue;
		if (cur == NULL || strcmp(cur, a) != 0) {
			if (cur != NULL)
				strlist_add(out, buf_cstr(&line));
			buf_reset(&line);
			x_free(&cur);
			cur = x_strdup(a);
			buf_printf(&line, "%s %s", a, t);
		} else
			buf_printf(&line, ",%s", t);
	}
	if (cur != NULL)
		strlist_add(out, buf_cstr(&line));
	if (rc != SQLITE_DONE)
		log_warnx("userdb: %s", sqlite3_errmsg(db->db));
	userdb_release(db, st);
	userdb_unlock(db);
	x_free(&cur);
	buf_free(&line);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- ODMR ---------------------------------------------------------------- */

/* d is canonical. 1, 0, or -1 on error. */
static int
userdb_odmr_exists_locked(struct userdb *db, const char *d)
{
	return userdb_exists(db, "SELECT 1 FROM odmr WHERE domain = ?1", d,
	    NULL);
}

/* A domain is either delivered here or held for a client, never both:
 * refuses (with *error_r) to make an ODMR domain local. 0 or -1. */
static int
userdb_odmr_check_not_held(struct userdb *db, const char *d, char **error_r)
{
	int held = userdb_odmr_exists_locked(db, d);
	if (held < 0)
		userdb_db_error(db, error_r);
	else if (held > 0)
		userdb_set_error(error_r, "domain %s is held for ODMR; "
		    "remove it with \"odmr del\" first", d);
	return held == 0 ? 0 : -1;
}

static int
userdb_odmr_insert_checked(struct userdb *db, const char *d, const char *u,
    char **error_r)
{
	int local = userdb_domain_exists_locked(db, d);
	int user = userdb_user_exists_locked(db, u);
	if (local < 0 || user < 0) {
		userdb_db_error(db, error_r);
		return -1;
	}
	if (local > 0) {
		userdb_set_error(error_r, "%s is a local domain", d);
		return -1;
	}
	if (user == 0) {
		userdb_set_error(error_r, "no such user: %s", u);
		return -1;
	}
	int rc = userdb_run(db, "INSERT INTO odmr(domain, user) "
	    "VALUES(?1, ?2)", d, u);
	if (userdb_is_constraint(rc))
		userdb_set_error(error_r, "domain %s is already held for ODMR",
		    d);
	else if (rc != SQLITE_DONE)
		userdb_db_error(db, error_r);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* In one transaction, so that the checks hold against another process
 * (the CLI beside the daemon). */
static int
userdb_odmr_add_locked(struct userdb *db, const char *d, const char *u,
    char **error_r)
{
	if (userdb_exec(db, "BEGIN IMMEDIATE") < 0) {
		userdb_db_error(db, error_r);
		return -1;
	}
	if (userdb_odmr_insert_checked(db, d, u, error_r) < 0) {
		(void)userdb_exec(db, "ROLLBACK");
		return -1;
	}
	if (userdb_exec(db, "COMMIT") < 0) {
		userdb_db_error(db, error_r);
		(void)userdb_exec(db, "ROLLBACK");
		return -1;
	}
	return 0;
}

int
userdb_odmr_add(struct userdb *db, const char *domain, const char *user,
    char **error_r)
{
	char *d = userdb_canonical_domain(domain);
	char *u = userdb_canonical(user);
	int r = -1;

	if (d == NULL)
		userdb_set_error(error_r, "invalid domain \"%s\"",
		    domain != NULL ? domain : "");
	else if (u == NULL)
		userdb_set_error(error_r, "invalid address \"%s\"",
		    user != NULL ? user : "");
	else {
		userdb_lock(db);
		r = userdb_odmr_add_locked(db, d, u, error_r);
		userdb_unlock(db);
	}
	x_free(&d);
	x_free(&u);
	return r;
}

int
userdb_odmr_del(struct userdb *db, const char *domain, char **error_r)
{
	char *d = userdb_canonical_domain(domain);
	if (d == NULL) {
		userdb_set_error(error_r, "invalid domain \"%s\"",
		    domain != NULL ? domain : "");
		return -1;
	}
	int r = -1;
	userdb_lock(db);
	int rc = userdb_run(db, "DELETE FROM odmr WHERE domain = ?1", d, NULL);
	if (rc != SQLITE_DONE)
		userdb_db_error(db, error_r);
	else if (sqlite3_changes(db->db) == 0)
		userdb_set_error(error_r, "no such ODMR domain: %s", d);
	else
		r = 0;
	userdb_unlock(db);
	x_free(&d);
	return r;
}

int
userdb_odmr_list(struct userdb *db, struct strlist *out)
{
	userdb_lock(db);
	int n = userdb_column(db, "SELECT domain || ' ' || user FROM odmr "
	    "ORDER BY domain", NULL, out);
	userdb_unlock(db);
	return n < 0 ? -1 : 0;
}

char *
userdb_odmr_user(struct userdb *db, const char *domain)
{
	struct strlist l = STRLIST_INIT;
	char *d = userdb_canonical_domain(domain);
	char *user = NULL;

	if (d == NULL)
		return NULL;
	userdb_lock(db);
	if (userdb_column(db, "SELECT user FROM odmr WHERE domain = ?1", d,
	    &l) > 0)
		user = x_strdup(l.v[0]);
	userdb_unlock(db);
	strlist_free(&l);
	x_free(&d);
	return user;
}

bool
userdb_is_odmr_domain(struct userdb *db, const char *domain)
{
	char *user = userdb_odmr_user(db, domain);
	bool held = user != NULL;
	x_free(&user);
	return held;
}

int
userdb_odmr_domains(struct userdb *db, const char *user, struct strlist *out)
{
	char *u = userdb_canonical(user);
	if (u == NULL)
		return 0;
	userdb_lock(db);
	int n = userdb_column(db, "SELECT domain FROM odmr WHERE user = ?1 "
	    "ORDER BY domain", u, out);
	userdb_unlock(db);
	x_free(&u);
	return n;
}

/* ---- resolution ---------------------------------------------------------- */

struct userdb_resolve {
	struct userdb *db;
	struct strlist *local, *remote;
	struct strlist expanded;	/* aliases already followed */
	struct strlist path;		/* aliases being followed now */
	bool found, loop, error;
};

static void userdb_resolve_addr(struct userdb_resolve *rs,
    const char *address, int depth);

/* The alias's targets into out: their number, 0 when key is no alias,
 * -1 on error. */
static int
userdb_alias_targets(struct userdb *db, const char *key, struct strlist *out)
{
	return userdb_column(db, "SELECT target FROM alias_targets "
	    "WHERE alias = ?1 ORDER BY pos", key, out);
}

static void
userdb_resolve_add_local(struct userdb_resolve *rs, const char *address)
{
	strlist_add_unique(rs->local, address);
	rs->found = true;
}

static void
userdb_resolve_expand(struct userdb_resolve *rs, const char *key,
    const struct strlist *targets, int depth)
{
	strlist_add(&rs->expanded, key);
	strlist_add(&rs->path, key);
	for (size_t i = 0; i < targets->n; i++)
		userdb_resolve_addr(rs, targets->v[i], depth + 1);
	rs->path.n--;
	x_free(&rs->path.v[rs->path.n]);
}

/* Resolves one canonical key ("local@domain" or "@domain"): alias first
 * (so "me@d -> me@d, other@x" keeps a copy), then user. Returns false when
 * it is neither. */
static bool
userdb_resolve_key(struct userdb_resolve *rs, const char *key, int depth)
{
	struct strlist targets = STRLIST_INIT;

	if (strlist_contains(&rs->path, key)) {
		/* An alias naming itself means its user, if there is one. */
		int u = userdb_user_exists_locked(rs->db, key);
		if (u == 1)
			userdb_resolve_add_local(rs, key);
		else if (u < 0)
			rs->error = true;
		else
			rs->loop = true;
		return true;
	}
	if (strlist_contains(&rs->expanded, key))
		return true;
	int n = userdb_alias_targets(rs->db, key, &targets);
	if (n > 0)
		userdb_resolve_expand(rs, key, &targets, depth);
	strlist_free(&targets);
	if (n != 0) {
		rs->error |= n < 0;
		return true;
	}
	int u = key[0] == '@' ? 0 : userdb_user_exists_locked(rs->db, key);
	if (u == 1)
		userdb_resolve_add_local(rs, key);
	rs->error |= u < 0;
	return u != 0;
}

/* local and domain are canonical and domain is local. */
static void
userdb_resolve_local(struct userdb_resolve *rs, const char *local,
    const char *domain, int depth)
{
	char *key = x_asprintf("%s@%s", local, domain);
	bool done = userdb_resolve_key(rs, key, depth);
	x_free(&key);

	const char *plus = strchr(local, '+');
	if (!done && plus != NULL && plus != local) {
		key = x_asprintf("%.*s@%s", (int)(plus - local), local, domain);
		done = userdb_resolve_key(rs, key, depth);
		x_free(&key);
	}
	if (!done) {
		key = x_asprintf("@%s", domain);
		(void)userdb_resolve_key(rs, key, depth);
		x_free(&key);
	}
}

static void
userdb_resolve_addr(struct userdb_resolve *rs, const char *address, int depth)
{
	const char *at = strrchr(address, '@');
	char *local, *domain;

	if (depth > USERDB_MAX_ALIAS_DEPTH) {
		rs->loop = true;
		return;
	}
	if (at == NULL)
		return;
	char *d = str_lower(x_strdup(at + 1));
	int is_local = userdb_domain_exists_locked(rs->db, d);
	if (is_local == 0 && depth > 0) {
		char *t = x_asprintf("%.*s@%s", (int)(at - address), address,
		    d);
		strlist_add_unique(rs->remote, t);
		rs->found = true;
		x_free(&t);
	}
	x_free(&d);
	rs->error |= is_local < 0;
	if (is_local != 1)
		return;
	/* A local part that cannot be an account name is nobody's. */
	if (userdb_split_address(address, &local, &domain) < 0)
		return;
	userdb_resolve_local(rs, local, domain, depth);
	x_free(&local);
	x_free(&domain);
}

enum userdb_resolve_result
userdb_resolve(struct userdb *db, const char *address, struct strlist *local,
    struct strlist *remote)
{
	struct userdb_resolve rs = {
		.db = db, .local = local, .remote = remote,
		.expanded = STRLIST_INIT, .path = STRLIST_INIT,
	};
	const char *at = address != NULL ? strrchr(address, '@') : NULL;

	if (at == NULL)
		return RESOLVE_NO_SUCH_USER;
	userdb_lock(db);
	/* One read for all the lookups, not one each. */
	bool txn = userdb_run(db, "BEGIN", NULL, NULL) == SQLITE_DONE;
	char *d = str_lower(x_strdup(at + 1));
	int is_local = userdb_domain_exists_locked(db, d);
	x_free(&d);
	if (is_local == 1)
		userdb_resolve_addr(&rs, address, 0);
	if (txn && userdb_run(db, "COMMIT", NULL, NULL) != SQLITE_DONE)
		(void)userdb_run(db, "ROLLBACK", NULL, NULL);
	userdb_unlock(db);
	strlist_free(&rs.expanded);
	strlist_free(&rs.path);
	if (is_local < 0 || rs.error)
		return RESOLVE_ERROR;
	if (is_local == 0)
		return RESOLVE_NOT_LOCAL;
	if (rs.found)
		return RESOLVE_OK;
	return rs.loop ? RESOLVE_ERROR : RESOLVE_NO_SUCH_USER;
}
