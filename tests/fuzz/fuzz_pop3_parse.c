/* libFuzzer: the POP3 command parser over arbitrary lines. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pop3/pop3_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size + 1);
	struct pop3_command c;
	uint32_t n, m;

	memcpy(line, data, size);
	line[size] = '\0';
	if (pop3_parse_command(line, &c)) {
		size_t k = strlen(c.keyword);
		if (k < 3 || k > POP3_KEYWORD_MAX)
			abort();
		if (c.args[0] != '\0' &&
		    (c.args < line || c.args > line + strlen(line)))
			abort();
		if (pop3_parse_msgno(c.args, &n) && n == 0)
			abort();
		if (pop3_parse_two(c.args, &n, &m) && n == 0)
			abort();
	}
	free(line);
	return 0;
}
