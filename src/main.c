/* lockgate: the gateway daemon. main only wires things together: config,
 * secrets, the admin API on the main loop, the workers on their threads, and
 * the signals (SIGTERM/SIGINT stop, SIGHUP reloads). */
#include <signal.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "lockgate/admin.h"
#include "lockgate/auth.h"
#include "lockgate/config.h"
#include "lockgate/conn_limit.h"
#include "lockgate/http.h"
#include "lockgate/log.h"
#include "lockgate/reload.h"
#include "lockgate/secrets.h"
#include "lockgate/store.h"
#include "lockgate/tls.h"
#include "lockgate/util.h"
#include "lockgate/worker.h"

#define MAX_WORKERS 256 /* the config accepts 1..256 */

static void usage(FILE *out)
{
    fprintf(out, "usage: lockgate -c FILE [-t]\n"
                 "  -c FILE   configuration file (INI)\n"
                 "  -t        check the configuration and exit (0 ok, 1 with the problem)\n"
                 "  -h        this help\n");
}

/* A graceful stop: the first SIGTERM/SIGINT closes the listeners (another
 * instance on the same port takes new clients), ends feed streams and lets
 * requests in flight finish, for at most DRAIN_MS; a second signal stops at once. */
#define DRAIN_MS      5000
#define DRAIN_POLL_MS 20

struct shutdown {
    struct event_base *base;
    struct lg_worker **workers;
    int nworkers;
    struct lg_admin *admin;
    struct event *poll;
    int64_t deadline;
    int draining;
    struct lg_reload reload;
};

static void on_drain_poll(evutil_socket_t fd, short what, void *arg)
{
    struct shutdown *sd = arg;
    int inflight = 0;
    for (int i = 0; i < sd->nworkers; i++) inflight += lg_worker_inflight(sd->workers[i]);
    if (inflight == 0 || lg_mono_ms() >= sd->deadline) {
        if (inflight > 0) lg_warn("stopping with %d request(s) still in flight", inflight);
        event_base_loopexit(sd->base, NULL);
    }
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct shutdown *sd = arg;
    if (sd->draining) {
        lg_info("SIGHUP while stopping: no reload");
        return;
    }
    lg_reload(&sd->reload);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct shutdown *sd = arg;
    if (sd->draining) {
        lg_info("signal %d again: stopping now", (int)sig);
        event_base_loopexit(sd->base, NULL);
        return;
    }
    sd->draining = 1;
    lg_info("signal %d: draining (new clients refused, up to %d ms for requests in flight)",
            (int)sig, DRAIN_MS);
    lg_admin_set_draining(sd->admin);
    for (int i = 0; i < sd->nworkers; i++) lg_worker_drain(sd->workers[i]);
    sd->deadline = lg_mono_ms() + DRAIN_MS;
    struct timeval tv = {0, DRAIN_POLL_MS * 1000};
    evtimer_add(sd->poll, &tv);
}

int main(int argc, char **argv)
{
    const char *conf = NULL;
    int test_only = 0, opt;
    while ((opt = getopt(argc, argv, "c:th")) != -1) {
        switch (opt) {
        case 'c': conf = optarg; break;
        case 't': test_only = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (conf == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }

    static struct lg_config cfg;
    char err[1024];
    lg_config_defaults(&cfg);
    if (lg_config_load(&cfg, conf, err, sizeof(err)) < 0) {
        fprintf(stderr, "lockgate: %s\n", err);
        return 1;
    }
    if (lg_config_check(&cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "lockgate: %s: %s\n", conf, err); /* cross-checks have no one line */
        return 1;
    }
    if (test_only) {
        printf("lockgate: %s: configuration ok\n", conf);
        return 0;
    }
    lg_auth_throttle_init(cfg.auth_failures_per_min);
    enum lg_log_level level;
    if (lg_log_level_parse(cfg.log_level, &level) == 0) lg_log_set_level(level);

    static struct lg_secrets secrets;
    if (lg_secrets_load(&cfg, &secrets, err, sizeof(err)) < 0) {
        fprintf(stderr, "lockgate: %s\n", err);
        return 1;
    }

    signal(SIGPIPE, SIG_IGN);
    /* Every client is a descriptor: take all the kernel allows us. */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit(RLIMIT_NOFILE, &nofile);
    }
    evthread_use_pthreads();
    curl_global_init(CURL_GLOBAL_ALL);

    int rc = 1, nworkers = 0;
    struct lg_worker *workers[MAX_WORKERS];
    struct lg_tls *tls = NULL;
    struct event_base *base = event_base_new();
    struct lg_store *store = NULL;
    struct lg_admin *admin = NULL;
    struct event *sigterm = NULL, *sigint = NULL, *sighup = NULL;
    if (base == NULL) goto out;

    bool admin_tls = strcmp(cfg.admin_tls, "on") == 0;
    if ((cfg.listen_tls[0] != '\0' || admin_tls) && (tls = lg_tls_new(&cfg)) == NULL)
        goto out;
    if (!admin_tls && !lg_config_addr_loopback(cfg.admin_listen))
        lg_warn("admin API on %s without TLS: its token and the secrets it returns cross the "
                "network in clear (set [admin] tls = on)",
                cfg.admin_listen);
    lg_conn_limit_configure(cfg.max_connections, cfg.max_connections_per_ip);
    for (int i = 0; i < cfg.workers && i < MAX_WORKERS; i++) {
        if ((workers[i] = lg_worker_new(i, &cfg, &secrets, tls)) == NULL) goto out;
        nworkers++;
    }
    if ((store = lg_store_new(base, &cfg)) == NULL) goto out;
    if ((admin = lg_admin_new(base, &cfg, &secrets, store, admin_tls ? tls : NULL)) == NULL)
        goto out;
    static struct shutdown sd;
    sd.base = base;
    sd.workers = workers;
    sd.nworkers = nworkers;
    sd.admin = admin;
    sd.reload = (struct lg_reload){conf, &cfg, &secrets, tls, admin, workers, nworkers};
    if ((sd.poll = event_new(base, -1, EV_PERSIST, on_drain_poll, &sd)) == NULL) goto out;
    sigterm = evsignal_new(base, SIGTERM, on_signal, &sd);
    sigint = evsignal_new(base, SIGINT, on_signal, &sd);
    sighup = evsignal_new(base, SIGHUP, on_hup, &sd);
    evsignal_add(sigterm, NULL);
    evsignal_add(sigint, NULL);
    evsignal_add(sighup, NULL);
    for (int i = 0; i < nworkers; i++)
        if (lg_worker_start(workers[i]) < 0) goto out;
    lg_info("lockgate started: %d worker(s), listen %s%s%s, admin %s%s", nworkers,
            cfg.listen[0] ? cfg.listen : "-", cfg.listen_tls[0] ? ", tls " : "", cfg.listen_tls,
            cfg.admin_listen, admin_tls ? " (tls)" : "");
    event_base_dispatch(base);
    rc = 0;
out:
    for (int i = 0; i < nworkers; i++) lg_worker_stop(workers[i]);
    if (sd.poll) event_free(sd.poll);
    if (sigterm) event_free(sigterm);
    if (sigint) event_free(sigint);
    if (sighup) event_free(sighup);
    /* Stopping already: one more signal must not turn a clean exit into death by it. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    lg_admin_free(admin);
    lg_http_thread_done(); /* the admin's lines, and any answered while stopping */
    lg_store_free(store);
    lg_tls_free(tls);
    if (base) event_base_free(base);
    curl_global_cleanup();
    lg_secrets_wipe(&secrets);
    OPENSSL_cleanse(cfg.redis_password, sizeof(cfg.redis_password));
    if (rc != 0)
        lg_error("lockgate: could not start");
    else
        lg_info("lockgate stopped");
    return rc;
}
