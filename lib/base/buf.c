/* Growable, NUL-terminated byte buffer. */
#include "warmbench/buf.h"
#include "warmbench/util.h"
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

void wb_buf_init(struct wb_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void wb_buf_free(struct wb_buf *b)
{
    free(b->data);
    wb_buf_init(b);
}

void wb_buf_reset(struct wb_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void wb_buf_reserve(struct wb_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->data = wb_xrealloc(b->data, cap);
    b->cap = cap;
}

void wb_buf_append(struct wb_buf *b, const void *p, size_t n)
{
    wb_buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void wb_buf_puts(struct wb_buf *b, const char *s)
{
    wb_buf_append(b, s, strlen(s));
}

void wb_buf_putc(struct wb_buf *b, char c)
{
    wb_buf_append(b, &c, 1);
}

void wb_buf_vprintf(struct wb_buf *b, const char *fmt, va_list ap)
{
    /* Format into the free room first; only a longer result formats twice. */
    va_list ap2;
    va_copy(ap2, ap);
    wb_buf_reserve(b, 64);
    size_t room = b->cap - b->len;
    int n = vsnprintf(b->data + b->len, room, fmt, ap);
    if (n >= 0 && (size_t)n >= room) {
        wb_buf_reserve(b, (size_t)n);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
    }
    va_end(ap2);
    if (n > 0)
        b->len += (size_t)n;
    else if (b->data)
        b->data[b->len] = '\0';
}

void wb_buf_printf(struct wb_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    wb_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

char *wb_buf_steal(struct wb_buf *b)
{
    char *p = b->data ? b->data : wb_xstrdup("");
    wb_buf_init(b);
    return p;
}
