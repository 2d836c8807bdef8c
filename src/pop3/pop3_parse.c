/* POP3 command syntax. */
#include "pop3/pop3_parse.h"

#include <string.h>

bool
pop3_parse_command(const char *line, struct pop3_command *out)
{
	size_t n = 0;

	while (n < POP3_KEYWORD_MAX + 1 && line[n] != '\0' && line[n] != ' ') {
		char c = line[n];
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (c < 'A' || c > 'Z')
			return false;
		out->keyword[n++] = c;
	}
	if (n < 3 || n > POP3_KEYWORD_MAX)
		return false;
	out->keyword[n] = '\0';
	if (line[n] == '\0') {
		out->args = "";
		return true;
	}
	out->args = line + n + 1;	/* line[n] is the single space */
	return true;
}

/* Parses digits up to the end or a space; *end gets where it stopped. */
static bool
pop3_number(const char *s, uint32_t *out, const char **end)
{
	uint64_t v = 0;
	size_t i = 0;

	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > UINT32_MAX || i >= 10)
			return false;
	}
	if (i == 0)
		return false;
	*out = (uint32_t)v;
	*end = s + i;
	return true;
}

bool
pop3_parse_msgno(const char *s, uint32_t *out)
{
	const char *end;
	return pop3_number(s, out, &end) && *end == '\0' && *out > 0;
}

bool
pop3_parse_two(const char *s, uint32_t *n, uint32_t *m)
{
	const char *end;
	if (!pop3_number(s, n, &end) || *n == 0 || *end != ' ')
		return false;
	return pop3_number(end + 1, m, &end) && *end == '\0';
}
