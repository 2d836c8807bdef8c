/* Small string, number, time and identifier helpers. */
#include "core/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/rand.h>

#include "core/log.h"

char *
str_lower(char *s)
{
	for (char *p = s; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return s;
}

bool
str_iequal(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

const char *
str_iprefix(const char *s, const char *prefix)
{
	size_t n = strlen(prefix);
	if (strncasecmp(s, prefix, n) != 0)
		return NULL;
	return s + n;
}

int
str_copy(char *dst, const char *src, size_t n)
{
	size_t len = strlen(src);
	if (n == 0)
		return -1;
	if (len >= n) {
		memcpy(dst, src, n - 1);
		dst[n - 1] = '\0';
		return -1;
	}
	memcpy(dst, src, len + 1);
	return 0;
}

int
parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (*s == '\0')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		unsigned d = (unsigned)(*s - '0');
		if (v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int
parse_size(const char *s, uint64_t *out)
{
	char digits[32];
	size_t n = strlen(s);
	uint64_t mult = 1, v;

	if (n == 0 || n >= sizeof(digits))
		return -1;
	memcpy(digits, s, n + 1);
	switch (toupper((unsigned char)digits[n - 1])) {
	case 'K': mult = 1024ULL; break;
	case 'M': mult = 1024ULL * 1024; break;
	case 'G': mult = 1024ULL * 1024 * 1024; break;
	default: break;
	}
	if (mult != 1)
		digits[n - 1] = '\0';
	if (parse_uint(digits, UINT64_MAX / mult, &v) < 0)
		return -1;
	*out = v * mult;
	return 0;
}

void
format_rfc5322_date(time_t t, char *out, size_t n)
{
	struct tm tm;
	localtime_r(&t, &tm);
	if (strftime(out, n, "%a, %d %b %Y %H:%M:%S %z", &tm) == 0 && n)
		out[0] = '\0';
}

void
make_id(char out[17])
{
	unsigned char r[8];
	static const char hex[] = "0123456789abcdef";

	if (RAND_bytes(r, sizeof(r)) != 1)
		fatalx("RAND_bytes failed");
	for (size_t i = 0; i < sizeof(r); i++) {
		out[2 * i] = hex[r[i] >> 4];
		out[2 * i + 1] = hex[r[i] & 15];
	}
	out[16] = '\0';
}

uint64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
