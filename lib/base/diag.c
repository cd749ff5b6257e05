/* Collected diagnostics, printed as file:line:column: message. */
#include "warmbench/diag.h"
#include "warmbench/util.h"
#include <stdarg.h>
#include <stdlib.h>

void wb_diags_init(struct wb_diags *d)
{
    d->v = NULL;
    d->n = 0;
    d->cap = 0;
}

void wb_diags_free(struct wb_diags *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->v[i].file);
        free(d->v[i].msg);
    }
    free(d->v);
    wb_diags_init(d);
}

void wb_diags_add(struct wb_diags *d, const char *file, int line, int col,
                  const char *fmt, ...)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 8;
        d->v = wb_xrealloc(d->v, d->cap * sizeof *d->v);
    }
    va_list ap;
    va_start(ap, fmt);
    struct wb_diag *g = &d->v[d->n++];
    g->file = wb_xstrdup(file ? file : "");
    g->line = line;
    g->col = col;
    g->msg = wb_xvasprintf(fmt, ap);
    va_end(ap);
}

void wb_diags_print(const struct wb_diags *d, FILE *out)
{
    for (size_t i = 0; i < d->n; i++) {
        const struct wb_diag *g = &d->v[i];
        if (g->line > 0 && g->col > 0)
            fprintf(out, "%s:%d:%d: %s\n", g->file, g->line, g->col, g->msg);
        else if (g->line > 0)
            fprintf(out, "%s:%d: %s\n", g->file, g->line, g->msg);
        else
            fprintf(out, "%s: %s\n", g->file, g->msg);
    }
}
