/* One non-blocking libpq connection driven by a libuv loop: connects and
 * reconnects with backoff, runs queued statements one at a time in FIFO
 * order, and delivers LISTEN/NOTIFY. Nothing here ever blocks the loop. */
#ifndef WB_PG_LOOP_H
#define WB_PG_LOOP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>
#include <uv.h>

struct wb_pg;

struct wb_pg_callbacks {
    /* Each time a connection becomes ready (first and after reconnects),
     * after the remembered LISTENs are re-issued. */
    void (*on_connect)(struct wb_pg *pg, void *ud);
    /* Connection lost or attempt failed; pg_loop retries with backoff.
     * Queries in flight have already been failed (res == NULL). */
    void (*on_disconnect)(struct wb_pg *pg, const char *why, void *ud);
    void (*on_notify)(struct wb_pg *pg, const char *channel, const char *payload, void *ud);
};

/* res is owned by pg_loop (cleared after the callback returns). res == NULL
 * means the connection was lost (or pg_loop closed) before the result
 * arrived: the statement may or may not have been applied. A
 * PGRES_FATAL_ERROR result is delivered as is. */
typedef void (*wb_pg_result_fn)(PGresult *res, void *ud);

/* Starts connecting at once. conninfo is a URL or key=value string; "" means
 * libpq's environment (PGHOST, ...). application_name defaults to
 * warmbenchd unless conninfo or PGAPPNAME names one. Any callback may be
 * NULL. */
struct wb_pg *wb_pg_new(uv_loop_t *loop, const char *conninfo, const struct wb_pg_callbacks *cb,
                        void *ud);
/* Remembers channel and LISTENs on it now (when connected) and after every
 * reconnect. 0, or -1 when closing. */
int wb_pg_listen(struct wb_pg *pg, const char *channel);
/* Queues one statement with text params (NULL entries are SQL NULLs); sql
 * and params are copied. Runs FIFO, one at a time. Returns 0, or -1 when not
 * connected (the caller retries after on_connect) or when the queue is full
 * (wb_pg_full: a server that is connected but stalled must not make memory
 * grow; retry later or answer without the database), and cb is then not
 * called. */
int wb_pg_query(struct wb_pg *pg, const char *sql, int nparams, const char *const *params,
                wb_pg_result_fn cb, void *ud);
/* Like wb_pg_query, as a prepared statement named `name` (unique per SQL
 * text): planned once per connection instead of on every call, which
 * matters for the scheduler's large statements run hundreds of times a
 * second. The Prepare is queued ahead of its first use on each connection. */
int wb_pg_query_prepared(struct wb_pg *pg, const char *name, const char *sql, int nparams,
                         const char *const *params, wb_pg_result_fn cb, void *ud);
/* The most statements queued or in flight (WB_PG_MAX_PENDING unless set;
 * at least 1); internal ones (LISTENs, Prepares) are not refused. */
#define WB_PG_MAX_PENDING 4096
void wb_pg_set_max_pending(struct wb_pg *pg, size_t max);
/* True when a query would be refused for want of room. */
bool wb_pg_full(const struct wb_pg *pg);
/* Takes back a query queued with (cb, ud): one not sent yet is removed and
 * freed, one in flight keeps running but will not call back. True when
 * one was found (cb is then never called for it); false when none was
 * (already called back, or never queued). For an owner that stops
 * waiting, so that neither it nor its query outlives the wait. */
bool wb_pg_forget(struct wb_pg *pg, wb_pg_result_fn cb, void *ud);
/* How long (ms, loop time) the statement in flight has been running; 0
 * when none is. A long one means a stalled server: a caller that can
 * answer without the database need not queue behind it. */
uint64_t wb_pg_busy_ms(const struct wb_pg *pg);
/* The loop pg runs on. */
uv_loop_t *wb_pg_loop(const struct wb_pg *pg);
/* Connected, LISTENs restored, accepting queries. */
bool wb_pg_ready(const struct wb_pg *pg);
/* Statements queued or in flight. */
size_t wb_pg_pending(const struct wb_pg *pg);
/* Reconnections since wb_pg_new (0 until a connection is lost and regained). */
unsigned wb_pg_reconnects(const struct wb_pg *pg);
/* Stops everything: pending queries get res == NULL (synchronously, before
 * this returns), no other callback runs afterwards, uv handles close
 * asynchronously and closed(ud) runs when it is safe to free everything;
 * pg itself is freed right after closed returns. Safe to call from any
 * pg_loop callback; a second call is ignored. */
void wb_pg_close(struct wb_pg *pg, void (*closed)(void *ud), void *ud);

#endif
