/* POP3 command syntax. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pop3/pop3_parse.h"

static void
test_commands(void **state)
{
	struct pop3_command c;
	(void)state;
	assert_true(pop3_parse_command("stat", &c));
	assert_string_equal(c.keyword, "STAT");
	assert_string_equal(c.args, "");
	assert_true(pop3_parse_command("PASS two words ", &c));
	assert_string_equal(c.keyword, "PASS");
	assert_string_equal(c.args, "two words ");
	assert_true(pop3_parse_command("Top 1 2", &c));
	assert_string_equal(c.keyword, "TOP");
	assert_string_equal(c.args, "1 2");
	assert_false(pop3_parse_command("", &c));
	assert_false(pop3_parse_command("NO", &c));
	assert_false(pop3_parse_command("STATS", &c));
	assert_false(pop3_parse_command("ST4T", &c));
	assert_false(pop3_parse_command(" STAT", &c));
	assert_false(pop3_parse_command("\xc3\xa9TAT", &c));
}

static void
test_numbers(void **state)
{
	uint32_t n, m;
	(void)state;
	assert_true(pop3_parse_msgno("1", &n));
	assert_int_equal(n, 1);
	assert_true(pop3_parse_msgno("007", &n));
	assert_int_equal(n, 7);
	assert_true(pop3_parse_msgno("4294967295", &n));
	assert_true(n == UINT32_MAX);
	assert_false(pop3_parse_msgno("4294967296", &n));
	assert_false(pop3_parse_msgno("00000000001", &n));
	assert_false(pop3_parse_msgno("0", &n));
	assert_false(pop3_parse_msgno("-1", &n));
	assert_false(pop3_parse_msgno("+1", &n));
	assert_false(pop3_parse_msgno("1 ", &n));
	assert_false(pop3_parse_msgno("", &n));
	assert_false(pop3_parse_msgno("abc", &n));
	assert_true(pop3_parse_two("3 0", &n, &m));
	assert_int_equal(n, 3);
	assert_int_equal(m, 0);
	assert_true(pop3_parse_two("3 10", &n, &m));
	assert_int_equal(m, 10);
	assert_false(pop3_parse_two("3", &n, &m));
	assert_false(pop3_parse_two("0 1", &n, &m));
	assert_false(pop3_parse_two("3  1", &n, &m));
	assert_false(pop3_parse_two("3 1 2", &n, &m));
	assert_false(pop3_parse_two("3 -1", &n, &m));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commands),
		cmocka_unit_test(test_numbers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
