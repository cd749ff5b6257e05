/* One libmicrohttpd daemon on a libuv loop: MHD's epoll fd under one
 * uv_poll and MHD's next timeout on one uv_timer, re-armed after every
 * MHD_run. No thread. Connections may be suspended while an answer waits
 * on the database; wb_http_resume wakes them. */
#ifndef WB_HTTP_LOOP_H
#define WB_HTTP_LOOP_H
#include <stddef.h>
#include <stdint.h>
#include <microhttpd.h>
#include <uv.h>

struct wb_http;

struct wb_http_opts {
    const char *listen;          /* "host:port", "[v6]:port"; port 0 picks one */
    unsigned conn_limit;         /* default 1024 */
    unsigned per_ip_limit;       /* default 64 (0 keeps the default; no "unlimited") */
    unsigned timeout_s;          /* idle connection timeout, default 15 */
    size_t mem_limit;            /* per connection, default 32 KiB */
    MHD_AccessHandlerCallback handler;
    void *handler_cls;
    MHD_RequestCompletedCallback completed;  /* may be NULL */
    void *completed_cls;
};

/* Binds and starts serving. NULL with a reason in err on failure. The host
 * is resolved here, before the loop runs (numeric addresses never block). */
struct wb_http *wb_http_new(uv_loop_t *loop, const struct wb_http_opts *o, char *err, size_t errsz);
/* The bound port (useful with port 0). */
uint16_t wb_http_port(const struct wb_http *h);
/* MHD_resume_connection, then a run of MHD on the next loop turn. */
void wb_http_resume(struct wb_http *h, struct MHD_Connection *c);
/* Stops accepting new connections; those open are still served. */
void wb_http_quiesce(struct wb_http *h);
/* Stops the daemon. Every suspended connection must have been resumed
 * (MHD refuses to stop otherwise); completed callbacks run before this
 * returns; the uv handles close asynchronously. */
void wb_http_free(struct wb_http *h);

#endif
