/* DNS for outbound delivery: mail routes (MX, RFC 5321 section 5.1, null
 * MX of RFC 7505), host addresses, TLSA and TXT records, asked asynchronously of
 * a DNSSEC-validating libunbound on the event loop.
 *
 * Every lookup returns a handle at once and calls its callback exactly
 * once, later, from the event loop (never from inside the call that
 * started it), unless it is cancelled first. A callback may start new
 * lookups, cancel others, or free the resolver. */
#ifndef QUEUE_DNS_H
#define QUEUE_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct dns_resolver;
struct dns_query;

/* Per lookup, when dns_config.timeout_ms is 0. */
#define DNS_DEFAULT_TIMEOUT_MS 30000u
/* The trust anchor used with the system's resolver when it exists
 * (Debian's dns-root-data). */
#define DNS_ROOT_ANCHOR_FILE "/usr/share/dns/root.key"
/* At most this many hosts in a route (lowest preferences kept), and
 * addresses per host: a hostile zone cannot make us try thousands. */
#define DNS_MAX_HOSTS 16
#define DNS_MAX_ADDRS 16
/* At most this many TXT records of one name are kept. */
#define DNS_MAX_TXT 16

struct dns_config {
	/* [delivery] resolver. NULL or "": the system's (/etc/resolv.conf),
	 * validating with DNS_ROOT_ANCHOR_FILE when that file exists.
	 * Otherwise forwarders "ADDR" or "ADDR@PORT" (IPv4 or IPv6, port
	 * 53 by default), several separated by commas or spaces: names
	 * under the reserved .test TLD are then asked of them too, and
	 * without trust_anchor nothing is validated (insecure, never
	 * bogus). */
	const char *resolver;
	/* A file of DS or DNSKEY records (zone file format) to validate
	 * with, in both modes, instead of the default above; NULL: none. */
	const char *trust_anchor;
	/* Whole-lookup deadline in milliseconds; 0: the default. */
	unsigned timeout_ms;
};

enum dns_status {
	DNS_OK = 0,		/* hosts with addresses (TLSA: see there) */
	DNS_TEMPFAIL,		/* SERVFAIL, timeout, DNSSEC bogus, no MX host
				 * with an address: try again later */
	DNS_NXDOMAIN,		/* permanent: no such domain, or not a valid
				 * domain name */
	DNS_NULL_MX,		/* permanent: the domain accepts no mail
				 * (RFC 7505) */
	DNS_NO_ADDRESS,		/* permanent: the domain exists but has
				 * neither MX nor A/AAAA */
};

struct dns_address {
	int family;		/* AF_INET6 or AF_INET */
	uint8_t addr[16];	/* network order; 4 bytes used for AF_INET */
	char text[46];		/* "192.0.2.1", "2001:db8::1" */
};

struct dns_host {
	char *name;		/* lower case, no final dot; for an address
				 * literal its text without brackets */
	unsigned preference;	/* MX preference; 0 for implicit MX */
	bool secure;		/* its A and AAAA answers were DNSSEC-
				 * validated (RFC 7672 section 2.2.2) */
	/* IPv6 and IPv4 alternating, starting with IPv6, each family in
	 * random order: try them in this order. Never empty. */
	struct dns_address *addrs;
	size_t naddrs;
};

struct dns_route {
	enum dns_status status;
	char *domain;		/* as asked: lower case, no final dot (an
				 * address literal or invalid name as given) */
	bool implicit_mx;	/* no MX records: the domain is the host */
	bool literal;		/* "[192.0.2.1]", resolved without DNS */
	bool mx_secure;		/* the MX answer (records or their absence)
				 * was DNSSEC-validated */
	/* Status DNS_OK: the hosts to try in this order (preference
	 * ascending, equal preferences shuffled), each with at least one
	 * address; hosts without any were left out. Otherwise empty. */
	struct dns_host *hosts;
	size_t nhosts;
	char *error;		/* why, for logs and DSNs, when not DNS_OK;
				 * printable ASCII; else NULL */
};

struct dns_tlsa_record {
	uint8_t usage;
	uint8_t selector;
	uint8_t mtype;
	uint8_t *data;		/* certificate association data */
	size_t len;
};

struct dns_tlsa {
	/* DNS_OK: the answer is in records (none for NXDOMAIN or no
	 * data); DNS_TEMPFAIL: the lookup failed or was bogus, which DANE
	 * must treat as an unusable host (RFC 7672 section 2.2). */
	enum dns_status status;
	bool secure;		/* the answer (or the denial) was validated;
				 * only secure records may be used */
	struct dns_tlsa_record *records;
	size_t nrecords;
	char *error;		/* when DNS_TEMPFAIL */
};

struct dns_txt {
	/* DNS_OK: the records (none for no data); DNS_NXDOMAIN: no such
	 * name; DNS_TEMPFAIL: the lookup failed or was bogus. */
	enum dns_status status;
	bool secure;		/* the answer (or the denial) was validated */
	/* Each record's character-strings joined, NUL-terminated (records
	 * holding a NUL octet or malformed are left out); at most
	 * DNS_MAX_TXT, in the order of the answer. */
	char **records;
	size_t nrecords;
	char *error;		/* when DNS_TEMPFAIL; printable ASCII */
};

/* Callbacks own what they are given: free it with dns_route_free(),
 * dns_tlsa_free() or dns_txt_free(). When a callback runs, its query
 * handle is gone. */
typedef void dns_route_cb(struct dns_route *route, void *arg);
typedef void dns_tlsa_cb(struct dns_tlsa *tlsa, void *arg);
typedef void dns_txt_cb(struct dns_txt *txt, void *arg);

/* A resolver whose answers come back on base. NULL with *error_r (a
 * static string) when the configuration is not usable. */
struct dns_resolver *dns_resolver_new(struct event_base *base,
    const struct dns_config *cfg, const char **error_r);
/* Drops every outstanding lookup without calling its callback, stops
 * libunbound's background thread and frees the resolver. NULL is
 * accepted; so is a call from a dns callback. */
void dns_resolver_free(struct dns_resolver *r);

/* The mail route of domain ("example.org", "[192.0.2.1]",
 * "[IPv6:2001:db8::1]"). A name that is not ASCII letters, digits, '-'
 * and '_' in labels (so also a UTF-8 name: no IDNA conversion yet) is
 * DNS_NXDOMAIN "invalid domain name". Never NULL. */
struct dns_query *dns_route_lookup(struct dns_resolver *r,
    const char *domain, dns_route_cb *cb, void *arg);
/* The addresses of one host without MX lookup (a relayhost): a route
 * with one host and implicit_mx set; DNS_NO_ADDRESS when the name exists
 * without A/AAAA. Address literals in brackets work as above. */
struct dns_query *dns_host_lookup(struct dns_resolver *r, const char *host,
    dns_route_cb *cb, void *arg);
/* The TLSA records of "_PORT._tcp.HOST". Never NULL. */
struct dns_query *dns_tlsa_lookup(struct dns_resolver *r, const char *host,
    uint16_t port, dns_tlsa_cb *cb, void *arg);

/* The TXT records of name (e.g. "_mta-sts.example.org"; letters,
 * digits, '-' and '_' in labels, else DNS_NXDOMAIN). Never NULL. */
struct dns_query *dns_txt_lookup(struct dns_resolver *r, const char *name,
    dns_txt_cb *cb, void *arg);

/* Cancels a lookup whose callback has not run yet: it never will. NULL
 * is accepted. */
void dns_cancel(struct dns_query *q);

void dns_route_free(struct dns_route *route);
void dns_tlsa_free(struct dns_tlsa *tlsa);
void dns_txt_free(struct dns_txt *txt);

/* True for the statuses that mean "bounce now". */
bool dns_status_is_permanent(enum dns_status s);
/* "ok", "tempfail", "nxdomain", "null-mx", "no-address" for logs. */
const char *dns_status_name(enum dns_status s);
/* Fills *ss and *len with a, port (host order). */
void dns_address_sockaddr(const struct dns_address *a, uint16_t port,
    struct sockaddr_storage *ss, socklen_t *len);

#endif
