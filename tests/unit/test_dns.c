/* The resolver against a real unbound on a loopback port: MX order, equal
 * preferences, implicit MX, null MX, NXDOMAIN, hosts without addresses,
 * TLSA, address literals, DNSSEC bogus, timeouts, cancellation and
 * shutdown with lookups outstanding. Skipped when unbound is missing. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "core/xmalloc.h"
#include "queue/dns.h"

#define UNBOUND_BIN "/usr/sbin/unbound"
#define WAIT_MS 10000

static struct {
	pid_t pid;
	int port;
	char dir[64];
	char resolver[64];
	struct event_base *base;
} srv;

/* ---- the DNS server ------------------------------------------------ */

static const char *const zone[] = {
	"example.test. MX 10 mx1.example.test.",
	"example.test. MX 20 mx2a.example.test.",
	"example.test. MX 20 mx2b.example.test.",
	"example.test. MX 30 mx3.example.test.",
	"mx1.example.test. A 192.0.2.1",
	"mx1.example.test. AAAA 2001:db8::1",
	"mx2a.example.test. A 192.0.2.21",
	"mx2b.example.test. A 192.0.2.22",
	"mx3.example.test. AAAA 2001:db8::3",
	"nomx.example.test. A 192.0.2.50",
	"v6only.example.test. AAAA 2001:db8::60",
	"alias.example.test. CNAME nomx.example.test.",
	"nullmx.example.test. MX 0 .",
	"noaddr.example.test. MX 10 ghost.example.test.",
	"noaddr.example.test. MX 20 txtonly.example.test.",
	"txtonly.example.test. TXT \"no address here\"",
	"partial.example.test. MX 10 ghost.example.test.",
	"partial.example.test. MX 20 mx2a.example.test.",
	"empty.example.test. TXT \"neither MX nor address\"",
	"dupe.example.test. MX 20 MX1.example.test.",
	"dupe.example.test. MX 10 mx1.example.test.",
	"_25._tcp.mx1.example.test. TLSA 3 1 1 "
	    "0102030405060708090a0b0c0d0e0f10"
	    "1112131415161718191a1b1c1d1e1f20",
};

static int
free_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM, 0), port;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

static void
write_config(const char *path)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fprintf(f, "server:\n\tinterface: 127.0.0.1\n\tport: %d\n"
	    "\tdo-daemonize: no\n\tuse-syslog: no\n\tlogfile: \"\"\n"
	    "\tchroot: \"\"\n\tusername: \"\"\n\tdirectory: \"%s\"\n"
	    "\tpidfile: \"\"\n\tdo-ip6: no\n\tnum-threads: 1\n"
	    "\tmodule-config: \"iterator\"\n"
	    "\tlocal-zone: \"example.test.\" static\n"
	    "\tlocal-zone: \"refused.example.test.\" refuse\n",
	    srv.port, srv.dir);
	for (size_t i = 0; i < sizeof(zone) / sizeof(zone[0]); i++)
		fprintf(f, "\tlocal-data: '%s'\n", zone[i]);
	/* More MX records than a route keeps. */
	for (int i = 1; i <= DNS_MAX_HOSTS + 4; i++)
		fprintf(f, "\tlocal-data: 'many.example.test. MX %d "
		    "m%d.example.test.'\n\tlocal-data: 'm%d.example.test. "
		    "A 198.51.100.%d'\n", i, i, i, i);
	fprintf(f, "remote-control:\n\tcontrol-enable: no\n");
	assert_int_equal(fclose(f), 0);
}

static bool
server_ready(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)srv.port);
	ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	close(fd);
	return ok;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void
server_exec(const char *conf, const char *log)
{
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	execl(UNBOUND_BIN, "unbound", "-d", "-c", conf, (char *)NULL);
	_exit(127);
}

/* Starts unbound on a free port; false when it exited (the port was
 * taken meanwhile) or never answered. */
static bool
server_start(const char *conf, const char *log)
{
	srv.port = free_port();
	snprintf(srv.resolver, sizeof(srv.resolver), "127.0.0.1@%d", srv.port);
	write_config(conf);
	srv.pid = fork();
	assert_true(srv.pid >= 0);
	if (srv.pid == 0)
		server_exec(conf, log);
	for (int i = 0; i < WAIT_MS / 20; i++) {
		if (waitpid(srv.pid, NULL, WNOHANG) == srv.pid) {
			srv.pid = 0;
			return false;
		}
		if (server_ready())
			return true;
		sleep_ms(20);
	}
	kill(srv.pid, SIGKILL);
	waitpid(srv.pid, NULL, 0);
	srv.pid = 0;
	return false;
}

static void
dump_file(const char *path)
{
	char line[512];
	FILE *f = fopen(path, "r");

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		fputs(line, stderr);
	if (f != NULL)
		fclose(f);
}

static int
group_setup(void **state)
{
	char conf[128], log[128];

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	srv.base = event_base_new();
	if (access(UNBOUND_BIN, X_OK) != 0)
		return 0;
	snprintf(srv.dir, sizeof(srv.dir), "/tmp/correo-dns-XXXXXX");
	assert_non_null(mkdtemp(srv.dir));
	snprintf(conf, sizeof(conf), "%s/unbound.conf", srv.dir);
	snprintf(log, sizeof(log), "%s/unbound.log", srv.dir);
	for (int attempt = 0; attempt < 5; attempt++)
		if (server_start(conf, log))
			return 0;
	fprintf(stderr, "unbound did not start:\n");
	dump_file(log);
	return -1;
}

static int
group_teardown(void **state)
{
	char path[128];

	(void)state;
	if (srv.pid > 0) {
		kill(srv.pid, SIGTERM);
		waitpid(srv.pid, NULL, 0);
		snprintf(path, sizeof(path), "%s/unbound.conf", srv.dir);
		unlink(path);
		snprintf(path, sizeof(path), "%s/unbound.log", srv.dir);
		unlink(path);
		rmdir(srv.dir);
	}
	event_base_free(srv.base);
	return 0;
}

/* ---- running lookups ------------------------------------------------- */

struct got {
	int calls;
	struct dns_route *route;
	struct dns_tlsa *tlsa;
	/* Optional actions run inside the callback. */
	struct dns_query *cancel;
	struct dns_resolver **free_resolver;
};

static void
on_route(struct dns_route *route, void *arg)
{
	struct got *g = arg;

	g->calls++;
	dns_route_free(g->route);
	g->route = route;
	if (g->cancel != NULL)
		dns_cancel(g->cancel);
	if (g->free_resolver != NULL) {
		dns_resolver_free(*g->free_resolver);
		*g->free_resolver = NULL;
	}
}

static void
on_tlsa(struct dns_tlsa *tlsa, void *arg)
{
	struct got *g = arg;

	g->calls++;
	dns_tlsa_free(g->tlsa);
	g->tlsa = tlsa;
}

static void
got_free(struct got *g)
{
	dns_route_free(g->route);
	dns_tlsa_free(g->tlsa);
	memset(g, 0, sizeof(*g));
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(bool *)arg = true;
}

/* Runs the loop until *calls reaches want or ms pass. */
static void
run_until(const int *calls, int want, unsigned ms)
{
	bool expired = false;
	struct event *t = evtimer_new(srv.base, on_deadline, &expired);
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(t, &tv);
	while (!expired && (calls == NULL || *calls < want))
		event_base_loop(srv.base, EVLOOP_ONCE);
	event_free(t);
}

static struct dns_resolver *
resolver_with(const char *resolver, const char *ta, unsigned timeout_ms)
{
	struct dns_config cfg = { resolver, ta, timeout_ms };
	const char *err = NULL;
	struct dns_resolver *r = dns_resolver_new(srv.base, &cfg, &err);

	if (r == NULL)
		fail_msg("dns_resolver_new: %s", err);
	return r;
}

static struct dns_resolver *
test_resolver(void)
{
	if (srv.pid <= 0)
		skip();
	return resolver_with(srv.resolver, NULL, 0);
}

static struct dns_route *
route_of(struct dns_resolver *r, const char *domain, struct got *g)
{
	memset(g, 0, sizeof(*g));
	(void)dns_route_lookup(r, domain, on_route, g);
	assert_int_equal(g->calls, 0);
	run_until(&g->calls, 1, WAIT_MS);
	assert_int_equal(g->calls, 1);
	assert_non_null(g->route);
	return g->route;
}

static void
assert_addr(const struct dns_host *h, size_t i, const char *text)
{
	assert_true(i < h->naddrs);
	assert_string_equal(h->addrs[i].text, text);
	assert_int_equal(h->addrs[i].family,
	    strchr(text, ':') != NULL ? AF_INET6 : AF_INET);
}

/* ---- tests ------------------------------------------------------------ */

static void
test_mx_order(void **state)
{
	struct dns_resolver *r = test_resolver();
	struct got g;
	struct dns_route *rt = route_of(r, "Example.TEST.", &g);

	(void)state;
	assert_int_equal(rt->status, DNS_OK);
	assert_null(rt->error);
	assert_string_equal(rt->domain, "example.test");
	assert_false(rt->implicit_mx);
	assert_false(rt->literal);
	assert_false(rt->mx_secure);
	assert_int_equal(rt->nhosts, 4);
	assert_string_equal(rt->hosts[0].name, "mx1.example.test");
	assert_int_equal(rt->hosts[0].preference, 10);
	assert_int_equal(rt->hosts[0].naddrs, 2);
	assert_addr(&rt->hosts[0], 0, "2001:db8::1");
	assert_addr(&rt->hosts[0], 1, "192.0.2.1");
	assert_false(rt->hosts[0].secure);
	assert_int_equal(rt->hosts[1].preference, 20);
	assert_int_equal(rt->hosts[2].preference, 20);
	assert_string_not_equal(rt->hosts[1].name, rt->hosts[2].name);
	assert_string_equal(rt->hosts[3].name, "mx3.example.test");
	assert_int_equal(rt->hosts[3].naddrs, 1);
	assert_addr(&rt->hosts[3], 0, "2001:db8::3");
	got_free(&g);
	dns_resolver_free(r);
}

static void
test_equal_preferences_shuffled(void **state)
{
	struct dns_resolver *r = test_resolver();
	int first_a = 0, first_b = 0;

	(void)state;
	for (int i = 0; i < 40; i++) {
		struct got g;
		struct dns_route *rt = route_of(r, "example.test", &g);
		assert_int_equal(rt->nhosts, 4);
		if (strcmp(rt->hosts[1].name, "mx2a.example.test") == 0)
			first_a++;
		else if (strcmp(rt->hosts[1].name, "mx2b.example.test") == 0)
			first_b++;
		assert_string_equal(rt->hosts[0].name, "mx1.example.test");
		got_free(&g);
	}
	assert_int_equal(first_a + first_b, 40);
	assert_true(first_a > 0);
	assert_true(first_b > 0);
	dns_resolver_free(r);
}

static void
test_implicit_mx(void **state)
{
	struct dns_resolver *r = test_resolver();
	struct got g;
	struct dns_route *rt = route_of(r, "nomx.example.test", &g);

	(void)state;
	assert_int_equal(rt->status, DNS_OK);
	assert_true(rt->implicit_mx);
	assert_int_equal(rt->nhosts, 1);
	assert_string_equal(rt->hosts[0].name, "nomx.example.test");
	assert_int_equal(rt->hosts[0].preference, 0);
	assert_int_equal(rt->hosts[0].naddrs, 1);
	assert_addr(&rt->hosts[0], 0, "192.0.2.50");
	got_free(&g);

	rt = route_of(r, "v6only.example.test", &g);
	assert_int_equal(rt->status, DNS_OK);
	assert_true(rt->implicit_mx);
	assert_int_equal(rt->hosts[0].naddrs, 1);
	assert_addr(&rt->hosts[0], 0, "2001:db8::60");
	got_free(&g);

	/* A CNAME without MX: the name asked is the host to greet. */
	rt = route_of(r, "alias.example.test", &g);
	assert_int_equal(rt->status, DNS_OK);
	assert_true(rt->implicit_mx);
	assert_string_equal(rt->hosts[0].name, "alias.example.test");
	assert_addr(&rt->hosts[0], 0, "192.0.2.50");
	got_free(&g);
	dns_resolver_free(r);
}

static void
test_null_mx(void **state)
{
	struct dns_resolver *r = test_resolver();
	struct got g;
	struct dns_route *rt = route_of(r, "nullmx.example.test", &g);

	(void)state;
	assert_int_equal(rt->status, DNS_NULL_MX);
	assert_true(dns_status_is_permanent(rt->status));
	assert_string_equal(dns_status_name(rt->status), "null-mx");
	assert_int_equal(rt->nhosts, 0);
	assert_non_null(strstr(rt->error, "accepts no mail"));
	got_free(&g);
	dns_resolver_free(r);
}

static void
test_nxdomain(void **state)
{
	struct dns_resolver *r = test_resolver();
	struct got g;
	struct dns_route *rt = route_of(r, "nx.example.test", &g);

	(void)state;
	assert_int_equal(rt->status, DNS_NXDOMAIN);
	assert_true(dns_status_is_permanent(rt->status));
	assert_int_equal(rt->nhosts, 0);
	assert_non_null(rt->error);
	got_free(&g);
	/* Outside the served zone, still under .test: asked of the server
	 * (which says NXDOMAIN for the whole TLD), not answered locally. */
	rt = route_of(r, "other.test", &g);
	assert_int_equal(rt->status, DNS_NXDOMAIN);
	got_free(&g);
	dns_resolver_free(r);
}

static void
test_mx_hosts_without_addresses(void **state)
{
	struct dns_resolver *r = test_resolver();
	struct got g;
	struct dns_route *rt = route_of(r, "noaddr.example.test", &g);

	(void)state;
	assert_int_equal(rt->status, DNS_TEMPFAIL);
	assert_false(dns_status_is_permanent(rt->status));
	assert_int_equal(rt->nhosts, 0);
	assert_non_null(strstr(rt->error, "has an address"));
	got_free(&g);

	rt = route_of(r, "partial.example.test", &g);
	assert_int_equal(rt->status, DNS_OK);
	assert_int_equal(rt->nhosts, 1);
	assert_string_equal(rt->hosts[0].name, "mx2a.example.test");
	assert_int_equal(rt->hosts[0].preference, 20);
	assert_addr(&rt->hosts[0], 0, "192.0.2.21");
	got_free(&g);
	dns_resolver_free(r);
}

static void
test_no_mx_no_address(void **state)
{
	struct dns_resolver *r = test_resolver();
	struct got g;
	struct dns_route *rt = route_of(r, "empty.example.test", &g);

	(void)state;
	assert_int_equal(rt->status, DNS_NO_ADDRESS);
	assert_true(dns_status_is_permanent(rt->status));
	assert_int_equal(rt->nhosts, 0);
	got_free(&g);
	dns_resolver_free(r);
}

static void
test_refused_is_temporary(void **state)
{
	struct dns_resolver *r = test_resolver();
	struct got g;
	struct dns_route *rt = route_of(r, "refused.example.test", &g);

	(void)state;
	/* libunbound reports a forwarder's REFUSED as SERVFAIL. */
	assert_int_equal(rt->status, DNS_TEMPFAIL);
	assert_false(dns_status_is_permanent(rt->status));
	assert_non_null(strstr(rt->error, "MX lookup of refused.example.test"));
	got_free(&g);
	dns_resolver_free(r);
}

static void
test_duplicates_and_limit(void **state)
{
	struct dns_resolver *r = test_resolver();
	struct got g;
	struct dns_route *rt = route_of(r, "dupe.example.test", &g);

	(void)state;
	assert_int_equal(rt->status, DNS_OK);
	assert_int_equal(rt->nhosts, 1);
	assert_string_equal(rt->hosts[0].name, "mx1.example.test");
	assert_int_equal(rt->hosts[0].preference, 10);
	got_free(&g);

	rt = route_of(r, "many.example.test", &g);
	assert_int_equal(rt->status, DNS_OK);
	assert_int_equal(rt->nhosts, DNS_MAX_HOSTS);
	for (size_t i = 0; i < rt->nhosts; i++)
		assert_int_equal(rt->hosts[i].preference, i + 1);
	got_free(&g);
	dns_resolver_free(r);
}

static void
test_address_literals(void **state)
{
	struct dns_resolver *r = test_resolver();
	struct got g;
	struct dns_route *rt = route_of(r, "[192.0.2.7]", &g);
	struct sockaddr_storage ss;
	socklen_t len;

	(void)state;
	assert_int_equal(rt->status, DNS_OK);
	assert_true(rt->literal);
	assert_int_equal(rt->nhosts, 1);
	assert_string_equal(rt->hosts[0].name, "192.0.2.7");
	assert_addr(&rt->hosts[0], 0, "192.0.2.7");
	dns_address_sockaddr(&rt->hosts[0].addrs[0], 2525, &ss, &len);
	assert_int_equal(len, sizeof(struct sockaddr_in));
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 2525);
	got_free(&g);

	rt = route_of(r, "[IPv6:2001:DB8::7]", &g);
	assert_int_equal(rt->status, DNS_OK);
	assert_addr(&rt->hosts[0], 0, "2001:db8::7");
	dns_address_sockaddr(&rt->hosts[0].addrs[0], 25, &ss, &len);
	assert_int_equal(len, sizeof(struct sockaddr_in6));
	got_free(&g);

	static const char *const bad[] = { "[999.1.1.1]", "[2001:db8::7]",
		"[IPv6:192.0.2.1]", "[]", "[192.0.2.1", "[x:y]" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rt = route_of(r, bad[i], &g);
		assert_int_equal(rt->status, DNS_NXDOMAIN);
		assert_int_equal(rt->nhosts, 0);
		got_free(&g);
	}
	dns_resolver_free(r);
}

static void
test_invalid_names(void **state)
{
	struct dns_resolver *r = test_resolver();
	static const char *const bad[] = { "", ".", "a..b", "exa mple.test",
		"-\x01.test", "caf\xc3\xa9.test", "nx.test.",
		("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		".test") };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct got g;
		struct dns_route *rt = route_of(r, bad[i], &g);
		if (i == 6) {	/* "nx.test." is valid: the DNS says no */
			assert_int_equal(rt->status, DNS_NXDOMAIN);
		} else {
			assert_int_equal(rt->status, DNS_NXDOMAIN);
			assert_non_null(strstr(rt->error, "invalid"));
			for (const char *p = rt->error; *p != '\0'; p++)
				assert_true(*p >= 0x20 && *p <= 0x7e);
		}
		got_free(&g);
	}
	dns_resolver_free(r);
}

static void
test_host_lookup(void **state)
{
	struct dns_resolver *r = test_resolver();
	struct got g;

	(void)state;
	memset(&g, 0, sizeof(g));
	(void)dns_host_lookup(r, "mx1.example.test", on_route, &g);
	run_until(&g.calls, 1, WAIT_MS);
	assert_int_equal(g.route->status, DNS_OK);
	assert_int_equal(g.route->nhosts, 1);
	assert_int_equal(g.route->hosts[0].naddrs, 2);
	got_free(&g);

	/* No MX lookup: example.test itself has no address. */
	(void)dns_host_lookup(r, "example.test", on_route, &g);
	run_until(&g.calls, 1, WAIT_MS);
	assert_int_equal(g.route->status, DNS_NO_ADDRESS);
	got_free(&g);

	(void)dns_host_lookup(r, "ghost.example.test", on_route, &g);
	run_until(&g.calls, 1, WAIT_MS);
	assert_int_equal(g.route->status, DNS_NXDOMAIN);
	got_free(&g);
	dns_resolver_free(r);
}

static void
test_tlsa(void **state)
{
	struct dns_resolver *r = test_resolver();
	struct got g;

	(void)state;
	memset(&g, 0, sizeof(g));
	(void)dns_tlsa_lookup(r, "MX1.example.test", 25, on_tlsa, &g);
	assert_int_equal(g.calls, 0);
	run_until(&g.calls, 1, WAIT_MS);
	assert_int_equal(g.tlsa->status, DNS_OK);
	assert_false(g.tlsa->secure);
	assert_int_equal(g.tlsa->nrecords, 1);
	assert_int_equal(g.tlsa->records[0].usage, 3);
	assert_int_equal(g.tlsa->records[0].selector, 1);
	assert_int_equal(g.tlsa->records[0].mtype, 1);
	assert_int_equal(g.tlsa->records[0].len, 32);
	assert_int_equal(g.tlsa->records[0].data[0], 1);
	assert_int_equal(g.tlsa->records[0].data[31], 0x20);
	got_free(&g);

	(void)dns_tlsa_lookup(r, "mx2a.example.test", 25, on_tlsa, &g);
	run_until(&g.calls, 1, WAIT_MS);
	assert_int_equal(g.tlsa->status, DNS_OK);
	assert_int_equal(g.tlsa->nrecords, 0);
	got_free(&g);

	(void)dns_tlsa_lookup(r, "bad name", 25, on_tlsa, &g);
	run_until(&g.calls, 1, WAIT_MS);
	assert_int_equal(g.tlsa->status, DNS_TEMPFAIL);
	got_free(&g);
	dns_resolver_free(r);
}

static void
test_cancel(void **state)
{
	struct dns_resolver *r = test_resolver();
	struct got g1, g2, g3;
	struct dns_query *q;

	(void)state;
	memset(&g1, 0, sizeof(g1));
	memset(&g2, 0, sizeof(g2));
	memset(&g3, 0, sizeof(g3));
	q = dns_route_lookup(r, "example.test", on_route, &g1);
	dns_cancel(q);
	q = dns_route_lookup(r, "[192.0.2.9]", on_route, &g1);
	dns_cancel(q);
	dns_cancel(NULL);
	/* g2's callback cancels g3's lookup, finished or not. */
	(void)dns_route_lookup(r, "[192.0.2.10]", on_route, &g2);
	g2.cancel = dns_route_lookup(r, "partial.example.test", on_route,
	    &g3);
	run_until(&g2.calls, 1, WAIT_MS);
	/* Then the loop runs on: nothing cancelled may call back. */
	run_until(NULL, 0, 300);
	assert_int_equal(g1.calls, 0);
	assert_int_equal(g2.calls, 1);
	assert_int_equal(g3.calls, 0);
	got_free(&g2);
	/* Cancelled in the middle, between the MX and address answers. */
	for (unsigned ms = 0; ms < 30; ms += 3) {
		q = dns_route_lookup(r, "many.example.test", on_route, &g1);
		run_until(NULL, 0, ms);
		if (g1.calls == 0)
			dns_cancel(q);
		got_free(&g1);
	}
	dns_resolver_free(r);
}

static void
test_free_with_outstanding(void **state)
{
	struct dns_resolver *r = test_resolver();
	struct got g[4];

	(void)state;
	memset(g, 0, sizeof(g));
	(void)dns_route_lookup(r, "example.test", on_route, &g[0]);
	(void)dns_route_lookup(r, "[192.0.2.1]", on_route, &g[1]);
	(void)dns_tlsa_lookup(r, "mx1.example.test", 25, on_tlsa, &g[2]);
	(void)dns_route_lookup(r, "many.example.test", on_route, &g[3]);
	dns_resolver_free(r);
	run_until(NULL, 0, 100);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(g[i].calls, 0);
		got_free(&g[i]);
	}
	dns_resolver_free(NULL);
}

static void
test_free_in_callback(void **state)
{
	struct dns_resolver *r = test_resolver();
	struct got g1, g2;

	(void)state;
	memset(&g1, 0, sizeof(g1));
	memset(&g2, 0, sizeof(g2));
	g1.free_resolver = &r;
	(void)dns_route_lookup(r, "[192.0.2.1]", on_route, &g1);
	(void)dns_route_lookup(r, "many.example.test", on_route, &g2);
	run_until(&g1.calls, 1, WAIT_MS);
	assert_null(r);
	run_until(NULL, 0, 100);
	assert_int_equal(g2.calls, 0);
	got_free(&g1);
	got_free(&g2);
}

/* A server that never answers: the lookup ends at the deadline. */
static void
test_timeout(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	char resolver[64];
	struct dns_resolver *r;
	struct got g;

	(void)state;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	snprintf(resolver, sizeof(resolver), "127.0.0.1@%d",
	    ntohs(sin.sin_port));
	r = resolver_with(resolver, NULL, 300);
	struct dns_route *rt = route_of(r, "example.test", &g);
	assert_int_equal(rt->status, DNS_TEMPFAIL);
	assert_non_null(rt->error);
	got_free(&g);
	memset(&g, 0, sizeof(g));
	(void)dns_tlsa_lookup(r, "mx1.example.test", 25, on_tlsa, &g);
	run_until(&g.calls, 1, WAIT_MS);
	assert_int_equal(g.tlsa->status, DNS_TEMPFAIL);
	assert_non_null(strstr(g.tlsa->error, "timed out"));
	got_free(&g);
	dns_resolver_free(r);
	close(fd);
}

/* A trust anchor for the zone, which the server does not sign: every
 * answer is bogus and must not be used. */
static void
test_bogus_is_temporary(void **state)
{
	char path[128];
	FILE *f;
	struct dns_resolver *r;
	struct got g;

	(void)state;
	if (srv.pid <= 0)
		skip();
	snprintf(path, sizeof(path), "%s/anchor.ds", srv.dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "example.test. IN DS 12345 13 2 "
	    "0000000000000000000000000000000000000000000000000000000000000000"
	    "\n");
	assert_int_equal(fclose(f), 0);
	r = resolver_with(srv.resolver, path, 0);
	struct dns_route *rt = route_of(r, "example.test", &g);
	assert_int_equal(rt->status, DNS_TEMPFAIL);
	assert_non_null(strstr(rt->error, "DNSSEC"));
	got_free(&g);
	rt = route_of(r, "nx.example.test", &g);
	assert_int_equal(rt->status, DNS_TEMPFAIL);
	got_free(&g);
	memset(&g, 0, sizeof(g));
	(void)dns_tlsa_lookup(r, "mx1.example.test", 25, on_tlsa, &g);
	run_until(&g.calls, 1, WAIT_MS);
	assert_int_equal(g.tlsa->status, DNS_TEMPFAIL);
	got_free(&g);
	dns_resolver_free(r);
	unlink(path);
}

static void
test_bad_config(void **state)
{
	static const char *const bad[] = { "not-an-address", "127.0.0.1@x",
		" , " };
	const char *err = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct dns_config cfg = { bad[i], NULL, 0 };
		err = NULL;
		assert_null(dns_resolver_new(srv.base, &cfg, &err));
		assert_non_null(err);
	}
	struct dns_config cfg = { "127.0.0.1@1", "/nonexistent/anchor", 0 };
	err = NULL;
	assert_null(dns_resolver_new(srv.base, &cfg, &err));
	assert_non_null(err);
}

/* The system's resolver: reserved .test names never leave libunbound,
 * literals need no DNS at all. Nothing here reaches the network. */
static void
test_system_resolver(void **state)
{
	struct dns_resolver *r = resolver_with(NULL, NULL, 0);
	struct got g;
	struct dns_route *rt;

	(void)state;
	rt = route_of(r, "example.test", &g);
	assert_int_equal(rt->status, DNS_NXDOMAIN);
	got_free(&g);
	rt = route_of(r, "[192.0.2.1]", &g);
	assert_int_equal(rt->status, DNS_OK);
	got_free(&g);
	dns_resolver_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mx_order),
		cmocka_unit_test(test_equal_preferences_shuffled),
		cmocka_unit_test(test_implicit_mx),
		cmocka_unit_test(test_null_mx),
		cmocka_unit_test(test_nxdomain),
		cmocka_unit_test(test_mx_hosts_without_addresses),
		cmocka_unit_test(test_no_mx_no_address),
		cmocka_unit_test(test_refused_is_temporary),
		cmocka_unit_test(test_duplicates_and_limit),
		cmocka_unit_test(test_address_literals),
		cmocka_unit_test(test_invalid_names),
		cmocka_unit_test(test_host_lookup),
		cmocka_unit_test(test_tlsa),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_free_with_outstanding),
		cmocka_unit_test(test_free_in_callback),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_bogus_is_temporary),
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_system_resolver),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
