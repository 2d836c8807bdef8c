/* Extracting the From: addresses of a header section. */
#include "smtp/smtp_from.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"

/* Unfolds the field value that starts at p (after "From:") into v;
 * returns where the next field starts. */
static size_t
from_unfold(const char *h, size_t n, size_t p, struct buf *v)
{
	while (p < n) {
		if (h[p] == '\r' || h[p] == '\n') {
			size_t q = p + (h[p] == '\r' && p + 1 < n &&
			    h[p + 1] == '\n' ? 2 : 1);
			if (q < n && (h[q] == ' ' || h[q] == '\t')) {
				p = q;
				continue;
			}
			return q;
		}
		buf_putc(v, h[p++]);
	}
	return p;
}

/* Adds the addr-spec of one mailbox text ("Name <a@b>" or "a@b (c)"). */
static void
from_add_mailbox(const char *m, size_t len, struct strlist *out)
{
	struct buf a = BUF_INIT, bare = BUF_INIT;
	bool in_angle = false, had_angle = false, quoted = false;
	int depth = 0;

	for (size_t i = 0; i < len; i++) {
		char c = m[i];
		if (quoted) {
			if (c == '\\' && i + 1 < len)
				c = m[++i];
			else if (c == '"')
				quoted = false;
			if (in_angle || !had_angle)
				buf_putc(in_angle ? &a : &bare, c);
			continue;
		}
		if (depth > 0) {
			if (c == '\\' && i + 1 < len)
				i++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			continue;
		}
		if (c == '(') {
			depth = 1;
		} else if (c == '"') {
			quoted = true;
			buf_putc(in_angle ? &a : &bare, c);
		} else if (c == '<' && !in_angle) {
			in_angle = had_angle = true;
			buf_reset(&a);
		} else if (c == '>' && in_angle) {
			in_angle = false;
		} else if (c != ' ' && c != '\t') {
			buf_putc(in_angle ? &a : &bare, c);
		}
	}
	const struct buf *pick = had_angle ? &a : &bare;
	if (pick->len > 0 && strchr(buf_cstr(pick), '@') != NULL) {
		/* Drop a source route: "@x,@y:local@domain". */
		const char *s = buf_cstr(pick);
		if (s[0] == '@' && strchr(s, ':'))
			s = strchr(s, ':') + 1;
		strlist_add(out, s);
	} else {
		/* Not an address: keep it so that the caller refuses it. */
		strlist_add(out, pick->len ? buf_cstr(pick) : "");
	}
	buf_free(&a);
	buf_free(&bare);
}

/* Splits a From: value at the commas and semicolons that separate
 * mailboxes (not those in quotes, comments or angle brackets). */
static void
from_split(const char *v, size_t n, struct strlist *out)
{
	size_t start = 0;
	bool quoted = false, angle = false;
	int depth = 0;

	for (size_t i = 0; i <= n; i++) {
		char c = i < n ? v[i] : ',';
		if (quoted) {
			if (c == '\\')
				i++;
			else if (c == '"')
				quoted = false;
			continue;
		}
		if (depth > 0) {
			if (c == '\\')
				i++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			continue;
		}
		if (c == '"')
			quoted = true;
		else if (c == '(')
			depth = 1;
		else if (c == '<')
			angle = true;
		else if (c == '>')
			angle = false;
		else if (c == ':' && !angle)
			start = i + 1;	/* group name: "team:" */
		else if ((c == ',' || c == ';') && !angle) {
			size_t len = i - start;
			const char *m = v + start;
			while (len && (*m == ' ' || *m == '\t')) {
				m++;
				len--;
			}
			if (len > 0)
				from_add_mailbox(m, len, out);
			start = i + 1;
		}
	}
}

int
smtp_from_addresses(const char *h, size_t n, struct strlist *out)
{
	struct buf v = BUF_INIT;
	size_t p = 0;
	int fields = 0;

	while (p < n) {
		/* The end of the header section. */
		if (h[p] == '\r' || h[p] == '\n')
			break;
		bool is_from = n - p >= 5 && strncasecmp(h + p, "From:", 5) == 0;
		if (is_from)
			p += 5;
		buf_reset(&v);
		p = from_unfold(h, n, p, &v);
		if (!is_from)
			continue;
		fields++;
		from_split(buf_cstr(&v), v.len, out);
	}
	buf_free(&v);
	return fields;
}
