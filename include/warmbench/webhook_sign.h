/* Signatures of webhook bodies, both ways (SPEC "Handoff to the ATS"):
 * the header value "t=UNIX,v1=HEX" with HEX = HMAC-SHA256(secret,
 * UNIX + "." + body). Pure functions: no I/O, no clock. */
#ifndef WB_WEBHOOK_SIGN_H
#define WB_WEBHOOK_SIGN_H
#include <stddef.h>

/* "t=" + up to 20 digits + ",v1=" + 64 hex digits + NUL, with room. */
#define WB_SIG_HEADER_MAX 96

enum wb_sig_check {
    WB_SIG_OK = 0,
    WB_SIG_MALFORMED,   /* no t=, no v1=, or not numbers/hex */
    WB_SIG_STALE,       /* t is further than the tolerance from now */
    WB_SIG_MISMATCH     /* no v1 matches */
};

/* Writes the header value for body signed at time t into out. */
void wb_webhook_sign(const unsigned char *key, size_t keylen, long long t, const char *body,
                     size_t len, char out[WB_SIG_HEADER_MAX]);

/* Checks a received header value against body, in constant time per v1
 * (several v1= entries are allowed, for key rotation; any match passes).
 * tolerance_s bounds |now - t| against replays. */
enum wb_sig_check wb_webhook_verify(const unsigned char *key, size_t keylen, const char *header,
                                    const char *body, size_t len, long long now,
                                    long tolerance_s);

#endif
