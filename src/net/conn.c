/* Connections and listeners over libevent bufferevents.
 * Untrusted input: all client octets; lines are bounded here. */
#include "net/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/xmalloc.h"
#include "net/tls.h"
#include "net/tls_internal.h"

/* Stop reading from a socket while this much input waits unprocessed. */
#define CONN_INPUT_HIGH	(256 * 1024)

struct conn {
	struct bufferevent *bev;
	const struct conn_handler *h;
	void *ctx;
	enum service svc;
	uint64_t id;
	char peer[INET6_ADDRSTRLEN];
	char local[INET6_ADDRSTRLEN];
	unsigned peer_port;
	bool accepted;		/* counted in the limits */
	bool closing;
	bool discarding;	/* inside an over-long line */
	bool paused;
	bool tls;
	bool tls_client;	/* we started the handshake (outbound) */
	unsigned timeout;
	unsigned close_wait_ms;
	SSL *ssl;
	struct event *close_ev;
	struct event *line_deadline;	/* a line must end within timeout */
	struct ip_count *ipc;
	struct conn *prev, *next;
	char error[256];	/* why it ended, see conn_error() */
};

/* Connections per client address: a small chained hash table. */
struct ip_count {
	char addr[INET6_ADDRSTRLEN];
	unsigned n;
	struct ip_count *next;
};

#define IP_BUCKETS 4096

static struct {
	struct event_base *base;
	unsigned max_total, max_per_ip;
	unsigned count;
	uint64_t next_id;
	struct ip_count *ips[IP_BUCKETS];
	struct conn *all;
	struct listener_rec *listeners;
} net;

struct listener_rec {
	struct evconnlistener *l;
	enum service svc;
	conn_accept_fn fn;
	void *arg;
	struct listener_rec *next;
};

static unsigned
ip_hash(const char *s)
{
	unsigned h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % IP_BUCKETS;
}

static struct ip_count *
ip_get(const char *addr)
{
	unsigned b = ip_hash(addr);
	for (struct ip_count *i = net.ips[b]; i; i = i->next)
		if (strcmp(i->addr, addr) == 0)
			return i;
	struct ip_count *i = x_calloc(1, sizeof(*i));
	snprintf(i->addr, sizeof(i->addr), "%s", addr);
	i->next = net.ips[b];
	net.ips[b] = i;
	return i;
}

static void
ip_put(struct ip_count *ipc)
{
	if (--ipc->n > 0)
		return;
	unsigned b = ip_hash(ipc->addr);
	for (struct ip_count **p = &net.ips[b]; *p; p = &(*p)->next) {
		if (*p == ipc) {
			*p = ipc->next;
			free(ipc);
			return;
		}
	}
}

static void
conn_free(struct conn *c)
{
	if (c->close_ev)
		event_free(c->close_ev);
	if (c->line_deadline)
		event_free(c->line_deadline);
	if (c->bev)
		bufferevent_free(c->bev);
	if (c->accepted) {
		net.count--;
		ip_put(c->ipc);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		net.all = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
}

/* Tells the protocol, then frees: always from a libevent callback, never
 * from inside a conn_*() call the protocol made. */
static void
conn_finish(struct conn *c)
{
	if (c->h && c->h->on_closed)
		c->h->on_closed(c, c->ctx);
	conn_free(c);
}

/* All output is in the kernel: the TLS filter's and the socket's. */
static bool
conn_output_flushed(struct conn *c)
{
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
		return false;
	struct bufferevent *under = bufferevent_get_underlying(c->bev);
	return under == NULL ||
	    evbuffer_get_length(bufferevent_get_output(under)) == 0;
}

/* Closing: finish once the output is flushed, re-checking every 10 ms (the
 * TLS filter gives no callback when the socket below drains); a client that
 * does not read gets CONN_CLOSE_WAIT_MS. */
#define CONN_CLOSE_WAIT_MS 5000

static void
conn_on_close_ev(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	(void)fd;
	(void)what;
	if (c->bev && !conn_output_flushed(c) && c->close_wait_ms <
	    CONN_CLOSE_WAIT_MS) {
		struct timeval tv = { 0, 10000 };
		c->close_wait_ms += 10;
		event_add(c->close_ev, &tv);
		return;
	}
	conn_finish(c);
}

static void
conn_schedule_finish(struct conn *c)
{
	if (c->close_ev == NULL)
		c->close_ev = evtimer_new(net.base, conn_on_close_ev, c);
	if (!evtimer_pending(c->close_ev, NULL))
		event_active(c->close_ev, EV_TIMEOUT, 0);
}

/* A client that trickles a line one byte at a time resets the read
 * timeout with each byte; the whole line still has the timeout to end. */
static void
conn_on_line_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	(void)fd;
	(void)what;
	if (c->closing || c->h == NULL || c->h->on_timeout == NULL)
		return;
	log_info("conn=%llu event=timeout reason=slow-line ip=%s",
	    (unsigned long long)c->id, c->peer);
	c->h->on_timeout(c, c->ctx);
	if (!c->closing)
		conn_close(c);
}

static void
conn_line_pending(struct conn *c, bool pending)
{
	if (!pending || c->timeout == 0) {
		if (c->line_deadline)
			evtimer_del(c->line_deadline);
		return;
	}
	if (c->line_deadline == NULL)
		c->line_deadline = evtimer_new(net.base, conn_on_line_deadline,
		    c);
	if (!evtimer_pending(c->line_deadline, NULL)) {
		struct timeval tv = { (time_t)c->timeout, 0 };
		evtimer_add(c->line_deadline, &tv);
	}
}

static void
conn_on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	(void)bev;
	if (c->closing || c->h == NULL || c->h->on_input == NULL)
		return;
	c->h->on_input(c, c->ctx);
}

static void
conn_on_write(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	(void)bev;
	if (c->closing) {
		conn_schedule_finish(c);
		return;
	}
	if (c->h && c->h->on_drained)
		c->h->on_drained(c, c->ctx);
}

static void conn_log_tls_client(struct conn *c);

static void
conn_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	(void)bev;
	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) &&
	    !c->closing && c->h && c->h->on_timeout) {
		log_info("conn=%llu event=timeout ip=%s",
		    (unsigned long long)c->id, c->peer);
		c->h->on_timeout(c, c->ctx);
		if (!c->closing)
			conn_close(c);
		return;
	}
	if (what & BEV_EVENT_CONNECTED) {
		if (c->ssl && c->tls_client)
			conn_log_tls_client(c);
		else if (c->ssl)
			log_info("conn=%llu event=tls version=%s cipher=%s",
			    (unsigned long long)c->id, conn_tls_version(c),
			    conn_tls_cipher(c));
		return;
	}
	if ((what & BEV_EVENT_ERROR) && c->ssl) {
		unsigned long e = bufferevent_get_openssl_error(c->bev);
		char text[200] = "";
		if (e)
			ERR_error_string_n(e, text, sizeof(text));
		log_info("conn=%llu event=tls-error ip=%s error=\"%s\"",
		    (unsigned long long)c->id, c->peer, text);
		snprintf(c->error, sizeof(c->error), "TLS error: %s",
		    text[0] ? text : "connection lost");
	} else if (what & BEV_EVENT_ERROR) {
		const char *text =
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR());
		log_debug("conn=%llu event=error error=\"%s\"",
		    (unsigned long long)c->id, text);
		snprintf(c->error, sizeof(c->error), "%s", text);
	} else if (what & BEV_EVENT_EOF)
		snprintf(c->error, sizeof(c->error), "connection closed by peer");
	else if (what & BEV_EVENT_TIMEOUT)
		snprintf(c->error, sizeof(c->error), "write timeout");
	/* EOF, error, or write timeout: the connection is over. */
	c->closing = true;
	c->close_wait_ms = CONN_CLOSE_WAIT_MS;
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	conn_schedule_finish(c);
}

void
conn_set_handler(struct conn *c, const struct conn_handler *h, void *ctx)
{
	c->h = h;
	c->ctx = ctx;
}

enum conn_line
conn_read_line(struct conn *c, size_t max, struct buf *line)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer_ptr p;

	for (;;) {
		size_t avail = evbuffer_get_length(in);
		if (avail == 0) {
			conn_line_pending(c, false);
			return CONN_LINE_NONE;
		}
		p = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
		if (c->discarding) {
			if (p.pos < 0) {
				evbuffer_drain(in, avail);
				conn_line_pending(c, true);
				return CONN_LINE_NONE;
			}
			evbuffer_drain(in, (size_t)p.pos + 1);
			c->discarding = false;
			continue;
		}
		if (p.pos < 0) {
			if (avail <= max + 1) {	/* +1: a CR may follow */
				conn_line_pending(c, true);
				return CONN_LINE_NONE;
			}
			evbuffer_drain(in, avail);
			c->discarding = true;
			return CONN_LINE_TOO_LONG;
		}
		size_t len = (size_t)p.pos;
		conn_line_pending(c, false);
		buf_reset(line);
		if (len > max + 1) {
			evbuffer_drain(in, len + 1);
			return CONN_LINE_TOO_LONG;
		}
		/* Copy the line and its LF straight into line's storage. */
		buf_append(line, NULL, 0);
		buf_reserve_total(line, len + 1);
		evbuffer_remove(in, line->data, len + 1);
		if (len > 0 && line->data[len - 1] == '\r')
			len--;
		line->len = len;
		line->data[len] = '\0';
		if (len > max) {
			buf_reset(line);
			return CONN_LINE_TOO_LONG;
		}
		return CONN_LINE_OK;
	}
}

size_t
conn_input_length(const struct conn *c)
{
	return evbuffer_get_length(bufferevent_get_input(c->bev));
}

size_t
conn_read(struct conn *c, void *p, size_t n)
{
	int r = evbuffer_remove(bufferevent_get_input(c->bev), p, n);
	return r < 0 ? 0 : (size_t)r;
}

size_t
conn_peek(struct conn *c, void *p, size_t n)
{
	ev_ssize_t r = evbuffer_copyout(bufferevent_get_input(c->bev), p, n);
	return r < 0 ? 0 : (size_t)r;
}

void
conn_drain(struct conn *c, size_t n)
{
	evbuffer_drain(bufferevent_get_input(c->bev), n);
}

void
conn_write(struct conn *c, const void *p, size_t n)
{
	if (c->closing)
		return;
	bufferevent_write(c->bev, p, n);
}

void
conn_puts(struct conn *c, const char *s)
{
	conn_write(c, s, strlen(s));
}

void
conn_printf(struct conn *c, const char *fmt, ...)
{
	va_list ap;
	if (c->closing)
		return;
	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	va_end(ap);
}

void
conn_vline(struct conn *c, const char *fmt, va_list ap)
{
	char line[1024];
	int n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 3)
		n = (int)sizeof(line) - 3;
	line[n++] = '\r';
	line[n++] = '\n';
	conn_write(c, line, (size_t)n);
}

size_t
conn_output_length(const struct conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev));
}

void
conn_pause(struct conn *c)
{
	c->paused = true;
	bufferevent_disable(c->bev, EV_READ);
}

void
conn_resume(struct conn *c)
{
	c->paused = false;
	if (!c->closing)
		bufferevent_enable(c->bev, EV_READ);
}

void
conn_set_timeout(struct conn *c, unsigned seconds)
{
	struct timeval tv = { (time_t)seconds, 0 };
	c->timeout = seconds;
	bufferevent_set_timeouts(c->bev, seconds ? &tv : NULL,
	    seconds ? &tv : NULL);
}

void
conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	bufferevent_disable(c->bev, EV_READ);
	conn_schedule_finish(c);
}

bool
conn_is_closing(const struct conn *c)
{
	return c->closing;
}

const char *
conn_peer_addr(const struct conn *c)
{
	return c->peer;
}

unsigned
conn_peer_port(const struct conn *c)
{
	return c->peer_port;
}

const char *
conn_local_addr(const struct conn *c)
{
	return c->local;
}

enum service
conn_service(const struct conn *c)
{
	return c->svc;
}

uint64_t
conn_id(const struct conn *c)
{
	return c->id;
}

bool
conn_is_tls(const struct conn *c)
{
	return c->tls;
}

/* Wraps c->bev in a TLS filter for ssl (taken over), in the role that
 * state says. */
static int
conn_wrap_ssl(struct conn *c, SSL *ssl, enum bufferevent_ssl_state state)
{
	/* Without a high watermark below it, the filter would encrypt all
	 * queued output at once into the socket's buffer, and the protocol's
	 * output limits would never take effect. */
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 64 * 1024);
	struct bufferevent *tls = bufferevent_openssl_filter_new(net.base,
	    c->bev, ssl, state,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (tls == NULL) {
		SSL_free(ssl);
		return -1;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	c->bev = tls;
	c->ssl = ssl;
	c->tls = true;
	bufferevent_setwatermark(c->bev, EV_READ, 0, CONN_INPUT_HIGH);
	bufferevent_setcb(c->bev, conn_on_read, conn_on_write, conn_on_event, c);
	conn_set_timeout(c, c->timeout);
	if (!c->paused)
		bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	return 0;
}

/* Wraps c->bev in a TLS filter, as server. */
static int
conn_wrap_tls(struct conn *c)
{
	SSL_CTX *ctx = tls_current_ctx();
	if (ctx == NULL)
		return -1;
	SSL *ssl = SSL_new(ctx);
	if (ssl == NULL)
		return -1;
	return conn_wrap_ssl(c, ssl, BUFFEREVENT_SSL_ACCEPTING);
}

/* Plaintext pipelined after the STARTTLS exchange must never be read as
 * if it came through TLS (CVE-2011-0411 and its mirror in clients). */
static void
conn_discard_plaintext(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t junk = evbuffer_get_length(in);
	if (junk) {
		log_info("conn=%llu event=tls-injection-discarded octets=%zu",
		    (unsigned long long)c->id, junk);
		evbuffer_drain(in, junk);
	}
	c->discarding = false;
}

int
conn_start_tls(struct conn *c)
{
	if (c->tls || c->closing || tls_current_ctx() == NULL)
		return -1;
	conn_discard_plaintext(c);
	return conn_wrap_tls(c);
}

const char *
conn_tls_version(const struct conn *c)
{
	return c->ssl ? SSL_get_version(c->ssl) : "";
}

int
conn_tls_exporter(const struct conn *c, unsigned char out[32])
{
	static const char label[] = "EXPORTER-Channel-Binding";
	if (c->ssl == NULL || !SSL_is_init_finished(c->ssl))
		return -1;
	if (SSL_export_keying_material(c->ssl, out, 32, label,
	    sizeof(label) - 1, NULL, 0, 0) != 1)
		return -1;
	return 0;
}

const char *
conn_tls_cipher(const struct conn *c)
{
	return c->ssl ? SSL_get_cipher_name(c->ssl) : "";
}

/* ---- listeners ---- */

static void
sockaddr_text(const struct sockaddr *sa, char *out, size_t n,
    unsigned *port)
{
	const void *a;
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;
		a = &s6->sin6_addr;
		if (port)
			*port = ntohs(s6->sin6_port);
		/* Report v4-mapped v6 addresses as plain IPv4. */
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], out,
			    (socklen_t)n);
			return;
		}
	} else {
		const struct sockaddr_in *s4 = (const void *)sa;
		a = &s4->sin_addr;
		if (port)
			*port = ntohs(s4->sin_port);
	}
	if (inet_ntop(sa->sa_family, a, out, (socklen_t)n) == NULL)
		snprintf(out, n, "unknown");
}

static void
net_on_accept(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct listener_rec *lr = arg;
	struct sockaddr_storage local;
	socklen_t llen = sizeof(local);
	(void)l;
	(void)salen;

	char peer[INET6_ADDRSTRLEN];
	unsigned port = 0;
	sockaddr_text(sa, peer, sizeof(peer), &port);
	struct conn *c = conn_new(fd, lr->svc, peer);
	if (c == NULL)
		return;
	c->peer_port = port;
	if (getsockname(fd, (struct sockaddr *)&local, &llen) == 0)
		sockaddr_text((struct sockaddr *)&local, c->local,
		    sizeof(c->local), NULL);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	enum conn_refusal refusal = CONN_ACCEPTED;
	struct ip_count *ipc = ip_get(c->peer);
	if (net.count >= net.max_total)
		refusal = CONN_REFUSED_TOTAL;
	else if (ipc->n >= net.max_per_ip)
		refusal = CONN_REFUSED_PER_IP;
	if (refusal == CONN_ACCEPTED) {
		c->accepted = true;
		c->ipc = ipc;
		ipc->n++;
		net.count++;
	} else if (ipc->n == 0) {
		ipc->n = 1;	/* let ip_put() remove the fresh entry */
		ip_put(ipc);
	}
	log_info("conn=%llu event=connect service=%s ip=%s port=%u%s",
	    (unsigned long long)c->id, service_name(c->svc), c->peer,
	    c->peer_port, refusal == CONN_ACCEPTED ? "" :
	    refusal == CONN_REFUSED_TOTAL ? " refused=max_connections" :
	    " refused=max_connections_per_ip");
	if (refusal != CONN_ACCEPTED && service_implicit_tls(c->svc)) {
		/* No TLS handshake (CPU, memory) for a refused connection. */
		conn_close(c);
		return;
	}
	if (service_implicit_tls(c->svc) && conn_wrap_tls(c) < 0) {
		log_warnx("conn=%llu event=tls-unavailable",
		    (unsigned long long)c->id);
		conn_close(c);
		return;
	}
	lr->fn(c, refusal, lr->arg);
}

struct conn *
conn_new(int fd, enum service svc, const char *peer)
{
	evutil_make_socket_nonblocking(fd);
	struct conn *c = x_calloc(1, sizeof(*c));
	c->svc = svc;
	c->id = ++net.next_id;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	c->bev = bufferevent_socket_new(net.base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		close(fd);
		free(c);
		return NULL;
	}
	bufferevent_setwatermark(c->bev, EV_READ, 0, CONN_INPUT_HIGH);
	bufferevent_setcb(c->bev, conn_on_read, conn_on_write, conn_on_event, c);
	c->next = net.all;
	if (net.all)
		net.all->prev = c;
	net.all = c;
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	return c;
}

void
net_init(struct event_base *base, unsigned max_total, unsigned max_per_ip)
{
	net.base = base;
	net.max_total = max_total;
	net.max_per_ip = max_per_ip;
}

static int
net_listen_one(enum service svc, const char *hostport, conn_accept_fn fn,
    void *arg, char **error_r)
{
	char host[256], port[16];
	struct evutil_addrinfo hints, *res = NULL;

	if (config_parse_hostport(hostport, host, sizeof(host), port,
	    sizeof(port)) < 0) {
		*error_r = x_asprintf("%s: bad listen address \"%s\"",
		    service_name(svc), hostport);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_NUMERICSERV;
	int gai = evutil_getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (gai != 0) {
		*error_r = x_asprintf("%s: %s: %s", service_name(svc),
		    hostport, evutil_gai_strerror(gai));
		return -1;
	}
	struct listener_rec *lr = x_calloc(1, sizeof(*lr));
	lr->svc = svc;
	lr->fn = fn;
	lr->arg = arg;
	lr->l = evconnlistener_new_bind(net.base, net_on_accept, lr,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
	    1024, res->ai_addr, (int)res->ai_addrlen);
	evutil_freeaddrinfo(res);
	if (lr->l == NULL) {
		*error_r = x_asprintf("%s: cannot listen on %s: %s",
		    service_name(svc), hostport, strerror(errno));
		free(lr);
		return -1;
	}
	lr->next = net.listeners;
	net.listeners = lr;
	log_info("event=listen service=%s address=%s", service_name(svc),
	    hostport);
	return 0;
}

int
net_listen(enum service svc, const char *list, conn_accept_fn fn, void *arg,
    char **error_r)
{
	char *copy = x_strdup(list), *save = NULL;
	int r = 0;

	for (char *tok = strtok_r(copy, ",", &save); tok && r == 0;
	    tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ' || *tok == '\t')
			tok++;
		size_t n = strlen(tok);
		while (n > 0 && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
			tok[--n] = '\0';
		if (n == 0)
			continue;
		r = net_listen_one(svc, tok, fn, arg, error_r);
	}
	free(copy);
	return r;
}

void
net_close_listeners(void)
{
	while (net.listeners) {
		struct listener_rec *lr = net.listeners;
		net.listeners = lr->next;
		evconnlistener_free(lr->l);
		free(lr);
	}
}

unsigned
net_connection_count(void)
{
	return net.count;
}

void
net_close_all(void)
{
	while (net.all)
		conn_finish(net.all);
}

/* ---- errors, abort ---- */

const char *
conn_error(const struct conn *c)
{
	return c->error;
}

void
conn_abort(struct conn *c)
{
	if (c->closing && c->close_wait_ms >= CONN_CLOSE_WAIT_MS)
		return;
	c->closing = true;
	c->close_wait_ms = CONN_CLOSE_WAIT_MS;	/* no waiting for output */
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	conn_schedule_finish(c);
}

/* ---- outbound connections ---- */

struct conn_connect {
	struct event *ev;
	int fd;
	int early_errno;	/* connect() failed at once */
	enum service svc;
	char peer[INET6_ADDRSTRLEN];
	unsigned port;
	conn_connect_fn fn;
	void *arg;
};

/* A numeric address into ss; 0 or -1. */
static int
conn_parse_addr(const char *text, unsigned port, struct sockaddr_storage *ss,
    socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, text, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, text, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*s6);
		return 0;
	}
	return -1;
}

static void
conn_connect_free(struct conn_connect *cc)
{
	if (cc->ev)
		event_free(cc->ev);
	if (cc->fd >= 0)
		close(cc->fd);
	free(cc);
}

static void
conn_on_connect(evutil_socket_t fd, short what, void *arg)
{
	struct conn_connect *cc = arg;
	conn_connect_fn fn = cc->fn;
	void *fn_arg = cc->arg;
	char error[128];
	int err = cc->early_errno;
	socklen_t elen = sizeof(err);

	if (err == 0 && (what & EV_TIMEOUT))
		err = ETIMEDOUT;
	else if (err == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err,
	    &elen) < 0)
		err = errno;
	if (err != 0) {
		snprintf(error, sizeof(error), "%s", err == ETIMEDOUT ?
		    "connection timed out" : strerror(err));
		log_info("event=connect-failed ip=%s port=%u error=\"%s\"",
		    cc->peer, cc->port, error);
		conn_connect_free(cc);
		fn(NULL, error, fn_arg);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct conn *c = conn_new(cc->fd, cc->svc, cc->peer);
	cc->fd = -1;		/* conn_new owns (or closed) it */
	if (c != NULL) {
		struct sockaddr_storage local;
		socklen_t llen = sizeof(local);
		c->peer_port = cc->port;
		if (getsockname(fd, (struct sockaddr *)&local, &llen) == 0)
			sockaddr_text((struct sockaddr *)&local, c->local,
			    sizeof(c->local), NULL);
		log_info("conn=%llu event=connect-out ip=%s port=%u local=%s",
		    (unsigned long long)c->id, c->peer, c->peer_port,
		    c->local);
	}
	conn_connect_free(cc);
	fn(c, c ? NULL : "out of resources", fn_arg);
}

/* Makes the socket, binds source, starts connect(); 0 or -1 (*error_r). */
static int
conn_connect_start(struct conn_connect *cc, const struct sockaddr_storage *ss,
    socklen_t len, const char *source, char **error_r)
{
	struct sockaddr_storage src;
	socklen_t slen;
	if (source && source[0] && (conn_parse_addr(source, 0, &src,
	    &slen) < 0 || src.ss_family != ss->ss_family)) {
		*error_r = x_asprintf("source address %s is not a numeric "
		    "address of the family of %s", source, cc->peer);
		return -1;
	}
	cc->fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (cc->fd < 0) {
		*error_r = x_asprintf("socket: %s", strerror(errno));
		return -1;
	}
	if (source && source[0] && bind(cc->fd, (struct sockaddr *)&src,
	    slen) < 0) {
		*error_r = x_asprintf("bind %s: %s", source, strerror(errno));
		return -1;
	}
	if (connect(cc->fd, (const struct sockaddr *)ss, len) < 0 &&
	    errno != EINPROGRESS)
		cc->early_errno = errno;
	return 0;
}

struct conn_connect *
conn_connect(const char *addr, unsigned port, const char *source,
    unsigned timeout_ms, enum service svc, conn_connect_fn fn, void *arg,
    char **error_r)
{
	struct sockaddr_storage ss;
	socklen_t len;
	if (port == 0 || port > 65535 || conn_parse_addr(addr, port, &ss,
	    &len) < 0) {
		*error_r = x_asprintf("%s port %u is not a numeric address "
		    "and port", addr, port);
		return NULL;
	}
	struct conn_connect *cc = x_calloc(1, sizeof(*cc));
	cc->fd = -1;
	cc->svc = svc;
	cc->port = port;
	cc->fn = fn;
	cc->arg = arg;
	sockaddr_text((struct sockaddr *)&ss, cc->peer, sizeof(cc->peer),
	    NULL);
	if (conn_connect_start(cc, &ss, len, source, error_r) < 0) {
		conn_connect_free(cc);
		return NULL;
	}
	cc->ev = event_new(net.base, cc->fd, EV_WRITE, conn_on_connect, cc);
	if (cc->ev == NULL)
		fatalx("event_new failed");
	struct timeval tv = { (time_t)(timeout_ms / 1000),
	    (suseconds_t)(timeout_ms % 1000) * 1000 };
	if (cc->early_errno)
		event_active(cc->ev, EV_WRITE, 0);
	else
		event_add(cc->ev, timeout_ms ? &tv : NULL);
	return cc;
}

void
conn_connect_cancel(struct conn_connect *cc)
{
	if (cc)
		conn_connect_free(cc);
}

/* ---- client TLS ---- */

static bool
is_ip_literal(const char *s)
{
	unsigned char a[16];
	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

/* Sets the names and TLSA records of o on ssl; 0 or -1. */
static int
conn_tls_client_names(SSL *ssl, const struct conn_tls_client *o)
{
	const char *name = o->server_name;
	if (o->ntlsa > 0) {
		if (name == NULL || name[0] == '\0' || is_ip_literal(name) ||
		    SSL_dane_enable(ssl, name) <= 0)
			return -1;
		SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
		for (size_t i = 0; i < o->ntlsa; i++) {
			const struct conn_tlsa *t = &o->tlsa[i];
			/* 0: unusable (skipped), < 0: malformed (skipped). */
			if (SSL_dane_tlsa_add(ssl, t->usage, t->selector,
			    t->mtype, t->data, t->len) <= 0)
				ERR_clear_error();
		}
		return 0;
	}
	if (name == NULL || name[0] == '\0')
		return 0;
	if (is_ip_literal(name))
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
		    name) == 1 ? 0 : -1;
	if (SSL_set_tlsext_host_name(ssl, name) != 1 ||
	    SSL_set1_host(ssl, name) != 1)
		return -1;
	return 0;
}

int
conn_start_tls_client(struct conn *c, const struct conn_tls_client *o)
{
	SSL_CTX *ctx;
	if (c->tls || c->closing || (ctx = tls_client_ctx()) == NULL)
		return -1;
	SSL *ssl = SSL_new(ctx);
	if (ssl == NULL)
		return -1;
	if (conn_tls_client_names(ssl, o) < 0) {
		ERR_clear_error();
		SSL_free(ssl);
		return -1;
	}
	conn_discard_plaintext(c);
	c->tls_client = true;
	return conn_wrap_ssl(c, ssl, BUFFEREVENT_SSL_CONNECTING);
}

enum conn_tls_auth
conn_tls_peer_auth(const struct conn *c, const char **reason_r)
{
	const char *reason = "ok";
	enum conn_tls_auth a = CONN_TLS_AUTH_NONE;
	long v;

	if (c->ssl == NULL || !SSL_is_init_finished(c->ssl))
		reason = "no TLS";
	else if (SSL_get0_peer_certificate(c->ssl) == NULL)
		reason = "no peer certificate";
	else if ((v = SSL_get_verify_result(c->ssl)) != X509_V_OK)
		reason = X509_verify_cert_error_string(v);
	else if (SSL_get0_dane_authority(c->ssl, NULL, NULL) >= 0)
		a = CONN_TLS_AUTH_DANE;
	else
		a = CONN_TLS_AUTH_PKIX;
	if (reason_r)
		*reason_r = reason;
	return a;
}

unsigned
conn_tls_peer_chain_length(const struct conn *c)
{
	STACK_OF(X509) *chain = c->ssl ? SSL_get_peer_cert_chain(c->ssl) :
	    NULL;
	return chain ? (unsigned)sk_X509_num(chain) : 0;
}

int
conn_tls_peer_digest(const struct conn *c, unsigned depth, bool spki,
    bool sha512, unsigned char out[64], size_t *len_r)
{
	const EVP_MD *md = sha512 ? EVP_sha512() : EVP_sha256();
	unsigned n = 0;
	if (depth >= conn_tls_peer_chain_length(c))
		return -1;
	X509 *x = sk_X509_value(SSL_get_peer_cert_chain(c->ssl), (int)depth);
	if (!spki) {
		if (X509_digest(x, md, out, &n) != 1)
			return -1;
		*len_r = n;
		return 0;
	}
	/* The DER of the whole SubjectPublicKeyInfo (RFC 6698 selector 1),
	 * not X509_pubkey_digest()'s key bits alone. */
	unsigned char *der = NULL;
	int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	int ok = len > 0 && EVP_Digest(der, (size_t)len, out, &n, md,
	    NULL) == 1;
	OPENSSL_free(der);
	if (!ok)
		return -1;
	*len_r = n;
	return 0;
}

static void
conn_log_tls_client(struct conn *c)
{
	const char *reason;
	enum conn_tls_auth a = conn_tls_peer_auth(c, &reason);
	log_info("conn=%llu event=tls-client version=%s cipher=%s auth=%s "
	    "verify=\"%s\"", (unsigned long long)c->id, conn_tls_version(c),
	    conn_tls_cipher(c), a == CONN_TLS_AUTH_DANE ? "dane" :
	    a == CONN_TLS_AUTH_PKIX ? "pkix" : "none", reason);
}
