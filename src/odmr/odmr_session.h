/* ODMR session internals shared by the files of src/odmr. */
#ifndef ODMR_SESSION_H
#define ODMR_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/auth_async.h"
#include "core/buf.h"
#include "net/conn.h"
#include "odmr/odmr.h"

/* RFC 5321 4.5.3.1.4: 512 octets with CRLF; RFC 4954 4: AUTH lines may
 * be 12288 octets. */
#define ODMR_LINE_MAX		510
#define ODMR_AUTH_LINE_MAX	12288

struct odmr_server {
	const struct config *cfg;
	struct userdb *db;
};

enum odmr_state {
	ODMR_ST_INIT,		/* greeted, no EHLO yet */
	ODMR_ST_READY,		/* after EHLO */
	ODMR_ST_AUTH,		/* reading a SASL response line */
	ODMR_ST_ATRN,		/* looking for mail in the queue */
	ODMR_ST_QUIT		/* closing */
};

struct odmr_session {
	struct conn *conn;
	struct odmr_server *srv;
	const struct config *cfg;
	uint64_t id;
	enum odmr_state state;
	unsigned errors;
	unsigned junk;			/* EHLO, NOOP, RSET, ATRN... so far */
	struct buf line;
	char *user;			/* canonical, once authenticated */
	struct auth_session auth;	/* AUTH in progress */
	bool busy;			/* a pool job runs: input waits */
	struct sched_odmr *pull;	/* ATRN: the queue's search */
};

/* odmr_session.c */
void odmr_enter_state(struct odmr_session *s, enum odmr_state st);
void odmr_reply(struct odmr_session *s, const char *fmt, ...)
    PRINTF_LIKE(2, 3);
/* A reply to a client mistake: counts toward max_errors. */
void odmr_reply_error(struct odmr_session *s, const char *fmt, ...)
    PRINTF_LIKE(2, 3);
void odmr_process(struct odmr_session *s);
/* The connection now belongs to the queue: frees the session without
 * touching it. */
void odmr_session_detach(struct odmr_session *s);

/* odmr_auth.c: AUTH (RFC 4954) inside TLS over the shared SASL code. */
void odmr_cmd_auth(struct odmr_session *s, const char *arg);
void odmr_auth_input(struct odmr_session *s, const char *line);
void odmr_auth_reset(struct odmr_session *s);

/* odmr_atrn.c: ATRN (RFC 2645 5.2.1) and the turn-around. */
void odmr_cmd_atrn(struct odmr_session *s, const char *arg);
/* The session ends: stops a search in flight. */
void odmr_atrn_reset(struct odmr_session *s);

#endif
