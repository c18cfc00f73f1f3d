/* Counters of the public API: answers by status, a latency histogram and
 * the local limiter's decisions. Relaxed atomics: exact totals, no locks. */
#include <stdatomic.h>

#include "lockgate/metrics.h"

#define STATUS_MAX 600

static const int64_t bucket_ms[] = {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000};
#define NBUCKETS ((int)(sizeof(bucket_ms) / sizeof(bucket_ms[0])))

static atomic_ullong by_status[STATUS_MAX];
static atomic_ullong buckets[NBUCKETS + 1]; /* last: +Inf */
static atomic_ullong ms_sum;
static atomic_ullong local_limits;
static atomic_int upstream_state = -1;
static atomic_llong feed_streams;

void lg_metrics_answer(int status, int64_t ms)
{
    if (status < 0 || status >= STATUS_MAX) status = 0;
    atomic_fetch_add_explicit(&by_status[status], 1, memory_order_relaxed);
    int b = 0;
    while (b < NBUCKETS && ms > bucket_ms[b]) b++;
    atomic_fetch_add_explicit(&buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&ms_sum, (unsigned long long)(ms < 0 ? 0 : ms), memory_order_relaxed);
}

void lg_metrics_local_limit(void)
{
    atomic_fetch_add_explicit(&local_limits, 1, memory_order_relaxed);
}

void lg_metrics_feed_streams(int delta)
{
    atomic_fetch_add_explicit(&feed_streams, delta, memory_order_relaxed);
}

void lg_metrics_upstream_result(int ok)
{
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

void lg_metrics_write(FILE *out)
{
    fprintf(out, "# HELP lockgate_requests_total Public API answers by HTTP status.\n"
                 "# TYPE lockgate_requests_total counter\n");
    for (int s = 0; s < STATUS_MAX; s++) {
        unsigned long long n = atomic_load_explicit(&by_status[s], memory_order_relaxed);
        if (n != 0) fprintf(out, "lockgate_requests_total{status=\"%d\"} %llu\n", s, n);
    }
    fprintf(out, "# HELP lockgate_request_duration_ms Public API answer times.\n"
                 "# TYPE lockgate_request_duration_ms histogram\n");
    unsigned long long cumulative = 0;
    for (int b = 0; b <= NBUCKETS; b++) {
        cumulative += atomic_load_explicit(&buckets[b], memory_order_relaxed);
        if (b < NBUCKETS)
            fprintf(out, "lockgate_request_duration_ms_bucket{le=\"%lld\"} %llu\n",
                    (long long)bucket_ms[b], cumulative);
        else
            fprintf(out, "lockgate_request_duration_ms_bucket{le=\"+Inf\"} %llu\n", cumulative);
    }
    fprintf(out, "lockgate_request_duration_ms_sum %llu\n",
            atomic_load_explicit(&ms_sum, memory_order_relaxed));
    fprintf(out, "lockgate_request_duration_ms_count %llu\n", cumulative);
    fprintf(out,
            "# HELP lockgate_ratelimit_local_total Rate-limit decisions made locally "
            "because Redis was unreachable.\n"
            "# TYPE lockgate_ratelimit_local_total counter\n"
            "lockgate_ratelimit_local_total %llu\n",
            atomic_load_explicit(&local_limits, memory_order_relaxed));
    fprintf(out,
            "# HELP lockgate_feed_streams Open facility feed streams.\n"
            "# TYPE lockgate_feed_streams gauge\n"
            "lockgate_feed_streams %lld\n",
            (long long)atomic_load_explicit(&feed_streams, memory_order_relaxed));
    int up = lg_metrics_upstream_state();
    if (up >= 0)
        fprintf(out,
                "# HELP lockgate_upstream_up Whether the last upstream transfer got an answer "
                "below 500.\n"
                "# TYPE lockgate_upstream_up gauge\n"
                "lockgate_upstream_up %d\n",
                up);
}
