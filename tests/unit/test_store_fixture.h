/* A user's store in a temporary data_dir, for the test_store_*.c files.
 * Include after <cmocka.h>. Functions are static inline so that a test
 * file need not use all of them. */
#ifndef TEST_STORE_FIXTURE_H
#define TEST_STORE_FIXTURE_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

#define USER "someone@example.test"

struct fixture {
	char dir[64];		/* data_dir */
	char root[256];		/* the user's Maildir++ root */
};

static inline int
fx_setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	if (fx == NULL)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/correo-store-XXXXXX");
	if (mkdtemp(fx->dir) == NULL) {
		free(fx);
		return -1;
	}
	snprintf(fx->root, sizeof(fx->root), "%s/mail/example.test/someone",
	    fx->dir);
	*state = fx;
	return 0;
}

static inline int
fx_teardown(void **state)
{
	struct fixture *fx = *state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	int r = system(cmd);
	free(fx);
	return r == 0 ? 0 : -1;
}

static inline struct store *
fx_open(struct fixture *fx)
{
	char *err = NULL;
	struct store *st = store_open(fx->dir, USER, &err);
	if (st == NULL)
		fail_msg("store_open: %s", err);
	return st;
}

static inline void
fx_load(struct store *st, const char *mailbox, struct store_mailbox *mb)
{
	char *err = NULL;
	if (store_mailbox_load(st, mailbox, mb, &err) < 0)
		fail_msg("load %s: %s", mailbox, err);
}

/* Fails the test on error. */
#define FX_OK(call) do { \
	char *fx_err_ = NULL; \
	char **error_r = &fx_err_; \
	if ((call) < 0) \
		fail_msg("%s: %s", #call, fx_err_); \
} while (0)

/* Expects -1 with errno e (0: any) and an error message. */
#define FX_FAILS(call, e) do { \
	char *fx_err_ = NULL; \
	char **error_r = &fx_err_; \
	errno = 0; \
	if ((call) != -1) \
		fail_msg("%s: succeeded", #call); \
	if ((e) != 0 && errno != (e)) \
		fail_msg("%s: errno %d (%s), not %d", #call, errno, \
		    fx_err_ ? fx_err_ : "", (e)); \
	assert_non_null(fx_err_); \
	free(fx_err_); \
} while (0)

/* Writes dir/sub/name with a small message and mtime (0: leave it). */
static inline void
fx_put(const char *dir, const char *sub, const char *name, time_t mtime)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "Subject: %s\r\nFrom: a@example.test\r\n\r\nbody\r\n",
	    name);
	assert_int_equal(fclose(f), 0);
	if (mtime != 0) {
		struct timespec ts[2] = { { mtime, 0 }, { mtime, 0 } };
		assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
	}
}

static inline bool
fx_exists(const char *dir, const char *sub, const char *name)
{
	char path[1024];
	struct stat sb;
	snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	return stat(path, &sb) == 0;
}

/* Entries of dir/sub not starting with ".", or -1. */
static inline int
fx_count(const char *dir, const char *sub)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;
	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* The root's folder for a mailbox (as on disk, ".a.b"). */
static inline const char *
fx_folder(struct fixture *fx, const char *entry, char *out, size_t n)
{
	snprintf(out, n, "%s/%s", fx->root, entry);
	return out;
}

/* Waits until cur/ and new/ of dir last changed long enough ago for a
 * load to keep a snapshot (store_scan.c: STORE_SNAP_AGE, 2 s). */
static inline void
fx_wait_settled(const char *dir)
{
	char path[1024];
	struct stat sb;
	time_t last = 0;

	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, i ? "new" : "cur");
		assert_int_equal(stat(path, &sb), 0);
		if (sb.st_mtime > last)
			last = sb.st_mtime;
		if (sb.st_ctime > last)
			last = sb.st_ctime;
	}
	while (time(NULL) < last + 2)
		usleep(100000);
}

static inline const struct store_msg *
fx_uid(const struct store_mailbox *mb, uint32_t uid)
{
	for (size_t i = 0; i < mb->count; i++)
		if (mb->msgs[i].uid == uid)
			return &mb->msgs[i];
	return NULL;
}

#endif
