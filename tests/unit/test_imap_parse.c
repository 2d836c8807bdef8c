/* Unit tests for src/imap/imap_parse.c: every command and extension form,
 * every error class, the FETCH echo names, dates, and the line helpers fed
 * every prefix of their input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "imap/imap_parse.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* The command under test; P() frees the previous one. */
static struct imap_command g;
static bool g_live;

/* Names the case under test, control and non-ASCII octets escaped. */
static void
show_case(const char *what, const char *s, size_t len)
{
	char out[600];
	size_t o = 0, i;

	for (i = 0; i < len && o + 5 < sizeof(out); i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c >= 0x7f)
			o += (size_t)snprintf(out + o, sizeof(out) - o,
			    "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
	print_message("%s%s\n", what, out);
}

static void
release(void)
{
	if (g_live)
		imap_command_free(&g);
	g_live = false;
}

static enum imap_parse_result
parse_raw(const char *data, size_t len, const struct imap_file_literal *files,
    size_t nfiles, const char **err)
{
	struct imap_input in = { data, len, files, nfiles };
	enum imap_parse_result r;

	release();
	r = imap_parse_command(&in, &g, err);
	g_live = r == IMAP_PARSE_OK;
	return r;
}

/* wire plus the final CRLF, parsed. */
static enum imap_parse_result
parse_line(const char *wire, const char **err)
{
	static char buf[70000];
	size_t n = strlen(wire);

	assert_true(n + 2 < sizeof(buf));
	memcpy(buf, wire, n);
	memcpy(buf + n, "\r\n", 2);
	return parse_raw(buf, n + 2, NULL, 0, err);
}

/* Parses wire (CRLF added) and fails the test unless it is accepted. */
static struct imap_command *
P(const char *wire)
{
	const char *err = NULL;
	enum imap_parse_result r = parse_line(wire, &err);

	if (r != IMAP_PARSE_OK) {
		show_case("input: ", wire, strlen(wire));
		print_message("error: %s\n", err);
	}
	assert_int_equal(r, IMAP_PARSE_OK);
	return &g;
}

/* wire must give result r with an error containing msg (if not NULL). */
static void
fails_with(const char *wire, enum imap_parse_result r, const char *msg)
{
	const char *err = NULL;
	enum imap_parse_result got = parse_line(wire, &err);

	if (got != r || (msg != NULL && strstr(err, msg) == NULL)) {
		show_case("input: ", wire, strlen(wire));
		print_message("result %d error: %s\n", got,
		    err != NULL ? err : "(none)");
	}
	assert_int_equal(got, r);
	assert_non_null(err);
	if (msg != NULL)
		assert_non_null(strstr(err, msg));
}

static void
BAD(const char *wire, const char *msg)
{
	fails_with(wire, IMAP_PARSE_BAD, msg);
}

static void
assert_str(const struct imap_string *s, const char *want)
{
	assert_false(s->is_nil);
	assert_int_equal(s->len, strlen(want));
	assert_memory_equal(s->data, want, s->len);
	assert_int_equal(s->data[s->len], '\0');
	assert_int_equal(s->file_ref, -1);
}

static void
assert_range(const struct imap_seqset *set, size_t i, uint32_t first,
    uint32_t last)
{
	assert_true(i < set->count);
	assert_int_equal(set->ranges[i].first, first);
	assert_int_equal(set->ranges[i].last, last);
}

static int
teardown(void **state)
{
	(void)state;
	release();
	return 0;
}

/* ---- tags, names, line structure ---- */

static void
test_tags(void **state)
{
	char line[200];
	(void)state;

	assert_string_equal(P("a NOOP")->tag, "a");
	assert_string_equal(P("A001 NOOP")->tag, "A001");
	assert_string_equal(P("x]y NOOP")->tag, "x]y");
	assert_string_equal(P("~.!#-_ NOOP")->tag, "~.!#-_");
	fails_with("+a NOOP", IMAP_PARSE_NO_TAG, "tag");
	fails_with("a+ NOOP", IMAP_PARSE_NO_TAG, "tag");
	fails_with("* NOOP", IMAP_PARSE_NO_TAG, "tag");
	fails_with("a(b NOOP", IMAP_PARSE_NO_TAG, "tag");
	fails_with("\"a\" NOOP", IMAP_PARSE_NO_TAG, "tag");
	fails_with(" NOOP", IMAP_PARSE_NO_TAG, "tag");
	fails_with("", IMAP_PARSE_NO_TAG, "tag");
	fails_with("\xc3\xa9 NOOP", IMAP_PARSE_NO_TAG, "tag");
	memset(line, 'x', IMAP_TAG_MAX);
	memcpy(line + IMAP_TAG_MAX, " NOOP", 6);
	assert_int_equal(strlen(P(line)->tag), IMAP_TAG_MAX);
	memset(line, 'x', IMAP_TAG_MAX + 1);
	memcpy(line + IMAP_TAG_MAX + 1, " NOOP", 6);
	fails_with(line, IMAP_PARSE_NO_TAG, "Tag too long");
	/* A readable tag is kept for the BAD reply. */
	fails_with("t1", IMAP_PARSE_BAD, "Missing command");
	assert_string_equal(g.tag, "t1");
	fails_with("t2 ", IMAP_PARSE_BAD, "Missing command");
	assert_string_equal(g.tag, "t2");
	fails_with("t3 FROB", IMAP_PARSE_BAD, "Unknown command");
	assert_string_equal(g.tag, "t3");
	fails_with("t4  NOOP", IMAP_PARSE_BAD, NULL);
	assert_string_equal(g.tag, "t4");
}

static void
test_simple_commands(void **state)
{
	static const struct {
		const char *name;
		enum imap_cmd cmd;
	} cases[] = {
		{ "CAPABILITY", IMAP_CMD_CAPABILITY },
		{ "noop", IMAP_CMD_NOOP },
		{ "Logout", IMAP_CMD_LOGOUT },
		{ "STARTTLS", IMAP_CMD_STARTTLS },
		{ "namespace", IMAP_CMD_NAMESPACE },
		{ "IDLE", IMAP_CMD_IDLE },
		{ "CHECK", IMAP_CMD_CHECK },
		{ "close", IMAP_CMD_CLOSE },
		{ "UNSELECT", IMAP_CMD_UNSELECT },
		{ "EXPUNGE", IMAP_CMD_EXPUNGE },
	};
	char line[100];
	size_t i;
	const char *err;
	(void)state;

	for (i = 0; i < NELEM(cases); i++) {
		snprintf(line, sizeof(line), "tag %s", cases[i].name);
		assert_int_equal(P(line)->cmd, cases[i].cmd);
		assert_false(g.uid);
		snprintf(line, sizeof(line), "tag %s x", cases[i].name);
		BAD(line, "extra");
		snprintf(line, sizeof(line), "tag %s ", cases[i].name);
		BAD(line, "extra");
		snprintf(line, sizeof(line), "tag UID %s", cases[i].name);
		BAD(line, cases[i].cmd == IMAP_CMD_EXPUNGE ? "Missing" :
		    "UID");
	}
	/* Without the final CRLF, and with a stray CR or LF. */
	assert_int_equal(parse_raw("a NOOP", 6, NULL, 0, &err),
	    IMAP_PARSE_OK);
	assert_int_equal(parse_raw("a NOOP\r", 7, NULL, 0, &err),
	    IMAP_PARSE_BAD);
	assert_int_equal(parse_raw("a NOOP\n", 7, NULL, 0, &err),
	    IMAP_PARSE_BAD);
	assert_int_equal(parse_raw("a NOOP\r\n\r\n", 10, NULL, 0, &err),
	    IMAP_PARSE_BAD);
	assert_int_equal(parse_raw("a NO\0OP\r\n", 9, NULL, 0, &err),
	    IMAP_PARSE_BAD);
	BAD("a NOOP(", "extra");
	BAD("a UID", "Missing");
	BAD("a UID FROB 1", "Unknown command");
	BAD("a NOOPS", "Unknown command");
}

static void
test_cmd_names(void **state)
{
	int i;
	(void)state;

	assert_string_equal(imap_cmd_name(IMAP_CMD_FETCH), "FETCH");
	assert_string_equal(imap_cmd_name(IMAP_CMD_UNSUBSCRIBE),
	    "UNSUBSCRIBE");
	assert_string_equal(imap_cmd_name(IMAP_CMD_COUNT), "");
	for (i = 0; i < IMAP_CMD_COUNT; i++)
		assert_true(strlen(imap_cmd_name((enum imap_cmd)i)) > 0);
}

/* ---- strings ---- */

static void
test_strings(void **state)
{
	const char *err;
	(void)state;

	P("a LOGIN fred \"pass word\"");
	assert_int_equal(g.cmd, IMAP_CMD_LOGIN);
	assert_str(&g.user, "fred");
	assert_str(&g.password, "pass word");
	P("a LOGIN \"a\\\"b\\\\c\" x]y");
	assert_str(&g.user, "a\"b\\c");
	assert_str(&g.password, "x]y");
	P("a LOGIN \"\" {5}\r\nx y\"z");
	assert_str(&g.user, "");
	assert_str(&g.password, "x y\"z");
	P("a LOGIN {4+}\r\nab\r\n {0}\r\n");
	assert_str(&g.user, "ab\r\n");
	assert_str(&g.password, "");
	P("a LOGIN \"caf\xc3\xa9\" {2}\r\n\xff\xfe");
	assert_str(&g.user, "caf\xc3\xa9");
	assert_str(&g.password, "\xff\xfe");
	P("a LOGIN {00003}\r\nabc x");
	assert_str(&g.user, "abc");

	BAD("a LOGIN \"abc", "Unterminated quoted");
	BAD("a LOGIN \"ab\r\nc\" x", "Unterminated quoted");
	BAD("a LOGIN \"a\\b\" x", "escape");
	BAD("a LOGIN \"a\\", "escape");
	BAD("a LOGIN \"caf\xe9\" x", "UTF-8");
	BAD("a LOGIN caf\xc3\xa9 x", NULL);
	BAD("a LOGIN x", "Missing");
	BAD("a LOGIN", "Missing");
	BAD("a LOGIN x y z", "extra");
	BAD("a LOGIN (x) y", NULL);
	BAD("a LOGIN x% y", NULL);
	BAD("a LOGIN {3}x\r\nabc y", "literal");
	BAD("a LOGIN {3}\nabc y", "CRLF");
	BAD("a LOGIN {+3}\r\nabc y", NULL);
	BAD("a LOGIN { 3}\r\nabc y", NULL);
	BAD("a LOGIN {3\r\nabc y", NULL);
	BAD("a LOGIN {}\r\n y", NULL);
	BAD("a LOGIN ~{3}\r\nabc y", NULL);
	BAD("a LOGIN {9223372036854775808}\r\n y", "range");
	/* The literal announces more octets than were sent. */
	BAD("a LOGIN x {10}\r\nabc", "mismatch");
	BAD("a LOGIN x {9223372036854775807}\r\nabc", "mismatch");
	/* NUL is only for APPEND data and literal8. */
	assert_int_equal(parse_raw("a LOGIN x {3}\r\na\0c\r\n", 20, NULL, 0,
	    &err), IMAP_PARSE_BAD);
	assert_non_null(strstr(err, "NUL"));
	assert_int_equal(parse_raw("a LOGIN \"a\0\" x\r\n", 16, NULL, 0,
	    &err), IMAP_PARSE_BAD);
}

static void
test_authenticate(void **state)
{
	(void)state;

	P("a AUTHENTICATE PLAIN");
	assert_int_equal(g.cmd, IMAP_CMD_AUTHENTICATE);
	assert_str(&g.mech, "PLAIN");
	assert_true(g.initial.is_nil);
	P("a authenticate plain =");
	assert_str(&g.mech, "plain");
	assert_str(&g.initial, "=");
	P("a AUTHENTICATE PLAIN AGZyZWQAc2VjcmV0");
	assert_str(&g.initial, "AGZyZWQAc2VjcmV0");
	P("a AUTHENTICATE X-Y dGVzdA==");
	assert_str(&g.initial, "dGVzdA==");
	P("a AUTHENTICATE X a+/b");
	assert_str(&g.initial, "a+/b");
	BAD("a AUTHENTICATE", "Missing");
	BAD("a AUTHENTICATE PLAIN ", "initial");
	BAD("a AUTHENTICATE PLAIN a=b", "initial");
	BAD("a AUTHENTICATE PLAIN a===", "initial");
	BAD("a AUTHENTICATE PLAIN ==", "initial");
	BAD("a AUTHENTICATE PLAIN a-b", NULL);
	BAD("a AUTHENTICATE PLAIN abc def", NULL);
	BAD("a AUTHENTICATE \"PLAIN\"", NULL);
}

static void
test_enable_id(void **state)
{
	char line[4000];
	size_t i, o;
	(void)state;

	P("a ENABLE CONDSTORE qresync UTF8=ACCEPT");
	assert_int_equal(g.cmd, IMAP_CMD_ENABLE);
	assert_int_equal(g.ncaps, 3);
	assert_string_equal(g.caps[0], "CONDSTORE");
	assert_string_equal(g.caps[1], "qresync");
	assert_string_equal(g.caps[2], "UTF8=ACCEPT");
	BAD("a ENABLE", "Missing");
	BAD("a ENABLE ", NULL);
	BAD("a ENABLE X ", NULL);
	BAD("a ENABLE \"X\"", NULL);
	o = (size_t)snprintf(line, sizeof(line), "a ENABLE");
	for (i = 0; i < IMAP_LIST_MAX; i++)
		o += (size_t)snprintf(line + o, sizeof(line) - o, " C%zu", i);
	assert_int_equal(P(line)->ncaps, IMAP_LIST_MAX);
	snprintf(line + o, sizeof(line) - o, " X");
	BAD(line, "Too many");

	P("a ID NIL");
	assert_int_equal(g.cmd, IMAP_CMD_ID);
	assert_int_equal(g.nid, 0);
	P("a ID ()");
	assert_int_equal(g.nid, 0);
	P("a ID (\"name\" \"Thunderbird\" \"version\" NIL \"x\" {2}\r\nyz)");
	assert_int_equal(g.nid, 3);
	assert_str(&g.id_fields[0], "name");
	assert_str(&g.id_values[0], "Thunderbird");
	assert_str(&g.id_fields[1], "version");
	assert_true(g.id_values[1].is_nil);
	assert_str(&g.id_values[2], "yz");
	P("a ID (name x)");
	assert_str(&g.id_values[0], "x");
	P("a ID (\"a\" \"NIL\")");
	assert_str(&g.id_values[0], "NIL");
	BAD("a ID", "Missing");
	BAD("a ID (\"name\")", NULL);
	BAD("a ID (\"name\" \"x\"", "Missing");
	BAD("a ID (\"name\" \"x\" )", NULL);
	BAD("a ID ( )", NULL);
	BAD("a ID NIL x", "extra");
}

/* ---- mailboxes ---- */

static void
test_mailbox_commands(void **state)
{
	static const struct {
		const char *verb;
		enum imap_cmd cmd;
	} cases[] = {
		{ "SELECT", IMAP_CMD_SELECT },
		{ "EXAMINE", IMAP_CMD_EXAMINE },
		{ "CREATE", IMAP_CMD_CREATE },
		{ "DELETE", IMAP_CMD_DELETE },
		{ "SUBSCRIBE", IMAP_CMD_SUBSCRIBE },
		{ "UNSUBSCRIBE", IMAP_CMD_UNSUBSCRIBE },
	};
	char line[100];
	size_t i;
	(void)state;

	for (i = 0; i < NELEM(cases); i++) {
		snprintf(line, sizeof(line), "a %s inbox", cases[i].verb);
		assert_int_equal(P(line)->cmd, cases[i].cmd);
		assert_str(&g.mailbox, "inbox");
		snprintf(line, sizeof(line), "a %s \"A b\"", cases[i].verb);
		assert_str(&P(line)->mailbox, "A b");
		snprintf(line, sizeof(line), "a %s {3}\r\nx y", cases[i].verb);
		assert_str(&P(line)->mailbox, "x y");
		snprintf(line, sizeof(line), "a %s &AOk-t]", cases[i].verb);
		assert_str(&P(line)->mailbox, "&AOk-t]");
		snprintf(line, sizeof(line), "a %s", cases[i].verb);
		BAD(line, "Missing");
		snprintf(line, sizeof(line), "a %s a b", cases[i].verb);
		BAD(line, NULL);
		snprintf(line, sizeof(line), "a %s a*", cases[i].verb);
		BAD(line, NULL);
	}
	P("a RENAME old \"new one\"");
	assert_int_equal(g.cmd, IMAP_CMD_RENAME);
	assert_str(&g.mailbox, "old");
	assert_str(&g.mailbox2, "new one");
	BAD("a RENAME old", "Missing");
	BAD("a RENAME a b c", "extra");
	/* NIL is a mailbox name like any other. */
	assert_str(&P("a DELETE NIL")->mailbox, "NIL");
	assert_false(g.mailbox.is_nil);
}

static void
test_select_params(void **state)
{
	(void)state;

	P("a SELECT INBOX (CONDSTORE)");
	assert_true(g.condstore);
	assert_false(g.qresync);
	P("a EXAMINE INBOX (condstore)");
	assert_int_equal(g.cmd, IMAP_CMD_EXAMINE);
	assert_true(g.condstore);
	P("a SELECT INBOX (QRESYNC (67890007 20050715194045000))");
	assert_true(g.qresync);
	assert_int_equal(g.qr_uidvalidity, 67890007);
	assert_true(g.qr_modseq == 20050715194045000ULL);
	assert_int_equal(g.qr_known_uids.count, 0);
	assert_int_equal(g.qr_seq_match.count, 0);
	P("a SELECT INBOX (QRESYNC (67890007 20050715194045000 "
	    "41,43:211,214:541))");
	assert_int_equal(g.qr_known_uids.count, 3);
	assert_range(&g.qr_known_uids, 1, 43, 211);
	P("a SELECT INBOX (QRESYNC (67890007 90060115194045000 "
	    "41:211,214:541 (1:10,15 41:200,300)) CONDSTORE)");
	assert_true(g.condstore);
	assert_int_equal(g.qr_known_uids.count, 2);
	assert_int_equal(g.qr_seq_match.count, 2);
	assert_range(&g.qr_seq_match, 0, 1, 10);
	assert_range(&g.qr_uid_match, 1, 300, 300);
	P("a SELECT INBOX (QRESYNC (1 1 (1 2)))");
	assert_int_equal(g.qr_known_uids.count, 0);
	assert_int_equal(g.qr_seq_match.count, 1);
	P("a SELECT INBOX (QRESYNC (1 9223372036854775807))");
	assert_true(g.qr_modseq == 9223372036854775807ULL);

	BAD("a SELECT INBOX ()", NULL);
	BAD("a SELECT INBOX (FROB)", "Unknown SELECT");
	BAD("a SELECT INBOX (CONDSTORE", "Missing");
	BAD("a SELECT INBOX CONDSTORE", NULL);
	BAD("a SELECT INBOX (QRESYNC)", NULL);
	BAD("a SELECT INBOX (QRESYNC (0 1))", "Zero");
	BAD("a SELECT INBOX (QRESYNC (1 0))", "Zero");
	BAD("a SELECT INBOX (QRESYNC (4294967296 1))", "range");
	BAD("a SELECT INBOX (QRESYNC (1 9223372036854775808))", "range");
	BAD("a SELECT INBOX (QRESYNC (1 1 1:*))", "*");
	BAD("a SELECT INBOX (QRESYNC (1 1 $))", "$");
	BAD("a SELECT INBOX (QRESYNC (1 1 1:5 ))", NULL);
	BAD("a SELECT INBOX (QRESYNC (1 1 1:5 2))", NULL);
	BAD("a SELECT INBOX (QRESYNC (1 1 (1)))", NULL);
	BAD("a SELECT INBOX (QRESYNC (1 1) QRESYNC (1 1))", "twice");
}

static void
test_create_use(void **state)
{
	(void)state;

	P("a CREATE Sent (USE (\\Sent))");
	assert_int_equal(g.ncreate_use, 1);
	assert_string_equal(g.create_use[0], "\\Sent");
	P("a CREATE x (USE (\\Drafts \\X-Thing))");
	assert_int_equal(g.ncreate_use, 2);
	assert_string_equal(g.create_use[1], "\\X-Thing");
	P("a CREATE x (use ())");
	assert_int_equal(g.ncreate_use, 0);
	P("a CREATE x");
	assert_int_equal(g.ncreate_use, 0);
	assert_null(g.create_use);
	BAD("a CREATE x (USE (Sent))", "special-use");
	BAD("a CREATE x (USE \\Sent)", NULL);
	BAD("a CREATE x (FROB (\\Sent))", "Unknown CREATE");
	BAD("a CREATE x (USE (\\Sent) USE (\\Trash))", "twice");
	BAD("a CREATE x ()", NULL);
}

static void
test_status(void **state)
{
	(void)state;

	P("a STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN "
	    "DELETED SIZE HIGHESTMODSEQ APPENDLIMIT)");
	assert_int_equal(g.cmd, IMAP_CMD_STATUS);
	assert_str(&g.mailbox, "INBOX");
	assert_int_equal(g.status_items, 0x1ff);
	P("a status \"x y\" (unseen)");
	assert_int_equal(g.status_items, IMAP_STATUS_UNSEEN);
	BAD("a STATUS INBOX ()", NULL);
	BAD("a STATUS INBOX", "Missing");
	BAD("a STATUS INBOX MESSAGES", NULL);
	BAD("a STATUS INBOX (FROB)", "Unknown STATUS");
	BAD("a STATUS INBOX (MESSAGES", "Missing");
	BAD("a STATUS INBOX (MESSAGES )", NULL);
}

static void
test_list(void **state)
{
	(void)state;

	P("a LIST \"\" %");
	assert_int_equal(g.cmd, IMAP_CMD_LIST);
	assert_str(&g.reference, "");
	assert_int_equal(g.npatterns, 1);
	assert_str(&g.patterns[0], "%");
	assert_int_equal(g.list_select, 0);
	assert_int_equal(g.list_return, 0);
	P("a LIST \"\" \"\"");
	assert_str(&g.patterns[0], "");
	P("a list ~/Mail/ INBOX.*]x");
	assert_str(&g.reference, "~/Mail/");
	assert_str(&g.patterns[0], "INBOX.*]x");
	P("a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"%\" INBOX/* {2}\r\nx%)"
	    " RETURN (CHILDREN STATUS (MESSAGES UNSEEN) SUBSCRIBED "
	    "SPECIAL-USE)");
	assert_int_equal(g.list_select, IMAP_LIST_SEL_SUBSCRIBED |
	    IMAP_LIST_SEL_RECURSIVEMATCH);
	assert_int_equal(g.npatterns, 3);
	assert_str(&g.patterns[1], "INBOX/*");
	assert_str(&g.patterns[2], "x%");
	assert_int_equal(g.list_return, IMAP_LIST_RET_CHILDREN |
	    IMAP_LIST_RET_STATUS | IMAP_LIST_RET_SUBSCRIBED |
	    IMAP_LIST_RET_SPECIAL_USE);
	assert_int_equal(g.list_status, IMAP_STATUS_MESSAGES |
	    IMAP_STATUS_UNSEEN);
	P("a LIST (SPECIAL-USE REMOTE) \"\" *");
	assert_int_equal(g.list_select, IMAP_LIST_SEL_SPECIAL_USE |
	    IMAP_LIST_SEL_REMOTE);
	P("a LIST (SPECIAL-USE RECURSIVEMATCH) \"\" *");
	P("a LIST () \"\" * RETURN ()");
	assert_int_equal(g.list_select, 0);
	assert_int_equal(g.list_return, 0);
	P("a LIST \"\" * return (special-use)");
	assert_int_equal(g.list_return, IMAP_LIST_RET_SPECIAL_USE);

	BAD("a LIST (RECURSIVEMATCH) \"\" *", "RECURSIVEMATCH");
	BAD("a LIST (REMOTE RECURSIVEMATCH) \"\" *", "RECURSIVEMATCH");
	BAD("a LIST (FROB) \"\" *", "Unknown LIST");
	BAD("a LIST \"\" * RETURN (FROB)", "Unknown LIST");
	BAD("a LIST \"\" * RETURN (STATUS)", NULL);
	BAD("a LIST \"\" * RETURN (STATUS ())", NULL);
	BAD("a LIST \"\" * FROB (CHILDREN)", "RETURN");
	BAD("a LIST \"\" * RETURN", "Missing");
	BAD("a LIST \"\" * (CHILDREN)", "RETURN");
	BAD("a LIST \"\" ()", NULL);
	BAD("a LIST \"\"", "Missing");
	BAD("a LIST", "Missing");
	BAD("a LIST ( \"\" *", NULL);

	P("a LSUB \"\" *");
	assert_int_equal(g.cmd, IMAP_CMD_LSUB);
	assert_int_equal(g.npatterns, 1);
	BAD("a LSUB (SUBSCRIBED) \"\" *", NULL);
	BAD("a LSUB \"\" (a b)", "one pattern");
	BAD("a LSUB \"\" * RETURN (CHILDREN)", "extra");
}

/* ---- APPEND ---- */

static void
test_append(void **state)
{
	const char *err;
	(void)state;

	P("a APPEND saved-messages (\\Seen) {5}\r\nHello");
	assert_int_equal(g.cmd, IMAP_CMD_APPEND);
	assert_str(&g.mailbox, "saved-messages");
	assert_int_equal(g.nappend, 1);
	assert_true(g.append[0].has_flags);
	assert_int_equal(g.append[0].flags.mask, IMAP_F_SEEN);
	assert_int_equal(g.append[0].internaldate, 0);
	assert_false(g.append[0].has_internaldate);
	assert_str(&g.append[0].message, "Hello");
	assert_false(g.append[0].utf8);

	P("a APPEND INBOX {3+}\r\nabc");
	assert_false(g.append[0].has_flags);
	assert_str(&g.append[0].message, "abc");

	P("a APPEND INBOX () \"17-Jul-1996 02:44:25 -0700\" {1}\r\nx");
	assert_true(g.append[0].has_flags);
	assert_int_equal(g.append[0].flags.mask, 0);
	assert_int_equal(g.append[0].internaldate, 837596665);
	assert_true(g.append[0].has_internaldate);
	P("a APPEND INBOX \"01-Jan-1970 00:00:00 +0000\" {1}\r\nx");
	assert_true(g.append[0].has_internaldate);
	assert_int_equal(g.append[0].internaldate, 0);

	/* MULTIAPPEND, literal8, UTF8 (RFC 6855). */
	P("a APPEND INBOX (\\Draft $Forwarded foo) \" 1-Jan-2000 00:00:00 "
	    "+0000\" {2}\r\nab ~{3}\r\nx\r\n UTF8 (~{2+}\r\nzz) (\\Answered "
	    "\\Flagged \\Deleted) {0}\r\n");
	assert_int_equal(g.nappend, 4);
	assert_int_equal(g.append[0].flags.mask, IMAP_F_DRAFT);
	assert_int_equal(g.append[0].flags.nkeywords, 2);
	assert_string_equal(g.append[0].flags.keywords[0], "$Forwarded");
	assert_string_equal(g.append[0].flags.keywords[1], "foo");
	assert_int_equal(g.append[0].internaldate, 946684800);
	assert_true(g.append[1].message.is_literal8);
	assert_int_equal(g.append[1].message.len, 3);
	assert_false(g.append[1].utf8);
	assert_true(g.append[2].utf8);
	assert_true(g.append[2].message.is_literal8);
	assert_int_equal(g.append[3].flags.mask, IMAP_F_ANSWERED |
	    IMAP_F_FLAGGED | IMAP_F_DELETED);
	assert_int_equal(g.append[3].message.len, 0);

	/* NUL in the message is the session's call (has_nul). */
	assert_int_equal(parse_raw("a APPEND x {3}\r\na\0b\r\n", 21, NULL, 0,
	    &err), IMAP_PARSE_OK);
	assert_true(g.append[0].message.has_nul);
	assert_int_equal(g.append[0].message.len, 3);

	BAD("a APPEND INBOX", "Missing");
	BAD("a APPEND INBOX ", NULL);
	BAD("a APPEND INBOX \"text\"", NULL);
	BAD("a APPEND INBOX hello", "literal");
	BAD("a APPEND INBOX (\\Recent) {1}\r\nx", "Recent");
	BAD("a APPEND INBOX (\\Frob) {1}\r\nx", "Unknown system flag");
	BAD("a APPEND INBOX (\\*) {1}\r\nx", "\\*");
	BAD("a APPEND INBOX (a b {1}\r\nx", NULL);
	BAD("a APPEND INBOX ( a) {1}\r\nx", NULL);
	BAD("a APPEND INBOX \"32-Jan-2000 00:00:00 +0000\" {1}\r\nx",
	    "date-time");
	BAD("a APPEND INBOX \"1-Jan-2000\" {1}\r\nx", "date-time");
	BAD("a APPEND INBOX 1-Jan-2000 {1}\r\nx", NULL);
	BAD("a APPEND INBOX (\\Seen) (\\Seen) {1}\r\nx", NULL);
	BAD("a APPEND INBOX UTF8 ({1}\r\nx)", "literal8");
	BAD("a APPEND INBOX UTF8 (~{1}\r\nx", "Missing");
	BAD("a APPEND INBOX UTF8 ~{1}\r\nx", NULL);
	BAD("a APPEND INBOX {1}\r\nx ", NULL);
	BAD("a APPEND INBOX {1}\r\nx y", NULL);
	BAD("a APPEND INBOX CATENATE (URL \"/x\")", NULL);
}

static void
test_file_literals(void **state)
{
	static const char one[] = "a APPEND INBOX (\\Seen) {100000}\r\n\r\n";
	static const char two[] =
	    "a APPEND INBOX {100000}\r\n {5}\r\nhello ~{70000}\r\n\r\n";
	static const char login[] = "a LOGIN {5}\r\n {3}\r\nabc\r\n";
	static const char mbox[] = "a APPEND {5}\r\n {1}\r\nx\r\n";
	static const char small[] = "a APPEND INBOX {1}\r\nx\r\n";
	struct imap_file_literal f[2];
	const char *err;
	size_t n1 = strlen(one), n2 = strlen(two);
	(void)state;

	f[0].offset = n1 - 2;
	f[0].size = 100000;
	f[0].ref = 7;
	assert_int_equal(parse_raw(one, n1, f, 1, &err), IMAP_PARSE_OK);
	assert_int_equal(g.nappend, 1);
	assert_int_equal(g.append[0].message.file_ref, 7);
	assert_int_equal(g.append[0].message.len, 100000);
	assert_string_equal(g.append[0].message.data, "");
	assert_int_equal(g.append[0].flags.mask, IMAP_F_SEEN);

	/* MULTIAPPEND: the first and the last in files, one inline. */
	f[0].offset = strlen("a APPEND INBOX {100000}\r\n");
	f[0].ref = 0;
	f[1].offset = n2 - 2;
	f[1].size = 70000;
	f[1].ref = 1;
	assert_int_equal(parse_raw(two, n2, f, 2, &err), IMAP_PARSE_OK);
	assert_int_equal(g.nappend, 3);
	assert_int_equal(g.append[0].message.file_ref, 0);
	assert_str(&g.append[1].message, "hello");
	assert_int_equal(g.append[2].message.file_ref, 1);
	assert_true(g.append[2].message.is_literal8);
	assert_int_equal(g.append[2].message.len, 70000);

	/* The announced size must be the file's. */
	f[0].offset = n1 - 2;
	f[0].size = 99999;
	assert_int_equal(parse_raw(one, n1, f, 1, &err), IMAP_PARSE_BAD);
	assert_non_null(strstr(err, "mismatch"));

	/* Anywhere but APPEND data, a file literal is refused. */
	f[0].offset = strlen("a LOGIN {5}\r\n");
	f[0].size = 5;
	assert_int_equal(parse_raw(login, strlen(login), f, 1, &err),
	    IMAP_PARSE_BAD);
	assert_non_null(strstr(err, "APPEND"));
	f[0].offset = strlen("a APPEND {5}\r\n");
	assert_int_equal(parse_raw(mbox, strlen(mbox), f, 1, &err),
	    IMAP_PARSE_BAD);
	assert_non_null(strstr(err, "APPEND"));

	/* A file recorded where no literal begins, or twice. */
	f[0].offset = 3;
	f[0].size = 1;
	assert_int_equal(parse_raw(small, strlen(small), f, 1, &err),
	    IMAP_PARSE_BAD);
	assert_non_null(strstr(err, "out of place"));
	f[0].offset = n1 - 2;
	f[0].size = 100000;
	f[1] = f[0];
	assert_int_equal(parse_raw(one, n1, f, 2, &err), IMAP_PARSE_BAD);
	assert_non_null(strstr(err, "out of place"));
}

/* ---- sequence sets, UID commands ---- */

static void
test_seqsets(void **state)
{
	static char line[70000];
	size_t i, o;
	(void)state;

	P("a COPY 2:4,7,*,9:*,5:3 MEETING");
	assert_int_equal(g.cmd, IMAP_CMD_COPY);
	assert_int_equal(g.set.count, 5);
	assert_range(&g.set, 0, 2, 4);
	assert_range(&g.set, 1, 7, 7);
	assert_range(&g.set, 2, UINT32_MAX, UINT32_MAX);
	assert_range(&g.set, 3, 9, UINT32_MAX);
	assert_range(&g.set, 4, 5, 3);
	assert_false(g.set.is_saved);
	assert_str(&g.mailbox, "MEETING");
	P("a UID MOVE $ \"Trash\"");
	assert_int_equal(g.cmd, IMAP_CMD_MOVE);
	assert_true(g.uid);
	assert_true(g.set.is_saved);
	assert_int_equal(g.set.count, 0);
	P("a uid copy 4294967295 x");
	assert_range(&g.set, 0, UINT32_MAX, UINT32_MAX);
	P("a UID EXPUNGE 3000:3002");
	assert_int_equal(g.cmd, IMAP_CMD_EXPUNGE);
	assert_true(g.uid);
	assert_range(&g.set, 0, 3000, 3002);

	BAD("a COPY 0 x", "0");
	BAD("a COPY 1:0 x", "0");
	BAD("a COPY 00 x", "leading zero");
	BAD("a COPY 1:007 x", "leading zero");
	BAD("a COPY 4294967296 x", "range");
	BAD("a COPY 99999999999999999999999 x", "range");
	BAD("a COPY 1, x", NULL);
	BAD("a COPY ,1 x", NULL);
	BAD("a COPY 1:2:3 x", NULL);
	BAD("a COPY 1: x", NULL);
	BAD("a COPY $,1 x", NULL);
	BAD("a COPY 1,$ x", NULL);
	BAD("a COPY -1 x", NULL);
	BAD("a COPY 1", "Missing");
	BAD("a COPY x y", NULL);
	BAD("a MOVE 1 x y", "extra");
	BAD("a UID EXPUNGE", "Missing");
	BAD("a EXPUNGE 1", "extra");

	o = (size_t)snprintf(line, sizeof(line), "a FETCH 1");
	for (i = 1; i < IMAP_SEQ_RANGES_MAX; i++)
		o += (size_t)snprintf(line + o, sizeof(line) - o, ",%zu",
		    i * 2 + 1);
	snprintf(line + o, sizeof(line) - o, " UID");
	assert_int_equal(P(line)->set.count, IMAP_SEQ_RANGES_MAX);
	o += (size_t)snprintf(line + o, sizeof(line) - o, ",99999");
	snprintf(line + o, sizeof(line) - o, " UID");
	BAD(line, "Too many ranges");
}

/* ---- FETCH ---- */

/* The att's echo name, checked against snprintf-like truncation. */
static const char *
att_name(const struct imap_fetch_att *att)
{
	static char out[512];
	char small[8];
	size_t n = imap_fetch_att_name(att, out, sizeof(out));

	assert_int_equal(n, strlen(out));
	assert_int_equal(imap_fetch_att_name(att, small, sizeof(small)), n);
	assert_int_equal(strlen(small), n < sizeof(small) ? n :
	    sizeof(small) - 1);
	assert_memory_equal(small, out, strlen(small));
	assert_int_equal(imap_fetch_att_name(att, NULL, 0), n);
	return out;
}

static void
test_fetch_atts(void **state)
{
	static const struct {
		const char *att;
		enum imap_fetch_item item;
		bool peek;
		const char *echo;
	} cases[] = {
		{ "FLAGS", IMAP_FETCH_FLAGS, false, "FLAGS" },
		{ "internaldate", IMAP_FETCH_INTERNALDATE, false,
		  "INTERNALDATE" },
		{ "RFC822.SIZE", IMAP_FETCH_RFC822_SIZE, false, "RFC822.SIZE" },
		{ "ENVELOPE", IMAP_FETCH_ENVELOPE, false, "ENVELOPE" },
		{ "BODYSTRUCTURE", IMAP_FETCH_BODYSTRUCTURE, false,
		  "BODYSTRUCTURE" },
		{ "body", IMAP_FETCH_BODY, false, "BODY" },
		{ "UID", IMAP_FETCH_UID, false, "UID" },
		{ "MODSEQ", IMAP_FETCH_MODSEQ, false, "MODSEQ" },
		{ "SAVEDATE", IMAP_FETCH_SAVEDATE, false, "SAVEDATE" },
		{ "RFC822", IMAP_FETCH_RFC822, false, "RFC822" },
		{ "RFC822.HEADER", IMAP_FETCH_RFC822_HEADER, true,
		  "RFC822.HEADER" },
		{ "rfc822.text", IMAP_FETCH_RFC822_TEXT, false, "RFC822.TEXT" },
		{ "BODY[]", IMAP_FETCH_BODY_SECTION, false, "BODY[]" },
		{ "BODY.PEEK[]", IMAP_FETCH_BODY_SECTION, true, "BODY[]" },
		{ "body[header]", IMAP_FETCH_BODY_SECTION, false,
		  "BODY[HEADER]" },
		{ "BODY[TEXT]<0.2048>", IMAP_FETCH_BODY_SECTION, false,
		  "BODY[TEXT]<0>" },
		{ "BODY.PEEK[1]", IMAP_FETCH_BODY_SECTION, true, "BODY[1]" },
		{ "BODY[1.2.3]<10.5>", IMAP_FETCH_BODY_SECTION, false,
		  "BODY[1.2.3]<10>" },
		{ "BODY[1.MIME]", IMAP_FETCH_BODY_SECTION, false,
		  "BODY[1.MIME]" },
		{ "BODY[2.HEADER]", IMAP_FETCH_BODY_SECTION, false,
		  "BODY[2.HEADER]" },
		{ "BODY[2.1.TEXT]", IMAP_FETCH_BODY_SECTION, false,
		  "BODY[2.1.TEXT]" },
		{ "BODY.PEEK[HEADER.FIELDS (From To Subject)]",
		  IMAP_FETCH_BODY_SECTION, true,
		  "BODY[HEADER.FIELDS (From To Subject)]" },
		{ "BODY[1.header.fields.not (\"X-A\" {5}\r\nX-B())]",
		  IMAP_FETCH_BODY_SECTION, false,
		  "BODY[1.HEADER.FIELDS.NOT (X-A \"X-B()\")]" },
		{ "BODY[HEADER.FIELDS (\"a\\\"b\" c]d)]", IMAP_FETCH_BODY_SECTION,
		  false, "BODY[HEADER.FIELDS (\"a\\\"b\" c]d)]" },
		{ "BINARY[]", IMAP_FETCH_BINARY_SECTION, false, "BINARY[]" },
		{ "BINARY.PEEK[1.2]<0.10>", IMAP_FETCH_BINARY_SECTION, true,
		  "BINARY[1.2]<0>" },
		{ "binary.size[3]", IMAP_FETCH_BINARY_SIZE, false,
		  "BINARY.SIZE[3]" },
		{ "BINARY.SIZE[]", IMAP_FETCH_BINARY_SIZE, false,
		  "BINARY.SIZE[]" },
	};
	char line[300];
	size_t i;
	(void)state;

	for (i = 0; i < NELEM(cases); i++) {
		snprintf(line, sizeof(line), "a FETCH 1 %s", cases[i].att);
		P(line);
		assert_int_equal(g.cmd, IMAP_CMD_FETCH);
		assert_int_equal(g.natts, 1);
		assert_int_equal(g.atts[0].item, cases[i].item);
		assert_int_equal(g.atts[0].peek, cases[i].peek);
		assert_string_equal(att_name(&g.atts[0]), cases[i].echo);
		snprintf(line, sizeof(line), "a UID FETCH 1:* (UID %s)",
		    cases[i].att);
		assert_int_equal(P(line)->natts, 2);
		assert_true(g.uid);
		assert_string_equal(att_name(&g.atts[1]), cases[i].echo);
	}

	P("a FETCH 1 BODY[1.2.3.HEADER.FIELDS (A B)]<4294967295.4294967295>");
	assert_int_equal(g.atts[0].section.nparts, 3);
	assert_int_equal(g.atts[0].section.part[2], 3);
	assert_int_equal(g.atts[0].section.text, IMAP_SECTION_HEADER_FIELDS);
	assert_int_equal(g.atts[0].section.nfields, 2);
	assert_string_equal(g.atts[0].section.fields[1], "B");
	assert_true(g.atts[0].partial);
	assert_int_equal(g.atts[0].offset, UINT32_MAX);
	assert_int_equal(g.atts[0].length, UINT32_MAX);
	P("a FETCH 1 BODY[]");
	assert_int_equal(g.atts[0].section.text, IMAP_SECTION_ALL);
	assert_int_equal(g.atts[0].section.nparts, 0);
	assert_false(g.atts[0].partial);
}

static void
test_fetch_macros(void **state)
{
	static const enum imap_fetch_item full[] = {
		IMAP_FETCH_FLAGS, IMAP_FETCH_INTERNALDATE,
		IMAP_FETCH_RFC822_SIZE, IMAP_FETCH_ENVELOPE, IMAP_FETCH_BODY,
	};
	size_t i;
	(void)state;

	P("a FETCH 1:* FAST");
	assert_int_equal(g.natts, 3);
	for (i = 0; i < 3; i++)
		assert_int_equal(g.atts[i].item, full[i]);
	P("a FETCH 1:* all");
	assert_int_equal(g.natts, 4);
	for (i = 0; i < 4; i++)
		assert_int_equal(g.atts[i].item, full[i]);
	P("a FETCH 1:* Full");
	assert_int_equal(g.natts, 5);
	for (i = 0; i < 5; i++)
		assert_int_equal(g.atts[i].item, full[i]);
	BAD("a FETCH 1 (ALL)", "Unknown FETCH");
	BAD("a FETCH 1 (FLAGS FAST)", "Unknown FETCH");
	BAD("a FETCH 1 ALL FLAGS", NULL);
}

static void
test_fetch_modifiers(void **state)
{
	(void)state;

	P("a FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)");
	assert_true(g.changedsince == 12345);
	assert_false(g.vanished);
	P("a UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)");
	assert_true(g.vanished);
	P("a UID FETCH 1 FLAGS (vanished changedsince 9223372036854775807)");
	assert_true(g.changedsince == 9223372036854775807ULL);
	P("a FETCH $ (MODSEQ SAVEDATE)");
	assert_true(g.set.is_saved);
	assert_int_equal(g.atts[0].item, IMAP_FETCH_MODSEQ);
	assert_int_equal(g.atts[1].item, IMAP_FETCH_SAVEDATE);
	assert_true(g.changedsince == 0);

	BAD("a FETCH 1 FLAGS (CHANGEDSINCE 0)", "Zero");
	BAD("a FETCH 1 FLAGS (CHANGEDSINCE 9223372036854775808)", "range");
	BAD("a FETCH 1 FLAGS (CHANGEDSINCE)", NULL);
	BAD("a FETCH 1 FLAGS (CHANGEDSINCE 5 VANISHED)", "VANISHED");
	BAD("a UID FETCH 1 FLAGS (VANISHED)", "VANISHED");
	BAD("a FETCH 1 FLAGS (FROB)", "Unknown FETCH modifier");
	BAD("a FETCH 1 FLAGS ()", NULL);
	BAD("a FETCH 1 FLAGS CHANGEDSINCE 5", NULL);
}

static void
test_fetch_errors(void **state)
{
	static char line[70000];
	size_t i, o;
	(void)state;

	BAD("a FETCH", "Missing");
	BAD("a FETCH 1", "Missing");
	BAD("a FETCH 1 ", NULL);
	BAD("a FETCH 1 ()", "Unknown FETCH");
	BAD("a FETCH 1 (FLAGS", "Missing");
	BAD("a FETCH 1 (FLAGS )", NULL);
	BAD("a FETCH 1 FLAGS UID", "modifiers");
	BAD("a FETCH 1 FROB", "Unknown FETCH");
	BAD("a FETCH 1 EMAILID", "not supported");
	BAD("a FETCH 1 (THREADID)", "not supported");
	BAD("a FETCH 1 BODY.PEEK", NULL);
	BAD("a FETCH 1 BINARY", NULL);
	BAD("a FETCH 1 BODY[", NULL);
	BAD("a FETCH 1 BODY[0]", "0");
	BAD("a FETCH 1 BODY[1.0]", "0");
	BAD("a FETCH 1 BODY[MIME]", "section");
	BAD("a FETCH 1 BODY[FROB]", "section");
	BAD("a FETCH 1 BODY[1.]", "section");
	BAD("a FETCH 1 BODY[1 ]", NULL);
	BAD("a FETCH 1 BODY[HEADER.FIELDS]", NULL);
	BAD("a FETCH 1 BODY[HEADER.FIELDS ()]", NULL);
	BAD("a FETCH 1 BODY[HEADER.FIELDS (\"\")]", "Empty");
	BAD("a FETCH 1 BODY[HEADER.FIELDS (\"a b\")]", "field name");
	BAD("a FETCH 1 BODY[HEADER.FIELDS (a:)]", "field name");
	BAD("a FETCH 1 BODY[HEADER.FIELDS (\"\xc3\xa9\")]", "field name");
	BAD("a FETCH 1 BODY[TEXT (A)]", NULL);
	BAD("a FETCH 1 BINARY[HEADER]", NULL);
	BAD("a FETCH 1 BINARY[1.MIME]", "BINARY");
	BAD("a FETCH 1 BINARY.SIZE[1]<0.1>", "extra");
	BAD("a FETCH 1 BODY[]<0.0>", "Zero");
	BAD("a FETCH 1 BODY[]<0>", NULL);
	BAD("a FETCH 1 BODY[]<4294967296.1>", "range");
	BAD("a FETCH 1 BODY<0.1>", NULL);
	BAD("a FETCH 1 BODY[1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17]",
	    "too deep");
	P("a FETCH 1 BODY[1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16]");
	assert_int_equal(g.atts[0].section.nparts, IMAP_PART_DEPTH_MAX);
	assert_string_equal(att_name(&g.atts[0]),
	    "BODY[1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16]");

	o = (size_t)snprintf(line, sizeof(line), "a FETCH 1 (UID");
	for (i = 1; i < IMAP_LIST_MAX; i++)
		o += (size_t)snprintf(line + o, sizeof(line) - o, " FLAGS");
	snprintf(line + o, sizeof(line) - o, ")");
	assert_int_equal(P(line)->natts, IMAP_LIST_MAX);
	snprintf(line + o, sizeof(line) - o, " UID)");
	BAD(line, "Too many");
	o = (size_t)snprintf(line, sizeof(line),
	    "a FETCH 1 BODY[HEADER.FIELDS (A");
	for (i = 1; i < IMAP_LIST_MAX; i++)
		o += (size_t)snprintf(line + o, sizeof(line) - o, " B");
	snprintf(line + o, sizeof(line) - o, ")]");
	assert_int_equal(P(line)->atts[0].section.nfields, IMAP_LIST_MAX);
	snprintf(line + o, sizeof(line) - o, " C)]");
	BAD(line, "Too many");
}

/* ---- STORE ---- */

static void
test_store(void **state)
{
	(void)state;

	P("a STORE 2:4 +FLAGS (\\Deleted)");
	assert_int_equal(g.cmd, IMAP_CMD_STORE);
	assert_int_equal(g.store_mode, IMAP_STORE_ADD);
	assert_false(g.store_silent);
	assert_int_equal(g.store_flags.mask, IMAP_F_DELETED);
	assert_false(g.has_unchangedsince);
	P("a UID STORE 1 -flags.silent \\seen $Junk \\DRAFT");
	assert_true(g.uid);
	assert_int_equal(g.store_mode, IMAP_STORE_REMOVE);
	assert_true(g.store_silent);
	assert_int_equal(g.store_flags.mask, IMAP_F_SEEN | IMAP_F_DRAFT);
	assert_int_equal(g.store_flags.nkeywords, 1);
	assert_string_equal(g.store_flags.keywords[0], "$Junk");
	P("a STORE * FLAGS ()");
	assert_int_equal(g.store_mode, IMAP_STORE_SET);
	assert_int_equal(g.store_flags.mask, 0);
	assert_int_equal(g.store_flags.nkeywords, 0);
	P("a STORE 1 (UNCHANGEDSINCE 0) FLAGS.SILENT (\\Answered)");
	assert_true(g.has_unchangedsince);
	assert_true(g.unchangedsince == 0);
	assert_true(g.store_silent);
	P("a STORE $ (unchangedsince 320162338) +FLAGS \\Flagged");
	assert_true(g.unchangedsince == 320162338);

	BAD("a STORE 1 FLAGS", "Missing");
	BAD("a STORE 1 FLAGS ", NULL);
	BAD("a STORE 1 +FLAGS (\\Recent)", "Recent");
	BAD("a STORE 1 +FLAGS \\Recent", "Recent");
	BAD("a STORE 1 +FLAGS (\\*)", "\\*");
	BAD("a STORE 1 +FLAGS (\\Unknown)", "Unknown system flag");
	BAD("a STORE 1 +FLAGS (\\)", NULL);
	BAD("a STORE 1 +FLAGS (a]b)", NULL);
	BAD("a STORE 1 *FLAGS (a)", NULL);
	BAD("a STORE 1 +FLAGS.LOUD (a)", "FLAGS");
	BAD("a STORE 1 +flag (a)", "FLAGS");
	BAD("a STORE 1 +FLAGS (a", "Missing");
	BAD("a STORE 1 +FLAGS (a) b", "extra");
	BAD("a STORE 1 +FLAGS a  b", NULL);
	BAD("a STORE 1 (UNCHANGEDSINCE) FLAGS a", NULL);
	BAD("a STORE 1 (UNCHANGEDSINCE 1 FLAGS a", NULL);
	BAD("a STORE 1 (FROB 1) FLAGS a", "STORE modifier");
	BAD("a STORE 1 (UNCHANGEDSINCE 9223372036854775808) FLAGS a",
	    "range");
	BAD("a STORE 0 FLAGS a", "0");
}

/* ---- SEARCH ---- */

/* The only key of a one-key search. */
static const struct imap_search_key *
key1(const char *wire)
{
	P(wire);
	assert_int_equal(g.cmd, IMAP_CMD_SEARCH);
	assert_non_null(g.search);
	assert_int_equal(g.search->kind, IMAP_SK_AND);
	assert_int_equal(g.search->nchildren, 1);
	return &g.search->children[0];
}

static void
test_search_simple_keys(void **state)
{
	static const struct {
		const char *key;
		enum imap_search_kind kind;
		unsigned flag;
	} cases[] = {
		{ "ALL", IMAP_SK_ALL, 0 },
		{ "ANSWERED", IMAP_SK_FLAG, IMAP_F_ANSWERED },
		{ "DELETED", IMAP_SK_FLAG, IMAP_F_DELETED },
		{ "DRAFT", IMAP_SK_FLAG, IMAP_F_DRAFT },
		{ "flagged", IMAP_SK_FLAG, IMAP_F_FLAGGED },
		{ "RECENT", IMAP_SK_FLAG, IMAP_F_RECENT },
		{ "SEEN", IMAP_SK_FLAG, IMAP_F_SEEN },
		{ "UNANSWERED", IMAP_SK_NOFLAG, IMAP_F_ANSWERED },
		{ "UNDELETED", IMAP_SK_NOFLAG, IMAP_F_DELETED },
		{ "UNDRAFT", IMAP_SK_NOFLAG, IMAP_F_DRAFT },
		{ "UNFLAGGED", IMAP_SK_NOFLAG, IMAP_F_FLAGGED },
		{ "unseen", IMAP_SK_NOFLAG, IMAP_F_SEEN },
		{ "NEW", IMAP_SK_NEW, 0 },
		{ "OLD", IMAP_SK_OLD, 0 },
		{ "SAVEDATESUPPORTED", IMAP_SK_SAVEDATESUPPORTED, 0 },
	};
	char line[100];
	const struct imap_search_key *k;
	size_t i;
	(void)state;

	for (i = 0; i < NELEM(cases); i++) {
		snprintf(line, sizeof(line), "a SEARCH %s", cases[i].key);
		k = key1(line);
		assert_int_equal(k->kind, cases[i].kind);
		assert_int_equal(k->flag, cases[i].flag);
		assert_int_equal(k->nchildren, 0);
		assert_false(g.esearch);
		assert_true(g.charset.is_nil);
		snprintf(line, sizeof(line), "a SEARCH %s)", cases[i].key);
		BAD(line, "extra");
		snprintf(line, sizeof(line), "a SEARCH %sX", cases[i].key);
		BAD(line, "Unknown search key");
	}
}

static void
test_search_arg_keys(void **state)
{
	static const struct {
		const char *key;
		enum imap_search_kind kind;
		const char *field;
	} strs[] = {
		{ "BCC", IMAP_SK_HEADER, "Bcc" },
		{ "CC", IMAP_SK_HEADER, "Cc" },
		{ "FROM", IMAP_SK_HEADER, "From" },
		{ "SUBJECT", IMAP_SK_HEADER, "Subject" },
		{ "TO", IMAP_SK_HEADER, "To" },
		{ "BODY", IMAP_SK_BODY, NULL },
		{ "TEXT", IMAP_SK_TEXT, NULL },
		{ "KEYWORD", IMAP_SK_KEYWORD, NULL },
		{ "UNKEYWORD", IMAP_SK_UNKEYWORD, NULL },
	};
	static const struct {
		const char *key;
		enum imap_search_kind kind;
	} dates[] = {
		{ "BEFORE", IMAP_SK_BEFORE }, { "ON", IMAP_SK_ON },
		{ "SINCE", IMAP_SK_SINCE }, { "SENTBEFORE", IMAP_SK_SENTBEFORE },
		{ "SENTON", IMAP_SK_SENTON }, { "SENTSINCE", IMAP_SK_SENTSINCE },
		{ "SAVEDBEFORE", IMAP_SK_SAVEDBEFORE },
		{ "SAVEDON", IMAP_SK_SAVEDON },
		{ "SAVEDSINCE", IMAP_SK_SAVEDSINCE },
	};
	char line[100];
	const struct imap_search_key *k;
	size_t i;
	(void)state;

	for (i = 0; i < NELEM(strs); i++) {
		snprintf(line, sizeof(line), "a SEARCH %s $Label", strs[i].key);
		k = key1(line);
		assert_int_equal(k->kind, strs[i].kind);
		assert_str(&k->str, "$Label");
		if (strs[i].field != NULL)
			assert_str(&k->field, strs[i].field);
		snprintf(line, sizeof(line), "a SEARCH %s", strs[i].key);
		BAD(line, "Missing");
		if (strs[i].kind != IMAP_SK_KEYWORD &&
		    strs[i].kind != IMAP_SK_UNKEYWORD) {
			snprintf(line, sizeof(line), "a SEARCH %s \"a b\"",
			    strs[i].key);
			assert_str(&key1(line)->str, "a b");
			snprintf(line, sizeof(line), "a SEARCH %s {3}\r\na\"b",
			    strs[i].key);
			assert_str(&key1(line)->str, "a\"b");
		} else {
			snprintf(line, sizeof(line), "a SEARCH %s \"a\"",
			    strs[i].key);
			BAD(line, NULL);
			snprintf(line, sizeof(line), "a SEARCH %s \\Seen",
			    strs[i].key);
			BAD(line, NULL);
		}
	}
	for (i = 0; i < NELEM(dates); i++) {
		snprintf(line, sizeof(line), "a SEARCH %s 1-Feb-1994",
		    dates[i].key);
		k = key1(line);
		assert_int_equal(k->kind, dates[i].kind);
		assert_int_equal(k->year, 1994);
		assert_int_equal(k->month, 2);
		assert_int_equal(k->day, 1);
		snprintf(line, sizeof(line), "a SEARCH %s \"29-feb-2000\"",
		    dates[i].key);
		k = key1(line);
		assert_int_equal(k->day, 29);
		snprintf(line, sizeof(line), "a SEARCH %s 29-Feb-1900",
		    dates[i].key);
		BAD(line, "date");
	}
	k = key1("a SEARCH HEADER X-Spam \"\"");
	assert_int_equal(k->kind, IMAP_SK_HEADER);
	assert_str(&k->field, "X-Spam");
	assert_str(&k->str, "");
	k = key1("a SEARCH LARGER 9223372036854775807");
	assert_int_equal(k->kind, IMAP_SK_LARGER);
	assert_true(k->number == 9223372036854775807ULL);
	k = key1("a SEARCH SMALLER 0");
	assert_int_equal(k->kind, IMAP_SK_SMALLER);
	assert_true(k->number == 0);
	k = key1("a SEARCH OLDER 3600");
	assert_int_equal(k->kind, IMAP_SK_OLDER);
	assert_true(k->number == 3600);
	k = key1("a SEARCH YOUNGER 4294967295");
	assert_int_equal(k->kind, IMAP_SK_YOUNGER);
	BAD("a SEARCH UID 1:*,$", NULL);
	k = key1("a SEARCH UID 1:*,5");
	assert_int_equal(k->kind, IMAP_SK_UID);
	assert_int_equal(k->set.count, 2);
	k = key1("a UID SEARCH UID $");
	assert_true(g.uid);
	assert_true(k->set.is_saved);
	k = key1("a SEARCH 2:4,*");
	assert_int_equal(k->kind, IMAP_SK_SEQSET);
	assert_range(&k->set, 1, UINT32_MAX, UINT32_MAX);
	k = key1("a SEARCH $");
	assert_int_equal(k->kind, IMAP_SK_SEQSET);
	assert_true(k->set.is_saved);

	BAD("a SEARCH HEADER X-Spam", "Missing");
	BAD("a SEARCH LARGER 9223372036854775808", "range");
	BAD("a SEARCH LARGER x", "number");
	BAD("a SEARCH OLDER 0", "Zero");
	BAD("a SEARCH YOUNGER 4294967296", "range");
	BAD("a SEARCH SINCE 1-Feb-94", "date");
	BAD("a SEARCH SINCE 1-Febr-1994", "date");
	BAD("a SEARCH SINCE 001-Feb-1994", "date");
	BAD("a SEARCH SINCE 0-Feb-1994", "date");
	BAD("a SEARCH SINCE 31-Apr-1994", "date");
	BAD("a SEARCH SINCE 1-Feb-19940", "date");
	BAD("a SEARCH SINCE \"1-Feb-1994", "date");
	BAD("a SEARCH SINCE 1-Feb-1994\"", NULL);
	BAD("a SEARCH SINCE 1994-02-01", "date");
	BAD("a SEARCH 0", "0");
	BAD("a SEARCH 1:4294967296", "range");
}

static void
test_search_modseq(void **state)
{
	const struct imap_search_key *k;
	(void)state;

	k = key1("a SEARCH MODSEQ 620162338");
	assert_int_equal(k->kind, IMAP_SK_MODSEQ);
	assert_true(k->number == 620162338);
	k = key1("a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338");
	assert_true(k->number == 620162338);
	k = key1("a SEARCH modseq \"/flags/$Junk\" PRIV 0");
	assert_true(k->number == 0);
	key1("a SEARCH MODSEQ \"/FLAGS/x\" shared 1");
	BAD("a SEARCH MODSEQ \"/flag/x\" all 1", "entry name");
	BAD("a SEARCH MODSEQ \"/flags/x\" both 1", "entry type");
	BAD("a SEARCH MODSEQ \"/flags/x\" 1", NULL);
	BAD("a SEARCH MODSEQ", "Missing");
	BAD("a SEARCH MODSEQ 9223372036854775808", "range");
}

static void
test_search_structure(void **state)
{
	const struct imap_search_key *k, *c;
	(void)state;

	P("a SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"");
	assert_int_equal(g.search->kind, IMAP_SK_AND);
	assert_int_equal(g.search->nchildren, 3);
	k = &g.search->children[2];
	assert_int_equal(k->kind, IMAP_SK_NOT);
	assert_int_equal(k->nchildren, 1);
	assert_int_equal(k->children[0].kind, IMAP_SK_HEADER);
	assert_str(&k->children[0].field, "From");
	assert_str(&k->children[0].str, "Smith");

	k = key1("a SEARCH OR (SEEN UNDELETED) OR 1:5 NOT NEW");
	assert_int_equal(k->kind, IMAP_SK_OR);
	assert_int_equal(k->nchildren, 2);
	c = &k->children[0];
	assert_int_equal(c->kind, IMAP_SK_AND);
	assert_int_equal(c->nchildren, 2);
	assert_int_equal(c->children[1].kind, IMAP_SK_NOFLAG);
	c = &k->children[1];
	assert_int_equal(c->kind, IMAP_SK_OR);
	assert_int_equal(c->children[0].kind, IMAP_SK_SEQSET);
	assert_int_equal(c->children[1].kind, IMAP_SK_NOT);
	assert_int_equal(c->children[1].children[0].kind, IMAP_SK_NEW);
	k = key1("a SEARCH ((((ALL))))");
	assert_int_equal(k->kind, IMAP_SK_AND);

	BAD("a SEARCH", "Missing");
	BAD("a SEARCH ", NULL);
	BAD("a SEARCH ALL ", NULL);
	BAD("a SEARCH ()", NULL);
	BAD("a SEARCH (ALL", "Missing");
	BAD("a SEARCH (ALL))", "extra");
	BAD("a SEARCH ( ALL)", NULL);
	BAD("a SEARCH OR ALL", "Missing");
	BAD("a SEARCH NOT", "Missing");
	BAD("a SEARCH ALL  SEEN", NULL);
	BAD("a SEARCH FROB", "Unknown search key");
	BAD("a SEARCH UNRECENT", "Unknown search key");
}

static void
test_search_limits(void **state)
{
	static char line[70000];
	size_t i, o;
	(void)state;

	/* IMAP_DEPTH_MAX levels of NOT, OR and parentheses. */
	o = (size_t)snprintf(line, sizeof(line), "a SEARCH");
	for (i = 0; i < IMAP_DEPTH_MAX; i++)
		o += (size_t)snprintf(line + o, sizeof(line) - o, " NOT");
	snprintf(line + o, sizeof(line) - o, " ALL");
	P(line);
	snprintf(line + o, sizeof(line) - o, " NOT ALL");
	BAD(line, "nested");
	o = (size_t)snprintf(line, sizeof(line), "a SEARCH ");
	for (i = 0; i < IMAP_DEPTH_MAX; i++)
		line[o++] = '(';
	o += (size_t)snprintf(line + o, sizeof(line) - o, "ALL");
	for (i = 0; i < IMAP_DEPTH_MAX; i++)
		line[o++] = ')';
	line[o] = '\0';
	P(line);
	o = (size_t)snprintf(line, sizeof(line), "a SEARCH ");
	for (i = 0; i <= IMAP_DEPTH_MAX; i++)
		line[o++] = '(';
	line[o] = '\0';
	BAD(line, "nested");
	o = (size_t)snprintf(line, sizeof(line), "a SEARCH");
	for (i = 0; i <= IMAP_DEPTH_MAX; i++)
		o += (size_t)snprintf(line + o, sizeof(line) - o, " OR ALL");
	snprintf(line + o, sizeof(line) - o, " ALL");
	BAD(line, "nested");
	/* Deep nesting far beyond the limit stops at the limit. */
	memset(line, '(', 60000);
	memcpy(line, "a SEARCH ", 9);
	line[60000] = '\0';
	BAD(line, "nested");

	o = (size_t)snprintf(line, sizeof(line), "a SEARCH ALL");
	for (i = 1; i < IMAP_SEARCH_KEYS_MAX; i++)
		o += (size_t)snprintf(line + o, sizeof(line) - o, " SEEN");
	assert_int_equal(P(line)->search->nchildren, IMAP_SEARCH_KEYS_MAX);
	snprintf(line + o, sizeof(line) - o, " SEEN");
	BAD(line, "Too many search keys");
	o = (size_t)snprintf(line, sizeof(line), "a SEARCH ALL");
	for (i = 1; i < IMAP_SEARCH_KEYS_MAX; i++)
		o += (size_t)snprintf(line + o, sizeof(line) - o, " (ALL)");
	BAD(line, "Too many search keys");
}

static void
test_search_return_charset(void **state)
{
	(void)state;

	P("a SEARCH RETURN (MIN MAX COUNT) CHARSET UTF-8 TEXT x");
	assert_true(g.esearch);
	assert_int_equal(g.search_return, IMAP_SEARCH_RET_MIN |
	    IMAP_SEARCH_RET_MAX | IMAP_SEARCH_RET_COUNT);
	assert_str(&g.charset, "UTF-8");
	P("a UID SEARCH RETURN () UNSEEN");
	assert_true(g.esearch);
	assert_int_equal(g.search_return, IMAP_SEARCH_RET_ALL);
	P("a SEARCH RETURN (SAVE) ALL");
	assert_int_equal(g.search_return, IMAP_SEARCH_RET_SAVE);
	P("a SEARCH return (all save) charset \"iso-8859-1\" ALL");
	assert_int_equal(g.search_return, IMAP_SEARCH_RET_ALL |
	    IMAP_SEARCH_RET_SAVE);
	assert_str(&g.charset, "iso-8859-1");
	P("a SEARCH CHARSET X-UNKNOWN ALL");
	assert_str(&g.charset, "X-UNKNOWN");
	BAD("a SEARCH RETURN (PARTIAL 1:10) ALL", "RETURN option");
	BAD("a SEARCH RETURN ALL", NULL);
	BAD("a SEARCH RETURN (MIN)", "Missing");
	BAD("a SEARCH RETURN (MIN ) ALL", NULL);
	BAD("a SEARCH CHARSET", "Missing");
	BAD("a SEARCH CHARSET UTF-8", "Missing");
	BAD("a SEARCH CHARSET {5}\r\nUTF-8 ALL", NULL);
	BAD("a SEARCH CHARSET UTF-8 RETURN (MIN) ALL", NULL);
}

/* ---- dates ---- */

static void
test_date_time(void **state)
{
	static const struct {
		const char *s;
		time_t t;
	} good[] = {
		{ "17-Jul-1996 02:44:25 -0700", 837596665 },
		{ " 1-Jan-1970 00:00:00 +0000", 0 },
		{ "01-Jan-1970 00:00:00 +0100", -3600 },
		{ "1-Jan-2000 00:00:00 +0000", 946684800 },
		{ "29-feb-2024 23:59:60 +0000", 1709251200 },
		{ "31-Dec-1969 23:59:59 +0000", -1 },
		{ "01-Dec-2026 20:28:01 +0000", 1796156881 },
	};
	static const char *const bad[] = {
		"", "17-Jul-1996 02:44:25", "17-Jul-1996 02:44:25 0700",
		"17-Jul-1996 02:44:25 -070", "17-Jul-1996 02:44:25 -07000",
		"17-Jul-1996  02:44:25 -0700", "17-Jul-96 02:44:25 -0700",
		"32-Jul-1996 02:44:25 -0700", "29-Feb-2023 02:44:25 -0700",
		"17-Jul-1996 24:00:00 -0700", "17-Jul-1996 02:60:25 -0700",
		"17-Jul-1996 02:44:61 -0700", "17-Jul-1996 02:44:25 -0760",
		"17-Juli-1996 02:44:25 -0700", "  1-Jan-1970 00:00:00 +0000",
		" 12-Jan-1970 00:00:00 +0000", "17-Jul-1996 2:44:25 -0700",
		"17-Jul-1996 02:44:25 -0700 ", "17/Jul/1996 02:44:25 -0700",
	};
	char out[32];
	time_t t;
	size_t i;
	(void)state;

	for (i = 0; i < NELEM(good); i++) {
		t = 12345;
		assert_int_equal(imap_parse_date_time(good[i].s,
		    strlen(good[i].s), &t), 0);
		assert_true(t == good[i].t);
	}
	for (i = 0; i < NELEM(bad); i++) {
		if (imap_parse_date_time(bad[i], strlen(bad[i]), &t) == 0)
			print_message("accepted: '%s'\n", bad[i]);
		assert_int_equal(imap_parse_date_time(bad[i], strlen(bad[i]),
		    &t), -1);
	}
	/* The length bounds the input: no NUL needed. */
	assert_int_equal(imap_parse_date_time("17-Jul-1996 02:44:25 -07009",
	    26, &t), 0);
	assert_int_equal(imap_parse_date_time("17-Jul-1996 02:44:25 -0700",
	    25, &t), -1);

	imap_format_date_time(1796156881, out);
	assert_string_equal(out, "01-Dec-2026 20:28:01 +0000");
	imap_format_date_time(0, out);
	assert_string_equal(out, "01-Jan-1970 00:00:00 +0000");
	imap_format_date_time(837596665, out);
	assert_string_equal(out, "17-Jul-1996 09:44:25 +0000");
	assert_int_equal(imap_parse_date_time(out, strlen(out), &t), 0);
	assert_true(t == 837596665);
	/* Out of the 4-digit year range: still a valid date-time. */
	imap_format_date_time((time_t)INT64_MAX, out);
	assert_int_equal(strlen(out), 26);
	imap_format_date_time((time_t)-99999999999LL, out);
	assert_int_equal(strlen(out), 26);
}

/* ---- line helpers ---- */

static void
test_is_done(void **state)
{
	(void)state;

	assert_true(imap_is_done("DONE", 4));
	assert_true(imap_is_done("done", 4));
	assert_true(imap_is_done("DoNe", 4));
	assert_false(imap_is_done("DONE ", 5));
	assert_false(imap_is_done(" DONE", 5));
	assert_false(imap_is_done("DON", 3));
	assert_false(imap_is_done("DONEX", 5));
	assert_false(imap_is_done("", 0));
	assert_false(imap_is_done("DONE", 3));
}

static void
test_literal_at_end(void **state)
{
	static const struct {
		const char *line;
		bool is;
		uint64_t size;
		bool sync, binary;
	} cases[] = {
		{ "a LOGIN {5}", true, 5, true, false },
		{ "a LOGIN {5+}", true, 5, false, false },
		{ "a APPEND x ~{123}", true, 123, true, true },
		{ "a APPEND x UTF8 (~{0+}", true, 0, false, true },
		{ "{9223372036854775807}", true, 9223372036854775807ULL, true,
		  false },
		{ "{0009}", true, 9, true, false },
		{ "{9223372036854775808}", false, 0, false, false },
		{ "{99999999999999999999999}", false, 0, false, false },
		{ "a LOGIN {+5}", false, 0, false, false },
		{ "a LOGIN { 5}", false, 0, false, false },
		{ "a LOGIN {5 }", false, 0, false, false },
		{ "a LOGIN {-5}", false, 0, false, false },
		{ "a LOGIN {}", false, 0, false, false },
		{ "a LOGIN {+}", false, 0, false, false },
		{ "a LOGIN 5}", false, 0, false, false },
		{ "a LOGIN {5} ", false, 0, false, false },
		{ "a LOGIN {5++}", false, 0, false, false },
		{ "a LOGIN {x5}", false, 0, false, false },
		{ "}", false, 0, false, false },
		{ "", false, 0, false, false },
	};
	uint64_t size;
	bool sync, binary;
	size_t i, k, len;
	(void)state;

	for (i = 0; i < NELEM(cases); i++) {
		len = strlen(cases[i].line);
		size = 77;
		assert_int_equal(imap_literal_at_end(cases[i].line, len,
		    &size, &sync, &binary), cases[i].is);
		if (!cases[i].is)
			continue;
		assert_true(size == cases[i].size);
		assert_int_equal(sync, cases[i].sync);
		assert_int_equal(binary, cases[i].binary);
		/* Every shorter prefix ends before the "}". */
		for (k = 0; k < len; k++)
			assert_false(imap_literal_at_end(cases[i].line, k,
			    &size, &sync, &binary));
	}
}

static void
test_peek_command(void **state)
{
	static const struct {
		const char *line;
		const char *tag, *name;
		bool uid;
	} cases[] = {
		{ "a1 APPEND INBOX {500}", "a1", "APPEND", false },
		{ "A001 uid fetch 1:* (FLAGS)", "A001", "FETCH", true },
		{ "x login", "x", "LOGIN", false },
		{ "x UID", "x", "UID", false },
		{ "t \"q\"", "t", "", false },
	};
	char tag[IMAP_TAG_MAX + 1], name[32], line[200];
	bool uid;
	size_t i, k, len;
	(void)state;

	for (i = 0; i < NELEM(cases); i++) {
		len = strlen(cases[i].line);
		assert_true(imap_peek_command(cases[i].line, len, tag, name,
		    &uid));
		assert_string_equal(tag, cases[i].tag);
		assert_string_equal(name, cases[i].name);
		assert_int_equal(uid, cases[i].uid);
		/* Every prefix: the tag once it is whole, then a name that
		 * grows towards the full one. */
		for (k = 0; k <= len; k++) {
			bool ok = imap_peek_command(cases[i].line, k, tag,
			    name, &uid);

			assert_int_equal(ok, k > 0);
			assert_true(strlen(tag) <= k);
			assert_int_equal(strncmp(tag, cases[i].tag,
			    strlen(tag)), 0);
			if (k > strlen(cases[i].tag))
				assert_string_equal(tag, cases[i].tag);
			assert_true(strlen(name) < 32);
			if (!uid)
				assert_true(strncasecmp(name, cases[i].line +
				    strlen(cases[i].tag) + 1, strlen(name)) ==
				    0 || name[0] == '\0');
		}
	}
	assert_false(imap_peek_command("+ x", 3, tag, name, &uid));
	assert_false(imap_peek_command(" a NOOP", 7, tag, name, &uid));
	assert_false(imap_peek_command("a+ NOOP", 7, tag, name, &uid));
	assert_false(imap_peek_command("a(", 2, tag, name, &uid));
	assert_false(imap_peek_command("", 0, tag, name, &uid));
	memset(line, 'x', IMAP_TAG_MAX);
	memcpy(line + IMAP_TAG_MAX, " NOOP", 6);
	assert_true(imap_peek_command(line, strlen(line), tag, name, &uid));
	assert_string_equal(name, "NOOP");
	memset(line, 'x', IMAP_TAG_MAX + 1);
	memcpy(line + IMAP_TAG_MAX + 1, " NOOP", 6);
	assert_false(imap_peek_command(line, strlen(line), tag, name, &uid));
	/* A name too long for the buffer is not truncated into another. */
	snprintf(line, sizeof(line), "a APPEND%s x",
	    "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX");
	assert_true(imap_peek_command(line, strlen(line), tag, name, &uid));
	assert_string_equal(name, "");
}

/* Every prefix of valid commands: never a crash or a read past the end
 * (run under ASan), and what parses frees cleanly. */
static void
test_every_prefix(void **state)
{
	static const char *const cmds[] = {
		"a1 UID FETCH 1:*,3 (FLAGS BODY.PEEK[1.2.HEADER.FIELDS (From "
		"To)]<0.100> BINARY.SIZE[1]) (CHANGEDSINCE 5 VANISHED)\r\n",
		"a SEARCH RETURN (MIN) CHARSET UTF-8 OR FROM {3}\r\nx y (NOT "
		"SEEN) SINCE \"1-Feb-1994\" MODSEQ \"/flags/\\\\seen\" all 5\r\n",
		"a APPEND INBOX (\\Seen k) \" 7-Jul-1996 02:44:25 -0700\" "
		"{3+}\r\nabc UTF8 (~{2}\r\nxy)\r\n",
		"a SELECT INBOX (QRESYNC (1 2 1:5 (1:2 3:4)) CONDSTORE)\r\n",
		"a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (% x) RETURN (STATUS "
		"(MESSAGES))\r\n",
		"a STORE 1 (UNCHANGEDSINCE 0) +FLAGS.SILENT (\\Seen)\r\n",
		"a ID (\"name\" NIL)\r\n",
		"a LOGIN \"a\\\"b\" {2}\r\nxy\r\n",
	};
	const char *err;
	size_t i, k, len;
	char *copy;
	(void)state;

	for (i = 0; i < NELEM(cmds); i++) {
		len = strlen(cmds[i]);
		for (k = 0; k <= len; k++) {
			/* An exact-size copy, so ASan sees any overread. */
			copy = malloc(k + (k == 0));
			assert_non_null(copy);
			memcpy(copy, cmds[i], k);
			(void)parse_raw(copy, k, NULL, 0, &err);
			release();
			free(copy);
		}
		assert_int_equal(parse_raw(cmds[i], len, NULL, 0, &err),
		    IMAP_PARSE_OK);
	}
}

/* A long input is handled in one pass (no quadratic rescans). */
static void
test_long_inputs(void **state)
{
	size_t n = 4 * 1024 * 1024, i;
	char *line = malloc(n + 40);
	const char *err;
	(void)state;

	assert_non_null(line);
	memcpy(line, "a LOGIN ", 8);
	memset(line + 8, 'x', n);
	memcpy(line + 8 + n, " y\r\n", 4);
	assert_int_equal(parse_raw(line, n + 12, NULL, 0, &err),
	    IMAP_PARSE_OK);
	assert_int_equal(g.user.len, n);
	line[0] = '"';
	memcpy(line, "a LOGIN \"", 9);
	assert_int_equal(parse_raw(line, n + 12, NULL, 0, &err),
	    IMAP_PARSE_BAD);
	for (i = 8; i < n + 8; i++)
		line[i] = (i & 1) ? ',' : '1';
	memcpy(line, "a FETCH ", 8);
	assert_int_equal(parse_raw(line, n + 12, NULL, 0, &err),
	    IMAP_PARSE_BAD);
	assert_non_null(strstr(err, "Too many ranges"));
	memset(line + 8, '0', n);
	line[n + 7] = '1';
	assert_int_equal(parse_raw(line, n + 12, NULL, 0, &err),
	    IMAP_PARSE_BAD);
	free(line);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_tags, teardown),
		cmocka_unit_test_teardown(test_simple_commands, teardown),
		cmocka_unit_test_teardown(test_cmd_names, teardown),
		cmocka_unit_test_teardown(test_strings, teardown),
		cmocka_unit_test_teardown(test_authenticate, teardown),
		cmocka_unit_test_teardown(test_enable_id, teardown),
		cmocka_unit_test_teardown(test_mailbox_commands, teardown),
		cmocka_unit_test_teardown(test_select_params, teardown),
		cmocka_unit_test_teardown(test_create_use, teardown),
		cmocka_unit_test_teardown(test_status, teardown),
		cmocka_unit_test_teardown(test_list, teardown),
		cmocka_unit_test_teardown(test_append, teardown),
		cmocka_unit_test_teardown(test_file_literals, teardown),
		cmocka_unit_test_teardown(test_seqsets, teardown),
		cmocka_unit_test_teardown(test_fetch_atts, teardown),
		cmocka_unit_test_teardown(test_fetch_macros, teardown),
		cmocka_unit_test_teardown(test_fetch_modifiers, teardown),
		cmocka_unit_test_teardown(test_fetch_errors, teardown),
		cmocka_unit_test_teardown(test_store, teardown),
		cmocka_unit_test_teardown(test_search_simple_keys, teardown),
		cmocka_unit_test_teardown(test_search_arg_keys, teardown),
		cmocka_unit_test_teardown(test_search_modseq, teardown),
		cmocka_unit_test_teardown(test_search_structure, teardown),
		cmocka_unit_test_teardown(test_search_limits, teardown),
		cmocka_unit_test_teardown(test_search_return_charset,
		    teardown),
		cmocka_unit_test_teardown(test_date_time, teardown),
		cmocka_unit_test_teardown(test_is_done, teardown),
		cmocka_unit_test_teardown(test_literal_at_end, teardown),
		cmocka_unit_test_teardown(test_peek_command, teardown),
		cmocka_unit_test_teardown(test_every_prefix, teardown),
		cmocka_unit_test_teardown(test_long_inputs, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
