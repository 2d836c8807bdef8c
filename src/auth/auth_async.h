/* Authentication steps off the event loop, for every protocol: each SASL
 * step (password hashing, SCRAM key derivation) runs on the thread pool,
 * after the throttling delay of the client's address. Loop thread API. */
#ifndef AUTH_AUTH_ASYNC_H
#define AUTH_AUTH_ASYNC_H

#include "auth/sasl.h"

struct auth_job;

/* Called on the loop thread with the step's result; out is the allocated
 * base64 output (challenge or final data) or NULL; the callee frees it. */
typedef void (*auth_step_done_fn)(void *ctx, enum sasl_result r, char *out);

/* Runs sasl_step(x, in) on the pool after throttle_delay_ms(ip). in is
 * taken over (wiped and freed). x must not be touched until fn runs.
 * Returns the job, for auth_job_cancel(). */
struct auth_job *auth_step_start(struct sasl_exchange *x, const char *ip,
    char *in, auth_step_done_fn fn, void *ctx);

/* The session is going away while the job is pending: fn will not be
 * called, and the exchange x is freed with the job. */
void auth_job_cancel(struct auth_job *j);

/* ---- the exchange of one protocol session ----
 *
 * What SMTP AUTH, IMAP AUTHENTICATE/LOGIN, POP3 AUTH/USER/PASS and ODMR
 * AUTH share: the exchange and its step in flight, and the bookkeeping of
 * the end (throttling, logs), so that every protocol counts failures and
 * blocks accounts the same way. */
#include <stdbool.h>
#include <stdint.h>

struct userdb;

struct auth_session {
	struct sasl_exchange *sasl;
	struct auth_job *job;	/* a step in flight */
	bool final;		/* server-final data sent, an empty line due */
};

/* Ends the exchange (a step in flight is cancelled: its callback never
 * runs). True when a step was in flight. */
bool auth_session_reset(struct auth_session *a);
/* Starts an exchange of mech; cb is the connection's 32-octet
 * tls-exporter value, or NULL without TLS. False when mech is not
 * offered. */
bool auth_session_start(struct auth_session *a, struct userdb *db,
    const char *mech, const unsigned char *cb);
/* Runs the next step with in (taken over), from client address ip. */
void auth_session_step(struct auth_session *a, const char *ip, char *in,
    auth_step_done_fn fn, void *ctx);
/* The step's callback ran: the job is gone. */
void auth_session_step_done(struct auth_session *a);
/* A failed exchange (malformed: the client's data was not even
 * well-formed, which does not count against the account): throttled,
 * logged for session id, and ended. */
void auth_session_failed(struct auth_session *a, uint64_t id, const char *ip,
    bool malformed);
/* A successful exchange: the user (allocated), or NULL (logged) when the
 * account is blocked by earlier failures; the exchange is ended. */
char *auth_session_succeeded(struct auth_session *a, uint64_t id,
    const char *ip);

/* The base64 PLAIN response for a user name and password (USER/PASS,
 * IMAP LOGIN), allocated; the caller hands it to auth_step_start. */
char *auth_plain_response(const char *user, const char *password);

#endif
