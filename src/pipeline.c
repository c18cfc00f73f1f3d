/* The request pipeline of the public API. Each request gets a pooled context
 * and walks the stages in order; async stages (key load, rate limit,
 * upstream) resume the walk from their callbacks. The stages never call each
 * other: the driver (run) is the only place that moves a request on. The
 * pipeline knows its owner only through what lg_pipeline_deps lends it. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "lockgate/audit.h"
#include "lockgate/auth.h"
#include "lockgate/cache.h"
#include "lockgate/config.h"
#include "lockgate/feed.h"
#include "lockgate/http.h"
#include "lockgate/list.h"
#include "lockgate/log.h"
#include "lockgate/metrics.h"
#include "lockgate/pipeline.h"
#include "lockgate/ratelimit.h"
#include "lockgate/reply.h"
#include "lockgate/route.h"
#include "lockgate/secrets.h"
#include "lockgate/store.h"
#include "lockgate/store_read.h"
#include "lockgate/upstream.h"
#include "lockgate/util.h"

#define QUERY_MAX   1024
#define NOT_AUDITED "the read could not be audited; no code is served"

struct lg_pipeline {
    struct lg_pipeline_deps d; /* borrowed; the store may leave first */
    struct lg_list pool;       /* of lg_ctx.link */
    _Atomic int inflight;      /* read by another thread: see lg_pipeline_inflight */
};

struct lg_ctx {
    struct lg_list link; /* in the pool */
    struct lg_pipeline *p;
    struct lg_http_req *req;
    int stage;
    struct lg_route route;
    const char *ip; /* borrowed from req */
    char request_id[LG_REQUEST_ID_MAX + 1];
    char key_id[LG_KEY_LEN + 1];
    char secret[LG_SECRET_LEN + 1];
    struct lg_key *key; /* one reference, once authenticated */
    struct lg_ratelimit_result rl;
    int64_t up_start_us; /* when the upstream transfer started */
    struct lg_upstream_req *up;
    char *list;         /* GET /v1/facilities read from Redis for this request, or NULL */
    uint64_t key_epoch; /* the cache's key epoch when the key read was sent */
    struct {
        int status;
        const char *code, *msg; /* static strings */
    } refusal;                  /* waiting for the rate-limit state (refuse) */
    struct {
        char *body; /* the upstream's answer, NUL-terminated, then its content type */
        size_t len;
        size_t cap;               /* BODY's room, kept with the pooled context */
        const char *content_type; /* inside the same allocation */
    } held;                       /* an unlock code waiting for its audit entry to be stored */
    char hdr[2][96];              /* X-Request-Id, X-Forwarded-For; the key's lines are prebuilt */
    char target[256 + QUERY_MAX + 2]; /* path?query (a routed path is short) */
};

typedef enum lg_stage_result stage_fn(struct lg_ctx *ctx);
static stage_fn stage_parse, stage_authenticate, stage_authorize, stage_ratelimit, stage_forward;
static stage_fn *const stages[] = {stage_parse, stage_authenticate, stage_authorize,
                                   stage_ratelimit, stage_forward};
#define NSTAGES ((int)(sizeof(stages) / sizeof(stages[0])))

/* A key and its scope in one round trip. */
static struct lg_script key_load = {
    .name = "key_load",
    .source = "local h = redis.call('HGETALL', KEYS[1])\n"
              "if #h == 0 then return {h, {}} end\n"
              "return {h, redis.call('SMEMBERS', KEYS[2])}\n",
};

/* last_used_at, for owners: written at most once a minute per key and
 * worker, never waited on, and never on a key deleted meanwhile. */
static struct lg_script key_touch = {
    .name = "key_touch",
    .source = "if redis.call('EXISTS', KEYS[1]) == 1 then\n"
              "  redis.call('HSET', KEYS[1], 'last_used_at', ARGV[1])\n"
              "end\n"
              "return 1\n",
};

#define LAST_USED_EVERY_MS 60000

static void on_touched(struct lg_store *st, redisReply *reply, void *arg) {}

static void touch_key(struct lg_ctx *c, struct lg_key *k)
{
    int64_t now = lg_now_ms();
    if (now - k->last_used_written_ms < LAST_USED_EVERY_MS) return;
    k->last_used_written_ms = now;
    char hkey[128], at[LG_TIME_LEN];
    snprintf(hkey, sizeof(hkey), "%skey:%s", lg_store_prefix(c->p->d.store), k->key_id);
    lg_time_format(now, at);
    const char *argv[] = {hkey, at};
    lg_store_script(c->p->d.store, &key_touch, on_touched, NULL, 1, 2, argv, NULL);
}

static struct lg_ctx *ctx_get(struct lg_pipeline *p)
{
    struct lg_list *pooled = lg_list_pop_front(&p->pool);
    struct lg_ctx *c;
    if (pooled != NULL) {
        c = LG_CONTAINER_OF(pooled, struct lg_ctx, link);
    } else {
        if ((c = malloc(sizeof(*c))) == NULL) return NULL;
        lg_list_init(&c->link);
        c->held.body = NULL; /* kept from request to request, like the context */
        c->held.cap = 0;
    }
    c->p = p;
    atomic_fetch_add_explicit(&p->inflight, 1, memory_order_relaxed);
    c->stage = 0;
    c->key = NULL;
    c->up = NULL;
    c->list = NULL;
    c->key_id[0] = c->secret[0] = '\0';
    c->rl.limit = -1;
    return c;
}

static void ctx_put(struct lg_ctx *c)
{
    if (c->key != NULL) lg_key_unref(c->key);
    c->key = NULL;
    free(c->list);
    c->list = NULL;
    /* The secret does not outlive its request. */
    OPENSSL_cleanse(c->secret, sizeof(c->secret));
    atomic_fetch_sub_explicit(&c->p->inflight, 1, memory_order_relaxed);
    lg_list_push_front(&c->p->pool, &c->link);
}

struct lg_pipeline *lg_pipeline_new(const struct lg_pipeline_deps *deps)
{
    struct lg_pipeline *p = calloc(1, sizeof(*p));
    if (p == NULL) return NULL;
    lg_list_init(&p->pool);
    p->d = *deps;
    atomic_init(&p->inflight, 0);
    return p;
}

void lg_pipeline_free(struct lg_pipeline *p)
{
    if (p == NULL) return;
    struct lg_list *n;
    while ((n = lg_list_pop_front(&p->pool)) != NULL) {
        struct lg_ctx *c = LG_CONTAINER_OF(n, struct lg_ctx, link);
        free(c->held.body);
        free(c);
    }
    free(p);
}

int lg_pipeline_inflight(struct lg_pipeline *p)
{
    return atomic_load_explicit(&p->inflight, memory_order_relaxed);
}

void lg_pipeline_detach_store(struct lg_pipeline *p) { p->d.store = NULL; }

void lg_pipeline_set_upstream(struct lg_pipeline *p, struct lg_upstream *up) { p->d.upstream = up; }

static struct lg_audit_entry audit_entry(const struct lg_ctx *c, const char *outcome)
{
    return (struct lg_audit_entry){"unlock_code.read", c->key->account_id,
                                   c->key->key_id,     c->route.facility_id,
                                   c->route.unit_id,   c->ip,
                                   c->request_id,      outcome};
}

/* Every unlock-code request that got past authentication is audited,
 * whatever its outcome: a served code before it leaves (release), the
 * others here, after the fact. */
static void audit(struct lg_ctx *c, const char *outcome)
{
    if (c->route.kind != LG_ROUTE_UNLOCK_CODE || c->key == NULL) return;
    struct lg_audit_entry e = audit_entry(c, outcome);
    lg_audit_write(c->p->d.store, c->p->d.cfg, &e);
}

static void set_ratelimit_headers(struct lg_ctx *c);

/* Headers of a successful answer: the request id and the rate limit state. */
static void set_success_headers(struct lg_ctx *c)
{
    lg_http_set_header(c->req, "X-Request-Id", c->request_id);
    set_ratelimit_headers(c);
}

static void set_ratelimit_headers(struct lg_ctx *c)
{
    if (c->rl.limit < 0) return;
    char v[24];
    snprintf(v, sizeof(v), "%d", c->rl.limit);
    lg_http_set_header(c->req, "RateLimit-Limit", v);
    snprintf(v, sizeof(v), "%d", c->rl.remaining);
    lg_http_set_header(c->req, "RateLimit-Remaining", v);
    snprintf(v, sizeof(v), "%d", c->rl.reset_s);
    lg_http_set_header(c->req, "RateLimit-Reset", v);
}

/* Answers with the JSON error body of SPEC section 5 and ends the request. */
static enum lg_stage_result fail(struct lg_ctx *c, int status, const char *code, const char *msg)
{
    audit(c, code);
    set_ratelimit_headers(c);
    if (status == 401) lg_http_set_header(c->req, "WWW-Authenticate", "Basic realm=\"lockgate\"");
    lg_http_reply_error(c->req, status, code, msg, c->request_id);
    return LG_DONE;
}

static void on_peek(const struct lg_ratelimit_result *res, void *arg)
{
    struct lg_ctx *c = arg;
    c->rl = *res;
    fail(c, c->refusal.status, c->refusal.code, c->refusal.msg);
    ctx_put(c);
}

/* An authenticated request refused before the rate-limit stage uses no
 * quota, yet its answer still tells the client where its allowance stands:
 * the rate limit is read, not consumed, then the refusal is sent. Such a
 * refusal (a locked key, an address outside the allowlist, the wrong role, a
 * facility the key may not see) counts toward the client's failure throttle
 * like a failed authentication: probing with a known key is guessing too. */
static enum lg_stage_result refuse(struct lg_ctx *c, enum lg_metrics_auth why, int status,
                                   const char *code, const char *msg)
{
    lg_metrics_auth_failure(why);
    lg_auth_failed(c->ip);
    if (c->key == NULL || c->rl.limit >= 0) return fail(c, status, code, msg);
    c->refusal.status = status;
    c->refusal.code = code;
    c->refusal.msg = msg;
    lg_ratelimit_peek(c->p->d.ratelimit, c->key->key_id, c->key->rate_per_sec, c->key->burst,
                      on_peek, c);
    return LG_AGAIN; /* on_peek may already have answered: C is not touched again */
}

static enum lg_stage_result fail_retry(struct lg_ctx *c, int status, const char *code,
                                       const char *msg, int retry_after_s)
{
    char v[16];
    snprintf(v, sizeof(v), "%d", retry_after_s < 1 ? 1 : retry_after_s);
    lg_http_set_header(c->req, "Retry-After", v);
    return fail(c, status, code, msg);
}

/* Walks the stages from c->stage until one answers or waits. */
static void run(struct lg_ctx *c)
{
    while (c->stage < NSTAGES) {
        enum lg_stage_result r = stages[c->stage](c);
        if (r == LG_AGAIN) return;
        if (r == LG_DONE) break;
        c->stage++;
    }
    ctx_put(c);
}

/* Resumes after an async stage finished with R. */
static void resume(struct lg_ctx *c, enum lg_stage_result r)
{
    if (r == LG_AGAIN) return;
    if (r == LG_DONE) {
        ctx_put(c);
        return;
    }
    c->stage++;
    run(c);
}

static bool sane_token(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char ch = s[n];
        if (n == LG_REQUEST_ID_MAX ||
            !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == '.'))
            return false;
    }
    return n > 0;
}

static bool sane_query(const char *q)
{
    size_t n = 0;
    for (; q[n]; n++)
        if (n == QUERY_MAX || q[n] <= ' ' || q[n] == 0x7f || q[n] == '#') return false;
    return true;
}

/* parse: method, route, ids, request id. Nothing here trusts the client. */
static enum lg_stage_result stage_parse(struct lg_ctx *c)
{
    const char *rid = lg_http_hdr(c->req, LG_HDR_X_REQUEST_ID);
    if (rid != NULL && sane_token(rid))
        snprintf(c->request_id, sizeof(c->request_id), "%s", rid);
    else
        lg_request_id_new(c->request_id);
    c->ip = lg_http_peer(c->req);
    enum lg_http_method method = lg_http_method(c->req);
    c->route.kind = LG_ROUTE_NONE;
    if (method != LG_HTTP_GET && method != LG_HTTP_HEAD) {
        lg_http_set_header(c->req, "Allow", "GET, HEAD");
        return fail(c, 405, "method_not_allowed", "only GET and HEAD are allowed");
    }
    const char *path = lg_http_path(c->req);
    switch (lg_route_parse(path, &c->route)) {
    case LG_ROUTE_BAD: return fail(c, 400, "bad_request", "malformed path or identifier");
    case LG_ROUTE_NONE: return fail(c, 404, "not_found", "no such resource");
    default: break;
    }
    const char *q = lg_http_query(c->req);
    if (q != NULL && !sane_query(q)) {
        c->route.kind = LG_ROUTE_NONE; /* not audited: nothing was asked yet */
        return fail(c, 400, "bad_request", "malformed query string");
    }
    return LG_OK;
}

static void on_key_loaded(struct lg_store *st, redisReply *reply, void *arg);

/* Answers for a known key: secret, status, expiry, allowlist. */
static enum lg_stage_result check_key(struct lg_ctx *c, struct lg_key *k)
{
    if (k == NULL || !lg_auth_verify(k, c->p->d.secrets, c->secret)) {
        lg_metrics_auth_failure(LG_METRICS_AUTH_INVALID);
        lg_auth_failed(c->ip);
        return fail(c, 401, "invalid_credentials", "unknown key or wrong secret");
    }
    lg_key_ref(k);
    c->key = k;
    OPENSSL_cleanse(c->secret, sizeof(c->secret));
    if (k->disabled || (k->expires_at_ms != 0 && k->expires_at_ms <= lg_now_ms()))
        return refuse(c, LG_METRICS_AUTH_KEY_DISABLED, 403, "key_disabled",
                      "this key is locked or expired");
    if (!lg_key_ip_allowed(k, c->ip))
        return refuse(c, LG_METRICS_AUTH_IP, 403, "ip_not_allowed",
                      "this key may not be used from this address");
    touch_key(c, k);
    return LG_OK;
}

/* authenticate: credentials of the right form, then the key from the cache
 * or, on first sight, from Redis (one script: the hash and its scope). */
static enum lg_stage_result stage_authenticate(struct lg_ctx *c)
{
    int retry;
    if (lg_auth_throttled(c->ip, &retry)) {
        lg_metrics_rate_limited(LG_METRICS_LIMIT_AUTH_FAILURES);
        return fail_retry(c, 429, "rate_limited", "too many failed authentications", retry);
    }
    const char *authz = lg_http_hdr(c->req, LG_HDR_AUTHORIZATION);
    const char *xkey = lg_http_hdr(c->req, LG_HDR_X_API_KEY);
    const char *xsecret = lg_http_hdr(c->req, LG_HDR_X_API_SECRET);
    switch (lg_auth_parse(authz, xkey, xsecret, c->key_id, c->secret)) {
    case LG_AUTH_MISSING:
        lg_metrics_auth_failure(LG_METRICS_AUTH_MISSING);
        return fail(c, 401, "missing_credentials", "credentials required");
    case LG_AUTH_INVALID:
        lg_metrics_auth_failure(LG_METRICS_AUTH_MALFORMED);
        lg_auth_failed(c->ip);
        return fail(c, 401, "invalid_credentials", "malformed credentials");
    case LG_AUTH_BOTH: /* malformed credentials too: they count as a failure */
        lg_metrics_auth_failure(LG_METRICS_AUTH_MIXED);
        lg_auth_failed(c->ip);
        return fail(c, 400, "bad_request",
                    "Authorization and X-API-Key/X-API-Secret may not be sent together");
    case LG_AUTH_OK: break;
    }
    const struct lg_pipeline_deps *d = &c->p->d;
    struct lg_key *k = lg_cache_key_get(d->cache, c->key_id);
    bool hit = k != NULL && lg_cache_answers(d->cache, lg_store_up(d->store));
    lg_metrics_cache(LG_METRICS_CACHE_KEY, hit);
    if (hit) return check_key(c, k);
    const char *p = lg_store_prefix(d->store);
    char hkey[128], skey[128];
    snprintf(hkey, sizeof(hkey), "%skey:%s", p, c->key_id);
    snprintf(skey, sizeof(skey), "%skey:%s:facilities", p, c->key_id);
    const char *argv[] = {hkey, skey};
    c->key_epoch = lg_cache_key_epoch(d->cache);
    if (lg_store_script(d->store, &key_load, on_key_loaded, c, 2, 2, argv, NULL) < 0)
        return fail(c, 503, "store_unavailable", "the key store is unreachable");
    return LG_AGAIN;
}

static void on_key_loaded(struct lg_store *st, redisReply *reply, void *arg)
{
    struct lg_ctx *c = arg;
    const struct lg_pipeline_deps *d = &c->p->d;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        /* Deadline passed or Redis gone: a key verified while subscribed may
         * still serve, unless the cache may not answer at all. */
        struct lg_key *k = lg_cache_key_get(d->cache, c->key_id);
        if (k != NULL && lg_cache_trust(d->cache) != LG_CACHE_NONE) {
            resume(c, check_key(c, k));
            return;
        }
        resume(c, fail(c, 503, "store_unavailable", "the key store is unreachable"));
        return;
    }
    const redisReply *hash = reply->element[0];
    if (hash->type == REDIS_REPLY_ARRAY && hash->elements == 0) { /* no such key */
        lg_cache_key_drop(d->cache, c->key_id);
        resume(c, check_key(c, NULL));
        return;
    }
    struct lg_key *k = lg_store_key_from_reply(c->key_id, hash, reply->element[1], d->cfg);
    if (k == NULL) {
        /* A key we cannot read (or no memory) is our fault, not the client's:
         * no failure is counted against it, and nothing is served. */
        static _Thread_local int64_t logged_ms; /* not a line per request */
        if (lg_mono_ms() - logged_ms >= 1000) {
            logged_ms = lg_mono_ms();
            lg_error("key %s: its stored record cannot be read", c->key_id);
        }
        lg_cache_key_drop(d->cache, c->key_id);
        resume(c, fail(c, 503, "store_unavailable", "the key store answered nonsense"));
        return;
    }
    /* A re-read key with the same verifier keeps what this worker learned. */
    struct lg_key *old = lg_cache_key_get(d->cache, c->key_id);
    if (old != NULL && strcmp(old->verifier, k->verifier) == 0) {
        k->has_verified = old->has_verified;
        memcpy(k->verified, old->verified, sizeof(k->verified));
        k->last_used_written_ms = old->last_used_written_ms;
    }
    /* Keep the freshest read unless a key event overtook this reply (it may
     * concern this very key) or no event could have: the cache holds only
     * what was read while subscribed, since that alone may answer later. */
    bool exact =
        lg_cache_key_epoch(d->cache) == c->key_epoch && lg_cache_trust(d->cache) == LG_CACHE_EXACT;
    if (exact)
        lg_cache_key_put(d->cache, k);
    else
        lg_cache_key_drop(d->cache, c->key_id);
    resume(c, check_key(c, k));
    if (!exact) lg_key_unref(k);
}

static void on_facility_read(struct lg_store *st, redisReply *reply, void *arg);
static void on_account_facilities(struct lg_store *st, redisReply *reply, void *arg);

/* Without a trusted facility table (the subscription is down, SPEC section
 * 10) the facility, or for the list the key's account's facilities, is read
 * from Redis for this request. */
static enum lg_stage_result read_facilities(struct lg_ctx *c)
{
    struct lg_store *st = c->p->d.store;
    int rc;
    if (c->route.kind == LG_ROUTE_FACILITIES) {
        char set[160];
        snprintf(set, sizeof(set), "%sacct:%s:facilities", lg_store_prefix(st), c->key->account_id);
        rc = lg_store_read_facilities(st, set, on_account_facilities, c);
    } else {
        rc = lg_store_read_facility(st, c->route.facility_id, on_facility_read, c);
    }
    if (rc < 0) return fail(c, 503, "store_unavailable", "the facility store is unreachable");
    return LG_AGAIN;
}

/* A facility the key may not see answers like one that does not exist. */
static enum lg_stage_result authorize_facility(struct lg_ctx *c, const struct lg_facility *f)
{
    if (!lg_key_sees(c->key, f))
        return refuse(c, LG_METRICS_AUTH_SCOPE, 404, "not_found", "no such resource");
    return LG_OK;
}

/* authorize: the role fits the route, the facility is visible to the key. */
static enum lg_stage_result stage_authorize(struct lg_ctx *c)
{
    const struct lg_pipeline_deps *d = &c->p->d;
    bool feed_route = lg_route_is_feed(c->route.kind);
    if (feed_route != c->key->feed)
        return refuse(c, LG_METRICS_AUTH_ROLE, 403, "forbidden",
                      feed_route ? "this route is for feed keys"
                                 : "feed keys may only read the feed");
    if (feed_route) return LG_OK;
    if (!lg_cache_answers(d->cache, lg_store_up(d->store))) {
        lg_metrics_cache(LG_METRICS_CACHE_FACILITY, false);
        return read_facilities(c);
    }
    if (!lg_cache_facilities_loaded(d->cache))
        return fail(c, 503, "store_unavailable", "facilities are being loaded");
    lg_metrics_cache(LG_METRICS_CACHE_FACILITY, true);
    if (c->route.kind == LG_ROUTE_FACILITIES) return LG_OK;
    return authorize_facility(c, lg_cache_facility_get(d->cache, c->route.facility_id));
}

static void on_facility_read(struct lg_store *st, redisReply *reply, void *arg)
{
    struct lg_ctx *c = arg;
    struct lg_facility f;
    int found = lg_store_facility_from_reply(c->route.facility_id, reply, &f);
    if (found < 0)
        resume(c, fail(c, 503, "store_unavailable", "the facility store is unreachable"));
    else
        resume(c, authorize_facility(c, found ? &f : NULL));
}

static void on_ratelimit(const struct lg_ratelimit_result *res, void *arg);

/* rate-limit: one GCRA script per request, shared by every gateway. */
static enum lg_stage_result stage_ratelimit(struct lg_ctx *c)
{
    c->rl.limit = -1;
    lg_ratelimit_check(c->p->d.ratelimit, c->key->key_id, c->key->rate_per_sec, c->key->burst,
                       on_ratelimit, c);
    return LG_AGAIN;
}

static void on_ratelimit(const struct lg_ratelimit_result *res, void *arg)
{
    struct lg_ctx *c = arg;
    c->rl = *res;
    if (res->local) lg_metrics_local_limit();
    if (!res->allowed) {
        lg_metrics_rate_limited(LG_METRICS_LIMIT_KEY);
        resume(c, fail_retry(c, 429, "rate_limited", "rate limit exceeded", res->retry_after_s));
        return;
    }
    resume(c, LG_OK);
}

static int by_id(const void *a, const void *b)
{
    const struct lg_facility *const *x = a, *const *y = b;
    return strcmp((*x)->id, (*y)->id);
}

/* The JSON of those of the N facilities ALL that KEY may see, sorted by id:
 * a new string (the caller frees it), or NULL when out of memory. */
static char *facilities_json(const struct lg_facility *const *all, size_t n,
                             const struct lg_key *key)
{
    const struct lg_facility **seen = malloc((n ? n : 1) * sizeof(*seen));
    json_t *items = json_array();
    char *text = NULL;
    if (seen != NULL && items != NULL) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (lg_key_sees(key, all[i])) seen[k++] = all[i];
        qsort(seen, k, sizeof(*seen), by_id);
        for (size_t i = 0; i < k; i++)
            json_array_append_new(
                items, json_pack("{s:s, s:s}", "facility_id", seen[i]->id, "name", seen[i]->name));
        json_t *doc = json_pack("{s:O}", "facilities", items);
        text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        json_decref(doc);
    }
    free(seen);
    json_decref(items);
    return text;
}

/* The facilities read from Redis for one request (read_facilities). */
struct fac_list {
    struct lg_facility *items;
    const struct lg_facility **ptrs;
    size_t n;
    bool failed;
};

static void collect(const struct lg_facility *f, void *arg)
{
    struct fac_list *l = arg;
    if (l->failed) return;
    if ((l->n & (l->n - 1)) == 0) { /* 0, 1, 2, 4...: grow to double */
        size_t cap = l->n ? 2 * l->n : 1;
        struct lg_facility *items = realloc(l->items, cap * sizeof(*items));
        if (items == NULL) {
            l->failed = true;
            return;
        }
        l->items = items;
    }
    l->items[l->n++] = *f; /* the name stays borrowed from the reply */
}

/* The answer is built here, while the reply lives; forward sends it. */
static void on_account_facilities(struct lg_store *st, redisReply *reply, void *arg)
{
    struct lg_ctx *c = arg;
    struct fac_list l = {0};
    if (lg_store_facilities_each(reply, collect, &l) < 0) {
        resume(c, fail(c, 503, "store_unavailable", "the facility store is unreachable"));
        return;
    }
    if (!l.failed && (l.ptrs = malloc((l.n ? l.n : 1) * sizeof(*l.ptrs))) != NULL) {
        for (size_t i = 0; i < l.n; i++) l.ptrs[i] = &l.items[i];
        c->list = facilities_json(l.ptrs, l.n, c->key);
    }
    free(l.ptrs);
    free(l.items);
    if (c->list == NULL) {
        resume(c, fail(c, 503, "store_unavailable", "out of memory"));
        return;
    }
    resume(c, LG_OK);
}

/* GET /v1/facilities is answered from this worker's own facility table,
 * looking only at the key's account, or from what this request read when
 * the table may not answer. The table's answer is kept with the key until
 * the table changes (a new scope is a new key object). */
static enum lg_stage_result list_facilities(struct lg_ctx *c)
{
    struct lg_cache *cache = c->p->d.cache;
    struct lg_key *k = c->key;
    if (c->list != NULL) {
        set_success_headers(c);
        lg_http_reply(c->req, 200, "application/json", c->list, strlen(c->list));
        return LG_DONE;
    }
    uint64_t version = lg_cache_facilities_version(cache);
    if (k->list_body == NULL || k->list_version != version) {
        const struct lg_facility *const *all;
        size_t n = lg_cache_account_facilities(cache, k->account_id, &all);
        char *text = facilities_json(all, n, k);
        if (text == NULL) return fail(c, 503, "store_unavailable", "out of memory");
        free(k->list_body);
        k->list_body = text;
        k->list_len = strlen(text);
        k->list_version = version;
    }
    set_success_headers(c);
    lg_http_reply(c->req, 200, "application/json", k->list_body, k->list_len);
    return LG_DONE;
}

static void on_upstream(const struct lg_upstream_result *res, void *arg);
static void on_client_close(struct lg_http_req *req, void *arg);

/* forward: the facility list from memory, the feed to feed.c, the rest to
 * the upstream with credentials stripped and identity headers added. */
static enum lg_stage_result stage_forward(struct lg_ctx *c)
{
    const struct lg_pipeline_deps *d = &c->p->d;
    if (c->route.kind == LG_ROUTE_FACILITIES) return list_facilities(c);
    if (lg_route_is_feed(c->route.kind)) {
        set_success_headers(c);
        lg_feed_serve(d->feed, c->req, c->route.kind, c->key->key_id, c->key->expires_at_ms,
                      c->request_id);
        return LG_DONE;
    }
    snprintf(c->hdr[0], sizeof(c->hdr[0]), "X-Request-Id: %s", c->request_id);
    snprintf(c->hdr[1], sizeof(c->hdr[1]), "X-Forwarded-For: %s", c->ip);
    const char *headers[] = {
        c->hdr[0], c->hdr[1], c->key->hdr_account, c->key->hdr_key, "Accept: application/json",
        NULL};
    /* the path as the client sent it, checked by parse; the query (checked
     * too) only with the unit list, the one route that takes parameters */
    const char *target = lg_http_path(c->req), *q = lg_http_query(c->req);
    if (q != NULL && c->route.kind == LG_ROUTE_UNITS) {
        snprintf(c->target, sizeof(c->target), "%s?%s", target, q);
        target = c->target;
    }
    c->up_start_us = lg_mono_us();
    c->up = lg_upstream_fetch(d->upstream, target, 0, headers, on_upstream, c);
    if (c->up == NULL) {
        lg_metrics_upstream(LG_UPSTREAM_UNAVAILABLE, 0, -1);
        return fail(c, 502, "upstream_unavailable", "the upstream is unavailable");
    }
    lg_http_on_close(c->req, on_client_close, c);
    return LG_AGAIN;
}

/* The client hung up: stop its upstream transfer, then release the request. */
static void on_client_close(struct lg_http_req *req, void *arg)
{
    struct lg_ctx *c = arg;
    if (c->up == NULL) return;
    lg_upstream_cancel(c->up);
    c->up = NULL;
    audit(c, "client_gone");
    lg_http_set_header(c->req, "X-Request-Id", c->request_id);
    lg_http_reply(c->req, 499, NULL, NULL, 0); /* nobody reads it: releases the request */
    ctx_put(c);
}

enum code_check { CODE_SERVE, CODE_WITHHOLD, CODE_UNREADABLE };

/* An unlock code is served only from a 200 whose JSON says which lock state
 * it is in, and never for a lock in auction: anything else fails closed. */
static enum code_check check_code(int status, const char *body, size_t len)
{
    if (status != 200) return CODE_UNREADABLE;
    json_t *doc = json_loadb(body, len, 0, NULL);
    const char *lock =
        json_is_object(doc) ? json_string_value(json_object_get(doc, "lock_status")) : NULL;
    enum code_check r = lock == NULL                            ? CODE_UNREADABLE
                        : strcmp(lock, "assigned_auction") == 0 ? CODE_WITHHOLD
                                                                : CODE_SERVE;
    json_decref(doc);
    return r;
}

static void serve(struct lg_ctx *c, int status, const char *content_type, const char *body,
                  size_t len)
{
    set_success_headers(c);
    lg_http_reply(c->req, status, content_type ? content_type : "application/json", body, len);
}

static void on_audit_stored(struct lg_store *st, redisReply *reply, void *arg)
{
    struct lg_ctx *c = arg;
    enum lg_stage_result r = LG_DONE;
    if (lg_audit_stored(reply)) {
        serve(c, 200, c->held.content_type, c->held.body, c->held.len);
    } else {
        lg_metrics_audit_failure(true);
        r = fail(c, 503, "audit_unavailable", NOT_AUDITED);
    }
    OPENSSL_cleanse(c->held.body, c->held.len); /* the code does not outlive its answer */
    resume(c, r);
}

/* Answers with the upstream's RES. An unlock code (the route's only 200) is
 * written ahead: it waits, copied, until Redis has acknowledged its audit
 * entry, and is not sent at all when that fails within [redis] timeout_ms. */
static enum lg_stage_result release(struct lg_ctx *c, const struct lg_upstream_result *res)
{
    if (c->route.kind != LG_ROUTE_UNLOCK_CODE) {
        serve(c, res->status, res->content_type, res->body, res->body_len);
        return LG_DONE;
    }
    const char *ctype = res->content_type ? res->content_type : "application/json";
    size_t clen = strlen(ctype);
    size_t need = res->body_len + clen + 2;
    if (need > c->held.cap) {
        char *nb = realloc(c->held.body, need);
        if (nb == NULL) return fail(c, 503, "audit_unavailable", "out of memory");
        c->held.body = nb;
        c->held.cap = need;
    }
    memcpy(c->held.body, res->body, res->body_len);
    c->held.body[res->body_len] = '\0';
    c->held.len = res->body_len;
    c->held.content_type = memcpy(c->held.body + res->body_len + 1, ctype, clen + 1);
    struct lg_audit_entry e = audit_entry(c, "served");
    if (lg_audit_store(c->p->d.store, c->p->d.cfg, &e, on_audit_stored, c) < 0) {
        lg_metrics_audit_failure(true);
        OPENSSL_cleanse(c->held.body, c->held.len);
        return fail(c, 503, "audit_unavailable", NOT_AUDITED);
    }
    return LG_AGAIN;
}

static void on_upstream(const struct lg_upstream_result *res, void *arg)
{
    struct lg_ctx *c = arg;
    c->up = NULL;
    enum lg_stage_result r;
    enum code_check code;
    lg_metrics_upstream(res->error, res->status, lg_mono_us() - c->up_start_us);
    if (res->error == LG_UPSTREAM_TIMEOUT)
        r = fail(c, 504, "upstream_timeout", "the upstream did not answer in time");
    else if (res->error != LG_UPSTREAM_OK || res->status >= 500)
        r = fail(c, 502, "upstream_unavailable", "the upstream is unavailable");
    else if (res->status == 404)
        r = fail(c, 404, "not_found", "no such resource");
    else if (res->status >= 400)
        r = fail(c, 400, "bad_request", "the upstream refused the request");
    else if (c->route.kind == LG_ROUTE_UNLOCK_CODE &&
             (code = check_code(res->status, res->body, res->body_len)) != CODE_SERVE)
        r = code == CODE_WITHHOLD
                ? fail(c, 403, "code_withheld", "the code of a lock in auction is withheld")
                : fail(c, 502, "upstream_unavailable", "the upstream's answer was unreadable");
    else
        r = release(c, res);
    resume(c, r);
}

void lg_pipeline_handle(struct lg_http_req *req, void *arg)
{
    struct lg_ctx *c = ctx_get(arg);
    if (c == NULL) {
        lg_http_reply(req, 503, NULL, NULL, 0);
        return;
    }
    c->req = req;
    run(c);
}
