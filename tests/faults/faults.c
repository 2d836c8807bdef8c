/* libfaults.so: an LD_PRELOAD shim that makes file system calls fail, for
 * the disk fault tests (tests/integration/test_disk_faults.py).
 *
 * Environment:
 *   CORREO_FAULTS      path of a control file; unset: every call passes.
 *   CORREO_FAULTS_DIR  only files and directories under this directory
 *                      fail (default: every regular file and directory).
 *
 * The control file is read at every call, so a test switches faults on
 * and off while the server runs. Missing or empty: no faults. Otherwise
 * its first word is the errno to return, "enospc", "eio" or "edquot",
 * and the further words name the operations that fail (none: all):
 *   open    open/openat/creat with O_CREAT (or O_TMPFILE)
 *   write   write, pwrite, writev, ftruncate
 *   fsync   fsync, fdatasync, syncfs
 *   rename  rename, renameat, renameat2
 *   link    link, linkat
 *   unlink  unlink, unlinkat (also rmdir through unlinkat)
 *   mkdir   mkdir, mkdirat
 *   dirsync fsync, fdatasync, syncfs of a directory only
 * and a word "path=TEXT" limits the faults to paths that contain TEXT
 * (e.g. "path=index.db", "path=/queue/").
 * Calls on sockets, pipes and terminals always pass: an fd is only failed
 * when fstat says it is a regular file or a directory. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum fault_op {
	FAULT_OPEN = 1 << 0,
	FAULT_WRITE = 1 << 1,
	FAULT_FSYNC = 1 << 2,
	FAULT_RENAME = 1 << 3,
	FAULT_LINK = 1 << 4,
	FAULT_UNLINK = 1 << 5,
	FAULT_MKDIR = 1 << 6,
	FAULT_DIRSYNC = 1 << 7,
	FAULT_ALL = (1 << 8) - 1
};

/* What the control file asks for. */
struct fault_spec {
	int err;		/* 0: no fault */
	unsigned ops;		/* FAULT_* */
	char path[128];		/* "path=" text, or "" */
};

static const struct {
	const char *name;
	unsigned op;
} fault_op_names[] = {
	{ "open", FAULT_OPEN }, { "write", FAULT_WRITE },
	{ "fsync", FAULT_FSYNC }, { "rename", FAULT_RENAME },
	{ "link", FAULT_LINK }, { "unlink", FAULT_UNLINK },
	{ "mkdir", FAULT_MKDIR }, { "dirsync", FAULT_DIRSYNC },
};

static const struct {
	const char *name;
	int err;
} fault_errnos[] = {
	{ "enospc", ENOSPC }, { "eio", EIO }, { "edquot", EDQUOT },
};

/* Parses the control file's words into *spec. */
static void
fault_parse(char *text, struct fault_spec *spec)
{
	char *save = NULL;
	unsigned set = 0;

	for (char *w = strtok_r(text, " \t\r\n,", &save); w != NULL;
	    w = strtok_r(NULL, " \t\r\n,", &save)) {
		for (size_t i = 0; i < sizeof(fault_errnos) /
		    sizeof(fault_errnos[0]); i++)
			if (spec->err == 0 &&
			    strcmp(w, fault_errnos[i].name) == 0)
				spec->err = fault_errnos[i].err;
		for (size_t i = 0; i < sizeof(fault_op_names) /
		    sizeof(fault_op_names[0]); i++)
			if (strcmp(w, fault_op_names[i].name) == 0)
				set |= fault_op_names[i].op;
		if (strncmp(w, "path=", 5) == 0)
			snprintf(spec->path, sizeof(spec->path), "%s", w + 5);
	}
	spec->ops = set ? set : FAULT_ALL;
}

/* Reads the control file into *spec; false when it asks for no fault.
 * Raw system calls only: this runs inside the functions it replaces. */
static bool
fault_read(struct fault_spec *spec)
{
	const char *ctl = getenv("CORREO_FAULTS");
	char text[512];

	memset(spec, 0, sizeof(*spec));
	if (ctl == NULL || *ctl == '\0')
		return false;
	long fd = syscall(SYS_openat, AT_FDCWD, ctl, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	long n = syscall(SYS_read, (int)fd, text, sizeof(text) - 1);
	syscall(SYS_close, (int)fd);
	if (n <= 0)
		return false;
	text[n] = '\0';
	fault_parse(text, spec);
	return spec->err != 0;
}

/* True when path (absolute, or relative to dirfd) is under
 * CORREO_FAULTS_DIR and holds the spec's path text. */
static bool
fault_path_in_scope(const struct fault_spec *spec, int dirfd,
    const char *path)
{
	const char *dir = getenv("CORREO_FAULTS_DIR");
	char full[PATH_MAX * 2], base[PATH_MAX], proc[64];

	if (path == NULL)
		return false;
	if (path[0] == '/') {
		snprintf(full, sizeof(full), "%s", path);
	} else {
		if (dirfd == AT_FDCWD)
			snprintf(proc, sizeof(proc), "/proc/self/cwd");
		else
			snprintf(proc, sizeof(proc), "/proc/self/fd/%d", dirfd);
		long n = syscall(SYS_readlink, proc, base, sizeof(base) - 1);
		if (n <= 0)
			return false;
		base[n] = '\0';
		snprintf(full, sizeof(full), "%s/%s", base, path);
	}
	if (spec->path[0] != '\0' && strstr(full, spec->path) == NULL)
		return false;
	if (dir == NULL || *dir == '\0')
		return true;
	size_t len = strlen(dir);
	while (len > 1 && dir[len - 1] == '/')
		len--;
	return strncmp(full, dir, len) == 0 &&
	    (full[len] == '/' || full[len] == '\0');
}

/* True when fd is a regular file or a directory in the spec's scope;
 * only directories for FAULT_DIRSYNC. */
static bool
fault_fd_in_scope(const struct fault_spec *spec, unsigned op, int fd)
{
	struct stat sb;
	char proc[64], path[PATH_MAX];

	if (syscall(SYS_fstat, fd, &sb) < 0 ||
	    !(S_ISREG(sb.st_mode) || S_ISDIR(sb.st_mode)))
		return false;
	if (op == FAULT_DIRSYNC && !S_ISDIR(sb.st_mode))
		return false;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	long n = syscall(SYS_readlink, proc, path, sizeof(path) - 1);
	if (n <= 0)
		return false;
	path[n] = '\0';
	return fault_path_in_scope(spec, AT_FDCWD, path);
}

/* The errno to fail op on fd with, or 0. fsync also fails for "dirsync"
 * on a directory. */
static int
fault_fd(unsigned op, int fd)
{
	struct fault_spec spec;
	int e = errno, err = 0;

	if (fault_read(&spec)) {
		if ((spec.ops & op) && fault_fd_in_scope(&spec, op, fd))
			err = spec.err;
		else if (op == FAULT_FSYNC && (spec.ops & FAULT_DIRSYNC) &&
		    fault_fd_in_scope(&spec, FAULT_DIRSYNC, fd))
			err = spec.err;
	}
	errno = e;
	return err;
}

/* The errno to fail op on path with, or 0. */
static int
fault_path(unsigned op, int dirfd, const char *path)
{
	struct fault_spec spec;
	int e = errno, err = 0;

	if (fault_read(&spec) && (spec.ops & op) &&
	    fault_path_in_scope(&spec, dirfd, path))
		err = spec.err;
	errno = e;
	return err;
}

static void *
fault_next(const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);
	if (p == NULL) {
		static const char msg[] = "libfaults: missing symbol\n";
		syscall(SYS_write, 2, msg, sizeof(msg) - 1);
		abort();
	}
	return p;
}

/* The real function, looked up once (racy lookups return the same). */
#define FAULT_REAL(type, name) \
	static type real_##name; \
	if (real_##name == NULL) \
		real_##name = (type)fault_next(#name)

#define FAULT_FAIL(err) do { errno = (err); return -1; } while (0)

static bool
fault_creates(int flags)
{
	return (flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE;
}

/* A full disk still opens an existing file with O_CREAT and says EEXIST
 * to mkdir of an existing directory: only new names fail. */
static bool
fault_exists(int dirfd, const char *path, int flags)
{
	struct stat sb;
	int e = errno;

	if ((flags & O_TMPFILE) == O_TMPFILE)
		return false;
	bool r = syscall(SYS_newfstatat, dirfd, path, &sb, 0) == 0;
	errno = e;
	return r;
}

/* ---- open ---- */

typedef int (*open_fn)(const char *, int, ...);
typedef int (*openat_fn)(int, const char *, int, ...);

#define FAULT_MODE(flags, mode) do { \
	if (fault_creates(flags)) { \
		va_list ap; \
		va_start(ap, flags); \
		mode = (mode_t)va_arg(ap, int); \
		va_end(ap); \
	} \
} while (0)

int
open(const char *path, int flags, ...)
{
	FAULT_REAL(open_fn, open);
	mode_t mode = 0;
	int err;

	FAULT_MODE(flags, mode);
	if (fault_creates(flags) && !fault_exists(AT_FDCWD, path, flags) &&
	    (err = fault_path(FAULT_OPEN, AT_FDCWD, path)) != 0)
		FAULT_FAIL(err);
	return real_open(path, flags, mode);
}

int
open64(const char *path, int flags, ...)
{
	FAULT_REAL(open_fn, open64);
	mode_t mode = 0;
	int err;

	FAULT_MODE(flags, mode);
	if (fault_creates(flags) && !fault_exists(AT_FDCWD, path, flags) &&
	    (err = fault_path(FAULT_OPEN, AT_FDCWD, path)) != 0)
		FAULT_FAIL(err);
	return real_open64(path, flags, mode);
}

int
openat(int dirfd, const char *path, int flags, ...)
{
	FAULT_REAL(openat_fn, openat);
	mode_t mode = 0;
	int err;

	FAULT_MODE(flags, mode);
	if (fault_creates(flags) && !fault_exists(dirfd, path, flags) &&
	    (err = fault_path(FAULT_OPEN, dirfd, path)) != 0)
		FAULT_FAIL(err);
	return real_openat(dirfd, path, flags, mode);
}

int
openat64(int dirfd, const char *path, int flags, ...)
{
	FAULT_REAL(openat_fn, openat64);
	mode_t mode = 0;
	int err;

	FAULT_MODE(flags, mode);
	if (fault_creates(flags) && !fault_exists(dirfd, path, flags) &&
	    (err = fault_path(FAULT_OPEN, dirfd, path)) != 0)
		FAULT_FAIL(err);
	return real_openat64(dirfd, path, flags, mode);
}

int
creat(const char *path, mode_t mode)
{
	return open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
}

/* ---- write, ftruncate ---- */

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*pwrite64_fn)(int, const void *, size_t, off64_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef int (*ftruncate_fn)(int, off_t);
typedef int (*ftruncate64_fn)(int, off64_t);

ssize_t
write(int fd, const void *p, size_t n)
{
	FAULT_REAL(write_fn, write);
	int err = fault_fd(FAULT_WRITE, fd);

	if (err != 0)
		FAULT_FAIL(err);
	return real_write(fd, p, n);
}

ssize_t
pwrite(int fd, const void *p, size_t n, off_t off)
{
	FAULT_REAL(pwrite_fn, pwrite);
	int err = fault_fd(FAULT_WRITE, fd);

	if (err != 0)
		FAULT_FAIL(err);
	return real_pwrite(fd, p, n, off);
}

ssize_t
pwrite64(int fd, const void *p, size_t n, off64_t off)
{
	FAULT_REAL(pwrite64_fn, pwrite64);
	int err = fault_fd(FAULT_WRITE, fd);

	if (err != 0)
		FAULT_FAIL(err);
	return real_pwrite64(fd, p, n, off);
}

ssize_t
writev(int fd, const struct iovec *iov, int n)
{
	FAULT_REAL(writev_fn, writev);
	int err = fault_fd(FAULT_WRITE, fd);

	if (err != 0)
		FAULT_FAIL(err);
	return real_writev(fd, iov, n);
}

int
ftruncate(int fd, off_t len)
{
	FAULT_REAL(ftruncate_fn, ftruncate);
	int err = fault_fd(FAULT_WRITE, fd);

	if (err != 0)
		FAULT_FAIL(err);
	return real_ftruncate(fd, len);
}

int
ftruncate64(int fd, off64_t len)
{
	FAULT_REAL(ftruncate64_fn, ftruncate64);
	int err = fault_fd(FAULT_WRITE, fd);

	if (err != 0)
		FAULT_FAIL(err);
	return real_ftruncate64(fd, len);
}

/* ---- fsync ---- */

typedef int (*fsync_fn)(int);

int
fsync(int fd)
{
	FAULT_REAL(fsync_fn, fsync);
	int err = fault_fd(FAULT_FSYNC, fd);

	if (err != 0)
		FAULT_FAIL(err);
	return real_fsync(fd);
}

int
fdatasync(int fd)
{
	FAULT_REAL(fsync_fn, fdatasync);
	int err = fault_fd(FAULT_FSYNC, fd);

	if (err != 0)
		FAULT_FAIL(err);
	return real_fdatasync(fd);
}

/* syncfs: fails for "fsync", and for "dirsync" when fd is a directory
 * (correo's journal checkpoint calls it on data_dir/queue). */
int
syncfs(int fd)
{
	FAULT_REAL(fsync_fn, syncfs);
	int err = fault_fd(FAULT_FSYNC, fd);

	if (err != 0)
		FAULT_FAIL(err);
	return real_syncfs(fd);
}

/* ---- rename, link, unlink, mkdir ---- */

typedef int (*rename_fn)(const char *, const char *);
typedef int (*renameat_fn)(int, const char *, int, const char *);
typedef int (*renameat2_fn)(int, const char *, int, const char *,
    unsigned);
typedef int (*linkat_fn)(int, const char *, int, const char *, int);
typedef int (*unlink_fn)(const char *);
typedef int (*unlinkat_fn)(int, const char *, int);
typedef int (*mkdir_fn)(const char *, mode_t);
typedef int (*mkdirat_fn)(int, const char *, mode_t);

/* Two paths: fails when either is in scope. */
static int
fault_two(unsigned op, int d1, const char *p1, int d2, const char *p2)
{
	int err = fault_path(op, d1, p1);
	return err ? err : fault_path(op, d2, p2);
}

int
rename(const char *from, const char *to)
{
	FAULT_REAL(rename_fn, rename);
	int err = fault_two(FAULT_RENAME, AT_FDCWD, from, AT_FDCWD, to);

	if (err != 0)
		FAULT_FAIL(err);
	return real_rename(from, to);
}

int
renameat(int fd1, const char *from, int fd2, const char *to)
{
	FAULT_REAL(renameat_fn, renameat);
	int err = fault_two(FAULT_RENAME, fd1, from, fd2, to);

	if (err != 0)
		FAULT_FAIL(err);
	return real_renameat(fd1, from, fd2, to);
}

int
renameat2(int fd1, const char *from, int fd2, const char *to,
    unsigned flags)
{
	FAULT_REAL(renameat2_fn, renameat2);
	int err = fault_two(FAULT_RENAME, fd1, from, fd2, to);

	if (err != 0)
		FAULT_FAIL(err);
	return real_renameat2(fd1, from, fd2, to, flags);
}

int
link(const char *from, const char *to)
{
	FAULT_REAL(rename_fn, link);
	int err = fault_two(FAULT_LINK, AT_FDCWD, from, AT_FDCWD, to);

	if (err != 0)
		FAULT_FAIL(err);
	return real_link(from, to);
}

int
linkat(int fd1, const char *from, int fd2, const char *to, int flags)
{
	FAULT_REAL(linkat_fn, linkat);
	int err = fault_two(FAULT_LINK, fd1, from, fd2, to);

	if (err != 0)
		FAULT_FAIL(err);
	return real_linkat(fd1, from, fd2, to, flags);
}

int
unlink(const char *path)
{
	FAULT_REAL(unlink_fn, unlink);
	int err = fault_path(FAULT_UNLINK, AT_FDCWD, path);

	if (err != 0)
		FAULT_FAIL(err);
	return real_unlink(path);
}

int
unlinkat(int dirfd, const char *path, int flags)
{
	FAULT_REAL(unlinkat_fn, unlinkat);
	int err = fault_path(FAULT_UNLINK, dirfd, path);

	if (err != 0)
		FAULT_FAIL(err);
	return real_unlinkat(dirfd, path, flags);
}

int
mkdir(const char *path, mode_t mode)
{
	FAULT_REAL(mkdir_fn, mkdir);
	int err = fault_exists(AT_FDCWD, path, 0) ? 0 :
	    fault_path(FAULT_MKDIR, AT_FDCWD, path);

	if (err != 0)
		FAULT_FAIL(err);
	return real_mkdir(path, mode);
}

int
mkdirat(int dirfd, const char *path, mode_t mode)
{
	FAULT_REAL(mkdirat_fn, mkdirat);
	int err = fault_exists(dirfd, path, 0) ? 0 :
	    fault_path(FAULT_MKDIR, dirfd, path);

	if (err != 0)
		FAULT_FAIL(err);
	return real_mkdirat(dirfd, path, mode);
}
