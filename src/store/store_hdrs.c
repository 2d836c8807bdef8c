/* The header search caches of a mailbox, read in UID order (store.h,
 * store_hdrs_open): SEARCH walks its messages in that order, so one
 * index scan serves a whole SEARCH, merged with the view as it goes.
 * Untrusted input: none here (the caches are checked by their reader,
 * mime_hdrcache_match). */
#include "store/store_int.h"

#include <errno.h>
#include <stdlib.h>

#include "core/xmalloc.h"

struct store_hdrs {
	struct store *st;
	sqlite3_stmt *stmt;	/* the store's cached statement */
	bool have_row;		/* stmt is on a row (uid) */
	bool done;		/* no rows left, or an error */
	bool failed;
	uint32_t uid;
};

struct store_hdrs *
store_hdrs_open(struct store *st, const char *mailbox, uint32_t first_uid,
    char **error_r)
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
	struct store_hdrs *h = x_calloc(1, sizeof(*h));
	h->st = st;
	h->stmt = store_sql(st, SQL_HDRSEARCH_LIST);
	store_bind_int(h->stmt, 1, mb.id);
	store_bind_int(h->stmt, 2, first_uid);
	return h;
}

int
store_hdrs_get(struct store_hdrs *h, uint32_t uid, const void **cache,
    size_t *len)
{
	*cache = NULL;
	*len = 0;
	while (!h->done && (!h->have_row || h->uid < uid)) {
		int rc = sqlite3_step(h->stmt);
		if (rc == SQLITE_ROW) {
			h->have_row = true;
			h->uid = (uint32_t)sqlite3_column_int64(h->stmt, 0);
			continue;
		}
		h->have_row = false;
		h->done = true;
		if (rc != SQLITE_DONE) {
			h->failed = true;
			log_warnx("store: reading search caches: %s",
			    sqlite3_errmsg(h->st->db));
		}
	}
	if (h->failed)
		return -1;
	if (!h->have_row || h->uid != uid)
		return 0;
	*cache = sqlite3_column_blob(h->stmt, 1);
	*len = (size_t)sqlite3_column_bytes(h->stmt, 1);
	return *cache != NULL ? 1 : 0;
}

void
store_hdrs_close(struct store_hdrs *h)
{
	if (h == NULL)
		return;
	sqlite3_reset(h->stmt);
	sqlite3_clear_bindings(h->stmt);
	free(h);
}
