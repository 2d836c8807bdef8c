/* libFuzzer harness for SASL exchanges (src/auth/sasl.c over libgsasl).
 *
 * Input: one selector byte, then responses separated by '\n'.
 *   bits 0-1  mechanism: PLAIN, LOGIN, SCRAM-SHA-256, SCRAM-SHA-256-PLUS
 *   bit 2     raw: the harness base64-encodes each response, so the
 *             mechanism parsers see the fuzzer's bytes (otherwise the
 *             responses go in as they are and mostly test base64)
 *   bit 3     TLS: the exchange has channel binding data
 * A leading empty response is "no initial response".
 *
 * The user database is made once, with one user whose hash is a cheap
 * sha512-crypt one (and so is the unknown-user dummy): yescrypt would make
 * every PLAIN guess take tens of milliseconds. */
#include <crypt.h>
#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <gsasl.h>

#include "auth/sasl.h"
#include "auth/userdb.h"
#include "core/log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_USER "fuzz@localhost"
#define FUZZ_PASSWORD "fuzzpw"
#define FUZZ_MAX_STEPS 8

static const char *const fuzz_mechs[4] = {
	"PLAIN", "LOGIN", "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS",
};
static const unsigned char fuzz_cb[32] = {
	0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
	0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10,
	0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
	0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20,
};

static char fuzz_dir[] = "/tmp/correo-fuzz-sasl-XXXXXX";
static struct userdb *fuzz_db;
static char fuzz_dummy[CRYPT_OUTPUT_SIZE];

static int
fuzz_rm(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st, (void)flag, (void)f;
	return remove(path);
}

static void
fuzz_cleanup(void)
{
	userdb_close(fuzz_db);
	fuzz_db = NULL;
	sasl_deinit();
	(void)nftw(fuzz_dir, fuzz_rm, 16, FTW_DEPTH | FTW_PHYS);
}

static void
fuzz_sha512(const char *pw, const char *setting, char *out, size_t n)
{
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	const char *h = cd != NULL ? crypt_rn(pw, setting, cd,
	    (int)sizeof(*cd)) : NULL;

	if (h == NULL || h[0] != '$' || strlen(h) >= n)
		abort();
	memcpy(out, h, strlen(h) + 1);
	free(cd);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char hash[CRYPT_OUTPUT_SIZE], scram[256];
	char *error = NULL;

	(void)argc, (void)argv;
	log_init("fuzz_sasl", 0);
	if (mkdtemp(fuzz_dir) == NULL || sasl_init() < 0)
		abort();
	atexit(fuzz_cleanup);
	if ((fuzz_db = userdb_open(fuzz_dir, &error)) == NULL)
		abort();
	fuzz_sha512(FUZZ_PASSWORD, "$6$rounds=1000$fuzzsaltfuzzsalt$", hash,
	    sizeof(hash));
	fuzz_sha512("not the password", "$6$rounds=1000$dummysaltdummysa$",
	    fuzz_dummy, sizeof(fuzz_dummy));
	sasl_set_dummy_hash(fuzz_dummy);
	if (userdb_user_add(fuzz_db, FUZZ_USER, hash, &error) < 0 ||
	    sasl_scram_secrets(FUZZ_PASSWORD, scram, sizeof(scram)) < 0 ||
	    userdb_user_set_scram(fuzz_db, FUZZ_USER, scram, &error) < 0)
		abort();
	return 0;
}

/* The response string for one piece of input (allocated). */
static char *
fuzz_response(const uint8_t *p, size_t n, bool raw)
{
	char *s = NULL;

	if (!raw || n == 0) {
		s = malloc(n + 1);
		if (s == NULL)
			abort();
		memcpy(s, p, n);
		s[n] = '\0';
	} else if (gsasl_base64_to((const char *)p, n, &s, NULL) != GSASL_OK)
		abort();
	return s;
}

/* What every result promises about *out and sasl_user(). */
static void
fuzz_check(const struct sasl_exchange *x, enum sasl_result r,
    const char *out)
{
	const char *user = sasl_user(x);

	if ((r == SASL_CONTINUE || r == SASL_OK) != (out != NULL))
		abort();
	if ((r == SASL_OK) != (user != NULL))
		abort();
	if (user != NULL && strcmp(user, FUZZ_USER) != 0)
		abort();
	for (const char *a = sasl_authid(x); *a != '\0'; a++)
		if ((unsigned char)*a < 0x20 || *a == 0x7f)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	bool raw = (data[0] & 4) != 0, tls = (data[0] & 8) != 0;
	struct sasl_exchange *x = sasl_exchange_new(fuzz_db,
	    fuzz_mechs[data[0] & 3], tls ? fuzz_cb : NULL,
	    tls ? sizeof(fuzz_cb) : 0);
	if (x == NULL) {
		if (tls || (data[0] & 3) != 3)
			abort();	/* only -PLUS without TLS is refused */
		return 0;
	}
	const uint8_t *p = data + 1, *end = data + size;
	for (int step = 0; step < FUZZ_MAX_STEPS; step++) {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		char *in = fuzz_response(p, n, raw), *out = NULL;
		enum sasl_result r = sasl_step(x, in, &out);
		fuzz_check(x, r, out);
		free(in);
		free(out);
		if (r != SASL_CONTINUE || nl == NULL)
			break;
		p = nl + 1;
	}
	sasl_exchange_free(x);
	return 0;
}
