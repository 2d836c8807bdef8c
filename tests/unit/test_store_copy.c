/* APPEND, COPY, MOVE and the MIME summary cache of the store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store/mime.h"
#include "test_store_fixture.h"

static const char message[] = "From: Ann <ann@example.test>\r\n"
    "To: bob@example.test\r\n"
    "Subject: hello there\r\n"
    "Date: Tue, 01 Dec 2026 08:29:30 +0000\r\n"
    "\r\n"
    "Hi Bob.\r\n";

/* APPENDs message to mailbox; the new UID. */
static uint32_t
append(struct store *st, const char *mailbox, unsigned flags,
    const char *const *kw, size_t nkw, time_t date)
{
	char *tmp = NULL;
	uint32_t uidvalidity, uid;

	int fd = store_append_begin(st, &tmp, NULL);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, message, sizeof(message) - 1),
	    (ssize_t)sizeof(message) - 1);
	assert_int_equal(close(fd), 0);
	FX_OK(store_append_commit(st, mailbox, tmp, flags, kw, nkw, date,
	    &uidvalidity, &uid, error_r));
	assert_int_equal(access(tmp, F_OK), -1);
	free(tmp);
	return uid;
}

static void
test_append(void **state)
{
	struct fixture *fx = *state;
	struct store_mailbox mb;
	const char *kw[] = { "$Important", "Todo", "todo" };
	char path[512];
	time_t now = time(NULL);

	struct store *st = fx_open(fx);
	FX_OK(store_mailbox_create(st, "Work", error_r));
	fx_load(st, "Work", &mb);
	uint32_t v = mb.uidvalidity;
	store_mailbox_free(&mb);
	char *tmp = NULL;
	uint32_t uidvalidity = 0, uid = 0;
	int fd = store_append_begin(st, &tmp, NULL);
	assert_true(fd >= 0);
	assert_non_null(strstr(tmp, "/tmp/"));
	assert_int_equal(write(fd, message, sizeof(message) - 1),
	    (ssize_t)sizeof(message) - 1);
	close(fd);
	FX_OK(store_append_commit(st, "Work", tmp, STORE_F_SEEN, kw, 3,
	    1234567890, &uidvalidity, &uid, error_r));
	free(tmp);
	assert_int_equal(uidvalidity, v);
	assert_int_equal(uid, 1);
	assert_int_equal(append(st, "Work", 0, NULL, 0, 0), 2);
	assert_int_equal(fx_count(fx->root, "tmp"), 0);
	assert_int_equal(fx_count(fx_folder(fx, ".Work", path, sizeof(path)),
	    "cur"), 2);
	store_close(st);

	/* Another store sees it all, from the index and the files. */
	st = fx_open(fx);
	fx_load(st, "Work", &mb);
	assert_int_equal(mb.count, 2);
	assert_int_equal(mb.uidnext, 3);
	assert_int_equal(mb.msgs[0].uid, 1);
	assert_int_equal(mb.msgs[0].flags, STORE_F_SEEN);
	assert_int_equal(mb.msgs[0].internaldate, 1234567890);
	assert_true(mb.msgs[0].savedate >= now);
	assert_string_equal(mb.msgs[0].keywords, "$Important Todo");
	assert_int_equal(mb.msgs[0].size, sizeof(message) - 1);
	assert_non_null(strstr(mb.msgs[0].path, ":2,S"));
	assert_true(mb.msgs[1].internaldate >= now);
	assert_null(mb.msgs[1].keywords);
	assert_true(mb.msgs[1].modseq > mb.msgs[0].modseq);
	struct stat sb;
	assert_int_equal(stat(mb.msgs[0].path, &sb), 0);
	assert_int_equal(sb.st_mtime, 1234567890);
	store_mailbox_free(&mb);
	store_close(st);
}

static void
test_append_errors(void **state)
{
	struct fixture *fx = *state;
	char *tmp = NULL, outside[512];
	uint32_t v, uid;
	const char *bad[] = { "a b" };

	struct store *st = fx_open(fx);
	int fd = store_append_begin(st, &tmp, NULL);
	assert_true(fd >= 0);
	close(fd);
	FX_FAILS(store_append_commit(st, "Nope", tmp, 0, NULL, 0, 0, &v,
	    &uid, error_r), ENOENT);
	assert_int_equal(access(tmp, F_OK), -1);	/* removed */
	free(tmp);

	fd = store_append_begin(st, &tmp, NULL);
	close(fd);
	FX_FAILS(store_append_commit(st, "INBOX", tmp, 0, bad, 1, 0, &v,
	    &uid, error_r), EINVAL);
	assert_int_equal(access(tmp, F_OK), -1);
	free(tmp);

	fd = store_append_begin(st, &tmp, NULL);
	close(fd);
	store_append_abort(tmp);
	assert_int_equal(access(tmp, F_OK), -1);
	free(tmp);

	/* Only files store_append_begin made: others are left alone. */
	snprintf(outside, sizeof(outside), "%s/outside", fx->dir);
	fx_put(fx->dir, "", "outside", 0);
	FX_FAILS(store_append_commit(st, "INBOX", outside, 0, NULL, 0, 0, &v,
	    &uid, error_r), EINVAL);
	assert_int_equal(access(outside, F_OK), 0);
	snprintf(outside, sizeof(outside), "%s/tmp/../cur/x", fx->root);
	FX_FAILS(store_append_commit(st, "INBOX", outside, 0, NULL, 0, 0, &v,
	    &uid, error_r), EINVAL);
	assert_int_equal(fx_count(fx->root, "cur"), 0);
	assert_int_equal(fx_count(fx->root, "tmp"), 0);
	store_close(st);
}

/* ---- COPY, MOVE --------------------------------------------------------- */

static void
setup_inbox(struct fixture *fx, struct store *st)
{
	struct store_flag_result res[1];
	const char *kw[] = { "Blue" };
	uint32_t uid = 3;

	fx_put(fx->root, "new", "c1", 100);
	fx_put(fx->root, "cur", "c2:2,S", 200);
	fx_put(fx->root, "cur", "c3:2,FR", 300);
	struct store_mailbox mb;
	fx_load(st, "INBOX", &mb);
	store_mailbox_free(&mb);
	struct store_flag_update u = { .op = STORE_FLAGS_ADD, .keywords = kw,
	    .nkeywords = 1 };
	FX_OK(store_update_flags(st, "INBOX", &uid, 1, &u, res, error_r));
	store_flag_results_free(res, 1);
	FX_OK(store_mailbox_create(st, "Work", error_r));
}

static void
test_copy(void **state)
{
	struct fixture *fx = *state;
	struct store_mailbox src, dst;
	static const uint32_t uids[] = { 1, 3, 99 };
	uint32_t su[3], du[3], v;
	size_t n;

	struct store *st = fx_open(fx);
	setup_inbox(fx, st);
	FX_OK(store_copy(st, "INBOX", "Work", uids, 3, false, &v, su, du, &n,
	    error_r));
	assert_int_equal(n, 2);
	assert_int_equal(su[0], 1);
	assert_int_equal(su[1], 3);
	assert_int_equal(du[0], 1);
	assert_int_equal(du[1], 2);
	fx_load(st, "INBOX", &src);
	fx_load(st, "Work", &dst);
	assert_int_equal(v, dst.uidvalidity);
	assert_int_equal(src.count, 3);
	assert_int_equal(dst.count, 2);
	assert_int_equal(dst.msgs[0].internaldate, 100);
	assert_int_equal(dst.msgs[1].internaldate, 300);
	assert_int_equal(dst.msgs[1].flags, STORE_F_FLAGGED | STORE_F_ANSWERED);
	assert_string_equal(dst.msgs[1].keywords, "Blue");
	assert_int_equal(dst.msgs[1].size, src.msgs[2].size);
	/* A hard link: one file, two names. */
	struct stat a, b;
	assert_int_equal(stat(src.msgs[2].path, &a), 0);
	assert_int_equal(stat(dst.msgs[1].path, &b), 0);
	assert_true(a.st_ino == b.st_ino);
	assert_int_equal(b.st_nlink, 2);
	assert_null(strstr(dst.msgs[1].path, "/c3:"));	/* a new name */
	store_mailbox_free(&src);
	store_mailbox_free(&dst);

	char **kws;
	size_t nkws;
	FX_OK(store_mailbox_keywords(st, "Work", &kws, &nkws, error_r));
	assert_int_equal(nkws, 1);
	store_keywords_free(kws, nkws);

	FX_FAILS(store_copy(st, "INBOX", "Nope", uids, 3, false, &v, su, du,
	    &n, error_r), ENOENT);
	FX_FAILS(store_copy(st, "Nope", "Work", uids, 3, false, &v, su, du,
	    &n, error_r), ENOENT);
	FX_FAILS(store_copy(st, "INBOX", "../x", uids, 3, false, &v, su, du,
	    &n, error_r), EINVAL);

	FX_OK(store_copy(st, "INBOX", "Work", NULL, 0, true, &v, NULL, NULL,
	    &n, error_r));
	assert_int_equal(n, 0);

	/* COPY into the same mailbox: new UIDs. */
	FX_OK(store_copy(st, "INBOX", "INBOX", uids, 1, false, &v, su, du, &n,
	    error_r));
	assert_int_equal(n, 1);
	assert_int_equal(du[0], 4);
	fx_load(st, "INBOX", &src);
	assert_int_equal(src.count, 4);
	store_mailbox_free(&src);
	store_close(st);
}

static void
test_move(void **state)
{
	struct fixture *fx = *state;
	struct store_mailbox src, dst;
	static const uint32_t uids[] = { 2, 3 };
	uint32_t su[2], du[2], v, *gone;
	size_t n, ngone;

	struct store *st = fx_open(fx);
	setup_inbox(fx, st);
	fx_load(st, "INBOX", &src);
	uint64_t before = src.highestmodseq;
	store_mailbox_free(&src);
	FX_OK(store_copy(st, "INBOX", "Work", uids, 2, true, &v, su, du, &n,
	    error_r));
	assert_int_equal(n, 2);
	assert_int_equal(su[0], 2);
	assert_int_equal(du[1], 2);
	fx_load(st, "INBOX", &src);
	fx_load(st, "Work", &dst);
	assert_int_equal(src.count, 1);
	assert_int_equal(src.msgs[0].uid, 1);
	assert_true(src.highestmodseq > before);
	assert_int_equal(dst.count, 2);
	assert_int_equal(dst.msgs[0].flags, STORE_F_SEEN);
	assert_string_equal(dst.msgs[1].keywords, "Blue");
	assert_int_equal(dst.msgs[1].internaldate, 300);
	struct stat sb;
	assert_int_equal(stat(dst.msgs[1].path, &sb), 0);
	assert_int_equal(sb.st_nlink, 1);
	assert_int_equal(fx_count(fx->root, "cur"), 1);
	store_mailbox_free(&src);
	store_mailbox_free(&dst);
	FX_OK(store_vanished(st, "INBOX", before, &gone, &ngone, error_r));
	assert_int_equal(ngone, 2);
	assert_int_equal(gone[0], 2);
	assert_int_equal(gone[1], 3);
	free(gone);

	/* Moving again what is gone moves nothing. */
	FX_OK(store_copy(st, "INBOX", "Work", uids, 2, true, &v, su, du, &n,
	    error_r));
	assert_int_equal(n, 0);
	/* MOVE within one mailbox: a new UID, the old one vanished. */
	uint32_t one = 1;
	FX_OK(store_copy(st, "Work", "Work", &one, 1, true, &v, su, du, &n,
	    error_r));
	assert_int_equal(n, 1);
	assert_int_equal(du[0], 3);
	fx_load(st, "Work", &dst);
	assert_int_equal(dst.count, 2);
	assert_null(fx_uid(&dst, 1));
	assert_non_null(fx_uid(&dst, 3));
	assert_int_equal(fx_uid(&dst, 3)->flags, STORE_F_SEEN);
	store_mailbox_free(&dst);
	store_close(st);
}

/* ---- summaries ---------------------------------------------------------- */

static int
cached_envelopes(struct fixture *fx)
{
	char path[512];
	sqlite3 *db;
	sqlite3_stmt *s;

	snprintf(path, sizeof(path), "%s/index.db", fx->root);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM "
	    "messages WHERE envelope IS NOT NULL", -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	int n = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return n;
}

static void
test_summary(void **state)
{
	struct fixture *fx = *state;
	struct mime_summary a, b;
	struct store_mailbox mb;

	struct store *st = fx_open(fx);
	uint32_t uid = append(st, "INBOX", 0, NULL, 0, 0);
	assert_int_equal(cached_envelopes(fx), 1);	/* at APPEND */
	FX_OK(store_msg_summary(st, "INBOX", uid, &a, error_r));
	assert_non_null(a.envelope);
	assert_non_null(strstr(a.envelope, "hello there"));
	assert_non_null(a.body);
	assert_non_null(a.bodystructure);
	assert_true(a.sentdate == 1796113770);
	FX_OK(store_msg_summary(st, "inbox", uid, &b, error_r));
	assert_string_equal(a.envelope, b.envelope);
	assert_string_equal(a.bodystructure, b.bodystructure);
	mime_summary_free(&a);
	mime_summary_free(&b);
	FX_FAILS(store_msg_summary(st, "INBOX", 99, &a, error_r), ENOENT);
	assert_null(a.envelope);
	FX_FAILS(store_msg_summary(st, "Nope", 1, &a, error_r), ENOENT);

	/* A delivery is summarized when first indexed. */
	fx_put(fx->root, "new", "d1", 0);
	fx_load(st, "INBOX", &mb);
	store_mailbox_free(&mb);
	assert_int_equal(cached_envelopes(fx), 2);
	/* COPY keeps the cache. */
	uint32_t su[1], du[1], v;
	size_t n;
	FX_OK(store_copy(st, "INBOX", "Archive", &uid, 1, false, &v, su, du,
	    &n, error_r));
	assert_int_equal(cached_envelopes(fx), 3);
	FX_OK(store_msg_summary(st, "Archive", du[0], &a, error_r));
	assert_non_null(strstr(a.envelope, "hello there"));
	mime_summary_free(&a);
	store_close(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_append, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_append_errors, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_copy, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_move, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_summary, fx_setup,
		    fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
