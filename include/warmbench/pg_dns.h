/* Host names for pg_loop's connection attempts, resolved off the loop.
 * libpq would resolve a host name with a blocking getaddrinfo, so names
 * are looked up on libuv's thread pool, one after another, and handed to
 * libpq as hostaddr; host stays, for TLS verification, Kerberos and
 * .pgpass. Only pg_loop uses this; pg_loop.h remains the contract. */
#ifndef WB_PG_DNS_H
#define WB_PG_DNS_H
#include <uv.h>
#include "warmbench/buf.h"

struct wb_pg_dns;

/* An attempt's outcome: why is NULL when every name has its addresses
 * (wb_pg_dns_params then has them), else the reason for the failure. */
typedef void (*wb_pg_dns_fn)(const char *why, void *ud);

struct wb_pg_dns *wb_pg_dns_new(uv_loop_t *loop, wb_pg_dns_fn done, void *ud);
/* Starts an attempt for conninfo (or PGHOST, PGHOSTADDR and PGPORT): 0
 * when no host is a name to look up (libpq goes its own way; done is not
 * called), 1 when lookups are under way (done follows, from the loop),
 * or a libuv error when the first cannot start. */
int wb_pg_dns_start(struct wb_pg_dns *d, const char *conninfo);
/* libpq's host, hostaddr and port values for the attempt (comma-separated
 * lists, a name with several addresses given as that many hosts); left
 * empty when there was nothing to resolve. */
void wb_pg_dns_params(const struct wb_pg_dns *d, struct wb_buf *host, struct wb_buf *hostaddr,
                      struct wb_buf *port);
/* Forgets the attempt: a lookup still running only lets go, and done is
 * not called for it. Safe from within done. */
void wb_pg_dns_cancel(struct wb_pg_dns *d);
/* Cancels and frees; released(ud) runs once no lookup of d's is left on
 * the thread pool (at once when none is). */
void wb_pg_dns_free(struct wb_pg_dns *d, void (*released)(void *ud), void *ud);

#endif
