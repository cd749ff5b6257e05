/* The tracking handlers: opens, clicks and unsubscribes, with their
 * repeat table (dedup.h), a cache of clicked messages' sequences and the
 * links ever configured (links.h). The router (router.h) owns the
 * requests; a handler that waits on the database or the event queue gets
 * the request back in its callback and asks wb_req_wake whether anyone is
 * still to be answered, and the router's give_up takes the wait back.
 *
 * An open or a click is answered whether or not its event can be queued
 * (the pixel, the redirect; a refused one is counted as lost): the person
 * must reach the page. A click whose token names its link (version 2,
 * tokens.h) is redirected from memory when the database is away or
 * stalled; its event waits in the event queue for the database. */
#include "warmbench/tracking.h"
#include "warmbench/dedup.h"
#include "warmbench/links.h"
#include "warmbench/machine.h"
#include "warmbench/util.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* The smallest valid GIF: 1×1, one transparent pixel (43 bytes). */
static const unsigned char pixel[43] = {
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00,
    0x00, 0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00,
    0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b};

/* The message's sequence and send time, and a version-2 click's link
 * when this daemon does not know it ($2 NULL for others). */
static const char lookup_sql[] =
    "SELECT m.sequence_id, extract(epoch FROM m.sent_at), l.sequence_id, l.name, l.url "
    "FROM messages m LEFT JOIN links l ON l.id = $2::bigint WHERE m.id = $1";

/* message id → (sequence, sent_at), direct-mapped: a message's sequence
 * and send time never change once it is sent, and a bounded table keeps
 * memory flat however many messages are clicked. */
#define CACHE_SLOTS 4096

/* Opens and clicks recorded this minute (dedup.h): 65,536 distinct hits a
 * minute before repeats start to be recorded twice, in 1.5 MB. */
#define DEDUP_ENTRIES 65536
/* A statement running this long (ms) means a stalled server (tk_click). */
#define STALLED_MS 1000
#define DEDUP_WINDOW_S 60
struct cache_slot {
    int64_t id;          /* 0 = empty */
    char *sequence;
    double sent_at;
};


struct wb_tracking {
    const struct wb_config *cfg;
    struct wb_pg *pg;
    struct wb_eventq *q;
    struct wb_metrics *metrics;
    struct wb_dedup *dedup;         /* opens and clicks recorded this minute */
    struct wb_links *links;         /* every link configured or looked up */
    struct cache_slot cache[CACHE_SLOTS];
};

/* ---- responses ---- */

static const char page_head[] =
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width\"><meta name=\"robots\" "
    "content=\"noindex\"><title>Unsubscribe</title></head><body style=\"font-family:"
    "sans-serif;max-width:32em;margin:3em auto\">";

static struct MHD_Response *tk_unsub_page(const char *path)
{
    /* path passed routing, so it is "/u/" and base64url characters only. */
    char *html = wb_xasprintf("%s<h1>Unsubscribe</h1><p>Stop all email from us to this "
                              "address?</p><form method=\"post\" action=\"%s\">"
                              "<input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">"
                              "<button type=\"submit\">Unsubscribe</button></form></body></html>\n",
                              page_head, path);
    struct MHD_Response *r = wb_resp_text("text/html; charset=utf-8", html);
    free(html);
    return r;
}

static struct MHD_Response *tk_unsub_done(void)
{
    char *html = wb_xasprintf("%s<h1>Unsubscribed</h1><p>You will get no more email from us."
                              "</p></body></html>\n", page_head);
    struct MHD_Response *r = wb_resp_text("text/html; charset=utf-8", html);
    free(html);
    return r;
}

static struct MHD_Response *tk_pixel(void)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof pixel, (void *)pixel, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "image/gif");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store, private");
    return r;
}

/* ---- events ---- */

static double tk_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const struct wb_token *tk_tok(const struct wb_req *q)
{
    return &wb_req_info(q)->route.tok;
}

static struct wb_machine_req tk_machine_req(const struct wb_tracking *t, const struct wb_req *q,
                                            double since_send)
{
    const struct wb_req_info *i = wb_req_info(q);
    return (struct wb_machine_req){i->ua, i->purpose, i->ip, i->route.head, since_send,
                                   t->cfg->http.machine_click_s};
}

/* detail as JSON: {"link": NAME} for clicks, plus {"machine": true,
 * "why": REASON} for machine events. */
static char *tk_detail(const char *link, const char *why)
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

static int tk_record(struct wb_tracking *t, struct wb_req *q, const char *type, const char *link,
                     const char *why, double at, wb_eventq_done_fn done, void *ud)
{
    char *d = tk_detail(link, why);
    int rc = wb_eventq_push(t->q, tk_tok(q)->message_id, type, why != NULL, d, at, done, ud);
    free(d);
    return rc;
}

/* Records an open (what WB_DEDUP_OPEN) or a click on link `what` unless
 * the same hit was recorded this minute: one recipient or one scanner
 * repeating a hit must not fill the queue that others' unsubscribes need.
 * Machine and human hits count apart, so a proxy's prefetch cannot hide
 * the person's own open or click. 0 when recorded or a repeat; -1 when the
 * queue refused it, which is then not remembered, so a retry can store it. */
static int tk_record_once(struct wb_tracking *t, struct wb_req *q, int what, const char *link,
                          const char *why)
{
    struct wb_dedup_key k = {tk_tok(q)->message_id, what, why != NULL};
    double now = tk_now_s();
    if (wb_dedup_seen(t->dedup, &k, now)) {
        wb_metrics_count_repeat(t->metrics, what != WB_DEDUP_OPEN);
        return 0;
    }
    if (tk_record(t, q, what == WB_DEDUP_OPEN ? "open" : "click", link, why, now, NULL, NULL) < 0)
        return -1;
    wb_dedup_mark(t->dedup, &k, now);
    return 0;
}

/* A click's key in the repeat table: a version-1 token's link index, or
 * 30 bits of a version-2 link id above every index (a clash between two
 * links of one message only merges their repeats for a minute). */
static int32_t tk_click_what(const struct wb_req *q)
{
    const struct wb_token *k = tk_tok(q);
    return k->link_id ? (int32_t)(0x40000000u | (uint32_t)(k->link_id & 0x3fffffffu)) : k->link;
}

/* A click that may be a repeat, before its machine flag is known. */
static bool tk_click_maybe_repeat(const struct wb_tracking *t, const struct wb_req *q)
{
    struct wb_dedup_key k = {tk_tok(q)->message_id, tk_click_what(q), false};
    double now = tk_now_s();
    if (wb_dedup_seen(t->dedup, &k, now))
        return true;
    k.machine = true;
    return wb_dedup_seen(t->dedup, &k, now);
}

/* ---- routes ---- */

static enum MHD_Result tk_open(struct wb_tracking *t, struct wb_req *q)
{
    struct wb_machine_req m = tk_machine_req(t, q, -1);
    if (tk_record_once(t, q, WB_DEDUP_OPEN, NULL, wb_machine_open(&m)) < 0)
        wb_metrics_count_lost(t->metrics, false);
    return wb_req_answer(q, MHD_HTTP_OK, tk_pixel());
}

/* Records a click on link `name` and redirects to url; sent_at < 0 when
 * unknown. A click the full queue refused is still redirected. */
static int tk_click_to(struct wb_tracking *t, struct wb_req *q, const char *name, const char *url,
                       double sent_at, struct MHD_Response **out)
{
    struct wb_machine_req m = tk_machine_req(t, q, sent_at > 0 ? tk_now_s() - sent_at : -1);
    if (tk_record_once(t, q, tk_click_what(q), name, wb_machine_click(&m)) < 0)
        wb_metrics_count_lost(t->metrics, true);
    /* The Location is only ever a configured link: no open redirect. */
    *out = wb_resp_plain("");
    MHD_add_response_header(*out, MHD_HTTP_HEADER_LOCATION, url);
    MHD_add_response_header(*out, "Referrer-Policy", "no-referrer");
    return MHD_HTTP_FOUND;
}

static int tk_not_found(struct MHD_Response **out)
{
    *out = wb_resp_plain("not found\n");
    return MHD_HTTP_NOT_FOUND;
}

/* The answer to a click whose message belongs to `sequence`: a version-2
 * token's link by its id, a version-1 token's by its position in the
 * sequence's links today. */
static int tk_click_answer(struct wb_tracking *t, struct wb_req *q, const char *sequence,
                           double sent_at, struct MHD_Response **out)
{
    const char *name, *url;
    if (tk_tok(q)->link_id) {
        if (!wb_links_find(t->links, tk_tok(q)->link_id, &name, &url))
            return tk_not_found(out);
        return tk_click_to(t, q, name, url, sent_at, out);
    }
    const struct wb_sequence *s = wb_config_sequence(t->cfg, sequence);
    int link = tk_tok(q)->link;
    if (!s || link < 0 || (size_t)link >= s->n_links)
        return tk_not_found(out);
    return tk_click_to(t, q, s->links[link].name, s->links[link].url, sent_at, out);
}

/* Without the database: a version-2 click on a link known here is
 * redirected (its send time unknown); anything else is a 503. */
static int tk_click_without_db(struct wb_tracking *t, struct wb_req *q, struct MHD_Response **out)
{
    const char *name, *url;
    if (tk_tok(q)->link_id && wb_links_find(t->links, tk_tok(q)->link_id, &name, &url))
        return tk_click_to(t, q, name, url, -1, out);
    *out = wb_resp_busy();
    return MHD_HTTP_SERVICE_UNAVAILABLE;
}

static struct cache_slot *tk_slot(struct wb_tracking *t, const struct wb_req *q)
{
    return &t->cache[(uint64_t)tk_tok(q)->message_id % CACHE_SLOTS];
}

static void tk_on_lookup(PGresult *res, void *ud)
{
    struct wb_req *q = ud;
    if (!wb_req_wake(q))
        return;
    struct wb_tracking *t = wb_req_cls(q);
    struct MHD_Response *r;
    int status;
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
        status = tk_click_without_db(t, q, &r);
        wb_req_finish(q, status, r);
        return;
    }
    if (PQntuples(res) != 1) { /* a forgotten person's message */
        status = tk_not_found(&r);
        wb_req_finish(q, status, r);
        return;
    }
    const char *seq = PQgetvalue(res, 0, 0);
    double sent_at = PQgetisnull(res, 0, 1) ? -1 : strtod(PQgetvalue(res, 0, 1), NULL);
    if (sent_at > 0) {
        struct cache_slot *c = tk_slot(t, q);
        free(c->sequence);
        *c = (struct cache_slot){tk_tok(q)->message_id, wb_xstrdup(seq), sent_at};
    }
    if (!PQgetisnull(res, 0, 3))
        wb_links_learn(t->links, tk_tok(q)->link_id, PQgetvalue(res, 0, 2),
                       PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 4));
    status = tk_click_answer(t, q, seq, sent_at, &r);
    wb_req_finish(q, status, r);
}

static enum MHD_Result tk_answer_without_db(struct wb_tracking *t, struct wb_req *q)
{
    struct MHD_Response *r;
    int status = tk_click_without_db(t, q, &r);
    return wb_req_answer(q, status, r);
}

static enum MHD_Result tk_click(struct wb_tracking *t, struct wb_req *q)
{
    struct cache_slot *c = tk_slot(t, q);
    struct MHD_Response *r;
    const char *name, *url;
    bool v1 = !tk_tok(q)->link_id;
    bool known = !v1 && wb_links_find(t->links, tk_tok(q)->link_id, &name, &url);
    if (c->id == tk_tok(q)->message_id && c->sequence && (v1 || known)) {
        int status = tk_click_answer(t, q, c->sequence, c->sent_at, &r);
        return wb_req_answer(q, status, r);
    }
    /* A known link needs no lookup when the click cannot be recorded (a
     * full queue; a repeat needs no room) or would wait behind a stalled
     * statement: the person is sent on now, its send time (for the
     * machine rules) unknown. */
    if (known && ((wb_eventq_full(t->q) && !tk_click_maybe_repeat(t, q)) ||
                  wb_pg_busy_ms(t->pg) >= STALLED_MS))
        return tk_answer_without_db(t, q);
    char id[24], link[24];
    snprintf(id, sizeof id, "%lld", (long long)tk_tok(q)->message_id);
    snprintf(link, sizeof link, "%lld", (long long)(int64_t)tk_tok(q)->link_id);
    const char *p[] = {id, known || v1 ? NULL : link};
    /* Refused when the database is away or its queue full (stalled). */
    if (wb_pg_query(t->pg, lookup_sql, 2, p, tk_on_lookup, q) < 0)
        return tk_answer_without_db(t, q);
    return wb_req_wait(q);
}

static void tk_on_unsub_stored(bool stored, void *ud)
{
    struct wb_req *q = ud;
    if (!wb_req_wake(q))
        return;
    if (stored)
        wb_req_finish(q, MHD_HTTP_OK, tk_unsub_done());
    else
        wb_req_finish(q, MHD_HTTP_SERVICE_UNAVAILABLE, wb_resp_busy());
}

static enum MHD_Result tk_unsub(struct wb_tracking *t, struct wb_req *q)
{
    /* A one-click POST comes from the person's mail provider acting for
     * them: never flagged as a machine, and never deduplicated (each one
     * is stored; a second is harmless). */
    if (tk_record(t, q, "unsubscribe", NULL, NULL, tk_now_s(), tk_on_unsub_stored, q) < 0)
        return wb_req_answer(q, MHD_HTTP_SERVICE_UNAVAILABLE, wb_resp_busy());
    return wb_req_wait(q);
}

enum MHD_Result wb_tracking_serve(struct wb_tracking *t, struct wb_req *q)
{
    const struct wb_req_info *i = wb_req_info(q);
    switch (i->route.kind) {
    case WB_ROUTE_OPEN: return tk_open(t, q);
    case WB_ROUTE_CLICK: return tk_click(t, q);
    case WB_ROUTE_UNSUB_PAGE: return wb_req_answer(q, MHD_HTTP_OK, tk_unsub_page(i->url));
    case WB_ROUTE_UNSUB_POST: return tk_unsub(t, q);
    default: break;
    }
    return wb_req_answer(q, MHD_HTTP_NOT_FOUND, wb_resp_plain("not found\n"));
}

/* ---- set-up ---- */

struct wb_tracking *wb_tracking_new(const struct wb_config *cfg, struct wb_pg *pg,
                                    struct wb_eventq *q, struct wb_metrics *metrics)
{
    struct wb_tracking *t = wb_xcalloc(1, sizeof *t);
    t->cfg = cfg;
    t->pg = pg;
    t->q = q;
    t->metrics = metrics;
    t->dedup = wb_dedup_new(DEDUP_ENTRIES, DEDUP_WINDOW_S);
    t->links = wb_links_new(pg);
    wb_links_add_config(t->links, cfg);
    return t;
}

void wb_tracking_set_config(struct wb_tracking *t, const struct wb_config *cfg)
{
    t->cfg = cfg;
    wb_links_add_config(t->links, cfg);
}

/* The router stops waiting: a click's lookup and an unsubscribe's event
 * are taken back, so neither the request nor its statement outlives the
 * wait (the unsubscribe's event stays queued and is still stored). */
bool wb_tracking_give_up(struct wb_tracking *t, struct wb_req *q, int *status,
                         struct MHD_Response **resp)
{
    switch (wb_req_info(q)->route.kind) {
    case WB_ROUTE_CLICK:
        if (!wb_pg_forget(t->pg, tk_on_lookup, q))
            return false;
        *status = tk_click_without_db(t, q, resp);
        return true;
    case WB_ROUTE_UNSUB_POST:
        if (!wb_eventq_forget(t->q, tk_on_unsub_stored, q))
            return false;
        *status = MHD_HTTP_SERVICE_UNAVAILABLE;
        *resp = wb_resp_busy();
        return true;
    default:
        return false;
    }
}

void wb_tracking_free(struct wb_tracking *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        free(t->cache[i].sequence);
    wb_dedup_free(t->dedup);
    wb_links_free(t->links);
    free(t);
}

static enum MHD_Result tk_serve(void *cls, struct wb_req *q)
{
    return wb_tracking_serve(cls, q);
}

static void tk_set_config(void *cls, const struct wb_config *cfg)
{
    wb_tracking_set_config(cls, cfg);
}

static void tk_free(void *cls)
{
    wb_tracking_free(cls);
}

static bool tk_give_up(void *cls, struct wb_req *q, int *status, struct MHD_Response **resp)
{
    return wb_tracking_give_up(cls, q, status, resp);
}

void wb_tracking_handlers(struct wb_tracking *t, struct wb_route_handlers *h)
{
    *h = (struct wb_route_handlers){t, tk_serve, tk_set_config, tk_free, tk_give_up};
}
