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

#include "core/xmalloc.h"
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
	unsigned timeout;
	unsigned close_wait_ms;
	SSL *ssl;
	struct event *close_ev;
	struct event *line_deadline;	/* a line must end within timeout */
	struct ip_count *ipc;
	struct conn *prev, *next;
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
		if (c->ssl)
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
	} else if (what & BEV_EVENT_ERROR)
		log_debug("conn=%llu event=error error=\"%s\"",
		    (unsigned long long)c->id,
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
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
	/* Without a high watermark below it, the filter would encrypt all
	 * queued output at once into the socket's buffer, and the protocol's
	 * output limits would never take effect. */
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 64 * 1024);
	struct bufferevent *tls = bufferevent_openssl_filter_new(net.base,
	    c->bev, ssl, BUFFEREVENT_SSL_ACCEPTING,
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

int
conn_start_tls(struct conn *c)
{
	if (c->tls || c->closing || tls_current_ctx() == NULL)
		return -1;
	/* Plaintext pipelined after the command must never be read as if it
	 * came through TLS. */
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t junk = evbuffer_get_length(in);
	if (junk) {
		log_info("conn=%llu event=tls-injection-discarded octets=%zu",
		    (unsigned long long)c->id, junk);
		evbuffer_drain(in, junk);
	}
	c->discarding = false;
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
