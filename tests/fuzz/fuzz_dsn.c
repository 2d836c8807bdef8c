/* libFuzzer harness for src/queue/dsn.c. The input is given to every DSN
 * parameter parser (NOTIFY, RET, ENVID, ORCPT, xtext) and to the envelope
 * line parser; whatever they accept must keep the header's promises and
 * come out the same after a second round. The input is also the original
 * message of a report, which must come out CRLF with short lines and its
 * boundary only where the MIME structure puts it. */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/buf.h"
#include "queue/dsn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
	    #cond); abort(); } } while (0)

/* memcmp that accepts empty (possibly NULL) buffers. */
static bool
same_bytes(const char *a, size_t an, const char *b, size_t bn)
{
	return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

static bool
is_token(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

static void
fuzz_xtext(const char *s, size_t n)
{
	struct buf dec = BUF_INIT, enc = BUF_INIT, again = BUF_INIT;
	const char *err = NULL;
	int r = dsn_xtext_decode(s, n, &dec, &err);

	CHECK((r == 0) == dsn_xtext_valid(s, n));
	CHECK(r == 0 || (err != NULL && dec.len == 0));
	if (r == 0) {
		dsn_xtext_encode(dec.data, dec.len, &enc);
		CHECK(enc.len <= n && is_token(enc.data, enc.len));
		CHECK(dsn_xtext_decode(enc.data, enc.len, &again, &err) == 0);
		CHECK(same_bytes(again.data, again.len, dec.data, dec.len));
	}
	buf_free(&dec);
	buf_free(&enc);
	buf_free(&again);
}

static void
fuzz_params(const char *s, size_t n)
{
	char envid[DSN_ENVID_MAX + 1], again[DSN_ENVID_MAX + 1];
	struct buf f = BUF_INIT;
	const char *err;
	enum dsn_ret ret;
	unsigned bits, bits2;

	if (dsn_notify_parse(s, n, &bits, &err) == 0) {
		CHECK(dsn_notify_valid(bits));
		dsn_notify_format(bits, &f);
		CHECK(dsn_notify_parse(f.data, f.len, &bits2, &err) == 0);
		CHECK(bits2 == bits);
	}
	if (dsn_ret_parse(s, n, &ret, &err) == 0)
		CHECK(ret == DSN_RET_FULL || ret == DSN_RET_HDRS);
	if (dsn_envid_parse(s, n, envid, &err) == 0) {
		size_t len = strlen(envid);

		CHECK(len >= 1 && len <= n && len <= DSN_ENVID_MAX);
		CHECK(dsn_xtext_valid(envid, len));
		CHECK(dsn_envid_parse(envid, len, again, &err) == 0);
		CHECK(strcmp(envid, again) == 0);
	}
	buf_free(&f);
}

static void
fuzz_orcpt(const char *s, size_t n, bool smtputf8)
{
	struct buf out = BUF_INIT, again = BUF_INIT, type = BUF_INIT,
	    addr = BUF_INIT;
	const char *err;

	if (dsn_orcpt_parse(s, n, smtputf8, &out, &err) == 0) {
		CHECK(out.len >= 3 && out.len <= DSN_ORCPT_STORED_MAX);
		CHECK(is_token(out.data, out.len));
		CHECK(dsn_orcpt_parse(out.data, out.len, false, &again,
		    &err) == 0 || out.len > DSN_ORCPT_MAX);
		if (again.len > 0)
			CHECK(same_bytes(again.data, again.len, out.data,
			    out.len));
		CHECK(dsn_orcpt_decode(out.data, out.len, &type, &addr,
		    &err) == 0);
		CHECK(type.len >= 1 && addr.len >= 1);
		CHECK(memchr(addr.data, '\r', addr.len) == NULL);
		CHECK(memchr(addr.data, '\n', addr.len) == NULL);
		CHECK(memchr(addr.data, '\0', addr.len) == NULL);
	} else {
		CHECK(out.len == 0);
	}
	buf_free(&out);
	buf_free(&again);
	buf_free(&type);
	buf_free(&addr);
}

static void
fuzz_clean(const char *s, size_t n)
{
	struct buf a = BUF_INIT, b = BUF_INIT;

	for (int utf8 = 0; utf8 < 2; utf8++) {
		buf_reset(&a);
		buf_reset(&b);
		dsn_text_clean(s, n, utf8, 200, &a);
		CHECK(a.len <= 200);
		for (size_t i = 0; i < a.len; i++) {
			unsigned char c = (unsigned char)a.data[i];

			CHECK(c >= 0x20 && c != 0x7f && (utf8 || c < 0x80));
			CHECK(c != ' ' || (i > 0 && i + 1 < a.len &&
			    a.data[i + 1] != ' '));
		}
		dsn_text_clean(a.data, a.len, utf8, 200, &b);
		CHECK(same_bytes(a.data, a.len, b.data, b.len));
	}
	buf_free(&a);
	buf_free(&b);
}

/* Returns whether the line parsed; *rc holds it then. */
static bool
fuzz_line(const char *s, size_t n, struct dsn_rcpt *rc)
{
	struct buf f = BUF_INIT, f2 = BUF_INIT;
	struct dsn_rcpt back;
	const char *err = NULL;

	if (dsn_rcpt_parse(s, n, rc, &err) < 0) {
		CHECK(err != NULL && rc->addr == NULL);
		return false;
	}
	CHECK(dsn_rcpt_format(rc, &f, &err) == 0);
	CHECK(f.len <= DSN_LINE_MAX);
	for (size_t i = 0; i < f.len; i++)
		CHECK(f.data[i] == ' ' || is_token(f.data + i, 1));
	CHECK(dsn_rcpt_parse(f.data, f.len, &back, &err) == 0);
	CHECK(strcmp(back.addr, rc->addr) == 0);
	CHECK(back.notify == rc->notify && back.action == rc->action);
	CHECK(strcmp(back.status, rc->status) == 0);
	CHECK(back.smtp_code == rc->smtp_code);
	CHECK(back.last_attempt == rc->last_attempt);
	CHECK(back.retry_until == rc->retry_until);
	CHECK(dsn_rcpt_format(&back, &f2, &err) == 0);
	CHECK(same_bytes(f2.data, f2.len, f.data, f.len));
	dsn_rcpt_free(&back);
	buf_free(&f);
	buf_free(&f2);
	return true;
}

static int in_fd = -1, out_fd = -1;

static void
check_report(const char *p, size_t n)
{
	const char *b = memmem(p, n, "boundary=\"", 10), *q;
	char delim[64];
	size_t line = 0, count = 0, blen;

	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r') {
			CHECK(i + 1 < n && p[i + 1] == '\n');
			i++;
			line = 0;
			continue;
		}
		CHECK(p[i] != '\n' && p[i] != '\0');
		CHECK(++line <= 998);
	}
	CHECK(line == 0 && b != NULL);
	b += 10;
	blen = strcspn(b, "\"");
	CHECK(blen > 0 && blen + 4 < sizeof(delim));
	delim[0] = '\r', delim[1] = '\n', delim[2] = '-', delim[3] = '-';
	memcpy(delim + 4, b, blen);
	for (q = p; (q = memmem(q, (size_t)(p + n - q), delim, blen + 4)) !=
	    NULL; q += blen + 4)
		count++;
	CHECK(count == 4);	/* three parts and the closing delimiter */
}

static void
fuzz_report(const uint8_t *data, size_t size, struct dsn_rcpt *rc)
{
	struct dsn_compose_info info;
	struct dsn_report r;
	const char *err;
	char *out;
	off_t len;

	if (in_fd < 0) {
		in_fd = memfd_create("fuzz-orig", MFD_CLOEXEC);
		out_fd = memfd_create("fuzz-out", MFD_CLOEXEC);
		CHECK(in_fd >= 0 && out_fd >= 0);
	}
	CHECK(ftruncate(in_fd, 0) == 0 && ftruncate(out_fd, 0) == 0);
	CHECK(lseek(out_fd, 0, SEEK_SET) == 0);
	CHECK(pwrite(in_fd, data, size, 0) == (ssize_t)size);
	if (rc->action == DSN_ACTION_NONE)
		rc->action = DSN_ACTION_FAILED;
	memset(&r, 0, sizeof(r));
	r.reporting_mta = "mx.correo.test";
	r.sender = "sender@example.org";
	r.envid = "fuzz+2Benvid";
	r.ret = (enum dsn_ret)(size % 3);
	r.smtputf8 = size > 0 && (data[0] & 1);
	r.return_max = size > 1 && (data[1] & 1) ? 64 : 0;
	r.arrival = 1767225600;
	r.now = 1767240000;
	r.queue_id = "0123456789abcdef";
	r.rcpts = rc;
	r.nrcpts = 1;
	CHECK(dsn_compose(&r, in_fd, out_fd, &info, &err) == 0);
	len = lseek(out_fd, 0, SEEK_END);
	CHECK(len > 0 && (uint64_t)len == info.size);
	out = malloc((size_t)len);
	CHECK(out != NULL && pread(out_fd, out, (size_t)len, 0) == len);
	check_report(out, (size_t)len);
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct dsn_rcpt rc;

	fuzz_xtext(s, size);
	fuzz_params(s, size);
	fuzz_orcpt(s, size, false);
	fuzz_orcpt(s, size, true);
	fuzz_clean(s, size);
	if (!fuzz_line(s, size, &rc)) {
		memset(&rc, 0, sizeof(rc));
		rc.addr = strdup("rcpt@example.org");
	}
	fuzz_report(data, size, &rc);
	dsn_rcpt_free(&rc);
	return 0;
}
