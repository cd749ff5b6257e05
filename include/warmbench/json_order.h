/* A JSON object with some keys first, for bodies people read (SPEC's key
 * order in webhook bodies). */
#ifndef WB_JSON_ORDER_H
#define WB_JSON_ORDER_H
#include <jansson.h>
#include <stddef.h>

/* A new object: in's members named in first[0..n) in that order, then the
 * rest of in's members in its own order (values shared, not copied). */
json_t *wb_json_ordered(json_t *in, const char *const *first, size_t n);

#endif
