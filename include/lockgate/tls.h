/* The server TLS context shared by every listener of the instance: TLS 1.2
 * and up with AEAD suites only, ALPN http/1.1, server-side session cache,
 * and a certificate that can be replaced while the gateway runs. */
#ifndef LG_TLS_H
#define LG_TLS_H

struct lg_config;
struct lg_tls;
typedef struct ssl_st SSL;

/* Loads [tls] cert and key. NULL with a log line on error. */
struct lg_tls *lg_tls_new(const struct lg_config *cfg);
/* Loads the certificate and key of CFG again; connections accepted from
 * now on use them, those open keep theirs. 0, or -1 (the old ones stay). */
int lg_tls_reload(struct lg_tls *tls, const struct lg_config *cfg);
/* A new server-side SSL for one accepted connection (the caller owns it),
 * or NULL. Thread-safe. */
SSL *lg_tls_ssl_new(struct lg_tls *tls);
void lg_tls_free(struct lg_tls *tls);

#endif
