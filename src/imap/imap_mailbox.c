/* Mailbox names and mailbox commands (stub, being written). */
#include "imap/imap_session.h"

char *
imap_mailbox_from_client(struct imap_session *s,
    const struct imap_string *arg, struct buf *err)
{
	(void)arg;
	buf_printf(err, "%s NO [CANNOT] not yet\r\n", s->cmd.tag);
	return NULL;
}

void
imap_mailbox_to_client(struct imap_session *s, const char *name,
    struct buf *out)
{
	(void)s;
	buf_printf(out, "\"%s\"", name);
}

#define STUB(fn) void fn(struct imap_session *s) \
	{ imap_tagged(s, "NO", "[CANNOT] not yet"); }
STUB(imap_cmd_select)
STUB(imap_cmd_create)
STUB(imap_cmd_delete)
STUB(imap_cmd_rename)
STUB(imap_cmd_subscribe)
STUB(imap_cmd_list)
STUB(imap_cmd_status)
STUB(imap_cmd_close)
STUB(imap_cmd_check)
STUB(imap_cmd_noop)
