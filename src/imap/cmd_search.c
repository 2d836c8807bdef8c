/* SEARCH (stub while being written). */
#include "imap/imap_session.h"

void
imap_cmd_search(struct imap_session *s)
{
	imap_tagged(s, "NO", "[CANNOT] not yet");
}
