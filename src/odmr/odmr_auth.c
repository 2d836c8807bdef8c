/* AUTH on the odmr listener (RFC 2645 5.1.2, RFC 4954) over the shared
 * SASL code: offered only inside TLS, each step on the thread pool,
 * failures throttled per client address and per account.
 * Untrusted input: the AUTH line and every base64 response line. */
#include "odmr/odmr_session.h"

#include <stdlib.h>
#include <string.h>

#include "auth/auth_async.h"
#include "auth/sasl.h"
#include "auth/throttle.h"
#include "core/xmalloc.h"

void
odmr_auth_reset(struct odmr_session *s)
{
	if (auth_session_reset(&s->auth))
		s->busy = false;	/* the step in flight was cancelled */
}

static void
odmr_auth_end(struct odmr_session *s)
{
	odmr_auth_reset(s);
	odmr_enter_state(s, ODMR_ST_READY);
}

/* The account may still be blocked after too many failures elsewhere:
 * then even the right password waits. */
static void
odmr_auth_succeeded(struct odmr_session *s)
{
	char *user = auth_session_succeeded(&s->auth, s->id,
	    conn_peer_addr(s->conn));

	odmr_enter_state(s, ODMR_ST_READY);
	if (user == NULL) {
		odmr_reply(s, "454 4.7.0 Temporary authentication failure");
		return;
	}
	s->user = user;
	odmr_reply(s, "235 2.7.0 Authentication successful");
}

static void
odmr_auth_failed(struct odmr_session *s, bool malformed)
{
	auth_session_failed(&s->auth, s->id, conn_peer_addr(s->conn),
	    malformed);
	odmr_enter_state(s, ODMR_ST_READY);
	if (malformed)
		odmr_reply_error(s, "501 5.5.2 Cannot decode response");
	else
		odmr_reply_error(s, "535 5.7.8 Authentication credentials "
		    "invalid");
}

static void
odmr_auth_step_done(void *ctx, enum sasl_result r, char *out)
{
	struct odmr_session *s = ctx;

	auth_session_step_done(&s->auth);
	s->busy = false;
	if (r == SASL_CONTINUE || (r == SASL_OK && out && out[0])) {
		/* RFC 4954 4: final server data rides on a 334 the client
		 * answers with an empty line. */
		s->auth.final = r == SASL_OK;
		odmr_reply(s, "334 %s", out ? out : "");
	} else if (r == SASL_OK)
		odmr_auth_succeeded(s);
	else
		odmr_auth_failed(s, r == SASL_MALFORMED);
	free(out);
	if (s->state == ODMR_ST_QUIT)
		return;
	conn_resume(s->conn);
	odmr_process(s);
}

/* Runs one step with in (taken over). */
static void
odmr_auth_step(struct odmr_session *s, char *in)
{
	s->busy = true;
	conn_pause(s->conn);
	auth_session_step(&s->auth, conn_peer_addr(s->conn), in,
	    odmr_auth_step_done, s);
}

/* The mechanism into mech; *ir_r: the initial response, or NULL. */
static bool
odmr_auth_parse(const char *arg, char *mech, size_t n, const char **ir_r)
{
	if (*arg++ != ' ')
		return false;
	size_t len = strcspn(arg, " ");
	if (len == 0 || len >= n)
		return false;
	memcpy(mech, arg, len);
	mech[len] = '\0';
	*ir_r = arg[len] == ' ' ? arg + len + 1 : NULL;
	return true;
}

void
odmr_cmd_auth(struct odmr_session *s, const char *arg)
{
	char mech[64];
	unsigned char cb[32];
	const char *ir;

	if (s->user) {
		odmr_reply_error(s, "503 5.5.1 Error: already authenticated");
		return;
	}
	if (!conn_is_tls(s->conn)) {
		odmr_reply_error(s, "538 5.7.11 Encryption required for "
		    "requested authentication mechanism");
		return;
	}
	if (!odmr_auth_parse(arg, mech, sizeof(mech), &ir)) {
		odmr_reply_error(s, "501 5.5.4 Syntax: AUTH mechanism");
		return;
	}
	if (throttle_blocked(conn_peer_addr(s->conn), NULL)) {
		log_info("session=%llu event=auth result=blocked ip=%s",
		    (unsigned long long)s->id, conn_peer_addr(s->conn));
		odmr_reply(s, "454 4.7.0 Temporary authentication failure");
		return;
	}
	bool have_cb = conn_tls_exporter(s->conn, cb) == 0;
	if (!sasl_mechanism_offered(mech, true) ||
	    !auth_session_start(&s->auth, s->srv->db, mech,
	    have_cb ? cb : NULL)) {
		odmr_reply_error(s, "504 5.5.4 Unrecognized authentication "
		    "type");
		return;
	}
	odmr_enter_state(s, ODMR_ST_AUTH);
	odmr_auth_step(s, x_strdup(ir ? ir : ""));
}

void
odmr_auth_input(struct odmr_session *s, const char *line)
{
	if (strcmp(line, "*") == 0) {
		odmr_auth_end(s);
		odmr_reply_error(s, "501 5.0.0 Authentication aborted");
		return;
	}
	if (s->auth.final) {
		if (line[0] != '\0')
			odmr_auth_failed(s, true);
		else
			odmr_auth_succeeded(s);
		return;
	}
	odmr_auth_step(s, x_strdup(line));
}
