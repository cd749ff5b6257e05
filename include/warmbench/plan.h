/* `warmbench plan SEQUENCE [--days N] [--json]` (SPEC "The sourcer's
 * controls"): what the daemon would send, day by day, and who waits.
 *
 * The command reads everything in one READ ONLY transaction (plan_cli.c)
 * and writes nothing: who the sequence's audience would enroll now and who
 * is skipped and why (enroll's own classification, wb_enroll_target_cte),
 * every active enrollment of every sequence (they share the senders'
 * limits), the senders' usage today, pauses and recent messages. The
 * simulation (plan_sim.c) then plays the claim (wb_claim) forward: per
 * sender, due steps in due order, held to the day's limit (daily_limit
 * and warm-up, wb_warmup_limit, per UTC day) and min_interval_s, the
 * contact policy deferring a person as the claim does, and a step found
 * outside its window (what a limit or the policy left over) moved to the
 * window's next opening, as the claim re-times it; each send's next step
 * is timed by the daemon's own SQL (wb_step_due, wb_step_sender through
 * wb_plan_next), and the windows' open spans come from it too
 * (wb_plan_windows, sql/functions/069_plan.sql). */
#ifndef WB_PLAN_H
#define WB_PLAN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <jansson.h>
#include <libpq-fe.h>
#include "warmbench/config.h"

/* ---- the simulation (pure: no database; plan_sim.c) ---- */

/* A sender as the claim sees it. */
struct wb_plan_sender {
    const struct wb_sender *cfg; /* limits, warm-up, min interval */
    long used_today;             /* sender_usage.sent of the first day */
    double last_send;            /* sender_usage.last_send_at (epoch s), or 0 */
    long first_day;              /* first UTC day (days since 1970) it sent; -1 never */
    bool paused;                 /* by its guard or an operator */
};

/* A sequence: its definition's step count and each step's least delay
 * (a lower bound for the step's due time: the timing itself is SQL's). */
struct wb_plan_seq {
    size_t n_steps;
    double *min_after;           /* n_steps seconds; 0 for "Nbd" */
    bool *task;                  /* n_steps: a manual step (no mail) */
    bool paused;
};

/* When a window is open for one sequence and one kind of person (zone,
 * country), over the plan's days: spans [open[i], close[i]) in epoch
 * seconds, sorted, as the daemon's SQL works them out (wb_plan_windows). */
struct wb_plan_window {
    double *open, *close;
    size_t n;
};

/* One pending send: step (0-based) of sequence seq to person. */
struct wb_plan_item {
    double due;                  /* epoch seconds */
    int seq, step, sender;       /* sender: index, -1 none configured */
    size_t person;
    double hold;                 /* an out-of-office hold: no step before it (0: none) */
    const struct wb_plan_window *win; /* its window; NULL: none (always open) */
    bool retry;                  /* a message to send again: the claim takes it when due */
};

/* A person and the mail they got (the contact policy counts it). */
struct wb_plan_person {
    long long cand;
    double *t;                   /* message times (epoch s) */
    int *seq;                    /* their sequences (index; -1 another) */
    size_t n, cap;
    double wait_until;           /* the latest the policy held them to; 0 never */
    int wait_step;               /* the step it held (0-based), of the target */
};

/* Asks the daemon's SQL when the next steps fall due and who sends them:
 * for v[i] (seq, step, person, due = the previous send's time), sets
 * v[i].due (NAN: never, a window with no days) and v[i].sender. 0, or -1
 * (said). */
typedef int (*wb_plan_next_fn)(void *ud, struct wb_plan_item *v, size_t n);

struct wb_plan_wait {
    size_t person;
    int step;
    double until;
};

struct wb_plan {
    /* in */
    double now;                  /* epoch seconds */
    int days;                    /* first UTC day: now's */
    int cooldown_days, max_per_30_days;
    struct wb_plan_sender *senders; size_t n_senders;
    struct wb_plan_seq *seqs; size_t n_seqs;     /* seqs[0]: the planned one */
    struct wb_plan_person *persons; size_t n_persons;
    struct wb_plan_item *items; size_t n_items, cap_items; /* pending at the start */
    struct wb_plan_window *windows; size_t n_windows; /* the items' (freed with the plan) */
    wb_plan_next_fn next; void *next_ud;
    /* out */
    long *sent;                  /* [day][sender][step] of seqs[0] */
    long *other;                 /* [day][sender]: other sequences' sends */
    long *limit;                 /* [day][sender]: the day's limit (0 none) */
    long *left;                  /* [step]: seqs[0]'s still due after the last day */
    long never;                  /* seqs[0]'s next steps that never fall due */
    long after_task;             /* seqs[0]'s steps waiting for a task to be done */
    struct wb_plan_wait *waits; size_t n_waits;  /* seqs[0]'s held by the policy */
};

/* Adds a pending send (copied). */
void wb_plan_add_item(struct wb_plan *p, const struct wb_plan_item *it);
/* Adds one message time of a person (seq: index, -1 another sequence). */
void wb_plan_person_add(struct wb_plan_person *pp, double t, int seq);
/* When the contact policy lets person get step (0-based) of seq at time
 * now (as wb_contact_ok_at, sql/functions/067_contact.sql, over the
 * person's messages so far and planned): now or earlier when nothing
 * holds them. */
double wb_plan_contact_ok_at(const struct wb_plan *p, const struct wb_plan_person *pp, int seq,
                             int step, double now);
/* The first moment at or after t when w is open (t itself without a
 * window); INFINITY when it does not open again within its spans. */
double wb_plan_window_next(const struct wb_plan_window *w, double t);
/* Runs the days; 0, or -1 when p->next failed. */
int wb_plan_run(struct wb_plan *p);
/* Frees the out arrays and everything added. */
void wb_plan_free(struct wb_plan *p);

/* The index of sent[] for (day, sender, step). */
#define WB_PLAN_AT(p, d, s, k) (((size_t)(d) * (p)->n_senders + (size_t)(s)) * (p)->seqs[0].n_steps + (size_t)(k))

/* ---- what the command read beside the simulation (plan_out.c) ---- */

#define WB_PLAN_LIST_MAX 100 /* addresses listed per skip reason */

struct wb_plan_facts {
    bool seq_paused;             /* sequences.paused_at, or "paused": true */
    char **sender_paused;        /* [n_senders]: the reason, or NULL */
    char **emails;               /* [n_persons]: the planned sequence's people */
    long would_enroll;           /* the audience's new people */
    json_t *skipped;             /* {reason: {"count": n, "emails": [...]}} */
    long active;                 /* the planned sequence's active enrollments */
    long persons_paused;         /* of those, paused by `pause --email` */
    long in_flight;              /* of those, a step on the wire now */
    long no_sender;              /* steps whose sender is not configured */
};

/* Counts one row of the audience (verdict as enroll's, email). */
void wb_plan_facts_skip(struct wb_plan_facts *f, const char *verdict, const char *email);
void wb_plan_facts_free(struct wb_plan_facts *f, size_t n_persons, size_t n_senders);
/* The plan as a JSON document (the figures --json prints, and the text
 * table is made from): see README "For sourcers". */
json_t *wb_plan_json(const struct wb_config *cfg, const struct wb_sequence *s,
                     const struct wb_plan *p, const struct wb_plan_facts *f);
void wb_plan_print(const struct wb_config *cfg, const struct wb_sequence *s,
                   const struct wb_plan *p, const struct wb_plan_facts *f, bool json, FILE *out);

/* ---- the command (plan_cli.c) ---- */

/* Exit codes: 0; 64 unknown sequence; 69 database trouble. */
int wb_cmd_plan(PGconn *c, const struct wb_config *cfg, const char *sequence, int days,
                bool json, FILE *out, FILE *err);

#endif
