/* Internals of the outbound scheduler shared by scheduler.c (the queue in
 * memory, scans, timers), sched_attempt.c (one delivery attempt of one
 * message: routing, SMTP, results, reports) and sched_odmr.c (On-Demand
 * Mail Relay). Loop thread unless said. */
#ifndef QUEUE_SCHED_INT_H
#define QUEUE_SCHED_INT_H

#include <limits.h>
#include <stdbool.h>
#include <time.h>

#include "core/strlist.h"
#include "queue/queue.h"
#include "queue/smtp_client.h"
#include "queue/smtp_client_reply.h"

struct config;
struct dns_resolver;
struct userdb;
struct timer;
struct sched_attempt;
struct sched_odmr;

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
	struct sched_odmr *odmr;	/* ODMR deliveries (for stop) */
};

extern struct sched *sched_global;

/* sched_attempt.c */
/* Starts an attempt for m (m->busy set by the caller). */
void sched_attempt_start(struct sched *sc, struct sched_msg *m);
/* Shutdown: abandons every attempt (network work stops; pool jobs in
 * flight free their attempt when they complete). */
void sched_attempt_abandon_all(struct sched *sc);

/* An attempt that routes nothing (ODMR, RFC 2645): only the recipients
 * in domains are tried, by handing the message to a session the caller
 * owns; the other recipients stay as they are, and the message keeps its
 * schedule (no attempt counted, no delay warning). */
struct sched_attempt_ext {
	const struct strlist *domains;	/* lowercase; copied */
	/* Hands msg to the caller's session (smtp_client_send): 0, or -1
	 * when the session is gone (fn is then not called). */
	int (*send)(void *arg, const struct smtp_client_message *msg,
	    smtp_client_result_fn fn, void *fn_arg);
	/* The attempt is over and its envelope written (not called when
	 * abandoned at shutdown). */
	void (*finished)(void *arg);
	void *arg;
	/* Counted as a delivery attempt (connection reuse): back-off and
	 * delay warnings as for a routed attempt. */
	bool counts;
};
/* Starts one for m (m->busy set and sc->in_flight counted by the
 * caller). */
void sched_attempt_start_ext(struct sched *sc, struct sched_msg *m,
    const struct sched_attempt_ext *x);

/* sched_odmr.c: shutdown: ends every ODMR delivery (after
 * sched_attempt_abandon_all). */
void sched_odmr_stop_all(struct sched *sc);

/* scheduler.c: an attempt is over; m->due and m->gone are set. */
void sched_attempt_finished(struct sched *sc, struct sched_msg *m,
    bool queued_more);

/* Back-off after n attempts (n >= 1), in seconds. */
unsigned sched_backoff(const struct config *cfg, unsigned n);

#endif
