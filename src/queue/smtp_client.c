/* The SMTP client session: connecting, greeting, EHLO/HELO, STARTTLS,
 * AUTH, QUIT, and the end of a connection. The mail transactions are in
 * smtp_client_txn.c.
 * Untrusted input: the remote server's replies (read here, parsed by
 * smtp_client_reply.c). */
#include "queue/smtp_client.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth_async.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "queue/smtp_client_int.h"

static const char *const sc_state_names[] = {
#define SC_STATE_NAME(name, text) [SC_##name] = text,
	SC_STATE_LIST(SC_STATE_NAME)
#undef SC_STATE_NAME
};

static const struct smtp_client_timeouts sc_default_timeouts = {
	.connect = 30 * 1000,
	.greeting = 5 * 60 * 1000,
	.command = 5 * 60 * 1000,
	.data_init = 2 * 60 * 1000,
	.data_block = 3 * 60 * 1000,
	.data_end = 10 * 60 * 1000,
	.quit = 10 * 1000,
};

static uint64_t sc_next_id;

static void sc_connect(struct smtp_client *s);
static void sc_send_ehlo(struct smtp_client *s);

const char *
smtp_client_state_name(const struct smtp_client *s)
{
	return sc_state_names[s->state];
}

const struct smtp_ext *
smtp_client_extensions(const struct smtp_client *s)
{
	return &s->ext;
}

bool
smtp_client_is_tls(const struct smtp_client *s)
{
	return s->conn != NULL && conn_is_tls(s->conn);
}

const char *
sc_addr(const struct smtp_client *s)
{
	return s->addr_i < s->naddrs ? s->addrs[s->addr_i] : "";
}

void
sc_enter_state(struct smtp_client *s, enum sc_state st)
{
	if (s->state != st)
		log_debug("smtp-client=%llu state=%s->%s",
		    (unsigned long long)s->id, sc_state_names[s->state],
		    sc_state_names[st]);
	s->state = st;
}

void
sc_cmd(struct smtp_client *s, const char *fmt, ...)
{
	va_list ap;
	buf_reset(&s->out);
	va_start(ap, fmt);
	buf_vprintf(&s->out, fmt, ap);
	va_end(ap);
	log_debug("smtp-client=%llu send=\"%s\"", (unsigned long long)s->id,
	    buf_cstr(&s->out));
	buf_append(&s->out, "\r\n", 2);
	conn_write(s->conn, s->out.data, s->out.len);
}

void
sc_wait(struct smtp_client *s, unsigned ms, const char *what)
{
	s->waiting = what;
	timer_start(s->timer, ms);
}

static void
sc_fail_vset(struct smtp_client *s, unsigned code, const char *enhanced,
    bool remote, const char *fmt, va_list ap)
{
	if (s->fail.set)
		return;
	s->fail.set = true;
	s->fail.code = code;
	s->fail.remote = remote;
	snprintf(s->fail.enhanced, sizeof(s->fail.enhanced), "%s", enhanced);
	x_free(&s->fail.text);
	struct buf b = BUF_INIT;
	buf_vprintf(&b, fmt, ap);
	s->fail.text = x_strdup(buf_cstr(&b));
	buf_free(&b);
	log_info("smtp-client=%llu event=failed host=%s ip=%s code=%u "
	    "dsn=%s error=\"%s\"", (unsigned long long)s->id, s->host,
	    sc_addr(s), code, s->fail.enhanced, s->fail.text);
}

static void
sc_fail_set(struct smtp_client *s, unsigned code, const char *enhanced,
    bool remote, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sc_fail_vset(s, code, enhanced, remote, fmt, ap);
	va_end(ap);
}

void
sc_fail(struct smtp_client *s, unsigned code, const char *enhanced,
    const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sc_fail_vset(s, code, enhanced, false, fmt, ap);
	va_end(ap);
	timer_stop(s->timer);
	if (s->conn)
		conn_abort(s->conn);
}

/* A reply ends the connection: a refused greeting, a failed EHLO, a 421.
 * quit: say goodbye first (RFC 5321 3.1 for a 554 greeting). */
void
sc_fail_reply(struct smtp_client *s, const struct smtp_reply *r, bool quit)
{
	char enh[SMTP_ENHANCED_MAX];
	char *text = smtp_reply_flat_text(r);
	smtp_reply_status(r, enh);
	sc_fail_set(s, r->code, enh, true, "%s", text);
	free(text);
	timer_stop(s->timer);
	if (s->conn == NULL)
		return;
	if (quit && s->state != SC_QUIT) {
		sc_cmd(s, "QUIT");
		conn_close(s->conn);
	} else
		conn_abort(s->conn);
}

/* ---- the end ---- */

static void
sc_free(struct smtp_client *s)
{
	while (s->head) {
		struct sc_message *m = s->head;
		s->head = m->next;
		sc_message_free(m);
	}
	if (s->txn.fd >= 0)
		close(s->txn.fd);
	free(s->txn.order);
	timer_free(&s->timer);
	timer_free(&s->kick);
	smtp_reply_free(&s->reply);
	buf_free(&s->line);
	buf_free(&s->out);
	free(s->rbuf);
	for (size_t i = 0; i < s->naddrs; i++)
		free(s->addrs[i]);
	free(s->addrs);
	for (size_t i = 0; i < s->ntlsa; i++)
		free((void *)s->tlsa[i].data);
	free(s->tlsa);
	if (s->password) {
		explicit_bzero(s->password, strlen(s->password));
		free(s->password);
	}
	free(s->user);
	free(s->helo);
	free(s->host);
	free(s->source);
	free(s->fail.text);
	free(s);
}

/* Every message is reported, then the session: s is freed after. */
static void
sc_finish(struct smtp_client *s)
{
	struct smtp_client_outcome o;
	memset(&o, 0, sizeof(o));
	timer_stop(s->timer);
	sc_enter_state(s, SC_CLOSED);
	s->closing = true;
	if (!s->fail.set && !s->quit_done)
		sc_fail_set(s, 0, "4.4.2", false, "session with %s ended",
		    s->host);
	sc_fail_queued(s);
	o.ok = s->quit_done && !s->fail.set;
	o.reached = s->reached;
	o.code = s->fail.set ? s->fail.code : 0;
	snprintf(o.enhanced, sizeof(o.enhanced), "%s",
	    s->fail.set ? s->fail.enhanced : "");
	o.text = s->fail.set && s->fail.text ? s->fail.text : "";
	o.addr = s->addr_i < s->naddrs ? s->addrs[s->addr_i] :
	    s->naddrs ? s->addrs[s->naddrs - 1] : "";
	log_info("smtp-client=%llu event=end host=%s ok=%s reached=%s",
	    (unsigned long long)s->id, s->host, o.ok ? "yes" : "no",
	    o.reached ? "yes" : "no");
	s->in_callback++;
	s->done(s, &o, s->arg);
	sc_free(s);
}

/* Another attempt for a session that never got ready: the same address
 * in plaintext after a failed opportunistic TLS, else the next one. */
static bool
sc_retry(struct smtp_client *s)
{
	if (s->reached || s->closing || s->given_conn)
		return false;
	/* Only a failed handshake (no reply to the EHLO inside TLS) earns
	 * a plaintext retry, never a failure after it. */
	if (s->tls == SMTP_CLIENT_TLS_OPPORTUNISTIC && s->tls_started &&
	    !s->tls_done && !s->plaintext_retry) {
		s->plaintext_retry = true;
		log_info("smtp-client=%llu event=retry-without-tls ip=%s",
		    (unsigned long long)s->id, sc_addr(s));
	} else {
		if (s->addr_i + 1 >= s->naddrs)
			return false;
		s->addr_i++;
		s->plaintext_retry = false;
	}
	s->tls_started = false;
	s->tls_done = false;
	s->fail.set = false;
	sc_connect(s);
	return true;
}

static void
sc_on_closed(struct conn *c, void *arg)
{
	struct smtp_client *s = arg;
	timer_stop(s->timer);
	if (s->state == SC_QUIT)
		s->quit_done = true;
	else if (!s->fail.set) {
		const char *why = conn_error(c);
		sc_fail_set(s, 0, "4.4.2", false,
		    "lost connection with %s[%s] while waiting for %s%s%s",
		    s->host, sc_addr(s), s->waiting ? s->waiting : "a reply",
		    why[0] ? ": " : "", why);
	}
	s->conn = NULL;
	if (s->txn_active)
		sc_txn_abort(s);
	if (s->quit_done || !sc_retry(s))
		sc_finish(s);
}

/* ---- replies ---- */

static void
sc_greeting_reply(struct smtp_client *s, const struct smtp_reply *r)
{
	if (smtp_reply_class(r) == 2)
		sc_send_ehlo(s);
	else
		sc_fail_reply(s, r, true);
}

static void sc_after_ehlo(struct smtp_client *s);

static void
sc_ehlo_reply(struct smtp_client *s, const struct smtp_reply *r)
{
	char names[160];
	if (smtp_reply_class(r) == 2) {
		smtp_ext_parse(r, &s->ext);
		smtp_ext_names(s->ext.flags, names, sizeof(names));
		log_debug("smtp-client=%llu extensions=\"%s\" size=%llu",
		    (unsigned long long)s->id, names,
		    (unsigned long long)s->ext.size_max);
		sc_after_ehlo(s);
	} else if (smtp_reply_class(r) == 5 && s->state == SC_EHLO) {
		sc_enter_state(s, SC_HELO);
		sc_cmd(s, "HELO %s", s->helo);
		sc_wait(s, s->to.command, "reply to HELO");
	} else
		sc_fail_reply(s, r, true);
}

static void
sc_send_ehlo(struct smtp_client *s)
{
	memset(&s->ext, 0, sizeof(s->ext));
	sc_enter_state(s, SC_EHLO);
	sc_cmd(s, "EHLO %s", s->helo);
	sc_wait(s, s->to.command, s->tls_started ?
	    "TLS handshake and reply to EHLO" : "reply to EHLO");
}

static void
sc_ready(struct smtp_client *s)
{
	s->reached = true;
	sc_enter_state(s, SC_READY);
	log_info("smtp-client=%llu event=ready host=%s ip=%s tls=%s",
	    (unsigned long long)s->id, s->host, sc_addr(s),
	    conn_is_tls(s->conn) ? conn_tls_version(s->conn) : "no");
	sc_next(s);
}

static void
sc_auth(struct smtp_client *s)
{
	if (s->user == NULL) {
		sc_ready(s);
		return;
	}
	if (!conn_is_tls(s->conn) && !s->auth_without_tls) {
		sc_fail(s, 0, "4.7.0", "not sending credentials to %s[%s] "
		    "without TLS", s->host, sc_addr(s));
		return;
	}
	if (!(s->ext.flags & SMTP_EXT(AUTH)) ||
	    !(s->ext.auth & SMTP_AUTH_PLAIN)) {
		sc_fail(s, 0, "4.7.0", "%s[%s] does not offer AUTH PLAIN",
		    s->host, sc_addr(s));
		return;
	}
	char *b64 = auth_plain_response(s->user, s->password);
	log_debug("smtp-client=%llu send=\"AUTH PLAIN (credentials)\"",
	    (unsigned long long)s->id);
	conn_puts(s->conn, "AUTH PLAIN ");
	conn_puts(s->conn, b64);
	conn_puts(s->conn, "\r\n");
	explicit_bzero(b64, strlen(b64));
	free(b64);
	sc_enter_state(s, SC_AUTH);
	sc_wait(s, s->to.command, "reply to AUTH");
}

/* Under TLS_VERIFY, the peer must be authenticated before anything but
 * EHLO is sent. */
static bool
sc_tls_acceptable(struct smtp_client *s)
{
	const char *why;
	if (s->tls != SMTP_CLIENT_TLS_VERIFY)
		return true;
	if (conn_tls_peer_auth(s->conn, &why) != CONN_TLS_AUTH_NONE)
		return true;
	sc_fail(s, 0, "4.7.5", "TLS certificate of %s[%s] not verified: %s",
	    s->host, sc_addr(s), why);
	return false;
}

static void
sc_after_ehlo(struct smtp_client *s)
{
	if (conn_is_tls(s->conn)) {
		s->tls_done = true;
		if (sc_tls_acceptable(s))
			sc_auth(s);
		return;
	}
	if (s->tls != SMTP_CLIENT_TLS_NONE && !s->plaintext_retry &&
	    (s->ext.flags & SMTP_EXT(STARTTLS))) {
		sc_enter_state(s, SC_STARTTLS);
		sc_cmd(s, "STARTTLS");
		sc_wait(s, s->to.command, "reply to STARTTLS");
		return;
	}
	if (s->tls >= SMTP_CLIENT_TLS_ENCRYPT) {
		sc_fail(s, 0, "4.7.10", "TLS is required, but %s[%s] does "
		    "not offer STARTTLS", s->host, sc_addr(s));
		return;
	}
	sc_auth(s);
}

static void
sc_starttls_reply(struct smtp_client *s, const struct smtp_reply *r)
{
	if (smtp_reply_class(r) != 2) {
		/* RFC 3207 4: the session may go on without TLS. */
		if (s->tls == SMTP_CLIENT_TLS_OPPORTUNISTIC)
			sc_auth(s);
		else
			sc_fail_reply(s, r, true);
		return;
	}
	struct conn_tls_client o = {
		.server_name = s->host,
		.tlsa = s->tls == SMTP_CLIENT_TLS_VERIFY ? s->tlsa : NULL,
		.ntlsa = s->tls == SMTP_CLIENT_TLS_VERIFY ? s->ntlsa : 0,
	};
	s->tls_started = true;
	if (conn_start_tls_client(s->conn, &o) < 0) {
		sc_fail(s, 0, "4.7.5", "cannot start TLS with %s[%s]",
		    s->host, sc_addr(s));
		return;
	}
	sc_send_ehlo(s);
}

static void
sc_auth_reply(struct smtp_client *s, const struct smtp_reply *r)
{
	if (smtp_reply_class(r) == 2)
		sc_ready(s);
	else
		sc_fail_reply(s, r, true);
}

static void
sc_quit_reply(struct smtp_client *s, const struct smtp_reply *r)
{
	(void)r;
	s->quit_done = true;
	timer_stop(s->timer);
	conn_close(s->conn);
}

static void
sc_unexpected_reply(struct smtp_client *s, const struct smtp_reply *r)
{
	char *text = smtp_reply_flat_text(r);
	sc_fail(s, 0, "4.5.0", "unexpected reply from %s[%s] in state %s: "
	    "%u %s", s->host, sc_addr(s), sc_state_names[s->state], r->code,
	    text);
	free(text);
}

static void
sc_dispatch(struct smtp_client *s, const struct smtp_reply *r)
{
	timer_stop(s->timer);
	log_debug("smtp-client=%llu state=%s reply=%u lines=%u",
	    (unsigned long long)s->id, sc_state_names[s->state], r->code,
	    r->lines);
	/* RFC 5321 3.8: the server is going away; whatever was pending
	 * fails temporarily. */
	if (r->code == 421 && s->state != SC_QUIT) {
		sc_fail_reply(s, r, false);
		return;
	}
	switch (s->state) {
	case SC_GREETING:
		sc_greeting_reply(s, r);
		break;
	case SC_EHLO:
	case SC_HELO:
		sc_ehlo_reply(s, r);
		break;
	case SC_STARTTLS:
		sc_starttls_reply(s, r);
		break;
	case SC_AUTH:
		sc_auth_reply(s, r);
		break;
	case SC_RSET:
		sc_rset_reply(s, r);
		break;
	case SC_MAIL:
	case SC_DATA:
	case SC_DATA_END:
	case SC_BDAT:
		sc_txn_reply(s, r);
		break;
	case SC_QUIT:
		sc_quit_reply(s, r);
		break;
	default:
		sc_unexpected_reply(s, r);
		break;
	}
}

/* ---- connection events ---- */

static bool
sc_conn_usable(const struct smtp_client *s, const struct conn *c)
{
	return s->conn == c && !s->fail.set && !conn_is_closing(c);
}

static void
sc_on_input(struct conn *c, void *arg)
{
	struct smtp_client *s = arg;
	while (sc_conn_usable(s, c)) {
		enum conn_line l = conn_read_line(c, SMTP_REPLY_LINE_MAX,
		    &s->line);
		if (l == CONN_LINE_NONE)
			return;
		enum smtp_reply_step st = l == CONN_LINE_TOO_LONG ?
		    SMTP_REPLY_BAD : smtp_reply_feed(&s->reply,
		    s->line.data ? s->line.data : "", s->line.len);
		if (l == CONN_LINE_TOO_LONG)
			s->reply.error = "reply line too long";
		if (st == SMTP_REPLY_BAD) {
			sc_fail(s, 0, "4.5.0", "malformed reply from %s[%s] "
			    "while waiting for %s: %s", s->host, sc_addr(s),
			    s->waiting ? s->waiting : "nothing",
			    s->reply.error);
			return;
		}
		if (st == SMTP_REPLY_DONE)
			sc_dispatch(s, &s->reply);
	}
}

static void
sc_on_drained(struct conn *c, void *arg)
{
	struct smtp_client *s = arg;
	if (sc_conn_usable(s, c) && (s->state == SC_DATA ||
	    s->state == SC_BDAT))
		sc_data_pump(s);
}

static const struct conn_handler sc_handler = {
	.on_input = sc_on_input,
	.on_drained = sc_on_drained,
	.on_closed = sc_on_closed,
};

static void
sc_on_connect(struct conn *c, const char *error, void *arg)
{
	struct smtp_client *s = arg;
	s->connecting = NULL;
	if (c == NULL) {
		sc_fail_set(s, 0, "4.4.1", false, "connect to %s[%s]:%u: %s",
		    s->host, sc_addr(s), s->port, error);
		if (!sc_retry(s))
			sc_finish(s);
		return;
	}
	s->conn = c;
	conn_set_handler(c, &sc_handler, s);
	smtp_reply_reset(&s->reply);
	sc_enter_state(s, SC_GREETING);
	sc_wait(s, s->to.greeting, "greeting");
}

/* Starts connecting to the current address, or the next usable one. */
static void
sc_connect(struct smtp_client *s)
{
	sc_enter_state(s, SC_CONNECTING);
	s->waiting = "connection";
	for (;;) {
		char *error = NULL;
		s->connecting = conn_connect(sc_addr(s), s->port, s->source,
		    s->to.connect, SVC_SMTP, sc_on_connect, s, &error);
		if (s->connecting)
			return;
		sc_fail_set(s, 0, "4.4.1", false, "%s", error);
		free(error);
		if (s->addr_i + 1 >= s->naddrs)
			break;
		s->addr_i++;
		s->fail.set = false;
	}
	/* Nothing could be tried: report from the loop, not from here. */
	s->closing = true;
	timer_start(s->kick, 0);
}

static void
sc_on_kick(void *arg)
{
	struct smtp_client *s = arg;
	if (s->state == SC_GREETING && s->conn != NULL) {
		sc_on_input(s->conn, s);
		return;
	}
	if (s->state == SC_CONNECTING && s->connecting == NULL &&
	    s->conn == NULL) {
		if (s->closing)
			sc_finish(s);
		else
			sc_connect(s);
		return;
	}
	if (s->state == SC_READY)
		sc_next(s);
}

static void
sc_on_timer(void *arg)
{
	struct smtp_client *s = arg;
	if (s->state == SC_QUIT) {
		s->quit_done = true;
		if (s->conn)
			conn_abort(s->conn);
		return;
	}
	sc_fail(s, 0, "4.4.2", "timeout from %s[%s] while waiting for %s",
	    s->host, sc_addr(s), s->waiting ? s->waiting : "a reply");
}

/* ---- API ---- */

static bool
sc_is_helo_name(const char *h)
{
	if (h == NULL || h[0] == '\0' || strlen(h) > 255)
		return false;
	for (; *h; h++)
		if ((unsigned char)*h <= ' ' || (unsigned char)*h >= 0x7f)
			return false;
	return true;
}

static unsigned
sc_timeout(unsigned given, unsigned dflt)
{
	return given ? given : dflt;
}

static void
sc_copy_timeouts(struct smtp_client *s, const struct smtp_client_timeouts *t)
{
	const struct smtp_client_timeouts *d = &sc_default_timeouts;
	s->to.connect = sc_timeout(t->connect, d->connect);
	s->to.greeting = sc_timeout(t->greeting, d->greeting);
	s->to.command = sc_timeout(t->command, d->command);
	s->to.data_init = sc_timeout(t->data_init, d->data_init);
	s->to.data_block = sc_timeout(t->data_block, d->data_block);
	s->to.data_end = sc_timeout(t->data_end, d->data_end);
	s->to.quit = sc_timeout(t->quit, d->quit);
}

static void
sc_copy_options(struct smtp_client *s, const struct smtp_client_options *o)
{
	s->helo = x_strdup(o->helo_name);
	s->addrs = x_calloc(o->naddrs, sizeof(*s->addrs));
	for (size_t i = 0; i < o->naddrs; i++)
		s->addrs[i] = x_strdup(o->addrs[i]);
	s->naddrs = o->naddrs;
	s->host = x_strdup(o->host_name && o->host_name[0] ? o->host_name :
	    o->addrs[0]);
	s->source = o->source && o->source[0] ? x_strdup(o->source) : NULL;
	s->port = o->port;
	s->tls = o->tls;
	if (o->ntlsa) {
		s->tlsa = x_calloc(o->ntlsa, sizeof(*s->tlsa));
		for (size_t i = 0; i < o->ntlsa; i++) {
			unsigned char *d = x_malloc(o->tlsa[i].len + 1);
			memcpy(d, o->tlsa[i].data, o->tlsa[i].len);
			s->tlsa[i] = o->tlsa[i];
			s->tlsa[i].data = d;
		}
		s->ntlsa = o->ntlsa;
	}
	if (o->auth_user) {
		s->user = x_strdup(o->auth_user);
		s->password = x_strdup(o->auth_password ? o->auth_password :
		    "");
	}
	s->auth_without_tls = o->auth_without_tls;
	sc_copy_timeouts(s, &o->timeouts);
}

/* A session in state CONNECTING, nothing started; o has addresses. */
static struct smtp_client *
sc_new(const struct smtp_client_options *o, smtp_client_done_fn done,
    void *arg)
{
	struct smtp_client *s = x_calloc(1, sizeof(*s));
	s->id = ++sc_next_id;
	s->done = done;
	s->arg = arg;
	s->txn.fd = -1;
	sc_copy_options(s, o);
	smtp_reply_init(&s->reply);
	s->rbuf = x_malloc(SC_READ_CHUNK);
	s->timer = timer_new(sc_on_timer, s);
	s->kick = timer_new(sc_on_kick, s);
	s->state = SC_CONNECTING;
	return s;
}

struct smtp_client *
smtp_client_new(const struct smtp_client_options *o,
    smtp_client_done_fn done, void *arg, char **error_r)
{
	if (!sc_is_helo_name(o->helo_name)) {
		*error_r = x_strdup("smtp client: no usable HELO name");
		return NULL;
	}
	if (o->naddrs == 0 || o->addrs == NULL || o->port == 0 ||
	    o->port > 65535) {
		*error_r = x_strdup("smtp client: no address or port");
		return NULL;
	}
	struct smtp_client *s = sc_new(o, done, arg);
	log_info("smtp-client=%llu event=start host=%s addresses=%zu port=%u",
	    (unsigned long long)s->id, s->host, s->naddrs, s->port);
	timer_start(s->kick, 0);
	return s;
}

struct smtp_client *
smtp_client_new_on_conn(struct conn *c, const struct smtp_client_options *o,
    smtp_client_done_fn done, void *arg, char **error_r)
{
	if (!sc_is_helo_name(o->helo_name)) {
		*error_r = x_strdup("smtp client: no usable HELO name");
		return NULL;
	}
	const char *peer = conn_peer_addr(c);
	struct smtp_client_options po = *o;
	po.addrs = &peer;
	po.naddrs = 1;
	po.port = conn_peer_port(c);
	struct smtp_client *s = sc_new(&po, done, arg);
	s->given_conn = true;
	s->conn = c;
	/* The client's own timers apply from now on, not the server
	 * session's read timeout. */
	conn_set_timeout(c, 0);
	conn_set_handler(c, &sc_handler, s);
	conn_resume(c);
	smtp_reply_reset(&s->reply);
	sc_enter_state(s, SC_GREETING);
	sc_wait(s, s->to.greeting, "greeting");
	log_info("smtp-client=%llu event=start host=%s ip=%s "
	    "on-connection=%llu", (unsigned long long)s->id, s->host,
	    sc_addr(s), (unsigned long long)conn_id(c));
	/* The greeting may be buffered already. */
	timer_start(s->kick, 0);
	return s;
}

int
smtp_client_send(struct smtp_client *s, const struct smtp_client_message *m,
    smtp_client_result_fn fn, void *arg)
{
	if (s->ending || s->closing || m->nrcpts == 0 || m->path == NULL ||
	    m->from == NULL)
		return -1;
	struct sc_message *q = sc_message_copy(m);
	q->fn = fn;
	q->arg = arg;
	if (s->tail)
		s->tail->next = q;
	else
		s->head = q;
	s->tail = q;
	if (s->state == SC_READY)
		timer_start(s->kick, 0);
	return 0;
}

void
smtp_client_end(struct smtp_client *s)
{
	s->ending = true;
	if (s->state == SC_READY)
		timer_start(s->kick, 0);
}

void
smtp_client_free(struct smtp_client *s)
{
	if (s->in_callback)
		panic("smtp_client_free inside a callback of its session");
	conn_connect_cancel(s->connecting);
	if (s->conn) {
		conn_set_handler(s->conn, NULL, NULL);
		conn_abort(s->conn);
	}
	sc_free(s);
}
