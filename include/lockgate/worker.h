/* A worker: one thread, one event loop, its own public listeners, Redis
 * connections (commands and pub/sub), upstream pool and caches. Workers share
 * nothing but the read-only config, secrets and TLS context. */
#ifndef LG_WORKER_H
#define LG_WORKER_H

typedef struct ssl_ctx_st SSL_CTX;
struct lg_config;
struct lg_secrets;
struct lg_worker;

/* Creates worker ID (listeners bound at once, so errors show before start).
 * CFG, SECRETS and TLS (may be NULL) are borrowed. NULL on error. */
struct lg_worker *lg_worker_new(int id, const struct lg_config *cfg,
                                const struct lg_secrets *secrets, SSL_CTX *tls);
/* Runs the worker's loop on a thread of its own. 0 or -1. */
int lg_worker_start(struct lg_worker *w);
/* Asks the loop to stop (thread-safe), joins the thread and frees everything. */
void lg_worker_stop(struct lg_worker *w);

#endif
