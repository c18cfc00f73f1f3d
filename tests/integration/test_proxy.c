/* PROXY protocol on the public listeners (SPEC sections 3 and 12), behind a
 * real haproxy with send-proxy (v1) and send-proxy-v2, plain and TLS: the
 * address the header carries is the client's for the key's allowlist and
 * X-Forwarded-For; a connection without a header, or with a malformed one,
 * is closed; with the option off, a PROXY header is a 400. */
#include <openssl/evp.h>

#include "itest.h"
#include "raw.h"

static int hp_v1, hp_v2, hp_v2tls;
static char account[64], fac[72];
static char key[64], secret[64];

static void setup(void)
{
    struct itest_opts o = {0};
    o.tls = 1;
    o.auth_failures_per_min = 10;
    o.extra = "[server]\nproxy_protocol = on\n";
    itest_start(&o);
    int ports[3];
    itest_free_ports(ports, 3);
    hp_v1 = ports[0];
    hp_v2 = ports[1];
    hp_v2tls = ports[2];
    char text[1024];
    snprintf(text, sizeof(text),
             "global\n  maxconn 200\ndefaults\n  mode tcp\n  timeout connect 2s\n"
             "  timeout client 10s\n  timeout server 10s\n"
             "listen v1\n  bind 127.0.0.1:%d\n  server lg 127.0.0.1:%d send-proxy\n"
             "listen v2\n  bind 127.0.0.1:%d\n  server lg 127.0.0.1:%d send-proxy-v2\n"
             "listen v2tls\n  bind 127.0.0.1:%d\n  server lg 127.0.0.1:%d send-proxy-v2\n",
             hp_v1, IT->lg[0].port, hp_v2, IT->lg[0].port, hp_v2tls, IT->lg[0].tls_port);
    char cfg[PATH_MAX];
    snprintf(cfg, sizeof(cfg), "%s", itest_path("haproxy.cfg"));
    if (itest_file_write(cfg, text) < 0) itest_fail("cannot write %s", cfg);
    char *const argv[] = {"haproxy", "-db", "-f", cfg, NULL};
    itest_spawn(argv, itest_path("haproxy.out"), itest_path("haproxy.log"), NULL,
                ITEST_SPAWN_RECORD | ITEST_SPAWN_PDEATH);
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    for (int i = 0; i < 3; i++) {
        struct raw_conn c;
        char err[128];
        while (raw_connect(&c, ports[i], NULL, NULL, err, sizeof(err)) < 0) {
            if (itest_mono_ms() > end) itest_fail("haproxy did not listen on %d", ports[i]);
            itest_sleep_ms(20);
        }
        raw_close(&c);
    }
    itest_account(account, NULL);
    itest_facility(fac, account, NULL, NULL);
    itest_key(key, secret, account, "\"allowed_cidrs\":[\"127.0.0.2/32\"]");
}

static void teardown(void) { itest_stop(); }

/* One GET of PATH with the key, to PORT from SRC (TLS when TLS): the status
 * (0 when the connection closed without an answer), the body into BODY. */
static int get_via(int port, const char *src, bool tls, const char *path, char *body, size_t cap)
{
    char plain[160], req[1024];
    unsigned char b64[220];
    int n = snprintf(plain, sizeof(plain), "%s:%s", key, secret);
    EVP_EncodeBlock(b64, (const unsigned char *)plain, n);
    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic %s\r\n"
                 "Connection: close\r\n\r\n",
                 path, (char *)b64);
    struct raw_conn c;
    char err[256];
    ck_assert_msg(raw_connect(&c, port, tls ? IT->cert : NULL, src, err, sizeof(err)) == 0,
                  "connect to %d from %s: %s", port, src, err);
    raw_send(&c, req, (size_t)n);
    struct raw_buf b = {0};
    int state = raw_read_for(&c, &b, IT->timeout_ms, 1);
    raw_close(&c);
    struct raw_answer a[1];
    int got = raw_parse(b.data ? b.data : "", b.len, state != RAW_OPEN, a, 1);
    int status = got == 1 ? a[0].status : 0;
    if (body != NULL) snprintf(body, cap, "%s", got == 1 && a[0].body ? a[0].body : "");
    if (got > 0) raw_answers_free(a, got);
    raw_buf_free(&b);
    return status;
}

START_TEST(test_behind_haproxy)
{
    char body[4096], units[160];
    snprintf(units, sizeof(units), "/v1/facilities/%s/units", fac);
    const struct {
        int port;
        bool tls;
        const char *what;
    } via[] = {{hp_v1, false, "send-proxy"},
               {hp_v2, false, "send-proxy-v2"},
               {hp_v2tls, true, "send-proxy-v2, TLS"}};
    for (size_t i = 0; i < sizeof(via) / sizeof(via[0]); i++) {
        int st = get_via(via[i].port, "127.0.0.2", via[i].tls, units, body, sizeof(body));
        ck_assert_msg(st == 200, "%s: the allowlisted client got %d %s", via[i].what, st, body);
        st = get_via(via[i].port, "127.0.0.3", via[i].tls, units, body, sizeof(body));
        ck_assert_msg(st == 403 && strstr(body, "ip_not_allowed") != NULL,
                      "%s: a client outside the allowlist got %d %s", via[i].what, st, body);
    }
    /* the upstream saw the client's address in X-Forwarded-For */
    char *rec = itest_file_read(IT->upstream_record);
    ck_assert_msg(strstr(rec, "127.0.0.2") != NULL, "X-Forwarded-For without the client: %.2000s",
                  rec);
    free(rec);
}
END_TEST

/* Connects straight to lockgate, sends DATA, and expects the connection to
 * end without a byte of answer. */
static void expect_closed(const char *data, size_t len, const char *what)
{
    struct raw_conn c;
    char err[256];
    ck_assert_int_eq(raw_connect(&c, IT->lg[0].port, NULL, NULL, err, sizeof(err)), 0);
    raw_send(&c, data, len);
    struct raw_buf b = {0};
    int state = raw_read_for(&c, &b, IT->timeout_ms, 0);
    raw_close(&c);
    ck_assert_msg(state != RAW_OPEN && b.len == 0, "%s: %s, %zu bytes answered", what,
                  state == RAW_OPEN ? "still open" : "closed", b.len);
    raw_buf_free(&b);
}

START_TEST(test_header_required)
{
    static const char plain[] = "GET /v1/facilities HTTP/1.1\r\nHost: x\r\n\r\n";
    expect_closed(plain, sizeof(plain) - 1, "no PROXY header");
    static const char bad1[] = "PROXY TCP4 127.0.0.2 127.0.0.1 1 2 3\r\nGET / HTTP/1.1\r\n\r\n";
    expect_closed(bad1, sizeof(bad1) - 1, "a malformed v1 header");
    static const char bad2[] = "\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x02xx";
    expect_closed(bad2, sizeof(bad2) - 1, "a v2 header too short for its addresses");
    /* TLS without the header: the ClientHello is not a header */
    struct raw_conn c;
    char err[256];
    ck_assert_msg(raw_connect(&c, IT->lg[0].tls_port, IT->cert, NULL, err, sizeof(err)) < 0,
                  "a TLS handshake without a PROXY header succeeded");
    /* a header that never completes is closed within header_timeout_s: not
     * waited for here; the instance still serves through haproxy */
    ck_assert_int_eq(get_via(hp_v2, "127.0.0.2", false, "/v1/facilities", NULL, 0), 200);
}
END_TEST

/* lockgate's CPU time so far, in clock ticks. */
static long cpu_ticks(pid_t pid)
{
    char path[64], text[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    const char *p = strrchr(text, ')'); /* fields 14 and 15 after the name */
    long ut = 0, st = 0;
    ck_assert_msg(p != NULL && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld",
                                      &ut, &st) == 2,
                  "cannot read %s", path);
    return ut + st;
}

/* A header that arrives in pieces is put together (the client's address is
 * the one it carries), and while it is incomplete the worker waits for the
 * rest instead of turning on the same bytes again. */
START_TEST(test_header_in_pieces)
{
    struct raw_conn c;
    char err[256];
    ck_assert_int_eq(raw_connect(&c, IT->lg[0].port, NULL, NULL, err, sizeof(err)), 0);
    raw_send(&c, "PROXY TCP4 127.0.0.2 ", 21);
    long before = cpu_ticks(IT->lg[0].pid);
    itest_sleep_ms(1000);
    long used = cpu_ticks(IT->lg[0].pid) - before;
    long hz = sysconf(_SC_CLK_TCK);
    ck_assert_msg(used * 2 < hz, "lockgate used %ld of %ld ticks in a second on half a header",
                  used, hz);
    char plain[160], req[1024];
    unsigned char b64[220];
    int n = snprintf(plain, sizeof(plain), "%s:%s", key, secret);
    EVP_EncodeBlock(b64, (const unsigned char *)plain, n);
    n = snprintf(req, sizeof(req),
                 "127.0.0.1 5000 80\r\nGET /v1/facilities HTTP/1.1\r\nHost: localhost\r\n"
                 "Authorization: Basic %s\r\nConnection: close\r\n\r\n",
                 (char *)b64);
    raw_send(&c, req, (size_t)n);
    struct raw_buf b = {0};
    int state = raw_read_for(&c, &b, IT->timeout_ms, 1);
    raw_close(&c);
    struct raw_answer a[1];
    int got = raw_parse(b.data ? b.data : "", b.len, state != RAW_OPEN, a, 1);
    ck_assert_msg(got == 1 && a[0].status == 200, "a header in two pieces: %.80s",
                  b.data ? b.data : "(nothing)");
    raw_answers_free(a, got);
    raw_buf_free(&b);
}
END_TEST

/* Bad requests from one client behind haproxy throttle that client, not
 * the others (without the header they would all be haproxy's address). */
START_TEST(test_throttle_per_client)
{
    char body[4096];
    int throttled = 0;
    for (int n = 0; n < 20 && !throttled; n++) {
        int st = get_via(hp_v2, "127.0.0.4", false, "/v1/facilities", body, sizeof(body));
        ck_assert_msg(st == 403 || st == 429, "a client outside the allowlist got %d", st);
        throttled = st == 429;
    }
    ck_assert_msg(throttled, "20 refusals from one client were never throttled");
    ck_assert_int_eq(get_via(hp_v2, "127.0.0.2", false, "/v1/facilities", body, sizeof(body)), 200);
    ck_assert_int_eq(get_via(hp_v1, "127.0.0.2", false, "/v1/facilities", body, sizeof(body)), 200);
}
END_TEST

START_TEST(test_option_off)
{
    struct itest_opts o = {0};
    int i = itest_lg_start(&o);
    static const char req[] = "PROXY TCP4 127.0.0.2 127.0.0.1 1111 80\r\n"
                              "GET /v1/facilities HTTP/1.1\r\nHost: x\r\n\r\n";
    struct raw_conn c;
    char err[256];
    ck_assert_int_eq(raw_connect(&c, IT->lg[i].port, NULL, NULL, err, sizeof(err)), 0);
    raw_send(&c, req, sizeof(req) - 1);
    struct raw_buf b = {0};
    raw_read_for(&c, &b, IT->timeout_ms, 1);
    raw_close(&c);
    ck_assert_msg(b.len >= 12 && strncmp(b.data, "HTTP/1.1 400", 12) == 0,
                  "with the option off, a PROXY header got: %.200s", b.data ? b.data : "");
    raw_buf_free(&b);
    itest_lg_stop(i);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("proxy");
    TCase *tc = tcase_create("proxy");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, test_behind_haproxy);
    tcase_add_test(tc, test_header_required);
    tcase_add_test(tc, test_header_in_pieces);
    tcase_add_test(tc, test_throttle_per_client);
    tcase_add_test(tc, test_option_off);
    suite_add_tcase(s, tc);
    return itest_exit_status(check_run(s));
}
