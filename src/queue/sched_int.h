/* Internals of the outbound scheduler shared by scheduler.c (the queue in
 * memory, scans, timers) and sched_attempt.c (one delivery attempt of one
 * message: routing, SMTP, results, reports). Loop thread unless said. */
#ifndef QUEUE_SCHED_INT_H
#define QUEUE_SCHED_INT_H

#include <limits.h>
#include <stdbool.h>
#include <time.h>

#include "core/strlist.h"
#include "queue/queue.h"
#include "queue/smtp_client_reply.h"

struct config;
struct dns_resolver;
struct userdb;
struct timer;
struct sched_attempt;

/* One queued message the scheduler knows. */
struct sched_msg {
	char id[17];
	time_t due;			/* next attempt; 0: now */
	bool busy;			/* an attempt is in flight */
	bool gone;			/* delivered or deleted: drop it */
	char domain[256];		/* first recipient's domain (limits) */
	struct sched_msg *next;
};

struct sched {
	const struct config *cfg;
	struct userdb *db;
	struct dns_resolver *dns;
	struct sched_msg *msgs;
	unsigned nmsgs;
	unsigned in_flight;
	struct timer *tick;
	bool scanning;
	bool rescan;			/* a kick came during a scan */
	time_t last_scan;
	struct timespec flush_mtime;	/* of SCHEDULER_FLUSH_FILE */
	struct sched_attempt *attempts;	/* in flight (for stop) */
};

extern struct sched *sched_global;

/* sched_attempt.c */
/* Starts an attempt for m (m->busy set by the caller). */
void sched_attempt_start(struct sched *sc, struct sched_msg *m);
/* Shutdown: abandons every attempt (network work stops; pool jobs in
 * flight free their attempt when they complete). */
void sched_attempt_abandon_all(struct sched *sc);

/* scheduler.c: an attempt is over; m->due and m->gone are set. */
void sched_attempt_finished(struct sched *sc, struct sched_msg *m,
    bool queued_more);

/* Back-off after n attempts (n >= 1), in seconds. */
unsigned sched_backoff(const struct config *cfg, unsigned n);

#endif
