/* Unit tests of console password hashing: scrypt round trip, per-hash salt,
 * refusal of wrong passwords and of malformed or weakened stored hashes. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "lockgate/password.h"

#include "check_run.h"

START_TEST(round_trip)
{
    char a[LG_PASSWORD_HASH_MAX], b[LG_PASSWORD_HASH_MAX];
    ck_assert_int_eq(lg_password_hash("correct horse", 13, a), 0);
    ck_assert_int_eq(lg_password_hash("correct horse", 13, b), 0);
    ck_assert_msg(strncmp(a, "scrypt$15$8$1$", 14) == 0, "hash %s", a);
    ck_assert_str_ne(a, b); /* a fresh salt each time */
    ck_assert(lg_password_verify("correct horse", 13, a));
    ck_assert(lg_password_verify("correct horse", 13, b));
    ck_assert(!lg_password_verify("correct horsf", 13, a));
    ck_assert(!lg_password_verify("correct hors", 12, a));
    ck_assert(!lg_password_verify("correct horse", 13, NULL));
}
END_TEST

START_TEST(malformed)
{
    char h[LG_PASSWORD_HASH_MAX];
    ck_assert_int_eq(lg_password_hash("pw-123456", 9, h), 0);
    char weak[LG_PASSWORD_HASH_MAX];
    snprintf(weak, sizeof(weak), "scrypt$10%s", h + 9); /* N = 2^10: refused */
    ck_assert(!lg_password_verify("pw-123456", 9, weak));
    const char *bad[] = {"",
                         "scrypt$",
                         "scrypt$15$8$1$",
                         "scrypt$15$8$1$AAAA$AAAA",
                         "plain:pw-123456",
                         "scrypt$15$8$2$x$y"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!lg_password_verify("pw-123456", 9, bad[i]), "accepted '%s'", bad[i]);
    h[strlen(h) - 3] ^= 1; /* one bit of the derived bytes */
    ck_assert(!lg_password_verify("pw-123456", 9, h));
}
END_TEST

START_TEST(generated)
{
    char a[LG_PASSWORD_GEN_LEN], b[LG_PASSWORD_GEN_LEN];
    ck_assert_int_eq(lg_password_generate(a), 0);
    ck_assert_int_eq(lg_password_generate(b), 0);
    ck_assert_uint_eq(strlen(a), LG_PASSWORD_GEN_LEN - 1);
    ck_assert_str_ne(a, b);
    for (const char *p = a; *p; p++)
        ck_assert_msg((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'Z') ||
                          (*p >= 'a' && *p <= 'z'),
                      "char %c", *p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("password");
    TCase *tc = tcase_create("scrypt");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, malformed);
    tcase_add_test(tc, generated);
    suite_add_tcase(s, tc);
    return check_run(s) ? 1 : 0;
}
