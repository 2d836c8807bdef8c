/* POP3 session internals shared by the files of src/pop3. */
#ifndef POP3_SESSION_H
#define POP3_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/auth_async.h"
#include "core/buf.h"
#include "net/conn.h"
#include "pop3/pop3.h"
#include "store/store.h"

/* RFC 2449 4: 255 octets per command line; SASL responses get more. */
#define POP3_LINE_MAX		255
#define POP3_AUTH_LINE_MAX	12288
#define POP3_OUTPUT_HIGH	(256 * 1024)
/* RFC 1939 3: an autologout timer of at least 10 minutes. */
#define POP3_TIMEOUT_S		600

struct pop3_server {
	const struct config *cfg;
	struct userdb *db;
	struct pop3_lock *locks;	/* maildrops in use */
};

enum pop3_state {
	POP3_ST_AUTHORIZATION,
	POP3_ST_SASL,		/* reading SASL responses */
	POP3_ST_TRANSACTION,
	POP3_ST_SENDING,	/* streaming RETR/TOP/LIST/UIDL output */
	POP3_ST_QUIT
};

struct pop3_session {
	struct conn *conn;
	struct pop3_server *srv;
	const struct config *cfg;
	uint64_t id;
	enum pop3_state state;
	unsigned errors;
	struct buf line;
	char *user_arg;			/* from USER */
	struct auth_session auth;	/* AUTH, USER/PASS in progress */
	bool busy;			/* pool job (maildrop load, update) */
	bool gone;
	char *user;			/* canonical, once logged in */
	bool locked;
	struct store *store;
	struct store_mailbox mb;
	bool *deleted;			/* per message, marks of DELE */
	/* the message being sent by RETR / TOP */
	int fd;
	bool at_line_start;
	bool in_body;
	bool top;
	uint32_t body_lines_left;
	size_t line_len;		/* octets of the current line, no CRLF */
	bool ended_with_lf;
	char *error;			/* a pool job's error text */
	int job_status;
};

/* pop3_session.c */
void pop3_reply(struct pop3_session *s, const char *fmt, ...)
    PRINTF_LIKE(2, 3);
void pop3_reply_error(struct pop3_session *s, const char *fmt, ...)
    PRINTF_LIKE(2, 3);
void pop3_process(struct pop3_session *s);
void pop3_close(struct pop3_session *s);
void pop3_enter_state(struct pop3_session *s, enum pop3_state st);
/* Frees a session whose client left while a pool job ran. */
void pop3_session_release(struct pop3_session *s);

/* pop3_maildrop.c: the TRANSACTION and UPDATE states. */
void pop3_open_maildrop(struct pop3_session *s);
void pop3_release_maildrop(struct pop3_session *s);
bool pop3_transaction_command(struct pop3_session *s, const char *kw,
    const char *args);
void pop3_continue_sending(struct pop3_session *s);
void pop3_quit_update(struct pop3_session *s);
/* The maildrop lock (one POP3 session per user at a time). */
bool pop3_lock_take(struct pop3_server *srv, const char *user);
void pop3_lock_release(struct pop3_server *srv, const char *user);

#endif
