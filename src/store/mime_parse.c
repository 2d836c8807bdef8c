/* Splits a message file into its MIME parts in one pass over its lines.
 *
 * Untrusted input: the whole message file (written by strangers over
 * SMTP). Every line is looked at once; a boundary line is compared with
 * at most MIME_DEPTH_MAX open boundaries, so time is linear in the file
 * and memory linear in the number of parts (at most MIME_PARTS_MAX). */
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "core/xmalloc.h"
#include "store/mime.h"
#include "store/mime_internal.h"

/* An open multipart whose boundary lines we look for. */
struct mime_frame {
	uint32_t part;
	char *boundary;
	size_t blen;
	bool closed;		/* its close delimiter was seen */
};

struct mime_scan {
	const char *d;
	size_t len;
	struct mime_tree *t;
	uint32_t cur;		/* innermost open part */
	bool in_header;		/* cur's header has not ended yet */
	bool full;		/* MIME_PARTS_MAX reached */
	struct mime_frame frames[MIME_DEPTH_MAX + 1];
	size_t nframes;
};

static uint32_t
mime_part_new(struct mime_scan *s, uint32_t parent, size_t off)
{
	struct mime_tree *t = s->t;

	if (t->n >= MIME_PARTS_MAX) {
		s->full = true;
		return MIME_NONE;
	}
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 8;
		t->parts = x_reallocarray(t->parts, t->cap, sizeof(*t->parts));
	}
	uint32_t i = (uint32_t)t->n++;
	struct mime_part *p = &t->parts[i];
	memset(p, 0, sizeof(*p));
	p->hdr_off = p->body_off = p->end = off;
	p->parent = parent;
	p->first_child = p->last_child = p->next = MIME_NONE;
	p->kind = MIME_KIND_LEAF;
	if (parent != MIME_NONE) {
		struct mime_part *pp = &t->parts[parent];
		p->depth = (uint8_t)(pp->depth + 1);
		if (pp->last_child == MIME_NONE)
			pp->first_child = i;
		else
			t->parts[pp->last_child].next = i;
		pp->last_child = i;
	}
	return i;
}

static bool
mime_is_message_type(const struct mime_ctype *ct)
{
	return strcasecmp(ct->type, "message") == 0 &&
	    (strcasecmp(ct->subtype, "rfc822") == 0 ||
	    strcasecmp(ct->subtype, "global") == 0);
}

/* cur's header ends at body_off: decides what the part is and opens
 * what its body holds (a boundary to look for, an encapsulated
 * message). */
static void
mime_scan_header_end(struct mime_scan *s, size_t body_off, size_t nl_body)
{
	struct mime_part *p = &s->t->parts[s->cur];
	struct mime_ctype ct;
	bool can_nest = p->depth + 1 < MIME_DEPTH_MAX && !s->full;

	if (body_off < p->hdr_off)
		body_off = p->hdr_off;
	p->body_off = p->end = body_off;
	p->nl_body = nl_body;
	s->in_header = false;

	mime_ctype_parse_type(s->d + p->hdr_off, body_off - p->hdr_off, &ct);
	if (ct.type == NULL) {
		if (p->in_digest) {
			p->kind = MIME_KIND_MESSAGE;
			p->opaque = !can_nest;
		}
	} else if (strcasecmp(ct.type, "multipart") == 0) {
		p->kind = MIME_KIND_MULTIPART;
		p->digest = strcasecmp(ct.subtype, "digest") == 0;
		p->opaque = !can_nest;
	} else if (mime_is_message_type(&ct)) {
		p->kind = MIME_KIND_MESSAGE;
		p->opaque = !can_nest;
		if (mime_cte_of(s->d + p->hdr_off, body_off - p->hdr_off) !=
		    MIME_CTE_IDENTITY) {
			p->kind = MIME_KIND_LEAF;
			p->unparsed_message = true;
		}
	}
	if (p->opaque)
		p->kind = MIME_KIND_LEAF;

	if (p->kind == MIME_KIND_MULTIPART) {
		mime_ctype_free(&ct);
		mime_ctype_parse(s->d + p->hdr_off, body_off - p->hdr_off, &ct);
		const char *b = mime_ctype_param(&ct, "boundary");
		if (b != NULL && *b != '\0' && s->nframes < MIME_DEPTH_MAX) {
			struct mime_frame *f = &s->frames[s->nframes++];
			f->part = s->cur;
			f->boundary = x_strdup(b);
			f->blen = strlen(b);
			f->closed = false;
		}
	} else if (p->kind == MIME_KIND_MESSAGE) {
		uint32_t e = mime_part_new(s, s->cur, body_off);
		if (e == MIME_NONE) {
			s->t->parts[s->cur].kind = MIME_KIND_LEAF;
			s->t->parts[s->cur].opaque = true;
		} else {
			s->t->parts[e].is_message = true;
			s->cur = e;
			s->in_header = true;
		}
	}
	mime_ctype_free(&ct);
}

/* Closes the part i at e (nl_e LFs before e). When the line end before
 * the boundary is the one of the header's blank line, it belongs to the
 * boundary (RFC 2046), so the header gives it up, as in Dovecot. */
static void
mime_scan_finish(struct mime_scan *s, uint32_t i, size_t e, size_t nl_e)
{
	struct mime_part *p = &s->t->parts[i];

	if (e <= p->body_off) {
		p->body_off = e > p->hdr_off ? e : p->hdr_off;
		p->end = p->body_off;
		p->lines = 0;
	} else {
		p->end = e;
		p->lines = nl_e - p->nl_body;
	}
	if (p->kind == MIME_KIND_MESSAGE) {
		/* Its (then empty) message must not start past its end. */
		struct mime_part *m = &s->t->parts[p->first_child];
		if (m->hdr_off > p->end)
			m->hdr_off = m->body_off = m->end = p->end;
	}
}

/* Ends every open part inside part `upto` (all of them when MIME_NONE)
 * at e, and forgets the boundaries of the multiparts among them. */
static void
mime_scan_close_to(struct mime_scan *s, uint32_t upto, size_t e,
    size_t nl_e)
{
	while (s->in_header)
		mime_scan_header_end(s, e, nl_e);
	while (s->cur != upto) {
		uint32_t parent = s->t->parts[s->cur].parent;
		mime_scan_finish(s, s->cur, e, nl_e);
		if (parent == MIME_NONE)
			break;
		s->cur = parent;
	}
	while (s->nframes > 0) {
		struct mime_frame *f = &s->frames[s->nframes - 1];
		if (f->part == upto)
			break;
		x_free(&f->boundary);
		s->nframes--;
	}
}

/* Is [p, end) only blanks (the transport padding RFC 2046 allows)? */
static bool
mime_is_lwsp(const char *p, const char *end)
{
	for (; p < end; p++) {
		if (*p != ' ' && *p != '\t')
			return false;
	}
	return true;
}

/* The open multipart whose boundary the line [ls, ce) is, innermost
 * first. As GMime (and RFC 2046), only blanks may follow a boundary,
 * so an outer boundary that is a prefix of an inner one cannot take
 * the inner one's lines. */
static struct mime_frame *
mime_scan_boundary(struct mime_scan *s, size_t ls, size_t ce, bool *close)
{
	const char *line = s->d + ls, *end = s->d + ce;
	size_t n = ce - ls;

	/* At the part limit no boundary counts any more: the rest of the
	 * file stays in the part that is open. */
	if (n < 3 || line[0] != '-' || line[1] != '-' || s->full ||
	    s->t->n >= MIME_PARTS_MAX)
		return NULL;
	for (size_t k = s->nframes; k-- > 0;) {
		struct mime_frame *f = &s->frames[k];
		if (f->closed || n - 2 < f->blen ||
		    memcmp(line + 2, f->boundary, f->blen) != 0)
			continue;
		const char *rest = line + 2 + f->blen;
		*close = end - rest >= 2 && rest[0] == '-' && rest[1] == '-';
		if (*close || mime_is_lwsp(rest, end))
			return f;
	}
	return NULL;
}

/* A boundary line of f's multipart at [ls, le): the part before it ends
 * where the line end before the boundary starts. */
static void
mime_scan_on_boundary(struct mime_scan *s, struct mime_frame *f, bool close,
    size_t ls, size_t le, size_t prev_eol, size_t nl)
{
	uint32_t mp = f->part;
	size_t e = ls - prev_eol;
	size_t nl_e = prev_eol > 0 ? nl - 1 : nl;

	mime_scan_close_to(s, mp, e, nl_e);
	s->cur = mp;
	if (close) {
		/* The epilogue is the multipart's own: no more parts. */
		f->closed = true;
		return;
	}
	uint32_t c = mime_part_new(s, mp, le);
	if (c == MIME_NONE)
		return;
	s->t->parts[c].in_digest = s->t->parts[mp].digest;
	s->cur = c;
	s->in_header = true;
}

static void
mime_scan_line(struct mime_scan *s, size_t ls, size_t ce, size_t le,
    size_t prev_eol, size_t nl)
{
	bool close = false;
	struct mime_frame *f = mime_scan_boundary(s, ls, ce, &close);

	if (f != NULL) {
		mime_scan_on_boundary(s, f, close, ls, le, prev_eol, nl);
		return;
	}
	if (s->in_header && ce == ls)
		mime_scan_header_end(s, le, le > ce ? nl + 1 : nl);
}

void
mime_tree_parse(const char *data, size_t len, struct mime_tree *t)
{
	struct mime_scan s;
	size_t pos = 0, prev_eol = 0, nl = 0;

	memset(t, 0, sizeof(*t));
	memset(&s, 0, sizeof(s));
	s.d = data;
	s.len = len;
	s.t = t;
	s.cur = mime_part_new(&s, MIME_NONE, 0);
	t->parts[0].is_message = true;
	s.in_header = true;

	while (pos < len) {
		const char *lf = memchr(data + pos, '\n', len - pos);
		size_t le = lf != NULL ? (size_t)(lf - data) + 1 : len;
		size_t ce = le;
		if (lf != NULL) {
			ce--;
			if (ce > pos && data[ce - 1] == '\r')
				ce--;
		}
		mime_scan_line(&s, pos, ce, le, prev_eol, nl);
		if (lf != NULL)
			nl++;
		prev_eol = le - ce;
		pos = le;
	}
	mime_scan_close_to(&s, MIME_NONE, len, nl);
}

void
mime_tree_free(struct mime_tree *t)
{
	x_free(&t->parts);
	t->n = t->cap = 0;
}
