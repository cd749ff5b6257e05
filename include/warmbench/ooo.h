/* Out-of-office return dates: the day an automatic reply says its writer is
 * back (or away until), read from its subject and text in English, German,
 * French or Spanish wordings and ISO dates. Pure functions over bytes,
 * bounded in time and memory; every input is hostile. Days are counts from
 * 1970-01-01 (wb_day_from_civil). */
#ifndef WB_OOO_H
#define WB_OOO_H
#include <stdint.h>

/* At most this many bytes of subject and text are read. */
#define WB_OOO_MAX_TEXT (32 * 1024)
/* A return date further ahead of the mail's day than this is absurd. */
#define WB_OOO_HORIZON_DAYS 366

/* The calendar day an RFC 5322 Date field names, as its writer's clock
 * read it ("Tue, 5 Jan 2027 23:30:00 -0800" is 5 January). 0 and *day, or
 * -1 when the field does not read as a date. */
int wb_ooo_mail_day(const char *date, int32_t *day);

/* The return date an automatic reply names. today is the mail's own day
 * (its Date field): weekdays ("back Monday") and dates without a year
 * resolve against it. Only a date tied to a wording of return or absence
 * ("back on", "until", "bis", "de retour le", "jusqu'au", "hasta", the end
 * of a range "from ... to ...") counts; of several, the latest. A date in
 * the past, more than WB_OOO_HORIZON_DAYS ahead, or a numeric one whose
 * day/month order the text does not settle, is none. 0 and *back_on, or
 * -1 when the reply names no usable date. */
int wb_ooo_return_day(const char *subject, const char *text, int32_t today, int32_t *back_on);

#endif
