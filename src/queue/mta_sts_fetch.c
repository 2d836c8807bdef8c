/* The HTTPS fetch of an MTA-STS policy (RFC 8461 section 3.3): one GET
 * over HTTP/1.0 (so no chunked replies), on the event loop.
 * Untrusted input: the policy host's DNS answers and its reply: the
 * status line and headers (bounded in length and number), the body (at
 * most MTA_STS_MAX_POLICY octets). Nothing of the reply is read before
 * the certificate was verified. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/timer.h"
#include "core/xmalloc.h"
#include "net/conn.h"
#include "queue/dns.h"
#include "queue/mta_sts.h"

#define FETCH_CONNECT_MS 10000u
#define FETCH_IDLE_S 10u
#define FETCH_LINE_MAX 8192
#define FETCH_MAX_HEADERS 100

enum fetch_state {
	FETCH_LOOKUP,
	FETCH_CONNECT,
	FETCH_STATUS,
	FETCH_HEADERS,
	FETCH_BODY
};

struct mta_sts_fetch {
	char *host;			/* mta-sts.DOMAIN */
	unsigned port;
	mta_sts_fetch_cb *cb;
	void *arg;
	enum fetch_state state;
	struct dns_query *query;
	struct dns_route *route;
	size_t addr;			/* in route->hosts[0].addrs */
	struct conn_connect *cc;
	struct conn *conn;
	struct timer *deadline;
	bool verified;
	bool text_plain;
	bool have_length;
	uint64_t length;
	unsigned nheaders;
	struct buf line;
	struct buf body;
	char *last_error;		/* of the last address tried */
};

static void fetch_connect_next(struct mta_sts_fetch *f);

static void
fetch_free(struct mta_sts_fetch *f)
{
	dns_cancel(f->query);
	dns_route_free(f->route);
	conn_connect_cancel(f->cc);
	if (f->conn != NULL) {
		conn_set_handler(f->conn, NULL, NULL);
		conn_abort(f->conn);
	}
	timer_free(&f->deadline);
	buf_free(&f->line);
	buf_free(&f->body);
	x_free(&f->host);
	x_free(&f->last_error);
	free(f);
}

void
mta_sts_fetch_cancel(struct mta_sts_fetch *f)
{
	if (f != NULL)
		fetch_free(f);
}

/* Ends the fetch: frees it, then calls back (policy NULL: error). */
static void
fetch_end(struct mta_sts_fetch *f, struct mta_sts_policy *policy,
    char *error)
{
	mta_sts_fetch_cb *cb = f->cb;
	void *arg = f->arg;

	fetch_free(f);
	cb(policy, error, arg);
	free(error);
}

static void
fetch_fail(struct mta_sts_fetch *f, const char *fmt, ...)
    PRINTF_LIKE(2, 3);

static void
fetch_fail(struct mta_sts_fetch *f, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;

	buf_printf(&b, "https://%s/.well-known/mta-sts.txt: ", f->host);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	char *why = x_strdup(buf_cstr(&b));
	buf_free(&b);
	fetch_end(f, NULL, why);
}

static void
fetch_complete(struct mta_sts_fetch *f)
{
	struct mta_sts_policy p;
	const char *why = NULL;

	if (mta_sts_parse_policy(buf_cstr(&f->body), f->body.len, &p,
	    &why) < 0) {
		fetch_fail(f, "invalid policy: %s", why);
		return;
	}
	struct mta_sts_policy *out = x_malloc(sizeof(*out));
	*out = p;
	fetch_end(f, out, NULL);
}

/* "HTTP/1.x 200 ...": the code, or -1. */
static int
fetch_status_code(const char *s)
{
	if (strncmp(s, "HTTP/1.", 7) != 0 || s[7] < '0' || s[7] > '9' ||
	    s[8] != ' ')
		return -1;
	for (int i = 9; i < 12; i++)
		if (s[i] < '0' || s[i] > '9')
			return -1;
	if (s[12] != '\0' && s[12] != ' ')
		return -1;
	return (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
}

/* One header line; -1 after failing the fetch. */
static int
fetch_header(struct mta_sts_fetch *f, const char *s)
{
	const char *colon = strchr(s, ':');
	const char *v;

	if (++f->nheaders > FETCH_MAX_HEADERS || colon == NULL ||
	    colon == s) {
		fetch_fail(f, "%s", f->nheaders > FETCH_MAX_HEADERS ?
		    "too many headers" : "malformed header");
		return -1;
	}
	size_t klen = (size_t)(colon - s);
	for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
		;
	if (klen == 12 && strncasecmp(s, "content-type", 12) == 0) {
		f->text_plain = strncasecmp(v, "text/plain", 10) == 0 &&
		    (v[10] == '\0' || v[10] == ';' || v[10] == ' ' ||
		    v[10] == '\t');
	} else if (klen == 14 && strncasecmp(s, "content-length", 14) == 0) {
		uint64_t n = 0;
		size_t i = 0;
		for (; v[i] >= '0' && v[i] <= '9' && n <= MTA_STS_MAX_POLICY;
		    i++)
			n = n * 10 + (uint64_t)(v[i] - '0');
		if (i == 0 || (v[i] != '\0' && v[i] != ' ') ||
		    n > MTA_STS_MAX_POLICY) {
			fetch_fail(f, "%s", n > MTA_STS_MAX_POLICY ? "the "
			    "policy is too large" : "bad Content-Length");
			return -1;
		}
		f->have_length = true;
		f->length = n;
	} else if (klen == 17 &&
	    strncasecmp(s, "transfer-encoding", 17) == 0) {
		fetch_fail(f, "unexpected Transfer-Encoding");
		return -1;
	}
	return 0;
}

/* Reads status and header lines; -1 after failing the fetch. */
static int
fetch_read_head(struct mta_sts_fetch *f)
{
	while (f->state == FETCH_STATUS || f->state == FETCH_HEADERS) {
		enum conn_line r = conn_read_line(f->conn, FETCH_LINE_MAX,
		    &f->line);
		if (r == CONN_LINE_NONE)
			return 0;
		if (r == CONN_LINE_TOO_LONG) {
			fetch_fail(f, "a reply line is too long");
			return -1;
		}
		const char *s = buf_cstr(&f->line);
		if (f->state == FETCH_STATUS) {
			int code = fetch_status_code(s);
			if (code != 200) {
				/* redirects are not followed (3.3) */
				fetch_fail(f, code < 0 ? "not an HTTP reply" :
				    "HTTP status %d", code);
				return -1;
			}
			f->state = FETCH_HEADERS;
		} else if (s[0] == '\0') {
			if (!f->text_plain) {
				fetch_fail(f, "not of type text/plain");
				return -1;
			}
			f->state = FETCH_BODY;
		} else if (fetch_header(f, s) < 0) {
			return -1;
		}
	}
	return 0;
}

static void
fetch_on_input(struct conn *c, void *arg)
{
	struct mta_sts_fetch *f = arg;
	const char *why = NULL;

	if (!f->verified) {
		if (conn_tls_peer_auth(c, &why) != CONN_TLS_AUTH_PKIX) {
			fetch_fail(f, "certificate not verified: %s", why);
			return;
		}
		f->verified = true;
	}
	if (fetch_read_head(f) < 0 || f->state != FETCH_BODY)
		return;
	size_t n = conn_input_length(c);
	if (f->body.len + n > MTA_STS_MAX_POLICY) {
		fetch_fail(f, "the policy is too large");
		return;
	}
	if (n > 0) {
		buf_reserve_total(&f->body, f->body.len + n);
		f->body.len += conn_read(c, f->body.data + f->body.len, n);
		f->body.data[f->body.len] = '\0';
	}
	if (f->have_length && f->body.len >= f->length) {
		f->body.len = (size_t)f->length;
		f->body.data[f->body.len] = '\0';
		fetch_complete(f);
	}
}

static void
fetch_on_timeout(struct conn *c, void *arg)
{
	(void)c;
	fetch_fail(arg, "no reply in %u seconds", FETCH_IDLE_S);
}

static void
fetch_on_closed(struct conn *c, void *arg)
{
	struct mta_sts_fetch *f = arg;
	const char *err = conn_error(c);

	f->conn = NULL;		/* freed by conn.c when this returns */
	if (f->state == FETCH_BODY && !f->have_length && f->verified) {
		fetch_complete(f);
		return;
	}
	if (f->state == FETCH_STATUS && !f->verified && err[0] != '\0')
		fetch_fail(f, "TLS: %s", err);
	else
		fetch_fail(f, "%s", err[0] != '\0' ? err :
		    "connection closed early");
}

static const struct conn_handler fetch_handler = {
	.on_input = fetch_on_input,
	.on_timeout = fetch_on_timeout,
	.on_closed = fetch_on_closed,
};

static void
fetch_on_connect(struct conn *c, const char *error, void *arg)
{
	struct mta_sts_fetch *f = arg;
	const struct dns_address *a = &f->route->hosts[0].addrs[f->addr];

	f->cc = NULL;
	if (c == NULL) {
		x_free(&f->last_error);
		f->last_error = x_asprintf("connect to %s:%u: %s", a->text,
		    f->port, error);
		f->addr++;
		fetch_connect_next(f);
		return;
	}
	f->conn = c;
	conn_set_handler(c, &fetch_handler, f);
	conn_set_timeout(c, FETCH_IDLE_S);
	struct conn_tls_client o = { .server_name = f->host };
	if (conn_start_tls_client(c, &o) < 0) {
		fetch_fail(f, "cannot start TLS");
		return;
	}
	f->state = FETCH_STATUS;
	if (f->port == 443)
		conn_printf(c, "GET /.well-known/mta-sts.txt HTTP/1.0\r\n"
		    "Host: %s\r\n", f->host);
	else
		conn_printf(c, "GET /.well-known/mta-sts.txt HTTP/1.0\r\n"
		    "Host: %s:%u\r\n", f->host, f->port);
	conn_puts(c, "User-Agent: correo\r\nAccept: text/plain\r\n"
	    "Connection: close\r\n\r\n");
}

/* Connects to the next address of the policy host. */
static void
fetch_connect_next(struct mta_sts_fetch *f)
{
	const struct dns_host *h = &f->route->hosts[0];

	f->state = FETCH_CONNECT;
	while (f->addr < h->naddrs) {
		char *err = NULL;
		f->cc = conn_connect(h->addrs[f->addr].text, f->port, NULL,
		    FETCH_CONNECT_MS, SVC_SMTP, fetch_on_connect, f, &err);
		if (f->cc != NULL)
			return;
		x_free(&f->last_error);
		f->last_error = err;
		f->addr++;
	}
	fetch_fail(f, "%s", f->last_error ? f->last_error :
	    "no address to connect to");
}

static void
fetch_on_route(struct dns_route *route, void *arg)
{
	struct mta_sts_fetch *f = arg;

	f->query = NULL;
	f->route = route;
	if (route->status != DNS_OK || route->nhosts == 0) {
		fetch_fail(f, "%s", route->error ? route->error :
		    dns_status_name(route->status));
		return;
	}
	f->addr = 0;
	fetch_connect_next(f);
}

static void
fetch_on_deadline(void *arg)
{
	fetch_fail(arg, "timed out after %u ms", MTA_STS_FETCH_TIMEOUT_MS);
}

struct mta_sts_fetch *
mta_sts_fetch_start(struct dns_resolver *r, const char *domain,
    unsigned port, mta_sts_fetch_cb *cb, void *arg)
{
	struct mta_sts_fetch *f = x_calloc(1, sizeof(*f));

	f->host = x_asprintf("mta-sts.%s", domain);
	f->port = port;
	f->cb = cb;
	f->arg = arg;
	f->state = FETCH_LOOKUP;
	f->deadline = timer_new(fetch_on_deadline, f);
	timer_start(f->deadline, MTA_STS_FETCH_TIMEOUT_MS);
	f->query = dns_host_lookup(r, f->host, fetch_on_route, f);
	return f;
}
