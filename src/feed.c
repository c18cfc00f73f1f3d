/* The facility inclusion feed (SPEC section 8): a snapshot with its cursor
 * (feed_snapshot.c), the changes after a cursor (feed_changes.c), and
 * server-sent event streams (feed_stream.c), all read from Redis through
 * the worker's one command connection. This file owns the per-worker feed
 * and routes to its parts (feed_internal.h says who needs whom).
 *
 * Every script is bounded (COUNT) so that none holds Redis, or the command
 * connection's deadline, for long. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed_internal.h"
#include "lockgate/event.h"
#include "lockgate/reply.h"

void lg_feed_serve(struct lg_feed *f, struct lg_http_req *req, enum lg_route_kind route,
                   const char *key_id, int64_t expires_at_ms, const char *request_id)
{
    const char *rid = request_id ? request_id : "";
    switch (route) {
    case LG_ROUTE_FEED_SNAPSHOT: lg_feed_snapshot_serve(f, req, rid); break;
    case LG_ROUTE_FEED_CHANGES: lg_feed_changes_serve(f, req, rid); break;
    case LG_ROUTE_FEED_STREAM: lg_feed_stream_serve(f, req, key_id, expires_at_ms, rid); break;
    default: lg_http_reply_error_body(req, 404, "not_found", "no such resource", rid); break;
    }
}

void lg_feed_on_event(struct lg_feed *f, const struct lg_event *ev)
{
    if (f != NULL) lg_feed_streams_on_event(f, ev);
}

void lg_feed_close_key(struct lg_feed *f, const char *key_id)
{
    if (f == NULL || key_id == NULL || key_id[0] == '\0') return;
    lg_feed_streams_close(f, key_id);
}

void lg_feed_close_all(struct lg_feed *f)
{
    if (f != NULL) lg_feed_streams_close(f, NULL);
}

struct lg_feed *lg_feed_new(struct event_base *base, const struct lg_config *cfg,
                            struct lg_store *store)
{
    struct lg_feed *f = calloc(1, sizeof(*f));
    if (f == NULL) return NULL;
    lg_list_init(&f->streams);
    lg_list_init(&f->changes);
    lg_list_init(&f->snapshots);
    f->base = base;
    f->cfg = cfg;
    f->store = store;
    const char *p = lg_store_prefix(store);
    snprintf(f->prefix, sizeof(f->prefix), "%s", p);
    snprintf(f->events_key, sizeof(f->events_key), "%sevents", p);
    snprintf(f->facilities_key, sizeof(f->facilities_key), "%sfacilities", p);
    if (lg_feed_streams_init(f) < 0) goto err;
    return f;
err:
    lg_feed_free(f);
    return NULL;
}

void lg_feed_free(struct lg_feed *f)
{
    if (f == NULL) return;
    lg_feed_streams_free(f);
    lg_feed_snapshots_free(f);
    lg_feed_changes_free(f);
    free(f);
}
