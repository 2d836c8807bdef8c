/* SMTP AUTH (RFC 4954) over the shared SASL module. Each SASL step runs on
 * the thread pool (password hashing); failures are throttled per client
 * address. Offered only inside TLS: no password crosses in plaintext.
 * Untrusted input: the AUTH line and every base64 response line. */
#include "smtp/smtp_session.h"

#include <stdlib.h>
#include <string.h>

#include "auth/auth_async.h"
#include "auth/sasl.h"
#include "auth/throttle.h"
#include "core/util.h"
#include "core/xmalloc.h"

const char *
smtp_auth_mechanisms(const struct smtp_session *s)
{
	if (!conn_is_tls(s->conn) || s->user != NULL)
		return NULL;
	return sasl_mechanisms(true);
}

void
smtp_auth_reset(struct smtp_session *s)
{
	if (auth_session_reset(&s->auth))
		s->busy = false;	/* the step in flight was cancelled */
}

static void
smtp_auth_end(struct smtp_session *s)
{
	smtp_auth_reset(s);
	smtp_enter_state(s, SMTP_ST_READY);
}

/* The account may still be blocked after too many failures elsewhere:
 * then even the right password waits (RFC 4954 454). */
static void
smtp_auth_succeeded(struct smtp_session *s)
{
	char *user = auth_session_succeeded(&s->auth, s->id,
	    conn_peer_addr(s->conn));

	smtp_enter_state(s, SMTP_ST_READY);
	if (user == NULL) {
		smtp_reply(s, "454 4.7.0 Temporary authentication failure");
		return;
	}
	s->user = user;
	smtp_reply(s, "235 2.7.0 Authentication successful");
}

static void
smtp_auth_failed(struct smtp_session *s, bool malformed)
{
	auth_session_failed(&s->auth, s->id, conn_peer_addr(s->conn),
	    malformed);
	smtp_enter_state(s, SMTP_ST_READY);
	if (malformed)
		smtp_reply_error(s, "501 5.5.2 Cannot decode response");
	else
		smtp_reply_error(s, "535 5.7.8 Authentication credentials "
		    "invalid");
}

static void
smtp_auth_step_done(void *ctx, enum sasl_result r, char *out)
{
	struct smtp_session *s = ctx;

	auth_session_step_done(&s->auth);
	s->busy = false;
	if (r == SASL_CONTINUE || (r == SASL_OK && out && out[0])) {
		/* RFC 4954 4: final server data rides on a 334 the client
		 * answers with an empty line. */
		s->auth.final = r == SASL_OK;
		smtp_reply(s, "334 %s", out ? out : "");
		smtp_enter_state(s, SMTP_ST_AUTH);
	} else if (r == SASL_OK)
		smtp_auth_succeeded(s);
	else
		smtp_auth_failed(s, r == SASL_MALFORMED);
	free(out);
	if (s->state == SMTP_ST_QUIT)
		return;
	conn_resume(s->conn);
	smtp_process(s);
}

/* Runs one step with in (taken over). */
static void
smtp_auth_step(struct smtp_session *s, char *in)
{
	s->busy = true;
	conn_pause(s->conn);
	auth_session_step(&s->auth, conn_peer_addr(s->conn), in,
	    smtp_auth_step_done, s);
}

void
smtp_cmd_auth(struct smtp_session *s, const char *arg)
{
	char mech[64];
	unsigned char cb[32];
	const char *ir = NULL;

	if (s->user) {
		smtp_reply_error(s, "503 5.5.1 Error: already authenticated");
		return;
	}
	if (!conn_is_tls(s->conn)) {
		smtp_reply_error(s, "538 5.7.11 Encryption required for "
		    "requested authentication mechanism");
		return;
	}
	if (*arg++ != ' ') {
		smtp_reply_error(s, "501 5.5.4 Syntax: AUTH mechanism");
		return;
	}
	size_t n = strcspn(arg, " ");
	if (n == 0 || n >= sizeof(mech)) {
		smtp_reply_error(s, "501 5.5.4 Syntax: AUTH mechanism");
		return;
	}
	memcpy(mech, arg, n);
	mech[n] = '\0';
	if (arg[n] == ' ')
		ir = arg + n + 1;
	if (!sasl_mechanism_offered(mech, true)) {
		smtp_reply_error(s, "504 5.5.4 Unrecognized authentication "
		    "type");
		return;
	}
	if (throttle_blocked(conn_peer_addr(s->conn), NULL)) {
		log_info("session=%llu event=auth result=blocked ip=%s",
		    (unsigned long long)s->id, conn_peer_addr(s->conn));
		smtp_reply(s, "454 4.7.0 Temporary authentication failure");
		return;
	}
	bool have_cb = conn_tls_exporter(s->conn, cb) == 0;
	if (!auth_session_start(&s->auth, s->srv->db, mech,
	    have_cb ? cb : NULL)) {
		smtp_reply_error(s, "504 5.5.4 Unrecognized authentication "
		    "type");
		return;
	}
	smtp_enter_state(s, SMTP_ST_AUTH);
	smtp_auth_step(s, x_strdup(ir ? ir : ""));
}

void
smtp_auth_input(struct smtp_session *s, const char *line)
{
	if (strcmp(line, "*") == 0) {
		smtp_auth_end(s);
		smtp_reply_error(s, "501 5.0.0 Authentication aborted");
		return;
	}
	if (s->auth.final) {
		if (line[0] != '\0') {
			smtp_auth_failed(s, true);
			return;
		}
		smtp_auth_succeeded(s);
		return;
	}
	/* A response line is never empty-as-"=": "" is an empty response. */
	smtp_auth_step(s, x_strdup(line));
}
