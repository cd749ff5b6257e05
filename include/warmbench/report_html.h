/* `warmbench report --html FILE [--since DATE]`: one self-contained HTML
 * page (inline CSS and SVG, no script, nothing fetched) with the pool's
 * health, the funnel per sequence, per-step rates, the A/B comparison,
 * pool growth and an engagement heat map in the candidates' local time. */
#ifndef WB_REPORT_HTML_H
#define WB_REPORT_HTML_H
#include <stdbool.h>
#include <libpq-fe.h>
#include "warmbench/config.h"

/* True when s is YYYY-MM-DD and names a real calendar day (year >= 1). */
bool wb_report_date_valid(const char *s);

/* Writes the report to path, atomically (a temp file beside it, then
 * rename). since: YYYY-MM-DD (midnight UTC) or NULL for all time; it bounds
 * the enrollments, messages and events considered. Returns an exit code;
 * errors are reported to stderr. */
int wb_report_html(PGconn *c, const struct wb_config *cfg, const char *path, const char *since);

#endif
