/* The GCRA arithmetic (rate + burst) shared by the Redis script's mirror,
 * the local fallback limiter and the tests, and the answer every limiter
 * gives. Pure: no clock, no state. */
#ifndef LG_GCRA_H
#define LG_GCRA_H

#include <stdbool.h>

struct lg_ratelimit_result {
    bool allowed;
    int limit;         /* burst: RateLimit-Limit */
    int remaining;     /* RateLimit-Remaining */
    int reset_s;       /* RateLimit-Reset: seconds until the allowance is full again (rounded up) */
    int retry_after_s; /* when refused: whole seconds, rounded up, >= 1 */
    bool local;        /* decided by the local fallback limiter */
};

/* Pure GCRA step, shared by the Lua script's arithmetic and the local limiter.
 * TAT is the stored theoretical arrival time in ms (0 = none), NOW in ms.
 * On allow *NEW_TAT is what to store. Fills RES. */
void lg_gcra(double tat, double now, double rate_per_sec, int burst, double *new_tat,
             struct lg_ratelimit_result *res);

/* A rate brought into what the arithmetic supports (1e-6 to 1e9 per second;
 * NaN counts as the minimum), and a burst of at least 1: the same bounds as
 * the Redis script's. */
double lg_gcra_clamp_rate(double rate_per_sec);
int lg_gcra_clamp_burst(int burst);

/* Fills RES with a refusal that consumed nothing (retry after 1 s), for the
 * cases no limiter can decide (a bad key id, a limiter shutting down). */
void lg_gcra_refuse(int burst, struct lg_ratelimit_result *res);

#endif
