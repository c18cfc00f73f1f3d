/* The HTTP front end: plain and TLS listeners over evhttp, behind a narrow
 * interface so the rest of lockgate never sees an evhttp type. One server per
 * listener per event loop. */
#ifndef LG_HTTP_H
#define LG_HTTP_H

#include <stddef.h>

struct event_base;
struct lg_config;
struct lg_http_server;
struct lg_http_req;
typedef struct ssl_ctx_st SSL_CTX;

enum lg_http_method {
    LG_HTTP_GET,
    LG_HTTP_HEAD,
    LG_HTTP_POST,
    LG_HTTP_PATCH,
    LG_HTTP_DELETE,
    LG_HTTP_PUT,
    LG_HTTP_OTHER
};

/* Called once per request. The handler must eventually answer exactly once
 * with lg_http_reply or lg_http_stream_start/.../lg_http_stream_end, even when
 * the client has gone. */
typedef void lg_http_handler(struct lg_http_req *req, void *arg);
/* Called when the client's connection closes before the answer was finished. */
typedef void lg_http_close_cb(struct lg_http_req *req, void *arg);

/* Listens on ADDR ("host:port") on BASE with SO_REUSEPORT. TLS when TLS is
 * non-NULL (borrowed, must outlive the server). MAX_BODY bounds request bodies
 * (413 past it). Returns NULL with a log line on error. */
struct lg_http_server *lg_http_server_new(struct event_base *base, const struct lg_config *cfg,
                                          const char *addr, SSL_CTX *tls, size_t max_body,
                                          lg_http_handler *handler, void *arg);
void lg_http_server_free(struct lg_http_server *srv);
/* Reads a body declared past MAX_BODY to its end before answering 413, so
 * that a client still sending gets the answer instead of a connection reset.
 * Only for a listener of trusted clients: the client decides how much is read. */
void lg_http_server_linger(struct lg_http_server *srv);
/* Closes the listening socket (a draining gateway refuses new clients);
 * connections already accepted go on. */
void lg_http_server_stop_listening(struct lg_http_server *srv);
/* Writes out and frees the calling thread's buffered access log lines; call
 * when a thread that ran servers leaves its event loop. */
void lg_http_thread_done(void);
/* Counts this server's answers in the public API metrics (metrics.h). */
void lg_http_server_count_metrics(struct lg_http_server *srv);

/* Builds the shared server TLS context from [tls] (TLS 1.2+, ALPN http/1.1).
 * NULL with a log line on error. */
SSL_CTX *lg_http_tls_ctx_new(const struct lg_config *cfg);

/* "GET", "HEAD", ... ("OTHER" for the rest); a static string. */
const char *lg_http_method_name(enum lg_http_method m);

/* Request accessors: all borrowed for the life of the request. */
enum lg_http_method lg_http_method(const struct lg_http_req *req);
const char *lg_http_path(const struct lg_http_req *req);   /* raw, undecoded, no query */
const char *lg_http_query(const struct lg_http_req *req);  /* raw or NULL */
const char *lg_http_target(const struct lg_http_req *req); /* path and query, as sent */
const char *lg_http_header(const struct lg_http_req *req, const char *name);
const char *lg_http_peer(const struct lg_http_req *req);              /* client IP text */
const char *lg_http_body(const struct lg_http_req *req, size_t *len); /* NUL-terminated copy */

/* Adds an answer header (copied). Call before replying. */
void lg_http_set_header(struct lg_http_req *req, const char *name, const char *value);
/* Answers with BODY (copied; NULL/0 for none). For HEAD the body is not sent
 * but Content-Length is. Frees the request: REQ is invalid afterwards. */
void lg_http_reply(struct lg_http_req *req, int status, const char *content_type, const char *body,
                   size_t len);

/* Registers ON_CLOSE for a request whose answer is pending (upstream in flight,
 * open stream). After ON_CLOSE the handler must still answer exactly once
 * (lg_http_reply or lg_http_stream_end), which then just releases the request. */
void lg_http_on_close(struct lg_http_req *req, lg_http_close_cb *on_close, void *arg);

/* Streaming answers (server-sent events): start, write chunks, end. */
void lg_http_stream_start(struct lg_http_req *req, int status, const char *content_type);
/* Queues DATA; returns the bytes now waiting in the output buffer (the
 * caller drops slow readers past its limit). */
size_t lg_http_stream_write(struct lg_http_req *req, const char *data, size_t len);
/* Ends the stream and releases REQ. */
void lg_http_stream_end(struct lg_http_req *req);

#endif
