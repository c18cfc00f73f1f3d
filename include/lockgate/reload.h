/* SIGHUP: the config file is read and checked again, and what can change
 * while the gateway runs is applied without dropping a connection: the TLS
 * certificate and key, the admin token, [limits], [upstream] url and
 * timeouts, log_level and access_log. Every other option that changed is
 * named in the log and left as it runs (listeners, workers, Redis, secrets
 * files need a restart). A file that fails `lockgate -t`, or a certificate,
 * key or token file that cannot be loaded, is refused with the reason in the
 * log, and nothing changes. */
#ifndef LG_RELOAD_H
#define LG_RELOAD_H

struct lg_admin;
struct lg_config;
struct lg_secrets;
struct lg_tls;
struct lg_worker;

/* What a reload changes, all borrowed from main. */
struct lg_reload {
    const char *path;           /* the config file given with -c */
    struct lg_config *cfg;      /* the running config, the main thread's */
    struct lg_secrets *secrets; /* its admin token is replaced */
    struct lg_tls *tls;         /* may be NULL (no TLS listener) */
    struct lg_admin *admin;
    struct lg_worker **workers; /* each gets the new config on its own thread */
    int nworkers;
};

/* Reloads as above; call on the main thread. 0, or -1 when the new file was
 * refused (the running config stays; the log says why). */
int lg_reload(const struct lg_reload *r);

#endif
