/* libFuzzer target for what an OAuth server answers (oauth_parse.h): the
 * token endpoint and the device authorization endpoint. Input: byte 0
 * picks the HTTP status (200, 400, 401, 500, ...); the rest is the body.
 * Oracles: a usable token is printable ASCII without blanks and its
 * lifetime within 1 s..1 year; an error code holds only [a-z_?]; every
 * message an operator sees is printable ASCII (no escape sequence from a
 * hostile server reaches a terminal); a usable device answer has an
 * http(s) verification URI and intervals within bounds. */
#include "warmbench/oauth_parse.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const long statuses[] = {200, 201, 204, 299, 300, 400, 401, 403, 429, 500, 503, 0, -1,
                                100, 199, 999};

static void fo_printable(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            abort();
}

static void fo_reply(const struct wb_oauth_reply *r)
{
    switch (r->kind) {
    case WB_OAUTH_REPLY_TOKEN:
        if (!wb_oauth_token_ok(r->access_token, strlen(r->access_token)) ||
            (r->refresh_token && !wb_oauth_token_ok(r->refresh_token, strlen(r->refresh_token))) ||
            r->expires_in < 1 || r->expires_in > 366L * 24 * 3600)
            abort();
        break;
    case WB_OAUTH_REPLY_ERROR:
        if (!r->error[0] || strspn(r->error, "abcdefghijklmnopqrstuvwxyz_?") != strlen(r->error))
            abort();
        /* fall through */
    case WB_OAUTH_REPLY_BAD:
        if (!r->message)
            abort();
        fo_printable(r->message);
        break;
    default:
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    long status = statuses[data[0] % (sizeof statuses / sizeof statuses[0])];
    const char *body = (const char *)data + 1;
    struct wb_oauth_reply r;
    wb_oauth_parse_token(status, body, size - 1, &r);
    fo_reply(&r);
    wb_oauth_reply_free(&r);
    struct wb_oauth_device d;
    if (wb_oauth_parse_device(status, body, size - 1, &d, &r)) {
        if (!d.device_code || !d.user_code || !d.verification_uri || d.expires_in < 1 ||
            d.interval < 1 || d.interval > 300 || strncmp(d.verification_uri, "http", 4))
            abort();
        fo_printable(d.user_code);
        fo_printable(d.verification_uri);
        fo_printable(d.verification_uri_complete);
        wb_oauth_device_free(&d);
    } else {
        if (r.kind == WB_OAUTH_REPLY_TOKEN)
            abort();
        fo_reply(&r);
    }
    wb_oauth_reply_free(&r);
    return 0;
}
