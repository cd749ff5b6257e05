/* The sourcer's look before sending (SPEC "The sourcer's controls"):
 * `preview SEQUENCE --email E [--step N] [--out FILE]` prints the exact
 * message that step would send to E, made by the send path's own renderer
 * and MIME builder (only the Message-ID, the MIME boundary it is made
 * from, Date and the tracking tokens differ from the real send); a field
 * that renders empty with no fallback is a warning at its template's
 * file:line:column. `test-send SEQUENCE --to ADDR [--email E]` sends every
 * step, rendered for E (default: the first of the audience by its tags),
 * to ADDR through the sequence's sender, subjects prefixed "[test]";
 * nothing is recorded against anyone. Both only read the database. */
#ifndef WB_PREVIEW_CLI_H
#define WB_PREVIEW_CLI_H
#include <stdio.h>
#include <libpq-fe.h>
#include "warmbench/config.h"

/* step 0: step 1. Exit codes: 0; 64 unknown sequence or step; 65 the
 * address is not in the pool; 73 the file cannot be written. */
int wb_cmd_preview(PGconn *c, const struct wb_config *cfg, const char *sequence,
                   const char *email, int step, const char *out_path, FILE *out, FILE *err);

/* email NULL: the first of the audience. Exit codes as preview's, and 69
 * when the SMTP server refuses or cannot be reached, 78 for an OAuth
 * sender (its token is the daemon's). */
int wb_cmd_test_send(PGconn *c, const struct wb_config *cfg, const char *sequence,
                     const char *to, const char *email, FILE *out, FILE *err);

#endif
