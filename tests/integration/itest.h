/* itest.h: the integration test harness (header-only). It runs the real
 * binaries against a real redis-server and the test upstream, each in a temp
 * folder of its own, and gives tests HTTP, admin API, CLI and Redis access.
 *
 * Use it with Check in fork mode, everything started by an UNCHECKED fixture
 * (in the runner process, once per TCase) and stopped by its teardown, so a
 * test that crashes or times out in its forked child leaks nothing:
 *
 *     static void setup(void)
 *     {
 *         struct itest_opts o = {0};  // all zero = defaults
 *         o.no_upstream = 1;          // e.g. no test upstream needed
 *         itest_start(&o);
 *     }
 *     static void teardown(void) { itest_stop(); }
 *     ...
 *     tcase_add_unchecked_fixture(tc, setup, teardown);
 *     tcase_set_timeout(tc, 120);
 *     srunner_set_fork_status(sr, CK_FORK);
 *     srunner_run_all(sr, CK_NORMAL);
 *     return itest_exit_status(srunner_ntests_failed(sr));
 *
 * A test that breaks shared state (stops Redis, stops an instance) should
 * sit in a TCase of its own, as the next tests of its TCase see what it left.
 *
 * Binaries come from $LG_BUILD (default "build", relative to the current
 * folder, i.e. the repository root): $LG_BUILD/lockgate, $LG_BUILD/lockgate-admin,
 * $LG_BUILD/tests/integration/upstream_server, so a sanitizer build tests its
 * own binaries. redis-server comes from $ITEST_REDIS_SERVER or the PATH.
 * Every wait is bounded by $ITEST_TIMEOUT_S seconds (default 10) times
 * $ITEST_SLOW_FACTOR (default 1) and fails the test with a clear message.
 * $ITEST_KEEP=1 keeps the temp folder.
 *
 * $ITEST_LG_WRAPPER, words separated by blanks, is put before every lockgate
 * command line the harness runs (instances and itest_lg_run; not Redis, the
 * upstream or the CLI), e.g. "valgrind --error-exitcode=99 --log-file=DIR/%p.log".
 * Such a wrapper is slow: give $ITEST_SLOW_FACTOR with it. When lockgate ends,
 * its exit status equal to the wrapper's --error-exitcode=N, or a nonzero
 * "ERROR SUMMARY: N errors" in the wrapper's --log-file (%p is the pid) or in
 * lockgate's stderr, fails the test (or the runner) like a sanitizer report.
 *
 * Every process is started in a process group of its own, its pid appended
 * to DIR/pids; itest_stop kills every group listed there. Processes started
 * by the fixture also die with the runner (PR_SET_PDEATHSIG); those started
 * inside a test die with the test's child process, except a restarted Redis,
 * which must outlive the test and is reaped by itest_stop.
 *
 * Functions (IT is the one harness state, struct itest *):
 *   itest_start(opts)        temp folder, Redis, upstream (unless opts->no_upstream),
 *                            config and lockgate instance 0, each waited for.
 *   itest_stop()             stops everything (lockgate gracefully, then checks its
 *                            log for sanitizer reports), removes the folder.
 *   itest_exit_status(n)     the runner's exit status: failure when N tests failed
 *                            or a sanitizer or wrapper report was found at teardown.
 *   itest_scaled_ms(ms)      MS times $ITEST_SLOW_FACTOR, for a test's own time bounds.
 *   itest_wrapped()          true when lockgate runs under $ITEST_LG_WRAPPER.
 *   itest_skip_wrapped(why)  in a test: prints why and returns true under the
 *                            wrapper, for a test that cannot run there (then return).
 *   itest_lg_start(opts)     another lockgate instance on new ports, same Redis,
 *                            secrets and token; returns its index in IT->lg.
 *   itest_lg_stop(i)         SIGTERM, wait, check the log; returns the exit status.
 *   itest_cert_new(cert, key)  a fresh self-signed certificate for localhost (the
 *                            harness's is IT->cert, IT->key, made for a TLS instance).
 *   itest_lg_run(args, &out, &err)  runs $LG_BUILD/lockgate ARGS (NULL-terminated)
 *                            once, under the wrapper, checked like an instance;
 *                            returns its exit status like itest_run.
 *   itest_lg_restart(i)      stop then start instance I again on its ports.
 *   itest_lg_log(i)          instance I's stderr so far (malloc'd).
 *   itest_config_write(path, opts, lg)  writes a full lockgate config for instance LG.
 *   itest_redis_stop() / itest_redis_start()   kill Redis (SIGKILL) / start it again
 *                            on the same port (empty: no persistence).
 *   itest_redis_pause() / itest_redis_resume() SIGSTOP / SIGCONT Redis.
 *   itest_redis()            a new hiredis sync connection to the test Redis
 *                            (caller frees with redisFree); fails the test if none.
 *   itest_redis_cmd(c, fmt, ...)  redisCommand that fails the test on a NULL reply.
 *   itest_stream(c, key, start)   XRANGE key start + as a JSON array of objects
 *                            {"id", field: value...} (new reference).
 *   itest_http(method, url, headers, body, len, cafile, resp)  one libcurl request:
 *                            status, headers, body into RESP; 0, or -1 on a transport
 *                            error (resp->error says why). HEADERS NULL-terminated;
 *                            CAFILE NULL verifies https with the harness's CA.
 *   itest_resp_header(resp, name)  a header value (malloc'd) or NULL.
 *   itest_basic_header(key, secret)  "Authorization: Basic ..." for them (malloc'd).
 *   itest_resp_free(resp)
 *   itest_admin(method, path, body, &status)   admin API call on instance 0 with
 *                            the token; returns the parsed JSON answer (new
 *                            reference) or NULL (204, empty, not JSON).
 *   itest_admin_at(i, ...)   the same on instance I.
 *   itest_admin_resp(i, method, path, body, resp)  the same, the whole answer
 *                            (status, headers, body) into RESP; itest_http's return.
 *   itest_adminf(&status, method, path, fmt, ...)  body from a printf format.
 *   itest_new_account(name), itest_new_facility(account, name)  created with
 *                            the admin API (201 asserted); the new id, malloc'd.
 *   itest_cli(&out, &err, arg, ..., NULL)   runs $LG_BUILD/lockgate-admin with
 *                            LOCKGATE_ADMIN_URL / _TOKEN_FILE set for instance 0
 *                            ($LOCKGATE_ADMIN_TOKEN unset); returns the exit status
 *                            (-1 if killed or timed out); OUT/ERR malloc'd (or NULL).
 *   itest_cli_argv(&out, &err, args)  the same with a NULL-terminated array.
 *   itest_run(argv, env, &out, &err)   runs any program, ENV a NULL-terminated
 *                            list of "NAME=value" to set or "NAME" to unset.
 *   itest_path(name)         DIR/name (static buffer rotation; copy if kept).
 *   itest_file_write(path, text) / itest_file_read(path)  (read: malloc'd, "" if none)
 *   itest_upstream_answer(path, json)  the test upstream answers PATH with JSON.
 *   itest_wait(fn, arg, what)  polls FN(ARG) until it returns nonzero, bounded.
 *   itest_json_str(obj, field) a string field or "" (borrowed).
 * Lower level, for harness extensions:
 *   itest_spawn(argv, out, err, env, flags)  fork+exec in a new process group,
 *                            ITEST_SPAWN_PDEATH / ITEST_SPAWN_RECORD (pids file).
 *   itest_wait_pid(pid, ms)  wait status of a child, or -1 when still running.
 *   itest_terminate(pid, sig)  signal, wait (bounded), escalate to SIGKILL.
 *   itest_alive(pid) / itest_gone(pid)  liveness, zombies count as gone.
 *   itest_kill_all()         SIGKILL every process group in the pids file.
 *   itest_free_port() / itest_free_ports(ports, n)  free loopback TCP ports.
 *   itest_redis_try(ms)      a hiredis connection or NULL (no failure).
 *   itest_pid_save(name, pid) / itest_pid_load(name)  DIR/NAME.pid.
 *   itest_mono_ms() / itest_sleep_ms(ms)
 *   itest_fail(fmt, ...)     kill everything (in the fixture) and fail.
 *   itest_report(fmt, ...)   fail the test, or (in the teardown) the exit status.
 */
#ifndef LG_ITEST_H
#define LG_ITEST_H

#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check_run.h"
#include "free_ports.h"

#define ITEST_FN       static __attribute__((unused))
#define ITEST_MAX_LG   4
#define ITEST_TOKEN    "itest-admin-token-5f2c9a7e41d8b3c6"
#define ITEST_BODY_MAX (16 * 1024 * 1024)
#define ITEST_WRAP_MAX 32 /* words of $ITEST_LG_WRAPPER */

/* Overrides for the lockgate config; zero (or NULL) means the default. */
struct itest_opts {
    int no_upstream;      /* do not start the test upstream (url then points to a closed port) */
    int no_plain;         /* no plain [server] listen */
    int tls;              /* a TLS listener, with a fresh self-signed cert (IT->cert is its CA) */
    int admin_tls;        /* the admin listener speaks TLS (same cert); admin_url is https */
    int workers;          /* default 1 */
    const char *prefix;   /* default "lg:" */
    int redis_timeout_ms; /* default 250 (times $ITEST_SLOW_FACTOR) */
    const char *upstream_url; /* default: the test upstream (or a closed port) */
    int upstream_timeout_ms, upstream_connect_timeout_ms, upstream_max_connections;
    int rate_per_sec, burst, auth_failures_per_min;
    int events_maxlen, audit_maxlen;
    int client_timeout_s, max_header_bytes;
    int feed_heartbeat_s, feed_max_backlog_kib, feed_max_streams_per_key;
    const char *access_log; /* "on" / "off" (default) */
    const char *log_level;  /* default "info" */
    const char *extra;      /* raw INI text appended, e.g. "[feed]\nnew_option = 1\n" */
    int nofile;             /* lockgate's descriptor limit, soft and hard (prlimit); 0: inherited */
    const char *redis_host; /* default 127.0.0.1 */
    int redis_port;         /* default the harness's Redis */
    int no_admin_probe;     /* started once its public port accepts, not by polling /healthz:
                             * no admin request reaches the instance before the test's own */
    const char *bin;        /* the binary under $LG_BUILD, default "lockgate" */
    const char *const *env; /* NULL-terminated "NAME=value" set for the instance */
};

struct itest_lg {
    pid_t pid;        /* 0 when stopped (as last seen by this process; see lockgate-N.pid) */
    pid_t spawned_by; /* the process that started the instance */
    int port, tls_port, admin_port;
    char conf[PATH_MAX], log[PATH_MAX], out[PATH_MAX];
    char url[64], tls_url[64], admin_url[64]; /* "" when there is no such listener */
    struct itest_opts opts;
};

struct itest {
    char dir[64];     /* the temp folder */
    char build[1024]; /* absolute $LG_BUILD */
    pid_t owner;      /* the process that ran itest_start */
    int timeout_ms;
    int redis_port;
    pid_t redis_pid;
    int upstream_port;
    pid_t upstream_pid;
    char upstream_url[64];
    char upstream_record[PATH_MAX];
    char upstream_data[PATH_MAX]; /* files the test upstream serves (itest_upstream_answer) */
    char token[64];
    char token_file[PATH_MAX];
    char cert[PATH_MAX], key[PATH_MAX];
    struct itest_lg lg[ITEST_MAX_LG];
    int nlg;
    int sanitizer_failed;
    int runs; /* counter for output file names */
    /* $ITEST_LG_WRAPPER split into words (NULL-terminated), its --log-file
     * pattern and its --error-exitcode (-1: none) */
    char wrap_text[1024];
    char *wrap[ITEST_WRAP_MAX + 1];
    int nwrap;
    const char *wrap_log;
    int wrap_exit;
};

static struct itest itest_state;
#define IT (&itest_state)

struct itest_resp {
    long status;   /* 0 on a transport error */
    char *headers; /* raw header block of the final answer */
    char *body;    /* NUL-terminated */
    size_t body_len;
    char error[CURL_ERROR_SIZE];
};

/* ---- small utilities ---- */

ITEST_FN int64_t itest_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

ITEST_FN void itest_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* Both read the environment, so that fixtures may ask before itest_start. */
ITEST_FN int itest_scaled_ms(int ms)
{
    const char *f = getenv("ITEST_SLOW_FACTOR");
    return ms * (f && atoi(f) > 0 ? atoi(f) : 1);
}

ITEST_FN bool itest_wrapped(void)
{
    const char *w = getenv("ITEST_LG_WRAPPER");
    return w != NULL && w[strspn(w, " \t\n")] != '\0';
}

/* Under the wrapper, says why the calling test does not run and returns
 * true: the test then returns at once. */
#define itest_skip_wrapped(why)                                                              \
    (itest_wrapped() ? (printf("%s: skipped under ITEST_LG_WRAPPER: %s\n", __func__, (why)), \
                        fflush(stdout), true)                                                \
                     : false)

/* Reads $ITEST_LG_WRAPPER into IT. */
static void itest_wrap_init(void)
{
    IT->nwrap = 0;
    IT->wrap_log = NULL;
    IT->wrap_exit = -1;
    const char *w = getenv("ITEST_LG_WRAPPER");
    if (w == NULL) return;
    if (strlen(w) >= sizeof(IT->wrap_text)) ck_abort_msg("ITEST_LG_WRAPPER is too long");
    memcpy(IT->wrap_text, w, strlen(w) + 1);
    char *save = NULL;
    for (char *word = strtok_r(IT->wrap_text, " \t\n", &save); word != NULL;
         word = strtok_r(NULL, " \t\n", &save)) {
        if (IT->nwrap == ITEST_WRAP_MAX) ck_abort_msg("ITEST_LG_WRAPPER has too many words");
        IT->wrap[IT->nwrap++] = word;
        if (strncmp(word, "--log-file=", 11) == 0) IT->wrap_log = word + 11;
        if (strncmp(word, "--error-exitcode=", 17) == 0) IT->wrap_exit = atoi(word + 17);
    }
    IT->wrap[IT->nwrap] = NULL;
}

/* ARGV (NULL-terminated) behind the wrapper's words, into OUT (CAP slots). */
static void itest_wrap_argv(char *const argv[], char **out, size_t cap)
{
    size_t n = 0;
    for (int i = 0; i < IT->nwrap && n + 1 < cap; i++) out[n++] = IT->wrap[i];
    for (int i = 0; argv[i] != NULL && n + 1 < cap; i++) out[n++] = argv[i];
    out[n] = NULL;
}

ITEST_FN const char *itest_path(const char *name)
{
    static char bufs[8][PATH_MAX];
    static int next;
    char *b = bufs[next++ % 8];
    if (strlen(IT->dir) + 1 + strlen(name) >= PATH_MAX) ck_abort_msg("path too long: %s", name);
    memcpy(b, IT->dir, strlen(IT->dir));
    b[strlen(IT->dir)] = '/';
    memcpy(b + strlen(IT->dir) + 1, name, strlen(name) + 1);
    return b;
}

ITEST_FN char *itest_file_read(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) return strdup("");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *nb = realloc(buf, cap);
            if (nb == NULL) break;
            buf = nb;
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    if (buf == NULL) return strdup("");
    buf[len] = '\0';
    return buf;
}

ITEST_FN int itest_file_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) return -1;
    size_t len = strlen(text);
    int rc = fwrite(text, 1, len, f) == len ? 0 : -1;
    if (fclose(f) != 0) rc = -1;
    return rc;
}

/* The test upstream answers PATH (of a facility the test names) with JSON
 * from now on, instead of its generated data. The facility's other paths
 * then answer 404 unless given too. */
ITEST_FN void itest_upstream_answer(const char *path, const char *json)
{
    char file[PATH_MAX];
    int n = snprintf(file, sizeof(file), "%s%s/index.json", IT->upstream_data, path);
    if (n < 0 || (size_t)n >= sizeof(file)) ck_abort_msg("path too long: %s", path);
    for (char *p = file + strlen(IT->upstream_data) + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        if (mkdir(file, 0755) < 0 && errno != EEXIST) ck_abort_msg("mkdir %s", file);
        *p = '/';
    }
    /* written aside, then renamed: the upstream never reads half a file */
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof(tmp), "%s.tmp", file);
    if (itest_file_write(tmp, json) < 0 || rename(tmp, file) < 0) ck_abort_msg("write %s", file);
}

ITEST_FN const char *itest_json_str(const json_t *obj, const char *field)
{
    const char *s = json_string_value(json_object_get(obj, field));
    return s ? s : "";
}

/* Kills everything the pid file lists (each its own process group). */
ITEST_FN void itest_kill_all(void)
{
    char *pids = itest_file_read(itest_path("pids"));
    for (char *p = strtok(pids, "\n"); p != NULL; p = strtok(NULL, "\n")) {
        pid_t pid = (pid_t)atoi(p);
        if (pid <= 1) continue;
        /* only while it is still the leader of the group we gave it */
        if (getpgid(pid) == pid) kill(-pid, SIGKILL);
        waitpid(pid, NULL, WNOHANG);
    }
    free(pids);
}

/* Fails the current test (or the fixture) after killing what was started,
 * when called from the process that owns the processes. */
#define itest_fail(...)                              \
    do {                                             \
        if (getpid() == IT->owner) itest_kill_all(); \
        ck_abort_msg(__VA_ARGS__);                   \
    } while (0)

/* N distinct free loopback ports (free_ports.h). */
ITEST_FN void itest_free_ports(int *ports, int n)
{
    if (free_ports(ports, n) < 0) itest_fail("no free TCP port");
}

ITEST_FN int itest_free_port(void)
{
    int port;
    itest_free_ports(&port, 1);
    return port;
}

/* ---- processes ---- */

#define ITEST_SPAWN_PDEATH 1 /* the process dies with the one that started it */
#define ITEST_SPAWN_RECORD 2 /* listed in DIR/pids for the teardown to kill */

/* Starts ARGV with stdout/stderr appended to OUT/ERR (NULL: /dev/null) and
 * ENV applied ("NAME=value" sets, "NAME" unsets), in a process group of its
 * own. FLAGS: ITEST_SPAWN_*. Returns the pid. */
ITEST_FN pid_t itest_spawn(char *const argv[], const char *out, const char *err,
                           const char *const *env, int flags)
{
    int pdeath = flags & ITEST_SPAWN_PDEATH;
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) itest_fail("fork: %s", strerror(errno));
    if (pid == 0) {
        setpgid(0, 0);
        if (pdeath) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent) _exit(127);
        }
        int in = open("/dev/null", O_RDONLY);
        int o = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
        int e = open(err ? err : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (in < 0 || o < 0 || e < 0) _exit(127);
        dup2(in, 0);
        dup2(o, 1);
        dup2(e, 2);
        for (int i = 0; env != NULL && env[i] != NULL; i++) {
            if (strchr(env[i], '=') != NULL)
                putenv((char *)env[i]);
            else
                unsetenv(env[i]);
        }
        execvp(argv[0], argv);
        fprintf(stderr, "itest: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid);
    FILE *f = flags & ITEST_SPAWN_RECORD ? fopen(itest_path("pids"), "a") : NULL;
    if (f != NULL) {
        fprintf(f, "%d\n", (int)pid);
        fclose(f);
    }
    return pid;
}

/* Waits up to TIMEOUT_MS for PID (a child of ours); returns its wait status,
 * or -1 when it is still running. */
ITEST_FN int itest_wait_pid(pid_t pid, int timeout_ms)
{
    int64_t end = itest_mono_ms() + timeout_ms;
    int status;
    do {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) return status;
        if (r < 0) return errno == ECHILD ? 0 : -1;
        itest_sleep_ms(5);
    } while (itest_mono_ms() < end);
    return -1;
}

/* True when PID is gone: reaped, or a zombie (not our child, e.g. the
 * fixture's Redis seen from inside a test). */
ITEST_FN int itest_gone(pid_t pid)
{
    if (kill(pid, 0) != 0) return 1;
    char path[64], stat[256] = "";
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) return 1;
    size_t n = fread(stat, 1, sizeof(stat) - 1, f);
    fclose(f);
    stat[n] = '\0';
    const char *paren = strrchr(stat, ')');
    return paren != NULL && paren[1] == ' ' && paren[2] == 'Z';
}

ITEST_FN int itest_alive(pid_t pid)
{
    int status;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return 0;
    if (r < 0 && errno == ECHILD) return !itest_gone(pid);
    return 1;
}

/* Stops PID (its whole group) with SIG, escalating to SIGKILL after the
 * bound; returns the wait status when PID was our child, else 0. */
ITEST_FN int itest_terminate(pid_t pid, int sig)
{
    if (pid <= 0 || getpgid(pid) != pid) return 0;
    kill(pid, SIGCONT);
    kill(sig == SIGKILL ? -pid : pid, sig);
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    int status;
    while (1) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) return status;
        if (r < 0 && itest_gone(pid)) return 0;
        if (itest_mono_ms() > end) {
            if (sig == SIGKILL) return 0;
            fprintf(stderr, "itest: pid %d ignored signal %d; killing it\n", (int)pid, sig);
            kill(-pid, SIGKILL);
            sig = SIGKILL;
            end = itest_mono_ms() + IT->timeout_ms;
        }
        itest_sleep_ms(5);
    }
}

/* The current pid of a long-lived service, kept in DIR/NAME.pid so that a
 * restart inside a test is seen by later tests and by the teardown. */
ITEST_FN void itest_pid_save(const char *name, pid_t pid)
{
    char file[96], text[32];
    snprintf(file, sizeof(file), "%s.pid", name);
    snprintf(text, sizeof(text), "%d\n", (int)pid);
    itest_file_write(itest_path(file), text);
}

ITEST_FN pid_t itest_pid_load(const char *name)
{
    char file[96];
    snprintf(file, sizeof(file), "%s.pid", name);
    char *text = itest_file_read(itest_path(file));
    pid_t pid = (pid_t)atoi(text);
    free(text);
    return pid;
}

/* itest_run, with the pid of the program into PIDP. */
static int itest_run_pid(char *const argv[], const char *const *env, char **out, char **err,
                         pid_t *pidp)
{
    char opath[PATH_MAX], epath[PATH_MAX];
    int n = ++IT->runs;
    snprintf(opath, sizeof(opath), "%s/run-%d-%d.out", IT->dir, (int)getpid(), n);
    snprintf(epath, sizeof(epath), "%s/run-%d-%d.err", IT->dir, (int)getpid(), n);
    pid_t pid = itest_spawn(argv, opath, epath, env, ITEST_SPAWN_PDEATH);
    if (pidp != NULL) *pidp = pid;
    int status = itest_wait_pid(pid, IT->timeout_ms);
    int rc;
    if (status == -1) {
        kill(-pid, SIGKILL);
        waitpid(pid, NULL, 0);
        rc = -1;
    } else {
        rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    char *o = itest_file_read(opath), *e = itest_file_read(epath);
    if (out != NULL)
        *out = o;
    else
        free(o);
    if (err != NULL)
        *err = e;
    else
        free(e);
    unlink(opath);
    unlink(epath);
    return rc;
}

ITEST_FN int itest_run(char *const argv[], const char *const *env, char **out, char **err)
{
    return itest_run_pid(argv, env, out, err, NULL);
}

ITEST_FN int itest_wait(int (*fn)(void *), void *arg, const char *what)
{
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    while (itest_mono_ms() < end) {
        if (fn(arg)) return 0;
        itest_sleep_ms(10);
    }
    ck_abort_msg("timed out after %d ms waiting for %s", IT->timeout_ms, what);
    return -1;
}

/* ---- HTTP ---- */

struct itest_buf {
    char *data;
    size_t len;
};

static size_t itest_on_body(char *ptr, size_t size, size_t n, void *arg)
{
    struct itest_buf *b = arg;
    size_t add = size * n;
    if (b->len + add > ITEST_BODY_MAX) return 0;
    char *nd = realloc(b->data, b->len + add + 1);
    if (nd == NULL) return 0;
    memcpy(nd + b->len, ptr, add);
    b->data = nd;
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

static size_t itest_on_header(char *ptr, size_t size, size_t n, void *arg)
{
    struct itest_buf *b = arg;
    /* a new status line starts a new header block (after 100 Continue) */
    if (size * n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) b->len = 0;
    return itest_on_body(ptr, size, n, arg);
}

ITEST_FN int itest_http(const char *method, const char *url, const char *const *headers,
                        const char *body, size_t body_len, const char *cafile,
                        struct itest_resp *resp)
{
    memset(resp, 0, sizeof(*resp));
    CURL *h = curl_easy_init();
    if (h == NULL) {
        snprintf(resp->error, sizeof(resp->error), "curl_easy_init failed");
        return -1;
    }
    struct itest_buf hb = {0}, bb = {0};
    struct curl_slist *hl = curl_slist_append(NULL, "Expect:");
    for (int i = 0; headers != NULL && headers[i] != NULL; i++)
        hl = curl_slist_append(hl, headers[i]);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)IT->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)IT->timeout_ms);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, itest_on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &bb);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, itest_on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &hb);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, resp->error);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    }
    /* https URLs are the harness's own listeners: verified with its CA */
    if (cafile == NULL && strncmp(url, "https://", 8) == 0 && IT->cert[0] != '\0')
        cafile = IT->cert;
    if (cafile != NULL) curl_easy_setopt(h, CURLOPT_CAINFO, cafile);
    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    else if (resp->error[0] == '\0')
        snprintf(resp->error, sizeof(resp->error), "%s", curl_easy_strerror(rc));
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    resp->headers = hb.data ? hb.data : strdup("");
    resp->body = bb.data ? bb.data : strdup("");
    resp->body_len = bb.len;
    return rc == CURLE_OK ? 0 : -1;
}

ITEST_FN char *itest_resp_header(const struct itest_resp *resp, const char *name)
{
    size_t nlen = strlen(name);
    const char *p = resp->headers;
    while (p != NULL && *p != '\0') {
        const char *eol = strstr(p, "\r\n");
        size_t llen = eol ? (size_t)(eol - p) : strlen(p);
        if (llen > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
            const char *v = p + nlen + 1;
            while (*v == ' ' || *v == '\t') v++;
            return strndup(v, llen - (size_t)(v - p));
        }
        p = eol ? eol + 2 : NULL;
    }
    return NULL;
}

ITEST_FN void itest_resp_free(struct itest_resp *resp)
{
    free(resp->headers);
    free(resp->body);
    resp->headers = resp->body = NULL;
}

ITEST_FN int itest_admin_resp(int i, const char *method, const char *path, const char *body,
                              struct itest_resp *r)
{
    char url[512], auth[128];
    snprintf(url, sizeof(url), "%s%s", IT->lg[i].admin_url, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", IT->token);
    const char *headers[] = {auth, "Content-Type: application/json", NULL};
    return itest_http(method, url, headers, body, body ? strlen(body) : 0, NULL, r);
}

ITEST_FN json_t *itest_admin_at(int i, const char *method, const char *path, const char *body,
                                long *status)
{
    struct itest_resp r;
    itest_admin_resp(i, method, path, body, &r);
    if (status != NULL) *status = r.status;
    json_t *j = r.body_len ? json_loads(r.body, 0, NULL) : NULL;
    itest_resp_free(&r);
    return j;
}

ITEST_FN json_t *itest_admin(const char *method, const char *path, const char *body, long *status)
{
    return itest_admin_at(0, method, path, body, status);
}

ITEST_FN json_t *itest_adminf(long *status, const char *method, const char *path, const char *fmt,
                              ...) __attribute__((format(printf, 4, 5)));
ITEST_FN json_t *itest_adminf(long *status, const char *method, const char *path, const char *fmt,
                              ...)
{
    va_list ap;
    char *body = NULL;
    va_start(ap, fmt);
    if (vasprintf(&body, fmt, ap) < 0) body = NULL;
    va_end(ap);
    json_t *j = itest_admin(method, path, body, status);
    free(body);
    return j;
}

/* The id (JSON field ID_FIELD, malloc'd) of what POST PATH with {"name": NAME} created. */
ITEST_FN char *itest_created_id(const char *path, const char *name, const char *id_field)
{
    long st;
    json_t *j = itest_adminf(&st, "POST", path, "{\"name\":\"%s\"}", name);
    ck_assert_msg(st == 201, "POST %s: HTTP %ld", path, st);
    char *id = strdup(itest_json_str(j, id_field));
    json_decref(j);
    return id;
}

ITEST_FN char *itest_new_account(const char *name)
{
    return itest_created_id("/admin/v1/accounts", name, "account_id");
}

ITEST_FN char *itest_new_facility(const char *account, const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "/admin/v1/accounts/%s/facilities", account);
    return itest_created_id(path, name, "facility_id");
}

/* ---- suites of cases, each with a stack of its own ----
 * Runs every case as its own TCase with SETUP/TEARDOWN as an unchecked
 * fixture (fresh Redis, upstream and lockgate per case), forked, 90 s at
 * most each; returns the process exit status. */

struct itest_case {
    const char *name;
    void (*setup)(void);
    const TTest *test;
};

ITEST_FN int itest_exit_status(int nfailed);

ITEST_FN int itest_run_cases(const char *suite, const struct itest_case *cases, size_t n,
                             void (*teardown)(void))
{
    Suite *s = suite_create(suite);
    for (size_t i = 0; i < n; i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_add_unchecked_fixture(tc, cases[i].setup, teardown);
        tcase_set_timeout(tc, 90);
        tcase_add_test(tc, cases[i].test);
        suite_add_tcase(s, tc);
    }
    return itest_exit_status(check_run(s));
}

ITEST_FN char *itest_basic_header(const char *key, const char *secret)
{
    char plain[256];
    unsigned char b64[400];
    int n = snprintf(plain, sizeof(plain), "%s:%s", key, secret);
    EVP_EncodeBlock(b64, (const unsigned char *)plain, n);
    char *h = NULL;
    if (asprintf(&h, "Authorization: Basic %s", (char *)b64) < 0) return NULL;
    return h;
}

/* ---- data through the admin API ----
 * Each call must answer 201; the test fails otherwise. */

static int itest_seq;

static json_t *itest_created(const char *path, json_t *body /* stolen */)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    long st = 0;
    json_t *j = itest_admin("POST", path, text, &st);
    ck_assert_msg(st == 201, "POST %s %s -> %ld", path, text, st);
    free(text);
    return j;
}

/* Creates an account (NAME NULL: a numbered one); its id into OUT (64 bytes). */
ITEST_FN void itest_account(char *out, const char *name)
{
    char n[64];
    snprintf(n, sizeof(n), "Account %d", ++itest_seq);
    json_t *j = itest_created("/admin/v1/accounts", json_pack("{s:s}", "name", name ? name : n));
    snprintf(out, 64, "%s", itest_json_str(j, "account_id"));
    ck_assert_msg(out[0] != '\0', "account without id");
    json_decref(j);
}

/* Creates an included facility of ACCT (NAME NULL: a numbered one); its id
 * into OUT (72 bytes). With PREFIX it is imported as PREFIX<pid>x<n>, so that
 * "slow", "fail" and "reset" facilities reach those modes of the test upstream. */
ITEST_FN void itest_facility(char *out, const char *acct, const char *name, const char *prefix)
{
    char path[160], n[64], id[72];
    int seq = ++itest_seq;
    snprintf(n, sizeof(n), "Site %d", seq);
    snprintf(path, sizeof(path), "/admin/v1/accounts/%s/facilities", acct);
    json_t *body = json_pack("{s:s}", "name", name ? name : n);
    if (prefix != NULL) {
        snprintf(id, sizeof(id), "%s%dx%d", prefix, (int)getpid(), seq);
        json_object_set_new(body, "facility_id", json_string(id));
    }
    json_t *j = itest_created(path, body);
    snprintf(out, 72, "%s", itest_json_str(j, "facility_id"));
    ck_assert_msg(out[0] != '\0' && json_is_true(json_object_get(j, "included")),
                  "facility not created included");
    json_decref(j);
}

/* Creates an API key of ACCT on all facilities; EXTRA (NULL or JSON members
 * such as "\"burst\":5") is added to the body. Key id and secret into KEY
 * and SECRET (64 bytes each). */
ITEST_FN void itest_key(char *key, char *secret, const char *acct, const char *extra)
{
    char path[160], text[1024];
    snprintf(path, sizeof(path), "/admin/v1/accounts/%s/keys", acct);
    snprintf(text, sizeof(text), "{\"name\":\"Key %d\",\"all_facilities\":true%s%s}", ++itest_seq,
             extra ? "," : "", extra ? extra : "");
    json_t *body = json_loads(text, 0, NULL);
    ck_assert_msg(body != NULL, "bad key body %s", text);
    json_t *j = itest_created(path, body);
    snprintf(key, 64, "%s", itest_json_str(j, "key_id"));
    snprintf(secret, 64, "%s", itest_json_str(j, "secret"));
    ck_assert_msg(key[0] && secret[0], "key creation answered no key_id or secret");
    json_decref(j);
}

/* ---- Redis ---- */

/* A connection to the Redis on loopback PORT, or NULL. */
ITEST_FN redisContext *itest_redis_try_port(int port, int timeout_ms)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c == NULL || c->err) {
        if (c) redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

ITEST_FN redisContext *itest_redis_try(int timeout_ms)
{
    return itest_redis_try_port(IT->redis_port, timeout_ms);
}

ITEST_FN redisContext *itest_redis(void)
{
    redisContext *c = itest_redis_try(IT->timeout_ms);
    if (c == NULL) ck_abort_msg("cannot connect to the test redis on port %d", IT->redis_port);
    return c;
}

ITEST_FN redisReply *itest_redis_cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (r == NULL) ck_abort_msg("redis command failed: %s", c->errstr);
    return r;
}

static int itest_redis_pings(void *arg)
{
    (void)arg;
    redisContext *c = itest_redis_try(200);
    if (c == NULL) return 0;
    redisReply *r = redisCommand(c, "PING");
    int ok = r != NULL && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
    if (r) freeReplyObject(r);
    redisFree(c);
    return ok;
}

ITEST_FN json_t *itest_stream(redisContext *c, const char *key, const char *start)
{
    redisReply *r = itest_redis_cmd(c, "XRANGE %s %s +", key, start ? start : "-");
    json_t *arr = json_array();
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2) continue;
        json_t *o = json_object();
        json_object_set_new(o, "id", json_string(e->element[0]->str));
        redisReply *f = e->element[1];
        for (size_t k = 0; k + 1 < f->elements; k += 2)
            json_object_set_new(o, f->element[k]->str,
                                json_stringn(f->element[k + 1]->str, f->element[k + 1]->len));
        json_array_append_new(arr, o);
    }
    freeReplyObject(r);
    return arr;
}

static void itest_redis_spawn(void)
{
    char port[16], logfile[PATH_MAX];
    snprintf(port, sizeof(port), "%d", IT->redis_port);
    snprintf(logfile, sizeof(logfile), "%s/redis.log", IT->dir);
    const char *server = getenv("ITEST_REDIS_SERVER");
    char *const argv[] = {(char *)(server && server[0] ? server : "redis-server"),
                          "--port",
                          port,
                          "--bind",
                          "127.0.0.1",
                          "--dir",
                          IT->dir,
                          "--save",
                          "",
                          "--appendonly",
                          "no",
                          "--daemonize",
                          "no",
                          "--logfile",
                          logfile,
                          NULL};
    /* A Redis restarted inside a test must outlive that test's process. */
    IT->redis_pid =
        itest_spawn(argv, NULL, NULL, NULL,
                    ITEST_SPAWN_RECORD | (getpid() == IT->owner ? ITEST_SPAWN_PDEATH : 0));
    itest_pid_save("redis", IT->redis_pid);
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    while (!itest_redis_pings(NULL)) {
        if (!itest_alive(IT->redis_pid) || itest_mono_ms() > end) {
            char *log = itest_file_read(logfile);
            fprintf(stderr, "itest: redis log:\n%s\n", log);
            free(log);
            itest_fail("redis-server did not answer PING on port %d", IT->redis_port);
        }
        itest_sleep_ms(10);
    }
}

ITEST_FN void itest_redis_stop(void)
{
    IT->redis_pid = itest_pid_load("redis");
    itest_terminate(IT->redis_pid, SIGKILL);
    IT->redis_pid = 0;
    itest_pid_save("redis", 0);
}

ITEST_FN void itest_redis_start(void)
{
    IT->redis_pid = itest_pid_load("redis");
    if (IT->redis_pid == 0) itest_redis_spawn();
}

ITEST_FN void itest_redis_pause(void)
{
    IT->redis_pid = itest_pid_load("redis");
    if (IT->redis_pid > 0) kill(IT->redis_pid, SIGSTOP);
}

ITEST_FN void itest_redis_resume(void)
{
    IT->redis_pid = itest_pid_load("redis");
    if (IT->redis_pid > 0) kill(IT->redis_pid, SIGCONT);
}

/* ---- lockgate ---- */

#define ITEST_OR(v, d) ((v) ? (v) : (d))

ITEST_FN int itest_config_write(const char *path, const struct itest_opts *o,
                                const struct itest_lg *lg)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) return -1;
    fprintf(f, "# written by the integration test harness\n[server]\n");
    if (lg->port)
        fprintf(f, "listen = 127.0.0.1:%d\n", lg->port);
    else
        fprintf(f, "listen =\n");
    if (lg->tls_port)
        fprintf(f, "listen_tls = 127.0.0.1:%d\n", lg->tls_port);
    else
        fprintf(f, "listen_tls =\n");
    fprintf(f, "workers = %d\n", ITEST_OR(o->workers, 1));
    if (o->max_header_bytes) fprintf(f, "max_header_bytes = %d\n", o->max_header_bytes);
    if (o->client_timeout_s) fprintf(f, "client_timeout_s = %d\n", o->client_timeout_s);
    fprintf(f, "access_log = %s\n", ITEST_OR(o->access_log, "off"));
    fprintf(f, "log_level = %s\n", ITEST_OR(o->log_level, "info"));
    fprintf(f, "\n[tls]\ncert = %s\nkey = %s\n", IT->cert[0] ? IT->cert : "cert.pem",
            IT->key[0] ? IT->key : "key.pem");
    fprintf(f, "\n[admin]\nlisten = 127.0.0.1:%d\ntoken_file = %s\ntls = %s\n", lg->admin_port,
            IT->token_file, o->admin_tls ? "on" : "off");
    fprintf(f, "\n[redis]\nhost = %s\nport = %d\nprefix = %s\ntimeout_ms = %d\n",
            ITEST_OR(o->redis_host, "127.0.0.1"), ITEST_OR(o->redis_port, IT->redis_port),
            ITEST_OR(o->prefix, "lg:"),
            /* the default deadline stretches with a slow wrapper; a test that
             * sets its own means that figure */
            o->redis_timeout_ms ? o->redis_timeout_ms : itest_scaled_ms(250));
    if (o->events_maxlen) fprintf(f, "events_maxlen = %d\n", o->events_maxlen);
    if (o->audit_maxlen) fprintf(f, "audit_maxlen = %d\n", o->audit_maxlen);
    fprintf(f, "\n[upstream]\nurl = %s\n", ITEST_OR(o->upstream_url, IT->upstream_url));
    if (o->upstream_timeout_ms) fprintf(f, "timeout_ms = %d\n", o->upstream_timeout_ms);
    if (o->upstream_connect_timeout_ms)
        fprintf(f, "connect_timeout_ms = %d\n", o->upstream_connect_timeout_ms);
    if (o->upstream_max_connections)
        fprintf(f, "max_connections = %d\n", o->upstream_max_connections);
    fprintf(f, "\n[secrets]\npepper_file = %s/pepper\nmaster_key_file = %s/master.key\n", IT->dir,
            IT->dir);
    fprintf(f, "\n[limits]\n");
    if (o->rate_per_sec) fprintf(f, "rate_per_sec = %d\n", o->rate_per_sec);
    if (o->burst) fprintf(f, "burst = %d\n", o->burst);
    if (o->auth_failures_per_min)
        fprintf(f, "auth_failures_per_min = %d\n", o->auth_failures_per_min);
    fprintf(f, "\n[feed]\n");
    if (o->feed_heartbeat_s) fprintf(f, "heartbeat_s = %d\n", o->feed_heartbeat_s);
    if (o->feed_max_backlog_kib) fprintf(f, "max_backlog_kib = %d\n", o->feed_max_backlog_kib);
    if (o->feed_max_streams_per_key)
        fprintf(f, "max_streams_per_key = %d\n", o->feed_max_streams_per_key);
    if (o->extra) fprintf(f, "\n%s\n", o->extra);
    return fclose(f) == 0 ? 0 : -1;
}

struct itest_probe {
    const char *url;
};

static int itest_healthz(void *arg)
{
    struct itest_resp r;
    int ok = itest_http("GET", ((struct itest_probe *)arg)->url, NULL, NULL, 0, NULL, &r) == 0 &&
             r.status == 200;
    itest_resp_free(&r);
    return ok;
}

/* Whether something accepts TCP connections on 127.0.0.1:PORT. */
static int itest_port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int open_ = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0) close(fd);
    return open_;
}

ITEST_FN char *itest_lg_log(int i)
{
    char name[32];
    snprintf(name, sizeof(name), "lockgate-%d.log", i);
    return itest_file_read(itest_path(name));
}

/* A problem found while stopping something: inside a test it fails the
 * test; in the fixture's teardown it is printed and fails the runner's exit
 * status (itest_exit_status). */
#define itest_report(...)                                     \
    do {                                                      \
        if (getpid() != IT->owner) ck_abort_msg(__VA_ARGS__); \
        fprintf(stderr, "itest: ");                           \
        fprintf(stderr, __VA_ARGS__);                         \
        fprintf(stderr, "\n");                                \
        IT->sanitizer_failed = 1;                             \
    } while (0)

/* True when TEXT holds an "ERROR SUMMARY: N errors" with N > 0. */
static int itest_error_summary(const char *text)
{
    for (const char *p = text; (p = strstr(p, "ERROR SUMMARY: ")) != NULL; p++)
        if (strtol(p + 15, NULL, 10) > 0) return 1;
    return 0;
}

/* Looks for sanitizer and wrapper reports in instance I's log; prints and
 * reports them. */
static int itest_lg_sanitizer_check(int i)
{
    char *log = itest_lg_log(i);
    int bad = strstr(log, "ERROR: AddressSanitizer") != NULL ||
              strstr(log, "ERROR: LeakSanitizer") != NULL ||
              strstr(log, "runtime error:") != NULL || itest_error_summary(log);
    if (bad) fprintf(stderr, "itest: lockgate instance %d log:\n%s\n", i, log);
    free(log);
    if (bad) itest_report("sanitizer report from lockgate instance %d", i);
    return bad;
}

/* After lockgate (WHAT) ended as PID with exit status CODE (-1: killed or
 * unknown): the wrapper's verdict, from CODE and its log file. Prints and
 * reports it. */
static int itest_wrap_check(pid_t pid, int code, const char *what)
{
    if (IT->nwrap == 0 || pid <= 0) return 0;
    char path[PATH_MAX] = "";
    char *text = NULL;
    if (IT->wrap_log != NULL) {
        size_t n = 0;
        for (const char *p = IT->wrap_log; *p != '\0' && n + 16 < sizeof(path); p++) {
            if (p[0] == '%' && p[1] == 'p') {
                n += (size_t)snprintf(path + n, sizeof(path) - n, "%d", (int)pid);
                p++;
            } else if (p[0] == '%' && p[1] == '%') {
                path[n++] = '%';
                p++;
            } else {
                path[n++] = *p;
            }
        }
        path[n] = '\0';
        text = itest_file_read(path);
    }
    int bad =
        (IT->wrap_exit > 0 && code == IT->wrap_exit) || (text != NULL && itest_error_summary(text));
    if (bad) {
        if (text != NULL && text[0] != '\0')
            fprintf(stderr, "itest: %s (pid %d), %s:\n%.65536s\n", what, (int)pid, path, text);
        itest_report("%s (pid %d): the wrapper found errors (exit status %d)%s%s", what, (int)pid,
                     code, path[0] ? ", see " : "", path);
    }
    free(text);
    return bad;
}

static void itest_lg_spawn(int i)
{
    struct itest_lg *lg = &IT->lg[i];
    char bin[PATH_MAX];
    snprintf(bin, sizeof(bin), "%s/%s", IT->build, ITEST_OR(lg->opts.bin, "lockgate"));
    if (access(bin, X_OK) != 0) itest_fail("%s is missing: build it first", bin);
    char limit[32];
    snprintf(limit, sizeof(limit), "--nofile=%d:%d", lg->opts.nofile, lg->opts.nofile);
    char *const plain[] = {bin, "-c", lg->conf, NULL};
    char *wrapped[ITEST_WRAP_MAX + 8];
    itest_wrap_argv(plain, wrapped + 2, ITEST_WRAP_MAX + 6);
    wrapped[0] = "prlimit";
    wrapped[1] = limit;
    char *const *argv = lg->opts.nofile > 0 ? wrapped : wrapped + 2;
    /* An instance restarted inside a test must outlive that test's process;
     * one started inside a test dies with it. */
    lg->pid =
        itest_spawn(argv, lg->out, lg->log, lg->opts.env,
                    ITEST_SPAWN_RECORD | (getpid() == lg->spawned_by ? ITEST_SPAWN_PDEATH : 0));
    char name[32];
    snprintf(name, sizeof(name), "lockgate-%d", i);
    itest_pid_save(name, lg->pid);
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    struct itest_probe probe;
    char url[128];
    snprintf(url, sizeof(url), "%s/healthz", lg->admin_url);
    probe.url = url;
    while (lg->opts.no_admin_probe ? !itest_port_open(lg->port ? lg->port : lg->tls_port)
                                   : !itest_healthz(&probe)) {
        if (!itest_alive(lg->pid) || itest_mono_ms() > end) {
            char *log = itest_lg_log(i);
            fprintf(stderr, "itest: lockgate %d log:\n%s\n", i, log);
            free(log);
            itest_fail("lockgate instance %d did not answer %s", i, url);
        }
        itest_sleep_ms(20);
    }
    /* then, for a little while, until every worker reaches Redis (/readyz),
     * so that a suite's first request meets no worker still connecting; an
     * instance started without Redis goes on unready */
    if (!lg->opts.no_admin_probe) {
        snprintf(url, sizeof(url), "%s/readyz", lg->admin_url);
        for (int64_t ready_by = itest_mono_ms() + itest_scaled_ms(3000);
             !itest_healthz(&probe) && itest_mono_ms() < ready_by;)
            itest_sleep_ms(10);
    }
}

ITEST_FN void itest_cert_new(const char *cert, const char *key)
{
    char *const argv[] = {"openssl",
                          "req",
                          "-x509",
                          "-newkey",
                          "ec",
                          "-pkeyopt",
                          "ec_paramgen_curve:prime256v1",
                          "-nodes",
                          "-keyout",
                          (char *)key,
                          "-out",
                          (char *)cert,
                          "-days",
                          "2",
                          "-subj",
                          "/CN=localhost",
                          "-addext",
                          "subjectAltName=DNS:localhost,IP:127.0.0.1",
                          NULL};
    char *err = NULL;
    if (itest_run(argv, NULL, NULL, &err) != 0) itest_fail("openssl req failed: %s", err);
    free(err);
}

ITEST_FN int itest_lg_start(const struct itest_opts *o)
{
    if (IT->nlg >= ITEST_MAX_LG) ck_abort_msg("too many lockgate instances");
    int i = IT->nlg++;
    struct itest_lg *lg = &IT->lg[i];
    memset(lg, 0, sizeof(*lg));
    lg->opts = *o;
    lg->spawned_by = getpid();
    int ports[3];
    itest_free_ports(ports, 3);
    lg->admin_port = ports[0];
    if (!o->no_plain) lg->port = ports[1];
    if (o->tls) lg->tls_port = ports[2];
    if (o->admin_tls)
        snprintf(lg->admin_url, sizeof(lg->admin_url), "https://localhost:%d", lg->admin_port);
    else
        snprintf(lg->admin_url, sizeof(lg->admin_url), "http://127.0.0.1:%d", lg->admin_port);
    if (lg->port) snprintf(lg->url, sizeof(lg->url), "http://127.0.0.1:%d", lg->port);
    if (lg->tls_port)
        snprintf(lg->tls_url, sizeof(lg->tls_url), "https://localhost:%d", lg->tls_port);
    char name[32];
    snprintf(name, sizeof(name), "lockgate-%d.conf", i);
    snprintf(lg->conf, sizeof(lg->conf), "%s", itest_path(name));
    snprintf(name, sizeof(name), "lockgate-%d.log", i);
    snprintf(lg->log, sizeof(lg->log), "%s", itest_path(name));
    snprintf(name, sizeof(name), "lockgate-%d.out", i);
    snprintf(lg->out, sizeof(lg->out), "%s", itest_path(name));
    if ((o->tls || o->admin_tls) && IT->cert[0] == '\0') {
        snprintf(IT->cert, sizeof(IT->cert), "%s/cert.pem", IT->dir);
        snprintf(IT->key, sizeof(IT->key), "%s/key.pem", IT->dir);
        itest_cert_new(IT->cert, IT->key);
    }
    if (itest_config_write(lg->conf, o, lg) < 0) itest_fail("cannot write %s", lg->conf);
    itest_lg_spawn(i);
    return i;
}

ITEST_FN int itest_lg_stop(int i)
{
    struct itest_lg *lg = &IT->lg[i];
    char name[32];
    snprintf(name, sizeof(name), "lockgate-%d", i);
    pid_t pid = itest_pid_load(name);
    int status = 0;
    if (pid > 0) {
        status = itest_terminate(pid, SIGTERM);
        itest_pid_save(name, 0);
        lg->pid = 0;
        itest_lg_sanitizer_check(i);
        char what[64];
        snprintf(what, sizeof(what), "lockgate instance %d", i);
        int wrap_bad = itest_wrap_check(pid, WIFEXITED(status) ? WEXITSTATUS(status) : -1, what);
        if (!wrap_bad && status != 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
            char *log = itest_lg_log(i);
            fprintf(stderr, "itest: lockgate instance %d log:\n%s\n", i, log);
            free(log);
            itest_report("lockgate instance %d exited with status %d after SIGTERM", i,
                         WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        }
    }
    lg->pid = 0;
    return status;
}

ITEST_FN void itest_lg_restart(int i)
{
    itest_lg_stop(i);
    itest_lg_spawn(i);
}

ITEST_FN int itest_lg_run(const char *const *args, char **out, char **err)
{
    char bin[PATH_MAX];
    snprintf(bin, sizeof(bin), "%s/lockgate", IT->build);
    if (access(bin, X_OK) != 0) ck_abort_msg("%s is missing: build it first", bin);
    char *argv[64];
    int n = 0;
    argv[n++] = bin;
    for (int i = 0; args[i] != NULL && n < 63; i++) argv[n++] = (char *)args[i];
    argv[n] = NULL;
    char *wrapped[ITEST_WRAP_MAX + 64];
    itest_wrap_argv(argv, wrapped, ITEST_WRAP_MAX + 64);
    pid_t pid = 0;
    char *e = NULL;
    int rc = itest_run_pid(wrapped, NULL, out, &e, &pid);
    if (itest_error_summary(e)) {
        fprintf(stderr, "itest: lockgate (pid %d) stderr:\n%s\n", (int)pid, e);
        itest_report("lockgate (pid %d): the wrapper found errors", (int)pid);
    }
    itest_wrap_check(pid, rc, "lockgate");
    if (err != NULL)
        *err = e;
    else
        free(e);
    return rc;
}

/* ---- CLI ---- */

ITEST_FN int itest_cli_argv(char **out, char **err, const char *const *args)
{
    char bin[PATH_MAX];
    snprintf(bin, sizeof(bin), "%s/lockgate-admin", IT->build);
    char *argv[64];
    int n = 0;
    argv[n++] = bin;
    for (int i = 0; args[i] != NULL && n < 63; i++) argv[n++] = (char *)args[i];
    argv[n] = NULL;
    char url[128], tok[PATH_MAX + 32];
    snprintf(url, sizeof(url), "LOCKGATE_ADMIN_URL=%s", IT->lg[0].admin_url);
    snprintf(tok, sizeof(tok), "LOCKGATE_ADMIN_TOKEN_FILE=%s", IT->token_file);
    const char *env[] = {url, tok, "LOCKGATE_ADMIN_TOKEN", NULL};
    if (access(bin, X_OK) != 0) ck_abort_msg("%s is missing: build it first", bin);
    return itest_run(argv, env, out, err);
}

ITEST_FN int itest_cli(char **out, char **err, ...)
{
    const char *args[64];
    int n = 0;
    va_list ap;
    va_start(ap, err);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 63) args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    return itest_cli_argv(out, err, args);
}

/* ---- start and stop ---- */

ITEST_FN void itest_start(const struct itest_opts *opts)
{
    struct itest_opts none = {0};
    const struct itest_opts *o = opts ? opts : &none;
    memset(IT, 0, sizeof(*IT));
    IT->owner = getpid();
    itest_wrap_init();
    const char *t = getenv("ITEST_TIMEOUT_S");
    IT->timeout_ms = itest_scaled_ms((t && atoi(t) > 0 ? atoi(t) : 10) * 1000);
    const char *b = getenv("LG_BUILD");
    if (b == NULL || b[0] == '\0') b = "build";
    char real[PATH_MAX];
    if (realpath(b, real) == NULL) ck_abort_msg("LG_BUILD=%s: %s", b, strerror(errno));
    if (strlen(real) >= sizeof(IT->build)) ck_abort_msg("LG_BUILD=%s: path too long", b);
    memcpy(IT->build, real, strlen(real) + 1);
    snprintf(IT->dir, sizeof(IT->dir), "/tmp/lockgate-itest-XXXXXX");
    if (mkdtemp(IT->dir) == NULL) ck_abort_msg("mkdtemp: %s", strerror(errno));
    curl_global_init(CURL_GLOBAL_ALL);
    signal(SIGPIPE, SIG_IGN);
    /* processes orphaned by a finished test (a restarted Redis) come back to
     * us, so the teardown can reap them */
    prctl(PR_SET_CHILD_SUBREAPER, 1);

    snprintf(IT->token, sizeof(IT->token), "%s", ITEST_TOKEN);
    snprintf(IT->token_file, sizeof(IT->token_file), "%s/admin.token", IT->dir);
    char tokline[128];
    snprintf(tokline, sizeof(tokline), "%s\n", IT->token);
    if (itest_file_write(IT->token_file, tokline) < 0) itest_fail("cannot write the token file");
    chmod(IT->token_file, 0600);

    int ports[2];
    itest_free_ports(ports, 2);
    IT->redis_port = ports[0];
    itest_redis_spawn();

    if (!o->no_upstream) {
        char bin[PATH_MAX], port[16];
        snprintf(bin, sizeof(bin), "%s/tests/integration/upstream_server", IT->build);
        if (access(bin, X_OK) != 0) itest_fail("%s is missing (build it, or set no_upstream)", bin);
        IT->upstream_port = ports[1];
        snprintf(port, sizeof(port), "%d", IT->upstream_port);
        snprintf(IT->upstream_record, sizeof(IT->upstream_record), "%s/upstream.record", IT->dir);
        snprintf(IT->upstream_data, sizeof(IT->upstream_data), "%s/upstream-data", IT->dir);
        if (mkdir(IT->upstream_data, 0755) < 0) itest_fail("mkdir %s", IT->upstream_data);
        char *const argv[] = {bin,      "--port",          port, "--record", IT->upstream_record,
                              "--data", IT->upstream_data, NULL};
        char out[PATH_MAX];
        snprintf(out, sizeof(out), "%s/upstream.out", IT->dir);
        IT->upstream_pid = itest_spawn(argv, out, itest_path("upstream.log"), NULL,
                                       ITEST_SPAWN_RECORD | ITEST_SPAWN_PDEATH);
        int64_t end = itest_mono_ms() + IT->timeout_ms;
        while (1) {
            char *text = itest_file_read(out);
            int ready = strstr(text, "ready\n") != NULL;
            free(text);
            if (ready) break;
            if (!itest_alive(IT->upstream_pid) || itest_mono_ms() > end)
                itest_fail("upstream_server did not print 'ready' on port %d", IT->upstream_port);
            itest_sleep_ms(10);
        }
    } else {
        /* a port nothing listens on: requests to the upstream are refused */
        IT->upstream_port = ports[1];
    }
    snprintf(IT->upstream_url, sizeof(IT->upstream_url), "http://127.0.0.1:%d", IT->upstream_port);
    itest_lg_start(o);
}

static int itest_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

ITEST_FN void itest_stop(void)
{
    if (IT->owner != getpid() || IT->dir[0] == '\0') return;
    /* every instance slot, also those (re)started inside tests */
    for (int i = 0; i < ITEST_MAX_LG; i++) {
        char name[32];
        snprintf(name, sizeof(name), "lockgate-%d.pid", i);
        if (access(itest_path(name), F_OK) == 0) itest_lg_stop(i);
    }
    if (IT->upstream_pid > 0) itest_terminate(IT->upstream_pid, SIGTERM);
    itest_terminate(itest_pid_load("redis"), SIGKILL);
    itest_kill_all();
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    const char *keep = getenv("ITEST_KEEP");
    if (keep != NULL && strcmp(keep, "1") == 0)
        fprintf(stderr, "itest: kept %s\n", IT->dir);
    else
        nftw(IT->dir, itest_rm, 16, FTW_DEPTH | FTW_PHYS);
    IT->dir[0] = '\0';
}

ITEST_FN int itest_exit_status(int nfailed)
{
    return nfailed == 0 && !IT->sanitizer_failed ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
