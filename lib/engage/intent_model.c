/* Reply intent model (see intent.h): a multinomial logistic regression over
 * hashed character n-grams and words of the folded reply, trained offline
 * by tools/intent/train.py and shipped as a small binary file. The same
 * wb_intent_features feeds training (through tools/intent/intent_eval) and
 * scoring, so the two can never disagree on what a feature is. */
#include "warmbench/intent.h"
#include "warmbench/util.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IM_MAGIC "WBIM"
#define IM_VERSION 1
#define IM_HEADER 52
/* Far above any model the training script writes (2^18 buckets is 2 MB):
 * a bigger file is not ours and is not read into memory. */
#define IM_MAX_FILE (16u << 20)

struct wb_intent_model {
    struct wb_intent_feat_params p;
    float scale, bias[WB_INTENT_COUNT];
    int16_t *w; /* (1 << bits) x WB_INTENT_COUNT, feature-major */
};

/* ---- features ---------------------------------------------------------- */

static uint32_t im_fnv(uint32_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

static bool im_word_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80 || c == '\'';
}

static int im_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

struct im_acc {
    uint32_t *v;
    size_t n, cap, mask;
};

static void im_add(struct im_acc *a, uint32_t h)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 512;
        a->v = wb_xrealloc(a->v, a->cap * sizeof *a->v);
    }
    a->v[a->n++] = h & a->mask;
}

size_t wb_intent_features(const struct wb_intent_feat_params *p, const char *folded, uint32_t **idx,
                          float **val)
{
    /* " text " with digits as 0 and every blank one space, cut at
     * max_bytes: a hostile 60 KB reply costs no more than a long one. */
    size_t n = strlen(folded), cap = n < p->max_bytes ? n : p->max_bytes, len = 0;
    unsigned char *t = wb_xmalloc(cap + 3);
    t[len++] = ' ';
    for (size_t i = 0; i < cap; i++) {
        unsigned char c = (unsigned char)folded[i];
        c = c >= '0' && c <= '9' ? '0' : c <= ' ' ? ' ' : c;
        if (c == ' ' && t[len - 1] == ' ')
            continue;
        t[len++] = c;
    }
    if (t[len - 1] != ' ')
        t[len++] = ' ';
    struct im_acc a = {NULL, 0, 0, ((size_t)1 << p->bits) - 1};
    for (unsigned k = p->nmin; k <= p->nmax; k++)
        for (size_t i = 0; i + k <= len; i++)
            im_add(&a, im_fnv(2166136261u ^ k, t + i, k));
    if (p->flags & WB_INTENT_FEAT_WORDS) {
        /* Words (a seed of their own so "oui" the word is not " oui" the
         * 5-gram) and, with the bigram flag, pairs of neighbours. */
        uint32_t prev = 0;
        for (size_t i = 0; i < len;) {
            if (!im_word_char(t[i])) {
                if (t[i] != ' ')
                    prev = 0; /* punctuation ends a phrase */
                i++;
                continue;
            }
            size_t s = i;
            while (i < len && im_word_char(t[i]))
                i++;
            uint32_t h = im_fnv(0x9e3779b9u, t + s, i - s);
            im_add(&a, h);
            if ((p->flags & WB_INTENT_FEAT_BIGRAMS) && prev)
                im_add(&a, im_fnv(prev * 31u + 7u, t + s, i - s));
            prev = h | 1u;
        }
    }
    free(t);
    /* Counts per bucket, damped (1 + ln count) and scaled to unit length. */
    if (a.n)
        qsort(a.v, a.n, sizeof *a.v, im_cmp_u32);
    uint32_t *oi = wb_xmalloc((a.n ? a.n : 1) * sizeof *oi);
    float *ov = wb_xmalloc((a.n ? a.n : 1) * sizeof *ov);
    size_t m = 0;
    double norm = 0;
    for (size_t i = 0; i < a.n;) {
        size_t j = i;
        while (j < a.n && a.v[j] == a.v[i])
            j++;
        double v = 1.0 + log((double)(j - i));
        oi[m] = a.v[i];
        ov[m++] = (float)v;
        norm += v * v;
        i = j;
    }
    norm = norm > 0 ? sqrt(norm) : 1;
    for (size_t i = 0; i < m; i++)
        ov[i] = (float)(ov[i] / norm);
    free(a.v);
    *idx = oi;
    *val = ov;
    return m;
}

/* ---- loading ------------------------------------------------------------ */

static uint32_t im_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static float im_f32(const unsigned char *p)
{
    uint32_t u = im_u32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static int im_fail(char *err, size_t errsz, const char *path, const char *why)
{
    snprintf(err, errsz, "%s: %s", path, why);
    return -1;
}

/* Reads the whole file when it is a regular file of at most IM_MAX_FILE. */
static int im_read(const char *path, unsigned char **out, size_t *len, char *err, size_t errsz)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return im_fail(err, errsz, path, strerror(errno));
    struct stat st;
    const char *why = NULL;
    if (fstat(fd, &st) < 0)
        why = strerror(errno);
    else if (!S_ISREG(st.st_mode))
        why = "not a regular file";
    else if (st.st_size < IM_HEADER + 4 || (uint64_t)st.st_size > IM_MAX_FILE)
        why = "not an intent model (size)";
    if (why) {
        close(fd);
        return im_fail(err, errsz, path, why);
    }
    size_t n = (size_t)st.st_size, got = 0;
    unsigned char *b = wb_xmalloc(n);
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            free(b);
            close(fd);
            return im_fail(err, errsz, path, r < 0 ? strerror(errno) : "file shrank while read");
        }
        got += (size_t)r;
    }
    close(fd);
    *out = b;
    *len = n;
    return 0;
}

struct wb_intent_model *wb_intent_model_load(const char *path, char *err, size_t errsz)
{
    unsigned char *b;
    size_t n;
    if (im_read(path, &b, &n, err, errsz) < 0)
        return NULL;
    struct wb_intent_model *m = wb_xcalloc(1, sizeof *m);
    const char *why = NULL;
    uint32_t bits = im_u32(b + 12);
    if (memcmp(b, IM_MAGIC, 4))
        why = "not an intent model (magic)";
    else if (im_u32(b + 4) != IM_VERSION)
        why = "unsupported intent model version";
    else if (im_u32(b + 8) != WB_INTENT_COUNT)
        why = "model classes are not the four intents";
    else if (bits < 8 || bits > 20)
        why = "feature bits out of range (8..20)";
    else if (n != IM_HEADER + ((size_t)2 * WB_INTENT_COUNT << bits) + 4)
        why = "size does not match the header";
    else if (im_fnv(2166136261u, b, n - 4) != im_u32(b + n - 4))
        why = "checksum mismatch (damaged file)";
    if (!why) {
        m->p.bits = bits;
        m->p.nmin = im_u32(b + 16);
        m->p.nmax = im_u32(b + 20);
        m->p.flags = im_u32(b + 24);
        m->p.max_bytes = im_u32(b + 28);
        m->scale = im_f32(b + 32);
        if (m->p.nmin < 1 || m->p.nmin > m->p.nmax || m->p.nmax > 8 || (m->p.flags & ~3u) ||
            m->p.max_bytes < 16 || m->p.max_bytes > 65536)
            why = "feature parameters out of range";
        else if (!isfinite(m->scale) || m->scale <= 0)
            why = "bad weight scale";
        for (int c = 0; !why && c < WB_INTENT_COUNT; c++) {
            m->bias[c] = im_f32(b + 36 + 4 * c);
            if (!isfinite(m->bias[c]) || fabsf(m->bias[c]) > 1e6f)
                why = "bad bias";
        }
    }
    if (why) {
        free(b);
        free(m);
        im_fail(err, errsz, path, why);
        return NULL;
    }
    size_t nw = (size_t)WB_INTENT_COUNT << bits;
    m->w = wb_xmalloc(nw * sizeof *m->w);
    for (size_t i = 0; i < nw; i++)
        m->w[i] = (int16_t)(uint16_t)(b[IM_HEADER + 2 * i] | b[IM_HEADER + 2 * i + 1] << 8);
    free(b);
    return m;
}

void wb_intent_model_free(struct wb_intent_model *m)
{
    if (!m)
        return;
    free(m->w);
    free(m);
}

const struct wb_intent_feat_params *wb_intent_model_params(const struct wb_intent_model *m)
{
    return &m->p;
}

/* ---- scoring ------------------------------------------------------------ */

enum wb_intent wb_intent_model_score(const struct wb_intent_model *m, const char *folded,
                                     double prob[WB_INTENT_COUNT])
{
    uint32_t *idx;
    float *val;
    size_t n = wb_intent_features(&m->p, folded, &idx, &val);
    double z[WB_INTENT_COUNT];
    for (int c = 0; c < WB_INTENT_COUNT; c++)
        z[c] = 0;
    for (size_t i = 0; i < n; i++) {
        const int16_t *w = m->w + (size_t)idx[i] * WB_INTENT_COUNT;
        for (int c = 0; c < WB_INTENT_COUNT; c++)
            z[c] += w[c] * (double)val[i];
    }
    free(idx);
    free(val);
    int best = 0;
    double max = -INFINITY, sum = 0;
    for (int c = 0; c < WB_INTENT_COUNT; c++) {
        z[c] = z[c] * m->scale + m->bias[c];
        if (z[c] > max)
            max = z[c], best = c;
    }
    for (int c = 0; c < WB_INTENT_COUNT; c++)
        sum += (prob[c] = exp(z[c] - max));
    for (int c = 0; c < WB_INTENT_COUNT; c++)
        prob[c] /= sum;
    return (enum wb_intent)best;
}
