/* Small helpers: strings, sizes, time, identifiers. */
#ifndef CORE_UTIL_H
#define CORE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ASCII lowercase in place; returns s. */
char *str_lower(char *s);
bool str_iequal(const char *a, const char *b);
/* Case-insensitive prefix test; returns the rest of s after prefix or NULL. */
const char *str_iprefix(const char *s, const char *prefix);
/* Copies src into dst of size n; returns -1 (dst truncated) if it did not fit. */
int str_copy(char *dst, const char *src, size_t n);

/* Parses "50M", "10k", "1G", "12345" into bytes; -1 on error. */
int parse_size(const char *s, uint64_t *out);
/* Parses an unsigned decimal that fits in max; -1 on error. */
int parse_uint(const char *s, uint64_t max, uint64_t *out);

/* RFC 5322 date of t in local time, "Tue, 01 Dec 2026 08:29:30 +0000". */
void format_rfc5322_date(time_t t, char *out, size_t n);

/* A new random identifier of 16 lowercase hex digits (queue ids). */
void make_id(char out[17]);

/* Monotonic milliseconds. */
uint64_t now_ms(void);

#endif
