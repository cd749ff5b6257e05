/* Array literals for query parameters: elements are always double-quoted,
 * so commas, braces and spaces in data cannot change the array's shape. */
#include "warmbench/pgtext.h"
#include <ctype.h>

void wb_pg_array(struct wb_buf *out, char *const *v, size_t n, int lower)
{
    wb_buf_putc(out, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            wb_buf_putc(out, ',');
        wb_buf_putc(out, '"');
        for (const char *p = v[i]; *p; p++) {
            char c = lower ? (char)tolower((unsigned char)*p) : *p;
            if (c == '"' || c == '\\')
                wb_buf_putc(out, '\\');
            wb_buf_putc(out, c);
        }
        wb_buf_putc(out, '"');
    }
    wb_buf_putc(out, '}');
}

char *wb_pg_array_str(char *const *v, size_t n, int lower)
{
    struct wb_buf b;
    wb_buf_init(&b);
    wb_pg_array(&b, v, n, lower);
    return wb_buf_steal(&b);
}
