/* Flags and keywords in batches (IMAP STORE), UNCHANGEDSINCE, MODSEQ,
 * and the expunged UIDs kept for QRESYNC. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_store_fixture.h"

#define NMSG 4

/* INBOX with NMSG messages, UIDs 1..NMSG. */
static struct store *
prepare(struct fixture *fx, struct store_mailbox *mb)
{
	char name[32];
	struct store *st = fx_open(fx);

	for (int i = 1; i <= NMSG; i++) {
		snprintf(name, sizeof(name), "m%d", i);
		fx_put(fx->root, "new", name, 1000 * i);
	}
	fx_load(st, "INBOX", mb);
	assert_int_equal(mb->count, NMSG);
	return st;
}

static void
update(struct store *st, const uint32_t *uids, size_t n,
    const struct store_flag_update *u, struct store_flag_result *res)
{
	FX_OK(store_update_flags(st, "INBOX", uids, n, u, res, error_r));
}

static void
test_batch_flags_and_keywords(void **state)
{
	struct fixture *fx = *state;
	struct store_mailbox mb, after;
	struct store_flag_result res[NMSG];
	static const uint32_t all[] = { 1, 2, 3, 4 };
	const char *kw1[] = { "$Forwarded", "Work", "work" };

	struct store *st = prepare(fx, &mb);
	uint64_t hms = mb.highestmodseq;
	struct store_flag_update u = { .op = STORE_FLAGS_ADD,
	    .flags = STORE_F_SEEN | STORE_F_FLAGGED, .keywords = kw1,
	    .nkeywords = 3 };
	update(st, all, 3, &u, res);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(res[i].uid, all[i]);
		assert_true(res[i].changed);
		assert_false(res[i].gone);
		assert_false(res[i].modified);
		assert_int_equal(res[i].flags, STORE_F_SEEN | STORE_F_FLAGGED);
		/* "work" is "Work": one keyword, spelled as first given. */
		assert_string_equal(res[i].keywords, "$Forwarded Work");
		/* One MODSEQ for the whole batch. */
		assert_true(res[i].modseq == hms + 1);
	}
	store_flag_results_free(res, 3);
	assert_true(fx_exists(fx->root, "cur", "m1:2,FS"));
	assert_true(fx_exists(fx->root, "cur", "m4:2,"));

	/* Remove with another case; unknown keywords change nothing. */
	const char *kw2[] = { "WORK", "$NoSuch" };
	u = (struct store_flag_update){ .op = STORE_FLAGS_REMOVE,
	    .flags = STORE_F_FLAGGED, .keywords = kw2, .nkeywords = 2 };
	update(st, all, 4, &u, res);
	assert_string_equal(res[0].keywords, "$Forwarded");
	assert_int_equal(res[0].flags, STORE_F_SEEN);
	assert_true(res[0].modseq == hms + 2);
	assert_false(res[3].changed);	/* had neither */
	assert_null(res[3].keywords);
	assert_true(res[3].modseq == mb.msgs[3].modseq);
	store_flag_results_free(res, 4);
	assert_true(fx_exists(fx->root, "cur", "m1:2,S"));

	/* SET keeps the order in which kept keywords were first set. */
	const char *kw3[] = { "b", "$Forwarded", "a" };
	u = (struct store_flag_update){ .op = STORE_FLAGS_SET,
	    .flags = STORE_F_DRAFT, .keywords = kw3, .nkeywords = 3 };
	update(st, all, 1, &u, res);
	assert_string_equal(res[0].keywords, "$Forwarded b a");
	assert_int_equal(res[0].flags, STORE_F_DRAFT);
	store_flag_results_free(res, 1);

	/* The same again: no change, no new MODSEQ. */
	fx_load(st, "INBOX", &after);
	uint64_t before = after.highestmodseq;
	store_mailbox_free(&after);
	update(st, all, 1, &u, res);
	assert_false(res[0].changed);
	store_flag_results_free(res, 1);
	fx_load(st, "INBOX", &after);
	assert_true(after.highestmodseq == before);
	assert_string_equal(after.msgs[0].keywords, "$Forwarded b a");
	assert_int_equal(after.msgs[0].flags, STORE_F_DRAFT);
	assert_null(after.msgs[3].keywords);
	store_mailbox_free(&after);

	/* The mailbox's keywords, in the order first used. */
	char **kws;
	size_t nkws;
	FX_OK(store_mailbox_keywords(st, "INBOX", &kws, &nkws, error_r));
	assert_int_equal(nkws, 4);
	assert_string_equal(kws[0], "$Forwarded");
	assert_string_equal(kws[1], "Work");
	assert_string_equal(kws[2], "b");
	assert_string_equal(kws[3], "a");
	store_keywords_free(kws, nkws);
	FX_OK(store_mailbox_keywords(st, "Trash", &kws, &nkws, error_r));
	assert_int_equal(nkws, 0);
	store_keywords_free(kws, nkws);
	FX_FAILS(store_mailbox_keywords(st, "Nope", &kws, &nkws, error_r),
	    ENOENT);
	store_mailbox_free(&mb);
	store_close(st);
}

static void
test_unchangedsince(void **state)
{
	struct fixture *fx = *state;
	struct store_mailbox mb;
	struct store_flag_result res[NMSG];
	static const uint32_t one[] = { 1 }, all[] = { 1, 2, 3, 4, 99 };

	struct store *st = prepare(fx, &mb);
	struct store_flag_update u = { .op = STORE_FLAGS_ADD,
	    .flags = STORE_F_SEEN };
	update(st, one, 1, &u, res);
	uint64_t m1 = res[0].modseq;
	store_flag_results_free(res, 1);

	/* Message 1 changed after mb was loaded: it is refused, reported
	 * modified and left alone; the others change. */
	struct store_flag_result res5[5];
	u = (struct store_flag_update){ .op = STORE_FLAGS_ADD,
	    .flags = STORE_F_FLAGGED, .has_unchangedsince = true,
	    .unchangedsince = mb.highestmodseq };
	update(st, all, 5, &u, res5);
	assert_true(res5[0].modified);
	assert_false(res5[0].changed);
	assert_int_equal(res5[0].flags, STORE_F_SEEN);
	assert_true(res5[0].modseq == m1);
	for (int i = 1; i < 4; i++) {
		assert_false(res5[i].modified);
		assert_true(res5[i].changed);
		assert_int_equal(res5[i].flags, STORE_F_FLAGGED);
		assert_true(res5[i].modseq > m1);
	}
	assert_true(res5[4].gone);
	assert_int_equal(res5[4].uid, 99);
	store_flag_results_free(res5, 5);
	assert_true(fx_exists(fx->root, "cur", "m1:2,S"));

	/* UNCHANGEDSINCE 0 always fails (RFC 7162 3.1.3). */
	u.unchangedsince = 0;
	update(st, all, 4, &u, res);
	for (int i = 0; i < 4; i++)
		assert_true(res[i].modified);
	store_flag_results_free(res, 4);
	/* No messages: nothing to do. */
	FX_OK(store_update_flags(st, "INBOX", NULL, 0, &u, NULL, error_r));
	store_mailbox_free(&mb);
	store_close(st);
}

static void
test_modseq_monotonic(void **state)
{
	struct fixture *fx = *state;
	struct store_mailbox mb;
	struct store_flag_result res[1];
	uint32_t uid = 2;

	struct store *st = prepare(fx, &mb);
	uint64_t last = mb.highestmodseq;
	store_mailbox_free(&mb);
	for (int i = 0; i < 20; i++) {
		struct store_flag_update u = { .op = i % 2 ?
		    STORE_FLAGS_REMOVE : STORE_FLAGS_ADD,
		    .flags = STORE_F_ANSWERED };
		update(st, &uid, 1, &u, res);
		assert_true(res[0].changed);
		assert_true(res[0].modseq > last);
		last = res[0].modseq;
		store_flag_results_free(res, 1);
		if (i % 5 == 0) {
			FX_OK(store_set_flags(st, "INBOX", 3, (unsigned)i &
			    STORE_F_SEEN, error_r));
			fx_load(st, "INBOX", &mb);
			assert_true(mb.highestmodseq >= last);
			last = mb.highestmodseq;
			store_mailbox_free(&mb);
		}
	}
	store_close(st);
}

/* Another Maildir reader renamed a file: STORE starts from its name. */
static void
test_flags_from_outside_rename(void **state)
{
	struct fixture *fx = *state;
	struct store_mailbox mb;
	struct store_flag_result res[1];
	char from[512], to[512];
	uint32_t uid = 1;

	struct store *st = prepare(fx, &mb);
	snprintf(from, sizeof(from), "%s/cur/m1:2,", fx->root);
	snprintf(to, sizeof(to), "%s/cur/m1:2,Sa", fx->root);
	assert_int_equal(rename(from, to), 0);
	struct store_flag_update u = { .op = STORE_FLAGS_ADD,
	    .flags = STORE_F_FLAGGED };
	update(st, &uid, 1, &u, res);
	assert_int_equal(res[0].flags, STORE_F_SEEN | STORE_F_FLAGGED);
	store_flag_results_free(res, 1);
	assert_true(fx_exists(fx->root, "cur", "m1:2,FSa"));
	store_mailbox_free(&mb);
	store_close(st);
}

static void
test_keyword_errors(void **state)
{
	struct fixture *fx = *state;
	struct store_mailbox mb, after;
	struct store_flag_result res[NMSG];
	static const uint32_t all[] = { 1, 2, 3, 4 };
	static const char *const bad[] = { "", "a b", "\\Seen", "(x",
	    "x)", "{3}", "a%", "a*", "q\"", "r]", "\x01", "\xc3\xa9" };
	char names[70][16];
	const char *many[70];

	struct store *st = prepare(fx, &mb);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct store_flag_update u = { .op = STORE_FLAGS_ADD,
		    .keywords = &bad[i], .nkeywords = 1 };
		FX_FAILS(store_update_flags(st, "INBOX", all, 1, &u, res,
		    error_r), EINVAL);
	}
	for (int i = 0; i < 70; i++) {
		snprintf(names[i], sizeof(names[i]), "kw%d", i);
		many[i] = names[i];
	}
	/* 64 per mailbox; one more fails the whole batch. */
	struct store_flag_update u = { .op = STORE_FLAGS_ADD,
	    .flags = STORE_F_SEEN, .keywords = many, .nkeywords = 64 };
	update(st, all, 1, &u, res);
	store_flag_results_free(res, 1);
	u.keywords = many + 1;
	u.nkeywords = 63;
	update(st, all + 1, 1, &u, res);	/* known ones: fine */
	assert_true(res[0].changed);
	store_flag_results_free(res, 1);
	u.keywords = many + 64;
	u.nkeywords = 1;
	FX_FAILS(store_update_flags(st, "INBOX", all, 4, &u, res, error_r),
	    ENOSPC);
	for (int i = 0; i < NMSG; i++)
		assert_null(res[i].keywords);
	fx_load(st, "INBOX", &after);
	assert_int_equal(after.msgs[2].flags, 0);	/* nothing applied */
	assert_null(after.msgs[2].keywords);
	store_mailbox_free(&after);
	struct store_flag_update none = { .op = STORE_FLAGS_ADD };
	FX_FAILS(store_update_flags(st, "Nope", all, 1, &none, res, error_r),
	    ENOENT);
	store_mailbox_free(&mb);
	store_close(st);
}

/* ---- vanished ----------------------------------------------------------- */

static void
test_vanished(void **state)
{
	struct fixture *fx = *state;
	struct store_mailbox mb;
	uint32_t *uids;
	size_t n;
	static const uint32_t gone[] = { 1, 3 };

	struct store *st = prepare(fx, &mb);
	uint64_t before = mb.highestmodseq;
	store_mailbox_free(&mb);
	FX_OK(store_vanished(st, "INBOX", 0, &uids, &n, error_r));
	assert_int_equal(n, 0);
	free(uids);

	FX_OK(store_expunge(st, "INBOX", gone, 2, error_r));
	fx_load(st, "INBOX", &mb);
	uint64_t after_expunge = mb.highestmodseq;
	assert_true(after_expunge > before);
	store_mailbox_free(&mb);
	FX_OK(store_vanished(st, "INBOX", before, &uids, &n, error_r));
	assert_int_equal(n, 2);
	assert_int_equal(uids[0], 1);
	assert_int_equal(uids[1], 3);
	free(uids);
	FX_OK(store_vanished(st, "INBOX", after_expunge, &uids, &n, error_r));
	assert_int_equal(n, 0);
	free(uids);

	/* A file removed by another program: vanished at the next load. */
	char path[512];
	snprintf(path, sizeof(path), "%s/cur/m4:2,", fx->root);
	assert_int_equal(unlink(path), 0);
	fx_load(st, "INBOX", &mb);
	assert_int_equal(mb.count, 1);
	assert_true(mb.highestmodseq > after_expunge);
	store_mailbox_free(&mb);
	FX_OK(store_vanished(st, "INBOX", after_expunge, &uids, &n, error_r));
	assert_int_equal(n, 1);
	assert_int_equal(uids[0], 4);
	free(uids);
	FX_OK(store_vanished(st, "INBOX", 0, &uids, &n, error_r));
	assert_int_equal(n, 3);
	free(uids);
	FX_FAILS(store_vanished(st, "Nope", 0, &uids, &n, error_r), ENOENT);
	assert_null(uids);
	store_close(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_batch_flags_and_keywords,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_unchangedsince, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_modseq_monotonic,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_flags_from_outside_rename,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_keyword_errors, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_vanished, fx_setup,
		    fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
