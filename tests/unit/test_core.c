/* core/: buffers, numbers and sizes, string helpers, lists. */
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

#include "core/buf.h"
#include "core/fs.h"
#include "core/strlist.h"
#include "core/util.h"

static void
test_buf(void **state)
{
	struct buf b = BUF_INIT;
	(void)state;
	assert_string_equal(buf_cstr(&b), "");
	for (int i = 0; i < 1000; i++)
		buf_printf(&b, "%04d", i);
	assert_int_equal(b.len, 4000);
	assert_memory_equal(b.data + 3996, "0999", 4);
	buf_consume(&b, 3996);
	assert_string_equal(buf_cstr(&b), "0999");
	char big[1000];
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	buf_printf(&b, "%s!", big);
	assert_int_equal(b.len, 4 + 999 + 1);
	assert_int_equal(b.data[b.len - 1], '!');
	buf_reset(&b);
	buf_putc(&b, 'x');
	assert_string_equal(buf_cstr(&b), "x");
	buf_free(&b);
	assert_null(b.data);
}

static void
test_sizes(void **state)
{
	uint64_t v;
	(void)state;
	assert_int_equal(parse_size("50M", &v), 0);
	assert_true(v == 50ULL * 1024 * 1024);
	assert_int_equal(parse_size("10k", &v), 0);
	assert_true(v == 10240);
	assert_int_equal(parse_size("1G", &v), 0);
	assert_true(v == 1073741824ULL);
	assert_int_equal(parse_size("12345", &v), 0);
	assert_true(v == 12345);
	assert_int_equal(parse_size("", &v), -1);
	assert_int_equal(parse_size("M", &v), -1);
	assert_int_equal(parse_size("-1", &v), -1);
	assert_int_equal(parse_size("5X", &v), -1);
	assert_int_equal(parse_size("99999999999999999999G", &v), -1);
	assert_int_equal(parse_uint("18446744073709551615", UINT64_MAX, &v), 0);
	assert_int_equal(parse_uint("18446744073709551616", UINT64_MAX, &v), -1);
	assert_int_equal(parse_uint("65536", 65535, &v), -1);
	assert_int_equal(parse_uint("1 ", 100, &v), -1);
}

static void
test_strings(void **state)
{
	char small[4], s[] = "MiXeD@Ex.TEST";
	(void)state;
	assert_int_equal(str_copy(small, "abc", sizeof(small)), 0);
	assert_int_equal(str_copy(small, "abcd", sizeof(small)), -1);
	assert_string_equal(small, "abc");
	assert_string_equal(str_lower(s), "mixed@ex.test");
	assert_true(str_iequal("QUIT", "quit"));
	assert_string_equal(str_iprefix("FROM:<a>", "from:"), "<a>");
	assert_null(str_iprefix("TO:<a>", "from:"));
	char id1[17], id2[17];
	make_id(id1);
	make_id(id2);
	assert_int_equal(strlen(id1), 16);
	assert_string_not_equal(id1, id2);
	assert_int_equal(strspn(id1, "0123456789abcdef"), 16);
}

static void
test_strlist(void **state)
{
	struct strlist l = STRLIST_INIT;
	(void)state;
	for (int i = 0; i < 20; i++)
		strlist_add_unique(&l, i % 2 ? "A@x" : "a@X");
	assert_int_equal(l.n, 1);
	strlist_add(&l, "b");
	assert_true(strlist_contains(&l, "B"));
	assert_false(strlist_contains(&l, "c"));
	strlist_free(&l);
	assert_int_equal(l.n, 0);
}

/* Shared directory fsyncs: every caller returns once an fsync that
 * began after its call has ended; many callers at once need fewer
 * fsyncs than calls; a failure reaches the callers it was to serve. */
#define SHARED_THREADS	8
#define SHARED_CALLS	200

static char shared_dir[64];

static void *
shared_caller(void *arg)
{
	long *failures = arg;

	for (int i = 0; i < SHARED_CALLS; i++) {
		char path[128];
		snprintf(path, sizeof(path), "%s/f%lx.%d", shared_dir,
		    (unsigned long)pthread_self(), i);
		FILE *f = fopen(path, "w");
		if (f == NULL || fclose(f) != 0 ||
		    fs_fsync_dir_shared(shared_dir) < 0)
			(*failures)++;
		unlink(path);
	}
	return NULL;
}

/* fs_pwrite_all and fs_pread_all at an offset; a read past the end of
 * the file is EIO, not a short success. */
static void
test_pread_pwrite_all(void **state)
{
	char path[] = "/tmp/correo-fsrw-XXXXXX", got[16];
	(void)state;

	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(fs_pwrite_all(fd, "world", 5, 6), 0);
	assert_int_equal(fs_pwrite_all(fd, "hello ", 6, 0), 0);
	assert_int_equal(fs_pread_all(fd, got, 11, 0), 0);
	assert_memory_equal(got, "hello world", 11);
	assert_int_equal(fs_pread_all(fd, got, 5, 6), 0);
	assert_memory_equal(got, "world", 5);
	errno = 0;
	assert_int_equal(fs_pread_all(fd, got, 8, 6), -1);
	assert_int_equal(errno, EIO);
	close(fd);
	assert_int_equal(fs_pwrite_all(fd, "x", 1, 0), -1);
	assert_int_equal(errno, EBADF);
}

static void
test_fsync_dir_shared(void **state)
{
	pthread_t t[SHARED_THREADS];
	long failures[SHARED_THREADS] = { 0 };
	(void)state;

	snprintf(shared_dir, sizeof(shared_dir), "/var/tmp/correo-fs.XXXXXX");
	assert_non_null(mkdtemp(shared_dir));
	unsigned long before = fs_fsync_dir_shared_runs();
	for (int i = 0; i < SHARED_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, shared_caller,
		    &failures[i]), 0);
	for (int i = 0; i < SHARED_THREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(failures[i], 0);
	}
	unsigned long runs = fs_fsync_dir_shared_runs() - before;
	print_message("shared dir fsync: %lu fsyncs for %d calls\n", runs,
	    SHARED_THREADS * SHARED_CALLS);
	assert_true(runs > 0);
	assert_true(runs <= SHARED_THREADS * SHARED_CALLS);
	assert_int_equal(rmdir(shared_dir), 0);
	errno = 0;
	assert_int_equal(fs_fsync_dir_shared(shared_dir), -1);
	assert_int_equal(errno, ENOENT);
	/* The slot of a failed directory is free again: it works once the
	 * directory is back. */
	assert_int_equal(mkdir(shared_dir, 0700), 0);
	assert_int_equal(fs_fsync_dir_shared(shared_dir), 0);
	assert_int_equal(rmdir(shared_dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf),
		cmocka_unit_test(test_fsync_dir_shared),
		cmocka_unit_test(test_pread_pwrite_all),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_strlist),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
