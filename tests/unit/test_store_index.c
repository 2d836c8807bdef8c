/* The store's index over a real Maildir in a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store/maildir.h"
#include "store/store.h"

#define USER "someone@example.test"

struct fixture {
	char dir[64];		/* data_dir */
	char root[256];		/* the user's Maildir++ root */
};

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	if (fx == NULL)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/correo-store-XXXXXX");
	if (mkdtemp(fx->dir) == NULL) {
		free(fx);
		return -1;
	}
	snprintf(fx->root, sizeof(fx->root), "%s/mail/example.test/someone",
	    fx->dir);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	int r = system(cmd);
	free(fx);
	return r == 0 ? 0 : -1;
}

static struct store *
open_store(struct fixture *fx)
{
	char *err = NULL;
	struct store *st = store_open(fx->dir, USER, &err);
	if (st == NULL)
		fail_msg("store_open: %s", err);
	return st;
}

static void
load(struct store *st, const char *mailbox, struct store_mailbox *mb)
{
	char *err = NULL;
	if (store_mailbox_load(st, mailbox, mb, &err) < 0)
		fail_msg("load %s: %s", mailbox, err);
}

/* Writes dir/sub/name with some content and mtime (0: leave it). */
static void
put_file(const char *dir, const char *sub, const char *name, time_t mtime)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "Subject: %s\r\n\r\nbody\r\n", name);
	assert_int_equal(fclose(f), 0);
	if (mtime != 0) {
		struct timespec ts[2] = { { mtime, 0 }, { mtime, 0 } };
		assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
	}
}

static bool
exists(const char *dir, const char *sub, const char *name)
{
	char path[1024];
	struct stat sb;
	snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	return stat(path, &sb) == 0;
}

static int
count_files(const char *dir, const char *sub)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;
	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static const char *
base_of(const char *path, char *out, size_t n)
{
	const char *slash = strrchr(path, '/');
	snprintf(out, n, "%s", slash ? slash + 1 : path);
	char *colon = strchr(out, ':');
	if (colon)
		*colon = '\0';
	return out;
}

static const struct store_msg *
find_uid(const struct store_mailbox *mb, uint32_t uid)
{
	for (size_t i = 0; i < mb->count; i++)
		if (mb->msgs[i].uid == uid)
			return &mb->msgs[i];
	return NULL;
}

/* ---- names -------------------------------------------------------------- */

static void
test_mailbox_names(void **state)
{
	/* "/" separates levels; a "." inside a level is escaped on disk. */
	static const char *const good[] = { "INBOX", "inbox", "InBoX", "Sent",
	    "Archive.2026", "Archive/2026", "Entw\xc3\xbcrfe", "a b", "x:y",
	    "a..b", "trailing.", "100%", "a\\b", "INBOX/child", "a/b/c",
	    "\xe2\x82\xac/\xf0\x9f\x93\xa7" };
	static const char *const bad[] = { "../x", ".x", "a//b", "", "/a",
	    "a/", "/", "a/../b", "a/./b", "a/.hidden", ".", "..", "a\nb",
	    "tab\there", "del\x7f", "c1\xc2\x85", "bad\xc3utf8",
	    "\xed\xa0\x80surrogate", "\xc0\xafoverlong",
	    "\xf8\x88\x80\x80\x80" };
	char longname[300];
	(void)state;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(store_mailbox_name_ok(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(store_mailbox_name_ok(bad[i]));
	assert_false(store_mailbox_name_ok(NULL));
	memset(longname, 'a', 256);
	longname[256] = '\0';
	assert_false(store_mailbox_name_ok(longname));
	/* 255 octets would need a folder ".NAME" of 256. */
	longname[255] = '\0';
	assert_false(store_mailbox_name_ok(longname));
	longname[254] = '\0';
	assert_true(store_mailbox_name_ok(longname));
	/* 255 octets, but escaped the folder name would not fit. */
	memset(longname, '.', 255);
	longname[0] = 'x';
	assert_false(store_mailbox_name_ok(longname));
	longname[84] = '\0';	/* 1 + 1 + 83 * 3 = 251 octets on disk */
	assert_true(store_mailbox_name_ok(longname));
}

/* ---- loading ------------------------------------------------------------ */

static void
test_new_mailbox(void **state)
{
	struct fixture *fx = *state;
	struct store_mailbox mb;
	char path[512];
	struct stat sb;
	time_t before = time(NULL);

	struct store *st = open_store(fx);
	load(st, "INBOX", &mb);
	assert_int_equal(mb.count, 0);
	assert_int_equal(mb.uidnext, 1);
	assert_true(mb.uidvalidity >= (uint32_t)before);
	assert_true(mb.uidvalidity <= (uint32_t)time(NULL) + 1);
	assert_true(mb.highestmodseq >= 1);
	store_mailbox_free(&mb);
	snprintf(path, sizeof(path), "%s/index.db", fx->root);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_true(exists(fx->root, "cur", ""));
	assert_true(exists(fx->root, "tmp", ""));
	store_close(st);
}

static void
test_load_assigns_uids(void **state)
{
	struct fixture *fx = *state;
	struct store_mailbox mb, again;
	char b[256], src[512], name[256];
	/* Names in the opposite order of their mtimes. */
	static const char *const names[] = { "e.1", "d.1", "c.1", "b.1",
	    "a.1" };

	struct store *st = open_store(fx);
	for (int i = 0; i < 5; i++)
		put_file(fx->root, "new", names[i], 1000000 + i);
	load(st, "INBOX", &mb);
	assert_int_equal(mb.count, 5);
	assert_int_equal(mb.uidnext, 6);
	for (uint32_t i = 0; i < 5; i++) {
		assert_int_equal(mb.msgs[i].uid, i + 1);
		assert_string_equal(base_of(mb.msgs[i].path, b, sizeof(b)),
		    names[i]);
		assert_int_equal(mb.msgs[i].internaldate, 1000000 + i);
		assert_int_equal(mb.msgs[i].flags, 0);
		assert_int_equal(access(mb.msgs[i].path, R_OK), 0);
		assert_non_null(strstr(mb.msgs[i].path, "/cur/"));
		snprintf(name, sizeof(name), "%s:2,", names[i]);
		assert_true(exists(fx->root, "cur", name));
	}
	assert_int_equal(mb.msgs[0].size,
	    strlen("Subject: e.1\r\n\r\nbody\r\n"));
	assert_int_equal(count_files(fx->root, "new"), 0);

	/* Nothing new: the same UIDs, no new MODSEQ. */
	load(st, "INBOX", &again);
	assert_int_equal(again.count, 5);
	assert_int_equal(again.uidnext, 6);
	assert_int_equal(again.uidvalidity, mb.uidvalidity);
	assert_true(again.highestmodseq == mb.highestmodseq);
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(again.msgs[i].uid, mb.msgs[i].uid);
		assert_string_equal(again.msgs[i].path, mb.msgs[i].path);
	}
	store_mailbox_free(&again);

	/* A delivery gets the next UID and its S= size is right. */
	snprintf(src, sizeof(src), "%s/src", fx->dir);
	put_file(fx->dir, "", "src", 0);
	assert_int_equal(maildir_deliver(fx->root, src, 31, name,
	    sizeof(name)), 0);
	load(st, "INBOX", &again);
	assert_int_equal(again.count, 6);
	assert_int_equal(again.msgs[5].uid, 6);
	assert_int_equal(again.uidnext, 7);
	assert_true(again.highestmodseq > mb.highestmodseq);
	assert_int_equal(again.msgs[5].modseq, again.highestmodseq);
	assert_string_equal(base_of(again.msgs[5].path, b, sizeof(b)), name);
	store_mailbox_free(&again);
	store_mailbox_free(&mb);
	store_close(st);
}

static void
test_equal_mtimes_sort_by_name(void **state)
{
	struct fixture *fx = *state;
	struct store_mailbox mb;
	char b[256];

	struct store *st = open_store(fx);
	put_file(fx->root, "new", "y", 5000);
	put_file(fx->root, "new", "x", 5000);
	put_file(fx->root, "cur", "w:2,S", 5000);
	load(st, "INBOX", &mb);
	assert_int_equal(mb.count, 3);
	assert_string_equal(base_of(mb.msgs[0].path, b, sizeof(b)), "w");
	assert_string_equal(base_of(mb.msgs[1].path, b, sizeof(b)), "x");
	assert_string_equal(base_of(mb.msgs[2].path, b, sizeof(b)), "y");
	store_mailbox_free(&mb);
	store_close(st);
}

static void
test_gone_file_uid_not_reused(void **state)
{
	struct fixture *fx = *state;
	struct store_mailbox mb;
	char b[256];

	struct store *st = open_store(fx);
	put_file(fx->root, "new", "one", 100);
	put_file(fx->root, "new", "two", 200);
	load(st, "INBOX", &mb);
	uint64_t modseq = mb.highestmodseq;
	assert_int_equal(unlink(mb.msgs[1].path), 0);
	store_mailbox_free(&mb);

	load(st, "INBOX", &mb);
	assert_int_equal(mb.count, 1);
	assert_int_equal(mb.msgs[0].uid, 1);
	assert_int_equal(mb.uidnext, 3);
	assert_true(mb.highestmodseq > modseq);
	store_mailbox_free(&mb);

	/* Even a file with the old name comes back as a new message. */
	put_file(fx->root, "new", "two", 300);
	load(st, "INBOX", &mb);
	assert_int_equal(mb.count, 2);
	assert_int_equal(mb.msgs[1].uid, 3);
	assert_string_equal(base_of(mb.msgs[1].path, b, sizeof(b)), "two");
	store_mailbox_free(&mb);
	store_close(st);
}

static void
test_flags_from_names(void **state)
{
	struct fixture *fx = *state;
	struct store_mailbox mb;
	char from[512], to[512];

	struct store *st = open_store(fx);
	put_file(fx->root, "cur", "m1:2,FRS", 10);
	put_file(fx->root, "cur", "m2:2,DPT", 20);
	put_file(fx->root, "cur", "m3", 30);
	put_file(fx->root, "new", "m4:2,S", 40);
	load(st, "INBOX", &mb);
	assert_int_equal(mb.count, 4);
	assert_int_equal(mb.msgs[0].flags,
	    STORE_F_FLAGGED | STORE_F_ANSWERED | STORE_F_SEEN);
	assert_int_equal(mb.msgs[1].flags, STORE_F_DRAFT | STORE_F_DELETED);
	assert_int_equal(mb.msgs[2].flags, 0);
	assert_int_equal(mb.msgs[3].flags, STORE_F_SEEN);
	assert_true(exists(fx->root, "cur", "m4:2,S"));
	assert_true(exists(fx->root, "cur", "m3"));
	uint64_t m1mod = mb.msgs[0].modseq, hms = mb.highestmodseq;
	store_mailbox_free(&mb);

	/* Another Maildir reader changes flags by renaming. */
	snprintf(from, sizeof(from), "%s/cur/m1:2,FRS", fx->root);
	snprintf(to, sizeof(to), "%s/cur/m1:2,S", fx->root);
	assert_int_equal(rename(from, to), 0);
	load(st, "INBOX", &mb);
	assert_int_equal(mb.msgs[0].flags, STORE_F_SEEN);
	assert_true(mb.msgs[0].modseq > m1mod);
	assert_true(mb.highestmodseq > hms);
	assert_int_equal(mb.msgs[0].modseq, mb.highestmodseq);
	assert_int_equal(mb.msgs[0].uid, 1);
	store_mailbox_free(&mb);
	store_close(st);
}

static void
test_bad_file_names_skipped(void **state)
{
	struct fixture *fx = *state;
	struct store_mailbox mb;
	char longname[256], path[512];

	struct store *st = open_store(fx);
	put_file(fx->root, "new", "ok", 10);
	put_file(fx->root, "new", "ctl\x01name", 10);
	put_file(fx->root, "new", ".hidden", 10);
	put_file(fx->root, "cur", ":2,S", 10);
	put_file(fx->root, "tmp", "partial", 10);
	/* 253 octets: no room for ":2," in cur/, so it stays in new/. */
	memset(longname, 'n', 253);
	longname[253] = '\0';
	put_file(fx->root, "new", longname, 10);
	snprintf(path, sizeof(path), "%s/new/subdir", fx->root);
	assert_int_equal(mkdir(path, 0700), 0);
	load(st, "INBOX", &mb);
	assert_int_equal(mb.count, 1);
	assert_true(exists(fx->root, "new", "ctl\x01name"));
	assert_true(exists(fx->root, "new", longname));
	assert_true(exists(fx->root, "tmp", "partial"));
	store_mailbox_free(&mb);
	store_close(st);
}

static void
test_new_and_cur_same_base(void **state)
{
	struct fixture *fx = *state;
	struct store_mailbox mb;
	char a[512], b[512];

	struct store *st = open_store(fx);
	/* A crash between link() and unlink() of a move: two links. */
	put_file(fx->root, "cur", "linked:2,S", 10);
	snprintf(a, sizeof(a), "%s/cur/linked:2,S", fx->root);
	snprintf(b, sizeof(b), "%s/new/linked", fx->root);
	assert_int_equal(link(a, b), 0);
	/* A different file that claims a base already in cur/. */
	put_file(fx->root, "cur", "clash:2,", 20);
	put_file(fx->root, "new", "clash", 30);
	load(st, "INBOX", &mb);
	assert_int_equal(mb.count, 3);
	assert_int_equal(count_files(fx->root, "new"), 0);
	assert_int_equal(count_files(fx->root, "cur"), 3);
	assert_true(exists(fx->root, "cur", "clash:2,"));
	store_mailbox_free(&mb);
	store_close(st);
}

/* ---- flags and expunge -------------------------------------------------- */

static void
test_set_flags(void **state)
{
	struct fixture *fx = *state;
	struct store_mailbox mb, after;
	char *err = NULL;

	struct store *st = open_store(fx);
	put_file(fx->root, "new", "f1", 10);
	put_file(fx->root, "cur", "f2:2,Pa", 20);
	load(st, "INBOX", &mb);
	uint64_t m1 = mb.msgs[0].modseq;

	assert_int_equal(store_set_flags(st, "INBOX", 1,
	    STORE_F_SEEN | STORE_F_FLAGGED, &err), 0);
	assert_true(exists(fx->root, "cur", "f1:2,FS"));
	assert_false(exists(fx->root, "cur", "f1:2,"));
	/* The old path is stale; store_msg_open follows the rename. */
	assert_int_equal(access(mb.msgs[0].path, F_OK), -1);
	int fd = store_msg_open(mb.msgs[0].path);
	assert_true(fd >= 0);
	close(fd);

	/* Letters that are not ours stay, all in ASCII order. */
	assert_int_equal(store_set_flags(st, "inbox", 2,
	    STORE_F_DELETED | STORE_F_ANSWERED | STORE_F_DRAFT, &err), 0);
	assert_true(exists(fx->root, "cur", "f2:2,DPRTa"));
	/* letters of other programs: found by reading the folder */
	fd = store_msg_open(mb.msgs[1].path);
	assert_true(fd >= 0);
	close(fd);

	load(st, "INBOX", &after);
	assert_int_equal(after.msgs[0].flags, STORE_F_SEEN | STORE_F_FLAGGED);
	assert_true(after.msgs[0].modseq > m1);
	assert_int_equal(after.msgs[1].modseq, after.highestmodseq);
	assert_true(after.msgs[1].modseq > after.msgs[0].modseq);
	uint64_t hms = after.highestmodseq;
	store_mailbox_free(&after);

	/* The same flags again: no change, no new MODSEQ. */
	assert_int_equal(store_set_flags(st, "INBOX", 1,
	    STORE_F_SEEN | STORE_F_FLAGGED, &err), 0);
	load(st, "INBOX", &after);
	assert_true(after.highestmodseq == hms);
	store_mailbox_free(&after);

	/* Clearing all flags. */
	assert_int_equal(store_set_flags(st, "INBOX", 1, 0, &err), 0);
	assert_true(exists(fx->root, "cur", "f1:2,"));

	assert_int_equal(store_set_flags(st, "INBOX", 99, STORE_F_SEEN,
	    &err), -1);
	assert_non_null(err);
	free(err);
	store_mailbox_free(&mb);
	store_close(st);
}

static void
test_set_flags_after_outside_rename(void **state)
{
	struct fixture *fx = *state;
	struct store_mailbox mb;
	char from[512], to[512];
	char *err = NULL;

	struct store *st = open_store(fx);
	put_file(fx->root, "new", "r1", 10);
	load(st, "INBOX", &mb);
	store_mailbox_free(&mb);
	/* The index still says no flags; the file says seen. */
	snprintf(from, sizeof(from), "%s/cur/r1:2,", fx->root);
	snprintf(to, sizeof(to), "%s/cur/r1:2,S", fx->root);
	assert_int_equal(rename(from, to), 0);
	assert_int_equal(store_set_flags(st, "INBOX", 1, STORE_F_FLAGGED,
	    &err), 0);
	assert_true(exists(fx->root, "cur", "r1:2,F"));
	assert_int_equal(count_files(fx->root, "cur"), 1);
	store_close(st);
}

static void
test_expunge(void **state)
{
	struct fixture *fx = *state;
	struct store_mailbox mb;
	char *err = NULL;
	static const uint32_t uids[] = { 1, 3, 99, 3 };

	struct store *st = open_store(fx);
	put_file(fx->root, "new", "x1", 10);
	put_file(fx->root, "new", "x2", 20);
	put_file(fx->root, "new", "x3", 30);
	load(st, "INBOX", &mb);
	uint64_t hms = mb.highestmodseq;
	store_mailbox_free(&mb);
	/* Flags changed since the load: the file has another name. */
	assert_int_equal(store_set_flags(st, "INBOX", 3, STORE_F_DELETED,
	    &err), 0);

	assert_int_equal(store_expunge(st, "INBOX", uids, 4, &err), 0);
	assert_int_equal(count_files(fx->root, "cur"), 1);
	assert_true(exists(fx->root, "cur", "x2:2,"));
	load(st, "INBOX", &mb);
	assert_int_equal(mb.count, 1);
	assert_int_equal(mb.msgs[0].uid, 2);
	assert_null(find_uid(&mb, 1));
	assert_null(find_uid(&mb, 3));
	assert_non_null(find_uid(&mb, 2));
	assert_true(mb.highestmodseq > hms + 1);
	assert_int_equal(mb.uidnext, 4);
	store_mailbox_free(&mb);

	/* Nothing to do is not an error. */
	assert_int_equal(store_expunge(st, "INBOX", uids, 1, &err), 0);
	assert_int_equal(store_expunge(st, "INBOX", NULL, 0, &err), 0);
	store_close(st);
}

/* ---- mailboxes ---------------------------------------------------------- */

static void
test_folders(void **state)
{
	struct fixture *fx = *state;
	struct store_mailbox inbox, sent, arch;
	char *err = NULL, path[512];

	struct store *st = open_store(fx);
	load(st, "INBOX", &inbox);
	assert_int_equal(store_mailbox_create(st, "Work", &err), 0);
	snprintf(path, sizeof(path), "%s/.Work", fx->root);
	assert_true(exists(path, "cur", ""));
	assert_true(exists(path, "", "maildirfolder"));
	assert_int_equal(store_mailbox_create(st, "Work", &err), -1);
	assert_int_equal(errno, EEXIST);
	free(err);
	err = NULL;
	/* Made with the index. */
	assert_int_equal(store_mailbox_create(st, "Sent", &err), -1);
	assert_int_equal(errno, EEXIST);
	free(err);
	err = NULL;
	assert_int_equal(store_mailbox_create(st, "../x", &err), -1);
	free(err);
	err = NULL;
	assert_int_equal(store_mailbox_create(st, "INBOX", &err), -1);
	free(err);
	err = NULL;

	put_file(path, "new", "sent1", 10);
	load(st, "Work", &sent);
	assert_int_equal(sent.count, 1);
	assert_int_equal(sent.msgs[0].uid, 1);
	assert_true(sent.uidvalidity != inbox.uidvalidity);
	assert_non_null(strstr(sent.msgs[0].path, "/.Work/cur/sent1:2,"));

	/* A Maildir++ folder moved in from elsewhere: "." is a level. */
	snprintf(path, sizeof(path), "%s/.Archive.2026", fx->root);
	assert_int_equal(maildir_create(path), 0);
	put_file(path, "cur", "old:2,S", 10);
	assert_int_equal(store_mailbox_load(st, "Archive.2026", &arch, &err),
	    -1);
	assert_int_equal(errno, ENOENT);
	free(err);
	err = NULL;
	store_mailbox_free(&arch);
	load(st, "Archive/2026", &arch);
	assert_int_equal(arch.count, 1);
	assert_int_equal(arch.msgs[0].flags, STORE_F_SEEN);
	assert_true(arch.uidvalidity != sent.uidvalidity);
	assert_true(arch.uidvalidity != inbox.uidvalidity);

	struct store_mailbox none;
	assert_int_equal(store_mailbox_load(st, "Nope", &none, &err), -1);
	assert_non_null(err);
	free(err);
	err = NULL;
	assert_int_equal(store_mailbox_load(st, "../../x", &none, &err), -1);
	free(err);
	store_mailbox_free(&none);
	store_mailbox_free(&inbox);
	store_mailbox_free(&sent);
	store_mailbox_free(&arch);
	store_close(st);
}

static void
test_index_lost(void **state)
{
	struct fixture *fx = *state;
	struct store_mailbox mb;
	char path[512];

	struct store *st = open_store(fx);
	put_file(fx->root, "new", "k", 10);
	load(st, "INBOX", &mb);
	uint32_t old = mb.uidvalidity;
	store_mailbox_free(&mb);
	store_close(st);
	/* UIDVALIDITY counts seconds: a new index made in the same second
	 * as the old one could not tell them apart. */
	while (time(NULL) == (time_t)old)
		usleep(20000);
	static const char *const files[] = { "index.db", "index.db-wal",
	    "index.db-shm" };
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", fx->root, files[i]);
		unlink(path);
	}
	st = open_store(fx);
	load(st, "INBOX", &mb);
	assert_int_equal(mb.count, 1);
	assert_int_equal(mb.msgs[0].uid, 1);
	assert_true(mb.uidvalidity != old);
	store_mailbox_free(&mb);
	store_close(st);
}

static void
test_bad_address(void **state)
{
	struct fixture *fx = *state;
	char *err = NULL;

	assert_null(store_open(fx->dir, "../evil@example.test", &err));
	assert_non_null(err);
	free(err);
}

/* ---- concurrency -------------------------------------------------------- */

#define CONC_THREADS	2
#define CONC_LOADS	15
#define CONC_FILES	300

struct pair {
	uint32_t uid;
	char base[256];
};

struct conc {
	struct fixture *fx;
	pthread_mutex_t lock;
	struct pair *pairs;
	size_t n, cap;
	uint32_t uidvalidity;
	int errors;
};

static void
conc_record(struct conc *c, const struct store_mailbox *mb)
{
	char b[256];

	pthread_mutex_lock(&c->lock);
	if (c->uidvalidity == 0)
		c->uidvalidity = mb->uidvalidity;
	if (c->uidvalidity != mb->uidvalidity)
		c->errors++;
	for (size_t i = 0; i < mb->count; i++) {
		if (c->n == c->cap) {
			c->cap = c->cap ? c->cap * 2 : 1024;
			c->pairs = realloc(c->pairs,
			    c->cap * sizeof(*c->pairs));
		}
		c->pairs[c->n].uid = mb->msgs[i].uid;
		snprintf(c->pairs[c->n].base, sizeof(c->pairs[c->n].base),
		    "%s", base_of(mb->msgs[i].path, b, sizeof(b)));
		c->n++;
	}
	pthread_mutex_unlock(&c->lock);
}

static void *
conc_loader(void *arg)
{
	struct conc *c = arg;
	char *err = NULL;
	/* Opened here, at the same time as the other thread's. */
	struct store *st = store_open(c->fx->dir, USER, &err);

	if (st == NULL) {
		fprintf(stderr, "open: %s\n", err);
		__atomic_add_fetch(&c->errors, 1, __ATOMIC_RELAXED);
		free(err);
		return NULL;
	}
	for (int i = 0; i < CONC_LOADS; i++) {
		struct store_mailbox mb;
		if (store_mailbox_load(st, "INBOX", &mb, &err) < 0) {
			fprintf(stderr, "load: %s\n", err);
			__atomic_add_fetch(&c->errors, 1, __ATOMIC_RELAXED);
			free(err);
			err = NULL;
			continue;
		}
		conc_record(c, &mb);
		store_mailbox_free(&mb);
	}
	store_close(st);
	return NULL;
}

static void *
conc_deliverer(void *arg)
{
	struct conc *c = arg;
	char name[64];

	for (int i = 0; i < CONC_FILES; i++) {
		snprintf(name, sizeof(name), "late%04d", i);
		put_file(c->fx->root, "new", name, 0);
		if (i % 50 == 0)
			usleep(1000);
	}
	return NULL;
}

static int
pair_by_uid(const void *pa, const void *pb)
{
	const struct pair *a = pa, *b = pb;
	return (a->uid > b->uid) - (a->uid < b->uid);
}

static int
pair_by_base(const void *pa, const void *pb)
{
	const struct pair *a = pa, *b = pb;
	return strcmp(a->base, b->base);
}

static void
test_concurrent_loads(void **state)
{
	struct fixture *fx = *state;
	struct conc c = { .fx = fx };
	pthread_t loaders[CONC_THREADS], deliverer;
	char name[64];

	pthread_mutex_init(&c.lock, NULL);
	assert_int_equal(maildir_create(fx->root), 0);
	for (int i = 0; i < CONC_FILES; i++) {
		snprintf(name, sizeof(name), "early%04d", i);
		put_file(fx->root, "new", name, 1000 + i);
	}
	for (int i = 0; i < CONC_THREADS; i++)
		assert_int_equal(pthread_create(&loaders[i], NULL, conc_loader,
		    &c), 0);
	assert_int_equal(pthread_create(&deliverer, NULL, conc_deliverer,
	    &c), 0);
	for (int i = 0; i < CONC_THREADS; i++)
		pthread_join(loaders[i], NULL);
	pthread_join(deliverer, NULL);
	/* One more load sees every file. */
	conc_loader(&c);
	assert_int_equal(c.errors, 0);

	/* Every UID names one base, every base has one UID. */
	qsort(c.pairs, c.n, sizeof(*c.pairs), pair_by_uid);
	for (size_t i = 1; i < c.n; i++)
		if (c.pairs[i].uid == c.pairs[i - 1].uid)
			assert_string_equal(c.pairs[i].base,
			    c.pairs[i - 1].base);
	qsort(c.pairs, c.n, sizeof(*c.pairs), pair_by_base);
	size_t distinct = 1;
	for (size_t i = 1; i < c.n; i++) {
		if (strcmp(c.pairs[i].base, c.pairs[i - 1].base) == 0)
			assert_int_equal(c.pairs[i].uid, c.pairs[i - 1].uid);
		else
			distinct++;
	}
	assert_int_equal(distinct, 2 * CONC_FILES);
	/* The early files, with distinct mtimes, got UIDs 1..n in order. */
	for (size_t i = 0; i < c.n; i++)
		if (strncmp(c.pairs[i].base, "early", 5) == 0)
			assert_int_equal(c.pairs[i].uid,
			    atoi(c.pairs[i].base + 5) + 1);
	assert_int_equal(count_files(fx->root, "cur"), 2 * CONC_FILES);
	free(c.pairs);
	pthread_mutex_destroy(&c.lock);
}

/* ---- the index mapping (store_vfs.c) ------------------------------------ */

/* Mappings of path in this process: how many, and the first one's start. */
static int
index_mappings(const char *path, unsigned long *start_r)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[1024];
	int n = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		char *nl = strchr(line, '\n');
		if (nl != NULL)
			*nl = '\0';
		size_t ll = strlen(line), pl = strlen(path);
		if (ll < pl || strcmp(line + ll - pl, path) != 0)
			continue;
		if (n++ == 0 && start_r != NULL)
			*start_r = strtoul(line, NULL, 16);
	}
	fclose(f);
	return n;
}

/* Two connections to one index share one mapping, which outlives the
 * other's writes and the file's growth (SQLite's own VFS maps the file
 * once per connection and unmaps it whenever another connection wrote),
 * and it goes with the last connection. */
static void
test_index_mapped_once(void **state)
{
	struct fixture *fx = *state;
	struct store_mailbox mb;
	char path[512], name[64];
	unsigned long start = 0, again = 0;
	struct stat sb;

	snprintf(path, sizeof(path), "%s/index.db", fx->root);
	assert_int_equal(maildir_create(fx->root), 0);
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "first%04d", i);
		put_file(fx->root, "new", name, 1000 + i);
	}
	struct store *a = open_store(fx), *b = open_store(fx);
	load(a, "INBOX", &mb);
	store_mailbox_free(&mb);
	load(b, "INBOX", &mb);
	assert_int_equal(mb.count, 20);
	store_mailbox_free(&mb);
	assert_int_equal(index_mappings(path, &start), 1);
	assert_int_equal(stat(path, &sb), 0);
	off_t small = sb.st_size;

	/* a writes until the file has grown well past what b saw. */
	for (int i = 0; i < 1500; i++) {
		snprintf(name, sizeof(name), "later%04d", i);
		put_file(fx->root, "new", name, 5000 + i);
	}
	load(a, "INBOX", &mb);
	store_mailbox_free(&mb);
	/* Into the file itself, not only the WAL. */
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)",
	    NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(stat(path, &sb), 0);
	assert_true(sb.st_size > 4 * small);

	load(b, "INBOX", &mb);
	assert_int_equal(mb.count, 1520);
	for (uint32_t i = 0; i < mb.count; i++)
		assert_int_equal(mb.msgs[i].uid, i + 1);
	assert_int_equal(mb.msgs[1519].internaldate, 5000 + 1499);
	store_mailbox_free(&mb);
	assert_int_equal(index_mappings(path, &again), 1);
	assert_true(again == start);

	store_close(a);
	assert_int_equal(index_mappings(path, NULL), 1);
	store_close(b);
	assert_int_equal(index_mappings(path, NULL), 0);
}

/* Whether another process could take a write lock on SQLite's SHARED
 * bytes of path (F_GETLK ignores the caller's own locks, hence a child). */
static bool
shared_lock_held(const char *path)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(path, O_RDONLY);
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
		    .l_start = 0x40000000 + 2, .l_len = 510 };
		if (fd < 0 || fcntl(fd, F_GETLK, &fl) < 0)
			_exit(2);
		_exit(fl.l_type == F_UNLCK ? 0 : 1);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 2);
	return WEXITSTATUS(status) == 1;
}

/* Opening a second store on an index must not drop the SHARED lock the
 * first one holds on it: a descriptor of the file opened and closed on the
 * way does that (POSIX locks belong to the process), and then another
 * process can take itself for the index's last user and remove its WAL. */
static void
test_open_keeps_locks(void **state)
{
	struct fixture *fx = *state;
	struct store_mailbox mb;
	char path[512];

	snprintf(path, sizeof(path), "%s/index.db", fx->root);
	struct store *a = open_store(fx);
	load(a, "INBOX", &mb);
	store_mailbox_free(&mb);
	assert_true(shared_lock_held(path));
	struct store *b = open_store(fx);
	assert_true(shared_lock_held(path));
	load(b, "INBOX", &mb);
	store_mailbox_free(&mb);
	store_close(b);
	assert_true(shared_lock_held(path));
	store_close(a);
	assert_false(shared_lock_held(path));
}

/* ---- size --------------------------------------------------------------- */

static double
elapsed(const struct timespec *a)
{
	struct timespec b;
	clock_gettime(CLOCK_MONOTONIC, &b);
	return (double)(b.tv_sec - a->tv_sec) +
	    (double)(b.tv_nsec - a->tv_nsec) / 1e9;
}

static void
test_ten_thousand(void **state)
{
	struct fixture *fx = *state;
	struct store_mailbox mb;
	struct timespec t0;
	char name[64];
	const int n = 10000;

	struct store *st = open_store(fx);
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%d.M%dP1Q%d.host", 1700000000 +
		    i, i, i);
		put_file(fx->root, "new", name, 1700000000 + i);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	load(st, "INBOX", &mb);
	double first = elapsed(&t0);
	assert_int_equal(mb.count, (size_t)n);
	assert_int_equal(mb.msgs[n - 1].uid, (uint32_t)n);
	store_mailbox_free(&mb);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	load(st, "INBOX", &mb);
	double second = elapsed(&t0);
	assert_int_equal(mb.count, (size_t)n);
	store_mailbox_free(&mb);

	put_file(fx->root, "new", "one-more", 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	load(st, "INBOX", &mb);
	double third = elapsed(&t0);
	assert_int_equal(mb.count, (size_t)n + 1);
	store_mailbox_free(&mb);
	print_message("load of %d messages: first (move new/ to cur/, assign "
	    "UIDs) %.3f s, unchanged %.3f s, one new %.3f s\n", n, first,
	    second, third);
	store_close(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mailbox_names),
		cmocka_unit_test_setup_teardown(test_bad_address, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_new_mailbox, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_load_assigns_uids, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_equal_mtimes_sort_by_name,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_gone_file_uid_not_reused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_flags_from_names, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_file_names_skipped,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_and_cur_same_base,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_flags, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_set_flags_after_outside_rename, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expunge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_folders, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_lost, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_loads, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_open_keeps_locks, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_index_mapped_once, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_ten_thousand, setup,
		    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
