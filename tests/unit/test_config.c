/* Unit tests for config.c: defaults, a full file, every error path with its
 * FILE:LINE message, comments, path resolution, cross-checks, and the
 * shipped config/lockgate.conf. */
#include <check.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lockgate/config.h"

#include "check_run.h"

static char tmpdir[PATH_MAX];
static char path[PATH_MAX + 64];
static char err[1024];

static void tmp_setup(void)
{
    char *real;

    snprintf(tmpdir, sizeof(tmpdir), "/tmp/lg-test-config-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    /* Path options are compared against the resolved folder. */
    real = realpath(tmpdir, NULL);
    ck_assert_ptr_nonnull(real);
    snprintf(tmpdir, sizeof(tmpdir), "%s", real);
    free(real);
    snprintf(path, sizeof(path), "%s/test.conf", tmpdir);
}

static void tmp_teardown(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char p[PATH_MAX + 300];

    if (d == NULL) return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(p, sizeof(p), "%s/%s", tmpdir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(tmpdir);
}

static void write_conf(const char *text)
{
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fputs(text, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
}

/* Loads TEXT and returns the result; ERR holds the message. */
static int load(struct lg_config *cfg, const char *text)
{
    write_conf(text);
    err[0] = '\0';
    return lg_config_load(cfg, path, err, sizeof(err));
}

/* Asserts that TEXT is refused with exactly "PATH:LINE: REASON". */
static void expect_error(const char *text, int line, const char *reason)
{
    struct lg_config cfg;
    char want[PATH_MAX + 2048];

    lg_config_defaults(&cfg);
    ck_assert_msg(load(&cfg, text) == -1, "accepted: %s", text);
    snprintf(want, sizeof(want), "%s:%d: %s", path, line, reason);
    ck_assert_str_eq(err, want);
}

static void expect_ok(struct lg_config *cfg, const char *text)
{
    lg_config_defaults(cfg);
    ck_assert_msg(load(cfg, text) == 0, "refused: %s -> %s", text, err);
}

START_TEST(test_defaults)
{
    struct lg_config c;

    lg_config_defaults(&c);
    ck_assert_str_eq(c.listen, "127.0.0.1:8080");
    ck_assert_str_eq(c.listen_tls, "");
    ck_assert_int_eq(c.workers, 1);
    ck_assert_int_eq(c.max_header_bytes, 8192);
    ck_assert_int_eq(c.client_timeout_s, 30);
    ck_assert_str_eq(c.access_log, "off");
    ck_assert_str_eq(c.log_level, "info");
    ck_assert_str_eq(c.tls_cert, "var/tls/cert.pem");
    ck_assert_str_eq(c.tls_key, "var/tls/key.pem");
    ck_assert_str_eq(c.admin_listen, "127.0.0.1:9090");
    ck_assert_str_eq(c.admin_token_file, "var/admin.token");
    ck_assert_str_eq(c.redis_host, "127.0.0.1");
    ck_assert_int_eq(c.redis_port, 6379);
    ck_assert_str_eq(c.redis_prefix, "lg:");
    ck_assert_int_eq(c.redis_timeout_ms, 50);
    ck_assert_int_eq(c.events_maxlen, 100000);
    ck_assert_int_eq(c.audit_maxlen, 1000000);
    ck_assert_str_eq(c.upstream_url, "http://127.0.0.1:8081");
    ck_assert_int_eq(c.upstream_timeout_ms, 2000);
    ck_assert_int_eq(c.upstream_connect_timeout_ms, 500);
    ck_assert_int_eq(c.upstream_max_connections, 256);
    ck_assert_str_eq(c.upstream_ca_file, "");
    ck_assert_str_eq(c.pepper_file, "var/pepper");
    ck_assert_str_eq(c.master_key_file, "var/master.key");
    ck_assert_int_eq(c.rate_per_sec, 20);
    ck_assert_int_eq(c.burst, 40);
    ck_assert_int_eq(c.auth_failures_per_min, 30);
    ck_assert_int_eq(c.feed_heartbeat_s, 15);
    ck_assert_int_eq(c.feed_max_backlog_kib, 256);
    ck_assert_int_eq(c.feed_max_streams_per_key, 8);
    ck_assert_str_eq(c.dir, "");
    ck_assert_int_eq(lg_config_check(&c, err, sizeof(err)), 0);
}
END_TEST

START_TEST(test_empty_file_gives_defaults)
{
    struct lg_config c;
    char want[PATH_MAX + 64];

    expect_ok(&c, "");
    ck_assert_str_eq(c.dir, tmpdir);
    ck_assert_str_eq(c.listen, "127.0.0.1:8080");
    ck_assert_int_eq(c.burst, 40);
    /* Default relative paths resolve against the file's folder too. */
    snprintf(want, sizeof(want), "%s/var/pepper", tmpdir);
    ck_assert_str_eq(c.pepper_file, want);
}
END_TEST

START_TEST(test_full_file)
{
    struct lg_config c;
    char want[PATH_MAX + 64];

    expect_ok(&c, "[server]\n"
                  "listen = 0.0.0.0:80\n"
                  "listen_tls = [::1]:8443\n"
                  "workers = 3\n"
                  "max_header_bytes = 16384\n"
                  "client_timeout_s = 10\n"
                  "access_log = on\n"
                  "log_level = debug\n"
                  "[tls]\n"
                  "cert = /etc/lockgate/cert.pem\n"
                  "key = tls/key.pem\n"
                  "[admin]\n"
                  "listen = localhost:9191\n"
                  "token_file = admin.token\n"
                  "[redis]\n"
                  "host = redis.internal\n"
                  "port = 6380\n"
                  "prefix = lgx_1-:\n"
                  "timeout_ms = 75\n"
                  "events_maxlen = 5000\n"
                  "audit_maxlen = 7000\n"
                  "[upstream]\n"
                  "url = http://a.example:81/base ,  https://b.example\n"
                  "timeout_ms = 3000\n"
                  "connect_timeout_ms = 250\n"
                  "max_connections = 64\n"
                  "ca_file = tls/upstream-ca.pem\n"
                  "[secrets]\n"
                  "pepper_file = p\n"
                  "master_key_file = /abs/master.key\n"
                  "[limits]\n"
                  "rate_per_sec = 5\n"
                  "burst = 1\n"
                  "auth_failures_per_min = 9\n"
                  "[feed]\n"
                  "heartbeat_s = 7\n"
                  "max_backlog_kib = 1024\n"
                  "max_streams_per_key = 3\n");
    ck_assert_str_eq(c.listen, "0.0.0.0:80");
    ck_assert_str_eq(c.listen_tls, "[::1]:8443");
    ck_assert_int_eq(c.workers, 3);
    ck_assert_int_eq(c.max_header_bytes, 16384);
    ck_assert_int_eq(c.client_timeout_s, 10);
    ck_assert_str_eq(c.access_log, "on");
    ck_assert_str_eq(c.log_level, "debug");
    ck_assert_str_eq(c.tls_cert, "/etc/lockgate/cert.pem");
    snprintf(want, sizeof(want), "%s/tls/key.pem", tmpdir);
    ck_assert_str_eq(c.tls_key, want);
    ck_assert_str_eq(c.admin_listen, "localhost:9191");
    snprintf(want, sizeof(want), "%s/admin.token", tmpdir);
    ck_assert_str_eq(c.admin_token_file, want);
    ck_assert_str_eq(c.redis_host, "redis.internal");
    ck_assert_int_eq(c.redis_port, 6380);
    ck_assert_str_eq(c.redis_prefix, "lgx_1-:");
    ck_assert_int_eq(c.redis_timeout_ms, 75);
    ck_assert_int_eq(c.events_maxlen, 5000);
    ck_assert_int_eq(c.audit_maxlen, 7000);
    /* Spaces around the commas are dropped: consumers split on ','. */
    ck_assert_str_eq(c.upstream_url, "http://a.example:81/base,https://b.example");
    ck_assert_int_eq(c.upstream_timeout_ms, 3000);
    ck_assert_int_eq(c.upstream_connect_timeout_ms, 250);
    ck_assert_int_eq(c.upstream_max_connections, 64);
    snprintf(want, sizeof(want), "%s/tls/upstream-ca.pem", tmpdir);
    ck_assert_str_eq(c.upstream_ca_file, want);
    snprintf(want, sizeof(want), "%s/p", tmpdir);
    ck_assert_str_eq(c.pepper_file, want);
    ck_assert_str_eq(c.master_key_file, "/abs/master.key");
    ck_assert_int_eq(c.rate_per_sec, 5);
    ck_assert_int_eq(c.burst, 1);
    ck_assert_int_eq(c.auth_failures_per_min, 9);
    ck_assert_int_eq(c.feed_heartbeat_s, 7);
    ck_assert_int_eq(c.feed_max_backlog_kib, 1024);
    ck_assert_int_eq(c.feed_max_streams_per_key, 3);
    ck_assert_str_eq(c.dir, tmpdir);
    ck_assert_int_eq(lg_config_check(&c, err, sizeof(err)), 0);
}
END_TEST

START_TEST(test_unknown_option)
{
    expect_error("[server]\nlisten = 127.0.0.1:1\ncolour = red\n", 3,
                 "unknown option 'colour' in [server]");
    /* Known name, wrong section. */
    expect_error("[redis]\nworkers = 2\n", 2, "unknown option 'workers' in [redis]");
    /* Names are case-sensitive. */
    expect_error("[server]\nWorkers = 2\n", 2, "unknown option 'Workers' in [server]");
    expect_error("workers = 2\n", 1, "option 'workers' outside any section");
}
END_TEST

START_TEST(test_unknown_section)
{
    expect_error("[server]\nworkers = 2\n\n[bogus]\nx = 1\n", 4, "unknown section [bogus]");
    /* Even with no keys in it. */
    expect_error("[server]\n[Server]\n", 2, "unknown section [Server]");
    expect_error("[server] junk\n", 1, "text after the section header");
}
END_TEST

START_TEST(test_bad_int)
{
    expect_error("[redis]\n\ntimeout_ms = abc\n", 3,
                 "bad value 'abc' for timeout_ms: expected an integer from 1 to 60000");
    expect_error("[redis]\ntimeout_ms = 12ms\n", 2,
                 "bad value '12ms' for timeout_ms: expected an integer from 1 to 60000");
    expect_error("[redis]\ntimeout_ms = 1.5\n", 2,
                 "bad value '1.5' for timeout_ms: expected an integer from 1 to 60000");
    expect_error("[redis]\ntimeout_ms = 0x10\n", 2,
                 "bad value '0x10' for timeout_ms: expected an integer from 1 to 60000");
    expect_error("[server]\nworkers = many\n", 2,
                 "bad value 'many' for workers: expected an integer from 1 to 256 or auto");
}
END_TEST

START_TEST(test_int_out_of_range)
{
    struct lg_config c;

    expect_error("[redis]\ntimeout_ms = 60001\n", 2,
                 "bad value '60001' for timeout_ms: expected an integer from 1 to 60000");
    expect_error("[redis]\ntimeout_ms = 0\n", 2,
                 "bad value '0' for timeout_ms: expected an integer from 1 to 60000");
    expect_error("[redis]\ntimeout_ms = -5\n", 2,
                 "bad value '-5' for timeout_ms: expected an integer from 1 to 60000");
    expect_error("[redis]\nport = 99999999999999999999999\n", 2,
                 "bad value '99999999999999999999999' for port: expected an integer from 1 to "
                 "65535");
    expect_error("[limits]\nburst = 0\n", 2,
                 "bad value '0' for burst: expected an integer from 1 to 1000000");
    expect_error("[feed]\nmax_streams_per_key = 0\n", 2,
                 "bad value '0' for max_streams_per_key: expected an integer from 1 to 100000");
    /* The bounds themselves are in range. */
    expect_ok(&c, "[redis]\ntimeout_ms = 60000\nport = 1\n");
    ck_assert_int_eq(c.redis_timeout_ms, 60000);
    ck_assert_int_eq(c.redis_port, 1);
}
END_TEST

START_TEST(test_bad_address)
{
    const char *why = "expected host:port or [ipv6]:port with a port from 1 to 65535";
    const char *bad[] = {"127.0.0.1", ":8080",     "127.0.0.1:0", "127.0.0.1:65536",
                         "host:",     "host:80x",  "::1:8080",    "[::1:8080",
                         "[zz]:80",   "[::1]8080", "a b:80",      "host:-1"};
    char text[256], reason[512];
    struct lg_config c;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "[server]\nlisten = %s\n", bad[i]);
        snprintf(reason, sizeof(reason), "bad value '%s' for listen: %s", bad[i], why);
        expect_error(text, 2, reason);
    }
    expect_error("[admin]\nlisten = nope\n", 2,
                 "bad value 'nope' for listen: expected host:port or [ipv6]:port with a port "
                 "from 1 to 65535");
    /* Empty: allowed for the public listeners only. */
    expect_ok(&c, "[server]\nlisten =\nlisten_tls = 127.0.0.1:8443\n");
    ck_assert_str_eq(c.listen, "");
    expect_ok(&c, "[server]\nlisten_tls = \"\"\n");
    ck_assert_str_eq(c.listen_tls, "");
    expect_error("[admin]\nlisten =\n", 2, "empty value for listen");
    expect_ok(&c, "[server]\nlisten = [::]:65535\n[admin]\nlisten = [::1]:9\n");
    ck_assert_str_eq(c.listen, "[::]:65535");
    expect_error("[redis]\nhost = bad/host\n", 2,
                 "bad value 'bad/host' for host: expected a host name or IP address");
    expect_ok(&c, "[redis]\nhost = ::1\n");
}
END_TEST

START_TEST(test_bad_url)
{
    const char *why = "each comma-separated URL must be http://HOST... or https://HOST...";
    const char *bad[] = {
        "ftp://x",   "127.0.0.1:8081", "http://", "https:///path", "http://a,,http://b",
        "http://a,", "http://a b",     "HTTP://a"};
    char text[256], reason[512];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "[upstream]\nurl = %s\n", bad[i]);
        snprintf(reason, sizeof(reason), "bad value '%s' for url: %s", bad[i], why);
        expect_error(text, 2, reason);
    }
    expect_error("[upstream]\nurl =\n", 2, "empty value for url");
}
END_TEST

START_TEST(test_bad_enum_and_bool)
{
    struct lg_config c;

    expect_error("[server]\nlog_level = loud\n", 2,
                 "bad value 'loud' for log_level: expected one of debug, info, warn, error");
    expect_error("[server]\nlog_level = INFO\n", 2,
                 "bad value 'INFO' for log_level: expected one of debug, info, warn, error");
    expect_error("[server]\naccess_log = maybe\n", 2,
                 "bad value 'maybe' for access_log: expected on or off");
    expect_ok(&c, "[server]\naccess_log = yes\nlog_level = error\n");
    ck_assert_str_eq(c.access_log, "on");
    ck_assert_str_eq(c.log_level, "error");
    expect_ok(&c, "[server]\naccess_log = false\n");
    ck_assert_str_eq(c.access_log, "off");
}
END_TEST

START_TEST(test_bad_prefix)
{
    const char *why = "expected 1 to 32 characters of A-Z a-z 0-9 : _ -";
    char reason[256];

    snprintf(reason, sizeof(reason), "bad value 'lg {x}' for prefix: %s", why);
    expect_error("[redis]\nprefix = lg {x}\n", 2, reason);
    snprintf(reason, sizeof(reason), "bad value '%s' for prefix: %s",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", why);
    expect_error("[redis]\nprefix = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", 2, reason);
    expect_error("[redis]\nprefix =\n", 2, "empty value for prefix");
}
END_TEST

START_TEST(test_missing_file)
{
    struct lg_config c;
    char want[PATH_MAX + 128];

    lg_config_defaults(&c);
    snprintf(path, sizeof(path), "%s/absent.conf", tmpdir);
    ck_assert_int_eq(lg_config_load(&c, path, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", path);
    ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_duplicate_key)
{
    expect_error("[server]\nworkers = 2\n\nworkers = 3\n", 4,
                 "duplicate option 'workers' in [server] (first set on line 2)");
    /* Also across repeated sections. */
    expect_error("[redis]\nport = 1\n[server]\nworkers = 1\n[redis]\nport = 2\n", 6,
                 "duplicate option 'port' in [redis] (first set on line 2)");
}
END_TEST

START_TEST(test_same_name_other_section_is_not_duplicate)
{
    struct lg_config c;

    expect_ok(&c, "[redis]\ntimeout_ms = 10\n[upstream]\ntimeout_ms = 20\n"
                  "[server]\nlisten = 127.0.0.1:1\n[admin]\nlisten = 127.0.0.1:2\n");
    ck_assert_int_eq(c.redis_timeout_ms, 10);
    ck_assert_int_eq(c.upstream_timeout_ms, 20);
    ck_assert_str_eq(c.listen, "127.0.0.1:1");
    ck_assert_str_eq(c.admin_listen, "127.0.0.1:2");
}
END_TEST

START_TEST(test_overlong_value)
{
    char text[6000], reason[128];
    struct lg_config c;
    int n;

    n = snprintf(text, sizeof(text), "[tls]\ncert = /");
    memset(text + n, 'a', 1100);
    snprintf(text + n + 1100, sizeof(text) - (size_t)n - 1100, "\n");
    snprintf(reason, sizeof(reason), "value too long for cert (at most %d characters)",
             LG_PATH_MAX - 1);
    expect_error(text, 2, reason);

    /* Fits on its own, but not once the folder is put in front. */
    n = snprintf(text, sizeof(text), "[tls]\ncert = ");
    memset(text + n, 'a', LG_PATH_MAX - 2);
    snprintf(text + n + LG_PATH_MAX - 2, sizeof(text) - (size_t)n - LG_PATH_MAX + 2, "\n");
    expect_error(text, 2, "value too long for cert once made absolute");

    /* A line past the reader's limit is refused, not silently cut. */
    n = snprintf(text, sizeof(text), "[upstream]\n\nurl = http://");
    memset(text + n, 'a', 5000);
    snprintf(text + n + 5000, sizeof(text) - (size_t)n - 5000, "\n");
    expect_error(text, 3, "line too long (at most 4096 characters)");

    /* A long but legal upstream list is kept whole. */
    n = snprintf(text, sizeof(text), "[upstream]\nurl = ");
    for (int i = 0; i < 60; i++)
        n += snprintf(text + n, sizeof(text) - (size_t)n, "%shttp://upstream-%02d.example:8081",
                      i ? "," : "", i);
    snprintf(text + n, sizeof(text) - (size_t)n, "\n");
    expect_ok(&c, text);
    ck_assert_uint_eq(strlen(c.upstream_url), (size_t)n - strlen("[upstream]\nurl = "));
}
END_TEST

START_TEST(test_empty_values)
{
    expect_error("[tls]\ncert =\n", 2, "empty value for cert");
    expect_error("[redis]\nport =\n", 2, "empty value for port");
    expect_error("[server]\nlog_level = \"\"\n", 2, "empty value for log_level");
}
END_TEST

START_TEST(test_syntax_error)
{
    expect_error("[server]\nworkers 2\n", 2,
                 "syntax error: expected [section], name = value or a comment");
    expect_error("[server\nworkers = 2\n", 1,
                 "syntax error: expected [section], name = value or a comment");
}
END_TEST

START_TEST(test_comments)
{
    struct lg_config c;
    char want[PATH_MAX + 64];

    expect_ok(&c, "# leading comment\n"
                  "; another\n"
                  "[server]\n"
                  "   # indented comment\n"
                  "\t; indented comment\n"
                  "workers = 2\n"
                  "\n"
                  "[tls]\n"
                  "# '#' and ';' inside a value are plain characters\n"
                  "cert = certs/a#b;c.pem\n"
                  "key = /k ; not a comment.pem\n");
    ck_assert_int_eq(c.workers, 2);
    snprintf(want, sizeof(want), "%s/certs/a#b;c.pem", tmpdir);
    ck_assert_str_eq(c.tls_cert, want);
    ck_assert_str_eq(c.tls_key, "/k ; not a comment.pem");
    /* No inline comments: a trailing "; x" is part of the value, hence an error. */
    expect_error("[redis]\nport = 6379 ; default\n", 2,
                 "bad value '6379 ; default' for port: expected an integer from 1 to 65535");
}
END_TEST

START_TEST(test_whitespace_and_crlf)
{
    struct lg_config c;

    expect_ok(&c, "[server]\r\n  workers   =   4  \r\n\tlisten=127.0.0.1:81\r\n");
    ck_assert_int_eq(c.workers, 4);
    ck_assert_str_eq(c.listen, "127.0.0.1:81");
}
END_TEST

START_TEST(test_relative_paths)
{
    struct lg_config c;
    char want[PATH_MAX + 64], cwd[PATH_MAX], rel[PATH_MAX + 64];

    /* Loaded through a relative path to the file, resolved to its real folder. */
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
    write_conf("[secrets]\npepper_file = ../x/pepper\nmaster_key_file = mk\n");
    ck_assert_int_eq(chdir("/"), 0);
    snprintf(rel, sizeof(rel), ".%s/./test.conf", tmpdir);
    lg_config_defaults(&c);
    ck_assert_msg(lg_config_load(&c, rel, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(chdir(cwd), 0);
    ck_assert_str_eq(c.dir, tmpdir);
    snprintf(want, sizeof(want), "%s/../x/pepper", tmpdir);
    ck_assert_str_eq(c.pepper_file, want);
    snprintf(want, sizeof(want), "%s/mk", tmpdir);
    ck_assert_str_eq(c.master_key_file, want);
    snprintf(want, sizeof(want), "%s/var/tls/cert.pem", tmpdir);
    ck_assert_str_eq(c.tls_cert, want);
}
END_TEST

START_TEST(test_workers_auto)
{
    struct lg_config c;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);

    expect_ok(&c, "[server]\nworkers = auto\n");
    ck_assert_int_ge(c.workers, 1);
    ck_assert_int_eq(c.workers, cores < 1 ? 1 : (cores > 256 ? 256 : cores));
}
END_TEST

START_TEST(test_failed_load_keeps_config)
{
    struct lg_config c;

    lg_config_defaults(&c);
    c.workers = 7;
    ck_assert_int_eq(load(&c, "[server]\nworkers = 2\nbogus = 1\n"), -1);
    ck_assert_int_eq(c.workers, 7);
    ck_assert_str_eq(c.dir, "");
}
END_TEST

START_TEST(test_check)
{
    struct lg_config c;

    lg_config_defaults(&c);
    ck_assert_int_eq(lg_config_check(&c, err, sizeof(err)), 0);

    c.listen[0] = '\0';
    ck_assert_int_eq(lg_config_check(&c, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "listen"));
    snprintf(c.listen_tls, sizeof(c.listen_tls), "0.0.0.0:8443");
    ck_assert_int_eq(lg_config_check(&c, err, sizeof(err)), 0);

    lg_config_defaults(&c);
    c.burst = 0;
    ck_assert_int_eq(lg_config_check(&c, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "burst"));

    lg_config_defaults(&c);
    snprintf(c.listen_tls, sizeof(c.listen_tls), "0.0.0.0:8080");
    ck_assert_int_eq(lg_config_check(&c, err, sizeof(err)), -1);

    lg_config_defaults(&c);
    snprintf(c.admin_listen, sizeof(c.admin_listen), "127.0.0.1:8080");
    ck_assert_int_eq(lg_config_check(&c, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "[admin]"));
    /* Same port on another specific host is fine. */
    snprintf(c.admin_listen, sizeof(c.admin_listen), "127.0.0.2:8080");
    ck_assert_int_eq(lg_config_check(&c, err, sizeof(err)), 0);

    lg_config_defaults(&c);
    c.upstream_connect_timeout_ms = c.upstream_timeout_ms + 1;
    ck_assert_int_eq(lg_config_check(&c, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "connect_timeout_ms"));
}
END_TEST

START_TEST(test_shipped_config)
{
    struct lg_config c;
    char want[PATH_MAX + 64];

    /* Unit tests run from the repository root. */
    lg_config_defaults(&c);
    ck_assert_msg(lg_config_load(&c, "config/lockgate.conf", err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(lg_config_check(&c, err, sizeof(err)), 0);
    ck_assert_uint_gt(strlen(c.dir), strlen("/config"));
    ck_assert_str_eq(c.dir + strlen(c.dir) - strlen("/config"), "/config");
    ck_assert_str_eq(c.listen, "127.0.0.1:8080");
    ck_assert_str_eq(c.listen_tls, "127.0.0.1:8443");
    ck_assert_str_eq(c.admin_listen, "127.0.0.1:9090");
    ck_assert_str_eq(c.upstream_url, "http://127.0.0.1:8081");
    snprintf(want, sizeof(want), "%s/../var/pepper", c.dir);
    ck_assert_str_eq(c.pepper_file, want);
    snprintf(want, sizeof(want), "%s/../var/master.key", c.dir);
    ck_assert_str_eq(c.master_key_file, want);
    snprintf(want, sizeof(want), "%s/../var/admin.token", c.dir);
    ck_assert_str_eq(c.admin_token_file, want);
    snprintf(want, sizeof(want), "%s/../var/tls/cert.pem", c.dir);
    ck_assert_str_eq(c.tls_cert, want);
    snprintf(want, sizeof(want), "%s/../var/tls/key.pem", c.dir);
    ck_assert_str_eq(c.tls_key, want);
    /* Every other value matches the built-in defaults. */
    ck_assert_int_eq(c.workers, 1);
    ck_assert_int_eq(c.redis_port, 6379);
    ck_assert_str_eq(c.redis_prefix, "lg:");
    ck_assert_int_eq(c.burst, 40);
    ck_assert_int_eq(c.feed_max_backlog_kib, 256);
    ck_assert_int_eq(c.feed_max_streams_per_key, 8);
}
END_TEST

START_TEST(test_addr_loopback)
{
    const char *yes[] = {"127.0.0.1:9090", "127.1.2.3:1", "[::1]:9090", "localhost:9090"};
    const char *no[] = {"0.0.0.0:9090",     "10.0.0.1:9090", "[::]:9090", "[2001:db8::1]:1",
                        "example.com:9090", "9090",          "[::1",      "",
                        "128.0.0.1:1"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        ck_assert_msg(lg_config_addr_loopback(yes[i]), "%s is loopback", yes[i]);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        ck_assert_msg(!lg_config_addr_loopback(no[i]), "%s is not loopback", no[i]);
}
END_TEST

/* Names of the options lg_config_reload kept, "section.name" joined by spaces. */
static void on_kept(const char *section, const char *name, void *arg)
{
    char *out = arg;
    size_t n = strlen(out);
    snprintf(out + n, 512 - n, "%s%s.%s", n ? " " : "", section, name);
}

START_TEST(test_reload)
{
    struct lg_config run, next;
    char kept[512] = "";
    expect_ok(&run, "[server]\nworkers = 2\n[redis]\nport = 6380\n[limits]\nburst = 10\n");
    snprintf(run.redis_password, sizeof(run.redis_password), "pw");
    expect_ok(&next, "[server]\nworkers = 4\nlog_level = debug\naccess_log = on\n"
                     "[tls]\ncert = new.pem\n[admin]\ntoken_file = tok\n"
                     "[redis]\nport = 6381\nprefix = other:\n"
                     "[upstream]\nurl = http://a:1,http://b:2\ntimeout_ms = 3000\n"
                     "connect_timeout_ms = 700\nmax_connections = 9\n"
                     "[secrets]\npepper_file = p2\n"
                     "[limits]\nburst = 10\nrate_per_sec = 7\nauth_failures_per_min = 3\n");
    ck_assert_int_eq(lg_config_reload(&run, &next, on_kept, kept), 9);
    ck_assert_str_eq(kept, "server.workers redis.port redis.prefix upstream.max_connections "
                           "secrets.pepper_file");
    /* what may change, changed */
    ck_assert_str_eq(run.log_level, "debug");
    ck_assert_str_eq(run.access_log, "on");
    ck_assert_str_eq(run.tls_cert, next.tls_cert);
    ck_assert_str_eq(run.admin_token_file, next.admin_token_file);
    ck_assert_str_eq(run.upstream_url, "http://a:1,http://b:2");
    ck_assert_int_eq(run.upstream_timeout_ms, 3000);
    ck_assert_int_eq(run.upstream_connect_timeout_ms, 700);
    ck_assert_int_eq(run.rate_per_sec, 7);
    ck_assert_int_eq(run.burst, 10);
    ck_assert_int_eq(run.auth_failures_per_min, 3);
    /* what cannot, did not */
    ck_assert_int_eq(run.workers, 2);
    ck_assert_int_eq(run.redis_port, 6380);
    ck_assert_str_eq(run.redis_prefix, "lg:");
    ck_assert_int_eq(run.upstream_max_connections, 256);
    ck_assert_str_ne(run.pepper_file, next.pepper_file);
    ck_assert_str_eq(run.redis_password, "pw"); /* not an option */
    /* the same file again changes nothing and keeps nothing */
    kept[0] = '\0';
    ck_assert_int_eq(lg_config_reload(&run, &run, on_kept, kept), 0);
    ck_assert_str_eq(kept, "");
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_empty_file_gives_defaults);
    tcase_add_test(tc, test_full_file);
    tcase_add_test(tc, test_unknown_option);
    tcase_add_test(tc, test_unknown_section);
    tcase_add_test(tc, test_bad_int);
    tcase_add_test(tc, test_int_out_of_range);
    tcase_add_test(tc, test_bad_address);
    tcase_add_test(tc, test_bad_url);
    tcase_add_test(tc, test_bad_enum_and_bool);
    tcase_add_test(tc, test_bad_prefix);
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_duplicate_key);
    tcase_add_test(tc, test_same_name_other_section_is_not_duplicate);
    tcase_add_test(tc, test_overlong_value);
    tcase_add_test(tc, test_empty_values);
    tcase_add_test(tc, test_syntax_error);
    tcase_add_test(tc, test_comments);
    tcase_add_test(tc, test_whitespace_and_crlf);
    tcase_add_test(tc, test_relative_paths);
    tcase_add_test(tc, test_workers_auto);
    tcase_add_test(tc, test_failed_load_keeps_config);
    tcase_add_test(tc, test_check);
    tcase_add_test(tc, test_shipped_config);
    tcase_add_test(tc, test_addr_loopback);
    tcase_add_test(tc, test_reload);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return check_run(config_suite()) ? EXIT_FAILURE : EXIT_SUCCESS; }
