/* MIME summaries, sections, BINARY and search of message files. The
 * expected ENVELOPE/BODYSTRUCTURE texts were checked against what Dovecot
 * 2.3 answers for the same files (differences noted where they are
 * deliberate). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/buf.h"
#include "store/mime.h"

/* ---- helpers ---- */

static int
mem_fd(const char *data, size_t len)
{
	int fd = memfd_create("msg", 0);
	assert_true(fd >= 0);
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);
		assert_true(w > 0);
		off += (size_t)w;
	}
	return fd;
}

static int
str_fd(const char *s)
{
	return mem_fd(s, strlen(s));
}

/* "2.1.MIME" -> path and section. */
static size_t
parse_spec(const char *spec, uint32_t *path, enum mime_section *which)
{
	size_t n = 0;
	char *end;

	*which = MIME_SECTION_ALL;
	while (*spec >= '0' && *spec <= '9') {
		path[n++] = (uint32_t)strtoul(spec, &end, 10);
		spec = *end == '.' ? end + 1 : end;
	}
	if (strcmp(spec, "HEADER") == 0)
		*which = MIME_SECTION_HEADER;
	else if (strcmp(spec, "TEXT") == 0)
		*which = MIME_SECTION_TEXT;
	else if (strcmp(spec, "MIME") == 0)
		*which = MIME_SECTION_MIME;
	else
		assert_string_equal(spec, "");
	return n;
}

/* The octets of section spec of the message in fd. */
static char *
section(int fd, const char *spec, size_t *len)
{
	uint32_t path[16];
	enum mime_section which;
	struct mime_range r;
	char *err = NULL;
	size_t n = parse_spec(spec, path, &which);

	assert_int_equal(mime_section_range(fd, path, n, which, &r, &err), 0);
	char *b = malloc(r.length + 1);
	assert_non_null(b);
	assert_int_equal(pread(fd, b, r.length, (off_t)r.offset),
	    (ssize_t)r.length);
	b[r.length] = '\0';
	*len = r.length;
	return b;
}

static void
expect_section(int fd, const char *spec, const char *want)
{
	size_t len;
	char *got = section(fd, spec, &len);

	if (len != strlen(want) || memcmp(got, want, len) != 0)
		fail_msg("BODY[%s]: got {%zu}\"%s\" want \"%s\"", spec, len,
		    got, want);
	free(got);
}

static void
expect_summary(const char *msg, const char *env, const char *body,
    const char *bs)
{
	struct mime_summary s;
	char *err = NULL;
	int fd = str_fd(msg);

	assert_int_equal(mime_summarize(fd, &s, &err), 0);
	assert_string_equal(s.envelope, env);
	assert_string_equal(s.body, body);
	assert_string_equal(s.bodystructure, bs);
	mime_summary_free(&s);
	close(fd);
}

static bool
search_body(const char *msg, const char *needle, bool text)
{
	bool match = false;
	char *err = NULL;
	int fd = str_fd(msg);

	assert_int_equal(mime_search_body(fd, needle, strlen(needle), text,
	    &match, &err), 0);
	close(fd);
	return match;
}

static bool
search_header(const char *msg, const char *field, const char *needle)
{
	bool match = false;
	char *err = NULL;
	int fd = str_fd(msg);

	assert_int_equal(mime_search_header(fd, field, needle, strlen(needle),
	    &match, &err), 0);
	close(fd);
	return match;
}

/* ---- messages ---- */

static const char msg_plain[] =
	"Date: Tue, 2 Jan 2024 09:14:59 +0100\r\n"
	"From: Alice Example <alice@example.org>\r\n"
	"To: Bob <bob@example.test>\r\n"
	"Subject: Lunch tomorrow?\r\n"
	"Message-ID: <20240102081459.GA1234@example.org>\r\n"
	"\r\n"
	"Hi Bob,\r\n"
	"lunch?\r\n";

static const char msg_alt[] =
	"From: news@shop.example\r\n"
	"Subject: offers\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/alternative; boundary=\"alt-b\"\r\n"
	"\r\n"
	"preamble\r\n"
	"--alt-b\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n"
	"\r\n"
	"Gr=C3=BC=C3=9Fe\r\n"
	"--alt-b\r\n"
	"Content-Type: text/html; charset=utf-8\r\n"
	"\r\n"
	"<p>Gr&uuml;&szlig;e</p>\r\n"
	"--alt-b--\r\n"
	"epilogue\r\n";

/* The attachment is the octets 0..255 in base64. */
static const char msg_mixed[] =
	"From: Carol <carol@example.net>\r\n"
	"To: team: dave@example.test, \"Erin E.\" <erin@example.test>;,"
	" frank@example.test\r\n"
	"Cc: undisclosed-recipients:;\r\n"
	"Subject: report\r\n"
	"In-Reply-To: <req-1@example.test>\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=\"mix\"\r\n"
	"\r\n"
	"--mix\r\n"
	"Content-Type: text/plain; charset=us-ascii\r\n"
	"\r\n"
	"See attachment.\r\n"
	"--mix\r\n"
	"Content-Type: application/octet-stream; name=\"data.bin\"\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"Content-Disposition: attachment; filename=\"data.bin\"\r\n"
	"Content-ID: <att1@example.net>\r\n"
	"Content-Description: raw bytes\r\n"
	"\r\n"
	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v"
	"MDEyMzQ1Njc4\r\n"
	"OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdo"
	"aWprbG1ub3Bx\r\n"
	"cnN0dXZ3eHl6e3x9fn+AgYKDhIWGh4iJiouMjY6PkJGSk5SVlpeYmZqbnJ2en6Ch"
	"oqOkpaanqKmq\r\n"
	"q6ytrq+wsbKztLW2t7i5uru8vb6/wMHCw8TFxsfIycrLzM3Oz9DR0tPU1dbX2Nna"
	"29zd3t/g4eLj\r\n"
	"5OXm5+jp6uvs7e7v8PHy8/T19vf4+fr7/P3+/w==\r\n"
	"--mix\r\n"
	"Content-Type: application/x-thing\r\n"
	"Content-Transfer-Encoding: x-uuencode\r\n"
	"\r\n"
	"begin 644 x\r\n"
	"--mix--\r\n";

static const char msg_fwd[] =
	"From: frank@example.com\r\n"
	"Subject: Fwd: notes\r\n"
	"Content-Type: multipart/mixed; boundary=outer\r\n"
	"\r\n"
	"--outer\r\n"
	"Content-Type: text/plain\r\n"
	"\r\n"
	"see below\r\n"
	"--outer\r\n"
	"Content-Type: message/rfc822\r\n"
	"\r\n"
	"From: Heidi <heidi@example.org>\r\n"
	"Subject: notes\r\n"
	"Message-ID: <notes@example.org>\r\n"
	"Content-Type: multipart/alternative; boundary=inner\r\n"
	"\r\n"
	"--inner\r\n"
	"Content-Type: text/plain; charset=iso-8859-1\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n"
	"\r\n"
	"=C4nderungen am Plan\r\n"
	"--inner\r\n"
	"Content-Type: text/html; charset=iso-8859-1\r\n"
	"\r\n"
	"<p>x</p>\r\n"
	"--inner--\r\n"
	"--outer--\r\n";

static const char msg_nested[] =
	"Subject: nested\r\n"
	"Content-Type: multipart/mixed; boundary=a\r\n"
	"\r\n"
	"--a\r\n"
	"Content-Type: multipart/alternative; boundary=b\r\n"
	"\r\n"
	"--b\r\n"
	"\r\n"
	"plain\r\n"
	"--b\r\n"
	"Content-Type: text/html\r\n"
	"\r\n"
	"<b>html</b>\r\n"
	"--b--\r\n"
	"\r\n"
	"--a\r\n"
	"Content-Type: image/png\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"\r\n"
	"iVBORw0K\r\n"
	"--a--\r\n";

/* ---- summaries ---- */

static void
test_plain(void **state)
{
	(void)state;
	expect_summary(msg_plain,
	    "(\"Tue, 2 Jan 2024 09:14:59 +0100\" \"Lunch tomorrow?\" "
	    "((\"Alice Example\" NIL \"alice\" \"example.org\")) "
	    "((\"Alice Example\" NIL \"alice\" \"example.org\")) "
	    "((\"Alice Example\" NIL \"alice\" \"example.org\")) "
	    "((\"Bob\" NIL \"bob\" \"example.test\")) NIL NIL NIL "
	    "\"<20240102081459.GA1234@example.org>\")",
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\""
	    " 17 2)",
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\""
	    " 17 2 NIL NIL NIL NIL)");

	struct mime_summary s;
	char *err = NULL;
	int fd = str_fd(msg_plain);
	assert_int_equal(mime_summarize(fd, &s, &err), 0);
	assert_int_equal(s.sentdate, 1704183299);	/* 08:14:59 UTC */
	mime_summary_free(&s);

	const char *body = strstr(msg_plain, "\r\n\r\n") + 4;
	size_t hlen = (size_t)(body - msg_plain);
	char *hdr = strndup(msg_plain, hlen);
	expect_section(fd, "", msg_plain);
	expect_section(fd, "HEADER", hdr);
	expect_section(fd, "TEXT", body);
	expect_section(fd, "1", body);
	expect_section(fd, "1.MIME", hdr);
	expect_section(fd, "1.1", "");
	expect_section(fd, "2", "");
	expect_section(fd, "1.HEADER", "");
	free(hdr);
	close(fd);
}

static void
test_alternative(void **state)
{
	(void)state;
	expect_summary(msg_alt,
	    "(NIL \"offers\" ((NIL NIL \"news\" \"shop.example\")) "
	    "((NIL NIL \"news\" \"shop.example\")) "
	    "((NIL NIL \"news\" \"shop.example\")) NIL NIL NIL NIL NIL)",
	    "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL "
	    "\"quoted-printable\" 15 0)"
	    "(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7BIT\" 23 0)"
	    " \"alternative\")",
	    "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL "
	    "\"quoted-printable\" 15 0 NIL NIL NIL NIL)"
	    "(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7BIT\" 23 0"
	    " NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"alt-b\") "
	    "NIL NIL NIL)");

	int fd = str_fd(msg_alt);
	expect_section(fd, "1", "Gr=C3=BC=C3=9Fe");
	expect_section(fd, "1.MIME", "Content-Type: text/plain; charset=utf-8"
	    "\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n");
	expect_section(fd, "2", "<p>Gr&uuml;&szlig;e</p>");
	expect_section(fd, "2.MIME",
	    "Content-Type: text/html; charset=utf-8\r\n\r\n");
	expect_section(fd, "1.1", "Gr=C3=BC=C3=9Fe");
	expect_section(fd, "1.1.1", "");
	expect_section(fd, "3", "");
	expect_section(fd, "0", "");
	expect_section(fd, "TEXT", strstr(msg_alt, "preamble"));

	struct buf out = BUF_INIT;
	char *err = NULL;
	uint32_t one = 1;
	assert_int_equal(mime_section_decode(fd, &one, 1, &out, &err), 0);
	assert_string_equal(buf_cstr(&out), "Gr\xc3\xbc\xc3\x9f" "e");
	buf_free(&out);
	close(fd);
}

static void
test_mixed_attachment(void **state)
{
	(void)state;
	expect_summary(msg_mixed,
	    "(NIL \"report\" ((\"Carol\" NIL \"carol\" \"example.net\")) "
	    "((\"Carol\" NIL \"carol\" \"example.net\")) "
	    "((\"Carol\" NIL \"carol\" \"example.net\")) "
	    "((NIL NIL \"team\" NIL)(NIL NIL \"dave\" \"example.test\")"
	    "(\"Erin E.\" NIL \"erin\" \"example.test\")(NIL NIL NIL NIL)"
	    "(NIL NIL \"frank\" \"example.test\")) "
	    "((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) "
	    "NIL \"<req-1@example.test>\" NIL)",
	    "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\""
	    " 15 0)"
	    "(\"application\" \"octet-stream\" (\"name\" \"data.bin\") "
	    "\"<att1@example.net>\" \"raw bytes\" \"base64\" 352)"
	    "(\"application\" \"x-thing\" NIL NIL NIL \"x-uuencode\" 11)"
	    " \"mixed\")",
	    "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\""
	    " 15 0 NIL NIL NIL NIL)"
	    "(\"application\" \"octet-stream\" (\"name\" \"data.bin\") "
	    "\"<att1@example.net>\" \"raw bytes\" \"base64\" 352 NIL "
	    "(\"attachment\" (\"filename\" \"data.bin\")) NIL NIL)"
	    "(\"application\" \"x-thing\" NIL NIL NIL \"x-uuencode\" 11 "
	    "NIL NIL NIL NIL)"
	    " \"mixed\" (\"boundary\" \"mix\") NIL NIL NIL)");

	int fd = str_fd(msg_mixed);
	struct buf out = BUF_INIT;
	char *err = NULL;
	uint32_t path[2] = { 2, 0 };

	assert_int_equal(mime_section_decode(fd, path, 1, &out, &err), 0);
	assert_int_equal(out.len, 256);
	for (size_t i = 0; i < 256; i++)
		assert_int_equal((unsigned char)out.data[i], i);
	buf_reset(&out);

	path[0] = 3;	/* x-uuencode: RFC 3516 UNKNOWN-CTE */
	assert_int_equal(mime_section_decode(fd, path, 1, &out, &err), -1);
	assert_int_equal(errno, EINVAL);
	free(err);
	err = NULL;

	path[0] = 4;
	assert_int_equal(mime_section_decode(fd, path, 1, &out, &err), -1);
	assert_int_equal(errno, ENOENT);
	free(err);
	err = NULL;

	/* BINARY[] is the message as stored. */
	assert_int_equal(mime_section_decode(fd, path, 0, &out, &err), 0);
	assert_int_equal(out.len, strlen(msg_mixed));
	assert_memory_equal(out.data, msg_mixed, out.len);
	buf_free(&out);
	close(fd);
}

static void
test_forwarded(void **state)
{
	(void)state;
	/* Dovecot counts the CRLF before "--outer--" into the message/rfc822
	 * part (338 octets, 15 lines); RFC 2046 gives it to the outer
	 * delimiter, as for every other part. */
	expect_summary(msg_fwd,
	    "(NIL \"Fwd: notes\" ((NIL NIL \"frank\" \"example.com\")) "
	    "((NIL NIL \"frank\" \"example.com\")) "
	    "((NIL NIL \"frank\" \"example.com\")) NIL NIL NIL NIL NIL)",
	    "((\"text\" \"plain\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\""
	    " 9 0)"
	    "(\"message\" \"rfc822\" NIL NIL NIL \"7BIT\" 336 "
	    "(NIL \"notes\" ((\"Heidi\" NIL \"heidi\" \"example.org\")) "
	    "((\"Heidi\" NIL \"heidi\" \"example.org\")) "
	    "((\"Heidi\" NIL \"heidi\" \"example.org\")) NIL NIL NIL NIL "
	    "\"<notes@example.org>\") "
	    "((\"text\" \"plain\" (\"charset\" \"iso-8859-1\") NIL NIL "
	    "\"quoted-printable\" 20 0)"
	    "(\"text\" \"html\" (\"charset\" \"iso-8859-1\") NIL NIL \"7BIT\""
	    " 8 0) \"alternative\") 14) \"mixed\")",
	    "((\"text\" \"plain\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\""
	    " 9 0 NIL NIL NIL NIL)"
	    "(\"message\" \"rfc822\" NIL NIL NIL \"7BIT\" 336 "
	    "(NIL \"notes\" ((\"Heidi\" NIL \"heidi\" \"example.org\")) "
	    "((\"Heidi\" NIL \"heidi\" \"example.org\")) "
	    "((\"Heidi\" NIL \"heidi\" \"example.org\")) NIL NIL NIL NIL "
	    "\"<notes@example.org>\") "
	    "((\"text\" \"plain\" (\"charset\" \"iso-8859-1\") NIL NIL "
	    "\"quoted-printable\" 20 0 NIL NIL NIL NIL)"
	    "(\"text\" \"html\" (\"charset\" \"iso-8859-1\") NIL NIL \"7BIT\""
	    " 8 0 NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"inner\")"
	    " NIL NIL NIL) 14 NIL NIL NIL NIL)"
	    " \"mixed\" (\"boundary\" \"outer\") NIL NIL NIL)");

	int fd = str_fd(msg_fwd);
	const char *inner = strstr(msg_fwd, "From: Heidi");
	const char *itext = strstr(msg_fwd, "--inner\r\n");
	char *all = strndup(inner, (size_t)(strstr(inner, "\r\n--outer--") -
	    inner));
	char *ihdr = strndup(inner, (size_t)(itext - inner));
	char *ibody = strndup(itext, (size_t)(strstr(itext,
	    "\r\n--outer--") - itext));

	expect_section(fd, "1", "see below");
	expect_section(fd, "2", all);
	expect_section(fd, "2.MIME", "Content-Type: message/rfc822\r\n\r\n");
	expect_section(fd, "2.HEADER", ihdr);
	expect_section(fd, "2.TEXT", ibody);
	expect_section(fd, "2.1", "=C4nderungen am Plan");
	expect_section(fd, "2.1.MIME", "Content-Type: text/plain; "
	    "charset=iso-8859-1\r\nContent-Transfer-Encoding: "
	    "quoted-printable\r\n\r\n");
	expect_section(fd, "2.2", "<p>x</p>");
	expect_section(fd, "2.3", "");
	expect_section(fd, "1.HEADER", "");
	expect_section(fd, "1.TEXT", "");
	free(all);
	free(ihdr);
	free(ibody);

	struct buf out = BUF_INIT;
	char *err = NULL;
	uint32_t path[2] = { 2, 1 };
	assert_int_equal(mime_section_decode(fd, path, 2, &out, &err), 0);
	assert_string_equal(buf_cstr(&out), "\xc4nderungen am Plan");
	buf_free(&out);
	close(fd);
}

static void
test_nested_multipart(void **state)
{
	(void)state;
	expect_summary(msg_nested,
	    "(NIL \"nested\" NIL NIL NIL NIL NIL NIL NIL NIL)",
	    "(((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL "
	    "\"7BIT\" 5 0)(\"text\" \"html\" (\"CHARSET\" \"US-ASCII\") NIL "
	    "NIL \"7BIT\" 11 0) \"alternative\")"
	    "(\"image\" \"png\" NIL NIL NIL \"base64\" 8) \"mixed\")",
	    "(((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL "
	    "\"7BIT\" 5 0 NIL NIL NIL NIL)(\"text\" \"html\" (\"CHARSET\" "
	    "\"US-ASCII\") NIL NIL \"7BIT\" 11 0 NIL NIL NIL NIL) "
	    "\"alternative\" (\"boundary\" \"b\") NIL NIL NIL)"
	    "(\"image\" \"png\" NIL NIL NIL \"base64\" 8 NIL NIL NIL NIL) "
	    "\"mixed\" (\"boundary\" \"a\") NIL NIL NIL)");

	int fd = str_fd(msg_nested);
	expect_section(fd, "1", "--b\r\n\r\nplain\r\n--b\r\nContent-Type: "
	    "text/html\r\n\r\n<b>html</b>\r\n--b--\r\n");
	expect_section(fd, "1.1", "plain");
	expect_section(fd, "1.1.MIME", "\r\n");
	expect_section(fd, "1.2", "<b>html</b>");
	expect_section(fd, "2", "iVBORw0K");

	/* BINARY of a multipart: RFC 3516 wants a leaf. */
	struct buf out = BUF_INIT;
	char *err = NULL;
	uint32_t path[1] = { 1 };
	assert_int_equal(mime_section_decode(fd, path, 1, &out, &err), -1);
	assert_int_equal(errno, ENOENT);
	free(err);
	err = NULL;
	path[0] = 2;
	assert_int_equal(mime_section_decode(fd, path, 1, &out, &err), 0);
	assert_int_equal(out.len, 6);
	assert_memory_equal(out.data, "\x89PNG\r\n", 6);
	buf_free(&out);
	close(fd);
}

static void
test_rfc2231_params(void **state)
{
	static const char msg[] =
		"Subject: params\r\n"
		"Content-Type: application/octet-stream;\r\n"
		" name*0*=utf-8''%C3%84rger;\r\n"
		" name*1*=%20mit%20Plan.txt\r\n"
		"Content-Disposition: attachment; filename*0=\"long \";"
		" filename*1=\"name.txt\"\r\n"
		"Content-Language: de-CH\r\n"
		"Content-Location: http://example.test/x\r\n"
		"\r\n"
		"x\r\n";

	(void)state;
	/* Dovecot leaves name*0*... joined but encoded ("name*"); we give
	 * the decoded UTF-8 value under its plain name. */
	expect_summary(msg,
	    "(NIL \"params\" NIL NIL NIL NIL NIL NIL NIL NIL)",
	    "(\"application\" \"octet-stream\" (\"name\" "
	    "\"\xc3\x84rger mit Plan.txt\") NIL NIL \"7BIT\" 3)",
	    "(\"application\" \"octet-stream\" (\"name\" "
	    "\"\xc3\x84rger mit Plan.txt\") NIL NIL \"7BIT\" 3 NIL "
	    "(\"attachment\" (\"filename\" \"long name.txt\")) (\"de-CH\") "
	    "\"http://example.test/x\")");
}

static void
test_extension_fields(void **state)
{
	static const char msg[] =
		"Content-Type: text\r\n"
		"Content-Transfer-Encoding: 8Bit (comment)\r\n"
		"Content-Language: en, de\r\n"
		"Content-ID: <x@y>\r\n"
		"Content-MD5: abc\r\n"
		"Content-Description: a \r\n desc\r\n"
		"Content-Disposition: inline\r\n"
		"\r\n"
		"body\r\n";

	(void)state;
	/* "text" without a subtype is invalid: RFC 2045 says text/plain. */
	expect_summary(msg, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") \"<x@y>\" "
	    "\"a  desc\" \"8Bit\" 6 1)",
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") \"<x@y>\" "
	    "\"a  desc\" \"8Bit\" 6 1 \"abc\" (\"inline\" NIL) "
	    "(\"en\" \"de\") NIL)");
}

static void
test_envelope_addresses(void **state)
{
	static const char msg[] =
		"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
		"From: Joe Q. Public <john.q.public@example.com>, \"john doe\""
		"@x.test, <>, \"Giant; \\\"Big\\\" Box\" <sys@example.net>\r\n"
		"Sender: \r\n"
		"Reply-To: group1: a@b, c@d;, (only comment)\r\n"
		"To: x@y (Comment Name), Who? <one@y.test>, <@r1,@r2:c@d>,\r\n"
		"  bob, \"\" <e@f>\r\n"
		"Cc: Undisclosed recipients:;\r\n"
		"Bcc: =?iso-8859-1?q?J=F6rg?= <j@x>, a@[1.2.3.4], x@, @y\r\n"
		"In-Reply-To: <a@b>\r\n  <c@d>\r\n"
		"Message-ID: <id@example>\r\n"
		"From: second@x\r\n"
		"\r\n";

	(void)state;
	/* As Dovecot, except that unfolding keeps the blanks of the
	 * continuation line (RFC 5322 2.2.3) and 8-bit goes quoted. */
	expect_summary(msg,
	    "(\"Mon, 1 Jan 2024 10:00:00 +0000\" NIL "
	    "((\"Joe Q. Public\" NIL \"john.q.public\" \"example.com\")"
	    "(NIL NIL \"john doe\" \"x.test\")"
	    "(NIL NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")"
	    "(\"Giant; \\\"Big\\\" Box\" NIL \"sys\" \"example.net\")"
	    "(NIL NIL \"second\" \"x\")) "
	    "((\"Joe Q. Public\" NIL \"john.q.public\" \"example.com\")"
	    "(NIL NIL \"john doe\" \"x.test\")"
	    "(NIL NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")"
	    "(\"Giant; \\\"Big\\\" Box\" NIL \"sys\" \"example.net\")"
	    "(NIL NIL \"second\" \"x\")) "
	    "((NIL NIL \"group1\" NIL)(NIL NIL \"a\" \"b\")"
	    "(NIL NIL \"c\" \"d\")(NIL NIL NIL NIL)) "
	    "((\"Comment Name\" NIL \"x\" \"y\")(\"Who?\" NIL \"one\" "
	    "\"y.test\")(NIL \"@r1,@r2\" \"c\" \"d\")"
	    "(NIL NIL \"bob\" \"MISSING_DOMAIN\")(NIL NIL \"e\" \"f\")) "
	    "((NIL NIL \"Undisclosed recipients\" NIL)(NIL NIL NIL NIL)) "
	    "((\"=?iso-8859-1?q?J=F6rg?=\" NIL \"j\" \"x\")"
	    "(NIL NIL \"a\" \"[1.2.3.4]\")(NIL NIL \"x\" \"MISSING_DOMAIN\")"
	    "(NIL NIL \"MISSING_MAILBOX\" \"y\")) "
	    "\"<a@b>  <c@d>\" \"<id@example>\")",
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\""
	    " 0 0)",
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\""
	    " 0 0 NIL NIL NIL NIL)");
}

static void
test_missing_headers(void **state)
{
	static const char nil_env[] =
		"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)";
	static const char nil_body[] =
		"(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL "
		"\"7BIT\" 6 1)";

	(void)state;
	expect_summary("\r\nbody\r\n", nil_env, nil_body,
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\""
	    " 6 1 NIL NIL NIL NIL)");
	/* An empty file and a header without a body. */
	expect_summary("", nil_env,
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\""
	    " 0 0)",
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\""
	    " 0 0 NIL NIL NIL NIL)");
	expect_summary("Subject:\r\nContent-Type: multipart/mixed",
	    "(NIL \"\" NIL NIL NIL NIL NIL NIL NIL NIL)",
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\""
	    " 0 0) \"mixed\")",
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\""
	    " 0 0 NIL NIL NIL NIL) \"mixed\" NIL NIL NIL NIL)");
}

static void
test_8bit_headers(void **state)
{
	(void)state;
	/* UTF-8 goes quoted; anything else is sent as a literal. */
	expect_summary(
	    "From: =?iso-8859-1?q?J=F6rg?= <joerg@example.de>\r\n"
	    "To: \"Zo\xc3\xab\" <zoe@example.test>\r\n"
	    "Subject: \xc3\x9c" "berweisung f\xc3\xbcr M\xc3\xa4rz\r\n"
	    "\r\n",
	    "(NIL \"\xc3\x9c" "berweisung f\xc3\xbcr M\xc3\xa4rz\" "
	    "((\"=?iso-8859-1?q?J=F6rg?=\" NIL \"joerg\" \"example.de\")) "
	    "((\"=?iso-8859-1?q?J=F6rg?=\" NIL \"joerg\" \"example.de\")) "
	    "((\"=?iso-8859-1?q?J=F6rg?=\" NIL \"joerg\" \"example.de\")) "
	    "((\"Zo\xc3\xab\" NIL \"zoe\" \"example.test\")) NIL NIL NIL NIL)",
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\""
	    " 0 0)",
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\""
	    " 0 0 NIL NIL NIL NIL)");
	expect_summary("Subject: caf\xe9\r\nFrom: S\xf6ren <s@x>\r\n\r\n",
	    "(NIL {4}\r\ncaf\xe9 "
	    "(({5}\r\nS\xf6ren NIL \"s\" \"x\")) "
	    "(({5}\r\nS\xf6ren NIL \"s\" \"x\")) "
	    "(({5}\r\nS\xf6ren NIL \"s\" \"x\")) NIL NIL NIL NIL NIL)",
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\""
	    " 0 0)",
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\""
	    " 0 0 NIL NIL NIL NIL)");
}

static void
test_digest_and_encoded_message(void **state)
{
	static const char msg[] =
		"Content-Type: multipart/digest; boundary=d\r\n"
		"\r\n"
		"--d\r\n"
		"\r\n"
		"Subject: first\r\n"
		"\r\n"
		"one\r\n"
		"--d\r\n"
		"Content-Type: message/rfc822\r\n"
		"Content-Transfer-Encoding: base64\r\n"
		"\r\n"
		"U3ViamVjdDogeA0KDQp5DQo=\r\n"
		"--d--\r\n";

	(void)state;
	/* A base64 message/rfc822 cannot be parsed: an empty envelope and
	 * body stand in (as Dovecot; its size also counts the CRLF that
	 * belongs to the boundary, ours does not). */
	expect_summary(msg, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
	    "((\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 21 "
	    "(NIL \"first\" NIL NIL NIL NIL NIL NIL NIL NIL) "
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\""
	    " 3 0) 2)"
	    "(\"message\" \"rfc822\" NIL NIL NIL \"base64\" 24 "
	    "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) "
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\""
	    " 0 0) 0) \"digest\")",
	    "((\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 21 "
	    "(NIL \"first\" NIL NIL NIL NIL NIL NIL NIL NIL) "
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\""
	    " 3 0 NIL NIL NIL NIL) 2 NIL NIL NIL NIL)"
	    "(\"message\" \"rfc822\" NIL NIL NIL \"base64\" 24 "
	    "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) "
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\""
	    " 0 0 NIL NIL NIL NIL) 0 NIL NIL NIL NIL) \"digest\" "
	    "(\"boundary\" \"d\") NIL NIL NIL)");

	int fd = str_fd(msg);
	expect_section(fd, "1", "Subject: first\r\n\r\none");
	expect_section(fd, "1.HEADER", "Subject: first\r\n\r\n");
	expect_section(fd, "1.1", "one");
	expect_section(fd, "2", "U3ViamVjdDogeA0KDQp5DQo=");
	expect_section(fd, "2.HEADER", "");
	struct buf out = BUF_INIT;
	char *err = NULL;
	uint32_t path[1] = { 2 };
	assert_int_equal(mime_section_decode(fd, path, 1, &out, &err), 0);
	assert_string_equal(buf_cstr(&out), "Subject: x\r\n\r\ny\r\n");
	buf_free(&out);
	close(fd);
}

/* ---- robustness ---- */

static void
test_bare_lf(void **state)
{
	static const char msg[] =
		"Subject: lf\n"
		"Content-Type: multipart/mixed; boundary=q\n"
		"\n"
		"--q\n"
		"\n"
		"A\n"
		"--q\n"
		"Content-Type: text/html\n"
		"\n"
		"<b>B</b>\n"
		"\n"
		"--q--\n";

	(void)state;
	/* Sizes are octets of the file (Dovecot counts LF as CRLF). */
	expect_summary(msg,
	    "(NIL \"lf\" NIL NIL NIL NIL NIL NIL NIL NIL)",
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\""
	    " 1 0)(\"text\" \"html\" (\"CHARSET\" \"US-ASCII\") NIL NIL "
	    "\"7BIT\" 9 1) \"mixed\")",
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\""
	    " 1 0 NIL NIL NIL NIL)(\"text\" \"html\" (\"CHARSET\" "
	    "\"US-ASCII\") NIL NIL \"7BIT\" 9 1 NIL NIL NIL NIL) \"mixed\" "
	    "(\"boundary\" \"q\") NIL NIL NIL)");
	int fd = str_fd(msg);
	expect_section(fd, "1", "A");
	expect_section(fd, "1.MIME", "\n");
	expect_section(fd, "2", "<b>B</b>\n");
	expect_section(fd, "2.MIME", "Content-Type: text/html\n\n");
	close(fd);
}

static void
test_broken_boundaries(void **state)
{
	static const char msg[] =
		"Content-Type: multipart/mixed; boundary=\"b\"\r\n"
		"\r\n"
		"--b\r\n"
		"Content-Type: multipart/alternative; boundary=\"b-inner\"\r\n"
		"\r\n"
		"--b-inner\r\n"
		"\r\n"
		"inner\r\n"
		"--b\r\n"
		"Content-Type: text/plain\r\n"
		"--b\r\n"
		"\r\n"
		"--bogus not a boundary\r\n"
		"--b   \r\n"
		"\r\n"
		"last, never closed\r\n";

	(void)state;
	int fd = str_fd(msg);
	/* An outer boundary ends the inner multipart that never closed. */
	expect_section(fd, "1.1", "inner");
	/* A part whose header is cut by a boundary has no body. */
	expect_section(fd, "2.MIME", "Content-Type: text/plain");
	expect_section(fd, "2", "");
	expect_section(fd, "3", "--bogus not a boundary");
	/* Transport padding after a boundary is allowed. */
	expect_section(fd, "4", "last, never closed\r\n");
	expect_section(fd, "5", "");
	close(fd);
}

static void
test_boundary_after_blank_line(void **state)
{
	static const char msg[] =
		"Content-Type: multipart/mixed; boundary=b\r\n"
		"\r\n"
		"--b\r\n"
		"Content-Type: text/plain\r\n"
		"\r\n"
		"--b\r\n"
		"Content-Type: message/rfc822\r\n"
		"\r\n"
		"Subject: x\r\n"
		"\r\n"
		"--b--\r\n";

	(void)state;
	/* The CRLF of the blank line is the boundary's: the headers end
	 * without it (as in Dovecot) and HEADER stays inside its part. */
	int fd = str_fd(msg);
	expect_section(fd, "1.MIME", "Content-Type: text/plain\r\n");
	expect_section(fd, "1", "");
	expect_section(fd, "2", "Subject: x\r\n");
	expect_section(fd, "2.HEADER", "Subject: x\r\n");
	expect_section(fd, "2.TEXT", "");
	close(fd);
}

static void
test_depth_and_part_limits(void **state)
{
	struct buf m = BUF_INIT;
	struct mime_summary s;
	char *err = NULL;

	(void)state;
	for (int i = 0; i < 100; i++)
		buf_printf(&m, "Content-Type: multipart/mixed; boundary=d%d\r\n"
		    "\r\n--d%d\r\n", i, i);
	buf_puts(&m, "\r\ndeepest\r\n");
	int fd = mem_fd(m.data, m.len);
	assert_int_equal(mime_summarize(fd, &s, &err), 0);
	/* MIME_DEPTH_MAX - 1 multiparts, then an opaque leaf. */
	size_t open = strspn(s.bodystructure, "(");
	assert_int_equal(open, MIME_DEPTH_MAX);
	assert_non_null(strstr(s.bodystructure, "(\"TEXT\" \"PLAIN\" NIL NIL "
	    "NIL \"7BIT\""));
	mime_summary_free(&s);
	close(fd);

	/* 30000 empty parts: the first 9999 are split out, the rest stays
	 * in the last one (here: its header, as no blank line comes). */
	buf_reset(&m);
	buf_puts(&m, "Content-Type: multipart/mixed; boundary=x\r\n\r\n");
	for (int i = 0; i < 30000; i++)
		buf_puts(&m, "--x\r\n");
	fd = mem_fd(m.data, m.len);
	assert_int_equal(mime_summarize(fd, &s, &err), 0);
	mime_summary_free(&s);
	size_t len;
	free(section(fd, "9999.MIME", &len));
	assert_int_equal(len, (30000 - 9999) * 5);
	expect_section(fd, "9999", "");
	expect_section(fd, "9998.MIME", "");
	expect_section(fd, "10000", "");
	close(fd);
	buf_free(&m);
}

/* Every prefix of every message: nothing may crash or leave the file. */
static void
test_every_truncation(void **state)
{
	static const char *const msgs[] = { msg_plain, msg_alt, msg_mixed,
	    msg_fwd, msg_nested };
	static const uint32_t paths[][3] = { { 1, 0, 0 }, { 2, 0, 0 },
	    { 2, 1, 0 }, { 2, 2, 0 }, { 1, 1, 1 } };

	(void)state;
	for (size_t k = 0; k < sizeof(msgs) / sizeof(msgs[0]); k++) {
		size_t len = strlen(msgs[k]);
		for (size_t n = 0; n <= len; n++) {
			struct mime_summary s;
			struct buf out = BUF_INIT;
			char *err = NULL;
			bool match;
			int fd = mem_fd(msgs[k], n);
			assert_int_equal(mime_summarize(fd, &s, &err), 0);
			mime_summary_free(&s);
			for (size_t p = 0; p < 5; p++) {
				for (int w = 0; w < 4; w++) {
					struct mime_range r;
					assert_int_equal(mime_section_range(fd,
					    paths[p], p < 2 ? 1 : p < 4 ? 2 : 3,
					    (enum mime_section)w, &r, &err), 0);
					assert_true(r.offset + r.length <= n);
				}
				if (mime_section_decode(fd, paths[p], 2, &out,
				    &err) < 0)
					free(err);
				err = NULL;
			}
			assert_int_equal(mime_search_body(fd, "plan", 4, true,
			    &match, &err), 0);
			buf_free(&out);
			close(fd);
		}
	}
}

/* ---- search ---- */

static const char msg_latin1[] =
	"From: =?iso-8859-1?q?J=F6rg_M=FCller?= <joerg@example.de>\r\n"
	"Subject: =?ISO-8859-1?Q?R=E9sum=E9?= und mehr\r\n"
	"Content-Type: multipart/mixed; boundary=s\r\n"
	"\r\n"
	"--s\r\n"
	"Content-Type: text/plain; charset=\"ISO-8859-1\"\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n"
	"\r\n"
	"Voici mon r=E9sum=E9. =C4rger mit dem Stra=DFenbau, =\r\n"
	"bient=F4t.\r\n"
	"--s\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"\r\n"
	"R3LDvMOfZSBhdXMgTcO8bmNoZW4=\r\n"
	"--s\r\n"
	"Content-Type: application/octet-stream\r\n"
	"\r\n"
	"hiddenword\r\n"
	"--s--\r\n";

static void
test_search_body(void **state)
{
	(void)state;
	assert_true(search_body(msg_latin1, "\xc3\x84rger", false));
	assert_true(search_body(msg_latin1, "\xc3\xa4RGER", false));
	assert_true(search_body(msg_latin1, "R\xc3\x89SUM\xc3\x89", false));
	/* A soft line break joins "=\r\n" away. */
	assert_true(search_body(msg_latin1, "Stra\xc3\x9f" "enbau, bient",
	    false));
	assert_true(search_body(msg_latin1, "m\xc3\x9cnchen", false));
	assert_true(search_body(msg_latin1, "", false));
	assert_false(search_body(msg_latin1, "Aerger", false));
	assert_false(search_body(msg_latin1, "=C4rger", false));
	/* Header words: TEXT, not BODY. */
	assert_false(search_body(msg_latin1, "j\xc3\xb6rg", false));
	assert_true(search_body(msg_latin1, "j\xc3\xb6rg M\xc3\xbcLLER",
	    true));
	assert_true(search_body(msg_latin1, "multipart/mixed", true));
	/* Only text parts are searched. */
	assert_false(search_body(msg_latin1, "hiddenword", true));
	assert_true(search_body(msg_plain, "LUNCH?", false));
}

static void
test_search_chunks(void **state)
{
	struct buf m = BUF_INIT;

	(void)state;
	/* The needle straddles the 64 KiB steps, in raw and base64 form. */
	buf_puts(&m, "Content-Type: text/plain; charset=iso-8859-1\r\n\r\n");
	size_t body = m.len;
	while (m.len - body < 65536 - 3)
		buf_putc(&m, 'x');
	buf_puts(&m, "\xc4pfel und Birnen\r\n");
	for (int i = 0; i < 70000; i++)
		buf_putc(&m, 'y');
	int fd = mem_fd(m.data, m.len);
	bool match = false;
	char *err = NULL;
	assert_int_equal(mime_search_body(fd, "xx\xc3\xa4pfel", 8, false,
	    &match, &err), 0);
	assert_true(match);
	assert_int_equal(mime_search_body(fd, "yyyz", 4, false, &match,
	    &err), 0);
	assert_false(match);
	close(fd);
	buf_free(&m);
}

static void
test_search_header(void **state)
{
	(void)state;
	assert_true(search_header(msg_latin1, "from", "j\xc3\x96RG"));
	assert_true(search_header(msg_latin1, "From", "joerg@example"));
	assert_true(search_header(msg_latin1, "subject", "r\xc3\xa9sum\xc3\xa9 "
	    "und"));
	assert_false(search_header(msg_latin1, "subject", "=?ISO"));
	assert_true(search_header(msg_latin1, "Subject", ""));
	assert_false(search_header(msg_latin1, "Cc", ""));
	/* MIME headers of parts are not the message's header. */
	assert_false(search_header(msg_latin1, "Content-Transfer-Encoding",
	    ""));
	assert_true(search_header(msg_plain, "message-id", "GA1234"));
}

/* ---- header filter, strings ---- */

static void
test_header_filter(void **state)
{
	static const char hdr[] =
		"Received: from a\r\n\tby b\r\n"
		"Subject: hello\r\n"
		" world\r\n"
		"X-Spam: yes\r\n"
		"to : bob@example.test\r\n"
		"no colon line\r\n"
		"\r\n";
	static const char *const f1[] = { "SUBJECT", "To" };
	static const char *const f2[] = { "Received", "x-spam" };
	struct buf out = BUF_INIT;

	(void)state;
	mime_header_filter(hdr, sizeof(hdr) - 1, f1, 2, false, &out);
	assert_string_equal(buf_cstr(&out), "Subject: hello\r\n world\r\n"
	    "to : bob@example.test\r\n\r\n");
	buf_reset(&out);
	mime_header_filter(hdr, sizeof(hdr) - 1, f2, 2, true, &out);
	assert_string_equal(buf_cstr(&out), "Subject: hello\r\n world\r\n"
	    "to : bob@example.test\r\nno colon line\r\n\r\n");
	buf_reset(&out);
	mime_header_filter(hdr, sizeof(hdr) - 1, f1, 0, false, &out);
	assert_string_equal(buf_cstr(&out), "\r\n");
	buf_reset(&out);
	/* A header cut without its line end still gives whole lines. */
	mime_header_filter("Subject: x", 10, f1, 1, false, &out);
	assert_string_equal(buf_cstr(&out), "Subject: x\r\n\r\n");
	buf_free(&out);
}

static void
test_imap_string(void **state)
{
	struct buf out = BUF_INIT;

	(void)state;
	mime_imap_string(&out, NULL, 0);
	mime_imap_string(&out, "", 0);
	mime_imap_string(&out, "a \"q\" \\", 7);
	mime_imap_string(&out, "\xc3\xa4", 2);
	assert_string_equal(buf_cstr(&out),
	    "NIL\"\"\"a \\\"q\\\" \\\\\"\"\xc3\xa4\"");
	buf_reset(&out);
	mime_imap_string(&out, "a\r\nb", 4);
	assert_string_equal(buf_cstr(&out), "{4}\r\na\r\nb");
	buf_reset(&out);
	mime_imap_string(&out, "caf\xe9", 4);
	assert_string_equal(buf_cstr(&out), "{4}\r\ncaf\xe9");
	buf_reset(&out);
	/* NUL may not appear in a literal either. */
	mime_imap_string(&out, "a\0b", 3);
	assert_int_equal(out.len, 8);
	assert_memory_equal(out.data, "{3}\r\na b", 8);
	buf_free(&out);
}

/* ---- threads ---- */

static void *
summarize_loop(void *arg)
{
	const char *want = arg;

	for (int i = 0; i < 200; i++) {
		struct mime_summary s;
		char *err = NULL;
		int fd = str_fd(msg_fwd);
		bool match = false;
		if (mime_summarize(fd, &s, &err) < 0 ||
		    strcmp(s.bodystructure, want) != 0)
			abort();
		mime_summary_free(&s);
		if (mime_search_body(fd, "\xc3\xa4nderungen", 11, false, &match,
		    &err) < 0 || !match)
			abort();
		close(fd);
	}
	return NULL;
}

static void
test_threads(void **state)
{
	struct mime_summary s;
	char *err = NULL;
	pthread_t th[4];

	(void)state;
	int fd = str_fd(msg_fwd);
	assert_int_equal(mime_summarize(fd, &s, &err), 0);
	close(fd);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, summarize_loop,
		    s.bodystructure), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	mime_summary_free(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_alternative),
		cmocka_unit_test(test_mixed_attachment),
		cmocka_unit_test(test_forwarded),
		cmocka_unit_test(test_nested_multipart),
		cmocka_unit_test(test_rfc2231_params),
		cmocka_unit_test(test_extension_fields),
		cmocka_unit_test(test_envelope_addresses),
		cmocka_unit_test(test_missing_headers),
		cmocka_unit_test(test_8bit_headers),
		cmocka_unit_test(test_digest_and_encoded_message),
		cmocka_unit_test(test_bare_lf),
		cmocka_unit_test(test_broken_boundaries),
		cmocka_unit_test(test_boundary_after_blank_line),
		cmocka_unit_test(test_depth_and_part_limits),
		cmocka_unit_test(test_every_truncation),
		cmocka_unit_test(test_search_body),
		cmocka_unit_test(test_search_chunks),
		cmocka_unit_test(test_search_header),
		cmocka_unit_test(test_header_filter),
		cmocka_unit_test(test_imap_string),
		cmocka_unit_test(test_threads),
	};

	mime_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
