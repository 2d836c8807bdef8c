/* The administrative subcommands on the user database: user, domain, alias,
 * odmr.
 * Untrusted input: none (arguments and standard input come from the
 * operator). */
#ifndef CLI_CLI_H
#define CLI_CLI_H

/* core/config.h uses size_t without including <stddef.h>. */
#include <stddef.h>

#include "core/config.h"

/* Each takes the subcommand's own arguments (argv[0] is "user", "domain",
 * "alias" or "odmr") and returns the process exit status: 0 on success, 1
 * on failure with one line "correo: ..." on standard error, 2 on a usage
 * error with a usage line on standard error. "--help" / "-h" prints the
 * usage on standard output and returns 0. Uses cfg->data_dir.
 *
 *   user add ADDRESS [--password-stdin]
 *   user passwd ADDRESS [--password-stdin]
 *   user del ADDRESS              (the Maildir stays on disk)
 *   user list
 *   domain add|del DOMAIN ; domain list
 *   alias add ADDRESS TARGET[,TARGET...] ; alias del ADDRESS ; alias list
 *   odmr add DOMAIN USER ; odmr del DOMAIN ; odmr list   (RFC 2645)
 *
 * Without --password-stdin, add and passwd print a generated password on
 * standard output as "password for ADDRESS: PASSWORD". */
int cli_user(const struct config *cfg, int argc, char **argv);
int cli_domain(const struct config *cfg, int argc, char **argv);
int cli_alias(const struct config *cfg, int argc, char **argv);
int cli_odmr(const struct config *cfg, int argc, char **argv);

/* When the user database holds no user, creates demo@localhost with a random
 * password and prints "correo: created demo@localhost with password XXXX"
 * on standard error. Returns 0, or -1 after printing a one-line error. */
int cli_ensure_demo_user(const struct config *cfg);

#endif
