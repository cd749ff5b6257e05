/* check-config: load everything, print every problem in reading order. */
#include "warmbench/check_config.h"
#include "warmbench/config.h"
#include "warmbench/util.h"
#include <stdlib.h>
#include <string.h>

/* Sorting key: the file's first appearance, then line, then column. */
struct ranked {
    const struct wb_diag *d;
    size_t file_rank, seq;
};

static int cc_by_place(const void *a, const void *b)
{
    const struct ranked *x = a, *y = b;
    if (x->file_rank != y->file_rank)
        return x->file_rank < y->file_rank ? -1 : 1;
    if (x->d->line != y->d->line)
        return x->d->line < y->d->line ? -1 : 1;
    if (x->d->col != y->d->col)
        return x->d->col < y->d->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static bool cc_same(const struct wb_diag *a, const struct wb_diag *b)
{
    return a->line == b->line && a->col == b->col && !strcmp(a->file, b->file) &&
           !strcmp(a->msg, b->msg);
}

static void cc_print_sorted(const struct wb_diags *d, FILE *err)
{
    struct ranked *r = wb_xcalloc(d->n, sizeof *r);
    for (size_t i = 0; i < d->n; i++) {
        size_t k = 0;
        while (strcmp(d->v[k].file, d->v[i].file))
            k++;
        r[i] = (struct ranked){&d->v[i], k, i};
    }
    qsort(r, d->n, sizeof *r, cc_by_place);
    struct wb_diags one = {0};
    for (size_t i = 0; i < d->n; i++) {
        /* A template shared by two sequences can report the same thing twice. */
        if (i && cc_same(r[i].d, r[i - 1].d))
            continue;
        one.v = (struct wb_diag *)r[i].d;
        one.n = 1;
        wb_diags_print(&one, err);
    }
    free(r);
}

static const char *cc_plural(size_t n, const char *word, const char *words)
{
    return n == 1 ? word : words;
}

/* Adds part's "text" and "html" file names to seen unless already there. */
static void cc_note_files(json_t *part, const char ***seen, size_t *n)
{
    static const char *const keys[] = {"text", "html"};
    for (int k = 0; k < 2; k++) {
        const char *name = json_string_value(json_object_get(part, keys[k]));
        size_t j = 0;
        while (name && j < *n && strcmp((*seen)[j], name))
            j++;
        if (!name || j < *n)
            continue;
        *seen = wb_xrealloc(*seen, (*n + 1) * sizeof **seen);
        (*seen)[(*n)++] = name;
    }
}

/* Distinct template files across all sequences (names are relative to the
 * one templates_dir, so equal names are the same file). */
static size_t cc_count_templates(const struct wb_config *c)
{
    const char **seen = NULL;
    size_t n = 0;
    for (size_t i = 0; i < c->n_sequences; i++) {
        size_t k, v;
        json_t *st, *var;
        json_array_foreach(json_object_get(c->sequences[i].definition, "steps"), k, st) {
            cc_note_files(st, &seen, &n);
            json_array_foreach(json_object_get(st, "variants"), v, var)
                cc_note_files(var, &seen, &n);
        }
    }
    free(seen);
    return n;
}

int wb_check_config(const char *path, FILE *out, FILE *err)
{
    struct wb_diags d;
    wb_diags_init(&d);
    struct wb_config *c = wb_config_load(path, &d);
    if (!c) {
        cc_print_sorted(&d, err);
        wb_diags_free(&d);
        return 78;
    }
    size_t steps = 0;
    for (size_t i = 0; i < c->n_sequences; i++)
        steps += c->sequences[i].n_steps;
    size_t tpl = cc_count_templates(c);
    fprintf(out, "config ok: %zu %s, %zu %s, %zu %s, %zu %s\n", c->n_senders,
            cc_plural(c->n_senders, "sender", "senders"), c->n_sequences,
            cc_plural(c->n_sequences, "sequence", "sequences"), steps,
            cc_plural(steps, "step", "steps"), tpl, cc_plural(tpl, "template", "templates"));
    wb_config_free(c);
    wb_diags_free(&d);
    return 0;
}
