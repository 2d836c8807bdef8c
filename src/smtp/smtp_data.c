/* DATA and BDAT octet streams: end of data, dot-unstuffing, and the bare
 * CR / bare LF / NUL octets behind SMTP smuggling.
 *
 * Untrusted input: every octet a client sends after DATA or BDAT.
 *
 * Only <CRLF>.<CRLF> ends DATA. Anything that another server could read as
 * a line end (bare CR, bare LF) is flagged so the message is refused, but
 * never ends the data: we must stay in step with the client whatever it
 * sends, and never see a second message where a strict peer sees one. */
#include "smtp/smtp_data.h"

#include <stdint.h>
#include <string.h>

enum data_state {
	DATA_BOL,	/* start of a line: a dot is stuffing or the end */
	DATA_TEXT,	/* inside a line */
	DATA_CR,	/* a CR held back until we know whether LF follows */
	DATA_DOT,	/* a dot at the start of a line, dropped */
	DATA_DOT_CR,	/* "." CR at the start of a line: LF makes the end */
	DATA_END	/* not stored: returned by data_step only */
};

void
smtp_data_init(struct smtp_data_decoder *d)
{
	memset(d, 0, sizeof(*d));
	d->state = DATA_BOL;
}

bool
smtp_data_is_tainted(const struct smtp_data_decoder *d)
{
	return d->bare_cr || d->bare_lf || d->nul;
}

/* An octet inside a line. A bare LF does not start a line: only CRLF
 * does, so "\n.\r\n" can never end the data. */
static enum data_state
data_in_line(struct smtp_data_decoder *d, unsigned char c, char *out,
    size_t *o)
{
	if (c == '\r')
		return DATA_CR;
	if (c == '\n')
		d->bare_lf = true;
	else if (c == '\0')
		d->nul = true;
	out[(*o)++] = (char)c;
	return DATA_TEXT;
}

/* The octet after a held-back CR: LF completes the line, anything else
 * makes the CR bare and is then an ordinary octet of the line. */
static enum data_state
data_after_cr(struct smtp_data_decoder *d, unsigned char c, char *out,
    size_t *o)
{
	out[(*o)++] = '\r';
	if (c == '\n') {
		out[(*o)++] = '\n';
		return DATA_BOL;
	}
	d->bare_cr = true;
	return data_in_line(d, c, out, o);
}

static enum data_state
data_step(struct smtp_data_decoder *d, enum data_state st, unsigned char c,
    char *out, size_t *o)
{
	switch (st) {
	case DATA_BOL:
		if (c == '.')
			return DATA_DOT;
		return data_in_line(d, c, out, o);
	case DATA_DOT:
		if (c == '\r')
			return DATA_DOT_CR;
		return data_in_line(d, c, out, o);
	case DATA_DOT_CR:
		if (c == '\n')
			return DATA_END;
		return data_after_cr(d, c, out, o);
	case DATA_CR:
		return data_after_cr(d, c, out, o);
	case DATA_TEXT:
	case DATA_END:
		break;
	}
	return data_in_line(d, c, out, o);
}

#define BYTES(c)	(0x0101010101010101ULL * (unsigned char)(c))

/* Nonzero when one of the 8 octets of w is zero (exact as a yes/no). */
static uint64_t
data_has_zero(uint64_t w)
{
	return (w - BYTES(1)) & ~w & BYTES(0x80);
}

/* The length of the leading run of octets that need no decision: eight
 * at a time while none of them is CR, LF or NUL. */
static size_t
data_plain_run(const unsigned char *p, size_t n)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		if (data_has_zero(w) | data_has_zero(w ^ BYTES('\r')) |
		    data_has_zero(w ^ BYTES('\n')))
			break;
	}
	while (i < n && p[i] != '\r' && p[i] != '\n' && p[i] != '\0')
		i++;
	return i;
}

enum smtp_data_status
smtp_data_feed(struct smtp_data_decoder *d, const char *in, size_t n,
    char *out, size_t *outlen, size_t *consumed)
{
	const unsigned char *p = (const unsigned char *)in;
	enum data_state st = (enum data_state)d->state;
	enum smtp_data_status ret = SMTP_DATA_MORE;
	size_t i = 0, o = 0;

	while (i < n) {
		if (st == DATA_TEXT) {
			size_t run = data_plain_run(p + i, n - i);

			memcpy(out + o, p + i, run);
			i += run;
			o += run;
			if (i == n)
				break;
		}
		st = data_step(d, st, p[i++], out, &o);
		if (st == DATA_END) {
			st = DATA_BOL;
			ret = SMTP_DATA_END;
			break;
		}
	}
	d->state = (int)st;
	d->size += o;
	*outlen = o;
	*consumed = i;
	return ret;
}

void
smtp_data_bdat_scan(struct smtp_data_decoder *d, const char *in, size_t n)
{
	const unsigned char *p = (const unsigned char *)in;
	bool cr = d->state == DATA_CR;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];

		if (cr && c != '\n')
			d->bare_cr = true;
		if (!cr && c == '\n')
			d->bare_lf = true;
		if (c == '\0')
			d->nul = true;
		cr = c == '\r';
	}
	d->state = cr ? DATA_CR : DATA_TEXT;
	d->size += n;
}

void
smtp_data_bdat_finish(struct smtp_data_decoder *d)
{
	if (d->state == DATA_CR)
		d->bare_cr = true;
	d->state = DATA_BOL;
}
