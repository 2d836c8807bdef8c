/* The IMAP server (RFC 9051 IMAP4rev2, RFC 3501 IMAP4rev1 and the
 * extensions listed in CAPABILITY) on the imap and imaps listeners. It
 * serves each user's mailboxes from the store. */
#ifndef IMAP_IMAP_H
#define IMAP_IMAP_H

#include "core/config.h"
#include "net/conn.h"

struct userdb;
struct imap_server;

struct imap_server *imap_server_new(const struct config *cfg,
    struct userdb *db);
void imap_server_set_config(struct imap_server *srv,
    const struct config *cfg);
void imap_server_free(struct imap_server *srv);

/* conn_accept_fn for the imap and imaps listeners; arg is the server. */
void imap_accept(struct conn *c, enum conn_refusal refusal, void *arg);

#endif
