/* `warmbench show EMAIL`: one person, their enrollments and timeline. */
#ifndef WB_SHOW_H
#define WB_SHOW_H
#include <stdbool.h>
#include <stdio.h>
#include <libpq-fe.h>

/* The candidate, their enrollments and event timeline. Returns an exit
 * code (65 when no such candidate). */
int wb_show(PGconn *c, const char *email, bool json, FILE *out);

#endif
