/* `warmbench tasks [--sender S] [--json]` and `warmbench done TASK_ID
 * [--skip]` (SPEC "The sourcer's controls"): the open manual steps, and
 * closing one so that its sequence goes on (the next step is timed from
 * that moment by its "after"). */
#ifndef WB_TASKS_CLI_H
#define WB_TASKS_CLI_H
#include <stdbool.h>
#include <stdio.h>
#include <libpq-fe.h>
#include "warmbench/config.h"

/* The open tasks, oldest first (sender NULL: everyone's). Exit codes: 0,
 * 64 unknown sender, 69 database trouble. */
int wb_cmd_tasks(PGconn *c, const struct wb_config *cfg, const char *sender, bool json,
                 FILE *out, FILE *err);

/* Completes (skip false) or skips one task. Exit codes: 0 done; 64 an id
 * that is not one; 65 no such task, or one already closed (done, skipped,
 * expired, or its enrollment ended); 69 database trouble. */
int wb_cmd_done(PGconn *c, const char *id, bool skip, FILE *out, FILE *err);

#endif
