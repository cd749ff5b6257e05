/* libmicrohttpd in external-epoll mode on libuv. MHD keeps its own epoll
 * set; its fd turns readable whenever any socket in it has work, so one
 * uv_poll covers every connection, and MHD_get_timeout gives the only
 * deadline we need to keep. */
#include "warmbench/http_loop.h"
#include "warmbench/log.h"
#include "warmbench/util.h"
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct wb_http {
    struct MHD_Daemon *d;
    uv_poll_t poll;
    uv_timer_t timer;
    int open_handles;
    uint16_t port;
};

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

struct wb_http *wb_http_new(uv_loop_t *loop, const struct wb_http_opts *o, char *err, size_t errsz)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (hl_resolve(o->listen, &ss, &sslen, err, errsz) < 0)
        return NULL;
    /* External epoll (no internal thread); suspend/resume brings MHD's
     * inter-thread channel, which also wakes our poll on a resume. */
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    uint16_t want_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                        : ((struct sockaddr_in *)&ss)->sin_port);
    struct wb_http *h = wb_xcalloc(1, sizeof *h);
    h->d = MHD_start_daemon(
        flags, want_port, NULL, NULL, o->handler, o->handler_cls,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)(o->conn_limit ? o->conn_limit : 1024),
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)(o->per_ip_limit ? o->per_ip_limit : 64),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(o->timeout_s ? o->timeout_s : 15),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(o->mem_limit ? o->mem_limit : 32 * 1024),
        MHD_OPTION_EXTERNAL_LOGGER, hl_mhd_log, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, o->completed, o->completed_cls,
        MHD_OPTION_END);
    if (!h->d) {
        snprintf(err, errsz, "cannot listen on %s (address in use or not local?)", o->listen);
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *fd = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
    const union MHD_DaemonInfo *port = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = port ? port->port : want_port;
    uv_poll_init(loop, &h->poll, fd->epoll_fd);
    uv_timer_init(loop, &h->timer);
    h->poll.data = h->timer.data = h;
    h->open_handles = 2;
    uv_poll_start(&h->poll, UV_READABLE, hl_on_poll);
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
    MHD_stop_daemon(h->d);
    h->d = NULL;
}
