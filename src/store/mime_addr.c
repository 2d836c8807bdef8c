/* RFC 5322 address lists in ENVELOPE form (RFC 9051 7.5.2): each mailbox
 * as (name adl mailbox host), a group as a (NIL NIL "name" NIL) start and
 * a (NIL NIL NIL NIL) end. Lenient like Dovecot: a missing local part or
 * domain becomes MISSING_MAILBOX / MISSING_DOMAIN (a NIL host would mean
 * a group), a comment names a mailbox that has no display name, encoded
 * words stay as they are.
 *
 * Untrusted input: unfolded From/To/... values of stored messages. Every
 * step consumes input, so parsing is linear in the value. */
#include <string.h>

#include "core/xmalloc.h"
#include "store/mime.h"
#include "store/mime_internal.h"

struct mime_alex {
	const char *p;
	const char *end;
	struct buf comment;	/* the last comment, unescaped */
};

struct mime_addr {
	struct buf name;
	struct buf route;
	struct buf local;
	struct buf host;
	bool has_at;		/* host given, maybe empty */
};

/* RFC 5322 atext, and any 8-bit octet (RFC 6532). */
static bool
mime_is_atext(unsigned char c)
{
	return c >= 0x80 || (c > ' ' && c < 0x7f &&
	    strchr("()<>[]:;@\\,.\"", c) == NULL);
}

static void
mime_alex_comment(struct mime_alex *x)
{
	int depth = 1;

	buf_reset(&x->comment);
	for (x->p++; x->p < x->end; x->p++) {
		char c = *x->p;
		if (c == '\\' && x->p + 1 < x->end) {
			buf_putc(&x->comment, *++x->p);
			continue;
		}
		if (c == '(')
			depth++;
		else if (c == ')' && --depth == 0)
			break;
		buf_putc(&x->comment, c);
	}
	if (x->p < x->end)
		x->p++;
}

/* Skips blanks and comments; true when there were any. */
static bool
mime_alex_cfws(struct mime_alex *x)
{
	bool any = false;

	while (x->p < x->end) {
		if (*x->p == ' ' || *x->p == '\t')
			x->p++;
		else if (*x->p == '(')
			mime_alex_comment(x);
		else
			break;
		any = true;
	}
	return any;
}

static void
mime_alex_quoted(struct mime_alex *x, struct buf *w)
{
	for (x->p++; x->p < x->end && *x->p != '"'; x->p++) {
		if (*x->p == '\\' && x->p + 1 < x->end)
			x->p++;
		buf_putc(w, *x->p);
	}
	if (x->p < x->end)
		x->p++;
}

/* A word (atom, quoted string, domain literal) or a dot into w; false
 * when the next octet starts none of them. */
static bool
mime_alex_word(struct mime_alex *x, struct buf *w)
{
	const char *s = x->p;

	if (x->p >= x->end)
		return false;
	if (*x->p == '"') {
		mime_alex_quoted(x, w);
		return true;
	}
	if (*x->p == '[') {
		while (x->p < x->end && *x->p != ']')
			x->p++;
		if (x->p < x->end)
			x->p++;
	} else if (*x->p == '.') {
		x->p++;
	} else {
		while (x->p < x->end && mime_is_atext((unsigned char)*x->p))
			x->p++;
	}
	buf_append(w, s, (size_t)(x->p - s));
	return x->p > s;
}

/* Words up to a special: display form (single spaces where the message
 * has blanks) and local-part form (no blanks). */
static void
mime_alex_phrase(struct mime_alex *x, struct buf *display, struct buf *local)
{
	struct buf w = BUF_INIT;

	for (;;) {
		bool sp = mime_alex_cfws(x);
		buf_reset(&w);
		if (!mime_alex_word(x, &w))
			break;
		if (sp && display != NULL && display->len > 0)
			buf_putc(display, ' ');
		if (display != NULL)
			buf_append(display, w.data, w.len);
		if (local != NULL)
			buf_append(local, w.data, w.len);
	}
	buf_free(&w);
}

static void
mime_alex_domain(struct mime_alex *x, struct mime_addr *a)
{
	a->has_at = true;
	x->p++;
	mime_alex_phrase(x, NULL, &a->host);
}

/* "@a,@b:" before an addr-spec; rewinds when it is not a route. */
static void
mime_alex_route(struct mime_alex *x, struct mime_addr *a)
{
	const char *start = x->p;

	while (x->p < x->end) {
		mime_alex_cfws(x);
		if (x->p >= x->end)
			break;
		if (*x->p == '@' || *x->p == ',') {
			buf_putc(&a->route, *x->p++);
			mime_alex_phrase(x, NULL, &a->route);
		} else if (*x->p == ':') {
			x->p++;
			return;
		} else {
			break;
		}
	}
	x->p = start;
	buf_reset(&a->route);
}

/* "<" [route] addr-spec ">" */
static void
mime_alex_angle(struct mime_alex *x, struct mime_addr *a)
{
	x->p++;
	mime_alex_cfws(x);
	if (x->p < x->end && *x->p == '@')
		mime_alex_route(x, a);
	mime_alex_phrase(x, NULL, &a->local);
	if (x->p < x->end && *x->p == '@')
		mime_alex_domain(x, a);
	mime_alex_cfws(x);
	if (x->p < x->end && *x->p == '>')
		x->p++;
	mime_alex_cfws(x);
}

static void
mime_addr_write_str(struct buf *out, const struct buf *b, const char *dflt)
{
	if (b->len > 0)
		mime_imap_string(out, b->data, b->len);
	else if (dflt != NULL)
		mime_imap_string(out, dflt, strlen(dflt));
	else
		buf_puts(out, "NIL");
}

static void
mime_addr_write(struct buf *out, const struct mime_addr *a)
{
	buf_putc(out, '(');
	mime_addr_write_str(out, &a->name, NULL);
	buf_putc(out, ' ');
	mime_addr_write_str(out, &a->route, NULL);
	buf_putc(out, ' ');
	mime_addr_write_str(out, &a->local, "MISSING_MAILBOX");
	buf_putc(out, ' ');
	mime_addr_write_str(out, &a->host, "MISSING_DOMAIN");
	buf_putc(out, ')');
}

static void
mime_addr_free(struct mime_addr *a)
{
	buf_free(&a->name);
	buf_free(&a->route);
	buf_free(&a->local);
	buf_free(&a->host);
}

/* Skips what is left of a broken address, up to the next separator. */
static void
mime_alex_skip(struct mime_alex *x, bool in_group)
{
	struct buf junk = BUF_INIT;

	while (x->p < x->end && *x->p != ',' && !(in_group && *x->p == ';')) {
		if (mime_alex_cfws(x))
			continue;
		buf_reset(&junk);
		if (!mime_alex_word(x, &junk))
			x->p++;
	}
	buf_free(&junk);
}

static bool mime_alex_group(struct mime_alex *x, struct buf *out,
    const struct buf *name);

/* One mailbox or group; true when it wrote something. */
static bool
mime_alex_one(struct mime_alex *x, struct buf *out, bool in_group)
{
	struct mime_addr a;
	bool wrote = false;

	memset(&a, 0, sizeof(a));
	buf_reset(&x->comment);
	mime_alex_phrase(x, &a.name, &a.local);
	char c = x->p < x->end ? *x->p : '\0';
	if (c == ':' && !in_group) {
		x->p++;
		wrote = mime_alex_group(x, out, &a.name);
	} else if (c == '<') {
		buf_reset(&a.local);
		mime_alex_angle(x, &a);
		wrote = true;
	} else if (c == '@' || a.local.len > 0) {
		buf_reset(&a.name);
		if (c == '@')
			mime_alex_domain(x, &a);
		mime_alex_cfws(x);
		wrote = true;
	}
	if (wrote && c != ':') {
		if (a.name.len == 0 && x->comment.len > 0)
			buf_append(&a.name, x->comment.data, x->comment.len);
		mime_addr_write(out, &a);
	}
	mime_addr_free(&a);
	mime_alex_skip(x, in_group);
	return wrote;
}

static bool
mime_alex_group(struct mime_alex *x, struct buf *out, const struct buf *name)
{
	buf_puts(out, "(NIL NIL ");
	mime_imap_string(out, name->data != NULL ? name->data : "", name->len);
	buf_puts(out, " NIL)");
	while (x->p < x->end) {
		mime_alex_cfws(x);
		if (x->p >= x->end)
			break;
		if (*x->p == ';') {
			x->p++;
			break;
		}
		if (*x->p == ',')
			x->p++;
		else
			mime_alex_one(x, out, true);
	}
	buf_puts(out, "(NIL NIL NIL NIL)");
	return true;
}

bool
mime_write_addresses(struct buf *out, const char *value, size_t len)
{
	struct mime_alex x = { value, value + len, BUF_INIT };
	struct buf list = BUF_INIT;
	bool any = false;

	while (x.p < x.end) {
		mime_alex_cfws(&x);
		if (x.p >= x.end)
			break;
		if (*x.p == ',' || *x.p == ';' || *x.p == '>') {
			x.p++;
			continue;
		}
		const char *before = x.p;
		if (mime_alex_one(&x, &list, false))
			any = true;
		if (x.p == before)
			x.p++;
	}
	if (any) {
		buf_putc(out, '(');
		buf_append(out, list.data, list.len);
		buf_putc(out, ')');
	}
	buf_free(&list);
	buf_free(&x.comment);
	return any;
}
