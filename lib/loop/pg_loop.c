/* libpq on a libuv loop: one uv_poll on PQsocket, a FIFO of statements with
 * one in flight, reconnect with exponential backoff, LISTEN/NOTIFY. Host
 * names are resolved off the loop by pg_dns.c. */
#include "warmbench/pg_loop.h"
#include "warmbench/buf.h"
#include "warmbench/db.h"
#include "warmbench/log.h"
#include "warmbench/pg_dns.h"
#include "warmbench/pg_sync_check.h"
#include "warmbench/util.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/stat.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000
/* With several hosts a lost connection is most likely a failover: a
 * standby promoted a few seconds later is found within this much. */
#define BACKOFF_MAX_MULTI_MS 2000
/* libpq leaves connect_timeout to the caller in non-blocking mode; this
 * applies when conninfo sets none. */
#define CONNECT_TIMEOUT_MS 10000
#define MAX_PARAMS 65535

enum pg_state {
    PG_WAITING,    /* no connection; the timer runs until the next attempt */
    PG_RESOLVING,  /* host names resolving off the loop; the timer is the deadline */
    PG_CONNECTING, /* PQconnectPoll under way; the timer is the deadline */
    PG_RESTORING,  /* connected, re-issuing LISTENs before on_connect */
    PG_READY,
    PG_BROKEN,     /* loss noticed; the timer reports it on the next tick */
    PG_CLOSED,
};

struct pg_query {
    STAILQ_ENTRY(pg_query) link;
    char *sql;
    char **params;
    int nparams;
    bool simple; /* internal LISTENs: simple protocol, several statements */
    char *stmt;  /* prepared statement: its name (sql is then its text) */
    bool prepare; /* internal: PQsendPrepare of stmt, before its first use */
    wb_pg_result_fn cb;
    void *ud;
};
STAILQ_HEAD(pg_queries, pg_query);

struct wb_pg {
    uv_loop_t *loop;
    char *conninfo;
    struct wb_pg_callbacks cb;
    void *ud;
    enum pg_state state;
    PGconn *conn;
    uv_poll_t *poll; /* heap: a closing handle outlives the socket it watched */
    int poll_fd;
    ino_t poll_ino;
    int poll_events;
    bool want_write; /* PQflush returned 1 */
    uv_timer_t timer;
    uint64_t backoff_ms, backoff_max_ms;
    unsigned connects;
    uint64_t rng; /* xorshift state for backoff jitter */
    char *why; /* reason for the loss PG_BROKEN will report */
    struct pg_queries todo; /* not sent yet */
    struct pg_query *inflight;
    uint64_t sent_at; /* uv_now when the statement in flight was sent */
    PGresult *last; /* the in-flight statement's latest result */
    size_t pending;
    size_t max_pending; /* wb_pg_query refuses beyond it */
    char **channels;
    size_t nchannels;
    char **prepared; /* statement names prepared (or queued) on this connection */
    size_t nprepared;
    unsigned refs; /* open uv handles, and dns until its lookups are over; freed at 0 */
    struct wb_pg_dns *dns; /* host names of this attempt (pg_dns.h) */
    void (*closed)(void *ud);
    void *closed_ud;
};

static void pgl_on_poll(uv_poll_t *h, int status, int events);
static void pgl_on_timer(uv_timer_t *t);
static void pgl_pump(struct wb_pg *pg);

static bool pgl_live(const struct wb_pg *pg)
{
    return pg->state == PG_RESTORING || pg->state == PG_READY;
}

static void pgl_free_query(struct pg_query *q)
{
    for (int i = 0; i < q->nparams; i++)
        free(q->params[i]);
    free(q->params);
    free(q->sql);
    free(q->stmt);
    free(q);
}

/* Prepared statements belong to a connection: a new one starts with none. */
static void pgl_forget_prepared(struct wb_pg *pg)
{
    for (size_t i = 0; i < pg->nprepared; i++)
        free(pg->prepared[i]);
    free(pg->prepared);
    pg->prepared = NULL;
    pg->nprepared = 0;
}

static void pgl_finish_close(struct wb_pg *pg)
{
    if (pg->closed)
        pg->closed(pg->closed_ud);
    for (size_t i = 0; i < pg->nchannels; i++)
        free(pg->channels[i]);
    free(pg->channels);
    free(pg->conninfo);
    free(pg->why);
    free(pg);
}

static void pgl_unref(struct wb_pg *pg)
{
    if (--pg->refs == 0)
        pgl_finish_close(pg);
}

static void pgl_on_handle_closed(uv_handle_t *h)
{
    struct wb_pg *pg = h->data;
    if (h != (uv_handle_t *)&pg->timer)
        free(h);
    pgl_unref(pg);
}

static void pgl_unwatch(struct wb_pg *pg)
{
    if (!pg->poll)
        return;
    /* Stopping first takes the fd out of epoll before libpq closes it. */
    uv_poll_stop(pg->poll);
    uv_close((uv_handle_t *)pg->poll, pgl_on_handle_closed);
    pg->poll = NULL;
    pg->poll_events = 0;
}

/* Points the one poll handle at libpq's current socket with these events.
 * libpq may swap sockets while connecting (next host or address, SSL
 * retry), and the new one can reuse the old number: the inode tells. */
static int pgl_watch(struct wb_pg *pg, int events)
{
    int fd = PQsocket(pg->conn);
    if (fd < 0)
        return UV_EBADF;
    /* Once connected the socket stays: spare the fstat per statement. */
    struct stat st;
    ino_t ino = pg->poll_ino;
    if (!pg->poll || pg->state == PG_CONNECTING)
        ino = fstat(fd, &st) == 0 ? st.st_ino : 0;
    if (pg->poll && (fd != pg->poll_fd || ino != pg->poll_ino))
        pgl_unwatch(pg);
    if (!pg->poll) {
        uv_poll_t *p = wb_xmalloc(sizeof *p);
        int err = uv_poll_init(pg->loop, p, fd);
        if (err) {
            free(p);
            return err;
        }
        p->data = pg;
        pg->refs++;
        pg->poll = p;
        pg->poll_fd = fd;
        pg->poll_ino = ino;
    }
    if (events != pg->poll_events) {
        int err = uv_poll_start(pg->poll, events, pgl_on_poll);
        if (err)
            return err;
        pg->poll_events = events;
    }
    return 0;
}

/* Notes a lost connection; callbacks run from the timer on the next tick,
 * so no caller of wb_pg_query or wb_pg_listen is re-entered. */
static void pgl_lose(struct wb_pg *pg, const char *why)
{
    if (pg->state == PG_BROKEN || pg->state == PG_CLOSED || pg->state == PG_WAITING)
        return;
    free(pg->why);
    /* libpq's messages span lines ("\n\tIs the server running..."); the
     * reason is handed on as one line. */
    const char *src = why && *why ? why : "connection lost";
    char *out = pg->why = wb_xmalloc(strlen(src) + 1);
    for (; *src; src++) {
        if (*src == '\n' || *src == '\t' || *src == '\r') {
            if (out > pg->why && out[-1] != ' ')
                *out++ = ' ';
        } else {
            *out++ = *src;
        }
    }
    while (out > pg->why && out[-1] == ' ')
        out--;
    *out = '\0';
    pg->state = PG_BROKEN;
    wb_pg_dns_cancel(pg->dns); /* a lookup still running only lets go */
    pgl_unwatch(pg);
    uv_timer_start(&pg->timer, pgl_on_timer, 0, 0);
}

static void pgl_drop_connection(struct wb_pg *pg)
{
    pgl_forget_prepared(pg);
    pgl_unwatch(pg);
    PQclear(pg->last);
    pg->last = NULL;
    if (pg->conn)
        PQfinish(pg->conn);
    pg->conn = NULL;
    pg->want_write = false;
}

/* Pops before calling back: a callback may close pg, which drains the rest. */
static void pgl_fail_all(struct wb_pg *pg)
{
    for (;;) {
        struct pg_query *q = pg->inflight;
        if (q) {
            pg->inflight = NULL;
        } else if ((q = STAILQ_FIRST(&pg->todo))) {
            STAILQ_REMOVE_HEAD(&pg->todo, link);
        } else {
            break;
        }
        pg->pending--;
        if (q->cb)
            q->cb(NULL, q->ud);
        pgl_free_query(q);
    }
}

static void pgl_conn_lost(struct wb_pg *pg)
{
    pgl_drop_connection(pg);
    pg->state = PG_WAITING;
    pgl_fail_all(pg);
    if (pg->state == PG_CLOSED)
        return;
    uint64_t base = pg->backoff_ms;
    pg->backoff_ms = base * 2 > pg->backoff_max_ms ? pg->backoff_max_ms : base * 2;
    /* +-20% jitter: daemons cut off together do not all come back at once. */
    pg->rng ^= pg->rng << 13;
    pg->rng ^= pg->rng >> 7;
    pg->rng ^= pg->rng << 17;
    uint64_t delay = base * 4 / 5 + pg->rng % (base * 2 / 5 + 1);
    /* Armed before on_disconnect, so a close from there stops it. */
    uv_timer_start(&pg->timer, pgl_on_timer, delay, 0);
    wb_debug("database: %s; next attempt in %llu ms", pg->why, (unsigned long long)delay);
    if (pg->cb.on_disconnect)
        pg->cb.on_disconnect(pg, pg->why, pg->ud);
}

static uint64_t pgl_connect_timeout_ms(PGconn *c)
{
    uint64_t ms = CONNECT_TIMEOUT_MS;
    PQconninfoOption *opts = PQconninfo(c);
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (!strcmp(o->keyword, "connect_timeout") && o->val && atoi(o->val) > 0)
            ms = (uint64_t)(atoi(o->val) < 2 ? 2 : atoi(o->val)) * 1000; /* libpq's floor */
    PQconninfoFree(opts);
    return ms;
}

static void pgl_on_notice(void *arg, const PGresult *res)
{
    (void)arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    if (!msg)
        msg = PQresultErrorMessage(res);
    /* Notices such as "already exists, skipping" are chatter; a WARNING or
     * a FATAL sent to an idle session (shutdown) is worth an operator's eye. */
    if (sev && (!strcmp(sev, "WARNING") || !strcmp(sev, "FATAL") || !strcmp(sev, "PANIC")))
        wb_warn("database: %s: %s", sev, msg);
    else
        wb_debug("database: %s: %s", sev ? sev : "NOTICE", msg);
}

static void pgl_start_libpq(struct wb_pg *pg)
{
    /* dbname with expand_dbname takes URLs and key=value strings whole; ""
     * is ignored, leaving libpq's environment. A later hostaddr overrides
     * the expanded one. The fallback name yields to application_name in
     * conninfo and to PGAPPNAME. */
    struct wb_buf host, hostaddr, port;
    wb_buf_init(&host);
    wb_buf_init(&hostaddr);
    wb_buf_init(&port);
    wb_pg_dns_params(pg->dns, &host, &hostaddr, &port);
    /* Entries before dbname are defaults conninfo may override: keepalives
     * notice a silently vanished server in about a minute, not hours.
     * options comes after: JIT off, then conninfo's own (wb_db_options). */
    char *options = wb_db_options(pg->conninfo);
    const char *keys[] = {"keepalives_idle", "keepalives_interval", "keepalives_count",
                          "dbname", "options", "fallback_application_name", "host", "hostaddr",
                          "port", NULL};
    const char *vals[] = {"30", "10", "3", pg->conninfo, options, "warmbenchd", host.data,
                          hostaddr.data, port.data, NULL};
    pg->state = PG_CONNECTING;
    pg->conn = PQconnectStartParams(keys, vals, 1);
    free(options);
    if (pg->conn)
        PQsetNoticeReceiver(pg->conn, pgl_on_notice, pg);
    wb_buf_free(&host);
    wb_buf_free(&hostaddr);
    wb_buf_free(&port);
    wb_pg_dns_cancel(pg->dns);
    if (!pg->conn) {
        pgl_lose(pg, "out of memory starting a database connection");
        return;
    }
    if (PQstatus(pg->conn) == CONNECTION_BAD) {
        pgl_lose(pg, PQerrorMessage(pg->conn));
        return;
    }
    uv_timer_start(&pg->timer, pgl_on_timer, pgl_connect_timeout_ms(pg->conn), 0);
    /* libpq's rule: start as if PQconnectPoll had asked for writability. */
    int err = pgl_watch(pg, UV_WRITABLE);
    if (err)
        pgl_lose(pg, uv_strerror(err));
}

/* Names resolved (why NULL) or not: the attempt goes on or is lost. */
static void pgl_on_resolved(const char *why, void *ud)
{
    struct wb_pg *pg = ud;
    if (why)
        pgl_lose(pg, why);
    else
        pgl_start_libpq(pg);
}

static void pgl_start_connect(struct wb_pg *pg)
{
    int rc = wb_pg_dns_start(pg->dns, pg->conninfo);
    if (rc == 0) {
        pgl_start_libpq(pg);
        return;
    }
    pg->state = PG_RESOLVING;
    uv_timer_start(&pg->timer, pgl_on_timer, CONNECT_TIMEOUT_MS, 0);
    if (rc < 0)
        pgl_lose(pg, uv_strerror(rc));
}

static void pgl_enqueue(struct wb_pg *pg, struct pg_query *q)
{
    STAILQ_INSERT_TAIL(&pg->todo, q, link);
    pg->pending++;
}

/* Queues "LISTEN a; LISTEN b; ..." as one simple-protocol round trip. */
static int pgl_queue_listen(struct wb_pg *pg, char *const *channels, size_t n, wb_pg_result_fn cb)
{
    struct wb_buf sql;
    wb_buf_init(&sql);
    for (size_t i = 0; i < n; i++) {
        char *id = PQescapeIdentifier(pg->conn, channels[i], strlen(channels[i]));
        if (!id) {
            wb_buf_free(&sql);
            return -1;
        }
        wb_buf_printf(&sql, "LISTEN %s;", id);
        PQfreemem(id);
    }
    struct pg_query *q = wb_xcalloc(1, sizeof *q);
    q->sql = wb_buf_steal(&sql);
    q->simple = true;
    q->cb = cb;
    q->ud = pg;
    pgl_enqueue(pg, q);
    return 0;
}

static void pgl_ready(struct wb_pg *pg)
{
    pg->state = PG_READY;
    pg->backoff_ms = BACKOFF_MIN_MS;
    if (pg->cb.on_connect)
        pg->cb.on_connect(pg, pg->ud);
}

static void pgl_on_listened(PGresult *res, void *ud)
{
    (void)ud;
    if (!res || PQresultStatus(res) == PGRES_COMMAND_OK)
        return;
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    wb_error("database: LISTEN failed: %s %s", state ? state : "", PQresultErrorMessage(res));
}

static void pgl_on_restored(PGresult *res, void *ud)
{
    struct wb_pg *pg = ud;
    if (!res)
        return; /* lost again or closed: nothing to announce */
    pgl_on_listened(res, ud);
    pgl_ready(pg);
}

static int pgl_update_watch(struct wb_pg *pg)
{
    int err = pgl_watch(pg, UV_READABLE | (pg->want_write ? UV_WRITABLE : 0));
    if (err)
        pgl_lose(pg, uv_strerror(err));
    return err ? -1 : 0;
}

/* Pushes libpq's output buffer; writability matters only while it is not
 * empty, else the poll would wake the loop for nothing. */
static int pgl_flush(struct wb_pg *pg)
{
    int r = PQflush(pg->conn);
    if (r < 0) {
        pgl_lose(pg, PQerrorMessage(pg->conn));
        return -1;
    }
    pg->want_write = r == 1;
    return pgl_update_watch(pg);
}

static void pgl_connected(struct wb_pg *pg)
{
    uv_timer_stop(&pg->timer);
    if (PQsetnonblocking(pg->conn, 1) != 0) {
        pgl_lose(pg, PQerrorMessage(pg->conn));
        return;
    }
    pg->state = PG_RESTORING;
    pg->connects++;
    if (pgl_update_watch(pg) < 0)
        return;
    if (pg->nchannels == 0) {
        pgl_ready(pg);
        return;
    }
    if (pgl_queue_listen(pg, pg->channels, pg->nchannels, pgl_on_restored) < 0) {
        pgl_lose(pg, PQerrorMessage(pg->conn));
        return;
    }
    pgl_pump(pg);
}

static void pgl_connect_step(struct wb_pg *pg)
{
    int err = 0;
    switch (PQconnectPoll(pg->conn)) {
    case PGRES_POLLING_READING:
        err = pgl_watch(pg, UV_READABLE);
        break;
    case PGRES_POLLING_WRITING:
        err = pgl_watch(pg, UV_WRITABLE);
        break;
    case PGRES_POLLING_OK:
        pgl_connected(pg);
        return;
    default:
        pgl_lose(pg, PQerrorMessage(pg->conn));
        return;
    }
    if (err)
        pgl_lose(pg, uv_strerror(err));
}

/* Sends the next statement when none is in flight. */
static void pgl_pump(struct wb_pg *pg)
{
    struct pg_query *q = STAILQ_FIRST(&pg->todo);
    if (!pgl_live(pg) || pg->inflight || !q)
        return;
    STAILQ_REMOVE_HEAD(&pg->todo, link);
    pg->inflight = q;
    pg->sent_at = uv_now(pg->loop);
    int ok;
    if (q->simple)
        ok = PQsendQuery(pg->conn, q->sql);
    else if (q->prepare)
        ok = PQsendPrepare(pg->conn, q->stmt, q->sql, q->nparams, NULL);
    else if (q->stmt)
        ok = PQsendQueryPrepared(pg->conn, q->stmt, q->nparams, (const char *const *)q->params,
                                 NULL, NULL, 0);
    else
        ok = PQsendQueryParams(pg->conn, q->sql, q->nparams, NULL,
                               (const char *const *)q->params, NULL, NULL, 0);
    if (!ok) {
        pgl_lose(pg, PQerrorMessage(pg->conn));
        return;
    }
    pgl_flush(pg);
}

static void pgl_drain_notifies(struct wb_pg *pg)
{
    PGnotify *n;
    while (pgl_live(pg) && (n = PQnotifies(pg->conn))) {
        if (pg->cb.on_notify)
            pg->cb.on_notify(pg, n->relname, n->extra, pg->ud);
        PQfreemem(n);
    }
}

/* Hands back each completed statement, then sends the next. A statement
 * that ends with the connection gone counts as lost (res == NULL), even if
 * libpq made up an error result for it. */
static void pgl_collect(struct wb_pg *pg)
{
    while (pgl_live(pg) && pg->inflight && !PQisBusy(pg->conn)) {
        PGresult *r = PQgetResult(pg->conn);
        if (r) {
            ExecStatusType st = PQresultStatus(r);
            PQclear(pg->last);
            pg->last = r;
            /* COPY is not ours to drive: refuse COPY FROM so its error
             * comes back; COPY TO would stream forever, so drop it. */
            if (st == PGRES_COPY_IN) {
                if (PQputCopyEnd(pg->conn, "COPY is not supported through pg_loop") < 0) {
                    pgl_lose(pg, PQerrorMessage(pg->conn));
                    return;
                }
                if (pgl_flush(pg) < 0)
                    return;
            } else if (st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
                pgl_lose(pg, "COPY TO is not supported through pg_loop");
                return;
            }
            continue;
        }
        if (PQstatus(pg->conn) == CONNECTION_BAD) {
            pgl_lose(pg, PQerrorMessage(pg->conn));
            return;
        }
        struct pg_query *q = pg->inflight;
        PGresult *res = pg->last;
        pg->inflight = NULL;
        pg->last = NULL;
        pg->pending--;
        if (q->cb)
            q->cb(res, q->ud);
        PQclear(res);
        pgl_free_query(q);
        pgl_pump(pg);
    }
    pgl_drain_notifies(pg);
}

static void pgl_on_readable(struct wb_pg *pg)
{
    if (!PQconsumeInput(pg->conn)) {
        pgl_lose(pg, PQerrorMessage(pg->conn));
        return;
    }
    if (pg->want_write && pgl_flush(pg) < 0)
        return;
    pgl_drain_notifies(pg);
    pgl_collect(pg);
    if (pgl_live(pg) && PQstatus(pg->conn) == CONNECTION_BAD)
        pgl_lose(pg, PQerrorMessage(pg->conn));
}

static void pgl_on_poll(uv_poll_t *h, int status, int events)
{
    struct wb_pg *pg = h->data;
    if (status < 0) {
        /* libuv reports POLLERR as UV_EBADF and stops the handle; libpq
         * reads the real cause from the socket. */
        pg->poll_events = 0;
        if (pg->state == PG_CONNECTING) {
            pgl_connect_step(pg);
        } else {
            PQconsumeInput(pg->conn);
            pgl_drain_notifies(pg);
            pgl_collect(pg);
            if (pgl_live(pg))
                pgl_lose(pg, PQstatus(pg->conn) == CONNECTION_BAD ? PQerrorMessage(pg->conn)
                                                             : uv_strerror(status));
        }
        return;
    }
    if (pg->state == PG_CONNECTING)
        pgl_connect_step(pg);
    else if (events & UV_READABLE)
        pgl_on_readable(pg);
    else if (events & UV_WRITABLE)
        pgl_flush(pg);
}

static void pgl_on_timer(uv_timer_t *t)
{
    struct wb_pg *pg = t->data;
    switch (pg->state) {
    case PG_WAITING:
        pgl_start_connect(pg);
        break;
    case PG_CONNECTING:
        pgl_lose(pg, "timed out connecting to the database");
        break;
    case PG_RESOLVING:
        pgl_lose(pg, "timed out resolving the database host name");
        break;
    case PG_BROKEN:
        pgl_conn_lost(pg);
        break;
    default:
        break;
    }
}

struct wb_pg *wb_pg_new(uv_loop_t *loop, const char *conninfo, const struct wb_pg_callbacks *cb,
                        void *ud)
{
    struct wb_pg *pg = wb_xcalloc(1, sizeof *pg);
    pg->loop = loop;
    pg->conninfo = wb_xstrdup(conninfo ? conninfo : "");
    if (cb)
        pg->cb = *cb;
    pg->ud = ud;
    pg->backoff_ms = BACKOFF_MIN_MS;
    pg->backoff_max_ms = wb_db_host_count(pg->conninfo) > 1 ? BACKOFF_MAX_MULTI_MS : BACKOFF_MAX_MS;
    pg->rng = uv_hrtime() ^ (uint64_t)(uintptr_t)pg ^ 0x9e3779b97f4a7c15u;
    pg->poll_fd = -1;
    pg->max_pending = WB_PG_MAX_PENDING;
    STAILQ_INIT(&pg->todo);
    uv_timer_init(loop, &pg->timer);
    pg->timer.data = pg;
    pg->dns = wb_pg_dns_new(loop, pgl_on_resolved, pg);
    pg->refs = 2; /* the timer, and dns until its lookups are over */
    pgl_start_connect(pg);
    return pg;
}

int wb_pg_listen(struct wb_pg *pg, const char *channel)
{
    if (pg->state == PG_CLOSED)
        return -1;
    for (size_t i = 0; i < pg->nchannels; i++)
        if (!strcmp(pg->channels[i], channel))
            return 0;
    pg->channels = wb_xrealloc(pg->channels, (pg->nchannels + 1) * sizeof *pg->channels);
    char *copy = wb_xstrdup(channel);
    pg->channels[pg->nchannels++] = copy;
    /* Not connected: the reconnect issues it with the others. */
    if (!pgl_live(pg))
        return 0;
    if (pgl_queue_listen(pg, &copy, 1, pgl_on_listened) < 0) {
        wb_error("database: cannot LISTEN on %s: %s", channel, PQerrorMessage(pg->conn));
        return -1;
    }
    pgl_pump(pg);
    return 0;
}

static void pgl_on_prepared(PGresult *res, void *ud)
{
    char *name = ud;
    if (res && PQresultStatus(res) != PGRES_COMMAND_OK)
        wb_error("database: preparing %s: %s", name, PQresultErrorMessage(res));
    free(name);
}

static bool pgl_is_prepared(const struct wb_pg *pg, const char *name)
{
    for (size_t i = 0; i < pg->nprepared; i++)
        if (!strcmp(pg->prepared[i], name))
            return true;
    return false;
}

/* Queues the Prepare ahead of the statement's first use on this connection;
 * FIFO order makes it count as prepared from now on. */
static void pgl_ensure_prepared(struct wb_pg *pg, const char *name, const char *sql)
{
    if (pgl_is_prepared(pg, name))
        return;
    pg->prepared = wb_xrealloc(pg->prepared, (pg->nprepared + 1) * sizeof *pg->prepared);
    pg->prepared[pg->nprepared++] = wb_xstrdup(name);
    struct pg_query *p = wb_xcalloc(1, sizeof *p);
    p->sql = wb_xstrdup(sql);
    p->stmt = wb_xstrdup(name);
    p->prepare = true;
    p->nparams = 0; /* parameter types are inferred from the statement */
    p->cb = pgl_on_prepared;
    p->ud = wb_xstrdup(name);
    pgl_enqueue(pg, p);
}

/* Queues a statement (params copied); -1 when not ready or out of range. */
static int pgl_submit(struct wb_pg *pg, const char *name, const char *sql, int nparams,
                  const char *const *params, wb_pg_result_fn cb, void *ud)
{
    if (pg->state != PG_READY || wb_pg_full(pg) || nparams < 0 || nparams > MAX_PARAMS ||
        (nparams && !params))
        return -1;
    if (name)
        pgl_ensure_prepared(pg, name, sql);
    struct pg_query *q = wb_xcalloc(1, sizeof *q);
    if (name)
        q->stmt = wb_xstrdup(name);
    else
        q->sql = wb_xstrdup(sql);
    q->nparams = nparams;
    if (nparams) {
        q->params = wb_xcalloc((size_t)nparams, sizeof *q->params);
        for (int i = 0; i < nparams; i++)
            q->params[i] = params[i] ? wb_xstrdup(params[i]) : NULL;
    }
    q->cb = cb;
    q->ud = ud;
    pgl_enqueue(pg, q);
    pgl_pump(pg);
    return 0;
}

int wb_pg_query_prepared(struct wb_pg *pg, const char *name, const char *sql, int nparams,
                         const char *const *params, wb_pg_result_fn cb, void *ud)
{
    return pgl_submit(pg, name, sql, nparams, params, cb, ud);
}

int wb_pg_query(struct wb_pg *pg, const char *sql, int nparams, const char *const *params,
                wb_pg_result_fn cb, void *ud)
{
    return pgl_submit(pg, NULL, sql, nparams, params, cb, ud);
}

void wb_pg_set_max_pending(struct wb_pg *pg, size_t max)
{
    pg->max_pending = max ? max : 1;
}

bool wb_pg_full(const struct wb_pg *pg)
{
    return pg->pending >= pg->max_pending;
}

/* Oldest first: an owner giving up has usually waited longest. */
bool wb_pg_forget(struct wb_pg *pg, wb_pg_result_fn cb, void *ud)
{
    if (!cb)
        return false;
    if (pg->inflight && pg->inflight->cb == cb && pg->inflight->ud == ud) {
        pg->inflight->cb = NULL;
        return true;
    }
    struct pg_query *q;
    STAILQ_FOREACH(q, &pg->todo, link) {
        if (q->cb == cb && q->ud == ud) {
            STAILQ_REMOVE(&pg->todo, q, pg_query, link);
            pg->pending--;
            pgl_free_query(q);
            return true;
        }
    }
    return false;
}

uint64_t wb_pg_busy_ms(const struct wb_pg *pg)
{
    return pg->inflight ? uv_now(pg->loop) - pg->sent_at : 0;
}

uv_loop_t *wb_pg_loop(const struct wb_pg *pg)
{
    return pg->loop;
}

bool wb_pg_ready(const struct wb_pg *pg)
{
    return pg->state == PG_READY;
}

size_t wb_pg_pending(const struct wb_pg *pg)
{
    return pg->pending;
}

unsigned wb_pg_reconnects(const struct wb_pg *pg)
{
    return pg->connects ? pg->connects - 1 : 0;
}

static void pgl_on_dns_released(void *ud)
{
    pgl_unref(ud);
}

void wb_pg_close(struct wb_pg *pg, void (*closed)(void *ud), void *ud)
{
    if (pg->state == PG_CLOSED)
        return;
    pg->state = PG_CLOSED;
    pg->closed = closed;
    pg->closed_ud = ud;
    uv_timer_stop(&pg->timer);
    pgl_drop_connection(pg);
    wb_pg_dns_free(pg->dns, pgl_on_dns_released, pg);
    pg->dns = NULL;
    pgl_fail_all(pg);
    uv_close((uv_handle_t *)&pg->timer, pgl_on_handle_closed);
}
