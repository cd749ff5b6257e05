/* libFuzzer target for templates (template.h): parsing {{field}} and
 * {{field|fallback}} with diagnostics, rendering as text and HTML, and
 * HTML escaping. Input: byte 0 picks which field names are known and
 * whether values are empty; the rest is the template.
 * Oracles: a template is refused exactly when a diagnostic was added; a
 * template without tags renders to its own bytes; values are inserted
 * literally (a value holding "{{" is never expanded) and, in HTML, never
 * bring a raw '<', '>', '"' or '\''. */
#include "warmbench/template.h"
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char value_text[] = "<b>\"{{first_name}}\" & 'x'</b>";

static bool ft_known(const char *name, void *ud)
{
    unsigned mode = *(const unsigned *)ud;
    return (mode & 1) || !strcmp(name, "first_name") || !strcmp(name, "company");
}

static const char *ft_value(const char *name, void *ud)
{
    unsigned mode = *(const unsigned *)ud;
    if (mode & 2)
        return NULL;
    return strlen(name) % 2 ? value_text : "";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned mode = data[0];
    const char *src = (const char *)data + 1;
    size_t len = size - 1;
    struct wb_diags d;
    wb_diags_init(&d);
    struct wb_template *t = wb_template_parse(src, len, "t.txt", 1 + (mode >> 4), 1, ft_known,
                                              &mode, &d);
    if (!t != (d.n > 0))
        abort();
    for (size_t i = 0; i < d.n; i++)
        if (d.v[i].line < 1 || d.v[i].col < 1 || !d.v[i].msg)
            abort();
    wb_diags_free(&d);
    if (!t)
        return 0;
    for (size_t i = 0; i < wb_template_nfields(t); i++)
        if (!wb_template_field(t, i) || !wb_template_field(t, i)[0])
            abort();
    struct wb_buf out;
    wb_buf_init(&out);
    wb_template_render(t, ft_value, &mode, false, &out);
    if (!wb_template_nfields(t) && (out.len != len || (len && memcmp(out.data, src, len))))
        abort();
    wb_buf_reset(&out);
    wb_template_render(t, ft_value, &mode, true, &out);
    /* Without tags or fallbacks the only markup is the source's own. */
    if (!memchr(src, '<', len) && !memchr(src, '|', len) && out.data &&
        memchr(out.data, '<', out.len))
        abort();
    wb_buf_free(&out);
    wb_template_free(t);
    return 0;
}
