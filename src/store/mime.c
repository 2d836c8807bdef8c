/* MIME structure of stored messages: summaries, sections, BINARY.
 *
 * Untrusted input: message files (written by strangers over SMTP). The
 * file is read or mapped, split into parts by mime_parse.c, and only
 * read. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmime/gmime.h>

#include "core/xmalloc.h"
#include "store/mime.h"
#include "store/mime_internal.h"

/* Files up to this size are read rather than mapped. */
#define MIME_READ_MAX		(1024 * 1024)

/* Longer strings go out as literals: easier on clients' line buffers. */
#define MIME_QUOTED_MAX		1024

static pthread_once_t mime_once = PTHREAD_ONCE_INIT;

static void
mime_init_once(void)
{
	g_mime_init();
}

void
mime_init(void)
{
	pthread_once(&mime_once, mime_init_once);
}

/* ---- the file ---- */

static int
mime_map_read(int fd, struct mime_map *m, size_t size, char **error_r)
{
	char *mem = x_malloc(size + 1);
	size_t got = 0;

	while (got < size) {
		ssize_t r = pread(fd, mem + got, size - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			*error_r = x_asprintf("read message: %s",
			    r < 0 ? strerror(errno) : "short file");
			free(mem);
			return -1;
		}
		got += (size_t)r;
	}
	m->mem = mem;
	m->data = mem;
	m->len = size;
	return 0;
}

int
mime_map_open(int fd, struct mime_map *m, char **error_r)
{
	struct stat st;

	memset(m, 0, sizeof(*m));
	m->data = "";
	if (fstat(fd, &st) < 0) {
		*error_r = x_asprintf("fstat message: %s", strerror(errno));
		return -1;
	}
	if (st.st_size <= 0)
		return 0;
	if ((uint64_t)st.st_size > SIZE_MAX / 2) {
		*error_r = x_strdup("message file too large");
		return -1;
	}
	size_t size = (size_t)st.st_size;
	/* Most messages are small: reading them is cheaper than mapping
	 * and unmapping (a TLB flush each time). */
	if (size <= MIME_READ_MAX)
		return mime_map_read(fd, m, size, error_r);
	/* Message files are never rewritten in place (Maildir), so a
	 * mapping cannot see them shrink under it. */
	void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		return mime_map_read(fd, m, size, error_r);
	m->mem = p;
	m->data = p;
	m->len = size;
	m->mapped = true;
	return 0;
}

void
mime_map_close(struct mime_map *m)
{
	if (m->mapped)
		munmap(m->mem, m->len);
	else
		free(m->mem);
	memset(m, 0, sizeof(*m));
}

/* Maps fd and splits it into parts. */
static int
mime_open(int fd, struct mime_map *m, struct mime_tree *t, char **error_r)
{
	mime_init();
	if (mime_map_open(fd, m, error_r) < 0)
		return -1;
	mime_tree_parse(m->data, m->len, t);
	return 0;
}

static void
mime_close(struct mime_map *m, struct mime_tree *t)
{
	mime_tree_free(t);
	mime_map_close(m);
}

/* ---- IMAP strings ---- */

/* Can s go out as a quoted string? */
static bool
mime_is_quotable(const char *s, size_t len)
{
	if (len > MIME_QUOTED_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\0' || s[i] == '\r' || s[i] == '\n')
			return false;
	}
	return g_utf8_validate(s, (gssize)len, NULL);
}

void
mime_imap_string(struct buf *out, const char *s, size_t len)
{
	if (s == NULL) {
		buf_puts(out, "NIL");
		return;
	}
	if (mime_is_quotable(s, len)) {
		buf_putc(out, '"');
		size_t run = 0;
		for (size_t i = 0; i < len; i++) {
			if (s[i] != '"' && s[i] != '\\')
				continue;
			buf_append(out, s + run, i - run);
			buf_putc(out, '\\');
			run = i;
		}
		buf_append(out, s + run, len - run);
		buf_putc(out, '"');
		return;
	}
	/* A literal may not hold NUL (RFC 9051 CHAR8): keep the length. */
	buf_printf(out, "{%zu}\r\n", len);
	size_t start = out->len;
	buf_append(out, s, len);
	for (size_t i = start; i < out->len; i++) {
		if (out->data[i] == '\0')
			out->data[i] = ' ';
	}
}

/* ---- summaries ---- */

static time_t
mime_sentdate(const char *hdr, size_t len)
{
	struct buf v = BUF_INIT;
	time_t t = 0;

	if (mime_header_get(hdr, len, "Date", &v) && v.len < 1000) {
		GDateTime *dt = g_mime_utils_header_decode_date(buf_cstr(&v));
		if (dt != NULL) {
			gint64 u = g_date_time_to_unix(dt);
			t = u > 0 ? (time_t)u : 0;
			g_date_time_unref(dt);
		}
	}
	buf_free(&v);
	return t;
}

/* Hands the text of b over (b is left empty). */
static char *
mime_buf_take(struct buf *b)
{
	char *s = b->data != NULL ? b->data : x_strdup("");

	buf_init(b);
	return s;
}

int
mime_summarize(int fd, struct mime_summary *out, char **error_r)
{
	struct mime_map m;
	struct mime_tree t;
	struct buf b = BUF_INIT;

	memset(out, 0, sizeof(*out));
	if (mime_open(fd, &m, &t, error_r) < 0)
		return -1;
	const struct mime_part *root = &t.parts[0];
	size_t hlen = root->body_off - root->hdr_off;

	mime_write_envelope(&b, m.data, hlen);
	out->envelope = mime_buf_take(&b);
	mime_write_body(&b, &m, &t, 0, false);
	out->body = mime_buf_take(&b);
	mime_write_body(&b, &m, &t, 0, true);
	out->bodystructure = mime_buf_take(&b);
	out->sentdate = mime_sentdate(m.data, hlen);
	out->hdrcache = mime_hdrcache_make(m.data,
	    mime_header_size(m.data, m.len), &out->hdrcache_len);
	mime_close(&m, &t);
	return 0;
}

void
mime_summary_free(struct mime_summary *s)
{
	x_free(&s->envelope);
	x_free(&s->body);
	x_free(&s->bodystructure);
	x_free(&s->hdrcache);
	s->hdrcache_len = 0;
}

/* ---- sections ---- */

uint32_t
mime_tree_walk(const struct mime_tree *t, const uint32_t *path, size_t n)
{
	uint32_t cur = 0;
	/* A single part is part 1 of its message, and (as in Dovecot) a
	 * leaf of a multipart is part 1 of itself: once, not 1.1.1... */
	bool one_allowed = true;

	for (size_t i = 0; i < n; i++) {
		const struct mime_part *p = &t->parts[cur];
		/* The parts of a message/rfc822 part are those of the
		 * message it holds; the root is a message already. */
		if (i > 0 && p->kind == MIME_KIND_MESSAGE) {
			cur = p->first_child;
			p = &t->parts[cur];
			one_allowed = true;
		}
		if (p->kind == MIME_KIND_MULTIPART) {
			uint32_t c = p->first_child;
			for (uint32_t k = 1; c != MIME_NONE && k < path[i]; k++)
				c = t->parts[c].next;
			if (path[i] == 0 || c == MIME_NONE)
				return MIME_NONE;
			cur = c;
			one_allowed = true;
		} else if (path[i] == 1 && one_allowed) {
			one_allowed = false;
		} else {
			return MIME_NONE;
		}
	}
	return cur;
}

static void
mime_range_set(struct mime_range *out, size_t from, size_t to)
{
	out->offset = from;
	out->length = to > from ? to - from : 0;
}

/* The range of section `which` of part i (reached by a non-empty path). */
static void
mime_part_range(const struct mime_tree *t, uint32_t i,
    enum mime_section which, struct mime_range *out)
{
	const struct mime_part *p = &t->parts[i];
	const struct mime_part *msg = p->kind == MIME_KIND_MESSAGE ?
	    &t->parts[p->first_child] : NULL;

	switch (which) {
	case MIME_SECTION_ALL:
		mime_range_set(out, p->body_off, p->end);
		break;
	case MIME_SECTION_MIME:
		mime_range_set(out, p->hdr_off, p->body_off);
		break;
	case MIME_SECTION_HEADER:
		if (msg != NULL)
			mime_range_set(out, msg->hdr_off, msg->body_off);
		break;
	case MIME_SECTION_TEXT:
		if (msg != NULL)
			mime_range_set(out, msg->body_off, msg->end);
		break;
	}
}

int
mime_section_range(int fd, const uint32_t *part, size_t nparts,
    enum mime_section which, struct mime_range *out, char **error_r)
{
	struct mime_map m;
	struct mime_tree t;

	out->offset = 0;
	out->length = 0;
	if (mime_open(fd, &m, &t, error_r) < 0)
		return -1;
	const struct mime_part *root = &t.parts[0];
	if (nparts == 0) {
		if (which == MIME_SECTION_ALL)
			mime_range_set(out, 0, m.len);
		else if (which == MIME_SECTION_HEADER)
			mime_range_set(out, 0, root->body_off);
		else if (which == MIME_SECTION_TEXT)
			mime_range_set(out, root->body_off, m.len);
	} else {
		uint32_t i = mime_tree_walk(&t, part, nparts);
		if (i != MIME_NONE)
			mime_part_range(&t, i, which, out);
	}
	mime_close(&m, &t);
	return 0;
}

static bool
mime_field_listed(const struct mime_field *f, const char *const *fields,
    size_t nfields)
{
	for (size_t i = 0; i < nfields; i++) {
		if (mime_field_is(f, fields[i]))
			return true;
	}
	return false;
}

void
mime_header_filter(const char *hdr, size_t len,
    const char *const *fields, size_t nfields, bool not, struct buf *out)
{
	struct mime_field f;
	size_t pos = 0;

	while (mime_field_next(hdr, len, &pos, &f)) {
		if (mime_field_listed(&f, fields, nfields) == not)
			continue;
		buf_append(out, f.raw, f.rawlen);
		if (f.raw[f.rawlen - 1] != '\n')
			buf_puts(out, "\r\n");
	}
	buf_puts(out, "\r\n");
}

/* ---- BINARY ---- */

/* Undoes base64 or quoted-printable, in steps that bound the extra
 * memory. */
static void
mime_decode_into(GMimeContentEncoding enc, const char *in, size_t len,
    struct buf *out)
{
	GMimeEncoding st;
	const size_t step = 64 * 1024;

	g_mime_encoding_init_decode(&st, enc);
	size_t off = 0;
	do {
		size_t n = len - off < step ? len - off : step;
		bool last = off + n == len;
		char *w = NULL;
		buf_reserve_total(out, out->len + g_mime_encoding_outlen(&st,
		    n) + 16);
		w = out->data + out->len;
		out->len += last ? g_mime_encoding_flush(&st, in + off, n, w) :
		    g_mime_encoding_step(&st, in + off, n, w);
		out->data[out->len] = '\0';
		off += n;
	} while (off < len);
}

static int
mime_decode_part(const struct mime_map *m, const struct mime_part *p,
    struct buf *out, char **error_r)
{
	const char *body = m->data + p->body_off;
	size_t blen = p->end - p->body_off;

	switch (mime_cte_of(m->data + p->hdr_off, p->body_off - p->hdr_off)) {
	case MIME_CTE_IDENTITY:
		buf_append(out, body, blen);
		return 0;
	case MIME_CTE_BASE64:
		mime_decode_into(GMIME_CONTENT_ENCODING_BASE64, body, blen,
		    out);
		return 0;
	case MIME_CTE_QP:
		mime_decode_into(GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE, body,
		    blen, out);
		return 0;
	case MIME_CTE_UNKNOWN:
		break;
	}
	*error_r = x_strdup("unknown content transfer encoding");
	return -1;
}

int
mime_section_decode(int fd, const uint32_t *part, size_t nparts,
    struct buf *out, char **error_r)
{
	struct mime_map m;
	struct mime_tree t;
	int ret = 0, err = 0;

	if (mime_open(fd, &m, &t, error_r) < 0)
		return -1;
	if (nparts == 0) {
		buf_append(out, m.data, m.len);
	} else {
		uint32_t i = mime_tree_walk(&t, part, nparts);
		if (i == MIME_NONE ||
		    t.parts[i].kind == MIME_KIND_MULTIPART) {
			*error_r = x_strdup(i == MIME_NONE ? "no such part" :
			    "not a leaf part");
			ret = -1;
			err = ENOENT;
		} else {
			ret = mime_decode_part(&m, &t.parts[i], out, error_r);
			err = EINVAL;
		}
	}
	mime_close(&m, &t);
	if (ret < 0)
		errno = err;
	return ret;
}
