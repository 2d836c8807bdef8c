/* From: header address extraction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/smtp_from.h"

struct from_case {
	const char *hdr;
	int fields;
	const char *want[3];
};

static const struct from_case cases[] = {
	{ "From: alice@example.test\r\n\r\n", 1, { "alice@example.test" } },
	{ "Subject: x\r\nFROM: \"Alice, A.\" <alice@example.test>\r\nTo: b@c\r\n",
	  1, { "alice@example.test" } },
	{ "From: alice@example.test (Alice <bob@x>)\r\n", 1,
	  { "alice@example.test" } },
	{ "From: Alice\r\n <alice@example.test>\r\n", 1,
	  { "alice@example.test" } },
	{ "From: a@x.test, \"B\" <b@y.test>\r\n", 1, { "a@x.test", "b@y.test" } },
	{ "From: team: a@x.test, b@y.test;\r\n", 1, { "a@x.test", "b@y.test" } },
	{ "From: a@x.test\r\nFrom: b@y.test\r\n", 2, { "a@x.test", "b@y.test" } },
	{ "From: <@relay.test:a@x.test>\r\n", 1, { "a@x.test" } },
	{ "From: \"a@x.test\" <b@y.test>\r\n", 1, { "b@y.test" } },
	{ "To: a@x.test\r\n\r\nFrom: b@y.test\r\n", 0, { NULL } },
	{ "X-From: a@x.test\r\nReply-To: From: b@y.test\r\n", 0, { NULL } },
	{ "From: undisclosed\r\n", 1, { "undisclosed" } },
	{ "From: a@x.test\n", 1, { "a@x.test" } },
	{ "From: a@x.test", 1, { "a@x.test" } },
};

static void
test_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct from_case *c = &cases[i];
		struct strlist out = STRLIST_INIT;
		int f = smtp_from_addresses(c->hdr, strlen(c->hdr), &out);
		assert_int_equal(f, c->fields);
		size_t n = 0;
		while (n < 3 && c->want[n])
			n++;
		assert_int_equal(out.n, n);
		for (size_t k = 0; k < n; k++)
			assert_string_equal(out.v[k], c->want[k]);
		strlist_free(&out);
	}
}

static void
test_every_truncation(void **state)
{
	static const char h[] = "Subject: s\r\nFrom: \"Q\\\" (x\" <a@x.test> "
	    "(c (nested) \\) ), b@y.test\r\n\r\n";
	(void)state;
	/* A header section cut anywhere never reads past its end. */
	for (size_t n = 0; n <= sizeof(h) - 1; n++) {
		struct strlist out = STRLIST_INIT;
		smtp_from_addresses(h, n, &out);
		strlist_free(&out);
	}
	struct strlist out = STRLIST_INIT;
	assert_int_equal(smtp_from_addresses(h, sizeof(h) - 1, &out), 1);
	assert_int_equal(out.n, 2);
	assert_string_equal(out.v[0], "a@x.test");
	assert_string_equal(out.v[1], "b@y.test");
	strlist_free(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_every_truncation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
