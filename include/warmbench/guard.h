/* Deliverability guards on the daemon's side (SPEC "Deliverability"): the
 * parameters of wb_sender_guard (sql/functions/066_guard.sql), what it
 * answers (which senders are paused, and since when each has sent), and
 * the day's limit with warm-up. The scheduler asks after every batch of
 * outcomes and at every round; a paused sender is not claimed for. */
#ifndef WB_GUARD_H
#define WB_GUARD_H
#include <stdbool.h>
#include <stddef.h>
#include <libpq-fe.h>
#include "warmbench/config.h"

extern const char *const wb_q_sender_guard;

struct wb_guard_sender {
    char *id;
    char *paused;          /* the reason, or NULL */
    int days_sending;      /* whole UTC days since the first send; -1: never sent */
};

struct wb_guard_state {
    struct wb_guard_sender *v;
    size_t n;
    bool known;            /* a guard answer has been read */
};

/* $1 of wb_q_sender_guard: every sender's guard, as a JSON array (malloc'd). */
char *wb_guard_params(const struct wb_config *cfg);

/* Replaces g with the answer r. Calls on_paused(ud, sender, reason) for
 * each sender this answer paused. -1 when r is not the expected shape. */
typedef void (*wb_guard_paused_fn)(void *ud, const char *sender, const char *reason);
int wb_guard_read(struct wb_guard_state *g, PGresult *r, wb_guard_paused_fn on_paused, void *ud);

/* The sender's pause reason, or NULL. */
const char *wb_guard_paused(const struct wb_guard_state *g, const char *sender);

/* The sender's limit for today: min(daily_limit, start + step x n), n the
 * every_days periods since its first send (0 before any); 0 = none. */
int wb_warmup_limit(const struct wb_sender *s, int days_sending);
/* The same from g (a sender g does not know counts as never sent). */
int wb_guard_day_limit(const struct wb_guard_state *g, const struct wb_sender *s);

void wb_guard_state_free(struct wb_guard_state *g);

#endif
