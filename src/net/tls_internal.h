/* Shared between net/tls.c and net/conn.c only. */
#ifndef NET_TLS_INTERNAL_H
#define NET_TLS_INTERNAL_H

#include <openssl/ssl.h>

/* The context for new TLS sessions, or NULL. */
SSL_CTX *tls_current_ctx(void);

#endif
