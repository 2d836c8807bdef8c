/* Header fields of message and MIME headers: iteration, unfolding,
 * Content-Type, Content-Disposition, Content-Transfer-Encoding.
 *
 * Untrusted input: header octets of stored messages. Lines may end in
 * CRLF or bare LF, hold NULs or 8-bit octets, and be of any length. */
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "core/xmalloc.h"
#include "store/mime.h"
#include "store/mime_internal.h"

/* The end of the line starting at pos (after its LF, or len). */
static size_t
mime_line_end(const char *hdr, size_t len, size_t pos)
{
	const char *lf = memchr(hdr + pos, '\n', len - pos);

	return lf != NULL ? (size_t)(lf - hdr) + 1 : len;
}

static bool
mime_is_blank_line(const char *hdr, size_t len, size_t pos)
{
	if (hdr[pos] == '\n')
		return true;
	return hdr[pos] == '\r' && pos + 1 < len && hdr[pos + 1] == '\n';
}

/* The field's value without its last line end. */
static void
mime_field_set_value(const char *hdr, size_t colon, size_t end,
    struct mime_field *f)
{
	size_t vend = end;

	if (vend > colon && hdr[vend - 1] == '\n')
		vend--;
	if (vend > colon && hdr[vend - 1] == '\r')
		vend--;
	f->value = hdr + colon;
	f->vlen = vend - colon;
}

size_t
mime_header_size(const char *hdr, size_t len)
{
	size_t pos = 0;

	while (pos < len) {
		size_t end = mime_line_end(hdr, len, pos);
		if (mime_is_blank_line(hdr, len, pos))
			return end;
		pos = end;
	}
	return len;
}

bool
mime_field_next(const char *hdr, size_t len, size_t *pos,
    struct mime_field *f)
{
	size_t start = *pos;

	if (start >= len || mime_is_blank_line(hdr, len, start))
		return false;
	size_t end = mime_line_end(hdr, len, start);
	const char *colon = memchr(hdr + start, ':', end - start);
	/* Folded lines go with their field. */
	while (end < len && (hdr[end] == ' ' || hdr[end] == '\t'))
		end = mime_line_end(hdr, len, end);

	memset(f, 0, sizeof(*f));
	f->raw = hdr + start;
	f->rawlen = end - start;
	if (colon != NULL && hdr[start] != ' ' && hdr[start] != '\t') {
		size_t nlen = (size_t)(colon - (hdr + start));
		while (nlen > 0 && (hdr[start + nlen - 1] == ' ' ||
		    hdr[start + nlen - 1] == '\t'))
			nlen--;
		f->name = hdr + start;
		f->namelen = nlen;
		mime_field_set_value(hdr, (size_t)(colon - hdr) + 1, end, f);
	} else {
		mime_field_set_value(hdr, start, end, f);
	}
	*pos = end;
	return true;
}

bool
mime_field_is(const struct mime_field *f, const char *name)
{
	size_t n = strlen(name);

	return f->name != NULL && f->namelen == n &&
	    strncasecmp(f->name, name, n) == 0;
}

void
mime_field_unfold(const struct mime_field *f, struct buf *out)
{
	size_t i = 0, kept = 0;

	while (i < f->vlen && (f->value[i] == ' ' || f->value[i] == '\t'))
		i++;
	buf_reserve_total(out, out->len + (f->vlen < MIME_VALUE_MAX ?
	    f->vlen : MIME_VALUE_MAX));
	for (; i < f->vlen && kept < MIME_VALUE_MAX; i++) {
		char c = f->value[i];
		if (c == '\r' || c == '\n')
			continue;
		buf_putc(out, c == '\0' ? ' ' : c);
		kept++;
	}
	buf_append(out, NULL, 0);	/* NUL-terminated even when empty */
}

bool
mime_header_get(const char *hdr, size_t len, const char *name,
    struct buf *out)
{
	struct mime_field f;
	size_t pos = 0;

	buf_reset(out);
	while (mime_field_next(hdr, len, &pos, &f)) {
		if (mime_field_is(&f, name)) {
			mime_field_unfold(&f, out);
			return true;
		}
	}
	return false;
}

/* ---- Content-Type and Content-Disposition ---- */

/* Skips blanks and (nested) comments. */
static const char *
mime_skip_cfws(const char *p)
{
	int depth = 0;

	for (; *p != '\0'; p++) {
		if (depth > 0) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '(')
				depth++;
			else if (*p == ')')
				depth--;
		} else if (*p == '(') {
			depth++;
		} else if (*p != ' ' && *p != '\t') {
			break;
		}
	}
	return p;
}

/* RFC 2045 token characters. */
static bool
mime_is_token_char(unsigned char c)
{
	return c > ' ' && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

static char *
mime_token(const char **pp)
{
	const char *p = mime_skip_cfws(*pp), *start = p;

	while (mime_is_token_char((unsigned char)*p))
		p++;
	if (p == start)
		return NULL;
	*pp = mime_skip_cfws(p);
	return x_strndup(start, (size_t)(p - start));
}

/* GMime's parameter parser takes time that grows faster than the
 * number of parameters, and no real header has more than a few: the
 * rest after MIME_PARAMS_MAX of them (or MIME_PARAMS_LEN octets) is
 * dropped. */
#define MIME_PARAMS_MAX		32
#define MIME_PARAMS_LEN		8192

static void *
mime_params_parse(const char *p)
{
	size_t n = 0, semis = 0;

	while (p[n] != '\0' && n < MIME_PARAMS_LEN) {
		if (p[n] == ';' && ++semis == MIME_PARAMS_MAX)
			break;
		n++;
	}
	char *cut = x_strndup(p, n);
	void *l = g_mime_param_list_parse(NULL, cut);
	x_free(&cut);
	return l;
}

/* "token [/ token]" then parameters, from the field value v. */
static void
mime_ctype_from(const char *v, bool want_subtype, bool want_params,
    struct mime_ctype *ct)
{
	const char *p = v;

	ct->type = mime_token(&p);
	if (ct->type == NULL)
		return;
	if (want_subtype) {
		if (*p == '/') {
			p++;
			ct->subtype = mime_token(&p);
		}
		if (ct->subtype == NULL) {
			x_free(&ct->type);
			return;
		}
	}
	p = strchr(p, ';');
	if (p != NULL && want_params)
		ct->params = mime_params_parse(p + 1);
}

static void
mime_ctype_get(const char *hdr, size_t len, const char *field,
    bool want_subtype, bool want_params, struct mime_ctype *ct)
{
	struct buf v = BUF_INIT;

	memset(ct, 0, sizeof(*ct));
	if (mime_header_get(hdr, len, field, &v))
		mime_ctype_from(buf_cstr(&v), want_subtype, want_params, ct);
	buf_free(&v);
}

void
mime_ctype_parse(const char *hdr, size_t len, struct mime_ctype *ct)
{
	mime_ctype_get(hdr, len, "Content-Type", true, true, ct);
}

void
mime_ctype_parse_type(const char *hdr, size_t len, struct mime_ctype *ct)
{
	mime_ctype_get(hdr, len, "Content-Type", true, false, ct);
}

void
mime_disposition_parse(const char *hdr, size_t len, struct mime_ctype *ct)
{
	mime_ctype_get(hdr, len, "Content-Disposition", false, true, ct);
}

void
mime_ctype_free(struct mime_ctype *ct)
{
	x_free(&ct->type);
	x_free(&ct->subtype);
	if (ct->params != NULL)
		g_object_unref(ct->params);
	ct->params = NULL;
}

const char *
mime_ctype_param(const struct mime_ctype *ct, const char *name)
{
	if (ct->params == NULL)
		return NULL;
	GMimeParamList *l = ct->params;
	int n = g_mime_param_list_length(l);
	for (int i = 0; i < n; i++) {
		GMimeParam *p = g_mime_param_list_get_parameter_at(l, i);
		const char *pn = g_mime_param_get_name(p);
		if (pn != NULL && strcasecmp(pn, name) == 0)
			return g_mime_param_get_value(p);
	}
	return NULL;
}

char *
mime_header_token(const char *hdr, size_t len, const char *name)
{
	struct buf v = BUF_INIT;
	char *tok = NULL;

	if (mime_header_get(hdr, len, name, &v)) {
		const char *p = buf_cstr(&v);
		tok = mime_token(&p);
	}
	buf_free(&v);
	return tok;
}

void
mime_write_tokens(struct buf *out, const char *v)
{
	size_t n = 0;

	for (const char *p = v; p != NULL && *p != '\0';) {
		const char *q = p;
		char *tok = mime_token(&q);
		if (tok != NULL) {
			buf_puts(out, n++ == 0 ? "(" : " ");
			mime_imap_string(out, tok, strlen(tok));
			x_free(&tok);
		}
		p = strchr(q, ',');
		if (p != NULL)
			p++;
	}
	buf_puts(out, n == 0 ? "NIL" : ")");
}

enum mime_cte
mime_cte_of(const char *hdr, size_t len)
{
	enum mime_cte cte = MIME_CTE_IDENTITY;
	char *tok = mime_header_token(hdr, len, "Content-Transfer-Encoding");

	if (tok != NULL) {
		if (strcasecmp(tok, "base64") == 0)
			cte = MIME_CTE_BASE64;
		else if (strcasecmp(tok, "quoted-printable") == 0)
			cte = MIME_CTE_QP;
		else if (strcasecmp(tok, "7bit") != 0 &&
		    strcasecmp(tok, "8bit") != 0 &&
		    strcasecmp(tok, "binary") != 0)
			cte = MIME_CTE_UNKNOWN;
		x_free(&tok);
	}
	return cte;
}
