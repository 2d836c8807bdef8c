/* The IMAP command parser: one whole command (its lines and the literals
 * they announce, see imap_parse.h) into struct imap_command.
 *
 * Untrusted input: every octet of the command, from any client, before and
 * after authentication.
 *
 * The parser reads left to right with one cursor and never backs up more
 * than one word, so its time is linear in the input. Recursion happens only
 * for nested SEARCH keys and is bounded by IMAP_DEPTH_MAX. Everything the
 * result points to lives in one arena owned by the command, so a failed or
 * finished command is released with a single call. */
#include <assert.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/xmalloc.h"
#include "imap/imap_parse.h"
#include "imap/imap_utf7.h"

#define U63_MAX		((uint64_t)INT64_MAX)

/* ---- arena ---- */

/* The chunk's storage follows the header, which is padded to keep it
 * aligned for any type. */
struct arena_chunk {
	_Alignas(max_align_t) struct arena_chunk *next;
	size_t cap;
	size_t used;
};

struct arena {
	struct arena_chunk *head;
	size_t next_cap;
};

#define ARENA_FIRST	2048
#define ARENA_CHUNK_MAX	(256 * 1024)

static struct arena *
arena_new(void)
{
	struct arena *a = x_calloc(1, sizeof(*a));

	a->next_cap = ARENA_FIRST;
	return a;
}

static void
arena_free(struct arena *a)
{
	struct arena_chunk *c, *next;

	if (a == NULL)
		return;
	for (c = a->head; c != NULL; c = next) {
		next = c->next;
		x_free(&c);
	}
	x_free(&a);
}

/* Uninitialised storage for n octets, aligned for any type. */
static void *
arena_raw(struct arena *a, size_t n)
{
	const size_t align = sizeof(max_align_t);
	struct arena_chunk *c = a->head;
	size_t need;
	void *ptr;

	if (n > SIZE_MAX / 2)
		fatalx("imap_parse: allocation of %zu bytes", n);
	need = (n + align - 1) / align * align;
	if (c == NULL || c->cap - c->used < need) {
		size_t cap = need > a->next_cap ? need : a->next_cap;

		c = x_malloc(sizeof(*c) + cap);
		c->cap = cap;
		c->used = 0;
		c->next = a->head;
		a->head = c;
		if (a->next_cap < ARENA_CHUNK_MAX)
			a->next_cap *= 2;
	}
	ptr = (char *)(c + 1) + c->used;
	c->used += need;
	return ptr;
}

static void *
arena_zero(struct arena *a, size_t n)
{
	void *ptr = arena_raw(a, n);

	memset(ptr, 0, n);
	return ptr;
}

static char *
arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *d = arena_raw(a, n + 1);

	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

/* A growing array in the arena; doubling keeps the copying linear. */
struct vec {
	void *items;
	size_t n;
	size_t cap;
};

/* Appends one zeroed element of the given size and returns it. */
static void *
vec_push(struct arena *a, struct vec *v, size_t size)
{
	if (v->n == v->cap) {
		size_t cap = v->cap == 0 ? 4 : v->cap * 2;
		void *items = arena_zero(a, cap * size);

		if (v->n > 0)
			memcpy(items, v->items, v->n * size);
		v->items = items;
		v->cap = cap;
	}
	/* Tells the compiler what the growth above guarantees. */
	assert(v->items != NULL);
	return (char *)v->items + v->n++ * size;
}

/* ---- the cursor ---- */

struct parser {
	const struct imap_input *in;
	const char *s;
	size_t len;
	size_t pos;
	struct arena *ar;
	const char *err;	/* the first error wins */
	unsigned depth;
	size_t nkeys;
	size_t next_file;	/* files[] are usually met in order */
	size_t files_used;
};

static int
fail(struct parser *p, const char *msg)
{
	if (p->err == NULL)
		p->err = msg;
	return -1;
}

static int
cur(const struct parser *p)
{
	return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1;
}

static bool
at_eol(const struct parser *p)
{
	return p->pos >= p->len || p->s[p->pos] == '\r';
}

static bool
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool
is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* RFC 9051 ATOM-CHAR: any CHAR except atom-specials. */
static bool
is_atom_char(int c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\]", c) == NULL;
}

static bool
is_astring_char(int c)
{
	return is_atom_char(c) || c == ']';
}

static bool
is_list_char(int c)
{
	return is_astring_char(c) || c == '%' || c == '*';
}

static bool
is_tag_char(int c)
{
	return is_astring_char(c) && c != '+';
}

/* FETCH item and section names: "BODY.PEEK", "HEADER.FIELDS.NOT". */
static bool
is_name_char(int c)
{
	return is_alpha(c) || is_digit(c) || c == '.';
}

static bool
is_base64_char(int c)
{
	return is_alpha(c) || is_digit(c) || c == '+' || c == '/' || c == '=';
}

static size_t
span(struct parser *p, bool (*pred)(int))
{
	size_t start = p->pos;

	while (p->pos < p->len && pred((unsigned char)p->s[p->pos]))
		p->pos++;
	return p->pos - start;
}

static int
need_sp(struct parser *p)
{
	if (cur(p) == ' ') {
		p->pos++;
		return 0;
	}
	return fail(p, at_eol(p) ? "Missing argument" : "Expected a space");
}

static int
expect(struct parser *p, int c, const char *msg)
{
	if (cur(p) != c)
		return fail(p, at_eol(p) ? "Missing argument" : msg);
	p->pos++;
	return 0;
}

/* Reads one atom; *w and *n say where it is in the input. */
static int
read_word(struct parser *p, const char **w, size_t *n)
{
	*w = p->s + p->pos;
	*n = span(p, is_atom_char);
	if (*n == 0)
		return fail(p, at_eol(p) ? "Missing argument" :
		    "Expected an atom");
	return 0;
}

static bool
word_is(const char *w, size_t n, const char *name)
{
	return strlen(name) == n && strncasecmp(w, name, n) == 0;
}

/* Consumes the atom at the cursor when it is name (any case). */
static bool
take_word(struct parser *p, const char *name)
{
	size_t start = p->pos;
	size_t n = span(p, is_atom_char);

	if (word_is(p->s + start, n, name))
		return true;
	p->pos = start;
	return false;
}

/* Digits at the cursor as a number in [min, max]. */
static int
read_number(struct parser *p, uint64_t min, uint64_t max, uint64_t *out)
{
	size_t start = p->pos;
	uint64_t v = 0;

	while (is_digit(cur(p))) {
		unsigned d = (unsigned)(p->s[p->pos] - '0');

		if (v > (max - d) / 10)
			return fail(p, "Number out of range");
		v = v * 10 + d;
		p->pos++;
	}
	if (p->pos == start)
		return fail(p, at_eol(p) ? "Missing argument" :
		    "Expected a number");
	if (v < min)
		return fail(p, "Zero is not allowed here");
	*out = v;
	return 0;
}

static int
read_u32(struct parser *p, uint64_t min, uint32_t *out)
{
	uint64_t v;

	if (read_number(p, min, UINT32_MAX, &v) < 0)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* ---- strings ---- */

static void
str_init(struct imap_string *s)
{
	*s = (struct imap_string){ .data = "", .file_ref = -1 };
}

static void
str_set(struct parser *p, struct imap_string *s, const char *d, size_t n)
{
	str_init(s);
	s->data = arena_strndup(p->ar, d, n);
	s->len = n;
}

static int
read_quoted(struct parser *p, struct imap_string *out)
{
	size_t i, n = 0, k = 0;
	char *d;

	for (i = p->pos + 1;; i++) {
		if (i >= p->len || p->s[i] == '\r' || p->s[i] == '\n')
			return fail(p, "Unterminated quoted string");
		if (p->s[i] == '"')
			break;
		if (p->s[i] == '\0')
			return fail(p, "NUL in quoted string");
		if (p->s[i] == '\\' && (++i >= p->len ||
		    (p->s[i] != '"' && p->s[i] != '\\')))
			return fail(p, "Invalid escape in quoted string");
		n++;
	}
	d = arena_raw(p->ar, n + 1);
	for (i = p->pos + 1; k < n; i++) {
		if (p->s[i] == '\\')
			i++;
		d[k++] = p->s[i];
	}
	d[n] = '\0';
	if (!imap_utf8_is_valid(d, n))
		return fail(p, "Quoted string is not valid UTF-8");
	str_init(out);
	out->data = d;
	out->len = n;
	p->pos = i + 1;
	return 0;
}

static const struct imap_file_literal *
find_file(struct parser *p, size_t offset)
{
	const struct imap_input *in = p->in;
	size_t i;

	if (p->next_file < in->nfiles &&
	    in->files[p->next_file].offset == offset)
		return &in->files[p->next_file++];
	for (i = 0; i < in->nfiles; i++)
		if (in->files[i].offset == offset)
			return &in->files[i];
	return NULL;
}

/* The octets of a literal whose announcement ended at p->pos. */
static int
literal_octets(struct parser *p, uint64_t n, bool message,
    struct imap_string *out)
{
	const struct imap_file_literal *f = find_file(p, p->pos);

	if (f != NULL) {
		if (!message)
			return fail(p, "Only APPEND message data may be "
			    "a spooled literal");
		if (f->size != n || n > SIZE_MAX)
			return fail(p, "Literal size mismatch");
		out->len = (size_t)n;
		out->file_ref = f->ref;
		p->files_used++;
		return 0;
	}
	if (n > p->len - p->pos)
		return fail(p, "Literal size mismatch");
	out->data = arena_strndup(p->ar, p->s + p->pos, (size_t)n);
	out->len = (size_t)n;
	out->has_nul = memchr(out->data, '\0', out->len) != NULL;
	if (out->has_nul && !message && !out->is_literal8)
		return fail(p, "NUL octet in literal");
	p->pos += (size_t)n;
	return 0;
}

/* "{N}", "{N+}", or (binary_ok) "~{N}", "~{N+}", then CRLF and the
 * octets. message: APPEND message data, which may be in a file. */
static int
read_literal(struct parser *p, bool binary_ok, bool message,
    struct imap_string *out)
{
	uint64_t n;

	str_init(out);
	if (cur(p) == '~') {
		if (!binary_ok)
			return fail(p, "literal8 not allowed here");
		out->is_literal8 = true;
		p->pos++;
	}
	if (expect(p, '{', "Expected a literal") < 0 ||
	    read_number(p, 0, U63_MAX, &n) < 0)
		return -1;
	if (cur(p) == '+')
		p->pos++;
	if (expect(p, '}', "Invalid literal announcement") < 0)
		return -1;
	if (p->len - p->pos < 2 || p->s[p->pos] != '\r' ||
	    p->s[p->pos + 1] != '\n')
		return fail(p, "Expected CRLF after literal announcement");
	p->pos += 2;
	return literal_octets(p, n, message, out);
}

/* string = quoted / literal */
static int
read_string(struct parser *p, struct imap_string *out)
{
	if (cur(p) == '"')
		return read_quoted(p, out);
	if (cur(p) == '{')
		return read_literal(p, false, false, out);
	return fail(p, at_eol(p) ? "Missing argument" : "Expected a string");
}

static int
read_chars_or_string(struct parser *p, bool (*pred)(int),
    struct imap_string *out)
{
	size_t start = p->pos, n;

	if (cur(p) == '"' || cur(p) == '{')
		return read_string(p, out);
	n = span(p, pred);
	if (n == 0)
		return fail(p, at_eol(p) ? "Missing argument" :
		    "Expected an atom or a string");
	str_set(p, out, p->s + start, n);
	return 0;
}

static int
read_astring(struct parser *p, struct imap_string *out)
{
	return read_chars_or_string(p, is_astring_char, out);
}

/* list-mailbox: like an astring, with the wildcards "%" and "*". */
static int
read_list_mailbox(struct parser *p, struct imap_string *out)
{
	return read_chars_or_string(p, is_list_char, out);
}

/* "NIL" or an astring (ID values; RFC 2971 says nstring, clients send
 * atoms too). */
static int
read_nil_or_astring(struct parser *p, struct imap_string *out)
{
	if (take_word(p, "NIL")) {
		str_init(out);
		out->is_nil = true;
		return 0;
	}
	return read_astring(p, out);
}

/* ---- sequence sets ---- */

#define SEQ_STAR	0x1	/* "*" allowed */
#define SEQ_SAVED	0x2	/* "$" allowed */

static int
read_seq_number(struct parser *p, unsigned flags, uint32_t *out)
{
	if (cur(p) == '*') {
		if (!(flags & SEQ_STAR))
			return fail(p, "\"*\" not allowed in this set");
		p->pos++;
		*out = UINT32_MAX;
		return 0;
	}
	/* nz-number: no zero, and no leading zero either. */
	if (cur(p) == '0')
		return fail(p, p->pos + 1 < p->len &&
		    is_digit(p->s[p->pos + 1]) ?
		    "Sequence number with a leading zero" :
		    "Sequence number 0 is not valid");
	return read_u32(p, 1, out);
}

static int
read_seqset(struct parser *p, unsigned flags, struct imap_seqset *set)
{
	struct vec v = { NULL, 0, 0 };
	struct imap_seq_range *r;

	memset(set, 0, sizeof(*set));
	if (cur(p) == '$') {
		if (!(flags & SEQ_SAVED))
			return fail(p, "\"$\" not allowed here");
		p->pos++;
		set->is_saved = true;
		return 0;
	}
	for (;;) {
		if (v.n >= IMAP_SEQ_RANGES_MAX)
			return fail(p, "Too many ranges in sequence set");
		r = vec_push(p->ar, &v, sizeof(*r));
		if (read_seq_number(p, flags, &r->first) < 0)
			return -1;
		r->last = r->first;
		if (cur(p) == ':') {
			p->pos++;
			if (read_seq_number(p, flags, &r->last) < 0)
				return -1;
		}
		if (cur(p) != ',')
			break;
		p->pos++;
	}
	set->ranges = v.items;
	set->count = v.n;
	return 0;
}

/* ---- flags ---- */

/* A word and the bit it sets. */
struct name_bit {
	const char *name;
	unsigned bit;
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* The index of w in defs[0..n), or -1. */
static int
lookup_bit(const struct name_bit *defs, size_t n, const char *w, size_t wn)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (word_is(w, wn, defs[i].name))
			return (int)i;
	return -1;
}

static const struct name_bit system_flags[] = {
	{ "Seen", IMAP_F_SEEN },
	{ "Answered", IMAP_F_ANSWERED },
	{ "Flagged", IMAP_F_FLAGGED },
	{ "Deleted", IMAP_F_DELETED },
	{ "Draft", IMAP_F_DRAFT },
	{ "Recent", IMAP_F_RECENT },
};

/* One flag for STORE or APPEND: a settable system flag or a keyword. */
static int
read_flag(struct parser *p, struct imap_flags *fl, struct vec *kw)
{
	const char *w;
	size_t n;
	int i;

	if (cur(p) == '\\') {
		p->pos++;
		if (cur(p) == '*')
			return fail(p, "\\* is not a flag");
		if (read_word(p, &w, &n) < 0)
			return -1;
		i = lookup_bit(system_flags, NELEM(system_flags), w, n);
		if (i < 0)
			return fail(p, "Unknown system flag");
		if (system_flags[i].bit == IMAP_F_RECENT)
			return fail(p, "\\Recent cannot be set");
		fl->mask |= system_flags[i].bit;
		return 0;
	}
	if (read_word(p, &w, &n) < 0)
		return -1;
	if (kw->n >= IMAP_LIST_MAX)
		return fail(p, "Too many flags");
	*(const char **)vec_push(p->ar, kw, sizeof(char *)) =
	    arena_strndup(p->ar, w, n);
	return 0;
}

/* flag-list, or (bare) flag *(SP flag) for STORE. */
static int
read_flags(struct parser *p, bool bare, struct imap_flags *fl)
{
	struct vec kw = { NULL, 0, 0 };

	memset(fl, 0, sizeof(*fl));
	if (!bare && expect(p, '(', "Expected a flag list") < 0)
		return -1;
	if (bare || cur(p) != ')') {
		for (;;) {
			if (read_flag(p, fl, &kw) < 0)
				return -1;
			if (cur(p) != ' ')
				break;
			p->pos++;
		}
	}
	if (!bare && expect(p, ')', "Expected ) after flags") < 0)
		return -1;
	fl->keywords = kw.items;
	fl->nkeywords = kw.n;
	return 0;
}

/* ---- dates ---- */

static const char months[12][4] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
};

static bool
is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
days_in_month(int y, int m)
{
	static const int days[12] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
	};

	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* A cursor over a date: *i advances over what was read. */
struct scan {
	const char *s;
	size_t len;
	size_t i;
};

static bool
scan_digits(struct scan *sc, size_t min, size_t max, int *v)
{
	size_t n = 0;

	*v = 0;
	while (n < max && sc->i < sc->len && is_digit(sc->s[sc->i])) {
		*v = *v * 10 + (sc->s[sc->i++] - '0');
		n++;
	}
	return n >= min;
}

static bool
scan_char(struct scan *sc, char c)
{
	if (sc->i >= sc->len || sc->s[sc->i] != c)
		return false;
	sc->i++;
	return true;
}

static bool
scan_month(struct scan *sc, int *m)
{
	int k;

	if (sc->len - sc->i < 3)
		return false;
	for (k = 0; k < 12; k++)
		if (strncasecmp(sc->s + sc->i, months[k], 3) == 0) {
			*m = k + 1;
			sc->i += 3;
			return true;
		}
	return false;
}

/* date-text: day "-" month "-" year, day 1 or 2 digits (or, for
 * date-time, a space and one digit). */
static bool
scan_date(struct scan *sc, bool fixed_day, int *y, int *m, int *d)
{
	bool ok;

	if (fixed_day && scan_char(sc, ' '))
		ok = scan_digits(sc, 1, 1, d);
	else
		ok = scan_digits(sc, 1, 2, d);
	return ok && scan_char(sc, '-') && scan_month(sc, m) &&
	    scan_char(sc, '-') && scan_digits(sc, 4, 4, y) &&
	    !(sc->i < sc->len && is_digit(sc->s[sc->i])) &&
	    *d >= 1 && *d <= days_in_month(*y, *m);
}

/* SEARCH date: date-text or a quoted date-text. */
static int
read_date(struct parser *p, struct imap_search_key *k)
{
	struct scan sc = { p->s, p->len, p->pos };
	bool quoted = scan_char(&sc, '"');

	if (!scan_date(&sc, false, &k->year, &k->month, &k->day) ||
	    (quoted && !scan_char(&sc, '"')))
		return fail(p, at_eol(p) ? "Missing argument" :
		    "Invalid date");
	p->pos = sc.i;
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int
imap_parse_date_time(const char *s, size_t len, time_t *out)
{
	struct scan sc = { s, len, 0 };
	int y, mo, d, h, mi, sec, zh, zm, sign;
	int64_t t;

	if (!scan_date(&sc, true, &y, &mo, &d) || !scan_char(&sc, ' ') ||
	    !scan_digits(&sc, 2, 2, &h) || !scan_char(&sc, ':') ||
	    !scan_digits(&sc, 2, 2, &mi) || !scan_char(&sc, ':') ||
	    !scan_digits(&sc, 2, 2, &sec) || !scan_char(&sc, ' '))
		return -1;
	if (scan_char(&sc, '+'))
		sign = 1;
	else if (scan_char(&sc, '-'))
		sign = -1;
	else
		return -1;
	if (!scan_digits(&sc, 2, 2, &zh) || !scan_digits(&sc, 2, 2, &zm) ||
	    sc.i != len)
		return -1;
	if (h > 23 || mi > 59 || sec > 60 || zm > 59)
		return -1;
	t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	t -= sign * (zh * 3600 + zm * 60);
	*out = (time_t)t;
	return 0;
}

void
imap_format_date_time(time_t t, char out[32])
{
	struct tm tm;
	int n = -1;

	if (gmtime_r(&t, &tm) != NULL && tm.tm_year >= -1900 + 1 &&
	    tm.tm_year <= 9999 - 1900)
		n = snprintf(out, 32, "%02d-%s-%04d %02d:%02d:%02d +0000",
		    tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
		    tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (n < 0 || n >= 32)
		snprintf(out, 32, "01-Jan-1970 00:00:00 +0000");
}

/* ---- FETCH items ---- */

enum section_use {
	SEC_NONE,
	SEC_OPTIONAL,		/* BODY or BODY[...] */
	SEC_BODY,		/* BODY.PEEK[...] */
	SEC_BINARY,		/* BINARY[.PEEK][part] */
	SEC_BINARY_SIZE		/* BINARY.SIZE[part], no partial */
};

static const struct fetch_def {
	const char *name;
	enum imap_fetch_item item;
	bool peek;
	enum section_use section;
} fetch_defs[] = {
	{ "FLAGS", IMAP_FETCH_FLAGS, false, SEC_NONE },
	{ "INTERNALDATE", IMAP_FETCH_INTERNALDATE, false, SEC_NONE },
	{ "RFC822.SIZE", IMAP_FETCH_RFC822_SIZE, false, SEC_NONE },
	{ "ENVELOPE", IMAP_FETCH_ENVELOPE, false, SEC_NONE },
	{ "BODYSTRUCTURE", IMAP_FETCH_BODYSTRUCTURE, false, SEC_NONE },
	{ "BODY", IMAP_FETCH_BODY, false, SEC_OPTIONAL },
	{ "UID", IMAP_FETCH_UID, false, SEC_NONE },
	{ "MODSEQ", IMAP_FETCH_MODSEQ, false, SEC_NONE },
	{ "SAVEDATE", IMAP_FETCH_SAVEDATE, false, SEC_NONE },
	{ "RFC822", IMAP_FETCH_RFC822, false, SEC_NONE },
	{ "RFC822.HEADER", IMAP_FETCH_RFC822_HEADER, true, SEC_NONE },
	{ "RFC822.TEXT", IMAP_FETCH_RFC822_TEXT, false, SEC_NONE },
	{ "BODY.PEEK", IMAP_FETCH_BODY_SECTION, true, SEC_BODY },
	{ "BINARY", IMAP_FETCH_BINARY_SECTION, false, SEC_BINARY },
	{ "BINARY.PEEK", IMAP_FETCH_BINARY_SECTION, true, SEC_BINARY },
	{ "BINARY.SIZE", IMAP_FETCH_BINARY_SIZE, false, SEC_BINARY_SIZE },
};

#define NFETCH_DEFS NELEM(fetch_defs)

/* header-fld-name: any astring, but the name is echoed in the response,
 * so only what RFC 5322 allows in a field name (printable, no colon). */
static int
read_field_name(struct parser *p, struct vec *fields)
{
	struct imap_string s;
	size_t i;

	if (read_astring(p, &s) < 0)
		return -1;
	if (s.len == 0)
		return fail(p, "Empty header field name");
	for (i = 0; i < s.len; i++)
		if (s.data[i] <= 0x20 || s.data[i] >= 0x7f ||
		    s.data[i] == ':')
			return fail(p, "Invalid header field name");
	if (fields->n >= IMAP_LIST_MAX)
		return fail(p, "Too many header fields");
	*(const char **)vec_push(p->ar, fields, sizeof(char *)) = s.data;
	return 0;
}

/* SP "(" header-fld-name *(SP header-fld-name) ")" */
static int
read_header_list(struct parser *p, struct imap_section *sec)
{
	struct vec fields = { NULL, 0, 0 };

	if (need_sp(p) < 0 ||
	    expect(p, '(', "Expected a header field list") < 0)
		return -1;
	for (;;) {
		if (read_field_name(p, &fields) < 0)
			return -1;
		if (cur(p) != ' ')
			break;
		p->pos++;
	}
	if (expect(p, ')', "Expected ) after header fields") < 0)
		return -1;
	sec->fields = fields.items;
	sec->nfields = fields.n;
	return 0;
}

/* section-part: nz-number *("." nz-number). Returns 1 when a "." was
 * followed by a name rather than a number. */
static int
read_section_part(struct parser *p, struct imap_section *sec)
{
	for (;;) {
		if (sec->nparts >= IMAP_PART_DEPTH_MAX)
			return fail(p, "Section part path too deep");
		if (cur(p) == '0')
			return fail(p, "Section part 0 is not valid");
		if (read_u32(p, 1, &sec->part[sec->nparts++]) < 0)
			return -1;
		if (cur(p) != '.')
			return 0;
		p->pos++;
		if (!is_digit(cur(p)))
			return 1;
	}
}

/* The text after the part path: HEADER, HEADER.FIELDS[.NOT] (list),
 * TEXT, or (after a part number) MIME. */
static int
read_section_text(struct parser *p, struct imap_section *sec)
{
	const char *w = p->s + p->pos;
	size_t n = span(p, is_name_char);

	if (word_is(w, n, "HEADER"))
		sec->text = IMAP_SECTION_HEADER;
	else if (word_is(w, n, "TEXT"))
		sec->text = IMAP_SECTION_TEXT;
	else if (word_is(w, n, "MIME") && sec->nparts > 0)
		sec->text = IMAP_SECTION_MIME;
	else if (word_is(w, n, "HEADER.FIELDS"))
		sec->text = IMAP_SECTION_HEADER_FIELDS;
	else if (word_is(w, n, "HEADER.FIELDS.NOT"))
		sec->text = IMAP_SECTION_HEADER_FIELDS_NOT;
	else
		return fail(p, "Invalid section");
	if (sec->text == IMAP_SECTION_HEADER_FIELDS ||
	    sec->text == IMAP_SECTION_HEADER_FIELDS_NOT)
		return read_header_list(p, sec);
	return 0;
}

/* "[" section-spec "]", or for BINARY "[" [section-part] "]". */
static int
read_section(struct parser *p, bool binary, struct imap_section *sec)
{
	int r = 0;

	if (expect(p, '[', "Expected [") < 0)
		return -1;
	sec->text = IMAP_SECTION_ALL;
	if (is_digit(cur(p)) && (r = read_section_part(p, sec)) < 0)
		return -1;
	if (binary && r == 1)
		return fail(p, "Invalid BINARY section");
	if (!binary && (r == 1 || (sec->nparts == 0 && cur(p) != ']')) &&
	    read_section_text(p, sec) < 0)
		return -1;
	return expect(p, ']', "Expected ] after section");
}

/* partial = "<" number "." nz-number ">" */
static int
read_partial(struct parser *p, struct imap_fetch_att *att)
{
	p->pos++;
	if (read_u32(p, 0, &att->offset) < 0 ||
	    expect(p, '.', "Invalid partial range") < 0 ||
	    read_u32(p, 1, &att->length) < 0 ||
	    expect(p, '>', "Invalid partial range") < 0)
		return -1;
	att->partial = true;
	return 0;
}

static int
unknown_fetch_item(struct parser *p, const char *w, size_t n)
{
	/* RFC 8474 items: named in the enum, but not served. */
	if (word_is(w, n, "EMAILID") || word_is(w, n, "THREADID"))
		return fail(p, "OBJECTID is not supported");
	if (n == 0 && at_eol(p))
		return fail(p, "Missing argument");
	return fail(p, "Unknown FETCH item");
}

static int
read_fetch_att(struct parser *p, struct imap_fetch_att *att)
{
	const char *w = p->s + p->pos;
	size_t n = span(p, is_name_char), i;
	enum section_use use;

	for (i = 0; i < NFETCH_DEFS; i++)
		if (word_is(w, n, fetch_defs[i].name))
			break;
	if (i == NFETCH_DEFS)
		return unknown_fetch_item(p, w, n);
	att->item = fetch_defs[i].item;
	att->peek = fetch_defs[i].peek;
	use = fetch_defs[i].section;
	if (use == SEC_OPTIONAL) {
		if (cur(p) != '[')
			return 0;
		att->item = IMAP_FETCH_BODY_SECTION;
		use = SEC_BODY;
	}
	if (use == SEC_NONE)
		return 0;
	if (read_section(p, use != SEC_BODY, &att->section) < 0)
		return -1;
	if (use != SEC_BINARY_SIZE && cur(p) == '<')
		return read_partial(p, att);
	return 0;
}

static void
push_att(struct parser *p, struct vec *atts, enum imap_fetch_item item)
{
	struct imap_fetch_att *att = vec_push(p->ar, atts, sizeof(*att));

	att->item = item;
}

/* ALL, FAST, FULL (RFC 9051 6.4.5); false when the word is none of them. */
static bool
take_fetch_macro(struct parser *p, struct vec *atts)
{
	bool all = false, full = false;

	if (!take_word(p, "FAST") && !(all = take_word(p, "ALL")) &&
	    !(full = take_word(p, "FULL")))
		return false;
	push_att(p, atts, IMAP_FETCH_FLAGS);
	push_att(p, atts, IMAP_FETCH_INTERNALDATE);
	push_att(p, atts, IMAP_FETCH_RFC822_SIZE);
	if (all || full)
		push_att(p, atts, IMAP_FETCH_ENVELOPE);
	if (full)
		push_att(p, atts, IMAP_FETCH_BODY);
	return true;
}

static int
read_fetch_atts(struct parser *p, struct imap_command *cmd)
{
	struct vec atts = { NULL, 0, 0 };
	bool list = cur(p) == '(';

	if (list)
		p->pos++;
	if (list || !take_fetch_macro(p, &atts)) {
		for (;;) {
			if (atts.n >= IMAP_LIST_MAX)
				return fail(p, "Too many FETCH items");
			if (read_fetch_att(p, vec_push(p->ar, &atts,
			    sizeof(struct imap_fetch_att))) < 0)
				return -1;
			if (!list || cur(p) != ' ')
				break;
			p->pos++;
		}
	}
	if (list && expect(p, ')', "Expected ) after FETCH items") < 0)
		return -1;
	cmd->atts = atts.items;
	cmd->natts = atts.n;
	return 0;
}

/* ---- the FETCH response name of an item ---- */

/* Writes like snprintf: truncates, but counts everything. */
struct out {
	char *s;
	size_t size;
	size_t len;
};

static void
out_put(struct out *o, const char *s, size_t n)
{
	size_t room = o->len + 1 < o->size ? o->size - 1 - o->len : 0;

	if (room > 0)
		memcpy(o->s + o->len, s, n < room ? n : room);
	o->len += n;
}

static void
out_str(struct out *o, const char *s)
{
	out_put(o, s, strlen(s));
}

static void
out_num(struct out *o, uint32_t v)
{
	char b[16];
	int n = snprintf(b, sizeof(b), "%" PRIu32, v);

	if (n > 0 && (size_t)n < sizeof(b))
		out_put(o, b, (size_t)n);
}

/* A field name as an atom when it is one, else as a quoted string. */
static void
out_field(struct out *o, const char *f)
{
	const char *c;

	for (c = f; *c != '\0' && is_astring_char((unsigned char)*c); c++)
		;
	if (*c == '\0' && c != f) {
		out_str(o, f);
		return;
	}
	out_put(o, "\"", 1);
	for (c = f; *c != '\0'; c++) {
		if (*c == '"' || *c == '\\')
			out_put(o, "\\", 1);
		out_put(o, c, 1);
	}
	out_put(o, "\"", 1);
}

static void
out_section(struct out *o, const struct imap_section *sec)
{
	static const char *const texts[] = {
		[IMAP_SECTION_ALL] = "",
		[IMAP_SECTION_HEADER] = "HEADER",
		[IMAP_SECTION_HEADER_FIELDS] = "HEADER.FIELDS",
		[IMAP_SECTION_HEADER_FIELDS_NOT] = "HEADER.FIELDS.NOT",
		[IMAP_SECTION_TEXT] = "TEXT",
		[IMAP_SECTION_MIME] = "MIME",
	};
	size_t i, nparts = sec->nparts;

	if (nparts > IMAP_PART_DEPTH_MAX)
		nparts = IMAP_PART_DEPTH_MAX;
	for (i = 0; i < nparts; i++) {
		if (i > 0)
			out_put(o, ".", 1);
		out_num(o, sec->part[i]);
	}
	if (sec->text == IMAP_SECTION_ALL || sec->text > IMAP_SECTION_MIME)
		return;
	if (nparts > 0)
		out_put(o, ".", 1);
	out_str(o, texts[sec->text]);
	if (sec->text != IMAP_SECTION_HEADER_FIELDS &&
	    sec->text != IMAP_SECTION_HEADER_FIELDS_NOT)
		return;
	out_put(o, " (", 2);
	for (i = 0; i < sec->nfields; i++) {
		if (i > 0)
			out_put(o, " ", 1);
		out_field(o, sec->fields[i]);
	}
	out_put(o, ")", 1);
}

size_t
imap_fetch_att_name(const struct imap_fetch_att *att, char *out, size_t size)
{
	static const char *const names[] = {
		[IMAP_FETCH_FLAGS] = "FLAGS",
		[IMAP_FETCH_INTERNALDATE] = "INTERNALDATE",
		[IMAP_FETCH_RFC822_SIZE] = "RFC822.SIZE",
		[IMAP_FETCH_ENVELOPE] = "ENVELOPE",
		[IMAP_FETCH_BODYSTRUCTURE] = "BODYSTRUCTURE",
		[IMAP_FETCH_BODY] = "BODY",
		[IMAP_FETCH_UID] = "UID",
		[IMAP_FETCH_MODSEQ] = "MODSEQ",
		[IMAP_FETCH_SAVEDATE] = "SAVEDATE",
		[IMAP_FETCH_EMAILID] = "EMAILID",
		[IMAP_FETCH_RFC822] = "RFC822",
		[IMAP_FETCH_RFC822_HEADER] = "RFC822.HEADER",
		[IMAP_FETCH_RFC822_TEXT] = "RFC822.TEXT",
		[IMAP_FETCH_BODY_SECTION] = "BODY",
		[IMAP_FETCH_BINARY_SECTION] = "BINARY",
		[IMAP_FETCH_BINARY_SIZE] = "BINARY.SIZE",
	};
	struct out o = { out, size, 0 };

	if ((unsigned)att->item < sizeof(names) / sizeof(names[0]))
		out_str(&o, names[att->item]);
	if (att->item == IMAP_FETCH_BODY_SECTION ||
	    att->item == IMAP_FETCH_BINARY_SECTION ||
	    att->item == IMAP_FETCH_BINARY_SIZE) {
		out_put(&o, "[", 1);
		out_section(&o, &att->section);
		out_put(&o, "]", 1);
		/* RFC 9051 7.5.2: only the origin octet is echoed. */
		if (att->partial && att->item != IMAP_FETCH_BINARY_SIZE) {
			out_put(&o, "<", 1);
			out_num(&o, att->offset);
			out_put(&o, ">", 1);
		}
	}
	if (size > 0)
		out[o.len < size ? o.len : size - 1] = '\0';
	return o.len;
}

/* ---- SEARCH ---- */

enum key_arg {
	KA_NONE,
	KA_ASTRING,		/* BODY, TEXT */
	KA_FIELD,		/* FROM, TO, ...: HEADER with a fixed name */
	KA_HEADER,		/* HEADER field value */
	KA_DATE,
	KA_NUMBER,		/* LARGER, SMALLER: number64 */
	KA_NZ32,		/* OLDER, YOUNGER: nz-number */
	KA_KEYWORD,
	KA_UID,
	KA_NOT,
	KA_OR,
	KA_MODSEQ
};

static const struct key_def {
	const char *name;
	enum imap_search_kind kind;
	enum key_arg arg;
	unsigned flag;
	const char *field;
} key_defs[] = {
	{ "ALL", IMAP_SK_ALL, KA_NONE, 0, NULL },
	{ "ANSWERED", IMAP_SK_FLAG, KA_NONE, IMAP_F_ANSWERED, NULL },
	{ "BCC", IMAP_SK_HEADER, KA_FIELD, 0, "Bcc" },
	{ "BEFORE", IMAP_SK_BEFORE, KA_DATE, 0, NULL },
	{ "BODY", IMAP_SK_BODY, KA_ASTRING, 0, NULL },
	{ "CC", IMAP_SK_HEADER, KA_FIELD, 0, "Cc" },
	{ "DELETED", IMAP_SK_FLAG, KA_NONE, IMAP_F_DELETED, NULL },
	{ "DRAFT", IMAP_SK_FLAG, KA_NONE, IMAP_F_DRAFT, NULL },
	{ "FLAGGED", IMAP_SK_FLAG, KA_NONE, IMAP_F_FLAGGED, NULL },
	{ "FROM", IMAP_SK_HEADER, KA_FIELD, 0, "From" },
	{ "HEADER", IMAP_SK_HEADER, KA_HEADER, 0, NULL },
	{ "KEYWORD", IMAP_SK_KEYWORD, KA_KEYWORD, 0, NULL },
	{ "LARGER", IMAP_SK_LARGER, KA_NUMBER, 0, NULL },
	{ "MODSEQ", IMAP_SK_MODSEQ, KA_MODSEQ, 0, NULL },
	{ "NEW", IMAP_SK_NEW, KA_NONE, 0, NULL },
	{ "NOT", IMAP_SK_NOT, KA_NOT, 0, NULL },
	{ "OLD", IMAP_SK_OLD, KA_NONE, 0, NULL },
	{ "OLDER", IMAP_SK_OLDER, KA_NZ32, 0, NULL },
	{ "ON", IMAP_SK_ON, KA_DATE, 0, NULL },
	{ "OR", IMAP_SK_OR, KA_OR, 0, NULL },
	{ "RECENT", IMAP_SK_FLAG, KA_NONE, IMAP_F_RECENT, NULL },
	{ "SAVEDATESUPPORTED", IMAP_SK_SAVEDATESUPPORTED, KA_NONE, 0, NULL },
	{ "SAVEDBEFORE", IMAP_SK_SAVEDBEFORE, KA_DATE, 0, NULL },
	{ "SAVEDON", IMAP_SK_SAVEDON, KA_DATE, 0, NULL },
	{ "SAVEDSINCE", IMAP_SK_SAVEDSINCE, KA_DATE, 0, NULL },
	{ "SEEN", IMAP_SK_FLAG, KA_NONE, IMAP_F_SEEN, NULL },
	{ "SENTBEFORE", IMAP_SK_SENTBEFORE, KA_DATE, 0, NULL },
	{ "SENTON", IMAP_SK_SENTON, KA_DATE, 0, NULL },
	{ "SENTSINCE", IMAP_SK_SENTSINCE, KA_DATE, 0, NULL },
	{ "SINCE", IMAP_SK_SINCE, KA_DATE, 0, NULL },
	{ "SMALLER", IMAP_SK_SMALLER, KA_NUMBER, 0, NULL },
	{ "SUBJECT", IMAP_SK_HEADER, KA_FIELD, 0, "Subject" },
	{ "TEXT", IMAP_SK_TEXT, KA_ASTRING, 0, NULL },
	{ "TO", IMAP_SK_HEADER, KA_FIELD, 0, "To" },
	{ "UID", IMAP_SK_UID, KA_UID, 0, NULL },
	{ "UNANSWERED", IMAP_SK_NOFLAG, KA_NONE, IMAP_F_ANSWERED, NULL },
	{ "UNDELETED", IMAP_SK_NOFLAG, KA_NONE, IMAP_F_DELETED, NULL },
	{ "UNDRAFT", IMAP_SK_NOFLAG, KA_NONE, IMAP_F_DRAFT, NULL },
	{ "UNFLAGGED", IMAP_SK_NOFLAG, KA_NONE, IMAP_F_FLAGGED, NULL },
	{ "UNKEYWORD", IMAP_SK_UNKEYWORD, KA_KEYWORD, 0, NULL },
	{ "UNSEEN", IMAP_SK_NOFLAG, KA_NONE, IMAP_F_SEEN, NULL },
	{ "YOUNGER", IMAP_SK_YOUNGER, KA_NZ32, 0, NULL },
};

#define NKEY_DEFS NELEM(key_defs)

static int search_key(struct parser *p, struct imap_search_key *k);

static int
depth_enter(struct parser *p)
{
	if (++p->depth > IMAP_DEPTH_MAX)
		return fail(p, "Search program too deeply nested");
	return 0;
}

/* n sub-keys of a NOT or OR, separated by spaces. */
static int
search_children(struct parser *p, struct imap_search_key *k, size_t n)
{
	size_t i;

	if (depth_enter(p) < 0)
		return -1;
	k->children = arena_zero(p->ar, n * sizeof(*k->children));
	k->nchildren = n;
	for (i = 0; i < n; i++)
		if (need_sp(p) < 0 || search_key(p, &k->children[i]) < 0)
			return -1;
	p->depth--;
	return 0;
}

/* RFC 7162: MODSEQ [SP entry-name SP entry-type-req] SP modseq. */
static int
search_modseq(struct parser *p, struct imap_search_key *k)
{
	struct imap_string entry;
	const char *w;
	size_t n;

	if (need_sp(p) < 0)
		return -1;
	if (cur(p) == '"') {
		if (read_quoted(p, &entry) < 0 || need_sp(p) < 0 ||
		    read_word(p, &w, &n) < 0 || need_sp(p) < 0)
			return -1;
		if (entry.len < 7 || strncasecmp(entry.data, "/flags/", 7))
			return fail(p, "Invalid MODSEQ entry name");
		if (!word_is(w, n, "priv") && !word_is(w, n, "shared") &&
		    !word_is(w, n, "all"))
			return fail(p, "Invalid MODSEQ entry type");
	}
	return read_number(p, 0, U63_MAX, &k->number);
}

static int
search_arg(struct parser *p, const struct key_def *d,
    struct imap_search_key *k)
{
	const char *w;
	size_t n;

	if (d->arg == KA_NONE)
		return 0;
	if (d->arg == KA_NOT || d->arg == KA_OR)
		return search_children(p, k, d->arg == KA_OR ? 2 : 1);
	if (d->arg == KA_MODSEQ)
		return search_modseq(p, k);
	if (need_sp(p) < 0)
		return -1;
	switch (d->arg) {
	case KA_FIELD:
		str_set(p, &k->field, d->field, strlen(d->field));
		/* FALLTHROUGH */
	case KA_ASTRING:
		return read_astring(p, &k->str);
	case KA_HEADER:
		if (read_astring(p, &k->field) < 0 || need_sp(p) < 0)
			return -1;
		return read_astring(p, &k->str);
	case KA_DATE:
		return read_date(p, k);
	case KA_NUMBER:
		return read_number(p, 0, U63_MAX, &k->number);
	case KA_NZ32:
		return read_number(p, 1, UINT32_MAX, &k->number);
	case KA_KEYWORD:
		if (read_word(p, &w, &n) < 0)
			return -1;
		str_set(p, &k->str, w, n);
		return 0;
	case KA_UID:
		return read_seqset(p, SEQ_STAR | SEQ_SAVED, &k->set);
	default:
		return fail(p, "Invalid search key");
	}
}

/* search-key *(SP search-key), up to ")" (group) or the end of line. */
static int
search_list(struct parser *p, struct imap_search_key *k, bool group)
{
	struct vec v = { NULL, 0, 0 };

	k->kind = IMAP_SK_AND;
	for (;;) {
		if (search_key(p, vec_push(p->ar, &v, sizeof(*k))) < 0)
			return -1;
		if (cur(p) != ' ')
			break;
		p->pos++;
	}
	k->children = v.items;
	k->nchildren = v.n;
	if (group)
		return expect(p, ')', "Expected ) in search program");
	return 0;
}

static int
search_key(struct parser *p, struct imap_search_key *k)
{
	const char *w;
	size_t n, i;

	memset(k, 0, sizeof(*k));
	str_init(&k->str);
	str_init(&k->field);
	if (++p->nkeys > IMAP_SEARCH_KEYS_MAX)
		return fail(p, "Too many search keys");
	if (cur(p) == '(') {
		p->pos++;
		if (depth_enter(p) < 0 || search_list(p, k, true) < 0)
			return -1;
		p->depth--;
		return 0;
	}
	if (is_digit(cur(p)) || cur(p) == '*' || cur(p) == '$') {
		k->kind = IMAP_SK_SEQSET;
		return read_seqset(p, SEQ_STAR | SEQ_SAVED, &k->set);
	}
	if (read_word(p, &w, &n) < 0)
		return -1;
	for (i = 0; i < NKEY_DEFS; i++)
		if (word_is(w, n, key_defs[i].name))
			break;
	if (i == NKEY_DEFS)
		return fail(p, "Unknown search key");
	k->kind = key_defs[i].kind;
	k->flag = key_defs[i].flag;
	return search_arg(p, &key_defs[i], k);
}

/* RETURN "(" [MIN / MAX / ALL / COUNT / SAVE ...] ")" (RFC 4731,
 * RFC 5182); an empty list means ALL. */
static int
search_return(struct parser *p, struct imap_command *cmd)
{
	static const struct name_bit opts[] = {
		{ "MIN", IMAP_SEARCH_RET_MIN },
		{ "MAX", IMAP_SEARCH_RET_MAX },
		{ "ALL", IMAP_SEARCH_RET_ALL },
		{ "COUNT", IMAP_SEARCH_RET_COUNT },
		{ "SAVE", IMAP_SEARCH_RET_SAVE },
	};
	const char *w;
	size_t n;
	int i;

	if (need_sp(p) < 0 || expect(p, '(', "Expected ( after RETURN") < 0)
		return -1;
	cmd->esearch = true;
	while (cur(p) != ')') {
		if (cmd->search_return != 0 && need_sp(p) < 0)
			return -1;
		if (read_word(p, &w, &n) < 0)
			return -1;
		if ((i = lookup_bit(opts, NELEM(opts), w, n)) < 0)
			return fail(p, "Unknown SEARCH RETURN option");
		cmd->search_return |= opts[i].bit;
	}
	p->pos++;
	if (cmd->search_return == 0)
		cmd->search_return = IMAP_SEARCH_RET_ALL;
	return need_sp(p);
}

static int
parse_search(struct parser *p, struct imap_command *cmd)
{
	const char *w;
	size_t n;

	if (need_sp(p) < 0)
		return -1;
	if (take_word(p, "RETURN") && search_return(p, cmd) < 0)
		return -1;
	if (take_word(p, "CHARSET")) {
		if (need_sp(p) < 0)
			return -1;
		if (cur(p) == '"') {
			if (read_quoted(p, &cmd->charset) < 0)
				return -1;
		} else {
			if (read_word(p, &w, &n) < 0)
				return -1;
			str_set(p, &cmd->charset, w, n);
		}
		if (need_sp(p) < 0)
			return -1;
	}
	cmd->search = arena_zero(p->ar, sizeof(*cmd->search));
	str_init(&cmd->search->str);
	str_init(&cmd->search->field);
	return search_list(p, cmd->search, false);
}

/* ---- command arguments ---- */

static int
parse_mailbox_only(struct parser *p, struct imap_command *cmd)
{
	return need_sp(p) < 0 ? -1 : read_astring(p, &cmd->mailbox);
}

static int
parse_rename(struct parser *p, struct imap_command *cmd)
{
	if (parse_mailbox_only(p, cmd) < 0 || need_sp(p) < 0)
		return -1;
	return read_astring(p, &cmd->mailbox2);
}

static int
parse_login(struct parser *p, struct imap_command *cmd)
{
	if (need_sp(p) < 0 || read_astring(p, &cmd->user) < 0 ||
	    need_sp(p) < 0)
		return -1;
	return read_astring(p, &cmd->password);
}

/* base64, or "=" alone for an empty response (RFC 4959). */
static bool
is_initial_response(const char *w, size_t n)
{
	size_t i = 0;

	if (n == 1 && w[0] == '=')
		return true;
	while (i < n && w[i] != '=')
		i++;
	if (i == 0 || n - i > 2)
		return false;
	for (; i < n; i++)
		if (w[i] != '=')
			return false;
	return true;
}

/* auth-type [SP initial-response] (RFC 4959 SASL-IR). */
static int
parse_authenticate(struct parser *p, struct imap_command *cmd)
{
	const char *w;
	size_t n;

	if (need_sp(p) < 0 || read_word(p, &w, &n) < 0)
		return -1;
	str_set(p, &cmd->mech, w, n);
	if (cur(p) != ' ')
		return 0;
	p->pos++;
	w = p->s + p->pos;
	n = span(p, is_base64_char);
	if (!is_initial_response(w, n))
		return fail(p, "Invalid initial response");
	str_set(p, &cmd->initial, w, n);
	return 0;
}

static int
parse_enable(struct parser *p, struct imap_command *cmd)
{
	struct vec caps = { NULL, 0, 0 };
	const char *w;
	size_t n;

	do {
		if (need_sp(p) < 0 || read_word(p, &w, &n) < 0)
			return -1;
		if (caps.n >= IMAP_LIST_MAX)
			return fail(p, "Too many capabilities");
		*(const char **)vec_push(p->ar, &caps, sizeof(char *)) =
		    arena_strndup(p->ar, w, n);
	} while (cur(p) == ' ');
	cmd->caps = caps.items;
	cmd->ncaps = caps.n;
	return 0;
}

/* ID NIL / ID "(" [field SP value *(SP field SP value)] ")" */
static int
parse_id(struct parser *p, struct imap_command *cmd)
{
	struct vec fields = { NULL, 0, 0 }, values = { NULL, 0, 0 };
	size_t sz = sizeof(struct imap_string);

	if (need_sp(p) < 0)
		return -1;
	if (take_word(p, "NIL"))
		return 0;
	if (expect(p, '(', "Expected ( or NIL") < 0)
		return -1;
	while (cur(p) != ')') {
		if (fields.n > 0 && need_sp(p) < 0)
			return -1;
		if (fields.n >= IMAP_LIST_MAX)
			return fail(p, "Too many ID fields");
		if (read_astring(p, vec_push(p->ar, &fields, sz)) < 0 ||
		    need_sp(p) < 0 ||
		    read_nil_or_astring(p, vec_push(p->ar, &values, sz)) < 0)
			return -1;
	}
	p->pos++;
	cmd->id_fields = fields.items;
	cmd->id_values = values.items;
	cmd->nid = fields.n;
	return 0;
}

/* seq-match-data = "(" known-sequence-set SP known-uid-set ")" */
static int
read_seq_match(struct parser *p, struct imap_command *cmd)
{
	p->pos++;
	if (read_seqset(p, 0, &cmd->qr_seq_match) < 0 || need_sp(p) < 0 ||
	    read_seqset(p, 0, &cmd->qr_uid_match) < 0)
		return -1;
	return expect(p, ')', "Expected ) after sequence match data");
}

/* QRESYNC SP "(" uidvalidity SP modseq [SP known-uids]
 * [SP seq-match-data] ")" (RFC 7162 3.2.5). */
static int
read_qresync(struct parser *p, struct imap_command *cmd)
{
	if (cmd->qresync)
		return fail(p, "QRESYNC given twice");
	cmd->qresync = true;
	if (need_sp(p) < 0 || expect(p, '(', "Expected ( after QRESYNC") < 0 ||
	    read_u32(p, 1, &cmd->qr_uidvalidity) < 0 || need_sp(p) < 0 ||
	    read_number(p, 1, U63_MAX, &cmd->qr_modseq) < 0)
		return -1;
	if (cur(p) == ' ') {
		p->pos++;
		if (cur(p) != '(') {
			if (read_seqset(p, 0, &cmd->qr_known_uids) < 0)
				return -1;
			if (cur(p) == ' ') {
				p->pos++;
				if (cur(p) != '(')
					return fail(p, "Expected (");
			}
		}
		if (cur(p) == '(' && read_seq_match(p, cmd) < 0)
			return -1;
	}
	return expect(p, ')', "Expected ) after QRESYNC parameters");
}

static int
parse_select(struct parser *p, struct imap_command *cmd)
{
	if (parse_mailbox_only(p, cmd) < 0)
		return -1;
	if (cur(p) != ' ')
		return 0;
	p->pos++;
	if (expect(p, '(', "Expected ( before SELECT parameters") < 0)
		return -1;
	for (;;) {
		if (take_word(p, "CONDSTORE"))
			cmd->condstore = true;
		else if (!take_word(p, "QRESYNC"))
			return fail(p, "Unknown SELECT parameter");
		else if (read_qresync(p, cmd) < 0)
			return -1;
		if (cur(p) != ' ')
			break;
		p->pos++;
	}
	return expect(p, ')', "Expected ) after SELECT parameters");
}

/* USE "(" [use-attr *(SP use-attr)] ")", RFC 6154. */
static int
read_create_use(struct parser *p, struct imap_command *cmd)
{
	struct vec use = { NULL, 0, 0 };
	const char *w;
	size_t n;

	if (need_sp(p) < 0 || expect(p, '(', "Expected ( after USE") < 0)
		return -1;
	while (cur(p) != ')') {
		if (use.n > 0 && need_sp(p) < 0)
			return -1;
		if (expect(p, '\\', "Expected a special-use attribute") < 0 ||
		    read_word(p, &w, &n) < 0)
			return -1;
		if (use.n >= IMAP_LIST_MAX)
			return fail(p, "Too many special-use attributes");
		*(const char **)vec_push(p->ar, &use, sizeof(char *)) =
		    arena_strndup(p->ar, w - 1, n + 1);
	}
	p->pos++;
	cmd->create_use = use.items;
	cmd->ncreate_use = use.n;
	return 0;
}

static int
parse_create(struct parser *p, struct imap_command *cmd)
{
	if (parse_mailbox_only(p, cmd) < 0)
		return -1;
	if (cur(p) != ' ')
		return 0;
	p->pos++;
	if (expect(p, '(', "Expected ( before CREATE parameters") < 0)
		return -1;
	for (;;) {
		if (!take_word(p, "USE"))
			return fail(p, "Unknown CREATE parameter");
		if (cmd->create_use != NULL)
			return fail(p, "USE given twice");
		if (read_create_use(p, cmd) < 0)
			return -1;
		if (cur(p) != ' ')
			break;
		p->pos++;
	}
	return expect(p, ')', "Expected ) after CREATE parameters");
}

static const struct name_bit status_defs[] = {
	{ "MESSAGES", IMAP_STATUS_MESSAGES },
	{ "RECENT", IMAP_STATUS_RECENT },
	{ "UIDNEXT", IMAP_STATUS_UIDNEXT },
	{ "UIDVALIDITY", IMAP_STATUS_UIDVALIDITY },
	{ "UNSEEN", IMAP_STATUS_UNSEEN },
	{ "DELETED", IMAP_STATUS_DELETED },
	{ "SIZE", IMAP_STATUS_SIZE },
	{ "HIGHESTMODSEQ", IMAP_STATUS_HIGHESTMODSEQ },
	{ "APPENDLIMIT", IMAP_STATUS_APPENDLIMIT },
};

/* "(" status-att *(SP status-att) ")" */
static int
read_status_items(struct parser *p, unsigned *mask)
{
	const char *w;
	size_t n;
	int i;

	if (expect(p, '(', "Expected ( before STATUS items") < 0)
		return -1;
	for (;;) {
		if (read_word(p, &w, &n) < 0)
			return -1;
		i = lookup_bit(status_defs, NELEM(status_defs), w, n);
		if (i < 0)
			return fail(p, "Unknown STATUS item");
		*mask |= status_defs[i].bit;
		if (cur(p) != ' ')
			break;
		p->pos++;
	}
	return expect(p, ')', "Expected ) after STATUS items");
}

static int
parse_status(struct parser *p, struct imap_command *cmd)
{
	if (parse_mailbox_only(p, cmd) < 0 || need_sp(p) < 0)
		return -1;
	return read_status_items(p, &cmd->status_items);
}

static const struct name_bit list_select_defs[] = {
	{ "SUBSCRIBED", IMAP_LIST_SEL_SUBSCRIBED },
	{ "REMOTE", IMAP_LIST_SEL_REMOTE },
	{ "RECURSIVEMATCH", IMAP_LIST_SEL_RECURSIVEMATCH },
	{ "SPECIAL-USE", IMAP_LIST_SEL_SPECIAL_USE },
}, list_return_defs[] = {
	{ "SUBSCRIBED", IMAP_LIST_RET_SUBSCRIBED },
	{ "CHILDREN", IMAP_LIST_RET_CHILDREN },
	{ "SPECIAL-USE", IMAP_LIST_RET_SPECIAL_USE },
	{ "STATUS", IMAP_LIST_RET_STATUS },
};

/* "(" [option *(SP option)] ")" for LIST selection (select) or RETURN
 * options; RETURN STATUS takes its item list. */
static int
read_list_options(struct parser *p, bool select, struct imap_command *cmd)
{
	const struct name_bit *defs = select ? list_select_defs :
	    list_return_defs;
	unsigned *mask = select ? &cmd->list_select : &cmd->list_return;
	const char *w;
	size_t n;
	int i;

	if (expect(p, '(', "Expected ( before LIST options") < 0)
		return -1;
	while (cur(p) != ')') {
		if (*mask != 0 && need_sp(p) < 0)
			return -1;
		if (read_word(p, &w, &n) < 0)
			return -1;
		if ((i = lookup_bit(defs, 4, w, n)) < 0)
			return fail(p, "Unknown LIST option");
		*mask |= defs[i].bit;
		if (defs == list_return_defs &&
		    defs[i].bit == IMAP_LIST_RET_STATUS && (need_sp(p) < 0 ||
		    read_status_items(p, &cmd->list_status) < 0))
			return -1;
	}
	p->pos++;
	/* RFC 5258 3: RECURSIVEMATCH needs a base option to modify. */
	if (select && (cmd->list_select & IMAP_LIST_SEL_RECURSIVEMATCH) &&
	    !(cmd->list_select & (IMAP_LIST_SEL_SUBSCRIBED |
	    IMAP_LIST_SEL_SPECIAL_USE)))
		return fail(p, "RECURSIVEMATCH needs another selection option");
	return 0;
}

/* One pattern, or "(" pattern *(SP pattern) ")" (RFC 5258). */
static int
read_patterns(struct parser *p, struct imap_command *cmd)
{
	struct vec pats = { NULL, 0, 0 };
	size_t sz = sizeof(struct imap_string);
	bool list = cur(p) == '(';

	if (list)
		p->pos++;
	for (;;) {
		if (pats.n >= IMAP_LIST_MAX)
			return fail(p, "Too many LIST patterns");
		if (read_list_mailbox(p, vec_push(p->ar, &pats, sz)) < 0)
			return -1;
		if (!list || cur(p) != ' ')
			break;
		p->pos++;
	}
	if (list && expect(p, ')', "Expected ) after patterns") < 0)
		return -1;
	cmd->patterns = pats.items;
	cmd->npatterns = pats.n;
	return 0;
}

static int
parse_list(struct parser *p, struct imap_command *cmd)
{
	bool extended = cmd->cmd == IMAP_CMD_LIST;

	if (need_sp(p) < 0)
		return -1;
	if (extended && cur(p) == '(' && (read_list_options(p, true, cmd) < 0 ||
	    need_sp(p) < 0))
		return -1;
	if (read_astring(p, &cmd->reference) < 0 || need_sp(p) < 0)
		return -1;
	if (!extended && cur(p) == '(')
		return fail(p, "LSUB takes one pattern");
	if (read_patterns(p, cmd) < 0)
		return -1;
	if (!extended || cur(p) != ' ')
		return 0;
	p->pos++;
	if (!take_word(p, "RETURN"))
		return fail(p, "Expected RETURN");
	if (need_sp(p) < 0)
		return -1;
	return read_list_options(p, false, cmd);
}

/* "UTF8" SP "(" literal8 ")" (RFC 6855), a literal or a literal8. */
static int
read_append_data(struct parser *p, struct imap_append_msg *m)
{
	if (take_word(p, "UTF8")) {
		m->utf8 = true;
		if (need_sp(p) < 0 || expect(p, '(', "Expected ( after UTF8") < 0)
			return -1;
		if (cur(p) != '~')
			return fail(p, "UTF8 data must be a literal8");
		if (read_literal(p, true, true, &m->message) < 0)
			return -1;
		return expect(p, ')', "Expected ) after UTF8 data");
	}
	if (cur(p) != '{' && cur(p) != '~')
		return fail(p, at_eol(p) ? "Missing argument" :
		    "Expected a literal with the message");
	return read_literal(p, true, true, &m->message);
}

/* append-message = [flag-list SP] [date-time SP] append-data */
static int
read_append_msg(struct parser *p, struct imap_append_msg *m)
{
	struct imap_string date;

	if (cur(p) == '(') {
		if (read_flags(p, false, &m->flags) < 0 || need_sp(p) < 0)
			return -1;
		m->has_flags = true;
	}
	if (cur(p) == '"') {
		if (read_quoted(p, &date) < 0)
			return -1;
		if (imap_parse_date_time(date.data, date.len,
		    &m->internaldate) < 0)
			return fail(p, "Invalid date-time");
		m->has_internaldate = true;
		if (need_sp(p) < 0)
			return -1;
	}
	return read_append_data(p, m);
}

static int
parse_append(struct parser *p, struct imap_command *cmd)
{
	struct vec msgs = { NULL, 0, 0 };

	if (parse_mailbox_only(p, cmd) < 0 || need_sp(p) < 0)
		return -1;
	for (;;) {
		struct imap_append_msg *m = vec_push(p->ar, &msgs,
		    sizeof(*m));

		str_init(&m->message);
		if (read_append_msg(p, m) < 0)
			return -1;
		if (cur(p) != ' ')
			break;
		p->pos++;
	}
	cmd->append = msgs.items;
	cmd->nappend = msgs.n;
	return 0;
}

static int
parse_expunge(struct parser *p, struct imap_command *cmd)
{
	if (!cmd->uid)
		return 0;
	if (need_sp(p) < 0)
		return -1;
	return read_seqset(p, SEQ_STAR | SEQ_SAVED, &cmd->set);
}

/* (CHANGEDSINCE n [VANISHED]) in any order, RFC 7162. */
static int
read_fetch_modifiers(struct parser *p, struct imap_command *cmd)
{
	if (expect(p, '(', "Expected ( before FETCH modifiers") < 0)
		return -1;
	for (;;) {
		if (take_word(p, "VANISHED")) {
			cmd->vanished = true;
		} else if (take_word(p, "CHANGEDSINCE")) {
			if (need_sp(p) < 0 ||
			    read_number(p, 1, U63_MAX, &cmd->changedsince) < 0)
				return -1;
		} else {
			return fail(p, "Unknown FETCH modifier");
		}
		if (cur(p) != ' ')
			break;
		p->pos++;
	}
	if (expect(p, ')', "Expected ) after FETCH modifiers") < 0)
		return -1;
	/* RFC 7162 3.2.6: VANISHED only in UID FETCH with CHANGEDSINCE. */
	if (cmd->vanished && (!cmd->uid || cmd->changedsince == 0))
		return fail(p, "VANISHED needs UID FETCH and CHANGEDSINCE");
	return 0;
}

static int
parse_fetch(struct parser *p, struct imap_command *cmd)
{
	if (need_sp(p) < 0 ||
	    read_seqset(p, SEQ_STAR | SEQ_SAVED, &cmd->set) < 0 ||
	    need_sp(p) < 0 || read_fetch_atts(p, cmd) < 0)
		return -1;
	if (cur(p) != ' ')
		return 0;
	p->pos++;
	return read_fetch_modifiers(p, cmd);
}

/* ["(" UNCHANGEDSINCE n ")" SP] ["+"/"-"] FLAGS[.SILENT] SP flags */
static int
parse_store(struct parser *p, struct imap_command *cmd)
{
	const char *w;
	size_t n;

	if (need_sp(p) < 0 ||
	    read_seqset(p, SEQ_STAR | SEQ_SAVED, &cmd->set) < 0 ||
	    need_sp(p) < 0)
		return -1;
	if (cur(p) == '(') {
		p->pos++;
		if (!take_word(p, "UNCHANGEDSINCE"))
			return fail(p, "Unknown STORE modifier");
		if (need_sp(p) < 0 ||
		    read_number(p, 0, U63_MAX, &cmd->unchangedsince) < 0 ||
		    expect(p, ')', "Expected ) after STORE modifier") < 0 ||
		    need_sp(p) < 0)
			return -1;
		cmd->has_unchangedsince = true;
	}
	if (read_word(p, &w, &n) < 0)
		return -1;
	cmd->store_mode = w[0] == '+' ? IMAP_STORE_ADD :
	    w[0] == '-' ? IMAP_STORE_REMOVE : IMAP_STORE_SET;
	if (cmd->store_mode != IMAP_STORE_SET) {
		w++;
		n--;
	}
	cmd->store_silent = word_is(w, n, "FLAGS.SILENT");
	if (!cmd->store_silent && !word_is(w, n, "FLAGS"))
		return fail(p, "Expected FLAGS, +FLAGS or -FLAGS");
	if (need_sp(p) < 0)
		return -1;
	return read_flags(p, cur(p) != '(', &cmd->store_flags);
}

static int
parse_copy(struct parser *p, struct imap_command *cmd)
{
	if (need_sp(p) < 0 ||
	    read_seqset(p, SEQ_STAR | SEQ_SAVED, &cmd->set) < 0 ||
	    need_sp(p) < 0)
		return -1;
	return read_astring(p, &cmd->mailbox);
}

/* ---- commands ---- */

static const struct cmd_def {
	const char *name;
	bool uid_ok;		/* may follow "UID " */
	int (*parse)(struct parser *p, struct imap_command *cmd);
} cmd_defs[IMAP_CMD_COUNT] = {
	[IMAP_CMD_CAPABILITY] = { "CAPABILITY", false, NULL },
	[IMAP_CMD_NOOP] = { "NOOP", false, NULL },
	[IMAP_CMD_LOGOUT] = { "LOGOUT", false, NULL },
	[IMAP_CMD_STARTTLS] = { "STARTTLS", false, NULL },
	[IMAP_CMD_AUTHENTICATE] = { "AUTHENTICATE", false, parse_authenticate },
	[IMAP_CMD_LOGIN] = { "LOGIN", false, parse_login },
	[IMAP_CMD_ENABLE] = { "ENABLE", false, parse_enable },
	[IMAP_CMD_ID] = { "ID", false, parse_id },
	[IMAP_CMD_SELECT] = { "SELECT", false, parse_select },
	[IMAP_CMD_EXAMINE] = { "EXAMINE", false, parse_select },
	[IMAP_CMD_CREATE] = { "CREATE", false, parse_create },
	[IMAP_CMD_DELETE] = { "DELETE", false, parse_mailbox_only },
	[IMAP_CMD_RENAME] = { "RENAME", false, parse_rename },
	[IMAP_CMD_SUBSCRIBE] = { "SUBSCRIBE", false, parse_mailbox_only },
	[IMAP_CMD_UNSUBSCRIBE] = { "UNSUBSCRIBE", false, parse_mailbox_only },
	[IMAP_CMD_LIST] = { "LIST", false, parse_list },
	[IMAP_CMD_LSUB] = { "LSUB", false, parse_list },
	[IMAP_CMD_NAMESPACE] = { "NAMESPACE", false, NULL },
	[IMAP_CMD_STATUS] = { "STATUS", false, parse_status },
	[IMAP_CMD_APPEND] = { "APPEND", false, parse_append },
	[IMAP_CMD_IDLE] = { "IDLE", false, NULL },
	[IMAP_CMD_CHECK] = { "CHECK", false, NULL },
	[IMAP_CMD_CLOSE] = { "CLOSE", false, NULL },
	[IMAP_CMD_UNSELECT] = { "UNSELECT", false, NULL },
	[IMAP_CMD_EXPUNGE] = { "EXPUNGE", true, parse_expunge },
	[IMAP_CMD_SEARCH] = { "SEARCH", true, parse_search },
	[IMAP_CMD_FETCH] = { "FETCH", true, parse_fetch },
	[IMAP_CMD_STORE] = { "STORE", true, parse_store },
	[IMAP_CMD_COPY] = { "COPY", true, parse_copy },
	[IMAP_CMD_MOVE] = { "MOVE", true, parse_copy },
};

const char *
imap_cmd_name(enum imap_cmd cmd)
{
	if ((unsigned)cmd >= IMAP_CMD_COUNT)
		return "";
	return cmd_defs[cmd].name;
}

/* Absent strings read as "" with no file, and as NIL where the header
 * says so. */
static void
command_init(struct imap_command *cmd)
{
	struct imap_string *strs[] = {
		&cmd->mech, &cmd->initial, &cmd->user, &cmd->password,
		&cmd->mailbox, &cmd->mailbox2, &cmd->reference, &cmd->charset,
	};
	size_t i;

	memset(cmd, 0, sizeof(*cmd));
	for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		str_init(strs[i]);
	cmd->initial.is_nil = true;
	cmd->charset.is_nil = true;
}

/* tag SP: the tag is copied to cmd->tag. */
static enum imap_parse_result
read_tag(struct parser *p, struct imap_command *cmd)
{
	size_t n = span(p, is_tag_char);

	if (n == 0 || (!at_eol(p) && cur(p) != ' ')) {
		fail(p, "Invalid tag");
		return IMAP_PARSE_NO_TAG;
	}
	if (n > IMAP_TAG_MAX) {
		fail(p, "Tag too long");
		return IMAP_PARSE_NO_TAG;
	}
	memcpy(cmd->tag, p->s, n);
	cmd->tag[n] = '\0';
	if (cur(p) != ' ') {
		fail(p, "Missing command");
		return IMAP_PARSE_BAD;
	}
	p->pos++;
	return IMAP_PARSE_OK;
}

/* ["UID" SP] command-name, then the command's arguments. */
static int
read_command(struct parser *p, struct imap_command *cmd)
{
	const char *w;
	size_t n, i;

	if (at_eol(p))
		return fail(p, "Missing command");
	if (read_word(p, &w, &n) < 0)
		return -1;
	if (word_is(w, n, "UID")) {
		cmd->uid = true;
		if (need_sp(p) < 0 || read_word(p, &w, &n) < 0)
			return -1;
	}
	for (i = 0; i < IMAP_CMD_COUNT; i++)
		if (word_is(w, n, cmd_defs[i].name))
			break;
	if (i == IMAP_CMD_COUNT)
		return fail(p, "Unknown command");
	if (cmd->uid && !cmd_defs[i].uid_ok)
		return fail(p, "Not a UID command");
	cmd->cmd = (enum imap_cmd)i;
	if (cmd_defs[i].parse != NULL && cmd_defs[i].parse(p, cmd) < 0)
		return -1;
	/* The command ends with its CRLF (optional on the last line). */
	if (!(p->pos == p->len || (p->len - p->pos == 2 &&
	    p->s[p->pos] == '\r' && p->s[p->pos + 1] == '\n')))
		return fail(p, "Unexpected extra arguments");
	if (p->files_used != p->in->nfiles)
		return fail(p, "Spooled literal out of place");
	return 0;
}

enum imap_parse_result
imap_parse_command(const struct imap_input *in, struct imap_command *cmd,
    const char **error_r)
{
	struct parser p;
	enum imap_parse_result r;
	char tag[IMAP_TAG_MAX + 1];

	memset(&p, 0, sizeof(p));
	p.in = in;
	p.s = in->data;
	p.len = in->data != NULL ? in->len : 0;
	command_init(cmd);
	p.ar = arena_new();
	cmd->arena = p.ar;
	r = read_tag(&p, cmd);
	if (r == IMAP_PARSE_OK && read_command(&p, cmd) < 0)
		r = IMAP_PARSE_BAD;
	if (r == IMAP_PARSE_OK) {
		*error_r = NULL;
		return r;
	}
	/* Nothing may point into the freed arena; only the tag stays. */
	memcpy(tag, cmd->tag, sizeof(tag));
	arena_free(p.ar);
	command_init(cmd);
	memcpy(cmd->tag, tag, sizeof(tag));
	*error_r = p.err != NULL ? p.err : "Syntax error";
	return r;
}

void
imap_command_free(struct imap_command *cmd)
{
	char tag[IMAP_TAG_MAX + 1];

	memcpy(tag, cmd->tag, sizeof(tag));
	arena_free(cmd->arena);
	command_init(cmd);
	memcpy(cmd->tag, tag, sizeof(tag));
}

bool
imap_is_done(const char *line, size_t len)
{
	return len == 4 && strncasecmp(line, "DONE", 4) == 0;
}

bool
imap_literal_at_end(const char *line, size_t len, uint64_t *size_r,
    bool *sync_r, bool *binary_r)
{
	size_t end, start, i;
	uint64_t v = 0;
	bool sync = true;

	if (len < 3 || line[len - 1] != '}')
		return false;
	end = len - 1;
	if (line[end - 1] == '+') {
		sync = false;
		end--;
	}
	for (start = end; start > 0 && is_digit(line[start - 1]); start--)
		;
	if (start == end || start == 0 || line[start - 1] != '{')
		return false;
	for (i = start; i < end; i++) {
		unsigned d = (unsigned)(line[i] - '0');

		if (v > (U63_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*size_r = v;
	*sync_r = sync;
	*binary_r = start >= 2 && line[start - 2] == '~';
	return true;
}

bool
imap_peek_command(const char *line, size_t len, char tag[IMAP_TAG_MAX + 1],
    char name[32], bool *uid_r)
{
	struct imap_input in = { line, len, NULL, 0 };
	struct parser p;
	const char *w;
	size_t n, i;

	tag[0] = '\0';
	name[0] = '\0';
	*uid_r = false;
	memset(&p, 0, sizeof(p));
	p.in = &in;
	p.s = line;
	p.len = len;
	n = span(&p, is_tag_char);
	if (n == 0 || n > IMAP_TAG_MAX || (n < len && line[n] != ' '))
		return false;
	memcpy(tag, line, n);
	tag[n] = '\0';
	p.pos = n + 1;
	if (p.pos >= len)
		return true;
	w = line + p.pos;
	n = span(&p, is_atom_char);
	if (word_is(w, n, "UID") && cur(&p) == ' ') {
		*uid_r = true;
		p.pos++;
		w = line + p.pos;
		n = span(&p, is_atom_char);
	}
	if (n >= 32)
		return true;
	for (i = 0; i < n; i++)
		name[i] = (w[i] >= 'a' && w[i] <= 'z') ? w[i] - 'a' + 'A' :
		    w[i];
	name[n] = '\0';
	return true;
}
