/* Process-wide counters of the public API, read by the admin listener's
 * /metrics (Prometheus text). Updated with relaxed atomics from every worker. */
#ifndef LG_METRICS_H
#define LG_METRICS_H

#include <stdint.h>
#include <stdio.h>

/* One public answer with STATUS that took MS milliseconds. */
void lg_metrics_answer(int status, int64_t ms);
/* One rate-limit decision made by the local limiter (Redis unreachable). */
void lg_metrics_local_limit(void);
/* A feed stream opened (+1) or ended (-1). */
void lg_metrics_feed_streams(int delta);
/* The outcome of one upstream transfer (OK: an answer below 500). */
void lg_metrics_upstream_result(int ok);
/* The last upstream outcome seen by any worker: 1 up, 0 down, -1 none yet. */
int lg_metrics_upstream_state(void);
/* Appends the counters in Prometheus text format to OUT. */
void lg_metrics_write(FILE *out);

#endif
