/* Out-of-office return dates (see ooo.h). The reply's own text (quotes and
 * signatures stripped as for intent) is folded (lowercase, accents
 * dropped) and cut into words, numbers and marks. A date is looked for at
 * every token; it counts when a cue of return or absence stands before it
 * in its sentence ("back on", "until", "bis zum", "jusqu'au", "hasta el",
 * "to" after a first date) or a return word follows it ("ab dem 5.1.
 * wieder"). Of the dates that count, the latest usable one wins: a range's
 * end, a return after an "until". */
#include "warmbench/ooo.h"
#include "warmbench/buf.h"
#include "warmbench/ical.h"
#include "warmbench/intent.h"
#include "warmbench/util.h"
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_TOKS 8192
#define WORD_MAX 15
#define CUE_WINDOW 7       /* tokens a cue may stand before its date */
#define POST_WINDOW 5      /* tokens a return word may follow its date */
#define AMBIG_DAYS 92      /* how far ahead a day/month reading may be to settle an order */
#define YEARLESS_DAYS 183  /* a date without a year further ahead than this was a past one */

enum kind { K_WORD, K_NUM, K_MARK };
enum lang { L_ANY, L_EN, L_DE, L_FR, L_ES, L_N };
enum form { F_YMD, F_AMBIG, F_WEEKDAY, F_DAY, F_REL };

struct tok {
    unsigned char kind;
    bool gap;               /* blank before it */
    bool brk;               /* a sentence or paragraph ends before it */
    unsigned char len;      /* bytes of the word or number, capped */
    char s[WORD_MAX + 1];   /* folded, cut at WORD_MAX; a mark's one char */
    long num;               /* a number of at most 9 digits, else -1 */
};

struct toks {
    struct tok *t;
    size_t n;
};

/* A date as written: y 0 when it names no year, wd -1 when no weekday. */
struct dexp {
    enum form form;
    int y, m, d, wd, rel;
};

struct word {
    const char *w;
    int v;
    enum lang lang;
};

static const struct word MONTHS[] = {
    {"january", 1, L_EN}, {"february", 2, L_EN}, {"march", 3, L_EN}, {"may", 5, L_ANY},
    {"june", 6, L_EN}, {"july", 7, L_EN}, {"october", 10, L_EN}, {"december", 12, L_EN},
    {"april", 4, L_ANY}, {"august", 8, L_ANY}, {"september", 9, L_ANY}, {"november", 11, L_ANY},
    {"jan", 1, L_ANY}, {"feb", 2, L_ANY}, {"mar", 3, L_ANY}, {"apr", 4, L_ANY}, {"jun", 6, L_ANY},
    {"jul", 7, L_ANY}, {"aug", 8, L_ANY}, {"sep", 9, L_ANY}, {"sept", 9, L_ANY},
    {"oct", 10, L_ANY}, {"nov", 11, L_ANY}, {"dec", 12, L_ANY},
    {"januar", 1, L_DE}, {"janner", 1, L_DE}, {"februar", 2, L_DE}, {"marz", 3, L_DE},
    {"maerz", 3, L_DE}, {"mrz", 3, L_DE}, {"mai", 5, L_ANY}, {"juni", 6, L_DE}, {"juli", 7, L_DE},
    {"oktober", 10, L_DE}, {"okt", 10, L_DE}, {"dezember", 12, L_DE}, {"dez", 12, L_DE},
    {"janvier", 1, L_FR}, {"janv", 1, L_FR}, {"fevrier", 2, L_FR}, {"fevr", 2, L_FR},
    {"mars", 3, L_FR}, {"avril", 4, L_FR}, {"avr", 4, L_FR}, {"juin", 6, L_FR},
    {"juillet", 7, L_FR}, {"juil", 7, L_FR}, {"aout", 8, L_FR}, {"septembre", 9, L_FR},
    {"octobre", 10, L_FR}, {"novembre", 11, L_FR}, {"decembre", 12, L_FR},
    {"enero", 1, L_ES}, {"ene", 1, L_ES}, {"febrero", 2, L_ES}, {"marzo", 3, L_ES},
    {"abril", 4, L_ES}, {"abr", 4, L_ES}, {"mayo", 5, L_ES}, {"junio", 6, L_ES},
    {"julio", 7, L_ES}, {"agosto", 8, L_ES}, {"ago", 8, L_ES}, {"septiembre", 9, L_ES},
    {"setiembre", 9, L_ES}, {"octubre", 10, L_ES}, {"noviembre", 11, L_ES},
    {"diciembre", 12, L_ES}, {"dic", 12, L_ES}, {NULL, 0, L_ANY}};

/* 0 = Monday. Abbreviations (v + 10) only name a day next to a date. */
static const struct word WEEKDAYS[] = {
    {"monday", 0, L_EN}, {"tuesday", 1, L_EN}, {"wednesday", 2, L_EN}, {"thursday", 3, L_EN},
    {"friday", 4, L_EN}, {"saturday", 5, L_EN}, {"sunday", 6, L_EN},
    {"mon", 10, L_EN}, {"tue", 11, L_EN}, {"tues", 11, L_EN}, {"wed", 12, L_EN},
    {"thu", 13, L_EN}, {"thur", 13, L_EN}, {"thurs", 13, L_EN}, {"fri", 14, L_EN},
    {"sat", 15, L_EN}, {"sun", 16, L_EN},
    {"montag", 0, L_DE}, {"dienstag", 1, L_DE}, {"mittwoch", 2, L_DE}, {"donnerstag", 3, L_DE},
    {"freitag", 4, L_DE}, {"samstag", 5, L_DE}, {"sonnabend", 5, L_DE}, {"sonntag", 6, L_DE},
    {"mo", 10, L_DE}, {"di", 11, L_DE}, {"mi", 12, L_DE}, {"do", 13, L_DE}, {"fr", 14, L_DE},
    {"sa", 15, L_DE}, {"so", 16, L_DE},
    {"lundi", 0, L_FR}, {"mardi", 1, L_FR}, {"mercredi", 2, L_FR}, {"jeudi", 3, L_FR},
    {"vendredi", 4, L_FR}, {"samedi", 5, L_FR}, {"dimanche", 6, L_FR},
    {"lunes", 0, L_ES}, {"martes", 1, L_ES}, {"miercoles", 2, L_ES}, {"jueves", 3, L_ES},
    {"viernes", 4, L_ES}, {"sabado", 5, L_ES}, {"domingo", 6, L_ES}, {NULL, 0, L_ANY}};

/* Words before a date that make it the return date or the last day away. */
static const struct word CUES[] = {
    {"back", 0, L_EN}, {"return", 0, L_EN}, {"returning", 0, L_EN}, {"returns", 0, L_EN},
    {"until", 0, L_EN}, {"till", 0, L_EN}, {"til", 0, L_EN}, {"untill", 0, L_EN},
    {"through", 0, L_EN}, {"thru", 0, L_EN}, {"again", 0, L_EN}, {"resume", 0, L_EN},
    {"resuming", 0, L_EN},
    {"bis", 0, L_DE}, {"zuruck", 0, L_DE}, {"zurueck", 0, L_DE}, {"ruckkehr", 0, L_DE},
    {"rueckkehr", 0, L_DE}, {"wieder", 0, L_DE},
    {"retour", 0, L_FR}, {"jusqu", 0, L_FR}, {"jusque", 0, L_FR}, {"reviendrai", 0, L_FR},
    {"rentre", 0, L_FR}, {"rentrerai", 0, L_FR}, {"nouveau", 0, L_FR},
    {"regreso", 0, L_ES}, {"regresare", 0, L_ES}, {"vuelta", 0, L_ES}, {"volvere", 0, L_ES},
    {"vuelvo", 0, L_ES}, {"hasta", 0, L_ES}, {"reincorporare", 0, L_ES},
    {"reincorporo", 0, L_ES}, {"nuevo", 0, L_ES}, {"retorno", 0, L_ES}, {NULL, 0, L_ANY}};

/* Words after a date that make it a return ("ab dem 5.1. wieder im Büro"). */
static const char *const POST[] = {"back", "return", "again", "wieder", "zuruck", "zurueck",
                                   "retour", "nouveau", "vuelta", "regreso", "regresare",
                                   "volvere", "nuevo", NULL};

/* Words joining a range's two ends ("from 3 to 14 January", "du 3 au 14"). */
static const char *const JOINS[] = {"to", "au", "al", "a", "and", "und", "et", "y", NULL};

/* Words after a number that make it a time of day. */
static const char *const TIME_WORDS[] = {"am", "pm", "h", "uhr", "hr", "hrs", "heures", "horas", NULL};

/* Common words that tell the language (numeric dates' day/month order). */
static const struct word LANG_WORDS[] = {
    {"the", 0, L_EN}, {"and", 0, L_EN}, {"will", 0, L_EN}, {"office", 0, L_EN},
    {"out", 0, L_EN}, {"am", 0, L_ANY}, {"i", 0, L_EN}, {"my", 0, L_EN}, {"with", 0, L_EN},
    {"ich", 0, L_DE}, {"bin", 0, L_DE}, {"und", 0, L_DE}, {"der", 0, L_DE}, {"die", 0, L_DE},
    {"das", 0, L_DE}, {"im", 0, L_DE}, {"nicht", 0, L_DE}, {"mit", 0, L_DE}, {"ihre", 0, L_DE},
    {"je", 0, L_FR}, {"suis", 0, L_FR}, {"serai", 0, L_FR}, {"et", 0, L_FR}, {"les", 0, L_FR},
    {"du", 0, L_FR}, {"au", 0, L_FR}, {"votre", 0, L_FR}, {"vous", 0, L_FR},
    {"estoy", 0, L_ES}, {"estare", 0, L_ES}, {"el", 0, L_ES}, {"y", 0, L_ES}, {"los", 0, L_ES},
    {"con", 0, L_ES}, {"su", 0, L_ES}, {"oficina", 0, L_ES}, {"del", 0, L_ES},
    {NULL, 0, L_ANY}};

/* ---- folding and tokens ------------------------------------------------ */

/* U+00C0..U+00FF without their accents (lowercase). */
static const char *const LATIN1[64] = {
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
    "d", "n", "o", "o", "o", "o", "o", "x", "o", "u", "u", "u", "u", "y", "th", "ss",
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
    "d", "n", "o", "o", "o", "o", "o", " ", "o", "u", "u", "u", "u", "y", "th", "y"};

/* One UTF-8 character at p (n bytes left) as ASCII: *skip bytes read. */
static const char *ooo_fold_char(const unsigned char *p, size_t n, size_t *skip, char one[2])
{
    *skip = 1;
    if (n >= 2 && p[0] == 0xC3 && p[1] >= 0x80 && p[1] <= 0xBF) {
        *skip = 2;
        return LATIN1[p[1] - 0x80];
    }
    if (n >= 2 && p[0] == 0xC2) {
        *skip = 2;
        return p[1] == 0xBA || p[1] == 0xAA ? "o" : p[1] == 0xB0 ? "o" : " "; /* 1º, 1ª, 1° */
    }
    if (n >= 3 && p[0] == 0xE2 && p[1] == 0x80) {
        *skip = 3;
        if (p[2] >= 0x90 && p[2] <= 0x95)
            return "-"; /* hyphens and dashes */
        return p[2] == 0x98 || p[2] == 0x99 ? "'" : " ";
    }
    if (p[0] >= 0x80) {
        while (*skip < n && *skip < 4 && (p[*skip] & 0xC0) == 0x80)
            (*skip)++;
        return "q"; /* a letter no table names */
    }
    one[0] = (char)(p[0] >= 'A' && p[0] <= 'Z' ? p[0] + 32 : p[0]);
    one[1] = '\0';
    return one;
}

static char *ooo_fold(const char *s, size_t n)
{
    struct wb_buf b;
    wb_buf_init(&b);
    const unsigned char *p = (const unsigned char *)s;
    char one[2];
    for (size_t i = 0, skip; i < n && p[i]; i += skip)
        wb_buf_puts(&b, ooo_fold_char(p + i, n - i, &skip, one));
    return b.data ? wb_buf_steal(&b) : wb_xstrdup("");
}

static bool ooo_alpha(char c)
{
    return c >= 'a' && c <= 'z';
}

static bool ooo_digit(char c)
{
    return c >= '0' && c <= '9';
}

static void ooo_push(struct toks *T, enum kind k, const char *s, size_t len, bool gap, bool para)
{
    if (T->n >= MAX_TOKS)
        return;
    struct tok *t = &T->t[T->n++];
    memset(t, 0, sizeof *t);
    t->kind = (unsigned char)k;
    t->gap = gap;
    t->brk = para;
    t->len = (unsigned char)(len > 255 ? 255 : len);
    memcpy(t->s, s, len > WORD_MAX ? WORD_MAX : len);
    t->num = -1;
    if (k == K_NUM && len <= 9)
        t->num = strtol(t->s, NULL, 10);
}

static const struct word *ooo_find(const struct word *tab, const struct tok *t)
{
    if (!t || t->kind != K_WORD || t->len > WORD_MAX)
        return NULL;
    for (; tab->w; tab++)
        if (!strcmp(tab->w, t->s))
            return tab;
    return NULL;
}

static bool ooo_in(const char *const *list, const struct tok *t)
{
    if (!t || t->kind != K_WORD || t->len > WORD_MAX)
        return false;
    for (; *list; list++)
        if (!strcmp(*list, t->s))
            return true;
    return false;
}

static bool ooo_mark(const struct tok *t, char c)
{
    return t && t->kind == K_MARK && t->s[0] == c;
}

/* A full stop ends a sentence after a word that is no abbreviation of a
 * month or weekday; "!", "?" and ";" always do. */
static void ooo_breaks(struct toks *T)
{
    for (size_t i = 0; i + 1 < T->n; i++) {
        struct tok *t = &T->t[i], *next = &T->t[i + 1];
        if (t->kind != K_MARK)
            continue;
        if (strchr("!?;", t->s[0]))
            next->brk = true;
        else if (t->s[0] == '.' && next->gap && i > 0 && T->t[i - 1].kind == K_WORD &&
                 !ooo_find(MONTHS, &T->t[i - 1]) && !ooo_find(WEEKDAYS, &T->t[i - 1]))
            next->brk = true;
    }
}

static void ooo_tokenize(const char *f, struct toks *T)
{
    bool gap = false, para = false;
    int newlines = 0;
    for (const char *p = f; *p && T->n < MAX_TOKS;) {
        if (*p == '\n' || *p == ' ' || *p == '\t' || *p == '\r' || *p == '\f' || *p == '\v') {
            newlines += *p == '\n';
            gap = true;
            para |= newlines >= 2;
            p++;
            continue;
        }
        size_t n = 1;
        enum kind k = K_MARK;
        if (ooo_alpha(*p)) {
            k = K_WORD;
            while (ooo_alpha(p[n]))
                n++;
        } else if (ooo_digit(*p)) {
            k = K_NUM;
            while (ooo_digit(p[n]))
                n++;
        }
        ooo_push(T, k, p, n, gap, para);
        p += n;
        gap = para = false;
        newlines = 0;
    }
    ooo_breaks(T);
}

static enum lang ooo_language(const struct toks *T)
{
    int count[L_N] = {0};
    static const struct word *const tabs[] = {MONTHS, WEEKDAYS, CUES, LANG_WORDS};
    for (size_t i = 0; i < T->n; i++)
        for (size_t k = 0; k < sizeof tabs / sizeof *tabs; k++) {
            const struct word *w = ooo_find(tabs[k], &T->t[i]);
            if (w)
                count[w->lang]++;
        }
    enum lang best = L_EN;
    for (int l = L_DE; l < L_N; l++)
        if (count[l] > count[best])
            best = (enum lang)l;
    return best;
}

/* ---- dates as written ---------------------------------------------------- */

static const struct tok *ooo_at(const struct toks *T, size_t i)
{
    return i < T->n ? &T->t[i] : NULL;
}

/* A number of 1..digits digits (no sign), or -1. */
static long ooo_num(const struct toks *T, size_t i, int min_digits, int max_digits)
{
    const struct tok *t = ooo_at(T, i);
    if (!t || t->kind != K_NUM || t->len < min_digits || t->len > max_digits)
        return -1;
    return t->num;
}

static int ooo_month(const struct toks *T, size_t i)
{
    const struct word *w = ooo_find(MONTHS, ooo_at(T, i));
    return w ? w->v : 0;
}

/* A token inside a date: no sentence break before it. */
static bool ooo_inside(const struct toks *T, size_t i)
{
    const struct tok *t = ooo_at(T, i);
    return t && !t->brk;
}

/* Skips one optional mark c or word among words at *i. */
static void ooo_skip(const struct toks *T, size_t *i, char c, const char *const *words)
{
    if (!ooo_inside(T, *i))
        return;
    if ((c && ooo_mark(ooo_at(T, *i), c)) || (words && ooo_in(words, ooo_at(T, *i))))
        (*i)++;
}

static int ooo_year4(long y)
{
    return y >= 1900 && y <= 2199 ? (int)y : 0;
}

/* 2027-01-14, 2027/01/14. */
static size_t ooo_iso(const struct toks *T, size_t i, struct dexp *e)
{
    long y = ooo_num(T, i, 4, 4);
    const struct tok *s1 = ooo_at(T, i + 1), *s2 = ooo_at(T, i + 3);
    if (y < 0 || !s1 || !s2 || s1->gap || s2->gap || ooo_at(T, i + 2)->gap ||
        !(ooo_mark(s1, '-') || ooo_mark(s1, '/')) || s1->s[0] != s2->s[0])
        return 0;
    long m = ooo_num(T, i + 2, 1, 2), d = ooo_num(T, i + 4, 1, 2);
    if (m < 0 || d < 0 || ooo_at(T, i + 4)->gap || !ooo_year4(y))
        return 0;
    *e = (struct dexp){F_YMD, (int)y, (int)m, (int)d, -1, 0};
    return i + 5;
}

/* Digits around a numeric date that make it part of a phone number or
 * another figure: "+49 30 12.03.45 67", "06.12.03.45.67". */
static bool ooo_figure(const struct toks *T, size_t start, size_t end)
{
    const struct tok *before = start ? ooo_at(T, start - 1) : NULL, *after = ooo_at(T, end);
    if (before && !T->t[start].gap && (before->kind == K_NUM || ooo_mark(before, '+')))
        return true;
    if (before && !T->t[start].gap && start >= 2 && before->kind == K_MARK &&
        T->t[start - 2].kind == K_NUM && !before->gap)
        return true;
    if (after && !after->gap && after->kind == K_MARK && ooo_num(T, end + 1, 1, 9) >= 0 &&
        !ooo_at(T, end + 1)->gap)
        return true;
    if (after && after->gap && after->kind == K_NUM && !ooo_mark(ooo_at(T, end + 1), ':'))
        return true;
    return false;
}

/* 14.01.2027, 5.1., 12/01, 01/12/2027, 14-01-2027. */
static size_t ooo_numeric(const struct toks *T, size_t i, struct dexp *e)
{
    long a = ooo_num(T, i, 1, 2), b = ooo_num(T, i + 2, 1, 2);
    const struct tok *s1 = ooo_at(T, i + 1);
    if (a < 0 || b < 0 || !s1 || s1->gap || ooo_at(T, i + 2)->gap ||
        !(ooo_mark(s1, '.') || ooo_mark(s1, '/') || ooo_mark(s1, '-')))
        return 0;
    char sep = s1->s[0];
    size_t end = i + 3;
    long y = 0;
    const struct tok *s2 = ooo_at(T, end);
    if (s2 && !s2->gap && s2->s[0] == sep && s2->kind == K_MARK) {
        long yy = ooo_num(T, end + 1, 2, 4);
        if (yy >= 0 && !ooo_at(T, end + 1)->gap && ooo_at(T, end + 1)->len != 3) {
            y = yy < 100 ? 2000 + yy : ooo_year4(yy);
            end += 2;
        } else if (sep == '.') {
            end++; /* "5.1." */
        }
    }
    if (sep == '-' && !y)
        return 0; /* 3-14: a range of days, not a date */
    if (!y && ooo_in(TIME_WORDS, ooo_at(T, end)))
        return 0; /* bis 10.12 Uhr, until 12.10 pm: a time */
    if (ooo_figure(T, i, end))
        return 0;
    /* Read day first; F_AMBIG leaves the order to ooo_ambiguous. */
    *e = (struct dexp){sep == '.' ? F_YMD : F_AMBIG, (int)y, (int)b, (int)a, -1, 0};
    return end;
}

/* An ordinal's tail after a day: 3rd, 1er, 1º, 3. */
static void ooo_ordinal(const struct toks *T, size_t *i)
{
    static const char *const tails[] = {"st", "nd", "rd", "th", "er", "eme", "o", "a", NULL};
    const struct tok *t = ooo_at(T, *i);
    if (t && !t->gap && ooo_in(tails, t))
        (*i)++;
    ooo_skip(T, i, '.', NULL);
}

static int ooo_year_after(const struct toks *T, size_t *i)
{
    static const char *const links[] = {"de", "del", NULL};
    size_t k = *i;
    ooo_skip(T, &k, ',', NULL);
    ooo_skip(T, &k, 0, links);
    long y = ooo_inside(T, k) ? ooo_num(T, k, 4, 4) : -1;
    if (y < 0 || !ooo_year4(y))
        return 0;
    *i = k + 1;
    return (int)y;
}

/* 12 January 2027, 3. Januar, 6 janvier, 7 de enero, 3rd of March. */
static size_t ooo_day_month(const struct toks *T, size_t i, struct dexp *e)
{
    static const char *const links[] = {"of", "de", NULL};
    long d = ooo_num(T, i, 1, 2);
    if (d < 1 || d > 31)
        return 0;
    size_t k = i + 1;
    ooo_ordinal(T, &k);
    ooo_skip(T, &k, 0, links);
    int m = ooo_inside(T, k) ? ooo_month(T, k) : 0;
    if (!m)
        return 0;
    k++;
    ooo_skip(T, &k, '.', NULL);
    int y = ooo_year_after(T, &k);
    *e = (struct dexp){F_YMD, y, m, (int)d, -1, 0};
    return k;
}

/* January 12th, 2027; Jan. 12. */
static size_t ooo_month_day(const struct toks *T, size_t i, struct dexp *e)
{
    int m = ooo_month(T, i);
    size_t k = i + 1;
    if (!m)
        return 0;
    ooo_skip(T, &k, '.', NULL);
    long d = ooo_inside(T, k) ? ooo_num(T, k, 1, 2) : -1;
    if (d < 1 || d > 31 || ooo_month(T, k + 1) || ooo_mark(ooo_at(T, k + 1), ':'))
        return 0;
    k++;
    ooo_ordinal(T, &k);
    int y = ooo_year_after(T, &k);
    *e = (struct dexp){F_YMD, y, m, (int)d, -1, 0};
    return k;
}

static size_t ooo_plain_date(const struct toks *T, size_t i, struct dexp *e)
{
    size_t end;
    if ((end = ooo_iso(T, i, e)) || (end = ooo_numeric(T, i, e)) ||
        (end = ooo_day_month(T, i, e)) || (end = ooo_month_day(T, i, e)))
        return end;
    return 0;
}

/* After a weekday: a date, "the 12th" (a day of the month), or nothing. */
static size_t ooo_weekday(const struct toks *T, size_t i, struct dexp *e)
{
    static const char *const arts[] = {"the", "den", "le", "el", NULL};
    const struct word *w = ooo_find(WEEKDAYS, ooo_at(T, i));
    if (!w)
        return 0;
    int wd = w->v % 10;
    size_t k = i + 1;
    ooo_skip(T, &k, '.', NULL);
    ooo_skip(T, &k, ',', NULL);
    ooo_skip(T, &k, 0, arts);
    size_t end = ooo_inside(T, k) ? ooo_plain_date(T, k, e) : 0;
    if (end) {
        e->wd = wd;
        return end;
    }
    long d = ooo_inside(T, k) ? ooo_num(T, k, 1, 2) : -1;
    const struct tok *nx = ooo_at(T, k + 1);
    if (w->v < 10 && d >= 1 && d <= 31 &&
        (!nx || (nx->kind != K_NUM && !ooo_in(TIME_WORDS, nx) && !ooo_mark(nx, ':') &&
                 !ooo_mark(nx, '/')))) {
        size_t j = k + 1;
        ooo_ordinal(T, &j);
        *e = (struct dexp){F_DAY, 0, 0, (int)d, wd, 0};
        return j;
    }
    if (w->v >= 10)
        return 0;
    *e = (struct dexp){F_WEEKDAY, 0, 0, 0, wd, 0};
    return i + 1;
}

static size_t ooo_relative(const struct toks *T, size_t i, struct dexp *e)
{
    static const char *const one[] = {"tomorrow", "morgen", "demain", "manana", NULL};
    const struct tok *t = ooo_at(T, i);
    if (ooo_in(one, t)) {
        *e = (struct dexp){F_REL, 0, 0, 0, -1, 1};
        return i + 1;
    }
    if (t && t->kind == K_WORD && !strcmp(t->s, "ubermorgen")) {
        *e = (struct dexp){F_REL, 0, 0, 0, -1, 2};
        return i + 1;
    }
    return 0;
}

static size_t ooo_date_at(const struct toks *T, size_t i, struct dexp *e)
{
    size_t end;
    if ((end = ooo_weekday(T, i, e)) || (end = ooo_relative(T, i, e)))
        return end;
    return ooo_plain_date(T, i, e);
}

/* ---- which dates count ---------------------------------------------------- */

static bool ooo_day_number(const struct tok *t)
{
    return t && t->kind == K_NUM && t->num >= 1 && t->num <= 31;
}

/* A cue word in the sentence before start, or a range's joint right before
 * it with a first date or day number before the joint. */
static bool ooo_cued_before(const struct toks *T, size_t start, size_t prev_end)
{
    for (size_t j = start; j > 0 && start - j < CUE_WINDOW; j--) {
        if (T->t[j].brk)
            break;
        if (ooo_find(CUES, &T->t[j - 1]))
            return true;
    }
    if (start < 2 || T->t[start].brk)
        return false;
    const struct tok *join = &T->t[start - 1];
    if (!ooo_in(JOINS, join) && !ooo_mark(join, '-'))
        return false;
    size_t k = start - 2;
    if (ooo_mark(&T->t[k], '.') && k > 0)
        k--; /* "3.-14.1." */
    return prev_end == start - 1 || prev_end == k + 1 || ooo_day_number(&T->t[k]);
}

static bool ooo_cued_after(const struct toks *T, size_t end)
{
    for (size_t j = end; j < T->n && j < end + POST_WINDOW; j++) {
        if (T->t[j].brk)
            break;
        if (ooo_in(POST, &T->t[j]))
            return true;
    }
    return false;
}

/* ---- resolving against the mail's day ------------------------------------- */

static int32_t ooo_civil(int y, int m, int d)
{
    if (m < 1 || m > 12 || d < 1 || d > 31)
        return -1;
    int32_t day = wb_day_from_civil(y, m, d);
    int yy, mm, dd;
    wb_day_to_civil(day, &yy, &mm, &dd);
    return mm == m ? day : -1; /* 31 April and the like */
}

/* y 0: the first such day on or after today, when it is not too far. */
static int32_t ooo_ymd(int y, int m, int d, int32_t today)
{
    if (y)
        return ooo_civil(y, m, d);
    int ty, tm, td;
    wb_day_to_civil(today, &ty, &tm, &td);
    int32_t day = ooo_civil(ty, m, d);
    if (day < today)
        day = ooo_civil(ty + 1, m, d);
    return day >= 0 && day - today <= YEARLESS_DAYS ? day : -1;
}

static bool ooo_near(int32_t day, int32_t today, int wd)
{
    return day >= today && day - today <= AMBIG_DAYS && (wd < 0 || wb_day_weekday(day) == wd);
}

/* 01/12/2027 in English: the reading that lands soon (and on the weekday
 * named) wins; two that both could are no date. */
static int32_t ooo_ambiguous(const struct dexp *e, int32_t today, enum lang lang)
{
    int32_t eu = ooo_ymd(e->y, e->m, e->d, today);
    if (lang != L_EN)
        return eu;
    int32_t us = ooo_ymd(e->y, e->d, e->m, today);
    if (e->d == e->m || us < 0)
        return eu;
    if (eu < 0)
        return us;
    bool u = ooo_near(us, today, e->wd), x = ooo_near(eu, today, e->wd);
    return u == x ? -1 : u ? us : eu;
}

static int32_t ooo_resolve(const struct dexp *e, int32_t today, enum lang lang)
{
    switch (e->form) {
    case F_REL:
        return today + e->rel;
    case F_WEEKDAY: {
        int ahead = (e->wd - wb_day_weekday(today) + 7) % 7;
        return today + (ahead ? ahead : 7);
    }
    case F_DAY:
        for (int32_t k = 0; k <= AMBIG_DAYS; k++) {
            int y, m, d;
            wb_day_to_civil(today + k, &y, &m, &d);
            if (d == e->d && (e->wd < 0 || wb_day_weekday(today + k) == e->wd))
                return today + k;
        }
        return -1;
    case F_AMBIG:
        return ooo_ambiguous(e, today, lang);
    case F_YMD:
        break;
    }
    return ooo_ymd(e->y, e->m, e->d, today);
}

/* ---- the whole reply ------------------------------------------------------ */

static char *ooo_text(const char *subject, const char *text)
{
    size_t ns = subject ? strnlen(subject, WB_OOO_MAX_TEXT) : 0;
    size_t nt = text ? strnlen(text, WB_OOO_MAX_TEXT - ns) : 0;
    char *body = wb_xstrndup(text ? text : "", nt);
    char *own = wb_intent_strip(body, 60);
    free(body);
    struct wb_buf b;
    wb_buf_init(&b);
    wb_buf_append(&b, subject ? subject : "", ns);
    wb_buf_puts(&b, "\n\n");
    wb_buf_puts(&b, own);
    free(own);
    char *folded = ooo_fold(b.data, b.len);
    wb_buf_free(&b);
    return folded;
}

int wb_ooo_return_day(const char *subject, const char *text, int32_t today, int32_t *back_on)
{
    char *f = ooo_text(subject, text);
    struct toks T = {wb_xcalloc(MAX_TOKS, sizeof(struct tok)), 0};
    ooo_tokenize(f, &T);
    free(f);
    enum lang lang = ooo_language(&T);
    int32_t best = -1;
    size_t prev_end = (size_t)-1;
    for (size_t i = 0; i < T.n;) {
        struct dexp e;
        size_t end = ooo_date_at(&T, i, &e);
        if (!end) {
            i++;
            continue;
        }
        if (ooo_cued_before(&T, i, prev_end) || ooo_cued_after(&T, end)) {
            int32_t day = ooo_resolve(&e, today, lang);
            if (day >= today && day - today <= WB_OOO_HORIZON_DAYS && day > best)
                best = day;
        }
        prev_end = end;
        i = end;
    }
    free(T.t);
    if (best < 0)
        return -1;
    *back_on = best;
    return 0;
}

/* ---- the mail's own day ---------------------------------------------------- */

int wb_ooo_mail_day(const char *date, int32_t *day)
{
    static const char *const mon[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                      "jul", "aug", "sep", "oct", "nov", "dec"};
    if (!date)
        return -1;
    const char *p = date;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t name = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
    if (name && name <= 12 && p[name] == ',')
        p += name + 1; /* the day of the week */
    char *end;
    long d = strtol(p, &end, 10);
    if (end == p || d < 1 || d > 31)
        return -1;
    p = end;
    while (*p == ' ' || *p == '\t')
        p++;
    int m = 0;
    for (int k = 0; k < 12 && !m; k++)
        if (!strncasecmp(p, mon[k], 3))
            m = k + 1;
    if (!m)
        return -1;
    while (*p && *p != ' ' && *p != '\t')
        p++; /* a month written out in full */
    while (*p == ' ' || *p == '\t')
        p++;
    long y = strtol(p, &end, 10);
    if (end == p || *p == '-' || *p == '+')
        return -1;
    if (end - p <= 2) /* RFC 5322 obsolete years */
        y += y < 50 ? 2000 : 1900;
    else if (end - p == 3)
        y += 1900;
    int32_t v = y >= 1900 && y <= 2199 ? ooo_civil((int)y, m, (int)d) : -1;
    if (v < 0)
        return -1;
    *day = v;
    return 0;
}
