/* Positions of keys and values in JSON text. Jansson reports none for
 * values, so the (already parsed) text is scanned once and every value is
 * indexed by its JSON Pointer path ("" is the root, "/smtp/tls",
 * "/steps/1/after" with 0-based array indexes, "~" and "/" in keys escaped
 * as "~0" and "~1"). Lines and columns are 1-based; columns count bytes. */
#ifndef WB_JSONPOS_H
#define WB_JSONPOS_H
#include <stddef.h>

struct wb_jsonpos_entry {
    char *path;
    int key_line, key_col; /* the key's opening quote; = value for array items and root */
    int val_line, val_col; /* the value's first byte (a string's opening quote) */
};

struct wb_jsonpos {
    struct wb_jsonpos_entry *v;
    size_t n, cap;
};

/* Indexes text[0..len), which must be valid JSON (parse it first). */
void wb_jsonpos_build(struct wb_jsonpos *m, const char *text, size_t len);
/* The entry for path, or NULL when the text has no such value. */
const struct wb_jsonpos_entry *wb_jsonpos_find(const struct wb_jsonpos *m, const char *path);
void wb_jsonpos_free(struct wb_jsonpos *m);

/* Path helpers (malloc'd): parent + "/" + escaped key, parent + "/" + index. */
char *wb_jsonpos_child(const char *parent, const char *key);
char *wb_jsonpos_index(const char *parent, size_t i);

#endif
