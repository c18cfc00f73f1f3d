/* Unit tests of the admin API's request validation: unknown fields, names,
 * integers, CIDR allowlists and expiry times, with the messages that name
 * the field. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../../src/admin_internal.h"
#include "lockgate/util.h"

#include "check_run.h"

static char err[256];

static json_t *parse(const char *text)
{
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    ck_assert_ptr_nonnull(j);
    return j;
}

START_TEST(unknown_fields)
{
    static const char *const allowed[] = {"name", "facility_id", NULL};
    json_t *ok = parse("{\"name\":\"A\",\"facility_id\":\"f\"}");
    ck_assert_int_eq(lg_admin_fields_check(ok, allowed, err, sizeof(err)), 0);
    json_t *bad = parse("{\"name\":\"A\",\"colour\":1}");
    ck_assert_int_eq(lg_admin_fields_check(bad, allowed, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "colour: unknown field");
    json_decref(ok);
    json_decref(bad);
}
END_TEST

START_TEST(names)
{
    const char *out;
    json_t *j = parse("{\"name\":\"Call Center\"}");
    ck_assert_int_eq(lg_admin_name_get(j, "name", true, &out, err, sizeof(err)), 0);
    ck_assert_str_eq(out, "Call Center");
    json_decref(j);

    j = parse("{}");
    ck_assert_int_eq(lg_admin_name_get(j, "name", true, &out, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "name: required");
    ck_assert_int_eq(lg_admin_name_get(j, "name", false, &out, err, sizeof(err)), 0);
    ck_assert_ptr_null(out);
    json_decref(j);

    const char *bad[] = {"{\"name\":\"\"}", "{\"name\":5}", "{\"name\":null}",
                         "{\"name\":\"a\\nb\"}", "{\"name\":\"a\\u0000b\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        j = json_loads(bad[i], JSON_ALLOW_NUL, NULL);
        ck_assert_ptr_nonnull(j);
        ck_assert_msg(lg_admin_name_get(j, "name", true, &out, err, sizeof(err)) == -1, "%s",
                      bad[i]);
        ck_assert_msg(strncmp(err, "name: ", 6) == 0, "%s", err);
        json_decref(j);
    }

    /* 200 characters, not bytes: 200 two-byte characters pass, 201 do not. */
    char body[1024] = "{\"name\":\"";
    for (int i = 0; i < ADMIN_NAME_MAX; i++) strcat(body, "\xc3\xa9");
    strcat(body, "\"}");
    j = parse(body);
    ck_assert_int_eq(lg_admin_name_get(j, "name", true, &out, err, sizeof(err)), 0);
    json_decref(j);
    body[strlen(body) - 2] = '\0';
    strcat(body, "x\"}");
    j = parse(body);
    ck_assert_int_eq(lg_admin_name_get(j, "name", true, &out, err, sizeof(err)), -1);
    json_decref(j);
}
END_TEST

START_TEST(integers)
{
    long long v = 0;
    json_t *j = parse("{\"burst\":40,\"rate_per_sec\":null,\"bad\":\"7\",\"big\":100001,"
                      "\"real\":1.5}");
    ck_assert_int_eq(lg_admin_int_get(j, "burst", 1, 100000, false, &v, err, sizeof(err)), 0);
    ck_assert_int_eq(v, 40);
    ck_assert_int_eq(lg_admin_int_get(j, "absent", 1, 10, false, &v, err, sizeof(err)), 1);
    ck_assert_int_eq(lg_admin_int_get(j, "rate_per_sec", 1, 10, true, &v, err, sizeof(err)), 2);
    ck_assert_int_eq(lg_admin_int_get(j, "rate_per_sec", 1, 10, false, &v, err, sizeof(err)), -1);
    ck_assert_int_eq(lg_admin_int_get(j, "bad", 1, 10, false, &v, err, sizeof(err)), -1);
    ck_assert_int_eq(lg_admin_int_get(j, "big", 1, 100000, false, &v, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "big: must be an integer from 1 to 100000");
    ck_assert_int_eq(lg_admin_int_get(j, "real", 1, 10, false, &v, err, sizeof(err)), -1);
    json_decref(j);
}
END_TEST

START_TEST(cidrs)
{
    char out[4096];
    json_t *j = parse("{\"allowed_cidrs\":[\"10.0.0.0/8\",\"192.0.2.7\",\"2001:DB8::/32\"]}");
    ck_assert_int_eq(lg_admin_cidrs_get(j, out, sizeof(out), err, sizeof(err)), 0);
    ck_assert_str_eq(out, "10.0.0.0/8,192.0.2.7,2001:db8::/32");
    json_decref(j);
    j = parse("{}");
    ck_assert_int_eq(lg_admin_cidrs_get(j, out, sizeof(out), err, sizeof(err)), 1);
    json_decref(j);
    const char *bad[] = {
        "[\"10.0.0.0/33\"]", "[\"10.0.0/8\"]",     "[\"::/129\"]", "[\"10.0.0.0/\"]",
        "[\"10.0.0.0/+8\"]", "[\"host.example\"]", "[5]",          "\"10.0.0.0/8\""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char body[256];
        snprintf(body, sizeof(body), "{\"allowed_cidrs\":%s}", bad[i]);
        j = parse(body);
        ck_assert_msg(lg_admin_cidrs_get(j, out, sizeof(out), err, sizeof(err)) == -1, "%s",
                      bad[i]);
        ck_assert_msg(strncmp(err, "allowed_cidrs: ", 15) == 0, "%s", err);
        json_decref(j);
    }
    /* more than the allowed number of entries */
    char body[8192] = "{\"allowed_cidrs\":[";
    for (int i = 0; i <= ADMIN_MAX_CIDRS; i++) strcat(body, i ? ",\"10.0.0.1\"" : "\"10.0.0.1\"");
    strcat(body, "]}");
    j = parse(body);
    ck_assert_int_eq(lg_admin_cidrs_get(j, out, sizeof(out), err, sizeof(err)), -1);
    json_decref(j);
}
END_TEST

START_TEST(expiry)
{
    char out[LG_TIME_LEN];
    int64_t now = 1800000000000LL; /* 2027-01-15 */
    json_t *j = parse("{\"expires_at\":\"2027-06-01T00:00:00Z\"}");
    ck_assert_int_eq(lg_admin_expiry_get(j, now, out, err, sizeof(err)), 0);
    ck_assert_str_eq(out, "2027-06-01T00:00:00.000Z");
    json_decref(j);
    j = parse("{\"expires_at\":null}");
    ck_assert_int_eq(lg_admin_expiry_get(j, now, out, err, sizeof(err)), 0);
    ck_assert_str_eq(out, "");
    json_decref(j);
    const char *bad[] = {"\"2020-01-01T00:00:00Z\"", "\"tomorrow\"", "\"2027-13-01T00:00:00Z\"",
                         "12345"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char body[128];
        snprintf(body, sizeof(body), "{\"expires_at\":%s}", bad[i]);
        j = parse(body);
        ck_assert_msg(lg_admin_expiry_get(j, now, out, err, sizeof(err)) == -1, "%s", bad[i]);
        ck_assert_msg(strncmp(err, "expires_at: ", 12) == 0, "%s", err);
        json_decref(j);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("admin_json");
    TCase *tc = tcase_create("validation");
    tcase_add_test(tc, unknown_fields);
    tcase_add_test(tc, names);
    tcase_add_test(tc, integers);
    tcase_add_test(tc, cidrs);
    tcase_add_test(tc, expiry);
    suite_add_tcase(s, tc);
    return check_run(s) ? EXIT_FAILURE : EXIT_SUCCESS;
}
