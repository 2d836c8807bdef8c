/* Unit tests for src/queue/dsn.c: xtext, the DSN parameters, envelope
 * lines, who is notified, and reports parsed back with GMime. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <gmime/gmime.h>

#include "core/buf.h"
#include "queue/dsn.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

#define T_ARRIVAL	1767225600	/* Thu, 01 Jan 2026 00:00:00 +0000 */
#define T_LAST		1767229200	/* Thu, 01 Jan 2026 01:00:00 +0000 */
#define T_UNTIL		1767657600	/* Tue, 06 Jan 2026 00:00:00 +0000 */
#define T_NOW		1767240000	/* Thu, 01 Jan 2026 04:00:00 +0000 */

static const char orig_msg[] =
	"From: Alice <alice@example.com>\r\n"
	"To: bob@example.org\r\n"
	"Subject: Lunch\r\n"
	"Message-ID: <orig-1@example.com>\r\n"
	"\r\n"
	"See you at noon.\r\n"
	"-- \r\n"
	"Alice\r\n";
static const char orig_headers[] =
	"From: Alice <alice@example.com>\r\n"
	"To: bob@example.org\r\n"
	"Subject: Lunch\r\n"
	"Message-ID: <orig-1@example.com>\r\n";

/* ---- xtext ------------------------------------------------------------ */

static void
test_xtext_round_trip(void **state)
{
	unsigned char all[256];
	struct buf enc = BUF_INIT, dec = BUF_INIT;
	const char *err = NULL;

	(void)state;
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	dsn_xtext_encode(all, sizeof(all), &enc);
	assert_true(dsn_xtext_valid(enc.data, enc.len));
	/* 94 xchars but "+" and "=" stay, the other 164 octets take 3. */
	assert_int_equal(enc.len, 92 + 164 * 3);
	assert_int_equal(dsn_xtext_decode(enc.data, enc.len, &dec, &err), 0);
	assert_int_equal(dec.len, 256);
	assert_memory_equal(dec.data, all, 256);

	buf_reset(&enc);
	dsn_xtext_encode("a b=c+d", 7, &enc);
	assert_string_equal(buf_cstr(&enc), "a+20b+3Dc+2Bd");
	buf_reset(&dec);
	assert_int_equal(dsn_xtext_decode("+41b+2B", 7, &dec, &err), 0);
	assert_string_equal(buf_cstr(&dec), "Ab+");
	buf_reset(&dec);
	assert_int_equal(dsn_xtext_decode("", 0, &dec, &err), 0);
	assert_int_equal(dec.len, 0);
	buf_free(&enc);
	buf_free(&dec);
}

static void
test_xtext_invalid(void **state)
{
	static const char *const bad[] = {
		"+2b", "+", "+2", "a+", "a+G0", "+g0", "a b", "a=b", "\x80",
		"tab\t", "x\r\n", "+ 20", "\x7f",
	};
	struct buf dec = BUF_INIT;
	const char *err;

	(void)state;
	buf_puts(&dec, "kept");
	for (size_t i = 0; i < NELEM(bad); i++) {
		err = NULL;
		assert_false(dsn_xtext_valid(bad[i], strlen(bad[i])));
		assert_int_equal(dsn_xtext_decode(bad[i], strlen(bad[i]), &dec,
		    &err), -1);
		assert_non_null(err);
		/* What was there before stays; nothing half-decoded. */
		assert_string_equal(buf_cstr(&dec), "kept");
	}
	/* NUL inside the given length is not xtext either. */
	assert_false(dsn_xtext_valid("a\0b", 3));
	assert_true(dsn_xtext_valid("a+00b", 5));
	buf_free(&dec);
}

/* ---- parameters -------------------------------------------------------- */

static void
test_notify(void **state)
{
	static const struct {
		const char *s;
		unsigned bits;
	} good[] = {
		{ "NEVER", DSN_NOTIFY_NEVER },
		{ "never", DSN_NOTIFY_NEVER },
		{ "SUCCESS", DSN_NOTIFY_SUCCESS },
		{ "Failure", DSN_NOTIFY_FAILURE },
		{ "DELAY", DSN_NOTIFY_DELAY },
		{ "SUCCESS,FAILURE,DELAY", DSN_NOTIFY_SUCCESS |
		    DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY },
		{ "delay,failure", DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY },
	};
	static const char *const bad[] = {
		"", "NEVER,SUCCESS", "FAILURE,NEVER", "SUCCESS,SUCCESS",
		"SUCCESS,", ",SUCCESS", "SUCCESS,,DELAY", "FOO",
		"SUCCESS FAILURE",
		"SUCCES", "NEVERX", " NEVER", "DELAY;FAILURE",
	};
	const char *err;
	unsigned bits;

	(void)state;
	for (size_t i = 0; i < NELEM(good); i++) {
		bits = 0;
		assert_int_equal(dsn_notify_parse(good[i].s, strlen(good[i].s),
		    &bits, &err), 0);
		assert_int_equal(bits, good[i].bits);
	}
	for (size_t i = 0; i < NELEM(bad); i++) {
		err = NULL;
		assert_int_equal(dsn_notify_parse(bad[i], strlen(bad[i]), &bits,
		    &err), -1);
		assert_non_null(err);
	}
	assert_int_equal(dsn_notify_parse("NEVER\0", 6, &bits, &err), -1);
	/* Every valid combination formats to a value that parses back. */
	for (unsigned b = 0; b < 32; b++) {
		struct buf f = BUF_INIT;
		bool valid = b != 0 && b < 16 && (!(b & 1) || b == 1);

		assert_int_equal(dsn_notify_valid(b), valid);
		if (!valid)
			continue;
		dsn_notify_format(b, &f);
		assert_int_equal(dsn_notify_parse(f.data, f.len, &bits, &err),
		    0);
		assert_int_equal(bits, b);
		buf_free(&f);
	}
}

static void
test_ret(void **state)
{
	static const char *const bad[] = { "", "FUL", "FULLY", "HDR", "HEADERS",
	    " FULL", "FULL " };
	enum dsn_ret ret = DSN_RET_UNSET;
	const char *err;

	(void)state;
	assert_int_equal(dsn_ret_parse("FULL", 4, &ret, &err), 0);
	assert_int_equal(ret, DSN_RET_FULL);
	assert_int_equal(dsn_ret_parse("hdrs", 4, &ret, &err), 0);
	assert_int_equal(ret, DSN_RET_HDRS);
	for (size_t i = 0; i < NELEM(bad); i++) {
		err = NULL;
		assert_int_equal(dsn_ret_parse(bad[i], strlen(bad[i]), &ret,
		    &err), -1);
		assert_non_null(err);
	}
	assert_string_equal(dsn_ret_name(DSN_RET_FULL), "FULL");
	assert_string_equal(dsn_ret_name(DSN_RET_HDRS), "HDRS");
	assert_string_equal(dsn_ret_name(DSN_RET_UNSET), "");
}

static void
test_envid(void **state)
{
	static const struct {
		const char *in;
		const char *stored;
	} good[] = {
		{ "QQ314159", "QQ314159" },
		{ "a+2Bb", "a+2Bb" },
		{ "+41+42", "AB" },
		{ "x+20y", "x+20y" },
		{ "+7E", "~" },
	};
	static const char *const bad[] = {
		"", "a b", "a=b", "+2b", "+00", "+0A", "+7F", "+C3+A9",
		"\xc3\xa9",
	};
	char out[DSN_ENVID_MAX + 1], big[DSN_ENVID_MAX + 2];
	const char *err;

	(void)state;
	for (size_t i = 0; i < NELEM(good); i++) {
		assert_int_equal(dsn_envid_parse(good[i].in, strlen(good[i].in),
		    out, &err), 0);
		assert_string_equal(out, good[i].stored);
	}
	for (size_t i = 0; i < NELEM(bad); i++) {
		err = NULL;
		assert_int_equal(dsn_envid_parse(bad[i], strlen(bad[i]), out,
		    &err), -1);
		assert_non_null(err);
	}
	memset(big, 'e', sizeof(big));
	assert_int_equal(dsn_envid_parse(big, DSN_ENVID_MAX, out, &err), 0);
	assert_int_equal(strlen(out), DSN_ENVID_MAX);
	assert_int_equal(dsn_envid_parse(big, DSN_ENVID_MAX + 1, out, &err),
	    -1);
	assert_string_equal(err, "ENVID is longer than 100 characters");
}

static void
test_orcpt_valid(void **state)
{
	static const struct {
		const char *in;
		bool smtputf8;
		const char *stored;
		const char *type;
		const char *addr;
	} good[] = {
		{ "rfc822;bob@example.org", false, "rfc822;bob@example.org",
		    "rfc822", "bob@example.org" },
		{ "RFC822;Bob+2Bx@Example.org", false,
		    "rfc822;Bob+2Bx@Example.org", "rfc822",
		    "Bob+x@Example.org" },
		{ "rfc822;+62ob@x", false, "rfc822;bob@x", "rfc822", "bob@x" },
		{ "rfc822;+22a+20b+22@x", false, "rfc822;\"a+20b\"@x", "rfc822",
		    "\"a b\"@x" },
		{ "X400;c+3Dus;a+3Dx", false, "x400;c+3Dus;a+3Dx", "x400",
		    "c=us;a=x" },
		{ "utf-8;j\\x{F6}rg@example.org", false,
		    "utf-8;j\\x{F6}rg@example.org", "utf-8",
		    "j\xc3\xb6rg@example.org" },
		{ "UTF-8;j\\x{f6}rg@example.org", false,
		    "utf-8;j\\x{F6}rg@example.org", "utf-8",
		    "j\xc3\xb6rg@example.org" },
		{ "utf-8;j\xc3\xb6rg@example.org", true,
		    "utf-8;j\\x{F6}rg@example.org", "utf-8",
		    "j\xc3\xb6rg@example.org" },
		{ "utf-8;\xe7\x94\xa8\xe6\x88\xb7@x", true,
		    "utf-8;\\x{7528}\\x{6237}@x", "utf-8",
		    "\xe7\x94\xa8\xe6\x88\xb7@x" },
		{ "utf-8;\\x{1F600}@x", false, "utf-8;\\x{1F600}@x", "utf-8",
		    "\xf0\x9f\x98\x80@x" },
		{ "utf-8;a\\x{2B}b@x", false, "utf-8;a\\x{2B}b@x", "utf-8",
		    "a+b@x" },
		{ "utf-8;a+2Bb@x", false, "utf-8;a\\x{2B}b@x", "utf-8",
		    "a+b@x" },
		{ "utf-8;\"a\\x{20}b\\x{5C}c\"@x", false,
		    "utf-8;\"a\\x{20}b\\x{5C}c\"@x", "utf-8", "\"a b\\c\"@x" },
		{ "utf-8;+C3+B6@x", false, "utf-8;\\x{F6}@x", "utf-8",
		    "\xc3\xb6@x" },
		{ "rfc822;bob@example.org", true, "rfc822;bob@example.org",
		    "rfc822", "bob@example.org" },
	};
	const char *err;

	(void)state;
	for (size_t i = 0; i < NELEM(good); i++) {
		struct buf out = BUF_INIT, type = BUF_INIT, addr = BUF_INIT;

		print_message("orcpt %s\n", good[i].in);
		assert_int_equal(dsn_orcpt_parse(good[i].in, strlen(good[i].in),
		    good[i].smtputf8, &out, &err), 0);
		assert_string_equal(buf_cstr(&out), good[i].stored);
		assert_int_equal(dsn_orcpt_decode(out.data, out.len, &type,
		    &addr, &err), 0);
		assert_string_equal(buf_cstr(&type), good[i].type);
		assert_string_equal(buf_cstr(&addr), good[i].addr);
		buf_free(&out);
		buf_free(&type);
		buf_free(&addr);
	}
}

static void
test_orcpt_invalid(void **state)
{
	static const struct {
		const char *in;
		bool smtputf8;
	} bad[] = {
		{ "", false }, { "rfc822", false }, { "rfc822;", false },
		{ ";bob@x", false }, { "rfc 822;bob@x", false },
		{ "rfc822;a b@x", false }, { "rfc822;+0D+0Abcc@x", false },
		{ "rfc822;+C3+A9@x", false }, { "rfc822;a=b", false },
		{ "rfc822;+2b", false }, { "rfc\xc3\xa9;x", true },
		{ "utf-8;j\xc3\xb6rg@x", false },	/* raw, no SMTPUTF8 */
		{ "utf-8;\\x{41}@x", false },		/* "A" as itself */
		{ "utf-8;\\x{D800}@x", false },
		{ "utf-8;\\x{110000}@x", false },
		{ "utf-8;\\x{0F6}@x", false },		/* leading zero */
		{ "utf-8;\\x{}@x", false },
		{ "utf-8;\\x{F6@x", false },
		{ "utf-8;\\xF6@x", false },
		{ "utf-8;\\x{1234567}@x", false },
		{ "utf-8;a+b@x", false },
		{ "utf-8;a=b@x", false },
		{ "utf-8;a b@x", true },
		{ "utf-8;\\x{A}@x", false },		/* a control */
		{ "utf-8;\\x{7F}@x", false },
		{ "utf-8;+C3@x", false },		/* a broken sequence */
		{ "utf-8;\xc3@x", true },
		{ "utf-8;\xed\xa0\x80@x", true },	/* a surrogate */
	};
	char big[DSN_ORCPT_MAX + 2];
	struct buf out = BUF_INIT;
	const char *err;

	(void)state;
	for (size_t i = 0; i < NELEM(bad); i++) {
		err = NULL;
		print_message("orcpt %s\n", bad[i].in);
		assert_int_equal(dsn_orcpt_parse(bad[i].in, strlen(bad[i].in),
		    bad[i].smtputf8, &out, &err), -1);
		assert_non_null(err);
		assert_int_equal(out.len, 0);
	}
	memcpy(big, "rfc822;", 7);
	memset(big + 7, 'b', sizeof(big) - 7);
	assert_int_equal(dsn_orcpt_parse(big, DSN_ORCPT_MAX, false, &out, &err),
	    0);
	assert_int_equal(out.len, DSN_ORCPT_MAX);
	buf_reset(&out);
	assert_int_equal(dsn_orcpt_parse(big, DSN_ORCPT_MAX + 1, false, &out,
	    &err), -1);
	/* A stored form must be the canonical one. */
	assert_int_equal(dsn_orcpt_decode("rfc822;+62ob@x", 14, NULL, NULL,
	    &err), -1);
	assert_int_equal(dsn_orcpt_decode("RFC822;bob@x", 12, NULL, NULL,
	    &err), -1);
	assert_int_equal(dsn_orcpt_decode("utf-8;\\x{f6}@x", 14, NULL, NULL,
	    &err), -1);
	buf_free(&out);
}

static void
test_action_status(void **state)
{
	static const char *const good[] = { "2.0.0", "5.1.1", "4.4.7",
	    "5.123.456", "2.1.5" };
	static const char *const bad[] = { "", "3.0.0", "5.1", "5..1", "5.1.",
	    "5.1.1.", "5.1234.1", "5.1.1000", " 5.1.1", "5.1.1 ", "a.b.c",
	    "55.1.1" };
	enum dsn_action a;
	const char *err;

	(void)state;
	for (size_t i = 0; i < NELEM(good); i++)
		assert_true(dsn_status_valid(good[i]));
	for (size_t i = 0; i < NELEM(bad); i++)
		assert_false(dsn_status_valid(bad[i]));
	for (int i = DSN_ACTION_FAILED; i <= DSN_ACTION_EXPANDED; i++) {
		const char *n = dsn_action_name((enum dsn_action)i);

		assert_int_equal(dsn_action_parse(n, strlen(n), &a, &err), 0);
		assert_int_equal(a, i);
	}
	assert_string_equal(dsn_action_name(DSN_ACTION_RELAYED), "relayed");
	assert_int_equal(dsn_action_parse("", 0, &a, &err), -1);
	assert_int_equal(dsn_action_parse("fail", 4, &a, &err), -1);
}

static void
test_should_notify(void **state)
{
	enum { F = DSN_NOTIFY_FAILURE, D = DSN_NOTIFY_DELAY,
	    S = DSN_NOTIFY_SUCCESS, N = DSN_NOTIFY_NEVER };
	static const struct {
		unsigned notify;
		/* none, failed, delayed, delivered, relayed, expanded */
		bool want[6];
	} cases[] = {
		{ 0, { false, true, true, false, false, false } },
		{ N, { false, false, false, false, false, false } },
		{ S, { false, false, false, true, true, true } },
		{ F, { false, true, false, false, false, false } },
		{ D, { false, false, true, false, false, false } },
		{ S | F, { false, true, false, true, true, true } },
		{ S | F | D, { false, true, true, true, true, true } },
	};

	(void)state;
	for (size_t i = 0; i < NELEM(cases); i++) {
		for (int a = 0; a < 6; a++) {
			assert_int_equal(dsn_should_notify("a@b",
			    cases[i].notify, (enum dsn_action)a),
			    cases[i].want[a]);
			/* Never to the null sender, whatever was asked. */
			assert_false(dsn_should_notify("", cases[i].notify,
			    (enum dsn_action)a));
			assert_false(dsn_should_notify("<>", cases[i].notify,
			    (enum dsn_action)a));
			assert_false(dsn_should_notify(NULL, cases[i].notify,
			    (enum dsn_action)a));
		}
	}
}

/* ---- envelope lines ---------------------------------------------------- */

static void
assert_rcpt_equal(const struct dsn_rcpt *a, const struct dsn_rcpt *b)
{
	assert_string_equal(a->addr, b->addr);
	assert_int_equal(a->notify, b->notify);
	if (a->orcpt == NULL || b->orcpt == NULL)
		assert_ptr_equal(a->orcpt, b->orcpt);
	else
		assert_string_equal(a->orcpt, b->orcpt);
	assert_int_equal(a->action, b->action);
	assert_string_equal(a->status, b->status);
	assert_int_equal(a->smtp_code, b->smtp_code);
	if (a->remote_mta == NULL || b->remote_mta == NULL)
		assert_ptr_equal(a->remote_mta, b->remote_mta);
	else
		assert_string_equal(a->remote_mta, b->remote_mta);
	if (a->diagnostic == NULL || b->diagnostic == NULL)
		assert_ptr_equal(a->diagnostic, b->diagnostic);
	else
		assert_string_equal(a->diagnostic, b->diagnostic);
	assert_int_equal(a->last_attempt, b->last_attempt);
	assert_int_equal(a->retry_until, b->retry_until);
	assert_int_equal(a->delay_notified, b->delay_notified);
}

/* A formatted line: printable ASCII tokens separated by single spaces. */
static size_t
assert_clean_line(const char *s, size_t n)
{
	size_t tokens = 1;

	assert_true(n > 0 && n <= DSN_LINE_MAX);
	assert_true(s[0] != ' ' && s[n - 1] != ' ');
	for (size_t i = 0; i < n; i++) {
		assert_true((unsigned char)s[i] >= 0x20 &&
		    (unsigned char)s[i] <= 0x7e);
		if (s[i] == ' ') {
			assert_true(s[i + 1] != ' ');
			tokens++;
		}
	}
	return tokens;
}

static void
test_line_round_trip(void **state)
{
	struct dsn_rcpt r, back;
	struct buf line = BUF_INIT;
	const char *err = NULL;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.addr = strdup("\"a b=c+d\\\" rcpt=evil@x\"@ex\xc3\xa4mple.org");
	r.notify = DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY;
	r.orcpt = strdup("utf-8;\"a\\x{20}b\"@ex\\x{E4}mple.org");
	r.action = DSN_ACTION_DELAYED;
	snprintf(r.status, sizeof(r.status), "%s", "4.7.1");
	r.smtp_code = 451;
	r.remote_mta = strdup("mx-1.example.org");
	r.diagnostic = strdup("4.7.1 greylisted\r\n451-4.7.1 try\tlater\x01 "
	    "diag=x rcpt=evil@x\n\xff\xfe \xe2\x82\xac  end ");
	r.last_attempt = T_LAST;
	r.retry_until = T_UNTIL;
	r.delay_notified = true;
	assert_int_equal(dsn_rcpt_format(&r, &line, &err), 0);
	print_message("%s\n", buf_cstr(&line));
	/* Eleven fields, no field injected by the hostile strings. */
	assert_int_equal(assert_clean_line(line.data, line.len), 11);
	assert_non_null(strstr(line.data, "rcpt=\"a+20b+3Dc+2Bd\\\"+20rcpt"));
	assert_int_equal(dsn_rcpt_parse(line.data, line.len, &back, &err), 0);
	free(r.diagnostic);
	/* Stored diagnostics are cleaned: one line, spaces squeezed, bad
	 * UTF-8 replaced, good UTF-8 kept. */
	r.diagnostic = strdup("4.7.1 greylisted 451-4.7.1 try later diag=x "
	    "rcpt=evil@x ?? \xe2\x82\xac end");
	assert_rcpt_equal(&r, &back);
	dsn_rcpt_free(&back);

	/* The smallest line. */
	dsn_rcpt_free(&r);
	r.addr = strdup("bob@example.org");
	buf_reset(&line);
	assert_int_equal(dsn_rcpt_format(&r, &line, &err), 0);
	assert_string_equal(buf_cstr(&line), "rcpt=bob@example.org");
	assert_int_equal(dsn_rcpt_parse(line.data, line.len, &back, &err), 0);
	assert_rcpt_equal(&r, &back);
	dsn_rcpt_free(&back);
	dsn_rcpt_free(&r);
	buf_free(&line);
}

static void
test_line_every_byte(void **state)
{
	struct dsn_rcpt r, back;
	struct buf line = BUF_INIT;
	char diag[256];
	const char *err;

	(void)state;
	/* Every octet value in the diagnostic, and in the address all that
	 * an address may hold. */
	for (int i = 1; i < 256; i++)
		diag[i - 1] = (char)i;
	diag[255] = '\0';
	memset(&r, 0, sizeof(r));
	r.addr = strdup("\"!#$%&'*+-/=?^_`{|}~ ()<>[]:;@,.\\\"\"@x");
	r.action = DSN_ACTION_FAILED;
	r.smtp_code = 554;
	r.diagnostic = strdup(diag);
	assert_int_equal(dsn_rcpt_format(&r, &line, &err), 0);
	assert_clean_line(line.data, line.len);
	assert_int_equal(dsn_rcpt_parse(line.data, line.len, &back, &err), 0);
	assert_string_equal(back.addr, r.addr);
	assert_int_equal(strlen(back.diagnostic), 94 + 1 + 128);
	/* Parsing what was parsed and formatted again gives the same. */
	buf_reset(&line);
	assert_int_equal(dsn_rcpt_format(&back, &line, &err), 0);
	dsn_rcpt_free(&r);
	assert_int_equal(dsn_rcpt_parse(line.data, line.len, &r, &err), 0);
	assert_rcpt_equal(&r, &back);
	dsn_rcpt_free(&r);
	dsn_rcpt_free(&back);
	buf_free(&line);
}

static void
test_line_format_refuses(void **state)
{
	struct dsn_rcpt r;
	struct buf line = BUF_INIT;
	const char *err;

	(void)state;
	memset(&r, 0, sizeof(r));
	assert_int_equal(dsn_rcpt_format(&r, &line, &err), -1);
	r.addr = strdup("bad\r\n@x");
	assert_int_equal(dsn_rcpt_format(&r, &line, &err), -1);
	free(r.addr);
	r.addr = strdup("ok@x");
	r.notify = DSN_NOTIFY_NEVER | DSN_NOTIFY_SUCCESS;
	assert_int_equal(dsn_rcpt_format(&r, &line, &err), -1);
	r.notify = 0;
	r.orcpt = strdup("rfc822;not canonical");
	assert_int_equal(dsn_rcpt_format(&r, &line, &err), -1);
	free(r.orcpt);
	r.orcpt = NULL;
	snprintf(r.status, sizeof(r.status), "%s", "6.0.0");
	assert_int_equal(dsn_rcpt_format(&r, &line, &err), -1);
	r.status[0] = '\0';
	r.smtp_code = 700;
	assert_int_equal(dsn_rcpt_format(&r, &line, &err), -1);
	r.smtp_code = 0;
	r.remote_mta = strdup("mx evil");
	assert_int_equal(dsn_rcpt_format(&r, &line, &err), -1);
	free(r.remote_mta);
	r.remote_mta = NULL;
	r.last_attempt = -5;
	assert_int_equal(dsn_rcpt_format(&r, &line, &err), -1);
	r.last_attempt = 0;
	assert_int_equal(line.len, 0);
	assert_int_equal(dsn_rcpt_format(&r, &line, &err), 0);
	dsn_rcpt_free(&r);
	buf_free(&line);
}

static void
test_line_parse_errors(void **state)
{
	static const char *const bad[] = {
		"", " ", "rcpt=a@b  action=failed", "rcpt=a@b ", " rcpt=a@b",
		"rcpt=a@b rcpt=c@d", "action=failed", "rcpt=", "rcpt",
		"=a@b rcpt=a@b", "rcpt=a+0Ab@c", "rcpt=a+00b@c", "rcpt=a@b\tx",
		"rcpt=a@b\nrcpt=x@y", "rcpt=a@b\r", "rcpt=\xc3\xa4@x",
		"rcpt=a@b status=6.1.1", "rcpt=a@b status=5.1",
		"rcpt=a@b status=5.1.1000", "rcpt=a@b status=",
		"rcpt=a@b code=99",
		"rcpt=a@b code=600", "rcpt=a@b code=0550", "rcpt=a@b code=55a",
		"rcpt=a@b last=-1", "rcpt=a@b last=253402300800",
		"rcpt=a@b last=1e9", "rcpt=a@b until=", "rcpt=a@b warned=0",
		"rcpt=a@b warned=yes", "rcpt=a@b action=none",
		"rcpt=a@b action=FAILURE", "rcpt=a@b notify=NEVER,SUCCESS",
		"rcpt=a@b notify=", "rcpt=a@b orcpt=rfc822;+62ob@x",
		"rcpt=a@b orcpt=rfc822", "rcpt=a@b mta=mx+20evil",
		"rcpt=a@b mta=", "rcpt=a@b diag=+20lead", "rcpt=a@b diag=a+0Ab",
		"rcpt=a@b diag=", "rcpt=a@b diag=a+20+20b", "rcpt=a+2",
		"rcpt=a@b action=failed action=failed",
	};
	static const char *const good[] = {
		"rcpt=a@b", "rcpt=a@b unknown=zzz", "future-key=1 rcpt=a@b",
		"action=Delayed rcpt=x@y", "rcpt=a@b last=0 until=253402300799",
		"rcpt=a@b x=", "rcpt=a@b status=5.7.1 code=550 mta=[192.0.2.1]",
	};
	struct dsn_rcpt r;
	const char *err;
	char *big;

	(void)state;
	for (size_t i = 0; i < NELEM(bad); i++) {
		err = NULL;
		print_message("line %s\n", bad[i]);
		assert_int_equal(dsn_rcpt_parse(bad[i], strlen(bad[i]), &r,
		    &err), -1);
		assert_non_null(err);
		assert_null(r.addr);
	}
	for (size_t i = 0; i < NELEM(good); i++) {
		print_message("line %s\n", good[i]);
		assert_int_equal(dsn_rcpt_parse(good[i], strlen(good[i]), &r,
		    &err), 0);
		dsn_rcpt_free(&r);
	}
	assert_int_equal(dsn_rcpt_parse("rcpt=a@b\0x", 10, &r, &err), -1);
	big = malloc(DSN_LINE_MAX + 2);
	memcpy(big, "rcpt=a@b x=", 11);
	memset(big + 11, 'y', DSN_LINE_MAX + 1 - 11);
	assert_int_equal(dsn_rcpt_parse(big, DSN_LINE_MAX, &r, &err), 0);
	dsn_rcpt_free(&r);
	assert_int_equal(dsn_rcpt_parse(big, DSN_LINE_MAX + 1, &r, &err), -1);
	free(big);
}

/* Every prefix and every one-octet change of a full line: parses or fails
 * cleanly (ASan watches), and whatever parses formats again. */
static void
test_line_mutations(void **state)
{
	static const char line[] = "rcpt=a+2Bb@ex.org notify=SUCCESS,DELAY "
	    "orcpt=utf-8;a\\x{2B}b@ex.org action=delayed status=4.4.1 "
	    "code=421 mta=mx.ex.org diag=4.4.1+20timeout last=1767229200 "
	    "until=1767657600 warned=1";
	static const unsigned char subst[] = { 0, ' ', '+', '=', '\\', 'A',
	    '9', ';', 0x80, 0xff };
	size_t n = sizeof(line) - 1;
	char *copy = malloc(n);
	struct dsn_rcpt r;
	const char *err;

	(void)state;
	for (size_t k = 0; k <= n; k++) {
		memcpy(copy, line, k);
		if (dsn_rcpt_parse(copy, k, &r, &err) == 0) {
			struct buf f = BUF_INIT;

			assert_int_equal(dsn_rcpt_format(&r, &f, &err), 0);
			buf_free(&f);
			dsn_rcpt_free(&r);
		}
	}
	for (size_t i = 0; i < n; i++) {
		for (size_t s = 0; s < sizeof(subst); s++) {
			memcpy(copy, line, n);
			copy[i] = (char)subst[s];
			if (dsn_rcpt_parse(copy, n, &r, &err) == 0) {
				struct buf f = BUF_INIT;

				assert_int_equal(dsn_rcpt_format(&r, &f, &err),
				    0);
				buf_free(&f);
				dsn_rcpt_free(&r);
			}
		}
	}
	free(copy);
}

/* ---- reports ----------------------------------------------------------- */

struct report {
	char *data;
	size_t len;
	struct dsn_compose_info info;
	GMimeMessage *msg;
	char boundary[128];
};

static int
memfd_with(const char *p, size_t n)
{
	int fd = memfd_create("dsn-test", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	return fd;
}

static void
assert_crlf_lines(const char *p, size_t n)
{
	size_t line = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r') {
			assert_true(i + 1 < n && p[i + 1] == '\n');
			i++;
			line = 0;
			continue;
		}
		assert_true(p[i] != '\n' && p[i] != '\0');
		line++;
		assert_true(line <= 998);
	}
	assert_int_equal(line, 0);
}

static GMimeMessage *
parse_message(const char *p, size_t n)
{
	GMimeStream *s = g_mime_stream_mem_new_with_buffer(p, n);
	GMimeParser *parser = g_mime_parser_new_with_stream(s);
	GMimeMessage *m = g_mime_parser_construct_message(parser, NULL);

	g_object_unref(parser);
	g_object_unref(s);
	assert_non_null(m);
	return m;
}

/* Composes with orig (NULL: none) and checks what every report must be:
 * CRLF, short lines, parseable, a boundary that is only a boundary. */
static int
compose(const struct dsn_report *r, const char *orig, size_t olen,
    struct report *out, const char **err)
{
	int in = orig != NULL ? memfd_with(orig, olen) : -1;
	int fd = memfd_with("", 0);
	GMimeContentType *ct;
	const char *b;
	off_t size;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = dsn_compose(r, in, fd, &out->info, err);
	size = lseek(fd, 0, SEEK_END);
	out->len = (size_t)size;
	out->data = malloc(out->len + 1);
	assert_int_equal(pread(fd, out->data, out->len, 0), (ssize_t)size);
	out->data[out->len] = '\0';
	close(fd);
	if (in >= 0)
		close(in);
	if (ret < 0) {
		assert_int_equal(out->len, 0);
		return ret;
	}
	assert_int_equal(out->info.size, out->len);
	assert_crlf_lines(out->data, out->len);
	out->msg = parse_message(out->data, out->len);
	ct = g_mime_object_get_content_type(
	    g_mime_message_get_mime_part(out->msg));
	assert_true(g_mime_content_type_is_type(ct, "multipart", "report"));
	assert_string_equal(g_mime_content_type_get_parameter(ct,
	    "report-type"), "delivery-status");
	b = g_mime_content_type_get_parameter(ct, "boundary");
	assert_non_null(b);
	assert_true(strlen(b) >= 32 && strlen(b) < sizeof(out->boundary));
	snprintf(out->boundary, sizeof(out->boundary), "%s", b);
	return 0;
}

static void
report_free(struct report *r)
{
	if (r->msg != NULL)
		g_object_unref(r->msg);
	free(r->data);
	memset(r, 0, sizeof(*r));
}

static size_t
count_of(const char *hay, size_t n, const char *needle)
{
	size_t count = 0, k = strlen(needle);
	const char *p = hay, *end = hay + n;

	while ((p = memmem(p, (size_t)(end - p), needle, k)) != NULL) {
		count++;
		p += k;
	}
	return count;
}

/* The boundary appears in the Content-Type parameter and as nparts + 1
 * delimiter lines, nowhere else. */
static void
assert_boundary_only(const struct report *r, size_t nparts)
{
	char delim[160], close_delim[160];

	snprintf(delim, sizeof(delim), "\r\n--%s\r\n", r->boundary);
	snprintf(close_delim, sizeof(close_delim), "\r\n--%s--\r\n",
	    r->boundary);
	assert_int_equal(count_of(r->data, r->len, r->boundary), nparts + 2);
	assert_int_equal(count_of(r->data, r->len, delim), nparts);
	assert_int_equal(count_of(r->data, r->len, close_delim), 1);
	assert_true(r->len > strlen(close_delim) && memcmp(r->data + r->len -
	    strlen(close_delim), close_delim, strlen(close_delim)) == 0);
}

/* Body of part k (0-based) as the octets between its header and the next
 * delimiter. */
static char *
raw_part(const struct report *r, int k, size_t *len)
{
	char delim[160];
	const char *p = r->data, *end = r->data + r->len, *body, *next;

	snprintf(delim, sizeof(delim), "\r\n--%s", r->boundary);
	for (int i = 0; i <= k; i++) {
		p = memmem(p, (size_t)(end - p), delim, strlen(delim));
		assert_non_null(p);
		p += strlen(delim);
	}
	body = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
	assert_non_null(body);
	body += 4;
	next = memmem(body, (size_t)(end - body), delim, strlen(delim));
	assert_non_null(next);
	*len = (size_t)(next - body);
	return strndup(body, *len);
}

/* The text part with its lines joined by single spaces, so phrases can
 * be looked for wherever the wrapping fell. */
static char *
text_part(const struct report *r)
{
	size_t len, o = 0;
	char *raw = raw_part(r, 0, &len), *t = malloc(len + 1);

	for (size_t i = 0; i < len; i++) {
		if (raw[i] == '\r' || raw[i] == '\n' || raw[i] == ' ') {
			if (o > 0 && t[o - 1] != ' ')
				t[o++] = ' ';
			continue;
		}
		t[o++] = raw[i];
	}
	t[o] = '\0';
	free(raw);
	return t;
}

/* The header section of the report itself, one string. */
static char *
top_header(const struct report *r)
{
	const char *end = strstr(r->data, "\r\n\r\n");

	assert_non_null(end);
	return strndup(r->data, (size_t)(end - r->data) + 2);
}

static GMimeObject *
part_at(const struct report *r, int i)
{
	GMimeObject *top = g_mime_message_get_mime_part(r->msg);

	assert_true(GMIME_IS_MULTIPART(top));
	return g_mime_multipart_get_part(GMIME_MULTIPART(top), i);
}

static int
part_count(const struct report *r)
{
	GMimeObject *top = g_mime_message_get_mime_part(r->msg);

	assert_true(GMIME_IS_MULTIPART(top));
	return g_mime_multipart_get_count(GMIME_MULTIPART(top));
}

static void
assert_part_type(const struct report *r, int i, const char *type,
    const char *subtype)
{
	GMimeContentType *ct = g_mime_object_get_content_type(part_at(r, i));

	print_message("part %d: want %s/%s\n", i, type, subtype);
	assert_true(g_mime_content_type_is_type(ct, type, subtype));
}

/* The delivery-status fields: groups split at blank lines, folded lines
 * joined, "Name: value" each. */
struct ds_fields {
	int ngroups;
	int n[8];
	char *f[8][16];
};

static void
ds_from_report(const struct report *r, struct ds_fields *ds)
{
	size_t len;
	char *body = raw_part(r, 1, &len), *p = body, *end = body + len;
	bool need_group = true;

	memset(ds, 0, sizeof(*ds));
	while (p < end) {
		char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		int g = ds->ngroups - 1;

		assert_non_null(eol);
		*eol = '\0';
		if (*p == '\0') {
			need_group = true;
		} else if (*p == ' ' || *p == '\t') {
			char *prev = ds->f[g][ds->n[g] - 1];
			size_t pl = strlen(prev), n = strlen(p);

			assert_false(need_group);
			prev = realloc(prev, pl + n + 1);
			memcpy(prev + pl, p, n + 1);
			ds->f[g][ds->n[g] - 1] = prev;
		} else {
			if (need_group) {
				assert_true(ds->ngroups < 8);
				g = ds->ngroups++;
				need_group = false;
			}
			assert_true(ds->n[g] < 16);
			ds->f[g][ds->n[g]++] = strdup(p);
		}
		p = eol + 2;
	}
	free(body);
}

static void
ds_free(struct ds_fields *ds)
{
	for (int g = 0; g < ds->ngroups; g++)
		for (int i = 0; i < ds->n[g]; i++)
			free(ds->f[g][i]);
}

static void
assert_group(const struct ds_fields *ds, int g, const char *const *want)
{
	int n = 0;

	assert_true(g < ds->ngroups);
	for (; want[n] != NULL; n++) {
		assert_true(n < ds->n[g]);
		assert_string_equal(ds->f[g][n], want[n]);
	}
	assert_int_equal(ds->n[g], n);
}

static void
rcpt_init(struct dsn_rcpt *rc, const char *addr, enum dsn_action action)
{
	memset(rc, 0, sizeof(*rc));
	rc->addr = strdup(addr);
	rc->action = action;
}

static void
report_init(struct dsn_report *r, struct dsn_rcpt *rcpts, size_t n)
{
	memset(r, 0, sizeof(*r));
	r->reporting_mta = "mx.correo.test";
	r->sender = "alice@example.com";
	r->arrival = T_ARRIVAL;
	r->queue_id = "0123456789abcdef";
	r->rcpts = rcpts;
	r->nrcpts = n;
	r->now = T_NOW;
}

static void
rcpts_free(struct dsn_rcpt *rcpts, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dsn_rcpt_free(&rcpts[i]);
}

/* Two failed recipients: one refused by the remote server, one whose
 * domain does not exist. */
static void
failed_rcpts(struct dsn_rcpt rc[2])
{
	rcpt_init(&rc[0], "bob@example.org", DSN_ACTION_FAILED);
	rc[0].orcpt = strdup("rfc822;Bob@Example.org");
	snprintf(rc[0].status, sizeof(rc[0].status), "%s", "5.1.1");
	rc[0].smtp_code = 550;
	rc[0].remote_mta = strdup("mx.example.org");
	rc[0].diagnostic = strdup("5.1.1 <bob@example.org>: Recipient "
	    "address rejected: User unknown in virtual mailbox table");
	rc[0].last_attempt = T_LAST;
	rcpt_init(&rc[1], "carol@example.net", DSN_ACTION_FAILED);
	rc[1].diagnostic = strdup("Host or domain name not found");
	rc[1].last_attempt = T_LAST;
}

/* The report's own header section, raw and as GMime reads it. */
static void
check_failure_head(const struct report *out)
{
	char *head;

	head = top_header(out);
	print_message("%s", head);
	assert_non_null(strstr(head, "From: \"Mail Delivery System\" "
	    "<MAILER-DAEMON@mx.correo.test>\r\n"));
	assert_non_null(strstr(head, "\r\nTo: <alice@example.com>\r\n"));
	assert_non_null(strstr(head, "\r\nSubject: Undelivered Mail Returned "
	    "to Sender\r\n"));
	assert_non_null(strstr(head, "\r\nDate: Thu, 01 Jan 2026 04:00:00 "
	    "+0000\r\n"));
	assert_non_null(strstr(head, "\r\nAuto-Submitted: auto-replied\r\n"));
	assert_non_null(strstr(head, "\r\nMIME-Version: 1.0\r\n"));
	assert_non_null(strstr(head, ".0123456789abcdef@mx.correo.test>\r\n"));
	assert_null(strstr(head, "Content-Transfer-Encoding"));
	free(head);
	assert_string_equal(g_mime_message_get_subject(out->msg),
	    "Undelivered Mail Returned to Sender");
	assert_string_equal(g_mime_object_get_header(GMIME_OBJECT(out->msg),
	    "Auto-Submitted"), "auto-replied");
	assert_non_null(g_mime_message_get_message_id(out->msg));
}

/* The plain English part, wherever its lines were wrapped. */
static void
check_failure_text(const struct report *out)
{
	char *text;

	text = text_part(out);
	print_message("%s\n", text);
	assert_non_null(strstr(text, "<bob@example.org> Delivery failed"));
	assert_non_null(strstr(text, "could not be delivered"));
	assert_non_null(strstr(text, "mx.example.org answered: 550 5.1.1"));
	assert_non_null(strstr(text, "<carol@example.net> Delivery"));
	assert_non_null(strstr(text, "Reason: Host or domain name not found"));
	assert_non_null(strstr(text, "queue id 0123456789abcdef"));
	assert_non_null(strstr(text, "original message is attached"));
	free(text);
}

static void
test_report_failure(void **state)
{
	static const char *const g0[] = {
		"Original-Envelope-Id: QQ314159+x",
		"Reporting-MTA: dns; mx.correo.test",
		"Arrival-Date: Thu, 01 Jan 2026 00:00:00 +0000",
		"X-Correo-Queue-ID: 0123456789abcdef",
		NULL
	};
	static const char *const g1[] = {
		"Original-Recipient: rfc822;Bob@Example.org",
		"Final-Recipient: rfc822;bob@example.org",
		"Action: failed",
		"Status: 5.1.1",
		"Remote-MTA: dns; mx.example.org",
		"Diagnostic-Code: smtp; 550 5.1.1 <bob@example.org>: Recipient "
		    "address rejected: User unknown in virtual mailbox table",
		"Last-Attempt-Date: Thu, 01 Jan 2026 01:00:00 +0000",
		NULL
	};
	static const char *const g2[] = {
		"Final-Recipient: rfc822;carol@example.net",
		"Action: failed",
		"Status: 5.0.0",
		"Last-Attempt-Date: Thu, 01 Jan 2026 01:00:00 +0000",
		NULL
	};
	struct dsn_rcpt rc[2];
	struct dsn_report r;
	struct report out;
	struct ds_fields ds;
	const char *err = NULL;
	char *orig;
	size_t len;
	GMimeObject *p2;

	(void)state;
	failed_rcpts(rc);
	report_init(&r, rc, 2);
	r.envid = "QQ314159+2Bx";
	assert_int_equal(compose(&r, orig_msg, sizeof(orig_msg) - 1, &out,
	    &err), 0);
	assert_false(out.info.global);
	assert_false(out.info.eightbit);
	assert_true(out.info.full);
	assert_boundary_only(&out, 3);

	check_failure_head(&out);

	assert_int_equal(part_count(&out), 3);
	assert_part_type(&out, 0, "text", "plain");
	assert_part_type(&out, 1, "message", "delivery-status");
	assert_part_type(&out, 2, "message", "rfc822");
	assert_string_equal(g_mime_content_type_get_parameter(
	    g_mime_object_get_content_type(part_at(&out, 0)), "charset"),
	    "us-ascii");

	check_failure_text(&out);

	ds_from_report(&out, &ds);
	assert_int_equal(ds.ngroups, 3);
	assert_group(&ds, 0, g0);
	assert_group(&ds, 1, g1);
	assert_group(&ds, 2, g2);
	ds_free(&ds);

	/* The original, whole and as it was, as message/rfc822. */
	p2 = part_at(&out, 2);
	assert_true(GMIME_IS_MESSAGE_PART(p2));
	assert_string_equal(g_mime_message_get_subject(
	    g_mime_message_part_get_message(GMIME_MESSAGE_PART(p2))), "Lunch");
	orig = raw_part(&out, 2, &len);
	assert_int_equal(len, sizeof(orig_msg) - 1);
	assert_memory_equal(orig, orig_msg, len);
	free(orig);
	report_free(&out);
	rcpts_free(rc, 2);
}

static void
test_report_ret_hdrs(void **state)
{
	struct dsn_rcpt rc[2];
	struct dsn_report r;
	struct report out;
	const char *err;
	char *orig, *text;
	size_t len;

	(void)state;
	failed_rcpts(rc);
	report_init(&r, rc, 2);
	r.ret = DSN_RET_HDRS;
	assert_int_equal(compose(&r, orig_msg, sizeof(orig_msg) - 1, &out,
	    &err), 0);
	assert_false(out.info.full);
	assert_boundary_only(&out, 3);
	assert_int_equal(part_count(&out), 3);
	assert_part_type(&out, 2, "text", "rfc822-headers");
	orig = raw_part(&out, 2, &len);
	assert_string_equal(orig, orig_headers);
	free(orig);
	text = text_part(&out);
	assert_non_null(strstr(text, "header section of the original"));
	free(text);
	/* No Original-Envelope-Id without an ENVID. */
	assert_null(strstr(out.data, "Original-Envelope-Id"));
	report_free(&out);
	rcpts_free(rc, 2);
}

static void
test_report_delay(void **state)
{
	static const char *const g1[] = {
		"Final-Recipient: rfc822;dave@example.org",
		"Action: delayed",
		"Status: 4.7.1",
		"Remote-MTA: dns; mx2.example.org",
		"Diagnostic-Code: smtp; 451 4.7.1 Greylisted, try again later",
		"Last-Attempt-Date: Thu, 01 Jan 2026 01:00:00 +0000",
		"Will-Retry-Until: Tue, 06 Jan 2026 00:00:00 +0000",
		NULL
	};
	struct dsn_rcpt rc[1];
	struct dsn_report r;
	struct report out;
	struct ds_fields ds;
	const char *err;
	char *orig, *text;
	size_t len;

	(void)state;
	rcpt_init(&rc[0], "dave@example.org", DSN_ACTION_DELAYED);
	rc[0].smtp_code = 451;
	rc[0].remote_mta = strdup("mx2.example.org");
	/* No status given: taken from the reply. */
	rc[0].diagnostic = strdup("4.7.1 Greylisted, try again later");
	rc[0].last_attempt = T_LAST;
	rc[0].retry_until = T_UNTIL;
	report_init(&r, rc, 1);
	assert_int_equal(compose(&r, orig_msg, sizeof(orig_msg) - 1, &out,
	    &err), 0);
	assert_string_equal(g_mime_message_get_subject(out.msg),
	    "Delayed Mail (still being retried)");
	assert_int_equal(part_count(&out), 3);
	assert_part_type(&out, 2, "text", "rfc822-headers");
	assert_false(out.info.full);
	ds_from_report(&out, &ds);
	assert_int_equal(ds.ngroups, 2);
	assert_group(&ds, 1, g1);
	ds_free(&ds);
	text = text_part(&out);
	print_message("%s", text);
	assert_non_null(strstr(text, "not yet been delivered"));
	assert_non_null(strstr(text, "until Tue, 06 Jan 2026"));
	free(text);
	report_free(&out);

	/* RET=FULL asks for the whole message even in a delay notice. */
	r.ret = DSN_RET_FULL;
	assert_int_equal(compose(&r, orig_msg, sizeof(orig_msg) - 1, &out,
	    &err), 0);
	assert_true(out.info.full);
	assert_part_type(&out, 2, "message", "rfc822");
	orig = raw_part(&out, 2, &len);
	assert_string_equal(orig, orig_msg);
	free(orig);
	report_free(&out);
	rcpts_free(rc, 1);
}

static void
test_report_success(void **state)
{
	static const char *const g1[] = {
		"Final-Recipient: rfc822;erin@correo.test",
		"Action: delivered",
		"Status: 2.0.0",
		NULL
	};
	static const char *const g2[] = {
		"Original-Recipient: rfc822;frank@example.org",
		"Final-Recipient: rfc822;frank@example.org",
		"Action: relayed",
		"Status: 2.0.0",
		"Remote-MTA: dns; old.example.org",
		"Diagnostic-Code: smtp; 250 2.0.0 Ok: queued as 4F2A1",
		NULL
	};
	struct dsn_rcpt rc[2];
	struct dsn_report r;
	struct report out;
	struct ds_fields ds;
	const char *err;

	(void)state;
	rcpt_init(&rc[0], "erin@correo.test", DSN_ACTION_DELIVERED);
	rc[0].notify = DSN_NOTIFY_SUCCESS;
	rcpt_init(&rc[1], "frank@example.org", DSN_ACTION_RELAYED);
	rc[1].notify = DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE;
	rc[1].orcpt = strdup("rfc822;frank@example.org");
	rc[1].smtp_code = 250;
	rc[1].remote_mta = strdup("old.example.org");
	rc[1].diagnostic = strdup("2.0.0 Ok: queued as 4F2A1");
	report_init(&r, rc, 2);
	r.arrival = 0;
	r.queue_id = NULL;
	assert_int_equal(compose(&r, orig_msg, sizeof(orig_msg) - 1, &out,
	    &err), 0);
	assert_string_equal(g_mime_message_get_subject(out.msg),
	    "Successful Mail Delivery Report");
	assert_part_type(&out, 2, "text", "rfc822-headers");
	ds_from_report(&out, &ds);
	assert_int_equal(ds.ngroups, 3);
	assert_int_equal(ds.n[0], 1);	/* no Arrival-Date, no queue id */
	assert_string_equal(ds.f[0][0], "Reporting-MTA: dns; mx.correo.test");
	assert_group(&ds, 1, g1);
	assert_group(&ds, 2, g2);
	ds_free(&ds);
	report_free(&out);
	rcpts_free(rc, 2);
}

static void
test_report_null_sender(void **state)
{
	static const char *const senders[] = { "", "<>" };
	struct dsn_rcpt rc[2];
	struct dsn_report r;
	struct report out;
	const char *err;

	(void)state;
	failed_rcpts(rc);
	report_init(&r, rc, 2);
	for (size_t i = 0; i < NELEM(senders) + 1; i++) {
		r.sender = i < NELEM(senders) ? senders[i] : NULL;
		err = NULL;
		assert_int_equal(compose(&r, orig_msg, sizeof(orig_msg) - 1,
		    &out, &err), -1);
		assert_string_equal(err,
		    "no report is sent to the null sender");
		report_free(&out);
	}
	rcpts_free(rc, 2);
}

static void
test_report_refuses(void **state)
{
	struct dsn_rcpt rc[2];
	struct dsn_report r;
	struct report out;
	const char *err;
	int fd;

	(void)state;
	failed_rcpts(rc);
	report_init(&r, rc, 2);
	r.sender = "<alice@example.com>";
	assert_int_equal(compose(&r, NULL, 0, &out, &err), -1);
	report_free(&out);
	r.sender = "alice\r\nBcc: x@y";
	assert_int_equal(compose(&r, NULL, 0, &out, &err), -1);
	report_free(&out);
	r.sender = "alice@example.com";
	r.reporting_mta = "mx.correo.test\r\nX-Evil: 1";
	assert_int_equal(compose(&r, NULL, 0, &out, &err), -1);
	report_free(&out);
	r.reporting_mta = "mx.correo.test";
	r.nrcpts = 0;
	assert_int_equal(compose(&r, NULL, 0, &out, &err), -1);
	report_free(&out);
	r.nrcpts = 2;
	rc[1].action = DSN_ACTION_NONE;
	assert_int_equal(compose(&r, NULL, 0, &out, &err), -1);
	assert_string_equal(err, "a recipient has no outcome to report");
	report_free(&out);
	rc[1].action = DSN_ACTION_FAILED;

	/* Write and read errors are reported, with errno. */
	fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	errno = 0;
	assert_int_equal(dsn_compose(&r, -1, fd, NULL, &err), -1);
	assert_string_equal(err, "cannot write the report");
	assert_int_equal(errno, ENOSPC);
	close(fd);
	fd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(dsn_compose(&r, fd, fd, NULL, &err), -1);
	assert_string_equal(err, "cannot read the original message");
	close(fd);
	assert_int_equal(dsn_compose_path(&r, "/nonexistent/msg", 1, NULL,
	    &err), -1);
	rcpts_free(rc, 2);
}

static void
test_report_no_original(void **state)
{
	struct dsn_rcpt rc[2];
	struct dsn_report r;
	struct report out;
	const char *err;
	char *text;

	(void)state;
	failed_rcpts(rc);
	report_init(&r, rc, 2);
	assert_int_equal(compose(&r, NULL, 0, &out, &err), 0);
	assert_int_equal(part_count(&out), 2);
	assert_boundary_only(&out, 2);
	assert_false(out.info.full);
	text = text_part(&out);
	assert_null(strstr(text, "attached"));
	free(text);
	report_free(&out);
	rcpts_free(rc, 2);
}

static void
test_report_global(void **state)
{
	static const char *const g1[] = {
		"Original-Recipient: utf-8;\xe7\x94\xa8\xe6\x88\xb7"
		    "@example.org",
		"Final-Recipient: utf-8;\xe7\x94\xa8\xe6\x88\xb7@example.org",
		"Action: failed",
		"Status: 5.1.1",
		"Remote-MTA: dns; mx.example.org",
		"Diagnostic-Code: smtp; 550 5.1.1 Unbekannter Empf\xc3\xa4nger",
		NULL
	};
	static const char u8orcpt[] =
	    "utf-8;\xe7\x94\xa8\xe6\x88\xb7@example.org";
	static const char u8msg[] =
	    "From: J\xc3\xb6rg <j\xc3\xb6rg@example.com>\r\n"
	    "Subject: Gr\xc3\xbc\xc3\x9f" "e\r\n\r\nHall\xc3\xb6\r\n";
	struct dsn_rcpt rc[1];
	struct dsn_report r;
	struct report out;
	struct ds_fields ds;
	struct buf orcpt = BUF_INIT;
	const char *err;
	char *head, *orig;
	size_t len;

	(void)state;
	rcpt_init(&rc[0], "\xe7\x94\xa8\xe6\x88\xb7@example.org",
	    DSN_ACTION_FAILED);
	assert_int_equal(dsn_orcpt_parse(u8orcpt, strlen(u8orcpt), true,
	    &orcpt, &err), 0);
	rc[0].orcpt = strdup(buf_cstr(&orcpt));
	snprintf(rc[0].status, sizeof(rc[0].status), "%s", "5.1.1");
	rc[0].smtp_code = 550;
	rc[0].remote_mta = strdup("mx.example.org");
	rc[0].diagnostic = strdup("5.1.1 Unbekannter Empf\xc3\xa4nger");
	report_init(&r, rc, 1);
	r.sender = "j\xc3\xb6rg@example.com";
	r.smtputf8 = true;
	assert_int_equal(compose(&r, u8msg, sizeof(u8msg) - 1, &out, &err), 0);
	assert_true(out.info.global);
	assert_true(out.info.eightbit);
	head = top_header(&out);
	assert_non_null(strstr(head, "\r\nTo: <j\xc3\xb6rg@example.com>\r\n"));
	assert_non_null(strstr(head,
	    "\r\nContent-Transfer-Encoding: 8bit\r\n"));
	free(head);
	assert_int_equal(part_count(&out), 3);
	assert_part_type(&out, 0, "text", "plain");
	assert_string_equal(g_mime_content_type_get_parameter(
	    g_mime_object_get_content_type(part_at(&out, 0)), "charset"),
	    "utf-8");
	assert_part_type(&out, 1, "message", "global-delivery-status");
	assert_part_type(&out, 2, "message", "global");
	ds_from_report(&out, &ds);
	assert_group(&ds, 1, g1);
	ds_free(&ds);
	orig = raw_part(&out, 2, &len);
	assert_string_equal(orig, u8msg);
	free(orig);
	report_free(&out);

	/* Headers only: message/global-headers. */
	r.ret = DSN_RET_HDRS;
	assert_int_equal(compose(&r, u8msg, sizeof(u8msg) - 1, &out, &err), 0);
	assert_part_type(&out, 2, "message", "global-headers");
	report_free(&out);

	rcpts_free(rc, 1);
	buf_free(&orcpt);
}

/* An ASCII report keeps a utf-8 ORCPT in its 7-bit form. */
static void
test_report_utf8_orcpt_ascii(void **state)
{
	struct dsn_rcpt rc[1];
	struct dsn_report r;
	struct report out;
	const char *err;

	(void)state;
	rcpt_init(&rc[0], "joerg@example.org", DSN_ACTION_FAILED);
	rc[0].orcpt = strdup("utf-8;j\\x{F6}rg@example.org");
	report_init(&r, rc, 1);
	assert_int_equal(compose(&r, orig_msg, sizeof(orig_msg) - 1, &out,
	    &err), 0);
	assert_false(out.info.global);
	assert_false(out.info.eightbit);
	assert_part_type(&out, 1, "message", "delivery-status");
	assert_non_null(strstr(out.data, "\r\nOriginal-Recipient: "
	    "utf-8;j\\x{F6}rg@example.org\r\n"));
	report_free(&out);
	rcpts_free(rc, 1);
}

/* An ASCII report of an original with 8-bit octets says 8bit where they
 * are, and a non-ASCII diagnostic becomes "?" there. */
static void
test_report_eightbit_original(void **state)
{
	static const char m8[] = "Subject: caf\xc3\xa9\r\n\r\nna\xc3\xafve\r\n";
	struct dsn_rcpt rc[1];
	struct dsn_report r;
	struct report out;
	const char *err;
	char *status;
	size_t len;

	(void)state;
	rcpt_init(&rc[0], "bob@example.org", DSN_ACTION_FAILED);
	rc[0].smtp_code = 550;
	rc[0].diagnostic = strdup("5.1.1 Empf\xc3\xa4nger");
	report_init(&r, rc, 1);
	assert_int_equal(compose(&r, m8, sizeof(m8) - 1, &out, &err), 0);
	assert_false(out.info.global);
	assert_true(out.info.eightbit);
	assert_non_null(strstr(out.data, "Content-Type: message/rfc822\r\n"
	    "Content-Description: Returned message\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n"));
	status = raw_part(&out, 1, &len);
	assert_non_null(strstr(status, "Diagnostic-Code: smtp; 550 5.1.1 "
	    "Empf??nger\r\n"));
	assert_non_null(strstr(status, "Status: 5.1.1\r\n"));
	free(status);
	report_free(&out);
	rcpts_free(rc, 1);
}

/* Bare LF and CR, NUL, and lines over 998 octets in the original. */
static void
test_report_normalises(void **state)
{
	struct dsn_rcpt rc[1];
	struct dsn_report r;
	struct report out;
	struct buf m = BUF_INIT, want = BUF_INIT;
	const char *err;
	char *orig, *lots = malloc(2001);
	size_t len;

	(void)state;
	memset(lots, 'a', 2000);
	lots[2000] = '\0';
	buf_printf(&m, "Subject: x\nX-Long: %s\r\r\nbody\rmore\nnul", lots);
	buf_append(&m, "\0!", 2);
	buf_printf(&m, "\n%.1000s", lots);
	/* The long header continues on folded lines; the long body line is
	 * simply broken; no line end at the end gets one. */
	buf_printf(&want, "Subject: x\r\nX-Long: %.990s\r\n %.997s\r\n %.13s"
	    "\r\n\r\nbody\r\nmore\r\nnul !\r\n%.998s\r\naa\r\n", lots, lots,
	    lots, lots);
	rcpt_init(&rc[0], "bob@example.org", DSN_ACTION_FAILED);
	report_init(&r, rc, 1);
	assert_int_equal(compose(&r, m.data, m.len, &out, &err), 0);
	orig = raw_part(&out, 2, &len);
	assert_int_equal(len, want.len);
	assert_memory_equal(orig, want.data, len);
	free(orig);
	report_free(&out);

	/* Header section only: it ends at the first empty line. */
	r.ret = DSN_RET_HDRS;
	assert_int_equal(compose(&r, m.data, m.len, &out, &err), 0);
	orig = raw_part(&out, 2, &len);
	want.len = strstr(want.data, "\r\n\r\n") - want.data + 2;
	assert_int_equal(len, want.len);
	assert_memory_equal(orig, want.data, len);
	free(orig);
	report_free(&out);
	rcpts_free(rc, 1);
	buf_free(&m);
	buf_free(&want);
	free(lots);
}

/* A large original crosses every internal buffer seam; it comes back
 * octet for octet. Over return_max only its header section comes back. */
static void
test_report_large(void **state)
{
	struct dsn_rcpt rc[1];
	struct dsn_report r;
	struct report out;
	struct buf m = BUF_INIT;
	const char *err;
	char *orig, *text;
	size_t len;
	unsigned seed = 12345;

	(void)state;
	buf_puts(&m, "Subject: big\r\nX-Pad: y\r\n\r\n");
	while (m.len < 3 * 1024 * 1024) {
		size_t n;

		seed = seed * 1103515245 + 12345;
		n = (seed >> 16) % 998;
		for (size_t i = 0; i < n; i++)
			buf_putc(&m, (char)('!' + (i + n) % 90));
		buf_puts(&m, "\r\n");
	}
	rcpt_init(&rc[0], "bob@example.org", DSN_ACTION_FAILED);
	report_init(&r, rc, 1);
	assert_int_equal(compose(&r, m.data, m.len, &out, &err), 0);
	assert_true(out.info.full);
	assert_boundary_only(&out, 3);
	orig = raw_part(&out, 2, &len);
	assert_int_equal(len, m.len);
	assert_memory_equal(orig, m.data, len);
	free(orig);
	report_free(&out);

	r.return_max = 1000;
	assert_int_equal(compose(&r, m.data, m.len, &out, &err), 0);
	assert_false(out.info.full);
	assert_part_type(&out, 2, "text", "rfc822-headers");
	orig = raw_part(&out, 2, &len);
	assert_string_equal(orig, "Subject: big\r\nX-Pad: y\r\n");
	free(orig);
	text = text_part(&out);
	assert_non_null(strstr(text, "too large to return in full"));
	free(text);
	report_free(&out);
	rcpts_free(rc, 1);
	buf_free(&m);
}

/* A long diagnostic is folded; unfolded it is what the server said. */
static void
test_report_folding(void **state)
{
	struct dsn_rcpt rc[1];
	struct dsn_report r;
	struct report out;
	struct ds_fields ds;
	struct buf diag = BUF_INIT, want = BUF_INIT;
	const char *err;

	(void)state;
	buf_puts(&diag, "5.7.1");
	for (int i = 0; i < 60; i++)
		buf_printf(&diag, " word%d", i);
	buf_puts(&diag, " ");
	for (int i = 0; i < 300; i++)
		buf_putc(&diag, 'x');
	rcpt_init(&rc[0], "bob@example.org", DSN_ACTION_FAILED);
	rc[0].smtp_code = 554;
	rc[0].diagnostic = strdup(buf_cstr(&diag));
	report_init(&r, rc, 1);
	assert_int_equal(compose(&r, NULL, 0, &out, &err), 0);
	ds_from_report(&out, &ds);
	buf_printf(&want, "Diagnostic-Code: smtp; 554 %s", buf_cstr(&diag));
	assert_string_equal(ds.f[1][3], buf_cstr(&want));
	assert_string_equal(ds.f[1][2], "Status: 5.7.1");
	ds_free(&ds);
	report_free(&out);
	rcpts_free(rc, 1);
	buf_free(&diag);
	buf_free(&want);
}

static int
setup(void **state)
{
	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	g_mime_init();
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	g_mime_shutdown();
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xtext_round_trip),
		cmocka_unit_test(test_xtext_invalid),
		cmocka_unit_test(test_notify),
		cmocka_unit_test(test_ret),
		cmocka_unit_test(test_envid),
		cmocka_unit_test(test_orcpt_valid),
		cmocka_unit_test(test_orcpt_invalid),
		cmocka_unit_test(test_action_status),
		cmocka_unit_test(test_should_notify),
		cmocka_unit_test(test_line_round_trip),
		cmocka_unit_test(test_line_every_byte),
		cmocka_unit_test(test_line_format_refuses),
		cmocka_unit_test(test_line_parse_errors),
		cmocka_unit_test(test_line_mutations),
		cmocka_unit_test(test_report_failure),
		cmocka_unit_test(test_report_ret_hdrs),
		cmocka_unit_test(test_report_delay),
		cmocka_unit_test(test_report_success),
		cmocka_unit_test(test_report_null_sender),
		cmocka_unit_test(test_report_refuses),
		cmocka_unit_test(test_report_no_original),
		cmocka_unit_test(test_report_global),
		cmocka_unit_test(test_report_utf8_orcpt_ascii),
		cmocka_unit_test(test_report_eightbit_original),
		cmocka_unit_test(test_report_normalises),
		cmocka_unit_test(test_report_large),
		cmocka_unit_test(test_report_folding),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
