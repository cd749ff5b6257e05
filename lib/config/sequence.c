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
#include <unistd.h>

/* What loading one sequence file needs to hand around. */
struct sload {
    const struct wb_seq_env *env;
    struct wb_jv *jv;
    struct wb_sequence *s;
    const struct wb_sequence *before; /* the files loaded so far */
    size_t n_before;
    EVP_MD_CTX *hash;
};

static const char *const SEQ_KEYS[] = {"id", "sender", "audience", "window", "links",
                                       "steps", "stop_on", "handoff_on", NULL};
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
static const char *const WIN_KEYS[] = {"days", "start", "end", "timezone",
                                       "fallback_timezone", NULL};
static const char *const STEP_KEYS[] = {"after", "subject", "text", "html", "thread",
                                        "variants", NULL};
static const char *const VARIANT_KEYS[] = {"subject", "text", "html", NULL};
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

static void seq_load_audience(struct sload *S, json_t *root)
{
    struct wb_audience *a = &S->s->audience;
    wb_cf_defaults(AUDIENCE, a);
    json_t *o = wb_jv_object(S->jv, root, "", "audience", false);
    if (!o)
        return;
    /* No audience key is a path; were one added, it would resolve against
     * the sequence file's folder. */
    struct wb_cf_ctx x = {S->jv, S->jv->file, S->env->sequences_dir};
    wb_cf_load(&x, o, "/audience", AUDIENCE, a);
    if (a->has_score_min && a->has_score_max && a->score_min > a->score_max)
        wb_jv_err_val(S->jv, "/audience/score_max",
                      "\"score_max\" must not be below \"score_min\"");
}

static void seq_load_days(struct sload *S, json_t *o)
{
    struct wb_window *w = &S->s->window;
    json_t *days = wb_jv_array(S->jv, o, "/window", "days", false);
    if (!days)
        return;
    if (json_array_size(days) == 0)
        wb_jv_err_val(S->jv, "/window/days", "\"days\" must name at least one day");
    w->days = 0;
    size_t i;
    json_t *d;
    json_array_foreach(days, i, d) {
        int n = json_is_string(d) ? wb_day_parse(json_string_value(d)) : -1;
        if (n >= 0) {
            w->days |= (uint8_t)(1u << n);
            continue;
        }
        char *p = wb_jsonpos_index("/window/days", i);
        if (json_is_string(d))
            wb_jv_err_val(S->jv, p, "unknown day \"%s\" (use mon, tue, wed, thu, fri, sat, sun)",
                          json_string_value(d));
        else
            wb_jv_err_val(S->jv, p, "\"days\" items must be strings");
        free(p);
    }
}

/* One "HH:MM" key; returns false when present but malformed. */
static bool seq_load_clock(struct sload *S, json_t *o, const char *key, int *out)
{
    const char *s;
    char *p = wb_jsonpos_child("/window", key);
    bool ok = true;
    if (wb_jv_string(S->jv, o, "/window", key, false, &s)) {
        int m = wb_clock_parse(s);
        if (m < 0) {
            wb_jv_err_val(S->jv, p, "bad time \"%s\" in \"%s\" (use HH:MM, 00:00 to 24:00)", s,
                          key);
            ok = false;
        } else {
            *out = m;
        }
    } else if (json_object_get(o, key)) {
        ok = false;
    }
    free(p);
    return ok;
}

static char *seq_load_zone(struct sload *S, json_t *o, const char *key, bool allow_candidate,
                       bool *is_candidate)
{
    const char *s;
    if (!wb_jv_string(S->jv, o, "/window", key, false, &s))
        return NULL;
    if (allow_candidate && !strcmp(s, "candidate")) {
        *is_candidate = true;
        return NULL;
    }
    if (wb_tz_valid(s))
        return wb_xstrdup(s);
    char *p = wb_jsonpos_child("/window", key);
    wb_jv_err_val(S->jv, p, "unknown time zone \"%s\"", s);
    free(p);
    return NULL;
}

static void seq_load_window(struct sload *S, json_t *root)
{
    struct wb_window *w = &S->s->window;
    /* Without a window: every day, all day, UTC. */
    w->days = 0x7f;
    w->start_min = 0;
    w->end_min = 24 * 60;
    json_t *o = wb_jv_object(S->jv, root, "", "window", false);
    bool candidate = false;
    if (o) {
        wb_jv_keys(S->jv, o, "/window", WIN_KEYS);
        seq_load_days(S, o);
        bool ok = seq_load_clock(S, o, "start", &w->start_min);
        ok = seq_load_clock(S, o, "end", &w->end_min) && ok;
        if (ok && w->start_min >= w->end_min)
            wb_jv_err_val(S->jv, json_object_get(o, "end") ? "/window/end" : "/window/start",
                          "window \"end\" (%02d:%02d) must be after \"start\" (%02d:%02d)",
                          w->end_min / 60, w->end_min % 60, w->start_min / 60,
                          w->start_min % 60);
        w->timezone = seq_load_zone(S, o, "timezone", true, &candidate);
        w->fallback_timezone = seq_load_zone(S, o, "fallback_timezone", false, &candidate);
    }
    if (!w->timezone && !candidate && !(o && json_object_get(o, "timezone")))
        w->timezone = wb_xstrdup("UTC");
}

static void seq_load_links(struct sload *S, json_t *root)
{
    json_t *o = wb_jv_object(S->jv, root, "", "links", false);
    if (!o)
        return;
    struct wb_sequence *s = S->s;
    s->links = wb_xcalloc(json_object_size(o), sizeof *s->links);
    const char *name;
    json_t *v;
    json_object_foreach(o, name, v) {
        char *p = wb_jsonpos_child("/links", name);
        const char *u = json_string_value(v);
        /* The name appears in templates as links.<name> and in click:<name>. */
        if (!seq_only_chars(name, "-_"))
            wb_jv_err_key(S->jv, p, "bad link name \"%s\" (use letters, digits, - and _)", name);
        else if (!u || !wb_url_ok(u, "http"))
            wb_jv_err_val(S->jv, p, "link \"%s\" must be an http(s) URL", name);
        else
            s->links[s->n_links++] = (struct wb_link){wb_xstrdup(name), wb_xstrdup(u)};
        free(p);
    }
}

/* A template file named by a step; its bytes also go into content_hash. */
static struct wb_template *seq_load_tpl_file(struct sload *S, const char *jpath, const char *name)
{
    if (!name[0] || name[0] == '/' || strstr(name, "..")) {
        wb_jv_err_val(S->jv, jpath, "template file \"%s\" must be a name inside %s/", name,
                      S->env->tpl_dir_name);
        return NULL;
    }
    char *path = wb_path_join(S->env->templates_dir, name);
    char *text;
    size_t len;
    int e = wb_read_file(path, &text, &len);
    struct wb_template *t = NULL;
    if (e == ENOENT) {
        wb_jv_err_val(S->jv, jpath, "template file \"%s\" not found in %s/", name,
                      S->env->tpl_dir_name);
    } else if (e) {
        wb_jv_err_val(S->jv, jpath, "cannot read template file \"%s\": %s", path, strerror(e));
    } else {
        EVP_DigestUpdate(S->hash, name, strlen(name) + 1);
        EVP_DigestUpdate(S->hash, text, len);
        t = wb_template_parse(text, len, path, 1, 1, seq_field_known, S->s, S->jv->diags);
        free(text);
    }
    free(path);
    return t;
}

/* An inline subject: positions point into the sequence file, one column
 * past the opening quote (exact when no escape precedes the tag). */
static struct wb_template *seq_load_subject(struct sload *S, json_t *o, const char *path)
{
    const char *s;
    if (!wb_jv_string(S->jv, o, path, "subject", true, &s))
        return NULL;
    char *p = wb_jsonpos_child(path, "subject");
    struct wb_template *t = NULL;
    if (!s[0]) {
        wb_jv_err_val(S->jv, p, "\"subject\" must not be empty");
    } else if (strpbrk(s, "\r\n")) {
        wb_jv_err_val(S->jv, p, "\"subject\" must not contain CR or LF");
    } else {
        int line, col;
        wb_jv_where(S->jv, p, false, &line, &col);
        t = wb_template_parse(s, strlen(s), S->jv->file, line, col + 1, seq_field_known, S->s,
                              S->jv->diags);
    }
    free(p);
    return t;
}

/* subject + text and/or html, as in a step or a variant. */
static void seq_load_parts(struct sload *S, json_t *o, const char *path, struct wb_template **subj,
                       struct wb_template **text, struct wb_template **html)
{
    *subj = seq_load_subject(S, o, path);
    const char *t = NULL, *h = NULL;
    bool has_t = wb_jv_string(S->jv, o, path, "text", false, &t);
    bool has_h = wb_jv_string(S->jv, o, path, "html", false, &h);
    if (!json_object_get(o, "text") && !json_object_get(o, "html"))
        wb_jv_err_val(S->jv, path, "needs \"text\" or \"html\" (a template file name)");
    char *p = wb_jsonpos_child(path, "text");
    if (has_t)
        *text = seq_load_tpl_file(S, p, t);
    free(p);
    p = wb_jsonpos_child(path, "html");
    if (has_h)
        *html = seq_load_tpl_file(S, p, h);
    free(p);
}

static void seq_load_variants(struct sload *S, json_t *o, const char *path, struct wb_step *st)
{
    json_t *a = wb_jv_array(S->jv, o, path, "variants", false);
    if (!a)
        return;
    char *apath = wb_jsonpos_child(path, "variants");
    st->variants = wb_xcalloc(json_array_size(a), sizeof *st->variants);
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        char *p = wb_jsonpos_index(apath, i);
        if (json_is_object(v)) {
            struct wb_variant *var = &st->variants[st->n_variants++];
            wb_jv_keys(S->jv, v, p, VARIANT_KEYS);
            seq_load_parts(S, v, p, &var->subject, &var->text, &var->html);
        } else {
            wb_jv_err_val(S->jv, p, "\"variants\" items must be objects");
        }
        free(p);
    }
    free(apath);
}

static void seq_load_step(struct sload *S, json_t *o, const char *path, size_t idx,
                      struct wb_step *st)
{
    wb_jv_keys(S->jv, o, path, STEP_KEYS);
    const char *after;
    char *p = wb_jsonpos_child(path, "after");
    if (wb_jv_string(S->jv, o, path, "after", true, &after)) {
        st->after_s = wb_duration_parse(after);
        if (st->after_s < 0)
            wb_jv_err_val(S->jv, p, "bad duration \"%s\" (use 30m, 12h, 3d or 2w)", after);
    }
    free(p);
    seq_load_parts(S, o, path, &st->subject, &st->text, &st->html);
    p = wb_jsonpos_child(path, "thread");
    if (wb_jv_bool(S->jv, o, path, "thread", false, &st->thread) && st->thread && idx == 0)
        wb_jv_err_val(S->jv, p, "\"thread\" is not allowed on step 1 (there is no thread yet)");
    free(p);
    seq_load_variants(S, o, path, st);
}

static void seq_load_steps(struct sload *S, json_t *root)
{
    json_t *a = wb_jv_array(S->jv, root, "", "steps", true);
    if (!a)
        return;
    if (json_array_size(a) == 0)
        wb_jv_err_val(S->jv, "/steps", "\"steps\" must hold at least one step");
    struct wb_sequence *s = S->s;
    s->steps = wb_xcalloc(json_array_size(a), sizeof *s->steps);
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        char *p = wb_jsonpos_index("/steps", i);
        if (json_is_object(v))
            seq_load_step(S, v, p, i, &s->steps[s->n_steps++]);
        else
            wb_jv_err_val(S->jv, p, "step %zu must be an object", i + 1);
        free(p);
    }
}

static void seq_load_events(struct sload *S, json_t *root, const char *key, char ***out, size_t *n)
{
    if (!wb_jv_strings(S->jv, root, "", key, out, n))
        return;
    for (size_t i = 0; i < *n; i++) {
        if (wb_event_valid((*out)[i], S->s))
            continue;
        char *base = wb_jsonpos_child("", key);
        char *p = wb_jsonpos_index(base, i);
        wb_jv_err_val(S->jv, p, "unknown event \"%s\" in %s", (*out)[i], key);
        free(p);
        free(base);
    }
}

static void seq_load_id(struct sload *S, json_t *root)
{
    const char *id;
    if (!wb_jv_string(S->jv, root, "", "id", true, &id))
        return;
    if (!seq_only_chars(id, "._-")) {
        wb_jv_err_val(S->jv, "/id", "bad sequence id \"%s\" (use letters, digits, ., - and _)",
                      id);
        return;
    }
    S->s->id = wb_xstrdup(id);
    for (size_t i = 0; i < S->n_before; i++) {
        const struct wb_sequence *o = &S->before[i];
        if (o->id && !strcmp(o->id, id)) {
            wb_jv_err_val(S->jv, "/id", "duplicate sequence id \"%s\" (also in %s)", id, o->file);
            return;
        }
    }
}

static void seq_load_sender_ref(struct sload *S, json_t *root)
{
    const char *snd;
    if (!wb_jv_string(S->jv, root, "", "sender", true, &snd))
        return;
    S->s->sender = wb_xstrdup(snd);
    const struct wb_seq_env *env = S->env;
    if (!env->check_senders)
        return;
    for (size_t i = 0; i < env->n_senders; i++)
        if (!strcmp(env->senders[i], snd))
            return;
    wb_jv_err_val(S->jv, "/sender", "unknown sender \"%s\"", snd);
}

static void seq_load_sequence(struct sload *S, json_t *root)
{
    wb_jv_keys(S->jv, root, "", SEQ_KEYS);
    seq_load_id(S, root);
    seq_load_sender_ref(S, root);
    seq_load_audience(S, root);
    seq_load_window(S, root);
    /* Links first: templates and events refer to them by name. */
    seq_load_links(S, root);
    seq_load_steps(S, root);
    seq_load_events(S, root, "stop_on", &S->s->stop_on, &S->s->n_stop_on);
    seq_load_events(S, root, "handoff_on", &S->s->handoff_on, &S->s->n_handoff_on);
}

static void seq_hex(const unsigned char *md, unsigned n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 15];
    }
    out[2 * n] = '\0';
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
        struct sload S = {env, &jv, s, *all, *n_all - 1, EVP_MD_CTX_new()};
        EVP_DigestInit_ex(S.hash, EVP_sha256(), NULL);
        EVP_DigestUpdate(S.hash, text, len);
        seq_load_sequence(&S, root);
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

static void seq_free_variant(struct wb_variant *v)
{
    wb_template_free(v->subject);
    wb_template_free(v->text);
    wb_template_free(v->html);
}

void wb_sequence_free(struct wb_sequence *s)
{
    free(s->id);
    free(s->file);
    free(s->sender);
    wb_cf_free(AUDIENCE, &s->audience);
    free(s->window.timezone);
    free(s->window.fallback_timezone);
    for (size_t i = 0; i < s->n_links; i++) {
        free(s->links[i].name);
        free(s->links[i].url);
    }
    free(s->links);
    for (size_t i = 0; i < s->n_steps; i++) {
        struct wb_step *st = &s->steps[i];
        wb_template_free(st->subject);
        wb_template_free(st->text);
        wb_template_free(st->html);
        for (size_t k = 0; k < st->n_variants; k++)
            seq_free_variant(&st->variants[k]);
        free(st->variants);
    }
    free(s->steps);
    wb_strings_free(s->stop_on, s->n_stop_on);
    wb_strings_free(s->handoff_on, s->n_handoff_on);
    json_decref(s->definition);
}

const char *wb_sequence_link(const struct wb_sequence *s, const char *name)
{
    for (size_t i = 0; i < s->n_links; i++)
        if (!strcmp(s->links[i].name, name))
            return s->links[i].url;
    return NULL;
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
