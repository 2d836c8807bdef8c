/* The user database, data_dir/correo.db (SQLite, WAL): domains, users with
 * password hashes and SCRAM secrets, aliases, ODMR domains. Addresses are
 * "local@domain"; domains are stored and compared in lowercase, local
 * parts too (ASCII case-insensitive), so "Demo@LOCALHOST" is
 * demo@localhost. UTF-8 local parts are allowed.
 *
 * Untrusted input: addresses from SMTP RCPT reach userdb_resolve(). */
#ifndef AUTH_USERDB_H
#define AUTH_USERDB_H

#include <stdbool.h>
#include "core/strlist.h"

struct userdb;

/* Opens (creating the file and schema when missing) data_dir/correo.db.
 * Returns NULL with *error_r (allocated) on failure. */
struct userdb *userdb_open(const char *data_dir, char **error_r);
void userdb_close(struct userdb *db);

/* Splits "local@domain" at the last '@'; both outputs allocated and
 * lowercased (ASCII). Returns -1 on bad syntax for an account name: empty
 * parts, a local part or domain that could leave a path ("/", "\0", ".",
 * "..", leading "."), control characters, over 64/255 octets. */
int userdb_split_address(const char *address, char **local_r,
    char **domain_r);

bool userdb_is_local_domain(struct userdb *db, const char *domain);
int userdb_domain_add(struct userdb *db, const char *domain, char **error_r);
/* Fails when users or aliases of the domain remain. */
int userdb_domain_del(struct userdb *db, const char *domain, char **error_r);
int userdb_domain_list(struct userdb *db, struct strlist *out);

/* Adds a user; adds its domain when missing. hash is a crypt string. */
int userdb_user_add(struct userdb *db, const char *address, const char *hash,
    char **error_r);
int userdb_user_del(struct userdb *db, const char *address, char **error_r);
/* Replaces the crypt hash and clears the SCRAM secrets (they were derived
 * from the old password): set new ones with userdb_user_set_scram. */
int userdb_user_set_hash(struct userdb *db, const char *address,
    const char *hash, char **error_r);
/* The stored hash of an existing user (allocated), or NULL. */
char *userdb_user_hash(struct userdb *db, const char *address);
/* Stores the SCRAM-SHA-256 secrets of an existing user, as made by
 * sasl_scram_secrets(); NULL or "" clears them (SCRAM then fails for the
 * user, PLAIN still works). 0 or -1 with *error_r (allocated). */
int userdb_user_set_scram(struct userdb *db, const char *address,
    const char *scram, char **error_r);
/* The stored SCRAM secrets of a user (allocated), or NULL when the user
 * does not exist or has none. */
char *userdb_user_scram(struct userdb *db, const char *address);
bool userdb_user_exists(struct userdb *db, const char *address);
int userdb_user_count(struct userdb *db);
int userdb_user_list(struct userdb *db, struct strlist *out);

/* An alias maps one address (or "@domain" as a catch-all) to targets
 * (local or remote addresses). The alias's domain must be local. */
int userdb_alias_add(struct userdb *db, const char *address,
    const struct strlist *targets, char **error_r);
int userdb_alias_del(struct userdb *db, const char *address, char **error_r);
/* Lines "address target1,target2". */
int userdb_alias_list(struct userdb *db, struct strlist *out);

/* On-Demand Mail Relay (RFC 2645): mail for a domain that is not local is
 * accepted and held in the queue until one local user pulls it with ATRN.
 * add refuses a local domain, an unknown user, a domain already held;
 * while a domain is held, domain add and user add refuse to make it
 * local. Deleting the user removes its domains. 0 or -1 with *error_r. */
int userdb_odmr_add(struct userdb *db, const char *domain, const char *user,
    char **error_r);
int userdb_odmr_del(struct userdb *db, const char *domain, char **error_r);
/* Lines "domain user", by domain. 0 or -1. */
int userdb_odmr_list(struct userdb *db, struct strlist *out);
/* The user who may pull domain (canonical, allocated), or NULL when the
 * domain is not held (or on a database error). */
char *userdb_odmr_user(struct userdb *db, const char *domain);
bool userdb_is_odmr_domain(struct userdb *db, const char *domain);
/* Appends the domains user may pull to out; their number, or -1. */
int userdb_odmr_domains(struct userdb *db, const char *user,
    struct strlist *out);

enum userdb_resolve_result {
	RESOLVE_OK,		/* at least one target in *local or *remote */
	RESOLVE_NOT_LOCAL,	/* the domain is not one of ours */
	RESOLVE_NO_SUCH_USER,	/* local domain, no user or alias */
	RESOLVE_ERROR		/* database error or alias loop only */
};

/* Resolves a recipient: follows aliases (recursively, at most 10 levels,
 * loops cut), strips "+tag" sub-addresses when the full local part is not a
 * user or alias, then the catch-all "@domain". Local users are added to
 * *local as canonical "local@domain" (lowercase, no tag), remote targets to
 * *remote; both deduplicated. */
enum userdb_resolve_result userdb_resolve(struct userdb *db,
    const char *address, struct strlist *local, struct strlist *remote);

/* Directory of a user's Maildir: data_dir/mail/DOMAIN/LOCAL (allocated). */
char *userdb_maildir_path(const char *data_dir, const char *address);

/* How many statements db keeps prepared (for the tests). */
size_t userdb_statements_kept(const struct userdb *db);

#endif
