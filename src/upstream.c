/* The upstream client: per worker, a pool of kept-alive connections to the
 * lock platform's API. libcurl opens them (one multi handle driven by the
 * worker's libevent loop, curl's hiperfifo pattern), secures them and holds
 * each in an easy handle in CONNECT_ONLY mode; a request is written on one
 * with curl_easy_send and its answer read with curl_easy_recv and framed by
 * http_parser. No curl transfer is made per request: that machinery costs
 * twenty times the exchange itself. */
#include "lockgate/upstream.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <http_parser.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lockgate/config.h"
#include "lockgate/log.h"
#include "lockgate/util.h"

#define LG_UPSTREAM_BODY_MAX     (1024 * 1024) /* a bigger answer fails the request */
#define LG_UPSTREAM_BODY_KEEP    (64 * 1024)   /* body buffers above this are not kept pooled */
#define LG_UPSTREAM_PATH_MAX     8192
#define LG_UPSTREAM_HEADERS_MAX  128         /* header lines per request */
#define LG_UPSTREAM_HEADER_BYTES (64 * 1024) /* their total size */
#define LG_UPSTREAM_CTYPE_MAX    256
#define LG_UPSTREAM_RETRY_MS     1000  /* a failed URL is tried again after this */
#define LG_UPSTREAM_POOL_MIN     64    /* request objects kept for reuse, at least */
#define LG_UPSTREAM_SPARE        64    /* handles of closed connections kept for new ones */
#define LG_UPSTREAM_READ         16384 /* what one curl_easy_recv gives at most (curl's buffer) */

struct lg_upstream_req;
struct lg_upstream_conn;

/* A list of requests, oldest first: those waiting for a connection, or
 * those whose callback is due. */
struct req_queue {
    struct lg_upstream_req *head, *tail;
    int n;
};

struct lg_upstream_target {
    char *base; /* as configured, no trailing slash: where curl connects, and for logs */
    char *host; /* the Host header's value: host, and port unless the scheme's own */
    size_t host_len;
    char *prefix; /* the base URL's path before every request's ("" or "/api") */
    size_t prefix_len;
    int64_t failed_ms; /* monotonic time of the last connect failure, 0 when healthy */

    int nconns, nconnecting;                   /* open or connecting; connecting */
    struct lg_upstream_conn *idle, *idle_tail; /* most recently used first */
    struct req_queue wait;                     /* for any connection */
    struct req_queue fresh; /* sent again after a reused connection failed: new connections only */
};

enum conn_state {
    CONN_CONNECTING, /* libcurl is opening it */
    CONN_IDLE,       /* in its target's idle list */
    CONN_BUSY        /* carrying an exchange (or between states) */
};

/* One upstream connection, held by its easy handle. The handle stays added
 * to the multi handle while the connection lives: removing it closes it. */
struct lg_upstream_conn {
    struct lg_upstream *up;
    CURL *easy;
    struct event *ev; /* our watch of the socket once connected */
    short ev_what;    /* the interest armed on EV, 0 when not added */
    curl_socket_t fd;
    enum conn_state state;
    int target;

    struct lg_upstream_req *req; /* the exchange in progress */
    int reused;                  /* it went out on a connection taken from the idle pool */
    size_t got;                  /* answer bytes received in it */
    int done, keep;              /* the final answer is complete; the connection may go on */
    http_parser parser;
    char hname[16]; /* the header name being read, while it may be Content-Type */
    size_t hname_len;
    int in_value, is_ctype;

    struct lg_upstream_conn *prev, *next;   /* up->conns, or up->spare (next only) */
    struct lg_upstream_conn *iprev, *inext; /* the target's idle list */
    char errbuf[CURL_ERROR_SIZE];
};

enum req_state {
    REQ_FREE,    /* pooled */
    REQ_WAITING, /* in a target's wait or fresh queue */
    REQ_BUSY,    /* on a connection */
    REQ_DONE,    /* finished, its callback due (in up->done) */
    REQ_CALLING  /* its callback is running */
};

/* One request, pooled with every buffer it needs so that the steady state
 * allocates nothing. */
struct lg_upstream_req {
    struct lg_upstream *up;
    enum req_state state;
    struct lg_upstream_req *prev, *next; /* its queue, up->done, or the pool (next only) */
    struct req_queue *queue;             /* the list it is in */
    lg_upstream_cb *cb;
    void *arg;
    int target;
    int head;
    int moved;     /* already moved to another URL after a connect failure */
    int resent;    /* already sent again after a reused connection failed */
    int connected; /* had a connection (a timeout before that is the URL's fault) */
    int64_t start_ms;
    struct event *timer; /* the whole exchange's deadline */
    struct lg_upstream_conn *conn;

    /* [room][header lines][CRLF][path_query]: the request line and Host of the
     * chosen URL end the room, so moving to another URL rewrites only them */
    char *out;
    size_t out_cap, room, start, end, sent, path_off, path_len;
    int own_host; /* no Host among the caller's headers: ours goes in */

    int status;
    char *body;
    size_t body_len, body_cap;
    char ctype[LG_UPSTREAM_CTYPE_MAX];
    size_t ctype_len;
    int ctype_state; /* 0 none, 1 read, -1 too long (left out) */
    struct lg_upstream_result res;
};

/* One socket libcurl asked us to watch (while it connects). */
struct lg_upstream_sock {
    struct lg_upstream *up;
    struct event *ev;
    curl_socket_t fd;
    struct lg_upstream_sock *prev, *next;
};

struct lg_upstream {
    struct event_base *base;
    CURLM *multi;
    CURLSH *share; /* TLS sessions, so that reconnecting resumes */
    struct event *timer;
    struct event *flush; /* runs callbacks of requests finished outside our own events */
    struct timeval deadline_tv;
    const struct timeval *deadline; /* timeout_ms, as a common timeout when libevent has one */

    struct lg_upstream_target *targets;
    int ntargets;
    size_t room_max; /* request line and Host without the path, longest over the URLs */
    unsigned rr;

    long timeout_ms;
    long connect_timeout_ms;
    int max_conns; /* per URL, open and connecting */
    char ca_file[LG_PATH_MAX];

    struct lg_upstream_conn *conns; /* open and connecting, doubly linked */
    struct lg_upstream_conn *spare; /* closed, kept with their handles */
    int nspare;
    struct lg_upstream_req *pool;
    int npool, pool_max;
    struct req_queue done;
    int inflight;
    int dispatching; /* inside our event callbacks: a free waits for them to end */
    int closing;

    struct lg_upstream_sock *socks;
    char rbuf[LG_UPSTREAM_READ];
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

/* Host header value and path prefix of T's base URL. */
static int target_split(struct lg_upstream_target *t)
{
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL, *path = NULL, *extra = NULL;
    int rc = -1;
    if (u == NULL) return -1;
    if (curl_url_set(u, CURLUPART_URL, t->base, CURLU_PATH_AS_IS) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
        lg_error("upstream url %s cannot be parsed", t->base);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_USER, &extra, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_QUERY, &extra, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_FRAGMENT, &extra, 0) == CURLUE_OK) {
        lg_error("upstream url %s: credentials, a query or a fragment are not supported", t->base);
        goto out;
    }
    int https = strncasecmp(t->base, "https://", 8) == 0;
    if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK &&
        strcmp(port, https ? "443" : "80") == 0) {
        curl_free(port);
        port = NULL;
    }
    size_t hlen = strlen(host), plen = port ? strlen(port) : 0;
    t->host = malloc(hlen + 1 + plen + 1);
    if (t->host == NULL) goto out;
    memcpy(t->host, host, hlen);
    t->host_len = hlen;
    if (port) {
        t->host[t->host_len++] = ':';
        memcpy(t->host + t->host_len, port, plen);
        t->host_len += plen;
    }
    t->host[t->host_len] = '\0';
    size_t len = strlen(path);
    while (len > 0 && path[len - 1] == '/') len--;
    t->prefix = strndup(path, len);
    if (t->prefix == NULL) goto out;
    t->prefix_len = len;
    rc = 0;
out:
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(extra);
    curl_url_cleanup(u);
    return rc;
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
            if (target_split(t) < 0) return -1;
            /* "HEAD " prefix " HTTP/1.1\r\n" "Host: " host "\r\n" */
            size_t room = 5 + t->prefix_len + 11 + 6 + t->host_len + 2;
            if (room > up->room_max) up->room_max = room;
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

static void targets_free(struct lg_upstream *up)
{
    for (int i = 0; i < up->ntargets; i++) {
        free(up->targets[i].base);
        free(up->targets[i].host);
        free(up->targets[i].prefix);
    }
    free(up->targets);
}

/* ---- lists ------------------------------------------------------------ */

static void queue_push(struct req_queue *q, struct lg_upstream_req *req, int front)
{
    req->queue = q;
    if (front) {
        req->prev = NULL;
        req->next = q->head;
        if (q->head)
            q->head->prev = req;
        else
            q->tail = req;
        q->head = req;
    } else {
        req->next = NULL;
        req->prev = q->tail;
        if (q->tail)
            q->tail->next = req;
        else
            q->head = req;
        q->tail = req;
    }
    q->n++;
}

static void queue_remove(struct lg_upstream_req *req)
{
    struct req_queue *q = req->queue;
    if (req->prev)
        req->prev->next = req->next;
    else
        q->head = req->next;
    if (req->next)
        req->next->prev = req->prev;
    else
        q->tail = req->prev;
    q->n--;
    req->prev = req->next = NULL;
    req->queue = NULL;
}

static struct lg_upstream_req *queue_pop(struct req_queue *q)
{
    struct lg_upstream_req *req = q->head;
    if (req) queue_remove(req);
    return req;
}

static void idle_push(struct lg_upstream_target *t, struct lg_upstream_conn *c)
{
    c->state = CONN_IDLE;
    c->iprev = NULL;
    c->inext = t->idle;
    if (t->idle)
        t->idle->iprev = c;
    else
        t->idle_tail = c;
    t->idle = c;
}

static void idle_unlink(struct lg_upstream_target *t, struct lg_upstream_conn *c)
{
    if (c->iprev)
        c->iprev->inext = c->inext;
    else
        t->idle = c->inext;
    if (c->inext)
        c->inext->iprev = c->iprev;
    else
        t->idle_tail = c->iprev;
    c->iprev = c->inext = NULL;
    c->state = CONN_BUSY;
}

/* ---- requests --------------------------------------------------------- */

static void on_req_timer(evutil_socket_t fd, short what, void *arg);

static void req_destroy(struct lg_upstream_req *req)
{
    if (req->timer) event_free(req->timer);
    free(req->out);
    free(req->body);
    free(req);
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
    req = calloc(1, sizeof(*req));
    if (req == NULL) return NULL;
    req->up = up;
    req->timer = evtimer_new(up->base, on_req_timer, req);
    if (req->timer == NULL) {
        free(req);
        return NULL;
    }
    return req;
}

/* Back to the pool (or freed when the pool is full). REQ must be in no list
 * and its timer stopped. */
static void req_put(struct lg_upstream *up, struct lg_upstream_req *req)
{
    req->state = REQ_FREE;
    req->cb = NULL;
    req->arg = NULL;
    req->conn = NULL;
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
    req->prev = NULL;
    req->next = up->pool;
    up->pool = req;
    up->npool++;
}

static int grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 256;
    while (n < need) n *= 2;
    char *p = realloc(*buf, n);
    if (p == NULL) return -1;
    *buf = p;
    *cap = n;
    return 0;
}

/* RFC 9110 token characters: what a header name may hold. */
/* clang-format off */
static const unsigned char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};
/* clang-format on */

/* A header line must be "Name: value" with a token name and no CR or LF:
 * anything else could split the request towards the upstream. Returns its
 * length (NAME_LEN set), or 0 when it is refused. */
static size_t header_len(const char *h, size_t *name_len)
{
    size_t n = 0;
    while (tchar[(unsigned char)h[n]]) n++;
    if (n == 0 || h[n] != ':') return 0;
    size_t v = strcspn(h + n, "\r\n");
    if (h[n + v] != '\0') return 0;
    *name_len = n;
    return n + v;
}

/* The path as sent: the fragment (never sent in HTTP) is left out. */
static int path_ok(const char *p, size_t *len)
{
    if (p == NULL || p[0] != '/') return 0;
    size_t n = 0;
    for (; p[n] && p[n] != '#'; n++) {
        unsigned char c = (unsigned char)p[n];
        if (c <= 0x20 || c >= 0x7f || n >= LG_UPSTREAM_PATH_MAX) return 0;
    }
    for (size_t i = n; p[i]; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= 0x20 || c >= 0x7f || i >= LG_UPSTREAM_PATH_MAX) return 0;
    }
    *len = n;
    return 1;
}

/* Formats the header lines of the request into REQ's buffer, leaving room
 * for the request line and Host (req_set_target writes them). Accept-Encoding
 * is left out: the result cannot carry a Content-Encoding, so the body must
 * come back as it is. */
static int req_format(struct lg_upstream_req *req, const char *path, size_t plen,
                      const char *const *headers)
{
    size_t lens[LG_UPSTREAM_HEADERS_MAX], names[LG_UPSTREAM_HEADERS_MAX];
    size_t count = 0, bytes = 0;
    req->own_host = 1;
    for (size_t i = 0; headers && headers[i]; i++) {
        if (count == LG_UPSTREAM_HEADERS_MAX) return -1;
        if ((lens[count] = header_len(headers[i], &names[count])) == 0) return -1;
        if (names[count] == 4 && strncasecmp(headers[i], "Host", 4) == 0) req->own_host = 0;
        bytes += lens[count] + 2;
        if (bytes > LG_UPSTREAM_HEADER_BYTES) return -1;
        count++;
    }
    size_t room = req->up->room_max + plen;
    if (grow(&req->out, &req->out_cap, room + bytes + 2 + plen) < 0) return -1;
    char *p = req->out + room;
    for (size_t i = 0; i < count; i++) {
        if (names[i] == 15 && strncasecmp(headers[i], "Accept-Encoding", 15) == 0) continue;
        memcpy(p, headers[i], lens[i]);
        p += lens[i];
        *p++ = '\r';
        *p++ = '\n';
    }
    *p++ = '\r';
    *p++ = '\n';
    req->room = room;
    req->end = (size_t)(p - req->out);
    req->path_off = req->end;
    req->path_len = plen;
    memcpy(p, path, plen);
    return 0;
}

/* Writes the request line and Host for target IDX just before the header lines. */
static void req_set_target(struct lg_upstream_req *req, int idx)
{
    const struct lg_upstream_target *t = &req->up->targets[idx];
    const char *method = req->head ? "HEAD " : "GET ";
    size_t mlen = req->head ? 5 : 4;
    size_t len = mlen + t->prefix_len + req->path_len + 11;
    if (req->own_host) len += 6 + t->host_len + 2;
    char *p = req->out + req->room - len;
    req->start = req->room - len;
    memcpy(p, method, mlen);
    p += mlen;
    memcpy(p, t->prefix, t->prefix_len);
    p += t->prefix_len;
    memcpy(p, req->out + req->path_off, req->path_len);
    p += req->path_len;
    memcpy(p, " HTTP/1.1\r\n", 11);
    p += 11;
    if (req->own_host) {
        memcpy(p, "Host: ", 6);
        memcpy(p + 6, t->host, t->host_len);
        memcpy(p + 6 + t->host_len, "\r\n", 2);
    }
    req->target = idx;
}

/* REQ (in no list, on no connection) is finished: its callback runs from
 * run_callbacks, never from inside the call that finished it. */
static void req_complete(struct lg_upstream_req *req, enum lg_upstream_error error)
{
    struct lg_upstream *up = req->up;
    struct lg_upstream_result *res = &req->res;
    evtimer_del(req->timer);
    memset(res, 0, sizeof(*res));
    res->error = error;
    res->body = "";
    if (error == LG_UPSTREAM_OK) {
        res->status = req->status;
        if (req->ctype_state == 1) {
            size_t n = req->ctype_len;
            while (n > 0 && (req->ctype[n - 1] == ' ' || req->ctype[n - 1] == '\t')) n--;
            req->ctype[n] = '\0';
            res->content_type = req->ctype;
        }
        if (req->body) {
            req->body[req->body_len] = '\0';
            res->body = req->body;
            res->body_len = req->body_len;
        }
    } else {
        lg_debug("upstream %s: request failed (%s)", up->targets[req->target].base,
                 error == LG_UPSTREAM_TIMEOUT ? "timeout" : "unavailable");
    }
    req->state = REQ_DONE;
    req->conn = NULL;
    queue_push(&up->done, req, 0);
}

/* ---- answers ---------------------------------------------------------- */

static int on_answer_begin(http_parser *p)
{
    struct lg_upstream_conn *c = p->data;
    c->hname_len = 0;
    c->in_value = c->is_ctype = 0;
    c->req->ctype_state = 0;
    c->req->body_len = 0;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct lg_upstream_conn *c = p->data;
    if (c->in_value) {
        c->in_value = 0;
        c->hname_len = 0;
    }
    if (len <= sizeof(c->hname) - c->hname_len) memcpy(c->hname + c->hname_len, at, len);
    c->hname_len += len; /* past sizeof(hname): not a name we read */
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct lg_upstream_conn *c = p->data;
    struct lg_upstream_req *req = c->req;
    if (!c->in_value) {
        c->in_value = 1;
        c->is_ctype = c->hname_len == 12 && strncasecmp(c->hname, "Content-Type", 12) == 0;
        if (c->is_ctype) { /* the last one counts */
            req->ctype_state = 1;
            req->ctype_len = 0;
        }
    }
    if (c->is_ctype && req->ctype_state == 1) {
        if (len < sizeof(req->ctype) - req->ctype_len) {
            memcpy(req->ctype + req->ctype_len, at, len);
            req->ctype_len += len;
        } else {
            req->ctype_state = -1;
        }
    }
    return 0;
}

/* Returns 1 for a HEAD answer: it has no body whatever its headers say. */
static int on_answer_headers(http_parser *p)
{
    struct lg_upstream_conn *c = p->data;
    if (p->status_code == 101) return -1; /* no protocol switch here */
    if (p->status_code / 100 == 1) return 0;
    if (p->content_length != ULLONG_MAX && p->content_length > LG_UPSTREAM_BODY_MAX) return -1;
    return c->req->head ? 1 : 0;
}

static int on_answer_body(http_parser *p, const char *at, size_t len)
{
    struct lg_upstream_req *req = ((struct lg_upstream_conn *)p->data)->req;
    if (len > LG_UPSTREAM_BODY_MAX - req->body_len) return -1;
    if (req->body_len + len + 1 > req->body_cap) {
        size_t cap = req->body_cap ? req->body_cap : 16 * 1024;
        while (cap < req->body_len + len + 1) cap *= 2;
        if (cap > LG_UPSTREAM_BODY_MAX + 1) cap = LG_UPSTREAM_BODY_MAX + 1;
        char *b = realloc(req->body, cap);
        if (b == NULL) return -1;
        req->body = b;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, at, len);
    req->body_len += len;
    return 0;
}

/* An interim (1xx) answer is skipped: the parser goes on to the next. The
 * final one pauses the parser, so that what follows it is seen. */
static int on_answer_complete(http_parser *p)
{
    struct lg_upstream_conn *c = p->data;
    if (p->status_code / 100 == 1) return 0;
    c->done = 1;
    c->keep = http_should_keep_alive(p);
    c->req->status = p->status_code;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings answer_settings = {
    .on_message_begin = on_answer_begin,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_answer_headers,
    .on_body = on_answer_body,
    .on_message_complete = on_answer_complete,
};

/* ---- connections ------------------------------------------------------ */

static void on_conn_event(evutil_socket_t fd, short what, void *arg);

static void conn_destroy(struct lg_upstream_conn *c)
{
    if (c->ev) event_free(c->ev);
    if (c->easy) curl_easy_cleanup(c->easy);
    free(c);
}

/* A new handle with the options that never change between connections. */
static struct lg_upstream_conn *conn_new(struct lg_upstream *up)
{
    struct lg_upstream_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) return NULL;
    c->up = up;
    c->fd = CURL_SOCKET_BAD;
    c->easy = curl_easy_init();
    c->ev = event_new(up->base, -1, 0, on_conn_event, c);
    if (c->easy == NULL || c->ev == NULL) goto err;
    long connect_ms =
        up->connect_timeout_ms < up->timeout_ms ? up->connect_timeout_ms : up->timeout_ms;
    CURL *e = c->easy;
    int rc = 0;
    rc |= curl_easy_setopt(e, CURLOPT_PRIVATE, c);
    rc |= curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
    rc |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    rc |= curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    /* ALPN offers http/1.1 only: we speak nothing else on the connection */
    rc |= curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    /* no proxy from the environment */
    rc |= curl_easy_setopt(e, CURLOPT_PROXY, "");
    rc |= curl_easy_setopt(e, CURLOPT_NOPROXY, "");
    if (up->share) rc |= curl_easy_setopt(e, CURLOPT_SHARE, up->share);
    if (up->ca_file[0]) rc |= curl_easy_setopt(e, CURLOPT_CAINFO, up->ca_file);
    if (rc != 0) goto err;
    return c;
err:
    conn_destroy(c);
    return NULL;
}

/* Starts a connection to target IDX; it serves the oldest waiting request
 * once it is open. */
static int conn_start(struct lg_upstream *up, int idx)
{
    struct lg_upstream_target *t = &up->targets[idx];
    struct lg_upstream_conn *c = up->spare;
    if (c != NULL) {
        up->spare = c->next;
        up->nspare--;
    } else if ((c = conn_new(up)) == NULL) {
        return -1;
    }
    c->errbuf[0] = '\0';
    if (curl_easy_setopt(c->easy, CURLOPT_URL, t->base) != CURLE_OK ||
        curl_multi_add_handle(up->multi, c->easy) != CURLM_OK) {
        conn_destroy(c);
        return -1;
    }
    c->target = idx;
    c->state = CONN_CONNECTING;
    c->req = NULL;
    c->prev = NULL;
    c->next = up->conns;
    if (up->conns) up->conns->prev = c;
    up->conns = c;
    t->nconns++;
    t->nconnecting++;
    return 0;
}

/* Closes C: its handle leaves the multi handle, which closes the connection.
 * C must carry no request; it is kept as a spare. */
static void conn_close(struct lg_upstream_conn *c)
{
    struct lg_upstream *up = c->up;
    struct lg_upstream_target *t = &up->targets[c->target];
    if (c->state == CONN_IDLE)
        idle_unlink(t, c);
    else if (c->state == CONN_CONNECTING)
        t->nconnecting--;
    t->nconns--;
    if (c->ev_what) {
        event_del(c->ev);
        c->ev_what = 0;
    }
    curl_multi_remove_handle(up->multi, c->easy);
    c->fd = CURL_SOCKET_BAD;
    c->req = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        up->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    if (up->nspare >= LG_UPSTREAM_SPARE) {
        conn_destroy(c);
        return;
    }
    c->prev = NULL;
    c->next = up->spare;
    up->spare = c;
    up->nspare++;
}

/* Sets the interest of C's event to WHAT (EV_READ, with or without EV_WRITE). */
static int conn_watch(struct lg_upstream_conn *c, short what)
{
    if (c->ev_what == what) return 0;
    if (c->ev_what) event_del(c->ev);
    c->ev_what = 0;
    event_assign(c->ev, c->up->base, c->fd, what | EV_PERSIST, on_conn_event, c);
    if (event_add(c->ev, NULL) < 0) return -1;
    c->ev_what = what;
    return 0;
}

/* Writes what is left of C's request. Returns -1 on error; on CURLE_AGAIN
 * the rest goes when the socket is writable. */
static int conn_send(struct lg_upstream_conn *c)
{
    struct lg_upstream_req *req = c->req;
    while (req->sent < req->end) {
        size_t n = 0;
        CURLcode rc = curl_easy_send(c->easy, req->out + req->sent, req->end - req->sent, &n);
        if (rc == CURLE_AGAIN || (rc == CURLE_OK && n == 0))
            return conn_watch(c, EV_READ | EV_WRITE);
        if (rc != CURLE_OK) {
            lg_debug("upstream %s: send: %s", c->up->targets[c->target].base,
                     curl_easy_strerror(rc));
            return -1;
        }
        req->sent += n;
    }
    return conn_watch(c, EV_READ);
}

/* Puts REQ on C (open, carrying nothing) and writes it. REUSED: C comes from
 * the idle pool, where the upstream may have closed it meanwhile. */
static void exchange_start(struct lg_upstream_conn *c, struct lg_upstream_req *req, int reused);

/* The exchange on C failed before its answer was complete. A request that
 * went out on a reused connection and saw no byte of answer is sent again,
 * once, on a new connection: the upstream may close an idle connection at any
 * time. C is closed either way. */
static void exchange_failed(struct lg_upstream_conn *c)
{
    struct lg_upstream_req *req = c->req;
    struct lg_upstream_target *t = &c->up->targets[c->target];
    int again = c->reused && c->got == 0 && !req->resent;
    c->req = NULL;
    req->conn = NULL;
    conn_close(c);
    if (again) {
        req->resent = 1;
        req->state = REQ_WAITING;
        queue_push(&t->fresh, req, 0);
    } else {
        req_complete(req, LG_UPSTREAM_UNAVAILABLE);
    }
}

static void exchange_done(struct lg_upstream_conn *c)
{
    struct lg_upstream *up = c->up;
    struct lg_upstream_req *req = c->req;
    c->req = NULL;
    req->conn = NULL;
    target_mark(up, c->target, 0);
    if (c->keep)
        idle_push(&up->targets[c->target], c);
    else
        conn_close(c);
    req_complete(req, LG_UPSTREAM_OK);
}

static void exchange_start(struct lg_upstream_conn *c, struct lg_upstream_req *req, int reused)
{
    c->state = CONN_BUSY;
    c->req = req;
    c->reused = reused;
    c->got = 0;
    c->done = c->keep = 0;
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
    req->state = REQ_BUSY;
    req->conn = c;
    req->connected = 1;
    req->sent = req->start;
    if (conn_send(c) < 0) exchange_failed(c);
}

/* Reads C's answer until curl has no more (over TLS decrypted bytes may wait
 * in curl without the socket saying so) or the answer is complete. */
static void conn_read(struct lg_upstream_conn *c)
{
    struct lg_upstream *up = c->up;
    for (;;) {
        size_t n = 0;
        CURLcode rc = curl_easy_recv(c->easy, up->rbuf, sizeof(up->rbuf), &n);
        if (rc == CURLE_AGAIN) return;
        if (rc != CURLE_OK) {
            lg_debug("upstream %s: recv: %s", up->targets[c->target].base, curl_easy_strerror(rc));
            exchange_failed(c);
            return;
        }
        if (n == 0) { /* the end of the connection ends a body read until then */
            http_parser_execute(&c->parser, &answer_settings, NULL, 0);
            if (c->done) {
                c->keep = 0;
                exchange_done(c);
            } else {
                exchange_failed(c);
            }
            return;
        }
        c->got += n;
        size_t used = http_parser_execute(&c->parser, &answer_settings, up->rbuf, n);
        if (c->done) {
            /* bytes after the answer, or an answer before the whole request
             * went: the connection is in no state to go on */
            if (used != n || c->req->sent < c->req->end) c->keep = 0;
            exchange_done(c);
            return;
        }
        if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK) {
            lg_debug("upstream %s: answer: %s", up->targets[c->target].base,
                     http_errno_name(HTTP_PARSER_ERRNO(&c->parser)));
            exchange_failed(c);
            return;
        }
    }
}

/* An idle connection became readable: the upstream closed it (or sent what
 * nobody asked for). TLS records for TLS itself, such as session tickets,
 * leave nothing to read. */
static void idle_readable(struct lg_upstream_conn *c)
{
    struct lg_upstream *up = c->up;
    size_t n = 0;
    CURLcode rc = curl_easy_recv(c->easy, up->rbuf, sizeof(up->rbuf), &n);
    if (rc == CURLE_AGAIN) return;
    lg_debug("upstream %s: idle connection %s", up->targets[c->target].base,
             rc == CURLE_OK && n == 0 ? "closed" : "unusable");
    conn_close(c);
}

/* libcurl opened C: it serves the oldest waiting request, or waits idle. */
static void conn_ready(struct lg_upstream_conn *c)
{
    struct lg_upstream *up = c->up;
    struct lg_upstream_target *t = &up->targets[c->target];
    curl_socket_t fd = CURL_SOCKET_BAD;
    t->nconnecting--;
    c->state = CONN_BUSY;
    if (curl_easy_getinfo(c->easy, CURLINFO_ACTIVESOCKET, &fd) != CURLE_OK ||
        fd == CURL_SOCKET_BAD) {
        conn_close(c);
        return;
    }
    c->fd = fd;
    if (conn_watch(c, EV_READ) < 0) {
        conn_close(c);
        return;
    }
    struct lg_upstream_req *req = queue_pop(&t->fresh);
    if (req == NULL) req = queue_pop(&t->wait);
    if (req != NULL) {
        exchange_start(c, req, 0);
        return;
    }
    /* A first curl_easy_recv binds the connection to its handle: until then
     * libcurl counts it as idle in its own cache, free to close it. */
    size_t n = 0;
    if (curl_easy_recv(c->easy, up->rbuf, sizeof(up->rbuf), &n) != CURLE_AGAIN) {
        conn_close(c);
        return;
    }
    idle_push(t, c);
}

/* Refused, unresolvable, or timed out before the TCP connection was made:
 * the URL is the problem. */
static int is_connect_failure(CURL *easy, CURLcode rc)
{
    if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST) return 1;
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        curl_off_t connect_us = 0;
        curl_easy_getinfo(easy, CURLINFO_CONNECT_TIME_T, &connect_us);
        return connect_us == 0;
    }
    return 0;
}

/* Moves REQ (in no list) to another URL after a connect failure, once, when
 * one is eligible and time remains. Returns 1 when moved. */
static int req_move(struct lg_upstream *up, struct lg_upstream_req *req)
{
    if (req->moved || up->ntargets < 2) return 0;
    if (lg_mono_ms() - req->start_ms >= up->timeout_ms) return 0;
    int idx = target_pick(up, req->target);
    if (idx < 0) return 0;
    req->moved = 1;
    req_set_target(req, idx);
    req->state = REQ_WAITING;
    queue_push(&up->targets[idx].wait, req, 1);
    return 1;
}

/* libcurl could not open C: the oldest request waiting for its URL fails with
 * it, or moves to another URL when the URL itself failed. */
static void conn_failed(struct lg_upstream_conn *c, CURLcode rc)
{
    struct lg_upstream *up = c->up;
    int idx = c->target;
    struct lg_upstream_target *t = &up->targets[idx];
    int url_failed = is_connect_failure(c->easy, rc);
    lg_debug("upstream %s: connect: %s", t->base,
             c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc));
    conn_close(c);
    if (url_failed) target_mark(up, idx, 1);
    struct lg_upstream_req *req = queue_pop(&t->fresh);
    if (req == NULL) req = queue_pop(&t->wait);
    if (req == NULL || (url_failed && req_move(up, req))) return;
    req_complete(req,
                 rc == CURLE_OPERATION_TIMEDOUT ? LG_UPSTREAM_TIMEOUT : LG_UPSTREAM_UNAVAILABLE);
}

/* Fails the oldest request of Q: no connection could be started for it. */
static void fail_one(struct req_queue *q)
{
    struct lg_upstream_req *req = queue_pop(q);
    if (req) req_complete(req, LG_UPSTREAM_UNAVAILABLE);
}

/* Matches target IDX's waiting requests with connections: idle ones first,
 * then new ones within max_conns. A request sent again takes only a new
 * connection, for which an idle one is closed when the pool is full. */
static void pump(struct lg_upstream *up, int idx)
{
    struct lg_upstream_target *t = &up->targets[idx];
    for (;;) {
        if (t->fresh.n > t->nconnecting) {
            if (t->nconns < up->max_conns) {
                if (conn_start(up, idx) < 0) fail_one(&t->fresh);
                continue;
            }
            if (t->idle_tail) {
                conn_close(t->idle_tail);
                continue;
            }
        }
        if (t->wait.head && t->idle) {
            struct lg_upstream_conn *c = t->idle;
            idle_unlink(t, c);
            exchange_start(c, queue_pop(&t->wait), 1);
            continue;
        }
        if (t->wait.n + t->fresh.n > t->nconnecting && t->nconns < up->max_conns) {
            if (conn_start(up, idx) < 0) fail_one(t->wait.n ? &t->wait : &t->fresh);
            continue;
        }
        return;
    }
}

static void pump_all(struct lg_upstream *up)
{
    for (int i = 0; i < up->ntargets; i++) pump(up, i);
}

/* ---- dispatch --------------------------------------------------------- */

static void upstream_destroy(struct lg_upstream *up);

/* Calls the callbacks of finished requests, oldest first. Runs only as our
 * own outermost event callback ends, so a callback may fetch, cancel or free
 * the client. */
static void run_callbacks(struct lg_upstream *up)
{
    struct lg_upstream_req *req;
    while (!up->closing && (req = queue_pop(&up->done)) != NULL) {
        req->state = REQ_CALLING;
        up->inflight--;
        req->cb(&req->res, req->arg);
        req_put(up, req);
    }
}

static void enter(struct lg_upstream *up) { up->dispatching++; }

/* Ends one of our event callbacks: the outermost matches waiting requests
 * with connections, then calls the callbacks due. */
static void leave(struct lg_upstream *up)
{
    if (up->dispatching == 1 && !up->closing) {
        pump_all(up);
        run_callbacks(up);
    }
    if (--up->dispatching == 0 && up->closing)
        upstream_destroy(up); /* lg_upstream_free was called from a callback */
}

/* After a public call outside our own events: callbacks due run from the
 * loop, never from inside the call. */
static void schedule_callbacks(struct lg_upstream *up)
{
    if (up->done.head != NULL && up->dispatching == 0) event_active(up->flush, EV_TIMEOUT, 1);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    struct lg_upstream *up = arg;
    enter(up);
    leave(up);
}

static void on_conn_event(evutil_socket_t fd, short what, void *arg)
{
    struct lg_upstream_conn *c = arg;
    struct lg_upstream *up = c->up;
    enter(up);
    if (c->state == CONN_IDLE) {
        idle_readable(c);
    } else if (c->state == CONN_BUSY && c->req != NULL) {
        int failed = (what & EV_WRITE) && c->req->sent < c->req->end && conn_send(c) < 0;
        if (failed)
            exchange_failed(c);
        else if (what & EV_READ)
            conn_read(c);
    }
    leave(up);
}

/* The whole exchange's deadline: the request fails, and a connection it was
 * on is closed (its answer may still come). Timing out before it had any
 * connection counts against the URL, as a connect timeout does. */
static void on_req_timer(evutil_socket_t fd, short what, void *arg)
{
    struct lg_upstream_req *req = arg;
    struct lg_upstream *up = req->up;
    enter(up);
    if (req->state == REQ_WAITING) {
        queue_remove(req);
        if (!req->connected) target_mark(up, req->target, 1);
        req_complete(req, LG_UPSTREAM_TIMEOUT);
    } else if (req->state == REQ_BUSY) {
        struct lg_upstream_conn *c = req->conn;
        c->req = NULL;
        req->conn = NULL;
        conn_close(c);
        req_complete(req, LG_UPSTREAM_TIMEOUT);
    }
    leave(up);
}

/* Connections libcurl finished opening (or failed to). Runs from our event
 * callbacks only, never from inside a curl callback, so removing handles is
 * safe. A CONNECT_ONLY handle stays added after its CURLMSG_DONE. */
static void check_info(struct lg_upstream *up)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(up->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) continue;
        CURLcode rc = msg->data.result;
        struct lg_upstream_conn *c = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        if (c == NULL || c->state != CONN_CONNECTING) continue;
        if (rc == CURLE_OK)
            conn_ready(c);
        else
            conn_failed(c, rc);
    }
}

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
    struct lg_upstream *up = arg;
    int action =
        ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running;
    enter(up);
    curl_multi_socket_action(up->multi, fd, action, &running);
    check_info(up);
    leave(up);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct lg_upstream *up = arg;
    int running;
    enter(up);
    curl_multi_socket_action(up->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_info(up);
    leave(up);
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
    up->max_conns = cfg->upstream_max_connections > 0 ? cfg->upstream_max_connections : 256;
    up->pool_max = up->max_conns > LG_UPSTREAM_POOL_MIN ? up->max_conns : LG_UPSTREAM_POOL_MIN;
    snprintf(up->ca_file, sizeof(up->ca_file), "%s", cfg->upstream_ca_file);
    up->deadline_tv.tv_sec = up->timeout_ms / 1000;
    up->deadline_tv.tv_usec = (up->timeout_ms % 1000) * 1000;
    /* every request has the same deadline: a common timeout adds it in O(1) */
    up->deadline = event_base_init_common_timeout(base, &up->deadline_tv);
    if (up->deadline == NULL) up->deadline = &up->deadline_tv;

    if (targets_parse(up, cfg->upstream_url) < 0) goto err;
    up->timer = evtimer_new(base, on_timer, up);
    up->flush = event_new(base, -1, 0, on_flush, up);
    up->multi = curl_multi_init();
    up->share = curl_share_init();
    if (up->timer == NULL || up->flush == NULL || up->multi == NULL || up->share == NULL) goto err;
    int rc = 0;
    rc |= curl_share_setopt(up->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    rc |= curl_multi_setopt(up->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    rc |= curl_multi_setopt(up->multi, CURLMOPT_SOCKETDATA, up);
    rc |= curl_multi_setopt(up->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    rc |= curl_multi_setopt(up->multi, CURLMOPT_TIMERDATA, up);
    /* curl's cache must never close one of ours to make room */
    rc |= curl_multi_setopt(up->multi, CURLMOPT_MAXCONNECTS,
                            (long)up->max_conns * up->ntargets + LG_UPSTREAM_SPARE);
    if (rc != 0) goto err;
    return up;

err:
    if (up->multi) curl_multi_cleanup(up->multi);
    if (up->share) curl_share_cleanup(up->share);
    if (up->timer) event_free(up->timer);
    if (up->flush) event_free(up->flush);
    if (up->targets) targets_free(up);
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
    while (up->conns != NULL) {
        struct lg_upstream_conn *c = up->conns;
        if (c->req) req_destroy(c->req);
        c->req = NULL;
        conn_close(c);
    }
    for (int i = 0; i < up->ntargets; i++) {
        while ((req = queue_pop(&up->targets[i].wait)) != NULL) req_destroy(req);
        while ((req = queue_pop(&up->targets[i].fresh)) != NULL) req_destroy(req);
    }
    while ((req = queue_pop(&up->done)) != NULL) req_destroy(req);
    while ((req = up->pool) != NULL) {
        up->pool = req->next;
        req_destroy(req);
    }
    while (up->spare != NULL) {
        struct lg_upstream_conn *c = up->spare;
        up->spare = c->next;
        conn_destroy(c);
    }
    curl_multi_cleanup(up->multi);
    curl_share_cleanup(up->share);
    while (up->socks) sock_free(up, up->socks);
    event_free(up->timer);
    event_free(up->flush);
    targets_free(up);
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
    req->head = head != 0;
    req->moved = req->resent = req->connected = 0;
    req->body_len = 0;
    req->ctype_state = 0;
    if (req_format(req, path_query, plen, headers) < 0) {
        req_put(up, req);
        return NULL;
    }
    req_set_target(req, target_pick(up, -1));
    req->start_ms = lg_mono_ms();
    if (evtimer_add(req->timer, up->deadline) < 0) {
        req_put(up, req);
        return NULL;
    }
    up->inflight++;
    req->state = REQ_WAITING;
    queue_push(&up->targets[req->target].wait, req, 0);
    pump(up, req->target);
    schedule_callbacks(up);
    return req;
}

void lg_upstream_cancel(struct lg_upstream_req *req)
{
    if (req == NULL) return;
    struct lg_upstream *up = req->up;
    switch (req->state) {
    case REQ_WAITING:
    case REQ_DONE: queue_remove(req); break;
    case REQ_BUSY: {
        /* the answer may still come: the connection cannot serve another */
        struct lg_upstream_conn *c = req->conn;
        c->req = NULL;
        req->conn = NULL;
        conn_close(c);
        break;
    }
    default: return; /* its callback is running, or it was cancelled */
    }
    evtimer_del(req->timer);
    up->inflight--;
    int idx = req->target;
    req_put(up, req);
    if (!up->closing) pump(up, idx);
    schedule_callbacks(up);
}

int lg_upstream_inflight(const struct lg_upstream *up) { return up ? up->inflight : 0; }

int lg_upstream_healthy(const struct lg_upstream *up)
{
    if (up == NULL) return 0;
    for (int i = 0; i < up->ntargets; i++)
        if (up->targets[i].failed_ms == 0) return 1;
    return 0;
}
