/* Password hashing with libcrypt (libxcrypt): yescrypt for new hashes, and
 * whatever crypt_rn knows for verification, so hashes migrated from
 * /etc/shadow or Dovecot keep working.
 * Untrusted input: passwords from SASL reach password_verify(). */
#include "auth/password.h"

#include <crypt.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "core/log.h"
#include "core/xmalloc.h"

/* No 0/O, 1/l/I: generated passwords get read aloud and typed by hand. */
static const char password_alphabet[] =
    "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/* struct crypt_data is about 32 KiB: too big for a pool thread's stack. */
static struct crypt_data *
password_crypt_data(void)
{
	return x_calloc(1, sizeof(struct crypt_data));
}

/* The scratch area holds intermediate state derived from the password. */
static void
password_crypt_data_free(struct crypt_data *cd)
{
	explicit_bzero(cd, sizeof(*cd));
	x_free(&cd);
}

int
password_hash(const char *password, char *out, size_t outlen)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	int r = -1;

	/* NULL random bytes: libxcrypt reads them from the kernel. */
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)) == NULL) {
		log_warn("crypt_gensalt_rn");
		return -1;
	}
	struct crypt_data *cd = password_crypt_data();
	const char *h = crypt_rn(password, salt, cd, (int)sizeof(*cd));
	if (h == NULL || h[0] != '$')
		log_warnx("crypt_rn: cannot hash with %.3s", salt);
	else if (strlen(h) >= outlen)
		log_warnx("password_hash: output buffer too small");
	else {
		memcpy(out, h, strlen(h) + 1);
		r = 0;
	}
	password_crypt_data_free(cd);
	return r;
}

/* Locked accounts ("*", "!..."), empty hashes and settings libcrypt does
 * not understand never match anything. */
static bool
password_hash_usable(const char *hash)
{
	if (hash == NULL || hash[0] == '\0' || hash[0] == '*' ||
	    hash[0] == '!')
		return false;
	return crypt_checksalt(hash) != CRYPT_SALT_INVALID;
}

bool
password_verify(const char *password, const char *hash)
{
	/* An empty password never authenticates, whatever the hash says. */
	if (password == NULL || password[0] == '\0' ||
	    !password_hash_usable(hash))
		return false;

	struct crypt_data *cd = password_crypt_data();
	bool ok = false;
	const char *h = crypt_rn(password, hash, cd, (int)sizeof(*cd));
	if (h != NULL && h[0] != '*') {
		size_t hlen = strlen(h);
		ok = hlen == strlen(hash) && CRYPTO_memcmp(h, hash, hlen) == 0;
	}
	password_crypt_data_free(cd);
	return ok;
}

void
password_generate(char *out, size_t n)
{
	const size_t alen = sizeof(password_alphabet) - 1;
	/* Bytes at or above limit are dropped so every character is equally
	 * likely (no modulo bias). */
	const unsigned limit = 256 - 256 % alen;
	unsigned char rnd[64];
	size_t have = 0, used = 0;

	if (n == 0)
		return;
	for (size_t i = 0; i + 1 < n;) {
		if (used == have) {
			if (RAND_bytes(rnd, (int)sizeof(rnd)) != 1)
				fatalx("RAND_bytes failed");
			have = sizeof(rnd);
			used = 0;
		}
		unsigned b = rnd[used++];
		if (b < limit)
			out[i++] = password_alphabet[b % alen];
	}
	out[n - 1] = '\0';
	explicit_bzero(rnd, sizeof(rnd));
}
