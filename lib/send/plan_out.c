/* The plan's figures: one JSON document (--json), and the text tables
 * made from that same document, so the two cannot disagree. See plan.h. */
#include "warmbench/plan.h"
#include "warmbench/sequence.h"
#include "warmbench/util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAY_S 86400.0

static const char *const ASSUMPTIONS[] = {
    "no replies, bounces, unsubscribes or other stops: every step goes out",
    "every send succeeds at once (no retries) and nothing new is enrolled but the audience now",
    ("days are UTC days, as daily_limit counts them; mail a day's limit leaves goes at the "
     "window's next opening from the next UTC day's start, as the daemon's claim re-times it"),
    "other sequences' mail shares each sender's limit, in due order as the claim takes it",
};

/* Reasons as enroll names them, in its order, with their words. */
static const char *const SKIPS[][2] = {
    {"suppressed", "suppressed"},        {"unsubscribed", "unsubscribed"},
    {"no_consent", "without consent"},   {"already", "already enrolled"},
    {"busy", "in another sequence"},
};

void wb_plan_facts_skip(struct wb_plan_facts *f, const char *verdict, const char *email)
{
    if (!strcmp(verdict, "enrolled")) {
        f->would_enroll++;
        return;
    }
    if (!f->skipped)
        f->skipped = json_object();
    json_t *r = json_object_get(f->skipped, verdict);
    if (!r) {
        r = json_pack("{s:i, s:[]}", "count", 0, "emails");
        json_object_set_new(f->skipped, verdict, r);
    }
    json_t *n = json_object_get(r, "count");
    json_integer_set(n, json_integer_value(n) + 1);
    json_t *list = json_object_get(r, "emails");
    if (json_array_size(list) < WB_PLAN_LIST_MAX)
        json_array_append_new(list, json_string(email));
}

void wb_plan_facts_free(struct wb_plan_facts *f, size_t n_persons, size_t n_senders)
{
    for (size_t i = 0; f->emails && i < n_persons; i++)
        free(f->emails[i]);
    for (size_t i = 0; f->sender_paused && i < n_senders; i++)
        free(f->sender_paused[i]);
    free(f->emails);
    free(f->sender_paused);
    json_decref(f->skipped);
    memset(f, 0, sizeof *f);
}

static json_t *out_time(double t, const char *fmt)
{
    time_t tt = (time_t)floor(t);
    struct tm tm;
    char buf[40];
    gmtime_r(&tt, &tm);
    strftime(buf, sizeof buf, fmt, &tm);
    return json_string(buf);
}

/* The senders shown: those the sequence names, then any the plan uses. */
static bool *out_senders(const struct wb_config *cfg, const struct wb_sequence *s,
                         const struct wb_plan *p)
{
    bool *on = wb_xcalloc(p->n_senders + 1, sizeof *on);
    for (size_t i = 0; i < s->n_steps; i++) {
        const char *fb = NULL;
        const char *id = wb_step_sender(s, i, &fb);
        for (size_t k = 0; k < p->n_senders; k++)
            if ((id && !strcmp(id, cfg->senders[k].id)) || (fb && !strcmp(fb, cfg->senders[k].id)))
                on[k] = true;
    }
    for (size_t d = 0; d < (size_t)p->days; d++)
        for (size_t k = 0; k < p->n_senders; k++)
            for (size_t j = 0; j < s->n_steps && j < p->seqs[0].n_steps; j++)
                on[k] |= p->sent[WB_PLAN_AT(p, d, k, j)] > 0;
    return on;
}

static json_t *out_rows(const struct wb_config *cfg, const struct wb_sequence *s,
                        const struct wb_plan *p)
{
    bool *on = out_senders(cfg, s, p);
    json_t *rows = json_array();
    double day0 = floor(p->now / DAY_S);
    for (size_t d = 0; d < (size_t)p->days; d++) {
        for (size_t k = 0; k < p->n_senders; k++) {
            if (!on[k])
                continue;
            json_t *steps = json_array();
            long total = 0;
            for (size_t j = 0; j < p->seqs[0].n_steps; j++) {
                long n = p->sent[WB_PLAN_AT(p, d, k, j)];
                total += p->seqs[0].task[j] ? 0 : n;
                json_array_append_new(steps, json_integer(n));
            }
            long lim = p->limit[d * p->n_senders + k];
            json_array_append_new(rows, json_pack(
                "{s:o, s:s, s:o, s:o, s:I, s:I}", "date", out_time((day0 + (double)d) * DAY_S,
                                                                   "%Y-%m-%d"),
                "sender", cfg->senders[k].id, "limit", lim ? json_integer(lim) : json_null(),
                "steps", steps, "total", (json_int_t)total, "other_sequences",
                (json_int_t)p->other[d * p->n_senders + k]));
        }
    }
    free(on);
    return rows;
}

struct out_wait {
    double until;
    const char *email;
    int step;
};

static int out_wait_cmp(const void *a, const void *b)
{
    const struct out_wait *x = a, *y = b;
    if (x->until != y->until)
        return (x->until > y->until) - (x->until < y->until);
    return strcmp(x->email, y->email);
}

/* Who the policy held, by when it lets them, then address. */
static json_t *out_waits(const struct wb_plan *p, const struct wb_plan_facts *f)
{
    struct out_wait *w = wb_xmalloc((p->n_waits + 1) * sizeof *w);
    for (size_t i = 0; i < p->n_waits; i++) {
        const char *e = f->emails[p->waits[i].person];
        w[i] = (struct out_wait){p->waits[i].until, e ? e : "", p->waits[i].step};
    }
    qsort(w, p->n_waits, sizeof *w, out_wait_cmp);
    json_t *a = json_array();
    for (size_t i = 0; i < p->n_waits; i++)
        json_array_append_new(a, json_pack("{s:s, s:i, s:o}", "email", w[i].email, "step",
                                           w[i].step + 1, "until",
                                           out_time(w[i].until, "%Y-%m-%dT%H:%M:%SZ")));
    free(w);
    return a;
}

json_t *wb_plan_json(const struct wb_config *cfg, const struct wb_sequence *s,
                     const struct wb_plan *p, const struct wb_plan_facts *f)
{
    json_t *left = json_array(), *paused = json_object(), *as = json_array();
    json_t *tasks = json_array();
    for (size_t j = 0; j < p->seqs[0].n_steps; j++) {
        json_array_append_new(left, json_integer(p->left[j]));
        if (p->seqs[0].task[j])
            json_array_append_new(tasks, json_integer((json_int_t)j + 1));
    }
    for (size_t k = 0; k < p->n_senders; k++)
        if (f->sender_paused[k])
            json_object_set_new(paused, cfg->senders[k].id, json_string(f->sender_paused[k]));
    for (size_t i = 0; i < sizeof ASSUMPTIONS / sizeof *ASSUMPTIONS; i++)
        json_array_append_new(as, json_string(ASSUMPTIONS[i]));
    json_t *policy = cfg->contact_policy.cooldown_days || cfg->contact_policy.max_per_30_days
        ? json_pack("{s:i, s:i}", "cooldown_days", cfg->contact_policy.cooldown_days,
                    "max_per_30_days", cfg->contact_policy.max_per_30_days)
        : json_null();
    return json_pack(
        "{s:s, s:o, s:i, s:i, s:o, s:{s:I, s:o}, s:{s:I, s:I, s:I}, s:{s:b, s:o},"
        " s:o, s:o, s:I, s:I, s:I, s:o, s:o, s:o}",
        "sequence", s->id, "from", out_time(p->now, "%Y-%m-%dT%H:%M:%SZ"), "days", p->days,
        "steps", (int)p->seqs[0].n_steps, "task_steps", tasks,
        "audience", "would_enroll", (json_int_t)f->would_enroll, "skipped",
        f->skipped ? json_incref(f->skipped) : json_object(),
        "enrolled", "active", (json_int_t)f->active, "paused", (json_int_t)f->persons_paused,
        "on_the_wire", (json_int_t)f->in_flight,
        "paused", "sequence", f->seq_paused, "senders", paused,
        "plan", out_rows(cfg, s, p), "still_due_after", left,
        "never_due", (json_int_t)p->never, "after_task", (json_int_t)p->after_task,
        "no_sender", (json_int_t)f->no_sender,
        "contact_policy", policy, "waits", out_waits(p, f), "assumptions", as);
}

/* ---- text, from the document ---- */

static long out_int(json_t *o, const char *k)
{
    return (long)json_integer_value(json_object_get(o, k));
}

static void out_audience(json_t *doc, FILE *out)
{
    json_t *a = json_object_get(doc, "audience"), *sk = json_object_get(a, "skipped");
    fprintf(out, "audience now: %ld would be enrolled; skipped", out_int(a, "would_enroll"));
    for (size_t i = 0; i < sizeof SKIPS / sizeof *SKIPS; i++)
        fprintf(out, "%s %ld %s", i ? "," : "", out_int(json_object_get(sk, SKIPS[i][0]), "count"),
                SKIPS[i][1]);
    fputc('\n', out);
    for (size_t i = 0; i < sizeof SKIPS / sizeof *SKIPS; i++) {
        json_t *r = json_object_get(sk, SKIPS[i][0]), *e = json_object_get(r, "emails");
        size_t n = json_array_size(e), shown = n < 10 ? n : 10;
        if (!n)
            continue;
        fprintf(out, "  %s:", SKIPS[i][1]);
        for (size_t k = 0; k < shown; k++)
            fprintf(out, " %s", json_string_value(json_array_get(e, k)));
        if (out_int(r, "count") > (long)shown)
            fprintf(out, " ... and %ld more", out_int(r, "count") - (long)shown);
        fputc('\n', out);
    }
    json_t *en = json_object_get(doc, "enrolled");
    fprintf(out, "enrolled already: %ld active (%ld paused: nothing planned for them until "
                 "resumed; %ld with a step on the wire now)\n",
            out_int(en, "active"), out_int(en, "paused"), out_int(en, "on_the_wire"));
}

static void out_table(json_t *doc, FILE *out)
{
    long k = out_int(doc, "steps");
    bool *task = calloc((size_t)k + 1, sizeof *task);
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(doc, "task_steps"), i, r)
        if (json_integer_value(r) >= 1 && json_integer_value(r) <= k)
            task[json_integer_value(r) - 1] = true;
    fprintf(out, "\n%-10s  %-12s %7s", "date", "sender", "limit");
    for (long j = 0; j < k; j++)
        fprintf(out, "  %s %-2ld", task[j] ? "task" : "step", j + 1);
    free(task);
    fprintf(out, " %7s %7s\n", "mails", "other");
    json_array_foreach(json_object_get(doc, "plan"), i, r) {
        json_t *lim = json_object_get(r, "limit");
        char l[24] = "-";
        if (json_is_integer(lim))
            snprintf(l, sizeof l, "%lld", (long long)json_integer_value(lim));
        fprintf(out, "%-10s  %-12s %7s", json_string_value(json_object_get(r, "date")),
                json_string_value(json_object_get(r, "sender")), l);
        size_t j;
        json_t *n;
        json_array_foreach(json_object_get(r, "steps"), j, n)
            fprintf(out, "  %7lld", (long long)json_integer_value(n));
        fprintf(out, " %7ld %7ld\n", out_int(r, "total"), out_int(r, "other_sequences"));
    }
}

static void out_notes(json_t *doc, FILE *out)
{
    size_t i;
    json_t *v;
    long sum = 0;
    json_array_foreach(json_object_get(doc, "still_due_after"), i, v)
        sum += (long)json_integer_value(v);
    if (sum) {
        fprintf(out, "still to send after the last day:");
        json_array_foreach(json_object_get(doc, "still_due_after"), i, v)
            if (json_integer_value(v))
                fprintf(out, " step %zu: %lld;", i + 1, (long long)json_integer_value(v));
        fputc('\n', out);
    }
    if (out_int(doc, "never_due"))
        fprintf(out, "%ld steps never fall due (a window with no days)\n",
                out_int(doc, "never_due"));
    if (out_int(doc, "after_task"))
        fprintf(out, "%ld steps wait for a task to be done (warmbench done ID): not planned\n",
                out_int(doc, "after_task"));
    if (out_int(doc, "no_sender"))
        fprintf(out, "%ld steps have no configured sender: they wait\n",
                out_int(doc, "no_sender"));
    json_t *p = json_object_get(doc, "paused");
    if (json_is_true(json_object_get(p, "sequence")))
        fprintf(out, "the sequence is paused: nothing is sent until `warmbench resume %s`\n",
                json_string_value(json_object_get(doc, "sequence")));
    const char *name;
    json_object_foreach(json_object_get(p, "senders"), name, v)
        fprintf(out, "sender %s is paused (%s): its mail waits until `warmbench resume --sender "
                     "%s`\n", name, json_string_value(v), name);
}

static void out_waits_text(json_t *doc, FILE *out)
{
    json_t *w = json_object_get(doc, "waits"), *pol = json_object_get(doc, "contact_policy");
    if (!json_array_size(w))
        return;
    fprintf(out, "%zu wait for the contact policy (cooldown_days %ld, max_per_30_days %ld):\n",
            json_array_size(w), out_int(pol, "cooldown_days"), out_int(pol, "max_per_30_days"));
    size_t i;
    json_t *r;
    json_array_foreach(w, i, r) {
        const char *until = json_string_value(json_object_get(r, "until"));
        fprintf(out, "  %s step %ld until %.10s %.5s UTC\n",
                json_string_value(json_object_get(r, "email")), out_int(r, "step"), until,
                until + 11);
    }
}

void wb_plan_print(const struct wb_config *cfg, const struct wb_sequence *s,
                   const struct wb_plan *p, const struct wb_plan_facts *f, bool json, FILE *out)
{
    json_t *doc = wb_plan_json(cfg, s, p, f);
    if (json) {
        json_dumpf(doc, out, JSON_INDENT(2));
        fputc('\n', out);
        json_decref(doc);
        return;
    }
    const char *from = json_string_value(json_object_get(doc, "from"));
    fprintf(out, "plan for %s: %d days from %.10s %.5s UTC (writes nothing)\n", s->id, p->days,
            from, from + 11);
    out_audience(doc, out);
    out_table(doc, out);
    fputc('\n', out);
    out_notes(doc, out);
    out_waits_text(doc, out);
    fprintf(out, "assumes:\n");
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(doc, "assumptions"), i, v)
        fprintf(out, "  - %s\n", json_string_value(v));
    json_decref(doc);
}
