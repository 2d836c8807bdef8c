/* The pure parts of the SMTP client: the reply parser, the EHLO
 * extension parser, and the encoder of message data for DATA and BDAT.
 * No I/O; every function here is safe on arbitrary input.
 *
 * Untrusted input: every reply line of a remote SMTP server. */
#ifndef QUEUE_SMTP_CLIENT_REPLY_H
#define QUEUE_SMTP_CLIENT_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* RFC 5321 4.5.3.1.5 allows 512 octets with CRLF; servers exceed it, so
 * accept up to this many octets per line (CRLF excluded), and at most
 * SMTP_REPLY_LINES_MAX lines per reply. The joined text keeps at most
 * SMTP_REPLY_TEXT_MAX octets (more is dropped, the reply stays valid). */
#define SMTP_REPLY_LINE_MAX	2048
#define SMTP_REPLY_LINES_MAX	100
#define SMTP_REPLY_TEXT_MAX	16384

/* "x.yyy.zzz" and its NUL. */
#define SMTP_ENHANCED_MAX	12

enum smtp_reply_step {
	SMTP_REPLY_MORE,	/* a continuation line: feed the next one */
	SMTP_REPLY_DONE,	/* the last line: the reply is complete */
	SMTP_REPLY_BAD		/* not a reply line; see error */
};

struct smtp_reply {
	unsigned code;		/* 200..599 once a line was accepted */
	char enhanced[SMTP_ENHANCED_MAX]; /* RFC 3463 code of the first
				 * line when its class matches code, or "" */
	struct buf text;	/* the lines' texts, without reply code and
				 * enhanced code, joined by '\n'; control
				 * characters (and DEL) are replaced by '?' */
	unsigned lines;
	bool done;		/* the last feed returned DONE or BAD */
	const char *error;	/* static text when BAD, else NULL */
};

void smtp_reply_init(struct smtp_reply *r);
/* Forgets the reply, keeps the memory. */
void smtp_reply_reset(struct smtp_reply *r);
void smtp_reply_free(struct smtp_reply *r);

/* Feeds one line without its CRLF (it may contain NUL octets). After DONE
 * or BAD the next feed starts a new reply. A line is "ddd", "ddd text" or
 * "ddd-text" (continuation); the first digit is 2 to 5, and every line of
 * a reply has the same code. Anything else, a line over
 * SMTP_REPLY_LINE_MAX, or more than SMTP_REPLY_LINES_MAX lines is BAD. */
enum smtp_reply_step smtp_reply_feed(struct smtp_reply *r, const char *line,
    size_t len);

/* The class digit: 2, 3, 4 or 5 (0 before a line was accepted). */
unsigned smtp_reply_class(const struct smtp_reply *r);

/* The RFC 3463 status for a reply: its enhanced code, or "C.0.0" from the
 * reply's class when the server gave none. out has SMTP_ENHANCED_MAX
 * octets. */
void smtp_reply_status(const struct smtp_reply *r, char *out);

/* The text with its lines joined by a space instead of '\n' (for logs and
 * the Diagnostic-Code of a DSN); allocated. */
char *smtp_reply_flat_text(const struct smtp_reply *r);

/* ---- EHLO extensions ---- */

#define SMTP_EXT_LIST(X) \
	X(PIPELINING,		"PIPELINING") \
	X(SIZE,			"SIZE") \
	X(EIGHTBITMIME,		"8BITMIME") \
	X(SMTPUTF8,		"SMTPUTF8") \
	X(CHUNKING,		"CHUNKING") \
	X(DSN,			"DSN") \
	X(STARTTLS,		"STARTTLS") \
	X(AUTH,			"AUTH") \
	X(ENHANCEDSTATUSCODES,	"ENHANCEDSTATUSCODES")

enum smtp_ext_bit {
#define SMTP_EXT_BIT(name, word) SMTP_EXT_BIT_##name,
	SMTP_EXT_LIST(SMTP_EXT_BIT)
#undef SMTP_EXT_BIT
	SMTP_EXT_COUNT
};

#define SMTP_EXT(name) (1u << SMTP_EXT_BIT_##name)

/* SASL mechanisms of the AUTH line that the client knows. */
#define SMTP_AUTH_PLAIN	(1u << 0)
#define SMTP_AUTH_LOGIN	(1u << 1)

struct smtp_ext {
	unsigned flags;		/* SMTP_EXT(...) bits */
	uint64_t size_max;	/* SIZE's argument; 0 when absent or none */
	unsigned auth;		/* SMTP_AUTH_* bits */
};

/* Reads the extensions of a successful EHLO reply (the first line is the
 * server's name and is skipped). Keywords are case-insensitive; unknown
 * ones and malformed arguments are ignored. Also takes the old "AUTH=..."
 * form. */
void smtp_ext_parse(const struct smtp_reply *r, struct smtp_ext *ext);

/* "PIPELINING SIZE ..." for logs: the keywords of flags, space separated,
 * into out of n octets. */
void smtp_ext_names(unsigned flags, char *out, size_t n);

/* ---- message data ---- */

/* Turns the octets of a message file into what goes on the wire: every
 * line ends in CRLF (a bare LF or bare CR becomes CRLF) and, for DATA,
 * a line starting with "." gets another one (RFC 5321 4.5.2). Works on
 * chunks of any size, split anywhere. */
struct smtp_encoder {
	bool dot_stuff;
	bool bol;		/* at the beginning of a line */
	bool cr;		/* the last input octet was a CR */
	uint64_t in, out;	/* octets fed and produced */
};

void smtp_encoder_init(struct smtp_encoder *e, bool dot_stuff);
/* Appends the encoding of n octets to out (at most 2 n + 2 octets). */
void smtp_encoder_feed(struct smtp_encoder *e, const void *p, size_t n,
    struct buf *out);
/* Appends the end: a CRLF when the data did not end with one, and for
 * DATA the ".\r\n" that ends it. */
void smtp_encoder_finish(struct smtp_encoder *e, struct buf *out);

#endif
