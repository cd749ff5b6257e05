/* Objects with their keys in a chosen order (json_order.h). Jansson keeps
 * insertion order, so the object is built in the order wanted. */
#include "warmbench/json_order.h"

json_t *wb_json_ordered(json_t *in, const char *const *first, size_t n)
{
    json_t *out = json_object();
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(in, first[i]);
        if (v)
            json_object_set(out, first[i], v);
    }
    const char *k;
    json_t *v;
    json_object_foreach(in, k, v) {
        if (!json_object_get(out, k))
            json_object_set(out, k, v);
    }
    return out;
}
