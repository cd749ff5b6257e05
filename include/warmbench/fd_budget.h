/* The process's descriptors: raising RLIMIT_NOFILE to what is allowed, and
 * how many outbound work may need at once (kept out of the HTTP
 * listeners' reach: http_loop.h, wb_http_reserve_fds). */
#ifndef WB_FD_BUDGET_H
#define WB_FD_BUDGET_H
#include "warmbench/config.h"

/* Raises the soft RLIMIT_NOFILE to the hard one. *was gets the soft limit
 * before, *now after (equal when nothing changed or the raise was refused,
 * as under a unit whose SystemCallFilter= denies setrlimit; LimitNOFILE=
 * is then the way). Returns 0, or -1 with errno when the raise failed. */
int wb_fd_raise_limit(unsigned long *was, unsigned long *now);

/* Descriptors for everything but the HTTP listeners' connections: each
 * SMTP connection, IMAP poller, webhook or OAuth transfer (a socket and
 * the resolver's pair), curl's connection cache, PostgreSQL, DNS, the
 * log, the loop's own, and the files read at start and reload. */
unsigned wb_fd_reserve(const struct wb_config *cfg);

#endif
