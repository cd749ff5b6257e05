/* The endpoint on http_loop. Each request gets a struct wb_req; one that
 * waits on the database is suspended, and the answer is queued when MHD
 * calls the handler again after wb_http_resume (MHD wants responses queued
 * from its handler). A request has two owners, the connection and the
 * pending operation, and is freed when both have let go, so neither a
 * closed connection nor a late callback can touch freed memory. */
#include "warmbench/router.h"
#include "warmbench/ats_in.h"
#include "warmbench/ats_vendor.h"
#include "warmbench/buf.h"
#include "warmbench/http_loop.h"
#include "warmbench/util.h"
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

struct rt_listener {
    struct wb_router *rt;
    struct wb_http *http;
    bool admin;
};

struct wb_req {
    struct wb_router *rt;           /* NULL once the router is gone */
    struct rt_listener *l;
    struct MHD_Connection *conn;    /* NULL once MHD is done with it */
    struct wb_req_info info;
    bool started, op_pending;
    bool answered;                  /* given up on: 503 sent, op still pending */
    uint64_t since;                 /* uv_now when it began to wait */
    int status;                     /* the answer, once known */
    struct MHD_Response *resp;
    TAILQ_ENTRY(wb_req) link;       /* in rt->waiting while op_pending && !answered */
    char *ua, *purpose, ip[INET6_ADDRSTRLEN];
    struct wb_buf body;             /* POST /ats/events: up to WB_ATS_BODY_MAX */
    size_t body_seen;               /* bytes received, kept or not */
};
TAILQ_HEAD(rt_reqs, wb_req);

struct wb_router {
    uv_loop_t *loop;
    const struct wb_config *cfg;
    struct wb_pg *pg;
    struct wb_ats_session *ats;     /* native ATS lookups; NULL when none */
    struct wb_metrics *metrics;
    struct wb_route_handlers tokens; /* the token routes' handlers */
    struct rt_listener pub, adm;
    struct rt_reqs waiting;         /* suspended requests, oldest first */
    uv_timer_t sweep;               /* answers those that waited too long */
};

/* ---- routing (pure) ---- */

static bool rt_token_route(const char *path, const char *prefix, const char *suffix,
                           enum wb_token_kind kind, const unsigned char *key, size_t keylen,
                           struct wb_token *out)
{
    size_t pl = strlen(prefix), sl = strlen(suffix), n = strlen(path);
    if (n <= pl + sl || strncmp(path, prefix, pl) || strcmp(path + n - sl, suffix))
        return false;
    const char *tok = path + pl;
    size_t len = n - pl - sl;
    if (len >= WB_TOKEN_MAX)
        return false;
    return wb_token_parse(key, keylen, tok, len, out) == 0 && out->kind == kind;
}

static enum wb_route_kind rt_token_kind(const char *path, bool get, bool post,
                                        const unsigned char *key, size_t keylen,
                                        struct wb_token *tok)
{
    if (get && rt_token_route(path, "/o/", ".gif", WB_TOKEN_OPEN, key, keylen, tok))
        return WB_ROUTE_OPEN;
    if (get && rt_token_route(path, "/c/", "", WB_TOKEN_CLICK, key, keylen, tok))
        return WB_ROUTE_CLICK;
    if ((get || post) && rt_token_route(path, "/u/", "", WB_TOKEN_UNSUB, key, keylen, tok))
        return post ? WB_ROUTE_UNSUB_POST : WB_ROUTE_UNSUB_PAGE;
    /* /ats/events/KIND: the configured native kind's own web hooks. */
    if (post && (!strcmp(path, "/ats/events") || wb_has_prefix(path, "/ats/events/")))
        return WB_ROUTE_ATS_EVENTS;
    return WB_ROUTE_NONE;
}

enum wb_route_kind wb_route(const char *method, const char *path, bool admin, bool split,
                            const unsigned char *key, size_t keylen, struct wb_route *out)
{
    memset(out, 0, sizeof *out);
    out->tok.link = -1;
    bool get = !strcmp(method, "GET"), head = !strcmp(method, "HEAD");
    bool post = !strcmp(method, "POST");
    out->head = head;
    enum wb_route_kind k = WB_ROUTE_NONE;
    if ((get || head) && (!split || admin)) {
        if (!strcmp(path, "/healthz"))
            k = WB_ROUTE_HEALTHZ;
        else if (!strcmp(path, "/metrics"))
            k = WB_ROUTE_METRICS;
    }
    if (k == WB_ROUTE_NONE && !admin)
        k = rt_token_kind(path, get || head, post, key, keylen, &out->tok);
    out->kind = k;
    return k;
}

/* ---- responses ---- */

struct MHD_Response *wb_resp_text(const char *type, const char *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    /* Every answer here is about one person's message: never cache it. */
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store, private");
    return r;
}

struct MHD_Response *wb_resp_plain(const char *body)
{
    return wb_resp_text("text/plain; charset=utf-8", body);
}

struct MHD_Response *wb_resp_busy(void)
{
    struct MHD_Response *r = wb_resp_plain("busy, try again shortly\n");
    MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "5");
    return r;
}

static struct MHD_Response *rt_json(const char *body)
{
    return wb_resp_text("application/json", body);
}

static enum MHD_Result rt_answer(struct MHD_Connection *c, int status, struct MHD_Response *r)
{
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result rt_not_found(struct MHD_Connection *c)
{
    return rt_answer(c, MHD_HTTP_NOT_FOUND, wb_resp_plain("not found\n"));
}

/* ---- request lifetime ---- */

static void rt_req_free(struct wb_req *q)
{
    if (q->resp)
        MHD_destroy_response(q->resp);
    free(q->ua);
    free(q->purpose);
    wb_buf_free(&q->body);
    free(q);
}

const struct wb_req_info *wb_req_info(const struct wb_req *q)
{
    return &q->info;
}

void *wb_req_cls(const struct wb_req *q)
{
    return q->rt ? q->rt->tokens.cls : NULL;
}

enum MHD_Result wb_req_answer(struct wb_req *q, int status, struct MHD_Response *r)
{
    return rt_answer(q->conn, status, r);
}

enum MHD_Result wb_req_wait(struct wb_req *q)
{
    struct wb_router *rt = q->rt;
    q->op_pending = true;
    TAILQ_INSERT_TAIL(&rt->waiting, q, link);
    q->since = uv_now(rt->loop);
    MHD_suspend_connection(q->conn);
    return MHD_YES;
}

bool wb_req_wake(struct wb_req *q)
{
    q->op_pending = false;
    if (q->answered || !q->rt || !q->conn) {
        if (!q->conn)
            rt_req_free(q);
        return false;
    }
    TAILQ_REMOVE(&q->rt->waiting, q, link);
    return true;
}

void wb_req_finish(struct wb_req *q, int status, struct MHD_Response *r)
{
    q->status = status;
    q->resp = r;
    wb_http_resume(q->l->http, q->conn);
}

static void rt_on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                            enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    struct wb_req *q = *con_cls;
    if (!q)
        return;
    *con_cls = NULL;
    q->conn = NULL;
    if (!q->op_pending)
        rt_req_free(q);
}

/* ---- /healthz ---- */

static void rt_on_health(PGresult *res, void *ud)
{
    struct wb_req *q = ud;
    if (!wb_req_wake(q))
        return;
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK)
        wb_req_finish(q, MHD_HTTP_OK, wb_resp_plain("ok\n"));
    else
        wb_req_finish(q, MHD_HTTP_SERVICE_UNAVAILABLE, wb_resp_plain("database unavailable\n"));
}

/* A health check given up on takes its SELECT 1 back: a stalled server
 * must not collect one per check. */
static bool rt_health_give_up(struct wb_router *rt, struct wb_req *q)
{
    return wb_pg_forget(rt->pg, rt_on_health, q);
}

static enum MHD_Result rt_health(struct wb_req *q)
{
    if (wb_pg_query(q->rt->pg, "SELECT 1", 0, NULL, rt_on_health, q) < 0)
        return wb_req_answer(q, MHD_HTTP_SERVICE_UNAVAILABLE,
                             wb_resp_plain("database unavailable\n"));
    return wb_req_wait(q);
}

/* ---- /metrics ---- */

static struct MHD_Response *rt_metrics_text(struct wb_router *rt)
{
    struct wb_buf b;
    wb_buf_init(&b);
    wb_metrics_render(rt->metrics, &b);
    struct MHD_Response *r = wb_resp_text("text/plain; version=0.0.4; charset=utf-8", b.data);
    wb_buf_free(&b);
    return r;
}

static void rt_on_metrics_ready(void *ud)
{
    struct wb_req *q = ud;
    if (!wb_req_wake(q))
        return;
    wb_req_finish(q, MHD_HTTP_OK, rt_metrics_text(q->rt));
}

static enum MHD_Result rt_metrics(struct wb_req *q)
{
    if (!q->rt->metrics)
        return rt_not_found(q->conn);
    if (wb_metrics_prepare(q->rt->metrics, rt_on_metrics_ready, q) == 0)
        return wb_req_answer(q, MHD_HTTP_OK, rt_metrics_text(q->rt));
    return wb_req_wait(q);
}

/* ---- /ats/events ---- */

static void rt_on_ats_done(int status, const char *body, void *ud)
{
    struct wb_req *q = ud;
    if (!wb_req_wake(q))
        return;
    wb_req_finish(q, status, rt_json(body));
}

static bool rt_ats_enabled(const struct wb_config *cfg)
{
    return cfg->ats.enabled && cfg->ats.secret && cfg->ats.secret_len;
}

struct rt_headers {
    struct wb_ats_header h[64];
    size_t n;
};

static enum MHD_Result rt_collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                         const char *value)
{
    (void)kind;
    struct rt_headers *hs = cls;
    if (hs->n < sizeof hs->h / sizeof hs->h[0])
        hs->h[hs->n++] = (struct wb_ats_header){key, value ? value : ""};
    return MHD_YES;
}

/* A vendor's web hook: its adapter reads every header (ats_in.h). */
static enum MHD_Result rt_ats_vendor(struct wb_req *q)
{
    struct rt_headers hs = {.n = 0};
    MHD_get_connection_values(q->conn, MHD_HEADER_KIND, rt_collect_header, &hs);
    wb_buf_putc(&q->body, '\0');
    const struct wb_ats_vendor_request rq = {
        .kind = q->info.url + strlen("/ats/events/"), .headers = hs.h, .nheaders = hs.n,
        .body = q->body.data, .len = q->body.len - 1, .too_big = q->body_seen > WB_ATS_BODY_MAX,
        .now = (double)time(NULL), .done = rt_on_ats_done, .ud = q, .ats = q->rt->ats};
    int status;
    char *out = NULL, *echo = NULL;
    if (wb_ats_in_vendor_handle(q->rt->cfg, q->rt->pg, &rq, &status, &out, &echo) == 1)
        return wb_req_wait(q);
    struct MHD_Response *r = rt_json(out);
    char *colon = echo ? strchr(echo, ':') : NULL;
    if (colon) { /* a subscription handshake's echo */
        *colon = '\0';
        MHD_add_response_header(r, echo, colon + 1 + strspn(colon + 1, " "));
    }
    free(echo);
    free(out);
    return wb_req_answer(q, status, r);
}

static enum MHD_Result rt_ats(struct wb_req *q)
{
    const struct wb_config *cfg = q->rt->cfg;
    if (strcmp(q->info.url, "/ats/events"))
        return rt_ats_vendor(q);
    if (!rt_ats_enabled(cfg))
        return rt_not_found(q->conn);
    const char *sig = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Warmbench-Signature");
    int status;
    char *out = NULL;
    wb_buf_putc(&q->body, '\0'); /* Jansson gets the length; the NUL is for safety */
    size_t len = q->body.len - 1;
    const struct wb_ats_request rq = {.sig = sig, .body = q->body.data, .len = len,
                                      .too_big = q->body_seen > WB_ATS_BODY_MAX,
                                      .now = (long long)time(NULL), .done = rt_on_ats_done,
                                      .ud = q};
    if (wb_ats_in_handle(cfg, q->rt->pg, &rq, &status, &out) == 0) {
        struct MHD_Response *r = rt_json(out);
        free(out);
        return wb_req_answer(q, status, r);
    }
    return wb_req_wait(q);
}

/* The ATS's body is kept up to its cap; the rest is read and dropped so
 * the client sees the 413 rather than a reset. False when the body is so
 * far beyond the cap that it is to be cut off. */
static bool rt_ats_body(struct wb_req *q, const char *data, size_t n)
{
    q->body_seen += n;
    if (q->body_seen <= WB_ATS_BODY_MAX)
        wb_buf_append(&q->body, data, n);
    return q->body_seen <= 64 * (size_t)WB_ATS_BODY_MAX;
}

/* ---- the handler ---- */

static char *rt_header(struct MHD_Connection *c, const char *name)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    return v ? wb_xstrdup(v) : NULL;
}

static void rt_client_facts(struct wb_req *q)
{
    q->ua = rt_header(q->conn, MHD_HTTP_HEADER_USER_AGENT);
    q->purpose = rt_header(q->conn, "Purpose");
    if (!q->purpose)
        q->purpose = rt_header(q->conn, "Sec-Purpose");
    if (!q->purpose)
        q->purpose = rt_header(q->conn, "X-Moz");
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(q->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, q->ip, sizeof q->ip);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, q->ip, sizeof q->ip);
    q->info.ua = q->ua;
    q->info.purpose = q->purpose;
    q->info.ip = q->ip[0] ? q->ip : NULL;
}

static enum MHD_Result rt_dispatch(struct wb_req *q)
{
    switch (q->info.route.kind) {
    case WB_ROUTE_OPEN:
    case WB_ROUTE_CLICK:
    case WB_ROUTE_UNSUB_PAGE:
    case WB_ROUTE_UNSUB_POST: return q->rt->tokens.serve(q->rt->tokens.cls, q);
    case WB_ROUTE_HEALTHZ: return rt_health(q);
    case WB_ROUTE_METRICS: return rt_metrics(q);
    case WB_ROUTE_ATS_EVENTS: return rt_ats(q);
    case WB_ROUTE_NONE: break;
    }
    return rt_not_found(q->conn);
}

static enum MHD_Result rt_start(struct wb_req *q, const char *url)
{
    q->started = true;
    rt_client_facts(q);
    q->info.url = url;
    enum MHD_Result ok = rt_dispatch(q);
    q->info.url = NULL;
    return ok;
}

static struct wb_req *rt_req_new(struct rt_listener *l, struct MHD_Connection *c,
                                 const char *method, const char *url)
{
    const struct wb_config *cfg = l->rt->cfg;
    struct wb_req *q = wb_xcalloc(1, sizeof *q);
    q->rt = l->rt;
    q->l = l;
    q->conn = c;
    wb_route(method, url, l->admin, cfg->http.admin_listen != NULL, cfg->secret, cfg->secret_len,
             &q->info.route);
    return q;
}

/* A body to a path we don't serve is not worth reading; the ATS's is
 * kept; any other (RFC 8058's one-click POST) is read and dropped. */
static enum MHD_Result rt_upload(struct wb_req *q, const char *data, size_t *n)
{
    if (q->info.route.kind == WB_ROUTE_NONE && !q->started) {
        q->started = true;
        return rt_not_found(q->conn);
    }
    if (q->info.route.kind == WB_ROUTE_ATS_EVENTS && !q->started && !rt_ats_body(q, data, *n)) {
        q->started = true;
        return rt_answer(q->conn, MHD_HTTP_CONTENT_TOO_LARGE,
                         rt_json("{\"error\":\"body too large\"}"));
    }
    *n = 0;
    return MHD_YES;
}

static enum MHD_Result rt_handler(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    struct wb_req *q = *con_cls;
    if (!q) {
        *con_cls = rt_req_new(cls, c, method, url);
        /* MHD closes the connection when a response is queued on this
         * first call (headers only); answering on the next one keeps it
         * alive. A POST's body (any body, RFC 8058) is read meanwhile. */
        return MHD_YES;
    }
    if (*upload_size)
        return rt_upload(q, upload, upload_size);
    if (q->resp) {
        struct MHD_Response *r = q->resp;
        q->resp = NULL;
        return rt_answer(c, q->status, r);
    }
    if (q->started || !q->rt)
        return rt_answer(c, MHD_HTTP_SERVICE_UNAVAILABLE, wb_resp_busy());
    return rt_start(q, url);
}

/* ---- deadlines ---- */

/* How long a person (or a health check) may wait on the database: a hung
 * or partitioned server must not hold connections until TCP gives up. An
 * unsubscribe given up on may still be stored; the 503 asks to retry. */
static uint64_t rt_patience_ms(enum wb_route_kind k)
{
    return k == WB_ROUTE_HEALTHZ ? 3000
           : k == WB_ROUTE_UNSUB_POST || k == WB_ROUTE_ATS_EVENTS ? 15000 : 5000;
}

/* Whoever waits is answered now. When its operation can be taken back
 * the request no longer waits on it and is freed once answered; else it
 * stays, marked answered, until the operation calls back. */
static void rt_give_up(struct wb_router *rt, struct wb_req *q)
{
    TAILQ_REMOVE(&rt->waiting, q, link);
    enum wb_route_kind k = q->info.route.kind;
    int status = MHD_HTTP_SERVICE_UNAVAILABLE;
    struct MHD_Response *r = NULL;
    bool token_route = k == WB_ROUTE_OPEN || k == WB_ROUTE_CLICK || k == WB_ROUTE_UNSUB_PAGE ||
                       k == WB_ROUTE_UNSUB_POST;
    bool detached = k == WB_ROUTE_HEALTHZ ? rt_health_give_up(rt, q)
                    : token_route && rt->tokens.give_up
                        ? rt->tokens.give_up(rt->tokens.cls, q, &status, &r)
                        : false;
    if (detached)
        q->op_pending = false;
    else
        q->answered = true;
    if (!q->conn) { /* MHD let go already (it does not, while suspended) */
        if (r)
            MHD_destroy_response(r);
        if (detached)
            rt_req_free(q);
        return;
    }
    if (!r && k == WB_ROUTE_METRICS)
        status = MHD_HTTP_OK, r = rt_metrics_text(rt);
    else if (!r && k == WB_ROUTE_HEALTHZ)
        r = wb_resp_plain("database not answering\n");
    else if (!r)
        status = MHD_HTTP_SERVICE_UNAVAILABLE, r = wb_resp_busy();
    wb_req_finish(q, status, r);
}

static void rt_on_sweep(uv_timer_t *timer)
{
    struct wb_router *rt = timer->data;
    uint64_t now = uv_now(rt->loop);
    struct wb_req *q, *next;
    for (q = TAILQ_FIRST(&rt->waiting); q; q = next) {
        next = TAILQ_NEXT(q, link);
        if (now - q->since >= rt_patience_ms(q->info.route.kind))
            rt_give_up(rt, q);
    }
}

/* ---- set-up ---- */

static int rt_listen_on(struct wb_router *rt, struct rt_listener *l, const char *addr, bool admin,
                        char *err, size_t errsz)
{
    l->rt = rt;
    l->admin = admin;
    /* Tracking hits arrive in bursts from a few proxies (Gmail's image
     * proxy, Apple's relays), hence the generous per-IP allowance. */
    /* The public listener takes what the descriptor budget leaves (0). */
    struct wb_http_opts o = {.listen = addr, .conn_limit = admin ? 64 : 0,
                             .per_ip_limit = admin ? 16 : 256, .timeout_s = 15,
                             .mem_limit = 32 * 1024, .handler = rt_handler, .handler_cls = l,
                             .completed = rt_on_completed, .completed_cls = l};
    l->http = wb_http_new(rt->loop, &o, err, errsz);
    return l->http ? 0 : -1;
}

struct wb_router *wb_router_new(uv_loop_t *loop, const struct wb_config *cfg, struct wb_pg *pg,
                                struct wb_metrics *metrics, const struct wb_route_handlers *h,
                                char *err, size_t errsz)
{
    struct wb_router *rt = wb_xcalloc(1, sizeof *rt);
    rt->loop = loop;
    rt->cfg = cfg;
    rt->pg = pg;
    rt->metrics = metrics;
    rt->tokens = *h;
    TAILQ_INIT(&rt->waiting);
    uv_timer_init(loop, &rt->sweep);
    rt->sweep.data = rt;
    uv_timer_start(&rt->sweep, rt_on_sweep, 500, 500);
    if (rt_listen_on(rt, &rt->pub, cfg->http.listen, false, err, errsz) < 0 ||
        (cfg->http.admin_listen &&
         rt_listen_on(rt, &rt->adm, cfg->http.admin_listen, true, err, errsz) < 0)) {
        wb_router_free(rt);
        return NULL;
    }
    return rt;
}

void wb_router_set_ats(struct wb_router *rt, struct wb_ats_session *ats)
{
    rt->ats = ats;
}

void wb_router_set_config(struct wb_router *rt, const struct wb_config *cfg)
{
    rt->cfg = cfg;
    rt->tokens.set_config(rt->tokens.cls, cfg);
}

uint16_t wb_router_port(const struct wb_router *rt, bool admin)
{
    const struct rt_listener *l = admin ? &rt->adm : &rt->pub;
    return l->http ? wb_http_port(l->http) : 0;
}

void wb_router_quiesce(struct wb_router *rt)
{
    if (rt->pub.http)
        wb_http_quiesce(rt->pub.http);
    if (rt->adm.http)
        wb_http_quiesce(rt->adm.http);
}

static void rt_free_router(uv_handle_t *h)
{
    free(h->data);
}

void wb_router_free(struct wb_router *rt)
{
    if (!rt)
        return;
    /* Orphan the waiting requests: their callbacks will free them, and
     * MHD must see them resumed before it can stop. */
    struct wb_req *q;
    while ((q = TAILQ_FIRST(&rt->waiting))) {
        TAILQ_REMOVE(&rt->waiting, q, link);
        q->rt = NULL;
        if (q->conn)
            MHD_resume_connection(q->conn);
    }
    wb_http_free(rt->pub.http);
    wb_http_free(rt->adm.http);
    /* After the listeners: their last completed callbacks are done. */
    rt->tokens.free(rt->tokens.cls);
    uv_close((uv_handle_t *)&rt->sweep, rt_free_router);
}
