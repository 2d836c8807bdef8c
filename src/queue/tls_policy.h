/* The TLS policy of one outbound SMTP connection: for one MX host of one
 * recipient domain, the smtp_client TLS mode and the TLSA records to use.
 *
 *   DANE (RFC 7672): when the host's address records and the MX answer
 *     (or the implicit MX) were DNSSEC-validated, its TLSA records
 *     (_PORT._tcp.HOST) are asked: secure usable ones (usages 2 and 3)
 *     mean SMTP_CLIENT_TLS_VERIFY with them; secure records that are all
 *     unusable mean SMTP_CLIENT_TLS_ENCRYPT; a lookup failure or a bogus
 *     answer makes the host unusable (RFC 7672 2.2: try the next one); an
 *     insecure answer or a secure denial means no DANE.
 *   MTA-STS (RFC 8461): without DANE, when the recipient domain publishes
 *     "_mta-sts" TXT and a policy: mode enforce allows only MX hosts that
 *     match the policy, with SMTP_CLIENT_TLS_VERIFY (PKIX and the host
 *     name); testing and none change nothing but the log. Policies are
 *     cached in memory per domain for their max_age; a fetch that failed
 *     is not tried again for the same id for a minute.
 *   Otherwise opportunistic STARTTLS (RFC 7435).
 *
 * Each decision is logged as one line "event=tls-policy" with the queue
 * id, domain, host, policy (dane, mta-sts, opportunistic), the TLS mode
 * and the result. Everything runs on the event loop (net_init's base;
 * core/timer.h must have it too). */
#ifndef QUEUE_TLS_POLICY_H
#define QUEUE_TLS_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"
#include "net/conn.h"
#include "queue/dns.h"
#include "queue/smtp_client.h"

enum tls_policy_source {
	TLS_POLICY_OPPORTUNISTIC,
	TLS_POLICY_DANE,
	TLS_POLICY_MTA_STS
};

struct tls_policy_request {
	const char *queue_id;		/* for logs, or NULL */
	const char *domain;		/* the recipient domain for MTA-STS;
					 * NULL: none (a relayhost) */
	const struct dns_route *route;	/* status DNS_OK */
	size_t host;			/* the host: route->hosts[host] */
	unsigned port;			/* the SMTP port (the TLSA name) */
};

struct tls_policy {
	enum tls_policy_source source;
	bool usable;			/* false: do not connect to this
					 * host; a temporary failure */
	enum smtp_client_tls tls;
	struct conn_tlsa *tlsa;		/* DANE records for TLS_VERIFY
					 * (their data is owned too) */
	size_t ntlsa;
	char *error;			/* when not usable: why, printable */
};

typedef void tls_policy_cb(struct tls_policy *p, void *arg);
struct tls_policy_query;

/* Decides the policy for req (everything in it is copied). cfg gives
 * [delivery] mta_sts_port and tls_ca_file (the extra CAs outbound TLS
 * trusts, loaded into net/tls.h's client context when it changed). cb
 * gets the policy (free it with tls_policy_free) exactly once, from the
 * loop and never from inside this call, unless the query is cancelled
 * first; its handle is gone when cb runs. Never NULL. */
struct tls_policy_query *tls_policy_lookup(struct dns_resolver *r,
    const struct config *cfg, const struct tls_policy_request *req,
    tls_policy_cb *cb, void *arg);

/* Abandons a lookup whose callback has not run: it never will. NULL is
 * accepted. */
void tls_policy_cancel(struct tls_policy_query *q);

void tls_policy_free(struct tls_policy *p);

/* "opportunistic", "dane", "mta-sts". */
const char *tls_policy_source_name(enum tls_policy_source s);

/* Forgets every cached MTA-STS policy (shutdown, tests). */
void tls_policy_cache_clear(void);

#endif
