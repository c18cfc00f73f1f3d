/* Unit tests for the GCRA arithmetic of gcra.c (lg_gcra), the step that
 * both the Redis script and the local limiter perform, and for the local
 * limiter (shared by every worker) behind lg_ratelimit_check without a store. */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lockgate/ratelimit.h"

#include "check_run.h"

/* A client of one key: the stored TAT and the step it takes at NOW. */
struct client {
    double tat;
    double rate;
    int burst;
};

static struct lg_ratelimit_result step(struct client *c, double now)
{
    struct lg_ratelimit_result res;
    double new_tat = -1;
    memset(&res, 0xa5, sizeof(res));
    lg_gcra(c->tat, now, c->rate, c->burst, &new_tat, &res);
    ck_assert(!res.local);
    if (res.allowed) {
        ck_assert_double_gt(new_tat, 0);
        c->tat = new_tat;
    } else {
        /* A refusal consumes nothing. */
        ck_assert(new_tat == c->tat || (c->tat == 0 && new_tat == 0));
    }
    return res;
}

/* Sends requests at NOW until one is refused; returns how many were allowed. */
static int drain(struct client *c, double now, int max)
{
    for (int i = 0; i < max; i++)
        if (!step(c, now).allowed) return i;
    return max;
}

START_TEST(test_burst_exact)
{
    struct client c = {0, 1, 5};
    double now = 1000000;
    for (int i = 0; i < 5; i++) {
        struct lg_ratelimit_result r = step(&c, now);
        ck_assert_msg(r.allowed, "request %d refused", i + 1);
        ck_assert_int_eq(r.limit, 5);
        ck_assert_int_eq(r.remaining, 5 - 1 - i);
        ck_assert_int_eq(r.retry_after_s, 0);
        ck_assert_int_eq(r.reset_s, i + 1); /* T = 1 s per used request */
    }
    struct lg_ratelimit_result r = step(&c, now);
    ck_assert(!r.allowed);
    ck_assert_int_eq(r.remaining, 0);
    ck_assert_int_eq(r.limit, 5);
    ck_assert_int_eq(r.retry_after_s, 1);
    ck_assert_int_eq(r.reset_s, 5);
    /* Still refused, nothing consumed by the refusals. */
    for (int i = 0; i < 10; i++) ck_assert(!step(&c, now).allowed);
    ck_assert_double_eq(c.tat, now + 5000);
}
END_TEST

/* Exactly N back to back for many rates (including ones where 1000/r is not a
 * whole or even finite binary number) and at wall-clock sized times. */
START_TEST(test_burst_exact_many_rates)
{
    static const double rates[] = {1,    3,    7,   9.5, 10,  20,      33.3,    100,  333,
                                   1000, 4096, 1e5, 0.3, 0.7, 1.0 / 3, 2.0 / 3, 0.01, 123.456};
    static const int bursts[] = {1, 2, 3, 7, 40, 97, 1000};
    static const double nows[] = {
        1, 123.5, 1e6, 1732579200123.0, 1732579200123.456, 4102444800000.0};
    for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++)
        for (size_t j = 0; j < sizeof(bursts) / sizeof(bursts[0]); j++)
            for (size_t k = 0; k < sizeof(nows) / sizeof(nows[0]); k++) {
                struct client c = {0, rates[i], bursts[j]};
                int n = drain(&c, nows[k], bursts[j] + 5);
                ck_assert_msg(n == bursts[j], "rate %g burst %d now %.3f: %d allowed", rates[i],
                              bursts[j], nows[k], n);
            }
}
END_TEST

START_TEST(test_remaining_counts_down)
{
    struct client c = {0, 20, 40};
    double now = 1732579200123.0;
    for (int i = 0; i < 40; i++) {
        struct lg_ratelimit_result r = step(&c, now);
        ck_assert(r.allowed);
        ck_assert_int_eq(r.remaining, 39 - i);
    }
    ck_assert(!step(&c, now).allowed);
}
END_TEST

START_TEST(test_refill_one_per_interval)
{
    struct client c = {0, 10, 3}; /* T = 100 ms */
    double now = 5000;
    ck_assert_int_eq(drain(&c, now, 10), 3);
    /* 1 ms early: refused, retry rounds up to 1 s. */
    struct lg_ratelimit_result r = step(&c, now + 99);
    ck_assert(!r.allowed);
    ck_assert_int_eq(r.retry_after_s, 1);
    /* After T exactly one more. */
    r = step(&c, now + 100);
    ck_assert(r.allowed);
    ck_assert_int_eq(r.remaining, 0);
    ck_assert(!step(&c, now + 100).allowed);
    /* Halfway into the next interval: allowed, with nothing left over. */
    struct client h = {0, 10, 3};
    ck_assert_int_eq(drain(&h, now, 10), 3);
    r = step(&h, now + 150);
    ck_assert(r.allowed);
    ck_assert_int_eq(r.remaining, 0);
    ck_assert_int_eq(r.reset_s, 1); /* 250 ms to a full allowance */
    ck_assert(!step(&h, now + 150).allowed);
    r = step(&h, now + 260);
    ck_assert(r.allowed);
    ck_assert_int_eq(r.remaining, 0); /* 0.6 of a request is not one */
    ck_assert(!step(&h, now + 260).allowed);
    r = step(&h, now + 1000);
    ck_assert(r.allowed);
    ck_assert_int_eq(r.remaining, 2);
    /* After 2T two more, not three. */
    ck_assert_int_eq(drain(&c, now + 300, 10), 2);
    /* A long idle time refills to N, never more. */
    ck_assert_int_eq(drain(&c, now + 3600000, 10), 3);
}
END_TEST

START_TEST(test_steady_rate)
{
    struct client c = {0, 10, 1};
    double now = 1e9;
    for (int i = 0; i < 1000; i++) {
        struct lg_ratelimit_result r = step(&c, now + 100.0 * i);
        ck_assert_msg(r.allowed, "request %d at the sustained rate refused", i);
        ck_assert_int_eq(r.remaining, 0);
        ck_assert(!step(&c, now + 100.0 * i + 99).allowed);
    }
}
END_TEST

START_TEST(test_non_integer_interval)
{
    /* T = 333.33 ms: after three intervals (1000 ms) exactly three more. */
    struct client c = {0, 3, 4};
    double now = 1732579200000.0;
    ck_assert_int_eq(drain(&c, now, 10), 4);
    ck_assert(!step(&c, now + 333).allowed);
    ck_assert(step(&c, now + 334).allowed);
    ck_assert_int_eq(drain(&c, now + 1000, 10), 2);
}
END_TEST

START_TEST(test_retry_after_rounds_up)
{
    struct client c = {0, 0.1, 1}; /* one every 10 s */
    double now = 2e6;
    ck_assert(step(&c, now).allowed);
    struct lg_ratelimit_result r = step(&c, now);
    ck_assert(!r.allowed);
    ck_assert_int_eq(r.retry_after_s, 10);
    ck_assert_int_eq(r.reset_s, 10);
    r = step(&c, now + 1);
    ck_assert_int_eq(r.retry_after_s, 10); /* 9.999 s rounds up */
    r = step(&c, now + 1000);
    ck_assert_int_eq(r.retry_after_s, 9);
    r = step(&c, now + 9001);
    ck_assert_int_eq(r.retry_after_s, 1); /* 0.999 s */
    r = step(&c, now + 9999);
    ck_assert(!r.allowed);
    ck_assert_int_eq(r.retry_after_s, 1);
    ck_assert_int_ge(r.reset_s, 1);
    ck_assert(step(&c, now + 10000).allowed);

    /* Fast rates still say at least 1 s. */
    struct client f = {0, 1000, 2};
    ck_assert_int_eq(drain(&f, 50, 10), 2);
    r = step(&f, 50);
    ck_assert_int_eq(r.retry_after_s, 1);
}
END_TEST

START_TEST(test_slow_rates)
{
    struct client c = {0, 0.5, 2}; /* one every 2 s */
    double now = 1e7;
    ck_assert_int_eq(drain(&c, now, 10), 2);
    struct lg_ratelimit_result r = step(&c, now);
    ck_assert_int_eq(r.retry_after_s, 2);
    ck_assert_int_eq(r.reset_s, 4);
    ck_assert(!step(&c, now + 1999).allowed);
    ck_assert(step(&c, now + 2000).allowed);

    struct client d = {0, 1.0 / 3600, 1}; /* one an hour */
    ck_assert(step(&d, now).allowed);
    r = step(&d, now + 60000);
    ck_assert(!r.allowed);
    ck_assert_int_eq(r.retry_after_s, 3540);
    ck_assert(step(&d, now + 3600000).allowed);
}
END_TEST

START_TEST(test_reset_after_allow)
{
    struct client c = {0, 2, 10}; /* T = 500 ms */
    double now = 1e6;
    struct lg_ratelimit_result r = step(&c, now);
    ck_assert_int_eq(r.reset_s, 1); /* 0.5 s rounds up */
    r = step(&c, now);
    ck_assert_int_eq(r.reset_s, 1);
    r = step(&c, now);
    ck_assert_int_eq(r.reset_s, 2); /* 1.5 s */
    /* A stored TAT in the past is a full allowance. */
    r = step(&c, now + 3600000);
    ck_assert(r.allowed);
    ck_assert_int_eq(r.remaining, 9);
    ck_assert_int_eq(r.reset_s, 1);
}
END_TEST

START_TEST(test_large_bursts)
{
    struct client c = {0, 1e5, 1000000};
    double now = 1732579200123.0;
    ck_assert_int_eq(drain(&c, now, 1000010), 1000000);
    struct lg_ratelimit_result r = step(&c, now);
    ck_assert_int_eq(r.limit, 1000000);
    ck_assert_int_eq(r.reset_s, 10);
}
END_TEST

START_TEST(test_big_values_no_overflow)
{
    struct lg_ratelimit_result r;
    double tat = 0;
    /* Tiny rate, huge burst: T is far beyond INT_MAX ticks, N*T beyond 2^63. */
    lg_gcra(0, 4102444800000.0, 1e-9, INT_MAX, &tat, &r);
    ck_assert(r.allowed);
    ck_assert_int_eq(r.limit, INT_MAX);
    ck_assert_int_eq(r.remaining, INT_MAX - 1);
    ck_assert_int_gt(r.reset_s, 0);
    ck_assert(isfinite(tat));
    lg_gcra(tat, 4102444800000.0, 1e-9, INT_MAX, &tat, &r);
    ck_assert(r.allowed);
    ck_assert_int_eq(r.remaining, INT_MAX - 2);

    /* Burst 1, tiny rate: retry_after and reset are clamped, never negative. */
    double t1 = 0;
    lg_gcra(0, 1e6, 1e-300, 1, &t1, &r);
    ck_assert(r.allowed);
    lg_gcra(t1, 1e6, 1e-300, 1, &t1, &r);
    ck_assert(!r.allowed);
    ck_assert_int_ge(r.retry_after_s, 1);
    ck_assert_int_ge(r.reset_s, 1);

    /* Huge rate: T is one tick; still exactly N at the same instant. */
    struct client c = {0, 1e12, 50};
    ck_assert_int_eq(drain(&c, 1e12, 100), 50);

    /* A TAT far in the future (corrupt store) refuses with a clamped retry. */
    lg_gcra(1e300, 1e6, 10, 5, &tat, &r);
    ck_assert(!r.allowed);
    ck_assert_int_eq(r.retry_after_s, INT_MAX);
    ck_assert_int_eq(r.reset_s, INT_MAX);
    ck_assert_int_eq(r.remaining, 0);
}
END_TEST

START_TEST(test_bad_parameters)
{
    struct lg_ratelimit_result r;
    double tat = 0;
    /* Burst below 1 acts as 1. */
    lg_gcra(0, 1e6, 10, 0, &tat, &r);
    ck_assert(r.allowed);
    ck_assert_int_eq(r.limit, 1);
    ck_assert_int_eq(r.remaining, 0);
    lg_gcra(tat, 1e6, 10, -5, &tat, &r);
    ck_assert(!r.allowed);
    /* A rate of zero or NaN is the slowest rate, not a division by zero. */
    struct client z = {0, 0, 2};
    ck_assert_int_eq(drain(&z, 1e6, 10), 2);
    struct client n = {0, NAN, 2};
    ck_assert_int_eq(drain(&n, 1e6, 10), 2);
    struct lg_ratelimit_result rn = step(&n, 1e6 + 86400000.0);
    ck_assert(!rn.allowed);
    ck_assert_int_ge(rn.retry_after_s, 1);
}
END_TEST

/* ---- the local limiter, through lg_ratelimit_check without a store ---- */

struct seen {
    int calls;
    struct lg_ratelimit_result res;
};

static void on_result(const struct lg_ratelimit_result *res, void *arg)
{
    struct seen *s = arg;
    s->calls++;
    s->res = *res;
}

static struct lg_ratelimit_result check(struct lg_ratelimit *rl, const char *key, double rate,
                                        int burst)
{
    struct seen s = {0};
    lg_ratelimit_check(rl, key, rate, burst, on_result, &s);
    ck_assert_int_eq(s.calls, 1);
    ck_assert(s.res.local);
    return s.res;
}

START_TEST(test_local_limiter)
{
    struct lg_ratelimit *rl = lg_ratelimit_new(NULL);
    ck_assert_ptr_nonnull(rl);
    for (int i = 0; i < 5; i++) {
        struct lg_ratelimit_result r = check(rl, "lk_a", 0.01, 5);
        ck_assert(r.allowed);
        ck_assert_int_eq(r.remaining, 4 - i);
    }
    ck_assert(!check(rl, "lk_a", 0.01, 5).allowed);
    /* Keys are separate. */
    ck_assert(check(rl, "lk_b", 0.01, 5).allowed);
    ck_assert(check(rl, "lk_a2", 0.01, 1).allowed);
    ck_assert(!check(rl, "lk_a2", 0.01, 1).allowed);
    /* An empty or overlong key id is refused. */
    char big[200];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert(!check(rl, big, 10, 5).allowed);
    ck_assert(!check(rl, "", 10, 5).allowed);
    lg_ratelimit_free(rl);
}
END_TEST

/* Far more keys than the table holds: it stays bounded, and keys that are
 * still limited keep their state while the table has room. */
START_TEST(test_local_table_bounded)
{
    struct lg_ratelimit *rl = lg_ratelimit_new(NULL);
    ck_assert_ptr_nonnull(rl);
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "lk_%d", i);
        ck_assert(check(rl, key, 0.001, 1).allowed);
    }
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "lk_%d", i);
        ck_assert_msg(!check(rl, key, 0.001, 1).allowed, "key %d forgot its state", i);
    }
    for (int i = 0; i < 250000; i++) {
        snprintf(key, sizeof(key), "lk_many_%d", i);
        ck_assert(check(rl, key, 0.001, 1).allowed);
    }
    /* The most recent keys are still limited. */
    ck_assert(!check(rl, "lk_many_249999", 0.001, 1).allowed);
    lg_ratelimit_free(rl);
}
END_TEST

/* Workers have a limiter each; during an outage they share one allowance
 * per key, so one instance admits at most the key's burst whichever worker
 * its connections land on. */
START_TEST(test_local_shared_by_workers)
{
    struct lg_ratelimit *w[4];
    for (int i = 0; i < 4; i++) ck_assert_ptr_nonnull(w[i] = lg_ratelimit_new(NULL));
    int admitted = 0;
    for (int round = 0; round < 10; round++)
        for (int i = 0; i < 4; i++) admitted += check(w[i], "lk_shared", 0.001, 6).allowed;
    ck_assert_int_eq(admitted, 6);
    for (int i = 0; i < 4; i++) lg_ratelimit_free(w[i]);
}
END_TEST

struct worker_run {
    int admitted;
};

static void *worker_checks(void *arg)
{
    struct worker_run *run = arg;
    struct lg_ratelimit *rl = lg_ratelimit_new(NULL);
    for (int i = 0; i < 2000; i++) {
        struct seen s = {0};
        lg_ratelimit_check(rl, "lk_threads", 0.001, 50, on_result, &s);
        run->admitted += s.calls == 1 && s.res.allowed;
    }
    lg_ratelimit_free(rl);
    return NULL;
}

/* The same from worker threads at once: exactly the burst in all. */
START_TEST(test_local_shared_by_threads)
{
    pthread_t t[4];
    struct worker_run runs[4] = {{0}};
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, worker_checks, &runs[i]), 0);
    int admitted = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        admitted += runs[i].admitted;
    }
    ck_assert_int_eq(admitted, 50);
}
END_TEST

static Suite *ratelimit_suite(void)
{
    Suite *s = suite_create("ratelimit");
    TCase *tc = tcase_create("gcra");
    tcase_add_test(tc, test_burst_exact);
    tcase_add_test(tc, test_burst_exact_many_rates);
    tcase_add_test(tc, test_remaining_counts_down);
    tcase_add_test(tc, test_refill_one_per_interval);
    tcase_add_test(tc, test_steady_rate);
    tcase_add_test(tc, test_non_integer_interval);
    tcase_add_test(tc, test_retry_after_rounds_up);
    tcase_add_test(tc, test_slow_rates);
    tcase_add_test(tc, test_reset_after_allow);
    tcase_add_test(tc, test_large_bursts);
    tcase_add_test(tc, test_big_values_no_overflow);
    tcase_add_test(tc, test_bad_parameters);
    suite_add_tcase(s, tc);
    TCase *tl = tcase_create("local");
    tcase_set_timeout(tl, 60);
    tcase_add_test(tl, test_local_limiter);
    tcase_add_test(tl, test_local_table_bounded);
    tcase_add_test(tl, test_local_shared_by_workers);
    tcase_add_test(tl, test_local_shared_by_threads);
    suite_add_tcase(s, tl);
    return s;
}

int main(void) { return check_run(ratelimit_suite()) ? EXIT_FAILURE : EXIT_SUCCESS; }
