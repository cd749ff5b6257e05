#include <check.h>
#include <stdlib.h>
#include <string.h>
#include "warmbench/buf.h"
#include "warmbench/diag.h"
#include "warmbench/template.h"

static bool known(const char *name, void *ud)
{
    (void)ud;
    return !strcmp(name, "first_name") || !strcmp(name, "company") || !strcmp(name, "x");
}

/* first_name = "Ana", company = "" (empty), x = a value with markup. */
static const char *value(const char *name, void *ud)
{
    (void)ud;
    if (!strcmp(name, "first_name"))
        return "Ana";
    if (!strcmp(name, "x"))
        return "<b>\"Tom & Jerry's\"</b> {{first_name}}";
    return "";
}

static char *render(const char *src, bool html)
{
    struct wb_diags d;
    wb_diags_init(&d);
    struct wb_template *t = wb_template_parse(src, strlen(src), "t.txt", 1, 1, known, NULL, &d);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(d.n, 0);
    struct wb_buf b;
    wb_buf_init(&b);
    wb_template_render(t, value, NULL, html, &b);
    wb_template_free(t);
    wb_diags_free(&d);
    return wb_buf_steal(&b);
}

/* Parses src expecting failure; returns the diagnostics as printed. */
static char *errors(const char *src, size_t len, int line0, int col0)
{
    struct wb_diags d;
    wb_diags_init(&d);
    struct wb_template *t = wb_template_parse(src, len, "t.txt", line0, col0, known, NULL, &d);
    ck_assert_ptr_null(t);
    char *out = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&out, &n);
    wb_diags_print(&d, f);
    fclose(f);
    wb_diags_free(&d);
    return out;
}

#define ASSERT_RENDER(src, html, want)       \
    do {                                     \
        char *got_ = render(src, html);      \
        ck_assert_str_eq(got_, want);        \
        free(got_);                          \
    } while (0)

#define ASSERT_ERRORS(src, want)                          \
    do {                                                  \
        char *got_ = errors(src, strlen(src), 1, 1);      \
        ck_assert_str_eq(got_, want);                     \
        free(got_);                                       \
    } while (0)

START_TEST(test_render_fields_and_fallbacks)
{
    ASSERT_RENDER("Hi {{first_name}}!", false, "Hi Ana!");
    ASSERT_RENDER("Hi {{ first_name | there }}!", false, "Hi Ana!");
    ASSERT_RENDER("At {{company|your company}}.", false, "At your company.");
    ASSERT_RENDER("At {{company}}.", false, "At .");
    ASSERT_RENDER("At {{company|}}.", false, "At .");
    ASSERT_RENDER("no tags at all", false, "no tags at all");
    ASSERT_RENDER("", false, "");
    ASSERT_RENDER("{{first_name}}{{first_name}}", false, "AnaAna");
    ASSERT_RENDER("single { and } and }} stay", false, "single { and } and }} stay");
}
END_TEST

START_TEST(test_render_escapes_values_not_template)
{
    ASSERT_RENDER("<p>{{x}}</p>", true,
                  "<p>&lt;b&gt;&quot;Tom &amp; Jerry&#39;s&quot;&lt;/b&gt; {{first_name}}</p>");
    /* Text parts get the value as is; a "{{" inside a value is never expanded. */
    ASSERT_RENDER("{{x}}", false, "<b>\"Tom & Jerry's\"</b> {{first_name}}");
    /* The fallback is the author's own text. */
    ASSERT_RENDER("<p>{{company|<i>you</i>}}</p>", true, "<p><i>you</i></p>");
}
END_TEST

START_TEST(test_html_escape)
{
    struct wb_buf b;
    wb_buf_init(&b);
    wb_html_escape(&b, "a&b<c>d\"e'f");
    ck_assert_str_eq(b.data, "a&amp;b&lt;c&gt;d&quot;e&#39;f");
    wb_buf_free(&b);
}
END_TEST

START_TEST(test_fields_listed_once)
{
    struct wb_diags d;
    wb_diags_init(&d);
    const char *src = "{{first_name}} {{company|x}} {{first_name|y}}";
    struct wb_template *t = wb_template_parse(src, strlen(src), "t", 1, 1, known, NULL, &d);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(wb_template_nfields(t), 2);
    ck_assert_str_eq(wb_template_field(t, 0), "first_name");
    ck_assert_str_eq(wb_template_field(t, 1), "company");
    ck_assert_ptr_null(wb_template_field(t, 2));
    wb_template_free(t);
    wb_diags_free(&d);
}
END_TEST

START_TEST(test_error_positions)
{
    ASSERT_ERRORS("Hi {{first_name", "t.txt:1:4: unclosed \"{{\"\n");
    ASSERT_ERRORS("line one\n  x {{ }} y", "t.txt:2:5: empty field name in \"{{\"\n");
    ASSERT_ERRORS("a\nb\n\tHi {{|there}}", "t.txt:3:5: empty field name in \"{{\"\n");
    ASSERT_ERRORS("Hi {{frist_name|there}}", "t.txt:1:4: unknown template field \"frist_name\"\n");
    /* A "{{" before the next "}}" leaves the first one unclosed. */
    ASSERT_ERRORS("{{first_name {{company}}", "t.txt:1:1: unclosed \"{{\"\n");
    ASSERT_ERRORS("ends with {{", "t.txt:1:11: unclosed \"{{\"\n");
}
END_TEST

START_TEST(test_every_error_reported)
{
    ASSERT_ERRORS("{{nope}}\n{{ }}\n{{first_name}} {{also_nope|x}}\n{{open",
                  "t.txt:1:1: unknown template field \"nope\"\n"
                  "t.txt:2:1: empty field name in \"{{\"\n"
                  "t.txt:3:16: unknown template field \"also_nope\"\n"
                  "t.txt:4:1: unclosed \"{{\"\n");
}
END_TEST

START_TEST(test_offset_start)
{
    /* An inline template (a subject) starts at its place in another file. */
    char *got = errors("Re: {{frist_name}}", 18, 7, 20);
    ck_assert_str_eq(got, "t.txt:7:24: unknown template field \"frist_name\"\n");
    free(got);
}
END_TEST

START_TEST(test_never_reads_past_len)
{
    /* Only the first 5 bytes count: "ab{{f" is unclosed even though the
     * bytes after it would close the tag. */
    char *src = malloc(5);
    memcpy(src, "ab{{f", 5);
    char *got = errors(src, 5, 1, 1);
    ck_assert_str_eq(got, "t.txt:1:3: unclosed \"{{\"\n");
    free(got);
    memcpy(src, "abc{{", 5);
    got = errors(src, 5, 1, 1);
    ck_assert_str_eq(got, "t.txt:1:4: unclosed \"{{\"\n");
    free(got);
    free(src);
    struct wb_diags d;
    wb_diags_init(&d);
    struct wb_template *t = wb_template_parse("x{", 2, "t", 1, 1, known, NULL, &d);
    ck_assert_ptr_nonnull(t);
    wb_template_free(t);
    wb_diags_free(&d);
}
END_TEST

Suite *wb_test_suite(void)
{
    Suite *s = suite_create("template");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_render_fields_and_fallbacks);
    tcase_add_test(tc, test_render_escapes_values_not_template);
    tcase_add_test(tc, test_html_escape);
    tcase_add_test(tc, test_fields_listed_once);
    tcase_add_test(tc, test_error_positions);
    tcase_add_test(tc, test_every_error_reported);
    tcase_add_test(tc, test_offset_start);
    tcase_add_test(tc, test_never_reads_past_len);
    suite_add_tcase(s, tc);
    return s;
}
