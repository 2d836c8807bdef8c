/* correo: argument dispatch only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "cli/cli.h"
#include "cli/queue_cmd.h"
#include "cli/serve.h"
#include "core/config.h"
#include "core/log.h"
#include "core/version.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: correo [-c FILE] [-v] COMMAND [ARGS]\n"
	    "\n"
	    "  serve                         run in the foreground\n"
	    "  check-config                  check the configuration\n"
	    "  user add ADDRESS [--password-stdin]\n"
	    "  user del|passwd ADDRESS [--password-stdin]\n"
	    "  user list\n"
	    "  domain add|del DOMAIN ; domain list\n"
	    "  alias add ADDRESS TARGET[,TARGET...] ; alias del ADDRESS ;"
	    " alias list\n"
	    "  odmr add DOMAIN USER ; odmr del DOMAIN ; odmr list\n"
	    "  queue list|show ID|flush [ID]|delete ID\n"
	    "  version\n"
	    "\n"
	    "Without -c, the embedded default runs on loopback with data in"
	    " ./var.\n"
	    "See correo(8) and correo.conf(5).\n");
}

static int
load_config(struct config *cfg, const char *path)
{
	char *err = NULL;

	if (path == NULL) {
		config_init_embedded(cfg);
		return 0;
	}
	config_init_defaults(cfg);
	if (config_load(cfg, path, &err) < 0) {
		fprintf(stderr, "correo: %s\n", err);
		free(err);
		config_free(cfg);
		return -1;
	}
	return 0;
}

static int
dispatch(struct config *cfg, int verbose, int argc, char **argv)
{
	const char *cmd = argv[0];
	int wants_help = argc > 1 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0);

	if (strcmp(cmd, "serve") == 0 || strcmp(cmd, "check-config") == 0) {
		if (wants_help) {
			printf("usage: correo [-c FILE] %s\n", cmd);
			return 0;
		}
		if (argc > 1) {
			fprintf(stderr, "usage: correo [-c FILE] %s\n", cmd);
			return 2;
		}
		return cmd[0] == 's' ? serve_main(cfg, verbose) :
		    check_config_main(cfg);
	}
	if (strcmp(cmd, "user") == 0)
		return cli_user(cfg, argc, argv);
	if (strcmp(cmd, "domain") == 0)
		return cli_domain(cfg, argc, argv);
	if (strcmp(cmd, "alias") == 0)
		return cli_alias(cfg, argc, argv);
	if (strcmp(cmd, "odmr") == 0)
		return cli_odmr(cfg, argc, argv);
	if (strcmp(cmd, "queue") == 0)
		return cli_queue(cfg, argc, argv);
	fprintf(stderr, "correo: unknown command \"%s\"\n", cmd);
	usage(stderr);
	return 2;
}

int
main(int argc, char **argv)
{
	const char *path = NULL;
	int verbose = 0, i = 1;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strcmp(argv[i], "-v") == 0)
			verbose = 1;
		else if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("correo %s\n", CORREO_VERSION);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[i], "version") == 0) {
		printf("correo %s\n", CORREO_VERSION);
		return 0;
	}
	log_init("correo", verbose);
	/* Every IMAP session keeps an SQLite connection open: without these
	 * each one allocates a lookaside arena and 20 page-cache lines up
	 * front (about 170 KiB). Only possible before SQLite's first use. */
	sqlite3_config(SQLITE_CONFIG_LOOKASIDE, 0, 0);
	sqlite3_config(SQLITE_CONFIG_PAGECACHE, NULL, 0, 0);
	struct config cfg;
	if (load_config(&cfg, path) < 0)
		return 1;
	int r = dispatch(&cfg, verbose, argc - i, argv + i);
	config_free(&cfg);
	return r;
}
