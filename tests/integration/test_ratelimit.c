/* Integration tests for ratelimit.c against a real redis-server (started here
 * on a free port in a temporary folder) through the real store.c on a libevent
 * loop: exact bursts, one limit shared by two gateways, refill, NOSCRIPT,
 * expiry of idle keys, and the local fallback when Redis stalls or dies. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "check_run.h"
#include "free_ports.h"
#include "lockgate/config.h"
#include "lockgate/ratelimit.h"
#include "lockgate/store.h"
#include "lockgate/util.h"

#define PREFIX  "lgtest:"
#define WAIT_MS 10000 /* bound on every wait; reaching it fails the test */

static pid_t redis_pid;
static int redis_port;
static char redis_dir[64];

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int free_port(void)
{
    int port;
    if (free_ports(&port, 1) < 0) {
        fprintf(stderr, "no free TCP port\n");
        exit(1);
    }
    return port;
}

static redisContext *redis_sync(void)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
    if (c != NULL && c->err) {
        redisFree(c);
        return NULL;
    }
    if (c != NULL) redisSetTimeout(c, tv);
    return c;
}

static bool redis_pings(void)
{
    redisContext *c = redis_sync();
    if (c == NULL) return false;
    redisReply *r = redisCommand(c, "PING");
    bool ok = r != NULL && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
    if (r != NULL) freeReplyObject(r);
    redisFree(c);
    return ok;
}

/* Starts redis-server on redis_port in redis_dir and waits (bounded) for PING. */
static pid_t redis_start(void)
{
    char port[16], log[128];
    snprintf(port, sizeof(port), "%d", redis_port);
    snprintf(log, sizeof(log), "%s/redis.log", redis_dir);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", redis_dir, (char *)NULL);
        _exit(127);
    }
    int64_t until = lg_mono_ms() + WAIT_MS;
    while (!redis_pings()) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            ck_abort_msg("redis-server exited at start (see %s)", log);
        if (lg_mono_ms() > until) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            ck_abort_msg("redis-server did not answer PING (see %s)", log);
        }
        sleep_ms(20);
    }
    return pid;
}

/* Kills PID and waits until the port refuses connections. In Check's fork
 * mode the test runs in a child that cannot reap the server; the port tells. */
static void redis_stop(pid_t pid, int sig)
{
    if (pid <= 0) return;
    kill(pid, sig);
    waitpid(pid, NULL, 0); /* ECHILD when not ours: fine */
    int64_t until = lg_mono_ms() + WAIT_MS;
    while (redis_pings()) {
        ck_assert_msg(lg_mono_ms() < until, "redis-server did not stop");
        sleep_ms(20);
    }
}

static void setup_redis(void)
{
    snprintf(redis_dir, sizeof(redis_dir), "/tmp/lg-rl-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(redis_dir));
    redis_port = free_port();
    redis_pid = redis_start();
}

static void teardown_redis(void)
{
    if (redis_pid > 0) {
        kill(redis_pid, SIGKILL);
        waitpid(redis_pid, NULL, 0);
        redis_pid = 0;
    }
    DIR *d = opendir(redis_dir);
    if (d != NULL) {
        struct dirent *e;
        char path[512];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            snprintf(path, sizeof(path), "%s/%s", redis_dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(redis_dir);
}

/* Runs one command on a separate plain connection; the caller frees the reply. */
static redisReply *redis_cmd(const char *fmt, const char *arg)
{
    redisContext *c = redis_sync();
    ck_assert_msg(c != NULL, "cannot connect to redis");
    redisReply *r = redisCommand(c, fmt, arg);
    redisFree(c);
    ck_assert_ptr_nonnull(r);
    return r;
}

/* Calls of command NAME so far, from INFO commandstats (0 when never called). */
static long long cmd_calls(const char *name)
{
    redisReply *r = redis_cmd("INFO %s", "commandstats");
    ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
    char needle[64];
    snprintf(needle, sizeof(needle), "cmdstat_%s:calls=", name);
    const char *p = strstr(r->str, needle);
    long long v = p != NULL ? strtoll(p + strlen(needle), NULL, 10) : 0;
    freeReplyObject(r);
    return v;
}

/* ---- a gateway: a store and a limiter on an event loop ---- */

struct gateway {
    struct event_base *base;
    struct event *tick; /* keeps EVLOOP_ONCE from blocking forever */
    struct lg_config cfg;
    struct lg_store *st;
    struct lg_ratelimit *rl;
};

static void on_tick(evutil_socket_t fd, short what, void *arg) {}

static void gw_open(struct gateway *gw, struct event_base *base, int timeout_ms)
{
    memset(gw, 0, sizeof(*gw));
    gw->base = base;
    memset(&gw->cfg, 0, sizeof(gw->cfg));
    snprintf(gw->cfg.redis_host, sizeof(gw->cfg.redis_host), "127.0.0.1");
    gw->cfg.redis_port = redis_port;
    snprintf(gw->cfg.redis_prefix, sizeof(gw->cfg.redis_prefix), PREFIX);
    gw->cfg.redis_timeout_ms = timeout_ms;
    gw->tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    ck_assert_ptr_nonnull(gw->tick);
    struct timeval tv = {0, 5000};
    event_add(gw->tick, &tv);
    gw->st = lg_store_new(base, &gw->cfg);
    ck_assert_ptr_nonnull(gw->st);
    gw->rl = lg_ratelimit_new(gw->st);
    ck_assert_ptr_nonnull(gw->rl);
}

static void gw_close(struct gateway *gw)
{
    lg_ratelimit_free(gw->rl);
    lg_store_free(gw->st);
    event_free(gw->tick);
}

static void loop_ms(struct event_base *base, int ms)
{
    int64_t until = lg_mono_ms() + ms;
    while (lg_mono_ms() < until) event_base_loop(base, EVLOOP_ONCE);
}

static void gw_wait_up(struct gateway *gw)
{
    int64_t until = lg_mono_ms() + WAIT_MS;
    while (!lg_store_up(gw->st)) {
        ck_assert_msg(lg_mono_ms() < until, "store did not connect");
        event_base_loop(gw->base, EVLOOP_ONCE);
    }
}

struct seen {
    int calls;
    struct lg_ratelimit_result res;
};

static void on_result(const struct lg_ratelimit_result *res, void *arg)
{
    struct seen *s = arg;
    s->calls++;
    s->res = *res;
}

static void wait_all(struct event_base *base, struct seen *s, int n)
{
    int64_t until = lg_mono_ms() + WAIT_MS;
    for (;;) {
        int done = 0;
        for (int i = 0; i < n; i++) done += s[i].calls > 0;
        if (done == n) break;
        ck_assert_msg(lg_mono_ms() < until, "only %d of %d checks answered", done, n);
        event_base_loop(base, EVLOOP_ONCE);
    }
}

/* One check, run to its answer. */
static struct lg_ratelimit_result check(struct gateway *gw, const char *key, double rate, int burst)
{
    struct seen s = {0};
    lg_ratelimit_check(gw->rl, key, rate, burst, on_result, &s);
    wait_all(gw->base, &s, 1);
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(s.res.limit, burst);
    return s.res;
}

/* N checks sent at once (pipelined); returns how many were allowed and
 * asserts that each got exactly one answer, none of them local unless
 * LOCAL_OK. */
static int check_many(struct gateway **gws, int ngw, const char *key, double rate, int burst, int n,
                      bool local_ok)
{
    struct seen s[64];
    ck_assert_int_le(n, 64);
    memset(s, 0, sizeof(s));
    for (int i = 0; i < n; i++)
        lg_ratelimit_check(gws[i % ngw]->rl, key, rate, burst, on_result, &s[i]);
    wait_all(gws[0]->base, s, n);
    loop_ms(gws[0]->base, 50); /* a late second answer would show up here */
    int allowed = 0;
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(s[i].calls, 1);
        if (!local_ok) ck_assert_msg(!s[i].res.local, "check %d decided locally", i);
        ck_assert_int_eq(s[i].res.limit, burst);
        if (s[i].res.allowed) {
            allowed++;
            ck_assert_int_ge(s[i].res.remaining, 0);
            ck_assert_int_lt(s[i].res.remaining, burst);
        } else {
            ck_assert_int_eq(s[i].res.remaining, 0);
            ck_assert_int_ge(s[i].res.retry_after_s, 1);
        }
    }
    return allowed;
}

START_TEST(test_burst_exact)
{
    struct event_base *base = event_base_new();
    struct gateway gw;
    gw_open(&gw, base, 2000);
    gw_wait_up(&gw);
    /* One every 100 s: nothing refills while the test runs, however slow. */
    for (int i = 0; i < 5; i++) {
        struct lg_ratelimit_result r = check(&gw, "lk_burst", 0.01, 5);
        ck_assert_msg(r.allowed, "request %d refused", i + 1);
        ck_assert(!r.local);
        ck_assert_int_eq(r.remaining, 4 - i);
        ck_assert_int_eq(r.retry_after_s, 0);
        ck_assert_int_ge(r.reset_s, 100 * i + 1);
        ck_assert_int_le(r.reset_s, 100 * (i + 1));
    }
    for (int i = 0; i < 3; i++) {
        struct lg_ratelimit_result r = check(&gw, "lk_burst", 0.01, 5);
        ck_assert(!r.allowed);
        ck_assert(!r.local);
        ck_assert_int_eq(r.remaining, 0);
        ck_assert_int_ge(r.retry_after_s, 1);
        ck_assert_int_le(r.retry_after_s, 100);
        ck_assert_int_ge(r.reset_s, 400);
        ck_assert_int_le(r.reset_s, 500);
    }
    /* Burst 1: one, then refused. */
    struct lg_ratelimit_result one = check(&gw, "lk_one", 0.01, 1);
    ck_assert(one.allowed && !one.local);
    ck_assert_int_eq(one.remaining, 0);
    ck_assert(!check(&gw, "lk_one", 0.01, 1).allowed);
    /* Other keys are not touched. */
    ck_assert(check(&gw, "lk_other", 0.01, 5).allowed);

    /* Pipelined: exactly N of many concurrent checks pass. */
    struct gateway *gws[1] = {&gw};
    ck_assert_int_eq(check_many(gws, 1, "lk_pipelined", 0.01, 7, 30, false), 7);

    /* Once loaded, the script runs by its SHA alone: no EVAL per request. */
    long long eval0 = cmd_calls("eval"), evalsha0 = cmd_calls("evalsha");
    for (int i = 0; i < 5; i++) ck_assert(!check(&gw, "lk_sha", 0.01, 10).local);
    ck_assert_int_eq(cmd_calls("eval"), eval0);
    ck_assert_int_eq(cmd_calls("evalsha"), evalsha0 + 5);

    /* The key is the prefix, "rl:" and the key id. */
    redisReply *r = redis_cmd("EXISTS %s", PREFIX "rl:lk_burst");
    ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
    ck_assert_int_eq(r->integer, 1);
    freeReplyObject(r);
    gw_close(&gw);
    event_base_free(base);
}
END_TEST

/* Two gateways (two stores, two limiters) share one key's limit exactly. */
START_TEST(test_two_gateways_share)
{
    struct event_base *base = event_base_new();
    struct gateway a, b;
    gw_open(&a, base, 2000);
    gw_open(&b, base, 2000);
    gw_wait_up(&a);
    gw_wait_up(&b);
    struct gateway *gws[2] = {&a, &b};
    ck_assert_int_eq(check_many(gws, 2, "lk_shared", 0.01, 10, 40, false), 10);
    /* And one by one, alternating. */
    int allowed = 0;
    for (int i = 0; i < 12; i++) {
        struct lg_ratelimit_result r = check(gws[i % 2], "lk_shared2", 0.01, 6);
        ck_assert(!r.local);
        allowed += r.allowed;
    }
    ck_assert_int_eq(allowed, 6);
    gw_close(&a);
    gw_close(&b);
    event_base_free(base);
}
END_TEST

/* A key checked many times at once takes batches ("leases") of its
 * allowance in one script call each and spends them locally: still exactly
 * the burst is admitted, by one gateway or two, the remaining counts stay
 * truthful, and far fewer script calls go to Redis than checks. */
START_TEST(test_leases)
{
    struct event_base *base = event_base_new();
    struct gateway a, b;
    gw_open(&a, base, 2000);
    gw_open(&b, base, 2000);
    gw_wait_up(&a);
    gw_wait_up(&b);
    enum { BURST = 48, N = 64 };
    struct seen s[N];
    memset(s, 0, sizeof(s));
    long long evalsha0 = cmd_calls("evalsha");
    for (int i = 0; i < N; i++) lg_ratelimit_check(a.rl, "lk_lease", 0.01, BURST, on_result, &s[i]);
    wait_all(base, s, N);
    loop_ms(base, 50);
    long long calls = cmd_calls("evalsha") - evalsha0;
    int allowed = 0;
    bool seen_rem[BURST] = {false};
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(s[i].calls, 1);
        ck_assert(!s[i].res.local);
        if (!s[i].res.allowed) continue;
        allowed++;
        int rem = s[i].res.remaining;
        ck_assert_msg(rem >= 0 && rem < BURST && !seen_rem[rem], "remaining %d twice or out of range",
                      rem);
        seen_rem[rem] = true;
    }
    ck_assert_int_eq(allowed, BURST);
    fprintf(stderr, "test_leases: %d checks, %lld script calls\n", N, calls);
    ck_assert_msg(calls < N / 2, "%lld script calls for %d checks: no leases", calls, N);
    /* two gateways on one key: still exactly the burst */
    struct gateway *gws[2] = {&a, &b};
    ck_assert_int_eq(check_many(gws, 2, "lk_lease2", 0.01, BURST, N, false), BURST);
    gw_close(&a);
    gw_close(&b);
    event_base_free(base);
}
END_TEST

START_TEST(test_refill)
{
    struct event_base *base = event_base_new();
    struct gateway gw;
    gw_open(&gw, base, 2000);
    gw_wait_up(&gw);
    struct gateway *gws[1] = {&gw};
    /* 10/s, burst 2: a pipelined batch gets the burst and is then refused. */
    int first = check_many(gws, 1, "lk_refill", 10, 2, 6, false);
    ck_assert_int_ge(first, 2);
    ck_assert_int_lt(first, 6);
    sleep_ms(250);
    /* 250 ms later at least one more (two intervals have passed). */
    int second = check_many(gws, 1, "lk_refill", 10, 2, 6, false);
    ck_assert_int_ge(second, 1);
    ck_assert_int_lt(second, 6);
    gw_close(&gw);
    event_base_free(base);
}
END_TEST

/* The script cache emptied under a running gateway: EVALSHA answers NOSCRIPT,
 * the store resends EVAL, and the count goes on where it was. */
START_TEST(test_script_flush)
{
    struct event_base *base = event_base_new();
    struct gateway gw;
    gw_open(&gw, base, 2000);
    gw_wait_up(&gw);
    struct lg_ratelimit_result r = check(&gw, "lk_flush", 0.01, 3);
    ck_assert(r.allowed && !r.local);
    ck_assert_int_eq(r.remaining, 2);
    redisReply *rep = redis_cmd("SCRIPT %s", "FLUSH");
    ck_assert_int_eq(rep->type, REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    r = check(&gw, "lk_flush", 0.01, 3);
    ck_assert(r.allowed && !r.local);
    ck_assert_int_eq(r.remaining, 1);
    rep = redis_cmd("SCRIPT %s", "FLUSH");
    freeReplyObject(rep);
    /* Several at once after a flush: each one is resent. */
    struct gateway *gws[1] = {&gw};
    ck_assert_int_eq(check_many(gws, 1, "lk_flush", 0.01, 3, 5, false), 1);
    r = check(&gw, "lk_flush", 0.01, 3);
    ck_assert(!r.allowed && !r.local);
    gw_close(&gw);
    event_base_free(base);
}
END_TEST

static long long pttl(const char *key)
{
    redisReply *r = redis_cmd("PTTL %s", key);
    ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* The TAT key lives about as long as the allowance needs to refill. */
START_TEST(test_key_expires)
{
    struct event_base *base = event_base_new();
    struct gateway gw;
    gw_open(&gw, base, 2000);
    gw_wait_up(&gw);
    ck_assert(check(&gw, "lk_ttl", 1, 5).allowed);
    long long t = pttl(PREFIX "rl:lk_ttl");
    ck_assert_int_gt(t, 0);
    ck_assert_int_le(t, 1001);
    for (int i = 0; i < 4; i++) ck_assert(check(&gw, "lk_ttl", 1, 5).allowed);
    t = pttl(PREFIX "rl:lk_ttl");
    ck_assert_int_gt(t, 1000); /* at least four intervals still to go */
    ck_assert_int_le(t, 5001);
    /* The stored value is a plain number (the TAT). */
    redisReply *r = redis_cmd("GET %s", PREFIX "rl:lk_ttl");
    ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
    ck_assert_uint_eq(strspn(r->str, "0123456789"), r->len);
    freeReplyObject(r);

    /* 20/s, burst 1: the key is gone once the allowance is full again. */
    ck_assert(check(&gw, "lk_ttl_short", 20, 1).allowed);
    t = pttl(PREFIX "rl:lk_ttl_short");
    ck_assert_int_gt(t, 0);
    ck_assert_int_le(t, 51);
    sleep_ms(200);
    r = redis_cmd("EXISTS %s", PREFIX "rl:lk_ttl_short");
    ck_assert_int_eq(r->integer, 0);
    freeReplyObject(r);
    /* ...and the next request starts from a full allowance. */
    struct lg_ratelimit_result res = check(&gw, "lk_ttl_short", 20, 1);
    ck_assert(res.allowed && !res.local);
    gw_close(&gw);
    event_base_free(base);
}
END_TEST

/* A Redis that stops answering: the check is decided locally when its
 * deadline passes, exactly once, and Redis takes over again afterwards. */
START_TEST(test_redis_stalled)
{
    struct event_base *base = event_base_new();
    struct gateway gw;
    gw_open(&gw, base, 100);
    gw_wait_up(&gw);
    ck_assert_int_eq(kill(redis_pid, SIGSTOP), 0);
    struct seen s = {0};
    lg_ratelimit_check(gw.rl, "lk_stall", 0.01, 2, on_result, &s);
    wait_all(base, &s, 1);
    ck_assert(s.res.local);
    ck_assert(s.res.allowed);
    ck_assert_int_eq(s.res.remaining, 1);
    struct lg_ratelimit_result r = check(&gw, "lk_stall", 0.01, 2);
    ck_assert(r.local && r.allowed);
    r = check(&gw, "lk_stall", 0.01, 2);
    ck_assert(r.local && !r.allowed);
    ck_assert_int_ge(r.retry_after_s, 1);
    ck_assert_int_eq(kill(redis_pid, SIGCONT), 0);
    loop_ms(base, 300);
    ck_assert_int_eq(s.calls, 1); /* the late reply was not delivered again */
    gw_wait_up(&gw);
    int64_t until = lg_mono_ms() + WAIT_MS;
    for (;;) {
        r = check(&gw, "lk_stall_after", 0.01, 1000);
        if (!r.local) break;
        ck_assert_msg(lg_mono_ms() < until, "still local after Redis came back");
        loop_ms(base, 20);
    }
    ck_assert(r.allowed);
    gw_close(&gw);
    event_base_free(base);
}
END_TEST

/* Redis killed: local decisions that still enforce the burst; Redis again
 * once it is back. Runs last: it replaces the server. */
START_TEST(test_redis_down)
{
    struct event_base *base = event_base_new();
    struct gateway gw;
    gw_open(&gw, base, 2000);
    gw_wait_up(&gw);
    ck_assert(!check(&gw, "lk_down", 0.01, 3).local);
    redis_stop(redis_pid, SIGKILL);
    /* The store has not noticed yet: the command fails on the lost connection. */
    struct lg_ratelimit_result r = check(&gw, "lk_down", 0.01, 3);
    ck_assert(r.local);
    ck_assert(r.allowed);
    ck_assert_int_eq(r.remaining, 2); /* local state starts from a full allowance */
    r = check(&gw, "lk_down", 0.01, 3);
    ck_assert(r.local && r.allowed);
    ck_assert_int_eq(r.remaining, 1);
    r = check(&gw, "lk_down", 0.01, 3);
    ck_assert(r.local && r.allowed);
    ck_assert_int_eq(r.remaining, 0);
    for (int i = 0; i < 3; i++) {
        r = check(&gw, "lk_down", 0.01, 3);
        ck_assert(r.local && !r.allowed);
        ck_assert_int_ge(r.retry_after_s, 1);
        ck_assert_int_le(r.retry_after_s, 100);
    }
    struct gateway *gws[1] = {&gw};
    ck_assert_int_eq(check_many(gws, 1, "lk_down_many", 0.01, 4, 20, true), 4);

    /* Back: the store reconnects and Redis decides again. */
    redis_pid = redis_start();
    gw_wait_up(&gw);
    r = check(&gw, "lk_down", 0.01, 3);
    ck_assert(!r.local);
    ck_assert(r.allowed); /* the new server holds no state */
    gw_close(&gw);
    event_base_free(base);
    redis_stop(redis_pid, SIGKILL); /* ours to reap, even in fork mode */
    redis_pid = 0;
}
END_TEST

static Suite *ratelimit_suite(void)
{
    Suite *s = suite_create("ratelimit-redis");
    TCase *tc = tcase_create("redis");
    tcase_add_unchecked_fixture(tc, setup_redis, teardown_redis);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_burst_exact);
    tcase_add_test(tc, test_two_gateways_share);
    tcase_add_test(tc, test_leases);
    tcase_add_test(tc, test_refill);
    tcase_add_test(tc, test_script_flush);
    tcase_add_test(tc, test_key_expires);
    tcase_add_test(tc, test_redis_stalled);
    tcase_add_test(tc, test_redis_down);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    return check_run(ratelimit_suite()) ? 1 : 0;
}
