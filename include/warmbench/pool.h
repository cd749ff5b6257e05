/* `warmbench pool`: health of the talent pool (SPEC "Talent intelligence").
 * PostgreSQL builds the figures as one JSON document; this module prints
 * it, and hands it to the HTML report. */
#ifndef WB_POOL_H
#define WB_POOL_H
#include <stdbool.h>
#include <stdio.h>
#include <jansson.h>
#include <libpq-fe.h>
#include "warmbench/config.h"

/* The pool's figures: size, growth over 30/90 days, engaged and dormant
 * shares, score deciles, ready candidates per tag (the threshold comes from
 * cfg's `scoring`). NULL after reporting to stderr. */
json_t *wb_pool_query(PGconn *c, const struct wb_config *cfg);

/* Prints the figures as text or JSON. Returns an exit code. */
int wb_pool(PGconn *c, const struct wb_config *cfg, bool json, FILE *out);

#endif
