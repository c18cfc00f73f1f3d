/* A worker: one thread with its own event loop (stub until the data plane lands). */
#include <pthread.h>
#include <stdlib.h>

#include <event2/event.h>

#include "lockgate/worker.h"

struct lg_worker {
    int id;
    struct event_base *base;
    pthread_t thread;
};

struct lg_worker *lg_worker_new(int id, const struct lg_config *cfg,
                                const struct lg_secrets *secrets, SSL_CTX *tls)
{
    struct lg_worker *w = calloc(1, sizeof(*w));
    if (w == NULL) return NULL;
    w->id = id;
    w->base = event_base_new();
    return w;
}

static void *run(void *arg)
{
    struct lg_worker *w = arg;
    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

int lg_worker_start(struct lg_worker *w) { return pthread_create(&w->thread, NULL, run, w) ? -1 : 0; }

void lg_worker_stop(struct lg_worker *w)
{
    event_base_loopexit(w->base, NULL);
    pthread_join(w->thread, NULL);
    event_base_free(w->base);
    free(w);
}
