/* Small inline SVG charts for the HTML report: no scripts, no external
 * references; every label is HTML-escaped (labels come from the database). */
#ifndef WB_SVG_H
#define WB_SVG_H
#include <stddef.h>
#include "warmbench/buf.h"

/* One bar of a horizontal bar chart. */
struct wb_svg_bar {
    const char *label;
    long long value;
};

/* Horizontal bars scaled to the largest value, each with its label on the
 * left and its value on the right. aria names the chart. */
void wb_svg_hbars(struct wb_buf *b, const struct wb_svg_bar *bars, size_t n, const char *aria);

/* A small bar for a rate in [0, 1] (clamped), to sit in a table cell. */
void wb_svg_rate(struct wb_buf *b, double rate);

/* A line over n points (n >= 1), y scaled between the least and greatest
 * value; first and last label the x axis. */
void wb_svg_line(struct wb_buf *b, const double *y, size_t n, const char *first,
                 const char *last, const char *aria);

/* Weekday (Monday first) by hour counts, shaded by count; each cell's
 * title names its weekday, hour and count. */
void wb_svg_heatmap(struct wb_buf *b, const long long cells[7][24], const char *aria);

/* The colour for t in [0, 1] (clamped) on the heat map's scale, as
 * "#rrggbb" into out (8 bytes). */
void wb_svg_shade(double t, char out[8]);

#endif
