#include <check.h>
#include <math.h>
#include <stdint.h>
#include "warmbench/dedup.h"

/* A minute boundary (2026-12-06 10:00:00 UTC). */
#define T0 1796551200.0

static struct wb_dedup_key key(int64_t id, int32_t what, bool machine)
{
    return (struct wb_dedup_key){id, what, machine};
}

START_TEST(test_marked_is_seen_within_the_minute_only)
{
    struct wb_dedup *d = wb_dedup_new(0, 0);
    struct wb_dedup_key k = key(42, WB_DEDUP_OPEN, false);
    ck_assert(!wb_dedup_seen(d, &k, T0 + 1));
    /* Asking does not remember: a refused event stays recordable. */
    ck_assert(!wb_dedup_seen(d, &k, T0 + 1));
    wb_dedup_mark(d, &k, T0 + 1);
    ck_assert(wb_dedup_seen(d, &k, T0 + 1));
    ck_assert(wb_dedup_seen(d, &k, T0 + 59.999));
    ck_assert(!wb_dedup_seen(d, &k, T0 + 60));
    ck_assert(!wb_dedup_seen(d, &k, T0 - 0.001));
    wb_dedup_mark(d, &k, T0 + 61);
    ck_assert(wb_dedup_seen(d, &k, T0 + 119));
    wb_dedup_free(d);
}
END_TEST

START_TEST(test_message_link_and_machine_flag_are_apart)
{
    struct wb_dedup *d = wb_dedup_new(0, 0);
    struct wb_dedup_key k = key(7, 1, false);
    wb_dedup_mark(d, &k, T0);
    struct wb_dedup_key others[] = {key(7, 0, false), key(7, WB_DEDUP_OPEN, false),
                                    key(7, 1, true), key(8, 1, false), key(-7, 1, false)};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        ck_assert(!wb_dedup_seen(d, &others[i], T0));
    ck_assert(wb_dedup_seen(d, &k, T0));
    /* Marking twice keeps one entry. */
    wb_dedup_mark(d, &k, T0 + 5);
    struct wb_dedup_stats s;
    wb_dedup_stats(d, &s);
    ck_assert_uint_eq(s.evicted, 0);
    wb_dedup_free(d);
}
END_TEST

START_TEST(test_capacity_rounds_up_to_whole_sets)
{
    const size_t asked[] = {0, 1, 8, 9, 100, 65536};
    const size_t got[] = {65536, 8, 8, 16, 128, 65536};
    for (size_t i = 0; i < sizeof asked / sizeof asked[0]; i++) {
        struct wb_dedup *d = wb_dedup_new(asked[i], 0);
        struct wb_dedup_stats s;
        wb_dedup_stats(d, &s);
        ck_assert_uint_eq(s.capacity, got[i]);
        wb_dedup_free(d);
    }
}
END_TEST

/* One set of eight: past windows' entries are reused before anything
 * current is evicted. */
START_TEST(test_past_entries_are_reused_before_eviction)
{
    struct wb_dedup *d = wb_dedup_new(8, 60);
    struct wb_dedup_stats s;
    for (int i = 0; i < 8; i++) {
        struct wb_dedup_key k = key(i, WB_DEDUP_OPEN, false);
        wb_dedup_mark(d, &k, T0);
    }
    for (int i = 0; i < 8; i++) {
        struct wb_dedup_key k = key(i, WB_DEDUP_OPEN, false);
        ck_assert(wb_dedup_seen(d, &k, T0 + 30));
    }
    for (int i = 100; i < 108; i++) {
        struct wb_dedup_key k = key(i, 3, true);
        wb_dedup_mark(d, &k, T0 + 60);
    }
    wb_dedup_stats(d, &s);
    ck_assert_uint_eq(s.evicted, 0);
    struct wb_dedup_key ninth = key(999, 0, false);
    wb_dedup_mark(d, &ninth, T0 + 61);
    wb_dedup_stats(d, &s);
    ck_assert_uint_eq(s.evicted, 1);
    ck_assert(wb_dedup_seen(d, &ninth, T0 + 61));
    wb_dedup_free(d);
}
END_TEST

/* A flood of distinct keys: memory stays at the capacity, the newest mark
 * is always remembered, and what was evicted is merely recordable again. */
START_TEST(test_a_flood_of_distinct_keys_stays_bounded)
{
    struct wb_dedup *d = wb_dedup_new(64, 60);
    for (int64_t i = 0; i < 100000; i++) {
        struct wb_dedup_key k = key(i * 7919, (int32_t)(i % 5) - 1, i % 3 == 0);
        wb_dedup_mark(d, &k, T0 + (double)(i % 50));
        ck_assert(wb_dedup_seen(d, &k, T0 + 50));
    }
    struct wb_dedup_stats s;
    wb_dedup_stats(d, &s);
    ck_assert_uint_eq(s.capacity, 64);
    ck_assert_uint_ge(s.evicted, 100000 - 64);
    size_t remembered = 0;
    for (int64_t i = 0; i < 100000; i++) {
        struct wb_dedup_key k = key(i * 7919, (int32_t)(i % 5) - 1, i % 3 == 0);
        remembered += wb_dedup_seen(d, &k, T0 + 50);
    }
    ck_assert_uint_le(remembered, 64);
    ck_assert_uint_gt(remembered, 0);
    wb_dedup_free(d);
}
END_TEST

/* Sequential message ids (as the database gives them) spread over the
 * sets: 2,000 keys in a 65,536-entry table evict nothing. */
START_TEST(test_sequential_ids_spread)
{
    struct wb_dedup *d = wb_dedup_new(0, 0);
    for (int64_t i = 1; i <= 2000; i++) {
        struct wb_dedup_key o = key(i, WB_DEDUP_OPEN, false), c = key(i, 0, false);
        wb_dedup_mark(d, &o, T0);
        wb_dedup_mark(d, &c, T0);
    }
    struct wb_dedup_stats s;
    wb_dedup_stats(d, &s);
    ck_assert_uint_eq(s.evicted, 0);
    wb_dedup_free(d);
}
END_TEST

START_TEST(test_extreme_keys_and_clocks)
{
    struct wb_dedup *d = wb_dedup_new(16, 0);
    struct wb_dedup_key ks[] = {key(INT64_MIN, INT32_MIN, true), key(INT64_MAX, INT32_MAX, false),
                                key(0, 0, false)};
    const double clocks[] = {NAN, -1, -1e300, INFINITY, -INFINITY, 1e300, 0, 1e15, 1e16};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++)
        for (size_t c = 0; c < sizeof clocks / sizeof clocks[0]; c++) {
            wb_dedup_mark(d, &ks[i], clocks[c]);
            ck_assert(wb_dedup_seen(d, &ks[i], clocks[c]));
        }
    /* A clock that is not a time shares the first window. */
    struct wb_dedup_key k = key(5, WB_DEDUP_OPEN, false);
    wb_dedup_mark(d, &k, NAN);
    ck_assert(wb_dedup_seen(d, &k, -3));
    ck_assert(wb_dedup_seen(d, &k, 59));
    ck_assert(!wb_dedup_seen(d, &k, T0));
    wb_dedup_free(d);
}
END_TEST

START_TEST(test_window_length)
{
    struct wb_dedup *d = wb_dedup_new(0, 10);
    struct wb_dedup_key k = key(1, 2, false);
    wb_dedup_mark(d, &k, T0 + 3);
    ck_assert(wb_dedup_seen(d, &k, T0 + 9.5));
    ck_assert(!wb_dedup_seen(d, &k, T0 + 10));
    wb_dedup_free(d);
    wb_dedup_free(NULL);
}
END_TEST

Suite *wb_test_suite(void)
{
    Suite *s = suite_create("dedup");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_marked_is_seen_within_the_minute_only);
    tcase_add_test(tc, test_message_link_and_machine_flag_are_apart);
    tcase_add_test(tc, test_capacity_rounds_up_to_whole_sets);
    tcase_add_test(tc, test_past_entries_are_reused_before_eviction);
    tcase_add_test(tc, test_a_flood_of_distinct_keys_stays_bounded);
    tcase_add_test(tc, test_sequential_ids_spread);
    tcase_add_test(tc, test_extreme_keys_and_clocks);
    tcase_add_test(tc, test_window_length);
    suite_add_tcase(s, tc);
    return s;
}
