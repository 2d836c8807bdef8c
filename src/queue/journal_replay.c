/* Journal replay at start: every message a segment records goes back
 * into each Maildir that lacks it whole (journal.h). It runs with the
 * server's own privileges and sandbox, and writes only under
 * data_dir/mail/: a segment is data that the server process wrote. */
#include "queue/journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "queue/journal_record.h"
#include "store/maildir.h"

enum replay_file { FILE_MISSING, FILE_SAME, FILE_PARTIAL, FILE_OTHER };

/* What path holds against the n octets of content: nothing, the same
 * octets, a beginning of them (a write the crash cut short), or another
 * message. */
static enum replay_file
replay_compare(const char *path, const unsigned char *content, uint64_t n)
{
	struct stat sb;
	unsigned char chunk[65536];
	uint64_t off = 0;
	enum replay_file res = FILE_OTHER;

	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? FILE_MISSING : FILE_OTHER;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) ||
	    (uint64_t)sb.st_size > n)
		goto out;
	uint64_t size = (uint64_t)sb.st_size;
	while (off < size) {
		ssize_t r = read(fd, chunk, sizeof(chunk));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || (uint64_t)r > size - off ||
		    memcmp(chunk, content + off, (size_t)r) != 0)
			goto out;
		off += (uint64_t)r;
	}
	res = size == n ? FILE_SAME : FILE_PARTIAL;
out:
	close(fd);
	return res;
}

/* The names in one Maildir's cur/, sorted: read once per replay, however
 * many records name that Maildir (cur/ does not change meanwhile: the
 * replay writes into new/ only). */
struct cur_list {
	char *maildir;
	char **names;
	size_t n;
};

/* Every Maildir's list so far, sorted by path. */
struct cur_cache {
	struct cur_list *v;
	size_t n, cap;
};

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
cur_list_read(struct cur_list *l)
{
	char dir[PATH_MAX];
	struct dirent *e;
	size_t cap = 0;

	if (snprintf(dir, sizeof(dir), "%s/cur", l->maildir) >=
	    (int)sizeof(dir))
		return;
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (l->n == cap) {
			cap = cap ? cap * 2 : 64;
			l->names = x_reallocarray(l->names, cap,
			    sizeof(*l->names));
		}
		l->names[l->n++] = x_strdup(e->d_name);
	}
	closedir(d);
	if (l->n > 1)
		qsort(l->names, l->n, sizeof(*l->names), cmp_str);
}

static const struct cur_list *
cur_cache_get(struct cur_cache *c, const char *maildir)
{
	size_t lo = 0, hi = c->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int k = strcmp(c->v[mid].maildir, maildir);
		if (k == 0)
			return &c->v[mid];
		if (k < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 16;
		c->v = x_reallocarray(c->v, c->cap, sizeof(*c->v));
	}
	memmove(&c->v[lo + 1], &c->v[lo], (c->n - lo) * sizeof(*c->v));
	c->n++;
	struct cur_list *l = &c->v[lo];
	memset(l, 0, sizeof(*l));
	l->maildir = x_strdup(maildir);
	cur_list_read(l);
	return l;
}

static void
cur_cache_free(struct cur_cache *c)
{
	for (size_t i = 0; i < c->n; i++) {
		for (size_t k = 0; k < c->v[i].n; k++)
			free(c->v[i].names[k]);
		free(c->v[i].names);
		free(c->v[i].maildir);
	}
	free(c->v);
	memset(c, 0, sizeof(*c));
}

/* True when cur/ holds name with its flags ("name:2,...") and all of
 * its octets: an IMAP client has seen it already. */
static bool
replay_in_cur(struct cur_cache *cache, const char *maildir, const char *name,
    const unsigned char *content, uint64_t n)
{
	const struct cur_list *l = cur_cache_get(cache, maildir);
	char p[PATH_MAX * 2];
	size_t len = strlen(name), lo = 0, hi = l->n;

	/* The first name not below name: those that start with it follow. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(l->names[mid], name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < l->n && strncmp(l->names[i], name, len) == 0;
	    i++) {
		const char *e = l->names[i];
		if (e[len] != ':' && e[len] != '\0')
			continue;
		snprintf(p, sizeof(p), "%s/cur/%s", maildir, e);
		if (replay_compare(p, content, n) == FILE_SAME)
			return true;
	}
	return false;
}

/* Writes the message to dir/tmp/name, fsyncs it, renames it to
 * dir/new/name (over a partial file of that name) and fsyncs the
 * directories up to dir's parent. */
static int
replay_write(const char *maildir, const char *name,
    const unsigned char *content, uint64_t n)
{
	char tmp[PATH_MAX], dst[PATH_MAX], newdir[PATH_MAX];

	if (snprintf(tmp, sizeof(tmp), "%s/tmp/%s", maildir, name) >=
	    (int)sizeof(tmp) || snprintf(dst, sizeof(dst), "%s/new/%s",
	    maildir, name) >= (int)sizeof(dst) || snprintf(newdir,
	    sizeof(newdir), "%s/new", maildir) >= (int)sizeof(newdir)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (maildir_create(maildir) < 0)
		return -1;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (fs_write_all(fd, content, (size_t)n) < 0 || fsync(fd) < 0) {
		int e = errno;
		close(fd);
		unlink(tmp);
		errno = e;
		return -1;
	}
	if (close(fd) < 0 || rename(tmp, dst) < 0) {
		int e = errno;
		unlink(tmp);
		errno = e;
		return -1;
	}
	/* new/, the Maildir (maildir_create may have made it) and the
	 * directory above it. */
	if (fs_fsync_dir(newdir) < 0 || fs_fsync_parent(newdir) < 0 ||
	    fs_fsync_parent(maildir) < 0)
		return -1;
	return 0;
}

/* A target path the server itself would write: under data_dir/mail/,
 * without "." or ".." components. */
static bool
replay_path_ok(const char *data_dir, const char *path)
{
	char root[PATH_MAX];
	int n = snprintf(root, sizeof(root), "%s/mail/", data_dir);
	if (n < 0 || (size_t)n >= sizeof(root) ||
	    strncmp(path, root, (size_t)n) != 0)
		return false;
	for (const char *p = path + n; *p; ) {
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == 0 || (len == 1 && p[0] == '.') ||
		    (len == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p += len + (e != NULL);
	}
	return true;
}

/* Keeps a message that could not go back into its Maildir in
 * data_dir/queue/journal-failed/NAME (fsync'd), for the operator. */
static int
replay_save_failed(const char *data_dir, const char *name,
    const unsigned char *content, uint64_t n)
{
	char dir[PATH_MAX], p[PATH_MAX];

	if (snprintf(dir, sizeof(dir), "%s/queue/journal-failed", data_dir) >=
	    (int)sizeof(dir) || snprintf(p, sizeof(p), "%s/%s", dir, name) >=
	    (int)sizeof(p)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (fs_mkdir_p(dir, 0700) < 0)
		return -1;
	if (fs_write_file(p, content, (size_t)n, 0600) < 0)
		return -1;
	return fs_fsync_parent(dir);
}

static void
replay_record(const char *data_dir, const struct journal_rec *r,
    struct cur_cache *cache, struct journal_replay_stats *st)
{
	char p[PATH_MAX], fresh[256];

	for (size_t i = 0; i < r->ntargets; i++) {
		const struct journal_target *t = &r->targets[i];
		const char *name = t->name;
		enum replay_file f = FILE_OTHER;
		bool ok = replay_path_ok(data_dir, t->path);
		if (ok && snprintf(p, sizeof(p), "%s/new/%s", t->path, name) <
		    (int)sizeof(p))
			f = replay_compare(p, r->content, r->content_len);
		if (f == FILE_SAME || (ok && f != FILE_PARTIAL &&
		    replay_in_cur(cache, t->path, name, r->content,
		    r->content_len)))
			continue;
		if (f == FILE_OTHER) {
			/* The name went to another message (the link fell
			 * back to a fresh name): never write over it. */
			maildir_unique_name(fresh, sizeof(fresh),
			    r->content_len);
			name = fresh;
		}
		if (ok && replay_write(t->path, name, r->content,
		    r->content_len) == 0) {
			log_info("event=journal-restored maildir=%s name=%s "
			    "size=%llu", t->path, name,
			    (unsigned long long)r->content_len);
			st->restored++;
			continue;
		}
		log_warn("event=journal-replay-failed maildir=%s name=%s%s",
		    t->path, t->name, ok ? "" : " reason=\"not under "
		    "data_dir/mail\"");
		if (replay_save_failed(data_dir, t->name, r->content,
		    r->content_len) < 0) {
			log_warn("event=journal-replay-failed name=%s "
			    "step=journal-failed", t->name);
			st->failed++;
			continue;
		}
		log_warnx("event=journal-saved name=%s dir=queue/journal-failed",
		    t->name);
		st->saved++;
	}
}

/* Replays one segment; 1 when it held records, 0 when not, -1. Read
 * with pread, not mmap: a read error must be an error, not SIGBUS. */
static int
replay_segment(const char *data_dir, int fd, struct cur_cache *cache,
    struct journal_replay_stats *st)
{
	struct stat sb;
	unsigned char head[JOURNAL_HDR_SIZE];

	if (fstat(fd, &sb) < 0)
		return -1;
	if (sb.st_size < JOURNAL_HDR_SIZE)
		return 0;
	/* Most segments are spent: their first record is gone. */
	ssize_t h = pread(fd, head, sizeof(head), 0);
	if (h < 0)
		return -1;
	if (h < (ssize_t)sizeof(head) || memcmp(head, "CRJ1", 4) != 0)
		return 0;
	size_t size = (size_t)sb.st_size, off = 0, n;
	unsigned char *p = malloc(size);
	if (p == NULL || fs_pread_all(fd, p, size, 0) < 0) {
		free(p);
		return -1;
	}
	uint64_t gen = 0;
	unsigned records = 0;
	struct journal_rec r;
	while ((n = journal_rec_next(p + off, size - off, &gen, &r)) > 0) {
		replay_record(data_dir, &r, cache, st);
		journal_rec_free(&r);
		records++;
		off += n;
	}
	free(p);
	st->records += records;
	return records > 0;
}

int
journal_replay(const char *data_dir, struct journal_replay_stats *st)
{
	char dir[PATH_MAX], p[PATH_MAX + 16];
	int fds[JOURNAL_NSEG], rc = 0;
	bool used[JOURNAL_NSEG] = { false };
	struct cur_cache cache = { 0 };

	memset(st, 0, sizeof(*st));
	if (snprintf(dir, sizeof(dir), "%s/queue/journal", data_dir) >=
	    (int)sizeof(dir)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (int i = 0; i < JOURNAL_NSEG; i++) {
		snprintf(p, sizeof(p), "%s/%d", dir, i);
		fds[i] = open(p, O_RDWR | O_CLOEXEC);
		if (fds[i] < 0) {
			if (errno != ENOENT)
				rc = -1;
			continue;
		}
		int k = replay_segment(data_dir, fds[i], &cache, st);
		if (k < 0)
			rc = -1;
		used[i] = k > 0;
		st->segments += k > 0;
	}
	cur_cache_free(&cache);
	/* What was put back must be durable before the records go; a
	 * message neither put back nor saved keeps every segment for the
	 * next start. */
	if (st->failed)
		rc = -1;
	static const unsigned char zero[8];
	int dfd = st->segments ? open(dir, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC) : -1;
	if (st->segments && (dfd < 0 || syncfs(dfd) < 0))
		rc = -1;
	for (int i = 0; i < JOURNAL_NSEG; i++) {
		if (rc == 0 && used[i] && (pwrite(fds[i], zero, sizeof(zero),
		    0) != (ssize_t)sizeof(zero) || fdatasync(fds[i]) < 0))
			rc = -1;
		if (fds[i] >= 0)
			close(fds[i]);
	}
	if (dfd >= 0)
		close(dfd);
	return rc;
}
