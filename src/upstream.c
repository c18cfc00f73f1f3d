/* The upstream client: one libcurl multi handle per worker, driven by the
 * worker's libevent loop (curl's hiperfifo pattern), with pooled easy handles
 * and the multi's connection cache as the keep-alive pool. */
#include "lockgate/upstream.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lockgate/config.h"
#include "lockgate/log.h"
#include "lockgate/util.h"

#define LG_UPSTREAM_BODY_MAX     (1024 * 1024) /* a bigger answer fails the transfer */
#define LG_UPSTREAM_BODY_KEEP    (64 * 1024)   /* buffers above this are not kept pooled */
#define LG_UPSTREAM_PATH_MAX     8192
#define LG_UPSTREAM_HEADERS_MAX  128         /* header lines per request */
#define LG_UPSTREAM_HEADER_BYTES (64 * 1024) /* their total size */
#define LG_UPSTREAM_CTYPE_MAX    256
#define LG_UPSTREAM_RETRY_MS     1000 /* a failed URL is tried again after this */
#define LG_UPSTREAM_POOL_MIN     64

enum lg_upstream_req_state { LG_REQ_IDLE, LG_REQ_ACTIVE, LG_REQ_CALLING };

struct lg_upstream_target {
    char *base; /* no trailing slash */
    size_t len;
    int64_t failed_ms; /* monotonic time of the last connect failure, 0 when healthy */
};

/* One pooled transfer: the easy handle and every buffer it needs, reused
 * across transfers so that the steady state allocates nothing of ours. */
struct lg_upstream_req {
    struct lg_upstream *up;
    CURL *easy;
    enum lg_upstream_req_state state;
    struct lg_upstream_req *prev, *next; /* active list, or free list (next only) */

    lg_upstream_cb *cb;
    void *arg;
    int target;  /* index into up->targets */
    int retried; /* already moved once to another URL */
    int64_t start_ms;

    char *url; /* path_query at up->base_max, the chosen base right before it */
    size_t url_cap;

    struct curl_slist *hnodes; /* header list nodes, linked in place */
    size_t hnodes_cap;
    char *htext; /* the header lines they point into */
    size_t htext_cap;

    char *body;
    size_t body_len, body_cap;
    int body_too_big;

    char ctype[LG_UPSTREAM_CTYPE_MAX];
    char errbuf[CURL_ERROR_SIZE];
};

/* One socket curl asked us to watch. */
struct lg_upstream_sock {
    struct lg_upstream *up;
    struct event *ev;
    curl_socket_t fd;
    struct lg_upstream_sock *prev, *next;
};

struct lg_upstream {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;

    struct lg_upstream_target *targets;
    int ntargets;
    size_t base_max; /* longest base URL */
    unsigned rr;

    long timeout_ms;
    long connect_timeout_ms;
    char ca_file[LG_PATH_MAX]; /* "" = curl's default CA store */

    struct lg_upstream_req *active; /* doubly linked */
    struct lg_upstream_req *pool;   /* singly linked */
    int npool, pool_max;
    int inflight;
    int dispatching; /* inside check_info: a free must wait for it to end */
    int closing;

    struct lg_upstream_sock *socks;
};

/* ---- targets ---------------------------------------------------------- */

static int target_eligible(const struct lg_upstream_target *t, int64_t now)
{
    return t->failed_ms == 0 || now - t->failed_ms >= LG_UPSTREAM_RETRY_MS;
}

/* Next URL in round robin, skipping those that failed to connect recently.
 * EXCLUDE (or -1) is never chosen; with it, -1 is returned when no other URL
 * is eligible. Without it, an all-failed set still yields the next URL: trying
 * is better than refusing without a try. */
static int target_pick(struct lg_upstream *up, int exclude)
{
    int64_t now = lg_mono_ms();
    int n = up->ntargets;
    for (int i = 0; i < n; i++) {
        int idx = (int)((up->rr + (unsigned)i) % (unsigned)n);
        if (idx != exclude && target_eligible(&up->targets[idx], now)) {
            up->rr = (unsigned)idx + 1;
            return idx;
        }
    }
    if (exclude >= 0) return -1;
    int idx = (int)(up->rr % (unsigned)n);
    up->rr++;
    return idx;
}

static void target_mark(struct lg_upstream *up, int idx, int failed)
{
    struct lg_upstream_target *t = &up->targets[idx];
    if (failed) {
        if (t->failed_ms == 0)
            lg_warn("upstream %s: cannot connect%s", t->base,
                    up->ntargets > 1 ? ", skipping it while another URL is healthy" : "");
        int64_t now = lg_mono_ms();
        t->failed_ms = now > 0 ? now : 1;
    } else {
        if (t->failed_ms != 0) lg_info("upstream %s: reachable again", t->base);
        t->failed_ms = 0;
    }
}

/* Splits the comma-separated URL list, trimming blanks and trailing slashes. */
static int targets_parse(struct lg_upstream *up, const char *list)
{
    int n = 1;
    for (const char *p = list; *p; p++)
        if (*p == ',') n++;
    up->targets = calloc((size_t)n, sizeof(*up->targets));
    if (up->targets == NULL) return -1;
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        if (end == NULL) end = p + strlen(p);
        const char *s = p, *e = end;
        while (s < e && (*s == ' ' || *s == '\t')) s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
        while (e > s && e[-1] == '/') e--;
        if (e > s) {
            size_t len = (size_t)(e - s);
            if (!((len > 7 && strncasecmp(s, "http://", 7) == 0) ||
                  (len > 8 && strncasecmp(s, "https://", 8) == 0))) {
                lg_error("upstream url must start with http:// or https://");
                return -1;
            }
            struct lg_upstream_target *t = &up->targets[up->ntargets++];
            t->base = strndup(s, len);
            if (t->base == NULL) return -1;
            t->len = len;
            if (len > up->base_max) up->base_max = len;
        }
        if (*end == '\0') break;
        p = end + 1;
    }
    if (up->ntargets == 0) {
        lg_error("upstream url is empty");
        return -1;
    }
    return 0;
}

/* ---- pooled requests -------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct lg_upstream_req *req = userp;
    size_t n = size * nmemb;
    if (n == 0) return 0;
    if (n > LG_UPSTREAM_BODY_MAX - req->body_len) {
        req->body_too_big = 1;
        return 0; /* CURLE_WRITE_ERROR */
    }
    if (req->body_len + n + 1 > req->body_cap) {
        size_t cap = req->body_cap ? req->body_cap : 16 * 1024;
        while (cap < req->body_len + n + 1) cap *= 2;
        if (cap > LG_UPSTREAM_BODY_MAX + 1) cap = LG_UPSTREAM_BODY_MAX + 1;
        char *b = realloc(req->body, cap);
        if (b == NULL) return 0;
        req->body = b;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, n);
    req->body_len += n;
    return n;
}

static void req_destroy(struct lg_upstream_req *req)
{
    if (req->easy) curl_easy_cleanup(req->easy);
    free(req->url);
    free(req->hnodes);
    free(req->htext);
    free(req->body);
    free(req);
}

/* A new transfer with the options that never change between transfers. */
static struct lg_upstream_req *req_create(struct lg_upstream *up)
{
    struct lg_upstream_req *req = calloc(1, sizeof(*req));
    if (req == NULL) return NULL;
    req->up = up;
    req->easy = curl_easy_init();
    if (req->easy == NULL) {
        free(req);
        return NULL;
    }
    CURL *e = req->easy;
    int rc = 0;
    rc |= curl_easy_setopt(e, CURLOPT_PRIVATE, req);
    rc |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    rc |= curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
    rc |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->errbuf);
    rc |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    rc |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    rc |= curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    rc |= curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
    /* no proxy from the environment; both options are needed for curl to skip
     * reading it (two getenv calls per transfer otherwise) */
    rc |= curl_easy_setopt(e, CURLOPT_PROXY, "");
    rc |= curl_easy_setopt(e, CURLOPT_NOPROXY, "");
    rc |= curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)LG_UPSTREAM_BODY_MAX);
    if (up->ca_file[0]) rc |= curl_easy_setopt(e, CURLOPT_CAINFO, up->ca_file);
    if (rc != 0) {
        req_destroy(req);
        return NULL;
    }
    return req;
}

static struct lg_upstream_req *req_get(struct lg_upstream *up)
{
    struct lg_upstream_req *req = up->pool;
    if (req != NULL) {
        up->pool = req->next;
        up->npool--;
        req->next = NULL;
        return req;
    }
    return req_create(up);
}

/* Back to the pool (or freed when the pool is full). The request must not be
 * attached to the multi. */
static void req_put(struct lg_upstream *up, struct lg_upstream_req *req)
{
    req->state = LG_REQ_IDLE;
    req->cb = NULL;
    req->arg = NULL;
    if (up->npool >= up->pool_max) {
        req_destroy(req);
        return;
    }
    if (req->body_cap > LG_UPSTREAM_BODY_KEEP) {
        free(req->body);
        req->body = NULL;
        req->body_cap = 0;
    }
    req->body_len = 0;
    req->next = up->pool;
    req->prev = NULL;
    up->pool = req;
    up->npool++;
}

static void active_link(struct lg_upstream *up, struct lg_upstream_req *req)
{
    req->prev = NULL;
    req->next = up->active;
    if (up->active) up->active->prev = req;
    up->active = req;
}

static void active_unlink(struct lg_upstream *up, struct lg_upstream_req *req)
{
    if (req->prev)
        req->prev->next = req->next;
    else
        up->active = req->next;
    if (req->next) req->next->prev = req->prev;
    req->prev = req->next = NULL;
}

static int grow(void **buf, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 16;
    while (n < need) n *= 2;
    void *p = realloc(*buf, n * elem);
    if (p == NULL) return -1;
    *buf = p;
    *cap = n;
    return 0;
}

/* A header line must be "Name: value" with a token name and no CR or LF:
 * anything else could split the request towards the upstream. */
static int header_ok(const char *h, size_t *len)
{
    const char *p = h;
    while (*p && *p != ':') {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c >= 0x7f || strchr("\"(),/;<=>?@[\\]{}", c)) return 0;
        p++;
    }
    if (*p != ':' || p == h) return 0;
    for (; *p; p++)
        if (*p == '\r' || *p == '\n') return 0;
    *len = (size_t)(p - h);
    return 1;
}

static int header_is(const char *h, const char *name)
{
    size_t n = strlen(name);
    return strncasecmp(h, name, n) == 0 && h[n] == ':';
}

/* Copies HEADERS into the request's own list (nodes and text reused across
 * transfers), adding "Accept:" and "Expect:" so that curl sends none of its
 * own defaults for them. Accept-Encoding is left out: the result cannot carry
 * a Content-Encoding, so the body must come back as it is. */
static int req_set_headers(struct lg_upstream_req *req, const char *const *headers)
{
    static const char no_accept[] = "Accept:", no_expect[] = "Expect:";
    size_t count = 0, bytes = sizeof(no_accept) + sizeof(no_expect);
    int has_accept = 0;
    for (size_t i = 0; headers && headers[i]; i++) {
        size_t len;
        if (!header_ok(headers[i], &len)) return -1;
        if (header_is(headers[i], "Accept")) has_accept = 1;
        count++;
        bytes += len + 1;
        if (count > LG_UPSTREAM_HEADERS_MAX || bytes > LG_UPSTREAM_HEADER_BYTES) return -1;
    }
    if (grow((void **)&req->hnodes, &req->hnodes_cap, count + 2, sizeof(struct curl_slist)) < 0 ||
        grow((void **)&req->htext, &req->htext_cap, bytes, 1) < 0)
        return -1;

    size_t off = 0, k = 0;
    for (size_t i = 0; i < count + 2; i++) {
        const char *src = i < count    ? headers[i]
                          : i == count ? (has_accept ? NULL : no_accept)
                                       : no_expect;
        if (src == NULL || (i < count && header_is(src, "Accept-Encoding"))) continue;
        size_t len = strlen(src) + 1;
        memcpy(req->htext + off, src, len);
        req->hnodes[k].data = req->htext + off;
        req->hnodes[k].next = NULL;
        if (k > 0) req->hnodes[k - 1].next = &req->hnodes[k];
        off += len;
        k++;
    }
    return curl_easy_setopt(req->easy, CURLOPT_HTTPHEADER, req->hnodes) == CURLE_OK ? 0 : -1;
}

/* Points the request at target IDX: the path sits at a fixed offset in
 * req->url and the base is written just before it, so a retry moves nothing. */
static int req_set_url(struct lg_upstream_req *req, int idx)
{
    const struct lg_upstream_target *t = &req->up->targets[idx];
    char *start = req->url + (req->up->base_max - t->len);
    memcpy(start, t->base, t->len);
    req->target = idx;
    return curl_easy_setopt(req->easy, CURLOPT_URL, start) == CURLE_OK ? 0 : -1;
}

static int req_set_timeouts(struct lg_upstream_req *req, long total_ms)
{
    long connect_ms = req->up->connect_timeout_ms;
    if (connect_ms > total_ms) connect_ms = total_ms;
    int rc = 0;
    rc |= curl_easy_setopt(req->easy, CURLOPT_TIMEOUT_MS, total_ms);
    rc |= curl_easy_setopt(req->easy, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    return rc == 0 ? 0 : -1;
}

static int path_ok(const char *p, size_t *len)
{
    if (p == NULL || p[0] != '/') return 0;
    size_t n = 0;
    for (; p[n]; n++) {
        unsigned char c = (unsigned char)p[n];
        if (c <= 0x20 || c >= 0x7f || n >= LG_UPSTREAM_PATH_MAX) return 0;
    }
    *len = n;
    return 1;
}

/* ---- the event loop glue ---------------------------------------------- */

static void check_info(struct lg_upstream *up);
static void upstream_destroy(struct lg_upstream *up);

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
    struct lg_upstream *up = arg;
    int action =
        ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(up->multi, fd, action, &running);
    check_info(up);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct lg_upstream *up = arg;
    int running;
    curl_multi_socket_action(up->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_info(up);
}

/* CURLMOPT_TIMERFUNCTION: only (re)arms the timer, never calls curl. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct lg_upstream *up = userp;
    if (timeout_ms < 0) {
        evtimer_del(up->timer);
        return 0;
    }
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    return evtimer_add(up->timer, &tv) == 0 ? 0 : -1;
}

static void sock_free(struct lg_upstream *up, struct lg_upstream_sock *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        up->socks = s->next;
    if (s->next) s->next->prev = s->prev;
    event_free(s->ev);
    free(s);
}

/* CURLMOPT_SOCKETFUNCTION: one persistent event per socket, its interest
 * changed in place. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct lg_upstream *up = userp;
    struct lg_upstream_sock *s = socketp;

    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            curl_multi_assign(up->multi, fd, NULL);
            sock_free(up, s);
        }
        return 0;
    }
    short kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
                 ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
    if (s == NULL) {
        s = calloc(1, sizeof(*s));
        if (s == NULL) return -1;
        s->up = up;
        s->fd = fd;
        s->ev = event_new(up->base, fd, kind, on_socket_event, up);
        if (s->ev == NULL) {
            free(s);
            return -1;
        }
        s->next = up->socks;
        if (up->socks) up->socks->prev = s;
        up->socks = s;
        curl_multi_assign(up->multi, fd, s);
    } else {
        event_del(s->ev);
        event_assign(s->ev, up->base, fd, kind, on_socket_event, up);
    }
    return event_add(s->ev, NULL) == 0 ? 0 : -1;
}

/* Refused, unresolvable, or timed out before any connection was made (that
 * includes waiting for a free one past max_connections): the URL is the
 * problem, not this request. */
static int is_connect_failure(CURL *easy, CURLcode rc)
{
    if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST) return 1;
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        curl_off_t connect_us = 0, pretransfer_us = 0;
        curl_easy_getinfo(easy, CURLINFO_CONNECT_TIME_T, &connect_us);
        curl_easy_getinfo(easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer_us);
        return connect_us == 0 && pretransfer_us == 0;
    }
    return 0;
}

/* Moves REQ (already removed from the multi) to another URL after a connect
 * failure when one is eligible and time remains. Returns 0 when re-added. */
static int req_retry(struct lg_upstream *up, struct lg_upstream_req *req)
{
    if (req->retried || up->ntargets < 2) return -1;
    long remaining = up->timeout_ms - (long)(lg_mono_ms() - req->start_ms);
    if (remaining <= 0) return -1;
    int idx = target_pick(up, req->target);
    if (idx < 0) return -1;
    req->retried = 1;
    req->body_len = 0;
    req->body_too_big = 0;
    if (req_set_url(req, idx) < 0 || req_set_timeouts(req, remaining) < 0) return -1;
    if (curl_multi_add_handle(up->multi, req->easy) != CURLM_OK) return -1;
    return 0;
}

/* Drains finished transfers. Runs from our event callbacks only, never from
 * inside a curl callback, so removing handles and calling users is safe. */
static void check_info(struct lg_upstream *up)
{
    CURLMsg *msg;
    int left;
    up->dispatching++;
    while (!up->closing && (msg = curl_multi_info_read(up->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) continue;
        CURL *easy = msg->easy_handle;
        CURLcode rc = msg->data.result;
        struct lg_upstream_req *req = NULL;
        long status = 0;
        char *ctype = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&req);
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(easy, CURLINFO_CONTENT_TYPE, &ctype);
        int connect_failed = rc != CURLE_OK && is_connect_failure(easy, rc);
        if (ctype != NULL && strlen(ctype) < sizeof(req->ctype))
            memcpy(req->ctype, ctype, strlen(ctype) + 1);
        else
            ctype = NULL;
        curl_multi_remove_handle(up->multi, easy);

        if (rc == CURLE_OK)
            target_mark(up, req->target, 0);
        else if (connect_failed)
            target_mark(up, req->target, 1);
        if (connect_failed && req_retry(up, req) == 0) continue;

        struct lg_upstream_result res = {0};
        if (rc == CURLE_OK) {
            res.error = LG_UPSTREAM_OK;
            res.status = (int)status;
            res.content_type = ctype ? req->ctype : NULL;
            res.body = req->body ? req->body : "";
            res.body_len = req->body_len;
            if (req->body) req->body[req->body_len] = '\0';
        } else {
            res.error =
                rc == CURLE_OPERATION_TIMEDOUT ? LG_UPSTREAM_TIMEOUT : LG_UPSTREAM_UNAVAILABLE;
            res.body = "";
            lg_debug("upstream %s: %s (%d)%s", up->targets[req->target].base,
                     req->errbuf[0] ? req->errbuf : curl_easy_strerror(rc), (int)rc,
                     req->body_too_big ? ", body too big" : "");
        }
        active_unlink(up, req);
        up->inflight--;
        req->state = LG_REQ_CALLING;
        req->cb(&res, req->arg);
        req_put(up, req);
    }
    if (--up->dispatching == 0 && up->closing)
        upstream_destroy(up); /* lg_upstream_free was called from a callback */
}

/* ---- public ----------------------------------------------------------- */

struct lg_upstream *lg_upstream_new(struct event_base *base, const struct lg_config *cfg)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return NULL;
    struct lg_upstream *up = calloc(1, sizeof(*up));
    if (up == NULL) goto err_global;
    up->base = base;
    up->timeout_ms = cfg->upstream_timeout_ms > 0 ? cfg->upstream_timeout_ms : 2000;
    up->connect_timeout_ms =
        cfg->upstream_connect_timeout_ms > 0 ? cfg->upstream_connect_timeout_ms : up->timeout_ms;
    snprintf(up->ca_file, sizeof(up->ca_file), "%s", cfg->upstream_ca_file);
    long maxconn = cfg->upstream_max_connections > 0 ? cfg->upstream_max_connections : 256;
    up->pool_max = maxconn > LG_UPSTREAM_POOL_MIN ? (int)maxconn : LG_UPSTREAM_POOL_MIN;

    if (targets_parse(up, cfg->upstream_url) < 0) goto err;
    up->timer = evtimer_new(base, on_timer, up);
    if (up->timer == NULL) goto err;
    up->multi = curl_multi_init();
    if (up->multi == NULL) goto err;
    int rc = 0;
    rc |= curl_multi_setopt(up->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    rc |= curl_multi_setopt(up->multi, CURLMOPT_SOCKETDATA, up);
    rc |= curl_multi_setopt(up->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    rc |= curl_multi_setopt(up->multi, CURLMOPT_TIMERDATA, up);
    rc |= curl_multi_setopt(up->multi, CURLMOPT_MAX_HOST_CONNECTIONS, maxconn);
    rc |= curl_multi_setopt(up->multi, CURLMOPT_MAXCONNECTS, maxconn * up->ntargets);
    if (rc != 0) goto err;
    return up;

err:
    if (up->multi) curl_multi_cleanup(up->multi);
    if (up->timer) event_free(up->timer);
    for (int i = 0; i < up->ntargets; i++) free(up->targets[i].base);
    free(up->targets);
    free(up);
err_global:
    curl_global_cleanup();
    return NULL;
}

void lg_upstream_free(struct lg_upstream *up)
{
    if (up == NULL || up->closing) return;
    up->closing = 1;
    if (up->dispatching == 0) upstream_destroy(up);
}

static void upstream_destroy(struct lg_upstream *up)
{
    struct lg_upstream_req *req;
    while ((req = up->active) != NULL) {
        curl_multi_remove_handle(up->multi, req->easy);
        active_unlink(up, req);
        req_destroy(req);
    }
    while ((req = up->pool) != NULL) {
        up->pool = req->next;
        req_destroy(req);
    }
    curl_multi_cleanup(up->multi); /* closes the pooled connections */
    while (up->socks) sock_free(up, up->socks);
    event_free(up->timer);
    for (int i = 0; i < up->ntargets; i++) free(up->targets[i].base);
    free(up->targets);
    free(up);
    curl_global_cleanup();
}

struct lg_upstream_req *lg_upstream_fetch(struct lg_upstream *up, const char *path_query, int head,
                                          const char *const *headers, lg_upstream_cb *cb, void *arg)
{
    size_t plen;
    if (up == NULL || up->closing || cb == NULL || !path_ok(path_query, &plen)) return NULL;
    struct lg_upstream_req *req = req_get(up);
    if (req == NULL) return NULL;
    req->cb = cb;
    req->arg = arg;
    req->retried = 0;
    req->body_len = 0;
    req->body_too_big = 0;
    req->ctype[0] = '\0';
    req->errbuf[0] = '\0';
    req->start_ms = lg_mono_ms();

    if (grow((void **)&req->url, &req->url_cap, up->base_max + plen + 1, 1) < 0) goto err;
    memcpy(req->url + up->base_max, path_query, plen + 1);

    if (req_set_headers(req, headers) < 0) goto err;
    if (req_set_url(req, target_pick(up, -1)) < 0) goto err;
    if (req_set_timeouts(req, up->timeout_ms) < 0) goto err;
    CURLcode rc = head ? curl_easy_setopt(req->easy, CURLOPT_NOBODY, 1L)
                       : curl_easy_setopt(req->easy, CURLOPT_HTTPGET, 1L);
    if (rc != CURLE_OK) goto err;
    if (curl_multi_add_handle(up->multi, req->easy) != CURLM_OK) goto err;
    req->state = LG_REQ_ACTIVE;
    active_link(up, req);
    up->inflight++;
    return req;

err:
    req_put(up, req);
    return NULL;
}

void lg_upstream_cancel(struct lg_upstream_req *req)
{
    if (req == NULL || req->state != LG_REQ_ACTIVE)
        return; /* finished (its callback is running) or already cancelled */
    struct lg_upstream *up = req->up;
    curl_multi_remove_handle(up->multi, req->easy);
    active_unlink(up, req);
    up->inflight--;
    req_put(up, req);
}

int lg_upstream_inflight(const struct lg_upstream *up) { return up ? up->inflight : 0; }

int lg_upstream_healthy(const struct lg_upstream *up)
{
    if (up == NULL) return 0;
    for (int i = 0; i < up->ntargets; i++)
        if (up->targets[i].failed_ms == 0) return 1;
    return 0;
}
