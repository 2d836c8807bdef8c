/* imapload: the IMAP and POP3 load generator of bench/run (libevent).
 *
 * One process, one event loop, many client connections, so that the client
 * costs the same small amount against every server it is pointed at.
 *
 *   imapload mix  [common] -c CLIENTS -d SECONDS [-W WARMUP] [-s SEED]
 *                 [-o OPS]
 *       each client runs sessions for WARMUP (0) + SECONDS: connect, LOGIN,
 *       SELECT INBOX, FETCH 1:* (FLAGS), then OPS (100) operations drawn from
 *       FETCH ENVELOPE/BODYSTRUCTURE of a range, FETCH BODY[] of one
 *       message, SEARCH, STORE and APPEND (to Sent, so that INBOX keeps its
 *       size), then LOGOUT. Only commands completed in the SECONDS after
 *       the warm-up count: the first LOGINs of all clients at once are not
 *       the steady state.
 *   imapload warm [common]
 *       one session that opens the mailbox the first time: LOGIN, SELECT,
 *       FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE), each kind of SEARCH of
 *       the mix, LOGOUT; each step's time is reported.
 *   imapload idle [common] -n CONNS [-P PARALLEL] [-N]
 *       opens CONNS connections (LOGIN on each unless -N), prints one JSON
 *       line, then holds them until standard input reaches end of file.
 *   imapload pop3 [common] -r PASSES
 *       PASSES sessions in a row, each USER, PASS, STAT, RETR of every
 *       message, QUIT.
 *
 * common: -H HOST (127.0.0.1) -p PORT -u USER -w PASSWORD [-T: implicit TLS]
 *
 * Results go to standard output as one JSON object per line; progress and
 * problems to standard error. Exit status 0 when the run finished, 1 on a
 * usage error or when nothing could be done. */

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define MIX_OPS_MAX 1000	/* random operations per mix session */
#define RANGE_LEN 25		/* messages per FETCH ENVELOPE range */
#define SCRIPT_MAX (MIX_OPS_MAX + 8)
#define HEAD_MAX 64		/* bytes of a line looked at */
#define GRACE_SECONDS 120	/* after the end, for the last replies */

enum mode { MODE_MIX, MODE_WARM, MODE_IDLE, MODE_POP3 };

enum op {
	OP_CONNECT, OP_LOGIN, OP_SELECT, OP_FETCH_FLAGS, OP_FETCH_ENV,
	OP_FETCH_BODY, OP_SEARCH, OP_STORE, OP_APPEND, OP_LOGOUT,
	OP_FETCH_ALL, OP_POP_USER, OP_POP_PASS, OP_POP_STAT, OP_POP_RETR,
	OP_POP_QUIT, OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
	"connect", "login", "select", "fetch_flags", "fetch_envelope",
	"fetch_body", "search", "store", "append", "logout", "fetch_all",
	"user", "pass", "stat", "retr", "quit",
};

struct opts {
	enum mode mode;
	const char *host;
	unsigned port;
	const char *user;
	const char *pass;
	bool tls;
	bool login;		/* idle: LOGIN after the greeting */
	unsigned clients;
	unsigned seconds;
	unsigned warmup;
	unsigned conns;
	unsigned parallel;
	unsigned passes;
	unsigned mix_ops;
	uint64_t seed;
};

struct lat {
	uint32_t *v;		/* microseconds */
	size_t n, cap;
};

struct bench;

struct client {
	struct bench *b;
	unsigned id;
	struct bufferevent *bev;
	uint64_t rng;
	enum op script[SCRIPT_MAX];
	int nsteps, step;
	unsigned tagno;
	char tag[16];
	uint64_t t0;		/* when the current step was sent */
	size_t literal_left;	/* bytes of a server literal still to skip */
	bool want_cont;		/* APPEND waits for "+" */
	bool multiline;		/* POP3: inside a RETR body */
	bool done;
	unsigned exists;	/* messages: SELECT's EXISTS or POP3 STAT */
	unsigned pop_next;
	unsigned search_i;
	unsigned store_i;
	unsigned sessions;
};

struct bench {
	struct opts o;
	struct event_base *base;
	SSL_CTX *ctx;
	struct sockaddr_in sa;
	struct client *cl;
	unsigned ncl;
	unsigned active;	/* clients not yet done */
	unsigned started;	/* idle: connections begun */
	unsigned ready, failed;
	bool measuring;
	bool stopping;
	bool timed_out;
	uint64_t t_start, t_stop;
	struct lat lat[OP_COUNT];
	uint64_t errors[OP_COUNT];
	uint64_t pop_bytes;
	unsigned max_exists;	/* largest EXISTS or STAT count seen */
	unsigned complaints;
	char *append_msg;
	size_t append_len;
	struct event *measure_ev, *stop_ev, *hard_ev, *stdin_ev;
};

static int client_begin(struct client *c);
static void client_advance(struct client *c);

/* ---- small helpers ------------------------------------------------- */

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t
rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 2685821657736338717ULL;
}

/* A number in [lo, hi]; lo when hi < lo. */
static unsigned
rng_range(uint64_t *s, unsigned lo, unsigned hi)
{
	if (hi <= lo)
		return lo;
	return lo + (unsigned)(rng_next(s) % (uint64_t)(hi - lo + 1));
}

static void
lat_add(struct lat *l, uint64_t ns)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 1024;
		uint32_t *v = realloc(l->v, cap * sizeof(*v));
		if (v == NULL) {
			fprintf(stderr, "imapload: out of memory\n");
			exit(1);
		}
		l->v = v;
		l->cap = cap;
	}
	uint64_t us = ns / 1000;
	l->v[l->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* The q-quantile (nearest rank) of sorted v, in milliseconds. */
static double
quantile_ms(const uint32_t *v, size_t n, double q)
{
	if (n == 0)
		return 0.0;
	size_t rank = (size_t)(q * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1] / 1000.0;
}

/* Reports a problem on standard error, only the first few of a run. */
static void
complain(struct bench *b, const char *what, const char *detail)
{
	if (b->complaints++ < 20)
		fprintf(stderr, "imapload: %s: %s\n", what, detail);
	else if (b->complaints == 21)
		fprintf(stderr, "imapload: more problems follow, not shown\n");
}

/* ---- connections ----------------------------------------------------- */

static void
client_close(struct client *c)
{
	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	c->literal_left = 0;
	c->want_cont = false;
	c->multiline = false;
}

static void
bench_maybe_finish(struct bench *b)
{
	if (b->active == 0)
		event_base_loopexit(b->base, NULL);
}

static void
client_finish(struct client *c)
{
	client_close(c);
	if (!c->done) {
		c->done = true;
		c->b->active--;
		bench_maybe_finish(c->b);
	}
}

static void
client_send(struct client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
client_send(struct client *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	va_end(ap);
}

/* Starts an IMAP command: a fresh tag, the clock, then the text. */
static void
imap_cmd(struct client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
imap_cmd(struct client *c, const char *fmt, ...)
{
	va_list ap;
	struct evbuffer *out = bufferevent_get_output(c->bev);

	snprintf(c->tag, sizeof(c->tag), "x%u", ++c->tagno);
	evbuffer_add_printf(out, "%s ", c->tag);
	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

/* ---- IMAP commands --------------------------------------------------- */

static void
imap_send_search(struct client *c)
{
	unsigned i = c->search_i++ % 4;
	unsigned n = rng_range(&c->rng, 0, 99);

	if (i == 0)
		imap_cmd(c, "SEARCH UNSEEN");
	else if (i == 1)
		imap_cmd(c, "SEARCH FLAGGED");
	else if (i == 2)
		imap_cmd(c, "SEARCH FROM \"sender%u@\"", n);
	else
		imap_cmd(c, "SEARCH SUBJECT \"topic %u \"", n);
}

static void
imap_send_store(struct client *c)
{
	unsigned m = rng_range(&c->rng, 1, c->exists);

	imap_cmd(c, "STORE %u %cFLAGS (\\Flagged)", m,
	    (c->store_i++ & 1) ? '-' : '+');
}

static void
imap_send_fetch_env(struct client *c)
{
	unsigned hi = c->exists > RANGE_LEN ? c->exists - RANGE_LEN + 1 : 1;
	unsigned a = rng_range(&c->rng, 1, hi);
	unsigned z = a + RANGE_LEN - 1 < c->exists ? a + RANGE_LEN - 1
	    : c->exists;

	imap_cmd(c, "FETCH %u:%u (ENVELOPE BODYSTRUCTURE)", a, z);
}

static void
imap_send(struct client *c, enum op op)
{
	struct bench *b = c->b;

	if (op != OP_LOGIN && op != OP_SELECT && op != OP_LOGOUT &&
	    c->exists == 0 && op != OP_APPEND) {
		imap_cmd(c, "NOOP");	/* an empty mailbox: nothing to ask */
		return;
	}
	switch (op) {
	case OP_LOGIN:
		imap_cmd(c, "LOGIN \"%s\" \"%s\"", b->o.user, b->o.pass);
		break;
	case OP_SELECT:
		imap_cmd(c, "SELECT INBOX");
		break;
	case OP_FETCH_FLAGS:
		imap_cmd(c, "FETCH 1:* (FLAGS)");
		break;
	case OP_FETCH_ALL:
		imap_cmd(c, "FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE)");
		break;
	case OP_FETCH_ENV:
		imap_send_fetch_env(c);
		break;
	case OP_FETCH_BODY:
		imap_cmd(c, "FETCH %u (BODY[])",
		    rng_range(&c->rng, 1, c->exists));
		break;
	case OP_SEARCH:
		imap_send_search(c);
		break;
	case OP_STORE:
		imap_send_store(c);
		break;
	case OP_APPEND:
		imap_cmd(c, "APPEND Sent (\\Seen) {%zu}", b->append_len);
		c->want_cont = true;
		break;
	case OP_LOGOUT:
		imap_cmd(c, "LOGOUT");
		break;
	default:
		break;
	}
}

/* ---- POP3 commands --------------------------------------------------- */

static void
pop_send(struct client *c, enum op op)
{
	struct bench *b = c->b;

	switch (op) {
	case OP_POP_USER:
		client_send(c, "USER %s\r\n", b->o.user);
		break;
	case OP_POP_PASS:
		client_send(c, "PASS %s\r\n", b->o.pass);
		break;
	case OP_POP_STAT:
		client_send(c, "STAT\r\n");
		break;
	case OP_POP_RETR:
		client_send(c, "RETR %u\r\n", c->pop_next);
		break;
	case OP_POP_QUIT:
		client_send(c, "QUIT\r\n");
		break;
	default:
		break;
	}
}

/* ---- sessions -------------------------------------------------------- */

static enum op
mix_pick(struct client *c)
{
	unsigned r = rng_range(&c->rng, 0, 99);

	if (r < 30)
		return OP_FETCH_ENV;
	if (r < 60)
		return OP_FETCH_BODY;
	if (r < 75)
		return OP_SEARCH;
	if (r < 90)
		return OP_STORE;
	return OP_APPEND;
}

/* The steps of the next session of c; OP_CONNECT always comes first. */
static void
client_script(struct client *c)
{
	struct bench *b = c->b;
	int n = 0;

	c->script[n++] = OP_CONNECT;
	switch (b->o.mode) {
	case MODE_MIX:
		c->script[n++] = OP_LOGIN;
		c->script[n++] = OP_SELECT;
		c->script[n++] = OP_FETCH_FLAGS;
		for (unsigned i = 0; i < b->o.mix_ops; i++)
			c->script[n++] = mix_pick(c);
		c->script[n++] = OP_LOGOUT;
		break;
	case MODE_WARM:
		c->script[n++] = OP_LOGIN;
		c->script[n++] = OP_SELECT;
		c->script[n++] = OP_FETCH_ALL;
		for (int i = 0; i < 4; i++)
			c->script[n++] = OP_SEARCH;
		c->script[n++] = OP_LOGOUT;
		break;
	case MODE_IDLE:
		if (b->o.login)
			c->script[n++] = OP_LOGIN;
		break;
	case MODE_POP3:
		c->script[n++] = OP_POP_USER;
		c->script[n++] = OP_POP_PASS;
		c->script[n++] = OP_POP_STAT;
		c->script[n++] = OP_POP_QUIT;	/* RETRs go before it */
		break;
	}
	c->nsteps = n;
	c->step = 0;
}

static void
client_send_step(struct client *c)
{
	enum op op = c->script[c->step];

	c->t0 = now_ns();
	if (op >= OP_POP_USER)
		pop_send(c, op);
	else
		imap_send(c, op);
}

/* The current step of c finished: ok says how. */
static void
client_complete(struct client *c, bool ok)
{
	struct bench *b = c->b;
	enum op op = c->script[c->step];
	uint64_t t = now_ns();

	if (!ok) {
		b->errors[op]++;
	} else if (b->o.mode != MODE_MIX || (b->measuring && !b->stopping)) {
		lat_add(&b->lat[op], t - c->t0);
	}
}

static void
idle_launch_more(struct bench *b);

/* A session ended (LOGOUT or QUIT done, or the server closed). */
static void
client_session_over(struct client *c)
{
	struct bench *b = c->b;

	client_close(c);
	c->sessions++;
	if ((b->o.mode == MODE_MIX && !b->stopping) ||
	    (b->o.mode == MODE_POP3 && c->sessions < b->o.passes)) {
		if (client_begin(c) != 0)
			client_finish(c);
		return;
	}
	client_finish(c);
}

/* An idle connection is set up (or failed): count it, start others. */
static void
idle_settled(struct client *c, bool ok)
{
	struct bench *b = c->b;

	if (ok) {
		b->ready++;
	} else {
		b->failed++;
		client_close(c);
	}
	c->done = true;
	idle_launch_more(b);
}

/* Moves c to its next step after the current one completed well. */
static void
client_advance(struct client *c)
{
	struct bench *b = c->b;
	enum op op = c->script[c->step];

	if (b->o.mode == MODE_POP3 && (op == OP_POP_STAT ||
	    op == OP_POP_RETR) && c->pop_next <= c->exists) {
		c->script[c->step] = OP_POP_RETR;
		client_send_step(c);
		return;
	}
	if (b->o.mode == MODE_MIX && b->stopping) {
		client_finish(c);
		return;
	}
	if (++c->step >= c->nsteps) {
		if (b->o.mode == MODE_IDLE)
			idle_settled(c, true);
		else
			client_session_over(c);
		return;
	}
	client_send_step(c);
}

/* ---- reading IMAP ---------------------------------------------------- */

/* Length of the literal announced at the end of a line ("{123}" or
 * "{123+}"), or 0. */
static size_t
line_literal(const char *tail, size_t n)
{
	if (n < 3 || tail[n - 1] != '}')
		return 0;
	size_t i = n - 1;
	if (tail[i - 1] == '+')
		i--;
	size_t end = i;
	while (i > 0 && tail[i - 1] >= '0' && tail[i - 1] <= '9')
		i--;
	if (i == 0 || i == end || tail[i - 1] != '{')
		return 0;
	return (size_t)strtoull(tail + i, NULL, 10);
}

/* Handles one IMAP line (its first bytes in head); returns 1 when the
 * client's connection was closed or replaced and reading must stop. */
static int
imap_line(struct client *c, const char *head, size_t len)
{
	enum op op = c->script[c->step];
	size_t tl = strlen(c->tag);

	if (op == OP_CONNECT) {
		bool ok = strncmp(head, "* OK", 4) == 0;
		client_complete(c, ok);
		if (!ok) {
			complain(c->b, "greeting", head);
			if (c->b->o.mode == MODE_IDLE)
				idle_settled(c, false);
			else
				client_finish(c);
			return 1;
		}
		client_advance(c);
		return c->bev == NULL;
	}
	if (c->want_cont && head[0] == '+') {
		struct evbuffer *out = bufferevent_get_output(c->bev);
		evbuffer_add(out, c->b->append_msg, c->b->append_len);
		evbuffer_add(out, "\r\n", 2);
		c->want_cont = false;
		return 0;
	}
	if (head[0] == '*') {
		if (op == OP_SELECT && len > 2) {
			char *end;
			unsigned long n = strtoul(head + 2, &end, 10);
			if (strncmp(end, " EXISTS", 7) == 0) {
				c->exists = (unsigned)n;
				if (c->exists > c->b->max_exists)
					c->b->max_exists = c->exists;
			}
		}
		return 0;
	}
	if (len <= tl || strncmp(head, c->tag, tl) != 0 || head[tl] != ' ')
		return 0;	/* the rest of a line after a literal */
	bool ok = strncmp(head + tl + 1, "OK", 2) == 0;
	if (!ok)
		complain(c->b, op_names[op], head);
	client_complete(c, ok);
	if (!ok && (op == OP_LOGIN || op == OP_SELECT)) {
		if (c->b->o.mode == MODE_IDLE)
			idle_settled(c, false);
		else
			client_finish(c);	/* nothing more can work */
		return 1;
	}
	c->want_cont = false;
	struct bufferevent *before = c->bev;
	client_advance(c);
	return c->bev != before || c->bev == NULL;
}

/* Copies the first bytes of the line of length len at the front of in
 * into head (NUL-terminated), and its last bytes into tail. */
static void
line_peek(struct evbuffer *in, size_t len, char *head, char *tail,
    size_t *tail_n)
{
	size_t h = len < HEAD_MAX - 1 ? len : HEAD_MAX - 1;
	ev_ssize_t got = evbuffer_copyout(in, head, h);

	head[got > 0 ? got : 0] = '\0';
	size_t t = len < 24 ? len : 24;
	struct evbuffer_ptr p;
	*tail_n = 0;
	if (t > 0 && evbuffer_ptr_set(in, &p, len - t, EVBUFFER_PTR_SET) == 0) {
		got = evbuffer_copyout_from(in, &p, tail, t);
		*tail_n = got > 0 ? (size_t)got : 0;
	}
}

static void
imap_read(struct client *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	char head[HEAD_MAX], tail[24];
	size_t tail_n, eol_len;

	for (;;) {
		if (c->literal_left > 0) {
			size_t have = evbuffer_get_length(in);
			size_t n = have < c->literal_left ? have : c->literal_left;
			evbuffer_drain(in, n);
			c->literal_left -= n;
			if (c->literal_left > 0)
				return;
		}
		struct evbuffer_ptr e = evbuffer_search_eol(in, NULL, &eol_len,
		    EVBUFFER_EOL_CRLF);
		if (e.pos < 0)
			return;
		size_t len = (size_t)e.pos;
		line_peek(in, len, head, tail, &tail_n);
		evbuffer_drain(in, len + eol_len);
		c->literal_left = line_literal(tail, tail_n);
		if (imap_line(c, head, len))
			return;
	}
}

/* ---- reading POP3 ---------------------------------------------------- */

static int
pop_line(struct client *c, const char *head, size_t len)
{
	enum op op = c->script[c->step];

	if (c->multiline) {
		if (len == 1 && head[0] == '.') {
			c->multiline = false;
			client_complete(c, true);
			c->pop_next++;
			client_advance(c);
			return c->bev == NULL;
		}
		c->b->pop_bytes += len + 2;
		return 0;
	}
	bool ok = strncmp(head, "+OK", 3) == 0;
	if (op == OP_POP_RETR && ok) {
		c->multiline = true;
		return 0;
	}
	if (op == OP_POP_STAT && ok) {
		c->exists = (unsigned)strtoul(head + 3, NULL, 10);
		c->pop_next = 1;
		if (c->exists > c->b->max_exists)
			c->b->max_exists = c->exists;
	}
	client_complete(c, ok);
	if (!ok) {
		complain(c->b, op_names[op], head);
		client_finish(c);
		return 1;
	}
	struct bufferevent *before = c->bev;
	client_advance(c);
	return c->bev != before || c->bev == NULL;
}

static void
pop_read(struct client *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	char head[HEAD_MAX], tail[24];
	size_t tail_n, eol_len;

	for (;;) {
		struct evbuffer_ptr e = evbuffer_search_eol(in, NULL, &eol_len,
		    EVBUFFER_EOL_CRLF);
		if (e.pos < 0)
			return;
		size_t len = (size_t)e.pos;
		line_peek(in, len, head, tail, &tail_n);
		evbuffer_drain(in, len + eol_len);
		if (pop_line(c, head, len))
			return;
	}
}

/* ---- libevent callbacks ---------------------------------------------- */

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;

	(void)bev;
	if (c->b->o.mode == MODE_POP3)
		pop_read(c);
	else
		imap_read(c);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct client *c = arg;
	struct bench *b = c->b;
	enum op op = c->script[c->step];

	(void)bev;
	if (what & BEV_EVENT_CONNECTED)
		return;
	if (op == OP_LOGOUT || op == OP_POP_QUIT) {
		/* The server may close before we read its last reply. */
		client_complete(c, true);
		client_session_over(c);
		return;
	}
	unsigned long e = b->o.tls ? bufferevent_get_openssl_error(bev) : 0;
	char why[160];
	snprintf(why, sizeof(why), "connection %s%s%s",
	    (what & BEV_EVENT_EOF) ? "closed" : "failed", e ? ": " : "",
	    e ? ERR_reason_error_string(e) : "");
	complain(b, op_names[op], why);
	client_complete(c, false);
	if (b->o.mode == MODE_IDLE) {
		if (!c->done)
			idle_settled(c, false);
		else
			client_close(c);	/* lost after it was ready */
		return;
	}
	if (b->o.mode == MODE_MIX)
		client_session_over(c);
	else
		client_finish(c);
}

/* ---- starting connections -------------------------------------------- */

static struct bufferevent *
client_bev(struct bench *b)
{
	int opt = BEV_OPT_CLOSE_ON_FREE;

	if (!b->o.tls)
		return bufferevent_socket_new(b->base, -1, opt);
	SSL *ssl = SSL_new(b->ctx);
	if (ssl == NULL)
		return NULL;
	struct bufferevent *bev = bufferevent_openssl_socket_new(b->base, -1,
	    ssl, BUFFEREVENT_SSL_CONNECTING, opt);
	if (bev == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

/* Starts a session of c: a new connection, then the greeting. Returns
 * -1 when the connection could not even be started. */
static int
client_begin(struct client *c)
{
	struct bench *b = c->b;

	client_script(c);
	c->tagno = 0;
	c->exists = 0;
	c->pop_next = 0;
	c->bev = client_bev(b);
	if (c->bev == NULL) {
		fprintf(stderr, "imapload: cannot make a connection\n");
		exit(1);
	}
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->t0 = now_ns();
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&b->sa,
	    sizeof(b->sa)) != 0) {
		complain(b, "connect", strerror(errno));
		b->errors[OP_CONNECT]++;
		client_close(c);
		return -1;
	}
	return 0;
}

static void
idle_report(struct bench *b)
{
	printf("{\"mode\":\"idle\",\"tls\":%s,\"login\":%s,\"ready\":%u,"
	    "\"failed\":%u,\"seconds\":%.3f}\n", b->o.tls ? "true" : "false",
	    b->o.login ? "true" : "false", b->ready, b->failed,
	    (double)(now_ns() - b->t_start) / 1e9);
	fflush(stdout);
}

/* Keeps o.parallel connections being set up until all are started. */
static void
idle_launch_more(struct bench *b)
{
	while (b->started < b->ncl &&
	    b->started - b->ready - b->failed < b->o.parallel) {
		struct client *c = &b->cl[b->started++];
		if (client_begin(c) != 0) {
			c->done = true;
			b->failed++;
		}
	}
	if (b->ready + b->failed == b->ncl && b->stdin_ev != NULL &&
	    !event_pending(b->stdin_ev, EV_READ, NULL)) {
		idle_report(b);
		event_add(b->stdin_ev, NULL);
	}
}

static void
on_stdin(evutil_socket_t fd, short what, void *arg)
{
	struct bench *b = arg;
	char buf[256];

	(void)what;
	ssize_t n = read(fd, buf, sizeof(buf));
	if (n <= 0)
		event_base_loopbreak(b->base);
}

static void
on_measure(evutil_socket_t fd, short what, void *arg)
{
	struct bench *b = arg;

	(void)fd;
	(void)what;
	b->measuring = true;
	b->t_start = now_ns();
}

static void
on_stop(evutil_socket_t fd, short what, void *arg)
{
	struct bench *b = arg;

	(void)fd;
	(void)what;
	b->stopping = true;
	b->t_stop = now_ns();
}

static void
on_hard_stop(evutil_socket_t fd, short what, void *arg)
{
	struct bench *b = arg;

	(void)fd;
	(void)what;
	fprintf(stderr, "imapload: %u clients still busy at the deadline\n",
	    b->active);
	b->timed_out = true;
	event_base_loopbreak(b->base);
}

/* ---- results --------------------------------------------------------- */

static void
print_op(const char *name, struct lat *l, uint64_t errors, bool *first)
{
	qsort(l->v, l->n, sizeof(*l->v), cmp_u32);
	printf("%s\"%s\":{\"n\":%zu,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
	    "\"max_ms\":%.3f,\"errors\":%llu}", *first ? "" : ",", name, l->n,
	    quantile_ms(l->v, l->n, 0.50), quantile_ms(l->v, l->n, 0.99),
	    l->n ? l->v[l->n - 1] / 1000.0 : 0.0, (unsigned long long)errors);
	*first = false;
}

/* All the IMAP or POP3 commands together (not connection set-up). */
static void
print_totals(struct bench *b, double secs)
{
	struct lat all = { 0 };
	uint64_t errors = 0;

	for (int op = OP_LOGIN; op < OP_COUNT; op++) {
		for (size_t i = 0; i < b->lat[op].n; i++)
			lat_add(&all, (uint64_t)b->lat[op].v[i] * 1000);
		errors += b->errors[op];
	}
	qsort(all.v, all.n, sizeof(*all.v), cmp_u32);
	printf("\"ops\":%zu,\"seconds\":%.3f,\"ops_per_sec\":%.1f,"
	    "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"errors\":%llu,"
	    "\"connect_errors\":%llu,\"timed_out\":%s", all.n, secs,
	    secs > 0 ? (double)all.n / secs : 0.0,
	    quantile_ms(all.v, all.n, 0.50), quantile_ms(all.v, all.n, 0.99),
	    (unsigned long long)errors,
	    (unsigned long long)b->errors[OP_CONNECT],
	    b->timed_out ? "true" : "false");
	free(all.v);
}

static void
print_results(struct bench *b)
{
	static const char *const names[] = {
		[MODE_MIX] = "mix", [MODE_WARM] = "warm", [MODE_POP3] = "pop3",
	};
	uint64_t end = b->stopping ? b->t_stop : now_ns();
	double secs = (double)(end - b->t_start) / 1e9;
	bool first = true;

	printf("{\"mode\":\"%s\",\"clients\":%u,\"tls\":%s,\"exists\":%u,",
	    names[b->o.mode], b->ncl, b->o.tls ? "true" : "false",
	    b->max_exists);
	if (b->o.mode == MODE_POP3)
		printf("\"messages\":%zu,\"bytes\":%llu,", b->lat[OP_POP_RETR].n,
		    (unsigned long long)b->pop_bytes);
	print_totals(b, secs);
	printf(",\"per_op\":{");
	for (int op = 0; op < OP_COUNT; op++)
		if (b->lat[op].n > 0 || b->errors[op] > 0)
			print_op(op_names[op], &b->lat[op], b->errors[op],
			    &first);
	printf("}}\n");
}

/* ---- set-up ---------------------------------------------------------- */

static void
usage(void)
{
	fprintf(stderr, "usage: imapload mix|warm|idle|pop3 -p PORT -u USER "
	    "-w PASSWORD [-H HOST] [-T]\n"
	    "  mix: -c CLIENTS -d SECONDS [-W WARMUP] [-s SEED] "
	    "[-o OPS_PER_SESSION]\n"
	    "  idle: -n CONNECTIONS [-P PARALLEL] [-N (no LOGIN)]\n"
	    "  pop3: -r PASSES\n");
	exit(1);
}

static unsigned
arg_uint(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v > UINT_MAX)
		usage();
	return (unsigned)v;
}

static void
parse_mode(struct opts *o, const char *m)
{
	if (strcmp(m, "mix") == 0)
		o->mode = MODE_MIX;
	else if (strcmp(m, "warm") == 0)
		o->mode = MODE_WARM;
	else if (strcmp(m, "idle") == 0)
		o->mode = MODE_IDLE;
	else if (strcmp(m, "pop3") == 0)
		o->mode = MODE_POP3;
	else
		usage();
}

static void
parse_args(struct opts *o, int argc, char **argv)
{
	int ch;

	*o = (struct opts){ .host = "127.0.0.1", .login = true, .clients = 1,
	    .seconds = 10, .conns = 1, .parallel = 64, .passes = 1,
	    .mix_ops = 100, .seed = 1 };
	if (argc < 2)
		usage();
	parse_mode(o, argv[1]);
	optind = 2;
	while ((ch = getopt(argc, argv, "H:p:u:w:Tc:d:W:s:n:P:Nr:o:")) != -1) {
		switch (ch) {
		case 'H': o->host = optarg; break;
		case 'p': o->port = arg_uint(optarg); break;
		case 'u': o->user = optarg; break;
		case 'w': o->pass = optarg; break;
		case 'T': o->tls = true; break;
		case 'c': o->clients = arg_uint(optarg); break;
		case 'd': o->seconds = arg_uint(optarg); break;
		case 'W': o->warmup = arg_uint(optarg); break;
		case 's': o->seed = arg_uint(optarg); break;
		case 'n': o->conns = arg_uint(optarg); break;
		case 'P': o->parallel = arg_uint(optarg); break;
		case 'N': o->login = false; break;
		case 'r': o->passes = arg_uint(optarg); break;
		case 'o': o->mix_ops = arg_uint(optarg); break;
		default: usage();
		}
	}
	if (o->port == 0 || o->port > 65535 || o->user == NULL ||
	    o->pass == NULL || o->clients == 0 || o->conns == 0 ||
	    o->parallel == 0 || o->passes == 0 || o->mix_ops > MIX_OPS_MAX)
		usage();
}

/* The message every APPEND sends: about 4 KB, CRLF line ends. */
static void
make_append_msg(struct bench *b)
{
	struct evbuffer *m = evbuffer_new();

	evbuffer_add_printf(m, "Date: Mon, 1 Jan 2024 12:00:00 +0000\r\n"
	    "From: Appender <appender@example.net>\r\n"
	    "To: bench@example.test\r\n"
	    "Subject: appended by imapload\r\n"
	    "Message-ID: <append@imapload.example.net>\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=us-ascii\r\n\r\n");
	for (int i = 0; i < 50; i++)
		evbuffer_add_printf(m, "line %02d of an appended message, "
		    "written to be about four kilobytes long in all.\r\n", i);
	b->append_len = evbuffer_get_length(m);
	b->append_msg = malloc(b->append_len);
	if (b->append_msg == NULL)
		exit(1);
	evbuffer_remove(m, b->append_msg, b->append_len);
	evbuffer_free(m);
}

static int
bench_init(struct bench *b)
{
	b->sa.sin_family = AF_INET;
	b->sa.sin_port = htons((uint16_t)b->o.port);
	if (inet_pton(AF_INET, b->o.host, &b->sa.sin_addr) != 1) {
		fprintf(stderr, "imapload: %s: not an IPv4 address\n",
		    b->o.host);
		return -1;
	}
	b->base = event_base_new();
	if (b->base == NULL)
		return -1;
	if (b->o.tls) {
		b->ctx = SSL_CTX_new(TLS_client_method());
		if (b->ctx == NULL)
			return -1;
		SSL_CTX_set_verify(b->ctx, SSL_VERIFY_NONE, NULL);
	}
	if (b->o.mode == MODE_MIX)
		b->ncl = b->o.clients;
	else if (b->o.mode == MODE_IDLE)
		b->ncl = b->o.conns;
	else
		b->ncl = 1;
	b->cl = calloc(b->ncl, sizeof(*b->cl));
	if (b->cl == NULL)
		return -1;
	for (unsigned i = 0; i < b->ncl; i++) {
		b->cl[i].b = b;
		b->cl[i].id = i;
		b->cl[i].rng = (b->o.seed + i) * 0x9E3779B97F4A7C15ULL | 1;
	}
	b->active = b->ncl;
	make_append_msg(b);
	return 0;
}

static void
bench_timers(struct bench *b)
{
	if (b->o.mode == MODE_IDLE) {
		b->stdin_ev = event_new(b->base, STDIN_FILENO,
		    EV_READ | EV_PERSIST, on_stdin, b);
		return;
	}
	struct timeval hard = { (time_t)GRACE_SECONDS, 0 };
	if (b->o.mode == MODE_MIX) {
		struct timeval warm = { (time_t)b->o.warmup, 0 };
		struct timeval stop = { (time_t)(b->o.warmup + b->o.seconds), 0 };
		b->measure_ev = evtimer_new(b->base, on_measure, b);
		evtimer_add(b->measure_ev, &warm);
		b->stop_ev = evtimer_new(b->base, on_stop, b);
		evtimer_add(b->stop_ev, &stop);
		hard.tv_sec += stop.tv_sec;
	} else {
		hard.tv_sec *= 10;	/* first opening, POP3 passes */
	}
	b->hard_ev = evtimer_new(b->base, on_hard_stop, b);
	evtimer_add(b->hard_ev, &hard);
}

int
main(int argc, char **argv)
{
	struct bench b = { 0 };

	signal(SIGPIPE, SIG_IGN);
	parse_args(&b.o, argc, argv);
	if (bench_init(&b) != 0) {
		fprintf(stderr, "imapload: set-up failed\n");
		return 1;
	}
	bench_timers(&b);
	b.t_start = now_ns();
	if (b.o.mode == MODE_IDLE) {
		b.active = 0;	/* idle counts settled connections instead */
		idle_launch_more(&b);
	} else {
		for (unsigned i = 0; i < b.ncl; i++)
			if (client_begin(&b.cl[i]) != 0)
				client_finish(&b.cl[i]);
	}
	event_base_dispatch(b.base);
	if (b.o.mode != MODE_IDLE)
		print_results(&b);
	fflush(stdout);
	return b.timed_out ? 2 : 0;
}
