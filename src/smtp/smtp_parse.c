/* SMTP argument syntax: paths, mailboxes, ESMTP parameters, HELO names.
 *
 * Untrusted input: the arguments of EHLO/HELO, MAIL, RCPT, VRFY and EXPN,
 * exactly as the client sent them.
 *
 * Every scanner works on [p, end) and never looks at *end, so a path that
 * is cut short by the line's NUL or by a space is simply incomplete. Nothing
 * is copied into the result until the whole path has been checked against
 * the grammar and the length limits, so the fixed buffers cannot overflow. */
/* smtp_parse.h uses size_t without including <stddef.h>. */
#include <stddef.h>

#include "smtp/smtp_parse.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "queue/dsn.h"

/* Where a mailbox lies in the input. */
struct mailbox_span {
	const char *local;
	const char *local_end;
	const char *domain;
	const char *domain_end;
	bool quoted;
	bool literal;
};

/* One "keyword[=value]" from the parameter list; val is NULL without "=". */
struct esmtp_param {
	const char *key;
	size_t keylen;
	const char *val;
	size_t vallen;
};

struct param_rule {
	const char *keyword;
	/* Sets *error_r to a static sentence for some refusals. */
	enum smtp_parse_status (*apply)(const struct esmtp_param *pr,
	    void *out, const char **error_r);
};

static bool
is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_let_dig(unsigned char c)
{
	return is_alpha(c) || is_digit(c);
}

static bool
is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* RFC 5322 atext, plus every non-ASCII octet (RFC 6531 UTF8-non-ascii;
 * whether they form valid UTF-8 is checked once over the whole path). */
static bool
is_atext(unsigned char c)
{
	if (c >= 0x80 || is_let_dig(c))
		return true;
	switch (c) {
	case '!': case '#': case '$': case '%': case '&': case '\'':
	case '*': case '+': case '-': case '/': case '=': case '?':
	case '^': case '_': case '`': case '{': case '|': case '}':
	case '~':
		return true;
	default:
		return false;
	}
}

/* qtextSMTP: printable ASCII but '"' and '\', plus non-ASCII. */
static bool
is_qtext(unsigned char c)
{
	if (c >= 0x80)
		return true;
	return c >= 32 && c <= 126 && c != '"' && c != '\\';
}

/* dcontent of a General-address-literal: printable but "[", "\", "]". */
static bool
is_dcontent(unsigned char c)
{
	return (c >= 33 && c <= 90) || (c >= 94 && c <= 126);
}

/* Real clients put underscores in their HELO names, never in domains of
 * mail addresses, so only HELO tolerates them. */
static bool
is_label_char(unsigned char c, bool helo)
{
	return is_let_dig(c) || c == '-' || c >= 0x80 || (helo && c == '_');
}

static bool
has_non_ascii(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] >= 0x80)
			return true;
	return false;
}

bool
smtp_valid_utf8(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	const unsigned char *end = p + n;

	while (p < end) {
		unsigned char c = *p;
		size_t len;
		uint32_t cp, min;

		if (c < 0x80) {
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3, cp = c & 0x0f, min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if ((size_t)(end - p) < len)
			return false;
		for (size_t i = 1; i < len; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		p += len;
	}
	return true;
}

/* ---- mailbox scanners: return the end of what they matched, or NULL --- */

static const char *
scan_dot_string(const char *p, const char *end)
{
	for (;;) {
		const char *atom = p;

		while (p < end && is_atext(*p))
			p++;
		if (p == atom)
			return NULL;
		if (p == end || *p != '.')
			return p;
		p++;
	}
}

/* p is at the opening quote. */
static const char *
scan_quoted_string(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		unsigned char c = *p;

		if (c == '"')
			return p + 1;
		if (c == '\\') {
			/* quoted-pairSMTP: backslash and %d32-126 */
			if (++p == end || (unsigned char)*p < 32 ||
			    (unsigned char)*p > 126)
				return NULL;
		} else if (!is_qtext(c)) {
			return NULL;
		}
	}
	return NULL;
}

/* sub-domain *("." sub-domain); a trailing dot leaves an empty label. */
static const char *
scan_domain(const char *p, const char *end, bool helo)
{
	for (;;) {
		const char *label = p;

		while (p < end && is_label_char(*p, helo))
			p++;
		if (p == label || p - label > 63)
			return NULL;
		if (*label == '-' || p[-1] == '-')
			return NULL;
		if (p == end || *p != '.')
			return p;
		p++;
	}
}

static bool
valid_ip(int af, const char *p, size_t n)
{
	char tmp[INET6_ADDRSTRLEN];
	unsigned char addr[sizeof(struct in6_addr)];

	if (n >= sizeof(tmp))
		return false;
	memcpy(tmp, p, n);
	tmp[n] = '\0';
	return inet_pton(af, tmp, addr) == 1;
}

/* Standardized-tag = Ldh-str, taken to start with a Let-dig too. */
static bool
valid_ldh_tag(const char *p, size_t n)
{
	if (n == 0 || !is_let_dig(p[0]) || !is_let_dig(p[n - 1]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!is_let_dig(p[i]) && p[i] != '-')
			return false;
	return true;
}

/* The text between the brackets: IPv4, "IPv6:" addr, or tag ":" content. */
static bool
valid_literal_content(const char *p, size_t n)
{
	const char *colon = memchr(p, ':', n);
	size_t taglen;

	if (colon == NULL)
		return valid_ip(AF_INET, p, n);
	taglen = (size_t)(colon - p);
	if (!valid_ldh_tag(p, taglen) || taglen + 1 == n)
		return false;
	if (taglen == 4 && strncasecmp(p, "IPv6", 4) == 0)
		return valid_ip(AF_INET6, colon + 1, n - taglen - 1);
	return true;
}

/* p is at "[". */
static const char *
scan_address_literal(const char *p, const char *end)
{
	const char *content = p + 1;
	const char *q = content;

	while (q < end && is_dcontent(*q))
		q++;
	if (q == end || *q != ']' || q == content)
		return NULL;
	if (!valid_literal_content(content, (size_t)(q - content)))
		return NULL;
	return q + 1;
}

/* Local-part "@" ( Domain / address-literal ); *endp is set past it. */
static bool
scan_mailbox(const char *p, const char *end, struct mailbox_span *m,
    const char **endp)
{
	m->local = p;
	m->quoted = p < end && *p == '"';
	p = m->quoted ? scan_quoted_string(p, end) : scan_dot_string(p, end);
	if (p == NULL || p == end || *p != '@')
		return false;
	/* An empty local part ("") can never name anyone. */
	if (m->quoted && p - m->local == 2)
		return false;
	m->local_end = p++;
	m->domain = p;
	m->literal = p < end && *p == '[';
	if (m->literal)
		p = scan_address_literal(p, end);
	else
		p = scan_domain(p, end, false);
	if (p == NULL)
		return false;
	m->domain_end = p;
	*endp = p;
	return true;
}

/* A-d-l ":" where p is at the first "@"; the route is checked, not kept. */
static const char *
scan_source_route(const char *p, const char *end)
{
	for (;;) {
		if (p == end || *p != '@')
			return NULL;
		p = scan_domain(p + 1, end, false);
		if (p == NULL || p == end)
			return NULL;
		if (*p == ':')
			return p + 1;
		if (*p != ',')
			return NULL;
		p++;
	}
}

/* ---- filling struct smtp_address ------------------------------------ */

static void
copy_str(char *dst, const char *src, size_t n)
{
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Undoes the quoting; the result is never longer than the quoted form. */
static void
dequote_local(char *dst, const char *p, const char *end)
{
	for (p++, end--; p < end; p++) {
		if (*p == '\\')
			p++;
		*dst++ = *p;
	}
	*dst = '\0';
}

/* path_len counts the whole path as sent, angle brackets included. */
static enum smtp_parse_status
address_fill(struct smtp_address *a, const struct mailbox_span *m,
    size_t path_len)
{
	size_t llen = (size_t)(m->local_end - m->local);
	size_t dlen = (size_t)(m->domain_end - m->domain);
	size_t tlen = (size_t)(m->domain_end - m->local);

	if (llen > SMTP_LOCAL_MAX || dlen > SMTP_DOMAIN_MAX ||
	    path_len > SMTP_PATH_MAX)
		return SMTP_PARSE_TOO_LONG;
	if (!smtp_valid_utf8(m->local, tlen))
		return SMTP_PARSE_BAD_ADDRESS;
	copy_str(a->text, m->local, tlen);
	copy_str(a->domain, m->domain, dlen);
	if (m->quoted)
		dequote_local(a->local, m->local, m->local_end);
	else
		copy_str(a->local, m->local, llen);
	a->is_literal = m->literal;
	a->utf8 = has_non_ascii(m->local, tlen);
	return SMTP_PARSE_OK;
}

static void
address_set_postmaster(struct smtp_address *a, const char *sent)
{
	copy_str(a->text, sent, 10);
	copy_str(a->local, "postmaster", 10);
	a->domain[0] = '\0';
	a->is_postmaster = true;
}

/* ---- paths ------------------------------------------------------------ */

/* p is at "<". *rest is set past ">". */
static enum smtp_parse_status
parse_bracketed_path(const char *p, bool rcpt, struct smtp_address *a,
    const char **rest)
{
	const char *open = p;
	const char *end = p + strlen(p);
	struct mailbox_span m;

	p++;
	if (*p == '>') {
		*rest = p + 1;
		return rcpt ? SMTP_PARSE_NULL_PATH : SMTP_PARSE_OK;
	}
	if (rcpt && strncasecmp(p, "postmaster>", 11) == 0) {
		address_set_postmaster(a, p);
		*rest = p + 11;
		return SMTP_PARSE_OK;
	}
	if (*p == '@') {
		const char *route = p;

		p = scan_source_route(p, end);
		if (p == NULL || !smtp_valid_utf8(route, (size_t)(p - route)))
			return SMTP_PARSE_BAD_ADDRESS;
	}
	if (!scan_mailbox(p, end, &m, &p))
		return SMTP_PARSE_BAD_ADDRESS;
	if (*p != '>')
		return *p == '\0' ? SMTP_PARSE_SYNTAX : SMTP_PARSE_BAD_ADDRESS;
	*rest = p + 1;
	return address_fill(a, &m, (size_t)(*rest - open));
}

/* Without brackets the path runs to the first space, so it cannot hold
 * one; it is measured as if it had its brackets. */
static enum smtp_parse_status
parse_bare_path(const char *p, bool rcpt, struct smtp_address *a,
    const char **rest)
{
	const char *end = p + strcspn(p, " ");
	struct mailbox_span m;
	const char *q;

	if (end == p)
		return SMTP_PARSE_SYNTAX;
	*rest = end;
	if (rcpt && end - p == 10 && strncasecmp(p, "postmaster", 10) == 0) {
		address_set_postmaster(a, p);
		return SMTP_PARSE_OK;
	}
	if (!scan_mailbox(p, end, &m, &q) || q != end)
		return SMTP_PARSE_BAD_ADDRESS;
	return address_fill(a, &m, (size_t)(end - p) + 2);
}

/* arg is " FROM:..." or " TO:..."; returns what follows the colon. */
static const char *
skip_command_word(const char *arg, const char *word)
{
	size_t n = strlen(word);

	if (*arg != ' ')
		return NULL;
	while (*arg == ' ')
		arg++;
	if (strncasecmp(arg, word, n) != 0)
		return NULL;
	return arg + n;
}

static enum smtp_parse_status
parse_path(const char *arg, const char *word, bool rcpt,
    struct smtp_address *a, const char **rest)
{
	const char *p = skip_command_word(arg, word);
	enum smtp_parse_status st;

	if (p == NULL)
		return SMTP_PARSE_SYNTAX;
	while (*p == ' ')
		p++;
	if (*p == '<')
		st = parse_bracketed_path(p, rcpt, a, rest);
	else
		st = parse_bare_path(p, rcpt, a, rest);
	if (st != SMTP_PARSE_OK)
		return st;
	p = *rest;
	if (*p == '\0' || *p == ' ')
		return SMTP_PARSE_OK;
	return is_ctl(*p) ? SMTP_PARSE_BAD_PARAM : SMTP_PARSE_SYNTAX;
}

/* ---- ESMTP parameters ------------------------------------------------- */

static bool
is_param_value_char(unsigned char c)
{
	return (c >= 33 && c <= 126 && c != '=') || c >= 0x80;
}

/* Reads one esmtp-param at *pp; leaves *pp at the following space or NUL. */
static enum smtp_parse_status
param_scan(const char **pp, struct esmtp_param *pr)
{
	const char *p = *pp;
	bool non_ascii = false;

	pr->key = p;
	pr->val = NULL;
	pr->vallen = 0;
	if (!is_let_dig(*p))
		return SMTP_PARSE_BAD_PARAM;
	while (is_let_dig(*p) || *p == '-')
		p++;
	pr->keylen = (size_t)(p - pr->key);
	if (*p == '=') {
		pr->val = ++p;
		while (is_param_value_char(*p))
			non_ascii |= (unsigned char)*p++ >= 0x80;
		pr->vallen = (size_t)(p - pr->val);
		if (pr->vallen == 0)
			return SMTP_PARSE_BAD_PARAM;
		if (non_ascii && !smtp_valid_utf8(pr->val, pr->vallen))
			return SMTP_PARSE_BAD_PARAM;
	}
	if (*p != '\0' && *p != ' ')
		return SMTP_PARSE_BAD_PARAM;
	*pp = p;
	return SMTP_PARSE_OK;
}

static bool
word_is(const char *p, size_t n, const char *word)
{
	return strlen(word) == n && strncasecmp(p, word, n) == 0;
}

static bool
is_upper_hex(unsigned char c)
{
	return is_digit(c) || (c >= 'A' && c <= 'F');
}

/* RFC 3461 4: xchar is %d33-126 but "+" and "="; "+" starts a hexchar. */
static bool
valid_xtext(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];

		if (c == '+') {
			if (n - i < 3 || !is_upper_hex(p[i + 1]) ||
			    !is_upper_hex(p[i + 2]))
				return false;
			i += 2;
		} else if (c < 33 || c > 126 || c == '=') {
			return false;
		}
	}
	return true;
}

/* The value, when present, must be valid xtext of at most max octets. */
static enum smtp_parse_status
param_xtext(const struct esmtp_param *pr, char *dst, size_t max)
{
	if (pr->val == NULL || pr->vallen > max ||
	    !valid_xtext(pr->val, pr->vallen))
		return SMTP_PARSE_BAD_PARAM;
	copy_str(dst, pr->val, pr->vallen);
	return SMTP_PARSE_OK;
}

static enum smtp_parse_status
param_size(const struct esmtp_param *pr, void *out,
    const char **error_r)
{
	struct smtp_mail_args *ma = out;
	uint64_t v = 0;

	(void)error_r;
	if (pr->val == NULL || pr->vallen > 20)
		return SMTP_PARSE_BAD_PARAM;
	/* RFC 1870: 1*20DIGIT. Values past 2^64-1 are well-formed and
	 * simply too big: saturate, so the caller answers 552. */
	for (size_t i = 0; i < pr->vallen; i++) {
		unsigned d = (unsigned)(pr->val[i] - '0');

		if (!is_digit(pr->val[i]))
			return SMTP_PARSE_BAD_PARAM;
		v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
	}
	ma->has_size = true;
	ma->size = v;
	return SMTP_PARSE_OK;
}

static enum smtp_parse_status
param_body(const struct esmtp_param *pr, void *out,
    const char **error_r)
{
	struct smtp_mail_args *ma = out;

	(void)error_r;
	if (pr->val == NULL)
		return SMTP_PARSE_BAD_PARAM;
	if (word_is(pr->val, pr->vallen, "7BIT"))
		ma->body = SMTP_BODY_7BIT;
	else if (word_is(pr->val, pr->vallen, "8BITMIME"))
		ma->body = SMTP_BODY_8BITMIME;
	else
		return SMTP_PARSE_BAD_PARAM;
	return SMTP_PARSE_OK;
}

static enum smtp_parse_status
param_smtputf8(const struct esmtp_param *pr, void *out,
    const char **error_r)
{
	struct smtp_mail_args *ma = out;

	(void)error_r;
	if (pr->val != NULL)
		return SMTP_PARSE_BAD_PARAM;
	ma->smtputf8 = true;
	return SMTP_PARSE_OK;
}

/* The DSN parameters (RFC 3461 4) are checked by queue/dsn.h, whose
 * sentences say what is wrong; a missing value is an empty one there. */
static const char *
param_value(const struct esmtp_param *pr, size_t *n)
{
	*n = pr->val ? pr->vallen : 0;
	return pr->val ? pr->val : "";
}

static enum smtp_parse_status
param_ret(const struct esmtp_param *pr, void *out,
    const char **error_r)
{
	struct smtp_mail_args *ma = out;
	enum dsn_ret ret;
	size_t n;
	const char *v = param_value(pr, &n);

	if (dsn_ret_parse(v, n, &ret, error_r) < 0)
		return SMTP_PARSE_BAD_PARAM;
	ma->ret = ret == DSN_RET_HDRS ? SMTP_RET_HDRS : SMTP_RET_FULL;
	return SMTP_PARSE_OK;
}

static enum smtp_parse_status
param_envid(const struct esmtp_param *pr, void *out,
    const char **error_r)
{
	struct smtp_mail_args *ma = out;
	size_t n;
	const char *v = param_value(pr, &n);

	_Static_assert(sizeof(ma->envid) == DSN_ENVID_MAX + 1,
	    "ENVID buffer of smtp_mail_args");
	if (dsn_envid_parse(v, n, ma->envid, error_r) < 0)
		return SMTP_PARSE_BAD_PARAM;
	return SMTP_PARSE_OK;
}

static enum smtp_parse_status
param_auth(const struct esmtp_param *pr, void *out,
    const char **error_r)
{
	struct smtp_mail_args *ma = out;

	(void)error_r;
	return param_xtext(pr, ma->auth, sizeof(ma->auth) - 1);
}

static enum smtp_parse_status
param_notify(const struct esmtp_param *pr, void *out,
    const char **error_r)
{
	struct smtp_rcpt_args *ra = out;
	size_t n;
	const char *v = param_value(pr, &n);

	_Static_assert(SMTP_NOTIFY_NEVER == DSN_NOTIFY_NEVER &&
	    SMTP_NOTIFY_SUCCESS == DSN_NOTIFY_SUCCESS &&
	    SMTP_NOTIFY_FAILURE == DSN_NOTIFY_FAILURE &&
	    SMTP_NOTIFY_DELAY == DSN_NOTIFY_DELAY, "NOTIFY bits");
	if (dsn_notify_parse(v, n, &ra->notify, error_r) < 0)
		return SMTP_PARSE_BAD_PARAM;
	return SMTP_PARSE_OK;
}

/* Checked here with SMTPUTF8 allowed (MAIL's SMTPUTF8 is not known to
 * this parser) and kept as sent; see smtp_rcpt_args. */
static enum smtp_parse_status
param_orcpt(const struct esmtp_param *pr, void *out,
    const char **error_r)
{
	struct smtp_rcpt_args *ra = out;
	struct buf stored = BUF_INIT;
	size_t n;
	const char *v = param_value(pr, &n);

	_Static_assert(sizeof(ra->orcpt) == DSN_ORCPT_MAX + 1,
	    "ORCPT buffer of smtp_rcpt_args");
	int r = dsn_orcpt_parse(v, n, true, &stored, error_r);
	buf_free(&stored);
	if (r < 0)
		return SMTP_PARSE_BAD_PARAM;
	copy_str(ra->orcpt, v, n);
	return SMTP_PARSE_OK;
}

static const struct param_rule mail_params[] = {
	{ "SIZE", param_size },
	{ "BODY", param_body },
	{ "SMTPUTF8", param_smtputf8 },
	{ "RET", param_ret },
	{ "ENVID", param_envid },
	{ "AUTH", param_auth },
	{ NULL, NULL }
};

static const struct param_rule rcpt_params[] = {
	{ "NOTIFY", param_notify },
	{ "ORCPT", param_orcpt },
	{ NULL, NULL }
};

/* p is at a space or at the end, right after the path. */
static enum smtp_parse_status
parse_params(const char *p, const struct param_rule *rules, void *out,
    const char **error_r)
{
	unsigned seen = 0;

	*error_r = NULL;
	for (;;) {
		struct esmtp_param pr;
		const struct param_rule *r;
		enum smtp_parse_status st;

		while (*p == ' ')
			p++;
		if (*p == '\0')
			return SMTP_PARSE_OK;
		if ((st = param_scan(&p, &pr)) != SMTP_PARSE_OK)
			return st;
		for (r = rules; r->keyword != NULL; r++)
			if (word_is(pr.key, pr.keylen, r->keyword))
				break;
		if (r->keyword == NULL)
			return SMTP_PARSE_UNKNOWN_PARAM;
		if (seen & (1u << (r - rules))) {
			*error_r = "A parameter may be given only once";
			return SMTP_PARSE_BAD_PARAM;
		}
		seen |= 1u << (r - rules);
		if ((st = r->apply(&pr, out, error_r)) != SMTP_PARSE_OK)
			return st;
	}
}

/* ---- public ------------------------------------------------------------ */

enum smtp_parse_status
smtp_parse_mail(const char *arg, struct smtp_mail_args *out)
{
	const char *rest;
	enum smtp_parse_status st;

	memset(out, 0, sizeof(*out));
	st = parse_path(arg, "FROM:", false, &out->from, &rest);
	if (st != SMTP_PARSE_OK)
		return st;
	return parse_params(rest, mail_params, out, &out->param_error);
}

enum smtp_parse_status
smtp_parse_rcpt(const char *arg, struct smtp_rcpt_args *out)
{
	const char *rest;
	enum smtp_parse_status st;

	memset(out, 0, sizeof(*out));
	st = parse_path(arg, "TO:", true, &out->to, &rest);
	if (st != SMTP_PARSE_OK)
		return st;
	return parse_params(rest, rcpt_params, out, &out->param_error);
}

enum smtp_parse_status
smtp_parse_mailbox(const char *s, struct smtp_address *out)
{
	const char *end = s + strlen(s);
	struct mailbox_span m;
	const char *q;

	memset(out, 0, sizeof(*out));
	if (!scan_mailbox(s, end, &m, &q) || q != end)
		return SMTP_PARSE_BAD_ADDRESS;
	return address_fill(out, &m, (size_t)(end - s) + 2);
}

bool
smtp_valid_helo(const char *s)
{
	size_t n = strnlen(s, SMTP_DOMAIN_MAX + 1);
	const char *end = s + n;

	if (n == 0 || n > SMTP_DOMAIN_MAX)
		return false;
	if (*s == '[')
		return scan_address_literal(s, end) == end;
	/* Some clients send their bare IPv4 address. */
	if (is_digit(*s) && valid_ip(AF_INET, s, n))
		return true;
	return scan_domain(s, end, true) == end && smtp_valid_utf8(s, n);
}

const char *
smtp_parse_status_text(enum smtp_parse_status st)
{
	switch (st) {
	case SMTP_PARSE_OK:
		return "OK";
	case SMTP_PARSE_SYNTAX:
		return "Syntax error in parameters";
	case SMTP_PARSE_BAD_ADDRESS:
		return "Bad address syntax";
	case SMTP_PARSE_TOO_LONG:
		return "Address too long";
	case SMTP_PARSE_NULL_PATH:
		return "Null recipient not allowed";
	case SMTP_PARSE_UNKNOWN_PARAM:
		return "Unknown parameter";
	case SMTP_PARSE_BAD_PARAM:
		return "Bad parameter value";
	}
	return "Unknown error";
}
