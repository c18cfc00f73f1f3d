/* The HTTP front end: an HTTP/1.1 server (plain and TLS) on libevent
 * bufferevents, parsed by http_parser, behind a narrow interface so the rest
 * of lockgate never learns how HTTP is read or written. One server per
 * listener per event loop. */
#ifndef LG_HTTP_H
#define LG_HTTP_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct lg_config;
struct lg_http_server;
struct lg_http_req;
struct lg_tls;

enum lg_http_method {
    LG_HTTP_GET,
    LG_HTTP_HEAD,
    LG_HTTP_POST,
    LG_HTTP_PATCH,
    LG_HTTP_DELETE,
    LG_HTTP_PUT,
    LG_HTTP_OTHER
};

/* The request headers lockgate reads, found in one pass when the head is
 * complete. Each may appear at most once (a repeat is 400). */
enum lg_http_hdr {
    LG_HDR_HOST,
    LG_HDR_TRANSFER_ENCODING,
    LG_HDR_EXPECT,
    LG_HDR_AUTHORIZATION,
    LG_HDR_X_API_KEY,
    LG_HDR_X_API_SECRET,
    LG_HDR_X_REQUEST_ID,
    LG_HDR_LAST_EVENT_ID,
    LG_HDR_CONTENT_TYPE,
    LG_HDR_COOKIE,
    LG_HDR_ORIGIN,
    LG_HDR_X_CSRF_TOKEN,
    LG_HDR_COUNT
};

/* Called once per request. The handler must eventually answer exactly once
 * with lg_http_reply or lg_http_stream_start/.../lg_http_stream_end, even when
 * the client has gone. */
typedef void lg_http_handler(struct lg_http_req *req, void *arg);
/* Called when the client's connection closes before the answer was finished. */
typedef void lg_http_close_cb(struct lg_http_req *req, void *arg);

/* Listens on ADDR ("host:port") on BASE with SO_REUSEPORT. TLS when TLS is
 * non-NULL (borrowed, must outlive the server). MAX_BODY bounds request bodies
 * (a JSON 413 past it). Heads are bounded by [server] max_header_bytes and
 * header_timeout_s, idle connections by client_timeout_s. Returns NULL with a
 * log line on error. */
struct lg_http_server *lg_http_server_new(struct event_base *base, const struct lg_config *cfg,
                                          const char *addr, struct lg_tls *tls, size_t max_body,
                                          lg_http_handler *handler, void *arg);
/* Closes every connection (a pending request's close callback runs first). */
void lg_http_server_free(struct lg_http_server *srv);
/* Closes the listening socket (a draining gateway refuses new clients);
 * connections already accepted go on. */
void lg_http_server_stop_listening(struct lg_http_server *srv);
/* Writes out and frees the calling thread's buffered access log lines; call
 * when a thread that ran servers leaves its event loop. */
void lg_http_thread_done(void);
/* Makes SRV a public API listener: its answers are counted in the metrics
 * (metrics.h), carry Cache-Control: no-store, and its connections count
 * toward [server] max_connections and max_connections_per_ip (conn_limit.h). */
void lg_http_server_count_metrics(struct lg_http_server *srv);

/* Turns SRV's access log lines on or off ([server] access_log, SIGHUP). Call
 * on SRV's own loop thread. NULL is ignored. */
void lg_http_server_set_access_log(struct lg_http_server *srv, bool on);

/* "GET", "HEAD", ... ("OTHER" for the rest); a static string. */
const char *lg_http_method_name(enum lg_http_method m);

/* Request accessors: all borrowed for the life of the request. */
enum lg_http_method lg_http_method(const struct lg_http_req *req);
const char *lg_http_path(const struct lg_http_req *req);   /* raw, undecoded, no query */
const char *lg_http_query(const struct lg_http_req *req);  /* raw or NULL */
/* A header's value (surrounding whitespace removed), or NULL when absent. */
const char *lg_http_header(const struct lg_http_req *req, const char *name);
const char *lg_http_hdr(const struct lg_http_req *req, enum lg_http_hdr h);
const char *lg_http_peer(const struct lg_http_req *req);              /* client IP text */
const char *lg_http_body(const struct lg_http_req *req, size_t *len); /* NUL-terminated copy */

/* Adds an answer header (copied; a value with a control byte is dropped
 * with a log line). Call before replying. */
void lg_http_set_header(struct lg_http_req *req, const char *name, const char *value);
/* Answers with BODY (copied; NULL/0 for none). For HEAD the body is not sent
 * but Content-Length is. Frees the request: REQ is invalid afterwards. */
void lg_http_reply(struct lg_http_req *req, int status, const char *content_type, const char *body,
                   size_t len);

/* Registers ON_CLOSE for a request whose answer is pending (upstream in flight,
 * open stream). It runs when the client has gone: a reset or a write error
 * (and, for a stream, the end of the client's side). A client that only shut
 * its sending side after a request still gets its answer. After ON_CLOSE the
 * handler must still answer exactly once (lg_http_reply or lg_http_stream_end),
 * which then just releases the request. */
void lg_http_on_close(struct lg_http_req *req, lg_http_close_cb *on_close, void *arg);

/* Streaming answers (server-sent events): start, write chunks, end. */
void lg_http_stream_start(struct lg_http_req *req, int status, const char *content_type);
/* Queues DATA; returns the bytes now waiting in the output buffer (the
 * caller drops slow readers past its limit, or waits for them). LEN 0
 * queues nothing and only reports that. */
size_t lg_http_stream_write(struct lg_http_req *req, const char *data, size_t len);
/* Ends the stream and releases REQ. */
void lg_http_stream_end(struct lg_http_req *req);
/* Ends a stream cut short and releases REQ: what was written is sent, then the
 * connection closes without the last chunk, so that the client sees an
 * incomplete answer instead of a whole one. */
void lg_http_stream_abort(struct lg_http_req *req);

#endif
