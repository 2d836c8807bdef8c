/* File system helpers for durable writes. Blocking: call off the loop
 * (from the thread pool) when they fsync. */
#ifndef CORE_FS_H
#define CORE_FS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* mkdir -p; 0 or -1 with errno. */
int fs_mkdir_p(const char *path, mode_t mode);
/* fsync(2) on a directory; 0 or -1 with errno. */
int fs_fsync_dir(const char *path);
/* fs_fsync_dir, shared between threads: returns once an fsync of path
 * that began after the call has ended, which may be another caller's.
 * For many threads making entries in one directory (deliveries into a
 * Maildir's new/). */
int fs_fsync_dir_shared(const char *path);
/* How many fsyncs fs_fsync_dir_shared has run (for tests and logs). */
unsigned long fs_fsync_dir_shared_runs(void);
/* fsync the directory that holds path. */
int fs_fsync_parent(const char *path);
/* write(2) all of p, retrying on EINTR and short writes; 0 or -1. */
int fs_write_all(int fd, const void *p, size_t n);
/* pwrite(2) / pread(2) all n octets at off, retrying on EINTR and short
 * transfers; 0, or -1 with errno (EIO when the file ends first). */
int fs_pwrite_all(int fd, const void *p, size_t n, uint64_t off);
int fs_pread_all(int fd, void *p, size_t n, uint64_t off);
/* Writes a whole file durably: tmp file, fsync, rename, fsync dir. */
int fs_write_file(const char *path, const void *p, size_t n, mode_t mode);

#endif
