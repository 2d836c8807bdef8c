/* diskprobe: how many small files per second this disk takes with the
 * durability a delivery needs, without any mail server in the way.
 *
 *   diskprobe [-t THREADS] [-n FILES] [-s SIZE] [-d DIR]
 *
 * Each of THREADS threads, FILES/THREADS times: create a file in DIR/tmp,
 * write SIZE octets, fsync it, link it into DIR/new, fsync DIR/new,
 * unlink the tmp name: what correo does per accepted message (its spool
 * file, then the link into the Maildir). Prints one JSON line. DIR
 * (default: a new directory under /var/tmp) is removed at the end.
 * The ceiling for `make bench`'s SMTP figures on this machine. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char base[512];
static size_t size = 5120;
static long per_thread;
static atomic_long counter, failures;

static void
fail(const char *what)
{
	fprintf(stderr, "diskprobe: %s: %s\n", what, strerror(errno));
	atomic_fetch_add(&failures, 1);
}

static void *
worker(void *arg)
{
	long id = (long)arg;
	char tmp[700], dst[700], newdir[600];
	char *buf = malloc(size);
	int dirfd;

	if (buf == NULL)
		return NULL;
	memset(buf, 'x', size);
	snprintf(newdir, sizeof(newdir), "%s/new", base);
	if ((dirfd = open(newdir, O_RDONLY | O_DIRECTORY)) < 0) {
		fail(newdir);
		free(buf);
		return NULL;
	}
	for (long i = 0; i < per_thread; i++) {
		long n = atomic_fetch_add(&counter, 1);
		snprintf(tmp, sizeof(tmp), "%s/tmp/%ld.%ld", base, id, i);
		snprintf(dst, sizeof(dst), "%s/new/%ld", base, n);
		int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
		if (fd < 0) {
			fail("open");
			continue;
		}
		if (write(fd, buf, size) != (ssize_t)size || fsync(fd) < 0)
			fail("write/fsync");
		close(fd);
		if (link(tmp, dst) < 0 || fsync(dirfd) < 0)
			fail("link/fsync new");
		unlink(tmp);
	}
	close(dirfd);
	free(buf);
	return NULL;
}

int
main(int argc, char **argv)
{
	long threads = 4, files = 4000;
	const char *dir = NULL;
	int c;

	while ((c = getopt(argc, argv, "t:n:s:d:")) != -1) {
		switch (c) {
		case 't': threads = atol(optarg); break;
		case 'n': files = atol(optarg); break;
		case 's': size = (size_t)atol(optarg); break;
		case 'd': dir = optarg; break;
		default:
			fprintf(stderr, "usage: diskprobe [-t THREADS] "
			    "[-n FILES] [-s SIZE] [-d DIR]\n");
			return 2;
		}
	}
	if (threads < 1 || threads > 1024 || files < threads || size < 1) {
		fprintf(stderr, "diskprobe: bad arguments\n");
		return 2;
	}
	per_thread = files / threads;
	if (dir != NULL) {
		snprintf(base, sizeof(base), "%s", dir);
		if (mkdir(base, 0700) < 0 && errno != EEXIST) {
			perror(base);
			return 1;
		}
	} else {
		snprintf(base, sizeof(base), "/var/tmp/diskprobe.XXXXXX");
		if (mkdtemp(base) == NULL) {
			perror("mkdtemp");
			return 1;
		}
	}
	char sub[600];
	snprintf(sub, sizeof(sub), "%s/tmp", base);
	mkdir(sub, 0700);
	snprintf(sub, sizeof(sub), "%s/new", base);
	mkdir(sub, 0700);

	pthread_t *t = calloc((size_t)threads, sizeof(*t));
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, worker, (void *)i);
	for (long i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &b);
	double secs = (double)(b.tv_sec - a.tv_sec) +
	    (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	long done = per_thread * threads;
	printf("{\"threads\":%ld,\"files\":%ld,\"size\":%zu,\"seconds\":%.3f,"
	    "\"files_per_sec\":%.0f,\"failures\":%ld}\n", threads, done, size,
	    secs, (double)done / secs, (long)atomic_load(&failures));

	/* Clean up what we made. */
	for (long n = 0; n < done; n++) {
		snprintf(sub, sizeof(sub), "%s/new/%ld", base, n);
		unlink(sub);
	}
	snprintf(sub, sizeof(sub), "%s/new", base);
	rmdir(sub);
	snprintf(sub, sizeof(sub), "%s/tmp", base);
	rmdir(sub);
	rmdir(base);
	free(t);
	return atomic_load(&failures) ? 1 : 0;
}
