/* Checking a parsed JSON file against the shape we expect, reporting every
 * problem at its place: unknown keys at the key, wrong types at the value,
 * missing keys at the enclosing object. Paths are wb_jsonpos paths. */
#ifndef WB_JSONVAL_H
#define WB_JSONVAL_H
#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include "warmbench/diag.h"
#include "warmbench/jsonpos.h"

struct wb_jv {
    const char *file;
    struct wb_jsonpos pos;
    struct wb_diags *diags;
};

/* Parses text (reporting a syntax error as file:line:column from Jansson,
 * whose columns count characters) and indexes it; the root must be an
 * object. Returns the root, or NULL after adding a diagnostic. */
json_t *wb_jv_open(struct wb_jv *jv, const char *file, const char *text, size_t len,
                   struct wb_diags *diags);
void wb_jv_close(struct wb_jv *jv);

/* Where path's key (or value) is; 1:1 when the path is not in the text. */
void wb_jv_where(const struct wb_jv *jv, const char *path, bool key, int *line, int *col);
void wb_jv_err_key(struct wb_jv *jv, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void wb_jv_err_val(struct wb_jv *jv, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reports every key of obj not in allowed (NULL-terminated). */
void wb_jv_keys(struct wb_jv *jv, json_t *obj, const char *path, const char *const *allowed);

/* Each getter: absent → false (an error when required); wrong type → an
 * error and false; else true with *out set. Strings stay owned by obj. */
bool wb_jv_string(struct wb_jv *jv, json_t *obj, const char *path, const char *key,
                  bool required, const char **out);
bool wb_jv_int(struct wb_jv *jv, json_t *obj, const char *path, const char *key,
               bool required, long min, int *out);
bool wb_jv_bool(struct wb_jv *jv, json_t *obj, const char *path, const char *key,
                bool required, bool *out);
bool wb_jv_number(struct wb_jv *jv, json_t *obj, const char *path, const char *key,
                  bool required, double *out);
json_t *wb_jv_object(struct wb_jv *jv, json_t *obj, const char *path, const char *key,
                     bool required);
json_t *wb_jv_array(struct wb_jv *jv, json_t *obj, const char *path, const char *key,
                    bool required);
/* An array of strings, copied (malloc'd array of malloc'd strings). */
bool wb_jv_strings(struct wb_jv *jv, json_t *obj, const char *path, const char *key,
                   char ***out, size_t *n);
void wb_strings_free(char **v, size_t n);

#endif
