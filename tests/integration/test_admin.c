/* Integration tests of the admin API and lockgate-admin against the real
 * lockgate, a real redis-server and the harness of itest.h: the key and
 * facility lifecycles through the CLI, validation errors, one event per
 * write (stream and pub/sub), no secret in clear anywhere in Redis, the
 * audit trail, config checking, and the answers while Redis is down. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "itest.h"
#include "lockgate/cred.h"
#include "lockgate/util.h"

/* ---- helpers ---- */

/* Runs lockgate-admin --json ARGS..., expects exit 0, returns the parsed
 * stdout (NULL when it printed nothing). */
static json_t *cli_json_argv(const char *const *args)
{
    const char *full[64];
    int n = 0;
    full[n++] = "--json";
    for (int i = 0; args[i] != NULL && n < 63; i++) full[n++] = args[i];
    full[n] = NULL;
    char *out = NULL, *err = NULL;
    int rc = itest_cli_argv(&out, &err, full);
    ck_assert_msg(rc == 0, "lockgate-admin %s %s failed (%d): %s", args[0], args[1] ? args[1] : "",
                  rc, err);
    json_error_t jerr;
    json_t *j = out[0] ? json_loads(out, 0, &jerr) : NULL;
    ck_assert_msg(out[0] == '\0' || j != NULL, "not JSON: %s", out);
    free(out);
    free(err);
    return j;
}

#define cli_json(...) cli_json_argv((const char *const[]){__VA_ARGS__, NULL})

/* Runs lockgate-admin ARGS... and returns its exit status, OUT and ERR. */
#define cli_run(out, err, ...) itest_cli(out, err, __VA_ARGS__, NULL)

static void expect_error(json_t *j, long status, long want_status, const char *code)
{
    ck_assert_msg(status == want_status, "status %ld, want %ld", status, want_status);
    ck_assert_msg(j != NULL, "no JSON error body");
    json_t *e = json_object_get(j, "error");
    ck_assert_msg(json_is_object(e), "no error object");
    ck_assert_str_eq(itest_json_str(e, "code"), code);
    ck_assert(strlen(itest_json_str(e, "message")) > 0);
    ck_assert_int_eq(strlen(itest_json_str(e, "request_id")), 16);
}

static const char *error_message(json_t *j)
{
    return itest_json_str(json_object_get(j, "error"), "message");
}

/* Creates an all-facilities key; returns it (new reference, with secret). */
static json_t *new_key(const char *acct, const char *name)
{
    long st;
    char path[128];
    snprintf(path, sizeof(path), "/admin/v1/accounts/%s/keys", acct);
    json_t *j = itest_adminf(&st, "POST", path, "{\"name\":\"%s\",\"all_facilities\":true}", name);
    ck_assert_int_eq(st, 201);
    return j;
}

static int json_array_has(const json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach (arr, i, v)
        if (strcmp(json_string_value(v), s) == 0) return 1;
    return 0;
}

static char *last_stream_id(redisContext *rc, const char *key)
{
    redisReply *r = itest_redis_cmd(rc, "XREVRANGE %s + - COUNT 1", key);
    char *id = strdup(
        r->type == REDIS_REPLY_ARRAY && r->elements == 1 ? r->element[0]->element[0]->str : "0-0");
    freeReplyObject(r);
    return id;
}

static json_t *stream_after(redisContext *rc, const char *key, const char *after)
{
    char start[64];
    snprintf(start, sizeof(start), "(%s", after);
    return itest_stream(rc, key, start);
}

/* ---- health, auth, routing ---- */

START_TEST(test_health)
{
    char url[128];
    struct itest_resp r;
    snprintf(url, sizeof(url), "%s/healthz", IT->lg[0].admin_url);
    ck_assert_int_eq(itest_http("GET", url, NULL, NULL, 0, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"status\":\"ok\"}");
    char *rid = itest_resp_header(&r, "X-Request-Id");
    char *ct = itest_resp_header(&r, "Content-Type");
    ck_assert_ptr_nonnull(rid);
    ck_assert_int_eq(strlen(rid), 16);
    ck_assert_ptr_nonnull(ct);
    ck_assert(strncmp(ct, "application/json", 16) == 0);
    free(rid);
    free(ct);
    itest_resp_free(&r);

    snprintf(url, sizeof(url), "%s/readyz", IT->lg[0].admin_url);
    ck_assert_int_eq(itest_http("GET", url, NULL, NULL, 0, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    json_t *j = json_loads(r.body, 0, NULL);
    ck_assert_str_eq(itest_json_str(j, "status"), "ready");
    ck_assert_str_eq(itest_json_str(j, "redis"), "up");
    json_decref(j);
    itest_resp_free(&r);

    snprintf(url, sizeof(url), "%s/metrics", IT->lg[0].admin_url);
    ck_assert_int_eq(itest_http("GET", url, NULL, NULL, 0, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "lockgate_admin_requests_total{status=\"200\"}"));
    ck_assert_ptr_nonnull(strstr(r.body, "lockgate_redis_up 1"));
    itest_resp_free(&r);

    snprintf(url, sizeof(url), "%s/healthz", IT->lg[0].admin_url);
    ck_assert_int_eq(itest_http("POST", url, NULL, "", 0, NULL, &r), 0);
    ck_assert_int_eq(r.status, 405);
    itest_resp_free(&r);
}
END_TEST

START_TEST(test_auth)
{
    char url[128];
    struct itest_resp r;
    snprintf(url, sizeof(url), "%s/admin/v1/accounts", IT->lg[0].admin_url);
    const char *none[] = {NULL};
    const char *wrong[] = {"Authorization: Bearer itest-admin-token-5f2c9a7e41d8b3c7", NULL};
    const char *basic[] = {"Authorization: Basic aXRlc3Q6eA==", NULL};
    const char *prefix[] = {"Authorization: Bearer itest-admin-token", NULL};
    const char *const *cases[] = {none, wrong, basic, prefix};
    for (size_t i = 0; i < 4; i++) {
        ck_assert_int_eq(itest_http("GET", url, cases[i], NULL, 0, NULL, &r), 0);
        json_t *j = json_loads(r.body, 0, NULL);
        expect_error(j, r.status, 401, "unauthorized");
        char *www = itest_resp_header(&r, "WWW-Authenticate");
        ck_assert_ptr_nonnull(www);
        ck_assert(strncmp(www, "Bearer", 6) == 0);
        char *rid = itest_resp_header(&r, "X-Request-Id");
        ck_assert_ptr_nonnull(rid);
        ck_assert_str_eq(rid, itest_json_str(json_object_get(j, "error"), "request_id"));
        free(rid);
        free(www);
        json_decref(j);
        itest_resp_free(&r);
    }
    /* the right token with extra whitespace and a lower-case scheme */
    char auth[128];
    snprintf(auth, sizeof(auth), "Authorization: bearer   %s  ", IT->token);
    const char *ok[] = {auth, NULL};
    ck_assert_int_eq(itest_http("GET", url, ok, NULL, 0, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    itest_resp_free(&r);

    /* the CLI with a wrong token file: exit 1 and the code on stderr */
    const char *bad_token = itest_path("wrong.token");
    itest_file_write(bad_token, "not-the-admin-token-at-all\n");
    char *out = NULL, *err = NULL;
    int rc = cli_run(&out, &err, "--token-file", bad_token, "account", "list");
    ck_assert_int_eq(rc, 1);
    ck_assert_ptr_nonnull(strstr(err, "unauthorized"));
    free(out);
    free(err);

    /* unknown routes, outside and inside the API */
    long st;
    json_t *j = itest_admin("GET", "/admin/v2/accounts", NULL, &st);
    expect_error(j, st, 404, "not_found");
    json_decref(j);
    j = itest_admin("GET", "/admin/v1/nothing", NULL, &st);
    expect_error(j, st, 404, "not_found");
    json_decref(j);
    j = itest_admin("PUT", "/admin/v1/accounts", "{}", &st);
    expect_error(j, st, 405, "method_not_allowed");
    json_decref(j);
}
END_TEST

/* ---- lifecycles through lockgate-admin ---- */

START_TEST(test_key_lifecycle_cli)
{
    json_t *a = cli_json("account", "create", "--name", "Call Center Co");
    char *acct = strdup(itest_json_str(a, "account_id"));
    ck_assert(lg_id_valid("acct_", acct, strlen(acct)));
    json_decref(a);
    json_t *f;
    char *fac[3];
    const char *names[3] = {"North", "South", "East"};
    for (int i = 0; i < 3; i++) {
        f = cli_json("facility", "create", "--account", acct, "--name", names[i]);
        fac[i] = strdup(itest_json_str(f, "facility_id"));
        ck_assert(json_is_true(json_object_get(f, "included")));
        json_decref(f);
    }

    /* create on all facilities, and on two */
    json_t *k1 =
        cli_json("key", "create", "--account", acct, "--name", "All of them", "--all-facilities");
    ck_assert(json_is_true(json_object_get(k1, "all_facilities")));
    ck_assert_int_eq(json_array_size(json_object_get(k1, "facilities")), 0);
    ck_assert_str_eq(itest_json_str(k1, "status"), "active");
    ck_assert_str_eq(itest_json_str(k1, "role"), "api");
    const char *k1id = itest_json_str(k1, "key_id"), *s1 = itest_json_str(k1, "secret");
    ck_assert(lg_cred_key_valid(k1id, strlen(k1id)));
    ck_assert(lg_cred_secret_valid(s1, strlen(s1)));

    json_t *k2 = cli_json("key", "create", "--account", acct, "--name", "Two", "--facility", fac[1],
                          "--facility", fac[0], "--rate", "7", "--burst", "9", "--allow-cidr",
                          "10.0.0.0/8", "--allow-cidr", "2001:db8::/32");
    const char *k2id = itest_json_str(k2, "key_id"), *s2 = itest_json_str(k2, "secret");
    json_t *k2f = json_object_get(k2, "facilities");
    ck_assert_int_eq(json_array_size(k2f), 2);
    ck_assert(json_is_false(json_object_get(k2, "all_facilities")));
    /* sorted ids */
    ck_assert(strcmp(json_string_value(json_array_get(k2f, 0)),
                     json_string_value(json_array_get(k2f, 1))) < 0);
    ck_assert(json_array_has(k2f, fac[0]) && json_array_has(k2f, fac[1]));
    ck_assert_int_eq(json_integer_value(json_object_get(k2, "rate_per_sec")), 7);
    ck_assert_int_eq(json_integer_value(json_object_get(k2, "burst")), 9);
    ck_assert_int_eq(json_array_size(json_object_get(k2, "allowed_cidrs")), 2);
    ck_assert(json_is_null(json_object_get(k1, "rate_per_sec")));
    ck_assert(json_is_null(json_object_get(k1, "expires_at")));
    ck_assert(json_is_null(json_object_get(k1, "last_used_at")));

    /* list: both keys, never a secret */
    json_t *l = cli_json("key", "list", "--account", acct);
    json_t *keys = json_object_get(l, "keys");
    ck_assert_int_eq(json_array_size(keys), 2);
    char *dump = json_dumps(l, 0);
    ck_assert_ptr_null(strstr(dump, "secret"));
    ck_assert_ptr_null(strstr(dump, s1));
    ck_assert_ptr_null(strstr(dump, s2));
    free(dump);
    json_decref(l);
    char *out = NULL, *err = NULL;
    ck_assert_int_eq(cli_run(&out, &err, "key", "list", "--account", acct), 0);
    ck_assert_ptr_nonnull(strstr(out, k1id));
    ck_assert_ptr_nonnull(strstr(out, k2id));
    ck_assert_ptr_null(strstr(out, s1));
    free(out);
    free(err);

    /* show --reveal gives back the secret of creation (JSON and human) */
    json_t *shown = cli_json("key", "show", k2id, "--reveal");
    ck_assert_str_eq(itest_json_str(shown, "secret"), s2);
    ck_assert_str_eq(itest_json_str(shown, "key_id"), k2id);
    json_decref(shown);
    ck_assert_int_eq(cli_run(&out, &err, "key", "show", k1id, "--reveal"), 0);
    ck_assert_ptr_nonnull(strstr(out, s1));
    free(out);
    free(err);
    shown = cli_json("key", "show", k1id);
    ck_assert_ptr_null(json_object_get(shown, "secret"));
    json_decref(shown);

    /* update the scope: a new list, then all facilities */
    json_t *u = cli_json("key", "update", k2id, "--facility", fac[2], "--name", "Two renamed");
    ck_assert_int_eq(json_array_size(json_object_get(u, "facilities")), 1);
    ck_assert(json_array_has(json_object_get(u, "facilities"), fac[2]));
    ck_assert_str_eq(itest_json_str(u, "name"), "Two renamed");
    ck_assert_int_eq(json_integer_value(json_object_get(u, "rate_per_sec")), 7);
    json_decref(u);
    u = cli_json("key", "update", k2id, "--all-facilities", "--rate", "default");
    ck_assert(json_is_true(json_object_get(u, "all_facilities")));
    ck_assert_int_eq(json_array_size(json_object_get(u, "facilities")), 0);
    ck_assert(json_is_null(json_object_get(u, "rate_per_sec")));
    json_decref(u);

    /* disable / enable and their aliases */
    u = cli_json("key", "disable", k2id);
    ck_assert_str_eq(itest_json_str(u, "status"), "disabled");
    json_decref(u);
    u = cli_json("key", "enable", k2id);
    ck_assert_str_eq(itest_json_str(u, "status"), "active");
    json_decref(u);
    u = cli_json("key", "lock", k2id);
    ck_assert_str_eq(itest_json_str(u, "status"), "disabled");
    json_decref(u);
    u = cli_json("key", "unlock", k2id);
    ck_assert_str_eq(itest_json_str(u, "status"), "active");
    json_decref(u);

    /* rotate without grace: a new key and secret, the old one disabled */
    json_t *k3 = cli_json("key", "rotate", k1id);
    const char *k3id = itest_json_str(k3, "key_id"), *s3 = itest_json_str(k3, "secret");
    ck_assert_str_ne(k3id, k1id);
    ck_assert_str_ne(s3, s1);
    ck_assert_str_eq(itest_json_str(k3, "replaces"), k1id);
    ck_assert_str_eq(itest_json_str(k3, "name"), "All of them");
    ck_assert(json_is_true(json_object_get(k3, "all_facilities")));
    ck_assert_str_eq(itest_json_str(k3, "status"), "active");
    shown = cli_json("key", "show", k1id);
    ck_assert_str_eq(itest_json_str(shown, "status"), "disabled");
    json_decref(shown);
    shown = cli_json("key", "show", k3id, "--reveal");
    ck_assert_str_eq(itest_json_str(shown, "secret"), s3);
    json_decref(shown);

    /* rotate with a grace: the old key stays active and expires later */
    int64_t before = lg_now_ms();
    json_t *k4 = cli_json("key", "rotate", k2id, "--grace", "3600");
    const char *k4id = itest_json_str(k4, "key_id");
    ck_assert_str_eq(itest_json_str(k4, "replaces"), k2id);
    ck_assert(json_is_true(json_object_get(k4, "all_facilities")));
    shown = cli_json("key", "show", k2id);
    ck_assert_str_eq(itest_json_str(shown, "status"), "active");
    int64_t exp;
    ck_assert_int_eq(lg_time_parse(itest_json_str(shown, "expires_at"), &exp), 0);
    ck_assert(exp >= before + 3600 * 1000);
    ck_assert(exp <= lg_now_ms() + 3600 * 1000);
    json_decref(shown);
    /* the new key does not inherit the grace expiry */
    ck_assert(json_is_null(json_object_get(k4, "expires_at")));

    /* delete */
    ck_assert_int_eq(cli_run(&out, &err, "key", "delete", k4id), 0);
    free(out);
    free(err);
    ck_assert_int_eq(cli_run(&out, &err, "key", "show", k4id), 1);
    ck_assert_ptr_nonnull(strstr(err, "not_found"));
    free(out);
    free(err);
    l = cli_json("key", "list", "--account", acct);
    ck_assert_int_eq(json_array_size(json_object_get(l, "keys")), 3);
    json_decref(l);

    /* feed keys */
    json_t *fk = cli_json("feed-key", "create", "--name", "OverlockRelease");
    ck_assert_str_eq(itest_json_str(fk, "role"), "feed");
    ck_assert_str_eq(itest_json_str(fk, "account_id"), "");
    ck_assert(json_is_false(json_object_get(fk, "all_facilities")));
    ck_assert_int_eq(strlen(itest_json_str(fk, "secret")), LG_SECRET_LEN);
    l = cli_json("feed-key", "list");
    int found = 0;
    size_t i;
    json_t *v;
    json_array_foreach (json_object_get(l, "keys"), i, v)
        found |= strcmp(itest_json_str(v, "key_id"), itest_json_str(fk, "key_id")) == 0;
    ck_assert(found);
    json_decref(l);
    shown = cli_json("key", "show", itest_json_str(fk, "key_id"), "--reveal");
    ck_assert_str_eq(itest_json_str(shown, "secret"), itest_json_str(fk, "secret"));
    json_decref(shown);
    json_decref(fk);

    json_decref(k1);
    json_decref(k2);
    json_decref(k3);
    json_decref(k4);
    for (int n = 0; n < 3; n++) free(fac[n]);
    free(acct);
}
END_TEST

START_TEST(test_facility_lifecycle_cli)
{
    json_t *a = cli_json("account", "create", "--name", "Storage Inc");
    char *acct = strdup(itest_json_str(a, "account_id"));
    json_decref(a);
    json_t *f1 = cli_json("facility", "create", "--account", acct, "--name", "Main Street");
    json_t *f2 =
        cli_json("facility", "create", "--account", acct, "--name", "Harbor", "--id", "imported-7");
    const char *fid1 = itest_json_str(f1, "facility_id"), *fid2 = itest_json_str(f2, "facility_id");
    ck_assert(lg_id_valid("fac_", fid1, strlen(fid1)));
    ck_assert_str_eq(fid2, "imported-7");
    ck_assert_str_eq(itest_json_str(f1, "account_id"), acct);
    ck_assert_str_eq(itest_json_str(f1, "created_at"), itest_json_str(f1, "updated_at"));

    /* an imported id that exists: 409 */
    char *out = NULL, *err = NULL;
    ck_assert_int_eq(cli_run(&out, &err, "facility", "create", "--account", acct, "--name", "X",
                             "--id", "imported-7"),
                     1);
    ck_assert_ptr_nonnull(strstr(err, "conflict"));
    free(out);
    free(err);

    json_t *l = cli_json("facility", "list", "--account", acct);
    json_t *facs = json_object_get(l, "facilities");
    ck_assert_int_eq(json_array_size(facs), 2);
    ck_assert_str_eq(itest_json_str(json_array_get(facs, 0), "facility_id"), fid1);
    json_decref(l);
    ck_assert_int_eq(cli_run(&out, &err, "facility", "list", "--account", acct), 0);
    ck_assert_ptr_nonnull(strstr(out, "Harbor"));
    ck_assert_ptr_nonnull(strstr(out, fid1));
    free(out);
    free(err);

    json_t *s = cli_json("facility", "show", fid2);
    ck_assert_str_eq(itest_json_str(s, "name"), "Harbor");
    json_decref(s);
    s = cli_json("facility", "rename", fid2, "--name", "Harbor East");
    ck_assert_str_eq(itest_json_str(s, "name"), "Harbor East");
    ck_assert(json_is_true(json_object_get(s, "included")));
    json_decref(s);
    s = cli_json("facility", "exclude", fid2);
    ck_assert(json_is_false(json_object_get(s, "included")));
    ck_assert_str_eq(itest_json_str(s, "name"), "Harbor East");
    json_decref(s);
    s = cli_json("facility", "show", fid2);
    ck_assert(json_is_false(json_object_get(s, "included")));
    json_decref(s);
    s = cli_json("facility", "include", fid2);
    ck_assert(json_is_true(json_object_get(s, "included")));
    json_decref(s);

    /* deleting a facility removes it from every key's list */
    json_t *k1 = cli_json("key", "create", "--account", acct, "--name", "k1", "--facility", fid1,
                          "--facility", fid2);
    json_t *k2 = cli_json("key", "create", "--account", acct, "--name", "k2", "--facility", fid2);
    ck_assert_int_eq(cli_run(&out, &err, "facility", "delete", fid2), 0);
    free(out);
    free(err);
    s = cli_json("key", "show", itest_json_str(k1, "key_id"));
    ck_assert_int_eq(json_array_size(json_object_get(s, "facilities")), 1);
    ck_assert(json_array_has(json_object_get(s, "facilities"), fid1));
    json_decref(s);
    /* a key left with no facility stays, scoped to nothing */
    s = cli_json("key", "show", itest_json_str(k2, "key_id"));
    ck_assert_int_eq(json_array_size(json_object_get(s, "facilities")), 0);
    ck_assert(json_is_false(json_object_get(s, "all_facilities")));
    json_decref(s);
    ck_assert_int_eq(cli_run(&out, &err, "facility", "show", fid2), 1);
    ck_assert_ptr_nonnull(strstr(err, "not_found"));
    free(out);
    free(err);
    l = cli_json("facility", "list", "--account", acct);
    ck_assert_int_eq(json_array_size(json_object_get(l, "facilities")), 1);
    json_decref(l);
    redisContext *rc = itest_redis();
    redisReply *r = itest_redis_cmd(rc, "SISMEMBER lg:facilities %s", fid2);
    ck_assert_int_eq(r->integer, 0);
    freeReplyObject(r);
    r = itest_redis_cmd(rc, "EXISTS lg:fac:%s", fid2);
    ck_assert_int_eq(r->integer, 0);
    freeReplyObject(r);
    redisFree(rc);

    /* accounts */
    json_t *shown = cli_json("account", "show", acct);
    ck_assert_str_eq(itest_json_str(shown, "name"), "Storage Inc");
    json_decref(shown);
    l = cli_json("account", "list");
    int found = 0;
    size_t i;
    json_t *v;
    json_array_foreach (json_object_get(l, "accounts"), i, v)
        found |= strcmp(itest_json_str(v, "account_id"), acct) == 0;
    ck_assert(found);
    json_decref(l);

    json_decref(k1);
    json_decref(k2);
    json_decref(f1);
    json_decref(f2);
    free(acct);
}
END_TEST

/* ---- validation ---- */

START_TEST(test_validation)
{
    char *acct = itest_new_account("Validation"), *other = itest_new_account("Other");
    char *fac = itest_new_facility(acct, "Here"), *ofac = itest_new_facility(other, "Elsewhere");
    char path[256];
    long st;
    json_t *j;
    snprintf(path, sizeof(path), "/admin/v1/accounts/%s/keys", acct);

    /* scope */
    j = itest_admin("POST", path, "{\"name\":\"k\",\"all_facilities\":false,\"facilities\":[]}",
                    &st);
    expect_error(j, st, 400, "bad_request");
    ck_assert_ptr_nonnull(strstr(error_message(j), "facilities"));
    json_decref(j);
    j = itest_admin("POST", path, "{\"name\":\"k\",\"all_facilities\":false}", &st);
    expect_error(j, st, 400, "bad_request");
    json_decref(j);
    j = itest_adminf(&st, "POST", path,
                     "{\"name\":\"k\",\"all_facilities\":false,\"facilities\":[\"%s\",\"%s\"]}",
                     fac, ofac);
    expect_error(j, st, 400, "bad_request");
    ck_assert_ptr_nonnull(strstr(error_message(j), ofac));
    json_decref(j);
    j = itest_admin("POST", path,
                    "{\"name\":\"k\",\"all_facilities\":false,\"facilities\":[\"no-such-fac\"]}",
                    &st);
    expect_error(j, st, 400, "bad_request");
    ck_assert_ptr_nonnull(strstr(error_message(j), "no-such-fac"));
    json_decref(j);
    j = itest_adminf(&st, "POST", path,
                     "{\"name\":\"k\",\"all_facilities\":true,\"facilities\":[\"%s\"]}", fac);
    expect_error(j, st, 400, "bad_request");
    json_decref(j);
    /* nothing was written by the refused requests */
    snprintf(path, sizeof(path), "/admin/v1/accounts/%s/keys", acct);
    j = itest_admin("GET", path, NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_int_eq(json_array_size(json_object_get(j, "keys")), 0);
    json_decref(j);

    /* field checks */
    static const struct {
        const char *body;
        const char *needle;
    } bad[] = {
        {"{\"name\":\"\",\"all_facilities\":true}", "name"},
        {"{\"all_facilities\":true}", "name"},
        {"{\"name\":7,\"all_facilities\":true}", "name"},
        {"{\"name\":\"k\",\"all_facilities\":\"yes\"}", "all_facilities"},
        {"{\"name\":\"k\",\"all_facilities\":true,\"colour\":\"red\"}", "colour"},
        {"{\"name\":\"k\",\"all_facilities\":true,\"rate_per_sec\":0}", "rate_per_sec"},
        {"{\"name\":\"k\",\"all_facilities\":true,\"rate_per_sec\":100001}", "rate_per_sec"},
        {"{\"name\":\"k\",\"all_facilities\":true,\"rate_per_sec\":\"5\"}", "rate_per_sec"},
        {"{\"name\":\"k\",\"all_facilities\":true,\"burst\":2.5}", "burst"},
        {"{\"name\":\"k\",\"all_facilities\":true,\"allowed_cidrs\":[\"10.0.0.0/33\"]}",
         "allowed_cidrs"},
        {"{\"name\":\"k\",\"all_facilities\":true,\"allowed_cidrs\":[\"::1/129\"]}",
         "allowed_cidrs"},
        {"{\"name\":\"k\",\"all_facilities\":true,\"allowed_cidrs\":[\"example.com\"]}",
         "allowed_cidrs"},
        {"{\"name\":\"k\",\"all_facilities\":true,\"allowed_cidrs\":\"10.0.0.1\"}",
         "allowed_cidrs"},
        {"{\"name\":\"k\",\"all_facilities\":true,\"expires_at\":\"2001-01-01T00:00:00Z\"}",
         "expires_at"},
        {"{\"name\":\"k\",\"all_facilities\":true,\"expires_at\":\"tomorrow\"}", "expires_at"},
        {"{\"name\":\"k\",\"name\":\"k2\",\"all_facilities\":true}", "JSON object"},
        {"{\"name\":\"k\",\"all_facilities\":true", "JSON object"},
        {"[\"name\"]", "JSON object"},
        {"", "JSON object"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        j = itest_admin("POST", path, bad[i].body, &st);
        expect_error(j, st, 400, "bad_request");
        ck_assert_msg(strstr(error_message(j), bad[i].needle) != NULL, "%s: message %s",
                      bad[i].body, error_message(j));
        json_decref(j);
    }

    /* names: 200 characters (multi-byte) pass, 201 do not */
    char name[1024] = "";
    for (int i = 0; i < 200; i++) strcat(name, "\xc3\xa9");
    j = itest_adminf(&st, "POST", path, "{\"name\":\"%s\",\"all_facilities\":true}", name);
    ck_assert_int_eq(st, 201);
    ck_assert_str_eq(itest_json_str(j, "name"), name);
    json_decref(j);
    strcat(name, "x");
    j = itest_adminf(&st, "POST", path, "{\"name\":\"%s\",\"all_facilities\":true}", name);
    expect_error(j, st, 400, "bad_request");
    ck_assert_str_eq(error_message(j), "name: must be 1 to 200 characters");
    json_decref(j);

    /* valid CIDRs and plain addresses are accepted and normalized */
    j = itest_admin("POST", path,
                    "{\"name\":\"cidr\",\"all_facilities\":true,\"allowed_cidrs\":"
                    "[\"192.0.2.7\",\"10.0.0.0/8\",\"2001:0db8:0000::/32\",\"::1\"]}",
                    &st);
    ck_assert_int_eq(st, 201);
    json_t *cidrs = json_object_get(j, "allowed_cidrs");
    ck_assert_int_eq(json_array_size(cidrs), 4);
    ck_assert(json_array_has(cidrs, "2001:db8::/32"));
    ck_assert(json_array_has(cidrs, "192.0.2.7"));
    json_decref(j);

    /* unknown ids, well-formed or not: 404 */
    char unknown_acct[LG_ACCOUNT_ID_LEN + 1], unknown_key[LG_KEY_LEN + 1];
    lg_id_new("acct_", unknown_acct, sizeof(unknown_acct));
    lg_cred_key_new(unknown_key);
    const char *missing[][2] = {
        {"GET", "/admin/v1/accounts/%s"},
        {"POST", "/admin/v1/accounts/%s/keys"},
        {"GET", "/admin/v1/accounts/%s/keys"},
        {"GET", "/admin/v1/accounts/%s/facilities"},
        {"POST", "/admin/v1/accounts/%s/facilities"},
    };
    for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
        const char *ids[] = {unknown_acct, "acct_bad", "acct_00000000000000000000000"};
        for (size_t k = 0; k < 3; k++) {
            snprintf(path, sizeof(path), missing[i][1], ids[k]);
            j = itest_admin(missing[i][0], path,
                            strcmp(missing[i][0], "POST") == 0
                                ? "{\"name\":\"n\",\"all_facilities\":true}"
                                : NULL,
                            &st);
            /* a facility create body has no all_facilities: either way not 2xx */
            if (strstr(path, "facilities") && strcmp(missing[i][0], "POST") == 0) {
                ck_assert_msg(st == 404 || st == 400, "%s: %ld", path, st);
            } else {
                expect_error(j, st, 404, "not_found");
            }
            json_decref(j);
        }
    }
    snprintf(path, sizeof(path), "/admin/v1/accounts/%s/facilities", unknown_acct);
    j = itest_admin("POST", path, "{\"name\":\"n\"}", &st);
    expect_error(j, st, 404, "not_found");
    json_decref(j);
    const char *key_ids[] = {unknown_key, "lk_nope", "lk_AAAAAAAAAAAAAAAAAAAAAAAA000000"};
    for (size_t k = 0; k < 3; k++) {
        static const char *const verbs[][2] = {
            {"GET", ""},          {"PATCH", ""},       {"DELETE", ""},     {"POST", "/reveal"},
            {"POST", "/disable"}, {"POST", "/enable"}, {"POST", "/rotate"}};
        for (size_t v = 0; v < 7; v++) {
            snprintf(path, sizeof(path), "/admin/v1/keys/%s%s", key_ids[k], verbs[v][1]);
            j = itest_admin(verbs[v][0], path,
                            strcmp(verbs[v][0], "PATCH") == 0 ? "{\"name\":\"x\"}" : NULL, &st);
            expect_error(j, st, 404, "not_found");
            json_decref(j);
        }
    }
    const char *fac_ids[] = {"no-such-facility", "bad%2Fid", "..",
                             "a-very-long-facility-id-that-is-longer-than-sixty-four-characters-x"};
    for (size_t k = 0; k < 4; k++) {
        snprintf(path, sizeof(path), "/admin/v1/facilities/%s", fac_ids[k]);
        j = itest_admin("GET", path, NULL, &st);
        expect_error(j, st, 404, "not_found");
        json_decref(j);
        j = itest_admin("PATCH", path, "{\"included\":false}", &st);
        expect_error(j, st, 404, "not_found");
        json_decref(j);
        j = itest_admin("DELETE", path, NULL, &st);
        expect_error(j, st, 404, "not_found");
        json_decref(j);
    }

    /* facility bodies */
    snprintf(path, sizeof(path), "/admin/v1/facilities/%s", fac);
    j = itest_admin("PATCH", path, "{}", &st);
    expect_error(j, st, 400, "bad_request");
    json_decref(j);
    j = itest_admin("PATCH", path, "{\"included\":\"no\"}", &st);
    expect_error(j, st, 400, "bad_request");
    ck_assert_ptr_nonnull(strstr(error_message(j), "included"));
    json_decref(j);
    snprintf(path, sizeof(path), "/admin/v1/accounts/%s/facilities", acct);
    j = itest_admin("POST", path, "{\"name\":\"n\",\"facility_id\":\"has space\"}", &st);
    expect_error(j, st, 400, "bad_request");
    ck_assert_ptr_nonnull(strstr(error_message(j), "facility_id"));
    json_decref(j);

    /* rotate grace and lock-changed bodies */
    json_t *k = new_key(acct, "rot");
    snprintf(path, sizeof(path), "/admin/v1/keys/%s/rotate", itest_json_str(k, "key_id"));
    j = itest_admin("POST", path, "{\"grace_seconds\":-1}", &st);
    expect_error(j, st, 400, "bad_request");
    json_decref(j);
    j = itest_admin("POST", path, "{\"grace_seconds\":2592001}", &st);
    expect_error(j, st, 400, "bad_request");
    json_decref(j);
    snprintf(path, sizeof(path), "/admin/v1/keys/%s", itest_json_str(k, "key_id"));
    j = itest_admin("PATCH", path, "{}", &st);
    expect_error(j, st, 400, "bad_request");
    json_decref(j);
    j = itest_adminf(&st, "PATCH", path, "{\"all_facilities\":false,\"facilities\":[\"%s\"]}",
                     ofac);
    expect_error(j, st, 400, "bad_request");
    ck_assert_ptr_nonnull(strstr(error_message(j), ofac));
    json_decref(j);
    json_decref(k);
    j = itest_admin("POST", "/admin/v1/events/lock-changed",
                    "{\"facility_id\":\"no-such-facility\",\"unit_id\":\"U001\"}", &st);
    expect_error(j, st, 404, "not_found");
    json_decref(j);
    j = itest_adminf(&st, "POST", "/admin/v1/events/lock-changed",
                     "{\"facility_id\":\"%s\",\"unit_id\":\"../x\"}", fac);
    expect_error(j, st, 400, "bad_request");
    json_decref(j);
    j = itest_adminf(&st, "POST", "/admin/v1/events/lock-changed",
                     "{\"facility_id\":\"%s\",\"unit_id\":\"U001\"}", fac);
    ck_assert_int_eq(st, 202);
    ck_assert(strchr(itest_json_str(j, "event_id"), '-') != NULL);
    json_decref(j);
    j = itest_admin("GET", "/admin/v1/audit?limit=0", NULL, &st);
    expect_error(j, st, 400, "bad_request");
    json_decref(j);
    j = itest_admin("GET", "/admin/v1/audit?colour=red", NULL, &st);
    expect_error(j, st, 400, "bad_request");
    json_decref(j);

    free(acct);
    free(other);
    free(fac);
    free(ofac);
}
END_TEST

START_TEST(test_oversized_body)
{
    char url[128], auth[128];
    snprintf(url, sizeof(url), "%s/admin/v1/accounts", IT->lg[0].admin_url);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", IT->token);
    const char *headers[] = {auth, "Content-Type: application/json", NULL};
    size_t len = 70 * 1024;
    char *body = malloc(len + 1);
    memset(body, 'a', len);
    memcpy(body, "{\"name\":\"", 9);
    memcpy(body + len - 2, "\"}", 2);
    body[len] = '\0';
    struct itest_resp r;
    ck_assert_int_eq(itest_http("POST", url, headers, body, len, NULL, &r), 0);
    json_t *j = json_loads(r.body, 0, NULL);
    expect_error(j, r.status, 413, "payload_too_large");
    json_decref(j);
    itest_resp_free(&r);
    /* just at the limit: parsed (and refused for the name's length) */
    len = 64 * 1024;
    memcpy(body + len - 2, "\"}", 2);
    ck_assert_int_eq(itest_http("POST", url, headers, body, len, NULL, &r), 0);
    j = json_loads(r.body, 0, NULL);
    expect_error(j, r.status, 400, "bad_request");
    json_decref(j);
    itest_resp_free(&r);
    free(body);
    /* far beyond: the HTTP layer refuses it (413 too, not JSON) */
    len = 2 * 1024 * 1024;
    body = calloc(1, len + 1);
    memset(body, ' ', len);
    ck_assert_int_eq(itest_http("POST", url, headers, body, len, NULL, &r), 0);
    ck_assert_int_eq(r.status, 413);
    itest_resp_free(&r);
    free(body);
    /* the server is fine afterwards */
    long st;
    j = itest_admin("GET", "/admin/v1/accounts", NULL, &st);
    ck_assert_int_eq(st, 200);
    json_decref(j);
}
END_TEST

/* ---- events ---- */

START_TEST(test_events)
{
    redisContext *rc = itest_redis(), *sub = itest_redis();
    char *start = last_stream_id(rc, "lg:events");
    redisReply *r = itest_redis_cmd(sub, "SUBSCRIBE lg:events");
    freeReplyObject(r);

    long st;
    json_t *j;
    char path[256], body[512];
    char *acct = itest_new_account("Events");
    char *f1 = itest_new_facility(acct, "One"), *f2 = itest_new_facility(acct, "Two");
    snprintf(path, sizeof(path), "/admin/v1/facilities/%s", f1);
    json_decref(itest_admin("PATCH", path, "{\"name\":\"Uno\"}", &st));
    ck_assert_int_eq(st, 200);
    json_decref(itest_admin("PATCH", path, "{\"included\":false}", &st));
    ck_assert_int_eq(st, 200);
    json_decref(itest_admin("PATCH", path, "{\"included\":true,\"name\":\"One\"}", &st));
    ck_assert_int_eq(st, 200);
    json_t *k = new_key(acct, "ev");
    char kid[64];
    snprintf(kid, sizeof(kid), "%s", itest_json_str(k, "key_id"));
    json_decref(k);
    snprintf(path, sizeof(path), "/admin/v1/keys/%s", kid);
    snprintf(body, sizeof(body), "{\"facilities\":[\"%s\"]}", f1);
    json_decref(itest_admin("PATCH", path, body, &st));
    ck_assert_int_eq(st, 200);
    snprintf(path, sizeof(path), "/admin/v1/keys/%s/disable", kid);
    json_decref(itest_admin("POST", path, NULL, &st));
    ck_assert_int_eq(st, 200);
    snprintf(path, sizeof(path), "/admin/v1/keys/%s/enable", kid);
    json_decref(itest_admin("POST", path, "{}", &st));
    ck_assert_int_eq(st, 200);
    snprintf(path, sizeof(path), "/admin/v1/keys/%s/reveal", kid); /* no event */
    json_decref(itest_admin("POST", path, NULL, &st));
    ck_assert_int_eq(st, 200);
    snprintf(path, sizeof(path), "/admin/v1/keys/%s/rotate", kid);
    j = itest_admin("POST", path, NULL, &st);
    ck_assert_int_eq(st, 201);
    char k2[64];
    snprintf(k2, sizeof(k2), "%s", itest_json_str(j, "key_id"));
    json_decref(j);
    snprintf(path, sizeof(path), "/admin/v1/keys/%s/rotate", k2);
    j = itest_admin("POST", path, "{\"grace_seconds\":60}", &st);
    ck_assert_int_eq(st, 201);
    char k3[64];
    snprintf(k3, sizeof(k3), "%s", itest_json_str(j, "key_id"));
    json_decref(j);
    snprintf(path, sizeof(path), "/admin/v1/keys/%s", k3);
    json_decref(itest_admin("DELETE", path, NULL, &st));
    ck_assert_int_eq(st, 204);
    snprintf(path, sizeof(path), "/admin/v1/facilities/%s", f2);
    json_decref(itest_admin("DELETE", path, NULL, &st));
    ck_assert_int_eq(st, 204);
    snprintf(body, sizeof(body), "{\"facility_id\":\"%s\",\"unit_id\":\"U001\"}", f1);
    j = itest_admin("POST", "/admin/v1/events/lock-changed", body, &st);
    ck_assert_int_eq(st, 202);
    char lock_event[64];
    snprintf(lock_event, sizeof(lock_event), "%s", itest_json_str(j, "event_id"));
    json_decref(j);
    j = itest_admin("POST", "/admin/v1/feed-keys", "{\"name\":\"feed\"}", &st);
    ck_assert_int_eq(st, 201);
    char fk[64];
    snprintf(fk, sizeof(fk), "%s", itest_json_str(j, "key_id"));
    json_decref(j);
    /* refused writes emit nothing */
    j = itest_admin("POST", "/admin/v1/feed-keys", "{\"name\":\"\"}", &st);
    ck_assert_int_eq(st, 400);
    json_decref(j);

    static const struct {
        const char *type;
        char which; /* a: account, 1/2: facility, k/K/3/f: key, l: lock */
    } want[] = {
        {"account.created", 'a'},
        {"facility.created", '1'},
        {"facility.created", '2'},
        {"facility.updated", '1'},
        {"facility.excluded", '1'},
        {"facility.included", '1'},
        {"key.created", 'k'},
        {"key.updated", 'k'},
        {"key.disabled", 'k'},
        /* one event per rotation, naming the key rotated away from */
        {"key.enabled", 'k'},
        {"key.rotated", 'k'},
        {"key.rotated", 'K'},
        {"key.deleted", '3'},
        {"facility.deleted", '2'},
        {"lock.changed", 'l'},
        {"key.created", 'f'},
    };
    size_t nwant = sizeof(want) / sizeof(want[0]);
    json_t *evs = stream_after(rc, "lg:events", start);
    ck_assert_int_eq(json_array_size(evs), nwant);
    for (size_t i = 0; i < nwant; i++) {
        json_t *e = json_array_get(evs, i);
        ck_assert_str_eq(itest_json_str(e, "type"), want[i].type);
        ck_assert(strlen(itest_json_str(e, "at")) == LG_TIME_LEN - 1);
        const char *a = want[i].which == 'f' ? "" : acct;
        ck_assert_str_eq(itest_json_str(e, "account_id"), a);
        switch (want[i].which) {
        case '1':
        case '2':
            ck_assert_str_eq(itest_json_str(e, "facility_id"), want[i].which == '1' ? f1 : f2);
            ck_assert_ptr_nonnull(json_object_get(e, "included"));
            ck_assert_ptr_nonnull(json_object_get(e, "name"));
            break;
        case 'k': ck_assert_str_eq(itest_json_str(e, "key_id"), kid); break;
        case 'K': ck_assert_str_eq(itest_json_str(e, "key_id"), k2); break;
        case '3': ck_assert_str_eq(itest_json_str(e, "key_id"), k3); break;
        case 'f': ck_assert_str_eq(itest_json_str(e, "key_id"), fk); break;
        case 'l':
            ck_assert_str_eq(itest_json_str(e, "facility_id"), f1);
            ck_assert_str_eq(itest_json_str(e, "unit_id"), "U001");
            ck_assert_str_eq(itest_json_str(e, "id"), lock_event);
            break;
        default: break;
        }
    }
    /* stream fields of inclusion events */
    ck_assert_str_eq(itest_json_str(json_array_get(evs, 3), "name"), "Uno");
    ck_assert_str_eq(itest_json_str(json_array_get(evs, 3), "included"), "1");
    ck_assert_str_eq(itest_json_str(json_array_get(evs, 4), "included"), "0");
    ck_assert_str_eq(itest_json_str(json_array_get(evs, 5), "included"), "1");
    ck_assert_str_eq(itest_json_str(json_array_get(evs, 5), "name"), "One");

    /* the same events, in the same order, on the channel, with their ids */
    for (size_t i = 0; i < nwant; i++) {
        void *reply = NULL;
        ck_assert_msg(redisGetReply(sub, &reply) == REDIS_OK, "pub/sub: %s", sub->errstr);
        redisReply *m = reply;
        ck_assert(m->type == REDIS_REPLY_ARRAY && m->elements == 3);
        ck_assert_str_eq(m->element[0]->str, "message");
        json_t *ev = json_loads(m->element[2]->str, 0, NULL);
        ck_assert_ptr_nonnull(ev);
        json_t *e = json_array_get(evs, i);
        ck_assert_str_eq(itest_json_str(ev, "id"), itest_json_str(e, "id"));
        ck_assert_str_eq(itest_json_str(ev, "type"), itest_json_str(e, "type"));
        ck_assert_str_eq(itest_json_str(ev, "account_id"), itest_json_str(e, "account_id"));
        ck_assert_str_eq(itest_json_str(ev, "at"), itest_json_str(e, "at"));
        if (json_object_get(e, "included") != NULL)
            ck_assert(json_is_boolean(json_object_get(ev, "included")));
        if (json_object_get(e, "key_id") != NULL)
            ck_assert_str_eq(itest_json_str(ev, "key_id"), itest_json_str(e, "key_id"));
        json_decref(ev);
        freeReplyObject(m);
    }
    json_decref(evs);
    free(start);
    free(acct);
    free(f1);
    free(f2);
    redisFree(sub);
    redisFree(rc);
}
END_TEST

/* ---- secrets never in clear ---- */

static void assert_no_secret(const char *what, const char *data, size_t len, json_t *secrets)
{
    size_t i;
    json_t *s;
    json_array_foreach (secrets, i, s) {
        const char *sec = json_string_value(s);
        /* the whole secret, and its random part without prefix or checksum */
        ck_assert_msg(memmem(data, len, sec, strlen(sec)) == NULL, "secret in clear in %s", what);
        ck_assert_msg(memmem(data, len, sec + 3, 40) == NULL, "secret body in clear in %s", what);
    }
}

/* Checks every string in reply R; returns how many look like verifiers. */
static size_t scan_reply(const char *key, const redisReply *r, json_t *secrets)
{
    size_t n = 0;
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
        assert_no_secret(key, r->str, r->len, secrets);
        if (r->len == LG_VERIFIER_LEN && strspn(r->str, "0123456789abcdef") == LG_VERIFIER_LEN) n++;
    } else if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t e = 0; e < r->elements; e++) n += scan_reply(key, r->element[e], secrets);
    }
    return n;
}

START_TEST(test_no_secret_in_clear)
{
    char *acct = itest_new_account("Secrets");
    char *fac = itest_new_facility(acct, "Vault");
    json_t *secrets = json_array();
    long st;
    char path[256];
    for (int i = 0; i < 3; i++) {
        json_t *k = new_key(acct, "secretive");
        json_array_append(secrets, json_object_get(k, "secret"));
        /* reveal, rotate: every path that handles the secret */
        snprintf(path, sizeof(path), "/admin/v1/keys/%s/reveal", itest_json_str(k, "key_id"));
        json_t *r = itest_admin("POST", path, NULL, &st);
        ck_assert_int_eq(st, 200);
        ck_assert_str_eq(itest_json_str(r, "secret"), itest_json_str(k, "secret"));
        json_decref(r);
        snprintf(path, sizeof(path), "/admin/v1/keys/%s/rotate", itest_json_str(k, "key_id"));
        r = itest_admin("POST", path, "{\"grace_seconds\":10}", &st);
        ck_assert_int_eq(st, 201);
        json_array_append(secrets, json_object_get(r, "secret"));
        json_decref(r);
        json_decref(k);
    }
    json_t *fk = itest_admin("POST", "/admin/v1/feed-keys", "{\"name\":\"feed secret\"}", &st);
    ck_assert_int_eq(st, 201);
    json_array_append(secrets, json_object_get(fk, "secret"));
    json_decref(fk);

    redisContext *rc = itest_redis();
    size_t nkeys = 0, nverifiers = 0;
    char cursor[32] = "0";
    do {
        redisReply *r = itest_redis_cmd(rc, "SCAN %s COUNT 1000", cursor);
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        redisReply *names = r->element[1];
        for (size_t i = 0; i < names->elements; i++) {
            const char *key = names->element[i]->str;
            nkeys++;
            assert_no_secret("a key name", key, names->element[i]->len, secrets);
            redisReply *t = itest_redis_cmd(rc, "TYPE %s", key);
            redisReply *v = NULL;
            if (strcmp(t->str, "string") == 0)
                v = itest_redis_cmd(rc, "GET %s", key);
            else if (strcmp(t->str, "hash") == 0)
                v = itest_redis_cmd(rc, "HGETALL %s", key);
            else if (strcmp(t->str, "set") == 0)
                v = itest_redis_cmd(rc, "SMEMBERS %s", key);
            else if (strcmp(t->str, "zset") == 0)
                v = itest_redis_cmd(rc, "ZRANGE %s 0 -1 WITHSCORES", key);
            else if (strcmp(t->str, "list") == 0)
                v = itest_redis_cmd(rc, "LRANGE %s 0 -1", key);
            else if (strcmp(t->str, "stream") == 0)
                v = itest_redis_cmd(rc, "XRANGE %s - +", key);
            else
                ck_abort_msg("unexpected type %s of %s", t->str, key);
            nverifiers += scan_reply(key, v, secrets);
            freeReplyObject(v);
            freeReplyObject(t);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    ck_assert(nkeys > 10);
    ck_assert(nverifiers >= json_array_size(secrets)); /* the secrets were stored, as verifiers */

    /* and not in lockgate's own output either */
    char *log = itest_lg_log(0);
    assert_no_secret("the lockgate log", log, strlen(log), secrets);
    free(log);
    char *out = itest_file_read(IT->lg[0].out);
    assert_no_secret("lockgate's stdout", out, strlen(out), secrets);
    free(out);
    redisFree(rc);
    json_decref(secrets);
    free(acct);
    free(fac);
}
END_TEST

/* ---- audit ---- */

START_TEST(test_audit)
{
    char *acct = itest_new_account("Audited");
    json_t *k = new_key(acct, "audited key");
    const char *kid = itest_json_str(k, "key_id");
    long st;
    char path[256];
    snprintf(path, sizeof(path), "/admin/v1/keys/%s/reveal", kid);
    json_decref(itest_admin("POST", path, NULL, &st));
    ck_assert_int_eq(st, 200);
    snprintf(path, sizeof(path), "/admin/v1/keys/%s/disable", kid);
    json_decref(itest_admin("POST", path, NULL, &st));
    ck_assert_int_eq(st, 200);

    snprintf(path, sizeof(path), "/admin/v1/audit?key=%s", kid);
    json_t *a = itest_admin("GET", path, NULL, &st);
    ck_assert_int_eq(st, 200);
    json_t *entries = json_object_get(a, "entries");
    ck_assert_int_eq(json_array_size(entries), 3);
    const char *actions[] = {"key.disabled", "key.revealed", "key.created"};
    for (size_t i = 0; i < 3; i++) {
        json_t *e = json_array_get(entries, i);
        ck_assert_str_eq(itest_json_str(e, "action"), actions[i]);
        ck_assert_str_eq(itest_json_str(e, "account_id"), acct);
        ck_assert_str_eq(itest_json_str(e, "key_id"), kid);
        ck_assert_str_eq(itest_json_str(e, "outcome"), "ok");
        ck_assert_str_eq(itest_json_str(e, "client_ip"), "127.0.0.1");
        ck_assert_int_eq(strlen(itest_json_str(e, "request_id")), 16);
        ck_assert_int_eq(strlen(itest_json_str(e, "at")), LG_TIME_LEN - 1);
        ck_assert(strchr(itest_json_str(e, "id"), '-') != NULL);
    }
    json_decref(a);

    /* through the CLI */
    json_t *c = cli_json("audit", "--key", kid, "--limit", "2");
    entries = json_object_get(c, "entries");
    ck_assert_int_eq(json_array_size(entries), 2);
    ck_assert_str_eq(itest_json_str(json_array_get(entries, 0), "action"), "key.disabled");
    ck_assert_str_eq(itest_json_str(json_array_get(entries, 1), "action"), "key.revealed");
    json_decref(c);
    char *out = NULL, *err = NULL;
    ck_assert_int_eq(cli_run(&out, &err, "audit", "--account", acct), 0);
    ck_assert_ptr_nonnull(strstr(out, "key.revealed"));
    ck_assert_ptr_nonnull(strstr(out, "key.disabled"));
    free(out);
    free(err);

    /* data-plane entries are read too, and the filter scans past a batch
     * of other accounts' entries */
    redisContext *rc = itest_redis();
    redisReply *r = itest_redis_cmd(
        rc,
        "XADD lg:audit * action unlock_code.read account_id %s key_id %s facility_id fac-9 "
        "unit_id U007 client_ip 192.0.2.1 request_id 0123456789abcdef outcome ok at "
        "2026-01-01T00:00:00.000Z",
        acct, kid);
    freeReplyObject(r);
    for (int i = 0; i < 1500; i++) {
        r = itest_redis_cmd(rc, "XADD lg:audit * action unlock_code.read account_id "
                                "acct_OTHER key_id lk_OTHER outcome ok at x");
        freeReplyObject(r);
    }
    snprintf(path, sizeof(path), "/admin/v1/audit?account=%s&limit=2", acct);
    a = itest_admin("GET", path, NULL, &st);
    ck_assert_int_eq(st, 200);
    entries = json_object_get(a, "entries");
    ck_assert_int_eq(json_array_size(entries), 2);
    json_t *e = json_array_get(entries, 0);
    ck_assert_str_eq(itest_json_str(e, "action"), "unlock_code.read");
    ck_assert_str_eq(itest_json_str(e, "facility_id"), "fac-9");
    ck_assert_str_eq(itest_json_str(e, "unit_id"), "U007");
    ck_assert_str_eq(itest_json_str(e, "client_ip"), "192.0.2.1");
    ck_assert_str_eq(itest_json_str(json_array_get(entries, 1), "action"), "key.disabled");
    json_decref(a);
    /* unfiltered: newest first, limited */
    a = itest_admin("GET", "/admin/v1/audit?limit=5", NULL, &st);
    ck_assert_int_eq(st, 200);
    entries = json_object_get(a, "entries");
    ck_assert_int_eq(json_array_size(entries), 5);
    ck_assert_str_eq(itest_json_str(json_array_get(entries, 0), "account_id"), "acct_OTHER");
    /* stream ids compare as numbers (ms, then sequence), not as text */
    unsigned long long ms0 = 0, seq0 = 0, ms4 = 0, seq4 = 0;
    sscanf(itest_json_str(json_array_get(entries, 0), "id"), "%llu-%llu", &ms0, &seq0);
    sscanf(itest_json_str(json_array_get(entries, 4), "id"), "%llu-%llu", &ms4, &seq4);
    ck_assert(ms0 > ms4 || (ms0 == ms4 && seq0 > seq4));
    json_decref(a);
    a = itest_admin("GET", "/admin/v1/audit", NULL, &st);
    ck_assert_int_eq(json_array_size(json_object_get(a, "entries")), 100);
    json_decref(a);
    redisFree(rc);
    json_decref(k);
    free(acct);
}
END_TEST

/* ---- key status computed on read ---- */

START_TEST(test_expired_status)
{
    char *acct = itest_new_account("Expiry");
    char path[256];
    long st;
    snprintf(path, sizeof(path), "/admin/v1/accounts/%s/keys", acct);
    json_t *k = itest_admin("POST", path,
                            "{\"name\":\"temp\",\"all_facilities\":true,"
                            "\"expires_at\":\"2999-01-01T00:00:00Z\"}",
                            &st);
    ck_assert_int_eq(st, 201);
    ck_assert_str_eq(itest_json_str(k, "expires_at"), "2999-01-01T00:00:00.000Z");
    ck_assert_str_eq(itest_json_str(k, "status"), "active");
    const char *kid = itest_json_str(k, "key_id");
    /* time passes: the stored expiry is now in the past */
    redisContext *rc = itest_redis();
    freeReplyObject(itest_redis_cmd(rc, "HSET lg:key:%s expires_at 2001-01-01T00:00:00.000Z", kid));
    snprintf(path, sizeof(path), "/admin/v1/keys/%s", kid);
    json_t *s = itest_admin("GET", path, NULL, &st);
    ck_assert_str_eq(itest_json_str(s, "status"), "expired");
    json_decref(s);
    redisReply *r = itest_redis_cmd(rc, "HGET lg:key:%s status", kid);
    ck_assert_str_eq(r->str, "active"); /* stored status untouched */
    freeReplyObject(r);
    /* disabled wins over expired; expires_at null means never again */
    snprintf(path, sizeof(path), "/admin/v1/keys/%s/disable", kid);
    s = itest_admin("POST", path, NULL, &st);
    ck_assert_str_eq(itest_json_str(s, "status"), "disabled");
    json_decref(s);
    snprintf(path, sizeof(path), "/admin/v1/keys/%s/enable", kid);
    json_decref(itest_admin("POST", path, NULL, &st));
    snprintf(path, sizeof(path), "/admin/v1/keys/%s", kid);
    s = itest_admin("PATCH", path, "{\"expires_at\":null}", &st);
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(itest_json_str(s, "status"), "active");
    ck_assert(json_is_null(json_object_get(s, "expires_at")));
    json_decref(s);
    redisFree(rc);
    json_decref(k);
    free(acct);
}
END_TEST

/* ---- config check ---- */

START_TEST(test_config_check)
{
    const char *conf = itest_path("unknown-key.conf");
    itest_file_write(conf, "# a config with a typo\n"
                           "[server]\n"
                           "listen = 127.0.0.1:1\n"
                           "\n"
                           "[redis]\n"
                           "prefixx = lg:\n");
    const char *const argv[] = {"-t", "-c", conf, NULL};
    char *out = NULL, *err = NULL;
    int rc = itest_lg_run(argv, &out, &err);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err, conf) != NULL, "no file name in: %s", err);
    ck_assert_msg(strstr(err, ":6") != NULL, "no line number in: %s", err);
    ck_assert_msg(strstr(err, "prefixx") != NULL, "no key in: %s", err);
    free(out);
    free(err);
    /* the harness's own config passes */
    const char *const ok[] = {"-t", "-c", IT->lg[0].conf, NULL};
    ck_assert_int_eq(itest_lg_run(ok, &out, &err), 0);
    free(out);
    free(err);
}
END_TEST

/* ---- a second instance against the same Redis; another prefix ---- */

START_TEST(test_second_instance)
{
    char *acct = itest_new_account("Shared");
    struct itest_opts o = {0};
    o.no_upstream = 1;
    int i = itest_lg_start(&o);
    ck_assert_int_eq(i, 1);
    char path[128];
    long st;
    snprintf(path, sizeof(path), "/admin/v1/accounts/%s", acct);
    json_t *j = itest_admin_at(i, "GET", path, NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(itest_json_str(j, "name"), "Shared");
    json_decref(j);
    int status = itest_lg_stop(i);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* another [redis] prefix on the same Redis is another world */
    o.prefix = "t1:";
    i = itest_lg_start(&o);
    j = itest_admin_at(i, "POST", "/admin/v1/accounts", "{\"name\":\"Prefixed\"}", &st);
    ck_assert_int_eq(st, 201);
    char *other = strdup(itest_json_str(j, "account_id"));
    json_decref(j);
    snprintf(path, sizeof(path), "/admin/v1/accounts/%s", other);
    json_decref(itest_admin("GET", path, NULL, &st));
    ck_assert_int_eq(st, 404); /* not seen under lg: */
    snprintf(path, sizeof(path), "/admin/v1/accounts/%s", acct);
    json_decref(itest_admin_at(i, "GET", path, NULL, &st));
    ck_assert_int_eq(st, 404); /* nor lg:'s account under t1: */
    redisContext *rc = itest_redis();
    redisReply *r = itest_redis_cmd(rc, "EXISTS t1:acct:%s lg:acct:%s", other, other);
    ck_assert_int_eq(r->integer, 1);
    freeReplyObject(r);
    r = itest_redis_cmd(rc, "EXISTS t1:acct:%s", acct);
    ck_assert_int_eq(r->integer, 0);
    freeReplyObject(r);
    redisFree(rc);
    status = itest_lg_stop(i);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    free(other);
    free(acct);
}
END_TEST

/* ---- the admin API over TLS ---- */

START_TEST(test_admin_tls)
{
    struct itest_opts o = {0};
    o.no_upstream = 1;
    o.admin_tls = 1;
    int i = itest_lg_start(&o); /* its /healthz answered over verified TLS */
    ck_assert_int_eq(strncmp(IT->lg[i].admin_url, "https://", 8), 0);
    long st;
    json_t *j = itest_admin_at(i, "POST", "/admin/v1/accounts", "{\"name\":\"Over TLS\"}", &st);
    ck_assert_int_eq(st, 201);
    json_decref(j);

    /* the CLI verifies the certificate with --cacert or $LOCKGATE_ADMIN_CACERT */
    char *out = NULL, *err = NULL;
    const char *with_ca[] = {"--url", IT->lg[i].admin_url, "--cacert", IT->cert, "account", "list",
                             NULL};
    ck_assert_msg(itest_cli_argv(&out, &err, with_ca) == 0, "with --cacert: %s", err);
    ck_assert_ptr_nonnull(strstr(out, "Over TLS"));
    free(out);
    free(err);
    const char *unverified[] = {"--url", IT->lg[i].admin_url, "account", "list", NULL};
    ck_assert_int_eq(itest_cli_argv(&out, &err, unverified), 1);
    ck_assert_ptr_nonnull(strstr(err, "cannot reach"));
    free(out);
    free(err);

    /* plain HTTP to the TLS admin port gets no HTTP answer */
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", IT->lg[i].admin_port);
    struct itest_resp r;
    ck_assert_int_eq(itest_http("GET", url, NULL, NULL, 0, NULL, &r), -1);
    ck_assert_int_eq(r.status, 0);
    itest_resp_free(&r);
    /* the started line says so; a plain admin listener on loopback gives no warning */
    char *log = itest_lg_log(i);
    ck_assert_ptr_nonnull(strstr(log, "(tls)"));
    ck_assert_ptr_null(strstr(log, "without TLS"));
    free(log);
    int status = itest_lg_stop(i);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    log = itest_lg_log(0);
    ck_assert_ptr_null(strstr(log, "without TLS"));
    free(log);
}
END_TEST

/* ---- Redis faults ---- */

struct ready_probe {
    int want; /* HTTP status wanted from /readyz */
};

static int readyz_is(void *arg)
{
    struct ready_probe *p = arg;
    char url[128];
    snprintf(url, sizeof(url), "%s/readyz", IT->lg[0].admin_url);
    struct itest_resp r;
    int ok = itest_http("GET", url, NULL, NULL, 0, NULL, &r) == 0 && r.status == p->want;
    itest_resp_free(&r);
    return ok;
}

START_TEST(test_store_unavailable)
{
    long st;
    json_t *j;
    /* a Redis that stops answering: 503 within the deadline, no hang */
    itest_redis_pause();
    j = itest_admin("POST", "/admin/v1/accounts", "{\"name\":\"paused\"}", &st);
    expect_error(j, st, 503, "store_unavailable");
    json_decref(j);
    j = itest_admin("GET", "/admin/v1/accounts", NULL, &st);
    expect_error(j, st, 503, "store_unavailable");
    json_decref(j);
    itest_redis_resume();
    struct ready_probe up = {200}, down = {503};
    itest_wait(readyz_is, &up, "/readyz 200 after SIGCONT");
    /* ready: every worker has started and reaches Redis */
    j = itest_admin("GET", "/readyz", NULL, &st);
    ck_assert_int_eq(st, 200);
    ck_assert_int_ge(json_integer_value(json_object_get(j, "workers")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "workers_connected")),
                     json_integer_value(json_object_get(j, "workers")));
    json_decref(j);
    j = itest_admin("POST", "/admin/v1/accounts", "{\"name\":\"resumed\"}", &st);
    ck_assert_int_eq(st, 201);
    json_decref(j);

    /* a Redis that is gone: readiness and metrics say so, writes get 503 */
    itest_redis_stop();
    itest_wait(readyz_is, &down, "/readyz 503 with Redis down");
    char url[128];
    snprintf(url, sizeof(url), "%s/readyz", IT->lg[0].admin_url);
    struct itest_resp r;
    ck_assert_int_eq(itest_http("GET", url, NULL, NULL, 0, NULL, &r), 0);
    j = json_loads(r.body, 0, NULL);
    ck_assert_str_eq(itest_json_str(j, "redis"), "down");
    json_decref(j);
    /* and the workers' command connections are down too */
    for (int64_t end = itest_mono_ms() + IT->timeout_ms;; itest_sleep_ms(20)) {
        j = itest_admin("GET", "/readyz", NULL, &st);
        json_int_t n = json_integer_value(json_object_get(j, "workers_connected"));
        json_decref(j);
        if (n == 0) break;
        ck_assert_msg(itest_mono_ms() < end, "workers still connected to a stopped Redis");
    }
    itest_resp_free(&r);
    snprintf(url, sizeof(url), "%s/metrics", IT->lg[0].admin_url);
    ck_assert_int_eq(itest_http("GET", url, NULL, NULL, 0, NULL, &r), 0);
    ck_assert_ptr_nonnull(strstr(r.body, "lockgate_redis_up 0"));
    itest_resp_free(&r);
    j = itest_admin("POST", "/admin/v1/accounts", "{\"name\":\"down\"}", &st);
    expect_error(j, st, 503, "store_unavailable");
    json_decref(j);
    char *out = NULL, *err = NULL;
    ck_assert_int_eq(cli_run(&out, &err, "account", "list"), 1);
    ck_assert_ptr_nonnull(strstr(err, "store_unavailable"));
    free(out);
    free(err);

    /* back again */
    itest_redis_start();
    itest_wait(readyz_is, &up, "/readyz 200 after the restart");
    j = itest_admin("POST", "/admin/v1/accounts", "{\"name\":\"back\"}", &st);
    ck_assert_int_eq(st, 201);
    json_decref(j);
}
END_TEST

/* ---- runner ---- */

static void setup(void)
{
    struct itest_opts o = {0};
    o.no_upstream = 1;
    itest_start(&o);
}

static void teardown(void) { itest_stop(); }

/* lockgate-admin's contract with scripts: 0 success, 1 API or network
 * error (message on stderr), 2 usage error; --help per noun. */
START_TEST(test_cli_usage)
{
    char *out = NULL, *err = NULL;
    ck_assert_int_eq(cli_run(&out, &err, "key", "--help"), 0);
    ck_assert_ptr_nonnull(strstr(out, "create"));
    ck_assert_ptr_nonnull(strstr(out, "--all-facilities"));
    free(out);
    free(err);
    ck_assert_int_eq(cli_run(&out, &err, "--help"), 0);
    ck_assert_ptr_nonnull(strstr(out, "feed-key"));
    free(out);
    free(err);
    const char *usage[][6] = {
        {"bogus", NULL},
        {"key", "frobnicate", NULL},
        {"key", "create", "--account", NULL},                       /* missing value */
        {"key", "create", "--name", "x", "--all-facilities", NULL}, /* no --account */
        {"key", "show", "../etc", NULL},                            /* not an id */
        {"audit", "--limit", "ten", NULL},
    };
    for (size_t i = 0; i < sizeof(usage) / sizeof(usage[0]); i++) {
        int rc = itest_cli_argv(&out, &err, usage[i]);
        ck_assert_msg(rc == 2, "%s %s: exit %d, expected 2 (%s)", usage[i][0],
                      usage[i][1] ? usage[i][1] : "", rc, err);
        ck_assert_msg(err[0] != '\0', "usage error without a message");
        free(out);
        free(err);
    }
    /* an API error: exit 1 with the error code on stderr */
    ck_assert_int_eq(cli_run(&out, &err, "key", "show", "lk_nosuchkey"), 1);
    ck_assert_ptr_nonnull(strstr(err, "not_found"));
    free(out);
    free(err);
    /* nobody listening: exit 1 too */
    ck_assert_int_eq(cli_run(&out, &err, "--url", "http://127.0.0.1:1", "account", "list"), 1);
    ck_assert_ptr_nonnull(strstr(err, "cannot reach"));
    free(out);
    free(err);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("admin");
    TCase *api = tcase_create("api");
    tcase_add_unchecked_fixture(api, setup, teardown);
    tcase_set_timeout(api, 120);
    tcase_add_test(api, test_health);
    tcase_add_test(api, test_auth);
    tcase_add_test(api, test_cli_usage);
    tcase_add_test(api, test_key_lifecycle_cli);
    tcase_add_test(api, test_facility_lifecycle_cli);
    tcase_add_test(api, test_validation);
    tcase_add_test(api, test_oversized_body);
    tcase_add_test(api, test_events);
    tcase_add_test(api, test_no_secret_in_clear);
    tcase_add_test(api, test_audit);
    tcase_add_test(api, test_expired_status);
    tcase_add_test(api, test_config_check);
    tcase_add_test(api, test_second_instance);
    tcase_add_test(api, test_admin_tls);
    suite_add_tcase(s, api);

    TCase *faults = tcase_create("faults");
    tcase_add_unchecked_fixture(faults, setup, teardown);
    tcase_set_timeout(faults, 120);
    tcase_add_test(faults, test_store_unavailable);
    suite_add_tcase(s, faults);

    return itest_exit_status(check_run(s));
}
