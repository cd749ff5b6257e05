/* Reply intent classification (see intent.h). Text and phrases are folded
 * the same way (lowercase, accents dropped, typographic quotes made plain,
 * blanks collapsed) so that "Intéressé", "interesse" and "INTERESSE" meet. */
#include "warmbench/intent.h"
#include "warmbench/buf.h"
#include "warmbench/util.h"
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_MAX_LINES 12
/* Words looked back from an "interested" phrase for a negation. */
#define NEG_WINDOW 4

/* Phrases sorted, with where each first byte's run starts: matching looks
 * only at the phrases that begin with the byte at hand (a few hundred
 * phrases against a reply cost microseconds, not a scan each). */
struct list {
    char **v;
    size_t n;
    size_t start[257];
};

enum { L_UNSUB, L_NOT, L_INT, L_NEG, L_BREAK, L_OOO, L_NEUTRAL, L_COUNT };

struct wb_intent_rules {
    struct list l[L_COUNT];
    int max_lines;
    struct wb_intent_model *model;
};

const char *wb_intent_name(enum wb_intent i)
{
    static const char *const n[WB_INTENT_COUNT] = {"neutral", "interested", "not_interested",
                                                   "unsubscribe"};
    return (unsigned)i < WB_INTENT_COUNT ? n[i] : "neutral";
}

char *wb_intent_path(const char *config_dir)
{
    char *p = wb_path_join(config_dir ? config_dir : ".", "intent.json");
    if (access(p, R_OK) == 0)
        return p;
    free(p);
    return wb_xstrdup(WB_SHARE_DIR "/intent.json");
}

/* ---- folding ----------------------------------------------------------- */

/* U+00C0..U+00FF without their accents (lowercase). */
static const char *const latin1_fold[64] = {
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
    "d", "n", "o", "o", "o", "o", "o", "x", "o", "u", "u", "u", "u", "y", "th", "ss",
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
    "d", "n", "o", "o", "o", "o", "o", " ", "o", "u", "u", "u", "u", "y", "th", "y"};

static char *intent_fold(const char *s)
{
    struct wb_buf b;
    wb_buf_init(&b);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        const char *rep = NULL;
        size_t skip = 1;
        if (p[0] == 0xC3 && p[1] >= 0x80 && p[1] <= 0xBF)
            rep = latin1_fold[p[1] - 0x80], skip = 2;
        else if (p[0] == 0xC5 && (p[1] == 0x92 || p[1] == 0x93))
            rep = "oe", skip = 2;
        else if (p[0] == 0xC2 && (p[1] == 0xA0 || p[1] == 0xA1 || p[1] == 0xBF))
            rep = " ", skip = 2; /* NBSP, ¡ and ¿ */
        else if (p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0x98 || p[2] == 0x99))
            rep = "'", skip = 3;
        else if (p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0x9C || p[2] == 0x9D))
            rep = "\"", skip = 3;
        if (rep) {
            wb_buf_puts(&b, rep);
        } else if (isspace(*p)) {
            if (b.len && b.data[b.len - 1] != ' ')
                wb_buf_putc(&b, ' ');
        } else {
            wb_buf_putc(&b, (char)tolower(*p));
        }
        p += skip;
    }
    while (b.len && b.data[b.len - 1] == ' ')
        b.data[--b.len] = '\0';
    return wb_buf_steal(&b);
}

/* ---- loading ----------------------------------------------------------- */

static void intent_list_free(struct list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

static int intent_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void intent_list_index(struct list *l)
{
    if (l->n)
        qsort(l->v, l->n, sizeof *l->v, intent_cmp);
    size_t k = 0;
    for (int c = 0; c <= 256; c++) {
        while (k < l->n && (unsigned char)l->v[k][0] < c)
            k++;
        l->start[c] = k;
    }
}

/* A list is an array of strings, or an object of such arrays (one per
 * language); every entry is folded. */
static int intent_list_load(json_t *j, struct list *l)
{
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) {
            if (intent_list_load(v, l) < 0)
                return -1;
        }
        return 0;
    }
    if (!json_is_array(j))
        return -1;
    size_t i;
    json_t *v;
    json_array_foreach(j, i, v) {
        if (!json_is_string(v))
            return -1;
        char *f = intent_fold(json_string_value(v));
        if (!*f) {
            free(f);
            continue;
        }
        l->v = wb_xrealloc(l->v, (l->n + 1) * sizeof *l->v);
        l->v[l->n++] = f;
    }
    return 0;
}

/* "model": a file name looked up beside intent.json, then in
 * WB_SHARE_DIR (an operator's copy of intent.json need not copy the model);
 * absent or null: rules only. */
static int intent_model_load(struct wb_intent_rules *r, const char *path, json_t *j, char *err,
                             size_t errsz)
{
    if (!j || json_is_null(j))
        return 0;
    const char *name = json_string_value(j);
    if (!name || !*name || strlen(name) > 4096) {
        snprintf(err, errsz, "%s: \"model\" must be a file name", path);
        return -1;
    }
    char *dir = wb_dirname(path), *file = wb_path_join(dir, name);
    if (name[0] != '/' && access(file, F_OK) != 0) {
        free(file);
        file = wb_path_join(WB_SHARE_DIR, name);
    }
    char why[512];
    r->model = wb_intent_model_load(file, why, sizeof why);
    if (!r->model)
        snprintf(err, errsz, "%s: model: %s", path, why);
    free(file);
    free(dir);
    return r->model ? 0 : -1;
}

struct wb_intent_rules *wb_intent_load(const char *path, char *err, size_t errsz)
{
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) {
        snprintf(err, errsz, "%s:%d:%d: %s", path, je.line, je.column, je.text);
        return NULL;
    }
    static const char *const keys[L_COUNT][2] = {
        {"intents", "unsubscribe"}, {"intents", "not_interested"}, {"intents", "interested"},
        {"negations", NULL},        {"clause_breaks", NULL},       {"out_of_office_subjects", NULL},
        {"intents", "neutral"}};
    struct wb_intent_rules *r = wb_xcalloc(1, sizeof *r);
    r->max_lines = DEFAULT_MAX_LINES;
    json_t *ml = json_object_get(root, "max_lines");
    if (json_is_integer(ml) && json_integer_value(ml) > 0 && json_integer_value(ml) < 1000)
        r->max_lines = (int)json_integer_value(ml);
    for (int i = 0; i < L_COUNT; i++) {
        json_t *j = json_object_get(root, keys[i][0]);
        if (j && keys[i][1])
            j = json_object_get(j, keys[i][1]);
        bool optional = i == L_BREAK || i == L_NEUTRAL;
        if ((!j && !optional) || (j && intent_list_load(j, &r->l[i]) < 0)) {
            snprintf(err, errsz, "%s: \"%s%s%s\" must be a list of strings or an object of them",
                     path, keys[i][0], keys[i][1] ? "." : "", keys[i][1] ? keys[i][1] : "");
            json_decref(root);
            wb_intent_free(r);
            return NULL;
        }
    }
    for (int i = 0; i < L_COUNT; i++)
        intent_list_index(&r->l[i]);
    if (intent_model_load(r, path, json_object_get(root, "model"), err, errsz) < 0) {
        json_decref(root);
        wb_intent_free(r);
        return NULL;
    }
    json_decref(root);
    return r;
}

void wb_intent_free(struct wb_intent_rules *r)
{
    if (!r)
        return;
    for (int i = 0; i < L_COUNT; i++)
        intent_list_free(&r->l[i]);
    wb_intent_model_free(r->model);
    free(r);
}

/* ---- stripping ------------------------------------------------------- */

static bool intent_starts(const char *s, const char *prefix)
{
    return !strncmp(s, prefix, strlen(prefix));
}

static bool intent_ends(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* An attribution line introducing the quoted message (folded line f and
 * the folded line after it, for attributions that wrap): it opens the way
 * its language's clients write it and names the verb by the colon that
 * ends it, on this line or the next. */
static bool intent_attribution(const char *f, const char *next)
{
    static const char *const opener[] = {"on ", "am ", "le ", "el ", "il ", "op "};
    static const char *const verb[] = {"wrote", "schrieb", "a ecrit", "escribio", "ha scritto",
                                       "schreef", "geschreven"};
    static const char *const tail[] = {"wrote:", "schrieb:", "a ecrit :", "a ecrit:", "escribio:",
                                       "ha scritto:", "het volgende geschreven:"};
    for (size_t k = 0; k < sizeof tail / sizeof tail[0]; k++)
        if (intent_ends(f, tail[k]))
            return true;
    bool opens = false;
    for (size_t k = 0; k < sizeof opener / sizeof opener[0]; k++)
        opens |= intent_starts(f, opener[k]);
    if (!opens || (!intent_ends(f, ":") && !intent_ends(next, ":")))
        return false;
    char *both = wb_xasprintf("%s %s", f, intent_ends(f, ":") ? "" : next);
    bool hit = false;
    for (size_t k = 0; k < sizeof verb / sizeof verb[0]; k++)
        hit |= strstr(both, verb[k]) != NULL;
    free(both);
    return hit;
}

/* Outlook and friends quote with a header block: "From: ..." followed by
 * "Sent:"/"To:" lines (in the reader's language). */
static bool intent_header_block(const char *f, char **lines, size_t i, size_t n)
{
    static const char *const from[] = {"from:", "von:", "de:", "de :", "da:", "van:"};
    static const char *const rest[] = {"sent:", "date:", "to:", "gesendet:", "datum:", "an:",
                                       "envoye :", "envoye:", "date :", "a :", "a:",
                                       "enviado:", "fecha:", "para:", "cc:", "subject:",
                                       "betreff:", "objet :", "asunto:", "inviato:", "data:",
                                       "oggetto:", "verzonden:", "aan:", "onderwerp:"};
    bool is_from = false;
    for (size_t k = 0; k < sizeof from / sizeof from[0]; k++)
        is_from |= intent_starts(f, from[k]);
    if (!is_from)
        return false;
    for (size_t j = i + 1; j < n && j <= i + 3; j++) {
        char *g = intent_fold(lines[j]);
        bool hit = false;
        for (size_t k = 0; k < sizeof rest / sizeof rest[0]; k++)
            hit |= intent_starts(g, rest[k]);
        free(g);
        if (hit)
            return true;
    }
    return false;
}

static bool intent_stop_line(const char *raw, const char *f)
{
    static const char *const sig[] = {"sent from my ", "von meinem ", "envoye de mon ",
                                      "enviado desde mi ", "inviato da ", "verstuurd vanaf ",
                                      "verzonden vanaf ", "get outlook for ", "sent from outlook",
                                      "outlook fur ", "obtenir outlook ", "obtener outlook ",
                                      "scarica outlook ", "outlook voor "};
    if (!strcmp(raw, "-- ") || !strcmp(raw, "--") || intent_starts(raw, "-----") ||
        intent_starts(raw, "________") || intent_starts(f, "begin forwarded message"))
        return true;
    for (size_t k = 0; k < sizeof sig / sizeof sig[0]; k++)
        if (intent_starts(f, sig[k]))
            return true;
    return false;
}

static size_t intent_split_lines(char *s, char ***out)
{
    size_t n = 0;
    *out = NULL;
    for (char *p = s; p;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        size_t len = strlen(p);
        if (len && p[len - 1] == '\r')
            p[len - 1] = '\0';
        *out = wb_xrealloc(*out, (n + 1) * sizeof **out);
        (*out)[n++] = p;
        p = nl ? nl + 1 : NULL;
    }
    return n;
}

char *wb_intent_strip(const char *text, int max_lines)
{
    char *copy = wb_xstrdup(text ? text : ""), **lines;
    size_t n = intent_split_lines(copy, &lines);
    struct wb_buf b;
    wb_buf_init(&b);
    int kept = 0;
    for (size_t i = 0; i < n && kept < max_lines; i++) {
        const char *raw = lines[i];
        const char *lead = raw + strspn(raw, " \t");
        char *f = intent_fold(raw), *next = intent_fold(i + 1 < n ? lines[i + 1] : "");
        bool attribution = intent_attribution(f, next);
        bool stop = intent_stop_line(raw, f) || attribution || intent_header_block(f, lines, i, n);
        free(next);
        if (attribution && !kept) { /* bottom-posted: the reply follows the quote */
            i += !intent_ends(f, ":"); /* and its wrapped second line */
            free(f);
            continue;
        }
        if (stop) {
            free(f);
            break;
        }
        if (*lead != '>' && *f) {
            wb_buf_puts(&b, raw);
            wb_buf_putc(&b, '\n');
            kept++;
        }
        free(f);
    }
    free(lines);
    free(copy);
    if (!b.data)
        return wb_xstrdup("");
    return wb_buf_steal(&b);
}

/* ---- matching ----------------------------------------------------------- */

static bool intent_word_char(unsigned char c)
{
    return isalnum(c) || c >= 0x80;
}

/* A phrase ending in '*' is a stem: it matches the start of a word
 * ("unsubscrib*" takes "unsubscribe" and "unsubscribing"). */
static bool intent_stem(const char *ph, size_t *len)
{
    *len = strlen(ph);
    if (*len > 1 && ph[*len - 1] == '*') {
        --*len;
        return true;
    }
    return false;
}

static bool intent_in_list(const struct list *l, const char *w, size_t n)
{
    for (size_t i = 0; i < l->n; i++) {
        size_t k;
        bool stem = intent_stem(l->v[i], &k);
        if ((k == n || (stem && n > k)) && !memcmp(l->v[i], w, k))
            return true;
    }
    return false;
}

/* Looks back from pos through the same clause for a negation word. */
static bool intent_negated(const struct wb_intent_rules *r, const char *s, size_t pos)
{
    size_t i = pos;
    for (int words = 0; words < NEG_WINDOW && i > 0;) {
        while (i > 0 && s[i - 1] == ' ')
            i--;
        if (i == 0 || strchr(".,;:!?()\"", s[i - 1]))
            return false;
        size_t e = i;
        while (i > 0 && (intent_word_char((unsigned char)s[i - 1]) || s[i - 1] == '\''))
            i--;
        if (i == e) { /* some other symbol: part of no word */
            i--;
            continue;
        }
        if (intent_in_list(&r->l[L_BREAK], s + i, e - i))
            return false;
        if (intent_in_list(&r->l[L_NEG], s + i, e - i))
            return true;
        words++;
    }
    return false;
}

/* Bit 0: a plain match; bit 1: a negated match (when neg is set). */
static int intent_match(const struct wb_intent_rules *r, const struct list *l, const char *s, bool neg)
{
    int found = 0;
    for (size_t pos = 0; s[pos]; pos++) {
        unsigned char c = (unsigned char)s[pos];
        /* A phrase that starts with a letter starts a word. */
        if (pos && intent_word_char(c) && intent_word_char((unsigned char)s[pos - 1]))
            continue;
        for (size_t k = l->start[c]; k < l->start[c + 1]; k++) {
            const char *ph = l->v[k];
            size_t pl;
            bool stem = intent_stem(ph, &pl);
            if (strncmp(s + pos, ph, pl) ||
                (!stem && intent_word_char((unsigned char)s[pos + pl]) && intent_word_char((unsigned char)ph[pl - 1])))
                continue;
            if (!neg)
                return 1;
            found |= intent_negated(r, s, pos) ? 2 : 1;
        }
    }
    return found;
}

char *wb_intent_text(const struct wb_intent_rules *r, const char *text)
{
    char *own = wb_intent_strip(text, r->max_lines), *s = intent_fold(own);
    free(own);
    return s;
}

int wb_intent_rules_match(const struct wb_intent_rules *r, const char *s)
{
    int interested;
    if (intent_match(r, &r->l[L_UNSUB], s, false))
        return WB_INTENT_UNSUBSCRIBE;
    /* Referrals and the like: "not for me, but I'll forward it to a friend"
     * reads as neither yes nor no. */
    if (intent_match(r, &r->l[L_NEUTRAL], s, false))
        return WB_INTENT_NEUTRAL;
    if (intent_match(r, &r->l[L_NOT], s, false))
        return WB_INTENT_NOT_INTERESTED;
    if ((interested = intent_match(r, &r->l[L_INT], s, true)) & 2)
        return WB_INTENT_NOT_INTERESTED;
    if (interested)
        return WB_INTENT_INTERESTED;
    return -1;
}

const struct wb_intent_model *wb_intent_model_of(const struct wb_intent_rules *r)
{
    return r->model;
}

void wb_intent_decide(const struct wb_intent_rules *r, const char *text, struct wb_intent_result *out)
{
    char *s = wb_intent_text(r, text ? text : "");
    int rule = wb_intent_rules_match(r, s);
    out->intent = rule >= 0 ? (enum wb_intent)rule : WB_INTENT_NEUTRAL;
    out->confidence = -1;
    out->by_model = false;
    /* An empty reply (all quote, or nothing) is neutral by definition: the
     * model has nothing to read. */
    if (rule < 0 && r->model && *s) {
        double p[WB_INTENT_COUNT];
        out->intent = wb_intent_model_score(r->model, s, p);
        out->confidence = p[out->intent];
        out->by_model = true;
    }
    free(s);
}

enum wb_intent wb_intent_classify(const struct wb_intent_rules *r, const char *text)
{
    struct wb_intent_result res;
    wb_intent_decide(r, text, &res);
    return res.intent;
}

bool wb_intent_ooo_subject(const struct wb_intent_rules *r, const char *subject)
{
    char *s = intent_fold(subject ? subject : "");
    bool hit = intent_match(r, &r->l[L_OOO], s, false) != 0;
    free(s);
    return hit;
}
