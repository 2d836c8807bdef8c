/* core/: buffers, numbers and sizes, string helpers, lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_strlist),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
