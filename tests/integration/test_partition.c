/* A network partition (SPEC sections 10 and 12), built with network
 * namespaces: Redis in one, instance A and instance B each in one of their
 * own, a veth pair from each to Redis's. A's link goes down while B's stays:
 * A answers as with Redis down (known keys served, unknown keys 503), B is
 * unaffected, and a key disabled through B during the partition is never
 * served by A once A reaches Redis again. Only addresses inside the
 * namespaces made here are used; the test skips, saying why, only where
 * namespaces cannot be made. */
#include <fcntl.h>
#include <openssl/evp.h>
#include <sched.h>

#include "itest.h"

#define NET     "10.231"
#define NS_PORT 8080 /* inside each namespace; nothing else listens there */
#define NS_ADM  9090

static char ns_r[32], ns_a[32], ns_b[32], veth_a[16], veth_b[16];
static int home_ns = -1; /* the test's own network namespace */
static bool skipped;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    char *const argv[] = {"sh", "-c", cmd, NULL};
    char *err = NULL;
    int rc = itest_run(argv, NULL, NULL, &err);
    if (rc != 0) fprintf(stderr, "test_partition: '%s' failed (%d): %s\n", cmd, rc, err);
    free(err);
    return rc;
}

static void netns_free(void)
{
    sh("ip netns del %s 2>/dev/null; ip netns del %s 2>/dev/null; ip netns del %s 2>/dev/null; "
       "true",
       ns_a, ns_b, ns_r);
}

/* Redis's namespace R with .1 on each link; A is NET.1.2, B is NET.2.2. */
static int netns_make(void)
{
    int p = (int)getpid();
    snprintf(ns_r, sizeof(ns_r), "lgpart-%d-r", p);
    snprintf(ns_a, sizeof(ns_a), "lgpart-%d-a", p);
    snprintf(ns_b, sizeof(ns_b), "lgpart-%d-b", p);
    snprintf(veth_a, sizeof(veth_a), "lgpa%d", p % 100000);
    snprintf(veth_b, sizeof(veth_b), "lgpb%d", p % 100000);
    if (sh("ip netns add %s && ip netns add %s && ip netns add %s", ns_r, ns_a, ns_b) != 0)
        return -1;
    const char *ns[] = {ns_r, ns_a, ns_b};
    for (int i = 0; i < 3; i++)
        if (sh("ip -n %s link set lo up", ns[i]) != 0) return -1;
    const struct {
        const char *ns, *veth;
        int net;
    } links[] = {{ns_a, veth_a, 1}, {ns_b, veth_b, 2}};
    for (int i = 0; i < 2; i++) {
        const char *v = links[i].veth, *n = links[i].ns;
        int k = links[i].net;
        if (sh("ip -n %s link add %sr type veth peer name %s netns %s", ns_r, v, v, n) != 0 ||
            sh("ip -n %s addr add " NET ".%d.1/30 dev %sr && ip -n %s link set %sr up", ns_r, k, v,
               ns_r, v) != 0 ||
            sh("ip -n %s addr add " NET ".%d.2/30 dev %s && ip -n %s link set %s up", n, k, v, n,
               v) != 0)
            return -1;
    }
    return 0;
}

static void setup(void)
{
    skipped = false;
    struct itest_opts o = {0};
    o.no_upstream = 1;
    itest_start(&o); /* secrets and token, shared by A and B */
    home_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home_ns < 0 || netns_make() < 0) {
        netns_free();
        skipped = true;
        return;
    }
    /* Redis in R; A and B in theirs */
    char *log = strdup(itest_path("redis-r.log"));
    char *const rargv[] = {"ip",
                           "netns",
                           "exec",
                           ns_r,
                           "redis-server",
                           "--port",
                           "6379",
                           "--bind",
                           "0.0.0.0",
                           "--protected-mode",
                           "no",
                           "--save",
                           "",
                           "--appendonly",
                           "no",
                           "--dir",
                           IT->dir,
                           "--logfile",
                           log,
                           NULL};
    itest_spawn(rargv, NULL, NULL, NULL, ITEST_SPAWN_RECORD | ITEST_SPAWN_PDEATH);
    free(log);
    const char *ns[] = {ns_a, ns_b};
    for (int i = 0; i < 2; i++) {
        struct itest_lg lg = {0};
        lg.port = NS_PORT;
        lg.admin_port = NS_ADM;
        struct itest_opts lo = {0};
        lo.no_upstream = 1;
        char host[32];
        snprintf(host, sizeof(host), NET ".%d.1", i + 1);
        lo.redis_host = host;
        lo.redis_port = 6379;
        lo.redis_timeout_ms = itest_scaled_ms(100);
        lo.auth_failures_per_min = 1000000;
        char conf[PATH_MAX], out[PATH_MAX], err[PATH_MAX];
        snprintf(conf, sizeof(conf), "%s/ns-%d.conf", IT->dir, i);
        snprintf(out, sizeof(out), "%s/ns-%d.out", IT->dir, i);
        snprintf(err, sizeof(err), "%s/ns-%d.log", IT->dir, i);
        if (itest_config_write(conf, &lo, &lg) < 0) itest_fail("config");
        char bin[PATH_MAX];
        snprintf(bin, sizeof(bin), "%s/lockgate", IT->build);
        char *const argv[] = {"ip", "netns", "exec", (char *)ns[i], bin, "-c", conf, NULL};
        itest_spawn(argv, out, err, NULL, ITEST_SPAWN_RECORD | ITEST_SPAWN_PDEATH);
    }
}

static void teardown(void)
{
    itest_stop(); /* kills what ran in the namespaces too */
    if (!skipped) netns_free();
    if (home_ns >= 0) close(home_ns);
    home_ns = -1;
}

/* ---- requests inside a namespace ---- */

static void enter(const char *ns)
{
    char path[128];
    snprintf(path, sizeof(path), "/run/netns/%s", ns);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ck_assert_msg(fd >= 0 && setns(fd, CLONE_NEWNET) == 0, "setns %s: %s", ns, strerror(errno));
    close(fd);
}

static void leave(void) { ck_assert_int_eq(setns(home_ns, CLONE_NEWNET), 0); }

struct cred {
    char key[64], secret[64];
};

static long get_in(const char *ns, const struct cred *k, char code[64])
{
    char url[128], plain[160], auth[256];
    unsigned char b64[220];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/facilities", NS_PORT);
    int n = snprintf(plain, sizeof(plain), "%s:%s", k->key, k->secret);
    EVP_EncodeBlock(b64, (const unsigned char *)plain, n);
    snprintf(auth, sizeof(auth), "Authorization: Basic %s", (char *)b64);
    const char *headers[] = {auth, NULL};
    struct itest_resp r;
    enter(ns);
    itest_http("GET", url, headers, NULL, 0, NULL, &r);
    leave();
    json_t *doc = json_loads(r.body, 0, NULL);
    snprintf(code, 64, "%s", itest_json_str(json_object_get(doc, "error"), "code"));
    json_decref(doc);
    long st = r.status;
    itest_resp_free(&r);
    return st;
}

static json_t *admin_in(const char *ns, long want, const char *method, const char *path,
                        const char *body)
{
    char url[256], auth[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", NS_ADM, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", IT->token);
    const char *headers[] = {auth, "Content-Type: application/json", NULL};
    struct itest_resp r;
    enter(ns);
    itest_http(method, url, headers, body, body ? strlen(body) : 0, NULL, &r);
    leave();
    ck_assert_msg(r.status == want, "%s %s in %s -> %ld %s", method, path, ns, r.status, r.body);
    json_t *j = json_loads(r.body, 0, NULL);
    itest_resp_free(&r);
    return j;
}

static void new_key(const char *account, struct cred *k)
{
    char path[128];
    snprintf(path, sizeof(path), "/admin/v1/accounts/%s/keys", account);
    json_t *j = admin_in(ns_b, 201, "POST", path, "{\"name\":\"k\",\"all_facilities\":true}");
    snprintf(k->key, sizeof(k->key), "%s", itest_json_str(j, "key_id"));
    snprintf(k->secret, sizeof(k->secret), "%s", itest_json_str(j, "secret"));
    json_decref(j);
}

/* Waits until instance NS answers K with WANT. */
static void wait_in(const char *ns, const struct cred *k, long want, const char *what)
{
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    char code[64];
    long st;
    while ((st = get_in(ns, k, code)) != want) {
        ck_assert_msg(itest_mono_ms() < end, "%s: %s answered %ld %s, expected %ld", what, ns, st,
                      code, want);
        itest_sleep_ms(20);
    }
}

START_TEST(test_partition)
{
    if (skipped) {
        printf("test_partition: SKIPPED: network namespaces cannot be made here (ip netns add "
               "failed; root and iproute2 are needed)\n");
        fflush(stdout);
        return;
    }
    /* both instances up on Redis (the admin API of B answers once it is) */
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    json_t *j = NULL;
    while (1) {
        char url[128];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/readyz", NS_ADM);
        struct itest_resp r;
        int ready = 0;
        for (int i = 0; i < 2; i++) {
            enter(i ? ns_b : ns_a);
            itest_http("GET", url, NULL, NULL, 0, NULL, &r);
            leave();
            ready += r.status == 200;
            itest_resp_free(&r);
        }
        if (ready == 2) break;
        ck_assert_msg(itest_mono_ms() < end, "the instances in the namespaces did not get ready");
        itest_sleep_ms(50);
    }
    j = admin_in(ns_b, 201, "POST", "/admin/v1/accounts", "{\"name\":\"Partitioned\"}");
    char account[64];
    snprintf(account, sizeof(account), "%s", itest_json_str(j, "account_id"));
    json_decref(j);
    struct cred known, revoked, unknown;
    new_key(account, &known);
    new_key(account, &revoked);
    new_key(account, &unknown);
    wait_in(ns_a, &known, 200, "before the partition");
    wait_in(ns_a, &revoked, 200, "before the partition");
    wait_in(ns_b, &known, 200, "before the partition");

    ck_assert_int_eq(sh("ip -n %s link set %s down", ns_a, veth_a), 0);
    /* A: Redis is gone; an unknown key is 503, a known one still served */
    wait_in(ns_a, &unknown, 503, "cut off");
    char code[64];
    ck_assert_int_eq(get_in(ns_a, &unknown, code), 503);
    ck_assert_str_eq(code, "store_unavailable");
    ck_assert_int_eq(get_in(ns_a, &known, code), 200);
    /* B: unaffected; a disable through it is refused by it at once */
    char path[128];
    snprintf(path, sizeof(path), "/admin/v1/keys/%s/disable", revoked.key);
    json_decref(admin_in(ns_b, 200, "POST", path, NULL));
    wait_in(ns_b, &revoked, 403, "B during the partition");
    ck_assert_int_eq(get_in(ns_b, &known, code), 200);
    ck_assert_int_eq(get_in(ns_b, &unknown, code), 200);
    int served_cut = get_in(ns_a, &revoked, code) == 200;

    ck_assert_int_eq(sh("ip -n %s link set %s up", ns_a, veth_a), 0);
    /* Until A reaches Redis again it may answer from what it verified; from
     * the first answer that needed Redis on, the disabled key is refused. */
    int64_t t_heal = itest_mono_ms();
    wait_in(ns_a, &unknown, 200, "after the partition");
    int64_t t_back = itest_mono_ms();
    for (int n = 0; n < 50; n++) {
        long st = get_in(ns_a, &revoked, code);
        ck_assert_msg(st == 403 && strcmp(code, "key_disabled") == 0,
                      "A served a key disabled during the partition after reconnecting: %ld %s", st,
                      code);
    }
    ck_assert_int_eq(get_in(ns_a, &known, code), 200);
    fprintf(stderr,
            "test_partition: A served the disabled key while cut off: %s; reached Redis %lld ms "
            "after the link came back\n",
            served_cut ? "yes (SPEC section 10)" : "no", (long long)(t_back - t_heal));
}
END_TEST

int main(void)
{
    const struct itest_case cases[] = {{"partition", setup, test_partition}};
    return itest_run_cases("partition", cases, 1, teardown);
}
