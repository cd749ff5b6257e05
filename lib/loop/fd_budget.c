/* Descriptor limit and the outbound reserve (fd_budget.h). The figures are
 * upper bounds: a reserve too large only costs HTTP connections, one too
 * small turns outbound sockets into EMFILE. */
#include "warmbench/fd_budget.h"
#include <errno.h>
#include <sys/resource.h>

/* A socket, a threaded resolver's socket pair, and slack. */
#define FD_PER_TRANSFER 4u
/* stdio, libuv (epoll, signal pipe, async), the listeners' own sockets,
 * epoll and inter-thread channel, sd_notify, glibc's DNS in the thread
 * pool, PostgreSQL's two connections and their lookups, files being read
 * (configuration, templates, migrations). */
#define FD_BASE 96u
/* curl_loop's cache of idle connections, and handoffs in flight
 * (handoff.c's MAX_INFLIGHT). */
#define FD_CURL_CACHE 16u
#define FD_HANDOFFS 32u

int wb_fd_raise_limit(unsigned long *was, unsigned long *now)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) < 0)
        return -1;
    *was = *now = (unsigned long)r.rlim_cur;
    if (r.rlim_cur >= r.rlim_max)
        return 0;
    r.rlim_cur = r.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &r) < 0)
        return -1;
    *now = (unsigned long)r.rlim_cur;
    return 0;
}

unsigned wb_fd_reserve(const struct wb_config *cfg)
{
    /* SMTP: the shared pool and every sender's own, counted whether or not
     * a sender uses its own (an overestimate by at most one pool). */
    unsigned transfers = (unsigned)cfg->smtp.connections;
    for (size_t i = 0; i < cfg->n_senders; i++)
        transfers += (unsigned)cfg->senders[i].smtp.connections + 2u; /* + IMAP, token */
    transfers += 1u;                                                /* the top mailbox */
    if (cfg->ats.enabled)
        transfers += FD_HANDOFFS;
    return FD_BASE + FD_CURL_CACHE + FD_PER_TRANSFER * transfers;
}
