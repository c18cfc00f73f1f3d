/* Integration tests of the owner's console on the admin listener: console
 * users (CLI, scrypt in Redis), sign-in and sessions (cookies, Redis-backed
 * idle and absolute expiry, sign-out, user disable), the throttle of failed
 * sign-ins, CSRF on writes, every session kept to its own account by the
 * admin API, the audit's actor, and the built-in pages' headers. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <openssl/sha.h>

#include "itest.h"

#include "check_run.h"

struct sess {
    char id[80];      /* the lg_session cookie's value */
    char csrf[80];    /* the CSRF token */
    char cookie[200]; /* "Cookie: ..." */
};

/* Copies the value of cookie NAME from the Set-Cookie lines of HEADERS. */
static int set_cookie(const char *headers, const char *name, char *out, size_t outlen, char *attrs,
                      size_t attrslen)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "Set-Cookie: %s=", name);
    const char *p = headers ? strcasestr(headers, pat) : NULL;
    if (p == NULL) return -1;
    p += strlen(pat);
    size_t n = strcspn(p, ";\r\n");
    snprintf(out, outlen, "%.*s", (int)n, p);
    if (attrs) snprintf(attrs, attrslen, "%.*s", (int)strcspn(p, "\r\n"), p);
    return 0;
}

static char *admin_url(const char *path)
{
    static char buf[4][512];
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, 512, "%s%s", IT->lg[0].admin_url, path);
    return b;
}

/* One console request with session S (NULL: none); CSRF sends the token. */
static long console_req(const struct sess *s, int csrf, const char *method, const char *path,
                        const char *body, struct itest_resp *r)
{
    char tok[128];
    const char *h[4] = {"Content-Type: application/json", NULL, NULL, NULL};
    int n = 1;
    if (s) h[n++] = s->cookie;
    if (s && csrf) {
        snprintf(tok, sizeof(tok), "X-CSRF-Token: %s", s->csrf);
        h[n++] = tok;
    }
    memset(r, 0, sizeof(*r));
    ck_assert_int_eq(itest_http(method, admin_url(path), h, body, body ? strlen(body) : 0, NULL, r),
                     0);
    return r->status;
}

static long console_call(const struct sess *s, const char *method, const char *path,
                         const char *body, json_t **out)
{
    struct itest_resp r;
    long st = console_req(s, 1, method, path, body, &r);
    if (out) *out = r.body && r.body[0] ? json_loads(r.body, 0, NULL) : NULL;
    itest_resp_free(&r);
    return st;
}

static long sign_in(const char *email, const char *pw, struct sess *s, struct itest_resp *keep)
{
    char body[512];
    snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"%s\"}", email, pw);
    struct itest_resp r;
    long st = console_req(NULL, 0, "POST", "/console/api/sign-in", body, &r);
    if (st == 200 && s != NULL) {
        ck_assert_int_eq(set_cookie(r.headers, "lg_session", s->id, sizeof(s->id), NULL, 0), 0);
        ck_assert_int_eq(set_cookie(r.headers, "lg_csrf", s->csrf, sizeof(s->csrf), NULL, 0), 0);
        snprintf(s->cookie, sizeof(s->cookie), "Cookie: lg_session=%s; lg_csrf=%s", s->id, s->csrf);
    }
    if (keep)
        *keep = r;
    else
        itest_resp_free(&r);
    return st;
}

/* A user made with the CLI, with password PW. */
static void new_user(const char *acct, const char *email, const char *role, const char *pw)
{
    char *out = NULL, *err = NULL;
    char *file = strdup(itest_path(email));
    char text[256];
    snprintf(text, sizeof(text), "%s\n", pw);
    itest_file_write(file, text);
    int rc = itest_cli(&out, &err, "user", "create", "--account", acct, "--email", email, "--role",
                       role, "--password-file", file, NULL);
    ck_assert_msg(rc == 0, "user create: %d %s", rc, err);
    free(out);
    free(err);
    free(file);
}

static void setup(void)
{
    struct itest_opts o = {0};
    o.no_upstream = 1;
    itest_start(&o);
}

static void teardown(void) { itest_stop(); }

/* Users come from the CLI; passwords are kept only as scrypt; a session is
 * a cookie (HttpOnly, SameSite=Strict, Path=/) whose id Redis knows only by
 * its hash, with a 30-minute idle expiry. */
START_TEST(test_users_and_sign_in)
{
    char *acct = itest_new_account("Users");
    new_user(acct, "Owner@Example.com", "owner", "correct horse battery");
    char *out = NULL, *err = NULL;
    ck_assert_int_eq(itest_cli(&out, &err, "user", "list", "--account", acct, NULL), 0);
    ck_assert_msg(strstr(out, "owner@example.com") && strstr(out, "active"), "list: %s", out);
    free(out);
    free(err);
    /* named as it was written at creation: the same user */
    ck_assert_int_eq(itest_cli(&out, &err, "user", "show", "Owner@Example.com", NULL), 0);
    ck_assert_msg(strstr(out, "owner@example.com") != NULL, "show: %s", out);
    free(out);
    free(err);
    /* without a password file one is made and printed once */
    ck_assert_int_eq(itest_cli(&out, &err, "--json", "user", "create", "--account", acct, "--email",
                               "helper@example.com", "--role", "client_admin", NULL),
                     0);
    json_t *made = json_loads(out, 0, NULL);
    ck_assert_ptr_nonnull(made);
    char gen[64];
    snprintf(gen, sizeof(gen), "%s", itest_json_str(made, "password"));
    ck_assert_uint_ge(strlen(gen), 20);
    ck_assert_str_eq(itest_json_str(made, "role"), "client_admin");
    json_decref(made);
    free(out);
    free(err);
    /* and in text, once: one line holds it */
    ck_assert_int_eq(itest_cli(&out, &err, "user", "create", "--account", acct, "--email",
                               "third@example.com", NULL),
                     0);
    const char *line = strstr(out, "password:");
    ck_assert_msg(line != NULL && strstr(line + 1, "password:") == NULL, "create: %s", out);
    free(out);
    free(err);

    redisContext *rc = itest_redis();
    redisReply *h = itest_redis_cmd(rc, "HGET lg:user:owner@example.com password");
    ck_assert_int_eq(h->type, REDIS_REPLY_STRING);
    ck_assert_msg(strncmp(h->str, "scrypt$15$8$1$", 14) == 0, "stored %s", h->str);
    ck_assert_ptr_null(strstr(h->str, "correct horse"));
    freeReplyObject(h);

    struct sess s;
    struct itest_resp r;
    ck_assert_int_eq(sign_in("owner@example.com", "correct horse battery", &s, &r), 200);
    char attrs[512];
    ck_assert_int_eq(set_cookie(r.headers, "lg_session", s.id, sizeof(s.id), attrs, sizeof(attrs)),
                     0);
    ck_assert_msg(strstr(attrs, "HttpOnly") && strstr(attrs, "SameSite=Strict") &&
                      strstr(attrs, "Path=/") && !strstr(attrs, "Secure"),
                  "cookie %s", attrs);
    json_t *me = json_loads(r.body, 0, NULL);
    ck_assert_str_eq(itest_json_str(me, "account_id"), acct);
    ck_assert_str_eq(itest_json_str(me, "role"), "owner");
    json_decref(me);
    itest_resp_free(&r);
    ck_assert_int_eq(sign_in("helper@example.com", gen, NULL, NULL), 200);
    /* an email that is no user's is only wrong, even one naming another
     * Redis key of a user who has a session */
    ck_assert_int_eq(sign_in("owner@example.com:sessions", "x", NULL, NULL), 401);

    /* Redis holds sha256(id), never the id */
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)s.id, strlen(s.id), d);
    char hash[65];
    for (int i = 0; i < 32; i++) snprintf(hash + 2 * i, 3, "%02x", d[i]);
    redisReply *t = itest_redis_cmd(rc, "PTTL lg:session:%s", hash);
    ck_assert_msg(t->integer > 29 * 60 * 1000 && t->integer <= 30 * 60 * 1000, "pttl %lld",
                  t->integer);
    freeReplyObject(t);
    redisReply *k = itest_redis_cmd(rc, "KEYS *%s*", s.id);
    ck_assert_uint_eq(k->elements, 0);
    freeReplyObject(k);

    /* the session reaches the admin API of its account */
    json_t *j = NULL;
    char path[160];
    snprintf(path, sizeof(path), "/admin/v1/accounts/%s/keys", acct);
    ck_assert_int_eq(console_call(&s, "GET", path, NULL, &j), 200);
    json_decref(j);
    ck_assert_int_eq(console_call(&s, "GET", "/console/api/session", NULL, &j), 200);
    ck_assert_str_eq(itest_json_str(j, "email"), "owner@example.com");
    json_decref(j);

    /* the absolute expiry: a session created 12 hours ago is over */
    redisReply *x = itest_redis_cmd(rc, "HSET lg:session:%s created_ms 1000", hash);
    freeReplyObject(x);
    ck_assert_int_eq(console_call(&s, "GET", path, NULL, NULL), 401);
    redisFree(rc);
    free(acct);
}
END_TEST

/* Wrong passwords and unknown emails answer the same 401; after 5 failures
 * for one email every try is 429 with Retry-After, even the right password;
 * after 20 from one address, any email. */
START_TEST(test_throttle)
{
    char *acct = itest_new_account("Throttle");
    new_user(acct, "t@example.com", "owner", "the right password");
    struct itest_resp a, b;
    ck_assert_int_eq(sign_in("t@example.com", "wrong password!", NULL, &a), 401);
    ck_assert_int_eq(sign_in("nobody@example.com", "wrong password!", NULL, &b), 401);
    json_t *ja = json_loads(a.body, 0, NULL), *jb = json_loads(b.body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(ja, "error"), "message")),
                     json_string_value(json_object_get(json_object_get(jb, "error"), "message")));
    json_decref(ja);
    json_decref(jb);
    itest_resp_free(&a);
    itest_resp_free(&b);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(sign_in("t@example.com", "wrong!!!!", NULL, NULL), 401);
    struct itest_resp r;
    ck_assert_int_eq(sign_in("t@example.com", "the right password", NULL, &r), 429);
    char *ra = itest_resp_header(&r, "Retry-After");
    ck_assert_ptr_nonnull(ra);
    ck_assert_int_gt(atoi(ra), 0);
    ck_assert_int_le(atoi(ra), 900);
    free(ra);
    itest_resp_free(&r);
    /* per address: 20 failures in all from here (6 so far) */
    for (int i = 0; i < 14; i++) {
        char email[64];
        snprintf(email, sizeof(email), "guess%d@example.com", i);
        ck_assert_int_eq(sign_in(email, "wrong!!!!", NULL, NULL), 401);
    }
    ck_assert_int_eq(sign_in("fresh@example.com", "wrong!!!!", NULL, NULL), 429);
    /* the next tests sign in from this address too */
    redisContext *rc = itest_redis();
    redisReply *k = itest_redis_cmd(rc, "KEYS lg:signin:*");
    for (size_t i = 0; i < k->elements; i++)
        freeReplyObject(itest_redis_cmd(rc, "DEL %s", k->element[i]->str));
    freeReplyObject(k);
    redisFree(rc);
    free(acct);
}
END_TEST

/* Writes without the session's CSRF token are refused; sign-out and
 * user disable end a session at once. */
START_TEST(test_csrf_and_ending)
{
    char *acct = itest_new_account("Csrf");
    new_user(acct, "c@example.com", "owner", "csrf password 1");
    struct sess s;
    ck_assert_int_eq(sign_in("c@example.com", "csrf password 1", &s, NULL), 200);
    char path[160];
    snprintf(path, sizeof(path), "/admin/v1/accounts/%s/keys", acct);
    const char *body = "{\"name\":\"Call Center\",\"all_facilities\":true}";
    struct itest_resp r;
    ck_assert_int_eq(console_req(&s, 0, "POST", path, body, &r), 403);
    ck_assert_ptr_nonnull(strstr(r.body, "csrf"));
    itest_resp_free(&r);
    struct sess wrong = s;
    snprintf(wrong.csrf, sizeof(wrong.csrf), "%064d", 0);
    ck_assert_int_eq(console_call(&wrong, "POST", path, body, NULL), 403);
    ck_assert_int_eq(console_call(&s, "POST", path, body, NULL), 201);
    ck_assert_int_eq(console_req(&s, 0, "POST", "/console/api/sign-out", "", &r), 403);
    itest_resp_free(&r);
    ck_assert_int_eq(console_call(&s, "POST", "/console/api/sign-out", "", NULL), 204);
    ck_assert_int_eq(console_call(&s, "GET", path, NULL, NULL), 401);

    ck_assert_int_eq(sign_in("c@example.com", "csrf password 1", &s, NULL), 200);
    ck_assert_int_eq(console_call(&s, "GET", path, NULL, NULL), 200);
    char *out = NULL, *err = NULL;
    ck_assert_int_eq(itest_cli(&out, &err, "user", "disable", "c@example.com", NULL), 0);
    free(out);
    free(err);
    ck_assert_int_eq(console_call(&s, "GET", path, NULL, NULL), 401);
    ck_assert_int_eq(sign_in("c@example.com", "csrf password 1", NULL, NULL), 401);
    ck_assert_int_eq(itest_cli(&out, &err, "user", "enable", "c@example.com", NULL), 0);
    free(out);
    free(err);
    ck_assert_int_eq(sign_in("c@example.com", "csrf password 1", &s, NULL), 200);
    free(acct);
}
END_TEST

/* A session reaches only its own account, through the admin API itself:
 * another account's keys, facilities and audit are 404, routes outside the
 * console 403; users are for owners only. The audit says who acted. */
START_TEST(test_accounts_apart_and_actor)
{
    char *a = itest_new_account("Alpha"), *b = itest_new_account("Beta");
    char *fa = itest_new_facility(a, "Alpha One");
    new_user(a, "alpha@example.com", "owner", "alpha password");
    new_user(b, "beta@example.com", "owner", "beta password!");
    new_user(b, "clerk@example.com", "client_admin", "clerk password");
    struct sess sa, sb, sc;
    ck_assert_int_eq(sign_in("alpha@example.com", "alpha password", &sa, NULL), 200);
    ck_assert_int_eq(sign_in("beta@example.com", "beta password!", &sb, NULL), 200);
    ck_assert_int_eq(sign_in("clerk@example.com", "clerk password", &sc, NULL), 200);

    char path[200];
    snprintf(path, sizeof(path), "/admin/v1/accounts/%s/keys", a);
    json_t *k = NULL;
    ck_assert_int_eq(
        console_call(&sa, "POST", path, "{\"name\":\"Call Center\",\"all_facilities\":true}", &k),
        201);
    char kid[64];
    snprintf(kid, sizeof(kid), "%s", itest_json_str(k, "key_id"));
    json_decref(k);

    /* Beta's owner: nothing of Alpha's */
    ck_assert_int_eq(console_call(&sb, "GET", path, NULL, NULL), 404);
    ck_assert_int_eq(
        console_call(&sb, "POST", path, "{\"name\":\"x\",\"all_facilities\":true}", NULL), 404);
    char kp[128];
    const char *verbs[][2] = {{"GET", ""},          {"PATCH", ""},       {"POST", "/reveal"},
                              {"POST", "/disable"}, {"POST", "/rotate"}, {"DELETE", ""}};
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        snprintf(kp, sizeof(kp), "/admin/v1/keys/%s%s", kid, verbs[i][1]);
        long st = console_call(&sb, verbs[i][0], kp,
                               strcmp(verbs[i][0], "PATCH") == 0  ? "{\"name\":\"mine\"}"
                               : strcmp(verbs[i][0], "POST") == 0 ? ""
                                                                  : NULL,
                               NULL);
        ck_assert_msg(st == 404, "%s %s: %ld", verbs[i][0], kp, st);
    }
    snprintf(kp, sizeof(kp), "/admin/v1/facilities/%s", fa);
    ck_assert_int_eq(console_call(&sb, "PATCH", kp, "{\"included\":false}", NULL), 404);
    ck_assert_int_eq(console_call(&sb, "GET", kp, NULL, NULL), 404);
    snprintf(kp, sizeof(kp), "/admin/v1/audit?account=%s", a);
    ck_assert_int_eq(console_call(&sb, "GET", kp, NULL, NULL), 404);
    ck_assert_int_eq(console_call(&sb, "GET", "/admin/v1/users/alpha@example.com", NULL, NULL),
                     404);
    ck_assert_int_eq(console_call(&sb, "GET", "/admin/v1/accounts", NULL, NULL), 403);
    ck_assert_int_eq(console_call(&sb, "POST", "/admin/v1/accounts", "{\"name\":\"n\"}", NULL),
                     403);
    ck_assert_int_eq(console_call(&sb, "POST", "/admin/v1/feed-keys", "{\"name\":\"n\"}", NULL),
                     403);
    /* the clerk manages keys but not users */
    snprintf(kp, sizeof(kp), "/admin/v1/accounts/%s/users", b);
    ck_assert_int_eq(console_call(&sc, "GET", kp, NULL, NULL), 403);
    ck_assert_int_eq(console_call(&sb, "GET", kp, NULL, NULL), 200);
    /* the key is untouched */
    long st;
    snprintf(kp, sizeof(kp), "/admin/v1/keys/%s", kid);
    k = itest_admin("GET", kp, NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(itest_json_str(k, "name"), "Call Center");
    ck_assert_str_eq(itest_json_str(k, "status"), "active");
    json_decref(k);

    /* Alpha's owner reveals and locks it; the token unlocks it */
    snprintf(kp, sizeof(kp), "/admin/v1/keys/%s/reveal", kid);
    ck_assert_int_eq(console_call(&sa, "POST", kp, "", NULL), 200);
    snprintf(kp, sizeof(kp), "/admin/v1/keys/%s/disable", kid);
    ck_assert_int_eq(console_call(&sa, "POST", kp, "", NULL), 200);
    snprintf(kp, sizeof(kp), "/admin/v1/keys/%s/enable", kid);
    json_decref(itest_admin("POST", kp, "", &st));
    ck_assert_int_eq(st, 200);
    /* the console user's own audit view: only Alpha's entries, with actors */
    json_t *au = NULL;
    ck_assert_int_eq(console_call(&sa, "GET", "/admin/v1/audit?limit=50", NULL, &au), 200);
    const char *want[][2] = {
        {"key.enabled", "admin-token"},        {"key.disabled", "alpha@example.com"},
        {"key.revealed", "alpha@example.com"}, {"key.created", "alpha@example.com"},
        {"facility.created", "admin-token"},   {"account.created", "admin-token"}};
    json_t *entries = json_object_get(au, "entries");
    ck_assert_uint_eq(json_array_size(entries), 6);
    for (size_t i = 0; i < 6; i++) {
        json_t *e = json_array_get(entries, i);
        ck_assert_str_eq(itest_json_str(e, "action"), want[i][0]);
        ck_assert_str_eq(itest_json_str(e, "actor"), want[i][1]);
        ck_assert_str_eq(itest_json_str(e, "account_id"), a);
    }
    json_decref(au);
    free(a);
    free(b);
    free(fa);
}
END_TEST

/* The pages: built in, no inline script allowed, no framing. */
START_TEST(test_pages)
{
    struct itest_resp r;
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(itest_http("GET", admin_url("/console/"), NULL, NULL, 0, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    char *csp = itest_resp_header(&r, "Content-Security-Policy");
    char *xfo = itest_resp_header(&r, "X-Frame-Options");
    char *ct = itest_resp_header(&r, "Content-Type");
    ck_assert_ptr_nonnull(csp);
    ck_assert_msg(strstr(csp, "script-src 'self'") && !strstr(csp, "unsafe-inline") &&
                      strstr(csp, "frame-ancestors 'none'"),
                  "csp %s", csp);
    ck_assert_str_eq(xfo, "DENY");
    const char *once = strcasestr(r.headers, "\nX-Frame-Options:");
    ck_assert_msg(once != NULL && strcasestr(once + 1, "\nX-Frame-Options:") == NULL,
                  "X-Frame-Options sent more than once");
    ck_assert_ptr_nonnull(strstr(ct, "text/html"));
    ck_assert_ptr_nonnull(strstr(r.body, "<html"));
    free(csp);
    free(xfo);
    free(ct);
    itest_resp_free(&r);
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(itest_http("GET", admin_url("/console/nope.js"), NULL, NULL, 0, NULL, &r), 0);
    ck_assert_int_eq(r.status, 404);
    itest_resp_free(&r);
    /* a sign-in from another site's form, or naming another origin, is refused */
    const char *form[] = {"Content-Type: text/plain", NULL};
    const char *other[] = {"Content-Type: application/json", "Origin: http://evil.example", NULL};
    const char *body = "{\"email\":\"a@b.c\",\"password\":\"whatever1\"}";
    const char **hs[] = {form, other};
    for (int i = 0; i < 2; i++) {
        memset(&r, 0, sizeof(r));
        ck_assert_int_eq(itest_http("POST", admin_url("/console/api/sign-in"), hs[i], body,
                                    strlen(body), NULL, &r),
                         0);
        ck_assert_int_eq(r.status, 403);
        itest_resp_free(&r);
    }
    /* no session, no admin API */
    ck_assert_int_eq(console_call(NULL, "GET", "/admin/v1/accounts", NULL, NULL), 401);
    struct sess bogus;
    snprintf(bogus.cookie, sizeof(bogus.cookie), "Cookie: lg_session=%064d", 7);
    snprintf(bogus.csrf, sizeof(bogus.csrf), "x");
    ck_assert_int_eq(console_call(&bogus, "GET", "/admin/v1/accounts", NULL, NULL), 401);
}
END_TEST

/* On a TLS admin listener both cookies are Secure. */
START_TEST(test_secure_cookie_on_tls)
{
    char *acct = itest_new_account("Tls");
    new_user(acct, "tls@example.com", "owner", "tls password 1");
    struct itest_opts o = {0};
    o.no_upstream = 1;
    o.admin_tls = 1;
    int i = itest_lg_start(&o);
    char url[160];
    snprintf(url, sizeof(url), "%s/console/api/sign-in", IT->lg[i].admin_url);
    ck_assert_int_eq(strncmp(url, "https://", 8), 0);
    const char *h[] = {"Content-Type: application/json", NULL};
    const char *body = "{\"email\":\"tls@example.com\",\"password\":\"tls password 1\"}";
    struct itest_resp r;
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(itest_http("POST", url, h, body, strlen(body), NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    char v[128], attrs[512];
    ck_assert_int_eq(set_cookie(r.headers, "lg_session", v, sizeof(v), attrs, sizeof(attrs)), 0);
    ck_assert_msg(strstr(attrs, "; Secure") && strstr(attrs, "HttpOnly"), "cookie %s", attrs);
    ck_assert_int_eq(set_cookie(r.headers, "lg_csrf", v, sizeof(v), attrs, sizeof(attrs)), 0);
    ck_assert_msg(strstr(attrs, "; Secure") && !strstr(attrs, "HttpOnly"), "cookie %s", attrs);
    itest_resp_free(&r);
    ck_assert_int_eq(itest_lg_stop(i), 0);
    free(acct);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("console");
    TCase *tc = tcase_create("console");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_users_and_sign_in);
    tcase_add_test(tc, test_throttle);
    tcase_add_test(tc, test_csrf_and_ending);
    tcase_add_test(tc, test_accounts_apart_and_actor);
    tcase_add_test(tc, test_pages);
    tcase_add_test(tc, test_secure_cookie_on_tls);
    suite_add_tcase(s, tc);
    return itest_exit_status(check_run(s));
}
