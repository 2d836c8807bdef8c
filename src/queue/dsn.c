/* Delivery status notifications: DSN parameters (RFC 3461, RFC 6533),
 * recipients' DSN state in envelope lines, and RFC 3464 reports.
 *
 * Untrusted input: ESMTP parameter values from clients, envelope lines
 * read from disk, remote servers' reply text, and original messages. */
#include "queue/dsn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"
#include "core/xmalloc.h"

/* 9999-12-31T23:59:59Z: later times cannot be written as RFC 5322 dates. */
#define DSN_TIME_MAX	253402300799LL
#define DSN_TYPE_MAX	64	/* octets of an ORCPT address type */

static int
dsn_fail(const char **error_r, const char *msg)
{
	if (error_r != NULL)
		*error_r = msg;
	return -1;
}

/* ---- characters ------------------------------------------------------ */

static bool
dsn_is_xchar(unsigned char c)
{
	return c >= 33 && c <= 126 && c != '+' && c != '=';
}

/* RFC 6533 QCHAR: what utf-8-addr-xtext writes as itself. */
static bool
dsn_is_qchar(unsigned char c)
{
	return dsn_is_xchar(c) && c != '\\';
}

/* RFC 5322 atext, ASCII only: an ORCPT address type. */
static bool
dsn_is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') ||
	    (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static int
dsn_hex_upper(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
dsn_hex_any(unsigned char c)
{
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return dsn_hex_upper(c);
}

static bool
dsn_is_printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

static bool
dsn_is_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

/* Length of the valid UTF-8 sequence at p (at most n octets) with its
 * code point, or 0: overlong, surrogate, past U+10FFFF, or cut short. */
static size_t
dsn_utf8_next(const unsigned char *p, size_t n, uint32_t *cp)
{
	uint32_t c = p[0], min;
	size_t len;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2, c &= 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3, c &= 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4, c &= 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

static void
dsn_utf8_put(struct buf *out, uint32_t cp)
{
	char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (char)cp, n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | cp >> 6), n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | cp >> 12), n = 3;
	} else {
		b[0] = (char)(0xf0 | cp >> 18), n = 4;
	}
	for (size_t i = 1; i < n; i++)
		b[i] = (char)(0x80 | ((cp >> (6 * (n - 1 - i))) & 0x3f));
	buf_append(out, b, n);
}

/* UTF-8 without control characters (C0 and DEL): an address, once
 * decoded, must be safe to write into a header field. */
static bool
dsn_utf8_text_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;

	for (size_t i = 0; i < n;) {
		size_t len = dsn_utf8_next(p + i, n - i, &cp);

		if (len == 0 || cp < 0x20 || cp == 0x7f)
			return false;
		i += len;
	}
	return true;
}

static bool
dsn_addr_valid(const char *s, size_t n)
{
	return n > 0 && n <= DSN_ADDR_MAX && dsn_utf8_text_valid(s, n);
}

/* A host name or address literal: what DNS and our configuration give. */
static bool
dsn_host_valid(const char *s, size_t n)
{
	if (n == 0 || n > 255)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == ':' || c == '[' || c == ']'))
			return false;
	}
	return true;
}

static bool
dsn_word_is(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

void
dsn_text_clean(const char *s, size_t n, bool utf8, size_t max,
    struct buf *out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t used = 0;
	bool space = false;

	for (size_t i = 0; i < n;) {
		const char *emit = (const char *)p + i;
		size_t len = 1;
		uint32_t cp;

		if (p[i] <= 0x20 || p[i] == 0x7f) {
			space = used > 0;
			i++;
			continue;
		}
		if (p[i] >= 0x80 && (!utf8 ||
		    (len = dsn_utf8_next(p + i, n - i, &cp)) == 0)) {
			emit = "?";
			len = 1;
		}
		if (used + (space ? 1 : 0) + len > max)
			break;
		if (space)
			buf_putc(out, ' '), used++, space = false;
		buf_append(out, emit, len);
		used += len;
		i += len;
	}
}

/* ---- xtext ----------------------------------------------------------- */

bool
dsn_xtext_valid(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '+') {
			if (n - i < 3 || dsn_hex_upper(s[i + 1]) < 0 ||
			    dsn_hex_upper(s[i + 2]) < 0)
				return false;
			i += 2;
		} else if (!dsn_is_xchar(c)) {
			return false;
		}
	}
	return true;
}

/* Drops what a failed decoder appended after len. */
static void
dsn_buf_truncate(struct buf *b, size_t len)
{
	b->len = len;
	if (b->data != NULL)
		b->data[len] = '\0';
}

int
dsn_xtext_decode(const char *s, size_t n, struct buf *out,
    const char **error_r)
{
	size_t start = out->len;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int hi, lo;

		if (c == '+') {
			if (n - i < 3 || (hi = dsn_hex_upper(s[i + 1])) < 0 ||
			    (lo = dsn_hex_upper(s[i + 2])) < 0) {
				dsn_buf_truncate(out, start);
				return dsn_fail(error_r, "in xtext \"+\" must "
				    "be followed by two upper-case hex digits");
			}
			buf_putc(out, (char)(hi << 4 | lo));
			i += 2;
		} else if (dsn_is_xchar(c)) {
			buf_putc(out, (char)c);
		} else {
			dsn_buf_truncate(out, start);
			return dsn_fail(error_r, "xtext allows only printable "
			    "ASCII without spaces and \"=\"");
		}
	}
	return 0;
}

void
dsn_xtext_encode(const void *p, size_t n, struct buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++) {
		if (dsn_is_xchar(s[i])) {
			buf_putc(out, (char)s[i]);
		} else {
			char e[3] = { '+', hex[s[i] >> 4], hex[s[i] & 15] };
			buf_append(out, e, sizeof(e));
		}
	}
}

/* ---- NOTIFY, RET, ENVID ---------------------------------------------- */

static const struct {
	const char *name;
	unsigned bit;
} dsn_notify_words[] = {
	{ "NEVER", DSN_NOTIFY_NEVER },
	{ "SUCCESS", DSN_NOTIFY_SUCCESS },
	{ "FAILURE", DSN_NOTIFY_FAILURE },
	{ "DELAY", DSN_NOTIFY_DELAY },
};

#define DSN_NELEM(a)	(sizeof(a) / sizeof((a)[0]))

static unsigned
dsn_notify_bit(const char *s, size_t n)
{
	for (size_t i = 0; i < DSN_NELEM(dsn_notify_words); i++)
		if (dsn_word_is(s, n, dsn_notify_words[i].name))
			return dsn_notify_words[i].bit;
	return 0;
}

int
dsn_notify_parse(const char *s, size_t n, unsigned *notify_r,
    const char **error_r)
{
	unsigned bits = 0;
	size_t i = 0;

	if (n == 0)
		return dsn_fail(error_r, "NOTIFY needs a value");
	for (;;) {
		const char *comma = memchr(s + i, ',', n - i);
		size_t end = comma != NULL ? (size_t)(comma - s) : n;
		unsigned bit = dsn_notify_bit(s + i, end - i);

		if (bit == 0)
			return dsn_fail(error_r, "NOTIFY takes NEVER, or "
			    "SUCCESS, FAILURE and DELAY separated by commas");
		if (bits & bit)
			return dsn_fail(error_r, "NOTIFY repeats a keyword");
		bits |= bit;
		if (comma == NULL)
			break;
		i = end + 1;
	}
	if ((bits & DSN_NOTIFY_NEVER) && bits != DSN_NOTIFY_NEVER)
		return dsn_fail(error_r, "NOTIFY=NEVER cannot be combined "
		    "with other keywords");
	*notify_r = bits;
	return 0;
}

bool
dsn_notify_valid(unsigned notify)
{
	return notify != 0 && (notify & ~0xfu) == 0 &&
	    (!(notify & DSN_NOTIFY_NEVER) || notify == DSN_NOTIFY_NEVER);
}

void
dsn_notify_format(unsigned notify, struct buf *out)
{
	bool first = true;

	for (size_t i = 0; i < DSN_NELEM(dsn_notify_words); i++) {
		if (!(notify & dsn_notify_words[i].bit))
			continue;
		if (!first)
			buf_putc(out, ',');
		buf_puts(out, dsn_notify_words[i].name);
		first = false;
	}
}

int
dsn_ret_parse(const char *s, size_t n, enum dsn_ret *ret_r,
    const char **error_r)
{
	if (dsn_word_is(s, n, "FULL"))
		*ret_r = DSN_RET_FULL;
	else if (dsn_word_is(s, n, "HDRS"))
		*ret_r = DSN_RET_HDRS;
	else
		return dsn_fail(error_r, "RET takes FULL or HDRS");
	return 0;
}

const char *
dsn_ret_name(enum dsn_ret ret)
{
	switch (ret) {
	case DSN_RET_FULL:
		return "FULL";
	case DSN_RET_HDRS:
		return "HDRS";
	default:
		return "";
	}
}

int
dsn_envid_parse(const char *s, size_t n, char out[DSN_ENVID_MAX + 1],
    const char **error_r)
{
	struct buf dec = BUF_INIT, enc = BUF_INIT;
	int r = -1;

	if (n == 0)
		dsn_fail(error_r, "ENVID needs a value");
	else if (n > DSN_ENVID_MAX)
		dsn_fail(error_r, "ENVID is longer than 100 characters");
	else if (dsn_xtext_decode(s, n, &dec, error_r) < 0)
		;
	else if (!dsn_is_printable(dec.data, dec.len))
		dsn_fail(error_r, "ENVID must decode to printable ASCII");
	else
		r = 0;
	if (r == 0) {
		/* Never longer: a character sent encoded that needs no
		 * encoding shrinks, one that needs it stays as it was. */
		dsn_xtext_encode(dec.data, dec.len, &enc);
		memcpy(out, enc.data, enc.len);
		out[enc.len] = '\0';
	}
	buf_free(&dec);
	buf_free(&enc);
	return r;
}

/* ---- ORCPT ----------------------------------------------------------- */

/* "\x{HEX}" at s (RFC 6533 EmbeddedUnicodeChar): its length, or 0 when
 * malformed or naming a character that must be written as itself. */
static size_t
dsn_unicode_escape(const char *s, size_t n, uint32_t *cp)
{
	uint32_t v = 0;
	size_t i;
	int h;

	if (n < 5 || s[1] != 'x' || s[2] != '{' || s[3] == '0')
		return 0;
	for (i = 3; i < n && i < 9 && (h = dsn_hex_any(s[i])) >= 0; i++)
		v = v << 4 | (uint32_t)h;
	if (i == 3 || i >= n || s[i] != '}')
		return 0;
	if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff) ||
	    (v < 0x80 && dsn_is_qchar((unsigned char)v)))
		return 0;
	*cp = v;
	return i + 1;
}

/* utf-8-addr-xtext, or utf-8-addr-unitext when raw_utf8 (RFC 6533 3);
 * "+XX" is accepted as well since xtext encoders produce it. */
static int
dsn_utf8_addr_decode(const char *s, size_t n, bool raw_utf8,
    struct buf *out, const char **error_r)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0, len; i < n; i += len) {
		uint32_t cp;
		int hi, lo;

		if (p[i] == '\\') {
			if ((len = dsn_unicode_escape(s + i, n - i, &cp)) == 0)
				return dsn_fail(error_r, "ORCPT: \"\\\" must "
				    "start \\x{HEX} for a character that "
				    "needs escaping");
			dsn_utf8_put(out, cp);
		} else if (p[i] == '+') {
			if (n - i < 3 || (hi = dsn_hex_upper(p[i + 1])) < 0 ||
			    (lo = dsn_hex_upper(p[i + 2])) < 0)
				return dsn_fail(error_r, "ORCPT: \"+\" must be "
				    "followed by two upper-case hex digits");
			buf_putc(out, (char)(hi << 4 | lo));
			len = 3;
		} else if (p[i] >= 0x80) {
			if (!raw_utf8)
				return dsn_fail(error_r, "ORCPT: non-ASCII "
				    "needs SMTPUTF8, or \\x{HEX}");
			if ((len = dsn_utf8_next(p + i, n - i, &cp)) == 0)
				return dsn_fail(error_r, "ORCPT: bad UTF-8");
			buf_append(out, s + i, len);
		} else if (dsn_is_qchar(p[i])) {
			buf_putc(out, (char)p[i]);
			len = 1;
		} else {
			return dsn_fail(error_r, "ORCPT: character not allowed "
			    "in a utf-8 address");
		}
	}
	if (!dsn_utf8_text_valid(out->data, out->len))
		return dsn_fail(error_r, "ORCPT: the address must be UTF-8 "
		    "without control characters");
	return 0;
}

static void
dsn_utf8_addr_encode(const char *s, size_t n, struct buf *out)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0, len; i < n; i += len) {
		uint32_t cp;

		if ((len = dsn_utf8_next(p + i, n - i, &cp)) == 0)
			cp = 0xfffd, len = 1;	/* callers pass valid UTF-8 */
		if (cp < 0x80 && dsn_is_qchar((unsigned char)cp))
			buf_putc(out, (char)cp);
		else
			buf_printf(out, "\\x{%X}", (unsigned)cp);
	}
}

struct dsn_orcpt_parts {
	struct buf type;	/* lower case */
	struct buf addr;	/* decoded */
	struct buf stored;
	bool utf8;		/* the "utf-8" type */
};

static void
dsn_orcpt_parts_free(struct dsn_orcpt_parts *op)
{
	buf_free(&op->type);
	buf_free(&op->addr);
	buf_free(&op->stored);
}

static int
dsn_orcpt_split(const char *s, size_t n, bool raw_utf8,
    struct dsn_orcpt_parts *op, const char **error_r)
{
	size_t t = 0;

	memset(op, 0, sizeof(*op));
	while (t < n && dsn_is_atext((unsigned char)s[t]))
		t++;
	if (t == 0 || t == n || s[t] != ';')
		return dsn_fail(error_r, "ORCPT must be an address type, "
		    "\";\" and an address");
	if (t > DSN_TYPE_MAX)
		return dsn_fail(error_r, "ORCPT address type is too long");
	if (t + 1 == n)
		return dsn_fail(error_r, "ORCPT has an empty address");
	for (size_t i = 0; i < t; i++)
		buf_putc(&op->type, (char)((s[i] >= 'A' && s[i] <= 'Z') ?
		    s[i] - 'A' + 'a' : s[i]));
	op->utf8 = strcmp(buf_cstr(&op->type), "utf-8") == 0;
	s += t + 1, n -= t + 1;
	if (op->utf8) {
		if (dsn_utf8_addr_decode(s, n, raw_utf8, &op->addr,
		    error_r) < 0)
			return -1;
	} else if (dsn_xtext_decode(s, n, &op->addr, error_r) < 0) {
		return -1;
	} else if (!dsn_is_printable(op->addr.data, op->addr.len)) {
		return dsn_fail(error_r, "ORCPT: the address must decode to "
		    "printable ASCII (the utf-8 type takes others)");
	}
	buf_append(&op->stored, op->type.data, op->type.len);
	buf_putc(&op->stored, ';');
	if (op->utf8)
		dsn_utf8_addr_encode(op->addr.data, op->addr.len, &op->stored);
	else
		dsn_xtext_encode(op->addr.data, op->addr.len, &op->stored);
	if (op->stored.len > DSN_ORCPT_STORED_MAX)
		return dsn_fail(error_r, "ORCPT address is too long");
	return 0;
}

int
dsn_orcpt_parse(const char *s, size_t n, bool smtputf8, struct buf *out,
    const char **error_r)
{
	struct dsn_orcpt_parts op;
	int r;

	if (n == 0)
		return dsn_fail(error_r, "ORCPT needs a value");
	if (n > DSN_ORCPT_MAX)
		return dsn_fail(error_r, "ORCPT is longer than 500 characters");
	r = dsn_orcpt_split(s, n, smtputf8, &op, error_r);
	if (r == 0)
		buf_append(out, op.stored.data, op.stored.len);
	dsn_orcpt_parts_free(&op);
	return r;
}

int
dsn_orcpt_decode(const char *stored, size_t n, struct buf *type,
    struct buf *addr, const char **error_r)
{
	struct dsn_orcpt_parts op;
	int r;

	if (n == 0 || n > DSN_ORCPT_STORED_MAX)
		return dsn_fail(error_r, "stored ORCPT has a bad length");
	r = dsn_orcpt_split(stored, n, false, &op, error_r);
	if (r == 0 && (op.stored.len != n ||
	    memcmp(op.stored.data, stored, n) != 0))
		r = dsn_fail(error_r, "stored ORCPT is not in its stored form");
	if (r == 0 && type != NULL)
		buf_append(type, op.type.data, op.type.len);
	if (r == 0 && addr != NULL)
		buf_append(addr, op.addr.data, op.addr.len);
	dsn_orcpt_parts_free(&op);
	return r;
}

/* ---- actions, status codes, the notify decision ---------------------- */

static const char *const dsn_action_names[] = {
	[DSN_ACTION_NONE] = "",
	[DSN_ACTION_FAILED] = "failed",
	[DSN_ACTION_DELAYED] = "delayed",
	[DSN_ACTION_DELIVERED] = "delivered",
	[DSN_ACTION_RELAYED] = "relayed",
	[DSN_ACTION_EXPANDED] = "expanded",
};

const char *
dsn_action_name(enum dsn_action action)
{
	if ((size_t)action >= DSN_NELEM(dsn_action_names))
		return "";
	return dsn_action_names[action];
}

int
dsn_action_parse(const char *s, size_t n, enum dsn_action *action_r,
    const char **error_r)
{
	for (size_t i = DSN_ACTION_FAILED; i < DSN_NELEM(dsn_action_names);
	    i++) {
		if (dsn_word_is(s, n, dsn_action_names[i])) {
			*action_r = (enum dsn_action)i;
			return 0;
		}
	}
	return dsn_fail(error_r, "unknown DSN action");
}

/* 1-3 digits at s; returns the count, 0 if none or more than 3. */
static size_t
dsn_digits(const char *s)
{
	size_t n = strspn(s, "0123456789");

	return n <= 3 ? n : 0;
}

bool
dsn_status_valid(const char *status)
{
	const char *p = status;
	size_t n;

	if (p[0] != '2' && p[0] != '4' && p[0] != '5')
		return false;
	if (p[1] != '.' || (n = dsn_digits(p + 2)) == 0)
		return false;
	p += 2 + n;
	if (*p != '.' || (n = dsn_digits(p + 1)) == 0)
		return false;
	return p[1 + n] == '\0';
}

bool
dsn_should_notify(const char *sender, unsigned notify,
    enum dsn_action action)
{
	if (sender == NULL || sender[0] == '\0' || strcmp(sender, "<>") == 0)
		return false;
	if (notify & DSN_NOTIFY_NEVER)
		return false;
	switch (action) {
	case DSN_ACTION_FAILED:
		return notify == 0 || (notify & DSN_NOTIFY_FAILURE);
	case DSN_ACTION_DELAYED:
		return notify == 0 || (notify & DSN_NOTIFY_DELAY);
	case DSN_ACTION_DELIVERED:
	case DSN_ACTION_RELAYED:
	case DSN_ACTION_EXPANDED:
		return (notify & DSN_NOTIFY_SUCCESS) != 0;
	default:
		return false;
	}
}

/* ---- envelope lines -------------------------------------------------- */

void
dsn_rcpt_free(struct dsn_rcpt *r)
{
	x_free(&r->addr);
	x_free(&r->orcpt);
	x_free(&r->remote_mta);
	x_free(&r->diagnostic);
	memset(r, 0, sizeof(*r));
}

static bool
dsn_time_in_range(time_t t)
{
	return t >= 0 && (long long)t <= DSN_TIME_MAX;
}

static int
dsn_rcpt_check(const struct dsn_rcpt *r, const char **error_r)
{
	if (r->addr == NULL || !dsn_addr_valid(r->addr, strlen(r->addr)))
		return dsn_fail(error_r, "no valid recipient address");
	if (r->notify != 0 && !dsn_notify_valid(r->notify))
		return dsn_fail(error_r, "invalid NOTIFY bits");
	if (r->orcpt != NULL && dsn_orcpt_decode(r->orcpt, strlen(r->orcpt),
	    NULL, NULL, error_r) < 0)
		return -1;
	if ((size_t)r->action >= DSN_NELEM(dsn_action_names))
		return dsn_fail(error_r, "invalid DSN action");
	if (r->status[0] != '\0' && !dsn_status_valid(r->status))
		return dsn_fail(error_r, "invalid status code");
	if (r->smtp_code != 0 && (r->smtp_code < 200 || r->smtp_code > 599))
		return dsn_fail(error_r, "invalid SMTP reply code");
	if (r->remote_mta != NULL &&
	    !dsn_host_valid(r->remote_mta, strlen(r->remote_mta)))
		return dsn_fail(error_r, "remote MTA is not a host name");
	if (!dsn_time_in_range(r->last_attempt) ||
	    !dsn_time_in_range(r->retry_until))
		return dsn_fail(error_r, "time out of range");
	return 0;
}

static void
dsn_put_xtext_field(struct buf *b, const char *key, const char *s, size_t n)
{
	buf_printf(b, " %s=", key);
	dsn_xtext_encode(s, n, b);
}

int
dsn_rcpt_format(const struct dsn_rcpt *r, struct buf *out,
    const char **error_r)
{
	struct buf b = BUF_INIT, diag = BUF_INIT;

	if (dsn_rcpt_check(r, error_r) < 0)
		return -1;
	buf_puts(&b, "rcpt=");
	dsn_xtext_encode(r->addr, strlen(r->addr), &b);
	if (r->notify != 0) {
		buf_puts(&b, " notify=");
		dsn_notify_format(r->notify, &b);
	}
	if (r->orcpt != NULL)
		buf_printf(&b, " orcpt=%s", r->orcpt);
	if (r->action != DSN_ACTION_NONE)
		buf_printf(&b, " action=%s", dsn_action_name(r->action));
	if (r->status[0] != '\0')
		buf_printf(&b, " status=%s", r->status);
	if (r->smtp_code != 0)
		buf_printf(&b, " code=%d", r->smtp_code);
	if (r->remote_mta != NULL)
		dsn_put_xtext_field(&b, "mta", r->remote_mta,
		    strlen(r->remote_mta));
	if (r->diagnostic != NULL)
		dsn_text_clean(r->diagnostic, strlen(r->diagnostic), true,
		    DSN_DIAG_MAX, &diag);
	if (diag.len > 0)
		dsn_put_xtext_field(&b, "diag", diag.data, diag.len);
	if (r->last_attempt != 0)
		buf_printf(&b, " last=%lld", (long long)r->last_attempt);
	if (r->retry_until != 0)
		buf_printf(&b, " until=%lld", (long long)r->retry_until);
	if (r->delay_notified)
		buf_puts(&b, " warned=1");
	buf_append(out, b.data, b.len);
	buf_free(&b);
	buf_free(&diag);
	return 0;
}

/* Decodes xtext into a new string that passes valid(); NULL otherwise. */
static char *
dsn_xtext_string(const char *v, size_t n, bool (*valid)(const char *,
    size_t))
{
	struct buf b = BUF_INIT;
	char *s = NULL;

	if (dsn_xtext_decode(v, n, &b, NULL) == 0 && valid(b.data, b.len))
		s = x_strndup(buf_cstr(&b), b.len);
	buf_free(&b);
	return s;
}

static bool
dsn_diag_valid(const char *s, size_t n)
{
	struct buf b = BUF_INIT;
	bool ok;

	dsn_text_clean(s, n, true, DSN_DIAG_MAX, &b);
	ok = n > 0 && b.len == n && memcmp(b.data, s, n) == 0;
	buf_free(&b);
	return ok;
}

static int
dsn_parse_number(const char *v, size_t n, long long max, long long *out)
{
	long long x = 0;

	if (n == 0 || n > 12)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (v[i] - '0');
	}
	if (x > max)
		return -1;
	*out = x;
	return 0;
}

typedef int dsn_field_fn(struct dsn_rcpt *r, const char *v, size_t n,
    const char **error_r);

static int
dsn_field_rcpt(struct dsn_rcpt *r, const char *v, size_t n,
    const char **error_r)
{
	r->addr = dsn_xtext_string(v, n, dsn_addr_valid);
	return r->addr != NULL ? 0 :
	    dsn_fail(error_r, "envelope line: bad recipient address");
}

static int
dsn_field_notify(struct dsn_rcpt *r, const char *v, size_t n,
    const char **error_r)
{
	return dsn_notify_parse(v, n, &r->notify, error_r);
}

static int
dsn_field_orcpt(struct dsn_rcpt *r, const char *v, size_t n,
    const char **error_r)
{
	if (dsn_orcpt_decode(v, n, NULL, NULL, error_r) < 0)
		return -1;
	r->orcpt = x_strndup(v, n);
	return 0;
}

static int
dsn_field_action(struct dsn_rcpt *r, const char *v, size_t n,
    const char **error_r)
{
	return dsn_action_parse(v, n, &r->action, error_r);
}

static int
dsn_field_status(struct dsn_rcpt *r, const char *v, size_t n,
    const char **error_r)
{
	if (n == 0 || n > DSN_STATUS_MAX)
		return dsn_fail(error_r, "envelope line: bad status code");
	memcpy(r->status, v, n);
	r->status[n] = '\0';
	return dsn_status_valid(r->status) ? 0 :
	    dsn_fail(error_r, "envelope line: bad status code");
}

static int
dsn_field_code(struct dsn_rcpt *r, const char *v, size_t n,
    const char **error_r)
{
	long long x;

	if (n != 3 || dsn_parse_number(v, n, 599, &x) < 0 || x < 200)
		return dsn_fail(error_r, "envelope line: bad reply code");
	r->smtp_code = (int)x;
	return 0;
}

static int
dsn_field_mta(struct dsn_rcpt *r, const char *v, size_t n,
    const char **error_r)
{
	r->remote_mta = dsn_xtext_string(v, n, dsn_host_valid);
	return r->remote_mta != NULL ? 0 :
	    dsn_fail(error_r, "envelope line: bad remote MTA name");
}

static int
dsn_field_diag(struct dsn_rcpt *r, const char *v, size_t n,
    const char **error_r)
{
	r->diagnostic = dsn_xtext_string(v, n, dsn_diag_valid);
	return r->diagnostic != NULL ? 0 :
	    dsn_fail(error_r, "envelope line: bad diagnostic text");
}

static int
dsn_field_time(time_t *t, const char *v, size_t n, const char **error_r)
{
	long long x;

	if (dsn_parse_number(v, n, DSN_TIME_MAX, &x) < 0)
		return dsn_fail(error_r, "envelope line: bad time");
	*t = (time_t)x;
	return 0;
}

static int
dsn_field_last(struct dsn_rcpt *r, const char *v, size_t n,
    const char **error_r)
{
	return dsn_field_time(&r->last_attempt, v, n, error_r);
}

static int
dsn_field_until(struct dsn_rcpt *r, const char *v, size_t n,
    const char **error_r)
{
	return dsn_field_time(&r->retry_until, v, n, error_r);
}

static int
dsn_field_warned(struct dsn_rcpt *r, const char *v, size_t n,
    const char **error_r)
{
	if (n != 1 || v[0] != '1')
		return dsn_fail(error_r, "envelope line: bad warned flag");
	r->delay_notified = true;
	return 0;
}

static const struct {
	const char *key;
	dsn_field_fn *parse;
} dsn_fields[] = {
	{ "rcpt", dsn_field_rcpt },
	{ "notify", dsn_field_notify },
	{ "orcpt", dsn_field_orcpt },
	{ "action", dsn_field_action },
	{ "status", dsn_field_status },
	{ "code", dsn_field_code },
	{ "mta", dsn_field_mta },
	{ "diag", dsn_field_diag },
	{ "last", dsn_field_last },
	{ "until", dsn_field_until },
	{ "warned", dsn_field_warned },
};

static int
dsn_parse_token(struct dsn_rcpt *r, const char *tok, size_t n,
    unsigned *seen, const char **error_r)
{
	const char *eq = memchr(tok, '=', n);
	size_t klen;

	if (eq == NULL || eq == tok)
		return dsn_fail(error_r, "envelope line: expected key=value");
	if (!dsn_is_printable(tok, n))
		return dsn_fail(error_r, "envelope line: control or non-ASCII "
		    "octet");
	klen = (size_t)(eq - tok);
	for (size_t i = 0; i < DSN_NELEM(dsn_fields); i++) {
		if (strlen(dsn_fields[i].key) != klen ||
		    memcmp(dsn_fields[i].key, tok, klen) != 0)
			continue;
		if (*seen & (1u << i))
			return dsn_fail(error_r, "envelope line repeats a key");
		*seen |= 1u << i;
		return dsn_fields[i].parse(r, eq + 1, n - klen - 1, error_r);
	}
	return 0;	/* a field of a newer version */
}

int
dsn_rcpt_parse(const char *line, size_t n, struct dsn_rcpt *r,
    const char **error_r)
{
	unsigned seen = 0;
	size_t i = 0;

	memset(r, 0, sizeof(*r));
	if (n == 0)
		return dsn_fail(error_r, "envelope line is empty");
	if (n > DSN_LINE_MAX)
		return dsn_fail(error_r, "envelope line is too long");
	for (;;) {
		const char *sp = memchr(line + i, ' ', n - i);
		size_t end = sp != NULL ? (size_t)(sp - line) : n;

		if (dsn_parse_token(r, line + i, end - i, &seen, error_r) < 0) {
			dsn_rcpt_free(r);
			return -1;
		}
		if (end == n)
			break;
		i = end + 1;
	}
	if (r->addr == NULL) {
		dsn_rcpt_free(r);
		return dsn_fail(error_r, "envelope line has no recipient");
	}
	return 0;
}

/* ---- the report: output and the original message --------------------- */

#define DSN_IO_SIZE	(64 * 1024)
#define DSN_CHUNK_SIZE	(16 * 1024)
#define DSN_LINE_OCTETS	998	/* RFC 5322 2.1.1, without CRLF */
#define DSN_FOLD_AT	78
#define DSN_BOUNDARY_LEN 41	/* "=_correo_" and 32 random hex digits */

struct dsn_out {
	int fd;
	int err;	/* errno of the first failed write */
	uint64_t total;
	size_t len;
	char *buf;	/* DSN_IO_SIZE */
};

static void
dsn_out_flush(struct dsn_out *o)
{
	size_t off = 0;

	while (off < o->len && o->err == 0) {
		ssize_t w = write(o->fd, o->buf + off, o->len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			o->err = w < 0 ? errno : EIO;
		else
			off += (size_t)w;
	}
	o->len = 0;
}

static void
dsn_out_write(struct dsn_out *o, const void *p, size_t n)
{
	const char *s = p;

	o->total += n;
	while (n > 0) {
		size_t k;

		if (o->len == DSN_IO_SIZE)
			dsn_out_flush(o);
		k = DSN_IO_SIZE - o->len < n ? DSN_IO_SIZE - o->len : n;
		memcpy(o->buf + o->len, s, k);
		o->len += k, s += k, n -= k;
	}
}

static void
dsn_out_buf(struct dsn_out *o, const struct buf *b)
{
	dsn_out_write(o, b->data, b->len);
}

static void
dsn_out_sink(void *ctx, const char *p, size_t n)
{
	dsn_out_write(ctx, p, n);
}

/* The original as it goes into the report: CRLF line ends (bare CR and
 * bare LF count as line ends), lines broken after 998 octets (a folded
 * continuation in the header section), NUL made a space, and a line end
 * at the end; optionally only the header section. */
struct dsn_norm {
	bool headers_only;
	bool in_body;
	bool pending_cr;
	bool done;
	bool eightbit;
	size_t line_len;
	size_t len;
	char *chunk;	/* DSN_CHUNK_SIZE */
	void (*sink)(void *ctx, const char *p, size_t n);
	void *ctx;
};

static void
dsn_norm_put(struct dsn_norm *nm, char c)
{
	if (nm->len == DSN_CHUNK_SIZE) {
		nm->sink(nm->ctx, nm->chunk, nm->len);
		nm->len = 0;
	}
	nm->chunk[nm->len++] = c;
}

static void
dsn_norm_eol(struct dsn_norm *nm)
{
	if (nm->line_len == 0 && !nm->in_body) {
		if (nm->headers_only) {
			nm->done = true;
			return;
		}
		nm->in_body = true;
	}
	dsn_norm_put(nm, '\r');
	dsn_norm_put(nm, '\n');
	nm->line_len = 0;
}

static void
dsn_norm_byte(struct dsn_norm *nm, unsigned char c)
{
	if (nm->line_len == DSN_LINE_OCTETS) {
		dsn_norm_put(nm, '\r');
		dsn_norm_put(nm, '\n');
		nm->line_len = 0;
		if (!nm->in_body) {
			dsn_norm_put(nm, ' ');
			nm->line_len = 1;
		}
	}
	if (c == '\0')
		c = ' ';
	if (c >= 0x80)
		nm->eightbit = true;
	dsn_norm_put(nm, (char)c);
	nm->line_len++;
}

static void
dsn_norm_feed(struct dsn_norm *nm, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n && !nm->done; i++) {
		unsigned char c = p[i];

		if (nm->pending_cr) {
			nm->pending_cr = false;
			dsn_norm_eol(nm);
			if (c == '\n')
				continue;
			if (nm->done)
				break;
		}
		if (c == '\r')
			nm->pending_cr = true;
		else if (c == '\n')
			dsn_norm_eol(nm);
		else
			dsn_norm_byte(nm, c);
	}
}

static void
dsn_norm_finish(struct dsn_norm *nm)
{
	if (nm->pending_cr && !nm->done)
		dsn_norm_eol(nm);
	if (!nm->done && nm->line_len > 0)
		dsn_norm_eol(nm);
	if (nm->len > 0)
		nm->sink(nm->ctx, nm->chunk, nm->len);
	nm->len = 0;
}

/* Streams the original from its start through nm. */
static int
dsn_orig_pass(int fd, struct dsn_norm *nm, char *inbuf)
{
	off_t off = 0;

	while (!nm->done) {
		ssize_t r = pread(fd, inbuf, DSN_IO_SIZE, off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		off += r;
		dsn_norm_feed(nm, (const unsigned char *)inbuf, (size_t)r);
	}
	dsn_norm_finish(nm);
	return 0;
}

/* Looks for the boundary in a stream, across chunk seams. */
struct dsn_scan {
	const char *boundary;
	size_t blen;
	bool found;
	size_t tail_len;
	char tail[DSN_BOUNDARY_LEN];	/* the last blen-1 octets seen */
};

static void
dsn_scan_sink(void *ctx, const char *p, size_t n)
{
	struct dsn_scan *sc = ctx;
	char seam[2 * DSN_BOUNDARY_LEN];
	size_t k = n < sc->blen - 1 ? n : sc->blen - 1, keep;

	if (sc->found)
		return;
	memcpy(seam, sc->tail, sc->tail_len);
	memcpy(seam + sc->tail_len, p, k);
	if (memmem(seam, sc->tail_len + k, sc->boundary, sc->blen) != NULL ||
	    memmem(p, n, sc->boundary, sc->blen) != NULL) {
		sc->found = true;
		return;
	}
	if (n >= sc->blen - 1) {
		memcpy(sc->tail, p + n - (sc->blen - 1), sc->blen - 1);
		sc->tail_len = sc->blen - 1;
		return;
	}
	keep = sc->tail_len < sc->blen - 1 - n ? sc->tail_len :
	    sc->blen - 1 - n;
	memmove(sc->tail, sc->tail + sc->tail_len - keep, keep);
	memcpy(sc->tail + keep, p, n);
	sc->tail_len = keep + n;
}

/* ---- the report: its parts ------------------------------------------- */

enum dsn_return { DSN_RETURN_NONE, DSN_RETURN_HEADERS, DSN_RETURN_FULL };

struct dsn_ctx {
	const struct dsn_report *r;
	bool global;
	bool any_failed;
	bool any_delayed;
	enum dsn_return what;
	bool too_big;
	bool orig_eightbit;
	uint64_t orig_size;
	time_t now;
	char boundary[DSN_BOUNDARY_LEN + 1];
	struct buf text;	/* the body of the text/plain part */
	struct buf status;	/* the body of the delivery-status part */
	char *inbuf;		/* DSN_IO_SIZE */
	char *chunk;		/* DSN_CHUNK_SIZE */
};

static bool
dsn_time_ok(time_t t)
{
	return t > 0 && (long long)t <= DSN_TIME_MAX;
}

static void
dsn_date(time_t t, char *out, size_t n)
{
	format_rfc5322_date(t, out, n);
}

/* Appends words as lines of at most width octets where words allow, each
 * line starting with indent and ending with CRLF. */
static void
dsn_wrap(struct buf *b, const char *indent, const char *text, size_t width)
{
	size_t col = 0, i = 0, n = strlen(text);

	while (i < n) {
		size_t w;

		while (i < n && text[i] == ' ')
			i++;
		if (i == n)
			break;
		for (w = i; w < n && text[w] != ' '; w++)
			;
		if (col > 0 && col + 1 + (w - i) > width) {
			buf_puts(b, "\r\n");
			col = 0;
		}
		if (col == 0) {
			buf_puts(b, indent);
			col = strlen(indent);
		} else {
			buf_putc(b, ' ');
			col++;
		}
		buf_append(b, text + i, w - i);
		col += w - i;
		i = w;
	}
	if (col > 0)
		buf_puts(b, "\r\n");
}

/* A header field folded before DSN_FOLD_AT where its words allow. */
static void
dsn_field_folded(struct buf *b, const char *name, const char *value)
{
	size_t col = strlen(name) + 1, i = 0, n = strlen(value);

	buf_puts(b, name);
	buf_putc(b, ':');
	while (i < n) {
		size_t w;

		while (i < n && value[i] == ' ')
			i++;
		if (i == n)
			break;
		for (w = i; w < n && value[w] != ' '; w++)
			;
		if (col > strlen(name) + 1 && col + 1 + (w - i) > DSN_FOLD_AT) {
			buf_puts(b, "\r\n");
			col = 0;
		}
		buf_putc(b, ' ');
		buf_append(b, value + i, w - i);
		col += 1 + (w - i);
		i = w;
	}
	buf_puts(b, "\r\n");
}

/* The diagnostic as a report may show it. */
static void
dsn_diag_text(const struct dsn_ctx *c, const struct dsn_rcpt *rc,
    struct buf *out)
{
	if (rc->diagnostic != NULL)
		dsn_text_clean(rc->diagnostic, strlen(rc->diagnostic),
		    c->global, DSN_DIAG_MAX, out);
}

/* Queue ids go into the text and Message-ID: letters and digits only. */
static bool
dsn_queue_id_ok(const char *id)
{
	size_t n = id != NULL ? strlen(id) : 0;

	return n > 0 && n <= 64 && strspn(id, "0123456789"
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") == n;
}

static bool
dsn_mta_ok(const struct dsn_rcpt *rc)
{
	return rc->remote_mta != NULL &&
	    dsn_host_valid(rc->remote_mta, strlen(rc->remote_mta));
}

static bool
dsn_code_ok(const struct dsn_rcpt *rc)
{
	return rc->smtp_code >= 200 && rc->smtp_code <= 599;
}

static void
dsn_status_of(const struct dsn_rcpt *rc, char out[DSN_STATUS_MAX + 1])
{
	const char *d = rc->diagnostic;
	size_t n;

	if (dsn_status_valid(rc->status)) {
		memcpy(out, rc->status, sizeof(rc->status));
		return;
	}
	/* The enhanced code that starts the remote reply, when its class
	 * agrees with the reply code. */
	if (d != NULL && dsn_code_ok(rc) && (n = strcspn(d, " ")) > 0 &&
	    n <= DSN_STATUS_MAX && d[0] == '0' + rc->smtp_code / 100) {
		memcpy(out, d, n);
		out[n] = '\0';
		if (dsn_status_valid(out))
			return;
	}
	if (rc->action == DSN_ACTION_FAILED)
		str_copy(out, "5.0.0", DSN_STATUS_MAX + 1);
	else if (rc->action == DSN_ACTION_DELAYED)
		str_copy(out, "4.0.0", DSN_STATUS_MAX + 1);
	else
		str_copy(out, "2.0.0", DSN_STATUS_MAX + 1);
}

static const char *
dsn_outcome_text(enum dsn_action action)
{
	switch (action) {
	case DSN_ACTION_FAILED:
		return "Delivery failed permanently; the mail system will "
		    "not try again.";
	case DSN_ACTION_DELAYED:
		return "Not delivered yet; the mail system is still trying.";
	case DSN_ACTION_DELIVERED:
		return "Delivered.";
	case DSN_ACTION_RELAYED:
		return "Passed on to a mail server that does not send "
		    "delivery reports; no further report will come.";
	default:
		return "Delivered to an alias or mailing list and passed on "
		    "to its members; no further report will come.";
	}
}

/* One recipient in plain English. */
static void
dsn_text_rcpt(struct dsn_ctx *c, const struct dsn_rcpt *rc)
{
	struct buf s = BUF_INIT, diag = BUF_INIT;
	char date[64];

	buf_printf(&c->text, "<%s>\r\n", rc->addr);
	buf_puts(&s, dsn_outcome_text(rc->action));
	if (rc->action == DSN_ACTION_DELAYED && dsn_time_ok(rc->retry_until)) {
		dsn_date(rc->retry_until, date, sizeof(date));
		buf_printf(&s, " It will keep trying until %s.", date);
	}
	dsn_diag_text(c, rc, &diag);
	if (dsn_code_ok(rc))
		buf_printf(&s, " The mail server %s answered: %d %s",
		    dsn_mta_ok(rc) ? rc->remote_mta : "of the recipient",
		    rc->smtp_code, buf_cstr(&diag));
	else if (diag.len > 0)
		buf_printf(&s, " Reason: %s", buf_cstr(&diag));
	else if (dsn_mta_ok(rc))
		buf_printf(&s, " The last mail server tried was %s.",
		    rc->remote_mta);
	dsn_wrap(&c->text, "    ", buf_cstr(&s), 72);
	if ((rc->action == DSN_ACTION_FAILED ||
	    rc->action == DSN_ACTION_DELAYED) &&
	    dsn_time_ok(rc->last_attempt)) {
		dsn_date(rc->last_attempt, date, sizeof(date));
		buf_reset(&s);
		buf_printf(&s, "Last attempt: %s.", date);
		dsn_wrap(&c->text, "    ", buf_cstr(&s), 72);
	}
	buf_puts(&c->text, "\r\n");
	buf_free(&s);
	buf_free(&diag);
}

static const char *
dsn_intro_text(const struct dsn_ctx *c)
{
	if (c->any_failed)
		return "Your message could not be delivered to one or more "
		    "of its recipients. Each of them is listed below with "
		    "the reason.";
	if (c->any_delayed)
		return "Your message has not yet been delivered to one or "
		    "more of its recipients. The mail system will keep "
		    "trying, so there is no need to send it again. Each of "
		    "them is listed below.";
	return "This is the delivery report you asked for: what became of "
	    "your message for each recipient is listed below.";
}

static void
dsn_build_text(struct dsn_ctx *c)
{
	const struct dsn_report *r = c->r;
	struct buf s = BUF_INIT;
	char date[64];

	buf_printf(&c->text, "This is the mail delivery system at %s.\r\n\r\n",
	    r->reporting_mta);
	dsn_wrap(&c->text, "", dsn_intro_text(c), 72);
	buf_puts(&c->text, "\r\n");
	if (dsn_time_ok(r->arrival)) {
		dsn_date(r->arrival, date, sizeof(date));
		buf_printf(&s, "The message was received on %s", date);
		if (dsn_queue_id_ok(r->queue_id))
			buf_printf(&s, " (queue id %s)", r->queue_id);
		buf_puts(&s, ".");
		dsn_wrap(&c->text, "", buf_cstr(&s), 72);
		buf_puts(&c->text, "\r\n");
	}
	for (size_t i = 0; i < r->nrcpts; i++)
		dsn_text_rcpt(c, &r->rcpts[i]);
	buf_reset(&s);
	if (c->what == DSN_RETURN_FULL)
		buf_puts(&s, "A copy of the original message is attached.");
	else if (c->what == DSN_RETURN_HEADERS && c->too_big)
		buf_printf(&s, "The original message is too large to return "
		    "in full (%llu octets); its header section is attached.",
		    (unsigned long long)c->orig_size);
	else if (c->what == DSN_RETURN_HEADERS)
		buf_puts(&s, "The header section of the original message is "
		    "attached.");
	dsn_wrap(&c->text, "", buf_cstr(&s), 72);
	buf_free(&s);
}

static void
dsn_status_envid(struct dsn_ctx *c)
{
	const char *e = c->r->envid;
	struct buf dec = BUF_INIT;

	if (e != NULL && e[0] != '\0' && strlen(e) <= DSN_ENVID_MAX &&
	    dsn_xtext_decode(e, strlen(e), &dec, NULL) == 0 &&
	    dsn_is_printable(dec.data, dec.len))
		buf_printf(&c->status, "Original-Envelope-Id: %s\r\n",
		    buf_cstr(&dec));
	buf_free(&dec);
}

/* RFC 3461 6.3: the address decoded from xtext; a utf-8 address stays in
 * its 7-bit form unless the report may carry UTF-8 (RFC 6533 3). */
static void
dsn_status_orcpt(struct dsn_ctx *c, const struct dsn_rcpt *rc)
{
	struct buf type = BUF_INIT, addr = BUF_INIT;

	if (rc->orcpt != NULL && dsn_orcpt_decode(rc->orcpt,
	    strlen(rc->orcpt), &type, &addr, NULL) == 0) {
		if (strcmp(buf_cstr(&type), "utf-8") == 0 && !c->global)
			buf_printf(&c->status, "Original-Recipient: %s\r\n",
			    rc->orcpt);
		else
			buf_printf(&c->status, "Original-Recipient: %s;%s\r\n",
			    buf_cstr(&type), buf_cstr(&addr));
	}
	buf_free(&type);
	buf_free(&addr);
}

static void
dsn_status_rcpt(struct dsn_ctx *c, const struct dsn_rcpt *rc)
{
	struct buf *b = &c->status, v = BUF_INIT;
	char status[DSN_STATUS_MAX + 1], date[64];

	buf_puts(b, "\r\n");
	dsn_status_orcpt(c, rc);
	/* Non-ASCII addresses only occur in global reports (see
	 * dsn_ctx_init), where the utf-8 type takes them raw. */
	buf_printf(b, "Final-Recipient: %s;%s\r\n",
	    dsn_is_ascii(rc->addr) ? "rfc822" : "utf-8", rc->addr);
	buf_printf(b, "Action: %s\r\n", dsn_action_name(rc->action));
	dsn_status_of(rc, status);
	buf_printf(b, "Status: %s\r\n", status);
	if (dsn_mta_ok(rc))
		buf_printf(b, "Remote-MTA: dns; %s\r\n", rc->remote_mta);
	if (dsn_code_ok(rc)) {
		buf_printf(&v, "smtp; %d ", rc->smtp_code);
		dsn_diag_text(c, rc, &v);
		dsn_field_folded(b, "Diagnostic-Code", buf_cstr(&v));
	}
	if (dsn_time_ok(rc->last_attempt)) {
		dsn_date(rc->last_attempt, date, sizeof(date));
		buf_printf(b, "Last-Attempt-Date: %s\r\n", date);
	}
	if (rc->action == DSN_ACTION_DELAYED && dsn_time_ok(rc->retry_until)) {
		dsn_date(rc->retry_until, date, sizeof(date));
		buf_printf(b, "Will-Retry-Until: %s\r\n", date);
	}
	buf_free(&v);
}

static void
dsn_build_status(struct dsn_ctx *c)
{
	const struct dsn_report *r = c->r;
	char date[64];

	dsn_status_envid(c);
	buf_printf(&c->status, "Reporting-MTA: dns; %s\r\n", r->reporting_mta);
	if (dsn_time_ok(r->arrival)) {
		dsn_date(r->arrival, date, sizeof(date));
		buf_printf(&c->status, "Arrival-Date: %s\r\n", date);
	}
	if (dsn_queue_id_ok(r->queue_id))
		buf_printf(&c->status, "X-Correo-Queue-ID: %s\r\n",
		    r->queue_id);
	for (size_t i = 0; i < r->nrcpts; i++)
		dsn_status_rcpt(c, &r->rcpts[i]);
}

/* ---- the report: putting it together --------------------------------- */

static int
dsn_report_check(const struct dsn_report *r, const char **error_r)
{
	const char *s = r->sender;

	if (s == NULL || s[0] == '\0' || strcmp(s, "<>") == 0)
		return dsn_fail(error_r,
		    "no report is sent to the null sender");
	if (s[0] == '<' || !dsn_addr_valid(s, strlen(s)))
		return dsn_fail(error_r, "the sender is not a valid address "
		    "(it is given without angle brackets)");
	if (r->reporting_mta == NULL ||
	    !dsn_host_valid(r->reporting_mta, strlen(r->reporting_mta)))
		return dsn_fail(error_r,
		    "the reporting MTA is not a host name");
	if (r->rcpts == NULL || r->nrcpts == 0)
		return dsn_fail(error_r, "a report needs a recipient");
	for (size_t i = 0; i < r->nrcpts; i++) {
		const struct dsn_rcpt *rc = &r->rcpts[i];

		if (rc->addr == NULL ||
		    !dsn_addr_valid(rc->addr, strlen(rc->addr)))
			return dsn_fail(error_r, "a recipient has no valid "
			    "address");
		if (rc->action == DSN_ACTION_NONE ||
		    (size_t)rc->action >= DSN_NELEM(dsn_action_names))
			return dsn_fail(error_r, "a recipient has no outcome "
			    "to report");
	}
	return 0;
}

static int
dsn_ctx_init(struct dsn_ctx *c, const struct dsn_report *r, int msg_fd)
{
	uint64_t max = r->return_max != 0 ? r->return_max : DSN_RETURN_MAX;
	struct stat st;
	bool want_full;

	memset(c, 0, sizeof(*c));
	c->r = r;
	c->now = r->now != 0 ? r->now : time(NULL);
	c->global = r->smtputf8 || !dsn_is_ascii(r->sender);
	for (size_t i = 0; i < r->nrcpts; i++) {
		if (!dsn_is_ascii(r->rcpts[i].addr))
			c->global = true;
		if (r->rcpts[i].action == DSN_ACTION_FAILED)
			c->any_failed = true;
		if (r->rcpts[i].action == DSN_ACTION_DELAYED)
			c->any_delayed = true;
	}
	if (msg_fd < 0)
		return 0;
	if (fstat(msg_fd, &st) < 0)
		return -1;
	c->orig_size = (uint64_t)st.st_size;
	/* RFC 3461 4.3: failures return the message unless RET=HDRS; as
	 * is customary, other notices return it only with RET=FULL. */
	want_full = c->any_failed ? c->r->ret != DSN_RET_HDRS :
	    c->r->ret == DSN_RET_FULL;
	c->too_big = want_full && c->orig_size > max;
	c->what = want_full && !c->too_big ? DSN_RETURN_FULL :
	    DSN_RETURN_HEADERS;
	return 0;
}

static void
dsn_new_boundary(char out[DSN_BOUNDARY_LEN + 1])
{
	char a[17], b[17];

	make_id(a);
	make_id(b);
	if (snprintf(out, DSN_BOUNDARY_LEN + 1, "=_correo_%s%s", a, b) !=
	    DSN_BOUNDARY_LEN)
		panic("dsn: boundary length");
}

static bool
dsn_buf_has(const struct buf *b, const char *needle)
{
	return b->len > 0 &&
	    memmem(b->data, b->len, needle, strlen(needle)) != NULL;
}

static bool
dsn_buf_8bit(const struct buf *b)
{
	for (size_t i = 0; i < b->len; i++)
		if ((unsigned char)b->data[i] >= 0x80)
			return true;
	return false;
}

static void
dsn_norm_init(struct dsn_norm *nm, const struct dsn_ctx *c,
    void (*sink)(void *, const char *, size_t), void *ctx)
{
	memset(nm, 0, sizeof(*nm));
	nm->headers_only = c->what == DSN_RETURN_HEADERS;
	nm->chunk = c->chunk;
	nm->sink = sink;
	nm->ctx = ctx;
}

/* A random boundary that occurs in no part: the first pass over the
 * original also learns whether what is returned has 8-bit octets. */
static int
dsn_pick_boundary(struct dsn_ctx *c, int msg_fd)
{
	for (int tries = 0; tries < 8; tries++) {
		struct dsn_scan sc;
		struct dsn_norm nm;

		dsn_new_boundary(c->boundary);
		if (dsn_buf_has(&c->text, c->boundary) ||
		    dsn_buf_has(&c->status, c->boundary))
			continue;
		if (c->what == DSN_RETURN_NONE)
			return 0;
		memset(&sc, 0, sizeof(sc));
		sc.boundary = c->boundary;
		sc.blen = DSN_BOUNDARY_LEN;
		dsn_norm_init(&nm, c, dsn_scan_sink, &sc);
		if (dsn_orig_pass(msg_fd, &nm, c->inbuf) < 0)
			return -1;
		c->orig_eightbit = nm.eightbit;
		if (!sc.found)
			return 0;
	}
	errno = EAGAIN;
	return -1;
}

static const char *
dsn_subject(const struct dsn_ctx *c)
{
	if (c->any_failed)
		return "Undelivered Mail Returned to Sender";
	if (c->any_delayed)
		return "Delayed Mail (still being retried)";
	return "Successful Mail Delivery Report";
}

static void
dsn_write_head(const struct dsn_ctx *c, struct dsn_out *o, bool eightbit)
{
	const struct dsn_report *r = c->r;
	bool qid = dsn_queue_id_ok(r->queue_id);
	struct buf h = BUF_INIT;
	char date[64], id[17];

	dsn_date(c->now, date, sizeof(date));
	make_id(id);
	buf_printf(&h, "From: \"Mail Delivery System\" <MAILER-DAEMON@%s>\r\n"
	    "To: <%s>\r\nSubject: %s\r\nDate: %s\r\n", r->reporting_mta,
	    r->sender, dsn_subject(c), date);
	buf_printf(&h, "Message-ID: <%s%s%s@%s>\r\n", id, qid ? "." : "",
	    qid ? r->queue_id : "", r->reporting_mta);
	buf_puts(&h, "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n");
	buf_printf(&h, "Content-Type: multipart/report; "
	    "report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n",
	    c->boundary);
	if (eightbit)
		buf_puts(&h, "Content-Transfer-Encoding: 8bit\r\n");
	buf_puts(&h, "\r\nThis is a MIME-encapsulated delivery status "
	    "notification.\r\n");
	dsn_out_buf(o, &h);
	buf_free(&h);
}

static void
dsn_write_part_head(const struct dsn_ctx *c, struct dsn_out *o,
    const char *type, const char *desc, bool eightbit)
{
	struct buf h = BUF_INIT;

	buf_printf(&h, "\r\n--%s\r\nContent-Type: %s\r\n"
	    "Content-Description: %s\r\nContent-Transfer-Encoding: %s\r\n\r\n",
	    c->boundary, type, desc, eightbit ? "8bit" : "7bit");
	dsn_out_buf(o, &h);
	buf_free(&h);
}

static const char *
dsn_orig_type(const struct dsn_ctx *c)
{
	if (c->what == DSN_RETURN_FULL)
		return c->global ? "message/global" : "message/rfc822";
	return c->global ? "message/global-headers" : "text/rfc822-headers";
}

/* Every part's body ends with CRLF, so "\r\n--" always starts a
 * delimiter line. */
static int
dsn_write(struct dsn_ctx *c, int msg_fd, struct dsn_out *o)
{
	bool text8 = dsn_buf_8bit(&c->text), status8 = dsn_buf_8bit(&c->status);
	bool orig8 = c->what != DSN_RETURN_NONE && c->orig_eightbit;
	struct buf end = BUF_INIT;
	struct dsn_norm nm;

	dsn_write_head(c, o, text8 || status8 || orig8);
	dsn_write_part_head(c, o, c->global ? "text/plain; charset=utf-8" :
	    "text/plain; charset=us-ascii", "Notification", text8);
	dsn_out_buf(o, &c->text);
	dsn_write_part_head(c, o, c->global ? "message/global-delivery-status" :
	    "message/delivery-status", "Delivery report", status8);
	dsn_out_buf(o, &c->status);
	if (c->what != DSN_RETURN_NONE) {
		dsn_write_part_head(c, o, dsn_orig_type(c),
		    c->what == DSN_RETURN_FULL ? "Returned message" :
		    "Header section of the returned message", orig8);
		dsn_norm_init(&nm, c, dsn_out_sink, o);
		if (dsn_orig_pass(msg_fd, &nm, c->inbuf) < 0)
			return -1;
	}
	buf_printf(&end, "\r\n--%s--\r\n", c->boundary);
	dsn_out_buf(o, &end);
	buf_free(&end);
	dsn_out_flush(o);
	if (o->err != 0) {
		errno = o->err;
		return -1;
	}
	return 0;
}

int
dsn_compose(const struct dsn_report *r, int msg_fd, int out_fd,
    struct dsn_compose_info *info_r, const char **error_r)
{
	struct dsn_out o = { .fd = out_fd };
	struct dsn_ctx c;
	int ret = -1, saved;

	if (dsn_report_check(r, error_r) < 0)
		return -1;
	if (dsn_ctx_init(&c, r, msg_fd) < 0)
		return dsn_fail(error_r, "cannot read the original message");
	c.inbuf = x_malloc(DSN_IO_SIZE);
	c.chunk = x_malloc(DSN_CHUNK_SIZE);
	o.buf = x_malloc(DSN_IO_SIZE);
	dsn_build_text(&c);
	dsn_build_status(&c);
	if (dsn_pick_boundary(&c, msg_fd) < 0)
		dsn_fail(error_r, "cannot read the original message");
	else if (dsn_write(&c, msg_fd, &o) < 0)
		dsn_fail(error_r, o.err != 0 ? "cannot write the report" :
		    "cannot read the original message");
	else
		ret = 0;
	if (ret == 0 && info_r != NULL) {
		info_r->global = c.global;
		info_r->eightbit = dsn_buf_8bit(&c.text) ||
		    dsn_buf_8bit(&c.status) ||
		    (c.what != DSN_RETURN_NONE && c.orig_eightbit);
		info_r->full = c.what == DSN_RETURN_FULL;
		info_r->size = o.total;
	}
	saved = errno;
	buf_free(&c.text);
	buf_free(&c.status);
	x_free(&c.inbuf);
	x_free(&c.chunk);
	x_free(&o.buf);
	errno = saved;
	return ret;
}

int
dsn_compose_path(const struct dsn_report *r, const char *msg_path,
    int out_fd, struct dsn_compose_info *info_r, const char **error_r)
{
	int fd = -1, ret, saved;

	if (msg_path != NULL && (fd = open(msg_path, O_RDONLY | O_CLOEXEC)) < 0)
		return dsn_fail(error_r, "cannot open the original message");
	ret = dsn_compose(r, fd, out_fd, info_r, error_r);
	saved = errno;
	if (fd >= 0)
		close(fd);
	errno = saved;
	return ret;
}
