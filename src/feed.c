/* The facility inclusion feed (placeholder until the feed lands): 503. */
#include <stdlib.h>

#include "lockgate/feed.h"
#include "lockgate/http.h"

struct lg_feed {
    int unused;
};

struct lg_feed *lg_feed_new(struct event_base *base, const struct lg_config *cfg,
                            struct lg_store *store)
{
    return calloc(1, sizeof(struct lg_feed));
}
void lg_feed_free(struct lg_feed *f) { free(f); }
void lg_feed_serve(struct lg_feed *f, struct lg_http_req *req, enum lg_route_kind route,
                   const char *key_id, const char *request_id)
{
    static const char body[] = "{\"error\":{\"code\":\"not_implemented\",\"message\":\"feed\"}}";
    lg_http_reply(req, 501, "application/json", body, sizeof(body) - 1);
}
void lg_feed_on_event(struct lg_feed *f, const struct lg_event *ev) {}
void lg_feed_close_key(struct lg_feed *f, const char *key_id) {}
int lg_feed_streams(const struct lg_feed *f) { return 0; }
