/* The upstream client: one worker's pool of kept-alive connections to the
 * lock platform's API, opened by libcurl on the worker's event loop, with the
 * requests written and the answers framed by lockgate itself. */
#ifndef LG_UPSTREAM_H
#define LG_UPSTREAM_H

#include <stddef.h>

struct event_base;
struct lg_config;
struct lg_upstream;
struct lg_upstream_req;

enum lg_upstream_error {
    LG_UPSTREAM_OK = 0,      /* got an answer (any status, see .status) */
    LG_UPSTREAM_UNAVAILABLE, /* refused, reset, DNS, every URL failed */
    LG_UPSTREAM_TIMEOUT      /* connect or total timeout */
};

struct lg_upstream_result {
    enum lg_upstream_error error;
    int status;               /* HTTP status when error == LG_UPSTREAM_OK */
    const char *content_type; /* may be NULL */
    const char *body;         /* borrowed, valid during the callback; NUL-terminated */
    size_t body_len;
};

/* Called exactly once per lg_upstream_fetch unless it was cancelled first.
 * RES and everything it points to are borrowed for the duration of the call. */
typedef void lg_upstream_cb(const struct lg_upstream_result *res, void *arg);

/* Creates the client for BASE from [upstream] (urls, timeouts, max_connections
 * per URL, ca_file). Returns NULL on error. */
struct lg_upstream *lg_upstream_new(struct event_base *base, const struct lg_config *cfg);
/* Cancels every transfer in flight (their callbacks are not called) and frees. */
void lg_upstream_free(struct lg_upstream *up);

/* Starts GET (or HEAD when HEAD is non-zero) of PATH_QUERY ("/v1/...?..."),
 * appended to the next base URL in round robin (a URL that failed its last
 * transfer is skipped while others are healthy). HEADERS is a NULL-terminated
 * array of "Name: value" lines, copied. Requests beyond max_connections wait
 * for a connection, within the same timeout. Returns a handle for
 * lg_upstream_cancel, or NULL when the transfer could not start (CB is then
 * not called). */
struct lg_upstream_req *lg_upstream_fetch(struct lg_upstream *up, const char *path_query, int head,
                                          const char *const *headers, lg_upstream_cb *cb,
                                          void *arg);
/* Stops a transfer (the client hung up). CB is not called afterwards; the
 * connection it was on is closed, not reused. Safe to call only before CB has
 * been called. */
void lg_upstream_cancel(struct lg_upstream_req *req);

/* Transfers in flight, and whether the last transfer to any URL succeeded. */
int lg_upstream_inflight(const struct lg_upstream *up);
int lg_upstream_healthy(const struct lg_upstream *up);

#endif
