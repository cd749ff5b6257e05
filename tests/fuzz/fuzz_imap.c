/* libFuzzer target for the IMAP poller's reading of STATUS and UID SEARCH
 * answers (imap_parse.h). Input: bytes 0-7 are the last UID already seen;
 * the rest is the server's untagged answer.
 * Oracle: the UIDs are exactly those a plain reading of RFC 3501's
 * grammar gives (a "* SEARCH" line, then numbers 1..2^32-1 separated by
 * spaces), above the last seen, ascending and distinct; a STATUS value is
 * what follows its name. */
#include "warmbench/imap_parse.h"
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int fi_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The reference reading, token by token. */
static size_t fi_ref(const char *s, uint64_t above, uint64_t *v)
{
    size_t n = 0;
    for (const char *line = s; *line;) {
        size_t len = strcspn(line, "\n");
        size_t e = len && line[len - 1] == '\r' ? len - 1 : len;
        if (e >= 8 && !strncasecmp(line, "* SEARCH", 8) && (e == 8 || line[8] == ' ')) {
            for (size_t i = 8; i < e;) {
                if (line[i] == ' ') {
                    i++;
                    continue;
                }
                size_t k = i;
                uint64_t x = 0;
                while (k < e && line[k] != ' ') {
                    if (line[k] < '0' || line[k] > '9' || x > UINT32_MAX)
                        x = UINT64_MAX;
                    else
                        x = x * 10 + (uint64_t)(line[k] - '0');
                    k++;
                }
                if (x >= 1 && x <= UINT32_MAX && x > above)
                    v[n++] = x;
                i = k;
            }
        }
        line += len + (line[len] == '\n');
    }
    qsort(v, n, sizeof *v, fi_cmp);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!k || v[k - 1] != v[i])
            v[k++] = v[i];
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8)
        return 0;
    uint64_t above;
    memcpy(&above, data, 8);
    above %= 1000000; /* a real last_uid: UIDs are 32-bit, most small */
    char *s = strndup((const char *)data + 8, size - 8);
    uint64_t *uids, *want = malloc((strlen(s) / 2 + 1) * sizeof *want);
    size_t n = wb_imap_search_uids(s, above, &uids), nw = fi_ref(s, above, want);
    if (n != nw || (n && memcmp(uids, want, n * sizeof *uids))) {
        fprintf(stderr, "got %zu UIDs, want %zu\n", n, nw);
        for (size_t i = 0; i < n || i < nw; i++)
            fprintf(stderr, "  %" PRIu64 " %" PRIu64 "\n", i < n ? uids[i] : 0,
                    i < nw ? want[i] : 0);
        abort();
    }
    free(uids);
    free(want);
    const char *p = strcasestr(s, "UIDNEXT ");
    uint64_t next = wb_imap_status_value(s, "UIDNEXT ");
    if (p ? next > UINT32_MAX : next != 0)
        abort();
    (void)wb_imap_status_value(s, "UIDVALIDITY ");
    free(s);
    return 0;
}
