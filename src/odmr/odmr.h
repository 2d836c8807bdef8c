/* The On-Demand Mail Relay server (RFC 2645) on the odmr listener (port
 * 366): a client with a dynamic address authenticates (AUTH, inside TLS)
 * and sends ATRN; the connection then turns around and the mail held in
 * the queue for its domains (`correo odmr add`) is sent to it over the
 * same connection by queue/sched_odmr.h. */
#ifndef ODMR_ODMR_H
#define ODMR_ODMR_H

#include "core/config.h"
#include "net/conn.h"

struct userdb;
struct odmr_server;

struct odmr_server *odmr_server_new(const struct config *cfg,
    struct userdb *db);
void odmr_server_set_config(struct odmr_server *srv,
    const struct config *cfg);
void odmr_server_free(struct odmr_server *srv);

/* conn_accept_fn for the odmr listener; arg is the server. */
void odmr_accept(struct conn *c, enum conn_refusal refusal, void *arg);

#endif
