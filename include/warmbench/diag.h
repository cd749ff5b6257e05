/* Diagnostics collected while validating input: each names a place
 * (file:line:column, or file:line when column is 0, or file alone when
 * line is 0) so check-config can report every problem, not just the first. */
#ifndef WB_DIAG_H
#define WB_DIAG_H
#include <stddef.h>
#include <stdio.h>

struct wb_diag {
    char *file;
    int line;
    int col;
    char *msg;
};

struct wb_diags {
    struct wb_diag *v;
    size_t n;
    size_t cap;
};

void wb_diags_init(struct wb_diags *d);
void wb_diags_free(struct wb_diags *d);
void wb_diags_add(struct wb_diags *d, const char *file, int line, int col,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* One line per diagnostic: "file:line:column: message". */
void wb_diags_print(const struct wb_diags *d, FILE *out);

#endif
