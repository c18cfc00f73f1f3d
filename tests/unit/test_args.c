/* Unit tests for args.c: arguments copied into reusable buffers, and those
 * copies wiped when released (they may be a key's verifier and sealed
 * secret), not left for the next command that reuses the buffers. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockgate/args.h"

#include "check_run.h"

static int all_zero(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0) return 0;
    return 1;
}

START_TEST(test_keep_copies)
{
    struct lg_args a = {0};
    const char *argv[] = {"lg:key:lk_1", "verifier-bytes", "sealed-bytes"};
    ck_assert_int_eq(lg_args_keep(&a, 3, 3, argv, NULL), 0);
    ck_assert_int_eq(a.argc, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_ptr_ne(a.argv[3 + i], argv[i]); /* a copy, not the caller's */
        ck_assert_uint_eq(a.argvlen[3 + i], strlen(argv[i]));
        ck_assert_int_eq(memcmp(a.argv[3 + i], argv[i], a.argvlen[3 + i]), 0);
    }
    /* lengths given: bytes past a NUL are kept too */
    const char bin[] = {'a', 0, 'b'};
    const char *argv2[] = {bin};
    size_t len2[] = {3};
    ck_assert_int_eq(lg_args_keep(&a, 0, 1, argv2, len2), 0);
    ck_assert_int_eq(memcmp(a.argv[0], bin, 3), 0);
    lg_args_free(&a);
    ck_assert_ptr_null(a.buf);
}
END_TEST

/* The pooled buffer holds no byte of what it was given once released. */
START_TEST(test_release_wipes)
{
    struct lg_args a = {0};
    const char *argv[] = {"lg:key:lk_1", "vf_0123456789abcdef0123456789abcdef", "sealed:AAAA"};
    ck_assert_int_eq(lg_args_keep(&a, 3, 3, argv, NULL), 0);
    size_t used = a.used;
    ck_assert_uint_gt(used, 0);
    ck_assert(!all_zero(a.buf, used));
    char *buf = a.buf;
    lg_args_release(&a);
    ck_assert_ptr_eq(a.buf, buf); /* kept for reuse */
    ck_assert_msg(all_zero(a.buf, used), "released arguments are still in the buffer");
    ck_assert_int_eq(a.argc, 0);
    lg_args_free(&a);
}
END_TEST

/* Growing for longer arguments does not leave the old copies behind in a
 * buffer given back to the allocator unwiped: checked through the new
 * buffer's content only (the old one is freed), and that a kept buffer
 * that is big enough is reused. */
START_TEST(test_reuse_and_grow)
{
    struct lg_args a = {0};
    const char *small[] = {"short"};
    ck_assert_int_eq(lg_args_keep(&a, 0, 1, small, NULL), 0);
    char *first = a.buf;
    const char *smaller[] = {"s"};
    ck_assert_int_eq(lg_args_keep(&a, 0, 1, smaller, NULL), 0);
    ck_assert_ptr_eq(a.buf, first);
    ck_assert_msg(all_zero(a.buf + 1, strlen("short") - 1), "the longer old copy outlived its use");
    char big[200];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    const char *large[] = {big, big};
    ck_assert_int_eq(lg_args_keep(&a, 2, 2, large, NULL), 0);
    ck_assert_uint_eq(a.used, 2 * strlen(big));
    ck_assert_int_eq(memcmp(a.argv[3], big, strlen(big)), 0);
    lg_args_free(&a);
}
END_TEST

static Suite *args_suite(void)
{
    Suite *s = suite_create("args");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_keep_copies);
    tcase_add_test(tc, test_release_wipes);
    tcase_add_test(tc, test_reuse_and_grow);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return check_run(args_suite()) ? EXIT_FAILURE : EXIT_SUCCESS; }
