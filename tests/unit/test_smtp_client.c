/* The SMTP client (src/queue/smtp_client*.c).
 *
 * First the pure parts: replies of every shape, EHLO extensions, and the
 * data encoder byte for byte and split at every boundary. Then whole
 * sessions on a real event loop: against Postfix's smtp-sink (accepting,
 * deferring, refusing at each stage, dropping the line, stalling), and
 * against a scripted server in a thread for what smtp-sink lacks:
 * CHUNKING, STARTTLS (PKIX, DANE, injection), AUTH, dot-stuffing checked
 * on the wire, replies trickled one octet at a time, malformed replies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/timer.h"
#include "core/util.h"
#include "net/conn.h"
#include "net/tls.h"
#include "queue/smtp_client.h"
#include "queue/smtp_client_reply.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define SINK "/usr/sbin/smtp-sink"

/* ---- the reply parser ---- */

/* Feeds lines (separated by "\n" in text) and returns the last step. */
static enum smtp_reply_step
feed_lines(struct smtp_reply *r, const char *text)
{
	enum smtp_reply_step st = SMTP_REPLY_BAD;
	const char *p = text;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		st = smtp_reply_feed(r, p, n);
		if (st != SMTP_REPLY_MORE)
			return st;
		p += n + (nl ? 1 : 0);
	}
	return st;
}

static void
test_reply_shapes(void **state)
{
	struct smtp_reply r;
	char st[SMTP_ENHANCED_MAX];
	(void)state;
	smtp_reply_init(&r);

	assert_int_equal(feed_lines(&r, "250 2.1.0 Ok"), SMTP_REPLY_DONE);
	assert_int_equal(r.code, 250);
	assert_string_equal(r.enhanced, "2.1.0");
	assert_string_equal(buf_cstr(&r.text), "Ok");
	assert_int_equal(r.lines, 1);

	/* Multi-line; the next feed starts a new reply by itself. */
	assert_int_equal(feed_lines(&r, "550-5.1.1 first\n550-5.1.1 second\n"
	    "550 5.1.1 third"), SMTP_REPLY_DONE);
	assert_int_equal(r.code, 550);
	assert_string_equal(r.enhanced, "5.1.1");
	assert_string_equal(buf_cstr(&r.text), "first\nsecond\nthird");
	assert_int_equal(r.lines, 3);
	char *flat = smtp_reply_flat_text(&r);
	assert_string_equal(flat, "first second third");
	free(flat);

	/* The code alone, and smtp-sink's "250 " with empty text. */
	assert_int_equal(feed_lines(&r, "354"), SMTP_REPLY_DONE);
	assert_int_equal(r.code, 354);
	assert_string_equal(buf_cstr(&r.text), "");
	assert_int_equal(feed_lines(&r, "250-x\n250 "), SMTP_REPLY_DONE);
	assert_string_equal(buf_cstr(&r.text), "x\n");

	/* No enhanced code: one is derived from the class. */
	assert_int_equal(feed_lines(&r, "421 closing"), SMTP_REPLY_DONE);
	assert_string_equal(r.enhanced, "");
	smtp_reply_status(&r, st);
	assert_string_equal(st, "4.0.0");

	/* Enhanced codes that are not: wrong class, bad shapes. */
	static const char *const not_enhanced[] = {
		"550 4.1.1 class differs", "550 5.1 short", "550 5.1.1234 long",
		"550 5..1 empty", "550 5.1.1x glued", "550 x.1.1 letter",
	};
	for (size_t i = 0; i < NELEM(not_enhanced); i++) {
		assert_int_equal(feed_lines(&r, not_enhanced[i]),
		    SMTP_REPLY_DONE);
		assert_string_equal(r.enhanced, "");
		assert_string_equal(buf_cstr(&r.text), not_enhanced[i] + 4);
	}
	assert_int_equal(feed_lines(&r, "452 4.5.3"), SMTP_REPLY_DONE);
	assert_string_equal(r.enhanced, "4.5.3");
	assert_int_equal(feed_lines(&r, "250 2.0.0 a\tb"), SMTP_REPLY_DONE);
	assert_string_equal(buf_cstr(&r.text), "a\tb");

	/* Control characters never reach logs or DSNs. */
	assert_int_equal(smtp_reply_feed(&r, "250 a\0b\x1b" "c\x7f", 10),
	    SMTP_REPLY_DONE);
	assert_string_equal(buf_cstr(&r.text), "a?b?c?");
	smtp_reply_free(&r);
}

static void
test_reply_bad(void **state)
{
	struct smtp_reply r;
	(void)state;
	smtp_reply_init(&r);
	static const char *const bad[] = {
		"", "25", "hello", "250x", "2500 ok", "150 no", "650 no",
		"099 no", "25a ok", "250-a\n251 b", "-250 a", " 250 a",
		"250_ok",
	};
	for (size_t i = 0; i < NELEM(bad); i++) {
		assert_int_equal(feed_lines(&r, bad[i][0] ? bad[i] : "\n"),
		    SMTP_REPLY_BAD);
		assert_non_null(r.error);
	}
	/* "" is fed as one empty line. */
	assert_int_equal(smtp_reply_feed(&r, "", 0), SMTP_REPLY_BAD);

	/* Overlong: exactly the limit is fine, one more is not. */
	char *line = malloc(SMTP_REPLY_LINE_MAX + 2);
	memset(line, 'a', SMTP_REPLY_LINE_MAX + 1);
	memcpy(line, "250 ", 4);
	assert_int_equal(smtp_reply_feed(&r, line, SMTP_REPLY_LINE_MAX),
	    SMTP_REPLY_DONE);
	assert_int_equal(smtp_reply_feed(&r, line, SMTP_REPLY_LINE_MAX + 1),
	    SMTP_REPLY_BAD);
	assert_string_equal(r.error, "reply line too long");

	/* Too many lines; the text stays bounded. */
	line[3] = '-';
	enum smtp_reply_step st = SMTP_REPLY_MORE;
	unsigned n = 0;
	while (st == SMTP_REPLY_MORE) {
		st = smtp_reply_feed(&r, line, SMTP_REPLY_LINE_MAX);
		n++;
		assert_true(r.text.len <= SMTP_REPLY_TEXT_MAX);
	}
	assert_int_equal(st, SMTP_REPLY_BAD);
	assert_int_equal(n, SMTP_REPLY_LINES_MAX + 1);
	assert_string_equal(r.error, "too many reply lines");
	free(line);
	smtp_reply_free(&r);
}

static struct event_base *base;

/* A reply split at every octet boundary through a real connection (the
 * connection's line reader feeds the parser, as in the session). */
static void
test_reply_every_split(void **state)
{
	static const char input[] = "250-mx.test greets you\r\n"
	    "250-PIPELINING\n250-SIZE 1000\r\n250 2.0.0 ENHANCEDSTATUSCODES\r\n"
	    "550 5.1.1 no\r\n";
	size_t n = sizeof(input) - 1;
	(void)state;
	for (size_t cut = 0; cut <= n; cut++) {
		int sv[2];
		struct buf line = BUF_INIT;
		struct smtp_reply r;
		unsigned done = 0;
		smtp_reply_init(&r);
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		struct conn *c = conn_new(sv[0], SVC_SMTP, "127.0.0.1");
		for (int part = 0; part < 2; part++) {
			const char *p = part ? input + cut : input;
			size_t len = part ? n - cut : cut;
			assert_int_equal(write(sv[1], p, len), (ssize_t)len);
			for (int i = 0; i < 4; i++)
				event_base_loop(base, EVLOOP_NONBLOCK);
			while (conn_read_line(c, SMTP_REPLY_LINE_MAX, &line) ==
			    CONN_LINE_OK) {
				enum smtp_reply_step st = smtp_reply_feed(&r,
				    buf_cstr(&line), line.len);
				assert_int_not_equal(st, SMTP_REPLY_BAD);
				if (st != SMTP_REPLY_DONE)
					continue;
				if (done++ == 0) {
					struct smtp_ext e;
					assert_int_equal(r.code, 250);
					assert_int_equal(r.lines, 4);
					smtp_ext_parse(&r, &e);
					assert_int_equal(e.size_max, 1000);
					assert_int_equal(e.flags,
					    SMTP_EXT(PIPELINING) |
					    SMTP_EXT(SIZE) |
					    SMTP_EXT(ENHANCEDSTATUSCODES));
				} else
					assert_string_equal(r.enhanced,
					    "5.1.1");
			}
		}
		assert_int_equal(done, 2);
		close(sv[1]);
		conn_abort(c);
		for (int i = 0; i < 4; i++)
			event_base_loop(base, EVLOOP_NONBLOCK);
		buf_free(&line);
		smtp_reply_free(&r);
	}
}

static void
test_ext_parse(void **state)
{
	struct smtp_reply r;
	struct smtp_ext e;
	char names[200];
	(void)state;
	smtp_reply_init(&r);
	assert_int_equal(feed_lines(&r, "250-mx.test hello\n250-pipelining\n"
	    "250-SIZE 52428800\n250-8BITMIME\n250-SMTPUTF8\n250-CHUNKING\n"
	    "250-DSN\n250-STARTTLS\n250-AUTH LOGIN PLAIN CRAM-MD5\n"
	    "250-XCLIENT NAME\n250-ENHANCEDSTATUSCODES\n250 "),
	    SMTP_REPLY_DONE);
	smtp_ext_parse(&r, &e);
	assert_int_equal(e.flags, (1u << SMTP_EXT_COUNT) - 1);
	assert_int_equal(e.size_max, 52428800);
	assert_int_equal(e.auth, SMTP_AUTH_PLAIN | SMTP_AUTH_LOGIN);
	smtp_ext_names(e.flags, names, sizeof(names));
	assert_string_equal(names, "PIPELINING SIZE 8BITMIME SMTPUTF8 CHUNKING "
	    "DSN STARTTLS AUTH ENHANCEDSTATUSCODES");
	smtp_ext_names(e.flags, names, 12);
	assert_string_equal(names, "PIPELINING");

	/* SIZE without a number, the old AUTH= form, junk, no greeting
	 * line being taken as a keyword. */
	assert_int_equal(feed_lines(&r, "250-STARTTLS\n250-SIZE\n"
	    "250-AUTH=PLAIN\n250-SIZEX 5\n250-  \n250 SIZE 12x"),
	    SMTP_REPLY_DONE);
	smtp_ext_parse(&r, &e);
	assert_int_equal(e.flags, SMTP_EXT(SIZE) | SMTP_EXT(AUTH));
	assert_int_equal(e.size_max, 0);
	assert_int_equal(e.auth, SMTP_AUTH_PLAIN);

	assert_int_equal(feed_lines(&r, "250 mx.test"), SMTP_REPLY_DONE);
	smtp_ext_parse(&r, &e);
	assert_int_equal(e.flags, 0);
	smtp_reply_free(&r);
}

/* ---- the data encoder ---- */

static const char enc_in[] = ".starts with dot\r\n..two dots\r\n.\r\n"
    "middle . dot\r\nbare LF\nbare CR\rend.\r\n.\r\n\r\nCR CR LF\r\r\n"
    ".no final newline";
static const char enc_data[] = "..starts with dot\r\n...two dots\r\n..\r\n"
    "middle . dot\r\nbare LF\r\nbare CR\r\nend.\r\n..\r\n\r\nCR CR LF\r\n"
    "\r\n..no final newline\r\n.\r\n";
static const char enc_bdat[] = ".starts with dot\r\n..two dots\r\n.\r\n"
    "middle . dot\r\nbare LF\r\nbare CR\r\nend.\r\n.\r\n\r\nCR CR LF\r\n"
    "\r\n.no final newline\r\n";

static void
encode_split(const char *in, size_t n, size_t cut, bool stuff,
    struct buf *out)
{
	struct smtp_encoder e;
	buf_reset(out);
	smtp_encoder_init(&e, stuff);
	smtp_encoder_feed(&e, in, cut, out);
	smtp_encoder_feed(&e, in + cut, n - cut, out);
	smtp_encoder_finish(&e, out);
	assert_int_equal(e.in, n);
	assert_int_equal(e.out, out->len);
}

static void
test_encoder(void **state)
{
	struct buf out = BUF_INIT;
	size_t n = sizeof(enc_in) - 1;
	(void)state;
	for (size_t cut = 0; cut <= n; cut++) {
		encode_split(enc_in, n, cut, true, &out);
		assert_int_equal(out.len, sizeof(enc_data) - 1);
		assert_memory_equal(out.data, enc_data, out.len);
		encode_split(enc_in, n, cut, false, &out);
		assert_int_equal(out.len, sizeof(enc_bdat) - 1);
		assert_memory_equal(out.data, enc_bdat, out.len);
	}
	/* One octet at a time. */
	struct smtp_encoder e;
	buf_reset(&out);
	smtp_encoder_init(&e, true);
	for (size_t i = 0; i < n; i++)
		smtp_encoder_feed(&e, enc_in + i, 1, &out);
	smtp_encoder_finish(&e, &out);
	assert_string_equal(buf_cstr(&out), enc_data);

	/* Empty message; one ending in CRLF gets no extra line; a lone CR
	 * at the end. */
	encode_split("", 0, 0, true, &out);
	assert_string_equal(buf_cstr(&out), ".\r\n");
	encode_split("", 0, 0, false, &out);
	assert_int_equal(out.len, 0);
	encode_split("a\r\n", 3, 1, true, &out);
	assert_string_equal(buf_cstr(&out), "a\r\n.\r\n");
	encode_split("a\r", 2, 2, true, &out);
	assert_string_equal(buf_cstr(&out), "a\r\n.\r\n");
	encode_split("\n.", 2, 1, true, &out);
	assert_string_equal(buf_cstr(&out), "\r\n..\r\n.\r\n");
	buf_free(&out);
}

/* ---- sessions: the loop, and what the callbacks saw ---- */

static char tmpdir[64];
static char cert_path[128], key_path[128];
static SSL_CTX *srv_ctx;

#define MAX_RCPTS 8
#define MAX_MSGS 8

struct rcpt_seen {
	enum smtp_client_status st;
	unsigned code;
	char enh[SMTP_ENHANCED_MAX];
	char text[512];
	bool remote;
};

struct msg_seen {
	bool attempted, needs_7bit, peer_dsn;
	size_t n;
	struct rcpt_seen r[MAX_RCPTS];
};

struct run {
	bool done;
	bool ok, reached;
	unsigned code;
	char enh[SMTP_ENHANCED_MAX];
	char text[512];
	size_t nmsgs;
	struct msg_seen m[MAX_MSGS];
	bool tls_at_ready;
	/* a message to send from the first result callback */
	const struct smtp_client_message *then;
};

static void on_result(struct smtp_client *s,
    const struct smtp_client_result *res, void *arg);

static void
on_result(struct smtp_client *s, const struct smtp_client_result *res,
    void *arg)
{
	struct run *r = arg;
	assert_true(r->nmsgs < MAX_MSGS);
	struct msg_seen *m = &r->m[r->nmsgs++];
	m->attempted = res->attempted;
	m->needs_7bit = res->needs_7bit;
	m->peer_dsn = res->peer_dsn;
	m->n = res->msg->nrcpts;
	for (size_t i = 0; i < m->n && i < MAX_RCPTS; i++) {
		const struct smtp_client_rcpt_result *x = &res->rcpts[i];
		m->r[i].st = x->status;
		m->r[i].code = x->code;
		m->r[i].remote = x->remote;
		snprintf(m->r[i].enh, sizeof(m->r[i].enh), "%s", x->enhanced);
		snprintf(m->r[i].text, sizeof(m->r[i].text), "%s", x->text);
	}
	if (res->attempted)
		r->tls_at_ready = smtp_client_is_tls(s);
	if (r->then) {
		const struct smtp_client_message *next = r->then;
		r->then = NULL;
		assert_int_equal(smtp_client_send(s, next, on_result, r), 0);
		smtp_client_end(s);
	}
}

static void
on_done(struct smtp_client *s, const struct smtp_client_outcome *o,
    void *arg)
{
	struct run *r = arg;
	(void)s;
	r->done = true;
	r->ok = o->ok;
	r->reached = o->reached;
	r->code = o->code;
	snprintf(r->enh, sizeof(r->enh), "%s", o->enhanced);
	snprintf(r->text, sizeof(r->text), "%s", o->text);
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Runs the loop until *flag is set (or max_ms). */
static void
run_until(const bool *flag, unsigned max_ms)
{
	struct timeval tv = { 0, 20000 };
	struct event *ev = event_new(base, -1, EV_PERSIST, tick, NULL);
	event_add(ev, &tv);
	uint64_t end = now_ms() + max_ms;
	while (!*flag && now_ms() < end)
		event_base_loop(base, EVLOOP_ONCE);
	/* Let closing connections finish. */
	for (int i = 0; i < 10; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	event_free(ev);
	assert_true(*flag);
}

/* Runs the loop until the session reported its end (or max_ms). */
static void
run_loop(struct run *r, unsigned max_ms)
{
	run_until(&r->done, max_ms);
}

static struct smtp_client_options
test_options(const char *const *addrs, size_t n, unsigned port)
{
	struct smtp_client_options o;
	memset(&o, 0, sizeof(o));
	o.helo_name = "client.test";
	o.host_name = "mx.test";
	o.addrs = addrs;
	o.naddrs = n;
	o.port = port;
	o.tls = SMTP_CLIENT_TLS_OPPORTUNISTIC;
	o.timeouts.connect = 2000;
	o.timeouts.greeting = 2000;
	o.timeouts.command = 2000;
	o.timeouts.data_init = 2000;
	o.timeouts.data_block = 2000;
	o.timeouts.data_end = 2000;
	o.timeouts.quit = 1000;
	return o;
}

/* One session with the given messages, then QUIT. */
static void
run_session(const struct smtp_client_options *o,
    const struct smtp_client_message *const *msgs, size_t n, struct run *r)
{
	char *error = NULL;
	struct smtp_client *s = smtp_client_new(o, on_done, r, &error);
	assert_non_null(s);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(smtp_client_send(s, msgs[i], on_result, r), 0);
	if (r->then == NULL)
		smtp_client_end(s);
	run_loop(r, 20000);
}

static void
write_file(const char *name, const void *p, size_t n, char *path,
    size_t pathlen)
{
	snprintf(path, pathlen, "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

static unsigned
free_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

static bool
port_accepts(unsigned port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	bool ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	close(fd);
	return ok;
}

static const char *const loopback[] = { "127.0.0.1" };

/* A plain message of a few lines, with one starting with a dot. */
static char msg_path[256];
static const char msg_text[] = "From: a@client.test\r\nTo: b@mx.test\r\n"
    "Subject: hello\r\n\r\nbody line\r\n.dotted line\r\nlast\r\n";

static void
check_rcpt(const struct msg_seen *m, size_t i, enum smtp_client_status st,
    unsigned code, const char *enh)
{
	assert_true(i < m->n);
	if (m->r[i].st != st || m->r[i].code != code ||
	    (enh && strcmp(m->r[i].enh, enh) != 0))
		fail_msg("rcpt %zu: status %d code %u %s \"%s\", want %d %u %s",
		    i, m->r[i].st, m->r[i].code, m->r[i].enh, m->r[i].text, st,
		    code, enh ? enh : "");
}

/* ---- smtp-sink ---- */

struct sink {
	pid_t pid;
	unsigned port;
	char dump[128];		/* one file per message, when asked */
};

/* Starts smtp-sink with args on a free loopback port, dumping messages
 * into a fresh directory when dump is set. False when it is missing. */
static bool
sink_start(struct sink *k, bool dump, const char *const *args)
{
	const char *argv[32];
	char listen[32], tmpl[160];
	size_t n = 0;
	if (access(SINK, X_OK) != 0)
		return false;
	memset(k, 0, sizeof(*k));
	k->port = free_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", k->port);
	argv[n++] = "smtp-sink";
	if (geteuid() == 0) {
		argv[n++] = "-u";
		argv[n++] = "nobody";
	}
	if (dump) {
		snprintf(k->dump, sizeof(k->dump), "%s/sink%u", tmpdir,
		    k->port);
		assert_int_equal(mkdir(k->dump, 0777), 0);
		assert_int_equal(chmod(k->dump, 0777), 0);
		snprintf(tmpl, sizeof(tmpl), "%s/m.", k->dump);
		argv[n++] = "-d";
		argv[n++] = tmpl;
	}
	while (args && *args)
		argv[n++] = *args++;
	argv[n++] = listen;
	argv[n++] = "10";
	argv[n] = NULL;
	k->pid = fork();
	assert_true(k->pid >= 0);
	if (k->pid == 0) {
		execv(SINK, (char *const *)argv);
		_exit(127);
	}
	for (int i = 0; i < 300 && !port_accepts(k->port); i++)
		usleep(10000);
	return true;
}

static void
sink_stop(struct sink *k)
{
	kill(k->pid, SIGTERM);
	waitpid(k->pid, NULL, 0);
}

/* The concatenated dump files of the sink. */
static void
sink_dumped(const struct sink *k, struct buf *out)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "cat %s/* 2>/dev/null", k->dump);
	FILE *p = popen(cmd, "r");
	char b[4096];
	size_t n;
	assert_non_null(p);
	while ((n = fread(b, 1, sizeof(b), p)) > 0)
		buf_append(out, b, n);
	pclose(p);
}

#define SKIP_WITHOUT_SINK(k, dump, ...) do { \
	static const char *const sink_args_[] = { __VA_ARGS__ }; \
	if (!sink_start((k), (dump), sink_args_)) \
		skip(); \
} while (0)

/* ---- smtp-sink sessions ---- */

static const struct smtp_client_rcpt rcpt_b = { "b@mx.test", 0, NULL };

static struct smtp_client_message
plain_message(const struct smtp_client_rcpt *rcpts, size_t n)
{
	struct smtp_client_message m;
	memset(&m, 0, sizeof(m));
	m.from = "a@client.test";
	m.rcpts = rcpts;
	m.nrcpts = n;
	m.path = msg_path;
	return m;
}

static void
test_sink_pipelining_dsn(void **state)
{
	struct sink k;
	struct run r;
	struct buf dumped = BUF_INIT;
	static const struct smtp_client_rcpt two[] = {
		{ "b@mx.test", SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE,
		    "rfc822;b+40mx.test" },
		{ "c@mx.test", SMTP_NOTIFY_NEVER, "bad orcpt" },
	};
	(void)state;
	SKIP_WITHOUT_SINK(&k, true, NULL);
	struct smtp_client_message m1 = plain_message(&rcpt_b, 1);
	struct smtp_client_message m2 = plain_message(two, 2);
	m2.from = "";
	m2.ret = SMTP_RET_HDRS;
	m2.envid = "abc+2Bdef";
	const struct smtp_client_message *msgs[] = { &m1, &m2 };
	struct smtp_client_options o = test_options(loopback, 1, k.port);
	memset(&r, 0, sizeof(r));
	run_session(&o, msgs, 2, &r);
	sink_stop(&k);

	assert_true(r.ok);
	assert_true(r.reached);
	assert_int_equal(r.nmsgs, 2);
	assert_true(r.m[0].attempted && r.m[0].peer_dsn);
	check_rcpt(&r.m[0], 0, SMTP_CLIENT_DELIVERED, 250, "2.0.0");
	check_rcpt(&r.m[1], 0, SMTP_CLIENT_DELIVERED, 250, "2.0.0");
	check_rcpt(&r.m[1], 1, SMTP_CLIENT_DELIVERED, 250, "2.0.0");
	assert_true(r.m[1].r[0].remote);

	sink_dumped(&k, &dumped);
	const char *d = buf_cstr(&dumped);
	assert_non_null(strstr(d, "X-Helo-Args: client.test\n"));
	assert_non_null(strstr(d, "X-Mail-Args: <a@client.test>\n"));
	assert_non_null(strstr(d, "X-Mail-Args: <> RET=HDRS ENVID=abc+2Bdef\n"));
	assert_non_null(strstr(d, "X-Rcpt-Args: <b@mx.test> "
	    "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+40mx.test\n"));
	/* A malformed ORCPT is left out rather than sent. */
	assert_non_null(strstr(d, "X-Rcpt-Args: <c@mx.test> NOTIFY=NEVER\n"));
	assert_non_null(strstr(d, "\nbody line\n.dotted line\nlast\n"));
	buf_free(&dumped);
}

static void
test_sink_no_pipelining_no_8bitmime(void **state)
{
	struct sink k;
	struct run r;
	(void)state;
	SKIP_WITHOUT_SINK(&k, false, "-p", "-8", "-N", NULL);
	struct smtp_client_message m1 = plain_message(&rcpt_b, 1);
	struct smtp_client_message m2 = plain_message(&rcpt_b, 1);
	m1.eightbit = true;
	const struct smtp_client_message *msgs[] = { &m1, &m2 };
	struct smtp_client_options o = test_options(loopback, 1, k.port);
	memset(&r, 0, sizeof(r));
	run_session(&o, msgs, 2, &r);
	sink_stop(&k);

	assert_true(r.ok);
	assert_int_equal(r.nmsgs, 2);
	/* Refused before sending: 8-bit body, no 8BITMIME (RFC 6152). */
	assert_true(r.m[0].attempted);
	assert_true(r.m[0].needs_7bit);
	check_rcpt(&r.m[0], 0, SMTP_CLIENT_PERMFAIL, 0, "5.6.3");
	assert_false(r.m[0].r[0].remote);
	check_rcpt(&r.m[1], 0, SMTP_CLIENT_DELIVERED, 250, "2.0.0");
	assert_false(r.m[1].needs_7bit);
	assert_false(r.m[1].peer_dsn);
}

static void
test_sink_rcpt_4xx(void **state)
{
	struct sink k;
	struct run r;
	static const struct smtp_client_rcpt two[] = {
		{ "b@mx.test", 0, NULL }, { "c@mx.test", 0, NULL },
	};
	(void)state;
	SKIP_WITHOUT_SINK(&k, false, "-r", "RCPT", NULL);
	struct smtp_client_message m1 = plain_message(two, 2);
	struct smtp_client_message m2 = plain_message(&rcpt_b, 1);
	const struct smtp_client_message *msgs[] = { &m1, &m2 };
	struct smtp_client_options o = test_options(loopback, 1, k.port);
	memset(&r, 0, sizeof(r));
	run_session(&o, msgs, 2, &r);
	sink_stop(&k);

	assert_true(r.ok);
	check_rcpt(&r.m[0], 0, SMTP_CLIENT_TEMPFAIL, 450, "4.3.0");
	check_rcpt(&r.m[0], 1, SMTP_CLIENT_TEMPFAIL, 450, "4.3.0");
	assert_string_equal(r.m[0].r[0].text, "Error: command failed");
	/* The open transaction was reset before the second one. */
	check_rcpt(&r.m[1], 0, SMTP_CLIENT_TEMPFAIL, 450, "4.3.0");
}

static void
test_sink_rcpt_5xx(void **state)
{
	struct sink k;
	struct run r;
	(void)state;
	SKIP_WITHOUT_SINK(&k, false, "-f", "RCPT", NULL);
	struct smtp_client_message m1 = plain_message(&rcpt_b, 1);
	const struct smtp_client_message *msgs[] = { &m1 };
	struct smtp_client_options o = test_options(loopback, 1, k.port);
	memset(&r, 0, sizeof(r));
	run_session(&o, msgs, 1, &r);
	sink_stop(&k);
	assert_true(r.ok);
	check_rcpt(&r.m[0], 0, SMTP_CLIENT_PERMFAIL, 500, "5.3.0");
	assert_true(r.m[0].r[0].remote);
}

static void
test_sink_data_5xx(void **state)
{
	struct sink k;
	struct run r;
	(void)state;
	SKIP_WITHOUT_SINK(&k, false, "-f", "DATA", NULL);
	struct smtp_client_message m1 = plain_message(&rcpt_b, 1);
	struct smtp_client_message m2 = plain_message(&rcpt_b, 1);
	const struct smtp_client_message *msgs[] = { &m1, &m2 };
	struct smtp_client_options o = test_options(loopback, 1, k.port);
	memset(&r, 0, sizeof(r));
	run_session(&o, msgs, 2, &r);
	sink_stop(&k);
	assert_true(r.ok);
	check_rcpt(&r.m[0], 0, SMTP_CLIENT_PERMFAIL, 500, "5.3.0");
	check_rcpt(&r.m[1], 0, SMTP_CLIENT_PERMFAIL, 500, "5.3.0");
}

static void
test_sink_dot_4xx(void **state)
{
	struct sink k;
	struct run r;
	(void)state;
	SKIP_WITHOUT_SINK(&k, false, "-r", ".", NULL);
	struct smtp_client_message m1 = plain_message(&rcpt_b, 1);
	const struct smtp_client_message *msgs[] = { &m1 };
	struct smtp_client_options o = test_options(loopback, 1, k.port);
	memset(&r, 0, sizeof(r));
	run_session(&o, msgs, 1, &r);
	sink_stop(&k);
	assert_true(r.ok);
	check_rcpt(&r.m[0], 0, SMTP_CLIENT_TEMPFAIL, 450, "4.3.0");
}

/* A 421 fails what is pending and ends the session; later messages are
 * not attempted. */
static void
test_sink_421(void **state)
{
	struct sink k;
	struct run r;
	(void)state;
	SKIP_WITHOUT_SINK(&k, false, "-Q", "RCPT", NULL);
	struct smtp_client_message m1 = plain_message(&rcpt_b, 1);
	struct smtp_client_message m2 = plain_message(&rcpt_b, 1);
	const struct smtp_client_message *msgs[] = { &m1, &m2 };
	struct smtp_client_options o = test_options(loopback, 1, k.port);
	memset(&r, 0, sizeof(r));
	run_session(&o, msgs, 2, &r);
	sink_stop(&k);
	assert_false(r.ok);
	assert_true(r.reached);
	assert_int_equal(r.code, 421);
	assert_int_equal(r.nmsgs, 2);
	assert_true(r.m[0].attempted);
	check_rcpt(&r.m[0], 0, SMTP_CLIENT_TEMPFAIL, 421, NULL);
	assert_true(r.m[0].r[0].remote);
	assert_false(r.m[1].attempted);
	check_rcpt(&r.m[1], 0, SMTP_CLIENT_TEMPFAIL, 421, NULL);
}

static void
test_sink_drop_at_dot(void **state)
{
	struct sink k;
	struct run r;
	(void)state;
	SKIP_WITHOUT_SINK(&k, false, "-q", ".", NULL);
	struct smtp_client_message m1 = plain_message(&rcpt_b, 1);
	const struct smtp_client_message *msgs[] = { &m1 };
	struct smtp_client_options o = test_options(loopback, 1, k.port);
	memset(&r, 0, sizeof(r));
	run_session(&o, msgs, 1, &r);
	sink_stop(&k);
	assert_false(r.ok);
	check_rcpt(&r.m[0], 0, SMTP_CLIENT_TEMPFAIL, 0, "4.4.2");
	assert_non_null(strstr(r.m[0].r[0].text, "lost connection"));
	assert_non_null(strstr(r.m[0].r[0].text, "end of data"));
}

/* RFC 5321 4.5.3.2.6 with a short test value. */
static void
test_sink_slow_final_reply(void **state)
{
	struct sink k;
	struct run r;
	(void)state;
	SKIP_WITHOUT_SINK(&k, false, "-W", ".:3", NULL);
	struct smtp_client_message m1 = plain_message(&rcpt_b, 1);
	const struct smtp_client_message *msgs[] = { &m1 };
	struct smtp_client_options o = test_options(loopback, 1, k.port);
	o.timeouts.data_end = 300;
	memset(&r, 0, sizeof(r));
	uint64_t t0 = now_ms();
	run_session(&o, msgs, 1, &r);
	sink_stop(&k);
	assert_true(now_ms() - t0 < 2500);
	assert_false(r.ok);
	check_rcpt(&r.m[0], 0, SMTP_CLIENT_TEMPFAIL, 0, "4.4.2");
	assert_non_null(strstr(r.m[0].r[0].text, "timeout"));
}

/* The first address refuses, the next one takes the mail. */
static void
test_address_fallback(void **state)
{
	struct sink k;
	struct run r;
	static const char *const addrs[] = { "127.0.0.2", "127.0.0.1" };
	(void)state;
	SKIP_WITHOUT_SINK(&k, false, NULL);
	struct smtp_client_message m1 = plain_message(&rcpt_b, 1);
	const struct smtp_client_message *msgs[] = { &m1 };
	struct smtp_client_options o = test_options(addrs, 2, k.port);
	memset(&r, 0, sizeof(r));
	run_session(&o, msgs, 1, &r);
	sink_stop(&k);
	assert_true(r.ok);
	check_rcpt(&r.m[0], 0, SMTP_CLIENT_DELIVERED, 250, NULL);
}

static void
test_connection_refused(void **state)
{
	struct run r;
	static const char *const addrs[] = { "127.0.0.1", "::1" };
	(void)state;
	struct smtp_client_message m1 = plain_message(&rcpt_b, 1);
	const struct smtp_client_message *msgs[] = { &m1 };
	struct smtp_client_options o = test_options(addrs, 2, free_port());
	memset(&r, 0, sizeof(r));
	run_session(&o, msgs, 1, &r);
	assert_false(r.ok);
	assert_false(r.reached);
	assert_int_equal(r.code, 0);
	assert_string_equal(r.enh, "4.4.1");
	assert_non_null(strstr(r.text, "connect to mx.test["));
	assert_false(r.m[0].attempted);
	check_rcpt(&r.m[0], 0, SMTP_CLIENT_TEMPFAIL, 0, "4.4.1");
}

/* The kernel completes the handshake, nobody ever says a word. */
static void
test_greeting_timeout(void **state)
{
	struct run r;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	(void)state;
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
	struct smtp_client_message m1 = plain_message(&rcpt_b, 1);
	const struct smtp_client_message *msgs[] = { &m1 };
	struct smtp_client_options o = test_options(loopback, 1,
	    ntohs(sin.sin_port));
	o.timeouts.greeting = 300;
	memset(&r, 0, sizeof(r));
	uint64_t t0 = now_ms();
	run_session(&o, msgs, 1, &r);
	close(lfd);
	assert_true(now_ms() - t0 < 2000);
	assert_false(r.reached);
	assert_string_equal(r.enh, "4.4.2");
	assert_non_null(strstr(r.text, "timeout"));
	assert_non_null(strstr(r.text, "greeting"));
	assert_false(r.m[0].attempted);
	check_rcpt(&r.m[0], 0, SMTP_CLIENT_TEMPFAIL, 0, "4.4.2");
}

/* ---- a scripted server in a thread ---- */

struct fake_rule {
	const char *prefix;	/* start of a command line; "." for the end
				 * of data */
	const char *reply;	/* CRLF added; may hold CRLFs inside */
};

struct fake {
	/* the script */
	const char *greeting;
	const char *ehlo;		/* extension lines, "\n" separated */
	const char *ehlo_reply;		/* replaces the whole EHLO reply */
	const struct fake_rule *rules;
	bool tls;			/* offer STARTTLS and do it */
	const char *tls_inject;		/* plaintext sent after the 220 */
	bool tls_garbage;		/* 220, then junk instead of TLS */
	const char *auth;		/* the AUTH PLAIN argument accepted */
	bool trickle;			/* replies one octet per write */
	bool v6;
	bool implicit_tls;		/* TLS from the first octet */
	unsigned conns;			/* connections to serve (1) */
	unsigned data_delay_ms;		/* before reading the message */
	/* what happened */
	int lfd;
	unsigned port;
	pthread_t th;
	struct buf log;			/* command lines, "\n" after each */
	struct buf data;		/* DATA octets as sent (with the end
					 * line), or BDAT payloads */
	unsigned tls_sessions;
	unsigned connections;
	bool group_seen;		/* MAIL arrived with DATA behind it */
	/* the connection */
	int fd;
	SSL *ssl;
	char in[64 * 1024];
	size_t inlen;
};

static int
fk_fill(struct fake *f)
{
	if (f->inlen == sizeof(f->in))
		return -1;
	ssize_t r = f->ssl ? SSL_read(f->ssl, f->in + f->inlen,
	    (int)(sizeof(f->in) - f->inlen)) : recv(f->fd, f->in + f->inlen,
	    sizeof(f->in) - f->inlen, 0);
	if (r <= 0)
		return -1;
	f->inlen += (size_t)r;
	return 0;
}

static void
fk_consume(struct fake *f, size_t n)
{
	memmove(f->in, f->in + n, f->inlen - n);
	f->inlen -= n;
}

/* One line with its LF (raw), or -1. */
static ssize_t
fk_raw_line(struct fake *f, struct buf *out)
{
	char *nl;
	while ((nl = memchr(f->in, '\n', f->inlen)) == NULL)
		if (fk_fill(f) < 0)
			return -1;
	size_t n = (size_t)(nl - f->in) + 1;
	buf_reset(out);
	buf_append(out, f->in, n);
	fk_consume(f, n);
	return (ssize_t)n;
}

static int
fk_bytes(struct fake *f, size_t n, struct buf *to)
{
	while (n > 0) {
		if (f->inlen == 0 && fk_fill(f) < 0)
			return -1;
		size_t k = n < f->inlen ? n : f->inlen;
		buf_append(to, f->in, k);
		fk_consume(f, k);
		n -= k;
	}
	return 0;
}

static void
fk_send(struct fake *f, const char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t k = f->trickle ? 1 : n - i;
		ssize_t w = f->ssl ? SSL_write(f->ssl, s + i, (int)k) :
		    send(f->fd, s + i, k, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		i += (size_t)w;
	}
}

static void
fk_reply(struct fake *f, const char *r)
{
	fk_send(f, r, strlen(r));
	fk_send(f, "\r\n", 2);
}

static const char *
fk_rule(const struct fake *f, const char *line)
{
	for (const struct fake_rule *r = f->rules; r && r->prefix; r++)
		if (strncmp(line, r->prefix, strlen(r->prefix)) == 0)
			return r->reply;
	return NULL;
}

static void
fk_ehlo(struct fake *f)
{
	struct buf b = BUF_INIT;
	if (f->ehlo_reply) {
		fk_reply(f, f->ehlo_reply);
		return;
	}
	buf_puts(&b, "250-fake.test hello");
	if (f->tls && f->ssl == NULL)
		buf_puts(&b, "\r\n250-STARTTLS");
	for (const char *p = f->ehlo ? f->ehlo : ""; *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		buf_printf(&b, "\r\n250-%.*s", (int)n, p);
		p += n + (nl ? 1 : 0);
	}
	buf_puts(&b, "\r\n250 HELP");
	fk_reply(f, buf_cstr(&b));
	buf_free(&b);
}

static int
fk_starttls(struct fake *f)
{
	if (f->tls_garbage) {
		fk_reply(f, "220 2.0.0 go ahead");
		fk_reply(f, "this is not TLS at all, sorry");
		return -1;
	}
	fk_reply(f, "220 2.0.0 go ahead");
	if (f->tls_inject)
		fk_reply(f, f->tls_inject);
	f->inlen = 0;
	f->ssl = SSL_new(srv_ctx);
	SSL_set_fd(f->ssl, f->fd);
	if (SSL_accept(f->ssl) != 1)
		return -1;
	f->tls_sessions++;
	return 0;
}

/* DATA: octets up to and including the line ".". */
static int
fk_data(struct fake *f)
{
	struct buf line = BUF_INIT;
	int r = -1;
	if (f->data_delay_ms)
		usleep(f->data_delay_ms * 1000);
	while (fk_raw_line(f, &line) > 0) {
		buf_append(&f->data, line.data, line.len);
		if (strcmp(buf_cstr(&line), ".\r\n") == 0) {
			r = 0;
			break;
		}
	}
	buf_free(&line);
	return r;
}

static int
fk_bdat(struct fake *f, const char *args)
{
	char *end;
	unsigned long n = strtoul(args, &end, 10);
	if (end == args || fk_bytes(f, n, &f->data) < 0)
		return -1;
	const char *r = fk_rule(f, "BDAT");
	fk_reply(f, r ? r : "250 2.0.0 chunk ok");
	return 0;
}

/* One command; -1 ends the connection. */
static int
fk_command(struct fake *f, const char *line)
{
	const char *rule = fk_rule(f, line);
	if (strncmp(line, "MAIL ", 5) == 0 && memmem(f->in, f->inlen,
	    "\r\nDATA\r\n", 8) != NULL)
		f->group_seen = true;
	if (strncmp(line, "EHLO ", 5) == 0)
		fk_ehlo(f);
	else if (strcmp(line, "STARTTLS") == 0 && f->tls)
		return fk_starttls(f);
	else if (strncmp(line, "BDAT ", 5) == 0)
		return fk_bdat(f, line + 5);
	else if (strncmp(line, "AUTH PLAIN ", 11) == 0)
		fk_reply(f, f->auth && strcmp(line + 11, f->auth) == 0 ?
		    "235 2.7.0 ok" : "535 5.7.8 no");
	else if (strcmp(line, "DATA") == 0) {
		fk_reply(f, rule ? rule : "354 go on");
		if (rule && rule[0] != '3')
			return 0;
		if (fk_data(f) < 0)
			return -1;
		rule = fk_rule(f, ".");
		fk_reply(f, rule ? rule : "250 2.0.0 queued");
	} else if (strcmp(line, "QUIT") == 0) {
		fk_reply(f, "221 2.0.0 bye");
		return -1;
	} else if (rule)
		fk_reply(f, rule);
	else if (strncmp(line, "HELO ", 5) == 0 ||
	    strncmp(line, "MAIL ", 5) == 0 || strncmp(line, "RCPT ", 5) == 0 ||
	    strcmp(line, "RSET") == 0)
		fk_reply(f, "250 2.0.0 ok");
	else
		fk_reply(f, "500 5.5.2 what");
	return 0;
}

static void
fk_session(struct fake *f)
{
	struct buf line = BUF_INIT;
	fk_reply(f, f->greeting ? f->greeting : "220 fake.test ESMTP");
	while (fk_raw_line(f, &line) > 0) {
		size_t n = line.len;
		while (n > 0 && (line.data[n - 1] == '\n' ||
		    line.data[n - 1] == '\r'))
			n--;
		line.data[n] = '\0';
		buf_printf(&f->log, "%s\n", line.data);
		if (fk_command(f, line.data) < 0)
			break;
	}
	buf_free(&line);
}

static void *
fk_main(void *arg)
{
	struct fake *f = arg;
	for (unsigned i = 0; i < (f->conns ? f->conns : 1); i++) {
		struct pollfd p = { f->lfd, POLLIN, 0 };
		if (poll(&p, 1, 5000) != 1)
			break;
		f->fd = accept(f->lfd, NULL, NULL);
		if (f->fd < 0)
			break;
		struct timeval tv = { 5, 0 };
		int one = 1;
		setsockopt(f->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(f->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		f->connections++;
		f->inlen = 0;
		if (f->implicit_tls) {
			f->ssl = SSL_new(srv_ctx);
			SSL_set_fd(f->ssl, f->fd);
			if (SSL_accept(f->ssl) == 1)
				fk_session(f);
		} else
			fk_session(f);
		if (f->ssl) {
			SSL_shutdown(f->ssl);
			SSL_free(f->ssl);
			f->ssl = NULL;
		}
		close(f->fd);
	}
	return NULL;
}

/* Listens on loopback (IPv6 when f->v6) and serves in a thread. False
 * when the address family is unavailable. */
static bool
fake_start(struct fake *f)
{
	struct sockaddr_storage ss;
	socklen_t len;
	memset(&ss, 0, sizeof(ss));
	if (f->v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*s4);
	}
	f->lfd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&ss, len) < 0) {
		if (f->lfd >= 0)
			close(f->lfd);
		return false;
	}
	assert_int_equal(listen(f->lfd, 8), 0);
	assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&ss, &len), 0);
	f->port = ntohs(f->v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port :
	    ((struct sockaddr_in *)&ss)->sin_port);
	buf_init(&f->log);
	buf_init(&f->data);
	assert_int_equal(pthread_create(&f->th, NULL, fk_main, f), 0);
	return true;
}

static void
fake_stop(struct fake *f)
{
	pthread_join(f->th, NULL);
	close(f->lfd);
}

static void
fake_free(struct fake *f)
{
	buf_free(&f->log);
	buf_free(&f->data);
}

/* Runs a session against a fake with the given messages. */
static void
fake_session(struct fake *f, struct smtp_client_options *o,
    const struct smtp_client_message *const *msgs, size_t n, struct run *r)
{
	static const char *const v6[] = { "::1" };
	assert_true(fake_start(f));
	o->addrs = f->v6 ? v6 : loopback;
	o->naddrs = 1;
	o->port = f->port;
	run_session(o, msgs, n, r);
	fake_stop(f);
}

/* ---- sessions against the scripted server ---- */

/* The session's options for a fake (addresses filled by fake_session). */
static struct smtp_client_options
fake_options(void)
{
	return test_options(loopback, 1, 1);
}

static void
test_fake_dot_stuffing(void **state)
{
	struct fake f = { .ehlo = "PIPELINING\n8BITMIME", .trickle = true };
	struct run r;
	char path[256];
	(void)state;
	write_file("stuff.eml", enc_in, sizeof(enc_in) - 1, path,
	    sizeof(path));
	struct smtp_client_message m = plain_message(&rcpt_b, 1);
	m.path = path;
	const struct smtp_client_message *msgs[] = { &m };
	struct smtp_client_options o = fake_options();
	memset(&r, 0, sizeof(r));
	fake_session(&f, &o, msgs, 1, &r);
	assert_true(r.ok);
	check_rcpt(&r.m[0], 0, SMTP_CLIENT_DELIVERED, 250, "2.0.0");
	/* Byte for byte what went on the wire after the 354. */
	assert_int_equal(f.data.len, sizeof(enc_data) - 1);
	assert_memory_equal(f.data.data, enc_data, f.data.len);
	assert_string_equal(buf_cstr(&f.log), "EHLO client.test\n"
	    "MAIL FROM:<a@client.test>\nRCPT TO:<b@mx.test>\nDATA\nQUIT\n");
	assert_true(f.group_seen);
	fake_free(&f);
}

/* A message of about n octets: CRLF lines, some starting with a dot,
 * some ending in a bare LF. */
static void
make_big_message(const char *name, size_t n, char *path, size_t pathlen)
{
	struct buf b = BUF_INIT;
	for (unsigned i = 0; b.len < n; i++)
		buf_printf(&b, "%sline %06u of a big message, with some text%s",
		    i % 7 == 0 ? "." : "", i, i % 11 == 0 ? "\n" : "\r\n");
	write_file(name, b.data, b.len, path, pathlen);
	buf_free(&b);
}

static void
encode_file(const char *path, bool stuff, struct buf *out)
{
	struct smtp_encoder e;
	char chunk[4096];
	size_t n;
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	smtp_encoder_init(&e, stuff);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		smtp_encoder_feed(&e, chunk, n, out);
	smtp_encoder_finish(&e, out);
	fclose(fp);
}

static void
big_data_session(const char *path, const struct buf *want, bool tls)
{
	struct fake f = { .ehlo = "PIPELINING\nSIZE 100000000",
	    .data_delay_ms = 300, .tls = tls };
	struct run r;
	struct stat st;
	char mail[80];
	struct smtp_client_message m = plain_message(&rcpt_b, 1);
	m.path = path;
	const struct smtp_client_message *msgs[] = { &m };
	struct smtp_client_options o = fake_options();
	memset(&r, 0, sizeof(r));
	fake_session(&f, &o, msgs, 1, &r);
	assert_true(r.ok);
	check_rcpt(&r.m[0], 0, SMTP_CLIENT_DELIVERED, 250, NULL);
	assert_int_equal(f.data.len, want->len);
	assert_memory_equal(f.data.data, want->data, want->len);
	assert_int_equal(stat(path, &st), 0);
	snprintf(mail, sizeof(mail), "MAIL FROM:<a@client.test> SIZE=%llu\n",
	    (unsigned long long)st.st_size);
	assert_non_null(strstr(buf_cstr(&f.log), mail));
	assert_int_equal(f.tls_sessions, tls ? 1 : 0);
	fake_free(&f);
}

/* A big message to a server that starts reading late, in plaintext and
 * in TLS: the client keeps at most SC_OUTPUT_HIGH queued and streams as
 * output drains. */
static void
test_fake_big_data(void **state)
{
	struct buf want = BUF_INIT;
	char path[256];
	(void)state;
	make_big_message("big.eml", 3 * 1024 * 1024, path, sizeof(path));
	encode_file(path, true, &want);
	big_data_session(path, &want, false);
	big_data_session(path, &want, true);
	buf_free(&want);
}

/* CHUNKING (RFC 3030), with and without PIPELINING. */
static void
test_fake_bdat(void **state)
{
	static const char *const ehlo[] = {
		"PIPELINING\nCHUNKING\n8BITMIME",
		"CHUNKING\n8BITMIME",
	};
	char path[256];
	struct buf want = BUF_INIT;
	(void)state;
	make_big_message("bdat.eml", 200 * 1024, path, sizeof(path));
	encode_file(path, false, &want);
	for (size_t i = 0; i < NELEM(ehlo); i++) {
		struct fake f = { .ehlo = ehlo[i] };
		struct run r;
		struct smtp_client_message m = plain_message(&rcpt_b, 1);
		m.path = path;
		m.eightbit = true;
		const struct smtp_client_message *msgs[] = { &m };
		struct smtp_client_options o = fake_options();
		memset(&r, 0, sizeof(r));
		fake_session(&f, &o, msgs, 1, &r);
		assert_true(r.ok);
		check_rcpt(&r.m[0], 0, SMTP_CLIENT_DELIVERED, 250, "2.0.0");
		assert_int_equal(f.data.len, want.len);
		assert_memory_equal(f.data.data, want.data, want.len);
		const char *log = buf_cstr(&f.log);
		assert_non_null(strstr(log, "MAIL FROM:<a@client.test> "
		    "BODY=8BITMIME\nRCPT TO:<b@mx.test>\nBDAT "));
		assert_null(strstr(log, "DATA\n"));
		assert_non_null(strstr(log, " LAST\nQUIT\n"));
		fake_free(&f);
	}
	buf_free(&want);
}

static void
test_fake_bdat_refused(void **state)
{
	static const struct fake_rule rules[] = {
		{ "BDAT", "552 5.3.4 too big for me" }, { NULL, NULL },
	};
	struct fake f = { .ehlo = "PIPELINING\nCHUNKING", .rules = rules };
	struct run r;
	(void)state;
	struct smtp_client_message m = plain_message(&rcpt_b, 1);
	const struct smtp_client_message *msgs[] = { &m, &m };
	struct smtp_client_options o = fake_options();
	memset(&r, 0, sizeof(r));
	fake_session(&f, &o, msgs, 2, &r);
	assert_true(r.ok);
	check_rcpt(&r.m[0], 0, SMTP_CLIENT_PERMFAIL, 552, "5.3.4");
	assert_string_equal(r.m[0].r[0].text, "too big for me");
	check_rcpt(&r.m[1], 0, SMTP_CLIENT_PERMFAIL, 552, "5.3.4");
	/* RSET between the failed transaction and the next. */
	char want[200];
	snprintf(want, sizeof(want), "BDAT %zu LAST\nRSET\nMAIL",
	    sizeof(msg_text) - 1);
	assert_non_null(strstr(buf_cstr(&f.log), want));
	fake_free(&f);
}

/* One pipelined group, replies matched in order (RFC 2920). */
static void
test_fake_pipelined_results(void **state)
{
	static const struct fake_rule rules[] = {
		{ "RCPT TO:<bad@", "550-5.1.1 no such user\r\n550 5.1.1 here" },
		{ "RCPT TO:<later@", "451 4.3.0 try later" },
		{ NULL, NULL },
	};
	static const struct smtp_client_rcpt rcpts[] = {
		{ "bad@mx.test", 0, NULL }, { "b@mx.test", 0, NULL },
		{ "later@mx.test", 0, NULL },
	};
	struct fake f = { .ehlo = "PIPELINING", .rules = rules };
	struct run r;
	(void)state;
	struct smtp_client_message m = plain_message(rcpts, 3);
	const struct smtp_client_message *msgs[] = { &m };
	struct smtp_client_options o = fake_options();
	memset(&r, 0, sizeof(r));
	fake_session(&f, &o, msgs, 1, &r);
	assert_true(r.ok);
	assert_true(f.group_seen);
	check_rcpt(&r.m[0], 0, SMTP_CLIENT_PERMFAIL, 550, "5.1.1");
	assert_string_equal(r.m[0].r[0].text, "no such user here");
	check_rcpt(&r.m[0], 1, SMTP_CLIENT_DELIVERED, 250, "2.0.0");
	check_rcpt(&r.m[0], 2, SMTP_CLIENT_TEMPFAIL, 451, "4.3.0");
	fake_free(&f);
}

/* Every RCPT refused: DATA is refused too; RSET before the next
 * message. Without PIPELINING no DATA is sent at all. */
static void
test_fake_all_rcpts_refused(void **state)
{
	static const struct fake_rule rules[] = {
		{ "RCPT", "550 5.1.1 no" },
		{ "DATA", "554 5.5.1 no valid recipients" },
		{ NULL, NULL },
	};
	static const char *const ehlo[] = { "PIPELINING", "8BITMIME" };
	static const char *const want[] = {
		"EHLO client.test\nMAIL FROM:<a@client.test>\n"
		    "RCPT TO:<b@mx.test>\nDATA\nRSET\nMAIL FROM:<a@client.test>\n"
		    "RCPT TO:<b@mx.test>\nDATA\nQUIT\n",
		"EHLO client.test\nMAIL FROM:<a@client.test>\n"
		    "RCPT TO:<b@mx.test>\nRSET\nMAIL FROM:<a@client.test>\n"
		    "RCPT TO:<b@mx.test>\nQUIT\n",
	};
	(void)state;
	for (size_t i = 0; i < NELEM(ehlo); i++) {
		struct fake f = { .ehlo = ehlo[i], .rules = rules };
		struct run r;
		struct smtp_client_message m = plain_message(&rcpt_b, 1);
		const struct smtp_client_message *msgs[] = { &m, &m };
		struct smtp_client_options o = fake_options();
		memset(&r, 0, sizeof(r));
		fake_session(&f, &o, msgs, 2, &r);
		assert_true(r.ok);
		check_rcpt(&r.m[0], 0, SMTP_CLIENT_PERMFAIL, 550, "5.1.1");
		check_rcpt(&r.m[1], 0, SMTP_CLIENT_PERMFAIL, 550, "5.1.1");
		assert_string_equal(buf_cstr(&f.log), want[i]);
		fake_free(&f);
	}
}

/* A server that says 354 although no recipient was accepted gets an
 * empty message (RFC 2920 3.1). */
static void
test_fake_354_for_nobody(void **state)
{
	static const struct fake_rule rules[] = {
		{ "RCPT", "550 5.1.1 no" }, { NULL, NULL },
	};
	struct fake f = { .ehlo = "PIPELINING", .rules = rules };
	struct run r;
	(void)state;
	struct smtp_client_message m = plain_message(&rcpt_b, 1);
	const struct smtp_client_message *msgs[] = { &m, &m };
	struct smtp_client_options o = fake_options();
	memset(&r, 0, sizeof(r));
	fake_session(&f, &o, msgs, 2, &r);
	assert_true(r.ok);
	check_rcpt(&r.m[0], 0, SMTP_CLIENT_PERMFAIL, 550, "5.1.1");
	check_rcpt(&r.m[1], 0, SMTP_CLIENT_PERMFAIL, 550, "5.1.1");
	assert_string_equal(buf_cstr(&f.data), ".\r\n.\r\n");
	/* The final reply ended the transaction: no RSET needed. */
	assert_null(strstr(buf_cstr(&f.log), "RSET"));
	fake_free(&f);
}

static void
test_fake_helo_fallback(void **state)
{
	struct fake f = { .ehlo_reply = "502 5.5.2 EHLO? never heard of it" };
	struct run r;
	(void)state;
	struct smtp_client_message m1 = plain_message(&rcpt_b, 1);
	struct smtp_client_message m2 = plain_message(&rcpt_b, 1);
	m1.eightbit = true;
	const struct smtp_client_message *msgs[] = { &m1, &m2 };
	struct smtp_client_options o = fake_options();
	memset(&r, 0, sizeof(r));
	fake_session(&f, &o, msgs, 2, &r);
	assert_true(r.ok);
	check_rcpt(&r.m[0], 0, SMTP_CLIENT_PERMFAIL, 0, "5.6.3");
	assert_true(r.m[0].needs_7bit);
	check_rcpt(&r.m[1], 0, SMTP_CLIENT_DELIVERED, 250, "2.0.0");
	assert_string_equal(buf_cstr(&f.log), "EHLO client.test\n"
	    "HELO client.test\nMAIL FROM:<a@client.test>\n"
	    "RCPT TO:<b@mx.test>\nDATA\nQUIT\n");
	fake_free(&f);
}

/* Refusals before anything is sent: SIZE, SMTPUTF8, bad addresses, a
 * missing file. */
static void
test_fake_refusals(void **state)
{
	static const struct smtp_client_rcpt utf8_rcpt[] = {
		{ "j\xc3\xb6rg@mx.test", 0, NULL },
	};
	static const struct smtp_client_rcpt mixed[] = {
		{ "b>@mx.test", 0, NULL }, { "line\r\nbreak@mx.test", 0, NULL },
		{ "b@mx.test", 0, NULL },
	};
	struct fake f = { .ehlo = "PIPELINING\nSIZE 100\n8BITMIME" };
	struct run r;
	(void)state;
	struct smtp_client_message big = plain_message(&rcpt_b, 1);
	struct smtp_client_message utf8 = plain_message(&rcpt_b, 1);
	struct smtp_client_message utf8_addr = plain_message(utf8_rcpt, 1);
	struct smtp_client_message bad = plain_message(mixed, 3);
	struct smtp_client_message missing = plain_message(&rcpt_b, 1);
	struct smtp_client_message bad_from = plain_message(&rcpt_b, 1);
	big.size = 5000;
	utf8.smtputf8 = true;
	utf8.size = 50;
	bad.size = 50;
	missing.path = "/nonexistent/message";
	bad_from.from = "a\tb@client.test";
	const struct smtp_client_message *msgs[] = { &big, &utf8, &utf8_addr,
	    &bad, &missing, &bad_from };
	struct smtp_client_options o = fake_options();
	memset(&r, 0, sizeof(r));
	fake_session(&f, &o, msgs, NELEM(msgs), &r);
	assert_true(r.ok);
	assert_int_equal(r.nmsgs, NELEM(msgs));
	check_rcpt(&r.m[0], 0, SMTP_CLIENT_PERMFAIL, 0, "5.3.4");
	check_rcpt(&r.m[1], 0, SMTP_CLIENT_PERMFAIL, 0, "5.6.7");
	check_rcpt(&r.m[2], 0, SMTP_CLIENT_PERMFAIL, 0, "5.6.7");
	check_rcpt(&r.m[3], 0, SMTP_CLIENT_PERMFAIL, 0, "5.1.3");
	check_rcpt(&r.m[3], 1, SMTP_CLIENT_PERMFAIL, 0, "5.1.3");
	check_rcpt(&r.m[3], 2, SMTP_CLIENT_DELIVERED, 250, "2.0.0");
	check_rcpt(&r.m[4], 0, SMTP_CLIENT_TEMPFAIL, 0, "4.3.0");
	assert_true(r.m[4].attempted);
	check_rcpt(&r.m[5], 0, SMTP_CLIENT_PERMFAIL, 0, "5.1.7");
	/* Only the one good recipient ever reached the wire. */
	assert_string_equal(buf_cstr(&f.log), "EHLO client.test\n"
	    "MAIL FROM:<a@client.test> SIZE=50\nRCPT TO:<b@mx.test>\nDATA\n"
	    "QUIT\n");
	fake_free(&f);
}

static void
test_fake_smtputf8(void **state)
{
	static const struct smtp_client_rcpt utf8_rcpt[] = {
		{ "j\xc3\xb6rg@mx.test", SMTP_NOTIFY_DELAY, NULL },
	};
	struct fake f = { .ehlo = "SMTPUTF8\n8BITMIME\nDSN" };
	struct run r;
	(void)state;
	struct smtp_client_message m = plain_message(utf8_rcpt, 1);
	m.eightbit = true;
	const struct smtp_client_message *msgs[] = { &m };
	struct smtp_client_options o = fake_options();
	memset(&r, 0, sizeof(r));
	fake_session(&f, &o, msgs, 1, &r);
	assert_true(r.ok);
	check_rcpt(&r.m[0], 0, SMTP_CLIENT_DELIVERED, 250, "2.0.0");
	assert_non_null(strstr(buf_cstr(&f.log), "MAIL FROM:<a@client.test> "
	    "BODY=8BITMIME SMTPUTF8\nRCPT TO:<j\xc3\xb6rg@mx.test> "
	    "NOTIFY=DELAY\n"));
	fake_free(&f);
}

/* The first result callback queues another message and ends the session:
 * both go over the one connection. */
static void
test_fake_send_from_callback(void **state)
{
	struct fake f = { .ehlo = "PIPELINING" };
	struct run r;
	(void)state;
	struct smtp_client_message m1 = plain_message(&rcpt_b, 1);
	struct smtp_client_message m2 = plain_message(&rcpt_b, 1);
	m2.from = "second@client.test";
	const struct smtp_client_message *msgs[] = { &m1 };
	struct smtp_client_options o = fake_options();
	memset(&r, 0, sizeof(r));
	r.then = &m2;
	fake_session(&f, &o, msgs, 1, &r);
	assert_true(r.ok);
	assert_int_equal(r.nmsgs, 2);
	check_rcpt(&r.m[1], 0, SMTP_CLIENT_DELIVERED, 250, "2.0.0");
	assert_int_equal(f.connections, 1);
	assert_non_null(strstr(buf_cstr(&f.log),
	    "MAIL FROM:<second@client.test>"));
	fake_free(&f);
}

static void
test_fake_ipv6(void **state)
{
	struct fake f = { .ehlo = "PIPELINING", .v6 = true };
	struct run r;
	(void)state;
	struct smtp_client_message m = plain_message(&rcpt_b, 1);
	const struct smtp_client_message *msgs[] = { &m };
	struct smtp_client_options o = fake_options();
	int probe = socket(AF_INET6, SOCK_STREAM, 0);
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6,
	    .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	bool have_v6 = probe >= 0 && bind(probe, (struct sockaddr *)&s6,
	    sizeof(s6)) == 0;
	if (probe >= 0)
		close(probe);
	if (!have_v6)
		skip();
	memset(&r, 0, sizeof(r));
	fake_session(&f, &o, msgs, 1, &r);
	assert_true(r.ok);
	check_rcpt(&r.m[0], 0, SMTP_CLIENT_DELIVERED, 250, "2.0.0");
	fake_free(&f);
}

/* Junk instead of a greeting, an endless line, a code that changes in a
 * multi-line reply: each ends the session with a clear error. */
static void
test_fake_malformed_replies(void **state)
{
	static char longline[4000];
	memset(longline, 'x', sizeof(longline) - 1);
	memcpy(longline, "250-", 4);
	struct {
		struct fake f;
		const char *error;
	} cases[] = {
		{ { .greeting = "hello, I am not an SMTP server" },
		    "malformed reply line" },
		{ { .ehlo_reply = longline }, "reply line too long" },
		{ { .ehlo_reply = "250-fake.test\r\n251 HELP" },
		    "reply code changed" },
		{ { .greeting = "554 5.7.1 go away" }, "go away" },
	};
	(void)state;
	for (size_t i = 0; i < NELEM(cases); i++) {
		struct run r;
		struct smtp_client_message m = plain_message(&rcpt_b, 1);
		const struct smtp_client_message *msgs[] = { &m };
		struct smtp_client_options o = fake_options();
		memset(&r, 0, sizeof(r));
		fake_session(&cases[i].f, &o, msgs, 1, &r);
		assert_false(r.ok);
		assert_false(r.reached);
		if (strstr(r.text, cases[i].error) == NULL)
			fail_msg("case %zu: \"%s\"", i, r.text);
		assert_false(r.m[0].attempted);
		assert_int_equal(r.m[0].r[0].st, SMTP_CLIENT_TEMPFAIL);
		assert_null(strstr(buf_cstr(&cases[i].f.log), "MAIL"));
		fake_free(&cases[i].f);
	}
}

/* ---- STARTTLS, DANE, AUTH ---- */

static void
test_fake_starttls(void **state)
{
	/* What the server sends after its 220 in plaintext must never be
	 * read as a reply inside TLS. */
	struct fake f = { .ehlo = "PIPELINING", .tls = true,
	    .tls_inject = "554 5.7.0 injected before the handshake" };
	struct run r;
	(void)state;
	struct smtp_client_message m = plain_message(&rcpt_b, 1);
	const struct smtp_client_message *msgs[] = { &m };
	struct smtp_client_options o = fake_options();
	memset(&r, 0, sizeof(r));
	fake_session(&f, &o, msgs, 1, &r);
	assert_true(r.ok);
	assert_true(r.tls_at_ready);
	assert_int_equal(f.tls_sessions, 1);
	check_rcpt(&r.m[0], 0, SMTP_CLIENT_DELIVERED, 250, "2.0.0");
	assert_string_equal(buf_cstr(&f.log), "EHLO client.test\nSTARTTLS\n"
	    "EHLO client.test\nMAIL FROM:<a@client.test>\n"
	    "RCPT TO:<b@mx.test>\nDATA\nQUIT\n");
	fake_free(&f);
}

static void
test_fake_tls_policies(void **state)
{
	struct run r;
	struct smtp_client_message m = plain_message(&rcpt_b, 1);
	const struct smtp_client_message *msgs[] = { &m };
	(void)state;

	/* NONE never asks. */
	struct fake f1 = { .tls = true };
	struct smtp_client_options o = fake_options();
	o.tls = SMTP_CLIENT_TLS_NONE;
	memset(&r, 0, sizeof(r));
	fake_session(&f1, &o, msgs, 1, &r);
	assert_true(r.ok);
	assert_int_equal(f1.tls_sessions, 0);
	assert_null(strstr(buf_cstr(&f1.log), "STARTTLS"));
	fake_free(&f1);

	/* ENCRYPT with a server that does not offer it. */
	struct fake f2 = { .tls = false };
	o = fake_options();
	o.tls = SMTP_CLIENT_TLS_ENCRYPT;
	memset(&r, 0, sizeof(r));
	fake_session(&f2, &o, msgs, 1, &r);
	assert_false(r.reached);
	assert_string_equal(r.enh, "4.7.10");
	assert_false(r.m[0].attempted);
	assert_null(strstr(buf_cstr(&f2.log), "MAIL"));
	fake_free(&f2);

	/* Opportunistic, the handshake fails: once more in plaintext. */
	struct fake f3 = { .tls = true, .tls_garbage = true, .conns = 2 };
	o = fake_options();
	memset(&r, 0, sizeof(r));
	fake_session(&f3, &o, msgs, 1, &r);
	assert_true(r.ok);
	assert_int_equal(f3.connections, 2);
	check_rcpt(&r.m[0], 0, SMTP_CLIENT_DELIVERED, 250, "2.0.0");
	assert_false(r.tls_at_ready);
	fake_free(&f3);

	/* ENCRYPT, the handshake fails: no plaintext retry. */
	struct fake f4 = { .tls = true, .tls_garbage = true, .conns = 1 };
	o = fake_options();
	o.tls = SMTP_CLIENT_TLS_ENCRYPT;
	memset(&r, 0, sizeof(r));
	fake_session(&f4, &o, msgs, 1, &r);
	assert_false(r.reached);
	assert_int_equal(f4.connections, 1);
	assert_non_null(strstr(r.text, "TLS"));
	fake_free(&f4);
}

/* SHA2-256 of the test certificate's SubjectPublicKeyInfo (a TLSA 3 1 1
 * record's data). */
static void
cert_spki_sha256(unsigned char out[32])
{
	unsigned n = 0;
	FILE *fp = fopen(cert_path, "r");
	assert_non_null(fp);
	X509 *x = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(x);
	unsigned char *der = NULL;
	int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	assert_true(len > 0);
	assert_int_equal(EVP_Digest(der, (size_t)len, out, &n, EVP_sha256(),
	    NULL), 1);
	assert_int_equal(n, 32);
	OPENSSL_free(der);
	X509_free(x);
}

/* TLS_VERIFY: PKIX with the name, or DANE-EE (which ignores names). */
static void
test_fake_tls_verify(void **state)
{
	unsigned char spki[32], wrong[32];
	cert_spki_sha256(spki);
	memcpy(wrong, spki, sizeof(wrong));
	wrong[0] ^= 1;
	const struct conn_tlsa good = { 3, 1, 1, spki, 32 };
	const struct conn_tlsa bad = { 3, 1, 1, wrong, 32 };
	struct {
		const char *host;
		const struct conn_tlsa *tlsa;
		bool ok;
	} cases[] = {
		{ "mx.test", NULL, true },
		{ "other.test", NULL, false },
		{ "other.test", &good, true },
		{ "mx.test", &bad, false },
	};
	(void)state;
	for (size_t i = 0; i < NELEM(cases); i++) {
		struct fake f = { .tls = true, .ehlo = "PIPELINING" };
		struct run r;
		struct smtp_client_message m = plain_message(&rcpt_b, 1);
		const struct smtp_client_message *msgs[] = { &m };
		struct smtp_client_options o = fake_options();
		o.tls = SMTP_CLIENT_TLS_VERIFY;
		o.host_name = cases[i].host;
		o.tlsa = cases[i].tlsa;
		o.ntlsa = cases[i].tlsa ? 1 : 0;
		memset(&r, 0, sizeof(r));
		fake_session(&f, &o, msgs, 1, &r);
		if (r.ok != cases[i].ok)
			fail_msg("case %zu: ok=%d \"%s\"", i, r.ok, r.text);
		assert_int_equal(f.tls_sessions, 1);
		if (cases[i].ok)
			check_rcpt(&r.m[0], 0, SMTP_CLIENT_DELIVERED, 250,
			    "2.0.0");
		else {
			assert_string_equal(r.enh, "4.7.5");
			assert_non_null(strstr(r.text, "not verified"));
			assert_null(strstr(buf_cstr(&f.log), "MAIL"));
		}
		fake_free(&f);
	}
}

static void
test_fake_auth(void **state)
{
	struct {
		bool tls, plaintext_ok;
		const char *password;
		bool ok;
		const char *error;
	} cases[] = {
		{ true, false, "secret", true, NULL },
		{ false, false, "secret", false, "without TLS" },
		{ false, true, "secret", true, NULL },
		{ true, false, "wrong", false, "no" },
	};
	(void)state;
	for (size_t i = 0; i < NELEM(cases); i++) {
		struct fake f = { .tls = cases[i].tls,
		    .ehlo = "AUTH LOGIN PLAIN", .auth = "AGpvZQBzZWNyZXQ=" };
		struct run r;
		struct smtp_client_message m = plain_message(&rcpt_b, 1);
		const struct smtp_client_message *msgs[] = { &m };
		struct smtp_client_options o = fake_options();
		o.auth_user = "joe";
		o.auth_password = cases[i].password;
		o.auth_without_tls = cases[i].plaintext_ok;
		memset(&r, 0, sizeof(r));
		fake_session(&f, &o, msgs, 1, &r);
		if (r.ok != cases[i].ok)
			fail_msg("case %zu: ok=%d \"%s\"", i, r.ok, r.text);
		if (cases[i].ok) {
			check_rcpt(&r.m[0], 0, SMTP_CLIENT_DELIVERED, 250,
			    "2.0.0");
			assert_non_null(strstr(buf_cstr(&f.log),
			    "AUTH PLAIN AGpvZQBzZWNyZXQ=\nMAIL"));
		} else {
			assert_false(r.reached);
			assert_non_null(strstr(r.text, cases[i].error));
			assert_null(strstr(buf_cstr(&f.log), "MAIL"));
		}
		if (!cases[i].tls && !cases[i].plaintext_ok)
			assert_null(strstr(buf_cstr(&f.log), "AUTH"));
		fake_free(&f);
	}
}

/* ---- the connection layer's outbound side, directly ---- */

struct raw {
	bool closed;
	unsigned lines;
	enum conn_tls_auth auth;
	unsigned chain;
	unsigned char spki[64], cert[64];
	size_t spki_len, cert_len;
	char local[64];
	struct buf line;
};

static void
raw_on_input(struct conn *c, void *arg)
{
	struct raw *r = arg;
	while (conn_read_line(c, 512, &r->line) == CONN_LINE_OK) {
		if (r->lines++ > 0) {		/* 221 to QUIT */
			conn_close(c);
			return;
		}
		r->auth = conn_tls_peer_auth(c, NULL);
		r->chain = conn_tls_peer_chain_length(c);
		assert_int_equal(conn_tls_peer_digest(c, 0, true, false,
		    r->spki, &r->spki_len), 0);
		assert_int_equal(conn_tls_peer_digest(c, 0, false, true,
		    r->cert, &r->cert_len), 0);
		assert_int_equal(conn_tls_peer_digest(c, 1, false, false,
		    r->cert, &r->cert_len), -1);
		snprintf(r->local, sizeof(r->local), "%s", conn_local_addr(c));
		conn_puts(c, "QUIT\r\n");
	}
}

static void
raw_on_closed(struct conn *c, void *arg)
{
	struct raw *r = arg;
	(void)c;
	r->closed = true;
}

static const struct conn_handler raw_handler = {
	.on_input = raw_on_input,
	.on_closed = raw_on_closed,
};

static void
raw_on_connect(struct conn *c, const char *error, void *arg)
{
	struct conn_tls_client o = { .server_name = "mx.test" };
	assert_null(error);
	assert_non_null(c);
	conn_set_handler(c, &raw_handler, arg);
	/* Implicit TLS: nothing to discard, the handshake starts now. */
	assert_int_equal(conn_start_tls_client(c, &o), 0);
	assert_int_equal(conn_start_tls_client(c, &o), -1);
}

/* conn_connect from a chosen source address, conn_start_tls_client, and
 * the peer certificate accessors DANE checks are built on. */
static void
test_conn_outbound_tls(void **state)
{
	struct fake f = { .implicit_tls = true };
	struct raw r;
	char *error = NULL;
	unsigned char want[32], want_cert[64];
	unsigned n = 0;
	(void)state;
	memset(&r, 0, sizeof(r));
	assert_null(conn_connect("127.0.0.1", 25, "::1", 1000, SVC_SMTP,
	    raw_on_connect, &r, &error));
	assert_non_null(strstr(error, "source address"));
	free(error);
	error = NULL;
	assert_null(conn_connect("mx.test", 25, NULL, 1000, SVC_SMTP,
	    raw_on_connect, &r, &error));
	free(error);

	assert_true(fake_start(&f));
	assert_non_null(conn_connect("127.0.0.1", f.port, "127.0.0.1", 1000,
	    SVC_SMTP, raw_on_connect, &r, &error));
	run_until(&r.closed, 5000);
	fake_stop(&f);
	assert_int_equal(r.lines, 2);
	assert_int_equal(r.auth, CONN_TLS_AUTH_PKIX);
	assert_int_equal(r.chain, 1);
	assert_string_equal(r.local, "127.0.0.1");
	cert_spki_sha256(want);
	assert_int_equal(r.spki_len, 32);
	assert_memory_equal(r.spki, want, 32);
	FILE *fp = fopen(cert_path, "r");
	X509 *x = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_int_equal(X509_digest(x, EVP_sha512(), want_cert, &n), 1);
	X509_free(x);
	assert_int_equal(r.cert_len, 64);
	assert_memory_equal(r.cert, want_cert, 64);
	assert_string_equal(buf_cstr(&f.log), "QUIT\n");
	buf_free(&r.line);
	fake_free(&f);
}

/* ---- options ---- */

static void
test_bad_options(void **state)
{
	char *error = NULL;
	struct run r;
	(void)state;
	struct smtp_client_options o = test_options(loopback, 1, 25);
	o.helo_name = "bad name";
	assert_null(smtp_client_new(&o, on_done, &r, &error));
	assert_non_null(error);
	free(error);
	error = NULL;
	o = test_options(loopback, 0, 25);
	assert_null(smtp_client_new(&o, on_done, &r, &error));
	free(error);

	/* Unusable addresses are skipped; with none left the session ends
	 * from the loop, and send after end is refused. */
	static const char *const junk[] = { "not-an-address" };
	o = test_options(junk, 1, 25);
	memset(&r, 0, sizeof(r));
	struct smtp_client *s = smtp_client_new(&o, on_done, &r, &error);
	assert_non_null(s);
	struct smtp_client_message m = plain_message(&rcpt_b, 1);
	assert_int_equal(smtp_client_send(s, &m, on_result, &r), 0);
	m.nrcpts = 0;
	assert_int_equal(smtp_client_send(s, &m, on_result, &r), -1);
	smtp_client_end(s);
	m.nrcpts = 1;
	assert_int_equal(smtp_client_send(s, &m, on_result, &r), -1);
	assert_false(r.done);
	run_loop(&r, 2000);
	assert_false(r.reached);
	assert_int_equal(r.nmsgs, 1);
	assert_false(r.m[0].attempted);

	/* Freed before it started, and while waiting for a greeting that
	 * never comes: no callback either time. */
	o = test_options(loopback, 1, free_port());
	memset(&r, 0, sizeof(r));
	s = smtp_client_new(&o, on_done, &r, &error);
	smtp_client_free(s);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
	o = test_options(loopback, 1, ntohs(sin.sin_port));
	s = smtp_client_new(&o, on_done, &r, &error);
	assert_int_equal(smtp_client_send(s, &m, on_result, &r), 0);
	uint64_t end = now_ms() + 200;
	while (now_ms() < end)
		event_base_loop(base, EVLOOP_NONBLOCK);
	assert_string_equal(smtp_client_state_name(s), "greeting");
	smtp_client_free(s);
	for (int i = 0; i < 10; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	close(lfd);
	assert_false(r.done);
	assert_int_equal(r.nmsgs, 0);
}

/* ---- setup ---- */

static int
group_setup(void **state)
{
	char *error = NULL;
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	log_init("test_smtp_client", getenv("TEST_VERBOSE") != NULL);
	base = event_base_new();
	net_init(base, 100, 100);
	timer_set_base(base);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/correo-smtpc-XXXXXX");
	if (mkdtemp(tmpdir) == NULL || chmod(tmpdir, 0755) < 0)
		return -1;
	snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", tmpdir);
	snprintf(key_path, sizeof(key_path), "%s/key.pem", tmpdir);
	if (tls_make_self_signed("mx.test", cert_path, key_path, &error) < 0)
		return -1;
	/* The test certificate is the trust anchor for PKIX. */
	if (tls_client_setup(cert_path, &error) < 0)
		return -1;
	srv_ctx = SSL_CTX_new(TLS_server_method());
	if (srv_ctx == NULL ||
	    SSL_CTX_use_certificate_chain_file(srv_ctx, cert_path) != 1 ||
	    SSL_CTX_use_PrivateKey_file(srv_ctx, key_path,
	    SSL_FILETYPE_PEM) != 1)
		return -1;
	write_file("msg.eml", msg_text, sizeof(msg_text) - 1, msg_path,
	    sizeof(msg_path));
	return 0;
}

static int
group_teardown(void **state)
{
	char cmd[128];
	(void)state;
	SSL_CTX_free(srv_ctx);
	tls_free();
	net_close_all();
	event_base_free(base);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_shapes),
		cmocka_unit_test(test_reply_bad),
		cmocka_unit_test(test_reply_every_split),
		cmocka_unit_test(test_ext_parse),
		cmocka_unit_test(test_encoder),
		cmocka_unit_test(test_sink_pipelining_dsn),
		cmocka_unit_test(test_sink_no_pipelining_no_8bitmime),
		cmocka_unit_test(test_sink_rcpt_4xx),
		cmocka_unit_test(test_sink_rcpt_5xx),
		cmocka_unit_test(test_sink_data_5xx),
		cmocka_unit_test(test_sink_dot_4xx),
		cmocka_unit_test(test_sink_421),
		cmocka_unit_test(test_sink_drop_at_dot),
		cmocka_unit_test(test_sink_slow_final_reply),
		cmocka_unit_test(test_address_fallback),
		cmocka_unit_test(test_connection_refused),
		cmocka_unit_test(test_greeting_timeout),
		cmocka_unit_test(test_fake_dot_stuffing),
		cmocka_unit_test(test_fake_big_data),
		cmocka_unit_test(test_fake_bdat),
		cmocka_unit_test(test_fake_bdat_refused),
		cmocka_unit_test(test_fake_pipelined_results),
		cmocka_unit_test(test_fake_all_rcpts_refused),
		cmocka_unit_test(test_fake_354_for_nobody),
		cmocka_unit_test(test_fake_helo_fallback),
		cmocka_unit_test(test_fake_refusals),
		cmocka_unit_test(test_fake_smtputf8),
		cmocka_unit_test(test_fake_send_from_callback),
		cmocka_unit_test(test_fake_ipv6),
		cmocka_unit_test(test_fake_malformed_replies),
		cmocka_unit_test(test_fake_starttls),
		cmocka_unit_test(test_fake_tls_policies),
		cmocka_unit_test(test_fake_tls_verify),
		cmocka_unit_test(test_fake_auth),
		cmocka_unit_test(test_conn_outbound_tls),
		cmocka_unit_test(test_bad_options),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
