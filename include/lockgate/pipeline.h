/* The request pipeline of the public API: named stages walked in one
 * direction, parse -> authenticate -> authorize -> rate-limit -> forward ->
 * audit. A stage returns LG_OK (go on), LG_DONE (an answer was sent) or
 * LG_AGAIN (an async call resumes the pipeline from its callback). */
#ifndef LG_PIPELINE_H
#define LG_PIPELINE_H

struct lg_http_req;
struct lg_worker;

enum lg_stage_result { LG_OK, LG_DONE, LG_AGAIN };

/* The lg_http_handler of the public listeners; ARG is the struct lg_worker. */
void lg_pipeline_handle(struct lg_http_req *req, void *arg);

/* Frees the worker's pooled request contexts. */
void lg_pipeline_free_pool(struct lg_worker *w);

#endif
