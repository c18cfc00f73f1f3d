/* Integration tests of the upstream client (src/upstream.c) on a real event
 * loop against the test upstream (upstream_server, started as a child). */
#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check_run.h"
#include "free_ports.h"
#include "lockgate/config.h"
#include "lockgate/upstream.h"

static int server_port;
static int tls_port; /* the same test upstream over TLS, certificate tls_cert for localhost */
static int dead_port;
static pid_t server_pid, tls_pid;
static char record_path[PATH_MAX];
static char tls_cert[PATH_MAX], tls_key[PATH_MAX];

/* ---- the test upstream ------------------------------------------------ */

static int free_port(void)
{
    int port;
    if (free_ports(&port, 1) < 0) {
        fprintf(stderr, "no free TCP port\n");
        exit(1);
    }
    return port;
}

/* upstream_server sits next to this binary (build/ or a sanitizer build). */
static void server_binary(char *out, size_t n)
{
    const char *env = getenv("LG_UPSTREAM_SERVER");
    if (env != NULL) {
        snprintf(out, n, "%s", env);
        return;
    }
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (len < 0) {
        snprintf(out, n, "build/tests/integration/upstream_server");
        return;
    }
    self[len] = '\0';
    snprintf(out, n, "%s/upstream_server", dirname(self));
}

/* Starts the test upstream on a free port (with CERT and KEY: over TLS). */
static int server_start(int *port_out, pid_t *pid_out, const char *cert, const char *key)
{
    char bin[PATH_MAX], port[16];
    server_binary(bin, sizeof(bin));
    for (int attempt = 0; attempt < 5; attempt++) {
        *port_out = free_port();
        snprintf(port, sizeof(port), "%d", *port_out);
        int out[2];
        if (pipe(out) < 0) return -1;
        pid_t pid = fork();
        if (pid < 0) return -1;
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            dup2(out[1], STDOUT_FILENO);
            close(out[0]);
            close(out[1]);
            if (cert != NULL)
                execl(bin, bin, "--port", port, "--record", record_path, "--tls-cert", cert,
                      "--tls-key", key, (char *)NULL);
            else
                execl(bin, bin, "--port", port, "--record", record_path, (char *)NULL);
            perror(bin);
            _exit(127);
        }
        close(out[1]);
        char buf[64] = {0};
        size_t got = 0;
        struct pollfd pfd = {.fd = out[0], .events = POLLIN};
        while (got < sizeof(buf) - 1 && strchr(buf, '\n') == NULL && poll(&pfd, 1, 10000) > 0) {
            ssize_t r = read(out[0], buf + got, sizeof(buf) - 1 - got);
            if (r <= 0) break;
            got += (size_t)r;
        }
        close(out[0]);
        if (strncmp(buf, "ready\n", 6) == 0) {
            *pid_out = pid;
            return 0;
        }
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
    return -1;
}

static void server_stop(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
}

/* A self-signed certificate for the name localhost only (not 127.0.0.1). */
static int cert_make(void)
{
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout '%s' -out '%s' -days 2 -subj /CN=localhost "
             "-addext subjectAltName=DNS:localhost >/dev/null 2>&1",
             tls_key, tls_cert);
    return system(cmd) == 0 ? 0 : -1;
}

/* The recorded request line holding MARKER (the last one), or NULL. Caller frees. */
static char *record_find(const char *marker)
{
    FILE *f = fopen(record_path, "r");
    if (f == NULL) return NULL;
    char *line = NULL, *found = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        if (strstr(line, marker) != NULL) {
            free(found);
            found = strdup(line);
        }
    }
    free(line);
    fclose(f);
    return found;
}

static int record_count(const char *a, const char *b)
{
    FILE *f = fopen(record_path, "r");
    if (f == NULL) return -1;
    char *line = NULL;
    size_t cap = 0;
    int n = 0;
    while (getline(&line, &cap, f) > 0)
        if (strstr(line, a) != NULL && (b == NULL || strstr(line, b) != NULL)) n++;
    free(line);
    fclose(f);
    return n;
}

/* ---- the client side -------------------------------------------------- */

struct outcome {
    int called;
    enum lg_upstream_error error;
    int status;
    char ctype[256];
    char *body;
    size_t body_len;
};

struct fixture {
    struct event_base *base;
    struct lg_upstream *up;
    struct event *guard;
    int pending; /* callbacks still expected before the loop stops */
};

static void on_guard(evutil_socket_t fd, short what, void *arg) { event_base_loopbreak(arg); }

static void fixture_init_ca(struct fixture *fx, const char *urls, int timeout_ms, int max_conn,
                            const char *ca_file)
{
    struct lg_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    snprintf(cfg.upstream_url, sizeof(cfg.upstream_url), "%s", urls);
    if (ca_file != NULL)
        snprintf(cfg.upstream_ca_file, sizeof(cfg.upstream_ca_file), "%s", ca_file);
    cfg.upstream_timeout_ms = timeout_ms;
    cfg.upstream_connect_timeout_ms = timeout_ms < 1000 ? timeout_ms : 1000;
    cfg.upstream_max_connections = max_conn;
    memset(fx, 0, sizeof(*fx));
    fx->base = event_base_new();
    ck_assert_ptr_nonnull(fx->base);
    fx->up = lg_upstream_new(fx->base, &cfg);
    ck_assert_ptr_nonnull(fx->up);
    fx->guard = evtimer_new(fx->base, on_guard, fx->base);
}

static void fixture_init(struct fixture *fx, const char *urls, int timeout_ms, int max_conn)
{
    fixture_init_ca(fx, urls, timeout_ms, max_conn, NULL);
}

static void fixture_free(struct fixture *fx)
{
    lg_upstream_free(fx->up);
    event_free(fx->guard);
    event_base_free(fx->base);
}

static char *local_url(int port)
{
    static char buf[64];
    snprintf(buf, sizeof(buf), "http://127.0.0.1:%d", port);
    return buf;
}

/* Runs the loop until every expected callback came, or MS passed. */
static void run(struct fixture *fx, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    evtimer_add(fx->guard, &tv);
    if (fx->pending > 0) event_base_dispatch(fx->base);
    evtimer_del(fx->guard);
}

/* Runs the loop for MS whatever happens. */
static void run_for(struct fixture *fx, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    evtimer_add(fx->guard, &tv);
    event_base_dispatch(fx->base);
}

struct call {
    struct fixture *fx;
    struct outcome *out;
};

static void on_done(const struct lg_upstream_result *res, void *arg)
{
    struct call *c = arg;
    struct outcome *o = c->out;
    o->called++;
    o->error = res->error;
    o->status = res->status;
    snprintf(o->ctype, sizeof(o->ctype), "%s", res->content_type ? res->content_type : "");
    free(o->body);
    ck_assert_ptr_nonnull(res->body);
    ck_assert_int_eq(res->body[res->body_len], '\0');
    o->body = malloc(res->body_len + 1);
    memcpy(o->body, res->body, res->body_len + 1);
    o->body_len = res->body_len;
    if (--c->fx->pending == 0) event_base_loopbreak(c->fx->base);
}

static void on_never(const struct lg_upstream_result *res, void *arg)
{
    int *called = arg;
    (*called)++;
}

/* One fetch, run to completion. */
static struct outcome fetch(struct fixture *fx, const char *path, int head,
                            const char *const *headers)
{
    struct outcome o = {0};
    struct call c = {fx, &o};
    fx->pending++;
    struct lg_upstream_req *req = lg_upstream_fetch(fx->up, path, head, headers, on_done, &c);
    ck_assert_ptr_nonnull(req);
    ck_assert_int_eq(o.called, 0); /* never called from inside lg_upstream_fetch */
    run(fx, 15000);
    ck_assert_int_eq(o.called, 1);
    ck_assert_int_eq(lg_upstream_inflight(fx->up), 0);
    return o;
}

/* One fetch run to completion, of which only the error is kept. */
static enum lg_upstream_error fetch_error(struct fixture *fx, const char *path)
{
    struct outcome o = fetch(fx, path, 0, NULL);
    free(o.body);
    return o.error;
}

static long json_field(const char *body, const char *name)
{
    json_t *j = json_loads(body, 0, NULL);
    ck_assert_ptr_nonnull(j);
    long v = (long)json_integer_value(json_object_get(j, name));
    json_decref(j);
    return v;
}

/* Sockets this process holds open. */
static int open_sockets(void)
{
    DIR *d = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) != NULL) {
        char path[300], target[64];
        snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(path, target, sizeof(target) - 1);
        if (len > 0) {
            target[len] = '\0';
            if (strncmp(target, "socket:", 7) == 0) n++;
        }
    }
    closedir(d);
    return n;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long server_connections(struct fixture *fx)
{
    struct outcome o = fetch(fx, "/_stats", 0, NULL);
    ck_assert_int_eq(o.error, LG_UPSTREAM_OK);
    ck_assert_int_eq(o.status, 200);
    long n = json_field(o.body, "connections");
    free(o.body);
    return n;
}

/* ---- tests ------------------------------------------------------------ */

START_TEST(test_json_200)
{
    struct fixture fx;
    fixture_init(&fx, local_url(server_port), 2000, 8);
    struct outcome o = fetch(&fx, "/v1/facilities/fac_json1/units/U001/unlock-code", 0, NULL);
    ck_assert_int_eq(o.error, LG_UPSTREAM_OK);
    ck_assert_int_eq(o.status, 200);
    ck_assert_str_eq(o.ctype, "application/json");
    ck_assert_uint_eq(o.body_len, strlen(o.body));
    json_t *j = json_loads(o.body, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "facility_id")), "fac_json1");
    ck_assert_str_eq(json_string_value(json_object_get(j, "unit_id")), "U001");
    ck_assert_int_eq(strlen(json_string_value(json_object_get(j, "unlock_code"))), 4);
    ck_assert_str_eq(json_string_value(json_object_get(j, "lock_status")), "tenant_using_lock");
    json_decref(j);
    free(o.body);
    ck_assert_int_eq(lg_upstream_healthy(fx.up), 1);
    fixture_free(&fx);
}
END_TEST

START_TEST(test_query_and_headers)
{
    struct fixture fx;
    fixture_init(&fx, local_url(server_port), 2000, 8);
    const char *headers[] = {"X-Request-Id: req-4711", "X-Forwarded-For: 10.1.2.3",
                             "Accept-Encoding: gzip", "X-Lockgate-Key: lk_testkey", NULL};
    struct outcome o =
        fetch(&fx, "/v1/facilities/fac_hdr1/units?lock_status=assigned_vacant&limit=3", 0, headers);
    ck_assert_int_eq(o.error, LG_UPSTREAM_OK);
    ck_assert_int_eq(o.status, 200);
    free(o.body);

    char *line = record_find("fac_hdr1");
    ck_assert_ptr_nonnull(line);
    ck_assert_msg(strncmp(line,
                          "GET /v1/facilities/fac_hdr1/units?lock_status=assigned_vacant&limit=3\t",
                          70) == 0,
                  "line: %s", line);
    ck_assert_ptr_nonnull(strstr(line, "\tX-Request-Id: req-4711"));
    ck_assert_ptr_nonnull(strstr(line, "\tX-Forwarded-For: 10.1.2.3"));
    ck_assert_ptr_nonnull(strstr(line, "\tX-Lockgate-Key: lk_testkey"));
    ck_assert_ptr_nonnull(strstr(line, "\tHost: 127.0.0.1:"));
    /* nothing of curl's own besides Host */
    ck_assert_ptr_null(strstr(line, "\tAccept:"));
    ck_assert_ptr_null(strstr(line, "\tExpect:"));
    ck_assert_ptr_null(strstr(line, "\tUser-Agent:"));
    ck_assert_ptr_null(strstr(line, "\tAccept-Encoding:"));
    free(line);

    /* a given Accept is passed as is */
    const char *accept[] = {"Accept: application/json", NULL};
    o = fetch(&fx, "/v1/facilities/fac_hdr2", 0, accept);
    free(o.body);
    line = record_find("fac_hdr2");
    ck_assert_ptr_nonnull(line);
    ck_assert_ptr_nonnull(strstr(line, "\tAccept: application/json"));
    ck_assert_int_eq(record_count("fac_hdr2", "Accept:"), 1);
    free(line);
    fixture_free(&fx);
}
END_TEST

START_TEST(test_head)
{
    struct fixture fx;
    fixture_init(&fx, local_url(server_port), 2000, 8);
    struct outcome o = fetch(&fx, "/v1/facilities/fac_head1/units/U002", 1, NULL);
    ck_assert_int_eq(o.error, LG_UPSTREAM_OK);
    ck_assert_int_eq(o.status, 200);
    ck_assert_uint_eq(o.body_len, 0);
    free(o.body);
    char *line = record_find("fac_head1");
    ck_assert_ptr_nonnull(line);
    ck_assert(strncmp(line, "HEAD /v1/facilities/fac_head1/units/U002\t", 41) == 0);
    free(line);
    /* the same pooled handle does a GET again */
    o = fetch(&fx, "/v1/facilities/fac_head2/units/U002", 0, NULL);
    ck_assert_int_eq(o.status, 200);
    ck_assert_uint_gt(o.body_len, 0);
    free(o.body);
    line = record_find("fac_head2");
    ck_assert_ptr_nonnull(line);
    ck_assert(strncmp(line, "GET ", 4) == 0);
    free(line);
    fixture_free(&fx);
}
END_TEST

START_TEST(test_404_and_500_pass_through)
{
    struct fixture fx;
    fixture_init(&fx, local_url(server_port), 2000, 8);
    struct outcome o = fetch(&fx, "/v1/facilities/fac_nf/units/U999", 0, NULL);
    ck_assert_int_eq(o.error, LG_UPSTREAM_OK);
    ck_assert_int_eq(o.status, 404);
    ck_assert_ptr_nonnull(strstr(o.body, "not_found"));
    free(o.body);
    o = fetch(&fx, "/v1/facilities/fail_x/units/U001", 0, NULL);
    ck_assert_int_eq(o.error, LG_UPSTREAM_OK);
    ck_assert_int_eq(o.status, 500);
    free(o.body);
    ck_assert_int_eq(lg_upstream_healthy(fx.up), 1);
    fixture_free(&fx);
}
END_TEST

START_TEST(test_slow_times_out)
{
    struct fixture fx;
    fixture_init(&fx, local_url(server_port), 300, 8);
    int64_t t0 = mono_ms();
    struct outcome o = fetch(&fx, "/v1/facilities/slow_t1?delay_ms=3000", 0, NULL);
    int64_t took = mono_ms() - t0;
    ck_assert_int_eq(o.error, LG_UPSTREAM_TIMEOUT);
    ck_assert_uint_eq(o.body_len, 0);
    free(o.body);
    ck_assert_msg(took >= 290 && took < 1000, "timeout_ms 300 took %lld ms", (long long)took);
    /* the server is still healthy: it did accept the connection */
    ck_assert_int_eq(lg_upstream_healthy(fx.up), 1);
    o = fetch(&fx, "/v1/facilities/fac_after_slow", 0, NULL);
    ck_assert_int_eq(o.error, LG_UPSTREAM_OK);
    ck_assert_int_eq(o.status, 200);
    free(o.body);
    fixture_free(&fx);
}
END_TEST

START_TEST(test_refused)
{
    struct fixture fx;
    fixture_init(&fx, local_url(dead_port), 2000, 8);
    struct outcome o = fetch(&fx, "/v1/facilities/fac_refused", 0, NULL);
    ck_assert_int_eq(o.error, LG_UPSTREAM_UNAVAILABLE);
    free(o.body);
    ck_assert_int_eq(lg_upstream_healthy(fx.up), 0);
    fixture_free(&fx);
}
END_TEST

START_TEST(test_reset)
{
    struct fixture fx;
    fixture_init(&fx, local_url(server_port), 2000, 8);
    struct outcome o = fetch(&fx, "/v1/facilities/reset_r1/units", 0, NULL);
    ck_assert_int_eq(o.error, LG_UPSTREAM_UNAVAILABLE);
    free(o.body);
    ck_assert_int_ge(record_count("reset_r1", NULL), 1);
    o = fetch(&fx, "/v1/facilities/fac_after_reset", 0, NULL);
    ck_assert_int_eq(o.error, LG_UPSTREAM_OK);
    free(o.body);
    fixture_free(&fx);
}
END_TEST

START_TEST(test_failover_to_second_url)
{
    char urls[256];
    snprintf(urls, sizeof(urls), "http://127.0.0.1:%d/, http://127.0.0.1:%d/", dead_port,
             server_port);
    struct fixture fx;
    fixture_init(&fx, urls, 2000, 8);
    /* the first pick is the dead URL: retried on the second */
    struct outcome o = fetch(&fx, "/v1/facilities/fac_fo0", 0, NULL);
    ck_assert_int_eq(o.error, LG_UPSTREAM_OK);
    ck_assert_int_eq(o.status, 200);
    free(o.body);
    ck_assert_int_eq(lg_upstream_healthy(fx.up), 1);
    for (int i = 1; i <= 6; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/v1/facilities/fac_fo%d", i);
        o = fetch(&fx, path, 0, NULL);
        ck_assert_int_eq(o.error, LG_UPSTREAM_OK);
        ck_assert_int_eq(o.status, 200);
        free(o.body);
    }
    ck_assert_int_eq(record_count("/v1/facilities/fac_fo", NULL), 7);
    fixture_free(&fx);
}
END_TEST

START_TEST(test_round_robin)
{
    char urls[256];
    snprintf(urls, sizeof(urls), "http://127.0.0.1:%d,http://localhost:%d", server_port,
             server_port);
    struct fixture fx;
    fixture_init(&fx, urls, 2000, 8);
    for (int i = 0; i < 6; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/v1/facilities/fac_rr%d", i);
        struct outcome o = fetch(&fx, path, 0, NULL);
        ck_assert_int_eq(o.error, LG_UPSTREAM_OK);
        free(o.body);
    }
    ck_assert_int_eq(record_count("/v1/facilities/fac_rr", "\tHost: localhost:"), 3);
    ck_assert_int_eq(record_count("/v1/facilities/fac_rr", "\tHost: 127.0.0.1:"), 3);
    fixture_free(&fx);
}
END_TEST

START_TEST(test_base_url_path)
{
    /* a base URL's path goes before every request's, its trailing slash dropped */
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/base_pfx/", server_port);
    struct fixture fx;
    fixture_init(&fx, url, 2000, 8);
    struct outcome o = fetch(&fx, "/v1/facilities/fac_pfx?a=1#frag", 0, NULL);
    ck_assert_int_eq(o.error, LG_UPSTREAM_OK);
    ck_assert_int_eq(o.status, 404); /* no such route on the test upstream */
    free(o.body);
    char *line = record_find("fac_pfx");
    ck_assert_ptr_nonnull(line);
    ck_assert_msg(strncmp(line, "GET /base_pfx/v1/facilities/fac_pfx?a=1\t", 40) == 0, "line: %s",
                  line);
    free(line);
    fixture_free(&fx);
}
END_TEST

static void on_cancel_timer(evutil_socket_t fd, short what, void *arg) { lg_upstream_cancel(arg); }

START_TEST(test_cancel)
{
    struct fixture fx;
    fixture_init(&fx, local_url(server_port), 2000, 8);
    long before = server_connections(&fx);
    int called = 0;
    /* cancelled before the loop ever ran */
    struct lg_upstream_req *a =
        lg_upstream_fetch(fx.up, "/v1/facilities/slow_c1?delay_ms=300", 0, NULL, on_never, &called);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(lg_upstream_inflight(fx.up), 1);
    lg_upstream_cancel(a);
    ck_assert_int_eq(lg_upstream_inflight(fx.up), 0);
    /* cancelled while waiting for the answer */
    struct lg_upstream_req *b = lg_upstream_fetch(fx.up, "/v1/facilities/slow_c2?delay_ms=1500", 0,
                                                  NULL, on_never, &called);
    ck_assert_ptr_nonnull(b);
    struct event *t = evtimer_new(fx.base, on_cancel_timer, b);
    struct timeval tv = {0, 100 * 1000};
    evtimer_add(t, &tv);
    run_for(&fx, 400);
    event_free(t);
    ck_assert_int_eq(called, 0);
    ck_assert_int_eq(lg_upstream_inflight(fx.up), 0);
    ck_assert_int_ge(record_count("slow_c2", NULL), 1);
    /* The abandoned exchanges' connections are closed, not reused: the next
     * request gets its own answer (on a reused one it would wait behind the
     * slow answer still due there) on a new connection. A was written at once
     * on the idle connection that gave the first figure, B on a new one. */
    struct outcome o = fetch(&fx, "/v1/facilities/fac_after_cancel", 0, NULL);
    ck_assert_int_eq(o.error, LG_UPSTREAM_OK);
    ck_assert_int_eq(o.status, 200);
    ck_assert_ptr_nonnull(strstr(o.body, "\"fac_after_cancel\""));
    free(o.body);
    long after = server_connections(&fx);
    ck_assert_msg(after - before == 2, "%ld new connections, want 2 (b's and the next one)",
                  after - before);
    run_for(&fx, 1300); /* past the slow answers */
    ck_assert_int_eq(called, 0);
    fixture_free(&fx);
}
END_TEST

START_TEST(test_free_with_inflight)
{
    struct fixture fx;
    fixture_init(&fx, local_url(server_port), 2000, 8);
    int called = 0;
    for (int i = 0; i < 3; i++)
        ck_assert_ptr_nonnull(lg_upstream_fetch(fx.up, "/v1/facilities/slow_f?delay_ms=500", 0,
                                                NULL, on_never, &called));
    run_for(&fx, 100);
    ck_assert_int_eq(lg_upstream_inflight(fx.up), 3);
    fixture_free(&fx);
    ck_assert_int_eq(called, 0);
}
END_TEST

struct free_in_cb {
    struct lg_upstream *up;
    struct event_base *base;
    int called;
};

static void on_free_in_cb(const struct lg_upstream_result *res, void *arg)
{
    struct free_in_cb *f = arg;
    f->called++;
    ck_assert_int_eq(res->error, LG_UPSTREAM_OK);
    lg_upstream_free(f->up);
    /* the client is closing: nothing new starts */
    ck_assert_ptr_null(
        lg_upstream_fetch(f->up, "/v1/facilities/fac_late", 0, NULL, on_never, &f->called));
    event_base_loopbreak(f->base);
}

START_TEST(test_free_from_callback)
{
    struct fixture fx;
    fixture_init(&fx, local_url(server_port), 2000, 8);
    struct free_in_cb f = {fx.up, fx.base, 0};
    ck_assert_ptr_nonnull(
        lg_upstream_fetch(fx.up, "/v1/facilities/fac_fcb", 0, NULL, on_free_in_cb, &f));
    ck_assert_ptr_nonnull(lg_upstream_fetch(fx.up, "/v1/facilities/slow_fcb?delay_ms=200", 0, NULL,
                                            on_free_in_cb, &f));
    run_for(&fx, 5000);
    ck_assert_int_eq(f.called, 1);
    run_for(&fx, 400); /* the slow answer would have come by now */
    ck_assert_int_eq(f.called, 1);
    event_free(fx.guard);
    event_base_free(fx.base);
}
END_TEST

struct chain {
    struct fixture *fx;
    int done, ok, want;
};

static void on_chain(const struct lg_upstream_result *res, void *arg)
{
    struct chain *ch = arg;
    ch->done++;
    if (res->error == LG_UPSTREAM_OK && res->status == 200) ch->ok++;
    if (ch->done < ch->want) {
        char path[64];
        snprintf(path, sizeof(path), "/v1/facilities/fac_seq/units/U%03d", ch->done % 20 + 1);
        if (lg_upstream_fetch(ch->fx->up, path, 0, NULL, on_chain, ch) != NULL) return;
    }
    event_base_loopbreak(ch->fx->base);
}

START_TEST(test_sequential_reuse)
{
    struct fixture fx;
    fixture_init(&fx, local_url(server_port), 2000, 8);
    long before = server_connections(&fx);
    struct chain ch = {&fx, 0, 0, 200};
    ck_assert_ptr_nonnull(
        lg_upstream_fetch(fx.up, "/v1/facilities/fac_seq/units/U001", 0, NULL, on_chain, &ch));
    run_for(&fx, 30000);
    ck_assert_int_eq(ch.done, 200);
    ck_assert_int_eq(ch.ok, 200);
    long after = server_connections(&fx);
    /* all of them on the connection that asked for the first figure */
    ck_assert_msg(after - before == 0, "%ld new connections for 200 sequential fetches",
                  after - before);
    fixture_free(&fx);
}
END_TEST

START_TEST(test_parallel_bounded)
{
    struct fixture fx;
    fixture_init(&fx, local_url(server_port), 5000, 4);
    long before = server_connections(&fx);
    struct outcome o[40];
    struct call c[40];
    memset(o, 0, sizeof(o));
    for (int i = 0; i < 40; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/v1/facilities/fac_par%d/units", i);
        c[i] = (struct call){&fx, &o[i]};
        fx.pending++;
        ck_assert_ptr_nonnull(lg_upstream_fetch(fx.up, path, 0, NULL, on_done, &c[i]));
    }
    ck_assert_int_eq(lg_upstream_inflight(fx.up), 40);
    run(&fx, 20000);
    for (int i = 0; i < 40; i++) {
        ck_assert_int_eq(o[i].called, 1);
        ck_assert_int_eq(o[i].error, LG_UPSTREAM_OK);
        ck_assert_int_eq(o[i].status, 200);
        char want[64];
        snprintf(want, sizeof(want), "\"facility_id\":\"fac_par%d\"", i);
        ck_assert_ptr_nonnull(strstr(o[i].body, want));
        free(o[i].body);
    }
    long after = server_connections(&fx);
    /* max_connections caps the pool: the other transfers wait for a connection */
    ck_assert_msg(after - before <= 4, "%ld connections", after - before);
    fixture_free(&fx);
}
END_TEST

START_TEST(test_body_cap)
{
    struct fixture fx;
    fixture_init(&fx, local_url(server_port), 5000, 8);
    struct outcome o = fetch(&fx, "/v1/facilities/big_ok?bytes=700000", 0, NULL);
    ck_assert_int_eq(o.error, LG_UPSTREAM_OK);
    ck_assert_int_eq(o.status, 200);
    ck_assert_uint_gt(o.body_len, 700000);
    ck_assert_uint_eq(strlen(o.body), o.body_len);
    free(o.body);
    o = fetch(&fx, "/v1/facilities/big_no?bytes=2000000", 0, NULL);
    ck_assert_int_eq(o.error, LG_UPSTREAM_UNAVAILABLE);
    free(o.body);
    o = fetch(&fx, "/v1/facilities/fac_small", 0, NULL);
    ck_assert_int_eq(o.error, LG_UPSTREAM_OK);
    ck_assert_str_eq(
        o.body,
        "{\"facility_id\":\"fac_small\",\"name\":\"Facility fac_small\",\"unit_count\":20}");
    free(o.body);
    fixture_free(&fx);
}
END_TEST

/* The answer as the test upstream's generated facility object. */
static void expect_facility(const struct outcome *o, const char *fac)
{
    char want[256];
    snprintf(want, sizeof(want),
             "{\"facility_id\":\"%s\",\"name\":\"Facility %s\",\"unit_count\":20}", fac, fac);
    ck_assert_int_eq(o->error, LG_UPSTREAM_OK);
    ck_assert_int_eq(o->status, 200);
    ck_assert_str_eq(o->ctype, "application/json");
    ck_assert_str_eq(o->body, want);
    ck_assert_uint_eq(o->body_len, strlen(want));
}

START_TEST(test_chunked)
{
    struct fixture fx;
    fixture_init(&fx, local_url(server_port), 2000, 8);
    long before = server_connections(&fx);
    for (int i = 0; i < 3; i++) {
        struct outcome o = fetch(&fx, "/v1/facilities/chunked_k1", 0, NULL);
        expect_facility(&o, "chunked_k1");
        free(o.body);
    }
    /* a chunked answer ends at its last chunk: the connection goes on */
    ck_assert_int_eq(server_connections(&fx) - before, 0);
    /* no length announced: the 1 MiB cap holds as the chunks come */
    struct outcome o = fetch(&fx, "/v1/facilities/chunked_k2?bytes=700000", 0, NULL);
    ck_assert_int_eq(o.error, LG_UPSTREAM_OK);
    ck_assert_uint_gt(o.body_len, 700000);
    ck_assert_uint_eq(strlen(o.body), o.body_len);
    free(o.body);
    ck_assert_int_eq(fetch_error(&fx, "/v1/facilities/chunked_k3?bytes=2000000"),
                     LG_UPSTREAM_UNAVAILABLE);
    fixture_free(&fx);
}
END_TEST

START_TEST(test_body_until_close)
{
    struct fixture fx;
    fixture_init(&fx, local_url(server_port), 2000, 8);
    long before = server_connections(&fx);
    struct outcome o = fetch(&fx, "/v1/facilities/eof_e1", 0, NULL);
    expect_facility(&o, "eof_e1");
    free(o.body);
    /* that connection (the one that gave the first figure) ended with its
     * answer: the next request is on a new one */
    o = fetch(&fx, "/v1/facilities/fac_after_eof", 0, NULL);
    expect_facility(&o, "fac_after_eof");
    free(o.body);
    ck_assert_int_eq(server_connections(&fx) - before, 1);
    fixture_free(&fx);
}
END_TEST

START_TEST(test_interim_answers_skipped)
{
    struct fixture fx;
    fixture_init(&fx, local_url(server_port), 2000, 8);
    struct outcome o = fetch(&fx, "/v1/facilities/interim_i1", 0, NULL);
    expect_facility(&o, "interim_i1");
    free(o.body);
    fixture_free(&fx);
}
END_TEST

/* The upstream closes a kept-alive connection just as the next request
 * arrives: that GET is sent again, once, on a fresh connection. */
START_TEST(test_closed_idle_connection_retried)
{
    struct fixture fx;
    fixture_init(&fx, local_url(server_port), 2000, 8);
    for (int i = 0; i < 3; i++) {
        struct outcome o = fetch(&fx, "/v1/facilities/drop_d1", i == 1, NULL);
        ck_assert_int_eq(o.error, LG_UPSTREAM_OK);
        ck_assert_int_eq(o.status, 200);
        free(o.body);
    }
    /* the first on a new connection; the next two each dropped once, then sent again */
    ck_assert_int_eq(record_count("GET /v1/facilities/drop_d1", NULL), 3);
    ck_assert_int_eq(record_count("HEAD /v1/facilities/drop_d1", NULL), 2);
    /* a reset on a reused connection before any answer is retried once, no more */
    ck_assert_int_eq(fetch_error(&fx, "/v1/facilities/reset_d2"), LG_UPSTREAM_UNAVAILABLE);
    ck_assert_int_eq(record_count("/v1/facilities/reset_d2", NULL), 2);
    ck_assert_int_eq(lg_upstream_healthy(fx.up), 1);
    fixture_free(&fx);
}
END_TEST

/* A connection cut after part of the answer came: unavailable, and not sent
 * again (the upstream did act on the request). */
START_TEST(test_reset_mid_answer)
{
    struct fixture fx;
    fixture_init(&fx, local_url(server_port), 2000, 8);
    ck_assert_int_eq(fetch_error(&fx, "/v1/facilities/fac_before_cut"), LG_UPSTREAM_OK);
    ck_assert_int_eq(fetch_error(&fx, "/v1/facilities/cut_m1"), LG_UPSTREAM_UNAVAILABLE);
    ck_assert_int_eq(record_count("/v1/facilities/cut_m1", NULL), 1);
    struct outcome o = fetch(&fx, "/v1/facilities/fac_after_cut", 0, NULL);
    expect_facility(&o, "fac_after_cut");
    free(o.body);
    fixture_free(&fx);
}
END_TEST

/* An idle connection the upstream closes is closed here too, at once. */
START_TEST(test_idle_close_noticed)
{
    struct fixture fx;
    fixture_init(&fx, local_url(server_port), 2000, 8);
    int sockets = open_sockets();
    struct outcome o = fetch(&fx, "/v1/facilities/brief_b1", 0, NULL);
    expect_facility(&o, "brief_b1");
    free(o.body);
    ck_assert_int_eq(open_sockets(), sockets + 1);
    run_for(&fx, 400); /* the upstream closes it 100 ms after the answer */
    ck_assert_int_eq(open_sockets(), sockets);
    o = fetch(&fx, "/v1/facilities/fac_after_brief", 0, NULL);
    expect_facility(&o, "fac_after_brief");
    free(o.body);
    fixture_free(&fx);
}
END_TEST

static char *tls_url(const char *host)
{
    static char buf[64];
    snprintf(buf, sizeof(buf), "https://%s:%d", host, tls_port);
    return buf;
}

START_TEST(test_https_verified)
{
    struct fixture fx;
    fixture_init_ca(&fx, tls_url("localhost"), 5000, 8, tls_cert);
    long before = server_connections(&fx);
    for (int i = 0; i < 10; i++) {
        struct outcome o = fetch(&fx, "/v1/facilities/fac_tls1", i == 3, NULL);
        ck_assert_msg(o.error == LG_UPSTREAM_OK, "fetch %d: error %d", i, (int)o.error);
        ck_assert_int_eq(o.status, 200);
        if (i != 3) expect_facility(&o, "fac_tls1");
        free(o.body);
    }
    struct outcome o = fetch(&fx, "/v1/facilities/chunked_tls1", 0, NULL);
    expect_facility(&o, "chunked_tls1");
    free(o.body);
    o = fetch(&fx, "/v1/facilities/big_tls1?bytes=700000", 0, NULL);
    ck_assert_int_eq(o.error, LG_UPSTREAM_OK);
    ck_assert_uint_gt(o.body_len, 700000);
    ck_assert_uint_eq(strlen(o.body), o.body_len);
    free(o.body);
    ck_assert_int_eq(server_connections(&fx) - before, 0);
    char *line = record_find("fac_tls1");
    ck_assert_ptr_nonnull(line);
    ck_assert_ptr_nonnull(strstr(line, "\tHost: localhost:"));
    free(line);
    fixture_free(&fx);
}
END_TEST

START_TEST(test_https_unverified_refused)
{
    /* the certificate's CA is not trusted */
    struct fixture fx;
    fixture_init(&fx, tls_url("localhost"), 2000, 8);
    ck_assert_int_eq(fetch_error(&fx, "/v1/facilities/fac_tls_untrusted"), LG_UPSTREAM_UNAVAILABLE);
    fixture_free(&fx);
    /* trusted, but not issued for 127.0.0.1 */
    fixture_init_ca(&fx, tls_url("127.0.0.1"), 2000, 8, tls_cert);
    ck_assert_int_eq(fetch_error(&fx, "/v1/facilities/fac_tls_wrong_name"),
                     LG_UPSTREAM_UNAVAILABLE);
    fixture_free(&fx);
    ck_assert_int_eq(record_count("fac_tls_", NULL), 0);
}
END_TEST

START_TEST(test_bad_input_refused)
{
    struct fixture fx;
    fixture_init(&fx, local_url(server_port), 2000, 8);
    int called = 0;
    const char *crlf[] = {"X-Request-Id: a\r\nX-Evil: 1", NULL};
    const char *noname[] = {": value", NULL};
    const char *nocolon[] = {"X-Request-Id value", NULL};
    const char *space[] = {"X Bad: 1", NULL};
    ck_assert_ptr_null(lg_upstream_fetch(fx.up, "v1/facilities/x", 0, NULL, on_never, &called));
    ck_assert_ptr_null(lg_upstream_fetch(fx.up, "/v1/facilities/x y", 0, NULL, on_never, &called));
    ck_assert_ptr_null(
        lg_upstream_fetch(fx.up, "/v1/facilities/x\r\nHost: evil", 0, NULL, on_never, &called));
    ck_assert_ptr_null(lg_upstream_fetch(fx.up, NULL, 0, NULL, on_never, &called));
    ck_assert_ptr_null(lg_upstream_fetch(fx.up, "/v1/facilities/x", 0, crlf, on_never, &called));
    ck_assert_ptr_null(lg_upstream_fetch(fx.up, "/v1/facilities/x", 0, noname, on_never, &called));
    ck_assert_ptr_null(lg_upstream_fetch(fx.up, "/v1/facilities/x", 0, nocolon, on_never, &called));
    ck_assert_ptr_null(lg_upstream_fetch(fx.up, "/v1/facilities/x", 0, space, on_never, &called));
    ck_assert_int_eq(lg_upstream_inflight(fx.up), 0);
    run_for(&fx, 50);
    ck_assert_int_eq(called, 0);
    fixture_free(&fx);
}
END_TEST

START_TEST(test_bad_config)
{
    struct event_base *base = event_base_new();
    struct lg_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    ck_assert_ptr_null(lg_upstream_new(base, &cfg));
    snprintf(cfg.upstream_url, sizeof(cfg.upstream_url), " , ");
    ck_assert_ptr_null(lg_upstream_new(base, &cfg));
    snprintf(cfg.upstream_url, sizeof(cfg.upstream_url), "ftp://example.org");
    ck_assert_ptr_null(lg_upstream_new(base, &cfg));
    event_base_free(base);
}
END_TEST

static Suite *upstream_suite(void)
{
    Suite *s = suite_create("upstream");
    TCase *tc = tcase_create("fetch");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_json_200);
    tcase_add_test(tc, test_query_and_headers);
    tcase_add_test(tc, test_head);
    tcase_add_test(tc, test_404_and_500_pass_through);
    tcase_add_test(tc, test_slow_times_out);
    tcase_add_test(tc, test_refused);
    tcase_add_test(tc, test_reset);
    tcase_add_test(tc, test_failover_to_second_url);
    tcase_add_test(tc, test_round_robin);
    tcase_add_test(tc, test_base_url_path);
    tcase_add_test(tc, test_cancel);
    tcase_add_test(tc, test_free_with_inflight);
    tcase_add_test(tc, test_free_from_callback);
    tcase_add_test(tc, test_sequential_reuse);
    tcase_add_test(tc, test_parallel_bounded);
    tcase_add_test(tc, test_body_cap);
    tcase_add_test(tc, test_bad_input_refused);
    tcase_add_test(tc, test_bad_config);
    tcase_add_test(tc, test_chunked);
    tcase_add_test(tc, test_body_until_close);
    tcase_add_test(tc, test_interim_answers_skipped);
    tcase_add_test(tc, test_closed_idle_connection_retried);
    tcase_add_test(tc, test_reset_mid_answer);
    tcase_add_test(tc, test_idle_close_noticed);
    tcase_add_test(tc, test_https_verified);
    tcase_add_test(tc, test_https_unverified_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    char dir[] = "/tmp/lg-test-upstream-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(record_path, sizeof(record_path), "%s/record.log", dir);
    snprintf(tls_cert, sizeof(tls_cert), "%s/cert.pem", dir);
    snprintf(tls_key, sizeof(tls_key), "%s/key.pem", dir);
    if (server_start(&server_port, &server_pid, NULL, NULL) < 0) {
        fprintf(stderr, "test_upstream: the test upstream did not start\n");
        return 1;
    }
    if (cert_make() < 0 || server_start(&tls_port, &tls_pid, tls_cert, tls_key) < 0) {
        fprintf(stderr, "test_upstream: the test upstream over TLS did not start\n");
        server_stop(server_pid);
        return 1;
    }
    dead_port = free_port();

    int failed = check_run(upstream_suite());

    server_stop(server_pid);
    server_stop(tls_pid);
    unlink(record_path);
    unlink(tls_cert);
    unlink(tls_key);
    rmdir(dir);
    return failed == 0 ? 0 : 1;
}
