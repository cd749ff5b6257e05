/* `warmbench report --html`: lays out the figures report_data.c gathers as
 * one self-contained HTML page and writes it atomically. Every string from
 * the database is HTML-escaped. */
#include "warmbench/abtest.h"
#include "warmbench/buf.h"
#include "warmbench/exitcodes.h"
#include "warmbench/report_data.h"
#include "warmbench/report_html.h"
#include "warmbench/svg.h"
#include "warmbench/template.h"
#include "warmbench/util.h"
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char page_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
    "style-src 'unsafe-inline'\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>warmbench report</title>\n<style>\n"
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;"
    "color:#1d2530;background:#fff;margin:0}\n"
    "main{max-width:1100px;margin:0 auto;padding:24px 28px 48px}\n"
    "h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:36px 0 8px;"
    "border-bottom:2px solid #d7e1ec;padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}\n"
    ".meta,.note{color:#5b6775}.note{font-size:13px;max-width:760px}\n"
    ".tiles{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}\n"
    ".tile{border:1px solid #d7e1ec;border-radius:6px;padding:10px 14px;min-width:130px}\n"
    ".tile b{display:block;font-size:22px}.tile span{color:#5b6775;font-size:12px}\n"
    "table{border-collapse:collapse;margin:8px 0 4px}th,td{padding:4px 10px;text-align:right;"
    "border-bottom:1px solid #e6ebf1;white-space:nowrap}th{background:#f3f6f9;font-weight:600}\n"
    "td.l,th.l{text-align:left}td.sig{color:#0a6b2e;font-weight:600}\n"
    "svg.chart{display:block;margin:6px 0;max-width:100%;height:auto}\n"
    "svg.rate{vertical-align:middle;margin-right:6px}\n"
    "svg text{font-size:12px;fill:#1d2530}svg text.val{fill:#3c4856}\n"
    "svg .bar{fill:#2f6db3}svg .track{fill:#e6ebf1}svg .axis{stroke:#9aa7b5;stroke-width:1}\n"
    "svg .line{fill:none;stroke:#2f6db3;stroke-width:2}\n"
    "</style>\n</head>\n<body>\n<main>\n";

static long long rh_iv(json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

static const char *rh_sv(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static double rh_ratio(long long n, long long d)
{
    return d > 0 ? (double)n / (double)d : 0.0;
}

static void rh_esc(struct wb_buf *b, const char *s)
{
    wb_html_escape(b, s);
}

static void rh_tile(struct wb_buf *b, const char *value, const char *label)
{
    wb_buf_puts(b, "<div class=\"tile\"><b>");
    rh_esc(b, value);
    wb_buf_puts(b, "</b><span>");
    rh_esc(b, label);
    wb_buf_puts(b, "</span></div>");
}

static void rh_tile_num(struct wb_buf *b, const char *fmt, double v, const char *label)
{
    char s[64];
    snprintf(s, sizeof s, fmt, v);
    rh_tile(b, s, label);
}

static void rh_pool_tags(struct wb_buf *b, json_t *by_tag)
{
    size_t i;
    json_t *t;
    if (json_array_size(by_tag) == 0)
        return;
    wb_buf_puts(b, "<table><tr><th class=\"l\">tag</th><th>in the pool</th><th>ready now</th></tr>\n");
    json_array_foreach(by_tag, i, t) {
        if (i == 15)
            break;
        wb_buf_puts(b, "<tr><td class=\"l\">");
        rh_esc(b, rh_sv(t, "tag"));
        wb_buf_printf(b, "</td><td>%lld</td><td>%lld</td></tr>\n", rh_iv(t, "size"), rh_iv(t, "ready"));
    }
    wb_buf_puts(b, "</table>\n");
    if (json_array_size(by_tag) > 15)
        wb_buf_printf(b, "<p class=\"note\">%zu more tags: see <code>warmbench pool --json</code>.</p>\n",
                      json_array_size(by_tag) - 15);
}

static void rh_section_pool(struct wb_buf *b, json_t *pool)
{
    json_t *g = json_object_get(pool, "growth"), *ready = json_object_get(pool, "ready");
    wb_buf_puts(b, "<h2>Pool health (today)</h2>\n<div class=\"tiles\">");
    rh_tile_num(b, "%.0f", (double)rh_iv(pool, "size"), "can be mailed");
    rh_tile_num(b, "%+.0f", (double)rh_iv(json_object_get(g, "30d"), "net"), "net growth, 30 days");
    rh_tile_num(b, "%+.0f", (double)rh_iv(json_object_get(g, "90d"), "net"), "net growth, 90 days");
    rh_tile_num(b, "%.1f%%", 100 * json_number_value(json_object_get(json_object_get(pool, "engaged_90d"), "share")),
             "engaged in 90 days");
    rh_tile_num(b, "%.1f%%", 100 * json_number_value(json_object_get(json_object_get(pool, "dormant"), "share")),
             "dormant (90 days)");
    rh_tile_num(b, "%.0f", (double)rh_iv(ready, "total"), "ready now");
    wb_buf_printf(b, "</div>\n<p class=\"note\">Ready now: score at or above %g and engaged within "
                     "%lld days. Leaving the pool: any suppression (unsubscribe, complaint, hard "
                     "bounce, manual, erasure).</p>\n",
                  json_number_value(json_object_get(ready, "threshold")), rh_iv(ready, "engaged_days"));
    rh_pool_tags(b, json_object_get(ready, "by_tag"));
}

static const char *const funnel_keys[] = {"enrolled", "sent", "opened", "clicked", "replied",
                                          "handed_off", "bounced", "unsubscribed", "complained"};
static const char *const funnel_labels[] = {"enrolled", "sent", "opened", "clicked", "replied",
                                            "handed off", "bounced", "unsubscribed",
                                            "complained"};
#define FUNNEL_BARS 6 /* the first six are the funnel; the rest are its leaks */

static void rh_funnel_table(struct wb_buf *b, json_t *seqs)
{
    size_t i;
    json_t *s;
    wb_buf_puts(b, "<table><tr><th class=\"l\">sequence</th>");
    for (size_t k = 0; k < sizeof funnel_keys / sizeof *funnel_keys; k++)
        wb_buf_printf(b, "<th>%s</th>", funnel_labels[k]);
    wb_buf_puts(b, "</tr>\n");
    json_array_foreach(seqs, i, s) {
        wb_buf_puts(b, "<tr><td class=\"l\">");
        rh_esc(b, rh_sv(s, "id"));
        wb_buf_puts(b, "</td>");
        for (size_t k = 0; k < sizeof funnel_keys / sizeof *funnel_keys; k++)
            wb_buf_printf(b, "<td>%lld</td>", rh_iv(s, funnel_keys[k]));
        wb_buf_puts(b, "</tr>\n");
    }
    wb_buf_puts(b, "</table>\n");
}

static void rh_section_funnel(struct wb_buf *b, json_t *seqs)
{
    size_t i;
    json_t *s;
    wb_buf_puts(b, "<h2>Funnel per sequence</h2>\n<p class=\"note\">People, each counted once per "
                   "sequence; opens and clicks by machines (privacy proxies, link scanners) are "
                   "left out.</p>\n");
    if (json_array_size(seqs) == 0) {
        wb_buf_puts(b, "<p>No sequence yet.</p>\n");
        return;
    }
    rh_funnel_table(b, seqs);
    json_array_foreach(seqs, i, s) {
        struct wb_svg_bar bars[FUNNEL_BARS];
        for (size_t k = 0; k < FUNNEL_BARS; k++)
            bars[k] = (struct wb_svg_bar){funnel_labels[k], rh_iv(s, funnel_keys[k])};
        char *aria = wb_xasprintf("funnel of sequence %s", rh_sv(s, "id"));
        wb_buf_puts(b, "<h3>");
        rh_esc(b, rh_sv(s, "id"));
        wb_buf_puts(b, "</h3>\n");
        wb_svg_hbars(b, bars, FUNNEL_BARS, aria);
        free(aria);
    }
}

static void rh_rate_cell(struct wb_buf *b, long long n, long long sent)
{
    double r = rh_ratio(n, sent);
    wb_buf_puts(b, "<td>");
    wb_svg_rate(b, r);
    wb_buf_printf(b, "%.1f%%</td>", 100 * r);
}

static const char *const rate_keys[] = {"opened", "clicked", "replied", "bounced", "unsubscribed"};
#define NRATES (sizeof rate_keys / sizeof *rate_keys)

static void rh_steps_table(struct wb_buf *b, json_t *seq)
{
    size_t i;
    json_t *st;
    wb_buf_puts(b, "<table><tr><th>step</th><th>sent</th>");
    for (size_t k = 0; k < NRATES; k++)
        wb_buf_printf(b, "<th class=\"l\">%s</th>", rate_keys[k]);
    wb_buf_puts(b, "</tr>\n");
    json_array_foreach(json_object_get(seq, "steps"), i, st) {
        wb_buf_printf(b, "<tr><td>%lld</td><td>%lld</td>", rh_iv(st, "step"), rh_iv(st, "sent"));
        for (size_t k = 0; k < NRATES; k++)
            rh_rate_cell(b, rh_iv(st, rate_keys[k]), rh_iv(st, "sent"));
        wb_buf_puts(b, "</tr>\n");
    }
    wb_buf_puts(b, "</table>\n");
}

static void rh_section_steps(struct wb_buf *b, json_t *seqs)
{
    size_t i;
    json_t *s;
    wb_buf_puts(b, "<h2>Per-step rates</h2>\n<p class=\"note\">Share of the people a step was "
                   "sent to who then opened, clicked, replied, bounced or unsubscribed.</p>\n");
    json_array_foreach(seqs, i, s) {
        wb_buf_puts(b, "<h3>");
        rh_esc(b, rh_sv(s, "id"));
        wb_buf_puts(b, "</h3>\n");
        if (json_array_size(json_object_get(s, "steps")) == 0)
            wb_buf_puts(b, "<p>Nothing sent in this period.</p>\n");
        else
            rh_steps_table(b, s);
    }
}

/* A..Z, then numbers: variants are stored 0-based. */
static void rh_variant_label(struct wb_buf *b, long long v)
{
    if (v >= 0 && v < 26)
        wb_buf_putc(b, (char)('A' + v));
    else
        wb_buf_printf(b, "%lld", v + 1);
}

/* base: variant A of the same step, NULL when none was sent in the period
 * (or for A itself, which is the control). */
static void rh_p_cell(struct wb_buf *b, json_t *v, json_t *base, const char *key)
{
    if (rh_iv(v, "variant") == 0) {
        wb_buf_puts(b, "<td>&mdash;</td>");
        return;
    }
    if (!base) {
        wb_buf_puts(b, "<td>n/a</td>");
        return;
    }
    double p = wb_ztest_two_prop_p((long)rh_iv(v, key), (long)rh_iv(v, "sent"), (long)rh_iv(base, key),
                                   (long)rh_iv(base, "sent"));
    if (p < 0)
        wb_buf_puts(b, "<td>n/a</td>");
    else if (p < 0.001)
        wb_buf_puts(b, "<td class=\"sig\">&lt;0.001</td>");
    else
        wb_buf_printf(b, "<td%s>%.3f</td>", p < 0.05 ? " class=\"sig\"" : "", p);
}

static bool rh_same_step(json_t *a, json_t *b)
{
    return a && b && !strcmp(rh_sv(a, "sequence"), rh_sv(b, "sequence")) && rh_iv(a, "step") == rh_iv(b, "step");
}

static void rh_variant_row(struct wb_buf *b, json_t *v, json_t *base)
{
    wb_buf_puts(b, "<tr><td class=\"l\">");
    rh_esc(b, rh_sv(v, "sequence"));
    wb_buf_printf(b, "</td><td>%lld</td><td>", rh_iv(v, "step"));
    rh_variant_label(b, rh_iv(v, "variant"));
    wb_buf_printf(b, "</td><td>%lld</td>", rh_iv(v, "sent"));
    rh_rate_cell(b, rh_iv(v, "opened"), rh_iv(v, "sent"));
    rh_rate_cell(b, rh_iv(v, "clicked"), rh_iv(v, "sent"));
    rh_rate_cell(b, rh_iv(v, "replied"), rh_iv(v, "sent"));
    rh_p_cell(b, v, base, "opened");
    rh_p_cell(b, v, base, "clicked");
    rh_p_cell(b, v, base, "replied");
    wb_buf_puts(b, "</tr>\n");
}

static void rh_section_variants(struct wb_buf *b, json_t *rows)
{
    wb_buf_puts(b, "<h2>Variant comparison (A/B)</h2>\n<p class=\"note\">Each variant against "
                   "variant A of its step; p is the two-sided p-value of a pooled two-proportion "
                   "z-test (below 0.05 in green), as in <code>warmbench stats</code>. Small groups "
                   "make large p-values.</p>\n");
    if (json_array_size(rows) == 0) {
        wb_buf_puts(b, "<p>No step with variants was sent in this period.</p>\n");
        return;
    }
    wb_buf_puts(b, "<table><tr><th class=\"l\">sequence</th><th>step</th><th>variant</th>"
                   "<th>sent</th><th class=\"l\">opened</th><th class=\"l\">clicked</th>"
                   "<th class=\"l\">replied</th><th>p open</th><th>p click</th><th>p reply</th></tr>\n");
    size_t i;
    json_t *v, *base = NULL;
    json_array_foreach(rows, i, v) {
        if (rh_iv(v, "variant") == 0)
            base = v;
        rh_variant_row(b, v, rh_same_step(v, base) ? base : NULL);
    }
    wb_buf_puts(b, "</table>\n");
}

static void rh_growth_table(struct wb_buf *b, json_t *weeks)
{
    size_t n = json_array_size(weeks), from = n > 8 ? n - 8 : 0;
    wb_buf_puts(b, "<table><tr><th class=\"l\">week of</th><th>new</th><th>left</th>"
                   "<th>size at its end</th></tr>\n");
    for (size_t i = from; i < n; i++) {
        json_t *w = json_array_get(weeks, i);
        wb_buf_puts(b, "<tr><td class=\"l\">");
        rh_esc(b, rh_sv(w, "week"));
        wb_buf_printf(b, "</td><td>%lld</td><td>%lld</td><td>%lld</td></tr>\n", rh_iv(w, "new"),
                      rh_iv(w, "left"), rh_iv(w, "size"));
    }
    wb_buf_puts(b, "</table>\n");
}

static void rh_section_growth(struct wb_buf *b, json_t *weeks)
{
    size_t n = json_array_size(weeks);
    wb_buf_puts(b, "<h2>Pool growth</h2>\n<p class=\"note\">Candidates who can be mailed at the end "
                   "of each week (weeks start on Monday, UTC); the last point is today.</p>\n");
    if (n == 0) {
        wb_buf_puts(b, "<p>No candidate yet.</p>\n");
        return;
    }
    double *y = wb_xcalloc(n, sizeof *y);
    for (size_t i = 0; i < n; i++)
        y[i] = (double)rh_iv(json_array_get(weeks, i), "size");
    wb_svg_line(b, y, n, rh_sv(json_array_get(weeks, 0), "week"),
                rh_sv(json_array_get(weeks, n - 1), "week"), "pool size per week");
    free(y);
    rh_growth_table(b, weeks);
}

static void rh_section_heatmap(struct wb_buf *b, json_t *cells)
{
    long long grid[7][24] = {{0}}, total = 0;
    size_t i;
    json_t *c;
    json_array_foreach(cells, i, c) {
        json_int_t d = json_integer_value(json_array_get(c, 0));
        json_int_t h = json_integer_value(json_array_get(c, 1));
        if (d >= 1 && d <= 7 && h >= 0 && h < 24) {
            grid[d - 1][h] = json_integer_value(json_array_get(c, 2));
            total += grid[d - 1][h];
        }
    }
    wb_buf_printf(b, "<h2>When people engage</h2>\n<p class=\"note\">%lld human opens, clicks and "
                     "replies by weekday and hour in each candidate's own time zone (UTC when it is "
                     "unknown). Hover a cell for its count.</p>\n", total);
    wb_svg_heatmap(b, (const long long (*)[24])grid, "engagement by weekday and local hour");
}

static void rh_page_top(struct wb_buf *b, const char *since)
{
    char now[32];
    time_t t = time(NULL);
    struct tm tm;
    strftime(now, sizeof now, "%Y-%m-%d %H:%M UTC", gmtime_r(&t, &tm));
    wb_buf_puts(b, page_head);
    wb_buf_printf(b, "<h1>warmbench report</h1>\n<p class=\"meta\">Made %s; ", now);
    if (since) {
        wb_buf_puts(b, "enrollments, messages and events since ");
        rh_esc(b, since);
        wb_buf_puts(b, " 00:00 UTC.</p>\n");
    } else {
        wb_buf_puts(b, "all enrollments, messages and events.</p>\n");
    }
}

static void rh_render(struct wb_buf *b, const struct wb_report_data *d, const char *since)
{
    rh_page_top(b, since);
    rh_section_pool(b, d->pool);
    rh_section_funnel(b, d->funnel);
    rh_section_steps(b, d->funnel);
    rh_section_variants(b, d->variants);
    rh_section_growth(b, d->growth);
    rh_section_heatmap(b, d->heatmap);
    wb_buf_puts(b, "</main>\n</body>\n</html>\n");
}

static int rh_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* A reader sees the old file or the whole new one, never half of it. */
static int rh_write_atomic(const char *path, const char *data, size_t len)
{
    char *tmp = wb_xasprintf("%s.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "warmbench: report: cannot create a file beside %s: %s\n", path, strerror(errno));
        free(tmp);
        return -1;
    }
    mode_t mask = umask(0);
    umask(mask);
    int rc = fchmod(fd, 0666 & ~mask) < 0 || rh_write_all(fd, data, len) < 0 || fsync(fd) < 0 ? -1 : 0;
    int err = errno;
    if (close(fd) < 0 && rc == 0) {
        rc = -1;
        err = errno;
    }
    if (rc == 0 && rename(tmp, path) < 0) {
        rc = -1;
        err = errno;
    }
    if (rc < 0) {
        fprintf(stderr, "warmbench: report: cannot write %s: %s\n", path, strerror(err));
        unlink(tmp);
    }
    free(tmp);
    return rc;
}

static bool rh_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

bool wb_report_date_valid(const char *s)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return false;
    int y = atoi(s), m = atoi(s + 5), d = atoi(s + 8);
    if (y < 1 || m < 1 || m > 12 || d < 1)
        return false;
    return d <= mdays[m - 1] + (m == 2 && rh_leap(y));
}

int wb_report_html(PGconn *c, const struct wb_config *cfg, const char *path, const char *since)
{
    if (since && !wb_report_date_valid(since)) {
        fprintf(stderr, "warmbench: report: --since \"%s\" is not a date (YYYY-MM-DD)\n", since);
        return WB_EXIT_USAGE;
    }
    struct wb_report_data d = {0};
    if (wb_report_gather(c, cfg, since, &d) < 0) {
        wb_report_data_free(&d);
        return WB_EXIT_FAIL;
    }
    struct wb_buf b;
    wb_buf_init(&b);
    rh_render(&b, &d, since);
    wb_report_data_free(&d);
    int rc = rh_write_atomic(path, b.data, b.len) < 0 ? WB_EXIT_FAIL : WB_EXIT_OK;
    wb_buf_free(&b);
    return rc;
}
