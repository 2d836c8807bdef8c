/* libFuzzer: the MTA-STS policy parser, TXT record parser and MX pattern
 * matching on arbitrary policy files and records (RFC 8461). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/mta_sts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_policy(const struct mta_sts_policy *p)
{
	if (p->max_age > MTA_STS_MAX_AGE || p->nmx > MTA_STS_MAX_MX ||
	    (p->mode != MTA_STS_NONE && p->nmx == 0))
		abort();
	for (size_t i = 0; i < p->nmx; i++) {
		const char *m = p->mx[i];
		if (m[0] == '\0' || strlen(m) > 255)
			abort();
		/* a pattern matches itself (minus its wildcard label) */
		if (m[0] != '*' && !mta_sts_mx_matches(p, m))
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy so ASan sees any read past the end. */
	char *copy = malloc(size ? size : 1);
	struct mta_sts_policy p;
	const char *why = NULL;
	char id[MTA_STS_ID_MAX + 1];

	memcpy(copy, data, size);
	if (mta_sts_parse_policy(copy, size, &p, &why) == 0) {
		check_policy(&p);
		mta_sts_policy_free(&p);
	} else if (why == NULL || p.mx != NULL) {
		abort();
	}
	free(copy);
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	if (mta_sts_parse_txt(text, id) == 0 &&
	    (id[0] == '\0' || strlen(id) > MTA_STS_ID_MAX))
		abort();
	struct mta_sts_policy any = { .mode = MTA_STS_ENFORCE };
	char *pats[] = { "*.example.org", "mx.example.org" };
	any.mx = pats;
	any.nmx = 2;
	(void)mta_sts_mx_matches(&any, text);
	free(text);
	return 0;
}
