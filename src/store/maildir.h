/* Maildir delivery (the durable part). Blocking: call from the thread pool.
 * Files keep the wire's CRLF line ends, so a file's size is RFC822.SIZE. */
#ifndef STORE_MAILDIR_H
#define STORE_MAILDIR_H

#include <stddef.h>
#include <stdint.h>

/* Creates path/cur, path/new, path/tmp (mode 0700) when missing. 0 or -1. */
int maildir_create(const char *path);

/* Delivers a complete, fsync'd message file src of size octets into the
 * Maildir at path: a hard link (or, across file systems, a copy through
 * tmp/ with fsync) under a new unique name in new/, then fsync of new/.
 * On return 0 the message survives a crash. Writes the file name to name
 * (size namelen). Returns 0 or -1 with errno set. */
int maildir_deliver(const char *path, const char *src, uint64_t size,
    char *name, size_t namelen);

/* A new unique Maildir file name: "SECS.MUSECSPPIDQN.HOST,S=SIZE". */
void maildir_unique_name(char *out, size_t n, uint64_t size);

#endif
