/* One delivery attempt of one queued message: its envelope is read back
 * (the CLI may have changed or deleted it), the pending recipients are
 * grouped by domain (or all go to the relayhost), each group's route is
 * looked up and its hosts tried in order until one answers; then the
 * results are folded into the envelope, reports are written for the
 * sender, and the envelope is rewritten (or removed) durably. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/userdb.h"
#include "core/config.h"
#include "core/log.h"
#include "core/pool.h"
#include "core/util.h"
#include "core/xmalloc.h"
#include "queue/deliver.h"
#include "queue/dns.h"
#include "queue/dsn.h"
#include "queue/report.h"
#include "queue/sched_int.h"
#include "queue/smtp_client.h"
#include "queue/spool.h"
#include "queue/tls_policy.h"
#include "store/notify.h"

enum sched_rcpt_state {
	SCHED_PENDING,		/* not answered in this attempt yet */
	SCHED_DELIVERED,
	SCHED_TEMPFAIL,
	SCHED_PERMFAIL,
	SCHED_SKIP		/* not part of this attempt: left as it was */
};

struct sched_result {
	enum sched_rcpt_state st;
	unsigned code;
	char status[SMTP_ENHANCED_MAX];
	char *text;
	char *mta;
	bool remote;		/* code and text came from the peer */
	bool relayed;		/* the peer did not take DSN parameters */
	size_t group;
};

/* A report for the sender: the recipients it is about. */
struct sched_report {
	struct dsn_rcpt *rcpts;
	size_t n;
	struct report_dest dest;
	struct sched_report *next;
};

struct sched_attempt {
	struct sched *sc;
	struct sched_msg *m;
	char *data_dir;
	char *hostname;			/* for reports (pool) */
	bool pool_pending;		/* a load or finish job runs */
	char msg_path[PATH_MAX];
	struct queue_envelope env;
	bool loaded;
	bool abandoned;
	struct sched_result *res;	/* one per env.rcpts as loaded */
	size_t nres;			/* env.rcpts.n shrinks at the end */
	struct strlist groups;		/* domains, or the relayhost */
	size_t group;			/* the one being worked on */
	struct dns_query *query;
	struct dns_route *route;
	size_t host;
	struct smtp_client *client;
	struct tls_policy_query *policy;	/* the host's TLS policy */
	struct smtp_client_rcpt *crcpts;
	size_t *cidx;			/* crcpts[i] is res[cidx[i]] */
	size_t ncrcpts;
	char *last_error;		/* of the group's last host */
	/* the end */
	struct sched_report *reports;
	bool remove;			/* no recipient left */
	int update_error;
	/* other due messages for the same destination ride on this
	 * attempt's session (RFC 5321 4.5.4.1: one connection, several
	 * messages) */
	struct sched_reuse *reuse;
	/* an ODMR or rider attempt (sched_attempt_start_ext) */
	bool is_ext;
	struct sched_attempt_ext ext;
	struct strlist ext_domains;
	struct sched_attempt *next;	/* in sc->attempts */
};

static void sched_next_group(struct sched_attempt *a);
static void sched_try_host(struct sched_attempt *a);
static void sched_policy_done(struct tls_policy *p, void *arg);
static void sched_finish(struct sched_attempt *a);
static void sched_ext_send(struct sched_attempt *a);

/* A session shared by an attempt and the riders it took on. Freed when
 * the session ended for its owner and no rider is left. */
struct sched_reuse {
	struct smtp_client *client;	/* NULL once the session ended */
	unsigned riders;		/* rider attempts not finished */
	bool ended;			/* smtp_client_end was called */
	bool owner_gone;
};

static void sched_reuse_release(struct sched_attempt *a);

/* Messages one session carries at most besides its own. */
#define SCHED_REUSE_MAX	50

/* ---- bookkeeping ---- */

static void
sched_attempt_unlink(struct sched_attempt *a)
{
	if (a->sc == NULL)
		return;
	for (struct sched_attempt **pp = &a->sc->attempts; *pp;
	    pp = &(*pp)->next)
		if (*pp == a) {
			*pp = a->next;
			break;
		}
}

static void
sched_reports_free(struct sched_report *r)
{
	while (r) {
		struct sched_report *next = r->next;
		for (size_t i = 0; i < r->n; i++)
			dsn_rcpt_free(&r->rcpts[i]);
		free(r->rcpts);
		report_dest_free(&r->dest);
		free(r);
		r = next;
	}
}

static void
sched_attempt_free(struct sched_attempt *a)
{
	if (a->res)
		for (size_t i = 0; i < a->nres; i++) {
			free(a->res[i].text);
			free(a->res[i].mta);
		}
	free(a->res);
	queue_envelope_free(&a->env);
	strlist_free(&a->groups);
	strlist_free(&a->ext_domains);
	dns_route_free(a->route);
	free(a->crcpts);
	free(a->cidx);
	free(a->last_error);
	free(a->data_dir);
	free(a->hostname);
	sched_reports_free(a->reports);
	free(a);
}

static void
sched_set_result(struct sched_result *r, enum sched_rcpt_state st,
    unsigned code, const char *status, const char *text, const char *mta,
    bool remote)
{
	r->st = st;
	r->code = code;
	str_copy(r->status, status ? status : "", sizeof(r->status));
	x_free(&r->text);
	x_free(&r->mta);
	r->text = text ? x_strdup(text) : NULL;
	r->mta = mta && mta[0] ? x_strdup(mta) : NULL;
	r->remote = remote;
}

/* ---- load (pool) ---- */

static void
sched_load_work(void *arg)
{
	struct sched_attempt *a = arg;

	if (queue_read(a->data_dir, a->m->id, &a->env) < 0)
		return;
	if (queue_msg_path(a->msg_path, sizeof(a->msg_path), a->data_dir,
	    a->env.id) < 0 || access(a->msg_path, R_OK) < 0) {
		log_warn("event=delivery id=%s message file", a->env.id);
		queue_envelope_free(&a->env);
		return;
	}
	a->loaded = true;
}

static void
sched_domain(const char *addr, char *out, size_t n)
{
	const char *at = strrchr(addr, '@');
	str_copy(out, at ? at + 1 : "", n);
	str_lower(out);
}

/* The attempt is over: the scheduler and an ODMR caller learn of it. */
static void
sched_attempt_end(struct sched_attempt *a, bool queued)
{
	sched_attempt_unlink(a);
	sched_attempt_finished(a->sc, a->m, queued);
	if (a->is_ext)
		a->ext.finished(a->ext.arg);
	sched_attempt_free(a);
}

/* Puts each recipient in the group of its domain (or of the relayhost).
 * Recipients of ODMR domains (RFC 2645) are never routed: they wait for
 * their client to pull them. An ODMR attempt has one group, its
 * domains' recipients; the others are skipped. */
static void
sched_group_rcpts(struct sched_attempt *a)
{
	bool relay = a->sc->cfg->relayhost[0] != '\0';
	for (size_t i = 0; i < a->env.rcpts.n; i++) {
		char d[256];
		sched_domain(a->env.rcpts.v[i], d, sizeof(d));
		if (a->is_ext) {
			if (!strlist_contains(&a->ext_domains, d))
				a->res[i].st = SCHED_SKIP;
			continue;
		}
		if (userdb_is_odmr_domain(a->sc->db, d)) {
			sched_set_result(&a->res[i], SCHED_TEMPFAIL, 0, "4.4.0",
			    "held for On-Demand Mail Relay: waiting for the "
			    "client of the domain to connect", NULL, false);
			continue;
		}
		if (relay)
			str_copy(d, a->sc->cfg->relayhost, sizeof(d));
		size_t g = 0;
		while (g < a->groups.n && strcmp(a->groups.v[g], d) != 0)
			g++;
		if (g == a->groups.n)
			strlist_add(&a->groups, d);
		a->res[i].group = g;
	}
}

static void
sched_load_done(void *arg)
{
	struct sched_attempt *a = arg;

	a->pool_pending = false;
	if (a->abandoned) {
		sched_attempt_free(a);
		return;
	}
	if (!a->loaded || a->env.rcpts.n == 0) {
		/* deleted (queue delete) or delivered by someone else */
		a->m->gone = true;
		sched_attempt_end(a, false);
		return;
	}
	a->res = x_calloc(a->env.rcpts.n, sizeof(*a->res));
	a->nres = a->env.rcpts.n;
	sched_group_rcpts(a);
	a->group = 0;
	log_info("event=delivery-start id=%s rcpts=%zu domains=%zu "
	    "attempt=%u%s", a->env.id, a->env.rcpts.n, a->groups.n,
	    a->env.attempts + 1, a->is_ext ? " odmr=yes" : "");
	if (a->is_ext)
		sched_ext_send(a);
	else
		sched_next_group(a);
}

static struct sched_attempt *
sched_attempt_new(struct sched *sc, struct sched_msg *m)
{
	struct sched_attempt *a = x_calloc(1, sizeof(*a));

	a->sc = sc;
	a->m = m;
	a->data_dir = x_strdup(sc->cfg->data_dir);
	a->hostname = x_strdup(sc->cfg->hostname);
	a->next = sc->attempts;
	sc->attempts = a;
	return a;
}

static void
sched_attempt_load(struct sched_attempt *a)
{
	a->pool_pending = true;
	pool_submit(sched_load_work, sched_load_done, a);
}

void
sched_attempt_start(struct sched *sc, struct sched_msg *m)
{
	sched_attempt_load(sched_attempt_new(sc, m));
}

void
sched_attempt_start_ext(struct sched *sc, struct sched_msg *m,
    const struct sched_attempt_ext *x)
{
	struct sched_attempt *a = sched_attempt_new(sc, m);

	a->is_ext = true;
	a->ext = *x;
	a->ext.domains = NULL;
	for (size_t i = 0; i < x->domains->n; i++)
		strlist_add(&a->ext_domains, x->domains->v[i]);
	sched_attempt_load(a);
}

/* ---- routing ---- */

/* Every recipient of the current group still pending gets st. */
static void
sched_group_fail(struct sched_attempt *a, enum sched_rcpt_state st,
    const char *status, const char *text)
{
	for (size_t i = 0; i < a->env.rcpts.n; i++)
		if (a->res[i].group == a->group &&
		    a->res[i].st == SCHED_PENDING)
			sched_set_result(&a->res[i], st, 0, status, text, NULL,
			    false);
}

static void
sched_route_done(struct dns_route *route, void *arg)
{
	struct sched_attempt *a = arg;

	a->query = NULL;
	dns_route_free(a->route);
	a->route = route;
	a->host = 0;
	if (route->status != DNS_OK) {
		const char *why = route->error ? route->error :
		    dns_status_name(route->status);
		char text[512];
		snprintf(text, sizeof(text), "%s: %s",
		    a->groups.v[a->group], why);
		log_info("event=route id=%s domain=%s status=%s error=\"%s\"",
		    a->env.id, a->groups.v[a->group],
		    dns_status_name(route->status), why);
		if (route->status == DNS_NULL_MX)
			sched_group_fail(a, SCHED_PERMFAIL, "5.1.10", text);
		else if (dns_status_is_permanent(route->status))
			sched_group_fail(a, SCHED_PERMFAIL, "5.1.2", text);
		else
			sched_group_fail(a, SCHED_TEMPFAIL, "4.4.3", text);
		a->group++;
		sched_next_group(a);
		return;
	}
	sched_try_host(a);
}

static void
sched_next_group(struct sched_attempt *a)
{
	if (a->group >= a->groups.n) {
		sched_finish(a);
		return;
	}
	x_free(&a->last_error);
	const char *target = a->groups.v[a->group];
	if (a->sc->cfg->relayhost[0]) {
		char host[256], port[16];
		if (config_parse_hostport(target, host, sizeof(host), port,
		    sizeof(port)) < 0) {
			sched_group_fail(a, SCHED_TEMPFAIL, "4.3.5",
			    "bad relayhost");
			a->group++;
			sched_next_group(a);
			return;
		}
		/* an address needs no DNS: the literal form */
		unsigned char bin[16];
		char lit[300];
		if (inet_pton(AF_INET, host, bin) == 1)
			snprintf(lit, sizeof(lit), "[%s]", host);
		else if (inet_pton(AF_INET6, host, bin) == 1)
			snprintf(lit, sizeof(lit), "[IPv6:%s]", host);
		else
			str_copy(lit, host, sizeof(lit));
		a->query = dns_host_lookup(a->sc->dns, lit, sched_route_done,
		    a);
		return;
	}
	a->query = dns_route_lookup(a->sc->dns, target, sched_route_done, a);
}

/* ---- SMTP ---- */

static unsigned
sched_port(const struct sched_attempt *a)
{
	char host[256], port[16];
	uint64_t p;

	if (a->sc->cfg->relayhost[0] &&
	    config_parse_hostport(a->sc->cfg->relayhost, host, sizeof(host),
	    port, sizeof(port)) == 0 && parse_uint(port, 65535, &p) == 0 &&
	    p > 0)
		return (unsigned)p;
	return a->sc->cfg->remote_port;
}

static void
sched_client_result(struct smtp_client *c, const struct smtp_client_result *r,
    void *arg)
{
	struct sched_attempt *a = arg;

	(void)c;
	for (size_t k = 0; k < r->msg->nrcpts && k < a->ncrcpts; k++) {
		const struct smtp_client_rcpt_result *rr = &r->rcpts[k];
		struct sched_result *res = &a->res[a->cidx[k]];
		if (!r->attempted) {
			/* the session ended first: another host may do */
			x_free(&a->last_error);
			a->last_error = x_strdup(rr->text ? rr->text : "");
			continue;
		}
		enum sched_rcpt_state st = rr->status ==
		    SMTP_CLIENT_DELIVERED ? SCHED_DELIVERED : rr->status ==
		    SMTP_CLIENT_PERMFAIL ? SCHED_PERMFAIL : SCHED_TEMPFAIL;
		sched_set_result(res, st, rr->code, rr->enhanced, rr->text,
		    r->host, rr->remote);
		res->relayed = st == SCHED_DELIVERED && !r->peer_dsn;
		log_info("event=delivery id=%s to=<%s> status=%s code=%u "
		    "dsn=%s host=%s ip=%s", a->env.id, a->env.rcpts.v[a->cidx[k]],
		    st == SCHED_DELIVERED ? "sent" : st == SCHED_PERMFAIL ?
		    "bounced" : "deferred", rr->code, rr->enhanced,
		    r->host ? r->host : "-", r->addr ? r->addr : "-");
	}
}

static bool
sched_group_pending(const struct sched_attempt *a)
{
	for (size_t i = 0; i < a->env.rcpts.n; i++)
		if (a->res[i].group == a->group &&
		    a->res[i].st == SCHED_PENDING)
			return true;
	return false;
}

static void
sched_client_done(struct smtp_client *c, const struct smtp_client_outcome *o,
    void *arg)
{
	struct sched_attempt *a = arg;

	(void)c;
	a->client = NULL;
	sched_reuse_release(a);
	if (o->text && o->text[0] && (!o->ok || a->last_error == NULL)) {
		x_free(&a->last_error);
		a->last_error = x_strdup(o->text);
	}
	if (sched_group_pending(a)) {
		a->host++;
		sched_try_host(a);
		return;
	}
	a->group++;
	sched_next_group(a);
}

/* The message for the pending recipients of the current group. */
static void
sched_build_rcpts(struct sched_attempt *a)
{
	a->ncrcpts = 0;
	a->crcpts = x_reallocarray(a->crcpts, a->env.rcpts.n,
	    sizeof(*a->crcpts));
	a->cidx = x_reallocarray(a->cidx, a->env.rcpts.n, sizeof(*a->cidx));
	for (size_t i = 0; i < a->env.rcpts.n; i++) {
		if (a->res[i].group != a->group ||
		    a->res[i].st != SCHED_PENDING)
			continue;
		const struct dsn_rcpt *d = queue_envelope_state(&a->env, i);
		a->crcpts[a->ncrcpts] = (struct smtp_client_rcpt){
			.addr = a->env.rcpts.v[i],
			.notify = d->notify,
			.orcpt = d->orcpt,
		};
		a->cidx[a->ncrcpts++] = i;
	}
}

/* The message of the attempt for the recipients of sched_build_rcpts. */
static void
sched_client_message(const struct sched_attempt *a,
    struct smtp_client_message *msg)
{
	*msg = (struct smtp_client_message){
		.from = a->env.from,
		.rcpts = a->crcpts,
		.nrcpts = a->ncrcpts,
		.path = a->msg_path,
		.size = 0,
		.eightbit = a->env.eightbit,
		.smtputf8 = a->env.smtputf8,
		.ret = a->env.ret == DSN_RET_FULL ? SMTP_RET_FULL :
		    a->env.ret == DSN_RET_HDRS ? SMTP_RET_HDRS : SMTP_RET_NONE,
		.envid = a->env.envid,
	};
}

/* ODMR: the session's reply to this message ends the attempt. */
static void
sched_ext_result(struct smtp_client *c, const struct smtp_client_result *r,
    void *arg)
{
	sched_client_result(c, r, arg);
	sched_finish(arg);
}

static void
sched_ext_send(struct sched_attempt *a)
{
	struct smtp_client_message msg;

	sched_build_rcpts(a);
	if (a->ncrcpts == 0) {
		sched_finish(a);
		return;
	}
	sched_client_message(a, &msg);
	if (a->ext.send(a->ext.arg, &msg, sched_ext_result, a) < 0) {
		x_free(&a->last_error);
		a->last_error = x_strdup("the ODMR session ended");
		sched_finish(a);
	}
}

/* ---- connection reuse ---- */

static void
sched_reuse_maybe_end(struct sched_reuse *r)
{
	if (r->riders > 0)
		return;
	if (r->client && !r->ended) {
		r->ended = true;
		smtp_client_end(r->client);
	}
	if (r->owner_gone)
		free(r);
}

static int
sched_rider_send(void *arg, const struct smtp_client_message *msg,
    smtp_client_result_fn fn, void *fn_arg)
{
	struct sched_reuse *r = arg;

	if (r->client == NULL || r->ended)
		return -1;
	return smtp_client_send(r->client, msg, fn, fn_arg);
}

static void
sched_rider_finished(void *arg)
{
	struct sched_reuse *r = arg;

	r->riders--;
	sched_reuse_maybe_end(r);
}

/* The owner's session ended (or the owner is abandoned). */
static void
sched_reuse_release(struct sched_attempt *a)
{
	struct sched_reuse *r = a->reuse;

	if (r == NULL)
		return;
	a->reuse = NULL;
	r->client = NULL;
	r->owner_gone = true;
	sched_reuse_maybe_end(r);
}

/* Offers the session of a, which reaches the domain of its current
 * group, to other messages due for that domain. */
static void
sched_reuse_offer(struct sched_attempt *a)
{
	struct sched *sc = a->sc;
	struct sched_reuse *r = x_calloc(1, sizeof(*r));
	struct strlist domains = STRLIST_INIT;
	time_t now = time(NULL);
	unsigned n = 0;

	r->client = a->client;
	a->reuse = r;
	if (sc->cfg->relayhost[0] == '\0')
		strlist_add(&domains, a->groups.v[a->group]);
	for (struct sched_msg *m = sc->msgs; m && n < SCHED_REUSE_MAX;
	    m = m->next) {
		if (sc->in_flight >= sc->cfg->max_deliveries)
			break;
		if (m->busy || m->gone || m->due > now || m == a->m)
			continue;
		if (domains.n && strcmp(m->domain, domains.v[0]) != 0)
			continue;
		struct strlist one = STRLIST_INIT;
		strlist_add(&one, m->domain);
		struct sched_attempt_ext x = {
			.domains = domains.n ? &domains : &one,
			.send = sched_rider_send,
			.finished = sched_rider_finished,
			.arg = r,
			.counts = true,
		};
		m->busy = true;
		sc->in_flight++;
		r->riders++;
		n++;
		sched_attempt_start_ext(sc, m, &x);
		strlist_free(&one);
	}
	strlist_free(&domains);
	if (n)
		log_info("event=connection-reuse id=%s host=%s messages=%u",
		    a->env.id, a->route->hosts[a->host].name, n);
	sched_reuse_maybe_end(r);
}

static void
sched_try_host(struct sched_attempt *a)
{
	const struct config *cfg = a->sc->cfg;

	if (a->route == NULL || a->host >= a->route->nhosts) {
		char text[600];
		snprintf(text, sizeof(text), "%s",
		    a->last_error && a->last_error[0] ? a->last_error :
		    "no server of the domain could be reached");
		sched_group_fail(a, SCHED_TEMPFAIL, "4.4.1", text);
		a->group++;
		sched_next_group(a);
		return;
	}
	struct tls_policy_request req = {
		.queue_id = a->env.id,
		.domain = cfg->relayhost[0] ? NULL : a->groups.v[a->group],
		.route = a->route,
		.host = a->host,
		.port = sched_port(a),
	};
	a->policy = tls_policy_lookup(a->sc->dns, cfg, &req,
	    sched_policy_done, a);
}

/* Connects to the current host under its TLS policy (tls_policy.h). */
static void
sched_policy_done(struct tls_policy *p, void *arg)
{
	struct sched_attempt *a = arg;
	const struct config *cfg = a->sc->cfg;

	a->policy = NULL;
	if (!p->usable) {
		x_free(&a->last_error);
		a->last_error = x_strdup(p->error);
		tls_policy_free(p);
		a->host++;
		sched_try_host(a);
		return;
	}
	const struct dns_host *h = &a->route->hosts[a->host];
	const char *addrs[DNS_MAX_ADDRS];
	size_t naddrs = 0;
	for (size_t i = 0; i < h->naddrs && naddrs < DNS_MAX_ADDRS; i++)
		addrs[naddrs++] = h->addrs[i].text;
	struct smtp_client_options o = {
		.helo_name = cfg->hostname,
		.host_name = h->name,
		.addrs = addrs,
		.naddrs = naddrs,
		.port = sched_port(a),
		.tls = p->tls,
		.tlsa = p->tlsa,
		.ntlsa = p->ntlsa,
	};
	if (cfg->relayhost[0] && cfg->relay_user[0]) {
		o.auth_user = cfg->relay_user;
		o.auth_password = cfg->relay_password;
	}
	char *err = NULL;
	a->client = smtp_client_new(&o, sched_client_done, a, &err);
	tls_policy_free(p);
	if (a->client == NULL) {
		x_free(&a->last_error);
		a->last_error = err;
		a->host++;
		sched_try_host(a);
		return;
	}
	sched_build_rcpts(a);
	struct smtp_client_message msg;
	sched_client_message(a, &msg);
	if (smtp_client_send(a->client, &msg, sched_client_result, a) < 0) {
		log_warnx("event=delivery id=%s error=\"cannot hand the "
		    "message to the SMTP client\"", a->env.id);
		smtp_client_end(a->client);
		return;
	}
	sched_reuse_offer(a);	/* ends the session when no rider came */
}

/* ---- the end of the attempt ---- */

static void
sched_fill_dsn(struct dsn_rcpt *d, const struct sched_result *r,
    enum dsn_action action, time_t now)
{
	d->action = action;
	const char *status = r->status;
	if (!dsn_status_valid(status))
		status = action == DSN_ACTION_FAILED ? "5.0.0" :
		    action == DSN_ACTION_DELAYED ? "4.0.0" : "2.0.0";
	str_copy(d->status, status, sizeof(d->status));
	d->smtp_code = r->remote ? (int)r->code : 0;
	x_free(&d->remote_mta);
	x_free(&d->diagnostic);
	d->remote_mta = r->mta ? x_strdup(r->mta) : NULL;
	d->diagnostic = r->text ? x_strdup(r->text) : NULL;
	d->last_attempt = now;
}

static struct dsn_rcpt
sched_dsn_copy(const struct dsn_rcpt *d)
{
	struct dsn_rcpt c = *d;
	c.addr = d->addr ? x_strdup(d->addr) : NULL;
	c.orcpt = d->orcpt ? x_strdup(d->orcpt) : NULL;
	c.remote_mta = d->remote_mta ? x_strdup(d->remote_mta) : NULL;
	c.diagnostic = d->diagnostic ? x_strdup(d->diagnostic) : NULL;
	return c;
}

/* Adds d to the report of kind k (0 failed, 1 delayed, 2 delivered). */
static void
sched_report_add(struct sched_report **by_kind, int k,
    const struct dsn_rcpt *d)
{
	struct sched_report *r = by_kind[k];
	if (r == NULL)
		r = by_kind[k] = x_calloc(1, sizeof(*r));
	r->rcpts = x_reallocarray(r->rcpts, r->n + 1, sizeof(*r->rcpts));
	r->rcpts[r->n++] = sched_dsn_copy(d);
}

/* Decides every recipient's fate; fills a->reports and the envelope. */
static void
sched_decide(struct sched_attempt *a)
{
	const struct config *cfg = a->sc->cfg;
	time_t now = time(NULL);
	bool expired = now - a->env.created >= (time_t)cfg->max_lifetime;
	bool counts = !a->is_ext || a->ext.counts;
	bool warn = counts && !expired && !a->env.delay_notified &&
	    cfg->delay_warning > 0 &&
	    now - a->env.created >= (time_t)cfg->delay_warning;
	struct sched_report *by_kind[3] = { NULL, NULL, NULL };
	bool *keep = x_calloc(a->env.rcpts.n ? a->env.rcpts.n : 1,
	    sizeof(*keep));

	for (size_t i = 0; i < a->env.rcpts.n; i++) {
		struct sched_result *r = &a->res[i];
		struct dsn_rcpt *d = queue_envelope_state(&a->env, i);
		if (r->st == SCHED_SKIP) {
			keep[i] = true;
			continue;
		}
		if (r->st == SCHED_PENDING)
			sched_set_result(r, SCHED_TEMPFAIL, 0, "4.4.1",
			    a->last_error ? a->last_error : "not attempted",
			    NULL, false);
		if (r->st == SCHED_TEMPFAIL && expired) {
			r->st = SCHED_PERMFAIL;
			str_copy(r->status, "4.4.7", sizeof(r->status));
		}
		int kind = -1;
		enum dsn_action act = DSN_ACTION_DELAYED;
		switch (r->st) {
		case SCHED_DELIVERED:
			act = r->relayed ? DSN_ACTION_RELAYED :
			    DSN_ACTION_DELIVERED;
			kind = 2;
			break;
		case SCHED_PERMFAIL:
			act = DSN_ACTION_FAILED;
			kind = 0;
			break;
		default:
			keep[i] = true;
			kind = warn ? 1 : -1;
			break;
		}
		sched_fill_dsn(d, r, act, now);
		if (act == DSN_ACTION_DELAYED)
			d->retry_until = a->env.created +
			    (time_t)cfg->max_lifetime;
		if (kind >= 0 && dsn_should_notify(a->env.from, d->notify,
		    act)) {
			sched_report_add(by_kind, kind, d);
		}
	}
	if (warn)
		a->env.delay_notified = true;
	queue_envelope_filter(&a->env, keep);
	free(keep);
	if (counts) {
		a->env.attempts++;
		a->env.next_attempt = now + (time_t)sched_backoff(cfg,
		    a->env.attempts);
	}
	a->remove = a->env.rcpts.n == 0;
	for (int k = 0; k < 3; k++) {
		struct sched_report *r = by_kind[k];
		if (r == NULL)
			continue;
		if (!report_route(a->sc->db, a->sc->cfg->data_dir,
		    a->env.from, &r->dest)) {
			log_warnx("event=dsn id=%s error=\"sender <%s> is not "
			    "a user here\"", a->env.id, a->env.from);
			sched_reports_free(r);
			continue;
		}
		r->next = a->reports;
		a->reports = r;
	}
}

/* Pool: writes one report and delivers or queues it. */
static void
sched_report_write(struct sched_attempt *a, struct sched_report *r)
{
	struct dsn_report rep = {
		.reporting_mta = a->hostname,
		.sender = a->env.from,
		.envid = a->env.envid,
		.ret = a->env.ret,
		.arrival = a->env.created,
		.queue_id = a->env.id,
		.smtputf8 = a->env.smtputf8,
		.rcpts = r->rcpts,
		.nrcpts = r->n,
	};
	report_store(a->data_dir, a->env.id, &rep, a->msg_path, &r->dest);
}

static void
sched_finish_work(void *arg)
{
	struct sched_attempt *a = arg;

	for (struct sched_report *r = a->reports; r; r = r->next)
		sched_report_write(a, r);
	int rc = a->remove ? queue_delete(a->data_dir, a->env.id) :
	    queue_update(a->data_dir, &a->env);
	a->update_error = rc < 0 ? errno : 0;
}

static void
sched_finish_done(void *arg)
{
	struct sched_attempt *a = arg;
	bool queued = false;

	a->pool_pending = false;
	for (struct sched_report *r = a->reports; r; r = r->next) {
		for (size_t i = 0; i < r->dest.maildirs.n; i++)
			notify_changed(r->dest.maildirs.v[i]);
		queued = queued || r->dest.queued;
	}
	if (a->abandoned) {
		sched_attempt_free(a);
		return;
	}
	if (a->update_error)
		log_warnx("event=delivery id=%s error=\"cannot update the "
		    "envelope: %s\"", a->env.id, strerror(a->update_error));
	a->m->due = a->env.next_attempt;
	a->m->gone = a->remove;
	log_info("event=delivery-end id=%s left=%zu next=%lld", a->env.id,
	    a->env.rcpts.n, a->remove ? 0LL : (long long)a->env.next_attempt);
	sched_attempt_end(a, queued);
}

static void
sched_finish(struct sched_attempt *a)
{
	sched_decide(a);
	a->pool_pending = true;
	pool_submit(sched_finish_work, sched_finish_done, a);
}

void
sched_attempt_abandon_all(struct sched *sc)
{
	while (sc->attempts) {
		struct sched_attempt *a = sc->attempts;
		sc->attempts = a->next;
		a->abandoned = true;
		a->sc = NULL;
		dns_cancel(a->query);
		a->query = NULL;
		tls_policy_cancel(a->policy);
		a->policy = NULL;
		if (a->client) {
			smtp_client_free(a->client);
			a->client = NULL;
		}
		sched_reuse_release(a);
		/* a rider's reuse is let go here: its finished callback does
		 * not run after an abandon */
		if (a->is_ext && a->ext.finished == sched_rider_finished) {
			a->ext.finished = NULL;
			sched_rider_finished(a->ext.arg);
		}
		/* a pool job in flight frees the attempt when it ends */
		if (!a->pool_pending)
			sched_attempt_free(a);
	}
}
