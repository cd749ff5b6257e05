/* libmicrohttpd in external-epoll mode on libuv. MHD keeps its own epoll
 * set; its fd turns readable whenever any socket in it has work, so one
 * uv_poll covers every connection, and MHD_get_timeout gives MHD's next
 * deadline. A second timer enforces ours: the request deadline. */
#include "warmbench/http_loop.h"
#include "warmbench/log.h"
#include "warmbench/util.h"
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define HL_BUDGET_FLOOR 16u
#define HL_SWEEP_MS 500
/* At the budget, a new connection may push out one that has spent this
 * long on its request, with at most HL_EVICT_PENDING of those not yet
 * closed (their descriptors come out of the reserve's slack meanwhile). */
#define HL_EVICT_GRACE_MS 250
#define HL_EVICT_PENDING 16u

/* One TCP connection (MHD's socket context). While a request is being
 * received it sits in its listener's `receiving` list, oldest first. */
struct hl_conn {
    struct MHD_Connection *c;
    uint64_t since;          /* uv_now when its current request began */
    bool receiving, headers; /* in the list; the handler has seen the headers */
    bool evicted;            /* cut to make room; counted in hl_fds.evicting */
    TAILQ_ENTRY(hl_conn) link;
};
TAILQ_HEAD(hl_conns, hl_conn);

struct wb_http {
    struct MHD_Daemon *d;
    uv_loop_t *loop;
    uv_poll_t poll;
    uv_timer_t timer;
    uv_timer_t sweep;            /* closes requests past the deadline */
    int open_handles;
    uint16_t port;
    unsigned fixed_limit;        /* conn_limit as given; 0: the budget's */
    uint64_t request_ms;
    struct hl_conns receiving;
    MHD_AccessHandlerCallback handler;
    void *handler_cls;
    MHD_RequestCompletedCallback completed;
    void *completed_cls;
};

/* The descriptor budget and the counters, shared by every listener of the
 * process (there is one loop). */
static struct {
    unsigned reserve;
    unsigned fixed;              /* the fixed limits of live listeners */
    unsigned budgeted_open;      /* connections of budgeted listeners */
    unsigned evicting;           /* evicted, not yet closed by MHD */
    unsigned long long open, refused, timed_out, bad_framing, evicted;
} hl_fds = {WB_HTTP_RESERVE_DEFAULT, 0, 0, 0, 0, 0, 0, 0, 0};

static unsigned long hl_nofile(void)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) < 0)
        return 1024;
    return r.rlim_cur == RLIM_INFINITY || r.rlim_cur > UINT_MAX / 2 ? UINT_MAX / 2
                                                                     : (unsigned long)r.rlim_cur;
}

void wb_http_reserve_fds(unsigned reserve)
{
    hl_fds.reserve = reserve;
}

unsigned wb_http_conn_budget(void)
{
    unsigned long n = hl_nofile(), taken = (unsigned long)hl_fds.reserve + hl_fds.fixed;
    return n > taken + HL_BUDGET_FLOOR ? (unsigned)(n - taken) : HL_BUDGET_FLOOR;
}

void wb_http_metrics(struct wb_buf *b)
{
    wb_buf_printf(b,
        "# HELP warmbench_http_connections Open HTTP connections.\n"
        "# TYPE warmbench_http_connections gauge\n"
        "warmbench_http_connections %llu\n"
        "# HELP warmbench_http_connections_refused_total Connections closed at accept: the "
        "descriptor budget was used up.\n"
        "# TYPE warmbench_http_connections_refused_total counter\n"
        "warmbench_http_connections_refused_total %llu\n"
        "# HELP warmbench_http_connections_evicted_total Connections closed, while still sending "
        "their request, to make room for a new one at the descriptor budget.\n"
        "# TYPE warmbench_http_connections_evicted_total counter\n"
        "warmbench_http_connections_evicted_total %llu\n"
        "# HELP warmbench_http_requests_timed_out_total Connections closed because a request had "
        "not fully arrived within its deadline.\n"
        "# TYPE warmbench_http_requests_timed_out_total counter\n"
        "warmbench_http_requests_timed_out_total %llu\n"
        "# HELP warmbench_http_bad_framing_total Requests refused (400, connection closed) for "
        "ambiguous framing: Content-Length with Transfer-Encoding, several of either, a coding "
        "other than chunked, a field name with white space.\n"
        "# TYPE warmbench_http_bad_framing_total counter\n"
        "warmbench_http_bad_framing_total %llu\n",
        hl_fds.open, hl_fds.refused, hl_fds.evicted, hl_fds.timed_out, hl_fds.bad_framing);
}

/* ---- the request deadline ---- */

static struct hl_conn *hl_conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *i = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return i ? i->socket_context : NULL;
}

static void hl_received(struct wb_http *h, struct hl_conn *hc)
{
    if (!hc->receiving)
        return;
    TAILQ_REMOVE(&h->receiving, hc, link);
    hc->receiving = false;
}

static void hl_request_begins(struct wb_http *h, struct hl_conn *hc)
{
    hl_received(h, hc);
    hc->since = uv_now(h->loop);
    hc->headers = false;
    hc->receiving = true;
    TAILQ_INSERT_TAIL(&h->receiving, hc, link);
}

/* shutdown(), not close(): MHD owns the descriptor. It sees the end of the
 * stream on its next run and closes the connection itself. */
static void hl_cut(struct wb_http *h, struct hl_conn *hc)
{
    hl_received(h, hc);
    const union MHD_ConnectionInfo *i =
        MHD_get_connection_info(hc->c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (i)
        shutdown(i->connect_fd, SHUT_RDWR);
}

static void hl_on_sweep(uv_timer_t *t)
{
    struct wb_http *h = t->data;
    uint64_t now = uv_now(h->loop);
    struct hl_conn *hc;
    while ((hc = TAILQ_FIRST(&h->receiving)) && now - hc->since >= h->request_ms) {
        hl_cut(h, hc);
        hl_fds.timed_out++;
    }
}

/* Clients that trickle their requests cannot keep out one that asks
 * quickly: the oldest of them (or an idle keep-alive connection) goes. */
static bool hl_evict(struct wb_http *h)
{
    struct hl_conn *hc = TAILQ_FIRST(&h->receiving);
    if (!hc || hl_fds.evicting >= HL_EVICT_PENDING ||
        uv_now(h->loop) - hc->since < HL_EVICT_GRACE_MS)
        return false;
    hl_cut(h, hc);
    hc->evicted = true;
    hl_fds.evicting++;
    hl_fds.evicted++;
    return true;
}

/* ---- framing: request smuggling shapes ---- */

struct hl_framing {
    unsigned cl, te;        /* Content-Length and Transfer-Encoding fields */
    bool bad;
};

static enum MHD_Result hl_framing_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                        const char *value)
{
    struct hl_framing *f = cls;
    (void)kind;
    if (!*key || strpbrk(key, " \t\r\n\v\f"))
        f->bad = true;
    else if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH))
        f->cl++;
    else if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        f->te++;
        f->bad |= !value || strcasecmp(value, "chunked") != 0;
    }
    return MHD_YES;
}

/* A body's length must be unambiguous to us and to any proxy in front:
 * RFC 9112 lets a server refuse Content-Length beside Transfer-Encoding,
 * and requires refusing several lengths and white space before the colon.
 * MHD 0.9.75 takes the first Content-Length, lets chunked win and keeps
 * the connection, so a second request hidden in a body was answered. */
static bool hl_framing_ok(struct MHD_Connection *c)
{
    struct hl_framing f = {0, 0, false};
    MHD_get_connection_values(c, MHD_HEADER_KIND, hl_framing_field, &f);
    return !f.bad && f.cl <= 1 && f.te <= 1 && !(f.cl && f.te);
}

/* Queued on the handler's first call, MHD sends it and closes. */
static enum MHD_Result hl_bad_framing(struct MHD_Connection *c)
{
    static const char body[] = "bad request framing\n";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    enum MHD_Result ok = MHD_queue_response(c, MHD_HTTP_BAD_REQUEST, r);
    MHD_destroy_response(r);
    hl_fds.bad_framing++;
    return ok;
}

/* MHD calls the handler once when the headers are in, then with each piece
 * of the body, then with nothing when the body is complete (at once when
 * there is none): that last call ends the request's reception. */
static enum MHD_Result hl_handler(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **req_cls)
{
    struct wb_http *h = cls;
    struct hl_conn *hc = hl_conn_of(c);
    if (hc && hc->receiving) {
        if (!hc->headers) {
            hc->headers = true;
            if (!hl_framing_ok(c))
                return hl_bad_framing(c);
        } else if (*upload_size == 0) {
            hl_received(h, hc);
        }
    }
    return h->handler(h->handler_cls, c, url, method, version, upload, upload_size, req_cls);
}

/* The answer is out: a keep-alive connection's next request starts now. */
static void hl_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct wb_http *h = cls;
    if (h->completed)
        h->completed(h->completed_cls, c, req_cls, toe);
    struct hl_conn *hc = hl_conn_of(c);
    if (hc)
        hl_request_begins(h, hc);
}

static void hl_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                      enum MHD_ConnectionNotificationCode toe)
{
    struct wb_http *h = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        struct hl_conn *hc = wb_xcalloc(1, sizeof *hc);
        hc->c = c;
        *socket_context = hc;
        hl_request_begins(h, hc);
        hl_fds.open++;
        hl_fds.budgeted_open += !h->fixed_limit;
        return;
    }
    struct hl_conn *hc = *socket_context;
    if (!hc)
        return;
    hl_received(h, hc);
    hl_fds.evicting -= hc->evicted;
    free(hc);
    *socket_context = NULL;
    hl_fds.open--;
    hl_fds.budgeted_open -= !h->fixed_limit;
}

/* Budgeted listeners: a connection past the budget takes the place of a
 * slow one, or is closed at accept (MHD's own limit would leave it waiting
 * in the backlog). */
static enum MHD_Result hl_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
    struct wb_http *h = cls;
    (void)addr, (void)len;
    if (h->fixed_limit || hl_fds.budgeted_open < wb_http_conn_budget() + hl_fds.evicting ||
        hl_evict(h))
        return MHD_YES;
    hl_fds.refused++;
    return MHD_NO;
}

/* ---- MHD on the loop ---- */

static void hl_run(struct wb_http *h);

static void hl_on_poll(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    hl_run(p->data);
}

static void hl_on_timer(uv_timer_t *t)
{
    hl_run(t->data);
}

/* MHD_run never blocks in this mode; afterwards the timer is set to MHD's
 * next deadline (0 when it already has buffered work). */
static void hl_run(struct wb_http *h)
{
    MHD_run(h->d);
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(h->d, &ms) == MHD_YES)
        uv_timer_start(&h->timer, hl_on_timer, ms, 0);
    else
        uv_timer_stop(&h->timer);
}

static void hl_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    /* MHD reports every client's misbehaviour; none is the operator's. */
    wb_debug("http: %s", msg);
}

static int hl_resolve(const char *listen, struct sockaddr_storage *ss, socklen_t *len,
                      char *err, size_t errsz)
{
    const char *colon = strrchr(listen, ':');
    if (!colon) {
        snprintf(err, errsz, "\"%s\" is not host:port", listen);
        return -1;
    }
    char *host = wb_xstrndup(listen, (size_t)(colon - listen));
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(*host ? host : NULL, colon + 1, &hints, &ai);
    if (rc) {
        snprintf(err, errsz, "cannot resolve %s: %s", listen, gai_strerror(rc));
        free(host);
        return -1;
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    free(host);
    return 0;
}

static uint16_t hl_port(const struct sockaddr_storage *ss)
{
    return ntohs(ss->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)ss)->sin6_port
                                           : ((const struct sockaddr_in *)ss)->sin_port);
}

static struct MHD_Daemon *hl_start(struct wb_http *h, const struct wb_http_opts *o,
                                   struct sockaddr_storage *ss)
{
    /* External epoll (no internal thread); suspend/resume brings MHD's
     * inter-thread channel, which also wakes our poll on a resume. */
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ss->ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* A budgeted listener's real bound is checked at accept (hl_accept);
     * MHD's is only the ceiling no budget can pass. */
    unsigned limit = o->conn_limit ? o->conn_limit : (unsigned)hl_nofile();
    return MHD_start_daemon(
        flags, hl_port(ss), hl_accept, h, hl_handler, h,
        MHD_OPTION_EXTERNAL_LOGGER, hl_mhd_log, NULL, /* first: MHD logs while parsing the rest */
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)ss,
        MHD_OPTION_CONNECTION_LIMIT, limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)(o->per_ip_limit ? o->per_ip_limit : 64),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(o->timeout_s ? o->timeout_s : 15),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(o->mem_limit ? o->mem_limit : 32 * 1024),
        MHD_OPTION_NOTIFY_COMPLETED, hl_completed, h,
        MHD_OPTION_NOTIFY_CONNECTION, hl_notify, h,
        MHD_OPTION_END);
}

struct wb_http *wb_http_new(uv_loop_t *loop, const struct wb_http_opts *o, char *err, size_t errsz)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (hl_resolve(o->listen, &ss, &sslen, err, errsz) < 0)
        return NULL;
    struct wb_http *h = wb_xcalloc(1, sizeof *h);
    h->loop = loop;
    h->fixed_limit = o->conn_limit;
    h->request_ms = 1000ull * (o->request_timeout_s ? o->request_timeout_s : 10);
    h->handler = o->handler;
    h->handler_cls = o->handler_cls;
    h->completed = o->completed;
    h->completed_cls = o->completed_cls;
    TAILQ_INIT(&h->receiving);
    h->d = hl_start(h, o, &ss);
    if (!h->d) {
        snprintf(err, errsz, "cannot listen on %s (address in use or not local?)", o->listen);
        free(h);
        return NULL;
    }
    hl_fds.fixed += h->fixed_limit;
    const union MHD_DaemonInfo *fd = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
    const union MHD_DaemonInfo *port = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = port ? port->port : hl_port(&ss);
    uv_poll_init(loop, &h->poll, fd->epoll_fd);
    uv_timer_init(loop, &h->timer);
    uv_timer_init(loop, &h->sweep);
    h->poll.data = h->timer.data = h->sweep.data = h;
    h->open_handles = 3;
    uv_poll_start(&h->poll, UV_READABLE, hl_on_poll);
    uv_timer_start(&h->sweep, hl_on_sweep, HL_SWEEP_MS, HL_SWEEP_MS);
    hl_run(h);
    return h;
}

uint16_t wb_http_port(const struct wb_http *h)
{
    return h->port;
}

void wb_http_resume(struct wb_http *h, struct MHD_Connection *c)
{
    MHD_resume_connection(c);
    uv_timer_start(&h->timer, hl_on_timer, 0, 0);
}

void wb_http_quiesce(struct wb_http *h)
{
    MHD_socket s = MHD_quiesce_daemon(h->d);
    if (s != MHD_INVALID_SOCKET)
        close(s);
}

static void hl_on_closed(uv_handle_t *x)
{
    struct wb_http *h = x->data;
    if (--h->open_handles == 0)
        free(h);
}

void wb_http_free(struct wb_http *h)
{
    if (!h)
        return;
    /* The poll watches MHD's epoll fd: let go of it before MHD closes it. */
    uv_close((uv_handle_t *)&h->poll, hl_on_closed);
    uv_close((uv_handle_t *)&h->timer, hl_on_closed);
    uv_close((uv_handle_t *)&h->sweep, hl_on_closed);
    MHD_stop_daemon(h->d); /* closes every connection: hl_notify frees each */
    hl_fds.fixed -= h->fixed_limit;
    h->d = NULL;
}
