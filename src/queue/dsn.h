/* Delivery status notifications (DSN): the parameters of the SMTP DSN
 * extension (RFC 3461, with the "utf-8" address type of RFC 6533), the DSN
 * state of one recipient as a line of the queue's envelope file, and the
 * report sent back to the envelope sender (RFC 3464 multipart/report).
 *
 * Untrusted input: MAIL/RCPT parameter values as SMTP clients sent them,
 * envelope lines read back from disk, the remote server's reply text, and
 * the original message copied into a report.
 *
 * Every function that returns int returns 0, or -1 with *error_r set to a
 * static English sentence fit for a 501 reply or a log line. Lengths are
 * in octets; input strings need not be NUL-terminated unless said. */
#ifndef QUEUE_DSN_H
#define QUEUE_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/buf.h"

/* NOTIFY bits. The values are those of SMTP_NOTIFY_* in smtp/smtp_parse.h,
 * so the SMTP server's bits can be stored as they are. 0 means the client
 * gave no NOTIFY (then failures and delays are reported). */
#define DSN_NOTIFY_NEVER	0x1
#define DSN_NOTIFY_SUCCESS	0x2
#define DSN_NOTIFY_FAILURE	0x4
#define DSN_NOTIFY_DELAY	0x8

/* RET=. Same order as enum smtp_dsn_ret. */
enum dsn_ret { DSN_RET_UNSET, DSN_RET_FULL, DSN_RET_HDRS };

/* What happened to a recipient (RFC 3464 2.3.3 Action). */
enum dsn_action {
	DSN_ACTION_NONE,	/* no outcome yet: still queued */
	DSN_ACTION_FAILED,
	DSN_ACTION_DELAYED,
	DSN_ACTION_DELIVERED,
	DSN_ACTION_RELAYED,	/* passed to a server without DSN */
	DSN_ACTION_EXPANDED	/* delivered to an alias or list */
};

#define DSN_ENVID_MAX	100	/* ENVID xtext as sent (RFC 3461 4.4) */
#define DSN_ORCPT_MAX	500	/* ORCPT value as sent (RFC 3461 4.2) */
#define DSN_ORCPT_STORED_MAX 900 /* ORCPT in its stored form */
#define DSN_ADDR_MAX	256	/* a recipient or sender address */
#define DSN_DIAG_MAX	900	/* stored diagnostic text */
#define DSN_STATUS_MAX	9	/* "5.999.999" */
#define DSN_LINE_MAX	8192	/* an envelope line, without its newline */
/* RET=FULL returns the whole original up to this size, else only its
 * header section (see struct dsn_report.return_max). */
#define DSN_RETURN_MAX	(10u * 1024 * 1024)

/* ---- xtext (RFC 3461 4) ------------------------------------------------ */

/* True when s[0..n) is xtext: octets 33-126 but "+" and "=", and "+"
 * followed by two upper-case hex digits. The empty string is xtext. */
bool dsn_xtext_valid(const char *s, size_t n);
/* Appends the decoded octets (any value, NUL included) to out. On error
 * out is left as it was. */
int dsn_xtext_decode(const char *s, size_t n, struct buf *out,
    const char **error_r);
/* Appends the shortest xtext of p[0..n) to out: "+XX" exactly for octets
 * outside 33-126 and for "+" and "=". */
void dsn_xtext_encode(const void *p, size_t n, struct buf *out);

/* ---- MAIL and RCPT parameters (RFC 3461 4) --------------------------- */

/* NOTIFY=: "NEVER" alone, or a comma-separated list of SUCCESS, FAILURE,
 * DELAY without repeats, case-insensitive. *notify_r gets DSN_NOTIFY_*. */
int dsn_notify_parse(const char *s, size_t n, unsigned *notify_r,
    const char **error_r);
/* True for bits that dsn_notify_parse() can return (not 0). */
bool dsn_notify_valid(unsigned notify);
/* Appends the NOTIFY value for valid bits, e.g. "SUCCESS,FAILURE";
 * appends nothing for 0. */
void dsn_notify_format(unsigned notify, struct buf *out);

/* RET=: FULL or HDRS, case-insensitive. */
int dsn_ret_parse(const char *s, size_t n, enum dsn_ret *ret_r,
    const char **error_r);
/* "FULL", "HDRS", or "" for DSN_RET_UNSET. */
const char *dsn_ret_name(enum dsn_ret ret);

/* ENVID=: xtext of at most DSN_ENVID_MAX octets that decodes to printable
 * ASCII (space allowed). out gets the stored form: the same value in its
 * shortest xtext, NUL-terminated, never longer than the input. */
int dsn_envid_parse(const char *s, size_t n, char out[DSN_ENVID_MAX + 1],
    const char **error_r);

/* ORCPT=: addr-type ";" address, at most DSN_ORCPT_MAX octets.
 * - "utf-8" (RFC 6533): the address as utf-8-addr-xtext (printable ASCII
 *   but "+", "=", "\", and \x{HEX} for the rest); when smtputf8 is true
 *   also utf-8-addr-unitext (raw UTF-8). "+XX" escapes are accepted too.
 *   It must decode to UTF-8 without control characters.
 * - any other type (normally "rfc822"): xtext decoding to printable ASCII.
 * Appends the stored form to out: the type in lower case, ";", and the
 * address in its shortest xtext (utf-8-addr-xtext for "utf-8"): printable
 * ASCII without spaces, at most DSN_ORCPT_STORED_MAX octets, and valid as
 * an ORCPT parameter to pass on to the next server. On error out is left
 * as it was. */
int dsn_orcpt_parse(const char *s, size_t n, bool smtputf8, struct buf *out,
    const char **error_r);
/* Checks a stored form (it must be exactly what dsn_orcpt_parse gives)
 * and appends its type (lower case) to type and the decoded address to
 * addr (printable ASCII, or UTF-8 for "utf-8"). Either may be NULL. */
int dsn_orcpt_decode(const char *stored, size_t n, struct buf *type,
    struct buf *addr, const char **error_r);

/* ---- actions and status codes ---------------------------------------- */

/* "failed", "delayed", "delivered", "relayed", "expanded"; "" for NONE. */
const char *dsn_action_name(enum dsn_action action);
/* The names above, case-insensitive; NONE is not accepted. */
int dsn_action_parse(const char *s, size_t n, enum dsn_action *action_r,
    const char **error_r);
/* True for an RFC 3463 status code: 2, 4 or 5, ".", 1-3 digits, ".",
 * 1-3 digits, NUL-terminated. */
bool dsn_status_valid(const char *status);

/* Appends s[0..n) as one line of text for a report or the queue: control
 * characters (CR and LF included) become single spaces, runs of spaces
 * one, leading and trailing spaces are dropped; bytes that are not valid
 * UTF-8 (or, when utf8 is false, any non-ASCII byte) become "?". At most
 * max octets are appended, never a partial UTF-8 sequence. */
void dsn_text_clean(const char *s, size_t n, bool utf8, size_t max,
    struct buf *out);

/* ---- a recipient's DSN state, one line of the envelope file ---------- */

struct dsn_rcpt {
	char *addr;		/* forward path without brackets (UTF-8 ok) */
	unsigned notify;	/* DSN_NOTIFY_*; 0 when not given */
	char *orcpt;		/* stored form (dsn_orcpt_parse), or NULL */
	enum dsn_action action;
	char status[DSN_STATUS_MAX + 1]; /* "5.1.1"; "" derives one */
	int smtp_code;		/* the remote server's reply code, or 0 */
	char *remote_mta;	/* host name of that server, or NULL */
	/* With smtp_code: the reply text after the code, lines of a
	 * multi-line reply joined with spaces ("5.1.1 User unknown").
	 * Without: our own reason ("Host not found"). Or NULL. */
	char *diagnostic;
	time_t last_attempt;	/* 0: never tried */
	time_t retry_until;	/* when delayed: end of retries, or 0 */
	bool delay_notified;	/* a delay notice was sent already */
};

/* Frees the strings and zeroes r. */
void dsn_rcpt_free(struct dsn_rcpt *r);

/* Appends one line (no newline) of at most DSN_LINE_MAX octets: space-
 * separated key=value tokens of printable ASCII, every client- or
 * server-supplied string in xtext, e.g.
 *   rcpt=bob@example.org notify=FAILURE,DELAY orcpt=rfc822;bob@example.org
 *   action=failed status=5.1.1 code=550 mta=mx.example.org
 *   diag=5.1.1+20User+20unknown last=1767225600
 * The diagnostic is cleaned (dsn_text_clean, UTF-8 kept, DSN_DIAG_MAX).
 * Fails, appending nothing, when addr is missing or not a valid address
 * or another field is out of range (the same checks as the parser). */
int dsn_rcpt_format(const struct dsn_rcpt *r, struct buf *out,
    const char **error_r);
/* Parses a line written by dsn_rcpt_format (without its newline) into *r,
 * which the caller frees with dsn_rcpt_free. Tokens in any order; unknown
 * keys are skipped (for lines from newer versions), repeated ones are an
 * error. On error *r is zeroed. */
int dsn_rcpt_parse(const char *line, size_t n, struct dsn_rcpt *r,
    const char **error_r);

/* Whether the envelope sender gets a notice about a recipient whose
 * outcome is action: never for the null sender (NULL, "" or "<>") or
 * NOTIFY=NEVER; failures and delays when NOTIFY was not given or asked for
 * them; delivered, relayed and expanded only with NOTIFY=SUCCESS. */
bool dsn_should_notify(const char *sender, unsigned notify,
    enum dsn_action action);

/* ---- the report (RFC 3464, RFC 6522, RFC 6533) ----------------------- */

struct dsn_report {
	const char *reporting_mta;	/* our host name */
	const char *sender;	/* envelope sender without brackets */
	const char *envid;	/* stored ENVID, or NULL */
	enum dsn_ret ret;
	time_t arrival;		/* when we accepted the message; 0 unknown */
	const char *queue_id;	/* letters and digits, or NULL */
	/* The original was sent with SMTPUTF8: use message/global,
	 * message/global-headers and message/global-delivery-status. Also
	 * chosen when the sender or a recipient is not ASCII. */
	bool smtputf8;
	const struct dsn_rcpt *rcpts;	/* the recipients to report on */
	size_t nrcpts;
	time_t now;		/* Date:; 0 means time(NULL) */
	uint64_t return_max;	/* 0 means DSN_RETURN_MAX */
};

/* What the caller needs to queue the report. */
struct dsn_compose_info {
	bool global;	/* RFC 6533 types used: send it with SMTPUTF8 */
	bool eightbit;	/* non-ASCII octets: send it with BODY=8BITMIME */
	bool full;	/* the whole original was returned */
	uint64_t size;	/* octets written */
};

/* Writes a complete report to out_fd (blocking: run it on a worker
 * thread): an RFC 5322 message with CRLF line ends and lines of at most
 * 998 octets, From: "Mail Delivery System" <MAILER-DAEMON@reporting_mta>,
 * To: the sender, Auto-Submitted: auto-replied, and a multipart/report;
 * report-type=delivery-status of three parts: a text/plain explanation,
 * the message/delivery-status fields, and the original.
 *
 * The original (msg_fd, a regular file read with pread from offset 0; -1
 * to leave the third part out) is returned whole as message/rfc822 when a
 * recipient failed and RET is not HDRS, or when RET=FULL was asked;
 * otherwise (delays, successes, RET=HDRS, or larger than return_max) its
 * header section as text/rfc822-headers. It is streamed through a fixed
 * buffer, its line ends made CRLF and lines over 998 octets broken.
 *
 * Refuses (-1) a null sender, an invalid host name or sender, an empty
 * recipient list, a recipient without a valid address or with
 * DSN_ACTION_NONE; also read and write errors (errno set). Invalid
 * optional fields of a recipient are left out of the report. */
int dsn_compose(const struct dsn_report *r, int msg_fd, int out_fd,
    struct dsn_compose_info *info_r, const char **error_r);
/* The same with the original opened from msg_path (NULL: none). */
int dsn_compose_path(const struct dsn_report *r, const char *msg_path,
    int out_fd, struct dsn_compose_info *info_r, const char **error_r);

#endif
