/* `warmbench pause --sender S [--reason TEXT]` and `warmbench resume
 * --sender S` (SPEC "The sourcer's controls", "Deliverability"): a paused
 * sender gets nothing new claimed (mail on the wire finishes); resume also
 * lifts a pause its guard made, and the guard then counts afresh. Running
 * daemons hear it at once (NOTIFY wb_sender_state). */
#ifndef WB_PAUSE_CLI_H
#define WB_PAUSE_CLI_H
#include <stdbool.h>
#include <stdio.h>
#include <libpq-fe.h>
#include "warmbench/config.h"

/* pause true: pause (reason NULL: "paused by an operator"); false: resume.
 * Exit codes: 0 done or nothing to do (said so), 64 unknown sender, 69
 * database trouble. */
int wb_cmd_pause_sender(PGconn *c, const struct wb_config *cfg, const char *sender, bool pause,
                        const char *reason, FILE *out, FILE *err);

#endif
