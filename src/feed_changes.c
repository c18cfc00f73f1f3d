/* The feed's reading of the events stream: cursors (stream ids), the one
 * range script that checks a cursor's expiry and reads the entries after
 * it, each entry as a change (JSON) or a server-sent event, and the route
 * that answers the changes after a cursor. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "feed_internal.h"
#include "lockgate/cache.h"
#include "lockgate/http.h"
#include "lockgate/log.h"
#include "lockgate/reply.h"

#define CHANGES_PAGE 1000 /* entries read per changes request */

/* A changes request waiting for Redis. Orphaned (f NULL) when the feed is
 * freed first. */
struct feed_changes_op {
    struct lg_list link; /* in f->changes */
    struct lg_feed *f;
    struct lg_http_req *req; /* answered once */
    char request_id[LG_REQUEST_ID_MAX + 1];
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
 * same holds without Redis 7's counters (Redis 6).
 * An entry without an included flag takes the facility's stored one; where
 * that is missing too, it is read as every reader reads it
 * (lg_facility_included): included. */
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
              "      inc = redis.call('HGET', ARGV[3] .. 'fac:' .. fid, 'included')\n"
              "      inc = inc or '" LG_FACILITY_INCLUDED_ABSENT "'\n"
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

int lg_feed_sid_parse(const char *s, size_t len, struct lg_feed_sid *id)
{
    if (s == NULL || len == 0 || len > FEED_CURSOR_MAX) return -1;
    const char *dash = memchr(s, '-', len);
    if (dash == NULL) return -1;
    size_t mlen = (size_t)(dash - s);
    return parse_u64(s, mlen, &id->ms) == 0 && parse_u64(dash + 1, len - mlen - 1, &id->seq) == 0
               ? 0
               : -1;
}

int lg_feed_sid_cmp(struct lg_feed_sid a, struct lg_feed_sid b)
{
    if (a.ms != b.ms) return a.ms < b.ms ? -1 : 1;
    if (a.seq != b.seq) return a.seq < b.seq ? -1 : 1;
    return 0;
}

void lg_feed_sid_format(struct lg_feed_sid id, char out[FEED_CURSOR_MAX + 1])
{
    snprintf(out, FEED_CURSOR_MAX + 1, "%llu-%llu", (unsigned long long)id.ms,
             (unsigned long long)id.seq);
}

/* ---- requests ---- */

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

int lg_feed_request_cursor(struct lg_http_req *req, bool header_ok, char out[FEED_CURSOR_MAX + 1])
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
    struct lg_feed_sid id;
    if (lg_feed_sid_parse(v, len, &id) < 0) return -1;
    lg_feed_sid_format(id, out);
    return 1;
}

/* ---- entries ---- */

/* One change as JSON (new reference), or NULL when its fields are not text. */
static json_t *change_json(redisReply **e)
{
    json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:b, s:s}", "id", e[0]->str, "type", e[1]->str,
                          "facility_id", e[2]->str, "account_id", e[3]->str, "included",
                          lg_facility_included(e[4]->str), "at", e[5]->str);
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

bool lg_feed_range_ok(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements >= FEED_RANGE_HEAD &&
           (r->elements - FEED_RANGE_HEAD) % FEED_RANGE_FIELDS == 0 && all_strings(r, 0);
}

char *lg_feed_sse_text(redisReply **e, size_t *len)
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

int lg_feed_range(struct lg_feed *f, const char *cursor, int count, lg_store_cb *cb, void *arg)
{
    char n[16];
    snprintf(n, sizeof(n), "%d", count);
    const char *argv[] = {f->events_key, cursor, n, f->prefix};
    return lg_store_script(f->store, &range_script, cb, arg, 1, 4, argv, NULL);
}

bool lg_feed_range_expired(const redisReply *r)
{
    return strcmp(r->element[0]->str, "expired") == 0;
}

/* ---- the changes route ---- */

static void changes_unlink(struct feed_changes_op *op)
{
    if (op->f == NULL) return;
    lg_list_remove(&op->link);
}

static void on_changes(struct lg_store *st, redisReply *reply, void *arg)
{
    struct feed_changes_op *op = arg;
    struct lg_http_req *req = op->req;
    char rid[LG_REQUEST_ID_MAX + 1];
    snprintf(rid, sizeof(rid), "%s", op->request_id);
    changes_unlink(op);
    bool orphan = op->f == NULL;
    free(op);
    if (orphan) return; /* answered when the feed was freed */
    const redisReply *r = lg_feed_range_ok(reply) ? reply : NULL;
    if (r == NULL) {
        if (reply != NULL)
            lg_warn("feed: unexpected answer to the changes read%s%s",
                    reply->type == REDIS_REPLY_ERROR ? ": " : "",
                    reply->type == REDIS_REPLY_ERROR ? reply->str : "");
        lg_http_reply_error_body(req, 503, "store_unavailable", "the event store is unreachable",
                                 rid);
        return;
    }
    if (lg_feed_range_expired(r)) {
        lg_http_reply_error_body(req, 410, "cursor_expired",
                                 "the cursor is older than the kept changes: take a new snapshot",
                                 rid);
        return;
    }
    json_t *changes = json_array();
    for (size_t i = FEED_RANGE_HEAD; i + FEED_RANGE_FIELDS <= r->elements; i += FEED_RANGE_FIELDS) {
        json_t *c = change_json(r->element + i);
        if (c != NULL)
            json_array_append_new(changes, c);
        else
            lg_warn("feed: change %s is not valid text; skipped", r->element[i]->str);
    }
    lg_http_reply_json(req, 200,
                       json_pack("{s:s, s:o}", "cursor", r->element[2]->str, "changes", changes));
}

void lg_feed_changes_serve(struct lg_feed *f, struct lg_http_req *req, const char *rid)
{
    char cursor[FEED_CURSOR_MAX + 1];
    int c = lg_feed_request_cursor(req, false, cursor);
    if (c <= 0) {
        lg_http_reply_error_body(req, 400, "bad_request",
                                 c == 0 ? "cursor: required" : "cursor: must be <ms>-<seq>", rid);
        return;
    }
    struct feed_changes_op *op = calloc(1, sizeof(*op));
    if (op != NULL) lg_list_init(&op->link);
    if (op == NULL) {
        lg_http_reply_error_body(req, 503, "store_unavailable", "out of memory", rid);
        return;
    }
    op->f = f;
    op->req = req;
    snprintf(op->request_id, sizeof(op->request_id), "%s", rid);
    if (lg_feed_range(f, cursor, CHANGES_PAGE, on_changes, op) < 0) {
        free(op);
        lg_http_reply_error_body(req, 503, "store_unavailable", "the event store is unreachable",
                                 rid);
        return;
    }
    lg_list_push_front(&f->changes, &op->link);
}

void lg_feed_changes_free(struct lg_feed *f)
{
    /* Their reads answer later (the store runs every callback): orphan them. */
    struct lg_list *n, *next;
    LG_LIST_EACH(n, next, &f->changes)
    {
        struct feed_changes_op *op = LG_CONTAINER_OF(n, struct feed_changes_op, link);
        lg_http_reply_error_body(op->req, 503, "store_unavailable", "the gateway is stopping",
                                 op->request_id);
        op->req = NULL;
        op->f = NULL;
        lg_list_remove(&op->link);
    }
}
