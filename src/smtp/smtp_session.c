/* SMTP sessions: greeting, the command table, the small commands.
 * Untrusted input: every command line a client sends (bounded by
 * SMTP_LINE_MAX_PARAMS in the connection's line reader). */
#include "smtp/smtp_session.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/util.h"
#include "core/xmalloc.h"
#include "net/tls.h"

struct smtp_command {
	const char *name;
	void (*fn)(struct smtp_session *s, const char *arg);
	unsigned states;	/* SMTP_IN() mask where it is allowed */
	const char *out_of_state; /* 503 reply text when not allowed */
	size_t max_line;	/* longest command line accepted */
};

static void smtp_cmd_helo(struct smtp_session *s, const char *arg);
static void smtp_cmd_ehlo(struct smtp_session *s, const char *arg);
static void smtp_cmd_rset(struct smtp_session *s, const char *arg);
static void smtp_cmd_noop(struct smtp_session *s, const char *arg);
static void smtp_cmd_quit(struct smtp_session *s, const char *arg);
static void smtp_cmd_vrfy(struct smtp_session *s, const char *arg);
static void smtp_cmd_expn(struct smtp_session *s, const char *arg);
static void smtp_cmd_help(struct smtp_session *s, const char *arg);
static void smtp_cmd_turn(struct smtp_session *s, const char *arg);
static void smtp_cmd_starttls(struct smtp_session *s, const char *arg);
static void smtp_cmd_not_available(struct smtp_session *s, const char *arg);

#define NEED_HELO	"503 5.5.1 Error: send HELO/EHLO first"
#define NEED_MAIL	"503 5.5.1 Error: need MAIL command"
#define NEED_RCPT	"503 5.5.1 Error: need RCPT command"
#define NESTED_MAIL	"503 5.5.1 Error: nested MAIL command"

static const struct smtp_command smtp_commands[] = {
	{ "HELO", smtp_cmd_helo, SMTP_ANY, NULL, SMTP_LINE_MAX },
	{ "EHLO", smtp_cmd_ehlo, SMTP_ANY, NULL, SMTP_LINE_MAX },
	{ "MAIL", smtp_cmd_mail, SMTP_IN(SMTP_ST_READY), NULL,
	  SMTP_LINE_MAX_PARAMS },
	{ "RCPT", smtp_cmd_rcpt, SMTP_IN(SMTP_ST_MAIL) | SMTP_IN(SMTP_ST_RCPT),
	  NEED_MAIL, SMTP_LINE_MAX_PARAMS },
	{ "DATA", smtp_cmd_data, SMTP_IN(SMTP_ST_RCPT), NULL, SMTP_LINE_MAX },
	/* BDAT checks its state itself: the chunk must be read anyway. */
	{ "BDAT", smtp_cmd_bdat, SMTP_ANY, NULL, SMTP_LINE_MAX },
	{ "RSET", smtp_cmd_rset, SMTP_ANY, NULL, SMTP_LINE_MAX },
	{ "NOOP", smtp_cmd_noop, SMTP_ANY, NULL, SMTP_LINE_MAX },
	{ "QUIT", smtp_cmd_quit, SMTP_ANY, NULL, SMTP_LINE_MAX },
	{ "VRFY", smtp_cmd_vrfy, SMTP_ANY, NULL, SMTP_LINE_MAX },
	{ "EXPN", smtp_cmd_expn, SMTP_ANY, NULL, SMTP_LINE_MAX },
	{ "HELP", smtp_cmd_help, SMTP_ANY, NULL, SMTP_LINE_MAX },
	{ "TURN", smtp_cmd_turn, SMTP_ANY, NULL, SMTP_LINE_MAX },
	{ "STARTTLS", smtp_cmd_starttls, SMTP_ANY, NULL, SMTP_LINE_MAX },
	{ "AUTH", smtp_cmd_auth, SMTP_IN(SMTP_ST_READY),
	  "503 5.5.1 Error: MAIL transaction in progress", SMTP_LINE_MAX_PARAMS },
	/* RFC 1985 5: not inside a mail transaction. */
	{ "ETRN", smtp_cmd_etrn, SMTP_IN(SMTP_ST_READY),
	  "503 5.5.1 Error: MAIL transaction in progress", SMTP_LINE_MAX },
	{ "ATRN", smtp_cmd_not_available, SMTP_ANY, NULL, SMTP_LINE_MAX },
};

static const char *const smtp_state_names[] = {
	[SMTP_ST_INIT] = "init",
	[SMTP_ST_READY] = "ready",
	[SMTP_ST_MAIL] = "mail",
	[SMTP_ST_RCPT] = "rcpt",
	[SMTP_ST_DATA] = "data",
	[SMTP_ST_BDAT] = "bdat",
	[SMTP_ST_AUTH] = "auth",
	[SMTP_ST_QUIT] = "quit",
};

const char *
smtp_state_name(enum smtp_state st)
{
	return smtp_state_names[st];
}

void
smtp_enter_state(struct smtp_session *s, enum smtp_state st)
{
	if (s->state == st)
		return;
	log_debug("session=%llu state=%s->%s", (unsigned long long)s->id,
	    smtp_state_name(s->state), smtp_state_name(st));
	bool was_data = s->state == SMTP_ST_DATA || s->state == SMTP_ST_BDAT;
	bool is_data = st == SMTP_ST_DATA || st == SMTP_ST_BDAT;
	s->state = st;
	if (s->conn && was_data != is_data)
		conn_set_timeout(s->conn, is_data ? s->cfg->data_timeout :
		    s->cfg->command_timeout);
}


void
smtp_reply(struct smtp_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	conn_vline(s->conn, fmt, ap);
	va_end(ap);
}

static void
smtp_close(struct smtp_session *s)
{
	smtp_enter_state(s, SMTP_ST_QUIT);
	conn_close(s->conn);
}

void
smtp_reply_error(struct smtp_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	conn_vline(s->conn, fmt, ap);
	va_end(ap);
	if (++s->errors >= s->cfg->max_errors) {
		log_info("session=%llu event=too-many-errors errors=%u",
		    (unsigned long long)s->id, s->errors);
		smtp_reply(s, "421 4.7.0 %s Error: too many errors",
		    s->cfg->hostname);
		smtp_close(s);
	}
}

void
smtp_session_release(struct smtp_session *s)
{
	smtp_txn_reset(s);
	smtp_auth_reset(s);
	x_free(&s->user);
	buf_free(&s->line);
	s->srv->sessions--;
	free(s);
}

/* ---- connection callbacks ---- */

static void
smtp_on_input(struct conn *c, void *ctx)
{
	(void)c;
	smtp_process(ctx);
}

static void
smtp_on_drained(struct conn *c, void *ctx)
{
	struct smtp_session *s = ctx;
	(void)c;
	/* Output was over the watermark: go on with buffered commands. */
	if (!s->busy && s->state != SMTP_ST_QUIT && conn_input_length(c) > 0)
		smtp_process(s);
}

static void
smtp_on_timeout(struct conn *c, void *ctx)
{
	struct smtp_session *s = ctx;
	(void)c;
	log_info("session=%llu event=timeout state=%s",
	    (unsigned long long)s->id, smtp_state_name(s->state));
	smtp_reply(s, "421 4.4.2 %s Error: timeout exceeded",
	    s->cfg->hostname);
	smtp_close(s);
}

static void
smtp_on_closed(struct conn *c, void *ctx)
{
	struct smtp_session *s = ctx;
	(void)c;
	log_info("session=%llu event=disconnect transactions=%u errors=%u",
	    (unsigned long long)s->id, s->transactions, s->errors);
	s->conn = NULL;
	smtp_auth_reset(s);	/* cancels a SASL step in flight */
	if (s->busy) {
		s->gone = true;	/* the pool job frees the session */
		return;
	}
	smtp_session_release(s);
}

static const struct conn_handler smtp_handler = {
	.on_input = smtp_on_input,
	.on_drained = smtp_on_drained,
	.on_timeout = smtp_on_timeout,
	.on_closed = smtp_on_closed,
};

void
smtp_accept(struct conn *c, enum conn_refusal refusal, void *arg)
{
	struct smtp_server *srv = arg;
	const struct config *cfg = srv->cfg;

	if (refusal != CONN_ACCEPTED) {
		conn_printf(c, "421 4.7.0 %s Error: too many connections%s\r\n",
		    cfg->hostname, refusal == CONN_REFUSED_PER_IP ?
		    " from your address" : "");
		conn_close(c);
		return;
	}
	struct smtp_session *s = x_calloc(1, sizeof(*s));
	s->conn = c;
	s->srv = srv;
	s->cfg = cfg;
	s->id = conn_id(c);
	s->state = SMTP_ST_INIT;
	s->submission = conn_service(c) == SVC_SUBMISSION ||
	    conn_service(c) == SVC_SUBMISSIONS;
	srv->sessions++;
	conn_set_handler(c, &smtp_handler, s);
	conn_set_timeout(c, cfg->command_timeout);
	smtp_reply(s, "220 %s ESMTP correo", cfg->hostname);
}

/* ---- dispatch ---- */

static const struct smtp_command *
smtp_find_command(const char *line, const char **arg)
{
	size_t n = strcspn(line, " ");
	for (size_t i = 0; i < sizeof(smtp_commands) / sizeof(smtp_commands[0]);
	    i++) {
		const struct smtp_command *cmd = &smtp_commands[i];
		if (strlen(cmd->name) == n &&
		    strncasecmp(cmd->name, line, n) == 0) {
			*arg = line + n;
			return cmd;
		}
	}
	return NULL;
}

/* Commands that move no mail: past [limits] max_junk_commands in a
 * session without a delivery, each also counts as an error (like
 * Postfix's smtpd_junk_command_limit), so a client cannot hold a session
 * forever with them. */
static bool
smtp_is_junk(const struct smtp_command *cmd)
{
	return cmd->fn == smtp_cmd_noop || cmd->fn == smtp_cmd_rset ||
	    cmd->fn == smtp_cmd_vrfy || cmd->fn == smtp_cmd_expn ||
	    cmd->fn == smtp_cmd_help || cmd->fn == smtp_cmd_etrn;
}

static void
smtp_dispatch(struct smtp_session *s, const char *line, size_t len)
{
	const char *arg;
	const struct smtp_command *cmd = smtp_find_command(line, &arg);

	if (len > (cmd ? cmd->max_line : SMTP_LINE_MAX)) {
		smtp_reply_error(s, "500 5.5.2 Error: line too long");
		return;
	}
	if (cmd == NULL || memchr(line, '\0', len) != NULL) {
		smtp_reply_error(s, "500 5.5.2 Error: command not recognized");
		return;
	}
	if (!(cmd->states & SMTP_IN(s->state))) {
		const char *why = cmd->out_of_state;
		if (s->state == SMTP_ST_INIT)
			why = NEED_HELO;
		else if (why == NULL && cmd->fn == smtp_cmd_mail)
			why = NESTED_MAIL;
		else if (why == NULL && cmd->fn == smtp_cmd_data)
			why = s->state == SMTP_ST_MAIL ? NEED_RCPT : NEED_MAIL;
		smtp_reply_error(s, "%s", why ? why :
		    "503 5.5.1 Error: bad sequence of commands");
		return;
	}
	if (smtp_is_junk(cmd) && ++s->junk > s->cfg->max_junk_commands &&
	    ++s->errors >= s->cfg->max_errors) {
		log_info("session=%llu event=too-many-commands junk=%u",
		    (unsigned long long)s->id, s->junk);
		smtp_reply(s, "421 4.7.0 %s Error: too many commands",
		    s->cfg->hostname);
		smtp_close(s);
		return;
	}
	cmd->fn(s, arg);
}

void
smtp_process(struct smtp_session *s)
{
	while (s->conn && !s->busy && s->state != SMTP_ST_QUIT &&
	    !conn_is_closing(s->conn)) {
		if (conn_output_length(s->conn) > SMTP_OUTPUT_HIGH)
			return;	/* on_drained brings us back */
		if (s->state == SMTP_ST_DATA) {
			if (conn_input_length(s->conn) == 0)
				return;
			smtp_data_input(s);
			continue;
		}
		if (s->state == SMTP_ST_BDAT) {
			if (conn_input_length(s->conn) == 0 &&
			    s->bdat_left > 0)
				return;
			smtp_bdat_input(s);
			continue;
		}
		bool auth = s->state == SMTP_ST_AUTH;
		switch (conn_read_line(s->conn, auth ? SMTP_AUTH_LINE_MAX :
		    SMTP_LINE_MAX_PARAMS, &s->line)) {
		case CONN_LINE_NONE:
			return;
		case CONN_LINE_TOO_LONG:
			if (auth) {
				smtp_auth_reset(s);
				smtp_enter_state(s, SMTP_ST_READY);
				smtp_reply_error(s, "500 5.5.6 Authentication "
				    "exchange line is too long");
				break;
			}
			smtp_reply_error(s, "500 5.5.2 Error: line too long");
			break;
		case CONN_LINE_OK:
			if (auth)
				smtp_auth_input(s, buf_cstr(&s->line));
			else
				smtp_dispatch(s, buf_cstr(&s->line),
				    s->line.len);
			explicit_bzero(s->line.data, s->line.len);
			break;
		}
	}
}

/* ---- the small commands ---- */

static void
smtp_greet(struct smtp_session *s, const char *arg, bool esmtp)
{
	if (*arg != ' ' || !smtp_valid_helo(arg + 1)) {
		smtp_reply_error(s, "501 5.5.4 Syntax: %s hostname",
		    esmtp ? "EHLO" : "HELO");
		return;
	}
	smtp_txn_reset(s);
	str_copy(s->helo, arg + 1, sizeof(s->helo));
	s->esmtp = esmtp;
	smtp_enter_state(s, SMTP_ST_READY);
}

static void
smtp_cmd_helo(struct smtp_session *s, const char *arg)
{
	smtp_greet(s, arg, false);
	if (s->state == SMTP_ST_READY)
		smtp_reply(s, "250 %s", s->cfg->hostname);
}

static void
smtp_cmd_ehlo(struct smtp_session *s, const char *arg)
{
	smtp_greet(s, arg, true);
	if (s->state != SMTP_ST_READY)
		return;
	smtp_reply(s, "250-%s Hello %s [%s]", s->cfg->hostname, s->helo,
	    conn_peer_addr(s->conn));
	smtp_reply(s, "250-PIPELINING");
	smtp_reply(s, "250-SIZE %llu",
	    (unsigned long long)s->cfg->max_message_size);
	smtp_reply(s, "250-8BITMIME");
	smtp_reply(s, "250-ENHANCEDSTATUSCODES");
	smtp_reply(s, "250-CHUNKING");
	smtp_reply(s, "250-SMTPUTF8");
	smtp_reply(s, "250-DSN");
	if (!s->submission)
		smtp_reply(s, "250-ETRN");
	if (tls_available() && !conn_is_tls(s->conn))
		smtp_reply(s, "250-STARTTLS");
	const char *mechs = smtp_auth_mechanisms(s);
	if (mechs)
		smtp_reply(s, "250-AUTH %s", mechs);
	smtp_reply(s, "250 HELP");
}

static bool
smtp_no_arg(struct smtp_session *s, const char *arg, const char *name)
{
	if (*arg == '\0')
		return true;
	smtp_reply_error(s, "501 5.5.4 Syntax: %s", name);
	return false;
}

static void
smtp_cmd_rset(struct smtp_session *s, const char *arg)
{
	if (!smtp_no_arg(s, arg, "RSET"))
		return;
	smtp_txn_reset(s);
	if (s->state != SMTP_ST_INIT)
		smtp_enter_state(s, SMTP_ST_READY);
	smtp_reply(s, "250 2.0.0 Ok");
}

static void
smtp_cmd_noop(struct smtp_session *s, const char *arg)
{
	(void)arg;	/* RFC 5321 4.1.1.9: a parameter is ignored */
	smtp_reply(s, "250 2.0.0 Ok");
}

static void
smtp_cmd_quit(struct smtp_session *s, const char *arg)
{
	if (!smtp_no_arg(s, arg, "QUIT"))
		return;
	smtp_reply(s, "221 2.0.0 Bye");
	smtp_close(s);
}

/* VRFY and EXPN never tell a stranger which users exist (RFC 5321 3.5.3:
 * 252 is the answer of a server that will not verify). */
static void
smtp_cmd_vrfy(struct smtp_session *s, const char *arg)
{
	if (*arg != ' ' || arg[1] == '\0') {
		smtp_reply_error(s, "501 5.5.4 Syntax: VRFY address");
		return;
	}
	smtp_reply(s, "252 2.0.0 Cannot VRFY user, but will accept message "
	    "and attempt delivery");
}

static void
smtp_cmd_expn(struct smtp_session *s, const char *arg)
{
	(void)arg;
	smtp_reply_error(s, "502 5.5.1 Error: EXPN not available");
}

static void
smtp_cmd_help(struct smtp_session *s, const char *arg)
{
	(void)arg;
	smtp_reply(s, "214-2.0.0 correo, RFC 5321. Commands:");
	smtp_reply(s, "214-2.0.0   HELO EHLO MAIL RCPT DATA BDAT RSET");
	smtp_reply(s, "214-2.0.0   NOOP QUIT VRFY EXPN HELP STARTTLS AUTH");
	if (!s->submission)
		smtp_reply(s, "214-2.0.0   ETRN");
	smtp_reply(s, "214 2.0.0 End of HELP info");
}

static void
smtp_cmd_turn(struct smtp_session *s, const char *arg)
{
	(void)arg;
	/* RFC 2645 2: TURN is insecure; servers refuse it. */
	smtp_reply_error(s, "502 5.5.1 Error: TURN not implemented");
}

/* RFC 3207. Also accepted before EHLO: some clients start with it. */
static void
smtp_cmd_starttls(struct smtp_session *s, const char *arg)
{
	if (!smtp_no_arg(s, arg, "STARTTLS"))
		return;
	if (conn_is_tls(s->conn)) {
		smtp_reply_error(s, "503 5.5.1 Error: TLS already active");
		return;
	}
	if (!tls_available()) {
		smtp_reply(s, "454 4.7.0 TLS not available");
		return;
	}
	smtp_reply(s, "220 2.0.0 Ready to start TLS");
	if (conn_start_tls(s->conn) < 0) {
		smtp_close(s);
		return;
	}
	/* RFC 3207 4.2: forget everything learned before TLS. */
	smtp_txn_reset(s);
	smtp_auth_reset(s);
	s->helo[0] = '\0';
	s->esmtp = false;
	smtp_enter_state(s, SMTP_ST_INIT);
}

static void
smtp_cmd_not_available(struct smtp_session *s, const char *arg)
{
	(void)arg;
	smtp_reply_error(s, "502 5.5.1 Error: command not implemented");
}

struct smtp_server *
smtp_server_new(const struct config *cfg, struct userdb *db)
{
	struct smtp_server *srv = x_calloc(1, sizeof(*srv));
	srv->cfg = cfg;
	srv->db = db;
	return srv;
}

void
smtp_server_set_config(struct smtp_server *srv, const struct config *cfg)
{
	srv->cfg = cfg;
}

void
smtp_server_free(struct smtp_server *srv)
{
	free(srv);
}
