/* HMAC-SHA256 webhook signatures (see webhook_sign.h). */
#include "warmbench/webhook_sign.h"
#include "warmbench/util.h"
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAC_LEN 32

static void ws_mac(const unsigned char *key, size_t keylen, long long t, const char *body, size_t len,
                unsigned char out[MAC_LEN])
{
    char ts[32];
    int n = snprintf(ts, sizeof ts, "%lld.", t);
    /* One-shot HMAC() over a copy: OpenSSL 3 deprecates the streaming
     * HMAC_CTX calls, and bodies are a few KB. */
    unsigned char *msg = wb_xmalloc((size_t)n + len + 1);
    memcpy(msg, ts, (size_t)n);
    if (len)
        memcpy(msg + n, body, len);
    unsigned int ol = MAC_LEN;
    static const unsigned char empty[1];
    HMAC(EVP_sha256(), keylen ? key : empty, (int)keylen, msg, (size_t)n + len, out, &ol);
    free(msg);
}

void wb_webhook_sign(const unsigned char *key, size_t keylen, long long t, const char *body,
                     size_t len, char out[WB_SIG_HEADER_MAX])
{
    unsigned char m[MAC_LEN];
    ws_mac(key, keylen, t, body, len, m);
    int n = snprintf(out, WB_SIG_HEADER_MAX, "t=%lld,v1=", t);
    for (size_t i = 0; i < MAC_LEN; i++)
        snprintf(out + n + 2 * i, 3, "%02x", m[i]);
}

static int ws_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* 64 hex digits exactly → 32 bytes. */
static bool ws_unhex(const char *s, size_t n, unsigned char out[MAC_LEN])
{
    if (n != 2 * MAC_LEN)
        return false;
    for (size_t i = 0; i < MAC_LEN; i++) {
        int hi = ws_hexval(s[2 * i]), lo = ws_hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

static bool ws_parse_t(const char *s, size_t n, long long *t)
{
    if (n == 0 || n > 18)
        return false;
    long long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *t = v;
    return true;
}

enum wb_sig_check wb_webhook_verify(const unsigned char *key, size_t keylen, const char *header,
                                    const char *body, size_t len, long long now,
                                    long tolerance_s)
{
    long long t = -1;
    unsigned char given[8][MAC_LEN];
    size_t ngiven = 0;
    bool bad = false;
    for (const char *p = header ? header : ""; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n && (*p == ' ' || *p == '\t'))
            p++, n--;
        if (n > 2 && !strncmp(p, "t=", 2)) {
            if (!ws_parse_t(p + 2, n - 2, &t))
                bad = true;
        } else if (n > 3 && !strncmp(p, "v1=", 3) && ngiven < 8) {
            if (ws_unhex(p + 3, n - 3, given[ngiven]))
                ngiven++;
        }
        /* Other schemes (v0=, future ones) are ignored, as Stripe does. */
        p += n;
        if (*p == ',')
            p++;
    }
    if (bad || t < 0 || !ngiven)
        return WB_SIG_MALFORMED;
    long long skew = now > t ? now - t : t - now;
    if (skew > tolerance_s)
        return WB_SIG_STALE;
    unsigned char want[MAC_LEN];
    ws_mac(key, keylen, t, body, len, want);
    int ok = 0;
    /* Every candidate is compared in full, so the time taken says nothing
     * about which one (or how much of it) matched. */
    for (size_t i = 0; i < ngiven; i++)
        ok |= CRYPTO_memcmp(want, given[i], MAC_LEN) == 0;
    return ok ? WB_SIG_OK : WB_SIG_MISMATCH;
}
