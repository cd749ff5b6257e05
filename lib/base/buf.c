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
    if (b->len + n >= b->cap) /* the common case, room already there, skips the call */
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
    /* Byte by byte (HTML escaping, header quoting): no memcpy, no reserve call. */
    if (b->len + 1 >= b->cap)
        wb_buf_reserve(b, 1);
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

void wb_buf_insert(struct wb_buf *b, size_t at, const void *p, size_t n)
{
    if (at > b->len)
        at = b->len;
    wb_buf_reserve(b, n);
    memmove(b->data + at + n, b->data + at, b->len - at + 1); /* the NUL too */
    if (n)
        memcpy(b->data + at, p, n);
    b->len += n;
}

void wb_buf_cat(struct wb_buf *b, const char *s, ...)
{
    va_list ap;
    va_start(ap, s);
    for (; s; s = va_arg(ap, const char *))
        wb_buf_append(b, s, strlen(s));
    va_end(ap);
}

void wb_buf_put_u64(struct wb_buf *b, unsigned long long v)
{
    char d[24];
    size_t i = sizeof d;
    do
        d[--i] = (char)('0' + v % 10);
    while (v /= 10);
    wb_buf_append(b, d + i, sizeof d - i);
}

void wb_buf_put_i64(struct wb_buf *b, long long v)
{
    if (v < 0) {
        wb_buf_putc(b, '-');
        wb_buf_put_u64(b, 0ULL - (unsigned long long)v);
    } else {
        wb_buf_put_u64(b, (unsigned long long)v);
    }
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

char *wb_buf_dup(const struct wb_buf *b)
{
    char *p = wb_xmalloc(b->len + 1);
    if (b->len)
        memcpy(p, b->data, b->len);
    p[b->len] = '\0';
    return p;
}
