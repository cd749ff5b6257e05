/* The links ever configured, by stable id, and their copy in the `links`
 * table (see links.h). */
#include "warmbench/links.h"
#include "warmbench/buf.h"
#include "warmbench/log.h"
#include "warmbench/pgtext.h"
#include "warmbench/tokens.h"
#include "warmbench/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_MS 1000

static const char sync_sql[] =
    "INSERT INTO links (id, sequence_id, name, url) "
    "SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) "
    "ON CONFLICT (id) DO NOTHING";

struct link_row {
    uint64_t id;
    char *sequence, *name, *url;
    bool synced;        /* in the table (or read from it) */
};

/* The write in flight: outlives l when l is freed first. */
struct flight {
    struct wb_links *l;
    uint64_t *ids;
    size_t n;
};

struct wb_links {
    struct wb_pg *pg;
    uv_timer_t *timer;       /* heap: it closes after l is gone */
    struct link_row *v;      /* sorted by id */
    size_t n, cap;
    size_t unsynced;
    struct flight *flight;
    bool warned;             /* the table's absence or error logged once */
};

static long lk_index(const struct wb_links *l, uint64_t id)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->v[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < l->n && l->v[lo].id == id ? (long)lo : -(long)lo - 1;
}

static void lk_insert(struct wb_links *l, uint64_t id, const char *seq, const char *name,
                      const char *url, bool synced)
{
    long at = lk_index(l, id);
    if (at >= 0)
        return;
    size_t pos = (size_t)(-at - 1);
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = wb_xrealloc(l->v, l->cap * sizeof *l->v);
    }
    memmove(&l->v[pos + 1], &l->v[pos], (l->n - pos) * sizeof *l->v);
    l->v[pos] = (struct link_row){id, wb_xstrdup(seq), wb_xstrdup(name), wb_xstrdup(url), synced};
    l->n++;
    if (!synced)
        l->unsynced++;
}

static void lk_on_timer(uv_timer_t *t);

static void lk_arm(struct wb_links *l, uint64_t ms)
{
    uv_timer_start(l->timer, lk_on_timer, ms, 0);
}

static void lk_on_synced(PGresult *res, void *ud)
{
    struct flight *f = ud;
    struct wb_links *l = f->l;
    if (l && res && PQresultStatus(res) == PGRES_COMMAND_OK) {
        for (size_t i = 0; i < f->n; i++) {
            long at = lk_index(l, f->ids[i]);
            if (at >= 0 && !l->v[at].synced) {
                l->v[at].synced = true;
                l->unsynced--;
            }
        }
        l->warned = false;
    } else if (l && res && !l->warned) {
        wb_warn("tracking links: not stored (retrying): %s", PQresultErrorMessage(res));
        l->warned = true;
    }
    if (l) {
        l->flight = NULL;
        if (l->unsynced)
            lk_arm(l, RETRY_MS);
    }
    free(f->ids);
    free(f);
}

/* Appends the unsynced rows' columns to four array literals. */
static struct flight *lk_batch(struct wb_links *l, struct wb_buf cols[4])
{
    struct flight *f = wb_xcalloc(1, sizeof *f);
    f->l = l;
    f->ids = wb_xcalloc(l->unsynced, sizeof *f->ids);
    char **text[3];
    for (int k = 0; k < 3; k++)
        text[k] = wb_xcalloc(l->unsynced, sizeof *text[k]);
    wb_buf_putc(&cols[0], '{');
    for (size_t i = 0; i < l->n && f->n < l->unsynced; i++) {
        const struct link_row *r = &l->v[i];
        if (r->synced)
            continue;
        wb_buf_printf(&cols[0], "%s%lld", f->n ? "," : "", (long long)(int64_t)r->id);
        text[0][f->n] = r->sequence;
        text[1][f->n] = r->name;
        text[2][f->n] = r->url;
        f->ids[f->n++] = r->id;
    }
    wb_buf_putc(&cols[0], '}');
    for (int k = 0; k < 3; k++) {
        wb_pg_array(&cols[k + 1], text[k], f->n, 0);
        free(text[k]);
    }
    return f;
}

static void lk_sync(struct wb_links *l)
{
    if (l->flight || !l->unsynced)
        return;
    struct wb_buf cols[4];
    for (int k = 0; k < 4; k++)
        wb_buf_init(&cols[k]);
    struct flight *f = lk_batch(l, cols);
    const char *p[] = {cols[0].data, cols[1].data, cols[2].data, cols[3].data};
    if (wb_pg_query(l->pg, sync_sql, 4, p, lk_on_synced, f) == 0) {
        l->flight = f;
    } else {
        free(f->ids);
        free(f);
        lk_arm(l, RETRY_MS);
    }
    for (int k = 0; k < 4; k++)
        wb_buf_free(&cols[k]);
}

static void lk_on_timer(uv_timer_t *t)
{
    lk_sync(t->data);
}

struct wb_links *wb_links_new(struct wb_pg *pg)
{
    struct wb_links *l = wb_xcalloc(1, sizeof *l);
    l->pg = pg;
    l->timer = wb_xmalloc(sizeof *l->timer);
    uv_timer_init(wb_pg_loop(pg), l->timer);
    l->timer->data = l;
    return l;
}

void wb_links_add_config(struct wb_links *l, const struct wb_config *cfg)
{
    for (size_t s = 0; s < cfg->n_sequences; s++) {
        const struct wb_sequence *q = &cfg->sequences[s];
        for (size_t i = 0; i < q->n_links; i++) {
            const struct wb_link *k = &q->links[i];
            lk_insert(l, wb_token_link_id(q->id, k->name, k->url), q->id, k->name, k->url, false);
        }
    }
    /* Soon, not now: the connection is usually still being made. */
    if (l->unsynced && !l->flight)
        lk_arm(l, 0);
}

bool wb_links_find(const struct wb_links *l, uint64_t id, const char **name, const char **url)
{
    long at = lk_index(l, id);
    if (at < 0)
        return false;
    *name = l->v[at].name;
    *url = l->v[at].url;
    return true;
}

void wb_links_learn(struct wb_links *l, uint64_t id, const char *sequence, const char *name,
                    const char *url)
{
    lk_insert(l, id, sequence, name, url, true);
}

size_t wb_links_unsynced(const struct wb_links *l)
{
    return l->unsynced;
}

static void lk_on_closed(uv_handle_t *h)
{
    free(h);
}

void wb_links_free(struct wb_links *l)
{
    if (!l)
        return;
    if (l->flight)
        l->flight->l = NULL;
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].sequence);
        free(l->v[i].name);
        free(l->v[i].url);
    }
    free(l->v);
    uv_timer_stop(l->timer);
    uv_close((uv_handle_t *)l->timer, lk_on_closed);
    free(l);
}
