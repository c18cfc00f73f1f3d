/* Console sessions: a random 32-byte id in an HttpOnly cookie, known to
 * Redis only by its SHA-256, with an idle expiry (the key's TTL, renewed on
 * every use) and an absolute one (its creation time), and a CSRF token bound
 * to it that every write must echo in X-CSRF-Token (double submit: the token
 * also comes in a cookie the page can read). Every instance sharing the
 * Redis accepts every session; ending a user's sessions is deleting keys.
 *
 *   session:{hash}   hash  email, account_id, role, csrf, created_ms */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "admin_internal.h"
#include "lockgate/config.h"
#include "lockgate/http.h"

#define SESSION_COOKIE  "lg_session"
#define CSRF_COOKIE     "lg_csrf"
#define SESSION_IDLE_MS (30LL * 60 * 1000)
#define SESSION_ABS_MS  (12LL * 60 * 60 * 1000)

/* KEYS: session:{h}. ARGV[1] prefix, [2] now (ms), [3] idle ms, [4] absolute
 * ms. The session's fields, or nil when it is gone, past its absolute
 * expiry, or its user is no longer active in that account. */
static struct lg_script script_get = {
    .name = "session_get",
    .source = "local P, now, idle, abs = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), "
              "tonumber(ARGV[4])\n"
              "local s = redis.call('HMGET', KEYS[1], 'email', 'account_id', 'role', 'csrf', "
              "'created_ms')\n"
              "if not s[1] then return nil end\n"
              "local age = now - tonumber(s[5] or '0')\n"
              "local u = redis.call('HMGET', P .. 'user:' .. s[1], 'account_id', 'status')\n"
              "if age >= abs or age < -60000 or u[1] ~= s[2] or u[2] ~= 'active' then\n"
              "  redis.call('DEL', KEYS[1])\n"
              "  return nil\n"
              "end\n"
              "redis.call('PEXPIRE', KEYS[1], math.min(idle, abs - age))\n"
              "return {s[1], s[2], s[3], s[4]}\n"};

/* KEYS: session:{h}, user:{e}, user:{e}:sessions, the email's failure
 * counter. ARGV[1] hash, [2] email, [3] account, [4] role, [5] csrf, [6] now
 * (ms), [7] idle ms, [8] absolute ms. 1, or nil when the user changed since
 * the password was checked. */
static struct lg_script script_create = {
    .name = "session_create",
    .source = "local u = redis.call('HMGET', KEYS[2], 'account_id', 'status')\n"
              "if u[1] ~= ARGV[3] or u[2] ~= 'active' then return nil end\n"
              "redis.call('HSET', KEYS[1], 'email', ARGV[2], 'account_id', ARGV[3], 'role', "
              "ARGV[4], 'csrf', ARGV[5], 'created_ms', ARGV[6])\n"
              "redis.call('PEXPIRE', KEYS[1], ARGV[7])\n"
              "redis.call('SADD', KEYS[3], ARGV[1])\n"
              "redis.call('PEXPIRE', KEYS[3], ARGV[8])\n"
              "redis.call('DEL', KEYS[4])\n"
              "return 1\n"};

/* KEYS: session:{h}, user:{e}:sessions. ARGV[1] hash. */
static struct lg_script script_delete = {.name = "session_delete",
                                         .source = "redis.call('DEL', KEYS[1])\n"
                                                   "redis.call('SREM', KEYS[2], ARGV[1])\n"
                                                   "return 1\n"};

/* The value of cookie NAME in REQ's Cookie header into OUT (OUTLEN), when
 * present and of a sane length. */
static bool cookie_get(struct lg_http_req *req, const char *name, char *out, size_t outlen)
{
    const char *h = lg_http_hdr(req, LG_HDR_COOKIE);
    size_t nlen = strlen(name);
    while (h != NULL && *h != '\0') {
        while (*h == ' ' || *h == '\t') h++;
        const char *end = strchr(h, ';');
        size_t len = end ? (size_t)(end - h) : strlen(h);
        if (len > nlen && strncmp(h, name, nlen) == 0 && h[nlen] == '=') {
            size_t vlen = len - nlen - 1;
            if (vlen == 0 || vlen >= outlen) return false;
            memcpy(out, h + nlen + 1, vlen);
            out[vlen] = '\0';
            return true;
        }
        h = end ? end + 1 : NULL;
    }
    return false;
}

static bool hex_valid(const char *s, size_t want)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f'))) return false;
    return n == want;
}

static void hex(const unsigned char *in, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++) snprintf(out + 2 * i, 3, "%02x", in[i]);
}

/* The Redis name of session id SID: hex SHA-256. */
static void session_hash(const char *sid, char out[ADMIN_SESSION_HEX + 1])
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)sid, strlen(sid), d);
    hex(d, sizeof(d), out);
}

static int token_new(char out[ADMIN_SESSION_HEX + 1])
{
    unsigned char b[ADMIN_SESSION_HEX / 2];
    if (RAND_bytes(b, sizeof(b)) != 1) return -1;
    hex(b, sizeof(b), out);
    OPENSSL_cleanse(b, sizeof(b));
    return 0;
}

bool lg_admin_session_cookie(struct lg_http_req *req)
{
    char sid[ADMIN_SESSION_HEX + 2];
    bool found = cookie_get(req, SESSION_COOKIE, sid, sizeof(sid));
    OPENSSL_cleanse(sid, sizeof(sid));
    return found;
}

static void gone(struct lg_admin *adm, struct lg_http_req *req, const char *rid)
{
    lg_admin_reply_error(adm, req, rid, 401, "unauthorized",
                         "no live console session; sign in again");
}

static void done_get(struct lg_admin_call *c, const redisReply *reply)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 4) {
        gone(c->adm, c->req, c->rid);
        lg_admin_call_end(c);
        return;
    }
    struct lg_admin_session *s = &c->session;
    char *dst[] = {s->email, s->account, s->role, s->csrf};
    size_t cap[] = {sizeof(s->email), sizeof(s->account), sizeof(s->role), sizeof(s->csrf)};
    for (int i = 0; i < 4; i++) {
        const redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_STRING || e->len >= cap[i]) {
            lg_admin_call_error(c, 500, "internal_error", "unexpected store answer");
            return;
        }
        memcpy(dst[i], e->str, e->len + 1);
    }
    enum lg_http_method m = lg_http_method(c->req);
    if (m != LG_HTTP_GET && m != LG_HTTP_HEAD) {
        const char *t = lg_http_hdr(c->req, LG_HDR_X_CSRF_TOKEN);
        if (t == NULL || !lg_ct_equal(t, strlen(t), s->csrf, strlen(s->csrf))) {
            lg_admin_call_error(c, 403, "csrf_invalid",
                                "X-CSRF-Token: required, the session's token");
            return;
        }
    }
    lg_admin_session_fn *then = (lg_admin_session_fn *)c->then;
    then(c->adm, c->req, c->rid, c->rest, s);
    lg_admin_call_end(c);
}

void lg_admin_session_begin(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                            const char *rest, lg_admin_session_fn *then)
{
    char sid[ADMIN_SESSION_HEX + 2];
    if (!cookie_get(req, SESSION_COOKIE, sid, sizeof(sid)) || !hex_valid(sid, ADMIN_SESSION_HEX) ||
        strlen(rest) >= sizeof(((struct lg_admin_call *)0)->rest)) {
        OPENSSL_cleanse(sid, sizeof(sid));
        gone(adm, req, rid);
        return;
    }
    struct lg_admin_call *c = lg_admin_call_new(adm, req, rid);
    if (c == NULL) return;
    session_hash(sid, c->session.hash);
    OPENSSL_cleanse(sid, sizeof(sid));
    snprintf(c->rest, sizeof(c->rest), "%s", rest);
    c->then = (void *)then;
    lg_admin_call_key(c, "session:%s", c->session.hash);
    lg_admin_call_argf(c, "%s", lg_store_prefix(adm->store));
    lg_admin_call_argf(c, "%lld", (long long)c->now_ms);
    lg_admin_call_argf(c, "%lld", SESSION_IDLE_MS);
    lg_admin_call_argf(c, "%lld", SESSION_ABS_MS);
    lg_admin_call_run(c, &script_get, done_get);
}

/* Sets both cookies: VALUE "" clears them. */
static void cookies_set(struct lg_admin *adm, struct lg_http_req *req, const char *sid,
                        const char *csrf)
{
    bool tls = strcmp(adm->cfg->admin_tls, "on") == 0;
    const char *age = sid[0] ? "43200" : "0"; /* the absolute expiry, in seconds */
    char v[256];
    snprintf(v, sizeof(v), "%s=%s; Path=/; Max-Age=%s; HttpOnly; SameSite=Strict%s", SESSION_COOKIE,
             sid, age, tls ? "; Secure" : "");
    lg_http_set_header(req, "Set-Cookie", v);
    OPENSSL_cleanse(v, sizeof(v));
    snprintf(v, sizeof(v), "%s=%s; Path=/; Max-Age=%s; SameSite=Strict%s", CSRF_COOKIE, csrf, age,
             tls ? "; Secure" : "");
    lg_http_set_header(req, "Set-Cookie", v);
}

static void done_create(struct lg_admin_call *c, const redisReply *reply)
{
    if (reply->type != REDIS_REPLY_INTEGER) {
        OPENSSL_cleanse(c->ids[0], sizeof(c->ids[0]));
        lg_admin_call_error(c, 401, "invalid_credentials", "the email or password is wrong");
        return;
    }
    cookies_set(c->adm, c->req, c->ids[0], c->session.csrf);
    OPENSSL_cleanse(c->ids[0], sizeof(c->ids[0]));
    lg_admin_call_json(c, 200,
                       json_pack("{s:s, s:s, s:s, s:s}", "email", c->session.email, "account_id",
                                 c->session.account, "role", c->session.role, "csrf",
                                 c->session.csrf));
}

void lg_admin_session_create(struct lg_admin_call *c, const char *email, const char *account,
                             const char *role)
{
    struct lg_admin_session *s = &c->session;
    if (email != s->email) snprintf(s->email, sizeof(s->email), "%s", email);
    snprintf(s->account, sizeof(s->account), "%s", account);
    snprintf(s->role, sizeof(s->role), "%s", role);
    /* the id itself waits in ids[0] for the cookie, wiped once sent */
    if (token_new(c->ids[0]) < 0 || token_new(s->csrf) < 0) {
        lg_admin_call_error(c, 500, "internal_error", "no randomness");
        return;
    }
    session_hash(c->ids[0], s->hash);
    lg_admin_call_reset(c);
    lg_admin_call_key(c, "session:%s", s->hash);
    lg_admin_call_key(c, "user:%s", s->email);
    lg_admin_call_key(c, "user:%s:sessions", s->email);
    lg_admin_call_key(c, "signin:email:%s", s->email);
    lg_admin_call_argf(c, "%s", s->hash);
    lg_admin_call_argf(c, "%s", s->email);
    lg_admin_call_argf(c, "%s", s->account);
    lg_admin_call_argf(c, "%s", s->role);
    lg_admin_call_argf(c, "%s", s->csrf);
    lg_admin_call_argf(c, "%lld", (long long)c->now_ms);
    lg_admin_call_argf(c, "%lld", SESSION_IDLE_MS);
    lg_admin_call_argf(c, "%lld", SESSION_ABS_MS);
    lg_admin_call_run(c, &script_create, done_create);
}

static void done_delete(struct lg_admin_call *c, const redisReply *reply)
{
    cookies_set(c->adm, c->req, "", "");
    lg_admin_call_json(c, 204, NULL);
}

void lg_admin_session_end(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                          const struct lg_admin_session *s)
{
    struct lg_admin_call *c = lg_admin_call_new(adm, req, rid);
    if (c == NULL) return;
    lg_admin_call_key(c, "session:%s", s->hash);
    lg_admin_call_key(c, "user:%s:sessions", s->email);
    lg_admin_call_argf(c, "%s", s->hash);
    lg_admin_call_run(c, &script_delete, done_delete);
}
