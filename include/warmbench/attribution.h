/* `warmbench stats --attribution`: what each sequence (and each candidate
 * source) led to, from enrollment to hire. */
#ifndef WB_ATTRIBUTION_H
#define WB_ATTRIBUTION_H
#include <stdbool.h>
#include <stdio.h>
#include <jansson.h>
#include <libpq-fe.h>

/* The funnel as one document: {"sequences": [{id, enrolled, replied,
 * handed_off, applied, hired, median_time_to_engage_s, rates, step_rates,
 * sources: [...]}], "sources": [...], "total": {...}, "unattributed":
 * {applied, hired}}. Counts are people; an applied or hired event is
 * credited to the enrollments it converted, else to the candidate's latest
 * enrollment started before it (last touch). sequence NULL = all; an
 * unknown one gives an empty list. NULL after reporting to stderr. */
json_t *wb_attribution_doc(PGconn *c, const char *sequence);
/* Prints the funnel as text or JSON. Returns an exit code (64 for an
 * unknown sequence). */
int wb_attribution(PGconn *c, const char *sequence, bool json, FILE *out);
/* "3d 4h", "2h 5m", "4m 10s", "12s" for a number of seconds (rounded down
 * to the two largest units); "-" when negative or not finite. */
void wb_duration_text(double seconds, char *buf, size_t size);

#endif
