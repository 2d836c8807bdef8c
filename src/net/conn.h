/* Connections: a small API over libevent bufferevents so that protocol code
 * never includes <event2/...> or <openssl/...>. One connection is one client
 * socket; the protocol session that uses it is a separate object.
 *
 * Untrusted input: every octet a client sends passes through here. Lines
 * are read with a hard limit; raw reads are bounded by the caller. */
#ifndef NET_CONN_H
#define NET_CONN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"

struct conn;
struct event_base;

struct conn_handler {
	/* New input is buffered (call conn_read_line / conn_read). */
	void (*on_input)(struct conn *c, void *ctx);
	/* All queued output was written (optional). */
	void (*on_drained)(struct conn *c, void *ctx);
	/* No input for the read timeout: write a reply, then conn_close(). */
	void (*on_timeout)(struct conn *c, void *ctx);
	/* The connection is gone (peer closed, error, or after conn_close());
	 * c is freed when this returns. Never called from inside a conn_*()
	 * call made by the protocol. */
	void (*on_closed)(struct conn *c, void *ctx);
};

enum conn_line {
	CONN_LINE_NONE,		/* no complete line buffered yet */
	CONN_LINE_OK,		/* *line holds one line, without CRLF/LF */
	CONN_LINE_TOO_LONG	/* a line over max: reported once; the rest of
				 * it is discarded up to its end of line */
};

/* Wraps a connected socket (accepted ones, outbound SMTP, tests); peer is
 * its textual address. The connection is not counted in the limits.
 * Returns NULL (fd closed) on failure. */
struct conn *conn_new(int fd, enum service svc, const char *peer);

void conn_set_handler(struct conn *c, const struct conn_handler *h,
    void *ctx);

/* Reads one line ended by CRLF or LF; the terminator and a CR before it are
 * removed. Lines longer than max octets (terminator excluded) are never
 * buffered whole. */
enum conn_line conn_read_line(struct conn *c, size_t max, struct buf *line);
/* Octets buffered and not yet read. */
size_t conn_input_length(const struct conn *c);
/* Copies up to n buffered octets into p and removes them; returns the
 * count. */
size_t conn_read(struct conn *c, void *p, size_t n);
/* Copies up to n buffered octets into p without removing them. */
size_t conn_peek(struct conn *c, void *p, size_t n);
/* Removes n buffered octets (n <= conn_input_length()). */
void conn_drain(struct conn *c, size_t n);

void conn_write(struct conn *c, const void *p, size_t n);
void conn_puts(struct conn *c, const char *s);
void conn_printf(struct conn *c, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* Writes one protocol line: the formatted text (cut at 1021 octets)
 * and CRLF. */
void conn_vline(struct conn *c, const char *fmt, va_list ap);
size_t conn_output_length(const struct conn *c);

/* Stop / restart reading from the socket (pending async work). */
void conn_pause(struct conn *c);
void conn_resume(struct conn *c);
/* Read timeout in seconds (0: none). Also used as the write timeout. */
void conn_set_timeout(struct conn *c, unsigned seconds);

/* Writes what is queued, then closes; on_closed follows later. */
void conn_close(struct conn *c);
bool conn_is_closing(const struct conn *c);

const char *conn_peer_addr(const struct conn *c);	/* "192.0.2.1" */
unsigned conn_peer_port(const struct conn *c);
const char *conn_local_addr(const struct conn *c);
enum service conn_service(const struct conn *c);
uint64_t conn_id(const struct conn *c);
bool conn_is_tls(const struct conn *c);

/* Starts a TLS server handshake on the connection (STARTTLS, STLS):
 * whatever the client sent after the command line is thrown away first, so
 * nothing sent in plaintext is read inside TLS (CVE-2011-0411). Write the
 * "go ahead" reply before calling this. 0, or -1 when TLS is unavailable. */
int conn_start_tls(struct conn *c);
/* Protocol version and cipher once the handshake is done, else "". */
const char *conn_tls_version(const struct conn *c);
const char *conn_tls_cipher(const struct conn *c);
/* The RFC 9266 tls-exporter channel binding (32 octets). 0, or -1 without
 * TLS or before the handshake. */
int conn_tls_exporter(const struct conn *c, unsigned char out[32]);

/* Why the connection ended, once it has: "connection closed by peer",
 * the socket error, or the TLS error; "" when none was seen (still open,
 * or closed by conn_close()). For the SMTP client's delivery reports. */
const char *conn_error(const struct conn *c);
/* Closes at once, throwing away queued output (a message that must not be
 * completed, a peer that stopped reading); on_closed follows later. */
void conn_abort(struct conn *c);

/* ---- outbound connections (the SMTP client) ---- */

struct conn_connect;

/* Ends an outbound attempt: c is the new connection (set its handler at
 * once; it is not counted in the limits), or NULL and error says why
 * ("Connection refused", "connection timed out"). */
typedef void (*conn_connect_fn)(struct conn *c, const char *error,
    void *arg);

/* Starts a non-blocking TCP connection to addr, a numeric IPv4 or IPv6
 * address ("192.0.2.1", "2001:db8::1": names are resolved elsewhere),
 * port port, from the numeric local address source (NULL or "": the
 * kernel chooses). fn is called once, from the loop and never from inside
 * this call, at the latest after timeout_ms (0: the kernel's own limit).
 * svc is what conn_service() reports. Returns the attempt, or NULL with
 * *error_r allocated when addr or source is not a usable numeric address
 * (fn is not called then). */
struct conn_connect *conn_connect(const char *addr, unsigned port,
    const char *source, unsigned timeout_ms, enum service svc,
    conn_connect_fn fn, void *arg, char **error_r);
/* Abandons a pending attempt: fn is not called. Pending attempts are not
 * part of net_close_all(): cancel them before freeing the loop. */
void conn_connect_cancel(struct conn_connect *cc);

/* One TLSA record (RFC 6698) for DANE; data is copied. */
struct conn_tlsa {
	uint8_t usage;		/* 2 DANE-TA, 3 DANE-EE (0, 1 also work) */
	uint8_t selector;	/* 0 certificate, 1 SubjectPublicKeyInfo */
	uint8_t mtype;		/* 0 full, 1 SHA2-256, 2 SHA2-512 */
	const unsigned char *data;
	size_t len;
};

struct conn_tls_client {
	/* SNI (when not an IP literal) and the name the certificate is
	 * verified against; NULL: neither. With TLSA records it is the TLSA
	 * base domain (RFC 7672), required. */
	const char *server_name;
	/* DANE: when one of these is usable, the peer is authenticated by
	 * them alone (DANE-EE ignores names, RFC 7672 3.1.1); unusable ones
	 * are skipped, and with none usable PKIX applies. */
	const struct conn_tlsa *tlsa;
	size_t ntlsa;
};

/* Starts a TLS client handshake on an outbound connection: send the
 * STARTTLS command and read its 220 reply first. Whatever the server sent
 * after that reply is thrown away, so nothing it sent in plaintext is
 * read as if it came through TLS. Output written now is sent once the
 * handshake is done; a failed handshake closes the connection
 * (conn_error() says why). Verification never stops the handshake: read
 * conn_tls_peer_auth() once data arrived. TLS 1.2 or later. 0, or -1
 * (already TLS, closing, no client context, bad TLSA base domain). */
int conn_start_tls_client(struct conn *c, const struct conn_tls_client *o);

enum conn_tls_auth {
	CONN_TLS_AUTH_NONE,	/* no TLS, no handshake yet, or unverified */
	CONN_TLS_AUTH_PKIX,	/* a chain to a trusted CA and the name */
	CONN_TLS_AUTH_DANE	/* matched a TLSA record */
};

/* How the peer of a finished handshake was authenticated; *reason_r (may
 * be NULL) gets a static text: "ok" or why not ("certificate has
 * expired", "no TLS", ...). */
enum conn_tls_auth conn_tls_peer_auth(const struct conn *c,
    const char **reason_r);
/* Certificates the peer sent, its own first (0 without TLS). */
unsigned conn_tls_peer_chain_length(const struct conn *c);
/* The digest of the peer's certificate at depth (0: its own), of the
 * whole DER certificate (spki false) or of its SubjectPublicKeyInfo (spki
 * true), SHA2-256 or SHA2-512 (sha512): what a TLSA record of selector
 * 0/1 and matching type 1/2 holds. out has 64 octets; *len_r gets 32 or
 * 64. 0, or -1 (no TLS, no such certificate). */
int conn_tls_peer_digest(const struct conn *c, unsigned depth, bool spki,
    bool sha512, unsigned char out[64], size_t *len_r);

/* ---- listeners ---- */

enum conn_refusal {
	CONN_ACCEPTED,
	CONN_REFUSED_TOTAL,	/* max_connections reached */
	CONN_REFUSED_PER_IP	/* max_connections_per_ip reached */
};

/* Called for each accepted connection. When refusal is not
 * CONN_ACCEPTED, the protocol writes its "too many connections" reply and
 * calls conn_close(). */
typedef void (*conn_accept_fn)(struct conn *c, enum conn_refusal refusal,
    void *arg);

void net_init(struct event_base *base, unsigned max_total,
    unsigned max_per_ip);
/* Binds every address of a comma-separated host:port list for svc. Returns
 * 0 or -1 with *error_r allocated. */
int net_listen(enum service svc, const char *list, conn_accept_fn fn,
    void *arg, char **error_r);
/* Stops accepting (shutdown). */
void net_close_listeners(void);
/* Connections currently open (accepted ones). */
unsigned net_connection_count(void);
/* Closes every connection at once (end of shutdown). */
void net_close_all(void);

#endif
