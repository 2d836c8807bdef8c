/* Password hashing with libcrypt (yescrypt by default). Blocking and slow on
 * purpose: call from the thread pool when serving. */
#ifndef AUTH_PASSWORD_H
#define AUTH_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

/* Hashes password with a fresh yescrypt salt into out ("$y$..."). 0 or -1. */
int password_hash(const char *password, char *out, size_t outlen);
/* True when password matches hash (any scheme crypt_r knows: yescrypt,
 * sha512-crypt "$6$", bcrypt "$2b$"); constant-time compare. */
bool password_verify(const char *password, const char *hash);
/* A random password of n-1 printable, unambiguous characters. */
void password_generate(char *out, size_t n);

#endif
