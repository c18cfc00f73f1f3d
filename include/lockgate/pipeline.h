/* The request pipeline of the public API: named stages walked in one
 * direction, parse -> authenticate -> authorize -> rate-limit -> forward ->
 * audit. A stage returns LG_OK (go on), LG_DONE (an answer was sent) or
 * LG_AGAIN (an async call resumes the pipeline from its callback). */
#ifndef LG_PIPELINE_H
#define LG_PIPELINE_H

struct lg_cache;
struct lg_config;
struct lg_feed;
struct lg_http_req;
struct lg_pipeline;
struct lg_ratelimit;
struct lg_secrets;
struct lg_store;
struct lg_upstream;

enum lg_stage_result { LG_OK, LG_DONE, LG_AGAIN };

/* What the stages work with, all borrowed from the pipeline's owner. */
struct lg_pipeline_deps {
    const struct lg_config *cfg;
    const struct lg_secrets *secrets;
    struct lg_cache *cache; /* keys and facilities, and how far they may answer */
    struct lg_store *store; /* commands: key loads, last_used_at, audit */
    struct lg_ratelimit *ratelimit;
    struct lg_upstream *upstream;
    struct lg_feed *feed;
};

/* Creates a pipeline working with DEPS (copied). The pointers in it are
 * borrowed and used only while a request is being answered, so they must
 * outlive every request; the store may go first (lg_pipeline_detach_store).
 * The pipeline owns its request contexts. NULL on error. */
struct lg_pipeline *lg_pipeline_new(const struct lg_pipeline_deps *deps);
/* Frees P (NULL is ignored). Every request must have been answered or
 * released, as they are once the listeners are freed. */
void lg_pipeline_free(struct lg_pipeline *p);

/* The lg_http_handler of the public listeners; ARG is the struct lg_pipeline. */
void lg_pipeline_handle(struct lg_http_req *req, void *arg);

/* Requests being answered (feed streams excluded once handed to the feed).
 * Readable from any thread. */
int lg_pipeline_inflight(struct lg_pipeline *p);

/* The store was freed (the owner is stopping): the requests still answered
 * after this write their audit entries to the log only. */
void lg_pipeline_detach_store(struct lg_pipeline *p);

/* Requests from now on go to UP (borrowed), a client built for a reloaded
 * [upstream]; those in flight finish on the one they started on. */
void lg_pipeline_set_upstream(struct lg_pipeline *p, struct lg_upstream *up);

#endif
