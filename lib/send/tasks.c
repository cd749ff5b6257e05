/* Manual steps, the daemon's part (see tasks.h). A round is a chain of
 * pg_loop callbacks: sweep → claim → publish. Claiming and publishing are
 * two transactions: a daemon that stops between them leaves tasks without
 * text under a lease, which the next claim (any daemon's) takes over. */
#include "warmbench/tasks.h"
#include "warmbench/json_order.h"
#include "warmbench/buf.h"
#include "warmbench/engine.h"
#include "warmbench/log.h"
#include "warmbench/pgtext.h"
#include "warmbench/template.h"
#include "warmbench/util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PERIOD_MS 30000
#define KICK_MS 1000    /* NOTIFY comes with every sending transaction: at most a round a second */
/* The claim walks the due enrollments of the sequences with task steps, a
 * backlog of their mail steps included: at most once this often (a task
 * is for a person; seconds do not matter), whatever the kicks. */
#define CLAIM_EVERY_MS 5000
#define BATCH 100
#define LEASE_S 60

static const char sweep_sql[] = "SELECT expired, ended, next_s FROM wb_task_sweep()";
static const char claim_sql[] =
    "SELECT * FROM wb_task_claim($1, $2::integer, $3::integer, $4::integer)";
static const char publish_sql[] =
    "SELECT wb_task_publish($1, $2::bigint[], $3::text[], $4::boolean)";

enum { C_ID, C_SEQ, C_STEP, C_SENDER, C_CAND, C_EMAIL, C_FIRST, C_LAST, C_TITLE, C_COMPANY,
       C_LOCATION, C_ATTRS };

struct wb_tasks {
    struct wb_engine e;
    struct wb_pg *pg;
    const struct wb_config *cfg;
    char *owner;
    bool busy;              /* a statement of the round is in flight */
    double next_s;          /* seconds to the next expiry, from the sweep */
    uint64_t claimed_at;    /* uv_now of the last claim, 0 = none yet */
    bool deferred;          /* a round skipped its claim for the pace */
};

/* --- rendering ------------------------------------------------------------ */

struct tk_ctx {
    const struct wb_sequence *seq;
    const struct wb_sender *sender;
    const struct wb_task_fields *f;
    char scratch[32];
};

static const char *tk_field(const char *name, void *ud)
{
    struct tk_ctx *x = ud;
    const struct wb_task_fields *f = x->f;
    if (!strncmp(name, "attrs.", 6)) {
        json_t *v = json_object_get(f->attrs, name + 6);
        if (json_is_integer(v)) {
            snprintf(x->scratch, sizeof x->scratch, "%lld", (long long)json_integer_value(v));
            return x->scratch;
        }
        return json_string_value(v);
    }
    if (!strncmp(name, "links.", 6))
        return wb_sequence_link(x->seq, name + 6);
    const struct { const char *name; const char *v; } cols[] = {
        {"email", f->email}, {"first_name", f->first_name}, {"last_name", f->last_name},
        {"title", f->title}, {"company", f->company}, {"location", f->location},
        {"sender.name", x->sender->from_name}, {"sender.email", x->sender->from_email},
    };
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++)
        if (!strcmp(name, cols[i].name))
            return cols[i].v;
    return NULL;
}

char *wb_task_render(const struct wb_config *cfg, const struct wb_task_fields *f, char *err,
                     size_t errsz)
{
    struct tk_ctx x = {.f = f};
    x.seq = wb_config_sequence(cfg, f->sequence);
    if (!x.seq || f->step < 1 || (size_t)f->step > x.seq->n_steps ||
        !x.seq->steps[f->step - 1].task) {
        snprintf(err, errsz, "sequence \"%s\" has no task at step %d in the loaded "
                             "configuration", f->sequence, f->step);
        return NULL;
    }
    x.sender = wb_config_sender(cfg, f->sender);
    if (!x.sender) {
        snprintf(err, errsz, "sender \"%s\" is not configured", f->sender);
        return NULL;
    }
    struct wb_buf b;
    wb_buf_init(&b);
    wb_template_render(x.seq->steps[f->step - 1].task, tk_field, &x, false, &b);
    return wb_buf_steal(&b);
}

bool wb_tasks_configured(const struct wb_config *cfg)
{
    for (size_t i = 0; i < cfg->n_sequences; i++)
        for (size_t j = 0; j < cfg->sequences[i].n_steps; j++)
            if (cfg->sequences[i].steps[j].task)
                return true;
    return false;
}

const unsigned char *wb_tasks_secret(const struct wb_config *cfg, size_t *len)
{
    if (cfg->tasks.secret) {
        *len = cfg->tasks.secret_len;
        return cfg->tasks.secret;
    }
    *len = cfg->ats.secret_len;
    return cfg->ats.secret;
}

/* --- the webhook body ------------------------------------------------------- */

char *wb_task_body(const char *payload)
{
    static const char *const top[] = {"type", "id", "occurred_at", "task", "candidate",
                                      "sequence", "step", "sender"};
    static const char *const task[] = {"id", "text", "due_at", "expires_at"};
    static const char *const cand[] = {"email", "first_name", "last_name", "title", "company",
                                       "tags", "attrs"};
    json_t *in = json_loads(payload, 0, NULL);
    if (!json_is_object(in)) {
        json_decref(in);
        return wb_xstrdup(payload);
    }
    json_t *out = wb_json_ordered(in, top, 8);
    json_t *t = json_object_get(in, "task"), *c = json_object_get(in, "candidate");
    if (json_is_object(t))
        json_object_set_new(out, "task", wb_json_ordered(t, task, 4));
    if (json_is_object(c))
        json_object_set_new(out, "candidate", wb_json_ordered(c, cand, 7));
    char *s = json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(out);
    json_decref(in);
    return s ? s : wb_xstrdup(payload);
}

/* --- a round: sweep → claim → publish -------------------------------------- */

static void tk_round_end(struct wb_tasks *t)
{
    t->busy = false;
    double ms = t->next_s * 1000.0;
    /* A claim skipped for its pace is made when the pace allows. */
    uint64_t since = uv_now(t->e.loop) - t->claimed_at;
    if (t->deferred && since < CLAIM_EVERY_MS && ms > (double)(CLAIM_EVERY_MS - since))
        ms = (double)(CLAIM_EVERY_MS - since);
    /* Rounded up, so an expiry is never swept a millisecond early. */
    wb_engine_round_end(&t->e, ms < PERIOD_MS ? (uint64_t)ceil(ms > 0 ? ms : 0) : PERIOD_MS);
    wb_engine_check(&t->e);
}

static void tk_on_published(PGresult *r, void *ud)
{
    struct wb_tasks *t = ud;
    if (wb_engine_ok(&t->e, r, "publishing tasks") && atoi(PQgetvalue(r, 0, 0)) > 0)
        wb_info("tasks: %s new task(s) due%s", PQgetvalue(r, 0, 0),
                t->cfg->tasks.webhook_url ? "; task.due webhooks queued" : "");
    tk_round_end(t);
}

/* The row's text; a row the loaded configuration cannot render (its step
 * was edited away) gets the reason, so the sourcer sees it and can skip it
 * rather than it waiting unseen. */
static char *tk_row_text(const struct wb_config *cfg, PGresult *r, int i)
{
    json_t *attrs = json_loads(PQgetvalue(r, i, C_ATTRS), 0, NULL);
    struct wb_task_fields f = {
        .sequence = PQgetvalue(r, i, C_SEQ), .step = atoi(PQgetvalue(r, i, C_STEP)),
        .sender = PQgetvalue(r, i, C_SENDER), .email = PQgetvalue(r, i, C_EMAIL),
        .first_name = PQgetvalue(r, i, C_FIRST), .last_name = PQgetvalue(r, i, C_LAST),
        .title = PQgetvalue(r, i, C_TITLE), .company = PQgetvalue(r, i, C_COMPANY),
        .location = PQgetvalue(r, i, C_LOCATION), .attrs = attrs};
    char err[256];
    char *text = wb_task_render(cfg, &f, err, sizeof err);
    json_decref(attrs);
    if (text)
        return text;
    wb_warn("task %s: %s", PQgetvalue(r, i, C_ID), err);
    return wb_xasprintf("(this task could not be rendered: %s)", err);
}

static void tk_on_claimed(PGresult *r, void *ud)
{
    struct wb_tasks *t = ud;
    int n = wb_engine_ok(&t->e, r, "claiming due task steps") ? PQntuples(r) : 0;
    if (n == 0) {
        tk_round_end(t);
        return;
    }
    char **ids = wb_xcalloc((size_t)n, sizeof *ids), **texts = wb_xcalloc((size_t)n, sizeof *texts);
    for (int i = 0; i < n; i++) {
        ids[i] = PQgetvalue(r, i, C_ID);
        texts[i] = tk_row_text(t->cfg, r, i);
    }
    char *id_arr = wb_pg_array_str(ids, (size_t)n, 0);
    char *text_arr = wb_pg_array_str(texts, (size_t)n, 0);
    const char *p[] = {t->owner, id_arr, text_arr, t->cfg->tasks.webhook_url ? "true" : "false"};
    if (wb_pg_query(t->pg, publish_sql, 4, p, tk_on_published, t) < 0)
        tk_round_end(t);
    for (int i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    free(ids);
    free(id_arr);
    free(text_arr);
}

static void tk_on_swept(PGresult *r, void *ud)
{
    struct wb_tasks *t = ud;
    t->next_s = PERIOD_MS / 1000.0;
    if (!wb_engine_ok(&t->e, r, "sweeping tasks")) {
        tk_round_end(t);
        return;
    }
    long expired = atol(PQgetvalue(r, 0, 0)), ended = atol(PQgetvalue(r, 0, 1));
    if (expired)
        wb_info("tasks: %ld task(s) expired after %d day(s): skipped, their sequences go on",
                expired, t->cfg->tasks.expire_days);
    if (ended)
        wb_info("tasks: %ld open task(s) closed: their enrollment ended", ended);
    if (!PQgetisnull(r, 0, 2))
        t->next_s = atof(PQgetvalue(r, 0, 2));
    uint64_t now = uv_now(t->e.loop);
    if (!wb_tasks_configured(t->cfg) || wb_engine_draining(&t->e)) {
        tk_round_end(t);
        return;
    }
    t->deferred = t->claimed_at && now - t->claimed_at < CLAIM_EVERY_MS;
    if (t->deferred) {
        tk_round_end(t);
        return;
    }
    t->claimed_at = now;
    char batch[16], days[16], lease[16];
    snprintf(batch, sizeof batch, "%d", BATCH);
    snprintf(days, sizeof days, "%d", t->cfg->tasks.expire_days);
    snprintf(lease, sizeof lease, "%d", LEASE_S);
    const char *p[] = {t->owner, batch, days, lease};
    if (wb_pg_query(t->pg, claim_sql, 4, p, tk_on_claimed, t) < 0)
        tk_round_end(t);
}

static void tk_round(void *ud)
{
    struct wb_tasks *t = ud;
    if (!wb_pg_ready(t->pg)) {
        wb_engine_round_idle(&t->e); /* the reconnect kicks */
        return;
    }
    t->busy = true;
    if (wb_pg_query(t->pg, sweep_sql, 0, NULL, tk_on_swept, t) < 0) {
        t->next_s = 1.0;
        tk_round_end(t);
    }
}

static bool tk_idle(void *ud)
{
    return !((struct wb_tasks *)ud)->busy;
}

static const struct wb_engine_ops tk_ops = {
    .name = "tasks",
    .round = tk_round,
    .idle = tk_idle,
    .kick_ms = KICK_MS,
};

struct wb_tasks *wb_tasks_new(uv_loop_t *loop, struct wb_pg *pg, const struct wb_config *cfg,
                              const char *owner)
{
    struct wb_tasks *t = wb_xcalloc(1, sizeof *t);
    t->pg = pg;
    t->cfg = cfg;
    t->owner = wb_xstrdup(owner);
    wb_engine_init(&t->e, loop, &tk_ops, t);
    return t;
}

void wb_tasks_set_config(struct wb_tasks *t, const struct wb_config *cfg)
{
    t->cfg = cfg;
}

void wb_tasks_start(struct wb_tasks *t)
{
    wb_engine_start(&t->e);
}

void wb_tasks_kick(struct wb_tasks *t)
{
    wb_engine_kick(&t->e);
}

static void tk_closed(void *ud)
{
    struct wb_tasks *t = ud;
    free(t->owner);
    free(t);
}

void wb_tasks_stop(struct wb_tasks *t)
{
    wb_engine_stop(&t->e, tk_closed, t);
}
