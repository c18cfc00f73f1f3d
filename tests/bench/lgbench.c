/* lgbench: the clients and probes of scripts/bench.sh that wrk, h2load and
 * curl cannot be: libcurl floor clients, revocation timing between two
 * instances, rate-limit accuracy, RSS per cached key and per idle
 * connection, and SSE fan-out. Loopback only; one thread; every loop is
 * bounded in time. Results are "name value" lines on stdout, problems
 * "error: ..." lines on stderr; the exit status is 0 whenever figures were
 * printed (a benchmark is not a test).
 *
 *   lgbench floor-easy  --port P --path PATH [--conns 32] [--seconds 3]
 *   lgbench floor-multi --port P --path PATH [--conns 32] [--seconds 3]
 *   lgbench revoke   --admin P --token FILE --account A --b P [--trials 200] [--path P]
 *   lgbench ratelimit --a P --b P --auth HEADER --rate R --burst B [--conns 64] [--seconds 4]
 *   lgbench keys     --admin P --token FILE --account A --port P --pid PID [--count 10000]
 *   lgbench idle     --port P --auth HEADER --pid PID [--count 10000] [--sources 50]
 *   lgbench sse      --port P --admin P --token FILE --facility F [--count 1000]
 *                    [--per-key 8] [--sources 8]
 *   lgbench paced    --port P --path PATH [--auth HEADER] [--rate 2000] [--conns 8]
 *                    [--seconds 5] [--warmup 1]
 * HEADER is a whole "Authorization: Basic ..." line; every port is on 127.0.0.1. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

/* ---- small things ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void warnx_(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void *xmalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (p == NULL) die("out of memory");
    return p;
}

static int g_argc;
static char **g_argv;

static const char *opt(const char *name, const char *def)
{
    for (int i = 2; i + 1 < g_argc; i++)
        if (g_argv[i][0] == '-' && g_argv[i][1] == '-' && strcmp(g_argv[i] + 2, name) == 0)
            return g_argv[i + 1];
    if (def == NULL) die("--%s is required", name);
    return def;
}

static long opt_long(const char *name, const char *def) { return strtol(opt(name, def), NULL, 10); }

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The Q quantile (0..1) of N sorted values, nearest rank. */
static double quantile(const double *v, size_t n, double q)
{
    if (n == 0) return NAN;
    size_t k = (size_t)ceil(q * (double)n);
    if (k < 1) k = 1;
    if (k > n) k = n;
    return v[k - 1];
}

static long rss_kib(long pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) return -1;
    long kib = -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0) kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static void base64(const char *in, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0, o = 0;
    for (; i + 2 < n; i += 3) {
        out[o++] = t[s[i] >> 2];
        out[o++] = t[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
        out[o++] = t[((s[i + 1] & 15) << 2) | (s[i + 2] >> 6)];
        out[o++] = t[s[i + 2] & 63];
    }
    if (i < n) {
        out[o++] = t[s[i] >> 2];
        if (i + 1 < n) {
            out[o++] = t[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
            out[o++] = t[(s[i + 1] & 15) << 2];
        } else {
            out[o++] = t[(s[i] & 3) << 4];
            out[o++] = '=';
        }
        out[o++] = '=';
    }
    out[o] = '\0';
}

/* "Authorization: Basic base64(KEY:SECRET)" into OUT (at least 512 bytes). */
static void basic_header(const char *key, const char *secret, char *out)
{
    char pair[256], b64[400];
    int n = snprintf(pair, sizeof(pair), "%s:%s", key, secret);
    if (n < 0 || (size_t)n >= sizeof(pair)) die("credentials too long");
    base64(pair, (size_t)n, b64);
    snprintf(out, 512, "Authorization: Basic %s", b64);
}

/* ---- sockets ---- */

/* A TCP connection to 127.0.0.1:PORT, from SRC (an IPv4 address) when set;
 * non-blocking when NONBLOCK (the connect may then still be in progress). */
static int tcp_connect(int port, const char *src, int nonblock)
{
    int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (src != NULL) {
#ifdef IP_BIND_ADDRESS_NO_PORT
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
#endif
        struct sockaddr_in sa = {.sin_family = AF_INET};
        inet_pton(AF_INET, src, &sa.sin_addr);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            close(fd);
            return -1;
        }
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Source address I of K (K at most 250): 127.0.0.2 .. 127.0.0.(K+1);
 * NULL (the kernel's choice, 127.0.0.1) when K is 0. */
static const char *source_addr(long i, long k, char *buf)
{
    if (k <= 0) return NULL;
    if (k > 250) k = 250;
    snprintf(buf, 20, "127.0.0.%ld", 2 + i % k);
    return buf;
}

/* ---- HTTP framing (the answers of lockgate, nginx and the admin API) ---- */

struct frame {
    int status;
    size_t head;  /* bytes of the head, blank line included */
    size_t total; /* bytes of the whole answer */
    int chunked;
};

/* 1: B[0..N) starts with a whole answer, described in F; 0: more is needed;
 * -1: not HTTP. B must have a NUL at B[N]. */
static int http_frame(const char *b, size_t n, struct frame *f)
{
    const char *end = memmem(b, n, "\r\n\r\n", 4);
    if (end == NULL) return n > 65536 ? -1 : 0;
    if (n < 12 || memcmp(b, "HTTP/1.", 7) != 0) return -1;
    f->status = atoi(b + 9);
    f->head = (size_t)(end - b) + 4;
    f->chunked = 0;
    long cl = 0;
    const char *p = memchr(b, '\n', f->head);
    while (p != NULL && p + 1 < b + f->head - 2) {
        p++;
        const char *eol = memchr(p, '\n', (size_t)(b + f->head - p));
        if (eol == NULL) break;
        size_t len = (size_t)(eol - p);
        if (len > 15 && strncasecmp(p, "content-length:", 15) == 0) cl = strtol(p + 15, NULL, 10);
        if (len > 18 && strncasecmp(p, "transfer-encoding:", 18) == 0 &&
            memmem(p, len, "chunked", 7) != NULL)
            f->chunked = 1;
        p = eol;
    }
    if (!f->chunked) {
        if (n - f->head < (size_t)cl) return 0;
        f->total = f->head + (size_t)cl;
        return 1;
    }
    size_t off = f->head;
    for (;;) {
        const char *le = memmem(b + off, n - off, "\r\n", 2);
        if (le == NULL) return 0;
        unsigned long sz = strtoul(b + off, NULL, 16);
        off = (size_t)(le - b) + 2;
        if (sz == 0) {
            if (n - off < 2) return 0; /* no trailers here */
            f->total = off + 2;
            return 1;
        }
        if (n - off < sz + 2) return 0;
        off += sz + 2;
    }
}

/* The body of a whole answer, de-chunked, malloc'd and NUL-terminated. */
static char *http_body(const char *b, const struct frame *f)
{
    char *out = xmalloc(f->total - f->head + 1);
    if (!f->chunked) {
        memcpy(out, b + f->head, f->total - f->head);
        out[f->total - f->head] = '\0';
        return out;
    }
    size_t off = f->head, o = 0;
    for (;;) {
        unsigned long sz = strtoul(b + off, NULL, 16);
        off = (size_t)((const char *)memmem(b + off, f->total - off, "\r\n", 2) - b) + 2;
        if (sz == 0) break;
        memcpy(out + o, b + off, sz);
        o += sz;
        off += sz + 2;
    }
    out[o] = '\0';
    return out;
}

/* A growing input buffer, always NUL-terminated. */
struct ibuf {
    char *b;
    size_t n, cap;
};

static char *ibuf_space(struct ibuf *in, size_t want)
{
    if (in->cap - in->n < want + 1) {
        size_t cap = in->cap ? in->cap : 4096;
        while (cap - in->n < want + 1) cap *= 2;
        in->b = realloc(in->b, cap);
        if (in->b == NULL) die("out of memory");
        in->cap = cap;
    }
    return in->b + in->n;
}

static void ibuf_consume(struct ibuf *in, size_t n)
{
    memmove(in->b, in->b + n, in->n - n);
    in->n -= n;
    in->b[in->n] = '\0';
}

/* Reads what the socket has (non-blocking or not). Returns bytes read, 0 at
 * EOF, -1 on error, -2 when a non-blocking socket has nothing. */
static ssize_t ibuf_read(struct ibuf *in, int fd)
{
    char *p = ibuf_space(in, 16384);
    ssize_t r = recv(fd, p, in->cap - in->n - 1, 0);
    if (r > 0) {
        in->n += (size_t)r;
        in->b[in->n] = '\0';
        return r;
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return -2;
    if (r < 0 && errno == EINTR) return -2;
    return r;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            poll(&pf, 1, 1000);
            continue;
        }
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* A blocking keep-alive client: one request, one whole answer. */
struct bconn {
    int fd;
    int port;
    struct ibuf in;
};

static int bconn_open(struct bconn *c, int port)
{
    memset(c, 0, sizeof(*c));
    c->port = port;
    c->fd = tcp_connect(port, NULL, 0);
    return c->fd < 0 ? -1 : 0;
}

/* Sends REQ and reads its answer: the status, or -1 when the connection
 * failed; *BODY (when BODY) is the de-chunked body, malloc'd. */
static int bconn_call(struct bconn *c, const char *req, size_t len, char **body)
{
    if (body) *body = NULL;
    if (send_all(c->fd, req, len) < 0) return -1;
    struct frame f;
    for (;;) {
        int r = c->in.n ? http_frame(c->in.b, c->in.n, &f) : 0;
        if (r < 0) return -1;
        if (r > 0) break;
        ssize_t got = ibuf_read(&c->in, c->fd);
        if (got == 0 || got == -1) return -1;
    }
    if (body) *body = http_body(c->in.b, &f);
    ibuf_consume(&c->in, f.total);
    return f.status;
}

/* An admin API call with a JSON body (or none): the status, *OUT the parsed
 * answer (owned by the caller) when it is JSON. */
static int admin_call(struct bconn *c, const char *token, const char *method, const char *path,
                      const char *json, json_t **out)
{
    char req[2048];
    size_t blen = json ? strlen(json) : 0;
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     method, path, c->port, token, blen, json ? json : "");
    if (n < 0 || (size_t)n >= sizeof(req)) die("admin request too long");
    char *body = NULL;
    int st = bconn_call(c, req, (size_t)n, &body);
    if (out) *out = body ? json_loads(body, 0, NULL) : NULL;
    free(body);
    return st;
}

static char *read_token(const char *file)
{
    FILE *f = fopen(file, "r");
    if (f == NULL) die("%s: %s", file, strerror(errno));
    char buf[512] = "";
    if (fgets(buf, sizeof(buf), f) == NULL) die("%s: empty", file);
    fclose(f);
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) buf[--n] = '\0';
    return strdup(buf);
}

/* Creates a key through the admin API (PATH, BODY): its id and secret. */
static int create_key(struct bconn *adm, const char *token, const char *path, const char *body,
                      char *key, char *secret)
{
    json_t *j = NULL;
    int st = admin_call(adm, token, "POST", path, body, &j);
    const char *k = json_string_value(json_object_get(j, "key_id"));
    const char *s = json_string_value(json_object_get(j, "secret"));
    int ok = st == 201 && k && s && strlen(k) < 128 && strlen(s) < 128;
    if (ok) {
        strcpy(key, k);
        strcpy(secret, s);
    }
    json_decref(j);
    return ok ? 0 : -1;
}

static size_t get_request(char *out, size_t cap, int port, const char *path, const char *auth)
{
    int n = snprintf(out, cap, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s%s\r\n", path, port,
                     auth ? auth : "", auth ? "\r\n" : "");
    if (n < 0 || (size_t)n >= cap) die("request too long");
    return (size_t)n;
}

/* ---- floor-easy: libcurl CONNECT_ONLY, curl_easy_send/curl_easy_recv ---- */

/* The request lockgate sends its upstream for the proxied path, prebuilt. */
static size_t upstream_request(char *out, size_t cap, int port, const char *path)
{
    int n = snprintf(out, cap,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                     "X-Request-Id: 2f1c0a7e9b3d4c5e8f6a7b8c9d0e1f2a\r\n"
                     "X-Forwarded-For: 127.0.0.1\r\n"
                     "X-Lockgate-Account: acct_BENCH00000000000000\r\n"
                     "X-Lockgate-Key: lk_BENCH000000000000000000000000\r\n\r\n",
                     path, port);
    if (n < 0 || (size_t)n >= cap) die("request too long");
    return (size_t)n;
}

struct econn {
    CURL *e;
    curl_socket_t fd;
    size_t sent;
    struct ibuf in;
};

static int mode_floor_easy(void)
{
    int port = (int)opt_long("port", NULL);
    const char *path = opt("path", NULL);
    long nconn = opt_long("conns", "32");
    double secs = strtod(opt("seconds", "3"), NULL);
    char url[128], req[1024];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    size_t rlen = upstream_request(req, sizeof(req), port, path);

    struct econn *c = xmalloc(sizeof(*c) * (size_t)nconn);
    int ep = epoll_create1(0);
    for (long i = 0; i < nconn; i++) {
        c[i].e = curl_easy_init();
        curl_easy_setopt(c[i].e, CURLOPT_URL, url);
        curl_easy_setopt(c[i].e, CURLOPT_CONNECT_ONLY, 1L);
        curl_easy_setopt(c[i].e, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(c[i].e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c[i].e, CURLOPT_PROXY, "");
        if (curl_easy_perform(c[i].e) != CURLE_OK) die("floor-easy: connect to port %d failed", port);
        if (curl_easy_getinfo(c[i].e, CURLINFO_ACTIVESOCKET, &c[i].fd) != CURLE_OK)
            die("floor-easy: no socket");
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &ev);
    }
    /* Requests are small: a send that does not go whole at once is retried
     * at the next turn of the loop. */
    long done = 0, bad = 0, counted = 0;
    double t0 = now_s(), tstart = t0 + 0.3, tend = tstart + secs;
    int measuring = 0;
    for (long i = 0; i < nconn; i++) c[i].sent = 0;
    struct epoll_event evs[256];
    for (;;) {
        double t = now_s();
        if (!measuring && t >= tstart) {
            measuring = 1;
            counted = done;
        }
        if (t >= tend) break;
        for (long i = 0; i < nconn; i++) {
            while (c[i].sent < rlen) {
                size_t n = 0;
                CURLcode rc = curl_easy_send(c[i].e, req + c[i].sent, rlen - c[i].sent, &n);
                if (rc == CURLE_AGAIN) break;
                if (rc != CURLE_OK) die("floor-easy: send failed");
                c[i].sent += n;
            }
        }
        int k = epoll_wait(ep, evs, 256, 100);
        for (int j = 0; j < k; j++) {
            struct econn *x = &c[evs[j].data.u64];
            for (;;) {
                char *p = ibuf_space(&x->in, 16384);
                size_t n = 0;
                CURLcode rc = curl_easy_recv(x->e, p, x->in.cap - x->in.n - 1, &n);
                if (rc == CURLE_AGAIN) break;
                if (rc != CURLE_OK || n == 0) die("floor-easy: the origin closed a connection");
                x->in.n += n;
                x->in.b[x->in.n] = '\0';
            }
            struct frame f;
            int r;
            while ((r = http_frame(x->in.b, x->in.n, &f)) > 0) {
                if (f.status != 200) bad++;
                done++;
                ibuf_consume(&x->in, f.total);
                x->sent = 0;
                while (x->sent < rlen) {
                    size_t n = 0;
                    CURLcode rc = curl_easy_send(x->e, req + x->sent, rlen - x->sent, &n);
                    if (rc == CURLE_AGAIN) break;
                    if (rc != CURLE_OK) die("floor-easy: send failed");
                    x->sent += n;
                }
            }
            if (r < 0) die("floor-easy: not HTTP");
        }
    }
    double el = now_s() - tstart;
    printf("requests %ld\nnon200 %ld\nseconds %.3f\nrps %.0f\n", done - counted, bad, el,
           (double)(done - counted) / el);
    for (long i = 0; i < nconn; i++) curl_easy_cleanup(c[i].e);
    return 0;
}

/* ---- floor-multi: the libcurl multi interface, one transfer per handle ---- */

static size_t discard(char *p, size_t sz, size_t n, void *u)
{
    (void)p;
    (void)u;
    return sz * n;
}

static int mode_floor_multi(void)
{
    int port = (int)opt_long("port", NULL);
    const char *path = opt("path", NULL);
    long nconn = opt_long("conns", "32");
    double secs = strtod(opt("seconds", "3"), NULL);
    char url[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "X-Request-Id: 2f1c0a7e9b3d4c5e8f6a7b8c9d0e1f2a");
    h = curl_slist_append(h, "X-Forwarded-For: 127.0.0.1");
    h = curl_slist_append(h, "X-Lockgate-Account: acct_BENCH00000000000000");
    h = curl_slist_append(h, "X-Lockgate-Key: lk_BENCH000000000000000000000000");
    h = curl_slist_append(h, "Accept:");
    h = curl_slist_append(h, "Expect:");
    CURLM *m = curl_multi_init();
    for (long i = 0; i < nconn; i++) {
        CURL *e = curl_easy_init();
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
        curl_easy_setopt(e, CURLOPT_PROXY, "");
        curl_multi_add_handle(m, e);
    }
    long done = 0, bad = 0, counted = 0;
    double tstart = now_s() + 0.3, tend = tstart + secs;
    int measuring = 0, running = 0;
    for (;;) {
        double t = now_s();
        if (!measuring && t >= tstart) {
            measuring = 1;
            counted = done;
        }
        if (t >= tend) break;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int q;
        while ((msg = curl_multi_info_read(m, &q)) != NULL) {
            if (msg->msg != CURLMSG_DONE) continue;
            CURL *e = msg->easy_handle;
            long code = 0;
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
            if (msg->data.result != CURLE_OK || code != 200) bad++;
            done++;
            curl_multi_remove_handle(m, e);
            curl_multi_add_handle(m, e);
        }
        curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    double el = now_s() - tstart;
    printf("requests %ld\nnon200 %ld\nseconds %.3f\nrps %.0f\n", done - counted, bad, el,
           (double)(done - counted) / el);
    return 0;
}

/* ---- revoke: disable through A, time until B refuses ---- */

static int mode_revoke(void)
{
    int aport = (int)opt_long("admin", NULL), bport = (int)opt_long("b", NULL);
    char *token = read_token(opt("token", NULL));
    const char *acct = opt("account", NULL);
    const char *path = opt("path", "/v1/facilities");
    long trials = opt_long("trials", "200");
    struct bconn adm, b;
    if (bconn_open(&adm, aport) < 0 || bconn_open(&b, bport) < 0) die("revoke: connect failed");
    char kpath[256], body[256], key[128], secret[128], auth[512], req[1024];
    snprintf(kpath, sizeof(kpath), "/admin/v1/accounts/%s/keys", acct);
    double *lat = xmalloc(sizeof(double) * (size_t)trials);
    double *alat = xmalloc(sizeof(double) * (size_t)trials);
    long nlat = 0, polls = 0, errors = 0;
    double poll_time = 0;
    for (long t = 0; t < trials; t++) {
        snprintf(body, sizeof(body),
                 "{\"name\":\"revocation %ld\",\"all_facilities\":true,"
                 "\"rate_per_sec\":100000,\"burst\":100000}",
                 t);
        if (create_key(&adm, token, kpath, body, key, secret) < 0) {
            warnx_("revoke: key creation failed");
            errors++;
            break;
        }
        basic_header(key, secret, auth);
        size_t rlen = get_request(req, sizeof(req), bport, path, auth);
        /* B knows the key: two answers from its cache's point of view. */
        int st = bconn_call(&b, req, rlen, NULL);
        if (st == 200) st = bconn_call(&b, req, rlen, NULL);
        if (st != 200) {
            warnx_("revoke: B answered %d before the disable", st);
            errors++;
            continue;
        }
        char dreq[512];
        int dn = snprintf(dreq, sizeof(dreq),
                          "POST /admin/v1/keys/%s/disable HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                          "Authorization: Bearer %s\r\nContent-Length: 0\r\n\r\n",
                          key, aport, token);
        double t0 = now_s(), tadm = -1, t1 = -1;
        if (send_all(adm.fd, dreq, (size_t)dn) < 0) die("revoke: admin connection lost");
        fcntl(adm.fd, F_SETFL, fcntl(adm.fd, F_GETFL) | O_NONBLOCK);
        while (now_s() - t0 < 2.0) {
            double ta = now_s();
            st = bconn_call(&b, req, rlen, NULL);
            polls++;
            double tb = now_s();
            poll_time += tb - ta;
            if (tadm < 0) {
                struct frame f;
                ssize_t got = ibuf_read(&adm.in, adm.fd);
                if (got == 0 || got == -1) die("revoke: admin connection lost");
                if (adm.in.n && http_frame(adm.in.b, adm.in.n, &f) > 0) {
                    tadm = tb;
                    if (f.status != 200 && f.status != 204) warnx_("revoke: disable answered %d", f.status);
                    ibuf_consume(&adm.in, f.total);
                }
            }
            if (st == 200) continue;
            if (st == 403) t1 = tb;
            else {
                warnx_("revoke: B answered %d while polling", st);
                errors++;
            }
            if (st < 0) { /* B closed the connection: a new one for the next trial */
                close(b.fd);
                free(b.in.b);
                if (bconn_open(&b, bport) < 0) die("revoke: reconnect to B failed");
            }
            break;
        }
        fcntl(adm.fd, F_SETFL, fcntl(adm.fd, F_GETFL) & ~O_NONBLOCK);
        if (tadm < 0) {
            int ast = bconn_call(&adm, "", 0, NULL); /* reads the answer still due */
            tadm = now_s();
            if (ast != 200 && ast != 204) warnx_("revoke: disable answered %d", ast);
        }
        if (t1 < 0) {
            if (st == 200) warnx_("revoke: B still served the key 2 s after the disable");
            errors++;
            continue;
        }
        lat[nlat] = (t1 - t0) * 1e3;
        alat[nlat] = (tadm - t0) * 1e3;
        nlat++;
    }
    qsort(lat, (size_t)nlat, sizeof(double), cmp_double);
    qsort(alat, (size_t)nlat, sizeof(double), cmp_double);
    printf("trials %ld\nmeasured %ld\nerrors %ld\n", trials, nlat, errors);
    printf("p50_ms %.3f\np99_ms %.3f\nmax_ms %.3f\nmin_ms %.3f\n", quantile(lat, (size_t)nlat, 0.5),
           quantile(lat, (size_t)nlat, 0.99), nlat ? lat[nlat - 1] : NAN, nlat ? lat[0] : NAN);
    printf("admin_p50_ms %.3f\npolls_per_trial %.1f\npoll_ms %.3f\n", quantile(alat, (size_t)nlat, 0.5),
           nlat ? (double)polls / (double)nlat : NAN, polls ? poll_time * 1e3 / (double)polls : NAN);
    return 0;
}

/* ---- non-blocking client connections ---- */

enum { C_CONNECTING, C_WAITING, C_IDLE, C_STREAM, C_DEAD };

struct nconn {
    int fd;
    int state;
    int inst;      /* ratelimit: which instance */
    int status;    /* the answer's (or stream's) status */
    const char *out;
    size_t out_len, out_off;
    struct ibuf in;
    double t_seen; /* sse: when the event came */
    char tail[64]; /* sse: the end of what came before, for a match across reads */
    size_t tail_n;
};

static void nconn_send(struct nconn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w > 0) {
            c->out_off += (size_t)w;
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTCONN)) return;
        c->state = C_DEAD;
        return;
    }
}

/* ---- ratelimit: one key hammered through two instances ---- */

static int mode_ratelimit(void)
{
    int ports[2] = {(int)opt_long("a", NULL), (int)opt_long("b", NULL)};
    const char *auth = opt("auth", NULL);
    double rate = strtod(opt("rate", NULL), NULL);
    long burst = opt_long("burst", NULL);
    long nconn = opt_long("conns", "64");
    double secs = strtod(opt("seconds", "4"), NULL);
    const char *path = opt("path", "/v1/facilities");
    static char reqs[2][1024];
    size_t rlen[2];
    for (int i = 0; i < 2; i++) rlen[i] = get_request(reqs[i], sizeof(reqs[i]), ports[i], path, auth);
    struct nconn *c = xmalloc(sizeof(*c) * (size_t)nconn);
    int ep = epoll_create1(0);
    for (long i = 0; i < nconn; i++) {
        c[i].inst = (int)(i % 2);
        c[i].fd = tcp_connect(ports[c[i].inst], NULL, 0);
        if (c[i].fd < 0) die("ratelimit: connect failed");
        fcntl(c[i].fd, F_SETFL, fcntl(c[i].fd, F_GETFL) | O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &ev);
    }
    long ok[2] = {0, 0}, limited[2] = {0, 0}, other[2] = {0, 0}, inflight = 0, dead = 0;
    double tfirst = now_s(), tend = tfirst + secs, tlast = tfirst;
    for (long i = 0; i < nconn; i++) {
        c[i].out = reqs[c[i].inst];
        c[i].out_len = rlen[c[i].inst];
        c[i].out_off = 0;
        c[i].state = C_WAITING;
        nconn_send(&c[i]);
        inflight++;
    }
    struct epoll_event evs[256];
    while (inflight > 0 && now_s() < tend + 3.0) {
        int k = epoll_wait(ep, evs, 256, 50);
        double t = now_s();
        for (int j = 0; j < k; j++) {
            struct nconn *x = &c[evs[j].data.u64];
            if (x->state != C_WAITING) continue;
            ssize_t got;
            while ((got = ibuf_read(&x->in, x->fd)) > 0) {}
            struct frame f;
            int r;
            while ((r = http_frame(x->in.b, x->in.n, &f)) > 0) {
                tlast = t;
                inflight--;
                if (f.status == 200) ok[x->inst]++;
                else if (f.status == 429) limited[x->inst]++;
                else other[x->inst]++;
                ibuf_consume(&x->in, f.total);
                if (t < tend) {
                    x->out_off = 0;
                    nconn_send(x);
                    inflight++;
                } else {
                    x->state = C_IDLE;
                }
            }
            if (r < 0 || got == 0 || got == -1 || x->state == C_DEAD) {
                if (x->state == C_WAITING) inflight--;
                x->state = C_DEAD;
                dead++;
                epoll_ctl(ep, EPOLL_CTL_DEL, x->fd, NULL);
            }
        }
    }
    double el = tlast - tfirst;
    long allowed = ok[0] + ok[1];
    long allowance = burst + (long)floor(rate * el);
    printf("seconds %.3f\nallowed %ld\nallowed_a %ld\nallowed_b %ld\nrate_limited %ld\nother %ld\n", el,
           allowed, ok[0], ok[1], limited[0] + limited[1], other[0] + other[1]);
    printf("closed %ld\nallowance %ld\nover_admissions %ld\nunder_admissions %ld\n", dead, allowance,
           allowed > allowance ? allowed - allowance : 0, allowed < allowance ? allowance - allowed : 0);
    return 0;
}

/* ---- keys: RSS per cached key ---- */

static int mode_keys(void)
{
    int aport = (int)opt_long("admin", NULL), port = (int)opt_long("port", NULL);
    char *token = read_token(opt("token", NULL));
    const char *acct = opt("account", NULL);
    long count = opt_long("count", "10000"), pid = opt_long("pid", NULL);
    const char *path = opt("path", "/v1/facilities");
    struct bconn adm, pub;
    if (bconn_open(&adm, aport) < 0 || bconn_open(&pub, port) < 0) die("keys: connect failed");
    char kpath[256], body[256];
    snprintf(kpath, sizeof(kpath), "/admin/v1/accounts/%s/keys", acct);
    char (*auths)[512] = xmalloc(sizeof(*auths) * (size_t)count);
    double t0 = now_s();
    long made = 0;
    for (long i = 0; i < count; i++) {
        char key[128], secret[128];
        snprintf(body, sizeof(body), "{\"name\":\"cached %ld\",\"all_facilities\":true}", i);
        if (create_key(&adm, token, kpath, body, key, secret) < 0) {
            warnx_("keys: creation %ld failed", i);
            break;
        }
        basic_header(key, secret, auths[made++]);
    }
    double t1 = now_s();
    sleep_s(0.5);
    long rss0 = rss_kib(pid);
    long ok = 0;
    char req[1024];
    for (long i = 0; i < made; i++) {
        size_t rlen = get_request(req, sizeof(req), port, path, auths[i]);
        char *answer = NULL;
        int st = bconn_call(&pub, req, rlen, &answer);
        if (st == 200) ok++;
        else warnx_("keys: a request answered %d: %.120s", st, answer ? answer : "");
        free(answer);
        if (st < 0) {
            close(pub.fd);
            free(pub.in.b);
            if (bconn_open(&pub, port) < 0) die("keys: reconnect failed");
        }
    }
    double t2 = now_s();
    sleep_s(0.5);
    long rss1 = rss_kib(pid);
    printf("keys %ld\ncreate_seconds %.2f\nanswered_200 %ld\nrequest_seconds %.2f\n", made, t1 - t0, ok,
           t2 - t1 - 0.5);
    printf("rss_before_kib %ld\nrss_after_kib %ld\nbytes_per_key %.0f\n", rss0, rss1,
           ok ? (double)(rss1 - rss0) * 1024.0 / (double)ok : NAN);
    return 0;
}

/* Opens COUNT connections (BATCH connecting at once, from SOURCES source
 * addresses), each sending C[i].out; returns when each has its answer head
 * (STREAM: the head is enough) or whole answer, or after TIMEOUT seconds. */
static long open_many(struct nconn *c, long count, int port, long sources, int stream, int ep,
                      double timeout)
{
    long next = 0, pending = 0, done = 0;
    const long batch = 256;
    double tstop = now_s() + timeout;
    struct epoll_event evs[512];
    while ((next < count || pending > 0) && now_s() < tstop) {
        while (next < count && pending < batch) {
            char src[20];
            struct nconn *x = &c[next];
            x->fd = tcp_connect(port, source_addr(next, sources, src), 1);
            if (x->fd < 0) {
                warnx_("connection %ld: %s", next, strerror(errno));
                x->state = C_DEAD;
                next++;
                continue;
            }
            x->state = C_CONNECTING;
            struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.u64 = (uint64_t)next};
            epoll_ctl(ep, EPOLL_CTL_ADD, x->fd, &ev);
            next++;
            pending++;
        }
        int k = epoll_wait(ep, evs, 512, 50);
        for (int j = 0; j < k; j++) {
            struct nconn *x = &c[evs[j].data.u64];
            if (x->state == C_CONNECTING && (evs[j].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
                int err = 0;
                socklen_t l = sizeof(err);
                getsockopt(x->fd, SOL_SOCKET, SO_ERROR, &err, &l);
                if (err != 0) {
                    x->state = C_DEAD;
                } else {
                    x->state = C_WAITING;
                    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = evs[j].data.u64};
                    epoll_ctl(ep, EPOLL_CTL_MOD, x->fd, &ev);
                    nconn_send(x);
                }
            } else if (x->state == C_WAITING && (evs[j].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
                ssize_t got;
                while ((got = ibuf_read(&x->in, x->fd)) > 0) {}
                struct frame f;
                int r = http_frame(x->in.b, x->in.n, &f);
                if (r == 0 && stream && memmem(x->in.b, x->in.n, "\r\n\r\n", 4)) {
                    r = 1;
                    f.status = atoi(x->in.b + 9);
                    f.total = (size_t)((char *)memmem(x->in.b, x->in.n, "\r\n\r\n", 4) - x->in.b) + 4;
                }
                if (r > 0) {
                    x->status = f.status;
                    ibuf_consume(&x->in, f.total);
                    x->state = stream && f.status == 200 ? C_STREAM : C_IDLE;
                    if (stream && f.status != 200) x->state = C_DEAD;
                    pending--;
                    done++;
                    /* out of this loop's set: the caller watches it if it wants */
                    if (x->state != C_DEAD) epoll_ctl(ep, EPOLL_CTL_DEL, x->fd, NULL);
                } else if (r < 0 || got == 0 || got == -1) {
                    x->state = C_DEAD;
                }
            }
            if (x->state == C_DEAD && x->fd >= 0) {
                epoll_ctl(ep, EPOLL_CTL_DEL, x->fd, NULL);
                close(x->fd);
                x->fd = -1;
                if (x->status == 0) pending--; /* a refused stream was counted as answered */
            }
        }
    }
    return done;
}

/* ---- idle: RSS per idle keep-alive connection ---- */

static int mode_idle(void)
{
    int port = (int)opt_long("port", NULL);
    const char *auth = opt("auth", NULL);
    long count = opt_long("count", "10000"), pid = opt_long("pid", NULL);
    long sources = opt_long("sources", "50");
    const char *path = opt("path", "/v1/facilities");
    raise_nofile();
    static char req[1024];
    size_t rlen = get_request(req, sizeof(req), port, path, auth);
    struct nconn *c = xmalloc(sizeof(*c) * (size_t)count);
    for (long i = 0; i < count; i++) {
        c[i].fd = -1;
        c[i].out = req;
        c[i].out_len = rlen;
    }
    int ep = epoll_create1(0);
    sleep_s(0.3);
    long rss0 = rss_kib(pid);
    double t0 = now_s();
    open_many(c, count, port, sources, 0, ep, 60.0);
    double t1 = now_s();
    long ok = 0;
    for (long i = 0; i < count; i++) {
        if (c[i].state == C_IDLE && c[i].status == 200) ok++;
        else if (c[i].state == C_IDLE) warnx_("idle: a request answered %d", c[i].status);
    }
    sleep_s(1.0);
    long rss1 = rss_kib(pid);
    /* Still open? An idle connection the server closed reads as EOF. */
    long open_n = 0;
    for (long i = 0; i < count; i++) {
        if (c[i].fd < 0) continue;
        char b;
        ssize_t r = recv(c[i].fd, &b, 1, MSG_DONTWAIT | MSG_PEEK);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) open_n++;
    }
    printf("connections %ld\nanswered_200 %ld\nstill_open %ld\nopen_seconds %.2f\n", count, ok, open_n,
           t1 - t0);
    printf("rss_before_kib %ld\nrss_after_kib %ld\nbytes_per_connection %.0f\n", rss0, rss1,
           open_n ? (double)(rss1 - rss0) * 1024.0 / (double)open_n : NAN);
    for (long i = 0; i < count; i++)
        if (c[i].fd >= 0) close(c[i].fd);
    return 0;
}

/* ---- sse: fan-out of one exclusion to many streams ---- */

static const char sse_event[] = "event: facility.excluded";

/* Looks for the exclusion event in what came, across read boundaries. */
static int sse_scan(struct nconn *x)
{
    char joined[64 + 16384 + 1];
    int found = 0;
    size_t n = x->in.n;
    if (x->tail_n + n < sizeof(joined)) {
        memcpy(joined, x->tail, x->tail_n);
        memcpy(joined + x->tail_n, x->in.b, n);
        found = memmem(joined, x->tail_n + n, sse_event, sizeof(sse_event) - 1) != NULL;
    } else {
        found = memmem(x->in.b, n, sse_event, sizeof(sse_event) - 1) != NULL;
    }
    size_t keep = sizeof(sse_event);
    if (n >= keep) {
        memcpy(x->tail, x->in.b + n - keep, keep);
        x->tail_n = keep;
    } else {
        size_t old = x->tail_n < keep - n ? x->tail_n : keep - n;
        memmove(x->tail, x->tail + x->tail_n - old, old);
        memcpy(x->tail + old, x->in.b, n);
        x->tail_n = old + n;
    }
    ibuf_consume(&x->in, n);
    return found;
}

static int mode_sse(void)
{
    int port = (int)opt_long("port", NULL), aport = (int)opt_long("admin", NULL);
    char *token = read_token(opt("token", NULL));
    const char *fac = opt("facility", NULL);
    long count = opt_long("count", "1000"), per_key = opt_long("per-key", "8");
    long sources = opt_long("sources", "8");
    raise_nofile();
    struct bconn adm;
    if (bconn_open(&adm, aport) < 0) die("sse: connect failed");
    long nkeys = (count + per_key - 1) / per_key;
    char (*reqs)[1024] = xmalloc(sizeof(*reqs) * (size_t)nkeys);
    size_t *rlens = xmalloc(sizeof(size_t) * (size_t)nkeys);
    for (long i = 0; i < nkeys; i++) {
        char key[128], secret[128], auth[512], body[128];
        snprintf(body, sizeof(body), "{\"name\":\"fan-out %ld\"}", i);
        if (create_key(&adm, token, "/admin/v1/feed-keys", body, key, secret) < 0)
            die("sse: feed key creation failed");
        basic_header(key, secret, auth);
        int n = snprintf(reqs[i], sizeof(reqs[i]),
                         "GET /v1/feed/facilities/stream HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\n"
                         "Accept: text/event-stream\r\n\r\n",
                         port, auth);
        rlens[i] = (size_t)n;
    }
    struct nconn *c = xmalloc(sizeof(*c) * (size_t)count);
    for (long i = 0; i < count; i++) {
        c[i].fd = -1;
        c[i].out = reqs[i / per_key];
        c[i].out_len = rlens[i / per_key];
        c[i].t_seen = -1;
    }
    int ep = epoll_create1(0);
    double t0 = now_s();
    open_many(c, count, port, sources, 1, ep, 30.0);
    double topen = now_s() - t0;
    long streams = 0, refused = 0, refused_status = 0;
    for (long i = 0; i < count; i++) {
        if (c[i].state == C_STREAM) {
            streams++;
            c[i].state = C_STREAM;
            /* what came with the head is before the exclusion */
            c[i].in.n = 0;
        } else {
            refused++;
            if (c[i].status) refused_status = c[i].status;
        }
    }
    sleep_s(1.0); /* every stream is past its backlog and live */
    for (long i = 0; i < count; i++)
        if (c[i].state == C_STREAM) {
            while (ibuf_read(&c[i].in, c[i].fd) > 0) {}
            c[i].in.n = 0;
            struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
            epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &ev);
        }
    char preq[512];
    char pbody[] = "{\"included\":false}";
    int pn = snprintf(preq, sizeof(preq),
                      "PATCH /admin/v1/facilities/%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                      "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n%s",
                      fac, aport, token, strlen(pbody), pbody);
    double tx = now_s(), tadm = -1;
    if (send_all(adm.fd, preq, (size_t)pn) < 0) die("sse: admin connection lost");
    fcntl(adm.fd, F_SETFL, fcntl(adm.fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event aev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
    epoll_ctl(ep, EPOLL_CTL_ADD, adm.fd, &aev);
    long seen = 0, closed = 0;
    int adm_status = 0;
    struct epoll_event evs[512];
    while (seen + closed < streams && now_s() - tx < 10.0) {
        int k = epoll_wait(ep, evs, 512, 50);
        double t = now_s();
        for (int j = 0; j < k; j++) {
            if (evs[j].data.u64 == UINT64_MAX) {
                struct frame f;
                ssize_t got = ibuf_read(&adm.in, adm.fd);
                if (adm.in.n && http_frame(adm.in.b, adm.in.n, &f) > 0 && tadm < 0) {
                    tadm = t;
                    adm_status = f.status;
                }
                if (got == 0 || got == -1 || tadm >= 0) epoll_ctl(ep, EPOLL_CTL_DEL, adm.fd, NULL);
                continue;
            }
            struct nconn *x = &c[evs[j].data.u64];
            if (x->state != C_STREAM) continue;
            ssize_t got;
            while ((got = ibuf_read(&x->in, x->fd)) > 0) {
                if (x->t_seen < 0 && sse_scan(x)) {
                    x->t_seen = t;
                    seen++;
                }
                x->in.n = 0;
            }
            if (got == 0 || got == -1) {
                x->state = C_DEAD;
                epoll_ctl(ep, EPOLL_CTL_DEL, x->fd, NULL);
                if (x->t_seen < 0) closed++;
            }
        }
    }
    double *lat = xmalloc(sizeof(double) * (size_t)(seen ? seen : 1));
    long n = 0, within100 = 0;
    for (long i = 0; i < count; i++)
        if (c[i].t_seen >= 0) {
            lat[n] = (c[i].t_seen - tx) * 1e3;
            if (lat[n] <= 100.0) within100++;
            n++;
        }
    qsort(lat, (size_t)n, sizeof(double), cmp_double);
    printf("clients %ld\nfeed_keys %ld\nstreams %ld\nrefused %ld\nrefused_status %ld\nopen_seconds %.2f\n",
           count, nkeys, streams, refused, refused_status, topen);
    printf("saw_exclusion %ld\nclosed_before %ld\nwithin_100ms %ld\n", seen, closed, within100);
    printf("p50_ms %.2f\np99_ms %.2f\nmax_ms %.2f\nadmin_ms %.2f\nadmin_status %d\n",
           quantile(lat, (size_t)n, 0.5), quantile(lat, (size_t)n, 0.99), n ? lat[n - 1] : NAN,
           tadm >= 0 ? (tadm - tx) * 1e3 : NAN, adm_status);
    for (long i = 0; i < count; i++)
        if (c[i].fd >= 0) close(c[i].fd);
    return 0;
}

/* ---- paced: latency at a fixed request rate ---- */

/* Sends one request every 1/RATE s (a timerfd, so the spacing is even, not
 * in bursts) on whichever of CONNS keep-alive connections is free, and times
 * each from its send to the end of its answer. A tick that finds every
 * connection busy is counted as skipped, not queued. */
static int mode_paced(void)
{
    int port = (int)opt_long("port", NULL);
    const char *path = opt("path", NULL);
    const char *auth = opt("auth", "");
    double rate = strtod(opt("rate", "2000"), NULL);
    long nconn = opt_long("conns", "8");
    double secs = strtod(opt("seconds", "5"), NULL), warm = strtod(opt("warmup", "1"), NULL);
    static char req[1024];
    size_t rlen = get_request(req, sizeof(req), port, path, auth[0] ? auth : NULL);
    struct nconn *c = xmalloc(sizeof(*c) * (size_t)nconn);
    double *tsend = xmalloc(sizeof(double) * (size_t)nconn);
    int ep = epoll_create1(0);
    for (long i = 0; i < nconn; i++) {
        c[i].fd = tcp_connect(port, NULL, 0);
        if (c[i].fd < 0) die("paced: connect failed");
        fcntl(c[i].fd, F_SETFL, fcntl(c[i].fd, F_GETFL) | O_NONBLOCK);
        c[i].state = C_IDLE;
        c[i].out = req;
        c[i].out_len = rlen;
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &ev);
    }
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    long ns = (long)(1e9 / rate);
    struct itimerspec its = {{ns / 1000000000L, ns % 1000000000L}, {0, ns % 1000000000L}};
    if (ns >= 1000000000L) its.it_value.tv_sec = ns / 1000000000L;
    timerfd_settime(tfd, 0, &its, NULL);
    struct epoll_event tev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);
    size_t cap = (size_t)(rate * (secs + 1.0)) + 16, n = 0;
    double *lat = xmalloc(sizeof(double) * cap);
    long sent = 0, skipped = 0, bad = 0, answered = 0, rr = 0;
    double t0 = now_s(), tmeasure = t0 + warm, tend = tmeasure + secs;
    int stopping = 0;
    struct epoll_event evs[64];
    for (;;) {
        double t = now_s();
        if (t >= tend) stopping = 1;
        if (stopping) {
            long busy = 0;
            for (long i = 0; i < nconn; i++) busy += c[i].state == C_WAITING;
            if (busy == 0 || t > tend + 2.0) break;
        }
        int k = epoll_wait(ep, evs, 64, 100);
        t = now_s();
        for (int j = 0; j < k; j++) {
            if (evs[j].data.u64 == UINT64_MAX) {
                uint64_t ticks = 0;
                if (read(tfd, &ticks, sizeof(ticks)) != (ssize_t)sizeof(ticks)) continue;
                for (uint64_t q = 0; q < ticks && !stopping; q++) {
                    long i, tries;
                    for (tries = 0, i = rr; tries < nconn; tries++, i = (i + 1) % nconn)
                        if (c[i].state == C_IDLE) break;
                    if (tries == nconn) {
                        if (t >= tmeasure) skipped++;
                        continue;
                    }
                    rr = (i + 1) % nconn;
                    c[i].out_off = 0;
                    c[i].state = C_WAITING;
                    tsend[i] = now_s();
                    nconn_send(&c[i]);
                    if (c[i].state == C_DEAD) die("paced: the server closed a connection");
                    sent++;
                }
                continue;
            }
            struct nconn *x = &c[evs[j].data.u64];
            ssize_t got;
            while ((got = ibuf_read(&x->in, x->fd)) > 0) {}
            struct frame f;
            int r;
            while (x->state == C_WAITING && (r = http_frame(x->in.b, x->in.n, &f)) > 0) {
                answered++;
                if (f.status != 200) bad++;
                if (tsend[x - c] >= tmeasure && n < cap) lat[n++] = (t - tsend[x - c]) * 1e6;
                ibuf_consume(&x->in, f.total);
                x->state = C_IDLE;
            }
            if (got == 0 || got == -1) die("paced: the server closed a connection");
        }
    }
    qsort(lat, n, sizeof(double), cmp_double);
    printf("rate %.0f\nsent %ld\nanswered %ld\nnon200 %ld\nskipped %ld\nmeasured %zu\n", rate, sent,
           answered, bad, skipped, n);
    printf("p50_us %.0f\np90_us %.0f\np99_us %.0f\np999_us %.0f\nmax_us %.0f\n", quantile(lat, n, 0.5),
           quantile(lat, n, 0.9), quantile(lat, n, 0.99), quantile(lat, n, 0.999),
           n ? lat[n - 1] : NAN);
    return 0;
}

int main(int argc, char **argv)
{
    g_argc = argc;
    g_argv = argv;
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: lgbench floor-easy|floor-multi|revoke|ratelimit|keys|idle|sse|paced "
                        "--option value ...\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *mode = argv[1];
    if (strcmp(mode, "floor-easy") == 0) return mode_floor_easy();
    if (strcmp(mode, "floor-multi") == 0) return mode_floor_multi();
    if (strcmp(mode, "revoke") == 0) return mode_revoke();
    if (strcmp(mode, "ratelimit") == 0) return mode_ratelimit();
    if (strcmp(mode, "keys") == 0) return mode_keys();
    if (strcmp(mode, "idle") == 0) return mode_idle();
    if (strcmp(mode, "sse") == 0) return mode_sse();
    if (strcmp(mode, "paced") == 0) return mode_paced();
    fprintf(stderr, "lgbench: unknown mode %s\n", mode);
    return 2;
}
