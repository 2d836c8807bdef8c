/* SEARCH and UID SEARCH (RFC 9051 6.4.4), with ESEARCH results (RFC
 * 4731), SEARCHRES (RFC 5182), WITHIN (RFC 5032), SAVEDATE (RFC 8514) and
 * the MODSEQ key (RFC 7162).
 *
 * Untrusted input: the parsed search program (a tree the parser bounds
 * to IMAP_DEPTH_MAX levels and IMAP_SEARCH_KEYS_MAX keys; walked here
 * with a depth bound of our own too), and the message files it reads.
 *
 * Each message is first tried with the keys that need only the view
 * (flags, sizes, dates, sets); a key that needs the message (HEADER,
 * BODY, TEXT) or its summary (SENT*) answers "unknown" then, and only
 * when the outcome still depends on it is the file opened, once.
 *
 * Dates compare by day: the internal date and the save date by their day
 * in UTC, the Date: header by its day in the header's own time zone
 * (RFC 9051 says to disregard time and time zone). A message without a
 * valid Date: header matches no SENT* key. \Recent is not kept by correo:
 * RECENT and NEW match nothing, OLD everything. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "imap/imap_session.h"
#include "store/mime.h"

/* Deeper than the parser allows: only a bound against bugs. */
#define SEARCH_DEPTH_MAX	(IMAP_DEPTH_MAX * 2 + 8)

enum search_result {
	SEARCH_FALSE,
	SEARCH_TRUE,
	SEARCH_UNKNOWN		/* needs the message file or summary */
};

/* A sequence-set or UID key, resolved once against the view. */
struct search_set {
	const struct imap_search_key *key;
	uint8_t *match;		/* per view index */
};

struct search_ctx {
	struct imap_session *s;
	time_t now;
	struct search_set *sets;
	size_t nsets;
	bool uses_modseq;
	bool too_deep;
	struct store_hdrs *hdrs;	/* header caches, read along */
	bool hdrs_failed;

	/* the message being tested */
	const struct imap_msg *m;
	size_t index;
	int fd;			/* -1 until opened */
	bool fd_failed;
	bool have_sent;
	bool sent_failed;
	long sent_day;		/* day of the Date: header, its zone */
};

/* ---- days ---- */

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
static long
search_days_from_civil(int y, int m, int d)
{
	long yy = y - (m <= 2);
	long era = (yy >= 0 ? yy : yy - 399) / 400;
	long yoe = yy - era * 400;
	long doy = (153L * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

/* The day (since the epoch) of t shifted by offset seconds. */
static long
search_day_of(time_t t, long offset)
{
	long long x = (long long)t + offset;

	return (long)(x >= 0 ? x / 86400 : -((-x + 86399) / 86400));
}

static enum search_result
search_date_cmp(enum imap_search_kind kind, long day, long key)
{
	switch (kind) {
	case IMAP_SK_BEFORE:
	case IMAP_SK_SENTBEFORE:
	case IMAP_SK_SAVEDBEFORE:
		return day < key ? SEARCH_TRUE : SEARCH_FALSE;
	case IMAP_SK_ON:
	case IMAP_SK_SENTON:
	case IMAP_SK_SAVEDON:
		return day == key ? SEARCH_TRUE : SEARCH_FALSE;
	default:
		return day >= key ? SEARCH_TRUE : SEARCH_FALSE;
	}
}

/* The zone of an ENVELOPE's date ("(\"Tue, 1 Dec 2026 10:00:00 +0100\"
 * ..."), in seconds east of UTC; 0 when it has none we can read. */
static long
search_envelope_zone(const char *env)
{
	const char *p, *end, *zone = NULL;

	if (env == NULL || env[0] != '(' || env[1] != '"')
		return 0;
	p = env + 2;
	for (end = p; *end && *end != '"'; end++)
		if (*end == '\\' && end[1])
			end++;
	for (const char *q = p; q + 5 <= end; q++)
		if ((*q == '+' || *q == '-') && (q == p || q[-1] == ' '))
			zone = q;
	if (zone == NULL)
		return 0;
	for (int i = 1; i <= 4; i++)
		if (zone[i] < '0' || zone[i] > '9')
			return 0;
	long mins = ((zone[1] - '0') * 10 + (zone[2] - '0')) * 60 +
	    (zone[3] - '0') * 10 + (zone[4] - '0');
	return (*zone == '-' ? -mins : mins) * 60;
}

/* ---- sets ---- */

/* Index of the first message with UID >= uid. */
static size_t
search_uid_lower(const struct imap_view *v, uint32_t uid)
{
	size_t lo = 0, hi = v->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Marks the view indexes [from, to) in diff (a difference array). */
static void
search_mark(int32_t *diff, size_t from, size_t to)
{
	if (from >= to)
		return;
	diff[from]++;
	diff[to]--;
}

/* One range of a set as view indexes [*from, *to). "*" is the last
 * message number, or the highest UID; a:b may be written b:a. */
static void
search_range(const struct imap_view *v, const struct imap_seq_range *r,
    bool by_uid, size_t *from, size_t *to)
{
	uint32_t star = 0, a, b;

	if (v->count > 0)
		star = by_uid ? v->msgs[v->count - 1].uid : (uint32_t)v->count;
	a = r->first == UINT32_MAX ? star : r->first;
	b = r->last == UINT32_MAX ? star : r->last;
	if (a > b) {
		uint32_t t = a;
		a = b;
		b = t;
	}
	if (by_uid) {
		*from = search_uid_lower(v, a);
		*to = b == UINT32_MAX ? v->count : search_uid_lower(v, b + 1);
		return;
	}
	*from = a == 0 ? 0 : a - 1;
	*to = b > v->count ? v->count : b;
}

static uint8_t *
search_set_resolve(const struct imap_view *v, const struct imap_search_key *k)
{
	uint8_t *match = x_calloc(v->count + 1, 1);
	int32_t *diff;
	int32_t depth = 0;

	if (k->set.is_saved) {
		for (size_t i = 0; i < v->nsaved; i++) {
			long at = imap_view_find_uid(v, v->saved[i]);
			if (at >= 0)
				match[at] = 1;
		}
		return match;
	}
	diff = x_calloc(v->count + 1, sizeof(*diff));
	for (size_t i = 0; i < k->set.count; i++) {
		size_t from, to;
		search_range(v, &k->set.ranges[i], k->kind == IMAP_SK_UID,
		    &from, &to);
		search_mark(diff, from, to);
	}
	for (size_t i = 0; i < v->count; i++) {
		depth += diff[i];
		match[i] = depth > 0;
	}
	free(diff);
	return match;
}

/* Walks the program: resolves its sets, notes MODSEQ. -1 when deeper
 * than SEARCH_DEPTH_MAX. */
static int
search_prepare(struct search_ctx *x, const struct imap_search_key *k,
    unsigned depth)
{
	if (depth > SEARCH_DEPTH_MAX)
		return -1;
	if (k->kind == IMAP_SK_MODSEQ)
		x->uses_modseq = true;
	if (x->s && (k->kind == IMAP_SK_SEQSET || k->kind == IMAP_SK_UID)) {
		x->sets = x_reallocarray(x->sets, x->nsets + 1,
		    sizeof(*x->sets));
		x->sets[x->nsets].key = k;
		x->sets[x->nsets].match = search_set_resolve(&x->s->view, k);
		x->nsets++;
	}
	for (size_t i = 0; i < k->nchildren; i++)
		if (search_prepare(x, &k->children[i], depth + 1) < 0)
			return -1;
	return 0;
}

static enum search_result
search_in_set(const struct search_ctx *x, const struct imap_search_key *k)
{
	for (size_t i = 0; i < x->nsets; i++)
		if (x->sets[i].key == k)
			return x->sets[i].match[x->index] ? SEARCH_TRUE :
			    SEARCH_FALSE;
	return SEARCH_FALSE;
}

/* ---- keys that need only the view ---- */

static bool
search_has_keyword(const char *list, const struct imap_string *kw)
{
	const char *p = list;

	if (list == NULL || kw->len == 0)
		return false;
	while (*p) {
		size_t n = strcspn(p, " ");
		if (n == kw->len && strncasecmp(p, kw->data, n) == 0)
			return true;
		p += n;
		p += strspn(p, " ");
	}
	return false;
}

static enum search_result
search_bool(bool b)
{
	return b ? SEARCH_TRUE : SEARCH_FALSE;
}

static enum search_result
search_flag_key(const struct imap_msg *m, const struct imap_search_key *k)
{
	unsigned real = k->flag & ~(unsigned)IMAP_F_RECENT;

	if (k->kind == IMAP_SK_FLAG)
		return search_bool(!(k->flag & IMAP_F_RECENT) &&
		    (m->flags & real) == real);
	return search_bool((m->flags & real) == 0);
}

static enum search_result
search_cheap_dates(const struct search_ctx *x, const struct imap_search_key *k)
{
	const struct imap_msg *m = x->m;
	long key = search_days_from_civil(k->year, k->month, k->day);

	switch (k->kind) {
	case IMAP_SK_BEFORE:
	case IMAP_SK_ON:
	case IMAP_SK_SINCE:
		return search_date_cmp(k->kind,
		    search_day_of(m->internaldate, 0), key);
	case IMAP_SK_SAVEDBEFORE:
	case IMAP_SK_SAVEDON:
	case IMAP_SK_SAVEDSINCE:
		if (m->savedate == 0)
			return SEARCH_FALSE;
		return search_date_cmp(k->kind,
		    search_day_of(m->savedate, 0), key);
	case IMAP_SK_OLDER:
		return search_bool((long long)m->internaldate <=
		    (long long)x->now - (long long)k->number);
	case IMAP_SK_YOUNGER:
		return search_bool((long long)m->internaldate >
		    (long long)x->now - (long long)k->number);
	default:
		return SEARCH_UNKNOWN;
	}
}

/* A leaf that needs only the view, or SEARCH_UNKNOWN. */
static enum search_result
search_cheap(const struct search_ctx *x, const struct imap_search_key *k)
{
	const struct imap_msg *m = x->m;

	switch (k->kind) {
	case IMAP_SK_ALL:
	case IMAP_SK_OLD:
	case IMAP_SK_SAVEDATESUPPORTED:
		return SEARCH_TRUE;
	case IMAP_SK_NEW:
		return SEARCH_FALSE;
	case IMAP_SK_SEQSET:
	case IMAP_SK_UID:
		return search_in_set(x, k);
	case IMAP_SK_FLAG:
	case IMAP_SK_NOFLAG:
		return search_flag_key(m, k);
	case IMAP_SK_KEYWORD:
		return search_bool(search_has_keyword(m->keywords, &k->str));
	case IMAP_SK_UNKEYWORD:
		return search_bool(!search_has_keyword(m->keywords, &k->str));
	case IMAP_SK_LARGER:
		return search_bool(m->size > k->number);
	case IMAP_SK_SMALLER:
		return search_bool(m->size < k->number);
	case IMAP_SK_MODSEQ:
		return search_bool(m->modseq >= k->number);
	default:
		return search_cheap_dates(x, k);
	}
}

/* ---- keys that need the message ---- */

/* Opens the message once; false when it cannot be read (gone). */
static bool
search_open(struct search_ctx *x)
{
	if (x->fd >= 0)
		return true;
	if (x->fd_failed)
		return false;
	x->fd = store_msg_open(x->m->path);
	if (x->fd < 0) {
		x->fd_failed = true;
		if (errno != ENOENT)
			log_warn("session=%llu event=imap-search-open uid=%u",
			    (unsigned long long)x->s->id, x->m->uid);
		return false;
	}
	return true;
}

/* A header key from the index's header cache: 1, 0, or -1 when the
 * cache cannot answer (not kept for this field or message). Messages are
 * tested in ascending UID order, the order the cache is read in. */
static int
search_cached_header(struct search_ctx *x, const struct imap_search_key *k)
{
	const void *cache;
	size_t len;
	char *error = NULL;

	if (x->hdrs_failed)
		return -1;
	if (x->hdrs == NULL) {
		x->hdrs = store_hdrs_open(x->s->store, x->s->view.name,
		    x->s->view.uidvalidity, x->m->uid, &error);
		if (x->hdrs == NULL) {
			x->hdrs_failed = true;
			free(error);
			return -1;
		}
	}
	int r = store_hdrs_get(x->hdrs, x->m->uid, &cache, &len);
	if (r < 0)
		x->hdrs_failed = true;
	if (r <= 0)
		return -1;
	return mime_hdrcache_match(cache, len, k->field.data, k->str.data,
	    k->str.len);
}

static enum search_result
search_in_file(struct search_ctx *x, const struct imap_search_key *k)
{
	char *error = NULL;
	bool match = false;
	int r;

	if (k->kind == IMAP_SK_HEADER && (r = search_cached_header(x, k)) >= 0)
		return search_bool(r == 1);
	if (!search_open(x))
		return SEARCH_FALSE;
	if (lseek(x->fd, 0, SEEK_SET) < 0)
		return SEARCH_FALSE;
	if (k->kind == IMAP_SK_HEADER)
		r = mime_search_header(x->fd, k->field.data, k->str.data,
		    k->str.len, &match, &error);
	else
		r = mime_search_body(x->fd, k->str.data, k->str.len,
		    k->kind == IMAP_SK_TEXT, &match, &error);
	if (r < 0) {
		log_warnx("session=%llu event=imap-search-read uid=%u "
		    "error=\"%s\"", (unsigned long long)x->s->id, x->m->uid,
		    error ? error : "?");
		match = false;
	}
	free(error);
	return search_bool(match);
}

/* The day of the Date: header, from the message's cached summary. */
static bool
search_sent_day(struct search_ctx *x, long *day)
{
	struct imap_session *s = x->s;
	struct mime_summary sum;
	char *error = NULL;

	if (!x->have_sent && !x->sent_failed) {
		memset(&sum, 0, sizeof(sum));
		if (store_msg_summary(s->store, s->view.name, x->m->uid, &sum,
		    &error) < 0 || sum.sentdate == 0) {
			x->sent_failed = true;
		} else {
			x->sent_day = search_day_of(sum.sentdate,
			    search_envelope_zone(sum.envelope));
			x->have_sent = true;
		}
		mime_summary_free(&sum);
		free(error);
	}
	*day = x->sent_day;
	return x->have_sent;
}

static enum search_result
search_costly(struct search_ctx *x, const struct imap_search_key *k)
{
	long day;

	switch (k->kind) {
	case IMAP_SK_SENTBEFORE:
	case IMAP_SK_SENTON:
	case IMAP_SK_SENTSINCE:
		if (!search_sent_day(x, &day))
			return SEARCH_FALSE;
		return search_date_cmp(k->kind, day, search_days_from_civil(
		    k->year, k->month, k->day));
	case IMAP_SK_HEADER:
	case IMAP_SK_BODY:
	case IMAP_SK_TEXT:
		return search_in_file(x, k);
	default:
		return SEARCH_FALSE;
	}
}

/* ---- evaluation ---- */

static enum search_result search_eval(struct search_ctx *x,
    const struct imap_search_key *k, unsigned depth, bool full);

/* AND (all = true) or OR of the children: first every child with the
 * cheap keys only, then, when that did not decide and full is set, the
 * undecided children with their costly keys. */
static enum search_result
search_eval_list(struct search_ctx *x, const struct imap_search_key *k,
    unsigned depth, bool full, bool all)
{
	enum search_result decisive = all ? SEARCH_FALSE : SEARCH_TRUE;
	enum search_result res = all ? SEARCH_TRUE : SEARCH_FALSE;

	for (size_t i = 0; i < k->nchildren; i++) {
		enum search_result r = search_eval(x, &k->children[i],
		    depth + 1, false);
		if (r == decisive)
			return r;
		if (r == SEARCH_UNKNOWN)
			res = SEARCH_UNKNOWN;
	}
	if (res != SEARCH_UNKNOWN || !full)
		return res;
	for (size_t i = 0; i < k->nchildren; i++)
		if (search_eval(x, &k->children[i], depth + 1, true) ==
		    decisive)
			return decisive;
	return all ? SEARCH_TRUE : SEARCH_FALSE;
}

static enum search_result
search_eval(struct search_ctx *x, const struct imap_search_key *k,
    unsigned depth, bool full)
{
	enum search_result r;

	if (depth > SEARCH_DEPTH_MAX) {
		x->too_deep = true;
		return SEARCH_FALSE;
	}
	switch (k->kind) {
	case IMAP_SK_AND:
		return search_eval_list(x, k, depth, full, true);
	case IMAP_SK_OR:
		return search_eval_list(x, k, depth, full, false);
	case IMAP_SK_NOT:
		if (k->nchildren != 1)
			return SEARCH_FALSE;
		r = search_eval(x, &k->children[0], depth + 1, full);
		return r == SEARCH_UNKNOWN ? r :
		    search_bool(r == SEARCH_FALSE);
	default:
		r = search_cheap(x, k);
		if (r != SEARCH_UNKNOWN || !full)
			return r;
		return search_costly(x, k);
	}
}

static bool
search_message(struct search_ctx *x, size_t index)
{
	enum search_result r;

	x->m = &x->s->view.msgs[index];
	x->index = index;
	x->fd = -1;
	x->fd_failed = false;
	x->have_sent = false;
	x->sent_failed = false;
	r = search_eval(x, x->s->cmd.search, 0, false);
	if (r == SEARCH_UNKNOWN)
		r = search_eval(x, x->s->cmd.search, 0, true);
	if (x->fd >= 0)
		close(x->fd);
	x->fd = -1;
	return r == SEARCH_TRUE;
}

/* ---- results ---- */

/* What SEARCH found: view indexes, ascending. */
struct search_found {
	size_t *idx;
	size_t n;
};

static uint32_t
search_number(const struct imap_session *s, size_t index)
{
	return s->cmd.uid ? s->view.msgs[index].uid : (uint32_t)(index + 1);
}

static uint64_t
search_max_modseq(const struct imap_session *s, const size_t *idx, size_t n)
{
	uint64_t max = 0;

	for (size_t i = 0; i < n; i++)
		if (s->view.msgs[idx[i]].modseq > max)
			max = s->view.msgs[idx[i]].modseq;
	return max;
}

/* "* SEARCH 2 5 (MODSEQ 917)" (RFC 3501 style, RFC 7162 3.1.5). */
static void
search_write_plain(struct imap_session *s, const struct search_found *f,
    bool modseq)
{
	buf_puts(&s->out, "* SEARCH");
	for (size_t i = 0; i < f->n; i++)
		buf_printf(&s->out, " %u", search_number(s, f->idx[i]));
	if (modseq && f->n > 0)
		buf_printf(&s->out, " (MODSEQ %llu)", (unsigned long long)
		    search_max_modseq(s, f->idx, f->n));
	buf_puts(&s->out, "\r\n");
}

static void
search_write_all(struct imap_session *s, const struct search_found *f)
{
	uint32_t *nums = x_calloc(f->n + 1, sizeof(*nums));

	for (size_t i = 0; i < f->n; i++)
		nums[i] = search_number(s, f->idx[i]);
	buf_puts(&s->out, " ALL ");
	imap_view_write_seqset(&s->out, nums, f->n);
	free(nums);
}

/* The MODSEQ of an ESEARCH: of the MIN/MAX messages when only those are
 * returned (RFC 7162 3.1.5), else of all matches. */
static uint64_t
search_esearch_modseq(const struct imap_session *s,
    const struct search_found *f, unsigned ret)
{
	size_t ends[2] = { f->idx[0], f->idx[f->n - 1] };

	if (ret & (IMAP_SEARCH_RET_ALL | IMAP_SEARCH_RET_COUNT))
		return search_max_modseq(s, f->idx, f->n);
	if (!(ret & IMAP_SEARCH_RET_MIN))
		return search_max_modseq(s, ends + 1, 1);
	if (!(ret & IMAP_SEARCH_RET_MAX))
		return search_max_modseq(s, ends, 1);
	return search_max_modseq(s, ends, 2);
}

/* "* ESEARCH (TAG "a") UID MIN 1 MAX 5 ALL 1:3,5 COUNT 4" (RFC 4731);
 * none when SAVE is the only option (RFC 5182 2.1). */
static void
search_write_esearch(struct imap_session *s, const struct search_found *f,
    bool modseq)
{
	unsigned ret = s->cmd.search_return;

	if ((ret & ~(unsigned)IMAP_SEARCH_RET_SAVE) == 0)
		return;
	buf_puts(&s->out, "* ESEARCH (TAG ");
	mime_imap_string(&s->out, s->cmd.tag, strlen(s->cmd.tag));
	buf_putc(&s->out, ')');
	if (s->cmd.uid)
		buf_puts(&s->out, " UID");
	if (f->n > 0 && (ret & IMAP_SEARCH_RET_MIN))
		buf_printf(&s->out, " MIN %u", search_number(s, f->idx[0]));
	if (f->n > 0 && (ret & IMAP_SEARCH_RET_MAX))
		buf_printf(&s->out, " MAX %u",
		    search_number(s, f->idx[f->n - 1]));
	if (f->n > 0 && (ret & IMAP_SEARCH_RET_ALL))
		search_write_all(s, f);
	if (ret & IMAP_SEARCH_RET_COUNT)
		buf_printf(&s->out, " COUNT %zu", f->n);
	if (modseq && f->n > 0)
		buf_printf(&s->out, " MODSEQ %llu", (unsigned long long)
		    search_esearch_modseq(s, f, ret));
	buf_puts(&s->out, "\r\n");
}

/* SAVE (RFC 5182 2.1): the UIDs of all matches, or of only the MIN and/or
 * MAX one when those are asked for without ALL or COUNT. */
static void
search_save(struct imap_session *s, const struct search_found *f)
{
	struct imap_view *v = &s->view;
	unsigned ret = s->cmd.search_return;
	bool only_ends = (ret & (IMAP_SEARCH_RET_MIN | IMAP_SEARCH_RET_MAX)) &&
	    !(ret & (IMAP_SEARCH_RET_ALL | IMAP_SEARCH_RET_COUNT));

	x_free(&v->saved);
	v->nsaved = 0;
	v->saved = x_calloc(f->n + 1, sizeof(*v->saved));
	for (size_t i = 0; i < f->n; i++) {
		bool end = (i == 0 && (ret & IMAP_SEARCH_RET_MIN)) ||
		    (i == f->n - 1 && (ret & IMAP_SEARCH_RET_MAX));
		if (only_ends && !end)
			continue;
		v->saved[v->nsaved++] = v->msgs[f->idx[i]].uid;
	}
}

/* ---- the command ---- */

static bool
search_charset_ok(const struct imap_string *cs)
{
	return cs->is_nil || strcasecmp(cs->data, "UTF-8") == 0 ||
	    strcasecmp(cs->data, "US-ASCII") == 0;
}

static bool
search_saving(const struct imap_session *s)
{
	return s->cmd.esearch && (s->cmd.search_return & IMAP_SEARCH_RET_SAVE);
}

/* A failed SEARCH ... SAVE leaves "$" empty (RFC 5182 2.1). */
static void
search_failed(struct imap_session *s, const char *status, const char *text)
{
	if (search_saving(s)) {
		x_free(&s->view.saved);
		s->view.nsaved = 0;
	}
	imap_out_tagged(s, status, "%s", text);
}

static void
search_run(struct imap_session *s, struct search_ctx *x)
{
	struct search_found f = { NULL, 0 };
	const struct imap_view *v = &s->view;

	f.idx = x_calloc(v->count + 1, sizeof(*f.idx));
	for (size_t i = 0; i < v->count && !x->too_deep; i++)
		if (!v->msgs[i].expunged && search_message(x, i))
			f.idx[f.n++] = i;
	store_hdrs_close(x->hdrs);
	x->hdrs = NULL;
	if (x->too_deep) {
		search_failed(s, "BAD", "Search program too deep");
	} else {
		if (!s->cmd.esearch)
			search_write_plain(s, &f, x->uses_modseq);
		else
			search_write_esearch(s, &f, x->uses_modseq);
		if (search_saving(s))
			search_save(s, &f);
		if (imap_view_sync(s, s->cmd.uid) < 0) {
			log_warnx("session=%llu event=imap-sync-failed "
			    "error=\"%s\"", (unsigned long long)s->id,
			    s->error ? s->error : "?");
			imap_out_tagged(s, "NO", "[SERVERBUG] SEARCH failed");
		} else
			imap_out_tagged(s, "OK", "SEARCH completed");
	}
	free(f.idx);
}

static void
search_work(struct imap_session *s)
{
	struct search_ctx x = { .s = s, .now = time(NULL), .fd = -1 };

	if (!search_charset_ok(&s->cmd.charset)) {
		search_failed(s, "NO", "[BADCHARSET (UTF-8 US-ASCII)] "
		    "Unsupported charset");
		return;
	}
	if (s->cmd.search == NULL || search_prepare(&x, s->cmd.search, 0) < 0)
		search_failed(s, "BAD", "Search program too deep");
	else
		search_run(s, &x);
	for (size_t i = 0; i < x.nsets; i++)
		free(x.sets[i].match);
	free(x.sets);
}

void
imap_cmd_search(struct imap_session *s)
{
	struct search_ctx x = { .s = NULL, .fd = -1 };

	/* RFC 7162 3.1: the MODSEQ key enables CONDSTORE; decided on the
	 * loop, before the job, as the session's flags are. */
	if (s->cmd.search && search_prepare(&x, s->cmd.search, 0) == 0 &&
	    x.uses_modseq)
		s->condstore = true;
	imap_job(s, search_work, NULL);
}
