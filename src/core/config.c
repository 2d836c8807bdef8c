/* The configuration file (INI, parsed by inih) and the built-in defaults.
 * Untrusted input: none; the file belongs to the operator, but every value
 * is still checked so that a typo is an error and never a surprise. */
/* config.h uses size_t without including <stddef.h> (reported). */
#include <stddef.h>

#include "core/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>

#include "core/util.h"
#include "core/xmalloc.h"

/* The services, their section names and whether they start with TLS: the
 * one list that service_name(), service_implicit_tls() and the key table
 * below are made from. */
#define CONFIG_SERVICES(X)				\
	X(SVC_SMTP, "smtp", false)			\
	X(SVC_SUBMISSION, "submission", false)		\
	X(SVC_SUBMISSIONS, "submissions", true)		\
	X(SVC_IMAP, "imap", false)			\
	X(SVC_IMAPS, "imaps", true)			\
	X(SVC_POP3, "pop3", false)			\
	X(SVC_POP3S, "pop3s", true)			\
	X(SVC_ODMR, "odmr", false)

#define SVC_NAME(id, name, tls) [id] = name,
#define SVC_TLS(id, name, tls) [id] = tls,
static const char *const service_names[SVC_COUNT] = {
	CONFIG_SERVICES(SVC_NAME)
};
static const bool service_tls[SVC_COUNT] = { CONFIG_SERVICES(SVC_TLS) };

enum key_type {
	KEY_STRING,		/* any value, "" included */
	KEY_NAME,		/* a value that may not be empty */
	KEY_SIZE,		/* bytes with an optional k, M or G suffix */
	KEY_UINT,		/* an unsigned decimal in [min, max] */
	KEY_DURATION,		/* seconds with an optional s, m, h or d
				 * suffix, in [min, max] seconds */
};

struct config_key {
	const char *section;
	const char *name;
	enum key_type type;
	size_t offset;
	uint64_t min, max;
};

#define K_STR(sec, key, field) \
	{ sec, key, KEY_STRING, offsetof(struct config, field), 0, 0 }
#define K_NAME(sec, key, field) \
	{ sec, key, KEY_NAME, offsetof(struct config, field), 0, 0 }
#define K_UINT(sec, key, field, lo, hi) \
	{ sec, key, KEY_UINT, offsetof(struct config, field), lo, hi }
#define K_DUR(sec, key, field, lo, hi) \
	{ sec, key, KEY_DURATION, offsetof(struct config, field), lo, hi }
#define SVC_KEY(id, name, tls) K_STR(name, "listen", listen[id]),

#define CONFIG_SIZE_MIN 1024ULL
#define CONFIG_SIZE_MAX (1024ULL * 1024 * 1024 * 1024)	/* 1 TiB */

/* Every key of the file: the contract of DESIGN.md plus our [limits]
 * extras. correo.conf(5) documents the same list and the same bounds. */
static const struct config_key config_keys[] = {
	K_NAME("server", "hostname", hostname),
	K_NAME("server", "data_dir", data_dir),
	K_STR("server", "user", user),
	K_STR("server", "sandbox", sandbox),
	CONFIG_SERVICES(SVC_KEY)
	K_STR("tls", "cert", tls_cert),
	K_STR("tls", "key", tls_key),
	{ "limits", "max_message_size", KEY_SIZE,
	  offsetof(struct config, max_message_size),
	  CONFIG_SIZE_MIN, CONFIG_SIZE_MAX },
	K_UINT("limits", "max_recipients", max_recipients, 1, 1000000),
	K_UINT("limits", "max_connections", max_connections, 1, 1000000),
	K_UINT("limits", "max_connections_per_ip", max_connections_per_ip,
	    1, 1000000),
	K_UINT("limits", "command_timeout", command_timeout, 1, 86400),
	K_UINT("limits", "data_timeout", data_timeout, 1, 86400),
	K_UINT("limits", "max_errors", max_errors, 1, 1000000),
	K_UINT("limits", "max_junk_commands", max_junk_commands, 1, 1000000),
	K_STR("delivery", "resolver", resolver),
	K_UINT("delivery", "remote_port", remote_port, 1, 65535),
	K_STR("delivery", "relayhost", relayhost),
	K_STR("delivery", "relay_user", relay_user),
	K_STR("delivery", "relay_password", relay_password),
	K_DUR("delivery", "retry_min", retry_min, 1, 86400),
	K_DUR("delivery", "retry_max", retry_max, 1, 7 * 86400),
	K_DUR("delivery", "max_lifetime", max_lifetime, 1, 100 * 86400),
	K_DUR("delivery", "delay_warning", delay_warning, 0, 100 * 86400),
	K_UINT("delivery", "max_deliveries", max_deliveries, 1, 10000),
	K_UINT("delivery", "max_per_destination", max_per_destination, 1,
	    1000),
	K_UINT("delivery", "mta_sts_port", mta_sts_port, 1, 65535),
	K_STR("delivery", "tls_ca_file", tls_ca_file),
	K_STR("delivery", "dnssec_trust_anchor", dnssec_trust_anchor),
};

#define CONFIG_NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

/* State of one config_load(). The reader hands inih one whole line per
 * call, so lineno is the line the handler is looking at. */
struct config_parse {
	struct config *cfg;
	const char *path;
	FILE *fp;
	char *line;
	size_t cap;
	int lineno;
	int err_line;
	char *err;
	int read_errno;			/* errno of a failed read, or 0 */
	int seen[CONFIG_NKEYS];		/* line of each key, 0: not yet */
};

const char *
service_name(enum service s)
{
	if ((unsigned)s >= SVC_COUNT)
		return "unknown";
	return service_names[s];
}

bool
service_implicit_tls(enum service s)
{
	return (unsigned)s < SVC_COUNT && service_tls[s];
}

static char **
config_str_field(struct config *cfg, const struct config_key *k)
{
	return (char **)(void *)((char *)cfg + k->offset);
}

static void
config_set_str(char **field, const char *value)
{
	x_free(field);
	*field = x_strdup(value);
}

static void
config_init_common(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->user = x_strdup("");
	cfg->sandbox = x_strdup("yes");
	cfg->tls_cert = x_strdup("");
	cfg->tls_key = x_strdup("");
	cfg->max_message_size = 50ULL * 1024 * 1024;
	cfg->max_recipients = 100;
	cfg->max_connections = 10000;
	cfg->max_connections_per_ip = 100;
	cfg->command_timeout = 300;
	cfg->data_timeout = 180;
	cfg->max_errors = 20;
	cfg->max_junk_commands = 100;
	cfg->resolver = x_strdup("");
	cfg->remote_port = 25;
	cfg->relayhost = x_strdup("");
	cfg->relay_user = x_strdup("");
	cfg->relay_password = x_strdup("");
	cfg->retry_min = 300;		/* Postfix's minimal_backoff_time */
	cfg->retry_max = 4000;		/* and maximal_backoff_time */
	cfg->max_lifetime = 5 * 86400;	/* RFC 5321 4.5.4.1: 4-5 days */
	cfg->delay_warning = 4 * 3600;
	cfg->max_deliveries = 20;
	cfg->max_per_destination = 4;
	cfg->mta_sts_port = 443;
	cfg->tls_ca_file = x_strdup("");
	cfg->dnssec_trust_anchor = x_strdup("");
}

void
config_init_defaults(struct config *cfg)
{
	static const char *const ports[SVC_COUNT] = {
		[SVC_SMTP] = "0.0.0.0:25",
		[SVC_SUBMISSION] = "0.0.0.0:587",
		[SVC_SUBMISSIONS] = "0.0.0.0:465",
		[SVC_IMAP] = "0.0.0.0:143",
		[SVC_IMAPS] = "0.0.0.0:993",
		[SVC_POP3] = "0.0.0.0:110",
		[SVC_POP3S] = "0.0.0.0:995",
		[SVC_ODMR] = "",
	};
	char host[HOST_NAME_MAX + 1];

	config_init_common(cfg);
	if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
		str_copy(host, "localhost", sizeof(host));
	host[sizeof(host) - 1] = '\0';
	cfg->hostname = x_strdup(host);
	cfg->data_dir = x_strdup("/var/lib/correo");
	for (int i = 0; i < SVC_COUNT; i++)
		cfg->listen[i] = x_strdup(ports[i]);
}

void
config_init_embedded(struct config *cfg)
{
	static const char *const ports[SVC_COUNT] = {
		[SVC_SMTP] = "127.0.0.1:2525",
		[SVC_SUBMISSION] = "127.0.0.1:2587",
		[SVC_SUBMISSIONS] = "127.0.0.1:2465",
		[SVC_IMAP] = "127.0.0.1:1143",
		[SVC_IMAPS] = "127.0.0.1:1993",
		[SVC_POP3] = "127.0.0.1:1110",
		[SVC_POP3S] = "127.0.0.1:1995",
		[SVC_ODMR] = "",
	};

	config_init_common(cfg);
	cfg->embedded = true;
	cfg->hostname = x_strdup("localhost");
	cfg->data_dir = x_strdup("./var");
	for (int i = 0; i < SVC_COUNT; i++)
		cfg->listen[i] = x_strdup(ports[i]);
}

void
config_free(struct config *cfg)
{
	x_free(&cfg->path);
	x_free(&cfg->hostname);
	x_free(&cfg->data_dir);
	x_free(&cfg->user);
	x_free(&cfg->sandbox);
	for (int i = 0; i < SVC_COUNT; i++)
		x_free(&cfg->listen[i]);
	x_free(&cfg->tls_cert);
	x_free(&cfg->tls_key);
	x_free(&cfg->resolver);
	x_free(&cfg->relayhost);
	x_free(&cfg->relay_user);
	x_free(&cfg->relay_password);
	x_free(&cfg->tls_ca_file);
	x_free(&cfg->dnssec_trust_anchor);
}

/* ---- loading ----------------------------------------------------------- */

static void config_parse_error(struct config_parse *p, const char *fmt, ...)
    PRINTF_LIKE(2, 3);

/* Keeps the first error only: later ones are usually its consequences. */
static void
config_parse_error(struct config_parse *p, const char *fmt, ...)
{
	va_list ap;
	char msg[512];

	if (p->err != NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p->err = x_strdup(msg);
	p->err_line = p->lineno;
}

static bool
config_is_section(const char *name)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++)
		if (str_iequal(config_keys[i].section, name))
			return true;
	return false;
}

static const struct config_key *
config_find_key(const char *section, const char *name)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++)
		if (str_iequal(config_keys[i].section, section) &&
		    str_iequal(config_keys[i].name, name))
			return &config_keys[i];
	return NULL;
}

/* inih calls the handler only for keys, so a section header is checked
 * here, or an empty "[typo]" would pass unnoticed. */
static int
config_check_header(struct config_parse *p, const char *line)
{
	const char *end;

	if (line[0] != '[' || (end = strchr(line, ']')) == NULL)
		return 0;	/* not a header, or inih reports the syntax */
	char *name = x_strndup(line + 1, (size_t)(end - line - 1));
	int r = 0;
	if (!config_is_section(name)) {
		config_parse_error(p, "unknown section [%s]", name);
		r = -1;
	}
	free(name);
	return r;
}

/* An ini_reader that gives inih one whole line at a time, without its
 * indentation: inih would take an indented line as the continuation of the
 * previous value, which nobody writing this file means. Returns NULL at
 * the end, on a read error, and once an error was found. */
static char *
config_reader(char *str, int num, void *stream)
{
	struct config_parse *p = stream;

	if (p->err != NULL || num < 4)
		return NULL;
	errno = 0;
	ssize_t n = getline(&p->line, &p->cap, p->fp);
	if (n < 0) {
		if (ferror(p->fp))
			p->read_errno = errno != 0 ? errno : EIO;
		return NULL;
	}
	p->lineno++;
	if (memchr(p->line, '\0', (size_t)n) != NULL) {
		config_parse_error(p, "NUL byte in line");
		return NULL;
	}
	const char *s = p->line;
	if (p->lineno == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3;
	while (*s == ' ' || *s == '\t')
		s++;
	size_t len = strlen(s), content = len;
	if (content > 0 && s[content - 1] == '\n')
		content--;
	if (content > 0 && s[content - 1] == '\r')
		content--;
	if (content > (size_t)num - 3) {
		config_parse_error(p, "line too long (at most %d characters)",
		    num - 3);
		return NULL;
	}
	memcpy(str, s, len + 1);
	if (config_check_header(p, str) < 0)
		return NULL;
	return str;
}

/* "90", "90s", "5m", "4h", "5d" into seconds. */
static int
config_parse_duration(const char *s, uint64_t *out)
{
	char num[24];
	size_t n = strlen(s);
	uint64_t mult = 1, v;

	if (n == 0 || n >= sizeof(num))
		return -1;
	switch (s[n - 1]) {
	case 's': mult = 1; n--; break;
	case 'm': mult = 60; n--; break;
	case 'h': mult = 3600; n--; break;
	case 'd': mult = 86400; n--; break;
	default: break;
	}
	memcpy(num, s, n);
	num[n] = '\0';
	if (parse_uint(num, UINT32_MAX, &v) < 0 || v > UINT32_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

static int
config_set_number(struct config_parse *p, const struct config_key *k,
    const char *value)
{
	uint64_t v;
	void *field = (char *)p->cfg + k->offset;

	if (k->type == KEY_SIZE) {
		if (parse_size(value, &v) < 0 || v < k->min || v > k->max) {
			config_parse_error(p, "bad size \"%s\" for %s: expected "
			    "bytes with an optional k, M or G suffix, from 1k "
			    "to 1024G", value, k->name);
			return -1;
		}
		*(uint64_t *)field = v;
		return 0;
	}
	if (k->type == KEY_DURATION) {
		if (config_parse_duration(value, &v) < 0 || v < k->min ||
		    v > k->max) {
			config_parse_error(p, "bad duration \"%s\" for %s: "
			    "expected seconds with an optional s, m, h or d "
			    "suffix, from %llus to %llus", value, k->name,
			    (unsigned long long)k->min,
			    (unsigned long long)k->max);
			return -1;
		}
		*(unsigned *)field = (unsigned)v;
		return 0;
	}
	if (parse_uint(value, k->max, &v) < 0 || v < k->min) {
		config_parse_error(p, "bad number \"%s\" for %s: expected "
		    "%llu to %llu", value, k->name,
		    (unsigned long long)k->min, (unsigned long long)k->max);
		return -1;
	}
	*(unsigned *)field = (unsigned)v;
	return 0;
}

static int
config_set(struct config_parse *p, const struct config_key *k,
    const char *value)
{
	switch (k->type) {
	case KEY_NAME:
		if (value[0] == '\0') {
			config_parse_error(p, "%s may not be empty", k->name);
			return -1;
		}
		/* FALLTHROUGH */
	case KEY_STRING:
		config_set_str(config_str_field(p->cfg, k), value);
		return 0;
	case KEY_SIZE:
	case KEY_UINT:
	case KEY_DURATION:
		return config_set_number(p, k, value);
	}
	return -1;
}

static int
config_handler(void *user, const char *section, const char *name,
    const char *value)
{
	struct config_parse *p = user;

	if (p->err != NULL)
		return 0;
	if (section[0] == '\0') {
		config_parse_error(p, "key \"%s\" outside any section", name);
		return 0;
	}
	const struct config_key *k = config_find_key(section, name);
	if (k == NULL) {
		if (config_is_section(section))
			config_parse_error(p, "unknown key \"%s\" in [%s]",
			    name, section);
		else
			config_parse_error(p, "unknown section [%s]", section);
		return 0;
	}
	size_t i = (size_t)(k - config_keys);
	if (p->seen[i] != 0) {
		config_parse_error(p, "duplicate key \"%s\" in [%s] (first "
		    "set on line %d)", name, section, p->seen[i]);
		return 0;
	}
	p->seen[i] = p->lineno;
	return config_set(p, k, value != NULL ? value : "") == 0;
}

static void
config_set_error(char **error_r, char *msg)
{
	if (error_r != NULL)
		*error_r = msg;
	else
		free(msg);
}

/* cfg must already hold a configuration (config_init_defaults): the keys
 * of the file replace its values. On failure cfg holds a valid mix of the
 * two, still to be released with config_free. */
int
config_load(struct config *cfg, const char *path, char **error_r)
{
	struct config_parse p;

	memset(&p, 0, sizeof(p));
	p.cfg = cfg;
	p.path = path;
	if ((p.fp = fopen(path, "re")) == NULL) {
		config_set_error(error_r, x_asprintf("%s: %s", path,
		    strerror(errno)));
		return -1;
	}
	config_set_str(&cfg->path, path);
	int r = ini_parse_stream(config_reader, &p, config_handler, &p);
	fclose(p.fp);
	free(p.line);

	char *msg = NULL;
	if (p.read_errno != 0)
		msg = x_asprintf("%s: %s", path, strerror(p.read_errno));
	else if (r > 0 && (p.err == NULL || r < p.err_line))
		msg = x_asprintf("%s:%d: syntax error: expected [section] or "
		    "key = value", path, r);
	else if (p.err != NULL)
		msg = x_asprintf("%s:%d: %s", path, p.err_line, p.err);
	else if (r < 0)
		msg = x_asprintf("%s: cannot parse (inih error %d)", path, r);
	free(p.err);
	if (msg == NULL)
		return 0;
	config_set_error(error_r, msg);
	return -1;
}

/* ---- addresses ----------------------------------------------------------- */

static int
config_parse_port(const char *s, char *port, size_t portlen)
{
	uint64_t v;

	if (strlen(s) > 5 || parse_uint(s, 65535, &v) < 0 || v == 0)
		return -1;
	return str_copy(port, s, portlen);
}

/* Letters, digits, '-', '.' and '_' (seen in some gethostname() results). */
static bool
config_is_hostname(const char *s, size_t n)
{
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'))
			return false;
	}
	return true;
}

static int
config_copy_host(const char *s, size_t n, char *host, size_t hostlen)
{
	if (n >= hostlen)
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	return 0;
}

int
config_parse_hostport(const char *s, char *host, size_t hostlen,
    char *port, size_t portlen)
{
	const char *colon;
	struct in6_addr a6;

	if (hostlen == 0 || portlen == 0)
		return -1;
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (end == NULL || end[1] != ':')
			return -1;
		if (config_copy_host(s + 1, (size_t)(end - s - 1), host,
		    hostlen) < 0 || inet_pton(AF_INET6, host, &a6) != 1)
			return -1;
		return config_parse_port(end + 2, port, portlen);
	}
	if ((colon = strchr(s, ':')) == NULL || strchr(colon + 1, ':'))
		return -1;	/* no port, or an IPv6 address without [] */
	size_t n = (size_t)(colon - s);
	if (n == 0 || (n == 1 && s[0] == '*'))
		host[0] = '\0';
	else if (!config_is_hostname(s, n) ||
	    config_copy_host(s, n, host, hostlen) < 0)
		return -1;
	return config_parse_port(colon + 1, port, portlen);
}

/* ---- validation ---------------------------------------------------------- */

static char *
config_prefix(const struct config *cfg)
{
	return x_asprintf("%s", cfg->path != NULL ? cfg->path :
	    "embedded configuration");
}

static int
config_validate_listen(const struct config *cfg, enum service svc,
    char **error_r)
{
	char *copy = x_strdup(cfg->listen[svc]), *save = NULL, *tok;
	char host[256], port[8];
	int r = 0;

	if (copy[0] == '\0') {
		free(copy);
		return 0;
	}
	/* strtok_r would skip empty elements; ",," is a typo to report. */
	for (tok = copy; r == 0 && tok != NULL; tok = save) {
		save = strchr(tok, ',');
		if (save != NULL)
			*save++ = '\0';
		while (*tok == ' ' || *tok == '\t')
			tok++;
		size_t n = strlen(tok);
		while (n > 0 && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
			tok[--n] = '\0';
		if (config_parse_hostport(tok, host, sizeof(host), port,
		    sizeof(port)) < 0) {
			char *pre = config_prefix(cfg);
			*error_r = x_asprintf("%s: [%s] listen: bad address "
			    "\"%s\": expected host:port, [ipv6]:port or *:port",
			    pre, service_name(svc), tok);
			free(pre);
			r = -1;
		}
	}
	free(copy);
	return r;
}

static bool
config_is_ip(const char *s)
{
	struct in6_addr a6;
	struct in_addr a4;

	return inet_pton(AF_INET, s, &a4) == 1 ||
	    inet_pton(AF_INET6, s, &a6) == 1;
}

/* "" (the system's resolver), an address, or address@port. */
static bool
config_is_resolver(const char *s)
{
	char port[8];
	const char *at = strrchr(s, '@');

	if (s[0] == '\0')
		return true;
	if (at == NULL)
		return config_is_ip(s);
	char *ip = x_strndup(s, (size_t)(at - s));
	bool ok = config_is_ip(ip) &&
	    config_parse_port(at + 1, port, sizeof(port)) == 0;
	free(ip);
	return ok;
}

static bool
config_is_relayhost(const char *s)
{
	char host[256], port[8];

	if (s[0] == '\0')
		return true;
	return config_parse_hostport(s, host, sizeof(host), port,
	    sizeof(port)) == 0 && host[0] != '\0';
}

/* The checks that are not about one listener; returns a message or NULL. */
static const char *
config_check_values(const struct config *cfg)
{
	if (!config_is_hostname(cfg->hostname, strlen(cfg->hostname)))
		return "[server] hostname: expected a host name (letters, "
		    "digits, '-', '.')";
	if (cfg->data_dir[0] == '\0')
		return "[server] data_dir may not be empty";
	if (strcmp(cfg->sandbox, "yes") != 0 && strcmp(cfg->sandbox, "no") != 0)
		return "[server] sandbox: expected yes or no";
	if ((cfg->tls_cert[0] == '\0') != (cfg->tls_key[0] == '\0'))
		return "[tls] cert and key must be set together";
	if (cfg->max_message_size < CONFIG_SIZE_MIN)
		return "[limits] max_message_size must be at least 1k";
	if (cfg->max_connections_per_ip > cfg->max_connections)
		return "[limits] max_connections_per_ip is larger than "
		    "max_connections";
	if (!config_is_resolver(cfg->resolver))
		return "[delivery] resolver: expected an IP address, "
		    "optionally followed by @port";
	if (cfg->remote_port == 0 || cfg->remote_port > 65535)
		return "[delivery] remote_port: expected 1 to 65535";
	if (!config_is_relayhost(cfg->relayhost))
		return "[delivery] relayhost: expected host:port";
	return NULL;
}

int
config_validate(const struct config *cfg, char **error_r)
{
	char *msg = NULL;

	for (int i = 0; i < SVC_COUNT; i++)
		if (config_validate_listen(cfg, (enum service)i, &msg) < 0) {
			config_set_error(error_r, msg);
			return -1;
		}
	const char *why = config_check_values(cfg);
	if (why == NULL)
		return 0;
	char *pre = config_prefix(cfg);
	config_set_error(error_r, x_asprintf("%s: %s", pre, why));
	free(pre);
	return -1;
}
