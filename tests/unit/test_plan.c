/* The plan's simulation (lib/send/plan_sim.c) with a stand-in for the
 * daemon's step timing: limits per UTC day with warm-up, min_interval_s,
 * steps chained from each send, the contact policy, pauses, manual
 * steps, out-of-office holds and windows (what the claim finds outside
 * its window goes at the next opening). */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "warmbench/plan.h"

#define DAY 86400.0
#define NOW (20000 * DAY + 6 * 3600.0) /* a day's 06:00 UTC */

static int calls;

/* The next step falls due `after` (seconds) after the send, same sender;
 * a step 9 never (a window with no days). */
static int next_after(void *ud, struct wb_plan_item *v, size_t n)
{
    double after = *(double *)ud;
    calls++;
    for (size_t i = 0; i < n; i++) {
        v[i].due = v[i].step == 9 ? NAN : v[i].due + after;
        v[i].sender = 0;
    }
    return 0;
}

static struct wb_sender snd;
static double after_s;

static void setup(struct wb_plan *p, int days, size_t steps, size_t people)
{
    memset(p, 0, sizeof *p);
    p->now = NOW;
    p->days = days;
    p->n_senders = 1;
    p->senders = calloc(1, sizeof *p->senders);
    p->senders[0] = (struct wb_plan_sender){.cfg = &snd, .first_day = -1};
    p->n_seqs = 2;
    p->seqs = calloc(2, sizeof *p->seqs);
    for (int k = 0; k < 2; k++) {
        p->seqs[k].n_steps = steps;
        p->seqs[k].min_after = calloc(steps, sizeof(double));
        p->seqs[k].task = calloc(steps, sizeof(bool));
        for (size_t j = 1; j < steps; j++)
            p->seqs[k].min_after[j] = after_s;
    }
    p->n_persons = people;
    p->persons = calloc(people, sizeof *p->persons);
    for (size_t i = 0; i < people; i++) {
        p->persons[i].cand = (long long)i + 1;
        struct wb_plan_item it = {NOW + 3 * 3600, 0, 0, 0, i, 0, NULL, false};
        wb_plan_add_item(p, &it);
    }
    p->next = next_after;
    p->next_ud = &after_s;
    calls = 0;
}

static long day_total(const struct wb_plan *p, int d)
{
    long n = 0;
    for (size_t k = 0; k < p->seqs[0].n_steps; k++)
        n += p->sent[WB_PLAN_AT(p, d, 0, k)];
    return n;
}

START_TEST(test_limit_carries_to_next_utc_day)
{
    snd = (struct wb_sender){.id = "ana", .daily_limit = 2};
    after_s = 0;
    struct wb_plan p;
    setup(&p, 4, 1, 5);
    p.senders[0].used_today = 1; /* one claimed already today */
    ck_assert_int_eq(wb_plan_run(&p), 0);
    ck_assert_int_eq(day_total(&p, 0), 1);
    ck_assert_int_eq(day_total(&p, 1), 2);
    ck_assert_int_eq(day_total(&p, 2), 2);
    ck_assert_int_eq(day_total(&p, 3), 0);
    ck_assert_int_eq(p.limit[0], 2);
    ck_assert_int_eq(p.left[0], 0);
    wb_plan_free(&p);
}
END_TEST

START_TEST(test_warmup_and_steps_chain)
{
    snd = (struct wb_sender){.id = "ana", .daily_limit = 3,
                             .warmup = {.enabled = true, .start = 1, .step = 1, .every_days = 1}};
    after_s = 2 * DAY;
    struct wb_plan p;
    setup(&p, 5, 2, 4);
    ck_assert_int_eq(wb_plan_run(&p), 0);
    /* Limits 1, 2, 3, 3, 3 (warm-up from the first send, capped). */
    long want_limit[] = {1, 2, 3, 3, 3};
    for (int d = 0; d < 5; d++)
        ck_assert_int_eq(p.limit[d], want_limit[d]);
    /* Step 1: 1, 2, 1 (days 0-2); step 2 two days after each send, in due
     * order behind what is already due. */
    ck_assert_int_eq(p.sent[WB_PLAN_AT(&p, 0, 0, 0)], 1);
    ck_assert_int_eq(p.sent[WB_PLAN_AT(&p, 1, 0, 0)], 2);
    ck_assert_int_eq(p.sent[WB_PLAN_AT(&p, 2, 0, 0)], 1);
    ck_assert_int_eq(p.sent[WB_PLAN_AT(&p, 2, 0, 1)], 1);
    ck_assert_int_eq(p.sent[WB_PLAN_AT(&p, 3, 0, 1)], 2);
    ck_assert_int_eq(p.sent[WB_PLAN_AT(&p, 4, 0, 1)], 1);
    ck_assert_int_eq(p.left[1], 0);
    /* Timed in batches, not once per send. */
    ck_assert_int_lt(calls, 8);
    wb_plan_free(&p);
}
END_TEST

START_TEST(test_min_interval_and_left)
{
    snd = (struct wb_sender){.id = "ana", .min_interval_s = 8 * 3600};
    after_s = 0;
    struct wb_plan p;
    setup(&p, 2, 1, 10);
    ck_assert_int_eq(wb_plan_run(&p), 0);
    /* From 09:00: 09:00 and 17:00 today, 01:00, 09:00, 17:00 tomorrow. */
    ck_assert_int_eq(day_total(&p, 0), 2);
    ck_assert_int_eq(day_total(&p, 1), 3);
    ck_assert_int_eq(p.left[0], 5);
    wb_plan_free(&p);
}
END_TEST

START_TEST(test_contact_policy)
{
    snd = (struct wb_sender){.id = "ana"};
    struct wb_plan p;
    after_s = 0;
    setup(&p, 1, 1, 1);
    p.max_per_30_days = 2;
    struct wb_plan_person *pp = &p.persons[0];
    double t = NOW;
    ck_assert(isinf(wb_plan_contact_ok_at(&p, pp, 0, 1, t)));
    wb_plan_person_add(pp, t - 40 * DAY, 0); /* older than 30 days: not counted */
    wb_plan_person_add(pp, t - 10 * DAY, 0);
    ck_assert(wb_plan_contact_ok_at(&p, pp, 0, 1, t) < t);
    wb_plan_person_add(pp, t - 5 * DAY, -1);
    /* The second most recent of the last 30 days, plus 30 days. */
    ck_assert(wb_plan_contact_ok_at(&p, pp, 0, 1, t) == t + 20 * DAY);
    p.max_per_30_days = 0;
    p.cooldown_days = 7;
    /* A first step waits 7 days after another sequence's last mail; a later
     * step or the same sequence's mail does not. */
    ck_assert(wb_plan_contact_ok_at(&p, pp, 0, 0, t) == t + 2 * DAY);
    ck_assert(wb_plan_contact_ok_at(&p, pp, 0, 1, t) < t);
    ck_assert(wb_plan_contact_ok_at(&p, pp, -1, 0, t) == t - 3 * DAY);
    wb_plan_free(&p);
}
END_TEST

START_TEST(test_policy_defers_and_lists_the_wait)
{
    snd = (struct wb_sender){.id = "ana"};
    after_s = 0;
    struct wb_plan p;
    setup(&p, 5, 1, 2);
    p.cooldown_days = 2;
    wb_plan_person_add(&p.persons[1], NOW - DAY, 1); /* another sequence, yesterday */
    ck_assert_int_eq(wb_plan_run(&p), 0);
    ck_assert_int_eq(day_total(&p, 0), 1);
    ck_assert_int_eq(day_total(&p, 1), 1); /* at NOW - DAY + 2 days */
    ck_assert_uint_eq(p.n_waits, 1);
    ck_assert_uint_eq(p.waits[0].person, 1);
    ck_assert(p.waits[0].until == NOW + DAY);
    wb_plan_free(&p);
}
END_TEST

START_TEST(test_paused_and_never)
{
    snd = (struct wb_sender){.id = "ana"};
    after_s = 0;
    struct wb_plan p;
    setup(&p, 3, 1, 3);
    p.senders[0].paused = true;
    ck_assert_int_eq(wb_plan_run(&p), 0);
    for (int d = 0; d < 3; d++)
        ck_assert_int_eq(day_total(&p, d), 0);
    wb_plan_free(&p);
    setup(&p, 3, 10, 1);
    p.items[0].step = 8; /* its next step, 9, never falls due */
    p.seqs[1].paused = true;
    struct wb_plan_item other = {NOW, 1, 0, 0, 0, 0, NULL, false};
    wb_plan_add_item(&p, &other);
    ck_assert_int_eq(wb_plan_run(&p), 0);
    ck_assert_int_eq(p.sent[WB_PLAN_AT(&p, 0, 0, 8)], 1);
    ck_assert_int_eq(p.never, 1);
    ck_assert_int_eq(p.other[0], 0);
    wb_plan_free(&p);
}
END_TEST

START_TEST(test_task_steps_and_ooo_hold)
{
    snd = (struct wb_sender){.id = "ana", .daily_limit = 1};
    after_s = 0;
    struct wb_plan p;
    setup(&p, 3, 2, 3);
    /* A task is no mail: no limit; the next step waits for `done`. */
    p.seqs[0].task[0] = true;
    ck_assert_int_eq(wb_plan_run(&p), 0);
    ck_assert_int_eq(p.sent[WB_PLAN_AT(&p, 0, 0, 0)], 3);
    ck_assert_int_eq(p.sent[WB_PLAN_AT(&p, 0, 0, 1)], 0);
    ck_assert_int_eq(p.after_task, 3);
    ck_assert_int_eq(calls, 0);
    wb_plan_free(&p);
    /* An out-of-office hold: not before it, and its next step neither. */
    snd = (struct wb_sender){.id = "ana"};
    setup(&p, 3, 2, 1);
    p.items[0].hold = NOW + DAY;
    ck_assert_int_eq(wb_plan_run(&p), 0);
    ck_assert_int_eq(p.sent[WB_PLAN_AT(&p, 0, 0, 0)], 0);
    ck_assert_int_eq(p.sent[WB_PLAN_AT(&p, 1, 0, 0)], 1);
    ck_assert_int_eq(p.sent[WB_PLAN_AT(&p, 1, 0, 1)], 1);
    wb_plan_free(&p);
}
END_TEST

/* A window open 09:00-17:00 UTC on `days` days from NOW's, shut on day
 * `shut` (a holiday; -1 none). */
static void window(struct wb_plan *p, int days, int shut)
{
    p->n_windows = 1;
    p->windows = calloc(1, sizeof *p->windows);
    struct wb_plan_window *w = p->windows;
    w->open = calloc((size_t)days, sizeof(double));
    w->close = calloc((size_t)days, sizeof(double));
    double day0 = floor(NOW / DAY) * DAY;
    for (int d = 0; d < days; d++)
        if (d != shut) {
            w->open[w->n] = day0 + d * DAY + 9 * 3600;
            w->close[w->n++] = day0 + d * DAY + 17 * 3600;
        }
    for (size_t i = 0; i < p->n_items; i++)
        p->items[i].win = w;
}

/* Every mail a person got was sent while the window was open. */
static void assert_in_window(const struct wb_plan *p)
{
    for (size_t i = 0; i < p->n_persons; i++)
        for (size_t k = 0; k < p->persons[i].n; k++)
            ck_assert(wb_plan_window_next(&p->windows[0], p->persons[i].t[k]) ==
                      p->persons[i].t[k]);
}

START_TEST(test_window_next)
{
    double o[] = {10, 30}, c[] = {20, 40};
    struct wb_plan_window w = {o, c, 2};
    ck_assert(wb_plan_window_next(NULL, 5) == 5);
    ck_assert(wb_plan_window_next(&w, 5) == 10);
    ck_assert(wb_plan_window_next(&w, 10) == 10);
    ck_assert(wb_plan_window_next(&w, 19.5) == 19.5);
    ck_assert(wb_plan_window_next(&w, 20) == 30);
    ck_assert(isinf(wb_plan_window_next(&w, 40)));
    w.n = 0;
    ck_assert(isinf(wb_plan_window_next(&w, 5)));
}
END_TEST

START_TEST(test_limit_leftover_waits_for_the_window)
{
    snd = (struct wb_sender){.id = "ana", .daily_limit = 2};
    after_s = 0;
    struct wb_plan p;
    setup(&p, 5, 1, 6);
    /* One is a retry due at 06:00: the claim takes it then, window or not. */
    p.items[5].due = NOW;
    p.items[5].retry = true;
    window(&p, 5, 2);
    ck_assert_int_eq(wb_plan_run(&p), 0);
    /* Not at 00:00 UTC the next day: at 09:00, and none on the holiday. */
    ck_assert_int_eq(day_total(&p, 0), 2);
    ck_assert_int_eq(day_total(&p, 1), 2);
    ck_assert_int_eq(day_total(&p, 2), 0);
    ck_assert_int_eq(day_total(&p, 3), 2);
    ck_assert(p.persons[5].t[0] == NOW);
    p.persons[5].n = 0;
    assert_in_window(&p);
    wb_plan_free(&p);
    /* Without the window, the leftovers go at 00:00 UTC, the holiday too. */
    setup(&p, 5, 1, 6);
    ck_assert_int_eq(wb_plan_run(&p), 0);
    ck_assert_int_eq(day_total(&p, 2), 2);
    ck_assert(p.persons[2].t[0] == floor(NOW / DAY) * DAY + DAY);
    wb_plan_free(&p);
}
END_TEST

START_TEST(test_policy_deferral_lands_in_the_window)
{
    snd = (struct wb_sender){.id = "ana"};
    after_s = 0;
    struct wb_plan p;
    setup(&p, 5, 1, 2);
    window(&p, 5, 1);
    p.cooldown_days = 2;
    wb_plan_person_add(&p.persons[1], NOW - DAY, 1); /* ok at NOW + DAY: a holiday */
    ck_assert_int_eq(wb_plan_run(&p), 0);
    ck_assert_int_eq(day_total(&p, 0), 1);
    ck_assert_int_eq(day_total(&p, 1), 0);
    ck_assert_int_eq(day_total(&p, 2), 1);
    ck_assert(p.persons[1].t[1] == NOW + 2 * DAY + 3 * 3600);
    /* The wait listed is the policy's. */
    ck_assert(p.waits[0].until == NOW + DAY);
    wb_plan_free(&p);
}
END_TEST

Suite *wb_test_suite(void)
{
    Suite *s = suite_create("plan");
    TCase *tc = tcase_create("sim");
    tcase_add_test(tc, test_limit_carries_to_next_utc_day);
    tcase_add_test(tc, test_warmup_and_steps_chain);
    tcase_add_test(tc, test_min_interval_and_left);
    tcase_add_test(tc, test_contact_policy);
    tcase_add_test(tc, test_policy_defers_and_lists_the_wait);
    tcase_add_test(tc, test_paused_and_never);
    tcase_add_test(tc, test_task_steps_and_ooo_hold);
    tcase_add_test(tc, test_window_next);
    tcase_add_test(tc, test_limit_leftover_waits_for_the_window);
    tcase_add_test(tc, test_policy_deferral_lands_in_the_window);
    suite_add_tcase(s, tc);
    return s;
}
