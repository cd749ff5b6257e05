/* Inbound mail parsing for the IMAP poller (see mailparse.h). Everything is
 * bounded: header counts and lengths, MIME nesting, Message-ID counts. */
#include "warmbench/mailparse.h"
#include "warmbench/buf.h"
#include "warmbench/tokens.h"
#include "warmbench/util.h"
#include <ctype.h>
#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_DEPTH 4
#define MAX_PARTS 64

/* ---- header block ---------------------------------------------------- */

static void mp_field_add(struct wb_mail_head *h, const char *name, size_t nlen)
{
    h->v = wb_xrealloc(h->v, (h->n + 1) * sizeof *h->v);
    h->v[h->n].name = wb_xstrndup(name, nlen);
    h->v[h->n].value = wb_xstrdup("");
    h->n++;
}

/* *len tracks the value's length: many continuation lines stay linear. */
static int mp_value_append(struct wb_mail_field *f, size_t *len, const char *p, size_t n)
{
    if (*len + n > WB_MAIL_MAX_FIELD)
        return -1;
    f->value = wb_xrealloc(f->value, *len + n + 1);
    memcpy(f->value + *len, p, n);
    *len += n;
    f->value[*len] = '\0';
    return 0;
}

static void mp_value_trim(char *s)
{
    size_t n = strlen(s), a = 0;
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    while (a < n && isspace((unsigned char)s[a]))
        a++;
    memmove(s, s + a, n - a);
    s[n - a] = '\0';
}

/* A field name is printable ASCII without ':' (RFC 5322 ftext); obsolete
 * syntax allows blanks before the colon. */
static size_t mp_field_name_len(const char *p, size_t n)
{
    const char *colon = memchr(p, ':', n);
    if (!colon || colon == p)
        return 0;
    size_t k = (size_t)(colon - p);
    while (k && (p[k - 1] == ' ' || p[k - 1] == '\t'))
        k--;
    for (size_t i = 0; i < k; i++)
        if (p[i] < 33 || p[i] > 126)
            return 0;
    return k;
}

int wb_mail_head_parse(const char *p, size_t len, struct wb_mail_head *h, size_t *body_off)
{
    h->v = NULL;
    h->n = 0;
    size_t i = 0, vlen = 0;
    while (i < len) {
        const char *nl = memchr(p + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - p) : len, next = nl ? e + 1 : len;
        if (e > i && p[e - 1] == '\r')
            e--;
        if (memchr(p + i, '\0', e - i))
            goto bad;
        if (e == i) { /* the empty line ends the header */
            i = next;
            break;
        }
        if (p[i] == ' ' || p[i] == '\t') {
            if (!h->n || mp_value_append(&h->v[h->n - 1], &vlen, p + i, e - i) < 0)
                goto bad;
        } else {
            size_t k = mp_field_name_len(p + i, e - i);
            if (!k || h->n >= WB_MAIL_MAX_FIELDS)
                goto bad;
            const char *colon = memchr(p + i, ':', e - i);
            mp_field_add(h, p + i, k);
            vlen = 0;
            if (mp_value_append(&h->v[h->n - 1], &vlen, colon + 1, (size_t)(p + e - colon - 1)) < 0)
                goto bad;
        }
        i = next;
    }
    for (size_t f = 0; f < h->n; f++)
        mp_value_trim(h->v[f].value);
    if (body_off)
        *body_off = i;
    return 0;
bad:
    wb_mail_head_free(h);
    return -1;
}

void wb_mail_head_free(struct wb_mail_head *h)
{
    for (size_t i = 0; i < h->n; i++) {
        free(h->v[i].name);
        free(h->v[i].value);
    }
    free(h->v);
    h->v = NULL;
    h->n = 0;
}

const char *wb_mail_head_get(const struct wb_mail_head *h, const char *name)
{
    for (size_t i = 0; i < h->n; i++)
        if (!strcasecmp(h->v[i].name, name))
            return h->v[i].value;
    return NULL;
}

void wb_mail_strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* ---- charsets --------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s, or 0 (overlongs, surrogates and
 * values past U+10FFFF are invalid). */
static size_t mp_utf8_seq(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t k = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
    if (!k || k > n || s[0] > 0xF4)
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] > 0x9F) ||
        (s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] > 0x8F))
        return 0;
    return k;
}

static void mp_put_cp(struct wb_buf *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | cp >> 12), u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
    } else {
        u[0] = (char)(0xF0 | cp >> 18), u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), u[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
    }
    wb_buf_append(b, u, n);
}

static bool mp_utf8_valid(const char *s, size_t n)
{
    for (size_t i = 0, k; i < n; i += k)
        if (!(k = mp_utf8_seq((const unsigned char *)s + i, n - i)) || !s[i])
            return false;
    return true;
}

/* Undeclared 8-bit text is most often Windows-1252 (a superset of Latin-1
 * in practice); its 0x80-0x9F row differs from Latin-1. */
static const unsigned short cp1252_hi[32] = {
    0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD, 0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178};

static char *mp_from_cp1252(const char *s, size_t n)
{
    struct wb_buf b;
    wb_buf_init(&b);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        mp_put_cp(&b, c == 0 ? ' ' : c >= 0x80 && c < 0xA0 ? cp1252_hi[c - 0x80] : c);
    }
    return wb_buf_steal(&b);
}

/* Copies valid UTF-8, replacing each invalid byte (and NUL) with U+FFFD. */
static char *mp_utf8_repair(const char *s, size_t n)
{
    struct wb_buf b;
    wb_buf_init(&b);
    for (size_t i = 0; i < n;) {
        size_t k = mp_utf8_seq((const unsigned char *)s + i, n - i);
        if (!k || !s[i]) {
            mp_put_cp(&b, 0xFFFD);
            i++;
        } else {
            wb_buf_append(&b, s + i, k);
            i += k;
        }
    }
    return wb_buf_steal(&b);
}

static bool mp_is_utf8_name(const char *cs)
{
    return !strcasecmp(cs, "utf-8") || !strcasecmp(cs, "utf8") || !strcasecmp(cs, "us-ascii") ||
           !strcasecmp(cs, "ascii");
}

static char *mp_via_iconv(iconv_t cd, const char *s, size_t n)
{
    struct wb_buf b;
    wb_buf_init(&b);
    char *in = (char *)s;
    size_t left = n;
    while (left) {
        char out[1024], *o = out;
        size_t room = sizeof out;
        size_t r = iconv(cd, &in, &left, &o, &room);
        wb_buf_append(&b, out, (size_t)(o - out));
        if (r == (size_t)-1 && errno != E2BIG) { /* EILSEQ/EINVAL: skip one byte */
            mp_put_cp(&b, 0xFFFD);
            in++, left--;
            iconv(cd, NULL, NULL, NULL, NULL);
        }
    }
    char *fixed = mp_utf8_repair(b.data ? b.data : "", b.len);
    wb_buf_free(&b);
    return fixed;
}

char *wb_mail_to_utf8(const char *charset, const char *s, size_t n)
{
    char cs[64] = "";
    /* Only plain names reach iconv_open (it loads modules by name). */
    if (charset && strlen(charset) < sizeof cs &&
        strspn(charset, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:*") ==
            strlen(charset)) {
        strcpy(cs, charset);
        char *star = strchr(cs, '*'); /* RFC 2231 language suffix */
        if (star)
            *star = '\0';
    }
    if (cs[0] && mp_is_utf8_name(cs))
        return mp_utf8_valid(s, n) ? wb_xstrndup(s, n) : mp_utf8_repair(s, n);
    if (cs[0]) {
        iconv_t cd = iconv_open("UTF-8", cs);
        if (cd != (iconv_t)-1) {
            char *r = mp_via_iconv(cd, s, n);
            iconv_close(cd);
            return r;
        }
    }
    return mp_utf8_valid(s, n) ? wb_xstrndup(s, n) : mp_from_cp1252(s, n);
}

/* ---- transfer encodings ---------------------------------------------- */

static int mp_hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Quoted-printable; q_words: the RFC 2047 "Q" flavour ('_' is a space). */
static void mp_qp_decode(struct wb_buf *b, const char *s, size_t n, bool q_words)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=' && i + 2 < n && mp_hexval(s[i + 1]) >= 0 && mp_hexval(s[i + 2]) >= 0) {
            wb_buf_putc(b, (char)(mp_hexval(s[i + 1]) * 16 + mp_hexval(s[i + 2])));
            i += 2;
        } else if (s[i] == '=' && !q_words) { /* soft line break: "=" CRLF */
            size_t j = i + 1;
            while (j < n && (s[j] == ' ' || s[j] == '\t'))
                j++;
            if (j < n && s[j] == '\r')
                j++;
            if (j < n && s[j] == '\n')
                i = j;
            else if (j >= n)
                i = n;
            else
                wb_buf_putc(b, '=');
        } else {
            wb_buf_putc(b, q_words && s[i] == '_' ? ' ' : s[i]);
        }
    }
}

static int mp_b64val(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26
         : c >= '0' && c <= '9' ? c - '0' + 52 : c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Base64, skipping anything outside the alphabet (line breaks, junk). */
static void mp_b64_decode(struct wb_buf *b, const char *s, size_t n)
{
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n && s[i] != '='; i++) {
        int v = mp_b64val((unsigned char)s[i]);
        if (v < 0)
            continue;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            wb_buf_putc(b, (char)((acc >> bits) & 0xFF));
        }
    }
}

/* ---- RFC 2047 ---------------------------------------------------------- */

/* Parses "=?charset?E?text?=" at s; on success appends its UTF-8 text to
 * out and returns its length, else 0. */
static size_t mp_encoded_word(const char *s, struct wb_buf *out)
{
    if (s[0] != '=' || s[1] != '?')
        return 0;
    const char *cs = s + 2, *q1 = strchr(cs, '?');
    if (!q1 || q1 == cs || q1 - cs > 60 || !q1[1] || q1[2] != '?')
        return 0;
    char enc = (char)toupper((unsigned char)q1[1]);
    if (enc != 'B' && enc != 'Q')
        return 0;
    /* Encoded words are short (75 chars by RFC 2047; some mailers write
     * longer): a bounded look for "?=" keeps hostile subjects linear. */
    const char *text = q1 + 3, *end = NULL;
    for (const char *p = text; *p && p - text < 1000 && !isspace((unsigned char)*p); p++)
        if (p[0] == '?' && p[1] == '=') {
            end = p;
            break;
        }
    if (!end)
        return 0;
    char charset[64];
    memcpy(charset, cs, (size_t)(q1 - cs));
    charset[q1 - cs] = '\0';
    struct wb_buf raw;
    wb_buf_init(&raw);
    if (enc == 'B')
        mp_b64_decode(&raw, text, (size_t)(end - text));
    else
        mp_qp_decode(&raw, text, (size_t)(end - text), true);
    char *u = wb_mail_to_utf8(charset, raw.data ? raw.data : "", raw.len);
    wb_buf_puts(out, u);
    free(u);
    wb_buf_free(&raw);
    return (size_t)(end + 2 - s);
}

char *wb_mail_decode_words(const char *s)
{
    struct wb_buf b, tmp;
    wb_buf_init(&b);
    wb_buf_init(&tmp);
    bool after_word = false;
    for (size_t i = 0; s[i];) {
        size_t k = mp_encoded_word(s + i, &b);
        if (k) {
            i += k;
            after_word = true;
            continue;
        }
        if (isspace((unsigned char)s[i])) {
            size_t j = i;
            while (s[j] && isspace((unsigned char)s[j]))
                j++;
            /* Blanks between two encoded words are folding, not text. */
            wb_buf_reset(&tmp);
            if (!(after_word && mp_encoded_word(s + j, &tmp)))
                wb_buf_putc(&b, ' ');
            i = j;
            continue;
        }
        wb_buf_putc(&b, s[i++]);
        after_word = false;
    }
    wb_buf_free(&tmp);
    char *u = wb_mail_to_utf8(NULL, b.data ? b.data : "", b.len);
    wb_buf_free(&b);
    for (char *p = u; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7F)
            *p = ' ';
    return u;
}

/* ---- Message-IDs and auto-replies ------------------------------------- */

static void mp_ref_add(char ***v, size_t *n, const char *id, size_t len)
{
    if (!len || len > 250 || *n >= WB_MAIL_MAX_REFS)
        return;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)id[i] <= ' ' || id[i] == '<' || id[i] == 0x7F)
            return;
    for (size_t i = 0; i < *n; i++)
        if (strlen((*v)[i]) == len && !memcmp((*v)[i], id, len))
            return;
    *v = wb_xrealloc(*v, (*n + 1) * sizeof **v);
    (*v)[(*n)++] = wb_xstrndup(id, len);
}

/* The <...> ids of one field, in order; bare tokens with '@' when there
 * are no angle brackets at all (some clients write In-Reply-To that way). */
static size_t mp_ids_of(const char *s, const char ***starts, size_t **lens)
{
    size_t n = 0;
    *starts = NULL;
    *lens = NULL;
    bool angle = strchr(s, '<') != NULL;
    for (const char *p = s; *p;) {
        const char *a, *e;
        if (angle) {
            if (!(a = strchr(p, '<')) || !(e = strchr(a + 1, '>')))
                break;
            a++;
            p = e + 1;
        } else {
            while (*p && isspace((unsigned char)*p))
                p++;
            a = p;
            while (*p && !isspace((unsigned char)*p))
                p++;
            e = p;
            if (a == e || !memchr(a, '@', (size_t)(e - a)))
                continue;
        }
        *starts = wb_xrealloc(*starts, (n + 1) * sizeof **starts);
        *lens = wb_xrealloc(*lens, (n + 1) * sizeof **lens);
        (*starts)[n] = a;
        (*lens)[n++] = (size_t)(e - a);
    }
    return n;
}

size_t wb_mail_refs(const struct wb_mail_head *h, char ***ids)
{
    size_t n = 0;
    *ids = NULL;
    const char *fields[] = {"In-Reply-To", "References"};
    for (int f = 0; f < 2; f++) {
        const char *v = wb_mail_head_get(h, fields[f]);
        if (!v)
            continue;
        const char **st;
        size_t *ln, k = mp_ids_of(v, &st, &ln);
        for (size_t i = 0; i < k; i++) { /* References lists oldest first */
            size_t j = f == 0 ? i : k - 1 - i;
            mp_ref_add(ids, &n, st[j], ln[j]);
        }
        free(st);
        free(ln);
    }
    return n;
}

/* The first word of a field value, lowercased, into out. */
static void mp_first_word(const char *v, char *out, size_t outsz)
{
    size_t i = 0;
    while (*v && isspace((unsigned char)*v))
        v++;
    while (*v && *v != ';' && !isspace((unsigned char)*v) && i + 1 < outsz)
        out[i++] = (char)tolower((unsigned char)*v++);
    out[i] = '\0';
}

bool wb_mail_is_auto(const struct wb_mail_head *h)
{
    char w[32];
    const char *v = wb_mail_head_get(h, "Auto-Submitted");
    if (v) {
        mp_first_word(v, w, sizeof w);
        if (strcmp(w, "no") && w[0])
            return true;
    }
    if (wb_mail_head_get(h, "X-Autoreply") || wb_mail_head_get(h, "X-Autorespond"))
        return true;
    if ((v = wb_mail_head_get(h, "Precedence"))) {
        mp_first_word(v, w, sizeof w);
        if (!strcmp(w, "auto_reply") || !strcmp(w, "bulk") || !strcmp(w, "junk"))
            return true;
    }
    return false;
}

int wb_mail_param(const char *value, const char *name, char *out, size_t outsz)
{
    const char *p = value ? strchr(value, ';') : NULL;
    size_t nlen = strlen(name);
    while (p && *p == ';') {
        p++;
        while (isspace((unsigned char)*p))
            p++;
        const char *a = p;
        while (*p && *p != '=' && *p != ';')
            p++;
        const char *ae = p;
        while (ae > a && isspace((unsigned char)ae[-1]))
            ae--;
        bool match = (size_t)(ae - a) == nlen && !strncasecmp(a, name, nlen);
        if (*p != '=')
            continue;
        p++;
        while (isspace((unsigned char)*p))
            p++;
        size_t o = 0;
        bool fits = true;
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && p[1])
                    p++;
                if (o + 1 < outsz)
                    out[o++] = *p;
                else
                    fits = false;
            }
            if (*p == '"')
                p++;
        } else {
            for (; *p && *p != ';' && !isspace((unsigned char)*p); p++) {
                if (o + 1 < outsz)
                    out[o++] = *p;
                else
                    fits = false;
            }
        }
        while (*p && *p != ';')
            p++;
        if (match) {
            out[o] = '\0';
            return fits && o ? 0 : -1;
        }
    }
    return -1;
}

/* ---- MIME walking ----------------------------------------------------- */

/* Called per leaf part; returns true to stop the walk. */
typedef bool (*part_fn)(const struct wb_mail_head *h, const char *type, const char *body,
                        size_t len, void *ud);

static void mp_media_type(const struct wb_mail_head *h, char *out, size_t outsz)
{
    const char *ct = wb_mail_head_get(h, "Content-Type");
    mp_first_word(ct ? ct : "text/plain", out, outsz);
    if (!strchr(out, '/'))
        snprintf(out, outsz, "text/plain");
}

/* Finds the next line "--boundary" at or after *pos; returns the offset of
 * that line's start, sets *after to the next line's start and *last for the
 * closing "--boundary--". */
static bool mp_next_delim(const char *s, size_t len, size_t pos, const char *bd, size_t *at,
                       size_t *after, bool *last)
{
    size_t bl = strlen(bd);
    for (size_t i = pos; i < len;) {
        if (len - i >= bl + 2 && s[i] == '-' && s[i + 1] == '-' && !memcmp(s + i + 2, bd, bl)) {
            *at = i;
            *last = len - i >= bl + 4 && s[i + bl + 2] == '-' && s[i + bl + 3] == '-';
            const char *nl = memchr(s + i, '\n', len - i);
            *after = nl ? (size_t)(nl - s) + 1 : len;
            return true;
        }
        const char *nl = memchr(s + i, '\n', len - i);
        if (!nl)
            break;
        i = (size_t)(nl - s) + 1;
    }
    return false;
}

static bool mp_walk(const struct wb_mail_head *h, const char *body, size_t len, int depth,
                 part_fn fn, void *ud)
{
    char type[128], bd[128];
    mp_media_type(h, type, sizeof type);
    if (strncmp(type, "multipart/", 10))
        return fn(h, type, body, len, ud);
    if (depth >= MAX_DEPTH || wb_mail_param(wb_mail_head_get(h, "Content-Type"), "boundary", bd,
                                            sizeof bd) < 0)
        return false;
    size_t at, start;
    bool last;
    if (!mp_next_delim(body, len, 0, bd, &at, &start, &last))
        return false;
    for (int parts = 0; !last && parts < MAX_PARTS; parts++) {
        size_t end_at, next;
        bool found = mp_next_delim(body, len, start, bd, &end_at, &next, &last);
        size_t end = found ? end_at : len;
        /* The CRLF before a delimiter belongs to the delimiter. */
        if (end > start && body[end - 1] == '\n')
            end--;
        if (end > start && body[end - 1] == '\r')
            end--;
        struct wb_mail_head ph;
        size_t off;
        if (wb_mail_head_parse(body + start, end - start, &ph, &off) == 0) {
            bool stop = mp_walk(&ph, body + start + off, end - start - off, depth + 1, fn, ud);
            wb_mail_head_free(&ph);
            if (stop)
                return true;
        }
        if (!found)
            break;
        start = next;
    }
    return false;
}

/* ---- DSN --------------------------------------------------------------- */

/* "Status: 5.1.1 (comment)" at the start of a line → "5.1.1". */
static bool mp_status_line(const char *line, size_t n, char *out)
{
    if (n < 7 || strncasecmp(line, "Status:", 7))
        return false;
    size_t i = 7;
    while (i < n && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i >= n || (line[i] != '2' && line[i] != '4' && line[i] != '5'))
        return false;
    size_t s = i++, dots = 0, digits = 0;
    for (; i < n && (isdigit((unsigned char)line[i]) || line[i] == '.'); i++) {
        if (line[i] == '.') {
            if (!digits && dots)
                return false;
            dots++, digits = 0;
        } else if (++digits > 3) {
            return false;
        }
    }
    if (dots != 2 || !digits || i - s > 15)
        return false;
    memcpy(out, line + s, i - s);
    out[i - s] = '\0';
    return true;
}

static bool mp_scan_status(const char *s, size_t len, char *out)
{
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(s + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - s) : len;
        if (mp_status_line(s + i, e - i, out))
            return true;
        i = e + 1;
    }
    return false;
}

struct dsn_find {
    char *out;
    bool found;
};

static bool mp_dsn_part(const struct wb_mail_head *h, const char *type, const char *body,
                     size_t len, void *ud)
{
    (void)h;
    struct dsn_find *f = ud;
    if (strcmp(type, "message/delivery-status") && strcmp(type, "message/global-delivery-status"))
        return false;
    f->found = mp_scan_status(body, len, f->out);
    return f->found;
}

int wb_mail_dsn_status(const struct wb_mail_head *h, const char *body, size_t len, char *out)
{
    struct dsn_find f = {out, false};
    mp_walk(h, body, len, 0, mp_dsn_part, &f);
    if (f.found || mp_scan_status(body, len, out))
        return 0;
    return -1;
}

/* ---- VERP -------------------------------------------------------------- */

static bool mp_domain_char(int c)
{
    return isalnum(c) || c == '-' || c == '.';
}

/* Scans s for b+TOKEN@domain whose TOKEN is a bounce token for key. */
static int mp_verp_scan(const char *s, size_t len, const char *domain, const unsigned char *key,
                     size_t keylen, int64_t *id)
{
    size_t dl = strlen(domain);
    for (size_t i = 0; i + 2 < len; i++) {
        if ((s[i] != 'b' && s[i] != 'B') || s[i + 1] != '+')
            continue;
        if (i && (isalnum((unsigned char)s[i - 1]) || strchr("+-_.=", s[i - 1])))
            continue;
        size_t t = i + 2, e = t;
        while (e < len && e - t <= WB_TOKEN_MAX && isalnum((unsigned char)s[e]))
            e++;
        if (e >= len || s[e] != '@' || len - e - 1 < dl || strncasecmp(s + e + 1, domain, dl))
            continue;
        if (e + 1 + dl < len && mp_domain_char((unsigned char)s[e + 1 + dl]) &&
            s[e + 1 + dl] != '.')
            continue;
        struct wb_token tok;
        if (wb_token_parse(key, keylen, s + t, e - t, &tok) == 0 && tok.kind == WB_TOKEN_BOUNCE) {
            *id = tok.message_id;
            return 0;
        }
    }
    return -1;
}

int wb_mail_bounce_message(const struct wb_mail_head *h, const char *body, size_t len,
                           const char *domain, const unsigned char *key, size_t keylen,
                           int64_t *message_id)
{
    static const char *const fields[] = {"To", "Delivered-To", "X-Original-To",
                                         "Original-Recipient", "Final-Recipient", "Return-Path"};
    if (!domain || !*domain || !keylen)
        return -1;
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++)
        for (size_t i = 0; i < h->n; i++)
            if (!strcasecmp(h->v[i].name, fields[f]) &&
                mp_verp_scan(h->v[i].value, strlen(h->v[i].value), domain, key, keylen,
                          message_id) == 0)
                return 0;
    return body ? mp_verp_scan(body, len, domain, key, keylen, message_id) : -1;
}

/* ---- first text part -------------------------------------------------- */

static char *mp_decode_part(const struct wb_mail_head *h, const char *body, size_t len)
{
    char cte[32] = "", cs[64];
    const char *v = wb_mail_head_get(h, "Content-Transfer-Encoding");
    if (v)
        mp_first_word(v, cte, sizeof cte);
    struct wb_buf raw;
    wb_buf_init(&raw);
    if (!strcmp(cte, "base64"))
        mp_b64_decode(&raw, body, len);
    else if (!strcmp(cte, "quoted-printable"))
        mp_qp_decode(&raw, body, len, false);
    else
        wb_buf_append(&raw, body, len);
    bool has_cs = wb_mail_param(wb_mail_head_get(h, "Content-Type"), "charset", cs, sizeof cs) == 0;
    char *u = wb_mail_to_utf8(has_cs ? cs : NULL, raw.data ? raw.data : "", raw.len);
    wb_buf_free(&raw);
    return u;
}

static void mp_put_entity(struct wb_buf *b, const char **pp)
{
    /* The markup's own, then the accented letters and punctuation mail
     * clients write as names ("d&eacute;sinscrire"): a reply's words must
     * reach the intent rules whole. Case matters here ("Eacute" is not
     * "eacute"). */
    static const struct { const char *name; unsigned cp; } ents[] = {
        {"amp;", '&'}, {"lt;", '<'}, {"gt;", '>'}, {"quot;", '"'}, {"apos;", '\''},
        {"nbsp;", ' '}, {"#39;", '\''},
        {"iexcl;", 0xA1}, {"copy;", 0xA9}, {"laquo;", 0xAB}, {"reg;", 0xAE}, {"deg;", 0xB0},
        {"middot;", 0xB7}, {"raquo;", 0xBB}, {"iquest;", 0xBF}, {"Agrave;", 0xC0},
        {"Aacute;", 0xC1}, {"Acirc;", 0xC2}, {"Atilde;", 0xC3}, {"Auml;", 0xC4}, {"Aring;", 0xC5},
        {"AElig;", 0xC6}, {"Ccedil;", 0xC7}, {"Egrave;", 0xC8}, {"Eacute;", 0xC9},
        {"Ecirc;", 0xCA}, {"Euml;", 0xCB}, {"Igrave;", 0xCC}, {"Iacute;", 0xCD}, {"Icirc;", 0xCE},
        {"Iuml;", 0xCF}, {"ETH;", 0xD0}, {"Ntilde;", 0xD1}, {"Ograve;", 0xD2}, {"Oacute;", 0xD3},
        {"Ocirc;", 0xD4}, {"Otilde;", 0xD5}, {"Ouml;", 0xD6}, {"times;", 0xD7}, {"Oslash;", 0xD8},
        {"Ugrave;", 0xD9}, {"Uacute;", 0xDA}, {"Ucirc;", 0xDB}, {"Uuml;", 0xDC}, {"Yacute;", 0xDD},
        {"THORN;", 0xDE}, {"szlig;", 0xDF}, {"agrave;", 0xE0}, {"aacute;", 0xE1}, {"acirc;", 0xE2},
        {"atilde;", 0xE3}, {"auml;", 0xE4}, {"aring;", 0xE5}, {"aelig;", 0xE6}, {"ccedil;", 0xE7},
        {"egrave;", 0xE8}, {"eacute;", 0xE9}, {"ecirc;", 0xEA}, {"euml;", 0xEB}, {"igrave;", 0xEC},
        {"iacute;", 0xED}, {"icirc;", 0xEE}, {"iuml;", 0xEF}, {"eth;", 0xF0}, {"ntilde;", 0xF1},
        {"ograve;", 0xF2}, {"oacute;", 0xF3}, {"ocirc;", 0xF4}, {"otilde;", 0xF5}, {"ouml;", 0xF6},
        {"divide;", 0xF7}, {"oslash;", 0xF8}, {"ugrave;", 0xF9}, {"uacute;", 0xFA},
        {"ucirc;", 0xFB}, {"uuml;", 0xFC}, {"yacute;", 0xFD}, {"thorn;", 0xFE}, {"yuml;", 0xFF},
        {"OElig;", 0x152}, {"oelig;", 0x153}, {"ndash;", 0x2013}, {"mdash;", 0x2014},
        {"lsquo;", 0x2018}, {"rsquo;", 0x2019}, {"sbquo;", 0x201A}, {"ldquo;", 0x201C},
        {"rdquo;", 0x201D}, {"bdquo;", 0x201E}, {"bull;", 0x2022}, {"hellip;", 0x2026},
        {"euro;", 0x20AC}};
    const char *p = *pp + 1;
    for (size_t i = 0; i < sizeof ents / sizeof ents[0]; i++)
        if (i < 7 ? !strncasecmp(p, ents[i].name, strlen(ents[i].name))
                  : !strncmp(p, ents[i].name, strlen(ents[i].name))) {
            mp_put_cp(b, ents[i].cp);
            *pp = p + strlen(ents[i].name);
            return;
        }
    if (*p == '#') {
        char *e;
        bool hex = p[1] == 'x' || p[1] == 'X';
        unsigned long cp = strtoul(p + (hex ? 2 : 1), &e, hex ? 16 : 10);
        if (*e == ';' && cp > 0 && cp < 0x110000 && !(cp >= 0xD800 && cp < 0xE000)) {
            mp_put_cp(b, cp < 0x20 ? ' ' : (unsigned)cp);
            *pp = e + 1;
            return;
        }
    }
    wb_buf_putc(b, '&');
    *pp += 1;
}

/* Markup out, line breaks for block elements; quoted (blockquote) text,
 * styles and scripts dropped, as a reader would not see them as the reply. */
static char *mp_html_text(const char *s)
{
    struct wb_buf b;
    wb_buf_init(&b);
    int hidden = 0;
    for (const char *p = s; *p;) {
        if (*p == '<') {
            const char *e = strchr(p, '>');
            if (!e)
                break;
            bool close = p[1] == '/';
            const char *n = p + 1 + close;
            bool quote = !strncasecmp(n, "blockquote", 10) || !strncasecmp(n, "style", 5) ||
                         !strncasecmp(n, "script", 6);
            if (quote && e[-1] != '/')
                hidden += close ? (hidden > 0 ? -1 : 0) : 1;
            if (!strncasecmp(n, "br", 2) || !strncasecmp(n, "p", 1) || !strncasecmp(n, "div", 3) ||
                !strncasecmp(n, "li", 2) || !strncasecmp(n, "tr", 2))
                wb_buf_putc(&b, '\n');
            p = e + 1;
        } else if (hidden) {
            p++;
        } else if (*p == '&') {
            mp_put_entity(&b, &p);
        } else {
            wb_buf_putc(&b, *p == '\r' || *p == '\n' ? ' ' : *p);
            p++;
        }
    }
    return wb_buf_steal(&b);
}

struct text_find {
    char *plain, *html;
};

static bool mp_text_part(const struct wb_mail_head *h, const char *type, const char *body,
                      size_t len, void *ud)
{
    struct text_find *f = ud;
    char disp[32] = "";
    const char *d = wb_mail_head_get(h, "Content-Disposition");
    if (d)
        mp_first_word(d, disp, sizeof disp);
    if (!strcmp(disp, "attachment"))
        return false;
    if (!strcmp(type, "text/plain")) {
        f->plain = mp_decode_part(h, body, len);
        return true;
    }
    if (!strcmp(type, "text/html") && !f->html) {
        char *u = mp_decode_part(h, body, len);
        f->html = mp_html_text(u);
        free(u);
    }
    return false;
}

char *wb_mail_first_text(const struct wb_mail_head *h, const char *body, size_t len)
{
    struct text_find f = {NULL, NULL};
    mp_walk(h, body, len, 0, mp_text_part, &f);
    if (f.plain) {
        free(f.html);
        return f.plain;
    }
    return f.html;
}
