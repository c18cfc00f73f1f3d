/* The HTTP front end: evhttp listeners (plain and TLS) behind the narrow
 * interface of http.h. Nothing outside this file sees an evhttp type, so the
 * front end can be replaced without touching the request pipeline. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "lockgate/config.h"
#include "lockgate/http.h"
#include "lockgate/log.h"
#include "lockgate/metrics.h"
#include "lockgate/util.h"

struct lg_http_req {
    struct lg_http_req *next; /* free list */
    struct lg_http_server *srv;
    struct evhttp_request *ev;
    struct evhttp_connection *conn; /* NULL once the client has gone */
    lg_http_close_cb *on_close;
    void *close_arg;
    int64_t start_ms;
    char *body;
    size_t body_cap;
    char peer[64];
    const char *path;  /* into uri */
    const char *query; /* into uri, or NULL */
    char *uri;         /* our copy of the request target, split at '?' */
    size_t uri_cap;
    int status;
    struct event *close_ev; /* EV_CLOSED watch while the answer is pending */
    int close_armed;
};

struct lg_http_server {
    struct event_base *base;
    struct evhttp *http;
    struct evconnlistener *listener;
    struct evhttp_bound_socket *bound; /* the listening socket, owned by evhttp */
    SSL_CTX *tls;
    lg_http_handler *handler;
    void *arg;
    int access_log;
    int count_metrics;          /* public listeners feed the /metrics counters */
    int timeout_s;              /* client read/write timeout, restored after a stream */
    struct evbuffer *chunk;     /* scratch for stream writes (evhttp drains it) */
    struct event *access_timer; /* flushes this thread's access log buffer */
    struct lg_http_req *free_list;
};

static struct bufferevent *tls_bevcb(struct event_base *base, void *arg)
{
    struct lg_http_server *srv = arg;
    SSL *ssl = SSL_new(srv->tls);
    /* libevent 2.1.12 serves plain text if this returns NULL, which would put
     * secrets on the wire in clear: rather than return NULL, stop. */
    if (ssl == NULL) {
        lg_error("tls: SSL_new failed; refusing to serve plain text on the TLS port");
        abort();
    }
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        lg_error("tls: bufferevent_openssl_socket_new failed");
        abort();
    }
    return bev;
}

/* Out of file descriptors, accept() fails at once and forever while the
 * pending connection stays queued: without a pause the loop would spin and
 * flood the log. Pause the listener for a moment instead. */
#define ACCEPT_PAUSE_MS 100

static void on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
    evconnlistener_enable(arg);
}

static void on_accept_error(struct evconnlistener *lev, void *arg)
{
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
    event_base_once(evconnlistener_get_base(lev), -1, EV_TIMEOUT, on_accept_resume, lev, &tv);
}

#define HTTP_METHOD_UNKNOWN (1 << 15)

static enum lg_http_method map_method(enum evhttp_cmd_type t)
{
    switch (t) {
    case EVHTTP_REQ_GET: return LG_HTTP_GET;
    case EVHTTP_REQ_HEAD: return LG_HTTP_HEAD;
    case EVHTTP_REQ_POST: return LG_HTTP_POST;
    case EVHTTP_REQ_PATCH: return LG_HTTP_PATCH;
    case EVHTTP_REQ_DELETE: return LG_HTTP_DELETE;
    case EVHTTP_REQ_PUT: return LG_HTTP_PUT;
    default: return LG_HTTP_OTHER;
    }
}

static struct lg_http_req *req_get(struct lg_http_server *srv)
{
    struct lg_http_req *r = srv->free_list;
    if (r != NULL)
        srv->free_list = r->next;
    else if ((r = calloc(1, sizeof(*r))) == NULL)
        return NULL;
    r->next = NULL;
    r->srv = srv;
    r->on_close = NULL;
    r->close_arg = NULL;
    r->status = 0;
    return r;
}

static void req_put(struct lg_http_req *r)
{
    struct lg_http_server *srv = r->srv;
    r->ev = NULL;
    r->conn = NULL;
    r->next = srv->free_list;
    srv->free_list = r;
}

/* Stops watching for the client's hang-up (the EV_CLOSED event and, while
 * the connection lives, its close callback); returns the hook that was set. */
static lg_http_close_cb *close_watch_stop(struct lg_http_req *r)
{
    if (r->close_armed) {
        event_del(r->close_ev);
        r->close_armed = 0;
    }
    if (r->conn != NULL && r->on_close != NULL) evhttp_connection_set_closecb(r->conn, NULL, NULL);
    lg_http_close_cb *cb = r->on_close;
    r->on_close = NULL;
    return cb;
}

static void on_conn_close(struct evhttp_connection *conn, void *arg)
{
    struct lg_http_req *r = arg;
    /* The descriptor is about to close and may be reused: stop watching it. */
    r->conn = NULL;
    lg_http_close_cb *cb = close_watch_stop(r);
    if (cb != NULL) cb(r, r->close_arg);
}

/* libevent reads a body only for POST, PUT and PATCH. Any other request
 * that declares one leaves it in the connection, where it would be read as
 * the next request (a way to smuggle one past a proxy in front). */
static bool body_left_unread(struct evhttp_request *ev)
{
    enum evhttp_cmd_type t = evhttp_request_get_command(ev);
    if (t == EVHTTP_REQ_POST || t == EVHTTP_REQ_PUT || t == EVHTTP_REQ_PATCH) return false;
    struct evkeyvalq *in = evhttp_request_get_input_headers(ev);
    const char *cl = evhttp_find_header(in, "Content-Length");
    return (cl != NULL && strcmp(cl, "0") != 0) ||
           evhttp_find_header(in, "Transfer-Encoding") != NULL;
}

static void on_request(struct evhttp_request *ev, void *arg)
{
    struct lg_http_server *srv = arg;
    struct lg_http_req *r = req_get(srv);
    if (r == NULL) {
        evhttp_send_error(ev, 503, NULL);
        return;
    }
    r->ev = ev;
    r->conn = evhttp_request_get_connection(ev);
    r->start_ms = lg_mono_ms();
    const char *uri = evhttp_request_get_uri(ev);
    size_t ulen = strlen(uri);
    if (ulen + 1 > r->uri_cap) {
        char *nu = realloc(r->uri, ulen + 1);
        if (nu == NULL) {
            req_put(r);
            evhttp_send_error(ev, 503, NULL);
            return;
        }
        r->uri = nu;
        r->uri_cap = ulen + 1;
    }
    memcpy(r->uri, uri, ulen + 1);
    /* such a request is answered, then its connection closed */
    if (body_left_unread(ev))
        evhttp_add_header(evhttp_request_get_output_headers(ev), "Connection", "close");
    char *q = strchr(r->uri, '?');
    if (q != NULL) *q++ = '\0';
    r->path = r->uri;
    r->query = q;
    char *addr = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(r->conn, &addr, &port);
    snprintf(r->peer, sizeof(r->peer), "%s", addr ? addr : "");
    /* IPv4-mapped IPv6 peers are shown as plain IPv4. */
    if (strncmp(r->peer, "::ffff:", 7) == 0 && strchr(r->peer + 7, '.') != NULL)
        memmove(r->peer, r->peer + 7, strlen(r->peer + 7) + 1);
    srv->handler(r, srv->arg);
}

const char *lg_http_method_name(enum lg_http_method m)
{
    static const char *const names[] = {"GET", "HEAD", "POST", "PATCH", "DELETE", "PUT", "OTHER"};
    return m >= LG_HTTP_GET && m <= LG_HTTP_OTHER ? names[m] : "OTHER";
}

enum lg_http_method lg_http_method(const struct lg_http_req *r)
{
    return map_method(evhttp_request_get_command(r->ev));
}
const char *lg_http_path(const struct lg_http_req *r) { return r->path; }
const char *lg_http_target(const struct lg_http_req *r) { return evhttp_request_get_uri(r->ev); }
const char *lg_http_query(const struct lg_http_req *r) { return r->query; }
const char *lg_http_peer(const struct lg_http_req *r) { return r->peer; }

const char *lg_http_header(const struct lg_http_req *r, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(r->ev), name);
}

const char *lg_http_body(const struct lg_http_req *r_, size_t *len)
{
    struct lg_http_req *r = (struct lg_http_req *)r_;
    struct evbuffer *in = evhttp_request_get_input_buffer(r->ev);
    size_t n = evbuffer_get_length(in);
    if (n + 1 > r->body_cap) {
        char *nb = realloc(r->body, n + 1);
        if (nb == NULL) {
            *len = 0;
            return NULL;
        }
        r->body = nb;
        r->body_cap = n + 1;
    }
    evbuffer_copyout(in, r->body, n);
    r->body[n] = '\0';
    *len = n;
    return r->body;
}

void lg_http_set_header(struct lg_http_req *r, const char *name, const char *value)
{
    evhttp_add_header(evhttp_request_get_output_headers(r->ev), name, value);
}

/* The access log: one JSON line per request on stdout, gathered in a
 * per-thread buffer and written with one write() when it fills or, at the
 * latest, ACCESS_FLUSH_MS after its first line (a timer per server), so a
 * busy gateway does not pay a syscall and a stdio lock per request. */
#define ACCESS_BUF      65536
#define ACCESS_LINE_MAX 1024
#define ACCESS_FLUSH_MS 100

struct access_buf {
    size_t len;
    char data[ACCESS_BUF];
};
static _Thread_local struct access_buf *access_buf;

static void access_flush(void)
{
    struct access_buf *b = access_buf;
    size_t off = 0;
    while (b != NULL && off < b->len) {
        ssize_t n = write(STDOUT_FILENO, b->data + off, b->len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break; /* stdout gone: the lines are lost, not the gateway */
        off += (size_t)n;
    }
    if (b != NULL) b->len = 0;
}

static void on_access_flush(evutil_socket_t fd, short what, void *arg) { access_flush(); }

void lg_http_thread_done(void)
{
    access_flush();
    free(access_buf);
    access_buf = NULL;
}

/* Appends S to OUT as JSON string content: printable ASCII only (other bytes
 * become '?'), quotes and backslashes escaped, at most MAX source bytes. */
static size_t json_text(char *out, const char *s, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; s[i] && i < max; i++) {
        char ch = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
        if (ch == '"' || ch == '\\') out[n++] = '\\';
        out[n++] = ch;
    }
    return n;
}

static void access_log(struct lg_http_req *r, size_t bytes)
{
    if (!r->srv->access_log) return;
    if (access_buf == NULL && (access_buf = calloc(1, sizeof(*access_buf))) == NULL) return;
    const char *rid = evhttp_find_header(evhttp_request_get_output_headers(r->ev), "X-Request-Id");
    char at[LG_TIME_LEN], line[ACCESS_LINE_MAX], rid_s[140], path_s[520];
    lg_time_format(lg_now_ms(), at);
    rid_s[json_text(rid_s, rid ? rid : "", 64)] = '\0';
    path_s[json_text(path_s, r->path, 256)] = '\0';
    int n = snprintf(line, sizeof(line),
                     "{\"at\":\"%s\",\"request_id\":\"%s\",\"client_ip\":\"%s\",\"method\":\"%s\","
                     "\"path\":\"%s\",\"status\":%d,\"bytes\":%zu,\"ms\":%lld}\n",
                     at, rid_s, r->peer, lg_http_method_name(lg_http_method(r)), path_s, r->status,
                     bytes, (long long)(lg_mono_ms() - r->start_ms));
    if (n <= 0 || (size_t)n >= sizeof(line)) return;
    if (access_buf->len + (size_t)n > ACCESS_BUF) access_flush();
    if (access_buf->len == 0) {
        struct timeval tv = {0, ACCESS_FLUSH_MS * 1000};
        evtimer_add(r->srv->access_timer, &tv);
    }
    memcpy(access_buf->data + access_buf->len, line, (size_t)n);
    access_buf->len += (size_t)n;
}

void lg_http_reply(struct lg_http_req *r, int status, const char *content_type, const char *body,
                   size_t len)
{
    struct evbuffer *out = evhttp_request_get_output_buffer(r->ev);
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->ev);
    if (content_type != NULL) evhttp_add_header(h, "Content-Type", content_type);
    if (evhttp_request_get_command(r->ev) == EVHTTP_REQ_HEAD) {
        /* libevent 2.1 would send the body after a HEAD answer: the length only. */
        char clen[24];
        snprintf(clen, sizeof(clen), "%zu", body != NULL ? len : 0);
        evhttp_add_header(h, "Content-Length", clen);
    } else if (body != NULL && len > 0) {
        evbuffer_add(out, body, len);
    }
    r->status = status;
    close_watch_stop(r); /* the answer is done; the connection may be kept */
    access_log(r, len);
    if (r->srv->count_metrics) lg_metrics_answer(status, lg_mono_ms() - r->start_ms);
    evhttp_send_reply(r->ev, status, NULL, NULL);
    req_put(r);
}

/* evhttp does not read from a connection while its request is being
 * answered, so it would not notice a client that hangs up. The kernel does:
 * EV_CLOSED (EPOLLRDHUP) fires when the peer's FIN arrives. */
static void on_peer_closed(evutil_socket_t fd, short what, void *arg)
{
    struct lg_http_req *r = arg;
    r->close_armed = 0;
    /* A reset shows as readable (libevent reports EPOLLHUP/EPOLLERR as
     * EV_READ, not EV_CLOSED); so does a pipelined request. Peek to tell. */
    if (!(what & EV_CLOSED)) {
        char c;
        ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))) {
            /* Data, not a close: from now on only a FIN can end the wait. */
            if (event_assign(r->close_ev, r->srv->base, fd, EV_CLOSED, on_peer_closed, r) == 0 &&
                event_add(r->close_ev, NULL) == 0)
                r->close_armed = 1;
            return;
        }
    }
    lg_http_close_cb *cb = close_watch_stop(r);
    if (cb != NULL) cb(r, r->close_arg);
}

void lg_http_on_close(struct lg_http_req *r, lg_http_close_cb *on_close, void *arg)
{
    r->on_close = on_close;
    r->close_arg = arg;
    if (r->conn == NULL) return;
    evhttp_connection_set_closecb(r->conn, on_conn_close, r);
    struct bufferevent *bev = evhttp_connection_get_bufferevent(r->conn);
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    if (fd < 0) return;
    if (r->close_ev == NULL && (r->close_ev = malloc(event_get_struct_event_size())) == NULL)
        return;
    if (event_assign(r->close_ev, r->srv->base, fd, EV_CLOSED | EV_READ, on_peer_closed, r) == 0 &&
        event_add(r->close_ev, NULL) == 0)
        r->close_armed = 1;
}

void lg_http_stream_start(struct lg_http_req *r, int status, const char *content_type)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->ev);
    if (content_type != NULL) evhttp_add_header(h, "Content-Type", content_type);
    evhttp_add_header(h, "Cache-Control", "no-store");
    r->status = status;
    if (r->srv->count_metrics) lg_metrics_answer(status, lg_mono_ms() - r->start_ms);
    /* A stream is idle by design between events; the feed's heartbeat and
     * backlog limit decide when a reader is gone, not the read timeout. */
    if (r->conn != NULL) evhttp_connection_set_timeout(r->conn, 24 * 3600);
    evhttp_send_reply_start(r->ev, status, NULL);
}

size_t lg_http_stream_write(struct lg_http_req *r, const char *data, size_t len)
{
    if (r->conn == NULL) return 0;
    struct evbuffer *chunk = r->srv->chunk;
    if (evbuffer_add(chunk, data, len) < 0) return 0;
    evhttp_send_reply_chunk(r->ev, chunk); /* moves the bytes out of CHUNK */
    evbuffer_drain(chunk, evbuffer_get_length(chunk));
    struct bufferevent *bev = evhttp_connection_get_bufferevent(r->conn);
    return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

void lg_http_stream_end(struct lg_http_req *r)
{
    /* A reader dropped for being slow must not hold its connection for the
     * stream's long timeout: what it has not read yet gets the normal one. */
    if (r->conn != NULL) evhttp_connection_set_timeout(r->conn, r->srv->timeout_s);
    close_watch_stop(r); /* the answer is done; the connection may be kept */
    access_log(r, 0);
    evhttp_send_reply_end(r->ev); /* also frees a request whose client has gone */
    req_put(r);
}

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

void lg_http_server_linger(struct lg_http_server *srv)
{
    evhttp_set_flags(srv->http, EVHTTP_SERVER_LINGERING_CLOSE);
}

struct lg_http_server *lg_http_server_new(struct event_base *base, const struct lg_config *cfg,
                                          const char *addr, SSL_CTX *tls, size_t max_body,
                                          lg_http_handler *handler, void *arg)
{
    struct lg_http_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL) return NULL;
    srv->base = base;
    srv->tls = tls;
    srv->handler = handler;
    srv->arg = arg;
    srv->access_log = strcmp(cfg->access_log, "on") == 0;

    char host[256];
    int port;
    struct evutil_addrinfo hints = {0}, *ai = NULL;
    char portstr[8];
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
    srv->listener = evconnlistener_new_bind(base, NULL, NULL,
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
    if ((srv->chunk = evbuffer_new()) == NULL) goto err;
    if ((srv->access_timer = evtimer_new(base, on_access_flush, srv)) == NULL) goto err;
    srv->http = evhttp_new(base);
    if (srv->http == NULL) goto err;
    if ((srv->bound = evhttp_bind_listener(srv->http, srv->listener)) == NULL) goto err;
    evconnlistener_set_error_cb(srv->listener, on_accept_error);
    srv->listener = NULL; /* owned by evhttp now */
    evhttp_set_max_headers_size(srv->http, (ev_ssize_t)cfg->max_header_bytes);
    evhttp_set_max_body_size(srv->http, (ev_ssize_t)max_body);
    evhttp_set_timeout(srv->http, cfg->client_timeout_s);
    srv->timeout_s = cfg->client_timeout_s;
    /* Every method reaches the routes, which answer 405 in JSON. libevent
     * 2.1 marks a method it does not know with bit 15 (EVHTTP_REQ_UNKNOWN_
     * of its http-internal.h) and answers it 501 in HTML unless allowed. */
    evhttp_set_allowed_methods(srv->http,
                               EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                   EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH |
                                   EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | HTTP_METHOD_UNKNOWN);
    evhttp_set_default_content_type(srv->http, NULL);
    if (tls != NULL) evhttp_set_bevcb(srv->http, tls_bevcb, srv);
    evhttp_set_gencb(srv->http, on_request, srv);
    return srv;
err:
    lg_http_server_free(srv);
    return NULL;
}

void lg_http_server_count_metrics(struct lg_http_server *srv) { srv->count_metrics = 1; }

void lg_http_server_stop_listening(struct lg_http_server *srv)
{
    if (srv == NULL || srv->bound == NULL) return;
    evhttp_del_accept_socket(srv->http, srv->bound); /* closes it: new clients are refused */
    srv->bound = NULL;
}

void lg_http_server_free(struct lg_http_server *srv)
{
    if (srv == NULL) return;
    if (srv->access_timer != NULL) event_free(srv->access_timer);
    if (srv->http != NULL) evhttp_free(srv->http);
    if (srv->listener != NULL) evconnlistener_free(srv->listener);
    while (srv->free_list != NULL) {
        struct lg_http_req *r = srv->free_list;
        srv->free_list = r->next;
        free(r->body);
        free(r->uri);
        free(r->close_ev);
        free(r);
    }
    if (srv->chunk != NULL) evbuffer_free(srv->chunk);
    free(srv);
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char h11[] = "\x08http/1.1";
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, h11, sizeof(h11) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

SSL_CTX *lg_http_tls_ctx_new(const struct lg_config *cfg)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
        lg_error("tls: cannot load certificate %s: %s", cfg->tls_cert,
                 ERR_reason_error_string(ERR_get_error()));
        goto err;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        lg_error("tls: cannot load key %s: %s", cfg->tls_key,
                 ERR_reason_error_string(ERR_get_error()));
        goto err;
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    return ctx;
err:
    SSL_CTX_free(ctx);
    return NULL;
}
