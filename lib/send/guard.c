/* Deliverability guards, daemon side: see guard.h. */
#include "warmbench/guard.h"
#include "warmbench/util.h"
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

const char *const wb_q_sender_guard =
    "SELECT sender, paused_reason, newly, "
    "((now() AT TIME ZONE 'UTC')::date - first_day) FROM wb_sender_guard($1::jsonb)";

char *wb_guard_params(const struct wb_config *cfg)
{
    json_t *a = json_array();
    for (size_t i = 0; i < cfg->n_senders; i++) {
        const struct wb_sender *s = &cfg->senders[i];
        json_array_append_new(a, json_pack("{s:s, s:f, s:f, s:i, s:i}", "sender", s->id,
                                           "max_bounce_rate", s->guard.max_bounce_rate,
                                           "max_complaint_rate", s->guard.max_complaint_rate,
                                           "min_sample", s->guard.min_sample, "window_days",
                                           s->guard.window_days));
    }
    char *out = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return out ? out : wb_xstrdup("[]");
}

void wb_guard_state_free(struct wb_guard_state *g)
{
    for (size_t i = 0; i < g->n; i++) {
        free(g->v[i].id);
        free(g->v[i].paused);
    }
    free(g->v);
    *g = (struct wb_guard_state){0};
}

int wb_guard_read(struct wb_guard_state *g, PGresult *r, wb_guard_paused_fn on_paused, void *ud)
{
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQnfields(r) != 4)
        return -1;
    wb_guard_state_free(g);
    int n = PQntuples(r);
    g->v = wb_xcalloc((size_t)n + 1, sizeof *g->v);
    for (int i = 0; i < n; i++) {
        struct wb_guard_sender *s = &g->v[g->n++];
        s->id = wb_xstrdup(PQgetvalue(r, i, 0));
        s->paused = PQgetisnull(r, i, 1) ? NULL : wb_xstrdup(PQgetvalue(r, i, 1));
        s->days_sending = PQgetisnull(r, i, 3) ? -1 : atoi(PQgetvalue(r, i, 3));
        if (s->paused && !strcmp(PQgetvalue(r, i, 2), "t") && on_paused)
            on_paused(ud, s->id, s->paused);
    }
    g->known = true;
    return 0;
}

static const struct wb_guard_sender *guard_find(const struct wb_guard_state *g, const char *id)
{
    for (size_t i = 0; i < g->n; i++)
        if (!strcmp(g->v[i].id, id))
            return &g->v[i];
    return NULL;
}

const char *wb_guard_paused(const struct wb_guard_state *g, const char *sender)
{
    const struct wb_guard_sender *s = guard_find(g, sender);
    return s ? s->paused : NULL;
}

int wb_warmup_limit(const struct wb_sender *s, int days_sending)
{
    if (!s->warmup.enabled)
        return s->daily_limit;
    long n = days_sending > 0 ? days_sending / (s->warmup.every_days > 0 ? s->warmup.every_days : 1)
                              : 0;
    long w = (long)s->warmup.start + (long)s->warmup.step * n;
    if (w > INT_MAX)
        w = INT_MAX;
    if (s->daily_limit > 0 && s->daily_limit < w)
        return s->daily_limit;
    return (int)w;
}

int wb_guard_day_limit(const struct wb_guard_state *g, const struct wb_sender *s)
{
    const struct wb_guard_sender *gs = guard_find(g, s->id);
    return wb_warmup_limit(s, gs ? gs->days_sending : -1);
}
