/* Unit tests of credential parsing, secret checks and the scope and
 * allowlist decisions: everything the data plane decides without I/O. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "lockgate/auth.h"
#include "lockgate/cache.h"
#include "lockgate/config.h"
#include "lockgate/secrets.h"

static char key[LG_KEY_LEN + 1], secret[LG_SECRET_LEN + 1];

static void basic(char *out, const char *k, const char *s)
{
    char plain[256];
    unsigned char b64[400];
    snprintf(plain, sizeof(plain), "%s:%s", k, s);
    EVP_EncodeBlock(b64, (const unsigned char *)plain, (int)strlen(plain));
    sprintf(out, "Basic %s", b64);
}

static void setup(void)
{
    ck_assert_int_eq(lg_cred_key_new(key), 0);
    ck_assert_int_eq(lg_cred_secret_new(secret), 0);
}

START_TEST(parse_basic_and_headers)
{
    char hdr[512], k[LG_KEY_LEN + 1], s[LG_SECRET_LEN + 1];
    basic(hdr, key, secret);
    ck_assert_int_eq(lg_auth_parse(hdr, NULL, NULL, k, s), LG_AUTH_OK);
    ck_assert_str_eq(k, key);
    ck_assert_str_eq(s, secret);
    ck_assert_int_eq(lg_auth_parse(NULL, key, secret, k, s), LG_AUTH_OK);
    ck_assert_str_eq(s, secret);
    hdr[0] = 'b'; /* the scheme is case-insensitive */
    ck_assert_int_eq(lg_auth_parse(hdr, NULL, NULL, k, s), LG_AUTH_OK);
}
END_TEST

START_TEST(parse_refusals)
{
    char hdr[512], k[LG_KEY_LEN + 1], s[LG_SECRET_LEN + 1], bad[LG_SECRET_LEN + 1];
    ck_assert_int_eq(lg_auth_parse(NULL, NULL, NULL, k, s), LG_AUTH_MISSING);
    ck_assert_int_eq(lg_auth_parse(NULL, key, NULL, k, s), LG_AUTH_INVALID);
    ck_assert_int_eq(lg_auth_parse(NULL, NULL, secret, k, s), LG_AUTH_INVALID);
    ck_assert_int_eq(lg_auth_parse("Bearer abc", NULL, NULL, k, s), LG_AUTH_INVALID);
    ck_assert_int_eq(lg_auth_parse("Basic", NULL, NULL, k, s), LG_AUTH_INVALID);
    ck_assert_int_eq(lg_auth_parse("Basic !!!!", NULL, NULL, k, s), LG_AUTH_INVALID);
    ck_assert_int_eq(lg_auth_parse("Basic Zm9v", NULL, NULL, k, s), LG_AUTH_INVALID); /* "foo" */
    /* A flipped character breaks the checksum: refused without any lookup. */
    strcpy(bad, secret);
    bad[10] = bad[10] == 'a' ? 'b' : 'a';
    ck_assert_int_eq(lg_auth_parse(NULL, key, bad, k, s), LG_AUTH_INVALID);
    basic(hdr, key, bad);
    ck_assert_int_eq(lg_auth_parse(hdr, NULL, NULL, k, s), LG_AUTH_INVALID);
    /* Key and secret swapped. */
    ck_assert_int_eq(lg_auth_parse(NULL, secret, key, k, s), LG_AUTH_INVALID);
    /* Overlong header. */
    char big[2048];
    memset(big, 'A', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big, "Basic ", 6);
    ck_assert_int_eq(lg_auth_parse(big, NULL, NULL, k, s), LG_AUTH_INVALID);
}
END_TEST

static struct lg_key *make_key(const char *acct, bool all, const char **facs, int n)
{
    struct lg_key *k = calloc(1, sizeof(*k));
    k->refs = 1;
    snprintf(k->key_id, sizeof(k->key_id), "%s", key);
    snprintf(k->account_id, sizeof(k->account_id), "%s", acct);
    k->all_facilities = all;
    k->facilities = calloc((size_t)n + 1, sizeof(*k->facilities));
    for (int i = 0; i < n; i++) snprintf(k->facilities[i], sizeof(k->facilities[i]), "%s", facs[i]);
    k->nfacilities = n;
    return k;
}

START_TEST(verify_secret)
{
    struct lg_secrets sec;
    memset(&sec, 0, sizeof(sec));
    sec.pepper_len = 32;
    memset(sec.pepper, 7, 32);
    struct lg_key *k = make_key("acct_A", true, NULL, 0);
    ck_assert_int_eq(lg_cred_verifier(sec.pepper, 32, key, secret, strlen(secret), k->verifier), 0);
    char other[LG_SECRET_LEN + 1];
    lg_cred_secret_new(other);
    ck_assert(!lg_auth_verify(k, &sec, other));
    ck_assert(lg_auth_verify(k, &sec, secret));
    ck_assert(k->has_verified);
    /* The cached digest path refuses a wrong secret too. */
    ck_assert(!lg_auth_verify(k, &sec, other));
    ck_assert(lg_auth_verify(k, &sec, secret));
    lg_key_unref(k);
}
END_TEST

START_TEST(scope_decisions)
{
    const char *list[] = {"fac_B", "fac_A"};
    struct lg_key *scoped = make_key("acct_1", false, list, 2);
    /* lg_key_sees searches a sorted list, as lg_key_from_reply leaves it. */
    snprintf(scoped->facilities[0], 72, "fac_A");
    snprintf(scoped->facilities[1], 72, "fac_B");
    struct lg_key *all = make_key("acct_1", true, NULL, 0);
    struct lg_key *none = make_key("acct_1", false, NULL, 0);
    struct lg_facility a = {"fac_A", "acct_1", "A", true};
    struct lg_facility c = {"fac_C", "acct_1", "C", true};
    struct lg_facility other = {"fac_A", "acct_2", "A", true};
    struct lg_facility excluded = {"fac_B", "acct_1", "B", false};
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

START_TEST(throttle)
{
    int retry = 0;
    lg_auth_throttle_init(3);
    ck_assert(!lg_auth_throttled("198.51.100.1", &retry));
    for (int i = 0; i < 3; i++) lg_auth_failed("198.51.100.1");
    ck_assert(lg_auth_throttled("198.51.100.1", &retry));
    ck_assert(retry >= 1 && retry <= 60);
    ck_assert(!lg_auth_throttled("198.51.100.2", &retry));
    /* IPv6 clients count per /64: rotating addresses inside it does not help */
    lg_auth_failed("2001:db8:1:2::1");
    lg_auth_failed("2001:db8:1:2::2");
    lg_auth_failed("2001:db8:1:2:aaaa::3");
    ck_assert(lg_auth_throttled("2001:db8:1:2::99", &retry));
    ck_assert(!lg_auth_throttled("2001:db8:1:3::1", &retry));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("auth");
    TCase *tc = tcase_create("auth");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, parse_basic_and_headers);
    tcase_add_test(tc, parse_refusals);
    tcase_add_test(tc, verify_secret);
    tcase_add_test(tc, scope_decisions);
    tcase_add_test(tc, allowlists);
    tcase_add_test(tc, account_index);
    tcase_add_test(tc, throttle);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
