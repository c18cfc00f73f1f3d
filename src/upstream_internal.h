/* Internal interface of the upstream client, shared by upstream*.c only:
 * the client, its URLs, connections and requests, and the pieces the files
 * build on each other with, bottom up: the URLs (upstream_target.c),
 * request building (upstream_request.c), answer parsing
 * (upstream_answer.c), the connection pool and its I/O (upstream_conn.c);
 * upstream.c drives them from its events and is the public interface. */
#ifndef LG_UPSTREAM_INTERNAL_H
#define LG_UPSTREAM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <http_parser.h>

#include "lockgate/config.h"
#include "lockgate/list.h"
#include "lockgate/upstream.h"

#define LG_UPSTREAM_BODY_MAX     (1024 * 1024) /* a bigger answer fails the request */
#define LG_UPSTREAM_BODY_KEEP    (64 * 1024)   /* body buffers above this are not kept pooled */
#define LG_UPSTREAM_PATH_MAX     8192
#define LG_UPSTREAM_HEADERS_MAX  128         /* header lines per request */
#define LG_UPSTREAM_HEADER_BYTES (64 * 1024) /* their total size */
#define LG_UPSTREAM_CTYPE_MAX    256
#define LG_UPSTREAM_RETRY_MS     1000  /* a failed URL is tried again after this */
#define LG_UPSTREAM_POOL_MIN     64    /* request objects kept for reuse, at least */
#define LG_UPSTREAM_SPARE        64    /* handles of closed connections kept for new ones */
#define LG_UPSTREAM_READ         16384 /* what one curl_easy_recv gives at most (curl's buffer) */

/* A list of requests, oldest first: those waiting for a connection, or
 * those whose callback is due. */
struct lg_upstream_queue {
    struct lg_list list; /* of lg_upstream_req.link */
    int n;
};

struct lg_upstream_target {
    char *base; /* as configured, no trailing slash: where curl connects, and for logs */
    char *host; /* the Host header's value: host, and port unless the scheme's own */
    size_t host_len;
    char *prefix; /* the base URL's path before every request's ("" or "/api") */
    size_t prefix_len;
    int64_t failed_ms; /* monotonic time of the last connect failure, 0 when healthy */

    int nconns, nconnecting;       /* open or connecting; connecting */
    struct lg_list idle;           /* most recently used first */
    struct lg_upstream_queue wait; /* for any connection */
    struct lg_upstream_queue
        fresh; /* sent again after a reused connection failed: new connections only */
};

enum lg_upstream_conn_state {
    CONN_CONNECTING, /* libcurl is opening it */
    CONN_IDLE,       /* in its target's idle list */
    CONN_BUSY        /* carrying an exchange (or between states) */
};

/* One upstream connection, held by its easy handle. The handle stays added
 * to the multi handle while the connection lives: removing it closes it. */
struct lg_upstream_conn {
    struct lg_upstream *up;
    CURL *easy;
    struct event *ev; /* our watch of the socket once connected */
    short ev_what;    /* the interest armed on EV, 0 when not added */
    curl_socket_t fd;
    enum lg_upstream_conn_state state;
    int target;

    struct lg_upstream_req *req; /* the exchange in progress */
    int reused;                  /* it went out on a connection taken from the idle pool */
    size_t got;                  /* answer bytes received in it */
    int done, keep;              /* the final answer is complete; the connection may go on */
    http_parser parser;
    char hname[16]; /* the header name being read, while it may be Content-Type */
    size_t hname_len;
    int in_value, is_ctype;

    struct lg_list link;      /* in up->conns, or up->spare */
    struct lg_list idle_link; /* in the target's idle list */
    char errbuf[CURL_ERROR_SIZE];
};

enum lg_upstream_req_state {
    REQ_FREE,    /* pooled */
    REQ_WAITING, /* in a target's wait or fresh queue */
    REQ_BUSY,    /* on a connection */
    REQ_DONE,    /* finished, its callback due (in up->done) */
    REQ_CALLING  /* its callback is running */
};

/* One request, pooled with every buffer it needs so that the steady state
 * allocates nothing. */
struct lg_upstream_req {
    struct lg_upstream *up;
    enum lg_upstream_req_state state;
    struct lg_list link;             /* in its queue, up->done, or the pool */
    struct lg_upstream_queue *queue; /* the list it is in */
    lg_upstream_cb *cb;
    void *arg;
    int target;
    int head;
    int moved;     /* already moved to another URL after a connect failure */
    int resent;    /* already sent again after a reused connection failed */
    int connected; /* had a connection (a timeout before that is the URL's fault) */
    int64_t start_ms;
    struct event *timer; /* the whole exchange's deadline */
    struct lg_upstream_conn *conn;

    /* [room][header lines][CRLF][path_query]: the request line and Host of the
     * chosen URL end the room, so moving to another URL rewrites only them */
    char *out;
    size_t out_cap, room, start, end, sent, path_off, path_len;
    int own_host; /* no Host among the caller's headers: ours goes in */

    int status;
    char *body;
    size_t body_len, body_cap;
    char ctype[LG_UPSTREAM_CTYPE_MAX];
    size_t ctype_len;
    int ctype_state; /* 0 none, 1 read, -1 too long (left out) */
    struct lg_upstream_result res;
};

/* One socket libcurl asked us to watch (while it connects). */
struct lg_upstream_sock {
    struct lg_upstream *up;
    struct event *ev;
    curl_socket_t fd;
    struct lg_list link; /* in up->socks */
};

struct lg_upstream {
    struct event_base *base;
    CURLM *multi;
    CURLSH *share; /* TLS sessions, so that reconnecting resumes */
    struct event *timer;
    struct event *flush; /* runs callbacks of requests finished outside our own events */
    event_callback_fn on_conn_event; /* upstream.c's, for every connection's socket event */
    struct timeval deadline_tv;
    const struct timeval *deadline; /* timeout_ms, as a common timeout when libevent has one */

    struct lg_upstream_target *targets;
    int ntargets;
    size_t room_max; /* request line and Host without the path, longest over the URLs */
    unsigned rr;

    long timeout_ms;
    long connect_timeout_ms;
    int max_conns; /* per URL, open and connecting */
    char ca_file[LG_PATH_MAX];

    struct lg_list conns; /* open and connecting */
    struct lg_list spare; /* closed, kept with their handles */
    int nspare;
    struct lg_list pool;
    int npool, pool_max;
    struct lg_upstream_queue done;
    int inflight;
    int dispatching; /* inside our event callbacks: a free waits for them to end */
    int closing;

    struct lg_list socks;
    char rbuf[LG_UPSTREAM_READ];
};

/* ---- upstream_target.c: the URLs ---- */

/* Parses the comma-separated URL LIST into UP's targets (blanks and trailing
 * slashes trimmed) and sets room_max. -1 with a log line on error; what was
 * parsed is freed by lg_upstream_targets_free either way. */
int lg_upstream_targets_parse(struct lg_upstream *up, const char *list);
void lg_upstream_targets_free(struct lg_upstream *up);
/* Next URL in round robin, skipping those that failed to connect recently.
 * EXCLUDE (or -1) is never chosen; with it, -1 is returned when no other URL
 * is eligible. Without it, an all-failed set still yields the next URL: trying
 * is better than refusing without a try. */
int lg_upstream_target_pick(struct lg_upstream *up, int exclude);
/* Records that URL IDX failed to connect (FAILED) or answered. */
void lg_upstream_target_mark(struct lg_upstream *up, int idx, int failed);

/* ---- upstream_request.c: building a request ---- */

/* Whether P is a path (and query) that may go to the upstream; *LEN is its
 * length without the fragment. */
int lg_upstream_path_ok(const char *p, size_t *len);
/* Formats HEADERS (NULL-terminated "Name: value" lines, borrowed) and the
 * PLEN bytes of PATH into REQ's buffer, leaving room for the request line and
 * Host. -1 when a header line is refused or too many. */
int lg_upstream_req_format(struct lg_upstream_req *req, const char *path, size_t plen,
                           const char *const *headers);
/* Writes the request line and Host for target IDX just before the header lines. */
void lg_upstream_req_set_target(struct lg_upstream_req *req, int idx);

/* ---- upstream_answer.c: reading the answer ---- */

/* Makes C's parser ready for the answer to its new exchange. */
void lg_upstream_answer_start(struct lg_upstream_conn *c);
/* Feeds LEN bytes of answer (0: the connection ended) to C's parser; returns
 * the bytes used. c->done is set once the final answer is complete. */
size_t lg_upstream_answer_feed(struct lg_upstream_conn *c, const char *data, size_t len);
/* Fills req->res from what was read (for LG_UPSTREAM_OK) or with ERROR. */
void lg_upstream_answer_result(struct lg_upstream_req *req, enum lg_upstream_error error);

/* ---- upstream_conn.c: the connection pool ---- */

void lg_upstream_queue_push(struct lg_upstream_queue *q, struct lg_upstream_req *req, int front);
void lg_upstream_queue_remove(struct lg_upstream_req *req);
struct lg_upstream_req *lg_upstream_queue_pop(struct lg_upstream_queue *q);
void lg_upstream_req_destroy(struct lg_upstream_req *req);
/* Back to the pool (or freed when the pool is full). REQ must be in no list
 * and its timer stopped. */
void lg_upstream_req_put(struct lg_upstream *up, struct lg_upstream_req *req);
/* REQ (in no list, on no connection) is finished: it joins up->done, whose
 * callbacks upstream.c runs, never from inside the call that finished it. */
void lg_upstream_req_complete(struct lg_upstream_req *req, enum lg_upstream_error error);
void lg_upstream_conn_destroy(struct lg_upstream_conn *c);
/* Closes C: its handle leaves the multi handle, which closes the connection.
 * C must carry no request; it is kept as a spare. */
void lg_upstream_conn_close(struct lg_upstream_conn *c);
/* libcurl opened C: it serves the oldest waiting request, or waits idle. */
void lg_upstream_conn_ready(struct lg_upstream_conn *c);
/* libcurl could not open C: the oldest request waiting for its URL fails with
 * it, or moves to another URL when the URL itself failed. */
void lg_upstream_conn_failed(struct lg_upstream_conn *c, CURLcode rc);
/* C's socket is ready for WHAT (EV_READ, EV_WRITE). */
void lg_upstream_conn_event(struct lg_upstream_conn *c, short what);
/* Matches target IDX's waiting requests with connections (idle ones first,
 * then new ones within max_conns); _all does it for every URL. */
void lg_upstream_pump(struct lg_upstream *up, int idx);
void lg_upstream_pump_all(struct lg_upstream *up);

#endif
