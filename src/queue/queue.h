/* The outbound queue: data_dir/queue/msg/ID holds a message, and
 * data_dir/queue/env/ID its envelope (a small text file, one field per
 * line). A message is queued exactly when its envelope file exists: both
 * are fsync'd, the message first, before the SMTP 250.
 *
 * The delivery agent (MX routing, retries, bounces) reads this; until it
 * exists messages wait here and `correo queue list` shows them. */
#ifndef QUEUE_QUEUE_H
#define QUEUE_QUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "core/strlist.h"
#include "queue/dsn.h"

struct queue_envelope {
	char id[17];
	time_t created;
	uint64_t size;
	char *from;		/* reverse path without brackets, "" for <> */
	struct strlist rcpts;	/* forward paths still queued, no brackets */
	/* Per recipient, in the order of rcpts (nstate may be shorter when
	 * code added recipients with strlist_add: they get defaults): DSN
	 * parameters and the last attempt's result (action NONE or
	 * DELAYED while queued). */
	struct dsn_rcpt *state;
	size_t nstate;
	bool smtputf8;
	bool eightbit;
	char *user;		/* authenticated submitter, or NULL */
	enum dsn_ret ret;	/* RET= of the transaction */
	char *envid;		/* ENVID= as xtext, or NULL */
	/* Scheduling: attempts made, when the next may start (0: at
	 * once), and whether the sender was told of the delay. */
	unsigned attempts;
	time_t next_attempt;
	bool delay_notified;
};

/* Adds a recipient with its DSN parameters (notify 0: none given; orcpt
 * in dsn_orcpt_parse's stored form, or NULL). */
void queue_envelope_add_rcpt(struct queue_envelope *env, const char *addr,
    unsigned notify, const char *orcpt);
/* The state of recipient i, created with defaults when missing. */
struct dsn_rcpt *queue_envelope_state(struct queue_envelope *env, size_t i);
/* Keeps only the recipients for which keep[i] is true. */
void queue_envelope_filter(struct queue_envelope *env, const bool *keep);

/* Rewrites the envelope of a queued message durably (a new file,
 * fsync'd, renamed over the old one, the folder fsync'd): after a crash
 * either the old or the new state is there. 0 or -1 with errno. */
int queue_update(const char *data_dir, const struct queue_envelope *env);

/* Path of the message file of id, into out. 0 or -1. */
int queue_msg_path(char *out, size_t n, const char *data_dir,
    const char *id);

/* True for a queue id: 16 lowercase hex digits. */
bool queue_valid_id(const char *id);

/* Makes queue/msg and queue/env. 0 or -1 with errno. */
int queue_init(const char *data_dir);

/* Worker thread. Queues the complete, fsync'd file src under env->id: a
 * hard link as queue/msg/ID (fsync of the folder), then the envelope
 * written durably. 0 or -1 with errno (nothing is queued then). */
int queue_add(const char *data_dir, const char *src,
    const struct queue_envelope *env);

/* Reads the envelope of id. 0 or -1 (missing or malformed). */
int queue_read(const char *data_dir, const char *id,
    struct queue_envelope *env);
/* Every queued id, sorted. */
int queue_list(const char *data_dir, struct strlist *ids);
/* Removes a queued message: envelope first, then the message. 0 or -1. */
int queue_delete(const char *data_dir, const char *id);
/* At start: removes message files without an envelope (never
 * acknowledged). Returns how many. */
int queue_clean_orphans(const char *data_dir);

void queue_envelope_free(struct queue_envelope *env);

#endif
