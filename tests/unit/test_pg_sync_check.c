/* wb_db_host_count: the failover warning applies only when `database`
 * names several hosts, in whichever form libpq takes them. */
#include <check.h>
#include <stdlib.h>
#include "warmbench/pg_sync_check.h"

START_TEST(test_host_count)
{
    unsetenv("PGHOST");
    unsetenv("PGHOSTADDR");
    ck_assert_int_eq(wb_db_host_count("postgresql://wb@db1/wb"), 1);
    ck_assert_int_eq(wb_db_host_count("postgresql://h1,h2/wb?target_session_attrs=read-write"), 2);
    ck_assert_int_eq(wb_db_host_count("postgresql://127.0.0.1:5432,127.0.0.1:5433/wb"), 2);
    ck_assert_int_eq(wb_db_host_count("host=a,b,c dbname=wb"), 3);
    ck_assert_int_eq(wb_db_host_count("hostaddr=10.0.0.1,10.0.0.2 dbname=wb"), 2);
    ck_assert_int_eq(wb_db_host_count("postgresql:///wb?host=/run/a,/run/b"), 2);
    /* A bare name or a broken string: libpq reports it when connecting. */
    ck_assert_int_eq(wb_db_host_count("warmbench"), 1);
    ck_assert_int_eq(wb_db_host_count("host='unterminated"), 1);
    ck_assert_int_eq(wb_db_host_count(NULL), 1);
    /* None given: libpq's environment. */
    setenv("PGHOST", "p1,p2", 1);
    ck_assert_int_eq(wb_db_host_count(""), 2);
    ck_assert_int_eq(wb_db_host_count("dbname=wb"), 2);
    ck_assert_int_eq(wb_db_host_count("host=one dbname=wb"), 1);
    unsetenv("PGHOST");
}
END_TEST

Suite *wb_test_suite(void)
{
    Suite *s = suite_create("pg_sync_check");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_host_count);
    suite_add_tcase(s, tc);
    return s;
}
