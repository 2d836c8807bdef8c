/* libFuzzer harness for odmr_atrn_parse (src/odmr/odmr_atrn.c): the
 * input is what follows "ATRN" on a command line. The session refuses a
 * line with a NUL before any parser sees it, so the input ends at its
 * first NUL here too.
 *
 * Checks: the result agrees with a second, naive reading of the grammar
 * (split on commas, trim spaces); every name kept is 1 to 255 octets of
 * [a-z0-9._-], lowercase, unique and taken from the input; there are at
 * most ODMR_ATRN_MAX_DOMAINS; a second parse gives the same; and the
 * names joined again by commas parse to themselves. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/strlist.h"
#include "odmr/odmr_atrn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
	    #cond); abort(); } } while (0)

static bool
name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

/* The grammar read the other way round: after one space, a comma list
 * of names, each with optional spaces around it. Returns the number of
 * names, or -1. */
static int
naive_count(const char *arg)
{
	if (*arg == '\0')
		return 0;
	if (*arg++ != ' ')
		return -1;
	int names = 0;
	for (;;) {
		const char *end = strchr(arg, ',');
		size_t len = end ? (size_t)(end - arg) : strlen(arg);
		while (len > 0 && *arg == ' ')
			arg++, len--;
		while (len > 0 && arg[len - 1] == ' ')
			len--;
		if (len == 0 || len > ODMR_ATRN_DOMAIN_MAX)
			return -1;
		for (size_t i = 0; i < len; i++)
			if (!name_char((unsigned char)arg[i]))
				return -1;
		if (++names > ODMR_ATRN_MAX_DOMAINS)
			return -1;
		if (end == NULL)
			return names;
		arg = end + 1;
	}
}

/* A name that was kept: its form, and that the input holds it. */
static void
check_name(const char *d, const char *arg)
{
	size_t n = strlen(d);

	CHECK(n >= 1 && n <= ODMR_ATRN_DOMAIN_MAX);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)d[i];
		CHECK(name_char(c) && !(c >= 'A' && c <= 'Z'));
		CHECK(c != ',' && c > 0x20 && c < 0x7f);
	}
	CHECK(strcasestr(arg, d) != NULL);
}

static bool
same_list(const struct strlist *a, const struct strlist *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]) != 0)
			return false;
	return true;
}

static void
check_round_trip(const struct strlist *l)
{
	struct buf text = BUF_INIT;
	struct strlist again = STRLIST_INIT;

	for (size_t i = 0; i < l->n; i++)
		buf_printf(&text, "%c%s", i ? ',' : ' ', l->v[i]);
	CHECK(odmr_atrn_parse(buf_cstr(&text), &again) == 0);
	CHECK(same_list(l, &again));
	strlist_free(&again);
	buf_free(&text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *arg = malloc(size + 1);
	struct strlist l = STRLIST_INIT, again = STRLIST_INIT;

	memcpy(arg, data, size);
	arg[size] = '\0';
	int r = odmr_atrn_parse(arg, &l);
	int names = naive_count(arg);

	CHECK(r == 0 || r == -1);
	CHECK((r == 0) == (names >= 0));
	CHECK(l.n <= ODMR_ATRN_MAX_DOMAINS);
	for (size_t i = 0; i < l.n; i++) {
		check_name(l.v[i], arg);
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(l.v[i], l.v[j]) != 0);
	}
	if (r == 0) {
		CHECK(l.n <= (size_t)names);
		CHECK((l.n == 0) == (arg[0] == '\0'));
		check_round_trip(&l);
	}
	CHECK(odmr_atrn_parse(arg, &again) == r);
	CHECK(same_list(&l, &again));
	strlist_free(&again);
	strlist_free(&l);
	free(arg);
	return 0;
}
