/* `warmbench handoff` and `warmbench webhooks` (SPEC "Commands"): blocking,
 * for the command-line tool only. Both return an exit code and print
 * errors to stderr. */
#ifndef WB_HANDOFF_CLI_H
#define WB_HANDOFF_CLI_H
#include <stdbool.h>
#include <stdio.h>
#include <libpq-fe.h>
#include "warmbench/config.h"

/* Hands the candidate to the ATS now: one statement stores a manual
 * handoff (reason "manual"), a `handoff` event, and ends the candidate's
 * active enrollments (of that sequence only, when one is named) as
 * handed_off. sequence NULL: no sequence, the payload carries the whole
 * timeline. 65 when no such candidate or the sequence is not configured. */
int wb_cmd_handoff(PGconn *c, const struct wb_config *cfg, const char *email,
                   const char *sequence, FILE *out);

/* Lists deliveries (id, candidate email, sequence, reason, state, attempts,
 * last status, next attempt, last error), only dead ones when dead_only.
 * With retry_id (a handoff id or its idempotency key) a dead handoff is
 * queued again instead: attempts back to 0 (a full schedule), due now, the
 * same key; the daemons are woken by NOTIFY. 65 when it is not dead or
 * does not exist, 64 when retry_id is neither a number nor a UUID. */
int wb_cmd_webhooks(PGconn *c, bool dead_only, const char *retry_id, FILE *out);

#endif
