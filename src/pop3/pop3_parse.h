/* POP3 command syntax (RFC 1939 3, RFC 2449). Pure: no I/O.
 * Untrusted input: every command line a POP3 client sends. */
#ifndef POP3_PARSE_H
#define POP3_PARSE_H

#include <stdbool.h>
#include <stdint.h>

#define POP3_KEYWORD_MAX 4

struct pop3_command {
	char keyword[POP3_KEYWORD_MAX + 1];	/* upper case */
	const char *args;	/* after the single space, "" when none */
};

/* Splits a line into keyword (3 or 4 letters, any case) and arguments.
 * Returns false for anything else (empty, digits, longer keywords). */
bool pop3_parse_command(const char *line, struct pop3_command *out);

/* A message number: 1 to 4294967295 in decimal, no sign, at most 10
 * digits ("007" is 7). Returns false on anything else. */
bool pop3_parse_msgno(const char *s, uint32_t *out);

/* "n" or "n m" (TOP): both numbers; m may be 0. false on bad syntax. */
bool pop3_parse_two(const char *s, uint32_t *n, uint32_t *m);

#endif
