/* Process-wide counters of the data plane, read by the admin listener's
 * /metrics (Prometheus text format 0.0.4). Each worker thread counts into a
 * block of its own (lg_metrics_thread_start), which only it writes: the hot
 * path takes no lock and shares no cache line; a scrape sums the blocks.
 * Other threads count into one shared block with atomic adds. */
#ifndef LG_METRICS_H
#define LG_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "lockgate/upstream.h"

/* Why a request was refused at authentication or authorization
 * (lockgate_auth_failures_total{reason}). */
enum lg_metrics_auth {
    LG_METRICS_AUTH_MISSING,      /* no credentials: 401 missing_credentials */
    LG_METRICS_AUTH_MALFORMED,    /* credentials of the wrong form: 401 invalid_credentials */
    LG_METRICS_AUTH_MIXED,        /* Authorization with X-API-Key/Secret: 400 bad_request */
    LG_METRICS_AUTH_INVALID,      /* unknown key or wrong secret: 401 invalid_credentials */
    LG_METRICS_AUTH_KEY_DISABLED, /* locked or expired key: 403 key_disabled */
    LG_METRICS_AUTH_IP,           /* address outside the key's allowlist: 403 ip_not_allowed */
    LG_METRICS_AUTH_ROLE,         /* feed key on the API or API key on the feed: 403 forbidden */
    LG_METRICS_AUTH_SCOPE,        /* a facility the key may not see: 404 not_found */
    LG_METRICS_AUTH_N
};

/* Which limit refused a request with 429 (lockgate_rate_limited_total{limit}). */
enum lg_metrics_limit {
    LG_METRICS_LIMIT_KEY,           /* the key's rate limit */
    LG_METRICS_LIMIT_AUTH_FAILURES, /* the client address's failure throttle */
    LG_METRICS_LIMIT_N
};

/* The worker caches (lockgate_cache_hits_total / _misses_total{cache}). */
enum lg_metrics_cache {
    LG_METRICS_CACHE_KEY,      /* keys: a miss reads the key from Redis */
    LG_METRICS_CACHE_FACILITY, /* facility decisions: a miss reads Redis */
    LG_METRICS_CACHE_N
};

/* A worker's Redis connections (lockgate_redis_connections_up{connection}). */
enum lg_metrics_conn {
    LG_METRICS_CONN_COMMANDS, /* commands: keys, rate limits, audit */
    LG_METRICS_CONN_EVENTS,   /* the events subscription, every channel confirmed */
    LG_METRICS_CONN_N
};

/* Gives the calling thread a counter block of its own, for the rest of the
 * process (a worker calls it first thing). Without one a thread counts into
 * the shared block; a thread's connection states count only with one. */
void lg_metrics_thread_start(void);
/* The calling thread's worker stops: it no longer counts in lockgate_workers
 * and its connection states are cleared. Its counts stay. */
void lg_metrics_thread_done(void);

/* One public answer with STATUS that took US microseconds. */
void lg_metrics_answer(int status, int64_t us);
/* One request refused for REASON. */
void lg_metrics_auth_failure(enum lg_metrics_auth reason);
/* One request refused 429 by LIMIT. */
void lg_metrics_rate_limited(enum lg_metrics_limit limit);
/* One rate-limit decision made by the local limiter (Redis unreachable). */
void lg_metrics_local_limit(void);
/* One lookup in cache WHICH, answered from it (HIT) or from Redis. */
void lg_metrics_cache(enum lg_metrics_cache which, bool hit);
/* One upstream transfer ended with ERROR (and STATUS when it got an answer)
 * after US microseconds; US < 0: it never started. An error, or a status of
 * 500 or more, counts in lockgate_upstream_errors_total; the outcome also
 * sets lockgate_upstream_up (see lg_metrics_upstream_state). */
void lg_metrics_upstream(enum lg_upstream_error error, int status, int64_t us);
/* The last upstream outcome seen by any worker: 1 up, 0 down, -1 none yet. */
int lg_metrics_upstream_state(void);
/* One Redis command ended: ANSWERED (any reply, errors too) after US
 * microseconds, or not (deadline passed, connection lost). */
void lg_metrics_redis_command(bool answered, int64_t us);
/* The calling worker's connection WHICH went up or down. */
void lg_metrics_redis_state(enum lg_metrics_conn which, bool up);
/* The worker threads running, and how many of them have their Redis command
 * connection up (what /readyz waits for). Returns the first. */
int lg_metrics_workers_connected(int *connected);
/* One event from the events channel applied to a worker's caches, or
 * refused as malformed (APPLIED false). */
void lg_metrics_event(bool applied);
/* An audit entry that Redis did not store: one an unlock code waited for
 * (WRITE_AHEAD: the code was not served) or one written after the fact. */
void lg_metrics_audit_failure(bool write_ahead);
/* A feed stream opened (+1) or ended (-1). */
void lg_metrics_feed_streams(int delta);

/* Appends every family, each with its HELP and TYPE, to OUT. */
void lg_metrics_write(FILE *out);

#endif
