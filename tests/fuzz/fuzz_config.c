/* libFuzzer harness for the configuration file: config_load, then
 * config_validate, then config_free. config_load reads a path, so each
 * input is written to one temporary file first. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char conf_path[] = "/tmp/correo-fuzz-config-XXXXXX";
static int conf_fd = -1;

static void
fuzz_config_cleanup(void)
{
	if (conf_fd >= 0)
		unlink(conf_path);
}

static int
fuzz_config_write(const uint8_t *data, size_t size)
{
	if (conf_fd < 0) {
		if ((conf_fd = mkstemp(conf_path)) < 0)
			return -1;
		atexit(fuzz_config_cleanup);
	}
	if (ftruncate(conf_fd, 0) < 0)
		return -1;
	for (size_t off = 0; off < size;) {
		ssize_t n = pwrite(conf_fd, data + off, size - off,
		    (off_t)off);
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg;
	char *err = NULL;

	if (fuzz_config_write(data, size) < 0)
		abort();
	config_init_defaults(&cfg);
	if (config_load(&cfg, conf_path, &err) == 0) {
		if (err != NULL)
			abort();	/* success never leaves a message */
		if (config_validate(&cfg, &err) < 0 && err == NULL)
			abort();
	} else if (err == NULL) {
		abort();		/* failure always explains itself */
	}
	free(err);
	config_free(&cfg);
	return 0;
}
