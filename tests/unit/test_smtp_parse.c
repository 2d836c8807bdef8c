/* Unit tests for src/smtp/smtp_parse.c: MAIL/RCPT paths and parameters,
 * bare mailboxes, HELO names, UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/smtp_parse.h"

#define LIT	0x1
#define PM	0x2
#define U8	0x4

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* A case that must fail with SMTP_PARSE_<st>. */
#define FAILS(arg, st) { (arg), SMTP_PARSE_##st, NULL, NULL, NULL, 0 }

struct addr_case {
	const char *arg;
	enum smtp_parse_status st;
	const char *text;
	const char *local;
	const char *domain;
	unsigned flags;
};

/* Names the case under test, control and non-ASCII octets escaped, so a
 * failing assertion can be traced to its input. */
static void
show_case(const char *what, const char *s)
{
	char out[1024];
	size_t o = 0;

	for (; *s != '\0' && o + 5 < sizeof(out); s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c >= 0x7f)
			o += (size_t)snprintf(out + o, sizeof(out) - o,
			    "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
	print_message("%s%s\n", what, out);
}

static bool
address_matches(const struct addr_case *c, const struct smtp_address *a)
{
	return strcmp(a->text, c->text) == 0 &&
	    strcmp(a->local, c->local) == 0 &&
	    strcmp(a->domain, c->domain) == 0 &&
	    a->is_literal == !!(c->flags & LIT) &&
	    a->is_postmaster == !!(c->flags & PM) &&
	    a->utf8 == !!(c->flags & U8);
}

/* Prints the case only when it fails, then lets cmocka say how. */
static void
check_case(const char *what, const struct addr_case *c,
    enum smtp_parse_status got, const struct smtp_address *a)
{
	if (got != c->st || (got == SMTP_PARSE_OK && !address_matches(c, a)))
		show_case(what, c->arg);
	assert_int_equal(got, c->st);
	if (c->st != SMTP_PARSE_OK)
		return;
	assert_string_equal(a->text, c->text);
	assert_string_equal(a->local, c->local);
	assert_string_equal(a->domain, c->domain);
	assert_int_equal(a->is_literal, !!(c->flags & LIT));
	assert_int_equal(a->is_postmaster, !!(c->flags & PM));
	assert_int_equal(a->utf8, !!(c->flags & U8));
}

static const struct addr_case mail_cases[] = {
	{ " FROM:<user@example.test>", SMTP_PARSE_OK,
	  "user@example.test", "user", "example.test", 0 },
	{ " from:<User@Example.TEST>", SMTP_PARSE_OK,
	  "User@Example.TEST", "User", "Example.TEST", 0 },
	{ " FROM:<>", SMTP_PARSE_OK, "", "", "", 0 },
	{ " FROM:<> ", SMTP_PARSE_OK, "", "", "", 0 },
	{ " FROM: <a@b.test>", SMTP_PARSE_OK, "a@b.test", "a", "b.test", 0 },
	{ " FROM:   <a@b.test>", SMTP_PARSE_OK, "a@b.test", "a", "b.test", 0 },
	{ " FROM:a@b.test", SMTP_PARSE_OK, "a@b.test", "a", "b.test", 0 },
	{ " FROM: a@b.test", SMTP_PARSE_OK, "a@b.test", "a", "b.test", 0 },
	{ "  FROM:<a@b.test>", SMTP_PARSE_OK, "a@b.test", "a", "b.test", 0 },
	{ " FROM:<first.last@b.test>", SMTP_PARSE_OK,
	  "first.last@b.test", "first.last", "b.test", 0 },
	{ " FROM:<a+tag@b.test>", SMTP_PARSE_OK,
	  "a+tag@b.test", "a+tag", "b.test", 0 },
	{ " FROM:<!#$%&'*+-/=?^_`{|}~@b.test>", SMTP_PARSE_OK,
	  "!#$%&'*+-/=?^_`{|}~@b.test", "!#$%&'*+-/=?^_`{|}~", "b.test", 0 },
	{ " FROM:<a@localhost>", SMTP_PARSE_OK,
	  "a@localhost", "a", "localhost", 0 },
	{ " FROM:<a@x-y.b1.test>", SMTP_PARSE_OK,
	  "a@x-y.b1.test", "a", "x-y.b1.test", 0 },
	{ " FROM:<a@1.2.3.4>", SMTP_PARSE_OK, "a@1.2.3.4", "a", "1.2.3.4", 0 },
	/* Relay tricks parse; deciding whether they relay is not ours. */
	{ " FROM:<u%remote@local>", SMTP_PARSE_OK,
	  "u%remote@local", "u%remote", "local", 0 },
	{ " FROM:<remote!u@local>", SMTP_PARSE_OK,
	  "remote!u@local", "remote!u", "local", 0 },
	{ " FROM:<\"u@remote\"@local>", SMTP_PARSE_OK,
	  "\"u@remote\"@local", "u@remote", "local", 0 },
	{ " FROM:<\"a b\"@x.test>", SMTP_PARSE_OK,
	  "\"a b\"@x.test", "a b", "x.test", 0 },
	{ " FROM:<\"a\\\"b\\\\c\"@x.test>", SMTP_PARSE_OK,
	  "\"a\\\"b\\\\c\"@x.test", "a\"b\\c", "x.test", 0 },
	{ " FROM:<\"a>b\"@x.test>", SMTP_PARSE_OK,
	  "\"a>b\"@x.test", "a>b", "x.test", 0 },
	{ " FROM:<\"\\a\"@x.test>", SMTP_PARSE_OK,
	  "\"\\a\"@x.test", "a", "x.test", 0 },
	{ " FROM:<@a.test,@b.test:user@d.test>", SMTP_PARSE_OK,
	  "user@d.test", "user", "d.test", 0 },
	{ " FROM:<@a.test:user@d.test>", SMTP_PARSE_OK,
	  "user@d.test", "user", "d.test", 0 },
	{ " FROM:<u@[127.0.0.1]>", SMTP_PARSE_OK,
	  "u@[127.0.0.1]", "u", "[127.0.0.1]", LIT },
	{ " FROM:<u@[IPv6:::1]>", SMTP_PARSE_OK,
	  "u@[IPv6:::1]", "u", "[IPv6:::1]", LIT },
	{ " FROM:<u@[ipv6:2001:db8::1]>", SMTP_PARSE_OK,
	  "u@[ipv6:2001:db8::1]", "u", "[ipv6:2001:db8::1]", LIT },
	{ " FROM:<u@[IPv6:::ffff:192.0.2.1]>", SMTP_PARSE_OK,
	  "u@[IPv6:::ffff:192.0.2.1]", "u", "[IPv6:::ffff:192.0.2.1]", LIT },
	{ " FROM:<u@[x-tag:any!content]>", SMTP_PARSE_OK,
	  "u@[x-tag:any!content]", "u", "[x-tag:any!content]", LIT },
	/* RFC 6531 */
	{ " FROM:<jos\xc3\xa9@exampl\xc3\xa9.test>", SMTP_PARSE_OK,
	  "jos\xc3\xa9@exampl\xc3\xa9.test", "jos\xc3\xa9",
	  "exampl\xc3\xa9.test", U8 },
	{ " FROM:<\"\xe6\x97\xa5 \xe6\x9c\xac\"@x.test>", SMTP_PARSE_OK,
	  "\"\xe6\x97\xa5 \xe6\x9c\xac\"@x.test", "\xe6\x97\xa5 \xe6\x9c\xac",
	  "x.test", U8 },
	{ " FROM:<a@\xf0\x9f\x98\x80.test>", SMTP_PARSE_OK,
	  "a@\xf0\x9f\x98\x80.test", "a", "\xf0\x9f\x98\x80.test", U8 },
	/* Not "FROM:<...>" at all. */
	FAILS("", SYNTAX),
	FAILS(" ", SYNTAX),
	FAILS("FROM:<a@b.test>", SYNTAX),
	FAILS(" FROM <a@b.test>", SYNTAX),
	FAILS(" FROM:", SYNTAX),
	FAILS(" FROM:  ", SYNTAX),
	FAILS(" TO:<a@b.test>", SYNTAX),
	FAILS(" FROM:<a@b.test", SYNTAX),
	FAILS(" FROM:<a@b.test>x", SYNTAX),
	FAILS(" FROM:\t<a@b.test>", BAD_ADDRESS),
	/* Bad mailboxes. */
	FAILS(" FROM:<a@b.test.>", BAD_ADDRESS),
	FAILS(" FROM:<u@local.>", BAD_ADDRESS),
	FAILS(" FROM:<a@b..test>", BAD_ADDRESS),
	FAILS(" FROM:<a@.b.test>", BAD_ADDRESS),
	FAILS(" FROM:<a@-b.test>", BAD_ADDRESS),
	FAILS(" FROM:<a@b-.test>", BAD_ADDRESS),
	FAILS(" FROM:<a@b_c.test>", BAD_ADDRESS),
	FAILS(" FROM:<a@>", BAD_ADDRESS),
	FAILS(" FROM:<@b.test>", BAD_ADDRESS),
	FAILS(" FROM:<a>", BAD_ADDRESS),
	FAILS(" FROM:<postmaster>", BAD_ADDRESS),
	FAILS(" FROM:<a@@b.test>", BAD_ADDRESS),
	FAILS(" FROM:<a@b@c.test>", BAD_ADDRESS),
	FAILS(" FROM:<.a@b.test>", BAD_ADDRESS),
	FAILS(" FROM:<a.@b.test>", BAD_ADDRESS),
	FAILS(" FROM:<a..b@b.test>", BAD_ADDRESS),
	FAILS(" FROM:< a@b.test>", BAD_ADDRESS),
	FAILS(" FROM:<a@b.test >", BAD_ADDRESS),
	FAILS(" FROM:<a b@b.test>", BAD_ADDRESS),
	FAILS(" FROM:<a(b)@b.test>", BAD_ADDRESS),
	FAILS(" FROM:<<a@b.test>>", BAD_ADDRESS),
	FAILS(" FROM:<\"\"@b.test>", BAD_ADDRESS),
	FAILS(" FROM:<\"a@b.test>", BAD_ADDRESS),
	FAILS(" FROM:<\"a\"b@b.test>", BAD_ADDRESS),
	FAILS(" FROM:<\"a\\\xc3\xa9\"@b.test>", BAD_ADDRESS),
	FAILS(" FROM:<@a.test>", BAD_ADDRESS),
	FAILS(" FROM:<@a.test:>", BAD_ADDRESS),
	FAILS(" FROM:<@a.test,b.test:u@d.test>", BAD_ADDRESS),
	FAILS(" FROM:<@a.test.:u@d.test>", BAD_ADDRESS),
	FAILS(" FROM:<@[1.2.3.4]:u@d.test>", BAD_ADDRESS),
	FAILS(" FROM:a@b.test>", BAD_ADDRESS),
	FAILS(" FROM:a", BAD_ADDRESS),
	FAILS(" FROM:\"a b\"@b.test", BAD_ADDRESS),
	/* Address literals. */
	FAILS(" FROM:<u@[127.0.0.256]>", BAD_ADDRESS),
	FAILS(" FROM:<u@[127.0.0]>", BAD_ADDRESS),
	FAILS(" FROM:<u@[127.0.0.1.]>", BAD_ADDRESS),
	FAILS(" FROM:<u@[IPv6:::1::2]>", BAD_ADDRESS),
	FAILS(" FROM:<u@[IPv6:1.2.3.4]>", BAD_ADDRESS),
	FAILS(" FROM:<u@[IPv6:]>", BAD_ADDRESS),
	FAILS(" FROM:<u@[IPv6:fe80::1%eth0]>", BAD_ADDRESS),
	FAILS(" FROM:<u@[]>", BAD_ADDRESS),
	FAILS(" FROM:<u@[127.0.0.1>", BAD_ADDRESS),
	FAILS(" FROM:<u@[:x]>", BAD_ADDRESS),
	FAILS(" FROM:<u@[tag-:x]>", BAD_ADDRESS),
	FAILS(" FROM:<u@[tag:]>", BAD_ADDRESS),
	FAILS(" FROM:<u@[tag:a[b]>", BAD_ADDRESS),
	FAILS(" FROM:<u@[tag:a b]>", BAD_ADDRESS),
	FAILS(" FROM:<u@[127.0.0.1].test>", BAD_ADDRESS),
	FAILS(" FROM:<u@[1.2.3.4]x>", BAD_ADDRESS),
	/* Invalid UTF-8. */
	FAILS(" FROM:<jos\xc3@x.test>", BAD_ADDRESS),
	FAILS(" FROM:<jos\xa9@x.test>", BAD_ADDRESS),
	FAILS(" FROM:<\xc0\xaf@x.test>", BAD_ADDRESS),
	FAILS(" FROM:<\xed\xa0\x80@x.test>", BAD_ADDRESS),
	FAILS(" FROM:<a@x\xff.test>", BAD_ADDRESS),
	FAILS(" FROM:<\"\xc3\"@x.test>", BAD_ADDRESS),
	FAILS(" FROM:<@\xc3.test:a@x.test>", BAD_ADDRESS),
	/* Control characters in the path. */
	FAILS(" FROM:<a\r@b.test>", BAD_ADDRESS),
	FAILS(" FROM:<a@b.test\r>", BAD_ADDRESS),
	FAILS(" FROM:<a@b\n.test>", BAD_ADDRESS),
	FAILS(" FROM:<a\t@b.test>", BAD_ADDRESS),
	FAILS(" FROM:<a\x7f@b.test>", BAD_ADDRESS),
	FAILS(" FROM:<a\x01@b.test>", BAD_ADDRESS),
	FAILS(" FROM:<\"a\tb\"@b.test>", BAD_ADDRESS),
	FAILS(" FROM:<\"a\\\rb\"@b.test>", BAD_ADDRESS),
	FAILS(" FROM:<\"a\x7f\"@b.test>", BAD_ADDRESS),
	FAILS(" FROM:a\r@b.test", BAD_ADDRESS),
	FAILS(" FROM:<a@b.test>\r", BAD_PARAM),
};

static const struct addr_case rcpt_cases[] = {
	{ " TO:<user@example.test>", SMTP_PARSE_OK,
	  "user@example.test", "user", "example.test", 0 },
	{ " to:<user@example.test>", SMTP_PARSE_OK,
	  "user@example.test", "user", "example.test", 0 },
	{ " TO: <a@b.test>", SMTP_PARSE_OK, "a@b.test", "a", "b.test", 0 },
	{ " TO:a@b.test", SMTP_PARSE_OK, "a@b.test", "a", "b.test", 0 },
	{ " TO:<Postmaster>", SMTP_PARSE_OK, "Postmaster", "postmaster", "",
	  PM },
	{ " TO:<postmaster>", SMTP_PARSE_OK, "postmaster", "postmaster", "",
	  PM },
	{ " TO:<POSTMASTER>", SMTP_PARSE_OK, "POSTMASTER", "postmaster", "",
	  PM },
	{ " TO:Postmaster", SMTP_PARSE_OK, "Postmaster", "postmaster", "", PM },
	{ " TO:<postmaster@b.test>", SMTP_PARSE_OK,
	  "postmaster@b.test", "postmaster", "b.test", 0 },
	{ " TO:<u%remote@local>", SMTP_PARSE_OK,
	  "u%remote@local", "u%remote", "local", 0 },
	{ " TO:<\"u@remote\"@local>", SMTP_PARSE_OK,
	  "\"u@remote\"@local", "u@remote", "local", 0 },
	{ " TO:<@a,@b:user@d>", SMTP_PARSE_OK, "user@d", "user", "d", 0 },
	{ " TO:<remote!u@local>", SMTP_PARSE_OK,
	  "remote!u@local", "remote!u", "local", 0 },
	{ " TO:<u@[127.0.0.1]>", SMTP_PARSE_OK,
	  "u@[127.0.0.1]", "u", "[127.0.0.1]", LIT },
	{ " TO:<u@[IPv6:::1]>", SMTP_PARSE_OK,
	  "u@[IPv6:::1]", "u", "[IPv6:::1]", LIT },
	{ " TO:<\xd0\xb8\xd0\xbc\xd1\x8f@\xd0\xb4\xd0\xbe\xd0\xbc.test>",
	  SMTP_PARSE_OK,
	  "\xd0\xb8\xd0\xbc\xd1\x8f@\xd0\xb4\xd0\xbe\xd0\xbc.test",
	  "\xd0\xb8\xd0\xbc\xd1\x8f", "\xd0\xb4\xd0\xbe\xd0\xbc.test", U8 },
	FAILS(" TO:<>", NULL_PATH),
	FAILS(" TO:<u@local.>", BAD_ADDRESS),
	FAILS(" TO:<postmaster >", BAD_ADDRESS),
	FAILS(" TO:<postmasterx>", BAD_ADDRESS),
	FAILS(" TO:<@a:postmaster>", BAD_ADDRESS),
	FAILS(" TO:<user>", BAD_ADDRESS),
	FAILS(" TO:<a\n@b.test>", BAD_ADDRESS),
	FAILS(" TO:<jos\xe9@x.test>", BAD_ADDRESS),
	FAILS(" FROM:<a@b.test>", SYNTAX),
	FAILS(" TO:", SYNTAX),
	FAILS(" TO:<a@b.test", SYNTAX),
	FAILS(" TO:<Postmaster", BAD_ADDRESS),
};

static void
test_mail_paths(void **state)
{
	(void)state;
	for (size_t i = 0; i < NELEM(mail_cases); i++) {
		const struct addr_case *c = &mail_cases[i];
		struct smtp_mail_args m;

		check_case("MAIL", c, smtp_parse_mail(c->arg, &m), &m.from);
	}
}

static void
test_rcpt_paths(void **state)
{
	(void)state;
	for (size_t i = 0; i < NELEM(rcpt_cases); i++) {
		const struct addr_case *c = &rcpt_cases[i];
		struct smtp_rcpt_args r;

		check_case("RCPT", c, smtp_parse_rcpt(c->arg, &r), &r.to);
	}
}

/* Builds " FROM:<" local "@" domain ">" from repeated characters. */
static void
make_path(char *buf, size_t size, size_t local_len, size_t domain_len)
{
	size_t n = 0;

	assert_true(local_len + domain_len + 10 < size);
	n += (size_t)snprintf(buf + n, size - n, " FROM:<");
	memset(buf + n, 'l', local_len);
	n += local_len;
	buf[n++] = '@';
	/* Labels of 50 octets keep each under the 63-octet limit. */
	for (size_t i = 0; i < domain_len; i++)
		buf[n++] = (i % 51 == 50) ? '.' : 'd';
	buf[n++] = '>';
	buf[n] = '\0';
}

static void
test_length_limits(void **state)
{
	struct smtp_mail_args m;
	char buf[1400];

	(void)state;
	make_path(buf, sizeof(buf), 64, 10);
	assert_int_equal(smtp_parse_mail(buf, &m), SMTP_PARSE_OK);
	assert_int_equal(strlen(m.from.local), 64);
	make_path(buf, sizeof(buf), 65, 10);
	assert_int_equal(smtp_parse_mail(buf, &m), SMTP_PARSE_TOO_LONG);

	/* "<" 64 "@" 189 ">" is exactly 256 octets. */
	make_path(buf, sizeof(buf), 64, 189);
	assert_int_equal(smtp_parse_mail(buf, &m), SMTP_PARSE_OK);
	assert_int_equal(strlen(m.from.text), 254);
	make_path(buf, sizeof(buf), 64, 190);
	assert_int_equal(smtp_parse_mail(buf, &m), SMTP_PARSE_TOO_LONG);

	/* Bare paths are measured as if bracketed. */
	make_path(buf, sizeof(buf), 64, 189);
	buf[strlen(buf) - 1] = '\0';
	buf[6] = ' ';
	assert_int_equal(smtp_parse_mail(buf, &m), SMTP_PARSE_OK);
	make_path(buf, sizeof(buf), 64, 190);
	buf[strlen(buf) - 1] = '\0';
	buf[6] = ' ';
	assert_int_equal(smtp_parse_mail(buf, &m), SMTP_PARSE_TOO_LONG);

	make_path(buf, sizeof(buf), 1, 256);
	assert_int_equal(smtp_parse_mail(buf, &m), SMTP_PARSE_TOO_LONG);
	make_path(buf, sizeof(buf), 1, 300);
	assert_int_equal(smtp_parse_mail(buf, &m), SMTP_PARSE_TOO_LONG);
	make_path(buf, sizeof(buf), 600, 600);
	assert_int_equal(smtp_parse_mail(buf, &m), SMTP_PARSE_TOO_LONG);
}

static void
test_label_and_quote_limits(void **state)
{
	struct smtp_mail_args m;
	char buf[512];
	char label[65];

	(void)state;
	memset(label, 'x', 64);
	label[64] = '\0';
	snprintf(buf, sizeof(buf), " FROM:<a@%.63s.test>", label);
	assert_int_equal(smtp_parse_mail(buf, &m), SMTP_PARSE_OK);
	snprintf(buf, sizeof(buf), " FROM:<a@%s.test>", label);
	assert_int_equal(smtp_parse_mail(buf, &m), SMTP_PARSE_BAD_ADDRESS);
	snprintf(buf, sizeof(buf), " FROM:<a@test.%s>", label);
	assert_int_equal(smtp_parse_mail(buf, &m), SMTP_PARSE_BAD_ADDRESS);

	/* The limit is on the local part as sent, quotes included. */
	snprintf(buf, sizeof(buf), " FROM:<\"%.62s\"@x.test>", label);
	assert_int_equal(smtp_parse_mail(buf, &m), SMTP_PARSE_OK);
	assert_int_equal(strlen(m.from.local), 62);
	snprintf(buf, sizeof(buf), " FROM:<\"%.63s\"@x.test>", label);
	assert_int_equal(smtp_parse_mail(buf, &m), SMTP_PARSE_TOO_LONG);

	/* The source route counts toward the path, not the text. */
	snprintf(buf, sizeof(buf), " FROM:<@%.60s,@%.60s,@%.60s:a@b.test>",
	    label, label, label);
	assert_int_equal(smtp_parse_mail(buf, &m), SMTP_PARSE_OK);
	assert_string_equal(m.from.text, "a@b.test");
	snprintf(buf, sizeof(buf),
	    " FROM:<@%.60s,@%.60s,@%.60s,@%.60s:a@b.test>",
	    label, label, label, label);
	assert_int_equal(smtp_parse_mail(buf, &m), SMTP_PARSE_TOO_LONG);
}

static void
test_mail_params(void **state)
{
	struct smtp_mail_args m;

	(void)state;
	assert_int_equal(smtp_parse_mail(" FROM:<a@b.test>", &m),
	    SMTP_PARSE_OK);
	assert_false(m.has_size);
	assert_int_equal(m.body, SMTP_BODY_UNSET);
	assert_false(m.smtputf8);
	assert_int_equal(m.ret, SMTP_RET_UNSET);
	assert_string_equal(m.envid, "");
	assert_string_equal(m.auth, "");

	assert_int_equal(smtp_parse_mail(" FROM:<a@b.test> SIZE=12345 "
	    "BODY=8bitmime SMTPUTF8 RET=hdrs ENVID=QQ+2B1 AUTH=<>", &m),
	    SMTP_PARSE_OK);
	assert_true(m.has_size);
	assert_true(m.size == 12345);
	assert_int_equal(m.body, SMTP_BODY_8BITMIME);
	assert_true(m.smtputf8);
	assert_int_equal(m.ret, SMTP_RET_HDRS);
	assert_string_equal(m.envid, "QQ+2B1");
	assert_string_equal(m.auth, "<>");

	assert_int_equal(smtp_parse_mail(" FROM:<a@b.test>  size=0   "
	    "body=7BIT  ret=FULL  ", &m), SMTP_PARSE_OK);
	assert_true(m.has_size);
	assert_true(m.size == 0);
	assert_int_equal(m.body, SMTP_BODY_7BIT);
	assert_int_equal(m.ret, SMTP_RET_FULL);

	assert_int_equal(smtp_parse_mail(" FROM:a@b.test SIZE=10", &m),
	    SMTP_PARSE_OK);
	assert_true(m.size == 10);
	assert_int_equal(smtp_parse_mail(" FROM:<> SIZE=10", &m),
	    SMTP_PARSE_OK);
	assert_string_equal(m.from.text, "");
	assert_int_equal(smtp_parse_mail(
	    " FROM:<a@b.test> SIZE=18446744073709551615", &m), SMTP_PARSE_OK);
	assert_true(m.size == UINT64_MAX);
	/* Well-formed but past 2^64-1: saturates (the server says 552). */
	assert_int_equal(smtp_parse_mail(
	    " FROM:<a@b.test> SIZE=99999999999999999999", &m), SMTP_PARSE_OK);
	assert_true(m.size == UINT64_MAX);
	assert_int_equal(smtp_parse_mail(
	    " FROM:<a@b.test> SIZE=00000000000000000001", &m), SMTP_PARSE_OK);
	assert_true(m.size == 1);
	assert_int_equal(smtp_parse_mail(
	    " FROM:<a@b.test> AUTH=e+3Dmc2@example.test", &m), SMTP_PARSE_OK);
	assert_string_equal(m.auth, "e+3Dmc2@example.test");
}

struct status_case {
	const char *arg;
	enum smtp_parse_status st;
};

static void
check_status(const char *what, const struct status_case *c,
    enum smtp_parse_status got)
{
	if (got != c->st)
		show_case(what, c->arg);
	assert_int_equal(got, c->st);
}

static const struct status_case mail_param_cases[] = {
	{ " FROM:<a@b.test> SIZE=000000000000000000001", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> SIZE=", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> SIZE", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> SIZE=-1", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> SIZE=1k", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> SIZE=+1", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> SIZE=1 SIZE=1", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> SIZE=1 size=2", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> BODY=BINARYMIME", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> BODY=8BIT", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> BODY", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> BODY=7BIT BODY=7BIT", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> SMTPUTF8=yes", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> SMTPUTF8 SMTPUTF8", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> RET=NONE", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> RET", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> ENVID=a+2b", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> ENVID=a+2", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> ENVID=a+", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> ENVID=a+GG", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> ENVID=a\xc3\xa9", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> ENVID", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> AUTH", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> AUTH=a+zz", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> NOTIFY=NEVER", SMTP_PARSE_UNKNOWN_PARAM },
	{ " FROM:<a@b.test> ORCPT=rfc822;a@b", SMTP_PARSE_UNKNOWN_PARAM },
	{ " FROM:<a@b.test> X-FOO=1", SMTP_PARSE_UNKNOWN_PARAM },
	{ " FROM:<a@b.test> XFOO", SMTP_PARSE_UNKNOWN_PARAM },
	{ " FROM:<a@b.test> SIZE2=1", SMTP_PARSE_UNKNOWN_PARAM },
	{ " FROM:<a@b.test> X=1 SIZE=x", SMTP_PARSE_UNKNOWN_PARAM },
	{ " FROM:<a@b.test> SIZE=x X=1", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> -X=1", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> =1", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> X_Y=1", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> X=a=b", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> SIZE=1\r", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> SIZE=1\tBODY=7BIT", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> SIZE=1\n", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> SIZE\x7f=1", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> X=a\x7f", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> X=a\x01", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> X=\xc3", SMTP_PARSE_BAD_PARAM },
	{ " FROM:<a@b.test> X=\xc3\xa9", SMTP_PARSE_UNKNOWN_PARAM },
	{ " FROM:<a@b.test> \r", SMTP_PARSE_BAD_PARAM },
	{ " FROM:a@b.test\tSIZE=1", SMTP_PARSE_BAD_ADDRESS },
};

static const struct status_case rcpt_param_cases[] = {
	{ " TO:<a@b.test> NOTIFY=NEVER,SUCCESS", SMTP_PARSE_BAD_PARAM },
	{ " TO:<a@b.test> NOTIFY=SUCCESS,NEVER", SMTP_PARSE_BAD_PARAM },
	{ " TO:<a@b.test> NOTIFY=SUCCESS,SUCCESS", SMTP_PARSE_BAD_PARAM },
	{ " TO:<a@b.test> NOTIFY=SUCCESS,", SMTP_PARSE_BAD_PARAM },
	{ " TO:<a@b.test> NOTIFY=,SUCCESS", SMTP_PARSE_BAD_PARAM },
	{ " TO:<a@b.test> NOTIFY=SUCCESS,,DELAY", SMTP_PARSE_BAD_PARAM },
	{ " TO:<a@b.test> NOTIFY=ALWAYS", SMTP_PARSE_BAD_PARAM },
	{ " TO:<a@b.test> NOTIFY", SMTP_PARSE_BAD_PARAM },
	{ " TO:<a@b.test> NOTIFY=DELAY NOTIFY=DELAY", SMTP_PARSE_BAD_PARAM },
	{ " TO:<a@b.test> ORCPT", SMTP_PARSE_BAD_PARAM },
	{ " TO:<a@b.test> ORCPT=rfc822", SMTP_PARSE_BAD_PARAM },
	{ " TO:<a@b.test> ORCPT=rfc822;", SMTP_PARSE_BAD_PARAM },
	{ " TO:<a@b.test> ORCPT=;a@b.test", SMTP_PARSE_BAD_PARAM },
	{ " TO:<a@b.test> ORCPT=rfc822;a+2", SMTP_PARSE_BAD_PARAM },
	{ " TO:<a@b.test> ORCPT=rfc822;a\xc3\xa9", SMTP_PARSE_BAD_PARAM },
	{ " TO:<a@b.test> ORCPT=rfc(822;a", SMTP_PARSE_BAD_PARAM },
	{ " TO:<a@b.test> ORCPT=rfc822;a ORCPT=rfc822;b",
	  SMTP_PARSE_BAD_PARAM },
	{ " TO:<a@b.test> SIZE=1", SMTP_PARSE_UNKNOWN_PARAM },
	{ " TO:<a@b.test> BODY=7BIT", SMTP_PARSE_UNKNOWN_PARAM },
	{ " TO:<a@b.test> X=\r", SMTP_PARSE_BAD_PARAM },
	{ " TO:<a@b.test>\nRCPT TO:<c@d.test>", SMTP_PARSE_BAD_PARAM },
};

static void
test_bad_params(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(mail_param_cases); i++) {
		const struct status_case *c = &mail_param_cases[i];
		struct smtp_mail_args m;

		check_status("MAIL", c, smtp_parse_mail(c->arg, &m));
	}
	for (i = 0; i < NELEM(rcpt_param_cases); i++) {
		const struct status_case *c = &rcpt_param_cases[i];
		struct smtp_rcpt_args r;

		check_status("RCPT", c, smtp_parse_rcpt(c->arg, &r));
	}
}

static void
test_xtext_limits(void **state)
{
	struct smtp_mail_args m;
	struct smtp_rcpt_args r;
	char buf[1024];
	char val[600];

	(void)state;
	memset(val, 'e', sizeof(val));
	snprintf(buf, sizeof(buf), " FROM:<a@b.test> ENVID=%.100s", val);
	assert_int_equal(smtp_parse_mail(buf, &m), SMTP_PARSE_OK);
	assert_int_equal(strlen(m.envid), 100);
	snprintf(buf, sizeof(buf), " FROM:<a@b.test> ENVID=%.101s", val);
	assert_int_equal(smtp_parse_mail(buf, &m), SMTP_PARSE_BAD_PARAM);
	snprintf(buf, sizeof(buf), " FROM:<a@b.test> AUTH=%.256s", val);
	assert_int_equal(smtp_parse_mail(buf, &m), SMTP_PARSE_OK);
	assert_int_equal(strlen(m.auth), 256);
	snprintf(buf, sizeof(buf), " FROM:<a@b.test> AUTH=%.257s", val);
	assert_int_equal(smtp_parse_mail(buf, &m), SMTP_PARSE_BAD_PARAM);
	snprintf(buf, sizeof(buf), " TO:<a@b.test> ORCPT=rfc822;%.493s", val);
	assert_int_equal(smtp_parse_rcpt(buf, &r), SMTP_PARSE_OK);
	assert_int_equal(strlen(r.orcpt), 500);
	snprintf(buf, sizeof(buf), " TO:<a@b.test> ORCPT=rfc822;%.494s", val);
	assert_int_equal(smtp_parse_rcpt(buf, &r), SMTP_PARSE_BAD_PARAM);
}

static void
test_rcpt_params(void **state)
{
	struct smtp_rcpt_args r;

	(void)state;
	assert_int_equal(smtp_parse_rcpt(" TO:<a@b.test>", &r), SMTP_PARSE_OK);
	assert_int_equal(r.notify, 0);
	assert_string_equal(r.orcpt, "");

	assert_int_equal(smtp_parse_rcpt(" TO:<a@b.test> NOTIFY=NEVER", &r),
	    SMTP_PARSE_OK);
	assert_int_equal(r.notify, SMTP_NOTIFY_NEVER);
	assert_int_equal(smtp_parse_rcpt(
	    " TO:<a@b.test> notify=success,Failure,DELAY "
	    "ORCPT=rfc822;a+2Bb@b.test", &r), SMTP_PARSE_OK);
	assert_int_equal(r.notify, SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE |
	    SMTP_NOTIFY_DELAY);
	assert_string_equal(r.orcpt, "rfc822;a+2Bb@b.test");
	assert_int_equal(smtp_parse_rcpt(" TO:<a@b.test> NOTIFY=DELAY", &r),
	    SMTP_PARSE_OK);
	assert_int_equal(r.notify, SMTP_NOTIFY_DELAY);
	assert_int_equal(smtp_parse_rcpt(
	    " TO:<Postmaster> NOTIFY=FAILURE", &r), SMTP_PARSE_OK);
	assert_true(r.to.is_postmaster);
	assert_int_equal(r.notify, SMTP_NOTIFY_FAILURE);
	assert_int_equal(smtp_parse_rcpt(
	    " TO:<a@b.test> ORCPT=utf-8;a\\x{E9}@b.test", &r), SMTP_PARSE_OK);
	assert_string_equal(r.orcpt, "utf-8;a\\x{E9}@b.test");
}

static const struct addr_case mailbox_cases[] = {
	{ "user@example.test", SMTP_PARSE_OK,
	  "user@example.test", "user", "example.test", 0 },
	{ "\"a b\"@x.test", SMTP_PARSE_OK, "\"a b\"@x.test", "a b", "x.test",
	  0 },
	{ "u@[192.0.2.1]", SMTP_PARSE_OK, "u@[192.0.2.1]", "u", "[192.0.2.1]",
	  LIT },
	{ "\xc3\xa9@x.test", SMTP_PARSE_OK, "\xc3\xa9@x.test", "\xc3\xa9",
	  "x.test", U8 },
	FAILS("", BAD_ADDRESS),
	FAILS("user", BAD_ADDRESS),
	FAILS("postmaster", BAD_ADDRESS),
	FAILS("<user@example.test>", BAD_ADDRESS),
	FAILS("user@example.test ", BAD_ADDRESS),
	FAILS(" user@example.test", BAD_ADDRESS),
	FAILS("user@example.test.", BAD_ADDRESS),
	FAILS("@a:user@example.test", BAD_ADDRESS),
	FAILS("u\r@x.test", BAD_ADDRESS),
	FAILS("\xc3@x.test", BAD_ADDRESS),
};

static void
test_mailbox(void **state)
{
	struct smtp_address a;
	char buf[400];

	(void)state;
	for (size_t i = 0; i < NELEM(mailbox_cases); i++) {
		const struct addr_case *c = &mailbox_cases[i];

		check_case("mailbox ", c, smtp_parse_mailbox(c->arg, &a), &a);
	}
	make_path(buf, sizeof(buf), 65, 5);
	buf[strlen(buf) - 1] = '\0';
	assert_int_equal(smtp_parse_mailbox(buf + 7, &a), SMTP_PARSE_TOO_LONG);
	make_path(buf, sizeof(buf), 64, 190);
	buf[strlen(buf) - 1] = '\0';
	assert_int_equal(smtp_parse_mailbox(buf + 7, &a), SMTP_PARSE_TOO_LONG);
	make_path(buf, sizeof(buf), 64, 189);
	buf[strlen(buf) - 1] = '\0';
	assert_int_equal(smtp_parse_mailbox(buf + 7, &a), SMTP_PARSE_OK);
}

static void
test_helo(void **state)
{
	static const char *good[] = {
		"mail.example.test", "localhost", "EXAMPLE.TEST", "a",
		"x-y.test", "host_name.example.test", "_x.test",
		"192.0.2.1", "[192.0.2.1]", "[IPv6:2001:db8::1]",
		"[IPv6:::1]", "[tag:stuff]", ("b\xc3\xbc" "cher.test"),
		"1.2.3", "123",
	};
	static const char *bad[] = {
		"", " ", "a b", "a.test ", " a.test", "a..test", ".a.test",
		"a.test.", "-a.test", "a-.test", "a\r", "a\n", "a\tb",
		"a\x7f", "[192.0.2.1", "192.0.2.1]", "[192.0.2.256]",
		"[IPv6:::1::1]", "[]", "a@b.test", "<a.test>",
		("b\xfc" "cher.test"), "a/b", "\xc3",
	};
	char buf[300];

	(void)state;
	for (size_t i = 0; i < NELEM(good); i++) {
		bool ok = smtp_valid_helo(good[i]);

		if (!ok)
			show_case("helo good ", good[i]);
		assert_true(ok);
	}
	for (size_t i = 0; i < NELEM(bad); i++) {
		bool ok = smtp_valid_helo(bad[i]);

		if (ok)
			show_case("helo bad ", bad[i]);
		assert_false(ok);
	}
	/* 255 octets in labels of 49 is fine, 256 is not. */
	for (size_t i = 0; i < 256; i++)
		buf[i] = (i % 50 == 49) ? '.' : 'h';
	buf[255] = '\0';
	assert_true(smtp_valid_helo(buf));
	buf[255] = 'h';
	buf[256] = '\0';
	assert_false(smtp_valid_helo(buf));
	memset(buf, 'h', 64);
	buf[64] = '\0';
	assert_false(smtp_valid_helo(buf));
	buf[63] = '\0';
	assert_true(smtp_valid_helo(buf));
}

static void
test_utf8(void **state)
{
	static const char *good[] = {
		"", "ascii", "\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80",
		"\xed\x9f\xbf", "\xee\x80\x80", "\xef\xbf\xbf",
		"\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf", "caf\xc3\xa9",
	};
	static const char *bad[] = {
		"\x80", "\xbf", "\xc0\x80", "\xc1\xbf", "\xc2", "\xc2\x41",
		"\xe0\x80\x80", "\xe0\x9f\xbf", "\xed\xa0\x80", "\xed\xbf\xbf",
		"\xe1\x80", "\xf0\x80\x80\x80", "\xf0\x8f\xbf\xbf",
		"\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff", "\xfe",
		"\xf0\x90\x80", "a\xc3\xa9\xc3",
	};

	(void)state;
	for (size_t i = 0; i < NELEM(good); i++)
		assert_true(smtp_valid_utf8(good[i], strlen(good[i])));
	for (size_t i = 0; i < NELEM(bad); i++) {
		bool ok = smtp_valid_utf8(bad[i], strlen(bad[i]));

		if (ok)
			show_case("utf8 bad ", bad[i]);
		assert_false(ok);
	}
	/* The length bounds the check: a cut sequence is invalid. */
	assert_false(smtp_valid_utf8("\xc3\xa9", 1));
	assert_true(smtp_valid_utf8("a\0b", 3));
}

static void
test_status_text(void **state)
{
	(void)state;
	for (int st = SMTP_PARSE_OK; st <= SMTP_PARSE_BAD_PARAM; st++) {
		const char *t = smtp_parse_status_text(st);

		assert_non_null(t);
		assert_true(strlen(t) > 0);
	}
}

/* A NUL-free input cannot make the parsers read past its terminator:
 * every prefix of a valid line is parsed from an exactly-sized copy, so
 * ASan would see an overread. Also checks no prefix is accepted wrongly
 * as a different address. */
static void
test_prefixes(void **state)
{
	static const char *lines[] = {
		(" FROM:<@a.test,@b.test:\"x\\\"y\"@[IPv6:::1]> SIZE=1 "
		"ENVID=a+2B AUTH=<>"),
		" FROM:a@b.test BODY=8BITMIME",
		" TO:<Postmaster> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;a",
	};
	char buf[256];

	(void)state;
	for (size_t i = 0; i < NELEM(lines); i++) {
		size_t n = strlen(lines[i]);

		for (size_t k = 0; k <= n; k++) {
			struct smtp_mail_args m;
			struct smtp_rcpt_args r;
			struct smtp_address a;

			memcpy(buf, lines[i], k);
			buf[k] = '\0';
			(void)smtp_parse_mail(buf, &m);
			(void)smtp_parse_rcpt(buf, &r);
			(void)smtp_parse_mailbox(buf, &a);
			(void)smtp_valid_helo(buf);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mail_paths),
		cmocka_unit_test(test_rcpt_paths),
		cmocka_unit_test(test_length_limits),
		cmocka_unit_test(test_label_and_quote_limits),
		cmocka_unit_test(test_mail_params),
		cmocka_unit_test(test_bad_params),
		cmocka_unit_test(test_xtext_limits),
		cmocka_unit_test(test_rcpt_params),
		cmocka_unit_test(test_mailbox),
		cmocka_unit_test(test_helo),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_status_text),
		cmocka_unit_test(test_prefixes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
