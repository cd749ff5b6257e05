/* STATUS and UID SEARCH answers (see imap_parse.h). */
#include "warmbench/imap_parse.h"
#include "warmbench/util.h"
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* RFC 3501 nz-number (UIDs, UIDVALIDITY, UIDNEXT): 1..2^32-1, digits only.
 * strtoull took signs, blanks and line breaks before a number and values
 * past 32 bits, so a "-1" or a number on the next line became a UID, and
 * a huge UIDNEXT moved the poll's progress past every later mail. */
static bool ip_number(const char *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (!n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(p[i] - '0');
        if (v > UINT32_MAX)
            return false;
    }
    *out = v;
    return v >= 1;
}

static int ip_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

size_t wb_imap_search_uids(const char *s, uint64_t above, uint64_t **uids)
{
    uint64_t *v = NULL;
    size_t n = 0, cap = 0;
    for (const char *line = s; *line;) {
        size_t len = strcspn(line, "\n");
        size_t end = len && line[len - 1] == '\r' ? len - 1 : len;
        /* "* SEARCH" then space-separated numbers; anything else on the
         * line (a MODSEQ list, garbage) names no UID. */
        if (end >= 8 && !strncasecmp(line, "* SEARCH", 8) && (end == 8 || line[8] == ' ')) {
            for (size_t i = 8; i < end;) {
                size_t k = i;
                while (k < end && line[k] != ' ')
                    k++;
                uint64_t u;
                /* "n:*" names the last message even below n */
                if (ip_number(line + i, k - i, &u) && u > above) {
                    if (n == cap)
                        v = wb_xrealloc(v, (cap = cap ? cap * 2 : 64) * sizeof *v);
                    v[n++] = u;
                }
                i = k + 1;
            }
        }
        line += len + (line[len] == '\n');
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
    if (!p)
        return 0;
    p += strlen(name);
    uint64_t v;
    return ip_number(p, strspn(p, "0123456789"), &v) ? v : 0;
}
