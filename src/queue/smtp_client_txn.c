/* The SMTP client's mail transactions: checks before sending, MAIL, RCPT,
 * DATA or BDAT with the message streamed from its file, RSET, and the
 * result of every recipient.
 * Untrusted input: the remote server's replies to these commands. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "queue/smtp_client_int.h"

/* Longest path we send: RFC 5321 4.5.3.1.3 says 256 octets. */
#define SC_PATH_MAX	512

/* ---- messages ---- */

static char *
sc_strdup_or_null(const char *s)
{
	return s ? x_strdup(s) : NULL;
}

struct sc_message *
sc_message_copy(const struct smtp_client_message *m)
{
	struct sc_message *q = x_calloc(1, sizeof(*q));
	size_t n = m->nrcpts;
	q->m = *m;
	q->m.from = x_strdup(m->from);
	q->m.path = x_strdup(m->path);
	q->m.envid = sc_strdup_or_null(m->envid);
	q->rcpts = x_calloc(n, sizeof(*q->rcpts));
	for (size_t i = 0; i < n; i++) {
		q->rcpts[i] = m->rcpts[i];
		q->rcpts[i].addr = x_strdup(m->rcpts[i].addr ?
		    m->rcpts[i].addr : "");
		q->rcpts[i].orcpt = sc_strdup_or_null(m->rcpts[i].orcpt);
	}
	q->m.rcpts = q->rcpts;
	q->res = x_calloc(n, sizeof(*q->res));
	q->texts = x_calloc(n, sizeof(*q->texts));
	q->rstate = x_calloc(n, 1);
	return q;
}

void
sc_message_free(struct sc_message *q)
{
	for (size_t i = 0; i < q->m.nrcpts; i++) {
		free((char *)q->rcpts[i].addr);
		free((char *)q->rcpts[i].orcpt);
		free(q->texts[i]);
	}
	free((char *)q->m.from);
	free((char *)q->m.path);
	free((char *)q->m.envid);
	free(q->rcpts);
	free(q->res);
	free(q->texts);
	free(q->rstate);
	free(q);
}

/* ---- results ---- */

static const char *const sc_status_names[] = {
	[SMTP_CLIENT_DELIVERED] = "sent",
	[SMTP_CLIENT_TEMPFAIL] = "deferred",
	[SMTP_CLIENT_PERMFAIL] = "bounced",
};

/* An address for a log line: control characters (a recipient that
 * could not be sent may hold CR LF) become '?'. */
static const char *
sc_printable(const char *in, char *out, size_t n)
{
	size_t i = 0;
	for (; in[i] && i + 1 < n; i++)
		out[i] = (unsigned char)in[i] < 0x20 || in[i] == 0x7f ? '?' :
		    in[i];
	out[i] = '\0';
	return out;
}

static void
sc_rcpt_final(struct smtp_client *s, struct sc_message *q, size_t i,
    enum smtp_client_status st, unsigned code, const char *enhanced,
    const char *text, bool remote)
{
	struct smtp_client_rcpt_result *r = &q->res[i];
	char addr[SC_PATH_MAX + 1];
	static const char cls[] = { [SMTP_CLIENT_DELIVERED] = '2',
	    [SMTP_CLIENT_TEMPFAIL] = '4', [SMTP_CLIENT_PERMFAIL] = '5' };
	r->status = st;
	r->code = code;
	r->remote = remote;
	snprintf(r->enhanced, sizeof(r->enhanced), "%s",
	    enhanced[0] ? enhanced : "4.0.0");
	/* The status class follows the verdict (a 554 greeting only
	 * defers, a 2xx to DATA is no delivery). */
	r->enhanced[0] = cls[st];
	free(q->texts[i]);
	q->texts[i] = x_strdup(text);
	r->text = q->texts[i];
	q->rstate[i] = SC_RCPT_FINAL;
	log_info("smtp-client=%llu event=rcpt to=<%s> status=%s code=%u "
	    "dsn=%s host=%s ip=%s reply=\"%s\"", (unsigned long long)s->id,
	    sc_printable(q->rcpts[i].addr, addr, sizeof(addr)),
	    sc_status_names[st], code, r->enhanced, s->host,
	    sc_addr(s), text);
}

/* A reply decides recipient i. final: the reply ends the data (a 2xx
 * delivers); otherwise only 4xx and 5xx are expected here. */
static void
sc_rcpt_reply_final(struct smtp_client *s, struct sc_message *q, size_t i,
    const struct smtp_reply *r, bool final)
{
	enum smtp_client_status st = SMTP_CLIENT_TEMPFAIL;
	char enh[SMTP_ENHANCED_MAX];
	unsigned cls = smtp_reply_class(r);
	if (cls == 5)
		st = SMTP_CLIENT_PERMFAIL;
	else if (cls == 2 && final)
		st = SMTP_CLIENT_DELIVERED;
	smtp_reply_status(r, enh);
	char *text = smtp_reply_flat_text(r);
	sc_rcpt_final(s, q, i, st, r->code, enh, text, true);
	free(text);
}

/* Every recipient in one of the states of mask gets the reply. */
static void
sc_rcpts_reply(struct smtp_client *s, unsigned mask,
    const struct smtp_reply *r, bool final)
{
	struct sc_message *q = s->txn.msg;
	for (size_t i = 0; i < q->m.nrcpts; i++)
		if (mask & (1u << q->rstate[i]))
			sc_rcpt_reply_final(s, q, i, r, final);
}

/* Every recipient without a result gets the session's failure. */
static void
sc_rcpts_fail(struct smtp_client *s, struct sc_message *q)
{
	const struct sc_failure *f = &s->fail;
	for (size_t i = 0; i < q->m.nrcpts; i++)
		if (q->rstate[i] != SC_RCPT_FINAL)
			sc_rcpt_final(s, q, i, SMTP_CLIENT_TEMPFAIL,
			    f->set ? f->code : 0, f->set ? f->enhanced :
			    "4.4.2", f->set && f->text ? f->text :
			    "no final reply", f->set && f->remote);
}

/* Every recipient without a result gets this local verdict. */
static void
sc_rcpts_local(struct smtp_client *s, struct sc_message *q,
    enum smtp_client_status st, const char *enhanced, const char *text)
{
	for (size_t i = 0; i < q->m.nrcpts; i++)
		if (q->rstate[i] != SC_RCPT_FINAL)
			sc_rcpt_final(s, q, i, st, 0, enhanced, text, false);
}

/* Reports the head message and removes it from the queue. */
static void
sc_message_done(struct smtp_client *s)
{
	struct sc_message *q = s->head;
	struct smtp_client_result res;

	s->head = q->next;
	if (s->head == NULL)
		s->tail = NULL;
	if (s->txn_active && s->txn.msg == q) {
		if (s->txn.fd >= 0)
			close(s->txn.fd);
		s->txn.fd = -1;
		x_free(&s->txn.order);
		s->txn_active = false;
	}
	sc_rcpts_fail(s, q);
	if (s->conn && !s->fail.set)
		sc_enter_state(s, SC_READY);
	memset(&res, 0, sizeof(res));
	res.msg = &q->m;
	res.rcpts = q->res;
	res.attempted = q->attempted;
	res.needs_7bit = q->needs_7bit;
	res.peer_dsn = q->attempted && (s->ext.flags & SMTP_EXT(DSN));
	res.host = s->host;
	res.addr = sc_addr(s);
	s->in_callback++;
	if (q->fn)
		q->fn(s, &res, q->arg);
	s->in_callback--;
	sc_message_free(q);
}

/* The transaction is over while the connection goes on. */
static void
sc_txn_finish(struct smtp_client *s)
{
	sc_message_done(s);
	sc_next(s);
}

void
sc_txn_abort(struct smtp_client *s)
{
	sc_message_done(s);
}

void
sc_fail_queued(struct smtp_client *s)
{
	while (s->head) {
		s->head->attempted = false;
		sc_message_done(s);
	}
}

/* ---- checks before sending ---- */

/* A path we can put between < and > on a command line. */
static bool
sc_is_sendable_path(const char *a, bool *eight_bit)
{
	size_t n = strlen(a);
	if (n > SC_PATH_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)a[i];
		if (c < 0x20 || c == 0x7f || c == '<' || c == '>')
			return false;
		if (c >= 0x80)
			*eight_bit = true;
	}
	return true;
}

static bool
sc_is_upper_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

/* RFC 3461 4: xtext is "!" to "~" except "+" and "=", and "+XX". */
static bool
sc_is_xtext(const char *p, size_t max)
{
	size_t n = strlen(p);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '+') {
			if (i + 2 >= n || !sc_is_upper_hex(p[i + 1]) ||
			    !sc_is_upper_hex(p[i + 2]))
				return false;
			i += 2;
		} else if (c < '!' || c > '~' || c == '=')
			return false;
	}
	return true;
}

/* "addr-type;xtext" with an atom for the type. */
static bool
sc_is_orcpt(const char *p)
{
	const char *semi = strchr(p, ';');
	if (semi == NULL || semi == p || strlen(p) > 500)
		return false;
	for (const char *c = p; c < semi; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		    (*c >= '0' && *c <= '9') || *c == '-'))
			return false;
	return sc_is_xtext(semi + 1, 500);
}

static int
sc_txn_open(struct smtp_client *s, struct sc_txn *t)
{
	struct stat st;
	t->fd = open(t->msg->m.path, O_RDONLY | O_CLOEXEC);
	if (t->fd < 0 || fstat(t->fd, &st) < 0) {
		char text[300];
		snprintf(text, sizeof(text), "cannot read the message file: "
		    "%s", strerror(errno));
		sc_rcpts_local(s, t->msg, SMTP_CLIENT_TEMPFAIL, "4.3.0", text);
		return -1;
	}
	t->file_size = (uint64_t)st.st_size;
	t->size = t->msg->m.size ? t->msg->m.size : t->file_size;
	return 0;
}

/* Refuses what the peer cannot take (RFC 1870, 6152, 6531); also marks
 * recipients whose address cannot be sent. True when nothing is left to
 * send. */
static bool
sc_txn_refuse(struct smtp_client *s, struct sc_txn *t)
{
	struct sc_message *q = t->msg;
	char text[200];
	bool eight = q->m.smtputf8;
	if (!sc_is_sendable_path(q->m.from, &eight)) {
		sc_rcpts_local(s, q, SMTP_CLIENT_PERMFAIL, "5.1.7",
		    "the sender address cannot be sent");
		return true;
	}
	for (size_t i = 0; i < q->m.nrcpts; i++)
		if (!sc_is_sendable_path(q->rcpts[i].addr, &eight) ||
		    q->rcpts[i].addr[0] == '\0')
			sc_rcpt_final(s, q, i, SMTP_CLIENT_PERMFAIL, 0, "5.1.3",
			    "the recipient address cannot be sent", false);
	t->utf8 = eight;
	if ((s->ext.flags & SMTP_EXT(SIZE)) && s->ext.size_max > 0 &&
	    t->size > s->ext.size_max) {
		snprintf(text, sizeof(text), "message size %llu exceeds the "
		    "limit of %s, %llu", (unsigned long long)t->size, s->host,
		    (unsigned long long)s->ext.size_max);
		sc_rcpts_local(s, q, SMTP_CLIENT_PERMFAIL, "5.3.4", text);
	} else if (t->utf8 && !(s->ext.flags & SMTP_EXT(SMTPUTF8))) {
		snprintf(text, sizeof(text), "the message needs SMTPUTF8, "
		    "which %s does not offer", s->host);
		sc_rcpts_local(s, q, SMTP_CLIENT_PERMFAIL, "5.6.7", text);
	} else if (q->m.eightbit && !(s->ext.flags & SMTP_EXT(EIGHTBITMIME))) {
		snprintf(text, sizeof(text), "the message has 8-bit content, "
		    "and %s does not offer 8BITMIME", s->host);
		q->needs_7bit = true;
		sc_rcpts_local(s, q, SMTP_CLIENT_PERMFAIL, "5.6.3", text);
	}
	for (size_t i = 0; i < q->m.nrcpts; i++)
		if (q->rstate[i] != SC_RCPT_FINAL)
			return false;
	return true;
}

/* ---- commands ---- */

static void
sc_send_mail(struct smtp_client *s)
{
	const struct sc_txn *t = &s->txn;
	const struct smtp_client_message *m = &t->msg->m;
	struct buf b = BUF_INIT;
	buf_printf(&b, "MAIL FROM:<%s>", m->from);
	if (s->ext.flags & SMTP_EXT(SIZE))
		buf_printf(&b, " SIZE=%llu", (unsigned long long)t->size);
	if (m->eightbit)
		buf_puts(&b, " BODY=8BITMIME");
	if (t->utf8)
		buf_puts(&b, " SMTPUTF8");
	if (s->ext.flags & SMTP_EXT(DSN)) {
		if (m->ret != SMTP_RET_NONE)
			buf_puts(&b, m->ret == SMTP_RET_FULL ? " RET=FULL" :
			    " RET=HDRS");
		if (m->envid && sc_is_xtext(m->envid, 100))
			buf_printf(&b, " ENVID=%s", m->envid);
	}
	sc_cmd(s, "%s", buf_cstr(&b));
	buf_free(&b);
}

static void
sc_notify_param(struct buf *b, unsigned notify)
{
	static const struct { unsigned bit; const char *word; } w[] = {
		{ SMTP_NOTIFY_SUCCESS, "SUCCESS" },
		{ SMTP_NOTIFY_FAILURE, "FAILURE" },
		{ SMTP_NOTIFY_DELAY, "DELAY" },
	};
	if (notify & SMTP_NOTIFY_NEVER) {
		buf_puts(b, " NOTIFY=NEVER");
		return;
	}
	const char *sep = " NOTIFY=";
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		if (notify & w[i].bit) {
			buf_printf(b, "%s%s", sep, w[i].word);
			sep = ",";
		}
	}
}

static void
sc_send_rcpt(struct smtp_client *s, const struct smtp_client_rcpt *r)
{
	struct buf b = BUF_INIT;
	buf_printf(&b, "RCPT TO:<%s>", r->addr);
	if (s->ext.flags & SMTP_EXT(DSN)) {
		sc_notify_param(&b, r->notify);
		if (r->orcpt && sc_is_orcpt(r->orcpt))
			buf_printf(&b, " ORCPT=%s", r->orcpt);
	}
	sc_cmd(s, "%s", buf_cstr(&b));
	buf_free(&b);
}

/* Sends command k of the transaction: MAIL, the RCPTs, DATA. */
static void
sc_send_cmd(struct smtp_client *s, size_t k)
{
	const struct sc_txn *t = &s->txn;
	if (k == 0)
		sc_send_mail(s);
	else if (k <= t->norder)
		sc_send_rcpt(s, &t->msg->rcpts[t->order[k - 1]]);
	else
		sc_cmd(s, "DATA");
}

static void
sc_txn_wait(struct smtp_client *s)
{
	const struct sc_txn *t = &s->txn;
	if (t->use_data && t->answered == t->ncmd - 1)
		sc_wait(s, s->to.data_init, "reply to DATA");
	else
		sc_wait(s, s->to.command, t->answered == 0 ?
		    "reply to MAIL FROM" : "reply to RCPT TO");
}

/* With PIPELINING the whole group goes at once (RFC 2920 3.1: DATA
 * last); without it, one command per reply. */
static void
sc_txn_send_more(struct smtp_client *s)
{
	struct sc_txn *t = &s->txn;
	if (s->ext.flags & SMTP_EXT(PIPELINING)) {
		while (t->sent < t->ncmd)
			sc_send_cmd(s, t->sent++);
	} else if (t->sent == t->answered && t->sent < t->ncmd)
		sc_send_cmd(s, t->sent++);
	sc_txn_wait(s);
}

/* Starts the head message. False when it finished at once (reported). */
static bool
sc_txn_start(struct smtp_client *s)
{
	struct sc_txn *t = &s->txn;
	struct sc_message *q = s->head;
	memset(t, 0, sizeof(*t));
	t->fd = -1;
	t->msg = q;
	s->txn_active = true;
	q->attempted = true;
	if (sc_txn_open(s, t) < 0 || sc_txn_refuse(s, t)) {
		sc_message_done(s);
		return false;
	}
	t->order = x_calloc(q->m.nrcpts, sizeof(*t->order));
	for (size_t i = 0; i < q->m.nrcpts; i++)
		if (q->rstate[i] == SC_RCPT_PENDING)
			t->order[t->norder++] = i;
	t->use_data = !(s->ext.flags & SMTP_EXT(CHUNKING));
	t->ncmd = 1 + t->norder + (t->use_data ? 1 : 0);
	log_info("smtp-client=%llu event=message from=<%s> rcpts=%zu size=%llu "
	    "via=%s", (unsigned long long)s->id, q->m.from, t->norder,
	    (unsigned long long)t->size, t->use_data ? "DATA" : "BDAT");
	sc_enter_state(s, SC_MAIL);
	sc_txn_send_more(s);
	return true;
}

void
sc_next(struct smtp_client *s)
{
	while (s->state == SC_READY && !s->closing && s->conn &&
	    !s->fail.set && !conn_is_closing(s->conn)) {
		if (s->head == NULL) {
			if (s->ending) {
				sc_enter_state(s, SC_QUIT);
				sc_cmd(s, "QUIT");
				sc_wait(s, s->to.quit, "reply to QUIT");
			}
			return;
		}
		if (s->need_rset) {
			sc_enter_state(s, SC_RSET);
			sc_cmd(s, "RSET");
			sc_wait(s, s->to.command, "reply to RSET");
			return;
		}
		if (sc_txn_start(s))
			return;
	}
}

void
sc_rset_reply(struct smtp_client *s, const struct smtp_reply *r)
{
	if (smtp_reply_class(r) != 2) {
		sc_fail_reply(s, r, true);
		return;
	}
	s->need_rset = false;
	sc_enter_state(s, SC_READY);
	sc_next(s);
}

/* ---- message data ---- */

/* Reads the next chunk of the file into s->rbuf; its length, or -1 (the
 * session failed). *last: this is the end of the file (known from its
 * size, so that the end of data goes with the last octets). */
static ssize_t
sc_read_chunk(struct smtp_client *s, bool *last)
{
	struct sc_txn *t = &s->txn;
	ssize_t n = 0;
	if (t->file_read < t->file_size) {
		do
			n = read(t->fd, s->rbuf, SC_READ_CHUNK);
		while (n < 0 && errno == EINTR);
	}
	if (n < 0) {
		/* No end of data may follow a partial message. */
		sc_fail(s, 0, "4.3.0", "error reading the message file: %s",
		    strerror(errno));
		return -1;
	}
	t->file_read += (uint64_t)n;
	*last = n == 0 || t->file_read >= t->file_size;
	return n;
}

static void
sc_pump_data(struct smtp_client *s)
{
	struct sc_txn *t = &s->txn;
	while (!t->eof && conn_output_length(s->conn) < SC_OUTPUT_HIGH) {
		bool last;
		ssize_t n = sc_read_chunk(s, &last);
		if (n < 0)
			return;
		buf_reset(&s->out);
		smtp_encoder_feed(&t->enc, s->rbuf, (size_t)n, &s->out);
		if (last) {
			t->eof = true;
			smtp_encoder_finish(&t->enc, &s->out);
		}
		conn_write(s->conn, s->out.data, s->out.len);
	}
	if (t->eof) {
		sc_enter_state(s, SC_DATA_END);
		sc_wait(s, s->to.data_end, "reply to end of data");
	} else
		sc_wait(s, s->to.data_block, "message data to be sent");
}

/* RFC 3030: each chunk is "BDAT n" and n octets; without PIPELINING the
 * next one waits for the reply. */
static void
sc_pump_bdat(struct smtp_client *s)
{
	struct sc_txn *t = &s->txn;
	bool pipelining = s->ext.flags & SMTP_EXT(PIPELINING);
	while (!t->bdat_last_sent && !t->bdat_failed &&
	    (pipelining || t->bdat_out == 0) &&
	    conn_output_length(s->conn) < SC_OUTPUT_HIGH) {
		bool last;
		ssize_t n = sc_read_chunk(s, &last);
		if (n < 0)
			return;
		buf_reset(&s->out);
		smtp_encoder_feed(&t->enc, s->rbuf, (size_t)n, &s->out);
		if (last) {
			smtp_encoder_finish(&t->enc, &s->out);
			t->bdat_last_sent = true;
		}
		conn_printf(s->conn, "BDAT %zu%s\r\n", s->out.len,
		    t->bdat_last_sent ? " LAST" : "");
		conn_write(s->conn, s->out.data, s->out.len);
		t->bdat_out++;
	}
	if (t->bdat_last_sent)
		sc_wait(s, s->to.data_end, "reply to BDAT LAST");
	else
		sc_wait(s, s->to.data_block, "reply to BDAT");
}

void
sc_data_pump(struct smtp_client *s)
{
	if (s->state == SC_DATA)
		sc_pump_data(s);
	else if (s->state == SC_BDAT)
		sc_pump_bdat(s);
}

static void
sc_start_bdat(struct smtp_client *s)
{
	smtp_encoder_init(&s->txn.enc, false);
	sc_enter_state(s, SC_BDAT);
	sc_pump_bdat(s);
}

/* ---- replies ---- */

#define SC_MASK(st) (1u << (st))

static void
sc_mail_rcpt_reply(struct smtp_client *s, const struct smtp_reply *r,
    size_t k)
{
	struct sc_txn *t = &s->txn;
	bool ok = smtp_reply_class(r) == 2;
	if (k == 0) {
		t->mail_ok = ok;
		if (ok)
			s->need_rset = true;
		else
			sc_rcpts_reply(s, SC_MASK(SC_RCPT_PENDING), r, false);
		return;
	}
	size_t i = t->order[k - 1];
	if (!t->mail_ok || t->msg->rstate[i] != SC_RCPT_PENDING)
		return;		/* the MAIL reply decided already */
	if (ok) {
		t->msg->rstate[i] = SC_RCPT_ACCEPTED;
		t->accepted++;
	} else
		sc_rcpt_reply_final(s, t->msg, i, r, false);
}

static void
sc_data_cmd_reply(struct smtp_client *s, const struct smtp_reply *r)
{
	struct sc_txn *t = &s->txn;
	if (smtp_reply_class(r) == 3 && t->accepted == 0) {
		/* RFC 2920 3.1: a 354 with no recipient; end at once. */
		conn_puts(s->conn, ".\r\n");
		t->data_sink = true;
		sc_enter_state(s, SC_DATA_END);
		sc_wait(s, s->to.data_end, "reply to end of data");
	} else if (smtp_reply_class(r) == 3) {
		smtp_encoder_init(&t->enc, true);
		sc_enter_state(s, SC_DATA);
		sc_pump_data(s);
	} else {
		sc_rcpts_reply(s, SC_MASK(SC_RCPT_ACCEPTED), r, false);
		sc_txn_finish(s);
	}
}

/* After a reply to MAIL or RCPT: wait, send more, or go on. */
static void
sc_mail_continue(struct smtp_client *s)
{
	struct sc_txn *t = &s->txn;
	if (t->answered < t->sent) {
		sc_txn_wait(s);
		return;
	}
	bool next_is_data = t->use_data && t->sent == t->ncmd - 1;
	if (!t->mail_ok || (t->sent == t->ncmd && !t->use_data &&
	    t->accepted == 0) || (next_is_data && t->accepted == 0)) {
		sc_txn_finish(s);
		return;
	}
	if (t->sent < t->ncmd)
		sc_txn_send_more(s);
	else
		sc_start_bdat(s);
}

static void
sc_final_reply(struct smtp_client *s, const struct smtp_reply *r)
{
	if (!s->txn.data_sink)
		sc_rcpts_reply(s, SC_MASK(SC_RCPT_ACCEPTED), r, true);
	s->need_rset = false;
	sc_txn_finish(s);
}

static void
sc_bdat_reply(struct smtp_client *s, const struct smtp_reply *r)
{
	struct sc_txn *t = &s->txn;
	t->bdat_out--;
	if (smtp_reply_class(r) != 2 && !t->bdat_failed) {
		/* RFC 3030 2: no more chunks; RSET before the next. */
		t->bdat_failed = true;
		sc_rcpts_reply(s, SC_MASK(SC_RCPT_ACCEPTED), r, true);
	}
	if (t->bdat_out == 0 && (t->bdat_failed || t->bdat_last_sent)) {
		if (!t->bdat_failed) {
			sc_rcpts_reply(s, SC_MASK(SC_RCPT_ACCEPTED), r, true);
			s->need_rset = false;
		}
		sc_txn_finish(s);
		return;
	}
	if (t->bdat_failed)
		sc_wait(s, s->to.data_block, "reply to BDAT");
	else
		sc_pump_bdat(s);
}

/* A reply while the message was still going out: take it as the verdict,
 * and end the connection (the data stream was cut). */
static void
sc_early_reply(struct smtp_client *s, const struct smtp_reply *r)
{
	char *text = smtp_reply_flat_text(r);
	sc_rcpts_reply(s, SC_MASK(SC_RCPT_ACCEPTED), r, false);
	sc_fail(s, 0, "4.5.0", "reply from %s[%s] before the end of data: "
	    "%u %s", s->host, sc_addr(s), r->code, text);
	free(text);
	sc_message_done(s);
}

void
sc_txn_reply(struct smtp_client *s, const struct smtp_reply *r)
{
	struct sc_txn *t = &s->txn;
	switch (s->state) {
	case SC_MAIL: {
		size_t k = t->answered++;
		if (t->use_data && k == t->ncmd - 1)
			sc_data_cmd_reply(s, r);
		else {
			sc_mail_rcpt_reply(s, r, k);
			sc_mail_continue(s);
		}
		break;
	}
	case SC_DATA_END:
		sc_final_reply(s, r);
		break;
	case SC_BDAT:
		if (t->bdat_out > 0) {
			sc_bdat_reply(s, r);
			break;
		}
		/* FALLTHROUGH */
	default:
		sc_early_reply(s, r);
		break;
	}
}
