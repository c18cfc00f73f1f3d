/* The facility inclusion feed for OverlockRelease (SPEC section 8): snapshot,
 * changes since a cursor, and live server-sent event streams, all served from
 * the events stream in Redis. One per worker. */
#ifndef LG_FEED_H
#define LG_FEED_H

#include <stdbool.h>
#include <stdint.h>

#include "lockgate/route.h"

struct event_base;
struct lg_config;
struct lg_event;
struct lg_http_req;
struct lg_store;
struct lg_feed;

/* CFG and STORE (the worker's command connection) are borrowed. NULL on error. */
struct lg_feed *lg_feed_new(struct event_base *base, const struct lg_config *cfg,
                            struct lg_store *store);
/* Ends every open stream and frees. */
void lg_feed_free(struct lg_feed *f);

/* Serves ROUTE (LG_ROUTE_FEED_*) for the authenticated feed key KEY_ID and
 * takes over REQ: it is answered now or later, exactly once. X-Request-Id and
 * rate-limit headers are already set on REQ; REQUEST_ID is copied. */
void lg_feed_serve(struct lg_feed *f, struct lg_http_req *req, enum lg_route_kind route,
                   const char *key_id, int64_t expires_at_ms, const char *request_id);

/* Every event received on the events channel, so live streams can advance. */
void lg_feed_on_event(struct lg_feed *f, const struct lg_event *ev);
/* Closes at once every stream opened with KEY_ID (key disabled or deleted).
 * A stream also ends by itself when its key's expiry (given to
 * lg_feed_serve) passes. */
void lg_feed_close_key(struct lg_feed *f, const char *key_id);
/* Closes every stream: the subscription was lost or restored, so a
 * revocation may have been missed. Readers resume with Last-Event-ID and are
 * authenticated again. */
void lg_feed_close_all(struct lg_feed *f);

#endif
