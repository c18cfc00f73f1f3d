/* What every Check test binary shares. */
#ifndef LG_TEST_CHECK_RUN_H
#define LG_TEST_CHECK_RUN_H

#include <check.h>

/* Runs suite S (forking per test unless CK_FORK=no); returns how many of
 * its checks failed. */
static inline int check_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed;
}

#endif
