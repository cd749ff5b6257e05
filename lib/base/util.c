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

/* The length of the valid UTF-8 sequence at p (at most n bytes), 0 when
 * there is none. */
static size_t util_utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
               : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (!len || len > n)
        return 0;
    unsigned cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
    for (size_t k = 1; k < len; k++) {
        if ((p[k] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[k] & 0x3f);
    }
    static const unsigned least[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < least[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

void wb_text_clean_inplace(char *p, size_t n)
{
    unsigned char *u = (unsigned char *)p;
    for (size_t i = 0; i < n;) {
        size_t len = util_utf8_len(u + i, n - i);
        if (!len)
            u[i++] = '?';
        else if (len == 1 && u[i] < 0x20 && u[i] != '\n' && u[i] != '\t')
            u[i++] = ' ';
        else if (len == 1 && u[i] == 0x7f)
            u[i++] = ' ';
        else
            i += len;
    }
}

char *wb_text_clean(const char *p, size_t n)
{
    char *s = wb_xmalloc(n + 1);
    memcpy(s, p, n);
    s[n] = '\0';
    wb_text_clean_inplace(s, n);
    return s;
}

char *wb_url_redacted(const char *u)
{
    if (!u)
        return wb_xstrdup("(none)");
    const char *auth = strstr(u, "://");
    if (!auth)
        return wb_xstrdup(u);
    auth += 3;
    size_t hostpart = strcspn(auth, "/?#");
    const char *at = memrchr(auth, '@', hostpart);
    if (!at)
        return wb_xstrdup(u);
    return wb_xasprintf("%.*s***%s", (int)(auth - u), u, at);
}
