/* Holiday calendars: iCalendar files (RFC 5545) read as sets of closed
 * days. Only what a holiday file holds is taken: all-day VEVENTs, with
 * DTEND or DURATION in days, RRULE:FREQ=YEARLY (expanded by libical),
 * RDATE and EXDATE as dates. Anything else that would change which days
 * are closed is an error at its file:line:column, never a guess. */
#ifndef WB_ICAL_H
#define WB_ICAL_H
#include <stddef.h>
#include <stdint.h>
#include "warmbench/diag.h"

/* Days as counts from 1970-01-01 (0), sorted, without repeats. */
struct wb_dayset {
    int32_t *v;
    size_t n;
};

/* Adds to *out the days from_year-01-01..to_year-12-31 that the calendar
 * text (len bytes, named file in messages) closes. Returns 0, or -1 after
 * adding its problems to diags (then *out is left as it was). */
int wb_ical_closed_days(const char *text, size_t len, const char *file, int from_year,
                        int to_year, struct wb_dayset *out, struct wb_diags *diags);
void wb_dayset_free(struct wb_dayset *s);

/* Civil date <-> day number (proleptic Gregorian). */
int32_t wb_day_from_civil(int y, int m, int d);
void wb_day_to_civil(int32_t day, int *y, int *m, int *d);
/* 0 = Monday .. 6 = Sunday. */
int wb_day_weekday(int32_t day);

/* True for an assigned ISO 3166-1 alpha-2 code, in either case. */
int wb_country_valid(const char *code);

#endif
