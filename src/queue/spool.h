/* Incoming message files: data_dir/queue/tmp/QID while a message arrives.
 * Writes are buffered; spool_commit() makes the file durable (blocking:
 * call it from the thread pool). */
#ifndef QUEUE_SPOOL_H
#define QUEUE_SPOOL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPOOL_BUF_SIZE	(128 * 1024)

struct spool_file {
	int fd;
	char id[17];
	char path[PATH_MAX];
	uint64_t size;		/* octets written so far */
	int error;		/* errno of the first failed write, or 0 */
	bool created;		/* the file exists (ours to remove) */
	/* fd < 0 after spool_create_lazy: octets 0..size are all in buf. */
	size_t buffered;
	char *buf;		/* SPOOL_BUF_SIZE octets */
};

/* Makes data_dir/queue/tmp if needed. 0 or -1 with errno. */
int spool_init(const char *data_dir);
/* At start: removes what a crash left in queue/tmp. Those messages were
 * never acknowledged (the 250 comes after the spool name is gone). Returns
 * the number of messages removed (blank files are removed, not counted). */
int spool_clean_tmp(const char *data_dir);
/* Creates a new empty spool file with a fresh queue id (sf->fd open).
 * 0 or -1. */
int spool_create(const char *data_dir, struct spool_file *sf);
/* The same, but the file is made only when the message outgrows the
 * buffer, or by spool_materialize(): a small message costs the loop
 * thread no file system call at all. */
int spool_create_lazy(const char *data_dir, struct spool_file *sf);
/* Appends n octets; failures are remembered in sf->error. */
void spool_write(struct spool_file *sf, const void *p, size_t n);
/* Once the message is whole (loop thread): writes out the buffer when
 * the file exists; a message still all in the buffer stays there. 0 or
 * -1 with sf->error. */
int spool_flush(struct spool_file *sf);
/* Worker thread: creates the file if needed and writes the buffer out,
 * no fsync. 0 or -1 with errno. */
int spool_materialize(struct spool_file *sf);
/* spool_materialize, fsync and close (worker thread). 0 or -1 with
 * errno. */
int spool_commit(struct spool_file *sf);
/* An empty file made ahead in queue/tmp. Making a file is mostly the
 * file system finding a free inode: tens of microseconds on ext4 after
 * many files were deleted. A writer that makes a few while it has
 * nothing else to do takes that off the time a client waits. */
#define SPOOL_BLANK_PREFIX	"blank-"

struct spool_blank {
	int fd;			/* -1: none */
	char path[PATH_MAX];
};

/* Makes one with a fresh name. 0 or -1 with errno. */
int spool_blank_make(const char *data_dir, struct spool_blank *b);
/* Closes and removes it (if any). */
void spool_blank_drop(struct spool_blank *b);
/* Gives a lazy sf whose file is not made yet the blank file b (which is
 * then empty); spool_materialize writes into it. 0, or -1 when sf has a
 * file already or an error (b is left as it was). */
int spool_adopt(struct spool_file *sf, struct spool_blank *b);
/* Closes (if open) and unlinks the file; frees the buffer. */
void spool_discard(struct spool_file *sf);

#endif
