/* IMAP keywords: kept in the index only (Maildir letters a-z are
 * Dovecot's, per folder, and left alone). A message's keywords are one
 * space-separated text in the order first set; each mailbox remembers
 * every keyword used in it (FLAGS, and the per-mailbox limit), with the
 * spelling it was first given, so that "$junk" and "$Junk" are one
 * keyword. Keywords come from clients: store_keyword_ok checks them. */
#include "store/store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/xmalloc.h"

int
store_kwset_load(struct store *st, int64_t mbox_id, struct store_kwset *ks,
    char **error_r)
{
	sqlite3_stmt *s = store_sql(st, SQL_KW_LIST);
	size_t cap = 0;
	int rc;

	memset(ks, 0, sizeof(*ks));
	ks->mbox_id = mbox_id;
	store_bind_int(s, 1, mbox_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (ks->n == cap) {
			cap = cap ? cap * 2 : 16;
			ks->v = x_reallocarray(ks->v, cap, sizeof(*ks->v));
		}
		ks->v[ks->n++] = store_column_str(s, 0);
	}
	if (rc != SQLITE_DONE)
		store_db_error(st, error_r);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

void
store_kwset_free(struct store_kwset *ks)
{
	for (size_t i = 0; i < ks->n; i++)
		x_free(&ks->v[i]);
	x_free(&ks->v);
	ks->n = 0;
}

int
store_kwset_canon(struct store *st, struct store_kwset *ks, const char *kw,
    bool add, const char **out, char **error_r)
{
	for (size_t i = 0; i < ks->n; i++) {
		if (strcasecmp(ks->v[i], kw) == 0) {
			*out = ks->v[i];
			return 1;
		}
	}
	if (!add)
		return 0;
	if (!store_keyword_ok(kw)) {
		store_fail(error_r, EINVAL, "invalid keyword");
		return -1;
	}
	if (ks->n >= STORE_KEYWORDS_MAX) {
		store_fail(error_r, ENOSPC, "too many keywords in mailbox");
		return -1;
	}
	sqlite3_stmt *s = store_sql(st, SQL_KW_ADD);
	store_bind_int(s, 1, ks->mbox_id);
	store_bind_str(s, 2, kw);
	if (store_run(st, s, error_r) < 0)
		return -1;
	ks->v = x_reallocarray(ks->v, ks->n + 1, sizeof(*ks->v));
	ks->v[ks->n] = x_strdup(kw);
	*out = ks->v[ks->n++];
	return 1;
}

int
store_kwset_canon_all(struct store *st, struct store_kwset *ks,
    const char *const *kws, size_t n, bool add, const char ***out,
    size_t *nout, char **error_r)
{
	*out = x_calloc(n + 1, sizeof(**out));
	*nout = 0;
	for (size_t i = 0; i < n; i++) {
		const char *canon;
		int r = store_kwset_canon(st, ks, kws[i], add, &canon,
		    error_r);
		if (r < 0)
			return -1;
		bool dup = false;
		for (size_t j = 0; r > 0 && j < *nout; j++)
			dup |= (*out)[j] == canon;
		if (r > 0 && !dup)
			(*out)[(*nout)++] = canon;
	}
	return 0;
}

/* The next word of a list at *p (advanced past it), its length in *len;
 * NULL at the end. */
static const char *
store_kwlist_next(const char **p, size_t *len)
{
	const char *s = *p;

	while (*s == ' ')
		s++;
	if (*s == '\0')
		return NULL;
	const char *e = strchr(s, ' ');
	*len = e != NULL ? (size_t)(e - s) : strlen(s);
	*p = s + *len;
	return s;
}

static bool
store_kw_among(const char *w, size_t len, const char *const *kws,
    size_t nkws)
{
	for (size_t i = 0; i < nkws; i++)
		if (strlen(kws[i]) == len && strncasecmp(kws[i], w, len) == 0)
			return true;
	return false;
}

static bool
store_kwlist_has(const char *list, const char *kw)
{
	const char *p = list != NULL ? list : "", *w;
	size_t len;

	while ((w = store_kwlist_next(&p, &len)) != NULL)
		if (store_kw_among(w, len, &kw, 1))
			return true;
	return false;
}

static void
store_kwlist_add(struct buf *b, const char *w, size_t len)
{
	if (b->len > 0)
		buf_putc(b, ' ');
	buf_append(b, w, len);
}

static char *
store_kwlist_take(struct buf *b)
{
	char *s = b->len > 0 ? x_strdup(buf_cstr(b)) : NULL;

	buf_free(b);
	return s;
}

int
store_kwlist_canon(struct store *st, struct store_kwset *ks,
    const char *list, char **out, char **error_r)
{
	struct buf b = BUF_INIT;
	const char *p = list != NULL ? list : "", *w, *canon;
	size_t len;

	while ((w = store_kwlist_next(&p, &len)) != NULL) {
		char *kw = x_strndup(w, len);
		int r = store_kwset_canon(st, ks, kw, true, &canon, error_r);
		x_free(&kw);
		if (r < 0) {
			buf_free(&b);
			return -1;
		}
		if (!store_kwlist_has(buf_cstr(&b), canon))
			store_kwlist_add(&b, canon, strlen(canon));
	}
	*out = store_kwlist_take(&b);
	return 0;
}

/* SET keeps the kept keywords where they were: the order first set. */
char *
store_kwlist_apply(const char *list, enum store_flag_op op,
    const char *const *kws, size_t nkws)
{
	struct buf b = BUF_INIT;
	const char *p = list != NULL ? list : "", *w;
	size_t len;

	while ((w = store_kwlist_next(&p, &len)) != NULL) {
		bool among = store_kw_among(w, len, kws, nkws);
		if (op == STORE_FLAGS_ADD || (op == STORE_FLAGS_SET && among) ||
		    (op == STORE_FLAGS_REMOVE && !among))
			store_kwlist_add(&b, w, len);
	}
	for (size_t i = 0; op != STORE_FLAGS_REMOVE && i < nkws; i++)
		if (!store_kwlist_has(list, kws[i]))
			store_kwlist_add(&b, kws[i], strlen(kws[i]));
	return store_kwlist_take(&b);
}

bool
store_kwlist_equal(const char *a, const char *b)
{
	return strcmp(a != NULL ? a : "", b != NULL ? b : "") == 0;
}

int
store_mailbox_keywords(struct store *st, const char *mailbox, char ***out,
    size_t *n, char **error_r)
{
	struct store_folder *f;
	struct store_mbox mb;
	struct store_kwset ks = { 0 };

	*out = NULL;
	*n = 0;
	if ((f = store_folder_open(st, mailbox, error_r)) == NULL)
		return -1;
	int r = store_mbox_find(st, f->name, &mb, error_r);
	if (r > 0)
		r = store_kwset_load(st, mb.id, &ks, error_r);
	if (r < 0) {
		store_kwset_free(&ks);
		return -1;
	}
	*out = ks.v;
	*n = ks.n;
	return 0;
}

void
store_keywords_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x_free(&v[i]);
	free(v);
}
