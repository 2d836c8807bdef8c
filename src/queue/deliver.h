/* Local delivery of a spooled message into several Maildirs. The job runs
 * on a worker thread (it fsyncs); the caller owns the struct and reads the
 * results in its done callback. */
#ifndef QUEUE_DELIVER_H
#define QUEUE_DELIVER_H

#include "core/strlist.h"
#include "queue/queue.h"
#include "queue/report.h"
#include "queue/spool.h"

/* A success notice (RFC 3461 NOTIFY=SUCCESS) for recipients delivered
 * here, written while the message file is still at hand. Every string of
 * rep and rcpts is owned (local_notice_free). */
struct local_notice {
	struct dsn_report rep;
	struct dsn_rcpt *rcpts;
	size_t n;
	struct report_dest dest;
};
void local_notice_free(struct local_notice *n);

struct local_delivery {
	struct spool_file *spool;	/* flushed, still open */
	struct strlist maildirs;	/* one path per recipient mailbox */
	const char *data_dir;
	struct queue_envelope *remote;	/* recipients elsewhere, or NULL */
	int commit_error;		/* errno of fsync of the spool file */
	unsigned delivered;		/* mailboxes that have the message */
	int first_error;		/* errno of the first failed mailbox */
	/* Sent once every mailbox has the message, or NULL. */
	struct local_notice *notice;
};

/* Worker thread: fsync the spool file, link it into each Maildir, fsync,
 * queue it for the remote recipients, then remove the spool file. */
void local_delivery_run(void *arg);

/* Loop thread: frees the paths (not the spool struct). */
void local_delivery_free(struct local_delivery *ld);

#endif
