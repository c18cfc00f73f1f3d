/* Request parsing and framing: http_parser (strict, lenient headers off) as
 * the only parser, plus the RFC 9112 rules it does not enforce itself:
 * versions other than 1.0/1.1, a missing or repeated Host, whitespace before
 * a colon, obs-fold, any Transfer-Encoding but "chunked", a fragment in the
 * target, head and body limits. No sockets here: bytes in, a request or an
 * error status out, so the fuzzer can drive it exactly as the server does. */
#ifndef LG_HTTP_PARSE_H
#define LG_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>

#include "lockgate/http.h"

#define LG_HTTP_MAX_FIELDS 64

struct lg_http_field {
    const char *name, *value; /* NUL-terminated once the head is complete */
    uint32_t name_len, value_len;
};

enum lg_http_parse_state {
    LG_PARSE_IDLE,  /* nothing of a request yet (leading empty lines are ignored) */
    LG_PARSE_HEAD,  /* inside the request head */
    LG_PARSE_BODY,  /* head complete, body bytes to come */
    LG_PARSE_DONE,  /* a whole request; the parser stops right after it */
    LG_PARSE_ERROR, /* error_status and error_msg say why; the connection must close */
};

struct lg_http_parse {
    http_parser parser;
    size_t max_head, max_body;
    bool skip_body; /* a request is complete at its head; a body is left unread */
    enum lg_http_parse_state state;
    int error_status;      /* 400, 405, 413, 431, 505 */
    const char *error_msg; /* static text */

    /* The request, valid from LG_PARSE_BODY on; views into the fed bytes. */
    enum lg_http_method method;
    int minor; /* HTTP/1.MINOR: 0 or 1 */
    const char *path, *query; /* NUL-terminated; query NULL when absent */
    struct lg_http_field fields[LG_HTTP_MAX_FIELDS];
    unsigned nfields;
    const char *known[LG_HDR_COUNT]; /* looked up once, when the head completes */
    bool keep_alive;      /* the client allows another request after this one */
    bool has_body;        /* Content-Length > 0 or chunked */
    bool expect_continue; /* Expect: 100-continue with a body still to come */
    bool upgrade;         /* Upgrade or CONNECT: bytes after the head are not HTTP */
    bool body_skipped;    /* has_body, and skip_body left it unread (no keep-alive) */
    size_t head_bytes;

    /* The body, copied (chunked bodies arrive in pieces); NUL-terminated. */
    char *body;
    size_t body_len, body_cap;

    /* piece tracking while the head arrives */
    const char *url;
    size_t url_len;
    int last_cb; /* which data callback ran last */
};

/* Prepares PS once (limits in bytes); lg_http_parse_reset before each request. */
void lg_http_parse_init(struct lg_http_parse *ps, size_t max_head, size_t max_body);
void lg_http_parse_reset(struct lg_http_parse *ps);
/* Frees the body buffer. */
void lg_http_parse_free(struct lg_http_parse *ps);

/* Feeds LEN bytes at DATA (writable: names, values, path and query are
 * NUL-terminated in place; the bytes must stay put while the request is
 * used). Returns the bytes consumed: all of them unless the state became
 * LG_PARSE_DONE (the rest belongs to the next request) or LG_PARSE_ERROR. */
size_t lg_http_parse_feed(struct lg_http_parse *ps, char *data, size_t len);

/* A header by name (case-insensitive), or NULL. Borrowed. */
const char *lg_http_parse_header(const struct lg_http_parse *ps, const char *name);

#endif
