/* MTA-STS (RFC 8461): the "_mta-sts" TXT record, the policy file, the
 * matching of MX host names against its patterns, and the HTTPS fetch of
 * https://mta-sts.DOMAIN/.well-known/mta-sts.txt on the event loop.
 *
 * The parsers are pure functions; the fetch runs on net/'s event loop
 * (net_init's base; core/timer.h must have it too) through the conn API
 * and the outbound TLS client context (net/tls.h: its trust anchors are
 * the ones the certificate is verified against). */
#ifndef QUEUE_MTA_STS_H
#define QUEUE_MTA_STS_H

#include <stdbool.h>
#include <stddef.h>

struct dns_resolver;

/* The largest policy file accepted (RFC 8461 3.3 suggests 64 KB). */
#define MTA_STS_MAX_POLICY 65536
/* At most this many mx patterns in one policy. */
#define MTA_STS_MAX_MX 64
/* max_age is capped here (RFC 8461 3.2: about one year). */
#define MTA_STS_MAX_AGE 31557600u
/* The policy id of a TXT record: 1 to 32 letters and digits. */
#define MTA_STS_ID_MAX 32
/* The whole fetch (lookup, connect, TLS, reply) gives up after this. */
#define MTA_STS_FETCH_TIMEOUT_MS 15000u

enum mta_sts_mode {
	MTA_STS_NONE,
	MTA_STS_TESTING,
	MTA_STS_ENFORCE
};

struct mta_sts_policy {
	enum mta_sts_mode mode;
	unsigned max_age;	/* seconds, at most MTA_STS_MAX_AGE */
	char **mx;		/* lower case, "mail.example.org" or
				 * "*.example.org"; at least one unless mode
				 * is none */
	size_t nmx;
};

/* Reads one TXT record "v=STSv1; id=...;" (RFC 8461 3.1) and copies its
 * id into id. 0, or -1 when the record does not start with "v=STSv1",
 * is malformed or has no id. */
int mta_sts_parse_txt(const char *record, char id[MTA_STS_ID_MAX + 1]);

/* The policy id of a name's TXT records: records that do not start with
 * "v=STSv1" are ignored; exactly one must remain, and be valid. 0 with
 * id, or -1 (no usable record). */
int mta_sts_txt_id(char *const *records, size_t n,
    char id[MTA_STS_ID_MAX + 1]);

/* Parses a policy file of len octets (RFC 8461 3.2: "key: value" lines
 * ended by LF or CRLF; empty lines are skipped, unknown keys ignored;
 * version STSv1, mode and max_age exactly once each, mx patterns unless
 * mode is none). 0 with *p filled (free it with mta_sts_policy_free), or
 * -1 with *error_r (a static text) and *p empty. */
int mta_sts_parse_policy(const char *text, size_t len,
    struct mta_sts_policy *p, const char **error_r);

void mta_sts_policy_free(struct mta_sts_policy *p);
/* A deep copy of p into *out. */
void mta_sts_policy_copy(struct mta_sts_policy *out,
    const struct mta_sts_policy *p);

/* True when host (an MX name, any case, no final dot) matches one of the
 * policy's patterns: equal, or "*.REST" with host one label longer. */
bool mta_sts_mx_matches(const struct mta_sts_policy *p, const char *host);

/* "none", "testing", "enforce". */
const char *mta_sts_mode_name(enum mta_sts_mode m);

/* ---- fetch ---- */

struct mta_sts_fetch;

/* The end of a fetch: policy (owned by the callee: mta_sts_policy_free
 * and free it) or NULL and error saying why (valid during the call). */
typedef void mta_sts_fetch_cb(struct mta_sts_policy *policy,
    const char *error, void *arg);

/* Fetches and parses the policy of domain (lower case, no final dot):
 * looks up the addresses of mta-sts.DOMAIN with r, connects to port,
 * verifies the certificate (PKIX and the name mta-sts.DOMAIN) and asks
 * for /.well-known/mta-sts.txt. Only a 200 reply of type text/plain with
 * at most MTA_STS_MAX_POLICY octets and a valid policy succeeds;
 * redirects are not followed. cb is called exactly once, from the loop
 * and never from inside this call, unless the fetch is cancelled first.
 * Never NULL. */
struct mta_sts_fetch *mta_sts_fetch_start(struct dns_resolver *r,
    const char *domain, unsigned port, mta_sts_fetch_cb *cb, void *arg);

/* Abandons a fetch whose callback has not run: it never will. NULL is
 * accepted. */
void mta_sts_fetch_cancel(struct mta_sts_fetch *f);

#endif
