/* The delivery journal: group commit for messages whose recipients are all
 * local. A writer thread takes every delivery waiting, appends one record
 * per message (the message and its Maildir targets) to the active segment
 * in one write, fdatasyncs it once for all of them, then links each spool
 * file into its Maildirs with no fsync of its own, and hands the results
 * back to the loop. A checkpoint thread makes those links durable in bulk
 * (syncfs), then invalidates the segment so it can be used again. After a
 * crash, journal_replay() puts back every recorded message whose Maildir
 * file is missing or incomplete: acknowledged mail is never lost, as with
 * a file fsync per message, and is written with one fdatasync per batch.
 *
 * Segments: data_dir/queue/journal/0 .. 3, made once (their directory is
 * fsync'd then), reused in turn, and written over with zeros to their
 * full length once the journal is busy; a segment is closed when it passes
 * JOURNAL_SEG_MAX octets or is older than a second. Messages over
 * JOURNAL_MAX_MESSAGE, or when no segment can be written, take the
 * classic path (local_delivery_run: fsync of the file and of new/), and
 * so does everything after a checkpoint's syncfs failed (the segments are
 * then left for the next start to replay). */
#ifndef QUEUE_JOURNAL_H
#define QUEUE_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/pool.h"
#include "queue/deliver.h"

#define JOURNAL_NSEG		4
#define JOURNAL_SEG_MAX		(16u << 20)
#define JOURNAL_MAX_MESSAGE	(1u << 20)
#define JOURNAL_CLOSE_MS	1000
#define JOURNAL_BATCH_MAX	(8u << 20)	/* octets of messages */
#define JOURNAL_PREPARE_AFTER	256	/* records before segments grow */
#define JOURNAL_KEEP_MS		1000

struct event_base;

struct journal_replay_stats {
	unsigned segments;	/* segment files that held records */
	unsigned records;	/* valid records read */
	unsigned restored;	/* Maildir files written back */
	unsigned saved;		/* put in queue/journal-failed instead */
	unsigned failed;	/* neither (the segments stay) */
};

/* At start, before journal_start(): delivers what the segments under
 * data_dir/queue/journal hold and the Maildirs lack, makes it durable and
 * invalidates the segments. 0, or -1 with errno when a segment could not
 * be read or invalidated (the segments then stay for the next start). */
int journal_replay(const char *data_dir, struct journal_replay_stats *st);

/* Makes the segment files and starts the threads; completions run on
 * base. 0 or -1 with errno (the server then uses the classic path). */
int journal_start(const char *data_dir, struct event_base *base);
/* True when a message of size octets for local mailboxes only may go
 * through the journal. */
bool journal_accepts(uint64_t size);
/* Loop thread: delivers ld (its spool flushed and open) and calls
 * done(arg) on the loop when it is over; ld's result fields as with
 * local_delivery_run. */
void journal_submit(struct local_delivery *ld, pool_done_fn done, void *arg);
/* Deliveries submitted and not yet done. */
unsigned journal_pending(void);
/* Finishes what is submitted (running the done callbacks), checkpoints
 * every segment and stops the threads. */
void journal_stop(void);

/* Counters for tests and logs. */
struct journal_stats {
	unsigned long records, batches, fallbacks, checkpoints;
	unsigned long long sync_us, checkpoint_us;	/* time in them */
	unsigned long long max_batch;	/* octets of the largest write */
	/* Batches whose write the kernel took asynchronously, the spool
	 * files being written meanwhile. */
	unsigned long async_writes;
	/* Octets of the writer's batch buffer now: kept while mail comes,
	 * given back after JOURNAL_KEEP_MS without any. */
	unsigned long long buffer;
};
void journal_get_stats(struct journal_stats *st);

#endif
