/* The selected mailbox as one IMAP session sees it: the messages in
 * sequence order, and what changed in the store since the session last
 * looked (EXPUNGE/VANISHED, EXISTS, FETCH FLAGS, FLAGS).
 *
 * Untrusted input: sequence sets from clients (resolved here); the store's
 * contents (other sessions and Maildir writers change them at any time). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/util.h"
#include "core/xmalloc.h"
#include "imap/imap_session.h"

/* RFC 9051 2.3.2 order, the one clients are used to seeing. */
static const struct {
	unsigned flag;
	const char *name;
} imap_view_sysflags[] = {
	{ STORE_F_ANSWERED, "\\Answered" },
	{ STORE_F_FLAGGED, "\\Flagged" },
	{ STORE_F_DELETED, "\\Deleted" },
	{ STORE_F_SEEN, "\\Seen" },
	{ STORE_F_DRAFT, "\\Draft" },
};

#define IMAP_VIEW_ALL_FLAGS (STORE_F_SEEN | STORE_F_ANSWERED | \
	STORE_F_FLAGGED | STORE_F_DELETED | STORE_F_DRAFT)
/* The store's per-mailbox keyword limit: beyond it "\*" is not offered. */
#define IMAP_VIEW_KEYWORDS_MAX	64

static void
imap_msg_clear(struct imap_msg *m)
{
	x_free(&m->path);
	x_free(&m->keywords);
}

void
imap_view_free(struct imap_view *v)
{
	for (size_t i = 0; i < v->count; i++)
		imap_msg_clear(&v->msgs[i]);
	x_free(&v->msgs);
	x_free(&v->name);
	x_free(&v->keywords);
	x_free(&v->saved);
	memset(v, 0, sizeof(*v));
}

void
imap_flags_write(struct buf *out, unsigned flags, const char *keywords)
{
	const char *sep = "";

	for (size_t i = 0; i < sizeof(imap_view_sysflags) /
	    sizeof(imap_view_sysflags[0]); i++) {
		if (flags & imap_view_sysflags[i].flag) {
			buf_puts(out, sep);
			buf_puts(out, imap_view_sysflags[i].name);
			sep = " ";
		}
	}
	if (keywords && *keywords) {
		buf_puts(out, sep);
		buf_puts(out, keywords);
	}
}

/* ---- keywords and FLAGS ---- */

static size_t
imap_view_count_words(const char *list)
{
	size_t n = 0;

	for (const char *p = list; p && *p; ) {
		p += strspn(p, " ");
		if (*p == '\0')
			break;
		n++;
		p += strcspn(p, " ");
	}
	return n;
}

/* Is the keyword (len octets) in the space-separated list? Keywords
 * compare case-insensitively, as the store treats them. */
static bool
imap_view_has_word(const char *list, const char *kw, size_t len)
{
	for (const char *p = list; p && *p; ) {
		p += strspn(p, " ");
		size_t l = strcspn(p, " ");
		if (l == len && l > 0 && strncasecmp(p, kw, len) == 0)
			return true;
		p += l;
	}
	return false;
}

void
imap_view_send_flags(struct imap_session *s)
{
	struct imap_view *v = &s->view;

	buf_puts(&s->out, "* FLAGS (");
	imap_flags_write(&s->out, IMAP_VIEW_ALL_FLAGS, v->keywords);
	buf_puts(&s->out, ")\r\n");
	if (v->readonly) {
		buf_puts(&s->out,
		    "* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n");
		return;
	}
	buf_puts(&s->out, "* OK [PERMANENTFLAGS (");
	imap_flags_write(&s->out, IMAP_VIEW_ALL_FLAGS, v->keywords);
	if (imap_view_count_words(v->keywords) < IMAP_VIEW_KEYWORDS_MAX)
		buf_puts(&s->out, " \\*");
	buf_puts(&s->out, ")] Flags permitted\r\n");
}

/* Adds the keywords of list that v does not know yet; true when any. */
static bool
imap_view_add_keywords(struct imap_view *v, const char *list)
{
	struct buf nk = BUF_INIT;
	bool added = false;

	if (v->keywords)
		buf_puts(&nk, v->keywords);
	for (const char *p = list; p && *p; ) {
		p += strspn(p, " ");
		size_t l = strcspn(p, " ");
		if (l > 0 && !imap_view_has_word(buf_cstr(&nk), p, l)) {
			if (nk.len > 0)
				buf_putc(&nk, ' ');
			buf_append(&nk, p, l);
			added = true;
		}
		p += l;
	}
	if (added) {
		x_free(&v->keywords);
		v->keywords = x_strdup(buf_cstr(&nk));
	}
	buf_free(&nk);
	return added;
}

void
imap_view_note_keywords(struct imap_session *s, const char *keywords)
{
	if (keywords && *keywords && imap_view_add_keywords(&s->view, keywords))
		imap_view_send_flags(s);
}

/* ---- sync ---- */

static bool
imap_view_same_keywords(const char *a, const char *b)
{
	if (a == NULL || *a == '\0')
		return b == NULL || *b == '\0';
	return b != NULL && strcmp(a, b) == 0;
}

/* Fills a view entry from a store message, taking its strings. */
static void
imap_view_take(struct imap_msg *m, struct store_msg *sm)
{
	m->uid = sm->uid;
	m->flags = sm->flags;
	m->modseq = sm->modseq;
	m->size = sm->size;
	m->internaldate = sm->internaldate;
	m->savedate = sm->savedate;
	m->expunged = false;
	x_free(&m->path);
	m->path = sm->path;
	sm->path = NULL;
	x_free(&m->keywords);
	if (sm->keywords && *sm->keywords)
		m->keywords = sm->keywords;
	else
		free(sm->keywords);
	sm->keywords = NULL;
}

/* For each view message, the index of the same UID in mb or SIZE_MAX. */
static size_t *
imap_view_match(const struct imap_view *v, const struct store_mailbox *mb,
    bool all_gone)
{
	size_t *match = x_calloc(v->count ? v->count : 1, sizeof(*match));
	size_t j = 0;

	for (size_t i = 0; i < v->count; i++) {
		uint32_t uid = v->msgs[i].uid;
		while (!all_gone && j < mb->count && mb->msgs[j].uid < uid)
			j++;
		match[i] = !all_gone && j < mb->count &&
		    mb->msgs[j].uid == uid ? j : SIZE_MAX;
	}
	return match;
}

/* Removes the gone messages and reports them: VANISHED (QRESYNC) or
 * EXPUNGE, highest first so that each number is still right when the
 * client reads it. Keeps match parallel to the view. */
static void
imap_view_expunge(struct imap_session *s, size_t *match)
{
	struct imap_view *v = &s->view;
	uint32_t *uids = NULL;
	size_t ngone = 0, k = 0;

	for (size_t i = v->count; i-- > 0; ) {
		if (match[i] != SIZE_MAX)
			continue;
		if (!s->qresync)
			buf_printf(&s->out, "* %zu EXPUNGE\r\n", i + 1);
		ngone++;
	}
	if (ngone == 0)
		return;
	uids = x_calloc(ngone, sizeof(*uids));
	ngone = 0;
	for (size_t i = 0; i < v->count; i++) {
		if (match[i] == SIZE_MAX) {
			uids[ngone++] = v->msgs[i].uid;
			imap_msg_clear(&v->msgs[i]);
			continue;
		}
		v->msgs[k] = v->msgs[i];
		match[k++] = match[i];
	}
	v->count = k;
	if (s->qresync) {
		buf_puts(&s->out, "* VANISHED ");
		imap_view_write_seqset(&s->out, uids, ngone);
		buf_puts(&s->out, "\r\n");
	}
	free(uids);
}

static void
imap_view_fetch_line(struct imap_session *s, size_t i)
{
	const struct imap_msg *m = &s->view.msgs[i];

	buf_printf(&s->out, "* %zu FETCH (UID %u FLAGS (", i + 1, m->uid);
	imap_flags_write(&s->out, m->flags, m->keywords);
	buf_puts(&s->out, ")");
	if (s->condstore)
		buf_printf(&s->out, " MODSEQ (%llu)",
		    (unsigned long long)m->modseq);
	buf_puts(&s->out, ")\r\n");
}

/* Takes the new state of the known messages; marks in changed[] those
 * whose flags the client must hear about. */
static void
imap_view_update_known(struct imap_session *s, const size_t *match,
    struct store_mailbox *mb, bool *changed)
{
	struct imap_view *v = &s->view;

	for (size_t i = 0; i < v->count; i++) {
		struct imap_msg *m = &v->msgs[i];
		if (match[i] == SIZE_MAX) {
			m->expunged = true;
			continue;
		}
		struct store_msg *sm = &mb->msgs[match[i]];
		changed[i] = m->flags != sm->flags ||
		    !imap_view_same_keywords(m->keywords, sm->keywords) ||
		    (s->condstore && m->modseq != sm->modseq);
		if (changed[i])
			imap_view_note_keywords(s, sm->keywords);
		imap_view_take(m, sm);
	}
}

/* Appends the messages above the view's last UID. */
static void
imap_view_append_new(struct imap_session *s, struct store_mailbox *mb)
{
	struct imap_view *v = &s->view;
	uint32_t last = v->count ? v->msgs[v->count - 1].uid : 0;
	size_t first = mb->count, nnew;

	while (first > 0 && mb->msgs[first - 1].uid > last)
		first--;
	nnew = mb->count - first;
	if (nnew == 0)
		return;
	v->msgs = x_reallocarray(v->msgs, v->count + nnew, sizeof(*v->msgs));
	for (size_t j = first; j < mb->count; j++) {
		struct imap_msg *m = &v->msgs[v->count++];
		memset(m, 0, sizeof(*m));
		imap_view_note_keywords(s, mb->msgs[j].keywords);
		imap_view_take(m, &mb->msgs[j]);
	}
}

/* Loads the mailbox; one that vanished (deleted, renamed by someone else)
 * reads as empty. */
static int
imap_view_load(struct imap_session *s, struct store_mailbox *mb)
{
	char *err = NULL;

	memset(mb, 0, sizeof(*mb));
	if (store_mailbox_load(s->store, s->view.name, mb, &err) == 0)
		return 0;
	int e = errno;
	store_mailbox_free(mb);
	memset(mb, 0, sizeof(*mb));
	if (e == ENOENT) {
		free(err);
		return 0;
	}
	x_free(&s->error);
	s->error = err ? err : x_strdup("cannot load the mailbox");
	return -1;
}

/* ---- sync from the changes alone ---- */

/* Marks the vanished UIDs gone; with allow_expunge removes every message
 * marked so (also those of earlier syncs) and reports them. */
static void
imap_view_delta_expunge(struct imap_session *s,
    const struct store_changes *ch, bool allow_expunge)
{
	struct imap_view *v = &s->view;
	bool any = false;

	for (size_t i = 0; i < ch->nvanished; i++) {
		long at = imap_view_find_uid(v, ch->vanished[i]);
		if (at >= 0)
			v->msgs[at].expunged = true;
	}
	for (size_t i = 0; i < v->count && !any; i++)
		any = v->msgs[i].expunged;
	if (!allow_expunge || !any)
		return;
	size_t *match = x_calloc(v->count, sizeof(*match));
	for (size_t i = 0; i < v->count; i++)
		match[i] = v->msgs[i].expunged ? SIZE_MAX : i;
	imap_view_expunge(s, match);
	free(match);
}

/* Applies the changed and new messages; FETCH lines for the changed ones
 * after EXISTS, as a full sync sends them. */
static void
imap_view_delta_apply(struct imap_session *s, struct store_changes *ch)
{
	struct imap_view *v = &s->view;
	size_t old_count = v->count, nchanged = 0;
	size_t *changed = x_calloc(ch->count ? ch->count : 1,
	    sizeof(*changed));

	for (size_t j = 0; j < ch->count; j++) {
		struct store_msg *sm = &ch->msgs[j];
		uint32_t last = v->count ? v->msgs[v->count - 1].uid : 0;
		if (sm->uid > last) {
			v->msgs = x_reallocarray(v->msgs, v->count + 1,
			    sizeof(*v->msgs));
			struct imap_msg *m = &v->msgs[v->count++];
			memset(m, 0, sizeof(*m));
			imap_view_note_keywords(s, sm->keywords);
			imap_view_take(m, sm);
			continue;
		}
		long at = imap_view_find_uid(v, sm->uid);
		if (at < 0 || v->msgs[at].expunged)
			continue;
		struct imap_msg *m = &v->msgs[at];
		if (m->flags != sm->flags ||
		    !imap_view_same_keywords(m->keywords, sm->keywords) ||
		    (s->condstore && m->modseq != sm->modseq)) {
			imap_view_note_keywords(s, sm->keywords);
			changed[nchanged++] = (size_t)at;
		}
		/* The index does not know other programs' letters. */
		char *kept = m->path != NULL ?
		    store_path_keep_letters(sm->path, m->path) : NULL;
		if (kept != NULL) {
			free(sm->path);
			sm->path = kept;
		}
		imap_view_take(m, sm);
	}
	if (v->count != old_count)
		buf_printf(&s->out, "* %zu EXISTS\r\n", v->count);
	for (size_t i = 0; i < nchanged; i++)
		imap_view_fetch_line(s, changed[i]);
	free(changed);
}

/* 1 done, 0 a full sync is needed, -1 error. */
static int
imap_view_sync_delta(struct imap_session *s, bool allow_expunge)
{
	struct imap_view *v = &s->view;
	struct store_changes ch;
	char *err = NULL;

	int r = store_mailbox_changes(s->store, v->name, v->uidvalidity,
	    v->synced_modseq, &ch, &err);
	if (r <= 0) {
		/* A mailbox deleted or renamed since: the full sync shows
		 * it empty, without a warning per command. */
		if (r < 0 && errno != ENOENT)
			log_warnx("session=%llu event=imap-delta-failed "
			    "error=\"%s\"", (unsigned long long)s->id,
			    err ? err : "?");
		free(err);
		return 0;
	}
	imap_view_delta_expunge(s, &ch, allow_expunge);
	imap_view_delta_apply(s, &ch);
	if (ch.uidnext > v->uidnext)
		v->uidnext = ch.uidnext;
	if (ch.highestmodseq > v->highestmodseq)
		v->highestmodseq = ch.highestmodseq;
	if (ch.highestmodseq > v->synced_modseq)
		v->synced_modseq = ch.highestmodseq;
	store_changes_free(&ch);
	return 1;
}

int
imap_view_sync(struct imap_session *s, bool allow_expunge)
{
	struct imap_view *v = &s->view;
	struct store_mailbox mb;

	if (!s->selected || v->name == NULL)
		return 0;
	if (v->synced_modseq != 0 && imap_view_sync_delta(s, allow_expunge))
		return 0;
	if (imap_view_load(s, &mb) < 0)
		return -1;
	bool new_validity = mb.uidvalidity != 0 &&
	    mb.uidvalidity != v->uidvalidity;
	size_t *match = imap_view_match(v, &mb, new_validity);
	if (allow_expunge)
		imap_view_expunge(s, match);
	size_t old_count = v->count;
	bool *changed = x_calloc(old_count ? old_count : 1, sizeof(*changed));
	imap_view_update_known(s, match, &mb, changed);
	if (new_validity && allow_expunge) {
		v->uidvalidity = mb.uidvalidity;
		buf_printf(&s->out, "* OK [UIDVALIDITY %u] UIDs changed\r\n",
		    v->uidvalidity);
	}
	/* new messages wait while expunged ones of another UIDVALIDITY
	 * would sit between them */
	if (!new_validity || allow_expunge)
		imap_view_append_new(s, &mb);
	if (v->count != old_count)
		buf_printf(&s->out, "* %zu EXISTS\r\n", v->count);
	for (size_t i = 0; i < old_count; i++)
		if (changed[i])
			imap_view_fetch_line(s, i);
	if (mb.uidnext > v->uidnext)
		v->uidnext = mb.uidnext;
	if (mb.highestmodseq > v->highestmodseq)
		v->highestmodseq = mb.highestmodseq;
	v->synced_modseq = mb.highestmodseq;
	free(changed);
	free(match);
	store_mailbox_free(&mb);
	return 0;
}

/* ---- sequence sets ---- */

long
imap_view_find_uid(const struct imap_view *v, uint32_t uid)
{
	size_t lo = 0, hi = v->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < v->count && v->msgs[lo].uid == uid ? (long)lo : -1;
}

/* The first index whose UID is >= uid. */
static size_t
imap_view_lower_bound(const struct imap_view *v, uint32_t uid)
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

struct imap_view_span {
	size_t lo, hi;		/* indexes [lo, hi) */
};

static int
imap_view_span_cmp(const void *pa, const void *pb)
{
	const struct imap_view_span *a = pa, *b = pb;

	return a->lo < b->lo ? -1 : a->lo > b->lo;
}

/* The span of one range; false for a message number beyond EXISTS. */
static bool
imap_view_range_span(const struct imap_view *v,
    const struct imap_seq_range *r, bool by_uid, struct imap_view_span *sp)
{
	uint32_t a = r->first, b = r->last;

	if (by_uid) {
		uint32_t max = v->count ? v->msgs[v->count - 1].uid : 0;
		a = a == UINT32_MAX ? max : a;
		b = b == UINT32_MAX ? max : b;
	} else {
		a = a == UINT32_MAX ? (uint32_t)v->count : a;
		b = b == UINT32_MAX ? (uint32_t)v->count : b;
	}
	if (a > b) {
		uint32_t t = a;
		a = b;
		b = t;
	}
	if (!by_uid) {
		if (a == 0 || b > v->count)
			return false;
		sp->lo = a - 1;
		sp->hi = b;
		return true;
	}
	sp->lo = imap_view_lower_bound(v, a);
	sp->hi = b == UINT32_MAX ? v->count : imap_view_lower_bound(v, b + 1);
	if (sp->hi < sp->lo)
		sp->hi = sp->lo;
	return true;
}

static int
imap_view_size_cmp(const void *pa, const void *pb)
{
	size_t a = *(const size_t *)pa, b = *(const size_t *)pb;

	return a < b ? -1 : a > b;
}

/* "$": the saved UIDs that are still in the view. */
static void
imap_view_resolve_saved(const struct imap_view *v, size_t **idx, size_t *n)
{
	size_t *out = x_calloc(v->nsaved ? v->nsaved : 1, sizeof(*out));
	size_t k = 0;

	for (size_t i = 0; i < v->nsaved; i++) {
		long at = imap_view_find_uid(v, v->saved[i]);
		if (at >= 0)
			out[k++] = (size_t)at;
	}
	qsort(out, k, sizeof(*out), imap_view_size_cmp);
	size_t u = 0;
	for (size_t i = 0; i < k; i++)
		if (u == 0 || out[u - 1] != out[i])
			out[u++] = out[i];
	*idx = out;
	*n = u;
}

int
imap_view_resolve(const struct imap_view *v, const struct imap_seqset *set,
    bool by_uid, size_t **idx, size_t *n)
{
	*idx = NULL;
	*n = 0;
	if (set->is_saved) {
		imap_view_resolve_saved(v, idx, n);
		return 0;
	}
	struct imap_view_span *sp = x_calloc(set->count ? set->count : 1,
	    sizeof(*sp));
	for (size_t i = 0; i < set->count; i++) {
		if (!imap_view_range_span(v, &set->ranges[i], by_uid, &sp[i])) {
			free(sp);
			return -1;
		}
	}
	qsort(sp, set->count, sizeof(*sp), imap_view_span_cmp);
	size_t total = 0, end = 0;
	for (size_t i = 0; i < set->count; i++) {
		size_t lo = sp[i].lo > end ? sp[i].lo : end;
		if (sp[i].hi > lo) {
			total += sp[i].hi - lo;
			end = sp[i].hi;
		}
	}
	size_t *out = x_calloc(total ? total : 1, sizeof(*out));
	size_t k = 0;
	end = 0;
	for (size_t i = 0; i < set->count; i++) {
		size_t lo = sp[i].lo > end ? sp[i].lo : end;
		for (size_t j = lo; j < sp[i].hi; j++)
			out[k++] = j;
		if (sp[i].hi > end)
			end = sp[i].hi;
	}
	free(sp);
	*idx = out;
	*n = k;
	return 0;
}

void
imap_view_write_seqset(struct buf *out, const uint32_t *uids, size_t n)
{
	const char *sep = "";

	for (size_t i = 0; i < n; ) {
		uint32_t first = uids[i], last = first;
		size_t j = i + 1;
		while (j < n && (uids[j] == last ||
		    (last < UINT32_MAX && uids[j] == last + 1)))
			last = uids[j++];
		if (first == last)
			buf_printf(out, "%s%u", sep, first);
		else
			buf_printf(out, "%s%u:%u", sep, first, last);
		sep = ",";
		i = j;
	}
}
