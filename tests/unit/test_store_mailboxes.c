/* Mailboxes of the store: names on disk, LIST, CREATE, DELETE, RENAME,
 * SUBSCRIBE, STATUS, over a real Maildir++ tree. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store/maildir.h"
#include "test_store_fixture.h"

struct listing {
	struct store_mailbox_info *v;
	size_t n;
};

static void
list(struct store *st, struct listing *l)
{
	FX_OK(store_mailbox_list(st, &l->v, &l->n, error_r));
}

static const struct store_mailbox_info *
find(const struct listing *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0)
			return &l->v[i];
	return NULL;
}

static void
unlist(struct listing *l)
{
	store_mailbox_list_free(l->v, l->n);
	l->v = NULL;
	l->n = 0;
}

/* ---- special-use and LIST ----------------------------------------------- */

static void
test_specials_and_list(void **state)
{
	struct fixture *fx = *state;
	struct listing l;
	static const struct { const char *name; unsigned use; } sp[] = {
		{ "Sent", STORE_USE_SENT }, { "Drafts", STORE_USE_DRAFTS },
		{ "Trash", STORE_USE_TRASH }, { "Junk", STORE_USE_JUNK },
		{ "Archive", STORE_USE_ARCHIVE },
	};
	char path[512];

	struct store *st = fx_open(fx);
	list(st, &l);
	assert_int_equal(l.n, 6);
	assert_string_equal(l.v[0].name, "INBOX");
	assert_true(l.v[0].subscribed);
	for (size_t i = 0; i < 5; i++) {
		const struct store_mailbox_info *m = find(&l, sp[i].name);
		assert_non_null(m);
		assert_int_equal(m->special, sp[i].use);
		assert_true(m->exists);
		assert_true(m->subscribed);
		assert_false(m->has_children);
		snprintf(path, sizeof(path), "%s/.%s", fx->root, sp[i].name);
		assert_true(fx_exists(path, "cur", ""));
	}
	/* Sorted by name after INBOX. */
	for (size_t i = 2; i < l.n; i++)
		assert_true(strcmp(l.v[i - 1].name, l.v[i].name) < 0);
	unlist(&l);

	/* A second open of the index makes nothing again. */
	FX_OK(store_mailbox_delete(st, "Junk", error_r));
	store_close(st);
	st = fx_open(fx);
	list(st, &l);
	assert_int_equal(l.n, 6);
	const struct store_mailbox_info *junk = find(&l, "Junk");
	assert_non_null(junk);
	assert_false(junk->exists);	/* still subscribed */
	assert_true(junk->subscribed);
	unlist(&l);
	store_close(st);
}

static void
test_list_disk_and_children(void **state)
{
	struct fixture *fx = *state;
	struct listing l;
	char path[512];

	struct store *st = fx_open(fx);
	FX_OK(store_mailbox_create(st, "Work/2026/Q1", error_r));
	/* Superiors are made (RFC 9051 6.3.4). */
	assert_true(fx_exists(fx->root, ".Work", "cur"));
	assert_true(fx_exists(fx->root, ".Work.2026", "cur"));
	assert_true(fx_exists(fx->root, ".Work.2026.Q1", "cur"));
	/* Moved in by another program; and names that are not ours. */
	assert_int_equal(maildir_create(fx_folder(fx, ".Old.Stuff", path,
	    sizeof(path))), 0);
	assert_int_equal(maildir_create(fx_folder(fx, ".bad%2x", path,
	    sizeof(path))), 0);
	assert_int_equal(maildir_create(fx_folder(fx, ".lower%2e", path,
	    sizeof(path))), 0);
	assert_int_equal(maildir_create(fx_folder(fx, "..hidden", path,
	    sizeof(path))), 0);
	assert_int_equal(maildir_create(fx_folder(fx, ".INBOX", path,
	    sizeof(path))), 0);
	FX_OK(store_subscribe(st, "Ghost/Child", true, error_r));
	FX_OK(store_subscribe(st, "inbox", true, error_r));

	list(st, &l);
	assert_string_equal(l.v[0].name, "INBOX");
	assert_null(find(&l, "inbox"));
	assert_non_null(find(&l, "Old/Stuff"));
	assert_null(find(&l, "Old"));
	assert_null(find(&l, "bad%2x"));
	assert_null(find(&l, "lower."));
	assert_null(find(&l, ".hidden"));
	assert_true(find(&l, "Work")->has_children);
	assert_true(find(&l, "Work/2026")->has_children);
	assert_false(find(&l, "Work/2026/Q1")->has_children);
	assert_false(find(&l, "Work/2026/Q1")->subscribed);
	const struct store_mailbox_info *g = find(&l, "Ghost/Child");
	assert_non_null(g);
	assert_false(g->exists);
	assert_true(g->subscribed);
	unlist(&l);

	/* A folder removed behind our back leaves the list. */
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/.Old.Stuff'", fx->root);
	assert_int_equal(system(cmd), 0);
	list(st, &l);
	assert_null(find(&l, "Old/Stuff"));
	unlist(&l);

	FX_OK(store_subscribe(st, "Ghost/Child", false, error_r));
	list(st, &l);
	assert_null(find(&l, "Ghost/Child"));
	unlist(&l);
	store_close(st);
}

/* ---- names on disk ------------------------------------------------------ */

static void
test_names_on_disk(void **state)
{
	struct fixture *fx = *state;
	struct store_mailbox mb;
	struct listing l;
	char path[512];

	struct store *st = fx_open(fx);
	FX_OK(store_mailbox_create(st, "a.b", error_r));
	assert_true(fx_exists(fx->root, ".a%2Eb", "cur"));
	FX_OK(store_mailbox_create(st, "100%", error_r));
	assert_true(fx_exists(fx->root, ".100%25", "cur"));
	FX_OK(store_mailbox_create(st, "Entw\xc3\xbcrfe/\xe2\x82\xac",
	    error_r));
	assert_true(fx_exists(fx->root, ".Entw\xc3\xbcrfe.\xe2\x82\xac",
	    "cur"));
	FX_OK(store_mailbox_create(st, "inbox/sub", error_r));
	assert_true(fx_exists(fx->root, ".INBOX.sub", "cur"));
	FX_OK(store_mailbox_create(st, "x\\y:z", error_r));
	assert_true(fx_exists(fx->root, ".x\\y:z", "cur"));

	list(st, &l);
	assert_non_null(find(&l, "a.b"));
	assert_non_null(find(&l, "100%"));
	assert_non_null(find(&l, "Entw\xc3\xbcrfe/\xe2\x82\xac"));
	assert_non_null(find(&l, "INBOX/sub"));
	assert_true(find(&l, "INBOX")->has_children);
	unlist(&l);

	fx_put(fx_folder(fx, ".a%2Eb", path, sizeof(path)), "new", "m1", 100);
	fx_load(st, "a.b", &mb);
	assert_int_equal(mb.count, 1);
	store_mailbox_free(&mb);
	fx_load(st, "Inbox/sub", &mb);	/* only INBOX ignores case */
	store_mailbox_free(&mb);
	FX_FAILS(store_mailbox_load(st, "INBOX/Sub", &mb, error_r), ENOENT);
	store_mailbox_free(&mb);
	FX_FAILS(store_mailbox_load(st, "a/b", &mb, error_r), ENOENT);
	store_mailbox_free(&mb);
	store_close(st);
}

static void
test_bad_names(void **state)
{
	struct fixture *fx = *state;
	static const char *const bad[] = { "../x", ".x", "a//b", "a/../b",
	    "x/..", "/etc", "tab\tname", "nl\nname", "", "a/", "..",
	    "bad\xff" };
	struct store_mailbox mb;
	struct store_status sts;
	uint32_t *uids;
	size_t n;

	struct store *st = fx_open(fx);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		FX_FAILS(store_mailbox_create(st, bad[i], error_r), EINVAL);
		FX_FAILS(store_mailbox_delete(st, bad[i], error_r), EINVAL);
		FX_FAILS(store_mailbox_rename(st, "Sent", bad[i], error_r),
		    EINVAL);
		FX_FAILS(store_mailbox_rename(st, bad[i], "New", error_r),
		    EINVAL);
		FX_FAILS(store_subscribe(st, bad[i], true, error_r), EINVAL);
		FX_FAILS(store_mailbox_load(st, bad[i], &mb, error_r), EINVAL);
		store_mailbox_free(&mb);
		FX_FAILS(store_mailbox_status(st, bad[i], &sts, error_r),
		    EINVAL);
		FX_FAILS(store_vanished(st, bad[i], 0, &uids, &n, error_r),
		    EINVAL);
	}
	/* Nothing was made in the root or next to it. */
	assert_false(fx_exists(fx->root, "..", "x"));
	assert_false(fx_exists(fx->root, "", "..x"));
	assert_false(fx_exists(fx->root, "", "..%2Ex"));
	FX_FAILS(store_mailbox_create(st, "INBOX", error_r), EEXIST);
	FX_FAILS(store_mailbox_create(st, "iNbOx", error_r), EEXIST);
	store_close(st);
}

/* ---- create, delete ----------------------------------------------------- */

static void
test_create_delete(void **state)
{
	struct fixture *fx = *state;
	struct store_mailbox mb;
	struct listing l;
	char path[512];

	struct store *st = fx_open(fx);
	FX_OK(store_mailbox_create_special(st, "Flagged", STORE_USE_FLAGGED,
	    error_r));
	FX_FAILS(store_mailbox_create(st, "Flagged", error_r), EEXIST);
	FX_OK(store_mailbox_create(st, "P/C", error_r));
	fx_put(fx_folder(fx, ".P", path, sizeof(path)), "new", "m1", 100);
	fx_load(st, "P", &mb);
	uint32_t old = mb.uidvalidity;
	assert_int_equal(mb.count, 1);
	store_mailbox_free(&mb);

	FX_FAILS(store_mailbox_delete(st, "INBOX", error_r), EPERM);
	FX_FAILS(store_mailbox_delete(st, "inbox", error_r), EPERM);
	FX_FAILS(store_mailbox_delete(st, "Nope", error_r), ENOENT);
	FX_OK(store_mailbox_delete(st, "P", error_r));
	assert_false(fx_exists(fx->root, ".P", ""));
	assert_true(fx_exists(fx->root, ".P.C", "cur"));
	FX_FAILS(store_mailbox_delete(st, "P", error_r), ENOENT);
	FX_FAILS(store_mailbox_load(st, "P", &mb, error_r), ENOENT);
	store_mailbox_free(&mb);
	list(st, &l);
	assert_null(find(&l, "P"));
	assert_non_null(find(&l, "P/C"));
	assert_int_equal(find(&l, "Flagged")->special, STORE_USE_FLAGGED);
	unlist(&l);
	/* Nothing left over in the root from the delete. */
	DIR *d = opendir(fx->root);
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		assert_null(strstr(e->d_name, "deleted"));
	closedir(d);

	/* Made again: a new UIDVALIDITY, no old messages. */
	FX_OK(store_mailbox_create(st, "P", error_r));
	fx_load(st, "P", &mb);
	assert_int_equal(mb.count, 0);
	assert_true(mb.uidvalidity > old);
	assert_int_equal(mb.uidnext, 1);
	store_mailbox_free(&mb);
	store_close(st);
}

/* ---- rename ------------------------------------------------------------- */

static void
test_rename(void **state)
{
	struct fixture *fx = *state;
	struct store_mailbox mb;
	struct listing l;
	char path[512];

	struct store *st = fx_open(fx);
	FX_OK(store_mailbox_create(st, "A/B", error_r));
	FX_OK(store_mailbox_create(st, "A/B/C", error_r));
	FX_OK(store_mailbox_create(st, "AB", error_r));	/* not below A */
	FX_OK(store_subscribe(st, "A/B/C", true, error_r));
	fx_put(fx_folder(fx, ".A.B", path, sizeof(path)), "new", "m1", 100);
	fx_load(st, "A/B", &mb);
	uint32_t v = mb.uidvalidity;
	store_mailbox_free(&mb);

	FX_FAILS(store_mailbox_rename(st, "Nope", "X", error_r), ENOENT);
	FX_FAILS(store_mailbox_rename(st, "A/B", "Sent", error_r), EEXIST);
	FX_FAILS(store_mailbox_rename(st, "A/B", "INBOX", error_r), EEXIST);
	FX_FAILS(store_mailbox_rename(st, "A/B", "A/B/D", error_r), EINVAL);
	FX_FAILS(store_mailbox_rename(st, "A", "AB", error_r), EEXIST);

	FX_OK(store_mailbox_rename(st, "A", "Z/Y", error_r));
	assert_true(fx_exists(fx->root, ".Z.Y", "cur"));
	assert_true(fx_exists(fx->root, ".Z.Y.B", "cur"));
	assert_true(fx_exists(fx->root, ".Z.Y.B.C", "cur"));
	assert_true(fx_exists(fx->root, ".Z", "cur"));	/* a superior */
	assert_false(fx_exists(fx->root, ".A", ""));
	assert_true(fx_exists(fx->root, ".AB", "cur"));
	fx_load(st, "Z/Y/B", &mb);
	assert_int_equal(mb.uidvalidity, v);
	assert_int_equal(mb.count, 1);
	assert_int_equal(mb.msgs[0].uid, 1);
	store_mailbox_free(&mb);
	list(st, &l);
	assert_null(find(&l, "A/B"));
	assert_true(find(&l, "Z/Y/B/C")->subscribed);
	assert_null(find(&l, "A/B/C"));
	unlist(&l);

	/* Up the tree: "Q/B" becomes "Q", and its child "Q/B/B" takes the
	 * name "Q/B" that the first move frees. */
	FX_OK(store_mailbox_rename(st, "Z/Y", "Q", error_r));
	FX_OK(store_mailbox_create(st, "Q/B/B", error_r));
	fx_load(st, "Q/B/B", &mb);
	uint32_t vbb = mb.uidvalidity;
	store_mailbox_free(&mb);
	FX_FAILS(store_mailbox_rename(st, "Q/B", "Q", error_r), EEXIST);
	FX_OK(store_mailbox_delete(st, "Q", error_r));
	FX_OK(store_mailbox_rename(st, "Q/B", "Q", error_r));
	fx_load(st, "Q", &mb);
	assert_int_equal(mb.uidvalidity, v);
	assert_int_equal(mb.count, 1);
	store_mailbox_free(&mb);
	fx_load(st, "Q/B", &mb);
	assert_int_equal(mb.uidvalidity, vbb);
	store_mailbox_free(&mb);
	fx_load(st, "Q/C", &mb);
	store_mailbox_free(&mb);
	assert_false(fx_exists(fx->root, ".Q.B.B", ""));
	assert_false(fx_exists(fx->root, ".Q.B.C", ""));
	store_close(st);
}

static void
test_rename_inbox(void **state)
{
	struct fixture *fx = *state;
	struct store_mailbox mb;
	uint32_t uidvalidity, uid;
	char *tmp;

	struct store *st = fx_open(fx);
	FX_OK(store_mailbox_create(st, "INBOX/Kept", error_r));
	fx_put(fx->root, "new", "i1", 100);
	fx_put(fx->root, "new", "i2", 200);
	fx_load(st, "INBOX", &mb);
	uint32_t inbox_v = mb.uidvalidity;
	store_mailbox_free(&mb);
	FX_OK(store_set_flags(st, "INBOX", 2, STORE_F_SEEN, error_r));
	fx_put(fx->root, "new", "i3", 300);	/* not loaded yet */
	int fd = store_append_begin(st, &tmp, NULL);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "Subject: x\r\n\r\n", 14), 14);
	close(fd);
	const char *kw[] = { "$Label1" };
	FX_OK(store_append_commit(st, "INBOX", tmp, 0, kw, 1, 50000,
	    &uidvalidity, &uid, error_r));
	free(tmp);

	FX_FAILS(store_mailbox_rename(st, "INBOX", "Sent", error_r), EEXIST);
	FX_OK(store_mailbox_rename(st, "inbox", "Old Mail", error_r));
	fx_load(st, "INBOX", &mb);
	assert_int_equal(mb.count, 0);
	assert_int_equal(mb.uidvalidity, inbox_v);
	assert_int_equal(mb.uidnext, 5);
	store_mailbox_free(&mb);
	fx_load(st, "Old Mail", &mb);
	assert_int_equal(mb.count, 4);
	assert_int_equal(mb.msgs[0].uid, 1);
	assert_int_equal(mb.msgs[0].internaldate, 100);
	assert_int_equal(mb.msgs[1].flags, STORE_F_SEEN);
	assert_int_equal(mb.msgs[2].internaldate, 50000);
	assert_string_equal(mb.msgs[2].keywords, "$Label1");
	assert_int_equal(mb.msgs[3].internaldate, 300);
	store_mailbox_free(&mb);
	assert_int_equal(fx_count(fx->root, "cur"), 0);
	assert_true(fx_exists(fx->root, ".INBOX.Kept", "cur"));
	store_close(st);
}

/* ---- status ------------------------------------------------------------- */

static void
test_status(void **state)
{
	struct fixture *fx = *state;
	struct store_status s;
	struct store_mailbox mb;

	struct store *st = fx_open(fx);
	fx_put(fx->root, "new", "s1", 100);
	fx_put(fx->root, "cur", "s2:2,S", 200);
	fx_put(fx->root, "cur", "s3:2,ST", 300);
	FX_OK(store_mailbox_status(st, "INBOX", &s, error_r));
	assert_int_equal(s.messages, 3);
	assert_int_equal(s.unseen, 1);
	assert_int_equal(s.deleted, 1);
	assert_int_equal(s.uidnext, 4);
	assert_true(s.size > 3 * 20);
	fx_load(st, "INBOX", &mb);
	assert_int_equal(s.uidvalidity, mb.uidvalidity);
	assert_true(s.highestmodseq == mb.highestmodseq);
	uint64_t size = 0;
	for (size_t i = 0; i < mb.count; i++)
		size += mb.msgs[i].size;
	assert_true(s.size == size);
	store_mailbox_free(&mb);
	FX_FAILS(store_mailbox_status(st, "Nope", &s, error_r), ENOENT);
	FX_OK(store_mailbox_status(st, "Trash", &s, error_r));
	assert_int_equal(s.messages, 0);
	assert_int_equal(s.uidnext, 1);
	store_close(st);
}

/* Two stores on one user, in two threads: creates and deletes of the
 * same names never leave a folder without a row or the reverse. */
struct race {
	struct fixture *fx;
	int errors;
};

static void *
race_worker(void *arg)
{
	struct race *r = arg;
	char *err = NULL;
	struct store *st = store_open(r->fx->dir, USER, &err);

	if (st == NULL) {
		__atomic_add_fetch(&r->errors, 1, __ATOMIC_RELAXED);
		free(err);
		return NULL;
	}
	for (int i = 0; i < 40; i++) {
		const char *name = i % 2 ? "Race/One" : "Race";
		if (store_mailbox_create(st, name, &err) < 0) {
			if (errno != EEXIST)
				__atomic_add_fetch(&r->errors, 1,
				    __ATOMIC_RELAXED);
			free(err);
			err = NULL;
		}
		if (store_mailbox_delete(st, name, &err) < 0) {
			if (errno != ENOENT)
				__atomic_add_fetch(&r->errors, 1,
				    __ATOMIC_RELAXED);
			free(err);
			err = NULL;
		}
	}
	store_close(st);
	return NULL;
}

static void
test_concurrent_create_delete(void **state)
{
	struct fixture *fx = *state;
	struct race r = { .fx = fx };
	pthread_t t[3];
	struct listing l;

	store_close(fx_open(fx));
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&t[i], NULL, race_worker, &r),
		    0);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(r.errors, 0);
	/* "Race/One" makes "Race" too, so either may be left: the index
	 * must say what the disk says. */
	struct store *st = fx_open(fx);
	list(st, &l);
	assert_int_equal(find(&l, "Race") != NULL,
	    fx_exists(fx->root, ".Race", "cur"));
	assert_int_equal(find(&l, "Race/One") != NULL,
	    fx_exists(fx->root, ".Race.One", "cur"));
	for (size_t i = 0; i < l.n; i++) {
		struct store_mailbox mb;
		if (l.v[i].exists) {
			fx_load(st, l.v[i].name, &mb);
			store_mailbox_free(&mb);
		}
	}
	unlist(&l);
	store_close(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_specials_and_list,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_list_disk_and_children,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_names_on_disk, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_bad_names, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_create_delete, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_rename, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_rename_inbox, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_status, fx_setup,
		    fx_teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_create_delete,
		    fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
