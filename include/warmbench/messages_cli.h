/* `warmbench messages --unknown [--requeue ID | --all]`: what a crash left
 * `unknown` (the daemon stopped between the mark and the outcome, so the
 * mail may or may not have gone), and the operator's deliberate resend.
 * Blocking, for the command-line tool only; returns an exit code and prints
 * errors to stderr. */
#ifndef WB_MESSAGES_CLI_H
#define WB_MESSAGES_CLI_H
#include <stdbool.h>
#include <stdio.h>
#include <libpq-fe.h>

/* Lists unknown messages (id, recipient, sequence, step, sender, when the
 * send started, the reason), oldest first. With requeue_id (a message id)
 * or all, queues them to be sent again (wb_requeue_unknown in
 * sql/functions/060_send.sql says which may be) and says plainly that each
 * may arrive twice. 64 when requeue_id is not a number, 65 when nothing asked
 * for could be requeued. */
int wb_cmd_messages(PGconn *c, const char *requeue_id, bool all, FILE *out);

#endif
