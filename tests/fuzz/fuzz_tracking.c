/* libFuzzer target for the tracking endpoint's pure parts: routing (token
 * parsing in constant time, kinds, admin split), the machine rules and the
 * repeat table. Oracle: a request routed to a token route must carry the
 * one canonical token for what it decoded to (no second spelling of a
 * token is ever accepted), a hit just marked in the repeat table is seen
 * at that time, and nothing may crash or trip ASan/UBSan.
 * The whole input is also tried as a bare token (VERP bounce tokens and
 * version-2 clicks included): one that decodes must be the canonical
 * spelling of what it decoded to (base32 bounce tokens up to case).
 * Input: byte 0 picks the method and the listener flags, byte 1 splits
 * the rest into a path and a User-Agent. */
#include "warmbench/dedup.h"
#include "warmbench/machine.h"
#include "warmbench/router.h"
#include "warmbench/tokens.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const unsigned char key[] = "fuzz-secret-0123456789abcdef";
#define KL (sizeof key - 1)

/* The one spelling of a decoded token: a version-2 click by its link id. */
static size_t remake(const struct wb_token *t, char *tok, size_t sz)
{
    if (t->link_id)
        return t->kind == WB_TOKEN_CLICK && t->link < 0
                   ? wb_token_make_link(key, KL, t->message_id, t->link_id, tok, sz)
                   : 0;
    return wb_token_make(key, KL, t->kind, t->message_id, t->link, tok, sz);
}

static void check_canonical(const char *path, const struct wb_route *r)
{
    char tok[WB_TOKEN_MAX];
    size_t n = remake(&r->tok, tok, sizeof tok);
    if (!n || strncmp(path + 3, tok, n))
        abort();
    const char *rest = path + 3 + n;
    if (strcmp(rest, r->kind == WB_ROUTE_OPEN ? ".gif" : ""))
        abort();
}

/* Routed opens and clicks go through one small table (so sets fill and
 * evict) at a clock read from the input's first bytes: any double,
 * NaN and infinities included. */
static void repeat_table(const struct wb_route *r, const uint8_t *data, size_t size)
{
    static struct wb_dedup *d;
    if (!d)
        d = wb_dedup_new(16, 60);
    double now = 0;
    memcpy(&now, data, size < sizeof now ? size : sizeof now);
    struct wb_dedup_key k = {r->tok.message_id, r->tok.link, data[0] & 1};
    wb_dedup_mark(d, &k, now);
    if (!wb_dedup_seen(d, &k, now))
        abort();
}

/* A real token (open, click of both versions, unsubscribe), altered at
 * one place the input picks, must route only when the alteration changed
 * nothing. */
static void altered_token(const uint8_t *data, size_t size)
{
    static const char *const prefixes[] = {"/o/", "/c/", "/u/", "/c/"};
    static const enum wb_route_kind want[] = {WB_ROUTE_OPEN, WB_ROUTE_CLICK, WB_ROUTE_UNSUB_PAGE,
                                              WB_ROUTE_CLICK};
    int k = data[0] % 4;
    int64_t id = 0;
    for (size_t i = 0; i < size && i < 8; i++)
        id = (int64_t)((uint64_t)id << 8 | data[i]);
    char tok[WB_TOKEN_MAX], path[WB_TOKEN_MAX + 16];
    size_t n = k == 3 ? wb_token_make_link(key, KL, id, (uint64_t)id * 0x9e3779b97f4a7c15u | 1,
                                           tok, sizeof tok)
                      : wb_token_make(key, KL, (enum wb_token_kind)(k + 1), id, data[1], tok,
                                      sizeof tok);
    if (!n)
        abort();
    char orig = tok[data[1] % n], ch = (char)data[size - 1];
    if (!ch)
        return;
    tok[data[1] % n] = ch;
    snprintf(path, sizeof path, "%s%s%s", prefixes[k], tok, k == 0 ? ".gif" : "");
    struct wb_route r;
    enum wb_route_kind got = wb_route("GET", path, false, false, key, KL, &r);
    if (got != (ch == orig ? want[k] : WB_ROUTE_NONE))
        abort();
    if (got == WB_ROUTE_OPEN || got == WB_ROUTE_CLICK)
        repeat_table(&r, data, size);
}

static void bare_token(const uint8_t *data, size_t size)
{
    struct wb_token t;
    if (wb_token_parse(key, KL, (const char *)data, size, &t) != 0)
        return;
    char tok[WB_TOKEN_MAX];
    size_t n = remake(&t, tok, sizeof tok);
    if (n != size || (t.kind == WB_TOKEN_BOUNCE ? strncasecmp(tok, (const char *)data, n)
                                                : memcmp(tok, data, n)))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bare_token(data, size);
    if (size < 2)
        return 0;
    altered_token(data, size);
    static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS",
                                          "get", ""};
    const char *method = methods[data[0] & 7];
    bool admin = data[0] & 8, split = data[0] & 16;
    size_t cut = data[1] % (size - 1);
    char *path = strndup((const char *)data + 2, cut);
    char *ua = strndup((const char *)data + 2 + cut, size - 2 - cut);
    struct wb_route r;
    enum wb_route_kind k = wb_route(method, path, admin, split, key, KL, &r);
    if (k == WB_ROUTE_OPEN || k == WB_ROUTE_CLICK || k == WB_ROUTE_UNSUB_PAGE ||
        k == WB_ROUTE_UNSUB_POST)
        check_canonical(path, &r);
    if (k == WB_ROUTE_OPEN || k == WB_ROUTE_CLICK)
        repeat_table(&r, data, size);
    if ((k == WB_ROUTE_HEALTHZ || k == WB_ROUTE_METRICS) && split && !admin)
        abort();
    struct wb_machine_req m = {ua, data[0] & 32 ? ua : NULL, data[0] & 64 ? path : NULL,
                               data[0] & 128, (double)(int8_t)data[1], 5};
    (void)wb_machine_open(&m);
    (void)wb_machine_click(&m);
    free(path);
    free(ua);
    return 0;
}
