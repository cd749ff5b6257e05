/* Text forms of values passed to PostgreSQL as query parameters. */
#ifndef WB_PGTEXT_H
#define WB_PGTEXT_H
#include <stddef.h>
#include "warmbench/buf.h"

/* Appends a text[] literal ({"a","b\"c"}) of n strings, lowercased when
 * lower is non-zero. */
void wb_pg_array(struct wb_buf *out, char *const *v, size_t n, int lower);
/* Same, as a malloc'd string. */
char *wb_pg_array_str(char *const *v, size_t n, int lower);

#endif
