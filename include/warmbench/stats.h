/* `warmbench stats`: per sequence and per step counts of people, and the
 * document and printer that `stats --attribution` shares. */
#ifndef WB_STATS_H
#define WB_STATS_H
#include <stdbool.h>
#include <stdio.h>
#include <jansson.h>
#include <libpq-fe.h>

/* Per sequence and per step counts of people (SPEC "stats"); sequence NULL
 * = all. Returns an exit code. */
int wb_stats(PGconn *c, const char *sequence, bool json, FILE *out);
/* A count in a report document (0 when absent). */
static inline json_int_t wb_jcount(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}
/* Prints a stats-like document (taken; NULL = the query failed) as JSON
 * with `precision` significant digits, or through text(); a SEQUENCE that
 * the document does not list is a usage error. Returns an exit code. */
int wb_stats_print(json_t *doc, const char *sequence, bool json, int precision,
                   void (*text)(FILE *, json_t *), FILE *out);
/* The document `stats --json` prints ({"sequences": [...]}, rates and
 * per-variant p-values included), or NULL after reporting to stderr. An
 * unknown sequence gives an empty list. The caller json_decref()s it. */
json_t *wb_stats_doc(PGconn *c, const char *sequence);

#endif
