/* TLS server contexts (OpenSSL 3): TLS 1.2 and 1.3 only, modern ciphers,
 * server preference, no compression or renegotiation. The certificate and
 * key come from [tls], or a self-signed pair made in data_dir/tls. */
#ifndef NET_TLS_H
#define NET_TLS_H

#include "core/config.h"

/* Loads (or first generates) the certificate and builds the context that
 * new connections use. Called at start and on SIGHUP; connections already
 * in TLS keep the context they started with. 0 or -1 with *error_r. */
int tls_load(const struct config *cfg, char **error_r);
/* True once a context is loaded. */
int tls_available(void);
void tls_free(void);

/* For tests and the embedded default: writes a self-signed EC P-256 pair
 * for hostname to cert_path/key_path when either file is missing. */
int tls_make_self_signed(const char *hostname, const char *cert_path,
    const char *key_path, char **error_r);

/* ---- outbound (client) TLS: the SMTP client's STARTTLS ---- */

/* Builds the client context: TLS 1.2 and 1.3, no compression or
 * renegotiation, peer verification done but not enforced (the caller
 * reads the result, see conn_tls_peer_auth), DANE (RFC 7671) available.
 * Trust anchors: the system's default store, plus ca_file (PEM) when not
 * NULL. Optional: the first outbound handshake makes the default one.
 * Replaces the previous client context; connections keep theirs.
 * 0 or -1 with *error_r. */
int tls_client_setup(const char *ca_file, char **error_r);

struct ssl_ctx_st;
/* For net/conn.c: the client context, made with the defaults on first
 * use; NULL when that failed. */
struct ssl_ctx_st *tls_client_ctx(void);

#endif
