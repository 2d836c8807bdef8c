/* Unit tests for src/auth/sasl.c and the SCRAM storage of src/auth/userdb.c:
 * PLAIN, LOGIN, SCRAM-SHA-256 and -PLUS against clients made with gsasl's
 * own client side, mechanism lists, secrets, SASLprep, schema migration.
 * One data_dir for the group (user setup hashes with yescrypt: slow). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gsasl.h>
#include <sqlite3.h>

#include "auth/password.h"
#include "auth/sasl.h"
#include "auth/userdb.h"
#include "core/xmalloc.h"

#define ALICE "alice@example.org"
#define ALICE_PW "correct horse battery"
#define CAROL "carol@example.org"	/* no SCRAM secrets */
#define CAROL_PW "carols secret"

struct fixture {
	char dir[64];
	struct userdb *db;
	Gsasl *client;
};

static struct fixture *fx;

/* What the test's SCRAM client answers when gsasl asks. */
struct client {
	const char *authid;
	const char *password;
	const char *authzid;
	const char *cb_b64;
};

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st, (void)flag, (void)f;
	return remove(path);
}

static int
client_cb(Gsasl *ctx, Gsasl_session *s, Gsasl_property prop)
{
	struct client *c = gsasl_session_hook_get(s);
	const char *v = NULL;

	(void)ctx;
	if (prop == GSASL_AUTHID)
		v = c->authid;
	else if (prop == GSASL_PASSWORD)
		v = c->password;
	else if (prop == GSASL_AUTHZID)
		v = c->authzid;
	else if (prop == GSASL_CB_TLS_EXPORTER)
		v = c->cb_b64;
	if (v == NULL)
		return GSASL_NO_CALLBACK;
	return gsasl_property_set(s, prop, v);
}

static void
add_user(const char *address, const char *pw, bool scram)
{
	char hash[256], secrets[256];
	char *error = NULL;

	assert_int_equal(password_hash(pw, hash, sizeof(hash)), 0);
	assert_int_equal(userdb_user_add(fx->db, address, hash, &error), 0);
	if (scram) {
		assert_int_equal(sasl_scram_secrets(pw, secrets,
		    sizeof(secrets)), 0);
		assert_int_equal(userdb_user_set_scram(fx->db, address,
		    secrets, &error), 0);
	}
}

static int
group_setup(void **state)
{
	char *error = NULL;

	(void)state;
	fx = x_calloc(1, sizeof(*fx));
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/correo-test-sasl-XXXXXX");
	if (mkdtemp(fx->dir) == NULL || sasl_init() < 0)
		return -1;
	fx->db = userdb_open(fx->dir, &error);
	if (fx->db == NULL) {
		fprintf(stderr, "userdb_open: %s\n", error);
		return -1;
	}
	if (gsasl_init(&fx->client) != GSASL_OK)
		return -1;
	gsasl_callback_set(fx->client, client_cb);
	add_user(ALICE, ALICE_PW, true);
	add_user(CAROL, CAROL_PW, false);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	gsasl_done(fx->client);
	userdb_close(fx->db);
	sasl_deinit();
	int r = nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	x_free(&fx);
	return r;
}

/* ---- helpers ---------------------------------------------------------------- */

static char *
b64(const char *s, size_t n)
{
	char *out = NULL;

	assert_int_equal(gsasl_base64_to(s, n, &out, NULL), GSASL_OK);
	return out;
}

/* base64 of "authzid\0authcid\0password". */
static char *
plain_msg(const char *authzid, const char *authcid, const char *pw)
{
	char buf[512];
	int n = snprintf(buf, sizeof(buf), "%s%c%s%c%s", authzid, 0, authcid,
	    0, pw);
	assert_true(n > 0 && (size_t)n < sizeof(buf));
	return b64(buf, (size_t)n);
}

/* One PLAIN exchange with an initial response; the user on success. */
static enum sasl_result
plain(const char *authzid, const char *authcid, const char *pw,
    char **user_r)
{
	struct sasl_exchange *x = sasl_exchange_new(fx->db, "PLAIN", NULL, 0);
	char *msg = plain_msg(authzid, authcid, pw), *out = NULL;

	assert_non_null(x);
	enum sasl_result r = sasl_step(x, msg, &out);
	if (r == SASL_OK)
		assert_string_equal(out, "");
	*user_r = sasl_user(x) != NULL ? x_strdup(sasl_user(x)) : NULL;
	if (r != SASL_OK)
		assert_null(sasl_user(x));
	free(out);
	free(msg);
	sasl_exchange_free(x);
	return r;
}

static double
seconds_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) +
	    (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* ---- mechanisms --------------------------------------------------------------- */

static void
test_mechanisms(void **state)
{
	(void)state;
	assert_string_equal(sasl_mechanisms(true),
	    "SCRAM-SHA-256-PLUS SCRAM-SHA-256 PLAIN LOGIN");
	assert_string_equal(sasl_mechanisms(false),
	    "SCRAM-SHA-256 PLAIN LOGIN");
	assert_true(sasl_mechanism_offered("plain", false));
	assert_true(sasl_mechanism_offered("scram-sha-256-plus", true));
	assert_false(sasl_mechanism_offered("SCRAM-SHA-256-PLUS", false));
	assert_false(sasl_mechanism_offered("CRAM-MD5", true));
	assert_false(sasl_mechanism_offered("ANONYMOUS", true));
	assert_false(sasl_mechanism_offered("", true));
	assert_false(sasl_mechanism_offered(NULL, true));
	assert_null(sasl_exchange_new(fx->db, "SCRAM-SHA-256-PLUS", NULL, 0));
	assert_null(sasl_exchange_new(fx->db, "GSSAPI", NULL, 0));
	struct sasl_exchange *x = sasl_exchange_new(fx->db, "Plain", NULL, 0);
	assert_non_null(x);
	assert_string_equal(sasl_authid(x), "");
	assert_null(sasl_user(x));
	sasl_exchange_free(x);
}

/* ---- PLAIN -------------------------------------------------------------------- */

static void
test_plain_ok(void **state)
{
	char *user;

	(void)state;
	assert_int_equal(plain("", ALICE, ALICE_PW, &user), SASL_OK);
	assert_string_equal(user, ALICE);
	free(user);
	/* Looked up case-insensitively, answered in canonical form. */
	assert_int_equal(plain("", "Alice@EXAMPLE.org", ALICE_PW, &user),
	    SASL_OK);
	assert_string_equal(user, ALICE);
	free(user);
	/* An authzid naming the same user is fine. */
	assert_int_equal(plain("ALICE@example.org", ALICE, ALICE_PW, &user),
	    SASL_OK);
	assert_string_equal(user, ALICE);
	free(user);
	/* A user without SCRAM secrets still has PLAIN. */
	assert_int_equal(plain("", CAROL, CAROL_PW, &user), SASL_OK);
	assert_string_equal(user, CAROL);
	free(user);
}

static void
test_plain_wrong_password(void **state)
{
	struct sasl_exchange *x = sasl_exchange_new(fx->db, "PLAIN", NULL, 0);
	char *msg = plain_msg("", ALICE, "wrong"), *out = NULL;

	(void)state;
	assert_int_equal(sasl_step(x, msg, &out), SASL_FAIL);
	assert_null(out);
	assert_null(sasl_user(x));
	assert_string_equal(sasl_authid(x), ALICE);
	/* The exchange is over: nothing more is taken. */
	assert_int_equal(sasl_step(x, msg, &out), SASL_MALFORMED);
	free(msg);
	sasl_exchange_free(x);
}

static void
test_plain_unknown_user(void **state)
{
	struct timespec t0;
	char *user;

	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(plain("", ALICE, "wrong", &user), SASL_FAIL);
	double known = seconds_since(&t0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(plain("", "nobody@example.org", "wrong", &user),
	    SASL_FAIL);
	assert_null(user);
	double unknown = seconds_since(&t0);
	/* A hash is verified either way (loose: machines are noisy). */
	assert_true(unknown > known / 4);
	assert_int_equal(plain("", "no-at-sign", "wrong", &user), SASL_FAIL);
	assert_int_equal(plain("", "../x@example.org", "x", &user),
	    SASL_FAIL);
}

static void
test_plain_authzid_mismatch(void **state)
{
	char *user;

	(void)state;
	assert_int_equal(plain(CAROL, ALICE, ALICE_PW, &user), SASL_FAIL);
	assert_null(user);
	assert_int_equal(plain("admin", ALICE, ALICE_PW, &user), SASL_FAIL);
}

static void
test_plain_malformed(void **state)
{
	static const char *const bad[] = {
		"!!!!", "YWJj*", "YW Jj", "YWJjZA=x", "=", "==",
	};
	char *out;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sasl_exchange *x = sasl_exchange_new(fx->db, "PLAIN",
		    NULL, 0);
		enum sasl_result r = sasl_step(x, bad[i], &out);
		if (r != SASL_MALFORMED)
			fprintf(stderr, "input \"%s\": %d\n", bad[i], r);
		assert_int_equal(r, SASL_MALFORMED);
		assert_null(out);
		sasl_exchange_free(x);
	}
	/* Valid base64, but not authzid NUL authcid NUL password. */
	static const char *const shapes[] = {
		"aGVsbG8=",		/* "hello" */
		"AGFsaWNl",		/* "\0alice" */
	};
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		struct sasl_exchange *x = sasl_exchange_new(fx->db, "PLAIN",
		    NULL, 0);
		assert_int_equal(sasl_step(x, shapes[i], &out),
		    SASL_MALFORMED);
		sasl_exchange_free(x);
	}
}

static void
test_plain_empty(void **state)
{
	struct sasl_exchange *x = sasl_exchange_new(fx->db, "PLAIN", NULL, 0);
	char *out = NULL, *user;

	(void)state;
	/* No initial response: an empty challenge asks for one. */
	assert_int_equal(sasl_step(x, "", &out), SASL_CONTINUE);
	assert_string_equal(out, "");
	free(out);
	/* An empty response to it is not a PLAIN message. */
	assert_int_equal(sasl_step(x, "", &out), SASL_MALFORMED);
	assert_null(out);
	sasl_exchange_free(x);

	/* The same exchange with a real response after the challenge. */
	x = sasl_exchange_new(fx->db, "PLAIN", NULL, 0);
	assert_int_equal(sasl_step(x, "", &out), SASL_CONTINUE);
	free(out);
	char *msg = plain_msg("", ALICE, ALICE_PW);
	assert_int_equal(sasl_step(x, msg, &out), SASL_OK);
	assert_string_equal(sasl_user(x), ALICE);
	free(out);
	free(msg);
	sasl_exchange_free(x);

	/* Empty password, empty user name. */
	assert_int_equal(plain("", ALICE, "", &user), SASL_FAIL);
	assert_true(plain("", "", ALICE_PW, &user) != SASL_OK);
}

/* ---- LOGIN -------------------------------------------------------------------- */

static void
login_run(const char *first, const char *user, const char *pw,
    enum sasl_result want)
{
	struct sasl_exchange *x = sasl_exchange_new(fx->db, "LOGIN", NULL, 0);
	char *u = b64(user, strlen(user)), *p = b64(pw, strlen(pw));
	char *out = NULL;

	if (first == NULL) {
		assert_int_equal(sasl_step(x, "", &out), SASL_CONTINUE);
		assert_string_equal(out, "VXNlciBOYW1l");	/* User Name */
		free(out);
		assert_int_equal(sasl_step(x, u, &out), SASL_CONTINUE);
	} else
		assert_int_equal(sasl_step(x, u, &out), SASL_CONTINUE);
	assert_string_equal(out, "UGFzc3dvcmQ=");		/* Password */
	free(out);
	assert_int_equal(sasl_step(x, p, &out), want);
	if (want == SASL_OK) {
		assert_string_equal(out, "");
		assert_string_equal(sasl_user(x), ALICE);
	} else
		assert_null(sasl_user(x));
	free(out);
	free(u);
	free(p);
	sasl_exchange_free(x);
}

static void
test_login(void **state)
{
	char *out = NULL;

	(void)state;
	login_run(NULL, ALICE, ALICE_PW, SASL_OK);
	login_run(NULL, "ALICE@example.org", ALICE_PW, SASL_OK);
	login_run("initial", ALICE, ALICE_PW, SASL_OK);
	login_run(NULL, ALICE, "nope", SASL_FAIL);
	login_run(NULL, "who@example.org", ALICE_PW, SASL_FAIL);

	struct sasl_exchange *x = sasl_exchange_new(fx->db, "LOGIN", NULL, 0);
	assert_int_equal(sasl_step(x, "", &out), SASL_CONTINUE);
	free(out);
	assert_int_equal(sasl_step(x, "", &out), SASL_MALFORMED);
	sasl_exchange_free(x);
}

/* ---- SCRAM -------------------------------------------------------------------- */

struct scram_run {
	enum sasl_result result;
	bool server_verified;	/* the client accepted the server's proof */
	char server_first[256];	/* decoded */
	char user[128];
};

/* Runs one SCRAM exchange between a gsasl client and sasl_step. */
static void
scram(const char *mech, struct client *c, const unsigned char *cb,
    struct scram_run *run)
{
	Gsasl_session *cs;
	char *cout = NULL, *sout = NULL;

	memset(run, 0, sizeof(*run));
	assert_int_equal(gsasl_client_start(fx->client, mech, &cs), GSASL_OK);
	gsasl_session_hook_set(cs, c);
	struct sasl_exchange *x = sasl_exchange_new(fx->db, mech, cb,
	    cb != NULL ? 32 : 0);
	assert_non_null(x);
	assert_int_equal(gsasl_step64(cs, "", &cout), GSASL_NEEDS_MORE);
	for (int round = 0;; round++) {
		assert_true(round < 3);
		run->result = sasl_step(x, cout, &sout);
		gsasl_free(cout);
		cout = NULL;
		if (run->result == SASL_CONTINUE && round == 0) {
			char *d = NULL;
			size_t n = 0;
			assert_int_equal(gsasl_base64_from(sout, strlen(sout),
			    &d, &n), GSASL_OK);
			assert_true(n < sizeof(run->server_first));
			memcpy(run->server_first, d, n);
			gsasl_free(d);
		}
		if (run->result != SASL_CONTINUE)
			break;
		int rc = gsasl_step64(cs, sout, &cout);
		free(sout);
		sout = NULL;
		if (rc != GSASL_NEEDS_MORE) {
			gsasl_free(cout);
			cout = NULL;
			run->result = SASL_FAIL;
			break;
		}
	}
	if (run->result == SASL_OK) {
		run->server_verified = gsasl_step64(cs, sout, &cout) ==
		    GSASL_OK;
		gsasl_free(cout);
		snprintf(run->user, sizeof(run->user), "%s", sasl_user(x));
	} else
		assert_null(sasl_user(x));
	free(sout);
	gsasl_finish(cs);
	sasl_exchange_free(x);
}

static void
test_scram_ok(void **state)
{
	struct client c = { .authid = ALICE, .password = ALICE_PW };
	struct scram_run run;

	(void)state;
	scram("SCRAM-SHA-256", &c, NULL, &run);
	assert_int_equal(run.result, SASL_OK);
	assert_true(run.server_verified);
	assert_string_equal(run.user, ALICE);
	assert_non_null(strstr(run.server_first, ",i=10000"));
	/* The user name is found case-insensitively too. */
	c.authid = "Alice@Example.Org";
	scram("SCRAM-SHA-256", &c, NULL, &run);
	assert_int_equal(run.result, SASL_OK);
	assert_string_equal(run.user, ALICE);
	/* With TLS but a client that never binds ("n"), plain SCRAM works. */
	static const unsigned char cb[32] = { 1, 2, 3 };
	c.authid = ALICE;
	scram("SCRAM-SHA-256", &c, cb, &run);
	assert_int_equal(run.result, SASL_OK);
}

static void
test_scram_fail(void **state)
{
	struct client c = { .authid = ALICE, .password = "wrong" };
	struct scram_run run, again;

	(void)state;
	scram("SCRAM-SHA-256", &c, NULL, &run);
	assert_int_equal(run.result, SASL_FAIL);
	/* A user without SCRAM secrets fails SCRAM, whatever the password. */
	c = (struct client){ .authid = CAROL, .password = CAROL_PW };
	scram("SCRAM-SHA-256", &c, NULL, &run);
	assert_int_equal(run.result, SASL_FAIL);
	/* An unknown user gets the same iteration count and, each time, the
	 * same salt: nothing tells it from a real one. */
	c = (struct client){ .authid = "ghost@example.org", .password = "x" };
	scram("SCRAM-SHA-256", &c, NULL, &run);
	assert_int_equal(run.result, SASL_FAIL);
	assert_non_null(strstr(run.server_first, ",i=10000"));
	scram("SCRAM-SHA-256", &c, NULL, &again);
	const char *s1 = strstr(run.server_first, ",s="),
	    *s2 = strstr(again.server_first, ",s=");
	assert_non_null(s1);
	assert_non_null(s2);
	assert_string_equal(s1, s2);
	/* Acting for somebody else is refused. */
	c = (struct client){ .authid = ALICE, .password = ALICE_PW,
	    .authzid = CAROL };
	scram("SCRAM-SHA-256", &c, NULL, &run);
	assert_int_equal(run.result, SASL_FAIL);
	c.authzid = ALICE;
	scram("SCRAM-SHA-256", &c, NULL, &run);
	assert_int_equal(run.result, SASL_OK);
}

static void
test_scram_malformed(void **state)
{
	static const char *const bad[] = {
		"x,,n=a,r=b",		/* bad gs2 flag */
		"n,,r=abc",		/* no user name */
		"n,,n=alice@example.org",	/* no nonce */
	};
	char *out = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sasl_exchange *x = sasl_exchange_new(fx->db,
		    "SCRAM-SHA-256", NULL, 0);
		char *m = b64(bad[i], strlen(bad[i]));
		enum sasl_result r = sasl_step(x, m, &out);
		if (r == SASL_OK || r == SASL_CONTINUE)
			fprintf(stderr, "input \"%s\": %d\n", bad[i], r);
		assert_true(r == SASL_MALFORMED || r == SASL_FAIL);
		free(m);
		sasl_exchange_free(x);
	}
	/* A client-final that does not carry the server's nonce. */
	struct sasl_exchange *x = sasl_exchange_new(fx->db, "SCRAM-SHA-256",
	    NULL, 0);
	char *m = b64("n,,n=alice@example.org,r=abcdef", 31);
	assert_int_equal(sasl_step(x, m, &out), SASL_CONTINUE);
	free(out);
	free(m);
	m = b64("c=biws,r=abcdef,p=AAAA", 22);
	assert_true(sasl_step(x, m, &out) != SASL_OK);
	free(m);
	sasl_exchange_free(x);
}

static void
test_scram_plus(void **state)
{
	unsigned char cb[32], other[32];
	struct scram_run run;

	(void)state;
	for (size_t i = 0; i < sizeof(cb); i++) {
		cb[i] = (unsigned char)(i * 7 + 1);
		other[i] = (unsigned char)(i * 7 + 2);
	}
	char *cb64 = b64((const char *)cb, sizeof(cb));
	char *other64 = b64((const char *)other, sizeof(other));
	struct client c = { .authid = ALICE, .password = ALICE_PW,
	    .cb_b64 = cb64 };

	scram("SCRAM-SHA-256-PLUS", &c, cb, &run);
	assert_int_equal(run.result, SASL_OK);
	assert_true(run.server_verified);
	assert_string_equal(run.user, ALICE);
	/* The client's end of the TLS channel is not ours: a man in the
	 * middle. */
	c.cb_b64 = other64;
	scram("SCRAM-SHA-256-PLUS", &c, cb, &run);
	assert_int_equal(run.result, SASL_FAIL);
	/* Wrong password over a good channel. */
	c.cb_b64 = cb64;
	c.password = "wrong";
	scram("SCRAM-SHA-256-PLUS", &c, cb, &run);
	assert_int_equal(run.result, SASL_FAIL);
	free(cb64);
	free(other64);
}

/* A client that could bind, told (by someone who stripped -PLUS from the
 * list) that we cannot, says "y": over TLS that is a downgrade. Made by
 * hand, as gsasl's client refuses plain SCRAM when it has binding data. */
static void
test_scram_downgrade(void **state)
{
	static const unsigned char cb[32] = { 5 };
	const char *msg = "y,,n=alice@example.org,r=abcdefgh";
	char *m = b64(msg, strlen(msg)), *out = NULL;

	(void)state;
	struct sasl_exchange *x = sasl_exchange_new(fx->db, "SCRAM-SHA-256",
	    cb, sizeof(cb));
	assert_int_equal(sasl_step(x, m, &out), SASL_FAIL);
	assert_null(out);
	sasl_exchange_free(x);
	/* Without TLS on our side "y" is honest and goes on. */
	x = sasl_exchange_new(fx->db, "SCRAM-SHA-256", NULL, 0);
	assert_int_equal(sasl_step(x, m, &out), SASL_CONTINUE);
	free(out);
	sasl_exchange_free(x);
	free(m);
}

/* tls-unique is not offered: a -PLUS client asking for it fails. */
static void
test_scram_plus_tls_unique(void **state)
{
	static const unsigned char cb[32] = { 9 };
	struct sasl_exchange *x = sasl_exchange_new(fx->db,
	    "SCRAM-SHA-256-PLUS", cb, sizeof(cb));
	const char *msg = "p=tls-unique,,n=alice@example.org,r=abcdefgh";
	char *m = b64(msg, strlen(msg)), *out = NULL;

	(void)state;
	assert_int_equal(sasl_step(x, m, &out), SASL_FAIL);
	assert_null(out);
	free(m);
	sasl_exchange_free(x);
}

/* ---- secrets, SASLprep, storage ------------------------------------------------ */

static void
test_scram_secrets_format(void **state)
{
	char s[256], t[256], small[40];

	(void)state;
	assert_int_equal(sasl_scram_secrets("pw", s, sizeof(s)), 0);
	assert_int_equal(sasl_scram_secrets("pw", t, sizeof(t)), 0);
	assert_string_not_equal(s, t);		/* fresh salt each time */
	assert_int_equal(strncmp(s, "10000:", 6), 0);
	size_t colons = 0;
	for (const char *p = s; *p != '\0'; p++)
		colons += *p == ':';
	assert_int_equal(colons, 3);
	/* 16-octet salt and two 32-octet keys in base64. */
	assert_int_equal(strlen(s), 6 + 24 + 1 + 44 + 1 + 44);
	assert_int_equal(sasl_scram_secrets("pw", small, sizeof(small)), -1);
	assert_int_equal(sasl_scram_secrets("", s, sizeof(s)), -1);
}

static void
test_prep_password(void **state)
{
	char *p;

	(void)state;
	p = sasl_prep_password("plain ascii", true);
	assert_string_equal(p, "plain ascii");
	free(p);
	/* NO-BREAK SPACE maps to SPACE; SOFT HYPHEN to nothing. */
	p = sasl_prep_password("a\xc2\xa0" "b\xc2\xad" "c", true);
	assert_string_equal(p, "a bc");
	free(p);
	assert_null(sasl_prep_password("tab\there", true));
	assert_null(sasl_prep_password("", false));
	assert_null(sasl_prep_password("\xc2\xad", false));
	assert_null(sasl_prep_password(NULL, false));
}

static void
test_userdb_scram_storage(void **state)
{
	char hash[256];
	char *error = NULL;

	(void)state;
	char *s = userdb_user_scram(fx->db, "ALICE@example.org");
	assert_non_null(s);
	free(s);
	assert_null(userdb_user_scram(fx->db, CAROL));
	assert_null(userdb_user_scram(fx->db, "nobody@example.org"));
	assert_null(userdb_user_scram(fx->db, "not an address"));
	assert_int_equal(userdb_user_set_scram(fx->db, "nobody@example.org",
	    "1:a:b:c", &error), -1);
	assert_non_null(error);
	free(error);

	add_user("dave@example.org", "davepw", true);
	assert_int_equal(userdb_user_set_scram(fx->db, "dave@example.org",
	    "", &error), 0);
	assert_null(userdb_user_scram(fx->db, "dave@example.org"));
	assert_int_equal(userdb_user_set_scram(fx->db, "dave@example.org",
	    "1:a:b:c", &error), 0);
	/* A new password drops the secrets of the old one. */
	assert_int_equal(password_hash("newpw", hash, sizeof(hash)), 0);
	assert_int_equal(userdb_user_set_hash(fx->db, "Dave@example.org",
	    hash, &error), 0);
	assert_null(userdb_user_scram(fx->db, "dave@example.org"));
	assert_int_equal(userdb_user_del(fx->db, "dave@example.org", &error),
	    0);
}

/* Garbage in the column makes SCRAM fail, never crash. */
static void
test_scram_bad_secrets(void **state)
{
	static const char *const bad[] = {
		"x:a:b:c", "0:a:b:c", "10000:a:b", "10000::b:c",
		"10000:c2FsdA==:AAAA:AAAA", "10000:a:b:c:d",
	};
	struct client c = { .authid = "erin@example.org", .password = "pw" };
	struct scram_run run;
	char *error = NULL;

	(void)state;
	add_user("erin@example.org", "pw", false);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(userdb_user_set_scram(fx->db,
		    "erin@example.org", bad[i], &error), 0);
		scram("SCRAM-SHA-256", &c, NULL, &run);
		assert_int_equal(run.result, SASL_FAIL);
	}
	assert_int_equal(userdb_user_del(fx->db, "erin@example.org", &error),
	    0);
}

/* A version 1 database (no scram column) is migrated on open. */
static void
test_userdb_migration(void **state)
{
	char dir[64], *path, *error = NULL;
	sqlite3 *db;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/correo-test-sasl-v1-XXXXXX");
	assert_non_null(mkdtemp(dir));
	path = x_asprintf("%s/correo.db", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
	    "CREATE TABLE domains(name TEXT PRIMARY KEY NOT NULL);"
	    "CREATE TABLE users(address TEXT PRIMARY KEY NOT NULL,"
	    " local TEXT NOT NULL, domain TEXT NOT NULL REFERENCES"
	    " domains(name), hash TEXT NOT NULL, created INTEGER NOT NULL);"
	    "INSERT INTO domains VALUES('old.example');"
	    "INSERT INTO users VALUES('u@old.example','u','old.example',"
	    "'$6$x$y',0);"
	    "PRAGMA user_version=1;", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	struct userdb *u = userdb_open(dir, &error);
	assert_non_null(u);
	char *h = userdb_user_hash(u, "u@old.example");
	assert_string_equal(h, "$6$x$y");
	free(h);
	assert_null(userdb_user_scram(u, "u@old.example"));
	assert_int_equal(userdb_user_set_scram(u, "u@old.example", "1:a:b:c",
	    &error), 0);
	char *s = userdb_user_scram(u, "u@old.example");
	assert_string_equal(s, "1:a:b:c");
	free(s);
	userdb_close(u);

	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1,
	    &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 2);
	sqlite3_finalize(st);
	sqlite3_close(db);
	/* Opening again is a no-op. */
	u = userdb_open(dir, &error);
	assert_non_null(u);
	userdb_close(u);
	x_free(&path);
	assert_int_equal(nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mechanisms),
		cmocka_unit_test(test_plain_ok),
		cmocka_unit_test(test_plain_wrong_password),
		cmocka_unit_test(test_plain_unknown_user),
		cmocka_unit_test(test_plain_authzid_mismatch),
		cmocka_unit_test(test_plain_malformed),
		cmocka_unit_test(test_plain_empty),
		cmocka_unit_test(test_login),
		cmocka_unit_test(test_scram_ok),
		cmocka_unit_test(test_scram_fail),
		cmocka_unit_test(test_scram_malformed),
		cmocka_unit_test(test_scram_plus),
		cmocka_unit_test(test_scram_downgrade),
		cmocka_unit_test(test_scram_plus_tls_unique),
		cmocka_unit_test(test_scram_secrets_format),
		cmocka_unit_test(test_prep_password),
		cmocka_unit_test(test_userdb_scram_storage),
		cmocka_unit_test(test_scram_bad_secrets),
		cmocka_unit_test(test_userdb_migration),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
