/* On-Demand Mail Relay (RFC 2645), the queue's side: finding the messages
 * held for a client's domains, and sending them one at a time, each as an
 * attempt of the scheduler (sched_attempt_start_ext), over the SMTP
 * client session that runs on the client's own connection.
 * Untrusted input: the ODMR client's SMTP replies (through the SMTP
 * client, queue/smtp_client.c). */
#include "queue/sched_odmr.h"

#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "core/pool.h"
#include "core/timer.h"
#include "core/util.h"
#include "core/xmalloc.h"
#include "queue/sched_int.h"

/* A message another attempt is working on is waited for, checking this
 * often, at most this long; then it waits for the next ATRN. */
#define ODMR_BUSY_POLL_MS	100
#define ODMR_BUSY_TRIES		50

struct sched_odmr {
	struct strlist domains;
	/* finding (the pool) */
	char *data_dir;
	struct strlist ids;		/* the scheduler's messages */
	struct strlist found;		/* those with mail for domains */
	sched_odmr_found_fn fn;
	void *arg;
	bool scanning;
	bool cancelled;			/* while scanning */
	/* delivering */
	struct smtp_client *client;
	size_t next;			/* in found */
	unsigned busy_tries;
	bool in_attempt;
	bool ending;			/* smtp_client_end called */
	unsigned sent;
	struct timer *wait;
	struct sched_odmr *next_pull;	/* in sc->odmr */
};

static void
odmr_free(struct sched_odmr *p)
{
	strlist_free(&p->domains);
	strlist_free(&p->ids);
	strlist_free(&p->found);
	free(p->data_dir);
	timer_free(&p->wait);
	free(p);
}

/* ---- finding ---- */

static bool
odmr_wanted(const struct sched_odmr *p, const struct queue_envelope *env)
{
	for (size_t i = 0; i < env->rcpts.n; i++) {
		const char *at = strrchr(env->rcpts.v[i], '@');
		if (at && strlist_contains(&p->domains, at + 1))
			return true;
	}
	return false;
}

/* Pool. */
static void
odmr_find_work(void *arg)
{
	struct sched_odmr *p = arg;

	for (size_t i = 0; i < p->ids.n; i++) {
		struct queue_envelope env;
		if (queue_read(p->data_dir, p->ids.v[i], &env) < 0)
			continue;	/* delivered or deleted meanwhile */
		if (odmr_wanted(p, &env))
			strlist_add(&p->found, env.id);
		queue_envelope_free(&env);
	}
}

static void
odmr_find_done(void *arg)
{
	struct sched_odmr *p = arg;

	p->scanning = false;
	if (p->cancelled) {
		odmr_free(p);
		return;
	}
	p->fn(p, p->found.n, p->arg);
}

struct sched_odmr *
sched_odmr_find(const struct strlist *domains, sched_odmr_found_fn fn,
    void *arg)
{
	struct sched *sc = sched_global;

	if (sc == NULL)
		return NULL;
	struct sched_odmr *p = x_calloc(1, sizeof(*p));
	for (size_t i = 0; i < domains->n; i++)
		strlist_add_unique(&p->domains, domains->v[i]);
	for (struct sched_msg *m = sc->msgs; m; m = m->next)
		if (!m->gone)
			strlist_add(&p->ids, m->id);
	p->data_dir = x_strdup(sc->cfg->data_dir);
	p->fn = fn;
	p->arg = arg;
	p->scanning = true;
	pool_submit(odmr_find_work, odmr_find_done, p);
	return p;
}

void
sched_odmr_cancel(struct sched_odmr *p)
{
	if (p == NULL)
		return;
	if (p->scanning)
		p->cancelled = true;	/* odmr_find_done frees it */
	else
		odmr_free(p);
}

/* ---- delivering ---- */

static void
odmr_unlink(struct sched_odmr *p)
{
	struct sched *sc = sched_global;

	for (struct sched_odmr **pp = sc ? &sc->odmr : NULL; pp && *pp;
	    pp = &(*pp)->next_pull)
		if (*pp == p) {
			*pp = p->next_pull;
			break;
		}
}

/* The session and the attempt in flight are both over. */
static void
odmr_end(struct sched_odmr *p)
{
	log_info("event=odmr-end messages=%u of=%zu", p->sent, p->found.n);
	odmr_unlink(p);
	odmr_free(p);
}

static struct sched_msg *
odmr_msg(struct sched *sc, const char *id)
{
	for (struct sched_msg *m = sc->msgs; m; m = m->next)
		if (strcmp(m->id, id) == 0)
			return m;
	return NULL;
}

static int
odmr_send(void *arg, const struct smtp_client_message *msg,
    smtp_client_result_fn fn, void *fn_arg)
{
	struct sched_odmr *p = arg;

	if (p->client == NULL ||
	    smtp_client_send(p->client, msg, fn, fn_arg) < 0)
		return -1;
	p->sent++;
	return 0;
}

static void odmr_next(struct sched_odmr *p);

static void
odmr_attempt_finished(void *arg)
{
	struct sched_odmr *p = arg;

	p->in_attempt = false;
	if (p->client == NULL)
		odmr_end(p);
	else
		odmr_next(p);
}

/* Starts the attempt of the next message found, or ends the session. */
static void
odmr_next(struct sched_odmr *p)
{
	struct sched *sc = sched_global;

	while (p->next < p->found.n) {
		struct sched_msg *m = odmr_msg(sc, p->found.v[p->next]);
		if (m != NULL && !m->gone && m->busy &&
		    ++p->busy_tries < ODMR_BUSY_TRIES) {
			timer_start(p->wait, ODMR_BUSY_POLL_MS);
			return;
		}
		p->next++;
		p->busy_tries = 0;
		if (m == NULL || m->gone || m->busy)
			continue;
		struct sched_attempt_ext x = {
			.domains = &p->domains,
			.send = odmr_send,
			.finished = odmr_attempt_finished,
			.arg = p,
		};
		m->busy = true;
		sc->in_flight++;
		p->in_attempt = true;
		sched_attempt_start_ext(sc, m, &x);
		return;
	}
	if (!p->ending) {
		p->ending = true;
		smtp_client_end(p->client);
	}
}

static void
odmr_on_wait(void *arg)
{
	odmr_next(arg);
}

static void
odmr_client_done(struct smtp_client *c, const struct smtp_client_outcome *o,
    void *arg)
{
	struct sched_odmr *p = arg;

	(void)c;
	if (!o->ok)
		log_info("event=odmr-session ok=no error=\"%s\"", o->text);
	p->client = NULL;
	timer_stop(p->wait);
	if (!p->in_attempt)
		odmr_end(p);
}

int
sched_odmr_deliver(struct sched_odmr *p, struct conn *c)
{
	struct sched *sc = sched_global;
	char *err = NULL;

	if (sc == NULL) {
		odmr_free(p);
		return -1;
	}
	struct smtp_client_options o = {
		.helo_name = sc->cfg->hostname,
		.host_name = conn_peer_addr(c),
		.tls = SMTP_CLIENT_TLS_NONE,
	};
	p->client = smtp_client_new_on_conn(c, &o, odmr_client_done, p, &err);
	if (p->client == NULL) {
		log_warnx("event=odmr-session error=\"%s\"", err);
		free(err);
		odmr_free(p);
		return -1;
	}
	p->wait = timer_new(odmr_on_wait, p);
	p->next_pull = sc->odmr;
	sc->odmr = p;
	log_info("event=odmr-start messages=%zu ip=%s", p->found.n,
	    conn_peer_addr(c));
	odmr_next(p);
	return 0;
}

void
sched_odmr_stop_all(struct sched *sc)
{
	while (sc->odmr) {
		struct sched_odmr *p = sc->odmr;
		sc->odmr = p->next_pull;
		if (p->client)
			smtp_client_free(p->client);
		odmr_free(p);
	}
}
