/* SEARCH BODY / TEXT / header keys over decoded message text.
 *
 * Untrusted input: the message file. Text parts are streamed through
 * transfer decoding, charset conversion and case folding in bounded
 * chunks, so memory stays a small multiple of a chunk plus the needle. */
#include <errno.h>
#include <iconv.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "core/xmalloc.h"
#include "store/mime.h"
#include "store/mime_internal.h"

#define MIME_CHUNK		(64 * 1024)

struct mime_matcher {
	struct buf needle;	/* folded */
	struct buf hay;		/* folded text still to look at */
	struct buf pend;	/* UTF-8 octets of a character cut by a chunk */
	bool found;
};

/* Appends the simple case folding of UTF-8 s (invalid octets become
 * U+FFFD). Stops before a character cut at the end unless final.
 * Returns the octets consumed. */
static size_t
mime_fold(struct buf *out, const char *s, size_t len, bool final)
{
	size_t i = 0;

	/* An invalid octet becomes U+FFFD (3 octets); folding never makes
	 * a character longer than that. */
	buf_reserve_total(out, out->len + len * 3 + 8);
	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		if (out->cap - out->len < 8)
			buf_reserve_total(out, out->len + (len - i) * 3 + 8);
		char *w = out->data + out->len;
		if (c < 0x80) {
			*w = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
			out->len++;
			i++;
			continue;
		}
		gunichar u = g_utf8_get_char_validated(s + i,
		    (gssize)(len - i));
		if (u == (gunichar)-2 && !final)
			break;
		if (u == (gunichar)-1 || u == (gunichar)-2) {
			u = 0xfffd;
			i++;
		} else {
			i = (size_t)(g_utf8_next_char(s + i) - s);
			u = g_unichar_tolower(g_unichar_toupper(u));
		}
		out->len += (size_t)g_unichar_to_utf8(u, w);
	}
	out->data[out->len] = '\0';
	return i;
}

static void
mime_matcher_init(struct mime_matcher *m, const char *needle, size_t len)
{
	memset(m, 0, sizeof(*m));
	mime_fold(&m->needle, needle, len, true);
	m->found = m->needle.len == 0;
}

static void
mime_matcher_free(struct mime_matcher *m)
{
	buf_free(&m->needle);
	buf_free(&m->hay);
	buf_free(&m->pend);
}

/* Looks for the needle in what hay holds, then keeps only the tail a
 * match across the next chunk could start in. */
static void
mime_matcher_scan(struct mime_matcher *m)
{
	size_t keep = m->needle.len > 0 ? m->needle.len - 1 : 0;

	if (m->hay.len >= m->needle.len &&
	    memmem(m->hay.data, m->hay.len, m->needle.data,
	    m->needle.len) != NULL)
		m->found = true;
	if (m->hay.len > keep)
		buf_consume(&m->hay, m->hay.len - keep);
}

/* Feeds UTF-8 text (any octets); final ends the current text. */
static void
mime_matcher_feed(struct mime_matcher *m, const char *s, size_t len,
    bool final)
{
	if (m->found)
		return;
	if (m->pend.len > 0) {
		buf_append(&m->pend, s, len);
		size_t used = mime_fold(&m->hay, m->pend.data, m->pend.len,
		    final);
		buf_consume(&m->pend, used);
	} else {
		size_t used = len > 0 ? mime_fold(&m->hay, s, len, final) : 0;
		if (used < len)
			buf_append(&m->pend, s + used, len - used);
	}
	mime_matcher_scan(m);
	if (final) {
		/* Text of one part must not run into the next. */
		buf_reset(&m->hay);
		buf_reset(&m->pend);
	}
}

/* ---- charset conversion ---- */

struct mime_conv {
	iconv_t cd;		/* (iconv_t)-1: the text is UTF-8 already */
	struct buf in;		/* octets of a character cut by a chunk */
	struct buf out;
};

static bool
mime_charset_is_utf8(const char *cs)
{
	return cs == NULL || strcasecmp(cs, "utf-8") == 0 ||
	    strcasecmp(cs, "utf8") == 0 || strcasecmp(cs, "us-ascii") == 0 ||
	    strcasecmp(cs, "ascii") == 0;
}

static void
mime_conv_init(struct mime_conv *c, const char *charset)
{
	memset(c, 0, sizeof(*c));
	c->cd = (iconv_t)-1;
	/* US-ASCII text with 8-bit octets is nearly always UTF-8. */
	if (!mime_charset_is_utf8(charset))
		c->cd = g_mime_iconv_open("UTF-8", charset);
}

static void
mime_conv_free(struct mime_conv *c)
{
	if (c->cd != (iconv_t)-1)
		g_mime_iconv_close(c->cd);
	buf_free(&c->in);
	buf_free(&c->out);
}

/* Converts c->in to UTF-8 into c->out; keeps a cut character unless
 * final. */
static void
mime_conv_run(struct mime_conv *c, bool final)
{
	char *in = c->in.data;
	size_t inleft = c->in.len;

	while (inleft > 0) {
		buf_reserve_total(&c->out, c->out.len + inleft * 4 + 16);
		char *out = c->out.data + c->out.len;
		size_t outleft = c->out.cap - c->out.len - 1;
		size_t r = iconv(c->cd, &in, &inleft, &out, &outleft);
		c->out.len = (size_t)(out - c->out.data);
		if (r != (size_t)-1 || errno == E2BIG)
			continue;
		if (errno == EINVAL && !final)
			break;
		/* An octet the charset does not have. */
		buf_append(&c->out, "\xef\xbf\xbd", 3);
		in++;
		inleft--;
	}
	if (c->out.data != NULL)
		c->out.data[c->out.len] = '\0';
	buf_consume(&c->in, c->in.len - inleft);
	if (final)
		buf_reset(&c->in);
	if (final)
		iconv(c->cd, NULL, NULL, NULL, NULL);
}

/* Decoded (transfer) octets of a text part into the matcher. */
static void
mime_conv_feed(struct mime_conv *c, struct mime_matcher *m, const char *s,
    size_t len, bool final)
{
	if (c->cd == (iconv_t)-1) {
		mime_matcher_feed(m, s, len, final);
		return;
	}
	buf_append(&c->in, s, len);
	buf_reset(&c->out);
	mime_conv_run(c, final);
	mime_matcher_feed(m, c->out.data, c->out.len, final);
}

/* ---- parts ---- */

/* Streams the body of part p through decoding into the matcher. */
static void
mime_search_text(const struct mime_map *map, const struct mime_part *p,
    const char *charset, struct mime_matcher *m)
{
	const char *body = map->data + p->body_off;
	size_t len = p->end - p->body_off, off = 0;
	enum mime_cte cte = mime_cte_of(map->data + p->hdr_off,
	    p->body_off - p->hdr_off);
	GMimeEncoding st;
	struct mime_conv conv;
	struct buf dec = BUF_INIT;

	if (cte == MIME_CTE_BASE64)
		g_mime_encoding_init_decode(&st, GMIME_CONTENT_ENCODING_BASE64);
	else if (cte == MIME_CTE_QP)
		g_mime_encoding_init_decode(&st,
		    GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
	mime_conv_init(&conv, charset);
	do {
		size_t n = len - off < MIME_CHUNK ? len - off : MIME_CHUNK;
		bool last = off + n == len;
		if (cte == MIME_CTE_BASE64 || cte == MIME_CTE_QP) {
			dec.len = 0;
			buf_reserve_total(&dec, g_mime_encoding_outlen(&st, n) +
			    16);
			const char *in = body + off;
			dec.len = last ?
			    g_mime_encoding_flush(&st, in, n, dec.data) :
			    g_mime_encoding_step(&st, in, n, dec.data);
			mime_conv_feed(&conv, m, dec.data, dec.len, last);
		} else {
			mime_conv_feed(&conv, m, body + off, n, last);
		}
		off += n;
	} while (off < len && !m->found);
	mime_conv_free(&conv);
	buf_free(&dec);
}

/* Is part p text that BODY searches? Gives its charset (allocated). */
static bool
mime_part_is_text(const struct mime_map *map, const struct mime_part *p,
    char **charset)
{
	struct mime_ctype ct;
	bool text;

	*charset = NULL;
	if (p->kind != MIME_KIND_LEAF || p->unparsed_message)
		return false;
	if (p->opaque)
		return true;
	mime_ctype_parse_type(map->data + p->hdr_off,
	    p->body_off - p->hdr_off, &ct);
	text = ct.type == NULL ? !p->in_digest :
	    strcasecmp(ct.type, "text") == 0;
	if (text && ct.type != NULL) {
		mime_ctype_free(&ct);
		mime_ctype_parse(map->data + p->hdr_off,
		    p->body_off - p->hdr_off, &ct);
	}
	const char *cs = mime_ctype_param(&ct, "charset");
	if (text && cs != NULL)
		*charset = x_strdup(cs);
	mime_ctype_free(&ct);
	return text;
}

/* Feeds one decoded header field ("Name: value") to the matcher. */
static void
mime_search_field(const struct mime_field *f, struct mime_matcher *m)
{
	struct buf v = BUF_INIT;

	mime_field_unfold(f, &v);
	char *dec = g_mime_utils_header_decode_text(NULL, buf_cstr(&v));
	if (f->name != NULL) {
		buf_reset(&v);
		buf_append(&v, f->name, f->namelen);
		buf_puts(&v, ": ");
		buf_puts(&v, dec != NULL ? dec : "");
		mime_matcher_feed(m, v.data, v.len, true);
	} else if (dec != NULL) {
		mime_matcher_feed(m, dec, strlen(dec), true);
	}
	g_free(dec);
	buf_free(&v);
}

static void
mime_search_header_block(const char *hdr, size_t len, struct mime_matcher *m)
{
	struct mime_field f;
	size_t pos = 0;

	while (!m->found && mime_field_next(hdr, len, &pos, &f))
		mime_search_field(&f, m);
}

int
mime_search_body(int fd, const char *needle, size_t len, bool text,
    bool *match, char **error_r)
{
	struct mime_map map;
	struct mime_tree t;
	struct mime_matcher m;

	*match = false;
	mime_init();
	if (mime_map_open(fd, &map, error_r) < 0)
		return -1;
	mime_tree_parse(map.data, map.len, &t);
	mime_matcher_init(&m, needle, len);
	for (size_t i = 0; i < t.n && !m.found; i++) {
		const struct mime_part *p = &t.parts[i];
		char *charset = NULL;
		if (text)
			mime_search_header_block(map.data + p->hdr_off,
			    p->body_off - p->hdr_off, &m);
		if (!m.found && mime_part_is_text(&map, p, &charset))
			mime_search_text(&map, p, charset, &m);
		x_free(&charset);
	}
	*match = m.found;
	mime_matcher_free(&m);
	mime_tree_free(&t);
	mime_map_close(&map);
	return 0;
}

int
mime_search_header(int fd, const char *field, const char *needle,
    size_t len, bool *match, char **error_r)
{
	struct mime_map map;
	struct mime_matcher m;
	struct mime_field f;
	size_t pos = 0;

	*match = false;
	mime_init();
	if (mime_map_open(fd, &map, error_r) < 0)
		return -1;
	const char *hdr = map.data;
	size_t hlen = mime_header_size(map.data, map.len);
	mime_matcher_init(&m, needle, len);
	while (!*match && mime_field_next(hdr, hlen, &pos, &f)) {
		if (!mime_field_is(&f, field))
			continue;
		if (m.found) {
			*match = true;	/* empty needle: the field is there */
			break;
		}
		struct buf v = BUF_INIT;
		mime_field_unfold(&f, &v);
		char *dec = g_mime_utils_header_decode_text(NULL, buf_cstr(&v));
		if (dec != NULL)
			mime_matcher_feed(&m, dec, strlen(dec), true);
		*match = m.found;
		g_free(dec);
		buf_free(&v);
	}
	mime_matcher_free(&m);
	mime_map_close(&map);
	return 0;
}

/* ---- the header search cache ---- */

#define MIME_HDRCACHE_VERSION	1

static const char *const mime_hdrcache_fields[] = {
	"From", "To", "Cc", "Bcc", "Subject",
};
#define MIME_HDRCACHE_NFIELDS \
	(sizeof(mime_hdrcache_fields) / sizeof(mime_hdrcache_fields[0]))

/* The field's number in the cache (1...), or 0 when not kept. */
static unsigned
mime_hdrcache_field(const char *name, size_t len)
{
	for (size_t i = 0; i < MIME_HDRCACHE_NFIELDS; i++)
		if (strlen(mime_hdrcache_fields[i]) == len &&
		    strncasecmp(mime_hdrcache_fields[i], name, len) == 0)
			return (unsigned)i + 1;
	return 0;
}

/* What mime_search_header compares a field's value with: unfolded,
 * RFC 2047 decoded, case-folded. */
static void
mime_hdrcache_value(const struct mime_field *f, struct buf *out)
{
	struct buf v = BUF_INIT;

	mime_field_unfold(f, &v);
	char *dec = g_mime_utils_header_decode_text(NULL, buf_cstr(&v));
	if (dec != NULL)
		mime_fold(out, dec, strlen(dec), true);
	g_free(dec);
	buf_free(&v);
}

char *
mime_hdrcache_make(const char *hdr, size_t len, size_t *len_r)
{
	struct buf out = BUF_INIT, val = BUF_INIT;
	struct mime_field f;
	size_t pos = 0;
	unsigned char head[5];

	mime_init();
	*len_r = 0;
	buf_putc(&out, MIME_HDRCACHE_VERSION);
	while (mime_field_next(hdr, len, &pos, &f)) {
		unsigned id = f.name != NULL ?
		    mime_hdrcache_field(f.name, f.namelen) : 0;
		if (id == 0)
			continue;
		buf_reset(&val);
		mime_hdrcache_value(&f, &val);
		if (out.len + sizeof(head) + val.len > MIME_HDRCACHE_MAX) {
			buf_free(&out);
			buf_free(&val);
			return NULL;
		}
		head[0] = (unsigned char)id;
		for (int i = 0; i < 4; i++)
			head[1 + i] = (unsigned char)(val.len >> (8 * i));
		buf_append(&out, (const char *)head, sizeof(head));
		buf_append(&out, val.data != NULL ? val.data : "", val.len);
	}
	buf_free(&val);
	*len_r = out.len;
	return out.data;
}

int
mime_hdrcache_match(const void *cache, size_t len, const char *field,
    const char *needle, size_t nlen)
{
	const unsigned char *p = cache, *end = p + len;
	unsigned id = mime_hdrcache_field(field, strlen(field));
	struct buf nb = BUF_INIT;
	int r = 0;

	if (id == 0 || cache == NULL || len == 0 ||
	    p[0] != MIME_HDRCACHE_VERSION)
		return -1;
	mime_fold(&nb, needle, nlen, true);
	for (p++; r == 0 && p < end; ) {
		if ((size_t)(end - p) < 5) {
			r = -1;
			break;
		}
		size_t vlen = (size_t)p[1] | (size_t)p[2] << 8 |
		    (size_t)p[3] << 16 | (size_t)p[4] << 24;
		unsigned fid = p[0];
		p += 5;
		if (vlen > (size_t)(end - p)) {
			r = -1;
			break;
		}
		if (fid == id && (nb.len == 0 || (vlen >= nb.len &&
		    memmem(p, vlen, nb.data, nb.len) != NULL)))
			r = 1;
		p += vlen;
	}
	buf_free(&nb);
	return r;
}
