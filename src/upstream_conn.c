/* The connection pool and its CONNECT_ONLY I/O: per URL, connections opened
 * by libcurl and kept idle between exchanges, requests queued for them and
 * matched with them, a request written with curl_easy_send and its answer
 * read with curl_easy_recv, a request sent again once when a reused
 * connection turns out closed, moved to another URL when its own failed.
 * The events that drive it, and the callbacks of finished requests, are
 * upstream.c's. */
#include <curl/curl.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "lockgate/log.h"
#include "lockgate/util.h"
#include "upstream_internal.h"

void lg_upstream_queue_push(struct lg_upstream_queue *q, struct lg_upstream_req *req, int front)
{
    req->queue = q;
    if (front)
        lg_list_push_front(&q->list, &req->link);
    else
        lg_list_push_back(&q->list, &req->link);
    q->n++;
}

void lg_upstream_queue_remove(struct lg_upstream_req *req)
{
    lg_list_remove(&req->link);
    req->queue->n--;
    req->queue = NULL;
}

struct lg_upstream_req *lg_upstream_queue_pop(struct lg_upstream_queue *q)
{
    struct lg_list *n = lg_list_first(&q->list);
    if (n == NULL) return NULL;
    struct lg_upstream_req *req = LG_CONTAINER_OF(n, struct lg_upstream_req, link);
    lg_upstream_queue_remove(req);
    return req;
}

static void idle_push(struct lg_upstream_target *t, struct lg_upstream_conn *c)
{
    c->state = CONN_IDLE;
    lg_list_push_front(&t->idle, &c->idle_link);
}

static void idle_unlink(struct lg_upstream_conn *c)
{
    lg_list_remove(&c->idle_link);
    c->state = CONN_BUSY;
}

/* The most recently used idle connection of T (first) or the least (last). */
static struct lg_upstream_conn *idle_conn(struct lg_list *n)
{
    return n != NULL ? LG_CONTAINER_OF(n, struct lg_upstream_conn, idle_link) : NULL;
}

void lg_upstream_req_destroy(struct lg_upstream_req *req)
{
    if (req->timer) event_free(req->timer);
    free(req->out);
    free(req->body);
    free(req);
}

void lg_upstream_req_put(struct lg_upstream *up, struct lg_upstream_req *req)
{
    req->state = REQ_FREE;
    req->cb = NULL;
    req->arg = NULL;
    req->conn = NULL;
    if (up->npool >= up->pool_max) {
        lg_upstream_req_destroy(req);
        return;
    }
    if (req->body_cap > LG_UPSTREAM_BODY_KEEP) {
        free(req->body);
        req->body = NULL;
        req->body_cap = 0;
    }
    req->body_len = 0;
    lg_list_push_front(&up->pool, &req->link);
    up->npool++;
}

void lg_upstream_conn_destroy(struct lg_upstream_conn *c)
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
    lg_list_init(&c->link);
    lg_list_init(&c->idle_link);
    c->easy = curl_easy_init();
    c->ev = event_new(up->base, -1, 0, up->on_conn_event, c);
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
    lg_upstream_conn_destroy(c);
    return NULL;
}

/* Starts a connection to target IDX; it serves the oldest waiting request
 * once it is open. */
static int conn_start(struct lg_upstream *up, int idx)
{
    struct lg_upstream_target *t = &up->targets[idx];
    struct lg_list *spare = lg_list_pop_front(&up->spare);
    struct lg_upstream_conn *c =
        spare ? LG_CONTAINER_OF(spare, struct lg_upstream_conn, link) : NULL;
    if (c != NULL) {
        up->nspare--;
    } else if ((c = conn_new(up)) == NULL) {
        return -1;
    }
    c->errbuf[0] = '\0';
    if (curl_easy_setopt(c->easy, CURLOPT_URL, t->base) != CURLE_OK ||
        curl_multi_add_handle(up->multi, c->easy) != CURLM_OK) {
        lg_upstream_conn_destroy(c);
        return -1;
    }
    c->target = idx;
    c->state = CONN_CONNECTING;
    c->req = NULL;
    lg_list_push_front(&up->conns, &c->link);
    t->nconns++;
    t->nconnecting++;
    return 0;
}

void lg_upstream_conn_close(struct lg_upstream_conn *c)
{
    struct lg_upstream *up = c->up;
    struct lg_upstream_target *t = &up->targets[c->target];
    if (c->state == CONN_IDLE)
        idle_unlink(c);
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
    lg_list_remove(&c->link);
    if (up->nspare >= LG_UPSTREAM_SPARE) {
        lg_upstream_conn_destroy(c);
        return;
    }
    lg_list_push_front(&up->spare, &c->link);
    up->nspare++;
}

/* Sets the interest of C's event to WHAT (EV_READ, with or without EV_WRITE). */
static int conn_watch(struct lg_upstream_conn *c, short what)
{
    if (c->ev_what == what) return 0;
    if (c->ev_what) event_del(c->ev);
    c->ev_what = 0;
    event_assign(c->ev, c->up->base, c->fd, what | EV_PERSIST, c->up->on_conn_event, c);
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
    lg_upstream_conn_close(c);
    if (again) {
        req->resent = 1;
        req->state = REQ_WAITING;
        lg_upstream_queue_push(&t->fresh, req, 0);
    } else {
        lg_upstream_req_complete(req, LG_UPSTREAM_UNAVAILABLE);
    }
}

static void exchange_done(struct lg_upstream_conn *c)
{
    struct lg_upstream *up = c->up;
    struct lg_upstream_req *req = c->req;
    c->req = NULL;
    req->conn = NULL;
    lg_upstream_target_mark(up, c->target, 0);
    if (c->keep)
        idle_push(&up->targets[c->target], c);
    else
        lg_upstream_conn_close(c);
    lg_upstream_req_complete(req, LG_UPSTREAM_OK);
}

static void exchange_start(struct lg_upstream_conn *c, struct lg_upstream_req *req, int reused)
{
    c->state = CONN_BUSY;
    c->req = req;
    c->reused = reused;
    c->got = 0;
    c->done = c->keep = 0;
    lg_upstream_answer_start(c);
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
            lg_upstream_answer_feed(c, NULL, 0);
            if (c->done) {
                c->keep = 0;
                exchange_done(c);
            } else {
                exchange_failed(c);
            }
            return;
        }
        c->got += n;
        size_t used = lg_upstream_answer_feed(c, up->rbuf, n);
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
    lg_upstream_conn_close(c);
}

void lg_upstream_conn_ready(struct lg_upstream_conn *c)
{
    struct lg_upstream *up = c->up;
    struct lg_upstream_target *t = &up->targets[c->target];
    curl_socket_t fd = CURL_SOCKET_BAD;
    t->nconnecting--;
    c->state = CONN_BUSY;
    if (curl_easy_getinfo(c->easy, CURLINFO_ACTIVESOCKET, &fd) != CURLE_OK ||
        fd == CURL_SOCKET_BAD) {
        lg_upstream_conn_close(c);
        return;
    }
    c->fd = fd;
    if (conn_watch(c, EV_READ) < 0) {
        lg_upstream_conn_close(c);
        return;
    }
    struct lg_upstream_req *req = lg_upstream_queue_pop(&t->fresh);
    if (req == NULL) req = lg_upstream_queue_pop(&t->wait);
    if (req != NULL) {
        exchange_start(c, req, 0);
        return;
    }
    /* A first curl_easy_recv binds the connection to its handle: until then
     * libcurl counts it as idle in its own cache, free to close it. */
    size_t n = 0;
    if (curl_easy_recv(c->easy, up->rbuf, sizeof(up->rbuf), &n) != CURLE_AGAIN) {
        lg_upstream_conn_close(c);
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
    int idx = lg_upstream_target_pick(up, req->target);
    if (idx < 0) return 0;
    req->moved = 1;
    lg_upstream_req_set_target(req, idx);
    req->state = REQ_WAITING;
    lg_upstream_queue_push(&up->targets[idx].wait, req, 1);
    return 1;
}

void lg_upstream_conn_failed(struct lg_upstream_conn *c, CURLcode rc)
{
    struct lg_upstream *up = c->up;
    int idx = c->target;
    struct lg_upstream_target *t = &up->targets[idx];
    int url_failed = is_connect_failure(c->easy, rc);
    lg_debug("upstream %s: connect: %s", t->base,
             c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc));
    lg_upstream_conn_close(c);
    if (url_failed) lg_upstream_target_mark(up, idx, 1);
    struct lg_upstream_req *req = lg_upstream_queue_pop(&t->fresh);
    if (req == NULL) req = lg_upstream_queue_pop(&t->wait);
    if (req == NULL || (url_failed && req_move(up, req))) return;
    lg_upstream_req_complete(req, rc == CURLE_OPERATION_TIMEDOUT ? LG_UPSTREAM_TIMEOUT
                                                                 : LG_UPSTREAM_UNAVAILABLE);
}

/* Fails the oldest request of Q: no connection could be started for it. */
static void fail_one(struct lg_upstream_queue *q)
{
    struct lg_upstream_req *req = lg_upstream_queue_pop(q);
    if (req) lg_upstream_req_complete(req, LG_UPSTREAM_UNAVAILABLE);
}

/* Matches target IDX's waiting requests with connections: idle ones first,
 * then new ones within max_conns. A request sent again takes only a new
 * connection, for which an idle one is closed when the pool is full. */
void lg_upstream_pump(struct lg_upstream *up, int idx)
{
    struct lg_upstream_target *t = &up->targets[idx];
    for (;;) {
        if (t->fresh.n > t->nconnecting) {
            if (t->nconns < up->max_conns) {
                if (conn_start(up, idx) < 0) fail_one(&t->fresh);
                continue;
            }
            if (!lg_list_empty(&t->idle)) {
                lg_upstream_conn_close(idle_conn(lg_list_last(&t->idle)));
                continue;
            }
        }
        if (t->wait.n > 0 && !lg_list_empty(&t->idle)) {
            struct lg_upstream_conn *c = idle_conn(lg_list_first(&t->idle));
            idle_unlink(c);
            exchange_start(c, lg_upstream_queue_pop(&t->wait), 1);
            continue;
        }
        if (t->wait.n + t->fresh.n > t->nconnecting && t->nconns < up->max_conns) {
            if (conn_start(up, idx) < 0) fail_one(t->wait.n ? &t->wait : &t->fresh);
            continue;
        }
        return;
    }
}

void lg_upstream_pump_all(struct lg_upstream *up)
{
    for (int i = 0; i < up->ntargets; i++) lg_upstream_pump(up, i);
}

void lg_upstream_req_complete(struct lg_upstream_req *req, enum lg_upstream_error error)
{
    struct lg_upstream *up = req->up;
    evtimer_del(req->timer);
    lg_upstream_answer_result(req, error);
    if (error != LG_UPSTREAM_OK)
        lg_debug("upstream %s: request failed (%s)", up->targets[req->target].base,
                 error == LG_UPSTREAM_TIMEOUT ? "timeout" : "unavailable");
    req->state = REQ_DONE;
    req->conn = NULL;
    lg_upstream_queue_push(&up->done, req, 0);
}

void lg_upstream_conn_event(struct lg_upstream_conn *c, short what)
{
    if (c->state == CONN_IDLE) {
        idle_readable(c);
    } else if (c->state == CONN_BUSY && c->req != NULL) {
        int failed = (what & EV_WRITE) && c->req->sent < c->req->end && conn_send(c) < 0;
        if (failed)
            exchange_failed(c);
        else if (what & EV_READ)
            conn_read(c);
    }
}
