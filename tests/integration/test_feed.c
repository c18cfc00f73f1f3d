/* Integration tests of the facility inclusion feed (SPEC section 8) against
 * the real lockgate, a real Redis and the admin API: the snapshot and its
 * cursor, changes while writes go on, SSE streams (order, resume with
 * Last-Event-ID, 200 readers at once, heartbeats, slow readers), cursor
 * expiry, role checks, closing a disabled key's streams, and the sample
 * consumer scripts/feed-consumer.sh. */
#include <arpa/inet.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>

#include "itest.h"
#include "raw.h"

#define EVENTS_KEY     "lg:events"
#define MANY_STREAMS   200
#define CLOSE_BOUND_MS 5000 /* a disabled key's streams end within this */

struct cred {
    char id[64];
    char secret[128];
};

/* ---- admin API ---- */

static json_t *admin_ok(const char *method, const char *path, const char *body, long want)
{
    long status = 0;
    json_t *j = itest_admin(method, path, body, &status);
    ck_assert_msg(status == want, "%s %s: HTTP %ld, expected %ld", method, path, status, want);
    return j;
}

static void make_account(char out[64]) { itest_account(out, "Feed Storage Co"); }

static void make_facility(const char *acct, const char *name, char out[72])
{
    itest_facility(out, acct, name, NULL);
}

static void set_included(const char *fac, bool included)
{
    char path[128];
    snprintf(path, sizeof(path), "/admin/v1/facilities/%s", fac);
    json_decref(
        admin_ok("PATCH", path, included ? "{\"included\":true}" : "{\"included\":false}", 200));
}

static void rename_facility(const char *fac, const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "/admin/v1/facilities/%s", fac);
    json_t *body = json_pack("{s:s}", "name", name);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(admin_ok("PATCH", path, text, 200));
    free(text);
    json_decref(body);
}

static void delete_facility(const char *fac)
{
    char path[128];
    snprintf(path, sizeof(path), "/admin/v1/facilities/%s", fac);
    json_decref(admin_ok("DELETE", path, NULL, 204));
}

static void cred_from(json_t *j, struct cred *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->id, sizeof(c->id), "%s", itest_json_str(j, "key_id"));
    snprintf(c->secret, sizeof(c->secret), "%s", itest_json_str(j, "secret"));
    ck_assert_str_ne(c->id, "");
    ck_assert_str_ne(c->secret, "");
    json_decref(j);
}

static void make_feed_key(struct cred *c)
{
    cred_from(admin_ok("POST", "/admin/v1/feed-keys", "{\"name\":\"OverlockRelease\"}", 201), c);
}

static void make_api_key(const char *acct, struct cred *c)
{
    char path[128];
    snprintf(path, sizeof(path), "/admin/v1/accounts/%s/keys", acct);
    cred_from(admin_ok("POST", path, "{\"name\":\"Call Center\",\"all_facilities\":true}", 201), c);
}

static void key_action(const struct cred *c, const char *action)
{
    char path[128];
    snprintf(path, sizeof(path), "/admin/v1/keys/%s/%s", c->id, action);
    json_decref(admin_ok("POST", path, NULL, 200));
}

/* ---- the public API ---- */

static void basic_auth(const struct cred *c, char *out, size_t n)
{
    char plain[200];
    unsigned char b64[300];
    int len = snprintf(plain, sizeof(plain), "%s:%s", c->id, c->secret);
    EVP_EncodeBlock(b64, (const unsigned char *)plain, len);
    snprintf(out, n, "Authorization: Basic %s", (const char *)b64);
}

/* GET PATHQ on instance 0 with C's credentials (and EXTRA, a header line or NULL). */
static long feed_get(const struct cred *c, const char *pathq, const char *extra,
                     struct itest_resp *r)
{
    char url[1024], auth[400];
    snprintf(url, sizeof(url), "%s%s", IT->lg[0].url, pathq);
    basic_auth(c, auth, sizeof(auth));
    const char *headers[] = {auth, extra, NULL};
    if (itest_http("GET", url, headers, NULL, 0, NULL, r) < 0)
        ck_abort_msg("GET %s: %s", pathq, r->error);
    return r->status;
}

static int count_headers(const struct itest_resp *r, const char *name)
{
    int n = 0;
    size_t len = strlen(name);
    for (const char *p = r->headers; p != NULL && *p; p = strstr(p, "\r\n")) {
        if (p[0] == '\r') p += 2;
        if (strncasecmp(p, name, len) == 0 && p[len] == ':') n++;
    }
    return n;
}

/* A JSON error answer: STATUS, CODE, the request id in body and header, once. */
static void check_error(struct itest_resp *r, long status, const char *code, const char *what)
{
    ck_assert_msg(r->status == status, "%s: HTTP %ld, expected %ld (%s)", what, r->status, status,
                  r->body);
    json_t *j = json_loads(r->body, 0, NULL);
    ck_assert_msg(j != NULL, "%s: body is not JSON: %s", what, r->body);
    json_t *err = json_object_get(j, "error");
    ck_assert_str_eq(itest_json_str(err, "code"), code);
    char *rid = itest_resp_header(r, "X-Request-Id");
    ck_assert_msg(rid != NULL, "%s: no X-Request-Id", what);
    ck_assert_str_eq(itest_json_str(err, "request_id"), rid);
    ck_assert_int_eq(count_headers(r, "X-Request-Id"), 1);
    free(rid);
    json_decref(j);
}

static json_t *get_json(const struct cred *c, const char *pathq)
{
    struct itest_resp r;
    long st = feed_get(c, pathq, NULL, &r);
    ck_assert_msg(st == 200, "GET %s: HTTP %ld: %s", pathq, st, r.body);
    ck_assert_int_eq(count_headers(&r, "X-Request-Id"), 1);
    json_t *j = json_loads(r.body, 0, NULL);
    ck_assert_msg(j != NULL, "GET %s: not JSON: %s", pathq, r.body);
    itest_resp_free(&r);
    return j;
}

/* ---- Redis ---- */

struct sid {
    unsigned long long ms, seq;
};

static struct sid sid_of(const char *s)
{
    struct sid id = {0, 0};
    ck_assert_msg(sscanf(s, "%llu-%llu", &id.ms, &id.seq) == 2, "not a stream id: %s", s);
    return id;
}

static int sid_cmp(const char *a, const char *b)
{
    struct sid x = sid_of(a), y = sid_of(b);
    if (x.ms != y.ms) return x.ms < y.ms ? -1 : 1;
    if (x.seq != y.seq) return x.seq < y.seq ? -1 : 1;
    return 0;
}

/* The newest id of the events stream ("0-0" when empty). */
static void last_event_id(char out[48])
{
    redisContext *c = itest_redis();
    redisReply *r = itest_redis_cmd(c, "XREVRANGE %s + - COUNT 1", EVENTS_KEY);
    snprintf(out, 48, "0-0");
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1)
        snprintf(out, 48, "%s", r->element[0]->element[0]->str);
    freeReplyObject(r);
    redisFree(c);
}

/* The facility events after CURSOR, from Redis: [{"id","type","facility_id",...}]. */
static json_t *facility_events_after(const char *cursor)
{
    redisContext *c = itest_redis();
    char start[64];
    snprintf(start, sizeof(start), "(%s", cursor);
    json_t *all = itest_stream(c, EVENTS_KEY, start), *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach (all, i, e) {
        if (strncmp(itest_json_str(e, "type"), "facility.", 9) == 0) json_array_append(out, e);
    }
    json_decref(all);
    redisFree(c);
    return out;
}

/* ---- a consumer's view: facility id -> {included, name, account_id} ---- */

static void view_apply(json_t *view, json_t *change)
{
    const char *fac = itest_json_str(change, "facility_id");
    ck_assert_str_ne(fac, "");
    if (strcmp(itest_json_str(change, "type"), "facility.deleted") == 0) {
        json_object_del(view, fac);
        return;
    }
    json_t *v = json_object_get(view, fac);
    json_t *inc = json_object_get(change, "included");
    ck_assert_msg(json_is_boolean(inc), "included is not a boolean");
    json_t *name = json_object_get(change, "name");
    json_t *nv = json_pack("{s:O, s:s, s:s}", "included", inc, "account_id",
                           itest_json_str(change, "account_id"), "name",
                           name ? json_string_value(name) : itest_json_str(v, "name"));
    json_object_set_new(view, fac, nv);
}

static json_t *view_from_snapshot(json_t *snap)
{
    json_t *view = json_object();
    size_t i;
    json_t *f;
    json_array_foreach (json_object_get(snap, "facilities"), i, f) {
        json_object_set_new(view, itest_json_str(f, "facility_id"),
                            json_pack("{s:O, s:s, s:s}", "included", json_object_get(f, "included"),
                                      "account_id", itest_json_str(f, "account_id"), "name",
                                      itest_json_str(f, "name")));
    }
    return view;
}

/* Redis's own view, read from the facility hashes. */
static json_t *view_from_redis(void)
{
    redisContext *c = itest_redis();
    redisReply *ids = itest_redis_cmd(c, "SMEMBERS lg:facilities");
    json_t *view = json_object();
    for (size_t i = 0; i < ids->elements; i++) {
        redisReply *h =
            itest_redis_cmd(c, "HMGET lg:fac:%s included name account_id", ids->element[i]->str);
        json_object_set_new(view, ids->element[i]->str,
                            json_pack("{s:b, s:s, s:s}", "included",
                                      strcmp(h->element[0]->str, "1") == 0, "account_id",
                                      h->element[2]->str, "name", h->element[1]->str));
        freeReplyObject(h);
    }
    freeReplyObject(ids);
    redisFree(c);
    return view;
}

/* Compares and frees both. */
static void views_equal(json_t *mine, json_t *redis)
{
    char *a = json_dumps(mine, JSON_SORT_KEYS | JSON_COMPACT);
    char *b = json_dumps(redis, JSON_SORT_KEYS | JSON_COMPACT);
    ck_assert_msg(strcmp(a, b) == 0, "the consumer's view differs from Redis:\n%s\n%s", a, b);
    free(a);
    free(b);
    json_decref(mine);
    json_decref(redis);
}

/* ---- SSE readers on one curl multi ---- */

struct sse_event {
    char id[48];
    char type[40];
    json_t *data;
    int64_t at_ms;
};

struct sse {
    CURL *h;
    struct curl_slist *hl;
    char *raw; /* what is not parsed yet */
    size_t len, cap, off;
    struct sse_event *ev;
    int nev, evcap;
    int comments;
    char comment[64]; /* the last comment line */
    int done;         /* the transfer ended (the server closed or ended the stream) */
    int malformed;
    long status;
};

static CURLM *multi;

/* Parses the complete events in the buffer (blocks ending in a blank line). */
static void sse_parse(struct sse *s)
{
    char *end;
    while ((end = strstr(s->raw + s->off, "\n\n")) != NULL) {
        char *block = s->raw + s->off;
        *end = '\0';
        s->off = (size_t)(end - s->raw) + 2;
        struct sse_event e = {{0}, {0}, NULL, itest_mono_ms()};
        int comment = 0;
        for (char *line = strtok(block, "\n"); line != NULL; line = strtok(NULL, "\n")) {
            if (line[0] == ':') {
                comment = 1;
                snprintf(s->comment, sizeof(s->comment), "%s", line);
            } else if (strncmp(line, "id: ", 4) == 0)
                snprintf(e.id, sizeof(e.id), "%s", line + 4);
            else if (strncmp(line, "event: ", 7) == 0)
                snprintf(e.type, sizeof(e.type), "%s", line + 7);
            else if (strncmp(line, "data: ", 6) == 0 && e.data == NULL)
                e.data = json_loads(line + 6, 0, NULL);
            else
                s->malformed++;
        }
        if (comment && e.id[0] == '\0') {
            s->comments++;
            continue;
        }
        if (e.id[0] == '\0' || e.type[0] == '\0' || e.data == NULL) {
            s->malformed++;
            json_decref(e.data);
            continue;
        }
        if (s->nev == s->evcap) {
            s->evcap = s->evcap ? s->evcap * 2 : 16;
            s->ev = realloc(s->ev, (size_t)s->evcap * sizeof(*s->ev));
            ck_assert_ptr_nonnull(s->ev);
        }
        s->ev[s->nev++] = e;
    }
}

static size_t sse_on_data(char *ptr, size_t size, size_t n, void *arg)
{
    struct sse *s = arg;
    size_t add = size * n;
    if (s->len + add + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + add + 1) cap *= 2;
        char *nr = realloc(s->raw, cap);
        if (nr == NULL) return 0;
        s->raw = nr;
        s->cap = cap;
    }
    memcpy(s->raw + s->len, ptr, add);
    s->len += add;
    s->raw[s->len] = '\0';
    sse_parse(s);
    /* keep only what is not parsed yet */
    memmove(s->raw, s->raw + s->off, s->len - s->off + 1);
    s->len -= s->off;
    s->off = 0;
    return add;
}

/* Opens a stream reader with C's credentials; QUERY ("" or "?cursor=...")
 * and LAST_ID (NULL for none) as given. */
static void sse_open(struct sse *s, const struct cred *c, const char *query, const char *last_id)
{
    memset(s, 0, sizeof(*s));
    if (multi == NULL) multi = curl_multi_init();
    char url[1024], auth[400];
    snprintf(url, sizeof(url), "%s/v1/feed/facilities/stream%s", IT->lg[0].url, query);
    basic_auth(c, auth, sizeof(auth));
    s->hl = curl_slist_append(NULL, auth);
    s->hl = curl_slist_append(s->hl, "Accept: text/event-stream");
    if (last_id != NULL) {
        char lei[128];
        snprintf(lei, sizeof(lei), "Last-Event-ID: %s", last_id);
        s->hl = curl_slist_append(s->hl, lei);
    }
    s->raw = calloc(1, 1);
    s->h = curl_easy_init();
    curl_easy_setopt(s->h, CURLOPT_URL, url);
    curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, s->hl);
    curl_easy_setopt(s->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(s->h, CURLOPT_CONNECTTIMEOUT_MS, (long)IT->timeout_ms);
    curl_easy_setopt(s->h, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, sse_on_data);
    curl_easy_setopt(s->h, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(s->h, CURLOPT_PRIVATE, s);
    curl_multi_add_handle(multi, s->h);
}

/* Drives every open reader for up to MS milliseconds. */
static void sse_pump(int ms)
{
    int64_t end = itest_mono_ms() + ms;
    do {
        int running = 0;
        curl_multi_perform(multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE) continue;
            struct sse *s = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            if (s != NULL) s->done = 1;
        }
        curl_multi_poll(multi, NULL, 0, 20, NULL);
    } while (itest_mono_ms() < end);
}

static long sse_status(struct sse *s)
{
    if (s->status == 0) curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &s->status);
    return s->status;
}

/* Pumps until PRED(ARG) holds; fails the test after TIMEOUT_MS. */
static void sse_until(int (*pred)(void *), void *arg, int timeout_ms, const char *what)
{
    int64_t end = itest_mono_ms() + timeout_ms;
    while (!pred(arg)) {
        ck_assert_msg(itest_mono_ms() < end, "timed out after %d ms waiting for %s", timeout_ms,
                      what);
        sse_pump(10);
    }
}

static void sse_close(struct sse *s)
{
    if (s->h == NULL) return;
    curl_multi_remove_handle(multi, s->h);
    curl_easy_cleanup(s->h);
    curl_slist_free_all(s->hl);
    for (int i = 0; i < s->nev; i++) json_decref(s->ev[i].data);
    free(s->ev);
    free(s->raw);
    s->h = NULL;
}

struct sse_wait {
    struct sse *s;
    int n;
};

static int has_status(void *arg)
{
    struct sse_wait *w = arg;
    for (int i = 0; i < w->n; i++)
        if (sse_status(&w->s[i]) == 0 && !w->s[i].done) return 0;
    return 1;
}

static int has_events(void *arg)
{
    struct sse_wait *w = arg;
    return w->s->nev >= w->n || w->s->done;
}

/* Opens N readers and waits until each has its answer's status. */
static void sse_ready(struct sse *s, int n)
{
    struct sse_wait w = {s, n};
    sse_until(has_status, &w, IT->timeout_ms, "stream answers");
    for (int i = 0; i < n; i++)
        ck_assert_msg(sse_status(&s[i]) == 200, "stream %d: HTTP %ld: %s", i, sse_status(&s[i]),
                      s[i].raw);
}

static void sse_wait_events(struct sse *s, int n)
{
    struct sse_wait w = {s, n};
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    while (!has_events(&w)) {
        ck_assert_msg(itest_mono_ms() < end, "timed out waiting for %d stream events (got %d)", n,
                      s->nev);
        sse_pump(10);
    }
    ck_assert_msg(s->nev >= n, "the stream ended after %d of %d events", s->nev, n);
}

/* Each event's SSE fields agree with its data, and ids only grow. */
static void check_events_wellformed(struct sse *s)
{
    ck_assert_int_eq(s->malformed, 0);
    for (int i = 0; i < s->nev; i++) {
        struct sse_event *e = &s->ev[i];
        ck_assert_str_eq(itest_json_str(e->data, "id"), e->id);
        ck_assert_str_eq(itest_json_str(e->data, "type"), e->type);
        ck_assert(strncmp(e->type, "facility.", 9) == 0);
        ck_assert(json_is_boolean(json_object_get(e->data, "included")));
        ck_assert_str_ne(itest_json_str(e->data, "facility_id"), "");
        ck_assert_str_ne(itest_json_str(e->data, "at"), "");
        if (i > 0)
            ck_assert_msg(sid_cmp(s->ev[i - 1].id, e->id) < 0, "ids out of order: %s then %s",
                          s->ev[i - 1].id, e->id);
    }
}

/* The stream's events from index FROM are exactly EXPECTED (Redis entries). */
static void check_events_match(struct sse *s, int from, json_t *expected)
{
    ck_assert_msg((size_t)(s->nev - from) == json_array_size(expected),
                  "%d events received, %zu expected", s->nev - from, json_array_size(expected));
    for (int i = from; i < s->nev; i++) {
        json_t *x = json_array_get(expected, (size_t)(i - from));
        ck_assert_str_eq(s->ev[i].id, itest_json_str(x, "id"));
        ck_assert_str_eq(s->ev[i].type, itest_json_str(x, "type"));
        ck_assert_str_eq(itest_json_str(s->ev[i].data, "facility_id"),
                         itest_json_str(x, "facility_id"));
        ck_assert_int_eq(json_is_true(json_object_get(s->ev[i].data, "included")),
                         strcmp(itest_json_str(x, "type"), "facility.deleted") != 0 &&
                             strcmp(itest_json_str(x, "included"), "1") == 0);
    }
}

/* ---- fixtures ---- */

/* The options every fixture shares: no upstream, limits out of the way. */
static struct itest_opts feed_opts(void)
{
    struct itest_opts o = {0};
    o.no_upstream = 1;
    o.rate_per_sec = 1000000;
    o.burst = 1000000;
    return o;
}

static void setup_with(int redis_timeout_ms)
{
    struct itest_opts o = feed_opts();
    o.feed_heartbeat_s = 1;
    o.feed_max_streams_per_key = MANY_STREAMS; /* many_streams opens that many with one key */
    o.redis_timeout_ms = redis_timeout_ms;
    itest_start(&o);
}

/* Dozens of streams catching up at once queue their range reads on one
 * worker's Redis connection: the harness's 250 ms deadline scales with a
 * slowed-down lockgate, which would miss it for slowness alone. */
static void setup(void) { setup_with(itest_scaled_ms(250)); }

/* The outage test keeps the default deadline however slow lockgate runs: its
 * failed reads must fit in the pause, well within the subscription's silence. */
static void setup_down(void) { setup_with(0); }

static void setup_expiry(void)
{
    struct itest_opts o = feed_opts();
    o.events_maxlen = 100; /* the smallest the config allows */
    itest_start(&o);
}

static void setup_slow(void)
{
    struct itest_opts o = feed_opts();
    o.feed_max_backlog_kib = 2048;
    itest_start(&o);
}

/* Two workers and the default [feed] options. */
static void setup_workers(void)
{
    struct itest_opts o = feed_opts();
    o.workers = 2;
    itest_start(&o);
}

static void teardown(void) { itest_stop(); }

/* ---- tests ---- */

START_TEST(snapshot_shape_and_cursor)
{
    char acct[64], f[3][72];
    make_account(acct);
    make_facility(acct, "Zeta Storage", f[0]);
    make_facility(acct, "Alpha Storage", f[1]);
    make_facility(acct, "Mid \"Quoted\" Storage", f[2]);
    set_included(f[1], false);
    struct cred feed;
    make_feed_key(&feed);

    char last[48];
    last_event_id(last);
    json_t *snap = get_json(&feed, "/v1/feed/facilities");
    ck_assert_str_eq(itest_json_str(snap, "cursor"), last);
    json_t *list = json_object_get(snap, "facilities");
    ck_assert(json_is_array(list));
    /* every facility of every account, sorted by id, as Redis holds them */
    views_equal(view_from_snapshot(snap), view_from_redis());
    size_t i;
    json_t *fac;
    const char *prev = "";
    int seen = 0;
    json_array_foreach (list, i, fac) {
        ck_assert_int_eq(json_object_size(fac), 5);
        const char *id = itest_json_str(fac, "facility_id");
        ck_assert_msg(strcmp(prev, id) < 0, "not sorted: %s before %s", prev, id);
        prev = id;
        ck_assert(json_is_boolean(json_object_get(fac, "included")));
        ck_assert_str_ne(itest_json_str(fac, "updated_at"), "");
        for (int k = 0; k < 3; k++) {
            if (strcmp(id, f[k]) != 0) continue;
            seen++;
            ck_assert_str_eq(itest_json_str(fac, "account_id"), acct);
            ck_assert_int_eq(json_is_true(json_object_get(fac, "included")), k != 1);
        }
    }
    ck_assert_int_eq(seen, 3);

    /* nothing after the snapshot's cursor yet */
    char pathq[128];
    snprintf(pathq, sizeof(pathq), "/v1/feed/facilities/changes?cursor=%s", last);
    json_t *ch = get_json(&feed, pathq);
    ck_assert_str_eq(itest_json_str(ch, "cursor"), last);
    ck_assert_int_eq(json_array_size(json_object_get(ch, "changes")), 0);
    json_decref(ch);
    json_decref(snap);
}
END_TEST

/* A facility hash without its name or included flag (lockgate writes both;
 * older data may not) reads as every reader reads it: included, named "". */
START_TEST(snapshot_defaults)
{
    char acct[64], f[72];
    make_account(acct);
    make_facility(acct, "Old Record", f);
    redisContext *c = itest_redis();
    freeReplyObject(itest_redis_cmd(c, "HDEL lg:fac:%s included name", f));
    redisFree(c);
    struct cred feed;
    make_feed_key(&feed);
    json_t *snap = get_json(&feed, "/v1/feed/facilities");
    size_t i;
    json_t *fac, *found = NULL;
    json_array_foreach (json_object_get(snap, "facilities"), i, fac)
        if (strcmp(itest_json_str(fac, "facility_id"), f) == 0) found = fac;
    ck_assert_msg(found != NULL,
                  "a facility without name or included flag left out of the snapshot");
    ck_assert_str_eq(itest_json_str(found, "account_id"), acct);
    ck_assert_str_eq(itest_json_str(found, "name"), "");
    ck_assert(json_is_true(json_object_get(found, "included")));
    json_decref(snap);
}
END_TEST

/* A change whose entry has no included flag, of a facility whose hash has
 * none either, reads as the snapshot reads that facility: included. With
 * the flag in the hash, the change takes it. */
START_TEST(changes_defaults)
{
    char acct[64], f[72], g[72];
    make_account(acct);
    make_facility(acct, "Old Record", f);
    make_facility(acct, "Old Excluded", g);
    set_included(g, false);
    struct cred feed;
    make_feed_key(&feed);
    char last[48];
    last_event_id(last);
    redisContext *c = itest_redis();
    freeReplyObject(itest_redis_cmd(c, "HDEL lg:fac:%s included", f));
    const char *ids[2] = {f, g};
    for (int i = 0; i < 2; i++)
        freeReplyObject(itest_redis_cmd(c,
                                        "XADD %s * type facility.updated account_id %s "
                                        "facility_id %s at 2026-01-01T00:00:00.000Z",
                                        EVENTS_KEY, acct, ids[i]));
    redisFree(c);
    char pathq[128];
    snprintf(pathq, sizeof(pathq), "/v1/feed/facilities/changes?cursor=%s", last);
    json_t *ch = get_json(&feed, pathq);
    json_t *changes = json_object_get(ch, "changes");
    ck_assert_int_eq(json_array_size(changes), 2);
    json_t *c0 = json_array_get(changes, 0), *c1 = json_array_get(changes, 1);
    ck_assert_str_eq(itest_json_str(c0, "facility_id"), f);
    ck_assert_msg(json_is_true(json_object_get(c0, "included")),
                  "a change without any included flag is not included, as the snapshot says");
    ck_assert_str_eq(itest_json_str(c1, "facility_id"), g);
    ck_assert(json_is_false(json_object_get(c1, "included")));
    json_decref(ch);
    /* the snapshot agrees */
    json_t *snap = get_json(&feed, "/v1/feed/facilities");
    size_t i;
    json_t *fac;
    int seen = 0;
    json_array_foreach (json_object_get(snap, "facilities"), i, fac) {
        const char *id = itest_json_str(fac, "facility_id");
        if (strcmp(id, f) != 0 && strcmp(id, g) != 0) continue;
        seen++;
        ck_assert_int_eq(json_is_true(json_object_get(fac, "included")), strcmp(id, f) == 0);
    }
    ck_assert_int_eq(seen, 2);
    json_decref(snap);
}
END_TEST

struct writer {
    char f[6][72];
    char acct[64];
    int pace_ms; /* pause after each write */
    int done;
};

/* Writes a mix of changes: toggles, a rename, a new facility, a deletion. */
static void *write_changes(void *arg)
{
    struct writer *w = arg;
    for (int i = 0; i < 48; i++) {
        set_included(w->f[i % 4], (i / 4) % 2 == 1);
        if (i == 10) rename_facility(w->f[1], "Renamed While Reading");
        if (i == 20) make_facility(w->acct, "Created While Reading", w->f[5]);
        if (i == 30) delete_facility(w->f[4]);
        if (i > 20 && i % 5 == 0) set_included(w->f[5], i % 10 == 0);
        if (w->pace_ms) itest_sleep_ms(w->pace_ms);
    }
    __atomic_store_n(&w->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

START_TEST(changes_while_writing)
{
    struct writer w;
    memset(&w, 0, sizeof(w));
    make_account(w.acct);
    for (int i = 0; i < 5; i++) make_facility(w.acct, "Writer Facility", w.f[i]);
    struct cred feed;
    make_feed_key(&feed);

    json_t *snap = get_json(&feed, "/v1/feed/facilities");
    char start[48], cursor[48];
    snprintf(start, sizeof(start), "%s", itest_json_str(snap, "cursor"));
    snprintf(cursor, sizeof(cursor), "%s", start);
    json_t *view = view_from_snapshot(snap);
    json_decref(snap);

    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, write_changes, &w), 0);
    json_t *seen = json_array();
    int64_t end = itest_mono_ms() + 6 * IT->timeout_ms;
    char last[48];
    while (1) {
        ck_assert_msg(itest_mono_ms() < end, "changes did not catch up");
        int writer_done = __atomic_load_n(&w.done, __ATOMIC_SEQ_CST);
        char pathq[128];
        snprintf(pathq, sizeof(pathq), "/v1/feed/facilities/changes?cursor=%s", cursor);
        json_t *ch = get_json(&feed, pathq);
        size_t i;
        json_t *c;
        json_array_foreach (json_object_get(ch, "changes"), i, c) {
            const char *id = itest_json_str(c, "id");
            ck_assert_msg(sid_cmp(cursor, id) < 0, "change %s not after cursor %s", id, cursor);
            size_t n = json_array_size(seen);
            if (n > 0) ck_assert(sid_cmp(json_string_value(json_array_get(seen, n - 1)), id) < 0);
            json_array_append_new(seen, json_string(id));
            view_apply(view, c);
        }
        const char *next = itest_json_str(ch, "cursor");
        ck_assert(sid_cmp(cursor, next) <= 0);
        snprintf(cursor, sizeof(cursor), "%s", next);
        json_decref(ch);
        last_event_id(last);
        if (writer_done && strcmp(cursor, last) == 0) break;
        itest_sleep_ms(5);
    }
    pthread_join(t, NULL);

    /* every facility event after the snapshot, once, in order */
    json_t *expected = facility_events_after(start);
    ck_assert_int_eq(json_array_size(seen), json_array_size(expected));
    for (size_t i = 0; i < json_array_size(seen); i++)
        ck_assert_str_eq(json_string_value(json_array_get(seen, i)),
                         itest_json_str(json_array_get(expected, i), "id"));
    ck_assert_int_ge(json_array_size(seen), 48);
    views_equal(view, view_from_redis());
    json_decref(expected);
    json_decref(seen);
}
END_TEST

START_TEST(stream_in_order)
{
    char acct[64], f[3][72];
    make_account(acct);
    for (int i = 0; i < 3; i++) make_facility(acct, "Stream Facility", f[i]);
    struct cred feed;
    make_feed_key(&feed);
    json_t *snap = get_json(&feed, "/v1/feed/facilities");
    char start[48], query[80];
    snprintf(start, sizeof(start), "%s", itest_json_str(snap, "cursor"));
    snprintf(query, sizeof(query), "?cursor=%s", start);
    json_decref(snap);

    struct sse s;
    sse_open(&s, &feed, query, NULL);
    sse_ready(&s, 1);
    for (int i = 0; i < 20; i++) set_included(f[i % 3], (i / 3) % 2 == 1);
    sse_wait_events(&s, 20);
    sse_pump(200); /* nothing more, nothing twice */
    check_events_wellformed(&s);
    json_t *expected = facility_events_after(start);
    check_events_match(&s, 0, expected);
    json_decref(expected);
    sse_close(&s);
}
END_TEST

/* Streams open (and catch up from one cursor) while changes are written and
 * others already follow live: every stream gets every change once, in order. */
START_TEST(streams_join_while_writing)
{
    struct writer w;
    memset(&w, 0, sizeof(w));
    w.pace_ms = 1;
    make_account(w.acct);
    for (int i = 0; i < 5; i++) make_facility(w.acct, "Join Facility", w.f[i]);
    struct cred feed;
    make_feed_key(&feed);
    json_t *snap = get_json(&feed, "/v1/feed/facilities");
    char start[48], query[80];
    snprintf(start, sizeof(start), "%s", itest_json_str(snap, "cursor"));
    snprintf(query, sizeof(query), "?cursor=%s", start);
    json_decref(snap);

    enum { N = 80 };
    static struct sse s[N];
    sse_open(&s[0], &feed, query, NULL);
    sse_ready(&s[0], 1);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, write_changes, &w), 0);
    for (int i = 1; i < N; i++) {
        sse_open(&s[i], &feed, i % 2 ? query : "", i % 2 ? NULL : start);
        sse_pump(2);
    }
    int64_t end = itest_mono_ms() + 3 * IT->timeout_ms;
    while (!__atomic_load_n(&w.done, __ATOMIC_SEQ_CST)) {
        ck_assert_msg(itest_mono_ms() < end, "the writer did not finish");
        sse_pump(10);
    }
    pthread_join(t, NULL);
    json_t *expected = facility_events_after(start);
    int n = (int)json_array_size(expected);
    ck_assert_int_ge(n, 48);
    sse_ready(s, N);
    for (int i = 0; i < N; i++) sse_wait_events(&s[i], n);
    sse_pump(200);
    for (int i = 0; i < N; i++) {
        check_events_wellformed(&s[i]);
        check_events_match(&s[i], 0, expected);
        sse_close(&s[i]);
    }
    json_decref(expected);
}
END_TEST

START_TEST(stream_resume_with_last_event_id)
{
    char acct[64], f[2][72];
    make_account(acct);
    for (int i = 0; i < 2; i++) make_facility(acct, "Resume Facility", f[i]);
    struct cred feed;
    make_feed_key(&feed);
    json_t *snap = get_json(&feed, "/v1/feed/facilities");
    char query[80];
    snprintf(query, sizeof(query), "?cursor=%s", itest_json_str(snap, "cursor"));
    json_decref(snap);

    struct sse a;
    sse_open(&a, &feed, query, NULL);
    sse_ready(&a, 1);
    for (int i = 0; i < 10; i++) set_included(f[i % 2], i % 4 >= 2);
    sse_wait_events(&a, 5);
    /* the reader had handled five events when its connection was cut */
    char resume[48];
    snprintf(resume, sizeof(resume), "%s", a.ev[4].id);
    check_events_wellformed(&a);
    sse_close(&a);
    for (int i = 0; i < 10; i++) set_included(f[i % 2], i % 4 < 2);

    struct sse b;
    sse_open(&b, &feed, "", resume);
    sse_ready(&b, 1);
    json_t *expected = facility_events_after(resume);
    ck_assert_int_eq(json_array_size(expected), 15);
    sse_wait_events(&b, 15);
    sse_pump(200);
    check_events_wellformed(&b);
    check_events_match(&b, 0, expected);
    json_decref(expected);
    sse_close(&b);
}
END_TEST

START_TEST(stream_query_cursor_wins)
{
    char acct[64], f[72];
    make_account(acct);
    make_facility(acct, "Query Facility", f);
    struct cred feed;
    make_feed_key(&feed);
    char ids[4][48];
    for (int i = 0; i < 4; i++) {
        set_included(f, i % 2 == 1);
        last_event_id(ids[i]);
    }
    char query[80];
    snprintf(query, sizeof(query), "?cursor=%s", ids[0]);
    struct sse s;
    sse_open(&s, &feed, query, ids[2]);
    sse_ready(&s, 1);
    sse_wait_events(&s, 3);
    sse_pump(200);
    ck_assert_int_eq(s.nev, 3);
    for (int i = 0; i < 3; i++) ck_assert_str_eq(s.ev[i].id, ids[i + 1]);
    sse_close(&s);

    /* with neither: from the newest change on */
    sse_open(&s, &feed, "", NULL);
    sse_ready(&s, 1);
    set_included(f, true);
    sse_wait_events(&s, 1);
    sse_pump(200);
    ck_assert_int_eq(s.nev, 1);
    char last[48];
    last_event_id(last);
    ck_assert_str_eq(s.ev[0].id, last);
    sse_close(&s);
}
END_TEST

START_TEST(many_streams)
{
    char acct[64], f[72];
    make_account(acct);
    make_facility(acct, "Popular Facility", f);
    struct cred feed;
    make_feed_key(&feed);
    static struct sse s[MANY_STREAMS];
    for (int i = 0; i < MANY_STREAMS; i++) sse_open(&s[i], &feed, "", NULL);
    sse_ready(s, MANY_STREAMS);

    int64_t t0 = itest_mono_ms();
    set_included(f, false);
    char id[48];
    last_event_id(id);
    int64_t end = t0 + IT->timeout_ms;
    while (1) {
        int got = 0;
        for (int i = 0; i < MANY_STREAMS; i++) got += s[i].nev > 0 || s[i].done;
        if (got == MANY_STREAMS) break;
        ck_assert_msg(itest_mono_ms() < end, "only %d of %d streams got the event", got,
                      MANY_STREAMS);
        sse_pump(5);
    }
    sse_pump(300);
    int64_t slowest = 0;
    for (int i = 0; i < MANY_STREAMS; i++) {
        ck_assert_msg(s[i].nev == 1, "stream %d: %d events (done %d)", i, s[i].nev, s[i].done);
        ck_assert_str_eq(s[i].ev[0].id, id);
        ck_assert_str_eq(s[i].ev[0].type, "facility.excluded");
        ck_assert_str_eq(itest_json_str(s[i].ev[0].data, "facility_id"), f);
        ck_assert(json_is_false(json_object_get(s[i].ev[0].data, "included")));
        if (s[i].ev[0].at_ms - t0 > slowest) slowest = s[i].ev[0].at_ms - t0;
    }
    printf("feed: %d concurrent streams: slowest delivery of one exclusion %lld ms "
           "(from the admin call)\n",
           MANY_STREAMS, (long long)slowest);
    fflush(stdout);
    for (int i = 0; i < MANY_STREAMS; i++) sse_close(&s[i]);
}
END_TEST

START_TEST(garbage_cursors)
{
    struct cred feed;
    make_feed_key(&feed);
    static const char *const bad[] = {
        "abc",
        "1",
        "1-",
        "-1",
        "1-2-3",
        "01a-0",
        "1-0x",
        "%201-0",
        "1--0",
        "+1-0",
        "18446744073709551616-0",
        "0-18446744073709551616",
        "12345678901234567890123-12345678901234567890", /* over 40 characters */
        "1%2D0",
        "",
        "1-0&cursor=2-0",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char pathq[256];
        struct itest_resp r;
        snprintf(pathq, sizeof(pathq), "/v1/feed/facilities/changes?cursor=%s", bad[i]);
        feed_get(&feed, pathq, NULL, &r);
        check_error(&r, 400, "bad_request", pathq);
        itest_resp_free(&r);
        snprintf(pathq, sizeof(pathq), "/v1/feed/facilities/stream?cursor=%s", bad[i]);
        feed_get(&feed, pathq, NULL, &r);
        check_error(&r, 400, "bad_request", pathq);
        itest_resp_free(&r);
    }
    struct itest_resp r;
    feed_get(&feed, "/v1/feed/facilities/changes", NULL, &r);
    check_error(&r, 400, "bad_request", "no cursor");
    itest_resp_free(&r);
    feed_get(&feed, "/v1/feed/facilities/stream", "Last-Event-ID: yesterday", &r);
    check_error(&r, 400, "bad_request", "bad Last-Event-ID");
    itest_resp_free(&r);
    /* a good query cursor does not excuse a bad one elsewhere, and vice versa */
    feed_get(&feed, "/v1/feed/facilities/stream?cursor=x-1", "Last-Event-ID: 1-0", &r);
    check_error(&r, 400, "bad_request", "bad query, good header");
    itest_resp_free(&r);

    /* cursors past the end: nothing yet, the cursor stays */
    static const char *const future[] = {"99999999999999-0",
                                         "18446744073709551615-18446744073709551615"};
    for (int i = 0; i < 2; i++) {
        char pathq[256];
        snprintf(pathq, sizeof(pathq), "/v1/feed/facilities/changes?cursor=%s", future[i]);
        json_t *j = get_json(&feed, pathq);
        ck_assert_str_eq(itest_json_str(j, "cursor"), future[i]);
        ck_assert_int_eq(json_array_size(json_object_get(j, "changes")), 0);
        json_decref(j);
    }
}
END_TEST

START_TEST(roles)
{
    char acct[64], f[72];
    make_account(acct);
    make_facility(acct, "Role Facility", f);
    struct cred api, feed;
    make_api_key(acct, &api);
    make_feed_key(&feed);
    static const char *const feed_routes[] = {"/v1/feed/facilities",
                                              "/v1/feed/facilities/changes?cursor=0-0",
                                              "/v1/feed/facilities/stream"};
    for (int i = 0; i < 3; i++) {
        struct itest_resp r;
        feed_get(&api, feed_routes[i], NULL, &r);
        check_error(&r, 403, "forbidden", feed_routes[i]);
        itest_resp_free(&r);
    }
    char pathq[256];
    snprintf(pathq, sizeof(pathq), "/v1/facilities/%s/units", f);
    const char *unit_routes[] = {pathq, "/v1/facilities"};
    for (int i = 0; i < 2; i++) {
        struct itest_resp r;
        feed_get(&feed, unit_routes[i], NULL, &r);
        check_error(&r, 403, "forbidden", unit_routes[i]);
        itest_resp_free(&r);
    }
}
END_TEST

static int both_done(void *arg)
{
    struct sse *s = arg;
    return s[0].done && s[1].done;
}

START_TEST(disabled_key_streams_end)
{
    char acct[64], f[72];
    make_account(acct);
    make_facility(acct, "Lock Facility", f);
    struct cred k1, k2;
    make_feed_key(&k1);
    make_feed_key(&k2);
    struct sse s[3];
    sse_open(&s[0], &k1, "", NULL);
    sse_open(&s[1], &k1, "", NULL);
    sse_open(&s[2], &k2, "", NULL);
    sse_ready(s, 3);

    int64_t t0 = itest_mono_ms();
    key_action(&k1, "disable");
    sse_until(both_done, s, CLOSE_BOUND_MS, "the disabled key's streams to end");
    printf("feed: a disabled key's streams ended %lld ms after the admin call\n",
           (long long)(itest_mono_ms() - t0));
    ck_assert_int_eq(s[2].done, 0);

    /* the other key's stream goes on */
    set_included(f, false);
    sse_wait_events(&s[2], 1);
    ck_assert_str_eq(itest_json_str(s[2].ev[0].data, "facility_id"), f);
    ck_assert_int_eq(s[0].nev, 0);

    /* and the disabled key cannot come back */
    struct itest_resp r;
    feed_get(&k1, "/v1/feed/facilities/stream", NULL, &r);
    check_error(&r, 403, "key_disabled", "stream with a disabled key");
    itest_resp_free(&r);
    for (int i = 0; i < 3; i++) sse_close(&s[i]);
}
END_TEST

static int first_done(void *arg)
{
    struct sse *s = arg;
    return s[0].done;
}

/* A key that expires (here: rotated with a grace period) sends no event when
 * it does: its streams end by themselves, and the new key's go on. */
START_TEST(expired_key_streams_end)
{
    struct cred old, fresh;
    make_feed_key(&old);
    char path[128];
    snprintf(path, sizeof(path), "/admin/v1/keys/%s/rotate", old.id);
    cred_from(admin_ok("POST", path, "{\"grace_seconds\":2}", 201), &fresh);
    struct sse s[2];
    sse_open(&s[0], &old, "", NULL);
    sse_open(&s[1], &fresh, "", NULL);
    sse_ready(s, 2);
    /* the rotation closed nothing opened after it: both streams are up */
    ck_assert_int_eq(s[0].done, 0);
    int64_t t0 = itest_mono_ms();
    sse_until(first_done, s, IT->timeout_ms, "the expired key's stream to end");
    printf("feed: an expired key's stream ended %lld ms after it was opened\n",
           (long long)(itest_mono_ms() - t0));
    ck_assert_int_eq(s[1].done, 0);
    struct itest_resp r;
    feed_get(&old, "/v1/feed/facilities/stream", NULL, &r);
    check_error(&r, 403, "key_disabled", "stream with an expired key");
    itest_resp_free(&r);
    for (int i = 0; i < 2; i++) sse_close(&s[i]);
}
END_TEST

static int two_comments(void *arg)
{
    struct sse *s = arg;
    return s->comments >= 2 || s->done;
}

START_TEST(heartbeats)
{
    struct cred feed;
    make_feed_key(&feed);
    struct sse s;
    sse_open(&s, &feed, "", NULL);
    sse_ready(&s, 1);
    /* operators see open streams in /metrics */
    struct itest_resp m;
    char url[128];
    snprintf(url, sizeof(url), "%s/metrics", IT->lg[0].admin_url);
    ck_assert_int_eq(itest_http("GET", url, NULL, NULL, 0, NULL, &m), 0);
    const char *g = m.body ? strstr(m.body, "\nlockgate_feed_streams ") : NULL;
    ck_assert_msg(g != NULL && atol(g + 23) >= 1, "no open stream in /metrics");
    itest_resp_free(&m);
    sse_until(two_comments, &s, IT->timeout_ms, "two keep-alive comments");
    ck_assert_int_eq(s.done, 0);
    ck_assert_int_eq(s.nev, 0);
    ck_assert_int_eq(s.malformed, 0);
    ck_assert_str_eq(s.comment, ": keep-alive");
    sse_close(&s);
}
END_TEST

/* ---- the sample consumer ---- */

static pid_t consumer_start(const struct cred *c, const char *dir, const char *out)
{
    static char env_secret[200];
    snprintf(env_secret, sizeof(env_secret), "LOCKGATE_FEED_SECRET=%s", c->secret);
    const char *env[] = {env_secret, NULL};
    char *const argv[] = {
        "sh", "scripts/feed-consumer.sh", IT->lg[0].url, (char *)c->id, "-", (char *)dir, NULL};
    return itest_spawn(argv, out, out, env, ITEST_SPAWN_PDEATH);
}

static void consumer_stop(pid_t pid)
{
    kill(-pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* The consumer's state file as a view (names as JSON escapes, compared decoded). */
static json_t *view_from_state(const char *dir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/facilities", dir);
    char *text = itest_file_read(path);
    json_t *view = json_object();
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char *fields[4] = {line, NULL, NULL, NULL};
        for (int i = 1; i < 4; i++) {
            char *tab = strchr(fields[i - 1], '\t');
            if (tab == NULL) break;
            *tab = '\0';
            fields[i] = tab + 1;
        }
        if (fields[3] == NULL) continue;
        char quoted[1024];
        snprintf(quoted, sizeof(quoted), "\"%s\"", fields[3]);
        json_t *name = json_loads(quoted, JSON_DECODE_ANY, NULL);
        json_object_set_new(view, fields[0],
                            json_pack("{s:b, s:s, s:s}", "included", strcmp(fields[1], "1") == 0,
                                      "account_id", fields[2], "name",
                                      name ? json_string_value(name) : "?"));
        json_decref(name);
    }
    free(text);
    return view;
}

struct consumer_wait {
    const char *dir;
};

/* The newest facility event's id ("0-0" when none is kept). */
static void last_facility_event_id(char out[48])
{
    json_t *all = facility_events_after("0-0");
    size_t n = json_array_size(all);
    snprintf(out, 48, "%s", n ? itest_json_str(json_array_get(all, n - 1), "id") : "0-0");
    json_decref(all);
}

/* The consumer's state equals Redis's and its cursor is at or past the
 * newest facility event (the stream carries only those). */
static int consumer_caught_up(void *arg)
{
    struct consumer_wait *w = arg;
    char path[PATH_MAX], last[48];
    snprintf(path, sizeof(path), "%s/cursor", w->dir);
    char *cur = itest_file_read(path);
    last_facility_event_id(last);
    struct sid id;
    int ok = sscanf(cur, "%llu-%llu", &id.ms, &id.seq) == 2 && strchr(cur, '\n') != NULL;
    if (ok) {
        *strchr(cur, '\n') = '\0';
        ok = sid_cmp(cur, last) >= 0;
    }
    free(cur);
    if (!ok) return 0;
    json_t *a = view_from_state(w->dir), *b = view_from_redis();
    ok = json_equal(a, b);
    json_decref(a);
    json_decref(b);
    return ok;
}

static void consumer_wait(const char *dir, const char *out)
{
    struct consumer_wait w = {dir};
    int64_t end = itest_mono_ms() + 3 * IT->timeout_ms;
    while (!consumer_caught_up(&w)) {
        if (itest_mono_ms() > end) {
            char *log = itest_file_read(out);
            json_t *a = view_from_state(dir);
            char *v = json_dumps(a, JSON_SORT_KEYS);
            ck_abort_msg("the consumer did not catch up; its output:\n%s\nits view:\n%s", log, v);
        }
        itest_sleep_ms(20);
    }
}

START_TEST(consumer_script)
{
    char acct[64], f[3][72];
    make_account(acct);
    make_facility(acct, "Consumer \"One\" \\ Storage", f[0]);
    make_facility(acct, "Consumer Two", f[1]);
    make_facility(acct, "Consumer Three", f[2]);
    struct cred feed;
    make_feed_key(&feed);
    char dir[PATH_MAX], out[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", itest_path("consumer"));
    snprintf(out, sizeof(out), "%s", itest_path("consumer.out"));
    pid_t pid = consumer_start(&feed, dir, out);
    consumer_wait(dir, out);

    set_included(f[0], false);
    rename_facility(f[1], "Consumer Two Renamed");
    consumer_wait(dir, out);

    /* cut: the key is disabled (its stream ends), changes go on, then back */
    key_action(&feed, "disable");
    delete_facility(f[2]);
    set_included(f[1], false);
    key_action(&feed, "enable");
    consumer_wait(dir, out);
    consumer_stop(pid);
    char *log = itest_file_read(out);
    ck_assert_ptr_nonnull(strstr(log, "feed-consumer: snapshot:"));
    ck_assert_ptr_nonnull(strstr(log, "stream ended; resuming after"));
    ck_assert_ptr_null(strstr(log, feed.secret));
    free(log);
}
END_TEST

START_TEST(cursor_expiry)
{
    char acct[64], f[72];
    make_account(acct);
    make_facility(acct, "Busy Facility", f);
    struct cred feed;
    make_feed_key(&feed);
    json_t *snap = get_json(&feed, "/v1/feed/facilities");
    char old[48];
    snprintf(old, sizeof(old), "%s", itest_json_str(snap, "cursor"));
    json_decref(snap);

    /* the consumer saved this cursor, then stopped */
    char dir[PATH_MAX], out[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", itest_path("expiry-consumer"));
    snprintf(out, sizeof(out), "%s", itest_path("expiry-consumer.out"));
    pid_t pid = consumer_start(&feed, dir, out);
    consumer_wait(dir, out);
    consumer_stop(pid);

    /* XADD MAXLEN ~ 100 drops whole nodes of 100 entries: 300 surely trims */
    char first_change[48];
    for (int i = 0; i < 300; i++) {
        set_included(f, i % 2 == 1);
        if (i == 0) last_event_id(first_change);
    }
    redisContext *c = itest_redis();
    redisReply *gone =
        itest_redis_cmd(c, "XRANGE %s %s %s", EVENTS_KEY, first_change, first_change);
    ck_assert_msg(gone->elements == 0, "the stream was not trimmed past %s", first_change);
    freeReplyObject(gone);
    redisFree(c);

    char pathq[128], hdr[96];
    struct itest_resp r;
    snprintf(pathq, sizeof(pathq), "/v1/feed/facilities/changes?cursor=%s", old);
    feed_get(&feed, pathq, NULL, &r);
    check_error(&r, 410, "cursor_expired", "changes after a trimmed cursor");
    itest_resp_free(&r);
    snprintf(pathq, sizeof(pathq), "/v1/feed/facilities/stream?cursor=%s", old);
    feed_get(&feed, pathq, NULL, &r);
    check_error(&r, 410, "cursor_expired", "stream after a trimmed cursor");
    itest_resp_free(&r);
    snprintf(hdr, sizeof(hdr), "Last-Event-ID: %s", old);
    feed_get(&feed, "/v1/feed/facilities/stream", hdr, &r);
    check_error(&r, 410, "cursor_expired", "stream after a trimmed Last-Event-ID");
    itest_resp_free(&r);

    /* a new snapshot's cursor works again */
    snap = get_json(&feed, "/v1/feed/facilities");
    snprintf(pathq, sizeof(pathq), "/v1/feed/facilities/changes?cursor=%s",
             itest_json_str(snap, "cursor"));
    json_decref(get_json(&feed, pathq));
    json_decref(snap);

    /* the consumer resumes from its old cursor, hears 410, re-snapshots */
    pid = consumer_start(&feed, dir, out);
    consumer_wait(dir, out);
    consumer_stop(pid);
    char *log = itest_file_read(out);
    ck_assert_ptr_nonnull(strstr(log, "cursor expired: taking a new snapshot"));
    free(log);
}
END_TEST

static int log_has(void *arg)
{
    char *log = itest_lg_log(0);
    int found = strstr(log, (const char *)arg) != NULL;
    free(log);
    return found;
}

#define BIG_ENTRIES 3000 /* of 4 KB: past the server's socket buffers and the limit */
#define BIG_BATCH   20

static int big_done;

static void *add_big_entries(void *arg)
{
    redisContext *c = itest_redis();
    static char name[4001];
    memset(name, 'n', sizeof(name) - 1);
    /* in batches, at a pace an attentive reader keeps up with */
    for (int b = 0; b < BIG_ENTRIES / BIG_BATCH; b++) {
        for (int i = 0; i < BIG_BATCH; i++)
            redisAppendCommand(c,
                               "XADD %s * type facility.updated account_id acct_SLOW "
                               "facility_id fac_SLOW included 1 name %s "
                               "at 2026-01-01T00:00:00.000Z",
                               EVENTS_KEY, name);
        for (int i = 0; i < BIG_BATCH; i++) {
            redisReply *r = NULL;
            if (redisGetReply(c, (void **)&r) != REDIS_OK) break;
            freeReplyObject(r);
        }
        itest_sleep_ms(10);
    }
    redisFree(c);
    __atomic_store_n(&big_done, 1, __ATOMIC_SEQ_CST);
    return arg;
}

START_TEST(slow_reader_dropped)
{
    struct cred slow, fast;
    make_feed_key(&slow);
    make_feed_key(&fast);

    /* a reader that sends its request, reads the head, then never reads */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)IT->lg[0].port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    char auth[400], req[1024];
    basic_auth(&slow, auth, sizeof(auth));
    int n =
        snprintf(req, sizeof(req),
                 "GET /v1/feed/facilities/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n\r\n", auth);
    ck_assert_int_eq(write(fd, req, (size_t)n), n);
    char head[2048];
    size_t got = 0;
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    while (got < sizeof(head) - 1 && (got == 0 || strstr(head, "\r\n\r\n") == NULL)) {
        struct pollfd p = {fd, POLLIN, 0};
        ck_assert_msg(itest_mono_ms() < end, "no answer head");
        if (poll(&p, 1, 100) <= 0) continue;
        ssize_t r = read(fd, head + got, 1);
        ck_assert_int_gt(r, 0);
        got += (size_t)r;
        head[got] = '\0';
    }
    ck_assert_msg(strncmp(head, "HTTP/1.1 200", 12) == 0, "answer: %s", head);

    /* a reader that keeps reading meanwhile */
    struct sse s;
    sse_open(&s, &fast, "", NULL);
    sse_ready(&s, 1);

    /* big entries straight into the events stream (the poll finds them),
     * from a thread, so that this one keeps reading */
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, add_big_entries, NULL), 0);
    char want[160];
    snprintf(want, sizeof(want), "dropping a slow stream of key %s", slow.id);
    int64_t deadline = itest_mono_ms() + 3 * IT->timeout_ms;
    while (!log_has(want)) {
        ck_assert_msg(itest_mono_ms() < deadline, "the slow reader was not dropped");
        sse_pump(50);
    }
    while (!__atomic_load_n(&big_done, __ATOMIC_SEQ_CST)) sse_pump(10);
    pthread_join(t, NULL);
    /* Whether the reading one kept up depends on this machine's load, so it
     * is not asserted; what it got is in order, and if it was dropped, it
     * was by the same rule (never silently). */
    struct sse_wait w = {&s, BIG_ENTRIES};
    int64_t until = itest_mono_ms() + IT->timeout_ms;
    while (!has_events(&w) && itest_mono_ms() < until) sse_pump(10);
    check_events_wellformed(&s);
    if (s.nev < BIG_ENTRIES) {
        char dropped[160];
        snprintf(dropped, sizeof(dropped), "dropping a slow stream of key %s", fast.id);
        ck_assert_msg(s.done && log_has(dropped), "the reading stream stopped at %d events", s.nev);
        printf("feed: under this load the reading stream was dropped too, after %d events\n",
               s.nev);
    }
    sse_close(&s);
    close(fd);

    /* streams go on after a drop */
    char acct[64], f[72];
    make_account(acct);
    make_facility(acct, "After The Drop", f);
    sse_open(&s, &fast, "", NULL);
    sse_ready(&s, 1);
    char start[48];
    last_event_id(start);
    for (int i = 0; i < 5; i++) set_included(f, i % 2 == 1);
    sse_wait_events(&s, 5);
    sse_pump(200);
    check_events_wellformed(&s);
    json_t *expected = facility_events_after(start);
    check_events_match(&s, 0, expected);
    json_decref(expected);
    sse_close(&s);
}
END_TEST

/* GET PATHQ with C's credentials is 429 rate_limited (the JSON error body,
 * X-Request-Id once) with a Retry-After of at least a second. */
static void check_limited(const struct cred *c, const char *pathq, const char *what)
{
    struct itest_resp r;
    feed_get(c, pathq, NULL, &r);
    check_error(&r, 429, "rate_limited", what);
    char *retry = itest_resp_header(&r, "Retry-After");
    ck_assert_msg(retry != NULL && atoi(retry) >= 1, "%s: 429 without Retry-After", what);
    free(retry);
    itest_resp_free(&r);
}

/* Opens a reader of C and waits for its answer's status. */
static long sse_open_status(struct sse *s, const struct cred *c)
{
    sse_open(s, c, "", NULL);
    struct sse_wait w = {s, 1};
    sse_until(has_status, &w, IT->timeout_ms, "a stream's answer");
    return sse_status(s);
}

/* [feed] max_streams_per_key (8 by default) counts a key's streams on the
 * whole instance, whichever worker each connection lands on: the 9th is
 * 429 rate_limited while another key still opens one, and a closed stream
 * frees its slot. */
START_TEST(streams_per_key)
{
    enum { MAX = 8 };
    struct cred a, b;
    make_feed_key(&a);
    make_feed_key(&b);
    struct sse s[MAX], other, again;
    for (int i = 0; i < MAX; i++) sse_open(&s[i], &a, "", NULL);
    sse_ready(s, MAX);

    check_limited(&a, "/v1/feed/facilities/stream", "a stream past max_streams_per_key");
    /* the limit is per key; the snapshot and changes are not streams */
    ck_assert_int_eq(sse_open_status(&other, &b), 200);
    json_decref(get_json(&a, "/v1/feed/facilities"));

    /* one of A's streams closes: its slot is free once the gateway sees it go */
    sse_close(&s[0]);
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    long st;
    while ((st = sse_open_status(&again, &a)) == 429) {
        ck_assert_msg(itest_mono_ms() < end, "a closed stream's slot was never given back");
        sse_close(&again);
        sse_pump(20);
    }
    ck_assert_msg(st == 200, "after a close: HTTP %ld", st);
    /* and the key is at its limit again */
    check_limited(&a, "/v1/feed/facilities/stream", "a stream past the limit after a close");
    sse_close(&again);
    sse_close(&other);
    for (int i = 1; i < MAX; i++) sse_close(&s[i]);
}
END_TEST

/* ---- a large platform's snapshot ---- */

#define BIG_FACILITIES 20000
#define BIG_NAME_LEN   200

/* N facilities fac_<TAG><n> written straight into Redis the way the store
 * lays them out, in a scrambled order, their names the id and PAD more
 * bytes. Idempotent. */
static void fill_platform(const char *tag, int n, int pad)
{
    redisContext *c = itest_redis();
    char *name = malloc((size_t)pad + 1);
    ck_assert_ptr_nonnull(name);
    memset(name, 'n', (size_t)pad);
    name[pad] = '\0';
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "fac_%s%05d", tag, (i * 7919) % n);
        redisAppendCommand(c, "SADD lg:facilities %s", id);
        redisAppendCommand(
            c,
            "HSET lg:fac:%s account_id acct_%s name %s%s included %s "
            "created_at 2026-01-01T00:00:00.000Z updated_at 2026-01-01T00:00:00.000Z",
            id, tag, id, name, i % 3 ? "1" : "0");
    }
    for (int i = 0; i < 2 * n; i++) {
        redisReply *r = NULL;
        ck_assert_int_eq(redisGetReply(c, (void **)&r), REDIS_OK);
        freeReplyObject(r);
    }
    free(name);
    redisFree(c);
}

/* SNAP (stolen) holds every facility of Redis once, sorted by id, with the
 * newest cursor. Returns how many. */
static size_t check_whole_snapshot(json_t *snap)
{
    json_t *list = json_object_get(snap, "facilities");
    ck_assert_int_eq(json_object_size(snap), 2);
    redisContext *c = itest_redis();
    redisReply *card = itest_redis_cmd(c, "SCARD lg:facilities");
    ck_assert_uint_eq(json_array_size(list), (size_t)card->integer);
    freeReplyObject(card);
    redisFree(c);
    for (size_t i = 1; i < json_array_size(list); i++)
        ck_assert(strcmp(itest_json_str(json_array_get(list, i - 1), "facility_id"),
                         itest_json_str(json_array_get(list, i), "facility_id")) < 0);
    char last[48];
    last_event_id(last);
    ck_assert_str_eq(itest_json_str(snap, "cursor"), last);
    size_t n = json_array_size(list);
    views_equal(view_from_snapshot(snap), view_from_redis());
    json_decref(snap);
    return n;
}

/* The snapshot's sorted sets in Redis right now. */
static size_t snapshot_copies(void)
{
    redisContext *c = itest_redis();
    redisReply *r = itest_redis_cmd(c, "KEYS lg:feed:snapshot:*");
    size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
    freeReplyObject(r);
    redisFree(c);
    return n;
}

static int no_snapshot_copy(void *arg) { return snapshot_copies() == 0; }
static int a_snapshot_copy(void *arg) { return snapshot_copies() > 0; }

/* Sends a snapshot request on a raw connection (answered, then closed). */
static void snapshot_request(struct raw_conn *rc, const struct cred *c)
{
    char err[256], auth[400], req[600];
    ck_assert_msg(raw_connect(rc, IT->lg[0].port, NULL, NULL, err, sizeof(err)) == 0, "%s", err);
    basic_auth(c, auth, sizeof(auth));
    int n = snprintf(req, sizeof(req),
                     "GET /v1/feed/facilities HTTP/1.1\r\nHost: lockgate\r\n%s\r\n"
                     "Connection: close\r\n\r\n",
                     auth);
    ck_assert_uint_eq(raw_send(rc, req, (size_t)n), (size_t)n);
}

/* Splits the raw bytes of a complete chunked answer in B: its status, its
 * decoded body into BODY (malloc'd), and returns how many chunks carried it. */
static int dechunk(const struct raw_buf *b, int *status, char **body, size_t *body_len,
                   int *whole)
{
    ck_assert_msg(b->len > 12 && strncmp(b->data, "HTTP/1.1 ", 9) == 0, "not an answer: %.80s",
                  b->data ? b->data : "");
    *status = atoi(b->data + 9);
    const char *head_end = strstr(b->data, "\r\n\r\n");
    ck_assert_ptr_nonnull(head_end);
    char *head = strndup(b->data, (size_t)(head_end - b->data));
    bool chunked = strcasestr(head, "\r\nTransfer-Encoding: chunked") != NULL;
    free(head);
    ck_assert_msg(chunked, "the snapshot is not sent in chunks");
    const char *p = head_end + 4, *end = b->data + b->len;
    struct raw_buf out = {0};
    int n = 0, last = 0;
    while (p < end) {
        char *after;
        unsigned long size = strtoul(p, &after, 16);
        ck_assert_msg(after != p && strncmp(after, "\r\n", 2) == 0, "bad chunk size line");
        const char *data = after + 2;
        if (size == 0) {
            last = 1;
            break;
        }
        ck_assert_msg((size_t)(end - data) >= size + 2, "a chunk is cut short");
        raw_buf_add(&out, data, size);
        n++;
        p = data + size + 2;
    }
    *whole = last;
    *body = out.data ? out.data : strdup("");
    *body_len = out.len;
    return n;
}

/* The snapshot answer in B: 200, complete, whole (check_whole_snapshot).
 * Returns the facilities; *CHUNKS the chunks it came in. */
static size_t check_big_snapshot(const struct raw_buf *b, int *chunks)
{
    int status;
    char *body;
    size_t len;
    int whole;
    *chunks = dechunk(b, &status, &body, &len, &whole);
    ck_assert_msg(whole, "the answer has no last chunk");
    ck_assert_msg(status == 200, "snapshot: HTTP %d", status);
    json_error_t jerr;
    json_t *snap = json_loadb(body, len, 0, &jerr);
    ck_assert_msg(snap != NULL, "the snapshot is not JSON: %s", jerr.text);
    /* byte for byte the compact document a one-piece answer would be */
    char *again = json_dumps(snap, JSON_COMPACT);
    ck_assert_msg(again != NULL && strlen(again) == len && memcmp(again, body, len) == 0,
                  "the pages do not join into the compact document");
    free(again);
    free(body);
    return check_whole_snapshot(snap);
}

/* lockgate's peak resident memory so far, KiB (0 when unknown). */
static long peak_rss_kib(void)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)IT->lg[0].pid);
    char *text = itest_file_read(path);
    const char *p = strstr(text, "VmHWM:");
    long kib = p ? strtol(p + 6, NULL, 10) : 0;
    free(text);
    return kib;
}

/* 20,000 facilities (about 5 MB of JSON) come out complete, sorted, each
 * once, as a chunked answer of one chunk per page of a thousand, and the
 * gateway's peak memory grows by far less than the answer. */
START_TEST(snapshot_streamed_in_pages)
{
    fill_platform("BIG", BIG_FACILITIES, BIG_NAME_LEN);
    struct cred feed;
    make_feed_key(&feed);
    json_decref(get_json(&feed, "/v1/feed/facilities/changes?cursor=0-0")); /* the key is known */
    long rss0 = peak_rss_kib();
    struct raw_conn rc;
    snapshot_request(&rc, &feed);
    struct raw_buf b = {0};
    int64_t t0 = itest_mono_ms();
    ck_assert_int_eq(raw_read_for(&rc, &b, itest_scaled_ms(60000), 0), RAW_EOF);
    raw_close(&rc);
    long grew = peak_rss_kib() - rss0;
    printf("feed: snapshot answer of %zu bytes in %lld ms; lockgate's peak RSS +%ld KiB\n", b.len,
           (long long)(itest_mono_ms() - t0), grew);
    fflush(stdout);
#if defined(__SANITIZE_ADDRESS__)
    printf("snapshot_streamed_in_pages: no memory bound under AddressSanitizer (quarantine)\n");
#else
    if (!itest_wrapped())
        ck_assert_msg(grew < 4096, "lockgate's peak memory grew by %ld KiB for the snapshot", grew);
#endif
    int chunks;
    size_t n = check_big_snapshot(&b, &chunks);
    printf("feed: snapshot of %zu facilities in %d chunks\n", n, chunks);
    ck_assert_msg(chunks >= BIG_FACILITIES / 1000, "%d chunks: not sent page by page", chunks);
    raw_buf_free(&b);
    sse_until(no_snapshot_copy, NULL, IT->timeout_ms, "the snapshot's copy to be deleted");
}
END_TEST

/* A large platform, a feed key FEED known to the gateway, and a snapshot
 * asked for on RC and begun (its copy is in Redis). */
static void big_snapshot_started(struct cred *feed, struct raw_conn *rc)
{
    fill_platform("BIG", BIG_FACILITIES, BIG_NAME_LEN);
    make_feed_key(feed);
    json_decref(get_json(feed, "/v1/feed/facilities/changes?cursor=0-0"));
    snapshot_request(rc, feed);
    sse_until(a_snapshot_copy, NULL, IT->timeout_ms, "the snapshot to start");
}

/* A reader that takes nothing: the gateway stops reading pages (the copy
 * waits in Redis) instead of queueing the whole answer, goes on when the
 * reader reads, and deletes the copy of a reader that leaves. */
START_TEST(snapshot_waits_for_reader)
{
    struct cred feed;
    struct raw_conn rc;
    big_snapshot_started(&feed, &rc);
    itest_sleep_ms(itest_scaled_ms(500));
    ck_assert_msg(snapshot_copies() == 1, "the whole snapshot was read while nobody took it");
    struct raw_buf b = {0};
    int st = raw_read_for(&rc, &b, itest_scaled_ms(60000), 0);
    ck_assert_msg(st == RAW_EOF, "the snapshot did not end (%d) after %zu bytes", st, b.len);
    raw_close(&rc);
    int chunks;
    ck_assert_uint_ge(check_big_snapshot(&b, &chunks), BIG_FACILITIES);
    raw_buf_free(&b);
    sse_until(no_snapshot_copy, NULL, IT->timeout_ms, "the snapshot's copy to be deleted");

    /* a reader that leaves halfway: its copy goes at once, not at its expiry */
    snapshot_request(&rc, &feed);
    sse_until(a_snapshot_copy, NULL, IT->timeout_ms, "the second snapshot to start");
    raw_close(&rc);
    sse_until(no_snapshot_copy, NULL, IT->timeout_ms, "a left snapshot's copy to be deleted");
}
END_TEST

/* Redis stops answering halfway through a snapshot: the answer, already
 * 200, ends before its closing bracket and its connection closes without the
 * last chunk, so no consumer takes it for a whole (smaller) platform. */
START_TEST(snapshot_cut_short)
{
    struct cred feed;
    struct raw_conn rc;
    big_snapshot_started(&feed, &rc);
    /* the gateway waits for this reader to take what was sent */
    struct raw_buf b = {0};
    int64_t until = itest_mono_ms() + IT->timeout_ms;
    while (b.len == 0 || strstr(b.data, "\r\n\r\n") == NULL) {
        ck_assert_msg(itest_mono_ms() < until, "no answer head");
        raw_read_for(&rc, &b, 50, 0);
    }
    itest_redis_pause();
    int st = raw_read_for(&rc, &b, itest_scaled_ms(30000), 0);
    itest_redis_resume();
    raw_close(&rc);
    ck_assert_msg(st == RAW_EOF, "the cut answer did not end");
    int status;
    char *body;
    size_t len;
    int whole;
    dechunk(&b, &status, &body, &len, &whole);
    ck_assert_int_eq(status, 200);
    /* no last chunk: at the HTTP level too, the answer is incomplete */
    ck_assert_msg(!whole, "a snapshot cut short ends with the last chunk");
    ck_assert_msg(len > 0 && strncmp(body, "{\"cursor\":", 10) == 0, "no snapshot head");
    json_error_t jerr;
    json_t *j = json_loadb(body, len, 0, &jerr);
    ck_assert_msg(j == NULL, "a snapshot cut short parses as JSON (%zu bytes)", len);
    free(body);
    raw_buf_free(&b);
    /* and, once the gateway has its Redis connection back, whole again */
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    struct itest_resp r;
    while (feed_get(&feed, "/v1/feed/facilities", NULL, &r) != 200) {
        ck_assert_msg(r.status == 503, "after the outage: HTTP %ld", r.status);
        ck_assert_msg(itest_mono_ms() < end, "no whole snapshot after the outage");
        itest_resp_free(&r);
        itest_sleep_ms(50);
    }
    json_t *snap = json_loads(r.body, 0, NULL);
    itest_resp_free(&r);
    ck_assert_ptr_nonnull(snap);
    ck_assert_uint_ge(check_whole_snapshot(snap), BIG_FACILITIES);
    /* the cut snapshot's copy could not be deleted during the outage; it
     * expires in a minute: the next test counts copies, so it goes now */
    redisContext *c = itest_redis();
    redisReply *keys = itest_redis_cmd(c, "KEYS lg:feed:snapshot:*");
    for (size_t i = 0; i < keys->elements; i++)
        freeReplyObject(itest_redis_cmd(c, "DEL %s", keys->element[i]->str));
    freeReplyObject(keys);
    redisFree(c);
}
END_TEST

static int four_snapshot_copies(void *arg) { return snapshot_copies() == 4; }
static int three_snapshot_copies(void *arg) { return snapshot_copies() == 3; }

/* Each snapshot being sent holds a copy of the ids in Redis: at most four
 * at once per instance; the fifth is 429 until one of them ends. */
START_TEST(snapshots_at_once)
{
    struct cred feed;
    struct raw_conn rc[4];
    big_snapshot_started(&feed, &rc[0]);
    for (int i = 1; i < 4; i++) snapshot_request(&rc[i], &feed);
    sse_until(four_snapshot_copies, NULL, IT->timeout_ms, "four snapshots to start");
    check_limited(&feed, "/v1/feed/facilities", "a fifth snapshot at once");
    struct itest_resp r;
    raw_close(&rc[0]); /* a reader leaves: its place is free once the gateway sees it */
    sse_until(three_snapshot_copies, NULL, IT->timeout_ms, "a left snapshot to end");
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    while (feed_get(&feed, "/v1/feed/facilities", NULL, &r) == 429) {
        ck_assert_msg(itest_mono_ms() < end, "a left snapshot's place was never given back");
        itest_resp_free(&r);
        itest_sleep_ms(20);
    }
    ck_assert_msg(r.status == 200, "after a snapshot ended: HTTP %ld", r.status);
    itest_resp_free(&r);
    for (int i = 1; i < 4; i++) raw_close(&rc[i]);
    sse_until(no_snapshot_copy, NULL, IT->timeout_ms, "the left snapshots' copies to be deleted");
}
END_TEST

/* More facilities than one snapshot page: read in pages, each facility
 * once, sorted, as Redis holds them. */
START_TEST(large_snapshot)
{
    enum { LARGE = 2500 };
    fill_platform("LARGE", LARGE, 0);
    struct cred feed;
    make_feed_key(&feed);
    int64_t t0 = itest_mono_ms();
    json_t *snap = get_json(&feed, "/v1/feed/facilities");
    printf("feed: snapshot of %zu facilities in %lld ms\n",
           json_array_size(json_object_get(snap, "facilities")), (long long)(itest_mono_ms() - t0));
    ck_assert_uint_ge(check_whole_snapshot(snap), LARGE);
}
END_TEST

/* Redis stops answering: snapshot, changes and new streams answer 503;
 * an open stream survives and delivers what is written after Redis is back. */
START_TEST(store_unavailable)
{
    char acct[64], f[72];
    make_account(acct);
    make_facility(acct, "Outage Facility", f);
    struct cred feed;
    make_feed_key(&feed);
    json_decref(get_json(&feed, "/v1/feed/facilities")); /* the key is known now */
    struct sse s;
    sse_open(&s, &feed, "", NULL);
    sse_ready(&s, 1);

    itest_redis_pause();
    static const char *const routes[] = {"/v1/feed/facilities",
                                         "/v1/feed/facilities/changes?cursor=0-0",
                                         "/v1/feed/facilities/stream"};
    for (int i = 0; i < 3; i++) {
        struct itest_resp r;
        feed_get(&feed, routes[i], NULL, &r);
        check_error(&r, 503, "store_unavailable", routes[i]);
        itest_resp_free(&r);
    }
    sse_pump(1500); /* polls fail meanwhile */
    itest_redis_resume();
    ck_assert_int_eq(s.done, 0);

    /* the writes wait for the admin API's own reconnect, then go through */
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    long st = 0;
    do {
        char path[128];
        snprintf(path, sizeof(path), "/admin/v1/facilities/%s", f);
        json_decref(itest_admin("PATCH", path, "{\"included\":false}", &st));
        if (st != 200) itest_sleep_ms(50);
    } while (st != 200 && itest_mono_ms() < end);
    ck_assert_int_eq(st, 200);
    sse_wait_events(&s, 1);
    ck_assert_str_eq(s.ev[0].type, "facility.excluded");
    ck_assert_str_eq(itest_json_str(s.ev[0].data, "facility_id"), f);
    sse_close(&s);
    json_decref(get_json(&feed, "/v1/feed/facilities"));
}
END_TEST

/* A TCase of its own fixture (started once for its tests) in SU. */
static TCase *feed_case(Suite *su, const char *name, void (*fixture)(void))
{
    TCase *tc = tcase_create(name);
    tcase_add_unchecked_fixture(tc, fixture, teardown);
    tcase_set_timeout(tc, 300);
    suite_add_tcase(su, tc);
    return tc;
}

int main(void)
{
    Suite *su = suite_create("feed");
    TCase *tc = feed_case(su, "feed", setup);
    tcase_add_test(tc, snapshot_shape_and_cursor);
    tcase_add_test(tc, changes_while_writing);
    tcase_add_test(tc, stream_in_order);
    tcase_add_test(tc, streams_join_while_writing);
    tcase_add_test(tc, stream_resume_with_last_event_id);
    tcase_add_test(tc, stream_query_cursor_wins);
    tcase_add_test(tc, many_streams);
    tcase_add_test(tc, garbage_cursors);
    tcase_add_test(tc, roles);
    tcase_add_test(tc, disabled_key_streams_end);
    tcase_add_test(tc, expired_key_streams_end);
    tcase_add_test(tc, heartbeats);
    tcase_add_test(tc, consumer_script);
    tcase_add_test(feed_case(su, "expiry", setup_expiry), cursor_expiry);
    TCase *sl = feed_case(su, "slow", setup_slow);
    tcase_add_test(sl, slow_reader_dropped);
    tcase_add_test(sl, large_snapshot);
    TCase *big = feed_case(su, "big_snapshot", setup_workers);
    tcase_add_test(big, snapshot_streamed_in_pages);
    tcase_add_test(big, snapshot_waits_for_reader);
    tcase_add_test(big, snapshot_cut_short);
    tcase_add_test(big, snapshots_at_once);
    tcase_add_test(feed_case(su, "per_key", setup_workers), streams_per_key);
    TCase *defaults = feed_case(su, "defaults", setup);
    tcase_add_test(defaults, snapshot_defaults);
    tcase_add_test(defaults, changes_defaults);
    tcase_add_test(feed_case(su, "store_down", setup_down), store_unavailable);
    return itest_exit_status(check_run(su));
}
