/* Repeat suppression for tracking hits (pure: no I/O, no clock of its
 * own). Remembers which (message, open or link, machine flag) were
 * recorded in the current window, a calendar minute for the endpoint, so
 * a repeat within it can be answered without queueing an event. The
 * table is fixed-size and set-associative: entries of a past window are
 * reused, and when every entry of a set is current one is evicted, so a
 * flood of distinct tokens costs a few repeats recorded twice, never
 * memory. A hit is marked only once its event was accepted: a refused
 * one must stay recordable by a retry. */
#ifndef WB_DEDUP_H
#define WB_DEDUP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* key.what of an open; a click's is its link index (0 and up). */
#define WB_DEDUP_OPEN (-1)

struct wb_dedup_key {
    int64_t message_id;
    int32_t what;       /* WB_DEDUP_OPEN or a link index */
    bool machine;       /* machine and human hits are kept apart */
};

struct wb_dedup_stats {
    size_t capacity;                /* entries */
    unsigned long long evicted;     /* current entries overwritten */
};

struct wb_dedup;

/* capacity: entries (0: 65536), rounded up to a power of two from 8 to
 * 2^27; window_s: the window's length in seconds (0: 60). Windows are
 * aligned on multiples of window_s since the epoch. */
struct wb_dedup *wb_dedup_new(size_t capacity, unsigned window_s);
/* True when k was marked in the window holding `now` (Unix seconds). */
bool wb_dedup_seen(const struct wb_dedup *d, const struct wb_dedup_key *k, double now);
/* Remembers k as recorded in the window holding `now`. */
void wb_dedup_mark(struct wb_dedup *d, const struct wb_dedup_key *k, double now);
void wb_dedup_stats(const struct wb_dedup *d, struct wb_dedup_stats *out);
void wb_dedup_free(struct wb_dedup *d);

#endif
