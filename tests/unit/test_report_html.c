#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "warmbench/buf.h"
#include "warmbench/report_html.h"
#include "warmbench/svg.h"

START_TEST(test_since_dates)
{
    const char *good[] = {"2026-01-01", "2024-02-29", "2000-02-29", "0001-01-01", "9999-12-31",
                          "2026-04-30"};
    const char *bad[] = {NULL, "", "2026-1-01", "2026-01-1", "2026/01/01", "2026-13-01",
                         "2026-00-10", "2026-01-00", "2026-02-29", "1900-02-29", "2026-04-31",
                         "0000-01-01", "2026-01-01 ", " 2026-01-01", "2026-01-01T00",
                         "yesterday", "+026-01-01", "2026-0a-01", "20260101"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        ck_assert_msg(wb_report_date_valid(good[i]), "%s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(!wb_report_date_valid(bad[i]), "%s", bad[i] ? bad[i] : "NULL");
}
END_TEST

START_TEST(test_labels_are_escaped)
{
    struct wb_buf b;
    wb_buf_init(&b);
    struct wb_svg_bar bars[] = {{"<img src=x onerror=alert(1)>", 5}, {"a&b\"c'", 0}};
    wb_svg_hbars(&b, bars, 2, "funnel of <script>");
    ck_assert_ptr_null(strstr(b.data, "<img"));
    ck_assert_ptr_null(strstr(b.data, "<script"));
    ck_assert_ptr_nonnull(strstr(b.data, "&lt;img src=x onerror=alert(1)&gt;"));
    ck_assert_ptr_nonnull(strstr(b.data, "a&amp;b&quot;c&#39;"));
    ck_assert_ptr_nonnull(strstr(b.data, "aria-label=\"funnel of &lt;script&gt;\""));
    wb_buf_reset(&b);
    double y[] = {1, 2};
    wb_svg_line(&b, y, 2, "<b>", "\"x\"", "growth");
    ck_assert_ptr_null(strstr(b.data, "<b>"));
    ck_assert_ptr_nonnull(strstr(b.data, "&lt;b&gt;"));
    ck_assert_ptr_nonnull(strstr(b.data, "&quot;x&quot;"));
    wb_buf_free(&b);
}
END_TEST

START_TEST(test_bars_scale_to_the_largest)
{
    struct wb_buf b;
    wb_buf_init(&b);
    struct wb_svg_bar bars[] = {{"enrolled", 200}, {"sent", 100}, {"replied", 0}};
    wb_svg_hbars(&b, bars, 3, "f");
    ck_assert_ptr_nonnull(strstr(b.data, "width=\"420.0\""));
    ck_assert_ptr_nonnull(strstr(b.data, "width=\"210.0\""));
    ck_assert_ptr_nonnull(strstr(b.data, "width=\"0.0\""));
    ck_assert_ptr_nonnull(strstr(b.data, "<title>sent: 100</title>"));
    /* All zero (or negative): no division by zero, no bar. */
    wb_buf_reset(&b);
    struct wb_svg_bar none[] = {{"a", 0}, {"b", -3}};
    wb_svg_hbars(&b, none, 2, "f");
    ck_assert_ptr_null(strstr(b.data, "nan"));
    ck_assert_ptr_null(strstr(b.data, "inf"));
    wb_buf_free(&b);
}
END_TEST

START_TEST(test_rates_are_clamped)
{
    struct wb_buf b;
    wb_buf_init(&b);
    double rates[] = {-1, NAN, INFINITY, 2.5};
    const char *want[] = {"width=\"0.0\"", "width=\"0.0\"", "width=\"0.0\"", "width=\"80.0\""};
    for (size_t i = 0; i < 4; i++) {
        wb_buf_reset(&b);
        wb_svg_rate(&b, rates[i]);
        ck_assert_msg(strstr(b.data, want[i]) != NULL, "%zu: %s", i, b.data);
    }
    wb_buf_free(&b);
}
END_TEST

START_TEST(test_line_is_flat_for_one_value_and_ignores_nan)
{
    struct wb_buf b;
    wb_buf_init(&b);
    double one[] = {7};
    wb_svg_line(&b, one, 1, "a", "b", "g");
    ck_assert_ptr_nonnull(strstr(b.data, "points=\"405.0,121.0\""));
    wb_buf_reset(&b);
    double bad[] = {NAN, 10, INFINITY};
    wb_svg_line(&b, bad, 3, "a", "b", "g");
    ck_assert_ptr_null(strstr(b.data, "nan"));
    ck_assert_ptr_null(strstr(b.data, "inf"));
    wb_buf_free(&b);
}
END_TEST

START_TEST(test_heatmap_cells_and_shades)
{
    char c[8];
    wb_svg_shade(0, c);
    ck_assert_str_eq(c, "#e8eff7");
    wb_svg_shade(1, c);
    ck_assert_str_eq(c, "#084594");
    wb_svg_shade(7, c);
    ck_assert_str_eq(c, "#084594");
    wb_svg_shade(NAN, c);
    ck_assert_str_eq(c, "#e8eff7");
    long long cells[7][24] = {{0}};
    cells[0][10] = 4; /* Monday 10:00 */
    cells[6][23] = 2; /* Sunday 23:00 */
    struct wb_buf b;
    wb_buf_init(&b);
    wb_svg_heatmap(&b, (const long long (*)[24])cells, "h");
    ck_assert_ptr_nonnull(strstr(b.data, "fill=\"#084594\"><title>Mon 10:00-10:59: 4</title>"));
    ck_assert_ptr_nonnull(strstr(b.data, "<title>Sun 23:00-23:59: 2</title>"));
    ck_assert_ptr_nonnull(strstr(b.data, "fill=\"#f7f7f7\"><title>Tue 00:00-00:59: 0</title>"));
    wb_buf_free(&b);
}
END_TEST

Suite *wb_test_suite(void)
{
    Suite *s = suite_create("report_html");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_since_dates);
    tcase_add_test(tc, test_labels_are_escaped);
    tcase_add_test(tc, test_bars_scale_to_the_largest);
    tcase_add_test(tc, test_rates_are_clamped);
    tcase_add_test(tc, test_line_is_flat_for_one_value_and_ignores_nan);
    tcase_add_test(tc, test_heatmap_cells_and_shades);
    suite_add_tcase(s, tc);
    return s;
}
