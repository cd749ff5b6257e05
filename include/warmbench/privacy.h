/* GDPR commands of the command-line tool: erasure (`forget`) and the right
 * of access (`export`). Both run on a blocking connection (CLI only). */
#ifndef WB_PRIVACY_H
#define WB_PRIVACY_H
#include <stdio.h>
#include <libpq-fe.h>

/* `warmbench forget EMAIL`: one transaction (SQL wb_forget): the candidate
 * and everything that names them is erased; the address's salted hash goes
 * into the suppression list (even for an unknown address, so it can never
 * be imported), any plain copy of it there is blanked. Prints what was
 * erased per table to out. Returns 0, 64 for an argument that is not an
 * address, 1 on a database error. */
int wb_cmd_forget(PGconn *c, const char *email, FILE *out);

/* `warmbench export EMAIL --json`: everything held on the person as one
 * JSON document (candidate, suppression, enrollments, messages, events,
 * handoffs). Returns 0, 65 when no candidate has that address, 1 on a
 * database error. */
int wb_cmd_export(PGconn *c, const char *email, FILE *out);

#endif
