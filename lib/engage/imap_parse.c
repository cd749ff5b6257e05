/* STATUS and UID SEARCH answers (see imap_parse.h). */
#include "warmbench/imap_parse.h"
#include "warmbench/util.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int ip_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

size_t wb_imap_search_uids(const char *s, uint64_t above, uint64_t **uids)
{
    uint64_t *v = NULL;
    size_t n = 0, cap = 0;
    for (const char *line = s; line && *line;) {
        const char *nl = strchr(line, '\n');
        if (!strncasecmp(line, "* SEARCH", 8)) {
            for (const char *p = line + 8; *p && *p != '\n';) {
                char *e;
                unsigned long long u = strtoull(p, &e, 10);
                if (e == p) {
                    p++;
                    continue;
                }
                p = e;
                if (u <= above)
                    continue; /* "n:*" names the last message even below n */
                if (n == cap)
                    v = wb_xrealloc(v, (cap = cap ? cap * 2 : 64) * sizeof *v);
                v[n++] = u;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    if (n)
        qsort(v, n, sizeof *v, ip_cmp_u64);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!k || v[k - 1] != v[i])
            v[k++] = v[i];
    *uids = v;
    return k;
}

uint64_t wb_imap_status_value(const char *s, const char *name)
{
    const char *p = strcasestr(s, name);
    return p ? strtoull(p + strlen(name), NULL, 10) : 0;
}
