/* Acceptance tests of the HTTP/1.1 front end (SPEC sections 3 and 5) with raw
 * bytes, on both listeners (public and admin) and both transports (plain and
 * TLS): a table of hostile and edge-case requests, each answered once and
 * closed (or just closed), or served; none of the hostile ones may reach the
 * upstream. Then the request-head timeout (slowloris), the per-address
 * connection limit and a client that half-closes after its request. */
#include "itest.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sys/resource.h>

#include "raw.h"

#define HT_READ_MS        1500 /* how long a connection is watched after its request */
#define HT_HEADER_TIMEOUT 2    /* [server] header_timeout_s in the slowloris stack */
#define HT_PER_IP         256  /* [server] max_connections_per_ip, its default */
#define HT_HELD           600  /* idle connections from one address */
#define HT_MAX_ANSWERS    8

/* snprintf for messages: truncating a long answer line is fine here. */
static int ht_fmt(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int ht_fmt(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    return n;
}

/* ---- the stack's data (made by each fixture, read by the forked tests) ---- */

static char ht_acct[64], ht_fac[3][72], ht_slow[72];
static char ht_key[64], ht_secret[64];
static char ht_basic[256]; /* "Authorization: Basic ..." */

static void ht_data(int slow)
{
    itest_account(ht_acct, "HTTP Front End Inc");
    for (int i = 0; i < 3; i++) itest_facility(ht_fac[i], ht_acct, NULL, NULL);
    if (slow) itest_facility(ht_slow, ht_acct, NULL, "slow");
    itest_key(ht_key, ht_secret, ht_acct, "\"rate_per_sec\":10000,\"burst\":10000");
    char plain[160];
    unsigned char b64[256];
    int n = ht_fmt(plain, sizeof(plain), "%s:%s", ht_key, ht_secret);
    EVP_EncodeBlock(b64, (const unsigned char *)plain, n);
    ht_fmt(ht_basic, sizeof(ht_basic), "Authorization: Basic %s", (char *)b64);
}

/* ---- listeners ---- */

struct ht_lsn {
    const char *name; /* for messages: "public/plain" */
    const char *tag;  /* in the case markers: "pp" */
    int inst;         /* lockgate instance */
    int public_;      /* the public API (else the admin API) */
    int tls;
};

/* Instance 0 has the public plain and TLS listeners and a plain admin
 * listener; instance 1 (same Redis and data) a TLS admin listener. */
static const struct ht_lsn ht_lsns[4] = {
    {"public/plain", "pp", 0, 1, 0},
    {"public/tls", "pt", 0, 1, 1},
    {"admin/plain", "ap", 0, 0, 0},
    {"admin/tls", "at", 1, 0, 1},
};

static int ht_port(const struct ht_lsn *l)
{
    const struct itest_lg *lg = &IT->lg[l->inst];
    return l->public_ ? (l->tls ? lg->tls_port : lg->port) : lg->admin_port;
}

static void ht_connect(struct raw_conn *c, const struct ht_lsn *l, const char *src_ip,
                       const char *what)
{
    char err[256];
    int port = ht_port(l);
    ck_assert_msg(port > 0, "%s [%s]: no such listener in this stack", what, l->name);
    if (raw_connect(c, port, l->tls ? IT->cert : NULL, src_ip, err, sizeof(err)) < 0)
        ck_abort_msg("%s [%s]: %s", what, l->name, err);
}

/* ---- the table ---- */

enum {
    HT_ERROR,          /* one JSON error answer with STATUS (or ALT), then closed */
    HT_ERROR_OR_CLOSE, /* that, or closed without a byte */
    HT_SERVED,         /* ANSWERS answers of 200, the connection KEPT open or closed */
};

struct ht_case {
    const char *name;
    /* the request; tokens: {P} a served path holding the case's marker, {S}
     * the same for a smuggled second request, {1} {2} {3} three served
     * paths whose answers differ, {W} a path that takes a body, {A} the
     * credentials header line, {L} the byte count after the head's empty
     * line, {0} a NUL byte, {B} 10000 filler bytes, {H} 300 filler header
     * lines, {Z} 16 KiB of body */
    const char *req;
    int expect;
    int status, alt;
    int answers, keep;
    const char *header; /* HT_SERVED: a header every answer carries, "Name: value" */
    int ordered;        /* HT_SERVED: answers to {1} {2} {3} in that order */
};

/* clang-format off */
#define BAD(n, r)         {n, r, HT_ERROR, 400, 0, 0, 0, NULL, 0}
#define ERR(n, r, s, a)   {n, r, HT_ERROR, s, a, 0, 0, NULL, 0}
#define GARBAGE(n, r)     {n, r, HT_ERROR_OR_CLOSE, 400, 0, 0, 0, NULL, 0}
#define SERVED(n, r, k)   {n, r, HT_SERVED, 200, 0, 1, k, NULL, 0}
#define SERVED_H(n, r, h) {n, r, HT_SERVED, 200, 0, 1, 1, h, 0}
/* clang-format on */

#define RL      "GET {P} HTTP/1.1\r\n"
#define HA      "Host: x\r\n{A}\r\n"
#define SMUG    "GET {S} HTTP/1.1\r\nHost: x\r\n{A}\r\n\r\n"
#define GETV(v) "GET {P} " v "\r\n" HA "\r\n"

static const struct ht_case ht_cases[] = {
    /* Content-Length: differing, repeated, malformed (RFC 9112 6.3) */
    BAD("cl_zero_then_n", RL HA "Content-Length: 0\r\nContent-Length: {L}\r\n\r\n" SMUG),
    BAD("cl_n_then_zero", RL HA "Content-Length: {L}\r\nContent-Length: 0\r\n\r\n" SMUG),
    BAD("cl_list_differing", RL HA "Content-Length: 0, {L}\r\n\r\n" SMUG),
    BAD("cl_equal_twice", RL HA "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello"),
    BAD("cl_negative", RL HA "Content-Length: -1\r\n\r\n"),
    BAD("cl_alpha", RL HA "Content-Length: abc\r\n\r\n"),
    BAD("cl_two_numbers", RL HA "Content-Length: 1 2\r\n\r\n12"),
    BAD("cl_plus_sign", RL HA "Content-Length: +5\r\n\r\nhello"),
    BAD("cl_hex", RL HA "Content-Length: 0x5\r\n\r\nhello"),
    BAD("cl_empty", RL HA "Content-Length:\r\n\r\n"),
    ERR("cl_overflow", RL HA "Content-Length: 18446744073709551617\r\n\r\n", 400, 413),
    /* Transfer-Encoding */
    BAD("cl_with_te",
        RL HA "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" SMUG),
    BAD("te_with_cl",
        RL HA "Transfer-Encoding: chunked\r\nContent-Length: {L}\r\n\r\n0\r\n\r\n" SMUG),
    BAD("te_gzip", RL HA "Transfer-Encoding: gzip\r\n\r\n"),
    BAD("te_chunked_gzip", RL HA "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"),
    BAD("te_identity", RL HA "Transfer-Encoding: identity\r\n\r\n"),
    BAD("te_unknown", RL HA "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"),
    BAD("te_space_colon", RL HA "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n" SMUG),
    BAD("te_folded", RL HA "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" SMUG),
    /* field syntax: whitespace before the colon, names, control bytes, obs-fold */
    BAD("host_space_colon", RL "Host : x\r\n{A}\r\n\r\n"),
    BAD("tab_before_colon", RL HA "X-Note\t: 1\r\n\r\n"),
    BAD("empty_field_name", RL HA ": 1\r\n\r\n"),
    BAD("field_without_colon", RL HA "X-Note 1\r\n\r\n"),
    BAD("space_in_name", RL HA "X Note: 1\r\n\r\n"),
    BAD("ctl_in_name", RL HA "X-No\x01t: 1\r\n\r\n"),
    BAD("del_in_name", RL HA "X-No\x7ft: 1\r\n\r\n"),
    BAD("ctl_in_value", RL HA "X-Note: a\x01z\r\n\r\n"),
    BAD("del_in_value", RL HA "X-Note: a\x7fz\r\n\r\n"),
    BAD("nul_in_value", RL HA "X-Note: a{0}z\r\n\r\n"),
    BAD("bare_cr_in_value", RL HA "X-Note: a\rz\r\n\r\n"),
    BAD("ctl_in_target", "GET {P}\x01 HTTP/1.1\r\n" HA "\r\n"),
    BAD("obs_fold_space", RL HA "X-Note: a\r\n z\r\n\r\n"),
    BAD("obs_fold_tab", RL HA "X-Note: a\r\n\tz\r\n\r\n"),
    BAD("ws_before_first_field", RL " Host: x\r\n{A}\r\n\r\n"),
    /* versions: malformed 400, well-formed but not 1.0/1.1 505 */
    BAD("v_negative", GETV("HTTP/-1.0")),
    BAD("v_two_digit_minor", GETV("HTTP/1.10")),
    BAD("v_trailing_junk", GETV("HTTP/1.1x")),
    BAD("v_no_slash", GETV("HTTP1.1")),
    BAD("v_lowercase", GETV("http/1.1")),
    BAD("v_trailing_space", GETV("HTTP/1.1 ")),
    ERR("v_1_2", GETV("HTTP/1.2"), 505, 0),
    ERR("v_0_9", GETV("HTTP/0.9"), 505, 0),
    ERR("v_2_0", GETV("HTTP/2.0"), 505, 0),
    ERR("v_3_0", GETV("HTTP/3.0"), 505, 0),
    /* Host on HTTP/1.1 */
    BAD("no_host", RL "{A}\r\n\r\n"),
    BAD("two_hosts", RL "Host: x\r\nHost: y\r\n{A}\r\n\r\n"),
    BAD("two_equal_hosts", RL "Host: x\r\nHost: x\r\n{A}\r\n\r\n"),
    /* sizes: the head over [server] max_header_bytes, a body over the limit */
    ERR("head_too_large", RL HA "X-Big: {B}\r\n\r\n", 431, 400),
    ERR("too_many_fields", RL HA "{H}\r\n", 431, 400),
    ERR("body_too_large",
        "POST {W} HTTP/1.1\r\n" HA "Content-Type: application/json\r\n"
        "Content-Length: 2097152\r\n\r\n{Z}",
        413, 0),
    /* RFC 9112 6.1: Transfer-Encoding in HTTP/1.0 is faulty framing */
    BAD("http10_transfer_encoding", "POST {W} HTTP/1.0\r\nConnection: keep-alive\r\n{A}\r\n"
                                    "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" SMUG),
    /* not HTTP at all */
    GARBAGE("tls_client_hello", "\x16\x03\x01{0}\x3f\x01{0}{0}\x3b\x03\x03\x9e\x51\x8c\x07\xd2"
                                "\x44\xa0\x6b\xc3\x18\x77\xe0\x5f\x21\x96\x0d\xb4\x3a\x88\x12"
                                "\x6e\xf9\x05\x2c\x91\x7a\xcd\x40\x13\xe8\x5b\x26{0}{0}\x02\x13"
                                "\x01\x01{0}{0}\x10{0}\x0b{0}\x0c{0}{0}\x09localhost"),
    GARBAGE("binary", "\xde\xad\xbe\xef{0}\x01\x02\xff\xfe\x80\x90\r\n\r\n"),
    /* an HTTP/0.9 request line: 505 is as good an answer as 400 */
    {"no_version", "GET {P}\r\nHost: x\r\n{A}\r\n\r\n", HT_ERROR_OR_CLOSE, 400, 505, 0, 0, NULL, 0},
    GARBAGE("bad_method_byte", "G(T {P} HTTP/1.1\r\n" HA "\r\n"),
    GARBAGE("space_before_method", " GET {P} HTTP/1.1\r\n" HA "\r\n"),
    /* served */
    SERVED("baseline", RL HA "\r\n", 1),
    SERVED("connection_close", RL HA "Connection: close\r\n\r\n", 0),
    SERVED("one_empty_line_first", "\r\n" RL HA "\r\n", 1),
    SERVED("absolute_form", "GET http://x{P} HTTP/1.1\r\n" HA "\r\n", 1),
    SERVED("http10_closes", "GET {P} HTTP/1.0\r\n{A}\r\n\r\n", 0),
    SERVED_H("http10_keep_alive", "GET {P} HTTP/1.0\r\nConnection: keep-alive\r\n{A}\r\n\r\n",
             "Connection: keep-alive"),
    {"pipelined_three",
     "GET {1} HTTP/1.1\r\n" HA "\r\nGET {2} HTTP/1.1\r\n" HA "\r\nGET {3} HTTP/1.1\r\n" HA "\r\n",
     HT_SERVED, 200, 0, 3, 1, NULL, 1},
    SERVED("bare_lf", "GET {P} HTTP/1.1\nHost: x\n{A}\n\n", 1),
    SERVED("empty_value", RL HA "X-Empty:\r\nX-Also-Empty: \r\n\r\n", 1),
};

#define HT_NCASES ((int)(sizeof(ht_cases) / sizeof(ht_cases[0])))

/* The marker of case I on listener L: "case=c07pp" is in every path the
 * case sends (fixed width: no marker is a prefix of another). */
static void ht_marker(int i, const struct ht_lsn *l, char *out, size_t cap)
{
    ht_fmt(out, cap, "case=c%02d%s", i, l->tag);
}

static void ht_addf(struct raw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ht_addf(struct raw_buf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0) raw_buf_add(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void ht_fill(struct raw_buf *b, char ch, size_t n)
{
    char *f = malloc(n);
    memset(f, ch, n);
    raw_buf_add(b, f, n);
    free(f);
}

/* Case I's request for listener L (malloc'd), its length into *LEN. */
static char *ht_expand(int i, const struct ht_lsn *l, size_t *len)
{
    const char *t = ht_cases[i].req;
    char mark[32];
    ht_marker(i, l, mark, sizeof(mark));
    struct raw_buf b = {0};
    raw_buf_add(&b, "", 0);
    size_t lpos = (size_t)-1;
    for (const char *p = t; *p != '\0'; p++) {
        if (p[0] != '{' || p[1] == '\0' || p[2] != '}') {
            raw_buf_add(&b, p, 1);
            continue;
        }
        char tok = p[1];
        p += 2;
        switch (tok) {
        case 'P':
            if (l->public_)
                ht_addf(&b, "/v1/facilities/%s/units?%s", ht_fac[0], mark);
            else
                ht_addf(&b, "/healthz?%s", mark);
            break;
        case 'S':
            if (l->public_)
                ht_addf(&b, "/v1/facilities/%s/units?%s-smuggled", ht_fac[0], mark);
            else
                ht_addf(&b, "/healthz?%s-smuggled", mark);
            break;
        case '1':
        case '2':
        case '3': {
            int k = tok - '1';
            static const char *const admin[3] = {"/healthz", "/readyz", "/metrics"};
            if (l->public_)
                ht_addf(&b, "/v1/facilities/%s/units?%s-%d", ht_fac[k], mark, k + 1);
            else
                ht_addf(&b, "%s?%s-%d", admin[k], mark, k + 1);
            break;
        }
        case 'W':
            if (l->public_)
                ht_addf(&b, "/v1/facilities/%s/units?%s", ht_fac[0], mark);
            else
                ht_addf(&b, "/admin/v1/accounts?%s", mark);
            break;
        case 'A':
            if (l->public_)
                ht_addf(&b, "%s", ht_basic);
            else
                ht_addf(&b, "Authorization: Bearer %s", IT->token);
            break;
        case 'L': lpos = b.len; break;
        case '0': raw_buf_add(&b, "\0", 1); break;
        case 'B': ht_fill(&b, 'a', 10000); break;
        case 'H':
            for (int k = 0; k < 300; k++)
                ht_addf(&b, "X-Filler-%03d: abcdefghijklmnopqrstuvwx\r\n", k);
            break;
        case 'Z': ht_fill(&b, 'z', 16384); break;
        default: raw_buf_add(&b, p - 2, 3); break;
        }
    }
    if (lpos != (size_t)-1) {
        /* the body is what follows the head's empty line */
        const char *e = memmem(b.data, b.len, "\r\n\r\n", 4);
        size_t start = e ? (size_t)(e - b.data) + 4 : b.len;
        char num[24];
        int n = ht_fmt(num, sizeof(num), "%zu", b.len - start);
        struct raw_buf o = {0};
        raw_buf_add(&o, b.data, lpos);
        raw_buf_add(&o, num, (size_t)n);
        raw_buf_add(&o, b.data + lpos, b.len - lpos);
        raw_buf_free(&b);
        b = o;
    }
    *len = b.len;
    return b.data;
}

/* One connection of the table: what came back and how it ended. */
struct ht_run {
    struct raw_conn c;
    struct raw_buf got;
    int state;      /* RAW_OPEN, RAW_EOF, RAW_RESET */
    int64_t sent;   /* when the request was written */
    int64_t ended;  /* when the server closed */
    size_t written; /* of the request's LEN bytes, before the server closed */
    size_t len;
};

/* Failures of one test, each a line naming the case, listener and transport. */
struct ht_fails {
    int n;
    char text[24000];
};

static void ht_fail(struct ht_fails *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ht_fail(struct ht_fails *f, const char *fmt, ...)
{
    char line[1600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    size_t used = strlen(f->text);
    if (used + strlen(line) + 2 < sizeof(f->text)) {
        ht_fmt(f->text + used, sizeof(f->text) - used, "%s\n", line);
    } else { /* what does not fit in the test's message goes to stderr */
        fprintf(stderr, "%s\n", line);
        if (used + 32 < sizeof(f->text) && !strstr(f->text, "(more on stderr)\n"))
            ht_fmt(f->text + used, sizeof(f->text) - used, "(more on stderr)\n");
    }
    f->n++;
}

/* "2 answers ('HTTP/1.1 200 OK', 'HTTP/1.1 400 Bad Request'), closed after 3 ms" */
static void ht_describe(const struct ht_run *r, const struct raw_answer *a, int n, char *out,
                        size_t cap)
{
    size_t o = 0;
    if (n == 0) { /* raw_parse counts any byte as the start of an answer */
        o += (size_t)ht_fmt(out + o, cap - o, "no answer");
    } else {
        o += (size_t)ht_fmt(out + o, cap - o, "%d answer%s (", n, n == 1 ? "" : "s");
        for (int i = 0; i < n && i < 3 && o < cap; i++)
            o += (size_t)ht_fmt(out + o, cap - o, "%s'%s'%s", i ? ", " : "", a[i].first,
                                a[i].complete ? "" : " incomplete");
        if (o < cap) o += (size_t)ht_fmt(out + o, cap - o, "%s)", n > 3 ? ", ..." : "");
    }
    if (o < cap && r->written < r->len)
        o += (size_t)ht_fmt(out + o, cap - o, ", %zu of the request's %zu bytes taken", r->written,
                            r->len);
    if (o >= cap) return;
    if (r->state == RAW_EOF)
        ht_fmt(out + o, cap - o, ", closed after %lld ms", (long long)(r->ended - r->sent));
    else if (r->state == RAW_RESET)
        ht_fmt(out + o, cap - o, ", reset after %lld ms", (long long)(r->ended - r->sent));
    else
        ht_fmt(out + o, cap - o, ", connection left open for %d ms", HT_READ_MS);
}

/* The problems found with one case, "; "-separated. */
struct ht_why {
    char text[700];
};

static void ht_why_add(struct ht_why *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void ht_why_add(struct ht_why *w, const char *fmt, ...)
{
    size_t used = strlen(w->text);
    if (used + 4 >= sizeof(w->text)) return;
    if (used > 0) {
        memcpy(w->text + used, "; ", 3);
        used += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->text + used, sizeof(w->text) - used, fmt, ap);
    va_end(ap);
}

/* What every answer of listener L carries: our status line (the client's
 * version never echoed), nosniff, and no-store on the public API. */
static void ht_common(const struct raw_answer *a, const struct ht_lsn *l, struct ht_why *w)
{
    if (strncmp(a->first, "HTTP/1.1 ", 9) != 0)
        ht_why_add(w, "status line does not start with 'HTTP/1.1 '");
    char *v = raw_header(a, "X-Content-Type-Options");
    if (v == NULL || strcasecmp(v, "nosniff") != 0)
        ht_why_add(w, "X-Content-Type-Options %s", v ? v : "missing");
    free(v);
    if (l->public_) {
        v = raw_header(a, "Cache-Control");
        if (v == NULL || strstr(v, "no-store") == NULL)
            ht_why_add(w, "Cache-Control %s", v ? v : "missing");
        free(v);
    }
}

/* A JSON error answer: {"error":{"code","message","request_id"}} matching
 * X-Request-Id (and code bad_request for a 400). */
static void ht_json_error(const struct raw_answer *a, struct ht_why *w)
{
    json_t *doc = json_loadb(a->body, a->body_len, 0, NULL);
    json_t *e = json_object_get(doc, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    const char *rid = json_string_value(json_object_get(e, "request_id"));
    char esc[160];
    char *hrid = raw_header(a, "X-Request-Id");
    if (doc == NULL)
        ht_why_add(w, "body is not JSON: '%s'", raw_escape(a->body, a->body_len, esc, 60));
    else if (code == NULL || msg == NULL || rid == NULL || code[0] == '\0' || rid[0] == '\0')
        ht_why_add(w, "body is not {\"error\":{code,message,request_id}}: '%s'",
                   raw_escape(a->body, a->body_len, esc, 60));
    else if (a->status == 400 && strcmp(code, "bad_request") != 0)
        ht_why_add(w, "code %s, expected bad_request", code);
    if (hrid == NULL)
        ht_why_add(w, "no X-Request-Id");
    else if (rid != NULL && strcmp(hrid, rid) != 0)
        ht_why_add(w, "X-Request-Id %s but request_id %s in the body", hrid, rid);
    free(hrid);
    json_decref(doc);
}

/* What the answers to {1} {2} {3} on listener L contain, in order. */
static void ht_ordered_want(const struct ht_lsn *l, int k, char *out, size_t cap)
{
    static const char *const admin[3] = {"\"ok\"", "\"redis\"", "lockgate_"};
    if (l->public_)
        ht_fmt(out, cap, "%s", ht_fac[k]);
    else
        ht_fmt(out, cap, "%s", admin[k]);
}

/* Judges case I on listener L; a failure line into F. */
static void ht_judge(int i, const struct ht_lsn *l, const struct ht_run *r, struct ht_fails *f)
{
    const struct ht_case *c = &ht_cases[i];
    struct raw_answer a[HT_MAX_ANSWERS];
    int n = raw_parse(r->got.data ? r->got.data : "", r->got.len, r->state != RAW_OPEN, a,
                      HT_MAX_ANSWERS);
    char got[600], want[160];
    struct ht_why w = {""};
    ht_describe(r, a, n, got, sizeof(got));
    /* a reset after the whole answer still ends the connection as asked */
    bool closed = r->state == RAW_EOF || (r->state == RAW_RESET && n == 1 && a[0].complete);

    if (c->expect == HT_SERVED) {
        ht_fmt(want, sizeof(want), "%d answer%s of 200, then the connection %s", c->answers,
               c->answers == 1 ? "" : "s", c->keep ? "kept open" : "closed");
        if (n != c->answers) ht_why_add(&w, "%d answers", n);
        /* the first answer that is wrong, and what is wrong with it */
        for (int k = 0; k < n && w.text[0] == '\0'; k++) {
            struct ht_why aw = {""};
            if (!a[k].complete) ht_why_add(&aw, "incomplete");
            if (a[k].status != 200) ht_why_add(&aw, "status %d", a[k].status);
            ht_common(&a[k], l, &aw);
            if (c->header != NULL) {
                const char *colon = strchr(c->header, ':');
                char name[64];
                ht_fmt(name, sizeof(name), "%.*s", (int)(colon - c->header), c->header);
                char *v = raw_header(&a[k], name);
                if (v == NULL || strcasecmp(v, colon + 2) != 0)
                    ht_why_add(&aw, "%s %s, expected %s", name, v ? v : "missing", colon + 2);
                free(v);
            }
            if (c->ordered && a[k].status == 200) {
                char o[96];
                ht_ordered_want(l, k, o, sizeof(o));
                if (strstr(a[k].body, o) == NULL)
                    ht_why_add(&aw, "not the answer to request %d (no '%s' in it): out of order",
                               k + 1, o);
            }
            if (aw.text[0] != '\0')
                ht_why_add(&w, "answer %d '%s': %s", k + 1, a[k].first, aw.text);
        }
        if (c->keep && r->state != RAW_OPEN) ht_why_add(&w, "the connection was not kept open");
        if (!c->keep && !closed) ht_why_add(&w, "the connection was not closed");
    } else {
        if (c->alt)
            ht_fmt(want, sizeof(want), "one JSON %d or %d answer, then close", c->status, c->alt);
        else
            ht_fmt(want, sizeof(want), "one JSON %d answer, then close", c->status);
        if (c->expect == HT_ERROR_OR_CLOSE) {
            ht_fmt(want + strlen(want), sizeof(want) - strlen(want), "; or just a close");
            if (r->got.len == 0 && r->state != RAW_OPEN) goto done; /* closed without a word */
        }
        if (n == 0 && r->state == RAW_RESET)
            ht_why_add(&w, "reset before any answer");
        else if (n != 1)
            ht_why_add(&w, "%d answers", n);
        if (n >= 1) {
            if (!a[0].complete) ht_why_add(&w, "the answer is incomplete");
            if (a[0].status != c->status && (c->alt == 0 || a[0].status != c->alt))
                ht_why_add(&w, "status %d", a[0].status);
            ht_common(&a[0], l, &w);
            if (a[0].status >= 400) ht_json_error(&a[0], &w);
        }
        if (!closed) ht_why_add(&w, "the connection was not closed");
    }
done:
    if (w.text[0] != '\0')
        ht_fail(f, "case %s [%s]: expected %s; got %s: %s", c->name, l->name, want, got, w.text);
    raw_answers_free(a, n);
}

/* Every case of the table on listener L, all connections at once: each gets
 * its request, then all are watched for HT_READ_MS (a smuggled second answer
 * has that long to show). */
static void ht_table(const struct ht_lsn *l)
{
    struct ht_run *runs = calloc(HT_NCASES, sizeof(*runs));
    for (int i = 0; i < HT_NCASES; i++) {
        struct ht_run *r = &runs[i];
        char what[96];
        ht_fmt(what, sizeof(what), "case %s", ht_cases[i].name);
        ht_connect(&r->c, l, NULL, what);
        char *req = ht_expand(i, l, &r->len);
        r->written = raw_send(&r->c, req, r->len);
        r->sent = itest_mono_ms();
        free(req);
    }
    int64_t end = itest_mono_ms() + HT_READ_MS;
    struct pollfd *pfd = calloc(HT_NCASES, sizeof(*pfd));
    int *idx = calloc(HT_NCASES, sizeof(*idx));
    for (;;) {
        int np = 0, pending = 0;
        for (int i = 0; i < HT_NCASES; i++) {
            struct ht_run *r = &runs[i];
            if (r->state != RAW_OPEN) continue;
            if (r->c.ssl != NULL && SSL_pending(r->c.ssl) > 0) pending = 1;
            pfd[np] = (struct pollfd){.fd = r->c.fd, .events = POLLIN};
            idx[np++] = i;
        }
        int64_t left = end - itest_mono_ms();
        if (np == 0 || left <= 0) break;
        poll(pfd, (nfds_t)np, pending ? 0 : (left > 50 ? 50 : (int)left));
        for (int k = 0; k < np; k++) {
            struct ht_run *r = &runs[idx[k]];
            int ready = pfd[k].revents != 0 || (r->c.ssl != NULL && SSL_pending(r->c.ssl) > 0);
            if (!ready) continue;
            r->state = raw_read(&r->c, &r->got);
            if (r->state != RAW_OPEN) r->ended = itest_mono_ms();
        }
    }
    struct ht_fails f = {0};
    for (int i = 0; i < HT_NCASES; i++) {
        ht_judge(i, l, &runs[i], &f);
        raw_close(&runs[i].c);
        raw_buf_free(&runs[i].got);
    }
    free(pfd);
    free(idx);
    free(runs);
    ck_assert_msg(f.n == 0, "%d of %d cases failed on %s:\n%s", f.n, HT_NCASES, l->name, f.text);
}

START_TEST(test_table_public_plain) { ht_table(&ht_lsns[0]); }
END_TEST

START_TEST(test_table_public_tls) { ht_table(&ht_lsns[1]); }
END_TEST

START_TEST(test_table_admin_plain) { ht_table(&ht_lsns[2]); }
END_TEST

START_TEST(test_table_admin_tls) { ht_table(&ht_lsns[3]); }
END_TEST

/* After the table: no hostile case reached the upstream, on any listener,
 * and every served public case did (else the markers prove nothing). */
START_TEST(test_table_upstream_untouched)
{
    char *rec = itest_file_read(IT->upstream_record);
    struct ht_fails f = {0};
    for (int li = 0; li < 4; li++) {
        const struct ht_lsn *l = &ht_lsns[li];
        for (int i = 0; i < HT_NCASES; i++) {
            char mark[32];
            ht_marker(i, l, mark, sizeof(mark));
            const char *hit = strstr(rec, mark);
            /* the request itself, and apart from it its smuggled second one
             * (whatever follows the marker: control bytes are recorded as spaces) */
            int seen[2] = {0, 0};
            for (const char *h = hit; h != NULL && ht_cases[i].expect != HT_SERVED;
                 h = strstr(h + 1, mark)) {
                int smuggled = strncmp(h + strlen(mark), "-smuggled", 9) == 0;
                if (seen[smuggled]++) continue;
                const char *bol = h;
                while (bol > rec && bol[-1] != '\n') bol--;
                const char *eol = strchr(h, '\n');
                int w = eol ? (int)(eol - bol) : (int)strlen(bol);
                ht_fail(&f, "case %s [%s]: %s reached the upstream: %.*s", ht_cases[i].name,
                        l->name, smuggled ? "the smuggled request" : "the request",
                        w > 120 ? 120 : w, bol);
            }
            if (ht_cases[i].expect == HT_SERVED && l->public_ && hit == NULL)
                ht_fail(&f, "served case %s [%s] never reached the upstream (%s)", ht_cases[i].name,
                        l->name, mark);
        }
    }
    free(rec);
    ck_assert_msg(f.n == 0, "%d problems in what the upstream received:\n%s", f.n, f.text);
}
END_TEST

static int ht_case_index(const char *name)
{
    for (int i = 0; i < HT_NCASES; i++)
        if (strcmp(ht_cases[i].name, name) == 0) return i;
    ck_abort_msg("no case %s", name);
    return -1;
}

/* lockgate_requests_total{status="400"} of instance 0 (0 when absent). */
static long ht_metric_400(void)
{
    char url[128];
    ht_fmt(url, sizeof(url), "%s/metrics", IT->lg[0].admin_url);
    struct itest_resp r;
    itest_http("GET", url, NULL, NULL, 0, NULL, &r);
    ck_assert_msg(r.status == 200, "GET /metrics: %ld (%s)", r.status, r.error);
    const char *name = "lockgate_requests_total{status=\"400\"} ";
    const char *p = strstr(r.body, name);
    long v = p ? atol(p + strlen(name)) : 0;
    itest_resp_free(&r);
    return v;
}

/* Protocol errors on the public listeners count with the other public
 * answers, under their status. */
START_TEST(test_protocol_errors_counted)
{
    static const struct {
        const char *name;
        int lsn;
    } sent[] = {{"two_hosts", 0}, {"obs_fold_space", 1}, {"cl_zero_then_n", 0}};
    long before = ht_metric_400();
    char got[3][160];
    for (int k = 0; k < 3; k++) {
        int i = ht_case_index(sent[k].name);
        const struct ht_lsn *l = &ht_lsns[sent[k].lsn];
        struct raw_conn c;
        ht_connect(&c, l, NULL, sent[k].name);
        size_t len;
        char *req = ht_expand(i, l, &len);
        raw_send(&c, req, len);
        free(req);
        struct raw_buf b = {0};
        int st = raw_read_for(&c, &b, HT_READ_MS, 0);
        raw_close(&c);
        struct raw_answer a[HT_MAX_ANSWERS];
        int n = raw_parse(b.data ? b.data : "", b.len, st != RAW_OPEN, a, HT_MAX_ANSWERS);
        ht_fmt(got[k], sizeof(got[k]), "%s [%s]: %s", sent[k].name, l->name,
               n > 0 ? a[0].first : "no answer");
        raw_answers_free(a, n);
        raw_buf_free(&b);
    }
    long after = ht_metric_400();
    ck_assert_msg(after - before >= 3,
                  "lockgate_requests_total{status=\"400\"} went from %ld to %ld after 3 hostile "
                  "public requests (%s; %s; %s)",
                  before, after, got[0], got[1], got[2]);
}
END_TEST

/* ---- slowloris ---- */

/* A head trickled one byte a second on listener L is cut off by the server
 * within header_timeout_s + 1.5 s of its first byte. */
static void ht_slowloris(const struct ht_lsn *l, struct ht_fails *f)
{
    struct raw_conn c;
    ht_connect(&c, l, NULL, "slowloris");
    char head[512];
    ht_fmt(head, sizeof(head), "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\nX-Slow: %s\r\n\r\n",
           l->public_ ? "/v1/facilities" : "/healthz", l->public_ ? ht_basic : "X-Idle: 1",
           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    const int bound_ms = HT_HEADER_TIMEOUT * 1000 + 1500;
    struct raw_buf b = {0};
    int64_t t0 = itest_mono_ms(), end = t0 + bound_ms;
    int st = RAW_OPEN;
    size_t sent = 0;
    /* one byte a second, watching for the close in between, up to the bound */
    while (st == RAW_OPEN && itest_mono_ms() <= end && sent < strlen(head)) {
        if (raw_send(&c, head + sent, 1) == 1) sent++;
        int64_t next = t0 + (int64_t)sent * 1000;
        if (next > end + 1) next = end + 1;
        int wait = (int)(next - itest_mono_ms());
        st = raw_read_for(&c, &b, wait > 0 ? wait : 0, 0);
    }
    int64_t took = itest_mono_ms() - t0;
    struct raw_answer a[HT_MAX_ANSWERS];
    int n = raw_parse(b.data ? b.data : "", b.len, st != RAW_OPEN, a, HT_MAX_ANSWERS);
    if (st == RAW_OPEN && sent >= strlen(head))
        ht_fail(f, "slowloris [%s]: the whole head (%zu bytes) went through", l->name, sent);
    else if (st == RAW_OPEN || took > bound_ms)
        ht_fail(f,
                "slowloris [%s]: %s after %lld ms and %zu bytes one a second "
                "(header_timeout_s = %d, bound %d ms)%s%s",
                l->name, st == RAW_OPEN ? "still open" : "closed only", (long long)took, sent,
                HT_HEADER_TIMEOUT, bound_ms, n ? "; answer: " : "", n ? a[0].first : "");
    raw_answers_free(a, n);
    raw_buf_free(&b);
    raw_close(&c);
}

START_TEST(test_slowloris)
{
    struct ht_fails f = {0};
    ht_slowloris(&ht_lsns[0], &f);
    ht_slowloris(&ht_lsns[1], &f);
    ht_slowloris(&ht_lsns[2], &f);
    /* and the server still serves */
    char url[256];
    ht_fmt(url, sizeof(url), "%s/v1/facilities", IT->lg[0].url);
    const char *h[] = {ht_basic, NULL};
    struct itest_resp r;
    itest_http("GET", url, h, NULL, 0, NULL, &r);
    if (r.status != 200) ht_fail(&f, "GET /v1/facilities afterwards: %ld (%s)", r.status, r.error);
    itest_resp_free(&r);
    ck_assert_msg(f.n == 0, "%s", f.text);
}
END_TEST

/* ---- connections per client address ---- */

START_TEST(test_connections_per_ip)
{
    static struct raw_conn held[HT_HELD];
    int port = IT->lg[0].port;
    int refused = 0;
    char err[256] = "";
    for (int i = 0; i < HT_HELD; i++) {
        if (raw_connect(&held[i], port, NULL, "127.0.0.2", err, sizeof(err)) < 0) refused++;
    }
    /* those past the limit are closed at once: give the server a moment to
     * get through the accepts, then count */
    int open_ = 0;
    int64_t end = itest_mono_ms() + 2000;
    struct raw_buf scratch = {0};
    for (;;) {
        open_ = 0;
        for (int i = 0; i < HT_HELD; i++) {
            if (held[i].fd < 0) continue;
            if (raw_read(&held[i], &scratch) != RAW_OPEN)
                raw_close(&held[i]);
            else
                open_++;
        }
        if (open_ <= HT_PER_IP || itest_mono_ms() > end) break;
        itest_sleep_ms(50);
    }
    raw_buf_free(&scratch);
    /* while they are held, another address is served at once */
    char url[256];
    ht_fmt(url, sizeof(url), "%s/v1/facilities", IT->lg[0].url);
    const char *h[] = {ht_basic, NULL};
    struct itest_resp r;
    int64_t t0 = itest_mono_ms();
    itest_http("GET", url, h, NULL, 0, NULL, &r);
    int64_t took = itest_mono_ms() - t0;
    long status = r.status;
    char cerr[CURL_ERROR_SIZE];
    ht_fmt(cerr, sizeof(cerr), "%s", r.error);
    itest_resp_free(&r);
    ck_assert_msg(open_ <= HT_PER_IP,
                  "%d of %d idle connections from 127.0.0.2 still open after 2 s "
                  "(max_connections_per_ip = %d; %d connects refused)",
                  open_, HT_HELD, HT_PER_IP, refused);
    ck_assert_msg(open_ == HT_PER_IP,
                  "only %d of %d idle connections from 127.0.0.2 kept, expected the first %d "
                  "(%d connects refused%s%s)",
                  open_, HT_HELD, HT_PER_IP, refused, err[0] ? ": " : "", err);
    ck_assert_msg(status == 200 && took <= 1000,
                  "GET /v1/facilities from 127.0.0.1 while 127.0.0.2 holds %d connections: %ld "
                  "(%s) after %lld ms",
                  open_, status, cerr, (long long)took);
    for (int i = 0; i < HT_HELD; i++)
        if (held[i].fd >= 0) raw_close(&held[i]);
}
END_TEST

/* [server] max_connections: past it a new connection is closed at once,
 * whatever its address; once some close, new ones are taken again. */
START_TEST(test_connections_per_instance)
{
    enum { CAP = 20, HELD = 40 };
    struct itest_opts o = IT->lg[0].opts;
    o.extra = "[server]\nmax_connections = 20\n";
    int inst = itest_lg_start(&o);
    static struct raw_conn held[HELD];
    char err[256] = "", src[32];
    for (int i = 0; i < HELD; i++) {
        ht_fmt(src, sizeof(src), "127.0.0.%d", 10 + i % 4); /* 10 from each of 4 addresses */
        if (raw_connect(&held[i], IT->lg[inst].port, NULL, src, err, sizeof(err)) < 0)
            held[i].fd = -1;
    }
    int open_ = 0;
    int64_t end = itest_mono_ms() + 2000;
    struct raw_buf scratch = {0};
    for (;;) {
        open_ = 0;
        for (int i = 0; i < HELD; i++) {
            if (held[i].fd < 0) continue;
            if (raw_read(&held[i], &scratch) != RAW_OPEN)
                raw_close(&held[i]);
            else
                open_++;
        }
        if (open_ <= CAP || itest_mono_ms() > end) break;
        itest_sleep_ms(50);
    }
    raw_buf_free(&scratch);
    ck_assert_msg(open_ == CAP, "%d of %d connections kept open, max_connections = %d", open_,
                  HELD, CAP);
    for (int i = 0; i < HELD; i++)
        if (held[i].fd >= 0) raw_close(&held[i]);
    /* the slots come back with their connections */
    char url[256];
    ht_fmt(url, sizeof(url), "%s/v1/facilities", IT->lg[inst].url);
    const char *h[] = {ht_basic, NULL};
    long status = 0;
    end = itest_mono_ms() + IT->timeout_ms;
    while (status != 200 && itest_mono_ms() < end) {
        struct itest_resp r;
        itest_http("GET", url, h, NULL, 0, NULL, &r);
        status = r.status;
        itest_resp_free(&r);
        if (status != 200) itest_sleep_ms(50);
    }
    ck_assert_msg(status == 200, "after the held connections closed: %ld", status);
    itest_lg_stop(inst);
}
END_TEST

/* ---- half-close ---- */

static void ht_expected_code(const char *fac, const char *unit, char code[5])
{
    char in[160];
    unsigned char d[SHA256_DIGEST_LENGTH];
    int n = ht_fmt(in, sizeof(in), "%s/%s", fac, unit);
    SHA256((const unsigned char *)in, (size_t)n, d);
    unsigned long v = ((unsigned long)d[0] << 24) | ((unsigned long)d[1] << 16) |
                      ((unsigned long)d[2] << 8) | d[3];
    ht_fmt(code, 5, "%04lu", v % 10000);
}

/* Like `nc -N`: the request, then shutdown(SHUT_WR) while the upstream
 * (a slow facility: 3 s) still works on it. The answer still comes and the
 * read is audited as served. */
/* A slow unlock-code read (and, when PIPELINED, a second request behind
 * it), then the client shuts its sending side: over TLS with a bare FIN, no
 * close_notify, as a client that is done sending does. */
static void ht_half_close(const struct ht_lsn *l, int pipelined)
{
    char rid[64], req[2048];
    ht_fmt(rid, sizeof(rid), "half-close-%d-%s-%d", (int)getpid(), l->tag, pipelined);
    int len = ht_fmt(req, sizeof(req),
                     "GET /v1/facilities/%s/units/U001/unlock-code HTTP/1.1\r\nHost: x\r\n%s\r\n"
                     "X-Request-Id: %s\r\n\r\n%s%s%s",
                     ht_slow, ht_basic, rid,
                     pipelined ? "GET /v1/facilities HTTP/1.1\r\nHost: x\r\n" : "",
                     pipelined ? ht_basic : "", pipelined ? "\r\n\r\n" : "");
    struct raw_conn c;
    ht_connect(&c, l, NULL, "half-close");
    raw_send(&c, req, (size_t)len);
    shutdown(c.fd, SHUT_WR);
    struct raw_buf b = {0};
    int st = raw_read_for(&c, &b, 3000 + IT->timeout_ms, pipelined ? 2 : 1);
    raw_close(&c);
    struct raw_answer a[HT_MAX_ANSWERS];
    int n = raw_parse(b.data ? b.data : "", b.len, st != RAW_OPEN, a, HT_MAX_ANSWERS);
    ck_assert_msg(n >= 1 + pipelined && a[pipelined].complete,
                  "%s: half-closed client got %d of %d answers (%d bytes, connection %s)",
                  l->name, n, 1 + pipelined, (int)b.len,
                  st == RAW_EOF     ? "closed"
                  : st == RAW_RESET ? "reset"
                                    : "still open");
    ck_assert_msg(a[0].status == 200, "%s: half-closed client got '%s': %s", l->name, a[0].first,
                  a[0].body);
    if (pipelined)
        ck_assert_msg(a[1].status == 200, "%s: the request behind it got '%s'", l->name,
                      a[1].first);
    json_t *doc = json_loadb(a[0].body, a[0].body_len, 0, NULL);
    char want[5];
    ht_expected_code(ht_slow, "U001", want);
    ck_assert_msg(strcmp(itest_json_str(doc, "unlock_code"), want) == 0,
                  "half-closed client: unlock_code '%s', expected %s",
                  itest_json_str(doc, "unlock_code"), want);
    json_decref(doc);
    raw_answers_free(a, n);
    raw_buf_free(&b);

    /* the audit entry is written without waiting on it: poll */
    char path[256], outcome[64] = "";
    ht_fmt(path, sizeof(path), "/admin/v1/audit?key=%s&limit=100", ht_key);
    int64_t end = itest_mono_ms() + IT->timeout_ms;
    while (outcome[0] == '\0' && itest_mono_ms() < end) {
        long s;
        json_t *j = itest_admin("GET", path, NULL, &s);
        size_t i;
        json_t *e;
        json_array_foreach (json_object_get(j, "entries"), i, e)
            if (strcmp(itest_json_str(e, "request_id"), rid) == 0)
                ht_fmt(outcome, sizeof(outcome), "%s", itest_json_str(e, "outcome"));
        json_decref(j);
        if (outcome[0] == '\0') itest_sleep_ms(20);
    }
    ck_assert_msg(strcmp(outcome, "served") == 0,
                  "audit entry of %s: outcome '%s', expected served", rid,
                  outcome[0] ? outcome : "(no entry)");
}

START_TEST(test_half_close) { ht_half_close(&ht_lsns[0], 0); }
END_TEST

START_TEST(test_half_close_tls) { ht_half_close(&ht_lsns[1], 0); }
END_TEST

START_TEST(test_half_close_pipelined) { ht_half_close(&ht_lsns[0], 1); }
END_TEST

/* The public API takes no bodies: a request that declares one is answered
 * at its head, without waiting for the body, and its connection closed. */
START_TEST(test_public_body_not_read)
{
    const char *methods[] = {"POST", "GET"};
    for (int i = 0; i < 2; i++) {
        char req[1024];
        int len = ht_fmt(req, sizeof(req),
                         "%s /v1/facilities HTTP/1.1\r\nHost: x\r\n%s\r\n"
                         "Content-Length: 60000\r\n\r\n",
                         methods[i], ht_basic);
        struct raw_conn c;
        ht_connect(&c, &ht_lsns[0], NULL, "body-not-read");
        raw_send(&c, req, (size_t)len);
        struct raw_buf b = {0};
        int st = raw_read_for(&c, &b, 1000, 1);
        raw_close(&c);
        struct raw_answer a[HT_MAX_ANSWERS];
        int n = raw_parse(b.data ? b.data : "", b.len, st != RAW_OPEN, a, HT_MAX_ANSWERS);
        int want = i == 0 ? 405 : 200;
        ck_assert_msg(n == 1 && a[0].complete && a[0].status == want,
                      "%s with an unsent body: %d answers in 1 s ('%s'), expected %d", methods[i], n,
                      n ? a[0].first : "", want);
        raw_answers_free(a, n);
        raw_buf_free(&b);
    }
}
END_TEST

/* ---- fixtures ---- */

/* ---- the TLS policy of both listeners (SPEC section 5, DESIGN section 3) ---- */

/* Connects to PORT with a client context limited as the arguments say; 1
 * when the handshake succeeded (*SSL_OUT then holds the connection), 0 if
 * not. SESSION (may be NULL) is offered for resumption. */
static int ht_tls_try(int port, int max_version, const char *ciphers, const char *alpn,
                      SSL_SESSION *session, SSL **ssl_out, int *fd_out)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    ck_assert_ptr_nonnull(ctx);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    ck_assert_int_eq(SSL_CTX_load_verify_locations(ctx, IT->cert, NULL), 1);
    SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
    SSL_CTX_set_security_level(ctx, 0); /* let the client offer what the server must refuse */
    if (max_version) SSL_CTX_set_max_proto_version(ctx, max_version);
    if (ciphers) ck_assert_int_eq(SSL_CTX_set_cipher_list(ctx, ciphers), 1);
    if (alpn) SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)alpn, (unsigned)strlen(alpn));
    struct raw_conn c;
    char err[256];
    ck_assert_int_eq(raw_connect(&c, port, NULL, NULL, err, sizeof(err)), 0);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, c.fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    if (session) SSL_set_session(ssl, session);
    int ok = SSL_connect(ssl) == 1;
    ERR_clear_error();
    SSL_CTX_free(ctx); /* the SSL keeps its own reference */
    if (ok && ssl_out != NULL) {
        *ssl_out = ssl;
        *fd_out = c.fd;
        return 1;
    }
    SSL_free(ssl);
    close(c.fd);
    return ok;
}

/* One request with Connection: close, read to the end, a clean close. */
static void ht_tls_request(SSL *ssl, int fd)
{
    const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    ck_assert_int_eq(SSL_write(ssl, req, (int)sizeof(req) - 1), (int)sizeof(req) - 1);
    char buf[4096];
    while (SSL_read(ssl, buf, sizeof(buf)) > 0) {}
    ERR_clear_error();
    SSL_shutdown(ssl);
    close(fd);
}

START_TEST(test_tls_policy)
{
    const int ports[2] = {IT->lg[0].tls_port, IT->lg[1].admin_port};
    for (int i = 0; i < 2; i++) {
        int port = ports[i];
        const char *where = i == 0 ? "public" : "admin";
        ck_assert_msg(!ht_tls_try(port, TLS1_1_VERSION, NULL, NULL, NULL, NULL, NULL),
                      "%s: TLS 1.1 was accepted", where);
        ck_assert_msg(!ht_tls_try(port, TLS1_2_VERSION,
                                  "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:"
                                  "ECDHE-RSA-AES128-SHA:AES128-SHA:AES256-SHA256",
                                  NULL, NULL, NULL, NULL),
                      "%s: a CBC suite was accepted", where);
        ck_assert_msg(!ht_tls_try(port, 0, NULL, "\x02h2", NULL, NULL, NULL),
                      "%s: a client offering only h2 was accepted", where);
        /* TLS 1.3 by default, ALPN http/1.1 */
        SSL *ssl;
        int fd;
        ck_assert_msg(ht_tls_try(port, 0, NULL, "\x02h2\x08http/1.1", NULL, &ssl, &fd),
                      "%s: the default handshake failed", where);
        const unsigned char *proto;
        unsigned plen;
        SSL_get0_alpn_selected(ssl, &proto, &plen);
        ck_assert_msg(plen == 8 && memcmp(proto, "http/1.1", 8) == 0, "%s: ALPN %.*s", where,
                      (int)plen, proto);
        ck_assert_int_eq(SSL_version(ssl), TLS1_3_VERSION);
        ht_tls_request(ssl, fd);
        SSL_free(ssl);
        /* a TLS 1.2 session is resumed on the next connection, also after a
         * client that only shook hands and closed (no close_notify) */
        ck_assert(ht_tls_try(port, TLS1_2_VERSION, NULL, NULL, NULL, &ssl, &fd));
        SSL_SESSION *sess = SSL_get1_session(ssl);
        SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN); /* keeps it resumable here; nothing is sent */
        SSL_free(ssl);
        close(fd);
        itest_sleep_ms(100); /* the server has seen the close */
        ck_assert(ht_tls_try(port, TLS1_2_VERSION, NULL, NULL, sess, &ssl, &fd));
        ck_assert_msg(SSL_session_reused(ssl), "%s: the TLS 1.2 session was not resumed", where);
        ht_tls_request(ssl, fd);
        SSL_free(ssl);
        SSL_SESSION_free(sess);
    }
}
END_TEST

static void table_setup(void)
{
    struct itest_opts o = {0};
    o.tls = 1;
    o.auth_failures_per_min = 1000000;
    itest_start(&o);
    struct itest_opts o2 = {0};
    o2.admin_tls = 1;
    o2.auth_failures_per_min = 1000000;
    itest_lg_start(&o2);
    ht_data(0);
}

static void slowloris_setup(void)
{
    struct itest_opts o = {0};
    o.tls = 1;
    o.extra = "[server]\nheader_timeout_s = 2\n";
    itest_start(&o);
    ht_data(0);
}

static void per_ip_setup(void)
{
    /* the held connections and lockgate's own (it inherits the limit) */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096) {
        rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    struct itest_opts o = {0};
    itest_start(&o);
    ht_data(0);
}

static void half_close_setup(void)
{
    struct itest_opts o = {0};
    o.tls = 1;
    o.upstream_timeout_ms = 8000; /* the slow facility answers after 3 s */
    itest_start(&o);
    ht_data(1);
}

static void fixture_teardown(void) { itest_stop(); }

int main(void)
{
    /* a failing table lists every case that failed in its message */
    check_set_max_msg_size(32768);
    Suite *s = suite_create("http");

    TCase *table = tcase_create("table");
    tcase_add_unchecked_fixture(table, table_setup, fixture_teardown);
    tcase_set_timeout(table, 120);
    tcase_add_test(table, test_table_public_plain);
    tcase_add_test(table, test_table_public_tls);
    tcase_add_test(table, test_table_admin_plain);
    tcase_add_test(table, test_table_admin_tls);
    tcase_add_test(table, test_table_upstream_untouched);
    tcase_add_test(table, test_protocol_errors_counted);
    tcase_add_test(table, test_tls_policy);
    suite_add_tcase(s, table);

    TCase *slow = tcase_create("slowloris");
    tcase_add_unchecked_fixture(slow, slowloris_setup, fixture_teardown);
    tcase_set_timeout(slow, 60);
    tcase_add_test(slow, test_slowloris);
    suite_add_tcase(s, slow);

    TCase *per_ip = tcase_create("per_ip");
    tcase_add_unchecked_fixture(per_ip, per_ip_setup, fixture_teardown);
    tcase_set_timeout(per_ip, 60);
    tcase_add_test(per_ip, test_connections_per_ip);
    tcase_add_test(per_ip, test_connections_per_instance);
    suite_add_tcase(s, per_ip);

    TCase *half = tcase_create("half_close");
    tcase_add_unchecked_fixture(half, half_close_setup, fixture_teardown);
    tcase_set_timeout(half, 60);
    tcase_add_test(half, test_half_close);
    tcase_add_test(half, test_half_close_tls);
    tcase_add_test(half, test_half_close_pipelined);
    tcase_add_test(half, test_public_body_not_read);
    suite_add_tcase(s, half);

    return itest_exit_status(check_run(s));
}
