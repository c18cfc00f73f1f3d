/* Unit tests of credential parsing, secret checks and the throttle of
 * failed authentications. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "lockgate/auth.h"
#include "lockgate/cache.h"
#include "lockgate/config.h"
#include "lockgate/secrets.h"

#include "check_run.h"

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
    /* Both styles at once, even each well-formed. */
    basic(hdr, key, secret);
    ck_assert_int_eq(lg_auth_parse(hdr, key, secret, k, s), LG_AUTH_BOTH);
    ck_assert_int_eq(lg_auth_parse(hdr, key, NULL, k, s), LG_AUTH_BOTH);
    ck_assert_int_eq(lg_auth_parse(hdr, NULL, secret, k, s), LG_AUTH_BOTH);
    ck_assert_int_eq(lg_auth_parse("Bearer abc", key, NULL, k, s), LG_AUTH_BOTH);
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

/* The throttle's memory is fixed: a flood of new clients takes the slots
 * claimed longest ago, and every client of the flood is still counted. */
START_TEST(throttle_bounded)
{
    int retry = 0;
    char ip[64];
    lg_auth_throttle_init(1);
    lg_auth_failed("192.0.2.1");
    ck_assert(lg_auth_throttled("192.0.2.1", &retry));
    for (int i = 0; i < 3 * 8192; i++) {
        snprintf(ip, sizeof(ip), "10.%d.%d.%d", i >> 16 & 255, i >> 8 & 255, i & 255);
        ck_assert(!lg_auth_throttled(ip, &retry));
        lg_auth_failed(ip);
        ck_assert_msg(lg_auth_throttled(ip, &retry), "%s not counted", ip);
    }
    ck_assert(!lg_auth_throttled("192.0.2.1", &retry)); /* its slot went to the flood */
    lg_auth_failed("192.0.2.1");
    ck_assert(lg_auth_throttled("192.0.2.1", &retry));
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
    tcase_add_test(tc, throttle);
    tcase_add_test(tc, throttle_bounded);
    suite_add_tcase(s, tc);
    return check_run(s) ? EXIT_FAILURE : EXIT_SUCCESS;
}
