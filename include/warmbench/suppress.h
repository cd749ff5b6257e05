/* Suppression: the address gets no more mail from any sequence. */
#ifndef WB_SUPPRESS_H
#define WB_SUPPRESS_H
#include <libpq-fe.h>

/* One statement: suppression row (by address and salted hash), every
 * active enrollment of the person stopped, a `suppressed` event recorded.
 * reason: manual, unsubscribe, bounce, forget. Used by the CLI and, through
 * pg_loop, by the daemon. $1 email, $2 reason. Returns the number of
 * enrollments stopped and whether the address was already suppressed. */
extern const char *const wb_suppress_sql;

#endif
