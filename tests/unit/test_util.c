/* Unit tests of the small shared pieces: ISO 8601 times, request ids and
 * the parsing of events received on the events channel. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockgate/event.h"
#include "lockgate/util.h"

#include "check_run.h"

START_TEST(times)
{
    char out[LG_TIME_LEN];
    int64_t ms = 0;
    lg_time_format(1795655987909LL, out);
    ck_assert_str_eq(out, "2026-11-26T01:19:47.909Z");
    ck_assert_int_eq(lg_time_parse(out, &ms), 0);
    ck_assert_int_eq(ms, 1795655987909LL);
    ck_assert_int_eq(lg_time_parse("2027-06-01T00:00:00Z", &ms), 0);
    lg_time_format(ms, out);
    ck_assert_str_eq(out, "2027-06-01T00:00:00.000Z");
    ck_assert_int_eq(lg_time_parse("2027-06-01T00:00:00.5Z", &ms), 0);
    ck_assert_int_eq(ms % 1000, 500);
    const char *bad[] = {"",
                         "2027-06-01",
                         "2027-06-01T00:00:00",       /* no zone */
                         "2027-06-01T00:00:00+02:00", /* only UTC */
                         "2027-13-01T00:00:00Z",
                         "2027-06-01T24:00:00Z",
                         "2027-06-01T00:00:00.Z",
                         "2027-06-01T00:00:00ZZ",
                         "tomorrow"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(lg_time_parse(bad[i], &ms) == -1, "accepted '%s'", bad[i]);
}
END_TEST

START_TEST(request_ids)
{
    char a[17], b[17];
    lg_request_id_new(a);
    lg_request_id_new(b);
    ck_assert_int_eq(strlen(a), 16);
    ck_assert_int_eq(strspn(a, "0123456789abcdef"), 16);
    ck_assert_str_ne(a, b);
}
END_TEST

START_TEST(events)
{
    struct lg_event ev;
    const char *key = "{\"id\":\"1-2\",\"type\":\"key.disabled\",\"account_id\":\"acct_A\","
                      "\"key_id\":\"lk_x\",\"at\":\"2026-11-26T01:00:00.000Z\"}";
    ck_assert_int_eq(lg_event_parse(key, strlen(key), &ev), 0);
    ck_assert_str_eq(ev.type, "key.disabled");
    ck_assert_str_eq(ev.key_id, "lk_x");
    ck_assert_str_eq(ev.facility_id, "");
    ck_assert_int_eq(ev.included, -1);
    const char *fac = "{\"id\":\"3-0\",\"type\":\"facility.excluded\",\"account_id\":\"a\","
                      "\"facility_id\":\"fac_1\",\"included\":false,\"name\":\"N\"}";
    ck_assert_int_eq(lg_event_parse(fac, strlen(fac), &ev), 0);
    ck_assert_str_eq(ev.facility_id, "fac_1");
    ck_assert_int_eq(ev.included, 0);
    const char *bad[] = {"",
                         "not json",
                         "[1,2]",
                         "{\"id\":\"1-0\"}",                        /* no type */
                         "{\"type\":5}",                            /* wrong type */
                         "{\"type\":\"key.updated\",\"key_id\":7}", /* wrong id type */
                         "{\"type\":\"facility.updated\",\"included\":\"no\"}",
                         "{\"type\":\"key.updated\",\"type\":\"key.deleted\"}"}; /* duplicate */
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(lg_event_parse(bad[i], strlen(bad[i]), &ev) == -1, "accepted %s", bad[i]);
    /* an id longer than any the store makes */
    char big[512];
    snprintf(big, sizeof(big), "{\"type\":\"key.updated\",\"key_id\":\"%0200d\"}", 1);
    ck_assert_int_eq(lg_event_parse(big, strlen(big), &ev), -1);
    /* oversized events are refused before parsing */
    char *huge = malloc(8192);
    memset(huge, ' ', 8191);
    huge[8191] = '\0';
    memcpy(huge, "{\"type\":\"key.updated\"", 21);
    huge[8190] = '}';
    ck_assert_int_eq(lg_event_parse(huge, strlen(huge), &ev), -1);
    free(huge);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("util");
    TCase *tc = tcase_create("util");
    tcase_add_test(tc, times);
    tcase_add_test(tc, request_ids);
    tcase_add_test(tc, events);
    suite_add_tcase(s, tc);
    return check_run(s) ? EXIT_FAILURE : EXIT_SUCCESS;
}
