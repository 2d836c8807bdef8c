/* Shared by smtp_client.c (the session: connection, greeting, EHLO, TLS,
 * AUTH, QUIT) and smtp_client_txn.c (the mail transactions) only. */
#ifndef QUEUE_SMTP_CLIENT_INT_H
#define QUEUE_SMTP_CLIENT_INT_H

#include "core/buf.h"
#include "core/timer.h"
#include "queue/smtp_client.h"

/* Keep at most this much output queued while sending message data, and
 * read the file this much at a time. */
#define SC_OUTPUT_HIGH	(64 * 1024)
#define SC_READ_CHUNK	(16 * 1024)

#define SC_STATE_LIST(X) \
	X(CONNECTING,	"connecting") \
	X(GREETING,	"greeting") \
	X(EHLO,		"ehlo") \
	X(HELO,		"helo") \
	X(STARTTLS,	"starttls") \
	X(AUTH,		"auth") \
	X(READY,	"ready") \
	X(RSET,		"rset") \
	X(MAIL,		"mail") \
	X(DATA,		"data") \
	X(DATA_END,	"data-end") \
	X(BDAT,		"bdat") \
	X(QUIT,		"quit") \
	X(CLOSED,	"closed")

enum sc_state {
#define SC_STATE_ENUM(name, text) SC_##name,
	SC_STATE_LIST(SC_STATE_ENUM)
#undef SC_STATE_ENUM
};

enum sc_rcpt_state {
	SC_RCPT_PENDING,	/* no reply yet */
	SC_RCPT_ACCEPTED,	/* 2xx to RCPT; the end of data decides */
	SC_RCPT_FINAL		/* res[i] holds the result */
};

/* A queued message: the caller's envelope copied, and its results. */
struct sc_message {
	struct smtp_client_message m;	/* pointers into the copies below */
	struct smtp_client_rcpt *rcpts;
	struct smtp_client_rcpt_result *res;
	char **texts;			/* owned res[i].text */
	unsigned char *rstate;		/* enum sc_rcpt_state */
	bool attempted;
	bool needs_7bit;
	smtp_client_result_fn fn;
	void *arg;
	struct sc_message *next;
};

/* The transaction of the message at the head of the queue. */
struct sc_txn {
	struct sc_message *msg;
	int fd;				/* the message file, or -1 */
	uint64_t size;
	bool utf8;			/* needs SMTPUTF8 */
	size_t *order;			/* recipients sent, by index */
	size_t norder;
	size_t ncmd;			/* MAIL, the RCPTs, DATA (if used) */
	size_t sent, answered;
	bool use_data;			/* DATA, else BDAT */
	bool mail_ok;
	size_t accepted;
	bool data_sink;			/* "." sent for nobody: ignore reply */
	struct smtp_encoder enc;
	bool eof;			/* the end of data was written */
	uint64_t file_size;		/* queued files do not change */
	uint64_t file_read;
	unsigned bdat_out;		/* BDAT replies outstanding */
	bool bdat_last_sent;
	bool bdat_failed;
};

/* Why the current connection ended (the first reason wins). */
struct sc_failure {
	bool set;
	unsigned code;
	char enhanced[SMTP_ENHANCED_MAX];
	char *text;
	bool remote;
};

struct smtp_client {
	uint64_t id;
	char *helo, *host, *source, *user, *password;
	char **addrs;
	size_t naddrs;
	unsigned port;
	enum smtp_client_tls tls;
	struct conn_tlsa *tlsa;
	size_t ntlsa;
	bool auth_without_tls;
	bool given_conn;		/* smtp_client_new_on_conn: no
					 * connecting, no retry */
	struct smtp_client_timeouts to;
	smtp_client_done_fn done;
	void *arg;

	enum sc_state state;
	struct conn *conn;
	struct conn_connect *connecting;
	size_t addr_i;
	bool plaintext_retry;		/* this attempt skips STARTTLS */
	bool tls_started;		/* STARTTLS got its 220 */
	bool tls_done;			/* the EHLO after it got a reply */
	bool reached;
	bool ending;			/* smtp_client_end was called */
	bool closing;			/* no more messages are taken */
	bool quit_done;
	bool need_rset;
	unsigned in_callback;
	const char *waiting;		/* for error texts */
	struct smtp_reply reply;
	struct buf line;
	struct buf out;
	char *rbuf;			/* SC_READ_CHUNK octets */
	struct smtp_ext ext;
	struct timer *timer;
	struct timer *kick;
	struct sc_message *head, *tail;
	bool txn_active;
	struct sc_txn txn;
	struct sc_failure fail;
};

/* smtp_client.c */
const char *sc_addr(const struct smtp_client *s);
void sc_enter_state(struct smtp_client *s, enum sc_state st);
/* Writes one command line (CRLF added) and logs it unless secret. */
void sc_cmd(struct smtp_client *s, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* Waits ms for what ("reply to RCPT TO"). */
void sc_wait(struct smtp_client *s, unsigned ms, const char *what);
/* The connection failed: remember why (when first), then abort it. */
void sc_fail(struct smtp_client *s, unsigned code, const char *enhanced,
    const char *fmt, ...) PRINTF_LIKE(4, 5);
void sc_fail_reply(struct smtp_client *s, const struct smtp_reply *r,
    bool quit);

/* smtp_client_txn.c */
/* Starts queued work while READY: RSET, a message, or QUIT. */
void sc_next(struct smtp_client *s);
void sc_txn_reply(struct smtp_client *s, const struct smtp_reply *r);
void sc_rset_reply(struct smtp_client *s, const struct smtp_reply *r);
void sc_data_pump(struct smtp_client *s);
/* The connection ended in a transaction: the rest fails with s->fail. */
void sc_txn_abort(struct smtp_client *s);
/* Reports every queued message as not attempted, with s->fail. */
void sc_fail_queued(struct smtp_client *s);
void sc_message_free(struct sc_message *m);
struct sc_message *sc_message_copy(const struct smtp_client_message *m);

#endif
