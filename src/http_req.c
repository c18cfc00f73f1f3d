/* The request as a handler sees it: method, target, headers, peer and body,
 * all borrowed from the connection's parser for the life of the request. */
#include "http_internal.h"

const char *lg_http_method_name(enum lg_http_method m)
{
    static const char *const names[] = {"GET", "HEAD", "POST", "PATCH", "DELETE", "PUT", "OTHER"};
    return m >= LG_HTTP_GET && m <= LG_HTTP_OTHER ? names[m] : "OTHER";
}

enum lg_http_method lg_http_method(const struct lg_http_req *r) { return r->ps.method; }
const char *lg_http_path(const struct lg_http_req *r) { return r->ps.path; }
const char *lg_http_query(const struct lg_http_req *r) { return r->ps.query; }
const char *lg_http_peer(const struct lg_http_req *r) { return r->conn->peer; }
const char *lg_http_hdr(const struct lg_http_req *r, enum lg_http_hdr h) { return r->ps.known[h]; }

const char *lg_http_header(const struct lg_http_req *r, const char *name)
{
    return lg_http_parse_header(&r->ps, name);
}

const char *lg_http_body(const struct lg_http_req *r, size_t *len)
{
    *len = r->ps.body_len;
    return r->ps.body != NULL ? r->ps.body : "";
}
