/* SASL server exchanges for every protocol (SMTP AUTH, IMAP AUTHENTICATE,
 * POP3 AUTH), built on GNU SASL: PLAIN, LOGIN, SCRAM-SHA-256 and
 * SCRAM-SHA-256-PLUS (tls-exporter channel binding).
 *
 * sasl_step() is blocking (password hashing, SCRAM key derivation): call it
 * from the thread pool, one step at a time per exchange.
 *
 * Untrusted input: every base64 response a client sends. */
#ifndef AUTH_SASL_H
#define AUTH_SASL_H

#include <stdbool.h>
#include <stddef.h>

struct userdb;
struct sasl_exchange;

/* Starts the library once per process. 0 or -1. */
int sasl_init(void);
void sasl_deinit(void);

/* Space-separated mechanism list to advertise; the -PLUS variant only when
 * tls is true (channel binding needs TLS). */
const char *sasl_mechanisms(bool tls);
/* Case-insensitive; false for unknown or not-offered mechanisms. */
bool sasl_mechanism_offered(const char *mech, bool tls);

/* A new exchange, or NULL when mech is not offered. cb is the 32-octet
 * tls-exporter value (RFC 9266) of the connection, or NULL without TLS. */
struct sasl_exchange *sasl_exchange_new(struct userdb *db, const char *mech,
    const unsigned char *cb, size_t cb_len);

enum sasl_result {
	SASL_CONTINUE,	/* send *out as a challenge, wait for a response */
	SASL_OK,	/* authenticated; *out may hold final server data */
	SASL_FAIL,	/* wrong credentials or no such user (same answer) */
	SASL_MALFORMED	/* not base64 or not the mechanism's syntax */
};

/* One step. in is the client's base64 text ("" for an empty response or
 * no initial response, "=" for an empty initial response). On CONTINUE
 * and OK, *out is allocated base64 (possibly ""); the caller frees it. */
enum sasl_result sasl_step(struct sasl_exchange *x, const char *in,
    char **out);
/* The canonical address after SASL_OK ("local@domain"), else NULL. */
const char *sasl_user(const struct sasl_exchange *x);
/* The authentication identity the client claimed (for logs), or "":
 * at most 255 bytes, control characters shown as '?'. */
const char *sasl_authid(const struct sasl_exchange *x);
void sasl_exchange_free(struct sasl_exchange *x);

/* SCRAM-SHA-256 secrets for a password, to store beside the crypt hash:
 * "ITER:SALT_B64:STOREDKEY_B64:SERVERKEY_B64". Blocking. 0 or -1. */
int sasl_scram_secrets(const char *password, char *out, size_t n);

/* The password as SASL mechanisms see it (SASLprep, RFC 4013), allocated,
 * or NULL when SASLprep refuses it (controls, prohibited or, with
 * to_store, unassigned code points) or it is empty. Hash this form:
 * PLAIN and LOGIN verify the prepared password, so commands that take a
 * password outside SASL (IMAP LOGIN, POP3 PASS) must prepare it too.
 * The caller wipes it with explicit_bzero before x_free. */
char *sasl_prep_password(const char *password, bool to_store);

/* For tests and fuzzing: the crypt hash verified in place of an unknown
 * user's, so that failing costs the same time (default: a yescrypt hash
 * that matches no password). NULL restores the default. Not thread-safe:
 * call before any exchange runs. */
void sasl_set_dummy_hash(const char *hash);

#endif
