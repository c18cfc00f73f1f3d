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
#define ADMIN_CALL_MAX_ARGS      20
#define ADMIN_STATUS_MAX         600
#define ADMIN_SEGMENT_MAX        128 /* one path segment (an id, an email) */
#define ADMIN_EMAIL_MAX          128
#define ADMIN_ACTOR_TOKEN        "admin-token" /* the audit's actor for token requests */
#define ADMIN_SESSION_HEX        64            /* session ids and CSRF tokens: 32 random bytes */

/* The kinds of ids a route captures from its path. */
enum lg_admin_id_kind { ID_NONE, ID_ACCT, ID_FAC, ID_KEY, ID_USER };

/* The console user behind a request, as the session store found it. */
struct lg_admin_session {
    char email[ADMIN_EMAIL_MAX + 1];
    char account[LG_ACCOUNT_ID_LEN + 1];
    char role[16];
    char csrf[ADMIN_SESSION_HEX + 1];
    char hash[ADMIN_SESSION_HEX + 1]; /* SHA-256 of the session id, its Redis name */
};

struct lg_admin_call;
struct lg_signin_job;

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
    uint64_t unreplicated; /* writes answered with fewer replicas than replicas_to_wait */
    bool draining;         /* stopping: /readyz says so, so balancers move traffic away */
    /* The console user of the route handler running now (set around the
     * call, so the calls it starts carry the user as actor and scope), NULL
     * for the admin token. */
    const struct lg_admin_session *session;
    struct lg_signin_job *signins; /* password checks on their threads (console_signin.c) */
    int signins_running;
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
    /* [redis] replicas_to_wait: a WAIT follows each write; the answer is
     * held until every WAIT is back (or, for an error, the call outlives it) */
    int waits;    /* WAITs in flight */
    int replicas; /* fewest replicas a WAIT confirmed; -1 before any */
    int held_status;
    json_t *held_body;
    bool held;     /* an answer waits for the WAITs */
    bool answered; /* an error went out: the call ends with its last WAIT */
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
    /* who: the console user's email or ADMIN_ACTOR_TOKEN (audit "actor") */
    char actor[ADMIN_EMAIL_MAX + 1];
    /* console requests: the session found, and what runs once it is checked */
    struct lg_admin_session session;
    char rest[ADMIN_SEGMENT_MAX * 4 + 8];
    json_t *body; /* owned */
    char ids[2][ADMIN_SEGMENT_MAX + 1];
    void *then;
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
/* Ends the call without answering (its request went on elsewhere). */
void lg_admin_call_end(struct lg_admin_call *c);
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
/* Drops a reference to OBJ (NULL is ignored) with the string members named
 * in FIELDS (NULL-terminated) wiped first: jansson frees strings as they are. */
void lg_admin_wipe_decref(json_t *obj, const char *const *fields);
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
lg_admin_handler_fn lg_admin_user_create, lg_admin_user_list, lg_admin_user_get,
    lg_admin_user_disable, lg_admin_user_enable, lg_admin_user_password, lg_admin_user_delete;

/* ---- admin_users.c ---- */

/* Whether S (LEN bytes) is an email lockgate accepts as a console user's
 * name: lowercase [a-z0-9._+-]+@[a-z0-9.-]+, at most ADMIN_EMAIL_MAX. */
bool lg_admin_email_valid(const char *s, size_t len);

/* ---- session.c: console sessions ---- */

/* What runs once a request's session is found (S borrowed for the call). */
typedef void lg_admin_session_fn(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                                 const char *rest, const struct lg_admin_session *s);
/* Finds the session of REQ's cookie in Redis (refreshing its idle expiry),
 * checks the CSRF header on every method but GET and HEAD, then runs THEN
 * with REST (copied). Answers 401 without a live session, 403 without the
 * right CSRF token. */
void lg_admin_session_begin(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                            const char *rest, lg_admin_session_fn *then);
/* Whether REQ carries a console session cookie at all. */
bool lg_admin_session_cookie(struct lg_http_req *req);
/* Starts a session for a user whose password was checked: a new id in
 * Redis (only its hash), cookies and {"email","account_id","role","csrf"}
 * as the answer of C. Ends C. */
void lg_admin_session_create(struct lg_admin_call *c, const char *email, const char *account,
                             const char *role);
/* Ends session S: deleted from Redis, cookies cleared, 204. */
void lg_admin_session_end(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                          const struct lg_admin_session *s);

/* ---- admin_scope.c: what a console session may reach ---- */

/* Runs HANDLER for session S when the route is one a console user may use
 * and every id (of KIND) belongs to the session's account; 403 for routes
 * outside the console or (users) outside the user's role, 404 for another
 * account's ids. IDS and BODY are borrowed (copied when a lookup is needed). */
void lg_admin_scope_run(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                        const struct lg_admin_session *s, lg_admin_handler_fn *handler,
                        enum lg_admin_id_kind kind, const char *const *ids, json_t *body);

/* ---- console.c, console_signin.c: the owner's console ---- */

/* Serves PATH under /console: the pages and the sign-in API. */
void lg_console_serve(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                      const char *path);
/* POST /console/api/sign-in: {"email","password"}, throttled per email and
 * per client address. */
void lg_console_sign_in(struct lg_admin *adm, struct lg_http_req *req, const char *rid);
/* Waits for the password checks still running and drops their calls (the
 * admin is being freed). */
void lg_console_free(struct lg_admin *adm);

#endif
