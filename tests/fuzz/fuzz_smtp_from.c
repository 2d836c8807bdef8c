/* libFuzzer: From: extraction over arbitrary header sections. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_from.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy so ASan sees any read past the end. */
	char *h = malloc(size ? size : 1);
	struct strlist out = STRLIST_INIT;

	memcpy(h, data, size);
	int fields = smtp_from_addresses(h, size, &out);
	if (fields < 0 || (fields == 0 && out.n != 0))
		abort();
	for (size_t i = 0; i < out.n; i++)
		if (strlen(out.v[i]) > size)
			abort();
	strlist_free(&out);
	free(h);
	return 0;
}
