/* The TLS policy of one outbound connection: DANE, MTA-STS or
 * opportunistic STARTTLS (see tls_policy.h for the rules).
 * Untrusted input: TLSA and TXT answers (through queue/dns.c) and MTA-STS
 * policies (through queue/mta_sts*.c); both are bounded there. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/timer.h"
#include "core/xmalloc.h"
#include "net/tls.h"
#include "queue/mta_sts.h"
#include "queue/tls_policy.h"

/* A fetch that failed is not tried again for the same id this long. */
#define STS_RETRY_AFTER 60
/* Domains whose policy is kept in memory at most. */
#define STS_CACHE_MAX 10000

struct sts_cache_entry {
	char *domain;
	bool has_policy;
	char id[MTA_STS_ID_MAX + 1];	/* of the policy */
	struct mta_sts_policy policy;
	time_t expires;
	char failed_id[MTA_STS_ID_MAX + 1];
	time_t failed_until;		/* no fetch for failed_id before */
	struct sts_cache_entry *next;
};

static struct sts_cache_entry *sts_cache;
static size_t sts_cache_n;
static char *tls_policy_ca_loaded;	/* the tls_ca_file set up last */

struct tls_policy_query {
	struct dns_resolver *r;
	char *queue_id;
	char *domain;			/* NULL: no MTA-STS */
	char *host;
	unsigned port;
	unsigned sts_port;
	bool dane_possible;
	tls_policy_cb *cb;
	void *arg;
	struct dns_query *dq;
	struct mta_sts_fetch *fetch;
	char id[MTA_STS_ID_MAX + 1];	/* of the TXT record */
	struct timer *kick;
	struct tls_policy *result;	/* ready, waiting for kick */
	char detail[300];		/* for the log line */
};

const char *
tls_policy_source_name(enum tls_policy_source s)
{
	switch (s) {
	case TLS_POLICY_DANE:
		return "dane";
	case TLS_POLICY_MTA_STS:
		return "mta-sts";
	case TLS_POLICY_OPPORTUNISTIC:
		break;
	}
	return "opportunistic";
}

static const char *
tls_policy_tls_name(enum smtp_client_tls t)
{
	switch (t) {
	case SMTP_CLIENT_TLS_NONE:
		return "none";
	case SMTP_CLIENT_TLS_ENCRYPT:
		return "encrypt";
	case SMTP_CLIENT_TLS_VERIFY:
		return "verify";
	case SMTP_CLIENT_TLS_OPPORTUNISTIC:
		break;
	}
	return "opportunistic";
}

void
tls_policy_free(struct tls_policy *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->ntlsa; i++)
		free((void *)p->tlsa[i].data);
	free(p->tlsa);
	free(p->error);
	free(p);
}

/* ---- the MTA-STS cache ---- */

static void
sts_entry_free(struct sts_cache_entry *e)
{
	mta_sts_policy_free(&e->policy);
	free(e->domain);
	free(e);
}

void
tls_policy_cache_clear(void)
{
	while (sts_cache != NULL) {
		struct sts_cache_entry *e = sts_cache;
		sts_cache = e->next;
		sts_entry_free(e);
	}
	sts_cache_n = 0;
}

static struct sts_cache_entry *
sts_cache_find(const char *domain)
{
	for (struct sts_cache_entry *e = sts_cache; e != NULL; e = e->next)
		if (strcmp(e->domain, domain) == 0)
			return e;
	return NULL;
}

/* Makes room by dropping the entry that expires first. */
static void
sts_cache_evict(void)
{
	struct sts_cache_entry **victim = NULL;

	for (struct sts_cache_entry **pp = &sts_cache; *pp != NULL;
	    pp = &(*pp)->next) {
		time_t t = (*pp)->has_policy ? (*pp)->expires :
		    (*pp)->failed_until;
		if (victim == NULL || t < ((*victim)->has_policy ?
		    (*victim)->expires : (*victim)->failed_until))
			victim = pp;
	}
	if (victim != NULL) {
		struct sts_cache_entry *e = *victim;
		*victim = e->next;
		sts_entry_free(e);
		sts_cache_n--;
	}
}

static struct sts_cache_entry *
sts_cache_get(const char *domain)
{
	struct sts_cache_entry *e = sts_cache_find(domain);

	if (e != NULL)
		return e;
	if (sts_cache_n >= STS_CACHE_MAX)
		sts_cache_evict();
	e = x_calloc(1, sizeof(*e));
	e->domain = x_strdup(domain);
	e->next = sts_cache;
	sts_cache = e;
	sts_cache_n++;
	return e;
}

/* The cached policy of domain while it has not expired, else NULL. */
static const struct sts_cache_entry *
sts_cache_valid(const char *domain, time_t now)
{
	const struct sts_cache_entry *e = sts_cache_find(domain);

	return e != NULL && e->has_policy && e->expires > now ? e : NULL;
}

/* ---- the end of a lookup ---- */

static void
tls_policy_log(const struct tls_policy_query *q, const struct tls_policy *p)
{
	log_info("event=tls-policy id=%s domain=%s host=%s port=%u "
	    "policy=%s tls=%s tlsa=%zu result=%s%s%s%s%s",
	    q->queue_id ? q->queue_id : "-", q->domain ? q->domain : "-",
	    q->host, q->port, tls_policy_source_name(p->source),
	    tls_policy_tls_name(p->tls), p->ntlsa,
	    p->usable ? "connect" : "skip-host", q->detail[0] ? " " : "",
	    q->detail, p->error ? " error=\"" : "", p->error ? p->error : "");
}

static void
tls_policy_on_kick(void *arg)
{
	struct tls_policy_query *q = arg;
	struct tls_policy *p = q->result;
	tls_policy_cb *cb = q->cb;
	void *cb_arg = q->arg;

	q->result = NULL;
	tls_policy_log(q, p);
	tls_policy_cancel(q);
	cb(p, cb_arg);
}

/* Hands p to the caller from the loop. */
static void
tls_policy_done(struct tls_policy_query *q, struct tls_policy *p)
{
	q->result = p;
	timer_start(q->kick, 0);
}

static struct tls_policy *
tls_policy_new(enum tls_policy_source src, enum smtp_client_tls tls)
{
	struct tls_policy *p = x_calloc(1, sizeof(*p));

	p->source = src;
	p->tls = tls;
	p->usable = true;
	return p;
}

static void
tls_policy_opportunistic(struct tls_policy_query *q)
{
	tls_policy_done(q, tls_policy_new(TLS_POLICY_OPPORTUNISTIC,
	    SMTP_CLIENT_TLS_OPPORTUNISTIC));
}

static void
tls_policy_skip(struct tls_policy_query *q, enum tls_policy_source src,
    char *error)
{
	struct tls_policy *p = tls_policy_new(src, SMTP_CLIENT_TLS_VERIFY);

	p->usable = false;
	p->error = error;
	tls_policy_done(q, p);
}

/* ---- MTA-STS ---- */

/* Applies a domain's MTA-STS policy to this host. */
static void
sts_apply(struct tls_policy_query *q, const struct sts_cache_entry *e,
    bool cached)
{
	const struct mta_sts_policy *pol = &e->policy;
	bool match = mta_sts_mx_matches(pol, q->host);

	snprintf(q->detail, sizeof(q->detail), "mode=%s sts-id=%s mx-match=%s "
	    "source=%s", mta_sts_mode_name(pol->mode), e->id, match ? "yes" :
	    "no", cached ? "cache" : "fetch");
	if (pol->mode != MTA_STS_ENFORCE) {
		/* testing (RFC 8461 5): deliver as usual, report only */
		struct tls_policy *p = tls_policy_new(TLS_POLICY_MTA_STS,
		    SMTP_CLIENT_TLS_OPPORTUNISTIC);
		tls_policy_done(q, p);
		return;
	}
	if (!match) {
		tls_policy_skip(q, TLS_POLICY_MTA_STS, x_asprintf("MX host %s "
		    "does not match the MTA-STS policy of %s", q->host,
		    q->domain));
		return;
	}
	tls_policy_done(q, tls_policy_new(TLS_POLICY_MTA_STS,
	    SMTP_CLIENT_TLS_VERIFY));
}

/* Without a new policy: the cached one while valid, else none. */
static void
sts_fallback(struct tls_policy_query *q, const char *why)
{
	const struct sts_cache_entry *e = sts_cache_valid(q->domain,
	    time(NULL));

	if (e != NULL) {
		sts_apply(q, e, true);
		return;
	}
	snprintf(q->detail, sizeof(q->detail), "mta-sts=\"%s\"", why);
	tls_policy_opportunistic(q);
}

static void
sts_on_fetch(struct mta_sts_policy *policy, const char *error, void *arg)
{
	struct tls_policy_query *q = arg;
	time_t now = time(NULL);
	struct sts_cache_entry *e = sts_cache_get(q->domain);

	q->fetch = NULL;
	if (policy == NULL) {
		log_warnx("event=mta-sts-fetch id=%s domain=%s sts-id=%s "
		    "error=\"%s\"", q->queue_id ? q->queue_id : "-",
		    q->domain, q->id, error);
		memcpy(e->failed_id, q->id, sizeof(e->failed_id));
		e->failed_until = now + STS_RETRY_AFTER;
		sts_fallback(q, "policy fetch failed");
		return;
	}
	log_info("event=mta-sts-fetch id=%s domain=%s sts-id=%s mode=%s "
	    "max_age=%u mx=%zu", q->queue_id ? q->queue_id : "-", q->domain,
	    q->id, mta_sts_mode_name(policy->mode), policy->max_age,
	    policy->nmx);
	mta_sts_policy_free(&e->policy);
	e->policy = *policy;
	free(policy);
	e->has_policy = true;
	memcpy(e->id, q->id, sizeof(e->id));
	e->expires = now + (time_t)e->policy.max_age;
	e->failed_until = 0;
	sts_apply(q, e, false);
}

static void
sts_on_txt(struct dns_txt *txt, void *arg)
{
	struct tls_policy_query *q = arg;
	time_t now = time(NULL);
	const struct sts_cache_entry *valid = sts_cache_valid(q->domain, now);
	const struct sts_cache_entry *e = sts_cache_find(q->domain);
	bool have_id;

	q->dq = NULL;
	have_id = txt->status == DNS_OK && mta_sts_txt_id(txt->records,
	    txt->nrecords, q->id) == 0;
	dns_txt_free(txt);
	if (!have_id) {
		sts_fallback(q, "no policy");
		return;
	}
	if (valid != NULL && strcmp(valid->id, q->id) == 0) {
		sts_apply(q, valid, true);
		return;
	}
	if (e != NULL && e->failed_until > now &&
	    strcmp(e->failed_id, q->id) == 0) {
		sts_fallback(q, "policy fetch failed recently");
		return;
	}
	q->fetch = mta_sts_fetch_start(q->r, q->domain, q->sts_port,
	    sts_on_fetch, q);
}

static void
sts_start(struct tls_policy_query *q)
{
	if (q->domain == NULL) {
		tls_policy_opportunistic(q);
		return;
	}
	char *name = x_asprintf("_mta-sts.%s", q->domain);
	q->dq = dns_txt_lookup(q->r, name, sts_on_txt, q);
	free(name);
}

/* ---- DANE ---- */

/* Usable for SMTP (RFC 7672 3.1): DANE-TA(2) and DANE-EE(3), with a
 * known selector and matching type of the right length. */
static bool
dane_usable(const struct dns_tlsa_record *t)
{
	if ((t->usage != 2 && t->usage != 3) || t->selector > 1)
		return false;
	return (t->mtype == 0 && t->len > 0) ||
	    (t->mtype == 1 && t->len == 32) || (t->mtype == 2 && t->len == 64);
}

static void
dane_on_tlsa(struct dns_tlsa *tlsa, void *arg)
{
	struct tls_policy_query *q = arg;

	q->dq = NULL;
	if (tlsa->status != DNS_OK) {
		/* RFC 7672 2.2: neither plaintext nor unauthenticated TLS */
		tls_policy_skip(q, TLS_POLICY_DANE, tlsa->error ?
		    x_asprintf("DANE: %s", tlsa->error) : x_asprintf("DANE: "
		    "TLSA lookup for %s failed", q->host));
		dns_tlsa_free(tlsa);
		return;
	}
	if (!tlsa->secure || tlsa->nrecords == 0) {
		dns_tlsa_free(tlsa);
		sts_start(q);
		return;
	}
	struct tls_policy *p = tls_policy_new(TLS_POLICY_DANE,
	    SMTP_CLIENT_TLS_VERIFY);
	p->tlsa = x_calloc(tlsa->nrecords, sizeof(*p->tlsa));
	for (size_t i = 0; i < tlsa->nrecords; i++) {
		struct dns_tlsa_record *t = &tlsa->records[i];
		if (!dane_usable(t))
			continue;
		p->tlsa[p->ntlsa++] = (struct conn_tlsa){
			.usage = t->usage,
			.selector = t->selector,
			.mtype = t->mtype,
			.data = t->data,
			.len = t->len,
		};
		t->data = NULL;		/* moved */
	}
	snprintf(q->detail, sizeof(q->detail), "tlsa-records=%zu usable=%zu",
	    tlsa->nrecords, p->ntlsa);
	/* All unusable: TLS is still required, unauthenticated (2.2). */
	if (p->ntlsa == 0)
		p->tls = SMTP_CLIENT_TLS_ENCRYPT;
	dns_tlsa_free(tlsa);
	tls_policy_done(q, p);
}

/* ---- lookups ---- */

/* Loads [delivery] tls_ca_file into the client context when it changed. */
static void
tls_policy_setup_ca(const struct config *cfg)
{
	const char *ca = cfg->tls_ca_file ? cfg->tls_ca_file : "";
	char *err = NULL;

	if (tls_policy_ca_loaded != NULL &&
	    strcmp(tls_policy_ca_loaded, ca) == 0)
		return;
	free(tls_policy_ca_loaded);
	tls_policy_ca_loaded = x_strdup(ca);
	if (tls_client_setup(ca[0] ? ca : NULL, &err) < 0) {
		log_warnx("event=tls-client-setup tls_ca_file=%s error=\"%s\"",
		    ca, err ? err : "?");
		free(err);
	}
}

struct tls_policy_query *
tls_policy_lookup(struct dns_resolver *r, const struct config *cfg,
    const struct tls_policy_request *req, tls_policy_cb *cb, void *arg)
{
	struct tls_policy_query *q = x_calloc(1, sizeof(*q));
	const struct dns_route *route = req->route;
	const struct dns_host *h = &route->hosts[req->host];

	tls_policy_setup_ca(cfg);
	q->r = r;
	q->queue_id = req->queue_id ? x_strdup(req->queue_id) : NULL;
	q->domain = req->domain && !route->literal ?
	    x_strdup(req->domain) : NULL;
	q->host = x_strdup(h->name);
	q->port = req->port;
	q->sts_port = cfg->mta_sts_port ? cfg->mta_sts_port : 443;
	q->cb = cb;
	q->arg = arg;
	q->kick = timer_new(tls_policy_on_kick, q);
	q->dane_possible = !route->literal && h->secure &&
	    (route->mx_secure || route->implicit_mx);
	if (q->dane_possible)
		q->dq = dns_tlsa_lookup(r, q->host, (uint16_t)q->port,
		    dane_on_tlsa, q);
	else
		sts_start(q);
	return q;
}

void
tls_policy_cancel(struct tls_policy_query *q)
{
	if (q == NULL)
		return;
	dns_cancel(q->dq);
	mta_sts_fetch_cancel(q->fetch);
	timer_free(&q->kick);
	tls_policy_free(q->result);
	free(q->queue_id);
	free(q->domain);
	free(q->host);
	free(q);
}
