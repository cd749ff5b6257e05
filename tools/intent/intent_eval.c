/* intent_eval: the reply-intent corpus through the daemon's own path
 * (the reply as a MIME part -> wb_mail_first_text -> strip -> rules /
 * model), for training and for `make bench-intent`.
 *
 *   intent_eval features CORPUS RULES BITS NMIN NMAX FLAGS MAX_BYTES
 *       one JSON line a reply: id, lang, intent, split, the folded text
 *       and its features [[bucket, value], ...] (tools/intent/train.py)
 *   intent_eval bench CORPUS RULES [--split heldout|train] [--errors rules|model|both]
 *       accuracy overall and per language, unsubscribe recall and a
 *       confusion matrix per language for rules alone, the model alone and
 *       both as the daemon combines them; microseconds per reply.
 * Only the split asked for is scored (heldout unless told). */
#include "warmbench/intent.h"
#include "warmbench/mailparse.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NLANG 6
static const char *const langs[NLANG] = {"en", "de", "fr", "es", "it", "nl"};

struct reply {
    const char *id, *lang, *split, *text, *format;
    int want;
};

static int ev_intent_of(const char *name)
{
    for (int c = 0; c < WB_INTENT_COUNT; c++)
        if (!strcmp(name, wb_intent_name((enum wb_intent)c)))
            return c;
    return -1;
}

static int ev_lang_of(const char *l)
{
    for (int k = 0; k < NLANG; k++)
        if (!strcmp(l, langs[k]))
            return k;
    return -1;
}

/* The body as the mailbox poller gets it: the first text part of a message
 * whose only part is the reply, plain or HTML. */
static char *ev_body_text(const struct reply *r)
{
    char *msg;
    if (asprintf(&msg, "Content-Type: text/%s; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s",
                 !strcmp(r->format, "html") ? "html" : "plain", r->text) < 0)
        abort();
    struct wb_mail_head h;
    size_t off;
    char *t = NULL;
    if (wb_mail_head_parse(msg, strlen(msg), &h, &off) == 0) {
        t = wb_mail_first_text(&h, msg + off, strlen(msg + off));
        wb_mail_head_free(&h);
    }
    free(msg);
    return t ? t : strdup("");
}

static json_t *ev_load(const char *path, struct reply **out, size_t *n)
{
    json_error_t je;
    json_t *all = json_load_file(path, 0, &je);
    if (!json_is_array(all)) {
        fprintf(stderr, "%s:%d: %s\n", path, je.line, all ? "not an array" : je.text);
        exit(1);
    }
    *n = json_array_size(all);
    *out = calloc(*n ? *n : 1, sizeof **out);
    size_t i;
    json_t *c;
    json_array_foreach(all, i, c) {
        struct reply *r = &(*out)[i];
        r->id = json_string_value(json_object_get(c, "id"));
        r->lang = json_string_value(json_object_get(c, "lang"));
        r->split = json_string_value(json_object_get(c, "split"));
        r->text = json_string_value(json_object_get(c, "text"));
        r->format = json_string_value(json_object_get(c, "format"));
        const char *w = json_string_value(json_object_get(c, "intent"));
        r->want = w ? ev_intent_of(w) : -1;
        if (!r->id || !r->lang || !r->split || !r->text || !r->format || r->want < 0 ||
            ev_lang_of(r->lang) < 0) {
            fprintf(stderr, "%s: entry %zu: missing or bad id/lang/split/text/format/intent\n", path, i);
            exit(1);
        }
    }
    return all;
}

static struct wb_intent_rules *ev_rules(const char *path)
{
    char err[1024];
    struct wb_intent_rules *r = wb_intent_load(path, err, sizeof err);
    if (!r) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    return r;
}

static int ev_features(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr, "usage: intent_eval features CORPUS RULES BITS NMIN NMAX FLAGS MAX_BYTES\n");
        return 64;
    }
    struct reply *rs;
    size_t n;
    json_t *all = ev_load(argv[2], &rs, &n);
    struct wb_intent_rules *rules = ev_rules(argv[3]);
    struct wb_intent_feat_params p = {(unsigned)atoi(argv[4]), (unsigned)atoi(argv[5]),
                                      (unsigned)atoi(argv[6]), (unsigned)atoi(argv[7]),
                                      (size_t)atoi(argv[8])};
    if (p.bits < 8 || p.bits > 20 || p.nmin < 1 || p.nmin > p.nmax || p.nmax > 8 || p.max_bytes < 16) {
        fprintf(stderr, "intent_eval: feature parameters out of range\n");
        return 64;
    }
    for (size_t i = 0; i < n; i++) {
        char *body = ev_body_text(&rs[i]), *s = wb_intent_text(rules, body);
        uint32_t *idx;
        float *val;
        size_t m = wb_intent_features(&p, s, &idx, &val);
        json_t *f = json_array();
        for (size_t k = 0; k < m; k++)
            json_array_append_new(f, json_pack("[I, f]", (json_int_t)idx[k], (double)val[k]));
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "id", rs[i].id, "lang", rs[i].lang,
                              "intent", wb_intent_name((enum wb_intent)rs[i].want), "split", rs[i].split,
                              "text", s, "f", f);
        char *line = json_dumps(o, JSON_COMPACT);
        puts(line);
        free(line);
        json_decref(o);
        free(idx);
        free(val);
        free(s);
        free(body);
    }
    wb_intent_free(rules);
    free(rs);
    json_decref(all);
    return 0;
}

enum { M_RULES, M_MODEL, M_BOTH, M_COUNT };
static const char *const mode_names[M_COUNT] = {"rules only", "model only",
                                                "rules, then model (shipped)"};

struct tally {
    unsigned conf[NLANG + 1][WB_INTENT_COUNT][WB_INTENT_COUNT]; /* [lang][want][got]; NLANG = all */
};

static int ev_predict(const struct wb_intent_rules *r, const char *s, int mode)
{
    const struct wb_intent_model *m = wb_intent_model_of(r);
    int rule = mode != M_MODEL ? wb_intent_rules_match(r, s) : -1;
    if (rule >= 0)
        return rule;
    if (mode == M_RULES || !m || !*s)
        return WB_INTENT_NEUTRAL;
    double p[WB_INTENT_COUNT];
    return wb_intent_model_score(m, s, p);
}

static unsigned ev_sum_diag(unsigned c[WB_INTENT_COUNT][WB_INTENT_COUNT], unsigned *total)
{
    unsigned ok = 0;
    *total = 0;
    for (int a = 0; a < WB_INTENT_COUNT; a++)
        for (int b = 0; b < WB_INTENT_COUNT; b++) {
            *total += c[a][b];
            ok += a == b ? c[a][b] : 0;
        }
    return ok;
}

static void ev_matrix(unsigned c[WB_INTENT_COUNT][WB_INTENT_COUNT])
{
    static const char *const abbr[WB_INTENT_COUNT] = {"neu", "int", "not", "uns"};
    printf("      want\\got   neu  int  not  uns\n");
    for (int a = 0; a < WB_INTENT_COUNT; a++) {
        printf("      %-14s", wb_intent_name((enum wb_intent)a));
        for (int b = 0; b < WB_INTENT_COUNT; b++)
            printf(" %4u", c[a][b]);
        printf("   (%s)\n", abbr[a]);
    }
}

static void ev_report(const struct tally *t, int mode, bool matrices)
{
    unsigned total, ok = ev_sum_diag((unsigned(*)[WB_INTENT_COUNT])t->conf[NLANG], &total);
    const unsigned *u = t->conf[NLANG][WB_INTENT_UNSUBSCRIBE];
    unsigned un = u[0] + u[1] + u[2] + u[3];
    printf("%s: accuracy %.3f (%u/%u), unsubscribe recall %.3f (%u/%u)\n", mode_names[mode],
           total ? (double)ok / total : 0, ok, total, un ? (double)u[WB_INTENT_UNSUBSCRIBE] / un : 0,
           u[WB_INTENT_UNSUBSCRIBE], un);
    printf("  per language:");
    for (int k = 0; k < NLANG; k++) {
        unsigned lt, lok = ev_sum_diag((unsigned(*)[WB_INTENT_COUNT])t->conf[k], &lt);
        printf(" %s %.3f (%u/%u)%s", langs[k], lt ? (double)lok / lt : 0, lok, lt, k < NLANG - 1 ? "," : "\n");
    }
    if (!matrices)
        return;
    for (int k = 0; k < NLANG; k++) {
        printf("    %s:\n", langs[k]);
        ev_matrix((unsigned(*)[WB_INTENT_COUNT])t->conf[k]);
    }
}

static int ev_bench(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: intent_eval bench CORPUS RULES [--split heldout|train] [--errors rules|model|both]\n");
        return 64;
    }
    const char *split = "heldout";
    int errors = -1; /* the mode whose misses are listed */
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--split") && i + 1 < argc)
            split = argv[++i];
        else if (!strcmp(argv[i], "--errors") && i + 1 < argc) {
            const char *e = argv[++i];
            errors = !strcmp(e, "rules") ? M_RULES : !strcmp(e, "model") ? M_MODEL : M_BOTH;
        }
        else {
            fprintf(stderr, "intent_eval: unknown option %s\n", argv[i]);
            return 64;
        }
    }
    struct reply *rs;
    size_t n;
    json_t *all = ev_load(argv[2], &rs, &n);
    struct wb_intent_rules *rules = ev_rules(argv[3]);
    const struct wb_intent_model *model = wb_intent_model_of(rules);
    static struct tally t[M_COUNT];
    size_t scored = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(rs[i].split, split))
            continue;
        scored++;
        char *body = ev_body_text(&rs[i]), *s = wb_intent_text(rules, body);
        int k = ev_lang_of(rs[i].lang);
        for (int mode = 0; mode < M_COUNT; mode++) {
            int got = ev_predict(rules, s, mode);
            t[mode].conf[k][rs[i].want][got]++;
            t[mode].conf[NLANG][rs[i].want][got]++;
            if (mode == errors && got != rs[i].want)
                printf("MISS %s want %s got %s: %s\n", rs[i].id, wb_intent_name((enum wb_intent)rs[i].want),
                       wb_intent_name((enum wb_intent)got), s);
        }
        free(s);
        free(body);
    }
    printf("reply intent on the %s split: %zu replies of %zu (the other split is never scored here)\n",
           split, scored, n);
    if (model) {
        const struct wb_intent_feat_params *p = wb_intent_model_params(model);
        printf("model: %u buckets, char %u..%u-grams%s%s, first %zu bytes\n", 1u << p->bits, p->nmin,
               p->nmax, p->flags & WB_INTENT_FEAT_WORDS ? ", words" : "",
               p->flags & WB_INTENT_FEAT_BIGRAMS ? ", word pairs" : "", p->max_bytes);
    } else {
        printf("model: none named by %s\n", argv[3]);
    }
    for (int mode = 0; mode < M_COUNT; mode++)
        if (mode == M_RULES || model)
            ev_report(&t[mode], mode, mode == M_BOTH || !model);
    /* The daemon's whole path per reply: MIME part, first text, strip,
     * fold, rules and model; each reply of the split, many rounds. */
    struct timespec a, b;
    size_t rounds = 0, calls = 0;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do {
        for (size_t i = 0; i < n; i++) {
            if (strcmp(rs[i].split, split))
                continue;
            char *body = ev_body_text(&rs[i]);
            struct wb_intent_result res;
            wb_intent_decide(rules, body, &res);
            free(body);
            calls++;
        }
        rounds++;
        clock_gettime(CLOCK_MONOTONIC, &b);
    } while ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9 < 1.0 || rounds < 3);
    double us = ((b.tv_sec - a.tv_sec) * 1e6 + (b.tv_nsec - a.tv_nsec) / 1e3) / (double)(calls ? calls : 1);
    printf("time: %.1f us per reply (MIME part to verdict, %zu calls)\n", us, calls);
    wb_intent_free(rules);
    free(rs);
    json_decref(all);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "features"))
        return ev_features(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "bench"))
        return ev_bench(argc, argv);
    fprintf(stderr, "usage: intent_eval features|bench CORPUS RULES ...\n");
    return 64;
}
