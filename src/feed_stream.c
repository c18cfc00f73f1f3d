/* The feed's server-sent event streams (GET /v1/feed/facilities/stream).
 *
 * Streams scale by sharing work: a stream first reads its own backlog in
 * pages, then joins the live list; the live list is fed by ONE range read
 * from the worker's shared tail (the last stream id fetched), triggered by
 * facility events from pub/sub and by a 1 s poll, and each entry is fanned
 * out to every live stream whose last sent id is older. Why there is no gap:
 * commands on one connection run and answer in order, so every tail read
 * answered after a stream joined ran after that stream's last page, and
 * tail reads are contiguous; entries at or below a stream's last id are
 * skipped, so nothing is sent twice.
 *
 * A feed key holds at most [feed] max_streams_per_key streams on this
 * instance (feed_quota.c); the next one is 429. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "feed_internal.h"
#include "lockgate/config.h"
#include "lockgate/event.h"
#include "lockgate/http.h"
#include "lockgate/log.h"
#include "lockgate/metrics.h"
#include "lockgate/reply.h"
#include "lockgate/util.h"

#define CATCHUP_PAGE   200  /* entries per backlog page of one stream */
#define TAIL_PAGE      200  /* entries per shared tail read */
#define POLL_MS        1000 /* tail poll and heartbeat check while streams are open */
#define SSE_TYPE       "text/event-stream"
#define HEARTBEAT      ": keep-alive\n\n"
#define CHUNK_OVERHEAD 12  /* chunked framing: "%x\r\n" and "\r\n" */
#define FULL_RETRY_S   "5" /* Retry-After of a key at its stream limit */

/* A stream's life, one state at a time. A backlog read is in flight in
 * OPENING, OPENING_CLOSED, READING and ENDED, and its answer (on_backlog)
 * moves the stream on; BEHIND is a streaming reader with no read in flight:
 *
 *   OPENING --first page--> 200, then as READING's page
 *           --first page failed or cursor expired--> 503/410, freed
 *           --key closed--> OPENING_CLOSED --first page--> 200, end, freed
 *   READING --page--> READING (more backlog) or LIVE (caught up)
 *           --read failed--> BEHIND --next poll--> READING
 *   LIVE: fed by the shared tail read
 *   ended with a read in flight --> ENDED --its answer--> freed;
 *   ended in BEHIND or LIVE --> freed at once. */
enum stream_state { ST_OPENING, ST_OPENING_CLOSED, ST_READING, ST_BEHIND, ST_LIVE, ST_ENDED };

struct feed_stream {
    struct lg_list link; /* in f->streams */
    struct lg_feed *f;
    struct lg_http_req *req; /* NULL once answered or ended */
    enum stream_state state;
    struct lg_feed_sid last;          /* the last id sent, or where the stream starts */
    char cursor[FEED_CURSOR_MAX + 1]; /* the start ("" = the newest change) */
    int64_t next_beat_ms;
    uint64_t turn;     /* the feed's turn of the last write */
    size_t turn_bytes; /* bytes written in that turn */
    char key_id[FEED_KEY_ID_MAX];
    int64_t expires_at_ms; /* the key's expiry (wall clock), 0 = never */
    char request_id[LG_REQUEST_ID_MAX + 1];
};

/* The shared tail read in flight. Orphaned (f NULL) when the feed is freed. */
struct feed_tail_read {
    struct lg_feed *f;
};

static void stream_close(struct feed_stream *s);
static void kick(struct lg_feed *f);

static bool reading(const struct feed_stream *s)
{
    return s->state == ST_OPENING || s->state == ST_OPENING_CLOSED || s->state == ST_READING ||
           s->state == ST_ENDED;
}

static void poll_update(struct lg_feed *f)
{
    if (f->nstreams > 0 && !f->poll_on) {
        struct timeval tv = {POLL_MS / 1000, (POLL_MS % 1000) * 1000};
        evtimer_add(f->poll, &tv);
        f->poll_on = true;
    } else if (f->nstreams == 0 && f->poll_on) {
        evtimer_del(f->poll);
        f->poll_on = false;
    }
}

static struct feed_stream *stream_of(struct lg_list *n)
{
    return LG_CONTAINER_OF(n, struct feed_stream, link);
}

static void stream_link(struct feed_stream *s)
{
    struct lg_feed *f = s->f;
    lg_list_push_front(&f->streams, &s->link);
    f->nstreams++;
    lg_metrics_feed_streams(1);
    poll_update(f);
}

static void stream_unlink(struct feed_stream *s)
{
    struct lg_feed *f = s->f;
    lg_list_remove(&s->link);
    f->nstreams--;
    lg_metrics_feed_streams(-1);
    if (s->state == ST_LIVE) f->nlive--;
    lg_feed_quota_give(s->key_id);
    poll_update(f);
}

/* Ends S: answers its request (once), unlinks it, frees it unless a read
 * still refers to it. S is invalid afterwards. */
static void stream_end(struct feed_stream *s)
{
    if (s->req != NULL) {
        if (s->state == ST_OPENING || s->state == ST_OPENING_CLOSED)
            lg_http_reply(s->req, 499, NULL, NULL, 0);
        else
            lg_http_stream_end(s->req);
        s->req = NULL;
    }
    stream_unlink(s);
    if (reading(s))
        s->state = ST_ENDED; /* freed by the read's answer */
    else
        free(s);
}

/* Writes TEXT; a reader whose backlog passes the limit is dropped. What
 * this turn of the loop wrote has had no chance to leave yet (a page of
 * entries goes out at once), so only bytes left from earlier turns count:
 * they are what the reader did not take. 0, or -1 when S was ended. */
static int stream_send(struct feed_stream *s, const char *text, size_t len)
{
    struct lg_feed *f = s->f;
    if (s->turn != f->turn) {
        s->turn = f->turn;
        s->turn_bytes = 0;
    }
    s->turn_bytes += len + CHUNK_OVERHEAD;
    size_t queued = lg_http_stream_write(s->req, text, len);
    size_t backlog = queued > s->turn_bytes ? queued - s->turn_bytes : 0;
    if (backlog > (size_t)f->cfg->feed_max_backlog_kib * 1024) {
        lg_warn("feed: dropping a slow stream of key %s (%zu bytes not taken)", s->key_id, backlog);
        stream_end(s);
        return -1;
    }
    return 0;
}

/* Sends the facility entries of a range reply R that are newer than S's
 * last id. 0, or -1 when S was ended. */
static int stream_send_entries(struct feed_stream *s, const redisReply *r)
{
    for (size_t i = FEED_RANGE_HEAD; i + FEED_RANGE_FIELDS <= r->elements; i += FEED_RANGE_FIELDS) {
        redisReply **e = r->element + i;
        struct lg_feed_sid id;
        if (lg_feed_sid_parse(e[0]->str, e[0]->len, &id) < 0 || lg_feed_sid_cmp(id, s->last) <= 0)
            continue;
        size_t len = 0;
        char *text = lg_feed_sse_text(e, &len);
        s->last = id;
        if (text == NULL) continue;
        int rc = stream_send(s, text, len);
        free(text);
        if (rc < 0) return -1;
    }
    return 0;
}

/* S reached the end of the events stream, END being its last id then: it
 * joins the live list. With no other live stream and no tail read in
 * flight the tail restarts at END, so a stale tail is never re-read. */
static void stream_join(struct feed_stream *s, struct lg_feed_sid end)
{
    struct lg_feed *f = s->f;
    s->state = ST_LIVE;
    f->nlive++;
    if (!f->tail_valid || (f->nlive == 1 && f->tail_read == NULL)) {
        f->tail = end;
        f->tail_valid = true;
    }
    if (lg_feed_sid_cmp(end, f->tail) > 0) kick(f);
}

static void on_backlog(struct lg_store *st, redisReply *reply, void *arg);

/* Reads S's next backlog page (the first one from its cursor): S is then
 * OPENING or READING. -1 when it could not be sent (S's state unchanged). */
static int backlog_read(struct feed_stream *s, bool first)
{
    char cursor[FEED_CURSOR_MAX + 1];
    if (first)
        snprintf(cursor, sizeof(cursor), "%s", s->cursor);
    else
        lg_feed_sid_format(s->last, cursor);
    if (lg_feed_range(s->f, cursor, CATCHUP_PAGE, on_backlog, s) < 0) return -1;
    s->state = first ? ST_OPENING : ST_READING;
    return 0;
}

/* A backlog page R (NULL on failure) for S, which has started streaming. */
static void stream_page(struct feed_stream *s, const redisReply *r)
{
    s->state = ST_BEHIND;  /* the page has answered */
    if (r == NULL) return; /* the next poll reads again from s->last */
    if (lg_feed_range_expired(r)) {
        /* Trimmed past this reader: it reconnects, hears 410, re-snapshots. */
        lg_info("feed: a stream of key %s fell behind the kept changes", s->key_id);
        stream_end(s);
        return;
    }
    if (stream_send_entries(s, r) < 0) return;
    struct lg_feed_sid lastread, end;
    if (lg_feed_sid_parse(r->element[2]->str, r->element[2]->len, &lastread) == 0 &&
        lg_feed_sid_cmp(lastread, s->last) > 0)
        s->last = lastread;
    long nread = strtol(r->element[4]->str, NULL, 10);
    if (nread < CATCHUP_PAGE &&
        lg_feed_sid_parse(r->element[3]->str, r->element[3]->len, &end) == 0) {
        stream_join(s, end);
        return;
    }
    backlog_read(s, false); /* stays BEHIND when not sent */
}

/* The first page of S: answer 410/503 as JSON, or start the stream. */
static void stream_opened(struct feed_stream *s, const redisReply *r)
{
    if (r == NULL || lg_feed_range_expired(r)) {
        if (r == NULL)
            lg_http_reply_error_body(s->req, 503, "store_unavailable",
                                     "the event store is unreachable", s->request_id);
        else
            lg_http_reply_error_body(
                s->req, 410, "cursor_expired",
                "the cursor is older than the kept changes: take a new snapshot", s->request_id);
        s->req = NULL;
        s->state = ST_BEHIND; /* the read has answered */
        stream_end(s);
        return;
    }
    bool closed = s->state == ST_OPENING_CLOSED;
    lg_http_stream_start(s->req, 200, SSE_TYPE);
    s->state = ST_BEHIND;
    s->next_beat_ms = lg_mono_ms() + (int64_t)s->f->cfg->feed_heartbeat_s * 1000;
    if (closed || lg_feed_sid_parse(r->element[1]->str, r->element[1]->len, &s->last) < 0) {
        stream_end(s);
        return;
    }
    stream_page(s, r);
}

static void on_backlog(struct lg_store *st, redisReply *reply, void *arg)
{
    struct feed_stream *s = arg;
    if (s->state == ST_ENDED) { /* ended meanwhile; the feed may be gone too */
        free(s);
        return;
    }
    const redisReply *r = lg_feed_range_ok(reply) ? reply : NULL;
    if (reply != NULL && r == NULL)
        lg_warn("feed: unexpected answer to a stream's read%s%s",
                reply->type == REDIS_REPLY_ERROR ? ": " : "",
                reply->type == REDIS_REPLY_ERROR ? reply->str : "");
    s->f->turn++;
    if (s->state == ST_OPENING || s->state == ST_OPENING_CLOSED)
        stream_opened(s, r);
    else
        stream_page(s, r);
}

/* ---- the shared tail ---- */

static void on_tail(struct lg_store *st, redisReply *reply, void *arg);

static void tail_read(struct lg_feed *f)
{
    if (f->nlive == 0 || !f->tail_valid) return;
    if (f->tail_read != NULL) {
        f->tail_again = true;
        return;
    }
    struct feed_tail_read *t = calloc(1, sizeof(*t));
    if (t == NULL) return;
    t->f = f;
    char cursor[FEED_CURSOR_MAX + 1];
    lg_feed_sid_format(f->tail, cursor);
    f->tail_again = false;
    if (lg_feed_range(f, cursor, TAIL_PAGE, on_tail, t) < 0) {
        free(t);
        return;
    }
    f->tail_read = t;
}

static void tail_fanout(struct lg_feed *f, const redisReply *r)
{
    struct lg_list *n, *next;
    if (lg_feed_range_expired(r)) {
        /* More changes than the stream keeps came between two reads. */
        lg_warn("feed: live streams fell behind the kept changes; closing them");
        LG_LIST_EACH(n, next, &f->streams)
        {
            struct feed_stream *s = stream_of(n);
            if (s->state == ST_LIVE) stream_end(s);
        }
        f->tail_valid = false;
        return;
    }
    for (size_t i = FEED_RANGE_HEAD; i + FEED_RANGE_FIELDS <= r->elements; i += FEED_RANGE_FIELDS) {
        redisReply **e = r->element + i;
        struct lg_feed_sid id;
        if (lg_feed_sid_parse(e[0]->str, e[0]->len, &id) < 0) continue;
        size_t len = 0;
        char *text = NULL;
        bool built = false;
        LG_LIST_EACH(n, next, &f->streams)
        {
            struct feed_stream *s = stream_of(n);
            if (s->state != ST_LIVE || lg_feed_sid_cmp(id, s->last) <= 0) continue;
            if (!built) {
                text = lg_feed_sse_text(e, &len);
                built = true;
            }
            s->last = id;
            if (text != NULL) stream_send(s, text, len);
        }
        free(text);
    }
    struct lg_feed_sid lastread;
    if (lg_feed_sid_parse(r->element[2]->str, r->element[2]->len, &lastread) == 0 &&
        lg_feed_sid_cmp(lastread, f->tail) > 0)
        f->tail = lastread;
    if (strtol(r->element[4]->str, NULL, 10) >= TAIL_PAGE) f->tail_again = true;
}

static void on_tail(struct lg_store *st, redisReply *reply, void *arg)
{
    struct feed_tail_read *t = arg;
    struct lg_feed *f = t->f;
    free(t);
    if (f == NULL) return; /* the feed is gone */
    f->tail_read = NULL;
    f->turn++;
    const redisReply *r = lg_feed_range_ok(reply) ? reply : NULL;
    if (reply != NULL && r == NULL)
        lg_warn("feed: unexpected answer to the tail read%s%s",
                reply->type == REDIS_REPLY_ERROR ? ": " : "",
                reply->type == REDIS_REPLY_ERROR ? reply->str : "");
    if (r == NULL) return;
    tail_fanout(f, r);
    if (f->tail_again) kick(f);
}

static void on_kick(evutil_socket_t fd, short what, void *arg) { tail_read(arg); }

static void kick(struct lg_feed *f)
{
    struct timeval zero = {0, 0};
    evtimer_add(f->kick, &zero);
}

/* Every second while streams are open: a tail read (a lost pub/sub message
 * costs at most this delay), failed backlog reads again, heartbeats. */
static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    struct lg_feed *f = arg;
    struct lg_list *n, *next;
    int64_t now = lg_mono_ms();
    f->turn++;
    int64_t beat = (int64_t)f->cfg->feed_heartbeat_s * 1000, wall = lg_now_ms();
    LG_LIST_EACH(n, next, &f->streams)
    {
        struct feed_stream *s = stream_of(n);
        if (s->expires_at_ms != 0 && wall >= s->expires_at_ms) {
            stream_close(s); /* the key expired: no event says so */
            continue;
        }
        if (s->state == ST_OPENING || s->state == ST_OPENING_CLOSED) continue;
        if (s->state == ST_BEHIND) backlog_read(s, false); /* stays BEHIND when not sent */
        if (now >= s->next_beat_ms) {
            s->next_beat_ms = now + beat;
            stream_send(s, HEARTBEAT, sizeof(HEARTBEAT) - 1);
        }
    }
    tail_read(f);
}

/* ---- serving ---- */

static void on_stream_close(struct lg_http_req *req, void *arg)
{
    /* Still answered exactly once: stream_end releases the request. */
    stream_end(arg);
}

void lg_feed_stream_serve(struct lg_feed *f, struct lg_http_req *req, const char *key_id,
                          int64_t expires_at_ms, const char *rid)
{
    char cursor[FEED_CURSOR_MAX + 1] = "";
    if (lg_feed_request_cursor(req, true, cursor) < 0) {
        lg_http_reply_error_body(req, 400, "bad_request", "cursor: must be <ms>-<seq>", rid);
        return;
    }
    if (lg_http_method(req) == LG_HTTP_HEAD) {
        lg_http_reply(req, 200, SSE_TYPE, NULL, 0);
        return;
    }
    if (!lg_feed_quota_take(key_id, f->cfg->feed_max_streams_per_key)) {
        char msg[128];
        snprintf(msg, sizeof(msg), "this key has %d streams open already: close one first",
                 f->cfg->feed_max_streams_per_key);
        lg_http_set_header(req, "Retry-After", FULL_RETRY_S);
        lg_http_reply_error_body(req, 429, "rate_limited", msg, rid);
        return;
    }
    struct feed_stream *s = calloc(1, sizeof(*s));
    if (s != NULL) lg_list_init(&s->link);
    if (s == NULL) {
        lg_feed_quota_give(key_id);
        lg_http_reply_error_body(req, 503, "store_unavailable", "out of memory", rid);
        return;
    }
    s->f = f;
    s->req = req;
    s->state = ST_OPENING;
    snprintf(s->cursor, sizeof(s->cursor), "%s", cursor);
    snprintf(s->key_id, sizeof(s->key_id), "%s", key_id);
    s->expires_at_ms = expires_at_ms;
    snprintf(s->request_id, sizeof(s->request_id), "%s", rid);
    stream_link(s);
    lg_http_on_close(req, on_stream_close, s);
    if (backlog_read(s, true) < 0) {
        lg_http_reply_error_body(req, 503, "store_unavailable", "the event store is unreachable",
                                 rid);
        s->req = NULL;
        s->state = ST_BEHIND; /* nothing in flight: freed at once */
        stream_end(s);
    }
}

void lg_feed_streams_on_event(struct lg_feed *f, const struct lg_event *ev)
{
    if (f->nlive == 0 || strncmp(ev->type, "facility.", 9) != 0) return;
    struct lg_feed_sid id;
    if (f->tail_valid && lg_feed_sid_parse(ev->id, strlen(ev->id), &id) == 0 &&
        lg_feed_sid_cmp(id, f->tail) <= 0)
        return; /* already read */
    kick(f);
}

static void stream_close(struct feed_stream *s)
{
    if (s->state == ST_OPENING)
        s->state = ST_OPENING_CLOSED; /* ended as soon as its first read answers */
    else if (s->state != ST_OPENING_CLOSED)
        stream_end(s);
}

void lg_feed_streams_close(struct lg_feed *f, const char *key_id)
{
    struct lg_list *n, *next;
    LG_LIST_EACH(n, next, &f->streams)
    {
        struct feed_stream *s = stream_of(n);
        if (key_id == NULL || strcmp(s->key_id, key_id) == 0) stream_close(s);
    }
}

int lg_feed_streams_init(struct lg_feed *f)
{
    if ((f->poll = event_new(f->base, -1, EV_PERSIST, on_poll, f)) == NULL) return -1;
    if ((f->kick = evtimer_new(f->base, on_kick, f)) == NULL) return -1;
    return 0;
}

void lg_feed_streams_free(struct lg_feed *f)
{
    struct lg_list *n;
    while ((n = lg_list_first(&f->streams)) != NULL) {
        struct feed_stream *s = stream_of(n);
        if ((s->state == ST_OPENING || s->state == ST_OPENING_CLOSED) && s->req != NULL) {
            lg_http_reply_error_body(s->req, 503, "store_unavailable", "the gateway is stopping",
                                     s->request_id);
            s->req = NULL;
        }
        stream_end(s);
    }
    if (f->tail_read != NULL) f->tail_read->f = NULL; /* its answer frees it */
    f->tail_read = NULL;
    if (f->poll) event_free(f->poll);
    if (f->kick) event_free(f->kick);
    f->poll = f->kick = NULL;
}
