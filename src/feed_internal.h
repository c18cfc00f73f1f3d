/* Inside the facility inclusion feed: the per-worker feed object and what
 * its parts share. feed.c serves the routes and owns the object; the parts
 * below it need nothing of feed.c nor of each other but feed_changes.c:
 *   feed_changes.c   cursors, the range read of the events stream, the
 *                    changes route;
 *   feed_stream.c    server-sent event streams (uses feed_changes.c and
 *                    feed_quota.c);
 *   feed_quota.c     open streams per feed key, for the whole instance;
 *   feed_snapshot.c  the snapshot, sent page by page. */
#ifndef LG_FEED_INTERNAL_H
#define LG_FEED_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "lockgate/feed.h"
#include "lockgate/list.h"
#include "lockgate/store.h"
#include "lockgate/util.h"

#define FEED_CURSOR_MAX   41 /* "<ms>-<seq>", both decimal uint64 */
#define FEED_KEY_ID_MAX   72
#define FEED_RANGE_HEAD   5 /* status, start, last read, stream end, entries read */
#define FEED_RANGE_FIELDS 7 /* id, type, facility_id, account_id, included, at, name */

/* A stream id: (ms, seq), compared as a pair of uint64. */
struct lg_feed_sid {
    uint64_t ms, seq;
};

struct feed_stream;
struct feed_changes_op;
struct feed_tail_read;
struct feed_snapshot;

struct lg_feed {
    struct event_base *base;
    const struct lg_config *cfg;
    struct lg_store *store;
    char events_key[128];
    char facilities_key[128];
    char prefix[64];
    /* streams (feed_stream.c) */
    struct lg_list streams; /* of feed_stream.link: every open stream, any state */
    int nstreams, nlive;
    struct lg_feed_sid tail; /* last id read by the shared tail read */
    bool tail_valid;
    struct feed_tail_read *tail_read; /* the shared tail read in flight, or NULL */
    bool tail_again;                  /* a trigger came while a tail read was in flight */
    uint64_t turn;                    /* bumped by every callback that writes to streams */
    struct event *poll;
    struct event *kick; /* zero timer: events of one loop turn share one read */
    bool poll_on;
    /* changes requests waiting for Redis (feed_changes.c) */
    struct lg_list changes; /* of feed_changes_op.link */
    /* snapshots being sent (feed_snapshot.c) */
    struct lg_list snapshots; /* of feed_snapshot.link */
};

/* ---- feed_changes.c ---- */

/* Strict "<ms>-<seq>" of at most FEED_CURSOR_MAX bytes. 0 or -1. */
int lg_feed_sid_parse(const char *s, size_t len, struct lg_feed_sid *id);
int lg_feed_sid_cmp(struct lg_feed_sid a, struct lg_feed_sid b);
void lg_feed_sid_format(struct lg_feed_sid id, char out[FEED_CURSOR_MAX + 1]);
/* The cursor of REQ: the query's (which wins) or, when HEADER_OK,
 * Last-Event-ID. 1 with a canonical OUT, 0 when there is none, -1 when
 * malformed. */
int lg_feed_request_cursor(struct lg_http_req *req, bool header_ok, char out[FEED_CURSOR_MAX + 1]);
/* Runs the range script on F's events stream: the expiry check of CURSOR
 * ("" = the stream's end) and up to COUNT entries after it. CB gets the
 * reply (check it with lg_feed_range_ok) with ARG. 0, or -1 when not sent
 * (CB is then not called). */
int lg_feed_range(struct lg_feed *f, const char *cursor, int count, lg_store_cb *cb, void *arg);
/* A well-formed range reply: the head, then whole entries, all text. */
bool lg_feed_range_ok(const redisReply *r);
/* True when a range reply says its cursor expired. */
bool lg_feed_range_expired(const redisReply *r);
/* The SSE text of one entry of a range reply (FEED_RANGE_FIELDS elements
 * from E; the caller frees it), or NULL to skip the entry. */
char *lg_feed_sse_text(redisReply **e, size_t *len);
/* GET .../changes?cursor=C: takes over REQ (answered once). */
void lg_feed_changes_serve(struct lg_feed *f, struct lg_http_req *req, const char *request_id);
/* The feed is being freed: answers waiting changes requests with 503. */
void lg_feed_changes_free(struct lg_feed *f);

/* ---- feed_stream.c ---- */

/* Sets up the poll and kick timers. 0 or -1. */
int lg_feed_streams_init(struct lg_feed *f);
/* Ends every stream, orphans the tail read, frees the timers. */
void lg_feed_streams_free(struct lg_feed *f);
/* GET .../stream: takes over REQ for the feed key KEY_ID. */
void lg_feed_stream_serve(struct lg_feed *f, struct lg_http_req *req, const char *key_id,
                          int64_t expires_at_ms, const char *request_id);
void lg_feed_streams_on_event(struct lg_feed *f, const struct lg_event *ev);
/* Closes the streams of KEY_ID, or every stream when KEY_ID is NULL. */
void lg_feed_streams_close(struct lg_feed *f, const char *key_id);

/* ---- feed_quota.c ---- */

/* Counts one more open stream of KEY_ID for the whole instance; false
 * (nothing counted) when it already has MAX. Thread-safe. */
bool lg_feed_quota_take(const char *key_id, int max);
/* Gives back one stream of KEY_ID counted by lg_feed_quota_take. */
void lg_feed_quota_give(const char *key_id);

/* ---- feed_snapshot.c ---- */

/* GET /v1/feed/facilities: takes over REQ, answered page by page. */
void lg_feed_snapshot_serve(struct lg_feed *f, struct lg_http_req *req, const char *request_id);
/* The feed is being freed: ends or answers every snapshot, orphans their reads. */
void lg_feed_snapshots_free(struct lg_feed *f);

#endif
