/* SMTP mail transactions: MAIL, RCPT, DATA, BDAT, and the hand-off to
 * local delivery. Untrusted input: envelope arguments and message octets.
 * A 250 to the end of data is sent only after every mailbox holds the
 * message durably (DESIGN.md, durability). */
#include "smtp/smtp_session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/userdb.h"
#include "core/pool.h"
#include "core/util.h"
#include "core/xmalloc.h"
#include "queue/dsn.h"
#include "queue/journal.h"
#include "queue/scheduler.h"
#include "smtp/smtp_from.h"
#include "store/notify.h"

void
smtp_txn_reset(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	if (t == NULL)
		return;
	if (t->spool_open)
		spool_discard(&t->spool);
	strlist_free(&t->rcpts);
	strlist_free(&t->mailboxes);
	strlist_free(&t->remote);
	strlist_free(&t->remote_orcpt);
	x_free(&t->remote_notify);
	strlist_free(&t->success);
	strlist_free(&t->success_orcpt);
	buf_free(&t->headers);
	local_delivery_free(&t->delivery);
	free(t);
	s->txn = NULL;
}

/* Replies for the parse errors of MAIL (is_mail) and RCPT; param_error
 * is the parser's sentence for a bad parameter value, or NULL. */
static void
smtp_reply_parse_error(struct smtp_session *s, enum smtp_parse_status st,
    bool is_mail, const char *param_error)
{
	switch (st) {
	case SMTP_PARSE_OK:
		break;
	case SMTP_PARSE_SYNTAX:
		smtp_reply_error(s, "501 5.5.4 Syntax: %s", is_mail ?
		    "MAIL FROM:<address>" : "RCPT TO:<address>");
		break;
	case SMTP_PARSE_BAD_ADDRESS:
	case SMTP_PARSE_TOO_LONG:
	case SMTP_PARSE_NULL_PATH:
		smtp_reply_error(s, "501 %s Bad %s address syntax (%s)",
		    is_mail ? "5.1.7" : "5.1.3", is_mail ? "sender" :
		    "recipient", smtp_parse_status_text(st));
		break;
	case SMTP_PARSE_UNKNOWN_PARAM:
		smtp_reply_error(s, "555 5.5.4 Unsupported option");
		break;
	case SMTP_PARSE_BAD_PARAM:
		smtp_reply_error(s, "501 5.5.4 %s", param_error ?
		    param_error : "Bad parameter value");
		break;
	}
}

/* The lookup key of an address: "local@domain", domain in lowercase. */
static void
smtp_address_key(const struct smtp_address *a, char *out, size_t n)
{
	snprintf(out, n, "%s@%s", a->local, a->domain);
	str_lower(strrchr(out, '@'));
}

/* An authenticated user may send as its own address, a sub-address of it,
 * or an alias that reaches it; the null sender is allowed (DSNs, MDNs). */
static bool
smtp_sender_is_own(struct smtp_session *s, const struct smtp_address *from)
{
	struct strlist local = STRLIST_INIT, remote = STRLIST_INIT;
	char addr[SMTP_PATH_MAX + SMTP_DOMAIN_MAX + 2];

	if (from->text[0] == '\0')
		return true;
	if (from->is_literal || from->is_postmaster)
		return false;
	smtp_address_key(from, addr, sizeof(addr));
	bool own = userdb_resolve(s->srv->db, addr, &local, &remote) ==
	    RESOLVE_OK && strlist_contains(&local, s->user);
	strlist_free(&local);
	strlist_free(&remote);
	return own;
}

void
smtp_cmd_mail(struct smtp_session *s, const char *arg)
{
	struct smtp_mail_args m;
	enum smtp_parse_status st = smtp_parse_mail(arg, &m);

	if (st != SMTP_PARSE_OK) {
		smtp_reply_parse_error(s, st, true, m.param_error);
		return;
	}
	if (m.from.utf8 && !m.smtputf8) {
		smtp_reply_error(s, "553 5.6.7 Non-ASCII sender address "
		    "needs SMTPUTF8");
		return;
	}
	if (s->submission && s->user == NULL) {
		smtp_reply_error(s, conn_is_tls(s->conn) ?
		    "530 5.7.0 Authentication required" :
		    "530 5.7.0 Must issue a STARTTLS command first");
		return;
	}
	if (s->user && !smtp_sender_is_own(s, &m.from)) {
		smtp_reply_error(s, "553 5.7.1 <%s>: Sender address rejected: "
		    "not owned by user %s", m.from.text, s->user);
		return;
	}
	if (m.has_size && m.size > s->cfg->max_message_size) {
		smtp_reply(s, "552 5.3.4 Message size exceeds fixed maximum "
		    "message size");
		return;
	}
	s->txn = x_calloc(1, sizeof(*s->txn));
	s->txn->mail = m;
	smtp_enter_state(s, SMTP_ST_MAIL);
	smtp_reply(s, "250 2.1.0 Ok");
}

/* Adds an address for the outbound queue with its DSN parameters (orcpt
 * in stored form, or NULL); a repeated address keeps its first ones. */
static void
smtp_add_remote(struct smtp_txn *t, const char *addr, unsigned notify,
    const char *orcpt)
{
	if (strlist_contains(&t->remote, addr))
		return;
	strlist_add(&t->remote, addr);
	strlist_add(&t->remote_orcpt, orcpt ? orcpt : "");
	t->remote_notify = x_reallocarray(t->remote_notify, t->remote.n,
	    sizeof(*t->remote_notify));
	t->remote_notify[t->remote.n - 1] = notify;
}

/* The ORCPT stored form naming the recipient as the client sent it, or
 * NULL. RFC 3461 4.2 lets a relay add one: for the remote targets of an
 * alias it tells the sender which of its recipients a report is about. */
static char *
smtp_orcpt_of(const struct smtp_address *to)
{
	struct buf raw = BUF_INIT, stored = BUF_INIT;
	const char *err;
	char *r = NULL;

	if (!to->utf8) {
		buf_puts(&raw, "rfc822;");
		dsn_xtext_encode(to->text, strlen(to->text), &raw);
	} else {
		/* utf-8-addr-unitext, with "+XX" for what it excludes. */
		buf_puts(&raw, "utf-8;");
		for (const char *p = to->text; *p != '\0'; p++) {
			unsigned char c = (unsigned char)*p;
			if (c <= ' ' || c == '+' || c == '=' || c == '\\' ||
			    c == 0x7f)
				buf_printf(&raw, "+%02X", c);
			else
				buf_putc(&raw, (char)c);
		}
	}
	if (dsn_orcpt_parse(raw.data, raw.len, true, &stored, &err) == 0)
		r = x_strdup(buf_cstr(&stored));
	buf_free(&raw);
	buf_free(&stored);
	return r;
}

/* Resolves one recipient and adds its mailboxes, or its addresses for the
 * queue with their DSN parameters (orcpt stored, or NULL); replies when
 * refused. */
static bool
smtp_rcpt_accept(struct smtp_session *s, const struct smtp_rcpt_args *ra,
    const char *orcpt)
{
	struct strlist local = STRLIST_INIT, remote = STRLIST_INIT;
	char addr[SMTP_PATH_MAX + SMTP_DOMAIN_MAX + 2];
	const struct smtp_address *to = &ra->to;
	const char *shown = to->text;

	if (to->is_postmaster) {
		/* RFC 5321 4.5.1: <Postmaster> without a domain is ours. */
		snprintf(addr, sizeof(addr), "postmaster@%s",
		    s->cfg->hostname);
		shown = "Postmaster";
	} else if (to->is_literal) {
		smtp_reply_error(s, "554 5.7.1 <%s>: Relay access denied",
		    shown);
		return false;
	} else {
		smtp_address_key(to, addr, sizeof(addr));
	}
	enum userdb_resolve_result r = userdb_resolve(s->srv->db, addr,
	    &local, &remote);
	bool ok = false;
	switch (r) {
	case RESOLVE_NOT_LOCAL:
		/* Authenticated: relay through the queue. A domain held for
		 * ODMR (RFC 2645) is queued for anyone: we are its MX. */
		if (s->user || userdb_is_odmr_domain(s->srv->db, to->domain)) {
			smtp_add_remote(s->txn, to->text, ra->notify, orcpt);
			ok = true;
			break;
		}
		smtp_reply_error(s, "554 5.7.1 <%s>: Relay access denied",
		    shown);
		break;
	case RESOLVE_NO_SUCH_USER:
		smtp_reply_error(s, "550 5.1.1 <%s>: Recipient address "
		    "rejected: User unknown", shown);
		break;
	case RESOLVE_ERROR:
		smtp_reply(s, "451 4.3.0 <%s>: Temporary lookup failure",
		    shown);
		break;
	case RESOLVE_OK:
		/* Alias targets elsewhere are forwarded through the queue. */
		if (remote.n > 0) {
			char *own = orcpt ? NULL : smtp_orcpt_of(to);
			for (size_t i = 0; i < remote.n; i++)
				smtp_add_remote(s->txn, remote.v[i],
				    ra->notify, orcpt ? orcpt : own);
			free(own);
		}
		for (size_t i = 0; i < local.n; i++)
			strlist_add_unique(&s->txn->mailboxes, local.v[i]);
		if (local.n > 0 && (ra->notify & SMTP_NOTIFY_SUCCESS)) {
			strlist_add(&s->txn->success, to->text);
			strlist_add(&s->txn->success_orcpt,
			    orcpt ? orcpt : "");
		}
		ok = true;
		break;
	}
	strlist_free(&local);
	strlist_free(&remote);
	return ok;
}

void
smtp_cmd_rcpt(struct smtp_session *s, const char *arg)
{
	struct smtp_rcpt_args r;
	enum smtp_parse_status st = smtp_parse_rcpt(arg, &r);

	if (st != SMTP_PARSE_OK) {
		smtp_reply_parse_error(s, st, false, r.param_error);
		return;
	}
	if (s->txn->bdat) {
		/* RFC 3030: between chunks only BDAT, RSET, NOOP, QUIT. */
		smtp_reply_error(s, "503 5.5.1 Error: BDAT in progress");
		return;
	}
	if (r.to.utf8 && !s->txn->mail.smtputf8) {
		smtp_reply_error(s, "553 5.6.7 Non-ASCII recipient address "
		    "needs SMTPUTF8");
		return;
	}
	if (s->txn->rcpts.n >= s->cfg->max_recipients) {
		smtp_reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	/* Checked again now that SMTPUTF8 is known (RFC 6533 3). */
	struct buf orcpt = BUF_INIT;
	const char *err;
	if (r.orcpt[0] != '\0' && dsn_orcpt_parse(r.orcpt, strlen(r.orcpt),
	    s->txn->mail.smtputf8, &orcpt, &err) < 0) {
		smtp_reply_error(s, "501 5.5.4 %s", err);
		return;
	}
	bool ok = smtp_rcpt_accept(s, &r, orcpt.len ? buf_cstr(&orcpt) :
	    NULL);
	buf_free(&orcpt);
	if (!ok)
		return;
	strlist_add(&s->txn->rcpts, r.to.is_postmaster ? "Postmaster" :
	    r.to.text);
	smtp_enter_state(s, SMTP_ST_RCPT);
	smtp_reply(s, "250 2.1.5 Ok");
}

/* RFC 3848 protocol names for Received: (RFC 6531 3.7.3 for UTF8). */
static const char *
smtp_protocol_name(const struct smtp_session *s)
{
	static const char *const names[2][2][2] = {
		/* [utf8][tls][auth] */
		{ { "ESMTP", "ESMTPA" }, { "ESMTPS", "ESMTPSA" } },
		{ { "UTF8SMTP", "UTF8SMTPA" }, { "UTF8SMTPS", "UTF8SMTPSA" } },
	};
	if (!s->esmtp)
		return "SMTP";
	return names[s->txn->mail.smtputf8][conn_is_tls(s->conn)]
	    [s->user != NULL];
}

static void
smtp_write_trace(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	struct buf h = BUF_INIT;
	char date[64];
	const char *ip = conn_peer_addr(s->conn);

	format_rfc5322_date(time(NULL), date, sizeof(date));
	buf_printf(&h, "Return-Path: <%s>\r\n", t->mail.from.text);
	buf_printf(&h, "Received: from %s (%s%s])\r\n", s->helo,
	    strchr(ip, ':') ? "[IPv6:" : "[", ip);
	buf_printf(&h, "\tby %s (correo) with %s id %s", s->cfg->hostname,
	    smtp_protocol_name(s), t->spool.id);
	if (t->rcpts.n == 1)
		buf_printf(&h, "\r\n\tfor <%s>", t->rcpts.v[0]);
	buf_printf(&h, ";\r\n\t%s\r\n", date);
	spool_write(&t->spool, h.data, h.len);
	buf_free(&h);
}

/* The reply when the message could not be stored (err: the errno): a
 * full disk or quota is 452 4.3.1 (RFC 5321 4.5.3.1.10, RFC 3463), so the
 * client knows to come back later; anything else 451 4.3.0. */
static void
smtp_reply_storage_error(struct smtp_session *s, int err, const char *text)
{
	if (err == ENOSPC || err == EDQUOT)
		smtp_reply(s, "452 4.3.1 Error: insufficient system storage");
	else
		smtp_reply(s, "451 4.3.0 Error: %s", text);
}

/* Opens the spool file and writes the trace headers. */
static bool
smtp_start_message(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	if (spool_create_lazy(s->cfg->data_dir, &t->spool) < 0) {
		int e = errno;
		log_warn("session=%llu spool_create", (unsigned long long)s->id);
		smtp_reply_storage_error(s, e, "local error in processing");
		return false;
	}
	t->spool_open = true;
	smtp_data_init(&t->dec);
	smtp_write_trace(s);
	return true;
}

void
smtp_cmd_data(struct smtp_session *s, const char *arg)
{
	if (*arg != '\0') {
		smtp_reply_error(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	if (s->txn->bdat) {
		smtp_reply_error(s, "503 5.5.1 Error: BDAT in progress");
		return;
	}
	if (!smtp_start_message(s))
		return;
	smtp_enter_state(s, SMTP_ST_DATA);
	smtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static void
smtp_end_transaction(struct smtp_session *s)
{
	smtp_txn_reset(s);
	smtp_enter_state(s, SMTP_ST_READY);
}

static void
smtp_delivery_done(void *arg)
{
	struct smtp_session *s = arg;
	struct smtp_txn *t = s->txn;
	struct local_delivery *ld = &t->delivery;

	s->busy = false;
	/* IMAP sessions of these users (IDLE) learn of the new mail now. */
	for (size_t i = 0; i < ld->maildirs.n; i++)
		notify_changed(ld->maildirs.v[i]);
	int err = ld->commit_error ? ld->commit_error : ld->first_error;
	if ((ld->remote && err == 0) || (ld->notice && ld->notice->dest.queued))
		scheduler_kick();	/* queued: send it now */
	if (ld->notice)
		for (size_t i = 0; i < ld->notice->dest.maildirs.n; i++)
			notify_changed(ld->notice->dest.maildirs.v[i]);
	if (s->gone) {
		/* The client left before the reply: nothing was acknowledged,
		 * whatever reached the mailboxes stays there. */
		smtp_session_release(s);
		return;
	}
	if (err) {
		log_warnx("session=%llu qid=%s event=delivery-failed "
		    "delivered=%u/%zu error=\"%s\"", (unsigned long long)s->id,
		    t->spool.id, ld->delivered, ld->maildirs.n, strerror(err));
		smtp_reply_storage_error(s, err, "local delivery failed, try "
		    "again later");
	} else {
		s->transactions++;
		s->junk = 0;
		log_info("session=%llu qid=%s event=delivered from=<%s> "
		    "nrcpt=%zu mailboxes=%zu queued=%zu size=%llu",
		    (unsigned long long)s->id, t->spool.id, t->mail.from.text,
		    t->rcpts.n, ld->maildirs.n, t->remote.n,
		    (unsigned long long)t->spool.size);
		smtp_reply(s, "250 2.0.0 Ok: queued as %s", t->spool.id);
	}
	smtp_end_transaction(s);
	conn_resume(s->conn);
	smtp_process(s);
}

/* The queue envelope for the remote recipients of the transaction. */
static struct queue_envelope *
smtp_envelope(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	struct queue_envelope *env = x_calloc(1, sizeof(*env));

	str_copy(env->id, t->spool.id, sizeof(env->id));
	env->created = time(NULL);
	env->size = t->spool.size;
	env->from = x_strdup(t->mail.from.text);
	for (size_t i = 0; i < t->remote.n; i++)
		queue_envelope_add_rcpt(env, t->remote.v[i],
		    t->remote_notify[i], t->remote_orcpt.v[i]);
	env->ret = t->mail.ret == SMTP_RET_FULL ? DSN_RET_FULL :
	    t->mail.ret == SMTP_RET_HDRS ? DSN_RET_HDRS : DSN_RET_UNSET;
	env->envid = t->mail.envid[0] ? x_strdup(t->mail.envid) : NULL;
	env->smtputf8 = t->mail.smtputf8;
	env->eightbit = t->mail.body == SMTP_BODY_8BITMIME;
	env->user = s->user ? x_strdup(s->user) : NULL;
	return env;
}

/* The success notice (RFC 3461 NOTIFY=SUCCESS) for the local recipients
 * that asked for one, or NULL. */
static struct local_notice *
smtp_success_notice(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;

	if (t->success.n == 0 || t->mail.from.text[0] == '\0')
		return NULL;
	struct local_notice *n = x_calloc(1, sizeof(*n));
	if (!report_route(s->srv->db, s->cfg->data_dir, t->mail.from.text,
	    &n->dest)) {
		local_notice_free(n);
		return NULL;
	}
	time_t now = time(NULL);
	n->rcpts = x_calloc(t->success.n, sizeof(*n->rcpts));
	for (size_t i = 0; i < t->success.n; i++) {
		struct dsn_rcpt *r = &n->rcpts[n->n++];
		r->addr = x_strdup(t->success.v[i]);
		r->notify = DSN_NOTIFY_SUCCESS;
		r->orcpt = t->success_orcpt.v[i][0] ?
		    x_strdup(t->success_orcpt.v[i]) : NULL;
		r->action = DSN_ACTION_DELIVERED;
		str_copy(r->status, "2.0.0", sizeof(r->status));
		r->last_attempt = now;
	}
	n->rep = (struct dsn_report){
		.reporting_mta = x_strdup(s->cfg->hostname),
		.sender = x_strdup(t->mail.from.text),
		.envid = t->mail.envid[0] ? x_strdup(t->mail.envid) : NULL,
		.ret = t->mail.ret == SMTP_RET_FULL ? DSN_RET_FULL :
		    t->mail.ret == SMTP_RET_HDRS ? DSN_RET_HDRS :
		    DSN_RET_UNSET,
		.arrival = now,
		.queue_id = x_strdup(t->spool.id),
		.smtputf8 = t->mail.smtputf8,
		.rcpts = n->rcpts,
		.nrcpts = n->n,
	};
	return n;
}

/* Worker thread. The loop leaves s->txn alone while s->busy. */
static void
smtp_delivery_work(void *arg)
{
	struct smtp_session *s = arg;
	local_delivery_run(&s->txn->delivery);
}

/* True when the header section hdr[0..n) has a field named name. */
static bool
smtp_has_field(const char *hdr, size_t n, const char *name)
{
	size_t len = strlen(name);
	for (size_t i = 0; i + len <= n; i++) {
		bool line_start = i == 0 || hdr[i - 1] == '\n';
		if (line_start && strncasecmp(hdr + i, name, len) == 0)
			return true;
	}
	return false;
}

/* Writes the held header section (its first hdr_len octets are the fields)
 * with a Message-ID: and a Date: added when missing (RFC 6409 8.2, 8.3),
 * then whatever followed it. */
static void
smtp_flush_headers(struct smtp_session *s, size_t hdr_len)
{
	struct smtp_txn *t = s->txn;
	struct buf add = BUF_INIT;
	char date[64];

	spool_write(&t->spool, t->headers.data, hdr_len);
	if (!smtp_has_field(t->headers.data, hdr_len, "Message-ID:"))
		buf_printf(&add, "Message-ID: <%s.%lld@%s>\r\n", t->spool.id,
		    (long long)time(NULL), s->cfg->hostname);
	if (!smtp_has_field(t->headers.data, hdr_len, "Date:")) {
		format_rfc5322_date(time(NULL), date, sizeof(date));
		buf_printf(&add, "Date: %s\r\n", date);
	}
	spool_write(&t->spool, add.data, add.len);
	spool_write(&t->spool, t->headers.data + hdr_len,
	    t->headers.len - hdr_len);
	buf_free(&add);
	t->headers.len = hdr_len;	/* kept for the From: check */
	t->headers_done = true;
}

/* Message octets to the spool. An authenticated user's header section is
 * held back (up to SMTP_HEADERS_MAX) for the From: check and the fields
 * RFC 6409 lets a submission server add. */
static void
smtp_message_write(struct smtp_session *s, const char *p, size_t n)
{
	struct smtp_txn *t = s->txn;

	if (s->user == NULL || t->headers_done) {
		spool_write(&t->spool, p, n);
		return;
	}
	size_t old = t->headers.len;
	size_t take = n < SMTP_HEADERS_MAX - old ? n : SMTP_HEADERS_MAX - old;
	buf_append(&t->headers, p, take);
	const char *h = t->headers.data;
	if (t->headers.len >= 2 && h[0] == '\r' && h[1] == '\n') {
		smtp_flush_headers(s, 0);	/* no header fields at all */
	} else {
		size_t from = old > 3 ? old - 3 : 0;
		const char *end = memmem(h + from, t->headers.len - from,
		    "\r\n\r\n", 4);
		if (end)
			smtp_flush_headers(s, (size_t)(end - h) + 2);
		else if (t->headers.len >= SMTP_HEADERS_MAX)
			smtp_flush_headers(s, t->headers.len);
	}
	if (take < n)
		spool_write(&t->spool, p + take, n - take);
}

/* The end of the message came inside the header section. */
static void
smtp_message_end(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	if (s->user == NULL || t->headers_done)
		return;
	size_t n = t->headers.len;
	bool crlf = n >= 2 && t->headers.data[n - 2] == '\r' &&
	    t->headers.data[n - 1] == '\n';
	if (crlf) {
		smtp_flush_headers(s, n);
		return;
	}
	spool_write(&t->spool, t->headers.data, n);
	t->headers_done = true;
}

/* The From: of a submitted message names the user's own addresses only.
 * A message without From: passes (RFC 6409 8.1 lets us leave it). */
static bool
smtp_from_is_own(struct smtp_session *s)
{
	struct strlist from = STRLIST_INIT;
	struct smtp_address a;
	struct smtp_txn *t = s->txn;
	int fields = smtp_from_addresses(t->headers.data ? t->headers.data :
	    "", t->headers.len, &from);
	bool own = fields == 0 || from.n > 0;

	for (size_t i = 0; own && i < from.n; i++)
		own = smtp_parse_mailbox(from.v[i], &a) == SMTP_PARSE_OK &&
		    a.text[0] != '\0' && smtp_sender_is_own(s, &a);
	strlist_free(&from);
	return own;
}

/* The whole message has arrived (DATA end or BDAT LAST). */
static void
smtp_finish_message(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;

	if (!t->too_big && !smtp_data_is_tainted(&t->dec))
		smtp_message_end(s);
	if (t->too_big) {
		smtp_reply(s, "552 5.3.4 Error: message file too big");
	} else if (smtp_data_is_tainted(&t->dec)) {
		log_info("session=%llu event=refused reason=%s",
		    (unsigned long long)s->id, t->dec.nul ? "nul" :
		    t->dec.bare_lf ? "bare-lf" : "bare-cr");
		smtp_reply_error(s, "550 5.6.0 Error: message contains bare "
		    "CR, bare LF or NUL; refused");
	} else if (s->user && !smtp_from_is_own(s)) {
		log_info("session=%llu event=refused reason=from-not-owned "
		    "user=%s", (unsigned long long)s->id, s->user);
		smtp_reply_error(s, "553 5.7.1 From: header address not "
		    "owned by user %s", s->user);
	} else if (spool_flush(&t->spool) < 0) {
		errno = t->spool.error;
		log_warn("session=%llu qid=%s spool write",
		    (unsigned long long)s->id, t->spool.id);
		smtp_reply_storage_error(s, t->spool.error,
		    "local error in processing");
	} else {
		for (size_t i = 0; i < t->mailboxes.n; i++) {
			char *path = userdb_maildir_path(s->cfg->data_dir,
			    t->mailboxes.v[i]);
			strlist_add(&t->delivery.maildirs, path);
			free(path);
		}
		t->delivery.spool = &t->spool;
		t->delivery.data_dir = s->cfg->data_dir;
		if (t->remote.n > 0)
			t->delivery.remote = smtp_envelope(s);
		t->delivery.notice = smtp_success_notice(s);
		s->busy = true;
		conn_pause(s->conn);
		smtp_enter_state(s, SMTP_ST_READY);
		if (t->delivery.remote == NULL && t->delivery.notice == NULL &&
		    journal_accepts(t->spool.size))
			journal_submit(&t->delivery, smtp_delivery_done, s);
		else
			pool_submit(smtp_delivery_work, smtp_delivery_done, s);
		return;
	}
	smtp_end_transaction(s);
}

void
smtp_data_input(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	char in[SMTP_DATA_CHUNK], out[SMTP_DATA_CHUNK + 2];
	size_t n, outlen, used;

	n = conn_peek(s->conn, in, sizeof(in));
	enum smtp_data_status st = smtp_data_feed(&t->dec, in, n, out,
	    &outlen, &used);
	conn_drain(s->conn, used);
	if (t->dec.size > s->cfg->max_message_size)
		t->too_big = true;
	if (!t->too_big && !smtp_data_is_tainted(&t->dec))
		smtp_message_write(s, out, outlen);
	if (st == SMTP_DATA_END)
		smtp_finish_message(s);
}

/* BDAT size [LAST] (RFC 3030). */
void
smtp_cmd_bdat(struct smtp_session *s, const char *arg)
{
	char num[32];
	uint64_t size;
	const char *p = arg, *sp;

	if (*p++ != ' ')
		goto syntax;
	sp = strchr(p, ' ');
	size_t n = sp ? (size_t)(sp - p) : strlen(p);
	if (n == 0 || n >= sizeof(num))
		goto syntax;
	memcpy(num, p, n);
	num[n] = '\0';
	if (parse_uint(num, UINT64_MAX, &size) < 0)
		goto syntax;
	if (sp && !str_iequal(sp + 1, "LAST"))
		goto syntax;

	s->bdat_size = s->bdat_left = size;
	s->bdat_last = sp != NULL;
	s->bdat_error = NULL;
	s->bdat_return = s->state;
	if (s->state == SMTP_ST_INIT)
		s->bdat_error = "503 5.5.1 Error: send HELO/EHLO first";
	else if (s->state == SMTP_ST_READY)
		s->bdat_error = "503 5.5.1 Error: need MAIL command";
	else if (s->state == SMTP_ST_MAIL)
		s->bdat_error = "503 5.5.1 Error: need RCPT command";
	else if (!s->txn->bdat) {
		if (!smtp_start_message(s)) {
			/* Reply given; still skip the chunk, quietly. */
			s->bdat_error = "";
			smtp_txn_reset(s);
			s->bdat_return = SMTP_ST_READY;
		} else {
			s->txn->bdat = true;
		}
	}
	/* Written so that a huge announced size cannot wrap the sum. */
	if (s->bdat_error == NULL && (size > s->cfg->max_message_size ||
	    s->txn->dec.size > s->cfg->max_message_size - size))
		s->txn->too_big = true;
	smtp_enter_state(s, SMTP_ST_BDAT);
	return;
syntax:
	smtp_reply_error(s, "501 5.5.4 Syntax: BDAT size [LAST]");
}

static void
smtp_bdat_chunk_done(struct smtp_session *s)
{
	if (s->bdat_error) {
		smtp_enter_state(s, s->bdat_return);
		if (*s->bdat_error)
			smtp_reply_error(s, "%s", s->bdat_error);
		return;
	}
	struct smtp_txn *t = s->txn;
	if (t->too_big) {
		/* RFC 3030 2: after a failed chunk the client sends no more
		 * BDAT; the transaction is over. */
		smtp_reply(s, "552 5.3.4 Error: message file too big");
		smtp_end_transaction(s);
		return;
	}
	if (!s->bdat_last) {
		smtp_enter_state(s, SMTP_ST_RCPT);
		smtp_reply(s, "250 2.0.0 %llu octets received",
		    (unsigned long long)s->bdat_size);
		return;
	}
	smtp_data_bdat_finish(&t->dec);
	smtp_finish_message(s);
}

void
smtp_bdat_input(struct smtp_session *s)
{
	char in[SMTP_DATA_CHUNK];

	if (s->bdat_left > 0) {
		size_t want = s->bdat_left < sizeof(in) ?
		    (size_t)s->bdat_left : sizeof(in);
		size_t got = conn_read(s->conn, in, want);
		s->bdat_left -= got;
		if (s->bdat_error == NULL && !s->txn->too_big) {
			smtp_data_bdat_scan(&s->txn->dec, in, got);
			if (s->txn->dec.size > s->cfg->max_message_size)
				s->txn->too_big = true;
		}
		if (s->bdat_error == NULL && !s->txn->too_big) {
			if (!smtp_data_is_tainted(&s->txn->dec))
				smtp_message_write(s, in, got);
		}
	}
	if (s->bdat_left == 0)
		smtp_bdat_chunk_done(s);
}
