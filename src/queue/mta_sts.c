/* MTA-STS records and policies (RFC 8461 sections 3.1, 3.2 and 4.1).
 * Untrusted input: TXT records from DNS and policy files from the
 * policy host, both bounded by the caller (DNS_MAX_TXT records, and
 * MTA_STS_MAX_POLICY octets). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/util.h"
#include "core/xmalloc.h"
#include "queue/mta_sts.h"

#define STS_VERSION "v=STSv1"
#define STS_KEY_MAX 32

static bool
sts_is_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

static bool
sts_is_wsp(int c)
{
	return c == ' ' || c == '\t';
}

/* A field name of TXT records and policies: (ALPHA / DIGIT) then up to
 * 31 of ALPHA / DIGIT / "_" / "-" / ".". Returns its length, 0 if none. */
static size_t
sts_key_len(const char *s, size_t n)
{
	size_t i = 0;

	if (n == 0 || !sts_is_alnum((unsigned char)s[0]))
		return 0;
	for (i = 1; i < n && i < STS_KEY_MAX; i++) {
		int c = (unsigned char)s[i];
		if (!sts_is_alnum(c) && c != '_' && c != '-' && c != '.')
			break;
	}
	return i;
}

/* ---- the TXT record ---- */

/* sts-ext-value: 1*(%x21-3A / %x3C / %x3E-7E). */
static size_t
sts_txt_value_len(const char *s)
{
	size_t i = 0;

	while (s[i] >= 0x21 && s[i] <= 0x7e && s[i] != ';' && s[i] != '=')
		i++;
	return i;
}

/* One "name=value" field at *pp; sets id when it is the id. */
static int
sts_txt_field(const char **pp, char id[MTA_STS_ID_MAX + 1], bool *have_id)
{
	const char *p = *pp;
	size_t k = sts_key_len(p, strlen(p));
	size_t v;

	if (k == 0 || p[k] != '=')
		return -1;
	v = sts_txt_value_len(p + k + 1);
	if (v == 0)
		return -1;
	if (k == 2 && memcmp(p, "id", 2) == 0) {
		if (*have_id || v > MTA_STS_ID_MAX)
			return -1;
		for (size_t i = 0; i < v; i++)
			if (!sts_is_alnum((unsigned char)p[3 + i]))
				return -1;
		memcpy(id, p + 3, v);
		id[v] = '\0';
		*have_id = true;
	}
	*pp = p + k + 1 + v;
	return 0;
}

static bool
sts_txt_is_sts(const char *record)
{
	size_t n = strlen(STS_VERSION);

	return strncmp(record, STS_VERSION, n) == 0 &&
	    (record[n] == ';' || record[n] == '\0' || sts_is_wsp(record[n]));
}

int
mta_sts_parse_txt(const char *record, char id[MTA_STS_ID_MAX + 1])
{
	const char *p = record + strlen(STS_VERSION);
	bool have_id = false, fields = false;

	if (!sts_txt_is_sts(record))
		return -1;
	/* 1*(*WSP ";" *WSP sts-field) [";"] */
	for (;;) {
		while (sts_is_wsp(*p))
			p++;
		if (*p == '\0')
			break;
		if (*p++ != ';')
			return -1;
		while (sts_is_wsp(*p))
			p++;
		if (*p == '\0')
			break;		/* the optional final ";" */
		if (sts_txt_field(&p, id, &have_id) < 0)
			return -1;
		fields = true;
	}
	return fields && have_id ? 0 : -1;
}

int
mta_sts_txt_id(char *const *records, size_t n, char id[MTA_STS_ID_MAX + 1])
{
	const char *found = NULL;

	for (size_t i = 0; i < n; i++) {
		if (!sts_txt_is_sts(records[i]))
			continue;
		if (found != NULL)
			return -1;	/* several: as if none (3.1) */
		found = records[i];
	}
	return found != NULL ? mta_sts_parse_txt(found, id) : -1;
}

/* ---- the policy ---- */

void
mta_sts_policy_free(struct mta_sts_policy *p)
{
	for (size_t i = 0; i < p->nmx; i++)
		x_free(&p->mx[i]);
	x_free(&p->mx);
	memset(p, 0, sizeof(*p));
}

void
mta_sts_policy_copy(struct mta_sts_policy *out,
    const struct mta_sts_policy *p)
{
	*out = *p;
	out->mx = p->nmx ? x_calloc(p->nmx, sizeof(*out->mx)) : NULL;
	for (size_t i = 0; i < p->nmx; i++)
		out->mx[i] = x_strdup(p->mx[i]);
}

const char *
mta_sts_mode_name(enum mta_sts_mode m)
{
	switch (m) {
	case MTA_STS_TESTING:
		return "testing";
	case MTA_STS_ENFORCE:
		return "enforce";
	case MTA_STS_NONE:
		break;
	}
	return "none";
}

/* "[*.]label.label...": letters, digits and '-' in labels of 1 to 63
 * octets, at least two labels after a wildcard, 253 octets at most. */
static bool
sts_mx_pattern_ok(const char *v, size_t n)
{
	size_t label = 0, labels = 0;

	if (n >= 2 && v[0] == '*' && v[1] == '.') {
		v += 2;
		n -= 2;
	}
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)v[i];
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			labels++;
		} else if ((sts_is_alnum(c) || c == '-') && label < 63) {
			label++;
		} else {
			return false;
		}
	}
	return label > 0 && labels >= 1;
}

/* The value of one known field; *seen has a bit per field. */
static int
sts_policy_field(struct mta_sts_policy *p, const char *key, size_t klen,
    const char *v, size_t vlen, unsigned *seen, const char **error_r)
{
	static const char *const once[] = { "version", "mode", "max_age" };
	uint64_t age = 0;

	for (unsigned i = 0; i < 3; i++) {
		if (strlen(once[i]) != klen || memcmp(key, once[i], klen) != 0)
			continue;
		if (*seen & (1u << i)) {
			*error_r = "a field appears twice";
			return -1;
		}
		*seen |= 1u << i;
	}
	if (klen == 7 && memcmp(key, "version", 7) == 0) {
		if (vlen != 5 || memcmp(v, "STSv1", 5) != 0) {
			*error_r = "version is not STSv1";
			return -1;
		}
	} else if (klen == 4 && memcmp(key, "mode", 4) == 0) {
		if (vlen == 7 && memcmp(v, "enforce", 7) == 0)
			p->mode = MTA_STS_ENFORCE;
		else if (vlen == 7 && memcmp(v, "testing", 7) == 0)
			p->mode = MTA_STS_TESTING;
		else if (vlen == 4 && memcmp(v, "none", 4) == 0)
			p->mode = MTA_STS_NONE;
		else {
			*error_r = "unknown mode";
			return -1;
		}
	} else if (klen == 7 && memcmp(key, "max_age", 7) == 0) {
		if (vlen == 0 || vlen > 10) {
			*error_r = "bad max_age";
			return -1;
		}
		for (size_t i = 0; i < vlen; i++) {
			if (v[i] < '0' || v[i] > '9') {
				*error_r = "bad max_age";
				return -1;
			}
			age = age * 10 + (uint64_t)(v[i] - '0');
		}
		p->max_age = age > MTA_STS_MAX_AGE ? MTA_STS_MAX_AGE :
		    (unsigned)age;
	} else if (klen == 2 && memcmp(key, "mx", 2) == 0) {
		if (!sts_mx_pattern_ok(v, vlen) || p->nmx >= MTA_STS_MAX_MX) {
			*error_r = p->nmx >= MTA_STS_MAX_MX ? "too many mx "
			    "patterns" : "bad mx pattern";
			return -1;
		}
		p->mx = x_reallocarray(p->mx, p->nmx + 1, sizeof(*p->mx));
		p->mx[p->nmx] = x_strndup(v, vlen);
		str_lower(p->mx[p->nmx++]);
	}
	return 0;
}

/* One "key:" *WSP value *WSP line (without its end). */
static int
sts_policy_line(struct mta_sts_policy *p, const char *s, size_t n,
    unsigned *seen, const char **error_r)
{
	size_t k = sts_key_len(s, n), i;

	if (k == 0 || k >= n || s[k] != ':') {
		*error_r = "a line is not \"key: value\"";
		return -1;
	}
	for (i = k + 1; i < n && sts_is_wsp(s[i]); i++)
		;
	size_t end = n;
	while (end > i && sts_is_wsp(s[end - 1]))
		end--;
	for (size_t j = i; j < end; j++) {
		unsigned char c = (unsigned char)s[j];
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			*error_r = "a control character in a value";
			return -1;
		}
	}
	if (end == i) {
		*error_r = "an empty value";
		return -1;
	}
	return sts_policy_field(p, s, k, s + i, end - i, seen, error_r);
}

static int
sts_policy_lines(struct mta_sts_policy *p, const char *text, size_t len,
    const char **error_r)
{
	unsigned seen = 0;
	size_t i = 0;

	while (i < len) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - text) : len;
		size_t n = end - i;
		if (n > 0 && text[i + n - 1] == '\r')
			n--;
		if (n > 0 && sts_policy_line(p, text + i, n, &seen,
		    error_r) < 0)
			return -1;
		i = end + 1;
	}
	if ((seen & 7u) != 7u) {
		*error_r = "version, mode or max_age is missing";
		return -1;
	}
	if (p->mode != MTA_STS_NONE && p->nmx == 0) {
		*error_r = "no mx pattern";
		return -1;
	}
	return 0;
}

int
mta_sts_parse_policy(const char *text, size_t len, struct mta_sts_policy *p,
    const char **error_r)
{
	memset(p, 0, sizeof(*p));
	if (len > MTA_STS_MAX_POLICY) {
		*error_r = "the policy is too large";
		return -1;
	}
	if (memchr(text, '\0', len) != NULL) {
		*error_r = "a NUL octet in the policy";
		return -1;
	}
	if (sts_policy_lines(p, text, len, error_r) < 0) {
		mta_sts_policy_free(p);
		return -1;
	}
	return 0;
}

bool
mta_sts_mx_matches(const struct mta_sts_policy *p, const char *host)
{
	size_t hn = strlen(host);

	if (hn > 0 && host[hn - 1] == '.')
		hn--;
	for (size_t i = 0; i < p->nmx; i++) {
		const char *pat = p->mx[i];
		size_t pn = strlen(pat);
		if (pat[0] == '*') {
			/* "*.rest": exactly one label in front of ".rest" */
			const char *dot = memchr(host, '.', hn);
			if (dot != NULL && dot != host &&
			    (size_t)(host + hn - dot) == pn - 1 &&
			    strncasecmp(dot, pat + 1, pn - 1) == 0)
				return true;
		} else if (pn == hn && strncasecmp(host, pat, hn) == 0) {
			return true;
		}
	}
	return false;
}
