/* Unit tests for src/core/config.c: defaults, loading, errors, addresses. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/xmalloc.h"

static char tmpdir[] = "/tmp/correo-test-config-XXXXXX";
static int file_seq;

static int
group_setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int
group_teardown(void **state)
{
	(void)state;
	for (int i = 1; i <= file_seq; i++) {
		char *p = x_asprintf("%s/%d.conf", tmpdir, i);
		unlink(p);
		free(p);
	}
	return rmdir(tmpdir);
}

/* Writes text to a new file in tmpdir; returns its path (caller frees). */
static char *
write_conf(const char *text)
{
	char *path = x_asprintf("%s/%d.conf", tmpdir, ++file_seq);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
	assert_int_equal(fclose(fp), 0);
	return path;
}

/* Loads text over the defaults; returns config_load's result. */
static int
load_text(struct config *cfg, const char *text, char **path_r, char **err)
{
	char *path = write_conf(text);
	config_init_defaults(cfg);
	*err = NULL;
	int r = config_load(cfg, path, err);
	if (path_r != NULL)
		*path_r = path;
	else
		free(path);
	return r;
}

/* Expects text to fail with "PATH:LINE: ..." containing what. */
static void
expect_error(const char *text, int line, const char *what)
{
	struct config cfg;
	char *path, *err;

	assert_int_equal(load_text(&cfg, text, &path, &err), -1);
	assert_non_null(err);
	char *prefix = x_asprintf("%s:%d: ", path, line);
	if (strncmp(err, prefix, strlen(prefix)) != 0 ||
	    strstr(err, what) == NULL)
		fail_msg("got \"%s\", want \"%s...%s\"", err, prefix, what);
	free(prefix);
	free(err);
	free(path);
	config_free(&cfg);
}

static void
test_defaults(void **state)
{
	struct config cfg;
	char *err = NULL;

	(void)state;
	config_init_defaults(&cfg);
	assert_null(cfg.path);
	assert_false(cfg.embedded);
	assert_true(cfg.hostname[0] != '\0');
	assert_string_equal(cfg.data_dir, "/var/lib/correo");
	assert_string_equal(cfg.user, "");
	assert_string_equal(cfg.listen[SVC_SMTP], "0.0.0.0:25");
	assert_string_equal(cfg.listen[SVC_SUBMISSION], "0.0.0.0:587");
	assert_string_equal(cfg.listen[SVC_SUBMISSIONS], "0.0.0.0:465");
	assert_string_equal(cfg.listen[SVC_IMAP], "0.0.0.0:143");
	assert_string_equal(cfg.listen[SVC_IMAPS], "0.0.0.0:993");
	assert_string_equal(cfg.listen[SVC_POP3], "0.0.0.0:110");
	assert_string_equal(cfg.listen[SVC_POP3S], "0.0.0.0:995");
	assert_string_equal(cfg.listen[SVC_ODMR], "");
	assert_string_equal(cfg.tls_cert, "");
	assert_string_equal(cfg.tls_key, "");
	assert_int_equal(cfg.max_message_size, 50 * 1024 * 1024);
	assert_int_equal(cfg.max_recipients, 100);
	assert_int_equal(cfg.max_connections, 10000);
	assert_int_equal(cfg.max_connections_per_ip, 100);
	assert_int_equal(cfg.command_timeout, 300);
	assert_int_equal(cfg.data_timeout, 180);
	assert_int_equal(cfg.max_errors, 20);
	assert_string_equal(cfg.resolver, "");
	assert_int_equal(cfg.remote_port, 25);
	assert_string_equal(cfg.relayhost, "");
	assert_int_equal(config_validate(&cfg, &err), 0);
	config_free(&cfg);
	assert_null(cfg.hostname);
	config_free(&cfg);	/* twice is harmless */
}

static void
test_embedded(void **state)
{
	static const char *const want[SVC_COUNT] = {
		"127.0.0.1:2525", "127.0.0.1:2587", "127.0.0.1:2465",
		"127.0.0.1:1143", "127.0.0.1:1993", "127.0.0.1:1110",
		"127.0.0.1:1995", "",
	};
	struct config cfg;
	char *err = NULL;

	(void)state;
	config_init_embedded(&cfg);
	assert_true(cfg.embedded);
	assert_null(cfg.path);
	assert_string_equal(cfg.hostname, "localhost");
	assert_string_equal(cfg.data_dir, "./var");
	for (int i = 0; i < SVC_COUNT; i++)
		assert_string_equal(cfg.listen[i], want[i]);
	assert_int_equal(cfg.max_message_size, 50 * 1024 * 1024);
	assert_int_equal(cfg.remote_port, 25);
	assert_int_equal(config_validate(&cfg, &err), 0);
	config_free(&cfg);
}

static void
test_service_names(void **state)
{
	static const char *const names[SVC_COUNT] = {
		"smtp", "submission", "submissions", "imap", "imaps",
		"pop3", "pop3s", "odmr",
	};

	(void)state;
	for (int i = 0; i < SVC_COUNT; i++) {
		assert_string_equal(service_name((enum service)i), names[i]);
		bool tls = i == SVC_SUBMISSIONS || i == SVC_IMAPS ||
		    i == SVC_POP3S;
		assert_int_equal(service_implicit_tls((enum service)i), tls);
	}
	assert_string_equal(service_name(SVC_COUNT), "unknown");
	assert_false(service_implicit_tls(SVC_COUNT));
}

static const char full_conf[] =
	"; a comment\n"
	"# another\n"
	"[server]\n"
	"hostname = mx.example.test\n"
	"data_dir = /srv/correo\n"
	"user = correo\n"
	"\n"
	"[smtp]\nlisten = 192.0.2.1:25, [2001:db8::1]:25\n"
	"[submission]\nlisten = :587\n"
	"[submissions]\nlisten = *:465\n"
	"[imap]\nlisten = localhost:143\n"
	"[imaps]\nlisten = 0.0.0.0:993\n"
	"[pop3]\nlisten = 0.0.0.0:110\n"
	"[pop3s]\nlisten = 0.0.0.0:995\n"
	"[odmr]\nlisten = 0.0.0.0:366\n"
	"[tls]\ncert = /etc/correo/fullchain.pem\n"
	"key = /etc/correo/privkey.pem\n"
	"[limits]\n"
	"max_message_size = 10k\n"
	"max_recipients = 50\n"
	"max_connections = 200\n"
	"max_connections_per_ip = 20\n"
	"command_timeout = 60\n"
	"data_timeout = 30\n"
	"max_errors = 5\n"
	"[delivery]\n"
	"resolver = 127.0.0.1@5353\n"
	"remote_port = 2526\n"
	"relayhost = smtp.example.net:587\n";

static void
test_full_file(void **state)
{
	struct config cfg;
	char *path, *err;

	(void)state;
	assert_int_equal(load_text(&cfg, full_conf, &path, &err), 0);
	assert_null(err);
	assert_string_equal(cfg.path, path);
	assert_false(cfg.embedded);
	assert_string_equal(cfg.hostname, "mx.example.test");
	assert_string_equal(cfg.data_dir, "/srv/correo");
	assert_string_equal(cfg.user, "correo");
	assert_string_equal(cfg.listen[SVC_SMTP],
	    "192.0.2.1:25, [2001:db8::1]:25");
	assert_string_equal(cfg.listen[SVC_SUBMISSION], ":587");
	assert_string_equal(cfg.listen[SVC_SUBMISSIONS], "*:465");
	assert_string_equal(cfg.listen[SVC_IMAP], "localhost:143");
	assert_string_equal(cfg.listen[SVC_ODMR], "0.0.0.0:366");
	assert_string_equal(cfg.tls_cert, "/etc/correo/fullchain.pem");
	assert_string_equal(cfg.tls_key, "/etc/correo/privkey.pem");
	assert_int_equal(cfg.max_message_size, 10240);
	assert_int_equal(cfg.max_recipients, 50);
	assert_int_equal(cfg.max_connections, 200);
	assert_int_equal(cfg.max_connections_per_ip, 20);
	assert_int_equal(cfg.command_timeout, 60);
	assert_int_equal(cfg.data_timeout, 30);
	assert_int_equal(cfg.max_errors, 5);
	assert_string_equal(cfg.resolver, "127.0.0.1@5353");
	assert_int_equal(cfg.remote_port, 2526);
	assert_string_equal(cfg.relayhost, "smtp.example.net:587");
	assert_int_equal(config_validate(&cfg, &err), 0);
	free(path);
	config_free(&cfg);
}

static void
test_sizes(void **state)
{
	static const struct { const char *v; uint64_t want; } t[] = {
		{ "1k", 1024 }, { "1024", 1024 }, { "50M", 50ULL << 20 },
		{ "1G", 1ULL << 30 }, { "2g", 2ULL << 30 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct config cfg;
		char *err;
		char *text = x_asprintf("[limits]\nmax_message_size = %s\n",
		    t[i].v);
		assert_int_equal(load_text(&cfg, text, NULL, &err), 0);
		assert_int_equal(cfg.max_message_size, t[i].want);
		free(text);
		config_free(&cfg);
	}
}

static void
test_inline_comments(void **state)
{
	struct config cfg;
	char *err;

	(void)state;
	assert_int_equal(load_text(&cfg,
	    "[server]   ; the server\n"
	    "hostname = mx.example.test      ; greeting, Received:\n"
	    "data_dir = /srv/a;b\n"
	    "user =                          ; keep the identity\n"
	    "[limits]\n"
	    "max_recipients = 7\t; tab before\n", NULL, &err), 0);
	assert_string_equal(cfg.hostname, "mx.example.test");
	assert_string_equal(cfg.data_dir, "/srv/a;b");
	assert_string_equal(cfg.user, "");
	assert_int_equal(cfg.max_recipients, 7);
	config_free(&cfg);
}

static void
test_empty_values(void **state)
{
	struct config cfg;
	char *err = NULL;

	(void)state;
	assert_int_equal(load_text(&cfg,
	    "[server]\nuser =\n"
	    "[smtp]\nlisten =\n"
	    "[imap]\nlisten =   \n"
	    "[tls]\ncert =\nkey =\n"
	    "[delivery]\nresolver =\nrelayhost =\n", NULL, &err), 0);
	assert_string_equal(cfg.user, "");
	assert_string_equal(cfg.listen[SVC_SMTP], "");
	assert_string_equal(cfg.listen[SVC_IMAP], "");
	assert_string_equal(cfg.listen[SVC_SUBMISSION], "0.0.0.0:587");
	assert_string_equal(cfg.resolver, "");
	assert_int_equal(config_validate(&cfg, &err), 0);
	config_free(&cfg);
}

/* An indented key is a key, not the continuation of the previous value. */
static void
test_indentation_and_crlf(void **state)
{
	struct config cfg;
	char *err;

	(void)state;
	assert_int_equal(load_text(&cfg,
	    "\xEF\xBB\xBF[server]\r\n"
	    "  hostname = a.example.test\r\n"
	    "\tdata_dir = /srv/x\r\n"
	    "  [limits]\n  max_errors = 3", NULL, &err), 0);
	assert_string_equal(cfg.hostname, "a.example.test");
	assert_string_equal(cfg.data_dir, "/srv/x");
	assert_int_equal(cfg.max_errors, 3);
	config_free(&cfg);
}

static void
test_errors(void **state)
{
	(void)state;
	expect_error("[server]\nhostname = a\n[bogus]\n", 3,
	    "unknown section [bogus]");
	expect_error("[server]\n\n[bogus]\nx = 1\n", 3,
	    "unknown section [bogus]");
	expect_error("[server]\nhostname = a\nhostnam = b\n", 3,
	    "unknown key \"hostnam\" in [server]");
	expect_error("[smtp]\nport = 25\n", 2, "unknown key \"port\"");
	expect_error("[limits]\n\nmax_message_size = 50X\n", 3,
	    "bad size \"50X\" for max_message_size");
	expect_error("[limits]\nmax_message_size = 1023\n", 2, "bad size");
	expect_error("[limits]\nmax_message_size =\n", 2, "bad size");
	expect_error("[limits]\nmax_recipients = many\n", 2,
	    "bad number \"many\" for max_recipients");
	expect_error("[limits]\nmax_connections = 0\n", 2, "bad number");
	expect_error("[limits]\nmax_errors = -1\n", 2, "bad number");
	expect_error("[limits]\ncommand_timeout = 99999999999999999999\n", 2,
	    "bad number");
	expect_error("[delivery]\nremote_port = 65536\n", 2, "bad number");
	expect_error("[server]\nhostname = a\nuser = x\nhostname = b\n", 4,
	    "duplicate key \"hostname\" in [server] (first set on line 2)");
	expect_error("[smtp]\nlisten = :25\n[smtp]\nlisten = :26\n", 4,
	    "duplicate key \"listen\"");
	expect_error("hostname = a\n", 1, "outside any section");
	expect_error("[server]\nhostname a\n", 2, "syntax error");
	expect_error("[server\nhostname = a\n", 1, "syntax error");
	expect_error("[server]\nhostname =\n", 2, "may not be empty");
}

static void
test_error_first_wins(void **state)
{
	(void)state;
	/* a syntax error before a handler error is the one reported */
	expect_error("[server]\nbroken\n[limits]\nmax_errors = x\n", 2,
	    "syntax error");
	expect_error("[limits]\nmax_errors = x\nbroken\n", 2, "bad number");
}

static void
test_long_line(void **state)
{
	char val[1100];

	(void)state;
	memset(val, 'a', sizeof(val) - 1);
	val[sizeof(val) - 1] = '\0';
	char *text = x_asprintf("[server]\nuser = x\ndata_dir = /%s\n", val);
	expect_error(text, 3, "line too long");
	free(text);
}

static void
test_missing_file(void **state)
{
	struct config cfg;
	char *err = NULL;

	(void)state;
	config_init_defaults(&cfg);
	char *path = x_asprintf("%s/does-not-exist.conf", tmpdir);
	assert_int_equal(config_load(&cfg, path, &err), -1);
	assert_non_null(err);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "No such file"));
	free(err);
	free(path);
	config_free(&cfg);
}

static void
expect_hostport(const char *s, const char *host, const char *port)
{
	char h[64], p[8];

	if (config_parse_hostport(s, h, sizeof(h), p, sizeof(p)) < 0)
		fail_msg("\"%s\" did not parse", s);
	assert_string_equal(h, host);
	assert_string_equal(p, port);
}

static void
test_hostport(void **state)
{
	static const char *const bad[] = {
		"", "25", ":", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0",
		"127.0.0.1:65536", "127.0.0.1:2x", "127.0.0.1:+25",
		"127.0.0.1:-1", "::1:25", "[::1]25", "[::1]:", "[]:25",
		"[127.0.0.1]:25", "[::1:25", "bad host:25", "a/b:25",
		"**:25", "host:123456", " 127.0.0.1:25",
	};
	char h[64], p[8], tiny[4];

	(void)state;
	expect_hostport("[::1]:25", "::1", "25");
	expect_hostport("[2001:db8::1]:587", "2001:db8::1", "587");
	expect_hostport("127.0.0.1:2525", "127.0.0.1", "2525");
	expect_hostport("*:25", "", "25");
	expect_hostport(":25", "", "25");
	expect_hostport("localhost:25", "localhost", "25");
	expect_hostport("mx.example.test:65535", "mx.example.test", "65535");
	expect_hostport("host:1", "host", "1");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (config_parse_hostport(bad[i], h, sizeof(h), p,
		    sizeof(p)) == 0)
			fail_msg("\"%s\" parsed as host \"%s\" port \"%s\"",
			    bad[i], h, p);
	/* a host that does not fit is an error, not a truncation */
	assert_int_equal(config_parse_hostport("mx.example.test:25", tiny,
	    sizeof(tiny), p, sizeof(p)), -1);
	assert_int_equal(config_parse_hostport("a:25", h, sizeof(h), tiny,
	    2), -1);
}

static void
set_field(char **field, const char *value)
{
	free(*field);
	*field = x_strdup(value);
}

static void
expect_validate(struct config *cfg, int want, const char *what)
{
	char *err = NULL;
	int r = config_validate(cfg, &err);

	if (r != want)
		fail_msg("validate returned %d (%s), want %d", r,
		    err ? err : "no message", want);
	if (want < 0) {
		assert_non_null(err);
		if (strstr(err, what) == NULL)
			fail_msg("got \"%s\", want \"%s\"", err, what);
	}
	free(err);
}

static void
test_validate_listen(void **state)
{
	struct config cfg;

	(void)state;
	config_init_defaults(&cfg);
	set_field(&cfg.listen[SVC_SMTP],
	    "127.0.0.1:25 , [::1]:25,\t*:2525");
	expect_validate(&cfg, 0, NULL);
	set_field(&cfg.listen[SVC_SMTP], "127.0.0.1:25,,[::1]:25");
	expect_validate(&cfg, -1, "[smtp] listen: bad address \"\"");
	set_field(&cfg.listen[SVC_SMTP], "127.0.0.1:25,");
	expect_validate(&cfg, -1, "[smtp] listen");
	set_field(&cfg.listen[SVC_SMTP], "");
	set_field(&cfg.listen[SVC_POP3S], "0.0.0.0");
	expect_validate(&cfg, -1, "embedded configuration: [pop3s] listen: "
	    "bad address \"0.0.0.0\"");
	config_free(&cfg);
}

static void
test_validate_values(void **state)
{
	struct config cfg;

	(void)state;
	config_init_defaults(&cfg);
	cfg.max_connections_per_ip = cfg.max_connections + 1;
	expect_validate(&cfg, -1, "max_connections_per_ip");
	cfg.max_connections_per_ip = cfg.max_connections;
	expect_validate(&cfg, 0, NULL);

	static const char *const good_resolvers[] = {
		"", "127.0.0.1", "::1", "127.0.0.1@5353", "::1@53",
	};
	static const char *const bad_resolvers[] = {
		"localhost", "127.0.0.1@", "127.0.0.1@0", "@53",
		"127.0.0.1:53", "1.2.3.4@70000",
	};
	for (size_t i = 0; i < 5; i++) {
		set_field(&cfg.resolver, good_resolvers[i]);
		expect_validate(&cfg, 0, NULL);
	}
	for (size_t i = 0; i < 6; i++) {
		set_field(&cfg.resolver, bad_resolvers[i]);
		expect_validate(&cfg, -1, "[delivery] resolver");
	}
	set_field(&cfg.resolver, "");

	set_field(&cfg.relayhost, "[::1]:2525");
	expect_validate(&cfg, 0, NULL);
	set_field(&cfg.relayhost, "smtp.example.net");
	expect_validate(&cfg, -1, "[delivery] relayhost");
	set_field(&cfg.relayhost, ":25");
	expect_validate(&cfg, -1, "[delivery] relayhost");
	set_field(&cfg.relayhost, "");

	set_field(&cfg.tls_cert, "/etc/cert.pem");
	expect_validate(&cfg, -1, "[tls] cert and key");
	set_field(&cfg.tls_key, "/etc/key.pem");
	expect_validate(&cfg, 0, NULL);

	set_field(&cfg.hostname, "bad host");
	expect_validate(&cfg, -1, "[server] hostname");
	config_free(&cfg);
}

/* A file's values are checked against the file's name in messages. */
static void
test_validate_after_load(void **state)
{
	struct config cfg;
	char *path, *err;

	(void)state;
	assert_int_equal(load_text(&cfg,
	    "[limits]\nmax_connections = 10\nmax_connections_per_ip = 11\n",
	    &path, &err), 0);
	assert_int_equal(config_validate(&cfg, &err), -1);
	char *prefix = x_asprintf("%s: ", path);
	assert_memory_equal(err, prefix, strlen(prefix));
	free(prefix);
	free(err);
	free(path);
	config_free(&cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_embedded),
		cmocka_unit_test(test_service_names),
		cmocka_unit_test(test_full_file),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_inline_comments),
		cmocka_unit_test(test_empty_values),
		cmocka_unit_test(test_indentation_and_crlf),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_error_first_wins),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_hostport),
		cmocka_unit_test(test_validate_listen),
		cmocka_unit_test(test_validate_values),
		cmocka_unit_test(test_validate_after_load),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
