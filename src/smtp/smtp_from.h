/* The addresses of the From: header field (RFC 5322 3.6.2), for checking
 * that an authenticated user sends as itself. Pure: no I/O.
 *
 * Untrusted input: the header section of a submitted message. */
#ifndef SMTP_FROM_H
#define SMTP_FROM_H

#include <stddef.h>

#include "core/strlist.h"

/* Finds every From: field in the header section hdr[0..n) (which may stop
 * anywhere: a partial header section is parsed as far as it goes),
 * unfolds it, and adds each mailbox's addr-spec ("local@domain", comments,
 * display names and angle brackets removed) to out. Group syntax
 * ("team: a@x, b@y;") yields its members. Returns the number of From:
 * fields seen. */
int smtp_from_addresses(const char *hdr, size_t n, struct strlist *out);

#endif
