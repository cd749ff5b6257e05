#include <check.h>
#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include "warmbench/tokens.h"

static const unsigned char key[] = "test-secret-0123456789abcdef-0123456789";
#define KL (sizeof key - 1)

static int parse(const char *t, size_t n, struct wb_token *o)
{
    return wb_token_parse(key, KL, t, n, o);
}

START_TEST(test_round_trip_every_kind)
{
    const int64_t ids[] = {0, 1, 42, 1234567890123LL, INT64_MAX, -5};
    for (int kind = WB_TOKEN_OPEN; kind <= WB_TOKEN_BOUNCE; kind++)
        for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
            char t[WB_TOKEN_MAX];
            int link = kind == WB_TOKEN_CLICK ? (int)(i * 1000) : 7;
            size_t n = wb_token_make(key, KL, kind, ids[i], link, t, sizeof t);
            ck_assert_uint_gt(n, 0);
            ck_assert_uint_eq(n, strlen(t));
            ck_assert_uint_le(n, 64);
            struct wb_token o;
            ck_assert_int_eq(parse(t, n, &o), 0);
            ck_assert_int_eq(o.kind, kind);
            ck_assert(o.message_id == ids[i]);
            ck_assert_int_eq(o.link, kind == WB_TOKEN_CLICK ? link : -1);
        }
}
END_TEST

START_TEST(test_url_tokens_are_base64url_bounce_lowercase_base32)
{
    char t[WB_TOKEN_MAX];
    size_t n = wb_token_make(key, KL, WB_TOKEN_CLICK, 99, 3, t, sizeof t);
    ck_assert_uint_eq(n, 36);
    ck_assert_uint_eq(strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), n);
    n = wb_token_make(key, KL, WB_TOKEN_BOUNCE, 99, 0, t, sizeof t);
    ck_assert_uint_eq(n, 40);
    ck_assert_uint_eq(strspn(t, "abcdefghijklmnopqrstuvwxyz234567"), n);
    /* A mail system that upper-cases the local part keeps it valid. */
    for (size_t i = 0; i < n; i++)
        t[i] = (char)toupper((unsigned char)t[i]);
    struct wb_token o;
    ck_assert_int_eq(parse(t, n, &o), 0);
    ck_assert_int_eq(o.kind, WB_TOKEN_BOUNCE);
    ck_assert(o.message_id == 99);
}
END_TEST

static void every_alteration_rejected(enum wb_token_kind kind)
{
    char t[WB_TOKEN_MAX];
    size_t n = wb_token_make(key, KL, kind, 1234, 2, t, sizeof t);
    const char *alpha = kind == WB_TOKEN_BOUNCE
        ? "abcdefghijklmnopqrstuvwxyz234567=+/.@ \x01\xff"
        : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/.@ \x01\xff";
    for (size_t i = 0; i < n; i++)
        for (const char *c = alpha; *c; c++) {
            char m[WB_TOKEN_MAX];
            memcpy(m, t, n + 1);
            if (tolower((unsigned char)*c) == tolower((unsigned char)t[i]))
                continue;
            m[i] = *c;
            struct wb_token o;
            ck_assert_msg(parse(m, n, &o) == -1, "altered %zu to %c accepted", i, *c);
        }
}

START_TEST(test_each_single_byte_alteration_rejected)
{
    for (int kind = WB_TOKEN_OPEN; kind <= WB_TOKEN_BOUNCE; kind++)
        every_alteration_rejected(kind);
}
END_TEST

/* Known answers, made with OpenSSL's one-shot HMAC() before the padded key
 * states were kept (tokens.c): keys shorter than, equal to and longer than
 * SHA-256's block, one after another, so each call changes the kept key. */
START_TEST(test_known_answers_across_key_changes)
{
    static const struct { size_t keylen; int kind; const char *tok; } v[] = {
        {1, 1, "AQAAAAAAEtaHc6tKadmMx-5ejSATa1aDRg"},
        {1, 2, "AgAAAAAAEtaHAAMw4GcJ3flAe5bPzrX-ZhlX"},
        {1, 3, "AwAAAAAAEtaHi2xEG3On3B17eNGnmdXFKg"},
        {1, 4, "aqaaaaaaaajnnb2cvlueigcrgxex2i4rj3q62xg2"},
        {28, 1, "AQAAAAAAEtaIaEQk4-1taafSoWANbTI9iQ"},
        {28, 2, "AgAAAAAAEtaIAAPBqRkLNSrOAYwpemazlVK2"},
        {28, 3, "AwAAAAAAEtaIc_Ape3LIzsLdUend79f8cg"},
        {28, 4, "aqaaaaaaaajnncaf4m6wc7ciilcipcfykvyby4f2"},
        {64, 1, "AQAAAAAAEtaJHIVra36FzQNgnS30adr0Xg"},
        {64, 2, "AgAAAAAAEtaJAAPupPffsqZZABFeJP9sAGpj"},
        {64, 3, "AwAAAAAAEtaJKN-T8YMt985-P6KtjFaz-w"},
        {64, 4, "aqaaaaaaaajnncmc5i3qrwyliujfisltj6bikcpl"},
        {65, 1, "AQAAAAAAEtaKrg0YV_SXOnGGErT8XFDJAA"},
        {65, 2, "AgAAAAAAEtaKAAMBL-agLmCxstdTm6564gk3"},
        {65, 3, "AwAAAAAAEtaKiO8NpU6PigOi2ZHNgO8OFg"},
        {65, 4, "aqaaaaaaaajnncuorgmbppsqwwb2q7afxwvdd5uo"},
        {100, 1, "AQAAAAAAEtaL0vDXSML_fka7pWvF28X0bA"},
        {100, 2, "AgAAAAAAEtaLAAM5z2jxmrCbfY2SHbj49TEJ"},
        {100, 3, "AwAAAAAAEtaLBWVQQkLJ2ri_FLs-VxQyQw"},
        {100, 4, "aqaaaaaaaajnnc76fzqlajs7aee7plgfrl46voub"},
    };
    unsigned char k[100];
    for (int i = 0; i < 100; i++)
        k[i] = (unsigned char)(i * 37 + 11);
    for (int round = 0; round < 2; round++)
        for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
            char t[WB_TOKEN_MAX];
            int64_t id = 1234567 + (int64_t)(i / 4);
            ck_assert_uint_gt(wb_token_make(k, v[i].keylen, v[i].kind, id, 3, t, sizeof t), 0);
            ck_assert_str_eq(t, v[i].tok);
            struct wb_token o;
            ck_assert_int_eq(wb_token_parse(k, v[i].keylen, t, strlen(t), &o), 0);
            ck_assert(o.message_id == id);
        }
}
END_TEST

START_TEST(test_wrong_key_truncation_garbage_rejected)
{
    char t[WB_TOKEN_MAX];
    struct wb_token o;
    size_t n = wb_token_make(key, KL, WB_TOKEN_UNSUB, 77, 0, t, sizeof t);
    const unsigned char other[] = "test-secret-0123456789abcdeF";
    ck_assert_int_eq(wb_token_parse(other, sizeof other - 1, t, n, &o), -1);
    for (size_t k = 0; k < n; k++)
        ck_assert_int_eq(parse(t, k, &o), -1);
    char longer[WB_TOKEN_MAX + 4];
    memcpy(longer, t, n);
    memcpy(longer + n, "AAAA", 4);
    for (size_t k = 1; k <= 4; k++)
        ck_assert_int_eq(parse(longer, n + k, &o), -1);
    const char *junk[] = {"", "x", "../../etc/passwd", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "%00%00%00", "zzzz.gif"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
        ck_assert_int_eq(parse(junk[i], strlen(junk[i]), &o), -1);
    /* A URL kind in the bounce encoding (and the reverse) is not a token. */
    char b[WB_TOKEN_MAX];
    size_t bn = wb_token_make(key, KL, WB_TOKEN_BOUNCE, 77, 0, b, sizeof b);
    ck_assert_int_eq(parse(b, bn, &o), 0);
    ck_assert_int_eq(parse(b, bn - 1, &o), -1);
}
END_TEST

START_TEST(test_make_refuses_bad_input)
{
    char t[WB_TOKEN_MAX];
    ck_assert_uint_eq(wb_token_make(key, KL, WB_TOKEN_CLICK, 1, -1, t, sizeof t), 0);
    ck_assert_uint_eq(wb_token_make(key, KL, WB_TOKEN_CLICK, 1, 65536, t, sizeof t), 0);
    ck_assert_uint_eq(wb_token_make(key, KL, (enum wb_token_kind)9, 1, 0, t, sizeof t), 0);
    ck_assert_uint_eq(wb_token_make(key, 0, WB_TOKEN_OPEN, 1, 0, t, sizeof t), 0);
    ck_assert_uint_eq(wb_token_make(key, KL, WB_TOKEN_OPEN, 1, 0, t, 34), 0);
    ck_assert_uint_eq(wb_token_make(key, KL, WB_TOKEN_OPEN, 1, 0, t, 35), 34);
}
END_TEST

/* Version-2 clicks carry the link's stable id (tokens.h). */
START_TEST(test_link_tokens_round_trip_and_are_44_chars)
{
    const uint64_t ids[] = {1, 2, 0x8000000000000000u, UINT64_MAX, 0xe4863ba819b4bbbcu};
    const int64_t mids[] = {0, 42, INT64_MAX, -5};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        for (size_t j = 0; j < sizeof mids / sizeof mids[0]; j++) {
            char t[WB_TOKEN_MAX];
            size_t n = wb_token_make_link(key, KL, mids[j], ids[i], t, sizeof t);
            ck_assert_uint_eq(n, 44);
            ck_assert_uint_eq(strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                        "0123456789-_"), n);
            struct wb_token o;
            ck_assert_int_eq(parse(t, n, &o), 0);
            ck_assert_int_eq(o.kind, WB_TOKEN_CLICK);
            ck_assert(o.message_id == mids[j]);
            ck_assert_int_eq(o.link, -1);
            ck_assert(o.link_id == ids[i]);
            for (size_t k = 0; k < n; k++) /* truncated: no token */
                ck_assert_int_eq(parse(t, k, &o), -1);
        }
    /* Other kinds and version-1 clicks have no link id. */
    char t[WB_TOKEN_MAX];
    struct wb_token o;
    size_t n = wb_token_make(key, KL, WB_TOKEN_CLICK, 9, 3, t, sizeof t);
    ck_assert_int_eq(parse(t, n, &o), 0);
    ck_assert(o.link_id == 0 && o.link == 3);
}
END_TEST

START_TEST(test_link_token_alterations_rejected)
{
    char t[WB_TOKEN_MAX];
    size_t n = wb_token_make_link(key, KL, 1234, 0x0123456789abcdefu, t, sizeof t);
    const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/.@ ";
    for (size_t i = 0; i < n; i++)
        for (const char *c = alpha; *c; c++) {
            if (*c == t[i])
                continue;
            char m[WB_TOKEN_MAX];
            memcpy(m, t, n + 1);
            m[i] = *c;
            struct wb_token o;
            ck_assert_msg(parse(m, n, &o) == -1, "altered %zu to %c accepted", i, *c);
        }
}
END_TEST

/* The id is in mail already sent and in the links table: it must never
 * change. Expected values from Python's hashlib (first 8 bytes of
 * SHA-256 of the NUL-joined fields). */
START_TEST(test_link_id_is_fixed)
{
    ck_assert(wb_token_link_id("nurture", "apply", "https://example.com/jobs/backend?x=1&y=2")
              == 0xe4863ba819b4bbbcu);
    ck_assert(wb_token_link_id("", "", "") == 0x96a296d224f285c6u);
    /* Each field counts apart: moving a byte across the separator differs. */
    ck_assert(wb_token_link_id("ab", "c", "u") != wb_token_link_id("a", "bc", "u"));
    ck_assert(wb_token_link_id("s", "n", "https://a/1") != wb_token_link_id("s", "n", "https://a/2"));
}
END_TEST

START_TEST(test_make_link_refuses_bad_input)
{
    char t[WB_TOKEN_MAX];
    ck_assert_uint_eq(wb_token_make_link(key, KL, 1, 0, t, sizeof t), 0);
    ck_assert_uint_eq(wb_token_make_link(key, 0, 1, 7, t, sizeof t), 0);
    ck_assert_uint_eq(wb_token_make_link(key, KL, 1, 7, t, 44), 0);
    ck_assert_uint_eq(wb_token_make_link(key, KL, 1, 7, t, 45), 44);
    /* The version-2 kind byte is not a kind of its own. */
    ck_assert_uint_eq(wb_token_make(key, KL, (enum wb_token_kind)5, 1, 0, t, sizeof t), 0);
}
END_TEST

Suite *wb_test_suite(void)
{
    Suite *s = suite_create("tokens");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_round_trip_every_kind);
    tcase_add_test(tc, test_url_tokens_are_base64url_bounce_lowercase_base32);
    tcase_add_test(tc, test_each_single_byte_alteration_rejected);
    tcase_add_test(tc, test_wrong_key_truncation_garbage_rejected);
    tcase_add_test(tc, test_make_refuses_bad_input);
    tcase_add_test(tc, test_known_answers_across_key_changes);
    tcase_add_test(tc, test_link_tokens_round_trip_and_are_44_chars);
    tcase_add_test(tc, test_link_token_alterations_rejected);
    tcase_add_test(tc, test_link_id_is_fixed);
    tcase_add_test(tc, test_make_link_refuses_bad_input);
    suite_add_tcase(s, tc);
    return s;
}
