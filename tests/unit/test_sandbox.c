/* Unit tests for src/core/sandbox.c: each case forks, applies the
 * sandbox in the child and checks from there what is still allowed
 * (data_dir, /etc/ssl, threads, IP sockets) and what is not (/etc/passwd,
 * execve, fork, packet sockets, setuid); the child's exit status carries
 * the verdict. Landlock checks are skipped on kernels without it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "core/sandbox.h"
#include "core/xmalloc.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

static char data_dir[] = "/tmp/correo-sandbox-XXXXXX";

static int
setup(void **state)
{
	(void)state;
	log_init("test_sandbox", 0);
	return mkdtemp(data_dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char path[64];

	(void)state;
	snprintf(path, sizeof(path), "%s/f", data_dir);
	unlink(path);
	rmdir(data_dir);
	return 0;
}

static bool
landlock_here(void)
{
	return syscall(SYS_landlock_create_ruleset, NULL, 0, 1U) > 0;
}

/* Runs fn in a child after sandbox_apply (with sandbox = value); returns
 * its wait status. */
static int
in_sandbox(const char *value, int (*fn)(void))
{
	pid_t pid = fork();
	int status = 0;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct config cfg;
		config_init_embedded(&cfg);
		x_free(&cfg.data_dir);
		cfg.data_dir = x_strdup(data_dir);
		x_free(&cfg.sandbox);
		cfg.sandbox = x_strdup(value);
		if (sandbox_apply(&cfg) < 0)
			_exit(100);
		_exit(fn());
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static int
files_child(void)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "%s/f", data_dir);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0)
		return 1;
	close(fd);
	DIR *d = opendir("/etc/ssl");
	if (d == NULL)
		return 2;
	closedir(d);
	if (!SANITIZED && landlock_here()) {
		if (open("/etc/passwd", O_RDONLY) >= 0 || errno != EACCES)
			return 3;
		if (open("/tmp/correo-sandbox-escape", O_WRONLY | O_CREAT,
		    0600) >= 0)
			return 4;
	}
	return 0;
}

static void
test_files(void **state)
{
	(void)state;
	int st = in_sandbox("yes", files_child);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static int thread_token;

static void *
thread_main(void *arg)
{
	(void)arg;
	return &thread_token;
}

static int
calls_child(void)
{
	pthread_t t;
	void *ret = NULL;

	if (SANITIZED)
		return 0;
	if (pthread_create(&t, NULL, thread_main, NULL) != 0 ||
	    pthread_join(t, &ret) != 0 || ret != &thread_token)
		return 1;
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0)
		return 2;
	close(s);
	if (socket(AF_PACKET, SOCK_RAW, 0) >= 0)
		return 3;
	if (setuid(0) == 0)
		return 4;
	if (syscall(SYS_setresuid, 1, 1, 1) == 0)
		return 5;
	return 0;
}

static void
test_threads_and_sockets(void **state)
{
	(void)state;
	int st = in_sandbox("yes", calls_child);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static int
exec_child(void)
{
	char *const argv[] = { (char *)"true", NULL };

	execv("/bin/true", argv);
	return SANITIZED ? 0 : 1;
}

static void
test_exec_kills(void **state)
{
	(void)state;
	int st = in_sandbox("yes", exec_child);
	if (SANITIZED) {
		skip();
		return;
	}
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSYS);
}

static int
fork_child(void)
{
	pid_t p = fork();	/* clone without CLONE_THREAD */

	if (p == 0)
		_exit(0);
	return p < 0 && errno == EPERM ? 0 : 1;
}

static void
test_fork_refused(void **state)
{
	(void)state;
	if (SANITIZED) {
		skip();
		return;
	}
	int st = in_sandbox("yes", fork_child);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static int
off_child(void)
{
	char *const argv[] = { (char *)"true", NULL };

	if (open("/etc/passwd", O_RDONLY) < 0)
		return 1;
	execv("/bin/true", argv);
	return 2;
}

static void
test_off_by_config(void **state)
{
	(void)state;
	int st = in_sandbox("no", off_child);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);	/* /bin/true's */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_threads_and_sockets),
		cmocka_unit_test(test_exec_kills),
		cmocka_unit_test(test_fork_refused),
		cmocka_unit_test(test_off_by_config),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
