/* The administrative subcommands: user, domain, alias, odmr. */
#include "cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "auth/password.h"
#include "auth/sasl.h"
#include "auth/userdb.h"
#include "core/buf.h"
#include "core/strlist.h"
#include "core/xmalloc.h"

/* libxcrypt refuses passphrases of 512 bytes and more. */
#define CLI_PASSWORD_MAX 512
/* 16 characters of a 56-letter alphabet: about 93 bits. */
#define CLI_GENERATED_LEN 16
#define CLI_HASH_MAX 256
#define CLI_SCRAM_MAX 256
#define CLI_MAX_ARGS 8

static const char cli_user_usage[] =
    "usage: correo user add|passwd ADDRESS [--password-stdin] | "
    "user del ADDRESS | user list\n";
static const char cli_user_help[] =
    "usage: correo [-c FILE] user add ADDRESS [--password-stdin]\n"
    "       correo [-c FILE] user passwd ADDRESS [--password-stdin]\n"
    "       correo [-c FILE] user del ADDRESS\n"
    "       correo [-c FILE] user list\n"
    "add and passwd read one line from standard input with "
    "--password-stdin;\n"
    "otherwise they generate a password and print it.\n"
    "add also adds the address's domain as a local domain when missing.\n"
    "del removes the account but leaves its Maildir "
    "(DATA_DIR/mail/DOMAIN/LOCAL)\n"
    "on disk; delete it by hand when the mail is no longer wanted.\n";
static const char cli_domain_usage[] =
    "usage: correo domain add|del DOMAIN | domain list\n";
static const char cli_domain_help[] =
    "usage: correo [-c FILE] domain add DOMAIN\n"
    "       correo [-c FILE] domain del DOMAIN\n"
    "       correo [-c FILE] domain list\n"
    "del refuses while users or aliases of the domain remain.\n";
static const char cli_alias_usage[] =
    "usage: correo alias add ADDRESS TARGET[,TARGET...] | "
    "alias del ADDRESS | alias list\n";
static const char cli_alias_help[] =
    "usage: correo [-c FILE] alias add ADDRESS TARGET[,TARGET...]\n"
    "       correo [-c FILE] alias del ADDRESS\n"
    "       correo [-c FILE] alias list\n"
    "ADDRESS is local@domain, or @domain for a catch-all of a local "
    "domain.\n"
    "Targets are local or remote addresses; an alias may name its own "
    "address\n"
    "to keep a copy in that user's mailbox. list prints "
    "\"ADDRESS TARGET1,TARGET2\".\n";

static const char cli_odmr_usage[] =
    "usage: correo odmr add DOMAIN USER | odmr del DOMAIN | odmr list\n";
static const char cli_odmr_help[] =
    "usage: correo [-c FILE] odmr add DOMAIN USER\n"
    "       correo [-c FILE] odmr del DOMAIN\n"
    "       correo [-c FILE] odmr list\n"
    "On-Demand Mail Relay (RFC 2645): mail for DOMAIN (not a local "
    "domain) is\n"
    "accepted on the smtp listener and held in the queue until USER (a "
    "local\n"
    "user) pulls it with ATRN on the odmr listener. list prints "
    "\"DOMAIN USER\".\n";

struct cli_args {
	const char *pos[CLI_MAX_ARGS];	/* positional, pos[0] is the verb */
	size_t npos;
	bool password_stdin;
	bool help;
};

/* ---- output -------------------------------------------------------------- */

/* One line "correo: ..." on stderr; control characters from arguments are
 * shown as '?' so the message stays one line. Returns 1, the exit status. */
static int PRINTF_LIKE(1, 2)
cli_fail(const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	for (size_t i = 0; i < b.len; i++)
		if ((unsigned char)b.data[i] < 0x20 || b.data[i] == 0x7f)
			b.data[i] = '?';
	fprintf(stderr, "correo: %s\n", buf_cstr(&b));
	buf_free(&b);
	return 1;
}

/* Reports a userdb error (allocated) and frees it. Returns 1. */
static int
cli_fail_error(char **error)
{
	int r = cli_fail("%s", *error != NULL ? *error : "failed");
	x_free(error);
	return r;
}

static int
cli_usage(const char *usage)
{
	fputs(usage, stderr);
	return 2;
}

static int
cli_help(const char *help)
{
	fputs(help, stdout);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* Prints the lines, then checks that stdout took them. */
static int
cli_print_list(const struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		printf("%s\n", l->v[i]);
	if (fflush(stdout) != 0 || ferror(stdout))
		return cli_fail("cannot write to standard output: %s",
		    strerror(errno));
	return 0;
}

/* ---- arguments ----------------------------------------------------------- */

/* Options may come anywhere after argv[0]; "--" ends them. Returns -1 on an
 * unknown option or too many arguments. */
static int
cli_parse(int argc, char **argv, struct cli_args *a)
{
	bool opts = true;

	memset(a, 0, sizeof(*a));
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		if (opts && strcmp(s, "--") == 0)
			opts = false;
		else if (opts && (strcmp(s, "--help") == 0 ||
		    strcmp(s, "-h") == 0))
			a->help = true;
		else if (opts && strcmp(s, "--password-stdin") == 0)
			a->password_stdin = true;
		else if (opts && s[0] == '-' && s[1] != '\0')
			return -1;
		else if (a->npos == CLI_MAX_ARGS)
			return -1;
		else
			a->pos[a->npos++] = s;
	}
	return 0;
}

static bool
cli_is(const struct cli_args *a, const char *verb, size_t npos)
{
	return a->npos == npos && strcmp(a->pos[0], verb) == 0;
}

static struct userdb *
cli_open(const struct config *cfg)
{
	char *error = NULL;
	struct userdb *db = userdb_open(cfg->data_dir, &error);

	if (db == NULL)
		(void)cli_fail_error(&error);
	return db;
}

/* ---- passwords ----------------------------------------------------------- */

/* Reads one line from standard input with read(2), byte by byte: nothing
 * past the line is consumed and no copy stays in a stdio buffer. */
static int
cli_read_password(char *pw, size_t n)
{
	size_t len = 0;
	char c;

	for (;;) {
		ssize_t r = read(STDIN_FILENO, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return cli_fail("cannot read the password from "
			    "standard input: %s", strerror(errno));
		if (r == 0 || c == '\n')
			break;
		if (c == '\0' || len + 1 >= n) {
			explicit_bzero(pw, n);
			if (c == '\0')
				return cli_fail("password contains a NUL byte");
			return cli_fail("password too long (at most %zu "
			    "bytes)", n - 1);
		}
		pw[len++] = c;
	}
	if (len > 0 && pw[len - 1] == '\r')
		len--;
	pw[len] = '\0';
	if (len == 0)
		return cli_fail("empty password");
	return 0;
}

/* The crypt hash and the SCRAM secrets of pw, both of its SASLprep form:
 * that is what PLAIN, LOGIN and SCRAM clients present. 0 or -1. */
static int
cli_password_secrets(const char *pw, char *hash, size_t hash_len,
    char *scram, size_t scram_len, char **error_r)
{
	char *prep = sasl_prep_password(pw, true);
	int r = -1;

	if (prep == NULL)
		*error_r = x_strdup("password refused: control characters or "
		    "characters SASLprep (RFC 4013) does not allow");
	else if (password_hash(prep, hash, hash_len) < 0)
		*error_r = x_strdup("cannot hash the password");
	else if (sasl_scram_secrets(prep, scram, scram_len) < 0)
		*error_r = x_strdup("cannot derive the SCRAM secrets");
	else
		r = 0;
	if (prep != NULL)
		explicit_bzero(prep, strlen(prep));
	x_free(&prep);
	return r;
}

/* Adds the user (add) or replaces its password, hash and SCRAM secrets
 * together. 0 or -1. */
static int
cli_store_password(struct userdb *db, const char *address, const char *pw,
    bool add, char **error_r)
{
	char hash[CLI_HASH_MAX];
	char scram[CLI_SCRAM_MAX];

	int r = cli_password_secrets(pw, hash, sizeof(hash), scram,
	    sizeof(scram), error_r);
	if (r == 0)
		r = add ? userdb_user_add(db, address, hash, error_r) :
		    userdb_user_set_hash(db, address, hash, error_r);
	if (r == 0)
		r = userdb_user_set_scram(db, address, scram, error_r);
	explicit_bzero(hash, sizeof(hash));
	explicit_bzero(scram, sizeof(scram));
	return r;
}

/* ---- user ---------------------------------------------------------------- */

static int
cli_user_password(struct userdb *db, const char *address, bool from_stdin,
    bool add)
{
	char pw[CLI_PASSWORD_MAX];
	char *error = NULL;
	char *l, *d;

	if (userdb_split_address(address, &l, &d) < 0)
		return cli_fail("invalid address \"%s\"", address);
	x_free(&l);
	x_free(&d);
	/* Checked before reading a password that would be thrown away. */
	bool exists = userdb_user_exists(db, address);
	if (add && exists)
		return cli_fail("user %s already exists", address);
	if (!add && !exists)
		return cli_fail("no such user: %s", address);
	if (from_stdin) {
		if (cli_read_password(pw, sizeof(pw)) != 0)
			return 1;
	} else
		password_generate(pw, CLI_GENERATED_LEN + 1);
	int r = cli_store_password(db, address, pw, add, &error);
	if (r == 0 && !from_stdin) {
		printf("password for %s: %s\n", address, pw);
		if (fflush(stdout) != 0)
			r = cli_fail("cannot write to standard output: %s",
			    strerror(errno));
	} else if (r < 0)
		r = cli_fail_error(&error);
	explicit_bzero(pw, sizeof(pw));
	return r;
}

static int
cli_user_run(struct userdb *db, const struct cli_args *a)
{
	struct strlist l = STRLIST_INIT;
	char *error = NULL;
	int r;

	if (cli_is(a, "add", 2) || cli_is(a, "passwd", 2))
		return cli_user_password(db, a->pos[1], a->password_stdin,
		    strcmp(a->pos[0], "add") == 0);
	if (cli_is(a, "del", 2))
		return userdb_user_del(db, a->pos[1], &error) == 0 ? 0 :
		    cli_fail_error(&error);
	if (userdb_user_list(db, &l) < 0)
		r = cli_fail("cannot list users");
	else
		r = cli_print_list(&l);
	strlist_free(&l);
	return r;
}

int
cli_user(const struct config *cfg, int argc, char **argv)
{
	struct cli_args a;

	if (cli_parse(argc, argv, &a) < 0)
		return cli_usage(cli_user_usage);
	if (a.help)
		return cli_help(cli_user_help);
	/* del takes --password-stdin quietly: the contract lists it on the
	 * "del|passwd" line. */
	if (!cli_is(&a, "add", 2) && !cli_is(&a, "passwd", 2) &&
	    !cli_is(&a, "del", 2) &&
	    !(cli_is(&a, "list", 1) && !a.password_stdin))
		return cli_usage(cli_user_usage);
	struct userdb *db = cli_open(cfg);
	if (db == NULL)
		return 1;
	int r = cli_user_run(db, &a);
	userdb_close(db);
	return r;
}

/* ---- domain -------------------------------------------------------------- */

static int
cli_domain_run(struct userdb *db, const struct cli_args *a)
{
	struct strlist l = STRLIST_INIT;
	char *error = NULL;
	int r;

	if (cli_is(a, "add", 2))
		r = userdb_domain_add(db, a->pos[1], &error);
	else if (cli_is(a, "del", 2))
		r = userdb_domain_del(db, a->pos[1], &error);
	else {
		if (userdb_domain_list(db, &l) < 0)
			r = cli_fail("cannot list domains");
		else
			r = cli_print_list(&l);
		strlist_free(&l);
		return r;
	}
	return r == 0 ? 0 : cli_fail_error(&error);
}

int
cli_domain(const struct config *cfg, int argc, char **argv)
{
	struct cli_args a;

	if (cli_parse(argc, argv, &a) < 0 || a.password_stdin)
		return cli_usage(cli_domain_usage);
	if (a.help)
		return cli_help(cli_domain_help);
	if (!cli_is(&a, "add", 2) && !cli_is(&a, "del", 2) &&
	    !cli_is(&a, "list", 1))
		return cli_usage(cli_domain_usage);
	struct userdb *db = cli_open(cfg);
	if (db == NULL)
		return 1;
	int r = cli_domain_run(db, &a);
	userdb_close(db);
	return r;
}

/* ---- alias --------------------------------------------------------------- */

/* Splits each "a,b,c" argument into targets, trimming blanks. */
static int
cli_alias_targets(const char *const *args, size_t n, struct strlist *out)
{
	for (size_t i = 0; i < n; i++) {
		const char *p = args[i];
		for (;;) {
			const char *end = strchr(p, ',');
			size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
			while (len > 0 && (*p == ' ' || *p == '\t'))
				p++, len--;
			while (len > 0 && (p[len - 1] == ' ' ||
			    p[len - 1] == '\t'))
				len--;
			if (len == 0)
				return cli_fail("empty target in \"%s\"",
				    args[i]);
			char *t = x_strndup(p, len);
			strlist_add(out, t);
			x_free(&t);
			if (end == NULL)
				break;
			p = end + 1;
		}
	}
	return 0;
}

static int
cli_alias_add(struct userdb *db, const struct cli_args *a)
{
	struct strlist targets = STRLIST_INIT;
	char *error = NULL;
	int r = cli_alias_targets(a->pos + 2, a->npos - 2, &targets);

	if (r == 0 && userdb_alias_add(db, a->pos[1], &targets, &error) < 0)
		r = cli_fail_error(&error);
	strlist_free(&targets);
	return r;
}

static int
cli_alias_run(struct userdb *db, const struct cli_args *a)
{
	struct strlist l = STRLIST_INIT;
	char *error = NULL;
	int r;

	if (strcmp(a->pos[0], "add") == 0)
		return cli_alias_add(db, a);
	if (strcmp(a->pos[0], "del") == 0)
		return userdb_alias_del(db, a->pos[1], &error) == 0 ? 0 :
		    cli_fail_error(&error);
	if (userdb_alias_list(db, &l) < 0)
		r = cli_fail("cannot list aliases");
	else
		r = cli_print_list(&l);
	strlist_free(&l);
	return r;
}

int
cli_alias(const struct config *cfg, int argc, char **argv)
{
	struct cli_args a;

	if (cli_parse(argc, argv, &a) < 0 || a.password_stdin)
		return cli_usage(cli_alias_usage);
	if (a.help)
		return cli_help(cli_alias_help);
	/* Several target arguments are taken as one list. */
	bool add = a.npos >= 3 && strcmp(a.pos[0], "add") == 0;
	if (!add && !cli_is(&a, "del", 2) && !cli_is(&a, "list", 1))
		return cli_usage(cli_alias_usage);
	struct userdb *db = cli_open(cfg);
	if (db == NULL)
		return 1;
	int r = cli_alias_run(db, &a);
	userdb_close(db);
	return r;
}

/* ---- odmr ---------------------------------------------------------------- */

static int
cli_odmr_run(struct userdb *db, const struct cli_args *a)
{
	struct strlist l = STRLIST_INIT;
	char *error = NULL;
	int r;

	if (cli_is(a, "add", 3))
		return userdb_odmr_add(db, a->pos[1], a->pos[2], &error) == 0 ?
		    0 : cli_fail_error(&error);
	if (cli_is(a, "del", 2))
		return userdb_odmr_del(db, a->pos[1], &error) == 0 ? 0 :
		    cli_fail_error(&error);
	if (userdb_odmr_list(db, &l) < 0)
		r = cli_fail("cannot list ODMR domains");
	else
		r = cli_print_list(&l);
	strlist_free(&l);
	return r;
}

int
cli_odmr(const struct config *cfg, int argc, char **argv)
{
	struct cli_args a;

	if (cli_parse(argc, argv, &a) < 0 || a.password_stdin)
		return cli_usage(cli_odmr_usage);
	if (a.help)
		return cli_help(cli_odmr_help);
	if (!cli_is(&a, "add", 3) && !cli_is(&a, "del", 2) &&
	    !cli_is(&a, "list", 1))
		return cli_usage(cli_odmr_usage);
	struct userdb *db = cli_open(cfg);
	if (db == NULL)
		return 1;
	int r = cli_odmr_run(db, &a);
	userdb_close(db);
	return r;
}

/* ---- the embedded default's first user ------------------------------------ */

static int
cli_demo_user(struct userdb *db)
{
	char pw[CLI_GENERATED_LEN + 1];
	char *error = NULL;
	int n = userdb_user_count(db);

	if (n < 0) {
		(void)cli_fail("cannot count users in the user database");
		return -1;
	}
	if (n > 0)
		return 0;
	password_generate(pw, sizeof(pw));
	int r = cli_store_password(db, "demo@localhost", pw, true, &error);
	if (r == 0)
		fprintf(stderr, "correo: created demo@localhost with password "
		    "%s\n", pw);
	else
		(void)cli_fail_error(&error);
	explicit_bzero(pw, sizeof(pw));
	return r;
}

int
cli_ensure_demo_user(const struct config *cfg)
{
	struct userdb *db = cli_open(cfg);
	if (db == NULL)
		return -1;
	int r = cli_demo_user(db);
	userdb_close(db);
	return r;
}
