/* Small allocation and string helpers shared by every file.
 * Allocation failure aborts, as in Redis: a daemon that cannot allocate a
 * few bytes has no safe way to go on. */
#ifndef WB_UTIL_H
#define WB_UTIL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdarg.h>

void *wb_xmalloc(size_t n);
void *wb_xcalloc(size_t n, size_t size);
void *wb_xrealloc(void *p, size_t n);
char *wb_xstrdup(const char *s);
char *wb_xstrndup(const char *s, size_t n);
char *wb_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *wb_xvasprintf(const char *fmt, va_list ap);

/* Joins dir and path unless path is absolute; result is malloc'd. */
char *wb_path_join(const char *dir, const char *path);
/* Directory part of path ("." when none); malloc'd. */
char *wb_dirname(const char *path);

/* True when s starts with prefix. */
bool wb_has_prefix(const char *s, const char *prefix);
/* True when u is scheme://something or schemes://something ("http" takes
 * http:// and https://, "smtp" smtp:// and smtps://). */
bool wb_url_ok(const char *u, const char *scheme);
/* u for a log line or an error: its user-info ("user:password@") shown as
 * "***@" (malloc'd; NULL gives "(none)"). */
char *wb_url_redacted(const char *u);
/* Bytes from outside (an SMTP reply, a response body) as text PostgreSQL
 * takes: one bad byte in a text[] parameter fails the whole statement, and
 * with it a batch of outcomes. Valid UTF-8 is kept (no overlong forms,
 * surrogates or code points past U+10FFFF), each other byte becomes '?',
 * each control character but \n and \t a space, so the length is the
 * same. The first works in place; the second returns a malloc'd copy. */
void wb_text_clean_inplace(char *p, size_t n);
char *wb_text_clean(const char *p, size_t n);
/* s is a row id as an operator types it: 1 to 18 decimal digits (fits a
 * bigint), nothing else. */
bool wb_is_row_id(const char *s);

#endif
