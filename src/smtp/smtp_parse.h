/* SMTP argument syntax (RFC 5321 4.1.2, RFC 6531, RFC 1870, RFC 6152,
 * RFC 3461, RFC 4954). No I/O and nothing left allocated; the DSN values
 * are checked with the parsers of queue/dsn.h.
 *
 * Untrusted input: the argument text of EHLO/HELO, MAIL, RCPT, VRFY, EXPN
 * lines as the client sent them (without CRLF, NUL-terminated). */
#ifndef SMTP_PARSE_H
#define SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTP_LOCAL_MAX	64
#define SMTP_DOMAIN_MAX	255
#define SMTP_PATH_MAX	256

struct smtp_address {
	/* The mailbox as sent, quotes kept, source route dropped;
	 * "" for the null reverse-path <>. Used in Return-Path and logs. */
	char text[SMTP_PATH_MAX + 1];
	/* The local part with quoting undone (what a user name is matched
	 * against): <"a b"@x> gives "a b". */
	char local[SMTP_LOCAL_MAX + 1];
	/* The domain as sent, or the address literal with its brackets. */
	char domain[SMTP_DOMAIN_MAX + 1];
	bool is_literal;	/* domain is [IPv4], [IPv6:...] or [tag:...] */
	bool is_postmaster;	/* RCPT TO:<Postmaster> without a domain */
	bool utf8;		/* non-ASCII octets (valid UTF-8) anywhere */
};

enum smtp_body_type {
	SMTP_BODY_UNSET,
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME
};

enum smtp_dsn_ret { SMTP_RET_UNSET, SMTP_RET_FULL, SMTP_RET_HDRS };

#define SMTP_NOTIFY_NEVER	0x1
#define SMTP_NOTIFY_SUCCESS	0x2
#define SMTP_NOTIFY_FAILURE	0x4
#define SMTP_NOTIFY_DELAY	0x8

struct smtp_mail_args {
	struct smtp_address from;
	bool has_size;
	uint64_t size;			/* SIZE= (RFC 1870) */
	enum smtp_body_type body;	/* BODY= (RFC 6152) */
	bool smtputf8;			/* SMTPUTF8 (RFC 6531) */
	enum smtp_dsn_ret ret;		/* RET= (RFC 3461) */
	/* ENVID= in dsn_envid_parse's stored form (shortest xtext), ""
	 * when absent. */
	char envid[101];
	char auth[SMTP_PATH_MAX + 1];	/* AUTH= as xtext, "" when absent */
	/* With SMTP_PARSE_BAD_PARAM: a static sentence naming what was
	 * wrong, fit for the 501 reply; NULL when there is none. */
	const char *param_error;
};

struct smtp_rcpt_args {
	struct smtp_address to;
	unsigned notify;		/* SMTP_NOTIFY_* bits, 0 when absent */
	/* ORCPT= as sent, "" when absent. Checked as dsn_orcpt_parse does
	 * with SMTPUTF8 allowed; the caller checks it again against the
	 * transaction's SMTPUTF8 and makes the stored form. */
	char orcpt[501];
	const char *param_error;	/* as in smtp_mail_args */
};

enum smtp_parse_status {
	SMTP_PARSE_OK,
	SMTP_PARSE_SYNTAX,	/* not "FROM:<...>"/"TO:<...>": 501 5.5.4 */
	SMTP_PARSE_BAD_ADDRESS,	/* bad mailbox: 501 5.1.7 (MAIL) / 5.1.3 (RCPT) */
	SMTP_PARSE_TOO_LONG,	/* path/local/domain over the limits: 501 */
	SMTP_PARSE_NULL_PATH,	/* RCPT TO:<>: 501 5.1.3 */
	SMTP_PARSE_UNKNOWN_PARAM, /* 555 5.5.4 */
	SMTP_PARSE_BAD_PARAM	/* known keyword, bad or repeated value: 501 5.5.4 */
};

/* arg is what follows the 4 letters "MAIL": " FROM:<a@b> SIZE=1".
 * Keywords and "FROM:" are case-insensitive; a space after the colon and a
 * path without angle brackets are tolerated, as Postfix does. */
enum smtp_parse_status smtp_parse_mail(const char *arg,
    struct smtp_mail_args *out);
/* arg is what follows "RCPT": " TO:<a@b> NOTIFY=FAILURE". */
enum smtp_parse_status smtp_parse_rcpt(const char *arg,
    struct smtp_rcpt_args *out);

/* A mailbox without brackets ("user@example.test", quoted local parts
 * allowed): for VRFY/EXPN and the command line. Returns SMTP_PARSE_OK or
 * SMTP_PARSE_BAD_ADDRESS / SMTP_PARSE_TOO_LONG. */
enum smtp_parse_status smtp_parse_mailbox(const char *s,
    struct smtp_address *out);

/* True for a domain (RFC 5321 Domain, U-labels allowed) or an address
 * literal: the EHLO/HELO argument. */
bool smtp_valid_helo(const char *s);

/* True when s is well-formed UTF-8 (no overlongs, no surrogates). */
bool smtp_valid_utf8(const char *s, size_t n);

/* Text for a human: a short reason for status, for the reply line. */
const char *smtp_parse_status_text(enum smtp_parse_status st);

#endif
