/* The figures of `warmbench report --html`, gathered from PostgreSQL. */
#ifndef WB_REPORT_DATA_H
#define WB_REPORT_DATA_H
#include <jansson.h>
#include <libpq-fe.h>
#include "warmbench/config.h"

/* One JSON document per section, as the database built it. */
struct wb_report_data {
    json_t *pool;     /* wb_pool_query's document */
    json_t *funnel;   /* [{id, enrolled, sent, opened, ..., steps: [{step, sent, ...}]}] */
    json_t *variants; /* [{sequence, step, variant, sent, opened, clicked, replied}] */
    json_t *growth;   /* [{week, new, left, size}], oldest first */
    json_t *heatmap;  /* [[isodow, hour, count]] in each candidate's zone */
};

/* Reads every section in one read-only snapshot. since: YYYY-MM-DD
 * (midnight UTC, already checked) or NULL; it bounds the enrollments,
 * messages and events considered (pool health is always today's). Returns
 * 0, or -1 after reporting to stderr; free d either way. */
int wb_report_gather(PGconn *c, const struct wb_config *cfg, const char *since,
                     struct wb_report_data *d);
void wb_report_data_free(struct wb_report_data *d);

#endif
