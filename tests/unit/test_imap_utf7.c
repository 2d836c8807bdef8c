/* Unit tests for src/imap/imap_utf7.c: modified UTF-7 both ways, strict
 * decoding, UTF-8 validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "imap/imap_utf7.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Pairs that map to each other exactly. */
static const struct {
	const char *utf7;
	const char *utf8;
} pairs[] = {
	{ "", "" },
	{ "INBOX", "INBOX" },
	{ "&-", "&" },
	{ "a&-b&-&-", "a&b&&" },
	{ " ~!\"#$%'()*+,-./:;<=>?@[\\]^_`{|}", " ~!\"#$%'()*+,-./:;<=>?@[\\]^_`{|}" },
	{ "&AOk-t&AOk-", "\xc3\xa9t\xc3\xa9" },
	{ "~peter/mail/&U,BTFw-/&ZeVnLIqe-",
	  "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/"
	  "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e" },
	{ "&2D3eAA-", "\xf0\x9f\x98\x80" },
	{ "&2D3eANg93gE-x", "\xf0\x9f\x98\x80\xf0\x9f\x98\x81x" },
	{ "&AAk-", "\t" },
	{ "&AH8-", "\x7f" },
	{ "&,,8-", "\xef\xbf\xbf" },
	{ "&2,,f,w-", "\xf4\x8f\xbf\xbf" },
	{ "Entw&APw-rfe", "Entw\xc3\xbcrfe" },
	{ "&AOk-&-&AOk-", "\xc3\xa9&\xc3\xa9" },
};

static char *
decode(const char *in, size_t len, int *r)
{
	struct buf b = BUF_INIT;
	char *s;

	*r = imap_utf7_decode(in, len, &b);
	s = strdup(buf_cstr(&b));
	buf_free(&b);
	assert_non_null(s);
	return s;
}

static char *
encode(const char *in, size_t len)
{
	struct buf b = BUF_INIT;
	char *s;

	imap_utf7_encode(in, len, &b);
	s = strdup(buf_cstr(&b));
	buf_free(&b);
	assert_non_null(s);
	return s;
}

static void
test_pairs(void **state)
{
	size_t i;
	int r;
	char *s;
	(void)state;

	for (i = 0; i < NELEM(pairs); i++) {
		s = decode(pairs[i].utf7, strlen(pairs[i].utf7), &r);
		if (r != 0)
			print_message("rejected: %s\n", pairs[i].utf7);
		assert_int_equal(r, 0);
		assert_string_equal(s, pairs[i].utf8);
		free(s);
		s = encode(pairs[i].utf8, strlen(pairs[i].utf8));
		assert_string_equal(s, pairs[i].utf7);
		free(s);
		assert_true(imap_utf8_is_valid(pairs[i].utf8,
		    strlen(pairs[i].utf8)));
	}
}

static void
test_strict_decoding(void **state)
{
	static const char *const bad[] = {
		"&",			/* never closed */
		"a&",
		"&AOk",
		"&AOk-&",
		"&AGE-",		/* 'a' must be written directly */
		"&ACY-",		/* so must '&' */
		"&ACA-",		/* and ' ' */
		"&AH4-",		/* and '~' */
		"&AAA-",		/* U+0000 */
		"&AO!-",		/* not BASE64 */
		"&AO=-",
		"&AO/-",		/* standard, not modified, BASE64 */
		"&AOl-",		/* padding bits not zero */
		"&AOkA-",		/* a whole unused BASE64 character */
		"&AO-",			/* less than one UTF-16 unit */
		"&2D0-",		/* lone high surrogate */
		"&3gA-",		/* lone low surrogate */
		"&2D3YPQ-",		/* high followed by high */
		"&2D0-&3gA-",		/* a pair split across runs */
		"&AOk-&AOk-",		/* null shift */
		"\xc3\xa9",		/* raw 8-bit */
		"a\tb",			/* raw control characters */
		"a\x7f",
		"&AOk-\x80",
	};
	size_t i;
	int r;
	char *s;
	(void)state;

	for (i = 0; i < NELEM(bad); i++) {
		s = decode(bad[i], strlen(bad[i]), &r);
		if (r != -1)
			print_message("accepted: %s\n", bad[i]);
		assert_int_equal(r, -1);
		free(s);
	}
	/* The length bounds the input; a NUL octet is 8-bit-clean bad. */
	s = decode("&AOk-x", 4, &r);
	assert_int_equal(r, -1);
	free(s);
	s = decode("a\0b", 3, &r);
	assert_int_equal(r, -1);
	free(s);
}

/* Every prefix of every valid name: decoding never overreads, and what
 * decodes encodes back to the same prefix. */
static void
test_every_prefix(void **state)
{
	size_t i, k, len;
	int r;
	char *copy, *s, *e;
	(void)state;

	for (i = 0; i < NELEM(pairs); i++) {
		len = strlen(pairs[i].utf7);
		for (k = 0; k <= len; k++) {
			copy = malloc(k + (k == 0));
			assert_non_null(copy);
			memcpy(copy, pairs[i].utf7, k);
			s = decode(copy, k, &r);
			if (r == 0) {
				e = encode(s, strlen(s));
				assert_int_equal(strlen(e), k);
				assert_memory_equal(e, pairs[i].utf7, k);
				free(e);
			}
			free(s);
			free(copy);
		}
	}
}

static size_t
put_utf8(char *b, uint32_t cp)
{
	if (cp < 0x80) {
		b[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		b[0] = (char)(0xc0 | (cp >> 6));
		b[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		b[0] = (char)(0xe0 | (cp >> 12));
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	b[0] = (char)(0xf0 | (cp >> 18));
	b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	b[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Every code point, alone and between ASCII, survives the round trip. */
static void
test_all_code_points(void **state)
{
	struct buf enc = BUF_INIT, dec = BUF_INIT;
	char in[8];
	uint32_t cp;
	size_t n;
	(void)state;

	for (cp = 1; cp <= 0x10ffff; cp++) {
		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		in[0] = 'x';
		n = 1 + put_utf8(in + 1, cp);
		in[n++] = 'y';
		assert_true(imap_utf8_is_valid(in, n));
		buf_reset(&enc);
		buf_reset(&dec);
		imap_utf7_encode(in, n, &enc);
		assert_int_equal(imap_utf7_decode(enc.data, enc.len, &dec), 0);
		assert_int_equal(dec.len, n);
		assert_memory_equal(dec.data, in, n);
	}
	buf_free(&enc);
	buf_free(&dec);
}

static void
test_utf8_validity(void **state)
{
	static const char *const bad[] = {
		"\x80", "\xbf", "a\xc3", "\xc0\xaf", "\xc1\xbf",
		"\xe0\x80\xaf", "\xe0\x9f\xbf", "\xed\xa0\x80", "\xed\xbf\xbf",
		"\xf0\x80\x80\xaf", "\xf0\x8f\xbf\xbf", "\xf4\x90\x80\x80",
		"\xf5\x80\x80\x80", "\xf8\x88\x80\x80\x80", "\xfe", "\xff",
		"\xe2\x82", "\xe2\x82\x41", "\xc3\xa9\xa9",
	};
	static const char *const good[] = {
		"", "abc", "\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80",
		"\xed\x9f\xbf", "\xee\x80\x80", "\xef\xbf\xbf",
		"\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf",
	};
	size_t i;
	(void)state;

	for (i = 0; i < NELEM(bad); i++)
		assert_false(imap_utf8_is_valid(bad[i], strlen(bad[i])));
	for (i = 0; i < NELEM(good); i++)
		assert_true(imap_utf8_is_valid(good[i], strlen(good[i])));
	assert_true(imap_utf8_is_valid("a\0b", 3));
	assert_false(imap_utf8_is_valid("\xc3\xa9", 1));
}

/* Invalid UTF-8 given to the encoder still gives valid modified UTF-7. */
static void
test_encode_invalid(void **state)
{
	char *s;
	int r;
	char *d;
	(void)state;

	s = encode("a\xff" "b", 3);
	assert_string_equal(s, "a&,,0-b");
	d = decode(s, strlen(s), &r);
	assert_int_equal(r, 0);
	assert_string_equal(d, "a\xef\xbf\xbd" "b");
	free(d);
	free(s);
	s = encode("\xe2\x82", 2);
	d = decode(s, strlen(s), &r);
	assert_int_equal(r, 0);
	free(d);
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pairs),
		cmocka_unit_test(test_strict_decoding),
		cmocka_unit_test(test_every_prefix),
		cmocka_unit_test(test_all_code_points),
		cmocka_unit_test(test_utf8_validity),
		cmocka_unit_test(test_encode_invalid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
