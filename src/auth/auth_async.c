/* SASL steps on the thread pool with throttling delays. */
#include "auth/auth_async.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "auth/throttle.h"
#include "core/pool.h"
#include "core/timer.h"
#include "core/log.h"
#include "core/xmalloc.h"

struct auth_job {
	struct sasl_exchange *x;
	char *in;
	char *out;
	enum sasl_result result;
	auth_step_done_fn fn;
	void *ctx;
	struct timer *delay;
	bool submitted;
	bool cancelled;
};

static void
auth_job_free(struct auth_job *j)
{
	if (j->in) {
		explicit_bzero(j->in, strlen(j->in));
		free(j->in);
	}
	if (j->out) {
		explicit_bzero(j->out, strlen(j->out));
		free(j->out);
	}
	timer_free(&j->delay);
	free(j);
}

static void
auth_job_work(void *arg)
{
	struct auth_job *j = arg;
	j->result = sasl_step(j->x, j->in, &j->out);
}

static void
auth_job_done(void *arg)
{
	struct auth_job *j = arg;
	if (j->cancelled) {
		sasl_exchange_free(j->x);
		auth_job_free(j);
		return;
	}
	char *out = j->out;
	j->out = NULL;
	j->fn(j->ctx, j->result, out);
	auth_job_free(j);
}

static void
auth_job_submit(void *arg)
{
	struct auth_job *j = arg;
	j->submitted = true;
	pool_submit(auth_job_work, auth_job_done, j);
}

struct auth_job *
auth_step_start(struct sasl_exchange *x, const char *ip, char *in,
    auth_step_done_fn fn, void *ctx)
{
	struct auth_job *j = x_calloc(1, sizeof(*j));
	j->x = x;
	j->in = in;
	j->fn = fn;
	j->ctx = ctx;
	unsigned delay = throttle_delay_ms(ip, NULL);
	if (delay == 0) {
		auth_job_submit(j);
	} else {
		j->delay = timer_new(auth_job_submit, j);
		timer_start(j->delay, delay);
	}
	return j;
}

void
auth_job_cancel(struct auth_job *j)
{
	if (j->submitted) {
		j->cancelled = true;	/* auth_job_done frees */
		return;
	}
	sasl_exchange_free(j->x);
	auth_job_free(j);
}

char *
auth_plain_response(const char *user, const char *password)
{
	size_t ul = strlen(user), pl = strlen(password);
	size_t n = ul + pl + 2;
	unsigned char *raw = x_malloc(n);
	raw[0] = '\0';
	memcpy(raw + 1, user, ul);
	raw[1 + ul] = '\0';
	memcpy(raw + 2 + ul, password, pl);
	char *b64 = x_malloc(4 * ((n + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)b64, raw, (int)n);
	explicit_bzero(raw, n);
	free(raw);
	return b64;
}

bool
auth_session_reset(struct auth_session *a)
{
	bool running = a->job != NULL;

	if (a->job) {
		auth_job_cancel(a->job);	/* frees the exchange */
		a->job = NULL;
		a->sasl = NULL;
	}
	if (a->sasl) {
		sasl_exchange_free(a->sasl);
		a->sasl = NULL;
	}
	a->final = false;
	return running;
}

bool
auth_session_start(struct auth_session *a, struct userdb *db,
    const char *mech, const unsigned char *cb)
{
	auth_session_reset(a);
	a->sasl = sasl_exchange_new(db, mech, cb, cb ? 32 : 0);
	return a->sasl != NULL;
}

void
auth_session_step(struct auth_session *a, const char *ip, char *in,
    auth_step_done_fn fn, void *ctx)
{
	a->job = auth_step_start(a->sasl, ip, in, fn, ctx);
}

void
auth_session_step_done(struct auth_session *a)
{
	a->job = NULL;
}

void
auth_session_failed(struct auth_session *a, uint64_t id, const char *ip,
    bool malformed)
{
	const char *authid = a->sasl ? sasl_authid(a->sasl) : "";

	throttle_failure(ip, malformed ? NULL : authid);
	log_info("session=%llu event=auth result=fail ip=%s authid=%s",
	    (unsigned long long)id, ip, authid);
	auth_session_reset(a);
}

char *
auth_session_succeeded(struct auth_session *a, uint64_t id, const char *ip)
{
	const char *user = sasl_user(a->sasl);
	char *out = NULL;

	if (throttle_blocked(NULL, user))
		log_info("session=%llu event=auth result=blocked user=%s",
		    (unsigned long long)id, user);
	else {
		throttle_success(ip, user);
		log_info("session=%llu event=auth result=ok user=%s ip=%s",
		    (unsigned long long)id, user, ip);
		out = x_strdup(user);
	}
	auth_session_reset(a);
	return out;
}
