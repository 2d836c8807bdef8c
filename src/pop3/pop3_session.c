/* POP3 sessions: greeting, AUTHORIZATION (USER/PASS, AUTH, STLS, CAPA),
 * dispatch. Untrusted input: every command and SASL response line. */
#include "pop3/pop3_session.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_async.h"
#include "auth/sasl.h"
#include "auth/throttle.h"
#include "core/xmalloc.h"
#include "net/tls.h"
#include "pop3/pop3_parse.h"

static const char *const pop3_state_names[] = {
	[POP3_ST_AUTHORIZATION] = "authorization",
	[POP3_ST_SASL] = "sasl",
	[POP3_ST_TRANSACTION] = "transaction",
	[POP3_ST_SENDING] = "sending",
	[POP3_ST_QUIT] = "quit",
};

void
pop3_enter_state(struct pop3_session *s, enum pop3_state st)
{
	if (s->state != st)
		log_debug("session=%llu state=%s->%s",
		    (unsigned long long)s->id, pop3_state_names[s->state],
		    pop3_state_names[st]);
	s->state = st;
}


void
pop3_reply(struct pop3_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	conn_vline(s->conn, fmt, ap);
	va_end(ap);
}

void
pop3_close(struct pop3_session *s)
{
	pop3_enter_state(s, POP3_ST_QUIT);
	conn_close(s->conn);
}

void
pop3_reply_error(struct pop3_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	conn_vline(s->conn, fmt, ap);
	va_end(ap);
	if (++s->errors >= s->cfg->max_errors) {
		pop3_reply(s, "-ERR Too many bad commands, closing");
		pop3_close(s);
	}
}

/* ---- authentication ---- */

static void
pop3_sasl_reset(struct pop3_session *s)
{
	if (auth_session_reset(&s->auth))
		s->busy = false;	/* the step in flight was cancelled */
}

static void
pop3_auth_failed(struct pop3_session *s, bool malformed)
{
	auth_session_failed(&s->auth, s->id, conn_peer_addr(s->conn),
	    malformed);
	pop3_enter_state(s, POP3_ST_AUTHORIZATION);
	if (malformed)
		pop3_reply_error(s, "-ERR [AUTH] Invalid base64 data");
	else
		pop3_reply_error(s, "-ERR [AUTH] Authentication failed");
}

static void
pop3_auth_succeeded(struct pop3_session *s)
{
	char *user = auth_session_succeeded(&s->auth, s->id,
	    conn_peer_addr(s->conn));

	pop3_enter_state(s, POP3_ST_AUTHORIZATION);
	if (user == NULL) {
		pop3_reply(s, "-ERR [SYS/TEMP] Temporary authentication "
		    "failure");
		return;
	}
	if (!pop3_lock_take(s->srv, user)) {
		free(user);
		pop3_reply(s, "-ERR [IN-USE] Mailbox is locked by another "
		    "POP3 session");
		return;
	}
	s->user = user;
	s->locked = true;
	pop3_open_maildrop(s);
}

static void
pop3_auth_step_done(void *ctx, enum sasl_result r, char *out)
{
	struct pop3_session *s = ctx;

	auth_session_step_done(&s->auth);
	s->busy = false;
	if (r == SASL_CONTINUE || (r == SASL_OK && out && out[0])) {
		/* RFC 5034 has no final-data step: SCRAM's server-final
		 * comes as a challenge answered by an empty line. */
		s->auth.final = r == SASL_OK;
		pop3_reply(s, "+ %s", out ? out : "");
		pop3_enter_state(s, POP3_ST_SASL);
	} else if (r == SASL_OK)
		pop3_auth_succeeded(s);
	else
		pop3_auth_failed(s, r == SASL_MALFORMED);
	free(out);
	if (s->state == POP3_ST_QUIT || s->busy)
		return;
	conn_resume(s->conn);
	pop3_process(s);
}

static void
pop3_auth_step(struct pop3_session *s, char *in)
{
	s->busy = true;
	conn_pause(s->conn);
	auth_session_step(&s->auth, conn_peer_addr(s->conn), in,
	    pop3_auth_step_done, s);
}

/* No password crosses a connection without TLS. */
static bool
pop3_tls_required(struct pop3_session *s)
{
	if (conn_is_tls(s->conn))
		return false;
	pop3_reply_error(s, "-ERR [AUTH] Plaintext authentication disallowed "
	    "on non-secure connections: use STLS");
	return true;
}

static bool
pop3_start_sasl(struct pop3_session *s, const char *mech)
{
	unsigned char cb[32];
	if (throttle_blocked(conn_peer_addr(s->conn), NULL)) {
		pop3_reply(s, "-ERR [SYS/TEMP] Temporary authentication "
		    "failure");
		return false;
	}
	bool have_cb = conn_tls_exporter(s->conn, cb) == 0;
	if (!auth_session_start(&s->auth, s->srv->db, mech,
	    have_cb ? cb : NULL)) {
		pop3_reply_error(s, "-ERR Unsupported authentication mechanism");
		return false;
	}
	return true;
}

static void
pop3_cmd_user(struct pop3_session *s, const char *args)
{
	if (pop3_tls_required(s))
		return;
	if (*args == '\0') {
		pop3_reply_error(s, "-ERR Syntax: USER name");
		return;
	}
	x_free(&s->user_arg);
	s->user_arg = x_strdup(args);
	pop3_reply(s, "+OK");
}

static void
pop3_cmd_pass(struct pop3_session *s, const char *args)
{
	if (pop3_tls_required(s))
		return;
	if (s->user_arg == NULL) {
		pop3_reply_error(s, "-ERR USER first");
		return;
	}
	char *resp = auth_plain_response(s->user_arg, args);
	x_free(&s->user_arg);
	if (!pop3_start_sasl(s, "PLAIN")) {
		explicit_bzero(resp, strlen(resp));
		free(resp);
		return;
	}
	pop3_auth_step(s, resp);
}

static void
pop3_cmd_auth(struct pop3_session *s, const char *args)
{
	char mech[64];
	if (*args == '\0') {
		/* RFC 1734 style listing, which Outlook asks for. */
		pop3_reply(s, "+OK");
		if (conn_is_tls(s->conn)) {
			char list[256];
			snprintf(list, sizeof(list), "%s", sasl_mechanisms(true));
			for (char *save, *m = strtok_r(list, " ", &save); m;
			    m = strtok_r(NULL, " ", &save))
				pop3_reply(s, "%s", m);
		}
		pop3_reply(s, ".");
		return;
	}
	if (pop3_tls_required(s))
		return;
	size_t n = strcspn(args, " ");
	if (n >= sizeof(mech)) {
		pop3_reply_error(s, "-ERR Unsupported authentication mechanism");
		return;
	}
	memcpy(mech, args, n);
	mech[n] = '\0';
	const char *ir = args[n] == ' ' ? args + n + 1 : "";
	if (!sasl_mechanism_offered(mech, true)) {
		pop3_reply_error(s, "-ERR Unsupported authentication mechanism");
		return;
	}
	if (!pop3_start_sasl(s, mech))
		return;
	x_free(&s->user_arg);
	pop3_enter_state(s, POP3_ST_SASL);
	pop3_auth_step(s, x_strdup(ir));
}

static void
pop3_sasl_input(struct pop3_session *s, const char *line)
{
	if (strcmp(line, "*") == 0) {
		pop3_sasl_reset(s);
		pop3_enter_state(s, POP3_ST_AUTHORIZATION);
		pop3_reply_error(s, "-ERR Authentication aborted");
		return;
	}
	if (s->auth.final) {
		s->auth.final = false;
		if (line[0] != '\0') {
			pop3_auth_failed(s, true);
			return;
		}
		pop3_auth_succeeded(s);
		return;
	}
	pop3_auth_step(s, x_strdup(line));
}

static void
pop3_cmd_capa(struct pop3_session *s)
{
	bool tls = conn_is_tls(s->conn);
	pop3_reply(s, "+OK Capability list follows");
	pop3_reply(s, "TOP");
	pop3_reply(s, "UIDL");
	pop3_reply(s, "RESP-CODES");
	pop3_reply(s, "AUTH-RESP-CODE");
	pop3_reply(s, "PIPELINING");
	pop3_reply(s, "EXPIRE NEVER");
	pop3_reply(s, "LOGIN-DELAY 0");
	pop3_reply(s, "UTF8");
	pop3_reply(s, "IMPLEMENTATION correo");
	if (tls && s->state == POP3_ST_AUTHORIZATION) {
		pop3_reply(s, "USER");
		pop3_reply(s, "SASL %s", sasl_mechanisms(true));
	}
	if (!tls && tls_available() && s->state == POP3_ST_AUTHORIZATION)
		pop3_reply(s, "STLS");
	pop3_reply(s, ".");
}

static void
pop3_cmd_stls(struct pop3_session *s)
{
	if (conn_is_tls(s->conn)) {
		pop3_reply_error(s, "-ERR TLS already active");
		return;
	}
	if (!tls_available()) {
		pop3_reply(s, "-ERR [SYS/TEMP] TLS not available");
		return;
	}
	pop3_reply(s, "+OK Begin TLS negotiation");
	if (conn_start_tls(s->conn) < 0) {
		pop3_close(s);
		return;
	}
	x_free(&s->user_arg);	/* RFC 2595 4: start over */
}

static void
pop3_authorization_command(struct pop3_session *s, const char *kw,
    const char *args)
{
	if (strcmp(kw, "USER") == 0)
		pop3_cmd_user(s, args);
	else if (strcmp(kw, "PASS") == 0)
		pop3_cmd_pass(s, args);
	else if (strcmp(kw, "AUTH") == 0)
		pop3_cmd_auth(s, args);
	else if (strcmp(kw, "CAPA") == 0)
		pop3_cmd_capa(s);
	else if (strcmp(kw, "STLS") == 0)
		pop3_cmd_stls(s);
	else if (strcmp(kw, "UTF8") == 0)
		pop3_reply(s, "+OK UTF8 enabled");
	else if (strcmp(kw, "QUIT") == 0) {
		pop3_reply(s, "+OK Logging out");
		pop3_close(s);
	} else
		pop3_reply_error(s, "-ERR Unknown command or not allowed "
		    "before login");
}

static void
pop3_dispatch(struct pop3_session *s, const char *line)
{
	struct pop3_command cmd;

	if (!pop3_parse_command(line, &cmd)) {
		pop3_reply_error(s, "-ERR Unknown command");
		return;
	}
	if (s->state == POP3_ST_AUTHORIZATION) {
		pop3_authorization_command(s, cmd.keyword, cmd.args);
		return;
	}
	if (strcmp(cmd.keyword, "CAPA") == 0) {
		pop3_cmd_capa(s);
		return;
	}
	if (!pop3_transaction_command(s, cmd.keyword, cmd.args))
		pop3_reply_error(s, "-ERR Unknown command");
}

void
pop3_process(struct pop3_session *s)
{
	while (s->conn && !s->busy && s->state != POP3_ST_QUIT &&
	    !conn_is_closing(s->conn)) {
		if (conn_output_length(s->conn) > POP3_OUTPUT_HIGH)
			return;	/* on_drained brings us back */
		if (s->state == POP3_ST_SENDING) {
			pop3_continue_sending(s);
			continue;
		}
		bool sasl = s->state == POP3_ST_SASL;
		switch (conn_read_line(s->conn, sasl ? POP3_AUTH_LINE_MAX :
		    POP3_LINE_MAX, &s->line)) {
		case CONN_LINE_NONE:
			return;
		case CONN_LINE_TOO_LONG:
			if (sasl) {
				pop3_auth_failed(s, true);
				break;
			}
			pop3_reply_error(s, "-ERR Line too long");
			break;
		case CONN_LINE_OK:
			if (s->line.len && memchr(s->line.data, '\0',
			    s->line.len)) {
				/* never read a command only up to a NUL */
				if (sasl)
					pop3_auth_failed(s, true);
				else
					pop3_reply_error(s, "-ERR NUL in "
					    "command");
			} else if (sasl)
				pop3_sasl_input(s, buf_cstr(&s->line));
			else
				pop3_dispatch(s, buf_cstr(&s->line));
			explicit_bzero(s->line.data, s->line.len);
			break;
		}
	}
}

/* ---- connection callbacks ---- */

static void
pop3_session_free(struct pop3_session *s)
{
	pop3_sasl_reset(s);
	pop3_release_maildrop(s);
	x_free(&s->user_arg);
	x_free(&s->user);
	buf_free(&s->line);
	free(s);
}

static void
pop3_on_input(struct conn *c, void *ctx)
{
	(void)c;
	pop3_process(ctx);
}

static void
pop3_on_drained(struct conn *c, void *ctx)
{
	struct pop3_session *s = ctx;
	(void)c;
	if (!s->busy && s->state != POP3_ST_QUIT)
		pop3_process(s);
}

static void
pop3_on_timeout(struct conn *c, void *ctx)
{
	struct pop3_session *s = ctx;
	(void)c;
	/* RFC 1939 3: autologout does not enter UPDATE. */
	pop3_reply(s, "-ERR Disconnected for inactivity");
	pop3_close(s);
}

static void
pop3_on_closed(struct conn *c, void *ctx)
{
	struct pop3_session *s = ctx;
	(void)c;
	log_info("session=%llu event=disconnect user=%s",
	    (unsigned long long)s->id, s->user ? s->user : "-");
	s->conn = NULL;
	pop3_sasl_reset(s);
	if (s->busy) {
		s->gone = true;	/* the pool job frees the session */
		return;
	}
	pop3_session_free(s);
}

void
pop3_session_release(struct pop3_session *s)
{
	pop3_session_free(s);
}

static const struct conn_handler pop3_handler = {
	.on_input = pop3_on_input,
	.on_drained = pop3_on_drained,
	.on_timeout = pop3_on_timeout,
	.on_closed = pop3_on_closed,
};

void
pop3_accept(struct conn *c, enum conn_refusal refusal, void *arg)
{
	struct pop3_server *srv = arg;

	if (refusal != CONN_ACCEPTED) {
		conn_puts(c, "-ERR [SYS/TEMP] Too many connections\r\n");
		conn_close(c);
		return;
	}
	struct pop3_session *s = x_calloc(1, sizeof(*s));
	s->conn = c;
	s->srv = srv;
	s->cfg = srv->cfg;
	s->id = conn_id(c);
	s->fd = -1;
	s->state = POP3_ST_AUTHORIZATION;
	conn_set_handler(c, &pop3_handler, s);
	conn_set_timeout(c, POP3_TIMEOUT_S);
	pop3_reply(s, "+OK correo POP3 server ready");
}

struct pop3_server *
pop3_server_new(const struct config *cfg, struct userdb *db)
{
	struct pop3_server *srv = x_calloc(1, sizeof(*srv));
	srv->cfg = cfg;
	srv->db = db;
	return srv;
}

void
pop3_server_set_config(struct pop3_server *srv, const struct config *cfg)
{
	srv->cfg = cfg;
}

void
pop3_server_free(struct pop3_server *srv)
{
	free(srv);
}
