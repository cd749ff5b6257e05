/* The plan's simulation: see plan.h. It plays the claim (wb_claim,
 * sql/functions/060_send.sql) forward in time order: a sender sends its
 * due steps in due order while the day's limit lasts; what the limit
 * leaves is looked at again at the next UTC day's start (next_due_at
 * stays in the past, and the first claim of the new day picks it, as the
 * daemon does); a step picked outside its window goes at the window's
 * next opening, due then (the claim re-times next_due_at, and so the
 * order it is claimed in); the contact policy moves a held person's step
 * to the window's first opening once it lets them. The next step's time
 * is asked of the daemon's SQL (p->next), in batches: only when the
 * earliest pending send could come after a step not yet timed. */
#include "warmbench/plan.h"
#include "warmbench/guard.h"
#include "warmbench/util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DAY_S 86400.0

/* A pending send in the heap: `at` when it may go, `ord` the due time the
 * claim orders by (next_due_at), `late` whether ord was timed from a
 * simulated send, `n` the order it was added (ties). A real send comes a
 * little after the moment the simulation sends at (a window's opening,
 * often), and so does the next step timed from it: on equal due times,
 * a step re-timed to that opening, or timed from outside the simulation,
 * goes first, as the claim takes them. */
struct sim_ent {
    double at, ord;
    bool late;
    size_t n;
    struct wb_plan_item it;
};

struct sim {
    struct wb_plan *p;
    struct sim_ent *h; size_t nh, caph;
    size_t added;
    struct wb_plan_item *un; size_t nun, capun; /* sent, next step not timed */
    double un_min;               /* the earliest any of them can fall due */
    long *used;                  /* [day][sender] claims */
    long day0;
    double end;
};

static bool sim_before(const struct sim_ent *a, const struct sim_ent *b)
{
    if (a->at != b->at)
        return a->at < b->at;
    if (a->ord != b->ord)
        return a->ord < b->ord;
    if (a->late != b->late)
        return b->late;
    return a->n < b->n;
}

static void sim_push(struct sim *s, const struct wb_plan_item *it, double at, double ord,
                     bool late)
{
    if (s->nh == s->caph) {
        s->caph = s->caph ? 2 * s->caph : 64;
        s->h = wb_xrealloc(s->h, s->caph * sizeof *s->h);
    }
    size_t i = s->nh++;
    s->h[i] = (struct sim_ent){at, ord, late, s->added++, *it};
    while (i && sim_before(&s->h[i], &s->h[(i - 1) / 2])) {
        struct sim_ent t = s->h[i];
        s->h[i] = s->h[(i - 1) / 2];
        s->h[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static struct sim_ent sim_pop(struct sim *s)
{
    struct sim_ent top = s->h[0];
    s->h[0] = s->h[--s->nh];
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->nh && sim_before(&s->h[l], &s->h[m]))
            m = l;
        if (r < s->nh && sim_before(&s->h[r], &s->h[m]))
            m = r;
        if (m == i)
            break;
        struct sim_ent t = s->h[i];
        s->h[i] = s->h[m];
        s->h[m] = t;
        i = m;
    }
    return top;
}

void wb_plan_add_item(struct wb_plan *p, const struct wb_plan_item *it)
{
    if (p->n_items == p->cap_items) {
        p->cap_items = p->cap_items ? 2 * p->cap_items : 64;
        p->items = wb_xrealloc(p->items, p->cap_items * sizeof *p->items);
    }
    p->items[p->n_items++] = *it;
}

void wb_plan_person_add(struct wb_plan_person *pp, double t, int seq)
{
    if (pp->n == pp->cap) {
        pp->cap = pp->cap ? 2 * pp->cap : 4;
        pp->t = wb_xrealloc(pp->t, pp->cap * sizeof *pp->t);
        pp->seq = wb_xrealloc(pp->seq, pp->cap * sizeof *pp->seq);
    }
    pp->t[pp->n] = t;
    pp->seq[pp->n++] = seq;
}

static int sim_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

double wb_plan_contact_ok_at(const struct wb_plan *p, const struct wb_plan_person *pp, int seq,
                             int step, double now)
{
    double ok = -INFINITY;
    if (p->max_per_30_days > 0 && pp->n >= (size_t)p->max_per_30_days) {
        /* The max-th most recent message of the last 30 days, plus 30 days. */
        double *recent = wb_xmalloc(pp->n * sizeof *recent);
        size_t n = 0;
        for (size_t i = 0; i < pp->n; i++)
            if (pp->t[i] > now - 30 * DAY_S)
                recent[n++] = pp->t[i];
        qsort(recent, n, sizeof *recent, sim_desc);
        if (n >= (size_t)p->max_per_30_days)
            ok = recent[p->max_per_30_days - 1] + 30 * DAY_S;
        free(recent);
    }
    if (p->cooldown_days > 0 && step == 0) {
        /* A first step waits cooldown_days after the last mail of another sequence. */
        for (size_t i = 0; i < pp->n; i++)
            if (pp->seq[i] != seq && pp->t[i] + p->cooldown_days * DAY_S > ok)
                ok = pp->t[i] + p->cooldown_days * DAY_S;
    }
    return ok;
}

/* The sender's limit on day (UTC days since 1970): daily_limit and
 * warm-up, as the scheduler passes it to the claim; 0 = none. */
static long sim_limit(const struct wb_plan_sender *s, long day)
{
    return wb_warmup_limit(s->cfg, s->first_day >= 0 && day >= s->first_day
                                       ? (int)(day - s->first_day) : -1);
}

static long *sim_used(struct sim *s, long day, int sender)
{
    return &s->used[(size_t)(day - s->day0) * s->p->n_senders + (size_t)sender];
}

/* Whether the planned sequence's item is held whatever the day. */
static bool sim_held(const struct wb_plan *p, const struct wb_plan_item *it)
{
    return it->sender < 0 || p->senders[it->sender].paused || p->seqs[it->seq].paused;
}

/* late: its due time was timed from a simulated send. */
static void sim_enqueue(struct sim *s, const struct wb_plan_item *it, bool late)
{
    struct wb_plan *p = s->p;
    if (isnan(it->due)) {
        if (it->seq == 0)
            p->never++;
        return;
    }
    if (sim_held(p, it))
        return;
    /* An out-of-office hold keeps next_due_at from coming before it
     * (wb_ooo_hold, sql/functions/051_ooo.sql). */
    double due = it->due < it->hold ? it->hold : it->due;
    sim_push(s, it, due < p->now ? p->now : due, due, late);
}

/* Times every sent step's successor (one call of p->next) and queues them. */
static int sim_resolve(struct sim *s)
{
    int rc = s->p->next(s->p->next_ud, s->un, s->nun);
    if (rc < 0)
        return -1;
    for (size_t i = 0; i < s->nun; i++)
        sim_enqueue(s, &s->un[i], true);
    s->nun = 0;
    s->un_min = INFINITY;
    return 0;
}

static void sim_sent(struct sim *s, const struct wb_plan_item *it, double t, long day)
{
    struct wb_plan *p = s->p;
    struct wb_plan_sender *snd = &p->senders[it->sender];
    (*sim_used(s, day, it->sender))++;
    snd->last_send = t;
    if (snd->first_day < 0)
        snd->first_day = day;
    wb_plan_person_add(&p->persons[it->person], t, it->seq);
    if (it->seq == 0)
        p->sent[WB_PLAN_AT(p, day - s->day0, it->sender, it->step)]++;
    else
        p->other[(size_t)(day - s->day0) * p->n_senders + (size_t)it->sender]++;
    const struct wb_plan_seq *q = &p->seqs[it->seq];
    if ((size_t)it->step + 1 >= q->n_steps)
        return;
    if (s->nun == s->capun) {
        s->capun = s->capun ? 2 * s->capun : 64;
        s->un = wb_xrealloc(s->un, s->capun * sizeof *s->un);
    }
    /* The next step is timed from this send, as wb_store_outcomes does. */
    s->un[s->nun] = (struct wb_plan_item){t, it->seq, it->step + 1, it->sender, it->person,
                                          it->hold, it->win, false};
    s->nun++;
    if (t + q->min_after[it->step + 1] < s->un_min)
        s->un_min = t + q->min_after[it->step + 1];
}

/* A manual step makes a task (wb_task_claim): no mail, no limit, no
 * contact policy; the next step waits for someone to close it. */
static void sim_task(struct sim *s, const struct sim_ent *e)
{
    struct wb_plan *p = s->p;
    if (e->it.seq != 0)
        return;
    p->sent[WB_PLAN_AT(p, (long)floor(e->at / DAY_S) - s->day0, e->it.sender, e->it.step)]++;
    if ((size_t)e->it.step + 1 < p->seqs[0].n_steps)
        p->after_task++;
}

double wb_plan_window_next(const struct wb_plan_window *w, double t)
{
    if (!w)
        return t;
    /* The first span that closes after t. */
    size_t lo = 0, hi = w->n;
    while (lo < hi) {
        size_t m = lo + (hi - lo) / 2;
        if (w->close[m] <= t)
            lo = m + 1;
        else
            hi = m;
    }
    if (lo == w->n)
        return INFINITY;
    return w->open[lo] > t ? w->open[lo] : t;
}

/* One popped send: goes now, or is put back at when the limit, the
 * interval, the window or the contact policy lets it, in that order, as
 * the claim looks at them (the limit and the interval before it picks;
 * the window, then the policy, on what it picked). A retry is claimed
 * whenever due, without either. */
static void sim_try(struct sim *s, const struct sim_ent *e)
{
    struct wb_plan *p = s->p;
    if (p->seqs[e->it.seq].task && p->seqs[e->it.seq].task[e->it.step]) {
        sim_task(s, e);
        return;
    }
    /* Whom the policy holds and until when is listed whatever else holds
     * them too (the limit, the window): it does not depend on the order
     * the claim happens to reach them in. */
    double ok = -INFINITY;
    if (!e->it.retry && (p->cooldown_days > 0 || p->max_per_30_days > 0)) {
        struct wb_plan_person *pp = &p->persons[e->it.person];
        ok = wb_plan_contact_ok_at(p, pp, e->it.seq, e->it.step, e->at);
        if (e->it.seq == 0 && ok > e->at && ok > pp->wait_until) {
            pp->wait_until = ok;
            pp->wait_step = e->it.step;
        }
    }
    const struct wb_plan_sender *snd = &p->senders[e->it.sender];
    double t = e->at;
    int gap = snd->cfg->min_interval_s;
    if (gap > 0 && snd->last_send > 0 && snd->last_send + gap > t)
        t = snd->last_send + gap;
    long day = (long)floor(t / DAY_S);
    long lim = sim_limit(snd, day);
    if (t < s->end && lim > 0 && *sim_used(s, day, e->it.sender) >= lim)
        t = (double)(day + 1) * DAY_S;
    if (t > e->at) {
        sim_push(s, &e->it, t, e->ord, e->late);
        return;
    }
    if (e->it.retry) {
        sim_sent(s, &e->it, t, day);
        return;
    }
    double open = wb_plan_window_next(e->it.win, t);
    if (open > t) {
        sim_push(s, &e->it, open, open, false);
        return;
    }
    if (ok > t) {
        open = wb_plan_window_next(e->it.win, ok);
        sim_push(s, &e->it, open, open, false);
        return;
    }
    sim_sent(s, &e->it, t, day);
}

static void sim_left(struct wb_plan *p, const struct wb_plan_item *it)
{
    if (it->seq == 0)
        p->left[it->step]++;
}

static void sim_collect_waits(struct wb_plan *p)
{
    for (size_t i = 0; i < p->n_persons; i++) {
        if (p->persons[i].wait_until <= 0)
            continue;
        p->waits = wb_xrealloc(p->waits, (p->n_waits + 1) * sizeof *p->waits);
        p->waits[p->n_waits++] = (struct wb_plan_wait){i, p->persons[i].wait_step,
                                                       p->persons[i].wait_until};
    }
}

int wb_plan_run(struct wb_plan *p)
{
    size_t ns = p->n_senders, nk = p->seqs[0].n_steps, nd = (size_t)p->days;
    struct sim s = {.p = p, .day0 = (long)floor(p->now / DAY_S), .un_min = INFINITY};
    s.end = (double)(s.day0 + p->days) * DAY_S;
    s.used = wb_xcalloc(nd * ns + 1, sizeof *s.used);
    p->sent = wb_xcalloc(nd * ns * nk + 1, sizeof *p->sent);
    p->other = wb_xcalloc(nd * ns + 1, sizeof *p->other);
    p->limit = wb_xcalloc(nd * ns + 1, sizeof *p->limit);
    p->left = wb_xcalloc(nk + 1, sizeof *p->left);
    for (size_t k = 0; k < ns; k++)
        *sim_used(&s, s.day0, (int)k) = p->senders[k].used_today;
    for (size_t i = 0; i < p->n_items; i++)
        sim_enqueue(&s, &p->items[i], false);
    int rc = 0;
    for (;;) {
        if (s.nun && (!s.nh || s.un_min <= s.h[0].at) && s.un_min < s.end) {
            if ((rc = sim_resolve(&s)) < 0)
                break;
            continue;
        }
        if (!s.nh)
            break;
        struct sim_ent e = sim_pop(&s);
        if (e.at >= s.end)
            sim_left(p, &e.it);
        else
            sim_try(&s, &e);
    }
    for (size_t i = 0; i < s.nun; i++)
        sim_left(p, &s.un[i]);
    for (size_t d = 0; d < nd; d++)
        for (size_t k = 0; k < ns; k++)
            p->limit[d * ns + k] = sim_limit(&p->senders[k], s.day0 + (long)d);
    sim_collect_waits(p);
    free(s.h);
    free(s.un);
    free(s.used);
    return rc;
}

void wb_plan_free(struct wb_plan *p)
{
    for (size_t i = 0; i < p->n_persons; i++) {
        free(p->persons[i].t);
        free(p->persons[i].seq);
    }
    for (size_t i = 0; i < p->n_seqs; i++) {
        free(p->seqs[i].min_after);
        free(p->seqs[i].task);
    }
    for (size_t i = 0; i < p->n_windows; i++) {
        free(p->windows[i].open);
        free(p->windows[i].close);
    }
    free(p->windows);
    free(p->persons);
    free(p->seqs);
    free(p->senders);
    free(p->items);
    free(p->sent);
    free(p->other);
    free(p->limit);
    free(p->left);
    free(p->waits);
    memset(p, 0, sizeof *p);
}
