/* Internal interface of the HTTP front end, shared by http*.c only: the
 * connection, request and server objects, and the answer-writing pieces
 * (http_write.c) that the connection code (http.c) builds on. Nothing here
 * is visible outside the front end: the rest of lockgate sees http.h. */
#ifndef LG_HTTP_INTERNAL_H
#define LG_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netinet/in.h>

#include <event2/util.h>

#include "lockgate/http.h"
#include "lockgate/http_parse.h"
#include "lockgate/list.h"
#include "lockgate/util.h"

struct bufferevent;
struct event;
struct evconnlistener;

#define HDRS_MAX 1536 /* answer headers a handler sets; more are dropped */
#define HEAD_MAX (HDRS_MAX + 1024)

enum conn_state { C_IDLE, C_HEAD, C_BODY, C_HANDLER, C_STREAM, C_CLOSING, C_LINGER };

struct lg_http_req {
    struct lg_http_conn *conn;
    struct lg_http_parse ps;
    int64_t start_us;
    lg_http_close_cb *on_close;
    void *close_arg;
    char hdrs[HDRS_MAX]; /* answer headers set by the handler, "Name: value\r\n"... */
    size_t hdrs_len;
    char request_id[LG_REQUEST_ID_MAX + 1]; /* the answer's X-Request-Id, for the access log */
    int status;
    bool close_after; /* the answer ends the connection */
    bool chunked;     /* a stream with chunked framing (else close-delimited) */
};

struct lg_http_conn {
    struct lg_list link; /* in the server's connections */
    struct lg_http_server *srv;
    struct bufferevent *bev; /* NULL once the client has gone */
    evutil_socket_t fd;
    struct event *timer; /* fires at ARMED; DEADLINE may have moved later since */
    int64_t deadline;    /* monotonic ms when the state's time is up; 0: none */
    int64_t armed;       /* when the timer fires; 0: not armed */
    enum conn_state state;
    bool in_process; /* conn_process is on the stack */
    bool doomed;     /* destroyed while conn_process ran: freed when it returns */
    bool read_eof;   /* the client has shut its sending side */
    bool counted;    /* holds a conn_limit slot */
    bool tls;
    bool failed;     /* a reset or an error: the TLS session is not kept */
    unsigned served; /* requests answered on this connection */
    uint64_t slot;
    char *buf; /* pooled read buffer: [0, parsed) parsed, [parsed, len) not yet */
    size_t len, parsed;
    size_t body_raw; /* bytes of the body's framing read so far */
    char peer[INET6_ADDRSTRLEN];
    struct lg_http_req req;
};

struct lg_http_server {
    struct event_base *base;
    struct evconnlistener *listener;
    struct event *accept_pause; /* re-enables the listener after EMFILE */
    struct lg_tls *tls;
    lg_http_handler *handler;
    void *arg;
    bool access_log;
    bool public_api; /* metrics, no-store, connection caps */
    size_t max_head, max_body, buf_cap;
    int header_timeout_s, client_timeout_s;
    struct lg_list conns;          /* of lg_http_conn.link */
    struct lg_proxy_waiter *proxy; /* [server] proxy_protocol: headers being read */
    struct lg_list free_bufs;      /* pooled read buffers, linked through their first bytes */
    int nfree_bufs;
};

/* ---- http_write.c: writing answers ---- */

/* Formats the head of an answer into OUT, HEAD_MAX bytes (the handler's
 * headers are at most HDRS_MAX); returns its length. LENGTH < 0: a stream. */
size_t lg_http_head_format(struct lg_http_req *r, char *out, int status, const char *content_type,
                           long long length);
/* Writes A then B (B may be NULL/0) to C's client: straight to a plain
 * socket when nothing is queued before them, the rest through the
 * bufferevent. Both are copied or sent before it returns. */
void lg_http_conn_send(struct lg_http_conn *c, const char *a, size_t alen, const char *b,
                       size_t blen);
/* Counts R's answer of BYTES body bytes: the metrics (public API listeners)
 * and the access log line. */
void lg_http_answer_count(struct lg_http_req *r, size_t bytes);

#endif
