/* Unit tests for src/auth/userdb.c: address syntax, domains, users,
 * aliases, resolution, Maildir creation. Each test gets a fresh data_dir. */
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
#include <unistd.h>

#include "auth/userdb.h"
#include "core/buf.h"
#include "core/xmalloc.h"

#define HASH "$6$abcdefgh$notarealhashbutnonempty"

struct fixture {
	char dir[64];
	char *data_dir;
	struct userdb *db;
};

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st, (void)flag, (void)f;
	return remove(path);
}

static int
setup(void **state)
{
	struct fixture *fx = x_calloc(1, sizeof(*fx));
	char *error = NULL;

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/correo-test-userdb-XXXXXX");
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	/* Not there yet: userdb_open must create it. */
	fx->data_dir = x_asprintf("%s/data/sub", fx->dir);
	fx->db = userdb_open(fx->data_dir, &error);
	if (fx->db == NULL) {
		fprintf(stderr, "userdb_open: %s\n", error);
		free(error);
		return -1;
	}
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	userdb_close(fx->db);
	int r = nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	x_free(&fx->data_dir);
	x_free(&fx);
	return r;
}

static void
add_user(struct userdb *db, const char *address)
{
	char *error = NULL;
	int r = userdb_user_add(db, address, HASH, &error);
	if (r != 0)
		fprintf(stderr, "userdb_user_add %s: %s\n", address, error);
	assert_int_equal(r, 0);
}

static void
add_domain(struct userdb *db, const char *domain)
{
	char *error = NULL;
	assert_int_equal(userdb_domain_add(db, domain, &error), 0);
}

/* Adds an alias from a comma-separated target list. */
static int
add_alias(struct userdb *db, const char *address, const char *targets)
{
	struct strlist l = STRLIST_INIT;
	char *copy = x_strdup(targets), *save = NULL, *error = NULL;

	for (char *t = strtok_r(copy, ",", &save); t != NULL;
	    t = strtok_r(NULL, ",", &save))
		strlist_add(&l, t);
	int r = userdb_alias_add(db, address, &l, &error);
	free(error);
	free(copy);
	strlist_free(&l);
	return r;
}

static char *
join(const struct strlist *l)
{
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < l->n; i++)
		buf_printf(&b, "%s%s", i ? "," : "", l->v[i]);
	char *s = x_strdup(buf_cstr(&b));
	buf_free(&b);
	return s;
}

static void
check_list(const struct strlist *l, const char *want)
{
	char *got = join(l);
	assert_string_equal(got, want);
	free(got);
}

/* Resolves address and compares the result and both lists (joined). */
static void
check_resolve(struct userdb *db, const char *address,
    enum userdb_resolve_result want, const char *want_local,
    const char *want_remote)
{
	struct strlist local = STRLIST_INIT, remote = STRLIST_INIT;

	enum userdb_resolve_result r = userdb_resolve(db, address, &local,
	    &remote);
	if (r != want)
		fprintf(stderr, "resolve %s: %d, want %d\n", address, r, want);
	assert_int_equal(r, want);
	check_list(&local, want_local);
	check_list(&remote, want_remote);
	strlist_free(&local);
	strlist_free(&remote);
}

static mode_t
mode_of(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

/* ---- address syntax ------------------------------------------------------ */

static void
check_split(const char *address, const char *want_local,
    const char *want_domain)
{
	char *local = NULL, *domain = NULL;

	assert_int_equal(userdb_split_address(address, &local, &domain), 0);
	assert_string_equal(local, want_local);
	assert_string_equal(domain, want_domain);
	free(local);
	free(domain);
}

static void
test_split_ok(void **state)
{
	char l64[80], d255[300], addr[400];

	(void)state;
	check_split("demo@localhost", "demo", "localhost");
	check_split("Demo@LOCALHOST", "demo", "localhost");
	check_split("First.Last+tag@Mail.Example.ORG", "first.last+tag",
	    "mail.example.org");
	/* Only ASCII letters are lowercased. */
	check_split("JÜRGEN@Bücher.example", "jÜrgen", "bücher.example");
	check_split("x@[192.0.2.1]", "x", "[192.0.2.1]");
	check_split("a.b..c@d", "a.b..c", "d");
	memset(l64, 'a', 64);
	l64[64] = '\0';
	memset(d255, 'd', 255);
	d255[255] = '\0';
	snprintf(addr, sizeof(addr), "%s@%s", l64, d255);
	check_split(addr, l64, d255);
}

static void
test_split_rejects(void **state)
{
	static const char *const bad[] = {
		"", "nodomain", "@", "@d", "x@", "../x@d", "..@d", ".@d",
		"a/b@d", ".x@d", "x@..", "x@.", "x@a/b", "x@.d", "x@d.",
		"x@a..b", "/etc/passwd@d", "x@/", "a\tb@d", "a\nb@d",
		"a\rb@d", "x@d\x01", "a\x7f@d", "a b@d", "a,b@d", "a@b@d",
		"\xff@d", "\xc3@d", "\xc0\xaf@d", "x@d\xff", "x@d e",
		"x@d:25/x",
	};
	char big[400];
	char *local = (char *)"unchanged", *domain = (char *)"unchanged";

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (userdb_split_address(bad[i], &local, &domain) != -1)
			fprintf(stderr, "accepted \"%s\"\n", bad[i]);
		assert_int_equal(userdb_split_address(bad[i], &local,
		    &domain), -1);
	}
	assert_int_equal(userdb_split_address(NULL, &local, &domain), -1);
	/* Over-long local part (65) and domain (256). */
	memset(big, 'a', 65);
	snprintf(big + 65, sizeof(big) - 65, "@d");
	assert_int_equal(userdb_split_address(big, &local, &domain), -1);
	big[0] = 'a', big[1] = '@';
	memset(big + 2, 'd', 256);
	big[258] = '\0';
	assert_int_equal(userdb_split_address(big, &local, &domain), -1);
	assert_string_equal(local, "unchanged");
	assert_string_equal(domain, "unchanged");
}

/* ---- open ---------------------------------------------------------------- */

static void
test_open_creates_private_files(void **state)
{
	struct fixture *fx = *state;
	char *path = x_asprintf("%s/correo.db", fx->data_dir);

	assert_int_equal(mode_of(fx->data_dir), 0700);
	assert_int_equal(mode_of(path) & 0077, 0);
	/* Reopening keeps the contents. */
	add_user(fx->db, "a@example.org");
	userdb_close(fx->db);
	char *error = NULL;
	fx->db = userdb_open(fx->data_dir, &error);
	assert_non_null(fx->db);
	assert_true(userdb_user_exists(fx->db, "a@example.org"));
	free(path);
}

static void
test_open_fails(void **state)
{
	struct fixture *fx = *state;
	char *error = NULL;
	char *file = x_asprintf("%s/plainfile", fx->dir);
	FILE *fp = fopen(file, "w");

	(void)state;
	assert_non_null(fp);
	fclose(fp);
	char *under = x_asprintf("%s/x", file);
	assert_null(userdb_open(under, &error));
	assert_non_null(error);
	free(error);
	free(under);
	free(file);
}

/* ---- domains ------------------------------------------------------------- */

static void
test_domains(void **state)
{
	struct fixture *fx = *state;
	struct strlist l = STRLIST_INIT;
	char *error = NULL;

	add_domain(fx->db, "Example.ORG");
	add_domain(fx->db, "b.example");
	assert_int_equal(userdb_domain_add(fx->db, "example.org", &error), -1);
	assert_non_null(error);
	x_free(&error);
	assert_int_equal(userdb_domain_add(fx->db, "bad/domain", &error), -1);
	x_free(&error);
	assert_int_equal(userdb_domain_add(fx->db, "..", &error), -1);
	x_free(&error);
	assert_true(userdb_is_local_domain(fx->db, "example.org"));
	assert_true(userdb_is_local_domain(fx->db, "EXAMPLE.org"));
	assert_false(userdb_is_local_domain(fx->db, "example.com"));
	assert_false(userdb_is_local_domain(fx->db, "../x"));
	assert_int_equal(userdb_domain_list(fx->db, &l), 0);
	check_list(&l, "b.example,example.org");
	strlist_free(&l);

	assert_int_equal(userdb_domain_del(fx->db, "B.EXAMPLE", &error), 0);
	assert_false(userdb_is_local_domain(fx->db, "b.example"));
	assert_int_equal(userdb_domain_del(fx->db, "b.example", &error), -1);
	assert_non_null(error);
	x_free(&error);
	assert_int_equal(userdb_domain_list(fx->db, &l), 0);
	check_list(&l, "example.org");
	strlist_free(&l);
}

static void
test_domain_del_refused_while_used(void **state)
{
	struct fixture *fx = *state;
	char *error = NULL;

	add_user(fx->db, "a@users.example");
	assert_int_equal(userdb_domain_del(fx->db, "users.example", &error),
	    -1);
	assert_non_null(error);
	x_free(&error);
	add_domain(fx->db, "aliases.example");
	assert_int_equal(add_alias(fx->db, "@aliases.example", "x@y.test"), 0);
	assert_int_equal(userdb_domain_del(fx->db, "aliases.example", &error),
	    -1);
	x_free(&error);
	assert_int_equal(userdb_alias_del(fx->db, "@aliases.example", &error),
	    0);
	assert_int_equal(userdb_domain_del(fx->db, "aliases.example", &error),
	    0);
	assert_int_equal(userdb_user_del(fx->db, "a@users.example", &error),
	    0);
	assert_int_equal(userdb_domain_del(fx->db, "users.example", &error),
	    0);
}

/* ---- users --------------------------------------------------------------- */

static void
test_users(void **state)
{
	struct fixture *fx = *state;
	struct strlist l = STRLIST_INIT;
	char *error = NULL;

	assert_int_equal(userdb_user_count(fx->db), 0);
	add_user(fx->db, "Bob@Example.ORG");
	add_user(fx->db, "alice@example.org");
	add_user(fx->db, "zed@a.example");
	/* The domain came with the user. */
	assert_true(userdb_is_local_domain(fx->db, "example.org"));
	assert_true(userdb_is_local_domain(fx->db, "a.example"));
	assert_int_equal(userdb_user_count(fx->db), 3);
	assert_true(userdb_user_exists(fx->db, "BOB@example.org"));
	assert_false(userdb_user_exists(fx->db, "carol@example.org"));
	assert_false(userdb_user_exists(fx->db, "not an address"));

	assert_int_equal(userdb_user_add(fx->db, "ALICE@example.org", HASH,
	    &error), -1);
	assert_non_null(error);
	x_free(&error);
	assert_int_equal(userdb_user_add(fx->db, "../x@example.org", HASH,
	    &error), -1);
	x_free(&error);
	assert_int_equal(userdb_user_add(fx->db, "x@example.org", "",
	    &error), -1);
	x_free(&error);

	assert_int_equal(userdb_user_list(fx->db, &l), 0);
	check_list(&l, "alice@example.org,bob@example.org,zed@a.example");
	strlist_free(&l);

	char *h = userdb_user_hash(fx->db, "Alice@Example.org");
	assert_string_equal(h, HASH);
	free(h);
	assert_null(userdb_user_hash(fx->db, "carol@example.org"));
	assert_int_equal(userdb_user_set_hash(fx->db, "alice@example.org",
	    "$y$new", &error), 0);
	h = userdb_user_hash(fx->db, "alice@example.org");
	assert_string_equal(h, "$y$new");
	free(h);
	assert_int_equal(userdb_user_set_hash(fx->db, "carol@example.org",
	    "$y$new", &error), -1);
	assert_non_null(error);
	x_free(&error);

	assert_int_equal(userdb_user_del(fx->db, "BOB@example.org", &error),
	    0);
	assert_int_equal(userdb_user_del(fx->db, "bob@example.org", &error),
	    -1);
	assert_non_null(error);
	x_free(&error);
	assert_int_equal(userdb_user_count(fx->db), 2);
}

static void
test_user_maildir(void **state)
{
	struct fixture *fx = *state;
	char *error = NULL;

	add_user(fx->db, "Alice@Example.org");
	char *path = userdb_maildir_path(fx->data_dir, "ALICE@example.ORG");
	char *want = x_asprintf("%s/mail/example.org/alice", fx->data_dir);
	assert_string_equal(path, want);
	static const char *const sub[] = { "", "/cur", "/new", "/tmp" };
	for (size_t i = 0; i < 4; i++) {
		char *p = x_asprintf("%s%s", path, sub[i]);
		assert_int_equal(mode_of(p), 0700);
		free(p);
	}
	/* del keeps the mail. */
	assert_int_equal(userdb_user_del(fx->db, "alice@example.org", &error),
	    0);
	char *cur = x_asprintf("%s/cur", path);
	assert_int_equal(mode_of(cur), 0700);
	free(cur);
	/* Adding the user again reuses the existing Maildir. */
	add_user(fx->db, "alice@example.org");
	assert_null(userdb_maildir_path(fx->data_dir, "../x@example.org"));
	assert_null(userdb_maildir_path(fx->data_dir, "x@a/b"));
	free(want);
	free(path);
}

/* ---- aliases ------------------------------------------------------------- */

static void
test_aliases(void **state)
{
	struct fixture *fx = *state;
	struct strlist l = STRLIST_INIT;
	char *error = NULL;

	add_user(fx->db, "alice@example.org");
	assert_int_equal(add_alias(fx->db, "Team@Example.org",
	    "alice@example.org,Ext@Remote.TEST,alice@EXAMPLE.org"), 0);
	assert_int_equal(add_alias(fx->db, "@example.org", "alice@example.org"),
	    0);
	/* Duplicates, foreign domains, bad targets. */
	assert_int_equal(add_alias(fx->db, "team@example.org", "x@y.test"), -1);
	assert_int_equal(add_alias(fx->db, "x@other.test", "alice@example.org"),
	    -1);
	assert_int_equal(add_alias(fx->db, "y@example.org", "nodomain"), -1);
	assert_int_equal(add_alias(fx->db, "y@example.org", "a/b@x.test"), -1);
	assert_int_equal(add_alias(fx->db, "../y@example.org", "a@x.test"), -1);
	assert_int_equal(add_alias(fx->db, "@", "a@x.test"), -1);
	struct strlist empty = STRLIST_INIT;
	assert_int_equal(userdb_alias_add(fx->db, "y@example.org", &empty,
	    &error), -1);
	x_free(&error);

	assert_int_equal(userdb_alias_list(fx->db, &l), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0], "@example.org alice@example.org");
	assert_string_equal(l.v[1],
	    "team@example.org alice@example.org,Ext@remote.test");
	strlist_free(&l);

	assert_int_equal(userdb_alias_del(fx->db, "TEAM@example.org", &error),
	    0);
	assert_int_equal(userdb_alias_del(fx->db, "team@example.org", &error),
	    -1);
	assert_non_null(error);
	x_free(&error);
	assert_int_equal(userdb_alias_list(fx->db, &l), 0);
	check_list(&l, "@example.org alice@example.org");
	strlist_free(&l);
}

/* ---- resolution ---------------------------------------------------------- */

static void
resolve_fixture(struct userdb *db)
{
	add_user(db, "alice@example.org");
	add_user(db, "bob@example.org");
	add_user(db, "jürgen@example.org");
	add_domain(db, "other.example");
}

static void
test_resolve_users(void **state)
{
	struct fixture *fx = *state;

	resolve_fixture(fx->db);
	check_resolve(fx->db, "alice@example.org", RESOLVE_OK,
	    "alice@example.org", "");
	check_resolve(fx->db, "ALICE@Example.ORG", RESOLVE_OK,
	    "alice@example.org", "");
	check_resolve(fx->db, "JüRGEN@example.org", RESOLVE_OK,
	    "jürgen@example.org", "");
	check_resolve(fx->db, "alice+lists@example.org", RESOLVE_OK,
	    "alice@example.org", "");
	check_resolve(fx->db, "alice+a+b@example.org", RESOLVE_OK,
	    "alice@example.org", "");
	check_resolve(fx->db, "+alice@example.org", RESOLVE_NO_SUCH_USER,
	    "", "");
	check_resolve(fx->db, "carol@example.org", RESOLVE_NO_SUCH_USER, "",
	    "");
	check_resolve(fx->db, "carol+x@example.org", RESOLVE_NO_SUCH_USER, "",
	    "");
	check_resolve(fx->db, "alice@other.example", RESOLVE_NO_SUCH_USER, "",
	    "");
	check_resolve(fx->db, "postmaster@example.org", RESOLVE_NO_SUCH_USER,
	    "", "");
	check_resolve(fx->db, "../alice@example.org", RESOLVE_NO_SUCH_USER,
	    "", "");
	check_resolve(fx->db, "alice@example.com", RESOLVE_NOT_LOCAL, "", "");
	check_resolve(fx->db, "a/b@remote.test", RESOLVE_NOT_LOCAL, "", "");
	check_resolve(fx->db, "noat", RESOLVE_NO_SUCH_USER, "", "");
}

/* Lookups reuse statements kept prepared, and a kept statement gives the
 * right answer for new parameters and after the tables change. */
static void
test_resolve_statements_kept(void **state)
{
	struct fixture *fx = *state;
	size_t kept = 0;

	resolve_fixture(fx->db);
	for (int round = 0; round < 3; round++) {
		check_resolve(fx->db, "alice@example.org", RESOLVE_OK,
		    "alice@example.org", "");
		check_resolve(fx->db, "bob+x@example.org", RESOLVE_OK,
		    "bob@example.org", "");
		check_resolve(fx->db, "carol@example.org",
		    RESOLVE_NO_SUCH_USER, "", "");
		check_resolve(fx->db, "x@elsewhere.test", RESOLVE_NOT_LOCAL,
		    "", "");
		check_resolve(fx->db, "new@example.org", round == 1 ?
		    RESOLVE_OK : RESOLVE_NO_SUCH_USER, round == 1 ?
		    "bob@example.org" : "", "");
		if (round == 0) {
			kept = userdb_statements_kept(fx->db);
			assert_true(kept > 0);
			assert_int_equal(add_alias(fx->db, "new@example.org",
			    "bob@example.org"), 0);
		} else if (round == 1) {
			char *error = NULL;
			assert_int_equal(userdb_alias_del(fx->db,
			    "new@example.org", &error), 0);
		} else {
			/* Only the alias commands' own statements are new. */
			assert_true(userdb_statements_kept(fx->db) <= kept + 8);
		}
	}
	size_t now = userdb_statements_kept(fx->db);
	for (int i = 0; i < 50; i++)
		check_resolve(fx->db, "alice@example.org", RESOLVE_OK,
		    "alice@example.org", "");
	assert_int_equal(userdb_statements_kept(fx->db), now);
}

/* A user+tag address that is itself a user wins over the stripped one. */
static void
test_resolve_tag_exact(void **state)
{
	struct fixture *fx = *state;

	resolve_fixture(fx->db);
	add_user(fx->db, "alice+work@example.org");
	check_resolve(fx->db, "alice+work@example.org", RESOLVE_OK,
	    "alice+work@example.org", "");
	check_resolve(fx->db, "alice+home@example.org", RESOLVE_OK,
	    "alice@example.org", "");
}

static void
test_resolve_aliases(void **state)
{
	struct fixture *fx = *state;

	resolve_fixture(fx->db);
	assert_int_equal(add_alias(fx->db, "team@example.org",
	    "alice@example.org,bob@example.org,Ext@Remote.TEST"), 0);
	assert_int_equal(add_alias(fx->db, "all@example.org",
	    "team@example.org,bob@example.org,info@other.example"), 0);
	assert_int_equal(add_alias(fx->db, "info@other.example",
	    "jürgen@example.org,ext@remote.test"), 0);
	assert_int_equal(add_alias(fx->db, "sales@example.org",
	    "bob@example.org"), 0);
	assert_int_equal(add_alias(fx->db, "dangling@example.org",
	    "nobody@example.org"), 0);

	check_resolve(fx->db, "Team@example.org", RESOLVE_OK,
	    "alice@example.org,bob@example.org", "Ext@remote.test");
	/* Nested, deduplicated (remote compared case-insensitively). */
	check_resolve(fx->db, "all@example.org", RESOLVE_OK,
	    "alice@example.org,bob@example.org,jürgen@example.org",
	    "Ext@remote.test");
	check_resolve(fx->db, "sales+eu@example.org", RESOLVE_OK,
	    "bob@example.org", "");
	check_resolve(fx->db, "dangling@example.org", RESOLVE_NO_SUCH_USER,
	    "", "");
}

/* An alias naming its own address keeps a copy for the user there. */
static void
test_resolve_alias_keeps_copy(void **state)
{
	struct fixture *fx = *state;

	resolve_fixture(fx->db);
	assert_int_equal(add_alias(fx->db, "alice@example.org",
	    "alice@example.org,alice@backup.test"), 0);
	check_resolve(fx->db, "alice@example.org", RESOLVE_OK,
	    "alice@example.org", "alice@backup.test");
	check_resolve(fx->db, "alice+x@example.org", RESOLVE_OK,
	    "alice@example.org", "alice@backup.test");
}

static void
test_resolve_loops(void **state)
{
	struct fixture *fx = *state;

	resolve_fixture(fx->db);
	assert_int_equal(add_alias(fx->db, "l1@example.org",
	    "l2@example.org"), 0);
	assert_int_equal(add_alias(fx->db, "l2@example.org",
	    "l1@example.org"), 0);
	assert_int_equal(add_alias(fx->db, "self@example.org",
	    "self@example.org"), 0);
	assert_int_equal(add_alias(fx->db, "m1@example.org",
	    "m2@example.org,alice@example.org"), 0);
	assert_int_equal(add_alias(fx->db, "m2@example.org",
	    "m1@example.org,bob@example.org"), 0);

	check_resolve(fx->db, "l1@example.org", RESOLVE_ERROR, "", "");
	check_resolve(fx->db, "self@example.org", RESOLVE_ERROR, "", "");
	/* A loop that also reaches users delivers to them. */
	check_resolve(fx->db, "m1@example.org", RESOLVE_OK,
	    "bob@example.org,alice@example.org", "");
}

/* Ten levels of aliases are followed, the eleventh is not. */
static void
test_resolve_depth(void **state)
{
	struct fixture *fx = *state;
	char from[32], to[32];

	resolve_fixture(fx->db);
	for (int i = 0; i < 11; i++) {
		snprintf(from, sizeof(from), "c%d@example.org", i);
		if (i < 10)
			snprintf(to, sizeof(to), "c%d@example.org", i + 1);
		else
			snprintf(to, sizeof(to), "alice@example.org");
		assert_int_equal(add_alias(fx->db, from, to), 0);
	}
	check_resolve(fx->db, "c1@example.org", RESOLVE_OK,
	    "alice@example.org", "");
	check_resolve(fx->db, "c0@example.org", RESOLVE_ERROR, "", "");
}

static void
test_resolve_catch_all(void **state)
{
	struct fixture *fx = *state;

	resolve_fixture(fx->db);
	assert_int_equal(add_alias(fx->db, "@example.org",
	    "bob@example.org"), 0);
	check_resolve(fx->db, "alice@example.org", RESOLVE_OK,
	    "alice@example.org", "");
	check_resolve(fx->db, "anything@example.org", RESOLVE_OK,
	    "bob@example.org", "");
	check_resolve(fx->db, "postmaster@EXAMPLE.org", RESOLVE_OK,
	    "bob@example.org", "");
	check_resolve(fx->db, "alice+x@example.org", RESOLVE_OK,
	    "alice@example.org", "");
	/* Other domains are untouched. */
	check_resolve(fx->db, "anything@other.example", RESOLVE_NO_SUCH_USER,
	    "", "");
	/* A catch-all that points back into its domain does not spin. */
	assert_int_equal(add_alias(fx->db, "@other.example",
	    "lost@other.example"), 0);
	check_resolve(fx->db, "x@other.example", RESOLVE_ERROR, "", "");
}

/* Results are added to what the lists already hold (one per RCPT). */
static void
test_resolve_accumulates(void **state)
{
	struct fixture *fx = *state;
	struct strlist local = STRLIST_INIT, remote = STRLIST_INIT;

	resolve_fixture(fx->db);
	assert_int_equal(userdb_resolve(fx->db, "alice@example.org", &local,
	    &remote), RESOLVE_OK);
	assert_int_equal(userdb_resolve(fx->db, "Alice+x@example.org", &local,
	    &remote), RESOLVE_OK);
	assert_int_equal(userdb_resolve(fx->db, "bob@example.org", &local,
	    &remote), RESOLVE_OK);
	check_list(&local, "alice@example.org,bob@example.org");
	strlist_free(&local);
	strlist_free(&remote);
}

/* ODMR domains: checks on add, the queries, what they forbid, and the
 * cascade when the user goes. */
static void
test_odmr(void **state)
{
	struct fixture *fx = *state;
	struct userdb *db = fx->db;
	struct strlist l = STRLIST_INIT;
	char *error = NULL;

	add_user(db, "alice@example.org");
	add_user(db, "bob@example.org");
	assert_int_equal(userdb_odmr_add(db, "Customer.Example",
	    "ALICE@example.org", &error), 0);
	assert_int_equal(userdb_odmr_add(db, "b.example", "bob@example.org",
	    &error), 0);
	static const char *const refused[][2] = {
		{ "customer.example", "bob@example.org" },	/* held */
		{ "example.org", "alice@example.org" },		/* local */
		{ "x.example", "nobody@example.org" },
		{ "bad..example", "alice@example.org" },
		{ "x.example", "no-at-sign" },
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		assert_int_equal(userdb_odmr_add(db, refused[i][0],
		    refused[i][1], &error), -1);
		assert_non_null(error);
		x_free(&error);
	}
	char *u = userdb_odmr_user(db, "CUSTOMER.example");
	assert_string_equal(u, "alice@example.org");
	x_free(&u);
	assert_null(userdb_odmr_user(db, "example.org"));
	assert_true(userdb_is_odmr_domain(db, "b.example"));
	assert_int_equal(userdb_odmr_domains(db, "Alice@Example.org", &l), 1);
	check_list(&l, "customer.example");
	strlist_free(&l);
	assert_int_equal(userdb_odmr_list(db, &l), 0);
	check_list(&l, "b.example bob@example.org,"
	    "customer.example alice@example.org");
	strlist_free(&l);
	/* a held domain does not become local */
	assert_int_equal(userdb_domain_add(db, "customer.example", &error),
	    -1);
	x_free(&error);
	assert_int_equal(userdb_user_add(db, "x@customer.example", HASH,
	    &error), -1);
	x_free(&error);
	assert_false(userdb_is_local_domain(db, "customer.example"));
	/* a held domain is not local for RCPT */
	assert_int_equal(userdb_resolve(db, "x@customer.example", &l, &l),
	    RESOLVE_NOT_LOCAL);
	assert_int_equal(userdb_user_del(db, "bob@example.org", &error), 0);
	assert_false(userdb_is_odmr_domain(db, "b.example"));
	assert_int_equal(userdb_odmr_del(db, "customer.example", &error), 0);
	assert_int_equal(userdb_odmr_del(db, "customer.example", &error), -1);
	x_free(&error);
	assert_int_equal(userdb_odmr_list(db, &l), 0);
	assert_int_equal(l.n, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_ok),
		cmocka_unit_test(test_split_rejects),
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_open_creates_private_files),
		T(test_open_fails),
		T(test_domains),
		T(test_domain_del_refused_while_used),
		T(test_users),
		T(test_user_maildir),
		T(test_aliases),
		T(test_resolve_users),
		T(test_resolve_statements_kept),
		T(test_resolve_tag_exact),
		T(test_resolve_aliases),
		T(test_resolve_alias_keeps_copy),
		T(test_resolve_loops),
		T(test_resolve_depth),
		T(test_resolve_catch_all),
		T(test_resolve_accumulates),
		T(test_odmr),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
