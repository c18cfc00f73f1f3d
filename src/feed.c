/* The facility inclusion feed (SPEC section 8): a snapshot with its cursor,
 * the changes after a cursor, and server-sent event streams, all read from
 * the events stream in Redis through the worker's one command connection.
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
 * Every script is bounded (COUNT) so that none holds Redis, or the command
 * connection's deadline, for long: the snapshot is read in pages of
 * SNAPSHOT_PAGE facilities, the first page in the same script as its
 * cursor. Up to that many facilities the snapshot is one atomic read;
 * beyond, later pages may show changes made after the cursor, which the
 * changes after the cursor repeat, so a consumer still ends with Redis's
 * view. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "lockgate/config.h"
#include "lockgate/event.h"
#include "lockgate/feed.h"
#include "lockgate/http.h"
#include "lockgate/log.h"
#include "lockgate/metrics.h"
#include "lockgate/reply.h"
#include "lockgate/store.h"
#include "lockgate/util.h"

#define CURSOR_MAX         41     /* "<ms>-<seq>", both decimal uint64 */
#define CHANGES_PAGE       "1000" /* entries read per changes request */
#define SNAPSHOT_PAGE      "1000" /* facilities per snapshot script (a few ms of Redis) */
#define SNAPSHOT_MAX_PAGES 100000
#define CATCHUP_PAGE       200  /* entries per backlog page of one stream */
#define TAIL_PAGE          200  /* entries per shared tail read */
#define POLL_MS            1000 /* tail poll and heartbeat check while streams are open */
#define KEY_ID_MAX         72
#define REQUEST_ID_MAX     64
#define SSE_TYPE           "text/event-stream"
#define HEARTBEAT          ": keep-alive\n\n"
#define CHUNK_OVERHEAD     12 /* chunked framing: "%x\r\n" and "\r\n" */
#define RANGE_HEAD         5  /* status, start, last read, stream end, entries read */
#define RANGE_FIELDS       7  /* id, type, facility_id, account_id, included, at, name */

/* A stream id: (ms, seq), compared as a pair of uint64. */
struct sid {
    uint64_t ms, seq;
};

enum stream_state { ST_OPENING, ST_CATCHUP, ST_LIVE };

struct feed_stream {
    struct feed_stream *prev, *next;
    struct lg_feed *f;
    struct lg_http_req *req; /* NULL once answered or ended */
    enum stream_state state;
    struct sid last;             /* the last id sent, or where the stream starts */
    bool fetching;               /* a backlog read is in flight: its op frees a dead stream */
    bool dead;                   /* ended while a read was in flight */
    bool retry;                  /* the last backlog read failed: retry on the next tick */
    bool closed;                 /* its key was closed while opening */
    char cursor[CURSOR_MAX + 1]; /* the start ("" = the newest change) */
    int64_t next_beat_ms;
    uint64_t turn;     /* the feed's turn of the last write */
    size_t turn_bytes; /* bytes written in that turn */
    char key_id[KEY_ID_MAX];
    int64_t expires_at_ms; /* the key's expiry (wall clock), 0 = never */
    char request_id[REQUEST_ID_MAX + 1];
};

enum op_kind { OP_SNAPSHOT, OP_CHANGES, OP_BACKLOG, OP_TAIL };

/* One command in flight. Orphaned (f NULL) when the feed is freed first. */
struct feed_op {
    struct feed_op *prev, *next;
    struct lg_feed *f;
    enum op_kind kind;
    struct lg_http_req *req;     /* snapshot, changes: answered once */
    struct feed_stream *s;       /* backlog */
    bool first;                  /* backlog: the read that decides 200/410 */
    json_t *rows;                /* snapshot: facility id -> facility */
    int pages;                   /* snapshot pages read */
    char cursor[CURSOR_MAX + 8]; /* snapshot: the stream cursor of its first page */
    char request_id[REQUEST_ID_MAX + 1];
};

struct lg_feed {
    struct event_base *base;
    const struct lg_config *cfg;
    struct lg_store *store;
    char events_key[128];
    char facilities_key[128];
    char prefix[64];
    struct feed_stream *streams; /* every open stream, any state */
    int nstreams, nlive;
    struct feed_op *ops;
    struct sid tail; /* last id read by the shared tail read */
    bool tail_valid;
    bool tail_fetching;
    bool tail_again; /* a trigger came while a tail read was in flight */
    uint64_t turn;   /* bumped by every callback that writes to streams */
    struct event *poll;
    struct event *kick; /* zero timer: events of one loop turn share one read */
    bool poll_on;
};

/* ---- scripts ---- */

/* One page of the snapshot. The first page (ARGV[3] "1") also takes the
 * cursor, in the same script, so the snapshot holds everything up to it.
 * ARGV: prefix, SSCAN cursor, first, count. Reply: {stream cursor ("" after
 * the first page), next SSCAN cursor ("0" at the end), then facility_id,
 * account_id, name, included, updated_at per facility}. */
static struct lg_script snapshot_script = {
    .name = "feed_snapshot",
    .source = "local cursor = ''\n"
              "if ARGV[3] == '1' then\n"
              "  cursor = '0-0'\n"
              "  if redis.call('EXISTS', KEYS[2]) == 1 then\n"
              "    local info = redis.call('XINFO', 'STREAM', KEYS[2])\n"
              "    for i = 1, #info - 1, 2 do\n"
              "      if info[i] == 'last-generated-id' then cursor = info[i + 1] end\n"
              "    end\n"
              "  end\n"
              "end\n"
              "local page = redis.call('SSCAN', KEYS[1], ARGV[2], 'COUNT', ARGV[4])\n"
              "local out = {cursor, page[1]}\n"
              "for _, id in ipairs(page[2]) do\n"
              "  local f = redis.call('HMGET', ARGV[1] .. 'fac:' .. id, 'account_id', 'name', "
              "'included',\n"
              "                       'updated_at')\n"
              "  if f[1] then\n"
              "    out[#out + 1] = id; out[#out + 1] = f[1]; out[#out + 1] = f[2] or ''\n"
              "    out[#out + 1] = f[3] or '1'; out[#out + 1] = f[4] or ''\n"
              "  end\n"
              "end\n"
              "return out\n",
};

/* The expiry check and one page of entries after a cursor, atomically.
 * ARGV: cursor (canonical, or "" for the stream's end), count, prefix.
 * Ids compare as (ms, seq) decimal strings without leading zeros.
 * Reply: {"ok"|"expired", start, last id read (start when none), stream end
 * (last-generated-id, "0-0" when there is no stream), entries read, then
 * RANGE_FIELDS strings per facility entry}.
 * A cursor has expired when an entry after it may be gone: XDEL records
 * max-deleted-entry-id, but trimming (MAXLEN ~) does not, so when entries
 * were removed (entries-added > length) a cursor older than the first entry
 * kept has expired too. A cursor that was itself the last entry trimmed is
 * refused as well, which only costs its consumer a needless snapshot; the
 * same holds without Redis 7's counters (Redis 6). */
static struct lg_script range_script = {
    .name = "feed_range",
    .source = "local function parts(id) return string.match(id, '^(%d+)-(%d+)$') end\n"
              "local function less(a, b)\n"
              "  local am, as = parts(a)\n"
              "  local bm, bs = parts(b)\n"
              "  if #am ~= #bm then return #am < #bm end\n"
              "  if am ~= bm then return am < bm end\n"
              "  if #as ~= #bs then return #as < #bs end\n"
              "  return as < bs\n"
              "end\n"
              "local cur, count = ARGV[1], tonumber(ARGV[2])\n"
              "if redis.call('EXISTS', KEYS[1]) == 0 then\n"
              "  if cur == '' then cur = '0-0' end\n"
              "  return {'ok', cur, cur, '0-0', '0'}\n"
              "end\n"
              "local info = redis.call('XINFO', 'STREAM', KEYS[1])\n"
              "local last, maxdel, first, added, len = '0-0', nil, nil, nil, 0\n"
              "for i = 1, #info - 1, 2 do\n"
              "  local k, v = info[i], info[i + 1]\n"
              "  if k == 'last-generated-id' then last = v\n"
              "  elseif k == 'max-deleted-entry-id' then maxdel = v\n"
              "  elseif k == 'entries-added' then added = v\n"
              "  elseif k == 'length' then len = v\n"
              "  elseif k == 'first-entry' and type(v) == 'table' then first = v[1] end\n"
              "end\n"
              "if cur == '' then cur = last end\n"
              "local expired = maxdel ~= nil and less(cur, maxdel)\n"
              "if not expired and (added == nil or added > len) then\n"
              "  expired = less(cur, first or last)\n"
              "end\n"
              "if expired then return {'expired', cur, cur, last, '0'} end\n"
              "local out = {'ok', cur, cur, last, '0'}\n"
              "if cur == '18446744073709551615-18446744073709551615' then return out end\n"
              "local entries = redis.call('XRANGE', KEYS[1], '(' .. cur, '+', 'COUNT', count)\n"
              "for _, e in ipairs(entries) do\n"
              "  local h = {}\n"
              "  for j = 1, #e[2] - 1, 2 do h[e[2][j]] = e[2][j + 1] end\n"
              "  local t = h['type'] or ''\n"
              "  if string.sub(t, 1, 9) == 'facility.' then\n"
              "    local fid = h['facility_id'] or ''\n"
              "    local inc = h['included']\n"
              "    if t == 'facility.deleted' then inc = '0'\n"
              "    elseif inc == nil then\n"
              "      inc = redis.call('HGET', ARGV[3] .. 'fac:' .. fid, 'included') or '0'\n"
              "    end\n"
              "    out[#out + 1] = e[1]; out[#out + 1] = t; out[#out + 1] = fid\n"
              "    out[#out + 1] = h['account_id'] or ''; out[#out + 1] = inc\n"
              "    out[#out + 1] = h['at'] or ''; out[#out + 1] = h['name'] or ''\n"
              "  end\n"
              "end\n"
              "if #entries > 0 then out[3] = entries[#entries][1] end\n"
              "out[5] = tostring(#entries)\n"
              "return out\n",
};

/* ---- stream ids ---- */

static int parse_u64(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20) return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Strict "<ms>-<seq>" of at most CURSOR_MAX bytes. 0 or -1. */
static int sid_parse(const char *s, size_t len, struct sid *id)
{
    if (s == NULL || len == 0 || len > CURSOR_MAX) return -1;
    const char *dash = memchr(s, '-', len);
    if (dash == NULL) return -1;
    size_t mlen = (size_t)(dash - s);
    return parse_u64(s, mlen, &id->ms) == 0 && parse_u64(dash + 1, len - mlen - 1, &id->seq) == 0
               ? 0
               : -1;
}

static int sid_cmp(struct sid a, struct sid b)
{
    if (a.ms != b.ms) return a.ms < b.ms ? -1 : 1;
    if (a.seq != b.seq) return a.seq < b.seq ? -1 : 1;
    return 0;
}

static void sid_format(struct sid id, char out[CURSOR_MAX + 1])
{
    snprintf(out, CURSOR_MAX + 1, "%llu-%llu", (unsigned long long)id.ms,
             (unsigned long long)id.seq);
}

/* ---- answers ---- */

/* The error body of SPEC section 5. The pipeline set X-Request-Id before
 * handing the request over, and lg_http_reply_error would add it a second
 * time when given the id, so the same body goes out through
 * lg_http_reply_json, which leaves the headers alone. */
static void feed_error(struct lg_http_req *req, int status, const char *code, const char *message,
                       const char *request_id)
{
    json_t *body = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", code, "message", message,
                             "request_id", request_id);
    if (body == NULL) {
        lg_http_reply_error(req, status, code, message, NULL);
        return;
    }
    lg_http_reply_json(req, status, body);
}

/* The value of NAME in the query string, raw: 1 found, 0 absent, -1 when
 * given more than once. */
static int query_param(const char *q, const char *name, const char **val, size_t *len)
{
    size_t nlen = strlen(name);
    int found = 0;
    while (q != NULL && *q) {
        const char *end = strchr(q, '&');
        size_t plen = end ? (size_t)(end - q) : strlen(q);
        if (plen > nlen && strncmp(q, name, nlen) == 0 && q[nlen] == '=') {
            if (found) return -1;
            found = 1;
            *val = q + nlen + 1;
            *len = plen - nlen - 1;
        } else if (plen == nlen && strncmp(q, name, nlen) == 0) {
            if (found) return -1;
            found = 1;
            *val = q + nlen;
            *len = 0;
        }
        q = end ? end + 1 : NULL;
    }
    return found;
}

/* The cursor of REQ: the query's (which wins) or Last-Event-ID. 1 with a
 * canonical OUT, 0 when there is none, -1 when malformed. */
static int request_cursor(struct lg_http_req *req, bool header_ok, char out[CURSOR_MAX + 1])
{
    const char *v = NULL;
    size_t len = 0;
    int q = query_param(lg_http_query(req), "cursor", &v, &len);
    if (q < 0) return -1;
    if (q == 0 && header_ok && (v = lg_http_hdr(req, LG_HDR_LAST_EVENT_ID)) != NULL) {
        len = strlen(v);
        q = 1;
    }
    if (q == 0) return 0;
    struct sid id;
    if (sid_parse(v, len, &id) < 0) return -1;
    sid_format(id, out);
    return 1;
}

/* One change as JSON (new reference), or NULL when its fields are not text. */
static json_t *change_json(redisReply **e)
{
    json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:b, s:s}", "id", e[0]->str, "type", e[1]->str,
                          "facility_id", e[2]->str, "account_id", e[3]->str, "included",
                          strcmp(e[4]->str, "1") == 0, "at", e[5]->str);
    if (c != NULL && e[6]->len > 0 && json_object_set_new(c, "name", json_string(e[6]->str)) < 0) {
        json_decref(c);
        return NULL;
    }
    return c;
}

static bool all_strings(const redisReply *r, size_t from)
{
    for (size_t i = from; i < r->elements; i++)
        if (r->element[i]->type != REDIS_REPLY_STRING) return false;
    return true;
}

/* A well-formed range reply: the head, then whole entries, all text. */
static bool range_ok(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements >= RANGE_HEAD &&
           (r->elements - RANGE_HEAD) % RANGE_FIELDS == 0 && all_strings(r, 0);
}

/* ---- ops ---- */

static struct feed_op *op_new(struct lg_feed *f, enum op_kind kind)
{
    struct feed_op *op = calloc(1, sizeof(*op));
    if (op == NULL) return NULL;
    op->f = f;
    op->kind = kind;
    op->next = f->ops;
    if (f->ops) f->ops->prev = op;
    f->ops = op;
    return op;
}

/* Unlinks (unless orphaned) and frees. */
static void op_free(struct feed_op *op)
{
    if (op->f != NULL) {
        if (op->prev)
            op->prev->next = op->next;
        else
            op->f->ops = op->next;
        if (op->next) op->next->prev = op->prev;
    }
    free(op);
}

static void on_range(struct lg_store *st, redisReply *reply, void *arg);

/* Runs the range script from CURSOR for OP. 0, or -1 (OP then freed). */
static int range_send(struct feed_op *op, const char *cursor, const char *count)
{
    struct lg_feed *f = op->f;
    const char *argv[] = {f->events_key, cursor, count, f->prefix};
    if (lg_store_script(f->store, &range_script, on_range, op, 1, 4, argv, NULL) < 0) {
        op_free(op);
        return -1;
    }
    return 0;
}

/* ---- streams ---- */

static void poll_update(struct lg_feed *f);
static void kick(struct lg_feed *f);
static void stream_close(struct feed_stream *s);

static void stream_unlink(struct feed_stream *s)
{
    struct lg_feed *f = s->f;
    if (s->prev)
        s->prev->next = s->next;
    else
        f->streams = s->next;
    if (s->next) s->next->prev = s->prev;
    s->prev = s->next = NULL;
    f->nstreams--;
    lg_metrics_feed_streams(-1);
    if (s->state == ST_LIVE) f->nlive--;
}

/* Ends S: answers its request (once), unlinks it, frees it unless a read
 * still refers to it. S is invalid afterwards. */
static void stream_end(struct feed_stream *s)
{
    struct lg_feed *f = s->f;
    if (s->req != NULL) {
        if (s->state == ST_OPENING)
            lg_http_reply(s->req, 499, NULL, NULL, 0);
        else
            lg_http_stream_end(s->req);
        s->req = NULL;
    }
    stream_unlink(s);
    poll_update(f);
    if (s->fetching)
        s->dead = true;
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

/* The SSE text of one entry (caller frees), or NULL to skip it. */
static char *sse_text(redisReply **e, size_t *len)
{
    for (const char *p = e[1]->str; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || *p == '.' || *p == '_')) return NULL;
    json_t *c = change_json(e);
    char *data = c ? json_dumps(c, JSON_COMPACT) : NULL;
    json_decref(c);
    if (data == NULL) return NULL;
    size_t cap = strlen(e[0]->str) + strlen(e[1]->str) + strlen(data) + 32;
    char *text = malloc(cap);
    if (text != NULL) {
        int n = snprintf(text, cap, "id: %s\nevent: %s\ndata: %s\n\n", e[0]->str, e[1]->str, data);
        *len = (size_t)n;
    }
    free(data);
    return text;
}

/* Sends the facility entries of a range reply R that are newer than S's
 * last id. 0, or -1 when S was ended. */
static int stream_send_entries(struct feed_stream *s, const redisReply *r)
{
    for (size_t i = RANGE_HEAD; i + RANGE_FIELDS <= r->elements; i += RANGE_FIELDS) {
        redisReply **e = r->element + i;
        struct sid id;
        if (sid_parse(e[0]->str, e[0]->len, &id) < 0 || sid_cmp(id, s->last) <= 0) continue;
        size_t len = 0;
        char *text = sse_text(e, &len);
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
static void stream_join(struct feed_stream *s, struct sid end)
{
    struct lg_feed *f = s->f;
    s->state = ST_LIVE;
    f->nlive++;
    if (!f->tail_valid || (f->nlive == 1 && !f->tail_fetching)) {
        f->tail = end;
        f->tail_valid = true;
    }
    if (sid_cmp(end, f->tail) > 0) kick(f);
}

static int backlog_read(struct feed_stream *s, bool first)
{
    struct feed_op *op = op_new(s->f, OP_BACKLOG);
    if (op == NULL) return -1;
    op->s = s;
    op->first = first;
    char cursor[CURSOR_MAX + 1], count[16];
    if (first)
        snprintf(cursor, sizeof(cursor), "%s", s->cursor);
    else
        sid_format(s->last, cursor);
    snprintf(count, sizeof(count), "%d", CATCHUP_PAGE);
    if (range_send(op, cursor, count) < 0) return -1;
    s->fetching = true;
    s->retry = false;
    return 0;
}

/* The first read of a stream: answer 410/503 as JSON, or start the stream.
 * 0 when S is streaming now, -1 when it was ended (and is invalid). */
static int stream_opened(struct feed_stream *s, const redisReply *r)
{
    if (r == NULL || strcmp(r->element[0]->str, "expired") == 0) {
        if (r == NULL)
            feed_error(s->req, 503, "store_unavailable", "the event store is unreachable",
                       s->request_id);
        else
            feed_error(s->req, 410, "cursor_expired",
                       "the cursor is older than the kept changes: take a new snapshot",
                       s->request_id);
        s->req = NULL;
        stream_end(s);
        return -1;
    }
    lg_http_stream_start(s->req, 200, SSE_TYPE);
    s->state = ST_CATCHUP;
    s->next_beat_ms = lg_mono_ms() + (int64_t)s->f->cfg->feed_heartbeat_s * 1000;
    if (s->closed || sid_parse(r->element[1]->str, r->element[1]->len, &s->last) < 0) {
        stream_end(s);
        return -1;
    }
    return 0;
}

/* A backlog page for S arrived (R NULL on failure). */
static void stream_page(struct feed_stream *s, const redisReply *r, bool first)
{
    if (first) {
        if (stream_opened(s, r) < 0) return;
    } else if (r == NULL) {
        s->retry = true; /* the next tick reads again from s->last */
        return;
    } else if (strcmp(r->element[0]->str, "expired") == 0) {
        /* Trimmed past this reader: it reconnects, hears 410, re-snapshots. */
        lg_info("feed: a stream of key %s fell behind the kept changes", s->key_id);
        stream_end(s);
        return;
    }
    if (stream_send_entries(s, r) < 0) return;
    struct sid lastread, end;
    if (sid_parse(r->element[2]->str, r->element[2]->len, &lastread) == 0 &&
        sid_cmp(lastread, s->last) > 0)
        s->last = lastread;
    long nread = strtol(r->element[4]->str, NULL, 10);
    if (nread < CATCHUP_PAGE && sid_parse(r->element[3]->str, r->element[3]->len, &end) == 0) {
        stream_join(s, end);
        return;
    }
    if (backlog_read(s, false) < 0) s->retry = true;
}

/* ---- the shared tail ---- */

static void tail_read(struct lg_feed *f)
{
    if (f->nlive == 0 || !f->tail_valid) return;
    if (f->tail_fetching) {
        f->tail_again = true;
        return;
    }
    struct feed_op *op = op_new(f, OP_TAIL);
    if (op == NULL) return;
    char cursor[CURSOR_MAX + 1], count[16];
    sid_format(f->tail, cursor);
    snprintf(count, sizeof(count), "%d", TAIL_PAGE);
    f->tail_again = false;
    if (range_send(op, cursor, count) == 0) f->tail_fetching = true;
}

static void tail_fanout(struct lg_feed *f, const redisReply *r)
{
    if (strcmp(r->element[0]->str, "expired") == 0) {
        /* More changes than the stream keeps came between two reads. */
        lg_warn("feed: live streams fell behind the kept changes; closing them");
        for (struct feed_stream *s = f->streams, *next; s != NULL; s = next) {
            next = s->next;
            if (s->state == ST_LIVE) stream_end(s);
        }
        f->tail_valid = false;
        return;
    }
    for (size_t i = RANGE_HEAD; i + RANGE_FIELDS <= r->elements; i += RANGE_FIELDS) {
        redisReply **e = r->element + i;
        struct sid id;
        if (sid_parse(e[0]->str, e[0]->len, &id) < 0) continue;
        size_t len = 0;
        char *text = NULL;
        bool built = false;
        for (struct feed_stream *s = f->streams, *next; s != NULL; s = next) {
            next = s->next;
            if (s->state != ST_LIVE || sid_cmp(id, s->last) <= 0) continue;
            if (!built) {
                text = sse_text(e, &len);
                built = true;
            }
            s->last = id;
            if (text != NULL) stream_send(s, text, len);
        }
        free(text);
    }
    struct sid lastread;
    if (sid_parse(r->element[2]->str, r->element[2]->len, &lastread) == 0 &&
        sid_cmp(lastread, f->tail) > 0)
        f->tail = lastread;
    if (strtol(r->element[4]->str, NULL, 10) >= TAIL_PAGE) f->tail_again = true;
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
    int64_t now = lg_mono_ms();
    f->turn++;
    int64_t beat = (int64_t)f->cfg->feed_heartbeat_s * 1000, wall = lg_now_ms();
    for (struct feed_stream *s = f->streams, *next; s != NULL; s = next) {
        next = s->next;
        if (s->expires_at_ms != 0 && wall >= s->expires_at_ms) {
            stream_close(s); /* the key expired: no event says so */
            continue;
        }
        if (s->state == ST_OPENING) continue;
        if (s->state == ST_CATCHUP && s->retry && !s->fetching && backlog_read(s, false) < 0)
            s->retry = true;
        if (now >= s->next_beat_ms) {
            s->next_beat_ms = now + beat;
            stream_send(s, HEARTBEAT, sizeof(HEARTBEAT) - 1);
        }
    }
    tail_read(f);
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

/* ---- replies ---- */

static void on_range(struct lg_store *st, redisReply *reply, void *arg)
{
    struct feed_op *op = arg;
    struct lg_feed *f = op->f;
    const redisReply *r = range_ok(reply) ? reply : NULL;
    if (f != NULL) f->turn++;
    if (reply != NULL && r == NULL)
        lg_warn("feed: unexpected answer to the range read%s%s",
                reply->type == REDIS_REPLY_ERROR ? ": " : "",
                reply->type == REDIS_REPLY_ERROR ? reply->str : "");
    if (op->kind == OP_BACKLOG) {
        struct feed_stream *s = op->s;
        s->fetching = false;
        bool first = op->first;
        op_free(op);
        if (s->dead || f == NULL) {
            free(s);
            return;
        }
        stream_page(s, r, first);
        return;
    }
    if (op->kind == OP_TAIL) {
        op_free(op);
        if (f == NULL) return;
        f->tail_fetching = false;
        if (r != NULL) tail_fanout(f, r);
        if (r != NULL && f->tail_again) kick(f);
        return;
    }
    /* OP_CHANGES */
    struct lg_http_req *req = op->req;
    char rid[REQUEST_ID_MAX + 1];
    snprintf(rid, sizeof(rid), "%s", op->request_id);
    op_free(op);
    if (f == NULL) return; /* answered when the feed was freed */
    if (r == NULL) {
        feed_error(req, 503, "store_unavailable", "the event store is unreachable", rid);
        return;
    }
    if (strcmp(r->element[0]->str, "expired") == 0) {
        feed_error(req, 410, "cursor_expired",
                   "the cursor is older than the kept changes: take a new snapshot", rid);
        return;
    }
    json_t *changes = json_array();
    for (size_t i = RANGE_HEAD; i + RANGE_FIELDS <= r->elements; i += RANGE_FIELDS) {
        json_t *c = change_json(r->element + i);
        if (c != NULL)
            json_array_append_new(changes, c);
        else
            lg_warn("feed: change %s is not valid text; skipped", r->element[i]->str);
    }
    lg_http_reply_json(req, 200,
                       json_pack("{s:s, s:o}", "cursor", r->element[2]->str, "changes", changes));
}

static int by_key(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The snapshot's answer: facilities sorted by id. */
static void snapshot_reply(struct feed_op *op)
{
    size_t n = json_object_size(op->rows), i = 0;
    const char **ids = malloc((n ? n : 1) * sizeof(*ids));
    if (ids == NULL) {
        feed_error(op->req, 503, "store_unavailable", "out of memory", op->request_id);
        return;
    }
    const char *id;
    json_t *v;
    json_object_foreach (op->rows, id, v) ids[i++] = id;
    qsort(ids, n, sizeof(*ids), by_key);
    json_t *list = json_array();
    for (i = 0; i < n; i++) json_array_append(list, json_object_get(op->rows, ids[i]));
    free(ids);
    lg_http_reply_json(op->req, 200,
                       json_pack("{s:s, s:o}", "cursor", op->cursor, "facilities", list));
}

static int snapshot_send(struct feed_op *op, const char *scan, bool first);

/* One snapshot page. Rows are kept by facility id, since a scan may return
 * an id twice; a facility changed after the cursor may show its newer
 * state, which the changes after the cursor then repeat: a consumer that
 * applies them ends with Redis's view either way. */
static void on_snapshot(struct lg_store *st, redisReply *reply, void *arg)
{
    struct feed_op *op = arg;
    if (op->f == NULL) { /* answered when the feed was freed */
        json_decref(op->rows);
        op_free(op);
        return;
    }
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
        (reply->elements - 2) % 5 != 0 || !all_strings(reply, 0)) {
        if (reply != NULL)
            lg_warn("feed: unexpected answer to the snapshot read%s%s",
                    reply->type == REDIS_REPLY_ERROR ? ": " : "",
                    reply->type == REDIS_REPLY_ERROR ? reply->str : "");
        feed_error(op->req, 503, "store_unavailable", "the facility store is unreachable",
                   op->request_id);
        goto done;
    }
    if (op->pages++ == 0) snprintf(op->cursor, sizeof(op->cursor), "%s", reply->element[0]->str);
    for (size_t i = 2; i + 5 <= reply->elements; i += 5) {
        redisReply **e = reply->element + i;
        json_t *fac = json_pack("{s:s, s:s, s:s, s:b, s:s}", "facility_id", e[0]->str, "account_id",
                                e[1]->str, "name", e[2]->str, "included",
                                strcmp(e[3]->str, "1") == 0, "updated_at", e[4]->str);
        if (fac != NULL)
            json_object_set_new(op->rows, e[0]->str, fac);
        else
            lg_warn("feed: facility %s is not valid text; left out of the snapshot", e[0]->str);
    }
    if (strcmp(reply->element[1]->str, "0") != 0 && reply->element[1]->len < 32) {
        if (op->pages < SNAPSHOT_MAX_PAGES) {
            char scan[32];
            snprintf(scan, sizeof(scan), "%s", reply->element[1]->str);
            if (snapshot_send(op, scan, false) == 0) return;
        }
        feed_error(op->req, 503, "store_unavailable", "the facility store is unreachable",
                   op->request_id);
        goto done;
    }
    snapshot_reply(op);
done:
    json_decref(op->rows);
    op_free(op);
}

/* Sends one snapshot page for OP. 0 or -1 (OP untouched). */
static int snapshot_send(struct feed_op *op, const char *scan, bool first)
{
    struct lg_feed *f = op->f;
    const char *argv[] = {f->facilities_key, f->events_key, f->prefix, scan,
                          first ? "1" : "0", SNAPSHOT_PAGE};
    return lg_store_script(f->store, &snapshot_script, on_snapshot, op, 2, 6, argv, NULL);
}

/* ---- serving ---- */

static void on_stream_close(struct lg_http_req *req, void *arg)
{
    struct feed_stream *s = arg;
    /* Still answered exactly once: stream_end releases the request. */
    stream_end(s);
}

static void serve_snapshot(struct lg_feed *f, struct lg_http_req *req, const char *rid)
{
    struct feed_op *op = op_new(f, OP_SNAPSHOT);
    if (op == NULL || (op->rows = json_object()) == NULL) {
        if (op != NULL) op_free(op);
        feed_error(req, 503, "store_unavailable", "out of memory", rid);
        return;
    }
    op->req = req;
    snprintf(op->request_id, sizeof(op->request_id), "%s", rid);
    if (snapshot_send(op, "0", true) < 0) {
        json_decref(op->rows);
        op_free(op);
        feed_error(req, 503, "store_unavailable", "the facility store is unreachable", rid);
    }
}

static void serve_changes(struct lg_feed *f, struct lg_http_req *req, const char *rid)
{
    char cursor[CURSOR_MAX + 1];
    int c = request_cursor(req, false, cursor);
    if (c <= 0) {
        feed_error(req, 400, "bad_request",
                   c == 0 ? "cursor: required" : "cursor: must be <ms>-<seq>", rid);
        return;
    }
    struct feed_op *op = op_new(f, OP_CHANGES);
    if (op == NULL) {
        feed_error(req, 503, "store_unavailable", "out of memory", rid);
        return;
    }
    op->req = req;
    snprintf(op->request_id, sizeof(op->request_id), "%s", rid);
    if (range_send(op, cursor, CHANGES_PAGE) < 0)
        feed_error(req, 503, "store_unavailable", "the event store is unreachable", rid);
}

static void serve_stream(struct lg_feed *f, struct lg_http_req *req, const char *key_id,
                         int64_t expires_at_ms, const char *rid)
{
    char cursor[CURSOR_MAX + 1] = "";
    if (request_cursor(req, true, cursor) < 0) {
        feed_error(req, 400, "bad_request", "cursor: must be <ms>-<seq>", rid);
        return;
    }
    if (lg_http_method(req) == LG_HTTP_HEAD) {
        lg_http_reply(req, 200, SSE_TYPE, NULL, 0);
        return;
    }
    struct feed_stream *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        feed_error(req, 503, "store_unavailable", "out of memory", rid);
        return;
    }
    s->f = f;
    s->req = req;
    s->state = ST_OPENING;
    snprintf(s->cursor, sizeof(s->cursor), "%s", cursor);
    snprintf(s->key_id, sizeof(s->key_id), "%s", key_id);
    s->expires_at_ms = expires_at_ms;
    snprintf(s->request_id, sizeof(s->request_id), "%s", rid);
    s->next = f->streams;
    if (f->streams) f->streams->prev = s;
    f->streams = s;
    f->nstreams++;
    lg_metrics_feed_streams(1);
    poll_update(f);
    lg_http_on_close(req, on_stream_close, s);
    if (backlog_read(s, true) < 0) {
        feed_error(req, 503, "store_unavailable", "the event store is unreachable", rid);
        s->req = NULL;
        stream_end(s);
    }
}

void lg_feed_serve(struct lg_feed *f, struct lg_http_req *req, enum lg_route_kind route,
                   const char *key_id, int64_t expires_at_ms, const char *request_id)
{
    const char *rid = request_id ? request_id : "";
    switch (route) {
    case LG_ROUTE_FEED_SNAPSHOT: serve_snapshot(f, req, rid); break;
    case LG_ROUTE_FEED_CHANGES: serve_changes(f, req, rid); break;
    case LG_ROUTE_FEED_STREAM: serve_stream(f, req, key_id, expires_at_ms, rid); break;
    default: feed_error(req, 404, "not_found", "no such resource", rid); break;
    }
}

void lg_feed_on_event(struct lg_feed *f, const struct lg_event *ev)
{
    if (f == NULL || f->nlive == 0 || strncmp(ev->type, "facility.", 9) != 0) return;
    struct sid id;
    if (f->tail_valid && sid_parse(ev->id, strlen(ev->id), &id) == 0 && sid_cmp(id, f->tail) <= 0)
        return; /* already read */
    kick(f);
}

static void stream_close(struct feed_stream *s)
{
    if (s->state == ST_OPENING)
        s->closed = true; /* ended as soon as its first read answers */
    else
        stream_end(s);
}

void lg_feed_close_key(struct lg_feed *f, const char *key_id)
{
    if (f == NULL || key_id == NULL || key_id[0] == '\0') return;
    for (struct feed_stream *s = f->streams, *next; s != NULL; s = next) {
        next = s->next;
        if (strcmp(s->key_id, key_id) == 0) stream_close(s);
    }
}

void lg_feed_close_all(struct lg_feed *f)
{
    if (f == NULL) return;
    for (struct feed_stream *s = f->streams, *next; s != NULL; s = next) {
        next = s->next;
        stream_close(s);
    }
}

struct lg_feed *lg_feed_new(struct event_base *base, const struct lg_config *cfg,
                            struct lg_store *store)
{
    struct lg_feed *f = calloc(1, sizeof(*f));
    if (f == NULL) return NULL;
    f->base = base;
    f->cfg = cfg;
    f->store = store;
    const char *p = lg_store_prefix(store);
    snprintf(f->prefix, sizeof(f->prefix), "%s", p);
    snprintf(f->events_key, sizeof(f->events_key), "%sevents", p);
    snprintf(f->facilities_key, sizeof(f->facilities_key), "%sfacilities", p);
    if ((f->poll = event_new(base, -1, EV_PERSIST, on_poll, f)) == NULL) goto err;
    if ((f->kick = evtimer_new(base, on_kick, f)) == NULL) goto err;
    return f;
err:
    lg_feed_free(f);
    return NULL;
}

void lg_feed_free(struct lg_feed *f)
{
    if (f == NULL) return;
    while (f->streams != NULL) {
        struct feed_stream *s = f->streams;
        if (s->state == ST_OPENING && s->req != NULL) {
            feed_error(s->req, 503, "store_unavailable", "the gateway is stopping", s->request_id);
            s->req = NULL;
        }
        stream_end(s);
    }
    /* Commands still in flight answer later, or never: orphan them. */
    for (struct feed_op *op = f->ops, *next; op != NULL; op = next) {
        next = op->next;
        op->f = NULL;
        op->prev = op->next = NULL;
        if (op->req != NULL) {
            feed_error(op->req, 503, "store_unavailable", "the gateway is stopping",
                       op->request_id);
            op->req = NULL;
        }
    }
    if (f->poll) event_free(f->poll);
    if (f->kick) event_free(f->kick);
    free(f);
}
