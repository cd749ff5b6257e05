/* One pass over valid JSON text recording where each key and value sits,
 * so diagnostics about a parsed json_t can name file:line:column. */
#include "warmbench/jsonpos.h"
#include "warmbench/buf.h"
#include "warmbench/util.h"
#include <stdlib.h>
#include <string.h>

struct scan {
    const char *s;
    size_t len, i;
    int line, col;
    struct wb_jsonpos *m;
};

static int jpos_peek(const struct scan *sc)
{
    return sc->i < sc->len ? (unsigned char)sc->s[sc->i] : -1;
}

static int jpos_next(struct scan *sc)
{
    if (sc->i >= sc->len)
        return -1;
    int c = (unsigned char)sc->s[sc->i++];
    if (c == '\n') {
        sc->line++;
        sc->col = 1;
    } else {
        sc->col++;
    }
    return c;
}

static void jpos_skip_ws(struct scan *sc)
{
    while (jpos_peek(sc) == ' ' || jpos_peek(sc) == '\t' || jpos_peek(sc) == '\n' || jpos_peek(sc) == '\r')
        jpos_next(sc);
}

static void jpos_add(struct scan *sc, const char *path, int kl, int kc, int vl, int vc)
{
    struct wb_jsonpos *m = sc->m;
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 32;
        m->v = wb_xrealloc(m->v, m->cap * sizeof *m->v);
    }
    m->v[m->n++] = (struct wb_jsonpos_entry){wb_xstrdup(path), kl, kc, vl, vc};
}

static void jpos_put_utf8(struct wb_buf *b, unsigned long cp)
{
    if (cp < 0x80) {
        wb_buf_putc(b, (char)cp);
    } else if (cp < 0x800) {
        wb_buf_putc(b, (char)(0xC0 | (cp >> 6)));
        wb_buf_putc(b, (char)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        wb_buf_putc(b, (char)(0xE0 | (cp >> 12)));
        wb_buf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
        wb_buf_putc(b, (char)(0x80 | (cp & 0x3F)));
    } else {
        wb_buf_putc(b, (char)(0xF0 | (cp >> 18)));
        wb_buf_putc(b, (char)(0x80 | ((cp >> 12) & 0x3F)));
        wb_buf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
        wb_buf_putc(b, (char)(0x80 | (cp & 0x3F)));
    }
}

static unsigned long jpos_hex4(struct scan *sc)
{
    unsigned long v = 0;
    for (int k = 0; k < 4; k++) {
        int c = jpos_next(sc);
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned long)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned long)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned long)(c - 'A' + 10);
    }
    return v;
}

static void jpos_unescape(struct scan *sc, struct wb_buf *out)
{
    int c = jpos_next(sc);
    const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
    const char *hit = c > 0 ? strchr(from, c) : NULL;
    if (hit) {
        wb_buf_putc(out, to[hit - from]);
        return;
    }
    if (c != 'u')
        return;
    unsigned long cp = jpos_hex4(sc);
    /* A high surrogate is followed by "\uDCxx"; combine the pair. */
    if (cp >= 0xD800 && cp < 0xDC00 && jpos_peek(sc) == '\\') {
        jpos_next(sc);
        jpos_next(sc);
        unsigned long lo = jpos_hex4(sc);
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    jpos_put_utf8(out, cp);
}

/* Reads a string starting at its opening quote; decodes it into out when
 * out is not NULL (keys), else just skips it (values). */
static void jpos_read_string(struct scan *sc, struct wb_buf *out)
{
    jpos_next(sc);
    for (;;) {
        int c = jpos_next(sc);
        if (c < 0 || c == '"')
            return;
        if (c == '\\') {
            if (out)
                jpos_unescape(sc, out);
            else
                jpos_next(sc);
        } else if (out) {
            wb_buf_putc(out, (char)c);
        }
    }
}

static void jpos_scan_value(struct scan *sc, const char *path, int kl, int kc);

static void jpos_scan_object(struct scan *sc, const char *path)
{
    jpos_next(sc);
    jpos_skip_ws(sc);
    while (jpos_peek(sc) == '"') {
        int kl = sc->line, kc = sc->col;
        struct wb_buf key;
        wb_buf_init(&key);
        jpos_read_string(sc, &key);
        char *child = wb_jsonpos_child(path, key.data ? key.data : "");
        wb_buf_free(&key);
        jpos_skip_ws(sc);
        jpos_next(sc); /* ':' */
        jpos_skip_ws(sc);
        jpos_scan_value(sc, child, kl, kc);
        free(child);
        jpos_skip_ws(sc);
        if (jpos_peek(sc) == ',') {
            jpos_next(sc);
            jpos_skip_ws(sc);
        }
    }
    jpos_next(sc); /* '}' */
}

static void jpos_scan_array(struct scan *sc, const char *path)
{
    jpos_next(sc);
    jpos_skip_ws(sc);
    for (size_t idx = 0; jpos_peek(sc) >= 0 && jpos_peek(sc) != ']'; idx++) {
        char *child = wb_jsonpos_index(path, idx);
        jpos_scan_value(sc, child, sc->line, sc->col);
        free(child);
        jpos_skip_ws(sc);
        if (jpos_peek(sc) == ',') {
            jpos_next(sc);
            jpos_skip_ws(sc);
        }
    }
    jpos_next(sc); /* ']' */
}

static void jpos_scan_value(struct scan *sc, const char *path, int kl, int kc)
{
    jpos_add(sc, path, kl, kc, sc->line, sc->col);
    int c = jpos_peek(sc);
    if (c == '{') {
        jpos_scan_object(sc, path);
    } else if (c == '[') {
        jpos_scan_array(sc, path);
    } else if (c == '"') {
        jpos_read_string(sc, NULL);
    } else {
        /* Numbers, true, false, null: up to the next delimiter. */
        while (jpos_peek(sc) >= 0 && !strchr(",]} \t\r\n", jpos_peek(sc)))
            jpos_next(sc);
    }
}

static int jpos_by_path(const void *a, const void *b)
{
    return strcmp(((const struct wb_jsonpos_entry *)a)->path,
                  ((const struct wb_jsonpos_entry *)b)->path);
}

void wb_jsonpos_build(struct wb_jsonpos *m, const char *text, size_t len)
{
    memset(m, 0, sizeof *m);
    struct scan sc = {text, len, 0, 1, 1, m};
    /* A UTF-8 byte order mark is not part of the document. */
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3))
        sc.i = 3;
    jpos_skip_ws(&sc);
    if (jpos_peek(&sc) >= 0)
        jpos_scan_value(&sc, "", sc.line, sc.col);
    qsort(m->v, m->n, sizeof *m->v, jpos_by_path);
}

const struct wb_jsonpos_entry *wb_jsonpos_find(const struct wb_jsonpos *m, const char *path)
{
    struct wb_jsonpos_entry key = {.path = (char *)path};
    if (!m->n)
        return NULL;
    return bsearch(&key, m->v, m->n, sizeof *m->v, jpos_by_path);
}

void wb_jsonpos_free(struct wb_jsonpos *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->v[i].path);
    free(m->v);
    memset(m, 0, sizeof *m);
}

char *wb_jsonpos_child(const char *parent, const char *key)
{
    struct wb_buf b;
    wb_buf_init(&b);
    wb_buf_puts(&b, parent);
    wb_buf_putc(&b, '/');
    for (const char *k = key; *k; k++) {
        if (*k == '~')
            wb_buf_puts(&b, "~0");
        else if (*k == '/')
            wb_buf_puts(&b, "~1");
        else
            wb_buf_putc(&b, *k);
    }
    return wb_buf_steal(&b);
}

char *wb_jsonpos_index(const char *parent, size_t i)
{
    return wb_xasprintf("%s/%zu", parent, i);
}
