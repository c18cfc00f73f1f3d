/* Request parsing and framing on http_parser. The library frames the bytes
 * (methods, Content-Length, chunked bodies, token rules); this file keeps
 * the views it reports and adds the rules of RFC 9112 that http_parser 2.9
 * accepts: HTTP/1.2 or 0.9, a missing or repeated Host, "Name : value",
 * obs-fold, Transfer-Encoding other than a lone "chunked", a fragment. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lockgate/http_parse.h"

enum { CB_NONE, CB_URL, CB_FIELD, CB_VALUE };

static const struct {
    const char *name;
    size_t len;
} known_names[LG_HDR_COUNT] = {
#define K(id, s) [id] = {s, sizeof(s) - 1}
    K(LG_HDR_HOST, "Host"),
    K(LG_HDR_TRANSFER_ENCODING, "Transfer-Encoding"),
    K(LG_HDR_EXPECT, "Expect"),
    K(LG_HDR_AUTHORIZATION, "Authorization"),
    K(LG_HDR_X_API_KEY, "X-API-Key"),
    K(LG_HDR_X_API_SECRET, "X-API-Secret"),
    K(LG_HDR_X_REQUEST_ID, "X-Request-Id"),
    K(LG_HDR_LAST_EVENT_ID, "Last-Event-ID"),
    K(LG_HDR_CONTENT_TYPE, "Content-Type"),
    K(LG_HDR_COOKIE, "Cookie"),
    K(LG_HDR_ORIGIN, "Origin"),
    K(LG_HDR_X_CSRF_TOKEN, "X-CSRF-Token"),
#undef K
};

static int fail(struct lg_http_parse *ps, int status, const char *msg)
{
    ps->state = LG_PARSE_ERROR;
    ps->error_status = status;
    ps->error_msg = msg;
    return -1; /* stops http_parser with HPE_CB_* */
}

static int on_message_begin(http_parser *p)
{
    struct lg_http_parse *ps = p->data;
    ps->state = LG_PARSE_HEAD;
    return 0;
}

/* Pieces of one item arrive back to back in the fed bytes (the caller
 * keeps them contiguous); a piece that does not continue the last one is a
 * new line of the same item: for a value, obs-fold. */
static int on_url(http_parser *p, const char *at, size_t len)
{
    struct lg_http_parse *ps = p->data;
    if (ps->last_cb == CB_URL)
        ps->url_len += len;
    else {
        ps->url = at;
        ps->url_len = len;
    }
    ps->last_cb = CB_URL;
    return 0;
}

static int on_field(http_parser *p, const char *at, size_t len)
{
    struct lg_http_parse *ps = p->data;
    if (ps->state != LG_PARSE_HEAD) return 0; /* trailer fields: framed, ignored */
    if (ps->last_cb == CB_FIELD) {
        ps->fields[ps->nfields - 1].name_len += (uint32_t)len;
    } else {
        if (ps->nfields == LG_HTTP_MAX_FIELDS) return fail(ps, 431, "too many header fields");
        struct lg_http_field *f = &ps->fields[ps->nfields++];
        f->name = at;
        f->name_len = (uint32_t)len;
        f->value = NULL; /* until its first piece */
        f->value_len = 0;
    }
    ps->last_cb = CB_FIELD;
    return 0;
}

static int on_value(http_parser *p, const char *at, size_t len)
{
    struct lg_http_parse *ps = p->data;
    if (ps->state != LG_PARSE_HEAD) return 0;
    struct lg_http_field *f = &ps->fields[ps->nfields - 1];
    if (ps->last_cb == CB_VALUE) {
        if (len > 0 && at != f->value + f->value_len)
            return fail(ps, 400, "obsolete line folding in a header field");
        f->value_len += (uint32_t)len;
    } else {
        /* "Name:" CRLF SP "value": a fold after an empty first line. (An
         * empty value comes as a piece of length 0 at the next line.) */
        const char *gap = f->name + f->name_len;
        if (len > 0 && at > gap && memchr(gap, '\n', (size_t)(at - gap)) != NULL)
            return fail(ps, 400, "obsolete line folding in a header field");
        f->value = at;
        f->value_len = (uint32_t)len;
    }
    ps->last_cb = CB_VALUE;
    return 0;
}

static bool is_space(char c) { return c == ' ' || c == '\t'; }

/* Byte classes, looked up once per byte of every name and value. */
enum { TCHAR = 1, VCHAR = 2 };
static unsigned char byte_class[256];

static void byte_class_init(void)
{
    for (int c = 0; c < 256; c++) {
        /* RFC 9110 field-vchar, obs-text and the whitespace inside a value */
        if (c == '\t' || (c >= 0x20 && c != 0x7f)) byte_class[c] |= VCHAR;
        /* RFC 9110 tchar */
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL))
            byte_class[c] |= TCHAR;
    }
}

static bool all_of(const char *s, size_t len, unsigned char cls)
{
    for (size_t i = 0; i < len; i++)
        if (!(byte_class[(unsigned char)s[i]] & cls)) return false;
    return true;
}

/* The request target: origin-form ("/path?query"), absolute-form
 * ("http://host/path?query", routed by its path) or "*". */
static int split_target(struct lg_http_parse *ps)
{
    char *url = (char *)ps->url;
    size_t len = ps->url_len;
    if (url == NULL || len == 0) return fail(ps, 400, "missing request target");
    if (memchr(url, '#', len) != NULL) return fail(ps, 400, "a fragment in the request target");
    char *path = url, *end = url + len;
    if (url[0] != '/' && !(len == 1 && url[0] == '*')) {
        if (ps->parser.method == HTTP_CONNECT) return fail(ps, 405, "CONNECT is not supported");
        struct http_parser_url u;
        http_parser_url_init(&u);
        if (http_parser_parse_url(url, len, 0, &u) != 0 || !(u.field_set & (1 << UF_SCHEMA)) ||
            !(u.field_set & (1 << UF_HOST)))
            return fail(ps, 400, "malformed request target");
        const char *scheme = url + u.field_data[UF_SCHEMA].off;
        size_t slen = u.field_data[UF_SCHEMA].len;
        if (!((slen == 4 && strncasecmp(scheme, "http", 4) == 0) ||
              (slen == 5 && strncasecmp(scheme, "https", 5) == 0)))
            return fail(ps, 400, "the target's scheme is not http");
        if (!(u.field_set & (1 << UF_PATH))) {
            /* "http://host" means "/": the byte before the end is free to hold it */
            path = end - 1;
            path[0] = '/';
            path[1] = '\0';
            ps->path = path;
            ps->query = NULL;
            return 0;
        }
        path = url + u.field_data[UF_PATH].off;
    }
    *end = '\0'; /* the space before the version */
    char *q = memchr(path, '?', (size_t)(end - path));
    if (q != NULL) *q++ = '\0';
    ps->path = path;
    ps->query = q;
    return 0;
}

static enum lg_http_method map_method(unsigned m)
{
    switch (m) {
    case HTTP_GET: return LG_HTTP_GET;
    case HTTP_HEAD: return LG_HTTP_HEAD;
    case HTTP_POST: return LG_HTTP_POST;
    case HTTP_PATCH: return LG_HTTP_PATCH;
    case HTTP_DELETE: return LG_HTTP_DELETE;
    case HTTP_PUT: return LG_HTTP_PUT;
    default: return LG_HTTP_OTHER;
    }
}

static int known_index(const struct lg_http_field *f)
{
    /* every known name is 4 to 17 bytes long; most fields are not known */
    if (f->name_len < 4 || f->name_len > 17) return -1;
    char c0 = (char)(f->name[0] | 0x20); /* ASCII lower case */
    for (int i = 0; i < LG_HDR_COUNT; i++)
        if (known_names[i].len == f->name_len && (known_names[i].name[0] | 0x20) == c0 &&
            strncasecmp(known_names[i].name, f->name, f->name_len) == 0)
            return i;
    return -1;
}

/* Every field once more, now that all of them are in: names end at their
 * colon, values lose their trailing whitespace, both become C strings. */
static int finish_fields(struct lg_http_parse *ps)
{
    for (unsigned i = 0; i < ps->nfields; i++) {
        struct lg_http_field *f = &ps->fields[i];
        /* http_parser takes "Name :" as the name "Name ", and lets spaces
         * inside a name through: a name is a token, nothing else */
        if (f->name_len == 0 || !all_of(f->name, f->name_len, TCHAR))
            return fail(ps, 400, "a header field name that is not a token");
        if (f->value_len == 0) {
            /* its view may point at the next line: never write there */
            ((char *)f->name)[f->name_len] = '\0';
            f->value = "";
            goto known;
        }
        while (f->value_len > 0 && is_space(f->value[f->value_len - 1])) f->value_len--;
        /* http_parser checks every byte of a value but its first (a NUL
         * there would cut the value short); fuzz_http holds it to that */
        if (f->value_len > 0 && !all_of(f->value, 1, VCHAR))
            return fail(ps, 400, "a control byte in a header field");
        ((char *)f->name)[f->name_len] = '\0';   /* the colon */
        ((char *)f->value)[f->value_len] = '\0'; /* whitespace, CR or LF */
    known:;
        int k = known_index(f);
        if (k < 0) continue;
        if (ps->known[k] != NULL) return fail(ps, 400, "a repeated header field");
        ps->known[k] = f->value;
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct lg_http_parse *ps = p->data;
    if (ps->state == LG_PARSE_ERROR) return -1;
    if (p->http_major != 1 || p->http_minor > 1)
        return fail(ps, 505, "only HTTP/1.1 and HTTP/1.0 are supported");
    if (finish_fields(ps) < 0) return -1;
    const char *te = ps->known[LG_HDR_TRANSFER_ENCODING];
    if (te != NULL && strcasecmp(te, "chunked") != 0)
        return fail(ps, 400, "unsupported Transfer-Encoding");
    /* RFC 9112 section 6.1: an HTTP/1.0 message with Transfer-Encoding has
     * faulty framing */
    if (te != NULL && p->http_minor == 0)
        return fail(ps, 400, "Transfer-Encoding in an HTTP/1.0 request");
    if (p->http_minor == 1 && ps->known[LG_HDR_HOST] == NULL)
        return fail(ps, 400, "an HTTP/1.1 request needs a Host header");
    if (split_target(ps) < 0) return -1;
    ps->method = map_method(p->method);
    ps->minor = p->http_minor;
    ps->upgrade = p->upgrade;
    ps->has_body = (p->flags & F_CHUNKED) || ((p->flags & F_CONTENTLENGTH) && p->content_length > 0);
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > ps->max_body)
        return fail(ps, 413, "the request body is too large");
    const char *expect = ps->known[LG_HDR_EXPECT];
    ps->expect_continue =
        ps->has_body && expect != NULL && strcasecmp(expect, "100-continue") == 0;
    ps->state = LG_PARSE_BODY;
    ps->last_cb = CB_NONE;
    if (ps->has_body && ps->skip_body) {
        ps->body_skipped = true;
        return 1; /* F_SKIPBODY: the request is complete without it */
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct lg_http_parse *ps = p->data;
    if (ps->body_len + len > ps->max_body) return fail(ps, 413, "the request body is too large");
    if (ps->body_len + len + 1 > ps->body_cap) {
        size_t cap = ps->body_cap ? ps->body_cap : 1024;
        while (cap < ps->body_len + len + 1) cap *= 2;
        char *nb = realloc(ps->body, cap);
        if (nb == NULL) return fail(ps, 503, "out of memory");
        ps->body = nb;
        ps->body_cap = cap;
    }
    memcpy(ps->body + ps->body_len, at, len);
    ps->body_len += len;
    ps->body[ps->body_len] = '\0';
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct lg_http_parse *ps = p->data;
    /* an unread body is still in the connection: it cannot carry another request */
    ps->keep_alive = http_should_keep_alive(p) && !ps->upgrade && !ps->body_skipped;
    ps->state = LG_PARSE_DONE;
    http_parser_pause(p, 1); /* one request at a time: the rest waits */
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void lg_http_parse_init(struct lg_http_parse *ps, size_t max_head, size_t max_body)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, byte_class_init);
    memset(ps, 0, sizeof(*ps));
    ps->max_head = max_head;
    ps->max_body = max_body;
    lg_http_parse_reset(ps);
}

void lg_http_parse_reset(struct lg_http_parse *ps)
{
    http_parser_init(&ps->parser, HTTP_REQUEST);
    ps->parser.data = ps;
    ps->state = LG_PARSE_IDLE;
    ps->error_status = 0;
    ps->error_msg = NULL;
    ps->path = ps->query = NULL;
    ps->url = NULL;
    ps->url_len = 0;
    ps->nfields = 0;
    memset(ps->known, 0, sizeof(ps->known));
    ps->keep_alive = ps->has_body = ps->expect_continue = ps->upgrade = ps->body_skipped = false;
    ps->head_bytes = 0;
    ps->body_len = 0;
    if (ps->body != NULL) ps->body[0] = '\0';
    ps->last_cb = CB_NONE;
}

void lg_http_parse_free(struct lg_http_parse *ps)
{
    free(ps->body);
    ps->body = NULL;
    ps->body_cap = 0;
}

static int parser_error_status(enum http_errno e)
{
    switch (e) {
    case HPE_HEADER_OVERFLOW: return 431;
    case HPE_INVALID_METHOD: return 400;
    default: return 400;
    }
}

size_t lg_http_parse_feed(struct lg_http_parse *ps, char *data, size_t len)
{
    if (ps->state == LG_PARSE_DONE || ps->state == LG_PARSE_ERROR || len == 0) return 0;
    /* The head may not grow past max_head, whatever it is made of (empty
     * lines before it included): feed it no further than that. */
    size_t n = len;
    bool capped = false;
    if (ps->state == LG_PARSE_IDLE || ps->state == LG_PARSE_HEAD) {
        size_t room = ps->max_head - ps->head_bytes;
        if (room == 0) {
            fail(ps, 431, "the request head is too large");
            return 0;
        }
        if (n > room) {
            n = room;
            capped = true;
        }
    }
    enum lg_http_parse_state before = ps->state;
    size_t used = http_parser_execute(&ps->parser, &settings, data, n);
    enum http_errno e = HTTP_PARSER_ERRNO(&ps->parser);
    if (before == LG_PARSE_IDLE || before == LG_PARSE_HEAD) {
        /* bytes of the head: all of them, or up to the head's end */
        ps->head_bytes += used;
    }
    if (ps->state == LG_PARSE_ERROR) return used;
    if (e == HPE_PAUSED) return used; /* LG_PARSE_DONE */
    if (e != HPE_OK) {
        fail(ps, parser_error_status(e), "malformed request");
        return used;
    }
    if (capped && (ps->state == LG_PARSE_IDLE || ps->state == LG_PARSE_HEAD))
        fail(ps, 431, "the request head is too large");
    return used;
}

const char *lg_http_parse_header(const struct lg_http_parse *ps, const char *name)
{
    size_t nlen = strlen(name);
    for (unsigned i = 0; i < ps->nfields; i++)
        if (ps->fields[i].name_len == nlen && strcasecmp(ps->fields[i].name, name) == 0)
            return ps->fields[i].value;
    return NULL;
}
