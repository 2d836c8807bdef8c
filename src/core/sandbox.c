/* Least privilege at run time: no_new_privs, Landlock, seccomp.
 * Untrusted input: none. The rules are written against the Linux kernel's
 * stable ABI numbers, so that the Debian 12 headers (Landlock ABI 2) are
 * enough to use what a newer kernel offers. */
#include "core/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "core/log.h"
#include "core/xmalloc.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_SANITIZED 1
#endif
#endif
#ifndef SANDBOX_SANITIZED
#define SANDBOX_SANITIZED 0
#endif

/* ---- Landlock ---------------------------------------------------------- */

#define LL_CREATE_RULESET_VERSION	(1U << 0)
#define LL_RULE_PATH_BENEATH		1
#define LL_RULE_NET_PORT		2

#define LL_FS_EXECUTE		(1ULL << 0)
#define LL_FS_WRITE_FILE	(1ULL << 1)
#define LL_FS_READ_FILE		(1ULL << 2)
#define LL_FS_READ_DIR		(1ULL << 3)
#define LL_FS_REMOVE_DIR	(1ULL << 4)
#define LL_FS_REMOVE_FILE	(1ULL << 5)
#define LL_FS_MAKE_DIR		(1ULL << 7)
#define LL_FS_MAKE_REG		(1ULL << 8)
#define LL_FS_ABI1		((1ULL << 13) - 1)	/* bits 0..12 */
#define LL_FS_REFER		(1ULL << 13)		/* ABI 2 */
#define LL_FS_TRUNCATE		(1ULL << 14)		/* ABI 3 */
#define LL_FS_IOCTL_DEV		(1ULL << 15)		/* ABI 5 */
#define LL_NET_BIND_TCP		(1ULL << 0)		/* ABI 4 */
#define LL_NET_CONNECT_TCP	(1ULL << 1)
#define LL_SCOPE_ABSTRACT_UNIX	(1ULL << 0)		/* ABI 6 */
#define LL_SCOPE_SIGNAL		(1ULL << 1)

/* The rights that apply to a file; the others only to directories. */
#define LL_FS_FILE_RIGHTS (LL_FS_EXECUTE | LL_FS_WRITE_FILE | \
	LL_FS_READ_FILE | LL_FS_TRUNCATE | LL_FS_IOCTL_DEV)
#define LL_FS_READ (LL_FS_READ_FILE | LL_FS_READ_DIR)
/* Maildirs, the queue, SQLite: everything but executing and special
 * files. REFER is the rename from tmp/ to new/ and cur/. */
#define LL_FS_DATA (LL_FS_READ | LL_FS_WRITE_FILE | LL_FS_REMOVE_DIR | \
	LL_FS_REMOVE_FILE | LL_FS_MAKE_DIR | LL_FS_MAKE_REG | LL_FS_REFER | \
	LL_FS_TRUNCATE)

struct ll_ruleset_attr {
	uint64_t handled_fs;
	uint64_t handled_net;
	uint64_t scoped;
};

struct ll_path_beneath {
	uint64_t allowed;
	int32_t parent_fd;
} __attribute__((packed));

struct ll_net_port {
	uint64_t allowed;
	uint64_t port;
};

/* What the libraries may read after start-up. The integration suite
 * under strace opened /etc/localtime, /etc/resolv.conf, the root trust
 * anchor, /etc/ssl/certs (bundle and hashed names), gconv modules under
 * /usr/lib (GMime's charset conversion) and overcommit_memory; the rest
 * are what glibc's resolver and NSS, OpenSSL and GLib read on paths the
 * suite does not reach. Missing ones are skipped. */
static const char *const sandbox_read_paths[] = {
	"/etc/ssl",
	"/usr/lib/ssl",
	"/usr/share/ca-certificates",	/* behind /etc/ssl/certs links */
	"/usr/local/share/ca-certificates",
	"/usr/lib",
	"/usr/share/dns",
	"/usr/share/zoneinfo",
	"/etc/localtime",
	"/etc/resolv.conf",
	"/etc/hosts",
	"/etc/host.conf",
	"/etc/nsswitch.conf",
	"/etc/gai.conf",
	"/etc/services",
	"/dev/urandom",
	"/proc/sys/vm/overcommit_memory",	/* glibc malloc, on trimming */
};

static int
ll_abi(void)
{
#ifdef SYS_landlock_create_ruleset
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0,
	    LL_CREATE_RULESET_VERSION);
	return abi > 0 ? (int)abi : 0;
#else
	return 0;
#endif
}

#ifdef SYS_landlock_create_ruleset
/* Adds path with access (minus what does not apply to a file). A path
 * that does not exist is skipped: -1 only for a real failure. */
static int
ll_allow_path(int rs, const char *path, uint64_t access, uint64_t handled)
{
	struct ll_path_beneath pb;
	struct stat st;
	int fd, rc;

	if ((fd = open(path, O_PATH | O_CLOEXEC)) < 0)
		return errno == ENOENT || errno == ENOTDIR ||
		    errno == EACCES ? 0 : -1;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		access &= LL_FS_FILE_RIGHTS;
	pb.allowed = access & handled;
	pb.parent_fd = fd;
	rc = (int)syscall(SYS_landlock_add_rule, rs, LL_RULE_PATH_BENEATH,
	    &pb, 0);
	close(fd);
	return rc < 0 ? -1 : 0;
}

/* A file that is replaced rather than rewritten (certbot's renewed
 * certificate behind a symbolic link, an editor's saved configuration)
 * must still be readable at SIGHUP: allow its directory and its target's
 * directory, but never the whole tree from "/". */
static int
ll_allow_file_dirs(int rs, const char *path, uint64_t handled)
{
	char real[PATH_MAX];
	const char *names[2] = { path, NULL };
	int rc = 0;

	if (path == NULL || path[0] == '\0')
		return 0;
	if (realpath(path, real) != NULL)
		names[1] = real;
	for (int i = 0; i < 2 && rc == 0; i++) {
		if (names[i] == NULL)
			continue;
		char *copy = x_strdup(names[i]);
		const char *dir = dirname(copy);
		if (strcmp(dir, "/") != 0)
			rc = ll_allow_path(rs, dir, LL_FS_READ, handled);
		x_free(&copy);
	}
	if (rc == 0)
		rc = ll_allow_path(rs, path, LL_FS_READ, handled);
	return rc;
}

static int
ll_allow_port(int rs, unsigned long port)
{
	struct ll_net_port np = { LL_NET_CONNECT_TCP, port };

	if (port == 0 || port > 65535)
		return 0;
	return syscall(SYS_landlock_add_rule, rs, LL_RULE_NET_PORT, &np, 0) <
	    0 ? -1 : 0;
}

/* The port after the last ':' of host:port, or after '@' of a resolver
 * address; dflt when there is none. */
static unsigned long
ll_port_of(const char *s, int sep, unsigned long dflt)
{
	const char *p = strrchr(s, sep);
	char *end;

	if (p == NULL || p[1] == '\0')
		return dflt;
	errno = 0;
	unsigned long v = strtoul(p + 1, &end, 10);
	return errno == 0 && *end == '\0' ? v : dflt;
}

/* Outbound TCP goes to remote MX hosts, the relay host, DNS servers
 * (TCP when an answer is truncated) and MTA-STS policy hosts; no listener
 * is ever added after start-up. A SIGHUP that changes these ports needs a
 * restart. */
static int
ll_allow_ports(int rs, const struct config *cfg)
{
	char *copy = x_strdup(cfg->resolver), *save = NULL, *tok;
	int rc = 0;

	rc |= ll_allow_port(rs, 53);
	rc |= ll_allow_port(rs, cfg->remote_port);
	rc |= ll_allow_port(rs, cfg->mta_sts_port);
	if (cfg->relayhost[0] != '\0')
		rc |= ll_allow_port(rs, ll_port_of(cfg->relayhost, ':', 25));
	for (tok = strtok_r(copy, ", \t", &save); tok != NULL;
	    tok = strtok_r(NULL, ", \t", &save))
		rc |= ll_allow_port(rs, ll_port_of(tok, '@', 53));
	x_free(&copy);
	return rc;
}

static int
ll_add_rules(int rs, int abi, const struct config *cfg, uint64_t handled)
{
	int rc = ll_allow_path(rs, cfg->data_dir, LL_FS_DATA, handled);

	for (size_t i = 0; i < sizeof(sandbox_read_paths) /
	    sizeof(sandbox_read_paths[0]) && rc == 0; i++)
		rc = ll_allow_path(rs, sandbox_read_paths[i], LL_FS_READ,
		    handled);
	if (rc == 0)
		rc = ll_allow_file_dirs(rs, cfg->tls_cert, handled);
	if (rc == 0)
		rc = ll_allow_file_dirs(rs, cfg->tls_key, handled);
	if (rc == 0)
		rc = ll_allow_file_dirs(rs, cfg->path, handled);
	if (rc == 0)
		rc = ll_allow_file_dirs(rs, cfg->tls_ca_file, handled);
	if (rc == 0)
		rc = ll_allow_file_dirs(rs, cfg->dnssec_trust_anchor, handled);
	if (rc == 0 && abi >= 4)
		rc = ll_allow_ports(rs, cfg);
	return rc;
}

/* Returns the ABI in force, 0 when the kernel has no Landlock, -1 on a
 * failure. */
static int
sandbox_landlock(const struct config *cfg)
{
	struct ll_ruleset_attr attr = { 0, 0, 0 };
	size_t size = sizeof(attr.handled_fs);
	int abi = ll_abi(), rs, rc;

	if (abi <= 0)
		return 0;
	attr.handled_fs = LL_FS_ABI1 | (abi >= 2 ? LL_FS_REFER : 0) |
	    (abi >= 3 ? LL_FS_TRUNCATE : 0) | (abi >= 5 ? LL_FS_IOCTL_DEV : 0);
	if (abi >= 4) {
		attr.handled_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
		size = offsetof(struct ll_ruleset_attr, scoped);
	}
	if (abi >= 6) {
		attr.scoped = LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL;
		size = sizeof(attr);
	}
	rs = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
	if (rs < 0) {
		log_warn("event=sandbox error=landlock_create_ruleset");
		return -1;
	}
	rc = ll_add_rules(rs, abi, cfg, attr.handled_fs);
	if (rc < 0)
		log_warn("event=sandbox error=landlock_add_rule");
	else if ((rc = (int)syscall(SYS_landlock_restrict_self, rs, 0)) < 0)
		log_warn("event=sandbox error=landlock_restrict_self");
	close(rs);
	return rc < 0 ? -1 : abi;
}
#else
static int
sandbox_landlock(const struct config *cfg)
{
	(void)cfg;
	(void)ll_abi;
	return 0;
}
#endif

/* ---- seccomp ------------------------------------------------------------ */

#if defined(__x86_64__)
#define SANDBOX_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SANDBOX_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

#ifdef SANDBOX_AUDIT_ARCH
/* What correo and its libraries call once running: the 66 calls that
 * `strace -f` saw over the whole integration suite, plus those of paths
 * the suite reaches rarely or that glibc picks by kernel and build
 * (sendfile without TLS, SIGHUP, poll/select fallbacks, 32-bit-free
 * variants). */
static const int sandbox_allowed[] = {
	__NR_read, __NR_write, __NR_readv, __NR_writev, __NR_pread64,
	__NR_pwrite64, __NR_close, __NR_fstat, __NR_newfstatat, __NR_statx,
	__NR_lseek, __NR_openat, __NR_mmap, __NR_munmap, __NR_mremap,
	__NR_mprotect, __NR_madvise, __NR_brk, __NR_futex, __NR_getpid,
	__NR_gettid, __NR_getuid, __NR_geteuid, __NR_getgid, __NR_getegid,
	__NR_getrandom, __NR_clock_gettime, __NR_clock_getres,
	__NR_clock_nanosleep, __NR_nanosleep, __NR_gettimeofday,
	__NR_rt_sigaction, __NR_rt_sigprocmask, __NR_rt_sigreturn,
	__NR_sigaltstack, __NR_tgkill, __NR_exit, __NR_exit_group,
	__NR_set_robust_list, __NR_rseq, __NR_sched_yield,
	__NR_sched_getaffinity, __NR_prctl, __NR_fcntl, __NR_ioctl,
	__NR_dup, __NR_dup3, __NR_pipe2, __NR_eventfd2, __NR_epoll_create1,
	__NR_epoll_ctl, __NR_epoll_pwait, __NR_ppoll, __NR_pselect6,
	__NR_accept4, __NR_connect, __NR_bind, __NR_listen, __NR_shutdown,
	__NR_getsockname, __NR_getpeername, __NR_getsockopt,
	__NR_setsockopt, __NR_sendto, __NR_recvfrom, __NR_sendmsg,
	__NR_recvmsg, __NR_sendmmsg, __NR_recvmmsg, __NR_socketpair,
	__NR_sendfile, __NR_fsync, __NR_fdatasync, __NR_syncfs, __NR_ftruncate,
	__NR_fallocate, __NR_fadvise64, __NR_getdents64, __NR_mkdirat,
	__NR_unlinkat, __NR_renameat, __NR_renameat2, __NR_linkat,
	__NR_faccessat, __NR_faccessat2, __NR_readlinkat, __NR_fchmod,
	__NR_fchmodat, __NR_fchown, __NR_utimensat, __NR_flock,
	__NR_statfs, __NR_fstatfs, __NR_getcwd, __NR_chdir, __NR_umask,
	__NR_uname, __NR_getrusage, __NR_sysinfo, __NR_timerfd_create,
	__NR_timerfd_settime, __NR_membarrier, __NR_restart_syscall,
	__NR_inotify_init1, __NR_inotify_add_watch, __NR_inotify_rm_watch,
	__NR_set_tid_address, __NR_getppid, __NR_sched_setaffinity,
	__NR_getitimer, __NR_setitimer, __NR_mincore, __NR_msync,
	__NR_io_setup, __NR_io_submit, __NR_io_getevents, __NR_io_destroy,
#ifdef __x86_64__
	__NR_open, __NR_stat, __NR_lstat, __NR_poll, __NR_select,
	__NR_access, __NR_pipe, __NR_dup2, __NR_rename, __NR_unlink,
	__NR_mkdir, __NR_rmdir, __NR_link, __NR_readlink, __NR_chmod,
	__NR_getdents, __NR_epoll_wait, __NR_epoll_create, __NR_eventfd,
	__NR_inotify_init, __NR_time, __NR_arch_prctl, __NR_alarm,
	__NR_accept, __NR_creat, __NR_utimes,
#endif
};

/* Calls correo never makes that an intruder needs: answering them with
 * an error would let an exploit probe on, so they end the process. */
static const int sandbox_fatal[] = {
	__NR_execve, __NR_execveat, __NR_ptrace, __NR_process_vm_readv,
	__NR_process_vm_writev, __NR_kexec_load, __NR_init_module,
	__NR_finit_module, __NR_delete_module, __NR_mount, __NR_umount2,
	__NR_pivot_root, __NR_chroot, __NR_setns, __NR_unshare, __NR_bpf,
	__NR_perf_event_open, __NR_userfaultfd, __NR_personality,
#ifdef __x86_64__
	__NR_fork, __NR_vfork,
#endif
};

/* socket(2) families: IP for clients and DNS, Unix for syslog, netlink
 * for getaddrinfo's AI_ADDRCONFIG. */
static const int sandbox_families[] = {
	AF_UNIX, AF_INET, AF_INET6, AF_NETLINK,
};

#define SB_MAX_INSNS 512
/* The low 32 bits of the first argument (little-endian only). */
#define SB_ARG0 offsetof(struct seccomp_data, args[0])
#define SB_ERRNO(e) (SECCOMP_RET_ERRNO | ((e) & SECCOMP_RET_DATA))

struct sb_prog {
	struct sock_filter insn[SB_MAX_INSNS];
	unsigned short n;
};

static void
sb_emit(struct sb_prog *p, unsigned short code, uint8_t jt, uint8_t jf,
    uint32_t k)
{
	if (p->n >= SB_MAX_INSNS)
		panic("sandbox: seccomp program too long");
	p->insn[p->n++] = (struct sock_filter)BPF_JUMP(code, k, jt, jf);
}

/* "if nr == syscall return action", leaving nr in the accumulator. */
static void
sb_on(struct sb_prog *p, int nr, uint32_t action)
{
	sb_emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 1, (uint32_t)nr);
	sb_emit(p, BPF_RET | BPF_K, 0, 0, action);
}

/* Threads only: clone(2) without CLONE_THREAD is a fork. clone3 keeps its
 * flags in memory that BPF cannot read: ENOSYS makes glibc fall back to
 * clone(2), which is checked here. */
static void
sb_clone(struct sb_prog *p)
{
	sb_emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 4, __NR_clone);
	sb_emit(p, BPF_LD | BPF_W | BPF_ABS, 0, 0, SB_ARG0);
	sb_emit(p, BPF_JMP | BPF_JSET | BPF_K, 0, 1, CLONE_THREAD);
	sb_emit(p, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
	sb_emit(p, BPF_RET | BPF_K, 0, 0, SB_ERRNO(EPERM));
	sb_on(p, __NR_clone3, SB_ERRNO(ENOSYS));
}

static void
sb_socket(struct sb_prog *p)
{
	const uint8_t nf = (uint8_t)(sizeof(sandbox_families) /
	    sizeof(sandbox_families[0]));

	sb_emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, (uint8_t)(nf + 3),
	    __NR_socket);
	sb_emit(p, BPF_LD | BPF_W | BPF_ABS, 0, 0, SB_ARG0);
	for (uint8_t i = 0; i < nf; i++)
		sb_emit(p, BPF_JMP | BPF_JEQ | BPF_K, (uint8_t)(nf - i), 0,
		    (uint32_t)sandbox_families[i]);
	sb_emit(p, BPF_RET | BPF_K, 0, 0, SB_ERRNO(EAFNOSUPPORT));
	sb_emit(p, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
}

static void
sb_build(struct sb_prog *p)
{
	p->n = 0;
	sb_emit(p, BPF_LD | BPF_W | BPF_ABS, 0, 0,
	    offsetof(struct seccomp_data, arch));
	sb_emit(p, BPF_JMP | BPF_JEQ | BPF_K, 1, 0, SANDBOX_AUDIT_ARCH);
	sb_emit(p, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_KILL_PROCESS);
	sb_emit(p, BPF_LD | BPF_W | BPF_ABS, 0, 0,
	    offsetof(struct seccomp_data, nr));
#ifdef __x86_64__
	/* The x32 ABI's numbers alias ours with bit 30 set. */
	sb_emit(p, BPF_JMP | BPF_JGE | BPF_K, 0, 1, 0x40000000U);
	sb_emit(p, BPF_RET | BPF_K, 0, 0, SB_ERRNO(EPERM));
#endif
	for (size_t i = 0; i < sizeof(sandbox_fatal) /
	    sizeof(sandbox_fatal[0]); i++)
		sb_on(p, sandbox_fatal[i], SECCOMP_RET_KILL_PROCESS);
	sb_clone(p);
	sb_socket(p);
	for (size_t i = 0; i < sizeof(sandbox_allowed) /
	    sizeof(sandbox_allowed[0]); i++)
		sb_on(p, sandbox_allowed[i], SECCOMP_RET_ALLOW);
	sb_emit(p, BPF_RET | BPF_K, 0, 0, SB_ERRNO(EPERM));
}

/* Returns 1 when the filter is in force on every thread, 0 when the
 * kernel has no seccomp filters, -1 on a failure. */
static int
sandbox_seccomp(void)
{
	static struct sb_prog prog;
	struct sock_fprog fp;

	sb_build(&prog);
	fp.len = prog.n;
	fp.filter = prog.insn;
	long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
	    SECCOMP_FILTER_FLAG_TSYNC, &fp);
	if (rc == 0)
		return 1;
	if (rc < 0 && (errno == ENOSYS || errno == EINVAL))
		return 0;
	if (rc > 0)
		log_warnx("event=sandbox error=\"seccomp: thread %ld could "
		    "not be synchronised\"", rc);
	else
		log_warn("event=sandbox error=seccomp");
	return -1;
}
#else
static int
sandbox_seccomp(void)
{
	return 0;
}
#endif

/* ---- together ----------------------------------------------------------- */

/* Warms what glibc would otherwise load on first use. */
static void
sandbox_prepare(const struct config *cfg)
{
	tzset();
	if (getenv("SQLITE_TMPDIR") == NULL &&
	    setenv("SQLITE_TMPDIR", cfg->data_dir, 1) < 0)
		log_warn("event=sandbox error=setenv");
}

int
sandbox_apply(const struct config *cfg)
{
	const char *why = NULL;
	int nnp = 0, ll = 0, sc = 0;

	if (strcmp(cfg->sandbox, "no") == 0)
		why = "config";
	else if (SANDBOX_SANITIZED)
		why = "sanitizer";
	if (why == NULL || !strcmp(why, "sanitizer")) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
			log_warn("event=sandbox error=no_new_privs");
			return -1;
		}
		nnp = 1;
	}
	if (why == NULL) {
		sandbox_prepare(cfg);
		if ((ll = sandbox_landlock(cfg)) < 0 ||
		    (sc = sandbox_seccomp()) < 0)
			return -1;
	}
	char abi[16] = "no";
	if (ll > 0)
		snprintf(abi, sizeof(abi), "abi%d", ll);
	log_info("event=sandbox no_new_privs=%s landlock=%s seccomp=%s%s%s",
	    nnp ? "yes" : "no", abi, sc ? "yes" : "no",
	    why ? " reason=" : "", why ? why : "");
	return 0;
}
