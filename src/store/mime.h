/* MIME structure of stored messages (GMime 3): what IMAP needs from a
 * message file without knowing IMAP's session: the ENVELOPE, BODY and
 * BODYSTRUCTURE texts (cached in the index by the store), where a section
 * lies in the file, decoded content for BINARY, and decoded text for
 * SEARCH.
 *
 * Message files have CRLF line ends (sizes and offsets are octets of the
 * file as stored); a file with bare LFs is still served without crashing.
 *
 * Untrusted input: message files are written by strangers (SMTP); every
 * function here must survive any octets, any nesting (depth is limited),
 * any size. Blocking (reads files): call from the thread pool. */
#ifndef STORE_MIME_H
#define STORE_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/buf.h"

/* Deeper MIME nesting is served as an opaque leaf (application/octet-
 * stream-like text/plain part with its raw octets). */
#define MIME_DEPTH_MAX		32

/* Must be called once before any other function (GMime init); safe to
 * call more than once. */
void mime_init(void);

struct mime_summary {
	char *envelope;		/* RFC 9051 7.5.2 ENVELOPE: "(date subject
				 * (from) (sender) (reply-to) (to) (cc)
				 * (bcc) in-reply-to message-id)" */
	char *body;		/* BODY: the non-extensible structure */
	char *bodystructure;	/* BODYSTRUCTURE with extension data */
	time_t sentdate;	/* the Date: header; 0 when missing/invalid */
	char *hdrcache;		/* mime_hdrcache_make of the top-level header;
				 * NULL when not made (too big) */
	size_t hdrcache_len;
};

/* Computes the summary of the message in the open file fd (read from
 * offset 0; the fd's offset may move). Strings use IMAP quoting rules
 * (mime_imap_string), NIL where RFC 9051 says. Headers are decoded as the
 * RFC says the ENVELOPE is not: values appear as in the message (RFC 2047
 * encoded words left encoded), 8-bit UTF-8 passed through, anything else
 * sent as a literal. 0, or -1 with *error_r (allocated) when the file
 * cannot be read. */
int mime_summarize(int fd, struct mime_summary *out, char **error_r);
void mime_summary_free(struct mime_summary *s);

/* Writes s (len octets) to out as an IMAP string: a quoted string when it
 * is short ASCII/UTF-8 without CR, LF, NUL, '"' or '\\' problems (quotes
 * and backslashes escaped), else a literal {N}\r\n...; NIL when s is
 * NULL. */
void mime_imap_string(struct buf *out, const char *s, size_t len);

/* ---- sections (RFC 9051 6.4.5) ---- */

enum mime_section {
	MIME_SECTION_ALL,	/* the whole part: for a message/rfc822 part
				 * or the top level, header and body */
	MIME_SECTION_HEADER,	/* header of the message (top level, or of
				 * the message/rfc822 part) with the blank
				 * line after it */
	MIME_SECTION_TEXT,	/* body of that message */
	MIME_SECTION_MIME	/* the MIME header of a part (part != top) */
};

struct mime_range {
	uint64_t offset;
	uint64_t length;
};

/* Finds the octets of a section in the message file: part is the path of
 * part numbers (nparts 0: the message itself). Follows RFC 9051: part 1
 * of a non-multipart message is its body; the parts of a
 * message/rfc822 part are those of the encapsulated message; HEADER and
 * TEXT of a non-message part refer to ... nothing (empty range). A part
 * that does not exist gives an empty range (the server then sends ""),
 * not an error. 0, or -1 with *error_r for an unreadable file. */
int mime_section_range(int fd, const uint32_t *part, size_t nparts,
    enum mime_section which, struct mime_range *out, char **error_r);

/* Appends to out the header lines of hdr (a header section, len octets,
 * CRLF lines, possibly folded) whose field names are (not = false) or are
 * not (not = true) among fields (case-insensitive), followed by the blank
 * line (CRLF), as HEADER.FIELDS[.NOT] sends them. */
void mime_header_filter(const char *hdr, size_t len,
    const char *const *fields, size_t nfields, bool not, struct buf *out);

/* BINARY[part] (RFC 3516): the part's content with its
 * Content-Transfer-Encoding (base64, quoted-printable, 7bit, 8bit,
 * binary) undone, appended to out. nparts 0: the whole message as
 * stored. -1 with errno EINVAL for an unknown transfer encoding (IMAP:
 * UNKNOWN-CTE), ENOENT for no such part or a multipart (RFC 3516 says
 * BINARY applies to leaf parts), and *error_r. */
int mime_section_decode(int fd, const uint32_t *part, size_t nparts,
    struct buf *out, char **error_r);

/* ---- search (RFC 9051 6.4.4) ---- */

/* Does the message contain needle (UTF-8, case-insensitive compare of
 * the Unicode simple case folding of both, at least ASCII and Latin-1
 * letters) in the decoded text of its parts? text = false: body parts
 * only (BODY); text = true: headers too (TEXT). Text parts are decoded
 * from their transfer encoding and charset to UTF-8; encoded words in
 * headers are decoded. 0 with *match, or -1 with *error_r. */
int mime_search_body(int fd, const char *needle, size_t len, bool text,
    bool *match, char **error_r);

/* Does a header field named field (case-insensitive) of the top-level
 * header contain needle (as above, after RFC 2047 decoding)? An empty
 * needle matches any message that has the field. For From/To/Cc/Bcc
 * the whole decoded value is searched (display names and addresses). */
int mime_search_header(int fd, const char *field, const char *needle,
    size_t len, bool *match, char **error_r);

/* The header search cache: the decoded and case-folded values of the
 * top-level From, To, Cc, Bcc and Subject fields, made when the summary
 * is (mime_summarize), kept in the index, so that SEARCH FROM/TO/CC/BCC/
 * SUBJECT (and HEADER of those fields) read no message file. A binary
 * string: a version octet, then per field occurrence its number (one
 * octet), the value's length (4 octets, little-endian) and the value.
 * NULL when the values would exceed MIME_HDRCACHE_MAX octets. */
#define MIME_HDRCACHE_MAX	16384
char *mime_hdrcache_make(const char *hdr, size_t len, size_t *len_r);

/* What mime_search_header(field, needle) answers, from a cache: 1 match,
 * 0 no match, -1 when the cache cannot tell (a field it does not keep, a
 * cache of another version or damaged): read the file then. */
int mime_hdrcache_match(const void *cache, size_t len, const char *field,
    const char *needle, size_t nlen);

#endif
