/* Enrollment of candidates into a sequence: one set-based statement that
 * classifies the matching candidates (suppressed, unsubscribed, no consent,
 * already enrolled, busy in another exclusive sequence) and enrolls the rest
 * with their first step due inside the window. Used by `warmbench enroll`
 * (blocking libpq) and by the daemon's auto_enroll (pg_loop). */
#ifndef WB_ENROLL_H
#define WB_ENROLL_H
#include <stddef.h>
#include "warmbench/config.h"

#define WB_ENROLL_NPARAMS 13

struct wb_enroll_query {
    const char *sql;                       /* static text */
    char *params[WB_ENROLL_NPARAMS];       /* malloc'd, NULL = SQL NULL */
};

/* Verdicts as returned in the result's first column. */
struct wb_enroll_counts {
    long enrolled, suppressed, unsubscribed, no_consent, already, busy;
};

/* tags/emails from the command line replace the audience's filters when
 * any is given; source is "cli", "auto" or "ats". */
void wb_enroll_query_build(const struct wb_sequence *s, char *const *tags, size_t ntags,
                           char *const *emails, size_t nemails, const char *source,
                           struct wb_enroll_query *q);
void wb_enroll_query_free(struct wb_enroll_query *q);
/* Adds one result row (verdict, count) into counts. */
void wb_enroll_count_row(struct wb_enroll_counts *c, const char *verdict, long n);

/* "WITH target AS MATERIALIZED (...)": the enroll statement's
 * classification, one row per matching candidate (id, zone, country,
 * verdict), with the same 13 parameters and nothing written; a caller
 * appends its own SELECT (`warmbench plan`). */
extern const char *const wb_enroll_target_cte;

/* Upsert of the sequence definitions the daemon and CLI run with. */
extern const char *const wb_sequence_sync_sql; /* $1 id, $2 content_hash, $3 definition */

#endif
