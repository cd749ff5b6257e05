/* Batched event writer on pg_loop. Events wait in a ring; one batch at a
 * time is in flight and stays at the ring's head until its statement
 * commits, so a lost connection only means sending the same batch again. */
#include "warmbench/eventq.h"
#include "warmbench/buf.h"
#include "warmbench/log.h"
#include "warmbench/util.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY_MS 250

static const char record_sql[] =
    "SELECT wb_record_events($1::bigint[], $2::text[], $3::boolean[], $4::jsonb[], "
    "$5::timestamptz[])";

struct event {
    int64_t message_id;
    char *type;
    char *detail;
    double at;
    bool machine;
    wb_eventq_done_fn done;
    void *ud;
};

/* The pg callback's context: outlives the queue when the queue is freed
 * with a statement in flight. */
struct flight {
    struct wb_eventq *q;
};

struct wb_eventq {
    uv_loop_t *loop;
    struct wb_pg *pg;
    struct wb_eventq_opts o;
    uv_timer_t timer;
    struct event *ring;
    size_t head, len, cap;
    size_t inflight;          /* events at the head in the statement in flight */
    struct flight *flight;    /* non-NULL while a statement is in flight */
    bool warned;              /* "database away" logged once per outage */
    void (*flush_done)(void *);
    void *flush_ud;
    unsigned long long stored, refused, dropped;
};

static struct event *evq_at(struct wb_eventq *q, size_t i)
{
    return &q->ring[(q->head + i) % q->cap];
}

static void evq_grow(struct wb_eventq *q)
{
    size_t ncap = q->cap ? q->cap * 2 : 1024;
    struct event *n = wb_xmalloc(ncap * sizeof *n);
    for (size_t i = 0; i < q->len; i++)
        n[i] = *evq_at(q, i);
    free(q->ring);
    q->ring = n;
    q->head = 0;
    q->cap = ncap;
}

static void evq_pop(struct wb_eventq *q, size_t n, bool stored)
{
    for (size_t i = 0; i < n; i++) {
        struct event e = *evq_at(q, 0);
        q->head = (q->head + 1) % q->cap;
        q->len--;
        free(e.type);
        free(e.detail);
        if (e.done)
            e.done(stored, e.ud);
    }
}

static void evq_on_timer(uv_timer_t *t);

static void evq_arm(struct wb_eventq *q, unsigned ms)
{
    uv_timer_start(&q->timer, evq_on_timer, ms, 0);
}

/* Array literals: every element double-quoted with \ and " escaped, so
 * any JSON text survives the array parser. */
static void evq_put_quoted(struct wb_buf *b, const char *s)
{
    wb_buf_putc(b, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            wb_buf_putc(b, '\\');
        wb_buf_putc(b, *s);
    }
    wb_buf_putc(b, '"');
}

static void evq_put_time(struct wb_buf *b, double t)
{
    time_t s = (time_t)t;
    long us = (long)((t - (double)s) * 1e6);
    if (us < 0)
        us = 0;
    if (us > 999999)
        us = 999999;
    struct tm tm;
    gmtime_r(&s, &tm);
    char out[64];
    strftime(out, sizeof out, "%Y-%m-%d %H:%M:%S", &tm);
    wb_buf_printf(b, "\"%s.%06ld+00\"", out, us);
}

static void evq_on_result(PGresult *res, void *ud);

static void evq_send_batch(struct wb_eventq *q)
{
    if (q->flight || !q->len)
        return;
    if (!wb_pg_ready(q->pg)) {
        evq_arm(q, RETRY_MS);
        return;
    }
    size_t n = q->len < q->o.batch ? q->len : q->o.batch;
    struct wb_buf p[5];
    for (int i = 0; i < 5; i++) {
        wb_buf_init(&p[i]);
        wb_buf_putc(&p[i], '{');
    }
    for (size_t i = 0; i < n; i++) {
        struct event *e = evq_at(q, i);
        if (i)
            for (int k = 0; k < 5; k++)
                wb_buf_putc(&p[k], ',');
        wb_buf_printf(&p[0], "%lld", (long long)e->message_id);
        evq_put_quoted(&p[1], e->type);
        wb_buf_putc(&p[2], e->machine ? 't' : 'f');
        evq_put_quoted(&p[3], e->detail);
        evq_put_time(&p[4], e->at);
    }
    const char *params[5];
    for (int i = 0; i < 5; i++) {
        wb_buf_putc(&p[i], '}');
        params[i] = p[i].data;
    }
    struct flight *f = wb_xcalloc(1, sizeof *f);
    f->q = q;
    if (wb_pg_query(q->pg, record_sql, 5, params, evq_on_result, f) == 0) {
        q->flight = f;
        q->inflight = n;
    } else {
        free(f);
        evq_arm(q, RETRY_MS);
    }
    for (int i = 0; i < 5; i++)
        wb_buf_free(&p[i]);
}

/* Connection trouble, a server shutting down, a deadlock or lack of
 * resources pass; anything else (a schema mismatch) would fail forever. */
static bool evq_retryable(const PGresult *res)
{
    if (!res)
        return true;
    const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (!st)
        return true;
    static const char *const classes[] = {"08", "40", "53", "57", "58"};
    for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++)
        if (!strncmp(st, classes[i], 2))
            return true;
    return false;
}

static void evq_maybe_flushed(struct wb_eventq *q)
{
    if (q->flush_done && !q->len && !q->flight) {
        void (*done)(void *) = q->flush_done;
        q->flush_done = NULL;
        done(q->flush_ud);
    }
}

static void evq_on_result(PGresult *res, void *ud)
{
    struct flight *f = ud;
    struct wb_eventq *q = f->q;
    free(f);
    if (!q)
        return; /* the queue was freed meanwhile */
    q->flight = NULL;
    size_t n = q->inflight;
    q->inflight = 0;
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK) {
        q->warned = false;
        q->stored += n;
        evq_pop(q, n, true);
    } else if (evq_retryable(res)) {
        if (!q->warned)
            wb_warn("tracking events: %zu waiting for the database (%s)", q->len,
                    res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : "connection lost");
        q->warned = true;
        evq_arm(q, RETRY_MS);
        return;
    } else {
        wb_error("tracking events: %zu discarded: %s %s", n,
                 PQresultErrorField(res, PG_DIAG_SQLSTATE) ?: "?",
                 PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) ?: "?");
        q->dropped += n;
        evq_pop(q, n, false);
    }
    if (q->len >= q->o.batch || (q->len && q->flush_done))
        evq_arm(q, 0);
    else if (q->len)
        evq_arm(q, q->o.delay_ms);
    evq_maybe_flushed(q);
}

static void evq_on_timer(uv_timer_t *t)
{
    evq_send_batch(t->data);
}

struct wb_eventq *wb_eventq_new(uv_loop_t *loop, struct wb_pg *pg, const struct wb_eventq_opts *opts)
{
    struct wb_eventq *q = wb_xcalloc(1, sizeof *q);
    q->loop = loop;
    q->pg = pg;
    q->o.max_events = opts && opts->max_events ? opts->max_events : 100000;
    q->o.batch = opts && opts->batch ? opts->batch : 500;
    q->o.delay_ms = opts && opts->delay_ms ? opts->delay_ms : 50;
    uv_timer_init(loop, &q->timer);
    q->timer.data = q;
    return q;
}

bool wb_eventq_full(const struct wb_eventq *q)
{
    return q->len >= q->o.max_events;
}

int wb_eventq_push(struct wb_eventq *q, int64_t message_id, const char *type, bool machine,
                   const char *detail, double when, wb_eventq_done_fn done, void *ud)
{
    if (wb_eventq_full(q)) {
        q->refused++;
        return -1;
    }
    if (q->len == q->cap)
        evq_grow(q);
    struct event *e = evq_at(q, q->len);
    q->len++;
    *e = (struct event){message_id, wb_xstrdup(type), wb_xstrdup(detail ? detail : "{}"), when,
                        machine, done, ud};
    if (!q->flight) {
        if (q->len >= q->o.batch)
            evq_arm(q, 0);
        else if (!uv_is_active((uv_handle_t *)&q->timer))
            evq_arm(q, q->o.delay_ms);
    }
    return 0;
}

bool wb_eventq_forget(struct wb_eventq *q, wb_eventq_done_fn done, void *ud)
{
    for (size_t i = 0; done && i < q->len; i++) {
        struct event *e = evq_at(q, i);
        if (e->done == done && e->ud == ud) {
            e->done = NULL;
            return true;
        }
    }
    return false;
}

void wb_eventq_kick(struct wb_eventq *q)
{
    if (q->len && !q->flight)
        evq_arm(q, 0);
}

void wb_eventq_stats(const struct wb_eventq *q, struct wb_eventq_stats *out)
{
    out->queued = q->len;
    out->stored = q->stored;
    out->refused = q->refused;
    out->dropped = q->dropped;
}

void wb_eventq_flush(struct wb_eventq *q, void (*done)(void *), void *ud)
{
    q->flush_done = done;
    q->flush_ud = ud;
    if (q->len && !q->flight)
        evq_arm(q, 0);
    evq_maybe_flushed(q);
}

static void evq_on_closed(uv_handle_t *h)
{
    free(h->data);
}

void wb_eventq_free(struct wb_eventq *q)
{
    if (!q)
        return;
    if (q->flight)
        q->flight->q = NULL;
    q->flush_done = NULL;
    if (q->len)
        wb_warn("tracking events: %zu not stored at exit", q->len);
    evq_pop(q, q->len, false);
    free(q->ring);
    uv_timer_stop(&q->timer);
    uv_close((uv_handle_t *)&q->timer, evq_on_closed);
}
