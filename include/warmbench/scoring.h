/* The engagement score (SPEC "Talent intelligence"): weighted human events
 * with exponential decay. The database keeps it up to date as events are
 * stored (sql/005_scoring.sql); this module holds the weights read from
 * warmbench.json's `scoring`, the same maths in C (for tests and callers
 * that want a threshold), the sync of weights into the database and
 * `warmbench rescore`. */
#ifndef WB_SCORING_H
#define WB_SCORING_H
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <libpq-fe.h>
#include "warmbench/config.h"

#define WB_SCORE_HALF_LIFE_DAYS 30.0
#define WB_SCORE_READY_THRESHOLD 10.0

/* One weight: key is an event type ("open") or a type qualified by its
 * detail ("reply:interested", "bounce:soft", "click:apply"). */
struct wb_score_weight {
    char *key;
    double weight;
};

struct wb_scoring {
    double half_life_days;   /* > 0 */
    double ready_threshold;  /* a candidate at or above it is "ready" */
    struct wb_score_weight *weights; /* defaults overlaid by the config's, sorted by key */
    size_t n_weights;
};

/* The documented defaults overlaid by cfg->scoring (cfg may be NULL).
 * Free with wb_scoring_free. */
void wb_scoring_from_config(const struct wb_config *cfg, struct wb_scoring *out);
void wb_scoring_free(struct wb_scoring *s);

/* score after age_days of decay: score * 2^(-age/half_life); 0 past 64
 * half-lives or below 1e-200 in magnitude, unchanged for age <= 0 (as the
 * SQL wb_score_decay). */
double wb_score_decay(double score, double age_days, double half_life_days);

/* The weight of one event: 0 for machine events; else "type:qualifier"
 * (qualifier: a reply's intent, a bounce's kind, a click's link; NULL when
 * none), falling back to "type", else 0. */
double wb_score_weight(const struct wb_scoring *s, const char *type, const char *qualifier,
                       bool machine);

/* Stores the weights and half-life in the database. When they differ from
 * those stored, every score is recomputed in the same transaction (scores
 * made with other weights cannot be adjusted incrementally). Returns 1
 * when it recomputed, 0 when nothing changed, -1 after reporting to stderr. */
int wb_scoring_sync(PGconn *c, const struct wb_scoring *s);

/* The one statement wb_scoring_sync runs, for the daemon's pg_loop: $1
 * half-life in days, $2 the weights as a JSON object; returns one row,
 * "t" when it recomputed the scores. */
extern const char *const wb_scoring_sync_sql;
/* Builds the parameters for wb_scoring_sync_sql (both malloc'd). */
void wb_scoring_sync_params(const struct wb_scoring *s, char **half_life, char **weights);

/* `warmbench rescore`: recomputes every score from the events in one
 * statement and prints "rescored N candidate(s)". Returns an exit code. */
int wb_rescore(PGconn *c, FILE *out);

#endif
