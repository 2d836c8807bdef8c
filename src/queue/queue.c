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

static void
queue_format(const struct queue_envelope *env, struct buf *b)
{
	buf_printf(b, "version 1\nid %s\ncreated %lld\nsize %llu\n", env->id,
	    (long long)env->created, (unsigned long long)env->size);
	if (env->smtputf8)
		buf_puts(b, "smtputf8\n");
	if (env->eightbit)
		buf_puts(b, "8bitmime\n");
	if (env->user)
		buf_printf(b, "user %s\n", env->user);
	buf_printf(b, "from <%s>\n", env->from);
	/* The address comes last: quoted local parts may hold spaces. */
	for (size_t i = 0; i < env->rcpts.n; i++)
		buf_printf(b, "rcpt pending 0 <%s>\n", env->rcpts.v[i]);
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
	char p[PATH_MAX], line[2048];

	memset(env, 0, sizeof(*env));
	if (!queue_valid_id(id) ||
	    queue_path(p, sizeof(p), data_dir, "env", id) < 0)
		return -1;
	FILE *f = fopen(p, "re");
	if (f == NULL)
		return -1;
	int r = 0;
	while (r == 0 && fgets(line, sizeof(line), f) != NULL) {
		size_t n = strcspn(line, "\n");
		line[n] = '\0';
		r = queue_parse_line(env, line);
	}
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

void
queue_envelope_free(struct queue_envelope *env)
{
	x_free(&env->from);
	x_free(&env->user);
	strlist_free(&env->rcpts);
}
