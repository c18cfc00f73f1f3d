/* The local fallback rate limiter: per-key GCRA on the monotonic clock, one
 * bounded table for the whole instance (every worker shares it), used when
 * Redis is down or misses its deadline. Thread-safe. */
#ifndef LG_RATELIMIT_LOCAL_H
#define LG_RATELIMIT_LOCAL_H

#include <stddef.h>

#include "lockgate/gcra.h"

/* Checks and consumes one request of KEY (LEN bytes, borrowed) against its
 * instance-wide allowance. An empty or overlong key is refused. Fills RES
 * (RES->local is true). */
void lg_ratelimit_local_decide(const char *key, size_t len, double rate_per_sec, int burst,
                               struct lg_ratelimit_result *res);
/* The same key's allowance left now, nothing consumed (RES->allowed true). */
void lg_ratelimit_local_peek(const char *key, size_t len, double rate_per_sec, int burst,
                             struct lg_ratelimit_result *res);
#endif
