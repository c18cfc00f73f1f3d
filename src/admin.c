/* The admin API server: the listener, bearer-token check, routing, health,
 * readiness and metrics, and the "call" machinery that runs one Lua script
 * per request and maps its outcome to an HTTP answer. The routes themselves
 * live in admin_accounts.c, admin_facilities.c, admin_keys.c, admin_audit.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/sha.h>
#include <openssl/crypto.h>

#include "admin_internal.h"
#include "lockgate/admin.h"
#include "lockgate/config.h"
#include "lockgate/cred.h"
#include "lockgate/http.h"
#include "lockgate/log.h"
#include "lockgate/metrics.h"
#include "lockgate/reply.h"
#include "lockgate/secrets.h"
#include "lockgate/store.h"
#include "lockgate/util.h"

#define API_PREFIX   "/admin/v1/"
#define MAX_SEGMENTS 4
#define SEGMENT_MAX  ADMIN_SEGMENT_MAX

/* ---- answers ---- */

static void count_status(struct lg_admin *adm, int status)
{
    if (status >= 0 && status < ADMIN_STATUS_MAX) adm->by_status[status]++;
}

void lg_admin_reply_json(struct lg_admin *adm, struct lg_http_req *req, const char *rid, int status,
                         json_t *body)
{
    count_status(adm, status);
    lg_http_set_header(req, "X-Request-Id", rid);
    lg_http_set_header(req, "Cache-Control", "no-store");
    lg_http_reply_json(req, status, body);
}

static void reply_verror(struct lg_admin *adm, struct lg_http_req *req, const char *rid, int status,
                         const char *code, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    count_status(adm, status);
    lg_http_set_header(req, "Cache-Control", "no-store");
    lg_http_reply_error(req, status, code, msg, rid);
}

void lg_admin_reply_error(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                          int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    reply_verror(adm, req, rid, status, code, fmt, ap);
    va_end(ap);
}

/* ---- calls ---- */

struct lg_admin_call *lg_admin_call_new(struct lg_admin *adm, struct lg_http_req *req,
                                        const char *rid)
{
    struct lg_admin_call *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        lg_admin_reply_error(adm, req, rid, 500, "internal_error", "out of memory");
        return NULL;
    }
    c->adm = adm;
    c->req = req;
    c->replicas = -1;
    snprintf(c->rid, sizeof(c->rid), "%s", rid);
    snprintf(c->peer, sizeof(c->peer), "%s", lg_http_peer(req));
    c->now_ms = lg_now_ms();
    lg_time_format(c->now_ms, c->now);
    snprintf(c->actor, sizeof(c->actor), "%s",
             adm->session != NULL ? adm->session->email : ADMIN_ACTOR_TOKEN);
    lg_list_push_front(&adm->calls, &c->link);
    return c;
}

void lg_admin_call_reset(struct lg_admin_call *c)
{
    /* An argument may be a verifier and a sealed secret (a key's spec). */
    for (int i = 0; i < c->argc; i++) {
        OPENSSL_cleanse(c->argv[i], c->argvlen[i]);
        free(c->argv[i]);
    }
    c->argc = 0;
    c->nkeys = 0;
    c->arg_failed = 0;
}

/* Drops an answer held for WAIT, its strings wiped first: it may hold a
 * new key's secret. NULL is ignored. */
static void held_free(json_t *body)
{
    const char *name;
    json_t *v;
    json_object_foreach (body, name, v) {
        if (json_is_string(v)) OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
    }
    json_decref(body);
}

static void call_free(struct lg_admin_call *c)
{
    lg_list_remove(&c->link); /* an orphan is in no list: harmless */
    lg_admin_call_reset(c);
    if (c->secret != NULL) {
        OPENSSL_cleanse(c->secret, strlen(c->secret));
        free(c->secret);
    }
    json_decref(c->entries);
    held_free(c->held_body);
    json_decref(c->body);
    OPENSSL_cleanse(&c->session, sizeof(c->session));
    free(c);
}

void lg_admin_call_end(struct lg_admin_call *c) { call_free(c); }

void lg_admin_call_arg(struct lg_admin_call *c, const char *s, size_t len)
{
    if (c->argc >= ADMIN_CALL_MAX_ARGS) {
        c->arg_failed = 1;
        return;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        c->arg_failed = 1;
        return;
    }
    memcpy(copy, s, len);
    copy[len] = '\0';
    c->argv[c->argc] = copy;
    c->argvlen[c->argc] = len;
    c->argc++;
}

static void call_vargf(struct lg_admin_call *c, const char *prefix, const char *fmt, va_list ap)
{
    char *text = NULL;
    char *full = NULL;
    if (vasprintf(&text, fmt, ap) < 0) {
        c->arg_failed = 1;
        return;
    }
    if (prefix != NULL) {
        if (asprintf(&full, "%s%s", prefix, text) < 0) full = NULL;
        free(text);
        text = full;
        if (text == NULL) {
            c->arg_failed = 1;
            return;
        }
    }
    size_t len = strlen(text);
    lg_admin_call_arg(c, text, len);
    OPENSSL_cleanse(text, len); /* lg_admin_call_argf may format a verifier or a sealed secret */
    free(text);
}

void lg_admin_call_key(struct lg_admin_call *c, const char *fmt, ...)
{
    if (c->argc != c->nkeys) c->arg_failed = 1; /* keys come first */
    va_list ap;
    va_start(ap, fmt);
    call_vargf(c, lg_store_prefix(c->adm->store), fmt, ap);
    va_end(ap);
    c->nkeys++;
}

void lg_admin_call_argf(struct lg_admin_call *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    call_vargf(c, NULL, fmt, ap);
    va_end(ap);
}

void lg_admin_call_argj(struct lg_admin_call *c, const json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL) {
        c->arg_failed = 1;
        return;
    }
    size_t len = strlen(text);
    lg_admin_call_arg(c, text, len);
    OPENSSL_cleanse(text, len); /* may hold a verifier and a sealed secret */
    free(text);
}

void lg_admin_call_common(struct lg_admin_call *c)
{
    const char *p = lg_store_prefix(c->adm->store);
    lg_admin_call_arg(c, p, strlen(p));
    lg_admin_call_arg(c, c->now, strlen(c->now));
    lg_admin_call_arg(c, c->adm->evmax, strlen(c->adm->evmax));
    lg_admin_call_arg(c, c->adm->aumax, strlen(c->adm->aumax));
    lg_admin_call_arg(c, c->rid, strlen(c->rid));
    lg_admin_call_arg(c, c->peer, strlen(c->peer));
    lg_admin_call_arg(c, c->actor, strlen(c->actor));
}

/* A write's answer says whether enough replicas confirmed it (SPEC section
 * 12): "replicated" in a JSON object, a Warning header when they did not. */
static void replication_mark(struct lg_admin_call *c, json_t *body)
{
    int want = c->adm->cfg->replicas_to_wait;
    if (want <= 0 || c->replicas < 0) return;
    bool ok = c->replicas >= want;
    if (json_is_object(body)) json_object_set_new(body, "replicated", json_boolean(ok));
    if (ok) return;
    c->adm->unreplicated++;
    char warn[128];
    snprintf(warn, sizeof(warn), "199 lockgate \"written, but %d of %d replicas confirmed\"",
             c->replicas, want);
    lg_http_set_header(c->req, "Warning", warn);
    lg_warn("admin: request %s: written, but %d of %d replicas confirmed within %d ms", c->rid,
            c->replicas, want, c->adm->cfg->wait_timeout_ms);
}

void lg_admin_call_json(struct lg_admin_call *c, int status, json_t *body)
{
    if (c->waits > 0) { /* the WAIT's answer completes it */
        /* a copy: the caller may wipe its own (a new key's secret) at once */
        c->held = true;
        c->held_status = status;
        c->held_body = body != NULL ? json_deep_copy(body) : NULL;
        json_decref(body);
        return;
    }
    if (c->adm != NULL) {
        replication_mark(c, body);
        lg_admin_reply_json(c->adm, c->req, c->rid, status, body);
    } else {
        json_decref(body);
    }
    call_free(c);
}

void lg_admin_call_shaped(struct lg_admin_call *c, int status, json_t *body)
{
    if (body == NULL)
        lg_admin_call_error(c, 500, "internal_error", "unexpected store answer");
    else
        lg_admin_call_json(c, status, body);
}

void lg_admin_call_error(struct lg_admin_call *c, int status, const char *code, const char *fmt,
                         ...)
{
    if (c->adm != NULL) {
        va_list ap;
        va_start(ap, fmt);
        reply_verror(c->adm, c->req, c->rid, status, code, fmt, ap);
        va_end(ap);
    }
    if (c->waits > 0)
        c->answered = true; /* its WAIT still holds the call */
    else
        call_free(c);
}

static void store_unavailable(struct lg_admin_call *c)
{
    c->adm->store_failures++;
    lg_admin_call_error(c, 503, "store_unavailable", "the store is unavailable; try again");
}

/* Script errors are "code:message" for the outcomes we expect; anything else
 * is a store problem (503) or a bug (500), never shown to the client as is. */
static void script_error(struct lg_admin_call *c, const char *str, size_t len)
{
    static const struct {
        const char *prefix;
        int status;
    } known[] = {{"not_found:", 404}, {"bad_request:", 400}, {"conflict:", 409}};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        size_t plen = strlen(known[i].prefix);
        if (len > plen && strncmp(str, known[i].prefix, plen) == 0) {
            char code[32];
            snprintf(code, sizeof(code), "%.*s", (int)plen - 1, known[i].prefix);
            lg_admin_call_error(c, known[i].status, code, "%.*s", (int)(len - plen), str + plen);
            return;
        }
    }
    static const char *const transient[] = {"LOADING",  "BUSY", "READONLY",    "MASTERDOWN",
                                            "TRYAGAIN", "OOM",  "CLUSTERDOWN", "NOREPLICAS"};
    for (size_t i = 0; i < sizeof(transient) / sizeof(transient[0]); i++) {
        if (strncmp(str, transient[i], strlen(transient[i])) == 0) {
            lg_warn("admin: request %s: redis: %.200s", c->rid, str);
            store_unavailable(c);
            return;
        }
    }
    lg_error("admin: request %s: redis error: %.300s", c->rid, str);
    lg_admin_call_error(c, 500, "internal_error", "the store refused the operation");
}

static void on_store_reply(struct lg_store *st, redisReply *reply, void *arg)
{
    struct lg_admin_call *c = arg;
    if (c->adm == NULL) { /* the admin was freed while this was in flight */
        call_free(c);
        return;
    }
    if (reply == NULL) {
        store_unavailable(c);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        script_error(c, reply->str, reply->len);
        return;
    }
    c->done(c, reply);
}

static int call_check(struct lg_admin_call *c)
{
    if (c->arg_failed) {
        lg_admin_call_error(c, 500, "internal_error", "out of memory");
        return -1;
    }
    return 0;
}

/* Scripts that only read; every other one writes. */
static bool script_writes(const struct lg_script *script)
{
    const struct lg_script *const reads[] = {
        &lg_admin_script_account_get,  &lg_admin_script_account_list,
        &lg_admin_script_facility_get, &lg_admin_script_facility_list,
        &lg_admin_script_key_get,      &lg_admin_script_key_list};
    for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++)
        if (script == reads[i]) return false;
    return true;
}

/* WAIT's answer (replies come in order: the write's answer came first). A
 * WAIT that failed counts as no replica. */
static void on_wait_reply(struct lg_store *st, redisReply *reply, void *arg)
{
    struct lg_admin_call *c = arg;
    int n = reply != NULL && reply->type == REDIS_REPLY_INTEGER ? (int)reply->integer : 0;
    if (c->replicas < 0 || n < c->replicas) c->replicas = n;
    if (--c->waits > 0) return;
    if (c->held) {
        c->held = false;
        json_t *body = c->held_body;
        c->held_body = NULL;
        lg_admin_call_json(c, c->held_status, json_incref(body));
        held_free(body);
    } else if (c->answered) {
        call_free(c);
    }
}

void lg_admin_call_run(struct lg_admin_call *c, struct lg_script *script, lg_admin_done_fn *done)
{
    if (call_check(c) < 0) return;
    c->done = done;
    if (lg_store_script(c->adm->store, script, on_store_reply, c, c->nkeys, c->argc,
                        (const char **)c->argv, c->argvlen) < 0) {
        store_unavailable(c);
        return;
    }
    int want = c->adm->cfg->replicas_to_wait;
    if (want <= 0 || !script_writes(script)) return;
    /* Pipelined behind the write on the same connection: it waits for the
     * replication offset of everything written before it. */
    char n[16], ms[16];
    snprintf(n, sizeof(n), "%d", want);
    snprintf(ms, sizeof(ms), "%d", c->adm->cfg->wait_timeout_ms);
    const char *argv[] = {"WAIT", n, ms};
    if (lg_store_argv(c->adm->store, on_wait_reply, c, 3, argv, NULL) == 0)
        c->waits++;
    else
        c->replicas = 0;
}

void lg_admin_call_cmd(struct lg_admin_call *c, lg_admin_done_fn *done)
{
    if (call_check(c) < 0) return;
    c->done = done;
    if (lg_store_argv(c->adm->store, on_store_reply, c, c->argc, (const char **)c->argv,
                      c->argvlen) < 0)
        store_unavailable(c);
}

/* ---- health, readiness, metrics ---- */

static void serve_healthz(struct lg_admin *adm, struct lg_http_req *req, const char *rid)
{
    lg_admin_reply_json(adm, req, rid, 200, json_pack("{s:s}", "status", "ok"));
}

static void serve_readyz(struct lg_admin *adm, struct lg_http_req *req, const char *rid)
{
    /* Ready when every worker has started and reaches Redis, as the admin
     * API does (a worker without Redis cannot authenticate new keys). The
     * upstream, as the workers last saw it, does not decide readiness. */
    int connected, workers = lg_metrics_workers_connected(&connected);
    bool up = lg_store_up(adm->store) && workers == adm->cfg->workers &&
              connected == workers;
    int upstream = lg_metrics_upstream_state();
    const char *up_text = upstream < 0 ? "unknown" : upstream ? "up" : "down";
    const char *status = adm->draining ? "draining" : up ? "ready" : "not_ready";
    lg_admin_reply_json(adm, req, rid, up && !adm->draining ? 200 : 503,
                        json_pack("{s:s, s:s, s:s, s:i, s:i}", "status", status, "redis",
                                  up ? "up" : "down", "upstream", up_text, "workers", workers,
                                  "workers_connected", connected));
}

static void serve_metrics(struct lg_admin *adm, struct lg_http_req *req, const char *rid)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (out == NULL) {
        lg_admin_reply_error(adm, req, rid, 500, "internal_error", "out of memory");
        return;
    }
    count_status(adm, 200); /* this answer counts too */
    fprintf(out, "# HELP lockgate_admin_requests_total Admin API answers by HTTP status.\n"
                 "# TYPE lockgate_admin_requests_total counter\n");
    for (int s = 0; s < ADMIN_STATUS_MAX; s++)
        if (adm->by_status[s] != 0)
            fprintf(out, "lockgate_admin_requests_total{status=\"%d\"} %llu\n", s,
                    (unsigned long long)adm->by_status[s]);
    fprintf(out,
            "# HELP lockgate_admin_store_failures_total Admin requests answered 503 because "
            "Redis was unavailable or too slow.\n"
            "# TYPE lockgate_admin_store_failures_total counter\n"
            "lockgate_admin_store_failures_total %llu\n"
            "# HELP lockgate_admin_unreplicated_writes_total Admin writes answered with "
            "fewer replicas confirming than [redis] replicas_to_wait.\n"
            "# TYPE lockgate_admin_unreplicated_writes_total counter\n"
            "lockgate_admin_unreplicated_writes_total %llu\n"
            "# HELP lockgate_redis_up Whether the admin API's Redis connection is up.\n"
            "# TYPE lockgate_redis_up gauge\n"
            "lockgate_redis_up %d\n",
            (unsigned long long)adm->store_failures, (unsigned long long)adm->unreplicated,
            lg_store_up(adm->store) ? 1 : 0);
    lg_metrics_write(out);
    fclose(out);
    lg_http_set_header(req, "X-Request-Id", rid);
    lg_http_set_header(req, "Cache-Control", "no-store");
    lg_http_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
}

/* ---- routing ---- */

enum body_mode { BODY_NONE, BODY_REQUIRED, BODY_OPTIONAL };

struct route {
    enum lg_http_method method;
    const char *pattern[MAX_SEGMENTS + 1]; /* NULL-terminated; "*" captures an id */
    enum lg_admin_id_kind ids[2];          /* kinds of the captured ids, in order */
    enum body_mode body;
    lg_admin_handler_fn *handler;
};

static const struct route routes[] = {
    {LG_HTTP_POST, {"accounts", NULL}, {ID_NONE}, BODY_REQUIRED, lg_admin_account_create},
    {LG_HTTP_GET, {"accounts", NULL}, {ID_NONE}, BODY_NONE, lg_admin_account_list},
    {LG_HTTP_GET, {"accounts", "*", NULL}, {ID_ACCT}, BODY_NONE, lg_admin_account_get},
    {LG_HTTP_POST,
     {"accounts", "*", "facilities", NULL},
     {ID_ACCT},
     BODY_REQUIRED,
     lg_admin_facility_create},
    {LG_HTTP_GET,
     {"accounts", "*", "facilities", NULL},
     {ID_ACCT},
     BODY_NONE,
     lg_admin_facility_list},
    {LG_HTTP_POST, {"accounts", "*", "keys", NULL}, {ID_ACCT}, BODY_REQUIRED, lg_admin_key_create},
    {LG_HTTP_GET, {"accounts", "*", "keys", NULL}, {ID_ACCT}, BODY_NONE, lg_admin_key_list},
    {LG_HTTP_GET, {"facilities", "*", NULL}, {ID_FAC}, BODY_NONE, lg_admin_facility_get},
    {LG_HTTP_PATCH, {"facilities", "*", NULL}, {ID_FAC}, BODY_REQUIRED, lg_admin_facility_patch},
    {LG_HTTP_DELETE, {"facilities", "*", NULL}, {ID_FAC}, BODY_NONE, lg_admin_facility_delete},
    {LG_HTTP_GET, {"keys", "*", NULL}, {ID_KEY}, BODY_NONE, lg_admin_key_get},
    {LG_HTTP_PATCH, {"keys", "*", NULL}, {ID_KEY}, BODY_REQUIRED, lg_admin_key_patch},
    {LG_HTTP_DELETE, {"keys", "*", NULL}, {ID_KEY}, BODY_NONE, lg_admin_key_delete},
    {LG_HTTP_POST, {"keys", "*", "reveal", NULL}, {ID_KEY}, BODY_OPTIONAL, lg_admin_key_reveal},
    {LG_HTTP_POST, {"keys", "*", "disable", NULL}, {ID_KEY}, BODY_OPTIONAL, lg_admin_key_disable},
    {LG_HTTP_POST, {"keys", "*", "enable", NULL}, {ID_KEY}, BODY_OPTIONAL, lg_admin_key_enable},
    {LG_HTTP_POST, {"keys", "*", "rotate", NULL}, {ID_KEY}, BODY_OPTIONAL, lg_admin_key_rotate},
    {LG_HTTP_POST, {"feed-keys", NULL}, {ID_NONE}, BODY_REQUIRED, lg_admin_feed_key_create},
    {LG_HTTP_GET, {"feed-keys", NULL}, {ID_NONE}, BODY_NONE, lg_admin_feed_key_list},
    {LG_HTTP_POST,
     {"events", "lock-changed", NULL},
     {ID_NONE},
     BODY_REQUIRED,
     lg_admin_lock_changed},
    {LG_HTTP_GET, {"audit", NULL}, {ID_NONE}, BODY_NONE, lg_admin_audit_list},
    {LG_HTTP_POST,
     {"accounts", "*", "users", NULL},
     {ID_ACCT},
     BODY_REQUIRED,
     lg_admin_user_create},
    {LG_HTTP_GET, {"accounts", "*", "users", NULL}, {ID_ACCT}, BODY_NONE, lg_admin_user_list},
    {LG_HTTP_GET, {"users", "*", NULL}, {ID_USER}, BODY_NONE, lg_admin_user_get},
    {LG_HTTP_DELETE, {"users", "*", NULL}, {ID_USER}, BODY_NONE, lg_admin_user_delete},
    {LG_HTTP_POST,
     {"users", "*", "disable", NULL},
     {ID_USER},
     BODY_OPTIONAL,
     lg_admin_user_disable},
    {LG_HTTP_POST, {"users", "*", "enable", NULL}, {ID_USER}, BODY_OPTIONAL, lg_admin_user_enable},
    {LG_HTTP_POST,
     {"users", "*", "password", NULL},
     {ID_USER},
     BODY_OPTIONAL,
     lg_admin_user_password},
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* Splits REST ("a/b/c") into at most MAX_SEGMENTS non-empty segments. -1 for
 * anything else (empty segments, too many, too long). */
static int split_path(const char *rest, char seg[MAX_SEGMENTS][SEGMENT_MAX + 1], int *nseg)
{
    int n = 0;
    const char *p = rest;
    while (1) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0 || len > SEGMENT_MAX || n == MAX_SEGMENTS) return -1;
        memcpy(seg[n], p, len);
        seg[n][len] = '\0';
        n++;
        if (slash == NULL) break;
        p = slash + 1;
    }
    *nseg = n;
    return 0;
}

static bool pattern_matches(const struct route *r, char seg[MAX_SEGMENTS][SEGMENT_MAX + 1],
                            int nseg)
{
    int i = 0;
    for (; r->pattern[i] != NULL; i++) {
        if (i >= nseg) return false;
        if (strcmp(r->pattern[i], "*") != 0 && strcmp(r->pattern[i], seg[i]) != 0) return false;
    }
    return i == nseg;
}

static bool id_valid(enum lg_admin_id_kind kind, const char *s)
{
    size_t len = strlen(s);
    switch (kind) {
    case ID_ACCT: return lg_id_valid("acct_", s, len);
    case ID_FAC: return lg_ident_valid(s, len);
    case ID_KEY: return lg_cred_key_valid(s, len);
    case ID_USER: return lg_admin_email_valid(s, len);
    default: return false;
    }
}

static const char *id_noun(enum lg_admin_id_kind kind)
{
    return kind == ID_ACCT   ? "account"
           : kind == ID_FAC  ? "facility"
           : kind == ID_USER ? "user"
                             : "key";
}

/* Parses the request body for a route: a JSON object, or (BODY_OPTIONAL) an
 * empty body meaning {}. Returns the object (new reference) or NULL after
 * answering. */
static json_t *read_body(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                         enum body_mode mode)
{
    size_t len = 0;
    const char *text = lg_http_body(req, &len);
    if (len > ADMIN_MAX_BODY) {
        lg_admin_reply_error(adm, req, rid, 413, "payload_too_large",
                             "request bodies are limited to %d bytes", ADMIN_MAX_BODY);
        return NULL;
    }
    if (text == NULL) {
        lg_admin_reply_error(adm, req, rid, 500, "internal_error", "out of memory");
        return NULL;
    }
    size_t blank = 0;
    while (blank < len && strchr(" \t\r\n", text[blank]) != NULL) blank++;
    if (blank == len && mode == BODY_OPTIONAL) return json_object();
    json_error_t jerr;
    json_t *body = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (body == NULL || !json_is_object(body)) {
        json_decref(body);
        lg_admin_reply_error(adm, req, rid, 400, "bad_request", "body is not a JSON object");
        return NULL;
    }
    return body;
}

/* Routes REST (the path after /admin/v1/) for the admin token (S NULL) or
 * for the console user of session S. */
static void route_api(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                      const char *rest, const struct lg_admin_session *s)
{
    char seg[MAX_SEGMENTS][SEGMENT_MAX + 1];
    int nseg = 0;
    enum lg_http_method m = lg_http_method(req);
    if (m == LG_HTTP_HEAD) m = LG_HTTP_GET;
    if (split_path(rest, seg, &nseg) < 0) {
        lg_admin_reply_error(adm, req, rid, 404, "not_found", "no such route");
        return;
    }
    const struct route *match = NULL;
    char allow[64] = "";
    for (size_t i = 0; i < NROUTES; i++) {
        if (!pattern_matches(&routes[i], seg, nseg)) continue;
        if (routes[i].method == m) match = &routes[i];
        size_t used = strlen(allow);
        snprintf(allow + used, sizeof(allow) - used, "%s%s", used ? ", " : "",
                 lg_http_method_name(routes[i].method));
    }
    if (allow[0] == '\0') {
        lg_admin_reply_error(adm, req, rid, 404, "not_found", "no such route");
        return;
    }
    if (match == NULL) {
        lg_http_set_header(req, "Allow", allow);
        lg_admin_reply_error(adm, req, rid, 405, "method_not_allowed",
                             "method not allowed here; allowed: %s", allow);
        return;
    }
    const char *ids[3] = {NULL, NULL, NULL};
    int nid = 0;
    for (int i = 0; match->pattern[i] != NULL; i++) {
        if (strcmp(match->pattern[i], "*") != 0) continue;
        enum lg_admin_id_kind kind = match->ids[nid];
        if (!id_valid(kind, seg[i])) {
            lg_admin_reply_error(adm, req, rid, 404, "not_found", "unknown %s", id_noun(kind));
            return;
        }
        ids[nid++] = seg[i];
    }
    json_t *body = NULL;
    if (match->body != BODY_NONE && (body = read_body(adm, req, rid, match->body)) == NULL) return;
    if (s != NULL)
        lg_admin_scope_run(adm, req, rid, s, match->handler, match->ids[0], ids, body);
    else
        match->handler(adm, req, rid, ids, body);
    json_decref(body);
}

/* Constant-time check of "Authorization: Bearer <token>". */
static bool authorized(const struct lg_admin *adm, struct lg_http_req *req)
{
    const char *h = lg_http_hdr(req, LG_HDR_AUTHORIZATION);
    if (h == NULL) return false;
    while (*h == ' ' || *h == '\t') h++;
    if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t')) return false;
    h += 6;
    while (*h == ' ' || *h == '\t') h++;
    size_t len = strlen(h);
    while (len > 0 && (h[len - 1] == ' ' || h[len - 1] == '\t')) len--;
    if (len == 0) return false;
    /* Compare digests: equal lengths, so not even the token's length leaks. */
    unsigned char got[SHA256_DIGEST_LENGTH], want[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)h, len, got);
    SHA256((const unsigned char *)adm->secrets->admin_token, adm->secrets->admin_token_len, want);
    bool ok = lg_ct_equal(got, sizeof(got), want, sizeof(want));
    OPENSSL_cleanse(got, sizeof(got));
    OPENSSL_cleanse(want, sizeof(want));
    return ok;
}

static void on_request(struct lg_http_req *req, void *arg)
{
    struct lg_admin *adm = arg;
    char rid[LG_REQUEST_ID_MAX + 1];
    lg_request_id_new(rid);
    const char *path = lg_http_path(req);
    enum lg_http_method m = lg_http_method(req);

    void (*plain)(struct lg_admin *, struct lg_http_req *, const char *) = NULL;
    if (strcmp(path, "/healthz") == 0)
        plain = serve_healthz;
    else if (strcmp(path, "/readyz") == 0)
        plain = serve_readyz;
    else if (strcmp(path, "/metrics") == 0)
        plain = serve_metrics;
    if (plain != NULL) {
        if (m != LG_HTTP_GET && m != LG_HTTP_HEAD) {
            lg_http_set_header(req, "Allow", "GET, HEAD");
            lg_admin_reply_error(adm, req, rid, 405, "method_not_allowed",
                                 "only GET is allowed here");
            return;
        }
        plain(adm, req, rid);
        return;
    }
    if (strcmp(path, "/console") == 0 || strncmp(path, "/console/", 9) == 0) {
        lg_console_serve(adm, req, rid, path);
        return;
    }
    if (strncmp(path, API_PREFIX, strlen(API_PREFIX)) != 0) {
        lg_admin_reply_error(adm, req, rid, 404, "not_found", "no such route");
        return;
    }
    /* The console's requests carry its session cookie instead of the token. */
    if (lg_http_hdr(req, LG_HDR_AUTHORIZATION) == NULL && lg_admin_session_cookie(req)) {
        lg_admin_session_begin(adm, req, rid, path + strlen(API_PREFIX), route_api);
        return;
    }
    if (!authorized(adm, req)) {
        lg_http_set_header(req, "WWW-Authenticate", "Bearer realm=\"lockgate-admin\"");
        lg_admin_reply_error(adm, req, rid, 401, "unauthorized",
                             "a valid admin token is required (Authorization: Bearer ...)");
        return;
    }
    route_api(adm, req, rid, path + strlen(API_PREFIX), NULL);
}

struct lg_admin *lg_admin_new(struct event_base *base, const struct lg_config *cfg,
                              const struct lg_secrets *secrets, struct lg_store *store,
                              struct lg_tls *tls)
{
    struct lg_admin *adm = calloc(1, sizeof(*adm));
    if (adm == NULL) return NULL;
    lg_list_init(&adm->calls);
    adm->base = base;
    adm->cfg = cfg;
    adm->secrets = secrets;
    adm->store = store;
    snprintf(adm->evmax, sizeof(adm->evmax), "%d",
             cfg->events_maxlen > 0 ? cfg->events_maxlen : 100000);
    snprintf(adm->aumax, sizeof(adm->aumax), "%d",
             cfg->audit_maxlen > 0 ? cfg->audit_maxlen : 1000000);
    adm->http = lg_http_server_new(base, cfg, cfg->admin_listen, tls, ADMIN_TRANSPORT_MAX_BODY,
                                   on_request, adm);
    if (adm->http == NULL) {
        lg_error("admin: cannot listen on %s", cfg->admin_listen);
        free(adm);
        return NULL;
    }
    return adm;
}

void lg_admin_set_draining(struct lg_admin *adm)
{
    if (adm != NULL) adm->draining = true;
}

void lg_admin_set_access_log(struct lg_admin *adm, bool on)
{
    if (adm != NULL) lg_http_server_set_access_log(adm->http, on);
}

void lg_admin_free(struct lg_admin *adm)
{
    if (adm == NULL) return;
    /* Calls still waiting for Redis end quietly when their reply comes (the
     * store runs them with a NULL reply when it is freed). */
    struct lg_list *n, *next;
    LG_LIST_EACH(n, next, &adm->calls)
    {
        LG_CONTAINER_OF(n, struct lg_admin_call, link)->adm = NULL;
        lg_list_remove(n);
    }
    lg_console_free(adm);
    lg_http_server_free(adm->http);
    free(adm);
}
