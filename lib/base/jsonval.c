/* Shape checks for parsed JSON, each problem reported at its exact place. */
#include "warmbench/jsonval.h"
#include "warmbench/util.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

json_t *wb_jv_open(struct wb_jv *jv, const char *file, const char *text, size_t len,
                   struct wb_diags *diags)
{
    memset(jv, 0, sizeof *jv);
    jv->file = file;
    jv->diags = diags;
    json_error_t err;
    /* Duplicate keys would make a path name two places; reject them. */
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (!root) {
        wb_diags_add(diags, file, err.line > 0 ? err.line : 1, err.column > 0 ? err.column : 1,
                     "invalid JSON: %s", err.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        wb_diags_add(diags, file, 1, 1, "must be a JSON object");
        return NULL;
    }
    wb_jsonpos_build(&jv->pos, text, len);
    return root;
}

void wb_jv_close(struct wb_jv *jv)
{
    wb_jsonpos_free(&jv->pos);
}

void wb_jv_where(const struct wb_jv *jv, const char *path, bool key, int *line, int *col)
{
    const struct wb_jsonpos_entry *e = wb_jsonpos_find(&jv->pos, path);
    *line = e ? (key ? e->key_line : e->val_line) : 1;
    *col = e ? (key ? e->key_col : e->val_col) : 1;
}

static void jval_err_at(struct wb_jv *jv, const char *path, bool key, const char *fmt, va_list ap)
{
    int line, col;
    wb_jv_where(jv, path, key, &line, &col);
    char *msg = wb_xvasprintf(fmt, ap);
    wb_diags_add(jv->diags, jv->file, line, col, "%s", msg);
    free(msg);
}

void wb_jv_err_key(struct wb_jv *jv, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    jval_err_at(jv, path, true, fmt, ap);
    va_end(ap);
}

void wb_jv_err_val(struct wb_jv *jv, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    jval_err_at(jv, path, false, fmt, ap);
    va_end(ap);
}

void wb_jv_keys(struct wb_jv *jv, json_t *obj, const char *path, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], key))
            i++;
        if (allowed[i])
            continue;
        char *p = wb_jsonpos_child(path, key);
        wb_jv_err_key(jv, p, "unknown key \"%s\"", key);
        free(p);
    }
}

/* The member when present and of the wanted kind; reports otherwise. */
static json_t *jval_member(struct wb_jv *jv, json_t *obj, const char *path, const char *key,
                      bool required, int (*ok)(const json_t *), const char *what)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            wb_jv_err_val(jv, path, "missing key \"%s\"", key);
        return NULL;
    }
    if (ok(v))
        return v;
    char *p = wb_jsonpos_child(path, key);
    wb_jv_err_val(jv, p, "\"%s\" must be %s", key, what);
    free(p);
    return NULL;
}

static int jval_is_string(const json_t *v) { return json_is_string(v); }
static int jval_is_integer(const json_t *v) { return json_is_integer(v); }
static int jval_is_bool(const json_t *v) { return json_is_boolean(v); }
static int jval_is_number(const json_t *v) { return json_is_number(v); }
static int jval_is_object(const json_t *v) { return json_is_object(v); }
static int jval_is_array(const json_t *v) { return json_is_array(v); }

bool wb_jv_string(struct wb_jv *jv, json_t *obj, const char *path, const char *key,
                  bool required, const char **out)
{
    json_t *v = jval_member(jv, obj, path, key, required, jval_is_string, "a string");
    if (v)
        *out = json_string_value(v);
    return v != NULL;
}

bool wb_jv_int(struct wb_jv *jv, json_t *obj, const char *path, const char *key,
               bool required, long min, int *out)
{
    json_t *v = jval_member(jv, obj, path, key, required, jval_is_integer, "an integer");
    if (!v)
        return false;
    json_int_t i = json_integer_value(v);
    if (i < min || i > 1000000000) {
        char *p = wb_jsonpos_child(path, key);
        wb_jv_err_val(jv, p, "\"%s\" must be between %ld and 1000000000", key, min);
        free(p);
        return false;
    }
    *out = (int)i;
    return true;
}

bool wb_jv_bool(struct wb_jv *jv, json_t *obj, const char *path, const char *key,
                bool required, bool *out)
{
    json_t *v = jval_member(jv, obj, path, key, required, jval_is_bool, "true or false");
    if (v)
        *out = json_is_true(v);
    return v != NULL;
}

bool wb_jv_number(struct wb_jv *jv, json_t *obj, const char *path, const char *key,
                  bool required, double *out)
{
    json_t *v = jval_member(jv, obj, path, key, required, jval_is_number, "a number");
    if (v)
        *out = json_number_value(v);
    return v != NULL;
}

json_t *wb_jv_object(struct wb_jv *jv, json_t *obj, const char *path, const char *key,
                     bool required)
{
    return jval_member(jv, obj, path, key, required, jval_is_object, "an object");
}

json_t *wb_jv_array(struct wb_jv *jv, json_t *obj, const char *path, const char *key,
                    bool required)
{
    return jval_member(jv, obj, path, key, required, jval_is_array, "an array");
}

bool wb_jv_strings(struct wb_jv *jv, json_t *obj, const char *path, const char *key,
                   char ***out, size_t *n)
{
    json_t *a = wb_jv_array(jv, obj, path, key, false);
    if (!a)
        return false;
    char *apath = wb_jsonpos_child(path, key);
    char **v = wb_xcalloc(json_array_size(a) + 1, sizeof *v);
    size_t k = 0, i;
    json_t *item;
    bool ok = true;
    json_array_foreach(a, i, item) {
        if (json_is_string(item)) {
            v[k++] = wb_xstrdup(json_string_value(item));
            continue;
        }
        char *p = wb_jsonpos_index(apath, i);
        wb_jv_err_val(jv, p, "\"%s\" items must be strings", key);
        free(p);
        ok = false;
    }
    free(apath);
    if (!ok) {
        wb_strings_free(v, k);
        return false;
    }
    *out = v;
    *n = k;
    return true;
}

void wb_strings_free(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}
