/* The handoff delivery engine (SPEC "Handoff to the ATS"): claims due
 * handoffs from PostgreSQL under a lease, POSTs each signed body to
 * ats.webhook_url over the curl loop, and writes outcomes back in batches.
 * All on the daemon's one loop. Delivery is at least once; the
 * Idempotency-Key (the same on every retry) makes it once at the ATS. */
#ifndef WB_HANDOFF_H
#define WB_HANDOFF_H
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "warmbench/config.h"
#include "warmbench/curl_loop.h"
#include "warmbench/pg_loop.h"

struct wb_handoff;
struct wb_ats_session;

struct wb_handoff_figures {
    size_t inflight;        /* POSTs running */
    size_t unwritten;       /* outcomes not yet stored */
    uint64_t delivered, retried, dead;
};

/* Create only when cfg->ats.enabled or cfg->tasks.webhook_url (task.due
 * rows, tasks.h, go out as the generic signed webhook). owner names this process in leases
 * (e.g. "host:pid"); it is copied. */
struct wb_handoff *wb_handoff_new(uv_loop_t *loop, struct wb_curl_loop *cl, struct wb_pg *pg,
                                  const struct wb_config *cfg, const char *owner);
/* The config in use from now on (URL, secret, retry settings); POSTs in
 * flight keep what they started with. The old one may be freed after. */
void wb_handoff_set_config(struct wb_handoff *h, const struct wb_config *cfg);
/* Starts claiming (once the database is reachable and the schema current). */
void wb_handoff_start(struct wb_handoff *h);
/* Something may be due: NOTIFY wb_handoffs, or a database reconnect. Cheap
 * and coalesced; call it as often as you like. */
void wb_handoff_kick(struct wb_handoff *h);
/* Stop claiming, let the POSTs in flight finish (bounded by the 30 s
 * request timeout; any still running then are cancelled and put back to
 * pending, same key), store the outcomes, then call done. */
void wb_handoff_drain(struct wb_handoff *h, void (*done)(void *ud), void *ud);
void wb_handoff_figures(const struct wb_handoff *h, struct wb_handoff_figures *f);
/* The native ATS session (vendor, token, pace) the engine's runs share,
 * for the router's inbound lookups; freed by wb_handoff_stop. */
struct wb_ats_session *wb_handoff_ats(struct wb_handoff *h);
/* Frees everything (timers close on the loop: run it once more). After
 * drain's done, or with nothing in flight; before or after wb_curl_loop_free. */
void wb_handoff_stop(struct wb_handoff *h);

#endif
