/* Fault tests of the public data plane (SPEC section 10) against the real
 * lockgate, Redis and test upstream: Redis stalled or killed and restarted
 * under traffic, the upstream stopped, oversized request heads, clients
 * that hang up while their request waits on a slow upstream, stops, Redis
 * AUTH, and clients holding every descriptor the gateway may open. Each fault
 * has a TCase (and so a stack) of its own. */
#include "itest.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <poll.h>

#include "lockgate/cred.h"
#include "lockgate/util.h"

#define FT_BOUND_MS itest_scaled_ms(2000) /* "nothing hangs": far above every configured timeout \
                                           */

/* ---- requests ---- */

struct ft_cred {
    char key[64];
    char secret[64];
};

static char *ft_basic_header(const struct ft_cred *k)
{
    return itest_basic_header(k->key, k->secret);
}

/* GET PATH on instance 0 with K's credentials (and RID as X-Request-Id when
 * set); returns the milliseconds it took. */
static int64_t ft_get(const char *path, const struct ft_cred *k, const char *rid,
                      struct itest_resp *resp)
{
    char url[2048], ridh[128];
    snprintf(url, sizeof(url), "%s%s", IT->lg[0].url, path);
    char *basic = k ? ft_basic_header(k) : NULL;
    snprintf(ridh, sizeof(ridh), "X-Request-Id: %s", rid ? rid : "");
    const char *headers[3] = {NULL, NULL, NULL};
    int n = 0;
    if (basic) headers[n++] = basic;
    if (rid) headers[n++] = ridh;
    int64_t t0 = itest_mono_ms();
    itest_http("GET", url, headers, NULL, 0, NULL, resp);
    int64_t took = itest_mono_ms() - t0;
    free(basic);
    return took;
}

static const char *ft_code(const struct itest_resp *r)
{
    static char code[64];
    json_t *doc = json_loads(r->body, 0, NULL);
    snprintf(code, sizeof(code), "%s", itest_json_str(json_object_get(doc, "error"), "code"));
    json_decref(doc);
    return code;
}

/* Status, and for errors the code, of one answer; the request id and the
 * JSON error shape are the data plane suite's business, not repeated here. */
#define ft_expect(r, status, code) ft_expect_at(__LINE__, (r), (status), (code))
static void ft_expect_at(int line, const struct itest_resp *r, long status, const char *code)
{
    ck_assert_msg(r->status == status, "line %d: status %ld (%s), expected %ld; body: %s", line,
                  r->status, r->error, status, r->body ? r->body : "");
    char *rid = itest_resp_header(r, "X-Request-Id");
    ck_assert_msg(rid != NULL, "line %d: no X-Request-Id", line);
    free(rid);
    if (code != NULL)
        ck_assert_msg(strcmp(ft_code(r), code) == 0, "line %d: code %s, expected %s", line,
                      ft_code(r), code);
}

/* GETs PATH until it answers WANT (and CODE), at most the harness timeout;
 * returns the elapsed milliseconds or -1. */
static int64_t ft_poll(const char *path, const struct ft_cred *k, long want, const char *code)
{
    int64_t t0 = itest_mono_ms();
    for (;;) {
        struct itest_resp r;
        ft_get(path, k, NULL, &r);
        bool hit = r.status == want && (code == NULL || strcmp(ft_code(&r), code) == 0);
        itest_resp_free(&r);
        int64_t took = itest_mono_ms() - t0;
        if (hit) return took;
        if (took > IT->timeout_ms) return -1;
        itest_sleep_ms(10);
    }
}

/* ---- raw sockets ---- */

static int ft_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct timeval tv = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_msg(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect to %d: %s", port,
                  strerror(errno));
    return fd;
}

static void ft_send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n <= 0) return; /* the server may refuse early and close */
        data += n;
        len -= (size_t)n;
    }
}

/* Reads into BUF until EOF or BOUND_MS; returns the length read (BUF is
 * NUL-terminated) and sets *CLOSED when the peer closed. */
static size_t ft_read_all(int fd, int bound_ms, char *buf, size_t cap, bool *closed)
{
    size_t len = 0;
    *closed = false;
    int64_t end = itest_mono_ms() + bound_ms;
    while (len < cap - 1 && itest_mono_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0) continue;
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0) {
            *closed = true;
            break;
        }
        len += (size_t)n;
    }
    buf[len] = '\0';
    return len;
}

/* Reads until EOF or BOUND_MS; returns the status of the answer (0: none). */
static long ft_read_status(int fd, int bound_ms, char *first, size_t cap)
{
    char buf[8192];
    bool closed;
    size_t len = ft_read_all(fd, bound_ms, buf, sizeof(buf), &closed);
    snprintf(first, cap, "%.*s", (int)strcspn(buf, "\r\n"), buf);
    return strncmp(buf, "HTTP/1.", 7) == 0 && len > 12 ? atol(buf + 9) : 0;
}

/* ---- data through the admin API ---- */

static json_t *ft_admin(long want, const char *method, const char *path, const char *body)
{
    long st = 0;
    json_t *j = itest_admin(method, path, body, &st);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    ck_assert_msg(st == want, "%s %s -> %ld, expected %ld: %s", method, path, st, want,
                  text ? text : "(no body)");
    free(text);
    return j;
}

static void ft_account(char out[64]) { itest_account(out, NULL); }

/* PREFIX set: the facility is imported as PREFIX<pid>x<n> (upstream modes). */
static void ft_facility(char out[72], const char *acct, const char *prefix)
{
    itest_facility(out, acct, NULL, prefix);
}

static void ft_key(struct ft_cred *k, const char *acct, const char *extra)
{
    itest_key(k->key, k->secret, acct, extra);
}

static void ft_disable(const struct ft_cred *k)
{
    char path[160];
    snprintf(path, sizeof(path), "/admin/v1/keys/%s/disable", k->key);
    json_decref(ft_admin(200, "POST", path, NULL));
}

static const char *ft_path(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *ft_path(const char *fmt, ...)
{
    static char bufs[8][1024];
    static int next;
    char *b = bufs[next++ % 8];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, 1024, fmt, ap);
    va_end(ap);
    return b;
}

static bool ft_lg_alive(void) { return IT->lg[0].pid > 0 && kill(IT->lg[0].pid, 0) == 0; }

/* Background traffic: a child process GETs PATH with K about every 50 ms and
 * writes "status milliseconds" per request into a file, until told to stop. */
struct ft_traffic {
    pid_t pid;
    char file[PATH_MAX], stop[PATH_MAX];
};

static void ft_traffic_start(struct ft_traffic *t, const char *path, const struct ft_cred *k)
{
    static int n;
    char name[64];
    snprintf(name, sizeof(name), "traffic-%d-%d", (int)getpid(), ++n);
    snprintf(t->file, sizeof(t->file), "%s", itest_path(name));
    snprintf(t->stop, sizeof(t->stop), "%s", itest_path(name));
    strncat(t->stop, ".stop", sizeof(t->stop) - strlen(t->stop) - 1);
    fflush(stderr);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        FILE *f = fopen(t->file, "w");
        int64_t end = itest_mono_ms() + 60000;
        while (f != NULL && itest_mono_ms() < end && access(t->stop, F_OK) != 0) {
            struct itest_resp r;
            int64_t took = ft_get(path, k, NULL, &r);
            fprintf(f, "%ld %lld %s\n", r.status, (long long)took,
                    r.status >= 400 ? ft_code(&r) : "-");
            fflush(f);
            itest_resp_free(&r);
            itest_sleep_ms(50);
        }
        if (f != NULL) fclose(f);
        _exit(0);
    }
    t->pid = pid;
}

/* Stops the traffic; returns the requests made, with the slowest one and a
 * summary of the answers that were not 200. */
static int ft_traffic_stop(struct ft_traffic *t, int64_t *worst, char *odd, size_t cap)
{
    itest_file_write(t->stop, "");
    if (itest_wait_pid(t->pid, IT->timeout_ms) == -1) {
        kill(t->pid, SIGKILL);
        waitpid(t->pid, NULL, 0);
    }
    char *text = itest_file_read(t->file);
    int n = 0;
    *worst = 0;
    odd[0] = '\0';
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        long st = 0;
        long long took = 0;
        char code[64] = "";
        if (sscanf(line, "%ld %lld %63s", &st, &took, code) < 2) continue;
        n++;
        if (took > *worst) *worst = took;
        if (st != 200) {
            size_t used = strlen(odd);
            snprintf(odd + used, cap - used, " #%d:%ld/%s", n, st, code);
        }
    }
    free(text);
    return n;
}

/* ---- fixtures ---- */

static void redis_setup(void)
{
    struct itest_opts o = {0};
    o.upstream_timeout_ms = 1000;
    o.upstream_connect_timeout_ms = 500;
    itest_start(&o);
}

static void clients_setup(void)
{
    struct itest_opts o = {0};
    o.upstream_timeout_ms = 5000;
    o.upstream_connect_timeout_ms = 500;
    itest_start(&o);
}

static void workers_setup(void)
{
    struct itest_opts o = {0};
    o.no_upstream = 1;
    o.workers = 4;
    itest_start(&o);
}

static void fixture_teardown(void) { itest_stop(); }

/* ---- Redis stalled (SIGSTOP) under traffic ---- */

START_TEST(test_redis_paused)
{
    char acct[64], fac[72];
    struct ft_cred k, lim, later;
    ft_account(acct);
    ft_facility(fac, acct, NULL);
    ft_key(&k, acct, NULL);
    ft_key(&lim, acct, "\"rate_per_sec\":1,\"burst\":2");
    ft_key(&later, acct, NULL); /* never used before the fault */
    const char *code = ft_path("/v1/facilities/%s/units/U001/unlock-code", fac);
    struct itest_resp r;
    ft_get(code, &k, NULL, &r);
    ft_expect(&r, 200, NULL);
    itest_resp_free(&r);
    ft_get("/v1/facilities", &lim, NULL, &r);
    ft_expect(&r, 200, NULL);
    itest_resp_free(&r);

    struct ft_traffic traffic;
    ft_traffic_start(&traffic, ft_path("/v1/facilities/%s/units/U003", fac), &k);
    itest_sleep_ms(300);
    itest_redis_pause();
    int64_t worst = 0;
    /* a key verified before keeps working, except for codes: no code leaves
     * without its audit entry stored */
    const char *unit = ft_path("/v1/facilities/%s/units/U001", fac);
    for (int i = 0; i < 5; i++) {
        int64_t took = ft_get(unit, &k, NULL, &r);
        ft_expect(&r, 200, NULL);
        itest_resp_free(&r);
        worst = took > worst ? took : worst;
        took = ft_get(code, &k, NULL, &r);
        ft_expect(&r, 503, "audit_unavailable");
        itest_resp_free(&r);
        worst = took > worst ? took : worst;
    }
    /* a key this gateway never saw cannot be checked */
    for (int i = 0; i < 3; i++) {
        int64_t took = ft_get(code, &later, NULL, &r);
        ft_expect(&r, 503, "store_unavailable");
        itest_resp_free(&r);
        worst = took > worst ? took : worst;
    }
    /* the rate limit falls back to a local limiter: still a limit */
    int ok = 0, limited = 0;
    for (int i = 0; i < 8; i++) {
        int64_t took = ft_get("/v1/facilities", &lim, NULL, &r);
        if (r.status == 200)
            ok++;
        else {
            ft_expect(&r, 429, "rate_limited");
            limited++;
        }
        itest_resp_free(&r);
        worst = took > worst ? took : worst;
    }
    fprintf(stderr,
            "test_redis_paused: slowest request %lld ms; local limiter: %d served, %d "
            "limited\n",
            (long long)worst, ok, limited);
    ck_assert_msg(ok >= 1 && limited >= 1, "local limiter: %d served, %d limited", ok, limited);
    ck_assert_msg(worst < FT_BOUND_MS, "a request took %lld ms while Redis was stalled",
                  (long long)worst);
    ck_assert(ft_lg_alive());

    itest_redis_resume();
    ck_assert_msg(ft_poll(code, &later, 200, NULL) >= 0, "a new key is not served after Redis "
                                                         "came back");
    itest_sleep_ms(300);
    char odd[2048];
    int64_t tworst;
    int n = ft_traffic_stop(&traffic, &tworst, odd, sizeof(odd));
    fprintf(stderr,
            "test_redis_paused: background traffic: %d requests, slowest %lld ms, "
            "not 200:%s\n",
            n, (long long)tworst, odd[0] ? odd : " none");
    ck_assert_msg(n >= 5, "only %d background requests", n);
    ck_assert_msg(odd[0] == '\0', "a verified key was refused around the stall:%s", odd);
    ck_assert_msg(tworst < FT_BOUND_MS, "a background request took %lld ms", (long long)tworst);
    ft_get(code, &k, NULL, &r);
    ft_expect(&r, 200, NULL);
    itest_resp_free(&r);
    ft_disable(&k);
    ck_assert_msg(ft_poll(code, &k, 403, "key_disabled") >= 0,
                  "a key disabled after the stall is still served");
}
END_TEST

/* ---- Redis killed and restarted under traffic ---- */

START_TEST(test_redis_restart)
{
    char acct[64], fac[72];
    struct ft_cred k1, k2, k3;
    ft_account(acct);
    ft_facility(fac, acct, NULL);
    ft_key(&k1, acct, NULL);
    ft_key(&k2, acct, NULL); /* never used before the fault */
    ft_key(&k3, acct, NULL);
    const char *code = ft_path("/v1/facilities/%s/units/U002/unlock-code", fac);
    struct itest_resp r;
    ft_get(code, &k1, NULL, &r);
    ft_expect(&r, 200, NULL);
    itest_resp_free(&r);
    ft_get(code, &k3, NULL, &r);
    ft_expect(&r, 200, NULL);
    itest_resp_free(&r);

    /* K3 is locked in the store behind the gateway's back (no event): what a
     * revocation missed while the gateway was disconnected looks like. The
     * snapshot that the restarted Redis loads holds that state. */
    redisContext *c = itest_redis();
    freeReplyObject(itest_redis_cmd(c, "HSET lg:key:%s status disabled", k3.key));
    redisReply *rep = itest_redis_cmd(c, "SAVE");
    ck_assert_msg(rep->type == REDIS_REPLY_STATUS, "SAVE failed");
    freeReplyObject(rep);
    redisFree(c);

    struct ft_traffic traffic;
    ft_traffic_start(&traffic, ft_path("/v1/facilities/%s/units/U003", fac), &k1);
    itest_sleep_ms(300);
    itest_redis_stop();
    /* The killed server's threads may still hold its socket for a moment. */
    int64_t gone_by = itest_mono_ms() + IT->timeout_ms;
    while (itest_port_open(IT->redis_port)) {
        ck_assert_msg(itest_mono_ms() < gone_by, "Redis still listens after being killed");
        itest_sleep_ms(5);
    }
    int64_t worst = 0, took;
    const char *unit = ft_path("/v1/facilities/%s/units/U002", fac);
    for (int i = 0; i < 3; i++) {
        took = ft_get(unit, &k1, NULL, &r);
        ft_expect(&r, 200, NULL); /* verified before: keeps working */
        itest_resp_free(&r);
        worst = took > worst ? took : worst;
        took = ft_get(unit, &k3, NULL, &r);
        ft_expect(&r, 200, NULL); /* what this worker verified; no revocation can reach it */
        itest_resp_free(&r);
        worst = took > worst ? took : worst;
        took = ft_get(code, &k1, NULL, &r);
        ft_expect(&r, 503, "audit_unavailable"); /* but no code without its audit entry */
        itest_resp_free(&r);
        worst = took > worst ? took : worst;
        took = ft_get(code, &k2, NULL, &r);
        ft_expect(&r, 503, "store_unavailable");
        itest_resp_free(&r);
        worst = took > worst ? took : worst;
        took = ft_get("/v1/facilities", &k1, NULL, &r);
        ft_expect(&r, 200, NULL);
        itest_resp_free(&r);
        worst = took > worst ? took : worst;
    }
    fprintf(stderr, "test_redis_restart: slowest request while Redis was down: %lld ms\n",
            (long long)worst);
    ck_assert_msg(worst < FT_BOUND_MS, "a request took %lld ms while Redis was down",
                  (long long)worst);

    itest_redis_start();
    ck_assert_msg(ft_poll(code, &k2, 200, NULL) >= 0, "requests do not work again after Redis "
                                                      "restarted");
    /* the cache was flushed on reconnect: the missed revocation now counts */
    ck_assert_msg(ft_poll(code, &k3, 403, "key_disabled") >= 0,
                  "a key locked while the gateway was disconnected is still served");
    ft_get(code, &k1, NULL, &r);
    ft_expect(&r, 200, NULL);
    itest_resp_free(&r);
    itest_sleep_ms(300);
    char odd[2048];
    int64_t tworst;
    int n = ft_traffic_stop(&traffic, &tworst, odd, sizeof(odd));
    fprintf(stderr,
            "test_redis_restart: background traffic: %d requests, slowest %lld ms, "
            "not 200:%s\n",
            n, (long long)tworst, odd[0] ? odd : " none");
    ck_assert_msg(n >= 5, "only %d background requests", n);
    ck_assert_msg(tworst < FT_BOUND_MS, "a background request took %lld ms", (long long)tworst);
    ck_assert_msg(odd[0] == '\0', "a verified key was refused around the restart:%s", odd);
    /* events flow again: a key disabled after the restart is refused */
    ft_disable(&k1);
    ck_assert_msg(ft_poll(code, &k1, 403, "key_disabled") >= 0,
                  "a key disabled after the restart is still served");
    struct ft_cred k4;
    ft_key(&k4, acct, NULL);
    ft_get(code, &k4, NULL, &r);
    ft_expect(&r, 200, NULL);
    itest_resp_free(&r);
    ck_assert(ft_lg_alive());
}
END_TEST

/* ---- the local rate limit across workers ---- */

#define LW_BURST 10
#define LW_RATE  1

/* Redis killed with four workers: every worker that knows the key decides
 * locally, and together they admit at most the key's burst plus what its
 * rate adds meanwhile, however the connections spread over the workers. */
START_TEST(test_local_limit_workers)
{
    char acct[64], extra[64];
    struct ft_cred k;
    ft_account(acct);
    snprintf(extra, sizeof(extra), "\"burst\":%d,\"rate_per_sec\":%d", LW_BURST, LW_RATE);
    ft_key(&k, acct, extra);
    /* Each request is a new connection: enough of them that every worker
     * verifies the key while Redis answers (past the burst they are 429,
     * the key is cached all the same). */
    struct itest_resp r;
    int seen200 = 0;
    for (int i = 0; i < 60; i++) {
        ft_get("/v1/facilities", &k, NULL, &r);
        ck_assert_msg(r.status == 200 || r.status == 429, "warm-up: HTTP %ld", r.status);
        seen200 += r.status == 200;
        itest_resp_free(&r);
    }
    ck_assert_int_ge(seen200, 1);

    itest_redis_stop();
    int64_t gone_by = itest_mono_ms() + IT->timeout_ms;
    while (itest_port_open(IT->redis_port)) {
        ck_assert_msg(itest_mono_ms() < gone_by, "Redis still listens after being killed");
        itest_sleep_ms(5);
    }
    int64_t t0 = itest_mono_ms();
    int admitted = 0, refused = 0, unknown = 0;
    for (int i = 0; i < 120; i++) {
        ft_get("/v1/facilities", &k, NULL, &r);
        if (r.status == 200)
            admitted++;
        else if (r.status == 429)
            refused++;
        else if (r.status == 503)
            unknown++; /* a worker that never saw the key */
        else
            ck_abort_msg("Redis down: HTTP %ld: %s", r.status, r.body);
        itest_resp_free(&r);
    }
    int64_t elapsed = itest_mono_ms() - t0;
    int bound = LW_BURST + (int)((elapsed * LW_RATE + 999) / 1000);
    fprintf(stderr,
            "test_local_limit_workers: Redis down, 4 workers, 120 connections in %lld ms: "
            "%d admitted (at most %d), %d refused, %d unknown\n",
            (long long)elapsed, admitted, bound, refused, unknown);
    ck_assert_msg(admitted >= 1, "the known key was never admitted while Redis was down");
    ck_assert_msg(admitted <= bound, "%d admitted across the workers, at most %d allowed", admitted,
                  bound);
    itest_redis_start();
}
END_TEST

/* ---- oversized and broken request heads ---- */

static long ft_raw_status(const char *req, size_t len, char *first, size_t cap)
{
    int fd = ft_connect(IT->lg[0].port);
    ft_send_all(fd, req, len);
    long st = ft_read_status(fd, FT_BOUND_MS * 2, first, cap);
    close(fd);
    return st;
}

START_TEST(test_oversized_headers)
{
    char acct[64];
    struct ft_cred k;
    ft_account(acct);
    ft_key(&k, acct, NULL);
    char *basic = ft_basic_header(&k);
    size_t big = 20 * 1024;
    char *filler = malloc(big + 1);
    memset(filler, 'h', big);
    filler[big] = '\0';
    char *req = NULL;
    struct itest_resp r;
    char first[256];
    for (int variant = 0; variant < 4; variant++) {
        int n = 0;
        switch (variant) {
        case 0: /* one 20 KB header */
            n = asprintf(&req,
                         "GET /v1/facilities HTTP/1.1\r\nHost: x\r\n%s\r\nX-Big: %s\r\n"
                         "Connection: close\r\n\r\n",
                         basic, filler);
            break;
        case 1: /* a 20 KB request target */
            n = asprintf(&req,
                         "GET /v1/facilities?%s HTTP/1.1\r\nHost: x\r\n%s\r\n"
                         "Connection: close\r\n\r\n",
                         filler, basic);
            break;
        case 2: { /* many small headers, 20 KB in all */
            size_t cap = big + 4096, used = 0;
            req = malloc(cap);
            used += (size_t)snprintf(req, cap, "GET /v1/facilities HTTP/1.1\r\nHost: x\r\n%s\r\n",
                                     basic);
            for (int i = 0; used + 64 < cap && used < big; i++)
                used += (size_t)snprintf(req + used, cap - used, "X-H%d: %s\r\n", i, "abcdefgh");
            used += (size_t)snprintf(req + used, cap - used, "Connection: close\r\n\r\n");
            n = (int)used;
            break;
        }
        case 3: /* a 20 KB Authorization header */
            n = asprintf(&req,
                         "GET /v1/facilities HTTP/1.1\r\nHost: x\r\nAuthorization: Basic "
                         "%s\r\nConnection: close\r\n\r\n",
                         filler);
            break;
        }
        long st = ft_raw_status(req, (size_t)n, first, sizeof(first));
        ck_assert_msg(st >= 400 && st < 500, "oversized head %d: answer \"%s\"", variant, first);
        free(req);
        req = NULL;
        /* and the server keeps serving */
        ft_get("/v1/facilities", &k, NULL, &r);
        ft_expect(&r, 200, NULL);
        itest_resp_free(&r);
    }
    /* a head cut off in the middle, then the client goes away */
    for (int i = 0; i < 5; i++) {
        int fd = ft_connect(IT->lg[0].port);
        const char *part = "GET /v1/facilities HTTP/1.1\r\nHost: x\r\nAuthoriz";
        ft_send_all(fd, part, strlen(part));
        close(fd);
    }
    ft_get("/v1/facilities", &k, NULL, &r);
    ft_expect(&r, 200, NULL);
    itest_resp_free(&r);
    free(filler);
    free(basic);
    ck_assert(ft_lg_alive());
}
END_TEST

/* ---- bodies the HTTP layer does not read ---- */

/* Sends REQ on a new connection to PORT; reads for up to BOUND_MS. Returns
 * the number of answers, and sets *CLOSED when the server closed. */
static int ft_answers(int port, const char *req, int bound_ms, bool *closed)
{
    int fd = ft_connect(port);
    ft_send_all(fd, req, strlen(req));
    char buf[16384];
    ft_read_all(fd, bound_ms, buf, sizeof(buf), closed);
    close(fd);
    int answers = 0;
    for (const char *p = buf; (p = strstr(p, "HTTP/1.1 ")) != NULL; p++) answers++;
    return answers;
}

/* A GET, DELETE or unknown method with a body: the HTTP library does not
 * read it, so the body would be read as the next request on the connection
 * (one smuggled past a proxy in front). The answer closes the connection
 * instead; a POST's body is read and the connection stays. */
START_TEST(test_unread_body)
{
    char acct[64];
    struct ft_cred k;
    ft_account(acct);
    ft_key(&k, acct, NULL);
    char *basic = ft_basic_header(&k);
    const char *smuggled = "GET /v1/facilities HTTP/1.1\r\nHost: x\r\n\r\n";
    struct {
        int port;
        const char *method, *auth;
    } cases[] = {
        {IT->lg[0].port, "GET", basic},
        {IT->lg[0].port, "DELETE", basic},
        {IT->lg[0].port, "PURGE", basic},
        {IT->lg[0].admin_port, "GET", NULL},
    };
    char admin_auth[160];
    snprintf(admin_auth, sizeof(admin_auth), "Authorization: Bearer %s", IT->token);
    cases[3].auth = admin_auth;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *req = NULL;
        ck_assert_int_gt(asprintf(&req,
                                  "%s /v1/facilities HTTP/1.1\r\nHost: x\r\n%s\r\n"
                                  "Content-Length: %zu\r\n\r\n%s",
                                  cases[i].method, cases[i].auth, strlen(smuggled), smuggled),
                         0);
        bool closed;
        int n = ft_answers(cases[i].port, req, FT_BOUND_MS, &closed);
        ck_assert_msg(n == 1 && closed, "%s with a body on port %d: %d answers, %s",
                      cases[i].method, cases[i].port, n, closed ? "closed" : "left open");
        free(req);
    }
    /* a POST reads its body: one answer, and the connection is kept */
    char *req = NULL;
    ck_assert_int_gt(asprintf(&req,
                              "POST /admin/v1/accounts HTTP/1.1\r\nHost: x\r\n%s\r\n"
                              "Content-Type: application/json\r\nContent-Length: 17\r\n\r\n"
                              "{\"name\":\"kept\"}\r\n",
                              admin_auth),
                     0);
    bool closed;
    int n = ft_answers(IT->lg[0].admin_port, req, 500, &closed);
    ck_assert_msg(n == 1 && !closed, "POST: %d answers, %s", n, closed ? "closed" : "kept");
    free(req);
    free(basic);
}
END_TEST

/* ---- clients hanging up while the upstream is slow ---- */

static bool ft_recorded(const char *rid)
{
    char *all = itest_file_read(IT->upstream_record);
    bool seen = strstr(all, rid) != NULL;
    free(all);
    return seen;
}

/* Reads unit U00<UNIT>'s unlock code at facility SLOW (a "slowNms" one, whose
 * upstream answer takes N ms) on a new connection to PORT with BASIC and
 * request id RID (and "Connection: close" when CLOSE); returns the connection
 * once the upstream holds the request. */
static int ft_in_flight(int port, const char *slow, int unit, const char *basic, const char *rid,
                        bool close_)
{
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "GET /v1/facilities/%s/units/U00%d/unlock-code HTTP/1.1\r\n"
                     "Host: x\r\n%s\r\nX-Request-Id: %s\r\n%s\r\n",
                     slow, unit, basic, rid, close_ ? "Connection: close\r\n" : "");
    int fd = ft_connect(port);
    ft_send_all(fd, req, (size_t)n);
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    while (!ft_recorded(rid)) {
        ck_assert_msg(itest_mono_ms() < end, "the upstream never got request %s", rid);
        itest_sleep_ms(10);
    }
    return fd;
}

START_TEST(test_client_hangup)
{
    char acct[64], slow[72], quick[72], fac[72];
    struct ft_cred k;
    ft_account(acct);
    ft_facility(slow, acct, "slow1500ms-");
    ft_facility(quick, acct, "slow200ms-");
    ft_facility(fac, acct, NULL);
    ft_key(&k, acct, NULL);
    char *basic = ft_basic_header(&k);
    enum { N = 6 };
    int fds[N];
    char rids[N][48];
    const int delay_ms = 1500;
    /* once the upstream holds every request, hang up: the odd ones with a
     * reset, the even ones with a FIN, which is no more than the end of the
     * client's sending side (it may still read: SPEC section 5, half-close) */
    for (int i = 0; i < N; i++) {
        snprintf(rids[i], sizeof(rids[i]), "hangup-%d-%d", (int)getpid(), i);
        fds[i] = ft_in_flight(IT->lg[0].port, slow, i % 4 + 1, basic, rids[i], false);
    }
    for (int i = 0; i < N; i++) {
        if (i % 2) {
            struct linger lin = {1, 0};
            setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
        }
        close(fds[i]);
    }
    /* the server keeps serving, now and after the upstream has answered */
    struct itest_resp r;
    const char *code = ft_path("/v1/facilities/%s/units/U001/unlock-code", fac);
    ft_get(code, &k, NULL, &r);
    ft_expect(&r, 200, NULL);
    itest_resp_free(&r);
    itest_sleep_ms(delay_ms + 300);
    for (int i = 0; i < 3; i++) {
        ft_get(code, &k, NULL, &r);
        ft_expect(&r, 200, NULL);
        itest_resp_free(&r);
    }
    /* a slow request whose client stays is still answered */
    int64_t took = ft_get(ft_path("/v1/facilities/%s/units/U001/unlock-code", quick), &k, NULL, &r);
    ft_expect(&r, 200, NULL);
    itest_resp_free(&r);
    ck_assert_msg(took < FT_BOUND_MS, "a 200 ms upstream took %lld ms", (long long)took);
    ck_assert(ft_lg_alive());

    /* every one of those unlock-code reads is in the audit */
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    for (;;) {
        long st;
        char path[160];
        snprintf(path, sizeof(path), "/admin/v1/audit?key=%s&limit=1000", k.key);
        json_t *doc = itest_admin("GET", path, NULL, &st);
        ck_assert_int_eq(st, 200);
        int found = 0;
        char outcomes[sizeof("reset:; fin:") + 2 * 256] = "", resets[256] = "", fins[256] = "";
        size_t idx;
        json_t *e;
        json_array_foreach (json_object_get(doc, "entries"), idx, e) {
            for (int i = 0; i < N; i++)
                if (strcmp(itest_json_str(e, "request_id"), rids[i]) == 0) {
                    found++;
                    char *list = i % 2 ? resets : fins;
                    size_t cap = i % 2 ? sizeof(resets) : sizeof(fins);
                    size_t used = strlen(list);
                    snprintf(list + used, cap - used, " %s", itest_json_str(e, "outcome"));
                }
        }
        json_decref(doc);
        if (found == N) {
            snprintf(outcomes, sizeof(outcomes), "reset:%s; fin:%s", resets, fins);
            fprintf(stderr, "test_client_hangup: abandoned reads audited as %s\n", outcomes);
            /* Every reset cancelled its upstream transfer long before the
             * upstream's answer: none of them was served. A FIN alone is
             * answered (and audited as served) when the upstream answers. */
            ck_assert_msg(strstr(resets, "served") == NULL && strstr(resets, "upstream") == NULL,
                          "abandoned reads were not cancelled: %s", outcomes);
            ck_assert_msg(strstr(fins, "client_gone") == NULL,
                          "a half-closed client lost its answer: %s", outcomes);
            break;
        }
        ck_assert_msg(itest_mono_ms() < end, "only %d of %d abandoned reads audited", found, N);
        itest_sleep_ms(20);
    }
    free(basic);
}
END_TEST

/* ---- the upstream stopped ---- */

START_TEST(test_upstream_stopped)
{
    char acct[64], fac[72];
    struct ft_cred k;
    ft_account(acct);
    ft_facility(fac, acct, NULL);
    ft_key(&k, acct, NULL);
    const char *code = ft_path("/v1/facilities/%s/units/U001/unlock-code", fac);
    struct itest_resp r;
    ft_get(code, &k, NULL, &r);
    ft_expect(&r, 200, NULL);
    itest_resp_free(&r);

    ck_assert_int_gt(IT->upstream_pid, 0);
    kill(-IT->upstream_pid, SIGKILL);
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    while (itest_port_open(IT->upstream_port)) {
        ck_assert_msg(itest_mono_ms() < end, "the upstream did not stop");
        itest_sleep_ms(5);
    }
    const char *paths[] = {code, ft_path("/v1/facilities/%s", fac),
                           ft_path("/v1/facilities/%s/units?page=2", fac)};
    for (int round = 0; round < 2; round++)
        for (size_t i = 0; i < 3; i++) {
            int64_t took = ft_get(paths[i], &k, NULL, &r);
            ft_expect(&r, 502, "upstream_unavailable");
            ck_assert_msg(took < FT_BOUND_MS, "502 took %lld ms", (long long)took);
            itest_resp_free(&r);
        }
    /* what lockgate answers itself is unaffected */
    ft_get("/v1/facilities", &k, NULL, &r);
    ft_expect(&r, 200, NULL);
    itest_resp_free(&r);
    ft_get("/v1/facilities/nope", &k, NULL, &r);
    ft_expect(&r, 404, "not_found");
    itest_resp_free(&r);
    ck_assert(ft_lg_alive());
}
END_TEST

/* ---- a graceful stop ----
 * SIGTERM: the listener closes at once (new clients are refused, so another
 * instance on the port takes them), /readyz says "draining", and a request in
 * flight is still answered before the process exits 0. */
START_TEST(test_graceful_stop)
{
    char acct[64], slow[72];
    struct ft_cred k;
    ft_account(acct);
    ft_facility(slow, acct, "slow1200ms-");
    ft_key(&k, acct, NULL);
    char *basic = ft_basic_header(&k);
    char rid[48];
    snprintf(rid, sizeof(rid), "drain-%d", (int)getpid());
    int fd = ft_in_flight(IT->lg[0].port, slow, 1, basic, rid, true);
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    pid_t pid = IT->lg[0].pid;
    ck_assert_int_eq(kill(pid, SIGTERM), 0);
    while (itest_port_open(IT->lg[0].port)) {
        ck_assert_msg(itest_mono_ms() < end, "the listener stayed open after SIGTERM");
        itest_sleep_ms(10);
    }
    struct itest_resp r;
    char url[128];
    snprintf(url, sizeof(url), "%s/readyz", IT->lg[0].admin_url);
    ck_assert_int_eq(itest_http("GET", url, NULL, NULL, 0, NULL, &r), 0);
    ck_assert_int_eq(r.status, 503);
    ck_assert_ptr_nonnull(strstr(r.body, "draining"));
    itest_resp_free(&r);
    char first[256];
    long st = ft_read_status(fd, FT_BOUND_MS * 2, first, sizeof(first));
    close(fd);
    ck_assert_msg(st == 200, "the request in flight got %ld (%s)", st, first);
    int status = itest_lg_stop(0);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status %d", status);
    free(basic);
}
END_TEST

/* ---- a forced stop ----
 * A second SIGTERM stops at once, even with ten unlock-code reads waiting on
 * the upstream and the access log on: the process exits 0 and (under the
 * sanitizers) cleanly, and every abandoned read is still recorded. The
 * instance stopped has answered no admin request (its probes are on the
 * public port), so the first access log line of its main thread is one
 * written while the stop closes a worker's connections. */
START_TEST(test_forced_stop)
{
    char acct[64], slow[72];
    struct ft_cred k;
    ft_account(acct);
    ft_facility(slow, acct, "slow4000ms-");
    ft_key(&k, acct, NULL);
    struct itest_opts o = IT->lg[0].opts;
    o.access_log = "on";
    o.no_admin_probe = 1;
    /* Memory freed is filled (under AddressSanitizer), so that a library not
     * built with it (libevent) crashes on what it reads after a free instead
     * of reading what was there. */
    static char asan[512];
    const char *given = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof(asan), "ASAN_OPTIONS=%s%smax_free_fill_size=65536", given ? given : "",
             given && given[0] ? ":" : "");
    static const char *env[2];
    env[0] = asan;
    o.env = env;
    int lg = itest_lg_start(&o);
    char url[128];
    snprintf(url, sizeof(url), "%s/v1/facilities", IT->lg[lg].url);
    char *basic = ft_basic_header(&k);
    const char *hdrs[] = {basic, NULL};
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    for (long st = 0; st != 200;) { /* its facility table is loaded */
        ck_assert_msg(itest_mono_ms() < end, "the new instance never served the key");
        struct itest_resp r;
        itest_http("GET", url, hdrs, NULL, 0, NULL, &r);
        st = r.status;
        itest_resp_free(&r);
        if (st != 200) itest_sleep_ms(20);
    }
    enum { N = 10 };
    int fds[N];
    char rids[N][48];
    for (int i = 0; i < N; i++) {
        snprintf(rids[i], sizeof(rids[i]), "forced-%d-%d", (int)getpid(), i);
        fds[i] = ft_in_flight(IT->lg[lg].port, slow, i % 9 + 1, basic, rids[i], false);
    }
    pid_t pid = IT->lg[lg].pid;
    ck_assert_int_eq(kill(pid, SIGTERM), 0);
    itest_sleep_ms(100);
    ck_assert_int_eq(kill(pid, SIGTERM), 0);
    int64_t t0 = itest_mono_ms();
    int status = itest_lg_stop(lg); /* waits; reports sanitizer findings */
    fprintf(stderr, "test_forced_stop: exited %lld ms after the second signal\n",
            (long long)(itest_mono_ms() - t0));
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status %d", status);
    for (int i = 0; i < N; i++) close(fds[i]);
    /* the abandoned reads went to the log, since Redis was already let go */
    char *log = itest_lg_log(lg);
    for (int i = 0; i < N; i++)
        ck_assert_msg(strstr(log, rids[i]) != NULL, "read %s not recorded", rids[i]);
    free(log);
    free(basic);
}
END_TEST

/* ---- Redis AUTH ----
 * A gateway given [redis] username and password_file talks to Redis as that
 * ACL user (every one of its connections), and serves; with a wrong
 * password it is not ready and says why, and serves no unknown key. */
START_TEST(test_redis_auth)
{
    char acct[64], fac[72];
    struct ft_cred k;
    ft_account(acct);
    ft_facility(fac, acct, NULL);
    ft_key(&k, acct, NULL);
    redisContext *rc = itest_redis();
    freeReplyObject(itest_redis_cmd(rc, "ACL SETUSER gateway on >s3cret-pw ~* &* +@all"));
    const char *right = itest_path("redis-right.pw"), *wrong = itest_path("redis-wrong.pw");
    FILE *f = fopen(right, "w");
    fputs("s3cret-pw\n", f);
    fclose(f);
    f = fopen(wrong, "w");
    fputs("not-the-password\n", f);
    fclose(f);

    struct itest_opts o = IT->lg[0].opts;
    char extra[PATH_MAX + 64];
    snprintf(extra, sizeof(extra), "[redis]\nusername = gateway\npassword_file = %s\n", right);
    o.extra = extra;
    int good = itest_lg_start(&o);
    struct itest_resp r;
    const char *path = ft_path("/v1/facilities/%s", fac);
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    long st = 0;
    char *basic = ft_basic_header(&k);
    char url[256];
    snprintf(url, sizeof(url), "%s%s", IT->lg[good].url, path);
    const char *hdrs[] = {basic, NULL};
    do {
        ck_assert_int_eq(itest_http("GET", url, hdrs, NULL, 0, NULL, &r), 0);
        st = r.status;
        itest_resp_free(&r);
        if (st != 200) itest_sleep_ms(20);
    } while (st != 200 && itest_mono_ms() < end);
    ck_assert_msg(st == 200, "the gateway with the right password answered %ld", st);
    /* every connection of that instance is the ACL user's */
    redisReply *list = itest_redis_cmd(rc, "CLIENT LIST");
    int as_gateway = 0;
    for (const char *p = list->str; (p = strstr(p, "user=gateway")) != NULL; p++) as_gateway++;
    freeReplyObject(list);
    ck_assert_msg(as_gateway >= 3, "%d connections as user gateway (admin, commands, pub/sub)",
                  as_gateway);

    snprintf(extra, sizeof(extra), "[redis]\nusername = gateway\npassword_file = %s\n", wrong);
    int bad = itest_lg_start(&o);
    itest_sleep_ms(500);
    snprintf(url, sizeof(url), "%s/readyz", IT->lg[bad].admin_url);
    ck_assert_int_eq(itest_http("GET", url, NULL, NULL, 0, NULL, &r), 0);
    ck_assert_int_eq(r.status, 503);
    itest_resp_free(&r);
    snprintf(url, sizeof(url), "%s%s", IT->lg[bad].url, path);
    ck_assert_int_eq(itest_http("GET", url, hdrs, NULL, 0, NULL, &r), 0);
    ck_assert_int_eq(r.status, 503);
    itest_resp_free(&r);
    char *log = itest_lg_log(bad);
    ck_assert_msg(strstr(log, "AUTH refused") != NULL, "no AUTH refusal in the log");
    ck_assert_msg(strstr(log, "not-the-password") == NULL, "a password reached the log");
    free(log);
    itest_lg_stop(bad);
    itest_lg_stop(good);
    free(basic);
    redisFree(rc);
}
END_TEST

/* ---- out of descriptors ---- */

#define FT_NOFILE 64 /* the instance's descriptor limit in this test */

static void nofile_setup(void)
{
    struct itest_opts o = {0};
    o.nofile = FT_NOFILE;
    itest_start(&o);
}

static int ft_open_fds(void)
{
    char dir[64];
    snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)IT->lg[0].pid);
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* CPU time lockgate has used so far (all threads), in ms. */
static int64_t ft_cpu_ms(void)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)IT->lg[0].pid);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* fields 14 and 15 (utime, stime) in clock ticks, after the ")" of the name */
    const char *p = strrchr(buf, ')');
    ck_assert_ptr_nonnull(p);
    unsigned long long ut = 0, st = 0;
    ck_assert_int_eq(
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st), 2);
    return (int64_t)(ut + st) * 1000 / sysconf(_SC_CLK_TCK);
}

static int lg_log_has_pause(void *arg)
{
    char *log = itest_lg_log(0);
    int hit = strstr(log, "pausing the listener") != NULL;
    free(log);
    return hit;
}

/* Clients hold every descriptor the gateway may open: accepting fails with
 * EMFILE. The listener pauses instead of retrying at once, the gateway keeps
 * its Redis connections and stays up, and once clients go away the request
 * that waited in the backlog is answered. */
START_TEST(test_out_of_descriptors)
{
    char acct[64];
    struct ft_cred k;
    ft_account(acct);
    ft_key(&k, acct, NULL);
    struct itest_resp r;
    ft_get("/v1/facilities", &k, NULL, &r); /* the key is cached from now on */
    ft_expect(&r, 200, NULL);
    itest_resp_free(&r);

    int used = ft_open_fds();
    ck_assert_msg(used < FT_NOFILE - 8, "lockgate holds %d descriptors at rest", used);
    int nheld = FT_NOFILE - used + 16;
    int *held = calloc((size_t)nheld, sizeof(int));
    for (int i = 0; i < nheld; i++) held[i] = ft_connect(IT->lg[0].port);
    itest_wait(lg_log_has_pause, NULL, "the listener pausing on EMFILE");
    /* a listener retried at once would spin on EMFILE, a core at 100 %; a
     * paused one costs next to nothing (the bound is far from both) */
    int64_t cpu0 = ft_cpu_ms(), wall0 = itest_mono_ms();
    itest_sleep_ms(1000);
    int64_t cpu = ft_cpu_ms() - cpu0, wall = itest_mono_ms() - wall0;
    printf(
        "test_out_of_descriptors: %d connections held, lockgate used %lld ms of CPU in %lld ms\n",
        nheld, (long long)cpu, (long long)wall);
    ck_assert_msg(cpu * 4 < wall, "lockgate used %lld ms of CPU in %lld ms out of descriptors",
                  (long long)cpu, (long long)wall);

    /* a request now waits in the backlog */
    char *basic = ft_basic_header(&k);
    char *req = NULL;
    int n = asprintf(
        &req, "GET /v1/facilities HTTP/1.1\r\nHost: x\r\n%s\r\nConnection: close\r\n\r\n", basic);
    ck_assert_int_gt(n, 0);
    int waiting = ft_connect(IT->lg[0].port);
    ft_send_all(waiting, req, (size_t)n);
    ck_assert(ft_lg_alive());

    for (int i = 0; i < nheld; i++) close(held[i]);
    char first[256];
    long st = ft_read_status(waiting, IT->timeout_ms, first, sizeof(first));
    ck_assert_msg(st == 200, "the request that waited: \"%s\"", first);
    close(waiting);
    ft_get("/v1/facilities", &k, NULL, &r);
    ft_expect(&r, 200, NULL);
    itest_resp_free(&r);
    /* the Redis connections were kept: the admin API works too */
    json_decref(ft_admin(200, "GET", "/admin/v1/accounts", NULL));
    free(req);
    free(basic);
    free(held);
}
END_TEST

int main(void)
{
    const struct itest_case cases[] = {
        {"redis_paused", redis_setup, test_redis_paused},
        {"redis_restart", redis_setup, test_redis_restart},
        {"local_limit_workers", workers_setup, test_local_limit_workers},
        {"oversized_headers", clients_setup, test_oversized_headers},
        {"unread_body", clients_setup, test_unread_body},
        {"client_hangup", clients_setup, test_client_hangup},
        {"upstream_stopped", clients_setup, test_upstream_stopped},
        {"graceful_stop", clients_setup, test_graceful_stop},
        {"forced_stop", clients_setup, test_forced_stop},
        {"redis_auth", clients_setup, test_redis_auth},
        {"out_of_descriptors", nofile_setup, test_out_of_descriptors},
    };
    return itest_run_cases("faults", cases, sizeof(cases) / sizeof(cases[0]), fixture_teardown);
}
