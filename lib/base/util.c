/* Allocation helpers: abort on exhaustion, so callers stay short. */
#include "warmbench/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void util_oom(void)
{
    fputs("warmbench: out of memory\n", stderr);
    abort();
}

void *wb_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        util_oom();
    return p;
}

void *wb_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        util_oom();
    return p;
}

void *wb_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        util_oom();
    return q;
}

char *wb_xstrdup(const char *s)
{
    return wb_xstrndup(s, strlen(s));
}

char *wb_xstrndup(const char *s, size_t n)
{
    char *p = wb_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *wb_xvasprintf(const char *fmt, va_list ap)
{
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        util_oom();
    return s;
}

char *wb_xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = wb_xvasprintf(fmt, ap);
    va_end(ap);
    return s;
}

char *wb_path_join(const char *dir, const char *path)
{
    if (path[0] == '/' || !dir || !dir[0])
        return wb_xstrdup(path);
    return wb_xasprintf("%s/%s", dir, path);
}

char *wb_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return wb_xstrdup(".");
    if (slash == path)
        return wb_xstrdup("/");
    return wb_xstrndup(path, (size_t)(slash - path));
}

bool wb_has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool wb_url_ok(const char *u, const char *scheme)
{
    size_t n = strlen(scheme);
    if (strncmp(u, scheme, n))
        return false;
    /* The "s" form (https, smtps, imaps) is the same scheme over TLS. */
    const char *rest = u[n] == 's' ? u + n + 1 : u + n;
    return wb_has_prefix(rest, "://") && rest[3] != '\0';
}

bool wb_is_row_id(const char *s)
{
    if (!*s || strlen(s) > 18)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}
