/* Counters of the data plane for /metrics. Every worker thread has a block
 * of its own that only it writes (a relaxed load and store: no locked
 * instruction, no cache line shared with another core); a scrape sums the
 * blocks. Threads without a block share one, with atomic adds. */
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>

#include "lockgate/metrics.h"

#define STATUS_MAX  600
#define BUCKETS_MAX 16

enum { HIST_REQUEST, HIST_UPSTREAM, HIST_REDIS, NHISTS };

/* Upper bounds in microseconds, printed in seconds. */
static const int64_t request_us[] = {100,     250,     500,     1000,    2500,
                                     5000,    10000,   25000,   50000,   100000,
                                     250000,  500000,  1000000, 2500000, 10000000};
static const int64_t upstream_us[] = {250,    500,     1000,    2500,    5000,
                                      10000,  25000,   50000,   100000,  250000,
                                      500000, 1000000, 2500000, 5000000, 10000000};
static const int64_t redis_us[] = {50,    100,   250,   500,    1000,   2500,   5000,
                                   10000, 25000, 50000, 100000, 250000, 1000000};

#define NELEMS(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const struct hist_def {
    const char *name, *help;
    const int64_t *bound_us;
    int n;
} hists[NHISTS] = {
    {"lockgate_request_duration_seconds",
     "Public API answer times, from the request's first byte to the answer.",
     request_us, NELEMS(request_us)},
    {"lockgate_upstream_duration_seconds",
     "Upstream transfer times, waiting for a free connection included.", upstream_us,
     NELEMS(upstream_us)},
    {"lockgate_redis_command_duration_seconds",
     "Redis command round trips that got a reply, from sending to the reply.", redis_us,
     NELEMS(redis_us)},
};

static const char *const auth_reason[LG_METRICS_AUTH_N] = {
    [LG_METRICS_AUTH_MISSING] = "missing_credentials",
    [LG_METRICS_AUTH_MALFORMED] = "malformed_credentials",
    [LG_METRICS_AUTH_MIXED] = "mixed_credentials",
    [LG_METRICS_AUTH_INVALID] = "invalid_credentials",
    [LG_METRICS_AUTH_KEY_DISABLED] = "key_disabled",
    [LG_METRICS_AUTH_IP] = "ip_not_allowed",
    [LG_METRICS_AUTH_ROLE] = "forbidden",
    [LG_METRICS_AUTH_SCOPE] = "out_of_scope",
};
static const char *const limit_name[LG_METRICS_LIMIT_N] = {"key", "auth_failures"};
static const char *const cache_name[LG_METRICS_CACHE_N] = {"key", "facility"};
static const char *const conn_name[LG_METRICS_CONN_N] = {"commands", "events"};

enum upstream_err { UPERR_UNAVAILABLE, UPERR_TIMEOUT, UPERR_STATUS, UPERR_N };
static const char *const uperr_name[UPERR_N] = {"unavailable", "timeout", "status_5xx"};

struct hist {
    atomic_ullong bucket[BUCKETS_MAX + 1]; /* the last: above every bound */
    atomic_ullong sum_us;
};

struct block {
    struct block *next; /* every registered block, newest first */
    atomic_ullong by_status[STATUS_MAX];
    struct hist hist[NHISTS];
    atomic_ullong auth[LG_METRICS_AUTH_N];
    atomic_ullong limited[LG_METRICS_LIMIT_N];
    atomic_ullong local_limits;
    atomic_ullong hits[LG_METRICS_CACHE_N], misses[LG_METRICS_CACHE_N];
    atomic_ullong uperr[UPERR_N];
    atomic_ullong redis_failures;
    atomic_ullong events_applied, events_malformed;
    atomic_ullong audit_failures[2]; /* after the fact, write-ahead */
    atomic_ullong feed_streams;      /* a gauge: deltas in two's complement */
    atomic_int conn_up[LG_METRICS_CONN_N];
    atomic_bool live; /* counts in lockgate_workers */
};

static struct block shared;
static struct block *blocks; /* guarded by lock */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local struct block *mine;
static atomic_int upstream_state = -1;

static struct block *here(void) { return mine != NULL ? mine : &shared; }

/* Only the owning thread writes its block: a plain add, made atomic so that
 * a scrape never reads a torn value. */
static void add(struct block *b, atomic_ullong *v, unsigned long long n)
{
    if (b == &shared)
        atomic_fetch_add_explicit(v, n, memory_order_relaxed);
    else
        atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + n,
                              memory_order_relaxed);
}

static void observe(struct block *b, int h, int64_t us)
{
    if (us < 0) us = 0;
    const struct hist_def *d = &hists[h];
    int i = 0;
    while (i < d->n && us > d->bound_us[i]) i++;
    add(b, &b->hist[h].bucket[i], 1);
    add(b, &b->hist[h].sum_us, (unsigned long long)us);
}

void lg_metrics_thread_start(void)
{
    if (mine != NULL) return;
    struct block *b = calloc(1, sizeof(*b));
    if (b == NULL) return; /* it counts in the shared block */
    atomic_store(&b->live, true);
    pthread_mutex_lock(&lock);
    b->next = blocks;
    blocks = b;
    pthread_mutex_unlock(&lock);
    mine = b;
}

void lg_metrics_thread_done(void)
{
    if (mine == NULL) return;
    for (int i = 0; i < LG_METRICS_CONN_N; i++) atomic_store(&mine->conn_up[i], 0);
    atomic_store(&mine->live, false);
}

void lg_metrics_answer(int status, int64_t us)
{
    struct block *b = here();
    if (status < 0 || status >= STATUS_MAX) status = 0;
    add(b, &b->by_status[status], 1);
    observe(b, HIST_REQUEST, us);
}

void lg_metrics_auth_failure(enum lg_metrics_auth reason)
{
    struct block *b = here();
    if ((unsigned)reason < LG_METRICS_AUTH_N) add(b, &b->auth[reason], 1);
}

void lg_metrics_rate_limited(enum lg_metrics_limit limit)
{
    struct block *b = here();
    if ((unsigned)limit < LG_METRICS_LIMIT_N) add(b, &b->limited[limit], 1);
}

void lg_metrics_local_limit(void)
{
    struct block *b = here();
    add(b, &b->local_limits, 1);
}

void lg_metrics_cache(enum lg_metrics_cache which, bool hit)
{
    struct block *b = here();
    if ((unsigned)which >= LG_METRICS_CACHE_N) return;
    add(b, hit ? &b->hits[which] : &b->misses[which], 1);
}

void lg_metrics_upstream(enum lg_upstream_error error, int status, int64_t us)
{
    struct block *b = here();
    if (us >= 0) observe(b, HIST_UPSTREAM, us);
    bool ok = error == LG_UPSTREAM_OK && status < 500;
    if (!ok)
        add(b,
            &b->uperr[error == LG_UPSTREAM_TIMEOUT ? UPERR_TIMEOUT
                      : error == LG_UPSTREAM_OK    ? UPERR_STATUS
                                                   : UPERR_UNAVAILABLE],
            1);
    /* Written only when it changes: every worker reports every transfer, and
     * a store per request would bounce this cache line between cores. */
    int v = ok ? 1 : 0;
    if (atomic_load_explicit(&upstream_state, memory_order_relaxed) != v)
        atomic_store_explicit(&upstream_state, v, memory_order_relaxed);
}

int lg_metrics_upstream_state(void)
{
    return atomic_load_explicit(&upstream_state, memory_order_relaxed);
}

void lg_metrics_redis_command(bool answered, int64_t us)
{
    struct block *b = here();
    if (answered)
        observe(b, HIST_REDIS, us);
    else
        add(b, &b->redis_failures, 1);
}

void lg_metrics_redis_state(enum lg_metrics_conn which, bool up)
{
    if (mine == NULL || (unsigned)which >= LG_METRICS_CONN_N) return;
    atomic_store_explicit(&mine->conn_up[which], up ? 1 : 0, memory_order_relaxed);
}

int lg_metrics_workers_connected(int *connected)
{
    int workers = 0;
    *connected = 0;
    pthread_mutex_lock(&lock);
    for (struct block *b = blocks; b != NULL; b = b->next) {
        if (!atomic_load(&b->live)) continue;
        workers++;
        *connected += atomic_load(&b->conn_up[LG_METRICS_CONN_COMMANDS]);
    }
    pthread_mutex_unlock(&lock);
    return workers;
}

void lg_metrics_event(bool applied)
{
    struct block *b = here();
    add(b, applied ? &b->events_applied : &b->events_malformed, 1);
}

void lg_metrics_audit_failure(bool write_ahead)
{
    struct block *b = here();
    add(b, &b->audit_failures[write_ahead ? 1 : 0], 1);
}

void lg_metrics_feed_streams(int delta)
{
    struct block *b = here();
    add(b, &b->feed_streams, (unsigned long long)(long long)delta);
}

/* ---- the scrape ---- */

/* The sum over every block of the counter at byte OFFSET (the caller holds
 * the lock). Two's complement: a gauge's deltas sum right too. */
static unsigned long long sum(size_t offset)
{
    unsigned long long n = 0;
    for (struct block *b = blocks;; b = b->next) {
        if (b == NULL) b = &shared;
        n += atomic_load_explicit((atomic_ullong *)((char *)b + offset), memory_order_relaxed);
        if (b == &shared) break;
    }
    return n;
}

#define SUM(field) sum(offsetof(struct block, field))

static void family(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A counter family with one label, every value listed (zero too). */
static void labelled(FILE *out, const char *name, const char *help, const char *label,
                     const char *const *values, int n, size_t offset)
{
    family(out, name, "counter", help);
    for (int i = 0; i < n; i++)
        fprintf(out, "%s{%s=\"%s\"} %llu\n", name, label, values[i],
                sum(offset + (size_t)i * sizeof(atomic_ullong)));
}

static void histogram(FILE *out, int h)
{
    const struct hist_def *d = &hists[h];
    family(out, d->name, "histogram", d->help);
    size_t base = offsetof(struct block, hist) + (size_t)h * sizeof(struct hist);
    unsigned long long cumulative = 0;
    for (int i = 0; i <= d->n; i++) {
        cumulative += sum(base + offsetof(struct hist, bucket) + (size_t)i * sizeof(atomic_ullong));
        if (i < d->n)
            fprintf(out, "%s_bucket{le=\"%g\"} %llu\n", d->name, (double)d->bound_us[i] / 1e6,
                    cumulative);
        else
            fprintf(out, "%s_bucket{le=\"+Inf\"} %llu\n", d->name, cumulative);
    }
    fprintf(out, "%s_sum %.6f\n%s_count %llu\n", d->name,
            (double)sum(base + offsetof(struct hist, sum_us)) / 1e6, d->name, cumulative);
}

void lg_metrics_write(FILE *out)
{
    pthread_mutex_lock(&lock);
    family(out, "lockgate_requests_total", "counter", "Public API answers by HTTP status.");
    for (int s = 0; s < STATUS_MAX; s++) {
        unsigned long long n =
            sum(offsetof(struct block, by_status) + (size_t)s * sizeof(atomic_ullong));
        if (n != 0) fprintf(out, "lockgate_requests_total{status=\"%d\"} %llu\n", s, n);
    }
    histogram(out, HIST_REQUEST);
    labelled(out, "lockgate_auth_failures_total",
             "Requests refused at authentication or authorization, by reason.", "reason",
             auth_reason, LG_METRICS_AUTH_N, offsetof(struct block, auth));
    labelled(out, "lockgate_rate_limited_total",
             "Requests refused 429, by the limit that refused them: the key's rate limit or "
             "the client address's failed-authentication throttle.",
             "limit", limit_name, LG_METRICS_LIMIT_N, offsetof(struct block, limited));
    family(out, "lockgate_ratelimit_local_total", "counter",
           "Rate-limit decisions made locally because Redis was unreachable.");
    fprintf(out, "lockgate_ratelimit_local_total %llu\n", SUM(local_limits));
    labelled(out, "lockgate_cache_hits_total",
             "Lookups answered from a worker's cache (keys, facility decisions).", "cache",
             cache_name, LG_METRICS_CACHE_N, offsetof(struct block, hits));
    labelled(out, "lockgate_cache_misses_total",
             "Lookups that read Redis: first sight of a key, or the cache could not answer.",
             "cache", cache_name, LG_METRICS_CACHE_N, offsetof(struct block, misses));
    labelled(out, "lockgate_upstream_errors_total",
             "Upstream transfers that failed: unreachable or reset, past the timeout, or "
             "answered 500 or more.",
             "error", uperr_name, UPERR_N, offsetof(struct block, uperr));
    histogram(out, HIST_UPSTREAM);
    int up = lg_metrics_upstream_state();
    if (up >= 0) {
        family(out, "lockgate_upstream_up", "gauge",
               "Whether the last upstream transfer got an answer below 500.");
        fprintf(out, "lockgate_upstream_up %d\n", up);
    }
    histogram(out, HIST_REDIS);
    family(out, "lockgate_redis_command_failures_total", "counter",
           "Redis commands that got no reply: deadline ([redis] timeout_ms) passed or "
           "connection lost.");
    fprintf(out, "lockgate_redis_command_failures_total %llu\n", SUM(redis_failures));
    int workers = 0, conn[LG_METRICS_CONN_N] = {0};
    for (struct block *b = blocks; b != NULL; b = b->next) {
        workers += atomic_load(&b->live) ? 1 : 0;
        for (int i = 0; i < LG_METRICS_CONN_N; i++) conn[i] += atomic_load(&b->conn_up[i]);
    }
    family(out, "lockgate_workers", "gauge", "Worker threads running.");
    fprintf(out, "lockgate_workers %d\n", workers);
    family(out, "lockgate_redis_connections_up", "gauge",
           "Workers whose Redis connection is up: commands, and the events subscription "
           "(every channel confirmed). Below lockgate_workers, those workers read Redis "
           "per request or refuse.");
    for (int i = 0; i < LG_METRICS_CONN_N; i++)
        fprintf(out, "lockgate_redis_connections_up{connection=\"%s\"} %d\n", conn_name[i],
                conn[i]);
    family(out, "lockgate_events_applied_total", "counter",
           "Events applied to the caches, counted once per worker.");
    fprintf(out, "lockgate_events_applied_total %llu\n", SUM(events_applied));
    family(out, "lockgate_events_malformed_total", "counter",
           "Malformed events, each of which flushed a worker's cache.");
    fprintf(out, "lockgate_events_malformed_total %llu\n", SUM(events_malformed));
    static const char *const audit_mode[2] = {"after_the_fact", "write_ahead"};
    labelled(out, "lockgate_audit_write_failures_total",
             "Audit entries Redis did not store: write_ahead ones withheld an unlock code "
             "(503 audit_unavailable), after_the_fact ones went to the log instead.",
             "mode", audit_mode, 2, offsetof(struct block, audit_failures));
    family(out, "lockgate_feed_streams", "gauge", "Open facility feed streams.");
    fprintf(out, "lockgate_feed_streams %lld\n", (long long)SUM(feed_streams));
    pthread_mutex_unlock(&lock);
}
