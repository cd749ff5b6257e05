/* auto_enroll: sequences whose audience says so pick up matching
 * candidates by themselves — after an import (NOTIFY wb_candidates) and
 * periodically, for those who come to match later (e.g. go dormant). */
#ifndef WB_AUTOENROLL_H
#define WB_AUTOENROLL_H
#include <uv.h>
#include "warmbench/config.h"
#include "warmbench/pg_loop.h"

struct wb_autoenroll;

struct wb_autoenroll *wb_autoenroll_new(uv_loop_t *loop, struct wb_pg *pg,
                                        const struct wb_config *cfg);
void wb_autoenroll_set_config(struct wb_autoenroll *a, const struct wb_config *cfg);
/* Run soon (debounced): candidates changed or the connection came back. */
void wb_autoenroll_kick(struct wb_autoenroll *a);
void wb_autoenroll_free(struct wb_autoenroll *a);

#endif
