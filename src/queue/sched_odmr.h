/* On-Demand Mail Relay (RFC 2645), the queue's side: the scheduler holds
 * the recipients of ODMR domains (auth/userdb.h) instead of routing them;
 * when their client has authenticated and sent ATRN on the odmr listener,
 * sched_odmr_find() says whether mail waits for its domains, and
 * sched_odmr_deliver() sends it over the client's own connection, the
 * roles turned around (this side becomes the SMTP client). Each message
 * is one attempt of the scheduler: delivered recipients leave the queue,
 * refused ones get a report, temporary failures stay held.
 *
 * Loop thread only; needs the running scheduler (scheduler_start). */
#ifndef QUEUE_SCHED_ODMR_H
#define QUEUE_SCHED_ODMR_H

#include "core/strlist.h"
#include "net/conn.h"

struct sched_odmr;

/* n: how many queued messages have a recipient in the domains (0: none).
 * Call sched_odmr_deliver or sched_odmr_cancel, now or later. */
typedef void (*sched_odmr_found_fn)(struct sched_odmr *p, size_t n,
    void *arg);

/* Starts looking, on the pool, for queued messages with a recipient in
 * one of domains (lowercase, exact names; copied). fn is called once,
 * from the loop and never from inside this call. Returns NULL when the
 * scheduler is not running. */
struct sched_odmr *sched_odmr_find(const struct strlist *domains,
    sched_odmr_found_fn fn, void *arg);

/* After fn: takes c over (see smtp_client_new_on_conn: write the ATRN
 * reply first), waits for the client's greeting, sends every message
 * found (to the recipients of the domains only), then QUIT; c is closed
 * at the end. p belongs to the scheduler from now on. 0, or -1 (p freed,
 * c untouched) when the scheduler stopped. */
int sched_odmr_deliver(struct sched_odmr *p, struct conn *c);

/* Forgets p before sched_odmr_deliver (the client left, or there is
 * nothing to send); fn is not called any more. */
void sched_odmr_cancel(struct sched_odmr *p);

#endif
