/* IMAP LOGIN and AUTHENTICATE (RFC 9051 6.2.2, 6.2.3, RFC 4959 SASL-IR)
 * on the shared SASL module, then opening the user's store.
 *
 * Untrusted input: user names, passwords and SASL responses. */
#include <stdlib.h>
#include <string.h>

#include "auth/auth_async.h"
#include "auth/sasl.h"
#include "auth/throttle.h"
#include "auth/userdb.h"
#include "core/xmalloc.h"
#include "imap/imap_session.h"

void
imap_auth_reset(struct imap_session *s)
{
	if (auth_session_reset(&s->auth))
		s->busy = false;	/* the step in flight was cancelled */
}

/* The exchange is over (any outcome): back to reading commands. */
static void
imap_auth_end(struct imap_session *s)
{
	imap_auth_reset(s);
	s->input = IMAP_IN_COMMAND;
}

static void
imap_auth_failed(struct imap_session *s, bool malformed)
{
	auth_session_failed(&s->auth, s->id, conn_peer_addr(s->conn),
	    malformed);
	s->input = IMAP_IN_COMMAND;
	if (malformed)
		imap_tagged(s, "BAD", "Invalid base64 or SASL data");
	else
		imap_tagged(s, "NO", "[AUTHENTICATIONFAILED] Authentication "
		    "failed");
}

static void
imap_login_open_work(struct imap_session *s)
{
	char *err = NULL;

	s->store = store_open(s->cfg->data_dir, s->user, &err);
	if (s->store == NULL) {
		log_warnx("session=%llu event=store-open user=%s error=\"%s\"",
		    (unsigned long long)s->id, s->user, err ? err : "?");
		free(err);
		imap_out_tagged(s, "NO", "[UNAVAILABLE] Your mailbox cannot be "
		    "opened now");
		return;
	}
	/* Opened to make sure it can be (and to create it); the first
	 * command that needs it opens it again (imap_job_work). */
	store_close(s->store);
	s->store = NULL;
	s->job_status = 1;
}

static void
imap_login_open_done(struct imap_session *s)
{
	if (s->job_status != 1) {
		x_free(&s->user);
		return;
	}
	s->root = userdb_maildir_path(s->cfg->data_dir, s->user);
	imap_enter_state(s, IMAP_ST_AUTH);
	imap_watch_start(s);
	imap_tagged(s, "OK", "[CAPABILITY %s] Logged in",
	    imap_capabilities(s));
}

static void
imap_auth_succeeded(struct imap_session *s)
{
	char *user = auth_session_succeeded(&s->auth, s->id,
	    conn_peer_addr(s->conn));

	s->input = IMAP_IN_COMMAND;
	if (user == NULL) {
		imap_tagged(s, "NO", "[UNAVAILABLE] Temporary authentication "
		    "failure");
		return;
	}
	s->user = user;
	imap_job(s, imap_login_open_work, imap_login_open_done);
}

static void
imap_auth_step_done(void *ctx, enum sasl_result r, char *out)
{
	struct imap_session *s = ctx;

	auth_session_step_done(&s->auth);
	s->busy = false;
	if (r == SASL_CONTINUE || (r == SASL_OK && out && out[0])) {
		/* IMAP has no success-with-data: SCRAM's server-final is a
		 * challenge answered by an empty line (RFC 9051 6.2.2). */
		s->input = IMAP_IN_SASL;
		s->auth.final = r == SASL_OK;
		imap_send(s, "+ %s", out ? out : "");
	} else if (r == SASL_OK)
		imap_auth_succeeded(s);
	else
		imap_auth_failed(s, r == SASL_MALFORMED);
	free(out);
	imap_resume(s);
}

static void
imap_auth_step(struct imap_session *s, char *in)
{
	s->busy = true;
	conn_pause(s->conn);
	auth_session_step(&s->auth, conn_peer_addr(s->conn), in,
	    imap_auth_step_done, s);
}

/* Checks what every authentication needs; false after a reply. */
static bool
imap_auth_allowed(struct imap_session *s)
{
	if (!conn_is_tls(s->conn)) {
		imap_tagged(s, "NO", "[PRIVACYREQUIRED] Use STARTTLS or the "
		    "imaps port before logging in");
		return false;
	}
	if (throttle_blocked(conn_peer_addr(s->conn), NULL)) {
		imap_tagged(s, "NO", "[UNAVAILABLE] Temporary authentication "
		    "failure");
		return false;
	}
	return true;
}

static bool
imap_auth_new(struct imap_session *s, const char *mech)
{
	unsigned char cb[32];
	bool have_cb = conn_tls_exporter(s->conn, cb) == 0;

	if (!auth_session_start(&s->auth, s->srv->db, mech,
	    have_cb ? cb : NULL)) {
		imap_tagged(s, "NO", "[CANNOT] Unsupported authentication "
		    "mechanism");
		return false;
	}
	return true;
}

void
imap_cmd_login(struct imap_session *s)
{
	const struct imap_string *u = &s->cmd.user, *p = &s->cmd.password;

	if (!imap_auth_allowed(s))
		return;
	if (u->has_nul || p->has_nul || u->len == 0) {
		imap_tagged(s, "NO", "[AUTHENTICATIONFAILED] Authentication "
		    "failed");
		return;
	}
	if (!imap_auth_new(s, "PLAIN"))
		return;
	imap_auth_step(s, auth_plain_response(u->data, p->data));
}

void
imap_cmd_authenticate(struct imap_session *s)
{
	const struct imap_string *ir = &s->cmd.initial;

	if (!imap_auth_allowed(s))
		return;
	if (!sasl_mechanism_offered(s->cmd.mech.data, true)) {
		imap_tagged(s, "NO", "[CANNOT] Unsupported authentication "
		    "mechanism");
		return;
	}
	if (!imap_auth_new(s, s->cmd.mech.data))
		return;
	s->input = IMAP_IN_SASL;
	imap_auth_step(s, x_strdup(ir->is_nil ? "" : ir->data));
}

void
imap_sasl_input(struct imap_session *s, const char *line)
{
	if (strcmp(line, "*") == 0) {
		imap_auth_end(s);
		imap_tagged(s, "BAD", "Authentication aborted");
		imap_command_end(s);
		return;
	}
	if (s->auth.final) {
		s->auth.final = false;
		if (line[0] != '\0') {
			imap_auth_failed(s, true);
			imap_command_end(s);
			return;
		}
		imap_auth_succeeded(s);
		if (!s->busy)		/* refused: no store to open */
			imap_command_end(s);
		return;
	}
	imap_auth_step(s, x_strdup(line));
}
