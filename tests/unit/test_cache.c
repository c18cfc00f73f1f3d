/* Unit tests of the worker cache: scope and allowlist decisions, the
 * per-account facility index, the key epoch and the cache's flags. */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockgate/cache.h"

#include "check_run.h"

static struct lg_key *make_key(const char *acct, bool all, const char **facs, int n)
{
    struct lg_key *k = calloc(1, sizeof(*k));
    k->refs = 1;
    snprintf(k->key_id, sizeof(k->key_id), "lk_test");
    snprintf(k->account_id, sizeof(k->account_id), "%s", acct);
    k->all_facilities = all;
    k->facilities = calloc((size_t)n + 1, sizeof(*k->facilities));
    for (int i = 0; i < n; i++) snprintf(k->facilities[i], sizeof(k->facilities[i]), "%s", facs[i]);
    k->nfacilities = n;
    return k;
}

START_TEST(scope_decisions)
{
    const char *list[] = {"fac_B", "fac_A"};
    struct lg_key *scoped = make_key("acct_1", false, list, 2);
    /* lg_key_sees searches a sorted list, as lg_key_from_reply leaves it. */
    snprintf(scoped->facilities[0], 72, "fac_A");
    snprintf(scoped->facilities[1], 72, "fac_B");
    struct lg_key *all = make_key("acct_1", true, NULL, 0);
    struct lg_key *none = make_key("acct_1", false, NULL, 0);
    struct lg_facility a = {.id = "fac_A", .account_id = "acct_1", .name = "A", .included = true};
    struct lg_facility c = {.id = "fac_C", .account_id = "acct_1", .name = "C", .included = true};
    struct lg_facility other = {
        .id = "fac_A", .account_id = "acct_2", .name = "A", .included = true};
    struct lg_facility excluded = {
        .id = "fac_B", .account_id = "acct_1", .name = "B", .included = false};
    ck_assert(lg_key_sees(scoped, &a));
    ck_assert(!lg_key_sees(scoped, &c));
    ck_assert(!lg_key_sees(scoped, &other));
    ck_assert(!lg_key_sees(scoped, &excluded));
    ck_assert(!lg_key_sees(scoped, NULL));
    ck_assert(lg_key_sees(all, &c));
    ck_assert(!lg_key_sees(all, &other));
    ck_assert(!lg_key_sees(all, &excluded));
    ck_assert(!lg_key_sees(none, &a));
    all->feed = true; /* feed keys see no facility through unit routes */
    ck_assert(!lg_key_sees(all, &c));
    lg_key_unref(scoped);
    lg_key_unref(all);
    lg_key_unref(none);
}
END_TEST

START_TEST(allowlists)
{
    struct lg_key *k = make_key("acct_1", true, NULL, 0);
    ck_assert(lg_key_ip_allowed(k, "203.0.113.9")); /* no list: any address */
    ck_assert_int_eq(lg_cidr_parse("10.0.0.0/8", &k->cidrs[0]), 0);
    ck_assert_int_eq(lg_cidr_parse("2001:db8::/32", &k->cidrs[1]), 0);
    ck_assert_int_eq(lg_cidr_parse("192.168.1.7", &k->cidrs[2]), 0);
    k->ncidrs = 3;
    ck_assert(lg_key_ip_allowed(k, "10.200.3.4"));
    ck_assert(!lg_key_ip_allowed(k, "11.0.0.1"));
    ck_assert(lg_key_ip_allowed(k, "2001:db8:1::5"));
    ck_assert(!lg_key_ip_allowed(k, "2001:db9::5"));
    ck_assert(lg_key_ip_allowed(k, "192.168.1.7"));
    ck_assert(!lg_key_ip_allowed(k, "192.168.1.8"));
    ck_assert(!lg_key_ip_allowed(k, "not-an-ip"));
    struct lg_cidr x;
    ck_assert_int_eq(lg_cidr_parse("10.0.0.0/33", &x), -1);
    ck_assert_int_eq(lg_cidr_parse("10.0.0.0/", &x), -1);
    ck_assert_int_eq(lg_cidr_parse("10.0.0/8", &x), -1);
    ck_assert_int_eq(lg_cidr_parse("::/129", &x), -1);
    ck_assert_int_eq(lg_cidr_parse("::/0", &x), 0);
    lg_key_unref(k);
}
END_TEST

static int has(const struct lg_facility *const *items, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(items[i]->id, id) == 0) return 1;
    return 0;
}

/* The per-account index behind GET /v1/facilities follows every change. */
START_TEST(account_index)
{
    struct lg_cache *c = lg_cache_new();
    const struct lg_facility *const *items;
    ck_assert_int_eq(lg_cache_facility_put(c, "f1", "A", "One", true), 0);
    ck_assert_int_eq(lg_cache_facility_put(c, "f2", "A", "Two", true), 0);
    ck_assert_int_eq(lg_cache_facility_put(c, "f3", "B", "Three", true), 0);
    ck_assert_int_eq(lg_cache_account_facilities(c, "A", &items), 2);
    ck_assert(has(items, 2, "f1") && has(items, 2, "f2"));
    /* a refresh replaces the entry: the index points at the new one */
    ck_assert_int_eq(lg_cache_facility_put(c, "f1", "A", "Uno", false), 0);
    ck_assert_int_eq(lg_cache_account_facilities(c, "A", &items), 2);
    for (size_t i = 0; i < 2; i++)
        if (strcmp(items[i]->id, "f1") == 0) {
            ck_assert_str_eq(items[i]->name, "Uno");
            ck_assert(!items[i]->included);
        }
    /* moved to another account (an imported id re-created elsewhere) */
    ck_assert_int_eq(lg_cache_facility_put(c, "f2", "B", "Two", true), 0);
    ck_assert_int_eq(lg_cache_account_facilities(c, "A", &items), 1);
    ck_assert_int_eq(lg_cache_account_facilities(c, "B", &items), 2);
    ck_assert(has(items, 2, "f2") && has(items, 2, "f3"));
    lg_cache_facility_drop(c, "f1");
    ck_assert_int_eq(lg_cache_account_facilities(c, "A", &items), 0);
    ck_assert_ptr_null(items);
    lg_cache_facilities_flush(c);
    ck_assert_int_eq(lg_cache_account_facilities(c, "B", &items), 0);
    ck_assert_int_eq(lg_cache_facility_count(c), 0);
    lg_cache_free(c);
}
END_TEST

/* Every key drop and flush moves the epoch, even of a key the cache does not
 * hold (the event may concern a read in flight); reads, puts and facility
 * changes do not. */
START_TEST(key_epoch)
{
    struct lg_cache *c = lg_cache_new();
    uint64_t e = lg_cache_key_epoch(c);
    lg_cache_key_put(c, make_key("acct_1", true, NULL, 0));
    ck_assert_ptr_nonnull(lg_cache_key_get(c, "lk_test"));
    ck_assert_int_eq(lg_cache_facility_put(c, "f1", "acct_1", "One", true), 0);
    lg_cache_facility_drop(c, "f1");
    lg_cache_facilities_flush(c);
    ck_assert_uint_eq(lg_cache_key_epoch(c), e);
    lg_cache_key_drop(c, "lk_test");
    ck_assert_ptr_null(lg_cache_key_get(c, "lk_test"));
    ck_assert_uint_gt(lg_cache_key_epoch(c), e);
    e = lg_cache_key_epoch(c);
    lg_cache_key_drop(c, "lk_test");
    ck_assert_uint_gt(lg_cache_key_epoch(c), e);
    e = lg_cache_key_epoch(c);
    lg_cache_keys_flush(c);
    ck_assert_uint_gt(lg_cache_key_epoch(c), e);
    lg_cache_key_put(c, make_key("acct_1", true, NULL, 0));
    e = lg_cache_key_epoch(c);
    lg_cache_keys_flush(c);
    ck_assert_ptr_null(lg_cache_key_get(c, "lk_test"));
    ck_assert_uint_gt(lg_cache_key_epoch(c), e);
    /* the subscription's edges too: a read across one is not cached */
    e = lg_cache_key_epoch(c);
    lg_cache_set_trust(c, LG_CACHE_EXACT);
    ck_assert_uint_gt(lg_cache_key_epoch(c), e);
    e = lg_cache_key_epoch(c);
    lg_cache_set_trust(c, LG_CACHE_NONE);
    ck_assert_uint_gt(lg_cache_key_epoch(c), e);
    lg_cache_free(c);
}
END_TEST

/* A facility read sent before an edge of the subscription is not applied
 * after it: the epoch moves with every trust change, and only with those. */
START_TEST(facilities_epoch)
{
    struct lg_cache *c = lg_cache_new();
    uint64_t e = lg_cache_facilities_epoch(c);
    ck_assert_int_eq(lg_cache_facility_put(c, "fac_A", "acct_1", "A", true), 0);
    lg_cache_facility_drop(c, "fac_A");
    lg_cache_facilities_flush(c);
    lg_cache_keys_flush(c);
    ck_assert_uint_eq(lg_cache_facilities_epoch(c), e);
    const enum lg_cache_trust edges[] = {LG_CACHE_EXACT, LG_CACHE_NONE, LG_CACHE_EXACT,
                                         LG_CACHE_FALLBACK, LG_CACHE_NONE};
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
        lg_cache_set_trust(c, edges[i]);
        ck_assert_uint_gt(lg_cache_facilities_epoch(c), e);
        e = lg_cache_facilities_epoch(c);
    }
    lg_cache_free(c);
}
END_TEST

/* Which trust answers when: exact always, fallback only without Redis. */
START_TEST(trust)
{
    struct lg_cache *c = lg_cache_new();
    ck_assert_int_eq(lg_cache_trust(c), LG_CACHE_NONE);
    ck_assert(!lg_cache_answers(c, true));
    ck_assert(!lg_cache_answers(c, false));
    lg_cache_set_trust(c, LG_CACHE_FALLBACK);
    ck_assert(!lg_cache_answers(c, true));
    ck_assert(lg_cache_answers(c, false));
    lg_cache_set_trust(c, LG_CACHE_EXACT);
    ck_assert(lg_cache_answers(c, true));
    ck_assert(lg_cache_answers(c, false));
    lg_cache_free(c);
}
END_TEST

/* One parser, one set of defaults, whoever reads the facility: the
 * gateway's table and per-request reads, the admin API and the feed. */
START_TEST(facility_defaults)
{
    struct lg_facility f;
    ck_assert_int_eq(lg_facility_parse(&f, "fac_A", NULL, NULL, NULL), 0); /* no such hash */
    ck_assert_str_eq(f.account_id, "");
    ck_assert_int_eq(lg_facility_parse(&f, "fac_A", "acct_1", NULL, NULL), 1);
    ck_assert_str_eq(f.id, "fac_A");
    ck_assert_str_eq(f.account_id, "acct_1");
    ck_assert_str_eq(f.name, ""); /* no name: "" */
    ck_assert(f.included);        /* no flag: included, as created */
    ck_assert_int_eq(lg_facility_parse(&f, "fac_A", "acct_1", "A", "1"), 1);
    ck_assert_str_eq(f.name, "A");
    ck_assert(f.included);
    const char *not_included[] = {"0", "", "true", "yes", "11", " 1"};
    for (size_t i = 0; i < sizeof(not_included) / sizeof(*not_included); i++) {
        ck_assert_int_eq(lg_facility_parse(&f, "fac_A", "acct_1", "A", not_included[i]), 1);
        ck_assert_msg(!f.included, "included \"%s\" reads as included", not_included[i]);
    }
    ck_assert_int_eq(lg_facility_parse(&f, "fac_A", "", "A", "1"),
                     1); /* a facility of no account */
    char longid[200];
    memset(longid, 'x', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    ck_assert_int_eq(lg_facility_parse(&f, longid, "acct_1", "A", "1"), -1);
    ck_assert_int_eq(lg_facility_parse(&f, "fac_A", longid, "A", "1"), -1);
}
END_TEST

/* Both flags start false, are the worker's to set, and outlive key flushes. */
/* Anything derived from the facility table (a key's cached facility list)
 * is current only while the version stays: every change moves it. */
START_TEST(facilities_version)
{
    struct lg_cache *c = lg_cache_new();
    uint64_t v = lg_cache_facilities_version(c);
    ck_assert_int_eq(lg_cache_facility_put(c, "fac_A", "acct_1", "A", true), 0);
    ck_assert_uint_ne(lg_cache_facilities_version(c), v);
    v = lg_cache_facilities_version(c);
    ck_assert_int_eq(lg_cache_facility_put(c, "fac_A", "acct_1", "A", false), 0); /* excluded */
    ck_assert_uint_ne(lg_cache_facilities_version(c), v);
    v = lg_cache_facilities_version(c);
    lg_cache_facility_drop(c, "fac_A");
    ck_assert_uint_ne(lg_cache_facilities_version(c), v);
    v = lg_cache_facilities_version(c);
    lg_cache_facilities_flush(c);
    ck_assert_uint_ne(lg_cache_facilities_version(c), v);
    lg_cache_free(c);
}
END_TEST

START_TEST(flags)
{
    struct lg_cache *c = lg_cache_new();
    ck_assert_int_eq(lg_cache_trust(c), LG_CACHE_NONE);
    ck_assert(!lg_cache_facilities_loaded(c));
    lg_cache_set_trust(c, LG_CACHE_EXACT);
    ck_assert_int_eq(lg_cache_trust(c), LG_CACHE_EXACT);
    ck_assert(!lg_cache_facilities_loaded(c));
    lg_cache_set_facilities_loaded(c, true);
    ck_assert(lg_cache_facilities_loaded(c));
    lg_cache_keys_flush(c);
    ck_assert_int_eq(lg_cache_trust(c), LG_CACHE_EXACT);
    lg_cache_set_trust(c, LG_CACHE_NONE);
    ck_assert_int_eq(lg_cache_trust(c), LG_CACHE_NONE);
    ck_assert(lg_cache_facilities_loaded(c));
    lg_cache_set_facilities_loaded(c, false);
    ck_assert(!lg_cache_facilities_loaded(c));
    lg_cache_free(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cache");
    TCase *tc = tcase_create("cache");
    tcase_add_test(tc, scope_decisions);
    tcase_add_test(tc, allowlists);
    tcase_add_test(tc, account_index);
    tcase_add_test(tc, key_epoch);
    tcase_add_test(tc, flags);
    tcase_add_test(tc, facilities_version);
    tcase_add_test(tc, facilities_epoch);
    tcase_add_test(tc, trust);
    tcase_add_test(tc, facility_defaults);
    suite_add_tcase(s, tc);
    return check_run(s) ? EXIT_FAILURE : EXIT_SUCCESS;
}
