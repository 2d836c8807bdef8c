/* The outbound queue on disk. */
#include "queue/queue.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/fs.h"
#include "core/util.h"
#include "core/xmalloc.h"

bool
queue_valid_id(const char *id)
{
	return strlen(id) == 16 && strspn(id, "0123456789abcdef") == 16;
}

static int
queue_path(char *out, size_t n, const char *data_dir, const char *kind,
    const char *id)
{
	int r = id ? snprintf(out, n, "%s/queue/%s/%s", data_dir, kind, id) :
	    snprintf(out, n, "%s/queue/%s", data_dir, kind);
	if (r < 0 || (size_t)r >= n) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
queue_init(const char *data_dir)
{
	char p[PATH_MAX];
	if (queue_path(p, sizeof(p), data_dir, "msg", NULL) < 0 ||
	    fs_mkdir_p(p, 0700) < 0 ||
	    queue_path(p, sizeof(p), data_dir, "env", NULL) < 0)
		return -1;
	return fs_mkdir_p(p, 0700);
}

void
queue_envelope_add_rcpt(struct queue_envelope *env, const char *addr,
    unsigned notify, const char *orcpt)
{
	strlist_add(&env->rcpts, addr);
	struct dsn_rcpt *r = queue_envelope_state(env, env->rcpts.n - 1);
	r->notify = notify;
	r->orcpt = orcpt && orcpt[0] ? x_strdup(orcpt) : NULL;
}

struct dsn_rcpt *
queue_envelope_state(struct queue_envelope *env, size_t i)
{
	if (i >= env->nstate) {
		env->state = x_reallocarray(env->state, env->rcpts.n > i ?
		    env->rcpts.n : i + 1, sizeof(*env->state));
		for (size_t k = env->nstate; k <= i || k < env->rcpts.n; k++)
			memset(&env->state[k], 0, sizeof(env->state[k]));
		env->nstate = env->rcpts.n > i ? env->rcpts.n : i + 1;
	}
	struct dsn_rcpt *r = &env->state[i];
	if (r->addr == NULL && i < env->rcpts.n)
		r->addr = x_strdup(env->rcpts.v[i]);
	return r;
}

void
queue_envelope_filter(struct queue_envelope *env, const bool *keep)
{
	size_t n = 0;

	for (size_t i = 0; i < env->rcpts.n; i++) {
		struct dsn_rcpt st = { 0 };
		if (i < env->nstate)
			st = env->state[i];
		if (!keep[i]) {
			free(env->rcpts.v[i]);
			dsn_rcpt_free(&st);
			continue;
		}
		env->rcpts.v[n] = env->rcpts.v[i];
		if (i < env->nstate)
			env->state[n] = st;
		n++;
	}
	env->rcpts.n = n;
	if (env->nstate > n)
		env->nstate = n;
}

static void
queue_format(const struct queue_envelope *env, struct buf *b)
{
	buf_printf(b, "version 2\nid %s\ncreated %lld\nsize %llu\n", env->id,
	    (long long)env->created, (unsigned long long)env->size);
	if (env->smtputf8)
		buf_puts(b, "smtputf8\n");
	if (env->eightbit)
		buf_puts(b, "8bitmime\n");
	if (env->user)
		buf_printf(b, "user %s\n", env->user);
	if (env->ret != DSN_RET_UNSET)
		buf_printf(b, "ret %s\n", dsn_ret_name(env->ret));
	if (env->envid && dsn_xtext_valid(env->envid, strlen(env->envid)))
		buf_printf(b, "envid %s\n", env->envid);
	if (env->attempts)
		buf_printf(b, "attempts %u\n", env->attempts);
	if (env->next_attempt)
		buf_printf(b, "next %lld\n", (long long)env->next_attempt);
	if (env->delay_notified)
		buf_puts(b, "delay-notified\n");
	buf_printf(b, "from <%s>\n", env->from);
	for (size_t i = 0; i < env->rcpts.n; i++) {
		const char *err = NULL;
		if (i < env->nstate && env->state[i].addr) {
			size_t before = b->len;
			buf_puts(b, "rcpt2 ");
			if (dsn_rcpt_format(&env->state[i], b, &err) == 0) {
				buf_puts(b, "\n");
				continue;
			}
			b->len = before;
			b->data[before] = '\0';
		}
		/* The address comes last: quoted local parts may hold
		 * spaces. */
		buf_printf(b, "rcpt pending 0 <%s>\n", env->rcpts.v[i]);
	}
}

int
queue_add(const char *data_dir, const char *src,
    const struct queue_envelope *env)
{
	char msg[PATH_MAX], envp[PATH_MAX];
	struct buf b = BUF_INIT;

	if (queue_path(msg, sizeof(msg), data_dir, "msg", env->id) < 0 ||
	    queue_path(envp, sizeof(envp), data_dir, "env", env->id) < 0)
		return -1;
	if (link(src, msg) < 0 && errno != EEXIST)
		return -1;
	if (fs_fsync_parent(msg) < 0)
		return -1;
	queue_format(env, &b);
	int r = fs_write_file(envp, b.data, b.len, 0600);
	buf_free(&b);
	return r;
}

/* "<addr>" at the end of a line, brackets removed. */
static char *
queue_angle(const char *s)
{
	size_t n = strlen(s);
	if (n < 2 || s[0] != '<' || s[n - 1] != '>')
		return NULL;
	return x_strndup(s + 1, n - 2);
}

static int
queue_parse_line(struct queue_envelope *env, const char *line)
{
	const char *v;
	uint64_t num;

	if ((v = str_iprefix(line, "id ")) != NULL)
		return str_copy(env->id, v, sizeof(env->id));
	if ((v = str_iprefix(line, "created ")) != NULL) {
		if (parse_uint(v, INT64_MAX, &num) < 0)
			return -1;
		env->created = (time_t)num;
		return 0;
	}
	if ((v = str_iprefix(line, "size ")) != NULL)
		return parse_uint(v, UINT64_MAX, &env->size);
	if (strcmp(line, "smtputf8") == 0 || strcmp(line, "8bitmime") == 0) {
		if (line[0] == 's')
			env->smtputf8 = true;
		else
			env->eightbit = true;
		return 0;
	}
	if ((v = str_iprefix(line, "user ")) != NULL) {
		x_free(&env->user);
		env->user = x_strdup(v);
		return 0;
	}
	if ((v = str_iprefix(line, "from ")) != NULL) {
		x_free(&env->from);
		env->from = queue_angle(v);
		return env->from ? 0 : -1;
	}
	if ((v = str_iprefix(line, "rcpt2 ")) != NULL) {
		struct dsn_rcpt r;
		const char *err;
		if (dsn_rcpt_parse(v, strlen(v), &r, &err) < 0)
			return -1;
		strlist_add(&env->rcpts, r.addr);
		queue_envelope_state(env, env->rcpts.n - 1);
		dsn_rcpt_free(&env->state[env->rcpts.n - 1]);
		env->state[env->rcpts.n - 1] = r;
		return 0;
	}
	if ((v = str_iprefix(line, "ret ")) != NULL)
		return dsn_ret_parse(v, strlen(v), &env->ret, &(const char *){0});
	if ((v = str_iprefix(line, "envid ")) != NULL) {
		x_free(&env->envid);
		env->envid = x_strdup(v);
		return dsn_xtext_valid(v, strlen(v)) ? 0 : -1;
	}
	if ((v = str_iprefix(line, "attempts ")) != NULL) {
		if (parse_uint(v, UINT32_MAX, &num) < 0)
			return -1;
		env->attempts = (unsigned)num;
		return 0;
	}
	if ((v = str_iprefix(line, "next ")) != NULL) {
		if (parse_uint(v, INT64_MAX, &num) < 0)
			return -1;
		env->next_attempt = (time_t)num;
		return 0;
	}
	if (strcmp(line, "delay-notified") == 0) {
		env->delay_notified = true;
		return 0;
	}
	if ((v = str_iprefix(line, "rcpt ")) != NULL) {
		const char *a = strchr(v, '<');
		char *addr = a ? queue_angle(a) : NULL;
		if (addr == NULL)
			return -1;
		strlist_add(&env->rcpts, addr);
		free(addr);
		return 0;
	}
	return strncmp(line, "version ", 8) == 0 ? 0 : -1;
}

int
queue_read(const char *data_dir, const char *id, struct queue_envelope *env)
{
	char p[PATH_MAX];
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	memset(env, 0, sizeof(*env));
	if (!queue_valid_id(id) ||
	    queue_path(p, sizeof(p), data_dir, "env", id) < 0)
		return -1;
	FILE *f = fopen(p, "re");
	if (f == NULL)
		return -1;
	int r = 0;
	while (r == 0 && (len = getline(&line, &cap, f)) > 0) {
		if (len > DSN_LINE_MAX + 16) {
			r = -1;
			break;
		}
		line[strcspn(line, "\n")] = '\0';
		r = queue_parse_line(env, line);
	}
	free(line);
	fclose(f);
	if (r == 0 && (env->from == NULL || strcmp(env->id, id) != 0))
		r = -1;
	if (r < 0)
		queue_envelope_free(env);
	return r;
}

static int
queue_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
queue_dir_ids(const char *data_dir, const char *kind, struct strlist *ids)
{
	char p[PATH_MAX];
	struct dirent *e;

	if (queue_path(p, sizeof(p), data_dir, kind, NULL) < 0)
		return -1;
	DIR *d = opendir(p);
	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((e = readdir(d)) != NULL)
		if (queue_valid_id(e->d_name))
			strlist_add(ids, e->d_name);
	closedir(d);
	if (ids->n > 1)
		qsort(ids->v, ids->n, sizeof(*ids->v), queue_cmp);
	return 0;
}

int
queue_list(const char *data_dir, struct strlist *ids)
{
	return queue_dir_ids(data_dir, "env", ids);
}

int
queue_delete(const char *data_dir, const char *id)
{
	char p[PATH_MAX];
	if (!queue_valid_id(id) ||
	    queue_path(p, sizeof(p), data_dir, "env", id) < 0)
		return -1;
	if (unlink(p) < 0)
		return -1;
	fs_fsync_parent(p);
	if (queue_path(p, sizeof(p), data_dir, "msg", id) == 0)
		unlink(p);
	return 0;
}

int
queue_clean_orphans(const char *data_dir)
{
	struct strlist msgs = STRLIST_INIT;
	char p[PATH_MAX];
	int n = 0;

	if (queue_dir_ids(data_dir, "msg", &msgs) < 0)
		return 0;
	for (size_t i = 0; i < msgs.n; i++) {
		if (queue_path(p, sizeof(p), data_dir, "env", msgs.v[i]) < 0 ||
		    access(p, F_OK) == 0)
			continue;
		if (queue_path(p, sizeof(p), data_dir, "msg", msgs.v[i]) == 0 &&
		    unlink(p) == 0)
			n++;
	}
	strlist_free(&msgs);
	return n;
}

int
queue_update(const char *data_dir, const struct queue_envelope *env)
{
	char p[PATH_MAX];
	struct buf b = BUF_INIT;

	if (queue_path(p, sizeof(p), data_dir, "env", env->id) < 0)
		return -1;
	queue_format(env, &b);
	int r = fs_write_file(p, b.data, b.len, 0600);
	buf_free(&b);
	return r;
}

int
queue_msg_path(char *out, size_t n, const char *data_dir, const char *id)
{
	return queue_path(out, n, data_dir, "msg", id);
}

void
queue_envelope_free(struct queue_envelope *env)
{
	for (size_t i = 0; i < env->nstate; i++)
		dsn_rcpt_free(&env->state[i]);
	x_free(&env->state);
	env->nstate = 0;
	x_free(&env->envid);
	x_free(&env->from);
	x_free(&env->user);
	strlist_free(&env->rcpts);
}
