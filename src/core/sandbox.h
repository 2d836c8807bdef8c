/* Least privilege at run time: no_new_privs, Landlock and a seccomp
 * filter, applied once by serve after binding and the privilege drop.
 * Untrusted input: none (it only narrows what the process may do). */
#ifndef CORE_SANDBOX_H
#define CORE_SANDBOX_H

#include "core/config.h"

/* Restricts the calling thread and every thread it starts afterwards:
 *   - prctl(PR_SET_NO_NEW_PRIVS);
 *   - Landlock (when the kernel has it): data_dir read-write; the TLS
 *     files, the configuration file (for SIGHUP), and what the libraries
 *     read lazily (/etc/ssl, /usr/lib, /usr/share/dns, zoneinfo, resolver
 *     and NSS files, /dev/urandom) read-only; nothing executable; with
 *     ABI 4 no new TCP listener and outbound TCP only to the ports of
 *     [delivery]; with ABI 6 no signals or abstract sockets outside;
 *   - a seccomp filter (x86_64, aarch64): the system calls correo makes;
 *     a few that only an intruder would make (execve, ptrace, mount...)
 *     kill the process; any other fails with EPERM.
 * Landlock binds only the calling thread and the threads it starts later
 * (kernels without a thread-sync flag cannot restrict running threads),
 * so call it before the worker pool and the resolver thread start. The
 * seccomp filter is synchronised to every thread (and so is
 * no_new_privs, which that requires).
 * Sets SQLITE_TMPDIR to data_dir when unset, so that SQLite's temporary
 * files stay where writing is allowed.
 * cfg->sandbox "no", or a build with AddressSanitizer (whose reports
 * and leak checker need ptrace and exec), leaves Landlock and seccomp off.
 * Logs one line: event=sandbox no_new_privs=yes landlock=abiN seccomp=yes.
 * A kernel without a feature turns that feature off; returns -1 (with
 * the reason logged) only when a supported feature fails to apply. */
int sandbox_apply(const struct config *cfg);

#endif
