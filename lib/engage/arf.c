/* Complaint reports (ARF, RFC 5965): is this a feedback report, of which
 * type, and which mail of ours does it name. */
#include "warmbench/arf.h"
#include "warmbench/util.h"
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The next line of body at *p (without its line break); false at the end. */
static bool arf_line(const char **p, const char *end, const char **line, size_t *n)
{
    if (*p >= end)
        return false;
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    *line = *p;
    *n = (size_t)((nl ? nl : end) - *p);
    if (*n && (*line)[*n - 1] == '\r')
        (*n)--;
    *p = nl ? nl + 1 : end;
    return true;
}

/* The value after "name:" when line starts with that field name. */
static const char *arf_field(const char *line, size_t n, const char *name, size_t *vn)
{
    size_t k = strlen(name);
    if (n <= k || strncasecmp(line, name, k) || line[k] != ':')
        return NULL;
    const char *v = line + k + 1, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    *vn = (size_t)(end - v);
    return v;
}

int wb_arf_feedback_type(const struct wb_mail_head *h, const char *body, size_t len, char *out,
                         size_t outsz)
{
    const char *ct = wb_mail_head_get(h, "Content-Type");
    char rt[64];
    if (!ct || strncasecmp(ct, "multipart/report", 16) ||
        wb_mail_param(ct, "report-type", rt, sizeof rt) < 0 || strcasecmp(rt, "feedback-report"))
        return -1;
    const char *p = body ? body : "", *end = p + len, *line;
    size_t n, vn;
    while (arf_line(&p, end, &line, &n)) {
        const char *v = arf_field(line, n, "Feedback-Type", &vn);
        if (!v)
            continue;
        size_t k = 0;
        while (k < vn && k + 1 < outsz && (isalpha((unsigned char)v[k]) || v[k] == '-')) {
            out[k] = (char)tolower((unsigned char)v[k]);
            k++;
        }
        if (!k)
            return -1;
        out[k] = '\0';
        return 0;
    }
    return -1;
}

size_t wb_arf_message_ids(const char *body, size_t len, char *ids[WB_ARF_MAX_IDS])
{
    const char *p = body ? body : "", *end = p + len, *line;
    size_t n, vn, k = 0;
    while (k < WB_ARF_MAX_IDS && arf_line(&p, end, &line, &n)) {
        const char *v = arf_field(line, n, "Message-ID", &vn);
        if (!v || vn < 3 || *v != '<')
            continue;
        const char *close = memchr(v, '>', vn);
        if (!close || close == v + 1 || close - v > 250)
            continue;
        /* As In-Reply-To's ids (mailparse.c): no blank, control byte or
         * '<'. A NUL cut the copy short, and "<\0x>" gave an empty id. */
        bool ok = true;
        for (const char *q = v + 1; q < close && ok; q++)
            ok = (unsigned char)*q > ' ' && *q != '<' && *q != 0x7f;
        if (ok)
            ids[k++] = wb_xstrndup(v + 1, (size_t)(close - v - 1));
    }
    return k;
}

bool wb_arf_is_complaint(const char *type)
{
    static const char *const yes[] = {"abuse", "fraud", "virus", "other"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (!strcmp(type, yes[i]))
            return true;
    return false;
}
