/* Mail routes, addresses and TLSA records through libunbound.
 * Untrusted input: DNS answers (names, addresses, TLSA data) from the
 * network, authenticated only where DNSSEC validated them.
 *
 * libunbound resolves on its own background thread (ub_ctx_async(ctx,
 * 1)); the loop only reads finished answers from ub_fd() with
 * ub_process(), which runs our ub callbacks on the loop thread. Its other
 * mode, a forked process, would inherit every descriptor open at the fork
 * (a connection we close would stay open in the child, its peer waiting
 * for an EOF), and that child's exit reports libunbound's own leaks under
 * LeakSanitizer into our log.
 *
 * Callers' callbacks never run inside ub_process(): a finished query
 * activates its own event, so a callback may free the resolver. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <unbound.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "queue/dns.h"

#define RR_A 1
#define RR_MX 15
#define RR_TXT 16
#define RR_AAAA 28
#define RR_TLSA 52
#define CLASS_IN 1
#define RCODE_NXDOMAIN 3
/* A textual domain name, without the final dot. */
#define NAME_MAX_LEN 253

struct dns_resolver {
	struct event_base *base;
	struct ub_ctx *ub;	/* NULL after its thread failed */
	struct event *ub_ev;
	char *resolver;
	char *trust_anchor;
	unsigned timeout_ms;
	struct dns_query *queries;	/* outstanding, doubly linked */
};

/* One question asked of libunbound for a query. */
struct dns_ask {
	struct dns_ask *next;
	struct dns_query *q;
	int ub_id;
	bool pending;
	int rrtype;
	size_t host;		/* index in q->work for A and AAAA */
};

/* A host while its A and AAAA answers come in. */
struct host_work {
	struct dns_address v6[DNS_MAX_ADDRS];
	struct dns_address v4[DNS_MAX_ADDRS];
	size_t n6, n4;
	unsigned nxdomain;	/* answers that said the name does not exist */
	bool failed;
	bool insecure;
};

enum query_kind { QUERY_ROUTE, QUERY_HOST, QUERY_TLSA, QUERY_TXT };

struct dns_query {
	struct dns_resolver *r;
	struct dns_query *prev, *next;
	enum query_kind kind;
	dns_route_cb *route_cb;
	dns_tlsa_cb *tlsa_cb;
	dns_txt_cb *txt_cb;
	void *arg;
	struct event *ev;	/* the deadline, then the completion */
	bool done;
	unsigned npending;
	struct dns_ask *asks;
	struct dns_route *route;
	struct host_work *work;	/* one per route->hosts entry */
	struct dns_tlsa *tlsa;
	struct dns_txt *txt;
	char *name;		/* what the first question asked */
};

enum answer { ANSWER_DATA, ANSWER_NODATA, ANSWER_NXDOMAIN, ANSWER_FAIL };

static int dns_ub_open(struct dns_resolver *r, const char **error_r);

/* ---- names ------------------------------------------------------------ */

static bool
dns_is_host_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Lower-cased copy of a host name without its final dot, or NULL when it
 * is not letters, digits, '-' and '_' in labels of 1 to 63 octets. */
static char *
dns_normalize_name(const char *name)
{
	size_t n = strlen(name), label = 0;
	char *out;

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n == 0 || n > NAME_MAX_LEN)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (name[i] == '.') {
			if (label == 0)
				return NULL;
			label = 0;
		} else if (!dns_is_host_char((unsigned char)name[i]) ||
		    ++label > 63) {
			return NULL;
		}
	}
	if (label == 0)
		return NULL;
	out = x_strndup(name, n);
	for (char *p = out; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return out;
}

/* Reads the uncompressed wire name of exactly len octets at p into out
 * (NAME_MAX_LEN + 1 bytes) as a lower-case host name, "" for the root.
 * -1 when it is malformed or not a host name. */
static int
dns_wire_name(const uint8_t *p, size_t len, char *out)
{
	size_t i = 0, o = 0;
	char text[NAME_MAX_LEN + 2];

	while (i < len && p[i] != 0) {
		size_t l = p[i++];
		if (l > 63 || i + l > len || o + l + 1 > NAME_MAX_LEN + 1)
			return -1;
		for (size_t k = 0; k < l; k++) {
			if (!dns_is_host_char(p[i + k]))
				return -1;
			text[o++] = (char)p[i + k];
		}
		text[o++] = '.';
		i += l;
	}
	if (i + 1 != len)
		return -1;
	text[o > 0 ? o - 1 : 0] = '\0';
	if (o == 0) {
		out[0] = '\0';
		return 0;
	}
	char *norm = dns_normalize_name(text);
	if (norm == NULL)
		return -1;
	memcpy(out, norm, strlen(norm) + 1);
	x_free(&norm);
	return 0;
}

/* Replaces what logs and DSNs must not carry (control octets, 8-bit). */
static char *
dns_printable(char *s)
{
	for (char *p = s; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
	return s;
}

/* ---- results ---------------------------------------------------------- */

void
dns_route_free(struct dns_route *route)
{
	if (route == NULL)
		return;
	for (size_t i = 0; i < route->nhosts; i++) {
		x_free(&route->hosts[i].name);
		x_free(&route->hosts[i].addrs);
	}
	x_free(&route->hosts);
	x_free(&route->domain);
	x_free(&route->error);
	free(route);
}

void
dns_txt_free(struct dns_txt *txt)
{
	if (txt == NULL)
		return;
	for (size_t i = 0; i < txt->nrecords; i++)
		x_free(&txt->records[i]);
	x_free(&txt->records);
	x_free(&txt->error);
	free(txt);
}

void
dns_tlsa_free(struct dns_tlsa *tlsa)
{
	if (tlsa == NULL)
		return;
	for (size_t i = 0; i < tlsa->nrecords; i++)
		x_free(&tlsa->records[i].data);
	x_free(&tlsa->records);
	x_free(&tlsa->error);
	free(tlsa);
}

bool
dns_status_is_permanent(enum dns_status s)
{
	return s == DNS_NXDOMAIN || s == DNS_NULL_MX || s == DNS_NO_ADDRESS;
}

const char *
dns_status_name(enum dns_status s)
{
	switch (s) {
	case DNS_OK:
		return "ok";
	case DNS_TEMPFAIL:
		return "tempfail";
	case DNS_NXDOMAIN:
		return "nxdomain";
	case DNS_NULL_MX:
		return "null-mx";
	case DNS_NO_ADDRESS:
		return "no-address";
	}
	return "unknown";
}

void
dns_address_sockaddr(const struct dns_address *a, uint16_t port,
    struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		memcpy(&s6->sin6_addr, a->addr, 16);
		*len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		memcpy(&s4->sin_addr, a->addr, 4);
		*len = sizeof(*s4);
	}
}

/* Sets the status and, for the first failure only, the reason. */
static void
dns_route_fail(struct dns_route *route, enum dns_status s, char *why)
{
	route->status = s;
	if (route->error == NULL)
		route->error = dns_printable(why);
	else
		x_free(&why);
}

static void
dns_set_address(struct dns_address *a, int family, const void *bytes)
{
	memset(a, 0, sizeof(*a));
	a->family = family;
	memcpy(a->addr, bytes, family == AF_INET6 ? 16 : 4);
	if (inet_ntop(family, bytes, a->text, sizeof(a->text)) == NULL)
		a->text[0] = '\0';
}

static void
dns_shuffle_addrs(struct dns_address *v, size_t n)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = arc4random_uniform((uint32_t)i);
		struct dns_address t = v[i - 1];
		v[i - 1] = v[j];
		v[j] = t;
	}
}

/* ---- queries ---------------------------------------------------------- */

static void
dns_query_unlink(struct dns_query *q)
{
	if (q->prev != NULL)
		q->prev->next = q->next;
	else if (q->r != NULL)
		q->r->queries = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
}

/* Withdraws the questions still asked: libunbound drops their answers
 * without calling dns_ask_cb, so the asks can be freed now. */
static void
dns_query_cancel_asks(struct dns_query *q)
{
	struct dns_ask *a, *next;

	for (a = q->asks; a != NULL; a = next) {
		next = a->next;
		if (a->pending && q->r->ub != NULL)
			(void)ub_cancel(q->r->ub, a->ub_id);
		free(a);
	}
	q->asks = NULL;
	q->npending = 0;
}

static void
dns_query_free(struct dns_query *q)
{
	dns_query_cancel_asks(q);
	dns_query_unlink(q);
	if (q->ev != NULL)
		event_free(q->ev);
	dns_route_free(q->route);
	dns_tlsa_free(q->tlsa);
	dns_txt_free(q->txt);
	x_free(&q->work);
	x_free(&q->name);
	free(q);
}

/* Schedules the callback on the loop. */
static void
dns_query_finish(struct dns_query *q)
{
	if (q->done)
		return;
	q->done = true;
	dns_query_cancel_asks(q);
	event_del(q->ev);
	event_active(q->ev, EV_TIMEOUT, 0);
}

static void
dns_query_deliver(struct dns_query *q)
{
	struct dns_route *route = q->route;
	struct dns_tlsa *tlsa = q->tlsa;
	struct dns_txt *txt = q->txt;
	dns_route_cb *route_cb = q->route_cb;
	dns_tlsa_cb *tlsa_cb = q->tlsa_cb;
	dns_txt_cb *txt_cb = q->txt_cb;
	void *arg = q->arg;

	q->route = NULL;
	q->tlsa = NULL;
	q->txt = NULL;
	dns_query_free(q);
	/* A failure in the middle leaves hosts without addresses. */
	if (route != NULL && route->status != DNS_OK) {
		for (size_t i = 0; i < route->nhosts; i++) {
			x_free(&route->hosts[i].name);
			x_free(&route->hosts[i].addrs);
		}
		route->nhosts = 0;
	}
	if (tlsa_cb != NULL)
		tlsa_cb(tlsa, arg);
	else if (txt_cb != NULL)
		txt_cb(txt, arg);
	else
		route_cb(route, arg);
}

static void
dns_query_fail(struct dns_query *q, enum dns_status s, char *why)
{
	if (q->tlsa != NULL) {
		q->tlsa->status = s;
		if (q->tlsa->error == NULL)
			q->tlsa->error = dns_printable(why);
		else
			x_free(&why);
	} else if (q->txt != NULL) {
		q->txt->status = s;
		if (q->txt->error == NULL)
			q->txt->error = dns_printable(why);
		else
			x_free(&why);
	} else {
		dns_route_fail(q->route, s, why);
	}
	dns_query_finish(q);
}

static void
dns_query_event(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;

	(void)fd;
	(void)what;
	if (!q->done) {
		/* The deadline: a reason found earlier does not explain it,
		 * and failing activates this event again to deliver. */
		if (q->tlsa != NULL)
			x_free(&q->tlsa->error);
		else if (q->txt != NULL)
			x_free(&q->txt->error);
		else
			x_free(&q->route->error);
		dns_query_fail(q, DNS_TEMPFAIL, x_asprintf("DNS lookup "
		    "for %s timed out", q->name));
		return;
	}
	dns_query_deliver(q);
}

static struct dns_query *
dns_query_new(struct dns_resolver *r, enum query_kind kind, const char *name,
    void *arg)
{
	struct dns_query *q = x_calloc(1, sizeof(*q));
	struct timeval tv;

	q->r = r;
	q->kind = kind;
	q->arg = arg;
	q->name = x_strdup(name);
	q->ev = evtimer_new(r->base, dns_query_event, q);
	if (q->ev == NULL)
		fatalx("dns: evtimer_new failed");
	tv.tv_sec = r->timeout_ms / 1000;
	tv.tv_usec = (r->timeout_ms % 1000) * 1000;
	evtimer_add(q->ev, &tv);
	q->next = r->queries;
	if (r->queries != NULL)
		r->queries->prev = q;
	r->queries = q;
	return q;
}

static void dns_ask_cb(void *arg, int err, struct ub_result *res);

/* Asks name/rrtype for q. -1 with the query failed when libunbound
 * refused the question. */
static int
dns_ask(struct dns_query *q, const char *name, int rrtype, size_t host)
{
	struct dns_ask *a;
	const char *err = NULL;
	int e;

	if (q->r->ub == NULL && dns_ub_open(q->r, &err) < 0) {
		dns_query_fail(q, DNS_TEMPFAIL, x_asprintf("DNS resolver "
		    "unavailable: %s", err));
		return -1;
	}
	a = x_calloc(1, sizeof(*a));
	a->q = q;
	a->rrtype = rrtype;
	a->host = host;
	e = ub_resolve_async(q->r->ub, name, rrtype, CLASS_IN, a, dns_ask_cb,
	    &a->ub_id);
	if (e != 0) {
		free(a);
		dns_query_fail(q, e == UB_SYNTAX ? DNS_NXDOMAIN : DNS_TEMPFAIL,
		    x_asprintf("DNS lookup of %s: %s", name, ub_strerror(e)));
		return -1;
	}
	a->pending = true;
	a->next = q->asks;
	q->asks = a;
	q->npending++;
	return 0;
}

/* ---- answers ---------------------------------------------------------- */

static const char *
dns_type_name(int rrtype)
{
	switch (rrtype) {
	case RR_A:
		return "A";
	case RR_AAAA:
		return "AAAA";
	case RR_MX:
		return "MX";
	case RR_TXT:
		return "TXT";
	default:
		return "TLSA";
	}
}

static const char *
dns_rcode_name(int rcode)
{
	static const char *const names[] = { "NOERROR", "FORMERR",
		"SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED" };

	if (rcode >= 0 && rcode < (int)(sizeof(names) / sizeof(names[0])))
		return names[rcode];
	return "error";
}

/* What an answer says; for ANSWER_FAIL *why_r gets the reason. */
static enum answer
dns_classify(int err, const struct ub_result *res, const char *name,
    int rrtype, char **why_r)
{
	const char *t = dns_type_name(rrtype);

	if (err != 0 || res == NULL) {
		*why_r = x_asprintf("%s lookup of %s failed: %s", t, name,
		    ub_strerror(err));
		return ANSWER_FAIL;
	}
	if (res->bogus) {
		*why_r = x_asprintf("%s lookup of %s: DNSSEC validation "
		    "failed: %s", t, name, res->why_bogus != NULL ?
		    res->why_bogus : "bogus");
		return ANSWER_FAIL;
	}
	if (res->rcode == RCODE_NXDOMAIN)
		return ANSWER_NXDOMAIN;
	if (res->rcode != 0) {
		*why_r = x_asprintf("%s lookup of %s failed: %s", t, name,
		    dns_rcode_name(res->rcode));
		return ANSWER_FAIL;
	}
	return res->havedata ? ANSWER_DATA : ANSWER_NODATA;
}

struct mx_record {
	unsigned pref;
	uint32_t order;		/* random: shuffles equal preferences */
	char name[NAME_MAX_LEN + 1];
};

static int
dns_mx_cmp(const void *a, const void *b)
{
	const struct mx_record *x = a, *y = b;

	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	if (x->order != y->order)
		return x->order < y->order ? -1 : 1;
	return 0;
}

/* Adds a host to the route (and its work slot) unless already there. */
static void
dns_route_add_host(struct dns_query *q, const char *name, unsigned pref)
{
	struct dns_route *route = q->route;

	for (size_t i = 0; i < route->nhosts; i++)
		if (strcmp(route->hosts[i].name, name) == 0)
			return;
	route->hosts = x_reallocarray(route->hosts, route->nhosts + 1,
	    sizeof(*route->hosts));
	q->work = x_reallocarray(q->work, route->nhosts + 1,
	    sizeof(*q->work));
	memset(&route->hosts[route->nhosts], 0, sizeof(*route->hosts));
	memset(&q->work[route->nhosts], 0, sizeof(*q->work));
	route->hosts[route->nhosts].name = x_strdup(name);
	route->hosts[route->nhosts].preference = pref;
	route->nhosts++;
}

/* Asks A and AAAA of every host of the route. */
static void
dns_ask_addresses(struct dns_query *q)
{
	size_t n = q->route->nhosts;

	for (size_t i = 0; i < n; i++) {
		const char *name = q->route->hosts[i].name;
		if (dns_ask(q, name, RR_AAAA, i) < 0 ||
		    dns_ask(q, name, RR_A, i) < 0)
			return;
	}
}

/* The MX records of res in the order to try them; returns how many. */
static size_t
dns_mx_parse(const struct ub_result *res, struct mx_record **out)
{
	size_t n = 0, cap = 0;
	struct mx_record *v = NULL;

	for (size_t i = 0; res->data[i] != NULL; i++) {
		const uint8_t *p = (const uint8_t *)res->data[i];
		size_t len = (size_t)res->len[i];
		if (len < 3)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 4;
			v = x_reallocarray(v, cap, sizeof(*v));
		}
		if (dns_wire_name(p + 2, len - 2, v[n].name) < 0)
			continue;
		v[n].pref = (unsigned)p[0] << 8 | p[1];
		v[n].order = arc4random();
		n++;
	}
	qsort(v, n, sizeof(*v), dns_mx_cmp);
	*out = v;
	return n;
}

static void
dns_on_mx_data(struct dns_query *q, const struct ub_result *res)
{
	struct mx_record *mx;
	size_t n = dns_mx_parse(res, &mx);

	if (n == 1 && mx[0].name[0] == '\0' && mx[0].pref == 0 &&
	    res->data[1] == NULL) {
		x_free(&mx);
		dns_query_fail(q, DNS_NULL_MX, x_asprintf("%s accepts no "
		    "mail (null MX)", q->name));
		return;
	}
	for (size_t i = 0; i < n && q->route->nhosts < DNS_MAX_HOSTS; i++)
		if (mx[i].name[0] != '\0')
			dns_route_add_host(q, mx[i].name, mx[i].pref);
	x_free(&mx);
	if (q->route->nhosts == 0) {
		dns_query_fail(q, DNS_TEMPFAIL, x_asprintf("no usable MX "
		    "host for %s", q->name));
		return;
	}
	dns_ask_addresses(q);
}

static void
dns_on_mx(struct dns_query *q, int err, const struct ub_result *res)
{
	char *why = NULL;

	switch (dns_classify(err, res, q->name, RR_MX, &why)) {
	case ANSWER_FAIL:
		dns_query_fail(q, DNS_TEMPFAIL, why);
		return;
	case ANSWER_NXDOMAIN:
		dns_query_fail(q, DNS_NXDOMAIN, x_asprintf("%s: no such "
		    "domain", q->name));
		return;
	case ANSWER_NODATA:
		q->route->mx_secure = res->secure;
		q->route->implicit_mx = true;
		dns_route_add_host(q, q->name, 0);
		dns_ask_addresses(q);
		return;
	case ANSWER_DATA:
		q->route->mx_secure = res->secure;
		dns_on_mx_data(q, res);
		return;
	}
}

static void
dns_on_address(struct dns_query *q, const struct dns_ask *a, int err,
    const struct ub_result *res)
{
	struct host_work *w = &q->work[a->host];
	const char *name = q->route->hosts[a->host].name;
	char *why = NULL;
	bool v6 = a->rrtype == RR_AAAA;
	size_t want = v6 ? 16 : 4;

	switch (dns_classify(err, res, name, a->rrtype, &why)) {
	case ANSWER_FAIL:
		w->failed = true;
		dns_route_fail(q->route, DNS_TEMPFAIL, why);
		return;
	case ANSWER_NXDOMAIN:
		w->nxdomain++;
		break;
	case ANSWER_NODATA:
		break;
	case ANSWER_DATA:
		for (size_t i = 0; res->data[i] != NULL; i++) {
			size_t *n = v6 ? &w->n6 : &w->n4;
			if ((size_t)res->len[i] != want || *n == DNS_MAX_ADDRS)
				continue;
			dns_set_address(v6 ? &w->v6[*n] : &w->v4[*n],
			    v6 ? AF_INET6 : AF_INET, res->data[i]);
			(*n)++;
		}
		break;
	}
	if (!res->secure)
		w->insecure = true;
}

/* Moves the addresses of work w into host h: IPv6 and IPv4 alternating,
 * so a host whose IPv6 path is broken costs one try, not all. */
static void
dns_host_take(struct dns_host *h, struct host_work *w)
{
	size_t i6 = 0, i4 = 0;

	dns_shuffle_addrs(w->v6, w->n6);
	dns_shuffle_addrs(w->v4, w->n4);
	h->addrs = x_reallocarray(NULL, DNS_MAX_ADDRS, sizeof(*h->addrs));
	h->naddrs = 0;
	while (h->naddrs < DNS_MAX_ADDRS && (i6 < w->n6 || i4 < w->n4)) {
		if (i6 < w->n6)
			h->addrs[h->naddrs++] = w->v6[i6++];
		if (i4 < w->n4 && h->naddrs < DNS_MAX_ADDRS)
			h->addrs[h->naddrs++] = w->v4[i4++];
	}
	h->secure = !w->insecure && !w->failed;
}

/* Why no host has an address, once every answer is in. */
static void
dns_route_no_hosts(struct dns_query *q)
{
	struct dns_route *route = q->route;
	const struct host_work *w = &q->work[0];

	if (route->error != NULL) {
		route->status = DNS_TEMPFAIL;
	} else if (route->implicit_mx && q->kind == QUERY_HOST &&
	    w->nxdomain == 2) {
		dns_route_fail(route, DNS_NXDOMAIN, x_asprintf("%s: no such "
		    "host", q->name));
	} else if (route->implicit_mx) {
		dns_route_fail(route, DNS_NO_ADDRESS, x_asprintf("%s has no "
		    "MX and no address record", q->name));
	} else {
		dns_route_fail(route, DNS_TEMPFAIL, x_asprintf("no MX host "
		    "of %s has an address", q->name));
	}
}

/* Every A and AAAA answer is in: keeps the hosts that have addresses. */
static void
dns_route_complete(struct dns_query *q)
{
	struct dns_route *route = q->route;
	size_t kept = 0;

	for (size_t i = 0; i < route->nhosts; i++) {
		struct dns_host *h = &route->hosts[i];
		if (q->work[i].n6 + q->work[i].n4 == 0) {
			x_free(&h->name);
			continue;
		}
		dns_host_take(h, &q->work[i]);
		route->hosts[kept++] = *h;
	}
	route->nhosts = kept;
	if (kept == 0) {
		dns_route_no_hosts(q);
	} else {
		/* Some hosts failed, others will be tried: not an error. */
		route->status = DNS_OK;
		x_free(&route->error);
	}
	dns_query_finish(q);
}

static void
dns_on_tlsa(struct dns_query *q, int err, const struct ub_result *res)
{
	struct dns_tlsa *t = q->tlsa;
	char *why = NULL;
	enum answer ans = dns_classify(err, res, q->name, RR_TLSA, &why);

	if (ans == ANSWER_FAIL) {
		dns_query_fail(q, DNS_TEMPFAIL, why);
		return;
	}
	t->status = DNS_OK;
	t->secure = res->secure;
	for (size_t i = 0; ans == ANSWER_DATA && res->data[i] != NULL; i++) {
		const uint8_t *p = (const uint8_t *)res->data[i];
		size_t len = (size_t)res->len[i];
		struct dns_tlsa_record *rec;
		if (len < 3)
			continue;
		t->records = x_reallocarray(t->records, t->nrecords + 1,
		    sizeof(*t->records));
		rec = &t->records[t->nrecords++];
		rec->usage = p[0];
		rec->selector = p[1];
		rec->mtype = p[2];
		rec->len = len - 3;
		rec->data = x_malloc(rec->len > 0 ? rec->len : 1);
		memcpy(rec->data, p + 3, rec->len);
	}
	dns_query_finish(q);
}

/* One TXT record: its character-strings joined, as text. NULL when the
 * RDATA is malformed or holds a NUL octet. */
static char *
dns_txt_record(const uint8_t *p, size_t len)
{
	char *out = x_malloc(len + 1);
	size_t i = 0, o = 0;

	while (i < len) {
		size_t l = p[i++];
		if (i + l > len || memchr(p + i, '\0', l) != NULL) {
			x_free(&out);
			return NULL;
		}
		memcpy(out + o, p + i, l);
		o += l;
		i += l;
	}
	out[o] = '\0';
	return out;
}

static void
dns_on_txt(struct dns_query *q, int err, const struct ub_result *res)
{
	struct dns_txt *t = q->txt;
	char *why = NULL;
	enum answer ans = dns_classify(err, res, q->name, RR_TXT, &why);

	if (ans == ANSWER_FAIL) {
		dns_query_fail(q, DNS_TEMPFAIL, why);
		return;
	}
	t->status = ans == ANSWER_NXDOMAIN ? DNS_NXDOMAIN : DNS_OK;
	t->secure = res->secure;
	for (size_t i = 0; ans == ANSWER_DATA && res->data[i] != NULL &&
	    t->nrecords < DNS_MAX_TXT; i++) {
		char *rec = dns_txt_record((const uint8_t *)res->data[i],
		    (size_t)res->len[i]);
		if (rec == NULL)
			continue;
		t->records = x_reallocarray(t->records, t->nrecords + 1,
		    sizeof(*t->records));
		t->records[t->nrecords++] = rec;
	}
	dns_query_finish(q);
}

static void
dns_ask_cb(void *arg, int err, struct ub_result *res)
{
	struct dns_ask *a = arg;
	struct dns_query *q = a->q;

	a->pending = false;
	q->npending--;
	if (!q->done) {
		if (a->rrtype == RR_MX)
			dns_on_mx(q, err, res);
		else if (a->rrtype == RR_TLSA)
			dns_on_tlsa(q, err, res);
		else if (a->rrtype == RR_TXT)
			dns_on_txt(q, err, res);
		else
			dns_on_address(q, a, err, res);
		if (!q->done && q->npending == 0 && q->route != NULL)
			dns_route_complete(q);
	}
	ub_resolve_free(res);
}

/* ---- lookups ---------------------------------------------------------- */

/* "[192.0.2.1]" or "[IPv6:2001:db8::1]": 1 and the route filled, 0 when
 * domain is not in brackets, -1 (route failed) for a bad literal. */
static int
dns_literal(struct dns_query *q, const char *domain)
{
	size_t n = strlen(domain);
	uint8_t bytes[16];
	char text[64];
	int family = AF_INET;
	const char *p = domain + 1;

	if (n < 2 || domain[0] != '[')
		return 0;
	if (domain[n - 1] != ']' || n - 2 >= sizeof(text))
		goto bad;
	if (strncasecmp(p, "IPv6:", 5) == 0) {
		family = AF_INET6;
		p += 5;
	}
	memcpy(text, p, (size_t)(domain + n - 1 - p));
	text[domain + n - 1 - p] = '\0';
	if (inet_pton(family, text, bytes) != 1)
		goto bad;
	q->route->literal = true;
	dns_route_add_host(q, text, 0);
	q->route->hosts[0].addrs = x_malloc(sizeof(struct dns_address));
	dns_set_address(&q->route->hosts[0].addrs[0], family, bytes);
	q->route->hosts[0].naddrs = 1;
	q->route->status = DNS_OK;
	return 1;
bad:
	dns_route_fail(q->route, DNS_NXDOMAIN, x_asprintf("invalid address "
	    "literal %s", domain));
	return -1;
}

static struct dns_query *
dns_start_route(struct dns_resolver *r, const char *domain, dns_route_cb *cb,
    void *arg, enum query_kind kind)
{
	char *name = dns_normalize_name(domain);
	struct dns_query *q = dns_query_new(r, kind,
	    name != NULL ? name : domain, arg);

	q->route_cb = cb;
	q->route = x_calloc(1, sizeof(*q->route));
	q->route->domain = x_strdup(q->name);
	q->route->status = DNS_TEMPFAIL;
	if (dns_literal(q, domain) != 0) {
		dns_query_finish(q);
	} else if (name == NULL) {
		dns_query_fail(q, DNS_NXDOMAIN, dns_printable(x_asprintf(
		    "invalid domain name %s", domain)));
	} else if (kind == QUERY_ROUTE) {
		(void)dns_ask(q, name, RR_MX, 0);
	} else {
		q->route->implicit_mx = true;
		dns_route_add_host(q, name, 0);
		dns_ask_addresses(q);
	}
	x_free(&name);
	return q;
}

struct dns_query *
dns_route_lookup(struct dns_resolver *r, const char *domain, dns_route_cb *cb,
    void *arg)
{
	return dns_start_route(r, domain, cb, arg, QUERY_ROUTE);
}

struct dns_query *
dns_host_lookup(struct dns_resolver *r, const char *host, dns_route_cb *cb,
    void *arg)
{
	return dns_start_route(r, host, cb, arg, QUERY_HOST);
}

struct dns_query *
dns_tlsa_lookup(struct dns_resolver *r, const char *host, uint16_t port,
    dns_tlsa_cb *cb, void *arg)
{
	char *name = dns_normalize_name(host);
	char *qname = x_asprintf("_%u._tcp.%s", (unsigned)port,
	    name != NULL ? name : host);
	struct dns_query *q = dns_query_new(r, QUERY_TLSA, qname, arg);

	q->tlsa_cb = cb;
	q->tlsa = x_calloc(1, sizeof(*q->tlsa));
	q->tlsa->status = DNS_TEMPFAIL;
	if (name == NULL || strlen(qname) > NAME_MAX_LEN)
		dns_query_fail(q, DNS_TEMPFAIL, dns_printable(x_asprintf(
		    "invalid host name %s", host)));
	else
		(void)dns_ask(q, qname, RR_TLSA, 0);
	x_free(&name);
	x_free(&qname);
	return q;
}

struct dns_query *
dns_txt_lookup(struct dns_resolver *r, const char *name, dns_txt_cb *cb,
    void *arg)
{
	char *norm = dns_normalize_name(name);
	struct dns_query *q = dns_query_new(r, QUERY_TXT,
	    norm != NULL ? norm : name, arg);

	q->txt_cb = cb;
	q->txt = x_calloc(1, sizeof(*q->txt));
	q->txt->status = DNS_TEMPFAIL;
	if (norm == NULL)
		dns_query_fail(q, DNS_NXDOMAIN, dns_printable(x_asprintf(
		    "invalid domain name %s", name)));
	else
		(void)dns_ask(q, norm, RR_TXT, 0);
	x_free(&norm);
	return q;
}

void
dns_cancel(struct dns_query *q)
{
	if (q != NULL)
		dns_query_free(q);
}

/* ---- the resolver ----------------------------------------------------- */

/* Fails every outstanding query: libunbound's thread is gone. */
static void
dns_ub_lost(struct dns_resolver *r, const char *why)
{
	log_warnx("event=dns-error error=\"%s\"", why);
	event_free(r->ub_ev);
	r->ub_ev = NULL;
	for (struct dns_query *q = r->queries; q != NULL; q = q->next) {
		if (q->done)
			continue;
		for (struct dns_ask *a = q->asks; a != NULL; a = a->next)
			a->pending = false;
		dns_query_fail(q, DNS_TEMPFAIL, x_asprintf("DNS resolver "
		    "failed: %s", why));
	}
	ub_ctx_delete(r->ub);
	r->ub = NULL;
}

static void
dns_ub_readable(evutil_socket_t fd, short what, void *arg)
{
	struct dns_resolver *r = arg;
	int e;

	(void)fd;
	(void)what;
	e = ub_process(r->ub);
	if (e != 0)
		dns_ub_lost(r, ub_strerror(e));
}

/* Forwarders "ADDR[@PORT]" separated by commas or blanks; names under
 * .test are then theirs to answer. */
static int
dns_ub_forwarders(struct ub_ctx *ub, const char *list, const char **error_r)
{
	char *copy = x_strdup(list), *save = NULL, *tok;
	int n = 0, rc = 0;

	for (tok = strtok_r(copy, ", \t", &save); tok != NULL && rc == 0;
	    tok = strtok_r(NULL, ", \t", &save)) {
		if (ub_ctx_set_fwd(ub, tok) != 0) {
			*error_r = "invalid [delivery] resolver address";
			rc = -1;
		}
		n++;
	}
	x_free(&copy);
	if (rc == 0 && n == 0) {
		*error_r = "invalid [delivery] resolver address";
		rc = -1;
	}
	/* libunbound answers the reserved .test TLD itself (NXDOMAIN); an
	 * empty transparent zone passes its names on ("nodefault" is not
	 * honoured through ub_ctx_set_option). */
	if (rc == 0 && ub_ctx_set_option(ub, "local-zone:",
	    "test. transparent") != 0) {
		*error_r = "cannot configure the test. zone";
		rc = -1;
	}
	return rc;
}

static int
dns_ub_configure(struct dns_resolver *r, struct ub_ctx *ub,
    const char **error_r)
{
	const char *ta = r->trust_anchor;

	if (ub_ctx_async(ub, 1) != 0) {
		*error_r = "cannot configure libunbound";
		return -1;
	}
	if (r->resolver[0] != '\0') {
		if (dns_ub_forwarders(ub, r->resolver, error_r) < 0)
			return -1;
	} else {
		int e = ub_ctx_resolvconf(ub, NULL);
		if (e != 0)
			log_warnx("event=dns-config error=\"/etc/resolv.conf: "
			    "%s\" action=recursive", ub_strerror(e));
		if (ta == NULL && access(DNS_ROOT_ANCHOR_FILE, R_OK) == 0)
			ta = DNS_ROOT_ANCHOR_FILE;
		if (ta == NULL)
			log_info("event=dns-config dnssec=off reason=\"no "
			    "trust anchor %s\"", DNS_ROOT_ANCHOR_FILE);
	}
	if (ta != NULL && ub_ctx_add_ta_file(ub, ta) != 0) {
		*error_r = "cannot use the DNSSEC trust anchor file";
		return -1;
	}
	return 0;
}

static void
dns_ub_noop(void *arg, int err, struct ub_result *res)
{
	(void)arg;
	(void)err;
	ub_resolve_free(res);
}

/* Makes the libunbound context and starts its thread with a question
 * cancelled at once: that also reads the trust anchor, so a bad file
 * shows here rather than at the first delivery. */
static int
dns_ub_open(struct dns_resolver *r, const char **error_r)
{
	struct ub_ctx *ub = ub_ctx_create();
	int id, e;

	if (ub == NULL) {
		*error_r = "cannot create a libunbound context";
		return -1;
	}
	if (dns_ub_configure(r, ub, error_r) < 0) {
		ub_ctx_delete(ub);
		return -1;
	}
	e = ub_resolve_async(ub, "localhost.", RR_A, CLASS_IN, NULL,
	    dns_ub_noop, &id);
	if (e != 0) {
		*error_r = ub_strerror(e);
		ub_ctx_delete(ub);
		return -1;
	}
	(void)ub_cancel(ub, id);
	r->ub_ev = event_new(r->base, ub_fd(ub), EV_READ | EV_PERSIST,
	    dns_ub_readable, r);
	if (r->ub_ev == NULL || event_add(r->ub_ev, NULL) < 0)
		fatalx("dns: cannot watch the libunbound descriptor");
	r->ub = ub;
	return 0;
}

struct dns_resolver *
dns_resolver_new(struct event_base *base, const struct dns_config *cfg,
    const char **error_r)
{
	struct dns_resolver *r = x_calloc(1, sizeof(*r));

	r->base = base;
	r->resolver = x_strdup(cfg->resolver != NULL ? cfg->resolver : "");
	r->trust_anchor = cfg->trust_anchor != NULL ?
	    x_strdup(cfg->trust_anchor) : NULL;
	r->timeout_ms = cfg->timeout_ms != 0 ? cfg->timeout_ms :
	    DNS_DEFAULT_TIMEOUT_MS;
	if (dns_ub_open(r, error_r) < 0) {
		x_free(&r->resolver);
		x_free(&r->trust_anchor);
		free(r);
		return NULL;
	}
	return r;
}

void
dns_resolver_free(struct dns_resolver *r)
{
	if (r == NULL)
		return;
	while (r->queries != NULL)
		dns_query_free(r->queries);
	if (r->ub_ev != NULL)
		event_free(r->ub_ev);
	ub_ctx_delete(r->ub);
	x_free(&r->resolver);
	x_free(&r->trust_anchor);
	free(r);
}
