/* Several instances on Redis Sentinel (SPEC section 12): each finds the
 * primary through the Sentinels, follows a failover within Sentinel's time
 * plus a second, never serves a wrong answer meanwhile, loses no write that
 * a replica confirmed (WAIT), and shares rate limits and exclusions with the
 * others exactly. A real primary, replica and three redis-sentinel
 * processes per case. */
#include <openssl/evp.h>

#include "cluster.h"

#define NLG 3 /* instances 0..2, all through the Sentinels */

struct cred {
    char key[64], secret[64];
};

static char account[64], fac[72], fac_out[72];
static struct cred live, gone, limited;

/* GET PATH on instance I with K; the status, the error code into CODE, and
 * the parsed answer into *DOC when DOC is given (new reference, or NULL). */
static long get_doc(int i, const char *path, const struct cred *k, char code[64], json_t **doc)
{
    char url[512], plain[160], auth[256];
    unsigned char b64[220];
    snprintf(url, sizeof(url), "%s%s", IT->lg[i].url, path);
    int n = snprintf(plain, sizeof(plain), "%s:%s", k->key, k->secret);
    EVP_EncodeBlock(b64, (const unsigned char *)plain, n);
    snprintf(auth, sizeof(auth), "Authorization: Basic %s", (char *)b64);
    const char *headers[] = {auth, NULL};
    struct itest_resp r;
    itest_http("GET", url, headers, NULL, 0, NULL, &r);
    code[0] = '\0';
    json_t *j = json_loads(r.body, 0, NULL);
    snprintf(code, 64, "%s", itest_json_str(json_object_get(j, "error"), "code"));
    if (doc != NULL)
        *doc = j;
    else
        json_decref(j);
    long st = r.status;
    itest_resp_free(&r);
    return st;
}

static long get_at(int i, const char *path, const struct cred *k, char code[64])
{
    return get_doc(i, path, k, code, NULL);
}

static json_t *admin_at(int i, long want, const char *method, const char *path, const char *body,
                        char **warning)
{
    struct itest_resp r;
    itest_admin_resp(i, method, path, body, &r);
    ck_assert_msg(r.status == want, "%s %s on instance %d -> %ld (%s), expected %ld", method, path,
                  i, r.status, r.body, want);
    if (warning != NULL) *warning = itest_resp_header(&r, "Warning");
    json_t *j = r.body_len ? json_loads(r.body, 0, NULL) : NULL;
    itest_resp_free(&r);
    return j;
}

/* Instance 0 as the harness started it (host and port), then every
 * instance through the Sentinels, with EXTRA [redis] lines. */
static void start_instances(const char *extra)
{
    static char text[1024];
    snprintf(text, sizeof(text), "%s%s", cluster_extra(), extra ? extra : "");
    struct itest_opts o = IT->lg[0].opts;
    o.extra = text;
    IT->lg[0].opts = o;
    if (itest_config_write(IT->lg[0].conf, &o, &IT->lg[0]) < 0) itest_fail("config");
    itest_lg_restart(0);
    for (int i = 1; i < NLG; i++) itest_lg_start(&o);
}

static void setup_with(const char *extra, const char *sentinel_password)
{
    struct itest_opts o = {0};
    /* refusals count toward the per-IP failure throttle: the test sends many */
    o.auth_failures_per_min = 1000000;
    itest_start(&o);
    cluster_start(3, sentinel_password);
    if (sentinel_password != NULL) { /* and a Sentinel that is down, asked first */
        static char text[sizeof(CL->extra)];
        snprintf(text, sizeof(text), "%s", cluster_extra());
        const char *at = strstr(cluster_extra(), "sentinels = ") + strlen("sentinels = ");
        size_t head = (size_t)(at - cluster_extra());
        snprintf(CL->extra + head, sizeof(CL->extra) - head, "127.0.0.1:%d,%s", itest_free_port(),
                 text + head);
    }
    start_instances(extra);
    itest_account(account, NULL);
    itest_facility(fac, account, NULL, NULL);
    itest_facility(fac_out, account, NULL, NULL);
    itest_key(live.key, live.secret, account, "\"rate_per_sec\":1000,\"burst\":1000");
    itest_key(gone.key, gone.secret, account, "\"rate_per_sec\":1000,\"burst\":1000");
    itest_key(limited.key, limited.secret, account, "\"rate_per_sec\":1,\"burst\":10");
}

/* the Sentinels with a password here: lockgate authenticates to them */
static void setup(void) { setup_with(NULL, "sentinel-pw-4f1c2b"); }
static void setup_wait(void) { setup_with("replicas_to_wait = 1\nwait_timeout_ms = 300\n", NULL); }
static void teardown(void) { itest_stop(); }

static const char *units_of(const char *f)
{
    static char p[2][160];
    static int n;
    char *b = p[n++ % 2];
    snprintf(b, 160, "/v1/facilities/%s/units", f);
    return b;
}

/* Waits until instance I answers PATH for K with WANT. */
static void wait_status(int i, const char *path, const struct cred *k, long want)
{
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    char code[64];
    long st;
    while ((st = get_at(i, path, k, code)) != want) {
        ck_assert_msg(itest_mono_ms() < end, "instance %d: %s answered %ld %s, expected %ld", i,
                      path, st, code, want);
        itest_sleep_ms(20);
    }
}

/* One round over every instance: the live key is served or 503, the
 * disabled key and the excluded facility are never served. Returns how
 * many answers were 503. */
static int round_check(void)
{
    int unavailable = 0;
    char code[64];
    for (int i = 0; i < NLG; i++) {
        long st = get_at(i, units_of(fac), &live, code);
        ck_assert_msg(st == 200 || (st == 503 && strcmp(code, "store_unavailable") == 0),
                      "instance %d: the live key got %ld %s during the failover", i, st, code);
        unavailable += st == 503;
        st = get_at(i, units_of(fac), &gone, code);
        ck_assert_msg(st == 403 || st == 503,
                      "instance %d: a key disabled before the failover got %ld %s", i, st, code);
        ck_assert_msg(st != 403 || strcmp(code, "key_disabled") == 0, "instance %d: 403 %s", i,
                      code);
        st = get_at(i, units_of(fac_out), &live, code);
        ck_assert_msg(st == 404 || st == 503,
                      "instance %d: an excluded facility got %ld %s during the failover", i, st,
                      code);
    }
    return unavailable;
}

/* The primary dies during traffic: every instance is on the promoted
 * replica (subscribed there) within Sentinel's failover plus one second, and
 * nothing in between is a wrong answer. The disable and the exclusion are
 * acknowledged by the replica (replicas_to_wait = 1) just before the kill. */
START_TEST(test_failover)
{
    for (int i = 0; i < NLG; i++) {
        wait_status(i, units_of(fac), &live, 200);
        wait_status(i, units_of(fac), &gone, 200); /* cached as enabled everywhere */
        wait_status(i, units_of(fac_out), &live, 200);
    }
    /* a feed reader's cursor from before the exclusion */
    struct cred feed;
    json_t *j = admin_at(0, 201, "POST", "/admin/v1/feed-keys", "{\"name\":\"Release\"}", NULL);
    snprintf(feed.key, sizeof(feed.key), "%s", itest_json_str(j, "key_id"));
    snprintf(feed.secret, sizeof(feed.secret), "%s", itest_json_str(j, "secret"));
    json_decref(j);
    char code[64], cursor[64];
    ck_assert_int_eq(get_doc(0, "/v1/feed/facilities", &feed, code, &j), 200);
    snprintf(cursor, sizeof(cursor), "%s", itest_json_str(j, "cursor"));
    json_decref(j);
    char path[160], *warn = NULL;
    snprintf(path, sizeof(path), "/admin/v1/keys/%s/disable", gone.key);
    j = admin_at(1, 200, "POST", path, NULL, &warn);
    ck_assert_msg(json_is_true(json_object_get(j, "replicated")) && warn == NULL,
                  "the disable was not confirmed by the replica (warning %s)", warn);
    json_decref(j);
    snprintf(path, sizeof(path), "/admin/v1/facilities/%s", fac_out);
    j = admin_at(2, 200, "PATCH", path, "{\"included\":false}", &warn);
    ck_assert_msg(json_is_true(json_object_get(j, "replicated")), "exclusion not replicated");
    json_decref(j);
    for (int i = 0; i < NLG; i++) {
        wait_status(i, units_of(fac), &gone, 403);
        wait_status(i, units_of(fac_out), &live, 404);
    }
    int old = cluster_primary();
    ck_assert_int_eq(old, IT->redis_port);
    int64_t t_kill = itest_mono_ms();
    itest_redis_stop();
    /* traffic until the Sentinels name the replica */
    int unavailable = 0, rounds = 0;
    while (cluster_primary() != CL->replica_port) {
        ck_assert_msg(itest_mono_ms() - t_kill < IT->timeout_ms * 2, "no failover happened");
        unavailable += round_check();
        rounds++;
    }
    int64_t t_switch = itest_mono_ms();
    /* every instance subscribed on the new primary within a second */
    redisContext *c = cluster_redis(CL->replica_port);
    int64_t bound = t_switch + itest_scaled_ms(1000);
    long long subs = 0;
    while (1) {
        redisReply *r = itest_redis_cmd(c, "PUBSUB NUMSUB lg:events");
        subs = r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? r->element[1]->integer : -1;
        freeReplyObject(r);
        if (subs >= NLG) break;
        ck_assert_msg(itest_mono_ms() < bound,
                      "%lld of %d instances subscribed on the promoted replica %d ms after the "
                      "Sentinels named it",
                      subs, NLG, itest_scaled_ms(1000));
        itest_sleep_ms(5);
    }
    int64_t t_all = itest_mono_ms();
    redisFree(c);
    /* traffic goes on until everyone serves again: still never a wrong answer */
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    while (round_check() > 0) {
        ck_assert_msg(itest_mono_ms() < end, "instances still 503 after the failover");
        rounds++;
    }
    for (int i = 0; i < NLG; i++) {
        ck_assert_int_eq(get_at(i, units_of(fac), &gone, code), 403);
        ck_assert_str_eq(code, "key_disabled");
        ck_assert_int_eq(get_at(i, units_of(fac_out), &live, code), 404);
    }
    /* the cursor from before the failover is still valid, and the exclusion
     * written before it is among the changes after it */
    char changes[160];
    snprintf(changes, sizeof(changes), "/v1/feed/facilities/changes?cursor=%s", cursor);
    for (int i = 0; i < NLG; i++) {
        ck_assert_msg(get_doc(i, changes, &feed, code, &j) == 200,
                      "instance %d: the feed cursor from before the failover: %s", i, code);
        json_t *ch = json_object_get(j, "changes");
        bool seen = false;
        for (size_t n = 0; n < json_array_size(ch); n++)
            seen |= strcmp(itest_json_str(json_array_get(ch, n), "facility_id"), fac_out) == 0 &&
                    strcmp(itest_json_str(json_array_get(ch, n), "type"), "facility.excluded") == 0;
        ck_assert_msg(seen, "instance %d: the exclusion is not among the changes", i);
        json_decref(j);
    }
    /* writes go to the new primary: one through each instance reaches the others */
    snprintf(path, sizeof(path), "/admin/v1/keys/%s/disable", live.key);
    json_decref(admin_at(0, 200, "POST", path, NULL, NULL));
    for (int i = 0; i < NLG; i++) wait_status(i, units_of(fac), &live, 403);
    fprintf(stderr,
            "test_failover: Sentinels named the replica %lld ms after the kill; all %d instances "
            "subscribed there %lld ms later; %d rounds, %d answers 503\n",
            (long long)(t_switch - t_kill), NLG, (long long)(t_all - t_switch), rounds,
            unavailable);
}
END_TEST

/* WAIT after each admin write: confirmed by the replica, "replicated": true;
 * with the replica stopped, the write still succeeds, says "replicated":
 * false with a Warning header, and the metric counts it. */
START_TEST(test_wait_replicas)
{
    char path[160], *warn = NULL;
    snprintf(path, sizeof(path), "/admin/v1/keys/%s/disable", gone.key);
    json_t *j = admin_at(0, 200, "POST", path, NULL, &warn);
    ck_assert_msg(json_is_true(json_object_get(j, "replicated")), "not replicated");
    ck_assert_msg(warn == NULL, "a Warning on a replicated write: %s", warn);
    json_decref(j);
    kill(CL->replica_pid, SIGSTOP);
    snprintf(path, sizeof(path), "/admin/v1/keys/%s/enable", gone.key);
    j = admin_at(0, 200, "POST", path, NULL, &warn);
    kill(CL->replica_pid, SIGCONT);
    ck_assert_msg(json_is_false(json_object_get(j, "replicated")),
                  "a write no replica confirmed did not say \"replicated\": false");
    ck_assert_msg(warn != NULL && strstr(warn, "0 of 1 replicas") != NULL, "Warning: %s",
                  warn ? warn : "(none)");
    free(warn);
    json_decref(j);
    /* a delete answers 204: the warning alone says it */
    kill(CL->replica_pid, SIGSTOP);
    snprintf(path, sizeof(path), "/admin/v1/keys/%s", limited.key);
    json_decref(admin_at(0, 204, "DELETE", path, NULL, &warn));
    kill(CL->replica_pid, SIGCONT);
    ck_assert_msg(warn != NULL, "a 204 write without replication had no Warning");
    free(warn);
    char url[128];
    snprintf(url, sizeof(url), "%s/metrics", IT->lg[0].admin_url);
    char auth[128];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", IT->token);
    const char *headers[] = {auth, NULL};
    struct itest_resp r;
    itest_http("GET", url, headers, NULL, 0, NULL, &r);
    ck_assert_msg(strstr(r.body, "lockgate_admin_unreplicated_writes_total 2\n") != NULL,
                  "metric: %.2000s", r.body);
    itest_resp_free(&r);
}
END_TEST

/* Three instances on one Redis share one rate limit exactly, and an
 * exclusion written through one is refused by the others at once. */
START_TEST(test_shared_state)
{
    char code[64];
    int admitted = 0, limited429 = 0;
    int64_t t0 = itest_mono_ms();
    for (int n = 0; n < 30; n++) {
        long st = get_at(n % NLG, "/v1/facilities", &limited, code);
        if (st == 200) admitted++;
        if (st == 429) limited429++;
        ck_assert_msg(st == 200 || st == 429, "answer %ld %s", st, code);
    }
    /* burst 10, then one per second */
    int64_t elapsed = itest_mono_ms() - t0;
    int allowed = 10 + (int)(elapsed / 1000) + 1;
    fprintf(stderr, "test_shared_state: %d admitted of 30 in %lld ms across %d instances\n",
            admitted, (long long)elapsed, NLG);
    ck_assert_msg(admitted >= 10 && admitted <= allowed,
                  "%d admitted across %d instances, at most %d allowed", admitted, NLG, allowed);
    for (int i = 0; i < NLG; i++) wait_status(i, units_of(fac), &live, 200);
    char path[160];
    snprintf(path, sizeof(path), "/admin/v1/facilities/%s", fac);
    json_decref(admin_at(0, 200, "PATCH", path, "{\"included\":false}", NULL));
    int64_t t1 = itest_mono_ms();
    for (int i = 1; i < NLG; i++) wait_status(i, units_of(fac), &live, 404);
    fprintf(stderr, "test_shared_state: the exclusion refused by the others after %lld ms\n",
            (long long)(itest_mono_ms() - t1));
}
END_TEST

/* ---- catching up on the events stream (no Sentinel needed) ---- */

static void setup_plain(void)
{
    struct itest_opts o = {0};
    itest_start(&o);
    itest_account(account, NULL);
    itest_key(live.key, live.secret, account, NULL);
}

static int log_has(const char *text)
{
    char *log = itest_lg_log(0);
    int n = 0;
    for (const char *p = log; (p = strstr(p, text)) != NULL; p++) n++;
    free(log);
    return n;
}

static void ok(redisContext *c, const char *cmd)
{
    redisReply *r = itest_redis_cmd(c, cmd);
    ck_assert_msg(r->type != REDIS_REPLY_ERROR, "%s: %s", cmd, r->str);
    freeReplyObject(r);
}

static long long numsub(redisContext *c)
{
    redisReply *r = itest_redis_cmd(c, "PUBSUB NUMSUB lg:events");
    long long n = r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? r->element[1]->integer : -1;
    freeReplyObject(r);
    return n;
}

/* The subscription is refused (an ACL change) while events are written:
 * once it is back, the worker reads them from the stream after the last one
 * it applied; when that one is gone from the stream, it says so and flushes
 * everything. */
START_TEST(test_catch_up)
{
    redisContext *c = itest_redis();
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    while (numsub(c) != 1) {
        ck_assert_msg(itest_mono_ms() < end, "lockgate never subscribed");
        itest_sleep_ms(10);
    }
    itest_key(gone.key, gone.secret, account, NULL); /* an event it applies */
    const char *missed = "2 event(s) after ";
    const char *lost = "is no longer in the stream";
    for (int round = 0; round < 2; round++) {
        ok(c, "ACL SETUSER default -subscribe");
        ok(c, "CLIENT KILL TYPE pubsub");
        end = itest_mono_ms() + IT->timeout_ms;
        while (numsub(c) != 0 || log_has("NOPERM") <= round) {
            ck_assert_msg(itest_mono_ms() < end, "the subscription was not refused");
            itest_sleep_ms(10);
        }
        if (round == 0) { /* two writes nobody hears */
            char path[160];
            snprintf(path, sizeof(path), "/admin/v1/keys/%s/disable", gone.key);
            json_decref(admin_at(0, 200, "POST", path, NULL, NULL));
            snprintf(path, sizeof(path), "/admin/v1/keys/%s/enable", gone.key);
            json_decref(admin_at(0, 200, "POST", path, NULL, NULL));
        } else { /* the stream loses what the worker applied last */
            ok(c, "XTRIM lg:events MAXLEN 0");
            char path[160];
            snprintf(path, sizeof(path), "/admin/v1/keys/%s/disable", gone.key);
            json_decref(admin_at(0, 200, "POST", path, NULL, NULL));
        }
        ok(c, "ACL SETUSER default +subscribe");
        end = itest_mono_ms() + IT->timeout_ms;
        while (log_has(round == 0 ? missed : lost) == 0) {
            ck_assert_msg(itest_mono_ms() < end, "round %d: no \"%s\" in the log", round,
                          round == 0 ? missed : lost);
            itest_sleep_ms(20);
        }
    }
    redisFree(c);
}
END_TEST

int main(void)
{
    const struct itest_case cases[] = {
        {"failover", setup_wait, test_failover},
        {"wait_replicas", setup_wait, test_wait_replicas},
        {"shared_state", setup, test_shared_state},
        {"catch_up", setup_plain, test_catch_up},
    };
    return itest_run_cases("sentinel", cases, sizeof(cases) / sizeof(cases[0]), teardown);
}
