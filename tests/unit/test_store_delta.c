/* Reading only what changed (store_mailbox_changes, store_delta.c): the
 * changes a store makes are read from the index alone; a change made
 * behind the index (a Maildir reader, a delivery) or a due rescan makes
 * it answer "load instead"; and the header search cache (SEARCH FROM,
 * SUBJECT...) is kept for every message indexed. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

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

/* store_mailbox_changes, failing the test on error: 1 or 0. */
static int
changes(struct store *st, uint32_t uidvalidity, uint64_t since,
    struct store_changes *ch)
{
	char *err = NULL;
	int r = store_mailbox_changes(st, "INBOX", uidvalidity, since, ch,
	    &err);
	if (r < 0)
		fail_msg("store_mailbox_changes: %s", err);
	return r;
}

/* Three messages, loaded once (the full scan records the stamps). */
static void
three(struct fixture *fx, struct store *st, struct store_mailbox *mb)
{
	fx_put(fx->root, "new", "1.a", 1000);
	fx_put(fx->root, "new", "2.b", 1001);
	fx_put(fx->root, "new", "3.c", 1002);
	fx_load(st, "INBOX", mb);
	assert_int_equal(mb->count, 3);
}

static void
test_changes_of_a_store(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx_open(fx), *other = fx_open(fx);
	struct store_mailbox mb;
	struct store_changes ch;

	three(fx, st, &mb);
	uint64_t since = mb.highestmodseq;
	/* Nothing changed: nothing to read, and no scan. */
	assert_int_equal(changes(st, mb.uidvalidity, since, &ch), 1);
	assert_int_equal(ch.count, 0);
	assert_int_equal(ch.nvanished, 0);
	assert_int_equal(ch.highestmodseq, since);
	store_changes_free(&ch);

	/* Another store sets flags on 2 and expunges 3. */
	FX_OK(store_set_flags(other, "INBOX", 2, STORE_F_SEEN |
	    STORE_F_FLAGGED, error_r));
	uint32_t gone = 3;
	FX_OK(store_expunge(other, "INBOX", &gone, 1, error_r));
	assert_int_equal(changes(st, mb.uidvalidity, since, &ch), 1);
	assert_int_equal(ch.count, 1);
	assert_int_equal(ch.msgs[0].uid, 2);
	assert_int_equal(ch.msgs[0].flags, STORE_F_SEEN | STORE_F_FLAGGED);
	assert_true(ch.msgs[0].modseq > since);
	/* the path is the file's new name */
	struct stat sb;
	assert_int_equal(stat(ch.msgs[0].path, &sb), 0);
	assert_int_equal(ch.nvanished, 1);
	assert_int_equal(ch.vanished[0], 3);
	assert_true(ch.highestmodseq > since);
	since = ch.highestmodseq;
	store_changes_free(&ch);

	/* An APPEND through a store is news too. */
	static const char text[] = "Subject: appended\r\n\r\nhi\r\n";
	char *tmp = NULL, *err = NULL;
	uint32_t uv, uid;
	int fd = store_append_begin(other, &tmp, &err);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1),
	    (ssize_t)sizeof(text) - 1);
	assert_int_equal(close(fd), 0);
	FX_OK(store_append_commit(other, "INBOX", tmp, STORE_F_DRAFT, NULL,
	    0, 0, &uv, &uid, error_r));
	free(tmp);
	assert_int_equal(changes(st, mb.uidvalidity, since, &ch), 1);
	assert_int_equal(ch.count, 1);
	assert_int_equal(ch.msgs[0].uid, uid);
	assert_int_equal(ch.msgs[0].flags, STORE_F_DRAFT);
	assert_int_equal(ch.nvanished, 0);
	assert_true(ch.uidnext > uid);
	since = ch.highestmodseq;
	store_changes_free(&ch);

	/* The rows agree with a full load. */
	struct store_mailbox full;
	fx_load(other, "INBOX", &full);
	assert_int_equal(full.count, 3);
	assert_int_equal(full.highestmodseq, since);
	store_mailbox_free(&full);
	store_mailbox_free(&mb);
	store_close(st);
	store_close(other);
}

static void
test_change_behind_the_index(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx_open(fx);
	struct store_mailbox mb;
	struct store_changes ch;
	char from[1024], to[1024];

	three(fx, st, &mb);
	assert_int_equal(changes(st, mb.uidvalidity, mb.highestmodseq, &ch),
	    1);
	store_changes_free(&ch);
	/* A Maildir reader marks 1 seen: the index cannot tell. */
	snprintf(from, sizeof(from), "%s", mb.msgs[0].path);
	snprintf(to, sizeof(to), "%s/cur/1.a:2,S", fx->root);
	assert_int_equal(rename(from, to), 0);
	assert_int_equal(changes(st, mb.uidvalidity, mb.highestmodseq, &ch),
	    0);
	/* A full load sees it and records the stamps again. */
	struct store_mailbox again;
	fx_load(st, "INBOX", &again);
	assert_int_equal(fx_uid(&again, 1)->flags, STORE_F_SEEN);
	assert_int_equal(changes(st, mb.uidvalidity, again.highestmodseq,
	    &ch), 1);
	assert_int_equal(ch.count, 0);
	store_changes_free(&ch);

	/* A delivery into new/ is behind the index too. */
	fx_put(fx->root, "new", "4.d", 1003);
	assert_int_equal(changes(st, mb.uidvalidity, again.highestmodseq,
	    &ch), 0);
	store_mailbox_free(&again);

	/* So is a store writing while the stamps did not match: a change
	 * behind the index, then a STORE by a store, must not hide it. */
	fx_load(st, "INBOX", &again);
	assert_int_equal(again.count, 4);
	snprintf(from, sizeof(from), "%s", fx_uid(&again, 2)->path);
	snprintf(to, sizeof(to), "%s/cur/2.b:2,F", fx->root);
	assert_int_equal(rename(from, to), 0);
	FX_OK(store_set_flags(st, "INBOX", 3, STORE_F_SEEN, error_r));
	assert_int_equal(changes(st, again.uidvalidity, again.highestmodseq,
	    &ch), 0);
	store_mailbox_free(&again);

	/* Another UIDVALIDITY than the caller's: load. */
	fx_load(st, "INBOX", &again);
	assert_int_equal(changes(st, again.uidvalidity + 1,
	    again.highestmodseq, &ch), 0);
	store_mailbox_free(&again);
	store_mailbox_free(&mb);
	store_close(st);
}

/* Runs sql on the fixture's index; the count of rows the first column
 * of a SELECT gives, or 0. */
static long long
index_sql(struct fixture *fx, const char *sql)
{
	char path[512];
	sqlite3 *db;
	sqlite3_stmt *s;
	long long v = 0;

	snprintf(path, sizeof(path), "%s/index.db", fx->root);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

/* Sets the time of the last full scan in the index. */
static void
set_scanned(struct fixture *fx, long long when)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "UPDATE mailboxes SET scanned = %lld",
	    when);
	index_sql(fx, sql);
}

static void
test_rescan_due(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx_open(fx);
	struct store_mailbox mb, again;
	struct store_changes ch;

	three(fx, st, &mb);
	set_scanned(fx, (long long)time(NULL) - STORE_RESCAN_SECS);
	assert_int_equal(changes(st, mb.uidvalidity, mb.highestmodseq, &ch),
	    0);
	/* A full load, and the clock starts again. */
	fx_load(st, "INBOX", &again);
	assert_int_equal(changes(st, mb.uidvalidity, mb.highestmodseq, &ch),
	    1);
	store_changes_free(&ch);
	/* A time in the future (a clock set back) does not hold either. */
	set_scanned(fx, (long long)time(NULL) + 3600);
	assert_int_equal(changes(st, mb.uidvalidity, mb.highestmodseq, &ch),
	    0);
	store_mailbox_free(&again);
	store_mailbox_free(&mb);
	store_close(st);
}

/* What store_delta.c records as the stamps of a folder (its format). */
static void
folder_stamp(const char *dir, char *out, size_t n)
{
	char path[600];
	struct stat c, w;

	snprintf(path, sizeof(path), "%s/cur", dir);
	assert_int_equal(stat(path, &c), 0);
	snprintf(path, sizeof(path), "%s/new", dir);
	assert_int_equal(stat(path, &w), 0);
	snprintf(out, n, "%jx.%jx.%jx.%lx.%jx.%lx/%jx.%jx.%jx.%lx.%jx.%lx",
	    (uintmax_t)c.st_dev, (uintmax_t)c.st_ino,
	    (uintmax_t)c.st_mtim.tv_sec, (unsigned long)c.st_mtim.tv_nsec,
	    (uintmax_t)c.st_ctim.tv_sec, (unsigned long)c.st_ctim.tv_nsec,
	    (uintmax_t)w.st_dev, (uintmax_t)w.st_ino,
	    (uintmax_t)w.st_mtim.tv_sec, (unsigned long)w.st_mtim.tv_nsec,
	    (uintmax_t)w.st_ctim.tv_sec, (unsigned long)w.st_ctim.tv_nsec);
}

struct writer {
	struct fixture *fx;
	sqlite3 *db;
};

/* The end of another store's write transaction: its stamps recorded,
 * then COMMIT, a moment after the reader looked. */
static void *
writer_commit(void *arg)
{
	struct writer *w = arg;
	char stamp[256], sql[512];

	usleep(300000);
	folder_stamp(w->fx->root, stamp, sizeof(stamp));
	snprintf(sql, sizeof(sql), "UPDATE mailboxes SET dirstamp = '%s'; "
	    "COMMIT", stamp);
	if (sqlite3_exec(w->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		abort();
	return NULL;
}

/* A reader that finds the folder changed while another store is between
 * its change and its commit waits for that commit (the write lock)
 * instead of taking it for a change behind the index and scanning. */
static void
test_change_in_flight(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx_open(fx);
	struct store_mailbox mb;
	struct store_changes ch;
	struct writer w = { .fx = fx };
	char path[512], from[700], to[700];
	pthread_t t;

	three(fx, st, &mb);
	snprintf(path, sizeof(path), "%s/index.db", fx->root);
	assert_int_equal(sqlite3_open(path, &w.db), SQLITE_OK);
	sqlite3_busy_timeout(w.db, 5000);
	assert_int_equal(sqlite3_exec(w.db, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL), SQLITE_OK);
	/* The change: message 1 gets \Seen under the lock. */
	const char *base = strrchr(mb.msgs[0].path, '/') + 1;
	snprintf(from, sizeof(from), "%s/cur/%s", fx->root, base);
	snprintf(to, sizeof(to), "%s/cur/%.*s:2,S", fx->root,
	    (int)strcspn(base, ":"), base);
	assert_int_equal(rename(from, to), 0);
	assert_int_equal(pthread_create(&t, NULL, writer_commit, &w), 0);
	assert_int_equal(changes(st, mb.uidvalidity, mb.highestmodseq, &ch),
	    1);
	store_changes_free(&ch);
	assert_int_equal(pthread_join(t, NULL), 0);
	sqlite3_close(w.db);
	/* Without a commit to wait for, a difference is a change behind
	 * the index. */
	assert_int_equal(rename(to, from), 0);
	assert_int_equal(changes(st, mb.uidvalidity, mb.highestmodseq, &ch),
	    0);
	store_mailbox_free(&mb);
	store_close(st);
}

/* A quiet mailbox: the rescan is due, but the store's load snapshot
 * proves nothing changed, so the changes are still read from the index;
 * a delivery behind the index still makes it load. */
static void
test_quiet_mailbox(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx_open(fx), *other = fx_open(fx);
	struct store_mailbox mb, again;
	struct store_changes ch;

	three(fx, st, &mb);
	fx_wait_settled(fx->root);
	fx_load(st, "INBOX", &again);	/* keeps a snapshot */
	set_scanned(fx, (long long)time(NULL) - STORE_RESCAN_SECS);
	assert_int_equal(changes(st, mb.uidvalidity, mb.highestmodseq, &ch),
	    1);
	assert_int_equal(ch.count, 0);
	store_changes_free(&ch);
	/* Another store has no snapshot: it must scan. */
	assert_int_equal(changes(other, mb.uidvalidity, mb.highestmodseq,
	    &ch), 0);
	fx_put(fx->root, "new", "4.d", 1003);
	assert_int_equal(changes(st, mb.uidvalidity, mb.highestmodseq, &ch),
	    0);
	store_mailbox_free(&again);
	store_mailbox_free(&mb);
	store_close(other);
	store_close(st);
}

/* The header search cache answers as the file does. */
static void
test_header_cache_matches_file(void **state)
{
	static const char msg[] =
	    "From: =?utf-8?q?J=C3=BCrgen?= <jurgen@example.test>\r\n"
	    "To: a@example.test,\r\n b@example.test\r\n"
	    "To: second@example.test\r\n"
	    "Cc: \r\n"
	    "Subject: =?iso-8859-1?q?Gr=FC=DFe?= and Topic 7\r\n"
	    "X-Other: hidden\r\n"
	    "\r\nbody text\r\n";
	static const struct {
		const char *field, *needle;
	} cases[] = {
		{ "From", "jürgen" }, { "FROM", "JÜRGEN" }, { "from", "@example" },
		{ "From", "nobody" }, { "To", "b@example" },
		{ "To", "second@" }, { "To", "a@example.test, b" },
		{ "Cc", "" }, { "Cc", "x" }, { "Bcc", "" }, { "Bcc", "a" },
		{ "Subject", "grüße" }, { "Subject", "topic 7" },
		{ "Subject", "topic 8" }, { "Subject", "" },
	};
	char path[128];
	struct fixture *fx = *state;

	(void)fx;
	mime_init();
	snprintf(path, sizeof(path), "%s/hdr.eml", fx->dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(msg, f);
	assert_int_equal(fclose(f), 0);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	struct mime_summary sum;
	char *err = NULL;
	assert_int_equal(mime_summarize(fd, &sum, &err), 0);
	assert_non_null(sum.hdrcache);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool match = false;
		assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
		assert_int_equal(mime_search_header(fd, cases[i].field,
		    cases[i].needle, strlen(cases[i].needle), &match, &err), 0);
		int c = mime_hdrcache_match(sum.hdrcache, sum.hdrcache_len,
		    cases[i].field, cases[i].needle, strlen(cases[i].needle));
		if (c != (match ? 1 : 0))
			fail_msg("%s \"%s\": cache %d, file %d", cases[i].field,
			    cases[i].needle, c, match);
	}
	/* A field the cache does not keep, a damaged or foreign cache:
	 * it cannot tell. */
	assert_int_equal(mime_hdrcache_match(sum.hdrcache, sum.hdrcache_len,
	    "X-Other", "hidden", 6), -1);
	assert_int_equal(mime_hdrcache_match(sum.hdrcache,
	    sum.hdrcache_len - 1, "Subject", "zzz", 3), -1);
	char other[4] = { 99, 0, 0, 0 };
	assert_int_equal(mime_hdrcache_match(other, sizeof(other), "Subject",
	    "x", 1), -1);
	mime_summary_free(&sum);
	close(fd);

	/* Values past MIME_HDRCACHE_MAX: no cache. */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("Subject: ", f);
	for (int i = 0; i < MIME_HDRCACHE_MAX; i++)
		fputc('x', f);
	fputs("\r\n\r\nbody\r\n", f);
	assert_int_equal(fclose(f), 0);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(mime_summarize(fd, &sum, &err), 0);
	assert_null(sum.hdrcache);
	mime_summary_free(&sum);
	close(fd);
}

/* The INBOX header caches from UID 1, failing the test when it cannot. */
static struct store_hdrs *
hdrs_open(struct store *st, uint32_t uidvalidity)
{
	char *err = NULL;
	struct store_hdrs *h = store_hdrs_open(st, "INBOX", uidvalidity, 1,
	    &err);
	if (h == NULL)
		fail_msg("store_hdrs_open: %s", err);
	return h;
}

/* uid has a cache whose Subject contains subject. */
static void
cached_subject(struct store_hdrs *h, uint32_t uid, const char *subject)
{
	const void *cache;
	size_t len;

	assert_int_equal(store_hdrs_get(h, uid, &cache, &len), 1);
	assert_int_equal(mime_hdrcache_match(cache, len, "Subject", subject,
	    strlen(subject)), 1);
}

/* Every message indexed by a load has its cache, read in UID order. */
static void
test_header_cache_in_index(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx_open(fx);
	struct store_mailbox mb;
	const void *cache;
	size_t len;

	three(fx, st, &mb);
	struct store_hdrs *h = hdrs_open(st, mb.uidvalidity);
	cached_subject(h, 1, "1.A");
	assert_int_equal(store_hdrs_get(h, 3, &cache, &len), 1);
	assert_int_equal(mime_hdrcache_match(cache, len, "Subject", "1.a",
	    3), 0);
	assert_int_equal(mime_hdrcache_match(cache, len, "Subject", "3.c",
	    3), 1);
	assert_int_equal(store_hdrs_get(h, 4, &cache, &len), 0);
	store_hdrs_close(h);
	store_mailbox_free(&mb);
	store_close(st);
}

/* More messages than one batch of rows, with the store used between
 * reads (SEARCH computes summaries as it goes); a stale UIDVALIDITY is
 * refused. */
static void
test_header_cache_batches(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx_open(fx);
	struct store_mailbox mb;
	struct mime_summary sum;
	const void *cache;
	size_t len;
	char *err = NULL, name[32];

	for (int i = 0; i < 600; i++) {
		snprintf(name, sizeof(name), "%04d.m", i);
		fx_put(fx->root, "new", name, 1000 + i);
	}
	fx_load(st, "INBOX", &mb);
	assert_int_equal(mb.count, 600);
	struct store_hdrs *h = store_hdrs_open(st, "INBOX",
	    mb.uidvalidity + 1, 1, &err);
	assert_null(h);
	assert_int_equal(errno, ESTALE);
	free(err);
	err = NULL;
	h = hdrs_open(st, mb.uidvalidity);
	for (size_t i = 0; i < mb.count; i += 1 + i % 3) {
		char subject[8];
		snprintf(subject, sizeof(subject), "%.6s",
		    strrchr(mb.msgs[i].path, '/') + 1);
		cached_subject(h, mb.msgs[i].uid, subject);
		assert_int_equal(store_msg_summary(st, "INBOX",
		    mb.msgs[i].uid, &sum, &err), 0);
		mime_summary_free(&sum);
	}
	assert_int_equal(store_hdrs_get(h, mb.uidnext, &cache, &len), 0);
	store_hdrs_close(h);
	store_mailbox_free(&mb);
	store_close(st);
}

/* Rows of an index made before the cache (schema version 2) get one
 * made from their files, kept in the index when the reader closes. */
static void
test_header_cache_backfill(void **state)
{
	struct fixture *fx = *state;
	struct store *st = fx_open(fx);
	struct store_mailbox mb;

	three(fx, st, &mb);
	index_sql(fx, "UPDATE messages SET hdrsearch = NULL");
	assert_int_equal(index_sql(fx, "SELECT count(*) FROM messages "
	    "WHERE hdrsearch IS NULL"), 3);
	struct store_hdrs *h = hdrs_open(st, mb.uidvalidity);
	cached_subject(h, 2, "2.B");
	cached_subject(h, 3, "3.c");
	store_hdrs_close(h);
	assert_int_equal(index_sql(fx, "SELECT count(*) FROM messages "
	    "WHERE hdrsearch IS NULL"), 1);
	assert_int_equal(index_sql(fx, "SELECT count(*) FROM messages "
	    "WHERE hdrsearch IS NULL AND uid = 1"), 1);
	store_mailbox_free(&mb);
	store_close(st);
}

/* A path rebuilt from the index keeps the letters another Maildir
 * reader gave the file (as the store's rename does), and only those. */
static void
test_path_keep_letters(void **state)
{
	(void)state;
	char *p = store_path_keep_letters("/m/cur/1.x:2,S", "/m/cur/1.x:2,ab");
	assert_string_equal(p, "/m/cur/1.x:2,Sab");
	free(p);
	p = store_path_keep_letters("/m/cur/1.x:2,", "/m/cur/1.x:2,FPa");
	assert_string_equal(p, "/m/cur/1.x:2,Pa");
	free(p);
	/* Nothing to keep, another message, another folder. */
	assert_null(store_path_keep_letters("/m/cur/1.x:2,S",
	    "/m/cur/1.x:2,FR"));
	assert_null(store_path_keep_letters("/m/cur/1.x:2,S",
	    "/m/cur/1.x"));
	assert_null(store_path_keep_letters("/m/cur/1.x:2,S",
	    "/m/cur/1.xy:2,a"));
	assert_null(store_path_keep_letters("/m/cur/1.x:2,S",
	    "/n/cur/1.x:2,a"));
	assert_null(store_path_keep_letters("/m/cur/1.x:2,Sa",
	    "/m/cur/1.x:2,a"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_changes_of_a_store,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_change_behind_the_index,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_rescan_due, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_change_in_flight, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_quiet_mailbox, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_header_cache_matches_file,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_header_cache_in_index,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_header_cache_batches,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_header_cache_backfill,
		    setup, teardown),
		cmocka_unit_test(test_path_keep_letters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
