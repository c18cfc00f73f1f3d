/* Revocation tests (SPEC sections 9 and 10): a disabled key or an excluded
 * facility must never go on being served because an event was lost. Every
 * Redis connection of lockgate runs through a small TCP proxy in this file
 * that can delay, hold or silently discard what flows on one connection while
 * keeping it open, so the subscriber can go deaf, subscribe late, or lose a
 * race against the command connection. Each case has a TCase (and so a
 * lockgate, Redis and proxy) of its own. */
#include "itest.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>

#define RV_PREFIX          "lg:"
#define RV_LIST            "/v1/facilities" /* answered by lockgate itself: no upstream involved */
#define RV_BOUND_MS        10000 /* a revocation lost to a deaf subscriber: heartbeat bound */
#define RV_RELOAD_BOUND_MS 5000  /* an exclusion while unsubscribed: periodic reload bound */
#define RV_SUB_DELAY_MS    2000  /* the subscriber's late confirmation (case 2) */
#define RV_CMD_DELAY_MS    700   /* the command connection's slow replies (case 3) */

/* ---- the proxy ----
 *
 * A child process of the runner, relaying every accepted connection to the
 * real Redis with poll(). What it sees and what the tests ask of it live in
 * shared memory mapped before the fork, so the forked test processes read and
 * steer it directly. It tells the connections apart by what lockgate sends:
 * SUBSCRIBE marks the subscriber, a PUBLISH to the heartbeat channel marks the
 * worker's command connection; everything else (the admin API's) is left as
 * it is. */

#define PX_MAX_CONNS 4096 /* connections recorded over one TCase */
#define PX_MAX_PAIRS 64   /* open at once */
#define PX_READ      16384
#define PX_QUEUE_MAX (1 << 22) /* per direction, before reading stops */
#define PX_WATCH_MAX 96
#define PX_TICK_MS   5 /* how soon a new control takes effect */

#define PX_LOAD(x)     __atomic_load_n(&(x), __ATOMIC_SEQ_CST)
#define PX_STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_SEQ_CST)
#define PX_ADD(x, v)   __atomic_add_fetch(&(x), (v), __ATOMIC_SEQ_CST)

enum px_role { PX_ROLE_UNKNOWN, PX_ROLE_SUB, PX_ROLE_CMD };
enum px_closer { PX_OPEN, PX_BY_CLIENT, PX_BY_REDIS, PX_BY_PROXY };

/* One relayed connection. "up" is lockgate -> Redis, "down" Redis -> lockgate. */
struct px_conn {
    /* written by the proxy */
    int role;
    int closed_by;
    int64_t opened_ms, closed_ms;
    int64_t up_bytes, down_fwd, down_dropped;
    int64_t watch_up_ms, watch_down_ms; /* first sight of the watch strings; 0: none */
    /* written by the tests (and by the proxy when it spots a subscriber) */
    int delay_up_ms, delay_down_ms; /* every byte waits this long */
    int hold_up, hold_down;         /* bytes wait until released */
    int drop_down;                  /* Redis's bytes are discarded, the TCP connection stays */
    int kill;                       /* close both sides */
};

struct px_shared {
    pid_t pid;
    int port;
    int nconns;
    int overflow;
    int refused; /* subscriber connections closed under sub_refuse */
    /* applied to each connection when it is identified as a subscriber */
    int sub_refuse, sub_hold_up, sub_delay_down_ms;
    /* watched strings: the time of their first sight per connection */
    int watch_gen;
    char watch_up[PX_WATCH_MAX], watch_down[PX_WATCH_MAX];
    struct px_conn conn[PX_MAX_CONNS];
};

static struct px_shared *PX;

/* The proxy's own state (in its process only). */
struct px_chunk {
    struct px_chunk *next;
    int64_t due;
    size_t len, off;
    char data[];
};

struct px_scan {
    char tail[PX_WATCH_MAX]; /* the last bytes seen, so a split needle is found */
    size_t len;
};

struct px_dir {
    struct px_chunk *head, *tail;
    size_t queued;
    struct px_scan scan;
};

struct px_pair {
    bool used;
    int slot;
    int cfd, rfd;
    struct px_dir up, down;
};

/* Which of NEEDLES occur in what came before (its tail) followed by DATA. */
static void px_scan(struct px_scan *s, const char *data, size_t n, const char *const *needles,
                    int nn, bool *hit)
{
    for (int i = 0; i < nn; i++) hit[i] = false;
    size_t total = s->len + n;
    char *all = malloc(total);
    if (all == NULL) return;
    memcpy(all, s->tail, s->len);
    memcpy(all + s->len, data, n);
    for (int i = 0; i < nn; i++)
        hit[i] =
            needles[i][0] != '\0' && memmem(all, total, needles[i], strlen(needles[i])) != NULL;
    size_t keep = total < PX_WATCH_MAX ? total : PX_WATCH_MAX;
    memcpy(s->tail, all + total - keep, keep);
    s->len = keep;
    free(all);
}

static int px_enqueue(struct px_dir *d, const char *data, size_t n, int64_t due)
{
    struct px_chunk *ch = malloc(sizeof(*ch) + n);
    if (ch == NULL) return -1;
    ch->next = NULL;
    ch->due = due;
    ch->len = n;
    ch->off = 0;
    memcpy(ch->data, data, n);
    if (d->tail != NULL)
        d->tail->next = ch;
    else
        d->head = ch;
    d->tail = ch;
    d->queued += n;
    return 0;
}

static void px_dir_clear(struct px_dir *d)
{
    while (d->head != NULL) {
        struct px_chunk *ch = d->head;
        d->head = ch->next;
        free(ch);
    }
    memset(d, 0, sizeof(*d));
}

static void px_close(struct px_pair *p, int by)
{
    struct px_conn *c = &PX->conn[p->slot];
    close(p->cfd);
    close(p->rfd);
    px_dir_clear(&p->up);
    px_dir_clear(&p->down);
    PX_STORE(c->closed_ms, itest_mono_ms());
    PX_STORE(c->closed_by, by);
    memset(p, 0, sizeof(*p));
}

/* Writes what is due in D to FD unless held; WATCH (down only) is looked for
 * in what was handed over. 0, or -1 when FD failed. */
static int px_flush(struct px_dir *d, int fd, bool held, int64_t now, struct px_conn *c,
                    const char *watch)
{
    while (d->head != NULL && !held && d->head->due <= now) {
        struct px_chunk *ch = d->head;
        ssize_t n = send(fd, ch->data + ch->off, ch->len - ch->off, MSG_NOSIGNAL);
        if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
        ch->off += (size_t)n;
        if (watch != NULL) PX_ADD(c->down_fwd, (int64_t)n);
        if (ch->off < ch->len) return 0;
        if (watch != NULL) {
            bool hit;
            px_scan(&d->scan, ch->data, ch->len, &watch, 1, &hit);
            if (hit && PX_LOAD(c->watch_down_ms) == 0) PX_STORE(c->watch_down_ms, now);
        }
        d->head = ch->next;
        if (d->head == NULL) d->tail = NULL;
        d->queued -= ch->len;
        free(ch);
    }
    return 0;
}

/* Poll interest of the writing side of D, and how long until its next chunk is due. */
static void px_want(const struct px_dir *d, bool held, int64_t now, short *events, int *timeout)
{
    if (d->head == NULL || held) return;
    if (d->head->due <= now) {
        *events |= POLLOUT;
    } else if (d->head->due - now < *timeout) {
        *timeout = (int)(d->head->due - now);
    }
}

static void px_from_client(struct px_pair *p, char *buf, const char *watch_up, int64_t now)
{
    ssize_t n = recv(p->cfd, buf, PX_READ, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) {
        px_close(p, PX_BY_CLIENT);
        return;
    }
    struct px_conn *c = &PX->conn[p->slot];
    const char *needles[] = {"SUBSCRIBE", "heartbeat:", watch_up};
    bool hit[3];
    px_scan(&p->up.scan, buf, (size_t)n, needles, 3, hit);
    if (PX_LOAD(c->role) == PX_ROLE_UNKNOWN && hit[0]) {
        /* the subscriber's first bytes: the policy applies before they move on */
        PX_STORE(c->role, PX_ROLE_SUB);
        if (PX_LOAD(PX->sub_refuse)) {
            PX_ADD(PX->refused, 1);
            px_close(p, PX_BY_PROXY);
            return;
        }
        PX_STORE(c->hold_up, PX_LOAD(PX->sub_hold_up));
        PX_STORE(c->delay_down_ms, PX_LOAD(PX->sub_delay_down_ms));
    } else if (PX_LOAD(c->role) == PX_ROLE_UNKNOWN && hit[1]) {
        PX_STORE(c->role, PX_ROLE_CMD);
    }
    if (hit[2] && PX_LOAD(c->watch_up_ms) == 0) PX_STORE(c->watch_up_ms, now);
    PX_ADD(c->up_bytes, (int64_t)n);
    if (px_enqueue(&p->up, buf, (size_t)n, now + PX_LOAD(c->delay_up_ms)) < 0)
        px_close(p, PX_BY_PROXY);
}

static void px_from_redis(struct px_pair *p, char *buf, int64_t now)
{
    ssize_t n = recv(p->rfd, buf, PX_READ, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) {
        px_close(p, PX_BY_REDIS);
        return;
    }
    struct px_conn *c = &PX->conn[p->slot];
    if (PX_LOAD(c->drop_down)) {
        PX_ADD(c->down_dropped, (int64_t)n);
        return;
    }
    if (px_enqueue(&p->down, buf, (size_t)n, now + PX_LOAD(c->delay_down_ms)) < 0)
        px_close(p, PX_BY_PROXY);
}

static void px_accept(int lfd, struct px_pair *pairs, int redis_port)
{
    int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0) return;
    struct px_pair *p = NULL;
    for (int i = 0; i < PX_MAX_PAIRS && p == NULL; i++)
        if (!pairs[i].used) p = &pairs[i];
    int slot = PX_LOAD(PX->nconns);
    if (p == NULL || slot >= PX_MAX_CONNS) {
        PX_STORE(PX->overflow, 1);
        close(cfd);
        return;
    }
    int rfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)redis_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (rfd < 0 || connect(rfd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        if (rfd >= 0) close(rfd);
        close(cfd); /* lockgate sees Redis unreachable and retries */
        return;
    }
    fcntl(rfd, F_SETFL, fcntl(rfd, F_GETFL) | O_NONBLOCK);
    int one = 1;
    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(rfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    memset(p, 0, sizeof(*p));
    p->used = true;
    p->slot = slot;
    p->cfd = cfd;
    p->rfd = rfd;
    PX_STORE(PX->conn[slot].opened_ms, itest_mono_ms());
    PX_STORE(PX->nconns, slot + 1);
}

static void __attribute__((noreturn)) px_serve(int lfd, int redis_port)
{
    static struct px_pair pairs[PX_MAX_PAIRS];
    static char buf[PX_READ];
    char watch_up[PX_WATCH_MAX] = "", watch_down[PX_WATCH_MAX] = "";
    int gen = 0;
    struct pollfd fds[1 + 2 * PX_MAX_PAIRS];
    int owner[1 + 2 * PX_MAX_PAIRS]; /* pair index * 2, + 1 for the Redis side */
    for (;;) {
        int g = PX_LOAD(PX->watch_gen);
        if (g != gen) {
            memcpy(watch_up, PX->watch_up, sizeof(watch_up));
            memcpy(watch_down, PX->watch_down, sizeof(watch_down));
            watch_up[PX_WATCH_MAX - 1] = watch_down[PX_WATCH_MAX - 1] = '\0';
            gen = g;
        }
        int64_t now = itest_mono_ms();
        int timeout = PX_TICK_MS, nfds = 0;
        fds[nfds].fd = lfd;
        fds[nfds].events = POLLIN;
        owner[nfds++] = -1;
        for (int i = 0; i < PX_MAX_PAIRS; i++) {
            struct px_pair *p = &pairs[i];
            if (!p->used) continue;
            struct px_conn *c = &PX->conn[p->slot];
            if (PX_LOAD(c->kill)) {
                px_close(p, PX_BY_PROXY);
                continue;
            }
            bool hold_up = PX_LOAD(c->hold_up) != 0, hold_down = PX_LOAD(c->hold_down) != 0;
            if (px_flush(&p->up, p->rfd, hold_up, now, c, NULL) < 0) {
                px_close(p, PX_BY_REDIS);
                continue;
            }
            if (px_flush(&p->down, p->cfd, hold_down, now, c, watch_down) < 0) {
                px_close(p, PX_BY_CLIENT);
                continue;
            }
            short cev = p->up.queued < PX_QUEUE_MAX ? POLLIN : 0;
            short rev = p->down.queued < PX_QUEUE_MAX ? POLLIN : 0;
            px_want(&p->up, hold_up, now, &rev, &timeout);
            px_want(&p->down, hold_down, now, &cev, &timeout);
            fds[nfds].fd = p->cfd;
            fds[nfds].events = cev;
            owner[nfds++] = 2 * i;
            fds[nfds].fd = p->rfd;
            fds[nfds].events = rev;
            owner[nfds++] = 2 * i + 1;
        }
        if (poll(fds, (nfds_t)nfds, timeout) < 0) continue;
        now = itest_mono_ms();
        for (int k = 1; k < nfds; k++) {
            if (!(fds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            struct px_pair *p = &pairs[owner[k] / 2];
            if (!p->used) continue; /* closed from its other side this round */
            if (owner[k] % 2 == 0)
                px_from_client(p, buf, watch_up, now);
            else
                px_from_redis(p, buf, now);
        }
        if (fds[0].revents & POLLIN) px_accept(lfd, pairs, redis_port);
    }
}

/* Maps the shared state, binds a loopback port and forks the proxy into a
 * process group of its own, listed for the harness's teardown. */
static void px_start(void)
{
    void *m = mmap(NULL, sizeof(*PX), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) itest_fail("mmap: %s", strerror(errno));
    PX = m;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof(a);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 64) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) < 0)
        itest_fail("proxy socket: %s", strerror(errno));
    PX->port = ntohs(a.sin_port);
    int redis_port = IT->redis_port;
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) itest_fail("fork: %s", strerror(errno));
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(0);
        signal(SIGPIPE, SIG_IGN);
        px_serve(lfd, redis_port);
    }
    setpgid(pid, pid);
    close(lfd);
    PX->pid = pid;
    FILE *f = fopen(itest_path("pids"), "a");
    if (f != NULL) {
        fprintf(f, "%d\n", (int)pid);
        fclose(f);
    }
}

/* After itest_stop, which kills (and usually reaps) every listed group. */
static void px_stop(void)
{
    if (PX == NULL) return;
    pid_t pid = PX->pid;
    if (pid > 0 && waitpid(pid, NULL, WNOHANG) == 0) {
        kill(-pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    munmap(PX, sizeof(*PX));
    PX = NULL;
}

/* The newest open connection with ROLE recorded after index AFTER, or -1. */
static int px_find(int role, int after)
{
    for (int i = PX_LOAD(PX->nconns) - 1; i > after; i--)
        if (PX_LOAD(PX->conn[i].role) == role && PX_LOAD(PX->conn[i].closed_by) == PX_OPEN)
            return i;
    return -1;
}

static int px_wait_conn(int role, int after, const char *what)
{
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    for (;;) {
        int i = px_find(role, after);
        if (i >= 0) return i;
        ck_assert_msg(itest_mono_ms() < end, "timed out after %d ms waiting for %s", IT->timeout_ms,
                      what);
        itest_sleep_ms(5);
    }
}

static void px_watch(const char *up, const char *down)
{
    snprintf(PX->watch_up, sizeof(PX->watch_up), "%s", up);
    snprintf(PX->watch_down, sizeof(PX->watch_down), "%s", down);
    PX_ADD(PX->watch_gen, 1);
    itest_sleep_ms(3 * PX_TICK_MS); /* the proxy has picked them up */
}

/* ---- Redis, seen directly ---- */

static long long rv_numsub(redisContext *c)
{
    redisReply *r = itest_redis_cmd(c, "PUBSUB NUMSUB %sevents", RV_PREFIX);
    long long n = -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_INTEGER)
        n = r->element[1]->integer;
    freeReplyObject(r);
    return n;
}

static void rv_wait_numsub(redisContext *c, long long want)
{
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    long long n;
    while ((n = rv_numsub(c)) != want) {
        ck_assert_msg(itest_mono_ms() < end, "PUBSUB NUMSUB %sevents stayed %lld, expected %lld",
                      RV_PREFIX, n, want);
        itest_sleep_ms(5);
    }
}

/* Drops lockgate's subscriber connection on the Redis side. */
static void rv_kill_subscriber(redisContext *c)
{
    redisReply *r = itest_redis_cmd(c, "CLIENT KILL TYPE pubsub");
    ck_assert_msg(r->type == REDIS_REPLY_INTEGER && r->integer >= 1,
                  "CLIENT KILL TYPE pubsub killed no client");
    freeReplyObject(r);
}

/* ---- requests ---- */

struct rv_cred {
    char key[64];
    char secret[64];
};

static int64_t rv_get(const char *path, const struct rv_cred *k, struct itest_resp *resp)
{
    char url[2048], plain[160], auth[256];
    unsigned char b64[220];
    snprintf(url, sizeof(url), "%s%s", IT->lg[0].url, path);
    int n = snprintf(plain, sizeof(plain), "%s:%s", k->key, k->secret);
    EVP_EncodeBlock(b64, (const unsigned char *)plain, n);
    snprintf(auth, sizeof(auth), "Authorization: Basic %s", (char *)b64);
    const char *headers[] = {auth, NULL};
    int64_t t0 = itest_mono_ms();
    itest_http("GET", url, headers, NULL, 0, NULL, resp);
    return itest_mono_ms() - t0;
}

static const char *rv_code(const struct itest_resp *r)
{
    static char code[64];
    json_t *doc = json_loads(r->body, 0, NULL);
    snprintf(code, sizeof(code), "%s", itest_json_str(json_object_get(doc, "error"), "code"));
    json_decref(doc);
    return code;
}

#define rv_expect(path, k, status, code) rv_expect_at(__LINE__, (path), (k), (status), (code))
static void rv_expect_at(int line, const char *path, const struct rv_cred *k, long status,
                         const char *code)
{
    struct itest_resp r;
    rv_get(path, k, &r);
    long got = r.status;
    char gotcode[64], body[256];
    snprintf(gotcode, sizeof(gotcode), "%s", rv_code(&r));
    snprintf(body, sizeof(body), "%s", r.body ? r.body : "");
    char err[CURL_ERROR_SIZE];
    memcpy(err, r.error, sizeof(err));
    itest_resp_free(&r);
    ck_assert_msg(got == status, "line %d: GET %s with %s: status %ld (%s), expected %ld; body: %s",
                  line, path, k->key, got, err, status, body);
    if (code != NULL)
        ck_assert_msg(strcmp(gotcode, code) == 0, "line %d: GET %s with %s: code %s, expected %s",
                      line, path, k->key, gotcode, code);
}

/* GETs PATH until it answers WANT with CODE, for at most BOUND_MS; returns the
 * elapsed milliseconds or -1, and counts the answers 200 seen before. */
static int64_t rv_poll(const char *path, const struct rv_cred *k, long want, const char *code,
                       int bound_ms, int *served)
{
    int64_t t0 = itest_mono_ms();
    *served = 0;
    for (;;) {
        struct itest_resp r;
        rv_get(path, k, &r);
        bool hit = r.status == want && (code == NULL || strcmp(rv_code(&r), code) == 0);
        if (r.status == 200 && !hit) (*served)++;
        itest_resp_free(&r);
        int64_t took = itest_mono_ms() - t0;
        if (hit) return took;
        if (took > bound_ms) return -1;
        itest_sleep_ms(20);
    }
}

/* One GET in a thread of its own, for a request that must be in flight while
 * the test acts. Bounded by the harness's HTTP timeout. */
struct rv_async {
    const char *path;
    const struct rv_cred *k;
    pthread_t thread;
    struct itest_resp resp;
    int64_t t0, t1;
};

static void *rv_async_run(void *arg)
{
    struct rv_async *a = arg;
    a->t0 = itest_mono_ms();
    rv_get(a->path, a->k, &a->resp);
    a->t1 = itest_mono_ms();
    return NULL;
}

/* ---- data through the admin API ---- */

static const char *rv_path(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *rv_path(const char *fmt, ...)
{
    static char bufs[8][512];
    static int next;
    char *b = bufs[next++ % 8];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, 512, fmt, ap);
    va_end(ap);
    return b;
}

static json_t *rv_admin(long want, const char *method, const char *path, const char *body)
{
    long st = 0;
    json_t *j = itest_admin(method, path, body, &st);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    ck_assert_msg(st == want, "%s %s -> %ld, expected %ld: %s", method, path, st, want,
                  text ? text : "(no body)");
    free(text);
    return j;
}

static void rv_account(char out[64]) { itest_account(out, NULL); }

static void rv_facility(char out[72], const char *acct) { itest_facility(out, acct, NULL, NULL); }

static void rv_key(struct rv_cred *k, const char *acct)
{
    itest_key(k->key, k->secret, acct, NULL);
}

static void rv_disable(const struct rv_cred *k)
{
    json_decref(rv_admin(200, "POST", rv_path("/admin/v1/keys/%s/disable", k->key), NULL));
}

static void rv_include(const char *fac, bool included)
{
    json_decref(rv_admin(200, "PATCH", rv_path("/admin/v1/facilities/%s", fac),
                         included ? "{\"included\":true}" : "{\"included\":false}"));
}

/* ---- fixtures ---- */

/* The harness starts lockgate on the real Redis; it is then restarted with
 * its Redis port pointing at the proxy, and waited for until its subscription
 * is confirmed through the proxy. */
static void rv_setup_with(int redis_timeout_ms)
{
    struct itest_opts o = {0};
    o.redis_timeout_ms = redis_timeout_ms;
    o.rate_per_sec = 1000; /* polling must not meet the rate limit */
    o.burst = 2000;
    o.auth_failures_per_min = 1000000; /* nor the throttle its refusals count toward */
    itest_start(&o);
    px_start();
    int real = IT->redis_port;
    IT->redis_port = PX->port;
    int rc = itest_config_write(IT->lg[0].conf, &IT->lg[0].opts, &IT->lg[0]);
    IT->redis_port = real;
    if (rc < 0) itest_fail("cannot rewrite %s", IT->lg[0].conf);
    itest_lg_restart(0);
    redisContext *c = itest_redis();
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    for (;;) {
        redisReply *r = redisCommand(c, "PUBSUB NUMSUB %sevents", RV_PREFIX);
        bool subscribed = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                          r->element[1]->type == REDIS_REPLY_INTEGER && r->element[1]->integer == 1;
        if (r != NULL) freeReplyObject(r);
        if (subscribed && px_find(PX_ROLE_SUB, -1) >= 0) break;
        if (itest_mono_ms() > end) {
            redisFree(c);
            itest_fail("lockgate did not subscribe through the proxy (port %d)", PX->port);
        }
        itest_sleep_ms(10);
    }
    redisFree(c);
}

static void rv_setup(void) { rv_setup_with(0); }

/* Command replies delayed by RV_CMD_DELAY_MS must stay below the deadline. */
static void rv_setup_slow_replies(void) { rv_setup_with(3000); }

static void rv_teardown(void)
{
    itest_stop();
    px_stop();
}

/* ---- 1. the subscriber goes deaf ---- */

/* Redis's bytes to the subscriber are discarded while its TCP connection
 * stays open: no event arrives, nothing looks broken. The worker's heartbeat
 * must notice and replace the subscription, which forgets the cached key. */
START_TEST(test_silent_subscriber)
{
    char acct[64], fac[72];
    struct rv_cred k, later;
    rv_account(acct);
    rv_facility(fac, acct);
    rv_key(&k, acct);
    rv_key(&later, acct);
    rv_expect(RV_LIST, &k, 200, NULL);
    rv_expect(RV_LIST, &k, 200, NULL); /* cached while the subscription is live */

    int sub = px_wait_conn(PX_ROLE_SUB, -1, "the subscriber connection");
    PX_STORE(PX->conn[sub].drop_down, 1);
    int64_t t0 = itest_mono_ms();
    rv_disable(&k);
    int served = 0;
    int64_t took = rv_poll(RV_LIST, &k, 403, "key_disabled", RV_BOUND_MS, &served);
    fprintf(
        stderr,
        "test_silent_subscriber: key refused %lld ms after the disable (%d answers 200 before)\n",
        (long long)took, served);
    ck_assert_msg(took >= 0,
                  "a key disabled while the subscriber was silent was still served %d ms later",
                  RV_BOUND_MS);
    for (int i = 0; i < 5; i++) rv_expect(RV_LIST, &k, 403, "key_disabled");

    /* lockgate gave up the deaf connection itself and subscribed again */
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    while (PX_LOAD(PX->conn[sub].closed_by) == PX_OPEN) {
        ck_assert_msg(itest_mono_ms() < end, "the silent subscriber connection was never closed");
        itest_sleep_ms(5);
    }
    ck_assert_msg(PX_LOAD(PX->conn[sub].closed_by) == PX_BY_CLIENT,
                  "the silent subscriber connection was closed by %d, not by lockgate",
                  PX_LOAD(PX->conn[sub].closed_by));
    ck_assert_msg(PX_LOAD(PX->conn[sub].down_dropped) > 0,
                  "the proxy discarded nothing: the subscriber was not actually silenced");
    fprintf(
        stderr,
        "test_silent_subscriber: silent connection closed by lockgate %lld ms after silencing\n",
        (long long)(PX_LOAD(PX->conn[sub].closed_ms) - t0));
    int fresh = px_wait_conn(PX_ROLE_SUB, sub, "a new subscriber connection");
    redisContext *rc = itest_redis();
    rv_wait_numsub(rc, 1);
    redisFree(rc);

    /* the new subscription carries events again: a cached key is revoked at once
     * (first served again: the facility table is reloaded after the new
     * subscription, 503 until then) */
    int other;
    ck_assert_msg(rv_poll(RV_LIST, &later, 200, NULL, IT->timeout_ms, &other) >= 0,
                  "the key was not served again after the new subscription");
    end = itest_mono_ms() + IT->timeout_ms;
    while (PX_LOAD(PX->conn[fresh].down_fwd) == 0) { /* its confirmation reached lockgate */
        ck_assert_msg(itest_mono_ms() < end, "the new subscription was never confirmed");
        itest_sleep_ms(5);
    }
    rv_expect(RV_LIST, &later, 200, NULL);
    rv_disable(&later);
    took = rv_poll(RV_LIST, &later, 403, "key_disabled", RV_BOUND_MS, &served);
    fprintf(stderr, "test_silent_subscriber: after resubscribing, a disable took %lld ms\n",
            (long long)took);
    ck_assert_msg(took >= 0, "after resubscribing, a disabled key was still served");
    for (int i = 0; i < 3; i++) rv_expect(RV_LIST, &k, 403, "key_disabled");
}
END_TEST

/* ---- 2. a subscription not yet confirmed ---- */

/* The subscriber is dropped; its replacement's SUBSCRIBE is held at the proxy
 * (Redis has no subscriber: the disable event is lost), then Redis's
 * confirmation is delayed. Until it arrives, keys must be read from Redis;
 * once it arrives, the cache starts over. */
START_TEST(test_unconfirmed_subscription)
{
    char acct[64], fac[72];
    struct rv_cred k, later;
    rv_account(acct);
    rv_facility(fac, acct);
    rv_key(&k, acct);
    rv_key(&later, acct);
    rv_expect(RV_LIST, &k, 200, NULL);
    rv_expect(RV_LIST, &k, 200, NULL);

    redisContext *rc = itest_redis();
    int old = px_wait_conn(PX_ROLE_SUB, -1, "the subscriber connection");
    PX_STORE(PX->sub_delay_down_ms, RV_SUB_DELAY_MS);
    PX_STORE(PX->sub_hold_up, 1);
    rv_kill_subscriber(rc);
    int sub = px_wait_conn(PX_ROLE_SUB, old, "lockgate's new subscriber connection");
    ck_assert_msg(PX_LOAD(PX->conn[sub].hold_up), "the new subscriber's SUBSCRIBE is not held");
    rv_wait_numsub(rc, 0);
    int64_t t0 = itest_mono_ms();

    /* the window: lockgate is connected, its SUBSCRIBE has not reached Redis */
    rv_expect(RV_LIST, &k, 200, NULL);
    rv_expect(RV_LIST, &k, 200, NULL);
    ck_assert_int_eq(rv_numsub(rc), 0);
    rv_disable(&k); /* its event reaches no gateway */
    ck_assert_msg(rv_numsub(rc) == 0, "the window closed before the disable was published");
    /* a key read in the window must not answer from cache */
    rv_expect(RV_LIST, &k, 403, "key_disabled");

    /* the SUBSCRIBE reaches Redis; its confirmation comes back late */
    PX_STORE(PX->sub_hold_up, 0);
    PX_STORE(PX->conn[sub].hold_up, 0);
    rv_wait_numsub(rc, 1);
    int between = 0;
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    while (PX_LOAD(PX->conn[sub].down_fwd) == 0) {
        ck_assert_msg(itest_mono_ms() < end,
                      "the subscription's confirmation never reached lockgate");
        rv_expect(RV_LIST, &k, 403, "key_disabled");
        between++;
        itest_sleep_ms(50);
    }
    fprintf(stderr,
            "test_unconfirmed_subscription: confirmation delivered %lld ms into the window; "
            "%d requests refused while subscribed but unconfirmed\n",
            (long long)(itest_mono_ms() - t0), between);
    PX_STORE(PX->conn[sub].delay_down_ms, 0);
    PX_STORE(PX->sub_delay_down_ms, 0);

    /* after the window: still refused, never from a stale cache */
    for (int i = 0; i < 5; i++) {
        rv_expect(RV_LIST, &k, 403, "key_disabled");
        itest_sleep_ms(20);
    }
    /* and the subscription is live: a cached key is revoked by its event */
    rv_expect(RV_LIST, &later, 200, NULL);
    rv_expect(RV_LIST, &later, 200, NULL);
    rv_disable(&later);
    int served = 0;
    int64_t took = rv_poll(RV_LIST, &later, 403, "key_disabled", RV_BOUND_MS, &served);
    fprintf(stderr, "test_unconfirmed_subscription: after the window, a disable took %lld ms\n",
            (long long)took);
    ck_assert_msg(took >= 0, "after the window, a disabled key was still served");
    redisFree(rc);
}
END_TEST

/* ---- 3. a key load overtaken by the disable event ---- */

/* K's first read is answered RV_CMD_DELAY_MS late on the command connection.
 * The disable is written as soon as the proxy has passed the read on to Redis
 * (so Redis read K while active), and its event reaches the subscriber long
 * before the read's reply. That reply is stale: whatever the request in
 * flight makes of it, no later request may be answered from it. */
START_TEST(test_key_load_overtaken)
{
    char acct[64], fac[72];
    struct rv_cred warm, k;
    rv_account(acct);
    rv_facility(fac, acct);
    rv_key(&warm, acct);
    rv_key(&k, acct);
    /* loads the key scripts into Redis, so K's read below is one EVALSHA */
    rv_expect(RV_LIST, &warm, 200, NULL);

    int cmd = px_wait_conn(PX_ROLE_CMD, -1, "the worker's command connection");
    int sub = px_wait_conn(PX_ROLE_SUB, -1, "the subscriber connection");
    px_watch(k.key, "key.disabled");
    PX_STORE(PX->conn[cmd].delay_down_ms, RV_CMD_DELAY_MS);
    struct rv_async a = {.path = RV_LIST, .k = &k};
    ck_assert_int_eq(pthread_create(&a.thread, NULL, rv_async_run, &a), 0);
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    while (PX_LOAD(PX->conn[cmd].watch_up_ms) == 0) {
        if (itest_mono_ms() > end) {
            pthread_join(a.thread, NULL);
            itest_resp_free(&a.resp);
            ck_abort_msg("lockgate never read key %s from Redis", k.key);
        }
        itest_sleep_ms(1);
    }
    int64_t t_read = PX_LOAD(PX->conn[cmd].watch_up_ms);
    rv_disable(&k);
    int64_t t_disabled = itest_mono_ms();
    pthread_join(a.thread, NULL);
    long first = a.resp.status;
    char first_code[64];
    snprintf(first_code, sizeof(first_code), "%s", rv_code(&a.resp));
    itest_resp_free(&a.resp);
    int64_t t_event = PX_LOAD(PX->conn[sub].watch_down_ms);
    fprintf(stderr,
            "test_key_load_overtaken: read sent at 0, disabled at %lld ms, event handed to "
            "lockgate at %lld ms, read's reply due at %d ms; in-flight request answered %ld %s "
            "after %lld ms%s\n",
            (long long)(t_disabled - t_read), t_event ? (long long)(t_event - t_read) : -1LL,
            RV_CMD_DELAY_MS, first, first_code[0] ? first_code : "-", (long long)(a.t1 - a.t0),
            t_event != 0 && t_event - t_read < RV_CMD_DELAY_MS ? ""
                                                               : " (the race was not exercised)");
    /* otherwise this test shows nothing: the event must overtake the read */
    ck_assert_msg(t_event != 0 && t_event - t_read < RV_CMD_DELAY_MS,
                  "the disable's event did not overtake the key read");
    /* The in-flight request may use the read made before the disable. */
    ck_assert_msg(first == 200 || (first == 403 && strcmp(first_code, "key_disabled") == 0),
                  "the in-flight request answered %ld %s", first, first_code);

    PX_STORE(PX->conn[cmd].delay_down_ms, 0);
    for (int i = 0; i < 5; i++) {
        rv_expect(RV_LIST, &k, 403, "key_disabled");
        itest_sleep_ms(20);
    }
}
END_TEST

/* ---- 4. a malformed event ---- */

/* Makes K's answer come from the worker's cache: K is used while active,
 * then disabled in Redis behind lockgate's back (no event) and must still be
 * served. Retried in case a late event of K's own creation dropped it. */
static void rv_cache_key(redisContext *rc, const struct rv_cred *k)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        freeReplyObject(itest_redis_cmd(rc, "HSET %skey:%s status active", RV_PREFIX, k->key));
        rv_expect(RV_LIST, k, 200, NULL);
        rv_expect(RV_LIST, k, 200, NULL);
        freeReplyObject(itest_redis_cmd(rc, "HSET %skey:%s status disabled", RV_PREFIX, k->key));
        struct itest_resp r;
        rv_get(RV_LIST, k, &r);
        long st = r.status;
        itest_resp_free(&r);
        if (st == 200) return;
        itest_sleep_ms(100);
    }
    ck_abort_msg("key %s is never answered from the cache: a flush cannot be observed", k->key);
}

START_TEST(test_malformed_event)
{
    char acct[64], fac[72];
    struct rv_cred control;
    rv_account(acct);
    rv_facility(fac, acct);
    rv_key(&control, acct);
    rv_expect(RV_LIST, &control, 200, NULL);
    redisContext *rc = itest_redis();

    static char big[8192];
    memset(big, 'x', sizeof(big));
    char long_id[256];
    snprintf(long_id, sizeof(long_id), "{\"type\":\"key.disabled\",\"key_id\":\"lk_%0200d\"}", 7);
    static const char binary[] = {'\0', '\xff', '{', '\0', '"', 't', 'y', 'p', 'e', '"'};
    struct {
        const char *what, *data;
        size_t len;
    } payloads[] = {
        {"not JSON", "garbage", 0},
        {"cut JSON", "{\"type\":", 0},
        {"an array", "[1,2,3]", 0},
        {"no type", "{\"id\":\"1-0\",\"account_id\":\"acct_x\"}", 0},
        {"a type that is a number", "{\"type\":42}", 0},
        {"a key id of the wrong type", "{\"type\":\"key.disabled\",\"key_id\":42}", 0},
        {"a key id too long", long_id, 0},
        {"binary", binary, sizeof(binary)},
        {"oversized", big, sizeof(big)},
        {"empty", "", 0},
    }; /* len 0: the string's length */
    for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
        struct rv_cred k;
        rv_key(&k, acct);
        rv_cache_key(rc, &k);
        size_t len = payloads[i].len ? payloads[i].len : strlen(payloads[i].data);
        redisReply *r =
            itest_redis_cmd(rc, "PUBLISH %sevents %b", RV_PREFIX, payloads[i].data, len);
        ck_assert_msg(r->type == REDIS_REPLY_INTEGER && r->integer >= 1,
                      "the malformed event (%s) reached no subscriber", payloads[i].what);
        freeReplyObject(r);
        int served = 0;
        int64_t took = rv_poll(RV_LIST, &k, 403, "key_disabled", RV_RELOAD_BOUND_MS, &served);
        fprintf(stderr, "test_malformed_event: %s: cached key re-read after %lld ms\n",
                payloads[i].what, (long long)took);
        ck_assert_msg(took >= 0,
                      "after a malformed event (%s), a key disabled in Redis was still served "
                      "from cache (%d answers 200)",
                      payloads[i].what, served);
        /* and lockgate goes on serving */
        rv_expect(RV_LIST, &control, 200, NULL);
    }
    ck_assert_msg(IT->lg[0].pid > 0 && kill(IT->lg[0].pid, 0) == 0, "lockgate is gone");
    redisFree(rc);
}
END_TEST

/* ---- 5. an exclusion while unsubscribed ---- */

/* Excludes FAC while no subscriber can hear it and expects the facility to
 * vanish within the reload bound. */
static void rv_exclude_unheard(redisContext *rc, const char *fac, const struct rv_cred *k,
                               const char *what)
{
    const char *code = rv_path("/v1/facilities/%s/units/U001/unlock-code", fac);
    rv_expect(code, k, 200, NULL);
    ck_assert_int_eq(rv_numsub(rc), 0);
    rv_include(fac, false);
    ck_assert_msg(rv_numsub(rc) == 0, "%s: a subscriber got through, the event was heard", what);
    int served = 0;
    int64_t took = rv_poll(code, k, 404, "not_found", RV_RELOAD_BOUND_MS, &served);
    fprintf(stderr,
            "test_exclusion_unsubscribed: %s: excluded facility answered 404 after %lld ms "
            "(%d answers 200 before)\n",
            what, (long long)took, served);
    ck_assert_msg(took >= 0,
                  "%s: a facility excluded while unsubscribed was still served %d ms later", what,
                  RV_RELOAD_BOUND_MS);
    for (int i = 0; i < 3; i++) rv_expect(code, k, 404, "not_found");
}

/* The exclusion's event reaches no gateway, first while the subscriber is
 * connected but its SUBSCRIBE never reaches Redis, then while every new
 * subscriber connection is refused at the proxy. The facility table,
 * reloaded every second while unsubscribed, must hide the facility anyway. */
START_TEST(test_exclusion_unsubscribed)
{
    char acct[64], held[72], refused[72], other[72];
    struct rv_cred k;
    rv_account(acct);
    rv_facility(held, acct);
    rv_facility(refused, acct);
    rv_facility(other, acct);
    rv_key(&k, acct);
    const char *other_code = rv_path("/v1/facilities/%s/units/U001/unlock-code", other);
    rv_expect(other_code, &k, 200, NULL);

    /* connected, never subscribed */
    redisContext *rc = itest_redis();
    int old = px_wait_conn(PX_ROLE_SUB, -1, "the subscriber connection");
    PX_STORE(PX->sub_hold_up, 1);
    rv_kill_subscriber(rc);
    int sub = px_wait_conn(PX_ROLE_SUB, old, "lockgate's new subscriber connection");
    rv_wait_numsub(rc, 0);
    rv_exclude_unheard(rc, held, &k, "SUBSCRIBE held");
    rv_expect(other_code, &k, 200, NULL);

    /* every new subscriber connection refused */
    PX_STORE(PX->sub_refuse, 1);
    PX_STORE(PX->conn[sub].kill, 1);
    int64_t t_cut = itest_mono_ms();
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    while (PX_LOAD(PX->refused) == 0) { /* lockgate tried again and was refused */
        ck_assert_msg(itest_mono_ms() < end, "lockgate never tried to subscribe again");
        itest_sleep_ms(5);
    }
    rv_exclude_unheard(rc, refused, &k, "subscriber refused");
    rv_expect(other_code, &k, 200, NULL);
    int nrefused = PX_LOAD(PX->refused);
    fprintf(stderr, "test_exclusion_unsubscribed: %d subscriber connections refused in %lld ms\n",
            nrefused, (long long)(itest_mono_ms() - t_cut));

    /* subscribed again: the exclusions hold, and events flow */
    PX_STORE(PX->sub_refuse, 0);
    PX_STORE(PX->sub_hold_up, 0);
    px_wait_conn(PX_ROLE_SUB, sub, "a new subscriber connection");
    rv_wait_numsub(rc, 1);
    const char *held_code = rv_path("/v1/facilities/%s/units/U001/unlock-code", held);
    const char *refused_code = rv_path("/v1/facilities/%s/units/U001/unlock-code", refused);
    rv_expect(held_code, &k, 404, "not_found");
    rv_expect(refused_code, &k, 404, "not_found");
    rv_include(held, true);
    int served = 0;
    ck_assert_msg(rv_poll(held_code, &k, 200, NULL, RV_RELOAD_BOUND_MS, &served) >= 0,
                  "a facility included again was not served");
    rv_expect(refused_code, &k, 404, "not_found");
    ck_assert_msg(!PX_LOAD(PX->overflow), "the proxy ran out of connection slots");
    redisFree(rc);
}
END_TEST

/* ---- 6. the subscription lost while Redis answers ---- */

/* A new account with a facility and a key on it, served once (so both are
 * cached): the route of one of the facility's units. */
static const char *rv_warm(char acct[64], char fac[72], struct rv_cred *k)
{
    rv_account(acct);
    rv_facility(fac, acct);
    rv_key(k, acct);
    const char *unit = rv_path("/v1/facilities/%s/units/U001", fac);
    rv_expect(unit, k, 200, NULL);
    return unit;
}

static void rv_redis_ok(redisContext *rc, const char *fmt, const char *arg)
{
    redisReply *r = itest_redis_cmd(rc, fmt, arg);
    ck_assert_msg(r->type != REDIS_REPLY_ERROR, "%s: %s", fmt, r->str);
    freeReplyObject(r);
}

static int rv_count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle)) n++;
    return n;
}

static int rv_refusals(void)
{
    char *log = itest_lg_log(0);
    int n = rv_count(log, "NOPERM");
    free(log);
    return n;
}

/* Lockgate's subscriber is killed and Redis refuses SUBSCRIBE to its user
 * from now on (an ACL change), while every other command goes on. Returns
 * once lockgate has been refused at least once. */
static void rv_refuse_subscribe(redisContext *rc)
{
    int before = rv_refusals();
    rv_redis_ok(rc, "ACL SETUSER %s -subscribe", "default");
    rv_kill_subscriber(rc);
    rv_wait_numsub(rc, 0);
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    while (rv_refusals() == before) {
        ck_assert_msg(itest_mono_ms() < end, "lockgate never tried to subscribe again");
        itest_sleep_ms(10);
    }
}

/* K is cached; the subscription is lost for good while Redis answers; K is
 * disabled (unheard); then Redis stalls. K must not be served from cache:
 * it was verified while subscribed, but Redis answered after the loss. */
START_TEST(test_disabled_unsubscribed)
{
    char acct[64], fac[72];
    struct rv_cred k;
    rv_warm(acct, fac, &k);
    rv_expect(RV_LIST, &k, 200, NULL);
    redisContext *rc = itest_redis();
    rv_refuse_subscribe(rc);
    rv_disable(&k); /* its event reaches no gateway */
    itest_redis_pause();
    for (int i = 0; i < 3; i++) rv_expect(RV_LIST, &k, 503, "store_unavailable");
    itest_redis_resume();
    int served = 0; /* once the command connection is back, from Redis */
    ck_assert_msg(rv_poll(RV_LIST, &k, 403, "key_disabled", RV_RELOAD_BOUND_MS, &served) >= 0 &&
                      served == 0,
                  "the key disabled while unsubscribed was served %d times", served);
    rv_redis_ok(rc, "ACL SETUSER %s +subscribe", "default");
    rv_wait_numsub(rc, 1);
    rv_expect(RV_LIST, &k, 403, "key_disabled");
    redisFree(rc);
}
END_TEST

/* The same for facilities: an exclusion written while unsubscribed is
 * never missed, in the list or on the facility's routes, and a facility
 * decision is not taken from the table once Redis stalls. */
START_TEST(test_excluded_unsubscribed)
{
    char acct[64], fac[72], other[72];
    struct rv_cred k;
    rv_account(acct);
    rv_facility(fac, acct);
    rv_facility(other, acct);
    rv_key(&k, acct);
    const char *unit = rv_path("/v1/facilities/%s/units/U001", fac);
    const char *other_unit = rv_path("/v1/facilities/%s/units/U001", other);
    rv_expect(unit, &k, 200, NULL);
    rv_expect(other_unit, &k, 200, NULL);
    redisContext *rc = itest_redis();
    rv_refuse_subscribe(rc);
    rv_include(fac, false); /* unheard */
    rv_expect(unit, &k, 404, "not_found");
    struct itest_resp r;
    rv_get(RV_LIST, &k, &r);
    ck_assert_msg(r.status == 200 && strstr(r.body, other) != NULL && strstr(r.body, fac) == NULL,
                  "the list after an unheard exclusion: %ld %s", r.status, r.body);
    itest_resp_free(&r);
    rv_expect(other_unit, &k, 200, NULL);
    rv_include(other, false);
    itest_redis_pause();
    rv_expect(other_unit, &k, 503, "store_unavailable");
    itest_redis_resume();
    int served = 0;
    ck_assert_msg(rv_poll(other_unit, &k, 404, "not_found", RV_RELOAD_BOUND_MS, &served) >= 0 &&
                      served == 0,
                  "the facility excluded while unsubscribed was served %d times", served);
    rv_redis_ok(rc, "ACL SETUSER %s +subscribe", "default");
    rv_wait_numsub(rc, 1);
    rv_expect(unit, &k, 404, "not_found");
    rv_include(fac, true);
    ck_assert_msg(rv_poll(unit, &k, 200, NULL, RV_RELOAD_BOUND_MS, &served) >= 0,
                  "a facility included again was not served");
    redisFree(rc);
}
END_TEST

/* ---- 7. a facility dropped while the command connection is down ---- */

/* The subscription stays, the command connection is cut and cannot come
 * back (Redis at maxclients), and an event says the facility changed: it
 * cannot be read, so it answers 404. Once the command connection is back the
 * table is reloaded and the facility served again. */
START_TEST(test_dropped_facility_reloaded)
{
    char acct[64], fac[72];
    struct rv_cred k;
    const char *unit = rv_warm(acct, fac, &k);
    redisContext *rc = itest_redis();
    int cmd = px_wait_conn(PX_ROLE_CMD, -1, "the worker's command connection");
    rv_redis_ok(rc, "CONFIG SET maxclients %s", "1");
    PX_STORE(PX->conn[cmd].kill, 1);
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    while (PX_LOAD(PX->conn[cmd].closed_by) == PX_OPEN) {
        ck_assert_msg(itest_mono_ms() < end, "the command connection was not cut");
        itest_sleep_ms(5);
    }
    itest_sleep_ms(100); /* lockgate has seen it go */
    char ev[256];
    snprintf(ev, sizeof(ev),
             "{\"type\":\"facility.updated\",\"account_id\":\"%s\","
             "\"facility_id\":\"%s\"}",
             acct, fac);
    redisReply *rep = itest_redis_cmd(rc, "PUBLISH %sevents %s", RV_PREFIX, ev);
    ck_assert_msg(rep->type == REDIS_REPLY_INTEGER && rep->integer == 1,
                  "the event reached no subscriber");
    freeReplyObject(rep);
    int served = 0;
    ck_assert_msg(rv_poll(unit, &k, 404, "not_found", 1000, &served) >= 0,
                  "a facility that could not be re-read is still served");
    itest_sleep_ms(500); /* past the reload retry, still without Redis */
    rv_redis_ok(rc, "CONFIG SET maxclients %s", "10000");
    int64_t took = rv_poll(unit, &k, 200, NULL, RV_RELOAD_BOUND_MS, &served);
    fprintf(stderr,
            "test_dropped_facility_reloaded: served again %lld ms after Redis took "
            "connections again\n",
            (long long)took);
    ck_assert_msg(took >= 0, "the facility stayed 404 after the command connection came back");
    redisFree(rc);
}
END_TEST

/* ---- 8. a facility load answered across the subscription's edges ---- */

/* A full load of the table is sent while subscribed and its reply held
 * RV_CMD_DELAY_MS; meanwhile the subscription drops, the facility is
 * excluded unheard, a request reads its key, and the subscription comes back
 * before the load's reply. That reply predates the exclusion: it must not
 * become the table, so the request is not served. */
START_TEST(test_load_across_edges)
{
    char acct[64], fac[72];
    struct rv_cred k;
    const char *unit = rv_warm(acct, fac, &k);
    redisContext *rc = itest_redis();
    int cmd = px_wait_conn(PX_ROLE_CMD, -1, "the worker's command connection");
    int old = px_wait_conn(PX_ROLE_SUB, -1, "the subscriber connection");
    px_watch(RV_PREFIX "facilities", "");
    PX_STORE(PX->conn[cmd].delay_down_ms, RV_CMD_DELAY_MS);
    /* a facility event without an id: the whole table is read again */
    redisReply *rep =
        itest_redis_cmd(rc, "PUBLISH %sevents {\"type\":\"facility.updated\"}", RV_PREFIX);
    freeReplyObject(rep);
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    while (PX_LOAD(PX->conn[cmd].watch_up_ms) == 0) {
        ck_assert_msg(itest_mono_ms() < end, "lockgate never reloaded its facilities");
        itest_sleep_ms(1);
    }
    int64_t t_load = PX_LOAD(PX->conn[cmd].watch_up_ms);
    PX_STORE(PX->sub_hold_up, 1);
    rv_kill_subscriber(rc);
    int sub = px_wait_conn(PX_ROLE_SUB, old, "lockgate's new subscriber connection");
    rv_wait_numsub(rc, 0);
    rv_include(fac, false); /* unheard */
    PX_STORE(PX->conn[cmd].watch_up_ms, 0);
    px_watch(k.key, "");
    struct rv_async a = {.path = unit, .k = &k};
    ck_assert_int_eq(pthread_create(&a.thread, NULL, rv_async_run, &a), 0);
    while (PX_LOAD(PX->conn[cmd].watch_up_ms) == 0 && itest_mono_ms() < end) itest_sleep_ms(1);
    PX_STORE(PX->sub_hold_up, 0);
    PX_STORE(PX->conn[sub].hold_up, 0);
    while (PX_LOAD(PX->conn[sub].down_fwd) == 0 && itest_mono_ms() < end) itest_sleep_ms(1);
    int64_t t_up = itest_mono_ms();
    pthread_join(a.thread, NULL);
    long first = a.resp.status;
    char first_code[64];
    snprintf(first_code, sizeof(first_code), "%s", rv_code(&a.resp));
    itest_resp_free(&a.resp);
    fprintf(stderr,
            "test_load_across_edges: load sent at 0, subscribed again at %lld ms, its reply due "
            "at %d ms; the request in between answered %ld %s\n",
            (long long)(t_up - t_load), RV_CMD_DELAY_MS, first, first_code[0] ? first_code : "-");
    ck_assert_msg(PX_LOAD(PX->conn[cmd].watch_up_ms) != 0 && t_up - t_load < RV_CMD_DELAY_MS,
                  "the subscription did not come back before the load's reply");
    ck_assert_msg(first != 200, "a facility excluded while unsubscribed was served from a load "
                                "sent before");
    PX_STORE(PX->conn[cmd].delay_down_ms, 0);
    int served = 0;
    ck_assert_msg(
        rv_poll(unit, &k, 404, "not_found", RV_RELOAD_BOUND_MS, &served) >= 0 && served == 0,
        "the excluded facility was served %d times after the subscription came back", served);
    redisFree(rc);
}
END_TEST

int main(void)
{
    const struct itest_case cases[] = {
        {"silent_subscriber", rv_setup, test_silent_subscriber},
        {"unconfirmed_subscription", rv_setup, test_unconfirmed_subscription},
        {"key_load_overtaken", rv_setup_slow_replies, test_key_load_overtaken},
        {"malformed_event", rv_setup, test_malformed_event},
        {"exclusion_unsubscribed", rv_setup, test_exclusion_unsubscribed},
        {"disabled_unsubscribed", rv_setup, test_disabled_unsubscribed},
        {"excluded_unsubscribed", rv_setup, test_excluded_unsubscribed},
        {"dropped_facility_reloaded", rv_setup, test_dropped_facility_reloaded},
        {"load_across_edges", rv_setup_slow_replies, test_load_across_edges},
    };
    return itest_run_cases("revocation", cases, sizeof(cases) / sizeof(cases[0]), rv_teardown);
}
