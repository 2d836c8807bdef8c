/* The selected mailbox as one IMAP session sees it (stub, being written). */
#include <stdlib.h>

#include "core/xmalloc.h"
#include "imap/imap_session.h"

void
imap_view_free(struct imap_view *v)
{
	(void)v;
}

int
imap_view_sync(struct imap_session *s, bool allow_expunge)
{
	(void)s;
	(void)allow_expunge;
	return 0;
}

void
imap_flags_write(struct buf *out, unsigned flags, const char *keywords)
{
	(void)out;
	(void)flags;
	(void)keywords;
}

int
imap_view_resolve(const struct imap_view *v, const struct imap_seqset *set,
    bool by_uid, size_t **idx, size_t *n)
{
	(void)v;
	(void)set;
	(void)by_uid;
	*idx = NULL;
	*n = 0;
	return 0;
}

long
imap_view_find_uid(const struct imap_view *v, uint32_t uid)
{
	(void)v;
	(void)uid;
	return -1;
}

void
imap_view_write_seqset(struct buf *out, const uint32_t *uids, size_t n)
{
	(void)out;
	(void)uids;
	(void)n;
}

void
imap_view_send_flags(struct imap_session *s)
{
	(void)s;
}

void
imap_view_note_keywords(struct imap_session *s, const char *keywords)
{
	(void)s;
	(void)keywords;
}
