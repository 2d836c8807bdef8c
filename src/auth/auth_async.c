/* SASL steps on the thread pool with throttling delays. */
#include "auth/auth_async.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "auth/throttle.h"
#include "core/pool.h"
#include "core/timer.h"
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
