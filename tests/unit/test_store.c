/* Maildir delivery and spool files on a real file system. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/strlist.h"
#include "queue/deliver.h"
#include "queue/spool.h"
#include "store/maildir.h"

static char *
tmpdir(void)
{
	char tmpl[] = "/tmp/correo-test-XXXXXX";
	char *d = mkdtemp(tmpl);
	assert_non_null(d);
	return strdup(d);
}

static void
rm_rf(const char *d)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	assert_int_equal(system(cmd), 0);
}

static int
count_files(const char *dir)
{
	DIR *d = opendir(dir);
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

static void
test_unique_names(void **state)
{
	char a[256], b[256];
	(void)state;
	maildir_unique_name(a, sizeof(a), 42);
	maildir_unique_name(b, sizeof(b), 42);
	assert_string_not_equal(a, b);
	assert_non_null(strstr(a, ",S=42"));
	assert_null(strchr(a, '/'));
	assert_null(strchr(a, ':'));
	/* Names made one after the other sort in that order, also when the
	 * microseconds go from five digits to six: the tie-break for files
	 * with the same mtime. */
	const char *m = strstr(a, ".M");
	assert_non_null(m);
	assert_int_equal(strspn(m + 2, "0123456789"), 6);
	for (int i = 0; i < 20000; i++) {
		memcpy(a, b, sizeof(a));
		maildir_unique_name(b, sizeof(b), 42);
		if (!(strcmp(a, b) < 0 || strncmp(a, b, 10) != 0))
			fail_msg("%s then %s", a, b);
	}
}

static void
test_spool_and_deliver(void **state)
{
	char *dir = tmpdir(), box1[512], box2[512], path[700];
	struct spool_file sf;
	struct local_delivery ld = { 0 };
	(void)state;

	assert_int_equal(spool_init(dir), 0);
	assert_int_equal(spool_create(dir, &sf), 0);
	/* Larger than the spool buffer, to cross a flush. */
	for (int i = 0; i < 5000; i++)
		spool_write(&sf, "0123456789abcdefghijklmnopqrstuvwxyz\r\n", 38);
	assert_int_equal(spool_flush(&sf), 0);
	assert_true(sf.size == 5000 * 38);

	snprintf(box1, sizeof(box1), "%s/mail/example.test/a", dir);
	snprintf(box2, sizeof(box2), "%s/mail/example.test/b", dir);
	assert_int_equal(maildir_create(box1), 0);
	/* box2 is missing: delivery makes it. */
	strlist_add(&ld.maildirs, box1);
	strlist_add(&ld.maildirs, box2);
	ld.spool = &sf;
	local_delivery_run(&ld);
	assert_int_equal(ld.commit_error, 0);
	assert_int_equal(ld.first_error, 0);
	assert_int_equal(ld.delivered, 2);
	snprintf(path, sizeof(path), "%s/new", box1);
	assert_int_equal(count_files(path), 1);
	snprintf(path, sizeof(path), "%s/new", box2);
	assert_int_equal(count_files(path), 1);
	/* The spool file is gone once every mailbox has the message. */
	snprintf(path, sizeof(path), "%s/queue/tmp", dir);
	assert_int_equal(count_files(path), 0);
	local_delivery_free(&ld);
	spool_discard(&sf);
	rm_rf(dir);
	free(dir);
}

static void
test_spool_discard(void **state)
{
	char *dir = tmpdir(), path[700];
	struct spool_file sf;
	(void)state;
	assert_int_equal(spool_create(dir, &sf), 0);
	spool_write(&sf, "partial", 7);
	spool_discard(&sf);
	snprintf(path, sizeof(path), "%s/queue/tmp", dir);
	assert_int_equal(count_files(path), 0);
	rm_rf(dir);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unique_names),
		cmocka_unit_test(test_spool_and_deliver),
		cmocka_unit_test(test_spool_discard),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
