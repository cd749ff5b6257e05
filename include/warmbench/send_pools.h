/* The SMTP pools mail leaves through (SPEC "Every recruiter's own
 * mailbox"): one for the top-level `smtp` block, shared by every sender
 * that has neither its own block nor an OAuth login, and one per sender
 * that has either, with that sender's own `connections` workers (smtp.c).
 * A pool of an OAuth sender sends with that sender's access token, taken
 * from the token keeper at the moment a message is handed over; without
 * one the pool is held and its mail waits. Built once from the config a
 * daemon starts with; a sender added by a reload has no pool until the
 * next start. */
#ifndef WB_SEND_POOLS_H
#define WB_SEND_POOLS_H
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>
#include "warmbench/config.h"
#include "warmbench/oauth.h"
#include "warmbench/smtp.h"

struct wb_send_pool {
    struct wb_smtp *smtp;
    char *sender;        /* the one sender of an own pool; NULL: the shared pool */
    char *provider;      /* its OAuth provider's name, NULL for password auth */
    char *url;           /* for log lines */
    enum wb_auth auth;
    int connections;
};

struct wb_send_pools {
    struct wb_send_pool *v;
    size_t n;
};

/* Starts every pool's workers. -1 with *err (malloc'd) when one cannot be
 * set up; what was started is freed. */
int wb_send_pools_init(struct wb_send_pools *ps, uv_loop_t *loop, const struct wb_config *cfg,
                       char **err);
/* The pool a sender's mail leaves through, or NULL (a sender the daemon
 * did not start with). */
struct wb_send_pool *wb_send_pools_for(struct wb_send_pools *ps, const struct wb_config *cfg,
                                       const char *sender);
/* The access token to send with now: "" for a password pool, NULL when
 * an OAuth pool has none (its mail waits). */
const char *wb_send_pool_bearer(const struct wb_send_pool *p, struct wb_oauth *oauth);
/* Total connections, for sizing claims. */
int wb_send_pools_connections(const struct wb_send_pools *ps);
/* Stops every worker (a transfer on the wire is aborted) and frees. */
void wb_send_pools_free(struct wb_send_pools *ps);

#endif
