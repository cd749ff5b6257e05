/* `warmbench pause` / `resume` (SEQUENCE, --sender S or --email E) and
 * `unenroll` (SPEC "The sourcer's controls", "Deliverability"). Whatever
 * is paused gets nothing new claimed or marked (mail on the wire
 * finishes): the claim and the mark read the pauses in PostgreSQL, so
 * every daemon honours one from its next statement. Resuming a sender also
 * lifts a pause its guard made, and the guard then counts afresh. */
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

/* A sequence: its steps are neither claimed nor started while paused;
 * resume re-times those that fell due into the window. 64 unknown. */
int wb_cmd_pause_sequence(PGconn *c, const struct wb_config *cfg, const char *sequence,
                          bool pause, FILE *out, FILE *err);

/* One person's active enrollments (sequence NULL: all of them): their next
 * step waits; resume re-times it into the window, never earlier than it
 * was planned. */
int wb_cmd_pause_person(PGconn *c, const char *email, const char *sequence, bool pause, FILE *out,
                        FILE *err);

/* `unenroll EMAIL [--sequence S]`: ends them; nothing more is sent. */
int wb_cmd_unenroll(PGconn *c, const char *email, const char *sequence, FILE *out, FILE *err);

#endif
