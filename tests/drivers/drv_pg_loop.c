/* Drives pg_loop against a real server for tests/integration/test_pg_loop.py.
 * Usage: drv_pg_loop CONNINFO MODE [N]
 *   basic N     N queries queued at once, FIFO and values checked, plus an
 *               error and a large parameter; prints "ok N"
 *   app         prints "app NAME db NAME" (application_name, database)
 *   notify K    LISTENs on wb_a (before connect) and "Wb B" (after); prints
 *               "ready C" per connection, "notify CHANNEL PAYLOAD" per
 *               notification; exits after K
 *   reconnect T a query every 50 ms for T ms; prints counts at the end
 *   bad T       expects no server: counts on_disconnect calls for T ms
 *   inflight    a long query is killed; it must come back as res == NULL
 *   close       wb_pg_close with queries pending, and from a result callback
 *   cap         the queue's cap (wb_pg_set_max_pending, wb_pg_full), queries
 *               taken back (wb_pg_forget: queued and in flight) and the
 *               age of the one in flight (wb_pg_busy_ms); prints
 *               "cap answered N"
 * Exit 0 when every check held, 1 otherwise. Progress lines are flushed so
 * the test can act on them. */
#include "warmbench/pg_loop.h"
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static uv_loop_t *loop;
static struct wb_pg *pg;
static const char *conninfo;
static const char *mode;
static long arg_n;
static int failures;
static uv_timer_t tick, stop_timer;

static long counter[16];
enum { C_OK, C_LOST, C_ERR, C_SKIP, C_CONN, C_DISC, C_NOTIFY, C_OK_SINCE, C_NULLS, C_CLOSED };

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void check(int cond, const char *what)
{
    if (!cond) {
        failures++;
        say("FAIL %s", what);
    }
}

static void on_closed(void *ud)
{
    (void)ud;
    counter[C_CLOSED]++;
}

static void finish(void)
{
    if (!uv_is_closing((uv_handle_t *)&tick))
        uv_close((uv_handle_t *)&tick, NULL);
    if (!uv_is_closing((uv_handle_t *)&stop_timer))
        uv_close((uv_handle_t *)&stop_timer, NULL);
    wb_pg_close(pg, on_closed, NULL);
}

static void on_disconnect(struct wb_pg *p, const char *why, void *ud)
{
    (void)p, (void)ud;
    counter[C_DISC]++;
    check(!wb_pg_ready(p), "not ready in on_disconnect");
    check(wb_pg_query(p, "SELECT 1", 0, NULL, NULL, NULL) == -1, "query refused while down");
    say("disconnect %s", why);
}

/* ---- basic ---- */
#define BIG_LEN (8u << 20)

static void on_basic_row(PGresult *res, void *ud)
{
    long i = (long)(intptr_t)ud;
    static long expect;
    check(i == expect++, "FIFO order");
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
        check(0, "basic query ok");
        return;
    }
    check(atol(PQgetvalue(res, 0, 0)) == 2 * i, "value doubled");
    check(!strcmp(PQgetvalue(res, 0, 1), "t"), "NULL param is NULL");
    counter[C_OK]++;
}

static void on_basic_error(PGresult *res, void *ud)
{
    (void)ud;
    check(res && PQresultStatus(res) == PGRES_FATAL_ERROR, "error delivered as result");
    if (res)
        check(!strcmp(PQresultErrorField(res, PG_DIAG_SQLSTATE), "22012"), "division_by_zero");
    counter[C_ERR]++;
}

static void on_basic_big(PGresult *res, void *ud)
{
    (void)ud;
    check(res && PQresultStatus(res) == PGRES_TUPLES_OK && atol(PQgetvalue(res, 0, 0)) == BIG_LEN,
          "large parameter arrives whole");
    say("ok %ld", counter[C_OK]);
    check(wb_pg_pending(pg) == 0, "nothing pending at the end");
    finish();
}

static void basic_connect(struct wb_pg *p)
{
    char num[32]; /* reused for every query: pg_loop must copy params */
    const char *params[2] = {num, NULL};
    for (long i = 0; i < arg_n; i++) {
        snprintf(num, sizeof num, "%ld", i);
        check(wb_pg_query(p, "SELECT $1::int * 2, $2::text IS NULL", 2, params, on_basic_row,
                          (void *)(intptr_t)i) == 0, "query accepted");
        if (i == arg_n / 2)
            wb_pg_query(p, "SELECT 1/0", 0, NULL, on_basic_error, NULL);
    }
    char *big = malloc(BIG_LEN + 1);
    memset(big, 'x', BIG_LEN);
    big[BIG_LEN] = '\0';
    const char *bp[1] = {big};
    wb_pg_query(p, "SELECT length($1)", 1, bp, on_basic_big, NULL);
    free(big);
    check(wb_pg_pending(p) == (size_t)arg_n + 2, "pending counts the queue");
}

/* ---- app ---- */
static void on_app(PGresult *res, void *ud)
{
    (void)ud;
    check(res && PQresultStatus(res) == PGRES_TUPLES_OK, "app query");
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK)
        say("app %s db %s", PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
    finish();
}

/* ---- notify ---- */
static void on_notify(struct wb_pg *p, const char *channel, const char *payload, void *ud)
{
    (void)p, (void)ud;
    say("notify %s %s", channel, payload);
    if (++counter[C_NOTIFY] == arg_n)
        finish();
}

/* ---- reconnect ---- */
static void on_reconnect_row(PGresult *res, void *ud)
{
    (void)ud;
    if (!res)
        counter[C_LOST]++;
    else if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        counter[C_OK]++;
        counter[C_OK_SINCE]++;
    } else {
        counter[C_ERR]++;
        say("error %s", PQresultErrorMessage(res));
    }
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
    if (!wb_pg_ready(pg) || wb_pg_query(pg, "SELECT 1", 0, NULL, on_reconnect_row, NULL) < 0)
        counter[C_SKIP]++;
}

static void on_stop(uv_timer_t *t)
{
    (void)t;
    finish();
}

/* ---- inflight ---- */
static void on_inflight_sleep(PGresult *res, void *ud)
{
    (void)ud;
    check(res == NULL, "killed statement comes back as NULL");
    say(res ? "result" : "lost");
    counter[C_NULLS] += !res;
}

static void on_inflight_after(PGresult *res, void *ud)
{
    (void)ud;
    check(res && PQresultStatus(res) == PGRES_TUPLES_OK, "query after reconnect");
    say("ok after reconnect");
    finish();
}

/* ---- close ---- */
static int close_round;

static void on_close_null(PGresult *res, void *ud)
{
    (void)ud;
    check(res == NULL, "pending query failed by close");
    counter[C_NULLS]++;
}

static void on_close_second(PGresult *res, void *ud);

static void on_close_first(PGresult *res, void *ud)
{
    (void)ud;
    check(res != NULL, "first query answered");
    counter[C_OK]++;
}

static void close_connect(struct wb_pg *p)
{
    if (close_round == 0) {
        /* Close with eleven statements queued: all get NULL before close returns. */
        wb_pg_query(p, "SELECT pg_sleep(0.2)", 0, NULL, on_close_null, NULL);
        for (int i = 0; i < 10; i++)
            wb_pg_query(p, "SELECT 1", 0, NULL, on_close_null, NULL);
        wb_pg_close(p, on_closed, NULL);
        check(counter[C_NULLS] == 11, "close fails every pending query");
        check(wb_pg_query(p, "SELECT 1", 0, NULL, NULL, NULL) == -1, "no query after close");
        return;
    }
    /* Close from inside a result callback. */
    wb_pg_query(p, "SELECT 1", 0, NULL, on_close_first, NULL);
    wb_pg_query(p, "SELECT 2", 0, NULL, on_close_second, NULL);
    for (int i = 0; i < 3; i++)
        wb_pg_query(p, "SELECT 3", 0, NULL, on_close_null, NULL);
}

static void on_close_second(PGresult *res, void *ud)
{
    (void)ud;
    check(res != NULL, "second query answered");
    counter[C_OK]++;
    finish();
    check(counter[C_NULLS] == 14, "close inside a callback fails the rest");
}

/* ---- cap ---- */
static void on_cap_never(PGresult *res, void *ud)
{
    (void)res, (void)ud;
    check(0, "a query taken back called back");
}

static void on_cap_row(PGresult *res, void *ud)
{
    check(res && PQresultStatus(res) == PGRES_TUPLES_OK, "queued query answered");
    counter[C_OK]++;
    if ((intptr_t)ud == 99) {
        check(wb_pg_pending(pg) == 0, "queue empty at the end");
        check(wb_pg_busy_ms(pg) == 0, "nothing in flight at the end");
        say("cap answered %ld", counter[C_OK]);
        finish();
    }
}

static void on_cap_tick(uv_timer_t *t)
{
    (void)t;
    uint64_t busy = wb_pg_busy_ms(pg);
    check(busy >= 250 && busy < 5000, "the statement in flight's age");
    /* Taken back while in flight: its result will be dropped. */
    check(wb_pg_forget(pg, on_cap_never, (void *)1), "forget in flight");
    check(!wb_pg_forget(pg, on_cap_never, (void *)1), "forget twice");
}

static void cap_connect(struct wb_pg *p)
{
    wb_pg_set_max_pending(p, 5);
    check(wb_pg_query(p, "SELECT pg_sleep(0.6)", 0, NULL, on_cap_never, (void *)1) == 0, "q1");
    for (intptr_t i = 2; i <= 5; i++)
        check(wb_pg_query(p, "SELECT 1", 0, NULL, i == 3 ? on_cap_never : on_cap_row,
                          (void *)i) == 0, "queued under the cap");
    check(wb_pg_full(p), "full at the cap");
    check(wb_pg_query(p, "SELECT 1", 0, NULL, on_cap_row, NULL) == -1, "refused at the cap");
    check(wb_pg_forget(p, on_cap_never, (void *)3), "forget a queued one");
    check(!wb_pg_forget(p, on_cap_row, (void *)42), "forget an unknown one");
    check(wb_pg_pending(p) == 4 && !wb_pg_full(p), "room again");
    check(wb_pg_query(p, "SELECT 1", 0, NULL, on_cap_row, (void *)99) == 0, "queued again");
    uv_timer_start(&tick, on_cap_tick, 400, 0);
}

/* ---- common ---- */
static void on_connect(struct wb_pg *p, void *ud)
{
    (void)ud;
    counter[C_CONN]++;
    counter[C_OK_SINCE] = 0;
    check(wb_pg_ready(p), "ready in on_connect");
    if (!strcmp(mode, "basic")) {
        basic_connect(p);
    } else if (!strcmp(mode, "app")) {
        wb_pg_query(p, "SELECT current_setting('application_name'), current_database()", 0, NULL,
                    on_app, NULL);
    } else if (!strcmp(mode, "notify")) {
        wb_pg_listen(p, "Wb B"); /* the second time it is already known */
        say("ready %ld", counter[C_CONN]);
    } else if (!strcmp(mode, "reconnect")) {
        say("connect %ld", counter[C_CONN]);
    } else if (!strcmp(mode, "inflight")) {
        if (counter[C_CONN] == 1) {
            wb_pg_query(p, "SELECT pg_sleep(60)", 0, NULL, on_inflight_sleep, NULL);
            say("sent");
        } else {
            wb_pg_query(p, "SELECT 1", 0, NULL, on_inflight_after, NULL);
        }
    } else if (!strcmp(mode, "close")) {
        close_connect(p);
    } else if (!strcmp(mode, "cap")) {
        cap_connect(p);
    }
}

static const struct wb_pg_callbacks callbacks = {on_connect, on_disconnect, on_notify};

static double cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: drv_pg_loop CONNINFO MODE [N]\n");
        return 64;
    }
    conninfo = argv[1];
    mode = argv[2];
    arg_n = argc > 3 ? atol(argv[3]) : 0;
    loop = uv_default_loop();
    uv_timer_init(loop, &tick);
    uv_timer_init(loop, &stop_timer);

    pg = wb_pg_new(loop, conninfo, &callbacks, NULL);
    check(!wb_pg_ready(pg), "not ready before the loop runs");
    check(wb_pg_query(pg, "SELECT 1", 0, NULL, NULL, NULL) == -1, "query refused before connect");
    if (!strcmp(mode, "notify"))
        wb_pg_listen(pg, "wb_a");
    if (!strcmp(mode, "reconnect")) {
        uv_timer_start(&tick, on_tick, 50, 50);
        uv_timer_start(&stop_timer, on_stop, (uint64_t)arg_n, 0);
    } else if (!strcmp(mode, "bad")) {
        uv_timer_start(&stop_timer, on_stop, (uint64_t)arg_n, 0);
    }
    uv_run(loop, UV_RUN_DEFAULT);
    if (!strcmp(mode, "close") && close_round++ == 0) {
        /* Second round on a fresh connection. */
        check(counter[C_CLOSED] == 1, "closed() ran");
        pg = wb_pg_new(loop, conninfo, &callbacks, NULL);
        uv_run(loop, UV_RUN_DEFAULT);
        check(counter[C_CLOSED] == 2, "closed() ran again");
        say("closed nulls %ld ok %ld", counter[C_NULLS], counter[C_OK]);
    }
    check(counter[C_CLOSED] == 1 + (close_round > 0), "closed() ran once per close");
    if (!strcmp(mode, "reconnect"))
        say("done ok %ld lost %ld errors %ld skipped %ld connects %ld disconnects %ld "
            "ok_since_connect %ld",
            counter[C_OK], counter[C_LOST], counter[C_ERR], counter[C_SKIP], counter[C_CONN],
            counter[C_DISC], counter[C_OK_SINCE]);
    if (!strcmp(mode, "bad"))
        say("disconnects %ld connects %ld cpu_ms %.0f", counter[C_DISC], counter[C_CONN], cpu_ms());
    check(uv_loop_close(loop) == 0, "every handle closed");
    return failures ? 1 : 0;
}
