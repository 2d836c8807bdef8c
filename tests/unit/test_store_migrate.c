/* An index.db made by the first store (schema version 1) is upgraded in
 * place: UIDVALIDITY, UIDs, flags and MODSEQ survive; names change from
 * the folder's ("Archive.2026") to the client's ("Archive/2026"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store/maildir.h"
#include "test_store_fixture.h"

/* The first store's schema, as it wrote it. */
static const char schema_v1[] =
    "PRAGMA journal_mode=WAL;"
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
    " value INTEGER NOT NULL);"
    "PRAGMA user_version=1;";

static const char rows_v1[] =
    "INSERT INTO mailboxes VALUES(1, 'INBOX', 1000, 3, 7);"
    "INSERT INTO mailboxes VALUES(2, 'Archive.2026', 1001, 2, 4);"
    "INSERT INTO mailboxes VALUES(3, '100%', 1002, 2, 2);"
    "INSERT INTO mailboxes VALUES(4, 'Sent', 1003, 1, 1);"
    "INSERT INTO meta VALUES('uidvalidity', 1003);"
    "INSERT INTO messages VALUES(1, 1, 'a', 1, 6, 40, 500);"
    "INSERT INTO messages VALUES(1, 2, 'b', 0, 7, 40, 600);"
    "INSERT INTO messages VALUES(2, 1, 'z', 4, 4, 40, 700);"
    "INSERT INTO messages VALUES(3, 1, 'p', 0, 2, 40, 800);";

static void
exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("sqlite: %s", msg);
}

static int
user_version(struct fixture *fx)
{
	char path[512];
	sqlite3 *db;
	sqlite3_stmt *s;

	snprintf(path, sizeof(path), "%s/index.db", fx->root);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s,
	    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	int v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

/* Whether SQLite answers the search caches' query (SQL_HDRSEARCH_LIST in
 * store.c) from an index alone, without a look into each row. */
static bool
hdrsearch_covered(struct fixture *fx)
{
	char path[512];
	sqlite3 *db;
	sqlite3_stmt *s;
	bool covered = false;

	snprintf(path, sizeof(path), "%s/index.db", fx->root);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "EXPLAIN QUERY PLAN "
	    "SELECT uid, hdrsearch FROM messages WHERE mailbox_id = ?1 "
	    "AND uid >= ?2 ORDER BY uid LIMIT ?3", -1, &s, NULL), SQLITE_OK);
	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *d = (const char *)sqlite3_column_text(s, 3);
		if (d != NULL && strstr(d, "COVERING INDEX") != NULL)
			covered = true;
	}
	sqlite3_finalize(s);
	sqlite3_close(db);
	return covered;
}

/* The Maildir and index a user of the first store had. */
static void
make_v1(struct fixture *fx, const char *extra_sql)
{
	char path[512];
	sqlite3 *db;

	assert_int_equal(maildir_create(fx->root), 0);
	assert_int_equal(maildir_create(fx_folder(fx, ".Archive.2026", path,
	    sizeof(path))), 0);
	fx_put(path, "cur", "z:2,F", 700);
	assert_int_equal(maildir_create(fx_folder(fx, ".100%", path,
	    sizeof(path))), 0);
	fx_put(path, "cur", "p:2,", 800);
	assert_int_equal(maildir_create(fx_folder(fx, ".Sent", path,
	    sizeof(path))), 0);
	fx_put(fx->root, "cur", "a:2,S", 500);
	fx_put(fx->root, "cur", "b:2,", 600);
	snprintf(path, sizeof(path), "%s/index.db", fx->root);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	exec(db, schema_v1);
	exec(db, rows_v1);
	if (extra_sql != NULL)
		exec(db, extra_sql);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static const struct store_mailbox_info *
find(struct store_mailbox_info *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0)
			return &v[i];
	return NULL;
}

static void
check_upgraded(struct fixture *fx, struct store *st, uint64_t hms)
{
	struct store_mailbox mb;

	fx_load(st, "INBOX", &mb);
	assert_int_equal(mb.uidvalidity, 1000);
	assert_int_equal(mb.uidnext, 3);
	assert_true(mb.highestmodseq == hms);
	assert_int_equal(mb.count, 2);
	assert_int_equal(mb.msgs[0].flags, STORE_F_SEEN);
	assert_true(mb.msgs[0].modseq == 6);
	assert_int_equal(mb.msgs[0].internaldate, 500);
	assert_int_equal(mb.msgs[0].savedate, 500);	/* unknown: arrived */
	assert_null(mb.msgs[0].keywords);
	store_mailbox_free(&mb);
	fx_load(st, "Archive/2026", &mb);
	assert_int_equal(mb.uidvalidity, 1001);
	assert_int_equal(mb.count, 1);
	assert_int_equal(mb.msgs[0].flags, STORE_F_FLAGGED);
	store_mailbox_free(&mb);
	fx_load(st, "100%", &mb);
	assert_int_equal(mb.uidvalidity, 1002);
	assert_int_equal(mb.count, 1);
	store_mailbox_free(&mb);
	assert_true(fx_exists(fx->root, ".100%25", "cur"));
	assert_false(fx_exists(fx->root, ".100%", ""));
	assert_true(fx_exists(fx->root, ".Archive.2026", "cur"));
}

static void
test_upgrade_v1(void **state)
{
	struct fixture *fx = *state;
	struct store_mailbox_info *v;
	size_t n;

	make_v1(fx, NULL);
	struct store *st = fx_open(fx);
	assert_int_equal(user_version(fx), 4);
	assert_true(hdrsearch_covered(fx));
	check_upgraded(fx, st, 7);
	FX_OK(store_mailbox_list(st, &v, &n, error_r));
	/* INBOX, Archive/2026, 100%, and the five special-use ones. */
	assert_int_equal(n, 8);
	const struct store_mailbox_info *sent = find(v, n, "Sent");
	assert_non_null(sent);
	assert_int_equal(sent->special, STORE_USE_SENT);
	assert_true(sent->subscribed);
	assert_int_equal(find(v, n, "Drafts")->special, STORE_USE_DRAFTS);
	assert_int_equal(find(v, n, "Archive")->special, STORE_USE_ARCHIVE);
	assert_true(find(v, n, "INBOX")->subscribed);
	assert_false(find(v, n, "Archive/2026")->subscribed);
	store_mailbox_list_free(v, n);
	struct store_mailbox mb;
	fx_load(st, "Sent", &mb);
	assert_int_equal(mb.uidvalidity, 1003);	/* kept */
	store_mailbox_free(&mb);
	fx_load(st, "Drafts", &mb);
	assert_true(mb.uidvalidity > 1003);	/* new, never an old one */
	store_mailbox_free(&mb);
	/* New features work on the old data. */
	struct store_flag_result res[1];
	const char *kw[] = { "Later" };
	uint32_t uid = 2;
	struct store_flag_update u = { .op = STORE_FLAGS_ADD, .keywords = kw,
	    .nkeywords = 1 };
	FX_OK(store_update_flags(st, "INBOX", &uid, 1, &u, res, error_r));
	assert_true(res[0].modseq == 8);
	store_flag_results_free(res, 1);
	store_close(st);

	/* Opened again: nothing to upgrade, nothing made again. */
	st = fx_open(fx);
	check_upgraded(fx, st, 8);
	FX_OK(store_mailbox_list(st, &v, &n, error_r));
	assert_int_equal(n, 8);
	store_mailbox_list_free(v, n);
	store_close(st);
}

static void
test_upgrade_inbox_child(void **state)
{
	struct fixture *fx = *state;
	struct store_mailbox mb;
	char path[512];

	/* v1 took "inbox.x" as a folder name as it was. */
	make_v1(fx, "INSERT INTO mailboxes VALUES(5, 'inbox.x', 1004, 1, 1);");
	assert_int_equal(maildir_create(fx_folder(fx, ".inbox.x", path,
	    sizeof(path))), 0);
	struct store *st = fx_open(fx);
	fx_load(st, "INBOX/x", &mb);
	assert_int_equal(mb.uidvalidity, 1004);
	store_mailbox_free(&mb);
	assert_true(fx_exists(fx->root, ".INBOX.x", "cur"));
	store_close(st);
}

static void
test_newer_index_refused(void **state)
{
	struct fixture *fx = *state;
	char *err = NULL;

	make_v1(fx, "PRAGMA user_version=5;");
	assert_null(store_open(fx->dir, USER, &err));
	assert_non_null(strstr(err, "newer"));
	free(err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_upgrade_v1, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_inbox_child,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_newer_index_refused,
		    fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
