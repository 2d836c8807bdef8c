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

/* The base64 PLAIN response for a user name and password (USER/PASS,
 * IMAP LOGIN), allocated; the caller hands it to auth_step_start. */
char *auth_plain_response(const char *user, const char *password);

#endif
