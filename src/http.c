/* The HTTP/1.1 server: listeners, connections on bufferevents (plain and
 * TLS), requests framed by http_parse.c and handed to the handler, answers
 * (written by http_write.c) that end a request or the connection.
 *
 * A connection owns one request object, reused for every request it
 * carries, and borrows a read buffer from its server's pool only while a
 * request is being read or answered: the head's names and values are views
 * into that buffer. Read interest stays armed for the life of the
 * connection; a plain answer is written straight to the socket, so write
 * interest is armed only when the socket would block.
 *
 *   IDLE --first byte--> HEAD --head--> BODY --body--> HANDLER --answer--> IDLE
 *                                                         |  (keep-alive)
 *                                                         +--> STREAM --end--> IDLE
 *   any protocol error, Connection: close, 413 ...  --> CLOSING --flushed--> LINGER --> freed
 *
 * While the handler holds a request, a read EOF only means the client has
 * finished sending (it still gets its answer); a reset or a write error
 * means it has gone, which the handler hears through its close callback. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "http_internal.h"
#include "lockgate/access_log.h"
#include "lockgate/config.h"
#include "lockgate/conn_limit.h"
#include "lockgate/proxy_proto.h"
#include "lockgate/http.h"
#include "lockgate/http_parse.h"
#include "lockgate/log.h"
#include "lockgate/metrics.h"
#include "lockgate/tls.h"
#include "lockgate/util.h"

#define ACCEPT_PAUSE_MS 100
#define LINGER_MS       2000         /* a closing connection reads and drops this long at most */
#define OUT_HIGH        (256 * 1024) /* unsent answer bytes past which no new request is read */
#define BUF_SPARE       4096         /* read buffer room past the head limit, for body bytes */
#define BUF_POOL_MAX    64

static void conn_process(struct lg_http_conn *c);
static void conn_destroy(struct lg_http_conn *c);

/* ---- small pieces ---- */

static void *buf_get(struct lg_http_server *srv)
{
    void *b = lg_list_pop_front(&srv->free_bufs);
    if (b != NULL) {
        srv->nfree_bufs--;
        return b;
    }
    return malloc(srv->buf_cap);
}

static void buf_put(struct lg_http_conn *c)
{
    struct lg_http_server *srv = c->srv;
    if (c->buf == NULL) return;
    OPENSSL_cleanse(c->buf, c->len); /* a request head: Authorization, X-API-Secret */
    if (srv->nfree_bufs < BUF_POOL_MAX) {
        lg_list_push_front(&srv->free_bufs, (struct lg_list *)(void *)c->buf);
        srv->nfree_bufs++;
    } else {
        free(c->buf);
    }
    c->buf = NULL;
    c->len = c->parsed = 0;
}

/* Deadlines are kept lazily: the timer is moved only when a deadline comes
 * earlier than the one it is set for. A request answered within one read
 * touches no timer at all; a timer that fires early is set again for the
 * rest. */
static void timer_arm(struct lg_http_conn *c, int64_t at, int64_t now)
{
    int64_t ms = at > now ? at - now : 0;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(c->timer, &tv);
    c->armed = at;
}

static void deadline_arm(struct lg_http_conn *c, int64_t now)
{
    if (c->deadline != 0 && (c->armed == 0 || c->armed > c->deadline))
        timer_arm(c, c->deadline, now);
}

static void deadline_set(struct lg_http_conn *c, int64_t ms)
{
    int64_t now = lg_mono_ms();
    c->deadline = now + ms;
    deadline_arm(c, now);
}

/* ---- closing ---- */

static void conn_linger(struct lg_http_conn *c)
{
    if (c->tls) {
        SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
        if (ssl != NULL) SSL_shutdown(ssl); /* close_notify, straight to the socket */
        ERR_clear_error();
    }
    if (c->read_eof) {
        conn_destroy(c);
        return;
    }
    /* Reading on for a moment lets the client see the answer: closing with
     * unread bytes in the socket would reset the connection under it. */
    shutdown(c->fd, SHUT_WR);
    c->state = C_LINGER;
    buf_put(c);
    evbuffer_drain(bufferevent_get_input(c->bev),
                   evbuffer_get_length(bufferevent_get_input(c->bev)));
    deadline_set(c, LINGER_MS);
}

/* The answer is written: close once it has left. */
static void conn_close_after_flush(struct lg_http_conn *c)
{
    c->state = C_CLOSING;
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        conn_linger(c);
        return;
    }
    deadline_set(c, (int64_t)c->srv->client_timeout_s * 1000);
}

static void conn_destroy(struct lg_http_conn *c)
{
    if (c->in_process) {
        c->doomed = true;
        return;
    }
    if (c->timer != NULL) event_free(c->timer);
    if (c->bev != NULL) {
        /* A connection that ended without an error keeps its TLS session
         * for resumption (OpenSSL forgets one freed before a shutdown). */
        SSL *ssl = c->tls && !c->failed ? bufferevent_openssl_get_ssl(c->bev) : NULL;
        if (ssl != NULL) SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        bufferevent_free(c->bev);
    }
    buf_put(c);
    lg_http_parse_free(&c->req.ps);
    if (c->counted) lg_conn_limit_release(c->slot);
    lg_list_remove(&c->link);
    free(c);
}

static bool owned_by_handler(const struct lg_http_conn *c)
{
    return c->state == C_HANDLER || c->state == C_STREAM;
}

/* The client has gone. A request the handler holds keeps the connection
 * object until it is answered; the socket goes now. */
static void conn_gone(struct lg_http_conn *c)
{
    c->failed = true;
    if (!owned_by_handler(c)) {
        conn_destroy(c);
        return;
    }
    if (c->bev != NULL) bufferevent_free(c->bev);
    c->bev = NULL;
    c->deadline = 0;
    lg_http_close_cb *cb = c->req.on_close;
    c->req.on_close = NULL;
    if (cb != NULL) cb(&c->req, c->req.close_arg); /* answers: C may be gone */
}

void lg_http_on_close(struct lg_http_req *r, lg_http_close_cb *on_close, void *arg)
{
    r->on_close = on_close;
    r->close_arg = arg;
    /* Gone already: tell it from the loop, not from inside this call. */
    if (r->conn->bev == NULL) timer_arm(r->conn, 0, 0);
}

/* ---- answers ---- */

/* The request is answered: the connection waits for the next one, or closes. */
static void request_done(struct lg_http_conn *c)
{
    c->served++;
    if (c->req.close_after) {
        conn_close_after_flush(c);
        return;
    }
    lg_http_parse_reset(&c->req.ps);
    /* what follows the request (pipelined) moves to the front */
    memmove(c->buf, c->buf + c->parsed, c->len - c->parsed);
    c->len -= c->parsed;
    OPENSSL_cleanse(c->buf + c->len, c->parsed); /* what the answered head left behind */
    c->parsed = 0;
    if (c->len == 0) buf_put(c);
    c->state = C_IDLE;
    deadline_set(c, (int64_t)c->srv->client_timeout_s * 1000);
    if (!c->in_process &&
        (c->len > 0 || c->read_eof || evbuffer_get_length(bufferevent_get_input(c->bev)) > 0))
        conn_process(c);
}

/* The request of a connection whose client has gone: nothing to write. */
static void release_gone(struct lg_http_req *r, size_t bytes)
{
    lg_http_answer_count(r, bytes);
    conn_destroy(r->conn);
}

void lg_http_reply(struct lg_http_req *r, int status, const char *content_type, const char *body,
                   size_t len)
{
    struct lg_http_conn *c = r->conn;
    r->status = status;
    if (c->bev == NULL) {
        release_gone(r, 0);
        return;
    }
    if (status == 499) { /* nobody is there to read it */
        lg_http_answer_count(r, 0);
        r->close_after = true;
        conn_close_after_flush(c);
        return;
    }
    char head[HEAD_MAX];
    size_t n =
        lg_http_head_format(r, head, status, content_type, (long long)(body != NULL ? len : 0));
    bool head_only = r->ps.method == LG_HTTP_HEAD || body == NULL;
    lg_http_conn_send(c, head, n, body, head_only ? 0 : len);
    lg_http_answer_count(r, head_only ? 0 : len);
    request_done(c);
}

/* Answers a request the server refuses itself, in the JSON error body of
 * the API, and closes the connection after it. */
static void protocol_error(struct lg_http_conn *c, int status, const char *msg)
{
    struct lg_http_req *r = &c->req;
    const char *code = status == 405   ? "method_not_allowed"
                       : status == 408 ? "request_timeout"
                       : status == 413 ? "payload_too_large"
                       : status == 431 ? "headers_too_large"
                       : status == 503 ? "unavailable"
                       : status == 505 ? "http_version_not_supported"
                                       : "bad_request";
    r->close_after = true;
    r->hdrs_len = 0;
    lg_request_id_new(r->request_id);
    r->hdrs_len =
        (size_t)snprintf(r->hdrs, sizeof(r->hdrs), "X-Request-Id: %s\r\n%s", r->request_id,
                         status == 405 ? "Allow: GET, HEAD, POST, PATCH, DELETE\r\n" : "");
    char body[512];
    int blen = snprintf(body, sizeof(body),
                        "{\"error\":{\"code\":\"%s\",\"message\":\"%s\",\"request_id\":\"%s\"}}",
                        code, msg, r->request_id);
    r->status = status;
    if (r->start_us == 0) r->start_us = lg_mono_us();
    char head[HEAD_MAX];
    size_t n = lg_http_head_format(r, head, status, "application/json", blen);
    lg_http_conn_send(c, head, n, body, (size_t)blen);
    lg_http_answer_count(r, (size_t)blen);
    conn_close_after_flush(c);
}

void lg_http_stream_start(struct lg_http_req *r, int status, const char *content_type)
{
    struct lg_http_conn *c = r->conn;
    r->status = status;
    c->state = C_STREAM;
    if (c->bev == NULL) return;
    /* A stream ends its connection: bytes the client sent meanwhile were
     * dropped, so nothing after it could be framed. HTTP/1.0 has no chunks:
     * its stream is delimited by the close. */
    r->chunked = r->ps.minor >= 1;
    r->close_after = true;
    char head[HEAD_MAX];
    size_t n = lg_http_head_format(r, head, status, content_type, -1);
    lg_http_conn_send(c, head, n, NULL, 0);
    if (c->srv->public_api) lg_metrics_answer(status, lg_mono_us() - r->start_us);
}

/* Ends R's stream: WHOLE sends the last chunk; a stream cut short ends its
 * connection without it, so that the client can tell. */
static void stream_finish(struct lg_http_req *r, bool whole)
{
    struct lg_http_conn *c = r->conn;
    if (c->bev == NULL) {
        release_gone(r, 0);
        return;
    }
    if (!whole)
        r->close_after = true;
    else if (r->chunked)
        evbuffer_add(bufferevent_get_output(c->bev), "0\r\n\r\n", 5);
    if (c->srv->access_log) {
        bool pub = c->srv->public_api;
        c->srv->public_api = false; /* counted when the stream started */
        lg_http_answer_count(r, 0);
        c->srv->public_api = pub;
    }
    c->state = C_HANDLER;
    request_done(c);
}

void lg_http_stream_end(struct lg_http_req *r)
{
    stream_finish(r, true);
}

void lg_http_stream_abort(struct lg_http_req *r)
{
    stream_finish(r, false);
}

/* ---- requests ---- */

static void dispatch(struct lg_http_conn *c)
{
    struct lg_http_req *r = &c->req;
    struct lg_http_parse *ps = &r->ps;
    c->state = C_HANDLER;
    c->deadline = 0;
    r->on_close = NULL;
    r->close_arg = NULL;
    r->hdrs_len = 0;
    r->request_id[0] = '\0';
    r->status = 0;
    r->chunked = false;
    /* A body on a method that takes none is read (never taken as a request)
     * but ends the connection: such requests are how smuggling is probed. */
    bool body_method =
        ps->method == LG_HTTP_POST || ps->method == LG_HTTP_PUT || ps->method == LG_HTTP_PATCH;
    r->close_after = !ps->keep_alive || ps->upgrade || (ps->has_body && !body_method);
    c->srv->handler(r, c->srv->arg);
}

/* Moves bytes from the bufferevent into the read buffer and the parser, and
 * hands each complete request to the handler, one at a time. */
static void conn_process(struct lg_http_conn *c)
{
    struct lg_http_server *srv = c->srv;
    struct lg_http_parse *ps = &c->req.ps;
    c->in_process = true;
    while (!c->doomed && c->bev != NULL &&
           (c->state == C_IDLE || c->state == C_HEAD || c->state == C_BODY)) {
        /* a client that sends requests but does not read answers waits */
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) > OUT_HIGH) break;
        if (c->parsed == c->len) {
            struct evbuffer *in = bufferevent_get_input(c->bev);
            if (evbuffer_get_length(in) == 0) {
                /* it stopped sending: what was asked is answered, then the end */
                if (c->read_eof) conn_close_after_flush(c);
                break;
            }
            if (c->buf == NULL && (c->buf = buf_get(srv)) == NULL) {
                c->doomed = true;
                break;
            }
            int n = evbuffer_remove(in, c->buf + c->len, srv->buf_cap - c->len);
            if (n <= 0) break;
            c->len += (size_t)n;
        }
        if (c->state == C_IDLE) {
            c->state = C_HEAD;
            c->req.start_us = lg_mono_us();
            /* the first head is due header_timeout_s after the connection */
            if (c->served > 0)
                c->deadline = c->req.start_us / 1000 + (int64_t)srv->header_timeout_s * 1000;
        }
        enum lg_http_parse_state before = ps->state;
        size_t off = c->parsed;
        size_t used = lg_http_parse_feed(ps, c->buf + off, c->len - off);
        if (before == LG_PARSE_BODY) {
            /* body bytes were copied out: their room is free again */
            memmove(c->buf + off, c->buf + off + used, c->len - off - used);
            c->len -= used;
            /* chunk framing, extensions and trailers count too */
            if ((c->body_raw += used) > srv->max_body + srv->max_head) {
                protocol_error(c, 413, "the request body is too large");
                break;
            }
        } else {
            c->parsed += used;
        }
        switch (ps->state) {
        case LG_PARSE_ERROR: protocol_error(c, ps->error_status, ps->error_msg); break;
        case LG_PARSE_BODY:
            if (c->state == C_HEAD) {
                c->state = C_BODY;
                c->body_raw = 0;
                /* the whole body is due within one client timeout */
                c->deadline = lg_mono_ms() + (int64_t)srv->client_timeout_s * 1000;
                if (ps->expect_continue && ps->minor >= 1) {
                    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                    lg_http_conn_send(c, cont, sizeof(cont) - 1, NULL, 0);
                }
            }
            break;
        case LG_PARSE_DONE: dispatch(c); break;
        default: break;
        }
    }
    c->in_process = false;
    if (c->doomed) {
        conn_destroy(c);
        return;
    }
    /* a request still arriving is due by its deadline */
    if (c->state == C_HEAD || c->state == C_BODY) deadline_arm(c, lg_mono_ms());
}

/* ---- bufferevent callbacks ---- */

static void on_read(struct bufferevent *bev, void *arg)
{
    struct lg_http_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    switch (c->state) {
    case C_LINGER:
    case C_CLOSING:
    case C_STREAM: evbuffer_drain(in, evbuffer_get_length(in)); break;
    case C_HANDLER: break; /* pipelined: read after the answer, within the watermark */
    default: conn_process(c); break;
    }
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct lg_http_conn *c = arg;
    if (c->state == C_CLOSING)
        conn_linger(c);
    else if (c->state == C_IDLE || c->state == C_HEAD || c->state == C_BODY)
        conn_process(c); /* it may have waited for the answers to leave */
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct lg_http_conn *c = arg;
    /* a reset, a write error, or an answer the client has not taken for a
     * whole client timeout */
    if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        conn_gone(c);
        return;
    }
    if (!(what & BEV_EVENT_EOF)) return;
    c->read_eof = true;
    switch (c->state) {
    case C_IDLE:
    case C_HEAD:
    case C_BODY: conn_process(c); break; /* a request may be complete; else it ends here */
    case C_HANDLER: break;               /* answered, and so are requests already buffered */
    case C_STREAM: conn_gone(c); break;
    case C_CLOSING: break; /* the answer still leaves */
    case C_LINGER: conn_destroy(c); break;
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct lg_http_conn *c = arg;
    c->armed = 0;
    if (c->bev == NULL) { /* gone before the close callback was set: tell it now */
        lg_http_close_cb *cb = c->req.on_close;
        c->req.on_close = NULL;
        if (cb != NULL) cb(&c->req, c->req.close_arg);
        return;
    }
    if (c->deadline == 0) return;
    int64_t now = lg_mono_ms();
    if (now < c->deadline) {
        timer_arm(c, c->deadline, now);
        return;
    }
    switch (c->state) {
    case C_HEAD:
    case C_BODY:
        protocol_error(c, 408,
                       c->state == C_HEAD ? "the request head did not arrive in time"
                                          : "the request body did not arrive in time");
        break;
    case C_HANDLER:
    case C_STREAM: break;
    default:
        /* an answer still leaving is bounded by the write timeout instead */
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) {
            deadline_set(c, (int64_t)c->srv->client_timeout_s * 1000);
            break;
        }
        conn_destroy(c); /* idle, or closing and not reading */
        break;
    }
}

/* ---- accepting ---- */

static void format_peer(const struct sockaddr *sa, char *out, size_t cap)
{
    out[0] = '\0';
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)cap);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        /* IPv4-mapped IPv6 peers are shown as plain IPv4 */
        if (IN6_IS_ADDR_V4MAPPED(a))
            inet_ntop(AF_INET, &a->s6_addr[12], out, (socklen_t)cap);
        else
            inet_ntop(AF_INET6, a, out, (socklen_t)cap);
    }
}

/* A new connection from SA (the socket's peer, or the client a PROXY
 * header named): counted against the caps, then read. */
static void conn_accept(struct lg_http_server *srv, evutil_socket_t fd, const struct sockaddr *sa)
{
    uint64_t slot = 0;
    if (srv->public_api && !lg_conn_limit_acquire(sa, &slot)) {
        static _Thread_local int64_t logged_ms;
        if (lg_mono_ms() - logged_ms >= 1000) {
            logged_ms = lg_mono_ms();
            lg_warn("connection limit reached; closing new connections");
        }
        evutil_closesocket(fd);
        return;
    }
    struct lg_http_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) goto err;
    lg_list_init(&c->link);
    c->srv = srv;
    c->fd = fd;
    c->counted = srv->public_api;
    c->slot = slot;
    c->req.conn = c;
    format_peer(sa, c->peer, sizeof(c->peer));
    lg_http_parse_init(&c->req.ps, srv->max_head, srv->max_body);
    c->req.ps.skip_body = srv->public_api;
    if ((c->timer = evtimer_new(srv->base, on_timer, c)) == NULL) goto err;
    if (srv->tls != NULL) {
        SSL *ssl = lg_tls_ssl_new(srv->tls);
        if (ssl == NULL) goto err;
        c->tls = true;
        c->bev = bufferevent_openssl_socket_new(srv->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (c->bev == NULL) {
            SSL_free(ssl);
            goto err;
        }
        /* a client closing without close_notify has still finished sending */
        bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    } else {
        c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
        if (c->bev == NULL) goto err;
    }
    lg_list_push_front(&srv->conns, &c->link);
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    /* what one connection may buffer while its request is being answered */
    bufferevent_setwatermark(c->bev, EV_READ, 0, srv->buf_cap * 2);
    struct timeval wt = {srv->client_timeout_s, 0};
    bufferevent_set_timeouts(c->bev, NULL, &wt); /* write progress, only while writing */
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    deadline_set(c, (int64_t)srv->header_timeout_s * 1000);
    return;
err:
    if (c != NULL) {
        if (c->timer != NULL) event_free(c->timer);
        if (c->bev != NULL)
            bufferevent_free(c->bev); /* closes FD */
        else
            evutil_closesocket(fd);
        free(c);
    } else {
        evutil_closesocket(fd);
    }
    if (srv->public_api) lg_conn_limit_release(slot);
}

static void on_proxied(evutil_socket_t fd, const struct sockaddr *client, socklen_t len, void *arg)
{
    conn_accept(arg, fd, client);
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    struct lg_http_server *srv = arg;
    if (srv->proxy != NULL) /* the client's address comes first, in a PROXY header */
        lg_proxy_waiter_add(srv->proxy, fd, sa, (socklen_t)socklen);
    else
        conn_accept(srv, fd, sa);
}

/* Out of file descriptors, accept() fails at once and forever while the
 * pending connection stays queued: without a pause the loop would spin and
 * flood the log. Pause the listener for a moment instead. */
static void on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
    struct lg_http_server *srv = arg;
    if (srv->listener != NULL) evconnlistener_enable(srv->listener);
}

static void on_accept_error(struct evconnlistener *lev, void *arg)
{
    struct lg_http_server *srv = arg;
    static _Thread_local int64_t last_log;
    int err = EVUTIL_SOCKET_ERROR();
    int64_t now = lg_mono_ms();
    if (now - last_log >= 1000) {
        last_log = now;
        char buf[128];
        lg_warn("accept: %s; pausing the listener for %d ms", strerror_r(err, buf, sizeof(buf)),
                ACCEPT_PAUSE_MS);
    }
    evconnlistener_disable(lev);
    struct timeval tv = {0, ACCEPT_PAUSE_MS * 1000};
    evtimer_add(srv->accept_pause, &tv);
}

void lg_http_thread_done(void) { lg_access_log_thread_done(); }

/* ---- servers ---- */

static int split_addr(const char *addr, char *host, size_t hostcap, int *port)
{
    const char *colon = strrchr(addr, ':');
    if (colon == NULL) return -1;
    const char *h = addr;
    size_t hlen = (size_t)(colon - addr);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen >= hostcap) return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = atoi(colon + 1);
    return *port > 0 && *port < 65536 ? 0 : -1;
}

struct lg_http_server *lg_http_server_new(struct event_base *base, const struct lg_config *cfg,
                                          const char *addr, struct lg_tls *tls, size_t max_body,
                                          lg_http_handler *handler, void *arg)
{
    struct lg_http_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL) return NULL;
    lg_list_init(&srv->conns);
    lg_list_init(&srv->free_bufs);
    srv->base = base;
    srv->tls = tls;
    srv->handler = handler;
    srv->arg = arg;
    srv->access_log = strcmp(cfg->access_log, "on") == 0;
    srv->max_head = (size_t)cfg->max_header_bytes;
    srv->max_body = max_body;
    srv->buf_cap = srv->max_head + BUF_SPARE;
    srv->header_timeout_s = cfg->header_timeout_s;
    srv->client_timeout_s = cfg->client_timeout_s;

    char host[256], portstr[8];
    int port;
    struct evutil_addrinfo hints = {0}, *ai = NULL;
    if (split_addr(addr, host, sizeof(host), &port) < 0) {
        lg_error("listen %s: not host:port", addr);
        goto err;
    }
    snprintf(portstr, sizeof(portstr), "%d", port);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_ADDRCONFIG;
    if (evutil_getaddrinfo(host, portstr, &hints, &ai) != 0 || ai == NULL) {
        lg_error("listen %s: cannot resolve host", addr);
        goto err;
    }
    srv->listener = evconnlistener_new_bind(base, on_accept, srv,
                                            LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                                LEV_OPT_REUSEABLE_PORT | LEV_OPT_CLOSE_ON_EXEC,
                                            1024, ai->ai_addr, (int)ai->ai_addrlen);
    evutil_freeaddrinfo(ai);
    if (srv->listener == NULL) {
        lg_error("listen %s: %s", addr, strerror(errno));
        goto err;
    }
    /* Linux copies TCP_NODELAY to accepted sockets: small answers must not
     * wait for the client's delayed ACK (Nagle). */
    int one = 1;
    setsockopt(evconnlistener_get_fd(srv->listener), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    evconnlistener_set_error_cb(srv->listener, on_accept_error);
    if ((srv->accept_pause = evtimer_new(base, on_accept_resume, srv)) == NULL) goto err;
    return srv;
err:
    lg_http_server_free(srv);
    return NULL;
}

void lg_http_server_count_metrics(struct lg_http_server *srv) { srv->public_api = true; }

int lg_http_server_require_proxy(struct lg_http_server *srv, int max_pending)
{
    srv->proxy =
        lg_proxy_waiter_new(srv->base, srv->header_timeout_s * 1000, max_pending, on_proxied, srv);
    return srv->proxy != NULL ? 0 : -1;
}

void lg_http_server_set_access_log(struct lg_http_server *srv, bool on)
{
    if (srv != NULL) srv->access_log = on;
}

void lg_http_server_stop_listening(struct lg_http_server *srv)
{
    if (srv == NULL || srv->listener == NULL) return;
    if (srv->accept_pause != NULL) evtimer_del(srv->accept_pause);
    evconnlistener_free(srv->listener); /* closes it: new clients are refused */
    srv->listener = NULL;
}

void lg_http_server_free(struct lg_http_server *srv)
{
    if (srv == NULL) return;
    lg_http_server_stop_listening(srv);
    struct lg_list *n;
    while ((n = lg_list_first(&srv->conns)) != NULL) {
        struct lg_http_conn *c = LG_CONTAINER_OF(n, struct lg_http_conn, link);
        /* a pending request hears of it and answers, which frees C */
        if (owned_by_handler(c) && c->req.on_close != NULL) conn_gone(c);
        if (lg_list_first(&srv->conns) == n) conn_destroy(c);
    }
    if (srv->accept_pause != NULL) event_free(srv->accept_pause);
    lg_proxy_waiter_free(srv->proxy);
    while ((n = lg_list_pop_front(&srv->free_bufs)) != NULL) free(n);
    free(srv);
}
