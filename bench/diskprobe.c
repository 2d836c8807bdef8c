/* diskprobe: how many small files per second this disk takes with the
 * durability a delivery needs, without any mail server in the way.
 *
 *   diskprobe [-j] [-t THREADS] [-n FILES] [-s SIZE] [-d DIR]
 *
 * Each of THREADS threads, FILES/THREADS times: create a file in DIR/tmp,
 * write SIZE octets, fsync it, link it into DIR/new, fsync DIR/new,
 * unlink the tmp name: a file fsync'd per message, as Postfix does and as
 * correo does for what its journal does not take.
 *
 * -j: the journal's way instead. The file and its link get no fsync; the
 * SIZE octets are also written to one shared, prewritten journal file,
 * and one fdatasync covers every thread waiting for it (group commit); a
 * further thread calls syncfs once a second (the checkpoint).
 *
 * Prints one JSON line. DIR (default: a new directory under /var/tmp) is
 * removed at the end. */
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

/* -j: the shared journal. */
static int journal = -1;
static pthread_mutex_t jmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t jcv = PTHREAD_COND_INITIALIZER;
static long long jwritten, jsynced;
static int jsyncing;
static atomic_long jsyncs;
static atomic_int stop_ckpt;

#define JOURNAL_SIZE (256LL << 20)

static void
fail(const char *what)
{
	fprintf(stderr, "diskprobe: %s: %s\n", what, strerror(errno));
	atomic_fetch_add(&failures, 1);
}

/* Appends n octets to the journal and returns once an fdatasync that
 * started after they were written has finished. */
static int
journal_commit(const char *buf, size_t n)
{
	pthread_mutex_lock(&jmu);
	long long off = jwritten % (JOURNAL_SIZE - (long long)n);
	jwritten += (long long)n;
	long long end = jwritten;
	pthread_mutex_unlock(&jmu);
	if (pwrite(journal, buf, n, off) != (ssize_t)n)
		return -1;
	int rc = 0;
	pthread_mutex_lock(&jmu);
	while (jsynced < end) {
		if (jsyncing) {
			pthread_cond_wait(&jcv, &jmu);
			continue;
		}
		jsyncing = 1;
		long long target = jwritten;
		pthread_mutex_unlock(&jmu);
		rc |= fdatasync(journal);
		atomic_fetch_add(&jsyncs, 1);
		pthread_mutex_lock(&jmu);
		jsyncing = 0;
		if (target > jsynced)
			jsynced = target;
		pthread_cond_broadcast(&jcv);
	}
	pthread_mutex_unlock(&jmu);
	return rc;
}

static void *
checkpointer(void *arg)
{
	int fd = open(base, O_RDONLY | O_DIRECTORY);
	(void)arg;
	while (!atomic_load(&stop_ckpt)) {
		for (int i = 0; i < 100 && !atomic_load(&stop_ckpt); i++)
			usleep(10000);
		if (fd >= 0 && syncfs(fd) < 0)
			fail("syncfs");
	}
	if (fd >= 0)
		close(fd);
	return NULL;
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
		if (journal >= 0) {
			if (write(fd, buf, size) != (ssize_t)size ||
			    journal_commit(buf, size) < 0)
				fail("write/journal");
			close(fd);
			if (link(tmp, dst) < 0)
				fail("link");
			unlink(tmp);
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

	int use_journal = 0;

	while ((c = getopt(argc, argv, "jt:n:s:d:")) != -1) {
		switch (c) {
		case 'j': use_journal = 1; break;
		case 't': threads = atol(optarg); break;
		case 'n': files = atol(optarg); break;
		case 's': size = (size_t)atol(optarg); break;
		case 'd': dir = optarg; break;
		default:
			fprintf(stderr, "usage: diskprobe [-j] [-t THREADS] "
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

	pthread_t *t = calloc((size_t)threads, sizeof(*t)), ckpt;
	struct timespec a, b;
	char jpath[600];
	snprintf(jpath, sizeof(jpath), "%s/journal", base);
	if (use_journal) {
		/* Written over once beforehand, as correo prepares its
		 * segments: a later fdatasync has no file size to commit. */
		static char zero[1 << 20];
		journal = open(jpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
		for (long long o = 0; journal >= 0 && o < JOURNAL_SIZE;
		    o += (long long)sizeof(zero))
			if (write(journal, zero, sizeof(zero)) < 0)
				fail("journal");
		if (journal < 0 || fsync(journal) < 0) {
			perror(jpath);
			return 1;
		}
		pthread_create(&ckpt, NULL, checkpointer, NULL);
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, worker, (void *)i);
	for (long i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &b);
	if (use_journal) {
		atomic_store(&stop_ckpt, 1);
		pthread_join(ckpt, NULL);
		close(journal);
		unlink(jpath);
	}
	double secs = (double)(b.tv_sec - a.tv_sec) +
	    (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	long done = per_thread * threads;
	printf("{\"mode\":\"%s\",\"threads\":%ld,\"files\":%ld,\"size\":%zu,"
	    "\"seconds\":%.3f,\"files_per_sec\":%.0f,\"journal_syncs\":%ld,"
	    "\"failures\":%ld}\n", use_journal ? "journal" : "fsync", threads,
	    done, size, secs, (double)done / secs, (long)atomic_load(&jsyncs),
	    (long)atomic_load(&failures));

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
