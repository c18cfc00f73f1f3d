/* A worker: one thread, one event loop, its own public listeners, Redis
 * connections (commands and pub/sub), upstream pool and caches. Workers share
 * nothing but the read-only secrets and the TLS context; each has its own
 * copy of the config, which SIGHUP changes on the worker's own thread. */
#ifndef LG_WORKER_H
#define LG_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct event;
struct event_base;
struct lg_cache;
struct lg_config;
struct lg_feed;
struct lg_http_server;
struct lg_pipeline;
struct lg_ratelimit;
struct lg_secrets;
struct lg_store;
struct lg_tls;
struct lg_upstream;

struct lg_worker {
    int id;
    struct lg_config *cfg; /* the worker's own copy, read and changed on its thread only */
    const struct lg_secrets *secrets;
    struct event_base *base;
    struct lg_http_server *http, *https;
    struct lg_store *store; /* commands: key loads, GCRA, audit */
    struct lg_store *sub;   /* pub/sub: the events channel */
    struct lg_cache *cache;
    struct lg_upstream *upstream;
    /* Clients of an [upstream] a reload replaced, freed once their requests
     * are answered (retire_timer watches them). */
    struct lg_upstream **retired;
    int nretired;
    struct event *retire_timer;
    /* A reloaded config handed over by the main thread (lg_worker_reload):
     * whoever exchanges the pointer owns what it held. */
    _Atomic(struct lg_config *) reload_next;
    struct event *reload_ev;
    struct lg_ratelimit *ratelimit;
    struct lg_feed *feed;
    struct lg_pipeline *pipeline; /* the listeners' handler */
    struct event *reload_timer;
    /* Full facility loads asked for, and the newest request a load answered:
     * one is due while reload_done < reload_asked. */
    uint64_t reload_asked, reload_done;
    /* The subscription dropped while the command connection was up: is Redis
     * gone as a whole? Decided by the PING number probe_seq (worker.c). */
    bool suspect;
    bool cmd_lost; /* the command connection was lost since it was last up */
    /* It came back while the subscription stayed: nothing cached answers
     * until a beat published since then is heard (worker.c). */
    bool sub_check;
    int64_t sub_check_ms;
    /* The last event applied (its stream id), and the catch-up read from it
     * after each re-subscription (worker.c); an edge moves the epoch. */
    char last_event[48];
    uint64_t replay_epoch;
    int replay_pages;
    uint64_t replayed; /* events applied from the stream, not from pub/sub */
    uint64_t probe_seq, probe_done;
    struct event *probe_timer;
    /* The subscription's heartbeat: the worker publishes to a channel of its
     * own once a second and expects to hear it back; silence means the
     * subscriber is dead even if its TCP connection looks alive. */
    char hb_channel[128];
    struct event *hb_timer;
    int64_t hb_heard_ms;    /* monotonic time the last beat (or "up") was heard */
    struct event *drain_ev; /* activated from the main thread */
    pthread_t thread;
    bool started;            /* the thread runs (pthread_t has no "none" value) */
    atomic_bool stop_asked;  /* lg_worker_stop ended the loop: any other end is a death */
    bool stopping;           /* being torn down: the stores are gone */
    struct event *die_timer; /* test builds only: $LOCKGATE_TEST_WORKER_DIE (worker.c) */
};

/* Creates worker ID (listeners bound at once, so errors show before start).
 * CFG is copied; SECRETS and TLS (may be NULL) are borrowed. NULL on error. */
struct lg_worker *lg_worker_new(int id, const struct lg_config *cfg,
                                const struct lg_secrets *secrets, struct lg_tls *tls);
/* Runs the worker's loop on a thread of its own. 0 or -1. */
int lg_worker_start(struct lg_worker *w);
/* Asks the loop to stop (thread-safe), joins the thread and frees everything.
 * The thread closes its own connections before it ends, so that whatever
 * they answer and log is done on their own loop. A loop that ends without
 * being asked to is a dead worker: its thread logs it and ends the process
 * (exit status 1), so that a supervisor starts a whole gateway again rather
 * than one listener being left with nobody to serve it. */
void lg_worker_stop(struct lg_worker *w);
/* Hands CFG (copied; the main thread's running config after a SIGHUP) to the
 * worker, which applies its [limits], [upstream] url and timeouts and
 * access_log on its own thread, between two events. Thread-safe. 0 or -1. */
int lg_worker_reload(struct lg_worker *w, const struct lg_config *cfg);

/* Starts a graceful stop (thread-safe): the worker closes its listeners and
 * its feed streams, and answers what it has in flight. */
void lg_worker_drain(struct lg_worker *w);
/* Requests the worker is still answering (thread-safe). */
int lg_worker_inflight(struct lg_worker *w);

#endif
