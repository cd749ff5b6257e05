/* A batch of outcomes waiting to be written back in one statement: the
 * SMTP results of the scheduler and the webhook results of the handoff
 * engine both have this shape (id, state, code, text, delay). */
#ifndef WB_OUTCOMES_H
#define WB_OUTCOMES_H
#include <stddef.h>
#include <stdint.h>

struct wb_outcome {
    int64_t id;
    const char *state;   /* a static string */
    int code;            /* SMTP reply code or HTTP status; 0 when none */
    char *text;          /* owned: reply line or error text */
    double delay_s;      /* retry delay, 0 when none */
};

struct wb_outcomes {
    struct wb_outcome *v;
    size_t n, cap;
};

/* Takes ownership of text (NULL stands for ""). */
void wb_outcomes_add(struct wb_outcomes *o, int64_t id, const char *state, int code, char *text,
                     double delay_s);
/* Moves everything from `from` into the empty `to`. */
void wb_outcomes_move(struct wb_outcomes *to, struct wb_outcomes *from);
/* Puts a batch that could not be written back in front of what came since,
 * so outcomes keep their order. */
void wb_outcomes_requeue(struct wb_outcomes *queue, struct wb_outcomes *batch);
void wb_outcomes_clear(struct wb_outcomes *o);
void wb_outcomes_free(struct wb_outcomes *o);
/* The batch as five array parameters: $1 bigint[] ids, $2 text[] states,
 * $3 integer[] codes, $4 text[] texts, $5 float8[] delays (malloc'd). */
void wb_outcomes_params(const struct wb_outcomes *o, char *p[5]);
void wb_outcomes_params_free(char *p[5]);

#endif
