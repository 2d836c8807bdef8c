/* The configuration: an INI file (inih) or the embedded default.
 * Untrusted input: none (the file belongs to the operator). */
#ifndef CORE_CONFIG_H
#define CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Every listener of the contract, in the order of the configuration file. */
enum service {
	SVC_SMTP,
	SVC_SUBMISSION,
	SVC_SUBMISSIONS,
	SVC_IMAP,
	SVC_IMAPS,
	SVC_POP3,
	SVC_POP3S,
	SVC_ODMR,
	SVC_COUNT
};

/* "smtp", "submission", ...: also the INI section name. */
const char *service_name(enum service s);
/* True for the services whose connections start with TLS. */
bool service_implicit_tls(enum service s);

struct config {
	char *path;		/* NULL for the embedded default */
	bool embedded;

	/* [server] */
	char *hostname;
	char *data_dir;
	char *user;		/* "" keeps the starting identity */
	char *sandbox;		/* "yes" (default) or "no": core/sandbox.h */

	/* [smtp] ... [odmr]: comma-separated host:port lists; "" disables */
	char *listen[SVC_COUNT];

	/* [tls] ("" means generate a self-signed pair in data_dir/tls) */
	char *tls_cert;
	char *tls_key;

	/* [limits] */
	uint64_t max_message_size;	/* bytes; default 50M */
	unsigned max_recipients;	/* default 100 */
	unsigned max_connections;	/* default 10000 */
	unsigned max_connections_per_ip; /* default 100 */
	unsigned command_timeout;	/* seconds, default 300 (RFC 5321 4.5.3.2) */
	unsigned data_timeout;		/* seconds between data blocks, default 180 */
	unsigned max_errors;		/* bad commands per session before 421, default 20 */
	unsigned max_junk_commands;	/* NOOP/RSET/VRFY/... before each counts as an error, default 100 */

	/* [delivery] */
	char *resolver;
	unsigned remote_port;		/* default 25 */
	char *relayhost;
	char *relay_user;		/* AUTH to the relayhost; "" none */
	char *relay_password;
	unsigned retry_min;		/* seconds: first retry after this */
	unsigned retry_max;		/* back-off never waits longer */
	unsigned max_lifetime;		/* bounce after this long queued */
	unsigned delay_warning;		/* warn the sender; 0: never */
	unsigned max_deliveries;	/* attempts in flight, in all */
	unsigned max_per_destination;	/* attempts in flight per domain */
	unsigned mta_sts_port;		/* HTTPS port of MTA-STS policy
					 * hosts; default 443 */
	char *tls_ca_file;		/* extra trusted CAs (PEM) for
					 * outbound TLS; "": the system's */
	char *dnssec_trust_anchor;	/* DS/DNSKEY file for validation;
					 * "": the default of queue/dns.h */
};

/* Fills cfg with the contract's defaults for a configuration file
 * (listeners on 0.0.0.0 and the standard ports, data_dir /var/lib/correo). */
void config_init_defaults(struct config *cfg);

/* Fills cfg with the embedded default of DESIGN.md: data_dir ./var,
 * hostname localhost, loopback listeners on 2525, 2587, 2465, 1143, 1993,
 * 1110, 1995, no ODMR. */
void config_init_embedded(struct config *cfg);

/* Loads path over the defaults. Unknown sections or keys and bad values are
 * errors. Returns 0, or -1 with a message ("FILE:LINE: ...") in *error_r
 * (allocated; the caller frees it). */
int config_load(struct config *cfg, const char *path, char **error_r);

/* Parses one "host:port" element ("[::1]:25", "127.0.0.1:2525", ":25",
 * "*:25"). host is "" for any address. Returns 0 or -1. */
int config_parse_hostport(const char *s, char *host, size_t hostlen,
    char *port, size_t portlen);

/* Checks what config_load cannot (listen lists parse, sizes sane).
 * Returns 0 or -1 with *error_r allocated. */
int config_validate(const struct config *cfg, char **error_r);

void config_free(struct config *cfg);

#endif
