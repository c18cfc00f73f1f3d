/* The server TLS context. A reload builds a whole new SSL_CTX and swaps it
 * in under a lock; every SSL holds a reference to the context it was made
 * from, so the old one lives exactly as long as its last connection. */
#include <pthread.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "lockgate/config.h"
#include "lockgate/log.h"
#include "lockgate/tls.h"

/* Forward secrecy and AEAD only for TLS 1.2; TLS 1.3 suites are all AEAD. */
#define TLS12_CIPHERS                                                                              \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"     \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define SESSION_TIMEOUT_S 3600

struct lg_tls {
    pthread_mutex_t lock;
    SSL_CTX *ctx;
};

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char h11[] = "\x08http/1.1";
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, h11, sizeof(h11) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* OpenSSL's reason for the last failure (a missing file has none of its own). */
static const char *why(void)
{
    const char *r = ERR_reason_error_string(ERR_get_error());
    return r != NULL ? r : "cannot be read";
}

static SSL_CTX *ctx_new(const struct lg_config *cfg)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* Resumption from the server's own session cache (stateful tickets in
     * TLS 1.3): no ticket key that would live as long as the process. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION |
                                 /* a FIN without close_notify is the end of the
                                  * client's side (half-close), not an attack on
                                  * bodies: every answer is length-delimited */
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_timeout(ctx, SESSION_TIMEOUT_S);
    static const unsigned char sid_ctx[] = "lockgate";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
        lg_error("tls: no usable cipher suite");
        goto err;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
        lg_error("tls: cannot load certificate %s: %s", cfg->tls_cert, why());
        goto err;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        lg_error("tls: cannot load key %s: %s", cfg->tls_key, why());
        goto err;
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    return ctx;
err:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}

struct lg_tls *lg_tls_new(const struct lg_config *cfg)
{
    struct lg_tls *tls = calloc(1, sizeof(*tls));
    if (tls == NULL) return NULL;
    pthread_mutex_init(&tls->lock, NULL);
    if ((tls->ctx = ctx_new(cfg)) == NULL) {
        lg_tls_free(tls);
        return NULL;
    }
    return tls;
}

int lg_tls_reload(struct lg_tls *tls, const struct lg_config *cfg)
{
    SSL_CTX *ctx = ctx_new(cfg);
    if (ctx == NULL) return -1;
    pthread_mutex_lock(&tls->lock);
    SSL_CTX *old = tls->ctx;
    tls->ctx = ctx;
    pthread_mutex_unlock(&tls->lock);
    SSL_CTX_free(old); /* drops our reference; open connections keep theirs */
    return 0;
}

SSL *lg_tls_ssl_new(struct lg_tls *tls)
{
    pthread_mutex_lock(&tls->lock);
    SSL *ssl = SSL_new(tls->ctx);
    pthread_mutex_unlock(&tls->lock);
    return ssl;
}

void lg_tls_free(struct lg_tls *tls)
{
    if (tls == NULL) return;
    SSL_CTX_free(tls->ctx);
    pthread_mutex_destroy(&tls->lock);
    free(tls);
}
