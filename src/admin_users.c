/* Admin API: console users (SPEC section 11). A user belongs to one account,
 * is named by their email, has the role "owner" or "client_admin", and signs
 * in with a password kept only as a scrypt hash. Disabling, deleting or
 * changing the password of a user ends their sessions at once.
 *
 * Layout (under the prefix):
 *   user:{email}            hash  account_id, role, status ("active"/"disabled"),
 *                                 password (scrypt text), created_at, updated_at
 *   user:{email}:sessions   set   hashes of the user's sessions
 *   acct:{acct}:users       set   emails of the account's users
 *   session:{hash}          hash  see session.c */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "admin_internal.h"
#include "lockgate/password.h"

#define ERRLEN 256

/* Every script: ARGV[1] prefix, [2] now, then its own. The view of a user
 * is {email, {field, value, ...}} without the password. */
#define USER_PRELUDE                                                                      \
    "local P, NOW = ARGV[1], ARGV[2]\n"                                                   \
    "local function fail(code, msg) return redis.error_reply(code .. ':' .. msg) end\n"   \
    "local UF = {'account_id', 'role', 'status', 'created_at', 'updated_at'}\n"           \
    "local function userview(email)\n"                                                    \
    "  local v = redis.call('HMGET', P .. 'user:' .. email, unpack(UF))\n"                \
    "  local flat = {}\n"                                                                 \
    "  for i, f in ipairs(UF) do flat[#flat + 1] = f; flat[#flat + 1] = v[i] or '' end\n" \
    "  return {email, flat}\n"                                                            \
    "end\n"                                                                               \
    "local function end_sessions(email)\n"                                                \
    "  local set = P .. 'user:' .. email .. ':sessions'\n"                                \
    "  for _, h in ipairs(redis.call('SMEMBERS', set)) do\n"                              \
    "    redis.call('DEL', P .. 'session:' .. h)\n"                                       \
    "  end\n"                                                                             \
    "  redis.call('DEL', set)\n"                                                          \
    "end\n"

#define USER_SCRIPT(var, text) \
    static struct lg_script var = {.name = #var, .source = USER_PRELUDE text}

/* KEYS: user:{e}, acct:{a}:users, acct:{a}. ARGV[3] email, [4] account,
 * [5] role, [6] password hash. */
USER_SCRIPT(script_create,
            "if redis.call('EXISTS', KEYS[3]) == 0 then\n"
            "  return fail('not_found', 'account ' .. ARGV[4] .. ' not found')\n"
            "end\n"
            "if redis.call('EXISTS', KEYS[1]) == 1 then\n"
            "  return fail('conflict', 'user ' .. ARGV[3] .. ' already exists')\n"
            "end\n"
            "end_sessions(ARGV[3])\n"
            "redis.call('HSET', KEYS[1], 'account_id', ARGV[4], 'role', ARGV[5], 'status',\n"
            "  'active', 'password', ARGV[6], 'created_at', NOW, 'updated_at', NOW)\n"
            "redis.call('SADD', KEYS[2], ARGV[3])\n"
            "return userview(ARGV[3])\n");

/* KEYS: acct:{a}:users, acct:{a}. ARGV[3] account. */
USER_SCRIPT(
    script_list,
    "if redis.call('EXISTS', KEYS[2]) == 0 then\n"
    "  return fail('not_found', 'account ' .. ARGV[3] .. ' not found')\n"
    "end\n"
    "local out = {}\n"
    "for _, e in ipairs(redis.call('SMEMBERS', KEYS[1])) do out[#out + 1] = userview(e) end\n"
    "return out\n");

/* KEYS: user:{e}. ARGV[3] email, [4] what to do: 'get', 'active',
 * 'disabled', 'password' (with [5] the new hash) or 'delete'. */
USER_SCRIPT(script_change,
            "local email, op = ARGV[3], ARGV[4]\n"
            "local acct = redis.call('HGET', KEYS[1], 'account_id')\n"
            "if not acct then return fail('not_found', 'user ' .. email .. ' not found') end\n"
            "if op == 'get' then return userview(email) end\n"
            "if op == 'delete' then\n"
            "  end_sessions(email)\n"
            "  redis.call('SREM', P .. 'acct:' .. acct .. ':users', email)\n"
            "  redis.call('DEL', KEYS[1])\n"
            "  return {email, {}}\n"
            "end\n"
            "if op == 'password' then\n"
            "  redis.call('HSET', KEYS[1], 'password', ARGV[5], 'updated_at', NOW)\n"
            "else\n"
            "  redis.call('HSET', KEYS[1], 'status', op, 'updated_at', NOW)\n"
            "end\n"
            "if op ~= 'active' then end_sessions(email) end\n"
            "return userview(email)\n");

bool lg_admin_email_valid(const char *s, size_t len)
{
    if (len < 3 || len > ADMIN_EMAIL_MAX) return false;
    const char *at = memchr(s, '@', len);
    if (at == NULL || at == s || at == s + len - 1 || memchr(at + 1, '@', len - (at + 1 - s)))
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ||
                  ch == '@' || (s + i < at && (ch == '_' || ch == '+'));
        if (!ok) return false;
    }
    return true;
}

/* {"email", field: value...} from a user view; NULL when malformed. */
static json_t *shape_user(const redisReply *view)
{
    if (view == NULL || view->type != REDIS_REPLY_ARRAY || view->elements != 2 ||
        view->element[0]->type != REDIS_REPLY_STRING || view->element[1]->type != REDIS_REPLY_ARRAY)
        return NULL;
    const redisReply *flat = view->element[1];
    json_t *u = json_pack("{s:s}", "email", view->element[0]->str);
    for (size_t i = 0; u != NULL && i + 1 < flat->elements; i += 2)
        if (flat->element[i]->type == REDIS_REPLY_STRING &&
            flat->element[i + 1]->type == REDIS_REPLY_STRING)
            json_object_set_new(u, flat->element[i]->str, json_string(flat->element[i + 1]->str));
    return u;
}

static void done_user(struct lg_admin_call *c, const redisReply *reply)
{
    if (c->status == 204) {
        lg_admin_call_json(c, 204, NULL);
        return;
    }
    json_t *u = shape_user(reply);
    static const char *const secrets[] = {"password", NULL};
    if (u != NULL && c->secret != NULL) json_object_set_new(u, "password", json_string(c->secret));
    lg_admin_call_shaped(c, c->status, json_incref(u));
    lg_admin_wipe_decref(u, secrets); /* the generated password, once sent */
}

static int cmp_email(const void *a, const void *b)
{
    return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "email")),
                  json_string_value(json_object_get(*(json_t *const *)b, "email")));
}

static void done_list(struct lg_admin_call *c, const redisReply *reply)
{
    if (reply->type != REDIS_REPLY_ARRAY) {
        lg_admin_call_error(c, 500, "internal_error", "unexpected store answer");
        return;
    }
    size_t n = reply->elements;
    json_t **items = calloc(n + 1, sizeof(*items));
    json_t *list = json_array();
    if (items == NULL || list == NULL) {
        free(items);
        json_decref(list);
        lg_admin_call_error(c, 500, "internal_error", "out of memory");
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if ((items[k] = shape_user(reply->element[i])) != NULL) k++;
    qsort(items, k, sizeof(*items), cmp_email);
    for (size_t i = 0; i < k; i++) json_array_append_new(list, items[i]);
    free(items);
    lg_admin_call_json(c, 200, json_pack("{s:o}", "users", list));
}

/* The "password" field, or a generated one (kept in C->secret for the
 * answer) when absent; its scrypt hash into HASH. 0, or -1 after answering. */
static int password_take(struct lg_admin_call *c, const json_t *body,
                         char hash[LG_PASSWORD_HASH_MAX])
{
    json_t *v = json_object_get(body, "password");
    char gen[LG_PASSWORD_GEN_LEN];
    const char *pw;
    size_t len;
    if (v == NULL) {
        if (lg_password_generate(gen) < 0 || (c->secret = strdup(gen)) == NULL) {
            OPENSSL_cleanse(gen, sizeof(gen));
            lg_admin_call_error(c, 500, "internal_error", "could not make a password");
            return -1;
        }
        OPENSSL_cleanse(gen, sizeof(gen));
        pw = c->secret;
        len = strlen(pw);
    } else {
        len = json_string_length(v);
        if (!json_is_string(v) || len < LG_PASSWORD_MIN || len > LG_PASSWORD_MAX) {
            lg_admin_call_error(c, 400, "bad_request", "password: a string of %d to %d bytes",
                                LG_PASSWORD_MIN, LG_PASSWORD_MAX);
            return -1;
        }
        pw = json_string_value(v);
    }
    int rc = lg_password_hash(pw, len, hash);
    if (v != NULL) OPENSSL_cleanse((char *)pw, len); /* the request's copy: no longer needed */
    if (rc < 0) {
        lg_admin_call_error(c, 500, "internal_error", "could not hash the password");
        return -1;
    }
    return 0;
}

void lg_admin_user_create(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                          const char *const *ids, json_t *body)
{
    static const char *const fields[] = {"email", "role", "password", NULL};
    char err[ERRLEN];
    if (lg_admin_fields_check(body, fields, err, sizeof(err)) < 0) {
        lg_admin_reply_error(adm, req, rid, 400, "bad_request", "%s", err);
        return;
    }
    json_t *ev = json_object_get(body, "email"), *rv = json_object_get(body, "role");
    char email[ADMIN_EMAIL_MAX + 1];
    size_t elen = json_string_length(ev);
    if (!json_is_string(ev) || elen > ADMIN_EMAIL_MAX) {
        lg_admin_reply_error(adm, req, rid, 400, "bad_request",
                             "email: required, an email address");
        return;
    }
    for (size_t i = 0; i <= elen; i++) {
        char ch = json_string_value(ev)[i];
        email[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    if (!lg_admin_email_valid(email, elen)) {
        lg_admin_reply_error(adm, req, rid, 400, "bad_request",
                             "email: not an address lockgate accepts ([a-z0-9._+-]@[a-z0-9.-])");
        return;
    }
    const char *role = rv ? json_string_value(rv) : "owner";
    if (role == NULL || (strcmp(role, "owner") != 0 && strcmp(role, "client_admin") != 0)) {
        lg_admin_reply_error(adm, req, rid, 400, "bad_request",
                             "role: must be \"owner\" or \"client_admin\"");
        return;
    }
    struct lg_admin_call *c = lg_admin_call_new(adm, req, rid);
    char hash[LG_PASSWORD_HASH_MAX];
    if (c == NULL || password_take(c, body, hash) < 0) return;
    c->status = 201;
    lg_admin_call_key(c, "user:%s", email);
    lg_admin_call_key(c, "acct:%s:users", ids[0]);
    lg_admin_call_key(c, "acct:%s", ids[0]);
    lg_admin_call_argf(c, "%s", lg_store_prefix(adm->store));
    lg_admin_call_argf(c, "%s", c->now);
    lg_admin_call_argf(c, "%s", email);
    lg_admin_call_argf(c, "%s", ids[0]);
    lg_admin_call_argf(c, "%s", role);
    lg_admin_call_argf(c, "%s", hash);
    lg_admin_call_run(c, &script_create, done_user);
}

void lg_admin_user_list(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                        const char *const *ids, json_t *body)
{
    struct lg_admin_call *c = lg_admin_call_new(adm, req, rid);
    if (c == NULL) return;
    lg_admin_call_key(c, "acct:%s:users", ids[0]);
    lg_admin_call_key(c, "acct:%s", ids[0]);
    lg_admin_call_argf(c, "%s", lg_store_prefix(adm->store));
    lg_admin_call_argf(c, "%s", c->now);
    lg_admin_call_argf(c, "%s", ids[0]);
    lg_admin_call_run(c, &script_list, done_list);
}

/* One change OP of user EMAIL (HASH for 'password'), answered with the user. */
static void user_change(struct lg_admin_call *c, const char *email, const char *op,
                        const char *hash)
{
    c->status = strcmp(op, "delete") == 0 ? 204 : 200;
    lg_admin_call_key(c, "user:%s", email);
    lg_admin_call_argf(c, "%s", lg_store_prefix(c->adm->store));
    lg_admin_call_argf(c, "%s", c->now);
    lg_admin_call_argf(c, "%s", email);
    lg_admin_call_argf(c, "%s", op);
    lg_admin_call_argf(c, "%s", hash ? hash : "");
    lg_admin_call_run(c, &script_change, done_user);
}

static void user_simple(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                        const char *email, json_t *body, const char *op)
{
    if (body != NULL && json_object_size(body) != 0) {
        lg_admin_reply_error(adm, req, rid, 400, "bad_request", "body: must be empty or {}");
        return;
    }
    struct lg_admin_call *c = lg_admin_call_new(adm, req, rid);
    if (c != NULL) user_change(c, email, op, NULL);
}

void lg_admin_user_get(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                       const char *const *ids, json_t *body)
{
    user_simple(adm, req, rid, ids[0], body, "get");
}

void lg_admin_user_disable(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                           const char *const *ids, json_t *body)
{
    user_simple(adm, req, rid, ids[0], body, "disabled");
}

void lg_admin_user_enable(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                          const char *const *ids, json_t *body)
{
    user_simple(adm, req, rid, ids[0], body, "active");
}

void lg_admin_user_delete(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                          const char *const *ids, json_t *body)
{
    struct lg_admin_call *c = lg_admin_call_new(adm, req, rid);
    if (c == NULL) return;
    user_change(c, ids[0], "delete", NULL);
}

void lg_admin_user_password(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                            const char *const *ids, json_t *body)
{
    static const char *const fields[] = {"password", NULL};
    char err[ERRLEN];
    if (lg_admin_fields_check(body, fields, err, sizeof(err)) < 0) {
        lg_admin_reply_error(adm, req, rid, 400, "bad_request", "%s", err);
        return;
    }
    struct lg_admin_call *c = lg_admin_call_new(adm, req, rid);
    char hash[LG_PASSWORD_HASH_MAX];
    if (c == NULL || password_take(c, body, hash) < 0) return;
    user_change(c, ids[0], "password", hash);
}
