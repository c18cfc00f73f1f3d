/* The upstream client: per worker, a pool of kept-alive connections to the
 * lock platform's API. libcurl opens them (one multi handle driven by the
 * worker's libevent loop, curl's hiperfifo pattern), secures them and holds
 * each in an easy handle in CONNECT_ONLY mode; a request is written on one
 * with curl_easy_send and its answer read with curl_easy_recv and framed by
 * http_parser. No curl transfer is made per request: that machinery costs
 * twenty times the exchange itself.
 *
 * This file is the client's public interface and the events that drive it
 * (curl's sockets and timer, each connection's socket, each request's
 * deadline), with the callbacks of finished requests run as the outermost
 * event ends. The pieces it drives are in upstream_conn.c (the pool and its
 * I/O), upstream_answer.c, upstream_request.c and upstream_target.c. */
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
#include "upstream_internal.h"

static void on_req_timer(evutil_socket_t fd, short what, void *arg);

static struct lg_upstream_req *req_get(struct lg_upstream *up)
{
    struct lg_list *pooled = lg_list_pop_front(&up->pool);
    if (pooled != NULL) {
        up->npool--;
        return LG_CONTAINER_OF(pooled, struct lg_upstream_req, link);
    }
    struct lg_upstream_req *req = calloc(1, sizeof(*req));
    if (req == NULL) return NULL;
    req->up = up;
    lg_list_init(&req->link);
    req->timer = evtimer_new(up->base, on_req_timer, req);
    if (req->timer == NULL) {
        free(req);
        return NULL;
    }
    return req;
}

static void upstream_destroy(struct lg_upstream *up);

/* Calls the callbacks of finished requests, oldest first. Runs only as our
 * own outermost event callback ends, so a callback may fetch, cancel or free
 * the client. */
static void run_callbacks(struct lg_upstream *up)
{
    struct lg_upstream_req *req;
    while (!up->closing && (req = lg_upstream_queue_pop(&up->done)) != NULL) {
        req->state = REQ_CALLING;
        up->inflight--;
        req->cb(&req->res, req->arg);
        lg_upstream_req_put(up, req);
    }
}

static void enter(struct lg_upstream *up) { up->dispatching++; }

/* Ends one of our event callbacks: the outermost matches waiting requests
 * with connections, then calls the callbacks due. */
static void leave(struct lg_upstream *up)
{
    if (up->dispatching == 1 && !up->closing) {
        lg_upstream_pump_all(up);
        run_callbacks(up);
    }
    if (--up->dispatching == 0 && up->closing)
        upstream_destroy(up); /* lg_upstream_free was called from a callback */
}

/* After a public call outside our own events: callbacks due run from the
 * loop, never from inside the call. */
static void schedule_callbacks(struct lg_upstream *up)
{
    if (up->done.n > 0 && up->dispatching == 0) event_active(up->flush, EV_TIMEOUT, 1);
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
    lg_upstream_conn_event(c, what);
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
        lg_upstream_queue_remove(req);
        if (!req->connected) lg_upstream_target_mark(up, req->target, 1);
        lg_upstream_req_complete(req, LG_UPSTREAM_TIMEOUT);
    } else if (req->state == REQ_BUSY) {
        struct lg_upstream_conn *c = req->conn;
        c->req = NULL;
        req->conn = NULL;
        lg_upstream_conn_close(c);
        lg_upstream_req_complete(req, LG_UPSTREAM_TIMEOUT);
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
            lg_upstream_conn_ready(c);
        else
            lg_upstream_conn_failed(c, rc);
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
    lg_list_remove(&s->link);
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
        lg_list_push_front(&up->socks, &s->link);
        curl_multi_assign(up->multi, fd, s);
    } else {
        event_del(s->ev);
        event_assign(s->ev, up->base, fd, kind, on_socket_event, up);
    }
    return event_add(s->ev, NULL) == 0 ? 0 : -1;
}

struct lg_upstream *lg_upstream_new(struct event_base *base, const struct lg_config *cfg)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return NULL;
    struct lg_upstream *up = calloc(1, sizeof(*up));
    if (up == NULL) goto err_global;
    up->base = base;
    up->on_conn_event = on_conn_event;
    lg_list_init(&up->conns);
    lg_list_init(&up->spare);
    lg_list_init(&up->pool);
    lg_list_init(&up->socks);
    lg_list_init(&up->done.list);
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

    if (lg_upstream_targets_parse(up, cfg->upstream_url) < 0) goto err;
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
    if (up->targets) lg_upstream_targets_free(up);
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
    struct lg_list *n;
    while ((n = lg_list_first(&up->conns)) != NULL) {
        struct lg_upstream_conn *c = LG_CONTAINER_OF(n, struct lg_upstream_conn, link);
        if (c->req) lg_upstream_req_destroy(c->req);
        c->req = NULL;
        lg_upstream_conn_close(c);
    }
    for (int i = 0; i < up->ntargets; i++) {
        while ((req = lg_upstream_queue_pop(&up->targets[i].wait)) != NULL)
            lg_upstream_req_destroy(req);
        while ((req = lg_upstream_queue_pop(&up->targets[i].fresh)) != NULL)
            lg_upstream_req_destroy(req);
    }
    while ((req = lg_upstream_queue_pop(&up->done)) != NULL) lg_upstream_req_destroy(req);
    while ((n = lg_list_pop_front(&up->pool)) != NULL)
        lg_upstream_req_destroy(LG_CONTAINER_OF(n, struct lg_upstream_req, link));
    while ((n = lg_list_pop_front(&up->spare)) != NULL)
        lg_upstream_conn_destroy(LG_CONTAINER_OF(n, struct lg_upstream_conn, link));
    curl_multi_cleanup(up->multi);
    curl_share_cleanup(up->share);
    while ((n = lg_list_first(&up->socks)) != NULL)
        sock_free(up, LG_CONTAINER_OF(n, struct lg_upstream_sock, link));
    event_free(up->timer);
    event_free(up->flush);
    lg_upstream_targets_free(up);
    free(up);
    curl_global_cleanup();
}

struct lg_upstream_req *lg_upstream_fetch(struct lg_upstream *up, const char *path_query, int head,
                                          const char *const *headers, lg_upstream_cb *cb, void *arg)
{
    size_t plen;
    if (up == NULL || up->closing || cb == NULL || !lg_upstream_path_ok(path_query, &plen))
        return NULL;
    struct lg_upstream_req *req = req_get(up);
    if (req == NULL) return NULL;
    req->cb = cb;
    req->arg = arg;
    req->head = head != 0;
    req->moved = req->resent = req->connected = 0;
    req->body_len = 0;
    req->ctype_state = 0;
    if (lg_upstream_req_format(req, path_query, plen, headers) < 0) {
        lg_upstream_req_put(up, req);
        return NULL;
    }
    lg_upstream_req_set_target(req, lg_upstream_target_pick(up, -1));
    req->start_ms = lg_mono_ms();
    if (evtimer_add(req->timer, up->deadline) < 0) {
        lg_upstream_req_put(up, req);
        return NULL;
    }
    up->inflight++;
    req->state = REQ_WAITING;
    lg_upstream_queue_push(&up->targets[req->target].wait, req, 0);
    lg_upstream_pump(up, req->target);
    schedule_callbacks(up);
    return req;
}

void lg_upstream_cancel(struct lg_upstream_req *req)
{
    if (req == NULL) return;
    struct lg_upstream *up = req->up;
    switch (req->state) {
    case REQ_WAITING:
    case REQ_DONE: lg_upstream_queue_remove(req); break;
    case REQ_BUSY: {
        /* the answer may still come: the connection cannot serve another */
        struct lg_upstream_conn *c = req->conn;
        c->req = NULL;
        req->conn = NULL;
        lg_upstream_conn_close(c);
        break;
    }
    default: return; /* its callback is running, or it was cancelled */
    }
    evtimer_del(req->timer);
    up->inflight--;
    int idx = req->target;
    lg_upstream_req_put(up, req);
    if (!up->closing) lg_upstream_pump(up, idx);
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
