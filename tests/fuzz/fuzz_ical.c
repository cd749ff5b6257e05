/* libFuzzer target for holiday calendars (lib/config/ical.c, libical's
 * recurrence expansion behind it): an iCalendar file as an operator's
 * window.holidays names it. Input: byte 0 picks the first year
 * (2000..2063) and byte 1 the span (0..3 more years); the rest is the file.
 * Oracles: a file read adds only days inside those years, sorted and
 * without repeats, and reports nothing; a file refused reports at least
 * one problem, each with a line and column, and leaves the set as it was. */
#include "warmbench/diag.h"
#include "warmbench/ical.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void fz_check_refused(const struct wb_diags *d, const struct wb_dayset *s, size_t n0)
{
    if (d->n == 0 || s->n != n0)
        abort();
    for (size_t i = 0; i < d->n; i++)
        if (d->v[i].line < 1 || d->v[i].col < 1 || !d->v[i].msg)
            abort();
}

static void fz_check_read(const struct wb_diags *d, const struct wb_dayset *s, int y0, int y1)
{
    int32_t lo = wb_day_from_civil(y0, 1, 1), hi = wb_day_from_civil(y1, 12, 31);
    if (d->n)
        abort();
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i] < lo || s->v[i] > hi || (i && s->v[i] <= s->v[i - 1]))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int y0 = 2000 + data[0] % 64, y1 = y0 + data[1] % 4;
    struct wb_diags d;
    struct wb_dayset s = {0};
    wb_diags_init(&d);
    if (wb_ical_closed_days((const char *)data + 2, size - 2, "fuzz.ics", y0, y1, &s, &d) == 0)
        fz_check_read(&d, &s, y0, y1);
    else
        fz_check_refused(&d, &s, 0);
    wb_dayset_free(&s);
    wb_diags_free(&d);
    return 0;
}
