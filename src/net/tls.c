/* TLS contexts and the self-signed default certificate. */
#include "net/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/fs.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "net/tls_internal.h"

static SSL_CTX *tls_ctx;
static SSL_CTX *tls_client;	/* outbound connections */

SSL_CTX *
tls_current_ctx(void)
{
	return tls_ctx;
}

int
tls_available(void)
{
	return tls_ctx != NULL;
}

static char *
tls_error_text(const char *what)
{
	char e[256];
	unsigned long code = ERR_get_error();
	ERR_error_string_n(code, e, sizeof(e));
	ERR_clear_error();
	return x_asprintf("%s: %s", what, code ? e : strerror(errno));
}

static int
tls_write_pem(const char *path, EVP_PKEY *key, X509 *crt, mode_t mode)
{
	FILE *f;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	int ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
	    : PEM_write_X509(f, crt);
	if (fflush(f) != 0 || fsync(fileno(f)) < 0)
		ok = 0;
	if (fclose(f) != 0)
		ok = 0;
	return ok ? 0 : -1;
}

int
tls_make_self_signed(const char *hostname, const char *cert_path,
    const char *key_path, char **error_r)
{
	if (access(cert_path, R_OK) == 0 && access(key_path, R_OK) == 0)
		return 0;
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *crt = X509_new();
	X509_EXTENSION *ext = NULL;
	char san[300];
	int r = -1;

	if (key == NULL || crt == NULL) {
		*error_r = tls_error_text("key generation");
		goto out;
	}
	X509_set_version(crt, 2);
	unsigned char serial[16];
	if (RAND_bytes(serial, sizeof(serial)) != 1)
		goto fail;
	serial[0] &= 0x7f;
	BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(crt));
	BN_free(bn);
	X509_gmtime_adj(X509_getm_notBefore(crt), -3600);
	X509_gmtime_adj(X509_getm_notAfter(crt), 10L * 365 * 24 * 3600);
	X509_set_pubkey(crt, key);
	X509_NAME *name = X509_get_subject_name(crt);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)hostname, -1, -1, 0);
	X509_set_issuer_name(crt, name);
	snprintf(san, sizeof(san), "DNS:%s", hostname);
	ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
	if (ext == NULL || !X509_add_ext(crt, ext, -1) ||
	    !X509_sign(crt, key, EVP_sha256()))
		goto fail;
	if (tls_write_pem(key_path, key, NULL, 0600) < 0 ||
	    tls_write_pem(cert_path, NULL, crt, 0644) < 0 ||
	    fs_fsync_parent(cert_path) < 0) {
		*error_r = x_asprintf("writing %s: %s", cert_path,
		    strerror(errno));
		goto out;
	}
	log_info("event=tls-self-signed cert=%s hostname=%s", cert_path,
	    hostname);
	r = 0;
	goto out;
fail:
	*error_r = tls_error_text("self-signed certificate");
out:
	X509_EXTENSION_free(ext);
	X509_free(crt);
	EVP_PKEY_free(key);
	return r;
}

static SSL_CTX *
tls_new_ctx(const char *cert, const char *key, char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		*error_r = tls_error_text("SSL_CTX_new");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (!SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:"
	    "DHE+AESGCM:!aNULL:!MD5:!DSS") ||
	    SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		*error_r = tls_error_text(cert);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int
tls_load(const struct config *cfg, char **error_r)
{
	char cert[PATH_MAX + 16], key[PATH_MAX + 16];

	if (cfg->tls_cert[0] && cfg->tls_key[0]) {
		snprintf(cert, sizeof(cert), "%s", cfg->tls_cert);
		snprintf(key, sizeof(key), "%s", cfg->tls_key);
	} else {
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s/tls", cfg->data_dir);
		if (fs_mkdir_p(dir, 0700) < 0) {
			*error_r = x_asprintf("%s: %s", dir, strerror(errno));
			return -1;
		}
		snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
		snprintf(key, sizeof(key), "%s/key.pem", dir);
		if (tls_make_self_signed(cfg->hostname, cert, key,
		    error_r) < 0)
			return -1;
	}
	SSL_CTX *ctx = tls_new_ctx(cert, key, error_r);
	if (ctx == NULL)
		return -1;
	/* Connections hold their own reference (SSL_new). */
	SSL_CTX_free(tls_ctx);
	tls_ctx = ctx;
	log_info("event=tls-loaded cert=%s", cert);
	return 0;
}

void
tls_free(void)
{
	SSL_CTX_free(tls_ctx);
	tls_ctx = NULL;
	SSL_CTX_free(tls_client);
	tls_client = NULL;
}

/* ---- client ---- */

int
tls_client_setup(const char *ca_file, char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL) {
		*error_r = tls_error_text("SSL_CTX_new");
		return -1;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	/* Opportunistic TLS (RFC 7435) must not fail on an unverifiable
	 * certificate: verification runs, and its result is read after the
	 * handshake by whoever has a policy that requires it. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (SSL_CTX_set_default_verify_paths(ctx) != 1)
		ERR_clear_error();	/* no system store: PKIX never passes */
	if ((ca_file && SSL_CTX_load_verify_locations(ctx, ca_file,
	    NULL) != 1) || SSL_CTX_dane_enable(ctx) <= 0) {
		*error_r = tls_error_text(ca_file ? ca_file : "DANE");
		SSL_CTX_free(ctx);
		return -1;
	}
	SSL_CTX_free(tls_client);
	tls_client = ctx;
	return 0;
}

struct ssl_ctx_st *
tls_client_ctx(void)
{
	char *error = NULL;
	if (tls_client == NULL && tls_client_setup(NULL, &error) < 0) {
		log_warnx("event=tls-client-unavailable error=\"%s\"", error);
		free(error);
	}
	return tls_client;
}
