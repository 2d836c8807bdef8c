/* What the store keeps between calls: open folders, the last load's
 * snapshot, summaries made at load. Each test changes the Maildir or the
 * index behind a store's back and checks that the store sees it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store/mime.h"
#include "test_store_fixture.h"

static int
setup(void **state)
{
	return fx_setup(state);
}

static int
teardown(void **state)
{
	return fx_teardown(state);
}

static void
same_mailbox(const struct store_mailbox *a, const struct store_mailbox *b)
{
	assert_int_equal(a->count, b->count);
	assert_int_equal(a->uidvalidity, b->uidvalidity);
	assert_int_equal(a->uidnext, b->uidnext);
	assert_int_equal(a->highestmodseq, b->highestmodseq);
	for (size_t i = 0; i < a->count; i++) {
		assert_int_equal(a->msgs[i].uid, b->msgs[i].uid);
		assert_int_equal(a->msgs[i].flags, b->msgs[i].flags);
		assert_string_equal(a->msgs[i].path, b->msgs[i].path);
	}
}

static void
test_snapshot_sees_changes(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx_open(fx), *other = fx_open(fx);
	struct store_mailbox a, b;
	char from[1024], to[1024];

	fx_put(fx->root, "new", "1.a", 1000);
	fx_put(fx->root, "new", "2.b", 1001);
	fx_put(fx->root, "new", "3.c", 1002);
	fx_load(st, "INBOX", &a);
	assert_int_equal(a.count, 3);
	store_mailbox_free(&a);
	fx_wait_settled(fx->root);
	fx_load(st, "INBOX", &a);	/* full, kept */
	fx_load(st, "INBOX", &b);	/* from the snapshot */
	same_mailbox(&a, &b);
	store_mailbox_free(&b);

	/* A keyword set by another store: only the index changes. */
	const char *kw[] = { "$Work" };
	uint32_t uid = a.msgs[1].uid;
	struct store_flag_update u = { .op = STORE_FLAGS_ADD, .keywords = kw,
	    .nkeywords = 1 };
	struct store_flag_result res;
	FX_OK(store_update_flags(other, "INBOX", &uid, 1, &u, &res, error_r));
	store_flag_results_free(&res, 1);
	fx_load(st, "INBOX", &b);
	assert_non_null(fx_uid(&b, uid)->keywords);
	assert_string_equal(fx_uid(&b, uid)->keywords, "$Work");
	store_mailbox_free(&b);

	/* A delivery into new/ by someone else. */
	fx_put(fx->root, "new", "4.d", 1003);
	fx_load(st, "INBOX", &b);
	assert_int_equal(b.count, 4);
	store_mailbox_free(&b);
	store_mailbox_free(&a);

	/* A Maildir reader's rename in cur/, with a snapshot kept again. */
	fx_wait_settled(fx->root);
	fx_load(st, "INBOX", &a);
	fx_load(st, "INBOX", &b);
	same_mailbox(&a, &b);
	store_mailbox_free(&b);
	snprintf(from, sizeof(from), "%s", a.msgs[0].path);
	snprintf(to, sizeof(to), "%s/cur/1.a:2,FS", fx->root);
	assert_int_equal(rename(from, to), 0);
	fx_load(st, "INBOX", &b);
	assert_int_equal(b.msgs[0].flags, STORE_F_SEEN | STORE_F_FLAGGED);
	assert_string_equal(b.msgs[0].path, to);
	store_mailbox_free(&b);

	/* Expunged by another store. */
	FX_OK(store_expunge(other, "INBOX", &a.msgs[2].uid, 1, error_r));
	fx_load(st, "INBOX", &b);
	assert_int_equal(b.count, 3);
	assert_null(fx_uid(&b, a.msgs[2].uid));
	store_mailbox_free(&b);
	store_mailbox_free(&a);
	store_close(other);
	store_close(st);
}

/* More than one chunk of new messages: every summary is made by the
 * load, so they are there with the files gone. */
static void
test_summaries_made_at_load(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx_open(fx);
	struct store_mailbox mb;
	struct mime_summary sum;
	char name[64], path[1024];

	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "%d.m%03d", 1000 + i, i);
		fx_put(fx->root, "new", name, 1000 + i);
	}
	fx_load(st, "INBOX", &mb);
	assert_int_equal(mb.count, 300);
	for (size_t i = 0; i < mb.count; i++)
		assert_int_equal(unlink(mb.msgs[i].path), 0);
	for (size_t i = 0; i < mb.count; i++) {
		FX_OK(store_msg_summary(st, "inbox", mb.msgs[i].uid, &sum,
		    error_r));
		snprintf(path, sizeof(path), "\"%d.m%03zu\"", 1000 + (int)i, i);
		assert_non_null(strstr(sum.envelope, path));
		mime_summary_free(&sum);
	}
	FX_FAILS(store_msg_summary(st, "INBOX", 999, &sum, error_r), ENOENT);
	FX_FAILS(store_msg_summary(st, "No/Such", 1, &sum, error_r), ENOENT);
	FX_FAILS(store_msg_summary(st, "a//b", 1, &sum, error_r), EINVAL);
	store_mailbox_free(&mb);
	store_close(st);
}

static void
append_one(struct store *st, const char *mailbox, const char *subject,
    uint32_t *uid)
{
	char *path = NULL, *err = NULL;
	uint32_t uidvalidity;
	int fd = store_append_begin(st, &path, &err);
	assert_true(fd >= 0);
	dprintf(fd, "Subject: %s\r\n\r\nx\r\n", subject);
	close(fd);
	if (store_append_commit(st, mailbox, path, 0, NULL, 0, 0,
	    &uidvalidity, uid, &err) < 0)
		fail_msg("append: %s", err);
	free(path);
}

/* A folder kept open by one store, deleted and made again by another. */
static void
test_folder_replaced(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx_open(fx), *other = fx_open(fx);
	struct store_mailbox a, b;
	struct mime_summary sum;
	uint32_t uid;

	FX_OK(store_mailbox_create(st, "Box", error_r));
	append_one(st, "Box", "first", &uid);
	fx_load(st, "Box", &a);
	assert_int_equal(a.count, 1);
	FX_OK(store_mailbox_delete(other, "Box", error_r));
	FX_FAILS(store_mailbox_load(st, "Box", &b, error_r), ENOENT);
	FX_FAILS(store_msg_summary(st, "Box", uid, &sum, error_r), ENOENT);
	FX_OK(store_mailbox_create(other, "Box", error_r));
	append_one(other, "Box", "second", &uid);
	append_one(other, "Box", "third", &uid);
	fx_load(st, "Box", &b);
	assert_int_equal(b.count, 2);
	assert_int_not_equal(b.uidvalidity, a.uidvalidity);
	FX_OK(store_msg_summary(st, "Box", uid, &sum, error_r));
	assert_non_null(strstr(sum.envelope, "\"third\""));
	mime_summary_free(&sum);
	store_mailbox_free(&b);
	store_mailbox_free(&a);

	/* Renamed away by the other store, then by this one. */
	FX_OK(store_mailbox_rename(other, "Box", "Box2", error_r));
	FX_FAILS(store_mailbox_load(st, "Box", &b, error_r), ENOENT);
	FX_OK(store_mailbox_rename(st, "Box2", "Box3", error_r));
	fx_load(st, "Box3", &b);
	assert_int_equal(b.count, 2);
	store_mailbox_free(&b);
	store_close(other);
	store_close(st);
}

/* INBOX's cur/ and new/ removed behind an open store are made again. */
static void
test_inbox_dirs_made_again(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx_open(fx);
	struct store_mailbox mb;
	char path[1024];

	fx_load(st, "INBOX", &mb);
	store_mailbox_free(&mb);
	snprintf(path, sizeof(path), "%s/cur", fx->root);
	assert_int_equal(rmdir(path), 0);
	snprintf(path, sizeof(path), "%s/new", fx->root);
	assert_int_equal(rmdir(path), 0);
	fx_load(st, "INBOX", &mb);
	assert_int_equal(mb.count, 0);
	store_mailbox_free(&mb);
	assert_int_equal(fx_count(fx->root, "cur"), 0);
	fx_put(fx->root, "new", "5.e", 1000);
	fx_load(st, "INBOX", &mb);
	assert_int_equal(mb.count, 1);
	assert_true(fx_exists(fx->root, "cur", "5.e:2,"));
	store_mailbox_free(&mb);
	store_close(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_snapshot_sees_changes,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_summaries_made_at_load,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_folder_replaced, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_inbox_dirs_made_again,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
