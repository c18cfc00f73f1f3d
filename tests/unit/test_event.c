/* Unit tests for event.c: an event from the channel's JSON, and the same
 * event from an entry of the events stream (as XRANGE gives it). */
#include <check.h>
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

#include "lockgate/event.h"

#include "check_run.h"

static redisReply strs[32], *ptrs[32], fields, idr, entry, *top[2];
static int nstr;

static redisReply *str(const char *s)
{
    redisReply *r = &strs[nstr++];
    memset(r, 0, sizeof(*r));
    r->type = REDIS_REPLY_STRING;
    r->str = (char *)s;
    r->len = strlen(s);
    return r;
}

/* [ID, [k1, v1, ...]] from a NULL-terminated list of fields and values. */
static const redisReply *make_entry(const char *id, const char *const *kv)
{
    nstr = 0;
    size_t n = 0;
    for (; kv[n] != NULL; n++) ptrs[n] = str(kv[n]);
    memset(&fields, 0, sizeof(fields));
    fields.type = REDIS_REPLY_ARRAY;
    fields.elements = n;
    fields.element = ptrs;
    idr = *str(id);
    top[0] = &idr;
    top[1] = &fields;
    memset(&entry, 0, sizeof(entry));
    entry.type = REDIS_REPLY_ARRAY;
    entry.elements = 2;
    entry.element = top;
    return &entry;
}

START_TEST(test_from_entry)
{
    struct lg_event ev;
    const char *kv[] = {"type",        "facility.excluded",
                        "account_id",  "ac_1",
                        "facility_id", "F9",
                        "included",    "0",
                        "name",        "Depot",
                        "at",          "2026-12-01T10:00:00.000Z",
                        NULL};
    ck_assert_int_eq(lg_event_from_entry(make_entry("1764583200000-3", kv), &ev), 0);
    ck_assert_str_eq(ev.id, "1764583200000-3");
    ck_assert_str_eq(ev.type, "facility.excluded");
    ck_assert_str_eq(ev.account_id, "ac_1");
    ck_assert_str_eq(ev.facility_id, "F9");
    ck_assert_str_eq(ev.key_id, "");
    ck_assert_int_eq(ev.included, 0);
    ck_assert_str_eq(ev.at, "2026-12-01T10:00:00.000Z");

    /* the same as the channel's JSON says it */
    struct lg_event js;
    const char *json = "{\"id\":\"1764583200000-3\",\"type\":\"facility.excluded\","
                       "\"account_id\":\"ac_1\",\"facility_id\":\"F9\",\"included\":false,"
                       "\"name\":\"Depot\",\"at\":\"2026-12-01T10:00:00.000Z\"}";
    ck_assert_int_eq(lg_event_parse(json, strlen(json), &js), 0);
    ck_assert_str_eq(js.id, ev.id);
    ck_assert_str_eq(js.type, ev.type);
    ck_assert_str_eq(js.account_id, ev.account_id);
    ck_assert_str_eq(js.facility_id, ev.facility_id);
    ck_assert_str_eq(js.key_id, ev.key_id);
    ck_assert_str_eq(js.unit_id, ev.unit_id);
    ck_assert_str_eq(js.at, ev.at);
    ck_assert_int_eq(js.included, ev.included);

    const char *key[] = {"type", "key.disabled", "account_id", "ac_1", "key_id", "lk_x", NULL};
    ck_assert_int_eq(lg_event_from_entry(make_entry("1-1", key), &ev), 0);
    ck_assert_str_eq(ev.key_id, "lk_x");
    ck_assert_int_eq(ev.included, -1);
}
END_TEST

START_TEST(test_from_entry_bad)
{
    struct lg_event ev;
    const char *notype[] = {"account_id", "ac_1", NULL};
    ck_assert_int_eq(lg_event_from_entry(make_entry("1-1", notype), &ev), -1);
    const char *inc[] = {"type", "facility.included", "included", "yes", NULL};
    ck_assert_int_eq(lg_event_from_entry(make_entry("1-1", inc), &ev), -1);
    char longid[200];
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    const char *big[] = {"type", "key.disabled", "key_id", longid, NULL};
    ck_assert_int_eq(lg_event_from_entry(make_entry("1-1", big), &ev), -1);
    const char *ok[] = {"type", "key.disabled", NULL};
    ck_assert_int_eq(lg_event_from_entry(make_entry(longid, ok), &ev), -1);
    ck_assert_int_eq(lg_event_from_entry(NULL, &ev), -1);
    redisReply nil = {.type = REDIS_REPLY_NIL};
    ck_assert_int_eq(lg_event_from_entry(&nil, &ev), -1);
}
END_TEST

static Suite *event_suite(void)
{
    Suite *s = suite_create("event");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_from_entry);
    tcase_add_test(tc, test_from_entry_bad);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return check_run(event_suite()) ? EXIT_FAILURE : EXIT_SUCCESS; }
