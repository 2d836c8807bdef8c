/* Unit tests for src/auth/password.c: hashing, verification, generation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <crypt.h>
#include <stdio.h>
#include <string.h>

#include "auth/password.h"

static const char alphabet[] =
    "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

static void
test_hash_and_verify(void **state)
{
	char h1[256], h2[256];

	(void)state;
	assert_int_equal(password_hash("correct horse", h1, sizeof(h1)), 0);
	assert_memory_equal(h1, "$y$", 3);
	assert_true(password_verify("correct horse", h1));
	assert_false(password_verify("correct horsf", h1));
	assert_false(password_verify("correct horse ", h1));
	assert_false(password_verify("", h1));
	/* A fresh salt each time. */
	assert_int_equal(password_hash("correct horse", h2, sizeof(h2)), 0);
	assert_string_not_equal(h1, h2);
	assert_true(password_verify("correct horse", h2));
}

static void
test_hash_utf8_and_long(void **state)
{
	char h[256], pw[300];

	(void)state;
	assert_int_equal(password_hash("pässwörd ✓", h, sizeof(h)), 0);
	assert_true(password_verify("pässwörd ✓", h));
	assert_false(password_verify("passwort ✓", h));
	memset(pw, 'x', sizeof(pw) - 1);
	pw[sizeof(pw) - 1] = '\0';
	assert_int_equal(password_hash(pw, h, sizeof(h)), 0);
	assert_true(password_verify(pw, h));
	pw[sizeof(pw) - 2] = 'y';
	assert_false(password_verify(pw, h));
}

static void
test_hash_buffer_too_small(void **state)
{
	char h[16];

	(void)state;
	assert_int_equal(password_hash("secret", h, sizeof(h)), -1);
}

/* Hashes made elsewhere (/etc/shadow, Dovecot) keep working. */
static void
test_verify_sha512_crypt(void **state)
{
	struct crypt_data cd;

	(void)state;
	memset(&cd, 0, sizeof(cd));
	const char *h = crypt_r("hunter2", "$6$abcdefgh12345678$", &cd);
	assert_non_null(h);
	assert_memory_equal(h, "$6$", 3);
	char hash[CRYPT_OUTPUT_SIZE];
	assert_true(snprintf(hash, sizeof(hash), "%s", h) <
	    (int)sizeof(hash));
	assert_true(password_verify("hunter2", hash));
	assert_false(password_verify("hunter3", hash));
}

static void
test_verify_bcrypt(void **state)
{
	struct crypt_data cd;
	char salt[CRYPT_GENSALT_OUTPUT_SIZE], hash[CRYPT_OUTPUT_SIZE];

	(void)state;
	assert_non_null(crypt_gensalt_rn("$2b$", 5, NULL, 0, salt,
	    sizeof(salt)));
	memset(&cd, 0, sizeof(cd));
	const char *h = crypt_r("tr0ub4dor", salt, &cd);
	assert_non_null(h);
	assert_memory_equal(h, "$2b$", 4);
	assert_true(snprintf(hash, sizeof(hash), "%s", h) <
	    (int)sizeof(hash));
	assert_true(password_verify("tr0ub4dor", hash));
	assert_false(password_verify("tr0ub4door", hash));
}

static void
test_verify_malformed(void **state)
{
	static const char *const bad[] = {
		"", "*", "*0", "*1", "!", "!$y$j9T$abc$def", "!!", "x",
		"$", "$6$", "$y$", "$y$j9T$", "$99$abc$def", "not a hash",
		"$6$abc", "$2b$05$short",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(password_verify("", bad[i]));
		assert_false(password_verify("x", bad[i]));
		assert_false(password_verify("secret", bad[i]));
	}
	assert_false(password_verify("secret", NULL));
	assert_false(password_verify(NULL, "$y$j9T$abc$def"));
}

/* A locked copy of a valid hash ("!" prefix, as passwd -l does) fails. */
static void
test_verify_locked(void **state)
{
	char h[256], locked[260];

	(void)state;
	assert_int_equal(password_hash("secret", h, sizeof(h)), 0);
	locked[0] = '!';
	memcpy(locked + 1, h, strlen(h) + 1);
	assert_false(password_verify("secret", locked));
	locked[0] = '*';
	assert_false(password_verify("secret", locked));
}

static void
test_generate(void **state)
{
	char a[17], b[17], one[1] = { 'x' }, two[2];

	(void)state;
	password_generate(a, sizeof(a));
	password_generate(b, sizeof(b));
	assert_int_equal(strlen(a), 16);
	assert_int_equal(strlen(b), 16);
	assert_string_not_equal(a, b);
	for (size_t i = 0; i < 16; i++) {
		assert_non_null(strchr(alphabet, a[i]));
		assert_non_null(strchr(alphabet, b[i]));
	}
	password_generate(one, sizeof(one));
	assert_int_equal(one[0], '\0');
	password_generate(two, sizeof(two));
	assert_int_equal(strlen(two), 1);
	password_generate(NULL, 0);
}

/* Every letter of the alphabet shows up; none outside it does. */
static void
test_generate_spread(void **state)
{
	char pw[4097];
	bool seen[256] = { false };

	(void)state;
	password_generate(pw, sizeof(pw));
	assert_int_equal(strlen(pw), 4096);
	for (size_t i = 0; i < 4096; i++)
		seen[(unsigned char)pw[i]] = true;
	for (int c = 1; c < 256; c++)
		assert_int_equal(seen[c], strchr(alphabet, c) != NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_and_verify),
		cmocka_unit_test(test_hash_utf8_and_long),
		cmocka_unit_test(test_hash_buffer_too_small),
		cmocka_unit_test(test_verify_sha512_crypt),
		cmocka_unit_test(test_verify_bcrypt),
		cmocka_unit_test(test_verify_malformed),
		cmocka_unit_test(test_verify_locked),
		cmocka_unit_test(test_generate),
		cmocka_unit_test(test_generate_spread),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
