/* Reports to an envelope sender (RFC 3464 delivery status notifications)
 * stored the way SMTP stores mail: into the sender's mailboxes here, or
 * into the queue for a sender elsewhere. Used by the outbound scheduler
 * (failures, delays, successes) and by SMTP (NOTIFY=SUCCESS for local
 * delivery). */
#ifndef QUEUE_REPORT_H
#define QUEUE_REPORT_H

#include <stdbool.h>

#include "core/strlist.h"
#include "queue/dsn.h"

struct userdb;

struct report_dest {
	struct strlist maildirs;	/* the sender's mailboxes here */
	bool remote;			/* the sender is elsewhere: queue */
	bool queued;			/* set by report_store: it was */
};

/* Loop thread: where reports to sender go. False when nowhere (a local
 * address that is no user). */
bool report_route(struct userdb *db, const char *data_dir,
    const char *sender, struct report_dest *d);

/* Pool: composes rep (the original read from msg_path, or none when
 * NULL) into a new spool file and stores it for d (durably, like SMTP
 * mail). Logs what happened (id names the message reported on). 0 or
 * -1. */
int report_store(const char *data_dir, const char *id,
    const struct dsn_report *rep, const char *msg_path,
    struct report_dest *d);

void report_dest_free(struct report_dest *d);

#endif
