/* Mailbox names on the wire: modified UTF-7 (RFC 3501 5.1.3) for IMAP4rev1
 * clients, UTF-8 once IMAP4rev2 or UTF8=ACCEPT is enabled (RFC 9051 5.1,
 * RFC 6855). Inside correo names are UTF-8.
 *
 * Untrusted input: mailbox names from clients. */
#ifndef IMAP_UTF7_H
#define IMAP_UTF7_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

/* Decodes modified UTF-7 into UTF-8 appended to out. -1 for a name that
 * is not valid modified UTF-7 (bad base64, a "&" never closed, an
 * encoded ASCII character, bad surrogates, 8-bit octets); out is then
 * unspecified. */
int imap_utf7_decode(const char *in, size_t len, struct buf *out);

/* Encodes UTF-8 (valid, see imap_utf8_is_valid) as modified UTF-7
 * appended to out. */
void imap_utf7_encode(const char *in, size_t len, struct buf *out);

/* True for well-formed UTF-8 (no overlongs, surrogates or code points
 * above U+10FFFF). */
bool imap_utf8_is_valid(const char *s, size_t len);

#endif
