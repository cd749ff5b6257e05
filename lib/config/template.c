/* Template parsing and rendering: {{field}} and {{field|fallback}}.
 * Columns in diagnostics are 1-based and counted in bytes. */
#include "warmbench/template.h"
#include "warmbench/util.h"
#include <stdlib.h>
#include <string.h>

struct wb_piece {
    char *text;     /* literal text, or the field name */
    size_t len;     /* length of text */
    char *fallback; /* NULL when the tag has no "|" */
    int is_field;
    int line, col;  /* a field's "{{", for preview's warnings */
};

struct wb_template {
    char *file;    /* where it came from, for preview's warnings */
    struct wb_piece *v;
    size_t n, cap;
    char **fields; /* distinct field names, in first-use order */
    size_t nfields;
};

/* Where the scanner is, so every error names the exact place of its "{{". */
struct tpos {
    int line, col;
};

static void tpl_advance(struct tpos *p, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n') {
            p->line++;
            p->col = 1;
        } else {
            p->col++;
        }
    }
}

static struct wb_piece *tpl_add_piece(struct wb_template *t)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 8;
        t->v = wb_xrealloc(t->v, t->cap * sizeof *t->v);
    }
    struct wb_piece *p = &t->v[t->n++];
    memset(p, 0, sizeof *p);
    return p;
}

static void tpl_add_text(struct wb_template *t, const char *s, size_t n)
{
    if (n == 0)
        return;
    struct wb_piece *p = tpl_add_piece(t);
    p->text = wb_xstrndup(s, n);
    p->len = n;
}

static void tpl_note_field(struct wb_template *t, const char *name)
{
    for (size_t i = 0; i < t->nfields; i++)
        if (!strcmp(t->fields[i], name))
            return;
    t->fields = wb_xrealloc(t->fields, (t->nfields + 1) * sizeof *t->fields);
    t->fields[t->nfields++] = wb_xstrdup(name);
}

static int tpl_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Copies s[0..n) without surrounding whitespace. */
static char *tpl_trimmed(const char *s, size_t n)
{
    while (n && tpl_is_space(*s)) {
        s++;
        n--;
    }
    while (n && tpl_is_space(s[n - 1]))
        n--;
    return wb_xstrndup(s, n);
}

/* Looks for "needle" (2 bytes) in s[0..n); never reads past n. */
static const char *tpl_find2(const char *s, size_t n, char a, char b)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == a && s[i + 1] == b)
            return s + i;
    return NULL;
}

/* Handles the body of one tag (between "{{" and "}}"); false on error. */
static int tpl_parse_tag(struct wb_template *t, const char *body, size_t n, const char *file,
                     struct tpos at, wb_field_known_fn known, void *ud, struct wb_diags *d)
{
    const char *bar = memchr(body, '|', n);
    size_t name_len = bar ? (size_t)(bar - body) : n;
    char *name = tpl_trimmed(body, name_len);
    if (!name[0]) {
        wb_diags_add(d, file, at.line, at.col, "empty field name in \"{{\"");
        free(name);
        return 0;
    }
    if (known && !known(name, ud)) {
        wb_diags_add(d, file, at.line, at.col, "unknown template field \"%s\"", name);
        free(name);
        return 0;
    }
    struct wb_piece *p = tpl_add_piece(t);
    p->is_field = 1;
    p->line = at.line;
    p->col = at.col;
    p->text = name;
    p->len = strlen(name);
    if (bar)
        p->fallback = tpl_trimmed(bar + 1, n - name_len - 1);
    tpl_note_field(t, name);
    return 1;
}

struct wb_template *wb_template_parse(const char *src, size_t len, const char *file,
                                      int line0, int col0, wb_field_known_fn known,
                                      void *ud, struct wb_diags *diags)
{
    struct wb_template *t = wb_xcalloc(1, sizeof *t);
    t->file = wb_xstrdup(file ? file : "");
    struct tpos pos = {line0, col0};
    size_t i = 0;
    int ok = 1;
    /* The first "}}" after the last "{{" looked at: it stays the answer
     * while later "{{" come before it, so "{{{{{{...}}" is not rescanned
     * to its end for every "{{" (quadratic: 0.9 s for 60 KB). */
    const char *close = NULL;
    while (i < len) {
        const char *open = tpl_find2(src + i, len - i, '{', '{');
        size_t lit = open ? (size_t)(open - (src + i)) : len - i;
        tpl_add_text(t, src + i, lit);
        tpl_advance(&pos, src + i, lit);
        i += lit;
        if (!open)
            break;
        struct tpos at = pos;
        const char *body = src + i + 2;
        size_t rest = len - i - 2;
        if (!close || close < body)
            close = tpl_find2(body, rest, '}', '}');
        /* A "{{" starting before that "}}" (looked for only up to it). */
        const char *reopen = close ? tpl_find2(body, (size_t)(close - body) + 1, '{', '{') : NULL;
        if (!close || (reopen && reopen < close)) {
            /* Report it, then resume after the "{{" so later tags are checked too. */
            wb_diags_add(diags, file, at.line, at.col, "unclosed \"{{\"");
            ok = 0;
            tpl_advance(&pos, src + i, 2);
            i += 2;
            if (!close)
                break;
            continue;
        }
        size_t blen = (size_t)(close - body);
        if (!tpl_parse_tag(t, body, blen, file, at, known, ud, diags))
            ok = 0;
        tpl_advance(&pos, src + i, blen + 4);
        i += blen + 4;
    }
    if (!ok) {
        wb_template_free(t);
        return NULL;
    }
    return t;
}

void wb_html_escape(struct wb_buf *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': wb_buf_puts(out, "&amp;"); break;
        case '<': wb_buf_puts(out, "&lt;"); break;
        case '>': wb_buf_puts(out, "&gt;"); break;
        case '"': wb_buf_puts(out, "&quot;"); break;
        case '\'': wb_buf_puts(out, "&#39;"); break;
        default: wb_buf_putc(out, *s);
        }
    }
}

/* The fallback is the template author's own text, so it is not escaped;
 * a value comes from candidate data and is inserted literally (never
 * re-expanded), escaped in HTML parts. */
static void tpl_render_field(const struct wb_piece *p, wb_field_value_fn value, void *ud,
                         bool html, struct wb_buf *out)
{
    const char *v = value ? value(p->text, ud) : NULL;
    if (v && v[0]) {
        if (html)
            wb_html_escape(out, v);
        else
            wb_buf_puts(out, v);
    } else if (p->fallback) {
        wb_buf_puts(out, p->fallback);
    }
}

void wb_template_render(const struct wb_template *t, wb_field_value_fn value, void *ud,
                        bool html, struct wb_buf *out)
{
    wb_template_render_checked(t, value, ud, html, out, NULL);
}

void wb_template_render_checked(const struct wb_template *t, wb_field_value_fn value, void *ud,
                                bool html, struct wb_buf *out, wb_field_empty_fn on_empty)
{
    for (size_t i = 0; i < t->n; i++) {
        const struct wb_piece *p = &t->v[i];
        if (!p->is_field) {
            wb_buf_append(out, p->text, p->len);
            continue;
        }
        if (on_empty && !p->fallback) {
            const char *v = value ? value(p->text, ud) : NULL;
            if (!v || !v[0])
                on_empty(p->text, t->file, p->line, p->col, ud);
        }
        tpl_render_field(p, value, ud, html, out);
    }
}

size_t wb_template_nfields(const struct wb_template *t)
{
    return t->nfields;
}

const char *wb_template_field(const struct wb_template *t, size_t i)
{
    return i < t->nfields ? t->fields[i] : NULL;
}

void wb_template_free(struct wb_template *t)
{
    if (!t)
        return;
    free(t->file);
    for (size_t i = 0; i < t->n; i++) {
        free(t->v[i].text);
        free(t->v[i].fallback);
    }
    free(t->v);
    for (size_t i = 0; i < t->nfields; i++)
        free(t->fields[i]);
    free(t->fields);
    free(t);
}
