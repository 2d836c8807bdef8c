/* A small thread pool for blocking work (fsync, password hashing).
 * work() runs on a worker thread; done() later runs on the loop thread. */
#ifndef CORE_POOL_H
#define CORE_POOL_H

struct event_base;

typedef void (*pool_work_fn)(void *arg);
typedef void (*pool_done_fn)(void *arg);

/* Starts nthreads workers whose completions are delivered on base. */
int pool_init(struct event_base *base, unsigned nthreads);
/* Queues a job; done may be NULL. */
void pool_submit(pool_work_fn work, pool_done_fn done, void *arg);
/* Number of jobs queued or running. */
unsigned pool_pending(void);
/* Waits for queued jobs, runs their done callbacks, stops the workers. */
void pool_shutdown(void);

#endif
