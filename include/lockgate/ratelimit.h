/* Per-key rate limiting: GCRA in one Lua script (shared exactly by every
 * gateway through Redis), and a local GCRA when Redis is unreachable. */
#ifndef LG_RATELIMIT_H
#define LG_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct lg_store;
struct lg_ratelimit;

struct lg_ratelimit_result {
    bool allowed;
    int limit;         /* burst: RateLimit-Limit */
    int remaining;     /* RateLimit-Remaining */
    int reset_s;       /* RateLimit-Reset: seconds until the allowance is full again (rounded up) */
    int retry_after_s; /* when refused: whole seconds, rounded up, >= 1 */
    bool local;        /* decided by the local fallback limiter */
};

typedef void lg_ratelimit_cb(const struct lg_ratelimit_result *res, void *arg);

/* Pure GCRA step, shared by the Lua script's arithmetic and the local limiter.
 * TAT is the stored theoretical arrival time in ms (0 = none), NOW in ms.
 * On allow *NEW_TAT is what to store. Fills RES. */
void lg_gcra(double tat, double now, double rate_per_sec, int burst, double *new_tat,
             struct lg_ratelimit_result *res);

/* One limiter per worker over its command store. */
struct lg_ratelimit *lg_ratelimit_new(struct lg_store *st);
void lg_ratelimit_free(struct lg_ratelimit *rl);

/* Checks and consumes one request for KEY_ID. Asks Redis (EVALSHA, one round
 * trip, pipelined); when Redis is down or misses its deadline, decides with
 * the local limiter. CB is called exactly once, possibly before this returns. */
void lg_ratelimit_check(struct lg_ratelimit *rl, const char *key_id, double rate_per_sec, int burst,
                        lg_ratelimit_cb *cb, void *arg);

/* Reports KEY_ID's allowance without consuming any: for the RateLimit-*
 * headers of answers refused after authentication (they use no quota).
 * RES->allowed is always true. Same callback contract as lg_ratelimit_check. */
void lg_ratelimit_peek(struct lg_ratelimit *rl, const char *key_id, double rate_per_sec, int burst,
                       lg_ratelimit_cb *cb, void *arg);

#endif
