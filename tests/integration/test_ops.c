/* Operations against the real lockgate: SIGHUP reloads what can change at
 * run time (a replaced TLS certificate for new handshakes while a connection
 * opened before goes on, [limits], [upstream] url, access_log), names what
 * cannot, and refuses a file that fails -t while the running config serves
 * on; a worker thread that dies takes the whole process down (exit 1) with
 * a line that says so. Each case has a lockgate of its own. */
#include "itest.h"
#include "raw.h"

#define OP_READ_MS itest_scaled_ms(5000)

/* ---- keys, requests, the log ---- */

struct op_key {
    char acct[64], fac[72], key[64], secret[64];
    char *basic; /* "Authorization: Basic ..." */
};

/* An account with a facility and an API key on all facilities (EXTRA: more
 * JSON members of the key, or NULL). */
static void op_key_new(struct op_key *k, const char *extra)
{
    itest_account(k->acct, NULL);
    itest_facility(k->fac, k->acct, NULL, NULL);
    itest_key(k->key, k->secret, k->acct, extra);
    k->basic = itest_basic_header(k->key, k->secret);
}

/* GET PATH on instance 0's plain listener with K; the answer into R. */
static void op_get(const struct op_key *k, const char *path, struct itest_resp *r)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", IT->lg[0].url, path);
    const char *hdrs[] = {k->basic, NULL};
    itest_http("GET", url, hdrs, NULL, 0, NULL, r);
}

/* GETs PATH until it answers WANT, at most the harness timeout. */
static void op_poll(const struct op_key *k, const char *path, long want, const char *what)
{
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    for (;;) {
        struct itest_resp r;
        op_get(k, path, &r);
        long st = r.status;
        itest_resp_free(&r);
        if (st == want) return;
        ck_assert_msg(itest_mono_ms() < end, "%s: %s answered %ld, expected %ld", what, path, st,
                      want);
        itest_sleep_ms(20);
    }
}

/* How many times TEXT is in instance 0's log. */
static int op_log_count(const char *text)
{
    char *log = itest_lg_log(0);
    int n = 0;
    for (const char *p = log; (p = strstr(p, text)) != NULL; p++) n++;
    free(log);
    return n;
}

struct op_wait {
    const char *text;
    int count;
};

static int op_logged(void *arg)
{
    const struct op_wait *w = arg;
    return op_log_count(w->text) >= w->count;
}

/* Rewrites instance 0's config with O, sends SIGHUP, and waits until the
 * main thread logged its verdict and, when applied, every worker took it. */
static void op_reload(const struct itest_opts *o, bool applied)
{
    struct itest_lg *lg = &IT->lg[0];
    int workers_before = op_log_count("reloaded configuration applied");
    if (o != NULL) {
        ck_assert_int_eq(itest_config_write(lg->conf, o, lg), 0);
        lg->opts = *o;
    }
    struct op_wait w = {applied ? "applied: " : "refused, the running configuration stays", 0};
    w.count = op_log_count(w.text) + 1;
    ck_assert_int_eq(kill(lg->pid, SIGHUP), 0);
    itest_wait(op_logged, &w, w.text);
    if (applied) {
        struct op_wait ww = {"reloaded configuration applied",
                             workers_before + ITEST_OR(lg->opts.workers, 1)};
        itest_wait(op_logged, &ww, "every worker applying the reloaded configuration");
    }
}

static void op_setup(void)
{
    struct itest_opts o = {0};
    itest_start(&o);
}

static void op_tls_setup(void)
{
    struct itest_opts o = {0};
    o.tls = 1;
    o.workers = 2;
    itest_start(&o);
}

static void op_teardown(void) { itest_stop(); }

static void op_copy(const char *from, const char *to)
{
    char *text = itest_file_read(from);
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s.tmp", to);
    ck_assert_int_eq(itest_file_write(tmp, text), 0);
    ck_assert_int_eq(rename(tmp, to), 0); /* whole files, as a deployment tool swaps them */
    free(text);
}

/* One request on an open raw connection; returns the status of its answer. */
static int op_raw_get(struct raw_conn *c, const struct op_key *k, const char *path)
{
    char req[1024];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n%s\r\n\r\n", path,
                     k->basic);
    ck_assert_uint_eq(raw_send(c, req, (size_t)n), (size_t)n);
    struct raw_buf b = {0};
    raw_read_for(c, &b, OP_READ_MS, 1);
    struct raw_answer a[2];
    int got = raw_parse(b.data ? b.data : "", b.len, 0, a, 2);
    int status = got >= 1 && a[0].complete ? a[0].status : 0;
    raw_answers_free(a, got);
    raw_buf_free(&b);
    return status;
}

/* ---- the certificate ----
 * A replaced certificate and key: after SIGHUP a new handshake is made with
 * the new certificate (it verifies against the new one, no longer against the
 * old), while a keep-alive connection opened before goes on being served;
 * every worker's listener has it (several connections). */
START_TEST(test_reload_tls)
{
    struct op_key k;
    op_key_new(&k, NULL);
    const char *old_ca = itest_path("old-ca.pem");
    char old_copy[PATH_MAX], new_cert[PATH_MAX], new_key[PATH_MAX];
    snprintf(old_copy, sizeof(old_copy), "%s", old_ca);
    snprintf(new_cert, sizeof(new_cert), "%s", itest_path("new-cert.pem"));
    snprintf(new_key, sizeof(new_key), "%s", itest_path("new-key.pem"));
    op_copy(IT->cert, old_copy);
    itest_cert_new(new_cert, new_key);

    char err[256];
    struct raw_conn before;
    ck_assert_msg(raw_connect(&before, IT->lg[0].tls_port, old_copy, NULL, err, sizeof(err)) == 0,
                  "%s", err);
    ck_assert_int_eq(op_raw_get(&before, &k, "/v1/facilities"), 200);

    op_copy(new_cert, IT->cert);
    op_copy(new_key, IT->key);
    op_reload(NULL, true);

    for (int i = 0; i < 4; i++) { /* SO_REUSEPORT spreads them over the workers */
        struct raw_conn c;
        ck_assert_msg(raw_connect(&c, IT->lg[0].tls_port, new_cert, NULL, err, sizeof(err)) == 0,
                      "a new handshake after SIGHUP: %s", err);
        ck_assert_int_eq(op_raw_get(&c, &k, "/v1/facilities"), 200);
        raw_close(&c);
        struct raw_conn old;
        int rc = raw_connect(&old, IT->lg[0].tls_port, old_copy, NULL, err, sizeof(err));
        if (rc == 0) raw_close(&old);
        ck_assert_msg(rc < 0, "a handshake after SIGHUP still verified with the old certificate");
    }
    /* the connection of before is still served, on its old certificate */
    ck_assert_int_eq(op_raw_get(&before, &k, "/v1/facilities"), 200);
    ck_assert_int_eq(op_raw_get(&before, &k, "/v1/facilities"), 200);
    raw_close(&before);
    free(k.basic);
}
END_TEST

/* ---- refused ----
 * A file that fails -t is refused with its reason in the log and the running
 * config serves on; so is one whose certificate cannot be loaded, and the old
 * certificate is still the one served. Then a good file is taken again. */
START_TEST(test_reload_refused)
{
    struct op_key k;
    op_key_new(&k, NULL);
    const char *path = "/v1/facilities";
    struct itest_lg *lg = &IT->lg[0];
    struct itest_opts o = lg->opts;
    struct itest_opts bad = o;
    bad.extra = "[server]\ncolour = blue\n"; /* a second [server]: the unknown option decides */
    bad.burst = 1;
    ck_assert_int_eq(itest_config_write(lg->conf, &bad, lg), 0);
    op_reload(NULL, false);
    char *log = itest_lg_log(0);
    ck_assert_msg(strstr(log, "unknown option 'colour' in [server]") != NULL,
                  "the reason is not in the log:\n%s", log);
    free(log);
    /* still the old config: burst 40, not 1 */
    for (int i = 0; i < 3; i++) {
        struct itest_resp r;
        op_get(&k, path, &r);
        ck_assert_msg(r.status == 200, "request %d after a refused reload: %ld", i, r.status);
        itest_resp_free(&r);
    }

    /* a certificate that does not load */
    ck_assert_int_eq(itest_config_write(lg->conf, &o, lg), 0);
    char *text = itest_file_read(lg->conf);
    char *at = strstr(text, IT->cert);
    ck_assert_ptr_nonnull(at);
    char broken[16384];
    snprintf(broken, sizeof(broken), "%.*s%s/missing-cert.pem%s", (int)(at - text), text, IT->dir,
             at + strlen(IT->cert));
    free(text);
    ck_assert_int_eq(itest_file_write(lg->conf, broken), 0);
    op_reload(NULL, false);
    log = itest_lg_log(0);
    ck_assert_msg(strstr(log, "certificate or key cannot be loaded") != NULL,
                  "no reason for the certificate refusal:\n%s", log);
    free(log);
    char err[256];
    struct raw_conn c;
    ck_assert_msg(raw_connect(&c, lg->tls_port, IT->cert, NULL, err, sizeof(err)) == 0,
                  "the old certificate is no longer served: %s", err);
    ck_assert_int_eq(op_raw_get(&c, &k, path), 200);
    raw_close(&c);

    /* a good file again: taken */
    o.burst = 1;
    op_reload(&o, true);
    free(k.basic);
}
END_TEST

/* ---- [limits] ----
 * A changed default burst applies to a key that was cached with the old one
 * (it answers 429 past the new burst); an option that cannot change at run
 * time is named in the log and kept (the key is still served). */
START_TEST(test_reload_limits)
{
    struct op_key k;
    op_key_new(&k, NULL);
    char path[160];
    snprintf(path, sizeof(path), "/v1/facilities/%s", k.fac);
    struct itest_resp r;
    op_get(&k, path, &r);
    ck_assert_int_eq(r.status, 200);
    char *limit = itest_resp_header(&r, "RateLimit-Limit");
    ck_assert_str_eq(limit ? limit : "", "40"); /* the default burst */
    free(limit);
    itest_resp_free(&r);

    struct itest_opts o = IT->lg[0].opts;
    o.burst = 3;
    o.rate_per_sec = 1;
    o.prefix = "other:"; /* cannot change while running */
    op_reload(&o, true);
    ck_assert_msg(op_log_count("[redis] prefix changed") == 1, "the kept option is not named");
    /* the cached key now has burst 3: served with that limit, then 429 */
    int ok = 0;
    long st = 0;
    for (int i = 0; i < 20 && st != 429; i++) {
        op_get(&k, path, &r);
        st = r.status;
        ck_assert_msg(st == 200 || st == 429, "status %ld", st);
        limit = itest_resp_header(&r, "RateLimit-Limit");
        ck_assert_str_eq(limit ? limit : "", "3");
        free(limit);
        ok += st == 200;
        itest_resp_free(&r);
    }
    printf("test_reload_limits: burst 3 after SIGHUP: %d served before a 429\n", ok);
    ck_assert_msg(st == 429, "no 429 past the reloaded burst");
    free(k.basic);
}
END_TEST

/* ---- [upstream] url and access_log ----
 * After SIGHUP requests go to the new URL (here a closed port: 502) and the
 * access log is written; back to the test upstream, they are served again. */
START_TEST(test_reload_upstream)
{
    struct op_key k;
    op_key_new(&k, NULL);
    char path[160];
    snprintf(path, sizeof(path), "/v1/facilities/%s/units/U001", k.fac);
    op_poll(&k, path, 200, "the test upstream");
    char *out = itest_file_read(IT->lg[0].out);
    ck_assert_msg(strstr(out, "\"request_id\"") == NULL, "an access log line with it off");
    free(out);

    struct itest_opts o = IT->lg[0].opts;
    char closed[64];
    snprintf(closed, sizeof(closed), "http://127.0.0.1:%d", itest_free_port());
    o.upstream_url = closed;
    o.access_log = "on";
    op_reload(&o, true);
    op_poll(&k, path, 502, "a closed upstream after SIGHUP");

    o.upstream_url = NULL; /* the test upstream */
    op_reload(&o, true);
    op_poll(&k, path, 200, "the test upstream again");
    itest_sleep_ms(300); /* the access log is written in batches, at most 100 ms late */
    out = itest_file_read(IT->lg[0].out);
    ck_assert_msg(strstr(out, "\"status\":502") != NULL && strstr(out, "\"status\":200") != NULL,
                  "no access log lines after SIGHUP turned it on:\n%s", out);
    free(out);
    free(k.basic);
}
END_TEST

/* ---- a worker that dies ----
 * The test binary's hook ends worker 1's thread (pthread_exit), or makes its
 * loop return, shortly after start. The process must not go on with a
 * listener nobody serves: it exits 1 and says which worker died. */
static void op_worker_dies(const char *mode)
{
    char env[64];
    snprintf(env, sizeof(env), "LOCKGATE_TEST_WORKER_DIE=1:%s", mode);
    static const char *envs[2];
    envs[0] = env;
    struct itest_opts o = IT->lg[0].opts;
    o.workers = 2;
    o.bin = "tests/lockgate-hooks";
    o.env = envs;
    int i = itest_lg_start(&o);
    pid_t pid = IT->lg[i].pid;
    int status = itest_wait_pid(pid, IT->timeout_ms);
    char name[32];
    snprintf(name, sizeof(name), "lockgate-%d", i);
    if (status == -1) {
        itest_lg_stop(i);
        ck_abort_msg("lockgate ran on for %d ms with worker 1 dead (%s)", IT->timeout_ms, mode);
    }
    itest_pid_save(name, 0);
    IT->lg[i].pid = 0;
    itest_lg_sanitizer_check(i);
    char *log = itest_lg_log(i);
    ck_assert_msg(strstr(log, "worker 1 died") != NULL, "no line says which worker died:\n%s", log);
    free(log);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "exit status %d (%s)", status,
                  mode);
}

START_TEST(test_worker_death)
{
    op_worker_dies("exit");
    op_worker_dies("return");
    /* instance 0 (no hook) is not affected */
    struct itest_resp r;
    char url[128];
    snprintf(url, sizeof(url), "%s/healthz", IT->lg[0].admin_url);
    ck_assert_int_eq(itest_http("GET", url, NULL, NULL, 0, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    itest_resp_free(&r);
}
END_TEST

int main(void)
{
    const struct itest_case cases[] = {
        {"reload_tls", op_tls_setup, test_reload_tls},
        {"reload_refused", op_tls_setup, test_reload_refused},
        {"reload_limits", op_setup, test_reload_limits},
        {"reload_upstream", op_setup, test_reload_upstream},
        {"worker_death", op_setup, test_worker_death},
    };
    return itest_run_cases("ops", cases, sizeof(cases) / sizeof(cases[0]), op_teardown);
}
