#include <check.h>
#include <stdlib.h>
#include <string.h>
#include "warmbench/buf.h"
#include "warmbench/diag.h"
#include "warmbench/util.h"

START_TEST(test_buf_grows_and_terminates)
{
    struct wb_buf b;
    wb_buf_init(&b);
    for (int i = 0; i < 1000; i++)
        wb_buf_printf(&b, "%d,", i);
    ck_assert_uint_eq(b.len, strlen(b.data));
    ck_assert(strncmp(b.data, "0,1,2,", 6) == 0);
    ck_assert(strstr(b.data, "999,") != NULL);
    char *s = wb_buf_steal(&b);
    ck_assert_ptr_null(b.data);
    free(s);
}
END_TEST

START_TEST(test_path_join)
{
    char *p = wb_path_join("/etc/wb", "x.key");
    ck_assert_str_eq(p, "/etc/wb/x.key");
    free(p);
    p = wb_path_join("/etc/wb", "/abs/x");
    ck_assert_str_eq(p, "/abs/x");
    free(p);
    p = wb_dirname("a/b/c.json");
    ck_assert_str_eq(p, "a/b");
    free(p);
    p = wb_dirname("c.json");
    ck_assert_str_eq(p, ".");
    free(p);
}
END_TEST

START_TEST(test_diags_format)
{
    struct wb_diags d;
    wb_diags_init(&d);
    wb_diags_add(&d, "a.json", 3, 7, "unknown key \"%s\"", "x");
    wb_diags_add(&d, "p.csv", 9, 0, "bad");
    char out[256] = {0};
    FILE *f = fmemopen(out, sizeof out, "w");
    wb_diags_print(&d, f);
    fclose(f);
    ck_assert_str_eq(out, "a.json:3:7: unknown key \"x\"\np.csv:9: bad\n");
    wb_diags_free(&d);
}
END_TEST

/* What PostgreSQL would refuse in a text parameter becomes '?' or a
 * space, byte for byte; valid UTF-8 stays. */
START_TEST(test_text_clean)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"250 2.0.0 Ok", "250 2.0.0 Ok"},
        {"caf\xc3\xa9 \xe2\x98\x95 \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x98\x95 \xf0\x9f\x98\x80"},
        {"a\xff" "b\x80" "c", "a?b?c"},                 /* stray bytes */
        {"\xc0\xaf", "??"},                         /* overlong '/' */
        {"\xe0\x80\xaf", "???"},                    /* overlong, 3 bytes */
        {"\xed\xa0\x80", "???"},                    /* a surrogate */
        {"\xf4\x90\x80\x80", "????"},               /* past U+10FFFF */
        {"\xe2\x98", "??"},                         /* cut short */
        {"tab\tnl\ncr\rbel\x07" "del\x7f", "tab\tnl\ncr bel del "},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = wb_text_clean(cases[i].in, strlen(cases[i].in));
        ck_assert_str_eq(got, cases[i].out);
        free(got);
    }
    char nul[] = {'a', 0, 'b'};
    char *got = wb_text_clean(nul, sizeof nul);
    ck_assert_mem_eq(got, "a b", 4);
    free(got);
}
END_TEST

Suite *wb_test_suite(void)
{
    Suite *s = suite_create("buf");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_buf_grows_and_terminates);
    tcase_add_test(tc, test_path_join);
    tcase_add_test(tc, test_diags_format);
    tcase_add_test(tc, test_text_clean);
    suite_add_tcase(s, tc);
    return s;
}
