/* The HTTP endpoint (SPEC "HTTP endpoint"): the listeners on http.listen
 * and http.admin_listen (http_loop), routing by method and path, /healthz
 * and /metrics (only on the admin listener when there is one), POST
 * /ats/events handed to ats_in, and the token routes /o /c /u handed to
 * the tracking handlers (tracking.h). The router owns every request's
 * lifetime: a handler answers at once, or waits on something (the
 * database, the event queue) and answers from its callback; an answer
 * that does not come in time is a 503 sent by the router. */
#ifndef WB_ROUTER_H
#define WB_ROUTER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <microhttpd.h>
#include <uv.h>
#include "warmbench/config.h"
#include "warmbench/metrics.h"
#include "warmbench/pg_loop.h"
#include "warmbench/tokens.h"

/* ---- routing (pure) ---- */

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

/* ---- the endpoint ---- */

struct wb_router;
struct wb_req;

/* The token routes' handlers (the tracking handlers, tracking.h), handed
 * to the router as callbacks so that it knows nothing of them. */
struct wb_route_handlers {
    void *cls;                      /* what wb_req_cls gives back */
    /* Serves a request routed to WB_ROUTE_OPEN, _CLICK, _UNSUB_PAGE or
     * _UNSUB_POST: answers it, or makes it wait (below). */
    enum MHD_Result (*serve)(void *cls, struct wb_req *q);
    void (*set_config)(void *cls, const struct wb_config *cfg);
    void (*free)(void *cls);        /* called once the listeners are closed */
    /* The router stops waiting for q (its deadline passed): take the
     * operation back, so that it never calls back, and put the answer in
     * *status and *resp; q is then freed as soon as it is answered. False
     * when it cannot be taken back: the router answers 503 and q lives
     * until the callback. May be NULL (always false). */
    bool (*give_up)(void *cls, struct wb_req *q, int *status, struct MHD_Response **resp);
};

/* Starts listening on cfg's http.listen (and http.admin_listen), with h
 * behind the token routes; the router owns h->cls from here on, and frees
 * it after its listeners (on failure too). The pointers must outlive the
 * router; cfg may be swapped with wb_router_set_config. NULL with a reason
 * in err when a listener cannot be set up. */
struct wb_router *wb_router_new(uv_loop_t *loop, const struct wb_config *cfg, struct wb_pg *pg,
                                struct wb_metrics *metrics, const struct wb_route_handlers *h,
                                char *err, size_t errsz);
/* After SIGHUP: links, secrets and machine_click_s come from the new
 * config; the listen addresses stay as they were until a restart. */
void wb_router_set_config(struct wb_router *rt, const struct wb_config *cfg);
/* The daemon's native ATS session (ats_run.h), for the lookups some
 * vendors' web hooks need; NULL (the default) when there is none. It must
 * outlive the router or be unset first. */
struct wb_ats_session;
void wb_router_set_ats(struct wb_router *rt, struct wb_ats_session *ats);
/* The bound ports (admin: 0 when there is no admin listener). */
uint16_t wb_router_port(const struct wb_router *rt, bool admin);
/* Stops accepting connections; open ones are still answered. */
void wb_router_quiesce(struct wb_router *rt);
/* Answers every waiting request with 503, closes the listeners and frees
 * (the tracking handlers too). Callbacks still due from pg, eventq or
 * metrics afterwards are harmless; keep the loop running until they have
 * come. */
void wb_router_free(struct wb_router *rt);

/* ---- one request, as a handler sees it ---- */

/* What the router knows of a request before handing it over. */
struct wb_req_info {
    struct wb_route route;
    const char *url;          /* the path; valid until the handler returns */
    const char *ua;           /* User-Agent, NULL when absent */
    const char *purpose;      /* Purpose, Sec-Purpose or X-Moz (prefetches) */
    const char *ip;           /* the client's address, NULL when unknown */
};

const struct wb_req_info *wb_req_info(const struct wb_req *q);
/* The object of the handler the request was handed to (for callbacks
 * whose ud is the request). */
void *wb_req_cls(const struct wb_req *q);
/* Answers now, from the handler; takes the response. */
enum MHD_Result wb_req_answer(struct wb_req *q, int status, struct MHD_Response *r);
/* The handler's operation is under way: the request waits (its
 * connection suspended) until wb_req_finish, or the router gives up. */
enum MHD_Result wb_req_wait(struct wb_req *q);
/* First thing in the operation's callback: true when the caller is to
 * answer with wb_req_finish; false when no one is to be answered (given
 * up on, connection or router gone): q must not be touched again. */
bool wb_req_wake(struct wb_req *q);
/* Answers a request wb_req_wake said to answer; takes the response. */
void wb_req_finish(struct wb_req *q, int status, struct MHD_Response *r);

/* ---- responses (never cached: every answer is about one person) ---- */

struct MHD_Response *wb_resp_text(const char *type, const char *body);
struct MHD_Response *wb_resp_plain(const char *body);
/* 503's body, with Retry-After. */
struct MHD_Response *wb_resp_busy(void);

#endif
