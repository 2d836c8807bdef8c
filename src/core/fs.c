/* Durable file system operations. */
#include "core/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
fs_mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

int
fs_fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = fsync(fd);
	int e = errno;
	close(fd);
	errno = e;
	return r;
}

/* ---- shared directory fsyncs ---------------------------------------------
 *
 * Deliveries into one Maildir each link a file into new/ and then need
 * new/ durable. An fsync of a directory makes durable every entry made
 * in it before the fsync began; so under load one fsync can serve all
 * the deliveries whose link was made while another fsync ran. A caller
 * needs the first fsync that starts after its call (generation
 * started + 1 as it arrives); one caller at a time runs it, the others
 * wait for it. A failed fsync fails every caller it was to serve. */

#define FS_DIRSYNC_SLOTS	32

struct fs_dirsync {
	char path[PATH_MAX];	/* "" when free */
	unsigned users;
	bool running;
	uint64_t started, done;	/* generations */
	uint64_t failed;	/* the last that failed */
	int error;		/* its errno */
};

static pthread_mutex_t fs_dirsync_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fs_dirsync_cv = PTHREAD_COND_INITIALIZER;
static struct fs_dirsync fs_dirsyncs[FS_DIRSYNC_SLOTS];
static atomic_ulong fs_dirsync_runs;

static struct fs_dirsync *
fs_dirsync_slot(const char *path)
{
	struct fs_dirsync *free_slot = NULL;

	for (size_t i = 0; i < FS_DIRSYNC_SLOTS; i++) {
		struct fs_dirsync *d = &fs_dirsyncs[i];
		if (d->users > 0 && strcmp(d->path, path) == 0)
			return d;
		if (d->users == 0 && free_slot == NULL)
			free_slot = d;
	}
	if (free_slot != NULL) {
		memset(free_slot, 0, sizeof(*free_slot));
		memcpy(free_slot->path, path, strlen(path) + 1);
	}
	return free_slot;
}

int
fs_fsync_dir_shared(const char *path)
{
	if (strlen(path) >= PATH_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	pthread_mutex_lock(&fs_dirsync_mu);
	struct fs_dirsync *d = fs_dirsync_slot(path);
	if (d == NULL) {	/* more directories than slots at once */
		pthread_mutex_unlock(&fs_dirsync_mu);
		atomic_fetch_add(&fs_dirsync_runs, 1);
		return fs_fsync_dir(path);
	}
	d->users++;
	uint64_t need = d->started + 1;
	while (d->done < need) {
		if (d->running) {
			pthread_cond_wait(&fs_dirsync_cv, &fs_dirsync_mu);
			continue;
		}
		d->running = true;
		uint64_t gen = ++d->started;
		pthread_mutex_unlock(&fs_dirsync_mu);
		atomic_fetch_add(&fs_dirsync_runs, 1);
		int r = fs_fsync_dir(path);
		int e = errno;
		pthread_mutex_lock(&fs_dirsync_mu);
		d->running = false;
		d->done = gen;
		if (r < 0) {
			d->failed = gen;
			d->error = e;
		}
		pthread_cond_broadcast(&fs_dirsync_cv);
	}
	/* Generations run one at a time, so need's was the one that
	 * served; a later failure also counts (conservative). */
	int r = d->failed >= need ? -1 : 0;
	int e = d->error;
	d->users--;
	pthread_mutex_unlock(&fs_dirsync_mu);
	if (r < 0)
		errno = e;
	return r;
}

unsigned long
fs_fsync_dir_shared_runs(void)
{
	return atomic_load(&fs_dirsync_runs);
}

int
fs_fsync_parent(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return fs_fsync_dir(".");
	size_t n = (size_t)(slash - path);
	if (n == 0)
		return fs_fsync_dir("/");
	if (n >= sizeof(dir)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(dir, path, n);
	dir[n] = '\0';
	return fs_fsync_dir(dir);
}

int
fs_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* pwrite or pread until all n octets are done. */
static int
fs_transfer_all(int fd, void *p, size_t n, uint64_t off, bool writing)
{
	char *c = p;
	while (n > 0) {
		ssize_t r = writing ? pwrite(fd, c, n, (off_t)off) :
		    pread(fd, c, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0) {
			errno = EIO;
			return -1;
		}
		c += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

int
fs_pwrite_all(int fd, const void *p, size_t n, uint64_t off)
{
	return fs_transfer_all(fd, (void *)(uintptr_t)p, n, off, true);
}

int
fs_pread_all(int fd, void *p, size_t n, uint64_t off)
{
	return fs_transfer_all(fd, p, n, off, false);
}

int
fs_write_file(const char *path, const void *p, size_t n, mode_t mode)
{
	char tmp[PATH_MAX];
	int len = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	if (len < 0 || (size_t)len >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	if (fs_write_all(fd, p, n) < 0 || fsync(fd) < 0) {
		int e = errno;
		close(fd);
		unlink(tmp);
		errno = e;
		return -1;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		errno = e;
		return -1;
	}
	return fs_fsync_parent(path);
}
