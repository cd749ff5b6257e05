/* Template renderer: {{field}} and {{field|fallback}}.
 * Parsing happens once at config load (errors with file:line:column);
 * rendering is a walk over the parsed pieces. Diagnostic columns are
 * 1-based and count bytes. Whitespace around a field name and around a
 * fallback is trimmed; a fallback is the author's text and is not escaped;
 * a value is inserted literally (a "{{" in it is never expanded). */
#ifndef WB_TEMPLATE_H
#define WB_TEMPLATE_H
#include <stdbool.h>
#include <stddef.h>
#include "warmbench/buf.h"
#include "warmbench/diag.h"

struct wb_template;

/* Returns true when `name` is a field the template may use. */
typedef bool (*wb_field_known_fn)(const char *name, void *ud);
/* Returns the field's value, or NULL/"" when empty (then the fallback, if
 * any, is used). */
typedef const char *(*wb_field_value_fn)(const char *name, void *ud);

/* Parses src (len bytes). Positions in diagnostics are reported in `file`,
 * counting from line0:col0 (1:1 for a template file; the string's place
 * for an inline template such as a subject). Returns NULL and adds
 * diagnostics on error (unclosed tag, empty or unknown field). */
struct wb_template *wb_template_parse(const char *src, size_t len, const char *file,
                                      int line0, int col0, wb_field_known_fn known,
                                      void *ud, struct wb_diags *diags);
/* Appends the rendered text to out; HTML-escapes inserted values (not the
 * template's own text) when html is true. */
void wb_template_render(const struct wb_template *t, wb_field_value_fn value, void *ud,
                        bool html, struct wb_buf *out);
/* As wb_template_render, and on_empty(name, file, line, col, ud) for each
 * field that renders empty with no fallback (preview's warnings). */
typedef void (*wb_field_empty_fn)(const char *name, const char *file, int line, int col,
                                  void *ud);
void wb_template_render_checked(const struct wb_template *t, wb_field_value_fn value, void *ud,
                                bool html, struct wb_buf *out, wb_field_empty_fn on_empty);

/* Names of fields used, for callers that prefetch data. */
size_t wb_template_nfields(const struct wb_template *t);
const char *wb_template_field(const struct wb_template *t, size_t i);
void wb_template_free(struct wb_template *t);

/* Appends s HTML-escaped (& < > " '). */
void wb_html_escape(struct wb_buf *out, const char *s);

#endif
