/* upstream_server: a stand-in for the lock platform's API (SPEC section 6) for
 * the integration tests and the local demo; it can answer slowly, fail, reset
 * and record what it received.
 *
 *   upstream_server --port P [--record FILE] [--data DIR] [--tls-cert FILE --tls-key FILE]
 *
 * Routes (GET or HEAD; anything else is 405), for ANY facility id:
 *   /v1/facilities/{fac}                          {"facility_id","name","unit_count"}
 *   /v1/facilities/{fac}/units                    {"facility_id","units":[...],"count"}
 *   /v1/facilities/{fac}/units/{unit} {"facility_id","unit_id","lock_serial","lock_status"}
 *   /v1/facilities/{fac}/units/{unit}/unlock-code {"facility_id","unit_id","unlock_code",
 *                                                  "lock_serial","lock_status"}
 *   /_stats                                       {"connections","requests"} (never recorded)
 * Anything else, and an unknown unit, is 404 {"error":{"code":"not_found",...}}.
 *
 * Generated data (scripts/gen-demo-data.sh writes the same values):
 *   units are U001..U020 (U + 3 digits, number 1..20);
 *   D = SHA-256 of "{fac}/{unit}";
 *   unlock_code = big-endian uint32 of D[0..3] mod 10000, as 4 digits;
 *   lock_serial = D[4..11], each byte mod 36 as a char of [0-9A-Z];
 *   lock_status by unit number n: n%5 == 0 assigned_auction, 1 tenant_using_lock,
 *   2 assigned_overlock, 3 assigned_vacant, 4 returned_to_dropbox.
 *
 * Behaviour chosen by the facility id's prefix:
 *   slow...  answers normally after ?delay_ms= ms, else after N ms for an id
 *            "slowNms..." (lockgate passes a query on only with the unit
 *            list), else after 3000 ms; at most 60000
 *   fail...  500 {"error":{"code":"internal",...}}
 *   reset... closes the connection without answering (SO_LINGER 0)
 *   big...   the facility object gets a "padding" string of ?bytes= bytes
 *            (default 2 MiB, at most 8 MiB)
 *   chunked... the facility object in two chunks (Transfer-Encoding: chunked),
 *            with a "padding" of ?bytes= bytes when asked (at most 8 MiB)
 *   cut...   the head and a first chunk of the answer, then a reset 50 ms later
 *   drop...  answered as the first request of a connection; on a connection
 *            that already served one, closed (FIN) without an answer, as an
 *            upstream whose idle timeout fell just then
 *   brief... answered normally (kept alive), then the connection is closed
 *            100 ms later, as an upstream with a short idle timeout
 *   eof...   "Connection: close" and no Content-Length: the body ends with
 *            the connection (plain TCP only)
 *   interim... 100 Continue and 103 Early Hints before the answer (plain TCP only)
 *
 * --record FILE appends one line per request, flushed at once:
 *   METHOD URI<TAB>Name: value<TAB>Name: value...
 * (tabs and control characters inside values are written as spaces).
 * --data DIR serves DIR/<path>/index.json (the layout of gen-demo-data.sh)
 * for the facilities DIR holds, 404 when that file is missing; other
 * facilities get the generated answers.
 * --tls-cert/--tls-key: speaks HTTPS (TLS only) with that certificate.
 * Prints "ready" on stdout once listening; exits 0 on SIGTERM or SIGINT. */
#include <errno.h>
#include <sys/queue.h> /* before keyvalq_struct.h, for TAILQ_* */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <getopt.h>
#include <event2/bufferevent_ssl.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define UNITS            20
#define ID_MAX           64
#define DELAY_DEFAULT_MS 3000
#define DELAY_MAX_MS     60000
#define BIG_DEFAULT      (2 * 1024 * 1024)
#define BIG_MAX          (8 * 1024 * 1024)
#define DATA_FILE_MAX    (8 * 1024 * 1024)

static const char *const statuses[5] = {"assigned_auction", "tenant_using_lock",
                                        "assigned_overlock", "assigned_vacant",
                                        "returned_to_dropbox"};

struct route {
    char fac[ID_MAX + 1];
    char unit[ID_MAX + 1];
    int kind; /* ROUTE_* */
};

enum { ROUTE_NONE, ROUTE_FACILITY, ROUTE_UNITS, ROUTE_UNIT, ROUTE_CODE, ROUTE_STATS };

/* A delayed answer (slow facilities). */
struct pending {
    struct evhttp_request *req;
    struct event *timer;
    struct route route;
    char *query;
    struct pending *prev, *next;
};

static struct event_base *base;
static FILE *record;
static const char *data_dir;
static struct pending *pendings;
static unsigned long stat_connections, stat_requests;
static SSL_CTX *tls_ctx;

/* What this server knows of one client connection: how many requests it
 * carried, and a close (or reset) scheduled after an answer. */
struct conn_info {
    struct evhttp_connection *evcon;
    unsigned long requests;
    struct event *timer;
    int reset; /* the scheduled close is a reset */
    struct conn_info *prev, *next;
};

static struct conn_info *conn_infos;

/* ---- data ------------------------------------------------------------- */

static int id_ok(const char *s, size_t n)
{
    if (n == 0 || n > ID_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Parses PATH into R; returns 0, or -1 for anything that is not a route. */
static int route_parse(const char *path, struct route *r)
{
    memset(r, 0, sizeof(*r));
    if (strcmp(path, "/_stats") == 0) {
        r->kind = ROUTE_STATS;
        return 0;
    }
    static const char prefix[] = "/v1/facilities/";
    if (strncmp(path, prefix, sizeof(prefix) - 1) != 0) return -1;
    const char *p = path + sizeof(prefix) - 1;
    const char *seg[4];
    size_t len[4];
    int n = 0;
    while (n < 4) {
        const char *e = strchr(p, '/');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        seg[n] = p;
        len[n] = l;
        n++;
        if (e == NULL) break;
        p = e + 1;
        if (n == 4) return -1; /* more segments than any route */
    }
    if (!id_ok(seg[0], len[0])) return -1;
    memcpy(r->fac, seg[0], len[0]);
    if (n == 1) {
        r->kind = ROUTE_FACILITY;
        return 0;
    }
    if (len[1] != 5 || memcmp(seg[1], "units", 5) != 0) return -1;
    if (n == 2) {
        r->kind = ROUTE_UNITS;
        return 0;
    }
    if (!id_ok(seg[2], len[2])) return -1;
    memcpy(r->unit, seg[2], len[2]);
    if (n == 3) {
        r->kind = ROUTE_UNIT;
        return 0;
    }
    if (len[3] != 11 || memcmp(seg[3], "unlock-code", 11) != 0) return -1;
    r->kind = ROUTE_CODE;
    return 0;
}

/* The unit's number 1..UNITS, or 0 when no such unit exists. */
static int unit_number(const char *unit)
{
    if (strlen(unit) != 4 || unit[0] != 'U') return 0;
    int n = 0;
    for (int i = 1; i < 4; i++) {
        if (unit[i] < '0' || unit[i] > '9') return 0;
        n = n * 10 + (unit[i] - '0');
    }
    return n >= 1 && n <= UNITS ? n : 0;
}

static void unit_secrets(const char *fac, const char *unit, char code[5], char serial[9])
{
    static const char alnum[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    char in[2 * ID_MAX + 2];
    unsigned char d[SHA256_DIGEST_LENGTH];
    int n = snprintf(in, sizeof(in), "%s/%s", fac, unit);
    SHA256((const unsigned char *)in, (size_t)n, d);
    unsigned long v = ((unsigned long)d[0] << 24) | ((unsigned long)d[1] << 16) |
                      ((unsigned long)d[2] << 8) | d[3];
    snprintf(code, 5, "%04lu", v % 10000);
    for (int i = 0; i < 8; i++) serial[i] = alnum[d[4 + i] % 36];
    serial[8] = '\0';
}

static json_t *unit_json(const char *fac, const char *unit, int n, int with_code)
{
    char code[5], serial[9];
    unit_secrets(fac, unit, code, serial);
    json_t *o = json_object();
    json_object_set_new(o, "facility_id", json_string(fac));
    json_object_set_new(o, "unit_id", json_string(unit));
    if (with_code) json_object_set_new(o, "unlock_code", json_string(code));
    json_object_set_new(o, "lock_serial", json_string(serial));
    json_object_set_new(o, "lock_status", json_string(statuses[n % 5]));
    return o;
}

static long query_long(const char *query, const char *name, long def, long max)
{
    long v = def;
    struct evkeyvalq kv;
    TAILQ_INIT(&kv);
    if (query != NULL && evhttp_parse_query_str(query, &kv) == 0) {
        const char *s = evhttp_find_header(&kv, name);
        if (s != NULL) {
            char *end;
            errno = 0;
            long x = strtol(s, &end, 10);
            if (errno == 0 && *s && *end == '\0' && x >= 0) v = x;
        }
    }
    evhttp_clear_headers(&kv);
    return v > max ? max : v;
}

/* ---- replies ---------------------------------------------------------- */

/* A HEAD answer gets no body: evhttp leaves it out on plain connections
 * but sends it over TLS. */
static void head_drain(struct evhttp_request *req, struct evbuffer *buf)
{
    if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD)
        evbuffer_drain(buf, evbuffer_get_length(buf));
}

static void reply_json(struct evhttp_request *req, int status, const char *reason, json_t *body)
{
    struct evbuffer *buf = evbuffer_new();
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (s != NULL) {
        evbuffer_add(buf, s, strlen(s));
        free(s);
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    head_drain(req, buf);
    evhttp_send_reply(req, status, reason, buf);
    evbuffer_free(buf);
}

static void reply_error(struct evhttp_request *req, int status, const char *reason,
                        const char *code, const char *message)
{
    reply_json(req, status, reason,
               json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message));
}

/* Serves DIR/<path>/index.json for a facility that DIR holds (404 when the
 * file is missing); returns -1 without answering for any other facility. */
static int reply_file(struct evhttp_request *req, const struct route *r, const char *path)
{
    char file[PATH_MAX];
    struct stat st;
    if (data_dir == NULL) return -1;
    int n = snprintf(file, sizeof(file), "%s/v1/facilities/%s", data_dir, r->fac);
    if (n < 0 || (size_t)n >= sizeof(file) || stat(file, &st) < 0 || !S_ISDIR(st.st_mode))
        return -1;
    n = snprintf(file, sizeof(file), "%s%s/index.json", data_dir, path);
    int fd = n > 0 && (size_t)n < sizeof(file) ? open(file, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0) {
        reply_error(req, 404, "Not Found", "not_found", "unknown unit");
        return 0;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > DATA_FILE_MAX) {
        close(fd);
        return -1;
    }
    struct evbuffer *buf = evbuffer_new();
    if (evbuffer_add_file(buf, fd, 0, st.st_size) < 0) { /* takes FD */
        evbuffer_free(buf);
        return -1;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    head_drain(req, buf);
    evhttp_send_reply(req, 200, "OK", buf);
    evbuffer_free(buf);
    return 0;
}

/* The facility object, with its padding for "big" (and "chunked") facilities. */
static json_t *facility_json(const struct route *r, const char *query)
{
    char name[ID_MAX + 16];
    snprintf(name, sizeof(name), "Facility %s", r->fac);
    json_t *o =
        json_pack("{s:s,s:s,s:i}", "facility_id", r->fac, "name", name, "unit_count", UNITS);
    long bytes = strncmp(r->fac, "big", 3) == 0 ? query_long(query, "bytes", BIG_DEFAULT, BIG_MAX)
                 : strncmp(r->fac, "chunked", 7) == 0 ? query_long(query, "bytes", 0, BIG_MAX)
                                                      : 0;
    if (bytes > 0) {
        char *pad = malloc((size_t)bytes + 1);
        if (pad != NULL) {
            memset(pad, 'x', (size_t)bytes);
            pad[bytes] = '\0';
            json_object_set_new(o, "padding", json_string(pad));
            free(pad);
        }
    }
    return o;
}

static void reply_route(struct evhttp_request *req, const struct route *r, const char *path,
                        const char *query)
{
    if (path != NULL && r->kind != ROUTE_STATS && reply_file(req, r, path) == 0) return;
    int n = r->unit[0] ? unit_number(r->unit) : 0;
    switch (r->kind) {
    case ROUTE_FACILITY: reply_json(req, 200, "OK", facility_json(r, query)); return;
    case ROUTE_UNITS: {
        json_t *units = json_array();
        for (int i = 1; i <= UNITS; i++) {
            char unit[8];
            snprintf(unit, sizeof(unit), "U%03d", i);
            json_array_append_new(units, unit_json(r->fac, unit, i, 0));
        }
        reply_json(
            req, 200, "OK",
            json_pack("{s:s,s:o,s:i}", "facility_id", r->fac, "units", units, "count", UNITS));
        return;
    }
    case ROUTE_UNIT:
    case ROUTE_CODE:
        if (n == 0) {
            reply_error(req, 404, "Not Found", "not_found", "unknown unit");
            return;
        }
        reply_json(req, 200, "OK", unit_json(r->fac, r->unit, n, r->kind == ROUTE_CODE));
        return;
    default: reply_error(req, 404, "Not Found", "not_found", "no such route");
    }
}

/* The delay a slow facility's id asks for: N of "slowNms...", else the default. */
static long id_delay_ms(const char *fac)
{
    const char *digits = fac + 4;
    char *end;
    long ms = strtol(digits, &end, 10);
    if (end == digits || strncmp(end, "ms", 2) != 0 || ms < 0 || ms > DELAY_MAX_MS)
        return DELAY_DEFAULT_MS;
    return ms;
}

static void on_delay(evutil_socket_t fd, short what, void *arg)
{
    struct pending *p = arg;
    if (p->prev)
        p->prev->next = p->next;
    else
        pendings = p->next;
    if (p->next) p->next->prev = p->prev;
    /* a client that left meanwhile detached the request; replying frees it */
    reply_route(p->req, &p->route, NULL, p->query);
    event_free(p->timer);
    free(p->query);
    free(p);
}

/* ---- recording -------------------------------------------------------- */

static const char *method_name(enum evhttp_cmd_type t)
{
    switch (t) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    }
    return "?";
}

static void record_str(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        fputc(c < 0x20 || c == 0x7f ? ' ' : c, record);
    }
}

static void record_request(struct evhttp_request *req)
{
    if (record == NULL) return;
    fputs(method_name(evhttp_request_get_command(req)), record);
    fputc(' ', record);
    record_str(evhttp_request_get_uri(req));
    struct evkeyval *h;
    TAILQ_FOREACH(h, evhttp_request_get_input_headers(req), next)
    {
        fputc('\t', record);
        record_str(h->key);
        fputs(": ", record);
        record_str(h->value);
    }
    fputc('\n', record);
    fflush(record);
}

/* ---- the server ------------------------------------------------------- */

static evutil_socket_t connection_fd(struct evhttp_connection *evcon)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    return bev ? bufferevent_getfd(bev) : -1;
}

/* Closes EVCON (and any request on it) at once; with RESET, by a TCP reset. */
static void close_connection(struct evhttp_connection *evcon, int reset)
{
    evutil_socket_t fd = connection_fd(evcon);
    if (reset && fd >= 0) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    evhttp_connection_free(evcon);
}

static void reset_connection(struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (evcon != NULL) close_connection(evcon, 1); /* frees REQ too */
}

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    struct conn_info *ci = arg;
    if (ci->prev)
        ci->prev->next = ci->next;
    else
        conn_infos = ci->next;
    if (ci->next) ci->next->prev = ci->prev;
    if (ci->timer) event_free(ci->timer);
    free(ci);
}

/* The record of REQ's connection, made on its first request; NULL when out
 * of memory. evhttp calls on_conn_close when the connection goes. */
static struct conn_info *conn_info_of(struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (evcon == NULL) return NULL;
    for (struct conn_info *ci = conn_infos; ci; ci = ci->next)
        if (ci->evcon == evcon) return ci;
    struct conn_info *ci = calloc(1, sizeof(*ci));
    if (ci == NULL) return NULL;
    ci->evcon = evcon;
    ci->next = conn_infos;
    if (conn_infos) conn_infos->prev = ci;
    conn_infos = ci;
    evhttp_connection_set_closecb(evcon, on_conn_close, ci);
    return ci;
}

static void on_scheduled_close(evutil_socket_t fd, short what, void *arg)
{
    struct conn_info *ci = arg;
    close_connection(ci->evcon, ci->reset); /* on_conn_close frees CI */
}

/* Closes CI's connection MS from now (unless the client closes it first). */
static void schedule_close(struct conn_info *ci, int ms, int reset)
{
    if (ci->timer == NULL && (ci->timer = evtimer_new(base, on_scheduled_close, ci)) == NULL)
        return;
    ci->reset = reset;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    evtimer_add(ci->timer, &tv);
}

/* The facility object as compact JSON text. Caller frees. */
static char *facility_text(const struct route *r, const char *query)
{
    json_t *o = facility_json(r, query);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* The facility object in two chunks; with CUT, only the first, then a reset. */
static void reply_chunked(struct evhttp_request *req, const struct route *r, const char *query,
                          int cut)
{
    char *s = facility_text(r, query);
    struct conn_info *ci = conn_info_of(req);
    if (s == NULL || ci == NULL) {
        free(s);
        reply_error(req, 500, "Internal Server Error", "internal", "out of memory");
        return;
    }
    size_t half = strlen(s) / 2;
    struct evbuffer *buf = evbuffer_new();
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply_start(req, 200, "OK");
    evbuffer_add(buf, s, half);
    evhttp_send_reply_chunk(req, buf);
    if (cut) {
        schedule_close(ci, 50, 1);
    } else {
        evbuffer_add(buf, s + half, strlen(s) - half);
        evhttp_send_reply_chunk(req, buf);
        evhttp_send_reply_end(req);
    }
    evbuffer_free(buf);
    free(s);
}

/* Writes HEAD (a format that may take the body's length) and the facility
 * object straight to the socket and ends the connection's sending side;
 * evhttp frees the connection when the client closes. */
static void reply_raw(struct evhttp_request *req, const struct route *r, const char *head)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    evutil_socket_t fd = evcon ? connection_fd(evcon) : -1;
    char *s = facility_text(r, NULL);
    if (fd < 0 || s == NULL || tls_ctx != NULL) {
        free(s);
        reply_error(req, 500, "Internal Server Error", "internal", "no raw answer here");
        return;
    }
    char text[4096];
    size_t len = strlen(s);
    int n = snprintf(text, sizeof(text), head, len);
    if (n > 0 && (size_t)n + len < sizeof(text)) {
        memcpy(text + n, s, len);
        n += (int)len;
    } else {
        n = -1;
    }
    free(s);
    /* a small answer on a socket with nothing else to send: it fits at once */
    if (n > 0 && (size_t)n < sizeof(text) && send(fd, text, (size_t)n, MSG_NOSIGNAL) < 0)
        perror("upstream_server: send");
    shutdown(fd, SHUT_WR);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    struct route r;
    int routed = path != NULL && route_parse(path, &r) == 0;

    if (routed && r.kind == ROUTE_STATS) {
        reply_json(req, 200, "OK",
                   json_pack("{s:I,s:I}", "connections", (json_int_t)stat_connections, "requests",
                             (json_int_t)stat_requests));
        return;
    }
    stat_requests++;
    record_request(req);

    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        reply_error(req, 405, "Method Not Allowed", "method_not_allowed", "only GET and HEAD");
        return;
    }
    if (!routed) {
        reply_error(req, 404, "Not Found", "not_found", "no such route");
        return;
    }
    struct conn_info *ci = conn_info_of(req);
    if (ci != NULL) ci->requests++;
    if (strncmp(r.fac, "reset", 5) == 0) {
        reset_connection(req);
        return;
    }
    if (strncmp(r.fac, "drop", 4) == 0 && ci != NULL && ci->requests > 1) {
        close_connection(ci->evcon, 0); /* frees REQ too */
        return;
    }
    if (r.kind == ROUTE_FACILITY && strncmp(r.fac, "chunked", 7) == 0) {
        reply_chunked(req, &r, query, 0);
        return;
    }
    if (r.kind == ROUTE_FACILITY && strncmp(r.fac, "cut", 3) == 0) {
        reply_chunked(req, &r, query, 1);
        return;
    }
    if (r.kind == ROUTE_FACILITY && strncmp(r.fac, "eof", 3) == 0) {
        reply_raw(req, &r,
                  "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                  "Connection: close\r\n\r\n");
        return;
    }
    if (r.kind == ROUTE_FACILITY && strncmp(r.fac, "interim", 7) == 0) {
        reply_raw(req, &r,
                  "HTTP/1.1 100 Continue\r\n\r\n"
                  "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
                  "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                  "Content-Length: %zu\r\nConnection: close\r\n\r\n");
        return;
    }
    if (strncmp(r.fac, "fail", 4) == 0) {
        reply_error(req, 500, "Internal Server Error", "internal", "simulated failure");
        return;
    }
    if (strncmp(r.fac, "slow", 4) == 0) {
        long ms = query_long(query, "delay_ms", id_delay_ms(r.fac), DELAY_MAX_MS);
        struct pending *p = calloc(1, sizeof(*p));
        if (p == NULL) {
            reply_error(req, 500, "Internal Server Error", "internal", "out of memory");
            return;
        }
        p->req = req;
        p->route = r;
        p->query = query ? strdup(query) : NULL;
        p->timer = evtimer_new(base, on_delay, p);
        struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
        evtimer_add(p->timer, &tv);
        p->next = pendings;
        if (pendings) pendings->prev = p;
        pendings = p;
        return;
    }
    reply_route(req, &r, path, query);
    if (strncmp(r.fac, "brief", 5) == 0 && ci != NULL) schedule_close(ci, 100, 0);
}

/* Counts connections; returning NULL lets evhttp make its usual bufferevent
 * (over TLS, one that accepts the handshake). */
static struct bufferevent *on_connection(struct event_base *b, void *arg)
{
    stat_connections++;
    if (tls_ctx == NULL) return NULL;
    SSL *ssl = SSL_new(tls_ctx);
    if (ssl == NULL) return NULL;
    return bufferevent_openssl_socket_new(b, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

static SSL_CTX *tls_ctx_new(const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        ERR_print_errors_fp(stderr);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static void on_signal(evutil_socket_t sig, short what, void *arg) { event_base_loopbreak(base); }

static void usage(void)
{
    fprintf(stderr, "usage: upstream_server --port P [--record FILE] [--data DIR]"
                    " [--tls-cert FILE --tls-key FILE]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},    {"record", required_argument, NULL, 'r'},
        {"data", required_argument, NULL, 'd'},    {"tls-cert", required_argument, NULL, 'c'},
        {"tls-key", required_argument, NULL, 'k'}, {NULL, 0, NULL, 0}};
    long port = -1;
    const char *record_path = NULL, *cert = NULL, *key = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "p:r:d:c:k:", opts, NULL)) != -1) {
        switch (c) {
        case 'p': {
            char *end;
            port = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || port < 1 || port > 65535) usage();
            break;
        }
        case 'r': record_path = optarg; break;
        case 'd': data_dir = optarg; break;
        case 'c': cert = optarg; break;
        case 'k': key = optarg; break;
        default: usage();
        }
    }
    if (port < 0 || optind != argc || (cert == NULL) != (key == NULL)) usage();

    signal(SIGPIPE, SIG_IGN);
    if (record_path != NULL) {
        record = fopen(record_path, "a");
        if (record == NULL) {
            fprintf(stderr, "upstream_server: %s: %s\n", record_path, strerror(errno));
            return 1;
        }
    }
    if (cert != NULL && (tls_ctx = tls_ctx_new(cert, key)) == NULL) {
        fprintf(stderr, "upstream_server: cannot load %s and %s\n", cert, key);
        return 1;
    }
    base = event_base_new();
    struct evhttp *http = base ? evhttp_new(base) : NULL;
    if (http == NULL) {
        fprintf(stderr, "upstream_server: cannot create the event loop\n");
        return 1;
    }
    evhttp_set_timeout(http, 60);
    evhttp_set_max_headers_size(http, 64 * 1024);
    evhttp_set_max_body_size(http, 64 * 1024);
    evhttp_set_gencb(http, on_request, NULL);
    evhttp_set_bevcb(http, on_connection, NULL);
    if (evhttp_bind_socket(http, "127.0.0.1", (ev_uint16_t)port) != 0) {
        fprintf(stderr, "upstream_server: cannot listen on 127.0.0.1:%ld\n", port);
        return 1;
    }
    struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, NULL);
    struct event *sigint = evsignal_new(base, SIGINT, on_signal, NULL);
    evsignal_add(sigterm, NULL);
    evsignal_add(sigint, NULL);

    printf("ready\n");
    fflush(stdout);
    event_base_dispatch(base);

    while (pendings != NULL) {
        struct pending *p = pendings;
        pendings = p->next;
        /* a request whose client left is ours; the others die with evhttp */
        if (evhttp_request_get_connection(p->req) == NULL) evhttp_request_free(p->req);
        event_free(p->timer);
        free(p->query);
        free(p);
    }
    evhttp_free(http);
    event_free(sigterm);
    event_free(sigint);
    event_base_free(base);
    if (record != NULL) fclose(record);
    SSL_CTX_free(tls_ctx);
    return 0;
}
