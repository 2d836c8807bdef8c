/* SASL server exchanges on top of GNU SASL (libgsasl 2.2).
 * Untrusted input: every base64 response a client sends reaches
 * sasl_step(), then gsasl's mechanism parsers and our callback.
 *
 * gsasl asks for what it needs through one process-wide callback; the
 * callback finds its exchange through the session hook, so it touches no
 * shared state but the userdb, which has its own mutex. That keeps it safe
 * on any pool thread. */
#include "auth/sasl.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsasl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "auth/password.h"
#include "auth/userdb.h"
#include "core/log.h"
#include "core/util.h"
#include "core/xmalloc.h"

#define SASL_SCRAM_ITER		10000
#define SASL_SCRAM_ITER_MAX	100000000UL
#define SASL_SCRAM_SALT_LEN	16
#define SASL_SCRAM_KEY_LEN	32	/* SHA-256 */
#define SASL_CB_MAX		64
#define SASL_AUTHID_MAX		255

/* Verified in place of an unknown user's hash so that "no such user"
 * costs what a wrong password costs. Made by password_hash() from a
 * password nobody knows; the default yescrypt cost of libxcrypt. */
static const char sasl_default_dummy_hash[] =
    "$y$j9T$WOBTloLPzAmDl3DkT0.SP0$"
    "dmTkZ6s96ZkVSc28oSRCmV4xXtQdxZj7HAdO5LbpLU.";

enum sasl_mech {
	SASL_MECH_SCRAM_PLUS,
	SASL_MECH_SCRAM,
	SASL_MECH_PLAIN,
	SASL_MECH_LOGIN,
	SASL_MECH_COUNT
};

/* Strongest first: clients that take the first one they know pick it. */
static const struct {
	const char *name;
	bool needs_tls;
} sasl_mech_table[SASL_MECH_COUNT] = {
	[SASL_MECH_SCRAM_PLUS] = { "SCRAM-SHA-256-PLUS", true },
	[SASL_MECH_SCRAM] = { "SCRAM-SHA-256", false },
	[SASL_MECH_PLAIN] = { "PLAIN", false },
	[SASL_MECH_LOGIN] = { "LOGIN", false },
};

/* What the SCRAM server needs of one user, all base64 as gsasl wants. */
struct sasl_scram_user {
	bool loaded;
	bool have_keys;		/* false: unknown user, no secrets, bad authzid */
	char iter[16];
	char *salt;
	char *stored_key;
	char *server_key;
};

struct sasl_exchange {
	struct userdb *db;
	Gsasl_session *gs;
	enum sasl_mech mech;
	char *cb_b64;		/* tls-exporter value, NULL without TLS */
	char *authid;		/* for logs, sanitised */
	char *user;		/* canonical address, set on success only */
	char *candidate;	/* canonical address whose credentials matched */
	struct sasl_scram_user scram;
	unsigned steps;
	bool done;
};

static struct {
	pthread_mutex_t lock;
	Gsasl *ctx;
	bool offered[SASL_MECH_COUNT];
	char list_tls[128];
	char list_plain[128];
	unsigned char salt_key[32];	/* for unknown users' stable salts */
	const char *dummy_hash;
} sasl = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int sasl_callback(Gsasl *ctx, Gsasl_session *gs, Gsasl_property prop);

/* ---- library -------------------------------------------------------------- */

static void
sasl_build_lists(void)
{
	struct { char *out; bool tls; } lists[2] = {
		{ sasl.list_tls, true }, { sasl.list_plain, false },
	};

	for (size_t l = 0; l < 2; l++) {
		size_t len = 0;
		lists[l].out[0] = '\0';
		for (size_t i = 0; i < SASL_MECH_COUNT; i++) {
			if (!sasl.offered[i] ||
			    (sasl_mech_table[i].needs_tls && !lists[l].tls))
				continue;
			int n = snprintf(lists[l].out + len,
			    sizeof(sasl.list_tls) - len, "%s%s",
			    len > 0 ? " " : "", sasl_mech_table[i].name);
			if (n < 0 || (size_t)n >= sizeof(sasl.list_tls) - len)
				panic("sasl: mechanism list too long");
			len += (size_t)n;
		}
	}
}

static int
sasl_init_locked(void)
{
	int rc = gsasl_init(&sasl.ctx);

	if (rc != GSASL_OK) {
		log_warnx("sasl: gsasl_init: %s", gsasl_strerror(rc));
		sasl.ctx = NULL;
		return -1;
	}
	if (RAND_bytes(sasl.salt_key, (int)sizeof(sasl.salt_key)) != 1) {
		log_warnx("sasl: RAND_bytes failed");
		gsasl_done(sasl.ctx);
		sasl.ctx = NULL;
		return -1;
	}
	gsasl_callback_set(sasl.ctx, sasl_callback);
	for (size_t i = 0; i < SASL_MECH_COUNT; i++) {
		sasl.offered[i] = gsasl_server_support_p(sasl.ctx,
		    sasl_mech_table[i].name) != 0;
		if (!sasl.offered[i])
			log_warnx("sasl: libgsasl lacks %s",
			    sasl_mech_table[i].name);
	}
	sasl_build_lists();
	return 0;
}

int
sasl_init(void)
{
	int r = 0;

	pthread_mutex_lock(&sasl.lock);
	if (sasl.ctx == NULL)
		r = sasl_init_locked();
	pthread_mutex_unlock(&sasl.lock);
	return r;
}

void
sasl_deinit(void)
{
	pthread_mutex_lock(&sasl.lock);
	if (sasl.ctx != NULL)
		gsasl_done(sasl.ctx);
	sasl.ctx = NULL;
	memset(sasl.offered, 0, sizeof(sasl.offered));
	sasl.list_tls[0] = sasl.list_plain[0] = '\0';
	explicit_bzero(sasl.salt_key, sizeof(sasl.salt_key));
	pthread_mutex_unlock(&sasl.lock);
}

void
sasl_set_dummy_hash(const char *hash)
{
	sasl.dummy_hash = hash;
}

/* ---- mechanisms ------------------------------------------------------------ */

const char *
sasl_mechanisms(bool tls)
{
	return tls ? sasl.list_tls : sasl.list_plain;
}

/* The mechanism's index, or -1 when it is not offered. */
static int
sasl_mech_find(const char *mech, bool tls)
{
	if (mech == NULL || sasl.ctx == NULL)
		return -1;
	for (size_t i = 0; i < SASL_MECH_COUNT; i++) {
		if (str_iequal(mech, sasl_mech_table[i].name))
			return sasl.offered[i] &&
			    (tls || !sasl_mech_table[i].needs_tls) ?
			    (int)i : -1;
	}
	return -1;
}

bool
sasl_mechanism_offered(const char *mech, bool tls)
{
	return sasl_mech_find(mech, tls) >= 0;
}

/* ---- small helpers --------------------------------------------------------- */

/* Base64 of n bytes, allocated with x_malloc ("" for none). */
static char *
sasl_b64(const void *p, size_t n)
{
	char *b64 = NULL;

	if (n == 0)
		return x_strdup("");
	if (gsasl_base64_to(p, n, &b64, NULL) != GSASL_OK || b64 == NULL)
		fatalx("sasl: cannot encode base64");
	char *r = x_strdup(b64);
	gsasl_free(b64);
	return r;
}

static void
sasl_wipe_free(char **p)
{
	if (*p == NULL)
		return;
	explicit_bzero(*p, strlen(*p));
	x_free(p);
}

/* "local@domain" in the userdb's canonical form, or NULL. */
static char *
sasl_canonical(const char *address)
{
	char *local, *domain;

	if (address == NULL ||
	    userdb_split_address(address, &local, &domain) < 0)
		return NULL;
	char *c = x_asprintf("%s@%s", local, domain);
	x_free(&local);
	x_free(&domain);
	return c;
}

/* An authorization identity is only accepted when it names the
 * authenticating user: nobody may act as somebody else here. */
static bool
sasl_authzid_ok(const char *authid, const char *authzid)
{
	if (authzid == NULL || authzid[0] == '\0')
		return true;
	char *a = sasl_canonical(authid), *z = sasl_canonical(authzid);
	bool ok = a != NULL && z != NULL ? strcmp(a, z) == 0 :
	    strcmp(authid, authzid) == 0;
	x_free(&a);
	x_free(&z);
	return ok;
}

/* Remembers the claimed identity for logs, made safe to print. */
static void
sasl_note_authid(struct sasl_exchange *x, const char *authid)
{
	if (x->authid != NULL || authid == NULL)
		return;
	size_t n = strnlen(authid, SASL_AUTHID_MAX);
	x->authid = x_strndup(authid, n);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)x->authid[i];
		if (c < 0x20 || c == 0x7f)
			x->authid[i] = '?';
	}
}

/* Overwrites a property gsasl holds (its own heap copy), then drops it:
 * gsasl frees properties without wiping them. */
static void
sasl_wipe_property(Gsasl_session *gs, Gsasl_property prop)
{
	const char *v = gsasl_property_fast(gs, prop);

	if (v != NULL)
		explicit_bzero((char *)v, strlen(v));
	gsasl_property_free(gs, prop);
}

/* ---- PLAIN and LOGIN ------------------------------------------------------- */

static bool
sasl_verify_password(struct sasl_exchange *x, const char *authid,
    const char *password)
{
	char *hash = userdb_user_hash(x->db, authid);
	const char *dummy = sasl.dummy_hash != NULL ? sasl.dummy_hash :
	    sasl_default_dummy_hash;

	if (hash == NULL) {
		/* Same work as for a real user; the answer is no anyway. */
		(void)password_verify(password, dummy);
		return false;
	}
	bool ok = password_verify(password, hash);
	explicit_bzero(hash, strlen(hash));
	x_free(&hash);
	return ok;
}

static int
sasl_validate_simple(struct sasl_exchange *x)
{
	const char *authid = gsasl_property_fast(x->gs, GSASL_AUTHID);
	const char *authzid = gsasl_property_fast(x->gs, GSASL_AUTHZID);
	const char *password = gsasl_property_fast(x->gs, GSASL_PASSWORD);
	bool ok = false;

	sasl_note_authid(x, authid);
	if (authid != NULL && password != NULL &&
	    sasl_authzid_ok(authid, authzid) &&
	    sasl_verify_password(x, authid, password))
		ok = (x->candidate = sasl_canonical(authid)) != NULL;
	sasl_wipe_property(x->gs, GSASL_PASSWORD);
	return ok ? GSASL_OK : GSASL_AUTHENTICATION_ERROR;
}

/* ---- SCRAM ------------------------------------------------------------------ */

/* A salt for an unknown user that stays the same across attempts, so that
 * asking twice does not tell a real user from an invented one. */
static void
sasl_scram_fake(struct sasl_exchange *x, const char *authid)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char *key = str_lower(x_strdup(authid != NULL ? authid : ""));

	if (HMAC(EVP_sha256(), sasl.salt_key, (int)sizeof(sasl.salt_key),
	    (const unsigned char *)key, strlen(key), mac, &maclen) == NULL ||
	    maclen < SASL_SCRAM_SALT_LEN)
		fatalx("sasl: HMAC failed");
	x_free(&key);
	x->scram.salt = sasl_b64(mac, SASL_SCRAM_SALT_LEN);
	snprintf(x->scram.iter, sizeof(x->scram.iter), "%d",
	    SASL_SCRAM_ITER);
	x->scram.have_keys = false;
}

/* Copies the field of s that ends at ':' or at the end into an allocated
 * string; NULL when it is empty. Advances *s past the ':'. */
static char *
sasl_field(const char **s)
{
	const char *end = strchr(*s, ':');
	size_t n = end != NULL ? (size_t)(end - *s) : strlen(*s);
	char *f = n > 0 ? x_strndup(*s, n) : NULL;

	*s += n + (end != NULL);
	return f;
}

/* Parses "ITER:SALT:STOREDKEY:SERVERKEY" into x->scram. 0 or -1. */
static int
sasl_scram_parse(struct sasl_exchange *x, const char *secrets)
{
	const char *p = secrets;
	uint64_t iter;
	char *f = sasl_field(&p);
	int r = f != NULL && parse_uint(f, SASL_SCRAM_ITER_MAX, &iter) == 0 &&
	    iter > 0 ? 0 : -1;

	x_free(&f);
	if (r < 0)
		return -1;
	snprintf(x->scram.iter, sizeof(x->scram.iter), "%llu",
	    (unsigned long long)iter);
	x->scram.salt = sasl_field(&p);
	x->scram.stored_key = sasl_field(&p);
	x->scram.server_key = sasl_field(&p);
	if (x->scram.salt == NULL || x->scram.stored_key == NULL ||
	    x->scram.server_key == NULL || *p != '\0') {
		x_free(&x->scram.salt);
		sasl_wipe_free(&x->scram.stored_key);
		sasl_wipe_free(&x->scram.server_key);
		return -1;
	}
	x->scram.have_keys = true;
	return 0;
}

/* Looks the user up once, when gsasl first asks for the iteration count;
 * by then it has set AUTHID and AUTHZID from the client-first message. */
static void
sasl_scram_load(struct sasl_exchange *x)
{
	const char *authid = gsasl_property_fast(x->gs, GSASL_AUTHID);
	const char *authzid = gsasl_property_fast(x->gs, GSASL_AUTHZID);
	char *secrets = NULL;

	if (x->scram.loaded)
		return;
	x->scram.loaded = true;
	sasl_note_authid(x, authid);
	if (authid != NULL && sasl_authzid_ok(authid, authzid))
		secrets = userdb_user_scram(x->db, authid);
	if (secrets == NULL || sasl_scram_parse(x, secrets) < 0) {
		if (secrets != NULL)
			log_warnx("sasl: unusable SCRAM secrets for %s",
			    x->authid);
		sasl_scram_fake(x, authid);
	} else
		x->candidate = sasl_canonical(authid);
	if (secrets != NULL)
		sasl_wipe_free(&secrets);
}

static int
sasl_scram_property(struct sasl_exchange *x, Gsasl_property prop)
{
	const char *v = NULL;

	sasl_scram_load(x);
	if (prop == GSASL_SCRAM_ITER)
		v = x->scram.iter;
	else if (prop == GSASL_SCRAM_SALT)
		v = x->scram.salt;
	else if (prop == GSASL_SCRAM_STOREDKEY)
		v = x->scram.stored_key;
	else if (prop == GSASL_SCRAM_SERVERKEY)
		v = x->scram.server_key;
	/* Without keys gsasl falls back to asking for the password, which
	 * we never give: the exchange then fails like a wrong proof. */
	if (v == NULL)
		return GSASL_NO_CALLBACK;
	return gsasl_property_set(x->gs, prop, v);
}

/* ---- the callback ----------------------------------------------------------- */

static int
sasl_callback(Gsasl *ctx, Gsasl_session *gs, Gsasl_property prop)
{
	struct sasl_exchange *x = gs != NULL ? gsasl_session_hook_get(gs) :
	    NULL;

	(void)ctx;
	if (x == NULL)
		return GSASL_NO_CALLBACK;
	switch (prop) {
	case GSASL_VALIDATE_SIMPLE:
		return sasl_validate_simple(x);
	case GSASL_SCRAM_ITER:
	case GSASL_SCRAM_SALT:
	case GSASL_SCRAM_STOREDKEY:
	case GSASL_SCRAM_SERVERKEY:
		return sasl_scram_property(x, prop);
	case GSASL_CB_TLS_EXPORTER:
		/* Also asked for in plain SCRAM when the client says it could
		 * bind ("y"): having it there exposes a stripped -PLUS. */
		if (x->cb_b64 == NULL)
			return GSASL_NO_CALLBACK;
		return gsasl_property_set(gs, prop, x->cb_b64);
	default:
		/* Notably GSASL_PASSWORD and GSASL_CB_TLS_UNIQUE: never. */
		return GSASL_NO_CALLBACK;
	}
}

/* ---- exchanges -------------------------------------------------------------- */

struct sasl_exchange *
sasl_exchange_new(struct userdb *db, const char *mech,
    const unsigned char *cb, size_t cb_len)
{
	bool tls = cb != NULL && cb_len > 0 && cb_len <= SASL_CB_MAX;
	int m = sasl_mech_find(mech, tls);
	Gsasl_session *gs;

	if (m < 0 || db == NULL)
		return NULL;
	int rc = gsasl_server_start(sasl.ctx, sasl_mech_table[m].name, &gs);
	if (rc != GSASL_OK) {
		log_warnx("sasl: gsasl_server_start %s: %s",
		    sasl_mech_table[m].name, gsasl_strerror(rc));
		return NULL;
	}
	struct sasl_exchange *x = x_calloc(1, sizeof(*x));
	x->db = db;
	x->gs = gs;
	x->mech = (enum sasl_mech)m;
	if (tls)
		x->cb_b64 = sasl_b64(cb, cb_len);
	gsasl_session_hook_set(gs, x);
	return x;
}

void
sasl_exchange_free(struct sasl_exchange *x)
{
	if (x == NULL)
		return;
	if (x->gs != NULL) {
		sasl_wipe_property(x->gs, GSASL_PASSWORD);
		gsasl_finish(x->gs);
	}
	x_free(&x->cb_b64);
	x_free(&x->authid);
	x_free(&x->user);
	x_free(&x->candidate);
	x_free(&x->scram.salt);
	sasl_wipe_free(&x->scram.stored_key);
	sasl_wipe_free(&x->scram.server_key);
	x_free(&x);
}

const char *
sasl_user(const struct sasl_exchange *x)
{
	return x != NULL ? x->user : NULL;
}

const char *
sasl_authid(const struct sasl_exchange *x)
{
	return x != NULL && x->authid != NULL ? x->authid : "";
}

/* Decodes one response. "" is no data; "=" an empty initial response,
 * which only the first step may carry. 0, or -1 when malformed. */
static int
sasl_decode(const char *in, bool initial, char **data_r, size_t *len_r)
{
	*data_r = NULL;
	*len_r = 0;
	if (in[0] == '\0')
		return 0;
	if (strcmp(in, "=") == 0)
		return initial ? 0 : -1;
	if (gsasl_base64_from(in, strlen(in), data_r, len_r) != GSASL_OK) {
		*data_r = NULL;
		return -1;
	}
	return 0;
}

static enum sasl_result
sasl_map(struct sasl_exchange *x, int rc)
{
	switch (rc) {
	case GSASL_NEEDS_MORE:
		return SASL_CONTINUE;
	case GSASL_OK:
		if (x->candidate == NULL)
			return SASL_FAIL;	/* cannot happen: belt and braces */
		x->user = x->candidate;
		x->candidate = NULL;
		return SASL_OK;
	case GSASL_MECHANISM_PARSE_ERROR:
	case GSASL_BASE64_ERROR:
	case GSASL_SASLPREP_ERROR:
	case GSASL_MECHANISM_CALLED_TOO_MANY_TIMES:
		return SASL_MALFORMED;
	default:
		return SASL_FAIL;
	}
}

/* LOGIN's first server message asks for the user name whatever the
 * client sent; an initial response is that user name, so it is fed to
 * the second step after the prompt is thrown away. */
static int
sasl_login_skip_prompt(struct sasl_exchange *x)
{
	char *o = NULL;
	size_t olen = 0;
	int rc = gsasl_step(x->gs, "", 0, &o, &olen);

	gsasl_free(o);
	return rc == GSASL_NEEDS_MORE ? 0 : -1;
}

/* Runs gsasl on one decoded response; sets *out on CONTINUE and OK. */
static enum sasl_result
sasl_run(struct sasl_exchange *x, const char *data, size_t len, bool initial,
    char **out)
{
	char *o = NULL;
	size_t olen = 0;

	if (initial && len > 0 && x->mech == SASL_MECH_LOGIN &&
	    sasl_login_skip_prompt(x) < 0)
		return SASL_FAIL;
	int rc = gsasl_step(x->gs, data != NULL ? data : "", len, &o, &olen);
	enum sasl_result r = sasl_map(x, rc);
	if (r == SASL_CONTINUE || r == SASL_OK)
		*out = sasl_b64(o, o != NULL ? olen : 0);
	if (o != NULL) {
		explicit_bzero(o, olen);
		gsasl_free(o);
	}
	return r;
}

enum sasl_result
sasl_step(struct sasl_exchange *x, const char *in, char **out)
{
	char *data = NULL;
	size_t len = 0;
	enum sasl_result r;

	*out = NULL;
	if (x == NULL || x->done || in == NULL)
		return SASL_MALFORMED;
	bool initial = x->steps++ == 0;
	if (sasl_decode(in, initial, &data, &len) < 0)
		r = SASL_MALFORMED;
	else if (len == 0 && !(initial && in[0] == '\0'))
		/* A real but empty response: no message of PLAIN, LOGIN
		 * or SCRAM is empty (gsasl would just ask again). */
		r = SASL_MALFORMED;
	else
		r = sasl_run(x, data, len, initial, out);
	if (data != NULL) {
		explicit_bzero(data, len);
		gsasl_free(data);
	}
	sasl_note_authid(x, gsasl_property_fast(x->gs, GSASL_AUTHID));
	if (r != SASL_CONTINUE)
		x->done = true;
	return r;
}

/* ---- secrets ---------------------------------------------------------------- */

int
sasl_scram_secrets(const char *password, char *out, size_t n)
{
	unsigned char salt[SASL_SCRAM_SALT_LEN];
	char salted[GSASL_HASH_MAX_SIZE], client_key[GSASL_HASH_MAX_SIZE];
	char server_key[GSASL_HASH_MAX_SIZE], stored_key[GSASL_HASH_MAX_SIZE];
	int r = -1;

	if (password == NULL || password[0] == '\0' || sasl_init() < 0)
		return -1;
	if (RAND_bytes(salt, (int)sizeof(salt)) != 1) {
		log_warnx("sasl: RAND_bytes failed");
		return -1;
	}
	int rc = gsasl_scram_secrets_from_password(GSASL_HASH_SHA256,
	    password, SASL_SCRAM_ITER, (const char *)salt, sizeof(salt),
	    salted, client_key, server_key, stored_key);
	if (rc == GSASL_OK) {
		char *s = sasl_b64(salt, sizeof(salt));
		char *st = sasl_b64(stored_key, SASL_SCRAM_KEY_LEN);
		char *sv = sasl_b64(server_key, SASL_SCRAM_KEY_LEN);
		int len = snprintf(out, n, "%d:%s:%s:%s", SASL_SCRAM_ITER, s,
		    st, sv);
		r = len > 0 && (size_t)len < n ? 0 : -1;
		x_free(&s);
		sasl_wipe_free(&st);
		sasl_wipe_free(&sv);
		if (r < 0 && n > 0)
			explicit_bzero(out, n);
	} else
		log_warnx("sasl: SCRAM secrets: %s", gsasl_strerror(rc));
	explicit_bzero(salted, sizeof(salted));
	explicit_bzero(client_key, sizeof(client_key));
	explicit_bzero(server_key, sizeof(server_key));
	explicit_bzero(stored_key, sizeof(stored_key));
	return r;
}

char *
sasl_prep_password(const char *password, bool to_store)
{
	char *prep = NULL;

	if (password == NULL || password[0] == '\0')
		return NULL;
	int rc = gsasl_saslprep(password,
	    to_store ? (Gsasl_saslprep_flags)0 : GSASL_ALLOW_UNASSIGNED,
	    &prep, NULL);
	if (rc != GSASL_OK || prep == NULL)
		return NULL;
	char *r = prep[0] != '\0' ? x_strdup(prep) : NULL;
	explicit_bzero(prep, strlen(prep));
	gsasl_free(prep);
	return r;
}
