/* The tracking endpoint (SPEC "HTTP endpoint"): the open pixel, tracked
 * links, unsubscribe pages and one-click POSTs on http.listen, /healthz and
 * /metrics on http.admin_listen when set. Events go through eventq; a
 * click is answered once its message's sequence is known, an unsubscribe
 * once its event is stored. An open or click already recorded this minute
 * is answered without a new event (dedup.h); unsubscribes are always
 * recorded. */
#ifndef WB_TRACKING_H
#define WB_TRACKING_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "warmbench/config.h"
#include "warmbench/eventq.h"
#include "warmbench/metrics.h"
#include "warmbench/pg_loop.h"
#include "warmbench/tokens.h"

enum wb_route_kind {
    WB_ROUTE_NONE,        /* 404, nothing recorded */
    WB_ROUTE_OPEN,        /* GET|HEAD /o/TOKEN.gif */
    WB_ROUTE_CLICK,       /* GET|HEAD /c/TOKEN */
    WB_ROUTE_UNSUB_PAGE,  /* GET|HEAD /u/TOKEN */
    WB_ROUTE_UNSUB_POST,  /* POST /u/TOKEN */
    WB_ROUTE_HEALTHZ,     /* GET|HEAD /healthz */
    WB_ROUTE_METRICS,     /* GET|HEAD /metrics */
    WB_ROUTE_ATS_EVENTS,  /* POST /ats/events (ats_in.h), 404 unless ats has a secret */
};

struct wb_route {
    enum wb_route_kind kind;
    bool head;            /* a HEAD request */
    struct wb_token tok;  /* for the token routes */
};

/* Routes one request (pure). admin: it came to the admin listener; split:
 * an admin listener exists, so /healthz and /metrics live only there. A
 * token must verify with key and be of the route's kind. */
enum wb_route_kind wb_route(const char *method, const char *path, bool admin, bool split,
                            const unsigned char *key, size_t keylen, struct wb_route *out);

struct wb_tracking;

/* Starts listening on cfg's http.listen (and http.admin_listen). The
 * pointers must outlive the tracking object; cfg may be swapped with
 * wb_tracking_set_config. NULL with a reason in err when a listener
 * cannot be set up. */
struct wb_tracking *wb_tracking_new(uv_loop_t *loop, const struct wb_config *cfg, struct wb_pg *pg,
                                    struct wb_eventq *q, struct wb_metrics *metrics, char *err,
                                    size_t errsz);
/* After SIGHUP: links, secret and machine_click_s come from the new
 * config; the listen addresses stay as they were until a restart. */
void wb_tracking_set_config(struct wb_tracking *t, const struct wb_config *cfg);
/* The bound ports (admin: 0 when there is no admin listener). */
uint16_t wb_tracking_port(const struct wb_tracking *t, bool admin);
/* Stops accepting connections; open ones are still answered. */
void wb_tracking_quiesce(struct wb_tracking *t);
/* Answers every waiting request with 503, closes the listeners and frees.
 * Callbacks still due from pg, eventq or metrics afterwards are harmless;
 * keep the loop running until they have come. */
void wb_tracking_free(struct wb_tracking *t);

#endif
