/* Unit tests of the store's replies turned into cache entries: the two
 * facility reads and the key read, as Redis gives them. */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockgate/config.h"
#include "lockgate/store_read.h"

#include "check_run.h"

static redisReply *str(const char *s)
{
    redisReply *r = calloc(1, sizeof(*r));
    r->type = s ? REDIS_REPLY_STRING : REDIS_REPLY_NIL;
    r->str = s ? strdup(s) : NULL;
    r->len = s ? strlen(s) : 0;
    return r;
}

static redisReply *arr(size_t n, const char *const *v)
{
    redisReply *r = calloc(1, sizeof(*r));
    r->type = REDIS_REPLY_ARRAY;
    r->elements = n;
    r->element = calloc(n ? n : 1, sizeof(*r->element));
    for (size_t i = 0; i < n; i++) r->element[i] = str(v[i]);
    return r;
}

static void count_one(const struct lg_facility *f, void *arg) { ++*(int *)arg; }

START_TEST(facility_replies)
{
    struct lg_cache *c = lg_cache_new();
    const char *table[] = {"fac_A", "acct_1", "A", "1", "fac_B", "acct_1", "B", "0"};
    redisReply *r = arr(8, table);
    ck_assert_int_eq(lg_store_facilities_into(c, r), 0);
    ck_assert(lg_cache_facilities_loaded(c) == false); /* the worker says when it is complete */
    ck_assert_int_eq(lg_cache_facility_count(c), 2);
    ck_assert(lg_cache_facility_get(c, "fac_A")->included);
    ck_assert(!lg_cache_facility_get(c, "fac_B")->included);
    int n = 0;
    ck_assert_int_eq(lg_store_facilities_each(r, count_one, &n), 0);
    ck_assert_int_eq(n, 2);
    freeReplyObject(r);
    const char *hmget[] = {"acct_1", "C", NULL}; /* account_id, name, included */
    r = arr(3, hmget);                           /* not quartets: refused, the table stays */
    ck_assert_int_eq(lg_store_facilities_into(c, r), -1);
    ck_assert_int_eq(lg_cache_facility_count(c), 2);
    ck_assert_int_eq(lg_store_facilities_into(c, NULL), -1);
    struct lg_facility f;
    ck_assert_int_eq(lg_store_facility_from_reply("fac_C", r, &f), 1);
    ck_assert_str_eq(f.account_id, "acct_1");
    ck_assert_str_eq(f.name, "C");
    ck_assert(f.included); /* no "included" field: included */
    freeReplyObject(r);
    const char *gone[] = {NULL, NULL, NULL};
    r = arr(3, gone);
    ck_assert_int_eq(lg_store_facility_from_reply("fac_C", r, &f), 0);
    freeReplyObject(r);
    ck_assert_int_eq(lg_store_facility_from_reply("fac_C", NULL, &f), -1);
    lg_cache_free(c);
}
END_TEST

/* A field the hash lacks comes back nil from both reads and gets the
 * parser's default, whichever read it was. */
START_TEST(facility_reply_defaults)
{
    const char *table[] = {"fac_A", "acct_1", NULL, NULL, "fac_B", "acct_1", "B", "0"};
    redisReply *r = arr(8, table);
    struct lg_cache *c = lg_cache_new();
    ck_assert_int_eq(lg_store_facilities_into(c, r), 0);
    ck_assert_int_eq(lg_cache_facility_count(c), 2);
    const struct lg_facility *a = lg_cache_facility_get(c, "fac_A");
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(a->name, "");
    ck_assert(a->included);
    ck_assert(!lg_cache_facility_get(c, "fac_B")->included);
    freeReplyObject(r);
    const char *hmget[] = {"acct_1", NULL, NULL};
    r = arr(3, hmget);
    struct lg_facility f;
    ck_assert_int_eq(lg_store_facility_from_reply("fac_A", r, &f), 1);
    ck_assert_str_eq(f.name, a->name);
    ck_assert(f.included == a->included);
    freeReplyObject(r);
    lg_cache_free(c);
}
END_TEST

static redisReply *key_hash(const char *allowed_cidrs, const char *verifier)
{
    const char *v[] = {"account_id", "acct_1",        "status",      "active", "verifier",
                       verifier,     "allowed_cidrs", allowed_cidrs, "burst",  "7"};
    return arr(10, v);
}

START_TEST(key_replies)
{
    struct lg_config cfg;
    lg_config_defaults(&cfg);
    char verifier[LG_VERIFIER_LEN + 1];
    memset(verifier, 'a', LG_VERIFIER_LEN);
    verifier[LG_VERIFIER_LEN] = '\0';
    redisReply *h = key_hash("10.0.0.0/8", verifier);
    const char *scope[] = {"fac_B", "fac_A",
                           "fac_this_id_is_far_too_long_to_be_a_facility_id_of_lockgate_at_all_"
                           "really"};
    redisReply *m = arr(3, scope);
    struct lg_key *k = lg_store_key_from_reply("lk_1", h, m, &cfg);
    ck_assert_ptr_nonnull(k);
    ck_assert_str_eq(k->account_id, "acct_1");
    ck_assert(!k->disabled);
    ck_assert_int_eq(k->burst, 7);
    ck_assert(k->rate_per_sec == cfg.rate_per_sec);
    ck_assert_int_eq(k->ncidrs, 1);
    ck_assert_int_eq(k->nfacilities, 2); /* the id that does not fit is left out */
    ck_assert_str_eq(k->facilities[0], "fac_A");
    ck_assert_str_eq(k->facilities[1], "fac_B");
    ck_assert_str_eq(k->hdr_key, "X-Lockgate-Key: lk_1");
    lg_key_unref(k);
    freeReplyObject(h);
    h = key_hash("10.0.0.0/99", verifier); /* an allowlist we cannot read */
    ck_assert_ptr_null(lg_store_key_from_reply("lk_1", h, m, &cfg));
    freeReplyObject(h);
    h = key_hash("", "short"); /* no valid verifier */
    ck_assert_ptr_null(lg_store_key_from_reply("lk_1", h, NULL, &cfg));
    freeReplyObject(h);
    h = arr(0, NULL); /* no such key */
    ck_assert_ptr_null(lg_store_key_from_reply("lk_1", h, NULL, &cfg));
    freeReplyObject(h);
    freeReplyObject(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_read");
    TCase *tc = tcase_create("store_read");
    tcase_add_test(tc, facility_replies);
    tcase_add_test(tc, facility_reply_defaults);
    tcase_add_test(tc, key_replies);
    suite_add_tcase(s, tc);
    return check_run(s) ? EXIT_FAILURE : EXIT_SUCCESS;
}
