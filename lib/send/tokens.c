/* HMAC-SHA256 tokens for tracking URLs and VERP addresses (see tokens.h). */
#include "warmbench/tokens.h"
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAC_LEN 16
#define PAYLOAD_MAX 17
/* The payload's kind byte of a version-2 click (tokens.h). */
#define KIND_CLICK_LINK 5
#define RAW_MAX (PAYLOAD_MAX + MAC_LEN)

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";

static size_t tok_payload_len(int kind)
{
    switch (kind) {
    case WB_TOKEN_OPEN: case WB_TOKEN_UNSUB: case WB_TOKEN_BOUNCE: return 9;
    case WB_TOKEN_CLICK: return 11;
    case KIND_CLICK_LINK: return 17;
    default: return 0;
    }
}

/* HMAC-SHA256 (RFC 2104) with the key's padded blocks hashed once: the
 * SHA-256 states after key^ipad and key^opad are kept and copied for each
 * MAC. HMAC() fetched the algorithm, made a context and hashed the key for
 * every token, which was most of the 4% of the daemon's CPU that its
 * tokens cost. One key at a time (a daemon has one secret); a call with
 * another key sets the states up again. The loop is single-threaded. */
#define BLOCK 64
static struct {
    unsigned char key[BLOCK];
    size_t keylen; /* 0: nothing kept */
    EVP_MD_CTX *inner, *outer, *work;
} kept;

static int tok_keep_key(const unsigned char *key, size_t keylen)
{
    if (kept.keylen == keylen && CRYPTO_memcmp(kept.key, key, keylen) == 0)
        return 0;
    EVP_MD_CTX **ctx[] = {&kept.inner, &kept.outer, &kept.work};
    for (size_t i = 0; i < 3; i++)
        if (!*ctx[i] && !(*ctx[i] = EVP_MD_CTX_new()))
            return -1;
    unsigned char pad[2][BLOCK];
    memset(pad, 0, sizeof pad);
    memcpy(pad[0], key, keylen);
    memcpy(pad[1], key, keylen);
    for (size_t i = 0; i < BLOCK; i++) {
        pad[0][i] ^= 0x36;
        pad[1][i] ^= 0x5c;
    }
    int ok = EVP_DigestInit_ex(kept.inner, EVP_sha256(), NULL)
             && EVP_DigestUpdate(kept.inner, pad[0], BLOCK)
             && EVP_DigestInit_ex(kept.outer, EVP_sha256(), NULL)
             && EVP_DigestUpdate(kept.outer, pad[1], BLOCK);
    OPENSSL_cleanse(pad, sizeof pad);
    kept.keylen = 0;
    if (!ok)
        return -1;
    memcpy(kept.key, key, keylen);
    kept.keylen = keylen;
    return 0;
}

static int tok_mac_kept(const unsigned char *msg, size_t n, unsigned char full[EVP_MAX_MD_SIZE])
{
    unsigned int fl = 0;
    return EVP_MD_CTX_copy_ex(kept.work, kept.inner) && EVP_DigestUpdate(kept.work, msg, n)
           && EVP_DigestFinal_ex(kept.work, full, &fl)
           && EVP_MD_CTX_copy_ex(kept.work, kept.outer) && EVP_DigestUpdate(kept.work, full, fl)
           && EVP_DigestFinal_ex(kept.work, full, &fl);
}

static void tok_mac(const unsigned char *key, size_t keylen, const unsigned char *p, size_t n,
                unsigned char out[MAC_LEN])
{
    unsigned char msg[3 + PAYLOAD_MAX], full[EVP_MAX_MD_SIZE];
    unsigned int fl = 0;
    memcpy(msg, "wb1", 3);
    memcpy(msg + 3, p, n);
    /* A key longer than a block is hashed first (RFC 2104): HMAC() does it. */
    if (keylen == 0 || keylen > BLOCK || tok_keep_key(key, keylen) != 0
        || !tok_mac_kept(msg, 3 + n, full))
        HMAC(EVP_sha256(), key, (int)keylen, msg, 3 + n, full, &fl);
    memcpy(out, full, MAC_LEN);
    OPENSSL_cleanse(full, sizeof full);
}

/* Bit-packing encoder shared by base64url (6 bits) and base32 (5 bits). */
static size_t tok_encode(const unsigned char *in, size_t n, const char *alpha, int bits, char *out)
{
    size_t o = 0;
    unsigned acc = 0;
    int have = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        have += 8;
        while (have >= bits) {
            have -= bits;
            out[o++] = alpha[(acc >> have) & ((1u << bits) - 1)];
        }
    }
    if (have)
        out[o++] = alpha[(acc << (bits - have)) & ((1u << bits) - 1)];
    out[o] = '\0';
    return o;
}

static int tok_sym(char c, int bits)
{
    if (bits == 6) {
        const char *p = c ? strchr(b64url, c) : NULL;
        return p ? (int)(p - b64url) : -1;
    }
    if (c >= 'A' && c <= 'Z')
        c = (char)(c - 'A' + 'a'); /* case-insensitive on purpose: see tokens.h */
    const char *p = c ? strchr(b32, c) : NULL;
    return p ? (int)(p - b32) : -1;
}

/* Decodes exactly; leftover bits must be zero so the encoding is canonical. */
static long tok_decode(const char *s, size_t len, int bits, unsigned char *out, size_t outsz)
{
    size_t o = 0;
    unsigned acc = 0;
    int have = 0;
    for (size_t i = 0; i < len; i++) {
        int v = tok_sym(s[i], bits);
        if (v < 0)
            return -1;
        acc = (acc << bits) | (unsigned)v;
        have += bits;
        if (have >= 8) {
            have -= 8;
            if (o == outsz)
                return -1;
            out[o++] = (unsigned char)(acc >> have);
        }
    }
    if (have >= bits || (acc & ((1u << have) - 1)))
        return -1;
    return (long)o;
}

static size_t tok_encoded_len(size_t n, int bits)
{
    return (n * 8 + (size_t)bits - 1) / (size_t)bits;
}

static void tok_put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (56 - 8 * i));
}

static uint64_t tok_get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* MACs raw[0..n) into raw[n..n+MAC_LEN) and encodes the whole. */
static size_t tok_seal(const unsigned char *key, size_t keylen, unsigned char *raw, size_t n,
                       char *out, size_t outsz)
{
    int bits = raw[0] == WB_TOKEN_BOUNCE ? 5 : 6;
    if (!keylen || tok_encoded_len(n + MAC_LEN, bits) + 1 > outsz)
        return 0;
    tok_mac(key, keylen, raw, n, raw + n);
    return tok_encode(raw, n + MAC_LEN, bits == 5 ? b32 : b64url, bits, out);
}

size_t wb_token_make(const unsigned char *key, size_t keylen, enum wb_token_kind kind,
                     int64_t message_id, int link, char *out, size_t outsz)
{
    size_t n = kind == KIND_CLICK_LINK ? 0 : tok_payload_len(kind);
    if (!n || (kind == WB_TOKEN_CLICK && (link < 0 || link > WB_TOKEN_LINK_MAX)))
        return 0;
    unsigned char raw[RAW_MAX];
    raw[0] = (unsigned char)kind;
    tok_put64(raw + 1, (uint64_t)message_id);
    if (kind == WB_TOKEN_CLICK) {
        raw[9] = (unsigned char)(link >> 8);
        raw[10] = (unsigned char)link;
    }
    return tok_seal(key, keylen, raw, n, out, outsz);
}

size_t wb_token_make_link(const unsigned char *key, size_t keylen, int64_t message_id,
                          uint64_t link_id, char *out, size_t outsz)
{
    if (!link_id)
        return 0;
    unsigned char raw[RAW_MAX];
    raw[0] = KIND_CLICK_LINK;
    tok_put64(raw + 1, (uint64_t)message_id);
    tok_put64(raw + 9, link_id);
    return tok_seal(key, keylen, raw, 17, out, outsz);
}

/* Link ids already computed: each rendered message asks again for the same
 * few links, and a SHA-256 through EVP (a fetch under a lock, a context,
 * the digest) cost more than the HMAC of the click token. The key is the
 * three strings with their NULs, compared in full, so a hit is always the
 * id hashing would give. Fixed size, entries replaced in turn; a mutex,
 * since links.c may ask from another thread than the renderer. */
#define LINK_MEMO 32
static struct {
    pthread_mutex_t mu;
    struct { char *key; size_t len; uint64_t id; } e[LINK_MEMO];
    size_t next;
} link_memo = {.mu = PTHREAD_MUTEX_INITIALIZER};

static uint64_t tok_link_id_hash(const char *sequence, const char *name, const char *url);

static char *tok_link_key(const char *const parts[3], size_t *len)
{
    size_t l[3], n = 0;
    for (int i = 0; i < 3; i++)
        n += (l[i] = strlen(parts[i]) + 1);
    char *k = malloc(n), *o = k;
    if (!k)
        return NULL;
    for (int i = 0; i < 3; i++) {
        memcpy(o, parts[i], l[i]);
        o += l[i];
    }
    *len = n;
    return k;
}

/* 1 when key (len bytes) is the three parts, each with its NUL. */
static int tok_link_key_is(const char *key, size_t len, const char *const parts[3])
{
    const char *k = key, *end = key + len;
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(parts[i]) + 1;
        if ((size_t)(end - k) < n || memcmp(k, parts[i], n))
            return 0;
        k += n;
    }
    return k == end;
}

uint64_t wb_token_link_id(const char *sequence, const char *name, const char *url)
{
    const char *parts[] = {sequence, name, url};
    pthread_mutex_lock(&link_memo.mu);
    for (size_t i = 0; i < LINK_MEMO; i++) {
        if (link_memo.e[i].key && tok_link_key_is(link_memo.e[i].key, link_memo.e[i].len, parts)) {
            uint64_t id = link_memo.e[i].id;
            pthread_mutex_unlock(&link_memo.mu);
            return id;
        }
    }
    pthread_mutex_unlock(&link_memo.mu);
    uint64_t id = tok_link_id_hash(sequence, name, url);
    size_t len = 0;
    char *key = tok_link_key(parts, &len);
    if (!key)
        return id;
    pthread_mutex_lock(&link_memo.mu);
    size_t at = link_memo.next++ % LINK_MEMO;
    free(link_memo.e[at].key);
    link_memo.e[at].key = key;
    link_memo.e[at].len = len;
    link_memo.e[at].id = id;
    pthread_mutex_unlock(&link_memo.mu);
    return id;
}

static uint64_t tok_link_id_hash(const char *sequence, const char *name, const char *url)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    const char *parts[] = {sequence, name, url};
    int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    for (int i = 0; i < 3 && ok; i++)
        ok = EVP_DigestUpdate(c, parts[i], strlen(parts[i]) + (i < 2)); /* with the NUL */
    ok = ok && EVP_DigestFinal_ex(c, md, &ml);
    EVP_MD_CTX_free(c);
    if (!ok)
        abort(); /* out of memory in libcrypto: no id can be made up */
    uint64_t id = tok_get64(md);
    return id ? id : 1;
}

int wb_token_parse(const unsigned char *key, size_t keylen, const char *tok, size_t len,
                   struct wb_token *out)
{
    /* The length alone says which encoding (and so which kinds) it can be. */
    int bits = len == tok_encoded_len(9 + MAC_LEN, 5) ? 5 : 6;
    unsigned char raw[RAW_MAX], want[MAC_LEN];
    long n = tok_decode(tok, len, bits, raw, sizeof raw);
    if (n < 1 || !keylen)
        return -1;
    size_t pl = tok_payload_len(raw[0]);
    if (!pl || (size_t)n != pl + MAC_LEN || (raw[0] == WB_TOKEN_BOUNCE) != (bits == 5))
        return -1;
    tok_mac(key, keylen, raw, pl, want);
    if (CRYPTO_memcmp(want, raw + pl, MAC_LEN) != 0)
        return -1;
    out->kind = raw[0] == KIND_CLICK_LINK ? WB_TOKEN_CLICK : (enum wb_token_kind)raw[0];
    out->message_id = (int64_t)tok_get64(raw + 1);
    out->link = raw[0] == WB_TOKEN_CLICK ? (raw[9] << 8 | raw[10]) : -1;
    out->link_id = raw[0] == KIND_CLICK_LINK ? tok_get64(raw + 9) : 0;
    return 0;
}
