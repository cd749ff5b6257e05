/* The tracking handlers behind the router's token routes (SPEC "HTTP
 * endpoint"): the open pixel, tracked links, unsubscribe pages and
 * one-click POSTs. Events go through eventq; a click is answered once its
 * message's sequence is known, an unsubscribe once its event is stored.
 * An open or click already recorded this minute is answered without a new
 * event (dedup.h); unsubscribes are always recorded. */
#ifndef WB_TRACKING_H
#define WB_TRACKING_H
#include <microhttpd.h>
#include "warmbench/config.h"
#include "warmbench/eventq.h"
#include "warmbench/metrics.h"
#include "warmbench/pg_loop.h"
#include "warmbench/router.h"

struct wb_tracking;

/* The pointers must outlive the object; cfg may be swapped with
 * wb_tracking_set_config. metrics may be NULL. */
struct wb_tracking *wb_tracking_new(const struct wb_config *cfg, struct wb_pg *pg,
                                    struct wb_eventq *q, struct wb_metrics *metrics);
/* After SIGHUP: links, secret and machine_click_s from the new config. */
void wb_tracking_set_config(struct wb_tracking *t, const struct wb_config *cfg);
/* Serves one request the router routed to WB_ROUTE_OPEN, _CLICK,
 * _UNSUB_PAGE or _UNSUB_POST: answers it, or makes it wait (router.h).
 * wb_req_cls(q) must give t back. */
enum MHD_Result wb_tracking_serve(struct wb_tracking *t, struct wb_req *q);
/* The router gives up waiting for q (router.h, give_up): a click's lookup
 * is taken back and the click answered without it, an unsubscribe's wait
 * (its event stays queued) with a 503. False when nothing was taken back. */
bool wb_tracking_give_up(struct wb_tracking *t, struct wb_req *q, int *status,
                         struct MHD_Response **resp);
/* t as the router's token-route handlers (wb_router_new takes it over). */
void wb_tracking_handlers(struct wb_tracking *t, struct wb_route_handlers *h);
/* Frees at once; a callback still due for a request of t's finds the
 * request orphaned (wb_req_wake false), so free the router's listeners
 * first. */
void wb_tracking_free(struct wb_tracking *t);

#endif
