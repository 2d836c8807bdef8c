/* ENVELOPE, BODY and BODYSTRUCTURE texts (RFC 9051 7.5.2) of a parsed
 * message.
 *
 * Untrusted input: header octets of the message and the part tree built
 * from it; values are cut at MIME_VALUE_MAX and NULs never reach the
 * output. */
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "core/xmalloc.h"
#include "store/mime.h"
#include "store/mime_internal.h"

/* Stands in for the part a multipart must have when it has none, and
 * for the body of a message/rfc822 part that cannot be parsed. */
#define MIME_EMPTY_TEXT \
	"\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0"
#define MIME_EMPTY_ENVELOPE "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"

struct mime_writer {
	struct buf *out;
	const struct mime_map *m;
	const struct mime_tree *t;
	bool ext;
};

static void
mime_write_cstr(struct buf *out, const char *s)
{
	mime_imap_string(out, s, s != NULL ? strlen(s) : 0);
}

/* The first field named name, unfolded, as an nstring. */
static void
mime_write_field(struct buf *out, const char *hdr, size_t len,
    const char *name)
{
	struct buf v = BUF_INIT;

	if (mime_header_get(hdr, len, name, &v))
		mime_imap_string(out, buf_cstr(&v), v.len);
	else
		buf_puts(out, "NIL");
	buf_free(&v);
}

/* Every field named name, joined as one address list. */
static bool
mime_write_addr_field(struct buf *out, const char *hdr, size_t len,
    const char *name)
{
	struct mime_field f;
	struct buf v = BUF_INIT;
	size_t pos = 0;
	bool any;

	/* All of them together are cut like one value. */
	while (v.len < MIME_VALUE_MAX && mime_field_next(hdr, len, &pos, &f)) {
		if (!mime_field_is(&f, name))
			continue;
		if (v.len > 0)
			buf_putc(&v, ',');
		mime_field_unfold(&f, &v);
	}
	any = mime_write_addresses(out, buf_cstr(&v), v.len);
	buf_free(&v);
	return any;
}

void
mime_write_envelope(struct buf *out, const char *hdr, size_t len)
{
	static const char *const rest[] = { "To", "Cc", "Bcc" };
	struct buf from = BUF_INIT;

	buf_putc(out, '(');
	mime_write_field(out, hdr, len, "Date");
	buf_putc(out, ' ');
	mime_write_field(out, hdr, len, "Subject");
	if (!mime_write_addr_field(&from, hdr, len, "From"))
		buf_puts(&from, "NIL");
	buf_putc(out, ' ');
	buf_append(out, from.data, from.len);
	/* Sender and Reply-To default to From when absent or empty. */
	buf_putc(out, ' ');
	if (!mime_write_addr_field(out, hdr, len, "Sender"))
		buf_append(out, from.data, from.len);
	buf_putc(out, ' ');
	if (!mime_write_addr_field(out, hdr, len, "Reply-To"))
		buf_append(out, from.data, from.len);
	for (size_t i = 0; i < sizeof(rest) / sizeof(rest[0]); i++) {
		buf_putc(out, ' ');
		if (!mime_write_addr_field(out, hdr, len, rest[i]))
			buf_puts(out, "NIL");
	}
	buf_putc(out, ' ');
	mime_write_field(out, hdr, len, "In-Reply-To");
	buf_putc(out, ' ');
	mime_write_field(out, hdr, len, "Message-ID");
	buf_putc(out, ')');
	buf_free(&from);
}

/* ("name" "value" ...) or NIL; with the RFC 2045 default charset of
 * text when it has none (as Dovecot: clients need one). */
static void
mime_write_params(struct buf *out, const struct mime_ctype *ct,
    bool add_charset)
{
	GMimeParamList *l = ct->params;
	int n = l != NULL ? g_mime_param_list_length(l) : 0;

	if (n <= 0 && !add_charset) {
		buf_puts(out, "NIL");
		return;
	}
	buf_putc(out, '(');
	for (int i = 0; i < n; i++) {
		GMimeParam *p = g_mime_param_list_get_parameter_at(l, i);
		const char *v = g_mime_param_get_value(p);
		if (i > 0)
			buf_putc(out, ' ');
		mime_write_cstr(out, g_mime_param_get_name(p));
		buf_putc(out, ' ');
		mime_write_cstr(out, v != NULL ? v : "");
	}
	if (add_charset)
		buf_puts(out, n > 0 ? " \"CHARSET\" \"US-ASCII\"" :
		    "\"CHARSET\" \"US-ASCII\"");
	buf_putc(out, ')');
}

/* Disposition, language and location: the extension data every part
 * ends with. */
static void
mime_write_ext_tail(struct buf *out, const char *hdr, size_t len)
{
	struct mime_ctype disp;
	struct buf v = BUF_INIT;

	mime_disposition_parse(hdr, len, &disp);
	buf_putc(out, ' ');
	if (disp.type == NULL) {
		buf_puts(out, "NIL");
	} else {
		buf_putc(out, '(');
		mime_write_cstr(out, disp.type);
		buf_putc(out, ' ');
		mime_write_params(out, &disp, false);
		buf_putc(out, ')');
	}
	mime_ctype_free(&disp);
	buf_putc(out, ' ');
	if (mime_header_get(hdr, len, "Content-Language", &v))
		mime_write_tokens(out, buf_cstr(&v));
	else
		buf_puts(out, "NIL");
	buf_free(&v);
	buf_putc(out, ' ');
	mime_write_field(out, hdr, len, "Content-Location");
}

static void
mime_write_multipart(struct mime_writer *w, const struct mime_part *p,
    const struct mime_ctype *ct)
{
	const char *hdr = w->m->data + p->hdr_off;
	size_t hlen = p->body_off - p->hdr_off;

	buf_putc(w->out, '(');
	if (p->first_child == MIME_NONE) {
		/* RFC 9051 wants at least one part. */
		buf_puts(w->out, "(" MIME_EMPTY_TEXT);
		buf_puts(w->out, w->ext ? " NIL NIL NIL NIL)" : ")");
	}
	for (uint32_t c = p->first_child; c != MIME_NONE;
	    c = w->t->parts[c].next)
		mime_write_body(w->out, w->m, w->t, c, w->ext);
	buf_putc(w->out, ' ');
	mime_write_cstr(w->out, ct->subtype);
	if (w->ext) {
		buf_putc(w->out, ' ');
		mime_write_params(w->out, ct, false);
		mime_write_ext_tail(w->out, hdr, hlen);
	}
	buf_putc(w->out, ')');
}

/* The part's type as it is served: opaque parts and parts without a
 * valid Content-Type get a default. Returns whether it is text. */
static bool
mime_write_type(struct buf *out, const struct mime_part *p,
    const struct mime_ctype *ct)
{
	if (p->opaque) {
		buf_puts(out, "\"TEXT\" \"PLAIN\" NIL");
		return true;
	}
	if (ct->type == NULL) {
		buf_puts(out, p->in_digest ? "\"MESSAGE\" \"RFC822\" NIL" :
		    "\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\")");
		return !p->in_digest;
	}
	bool text = strcasecmp(ct->type, "text") == 0;
	mime_write_cstr(out, ct->type);
	buf_putc(out, ' ');
	mime_write_cstr(out, ct->subtype);
	buf_putc(out, ' ');
	mime_write_params(out, ct,
	    text && mime_ctype_param(ct, "charset") == NULL);
	return text;
}

static void
mime_write_leaf(struct mime_writer *w, const struct mime_part *p,
    const struct mime_ctype *ct)
{
	struct buf *out = w->out;
	const char *hdr = w->m->data + p->hdr_off;
	size_t hlen = p->body_off - p->hdr_off;
	char *cte = mime_header_token(hdr, hlen, "Content-Transfer-Encoding");

	buf_putc(out, '(');
	bool text = mime_write_type(out, p, ct);
	buf_putc(out, ' ');
	mime_write_field(out, hdr, hlen, "Content-ID");
	buf_putc(out, ' ');
	mime_write_field(out, hdr, hlen, "Content-Description");
	buf_putc(out, ' ');
	mime_write_cstr(out, cte != NULL ? cte : "7BIT");
	x_free(&cte);
	buf_printf(out, " %zu", p->end - p->body_off);
	if (p->kind == MIME_KIND_MESSAGE) {
		const struct mime_part *e = &w->t->parts[p->first_child];
		buf_putc(out, ' ');
		mime_write_envelope(out, w->m->data + e->hdr_off,
		    e->body_off - e->hdr_off);
		buf_putc(out, ' ');
		mime_write_body(out, w->m, w->t, p->first_child, w->ext);
		buf_printf(out, " %zu", p->lines);
	} else if (p->unparsed_message && !p->opaque) {
		buf_puts(out, " " MIME_EMPTY_ENVELOPE " (" MIME_EMPTY_TEXT);
		buf_puts(out, w->ext ? " NIL NIL NIL NIL)" : ")");
		buf_printf(out, " %zu", p->lines);
	} else if (text) {
		buf_printf(out, " %zu", p->lines);
	}
	if (w->ext) {
		buf_putc(out, ' ');
		mime_write_field(out, hdr, hlen, "Content-MD5");
		mime_write_ext_tail(out, hdr, hlen);
	}
	buf_putc(out, ')');
}

void
mime_write_body(struct buf *out, const struct mime_map *m,
    const struct mime_tree *t, uint32_t i, bool ext)
{
	struct mime_writer w = { out, m, t, ext };
	const struct mime_part *p = &t->parts[i];
	struct mime_ctype ct;

	mime_ctype_parse(m->data + p->hdr_off, p->body_off - p->hdr_off, &ct);
	if (p->kind == MIME_KIND_MULTIPART)
		mime_write_multipart(&w, p, &ct);
	else
		mime_write_leaf(&w, p, &ct);
	mime_ctype_free(&ct);
}
