/* Repeat suppression: sets of WAYS entries chosen by a hash of the key.
 * A set is searched whole, so a lookup costs a few cache lines whatever
 * the load, and nothing is ever allocated after wb_dedup_new. */
#include "warmbench/dedup.h"
#include "warmbench/util.h"
#include <stdlib.h>

#define WAYS 8
#define DEFAULT_CAPACITY 65536
#define DEFAULT_WINDOW_S 60
/* Clock values past this (year 30,000,000) are clamped: a double beyond
 * int64's range must not reach a conversion. */
#define LATEST_S 1e15

struct entry {
    int64_t message_id;
    uint64_t stamp;      /* window + 1; 0 = never used */
    int32_t what;
    bool machine;
};

struct wb_dedup {
    struct entry *e;     /* nsets * WAYS */
    uint8_t *next;       /* per set: the way to evict next (round robin) */
    size_t nsets;        /* a power of two */
    unsigned window_s;
    unsigned long long evicted;
};

struct wb_dedup *wb_dedup_new(size_t capacity, unsigned window_s)
{
    struct wb_dedup *d = wb_xcalloc(1, sizeof *d);
    size_t want = ((capacity ? capacity : DEFAULT_CAPACITY) + WAYS - 1) / WAYS;
    d->nsets = 1;
    while (d->nsets < want && d->nsets < ((size_t)1 << 24))
        d->nsets <<= 1;
    d->window_s = window_s ? window_s : DEFAULT_WINDOW_S;
    d->e = wb_xcalloc(d->nsets * WAYS, sizeof *d->e);
    d->next = wb_xcalloc(d->nsets, 1);
    return d;
}

/* The stamp of the window holding now; NaN and negative times share the
 * first window rather than trip a conversion. */
static uint64_t dd_dedup_stamp(const struct wb_dedup *d, double now)
{
    if (!(now >= 0))
        now = 0;
    if (now > LATEST_S)
        now = LATEST_S;
    return (uint64_t)(now / d->window_s) + 1;
}

/* splitmix64's finaliser over the key's fields: sequential message ids
 * spread over every set. */
static size_t dd_dedup_set(const struct wb_dedup *d, const struct wb_dedup_key *k)
{
    uint64_t x = (uint64_t)k->message_id * 0x9e3779b97f4a7c15ULL;
    x ^= ((uint64_t)(uint32_t)k->what << 1 | (k->machine ? 1u : 0u)) * 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return (size_t)(x & (d->nsets - 1));
}

static bool dd_dedup_same(const struct entry *e, const struct wb_dedup_key *k)
{
    return e->message_id == k->message_id && e->what == k->what && e->machine == k->machine;
}

bool wb_dedup_seen(const struct wb_dedup *d, const struct wb_dedup_key *k, double now)
{
    uint64_t stamp = dd_dedup_stamp(d, now);
    const struct entry *set = &d->e[dd_dedup_set(d, k) * WAYS];
    for (int i = 0; i < WAYS; i++)
        if (set[i].stamp == stamp && dd_dedup_same(&set[i], k))
            return true;
    return false;
}

/* The way k goes to: its own current entry, else one of a past window
 * (or unused), else the set's next victim. */
static struct entry *dd_dedup_slot(struct wb_dedup *d, size_t s, const struct wb_dedup_key *k,
                                uint64_t stamp)
{
    struct entry *set = &d->e[s * WAYS], *stale = NULL;
    for (int i = 0; i < WAYS; i++) {
        if (set[i].stamp == stamp && dd_dedup_same(&set[i], k))
            return &set[i];
        if (set[i].stamp != stamp && !stale)
            stale = &set[i];
    }
    if (stale)
        return stale;
    d->evicted++;
    struct entry *victim = &set[d->next[s]];
    d->next[s] = (uint8_t)((d->next[s] + 1) % WAYS);
    return victim;
}

void wb_dedup_mark(struct wb_dedup *d, const struct wb_dedup_key *k, double now)
{
    uint64_t stamp = dd_dedup_stamp(d, now);
    struct entry *e = dd_dedup_slot(d, dd_dedup_set(d, k), k, stamp);
    *e = (struct entry){k->message_id, stamp, k->what, k->machine};
}

void wb_dedup_stats(const struct wb_dedup *d, struct wb_dedup_stats *out)
{
    out->capacity = d->nsets * WAYS;
    out->evicted = d->evicted;
}

void wb_dedup_free(struct wb_dedup *d)
{
    if (!d)
        return;
    free(d->e);
    free(d->next);
    free(d);
}
