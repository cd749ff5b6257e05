/* libpq on a libuv loop: one uv_poll on PQsocket, a FIFO of statements with
 * one in flight, reconnect with exponential backoff, LISTEN/NOTIFY. */
#include "warmbench/pg_loop.h"
#include "warmbench/buf.h"
#include "warmbench/db.h"
#include "warmbench/log.h"
#include "warmbench/util.h"
#include <arpa/inet.h>
#include <netdb.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000
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
    struct pg_query *next;
    char *sql;
    char **params;
    int nparams;
    bool simple; /* internal LISTENs: simple protocol, several statements */
    char *stmt;  /* prepared statement: its name (sql is then its text) */
    bool prepare; /* internal: PQsendPrepare of stmt, before its first use */
    wb_pg_result_fn cb;
    void *ud;
};

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
    uint64_t backoff_ms;
    unsigned connects;
    uint64_t rng; /* xorshift state for backoff jitter */
    char *why; /* reason for the loss PG_BROKEN will report */
    struct pg_query *head, *tail; /* not sent yet */
    struct pg_query *inflight;
    PGresult *last; /* the in-flight statement's latest result */
    size_t pending;
    char **channels;
    size_t nchannels;
    char **prepared; /* statement names prepared (or queued) on this connection */
    size_t nprepared;
    unsigned refs; /* open uv handles and running lookups; freed at 0 */
    unsigned attempt; /* tells a lookup of an abandoned attempt */
    char **hosts; /* this attempt's host list, when a name needs resolving */
    char **addrs; /* per host: its addresses, comma-separated ("" = libpq's way) */
    char **ports; /* per host, when conninfo lists several ports; else NULL */
    size_t nhosts, next_host;
    void (*closed)(void *ud);
    void *closed_ud;
};

static void on_poll(uv_poll_t *h, int status, int events);
static void on_timer(uv_timer_t *t);
static void pump(struct wb_pg *pg);

static bool live(const struct wb_pg *pg)
{
    return pg->state == PG_RESTORING || pg->state == PG_READY;
}

static void free_query(struct pg_query *q)
{
    for (int i = 0; i < q->nparams; i++)
        free(q->params[i]);
    free(q->params);
    free(q->sql);
    free(q->stmt);
    free(q);
}

/* Prepared statements belong to a connection: a new one starts with none. */
static void forget_prepared(struct wb_pg *pg)
{
    for (size_t i = 0; i < pg->nprepared; i++)
        free(pg->prepared[i]);
    free(pg->prepared);
    pg->prepared = NULL;
    pg->nprepared = 0;
}

static void free_hosts(struct wb_pg *pg)
{
    for (size_t i = 0; i < pg->nhosts; i++) {
        free(pg->hosts[i]);
        free(pg->addrs[i]);
        if (pg->ports)
            free(pg->ports[i]);
    }
    free(pg->hosts);
    free(pg->addrs);
    free(pg->ports);
    pg->hosts = pg->addrs = pg->ports = NULL;
    pg->nhosts = pg->next_host = 0;
}

static void finish_close(struct wb_pg *pg)
{
    if (pg->closed)
        pg->closed(pg->closed_ud);
    for (size_t i = 0; i < pg->nchannels; i++)
        free(pg->channels[i]);
    free(pg->channels);
    free(pg->conninfo);
    free(pg->why);
    free_hosts(pg);
    free(pg);
}

static void unref(struct wb_pg *pg)
{
    if (--pg->refs == 0)
        finish_close(pg);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct wb_pg *pg = h->data;
    if (h != (uv_handle_t *)&pg->timer)
        free(h);
    unref(pg);
}

static void unwatch(struct wb_pg *pg)
{
    if (!pg->poll)
        return;
    /* Stopping first takes the fd out of epoll before libpq closes it. */
    uv_poll_stop(pg->poll);
    uv_close((uv_handle_t *)pg->poll, on_handle_closed);
    pg->poll = NULL;
    pg->poll_events = 0;
}

/* Points the one poll handle at libpq's current socket with these events.
 * libpq may swap sockets while connecting (next host or address, SSL
 * retry), and the new one can reuse the old number: the inode tells. */
static int watch(struct wb_pg *pg, int events)
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
        unwatch(pg);
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
        int err = uv_poll_start(pg->poll, events, on_poll);
        if (err)
            return err;
        pg->poll_events = events;
    }
    return 0;
}

/* Notes a lost connection; callbacks run from the timer on the next tick,
 * so no caller of wb_pg_query or wb_pg_listen is re-entered. */
static void lose(struct wb_pg *pg, const char *why)
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
    unwatch(pg);
    uv_timer_start(&pg->timer, on_timer, 0, 0);
}

static void drop_connection(struct wb_pg *pg)
{
    forget_prepared(pg);
    unwatch(pg);
    PQclear(pg->last);
    pg->last = NULL;
    if (pg->conn)
        PQfinish(pg->conn);
    pg->conn = NULL;
    pg->want_write = false;
}

/* Pops before calling back: a callback may close pg, which drains the rest. */
static void fail_all(struct wb_pg *pg)
{
    for (;;) {
        struct pg_query *q = pg->inflight;
        if (q) {
            pg->inflight = NULL;
        } else if ((q = pg->head)) {
            pg->head = q->next;
            if (!pg->head)
                pg->tail = NULL;
        } else {
            break;
        }
        pg->pending--;
        if (q->cb)
            q->cb(NULL, q->ud);
        free_query(q);
    }
}

static void conn_lost(struct wb_pg *pg)
{
    drop_connection(pg);
    free_hosts(pg);
    pg->state = PG_WAITING;
    fail_all(pg);
    if (pg->state == PG_CLOSED)
        return;
    uint64_t base = pg->backoff_ms;
    pg->backoff_ms = base * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : base * 2;
    /* +-20% jitter: daemons cut off together do not all come back at once. */
    pg->rng ^= pg->rng << 13;
    pg->rng ^= pg->rng >> 7;
    pg->rng ^= pg->rng << 17;
    uint64_t delay = base * 4 / 5 + pg->rng % (base * 2 / 5 + 1);
    /* Armed before on_disconnect, so a close from there stops it. */
    uv_timer_start(&pg->timer, on_timer, delay, 0);
    wb_debug("database: %s; next attempt in %llu ms", pg->why, (unsigned long long)delay);
    if (pg->cb.on_disconnect)
        pg->cb.on_disconnect(pg, pg->why, pg->ud);
}

static uint64_t connect_timeout_ms(PGconn *c)
{
    uint64_t ms = CONNECT_TIMEOUT_MS;
    PQconninfoOption *opts = PQconninfo(c);
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (!strcmp(o->keyword, "connect_timeout") && o->val && atoi(o->val) > 0)
            ms = (uint64_t)(atoi(o->val) < 2 ? 2 : atoi(o->val)) * 1000; /* libpq's floor */
    PQconninfoFree(opts);
    return ms;
}

static void on_notice(void *arg, const PGresult *res)
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

static void start_libpq(struct wb_pg *pg)
{
    /* dbname with expand_dbname takes URLs and key=value strings whole; ""
     * is ignored, leaving libpq's environment. A later hostaddr overrides
     * the expanded one. The fallback name yields to application_name in
     * conninfo and to PGAPPNAME. */
    struct wb_buf host, hostaddr, port;
    wb_buf_init(&host);
    wb_buf_init(&hostaddr);
    wb_buf_init(&port);
    /* A name with several addresses becomes that many hosts, so libpq
     * still tries each in turn as its own lookup would have. */
    for (size_t i = 0; i < pg->nhosts; i++) {
        for (const char *a = pg->addrs[i];;) {
            size_t n = strcspn(a, ",");
            const char *sep = host.len ? "," : "";
            wb_buf_printf(&host, "%s%s", sep, pg->hosts[i]);
            wb_buf_printf(&hostaddr, "%s%.*s", sep, (int)n, a);
            if (pg->ports)
                wb_buf_printf(&port, "%s%s", sep, pg->ports[i]);
            if (!a[n])
                break;
            a += n + 1;
        }
    }
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
        PQsetNoticeReceiver(pg->conn, on_notice, pg);
    wb_buf_free(&host);
    wb_buf_free(&hostaddr);
    wb_buf_free(&port);
    free_hosts(pg);
    if (!pg->conn) {
        lose(pg, "out of memory starting a database connection");
        return;
    }
    if (PQstatus(pg->conn) == CONNECTION_BAD) {
        lose(pg, PQerrorMessage(pg->conn));
        return;
    }
    uv_timer_start(&pg->timer, on_timer, connect_timeout_ms(pg->conn), 0);
    /* libpq's rule: start as if PQconnectPoll had asked for writability. */
    int err = watch(pg, UV_WRITABLE);
    if (err)
        lose(pg, uv_strerror(err));
}

/* ---- host names: libpq would resolve them with a blocking getaddrinfo,
 * so names are looked up on libuv's thread pool and handed to libpq as
 * hostaddr (host stays for TLS verification, Kerberos and .pgpass). */

static bool needs_lookup(const char *h)
{
    unsigned char buf[sizeof(struct in6_addr)];
    if (!*h || *h == '/' || *h == '@') /* default, or a Unix socket */
        return false;
    return inet_pton(AF_INET, h, buf) != 1 && inet_pton(AF_INET6, h, buf) != 1;
}

/* Fills pg->hosts when some host of this attempt is a name to look up. */
static bool plan_lookup(struct wb_pg *pg)
{
    const char *host = NULL, *hostaddr = NULL, *port = NULL;
    PQconninfoOption *opts = NULL;
    if (*pg->conninfo) {
        char *err = NULL;
        opts = PQconninfoParse(pg->conninfo, &err);
        PQfreemem(err); /* PQconnectStartParams reports it */
        if (!opts)
            return false;
        for (PQconninfoOption *o = opts; o->keyword; o++) {
            if (!strcmp(o->keyword, "host"))
                host = o->val;
            else if (!strcmp(o->keyword, "hostaddr"))
                hostaddr = o->val;
            else if (!strcmp(o->keyword, "port"))
                port = o->val;
        }
    }
    if (!host || !*host)
        host = getenv("PGHOST");
    if (!hostaddr || !*hostaddr)
        hostaddr = getenv("PGHOSTADDR");
    if (!port || !*port)
        port = getenv("PGPORT");
    bool lookup = false;
    if (host && *host && !(hostaddr && *hostaddr)) {
        for (const char *p = host;; p++) {
            const char *end = strchr(p, ',');
            size_t n = end ? (size_t)(end - p) : strlen(p);
            pg->hosts = wb_xrealloc(pg->hosts, (pg->nhosts + 1) * sizeof *pg->hosts);
            pg->addrs = wb_xrealloc(pg->addrs, (pg->nhosts + 1) * sizeof *pg->addrs);
            pg->hosts[pg->nhosts] = wb_xstrndup(p, n);
            pg->addrs[pg->nhosts] = wb_xstrdup("");
            lookup |= needs_lookup(pg->hosts[pg->nhosts++]);
            if (!end)
                break;
            p = end;
        }
    }
    /* Several ports pair with the hosts one to one; one port serves all. */
    if (lookup && port && strchr(port, ',')) {
        pg->ports = wb_xcalloc(pg->nhosts, sizeof *pg->ports);
        size_t i = 0;
        for (const char *p = port; i < pg->nhosts; i++) {
            size_t n = strcspn(p, ",");
            pg->ports[i] = wb_xstrndup(p, n);
            if (!p[n])
                break;
            p += n + 1;
        }
        lookup = i == pg->nhosts - 1; /* a mismatch is libpq's to report */
    }
    PQconninfoFree(opts);
    if (!lookup)
        free_hosts(pg);
    return lookup;
}

struct lookup {
    uv_getaddrinfo_t req;
    struct wb_pg *pg;
    unsigned attempt;
};

static void lookup_next(struct wb_pg *pg);

static void on_looked_up(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct lookup *l = (struct lookup *)req;
    struct wb_pg *pg = l->pg;
    /* A lookup outliving its attempt (timeout, close) only lets go. */
    if (l->attempt == pg->attempt && pg->state == PG_RESOLVING) {
        const char *name = pg->hosts[pg->next_host];
        struct wb_buf ips;
        wb_buf_init(&ips);
        for (struct addrinfo *a = status ? NULL : res; a; a = a->ai_next) {
            char ip[INET6_ADDRSTRLEN] = "";
            if (a->ai_family == AF_INET6)
                uv_ip6_name((struct sockaddr_in6 *)a->ai_addr, ip, sizeof ip);
            else if (a->ai_family == AF_INET)
                uv_ip4_name((struct sockaddr_in *)a->ai_addr, ip, sizeof ip);
            if (*ip)
                wb_buf_printf(&ips, "%s%s", ips.len ? "," : "", ip);
        }
        if (!ips.len) {
            char *why = wb_xasprintf("could not translate host name \"%s\" to address: %s", name,
                                     status ? uv_strerror(status) : "no address");
            lose(pg, why);
            free(why);
        } else {
            free(pg->addrs[pg->next_host]);
            pg->addrs[pg->next_host++] = wb_buf_steal(&ips);
            lookup_next(pg);
        }
        wb_buf_free(&ips);
    }
    uv_freeaddrinfo(res);
    free(l);
    unref(pg);
}

static void lookup_next(struct wb_pg *pg)
{
    while (pg->next_host < pg->nhosts && !needs_lookup(pg->hosts[pg->next_host]))
        pg->next_host++;
    if (pg->next_host == pg->nhosts) {
        start_libpq(pg);
        return;
    }
    struct lookup *l = wb_xcalloc(1, sizeof *l);
    l->pg = pg;
    l->attempt = pg->attempt;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int err = uv_getaddrinfo(pg->loop, &l->req, on_looked_up, pg->hosts[pg->next_host], NULL, &hints);
    if (err) {
        free(l);
        lose(pg, uv_strerror(err));
        return;
    }
    pg->refs++;
}

static void start_connect(struct wb_pg *pg)
{
    pg->attempt++;
    if (!plan_lookup(pg)) {
        start_libpq(pg);
        return;
    }
    pg->state = PG_RESOLVING;
    uv_timer_start(&pg->timer, on_timer, CONNECT_TIMEOUT_MS, 0);
    lookup_next(pg);
}


static void enqueue(struct wb_pg *pg, struct pg_query *q)
{
    q->next = NULL;
    if (pg->tail)
        pg->tail->next = q;
    else
        pg->head = q;
    pg->tail = q;
    pg->pending++;
}

/* Queues "LISTEN a; LISTEN b; ..." as one simple-protocol round trip. */
static int queue_listen(struct wb_pg *pg, char *const *channels, size_t n, wb_pg_result_fn cb)
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
    enqueue(pg, q);
    return 0;
}

static void ready(struct wb_pg *pg)
{
    pg->state = PG_READY;
    pg->backoff_ms = BACKOFF_MIN_MS;
    if (pg->cb.on_connect)
        pg->cb.on_connect(pg, pg->ud);
}

static void on_listened(PGresult *res, void *ud)
{
    (void)ud;
    if (res && PQresultStatus(res) != PGRES_COMMAND_OK)
        wb_error("database: LISTEN failed: %s %s",
                 PQresultErrorField(res, PG_DIAG_SQLSTATE) ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : "",
                 PQresultErrorMessage(res));
}

static void on_restored(PGresult *res, void *ud)
{
    struct wb_pg *pg = ud;
    if (!res)
        return; /* lost again or closed: nothing to announce */
    on_listened(res, ud);
    ready(pg);
}

static int update_watch(struct wb_pg *pg)
{
    int err = watch(pg, UV_READABLE | (pg->want_write ? UV_WRITABLE : 0));
    if (err)
        lose(pg, uv_strerror(err));
    return err ? -1 : 0;
}

/* Pushes libpq's output buffer; writability matters only while it is not
 * empty, else the poll would wake the loop for nothing. */
static int flush(struct wb_pg *pg)
{
    int r = PQflush(pg->conn);
    if (r < 0) {
        lose(pg, PQerrorMessage(pg->conn));
        return -1;
    }
    pg->want_write = r == 1;
    return update_watch(pg);
}

static void connected(struct wb_pg *pg)
{
    uv_timer_stop(&pg->timer);
    if (PQsetnonblocking(pg->conn, 1) != 0) {
        lose(pg, PQerrorMessage(pg->conn));
        return;
    }
    pg->state = PG_RESTORING;
    pg->connects++;
    if (update_watch(pg) < 0)
        return;
    if (pg->nchannels == 0) {
        ready(pg);
        return;
    }
    if (queue_listen(pg, pg->channels, pg->nchannels, on_restored) < 0) {
        lose(pg, PQerrorMessage(pg->conn));
        return;
    }
    pump(pg);
}

static void connect_step(struct wb_pg *pg)
{
    int err = 0;
    switch (PQconnectPoll(pg->conn)) {
    case PGRES_POLLING_READING:
        err = watch(pg, UV_READABLE);
        break;
    case PGRES_POLLING_WRITING:
        err = watch(pg, UV_WRITABLE);
        break;
    case PGRES_POLLING_OK:
        connected(pg);
        return;
    default:
        lose(pg, PQerrorMessage(pg->conn));
        return;
    }
    if (err)
        lose(pg, uv_strerror(err));
}

/* Sends the next statement when none is in flight. */
static void pump(struct wb_pg *pg)
{
    if (!live(pg) || pg->inflight || !pg->head)
        return;
    struct pg_query *q = pg->head;
    pg->head = q->next;
    if (!pg->head)
        pg->tail = NULL;
    pg->inflight = q;
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
        lose(pg, PQerrorMessage(pg->conn));
        return;
    }
    flush(pg);
}

static void drain_notifies(struct wb_pg *pg)
{
    PGnotify *n;
    while (live(pg) && (n = PQnotifies(pg->conn))) {
        if (pg->cb.on_notify)
            pg->cb.on_notify(pg, n->relname, n->extra, pg->ud);
        PQfreemem(n);
    }
}

/* Hands back each completed statement, then sends the next. A statement
 * that ends with the connection gone counts as lost (res == NULL), even if
 * libpq made up an error result for it. */
static void collect(struct wb_pg *pg)
{
    while (live(pg) && pg->inflight && !PQisBusy(pg->conn)) {
        PGresult *r = PQgetResult(pg->conn);
        if (r) {
            ExecStatusType st = PQresultStatus(r);
            PQclear(pg->last);
            pg->last = r;
            /* COPY is not ours to drive: refuse COPY FROM so its error
             * comes back; COPY TO would stream forever, so drop it. */
            if (st == PGRES_COPY_IN) {
                if (PQputCopyEnd(pg->conn, "COPY is not supported through pg_loop") < 0) {
                    lose(pg, PQerrorMessage(pg->conn));
                    return;
                }
                if (flush(pg) < 0)
                    return;
            } else if (st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
                lose(pg, "COPY TO is not supported through pg_loop");
                return;
            }
            continue;
        }
        if (PQstatus(pg->conn) == CONNECTION_BAD) {
            lose(pg, PQerrorMessage(pg->conn));
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
        free_query(q);
        pump(pg);
    }
    drain_notifies(pg);
}

static void on_readable(struct wb_pg *pg)
{
    if (!PQconsumeInput(pg->conn)) {
        lose(pg, PQerrorMessage(pg->conn));
        return;
    }
    if (pg->want_write && flush(pg) < 0)
        return;
    drain_notifies(pg);
    collect(pg);
    if (live(pg) && PQstatus(pg->conn) == CONNECTION_BAD)
        lose(pg, PQerrorMessage(pg->conn));
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct wb_pg *pg = h->data;
    if (status < 0) {
        /* libuv reports POLLERR as UV_EBADF and stops the handle; libpq
         * reads the real cause from the socket. */
        pg->poll_events = 0;
        if (pg->state == PG_CONNECTING) {
            connect_step(pg);
        } else {
            PQconsumeInput(pg->conn);
            drain_notifies(pg);
            collect(pg);
            if (live(pg))
                lose(pg, PQstatus(pg->conn) == CONNECTION_BAD ? PQerrorMessage(pg->conn)
                                                             : uv_strerror(status));
        }
        return;
    }
    if (pg->state == PG_CONNECTING)
        connect_step(pg);
    else if (events & UV_READABLE)
        on_readable(pg);
    else if (events & UV_WRITABLE)
        flush(pg);
}

static void on_timer(uv_timer_t *t)
{
    struct wb_pg *pg = t->data;
    switch (pg->state) {
    case PG_WAITING:
        start_connect(pg);
        break;
    case PG_CONNECTING:
        lose(pg, "timed out connecting to the database");
        break;
    case PG_RESOLVING:
        lose(pg, "timed out resolving the database host name");
        break;
    case PG_BROKEN:
        conn_lost(pg);
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
    pg->rng = uv_hrtime() ^ (uint64_t)(uintptr_t)pg ^ 0x9e3779b97f4a7c15u;
    pg->poll_fd = -1;
    uv_timer_init(loop, &pg->timer);
    pg->timer.data = pg;
    pg->refs = 1;
    start_connect(pg);
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
    if (!live(pg))
        return 0;
    if (queue_listen(pg, &copy, 1, on_listened) < 0) {
        wb_error("database: cannot LISTEN on %s: %s", channel, PQerrorMessage(pg->conn));
        return -1;
    }
    pump(pg);
    return 0;
}

static void on_prepared(PGresult *res, void *ud)
{
    char *name = ud;
    if (res && PQresultStatus(res) != PGRES_COMMAND_OK)
        wb_error("database: preparing %s: %s", name, PQresultErrorMessage(res));
    free(name);
}

static bool is_prepared(const struct wb_pg *pg, const char *name)
{
    for (size_t i = 0; i < pg->nprepared; i++)
        if (!strcmp(pg->prepared[i], name))
            return true;
    return false;
}

/* Queues the Prepare ahead of the statement's first use on this connection;
 * FIFO order makes it count as prepared from now on. */
static void ensure_prepared(struct wb_pg *pg, const char *name, const char *sql)
{
    if (is_prepared(pg, name))
        return;
    pg->prepared = wb_xrealloc(pg->prepared, (pg->nprepared + 1) * sizeof *pg->prepared);
    pg->prepared[pg->nprepared++] = wb_xstrdup(name);
    struct pg_query *p = wb_xcalloc(1, sizeof *p);
    p->sql = wb_xstrdup(sql);
    p->stmt = wb_xstrdup(name);
    p->prepare = true;
    p->nparams = 0; /* parameter types are inferred from the statement */
    p->cb = on_prepared;
    p->ud = wb_xstrdup(name);
    enqueue(pg, p);
}

/* Queues a statement (params copied); -1 when not ready or out of range. */
static int submit(struct wb_pg *pg, const char *name, const char *sql, int nparams,
                  const char *const *params, wb_pg_result_fn cb, void *ud)
{
    if (pg->state != PG_READY || nparams < 0 || nparams > MAX_PARAMS || (nparams && !params))
        return -1;
    if (name)
        ensure_prepared(pg, name, sql);
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
    enqueue(pg, q);
    pump(pg);
    return 0;
}

int wb_pg_query_prepared(struct wb_pg *pg, const char *name, const char *sql, int nparams,
                         const char *const *params, wb_pg_result_fn cb, void *ud)
{
    return submit(pg, name, sql, nparams, params, cb, ud);
}

int wb_pg_query(struct wb_pg *pg, const char *sql, int nparams, const char *const *params,
                wb_pg_result_fn cb, void *ud)
{
    return submit(pg, NULL, sql, nparams, params, cb, ud);
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

void wb_pg_close(struct wb_pg *pg, void (*closed)(void *ud), void *ud)
{
    if (pg->state == PG_CLOSED)
        return;
    pg->state = PG_CLOSED;
    pg->closed = closed;
    pg->closed_ud = ud;
    uv_timer_stop(&pg->timer);
    drop_connection(pg);
    fail_all(pg);
    uv_close((uv_handle_t *)&pg->timer, on_handle_closed);
}
