/* The queue subcommands. Untrusted input: none (operator's arguments;
 * envelope files are written by correo). */
#include "cli/queue_cmd.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "queue/queue.h"

#define QUEUE_USAGE "usage: correo [-c FILE] queue list | show ID | " \
	"flush [ID] | delete ID\n"

static int
queue_cmd_list(const struct config *cfg)
{
	struct strlist ids = STRLIST_INIT;
	struct queue_envelope env;
	char when[32];

	if (queue_list(cfg->data_dir, &ids) < 0) {
		fprintf(stderr, "correo: cannot read %s/queue\n",
		    cfg->data_dir);
		return 1;
	}
	for (size_t i = 0; i < ids.n; i++) {
		if (queue_read(cfg->data_dir, ids.v[i], &env) < 0)
			continue;
		struct tm tm;
		gmtime_r(&env.created, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		printf("%s %s %llu <%s>", env.id, when,
		    (unsigned long long)env.size, env.from);
		for (size_t k = 0; k < env.rcpts.n; k++)
			printf(" <%s>", env.rcpts.v[k]);
		printf("\n");
		queue_envelope_free(&env);
	}
	strlist_free(&ids);
	return 0;
}

static int
queue_cmd_show(const struct config *cfg, const char *id)
{
	struct queue_envelope env;
	if (queue_read(cfg->data_dir, id, &env) < 0) {
		fprintf(stderr, "correo: no queued message %s\n", id);
		return 1;
	}
	printf("id: %s\ncreated: %lld\nsize: %llu\nfrom: <%s>\n", env.id,
	    (long long)env.created, (unsigned long long)env.size, env.from);
	if (env.user)
		printf("user: %s\n", env.user);
	for (size_t k = 0; k < env.rcpts.n; k++)
		printf("rcpt: <%s> pending\n", env.rcpts.v[k]);
	queue_envelope_free(&env);
	return 0;
}

int
cli_queue(const struct config *cfg, int argc, char **argv)
{
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)) {
		fputs(QUEUE_USAGE, stdout);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "list") == 0)
		return queue_cmd_list(cfg);
	if (argc == 3 && strcmp(argv[1], "show") == 0)
		return queue_cmd_show(cfg, argv[2]);
	if (argc == 3 && strcmp(argv[1], "delete") == 0) {
		if (queue_delete(cfg->data_dir, argv[2]) < 0) {
			fprintf(stderr, "correo: no queued message %s\n",
			    argv[2]);
			return 1;
		}
		return 0;
	}
	if ((argc == 2 || argc == 3) && strcmp(argv[1], "flush") == 0) {
		fprintf(stderr, "correo: queue flush: outbound delivery is not "
		    "available in this version; messages wait in the queue\n");
		return 1;
	}
	fputs(QUEUE_USAGE, stderr);
	return 2;
}
