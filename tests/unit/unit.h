/* What every unit test binary shares. */
#ifndef LG_TEST_UNIT_H
#define LG_TEST_UNIT_H

#include <check.h>
#include <stdlib.h>

/* Runs suite S; the exit status of the test binary (1 when a check failed). */
static inline int unit_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
