/* Internal interface of the admin API, shared by admin*.c: the server state,
 * one in-flight request ("call") with its Redis arguments, body and field
 * validation, the shaping of store replies into API objects, the Lua scripts,
 * and the route handlers. Nothing here is visible outside the admin API. */
#ifndef LG_ADMIN_INTERNAL_H
#define LG_ADMIN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "lockgate/cred.h"
#include "lockgate/list.h"
#include "lockgate/store.h"
#include "lockgate/util.h"

struct lg_config;
struct lg_secrets;
struct lg_http_req;
struct lg_http_server;

/* Request bodies above this are refused with 413 payload_too_large. */
#define ADMIN_MAX_BODY (64 * 1024)
/* evhttp's own cap on the admin listener. Bodies between ADMIN_MAX_BODY and
 * this get our JSON 413; evhttp refuses larger ones itself (HTML 413), as
 * libevent 2.1 has no hook to shape that answer. */
#define ADMIN_TRANSPORT_MAX_BODY (1024 * 1024)
#define ADMIN_NAME_MAX           200  /* characters, not bytes */
#define ADMIN_MAX_FACILITIES     1000 /* per key */
#define ADMIN_MAX_CIDRS          32
#define ADMIN_RATE_MAX           100000
#define ADMIN_GRACE_MAX          2592000 /* 30 days */
#define ADMIN_AUDIT_LIMIT_MAX    1000
#define ADMIN_AUDIT_SCAN_MAX     10000 /* audit entries read per request at most */
#define ADMIN_CALL_MAX_ARGS      16
#define ADMIN_STATUS_MAX         600

struct lg_admin_call;

struct lg_admin {
    struct event_base *base;
    const struct lg_config *cfg;
    const struct lg_secrets *secrets;
    struct lg_store *store;
    struct lg_http_server *http;
    char evmax[16], aumax[16]; /* stream MAXLEN ~ arguments */
    struct lg_list calls; /* of lg_admin_call.link, in flight; orphaned when the admin is freed */
    uint64_t by_status[ADMIN_STATUS_MAX];
    uint64_t store_failures;
    bool draining; /* stopping: /readyz says so, so balancers move traffic away */
};

/* What a call does with its successful store reply (borrowed, freed when it
 * returns). It must end the call: lg_admin_call_json/_error or another command. */
typedef void lg_admin_done_fn(struct lg_admin_call *c, const redisReply *reply);

/* One admin request waiting for Redis. Owns its argument copies and, for key
 * creation and rotation, the fresh secret (wiped when the call ends). */
struct lg_admin_call {
    struct lg_list link;  /* in adm->calls */
    struct lg_admin *adm; /* NULL once the admin is freed: the call just ends */
    struct lg_http_req *req;
    char rid[LG_REQUEST_ID_MAX + 1];
    char peer[64];
    char now[LG_TIME_LEN];
    int64_t now_ms;
    lg_admin_done_fn *done;
    int nkeys, argc, arg_failed;
    char *argv[ADMIN_CALL_MAX_ARGS];
    size_t argvlen[ADMIN_CALL_MAX_ARGS];
    /* per operation */
    int status;                    /* HTTP status on success */
    char subject[80];              /* the id the request is about */
    char replaces[LG_KEY_LEN + 1]; /* rotate: the old key id */
    char *secret;                  /* create/rotate: the new secret */
    /* audit scan */
    json_t *entries;
    char filter_account[72], filter_key[72];
    int limit, scanned, requested;
    char cursor[48];
};

/* ---- admin.c: calls and answers ---- */

/* Starts a call for REQ (borrowed until the call answers). NULL when out of
 * memory, after answering 500. */
struct lg_admin_call *lg_admin_call_new(struct lg_admin *adm, struct lg_http_req *req,
                                        const char *rid);
/* Appends PREFIX + formatted text as a Redis key (all keys before any
 * argument). Failures are remembered and reported by lg_admin_call_run. */
void lg_admin_call_key(struct lg_admin_call *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends the arguments every script starts with: prefix, now, events and
 * audit MAXLEN, request id, client IP (ARGV[1..6] in Lua). */
void lg_admin_call_common(struct lg_admin_call *c);
/* Appends one argument (copied). */
void lg_admin_call_arg(struct lg_admin_call *c, const char *s, size_t len);
void lg_admin_call_argf(struct lg_admin_call *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends the compact JSON text of V (borrowed) as one argument. */
void lg_admin_call_argj(struct lg_admin_call *c, const json_t *v);
/* Forgets the keys and arguments (to send another command). */
void lg_admin_call_reset(struct lg_admin_call *c);
/* Runs SCRIPT with the keys and arguments collected; DONE gets a successful
 * reply. Script errors "code:message" become the matching HTTP error; a
 * missing store or a passed deadline becomes 503 store_unavailable. */
void lg_admin_call_run(struct lg_admin_call *c, struct lg_script *script, lg_admin_done_fn *done);
/* Sends the collected arguments as a plain command (no prefix handling). */
void lg_admin_call_cmd(struct lg_admin_call *c, lg_admin_done_fn *done);
/* Answer and end the call. BODY is stolen. */
void lg_admin_call_json(struct lg_admin_call *c, int status, json_t *body);
/* Answers BODY, the JSON shape of the store's answer, with STATUS; NULL (the
 * answer had an unexpected shape) is a 500 internal_error. */
void lg_admin_call_shaped(struct lg_admin_call *c, int status, json_t *body);
void lg_admin_call_error(struct lg_admin_call *c, int status, const char *code, const char *fmt,
                         ...) __attribute__((format(printf, 4, 5)));

/* Answers outside a call (validation errors before Redis). BODY is stolen. */
void lg_admin_reply_json(struct lg_admin *adm, struct lg_http_req *req, const char *rid, int status,
                         json_t *body);
void lg_admin_reply_error(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                          int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* ---- admin_json.c: bodies, fields, shapes ---- */

/* Checks that OBJ has no field outside ALLOWED (NULL-terminated). -1 with
 * "FIELD: unknown field" in ERR otherwise. */
int lg_admin_fields_check(const json_t *obj, const char *const *allowed, char *err, size_t errlen);
/* A name field: a string of 1..ADMIN_NAME_MAX characters without control
 * characters. Absent: *OUT NULL, an error only when REQUIRED. 0 or -1. */
int lg_admin_name_get(const json_t *obj, const char *field, bool required, const char **out,
                      char *err, size_t errlen);
/* An optional integer field within [MIN, MAX]. Absent: 1 and *OUT untouched;
 * null: 2 when NULL_OK; a valid integer: 0; an error: -1. */
int lg_admin_int_get(const json_t *obj, const char *field, long long min, long long max,
                     bool null_ok, long long *out, char *err, size_t errlen);
/* allowed_cidrs (array of up to ADMIN_MAX_CIDRS addresses or CIDRs),
 * canonicalized and comma-joined into OUT. Absent: 1. 0 or -1. */
int lg_admin_cidrs_get(const json_t *obj, char *out, size_t outlen, char *err, size_t errlen);
/* expires_at: an ISO time after NOW_MS (canonical form into OUT), or null
 * (OUT ""). Absent: 1. 0 or -1. */
int lg_admin_expiry_get(const json_t *obj, int64_t now_ms, char out[LG_TIME_LEN], char *err,
                        size_t errlen);
/* Copies at most MAX bytes of S into OUT (OUTLEN) without cutting a UTF-8
 * character, adding "..." when shortened. For echoing user text in messages. */
void lg_admin_echo(const char *s, size_t max, char *out, size_t outlen);

/* The value of FIELD in a flat [field, value, ...] reply, or "" when absent. */
const char *lg_admin_flat_get(const redisReply *flat, const char *field);
/* Store views made by the scripts: {id, flat hash} for accounts and
 * facilities, {id, flat key fields, facility ids} for keys. New references;
 * NULL when the reply is malformed. The key's status is computed against NOW_MS. */
json_t *lg_admin_shape_account(const redisReply *view);
json_t *lg_admin_shape_facility(const redisReply *view);
json_t *lg_admin_shape_key(const redisReply *view, int64_t now_ms);
/* Shapes every element of an array reply with SHAPE into a JSON array sorted
 * by created_at then by id field ID_FIELD. New reference or NULL. */
json_t *lg_admin_shape_list(const redisReply *list, json_t *(*shape)(const redisReply *),
                            const char *id_field);
json_t *lg_admin_shape_key_list(const redisReply *list, int64_t now_ms);

/* ---- admin_scripts.c ---- */

extern struct lg_script lg_admin_script_account_create, lg_admin_script_account_get,
    lg_admin_script_account_list, lg_admin_script_facility_create, lg_admin_script_facility_get,
    lg_admin_script_facility_list, lg_admin_script_facility_patch, lg_admin_script_facility_delete,
    lg_admin_script_key_create, lg_admin_script_key_get, lg_admin_script_key_list,
    lg_admin_script_key_reveal, lg_admin_script_key_update, lg_admin_script_key_status,
    lg_admin_script_key_rotate, lg_admin_script_key_delete, lg_admin_script_lock_changed;

/* ---- route handlers ----
 * IDS are the path's ids (validated, borrowed); BODY is the parsed request
 * body (borrowed; an empty object for an empty body where that is allowed,
 * NULL for routes without one). */
typedef void lg_admin_handler_fn(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                                 const char *const *ids, json_t *body);

lg_admin_handler_fn lg_admin_account_create, lg_admin_account_list, lg_admin_account_get;
lg_admin_handler_fn lg_admin_facility_create, lg_admin_facility_list, lg_admin_facility_get,
    lg_admin_facility_patch, lg_admin_facility_delete;
lg_admin_handler_fn lg_admin_key_create, lg_admin_key_list, lg_admin_key_get, lg_admin_key_reveal,
    lg_admin_key_patch, lg_admin_key_disable, lg_admin_key_enable, lg_admin_key_rotate,
    lg_admin_key_delete, lg_admin_feed_key_create, lg_admin_feed_key_list;
lg_admin_handler_fn lg_admin_lock_changed, lg_admin_audit_list;

#endif
