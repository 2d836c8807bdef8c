/* Modified UTF-7 (RFC 3501 5.1.3) and UTF-8 checks for mailbox names.
 *
 * Untrusted input: mailbox names from clients.
 *
 * Decoding is strict so that every name has exactly one wire form: a name
 * that decodes is the one the encoder would have written, and two names
 * that differ on the wire can never map to the same mailbox. */
#include <stdint.h>

#include "imap/imap_utf7.h"

static const char b64_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/* The 6-bit value of a modified BASE64 character, or -1. */
static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == ',')
		return 63;
	return -1;
}

static bool
is_direct(uint32_t c)
{
	return c >= 0x20 && c <= 0x7e;
}

/* Reads one well-formed UTF-8 sequence at s[*i]; -1 for anything else
 * (overlong forms, surrogates, code points above U+10FFFF, truncation). */
static int
utf8_next(const unsigned char *s, size_t len, size_t *i, uint32_t *cp_r)
{
	static const uint32_t min[4] = { 0, 0x80, 0x800, 0x10000 };
	uint32_t cp = s[*i];
	size_t n, k;

	if (cp < 0x80) {
		(*i)++;
		*cp_r = cp;
		return 0;
	}
	if ((cp & 0xe0) == 0xc0)
		n = 1;
	else if ((cp & 0xf0) == 0xe0)
		n = 2;
	else if ((cp & 0xf8) == 0xf0)
		n = 3;
	else
		return -1;
	cp &= 0x3fu >> n;
	if (len - *i <= n)
		return -1;
	for (k = 1; k <= n; k++) {
		if ((s[*i + k] & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (s[*i + k] & 0x3f);
	}
	if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*i += n + 1;
	*cp_r = cp;
	return 0;
}

bool
imap_utf8_is_valid(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	uint32_t cp;

	while (i < len)
		if (utf8_next(u, len, &i, &cp) < 0)
			return false;
	return true;
}

static void
put_utf8(struct buf *out, uint32_t cp)
{
	char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | (cp >> 6));
		b[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | (cp >> 12));
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (char)(0xf0 | (cp >> 18));
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	buf_append(out, b, n);
}

/* Decoding state of one BASE64 run. */
struct b64_run {
	uint32_t bits;		/* pending bits, the newest in the low end */
	unsigned nbits;
	uint32_t high;		/* a high surrogate waiting for its pair */
};

/* Takes one UTF-16 unit; -1 for bad surrogates, for characters that must
 * be written directly, and for U+0000 (it would end a C string). */
static int
run_unit(struct b64_run *r, uint32_t unit, struct buf *out)
{
	uint32_t cp;

	if (r->high != 0) {
		if (unit < 0xdc00 || unit > 0xdfff)
			return -1;
		cp = 0x10000 + ((r->high - 0xd800) << 10) + (unit - 0xdc00);
		r->high = 0;
	} else if (unit >= 0xd800 && unit <= 0xdbff) {
		r->high = unit;
		return 0;
	} else if (unit >= 0xdc00 && unit <= 0xdfff) {
		return -1;
	} else {
		cp = unit;
	}
	if (cp == 0 || is_direct(cp))
		return -1;
	put_utf8(out, cp);
	return 0;
}

/* Decodes the run starting at in[*i] (just after "&") up to and including
 * its "-". */
static int
decode_run(const char *in, size_t len, size_t *i, struct buf *out)
{
	struct b64_run r = { 0, 0, 0 };
	int v;

	for (; *i < len; (*i)++) {
		unsigned char c = (unsigned char)in[*i];

		if (c == '-')
			break;
		if ((v = b64_value(c)) < 0)
			return -1;
		r.bits = ((r.bits << 6) | (uint32_t)v) & 0xffffff;
		r.nbits += 6;
		if (r.nbits >= 16) {
			r.nbits -= 16;
			if (run_unit(&r, (r.bits >> r.nbits) & 0xffff,
			    out) < 0)
				return -1;
		}
	}
	if (*i >= len)
		return -1;	/* "&" never closed */
	/* Leftover bits are padding: fewer than 6 and all zero. */
	if (r.nbits >= 6 || (r.bits & ((1u << r.nbits) - 1)) != 0)
		return -1;
	if (r.high != 0)
		return -1;
	(*i)++;
	/* A run straight after a run is a null shift, which the RFC
	 * forbids; "&-" (a literal "&") may follow. */
	if (*i < len && in[*i] == '&' && !(*i + 1 < len && in[*i + 1] == '-'))
		return -1;
	return 0;
}

int
imap_utf7_decode(const char *in, size_t len, struct buf *out)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = (unsigned char)in[i];

		if (!is_direct(c))
			return -1;
		if (c != '&') {
			buf_putc(out, (char)c);
			i++;
			continue;
		}
		i++;
		if (i < len && in[i] == '-') {
			buf_putc(out, '&');
			i++;
			continue;
		}
		if (i >= len || decode_run(in, len, &i, out) < 0)
			return -1;
	}
	return 0;
}

/* Encoding state: bits not yet written as a BASE64 character. */
struct b64_enc {
	bool open;
	uint32_t bits;
	unsigned nbits;
};

static void
enc_unit(struct b64_enc *e, uint32_t unit, struct buf *out)
{
	if (!e->open) {
		buf_putc(out, '&');
		e->open = true;
	}
	e->bits = ((e->bits << 16) | unit) & 0x3fffff;
	e->nbits += 16;
	while (e->nbits >= 6) {
		e->nbits -= 6;
		buf_putc(out, b64_chars[(e->bits >> e->nbits) & 0x3f]);
	}
}

static void
enc_close(struct b64_enc *e, struct buf *out)
{
	if (!e->open)
		return;
	if (e->nbits > 0)
		buf_putc(out, b64_chars[(e->bits << (6 - e->nbits)) & 0x3f]);
	buf_putc(out, '-');
	e->open = false;
	e->bits = 0;
	e->nbits = 0;
}

void
imap_utf7_encode(const char *in, size_t len, struct buf *out)
{
	const unsigned char *u = (const unsigned char *)in;
	struct b64_enc e = { false, 0, 0 };
	size_t i = 0;
	uint32_t cp;

	while (i < len) {
		if (is_direct(u[i])) {
			enc_close(&e, out);
			if (u[i] == '&')
				buf_puts(out, "&-");
			else
				buf_putc(out, (char)u[i]);
			i++;
			continue;
		}
		/* Not valid UTF-8 after all: U+FFFD keeps the output valid. */
		if (utf8_next(u, len, &i, &cp) < 0) {
			cp = 0xfffd;
			i++;
		}
		if (cp >= 0x10000) {
			cp -= 0x10000;
			enc_unit(&e, 0xd800 + (cp >> 10), out);
			enc_unit(&e, 0xdc00 + (cp & 0x3ff), out);
		} else {
			enc_unit(&e, cp, out);
		}
	}
	enc_close(&e, out);
}
