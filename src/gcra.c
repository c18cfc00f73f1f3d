/* GCRA (the generic cell rate algorithm) on a grid of ticks: the one
 * arithmetic of every limiter, which the Redis script in ratelimit.c
 * performs on the very same doubles. */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "lockgate/gcra.h"

/* Times are counted in ticks of 1/1024 ms. Every quantity (now, TAT, the
 * emission interval T, N*T) is then a whole number held in a double, so sums
 * are exact below 2^53 ticks (the year 2248 in epoch time) and "N back to back
 * are allowed" holds exactly for any rate, whatever rounding 1000/r needs.
 * T is rounded to a whole tick: under 0.5% off for rates below 10,000/s. */
#define TICKS_PER_MS 1024.0
#define TICKS_PER_S  1024000.0
#define RATE_MIN     1e-6 /* one request per ~11.6 days */
#define RATE_MAX     1e9  /* T is one tick from ~1e6/s on */

static int clamp_int(double v)
{
    if (!(v >= 0)) return 0;
    if (v >= (double)INT_MAX) return INT_MAX;
    return (int)v;
}

double lg_gcra_clamp_rate(double rate)
{
    if (!(rate >= RATE_MIN)) return RATE_MIN; /* also NaN */
    if (rate > RATE_MAX) return RATE_MAX;
    return rate;
}

int lg_gcra_clamp_burst(int burst) { return burst < 1 ? 1 : burst; }

/* The GCRA step in ticks; mirrors the Lua script line for line. */
static void gcra_ticks(double tat, double now, double rate, int burst, double *new_tat,
                       struct lg_ratelimit_result *res)
{
    double T = floor(TICKS_PER_S / rate + 0.5);
    if (T < 1) T = 1;
    double limit = (double)burst * T;
    double t = tat < now ? now : tat;
    double next = t + T;
    memset(res, 0, sizeof(*res));
    res->limit = burst;
    if (next - now <= limit) {
        res->allowed = true;
        res->remaining = clamp_int(floor((limit - (next - now)) / T));
        res->reset_s = clamp_int(ceil((next - now) / TICKS_PER_S));
        res->retry_after_s = 0;
        *new_tat = next;
        return;
    }
    double retry = ceil((next - limit - now) / TICKS_PER_S);
    res->allowed = false;
    res->remaining = 0;
    res->reset_s = clamp_int(ceil((t - now) / TICKS_PER_S));
    res->retry_after_s = retry < 1 ? 1 : clamp_int(retry);
    *new_tat = tat;
}

void lg_gcra(double tat, double now, double rate_per_sec, int burst, double *new_tat,
             struct lg_ratelimit_result *res)
{
    /* Snap to the tick grid; values already on it (all we ever store) are
     * unchanged, and multiplying by a power of two is exact. */
    double tat_t = tat > 0 ? floor(tat * TICKS_PER_MS) : 0;
    double now_t = now > 0 ? floor(now * TICKS_PER_MS) : 0;
    double out_t = tat_t;
    gcra_ticks(tat_t, now_t, lg_gcra_clamp_rate(rate_per_sec), lg_gcra_clamp_burst(burst), &out_t,
               res);
    *new_tat = out_t / TICKS_PER_MS;
}

void lg_gcra_refuse(int burst, struct lg_ratelimit_result *res)
{
    memset(res, 0, sizeof(*res));
    res->limit = burst;
    res->retry_after_s = 1;
    res->local = true;
}
