/* libFuzzer target for inbound mail as the IMAP poller reads it: the header
 * block, RFC 2047 words, Message-IDs, auto-reply markers, structured field
 * parameters, a DSN's Status, our VERP bounce token, the first text part
 * (MIME walk, transfer encodings, charsets, HTML) and complaint reports
 * (ARF). Input: one raw message.
 * Oracles: every text handed back is valid UTF-8; decoded words hold no
 * control characters; a Status is "d.d.d"-shaped; Message-IDs hold no
 * blank or '<'; a bounce token found names the message it was made for. */
#include "warmbench/arf.h"
#include "warmbench/csv.h"
#include "warmbench/mailparse.h"
#include "warmbench/tokens.h"
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The seeds' bounce addresses were made with this key (message 4242). */
static const unsigned char key[] = "fuzz-mail-secret-0123456789abcdef";
#define KL (sizeof key - 1)
static const char domain[] = "bounces.example.com";

static void fm_utf8(const char *s)
{
    if (s && !wb_utf8_valid(s, strlen(s)))
        abort();
}

static void fm_words(const char *v)
{
    char *u = wb_mail_decode_words(v);
    fm_utf8(u);
    for (const char *p = u; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            abort();
    free(u);
}

static void fm_ids(char **ids, size_t n, const char *banned)
{
    for (size_t i = 0; i < n; i++) {
        if (!ids[i][0] || strpbrk(ids[i], banned))
            abort();
    }
}

static void fm_status(const char *s)
{
    int dots = 0;
    if (s[0] != '2' && s[0] != '4' && s[0] != '5')
        abort();
    for (const char *p = s; *p; p++)
        if (*p == '.')
            dots++;
        else if (!isdigit((unsigned char)*p))
            abort();
    if (dots != 2 || strlen(s) > 15)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    struct wb_mail_head h;
    size_t off = 0;
    if (wb_mail_head_parse(p, size, &h, &off) < 0)
        return 0;
    if (off > size)
        abort();
    const char *body = p + off;
    size_t blen = size - off;
    for (size_t i = 0; i < h.n; i++) {
        if (!h.v[i].name[0] || strchr(h.v[i].value, '\n'))
            abort();
        fm_words(h.v[i].value);
    }
    char **refs = NULL;
    size_t n = wb_mail_refs(&h, &refs);
    if (n > WB_MAIL_MAX_REFS)
        abort();
    fm_ids(refs, n, " \t\r\n<");
    wb_mail_strv_free(refs, n);
    (void)wb_mail_is_auto(&h);
    const char *ct = wb_mail_head_get(&h, "Content-Type");
    char param[64];
    if (ct && wb_mail_param(ct, "charset", param, sizeof param) == 0) {
        if (strlen(param) >= sizeof param)
            abort();
        char *u = wb_mail_to_utf8(param, body, blen);
        fm_utf8(u);
        free(u);
    }
    char status[16];
    if (wb_mail_dsn_status(&h, body, blen, status) == 0)
        fm_status(status);
    int64_t id;
    if (wb_mail_bounce_message(&h, body, blen, domain, key, KL, &id) == 0 && id != 4242)
        abort();
    char *text = wb_mail_first_text(&h, body, blen);
    fm_utf8(text);
    free(text);
    char ft[32];
    if (wb_arf_feedback_type(&h, body, blen, ft, sizeof ft) == 0) {
        for (const char *q = ft; *q; q++)
            if (!islower((unsigned char)*q) && *q != '-')
                abort();
    }
    char *ids[WB_ARF_MAX_IDS];
    n = wb_arf_message_ids(body, blen, ids);
    if (n > WB_ARF_MAX_IDS)
        abort();
    fm_ids(ids, n, " \t<");
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    wb_mail_head_free(&h);
    return 0;
}
