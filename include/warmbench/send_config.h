/* What the claim needs from the configuration besides sequences: the
 * senders (for owners) and the contact policy, stored by the daemon at
 * start and reload and by the CLI before it enrolls (sql/022, 067), and
 * the CLI's report of who the policy holds. */
#ifndef WB_SEND_CONFIG_H
#define WB_SEND_CONFIG_H
#include <stdio.h>
#include <libpq-fe.h>
#include "warmbench/config.h"

extern const char *const wb_q_sync_send_config; /* $1: wb_send_config_json */

/* {"senders": {id: address}, "contact_policy": {...}} (malloc'd). */
char *wb_send_config_json(const struct wb_config *cfg);

/* After an enroll: how many of the sequence's first steps the contact
 * policy holds, and until when the first few wait (nothing printed when
 * no policy is set or nobody waits). 0, or -1 on a database error. */
int wb_contact_report(PGconn *c, const char *sequence, FILE *out);

#endif
