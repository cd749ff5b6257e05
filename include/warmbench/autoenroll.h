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
/* Rounds begin (a second from now), then every minute. */
void wb_autoenroll_start(struct wb_autoenroll *a);
/* Run soon (debounced): candidates changed or the connection came back. */
void wb_autoenroll_kick(struct wb_autoenroll *a);
/* Frees it once the loop has closed its timer; after the database
 * connection is closed (a statement in flight then gets its NULL result). */
void wb_autoenroll_stop(struct wb_autoenroll *a);

#endif
