/* libFuzzer: the SMTP client's reply parser and EHLO extension parser on
 * arbitrary server output, and its data encoder on arbitrary message
 * octets (checked against a plain reference). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/smtp_client_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
is_enhanced(const char *e, unsigned cls)
{
	/* class "." 1*3digit "." 1*3digit */
	if (e[0] != (char)('0' + cls) || e[1] != '.')
		return false;
	const char *p = e + 2;
	for (int part = 0; part < 2; part++) {
		size_t n = 0;
		while (p[n] >= '0' && p[n] <= '9')
			n++;
		if (n < 1 || n > 3)
			return false;
		p += n;
		if (part == 0 && *p++ != '.')
			return false;
	}
	return *p == '\0';
}

static void
check_reply(const struct smtp_reply *r)
{
	char st[SMTP_ENHANCED_MAX];
	struct smtp_ext ext;
	if (r->code < 200 || r->code > 599 || r->lines == 0 ||
	    r->lines > SMTP_REPLY_LINES_MAX ||
	    r->text.len > SMTP_REPLY_TEXT_MAX)
		abort();
	if (r->enhanced[0] && !is_enhanced(r->enhanced, r->code / 100))
		abort();
	for (size_t i = 0; i < r->text.len; i++) {
		unsigned char c = (unsigned char)r->text.data[i];
		if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f)
			abort();
	}
	smtp_reply_status(r, st);
	if (!is_enhanced(st, r->code / 100))
		abort();
	char *flat = smtp_reply_flat_text(r);
	if (strchr(flat, '\n'))
		abort();
	free(flat);
	smtp_ext_parse(r, &ext);
	if (ext.flags >> SMTP_EXT_COUNT)
		abort();
}

static void
fuzz_replies(const uint8_t *data, size_t size)
{
	struct smtp_reply r;
	smtp_reply_init(&r);
	size_t start = 0;
	while (start < size) {
		const uint8_t *nl = memchr(data + start, '\n', size - start);
		size_t end = nl ? (size_t)(nl - data) : size;
		size_t len = end - start;
		if (len > 0 && data[start + len - 1] == '\r')
			len--;
		/* An exact-size copy so ASan sees any read past the end. */
		char *line = malloc(len ? len : 1);
		memcpy(line, data + start, len);
		enum smtp_reply_step st = smtp_reply_feed(&r, line, len);
		free(line);
		if (st == SMTP_REPLY_DONE)
			check_reply(&r);
		else if (st == SMTP_REPLY_BAD && r.error == NULL)
			abort();
		start = end + 1;
	}
	smtp_reply_free(&r);
}

/* The reference: every CRLF, bare CR and bare LF is one line end; a last
 * line without one gets CRLF. */
static void
normalise(const uint8_t *p, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')
			i++;
		if (p[i] == '\r' || p[i] == '\n')
			buf_append(out, "\r\n", 2);
		else
			buf_putc(out, (char)p[i]);
	}
	if (out->len > 0 && out->data[out->len - 1] != '\n')
		buf_append(out, "\r\n", 2);
}

/* Removes the dot-stuffing and the final ".\r\n"; -1 when the encoding
 * is not valid DATA (a bare line end, an early end of data). */
static int
unstuff(const struct buf *in, struct buf *out)
{
	size_t i = 0;
	while (i < in->len) {
		const char *lf = memchr(in->data + i, '\n', in->len - i);
		if (lf == NULL || lf == in->data + i || lf[-1] != '\r')
			return -1;
		size_t n = (size_t)(lf - (in->data + i)) + 1;
		const char *line = in->data + i;
		if (n == 3 && line[0] == '.')
			return i + n == in->len ? 0 : -1;
		if (memchr(line, '\r', n - 2) != NULL)
			return -1;
		if (line[0] == '.')
			buf_append(out, line + 1, n - 1);
		else
			buf_append(out, line, n);
		i += n;
	}
	return -1;
}

static bool
buf_equal(const struct buf *a, const struct buf *b)
{
	return a->len == b->len && (a->len == 0 ||
	    memcmp(a->data, b->data, a->len) == 0);
}

static void
fuzz_encoder(const uint8_t *data, size_t size)
{
	struct buf want = BUF_INIT, data_enc = BUF_INIT, bdat = BUF_INIT;
	struct buf got = BUF_INIT;
	struct smtp_encoder e;
	size_t cut = size ? data[0] % (size + 1) : 0;

	normalise(data, size, &want);
	smtp_encoder_init(&e, true);
	smtp_encoder_feed(&e, data, cut, &data_enc);
	smtp_encoder_feed(&e, data + cut, size - cut, &data_enc);
	smtp_encoder_finish(&e, &data_enc);
	if (e.out != data_enc.len || unstuff(&data_enc, &got) < 0 ||
	    !buf_equal(&got, &want))
		abort();
	smtp_encoder_init(&e, false);
	smtp_encoder_feed(&e, data, size, &bdat);
	smtp_encoder_finish(&e, &bdat);
	if (!buf_equal(&bdat, &want))
		abort();
	buf_free(&want);
	buf_free(&data_enc);
	buf_free(&bdat);
	buf_free(&got);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_replies(data, size);
	fuzz_encoder(data, size);
	return 0;
}
