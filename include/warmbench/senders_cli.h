/* `warmbench senders [--json]` (SPEC "Every recruiter's own mailbox"): per
 * configured sender, its state, what it sent today against its daily
 * limit, its bounce rate over 7 days and whose mailbox reads its replies.
 * Blocking, for the command-line tool only. */
#ifndef WB_SENDERS_CLI_H
#define WB_SENDERS_CLI_H
#include <stdbool.h>
#include <stdio.h>
#include <jansson.h>
#include <libpq-fe.h>
#include "warmbench/config.h"

/* The figures, one object per sender in configuration order; NULL after
 * reporting to stderr. */
json_t *wb_senders_query(PGconn *c, const struct wb_config *cfg);

/* Prints them as a table or as JSON. Returns an exit code. */
int wb_cmd_senders(PGconn *c, const struct wb_config *cfg, bool json, FILE *out);

#endif
