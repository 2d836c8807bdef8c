/* Replies, EHLO extensions and data encoding for the SMTP client.
 * Untrusted input: every reply line of a remote SMTP server. */
#include "queue/smtp_client_reply.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/util.h"
#include "core/xmalloc.h"

void
smtp_reply_init(struct smtp_reply *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->text);
}

void
smtp_reply_reset(struct smtp_reply *r)
{
	r->code = 0;
	r->enhanced[0] = '\0';
	buf_reset(&r->text);
	r->lines = 0;
	r->done = false;
	r->error = NULL;
}

void
smtp_reply_free(struct smtp_reply *r)
{
	buf_free(&r->text);
	smtp_reply_reset(r);
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Up to three digits at p (n octets left); returns how many, 0 if none or
 * more than three. */
static size_t
digits_1_3(const char *p, size_t n)
{
	size_t i = 0;
	while (i < n && i < 4 && is_digit(p[i]))
		i++;
	return i >= 1 && i <= 3 ? i : 0;
}

/* Length of an RFC 3463 code of class cls at the start of p, including
 * the space after it, or 0 when there is none. */
static size_t
enhanced_length(const char *p, size_t n, char cls, size_t *code_len)
{
	if (n < 5 || p[0] != cls || p[1] != '.')
		return 0;
	size_t i = 2, d = digits_1_3(p + i, n - i);
	if (d == 0)
		return 0;
	i += d;
	if (i >= n || p[i] != '.')
		return 0;
	i++;
	d = digits_1_3(p + i, n - i);
	if (d == 0)
		return 0;
	i += d;
	if (i < n && p[i] != ' ')
		return 0;
	*code_len = i;
	return i < n ? i + 1 : i;
}

/* Appends text as the next line of the reply, made printable. */
static void
reply_add_text(struct smtp_reply *r, const char *p, size_t n)
{
	if (r->text.len >= SMTP_REPLY_TEXT_MAX)
		return;
	if (r->lines > 1)
		buf_putc(&r->text, '\n');
	if (n > SMTP_REPLY_TEXT_MAX - r->text.len)
		n = SMTP_REPLY_TEXT_MAX - r->text.len;
	size_t start = r->text.len;
	buf_append(&r->text, p, n);
	for (size_t i = start; i < r->text.len; i++) {
		unsigned char c = (unsigned char)r->text.data[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			r->text.data[i] = '?';
	}
}

static enum smtp_reply_step
reply_bad(struct smtp_reply *r, const char *why)
{
	r->error = why;
	r->done = true;
	return SMTP_REPLY_BAD;
}

enum smtp_reply_step
smtp_reply_feed(struct smtp_reply *r, const char *line, size_t len)
{
	if (r->done)
		smtp_reply_reset(r);
	if (len > SMTP_REPLY_LINE_MAX)
		return reply_bad(r, "reply line too long");
	if (r->lines >= SMTP_REPLY_LINES_MAX)
		return reply_bad(r, "too many reply lines");
	if (len < 3 || line[0] < '2' || line[0] > '5' || !is_digit(line[1]) ||
	    !is_digit(line[2]))
		return reply_bad(r, "malformed reply line");
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return reply_bad(r, "malformed reply line");
	unsigned code = (unsigned)(line[0] - '0') * 100 +
	    (unsigned)(line[1] - '0') * 10 + (unsigned)(line[2] - '0');
	if (r->lines > 0 && code != r->code)
		return reply_bad(r, "reply code changed within a reply");
	r->code = code;
	r->lines++;

	const char *text = len > 4 ? line + 4 : "";
	size_t tlen = len > 4 ? len - 4 : 0, clen = 0;
	size_t skip = enhanced_length(text, tlen, line[0], &clen);
	if (skip && r->lines == 1)
		snprintf(r->enhanced, sizeof(r->enhanced), "%.*s", (int)clen,
		    text);
	reply_add_text(r, text + skip, tlen - skip);

	if (len > 3 && line[3] == '-')
		return SMTP_REPLY_MORE;
	r->done = true;
	return SMTP_REPLY_DONE;
}

unsigned
smtp_reply_class(const struct smtp_reply *r)
{
	return r->code / 100;
}

void
smtp_reply_status(const struct smtp_reply *r, char *out)
{
	if (r->enhanced[0])
		snprintf(out, SMTP_ENHANCED_MAX, "%s", r->enhanced);
	else
		snprintf(out, SMTP_ENHANCED_MAX, "%c.0.0",
		    (char)('0' + smtp_reply_class(r) % 10));
}

char *
smtp_reply_flat_text(const struct smtp_reply *r)
{
	char *s = x_strdup(buf_cstr(&r->text));
	for (char *p = s; *p; p++)
		if (*p == '\n')
			*p = ' ';
	return s;
}

/* ---- EHLO extensions ---- */

static const char *const ext_words[SMTP_EXT_COUNT] = {
#define SMTP_EXT_WORD(name, word) [SMTP_EXT_BIT_##name] = word,
	SMTP_EXT_LIST(SMTP_EXT_WORD)
#undef SMTP_EXT_WORD
};

static void
ext_auth_mechs(struct smtp_ext *ext, const char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		while (i < n && (p[i] == ' ' || p[i] == '\t'))
			i++;
		size_t start = i;
		while (i < n && p[i] != ' ' && p[i] != '\t')
			i++;
		size_t w = i - start;
		if (w == 5 && strncasecmp(p + start, "PLAIN", 5) == 0)
			ext->auth |= SMTP_AUTH_PLAIN;
		else if (w == 5 && strncasecmp(p + start, "LOGIN", 5) == 0)
			ext->auth |= SMTP_AUTH_LOGIN;
	}
}

/* SIZE's argument: digits only; anything else leaves no limit known. */
static void
ext_size(struct smtp_ext *ext, const char *p, size_t n)
{
	char digits[24];
	while (n > 0 && (*p == ' ' || *p == '\t')) {
		p++;
		n--;
	}
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	uint64_t v;
	if (n == 0 || n >= sizeof(digits))
		return;
	memcpy(digits, p, n);
	digits[n] = '\0';
	if (parse_uint(digits, UINT64_MAX, &v) == 0)
		ext->size_max = v;
}

static void
ext_line(struct smtp_ext *ext, const char *p, size_t n)
{
	size_t w = 0;
	while (w < n && p[w] != ' ' && p[w] != '\t' && p[w] != '=')
		w++;
	if (w == 0)
		return;
	for (unsigned b = 0; b < SMTP_EXT_COUNT; b++) {
		if (strlen(ext_words[b]) != w ||
		    strncasecmp(p, ext_words[b], w) != 0)
			continue;
		ext->flags |= 1u << b;
		if (b == SMTP_EXT_BIT_SIZE && w < n && p[w] != '=')
			ext_size(ext, p + w, n - w);
		if (b == SMTP_EXT_BIT_AUTH && w < n)
			ext_auth_mechs(ext, p + w + 1, n - w - 1);
		return;
	}
}

void
smtp_ext_parse(const struct smtp_reply *r, struct smtp_ext *ext)
{
	memset(ext, 0, sizeof(*ext));
	const char *p = buf_cstr(&r->text), *end = p + r->text.len;
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	if (nl == NULL)
		return;		/* only the greeting line */
	p = nl + 1;
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		ext_line(ext, p, (size_t)(eol - p));
		p = nl ? nl + 1 : end;
	}
}

void
smtp_ext_names(unsigned flags, char *out, size_t n)
{
	size_t used = 0;
	if (n == 0)
		return;
	out[0] = '\0';
	for (unsigned b = 0; b < SMTP_EXT_COUNT; b++) {
		if (!(flags & (1u << b)))
			continue;
		int w = snprintf(out + used, n - used, "%s%s", used ? " " : "",
		    ext_words[b]);
		if (w < 0 || (size_t)w >= n - used) {
			out[used] = '\0';
			return;
		}
		used += (size_t)w;
	}
}

/* ---- message data ---- */

void
smtp_encoder_init(struct smtp_encoder *e, bool dot_stuff)
{
	memset(e, 0, sizeof(*e));
	e->dot_stuff = dot_stuff;
	e->bol = true;
}

void
smtp_encoder_feed(struct smtp_encoder *e, const void *p, size_t n,
    struct buf *out)
{
	const unsigned char *in = p;
	/* Worst case doubles: "\n." -> "\r\n..", a bare CR -> CRLF. */
	buf_reserve_total(out, out->len + 2 * n + 2);
	char *o = out->data + out->len;
	char *start = o;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = in[i];
		if (e->cr) {
			/* The CR before ends a line, whatever follows. */
			*o++ = '\r';
			*o++ = '\n';
			e->bol = true;
			e->cr = false;
			if (c == '\n')
				continue;
		}
		if (c == '\r') {
			e->cr = true;
			continue;
		}
		if (c == '\n') {
			*o++ = '\r';
			*o++ = '\n';
			e->bol = true;
			continue;
		}
		if (e->bol && c == '.' && e->dot_stuff)
			*o++ = '.';
		*o++ = (char)c;
		e->bol = false;
	}
	size_t added = (size_t)(o - start);
	out->len += added;
	out->data[out->len] = '\0';
	e->in += n;
	e->out += added;
}

void
smtp_encoder_finish(struct smtp_encoder *e, struct buf *out)
{
	size_t before = out->len;
	if (e->cr || !e->bol)
		buf_append(out, "\r\n", 2);
	e->cr = false;
	e->bol = true;
	if (e->dot_stuff)
		buf_append(out, ".\r\n", 3);
	e->out += out->len - before;
}
