/* Engagement score settings and maths (see scoring.h). The database does
 * the scoring itself (sql/005_scoring.sql); the C functions here mirror
 * its maths exactly, so tests and thresholds agree with it. */
#include "warmbench/scoring.h"
#include "warmbench/db.h"
#include "warmbench/exitcodes.h"
#include "warmbench/util.h"
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The documented defaults, also inserted by sql/005_scoring.sql. A reply
 * is the strongest signal and its intent refines it; negative outcomes
 * pull a person down so "ready" lists do not keep them; automatic replies
 * and soft bounces say nothing about the person. */
static const struct {
    const char *key;
    double weight;
} default_weights[] = {
    {"open", 1},       {"click", 3},
    {"reply", 10},     {"reply:interested", 20},
    {"reply:neutral", 10}, {"reply:not_interested", -5},
    {"reply:unsubscribe", -10}, {"auto_reply", 0},
    {"bounce", -5},    {"bounce:soft", 0},
    {"unsubscribe", -10},
};

static int sc_by_key(const void *a, const void *b)
{
    return strcmp(((const struct wb_score_weight *)a)->key,
                  ((const struct wb_score_weight *)b)->key);
}

static struct wb_score_weight *sc_find(const struct wb_scoring *s, const char *key)
{
    if (!s->n_weights) /* bsearch must not be given a NULL array */
        return NULL;
    struct wb_score_weight k = {.key = (char *)key};
    return bsearch(&k, s->weights, s->n_weights, sizeof k, sc_by_key);
}

/* Adds or replaces one weight; keeps the array sorted. */
static void sc_set_weight(struct wb_scoring *s, const char *key, double w)
{
    struct wb_score_weight *have = sc_find(s, key);
    if (have) {
        have->weight = w;
        return;
    }
    s->weights = wb_xrealloc(s->weights, (s->n_weights + 1) * sizeof *s->weights);
    s->weights[s->n_weights++] = (struct wb_score_weight){wb_xstrdup(key), w};
    qsort(s->weights, s->n_weights, sizeof *s->weights, sc_by_key);
}

void wb_scoring_from_config(const struct wb_config *cfg, struct wb_scoring *out)
{
    memset(out, 0, sizeof *out);
    out->half_life_days = WB_SCORE_HALF_LIFE_DAYS;
    out->ready_threshold = WB_SCORE_READY_THRESHOLD;
    for (size_t i = 0; i < sizeof default_weights / sizeof default_weights[0]; i++)
        sc_set_weight(out, default_weights[i].key, default_weights[i].weight);
    json_t *sc = cfg ? cfg->scoring : NULL;
    if (!sc)
        return;
    /* config.c validated the types; a value of another type is skipped. */
    json_t *v = json_object_get(sc, "half_life_days");
    if (json_is_number(v) && json_number_value(v) > 0)
        out->half_life_days = json_number_value(v);
    v = json_object_get(sc, "ready_threshold");
    if (json_is_number(v))
        out->ready_threshold = json_number_value(v);
    const char *key;
    json_object_foreach(json_object_get(sc, "weights"), key, v)
        if (json_is_number(v))
            sc_set_weight(out, key, json_number_value(v));
}

void wb_scoring_free(struct wb_scoring *s)
{
    for (size_t i = 0; i < s->n_weights; i++)
        free(s->weights[i].key);
    free(s->weights);
    memset(s, 0, sizeof *s);
}

double wb_score_decay(double score, double age_days, double half_life_days)
{
    if (score == 0 || age_days <= 0)
        return score;
    if (age_days / half_life_days >= 64 || fabs(score) < 1e-200)
        return 0;
    return score * pow(2.0, -age_days / half_life_days);
}

double wb_score_weight(const struct wb_scoring *s, const char *type, const char *qualifier,
                       bool machine)
{
    if (machine || !type)
        return 0;
    const struct wb_score_weight *w = NULL;
    if (qualifier) {
        char *k = wb_xasprintf("%s:%s", type, qualifier);
        w = sc_find(s, k);
        free(k);
    }
    if (!w)
        w = sc_find(s, type);
    return w ? w->weight : 0;
}

const char *const wb_scoring_sync_sql = "SELECT wb_scoring_sync($1::float8, $2::jsonb)";

void wb_scoring_sync_params(const struct wb_scoring *s, char **half_life, char **weights)
{
    json_t *o = json_object();
    for (size_t i = 0; i < s->n_weights; i++)
        json_object_set_new(o, s->weights[i].key, json_real(s->weights[i].weight));
    /* %.17g round-trips a double exactly, so an unchanged config compares
     * equal in the database and triggers no recompute. */
    *half_life = wb_xasprintf("%.17g", s->half_life_days);
    *weights = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
    json_decref(o);
}

int wb_scoring_sync(PGconn *c, const struct wb_scoring *s)
{
    char *hl, *w;
    wb_scoring_sync_params(s, &hl, &w);
    const char *p[] = {hl, w};
    PGresult *r = wb_db_exec(c, PGRES_TUPLES_OK, "storing scoring weights", wb_scoring_sync_sql,
                             2, p);
    free(hl);
    free(w);
    if (!r)
        return -1;
    int changed = PQntuples(r) == 1 && !strcmp(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    return changed;
}

static const char rescore_sql[] = "SELECT n_candidates, n_changed, max_change FROM wb_rescore()";

int wb_rescore(PGconn *c, FILE *out)
{
    PGresult *r = wb_db_exec(c, PGRES_TUPLES_OK, "rescoring", rescore_sql, 0, NULL);
    if (!r)
        return WB_EXIT_FAIL;
    if (PQntuples(r) != 1) {
        PQclear(r);
        fprintf(stderr, "warmbench: rescoring: no result\n");
        return WB_EXIT_FAIL;
    }
    fprintf(out, "rescored %s candidate(s): %s changed, largest change %.3g\n",
            PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), atof(PQgetvalue(r, 0, 2)));
    PQclear(r);
    return WB_EXIT_OK;
}
