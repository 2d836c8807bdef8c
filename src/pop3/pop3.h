/* The POP3 server (RFC 1939, 2449, 2595, 5034, 3206, 6856) on the pop3
 * and pop3s listeners. It serves each user's INBOX from the store. */
#ifndef POP3_POP3_H
#define POP3_POP3_H

#include "core/config.h"
#include "net/conn.h"

struct userdb;
struct pop3_server;

struct pop3_server *pop3_server_new(const struct config *cfg,
    struct userdb *db);
void pop3_server_set_config(struct pop3_server *srv,
    const struct config *cfg);
void pop3_server_free(struct pop3_server *srv);

/* conn_accept_fn for the pop3 and pop3s listeners; arg is the server. */
void pop3_accept(struct conn *c, enum conn_refusal refusal, void *arg);

#endif
