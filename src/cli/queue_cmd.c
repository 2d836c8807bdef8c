/* The queue subcommands. Untrusted input: none from the operator, but the
 * envelope files hold what SMTP clients and remote servers sent (cleaned
 * before it is printed). */
#include "cli/queue_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "queue/dsn.h"
#include "queue/queue.h"
#include "queue/scheduler.h"

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

/* "2026-01-01T00:00:00Z" for t. */
static void
queue_cmd_iso(time_t t, char *out, size_t n)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	if (strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, n, "%lld", (long long)t);
}

/* Prints "  name: value" with value made one clean line (envelope
 * strings came from clients and remote servers). */
static void
queue_cmd_field(const char *name, const char *value, size_t max)
{
	struct buf b = BUF_INIT;

	dsn_text_clean(value, strlen(value), true, max, &b);
	printf("  %s: %s\n", name, buf_cstr(&b));
	buf_free(&b);
}

static void
queue_cmd_show_orcpt(const char *stored)
{
	struct buf type = BUF_INIT, addr = BUF_INIT;
	const char *err;

	if (dsn_orcpt_decode(stored, strlen(stored), &type, &addr, &err) == 0)
		buf_printf(&type, ";%s", buf_cstr(&addr));
	else
		buf_puts(&type, stored);
	queue_cmd_field("orcpt", buf_cstr(&type), DSN_ORCPT_STORED_MAX);
	buf_free(&type);
	buf_free(&addr);
}

/* One recipient: "rcpt: <addr> pending|deferred", then what is known. */
static void
queue_cmd_show_rcpt(struct queue_envelope *env, size_t i)
{
	const struct dsn_rcpt *r = queue_envelope_state(env, i);
	char when[32];
	struct buf b = BUF_INIT;

	bool deferred = r->action == DSN_ACTION_DELAYED ||
	    r->last_attempt != 0;
	printf("rcpt: <%s> %s\n", env->rcpts.v[i], deferred ? "deferred" :
	    "pending");
	if (r->status[0] != '\0')
		queue_cmd_field("status", r->status, DSN_STATUS_MAX);
	if (r->smtp_code != 0)
		printf("  code: %d\n", r->smtp_code);
	if (r->remote_mta != NULL)
		queue_cmd_field("remote-mta", r->remote_mta, DSN_ADDR_MAX);
	if (r->diagnostic != NULL)
		queue_cmd_field("diagnostic", r->diagnostic, DSN_DIAG_MAX);
	if (r->last_attempt != 0) {
		queue_cmd_iso(r->last_attempt, when, sizeof(when));
		printf("  last-attempt: %s\n", when);
	}
	if (r->retry_until != 0) {
		queue_cmd_iso(r->retry_until, when, sizeof(when));
		printf("  retry-until: %s\n", when);
	}
	if (r->notify != 0) {
		dsn_notify_format(r->notify, &b);
		printf("  notify: %s\n", buf_cstr(&b));
	}
	if (r->orcpt != NULL)
		queue_cmd_show_orcpt(r->orcpt);
	buf_free(&b);
}

static void
queue_cmd_show_envid(const char *envid)
{
	struct buf dec = BUF_INIT;
	const char *err;

	if (dsn_xtext_decode(envid, strlen(envid), &dec, &err) < 0)
		buf_puts(&dec, envid);
	struct buf clean = BUF_INIT;
	dsn_text_clean(dec.data ? dec.data : "", dec.len, false,
	    DSN_ENVID_MAX, &clean);
	printf("envid: %s\n", buf_cstr(&clean));
	buf_free(&clean);
	buf_free(&dec);
}

static int
queue_cmd_show(const struct config *cfg, const char *id)
{
	struct queue_envelope env;
	char when[32];

	if (queue_read(cfg->data_dir, id, &env) < 0) {
		fprintf(stderr, "correo: no queued message %s\n", id);
		return 1;
	}
	printf("id: %s\ncreated: %lld\nsize: %llu\nfrom: <%s>\n", env.id,
	    (long long)env.created, (unsigned long long)env.size, env.from);
	if (env.user)
		printf("user: %s\n", env.user);
	if (env.ret != DSN_RET_UNSET)
		printf("ret: %s\n", dsn_ret_name(env.ret));
	if (env.envid)
		queue_cmd_show_envid(env.envid);
	for (size_t k = 0; k < env.rcpts.n; k++)
		queue_cmd_show_rcpt(&env, k);
	printf("attempts: %u\n", env.attempts);
	if (env.next_attempt == 0) {
		printf("next-attempt: now\n");
	} else {
		queue_cmd_iso(env.next_attempt, when, sizeof(when));
		printf("next-attempt: %s\n", when);
	}
	if (env.delay_notified)
		printf("delay-notified: yes\n");
	queue_envelope_free(&env);
	return 0;
}

/* Run as root, a rewritten file would become root's and the daemon,
 * running as [server] user, could no longer read it: give it the owner
 * of its folder. */
static void
queue_cmd_keep_owner(const char *path)
{
	char dir[PATH_MAX];
	struct stat st;
	const char *slash = strrchr(path, '/');

	if (geteuid() != 0 || slash == NULL ||
	    (size_t)(slash - path) >= sizeof(dir))
		return;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	if (stat(dir, &st) == 0 && lchown(path, st.st_uid, st.st_gid) < 0)
		fprintf(stderr, "correo: chown %s: %s\n", path,
		    strerror(errno));
}

/* Makes one queued message due now. 0, or -1 when it is not queued
 * (any more) or cannot be rewritten. */
static int
queue_cmd_flush_one(const struct config *cfg, const char *id)
{
	struct queue_envelope env;
	char path[PATH_MAX];
	int r = 0;

	if (queue_read(cfg->data_dir, id, &env) < 0)
		return -1;
	if (env.next_attempt != 0) {
		env.next_attempt = 0;
		/* The daemon removes a message (envelope first) once it is
		 * done: do not bring an envelope back without its message. */
		if (queue_msg_path(path, sizeof(path), cfg->data_dir, id) < 0 ||
		    access(path, F_OK) < 0)
			r = -1;
		else
			r = queue_update(cfg->data_dir, &env);
		if (r == 0 && snprintf(path, sizeof(path), "%s/queue/env/%s",
		    cfg->data_dir, id) < (int)sizeof(path))
			queue_cmd_keep_owner(path);
	}
	queue_envelope_free(&env);
	return r;
}

/* Tells a running daemon to look at the queue: creates data_dir/queue/flush
 * or sets its modification time to now. */
static int
queue_cmd_touch_flush(const struct config *cfg)
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s/%s", cfg->data_dir,
	    SCHEDULER_FLUSH_FILE);

	if (n < 0 || (size_t)n >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd < 0)
		return -1;
	int r = futimens(fd, NULL);
	close(fd);
	if (r == 0)
		queue_cmd_keep_owner(path);
	return r;
}

static int
queue_cmd_flush(const struct config *cfg, const char *id)
{
	struct strlist ids = STRLIST_INIT;
	unsigned n = 0;

	if (id != NULL) {
		if (queue_cmd_flush_one(cfg, id) < 0) {
			fprintf(stderr, "correo: no queued message %s\n", id);
			return 1;
		}
		n = 1;
	} else {
		if (queue_list(cfg->data_dir, &ids) < 0) {
			fprintf(stderr, "correo: cannot read %s/queue\n",
			    cfg->data_dir);
			return 1;
		}
		/* A message may leave the queue meanwhile: not an error. */
		for (size_t i = 0; i < ids.n; i++)
			if (queue_cmd_flush_one(cfg, ids.v[i]) == 0)
				n++;
		strlist_free(&ids);
	}
	/* Without a queue folder no daemon ever queued anything here. */
	if (queue_cmd_touch_flush(cfg) < 0 && (errno != ENOENT || n > 0)) {
		fprintf(stderr, "correo: cannot touch %s/%s: %s\n",
		    cfg->data_dir, SCHEDULER_FLUSH_FILE, strerror(errno));
		return 1;
	}
	printf("flushed %u message(s)\n", n);
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
	if ((argc == 2 || argc == 3) && strcmp(argv[1], "flush") == 0)
		return queue_cmd_flush(cfg, argc == 3 ? argv[2] : NULL);
	fputs(QUEUE_USAGE, stderr);
	return 2;
}
