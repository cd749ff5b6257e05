/* Outcome batches and their array parameters. */
#include "warmbench/outcomes.h"
#include "warmbench/buf.h"
#include "warmbench/pgtext.h"
#include "warmbench/util.h"
#include <stdlib.h>
#include <string.h>

static void oc_reserve(struct wb_outcomes *o, size_t n)
{
    if (n <= o->cap)
        return;
    o->cap = o->cap ? o->cap : 64;
    while (o->cap < n)
        o->cap *= 2;
    o->v = wb_xrealloc(o->v, o->cap * sizeof *o->v);
}

void wb_outcomes_add(struct wb_outcomes *o, int64_t id, const char *state, int code, char *text,
                     double delay_s)
{
    oc_reserve(o, o->n + 1);
    o->v[o->n++] = (struct wb_outcome){id, state, code, text ? text : wb_xstrdup(""), delay_s};
}

void wb_outcomes_move(struct wb_outcomes *to, struct wb_outcomes *from)
{
    free(to->v);
    *to = *from;
    from->v = NULL;
    from->n = from->cap = 0;
}

void wb_outcomes_requeue(struct wb_outcomes *queue, struct wb_outcomes *batch)
{
    oc_reserve(queue, queue->n + batch->n);
    memmove(queue->v + batch->n, queue->v, queue->n * sizeof *queue->v);
    memcpy(queue->v, batch->v, batch->n * sizeof *batch->v);
    queue->n += batch->n;
    batch->n = 0; /* the texts now belong to queue */
}

void wb_outcomes_clear(struct wb_outcomes *o)
{
    for (size_t i = 0; i < o->n; i++)
        free(o->v[i].text);
    o->n = 0;
}

void wb_outcomes_free(struct wb_outcomes *o)
{
    wb_outcomes_clear(o);
    free(o->v);
    o->v = NULL;
    o->cap = 0;
}

void wb_outcomes_params(const struct wb_outcomes *o, char *p[5])
{
    struct wb_buf ids, codes, delays;
    wb_buf_init(&ids);
    wb_buf_init(&codes);
    wb_buf_init(&delays);
    char **states = wb_xcalloc(o->n, sizeof *states), **texts = wb_xcalloc(o->n, sizeof *texts);
    wb_buf_putc(&ids, '{');
    wb_buf_putc(&codes, '{');
    wb_buf_putc(&delays, '{');
    for (size_t i = 0; i < o->n; i++) {
        const struct wb_outcome *x = &o->v[i];
        const char *sep = i ? "," : "";
        wb_buf_printf(&ids, "%s%lld", sep, (long long)x->id);
        wb_buf_printf(&codes, "%s%d", sep, x->code);
        wb_buf_printf(&delays, "%s%.3f", sep, x->delay_s);
        states[i] = (char *)x->state;
        texts[i] = x->text;
    }
    wb_buf_putc(&ids, '}');
    wb_buf_putc(&codes, '}');
    wb_buf_putc(&delays, '}');
    p[0] = wb_buf_steal(&ids);
    p[1] = wb_pg_array_str(states, o->n, 0);
    p[2] = wb_buf_steal(&codes);
    p[3] = wb_pg_array_str(texts, o->n, 0);
    p[4] = wb_buf_steal(&delays);
    free(states);
    free(texts);
}

void wb_outcomes_params_free(char *p[5])
{
    for (int i = 0; i < 5; i++) {
        free(p[i]);
        p[i] = NULL;
    }
}
