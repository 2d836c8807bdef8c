/* The SMTP client of outbound delivery (RFC 5321 client side): one
 * session is one connection to one remote host (after trying its
 * addresses in order) that carries any number of messages, one after the
 * other, and reports a result per recipient.
 *
 * Everything runs on the event loop of net/ (net_init's event_base; core/
 * timer.h must have that base too). Nothing blocks except reading the
 * message file, in chunks of 16 KB as the connection's output drains
 * (at most 64 KB of output is queued): local files, so that is accepted
 * here. The file must not change while it is sent: its size when opened
 * says where the data ends. At shutdown, smtp_client_free() every
 * session before net_close_all().
 *
 * What the session does: reads the greeting (4xx or 5xx: next address);
 * EHLO, or HELO when EHLO gets a 5xx; STARTTLS by the TLS policy, then
 * EHLO again; AUTH PLAIN when credentials are given. Then for each
 * message: refuses it before sending when the peer's SIZE is exceeded
 * (552 5.3.4), when it needs SMTPUTF8 the peer lacks (553 5.6.7, RFC
 * 6531), or when it has 8-bit content and the peer lacks 8BITMIME (554
 * 5.6.3 with needs_7bit set: this client does no downgrade; a caller that
 * converts the message to 7 bits sends it again without the 8-bit flag).
 * MAIL FROM with SIZE=, BODY=8BITMIME, SMTPUTF8, and RET=/ENVID= when the
 * peer has DSN; RCPT TO with NOTIFY=/ORCPT= when it has DSN; with
 * PIPELINING, MAIL, every RCPT and DATA go in one group (RFC 2920). The
 * message goes by BDAT when the peer has CHUNKING, else by DATA with dot-
 * stuffing; lines are normalised to CRLF either way. RSET between
 * messages when a transaction was left open. QUIT at the end.
 *
 * Results: a 2xx is delivered, a 4xx is a temporary failure, a 5xx a
 * permanent one. A refusal decided here (the checks above, a bad
 * address, an unreadable file) has code 0 and remote false. A connection failure, a timeout (RFC 5321 4.5.3.2), a
 * malformed reply or a 421 fails every recipient not yet answered
 * temporarily.
 *
 * Untrusted input: every reply of the remote server (parsed by
 * queue/smtp_client_reply.c, bounded in length and line count). */
#ifndef QUEUE_SMTP_CLIENT_H
#define QUEUE_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/conn.h"
#include "queue/smtp_client_reply.h"

struct smtp_client;

enum smtp_client_tls {
	SMTP_CLIENT_TLS_NONE,		/* never STARTTLS */
	SMTP_CLIENT_TLS_OPPORTUNISTIC,	/* when offered; a failed handshake
					 * is retried once in plaintext */
	SMTP_CLIENT_TLS_ENCRYPT,	/* required, any certificate */
	SMTP_CLIENT_TLS_VERIFY		/* required and authenticated: by
					 * the TLSA records when given
					 * (DANE), else PKIX and the name */
};

/* Milliseconds; 0 takes the default (RFC 5321 4.5.3.2). */
struct smtp_client_timeouts {
	unsigned connect;	/* 30 s per address */
	unsigned greeting;	/* 5 min */
	unsigned command;	/* 5 min: EHLO, STARTTLS, AUTH, MAIL, RCPT,
				 * RSET (and the TLS handshake) */
	unsigned data_init;	/* 2 min: the reply to DATA */
	unsigned data_block;	/* 3 min: each block of data to go out, and
				 * the reply to a BDAT chunk */
	unsigned data_end;	/* 10 min: the reply to the final dot or the
				 * last BDAT */
	unsigned quit;		/* 10 s: the reply to QUIT */
};

struct smtp_client_options {
	const char *helo_name;		/* our host name, for EHLO */
	const char *host_name;		/* the peer (MX) name: SNI, the
					 * certificate name, the TLSA base
					 * domain, logs; NULL: the address */
	const char *const *addrs;	/* numeric IPv4/IPv6 addresses of
					 * host_name, tried in order */
	size_t naddrs;
	unsigned port;			/* 25, or a test port */
	const char *source;		/* local address to send from, or
					 * NULL */
	enum smtp_client_tls tls;
	const struct conn_tlsa *tlsa;	/* DANE records (validated by the
					 * caller), used under TLS_VERIFY */
	size_t ntlsa;
	const char *auth_user;		/* AUTH PLAIN with these (a relay-
					 * host), or NULL for no AUTH */
	const char *auth_password;
	bool auth_without_tls;		/* allow AUTH on a plaintext
					 * connection (default: refuse) */
	struct smtp_client_timeouts timeouts;
};

/* NOTIFY= of RFC 3461; 0 sends no NOTIFY. NEVER excludes the others. */
#define SMTP_NOTIFY_NEVER	(1u << 0)
#define SMTP_NOTIFY_SUCCESS	(1u << 1)
#define SMTP_NOTIFY_FAILURE	(1u << 2)
#define SMTP_NOTIFY_DELAY	(1u << 3)

enum smtp_client_ret {
	SMTP_RET_NONE,			/* no RET= */
	SMTP_RET_FULL,
	SMTP_RET_HDRS
};

struct smtp_client_rcpt {
	const char *addr;		/* forward path without <> */
	unsigned notify;		/* SMTP_NOTIFY_* bits, or 0 */
	const char *orcpt;		/* "rfc822;xtext" as received, or
					 * NULL */
};

/* One message. Every string and array is copied by smtp_client_send. */
struct smtp_client_message {
	const char *from;		/* reverse path without <>, "" for
					 * the null sender */
	const struct smtp_client_rcpt *rcpts;
	size_t nrcpts;			/* at least 1 */
	const char *path;		/* the message file (CRLF lines) */
	uint64_t size;			/* its size; 0: taken from the file */
	bool eightbit;			/* 8-bit body: needs 8BITMIME */
	bool smtputf8;			/* needs SMTPUTF8 (also assumed when
					 * an address has 8-bit octets) */
	enum smtp_client_ret ret;	/* passed on when the peer has DSN */
	const char *envid;		/* ENVID xtext as received, or NULL */
};

enum smtp_client_status {
	SMTP_CLIENT_DELIVERED,		/* 2xx to the end of data */
	SMTP_CLIENT_TEMPFAIL,		/* retry later */
	SMTP_CLIENT_PERMFAIL		/* bounce */
};

struct smtp_client_rcpt_result {
	enum smtp_client_status status;
	unsigned code;			/* the reply code; 0 when there was
					 * no reply (connection, timeout,
					 * local error) */
	char enhanced[SMTP_ENHANCED_MAX]; /* RFC 3463 status: the server's,
					 * or derived ("4.0.0"), or ours */
	const char *text;		/* the reply text (lines joined by
					 * spaces) or what went wrong */
	bool remote;			/* code and text came from the peer:
					 * a DSN's Diagnostic-Code */
};

struct smtp_client_result {
	const struct smtp_client_message *msg;	/* the session's copy */
	const struct smtp_client_rcpt_result *rcpts; /* one per msg->rcpts */
	bool attempted;			/* the session took the message up
					 * (even if it refused it before
					 * sending); false: the session
					 * ended first, every result is a
					 * temporary failure with the
					 * session's error, and the message
					 * may go to another host */
	bool needs_7bit;		/* refused only for its 8-bit body */
	bool peer_dsn;			/* the peer took the DSN parameters
					 * (else NOTIFY=SUCCESS calls for a
					 * "relayed" DSN, RFC 3461 4.3) */
	const char *host;		/* the peer's name (Remote-MTA) */
	const char *addr;		/* and its address; "" if none */
};

/* The end of a session. */
struct smtp_client_outcome {
	bool ok;			/* ended by QUIT, no error */
	bool reached;			/* a connection got ready to send
					 * (greeting, EHLO, TLS, AUTH done):
					 * false means try the next host */
	unsigned code;			/* the failure's reply, 0 for none */
	char enhanced[SMTP_ENHANCED_MAX];
	const char *text;		/* the failure, or "" */
	const char *addr;		/* the last address tried, or "" */
};

typedef void (*smtp_client_done_fn)(struct smtp_client *s,
    const struct smtp_client_outcome *o, void *arg);
typedef void (*smtp_client_result_fn)(struct smtp_client *s,
    const struct smtp_client_result *r, void *arg);

/* Creates a session and starts connecting (from the loop, after this
 * returns). done is called once when the session is over, after the
 * result callback of every message it was given; s is freed when done
 * returns. The options are copied (the password is wiped at the end).
 * Returns NULL with *error_r allocated when the options are unusable (no
 * address, no HELO name, a bad port). */
struct smtp_client *smtp_client_new(const struct smtp_client_options *o,
    smtp_client_done_fn done, void *arg, char **error_r);

/* The same over a connection that is already open (ODMR, RFC 2645: the
 * roles of an accepted connection turned around). The session takes c
 * over at once: its handler, its read timeout (the session's own timers
 * apply), and its end (done follows its close). It waits for the peer's
 * greeting (perhaps already buffered), then goes on as above: EHLO,
 * STARTTLS by o->tls (use SMTP_CLIENT_TLS_NONE on a connection already
 * in TLS), AUTH when asked, the messages. o->addrs, o->naddrs and
 * o->port are ignored (the peer's address is used); a failure is never
 * retried elsewhere. Returns NULL (c untouched) with *error_r allocated
 * when the options are unusable. */
struct smtp_client *smtp_client_new_on_conn(struct conn *c,
    const struct smtp_client_options *o, smtp_client_done_fn done,
    void *arg, char **error_r);

/* Queues one message; messages go in the order given, fn is called with
 * its result (the result and everything it points to are valid only
 * during the call). May be called from the session's callbacks. Returns
 * 0, or -1 (fn not called) when the session is ending (after
 * smtp_client_end or once it failed) or the message is unusable (no
 * recipient, no path). Addresses with control characters, "<" or ">" get
 * a permanent failure without being sent. */
int smtp_client_send(struct smtp_client *s,
    const struct smtp_client_message *m, smtp_client_result_fn fn,
    void *arg);

/* No more messages: once the queued ones are done, QUIT and close (done
 * follows). */
void smtp_client_end(struct smtp_client *s);

/* Shutdown: closes at once and frees the session; no callback follows.
 * Never from inside this session's callbacks. */
void smtp_client_free(struct smtp_client *s);

/* The session's state for logs and tests: "connecting", "greeting",
 * "ehlo", "helo", "starttls", "auth", "ready", "rset", "mail", "data",
 * "data-end", "bdat", "quit", "closed". */
const char *smtp_client_state_name(const struct smtp_client *s);

/* The peer's extensions (after EHLO; after STARTTLS the second EHLO's). */
const struct smtp_ext *smtp_client_extensions(const struct smtp_client *s);

/* True while the connection is in TLS. */
bool smtp_client_is_tls(const struct smtp_client *s);

#endif
