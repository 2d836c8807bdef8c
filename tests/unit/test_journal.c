/* queue/journal: the record format, replay after a crash, and the writer
 * and checkpoint threads on a real event loop and file system. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <linux/aio_abi.h>

#include "core/fs.h"
#include "queue/deliver.h"
#include "queue/journal.h"
#include "queue/journal_record.h"
#include "store/maildir.h"

static char root[64];

static int
setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/correo-journal-XXXXXX");
	return mkdtemp(root) ? 0 : -1;
}

static int
teardown(void **state)
{
	char cmd[PATH_MAX + 16];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	return system(cmd) == 0 ? 0 : -1;
}

/* Appends one sealed record to buf at *len. */
static void
put_record(unsigned char *buf, size_t *len, uint64_t gen,
    struct journal_target *t, size_t nt, const char *content)
{
	size_t clen = strlen(content);
	size_t rsz = journal_rec_size(t, nt, clen);
	assert_true(rsz >= JOURNAL_HDR_SIZE + clen);
	assert_int_equal(rsz % 8, 0);
	size_t off = journal_rec_begin(buf + *len, gen, t, nt, clen);
	memcpy(buf + *len + off, content, clen);
	journal_rec_seal(buf + *len);
	*len += rsz;
}

static void
test_record_roundtrip(void **state)
{
	static unsigned char buf[8192];
	struct journal_target t[2] = {
		{ (char *)"/d/mail/a", (char *)"1.M1P1Q1.h,S=5" },
		{ (char *)"/d/mail/b", (char *)"1.M1P1Q2.h,S=5" },
	};
	struct journal_rec r;
	size_t len = 0, first;
	uint64_t gen = 0;
	(void)state;

	memset(buf, 0xee, sizeof(buf));
	put_record(buf, &len, 77, t, 2, "hello");
	first = len;
	put_record(buf, &len, 77, t + 1, 1, "second message\r\n");
	/* The last record of a batch pads it to a block. */
	size_t last = first, pad = 4096 - len % 4096;
	journal_rec_extend(buf + last, len - last + pad);
	journal_rec_seal(buf + last);
	len += pad;

	size_t n = journal_rec_next(buf, len, &gen, &r);
	assert_int_equal(n, first);
	assert_int_equal(gen, 77);
	assert_int_equal(r.ntargets, 2);
	assert_string_equal(r.targets[0].path, "/d/mail/a");
	assert_string_equal(r.targets[1].name, "1.M1P1Q2.h,S=5");
	assert_int_equal(r.content_len, 5);
	assert_memory_equal(r.content, "hello", 5);
	journal_rec_free(&r);
	n = journal_rec_next(buf + first, len - first, &gen, &r);
	assert_int_equal(n, len - first);
	assert_memory_equal(r.content, "second message\r\n", 16);
	journal_rec_free(&r);
	/* Zeros after the batch end the segment. */
	memset(buf + len, 0, 64);
	assert_int_equal(journal_rec_next(buf + len, 64, &gen, &r), 0);
	assert_null(r.targets);
}

static void
test_record_damage(void **state)
{
	static unsigned char buf[4096], copy[4096];
	struct journal_target t = { (char *)"/m", (char *)"name" };
	struct journal_target bad = { (char *)"/m", (char *)"../x" };
	struct journal_rec r;
	size_t len = 0, first;
	uint64_t gen;
	(void)state;

	put_record(buf, &len, 5, &t, 1, "one");
	first = len;
	put_record(buf, &len, 5, &t, 1, "two two");
	memcpy(copy, buf, len);

	/* A torn write: one octet of the second record's message. */
	buf[len - 3] ^= 1;
	gen = 0;
	assert_int_equal(journal_rec_next(buf, len, &gen, &r), first);
	journal_rec_free(&r);
	assert_int_equal(journal_rec_next(buf + first, len - first, &gen, &r),
	    0);
	/* Cut short. */
	memcpy(buf, copy, len);
	assert_int_equal(journal_rec_next(buf + first, len - first - 8, &gen,
	    &r), 0);
	/* Another generation (an older use of the segment) ends it. */
	gen = 6;
	assert_int_equal(journal_rec_next(buf, len, &gen, &r), 0);
	/* A name that would leave new/ is refused even with a good hash. */
	len = 0;
	put_record(buf, &len, 5, &bad, 1, "x");
	gen = 0;
	assert_int_equal(journal_rec_next(buf, len, &gen, &r), 0);
	/* Too long a name for the format. */
	static char longname[70000];
	memset(longname, 'n', sizeof(longname) - 1);
	struct journal_target big = { (char *)"/m", longname };
	assert_int_equal(journal_rec_size(&big, 1, 1), 0);
}

static void
write_file(const char *path, const char *content)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(fs_write_all(fd, content, strlen(content)), 0);
	close(fd);
}

static void
assert_file(const char *path, const char *content)
{
	char got[4096];
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	ssize_t n = read(fd, got, sizeof(got));
	close(fd);
	assert_int_equal(n, (ssize_t)strlen(content));
	assert_memory_equal(got, content, (size_t)n);
}

static unsigned count_files(const char *dir);

static void
test_replay(void **state)
{
	static unsigned char buf[16384];
	char md[PATH_MAX], other[PATH_MAX], jdir[PATH_MAX], p[PATH_MAX + 64];
	const char *content[6] = { "message zero\r\n", "message one\r\n",
	    "message two\r\n", "message three\r\n", "message four\r\n",
	    "message five\r\n" };
	const char *name[6] = { "m0", "m1", "m2", "m3", "m4", "m5" };
	char evil[PATH_MAX];
	struct journal_replay_stats st;
	size_t len = 0;
	(void)state;

	snprintf(md, sizeof(md), "%s/r/mail/x/alice", root);
	snprintf(other, sizeof(other), "%s/r/mail/x/gone", root);
	snprintf(jdir, sizeof(jdir), "%s/r/queue/journal", root);
	/* Not under data_dir/mail: never written, kept aside instead. */
	snprintf(evil, sizeof(evil), "%s/r/mail/../evil", root);
	assert_int_equal(maildir_create(md), 0);
	assert_int_equal(fs_mkdir_p(jdir, 0700), 0);
	for (int i = 0; i < 6; i++) {
		struct journal_target t[2] = { { i == 4 ? evil : md,
		    (char *)name[i] }, { other, (char *)name[i] } };
		put_record(buf, &len, 9, t, i == 0 ? 2 : 1, content[i]);
	}
	snprintf(p, sizeof(p), "%s/0", jdir);
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_int_equal(fs_write_all(fd, buf, len), 0);
	close(fd);
	/* Segment 1: noise, as after a crash in its first write. */
	for (size_t i = 0; i < 4096; i++)
		buf[i] = (unsigned char)(i * 131 + 7);
	memcpy(buf, "CRJ1", 4);
	snprintf(p, sizeof(p), "%s/1", jdir);
	fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_int_equal(fs_write_all(fd, buf, 4096), 0);
	close(fd);

	/* m0 lost, m1 empty (its data never reached the disk), m2 whole,
	 * m3 seen by a client already (in cur/ with flags). */
	snprintf(p, sizeof(p), "%s/new/m1", md);
	write_file(p, "");
	snprintf(p, sizeof(p), "%s/new/m2", md);
	write_file(p, content[2]);
	snprintf(p, sizeof(p), "%s/cur/m3:2,S", md);
	write_file(p, content[3]);
	/* m2 cut short is written again; a file named m5 that is another
	 * message is left alone, m5 gets a name of its own. */
	snprintf(p, sizeof(p), "%s/new/m2", md);
	write_file(p, "message t");
	snprintf(p, sizeof(p), "%s/new/m5", md);
	write_file(p, "somebody else\r\n");

	char data[PATH_MAX];
	snprintf(data, sizeof(data), "%s/r", root);
	assert_int_equal(journal_replay(data, &st), 0);
	assert_int_equal(st.segments, 1);
	assert_int_equal(st.records, 6);
	assert_int_equal(st.restored, 5);	/* m0 twice, m1, m2, m5 */
	assert_int_equal(st.saved, 1);		/* m4 */
	assert_int_equal(st.failed, 0);
	snprintf(p, sizeof(p), "%s/r/queue/journal-failed/m4", root);
	assert_file(p, content[4]);
	snprintf(p, sizeof(p), "%s/r/evil", root);
	assert_int_equal(access(p, F_OK), -1);
	snprintf(p, sizeof(p), "%s/new/m5", md);
	assert_file(p, "somebody else\r\n");
	snprintf(p, sizeof(p), "%s/new", md);
	assert_int_equal(count_files(p), 5);	/* m0 m1 m2 m5, m5 again */
	snprintf(p, sizeof(p), "%s/new/m0", md);
	assert_file(p, content[0]);
	snprintf(p, sizeof(p), "%s/new/m0", other);
	assert_file(p, content[0]);
	snprintf(p, sizeof(p), "%s/new/m1", md);
	assert_file(p, content[1]);
	snprintf(p, sizeof(p), "%s/new/m2", md);
	assert_file(p, content[2]);
	snprintf(p, sizeof(p), "%s/new/m3", md);
	assert_int_equal(access(p, F_OK), -1);
	snprintf(p, sizeof(p), "%s/tmp", md);
	DIR *d = opendir(p);
	int left = 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		left += e->d_name[0] != '.';
	closedir(d);
	assert_int_equal(left, 0);

	/* The segment is spent: a second start finds nothing, and a file
	 * removed since (a client expunged it) stays removed. */
	snprintf(p, sizeof(p), "%s/new/m0", md);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(journal_replay(data, &st), 0);
	assert_int_equal(st.records, 0);
	assert_int_equal(access(p, F_OK), -1);
}

/* A crash after a busy second: many records, most of their messages moved
 * to cur/ by a client since, in a large cur/. cur/ is read once, not once
 * per record; "m1" is not taken for "m10". */
static void
test_replay_large_cur(void **state)
{
	enum { N = 3000 };
	static unsigned char buf[N * 256 + 4096];
	char md[PATH_MAX], jdir[PATH_MAX], p[PATH_MAX + 64], data[128];
	char name[32], content[64];
	struct journal_replay_stats st;
	struct timespec t0, t1;
	size_t len = 0;
	(void)state;

	snprintf(data, sizeof(data), "%s/c", root);
	snprintf(md, sizeof(md), "%s/mail/x/carol", data);
	snprintf(jdir, sizeof(jdir), "%s/queue/journal", data);
	assert_int_equal(maildir_create(md), 0);
	assert_int_equal(fs_mkdir_p(jdir, 0700), 0);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "m%d", i);
		snprintf(content, sizeof(content), "message %d\r\n", i);
		struct journal_target t = { md, name };
		put_record(buf, &len, 5, &t, 1, content);
		/* All but m1 and m2 seen by a client; m10 and m20 exist with
		 * their own content, as do N files of other mail. */
		if (i != 1 && i != 2) {
			snprintf(p, sizeof(p), "%s/cur/%s:2,S", md, name);
			write_file(p, content);
		}
		snprintf(p, sizeof(p), "%s/cur/old%d:2,", md, i);
		write_file(p, "old\r\n");
	}
	snprintf(p, sizeof(p), "%s/0", jdir);
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_int_equal(fs_write_all(fd, buf, len), 0);
	close(fd);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(journal_replay(data, &st), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("replay of %d records against a cur/ of %d files: %.3f s\n", N,
	    2 * N - 2, (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	assert_int_equal(st.records, N);
	assert_int_equal(st.restored, 2);
	snprintf(p, sizeof(p), "%s/new/m1", md);
	assert_file(p, "message 1\r\n");
	snprintf(p, sizeof(p), "%s/new/m2", md);
	assert_file(p, "message 2\r\n");
	snprintf(p, sizeof(p), "%s/new", md);
	assert_int_equal(count_files(p), 2);
}

/* A lazy spool file: made only when the message outgrows the buffer,
 * whatever the size of the write that does it. */
static void
test_spool_lazy(void **state)
{
	char data[128];
	static char big[SPOOL_BUF_SIZE];
	struct stat sb;
	(void)state;

	snprintf(data, sizeof(data), "%s/s", root);
	memset(big, 'b', sizeof(big));
	for (int first_big = 0; first_big < 2; first_big++) {
		struct spool_file sf;
		assert_int_equal(spool_create_lazy(data, &sf), 0);
		if (!first_big) {
			spool_write(&sf, "head\r\n", 6);
			assert_int_equal(spool_flush(&sf), 0);
			assert_int_equal(sf.fd, -1);
			assert_int_equal(stat(sf.path, &sb), -1);
		}
		spool_write(&sf, big, sizeof(big));	/* one whole buffer */
		assert_int_equal(sf.error, 0);
		assert_true(sf.fd >= 0);
		spool_write(&sf, "tail", 4);
		assert_int_equal(spool_commit(&sf), 0);
		assert_int_equal(stat(sf.path, &sb), 0);
		assert_int_equal((uint64_t)sb.st_size, sf.size);
		assert_int_equal(sf.size, sizeof(big) + 4 + (first_big ? 0 : 6));
		spool_discard(&sf);
	}
	/* A lazy file never made is not removed by name: the name may be
	 * another's file. */
	struct spool_file sf;
	assert_int_equal(spool_create_lazy(data, &sf), 0);
	char other[PATH_MAX];
	snprintf(other, sizeof(other), "%s", sf.path);
	write_file(other, "not ours");
	spool_discard(&sf);
	assert_file(other, "not ours");
	unlink(other);
	/* A message that never outgrows it is written by
	 * spool_materialize (the worker thread). */
	assert_int_equal(spool_create_lazy(data, &sf), 0);
	spool_write(&sf, "small", 5);
	assert_int_equal(spool_flush(&sf), 0);
	assert_int_equal(sf.fd, -1);
	assert_int_equal(spool_materialize(&sf), 0);
	assert_true(sf.fd >= 0);
	assert_file(sf.path, "small");
	spool_discard(&sf);
}

/* ---- the threads ---- */

#define NMSG 40

struct delivery {
	struct spool_file sf;
	struct local_delivery ld;
	int *done;
};

static void
delivery_done(void *arg)
{
	struct delivery *d = arg;
	(*d->done)++;
}

static struct event_base *journal_test_base;

/* Files of dir, blank spool files too unless spools_only. */
static unsigned
count_in(const char *dir, bool spools_only)
{
	unsigned n = 0;
	DIR *d = opendir(dir);
	if (d == NULL)
		return 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		n += e->d_name[0] != '.' && (!spools_only || strncmp(e->d_name,
		    SPOOL_BLANK_PREFIX, strlen(SPOOL_BLANK_PREFIX)) != 0);
	closedir(d);
	return n;
}

static unsigned
count_files(const char *dir)
{
	return count_in(dir, false);
}

static void
test_writer_and_checkpoint(void **state)
{
	char data[128], a[PATH_MAX], b[PATH_MAX], fresh[PATH_MAX];
	char p[PATH_MAX + 64];
	static struct delivery d[NMSG];
	struct journal_stats js;
	int done = 0;
	(void)state;

	snprintf(data, sizeof(data), "%s/w", root);
	snprintf(a, sizeof(a), "%s/mail/x/a", data);
	snprintf(b, sizeof(b), "%s/mail/x/b", data);
	snprintf(fresh, sizeof(fresh), "%s/mail/x/fresh", data);
	assert_int_equal(maildir_create(a), 0);
	assert_int_equal(maildir_create(b), 0);
	assert_int_equal(spool_init(data), 0);
	struct event_base *base = event_base_new();
	assert_non_null(base);
	assert_false(journal_accepts(10));
	assert_int_equal(journal_start(data, base), 0);
	assert_true(journal_accepts(JOURNAL_MAX_MESSAGE));
	assert_false(journal_accepts(JOURNAL_MAX_MESSAGE + 1));

	for (int i = 0; i < NMSG; i++) {
		char body[128];
		int n = snprintf(body, sizeof(body), "Subject: %d\r\n\r\n"
		    "body %d\r\n", i, i);
		/* Half of them still all in memory: the writer makes their
		 * files. */
		if (i % 2)
			assert_int_equal(spool_create_lazy(data, &d[i].sf), 0);
		else
			assert_int_equal(spool_create(data, &d[i].sf), 0);
		spool_write(&d[i].sf, body, (size_t)n);
		assert_int_equal(spool_flush(&d[i].sf), 0);
		assert_int_equal(d[i].sf.fd < 0, i % 2);
		d[i].ld.spool = &d[i].sf;
		d[i].ld.data_dir = data;
		strlist_add(&d[i].ld.maildirs, a);
		strlist_add(&d[i].ld.maildirs, b);
		/* The last one also goes to a Maildir that does not exist
		 * yet: its link fails and the classic delivery makes it. */
		if (i == NMSG - 1)
			strlist_add(&d[i].ld.maildirs, fresh);
		d[i].done = &done;
		journal_submit(&d[i].ld, delivery_done, &d[i]);
	}
	while (done < NMSG)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(journal_pending(), 0);
	for (int i = 0; i < NMSG; i++) {
		assert_int_equal(d[i].ld.commit_error, 0);
		assert_int_equal(d[i].ld.first_error, 0);
		assert_int_equal(d[i].ld.delivered, i == NMSG - 1 ? 3 : 2);
		assert_int_equal(d[i].sf.fd, -1);
		assert_string_equal(d[i].sf.path, "");	/* spool name gone */
	}
	snprintf(p, sizeof(p), "%s/new", a);
	assert_int_equal(count_files(p), NMSG);
	snprintf(p, sizeof(p), "%s/new", b);
	assert_int_equal(count_files(p), NMSG);
	snprintf(p, sizeof(p), "%s/new", fresh);
	assert_int_equal(count_files(p), 1);
	/* Every file holds its message, lazily made or not. */
	unsigned seen = 0;
	snprintf(p, sizeof(p), "%s/new", a);
	DIR *dir = opendir(p);
	assert_non_null(dir);
	for (struct dirent *e; (e = readdir(dir)) != NULL;) {
		char f[PATH_MAX * 2], got[128];
		if (e->d_name[0] == '.')
			continue;
		snprintf(f, sizeof(f), "%s/%s", p, e->d_name);
		int fd = open(f, O_RDONLY);
		ssize_t r = read(fd, got, sizeof(got) - 1);
		close(fd);
		assert_true(r > 0);
		got[r] = '\0';
		int k = -1;
		assert_int_equal(sscanf(got, "Subject: %d", &k), 1);
		assert_true(k >= 0 && k < NMSG);
		char want[128];
		snprintf(want, sizeof(want), "Subject: %d\r\n\r\nbody %d\r\n",
		    k, k);
		assert_string_equal(got, want);
		seen |= 1u << (k % 32);
	}
	closedir(dir);
	assert_int_equal(seen, 0xffffffffu);
	/* No spool name left, only the blank files made ahead. */
	snprintf(p, sizeof(p), "%s/queue/tmp", data);
	assert_int_equal(count_in(p, true), 0);
	journal_get_stats(&js);
	assert_int_equal(js.records, NMSG);
	assert_true(js.batches >= 1 && js.batches <= NMSG);
	assert_int_equal(js.fallbacks, 0);
	/* Where the kernel has Linux AIO, every batch was written with it
	 * (the spool files being made meanwhile). */
	aio_context_t ctx = 0;
	if (syscall(__NR_io_setup, 1, &ctx) == 0) {
		syscall(__NR_io_destroy, ctx);
		assert_int_equal(js.async_writes, js.batches);
	}

	/* Stopping checkpoints: no segment holds a record any more. */
	journal_stop();
	journal_get_stats(&js);
	assert_true(js.checkpoints >= 1);
	assert_int_equal(count_files(p), 0);	/* blanks removed */
	for (int i = 0; i < JOURNAL_NSEG; i++) {
		unsigned char head[4] = { 0 };
		snprintf(p, sizeof(p), "%s/queue/journal/%d", data, i);
		int fd = open(p, O_RDONLY);
		assert_true(fd >= 0);
		ssize_t r = pread(fd, head, 4, 0);
		close(fd);
		assert_true(r < 4 || memcmp(head, "CRJ1", 4) != 0);
	}
	struct journal_replay_stats st;
	assert_int_equal(journal_replay(data, &st), 0);
	assert_int_equal(st.records, 0);
	for (int i = 0; i < NMSG; i++) {
		local_delivery_free(&d[i].ld);
		spool_discard(&d[i].sf);
	}
	event_base_free(base);
}

/* The length of the one segment that is not empty, or 0. */
static off_t
segment_length(const char *data)
{
	char p[PATH_MAX + 64];
	off_t len = 0;

	for (int i = 0; i < JOURNAL_NSEG; i++) {
		struct stat sb;
		snprintf(p, sizeof(p), "%s/queue/journal/%d", data, i);
		if (stat(p, &sb) == 0 && sb.st_size > len)
			len = sb.st_size;
	}
	return len;
}

static void
deliver_one(const char *data, const char *md, struct delivery *d)
{
	int done = 0;

	assert_int_equal(spool_create_lazy(data, &d->sf), 0);
	spool_write(&d->sf, "Subject: x\r\n\r\nx\r\n", 17);
	assert_int_equal(spool_flush(&d->sf), 0);
	d->ld.spool = &d->sf;
	d->ld.data_dir = data;
	strlist_add(&d->ld.maildirs, md);
	d->done = &done;
	journal_submit(&d->ld, delivery_done, d);
	while (done < 1)
		event_base_loop(journal_test_base, EVLOOP_ONCE);
	assert_int_equal(d->ld.delivered, 1);
}

/* Inode numbers of the blank files in dir (at most max). */
static unsigned
blank_inodes(const char *dir, ino_t *v, unsigned max)
{
	char f[PATH_MAX + 300];
	unsigned n = 0;
	DIR *d = opendir(dir);
	if (d == NULL)
		return 0;
	for (struct dirent *e; (e = readdir(d)) != NULL && n < max;) {
		struct stat sb;
		snprintf(f, sizeof(f), "%s/%s", dir, e->d_name);
		if (strncmp(e->d_name, SPOOL_BLANK_PREFIX,
		    strlen(SPOOL_BLANK_PREFIX)) == 0 && stat(f, &sb) == 0)
			v[n++] = sb.st_ino;
	}
	closedir(d);
	return n;
}

/* The inode of the one file in dir that is not in v[0..n), or 0. */
static ino_t
new_inode(const char *dir, const ino_t *old, unsigned n)
{
	char f[PATH_MAX + 300];
	ino_t found = 0;
	DIR *d = opendir(dir);
	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		struct stat sb;
		snprintf(f, sizeof(f), "%s/%s", dir, e->d_name);
		if (e->d_name[0] == '.' || stat(f, &sb) < 0)
			continue;
		bool seen = false;
		for (unsigned i = 0; i < n; i++)
			seen |= old[i] == sb.st_ino;
		if (!seen)
			found = sb.st_ino;
	}
	closedir(d);
	return found;
}

/* While it has nothing to do, the writer makes blank spool files, and the
 * next message is written into one (no inode to find while the client
 * waits), and it writes the active segment ahead of its records, so that
 * the next record's fdatasync has no new file length to commit. */
static void
test_idle_work(void **state)
{
	char data[128], md[PATH_MAX], tmp[PATH_MAX], new[PATH_MAX + 8];
	static struct delivery d[2];
	ino_t blanks[64], first[1];
	(void)state;

	snprintf(data, sizeof(data), "%s/g", root);
	snprintf(md, sizeof(md), "%s/mail/x/g", data);
	snprintf(tmp, sizeof(tmp), "%s/queue/tmp", data);
	snprintf(new, sizeof(new), "%s/new", md);
	assert_int_equal(maildir_create(md), 0);
	assert_int_equal(spool_init(data), 0);
	journal_test_base = event_base_new();
	assert_int_equal(journal_start(data, journal_test_base), 0);
	deliver_one(data, md, &d[0]);
	assert_int_equal(count_files(new), 1);
	first[0] = new_inode(new, NULL, 0);
	/* Well before the segment is closed (JOURNAL_CLOSE_MS). */
	for (int i = 0; i < 100 && segment_length(data) < 32768; i++)
		usleep(2000);
	off_t ahead = segment_length(data);
	assert_true(ahead >= 32768);
	assert_true(ahead <= 65536);	/* and not more, with little mail */
	unsigned nb = blank_inodes(tmp, blanks, 64);
	assert_true(nb >= 1);

	deliver_one(data, md, &d[1]);
	assert_true(segment_length(data) == ahead);
	ino_t got = new_inode(new, first, 1);
	bool from_stock = false;
	for (unsigned i = 0; i < nb; i++)
		from_stock |= blanks[i] == got;
	assert_true(from_stock);
	journal_stop();
	assert_int_equal(count_files(tmp), 0);
	for (int i = 0; i < 2; i++) {
		local_delivery_free(&d[i].ld);
		spool_discard(&d[i].sf);
	}
	event_base_free(journal_test_base);
	journal_test_base = NULL;
}

/* Deliveries waiting together go in batches of at most
 * JOURNAL_BATCH_MAX octets of messages, each written from memory. */
static void
test_batch_limit(void **state)
{
	char data[128], md[PATH_MAX], p[PATH_MAX + 16];
	enum { N = 10, SIZE = 900 * 1024 };
	static struct delivery d[N];
	static char body[SIZE];
	struct journal_stats before, after;
	int done = 0;
	(void)state;

	snprintf(data, sizeof(data), "%s/b", root);
	snprintf(md, sizeof(md), "%s/mail/x/big", data);
	assert_int_equal(maildir_create(md), 0);
	assert_int_equal(spool_init(data), 0);
	memset(body, 'q', sizeof(body));
	struct event_base *base = event_base_new();
	assert_int_equal(journal_start(data, base), 0);
	journal_get_stats(&before);
	for (int i = 0; i < N; i++) {
		assert_int_equal(spool_create_lazy(data, &d[i].sf), 0);
		spool_write(&d[i].sf, body, sizeof(body));
		assert_int_equal(spool_flush(&d[i].sf), 0);
		d[i].ld.spool = &d[i].sf;
		d[i].ld.data_dir = data;
		strlist_add(&d[i].ld.maildirs, md);
		d[i].done = &done;
		journal_submit(&d[i].ld, delivery_done, &d[i]);
	}
	while (done < N)
		event_base_loop(base, EVLOOP_ONCE);
	journal_get_stats(&after);
	assert_int_equal(after.records - before.records, N);
	assert_true(after.batches - before.batches >= 2);
	/* Records carry a header and are padded to a block at most. */
	assert_true(after.max_batch <= JOURNAL_BATCH_MAX + N * 8192);
	assert_true(after.max_batch >= SIZE);
	for (int i = 0; i < N; i++) {
		assert_int_equal(d[i].ld.delivered, 1);
		assert_int_equal(d[i].ld.first_error, 0);
	}
	snprintf(p, sizeof(p), "%s/new", md);
	assert_int_equal(count_files(p), N);
	/* The batch buffer stays while mail comes, and is given back once
	 * none has come for JOURNAL_KEEP_MS. */
	assert_true(after.buffer > JOURNAL_BATCH_MAX / 2);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	journal_get_stats(&after);
	assert_true(after.buffer > JOURNAL_BATCH_MAX / 2);
	do {
		usleep(20000);
		journal_get_stats(&after);
		clock_gettime(CLOCK_MONOTONIC, &t1);
	} while (after.buffer != 0 && t1.tv_sec - t0.tv_sec < 10);
	assert_int_equal(after.buffer, 0);
	assert_true((t1.tv_sec - t0.tv_sec) * 1000 +
	    (t1.tv_nsec - t0.tv_nsec) / 1000000 >= JOURNAL_KEEP_MS / 2);
	journal_stop();
	for (int i = 0; i < N; i++) {
		local_delivery_free(&d[i].ld);
		spool_discard(&d[i].sf);
	}
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_roundtrip),
		cmocka_unit_test(test_record_damage),
		cmocka_unit_test(test_replay),
		cmocka_unit_test(test_replay_large_cur),
		cmocka_unit_test(test_spool_lazy),
		cmocka_unit_test(test_writer_and_checkpoint),
		cmocka_unit_test(test_idle_work),
		cmocka_unit_test(test_batch_limit),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
