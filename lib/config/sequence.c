/* Sequence files: one JSON object each in sequences_dir, with the template
 * files their steps name. Every problem is reported at its place. */
#include "warmbench/sequence.h"
#include "warmbench/cfkeys.h"
#include "warmbench/readfile.h"
#include "warmbench/util.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* What loading one sequence file needs to hand around. The table context
 * comes first, so a hook turns the wb_cf_ctx it is given back into this. */
struct sload {
    struct wb_cf_ctx x;
    const struct wb_seq_env *env;
    struct wb_sequence *s;
    const struct wb_sequence *before; /* the files loaded so far */
    size_t n_before;
    EVP_MD_CTX *hash;
    size_t step_index;     /* the step being loaded, as its place in "steps" */
    json_t *step_obj;      /* that step's JSON object */
    const char *text_name; /* a body's checked "text", until its html row */
    int holiday_year;      /* first year the holiday files are expanded for */
};

#define AUD(f) offsetof(struct wb_audience, f)
static const struct wb_cf_key AUDIENCE[] = {
    WB_CF_STRS("tags_any", struct wb_audience, tags_any, n_tags_any),
    WB_CF_STRS("skills_any", struct wb_audience, skills_any, n_skills_any),
    WB_CF_STRS("locations_any", struct wb_audience, locations_any, n_locations_any),
    WB_CF_STRS("sources_any", struct wb_audience, sources_any, n_sources_any),
    WB_CF_NUM("score_min", struct wb_audience, score_min, AUD(has_score_min)),
    WB_CF_NUM("score_max", struct wb_audience, score_max, AUD(has_score_max)),
    WB_CF_INT("dormant_days", struct wb_audience, dormant_days, 0, 0, 0),
    WB_CF_BOOL("auto_enroll", struct wb_audience, auto_enroll, false),
    WB_CF_BOOL("exclusive", struct wb_audience, exclusive, true),
    WB_CF_END};
static const char *const DAYS[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

static bool seq_only_chars(const char *s, const char *extra)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        char ch = *s;
        bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9');
        if (!alnum && !strchr(extra, ch))
            return false;
    }
    return true;
}

int wb_day_parse(const char *s)
{
    for (int i = 0; i < 7; i++)
        if (!strcmp(s, DAYS[i]))
            return i;
    return -1;
}

int wb_clock_parse(const char *s)
{
    if (strlen(s) != 5 || s[2] != ':')
        return -1;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9'))
            return -1;
    int h = (s[0] - '0') * 10 + (s[1] - '0');
    int m = (s[3] - '0') * 10 + (s[4] - '0');
    if (m > 59 || h > 24 || (h == 24 && m != 0))
        return -1;
    return h * 60 + m;
}

bool wb_tz_valid(const char *name)
{
    if (!strcmp(name, "UTC"))
        return true;
    /* Relative names only, no escape from the zone folder, and not the
     * posix/ and right/ trees, which duplicate every zone. */
    if (!seq_only_chars(name, "/_+-") || name[0] == '/' || strstr(name, "..") ||
        wb_has_prefix(name, "posix/") || wb_has_prefix(name, "right/"))
        return false;
    const char *dir = getenv("TZDIR");
    char *path = wb_path_join(dir && dir[0] ? dir : "/usr/share/zoneinfo", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return false;
    /* zone.tab, tzdata.zi and friends live there too; real zones start "TZif". */
    char magic[4];
    bool ok = read(fd, magic, 4) == 4 && !memcmp(magic, "TZif", 4);
    close(fd);
    return ok;
}

bool wb_event_valid(const char *ev, const struct wb_sequence *s)
{
    static const char *const plain[] = {"reply", "unsubscribe", "bounce", "click", "open"};
    static const char *const intents[] = {"interested", "not_interested", "unsubscribe",
                                          "neutral"};
    for (size_t i = 0; i < sizeof plain / sizeof *plain; i++)
        if (!strcmp(ev, plain[i]))
            return true;
    if (wb_has_prefix(ev, "reply:")) {
        for (size_t i = 0; i < sizeof intents / sizeof *intents; i++)
            if (!strcmp(ev + 6, intents[i]))
                return true;
        return false;
    }
    return wb_has_prefix(ev, "click:") && wb_sequence_link(s, ev + 6) != NULL;
}

/* The fields a template of this sequence may use. */
static bool seq_field_known(const char *name, void *ud)
{
    static const char *const plain[] = {"email", "first_name", "last_name", "title",
                                        "company", "location", "sender.name",
                                        "sender.email", "unsubscribe_url"};
    const struct wb_sequence *s = ud;
    for (size_t i = 0; i < sizeof plain / sizeof *plain; i++)
        if (!strcmp(name, plain[i]))
            return true;
    if (wb_has_prefix(name, "attrs."))
        return name[6] != '\0';
    return wb_has_prefix(name, "links.") && wb_sequence_link(s, name + 6) != NULL;
}

static struct sload *seq_of(struct wb_cf_ctx *x)
{
    return (struct sload *)x;
}

static void *seq_at(void *base, size_t off)
{
    return (char *)base + off;
}

static void seq_free_str(const struct wb_cf_key *k, void *base)
{
    free(*(char **)seq_at(base, k->off));
}

static void seq_free_strings(const struct wb_cf_key *k, void *base)
{
    wb_strings_free(*(char ***)seq_at(base, k->off), *(size_t *)seq_at(base, k->aux));
}

static void seq_free_tpl(const struct wb_cf_key *k, void *base)
{
    wb_template_free(*(struct wb_template **)seq_at(base, k->off));
}

static void seq_init_audience(const struct wb_cf_key *k, void *base)
{
    wb_cf_defaults(AUDIENCE, seq_at(base, k->off));
}

static void seq_free_audience(const struct wb_cf_key *k, void *base)
{
    wb_cf_free(AUDIENCE, seq_at(base, k->off));
}

/* Its own table on its own struct, plus a check across two of its keys. */
static void seq_load_audience(struct wb_cf_ctx *x, json_t *obj, const char *path,
                              const struct wb_cf_key *k, void *base)
{
    struct wb_audience *a = seq_at(base, k->off);
    json_t *o = wb_jv_object(x->jv, obj, path, k->name, false);
    if (!o)
        return;
    char *p = wb_jsonpos_child(path, k->name);
    wb_cf_load(x, o, p, AUDIENCE, a);
    char *mp = wb_jsonpos_child(p, "score_max");
    if (a->has_score_min && a->has_score_max && a->score_min > a->score_max)
        wb_jv_err_val(x->jv, mp, "\"score_max\" must not be below \"score_min\"");
    free(mp);
    free(p);
}

/* Without a window: every day, all day (start 0, end 24:00), UTC. */
static void seq_init_days(const struct wb_cf_key *k, void *base)
{
    *(uint8_t *)seq_at(base, k->off) = 0x7f;
}

static void seq_init_start(const struct wb_cf_key *k, void *base)
{
    *(int *)seq_at(base, k->off) = 0;
}

static void seq_init_end(const struct wb_cf_key *k, void *base)
{
    *(int *)seq_at(base, k->off) = 24 * 60;
}

static void seq_init_utc(const struct wb_cf_key *k, void *base)
{
    *(char **)seq_at(base, k->off) = wb_xstrdup("UTC");
}

static void seq_day_item(struct wb_jv *jv, const char *ap, size_t i, json_t *d, uint8_t *days)
{
    int n = json_is_string(d) ? wb_day_parse(json_string_value(d)) : -1;
    if (n >= 0) {
        *days |= (uint8_t)(1u << n);
        return;
    }
    char *p = wb_jsonpos_index(ap, i);
    if (json_is_string(d))
        wb_jv_err_val(jv, p, "unknown day \"%s\" (use mon, tue, wed, thu, fri, sat, sun)",
                      json_string_value(d));
    else
        wb_jv_err_val(jv, p, "\"days\" items must be strings");
    free(p);
}

static void seq_load_days(struct wb_cf_ctx *x, json_t *obj, const char *path,
                          const struct wb_cf_key *k, void *base)
{
    uint8_t *days = seq_at(base, k->off);
    json_t *a = wb_jv_array(x->jv, obj, path, k->name, false);
    if (!a)
        return;
    char *ap = wb_jsonpos_child(path, k->name);
    if (json_array_size(a) == 0)
        wb_jv_err_val(x->jv, ap, "\"days\" must name at least one day");
    *days = 0;
    size_t i;
    json_t *d;
    json_array_foreach(a, i, d)
        seq_day_item(x->jv, ap, i, d, days);
    free(ap);
}

/* One "HH:MM" key; false when present but malformed. */
static bool seq_clock(struct wb_cf_ctx *x, json_t *obj, const char *path, const char *key,
                      int *out)
{
    const char *s;
    if (!wb_jv_string(x->jv, obj, path, key, false, &s))
        return !json_object_get(obj, key);
    int m = wb_clock_parse(s);
    if (m >= 0) {
        *out = m;
        return true;
    }
    char *p = wb_jsonpos_child(path, key);
    wb_jv_err_val(x->jv, p, "bad time \"%s\" in \"%s\" (use HH:MM, 00:00 to 24:00)", s, key);
    free(p);
    return false;
}

static void seq_load_start(struct wb_cf_ctx *x, json_t *obj, const char *path,
                           const struct wb_cf_key *k, void *base)
{
    seq_clock(x, obj, path, k->name, seq_at(base, k->off));
}

/* True when "start" is absent or a good clock, as its row saw it. */
static bool seq_start_ok(json_t *obj)
{
    json_t *v = json_object_get(obj, "start");
    return !v || (json_is_string(v) && wb_clock_parse(json_string_value(v)) >= 0);
}

/* .aux is start's storage: the window must not be empty or reversed,
 * judged only when both ends are well formed. */
static void seq_load_end(struct wb_cf_ctx *x, json_t *obj, const char *path,
                         const struct wb_cf_key *k, void *base)
{
    int *end = seq_at(base, k->off), *start = seq_at(base, k->aux);
    if (!seq_clock(x, obj, path, k->name, end) || !seq_start_ok(obj) || *start < *end)
        return;
    char *p = wb_jsonpos_child(path, json_object_get(obj, k->name) ? k->name : "start");
    wb_jv_err_val(x->jv, p, "window \"end\" (%02d:%02d) must be after \"start\" (%02d:%02d)",
                  *end / 60, *end % 60, *start / 60, *start % 60);
    free(p);
}

/* A checked zone name (malloc'd), or NULL after reporting it. */
static char *seq_zone(struct wb_cf_ctx *x, const char *path, const char *key, const char *s)
{
    if (wb_tz_valid(s))
        return wb_xstrdup(s);
    char *p = wb_jsonpos_child(path, key);
    wb_jv_err_val(x->jv, p, "unknown time zone \"%s\"", s);
    free(p);
    return NULL;
}

/* Present, the key replaces the UTC default: "candidate" (the candidate's
 * own zone) and broken values leave NULL. */
static void seq_load_timezone(struct wb_cf_ctx *x, json_t *obj, const char *path,
                              const struct wb_cf_key *k, void *base)
{
    char **tz = seq_at(base, k->off);
    if (!json_object_get(obj, k->name))
        return;
    free(*tz);
    *tz = NULL;
    const char *s;
    if (wb_jv_string(x->jv, obj, path, k->name, false, &s) && strcmp(s, "candidate"))
        *tz = seq_zone(x, path, k->name, s);
}

static void seq_load_fallback_tz(struct wb_cf_ctx *x, json_t *obj, const char *path,
                                 const struct wb_cf_key *k, void *base)
{
    const char *s;
    if (wb_jv_string(x->jv, obj, path, k->name, false, &s))
        *(char **)seq_at(base, k->off) = seq_zone(x, path, k->name, s);
}

/* .aux is the count. */
static void seq_load_links(struct wb_cf_ctx *x, json_t *obj, const char *path,
                           const struct wb_cf_key *k, void *base)
{
    json_t *o = wb_jv_object(x->jv, obj, path, k->name, false);
    if (!o)
        return;
    struct wb_link *links = wb_xcalloc(json_object_size(o), sizeof *links);
    size_t *n = seq_at(base, k->aux);
    *(struct wb_link **)seq_at(base, k->off) = links;
    char *lp = wb_jsonpos_child(path, k->name);
    const char *name;
    json_t *v;
    json_object_foreach(o, name, v) {
        char *p = wb_jsonpos_child(lp, name);
        const char *u = json_string_value(v);
        /* The name appears in templates as links.<name> and in click:<name>. */
        if (!seq_only_chars(name, "-_"))
            wb_jv_err_key(x->jv, p, "bad link name \"%s\" (use letters, digits, - and _)", name);
        else if (!u || !wb_url_ok(u, "http"))
            wb_jv_err_val(x->jv, p, "link \"%s\" must be an http(s) URL", name);
        else
            links[(*n)++] = (struct wb_link){wb_xstrdup(name), wb_xstrdup(u)};
        free(p);
    }
    free(lp);
}

static void seq_free_links(const struct wb_cf_key *k, void *base)
{
    struct wb_link *links = *(struct wb_link **)seq_at(base, k->off);
    size_t n = *(size_t *)seq_at(base, k->aux);
    for (size_t i = 0; i < n; i++) {
        free(links[i].name);
        free(links[i].url);
    }
    free(links);
}

/* A template file named by a step; its bytes also go into content_hash. */
static struct wb_template *seq_load_tpl_file(struct sload *S, const char *jpath, const char *name)
{
    struct wb_jv *jv = S->x.jv;
    if (!name[0] || name[0] == '/' || strstr(name, "..")) {
        wb_jv_err_val(jv, jpath, "template file \"%s\" must be a name inside %s/", name,
                      S->env->tpl_dir_name);
        return NULL;
    }
    char *path = wb_path_join(S->env->templates_dir, name);
    char *text;
    size_t len;
    int e = wb_read_file(path, &text, &len);
    struct wb_template *t = NULL;
    if (e == ENOENT) {
        wb_jv_err_val(jv, jpath, "template file \"%s\" not found in %s/", name,
                      S->env->tpl_dir_name);
    } else if (e) {
        wb_jv_err_val(jv, jpath, "cannot read template file \"%s\": %s", path, strerror(e));
    } else {
        EVP_DigestUpdate(S->hash, name, strlen(name) + 1);
        EVP_DigestUpdate(S->hash, text, len);
        t = wb_template_parse(text, len, path, 1, 1, seq_field_known, S->s, jv->diags);
        free(text);
    }
    free(path);
    return t;
}

/* A step's or a variant's body: "text" and/or "html" template files. The
 * files load once both names are checked (in the html row, which follows
 * the text row), so a bad html name is reported before the text file's
 * own problems. */
static void seq_load_text(struct wb_cf_ctx *x, json_t *obj, const char *path,
                          const struct wb_cf_key *k, void *base)
{
    (void)base;
    const char *name;
    struct sload *S = seq_of(x);
    S->text_name = NULL;
    if (wb_jv_string(x->jv, obj, path, k->name, false, &name))
        S->text_name = name;
}

static void seq_load_tpl(struct sload *S, const char *path, const char *key, const char *name,
                         struct wb_template **out)
{
    char *p = wb_jsonpos_child(path, key);
    *out = seq_load_tpl_file(S, p, name);
    free(p);
}

/* True when the step's JSON carries at least one variant. */
static bool seq_has_variants(json_t *step)
{
    return json_array_size(json_object_get(step, "variants")) > 0;
}

/* Whether obj (a step or one of its variants) must itself carry one of
 * keys a and b: a step with variants need not (each variant is a complete
 * set, the step's own fields are optional defaults), a variant need not
 * when its step has one to fall back to, a plain step must. */
static bool seq_part_needed(const struct sload *S, json_t *obj, const char *a, const char *b)
{
    json_t *step = S->step_obj;
    if (json_object_get(step, "task"))
        return false; /* a manual step: its "task" row says what it may not carry */
    if (obj == step)
        return !seq_has_variants(step);
    return !json_object_get(step, a) && !(b && json_object_get(step, b));
}

/* .aux is the text row's storage. */
static void seq_load_html(struct wb_cf_ctx *x, json_t *obj, const char *path,
                          const struct wb_cf_key *k, void *base)
{
    struct sload *S = seq_of(x);
    const char *html;
    bool has_html = wb_jv_string(x->jv, obj, path, k->name, false, &html);
    if (seq_part_needed(S, obj, "text", "html") && !json_object_get(obj, "text") &&
        !json_object_get(obj, k->name))
        wb_jv_err_val(x->jv, path, "needs \"text\" or \"html\" (a template file name)");
    if (S->text_name)
        seq_load_tpl(S, path, "text", S->text_name, seq_at(base, k->aux));
    S->text_name = NULL;
    if (has_html)
        seq_load_tpl(S, path, k->name, html, seq_at(base, k->off));
}

/* An inline subject: positions point into the sequence file, one column
 * past the opening quote (exact when no escape precedes the tag). */
static void seq_load_subject(struct wb_cf_ctx *x, json_t *obj, const char *path,
                             const struct wb_cf_key *k, void *base)
{
    const char *s;
    if (!wb_jv_string(x->jv, obj, path, k->name, seq_part_needed(seq_of(x), obj, k->name, NULL),
                      &s))
        return;
    char *p = wb_jsonpos_child(path, k->name);
    if (!s[0]) {
        wb_jv_err_val(x->jv, p, "\"subject\" must not be empty");
    } else if (strpbrk(s, "\r\n")) {
        wb_jv_err_val(x->jv, p, "\"subject\" must not contain CR or LF");
    } else {
        int line, col;
        wb_jv_where(x->jv, p, false, &line, &col);
        *(struct wb_template **)seq_at(base, k->off) =
            wb_template_parse(s, strlen(s), x->jv->file, line, col + 1, seq_field_known,
                              seq_of(x)->s, x->jv->diags);
    }
    free(p);
}

static bool seq_sender_known(const struct wb_seq_env *env, const char *id)
{
    for (size_t i = 0; i < env->n_senders; i++)
        if (!strcmp(env->senders[i], id))
            return true;
    return false;
}

/* One of warmbench.json's senders (unless that list was itself broken),
 * or "owner"; .aux is the bool that says it is "owner". */
static void seq_load_sender(struct wb_cf_ctx *x, json_t *obj, const char *path,
                            const struct wb_cf_key *k, void *base)
{
    const char *snd;
    if (!wb_jv_string(x->jv, obj, path, k->name, k->flags & WB_CF_REQUIRED, &snd))
        return;
    *(char **)seq_at(base, k->off) = wb_xstrdup(snd);
    if (!strcmp(snd, "owner")) {
        *(bool *)seq_at(base, k->aux) = true;
        return;
    }
    const struct wb_seq_env *env = seq_of(x)->env;
    if (!env->check_senders || seq_sender_known(env, snd))
        return;
    char *p = wb_jsonpos_child(path, k->name);
    wb_jv_err_val(x->jv, p, "unknown sender \"%s\"", snd);
    free(p);
}

/* "fallback_sender", a named sender; false when written but unusable. */
static bool seq_fallback(struct wb_cf_ctx *x, json_t *obj, const char *path,
                         const struct wb_cf_key *k, void *base)
{
    const char *snd;
    if (!wb_jv_string(x->jv, obj, path, k->name, false, &snd))
        return !json_object_get(obj, k->name);
    const struct wb_seq_env *env = seq_of(x)->env;
    char *p = wb_jsonpos_child(path, k->name);
    bool ok = false;
    if (!strcmp(snd, "owner"))
        wb_jv_err_val(x->jv, p, "\"fallback_sender\" must name a sender, not \"owner\"");
    else if (env->check_senders && !seq_sender_known(env, snd))
        wb_jv_err_val(x->jv, p, "unknown sender \"%s\" in \"fallback_sender\"", snd);
    else
        ok = true;
    if (ok)
        *(char **)seq_at(base, k->off) = wb_xstrdup(snd);
    free(p);
    return ok;
}

/* Owner mail needs someone for the candidates who have no owner. */
static void seq_need_fallback(struct wb_cf_ctx *x, const char *path)
{
    char *p = wb_jsonpos_child(path, "sender");
    wb_jv_err_val(x->jv, p, "\"sender\": \"owner\" needs \"fallback_sender\" (the sender "
                            "for candidates without an owner)");
    free(p);
}

/* The sequence's "fallback_sender" (after its "sender"); .aux is
 * sender_is_owner. */
static void seq_load_seq_fallback(struct wb_cf_ctx *x, json_t *obj, const char *path,
                                  const struct wb_cf_key *k, void *base)
{
    if (seq_fallback(x, obj, path, k, base) && *(bool *)seq_at(base, k->aux) &&
        !*(char **)seq_at(base, k->off))
        seq_need_fallback(x, path);
}

/* A step's: an owner step falls back on the step's, else the sequence's
 * (a sequence "fallback_sender" written but broken is reported there). */
static void seq_load_step_fallback(struct wb_cf_ctx *x, json_t *obj, const char *path,
                                   const struct wb_cf_key *k, void *base)
{
    const struct wb_sequence *s = seq_of(x)->s;
    if (seq_fallback(x, obj, path, k, base) && *(bool *)seq_at(base, k->aux) &&
        !*(char **)seq_at(base, k->off) && !json_object_get(s->definition, "fallback_sender"))
        seq_need_fallback(x, path);
}

#define SEQ_TPL(n, st, f, fl, a, ld) WB_CF_HOOKF(n, st, f, fl, a, ld, seq_free_tpl, NULL)
static const struct wb_cf_key VARIANT[] = {
    SEQ_TPL("subject", struct wb_variant, subject, 0, WB_CF_NONE, seq_load_subject),
    SEQ_TPL("text", struct wb_variant, text, 0, WB_CF_NONE, seq_load_text),
    SEQ_TPL("html", struct wb_variant, html, 0, offsetof(struct wb_variant, text), seq_load_html),
    WB_CF_END};

static void seq_init_after(const struct wb_cf_key *k, void *base)
{
    (void)k;
    ((struct wb_step *)base)->after_bd = -1;
}

/* "3d" and the like, or "3bd" (business days); malformed leaves -1. */
static void seq_load_after(struct wb_cf_ctx *x, json_t *obj, const char *path,
                           const struct wb_cf_key *k, void *base)
{
    const char *s;
    if (!wb_jv_string(x->jv, obj, path, k->name, k->flags & WB_CF_REQUIRED, &s))
        return;
    long *after = seq_at(base, k->off);
    struct wb_step *st = base;
    st->after_bd = wb_bdays_parse(s);
    *after = st->after_bd >= 0 ? 0 : wb_duration_parse(s);
    if (*after >= 0)
        return;
    char *p = wb_jsonpos_child(path, k->name);
    wb_jv_err_val(x->jv, p, "bad duration \"%s\" (use 30m, 12h, 3d or 2w)", s);
    free(p);
}

/* Step 1 starts the thread, so it cannot reply in one. */
static void seq_load_thread(struct wb_cf_ctx *x, json_t *obj, const char *path,
                            const struct wb_cf_key *k, void *base)
{
    bool *thread = seq_at(base, k->off);
    if (!wb_jv_bool(x->jv, obj, path, k->name, false, thread) || !*thread ||
        seq_of(x)->step_index != 0)
        return;
    char *p = wb_jsonpos_child(path, k->name);
    wb_jv_err_val(x->jv, p, "\"thread\" is not allowed on step 1 (there is no thread yet)");
    free(p);
}

/* The fields a task's text may use: a mail's, but the unsubscribe link,
 * which names a message (a task has none). Links stay plain URLs. */
static bool seq_task_field_known(const char *name, void *ud)
{
    return strcmp(name, "unsubscribe_url") && seq_field_known(name, ud);
}

/* "task": a manual step (a template string for the sender); it carries no
 * mail part, and it is not step 1, whose mail opens the thread and carries
 * the privacy notice (render.c). */
static void seq_load_task(struct wb_cf_ctx *x, json_t *obj, const char *path,
                          const struct wb_cf_key *k, void *base)
{
    static const char *const mail[] = {"subject", "text", "html", "variants", "thread"};
    const char *s;
    if (!wb_jv_string(x->jv, obj, path, k->name, false, &s))
        return;
    char *p = wb_jsonpos_child(path, k->name);
    size_t i = 0;
    while (i < sizeof mail / sizeof *mail && !json_object_get(obj, mail[i]))
        i++;
    if (i < sizeof mail / sizeof *mail) {
        wb_jv_err_val(x->jv, p, "a step has either mail parts or a \"task\", not both "
                                "(remove \"%s\" or \"task\")", mail[i]);
    } else if (seq_of(x)->step_index == 0) {
        wb_jv_err_val(x->jv, p, "step 1 cannot be a \"task\" (the first step is a mail)");
    } else if (!s[0]) {
        wb_jv_err_val(x->jv, p, "\"task\" must not be empty");
    } else {
        int line, col;
        wb_jv_where(x->jv, p, false, &line, &col);
        *(struct wb_template **)seq_at(base, k->off) =
            wb_template_parse(s, strlen(s), x->jv->file, line, col + 1, seq_task_field_known,
                              seq_of(x)->s, x->jv->diags);
    }
    free(p);
}

/* .aux is the count. */
static void seq_load_variants(struct wb_cf_ctx *x, json_t *obj, const char *path,
                              const struct wb_cf_key *k, void *base)
{
    json_t *a = wb_jv_array(x->jv, obj, path, k->name, false);
    if (!a)
        return;
    struct wb_variant *v = wb_xcalloc(json_array_size(a), sizeof *v);
    size_t *n = seq_at(base, k->aux);
    *(struct wb_variant **)seq_at(base, k->off) = v;
    char *ap = wb_jsonpos_child(path, k->name);
    size_t i;
    json_t *item;
    json_array_foreach(a, i, item) {
        char *p = wb_jsonpos_index(ap, i);
        if (json_is_object(item)) {
            wb_cf_defaults(VARIANT, &v[*n]);
            wb_cf_load(x, item, p, VARIANT, &v[(*n)++]);
        } else {
            wb_jv_err_val(x->jv, p, "\"variants\" items must be objects");
        }
        free(p);
    }
    free(ap);
}

static void seq_free_variants(const struct wb_cf_key *k, void *base)
{
    struct wb_variant *v = *(struct wb_variant **)seq_at(base, k->off);
    size_t n = *(size_t *)seq_at(base, k->aux);
    for (size_t i = 0; i < n; i++)
        wb_cf_free(VARIANT, &v[i]);
    free(v);
}

static const struct wb_cf_key STEP[] = {
    WB_CF_HOOKF("after", struct wb_step, after_s, WB_CF_REQUIRED, WB_CF_NONE, seq_load_after,
                NULL, seq_init_after),
    SEQ_TPL("subject", struct wb_step, subject, 0, WB_CF_NONE, seq_load_subject),
    SEQ_TPL("text", struct wb_step, text, 0, WB_CF_NONE, seq_load_text),
    SEQ_TPL("html", struct wb_step, html, 0, offsetof(struct wb_step, text), seq_load_html),
    WB_CF_HOOKF("thread", struct wb_step, thread, 0, WB_CF_NONE, seq_load_thread, NULL, NULL),
    WB_CF_HOOKF("variants", struct wb_step, variants, 0, offsetof(struct wb_step, n_variants),
                seq_load_variants, seq_free_variants, NULL),
    WB_CF_HOOKF("sender", struct wb_step, sender, 0, offsetof(struct wb_step, sender_is_owner),
                seq_load_sender, seq_free_str, NULL),
    WB_CF_HOOKF("fallback_sender", struct wb_step, fallback_sender, 0,
                offsetof(struct wb_step, sender_is_owner), seq_load_step_fallback, seq_free_str,
                NULL),
    SEQ_TPL("task", struct wb_step, task, 0, WB_CF_NONE, seq_load_task),
    WB_CF_END};

/* .aux is the count; at least one step. */
static void seq_load_steps(struct wb_cf_ctx *x, json_t *obj, const char *path,
                           const struct wb_cf_key *k, void *base)
{
    json_t *a = wb_jv_array(x->jv, obj, path, k->name, k->flags & WB_CF_REQUIRED);
    if (!a)
        return;
    char *ap = wb_jsonpos_child(path, k->name);
    if (json_array_size(a) == 0)
        wb_jv_err_val(x->jv, ap, "\"steps\" must hold at least one step");
    struct wb_step *st = wb_xcalloc(json_array_size(a), sizeof *st);
    size_t *n = seq_at(base, k->aux);
    *(struct wb_step **)seq_at(base, k->off) = st;
    size_t i;
    json_t *item;
    json_array_foreach(a, i, item) {
        char *p = wb_jsonpos_index(ap, i);
        if (json_is_object(item)) {
            seq_of(x)->step_index = i;
            seq_of(x)->step_obj = item;
            wb_cf_defaults(STEP, &st[*n]);
            wb_cf_load(x, item, p, STEP, &st[(*n)++]);
        } else {
            wb_jv_err_val(x->jv, p, "step %zu must be an object", i + 1);
        }
        free(p);
    }
    free(ap);
}

static void seq_free_steps(const struct wb_cf_key *k, void *base)
{
    struct wb_step *st = *(struct wb_step **)seq_at(base, k->off);
    size_t n = *(size_t *)seq_at(base, k->aux);
    for (size_t i = 0; i < n; i++)
        wb_cf_free(STEP, &st[i]);
    free(st);
}

/* stop_on / handoff_on: each event checked against the links. */
static void seq_load_events(struct wb_cf_ctx *x, json_t *obj, const char *path,
                            const struct wb_cf_key *k, void *base)
{
    char ***ev = seq_at(base, k->off);
    size_t *n = seq_at(base, k->aux);
    if (!wb_jv_strings(x->jv, obj, path, k->name, ev, n))
        return;
    char *ap = wb_jsonpos_child(path, k->name);
    for (size_t i = 0; i < *n; i++) {
        if (wb_event_valid((*ev)[i], seq_of(x)->s))
            continue;
        char *p = wb_jsonpos_index(ap, i);
        wb_jv_err_val(x->jv, p, "unknown event \"%s\" in %s", (*ev)[i], k->name);
        free(p);
    }
    free(ap);
}

/* Unique across the files loaded before this one. */
static void seq_load_id(struct wb_cf_ctx *x, json_t *obj, const char *path,
                        const struct wb_cf_key *k, void *base)
{
    const char *id;
    if (!wb_jv_string(x->jv, obj, path, k->name, k->flags & WB_CF_REQUIRED, &id))
        return;
    char *p = wb_jsonpos_child(path, k->name);
    const struct sload *S = seq_of(x);
    if (!seq_only_chars(id, "._-")) {
        wb_jv_err_val(x->jv, p, "bad sequence id \"%s\" (use letters, digits, ., - and _)", id);
    } else {
        *(char **)seq_at(base, k->off) = wb_xstrdup(id);
        for (size_t i = 0; i < S->n_before; i++) {
            const struct wb_sequence *o = &S->before[i];
            if (o->id && !strcmp(o->id, id)) {
                wb_jv_err_val(x->jv, p, "duplicate sequence id \"%s\" (also in %s)", id, o->file);
                break;
            }
        }
    }
    free(p);
}

/* A holiday file named in the window: relative names are inside the
 * sequences folder. Its bytes and the years expanded go into
 * content_hash, so a changed file (or a new year) is stored again. */
static void seq_load_ics(struct sload *S, const char *jpath, const char *name,
                         struct wb_dayset *out)
{
    struct wb_jv *jv = S->x.jv;
    if (!name[0]) {
        wb_jv_err_val(jv, jpath, "holiday file name must not be empty");
        return;
    }
    char *path = name[0] == '/' ? wb_xstrdup(name) : wb_path_join(S->env->sequences_dir, name);
    char *text;
    size_t len;
    int e = wb_read_file(path, &text, &len);
    if (e == ENOENT) {
        wb_jv_err_val(jv, jpath, "holiday file \"%s\" not found (%s)", name, path);
    } else if (e) {
        wb_jv_err_val(jv, jpath, "cannot read holiday file \"%s\": %s", path, strerror(e));
    } else {
        char years[32];
        snprintf(years, sizeof years, "%d+%d", S->holiday_year, WB_HOLIDAY_YEARS);
        EVP_DigestUpdate(S->hash, years, strlen(years) + 1);
        EVP_DigestUpdate(S->hash, name, strlen(name) + 1);
        EVP_DigestUpdate(S->hash, text, len);
        wb_ical_closed_days(text, len, path, S->holiday_year,
                            S->holiday_year + WB_HOLIDAY_YEARS - 1, out, jv->diags);
        free(text);
    }
    free(path);
}

/* An array of holiday file names (or one name) at obj[key]. */
static void seq_load_ics_list(struct sload *S, json_t *obj, const char *path, const char *key,
                              struct wb_dayset *out)
{
    json_t *v = json_object_get(obj, key);
    char *p = wb_jsonpos_child(path, key);
    if (json_is_string(v)) {
        seq_load_ics(S, p, json_string_value(v), out);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item) {
            char *ip = wb_jsonpos_index(p, i);
            if (json_is_string(item))
                seq_load_ics(S, ip, json_string_value(item), out);
            else
                wb_jv_err_val(S->x.jv, ip, "holiday files are named by strings");
            free(ip);
        }
    } else if (v) {
        wb_jv_err_val(S->x.jv, p, "\"%s\" takes a list of iCalendar file names", key);
    }
    free(p);
}

static void seq_load_holidays(struct wb_cf_ctx *x, json_t *obj, const char *path,
                              const struct wb_cf_key *k, void *base)
{
    seq_load_ics_list(seq_of(x), obj, path, k->name, seq_at(base, k->off));
}

static void seq_free_dayset(const struct wb_cf_key *k, void *base)
{
    wb_dayset_free(seq_at(base, k->off));
}

/* {"DE": ["de.ics"], ...}: ISO 3166-1 alpha-2 codes, any case; .aux is
 * the count. */
static void seq_load_by_country(struct wb_cf_ctx *x, json_t *obj, const char *path,
                                const struct wb_cf_key *k, void *base)
{
    json_t *o = wb_jv_object(x->jv, obj, path, k->name, false);
    if (!o)
        return;
    struct wb_country_days *v = wb_xcalloc(json_object_size(o), sizeof *v);
    size_t *n = seq_at(base, k->aux);
    *(struct wb_country_days **)seq_at(base, k->off) = v;
    char *op = wb_jsonpos_child(path, k->name);
    const char *code;
    json_t *files;
    json_object_foreach(o, code, files) {
        if (!wb_country_valid(code)) {
            char *p = wb_jsonpos_child(op, code);
            wb_jv_err_key(x->jv, p, "unknown country code \"%s\" (use ISO 3166-1 alpha-2, "
                                    "e.g. DE, FR, GB)", code);
            free(p);
            continue;
        }
        struct wb_country_days *c = &v[(*n)++];
        for (int i = 0; i < 2; i++)
            c->code[i] = (char)(code[i] >= 'a' ? code[i] - 'a' + 'A' : code[i]);
        for (size_t j = 0; j + 1 < *n; j++)
            if (!strcmp(v[j].code, c->code)) {
                char *p = wb_jsonpos_child(op, code);
                wb_jv_err_key(x->jv, p, "country \"%s\" given twice", c->code);
                free(p);
            }
        seq_load_ics_list(seq_of(x), o, op, code, &c->days);
    }
    free(op);
}

static void seq_free_by_country(const struct wb_cf_key *k, void *base)
{
    struct wb_country_days *v = *(struct wb_country_days **)seq_at(base, k->off);
    size_t n = *(size_t *)seq_at(base, k->aux);
    for (size_t i = 0; i < n; i++)
        wb_dayset_free(&v[i].days);
    free(v);
}

/* The window's rows fill struct wb_sequence's window member. */
#define SEQ_WIN(n, f, a, ld, rel, in)                                                 \
    WB_CF_HOOKF(n, struct wb_sequence, window.f, 0, a, ld, rel, in)
static const struct wb_cf_key WINDOW[] = {
    SEQ_WIN("days", days, WB_CF_NONE, seq_load_days, NULL, seq_init_days),
    SEQ_WIN("start", start_min, WB_CF_NONE, seq_load_start, NULL, seq_init_start),
    SEQ_WIN("end", end_min, offsetof(struct wb_sequence, window.start_min), seq_load_end, NULL,
            seq_init_end),
    SEQ_WIN("timezone", timezone, WB_CF_NONE, seq_load_timezone, seq_free_str, seq_init_utc),
    SEQ_WIN("fallback_timezone", fallback_timezone, WB_CF_NONE, seq_load_fallback_tz,
            seq_free_str, NULL),
    SEQ_WIN("holidays", closed, WB_CF_NONE, seq_load_holidays, seq_free_dayset, NULL),
    SEQ_WIN("holidays_by_country", by_country, offsetof(struct wb_sequence, window.n_by_country),
            seq_load_by_country, seq_free_by_country, NULL),
    WB_CF_END};

/* The window's table is loaded with this file's own context (a section
 * row would hand its rows a copy, and the holiday rows need the sload
 * around it); its offsets are from struct wb_sequence. */
static void seq_load_window(struct wb_cf_ctx *x, json_t *obj, const char *path,
                            const struct wb_cf_key *k, void *base)
{
    (void)k;
    json_t *o = wb_jv_object(x->jv, obj, path, "window", false);
    if (!o)
        return;
    char *p = wb_jsonpos_child(path, "window");
    wb_cf_load(x, o, p, WINDOW, base);
    free(p);
}

static void seq_init_window(const struct wb_cf_key *k, void *base)
{
    (void)k;
    wb_cf_defaults(WINDOW, base);
}

static void seq_free_window(const struct wb_cf_key *k, void *base)
{
    (void)k;
    wb_cf_free(WINDOW, base);
}

/* Row order is load order: links before steps and events, which name them. */
#define SEQ_ROW(n, f, fl, a, ld, rel, in) WB_CF_HOOKF(n, struct wb_sequence, f, fl, a, ld, rel, in)
#define SEQ_N(f) offsetof(struct wb_sequence, f)
static const struct wb_cf_key SEQUENCE[] = {
    SEQ_ROW("id", id, WB_CF_REQUIRED, WB_CF_NONE, seq_load_id, seq_free_str, NULL),
    SEQ_ROW("sender", sender, WB_CF_REQUIRED, SEQ_N(sender_is_owner), seq_load_sender,
            seq_free_str, NULL),
    SEQ_ROW("fallback_sender", fallback_sender, 0, SEQ_N(sender_is_owner), seq_load_seq_fallback,
            seq_free_str, NULL),
    SEQ_ROW("audience", audience, 0, WB_CF_NONE, seq_load_audience, seq_free_audience,
            seq_init_audience),
    SEQ_ROW("window", window, 0, WB_CF_NONE, seq_load_window, seq_free_window, seq_init_window),
    SEQ_ROW("links", links, 0, SEQ_N(n_links), seq_load_links, seq_free_links, NULL),
    SEQ_ROW("steps", steps, WB_CF_REQUIRED, SEQ_N(n_steps), seq_load_steps, seq_free_steps, NULL),
    SEQ_ROW("stop_on", stop_on, 0, SEQ_N(n_stop_on), seq_load_events, seq_free_strings, NULL),
    SEQ_ROW("handoff_on", handoff_on, 0, SEQ_N(n_handoff_on), seq_load_events, seq_free_strings,
            NULL),
    WB_CF_BOOL("paused", struct wb_sequence, paused, false),
    WB_CF_INTR("ooo_max_days", struct wb_sequence, ooo_max_days, 0, 0, 365, 30),
    WB_CF_END};

static void seq_hex(const unsigned char *md, unsigned n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Business days are counted on window.days: a sequence whose window names
 * none has nothing to count on. */
static void seq_check_bdays(struct sload *S)
{
    json_t *win = json_object_get(S->s->definition, "window");
    if (json_array_size(json_object_get(win, "days")) > 0)
        return;
    size_t i;
    json_t *st;
    json_array_foreach(json_object_get(S->s->definition, "steps"), i, st) {
        const char *a = json_string_value(json_object_get(st, "after"));
        if (!a || wb_bdays_parse(a) < 0)
            continue;
        char *p = wb_xasprintf("/steps/%zu/after", i);
        wb_jv_err_val(S->x.jv, p,
                      "\"%s\" counts business days on the window's \"days\", and this "
                      "sequence's window names none", a);
        free(p);
    }
}

static json_t *seq_days_json(const struct wb_dayset *d)
{
    json_t *a = json_array();
    for (size_t i = 0; i < d->n; i++) {
        int y, m, dd;
        wb_day_to_civil(d->v[i], &y, &m, &dd);
        char buf[16];
        snprintf(buf, sizeof buf, "%04d-%02d-%02d", y, m, dd);
        json_array_append_new(a, json_string(buf));
    }
    return a;
}

/* The expanded holidays go into the stored definition, where the SQL that
 * times the steps (sql/functions/020_window.sql) finds them. */
static void seq_store_closed(struct wb_sequence *s)
{
    const struct wb_window *w = &s->window;
    json_t *win = json_object_get(s->definition, "window");
    if (!json_is_object(win) || (!json_object_get(win, "holidays") &&
                                 !json_object_get(win, "holidays_by_country")))
        return;
    json_object_set_new(win, "closed_days", seq_days_json(&w->closed));
    json_t *by = json_object();
    for (size_t i = 0; i < w->n_by_country; i++)
        json_object_set_new(by, w->by_country[i].code, seq_days_json(&w->by_country[i].days));
    json_object_set_new(win, "closed_days_by_country", by);
}

static int seq_this_year(void)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    return tm.tm_year + 1900;
}

static void seq_load_file(const struct wb_seq_env *env, const char *path, struct wb_sequence **all,
                      size_t *n_all, struct wb_diags *diags)
{
    char *text;
    size_t len;
    int e = wb_read_file(path, &text, &len);
    if (e) {
        wb_diags_add(diags, path, 0, 0, "cannot read sequence file: %s", strerror(e));
        return;
    }
    struct wb_jv jv;
    json_t *root = wb_jv_open(&jv, path, text, len, diags);
    if (root) {
        *all = wb_xrealloc(*all, (*n_all + 1) * sizeof **all);
        struct wb_sequence *s = &(*all)[(*n_all)++];
        memset(s, 0, sizeof *s);
        s->file = wb_xstrdup(path);
        s->definition = root;
        struct sload S = {.x = {&jv, path, env->sequences_dir, false}, .env = env, .s = s,
                          .before = *all, .n_before = *n_all - 1, .hash = EVP_MD_CTX_new(),
                          .holiday_year = seq_this_year()};
        EVP_DigestInit_ex(S.hash, EVP_sha256(), NULL);
        EVP_DigestUpdate(S.hash, text, len);
        wb_cf_defaults(SEQUENCE, s);
        wb_cf_load(&S.x, root, "", SEQUENCE, s);
        seq_check_bdays(&S);
        seq_store_closed(s);
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned n = 0;
        EVP_DigestFinal_ex(S.hash, md, &n);
        EVP_MD_CTX_free(S.hash);
        seq_hex(md, n, s->content_hash);
    }
    wb_jv_close(&jv);
    free(text);
}

static int seq_by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* *.json names in dir, sorted bytewise so the order never depends on locale. */
static char **seq_list_json(DIR *d, size_t *n)
{
    char **v = NULL;
    *n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (de->d_name[0] == '.' || l < 6 || strcmp(de->d_name + l - 5, ".json"))
            continue;
        v = wb_xrealloc(v, (*n + 1) * sizeof *v);
        v[(*n)++] = wb_xstrdup(de->d_name);
    }
    if (*n)
        qsort(v, *n, sizeof *v, seq_by_name);
    return v;
}

void wb_sequences_load(const struct wb_seq_env *env, struct wb_jv *cfg,
                       struct wb_sequence **out, size_t *n_out, struct wb_diags *diags)
{
    DIR *d = opendir(env->sequences_dir);
    if (!d) {
        wb_jv_err_val(cfg, "/sequences_dir", "cannot open sequences folder \"%s\": %s",
                      env->sequences_dir, strerror(errno));
        return;
    }
    size_t n;
    char **names = seq_list_json(d, &n);
    closedir(d);
    for (size_t i = 0; i < n; i++) {
        char *path = wb_path_join(env->sequences_dir, names[i]);
        seq_load_file(env, path, out, n_out, diags);
        free(path);
        free(names[i]);
    }
    free(names);
}

void wb_sequence_free(struct wb_sequence *s)
{
    wb_cf_free(SEQUENCE, s);
    free(s->file);
    json_decref(s->definition);
}

const char *wb_step_sender(const struct wb_sequence *s, size_t i, const char **fallback)
{
    const struct wb_step *st = i < s->n_steps ? &s->steps[i] : NULL;
    bool own = st && st->sender;
    bool owner = own ? st->sender_is_owner : s->sender_is_owner;
    if (fallback)
        *fallback = st && st->fallback_sender ? st->fallback_sender : s->fallback_sender;
    if (owner)
        return NULL;
    return own ? st->sender : s->sender;
}

const char *wb_sequence_link(const struct wb_sequence *s, const char *name)
{
    for (size_t i = 0; i < s->n_links; i++)
        if (!strcmp(s->links[i].name, name))
            return s->links[i].url;
    return NULL;
}

int wb_bdays_parse(const char *s)
{
    size_t n = s ? strspn(s, "0123456789") : 0;
    if (n == 0 || n > 4 || strcmp(s + n, "bd"))
        return -1;
    int v = atoi(s);
    return v <= 1000 ? v : -1;
}

long wb_duration_parse(const char *s)
{
    if (!s || *s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    long n = strtol(s, &end, 10);
    long unit;
    switch (*end) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    case 'w': unit = 7 * 86400; break;
    default: return -1;
    }
    if (errno || end[1] || n > 100L * 365 * 86400 / unit)
        return -1;
    return n * unit;
}
