/* Integration tests of /metrics against the real lockgate, a real Redis and
 * the test upstream: the exposition format Prometheus reads (every family
 * with HELP and TYPE before its samples, in one stanza; counters in _total;
 * histograms in seconds with cumulative _bucket{le}, +Inf, _sum and _count),
 * and each counter an operator alerts on, moved by its own event. */
#include "itest.h"
#include "prom_text.h"

#include <openssl/evp.h>

#define MT_UPSTREAM_TIMEOUT_MS 300
#define MT_FAILURES_UNLIMITED  1000000
#define MT_THROTTLE            2 /* auth_failures_per_min where the throttle is tested */

/* ---- scraping ---- */

static char *mt_scrape(void)
{
    char url[128];
    snprintf(url, sizeof(url), "%s/metrics", IT->lg[0].admin_url);
    struct itest_resp r;
    ck_assert_int_eq(itest_http("GET", url, NULL, NULL, 0, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    char *ct = itest_resp_header(&r, "Content-Type");
    ck_assert_msg(ct != NULL && strncmp(ct, "text/plain; version=0.0.4", 25) == 0,
                  "Content-Type %s", ct ? ct : "(none)");
    free(ct);
    char *body = r.body;
    r.body = NULL;
    itest_resp_free(&r);
    return body;
}

static double mt_get(const char *sample)
{
    char *text = mt_scrape();
    double v = prom_value(text, sample);
    free(text);
    return v;
}

/* ---- requests ---- */

struct mt_key {
    char key[64], secret[64];
};

static char *mt_basic(const char *key, const char *secret)
{
    char plain[160];
    unsigned char b64[256];
    int n = snprintf(plain, sizeof(plain), "%s:%s", key, secret);
    EVP_EncodeBlock(b64, (const unsigned char *)plain, n);
    char *h = NULL;
    ck_assert_int_ge(asprintf(&h, "Authorization: Basic %s", (char *)b64), 0);
    return h;
}

/* GET PATH on the public listener with K's Basic credentials (K NULL: none)
 * and up to two more header lines; returns the status. */
static long mt_do(const char *path, const struct mt_key *k, const char *h1, const char *h2)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", IT->lg[0].url, path);
    char *basic = k ? mt_basic(k->key, k->secret) : NULL;
    const char *hdrs[4] = {0};
    int n = 0;
    if (basic) hdrs[n++] = basic;
    if (h1) hdrs[n++] = h1;
    if (h2) hdrs[n++] = h2;
    struct itest_resp r;
    ck_assert_msg(itest_http("GET", url, hdrs, NULL, 0, NULL, &r) == 0, "GET %s: %s", path,
                  r.error);
    long st = r.status;
    itest_resp_free(&r);
    free(basic);
    return st;
}

static void mt_key_new(struct mt_key *k, const char *acct, const char *extra)
{
    itest_key(k->key, k->secret, acct, extra);
}

/* An account with one facility and a key on all of it. */
static void mt_tenant(char acct[64], char fac[72], struct mt_key *k)
{
    itest_account(acct, NULL);
    itest_facility(fac, acct, NULL, NULL);
    mt_key_new(k, acct, NULL);
}

static void mt_admin(long want, const char *method, const char *path, const char *body)
{
    long st = 0;
    json_decref(itest_admin(method, path, body, &st));
    ck_assert_msg(st == want, "%s %s -> %ld, expected %ld", method, path, st, want);
}

/* Waits for a sample to pass a value (counters that move asynchronously). */
struct mt_moved {
    const char *sample;
    double from;
};

static int mt_moved(void *arg)
{
    struct mt_moved *m = arg;
    return mt_get(m->sample) > m->from;
}

/* ---- the format of a real scrape ---- */

static const struct {
    const char *name, *type;
} mt_families[] = {
    {"lockgate_requests_total", "counter"},
    {"lockgate_request_duration_seconds", "histogram"},
    {"lockgate_auth_failures_total", "counter"},
    {"lockgate_rate_limited_total", "counter"},
    {"lockgate_ratelimit_local_total", "counter"},
    {"lockgate_cache_hits_total", "counter"},
    {"lockgate_cache_misses_total", "counter"},
    {"lockgate_upstream_errors_total", "counter"},
    {"lockgate_upstream_duration_seconds", "histogram"},
    {"lockgate_upstream_up", "gauge"},
    {"lockgate_redis_command_duration_seconds", "histogram"},
    {"lockgate_redis_command_failures_total", "counter"},
    {"lockgate_redis_connections_up", "gauge"},
    {"lockgate_workers", "gauge"},
    {"lockgate_events_applied_total", "counter"},
    {"lockgate_events_malformed_total", "counter"},
    {"lockgate_audit_write_failures_total", "counter"},
    {"lockgate_feed_streams", "gauge"},
    {"lockgate_admin_requests_total", "counter"},
    {"lockgate_admin_store_failures_total", "counter"},
    {"lockgate_redis_up", "gauge"},
};

START_TEST(test_exposition)
{
    char acct[64], fac[72], path[160];
    struct mt_key k;
    mt_tenant(acct, fac, &k);
    snprintf(path, sizeof(path), "/v1/facilities/%s/units/U001", fac);
    ck_assert_int_eq(mt_do(path, &k, NULL, NULL), 200);
    ck_assert_int_eq(mt_do("/v1/facilities", NULL, NULL, NULL), 401);
    ck_assert_int_eq(mt_do("/nowhere", NULL, NULL, NULL), 404);
    /* an answer is counted just after it is sent: a client may be faster */
    struct mt_moved m = {"lockgate_request_duration_seconds_count", 2};
    itest_wait(mt_moved, &m, "the three answers counted");
    char *text = mt_scrape();
    char err[512];
    ck_assert_msg(prom_check(text, err, sizeof(err)) == 0, "%s", err);
    for (size_t i = 0; i < sizeof(mt_families) / sizeof(mt_families[0]); i++) {
        char want[160];
        snprintf(want, sizeof(want), "# TYPE %s %s\n", mt_families[i].name, mt_families[i].type);
        ck_assert_msg(strstr(text, want) != NULL, "no family %s of type %s", mt_families[i].name,
                      mt_families[i].type);
    }
    /* the histograms saw what was just sent */
    ck_assert_double_ge(prom_value(text, "lockgate_request_duration_seconds_count"), 3);
    ck_assert_double_ge(prom_value(text, "lockgate_upstream_duration_seconds_count"), 1);
    ck_assert_double_ge(prom_value(text, "lockgate_redis_command_duration_seconds_count"), 1);
    ck_assert_double_ge(prom_value(text, "lockgate_request_duration_seconds_bucket{le=\"+Inf\"}"),
                        3);
    free(text);
}
END_TEST

/* ---- the counters move with their events ---- */

static const char *const mt_reasons[] = {
    "missing_credentials", "malformed_credentials", "mixed_credentials", "invalid_credentials",
    "key_disabled",        "ip_not_allowed",        "forbidden",         "out_of_scope",
};
#define MT_NREASONS ((int)(sizeof(mt_reasons) / sizeof(mt_reasons[0])))

static void mt_reasons_now(double *v)
{
    char *text = mt_scrape();
    for (int i = 0; i < MT_NREASONS; i++) {
        char s[128];
        snprintf(s, sizeof(s), "lockgate_auth_failures_total{reason=\"%s\"}", mt_reasons[i]);
        v[i] = prom_value(text, s);
        ck_assert_msg(v[i] >= 0, "no sample %s", s);
    }
    free(text);
}

/* Runs one refused request (STATUS expected) and checks that REASON, and
 * only it, moved by one. */
static void mt_refused_for(const char *reason, long status, const char *path,
                           const struct mt_key *k, const char *h1, const char *h2)
{
    double before[MT_NREASONS], after[MT_NREASONS];
    mt_reasons_now(before);
    ck_assert_int_eq(mt_do(path, k, h1, h2), status);
    mt_reasons_now(after);
    for (int i = 0; i < MT_NREASONS; i++) {
        double want = strcmp(mt_reasons[i], reason) == 0 ? 1 : 0;
        ck_assert_msg(after[i] - before[i] == want, "%s: reason %s moved by %g, expected %g",
                      reason, mt_reasons[i], after[i] - before[i], want);
    }
}

struct mt_poll {
    const char *path;
    const struct mt_key *k;
    long want;
    int others; /* answers before WANT */
};

static int mt_answers(void *arg)
{
    struct mt_poll *p = arg;
    if (mt_do(p->path, p->k, NULL, NULL) == p->want) return 1;
    p->others++;
    return 0;
}

START_TEST(test_auth_failure_reasons)
{
    char acct[64], fac_a[72], fac_b[72], path_b[160], body[256], xkey[128];
    struct mt_key k, k2, only10, scoped, feed, locked;
    itest_account(acct, NULL);
    itest_facility(fac_a, acct, NULL, NULL);
    itest_facility(fac_b, acct, NULL, NULL);
    mt_key_new(&k, acct, NULL);
    mt_key_new(&k2, acct, NULL);
    mt_key_new(&only10, acct, "\"allowed_cidrs\":[\"10.0.0.0/8\"]");
    snprintf(body, sizeof(body), "\"all_facilities\":false,\"facilities\":[\"%s\"]", fac_a);
    mt_key_new(&scoped, acct, body);
    mt_key_new(&locked, acct, NULL);
    long st = 0;
    json_t *j = itest_admin("POST", "/admin/v1/feed-keys", "{\"name\":\"Feed\"}", &st);
    ck_assert_int_eq(st, 201);
    snprintf(feed.key, sizeof(feed.key), "%s", itest_json_str(j, "key_id"));
    snprintf(feed.secret, sizeof(feed.secret), "%s", itest_json_str(j, "secret"));
    json_decref(j);
    ck_assert_msg(feed.key[0] != '\0', "no feed key");
    snprintf(path_b, sizeof(path_b), "/v1/facilities/%s", fac_b);
    snprintf(xkey, sizeof(xkey), "X-API-Key: %s", k.key);
    struct mt_key wrong;
    snprintf(wrong.key, sizeof(wrong.key), "%s", k.key);
    snprintf(wrong.secret, sizeof(wrong.secret), "%s", k2.secret);

    mt_refused_for("missing_credentials", 401, "/v1/facilities", NULL, NULL, NULL);
    mt_refused_for("malformed_credentials", 401, "/v1/facilities", NULL,
                   "Authorization: Basic bm90LWEta2V5", NULL);
    mt_refused_for("mixed_credentials", 400, "/v1/facilities", &k, xkey, NULL);
    mt_refused_for("invalid_credentials", 401, "/v1/facilities", &wrong, NULL, NULL);
    mt_refused_for("ip_not_allowed", 403, "/v1/facilities", &only10, NULL, NULL);
    mt_refused_for("forbidden", 403, "/v1/facilities", &feed, NULL, NULL);
    mt_refused_for("out_of_scope", 404, path_b, &scoped, NULL, NULL);

    /* a key locked through the admin API: every 403 that follows counts */
    ck_assert_int_eq(mt_do("/v1/facilities", &locked, NULL, NULL), 200);
    char action[160];
    snprintf(action, sizeof(action), "/admin/v1/keys/%s/disable", locked.key);
    mt_admin(200, "POST", action, NULL);
    double before = mt_get("lockgate_auth_failures_total{reason=\"key_disabled\"}");
    struct mt_poll p = {"/v1/facilities", &locked, 403, 0};
    itest_wait(mt_answers, &p, "the locked key refused");
    ck_assert_double_eq(mt_get("lockgate_auth_failures_total{reason=\"key_disabled\"}") - before,
                        1);
}
END_TEST

/* A key's rate limit: each 429 counts under limit="key". */
START_TEST(test_rate_limited_key)
{
    char acct[64];
    struct mt_key k;
    itest_account(acct, NULL);
    mt_key_new(&k, acct, "\"rate_per_sec\":1,\"burst\":1");
    const char *s = "lockgate_rate_limited_total{limit=\"key\"}";
    const char *t = "lockgate_rate_limited_total{limit=\"auth_failures\"}";
    double before = mt_get(s), other = mt_get(t);
    int limited = 0;
    for (int i = 0; i < 4; i++) {
        long st = mt_do("/v1/facilities", &k, NULL, NULL);
        ck_assert_msg(st == 200 || st == 429, "status %ld", st);
        limited += st == 429;
    }
    ck_assert_int_ge(limited, 1);
    ck_assert_double_eq(mt_get(s) - before, limited);
    ck_assert_double_eq(mt_get(t), other);
}
END_TEST

/* A key seen for the first time is read from Redis (a miss), then served
 * from the worker's cache (hits); facility decisions come from the table. */
START_TEST(test_cache_hits_and_misses)
{
    char acct[64], fac[72], path[160];
    struct mt_key k;
    mt_tenant(acct, fac, &k);
    const char *kh = "lockgate_cache_hits_total{cache=\"key\"}";
    const char *km = "lockgate_cache_misses_total{cache=\"key\"}";
    const char *fh = "lockgate_cache_hits_total{cache=\"facility\"}";
    const char *fm = "lockgate_cache_misses_total{cache=\"facility\"}";
    char *text = mt_scrape();
    double kh0 = prom_value(text, kh), km0 = prom_value(text, km), fh0 = prom_value(text, fh),
           fm0 = prom_value(text, fm);
    free(text);
    ck_assert_msg(kh0 >= 0 && km0 >= 0 && fh0 >= 0 && fm0 >= 0, "cache samples missing");
    snprintf(path, sizeof(path), "/v1/facilities/%s", fac);
    ck_assert_int_eq(mt_do(path, &k, NULL, NULL), 200);
    ck_assert_int_eq(mt_do(path, &k, NULL, NULL), 200);
    ck_assert_int_eq(mt_do(path, &k, NULL, NULL), 200);
    text = mt_scrape();
    ck_assert_double_eq(prom_value(text, km) - km0, 1);
    ck_assert_double_eq(prom_value(text, kh) - kh0, 2);
    ck_assert_double_eq(prom_value(text, fh) - fh0, 3);
    ck_assert_double_eq(prom_value(text, fm) - fm0, 0);
    free(text);
}
END_TEST

/* Each kind of upstream failure counts under its name, and every transfer
 * is timed. */
START_TEST(test_upstream_errors)
{
    char acct[64], ok[72], failf[72], resetf[72], slowf[72], path[160];
    struct mt_key k;
    itest_account(acct, NULL);
    itest_facility(ok, acct, NULL, NULL);
    itest_facility(failf, acct, NULL, "fail");
    itest_facility(resetf, acct, NULL, "reset");
    itest_facility(slowf, acct, NULL, "slow");
    mt_key_new(&k, acct, NULL);
    static const char *const errs[] = {"status_5xx", "unavailable", "timeout"};
    const char *facs[] = {failf, resetf, slowf};
    const long status[] = {502, 502, 504};
    for (int i = 0; i < 3; i++) {
        double before[3];
        char s[3][128];
        char *text = mt_scrape();
        for (int e = 0; e < 3; e++) {
            snprintf(s[e], sizeof(s[e]), "lockgate_upstream_errors_total{error=\"%s\"}", errs[e]);
            before[e] = prom_value(text, s[e]);
        }
        double n0 = prom_value(text, "lockgate_upstream_duration_seconds_count");
        free(text);
        snprintf(path, sizeof(path), "/v1/facilities/%s", facs[i]);
        ck_assert_int_eq(mt_do(path, &k, NULL, NULL), status[i]);
        text = mt_scrape();
        for (int e = 0; e < 3; e++)
            ck_assert_msg(prom_value(text, s[e]) - before[e] == (e == i ? 1 : 0),
                          "%s moved by %g after a %s", s[e], prom_value(text, s[e]) - before[e],
                          errs[i]);
        ck_assert_double_eq(prom_value(text, "lockgate_upstream_duration_seconds_count") - n0, 1);
        ck_assert_double_eq(prom_value(text, "lockgate_upstream_up"), 0);
        free(text);
    }
    snprintf(path, sizeof(path), "/v1/facilities/%s", ok);
    double sum0 = mt_get("lockgate_upstream_duration_seconds_sum");
    ck_assert_int_eq(mt_do(path, &k, NULL, NULL), 200);
    char *text = mt_scrape();
    ck_assert_double_eq(prom_value(text, "lockgate_upstream_up"), 1);
    ck_assert_double_gt(prom_value(text, "lockgate_upstream_duration_seconds_sum"), sum0);
    free(text);
}
END_TEST

/* Events: one applied per change a worker hears; a malformed one counts
 * apart. */
START_TEST(test_events_counted)
{
    char acct[64], fac[72], path[160];
    itest_account(acct, NULL);
    itest_facility(fac, acct, NULL, NULL);
    struct mt_moved m = {"lockgate_events_applied_total", 0};
    m.from = mt_get(m.sample);
    double bad0 = mt_get("lockgate_events_malformed_total");
    snprintf(path, sizeof(path), "/admin/v1/facilities/%s", fac);
    mt_admin(200, "PATCH", path, "{\"included\":false}");
    itest_wait(mt_moved, &m, "an applied event counted");
    ck_assert_double_eq(mt_get("lockgate_events_malformed_total"), bad0);

    redisContext *c = itest_redis();
    freeReplyObject(itest_redis_cmd(c, "PUBLISH lg:events %s", "{not json"));
    redisFree(c);
    struct mt_moved bad = {"lockgate_events_malformed_total", bad0};
    itest_wait(mt_moved, &bad, "a malformed event counted");
    ck_assert_double_eq(mt_get("lockgate_events_malformed_total") - bad0, 1);
}
END_TEST

static void mt_redis_config(const char *name, const char *value)
{
    redisContext *c = itest_redis();
    redisReply *rep = itest_redis_cmd(c, "CONFIG SET %s %s", name, value);
    ck_assert_msg(rep->type == REDIS_REPLY_STATUS, "CONFIG SET %s %s", name, value);
    freeReplyObject(rep);
    redisFree(c);
}

/* Redis refusing writes: a withheld unlock code counts as a write-ahead
 * failure, an entry written after the fact (a refusal) as the other kind. */
START_TEST(test_audit_write_failures)
{
    char acct[64], fac[72], read[160], auction[160];
    struct mt_key k;
    mt_tenant(acct, fac, &k);
    snprintf(read, sizeof(read), "/v1/facilities/%s/units/U001/unlock-code", fac);
    snprintf(auction, sizeof(auction), "/v1/facilities/%s/units/U005/unlock-code", fac);
    ck_assert_int_eq(mt_do(read, &k, NULL, NULL), 200);
    const char *wa = "lockgate_audit_write_failures_total{mode=\"write_ahead\"}";
    const char *af = "lockgate_audit_write_failures_total{mode=\"after_the_fact\"}";
    double wa0 = mt_get(wa), af0 = mt_get(af);
    ck_assert_msg(wa0 >= 0 && af0 >= 0, "audit samples missing");
    mt_redis_config("maxmemory-policy", "noeviction");
    mt_redis_config("maxmemory", "1");
    ck_assert_int_eq(mt_do(read, &k, NULL, NULL), 503);
    ck_assert_double_eq(mt_get(wa) - wa0, 1);
    /* the 503 itself is audited after the fact, and that entry fails too */
    struct mt_moved m = {af, af0};
    itest_wait(mt_moved, &m, "the refusal's own entry counted");
    ck_assert_double_eq(mt_get(af) - af0, 1);
    ck_assert_int_eq(mt_do(auction, &k, NULL, NULL), 403); /* code_withheld, audited after */
    m.from = af0 + 1;
    itest_wait(mt_moved, &m, "an after-the-fact audit failure counted");
    mt_redis_config("maxmemory", "0");
    ck_assert_double_eq(mt_get(af) - af0, 2);
    ck_assert_double_eq(mt_get(wa) - wa0, 1);
    ck_assert_int_eq(mt_do(read, &k, NULL, NULL), 200);
}
END_TEST

/* The failed-authentication throttle: each 429 it answers counts under
 * limit="auth_failures". */
START_TEST(test_rate_limited_failures)
{
    const char *s = "lockgate_rate_limited_total{limit=\"auth_failures\"}";
    double before = mt_get(s);
    int limited = 0;
    for (int i = 0; i < MT_THROTTLE + 3; i++) {
        long st = mt_do("/v1/facilities", NULL, "Authorization: Basic bm90LWEta2V5", NULL);
        ck_assert_msg(st == 401 || st == 429, "status %ld", st);
        limited += st == 429;
    }
    ck_assert_int_ge(limited, 1);
    ck_assert_double_eq(mt_get(s) - before, limited);
}
END_TEST

struct mt_conn {
    double want;
};

static int mt_conns_are(void *arg)
{
    double want = ((struct mt_conn *)arg)->want;
    char *text = mt_scrape();
    int ok = prom_value(text, "lockgate_redis_connections_up{connection=\"commands\"}") == want &&
             prom_value(text, "lockgate_redis_connections_up{connection=\"events\"}") == want;
    free(text);
    return ok;
}

/* Redis as the workers see it: round trips timed, commands that get no
 * reply counted, and each worker's connections up or down. */
START_TEST(test_redis_state)
{
    char acct[64];
    struct mt_key k, fresh;
    itest_account(acct, NULL);
    mt_key_new(&k, acct, NULL);
    mt_key_new(&fresh, acct, NULL);
    struct mt_conn up = {2}, down = {0};
    ck_assert_double_eq(mt_get("lockgate_workers"), 2);
    itest_wait(mt_conns_are, &up, "both workers connected");
    double n0 = mt_get("lockgate_redis_command_duration_seconds_count");
    ck_assert_int_eq(mt_do("/v1/facilities", &k, NULL, NULL), 200);
    ck_assert_double_gt(mt_get("lockgate_redis_command_duration_seconds_count"), n0);

    /* a stalled Redis: the key read passes its deadline */
    double f0 = mt_get("lockgate_redis_command_failures_total");
    itest_redis_pause();
    long st = mt_do("/v1/facilities", &fresh, NULL, NULL);
    itest_redis_resume();
    ck_assert_int_eq(st, 503);
    ck_assert_double_ge(mt_get("lockgate_redis_command_failures_total") - f0, 1);

    itest_redis_stop();
    itest_wait(mt_conns_are, &down, "no worker connected with Redis gone");
    itest_redis_start();
    itest_wait(mt_conns_are, &up, "both workers connected again");
}
END_TEST

/* ---- fixtures ---- */

static void core_setup(void)
{
    struct itest_opts o = {0};
    o.upstream_timeout_ms = MT_UPSTREAM_TIMEOUT_MS;
    o.upstream_connect_timeout_ms = MT_UPSTREAM_TIMEOUT_MS / 2;
    o.auth_failures_per_min = MT_FAILURES_UNLIMITED;
    itest_start(&o);
}

static void throttle_setup(void)
{
    struct itest_opts o = {0};
    o.auth_failures_per_min = MT_THROTTLE;
    itest_start(&o);
}

static void workers_setup(void)
{
    struct itest_opts o = {0};
    o.workers = 2;
    itest_start(&o);
}

static void fixture_teardown(void) { itest_stop(); }

int main(void)
{
    Suite *s = suite_create("metrics");
    TCase *core = tcase_create("core");
    tcase_add_unchecked_fixture(core, core_setup, fixture_teardown);
    tcase_set_timeout(core, 120);
    tcase_add_test(core, test_exposition);
    tcase_add_test(core, test_auth_failure_reasons);
    tcase_add_test(core, test_rate_limited_key);
    tcase_add_test(core, test_cache_hits_and_misses);
    tcase_add_test(core, test_upstream_errors);
    tcase_add_test(core, test_events_counted);
    suite_add_tcase(s, core);

    TCase *audit = tcase_create("audit_store"); /* makes its Redis refuse writes */
    tcase_add_unchecked_fixture(audit, core_setup, fixture_teardown);
    tcase_set_timeout(audit, 60);
    tcase_add_test(audit, test_audit_write_failures);
    suite_add_tcase(s, audit);

    TCase *throttle = tcase_create("throttle");
    tcase_add_unchecked_fixture(throttle, throttle_setup, fixture_teardown);
    tcase_set_timeout(throttle, 60);
    tcase_add_test(throttle, test_rate_limited_failures);
    suite_add_tcase(s, throttle);

    TCase *redis = tcase_create("redis"); /* stalls, stops and restarts its Redis */
    tcase_add_unchecked_fixture(redis, workers_setup, fixture_teardown);
    tcase_set_timeout(redis, 90);
    tcase_add_test(redis, test_redis_state);
    suite_add_tcase(s, redis);

    return itest_exit_status(check_run(s));
}
