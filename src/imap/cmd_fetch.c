/* FETCH and UID FETCH (RFC 9051 6.4.5, RFC 3516 BINARY, RFC 7162
 * CONDSTORE/QRESYNC). Stub while the real one is written. */
#include <stdbool.h>

#include "imap/imap_session.h"

void
imap_cmd_fetch(struct imap_session *s)
{
	imap_tagged(s, "NO", "[CANNOT] not yet");
}

bool
imap_fetch_continue(struct imap_session *s)
{
	(void)s;
	return false;
}

void
imap_fetch_free(struct imap_session *s)
{
	(void)s;
}
