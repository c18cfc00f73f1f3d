/* The feed's snapshot (GET /v1/feed/facilities): every facility of the
 * platform with the events cursor it is valid at, written out page by page
 * as Redis answers, so a large platform never sits in memory as one
 * document: at most one page of facilities and what the client has not
 * taken yet (SNAPSHOT_HIGH_WATER, then reading waits for the client).
 *
 * The answer is sorted by facility id and holds each facility once,
 * although the facility set is a Redis set that SSCAN walks in hash order
 * (and may repeat an id when it rehashes): the set is first copied, in
 * bounded pages, into a sorted set of its own under the snapshot's own key
 * (SNAPSHOT_TTL_MS, refreshed by each page, deleted at the end), which then
 * yields its ids in order, a page at a time, each page read with its
 * facilities' fields. The cursor is taken by the first script, with the
 * first copy page; when the whole set fits one page (SNAPSHOT_PAGE ids),
 * that same script also reads the first page of facilities, so a small
 * platform's snapshot is one atomic read. Beyond that, later pages may show
 * changes made after the cursor, which the changes after the cursor repeat:
 * a consumer that applies them ends with Redis's view either way.
 *
 * The HTTP answer starts (200, chunked) with the first page of facilities;
 * a failure before that is a JSON error, one after it ends the answer
 * before its closing bracket, which no JSON parser takes for a whole
 * snapshot. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>

#include "feed_internal.h"
#include "lockgate/http.h"
#include "lockgate/log.h"
#include "lockgate/reply.h"
#include "lockgate/store_read.h"
#include "lockgate/util.h"

#define SNAPSHOT_PAGE        1000 /* ids per script (a few ms of Redis) */
#define SNAPSHOT_MAX_PAGES   100000
#define SNAPSHOT_TTL_MS      "60000"      /* the copy's lifetime in Redis between two pages */
#define SNAPSHOT_HIGH_WATER  (512 * 1024) /* unsent bytes past which reading waits */
#define SNAPSHOT_WAIT_MS     20           /* how often a waiting snapshot looks again */
#define SNAPSHOT_STALL_MS    30000        /* a client that takes nothing for this long is dropped */
#define SNAPSHOT_MAX_RUNNING 4            /* per instance: each holds a copy of the ids in Redis */
#define REPLY_HEAD           3            /* stream cursor, next scan cursor, last id read */
#define REPLY_FIELDS         5            /* facility_id, account_id, name, included, updated_at */
#define JSON_TYPE            "application/json"

/* One page of the snapshot. KEYS: the facility set, the events stream, the
 * snapshot's sorted set. ARGV: prefix, "copy" or "read", the SSCAN cursor
 * (copy) or the last id sent (read), "1" for the first page, the page size,
 * the copy's TTL in ms. Reply: {stream cursor ("" after the first page),
 * next SSCAN cursor ("" once the copy is complete), the last id read when
 * more may follow ("" at the end), then REPLY_FIELDS strings per facility
 * read}. Facilities gone since the copy are left out. */
static struct lg_script snapshot_script = {
    .name = "feed_snapshot",
    .source = "if redis.replicate_commands then redis.replicate_commands() end\n"
              "local count = tonumber(ARGV[5])\n"
              "local out = {'', '', ''}\n"
              "if ARGV[4] == '1' then\n"
              "  out[1] = '0-0'\n"
              "  if redis.call('EXISTS', KEYS[2]) == 1 then\n"
              "    local info = redis.call('XINFO', 'STREAM', KEYS[2])\n"
              "    for i = 1, #info - 1, 2 do\n"
              "      if info[i] == 'last-generated-id' then out[1] = info[i + 1] end\n"
              "    end\n"
              "  end\n"
              "end\n"
              "local from = '-'\n"
              "if ARGV[2] == 'copy' then\n"
              "  local page = redis.call('SSCAN', KEYS[1], ARGV[3], 'COUNT', count)\n"
              "  local ids = page[2]\n"
              "  for i = 1, #ids, 500 do\n"
              "    local args = {}\n"
              "    for j = i, math.min(i + 499, #ids) do\n"
              "      args[#args + 1] = 0; args[#args + 1] = ids[j]\n"
              "    end\n"
              "    redis.call('ZADD', KEYS[3], unpack(args))\n"
              "  end\n"
              "  if page[1] ~= '0' then\n"
              "    redis.call('PEXPIRE', KEYS[3], ARGV[6])\n"
              "    out[2] = page[1]\n"
              "    return out\n"
              "  end\n"
              "else\n"
              "  from = '(' .. ARGV[3]\n"
              "end\n"
              "local ids = redis.call('ZRANGEBYLEX', KEYS[3], from, '+', 'LIMIT', 0, count)\n"
              "if #ids < count then\n"
              "  redis.call('DEL', KEYS[3])\n"
              "else\n"
              "  redis.call('PEXPIRE', KEYS[3], ARGV[6])\n"
              "  out[3] = ids[#ids]\n"
              "end\n"
              "for _, id in ipairs(ids) do\n"
              "  local f = redis.call('HMGET', ARGV[1] .. 'fac:' .. id, 'account_id', 'name', "
              "'included',\n"
              "                       'updated_at')\n"
              "  if f[1] then\n"
              "    out[#out + 1] = id; out[#out + 1] = f[1]; out[#out + 1] = f[2]\n"
              "    out[#out + 1] = f[3]; out[#out + 1] = f[4] or ''\n"
              "  end\n"
              "end\n"
              "return out\n",
};

/* A snapshot being read and sent. Orphaned (f NULL) when the feed is freed
 * while a page is in flight; freed by that page's answer then. */
struct feed_snapshot {
    struct lg_list link; /* in f->snapshots */
    struct lg_feed *f;
    struct lg_http_req *req; /* NULL once answered, ended, or the client left */
    bool inflight;           /* a page is being read */
    bool copying;            /* the copy into the sorted set is not complete */
    bool started;            /* the 200 and the head are out */
    bool any;                /* a facility was written (the next one needs a comma) */
    int pages;
    int64_t stalled_ms;               /* since when the client took nothing, 0 = it does */
    size_t queued;                    /* unsent bytes at the last look */
    struct event *wait;               /* looks again whether the client took enough */
    char scan[256];                   /* the SSCAN cursor (copying), or the last id sent */
    char cursor[FEED_CURSOR_MAX + 8]; /* the events cursor, from the first page */
    char tmp_key[160];
    char request_id[LG_REQUEST_ID_MAX + 1];
};

/* Snapshots being sent by this instance, every worker together. */
static _Atomic int running;

static void on_page(struct lg_store *st, redisReply *reply, void *arg);

/* Frees SN's memory and gives back its place among the running snapshots. */
static void snapshot_release(struct feed_snapshot *sn)
{
    free(sn);
    atomic_fetch_sub(&running, 1);
}

static void snapshot_unlink(struct feed_snapshot *sn)
{
    if (sn->f == NULL) return;
    lg_list_remove(&sn->link);
}

static void on_dropped(struct lg_store *st, redisReply *reply, void *arg) {}

/* Frees SN (no page in flight), deleting its copy unless the copy is gone. */
static void snapshot_free(struct feed_snapshot *sn, bool drop_copy)
{
    if (drop_copy && sn->f != NULL) {
        const char *argv[] = {"DEL", sn->tmp_key};
        lg_store_argv(sn->f->store, on_dropped, NULL, 2, argv, NULL); /* else it expires */
    }
    snapshot_unlink(sn);
    if (sn->wait) event_free(sn->wait);
    snapshot_release(sn);
}

/* Ends SN's answer: a JSON error before the 200, else the stream (whole when
 * COMPLETE, cut short otherwise). */
static void snapshot_answer(struct feed_snapshot *sn, bool complete, const char *message)
{
    if (sn->req == NULL) return;
    if (!sn->started)
        lg_http_reply_error_body(sn->req, 503, "store_unavailable", message, sn->request_id);
    else {
        if (complete) {
            lg_http_stream_write(sn->req, "]}", 2);
            lg_http_stream_end(sn->req);
        } else
            lg_http_stream_abort(sn->req);
    }
    sn->req = NULL;
}

static void on_client_close(struct lg_http_req *req, void *arg)
{
    struct feed_snapshot *sn = arg;
    if (sn->started)
        lg_http_stream_end(req);
    else
        lg_http_reply(req, 499, NULL, NULL, 0);
    sn->req = NULL;
    if (!sn->inflight) snapshot_free(sn, true);
}

/* Reads SN's next page. 0 or -1. */
static int page_send(struct feed_snapshot *sn)
{
    struct lg_feed *f = sn->f;
    char size[16];
    snprintf(size, sizeof(size), "%d", SNAPSHOT_PAGE);
    const char *argv[] = {f->facilities_key,
                          f->events_key,
                          sn->tmp_key,
                          f->prefix,
                          sn->copying ? "copy" : "read",
                          sn->scan,
                          sn->pages == 0 ? "1" : "0",
                          size,
                          SNAPSHOT_TTL_MS};
    if (lg_store_script(f->store, &snapshot_script, on_page, sn, 3, 9, argv, NULL) < 0) return -1;
    sn->inflight = true;
    return 0;
}

/* The next page once the client has taken what was sent: at once, or when
 * the unsent bytes are below the high water mark again. */
static void next_page(struct feed_snapshot *sn)
{
    size_t queued = sn->started ? lg_http_stream_write(sn->req, NULL, 0) : 0;
    if (queued > SNAPSHOT_HIGH_WATER) {
        int64_t now = lg_mono_ms();
        if (sn->stalled_ms == 0 || queued < sn->queued) sn->stalled_ms = now; /* it reads */
        sn->queued = queued;
        if (now - sn->stalled_ms >= SNAPSHOT_STALL_MS) {
            lg_warn("feed: a snapshot reader took nothing for %d s; dropped",
                    SNAPSHOT_STALL_MS / 1000);
            snapshot_answer(sn, false, NULL);
            snapshot_free(sn, true);
            return;
        }
        struct timeval tv = {0, SNAPSHOT_WAIT_MS * 1000};
        evtimer_add(sn->wait, &tv);
        return;
    }
    sn->stalled_ms = 0;
    if (page_send(sn) < 0) {
        snapshot_answer(sn, false, "the facility store is unreachable");
        snapshot_free(sn, true);
    }
}

static void on_wait(evutil_socket_t fd, short what, void *arg) { next_page(arg); }

/* Writes the facilities of page R, the head first when it is the first.
 * 0, or -1 when memory is short (nothing written). */
static int page_write(struct feed_snapshot *sn, const redisReply *r)
{
    size_t n = (r->elements - REPLY_HEAD) / REPLY_FIELDS;
    struct evbuffer *text = evbuffer_new();
    if (text == NULL) return -1;
    if (!sn->started) {
        json_t *c = json_string(sn->cursor);
        char *ctext = c ? json_dumps(c, JSON_ENCODE_ANY) : NULL;
        json_decref(c);
        evbuffer_add_printf(text, "{\"cursor\":%s,\"facilities\":[", ctext ? ctext : "\"\"");
        free(ctext);
    }
    for (size_t i = 0; i < n; i++) {
        redisReply **e = r->element + REPLY_HEAD + i * REPLY_FIELDS;
        struct lg_facility f;
        json_t *fac = NULL;
        if (lg_store_facility_from(e[0]->str, e + 1, &f) == 1)
            fac = json_pack("{s:s, s:s, s:s, s:b, s:s}", "facility_id", f.id, "account_id",
                            f.account_id, "name", f.name, "included", f.included, "updated_at",
                            e[4]->str);
        char *one = fac ? json_dumps(fac, JSON_COMPACT) : NULL;
        json_decref(fac);
        if (one == NULL) {
            lg_warn("feed: facility %s is not valid text; left out of the snapshot", e[0]->str);
            continue;
        }
        if (sn->any) evbuffer_add(text, ",", 1);
        evbuffer_add(text, one, strlen(one));
        sn->any = true;
        free(one);
    }
    if (!sn->started) {
        lg_http_stream_start(sn->req, 200, JSON_TYPE);
        sn->started = true;
    }
    size_t len = evbuffer_get_length(text);
    if (len > 0) lg_http_stream_write(sn->req, (const char *)evbuffer_pullup(text, -1), len);
    evbuffer_free(text);
    return 0;
}

static bool page_ok(const redisReply *r)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < REPLY_HEAD ||
        (r->elements - REPLY_HEAD) % REPLY_FIELDS != 0)
        return false;
    /* a facility's name and included flag are nil when its hash lacks them */
    for (size_t i = 0; i < r->elements; i++) {
        size_t field = i < REPLY_HEAD ? 0 : (i - REPLY_HEAD) % REPLY_FIELDS;
        int type = r->element[i]->type;
        if (type != REDIS_REPLY_STRING && !(type == REDIS_REPLY_NIL && (field == 2 || field == 3)))
            return false;
    }
    return r->element[1]->len < sizeof(((struct feed_snapshot *)0)->scan) &&
           r->element[2]->len < sizeof(((struct feed_snapshot *)0)->scan);
}

static void on_page(struct lg_store *st, redisReply *reply, void *arg)
{
    struct feed_snapshot *sn = arg;
    sn->inflight = false;
    if (sn->f == NULL || sn->req == NULL) { /* the feed or the client is gone */
        snapshot_free(sn, sn->f != NULL);
        return;
    }
    if (!page_ok(reply)) {
        if (reply != NULL)
            lg_warn("feed: unexpected answer to the snapshot read%s%s",
                    reply->type == REDIS_REPLY_ERROR ? ": " : "",
                    reply->type == REDIS_REPLY_ERROR ? reply->str : "");
        else if (sn->started)
            lg_warn("feed: a snapshot was cut short: the facility store stopped answering");
        snapshot_answer(sn, false, "the facility store is unreachable");
        snapshot_free(sn, true);
        return;
    }
    if (sn->pages++ == 0) snprintf(sn->cursor, sizeof(sn->cursor), "%s", reply->element[0]->str);
    const char *next_scan = reply->element[1]->str, *last = reply->element[2]->str;
    if (sn->copying && next_scan[0] != '\0') {
        snprintf(sn->scan, sizeof(sn->scan), "%s", next_scan);
    } else {
        if (page_write(sn, reply) < 0) {
            snapshot_answer(sn, false, "out of memory");
            snapshot_free(sn, true);
            return;
        }
        sn->copying = false;
        if (last[0] == '\0') { /* that was the last page */
            snapshot_answer(sn, true, NULL);
            snapshot_free(sn, false);
            return;
        }
        snprintf(sn->scan, sizeof(sn->scan), "%s", last);
    }
    if (sn->pages >= SNAPSHOT_MAX_PAGES) {
        snapshot_answer(sn, false, "the facility store is unreachable");
        snapshot_free(sn, true);
        return;
    }
    next_page(sn);
}

void lg_feed_snapshot_serve(struct lg_feed *f, struct lg_http_req *req, const char *rid)
{
    if (lg_http_method(req) == LG_HTTP_HEAD) {
        lg_http_reply(req, 200, JSON_TYPE, NULL, 0);
        return;
    }
    /* Each snapshot holds a sorted copy of the platform's ids in Redis
     * while it is sent: a bounded number at once. */
    if (atomic_fetch_add(&running, 1) >= SNAPSHOT_MAX_RUNNING) {
        atomic_fetch_sub(&running, 1);
        lg_http_set_header(req, "Retry-After", "1");
        lg_http_reply_error_body(req, 429, "rate_limited",
                                 "too many snapshots are being sent: retry shortly", rid);
        return;
    }
    struct feed_snapshot *sn = calloc(1, sizeof(*sn));
    if (sn != NULL) lg_list_init(&sn->link);
    if (sn == NULL || (sn->wait = evtimer_new(f->base, on_wait, sn)) == NULL) {
        if (sn != NULL)
            snapshot_release(sn);
        else
            atomic_fetch_sub(&running, 1);
        lg_http_reply_error_body(req, 503, "store_unavailable", "out of memory", rid);
        return;
    }
    char token[LG_REQUEST_ID_MAX + 1];
    lg_request_id_new(token);
    snprintf(sn->tmp_key, sizeof(sn->tmp_key), "%sfeed:snapshot:%s", f->prefix, token);
    snprintf(sn->scan, sizeof(sn->scan), "0");
    snprintf(sn->request_id, sizeof(sn->request_id), "%s", rid);
    sn->f = f;
    sn->req = req;
    sn->copying = true;
    if (page_send(sn) < 0) {
        event_free(sn->wait);
        snapshot_release(sn);
        lg_http_reply_error_body(req, 503, "store_unavailable", "the facility store is unreachable",
                                 rid);
        return;
    }
    lg_list_push_front(&f->snapshots, &sn->link);
    lg_http_on_close(req, on_client_close, sn);
}

void lg_feed_snapshots_free(struct lg_feed *f)
{
    /* The worker may have freed its store already: nothing here sends a
     * command (the copies expire by themselves). */
    struct lg_list *n, *next;
    LG_LIST_EACH(n, next, &f->snapshots)
    {
        struct feed_snapshot *sn = LG_CONTAINER_OF(n, struct feed_snapshot, link);
        snapshot_answer(sn, false, "the gateway is stopping");
        bool inflight = sn->inflight;
        snapshot_unlink(sn);
        sn->f = NULL; /* orphaned */
        event_free(sn->wait);
        sn->wait = NULL;
        if (!inflight) snapshot_release(sn); /* else its page's answer frees it */
    }
}
