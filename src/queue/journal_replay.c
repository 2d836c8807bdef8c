/* Journal replay at start: every message a segment records goes back
 * into each Maildir that lacks it whole (journal.h). */
#include "queue/journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/log.h"
#include "queue/journal_record.h"
#include "store/maildir.h"

/* True when path holds exactly n octets equal to content. */
static bool
replay_same(const char *path, const unsigned char *content, uint64_t n)
{
	struct stat sb;
	unsigned char chunk[65536];
	uint64_t off = 0;
	bool same = false;

	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (fstat(fd, &sb) < 0 || (uint64_t)sb.st_size != n)
		goto out;
	while (off < n) {
		ssize_t r = read(fd, chunk, sizeof(chunk));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || (uint64_t)r > n - off ||
		    memcmp(chunk, content + off, (size_t)r) != 0)
			goto out;
		off += (uint64_t)r;
	}
	same = true;
out:
	close(fd);
	return same;
}

/* True when cur/ holds name with its flags ("name:2,...") and all of
 * its octets: an IMAP client has seen it already. */
static bool
replay_in_cur(const char *maildir, const char *name,
    const unsigned char *content, uint64_t n)
{
	char dir[PATH_MAX], p[PATH_MAX * 2];
	struct dirent *e;
	size_t len = strlen(name);
	bool found = false;

	if (snprintf(dir, sizeof(dir), "%s/cur", maildir) >= (int)sizeof(dir))
		return false;
	DIR *d = opendir(dir);
	if (d == NULL)
		return false;
	while (!found && (e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, name, len) != 0 ||
		    (e->d_name[len] != ':' && e->d_name[len] != '\0'))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		found = replay_same(p, content, n);
	}
	closedir(d);
	return found;
}

/* Writes the message to tmp/name, fsyncs it and renames it to new/name,
 * over whatever partial file is there. */
static int
replay_write(const char *maildir, const char *name,
    const unsigned char *content, uint64_t n)
{
	char tmp[PATH_MAX], dst[PATH_MAX];

	if (snprintf(tmp, sizeof(tmp), "%s/tmp/%s", maildir, name) >=
	    (int)sizeof(tmp) || snprintf(dst, sizeof(dst), "%s/new/%s",
	    maildir, name) >= (int)sizeof(dst)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (maildir_create(maildir) < 0)
		return -1;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
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
	return 0;
}

static void
replay_record(const struct journal_rec *r, struct journal_replay_stats *st)
{
	char p[PATH_MAX];

	for (size_t i = 0; i < r->ntargets; i++) {
		const struct journal_target *t = &r->targets[i];
		if (snprintf(p, sizeof(p), "%s/new/%s", t->path, t->name) <
		    (int)sizeof(p) && replay_same(p, r->content,
		    r->content_len))
			continue;
		if (replay_in_cur(t->path, t->name, r->content,
		    r->content_len))
			continue;
		if (replay_write(t->path, t->name, r->content,
		    r->content_len) < 0) {
			log_warn("event=journal-replay-failed maildir=%s "
			    "name=%s", t->path, t->name);
			st->failed++;
			continue;
		}
		log_info("event=journal-restored maildir=%s name=%s size=%llu",
		    t->path, t->name, (unsigned long long)r->content_len);
		st->restored++;
	}
}

/* Replays one segment; 1 when it held records, 0 when not, -1. */
static int
replay_segment(int fd, struct journal_replay_stats *st)
{
	struct stat sb;

	if (fstat(fd, &sb) < 0)
		return -1;
	if (sb.st_size < JOURNAL_HDR_SIZE)
		return 0;
	size_t size = (size_t)sb.st_size;
	unsigned char *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		return -1;
	uint64_t gen = 0;
	size_t off = 0, n;
	unsigned records = 0;
	struct journal_rec r;
	while ((n = journal_rec_next(p + off, size - off, &gen, &r)) > 0) {
		replay_record(&r, st);
		journal_rec_free(&r);
		records++;
		off += n;
	}
	munmap(p, size);
	st->records += records;
	return records > 0;
}

int
journal_replay(const char *data_dir, struct journal_replay_stats *st)
{
	char dir[PATH_MAX], p[PATH_MAX + 16];
	int fds[JOURNAL_NSEG], rc = 0;
	bool used[JOURNAL_NSEG] = { false };

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
		int k = replay_segment(fds[i], st);
		if (k < 0)
			rc = -1;
		used[i] = k > 0;
		st->segments += k > 0;
	}
	/* What was put back must be durable before the records go; a
	 * target not written keeps every segment for the next start. */
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
