/* Maildir delivery: link into new/, fsync new/ (one fsync for the
 * deliveries that wait for it together, fs_fsync_dir_shared). */
#include "store/maildir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/fs.h"

static unsigned long maildir_counter;

int
maildir_create(const char *path)
{
	static const char *const sub[] = { "cur", "new", "tmp" };
	char p[PATH_MAX];

	for (size_t i = 0; i < 3; i++) {
		int n = snprintf(p, sizeof(p), "%s/%s", path, sub[i]);
		if (n < 0 || (size_t)n >= sizeof(p)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		if (fs_mkdir_p(p, 0700) < 0)
			return -1;
	}
	return 0;
}

static void
maildir_hostname(char *out, size_t n)
{
	if (gethostname(out, n) < 0 || out[0] == '\0')
		snprintf(out, n, "localhost");
	out[n - 1] = '\0';
	/* '/' and ':' would break the name (Maildir spec: encode them). */
	for (char *p = out; *p; p++)
		if (*p == '/' || *p == ':' || *p == ',')
			*p = '_';
}

void
maildir_unique_name(char *out, size_t n, uint64_t size)
{
	struct timeval tv;
	char host[128];

	gettimeofday(&tv, NULL);
	maildir_hostname(host, sizeof(host));
	unsigned long q = __atomic_add_fetch(&maildir_counter, 1,
	    __ATOMIC_RELAXED);
	/* Microseconds in six digits and the counter in eight (the journal
	 * names a batch within one microsecond): names then sort in the order
	 * they were made, the order of arrival, which gives the UIDs when
	 * files of new/ have the same mtime (store_scan.c). */
	snprintf(out, n, "%lld.M%06ldP%ldQ%08lu.%s,S=%llu", (long long)tv.tv_sec,
	    (long)tv.tv_usec, (long)getpid(), q, host,
	    (unsigned long long)size);
}

/* fsync path and the two directories above it (LOCAL, DOMAIN, mail). */
static int
maildir_fsync_tree(const char *path)
{
	char p[PATH_MAX];
	if (snprintf(p, sizeof(p), "%s", path) >= (int)sizeof(p)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (int level = 0; level < 3; level++) {
		if (fs_fsync_dir(p) < 0 || fs_fsync_parent(p) < 0)
			return -1;
		char *slash = strrchr(p, '/');
		if (slash == NULL || slash == p)
			break;
		*slash = '\0';
	}
	return 0;
}

/* Fallback when src is on another file system: copy through tmp/. */
static int
maildir_copy_in(const char *path, const char *src, const char *name,
    const char *dst)
{
	char tmp[PATH_MAX], chunk[65536];
	int in = -1, out = -1, e;

	if (snprintf(tmp, sizeof(tmp), "%s/tmp/%s", path, name) >=
	    (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0)
		goto fail;
	for (;;) {
		ssize_t r = read(in, chunk, sizeof(chunk));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto fail;
		if (r == 0)
			break;
		if (fs_write_all(out, chunk, (size_t)r) < 0)
			goto fail;
	}
	if (fsync(out) < 0 || close(out) < 0) {
		out = -1;
		goto fail;
	}
	out = -1;
	close(in);
	in = -1;
	if (rename(tmp, dst) < 0)
		goto fail;
	return 0;
fail:
	e = errno;
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	unlink(tmp);
	errno = e;
	return -1;
}

int
maildir_deliver(const char *path, const char *src, uint64_t size,
    char *name, size_t namelen)
{
	char dst[PATH_MAX], newdir[PATH_MAX];

	if (snprintf(newdir, sizeof(newdir), "%s/new", path) >=
	    (int)sizeof(newdir)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (int attempt = 0; ; attempt++) {
		maildir_unique_name(name, namelen, size);
		if (snprintf(dst, sizeof(dst), "%s/%s", newdir, name) >=
		    (int)sizeof(dst)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		if (link(src, dst) == 0)
			break;
		if (errno == EEXIST && attempt < 5)
			continue;
		if (errno == ENOENT && attempt == 0) {
			/* Maildir removed behind our back: make it again, and
			 * make the new directory entries durable too. */
			if (maildir_create(path) < 0 ||
			    maildir_fsync_tree(path) < 0)
				return -1;
			continue;
		}
		if (errno != EXDEV && errno != EPERM && errno != EMLINK)
			return -1;
		if (maildir_copy_in(path, src, name, dst) < 0)
			return -1;
		break;
	}
	return fs_fsync_dir_shared(newdir);
}
