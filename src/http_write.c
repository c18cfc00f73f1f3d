/* Writing answers on the HTTP front end: the answer head (status line,
 * Date cached once a second, the fixed headers and the handler's own),
 * sending it with the body in one sendmsg on a plain socket, stream chunks,
 * and counting each answer in the metrics and the access log. The
 * connection's life around it is http.c's. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "http_internal.h"
#include "lockgate/access_log.h"
#include "lockgate/log.h"
#include "lockgate/metrics.h"
#include "lockgate/util.h"

/* The Date header's value, formatted once a second per thread. */
static const char *http_date(struct event_base *base)
{
    static _Thread_local time_t sec = -1;
    static _Thread_local char text[40];
    struct timeval tv;
    event_base_gettimeofday_cached(base, &tv);
    if (tv.tv_sec != sec) {
        struct tm tm;
        sec = tv.tv_sec;
        gmtime_r(&sec, &tm);
        strftime(text, sizeof(text), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    }
    return text;
}

static const char *reason(int status)
{
    const char *r = http_status_str((enum http_status)status);
    return strcmp(r, "<unknown>") == 0 ? "Unknown" : r;
}

/* A plain socket is written without write interest or an extra loop turn;
 * the bufferevent arms write interest only for what is left. */
void lg_http_conn_send(struct lg_http_conn *c, const char *a, size_t alen, const char *b,
                       size_t blen)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (!c->tls && evbuffer_get_length(out) == 0) {
        struct iovec iov[2] = {{(void *)a, alen}, {(void *)b, blen}};
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = blen > 0 ? 2 : 1};
        ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        /* On an error the bufferevent's own write reports it (as a hang-up). */
        size_t done = n > 0 ? (size_t)n : 0;
        if (done >= alen) {
            done -= alen;
            alen = 0;
            b += done;
            blen -= done;
        } else {
            a += done;
            alen -= done;
        }
    }
    if (alen > 0) evbuffer_add(out, a, alen);
    if (blen > 0) evbuffer_add(out, b, blen);
}

void lg_http_answer_count(struct lg_http_req *r, size_t bytes)
{
    struct lg_http_conn *c = r->conn;
    struct lg_http_server *srv = c->srv;
    int64_t us = lg_mono_us() - r->start_us;
    if (srv->public_api) lg_metrics_answer(r->status, us);
    if (srv->access_log) {
        struct lg_access_entry e = {
            .request_id = r->request_id,
            .client_ip = c->peer,
            .method = r->ps.path != NULL ? lg_http_method_name(r->ps.method) : "-",
            .path = r->ps.path,
            .status = r->status,
            .bytes = bytes,
            .ms = us / 1000,
        };
        lg_access_log(srv->base, &e);
    }
}

/* Appending to a fixed buffer: the answer head is built with copies, not
 * printf, once per request. */
struct out {
    char *p, *end;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (n > (size_t)(o->end - o->p)) n = (size_t)(o->end - o->p);
    memcpy(o->p, s, n);
    o->p += n;
}
#define PUT_LIT(o, s) put(o, s, sizeof(s) - 1)

static void put_uint(struct out *o, unsigned long long v)
{
    char t[24];
    int i = (int)sizeof(t);
    do t[--i] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    put(o, t + i, sizeof(t) - (size_t)i);
}

size_t lg_http_head_format(struct lg_http_req *r, char *out, int status, const char *content_type,
                           long long length)
{
    struct lg_http_conn *c = r->conn;
    struct out o = {out, out + HEAD_MAX};
    if (status == 200) { /* nearly every answer */
        PUT_LIT(&o, "HTTP/1.1 200 OK\r\nDate: ");
    } else {
        const char *why = reason(status);
        PUT_LIT(&o, "HTTP/1.1 ");
        put_uint(&o, (unsigned)status);
        PUT_LIT(&o, " ");
        put(&o, why, strlen(why));
        PUT_LIT(&o, "\r\nDate: ");
    }
    put(&o, http_date(c->srv->base), 29);
    PUT_LIT(&o, "\r\n");
    if (content_type != NULL && strlen(content_type) <= 200) {
        PUT_LIT(&o, "Content-Type: ");
        put(&o, content_type, strlen(content_type));
        PUT_LIT(&o, "\r\n");
    }
    if (length < 0) {
        if (r->chunked) PUT_LIT(&o, "Transfer-Encoding: chunked\r\n");
    } else if (status >= 200 && status != 204 && status != 304) {
        PUT_LIT(&o, "Content-Length: ");
        put_uint(&o, (unsigned long long)length);
        PUT_LIT(&o, "\r\n");
    }
    if (r->close_after)
        PUT_LIT(&o, "Connection: close\r\n");
    else if (r->ps.minor == 0)
        PUT_LIT(&o, "Connection: keep-alive\r\n");
    PUT_LIT(&o, "X-Content-Type-Options: nosniff\r\n");
    if (c->srv->public_api) PUT_LIT(&o, "Cache-Control: no-store\r\n");
    put(&o, r->hdrs, r->hdrs_len);
    PUT_LIT(&o, "\r\n");
    return (size_t)(o.p - out);
}

size_t lg_http_stream_write(struct lg_http_req *r, const char *data, size_t len)
{
    struct lg_http_conn *c = r->conn;
    if (c->bev == NULL) return 0;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (len == 0) return evbuffer_get_length(out); /* a zero chunk would end the stream */
    if (r->chunked) {
        char size[24];
        int n = snprintf(size, sizeof(size), "%zx\r\n", len);
        evbuffer_add(out, size, (size_t)n);
        evbuffer_add(out, data, len);
        evbuffer_add(out, "\r\n", 2);
    } else {
        evbuffer_add(out, data, len);
    }
    return evbuffer_get_length(out);
}

void lg_http_set_header(struct lg_http_req *r, const char *name, const char *value)
{
    /* one pass: the value's length, and no byte that could end the line */
    size_t vlen = 0;
    for (unsigned char ch; (ch = (unsigned char)value[vlen]) != 0; vlen++)
        if (ch < 0x20 && ch != '\t') {
            lg_error("http: answer header %s has a control byte; dropped", name);
            return;
        }
    size_t nlen = strlen(name);
    if (r->hdrs_len + nlen + vlen + 4 > sizeof(r->hdrs)) {
        lg_error("http: answer headers too long; %s dropped", name);
        return;
    }
    char *o = r->hdrs + r->hdrs_len;
    memcpy(o, name, nlen);
    memcpy(o + nlen, ": ", 2);
    memcpy(o + nlen + 2, value, vlen);
    memcpy(o + nlen + 2 + vlen, "\r\n", 2);
    r->hdrs_len += nlen + vlen + 4;
    if (nlen == 12 && strcasecmp(name, "X-Request-Id") == 0 && vlen < sizeof(r->request_id)) {
        memcpy(r->request_id, value, vlen + 1);
    }
}
