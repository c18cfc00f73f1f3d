/* A worker: one thread, one event loop, its own listeners, Redis connections,
 * upstream pool and caches. It keeps its caches exact from the events channel
 * and forgets them whenever it could have missed an event. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "lockgate/cache.h"
#include "lockgate/config.h"
#include "lockgate/event.h"
#include "lockgate/feed.h"
#include "lockgate/http.h"
#include "lockgate/log.h"
#include "lockgate/metrics.h"
#include "lockgate/pipeline.h"
#include "lockgate/ratelimit.h"
#include "lockgate/store.h"
#include "lockgate/store_read.h"
#include "lockgate/upstream.h"
#include "lockgate/util.h"
#include "lockgate/worker.h"

/* The public API takes no bodies, but one up to this size is read (and
 * dropped) so that a POST still gets its JSON 405; past it, a JSON 413. */
#define PUBLIC_MAX_BODY      (64 * 1024)
#define RELOAD_RETRY_MS      200
#define HEARTBEAT_MS         1000
#define HEARTBEAT_SILENCE_MS 3000 /* this long without hearing a beat: resubscribe */
#define REPLAY_PAGE          256  /* events read at once when catching up */
#define REPLAY_MAX_PAGES     64   /* past that, the flush at the edge stands alone */
#define RETIRE_POLL_MS       200  /* how often a replaced upstream client is checked */

/* A facility read in flight: the whole table (ID "") or one facility. */
struct facility_read {
    struct lg_worker *w;
    uint64_t epoch; /* the cache's facilities epoch when it was sent */
    uint64_t asked; /* reload_asked when it was sent (whole table) */
    char id[72];
};

static struct facility_read *facility_read_new(struct lg_worker *w, const char *id)
{
    struct facility_read *fr = calloc(1, sizeof(*fr));
    if (fr == NULL) return NULL;
    fr->w = w;
    fr->epoch = lg_cache_facilities_epoch(w->cache);
    fr->asked = w->reload_asked;
    snprintf(fr->id, sizeof(fr->id), "%s", id);
    return fr;
}

/* The table needs a full load (it lacks what an event changed, or is not
 * loaded): shortly, or as soon as the command connection is back. */
static void schedule_reload(struct lg_worker *w)
{
    w->reload_asked++;
    struct timeval tv = {0, RELOAD_RETRY_MS * 1000};
    evtimer_add(w->reload_timer, &tv);
}

/* A load sent before the subscription's last edge is dropped: its reads may
 * predate a change no event announced, and the edge asked for a new one. */
static void on_facilities(struct lg_store *st, redisReply *reply, void *arg)
{
    struct facility_read *fr = arg;
    struct lg_worker *w = fr->w;
    uint64_t epoch = fr->epoch, asked = fr->asked;
    free(fr);
    if (w->stopping || epoch != lg_cache_facilities_epoch(w->cache)) return;
    if (lg_store_facilities_into(w->cache, reply) < 0) {
        lg_warn("worker %d: facilities could not be loaded; retrying", w->id);
        schedule_reload(w);
        return;
    }
    lg_cache_set_facilities_loaded(w->cache, true);
    if (asked > w->reload_done) w->reload_done = asked;
    lg_debug("worker %d: %d facilities loaded", w->id, lg_cache_facility_count(w->cache));
}

static void reload_facilities(struct lg_worker *w)
{
    char set[96];
    snprintf(set, sizeof(set), "%sfacilities", lg_store_prefix(w->store));
    struct facility_read *fr = facility_read_new(w, "");
    if (fr != NULL && lg_store_read_facilities(w->store, set, on_facilities, fr) == 0) return;
    free(fr);
    schedule_reload(w);
}

/* The table is kept only while subscribed (without events, requests read
 * facilities from Redis); a load waits for the command connection. */
static void on_reload_timer(evutil_socket_t fd, short what, void *arg)
{
    struct lg_worker *w = arg;
    if (w->reload_done < w->reload_asked && lg_cache_trust(w->cache) == LG_CACHE_EXACT &&
        lg_store_up(w->store))
        reload_facilities(w);
}

/* One facility changed: read it again. If that read fails, or its answer
 * comes from before an edge of the connections (it may predate the change,
 * and a kept table still holds the facility as it was), forget the facility
 * (it answers 404) and reload everything once Redis answers. */
static void on_facility(struct lg_store *st, redisReply *reply, void *arg)
{
    struct facility_read *fr = arg;
    struct lg_worker *w = fr->w;
    struct lg_facility f;
    if (w->stopping) {
        free(fr);
        return;
    }
    if (fr->epoch != lg_cache_facilities_epoch(w->cache)) {
        lg_cache_facility_drop(w->cache, fr->id);
        schedule_reload(w);
        free(fr);
        return;
    }
    int found = lg_store_facility_from_reply(fr->id, reply, &f);
    if (found > 0)
        lg_cache_facility_put(w->cache, f.id, f.account_id, f.name, f.included);
    else
        lg_cache_facility_drop(w->cache, fr->id); /* deleted, or unreadable now */
    if (found < 0) schedule_reload(w);
    free(fr);
}

static void refresh_facility(struct lg_worker *w, const char *id)
{
    struct facility_read *fr = facility_read_new(w, id);
    if (fr != NULL && lg_store_read_facility(w->store, id, on_facility, fr) == 0) return;
    free(fr);
    lg_cache_facility_drop(w->cache, id);
    schedule_reload(w);
}

static void apply_event(struct lg_worker *w, const struct lg_event *ev);

static void on_event(struct lg_store *st, const char *channel, const char *msg, size_t len,
                     void *arg)
{
    struct lg_worker *w = arg;
    if (strcmp(channel, w->hb_channel) == 0) {
        w->hb_heard_ms = lg_mono_ms();
        if (w->sub_check) { /* the subscription caught up with the commands */
            w->sub_check = false;
            lg_cache_set_trust(w->cache, LG_CACHE_EXACT);
            if (w->reload_done < w->reload_asked) reload_facilities(w);
        }
        return;
    }
    struct lg_event ev;
    if (lg_event_parse(msg, len, &ev) < 0) {
        lg_metrics_event(false);
        /* It could have been a revocation: fail closed. */
        lg_warn("worker %d: a malformed event; forgetting cached keys, reloading facilities",
                w->id);
        lg_cache_keys_flush(w->cache);
        schedule_reload(w);
        return;
    }
    apply_event(w, &ev);
}

static void apply_event(struct lg_worker *w, const struct lg_event *ev)
{
    if (ev->id[0] != '\0') snprintf(w->last_event, sizeof(w->last_event), "%s", ev->id);
    /* Every drop and flush also moves the cache's key epoch: a read of the
     * key in flight now is not cached when its reply comes. */
    if (strncmp(ev->type, "key.", 4) == 0) {
        if (ev->key_id[0])
            lg_cache_key_drop(w->cache, ev->key_id);
        else
            lg_cache_keys_flush(w->cache);
        if (strcmp(ev->type, "key.disabled") == 0 || strcmp(ev->type, "key.deleted") == 0 ||
            strcmp(ev->type, "key.rotated") == 0 || strcmp(ev->type, "key.updated") == 0)
            lg_feed_close_key(w->feed, ev->key_id);
    } else if (strncmp(ev->type, "facility.", 9) == 0) {
        if (ev->facility_id[0])
            refresh_facility(w, ev->facility_id);
        else
            schedule_reload(w);
        /* A deleted facility left every key's list: scopes read before are stale. */
        if (strcmp(ev->type, "facility.deleted") == 0) lg_cache_keys_flush(w->cache);
    }
    lg_feed_on_event(w->feed, ev);
    lg_metrics_event(true);
}

/* The subscription's edges (SPEC section 10). A missed event could be a
 * revocation, so the cache answers on its own only while subscribed.
 *
 * Lost while the command connection still answers: a revocation may be
 * written that this worker will not hear, so every cached key and facility
 * decision is dropped and requests read Redis until the subscription is
 * confirmed again. Lost together with the command connection, Redis is
 * unreachable and nobody can write one: what was verified while subscribed
 * goes on answering until Redis is back. "Together" is decided by a PING
 * sent on the command connection when the subscription drops: the
 * connection is lost before answering it (at the latest when its deadline,
 * [redis] timeout_ms, drops the connection). Until then nothing cached
 * answers; any answer, or a deadline that leaves the connection open, means
 * Redis was there: the cache is dropped. A command connection lost first
 * leaves the cache exact (events still arrive); losing the subscription
 * after it is "together". */

static void on_published(struct lg_store *st, redisReply *reply, void *arg) {}

static void forget(struct lg_worker *w)
{
    w->suspect = false;
    lg_cache_keys_flush(w->cache);
    lg_cache_facilities_flush(w->cache);
    lg_cache_set_facilities_loaded(w->cache, false);
    lg_cache_set_trust(w->cache, LG_CACHE_NONE);
}

static void on_probe(struct lg_store *st, redisReply *reply, void *arg)
{
    struct lg_worker *w = arg;
    uint64_t n = ++w->probe_done; /* replies come in the order of the PINGs */
    if (w->stopping || !w->suspect || n != w->probe_seq) return;
    if (reply != NULL) {
        lg_warn("worker %d: events subscription lost while Redis answers: cache dropped, "
                "reading Redis per request until it is back",
                w->id);
        forget(w);
        return;
    }
    /* Failed: if the connection is going, its "down" edge comes at once
     * and decides; if not, the deadline passed on a live connection. */
    struct timeval zero = {0, 0};
    evtimer_add(w->probe_timer, &zero);
}

static void on_probe_timer(evutil_socket_t fd, short what, void *arg)
{
    struct lg_worker *w = arg;
    if (!w->suspect) return;
    lg_warn("worker %d: events subscription lost and Redis slow: cache dropped", w->id);
    forget(w);
}

/* ---- catching up on the events stream ----
 * Every re-subscription flushes the caches; then the stream is read from the
 * last event this worker applied, so that what was written while it was not
 * listening (on another primary, before a failover) reaches the feed and the
 * rest as well. When that id is no longer in the stream (trimmed, or lost
 * with a primary that died before a replica had it), events may be missing
 * that nobody can replay: everything is flushed once more. */

static void read_events_after(struct lg_worker *w, const char *id);

/* One page read of the stream: it counts only for the subscription it was
 * sent in (an answer to an earlier one is dropped, whatever came since). */
struct events_read {
    struct lg_worker *w;
    uint64_t epoch;
    char from[48];
};

static void on_events_read(struct lg_store *st, redisReply *reply, void *arg)
{
    struct events_read *er = arg;
    struct lg_worker *w = er->w;
    char from[48];
    snprintf(from, sizeof(from), "%s", er->from);
    bool current = !w->stopping && er->epoch == w->replay_epoch;
    free(er);
    if (!current) return;                                          /* an edge since */
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) return; /* flushed at the edge */
    size_t n = reply->elements;
    const redisReply *first = n > 0 ? reply->element[0] : NULL;
    if (first == NULL || first->type != REDIS_REPLY_ARRAY || first->elements != 2 ||
        first->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(first->element[0]->str, from) != 0) {
        lg_warn("worker %d: event %s is no longer in the stream (trimmed, or lost in a "
                "failover): everything cached is flushed",
                w->id, from);
        lg_cache_keys_flush(w->cache);
        lg_feed_close_all(w->feed);
        w->reload_asked++;
        reload_facilities(w);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        struct lg_event ev;
        if (lg_event_from_entry(reply->element[i], &ev) == 0) apply_event(w, &ev);
    }
    w->replayed += n - 1;
    if (n > 1)
        lg_info("worker %d: %zu event(s) after %s read from the stream (published while it was "
                "not subscribed)",
                w->id, n - 1, from);
    if (n == REPLAY_PAGE && n > 1 && w->replay_pages++ < REPLAY_MAX_PAGES) {
        char last[48];
        snprintf(last, sizeof(last), "%s", reply->element[n - 1]->element[0]->str);
        read_events_after(w, last);
    }
}

static void read_events_after(struct lg_worker *w, const char *id)
{
    struct events_read *er = malloc(sizeof(*er));
    if (er == NULL) return; /* the re-subscription flushed the caches already */
    er->w = w;
    er->epoch = w->replay_epoch;
    snprintf(er->from, sizeof(er->from), "%s", id);
    char key[96], count[16];
    snprintf(key, sizeof(key), "%sevents", lg_store_prefix(w->store));
    snprintf(count, sizeof(count), "%d", REPLAY_PAGE);
    const char *argv[] = {"XRANGE", key, id, "+", "COUNT", count};
    if (lg_store_argv(w->store, on_events_read, er, 6, argv, NULL) < 0) free(er);
}

static void on_sub_state(struct lg_store *st, bool up, void *arg)
{
    struct lg_worker *w = arg;
    lg_metrics_redis_state(LG_METRICS_CONN_EVENTS, up);
    w->sub_check = false;
    lg_feed_close_all(w->feed); /* a key.disabled may be missed, or was */
    if (up) {
        w->suspect = false;
        w->hb_heard_ms = lg_mono_ms();
        lg_cache_keys_flush(w->cache);
        lg_cache_set_facilities_loaded(w->cache, false);
        lg_cache_set_trust(w->cache, LG_CACHE_EXACT);
        w->reload_asked++;
        if (lg_store_up(w->store)) reload_facilities(w); /* else when it is up */
        w->replay_epoch++;
        w->replay_pages = 0;
        if (w->last_event[0] != '\0' && lg_store_up(w->store)) read_events_after(w, w->last_event);
        return;
    }
    w->replay_epoch++;
    if (!lg_store_up(w->store)) { /* both gone: Redis is unreachable */
        lg_cache_set_trust(w->cache, LG_CACHE_FALLBACK);
        return;
    }
    lg_cache_set_trust(w->cache, LG_CACHE_NONE);
    w->suspect = true;
    const char *argv[] = {"PING"};
    w->probe_seq++;
    if (lg_store_argv(w->store, on_probe, w, 1, argv, NULL) < 0) {
        w->probe_seq--;
        forget(w);
    }
}

static void on_cmd_state(struct lg_store *st, bool up, void *arg)
{
    struct lg_worker *w = arg;
    lg_metrics_redis_state(LG_METRICS_CONN_COMMANDS, up);
    if (!up) {
        w->cmd_lost = true;
        if (w->sub_check) { /* back to the state before: events still come */
            w->sub_check = false;
            lg_cache_set_trust(w->cache, LG_CACHE_EXACT);
        }
        if (w->suspect) { /* lost before answering the PING: together */
            w->suspect = false;
            lg_warn("worker %d: Redis unreachable: keys verified while subscribed go on "
                    "answering until it is back",
                    w->id);
            lg_cache_set_trust(w->cache, LG_CACHE_FALLBACK);
        }
        return;
    }
    /* Redis answers again but events do not: nothing cached may answer. */
    bool lost = w->cmd_lost;
    w->cmd_lost = false;
    if (lg_cache_trust(w->cache) != LG_CACHE_EXACT) {
        forget(w);
    } else if (lost) {
        /* The subscription outlived the command connection, but whatever cut
         * one (a partition) may hold the other's events back in TCP for
         * seconds more, and no heartbeat could be sent meanwhile. Requests
         * read Redis until a beat sent now comes back on the subscription:
         * every event published before it has then arrived. */
        w->sub_check = true;
        w->sub_check_ms = lg_mono_ms();
        lg_cache_set_trust(w->cache, LG_CACHE_NONE);
        const char *argv[] = {"PUBLISH", w->hb_channel, "1"};
        lg_store_argv(w->store, on_published, NULL, 3, argv, NULL);
    } else if (w->reload_done < w->reload_asked)
        reload_facilities(w);
}

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
    if ((lg_cache_trust(w->cache) != LG_CACHE_EXACT && !w->sub_check) || !lg_store_up(w->store))
        return;
    int64_t since = w->sub_check ? w->sub_check_ms : w->hb_heard_ms;
    if (lg_mono_ms() - since > HEARTBEAT_SILENCE_MS) {
        lg_warn("worker %d: the events subscription went silent; reconnecting it", w->id);
        lg_store_reset(w->sub, "no heartbeat");
        return;
    }
    const char *argv[] = {"PUBLISH", w->hb_channel, "1"};
    lg_store_argv(w->store, on_published, NULL, 3, argv, NULL);
}

/* ---- SIGHUP ----
 * The main thread hands over its running config (what could change, changed;
 * the rest as it was); the worker applies it between two events of its own
 * loop, so nothing it reads changes under it. */

static void config_free(struct lg_config *cfg)
{
    if (cfg == NULL) return;
    OPENSSL_cleanse(cfg->redis_password, sizeof(cfg->redis_password));
    free(cfg);
}

int lg_worker_reload(struct lg_worker *w, const struct lg_config *cfg)
{
    struct lg_config *copy = malloc(sizeof(*copy));
    if (copy == NULL) return -1;
    *copy = *cfg;
    /* not an option: the worker keeps the one it has */
    OPENSSL_cleanse(copy->redis_password, sizeof(copy->redis_password));
    config_free(atomic_exchange(&w->reload_next, copy)); /* one it had not taken yet */
    event_active(w->reload_ev, EV_READ, 0);
    return 0;
}

static void on_retire_timer(evutil_socket_t fd, short what, void *arg)
{
    struct lg_worker *w = arg;
    int kept = 0;
    for (int i = 0; i < w->nretired; i++) {
        if (lg_upstream_inflight(w->retired[i]) == 0)
            lg_upstream_free(w->retired[i]);
        else
            w->retired[kept++] = w->retired[i];
    }
    w->nretired = kept;
    struct timeval tv = {0, RETIRE_POLL_MS * 1000};
    if (kept > 0) evtimer_add(w->retire_timer, &tv);
}

/* UP's requests in flight finish where they started; new ones go to the
 * client that replaced it. Returns -1 (UP still in use) when out of memory. */
static int retire(struct lg_worker *w, struct lg_upstream *up)
{
    struct lg_upstream **r = realloc(w->retired, (size_t)(w->nretired + 1) * sizeof(*r));
    if (r == NULL) return -1;
    w->retired = r;
    w->retired[w->nretired++] = up;
    on_retire_timer(-1, 0, w);
    return 0;
}

static bool upstream_changed(const struct lg_config *a, const struct lg_config *b)
{
    return strcmp(a->upstream_url, b->upstream_url) != 0 ||
           a->upstream_timeout_ms != b->upstream_timeout_ms ||
           a->upstream_connect_timeout_ms != b->upstream_connect_timeout_ms;
}

static void on_reload(evutil_socket_t fd, short what, void *arg)
{
    struct lg_worker *w = arg;
    struct lg_config *next = atomic_exchange(&w->reload_next, NULL);
    if (next == NULL || w->stopping) {
        config_free(next);
        return;
    }
    struct lg_config *cfg = w->cfg;
    if (upstream_changed(cfg, next)) {
        struct lg_upstream *up = lg_upstream_new(w->base, next);
        if (up == NULL || retire(w, w->upstream) < 0) {
            lg_error("worker %d: the reloaded [upstream] could not be set up; requests go on "
                     "to the one before",
                     w->id);
            if (up != NULL) lg_upstream_free(up);
            snprintf(next->upstream_url, sizeof(next->upstream_url), "%s", cfg->upstream_url);
            next->upstream_timeout_ms = cfg->upstream_timeout_ms;
            next->upstream_connect_timeout_ms = cfg->upstream_connect_timeout_ms;
        } else {
            w->upstream = up;
            lg_pipeline_set_upstream(w->pipeline, up);
        }
    }
    /* Cached keys carry the [limits] defaults they were read with: read them
     * again. Not while Redis is unreachable, where the cache is all there is
     * (it is flushed when Redis is back anyway). */
    if ((cfg->rate_per_sec != next->rate_per_sec || cfg->burst != next->burst) &&
        lg_cache_trust(w->cache) != LG_CACHE_FALLBACK)
        lg_cache_keys_flush(w->cache);
    lg_config_reload(cfg, next, NULL, NULL);
    config_free(next);
    bool log = strcmp(cfg->access_log, "on") == 0;
    lg_http_server_set_access_log(w->http, log);
    lg_http_server_set_access_log(w->https, log);
    lg_info("worker %d: reloaded configuration applied", w->id);
}

/* ---- a test build's way to kill a worker ----
 * Built with LG_TEST_HOOKS only (the test binary lockgate-hooks): with
 * LOCKGATE_TEST_WORKER_DIE=ID:MODE worker ID's thread dies 300 ms after it
 * starts, MODE "exit" through pthread_exit (a thread that is gone), "return"
 * by its loop returning unasked (a loop that failed). */
#ifdef LG_TEST_HOOKS
static void on_die_timer(evutil_socket_t fd, short what, void *arg)
{
    struct lg_worker *w = arg;
    const char *how = strchr(getenv("LOCKGATE_TEST_WORKER_DIE"), ':');
    lg_warn("worker %d: test hook: dying (%s)", w->id, how ? how + 1 : "return");
    if (how != NULL && strcmp(how + 1, "exit") == 0) pthread_exit(NULL);
    event_base_loopbreak(w->base);
}

static int test_hooks(struct lg_worker *w)
{
    const char *die = getenv("LOCKGATE_TEST_WORKER_DIE");
    if (die == NULL || atoi(die) != w->id) return 0;
    struct timeval tv = {0, 300 * 1000};
    if ((w->die_timer = evtimer_new(w->base, on_die_timer, w)) == NULL) return -1;
    return evtimer_add(w->die_timer, &tv);
}
#else
static int test_hooks(struct lg_worker *w) { return 0; }
#endif

struct lg_worker *lg_worker_new(int id, const struct lg_config *cfg,
                                const struct lg_secrets *secrets, struct lg_tls *tls)
{
    struct lg_worker *w = calloc(1, sizeof(*w));
    if (w == NULL) return NULL;
    w->id = id;
    atomic_init(&w->reload_next, NULL);
    atomic_init(&w->stop_asked, false);
    if ((w->cfg = malloc(sizeof(*w->cfg))) == NULL) {
        free(w);
        return NULL;
    }
    *w->cfg = *cfg;
    cfg = w->cfg; /* everything below reads the worker's own copy */
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
    if ((w->probe_timer = evtimer_new(w->base, on_probe_timer, w)) == NULL) goto err;
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
    if ((w->reload_ev = event_new(w->base, -1, 0, on_reload, w)) == NULL) goto err;
    if ((w->retire_timer = evtimer_new(w->base, on_retire_timer, w)) == NULL) goto err;
    if (test_hooks(w) < 0) goto err;
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
    if (strcmp(cfg->proxy_protocol, "on") == 0 &&
        ((w->http && lg_http_server_require_proxy(w->http, cfg->max_connections) < 0) ||
         (w->https && lg_http_server_require_proxy(w->https, cfg->max_connections) < 0)))
        goto err;
    return w;
err:
    lg_error("worker %d: could not start", id);
    lg_worker_stop(w);
    return NULL;
}

/* Everything that answers requests, or logs them, goes on the worker's own
 * thread once its loop is over (or on the caller's, for a worker that never
 * ran). Order matters. Stores first: their pending callbacks still answer
 * live requests. Then the feed's streams, then the listeners, whose closing
 * connections cancel upstream transfers in flight: the upstream clients go
 * last. The listeners return the pipeline's contexts as they close, so it
 * goes after them, and from here on without the store. */
static void teardown(struct lg_worker *w)
{
    w->stopping = true;
    lg_store_free(w->sub);
    lg_store_free(w->store);
    w->sub = w->store = NULL;
    if (w->pipeline) lg_pipeline_detach_store(w->pipeline);
    lg_feed_free(w->feed);
    lg_http_server_free(w->http);
    lg_http_server_free(w->https);
    w->feed = NULL;
    w->http = w->https = NULL;
    if (w->upstream) lg_upstream_free(w->upstream);
    for (int i = 0; i < w->nretired; i++) lg_upstream_free(w->retired[i]);
    free(w->retired);
    if (w->ratelimit) lg_ratelimit_free(w->ratelimit);
    if (w->reload_timer) event_free(w->reload_timer);
    if (w->probe_timer) event_free(w->probe_timer);
    if (w->hb_timer) event_free(w->hb_timer);
    if (w->drain_ev) event_free(w->drain_ev);
    if (w->reload_ev) event_free(w->reload_ev);
    if (w->retire_timer) event_free(w->retire_timer);
    if (w->die_timer) event_free(w->die_timer);
    lg_pipeline_free(w->pipeline);
    lg_cache_free(w->cache);
}

/* The worker's thread ended, or its loop returned, without lg_worker_stop
 * asking: its listeners would stay open with nobody to serve them (the
 * kernel goes on handing them clients). The process goes instead, at once,
 * with a line that says why; a supervisor (systemd Restart=on-failure)
 * starts it again. */
static void on_thread_end(void *arg)
{
    struct lg_worker *w = arg;
    if (atomic_load(&w->stop_asked)) return;
    lg_error("worker %d died (its event loop ended without being asked to); lockgate exits "
             "with status 1 so that its supervisor restarts it",
             w->id);
    _exit(EXIT_FAILURE);
}

static void *run(void *arg)
{
    struct lg_worker *w = arg;
    lg_metrics_thread_start();
    pthread_cleanup_push(on_thread_end, w);
    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    pthread_cleanup_pop(1);
    teardown(w);
    lg_metrics_thread_done();
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
        atomic_store(&w->stop_asked, true);
        event_base_loopexit(w->base, NULL);
        pthread_join(w->thread, NULL);
    } else {
        teardown(w);
    }
    config_free(atomic_exchange(&w->reload_next, NULL));
    if (w->base) event_base_free(w->base);
    config_free(w->cfg);
    free(w);
}
