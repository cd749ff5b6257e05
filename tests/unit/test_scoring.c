#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "warmbench/scoring.h"

#define EPS 1e-12

START_TEST(test_decay_halves_per_half_life)
{
    ck_assert_double_eq_tol(wb_score_decay(10, 30, 30), 5, EPS);
    ck_assert_double_eq_tol(wb_score_decay(10, 60, 30), 2.5, EPS);
    ck_assert_double_eq_tol(wb_score_decay(8, 7, 14), 8 / sqrt(2), EPS);
    ck_assert_double_eq_tol(wb_score_decay(-4, 15, 15), -2, EPS);
    /* Decaying in two steps is decaying once by the sum of the ages. */
    ck_assert_double_eq_tol(wb_score_decay(wb_score_decay(7, 3.5, 30), 11.25, 30),
                            wb_score_decay(7, 14.75, 30), EPS);
}
END_TEST

START_TEST(test_decay_edges)
{
    ck_assert_double_eq(wb_score_decay(10, 0, 30), 10);
    /* A time in the future does not grow a score. */
    ck_assert_double_eq(wb_score_decay(10, -5, 30), 10);
    ck_assert_double_eq(wb_score_decay(0, 100, 30), 0);
    /* Past 64 half-lives, or for a negligible score, it is 0 (the SQL
     * clamps the same way so PostgreSQL never raises an underflow). */
    ck_assert_double_eq(wb_score_decay(1e6, 64 * 30, 30), 0);
    ck_assert(wb_score_decay(1e6, 63.9 * 30, 30) > 0);
    ck_assert_double_eq(wb_score_decay(1e-201, 1, 30), 0);
    ck_assert(isfinite(wb_score_decay(1e300, 1e9, 1e-9)));
}
END_TEST

START_TEST(test_defaults)
{
    struct wb_scoring s;
    wb_scoring_from_config(NULL, &s);
    ck_assert_double_eq(s.half_life_days, 30);
    ck_assert_double_eq(s.ready_threshold, 10);
    ck_assert_double_eq(wb_score_weight(&s, "open", NULL, false), 1);
    ck_assert_double_eq(wb_score_weight(&s, "click", "apply", false), 3);
    ck_assert_double_eq(wb_score_weight(&s, "reply", NULL, false), 10);
    ck_assert_double_eq(wb_score_weight(&s, "auto_reply", NULL, false), 0);
    ck_assert_double_eq(wb_score_weight(&s, "unsubscribe", NULL, false), -10);
    ck_assert_double_eq(wb_score_weight(&s, "bounce", "hard", false), -5);
    ck_assert_double_eq(wb_score_weight(&s, "bounce", "soft", false), 0);
    /* Types without a weight count for nothing. */
    ck_assert_double_eq(wb_score_weight(&s, "sent", NULL, false), 0);
    ck_assert_double_eq(wb_score_weight(&s, "enrolled", NULL, false), 0);
    ck_assert_double_eq(wb_score_weight(&s, NULL, NULL, false), 0);
    /* Sorted, so lookups can bisect. */
    for (size_t i = 1; i < s.n_weights; i++)
        ck_assert(strcmp(s.weights[i - 1].key, s.weights[i].key) < 0);
    wb_scoring_free(&s);
    ck_assert_ptr_null(s.weights);
}
END_TEST

START_TEST(test_intent_weights)
{
    struct wb_scoring s;
    wb_scoring_from_config(NULL, &s);
    ck_assert_double_eq(wb_score_weight(&s, "reply", "interested", false), 20);
    ck_assert_double_eq(wb_score_weight(&s, "reply", "neutral", false), 10);
    ck_assert_double_eq(wb_score_weight(&s, "reply", "not_interested", false), -5);
    ck_assert_double_eq(wb_score_weight(&s, "reply", "unsubscribe", false), -10);
    /* An intent without its own weight falls back to the plain reply. */
    ck_assert_double_eq(wb_score_weight(&s, "reply", "maybe", false), 10);
    wb_scoring_free(&s);
}
END_TEST

START_TEST(test_machine_events_weigh_nothing)
{
    struct wb_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.scoring = json_loads("{\"weights\": {\"open\": 4, \"click\": 9}}", 0, NULL);
    struct wb_scoring s;
    wb_scoring_from_config(&cfg, &s);
    ck_assert_double_eq(wb_score_weight(&s, "open", NULL, false), 4);
    ck_assert_double_eq(wb_score_weight(&s, "open", NULL, true), 0);
    ck_assert_double_eq(wb_score_weight(&s, "click", "apply", true), 0);
    ck_assert_double_eq(wb_score_weight(&s, "reply", "interested", true), 0);
    wb_scoring_free(&s);
    json_decref(cfg.scoring);
}
END_TEST

START_TEST(test_config_overlays_defaults)
{
    struct wb_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.scoring = json_loads("{\"weights\": {\"open\": 2, \"click:apply\": 8, \"applied\": 25,"
                             " \"reply:interested\": 12.5}, \"half_life_days\": 14,"
                             " \"ready_threshold\": 5}", 0, NULL);
    struct wb_scoring s;
    wb_scoring_from_config(&cfg, &s);
    ck_assert_double_eq(s.half_life_days, 14);
    ck_assert_double_eq(s.ready_threshold, 5);
    ck_assert_double_eq(wb_score_weight(&s, "open", NULL, false), 2);
    ck_assert_double_eq(wb_score_weight(&s, "click", "apply", false), 8);
    ck_assert_double_eq(wb_score_weight(&s, "click", "blog", false), 3);
    ck_assert_double_eq(wb_score_weight(&s, "applied", NULL, false), 25);
    ck_assert_double_eq(wb_score_weight(&s, "reply", "interested", false), 12.5);
    ck_assert_double_eq(wb_score_weight(&s, "unsubscribe", NULL, false), -10);
    wb_scoring_free(&s);
    json_decref(cfg.scoring);
}
END_TEST

START_TEST(test_sync_params_round_trip)
{
    struct wb_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.scoring = json_loads("{\"weights\": {\"open\": 0.1, \"x\": -3}, "
                             "\"half_life_days\": 0.3}", 0, NULL);
    struct wb_scoring s;
    wb_scoring_from_config(&cfg, &s);
    char *hl, *w;
    wb_scoring_sync_params(&s, &hl, &w);
    ck_assert_double_eq(strtod(hl, NULL), 0.3);
    json_t *o = json_loads(w, 0, NULL);
    ck_assert_ptr_nonnull(o);
    ck_assert_uint_eq(json_object_size(o), s.n_weights);
    ck_assert_double_eq(json_number_value(json_object_get(o, "open")), 0.1);
    ck_assert_double_eq(json_number_value(json_object_get(o, "x")), -3);
    ck_assert_double_eq(json_number_value(json_object_get(o, "reply:interested")), 20);
    json_decref(o);
    free(hl);
    free(w);
    wb_scoring_free(&s);
    json_decref(cfg.scoring);
}
END_TEST

/* The incremental update sql/005 runs per inserted batch: the batch summed
 * as of its latest time m, old score and batch both decayed to
 * ref = max(score_at, m). */
struct state {
    double score, at; /* at < 0: no score yet */
};

static void apply_batch(struct state *st, const double *w, const double *at, size_t n,
                        double hl)
{
    double m = -1;
    for (size_t i = 0; i < n; i++)
        if (w[i] != 0 && at[i] > m)
            m = at[i];
    if (m < 0)
        return;
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        if (w[i] != 0)
            sum += wb_score_decay(w[i], m - at[i], hl);
    double ref = st->at > m ? st->at : m;
    double old = st->at < 0 ? 0 : wb_score_decay(st->score, ref - st->at, hl);
    st->score = old + wb_score_decay(sum, ref - m, hl);
    st->at = ref;
}

START_TEST(test_incremental_matches_recompute_in_any_order)
{
    /* Weights and times (days) of one person's events, out of time order,
     * a zero weight (auto_reply) among them. */
    const double w[] = {1, 3, 20, 0, -5, 1, 10, -10, 1, 3};
    const double at[] = {40, 2, 75, 90, 13, 60, 61, 100, 0.5, 99.75};
    const size_t n = sizeof w / sizeof w[0];
    const double hl = 30;
    double latest = 0;
    for (size_t i = 0; i < n; i++)
        if (w[i] != 0 && at[i] > latest)
            latest = at[i];
    double direct = 0;
    for (size_t i = 0; i < n; i++)
        direct += w[i] * pow(2, -(latest - at[i]) / hl);

    const size_t cuts[][4] = {{1, 2, 3, 4}, {3, 3, 7, 9}, {10, 10, 10, 10}, {0, 5, 6, 9}};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        struct state st = {0, -1};
        size_t from = 0;
        for (size_t j = 0; j <= 4; j++) {
            size_t to = j < 4 ? cuts[k][j] : n;
            apply_batch(&st, w + from, at + from, to - from, hl);
            from = to;
        }
        ck_assert_double_eq(st.at, latest);
        ck_assert_double_eq_tol(st.score, direct, 1e-9);
    }
}
END_TEST

Suite *wb_test_suite(void)
{
    Suite *s = suite_create("scoring");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_decay_halves_per_half_life);
    tcase_add_test(tc, test_decay_edges);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_intent_weights);
    tcase_add_test(tc, test_machine_events_weigh_nothing);
    tcase_add_test(tc, test_config_overlays_defaults);
    tcase_add_test(tc, test_sync_params_round_trip);
    tcase_add_test(tc, test_incremental_matches_recompute_in_any_order);
    suite_add_tcase(s, tc);
    return s;
}
