/* Per-key rate limiting: GCRA in one Lua script (shared exactly by every
 * gateway through Redis), and the local fallback (ratelimit_local.h) when
 * Redis is unreachable. The arithmetic and the result are gcra.h's. */
#ifndef LG_RATELIMIT_H
#define LG_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "lockgate/gcra.h"

struct lg_store;
struct lg_ratelimit;

typedef void lg_ratelimit_cb(const struct lg_ratelimit_result *res, void *arg);

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
