/* ODMR sessions (RFC 2645): greeting, the command table of the initial
 * and authenticated states, the small commands. After a successful ATRN
 * the connection belongs to the queue (odmr_atrn.c).
 * Untrusted input: every command line a client sends (bounded by
 * ODMR_LINE_MAX in the connection's line reader). */
#include "odmr/odmr_session.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/sasl.h"
#include "core/util.h"
#include "core/xmalloc.h"
#include "net/tls.h"

struct odmr_command {
	const char *name;
	void (*fn)(struct odmr_session *s, const char *arg);
	bool needs_ehlo;
	/* Counts toward [limits] max_junk_commands: the commands a client
	 * can repeat without an error. */
	bool junk;
};

static void odmr_cmd_ehlo(struct odmr_session *s, const char *arg);
static void odmr_cmd_starttls(struct odmr_session *s, const char *arg);
static void odmr_cmd_rset(struct odmr_session *s, const char *arg);
static void odmr_cmd_noop(struct odmr_session *s, const char *arg);
static void odmr_cmd_quit(struct odmr_session *s, const char *arg);
static void odmr_cmd_not_implemented(struct odmr_session *s,
    const char *arg);

/* RFC 2645 5.1, 5.2: EHLO, AUTH, QUIT, then ATRN. The other commands of
 * SMTP are known and not implemented here (502); anything else is no
 * command at all (500, RFC 5321 4.2.4). Only ATRN moves mail, and a
 * session that moved some is over: every command a client can repeat
 * without an error is junk, ATRN too (a 453 or 450 moves nothing). */
static const struct odmr_command odmr_commands[] = {
	{ "EHLO", odmr_cmd_ehlo, false, true },
	{ "STARTTLS", odmr_cmd_starttls, false, true },
	{ "AUTH", odmr_cmd_auth, true, true },
	{ "ATRN", odmr_cmd_atrn, true, true },
	{ "RSET", odmr_cmd_rset, false, true },
	{ "NOOP", odmr_cmd_noop, false, true },
	{ "QUIT", odmr_cmd_quit, false, false },
	{ "HELO", odmr_cmd_not_implemented, false, false },
	{ "MAIL", odmr_cmd_not_implemented, false, false },
	{ "RCPT", odmr_cmd_not_implemented, false, false },
	{ "DATA", odmr_cmd_not_implemented, false, false },
	{ "BDAT", odmr_cmd_not_implemented, false, false },
	{ "VRFY", odmr_cmd_not_implemented, false, false },
	{ "EXPN", odmr_cmd_not_implemented, false, false },
	{ "HELP", odmr_cmd_not_implemented, false, false },
	{ "ETRN", odmr_cmd_not_implemented, false, false },
	{ "TURN", odmr_cmd_not_implemented, false, false },
};

static const char *const odmr_state_names[] = {
	[ODMR_ST_INIT] = "init",
	[ODMR_ST_READY] = "ready",
	[ODMR_ST_AUTH] = "auth",
	[ODMR_ST_ATRN] = "atrn",
	[ODMR_ST_QUIT] = "quit",
};

void
odmr_enter_state(struct odmr_session *s, enum odmr_state st)
{
	if (s->state != st)
		log_debug("session=%llu state=%s->%s",
		    (unsigned long long)s->id, odmr_state_names[s->state],
		    odmr_state_names[st]);
	s->state = st;
}

void
odmr_reply(struct odmr_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	conn_vline(s->conn, fmt, ap);
	va_end(ap);
}

static void
odmr_close(struct odmr_session *s)
{
	odmr_enter_state(s, ODMR_ST_QUIT);
	conn_close(s->conn);
}

void
odmr_reply_error(struct odmr_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	conn_vline(s->conn, fmt, ap);
	va_end(ap);
	if (++s->errors >= s->cfg->max_errors) {
		log_info("session=%llu event=too-many-errors errors=%u",
		    (unsigned long long)s->id, s->errors);
		odmr_reply(s, "421 4.7.0 %s Error: too many errors",
		    s->cfg->hostname);
		odmr_close(s);
	}
}

/* ---- dispatch ---- */

static const struct odmr_command *
odmr_find_command(const char *line, const char **arg)
{
	size_t n = strcspn(line, " ");
	for (size_t i = 0; i < sizeof(odmr_commands) / sizeof(odmr_commands[0]);
	    i++) {
		const struct odmr_command *cmd = &odmr_commands[i];
		if (strlen(cmd->name) == n &&
		    strncasecmp(cmd->name, line, n) == 0) {
			*arg = line + n;
			return cmd;
		}
	}
	return NULL;
}

static void
odmr_dispatch(struct odmr_session *s, const char *line, size_t len)
{
	const char *arg;
	const struct odmr_command *cmd = odmr_find_command(line, &arg);

	if (memchr(line, '\0', len) != NULL) {
		odmr_reply_error(s, "500 5.5.2 Error: command not recognized");
		return;
	}
	if (cmd == NULL) {
		odmr_reply_error(s, "500 5.5.2 Error: command not recognized");
		return;
	}
	if (cmd->needs_ehlo && s->state == ODMR_ST_INIT) {
		odmr_reply_error(s, "503 5.5.1 Error: send EHLO first");
		return;
	}
	/* As on the smtp listener: past the limit each one is also an
	 * error, so max_errors ends a session held open with NOOPs. */
	if (cmd->junk && ++s->junk > s->cfg->max_junk_commands &&
	    ++s->errors >= s->cfg->max_errors) {
		log_info("session=%llu event=too-many-commands junk=%u",
		    (unsigned long long)s->id, s->junk);
		odmr_reply(s, "421 4.7.0 %s Error: too many commands",
		    s->cfg->hostname);
		odmr_close(s);
		return;
	}
	cmd->fn(s, arg);
}

void
odmr_process(struct odmr_session *s)
{
	while (s->conn && !s->busy && s->state != ODMR_ST_QUIT &&
	    s->state != ODMR_ST_ATRN && !conn_is_closing(s->conn)) {
		bool auth = s->state == ODMR_ST_AUTH;
		switch (conn_read_line(s->conn, auth ? ODMR_AUTH_LINE_MAX :
		    ODMR_LINE_MAX, &s->line)) {
		case CONN_LINE_NONE:
			return;
		case CONN_LINE_TOO_LONG:
			if (auth) {
				odmr_auth_reset(s);
				odmr_enter_state(s, ODMR_ST_READY);
			}
			odmr_reply_error(s, "500 5.5.2 Error: line too long");
			break;
		case CONN_LINE_OK:
			if (auth)
				odmr_auth_input(s, buf_cstr(&s->line));
			else
				odmr_dispatch(s, buf_cstr(&s->line),
				    s->line.len);
			explicit_bzero(s->line.data, s->line.len);
			break;
		}
	}
}

/* ---- the small commands ---- */

/* A host name or address literal as EHLO takes it: printable ASCII, no
 * spaces. No SMTPUTF8 here (RFC 6531), and the name goes back in the
 * 250 reply: 8-bit octets are refused. */
static bool
odmr_valid_helo(const char *h)
{
	size_t n = strlen(h);
	if (n == 0 || n > 255)
		return false;
	for (; *h; h++)
		if ((unsigned char)*h <= ' ' || (unsigned char)*h >= 0x7f)
			return false;
	return true;
}

static void
odmr_cmd_ehlo(struct odmr_session *s, const char *arg)
{
	if (*arg != ' ' || !odmr_valid_helo(arg + 1)) {
		odmr_reply_error(s, "501 5.5.4 Syntax: EHLO hostname");
		return;
	}
	odmr_enter_state(s, ODMR_ST_READY);
	odmr_reply(s, "250-%s Hello %s [%s]", s->cfg->hostname, arg + 1,
	    conn_peer_addr(s->conn));
	odmr_reply(s, "250-ENHANCEDSTATUSCODES");
	if (tls_available() && !conn_is_tls(s->conn))
		odmr_reply(s, "250-STARTTLS");
	/* No password crosses in plaintext. */
	if (conn_is_tls(s->conn) && s->user == NULL)
		odmr_reply(s, "250-AUTH %s", sasl_mechanisms(true));
	odmr_reply(s, "250 ATRN");
}

static bool
odmr_no_arg(struct odmr_session *s, const char *arg, const char *name)
{
	if (*arg == '\0')
		return true;
	odmr_reply_error(s, "501 5.5.4 Syntax: %s", name);
	return false;
}

/* RFC 3207. */
static void
odmr_cmd_starttls(struct odmr_session *s, const char *arg)
{
	if (!odmr_no_arg(s, arg, "STARTTLS"))
		return;
	if (conn_is_tls(s->conn)) {
		odmr_reply_error(s, "503 5.5.1 Error: TLS already active");
		return;
	}
	if (!tls_available()) {
		odmr_reply(s, "454 4.7.0 TLS not available");
		return;
	}
	odmr_reply(s, "220 2.0.0 Ready to start TLS");
	if (conn_start_tls(s->conn) < 0) {
		odmr_close(s);
		return;
	}
	/* RFC 3207 4.2: forget everything learned before TLS. */
	odmr_enter_state(s, ODMR_ST_INIT);
}

static void
odmr_cmd_rset(struct odmr_session *s, const char *arg)
{
	if (odmr_no_arg(s, arg, "RSET"))
		odmr_reply(s, "250 2.0.0 Ok");
}

static void
odmr_cmd_noop(struct odmr_session *s, const char *arg)
{
	(void)arg;	/* RFC 5321 4.1.1.9: a parameter is ignored */
	odmr_reply(s, "250 2.0.0 Ok");
}

static void
odmr_cmd_quit(struct odmr_session *s, const char *arg)
{
	if (!odmr_no_arg(s, arg, "QUIT"))
		return;
	odmr_reply(s, "221 2.0.0 Bye");
	odmr_close(s);
}

static void
odmr_cmd_not_implemented(struct odmr_session *s, const char *arg)
{
	(void)arg;
	odmr_reply_error(s, "502 5.5.1 Error: command not implemented");
}

/* ---- connection callbacks ---- */

static void
odmr_session_free(struct odmr_session *s)
{
	odmr_auth_reset(s);
	odmr_atrn_reset(s);
	x_free(&s->user);
	buf_free(&s->line);
	free(s);
}

static void
odmr_on_input(struct conn *c, void *ctx)
{
	(void)c;
	odmr_process(ctx);
}

static void
odmr_on_timeout(struct conn *c, void *ctx)
{
	struct odmr_session *s = ctx;
	(void)c;
	log_info("session=%llu event=timeout state=%s",
	    (unsigned long long)s->id, odmr_state_names[s->state]);
	odmr_reply(s, "421 4.4.2 %s Error: timeout exceeded",
	    s->cfg->hostname);
	odmr_close(s);
}

static void
odmr_on_closed(struct conn *c, void *ctx)
{
	struct odmr_session *s = ctx;
	(void)c;
	log_info("session=%llu event=disconnect user=%s errors=%u",
	    (unsigned long long)s->id, s->user ? s->user : "-", s->errors);
	s->conn = NULL;
	odmr_session_free(s);	/* cancels a SASL step or a search */
}

static const struct conn_handler odmr_handler = {
	.on_input = odmr_on_input,
	.on_timeout = odmr_on_timeout,
	.on_closed = odmr_on_closed,
};

void
odmr_accept(struct conn *c, enum conn_refusal refusal, void *arg)
{
	struct odmr_server *srv = arg;
	const struct config *cfg = srv->cfg;

	if (refusal != CONN_ACCEPTED) {
		conn_printf(c, "421 4.7.0 %s Error: too many connections\r\n",
		    cfg->hostname);
		conn_close(c);
		return;
	}
	struct odmr_session *s = x_calloc(1, sizeof(*s));
	s->conn = c;
	s->srv = srv;
	s->cfg = cfg;
	s->id = conn_id(c);
	s->state = ODMR_ST_INIT;
	conn_set_handler(c, &odmr_handler, s);
	conn_set_timeout(c, cfg->command_timeout);
	log_info("session=%llu event=odmr-connect ip=%s",
	    (unsigned long long)s->id, conn_peer_addr(c));
	odmr_reply(s, "220 %s ESMTP correo ODMR service ready",
	    cfg->hostname);
}

/* The session's connection now belongs to the queue: the session goes,
 * quietly. */
void
odmr_session_detach(struct odmr_session *s)
{
	s->conn = NULL;
	odmr_session_free(s);
}

struct odmr_server *
odmr_server_new(const struct config *cfg, struct userdb *db)
{
	struct odmr_server *srv = x_calloc(1, sizeof(*srv));
	srv->cfg = cfg;
	srv->db = db;
	return srv;
}

void
odmr_server_set_config(struct odmr_server *srv, const struct config *cfg)
{
	srv->cfg = cfg;
}

void
odmr_server_free(struct odmr_server *srv)
{
	free(srv);
}
