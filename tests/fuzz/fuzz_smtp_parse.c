/* libFuzzer harness for src/smtp/smtp_parse.c: the input is one MAIL,
 * RCPT, VRFY or EHLO argument. Whatever is accepted must satisfy the
 * header's promises, and must parse again to the same thing. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "queue/dsn.h"
#include "smtp/smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
	    #cond); abort(); } } while (0)

static bool
has_ctl_or_space(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return true;
	return false;
}

static bool
has_non_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

static bool
same_address(const struct smtp_address *a, const struct smtp_address *b)
{
	return strcmp(a->text, b->text) == 0 &&
	    strcmp(a->local, b->local) == 0 &&
	    strcmp(a->domain, b->domain) == 0 &&
	    a->is_literal == b->is_literal &&
	    a->is_postmaster == b->is_postmaster && a->utf8 == b->utf8;
}

/* A mailbox that was accepted: limits, form, and a second parse of its
 * text giving the same result. */
static void
check_mailbox(const struct smtp_address *a)
{
	size_t tlen = strlen(a->text), dlen = strlen(a->domain);
	struct smtp_address again;
	struct smtp_mail_args m;
	char line[SMTP_PATH_MAX + 16];

	CHECK(tlen <= SMTP_PATH_MAX - 2);
	CHECK(strlen(a->local) >= 1 && strlen(a->local) <= SMTP_LOCAL_MAX);
	CHECK(dlen >= 1 && dlen <= SMTP_DOMAIN_MAX);
	CHECK(!a->is_postmaster);
	CHECK(a->is_literal == (a->domain[0] == '['));
	CHECK(!has_ctl_or_space(a->domain));
	CHECK(tlen > dlen && a->text[tlen - dlen - 1] == '@');
	CHECK(strcmp(a->text + tlen - dlen, a->domain) == 0);
	CHECK(smtp_valid_utf8(a->text, tlen));
	CHECK(smtp_valid_utf8(a->local, strlen(a->local)));
	CHECK(a->utf8 == has_non_ascii(a->text));
	if (a->text[0] != '"') {
		CHECK(!has_ctl_or_space(a->text));
		CHECK(strlen(a->local) == tlen - dlen - 1);
		CHECK(strncmp(a->text, a->local, tlen - dlen - 1) == 0);
	}
	CHECK(smtp_parse_mailbox(a->text, &again) == SMTP_PARSE_OK);
	CHECK(same_address(a, &again));
	CHECK(snprintf(line, sizeof(line), " FROM:<%s>", a->text) > 0);
	CHECK(smtp_parse_mail(line, &m) == SMTP_PARSE_OK);
	CHECK(same_address(a, &m.from));
}

static void
check_path(const struct smtp_address *a, bool rcpt)
{
	if (a->is_postmaster) {
		CHECK(rcpt);
		CHECK(strcasecmp(a->text, "postmaster") == 0);
		CHECK(strcmp(a->local, "postmaster") == 0);
		CHECK(a->domain[0] == '\0' && !a->is_literal && !a->utf8);
		return;
	}
	if (a->text[0] == '\0') {
		CHECK(!rcpt);
		CHECK(a->local[0] == '\0' && a->domain[0] == '\0');
		CHECK(!a->is_literal && !a->utf8);
		return;
	}
	check_mailbox(a);
}

static bool
valid_xtext(const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '+') {
			if (strspn(s + 1, "0123456789ABCDEF") < 2)
				return false;
			s += 2;
		} else if (c < 33 || c > 126 || c == '=') {
			return false;
		}
	}
	return true;
}

static void
fuzz_mail(const char *s)
{
	struct smtp_mail_args m;
	enum smtp_parse_status st = smtp_parse_mail(s, &m);

	CHECK(smtp_parse_status_text(st) != NULL);
	CHECK(st != SMTP_PARSE_NULL_PATH);
	if (st != SMTP_PARSE_OK)
		return;
	check_path(&m.from, false);
	CHECK(strlen(m.envid) <= 100 && valid_xtext(m.envid));
	CHECK(strlen(m.auth) <= 256 && valid_xtext(m.auth));
	CHECK(m.has_size || m.size == 0);
	CHECK(m.body <= SMTP_BODY_8BITMIME && m.ret <= SMTP_RET_HDRS);
}

static void
fuzz_rcpt(const char *s)
{
	struct smtp_rcpt_args r;
	enum smtp_parse_status st = smtp_parse_rcpt(s, &r);
	const char *semi;

	CHECK(smtp_parse_status_text(st) != NULL);
	if (st != SMTP_PARSE_OK)
		return;
	check_path(&r.to, true);
	CHECK((r.notify & ~0xfu) == 0);
	CHECK(!(r.notify & SMTP_NOTIFY_NEVER) ||
	    r.notify == SMTP_NOTIFY_NEVER);
	CHECK(strlen(r.orcpt) <= 500);
	if (r.orcpt[0] != '\0') {
		semi = strchr(r.orcpt, ';');
		CHECK(semi != NULL && semi != r.orcpt);
		/* RFC 6533: the "utf-8" type carries UTF-8 (utf-8-addr-unitext);
		 * the DSN module must accept what the parser let through. */
		if ((size_t)(semi - r.orcpt) == 5 &&
		    strncasecmp(r.orcpt, "utf-8", 5) == 0) {
			struct buf b = BUF_INIT;
			const char *err = NULL;
			CHECK(dsn_orcpt_parse(r.orcpt, strlen(r.orcpt), true,
			    &b, &err) == 0);
			buf_free(&b);
		} else
			CHECK(valid_xtext(semi + 1));
	}
}

static void
fuzz_mailbox(const char *s)
{
	struct smtp_address a;
	enum smtp_parse_status st = smtp_parse_mailbox(s, &a);

	CHECK(st == SMTP_PARSE_OK || st == SMTP_PARSE_BAD_ADDRESS ||
	    st == SMTP_PARSE_TOO_LONG);
	if (st != SMTP_PARSE_OK)
		return;
	CHECK(strcmp(a.text, s) == 0);
	check_mailbox(&a);
}

static void
fuzz_helo(const char *s)
{
	size_t n = strlen(s);

	if (!smtp_valid_helo(s))
		return;
	CHECK(n >= 1 && n <= SMTP_DOMAIN_MAX);
	CHECK(!has_ctl_or_space(s));
	CHECK(smtp_valid_utf8(s, n));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	fuzz_mail(s);
	fuzz_rcpt(s);
	fuzz_mailbox(s);
	fuzz_helo(s);
	(void)smtp_valid_utf8((const char *)data, size);
	free(s);
	return 0;
}
