/* Config keys described as tables, in the way pgbouncer's CF_ABS rows do:
 * one row holds a key's name, type, storage (an offset into the struct it
 * fills), default and flags. One walker applies the defaults, one loads a
 * JSON object against a table (every problem reported at its place, unknown
 * keys included) and one frees what the rows own, so adding a key is adding
 * a row. */
#ifndef WB_CFKEYS_H
#define WB_CFKEYS_H
#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include "warmbench/jsonval.h"

enum wb_cf_type {
    WB_CFT_END,      /* ends a table */
    WB_CFT_STRING,   /* char *, copied */
    WB_CFT_URL,      /* char *; .str names the scheme: "http" takes http:// and https:// */
    WB_CFT_HTTPS,    /* char *, an https:// URL (http:// only to a loopback host) */
    WB_CFT_LISTEN,   /* char *, "host:port" */
    WB_CFT_DOMAIN,   /* char *, a bare domain name */
    WB_CFT_ADDRESS,  /* char * as written; .aux/.aux2: its name and address, or WB_CF_NONE */
    WB_CFT_DIR,      /* char *, resolved; .str is the default folder */
    WB_CFT_SECRET,   /* char * file name; .aux: contents; .aux2: size_t length or WB_CF_NONE */
    WB_CFT_INT,      /* int, .min...max (.max 0: 1000000000) */
    WB_CFT_BOOL,     /* bool */
    WB_CFT_NUMBER,   /* double; .aux: bool "was given", or WB_CF_NONE */
    WB_CFT_ENUM,     /* int-sized enum: index into .names (or .parse) */
    WB_CFT_STRINGS,  /* char ** (see wb_jv_strings); .aux: size_t count */
    WB_CFT_SECTION,  /* object filled by .sub on base + .off; .aux: bool "present" (on base) */
    WB_CFT_MAP,      /* object of objects → array of .size-byte items filled by .sub;
                      * .aux: size_t count; .aux2: the item's char *id */
    WB_CFT_HOOK,     /* anything else: .load, .release and .init */
};

/* Row flags. */
#define WB_CF_REQUIRED   1u  /* missing is an error */
#define WB_CF_EMPTY_NULL 2u  /* "" means "not set" (SPEC.md's example writes it) */
#define WB_CF_RESOLVE    4u  /* keep the path resolved against the config's folder */
#define WB_CF_TRIM_SLASH 8u  /* drop trailing slashes (URLs that get paths appended) */
#define WB_CF_NONEMPTY   16u /* a map must hold at least one item, a string a byte */
#define WB_CF_OVERLAY    32u /* a section laid over another one: none of its keys is required */

#define WB_CF_NONE ((size_t)-1)

struct wb_cf_ctx;
struct wb_cf_key;
/* A hook sees the object holding its key (the key may be absent) and the
 * base the table fills. */
typedef void (*wb_cf_load_fn)(struct wb_cf_ctx *x, json_t *obj, const char *path,
                              const struct wb_cf_key *k, void *base);
typedef void (*wb_cf_free_fn)(const struct wb_cf_key *k, void *base);

struct wb_cf_key {
    const char *name;
    enum wb_cf_type type;
    size_t off;                    /* storage, from the table's base */
    unsigned flags;
    long dflt;                     /* INT, BOOL, ENUM default */
    long min, max;                 /* INT; SECRET: min is the fewest bytes */
    const char *str;               /* URL scheme, DIR default, ENUM noun, MAP item noun */
    size_t aux, aux2;              /* second and third storage, per type */
    const char *const *names;      /* ENUM values, in enum order */
    int (*parse)(const char *);    /* ENUM: a parser instead of exact names */
    const struct wb_cf_key *sub;   /* SECTION, MAP */
    size_t size;                   /* MAP item size */
    wb_cf_load_fn load;            /* HOOK */
    wb_cf_free_fn release;         /* HOOK, may be NULL */
    wb_cf_free_fn init;            /* HOOK: sets the default, may be NULL */
};

/* One macro per type, so a row is one line. st/f name the storage as
 * offsetof does; a, b are further offsets (offsetof(...) or WB_CF_NONE). */
#define WB_CF_ROW_(n, t, o, fl, ...)                                                  \
    {.name = (n), .type = (t), .off = (o), .flags = (fl), __VA_ARGS__}
#define WB_CF_STR(n, t, st, f, fl, s)                                                 \
    WB_CF_ROW_(n, t, offsetof(st, f), fl, .str = (s), .aux = WB_CF_NONE, .aux2 = WB_CF_NONE)
#define WB_CF_ADDR(n, st, f, fl, a, b, hint)                                          \
    WB_CF_ROW_(n, WB_CFT_ADDRESS, offsetof(st, f), fl, .aux = (a), .aux2 = (b), .str = (hint))
#define WB_CF_SECRET(n, st, f, fl, a, b)                                              \
    WB_CF_ROW_(n, WB_CFT_SECRET, offsetof(st, f), fl, .aux = (a), .aux2 = (b))
/* A key warmbench itself MACs with: at least mn bytes. */
#define WB_CF_KEY(n, st, f, fl, a, b, mn)                                             \
    WB_CF_ROW_(n, WB_CFT_SECRET, offsetof(st, f), fl, .aux = (a), .aux2 = (b), .min = (mn))
#define WB_CF_INT(n, st, f, fl, mn, d)                                                \
    WB_CF_ROW_(n, WB_CFT_INT, offsetof(st, f), fl, .min = (mn), .dflt = (d),          \
               .aux = WB_CF_NONE, .aux2 = WB_CF_NONE)
#define WB_CF_INTR(n, st, f, fl, mn, mx, d)                                           \
    WB_CF_ROW_(n, WB_CFT_INT, offsetof(st, f), fl, .min = (mn), .max = (mx), .dflt = (d), \
               .aux = WB_CF_NONE, .aux2 = WB_CF_NONE)
#define WB_CF_BOOL(n, st, f, d)                                                       \
    WB_CF_ROW_(n, WB_CFT_BOOL, offsetof(st, f), 0, .dflt = (d), .aux = WB_CF_NONE,    \
               .aux2 = WB_CF_NONE)
#define WB_CF_NUM(n, st, f, a)                                                        \
    WB_CF_ROW_(n, WB_CFT_NUMBER, offsetof(st, f), 0, .aux = (a), .aux2 = WB_CF_NONE)
#define WB_CF_ENUM(n, st, f, d, nm, fn, noun)                                         \
    WB_CF_ROW_(n, WB_CFT_ENUM, offsetof(st, f), 0, .dflt = (d), .names = (nm),        \
               .parse = (fn), .str = (noun), .aux = WB_CF_NONE, .aux2 = WB_CF_NONE)
#define WB_CF_STRS(n, st, f, cnt)                                                     \
    WB_CF_ROW_(n, WB_CFT_STRINGS, offsetof(st, f), 0, .aux = offsetof(st, cnt),       \
               .aux2 = WB_CF_NONE)
#define WB_CF_SECT(n, fl, tab, a)                                                     \
    WB_CF_ROW_(n, WB_CFT_SECTION, 0, fl, .sub = (tab), .aux = (a), .aux2 = WB_CF_NONE)
/* A section whose table fills the struct member st.f (the table's offsets
 * are from that member). */
#define WB_CF_SECT_AT(n, st, f, fl, tab, a)                                           \
    WB_CF_ROW_(n, WB_CFT_SECTION, offsetof(st, f), fl, .sub = (tab), .aux = (a),      \
               .aux2 = WB_CF_NONE)
#define WB_CF_MAP(n, st, f, fl, tab, item, cnt, id, noun)                             \
    WB_CF_ROW_(n, WB_CFT_MAP, offsetof(st, f), fl, .sub = (tab), .size = sizeof(item), \
               .aux = offsetof(st, cnt), .aux2 = offsetof(item, id), .str = (noun))
#define WB_CF_HOOK(n, ld, rel)                                                        \
    WB_CF_ROW_(n, WB_CFT_HOOK, 0, 0, .load = (ld), .release = (rel), .aux = WB_CF_NONE, \
               .aux2 = WB_CF_NONE)
/* A hook with its own storage (st, f), a third offset a (or WB_CF_NONE), a
 * default setter in and fl's WB_CF_REQUIRED, for keys parsed in a way no
 * type above covers (sequence files' durations, clocks, template files). */
#define WB_CF_HOOKF(n, st, f, fl, a, ld, rel, in)                                     \
    WB_CF_ROW_(n, WB_CFT_HOOK, offsetof(st, f), fl, .load = (ld), .release = (rel),    \
               .init = (in), .aux = (a), .aux2 = WB_CF_NONE)
#define WB_CF_END {.type = WB_CFT_END}

/* What a load hands around: relative paths resolve against the config's
 * folder, except that a config named without a folder keeps them as
 * written ("sequences/a.json", not "./sequences/a.json"). */
struct wb_cf_ctx {
    struct wb_jv *jv;
    const char *cfg_path;
    const char *cfg_dir;
    bool overlay;      /* inside a WB_CF_OVERLAY section: no key is required */
};

/* Sets every row's default, nested sections and hooks' init included. */
void wb_cf_defaults(const struct wb_cf_key *t, void *base);
/* Loads obj (at JSON Pointer path) into base: unknown keys first, then each
 * row in table order. Problems are added to x->jv's diagnostics. */
void wb_cf_load(struct wb_cf_ctx *x, json_t *obj, const char *path,
                const struct wb_cf_key *t, void *base);
/* Frees what the rows own (secrets are wiped first). */
void wb_cf_free(const struct wb_cf_key *t, void *base);
/* Key by key: every row of t whose key own (the object the overlay was
 * loaded from; NULL = none) does not hold, and that skip (NULL-terminated,
 * may be NULL) does not name, gets a copy of src's value in dst. Rows of
 * string, secret, address, int, bool and enum type only; dst's value for
 * such a row must be unset (NULL strings), as a loaded overlay leaves it. */
void wb_cf_inherit(const struct wb_cf_key *t, void *dst, const void *src, json_t *own,
                   const char *const *skip);

/* p resolved as x says (malloc'd). */
char *wb_cf_resolve(const struct wb_cf_ctx *x, const char *p);

#endif
