/* One libmicrohttpd daemon on a libuv loop: MHD's epoll fd under one
 * uv_poll and MHD's next timeout on one uv_timer, re-armed after every
 * MHD_run. No thread. Connections may be suspended while an answer waits
 * on the database; wb_http_resume wakes them.
 *
 * Hostile clients: a request whose headers and body have not all arrived
 * within request_timeout_s of its start (the connection's accept, or the
 * end of its previous answer) is closed, however steadily it trickles in;
 * MHD's own timeout only measures silence. Listeners made with conn_limit
 * 0 share the process's descriptor budget: RLIMIT_NOFILE less a reserve
 * for outbound work (wb_http_reserve_fds), so they can never take the
 * descriptors SMTP, IMAP, webhooks, PostgreSQL and DNS need. At that
 * budget a new connection replaces the oldest one still sending its
 * request (if 250 ms old), so slow clients cannot keep out quick ones.
 * Requests with ambiguous framing (Content-Length beside
 * Transfer-Encoding, two of either, a coding other than chunked, white
 * space before a colon) get 400 and a closed connection. */
#ifndef WB_HTTP_LOOP_H
#define WB_HTTP_LOOP_H
#include <stddef.h>
#include <stdint.h>
#include <microhttpd.h>
#include <uv.h>
#include "warmbench/buf.h"

struct wb_http;

struct wb_http_opts {
    const char *listen;          /* "host:port", "[v6]:port"; port 0 picks one */
    unsigned conn_limit;         /* 0: what the descriptor budget leaves */
    unsigned per_ip_limit;       /* default 64 (0 keeps the default; no "unlimited") */
    unsigned timeout_s;          /* idle connection timeout, default 15 */
    unsigned request_timeout_s;  /* a whole request must arrive in this, default 10 */
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

/* Process-wide: the descriptors kept out of the listeners' reach (default
 * WB_HTTP_RESERVE_DEFAULT). May change at any time (a reload): the next
 * accepted connection is counted against the new budget. */
#define WB_HTTP_RESERVE_DEFAULT 256u
void wb_http_reserve_fds(unsigned reserve);
/* How many connections the budgeted listeners (conn_limit 0) may hold
 * together: the soft RLIMIT_NOFILE less the reserve and the other
 * listeners' limits; never under 16. */
unsigned wb_http_conn_budget(void);
/* Prometheus lines: open connections, those refused for the budget, and
 * requests closed by the deadline, over every listener of the process. */
void wb_http_metrics(struct wb_buf *b);

#endif
