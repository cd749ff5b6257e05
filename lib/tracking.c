/* Tracking routes on http_loop. Each request gets a struct treq; one that
 * waits on the database is suspended, and the answer is queued when MHD
 * calls the handler again after wb_http_resume (MHD wants responses queued
 * from its handler). A treq has two owners, the connection and the
 * pending operation, and is freed when both have let go, so neither a
 * closed connection nor a late callback can touch freed memory. */
#include "warmbench/tracking.h"
#include "warmbench/ats_in.h"
#include "warmbench/buf.h"
#include "warmbench/dedup.h"
#include "warmbench/http_loop.h"
#include "warmbench/log.h"
#include "warmbench/machine.h"
#include "warmbench/util.h"
#include <arpa/inet.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The smallest valid GIF: 1×1, one transparent pixel (43 bytes). */
static const unsigned char pixel[43] = {
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00,
    0x00, 0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00,
    0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b};

static const char lookup_sql[] =
    "SELECT sequence_id, extract(epoch FROM sent_at) FROM messages WHERE id = $1";

/* message id → (sequence, sent_at), direct-mapped: a message's sequence
 * and send time never change once it is sent, and a bounded table keeps
 * memory flat however many messages are clicked. */
#define CACHE_SLOTS 4096

/* Opens and clicks recorded this minute (dedup.h): 65,536 distinct hits a
 * minute before repeats start to be recorded twice, in 1.5 MB. */
#define DEDUP_ENTRIES 65536
#define DEDUP_WINDOW_S 60
struct cache_slot {
    int64_t id;          /* 0 = empty */
    char *sequence;
    double sent_at;
};

struct listener {
    struct wb_tracking *t;
    struct wb_http *http;
    bool admin;
};

struct treq;

struct wb_tracking {
    uv_loop_t *loop;
    const struct wb_config *cfg;
    struct wb_pg *pg;
    struct wb_eventq *q;
    struct wb_metrics *metrics;
    struct listener pub, adm;
    struct treq *waiting;           /* suspended requests */
    uv_timer_t sweep;               /* answers those that waited too long */
    struct wb_dedup *dedup;         /* opens and clicks recorded this minute */
    struct cache_slot cache[CACHE_SLOTS];
};

struct treq {
    struct wb_tracking *t;          /* NULL once the tracking object is gone */
    struct listener *l;
    struct MHD_Connection *conn;    /* NULL once MHD is done with it */
    struct wb_route r;
    bool started, op_pending;
    bool answered;                  /* given up on: 503 sent, op still pending */
    uint64_t since;                 /* uv_now when it began to wait */
    int status;                     /* the answer, once known */
    struct MHD_Response *resp;
    struct treq *prev, *next;       /* in t->waiting while op_pending && !answered */
    char *ua, *purpose, ip[INET6_ADDRSTRLEN];
    struct wb_buf body;             /* POST /ats/events: up to WB_ATS_BODY_MAX */
    size_t body_seen;               /* bytes received, kept or not */
};

/* ---- routing (pure) ---- */

static bool token_route(const char *path, const char *prefix, const char *suffix,
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
    if (k == WB_ROUTE_NONE && !admin) {
        if ((get || head) && token_route(path, "/o/", ".gif", WB_TOKEN_OPEN, key, keylen, &out->tok))
            k = WB_ROUTE_OPEN;
        else if ((get || head) && token_route(path, "/c/", "", WB_TOKEN_CLICK, key, keylen, &out->tok))
            k = WB_ROUTE_CLICK;
        else if ((get || head || post) &&
                 token_route(path, "/u/", "", WB_TOKEN_UNSUB, key, keylen, &out->tok))
            k = post ? WB_ROUTE_UNSUB_POST : WB_ROUTE_UNSUB_PAGE;
        else if (post && !strcmp(path, "/ats/events"))
            k = WB_ROUTE_ATS_EVENTS;
    }
    out->kind = k;
    return k;
}

/* ---- responses ---- */

static struct MHD_Response *text(const char *type, const char *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    /* Every answer here is about one person's message: never cache it. */
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store, private");
    return r;
}

static struct MHD_Response *plain(const char *body)
{
    return text("text/plain; charset=utf-8", body);
}

static struct MHD_Response *busy(void)
{
    struct MHD_Response *r = plain("busy, try again shortly\n");
    MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "5");
    return r;
}

static enum MHD_Result answer(struct MHD_Connection *c, int status, struct MHD_Response *r)
{
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result not_found(struct MHD_Connection *c)
{
    return answer(c, MHD_HTTP_NOT_FOUND, plain("not found\n"));
}

static const char page_head[] =
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width\"><meta name=\"robots\" "
    "content=\"noindex\"><title>Unsubscribe</title></head><body style=\"font-family:"
    "sans-serif;max-width:32em;margin:3em auto\">";

static struct MHD_Response *unsub_page(const char *path)
{
    /* path passed routing, so it is "/u/" and base64url characters only. */
    char *html = wb_xasprintf("%s<h1>Unsubscribe</h1><p>Stop all email from us to this "
                              "address?</p><form method=\"post\" action=\"%s\">"
                              "<input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">"
                              "<button type=\"submit\">Unsubscribe</button></form></body></html>\n",
                              page_head, path);
    struct MHD_Response *r = text("text/html; charset=utf-8", html);
    free(html);
    return r;
}

static struct MHD_Response *unsub_done(void)
{
    char *html = wb_xasprintf("%s<h1>Unsubscribed</h1><p>You will get no more email from us."
                              "</p></body></html>\n", page_head);
    struct MHD_Response *r = text("text/html; charset=utf-8", html);
    free(html);
    return r;
}

/* ---- request lifetime ---- */

static void treq_free(struct treq *q)
{
    if (q->resp)
        MHD_destroy_response(q->resp);
    free(q->ua);
    free(q->purpose);
    wb_buf_free(&q->body);
    free(q);
}

static void wait_begin(struct treq *q)
{
    struct wb_tracking *t = q->t;
    q->op_pending = true;
    q->next = t->waiting;
    if (t->waiting)
        t->waiting->prev = q;
    t->waiting = q;
    q->since = uv_now(t->loop);
    MHD_suspend_connection(q->conn);
}

static void unlink_waiting(struct treq *q)
{
    struct wb_tracking *t = q->t;
    if (q->prev)
        q->prev->next = q->next;
    else
        t->waiting = q->next;
    if (q->next)
        q->next->prev = q->prev;
    q->prev = q->next = NULL;
}

/* The pending operation is over. True when the caller is to answer (with
 * finish()); false when there is no one to answer: the request was given
 * up on, its connection or the tracking object is gone (then it is freed
 * here once no owner is left). */
static bool wait_end(struct treq *q)
{
    q->op_pending = false;
    if (q->answered || !q->t || !q->conn) {
        if (!q->conn)
            treq_free(q);
        return false;
    }
    unlink_waiting(q);
    return true;
}

static void finish(struct treq *q, int status, struct MHD_Response *r)
{
    q->status = status;
    q->resp = r;
    wb_http_resume(q->l->http, q->conn);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    struct treq *q = *con_cls;
    if (!q)
        return;
    *con_cls = NULL;
    q->conn = NULL;
    if (!q->op_pending)
        treq_free(q);
}

/* ---- events ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct wb_machine_req machine_req(const struct treq *q, double since_send)
{
    return (struct wb_machine_req){q->ua, q->purpose, q->ip[0] ? q->ip : NULL, q->r.head,
                                   since_send, q->t->cfg->http.machine_click_s};
}

/* detail as JSON: {"link": NAME} for clicks, plus {"machine": true,
 * "why": REASON} for machine events. */
static char *detail(const char *link, const char *why)
{
    json_t *o = json_object();
    if (link)
        json_object_set_new(o, "link", json_string(link));
    if (why) {
        json_object_set_new(o, "machine", json_true());
        json_object_set_new(o, "why", json_string(why));
    }
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static int record(struct treq *q, const char *type, const char *link, const char *why,
                  double at, wb_eventq_done_fn done, void *ud)
{
    char *d = detail(link, why);
    int rc = wb_eventq_push(q->t->q, q->r.tok.message_id, type, why != NULL, d, at, done, ud);
    free(d);
    return rc;
}

/* Records an open (what WB_DEDUP_OPEN) or a click on link `what` unless
 * the same hit was recorded this minute: one recipient or one scanner
 * repeating a hit must not fill the queue that others' unsubscribes need.
 * Machine and human hits count apart, so a proxy's prefetch cannot hide
 * the person's own open or click. 0 when recorded or a repeat; -1 when the
 * queue refused it, which is then not remembered, so a retry can store it. */
static int record_once(struct treq *q, int what, const char *link, const char *why)
{
    struct wb_dedup_key k = {q->r.tok.message_id, what, why != NULL};
    double now = now_s();
    if (wb_dedup_seen(q->t->dedup, &k, now)) {
        wb_metrics_count_repeat(q->t->metrics, what != WB_DEDUP_OPEN);
        return 0;
    }
    if (record(q, what == WB_DEDUP_OPEN ? "open" : "click", link, why, now, NULL, NULL) < 0)
        return -1;
    wb_dedup_mark(q->t->dedup, &k, now);
    return 0;
}

/* A click that may be a repeat, before its machine flag is known. */
static bool click_maybe_repeat(const struct treq *q)
{
    struct wb_dedup_key k = {q->r.tok.message_id, q->r.tok.link, false};
    double now = now_s();
    if (wb_dedup_seen(q->t->dedup, &k, now))
        return true;
    k.machine = true;
    return wb_dedup_seen(q->t->dedup, &k, now);
}

/* ---- routes ---- */

static enum MHD_Result do_open(struct treq *q)
{
    struct wb_machine_req m = machine_req(q, -1);
    if (record_once(q, WB_DEDUP_OPEN, NULL, wb_machine_open(&m)) < 0)
        return answer(q->conn, MHD_HTTP_SERVICE_UNAVAILABLE, busy());
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof pixel, (void *)pixel, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "image/gif");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store, private");
    return answer(q->conn, MHD_HTTP_OK, r);
}

/* The answer to a click whose message belongs to `sequence`: the event is
 * queued and the status returned with its response in *out. */
static int click_answer(struct treq *q, const char *sequence, double sent_at,
                        struct MHD_Response **out)
{
    const struct wb_sequence *s = wb_config_sequence(q->t->cfg, sequence);
    int link = q->r.tok.link;
    if (!s || link < 0 || (size_t)link >= s->n_links) {
        *out = plain("not found\n");
        return MHD_HTTP_NOT_FOUND;
    }
    struct wb_machine_req m = machine_req(q, sent_at > 0 ? now_s() - sent_at : -1);
    if (record_once(q, link, s->links[link].name, wb_machine_click(&m)) < 0) {
        *out = busy();
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    }
    /* The Location is only ever a configured link: no open redirect. */
    *out = plain("");
    MHD_add_response_header(*out, MHD_HTTP_HEADER_LOCATION, s->links[link].url);
    MHD_add_response_header(*out, "Referrer-Policy", "no-referrer");
    return MHD_HTTP_FOUND;
}

static void on_lookup(PGresult *res, void *ud)
{
    struct treq *q = ud;
    if (!wait_end(q))
        return;
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
        finish(q, MHD_HTTP_SERVICE_UNAVAILABLE, busy());
        return;
    }
    if (PQntuples(res) != 1) {
        finish(q, MHD_HTTP_NOT_FOUND, plain("not found\n")); /* a forgotten person's message */
        return;
    }
    const char *seq = PQgetvalue(res, 0, 0);
    double sent_at = PQgetisnull(res, 0, 1) ? -1 : strtod(PQgetvalue(res, 0, 1), NULL);
    if (sent_at > 0) {
        struct cache_slot *c = &q->t->cache[(uint64_t)q->r.tok.message_id % CACHE_SLOTS];
        free(c->sequence);
        *c = (struct cache_slot){q->r.tok.message_id, wb_xstrdup(seq), sent_at};
    }
    struct MHD_Response *r;
    int status = click_answer(q, seq, sent_at, &r);
    finish(q, status, r);
}

static enum MHD_Result do_click(struct treq *q)
{
    struct cache_slot *c = &q->t->cache[(uint64_t)q->r.tok.message_id % CACHE_SLOTS];
    if (c->id == q->r.tok.message_id && c->sequence) {
        struct MHD_Response *r;
        int status = click_answer(q, c->sequence, c->sent_at, &r);
        return answer(q->conn, status, r);
    }
    /* A lookup only to answer 503 would be wasted; a repeat needs no room. */
    if (wb_eventq_full(q->t->q) && !click_maybe_repeat(q))
        return answer(q->conn, MHD_HTTP_SERVICE_UNAVAILABLE, busy());
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)q->r.tok.message_id);
    const char *p[] = {id};
    if (wb_pg_query(q->t->pg, lookup_sql, 1, p, on_lookup, q) < 0)
        return answer(q->conn, MHD_HTTP_SERVICE_UNAVAILABLE, busy());
    wait_begin(q);
    return MHD_YES;
}

static void on_unsub_stored(bool stored, void *ud)
{
    struct treq *q = ud;
    if (!wait_end(q))
        return;
    if (stored)
        finish(q, MHD_HTTP_OK, unsub_done());
    else
        finish(q, MHD_HTTP_SERVICE_UNAVAILABLE, busy());
}

static enum MHD_Result do_unsub(struct treq *q)
{
    /* A one-click POST comes from the person's mail provider acting for
     * them: never flagged as a machine, and never deduplicated (each one
     * is stored; a second is harmless). */
    if (record(q, "unsubscribe", NULL, NULL, now_s(), on_unsub_stored, q) < 0)
        return answer(q->conn, MHD_HTTP_SERVICE_UNAVAILABLE, busy());
    wait_begin(q);
    return MHD_YES;
}

static void on_health(PGresult *res, void *ud)
{
    struct treq *q = ud;
    if (!wait_end(q))
        return;
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK)
        finish(q, MHD_HTTP_OK, plain("ok\n"));
    else
        finish(q, MHD_HTTP_SERVICE_UNAVAILABLE, plain("database unavailable\n"));
}

static enum MHD_Result do_health(struct treq *q)
{
    if (wb_pg_query(q->t->pg, "SELECT 1", 0, NULL, on_health, q) < 0)
        return answer(q->conn, MHD_HTTP_SERVICE_UNAVAILABLE, plain("database unavailable\n"));
    wait_begin(q);
    return MHD_YES;
}

static struct MHD_Response *metrics_text(struct wb_tracking *t)
{
    struct wb_buf b;
    wb_buf_init(&b);
    wb_metrics_render(t->metrics, &b);
    struct MHD_Response *r = text("text/plain; version=0.0.4; charset=utf-8", b.data);
    wb_buf_free(&b);
    return r;
}

static void on_metrics_ready(void *ud)
{
    struct treq *q = ud;
    if (!wait_end(q))
        return;
    finish(q, MHD_HTTP_OK, metrics_text(q->t));
}

static enum MHD_Result do_metrics(struct treq *q)
{
    if (!q->t->metrics)
        return not_found(q->conn);
    if (wb_metrics_prepare(q->t->metrics, on_metrics_ready, q) == 0)
        return answer(q->conn, MHD_HTTP_OK, metrics_text(q->t));
    wait_begin(q);
    return MHD_YES;
}

static struct MHD_Response *json_text(const char *body)
{
    return text("application/json", body);
}

static void on_ats_done(int status, const char *body, void *ud)
{
    struct treq *q = ud;
    if (!wait_end(q))
        return;
    finish(q, status, json_text(body));
}

static bool ats_enabled(const struct wb_config *cfg)
{
    return cfg->ats.enabled && cfg->ats.secret && cfg->ats.secret_len;
}

static enum MHD_Result do_ats(struct treq *q)
{
    if (!ats_enabled(q->t->cfg))
        return not_found(q->conn);
    const char *sig = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Warmbench-Signature");
    int status;
    char *out = NULL;
    wb_buf_putc(&q->body, '\0'); /* Jansson gets the length; the NUL is for safety */
    size_t len = q->body.len - 1;
    if (wb_ats_in_handle(q->t->cfg, q->t->pg, sig, q->body.data, len,
                         q->body_seen > WB_ATS_BODY_MAX, (long long)time(NULL), on_ats_done, q,
                         &status, &out) == 0) {
        struct MHD_Response *r = json_text(out);
        free(out);
        return answer(q->conn, status, r);
    }
    wait_begin(q);
    return MHD_YES;
}

/* ---- the handler ---- */

static char *header(struct MHD_Connection *c, const char *name)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    return v ? wb_xstrdup(v) : NULL;
}

static void client_facts(struct treq *q)
{
    q->ua = header(q->conn, MHD_HTTP_HEADER_USER_AGENT);
    q->purpose = header(q->conn, "Purpose");
    if (!q->purpose)
        q->purpose = header(q->conn, "Sec-Purpose");
    if (!q->purpose)
        q->purpose = header(q->conn, "X-Moz");
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(q->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, q->ip, sizeof q->ip);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, q->ip, sizeof q->ip);
}

static enum MHD_Result start(struct treq *q, const char *url)
{
    switch (q->r.kind) {
    case WB_ROUTE_OPEN: return do_open(q);
    case WB_ROUTE_CLICK: return do_click(q);
    case WB_ROUTE_UNSUB_PAGE: return answer(q->conn, MHD_HTTP_OK, unsub_page(url));
    case WB_ROUTE_UNSUB_POST: return do_unsub(q);
    case WB_ROUTE_HEALTHZ: return do_health(q);
    case WB_ROUTE_METRICS: return do_metrics(q);
    case WB_ROUTE_ATS_EVENTS: return do_ats(q);
    case WB_ROUTE_NONE: break;
    }
    return not_found(q->conn);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    (void)version, (void)upload;
    struct listener *l = cls;
    struct treq *q = *con_cls;
    if (!q) {
        const struct wb_config *cfg = l->t->cfg;
        q = wb_xcalloc(1, sizeof *q);
        q->t = l->t;
        q->l = l;
        q->conn = c;
        wb_route(method, url, l->admin, cfg->http.admin_listen != NULL, cfg->secret,
                 cfg->secret_len, &q->r);
        *con_cls = q;
        /* MHD closes the connection when a response is queued on this
         * first call (headers only); answering on the next one keeps it
         * alive. A POST's body (any body, RFC 8058) is read meanwhile. */
        return MHD_YES;
    }
    if (*upload_size) {
        /* A body to a path we don't serve is not worth reading. */
        if (q->r.kind == WB_ROUTE_NONE && !q->started) {
            q->started = true;
            return not_found(c);
        }
        /* The ATS's body is kept up to its cap; the rest is read and
         * dropped so the client sees the 413 rather than a reset. A body
         * far beyond the cap is cut off. */
        if (q->r.kind == WB_ROUTE_ATS_EVENTS && !q->started) {
            q->body_seen += *upload_size;
            if (q->body_seen <= WB_ATS_BODY_MAX)
                wb_buf_append(&q->body, upload, *upload_size);
            else if (q->body_seen > 64 * (size_t)WB_ATS_BODY_MAX) {
                q->started = true;
                return answer(c, MHD_HTTP_CONTENT_TOO_LARGE,
                              json_text("{\"error\":\"body too large\"}"));
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (q->resp) {
        struct MHD_Response *r = q->resp;
        q->resp = NULL;
        return answer(c, q->status, r);
    }
    if (q->started || !q->t)
        return answer(c, MHD_HTTP_SERVICE_UNAVAILABLE, busy());
    q->started = true;
    client_facts(q);
    return start(q, url);
}

/* ---- deadlines ---- */

/* How long a person (or a health check) may wait on the database: a hung
 * or partitioned server must not hold connections until TCP gives up. An
 * unsubscribe given up on may still be stored; the 503 asks to retry. */
static uint64_t patience_ms(enum wb_route_kind k)
{
    return k == WB_ROUTE_HEALTHZ ? 3000
           : k == WB_ROUTE_UNSUB_POST || k == WB_ROUTE_ATS_EVENTS ? 15000 : 5000;
}

static void on_sweep(uv_timer_t *timer)
{
    struct wb_tracking *t = timer->data;
    uint64_t now = uv_now(t->loop);
    struct treq *q = t->waiting;
    while (q) {
        struct treq *next = q->next;
        if (now - q->since >= patience_ms(q->r.kind)) {
            unlink_waiting(q);
            q->answered = true;
            if (q->r.kind == WB_ROUTE_METRICS)
                finish(q, MHD_HTTP_OK, metrics_text(t));
            else if (q->r.kind == WB_ROUTE_HEALTHZ)
                finish(q, MHD_HTTP_SERVICE_UNAVAILABLE, plain("database not answering\n"));
            else
                finish(q, MHD_HTTP_SERVICE_UNAVAILABLE, busy());
        }
        q = next;
    }
}

/* ---- set-up ---- */

static int listen_on(struct wb_tracking *t, struct listener *l, const char *addr, bool admin,
                     char *err, size_t errsz)
{
    l->t = t;
    l->admin = admin;
    /* Tracking hits arrive in bursts from a few proxies (Gmail's image
     * proxy, Apple's relays), hence the generous per-IP allowance. */
    struct wb_http_opts o = {.listen = addr, .conn_limit = admin ? 64 : 1000,
                             .per_ip_limit = admin ? 16 : 256, .timeout_s = 15,
                             .mem_limit = 32 * 1024, .handler = handler, .handler_cls = l,
                             .completed = on_completed, .completed_cls = l};
    l->http = wb_http_new(t->loop, &o, err, errsz);
    return l->http ? 0 : -1;
}

struct wb_tracking *wb_tracking_new(uv_loop_t *loop, const struct wb_config *cfg, struct wb_pg *pg,
                                    struct wb_eventq *q, struct wb_metrics *metrics, char *err,
                                    size_t errsz)
{
    struct wb_tracking *t = wb_xcalloc(1, sizeof *t);
    t->loop = loop;
    t->cfg = cfg;
    t->pg = pg;
    t->q = q;
    t->metrics = metrics;
    t->dedup = wb_dedup_new(DEDUP_ENTRIES, DEDUP_WINDOW_S);
    uv_timer_init(loop, &t->sweep);
    t->sweep.data = t;
    uv_timer_start(&t->sweep, on_sweep, 500, 500);
    if (listen_on(t, &t->pub, cfg->http.listen, false, err, errsz) < 0 ||
        (cfg->http.admin_listen &&
         listen_on(t, &t->adm, cfg->http.admin_listen, true, err, errsz) < 0)) {
        wb_tracking_free(t);
        return NULL;
    }
    return t;
}

void wb_tracking_set_config(struct wb_tracking *t, const struct wb_config *cfg)
{
    t->cfg = cfg;
}

uint16_t wb_tracking_port(const struct wb_tracking *t, bool admin)
{
    const struct listener *l = admin ? &t->adm : &t->pub;
    return l->http ? wb_http_port(l->http) : 0;
}

void wb_tracking_quiesce(struct wb_tracking *t)
{
    if (t->pub.http)
        wb_http_quiesce(t->pub.http);
    if (t->adm.http)
        wb_http_quiesce(t->adm.http);
}

static void free_tracking(uv_handle_t *h)
{
    free(h->data);
}

void wb_tracking_free(struct wb_tracking *t)
{
    if (!t)
        return;
    /* Orphan the waiting requests: their callbacks will free them, and
     * MHD must see them resumed before it can stop. */
    while (t->waiting) {
        struct treq *q = t->waiting;
        t->waiting = q->next;
        q->t = NULL;
        q->prev = q->next = NULL;
        if (q->conn)
            MHD_resume_connection(q->conn);
    }
    wb_http_free(t->pub.http);
    wb_http_free(t->adm.http);
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        free(t->cache[i].sequence);
    wb_dedup_free(t->dedup);
    uv_close((uv_handle_t *)&t->sweep, free_tracking);
}
