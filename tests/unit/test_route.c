/* Unit tests of the public route parser: every route, every malformed path. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockgate/route.h"

#include "check_run.h"

static enum lg_route_kind kind(const char *path)
{
    struct lg_route r;
    return lg_route_parse(path, &r);
}

START_TEST(routes_ok)
{
    struct lg_route r;
    ck_assert_int_eq(lg_route_parse("/v1/facilities", &r), LG_ROUTE_FACILITIES);
    ck_assert_int_eq(lg_route_parse("/v1/facilities/fac_A1", &r), LG_ROUTE_FACILITY);
    ck_assert_str_eq(r.facility_id, "fac_A1");
    ck_assert_int_eq(lg_route_parse("/v1/facilities/F-1/units", &r), LG_ROUTE_UNITS);
    ck_assert_int_eq(lg_route_parse("/v1/facilities/F/units/U001", &r), LG_ROUTE_UNIT);
    ck_assert_str_eq(r.unit_id, "U001");
    ck_assert_int_eq(lg_route_parse("/v1/facilities/F/units/U_2/unlock-code", &r),
                     LG_ROUTE_UNLOCK_CODE);
    ck_assert_str_eq(r.facility_id, "F");
    ck_assert_str_eq(r.unit_id, "U_2");
    ck_assert_int_eq(kind("/v1/feed/facilities"), LG_ROUTE_FEED_SNAPSHOT);
    ck_assert_int_eq(kind("/v1/feed/facilities/changes"), LG_ROUTE_FEED_CHANGES);
    ck_assert_int_eq(kind("/v1/feed/facilities/stream"), LG_ROUTE_FEED_STREAM);
    ck_assert(lg_route_is_feed(LG_ROUTE_FEED_STREAM));
    ck_assert(!lg_route_is_feed(LG_ROUTE_UNIT));
}
END_TEST

START_TEST(routes_unknown)
{
    ck_assert_int_eq(kind("/"), LG_ROUTE_NONE);
    ck_assert_int_eq(kind("/v2/facilities"), LG_ROUTE_NONE);
    ck_assert_int_eq(kind("/v1/things"), LG_ROUTE_NONE);
    ck_assert_int_eq(kind("/v1/facilities/F/locks"), LG_ROUTE_NONE);
    ck_assert_int_eq(kind("/v1/facilities/F/units/U/code"), LG_ROUTE_NONE);
    ck_assert_int_eq(kind("/v1/feed/other"), LG_ROUTE_NONE);
}
END_TEST

START_TEST(routes_bad)
{
    ck_assert_int_eq(kind(""), LG_ROUTE_BAD);
    ck_assert_int_eq(kind("v1/facilities"), LG_ROUTE_BAD);
    ck_assert_int_eq(kind("/v1/facilities/"), LG_ROUTE_BAD);
    ck_assert_int_eq(kind("/v1//facilities"), LG_ROUTE_BAD);
    ck_assert_int_eq(kind("/v1/facilities/.."), LG_ROUTE_BAD);
    ck_assert_int_eq(kind("/v1/facilities/../units"), LG_ROUTE_BAD);
    ck_assert_int_eq(kind("/v1/facilities/a%2Fb"), LG_ROUTE_BAD);
    ck_assert_int_eq(kind("/v1/facilities/a b"), LG_ROUTE_BAD);
    ck_assert_int_eq(kind("/v1/facilities/F/units/U.1"), LG_ROUTE_BAD);
    ck_assert_int_eq(kind("/v1/facilities/a/b/c/d/e/f/g/h/i"), LG_ROUTE_BAD);
    char id[80], path[128];
    memset(id, 'a', 65);
    id[65] = '\0';
    snprintf(path, sizeof(path), "/v1/facilities/%s", id);
    ck_assert_int_eq(kind(path), LG_ROUTE_BAD);
    id[64] = '\0';
    snprintf(path, sizeof(path), "/v1/facilities/%s", id);
    ck_assert_int_eq(kind(path), LG_ROUTE_FACILITY);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("route");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, routes_ok);
    tcase_add_test(tc, routes_unknown);
    tcase_add_test(tc, routes_bad);
    suite_add_tcase(s, tc);
    return check_run(s) ? EXIT_FAILURE : EXIT_SUCCESS;
}
