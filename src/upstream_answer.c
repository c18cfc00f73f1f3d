/* Reading the upstream's answer: http_parser callbacks that keep the status,
 * the last Content-Type and the body (bounded by LG_UPSTREAM_BODY_MAX),
 * skip interim answers and stop at the final one, and the result handed to
 * the caller. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "upstream_internal.h"

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

void lg_upstream_answer_start(struct lg_upstream_conn *c)
{
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
}

size_t lg_upstream_answer_feed(struct lg_upstream_conn *c, const char *data, size_t len)
{
    return http_parser_execute(&c->parser, &answer_settings, data, len);
}

void lg_upstream_answer_result(struct lg_upstream_req *req, enum lg_upstream_error error)
{
    struct lg_upstream_result *res = &req->res;
    memset(res, 0, sizeof(*res));
    res->error = error;
    res->body = "";
    if (error != LG_UPSTREAM_OK) return;
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
}
