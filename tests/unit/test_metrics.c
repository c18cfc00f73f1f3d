/* Unit tests of the metrics' counting: per-thread blocks and the shared one
 * summed at a scrape, histogram buckets (an upper bound is inclusive, as
 * Prometheus's le), gauges made of deltas, and the workers gauge; and of the
 * tests' own exposition checker (prom_text.h), which must refuse bad text. */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "prom_text.h"
#include "lockgate/metrics.h"

#define PER_THREAD 10000

static char *scrape(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(out);
    lg_metrics_write(out);
    fclose(out);
    return text;
}

static double get(const char *sample)
{
    char *text = scrape();
    double v = prom_value(text, sample);
    free(text);
    return v;
}

struct worker {
    pthread_barrier_t *started, *stop;
};

static void *counting(void *arg)
{
    struct worker *w = arg;
    lg_metrics_thread_start();
    lg_metrics_redis_state(LG_METRICS_CONN_COMMANDS, true);
    for (int i = 0; i < PER_THREAD; i++) {
        lg_metrics_answer(200, 3000);
        lg_metrics_auth_failure(LG_METRICS_AUTH_INVALID);
        lg_metrics_feed_streams(i % 2 ? -1 : 1); /* ends at 0 */
    }
    lg_metrics_feed_streams(1);
    pthread_barrier_wait(w->started);
    pthread_barrier_wait(w->stop);
    lg_metrics_thread_done();
    return NULL;
}

START_TEST(test_blocks_summed)
{
    pthread_barrier_t started, stop;
    pthread_barrier_init(&started, NULL, 3);
    pthread_barrier_init(&stop, NULL, 3);
    struct worker w = {&started, &stop};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, counting, &w), 0);
    for (int i = 0; i < PER_THREAD; i++) lg_metrics_answer(200, 3000); /* the shared block */
    lg_metrics_redis_state(LG_METRICS_CONN_COMMANDS, true);         /* no block: ignored */
    lg_metrics_feed_streams(-1);
    pthread_barrier_wait(&started);
    char *text = scrape();
    ck_assert_double_eq(prom_value(text, "lockgate_requests_total{status=\"200\"}"),
                        3 * PER_THREAD);
    ck_assert_double_eq(prom_value(text, "lockgate_request_duration_seconds_count"),
                        3 * PER_THREAD);
    ck_assert_double_eq_tol(prom_value(text, "lockgate_request_duration_seconds_sum"),
                            3 * PER_THREAD * 0.003, 1e-6);
    ck_assert_double_eq(
        prom_value(text, "lockgate_auth_failures_total{reason=\"invalid_credentials\"}"),
        2 * PER_THREAD);
    ck_assert_double_eq(prom_value(text, "lockgate_feed_streams"), 1); /* 1 + 1 - 1 */
    ck_assert_double_eq(prom_value(text, "lockgate_workers"), 2);
    ck_assert_double_eq(prom_value(text, "lockgate_redis_connections_up{connection=\"commands\"}"),
                        2);
    ck_assert_double_eq(prom_value(text, "lockgate_redis_connections_up{connection=\"events\"}"),
                        0);
    char err[256];
    ck_assert_msg(prom_check(text, err, sizeof(err)) == 0, "%s", err);
    free(text);
    pthread_barrier_wait(&stop);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    /* stopped workers keep their counts but leave the gauges */
    text = scrape();
    ck_assert_double_eq(prom_value(text, "lockgate_requests_total{status=\"200\"}"),
                        3 * PER_THREAD);
    ck_assert_double_eq(prom_value(text, "lockgate_workers"), 0);
    ck_assert_double_eq(prom_value(text, "lockgate_redis_connections_up{connection=\"commands\"}"),
                        0);
    free(text);
}
END_TEST

START_TEST(test_buckets)
{
    lg_metrics_redis_command(true, 50);      /* on the bound: le="5e-05" */
    lg_metrics_redis_command(true, 51);      /* above it: le="0.0001" */
    lg_metrics_redis_command(true, -5);      /* a clock step back counts as 0 */
    lg_metrics_redis_command(false, 99);     /* no reply: not timed, counted apart */
    lg_metrics_redis_command(true, 2000000); /* past every bound: +Inf only */
    char *text = scrape();
    const char *h = "lockgate_redis_command_duration_seconds";
    char s[160];
    snprintf(s, sizeof(s), "%s_bucket{le=\"5e-05\"}", h);
    ck_assert_double_eq(prom_value(text, s), 2);
    snprintf(s, sizeof(s), "%s_bucket{le=\"0.0001\"}", h);
    ck_assert_double_eq(prom_value(text, s), 3);
    snprintf(s, sizeof(s), "%s_bucket{le=\"1\"}", h);
    ck_assert_double_eq(prom_value(text, s), 3);
    snprintf(s, sizeof(s), "%s_bucket{le=\"+Inf\"}", h);
    ck_assert_double_eq(prom_value(text, s), 4);
    snprintf(s, sizeof(s), "%s_count", h);
    ck_assert_double_eq(prom_value(text, s), 4);
    snprintf(s, sizeof(s), "%s_sum", h);
    ck_assert_double_eq_tol(prom_value(text, s), 2.000101, 1e-9);
    ck_assert_double_eq(prom_value(text, "lockgate_redis_command_failures_total"), 1);
    free(text);
    /* a public answer's time counts below the millisecond */
    lg_metrics_answer(200, 150);
    text = scrape();
    ck_assert_double_eq(prom_value(text, "lockgate_request_duration_seconds_bucket{le=\"0.0001\"}"),
                        0);
    ck_assert_double_eq(
        prom_value(text, "lockgate_request_duration_seconds_bucket{le=\"0.00025\"}"), 1);
    ck_assert_double_eq_tol(prom_value(text, "lockgate_request_duration_seconds_sum"), 0.00015,
                            1e-9);
    free(text);
}
END_TEST

START_TEST(test_upstream_outcomes)
{
    ck_assert_int_eq(lg_metrics_upstream_state(), -1);
    ck_assert_double_eq(get("lockgate_upstream_up"), -1); /* no family before the first */
    lg_metrics_upstream(LG_UPSTREAM_OK, 200, 1000);
    ck_assert_double_eq(get("lockgate_upstream_up"), 1);
    lg_metrics_upstream(LG_UPSTREAM_OK, 503, 1000);
    lg_metrics_upstream(LG_UPSTREAM_TIMEOUT, 0, 300000);
    lg_metrics_upstream(LG_UPSTREAM_UNAVAILABLE, 0, -1); /* never started: not timed */
    lg_metrics_upstream(LG_UPSTREAM_OK, 404, 1000);      /* an answer: not an error */
    char *text = scrape();
    ck_assert_double_eq(prom_value(text, "lockgate_upstream_errors_total{error=\"status_5xx\"}"),
                        1);
    ck_assert_double_eq(prom_value(text, "lockgate_upstream_errors_total{error=\"timeout\"}"), 1);
    ck_assert_double_eq(prom_value(text, "lockgate_upstream_errors_total{error=\"unavailable\"}"),
                        1);
    ck_assert_double_eq(prom_value(text, "lockgate_upstream_duration_seconds_count"), 4);
    ck_assert_double_eq(prom_value(text, "lockgate_upstream_up"), 1);
    free(text);
}
END_TEST

/* The checker refuses what Prometheus would: each text breaks one rule. */
START_TEST(test_checker_refuses)
{
    static const char *const bad[] = {
        "a_total 1\n",
        "# HELP a_total x\na_total 1\n",
        "# TYPE a_total counter\na_total 1\n",
        "# HELP a x\n# TYPE a counter\na 1\n",
        "# HELP a x\n# TYPE a gauge\na{b=\"c} 1\n",
        "# HELP a x\n# TYPE a gauge\na one\n",
        "# HELP a_ms x\n# TYPE a_ms gauge\na_ms 1\n",
        "# HELP h_seconds x\n# TYPE h_seconds histogram\nh_seconds_bucket{le=\"1\"} 1\n"
        "h_seconds_sum 1\nh_seconds_count 1\n",
        "# HELP h_seconds x\n# TYPE h_seconds histogram\nh_seconds_bucket{le=\"1\"} 2\n"
        "h_seconds_bucket{le=\"+Inf\"} 1\nh_seconds_sum 1\nh_seconds_count 1\n",
        "# HELP h_seconds x\n# TYPE h_seconds histogram\nh_seconds_bucket{le=\"+Inf\"} 1\n"
        "h_seconds_sum 1\nh_seconds_count 2\n",
        "# HELP h_seconds x\n# TYPE h_seconds histogram\nh_seconds_bucket{le=\"+Inf\"} 1\n"
        "h_seconds_count 1\n",
        "# HELP h_seconds x\n# TYPE h_seconds histogram\nh_seconds_bucket 1\n",
        "# HELP h_ms x\n# TYPE h_ms histogram\nh_ms_bucket{le=\"+Inf\"} 1\nh_ms_sum 1\nh_ms_count "
        "1\n",
        "# HELP a x\n# TYPE a gauge\n# HELP b x\n# TYPE b gauge\na 1\n",
        "# HELP a x\n# TYPE a gauge\na 1\n# HELP a y\n",
    };
    char err[256];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(prom_check(bad[i], err, sizeof(err)) < 0, "accepted: %s", bad[i]);
    const char *good = "# HELP a_total x\n# TYPE a_total counter\na_total{r=\"x\\\"y\"} 1\n"
                       "# HELP h_seconds x\n# TYPE h_seconds histogram\n"
                       "h_seconds_bucket{le=\"0.5\"} 1\nh_seconds_bucket{le=\"+Inf\"} 2\n"
                       "h_seconds_sum 0.7\nh_seconds_count 2\n";
    ck_assert_msg(prom_check(good, err, sizeof(err)) == 0, "refused: %s", err);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_blocks_summed);
    tcase_add_test(tc, test_buckets);
    tcase_add_test(tc, test_upstream_outcomes);
    tcase_add_test(tc, test_checker_refuses);
    suite_add_tcase(s, tc);
    return check_run(s) ? EXIT_FAILURE : EXIT_SUCCESS;
}
