/* Growable byte buffer, always NUL-terminated. */
#ifndef WB_BUF_H
#define WB_BUF_H
#include <stddef.h>
#include <stdarg.h>

struct wb_buf {
    char *data;
    size_t len;
    size_t cap;
};

void wb_buf_init(struct wb_buf *b);
void wb_buf_free(struct wb_buf *b);
void wb_buf_reset(struct wb_buf *b);
void wb_buf_reserve(struct wb_buf *b, size_t extra);
void wb_buf_append(struct wb_buf *b, const void *p, size_t n);
void wb_buf_puts(struct wb_buf *b, const char *s);
void wb_buf_putc(struct wb_buf *b, char c);
void wb_buf_printf(struct wb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void wb_buf_vprintf(struct wb_buf *b, const char *fmt, va_list ap);
/* Inserts n bytes at offset at (at most len). */
void wb_buf_insert(struct wb_buf *b, size_t at, const void *p, size_t n);
/* Appends each string up to the NULL that ends the list: fixed strings
 * without a format to parse. */
void wb_buf_cat(struct wb_buf *b, const char *s, ...) __attribute__((sentinel));
/* Appends v in decimal, as "%llu" / "%lld" would. */
void wb_buf_put_u64(struct wb_buf *b, unsigned long long v);
void wb_buf_put_i64(struct wb_buf *b, long long v);
/* Hands the bytes to the caller (malloc'd) and resets the buffer. */
char *wb_buf_steal(struct wb_buf *b);
/* A malloc'd copy of the bytes, exactly as long as they are; b keeps its
 * room for reuse (a scratch buffer filled again and again). */
char *wb_buf_dup(const struct wb_buf *b);

#endif
