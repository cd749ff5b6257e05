/* libFuzzer target for POST /ats/events' body and signature: the strict
 * JSON validation (wb_ats_parse), the candidate JSON handed to SQL
 * (wb_ats_candidate_json) and the Warmbench-Signature check.
 * Input: the body, optionally preceded by a signature header line
 * ("t=...,v1=...\n") when the input starts with "t=".
 * Oracles: an accepted event has a valid address, a known type, an id of
 * 1..200 characters and tags without control characters; its candidate
 * JSON parses back to an object with that address; a signature made for
 * the body verifies, and the same one fails for any other body. */
#include "warmbench/ats_in.h"
#include "warmbench/webhook_sign.h"
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char key[] = "fuzz-ats-secret-0123456789abcdef";
#define KL (sizeof key - 1)
#define NOW 1700000000LL

static void fa_check_event(const struct wb_ats_event *ev)
{
    if (!wb_ats_email_ok(ev->email, strlen(ev->email)) || !wb_ats_event_sql(ev->type) ||
        !ev->id[0] || strlen(ev->id) > 4 * WB_ATS_ID_MAX)
        abort();
    for (size_t i = 0; i < ev->ntags; i++)
        for (const char *p = ev->tags[i]; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                abort();
    char *cj = wb_ats_candidate_json(ev);
    if (!cj)
        abort();
    json_t *back = json_loads(cj, JSON_REJECT_DUPLICATES, NULL);
    const char *email = json_string_value(json_object_get(back, "email"));
    if (!json_is_object(back) || !email || strcmp(email, ev->email) ||
        json_object_get(back, "tags"))
        abort();
    json_decref(back);
    free(cj);
}

static void fa_signature(const char *hdr, const char *body, size_t len)
{
    (void)wb_webhook_verify(key, KL, hdr, body, len, NOW, WB_ATS_TOLERANCE_S);
    char sig[WB_SIG_HEADER_MAX];
    wb_webhook_sign(key, KL, NOW, body, len, sig);
    if (wb_webhook_verify(key, KL, sig, body, len, NOW, WB_ATS_TOLERANCE_S) != WB_SIG_OK)
        abort();
    if (len && wb_webhook_verify(key, KL, sig, body, len - 1, NOW, WB_ATS_TOLERANCE_S) ==
                   WB_SIG_OK)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    size_t len = size;
    char *hdr = NULL;
    if (size >= 2 && !memcmp(data, "t=", 2)) {
        const uint8_t *nl = memchr(data, '\n', size);
        if (nl) {
            hdr = strndup((const char *)data, (size_t)(nl - data));
            body = (const char *)nl + 1;
            len = size - (size_t)(nl - data) - 1;
        }
    }
    fa_signature(hdr ? hdr : "", body, len);
    free(hdr);
    struct wb_ats_event ev;
    char err[256];
    if (wb_ats_parse(body, len, &ev, err, sizeof err) == 0) {
        fa_check_event(&ev);
        wb_ats_event_free(&ev);
    } else if (!err[0]) {
        abort(); /* a refusal always says why */
    }
    return 0;
}
