/* Spool files for messages while they arrive. */
#include "queue/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/util.h"
#include "core/xmalloc.h"

int
spool_init(const char *data_dir)
{
	char p[PATH_MAX];
	if (snprintf(p, sizeof(p), "%s/queue/tmp", data_dir) >= (int)sizeof(p)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return fs_mkdir_p(p, 0700);
}

int
spool_clean_tmp(const char *data_dir)
{
	char dir[PATH_MAX], p[PATH_MAX + 256];
	struct dirent *e;
	int n = 0;

	if (snprintf(dir, sizeof(dir), "%s/queue/tmp", data_dir) >=
	    (int)sizeof(dir))
		return 0;
	DIR *d = opendir(dir);
	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		/* Blank files held no message: not counted. */
		if (unlink(p) == 0 && strncmp(e->d_name, SPOOL_BLANK_PREFIX,
		    strlen(SPOOL_BLANK_PREFIX)) != 0)
			n++;
	}
	closedir(d);
	return n;
}

int
spool_create_lazy(const char *data_dir, struct spool_file *sf)
{
	memset(sf, 0, sizeof(*sf));
	sf->fd = -1;
	make_id(sf->id);
	if (snprintf(sf->path, sizeof(sf->path), "%s/queue/tmp/%s", data_dir,
	    sf->id) >= (int)sizeof(sf->path)) {
		sf->path[0] = '\0';
		errno = ENAMETOOLONG;
		return -1;
	}
	sf->buf = x_malloc(SPOOL_BUF_SIZE);
	return 0;
}

/* Creates the file (and queue/tmp when it has gone). */
static int
spool_open_file(struct spool_file *sf)
{
	sf->fd = open(sf->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (sf->fd < 0 && errno == ENOENT) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s", sf->path);
		char *slash = strrchr(dir, '/');
		if (slash != NULL) {
			*slash = '\0';
			if (fs_mkdir_p(dir, 0700) == 0)
				sf->fd = open(sf->path, O_RDWR | O_CREAT |
				    O_EXCL | O_CLOEXEC, 0600);
		}
	}
	if (sf->fd < 0) {
		sf->error = errno;
		return -1;
	}
	sf->created = true;
	return 0;
}

int
spool_create(const char *data_dir, struct spool_file *sf)
{
	for (int attempt = 0; attempt < 5; attempt++) {
		if (spool_create_lazy(data_dir, sf) < 0)
			return -1;
		if (spool_open_file(sf) == 0)
			return 0;
		int e = errno;
		x_free(&sf->buf);
		if (e != EEXIST) {
			errno = e;
			return -1;
		}
	}
	errno = EEXIST;
	return -1;
}

/* Writes the buffer to the file, creating it first when needed. */
static int
spool_write_out(struct spool_file *sf)
{
	if (sf->error)
		return -1;
	if (sf->fd < 0 && spool_open_file(sf) < 0)
		return -1;
	if (sf->buffered && fs_write_all(sf->fd, sf->buf, sf->buffered) < 0) {
		sf->error = errno;
		return -1;
	}
	sf->buffered = 0;
	return 0;
}

int
spool_flush(struct spool_file *sf)
{
	if (sf->error)
		return -1;
	if (sf->fd < 0)
		return 0;	/* all of it in the buffer */
	return spool_write_out(sf);
}

int
spool_materialize(struct spool_file *sf)
{
	if (sf->fd >= 0 && sf->buffered == 0 && sf->error == 0)
		return 0;
	if (spool_write_out(sf) < 0) {
		errno = sf->error;
		return -1;
	}
	return 0;
}

void
spool_write(struct spool_file *sf, const void *p, size_t n)
{
	if (sf->error || n == 0)
		return;
	sf->size += n;
	if ((sf->buffered + n > SPOOL_BUF_SIZE || n >= SPOOL_BUF_SIZE) &&
	    spool_write_out(sf) < 0)
		return;
	if (n >= SPOOL_BUF_SIZE) {
		if (fs_write_all(sf->fd, p, n) < 0)
			sf->error = errno;
		return;
	}
	memcpy(sf->buf + sf->buffered, p, n);
	sf->buffered += n;
}

int
spool_commit(struct spool_file *sf)
{
	if (spool_materialize(sf) < 0)
		return -1;
	int r = fsync(sf->fd);
	int e = errno;
	if (close(sf->fd) < 0 && r == 0) {
		r = -1;
		e = errno;
	}
	sf->fd = -1;
	errno = e;
	return r;
}

int
spool_blank_make(const char *data_dir, struct spool_blank *b)
{
	char id[17];

	make_id(id);
	b->fd = -1;
	if (snprintf(b->path, sizeof(b->path), "%s/queue/tmp/%s%s", data_dir,
	    SPOOL_BLANK_PREFIX, id) >= (int)sizeof(b->path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	b->fd = open(b->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	return b->fd < 0 ? -1 : 0;
}

void
spool_blank_drop(struct spool_blank *b)
{
	if (b->fd < 0)
		return;
	close(b->fd);
	unlink(b->path);
	b->fd = -1;
}

int
spool_adopt(struct spool_file *sf, struct spool_blank *b)
{
	if (sf->fd >= 0 || sf->error || b->fd < 0)
		return -1;
	sf->fd = b->fd;
	memcpy(sf->path, b->path, sizeof(sf->path));
	sf->created = true;
	b->fd = -1;
	return 0;
}

void
spool_discard(struct spool_file *sf)
{
	if (sf->fd >= 0) {
		close(sf->fd);
		sf->fd = -1;
	}
	/* A lazy file never made has no name to remove: the path might be
	 * somebody else's. */
	if (sf->path[0] && sf->created)
		unlink(sf->path);
	sf->path[0] = '\0';
	x_free(&sf->buf);
}
