/* Shared main for every unit test binary: runs the file's suite and prints
 * one machine-readable line that tests/run-all.sh adds up. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

Suite *wb_test_suite(void);

int main(int argc, char **argv)
{
    (void)argc;
    Suite *s = wb_test_suite();
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int run = srunner_ntests_run(sr);
    int failed = srunner_ntests_failed(sr);
    printf("RESULT %s %d %d\n", argv[0], run - failed, failed);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
