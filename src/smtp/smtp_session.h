/* SMTP session internals shared by the files of src/smtp. */
#ifndef SMTP_SESSION_H
#define SMTP_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/auth_async.h"
#include "core/buf.h"
#include "core/strlist.h"
#include "net/conn.h"
#include "queue/deliver.h"
#include "queue/spool.h"
#include "smtp/smtp.h"
#include "smtp/smtp_data.h"
#include "smtp/smtp_parse.h"

/* RFC 5321 4.5.3.1.4: 512 octets with CRLF; MAIL and RCPT get room for the
 * parameters of their extensions (RFC 1870, 3461, 4954, 6531). */
#define SMTP_LINE_MAX		510
#define SMTP_LINE_MAX_PARAMS	(SMTP_LINE_MAX + 600)
/* Stop taking commands while this much output waits for the client. */
/* RFC 4954 4: AUTH lines may be 12288 octets. */
#define SMTP_AUTH_LINE_MAX	12288
#define SMTP_OUTPUT_HIGH	(64 * 1024)
#define SMTP_DATA_CHUNK		(16 * 1024)
/* Header octets kept to check From: (submission). */
#define SMTP_HEADERS_MAX	(64 * 1024)

struct smtp_server {
	const struct config *cfg;
	struct userdb *db;
	unsigned sessions;
};

enum smtp_state {
	SMTP_ST_INIT,		/* greeted, no HELO/EHLO yet */
	SMTP_ST_READY,		/* after HELO/EHLO, no transaction */
	SMTP_ST_MAIL,		/* MAIL accepted */
	SMTP_ST_RCPT,		/* at least one RCPT accepted */
	SMTP_ST_DATA,		/* reading DATA octets */
	SMTP_ST_BDAT,		/* reading a BDAT chunk */
	SMTP_ST_AUTH,		/* reading a SASL response line */
	SMTP_ST_QUIT		/* closing */
};

#define SMTP_IN(s)	(1u << (s))
#define SMTP_ANY	(SMTP_IN(SMTP_ST_INIT) | SMTP_IN(SMTP_ST_READY) | \
			 SMTP_IN(SMTP_ST_MAIL) | SMTP_IN(SMTP_ST_RCPT))

struct smtp_txn {
	struct smtp_mail_args mail;
	struct strlist rcpts;		/* as sent, for logs and Received */
	struct strlist mailboxes;	/* canonical local users */
	struct strlist remote;		/* addresses for the outbound queue */
	/* Per entry of remote: its DSN parameters (RFC 3461) for the
	 * queue envelope; remote_orcpt holds stored forms, "" for none. */
	unsigned *remote_notify;
	struct strlist remote_orcpt;
	/* Local recipients (as sent) that asked NOTIFY=SUCCESS, with their
	 * ORCPT stored forms ("" for none). */
	struct strlist success;
	struct strlist success_orcpt;
	struct spool_file spool;
	bool spool_open;
	struct smtp_data_decoder dec;
	bool too_big;			/* over max_message_size */
	bool bdat;			/* BDAT used in this transaction */
	struct buf headers;		/* header section, when authenticated */
	bool headers_done;
	struct local_delivery delivery;
};

struct smtp_session {
	struct conn *conn;
	struct smtp_server *srv;
	const struct config *cfg;
	uint64_t id;
	enum smtp_state state;
	char helo[SMTP_DOMAIN_MAX + 1];
	bool esmtp;
	unsigned errors;
	unsigned junk;		/* NOOP, RSET, VRFY... since the last mail */
	unsigned transactions;
	struct buf line;
	struct smtp_txn *txn;
	/* The BDAT chunk being read (RFC 3030): its octets are read even when
	 * the command is refused, so the session stays in sync. */
	uint64_t bdat_left;
	uint64_t bdat_size;
	bool bdat_last;
	const char *bdat_error;	/* reply after a chunk read only to skip it */
	enum smtp_state bdat_return;
	/* submission: AUTH required before MAIL (587, 465) */
	bool submission;
	char *user;		/* canonical address once authenticated */
	struct auth_session auth;	/* AUTH in progress */
	bool busy;		/* waiting for the thread pool */
	bool gone;		/* the connection closed while busy */
};

/* smtp_session.c */
void smtp_enter_state(struct smtp_session *s, enum smtp_state st);
const char *smtp_state_name(enum smtp_state st);
void smtp_reply(struct smtp_session *s, const char *fmt, ...)
    PRINTF_LIKE(2, 3);
/* A 5xx for a client mistake: counts toward max_errors. */
void smtp_reply_error(struct smtp_session *s, const char *fmt, ...)
    PRINTF_LIKE(2, 3);
void smtp_process(struct smtp_session *s);
/* Frees the session (its connection is already gone). */
void smtp_session_release(struct smtp_session *s);

/* smtp_auth.c: AUTH (RFC 4954) for every listener, once TLS is up. */
void smtp_cmd_auth(struct smtp_session *s, const char *arg);
void smtp_auth_input(struct smtp_session *s, const char *line);
void smtp_auth_reset(struct smtp_session *s);
/* The EHLO "AUTH ..." line, or NULL when AUTH is not offered now. */
const char *smtp_auth_mechanisms(const struct smtp_session *s);

/* smtp_etrn.c: ETRN (RFC 1985) on the smtp listener. */
void smtp_cmd_etrn(struct smtp_session *s, const char *arg);

/* smtp_txn.c: MAIL, RCPT, DATA, BDAT and delivery. */
void smtp_cmd_mail(struct smtp_session *s, const char *arg);
void smtp_cmd_rcpt(struct smtp_session *s, const char *arg);
void smtp_cmd_data(struct smtp_session *s, const char *arg);
void smtp_cmd_bdat(struct smtp_session *s, const char *arg);
/* Feed buffered input to DATA or to the current BDAT chunk. */
void smtp_data_input(struct smtp_session *s);
void smtp_bdat_input(struct smtp_session *s);
void smtp_txn_reset(struct smtp_session *s);

#endif
