/* MTA-STS parsers (RFC 8461): TXT records, policy files (every prefix of
 * a valid policy too), and MX pattern matching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/xmalloc.h"
#include "queue/mta_sts.h"

static int
parse(const char *text, struct mta_sts_policy *p)
{
	const char *why = NULL;
	int rc = mta_sts_parse_policy(text, strlen(text), p, &why);
	if (rc < 0)
		assert_non_null(why);
	return rc;
}

static void
test_txt_records(void **state)
{
	char id[MTA_STS_ID_MAX + 1];

	(void)state;
	assert_int_equal(mta_sts_parse_txt("v=STSv1; id=20160831085700Z;",
	    id), 0);
	assert_string_equal(id, "20160831085700Z");
	assert_int_equal(mta_sts_parse_txt("v=STSv1;id=abc", id), 0);
	assert_string_equal(id, "abc");
	assert_int_equal(mta_sts_parse_txt("v=STSv1 ; ext=x.y ; id=Z9 ;",
	    id), 0);
	assert_string_equal(id, "Z9");
	/* no id, bad id, wrong version, junk, two ids */
	assert_int_equal(mta_sts_parse_txt("v=STSv1;", id), -1);
	assert_int_equal(mta_sts_parse_txt("v=STSv1", id), -1);
	assert_int_equal(mta_sts_parse_txt("v=STSv1; id=a-b", id), -1);
	assert_int_equal(mta_sts_parse_txt("v=STSv1; id=", id), -1);
	assert_int_equal(mta_sts_parse_txt("v=STSv2; id=1", id), -1);
	assert_int_equal(mta_sts_parse_txt("v=STSv1x; id=1", id), -1);
	assert_int_equal(mta_sts_parse_txt("v=STSv1; id=1 x", id), -1);
	assert_int_equal(mta_sts_parse_txt("v=STSv1; id=1; id=2", id), -1);
	assert_int_equal(mta_sts_parse_txt("v=STSv1; id=1;;", id), -1);
	assert_int_equal(mta_sts_parse_txt("v=STSv1; id="
	    "123456789012345678901234567890123", id), -1);
	assert_int_equal(mta_sts_parse_txt("v=STSv1; id="
	    "12345678901234567890123456789012", id), 0);
}

static void
test_txt_selection(void **state)
{
	char id[MTA_STS_ID_MAX + 1];
	char *one[] = { "v=spf1 -all", "v=STSv1; id=7" };
	char *two[] = { "v=STSv1; id=7", "v=STSv1; id=8" };
	char *bad[] = { "v=STSv1; id=?", "other" };

	(void)state;
	assert_int_equal(mta_sts_txt_id(one, 2, id), 0);
	assert_string_equal(id, "7");
	assert_int_equal(mta_sts_txt_id(two, 2, id), -1);
	assert_int_equal(mta_sts_txt_id(bad, 2, id), -1);
	assert_int_equal(mta_sts_txt_id(NULL, 0, id), -1);
}

static const char good[] =
    "version: STSv1\r\n"
    "mode: enforce\r\n"
    "mx: mail.example.com\r\n"
    "mx: *.Example.net\r\n"
    "mx: backupmx.example.com\r\n"
    "max_age: 604800\r\n";

static void
test_policy_good(void **state)
{
	struct mta_sts_policy p;

	(void)state;
	assert_int_equal(parse(good, &p), 0);
	assert_int_equal(p.mode, MTA_STS_ENFORCE);
	assert_int_equal(p.max_age, 604800);
	assert_int_equal(p.nmx, 3);
	assert_string_equal(p.mx[1], "*.example.net");
	assert_true(mta_sts_mx_matches(&p, "mail.example.com"));
	assert_true(mta_sts_mx_matches(&p, "MAIL.example.com."));
	assert_true(mta_sts_mx_matches(&p, "mx1.example.net"));
	assert_false(mta_sts_mx_matches(&p, "example.net"));
	assert_false(mta_sts_mx_matches(&p, "a.mx1.example.net"));
	assert_false(mta_sts_mx_matches(&p, ".example.net"));
	assert_false(mta_sts_mx_matches(&p, "mail.example.org"));
	assert_false(mta_sts_mx_matches(&p, "xmail.example.com"));
	struct mta_sts_policy c;
	mta_sts_policy_copy(&c, &p);
	mta_sts_policy_free(&p);
	assert_true(mta_sts_mx_matches(&c, "backupmx.example.com"));
	mta_sts_policy_free(&c);

	/* LF only, unknown keys, trailing blanks, no final newline, none */
	assert_int_equal(parse("version: STSv1\nmode: testing\nfoo_bar: "
	    "x y\nmx:\tmx.example.org  \nmax_age: 99999999999", &p), -1);
	assert_int_equal(parse("version: STSv1\nmode: testing\nfoo_bar: "
	    "x y\nmx:\tmx.example.org  \nmax_age: 9999999999", &p), 0);
	assert_int_equal(p.mode, MTA_STS_TESTING);
	assert_int_equal(p.max_age, MTA_STS_MAX_AGE);
	assert_string_equal(p.mx[0], "mx.example.org");
	mta_sts_policy_free(&p);
	assert_int_equal(parse("version: STSv1\nmode: none\nmax_age: 0\n",
	    &p), 0);
	assert_int_equal(p.mode, MTA_STS_NONE);
	assert_int_equal(p.nmx, 0);
	mta_sts_policy_free(&p);
}

static void
test_policy_bad(void **state)
{
	static const char *const bad[] = {
		"",
		"version: STSv1\nmode: enforce\nmax_age: 1\n",	/* no mx */
		"mode: enforce\nmx: a.example\nmax_age: 1\n",
		"version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n",
		"version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: a.example\n",
		"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n",
		"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1x\n",
		"version: STSv1\nmode: enforce\nmode: testing\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: *.com\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: a*.example\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: a..example\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: a.example.\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: localhost\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx:\nmax_age: 1\n",
		"version STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\n",
		" version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\r\r\n",
		"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\nx: \x01\n",
	};
	struct mta_sts_policy p;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i], &p) == 0)
			fail_msg("accepted policy %zu: %s", i, bad[i]);
		assert_int_equal(p.nmx, 0);
		assert_null(p.mx);
	}
	const char *why = NULL;
	assert_int_equal(mta_sts_parse_policy("version: STSv1\0", 15, &p,
	    &why), -1);
}

/* Every prefix of a valid policy parses or fails cleanly; the ones that
 * end after the last line parse. */
static void
test_policy_prefixes(void **state)
{
	size_t n = strlen(good);

	(void)state;
	for (size_t i = 0; i <= n; i++) {
		char *copy = x_malloc(i ? i : 1);
		struct mta_sts_policy p;
		const char *why = NULL;
		memcpy(copy, good, i);
		int rc = mta_sts_parse_policy(copy, i, &p, &why);
		if (i >= n - 2)
			assert_int_equal(rc, 0);
		if (rc == 0)
			mta_sts_policy_free(&p);
		free(copy);
	}
}

static void
test_policy_limits(void **state)
{
	struct mta_sts_policy p;
	const char *why = NULL;
	char *big = x_malloc(MTA_STS_MAX_POLICY + 2);

	(void)state;
	memset(big, '\n', MTA_STS_MAX_POLICY + 1);
	assert_int_equal(mta_sts_parse_policy(big, MTA_STS_MAX_POLICY + 1, &p,
	    &why), -1);
	free(big);
	char text[8192] = "version: STSv1\nmode: enforce\nmax_age: 5\n";
	for (int i = 0; i <= MTA_STS_MAX_MX; i++) {
		size_t len = strlen(text);
		snprintf(text + len, sizeof(text) - len, "mx: m%d.example\n", i);
	}
	assert_int_equal(parse(text, &p), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_txt_records),
		cmocka_unit_test(test_txt_selection),
		cmocka_unit_test(test_policy_good),
		cmocka_unit_test(test_policy_bad),
		cmocka_unit_test(test_policy_prefixes),
		cmocka_unit_test(test_policy_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
