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

#endif
