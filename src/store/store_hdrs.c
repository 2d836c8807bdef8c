/* The header search caches of a mailbox, read in UID order (store.h,
 * store_hdrs_open): SEARCH walks its messages in that order, so a few
 * index reads serve a whole SEARCH, merged with the view as it goes.
 * Rows are copied out a batch at a time, so no statement stays open
 * between calls (SEARCH may compute and keep a summary in between).
 * A row without a cache (indexed before schema version 3) gets one made
 * from its file, kept in the index at close: the first SEARCH after an
 * upgrade reads the files, the next ones do not.
 * Untrusted input: none here (the caches are checked by their reader,
 * mime_hdrcache_match). */
#include "store/store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"

#define STORE_HDRS_BATCH	256
#define STORE_HDRS_FILL_MAX	4096	/* caches made per SEARCH, kept */

struct store_hdrs_fill {
	uint32_t uid;
	char *cache;
	size_t len;
};

struct store_hdrs_row {
	uint32_t uid;
	size_t off, len;	/* in buf; len 0: no cache */
};

struct store_hdrs {
	struct store *st;
	char *name;		/* the mailbox's folder name */
	int64_t mbox_id;
	struct store_hdrs_fill *fills;	/* made from files, to keep */
	size_t nfills;
	bool fill_failed;	/* stop trying for this SEARCH */
	struct store_hdrs_row rows[STORE_HDRS_BATCH];
	size_t nrows, at;	/* rows read, the next one to look at */
	unsigned char *buf;
	size_t buflen, bufcap;
	uint32_t next_uid;	/* the first UID of the next batch */
	bool done;		/* no rows after this batch */
	bool failed;
};

struct store_hdrs *
store_hdrs_open(struct store *st, const char *mailbox, uint32_t uidvalidity,
    uint32_t first_uid, char **error_r)
{
	const char *name = store_name_resolve(st, mailbox, error_r);
	struct store_mbox mb;

	if (name == NULL)
		return NULL;
	int r = store_mbox_find(st, name, &mb, error_r);
	if (r <= 0) {
		if (r == 0)
			store_fail(error_r, ENOENT, "no such mailbox");
		return NULL;
	}
	if (mb.uidvalidity != uidvalidity) {
		store_fail(error_r, ESTALE, "UIDVALIDITY changed");
		return NULL;
	}
	struct store_hdrs *h = x_calloc(1, sizeof(*h));
	h->st = st;
	h->name = x_strdup(name);
	h->mbox_id = mb.id;
	h->next_uid = first_uid;
	return h;
}

static void
store_hdrs_keep(struct store_hdrs *h, sqlite3_stmt *s)
{
	struct store_hdrs_row *row = &h->rows[h->nrows++];
	const void *blob = sqlite3_column_blob(s, 1);
	size_t len = blob != NULL ? (size_t)sqlite3_column_bytes(s, 1) : 0;

	row->uid = (uint32_t)sqlite3_column_int64(s, 0);
	row->off = h->buflen;
	row->len = len;
	if (len == 0)
		return;
	if (h->buflen + len > h->bufcap) {
		size_t cap = h->bufcap ? h->bufcap : 16384;
		while (cap < h->buflen + len)
			cap *= 2;
		h->buf = x_realloc(h->buf, cap);
		h->bufcap = cap;
	}
	memcpy(h->buf + h->buflen, blob, len);
	h->buflen += len;
}

/* Reads the next batch: false when there is none (or on an error). */
static bool
store_hdrs_fill(struct store_hdrs *h)
{
	sqlite3_stmt *s = store_sql(h->st, SQL_HDRSEARCH_LIST);
	int rc;

	h->nrows = h->at = h->buflen = 0;
	if (h->done)
		return false;
	store_bind_int(s, 1, h->mbox_id);
	store_bind_int(s, 2, h->next_uid);
	store_bind_int(s, 3, STORE_HDRS_BATCH);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		store_hdrs_keep(h, s);
	if (rc != SQLITE_DONE) {
		h->failed = true;
		log_warnx("store: reading search caches: %s",
		    sqlite3_errmsg(h->st->db));
	}
	sqlite3_reset(s);
	if (h->nrows < STORE_HDRS_BATCH || h->failed ||
	    h->rows[h->nrows - 1].uid == UINT32_MAX)
		h->done = true;
	else
		h->next_uid = h->rows[h->nrows - 1].uid + 1;
	return h->nrows > 0;
}

/* A cache made from uid's file: 1 with it, 0 when there is none. */
static int
store_hdrs_make(struct store_hdrs *h, uint32_t uid, const void **cache,
    size_t *len)
{
	char *err = NULL, *made;
	size_t n;

	if (h->fill_failed || h->nfills == STORE_HDRS_FILL_MAX)
		return 0;
	const struct store_folder *f = store_folder_cached(h->st, h->name,
	    &err);
	if (f == NULL || store_hdrcache_compute(h->st, f, h->mbox_id, uid,
	    &made, &n, &err) < 0) {
		/* An expunged message, most likely: the caller reads
		 * (and fails on) the file itself. */
		if (f == NULL)
			h->fill_failed = true;
		free(err);
		return 0;
	}
	if (made == NULL)
		return 0;
	if (h->nfills == 0)
		h->fills = x_calloc(STORE_HDRS_FILL_MAX, sizeof(*h->fills));
	struct store_hdrs_fill *fl = &h->fills[h->nfills++];
	fl->uid = uid;
	fl->cache = made;
	fl->len = n;
	*cache = made;
	*len = n;
	return 1;
}

/* Keeps the caches made in the index: only a cache, so a failure is
 * logged and the next SEARCH makes them again. */
static void
store_hdrs_keep_fills(struct store_hdrs *h)
{
	char *err = NULL;
	int r = 0;

	if (store_begin(h->st, &err) < 0)
		goto done;
	for (size_t i = 0; i < h->nfills && r == 0; i++) {
		sqlite3_stmt *s = store_sql(h->st, SQL_HDRSEARCH_SET);
		store_bind_int(s, 1, h->mbox_id);
		store_bind_int(s, 2, h->fills[i].uid);
		store_bind_blob(s, 3, h->fills[i].cache, h->fills[i].len);
		r = store_run(h->st, s, &err);
	}
	(void)store_finish(h->st, r, &err);
done:
	if (err != NULL)
		log_warnx("store: keeping search caches: %s", err);
	free(err);
}

int
store_hdrs_get(struct store_hdrs *h, uint32_t uid, const void **cache,
    size_t *len)
{
	*cache = NULL;
	*len = 0;
	for (;;) {
		while (h->at < h->nrows && h->rows[h->at].uid < uid)
			h->at++;
		if (h->at < h->nrows || h->failed || !store_hdrs_fill(h))
			break;
	}
	if (h->failed)
		return -1;
	if (h->at == h->nrows || h->rows[h->at].uid != uid)
		return 0;
	if (h->rows[h->at].len == 0)
		return store_hdrs_make(h, uid, cache, len);
	*cache = h->buf + h->rows[h->at].off;
	*len = h->rows[h->at].len;
	return 1;
}

void
store_hdrs_close(struct store_hdrs *h)
{
	if (h == NULL)
		return;
	if (h->nfills > 0)
		store_hdrs_keep_fills(h);
	for (size_t i = 0; i < h->nfills; i++)
		free(h->fills[i].cache);
	free(h->fills);
	free(h->buf);
	free(h->name);
	free(h);
}
