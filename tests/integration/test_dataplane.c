/* Integration tests of the public data plane (SPEC sections 5, 6 and 9) against
 * the real lockgate, a real Redis and the test upstream: every status and
 * error code, both credential styles, scope and inclusion, rate limits shared
 * by two instances, what the upstream receives, the audit of unlock-code
 * reads, lock-change events and TLS.
 *
 * Failed authentications and refusals after authentication are throttled
 * per client IP: the tests of the throttle have an instance of their own,
 * and the tests that fail on purpose connect from addresses of their own
 * in 127.0.0.0/8 (the whole block is loopback on Linux). */
#include "itest.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <openssl/sha.h>
#include <poll.h>

#include "lockgate/cred.h"
#include "lockgate/util.h"

#define DP_UPSTREAM_TIMEOUT_MS 300
#define DP_AUTH_FAILURES       5  /* the throttle's limit where it is under test */
#define DP_WORKER_FAILURES     40 /* several workers: the refusals below stay under it */
#define DP_FAILURES_UNLIMITED  1000000
#define DP_BOUND_MS            2000 /* "nothing hangs": far above every configured timeout */
#define DP_PROPAGATE_MS        100  /* SPEC: revocations reach every instance within ms */

/* ---- requests ---- */

struct dp_cred {
    char key[64];
    char secret[64];
    char account[64];
};

enum { DP_BASIC, DP_XAPI };

struct dp_req {
    const char *method; /* NULL: GET */
    int inst;           /* lockgate instance */
    int tls;            /* 1: https with the harness CA; 2: https, system CAs only */
    const char *path;   /* path and query, sent exactly as given */
    const struct dp_cred *cred;
    int style;          /* DP_BASIC or DP_XAPI */
    const char *ip;     /* source address; NULL: 127.0.0.1 */
    const char *rid;    /* X-Request-Id to send */
    const char *hdr[6]; /* more header lines */
};

static char *dp_basic_header(const char *key, const char *secret)
{
    return itest_basic_header(key, secret);
}

/* One request as Q describes; fills RESP (status 0 on a transport error) and
 * returns the milliseconds it took. */
static int64_t dp_do(const struct dp_req *q, struct itest_resp *resp)
{
    memset(resp, 0, sizeof(*resp));
    const struct itest_lg *lg = &IT->lg[q->inst];
    char url[4096];
    snprintf(url, sizeof(url), "%s%s", q->tls ? lg->tls_url : lg->url, q->path);
    struct curl_slist *hl = curl_slist_append(NULL, "Expect:");
    char h1[160], h2[160], rid[1024];
    char *basic = NULL;
    if (q->cred != NULL && q->style == DP_XAPI) {
        snprintf(h1, sizeof(h1), "X-API-Key: %s", q->cred->key);
        snprintf(h2, sizeof(h2), "X-API-Secret: %s", q->cred->secret);
        hl = curl_slist_append(hl, h1);
        hl = curl_slist_append(hl, h2);
    } else if (q->cred != NULL) {
        basic = dp_basic_header(q->cred->key, q->cred->secret);
        hl = curl_slist_append(hl, basic);
    }
    if (q->rid != NULL) {
        snprintf(rid, sizeof(rid), "X-Request-Id: %s", q->rid);
        hl = curl_slist_append(hl, rid);
    }
    for (int i = 0; i < 6 && q->hdr[i] != NULL; i++) hl = curl_slist_append(hl, q->hdr[i]);
    struct itest_buf hb = {0}, bb = {0};
    CURL *h = curl_easy_init();
    ck_assert_ptr_nonnull(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)IT->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)IT->timeout_ms);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, itest_on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &bb);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, itest_on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &hb);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, resp->error);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    char ifc[64];
    if (q->ip != NULL) {
        snprintf(ifc, sizeof(ifc), "host!%s", q->ip);
        curl_easy_setopt(h, CURLOPT_INTERFACE, ifc);
    }
    if (q->tls == 1) curl_easy_setopt(h, CURLOPT_CAINFO, IT->cert);
    const char *m = q->method ? q->method : "GET";
    if (strcmp(m, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    else if (strcmp(m, "GET") != 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
    int64_t t0 = itest_mono_ms();
    CURLcode rc = curl_easy_perform(h);
    int64_t took = itest_mono_ms() - t0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    else if (resp->error[0] == '\0')
        snprintf(resp->error, sizeof(resp->error), "%s", curl_easy_strerror(rc));
    curl_easy_cleanup(h);
    curl_slist_free_all(hl);
    free(basic);
    resp->headers = hb.data ? hb.data : strdup("");
    resp->body = bb.data ? bb.data : strdup("");
    resp->body_len = bb.len;
    return took;
}

/* A header as a non-negative integer, -1 when missing or not all digits. */
static long dp_header_int(const struct itest_resp *r, const char *name)
{
    char *v = itest_resp_header(r, name);
    if (v == NULL) return -1;
    long n = -1;
    if (v[0] != '\0' && strspn(v, "0123456789") == strlen(v) && strlen(v) < 10) n = atol(v);
    free(v);
    return n;
}

static bool dp_sane_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

/* Checks an error answer: status, the exact JSON shape of SPEC section 5,
 * request_id equal to X-Request-Id, and the headers the status requires. */
#define dp_expect_error(r, status, code) dp_expect_error_at(__LINE__, (r), (status), (code))
static void dp_expect_error_at(int line, const struct itest_resp *r, long status, const char *code)
{
    ck_assert_msg(r->status == status, "line %d: status %ld, expected %ld (%s); body: %s", line,
                  r->status, status, code, r->body ? r->body : "");
    char *rid = itest_resp_header(r, "X-Request-Id");
    ck_assert_msg(rid != NULL && dp_sane_id(rid), "line %d: no sane X-Request-Id on a %ld", line,
                  status);
    char *ctype = itest_resp_header(r, "Content-Type");
    ck_assert_msg(ctype != NULL && strstr(ctype, "application/json") != NULL,
                  "line %d: Content-Type %s", line, ctype ? ctype : "(none)");
    free(ctype);
    json_error_t je;
    json_t *doc = json_loads(r->body, 0, &je);
    ck_assert_msg(doc != NULL, "line %d: error body is not JSON: %s", line, r->body);
    json_t *err = json_object_get(doc, "error");
    ck_assert_msg(json_object_size(doc) == 1 && json_is_object(err) && json_object_size(err) == 3,
                  "line %d: error body shape: %s", line, r->body);
    const char *c = json_string_value(json_object_get(err, "code"));
    const char *msg = json_string_value(json_object_get(err, "message"));
    const char *brid = json_string_value(json_object_get(err, "request_id"));
    ck_assert_msg(c != NULL && strcmp(c, code) == 0, "line %d: code %s, expected %s", line,
                  c ? c : "(none)", code);
    ck_assert_msg(msg != NULL && msg[0] != '\0', "line %d: empty message", line);
    ck_assert_msg(brid != NULL && strcmp(brid, rid) == 0,
                  "line %d: body request_id %s differs from X-Request-Id %s", line,
                  brid ? brid : "(none)", rid);
    json_decref(doc);
    free(rid);
    if (status == 401) {
        char *w = itest_resp_header(r, "WWW-Authenticate");
        ck_assert_msg(w != NULL && strcmp(w, "Basic realm=\"lockgate\"") == 0,
                      "line %d: WWW-Authenticate %s", line, w ? w : "(none)");
        free(w);
    }
    if (status == 429)
        ck_assert_msg(dp_header_int(r, "Retry-After") >= 1, "line %d: 429 without Retry-After",
                      line);
}

/* Checks a successful authenticated answer (request id, rate limit headers)
 * and returns its JSON body (new reference; NULL for an empty body). */
#define dp_expect_ok(r) dp_expect_ok_at(__LINE__, (r))
static json_t *dp_expect_ok_at(int line, const struct itest_resp *r)
{
    ck_assert_msg(r->status == 200, "line %d: status %ld (%s), expected 200; body: %s", line,
                  r->status, r->error, r->body ? r->body : "");
    char *rid = itest_resp_header(r, "X-Request-Id");
    ck_assert_msg(rid != NULL && dp_sane_id(rid), "line %d: no sane X-Request-Id", line);
    free(rid);
    long limit = dp_header_int(r, "RateLimit-Limit");
    long remaining = dp_header_int(r, "RateLimit-Remaining");
    long reset = dp_header_int(r, "RateLimit-Reset");
    ck_assert_msg(limit >= 1 && remaining >= 0 && remaining <= limit && reset >= 0,
                  "line %d: RateLimit headers limit=%ld remaining=%ld reset=%ld", line, limit,
                  remaining, reset);
    if (r->body_len == 0) return NULL;
    json_t *doc = json_loads(r->body, 0, NULL);
    ck_assert_msg(doc != NULL, "line %d: body is not JSON: %s", line, r->body);
    return doc;
}

/* Sends Q until it answers WANT (and, when CODE is set, that error code), at
 * most BOUND_MS; returns the elapsed milliseconds or -1. */
static int64_t dp_poll(const struct dp_req *q, long want, const char *code, int bound_ms,
                       int every_ms)
{
    int64_t t0 = itest_mono_ms();
    for (;;) {
        struct itest_resp r;
        dp_do(q, &r);
        bool hit = r.status == want;
        if (hit && code != NULL) {
            json_t *doc = json_loads(r.body, 0, NULL);
            const char *c =
                json_string_value(json_object_get(json_object_get(doc, "error"), "code"));
            hit = c != NULL && strcmp(c, code) == 0;
            json_decref(doc);
        }
        itest_resp_free(&r);
        int64_t took = itest_mono_ms() - t0;
        if (hit) return took;
        if (took > bound_ms) return -1;
        itest_sleep_ms(every_ms);
    }
}

/* ---- raw sockets (bytes curl would not send, or answers curl would hide) ---- */

static int dp_connect(int port, const char *src_ip)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct timeval tv = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (src_ip != NULL) {
        struct sockaddr_in s = {.sin_family = AF_INET};
        inet_pton(AF_INET, src_ip, &s.sin_addr);
        ck_assert_int_eq(bind(fd, (struct sockaddr *)&s, sizeof(s)), 0);
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_msg(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect to %d: %s", port,
                  strerror(errno));
    return fd;
}

static void dp_send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n <= 0) return; /* the server may close early on purpose */
        data += n;
        len -= (size_t)n;
    }
}

/* Reads until EOF, MAX bytes or BOUND_MS; returns the bytes (malloc'd). */
static char *dp_read_all(int fd, size_t max, int bound_ms, size_t *outlen)
{
    char *buf = calloc(1, max + 1);
    size_t len = 0;
    int64_t end = itest_mono_ms() + bound_ms;
    while (len < max && itest_mono_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0) continue;
        ssize_t n = recv(fd, buf + len, max - len, 0);
        if (n <= 0) break;
        len += (size_t)n;
    }
    *outlen = len;
    return buf;
}

/* One raw request on a fresh connection ("Connection: close" expected in
 * REQ); the answer is split into RESP (status, header block, body). */
static void dp_raw(int port, const char *src_ip, const char *req, size_t len,
                   struct itest_resp *resp)
{
    memset(resp, 0, sizeof(*resp));
    int fd = dp_connect(port, src_ip);
    dp_send_all(fd, req, len);
    size_t n;
    char *all = dp_read_all(fd, 1 << 20, IT->timeout_ms, &n);
    close(fd);
    char *sep = strstr(all, "\r\n\r\n");
    if (strncmp(all, "HTTP/1.", 7) == 0 && strlen(all) > 12) resp->status = atol(all + 9);
    size_t head = sep ? (size_t)(sep - all) + 2 : n;
    resp->headers = strndup(all, head);
    resp->body_len = sep ? n - head - 2 : 0;
    resp->body = malloc(resp->body_len + 1);
    memcpy(resp->body, sep ? sep + 4 : "", resp->body_len);
    resp->body[resp->body_len] = '\0';
    free(all);
}

/* ---- data through the admin API ---- */

static int dp_seq;

static json_t *dp_admin_expect(long want, const char *method, const char *path, const char *body)
{
    long st = 0;
    json_t *j = itest_admin(method, path, body, &st);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    ck_assert_msg(st == want, "%s %s -> %ld, expected %ld: %s", method, path, st, want,
                  text ? text : "(no body)");
    free(text);
    return j;
}

static void dp_account(char out[64], const char *name) { itest_account(out, name); }

static void dp_facility(char out[72], const char *acct, const char *prefix)
{
    itest_facility(out, acct, NULL, prefix);
}

/* A key of ACCT; SCOPE is the rest of the JSON body, e.g. "\"all_facilities\":true". */
static void dp_key(struct dp_cred *k, const char *acct, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void dp_key(struct dp_cred *k, const char *acct, const char *fmt, ...)
{
    char scope[1024], body[1200], path[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(scope, sizeof(scope), fmt, ap);
    va_end(ap);
    snprintf(body, sizeof(body), "{\"name\":\"Call Center %d\",%s}", ++dp_seq, scope);
    snprintf(path, sizeof(path), "/admin/v1/accounts/%s/keys", acct);
    json_t *j = dp_admin_expect(201, "POST", path, body);
    snprintf(k->key, sizeof(k->key), "%s", itest_json_str(j, "key_id"));
    snprintf(k->secret, sizeof(k->secret), "%s", itest_json_str(j, "secret"));
    snprintf(k->account, sizeof(k->account), "%s", acct);
    ck_assert_msg(k->key[0] != '\0' && k->secret[0] != '\0', "key without id or secret");
    json_decref(j);
}

static void dp_feed_key(struct dp_cred *k)
{
    char body[128];
    snprintf(body, sizeof(body), "{\"name\":\"Feed %d\"}", ++dp_seq);
    json_t *j = dp_admin_expect(201, "POST", "/admin/v1/feed-keys", body);
    snprintf(k->key, sizeof(k->key), "%s", itest_json_str(j, "key_id"));
    snprintf(k->secret, sizeof(k->secret), "%s", itest_json_str(j, "secret"));
    k->account[0] = '\0';
    json_decref(j);
}

static void dp_key_action(const struct dp_cred *k, const char *action)
{
    char path[160];
    snprintf(path, sizeof(path), "/admin/v1/keys/%s/%s", k->key, action);
    json_decref(dp_admin_expect(200, "POST", path, NULL));
}

static void dp_facility_included(const char *fac, bool included)
{
    char path[160];
    snprintf(path, sizeof(path), "/admin/v1/facilities/%s", fac);
    json_decref(dp_admin_expect(200, "PATCH", path,
                                included ? "{\"included\":true}" : "{\"included\":false}"));
}

/* The unlock code the test upstream gives UNIT of FAC (see upstream_server.c). */
static void dp_expected_code(const char *fac, const char *unit, char out[5])
{
    char s[160];
    unsigned char d[SHA256_DIGEST_LENGTH];
    snprintf(s, sizeof(s), "%s/%s", fac, unit);
    SHA256((const unsigned char *)s, strlen(s), d);
    uint32_t v = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
    snprintf(out, 5, "%04u", (unsigned)(v % 10000));
}

/* The sorted facility ids of a GET /v1/facilities answer, comma-joined. */
static void dp_listed(json_t *doc, char *out, size_t cap)
{
    json_t *list = json_object_get(doc, "facilities");
    ck_assert_msg(json_is_array(list), "no facilities array");
    out[0] = '\0';
    size_t i;
    json_t *f;
    json_array_foreach (list, i, f) {
        ck_assert_msg(json_object_size(f) == 2 && json_is_string(json_object_get(f, "name")),
                      "facility item shape");
        size_t used = strlen(out);
        snprintf(out + used, cap - used, "%s%s", i ? "," : "", itest_json_str(f, "facility_id"));
    }
}

static void dp_join_sorted(char *out, size_t cap, const char *a, const char *b, const char *c)
{
    const char *v[3] = {a, b, c};
    int n = c ? 3 : b ? 2 : 1;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (strcmp(v[j], v[i]) < 0) {
                const char *t = v[i];
                v[i] = v[j];
                v[j] = t;
            }
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        size_t used = strlen(out);
        snprintf(out + used, cap - used, "%s%s", i ? "," : "", v[i]);
    }
}

static const char *dp_path(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *dp_path(const char *fmt, ...)
{
    static char bufs[32][4096]; /* rotation: a test keeps at most this many at once */
    static int next;
    char *b = bufs[next++ % 32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, 4096, fmt, ap);
    va_end(ap);
    return b;
}

struct dp_ready {
    int inst;
    const struct dp_cred *cred;
};

/* The instance answers the key with something other than 503. */
static int dp_serves(void *arg)
{
    const struct dp_ready *w = arg;
    struct itest_resp r;
    dp_do(
        &(struct dp_req){
            .inst = w->inst, .path = "/v1/facilities", .cred = w->cred, .ip = "127.0.0.72"},
        &r);
    int ok = r.status != 503;
    itest_resp_free(&r);
    return ok;
}

/* ---- no credential in any log line ----
 * An instance with the access log on and debug logging sees successes,
 * refusals, a wrong secret and malformed credentials: neither the secret,
 * nor the Basic token, nor an Authorization header reaches its log or stdout. */
START_TEST(test_no_secret_in_logs)
{
    char acct[64], fac[72];
    struct dp_cred k, wrong;
    dp_account(acct, "Quiet Logs Inc");
    dp_facility(fac, acct, NULL);
    dp_key(&k, acct, "\"all_facilities\":true");
    wrong = k;
    ck_assert_int_eq(lg_cred_secret_new(wrong.secret), 0);
    struct itest_opts o = IT->lg[0].opts;
    o.access_log = "on";
    o.log_level = "debug";
    int i2 = itest_lg_start(&o);
    struct itest_resp r;
    /* a new instance answers 503 until its facility table is loaded (slow
     * under valgrind): wait for that, not for anything this test checks */
    struct dp_ready ready = {i2, &k};
    itest_wait(dp_serves, &ready, "the new instance serving /v1/facilities");
    const char *paths[] = {"/v1/facilities",
                           dp_path("/v1/facilities/%s/units/U001/unlock-code", fac),
                           dp_path("/v1/facilities/%s/units/U005/unlock-code", fac)};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        for (int style = DP_BASIC; style <= DP_XAPI; style++) {
            dp_do(
                &(struct dp_req){
                    .inst = i2, .path = paths[i], .cred = &k, .style = style, .ip = "127.0.0.70"},
                &r);
            ck_assert_msg(r.status == 200 || r.status == 403, "%s: %ld", paths[i], r.status);
            itest_resp_free(&r);
        }
    dp_do(
        &(struct dp_req){.inst = i2, .path = "/v1/facilities", .cred = &wrong, .ip = "127.0.0.71"},
        &r);
    dp_expect_error(&r, 401, "invalid_credentials");
    itest_resp_free(&r);
    char mangled[200];
    snprintf(mangled, sizeof(mangled), "X-API-Secret: %sx", k.secret);
    dp_do(&(struct dp_req){.inst = i2,
                           .path = "/v1/facilities",
                           .ip = "127.0.0.71",
                           .hdr = {dp_path("X-API-Key: %s", k.key), mangled}},
          &r);
    dp_expect_error(&r, 401, "invalid_credentials");
    itest_resp_free(&r);

    /* the admin API on the same instance: a new secret created, revealed and
     * rotated, each carried by the admin token */
    long st;
    json_t *made = itest_admin_at(i2, "POST", dp_path("/admin/v1/accounts/%s/keys", acct),
                                  "{\"name\":\"logged?\",\"all_facilities\":true}", &st);
    ck_assert_int_eq(st, 201);
    char made_secret[64], rotated_secret[64];
    snprintf(made_secret, sizeof(made_secret), "%s", itest_json_str(made, "secret"));
    json_decref(itest_admin_at(i2, "POST",
                               dp_path("/admin/v1/keys/%s/reveal", itest_json_str(made, "key_id")),
                               NULL, &st));
    ck_assert_int_eq(st, 200);
    json_t *rot = itest_admin_at(
        i2, "POST", dp_path("/admin/v1/keys/%s/rotate", itest_json_str(made, "key_id")), NULL, &st);
    ck_assert_int_eq(st, 201);
    snprintf(rotated_secret, sizeof(rotated_secret), "%s", itest_json_str(rot, "secret"));
    json_decref(rot);
    json_decref(made);

    char *basic = dp_basic_header(k.key, k.secret); /* "Authorization: Basic ..." */
    const char *token = strstr(basic, "Basic ") + 6;
    itest_lg_stop(i2); /* everything written out: buffered access log lines too */
    char *texts[2] = {itest_lg_log(i2), itest_file_read(IT->lg[i2].out)};
    /* one access log line per request, each valid JSON */
    int lines = 0;
    for (char *line = texts[1], *end; (end = strchr(line, '\n')) != NULL; line = end + 1) {
        if (line[0] != '{') continue;
        json_t *j = json_loadb(line, (size_t)(end - line), 0, NULL);
        ck_assert_msg(j != NULL, "access log line is not JSON: %.*s", (int)(end - line), line);
        ck_assert_ptr_nonnull(json_object_get(j, "request_id"));
        json_decref(j);
        lines++;
    }
    ck_assert_msg(lines >= 8, "%d access log lines for 8 requests", lines);
    for (int t = 0; t < 2; t++) {
        ck_assert_msg(strstr(texts[t], k.secret) == NULL, "a secret reached %s",
                      t ? "stdout" : "the log");
        ck_assert_msg(strstr(texts[t], wrong.secret) == NULL, "a wrong secret was logged");
        ck_assert_msg(strstr(texts[t], token) == NULL, "a Basic token was logged");
        ck_assert_msg(strstr(texts[t], made_secret) == NULL, "a created secret was logged");
        ck_assert_msg(strstr(texts[t], rotated_secret) == NULL, "a rotated secret was logged");
        ck_assert_msg(strstr(texts[t], IT->token) == NULL, "the admin token was logged");
        ck_assert_msg(strcasestr(texts[t], "authorization") == NULL,
                      "an Authorization header was logged");
        free(texts[t]);
    }
    free(basic);
}
END_TEST

/* ---- /metrics counts the public answers ---- */

static long dp_metric(const char *name)
{
    char url[128];
    struct itest_resp r;
    snprintf(url, sizeof(url), "%s/metrics", IT->lg[0].admin_url);
    ck_assert_int_eq(itest_http("GET", url, NULL, NULL, 0, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    char want[160];
    snprintf(want, sizeof(want), "\n%s ", name);
    const char *at = strstr(r.body, want);
    long v = at ? atol(at + strlen(want)) : 0;
    itest_resp_free(&r);
    return v;
}

START_TEST(test_metrics)
{
    char acct[64];
    struct dp_cred k;
    dp_account(acct, "Metered Inc");
    dp_key(&k, acct, "\"all_facilities\":true");
    long ok0 = dp_metric("lockgate_requests_total{status=\"200\"}");
    long nf0 = dp_metric("lockgate_requests_total{status=\"404\"}");
    long n0 = dp_metric("lockgate_request_duration_seconds_count");
    struct itest_resp r;
    for (int i = 0; i < 3; i++) {
        dp_do(&(struct dp_req){.path = "/v1/facilities", .cred = &k}, &r);
        json_decref(dp_expect_ok(&r));
        itest_resp_free(&r);
    }
    dp_do(&(struct dp_req){.path = "/v1/facilities/nope", .cred = &k}, &r);
    dp_expect_error(&r, 404, "not_found");
    itest_resp_free(&r);
    ck_assert_int_eq(dp_metric("lockgate_requests_total{status=\"200\"}") - ok0, 3);
    ck_assert_int_eq(dp_metric("lockgate_requests_total{status=\"404\"}") - nf0, 1);
    ck_assert_int_eq(dp_metric("lockgate_request_duration_seconds_count") - n0, 4);
}
END_TEST

/* ---- fixtures ---- */

/* The core tests refuse many requests on purpose; the throttle has a TCase
 * of its own. */
static void core_setup(void)
{
    struct itest_opts o = {0};
    o.upstream_timeout_ms = DP_UPSTREAM_TIMEOUT_MS;
    o.upstream_connect_timeout_ms = DP_UPSTREAM_TIMEOUT_MS / 2;
    o.auth_failures_per_min = DP_FAILURES_UNLIMITED;
    itest_start(&o);
}

static void plain_setup(void)
{
    struct itest_opts o = {0};
    itest_start(&o);
}

static void throttle_setup(void)
{
    struct itest_opts o = {0};
    o.auth_failures_per_min = DP_AUTH_FAILURES;
    itest_start(&o);
}

static void tls_setup(void)
{
    struct itest_opts o = {0};
    o.tls = 1;
    itest_start(&o);
}

static void workers_setup(void)
{
    struct itest_opts o = {0};
    o.workers = 2;
    o.auth_failures_per_min = DP_WORKER_FAILURES;
    o.rate_per_sec = 3; /* [limits] defaults, for keys without their own */
    o.burst = 7;
    itest_start(&o);
}

static void fixture_teardown(void) { itest_stop(); }

/* ---- 400 ---- */

START_TEST(test_bad_request)
{
    char acct[64], fac[72];
    struct dp_cred k;
    dp_account(acct, "Bad Requests Inc");
    dp_facility(fac, acct, NULL);
    dp_key(&k, acct, "\"all_facilities\":true");
    char id64[65], id65[66], longq[1200];
    memset(id64, 'a', 64);
    id64[64] = '\0';
    memset(id65, 'b', 65);
    id65[65] = '\0';
    memset(longq, 'q', sizeof(longq) - 1);
    longq[sizeof(longq) - 1] = '\0';
    const char *bad[] = {
        "/v1/facilities/..",
        "/v1/facilities/../facilities",
        dp_path("/v1/facilities/%s/units/..", fac),
        dp_path("/v1/facilities/%s/../%s/units", fac, fac),
        "/v1/facilities/%2F",
        dp_path("/v1/facilities/%s%%2F..%%2F/units", fac),
        dp_path("/v1/facilities/%s/units/U001%%2Funlock-code", fac),
        dp_path("/v1/facilities/%s", id65),
        dp_path("/v1/facilities/%s/units/%s", fac, id65),
        dp_path("/v1/facilities/%s/units/%s/unlock-code", fac, id65),
        dp_path("/v1/facilities/%s/units?x=%s", fac, longq),
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct itest_resp r;
        dp_do(&(struct dp_req){.path = bad[i], .cred = &k}, &r);
        ck_assert_msg(r.status == 400, "%.200s -> %ld, expected 400", bad[i], r.status);
        dp_expect_error(&r, 400, "bad_request");
        itest_resp_free(&r);
        /* the path is judged before the credentials */
        dp_do(&(struct dp_req){.path = bad[i]}, &r);
        dp_expect_error(&r, 400, "bad_request");
        itest_resp_free(&r);
    }
    /* the boundary: 64 characters is a well-formed id, merely unknown */
    struct itest_resp r;
    dp_do(&(struct dp_req){.path = dp_path("/v1/facilities/%s", id64), .cred = &k}, &r);
    dp_expect_error(&r, 404, "not_found");
    itest_resp_free(&r);
    /* a query with a character that has no place in one (raw: curl would drop it) */
    char *basic = dp_basic_header(k.key, k.secret);
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "GET /v1/facilities/%s/units?a=#b HTTP/1.1\r\nHost: x\r\n%s\r\n"
                     "Connection: close\r\n\r\n",
                     fac, basic);
    dp_raw(IT->lg[0].port, NULL, req, (size_t)n, &r);
    dp_expect_error(&r, 400, "bad_request");
    itest_resp_free(&r);
    free(basic);
    /* the same facility with a clean query is served */
    dp_do(
        &(struct dp_req){.path = dp_path("/v1/facilities/%s/units?status=vacant", fac), .cred = &k},
        &r);
    json_decref(dp_expect_ok(&r));
    itest_resp_free(&r);
}
END_TEST

/* ---- 401, both credential styles ---- */

START_TEST(test_unauthenticated)
{
    char acct[64], fac[72];
    struct dp_cred k;
    dp_account(acct, "Auth Inc");
    dp_facility(fac, acct, NULL);
    dp_key(&k, acct, "\"all_facilities\":true");
    const char *path = dp_path("/v1/facilities/%s/units/U001/unlock-code", fac);
    struct itest_resp r;

    dp_do(&(struct dp_req){.path = path, .ip = "127.0.0.10"}, &r);
    dp_expect_error(&r, 401, "missing_credentials");
    itest_resp_free(&r);

    /* malformed: not our key form, not Basic, no colon, a lone X-API-Key */
    dp_do(&(struct dp_req){.path = path,
                           .ip = "127.0.0.11",
                           .hdr = {"Authorization: Basic Zm9vOmJhcg=="}},
          &r);
    dp_expect_error(&r, 401, "invalid_credentials");
    itest_resp_free(&r);
    dp_do(&(struct dp_req){.path = path, .ip = "127.0.0.11", .hdr = {"Authorization: Bearer abc"}},
          &r);
    dp_expect_error(&r, 401, "invalid_credentials");
    itest_resp_free(&r);
    dp_do(&(struct dp_req){.path = path,
                           .ip = "127.0.0.12",
                           .hdr = {"Authorization: Basic bm9jb2xvbg=="}},
          &r);
    dp_expect_error(&r, 401, "invalid_credentials");
    itest_resp_free(&r);
    char lone[128];
    snprintf(lone, sizeof(lone), "X-API-Key: %s", k.key);
    dp_do(&(struct dp_req){.path = path, .ip = "127.0.0.12", .hdr = {lone}}, &r);
    dp_expect_error(&r, 401, "invalid_credentials");
    itest_resp_free(&r);

    /* both styles on one request, even with the right credentials: 400 */
    char xkey[128], xsecret[128];
    snprintf(xkey, sizeof(xkey), "X-API-Key: %s", k.key);
    snprintf(xsecret, sizeof(xsecret), "X-API-Secret: %s", k.secret);
    const char *both[][2] = {{xkey, xsecret}, {xkey, NULL}, {xsecret, NULL}};
    for (size_t i = 0; i < 3; i++) {
        dp_do(
            &(struct dp_req){
                .path = path, .cred = &k, .ip = "127.0.0.16", .hdr = {both[i][0], both[i][1]}},
            &r);
        dp_expect_error(&r, 400, "bad_request");
        itest_resp_free(&r);
    }

    /* bad checksum: the last checksum character of the key, and of the secret, changed */
    struct dp_cred bad = k;
    size_t kl = strlen(bad.key), sl = strlen(bad.secret);
    bad.key[kl - 1] = bad.key[kl - 1] == 'A' ? 'B' : 'A';
    ck_assert(!lg_cred_key_valid(bad.key, kl));
    dp_do(&(struct dp_req){.path = path, .cred = &bad, .ip = "127.0.0.13"}, &r);
    dp_expect_error(&r, 401, "invalid_credentials");
    itest_resp_free(&r);
    bad = k;
    bad.secret[sl - 1] = bad.secret[sl - 1] == 'A' ? 'B' : 'A';
    ck_assert(!lg_cred_secret_valid(bad.secret, sl));
    dp_do(&(struct dp_req){.path = path, .cred = &bad, .style = DP_XAPI, .ip = "127.0.0.13"}, &r);
    dp_expect_error(&r, 401, "invalid_credentials");
    itest_resp_free(&r);

    /* well formed but unknown key */
    struct dp_cred unknown = k;
    ck_assert_int_eq(lg_cred_key_new(unknown.key), 0);
    ck_assert_int_eq(lg_cred_secret_new(unknown.secret), 0);
    dp_do(&(struct dp_req){.path = path, .cred = &unknown, .ip = "127.0.0.14"}, &r);
    dp_expect_error(&r, 401, "invalid_credentials");
    itest_resp_free(&r);

    /* the right key, a well-formed wrong secret: both styles */
    struct dp_cred wrong = k;
    ck_assert_int_eq(lg_cred_secret_new(wrong.secret), 0);
    dp_do(&(struct dp_req){.path = path, .cred = &wrong, .ip = "127.0.0.15"}, &r);
    dp_expect_error(&r, 401, "invalid_credentials");
    itest_resp_free(&r);
    dp_do(&(struct dp_req){.path = path, .cred = &wrong, .style = DP_XAPI, .ip = "127.0.0.15"}, &r);
    dp_expect_error(&r, 401, "invalid_credentials");
    itest_resp_free(&r);

    /* and the right secret, both styles, still works (nothing above locked it) */
    char code[5];
    dp_expected_code(fac, "U001", code);
    for (int style = DP_BASIC; style <= DP_XAPI; style++) {
        dp_do(&(struct dp_req){.path = path, .cred = &k, .style = style}, &r);
        json_t *doc = dp_expect_ok(&r);
        ck_assert_str_eq(itest_json_str(doc, "unlock_code"), code);
        ck_assert_str_eq(itest_json_str(doc, "unit_id"), "U001");
        json_decref(doc);
        itest_resp_free(&r);
    }
}
END_TEST

/* ---- 429 after too many failed authentications from one IP ----
 * [limits] auth_failures_per_min from the config applies: with 5, the 6th
 * request from the IP is refused, even with the right credentials. */

START_TEST(test_auth_failure_throttle)
{
    char acct[64];
    struct dp_cred k, wrong;
    dp_account(acct, "Throttle Inc");
    dp_key(&k, acct, "\"all_facilities\":true");
    wrong = k;
    ck_assert_int_eq(lg_cred_secret_new(wrong.secret), 0);
    const char *ip = "127.0.0.60";
    /* The count is per wall-clock minute: start early enough in one that every
     * failure and the checks after them fall into the same minute. */
    int64_t sec = (lg_now_ms() / 1000) % 60;
    if (sec > 50) itest_sleep_ms((int)(61 - sec) * 1000);
    struct itest_resp r;
    for (int i = 0; i < DP_AUTH_FAILURES; i++) {
        dp_do(&(struct dp_req){.path = "/v1/facilities", .cred = &wrong, .ip = ip}, &r);
        dp_expect_error(&r, 401, "invalid_credentials");
        itest_resp_free(&r);
    }
    /* over the limit: the right credentials get 429 too, and so does anything else */
    dp_do(&(struct dp_req){.path = "/v1/facilities", .cred = &k, .ip = ip}, &r);
    dp_expect_error(&r, 429, "rate_limited");
    long retry = dp_header_int(&r, "Retry-After");
    ck_assert_msg(retry >= 1 && retry <= 60, "Retry-After %ld", retry);
    itest_resp_free(&r);
    dp_do(&(struct dp_req){.path = "/v1/facilities", .cred = &k, .style = DP_XAPI, .ip = ip}, &r);
    dp_expect_error(&r, 429, "rate_limited");
    itest_resp_free(&r);
    dp_do(&(struct dp_req){.path = "/v1/facilities", .cred = &wrong, .ip = ip}, &r);
    dp_expect_error(&r, 429, "rate_limited");
    itest_resp_free(&r);
    dp_do(&(struct dp_req){.path = "/v1/facilities", .ip = ip}, &r);
    dp_expect_error(&r, 429, "rate_limited");
    itest_resp_free(&r);
    /* other clients are not affected */
    dp_do(&(struct dp_req){.path = "/v1/facilities", .cred = &k, .ip = "127.0.0.61"}, &r);
    json_decref(dp_expect_ok(&r));
    itest_resp_free(&r);
    /* once the minute is over, the right credentials work again from that IP */
    fprintf(stderr, "test_auth_failure_throttle: waiting %ld s for the next minute\n", retry);
    itest_sleep_ms((int)retry * 1000 + 300);
    dp_do(&(struct dp_req){.path = "/v1/facilities", .cred = &k, .ip = ip}, &r);
    json_decref(dp_expect_ok(&r));
    itest_resp_free(&r);
}
END_TEST

/* ---- refusals after authentication count toward the same throttle ----
 * A key that is locked, used from outside its allowlist, on a route of the
 * other role or on a facility it may not see: each of the four counts, so
 * the DP_AUTH_FAILURES-th refusal (one kind twice) leaves that IP with 429,
 * and none of them used quota. */

START_TEST(test_refusal_throttle)
{
    char acct[64], fac[72], other[72];
    struct dp_cred good, locked, only10, scoped, feed;
    dp_account(acct, "Refusals Inc");
    dp_facility(fac, acct, NULL);
    dp_facility(other, acct, NULL);
    dp_key(&good, acct, "\"all_facilities\":true");
    dp_key(&locked, acct, "\"all_facilities\":true");
    dp_key(&only10, acct, "\"all_facilities\":true,\"allowed_cidrs\":[\"10.0.0.0/8\"]");
    dp_key(&scoped, acct, "\"all_facilities\":false,\"facilities\":[\"%s\"]", fac);
    dp_feed_key(&feed);
    dp_key_action(&locked, "disable");
    /* the lock has reached the gateway (these refusals count elsewhere) */
    ck_assert(
        dp_poll(&(struct dp_req){.path = "/v1/facilities", .cred = &locked, .ip = "127.0.0.63"},
                403, "key_disabled", IT->timeout_ms, 5) >= 0);
    const char *ip = "127.0.0.62";
    int64_t sec = (lg_now_ms() / 1000) % 60; /* one wall-clock minute, as above */
    if (sec > 50) itest_sleep_ms((int)(61 - sec) * 1000);
    struct {
        const struct dp_cred *cred;
        const char *path;
        long status;
        const char *code;
    } refusals[DP_AUTH_FAILURES] = {
        {&locked, "/v1/facilities", 403, "key_disabled"},
        {&only10, "/v1/facilities", 403, "ip_not_allowed"},
        {&feed, "/v1/facilities", 403, "forbidden"},
        {&scoped, dp_path("/v1/facilities/%s/units/U001", other), 404, "not_found"},
        {&scoped, dp_path("/v1/facilities/%s", other), 404, "not_found"},
    };
    struct itest_resp r;
    for (int i = 0; i < DP_AUTH_FAILURES; i++) {
        dp_do(&(struct dp_req){.path = refusals[i].path, .cred = refusals[i].cred, .ip = ip}, &r);
        dp_expect_error(&r, refusals[i].status, refusals[i].code);
        itest_resp_free(&r);
    }
    dp_do(&(struct dp_req){.path = "/v1/facilities", .cred = &good, .ip = ip}, &r);
    dp_expect_error(&r, 429, "rate_limited");
    itest_resp_free(&r);
    /* other clients are not affected, and the refusals used no quota */
    dp_do(&(struct dp_req){.path = dp_path("/v1/facilities/%s", fac), .cred = &scoped}, &r);
    json_decref(dp_expect_ok(&r));
    ck_assert_int_eq(dp_header_int(&r, "RateLimit-Remaining"),
                     dp_header_int(&r, "RateLimit-Limit") - 1);
    itest_resp_free(&r);
}
END_TEST

/* ---- 403 key_disabled: locked, expired; rotated and deleted keys refused ---- */

START_TEST(test_key_disabled)
{
    char acct[64], fac[72];
    struct dp_cred k;
    dp_account(acct, "Locked Inc");
    dp_facility(fac, acct, NULL);
    dp_key(&k, acct, "\"facilities\":[\"%s\"],\"all_facilities\":false", fac);
    struct dp_req q = {.path = dp_path("/v1/facilities/%s", fac), .cred = &k};
    struct itest_resp r;
    dp_do(&q, &r);
    json_decref(dp_expect_ok(&r));
    itest_resp_free(&r);

    dp_key_action(&k, "disable");
    ck_assert_msg(dp_poll(&q, 403, "key_disabled", IT->timeout_ms, 5) >= 0,
                  "a disabled key is still served");
    dp_do(&q, &r);
    dp_expect_error(&r, 403, "key_disabled");
    itest_resp_free(&r);
    q.style = DP_XAPI;
    dp_do(&q, &r);
    dp_expect_error(&r, 403, "key_disabled");
    itest_resp_free(&r);

    dp_key_action(&k, "enable");
    ck_assert_msg(dp_poll(&q, 200, NULL, IT->timeout_ms, 5) >= 0, "an enabled key is refused");

    /* rotated without grace: the old key is refused at once, the new one has
     * the same scope (its facility, nothing else) */
    char other[72];
    dp_facility(other, acct, NULL);
    json_t *rot = dp_admin_expect(201, "POST", dp_path("/admin/v1/keys/%s/rotate", k.key), NULL);
    struct dp_cred k2;
    snprintf(k2.key, sizeof(k2.key), "%s", itest_json_str(rot, "key_id"));
    snprintf(k2.secret, sizeof(k2.secret), "%s", itest_json_str(rot, "secret"));
    json_decref(rot);
    q.style = DP_BASIC;
    ck_assert_msg(dp_poll(&q, 403, "key_disabled", IT->timeout_ms, 5) >= 0,
                  "a key rotated away from is still served");
    struct dp_req q2 = {.path = q.path, .cred = &k2};
    dp_do(&q2, &r);
    json_decref(dp_expect_ok(&r));
    itest_resp_free(&r);
    dp_do(&(struct dp_req){.path = dp_path("/v1/facilities/%s", other), .cred = &k2}, &r);
    dp_expect_error(&r, 404, "not_found");
    itest_resp_free(&r);
    /* deleted: the key no longer exists at all */
    json_decref(dp_admin_expect(204, "DELETE", dp_path("/admin/v1/keys/%s", k2.key), NULL));
    ck_assert_msg(dp_poll(&q2, 401, "invalid_credentials", IT->timeout_ms, 5) >= 0,
                  "a deleted key is still served");

    /* expiry: a key valid for a few seconds */
    struct dp_cred e;
    char at[LG_TIME_LEN];
    int64_t expires = lg_now_ms() + 3000;
    lg_time_format(expires, at);
    dp_key(&e, acct, "\"all_facilities\":true,\"expires_at\":\"%s\"", at);
    struct dp_req qe = {.path = "/v1/facilities", .cred = &e};
    dp_do(&qe, &r);
    json_decref(dp_expect_ok(&r));
    itest_resp_free(&r);
    int64_t wait = expires - lg_now_ms() + 200;
    if (wait > 0) itest_sleep_ms((int)wait);
    dp_do(&qe, &r);
    dp_expect_error(&r, 403, "key_disabled");
    itest_resp_free(&r);
}
END_TEST

/* ---- 403 ip_not_allowed, and no quota used by it or by a scope refusal ---- */

static char *dp_tat(const char *key_id)
{
    redisContext *c = itest_redis();
    redisReply *rep = itest_redis_cmd(c, "GET lg:rl:%s", key_id);
    char *v = rep->type == REDIS_REPLY_STRING ? strdup(rep->str) : strdup("(nil)");
    freeReplyObject(rep);
    redisFree(c);
    return v;
}

START_TEST(test_ip_not_allowed)
{
    char acct[64];
    struct dp_cred k, only10;
    dp_account(acct, "Allowlist Inc");
    dp_key(&only10, acct, "\"all_facilities\":true,\"allowed_cidrs\":[\"10.0.0.0/8\"]");
    struct itest_resp r;
    dp_do(&(struct dp_req){.path = "/v1/facilities", .cred = &only10}, &r);
    dp_expect_error(&r, 403, "ip_not_allowed");
    itest_resp_free(&r);
    char *tat = dp_tat(only10.key);
    ck_assert_msg(strcmp(tat, "(nil)") == 0, "a refused key has a rate limit state: %s", tat);
    free(tat);

    dp_key(&k, acct,
           "\"all_facilities\":true,\"rate_per_sec\":1,\"burst\":5,"
           "\"allowed_cidrs\":[\"10.0.0.0/8\",\"127.0.0.20\"]");
    dp_do(&(struct dp_req){.path = "/v1/facilities", .cred = &k, .ip = "127.0.0.20"}, &r);
    json_decref(dp_expect_ok(&r));
    long before = dp_header_int(&r, "RateLimit-Remaining");
    itest_resp_free(&r);
    char *tat1 = dp_tat(k.key);
    ck_assert_msg(strcmp(tat1, "(nil)") != 0, "no rate limit state under lg:rl: after a 200");
    for (int i = 0; i < 3; i++) {
        dp_do(&(struct dp_req){.path = "/v1/facilities", .cred = &k, .ip = "127.0.0.21"}, &r);
        dp_expect_error(&r, 403, "ip_not_allowed");
        /* an authenticated refusal still says where the allowance stands */
        ck_assert_int_eq(dp_header_int(&r, "RateLimit-Limit"), 5);
        ck_assert_int_ge(dp_header_int(&r, "RateLimit-Remaining"), 0);
        ck_assert_int_ge(dp_header_int(&r, "RateLimit-Reset"), 0);
        itest_resp_free(&r);
        /* a facility the key may not see: refused before the rate limit too */
        dp_do(&(struct dp_req){.path = "/v1/facilities/no-such-facility/units/U001",
                               .cred = &k,
                               .ip = "127.0.0.20"},
              &r);
        dp_expect_error(&r, 404, "not_found");
        itest_resp_free(&r);
    }
    char *tat2 = dp_tat(k.key);
    ck_assert_msg(strcmp(tat1, tat2) == 0, "refused requests moved the GCRA state: %s -> %s", tat1,
                  tat2);
    free(tat1);
    free(tat2);
    dp_do(&(struct dp_req){.path = "/v1/facilities", .cred = &k, .ip = "127.0.0.20"}, &r);
    json_decref(dp_expect_ok(&r));
    long after = dp_header_int(&r, "RateLimit-Remaining");
    itest_resp_free(&r);
    /* one request's worth spent (refill can only add): the six refusals cost nothing */
    ck_assert_msg(after >= before - 1, "RateLimit-Remaining %ld then %ld", before, after);
}
END_TEST

/* ---- 403 forbidden: wrong role for the route ---- */

START_TEST(test_forbidden_role)
{
    char acct[64], fac[72];
    struct dp_cred api, feed;
    dp_account(acct, "Roles Inc");
    dp_facility(fac, acct, NULL);
    dp_key(&api, acct, "\"all_facilities\":true");
    dp_feed_key(&feed);
    struct itest_resp r;
    const char *feed_routes[] = {"/v1/feed/facilities", "/v1/feed/facilities/changes?cursor=0"};
    for (size_t i = 0; i < 2; i++) {
        dp_do(&(struct dp_req){.path = feed_routes[i], .cred = &api}, &r);
        dp_expect_error(&r, 403, "forbidden");
        itest_resp_free(&r);
    }
    const char *unit_routes[] = {
        "/v1/facilities",
        dp_path("/v1/facilities/%s", fac),
        dp_path("/v1/facilities/%s/units", fac),
        dp_path("/v1/facilities/%s/units/U001", fac),
        dp_path("/v1/facilities/%s/units/U001/unlock-code", fac),
    };
    for (size_t i = 0; i < 5; i++) {
        dp_do(&(struct dp_req){.path = unit_routes[i], .cred = &feed}, &r);
        dp_expect_error(&r, 403, "forbidden");
        itest_resp_free(&r);
    }
    /* each role on its own routes */
    dp_do(&(struct dp_req){.path = "/v1/feed/facilities", .cred = &feed}, &r);
    ck_assert_msg(r.status == 200, "feed key on the feed: %ld %s", r.status, r.body);
    itest_resp_free(&r);
    dp_do(&(struct dp_req){.path = unit_routes[4], .cred = &api}, &r);
    json_decref(dp_expect_ok(&r));
    itest_resp_free(&r);
}
END_TEST

/* ---- 403 code_withheld, and served codes ---- */

START_TEST(test_code_withheld)
{
    char acct[64], fac[72];
    struct dp_cred k;
    dp_account(acct, "Auction Inc");
    dp_facility(fac, acct, NULL);
    dp_key(&k, acct, "\"all_facilities\":true");
    struct itest_resp r;
    const char *auction[] = {"U005", "U010", "U020"};
    for (size_t i = 0; i < 3; i++) {
        dp_do(&(struct dp_req){.path = dp_path("/v1/facilities/%s/units/%s/unlock-code", fac,
                                               auction[i]),
                               .cred = &k},
              &r);
        dp_expect_error(&r, 403, "code_withheld");
        ck_assert_msg(strstr(r.body, "unlock_code") == NULL, "the withheld answer leaks: %s",
                      r.body);
        itest_resp_free(&r);
    }
    const char *served[] = {"U001", "U002", "U003", "U004", "U019"};
    for (size_t i = 0; i < 5; i++) {
        char code[5];
        dp_expected_code(fac, served[i], code);
        dp_do(&(struct dp_req){.path = dp_path("/v1/facilities/%s/units/%s/unlock-code", fac,
                                               served[i]),
                               .cred = &k},
              &r);
        json_t *doc = dp_expect_ok(&r);
        ck_assert_str_eq(itest_json_str(doc, "unlock_code"), code);
        ck_assert_str_eq(itest_json_str(doc, "facility_id"), fac);
        ck_assert_str_ne(itest_json_str(doc, "lock_status"), "assigned_auction");
        json_decref(doc);
        itest_resp_free(&r);
    }
    /* the unit itself (not its code) of an auction lock is not withheld */
    dp_do(&(struct dp_req){.path = dp_path("/v1/facilities/%s/units/U005", fac), .cred = &k}, &r);
    json_t *doc = dp_expect_ok(&r);
    ck_assert_str_eq(itest_json_str(doc, "lock_status"), "assigned_auction");
    json_decref(doc);
    itest_resp_free(&r);
}
END_TEST

/* ---- 404, 405 ---- */

START_TEST(test_not_found_and_method)
{
    char acct[64], fac[72], ghost[72];
    struct dp_cred k;
    dp_account(acct, "Missing Inc");
    dp_facility(fac, acct, NULL);
    dp_key(&k, acct, "\"all_facilities\":true");
    ck_assert_int_eq(lg_id_new("fac_", ghost, sizeof(ghost)), 0);
    const char *missing[] = {
        "/v2/facilities",
        "/v1",
        "/v1/units",
        dp_path("/v1/facilities/%s", ghost),
        dp_path("/v1/facilities/%s/units/U001/unlock-code", ghost),
        dp_path("/v1/facilities/%s/tenants", fac),
        dp_path("/v1/facilities/%s/units/U001/history", fac),
        dp_path("/v1/facilities/%s/units/U999", fac),
        dp_path("/v1/facilities/%s/units/U999/unlock-code", fac),
    };
    struct itest_resp r;
    for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
        dp_do(&(struct dp_req){.path = missing[i], .cred = &k}, &r);
        ck_assert_msg(r.status == 404, "%s -> %ld", missing[i], r.status);
        dp_expect_error(&r, 404, "not_found");
        itest_resp_free(&r);
    }
    /* PURGE and PROPFIND are methods the HTTP library does not know */
    const char *methods[] = {"POST", "DELETE", "PUT", "PATCH", "OPTIONS", "PURGE", "PROPFIND"};
    const char *paths[] = {"/v1/facilities",
                           dp_path("/v1/facilities/%s/units/U001/unlock-code", fac)};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        for (size_t j = 0; j < 2; j++)
            for (int with_cred = 0; with_cred < 2; with_cred++) {
                dp_do(&(struct dp_req){.method = methods[i],
                                       .path = paths[j],
                                       .cred = with_cred ? &k : NULL},
                      &r);
                ck_assert_msg(r.status == 405, "%s %s -> %ld", methods[i], paths[j], r.status);
                dp_expect_error(&r, 405, "method_not_allowed");
                itest_resp_free(&r);
            }
}
END_TEST

/* ---- 429 rate_limited: burst N ---- */

START_TEST(test_rate_limited)
{
    char acct[64], fac[72];
    struct dp_cred k;
    dp_account(acct, "Busy Inc");
    dp_facility(fac, acct, NULL);
    const int burst = 5;
    dp_key(&k, acct, "\"all_facilities\":true,\"rate_per_sec\":1,\"burst\":%d", burst);
    struct itest_resp r;
    int ok = 0;
    for (int i = 0; i < burst + 3; i++) {
        /* alternate the routes: one limit per key, whatever the route */
        const char *path = i % 2 ? "/v1/facilities" : dp_path("/v1/facilities/%s/units", fac);
        dp_do(&(struct dp_req){.path = path, .cred = &k}, &r);
        if (r.status == 200) {
            ck_assert_msg(i == ok, "a success after a 429 (request %d)", i);
            json_decref(dp_expect_ok(&r));
            ck_assert_int_eq(dp_header_int(&r, "RateLimit-Limit"), burst);
            ck_assert_int_eq(dp_header_int(&r, "RateLimit-Remaining"), burst - 1 - i);
            ok++;
        } else {
            dp_expect_error(&r, 429, "rate_limited");
            ck_assert_int_eq(dp_header_int(&r, "RateLimit-Limit"), burst);
            ck_assert_int_eq(dp_header_int(&r, "RateLimit-Remaining"), 0);
            ck_assert_int_ge(dp_header_int(&r, "RateLimit-Reset"), 1);
        }
        itest_resp_free(&r);
    }
    ck_assert_int_eq(ok, burst);
}
END_TEST

/* ---- 502, 504 ---- */

START_TEST(test_upstream_failures)
{
    char acct[64], failf[72], slowf[72], resetf[72], fac[72];
    struct dp_cred k;
    dp_account(acct, "Flaky Inc");
    dp_facility(failf, acct, "fail");
    dp_facility(slowf, acct, "slow");
    dp_facility(resetf, acct, "reset");
    dp_facility(fac, acct, NULL);
    dp_key(&k, acct, "\"all_facilities\":true");
    struct itest_resp r;
    const char *sub[] = {"", "/units", "/units/U001", "/units/U001/unlock-code"};
    for (size_t i = 0; i < 4; i++) {
        int64_t took = dp_do(
            &(struct dp_req){.path = dp_path("/v1/facilities/%s%s", failf, sub[i]), .cred = &k},
            &r);
        dp_expect_error(&r, 502, "upstream_unavailable");
        ck_assert_msg(took < DP_BOUND_MS, "502 took %lld ms", (long long)took);
        itest_resp_free(&r);
        dp_do(&(struct dp_req){.path = dp_path("/v1/facilities/%s%s", resetf, sub[i]), .cred = &k},
              &r);
        dp_expect_error(&r, 502, "upstream_unavailable");
        itest_resp_free(&r);
    }
    /* slower than timeout_ms (300): 504, well before the upstream would answer (3 s) */
    int64_t took =
        dp_do(&(struct dp_req){.path = dp_path("/v1/facilities/%s/units/U001/unlock-code", slowf),
                               .cred = &k},
              &r);
    dp_expect_error(&r, 504, "upstream_timeout");
    ck_assert_msg(took < DP_BOUND_MS, "504 took %lld ms", (long long)took);
    fprintf(stderr, "test_upstream_failures: 504 after %lld ms (timeout_ms %d)\n", (long long)took,
            DP_UPSTREAM_TIMEOUT_MS);
    itest_resp_free(&r);
    /* a slow facility inside the timeout is served */
    dp_do(
        &(struct dp_req){.path = dp_path("/v1/facilities/%s/units?delay_ms=10", slowf), .cred = &k},
        &r);
    json_decref(dp_expect_ok(&r));
    itest_resp_free(&r);
    dp_do(&(struct dp_req){.path = dp_path("/v1/facilities/%s", fac), .cred = &k}, &r);
    json_decref(dp_expect_ok(&r));
    itest_resp_free(&r);

    /* an instance whose upstream is not listening at all */
    int closed = itest_free_port();
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", closed);
    struct itest_opts o = {0};
    o.upstream_url = url;
    o.upstream_timeout_ms = DP_UPSTREAM_TIMEOUT_MS;
    o.upstream_connect_timeout_ms = DP_UPSTREAM_TIMEOUT_MS / 2;
    int i2 = itest_lg_start(&o);
    took = dp_do(
        &(struct dp_req){.inst = i2, .path = dp_path("/v1/facilities/%s", fac), .cred = &k}, &r);
    dp_expect_error(&r, 502, "upstream_unavailable");
    ck_assert_msg(took < DP_BOUND_MS, "502 took %lld ms", (long long)took);
    itest_resp_free(&r);
    /* facilities are served from lockgate's own store regardless */
    dp_do(&(struct dp_req){.inst = i2, .path = "/v1/facilities", .cred = &k}, &r);
    json_decref(dp_expect_ok(&r));
    itest_resp_free(&r);
    itest_lg_stop(i2); /* fails the test on a sanitizer report */
}
END_TEST

/* ---- X-Request-Id, error shape, HEAD ---- */

START_TEST(test_request_id)
{
    char acct[64], fac[72];
    struct dp_cred k;
    dp_account(acct, "Trace Inc");
    dp_facility(fac, acct, NULL);
    dp_key(&k, acct, "\"all_facilities\":true");
    struct itest_resp r;
    const char *sane = "call-42_A.b";
    const char *unit = dp_path("/v1/facilities/%s/units/U001", fac);
    struct dp_req cases[] = {
        {.path = unit, .cred = &k, .rid = sane},                  /* 200 forwarded */
        {.path = "/v1/facilities", .cred = &k, .rid = sane},      /* 200 local */
        {.path = "/v1/facilities/nope", .cred = &k, .rid = sane}, /* 404 */
        {.path = "/v1/facilities/..", .cred = &k, .rid = sane},   /* 400 */
        {.path = unit, .rid = sane, .ip = "127.0.0.30"},          /* 401 */
        {.method = "POST", .path = unit, .rid = sane},            /* 405 */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        dp_do(&cases[i], &r);
        char *rid = itest_resp_header(&r, "X-Request-Id");
        ck_assert_msg(rid != NULL && strcmp(rid, sane) == 0, "case %zu (%ld): X-Request-Id %s", i,
                      r.status, rid ? rid : "(none)");
        if (r.status >= 400) {
            json_t *doc = json_loads(r.body, 0, NULL);
            ck_assert_str_eq(itest_json_str(json_object_get(doc, "error"), "request_id"), sane);
            json_decref(doc);
        }
        free(rid);
        itest_resp_free(&r);
    }
    /* insane ids are replaced by a generated one */
    char longid[201];
    memset(longid, 'r', 200);
    longid[200] = '\0';
    const char *insane[] = {"has spaces in it", longid, "semi;colon", "quote\"d", "a/b"};
    for (size_t i = 0; i < 5; i++) {
        for (int err = 0; err < 2; err++) {
            dp_do(&(struct dp_req){.path = err ? "/v1/facilities/nope" : unit,
                                   .cred = &k,
                                   .rid = insane[i]},
                  &r);
            char *rid = itest_resp_header(&r, "X-Request-Id");
            ck_assert_msg(rid != NULL && strcmp(rid, insane[i]) != 0 && dp_sane_id(rid),
                          "insane id %zu echoed or missing: %s", i, rid ? rid : "(none)");
            if (err)
                dp_expect_error(&r, 404, "not_found");
            else
                json_decref(dp_expect_ok(&r));
            free(rid);
            itest_resp_free(&r);
        }
    }
    /* without one, each answer gets its own */
    char *a, *b;
    dp_do(&(struct dp_req){.path = unit, .cred = &k}, &r);
    a = itest_resp_header(&r, "X-Request-Id");
    itest_resp_free(&r);
    dp_do(&(struct dp_req){.path = unit, .cred = &k}, &r);
    b = itest_resp_header(&r, "X-Request-Id");
    itest_resp_free(&r);
    ck_assert_msg(a && b && strcmp(a, b) != 0, "request ids %s and %s", a ? a : "-", b ? b : "-");
    free(a);
    free(b);
}
END_TEST

/* A HEAD answer carries no body (libevent 2.1.12 would send one): a
 * keep-alive client would read those bytes as the start of its next answer. */
START_TEST(test_head)
{
    char acct[64], fac[72];
    struct dp_cred k;
    dp_account(acct, "Head Inc");
    dp_facility(fac, acct, NULL);
    dp_key(&k, acct, "\"all_facilities\":true");
    char *basic = dp_basic_header(k.key, k.secret);
    struct {
        const char *path;
        long status;
    } cases[] = {
        {"/v1/facilities", 200},
        {dp_path("/v1/facilities/%s", fac), 200},
        {dp_path("/v1/facilities/%s/units/U001/unlock-code", fac), 200},
        {dp_path("/v1/facilities/%s/units/U005/unlock-code", fac), 403},
        {"/v1/facilities/nope", 404},
    };
    char problems[4096] = "";
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char req[1024];
        int n = snprintf(req, sizeof(req),
                         "HEAD %s HTTP/1.1\r\nHost: x\r\n%s\r\nConnection: close\r\n\r\n",
                         cases[i].path, basic);
        struct itest_resp r;
        dp_raw(IT->lg[0].port, NULL, req, (size_t)n, &r);
        ck_assert_msg(r.status == cases[i].status, "HEAD %s -> %ld: %s", cases[i].path, r.status,
                      r.headers);
        char *rid = itest_resp_header(&r, "X-Request-Id");
        ck_assert_msg(rid != NULL, "HEAD %s without X-Request-Id", cases[i].path);
        free(rid);
        ck_assert_msg(dp_header_int(&r, "RateLimit-Remaining") >= 0,
                      "HEAD %s without RateLimit-Remaining", cases[i].path);
        /* every case is tried before failing, so the report names them all */
        if (r.body_len != 0) {
            size_t used = strlen(problems);
            snprintf(problems + used, sizeof(problems) - used, "\n  HEAD %s (%ld): %zu body bytes",
                     cases[i].path, r.status, r.body_len);
        }
        itest_resp_free(&r);
    }
    ck_assert_msg(problems[0] == '\0', "HEAD answered with a body:%s", problems);
    free(basic);
}
END_TEST

/* ---- scope and inclusion ---- */

static json_t *dp_error_without_rid(const struct itest_resp *r)
{
    json_t *doc = json_loads(r->body, 0, NULL);
    ck_assert_ptr_nonnull(doc);
    json_object_del(json_object_get(doc, "error"), "request_id");
    return doc;
}

static int dp_cmp_str(const void *a, const void *b)
{
    return strcasecmp(*(char *const *)a, *(char *const *)b);
}

/* The names of R's headers, sorted, lower-cased, joined by ',' (malloc'd). */
static char *dp_header_names(const struct itest_resp *r)
{
    char *copy = strdup(r->headers), *names[64], *save = NULL;
    int n = 0;
    for (char *line = strtok_r(copy, "\r\n", &save); line != NULL && n < 64;
         line = strtok_r(NULL, "\r\n", &save)) {
        char *colon = strchr(line, ':');
        if (colon == NULL) continue; /* the status line */
        *colon = '\0';
        for (char *p = line; *p; p++) *p = (char)tolower((unsigned char)*p);
        names[n++] = line;
    }
    qsort(names, (size_t)n, sizeof(names[0]), dp_cmp_str);
    size_t cap = strlen(r->headers) + 2, used = 0;
    char *out = calloc(1, cap);
    for (int i = 0; i < n; i++)
        used += (size_t)snprintf(out + used, cap - used, "%s%s", i ? "," : "", names[i]);
    free(copy);
    return out;
}

/* SPEC 5: every facility a key may not see answers the same 404, body and
 * headers. The first 404 seen is the reference (*BODY and *NAMES). */
static void dp_expect_same_404(const struct itest_resp *r, json_t **body, char **names)
{
    dp_expect_error(r, 404, "not_found");
    json_t *doc = dp_error_without_rid(r);
    char *hn = dp_header_names(r);
    if (*body == NULL) {
        *body = json_incref(doc);
        *names = strdup(hn);
    }
    ck_assert_msg(json_equal(*body, doc), "404 bodies differ: %s", r->body);
    ck_assert_msg(strcmp(*names, hn) == 0, "404 headers differ: %s vs %s", *names, hn);
    json_decref(doc);
    free(hn);
}

START_TEST(test_scope)
{
    char a[64], b[64], a1[72], a2[72], b1[72], ghost[72];
    struct dp_cred ka1, kall, kb;
    dp_account(a, "Scope A");
    dp_account(b, "Scope B");
    dp_facility(a1, a, NULL);
    dp_facility(a2, a, NULL);
    dp_facility(b1, b, NULL);
    ck_assert_int_eq(lg_id_new("fac_", ghost, sizeof(ghost)), 0);
    dp_key(&ka1, a, "\"all_facilities\":false,\"facilities\":[\"%s\"]", a1);
    dp_key(&kall, a, "\"all_facilities\":true");
    dp_key(&kb, b, "\"all_facilities\":true");
    struct itest_resp r;
    dp_do(&(struct dp_req){.path = dp_path("/v1/facilities/%s/units/U001/unlock-code", a1),
                           .cred = &ka1},
          &r);
    json_decref(dp_expect_ok(&r));
    itest_resp_free(&r);

    /* out of scope, other account, nonexistent: the same 404, word for word
     * and header for header (excluded and deleted ones are added below) */
    const char *hidden[] = {a2, b1, ghost};
    const char *sub[] = {"", "/units", "/units/U001", "/units/U001/unlock-code"};
    json_t *first = NULL;
    char *first_names = NULL;
    for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < 4; j++) {
            dp_do(&(struct dp_req){.path = dp_path("/v1/facilities/%s%s", hidden[i], sub[j]),
                                   .cred = &ka1},
                  &r);
            dp_expect_same_404(&r, &first, &first_names);
            itest_resp_free(&r);
        }
    /* an all-facilities key of account B does not see account A either */
    dp_do(&(struct dp_req){.path = dp_path("/v1/facilities/%s", a1), .cred = &kb}, &r);
    dp_expect_same_404(&r, &first, &first_names);
    itest_resp_free(&r);
    json_t *doc;

    /* GET /v1/facilities lists exactly what each key sees */
    char want[256], got[256];
    dp_do(&(struct dp_req){.path = "/v1/facilities", .cred = &ka1}, &r);
    doc = dp_expect_ok(&r);
    dp_listed(doc, got, sizeof(got));
    ck_assert_str_eq(got, a1);
    json_decref(doc);
    itest_resp_free(&r);
    dp_do(&(struct dp_req){.path = "/v1/facilities", .cred = &kall}, &r);
    doc = dp_expect_ok(&r);
    dp_listed(doc, got, sizeof(got));
    dp_join_sorted(want, sizeof(want), a1, a2, NULL);
    ck_assert_str_eq(got, want);
    json_decref(doc);
    itest_resp_free(&r);

    /* a facility created after the key is seen by the all-facilities key only */
    char a3[72];
    dp_facility(a3, a, NULL);
    struct dp_req q3 = {.path = dp_path("/v1/facilities/%s", a3), .cred = &kall};
    ck_assert_msg(dp_poll(&q3, 200, NULL, IT->timeout_ms, 5) >= 0,
                  "a new facility is not visible to an all-facilities key");
    dp_do(&(struct dp_req){.path = q3.path, .cred = &ka1}, &r);
    dp_expect_error(&r, 404, "not_found");
    itest_resp_free(&r);
    dp_do(&(struct dp_req){.path = "/v1/facilities", .cred = &kall}, &r);
    doc = dp_expect_ok(&r);
    dp_listed(doc, got, sizeof(got));
    dp_join_sorted(want, sizeof(want), a1, a2, a3);
    ck_assert_str_eq(got, want);
    json_decref(doc);
    itest_resp_free(&r);

    /* excluding A1 hides it from every key and every list; including restores it */
    dp_facility_included(a1, false);
    struct dp_req q1all = {.path = dp_path("/v1/facilities/%s/units/U001/unlock-code", a1),
                           .cred = &kall};
    struct dp_req q1one = {.path = q1all.path, .cred = &ka1};
    ck_assert_msg(dp_poll(&q1all, 404, "not_found", IT->timeout_ms, 5) >= 0,
                  "an excluded facility is still served");
    ck_assert_msg(dp_poll(&q1one, 404, "not_found", IT->timeout_ms, 5) >= 0,
                  "an excluded facility is still served to a scoped key");
    dp_do(&q1all, &r);
    dp_expect_same_404(&r, &first, &first_names);
    itest_resp_free(&r);
    dp_do(&(struct dp_req){.path = "/v1/facilities", .cred = &kall}, &r);
    doc = dp_expect_ok(&r);
    dp_listed(doc, got, sizeof(got));
    dp_join_sorted(want, sizeof(want), a2, a3, NULL);
    ck_assert_str_eq(got, want);
    json_decref(doc);
    itest_resp_free(&r);
    dp_do(&(struct dp_req){.path = "/v1/facilities", .cred = &ka1}, &r);
    doc = dp_expect_ok(&r);
    ck_assert_int_eq(json_array_size(json_object_get(doc, "facilities")), 0);
    json_decref(doc);
    itest_resp_free(&r);

    dp_facility_included(a1, true);
    ck_assert_msg(dp_poll(&q1all, 200, NULL, IT->timeout_ms, 5) >= 0,
                  "an included facility is not served again");
    ck_assert_msg(dp_poll(&q1one, 200, NULL, IT->timeout_ms, 5) >= 0,
                  "an included facility is not served again to a scoped key");
    dp_do(&(struct dp_req){.path = "/v1/facilities", .cred = &kall}, &r);
    doc = dp_expect_ok(&r);
    dp_listed(doc, got, sizeof(got));
    dp_join_sorted(want, sizeof(want), a1, a2, a3);
    ck_assert_str_eq(got, want);
    json_decref(doc);
    itest_resp_free(&r);

    /* changing a key's scope takes effect: A1 -> A2 */
    long st;
    json_decref(itest_adminf(&st, "PATCH", dp_path("/admin/v1/keys/%s", ka1.key),
                             "{\"facilities\":[\"%s\"]}", a2));
    ck_assert_int_eq(st, 200);
    struct dp_req q2one = {.path = dp_path("/v1/facilities/%s", a2), .cred = &ka1};
    ck_assert_msg(dp_poll(&q2one, 200, NULL, IT->timeout_ms, 5) >= 0, "new scope not applied");
    dp_do(&q1one, &r);
    dp_expect_error(&r, 404, "not_found");
    itest_resp_free(&r);

    /* a deleted facility: the same 404 as one that never was */
    json_decref(itest_admin("DELETE", dp_path("/admin/v1/facilities/%s", a3), NULL, &st));
    ck_assert_int_eq(st, 204);
    ck_assert_msg(dp_poll(&q3, 404, "not_found", IT->timeout_ms, 5) >= 0,
                  "a deleted facility is still served");
    dp_do(&q3, &r);
    dp_expect_same_404(&r, &first, &first_names);
    itest_resp_free(&r);
    json_decref(first);
    free(first_names);
}
END_TEST

/* ---- one facility parser: the admin API says what the gateway serves ---- */

/* A facility hash without its included flag (lockgate always writes one; a
 * restore of older data may not) is included, as the facility was created:
 * for the gateway that serves it and for the admin API that shows it. */
START_TEST(test_facility_defaults)
{
    char a[64], f[72];
    struct dp_cred k;
    dp_account(a, "Defaults");
    dp_facility(f, a, NULL);
    dp_key(&k, a, "\"all_facilities\":true");
    redisContext *c = itest_redis();
    freeReplyObject(itest_redis_cmd(c, "HDEL lg:fac:%s included", f));
    redisFree(c);
    /* the rename's event makes every worker read the facility again */
    json_t *j = dp_admin_expect(200, "PATCH", dp_path("/admin/v1/facilities/%s", f),
                                "{\"name\":\"Restored\"}");
    ck_assert_msg(json_is_true(json_object_get(j, "included")),
                  "the admin API shows a facility without an included flag as excluded");
    json_decref(j);
    struct dp_req q = {.path = dp_path("/v1/facilities/%s/units/U001/unlock-code", f), .cred = &k};
    ck_assert_msg(dp_poll(&q, 200, NULL, IT->timeout_ms, 5) >= 0,
                  "a facility without an included flag is not served");
    j = dp_admin_expect(200, "GET", dp_path("/admin/v1/accounts/%s/facilities", a), NULL);
    json_t *listed = json_array_get(json_object_get(j, "facilities"), 0);
    ck_assert_str_eq(itest_json_str(listed, "facility_id"), f);
    ck_assert_str_eq(itest_json_str(listed, "name"), "Restored");
    ck_assert_msg(json_is_true(json_object_get(listed, "included")),
                  "the admin API lists a facility without an included flag as excluded");
    json_decref(j);
}
END_TEST

/* ---- two instances on one Redis ---- */

START_TEST(test_two_instances)
{
    char acct[64], fac[72];
    struct dp_cred k, lim;
    dp_account(acct, "Fleet Inc");
    dp_facility(fac, acct, NULL);
    dp_key(&k, acct, "\"all_facilities\":true");
    struct itest_opts o = IT->lg[0].opts;
    int i2 = itest_lg_start(&o);
    struct itest_resp r;
    const char *path = dp_path("/v1/facilities/%s/units/U002/unlock-code", fac);
    for (int inst = 0; inst < 2; inst++) {
        dp_do(&(struct dp_req){.inst = inst ? i2 : 0, .path = path, .cred = &k}, &r);
        json_decref(dp_expect_ok(&r));
        itest_resp_free(&r);
    }
    /* disabled through instance 0's admin API, refused by instance 1 at once */
    long st;
    int64_t t0 = itest_mono_ms();
    json_decref(itest_admin("POST", dp_path("/admin/v1/keys/%s/disable", k.key), NULL, &st));
    int64_t t_answer = itest_mono_ms();
    ck_assert_int_eq(st, 200);
    int64_t took = dp_poll(&(struct dp_req){.inst = i2, .path = path, .cred = &k}, 403,
                           "key_disabled", DP_PROPAGATE_MS, 2);
    fprintf(stderr,
            "test_two_instances: disable answered after %lld ms; the other instance refused "
            "the key %lld ms after that answer\n",
            (long long)(t_answer - t0), (long long)took);
    ck_assert_msg(took >= 0 && took <= DP_PROPAGATE_MS,
                  "the other instance still served a disabled key after %d ms", DP_PROPAGATE_MS);
    dp_do(&(struct dp_req){.inst = 0, .path = path, .cred = &k}, &r);
    dp_expect_error(&r, 403, "key_disabled");
    itest_resp_free(&r);

    /* one limit for the key, whichever instance answers */
    const int burst = 6;
    dp_key(&lim, acct, "\"all_facilities\":true,\"rate_per_sec\":1,\"burst\":%d", burst);
    int ok = 0, limited = 0;
    for (int n = 0; n < burst + 4; n++) {
        dp_do(&(struct dp_req){.inst = n % 2 ? i2 : 0, .path = "/v1/facilities", .cred = &lim}, &r);
        if (r.status == 200) {
            ck_assert_msg(limited == 0, "a success after a 429 (request %d)", n);
            ok++;
        } else {
            dp_expect_error(&r, 429, "rate_limited");
            limited++;
        }
        itest_resp_free(&r);
    }
    ck_assert_int_eq(ok, burst);
    ck_assert_int_eq(limited, 4);
    itest_lg_stop(i2); /* fails the test on a sanitizer report */
}
END_TEST

/* ---- what the upstream sees ---- */

/* The value of header NAME in a record line (tab-separated "Name: value"), or NULL. */
static char *dp_record_header(const char *line, const char *name)
{
    size_t nlen = strlen(name);
    for (const char *p = strchr(line, '\t'); p != NULL; p = strchr(p + 1, '\t')) {
        const char *f = p + 1;
        if (strncasecmp(f, name, nlen) == 0 && f[nlen] == ':') {
            const char *v = f + nlen + 1;
            while (*v == ' ') v++;
            const char *end = strchr(v, '\t');
            return strndup(v, end ? (size_t)(end - v) : strlen(v));
        }
    }
    return NULL;
}

/* The record line of the request whose X-Request-Id is RID (malloc'd), or NULL. */
static char *dp_record_line(const char *rid)
{
    char *all = itest_file_read(IT->upstream_record);
    char *found = NULL;
    for (char *save = NULL, *line = strtok_r(all, "\n", &save); line && !found;
         line = strtok_r(NULL, "\n", &save)) {
        char *v = dp_record_header(line, "X-Request-Id");
        if (v != NULL && strcmp(v, rid) == 0) found = strdup(line);
        free(v);
    }
    free(all);
    return found;
}

START_TEST(test_upstream_sees)
{
    char acct[64], fac[72];
    struct dp_cred k;
    dp_account(acct, "Privacy Inc");
    dp_facility(fac, acct, NULL);
    dp_key(&k, acct, "\"all_facilities\":true");
    char rid[2][40];
    const char *paths[2] = {dp_path("/v1/facilities/%s/units?status=vacant&page=2", fac),
                            dp_path("/v1/facilities/%s/units/U003/unlock-code", fac)};
    for (int style = DP_BASIC; style <= DP_XAPI; style++) {
        snprintf(rid[style], sizeof(rid[style]), "sees-%d-%d", (int)getpid(), style);
        struct itest_resp r;
        dp_do(&(struct dp_req){.path = paths[style],
                               .cred = &k,
                               .style = style,
                               .rid = rid[style],
                               .ip = "127.0.0.40",
                               .hdr = {"Connection: keep-alive, X-Hop", "X-Hop: 1",
                                       "Proxy-Authorization: Basic c2VjcmV0OnNlY3JldA==",
                                       "Cookie: session=abc"}},
              &r);
        json_decref(dp_expect_ok(&r));
        itest_resp_free(&r);
    }
    for (int style = DP_BASIC; style <= DP_XAPI; style++) {
        char *line = dp_record_line(rid[style]);
        ck_assert_msg(line != NULL, "the upstream did not record request %s", rid[style]);
        const char *uri = strchr(line, ' ');
        ck_assert_msg(uri && strncmp(uri + 1, paths[style], strlen(paths[style])) == 0 &&
                          uri[1 + strlen(paths[style])] == '\t',
                      "the upstream saw %s", line);
        const char *absent[] = {"Authorization", "X-API-Key", "X-API-Secret", "Proxy-Authorization",
                                "X-Hop"};
        for (size_t i = 0; i < 5; i++) {
            char *v = dp_record_header(line, absent[i]);
            ck_assert_msg(v == NULL, "the upstream received %s: %s", absent[i], v);
        }
        struct {
            const char *name, *value;
        } present[] = {{"X-Request-Id", rid[style]},
                       {"X-Lockgate-Key", k.key},
                       {"X-Lockgate-Account", acct},
                       {"X-Forwarded-For", "127.0.0.40"}};
        for (size_t i = 0; i < 4; i++) {
            char *v = dp_record_header(line, present[i].name);
            ck_assert_msg(v != NULL && strcmp(v, present[i].value) == 0,
                          "upstream header %s: %s, expected %s", present[i].name, v ? v : "(none)",
                          present[i].value);
            free(v);
        }
        free(line);
    }
    /* the query string goes on only with the unit list (above); elsewhere
     * the upstream sees the path alone */
    const char *plain[3] = {dp_path("/v1/facilities/%s", fac),
                            dp_path("/v1/facilities/%s/units/U003", fac),
                            dp_path("/v1/facilities/%s/units/U003/unlock-code", fac)};
    for (int i = 0; i < 3; i++) {
        char qrid[48];
        snprintf(qrid, sizeof(qrid), "sees-%d-q%d", (int)getpid(), i);
        struct itest_resp r;
        dp_do(&(struct dp_req){.path = dp_path("%s?status=vacant&page=2", plain[i]),
                               .cred = &k,
                               .rid = qrid},
              &r);
        json_decref(dp_expect_ok(&r));
        itest_resp_free(&r);
        char *line = dp_record_line(qrid);
        ck_assert_msg(line != NULL, "the upstream did not record request %s", qrid);
        const char *uri = strchr(line, ' ');
        ck_assert_msg(uri && strncmp(uri + 1, plain[i], strlen(plain[i])) == 0 &&
                          uri[1 + strlen(plain[i])] == '\t',
                      "the upstream saw %s", line);
        free(line);
    }
    /* and nowhere in anything the upstream ever received */
    char *all = itest_file_read(IT->upstream_record);
    ck_assert_msg(strstr(all, k.secret) == NULL, "the secret reached the upstream");
    free(all);
}
END_TEST

/* ---- audit of unlock-code reads ---- */

struct dp_audit_want {
    const char *rid, *fac, *unit, *outcome;
};

static json_t *dp_audit_entries(const char *key_id)
{
    long st;
    json_t *j = itest_admin("GET", dp_path("/admin/v1/audit?key=%s&limit=1000", key_id), NULL, &st);
    ck_assert_msg(st == 200 && json_is_array(json_object_get(j, "entries")), "audit: %ld", st);
    return j;
}

static json_t *dp_audit_find(json_t *doc, const char *rid)
{
    size_t i;
    json_t *e;
    json_array_foreach (json_object_get(doc, "entries"), i, e)
        if (strcmp(itest_json_str(e, "request_id"), rid) == 0) return e;
    return NULL;
}

START_TEST(test_audit)
{
    char acct[64], fac[72], other[72];
    struct dp_cred k;
    dp_account(acct, "Audited Inc");
    dp_facility(fac, acct, NULL);
    dp_facility(other, acct, NULL);
    const int burst = 4;
    dp_key(&k, acct,
           "\"all_facilities\":false,\"facilities\":[\"%s\"],\"rate_per_sec\":1,"
           "\"burst\":%d",
           fac, burst);
    char rids[6][48];
    for (int i = 0; i < 6; i++) snprintf(rids[i], sizeof(rids[i]), "audit-%d-%d", (int)getpid(), i);
    struct dp_audit_want want[6] = {
        {rids[0], fac, "U001", "served"},       {rids[1], fac, "U005", "code_withheld"},
        {rids[2], other, "U001", "not_found"}, /* out of scope */
        {rids[3], fac, "U999", "not_found"},   /* the upstream does not know it */
        {rids[4], fac, "U002", "rate_limited"}, {rids[5], fac, "U003", "key_disabled"},
    };
    long status[6] = {200, 403, 404, 404, 429, 403};
    struct itest_resp r;
    for (int i = 0; i < 6; i++) {
        if (i == 4) { /* use up the rest of the allowance first */
            for (int n = 0; n < burst; n++) {
                dp_do(&(struct dp_req){.path = "/v1/facilities", .cred = &k}, &r);
                itest_resp_free(&r);
            }
        }
        if (i == 5) dp_key_action(&k, "disable");
        struct dp_req q = {
            .path = dp_path("/v1/facilities/%s/units/%s/unlock-code", want[i].fac, want[i].unit),
            .cred = &k,
            .rid = want[i].rid,
            .ip = "127.0.0.50"};
        if (i == 5) {
            ck_assert(dp_poll(&(struct dp_req){.path = "/v1/facilities", .cred = &k}, 403,
                              "key_disabled", IT->timeout_ms, 5) >= 0);
        }
        dp_do(&q, &r);
        ck_assert_msg(r.status == status[i], "audit case %d: %ld %s", i, r.status, r.body);
        itest_resp_free(&r);
    }
    /* requests refused before the key is known are not unlock-code reads of a key */
    struct dp_cred wrong = k;
    ck_assert_int_eq(lg_cred_secret_new(wrong.secret), 0);
    dp_do(&(struct dp_req){.path = dp_path("/v1/facilities/%s/units/U001/unlock-code", fac),
                           .cred = &wrong,
                           .rid = "audit-wrong",
                           .ip = "127.0.0.51"},
          &r);
    dp_expect_error(&r, 401, "invalid_credentials");
    itest_resp_free(&r);

    /* audit writes are not waited on: poll until all are there */
    json_t *doc = NULL;
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    for (;;) {
        doc = dp_audit_entries(k.key);
        int found = 0;
        for (int i = 0; i < 6; i++) found += dp_audit_find(doc, want[i].rid) != NULL;
        if (found == 6 || itest_mono_ms() > end) break;
        json_decref(doc);
        itest_sleep_ms(20);
    }
    for (int i = 0; i < 6; i++) {
        json_t *e = dp_audit_find(doc, want[i].rid);
        ck_assert_msg(e != NULL, "no audit entry for case %d (%s)", i, want[i].outcome);
        ck_assert_str_eq(itest_json_str(e, "action"), "unlock_code.read");
        ck_assert_str_eq(itest_json_str(e, "key_id"), k.key);
        ck_assert_str_eq(itest_json_str(e, "account_id"), acct);
        ck_assert_str_eq(itest_json_str(e, "facility_id"), want[i].fac);
        ck_assert_str_eq(itest_json_str(e, "unit_id"), want[i].unit);
        ck_assert_str_eq(itest_json_str(e, "client_ip"), "127.0.0.50");
        ck_assert_msg(strcmp(itest_json_str(e, "outcome"), want[i].outcome) == 0,
                      "case %d: outcome %s, expected %s", i, itest_json_str(e, "outcome"),
                      want[i].outcome);
        ck_assert_msg(itest_json_str(e, "at")[0] != '\0', "entry without time");
    }
    /* exactly one entry per read, and nothing for the facility list or the wrong secret */
    size_t i;
    json_t *e;
    int reads = 0;
    json_array_foreach (json_object_get(doc, "entries"), i, e) {
        if (strcmp(itest_json_str(e, "action"), "unlock_code.read") != 0) continue;
        reads++;
        ck_assert_str_ne(itest_json_str(e, "request_id"), "audit-wrong");
    }
    ck_assert_int_eq(reads, 6);
    json_decref(doc);

    /* the CLI shows the same trail */
    char *out = NULL, *err = NULL;
    int rc = itest_cli(&out, &err, "audit", "--key", k.key, NULL);
    ck_assert_msg(rc == 0, "lockgate-admin audit: %d %s", rc, err);
    for (int n = 0; n < 6; n++) {
        bool seen = false;
        char *copy = strdup(out);
        for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line && !seen;
             line = strtok_r(NULL, "\n", &save))
            seen = strstr(line, "unlock_code.read") && strstr(line, want[n].fac) &&
                   strstr(line, want[n].unit) && strstr(line, want[n].outcome);
        free(copy);
        ck_assert_msg(seen, "lockgate-admin audit does not show case %d:\n%s", n, out);
    }
    free(out);
    free(err);
    rc = itest_cli(&out, &err, "--json", "audit", "--key", k.key, NULL);
    ck_assert_msg(rc == 0, "lockgate-admin --json audit: %d %s", rc, err);
    doc = json_loads(out, 0, NULL);
    ck_assert_msg(doc != NULL, "not JSON: %s", out);
    for (int n = 0; n < 6; n++)
        ck_assert_msg(dp_audit_find(doc, want[n].rid) != NULL, "--json audit lacks case %d", n);
    json_decref(doc);
    free(out);
    free(err);
}
END_TEST

/* ---- write-ahead audit: no code without its stored entry ----
 * Redis out of memory (maxmemory 1, noeviction: the XADD is refused), then
 * stalled (SIGSTOP: no acknowledgement in time): the code is withheld with
 * 503 audit_unavailable, the other routes keep working, and no entry says
 * "served" for a code that was not sent. */

static void dp_redis_config(const char *name, const char *value)
{
    redisContext *c = itest_redis();
    redisReply *rep = itest_redis_cmd(c, "CONFIG SET %s %s", name, value);
    ck_assert_msg(rep->type == REDIS_REPLY_STATUS, "CONFIG SET %s %s: %s", name, value,
                  rep->type == REDIS_REPLY_ERROR ? rep->str : "?");
    freeReplyObject(rep);
    redisFree(c);
}

/* Expects Q (an unlock-code read) to be refused 503 audit_unavailable, in time
 * and without the code anywhere in the answer. */
static void dp_expect_withheld(const struct dp_req *q, const char *code)
{
    struct itest_resp r;
    int64_t took = dp_do(q, &r);
    dp_expect_error(&r, 503, "audit_unavailable");
    ck_assert_msg(strstr(r.body, "unlock_code") == NULL && strstr(r.body, code) == NULL,
                  "the refusal carries the code: %s", r.body);
    ck_assert_msg(took < DP_BOUND_MS, "audit_unavailable took %lld ms", (long long)took);
    itest_resp_free(&r);
}

START_TEST(test_audit_unavailable)
{
    char acct[64], fac[72], code[5];
    struct dp_cred k;
    dp_account(acct, "Write Ahead Inc");
    dp_facility(fac, acct, NULL);
    dp_key(&k, acct, "\"all_facilities\":true");
    dp_expected_code(fac, "U001", code);
    const char *read = dp_path("/v1/facilities/%s/units/U001/unlock-code", fac);
    const char *unit = dp_path("/v1/facilities/%s/units/U001", fac);
    char rid[3][48];
    for (int i = 0; i < 3; i++) snprintf(rid[i], sizeof(rid[i]), "wal-%d-%d", (int)getpid(), i);
    struct itest_resp r;
    dp_do(&(struct dp_req){.path = read, .cred = &k}, &r);
    json_decref(dp_expect_ok(&r));
    itest_resp_free(&r);

    dp_redis_config("maxmemory-policy", "noeviction");
    dp_redis_config("maxmemory", "1");
    dp_expect_withheld(&(struct dp_req){.path = read, .cred = &k, .rid = rid[0]}, code);
    dp_do(&(struct dp_req){.path = unit, .cred = &k}, &r);
    json_decref(dp_expect_ok(&r));
    itest_resp_free(&r);
    dp_redis_config("maxmemory", "0");
    dp_do(&(struct dp_req){.path = read, .cred = &k, .rid = rid[1]}, &r);
    json_t *doc = dp_expect_ok(&r);
    ck_assert_str_eq(itest_json_str(doc, "unlock_code"), code);
    json_decref(doc);
    itest_resp_free(&r);

    itest_redis_pause();
    dp_expect_withheld(&(struct dp_req){.path = read, .cred = &k, .rid = rid[2]}, code);
    dp_do(&(struct dp_req){.path = unit, .cred = &k}, &r);
    itest_redis_resume();
    json_decref(dp_expect_ok(&r));
    itest_resp_free(&r);

    /* the trail: served only where the code went out */
    json_t *entries = NULL;
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    for (;;) {
        entries = dp_audit_entries(k.key);
        if (dp_audit_find(entries, rid[1]) != NULL || itest_mono_ms() > end) break;
        json_decref(entries);
        itest_sleep_ms(20);
    }
    json_t *e = dp_audit_find(entries, rid[1]);
    ck_assert_msg(e != NULL && strcmp(itest_json_str(e, "outcome"), "served") == 0,
                  "the served read has no served entry");
    size_t i;
    json_array_foreach (json_object_get(entries, "entries"), i, e) {
        const char *id = itest_json_str(e, "request_id");
        ck_assert_msg(strcmp(itest_json_str(e, "outcome"), "served") != 0 ||
                          (strcmp(id, rid[0]) != 0 && strcmp(id, rid[2]) != 0),
                      "a withheld read (%s) is audited as served", id);
    }
    json_decref(entries);
}
END_TEST

/* ---- lock.changed ---- */

/* SPEC 6: the platform announces a lock change (a new code, a new status)
 * and the next read serves it: a code changed, then the lock put up for
 * auction, whose code is withheld at once. */
static void dp_lock_answer(const char *fac, const char *code, const char *status)
{
    char json[256];
    snprintf(json, sizeof(json),
             "{\"facility_id\":\"%s\",\"unit_id\":\"U004\",\"unlock_code\":\"%s\","
             "\"lock_serial\":\"86U7U7U2\",\"lock_status\":\"%s\"}",
             fac, code, status);
    itest_upstream_answer(dp_path("/v1/facilities/%s/units/U004/unlock-code", fac), json);
}

static void dp_lock_changed(const char *fac)
{
    long st;
    json_t *ev = itest_adminf(&st, "POST", "/admin/v1/events/lock-changed",
                              "{\"facility_id\":\"%s\",\"unit_id\":\"U004\"}", fac);
    ck_assert_int_eq(st, 202);
    ck_assert_msg(itest_json_str(ev, "event_id")[0] != '\0', "no event_id");
    json_decref(ev);
}

START_TEST(test_lock_changed)
{
    char acct[64], fac[72];
    struct dp_cred k;
    dp_account(acct, "Events Inc");
    dp_facility(fac, acct, NULL);
    dp_key(&k, acct, "\"all_facilities\":true");
    struct dp_req q = {.path = dp_path("/v1/facilities/%s/units/U004/unlock-code", fac),
                       .cred = &k};
    struct itest_resp r;
    dp_lock_answer(fac, "1111", "tenant_using_lock");
    dp_do(&q, &r);
    json_t *doc = dp_expect_ok(&r);
    ck_assert_str_eq(itest_json_str(doc, "unlock_code"), "1111");
    json_decref(doc);
    itest_resp_free(&r);
    /* a new code */
    dp_lock_answer(fac, "2222", "tenant_using_lock");
    dp_lock_changed(fac);
    dp_do(&q, &r);
    doc = dp_expect_ok(&r);
    ck_assert_str_eq(itest_json_str(doc, "unlock_code"), "2222");
    json_decref(doc);
    itest_resp_free(&r);
    /* the lock goes to auction: its code is withheld from the next read on */
    dp_lock_answer(fac, "2222", "assigned_auction");
    dp_lock_changed(fac);
    dp_do(&q, &r);
    dp_expect_error(&r, 403, "code_withheld");
    ck_assert_ptr_null(strstr(r.body, "2222"));
    itest_resp_free(&r);

    /* the announcements are on the stream for every gateway */
    redisContext *c = itest_redis();
    json_t *events = itest_stream(c, "lg:events", NULL);
    redisFree(c);
    size_t i;
    json_t *e;
    int seen = 0;
    json_array_foreach (events, i, e) {
        char *text = json_dumps(e, JSON_COMPACT);
        if (strstr(text, "lock.changed") && strstr(text, fac) && strstr(text, "U004")) seen++;
        free(text);
    }
    json_decref(events);
    ck_assert_int_eq(seen, 2);
    /* malformed announcements are refused */
    long st;
    json_decref(itest_adminf(&st, "POST", "/admin/v1/events/lock-changed",
                             "{\"facility_id\":\"%s\",\"unit_id\":\"../x\"}", fac));
    ck_assert_int_eq(st, 400);
}
END_TEST

/* ---- TLS ---- */

START_TEST(test_tls)
{
    char acct[64], fac[72];
    struct dp_cred k;
    dp_account(acct, "Secure Inc");
    dp_facility(fac, acct, NULL);
    dp_key(&k, acct, "\"all_facilities\":true");
    ck_assert_msg(IT->lg[0].tls_port > 0, "no TLS listener");
    struct itest_resp r;
    /* a client that verifies the certificate against its CA */
    dp_do(&(struct dp_req){.tls = 1,
                           .path = dp_path("/v1/facilities/%s/units/U001/unlock-code", fac),
                           .cred = &k},
          &r);
    json_t *doc = dp_expect_ok(&r);
    char code[5];
    dp_expected_code(fac, "U001", code);
    ck_assert_str_eq(itest_json_str(doc, "unlock_code"), code);
    json_decref(doc);
    itest_resp_free(&r);
    dp_do(&(struct dp_req){.tls = 1, .path = "/v1/facilities", .cred = &k, .style = DP_XAPI}, &r);
    json_decref(dp_expect_ok(&r));
    itest_resp_free(&r);
    /* ...and verification is real: without that CA the handshake is refused */
    dp_do(&(struct dp_req){.tls = 2, .path = "/v1/facilities", .cred = &k}, &r);
    ck_assert_msg(r.status == 0, "an unverifiable certificate was accepted (%ld)", r.status);
    itest_resp_free(&r);

    /* plain HTTP to the TLS port never gets a clear-text HTTP answer */
    const char *plain =
        "GET /v1/facilities HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    int fd = dp_connect(IT->lg[0].tls_port, NULL);
    dp_send_all(fd, plain, strlen(plain));
    size_t n;
    char *bytes = dp_read_all(fd, 4096, DP_BOUND_MS, &n);
    close(fd);
    ck_assert_msg(n < 5 || memcmp(bytes, "HTTP/", 5) != 0,
                  "the TLS port answered in clear text: %.80s", bytes);
    free(bytes);
    /* and keeps serving TLS afterwards */
    dp_do(&(struct dp_req){.tls = 1, .path = "/v1/facilities", .cred = &k}, &r);
    json_decref(dp_expect_ok(&r));
    itest_resp_free(&r);
}
END_TEST

/* ---- several workers ----
 * Each worker has its own caches and the kernel spreads connections over
 * them (SO_REUSEPORT); every request below is a new connection. */

/* Q answers WANT/CODE RUNS times in a row (each on a new connection, so
 * on either worker); fails with what it got otherwise. */
static void dp_expect_runs(const struct dp_req *q, long want, const char *code, int runs)
{
    for (int i = 0; i < runs; i++) {
        struct itest_resp r;
        dp_do(q, &r);
        ck_assert_msg(r.status == want, "request %d of %d: %ld, expected %ld", i + 1, runs,
                      r.status, want);
        if (code != NULL) dp_expect_error(&r, want, code);
        itest_resp_free(&r);
    }
}

START_TEST(test_every_worker)
{
    char acct[64], fac[72];
    struct dp_cred k;
    dp_account(acct, "Workers Inc");
    dp_facility(fac, acct, NULL);
    dp_key(&k, acct, "\"all_facilities\":true,\"rate_per_sec\":1000,\"burst\":1000");
    struct dp_req q = {.path = dp_path("/v1/facilities/%s/units/U001", fac), .cred = &k};
    /* both workers hold the key and the facility (a worker left out of
     * 20 connections: one chance in 2^19) */
    dp_expect_runs(&q, 200, NULL, 20);
    /* an exclusion reaches every worker: once one answers 404, all do (the
     * refusals of each phase count toward the throttle of an address of its own) */
    dp_facility_included(fac, false);
    q.ip = "127.0.0.91";
    ck_assert_msg(dp_poll(&q, 404, "not_found", IT->timeout_ms, 5) >= 0,
                  "an excluded facility is still served");
    dp_expect_runs(&q, 404, "not_found", 20);
    dp_facility_included(fac, true);
    ck_assert_msg(dp_poll(&q, 200, NULL, IT->timeout_ms, 5) >= 0,
                  "an included facility is refused");
    dp_expect_runs(&q, 200, NULL, 20);
    /* so does a disable */
    dp_key_action(&k, "disable");
    q.ip = "127.0.0.92";
    ck_assert_msg(dp_poll(&q, 403, "key_disabled", IT->timeout_ms, 5) >= 0,
                  "a disabled key is still served");
    dp_expect_runs(&q, 403, "key_disabled", 20);

    /* failed authentications are counted per instance, not per worker:
     * past the limit, even the right secret from that IP gets 429 */
    struct dp_cred good, wrong;
    dp_key(&good, acct, "\"all_facilities\":true");
    wrong = good;
    ck_assert_int_eq(lg_cred_secret_new(wrong.secret), 0);
    struct dp_req bad = {.path = "/v1/facilities", .cred = &wrong, .ip = "127.0.0.90"};
    dp_expect_runs(&bad, 401, "invalid_credentials", DP_WORKER_FAILURES);
    struct dp_req right = {.path = "/v1/facilities", .cred = &good, .ip = "127.0.0.90"};
    dp_expect_runs(&right, 429, "rate_limited", 6);

    /* a key without limits of its own gets [limits] burst */
    struct itest_resp r;
    dp_do(&(struct dp_req){.path = "/v1/facilities", .cred = &good}, &r);
    json_decref(dp_expect_ok(&r));
    ck_assert_int_eq(dp_header_int(&r, "RateLimit-Limit"), 7);
    ck_assert_int_eq(dp_header_int(&r, "RateLimit-Remaining"), 6);
    itest_resp_free(&r);
}
END_TEST

/* ---- the rate limit shared exactly by instances and workers ---- */

static size_t dp_discard(char *ptr, size_t size, size_t n, void *arg) { return size * n; }

/* Two instances of two workers each, one key, many connections at once: the
 * count allowed never passes the key's exact GCRA allowance over the
 * window, burst + rate x seconds (SPEC section 5: "shared exactly"). */
START_TEST(test_no_over_admission)
{
    enum { CONNS = 24, RATE = 20, BURST = 30, WINDOW_MS = 3000 };
    char acct[64];
    struct dp_cred k;
    dp_account(acct, "Busy Call Center");
    dp_key(&k, acct, "\"all_facilities\":true,\"rate_per_sec\":%d,\"burst\":%d", RATE, BURST);
    struct itest_opts o = IT->lg[0].opts;
    int i2 = itest_lg_start(&o);
    char *basic = dp_basic_header(k.key, k.secret);
    struct curl_slist *hdrs = curl_slist_append(NULL, basic);
    CURLM *multi = curl_multi_init();
    CURL *easy[CONNS];
    char urls[2][128];
    snprintf(urls[0], sizeof(urls[0]), "%s/v1/facilities", IT->lg[0].url);
    snprintf(urls[1], sizeof(urls[1]), "%s/v1/facilities", IT->lg[i2].url);
    for (int i = 0; i < CONNS; i++) {
        easy[i] = curl_easy_init();
        curl_easy_setopt(easy[i], CURLOPT_URL, urls[i % 2]);
        curl_easy_setopt(easy[i], CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, dp_discard);
        curl_easy_setopt(easy[i], CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(easy[i], CURLOPT_TIMEOUT_MS, (long)itest_scaled_ms(5000));
        curl_multi_add_handle(multi, easy[i]);
    }
    long allowed = 0, limited = 0, other = 0;
    int64_t t0 = itest_mono_ms(), t_last = t0;
    int running = CONNS;
    while (running > 0) {
        curl_multi_perform(multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE) continue;
            long st = 0;
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &st);
            if (st == 200)
                allowed++;
            else if (st == 429)
                limited++;
            else
                other++;
            t_last = itest_mono_ms();
            curl_multi_remove_handle(multi, m->easy_handle);
            if (t_last - t0 < WINDOW_MS) { /* again, on its kept-alive connection */
                curl_multi_add_handle(multi, m->easy_handle);
                running++;
            }
        }
        if (running > 0) curl_multi_poll(multi, NULL, 0, 100, NULL);
    }
    /* every answer came between t0 and t_last: no request was admitted
     * outside that window */
    double exact = BURST + RATE * (double)(t_last - t0) / 1000.0;
    fprintf(stderr,
            "test_no_over_admission: %ld allowed, %ld limited, %ld other in %lld ms; exact "
            "allowance %.1f\n",
            allowed, limited, other, (long long)(t_last - t0), exact);
    ck_assert_msg(other == 0, "%ld answers were neither 200 nor 429", other);
    ck_assert_msg(limited > 0, "the key was never limited: the test proves nothing");
    ck_assert_msg(allowed <= (long)exact, "%ld allowed, over the exact allowance %.1f", allowed,
                  exact);
    /* and the limit did not starve the key either: a whole burst at least */
    ck_assert_msg(allowed >= BURST, "%ld allowed, less than the burst %d", allowed, BURST);
    for (int i = 0; i < CONNS; i++) curl_easy_cleanup(easy[i]);
    curl_multi_cleanup(multi);
    curl_slist_free_all(hdrs);
    free(basic);
    itest_lg_stop(i2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dataplane");

    TCase *core = tcase_create("core");
    tcase_add_unchecked_fixture(core, core_setup, fixture_teardown);
    tcase_set_timeout(core, 180);
    tcase_add_test(core, test_bad_request);
    tcase_add_test(core, test_unauthenticated);
    tcase_add_test(core, test_key_disabled);
    tcase_add_test(core, test_ip_not_allowed);
    tcase_add_test(core, test_forbidden_role);
    tcase_add_test(core, test_code_withheld);
    tcase_add_test(core, test_not_found_and_method);
    tcase_add_test(core, test_rate_limited);
    tcase_add_test(core, test_upstream_failures);
    tcase_add_test(core, test_request_id);
    tcase_add_test(core, test_head);
    tcase_add_test(core, test_scope);
    tcase_add_test(core, test_facility_defaults);
    tcase_add_test(core, test_two_instances);
    tcase_add_test(core, test_upstream_sees);
    tcase_add_test(core, test_audit);
    tcase_add_test(core, test_lock_changed);
    tcase_add_test(core, test_no_secret_in_logs);
    tcase_add_test(core, test_metrics);
    suite_add_tcase(s, core);

    TCase *throttle = tcase_create("throttle");
    tcase_add_unchecked_fixture(throttle, throttle_setup, fixture_teardown);
    tcase_set_timeout(throttle, 120);
    tcase_add_test(throttle, test_auth_failure_throttle);
    tcase_add_test(throttle, test_refusal_throttle);
    suite_add_tcase(s, throttle);

    TCase *audit = tcase_create("audit_store"); /* breaks its Redis on purpose */
    tcase_add_unchecked_fixture(audit, plain_setup, fixture_teardown);
    tcase_set_timeout(audit, 60);
    tcase_add_test(audit, test_audit_unavailable);
    suite_add_tcase(s, audit);

    TCase *workers = tcase_create("workers");
    tcase_add_unchecked_fixture(workers, workers_setup, fixture_teardown);
    tcase_set_timeout(workers, 90);
    tcase_add_test(workers, test_every_worker);
    tcase_add_test(workers, test_no_over_admission);
    suite_add_tcase(s, workers);

    TCase *tls = tcase_create("tls");
    tcase_add_unchecked_fixture(tls, tls_setup, fixture_teardown);
    tcase_set_timeout(tls, 60);
    tcase_add_test(tls, test_tls);
    suite_add_tcase(s, tls);

    return itest_exit_status(check_run(s));
}
