/* The outbound scheduler: takes the messages of data_dir/queue to their
 * recipients' servers (MX routing through queue/dns, the SMTP client of
 * queue/smtp_client), retries temporary failures with exponential
 * back-off until [delivery] max_lifetime, sends delay warnings after
 * delay_warning and RFC 3464 reports for failures (and for successes when
 * NOTIFY=SUCCESS asked), and removes a message once no recipient is left.
 *
 * State lives in the envelope files (queue.h): after every attempt the
 * envelope is rewritten durably before anything is forgotten, so a crash
 * or kill -9 at any point loses nothing (a recipient may get a message or
 * a report twice, never none).
 *
 * Loop thread only. One scheduler per process (the daemon's). */
#ifndef QUEUE_SCHEDULER_H
#define QUEUE_SCHEDULER_H

#include <stdbool.h>

struct config;
struct dns_resolver;
struct userdb;
struct event_base;

/* Starts the scheduler of the daemon: reads the queue back (on the pool)
 * and starts delivering. cfg, db and dns stay owned by the caller and must
 * outlive the scheduler (scheduler_set_config for a reload). 0 or -1. */
int scheduler_start(const struct config *cfg, struct userdb *db,
    struct dns_resolver *dns);
void scheduler_set_config(const struct config *cfg);
/* Stops: abandons attempts in flight (their envelopes are as before the
 * attempt, so they are retried after the restart) and frees everything.
 * Call before net_close_all() and before freeing the resolver. */
void scheduler_stop(void);

/* A message was just queued (SMTP, a report): look at the queue now. */
void scheduler_kick(void);

/* ETRN (RFC 1985) and `queue flush`: makes every queued message with a
 * recipient in domain (with subdomains true, also in its subdomains; NULL:
 * every message) due at once. Returns how many messages that concerns, or
 * -1 when the scheduler is not running. */
int scheduler_flush_domain(const char *domain, bool subdomains);

/* The file whose modification asks the running daemon to flush the whole
 * queue (`correo queue flush` touches it after resetting the envelopes'
 * next attempt): data_dir/queue/flush. */
#define SCHEDULER_FLUSH_FILE "queue/flush"

#endif
