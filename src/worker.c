/* A worker: one thread, one event loop, its own listeners, Redis connections,
 * upstream pool and caches. It keeps its caches exact from the events channel
 * and forgets them whenever it could have missed an event. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "lockgate/cache.h"
#include "lockgate/config.h"
#include "lockgate/event.h"
#include "lockgate/feed.h"
#include "lockgate/http.h"
#include "lockgate/log.h"
#include "lockgate/pipeline.h"
#include "lockgate/ratelimit.h"
#include "lockgate/store.h"
#include "lockgate/upstream.h"
#include "lockgate/util.h"
#include "lockgate/worker.h"

/* The public API takes no bodies, but one up to this size is read (and
 * dropped) so that a POST still gets its JSON 405; past it, a JSON 413. */
#define PUBLIC_MAX_BODY        (64 * 1024)
#define RELOAD_RETRY_MS        200
#define RELOAD_UNSUBSCRIBED_MS 1000 /* facility reloads while events cannot arrive */
#define HEARTBEAT_MS           1000
#define HEARTBEAT_SILENCE_MS   3000 /* this long without hearing a beat: resubscribe */

static struct lg_script facilities_load = {
    .name = "facilities_load",
    .source =
        "local ids = redis.call('SMEMBERS', KEYS[1])\n"
        "local out = {}\n"
        "for _, id in ipairs(ids) do\n"
        "  local f = redis.call('HMGET', ARGV[1] .. 'fac:' .. id, 'account_id', 'name', "
        "'included')\n"
        "  if f[1] then\n"
        "    out[#out+1] = id; out[#out+1] = f[1]; out[#out+1] = f[2] or ''; out[#out+1] = f[3] or "
        "'1'\n"
        "  end\n"
        "end\n"
        "return out\n",
};

static bool str_reply(const redisReply *r) { return r != NULL && r->type == REDIS_REPLY_STRING; }

static void schedule_reload(struct lg_worker *w)
{
    struct timeval tv = {0, RELOAD_RETRY_MS * 1000};
    evtimer_add(w->reload_timer, &tv);
}

static void on_facilities(struct lg_store *st, redisReply *reply, void *arg)
{
    struct lg_worker *w = arg;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements % 4 != 0) {
        lg_warn("worker %d: facilities could not be loaded; retrying", w->id);
        schedule_reload(w);
        return;
    }
    lg_cache_facilities_flush(w->cache);
    for (size_t i = 0; i + 3 < reply->elements; i += 4) {
        redisReply **e = reply->element + i;
        if (!str_reply(e[0]) || !str_reply(e[1]) || !str_reply(e[2]) || !str_reply(e[3])) continue;
        lg_cache_facility_put(w->cache, e[0]->str, e[1]->str, e[2]->str,
                              strcmp(e[3]->str, "1") == 0);
    }
    lg_cache_set_facilities_loaded(w->cache, true);
    lg_debug("worker %d: %d facilities loaded", w->id, lg_cache_facility_count(w->cache));
}

static void reload_facilities(struct lg_worker *w)
{
    char set[96];
    snprintf(set, sizeof(set), "%sfacilities", lg_store_prefix(w->store));
    const char *argv[] = {set, lg_store_prefix(w->store)};
    if (lg_store_script(w->store, &facilities_load, on_facilities, w, 1, 2, argv, NULL) < 0)
        schedule_reload(w);
}

/* Reloads the facility table. Without a live subscription exclusions
 * cannot arrive as events, so the table is reloaded every second until the
 * subscription is back (which reloads it once more). */
static void on_reload_timer(evutil_socket_t fd, short what, void *arg)
{
    struct lg_worker *w = arg;
    if (lg_store_up(w->store)) reload_facilities(w);
    if (!lg_cache_exact(w->cache)) {
        struct timeval tv = {RELOAD_UNSUBSCRIBED_MS / 1000, 0};
        evtimer_add(w->reload_timer, &tv);
    }
}

/* One facility changed: read it again. If that read fails, forget the
 * facility (it answers 404) and reload everything shortly. */
struct facility_read {
    struct lg_worker *w;
    char id[72];
};

static void on_facility(struct lg_store *st, redisReply *reply, void *arg)
{
    struct facility_read *fr = arg;
    struct lg_worker *w = fr->w;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) {
        lg_cache_facility_drop(w->cache, fr->id);
        schedule_reload(w);
    } else if (!str_reply(reply->element[0])) {
        lg_cache_facility_drop(w->cache, fr->id); /* deleted */
    } else {
        redisReply **e = reply->element;
        lg_cache_facility_put(w->cache, fr->id, e[0]->str, str_reply(e[1]) ? e[1]->str : "",
                              !str_reply(e[2]) || strcmp(e[2]->str, "1") == 0);
    }
    free(fr);
}

static void refresh_facility(struct lg_worker *w, const char *id)
{
    struct facility_read *fr = calloc(1, sizeof(*fr));
    char key[128];
    if (fr == NULL) goto fail;
    fr->w = w;
    snprintf(fr->id, sizeof(fr->id), "%s", id);
    snprintf(key, sizeof(key), "%sfac:%s", lg_store_prefix(w->store), id);
    const char *argv[] = {"HMGET", key, "account_id", "name", "included"};
    if (lg_store_argv(w->store, on_facility, fr, 5, argv, NULL) == 0) return;
    free(fr);
fail:
    lg_cache_facility_drop(w->cache, id);
    schedule_reload(w);
}

static void on_event(struct lg_store *st, const char *channel, const char *msg, size_t len,
                     void *arg)
{
    struct lg_worker *w = arg;
    if (strcmp(channel, w->hb_channel) == 0) {
        w->hb_heard_ms = lg_mono_ms();
        return;
    }
    struct lg_event ev;
    if (lg_event_parse(msg, len, &ev) < 0) {
        /* It could have been a revocation: fail closed. */
        lg_warn("worker %d: a malformed event; forgetting cached keys, reloading facilities",
                w->id);
        lg_cache_keys_flush(w->cache);
        schedule_reload(w);
        return;
    }
    /* Every drop and flush also moves the cache's key epoch: a read of the
     * key in flight now is not cached when its reply comes. */
    if (strncmp(ev.type, "key.", 4) == 0) {
        if (ev.key_id[0])
            lg_cache_key_drop(w->cache, ev.key_id);
        else
            lg_cache_keys_flush(w->cache);
        if (strcmp(ev.type, "key.disabled") == 0 || strcmp(ev.type, "key.deleted") == 0 ||
            strcmp(ev.type, "key.rotated") == 0 || strcmp(ev.type, "key.updated") == 0)
            lg_feed_close_key(w->feed, ev.key_id);
    } else if (strncmp(ev.type, "facility.", 9) == 0) {
        if (ev.facility_id[0])
            refresh_facility(w, ev.facility_id);
        else
            schedule_reload(w);
        /* A deleted facility left every key's list: scopes read before are stale. */
        if (strcmp(ev.type, "facility.deleted") == 0) lg_cache_keys_flush(w->cache);
    }
    lg_feed_on_event(w->feed, &ev);
}

/* The subscription's edges. Down: the cache can no longer be kept exact, so
 * it only serves while Redis is unreachable. Up: forget everything first. */
static void on_sub_state(struct lg_store *st, bool up, void *arg)
{
    struct lg_worker *w = arg;
    lg_feed_close_all(w->feed); /* a key.disabled may be missed, or was */
    if (!up) {
        lg_cache_set_exact(w->cache, false);
        schedule_reload(w); /* and every second while unsubscribed */
        return;
    }
    w->hb_heard_ms = lg_mono_ms();
    lg_cache_keys_flush(w->cache);
    lg_cache_set_facilities_loaded(w->cache, false);
    lg_cache_set_exact(w->cache, true);
    if (lg_store_up(w->store))
        reload_facilities(w);
    else
        schedule_reload(w);
}

static void on_cmd_state(struct lg_store *st, bool up, void *arg)
{
    struct lg_worker *w = arg;
    if (up && lg_cache_exact(w->cache) && !lg_cache_facilities_loaded(w->cache))
        reload_facilities(w);
}

static void on_published(struct lg_store *st, redisReply *reply, void *arg) {}

static void on_drain(evutil_socket_t fd, short what, void *arg)
{
    struct lg_worker *w = arg;
    lg_http_server_stop_listening(w->http);
    lg_http_server_stop_listening(w->https);
    lg_feed_close_all(w->feed); /* readers resume on another gateway */
}

void lg_worker_drain(struct lg_worker *w) { event_active(w->drain_ev, EV_READ, 0); }

int lg_worker_inflight(struct lg_worker *w) { return lg_pipeline_inflight(w->pipeline); }

static void on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    struct lg_worker *w = arg;
    if (!lg_cache_exact(w->cache) || !lg_store_up(w->store)) return;
    if (lg_mono_ms() - w->hb_heard_ms > HEARTBEAT_SILENCE_MS) {
        lg_warn("worker %d: the events subscription went silent; reconnecting it", w->id);
        lg_store_reset(w->sub, "no heartbeat");
        return;
    }
    const char *argv[] = {"PUBLISH", w->hb_channel, "1"};
    lg_store_argv(w->store, on_published, NULL, 3, argv, NULL);
}

struct lg_worker *lg_worker_new(int id, const struct lg_config *cfg,
                                const struct lg_secrets *secrets, struct lg_tls *tls)
{
    struct lg_worker *w = calloc(1, sizeof(*w));
    if (w == NULL) return NULL;
    w->id = id;
    w->cfg = cfg;
    w->secrets = secrets;
    /* The changelist folds the add/del churn of curl's sockets (interest
     * flips on every transfer) into one epoll_ctl per fd per loop turn. */
    struct event_config *ec = event_config_new();
    if (ec == NULL) goto err;
    event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    w->base = event_base_new_with_config(ec);
    event_config_free(ec);
    if (w->base == NULL) goto err;
    if ((w->cache = lg_cache_new()) == NULL) goto err;
    if ((w->reload_timer = evtimer_new(w->base, on_reload_timer, w)) == NULL) goto err;
    if ((w->upstream = lg_upstream_new(w->base, cfg)) == NULL) goto err;
    if ((w->store = lg_store_new(w->base, cfg)) == NULL) goto err;
    if ((w->sub = lg_store_new(w->base, cfg)) == NULL) goto err;
    if ((w->ratelimit = lg_ratelimit_new(w->store)) == NULL) goto err;
    if ((w->feed = lg_feed_new(w->base, cfg, w->store)) == NULL) goto err;
    const struct lg_pipeline_deps deps = {
        .cfg = cfg,
        .secrets = secrets,
        .cache = w->cache,
        .store = w->store,
        .ratelimit = w->ratelimit,
        .upstream = w->upstream,
        .feed = w->feed,
    };
    if ((w->pipeline = lg_pipeline_new(&deps)) == NULL) goto err;
    char channel[96];
    snprintf(channel, sizeof(channel), "%sevents", cfg->redis_prefix);
    char nonce[17];
    lg_request_id_new(nonce);
    snprintf(w->hb_channel, sizeof(w->hb_channel), "%sheartbeat:%d:%d:%s", cfg->redis_prefix,
             (int)getpid(), id, nonce);
    lg_store_on_state(w->store, on_cmd_state, w);
    lg_store_on_state(w->sub, on_sub_state, w);
    const char *channels[] = {channel, w->hb_channel};
    if (lg_store_subscribe(w->sub, channels, 2, on_event, w) < 0) goto err;
    if ((w->hb_timer = event_new(w->base, -1, EV_PERSIST, on_heartbeat, w)) == NULL) goto err;
    if ((w->drain_ev = event_new(w->base, -1, 0, on_drain, w)) == NULL) goto err;
    struct timeval beat = {HEARTBEAT_MS / 1000, (HEARTBEAT_MS % 1000) * 1000};
    evtimer_add(w->hb_timer, &beat);
    if (cfg->listen[0] != '\0' &&
        (w->http = lg_http_server_new(w->base, cfg, cfg->listen, NULL, PUBLIC_MAX_BODY,
                                      lg_pipeline_handle, w->pipeline)) == NULL)
        goto err;
    if (tls != NULL && cfg->listen_tls[0] != '\0' &&
        (w->https = lg_http_server_new(w->base, cfg, cfg->listen_tls, tls, PUBLIC_MAX_BODY,
                                       lg_pipeline_handle, w->pipeline)) == NULL)
        goto err;
    if (w->http) lg_http_server_count_metrics(w->http);
    if (w->https) lg_http_server_count_metrics(w->https);
    return w;
err:
    lg_error("worker %d: could not start", id);
    lg_worker_stop(w);
    return NULL;
}

static void *run(void *arg)
{
    struct lg_worker *w = arg;
    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    lg_http_thread_done();
    return NULL;
}

int lg_worker_start(struct lg_worker *w)
{
    if (pthread_create(&w->thread, NULL, run, w) != 0) return -1;
    w->started = true;
    return 0;
}

void lg_worker_stop(struct lg_worker *w)
{
    if (w == NULL) return;
    if (w->started) {
        event_base_loopexit(w->base, NULL);
        pthread_join(w->thread, NULL);
    }
    /* Order matters. Stores first: their pending callbacks still answer live
     * requests. Then the feed's streams, then the listeners, whose closing
     * connections cancel upstream transfers in flight: the upstream client
     * goes last. The listeners return the pipeline's contexts as they
     * close, so it goes after them, and from here on without the store. */
    w->stopping = true;
    lg_store_free(w->sub);
    lg_store_free(w->store);
    w->sub = w->store = NULL;
    if (w->pipeline) lg_pipeline_detach_store(w->pipeline);
    lg_feed_free(w->feed);
    lg_http_server_free(w->http);
    lg_http_server_free(w->https);
    if (w->upstream) lg_upstream_free(w->upstream);
    if (w->ratelimit) lg_ratelimit_free(w->ratelimit);
    if (w->reload_timer) event_free(w->reload_timer);
    if (w->hb_timer) event_free(w->hb_timer);
    if (w->drain_ev) event_free(w->drain_ev);
    lg_pipeline_free(w->pipeline);
    lg_cache_free(w->cache);
    if (w->base) event_base_free(w->base);
    free(w);
}
