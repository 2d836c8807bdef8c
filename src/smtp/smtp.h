/* The SMTP server (RFC 5321) on the smtp listener. */
#ifndef SMTP_SMTP_H
#define SMTP_SMTP_H

#include "core/config.h"
#include "net/conn.h"

struct userdb;
struct smtp_server;

struct smtp_server *smtp_server_new(const struct config *cfg,
    struct userdb *db);
/* Later sessions use cfg (SIGHUP); cfg must outlive the sessions that
 * started with the old one, so the caller keeps old configs. */
void smtp_server_set_config(struct smtp_server *srv, const struct config *cfg);
void smtp_server_free(struct smtp_server *srv);

/* conn_accept_fn for the smtp listener; arg is the smtp_server. */
void smtp_accept(struct conn *c, enum conn_refusal refusal, void *arg);

#endif
