/* Inline SVG charts for the HTML report. Plain shapes and text only: the
 * page must open offline, in any browser, with scripts off. No xmlns: the
 * HTML parser puts <svg> in its namespace, and the page names no URL. */
#include "warmbench/svg.h"
#include "warmbench/template.h"
#include <math.h>
#include <stdio.h>

static void svg_open_svg(struct wb_buf *b, int w, int h, const char *aria)
{
    wb_buf_printf(b, "<svg class=\"chart\" viewBox=\"0 0 %d %d\""
                     " width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"", w, h, w, h);
    wb_html_escape(b, aria);
    wb_buf_puts(b, "\">");
}

static void svg_text(struct wb_buf *b, double x, double y, const char *anchor, const char *cls,
                 const char *s)
{
    wb_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" class=\"%s\">", x, y, anchor,
                  cls);
    wb_html_escape(b, s);
    wb_buf_puts(b, "</text>");
}

static double svg_clamp01(double t)
{
    return isfinite(t) ? (t < 0 ? 0 : t > 1 ? 1 : t) : 0;
}

#define HB_LABEL 150
#define HB_AREA 420
#define HB_ROW 26

void wb_svg_hbars(struct wb_buf *b, const struct wb_svg_bar *bars, size_t n, const char *aria)
{
    long long max = 0;
    for (size_t i = 0; i < n; i++)
        if (bars[i].value > max)
            max = bars[i].value;
    svg_open_svg(b, HB_LABEL + HB_AREA + 90, (int)n * HB_ROW + 6, aria);
    for (size_t i = 0; i < n; i++) {
        double y = 3 + (double)i * HB_ROW;
        double w = max > 0 && bars[i].value > 0 ? HB_AREA * (double)bars[i].value / (double)max : 0;
        char v[32];
        snprintf(v, sizeof v, "%lld", bars[i].value);
        svg_text(b, HB_LABEL - 8, y + 15, "end", "lbl", bars[i].label);
        wb_buf_printf(b, "<rect x=\"%d\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" class=\"bar\"><title>",
                      HB_LABEL, y, w > 0 && w < 1 ? 1 : w, HB_ROW - 6);
        wb_html_escape(b, bars[i].label);
        wb_buf_printf(b, ": %s</title></rect>", v);
        svg_text(b, HB_LABEL + w + 6, y + 15, "start", "val", v);
    }
    wb_buf_puts(b, "</svg>");
}

void wb_svg_rate(struct wb_buf *b, double rate)
{
    double w = 80 * svg_clamp01(rate);
    wb_buf_printf(b, "<svg class=\"rate\" viewBox=\"0 0 80 10\""
                     " width=\"80\" height=\"10\" aria-hidden=\"true\">"
                     "<rect width=\"80\" height=\"10\" class=\"track\"/>"
                     "<rect width=\"%.1f\" height=\"10\" class=\"bar\"/></svg>", w);
}

#define LN_W 760
#define LN_H 260
#define LN_LEFT 70
#define LN_RIGHT 20
#define LN_TOP 16
#define LN_BOTTOM 34

static void svg_line_bounds(const double *y, size_t n, double *lo, double *hi)
{
    *lo = INFINITY;
    *hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        double v = isfinite(y[i]) ? y[i] : 0;
        *lo = v < *lo ? v : *lo;
        *hi = v > *hi ? v : *hi;
    }
    if (!(*lo <= *hi))
        *lo = *hi = 0;
}

void wb_svg_line(struct wb_buf *b, const double *y, size_t n, const char *first,
                 const char *last, const char *aria)
{
    double lo, hi, pw = LN_W - LN_LEFT - LN_RIGHT, ph = LN_H - LN_TOP - LN_BOTTOM;
    svg_line_bounds(y, n, &lo, &hi);
    svg_open_svg(b, LN_W, LN_H, aria);
    wb_buf_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>", LN_LEFT,
                  LN_H - LN_BOTTOM, LN_W - LN_RIGHT, LN_H - LN_BOTTOM);
    wb_buf_puts(b, "<polyline class=\"line\" points=\"");
    for (size_t i = 0; i < n; i++) {
        double v = isfinite(y[i]) ? y[i] : 0;
        double px = LN_LEFT + (n > 1 ? pw * (double)i / (double)(n - 1) : pw / 2);
        double py = LN_TOP + (hi > lo ? ph * (hi - v) / (hi - lo) : ph / 2);
        wb_buf_printf(b, "%s%.1f,%.1f", i ? " " : "", px, py);
    }
    wb_buf_puts(b, "\"/>");
    char v[48];
    snprintf(v, sizeof v, "%.0f", hi);
    svg_text(b, LN_LEFT - 8, LN_TOP + 5, "end", "val", v);
    snprintf(v, sizeof v, "%.0f", lo);
    svg_text(b, LN_LEFT - 8, LN_H - LN_BOTTOM, "end", "val", v);
    svg_text(b, LN_LEFT, LN_H - 12, "start", "lbl", first);
    svg_text(b, LN_W - LN_RIGHT, LN_H - 12, "end", "lbl", last);
    wb_buf_puts(b, "</svg>");
}

void wb_svg_shade(double t, char out[8])
{
    /* From a pale blue-grey (little engagement) to a deep blue (the most). */
    static const int from[3] = {0xe8, 0xef, 0xf7}, to[3] = {0x08, 0x45, 0x94};
    int c[3];
    t = svg_clamp01(t);
    for (int i = 0; i < 3; i++)
        c[i] = (int)lround(from[i] + (to[i] - from[i]) * t);
    snprintf(out, 8, "#%02x%02x%02x", c[0], c[1], c[2]);
}

#define HM_LEFT 44
#define HM_TOP 22
#define HM_CW 26
#define HM_CH 22

static const char *const weekdays[7] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};

static void svg_heat_cell(struct wb_buf *b, int d, int h, long long n, long long max)
{
    char fill[8];
    if (n > 0)
        wb_svg_shade((double)n / (double)max, fill);
    else
        snprintf(fill, sizeof fill, "#f7f7f7");
    wb_buf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\">"
                     "<title>%s %02d:00-%02d:59: %lld</title></rect>",
                  HM_LEFT + h * HM_CW, HM_TOP + d * HM_CH, HM_CW - 2, HM_CH - 2, fill,
                  weekdays[d], h, h, n);
}

void wb_svg_heatmap(struct wb_buf *b, const long long cells[7][24], const char *aria)
{
    long long max = 0;
    for (int d = 0; d < 7; d++)
        for (int h = 0; h < 24; h++)
            max = cells[d][h] > max ? cells[d][h] : max;
    svg_open_svg(b, HM_LEFT + 24 * HM_CW + 10, HM_TOP + 7 * HM_CH + 40, aria);
    for (int h = 0; h < 24; h += 3) {
        char l[16];
        snprintf(l, sizeof l, "%02d", h);
        svg_text(b, HM_LEFT + h * HM_CW + HM_CW / 2.0, HM_TOP - 7, "middle", "lbl", l);
    }
    for (int d = 0; d < 7; d++) {
        svg_text(b, HM_LEFT - 6, HM_TOP + d * HM_CH + 15, "end", "lbl", weekdays[d]);
        for (int h = 0; h < 24; h++)
            svg_heat_cell(b, d, h, cells[d][h], max);
    }
    char l[48];
    snprintf(l, sizeof l, "darkest: %lld", max);
    svg_text(b, HM_LEFT, HM_TOP + 7 * HM_CH + 24, "start", "lbl", l);
    wb_buf_puts(b, "</svg>");
}
