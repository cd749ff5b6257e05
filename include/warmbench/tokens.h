/* Unforgeable tokens for tracking URLs (/o/, /c/, /u/) and VERP bounce
 * addresses (b+TOKEN@bounce_domain).
 *
 * A token is payload || MAC where payload = kind (1 byte) || message id
 * (int64, big-endian) [|| link (clicks only)] and MAC = the first 16 bytes
 * (128 bits) of HMAC-SHA256(key, "wb1" || payload). The prefix keeps these
 * MACs from ever matching another use of the key.
 *
 * Clicks come in two versions. Version 2 (payload kind byte 5, made by
 * wb_token_make_link) carries the link's stable id (uint64, big-endian,
 * wb_token_link_id): what was sent, whatever the config says later.
 * Version 1 (kind byte 2, wb_token_make with a link index) carries the
 * link's position in its sequence's `links` at send time; it is still
 * decoded for the mail sent before version 2, and resolved as it was.
 *
 * Encoding:
 *  - open, click, unsub: base64url without padding (34 chars; 36 for a
 *    version-1 click, 44 for a version-2 one),
 *    every bit significant: a token whose unused trailing bits are not zero is
 *    rejected, so no two strings decode to the same token.
 *  - bounce: lowercase base32 (RFC 4648 alphabet, a-z2-7, no padding, 40
 *    chars), parsed case-insensitively. Mail systems may change the case of
 *    a local part, and a bounce that can't be attributed is lost; base32 is
 *    valid in a local part and 40 chars is within its 64.
 * Each kind is accepted only in its own encoding. */
#ifndef WB_TOKENS_H
#define WB_TOKENS_H
#include <stddef.h>
#include <stdint.h>

enum wb_token_kind {
    WB_TOKEN_OPEN = 1,
    WB_TOKEN_CLICK = 2,
    WB_TOKEN_UNSUB = 3,
    WB_TOKEN_BOUNCE = 4,
};

/* Room for any token and its NUL. */
#define WB_TOKEN_MAX 48
#define WB_TOKEN_LINK_MAX 65535

struct wb_token {
    enum wb_token_kind kind;
    int64_t message_id;
    int link;            /* a version-1 click's link index, -1 otherwise */
    uint64_t link_id;    /* a version-2 click's link id, 0 otherwise */
};

/* Writes the NUL-terminated token into out; returns its length, or 0 when
 * kind is unknown, a click's link is outside 0..WB_TOKEN_LINK_MAX, keylen
 * is 0 or outsz is too small. `link` is ignored for other kinds. */
size_t wb_token_make(const unsigned char *key, size_t keylen, enum wb_token_kind kind,
                     int64_t message_id, int link, char *out, size_t outsz);

/* A version-2 click token for link link_id (not 0); as wb_token_make. */
size_t wb_token_make_link(const unsigned char *key, size_t keylen, int64_t message_id,
                          uint64_t link_id, char *out, size_t outsz);

/* A link's stable id: the first 8 bytes (big-endian) of SHA-256(sequence
 * "\0" name "\0" url), 1 when that is 0. Not keyed: the token's MAC
 * already vouches for it, and it must not change with the secret. Fixed
 * forever: ids are in mail already sent and in the links table. */
uint64_t wb_token_link_id(const char *sequence, const char *name, const char *url);

/* 0 and *out filled when tok[0..len) is a token made with key; -1 for
 * anything else (compared in constant time). */
int wb_token_parse(const unsigned char *key, size_t keylen, const char *tok, size_t len,
                   struct wb_token *out);

#endif
