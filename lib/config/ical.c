/* Holiday calendars (RFC 5545). The content lines, components and date
 * values are read here, strictly and with positions: libical's own parser
 * takes broken input without a word (it files the problem as an
 * X-LIC-ERROR property, with no line) and check-config must say where a
 * file is wrong. The recurrence rules, the part worth not rewriting, are
 * expanded by libical's icalrecur. */
#include "warmbench/ical.h"
#include "warmbench/util.h"
#include <libical/ical.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Beyond this many occurrences a rule is not a holiday calendar's. */
#define IC_MAX_OCCURRENCES 100000
#define IC_MAX_DEPTH 8

int32_t wb_day_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void wb_day_to_civil(int32_t z, int *y, int *m, int *d)
{
    z += 719468;
    int era = (z >= 0 ? z : z - 146096) / 146097;
    int doe = z - era * 146097;
    int yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yoe + era * 400 + (*m <= 2);
}

int wb_day_weekday(int32_t day)
{
    return (int)(((day % 7) + 7 + 3) % 7); /* 1970-01-01 was a Thursday */
}

void wb_dayset_free(struct wb_dayset *s)
{
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

static void ic_add_day(struct wb_dayset *s, int32_t day)
{
    if ((s->n & (s->n + 1)) == 0 || s->n == 0)
        s->v = wb_xrealloc(s->v, (s->n * 2 + 2) * sizeof *s->v);
    s->v[s->n++] = day;
}

static int ic_cmp_day(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static void ic_sort_unique(struct wb_dayset *s)
{
    if (!s->n)
        return;
    qsort(s->v, s->n, sizeof *s->v, ic_cmp_day);
    size_t k = 1;
    for (size_t i = 1; i < s->n; i++)
        if (s->v[i] != s->v[k - 1])
            s->v[k++] = s->v[i];
    s->n = k;
}

/* ---- content lines ---------------------------------------------------- */

/* Where a piece of an unfolded line came from. */
struct ic_seg {
    size_t off; /* in the logical line */
    int line, col;
};

struct ic_line {
    char *buf; /* unfolded */
    size_t len;
    struct ic_seg *seg;
    size_t n_seg;
};

/* One content line split: copies, names in upper case. */
struct ic_param {
    char *name, *value; /* value: the first one, unquoted */
};

struct ic_prop {
    char *name;
    struct ic_param params[8];
    size_t n_params;
    char *value;
    size_t value_at; /* offset of the value in the line */
};
struct ic_state {
    const char *file;
    struct wb_diags *diags;
    int errors;
    int from_year, to_year;
    struct wb_dayset days;
    char *stack[IC_MAX_DEPTH];
    int depth;
    bool seen_calendar, calendar_done;
    /* The VEVENT being read. */
    struct ic_event {
        bool has_start, has_end, has_duration, has_rrule, cancelled;
        int32_t start, end;
        int span;
        struct icalrecurrencetype rrule;
        struct wb_dayset rdates, exdates;
        int line, col;         /* its BEGIN */
        int end_line, end_col; /* its DTEND */
    } ev;
    int stack_line[IC_MAX_DEPTH];
};

static void ic_where(const struct ic_line *l, size_t off, int *line, int *col)
{
    size_t i = 0;
    while (i + 1 < l->n_seg && l->seg[i + 1].off <= off)
        i++;
    *line = l->seg[i].line;
    *col = l->seg[i].col + (int)(off - l->seg[i].off);
}

static void ic_err(struct ic_state *S, const struct ic_line *l, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void ic_err(struct ic_state *S, const struct ic_line *l, size_t off, const char *fmt, ...)
{
    int line, col;
    ic_where(l, off, &line, &col);
    va_list ap;
    va_start(ap, fmt);
    char *msg = wb_xvasprintf(fmt, ap);
    va_end(ap);
    wb_diags_add(S->diags, S->file, line, col, "%s", msg);
    free(msg);
    S->errors++;
}

static bool ic_name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-';
}

static void ic_upper(char *s)
{
    for (; *s; s++)
        if (*s >= 'a' && *s <= 'z')
            *s = (char)(*s - 'a' + 'A');
}

/* A control character other than HTAB (RFC 5545 3.1: not in any value). */
static bool ic_ctl(unsigned char c)
{
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

static void ic_prop_free(struct ic_prop *p)
{
    free(p->name);
    for (size_t i = 0; i < p->n_params; i++) {
        free(p->params[i].name);
        free(p->params[i].value);
    }
    free(p->value);
    memset(p, 0, sizeof *p);
}

/* One parameter value at b + *i, plain or quoted; a copy, or NULL after
 * reporting. */
static char *ic_param_value(struct ic_state *S, const struct ic_line *l, size_t *i)
{
    const char *b = l->buf;
    size_t vs = *i, ve;
    if (b[*i] == '"') {
        const char *q = strchr(b + *i + 1, '"');
        if (!q) {
            ic_err(S, l, *i, "unclosed quoted parameter value");
            return NULL;
        }
        vs = *i + 1;
        ve = (size_t)(q - b);
        *i = ve + 1;
    } else {
        while (b[*i] && !strchr(";:,\"", b[*i]) && !ic_ctl((unsigned char)b[*i]))
            (*i)++;
        ve = *i;
        if (b[*i] == '"') {
            ic_err(S, l, *i, "'\"' inside an unquoted parameter value");
            return NULL;
        }
    }
    for (size_t k = vs; k < ve; k++)
        if (ic_ctl((unsigned char)b[k])) {
            ic_err(S, l, k, "control character in a parameter value");
            return NULL;
        }
    return wb_xstrndup(b + vs, ve - vs);
}

/* ;NAME=VALUE[,VALUE...] at b + *i (just past the ';'). */
static bool ic_param(struct ic_state *S, const struct ic_line *l, size_t *i, struct ic_prop *p)
{
    const char *b = l->buf;
    size_t at = *i;
    while (ic_name_char(b[*i]))
        (*i)++;
    if (*i == at || b[*i] != '=') {
        ic_err(S, l, *i, "expected a parameter NAME=VALUE");
        return false;
    }
    if (p->n_params == sizeof p->params / sizeof *p->params) {
        ic_err(S, l, at, "too many parameters");
        return false;
    }
    char *name = wb_xstrndup(b + at, *i - at), *first = NULL;
    (*i)++;
    do {
        if (first)
            (*i)++; /* the ',' */
        char *v = ic_param_value(S, l, i);
        if (!v) {
            free(name);
            free(first);
            return false;
        }
        if (first)
            free(v);
        else
            first = v;
    } while (b[*i] == ',');
    ic_upper(name);
    p->params[p->n_params++] = (struct ic_param){name, first};
    return true;
}

/* NAME *(;PARAM) : VALUE (RFC 5545 3.1). */
static bool ic_split(struct ic_state *S, const struct ic_line *l, struct ic_prop *p)
{
    const char *b = l->buf;
    size_t i = 0;
    memset(p, 0, sizeof *p);
    while (ic_name_char(b[i]))
        i++;
    if (i == 0) {
        ic_err(S, l, 0, "expected a property name (letters, digits and -)");
        return false;
    }
    p->name = wb_xstrndup(b, i);
    ic_upper(p->name);
    while (b[i] == ';') {
        i++;
        if (!ic_param(S, l, &i, p))
            return false;
    }
    if (b[i] != ':') {
        if (b[i])
            ic_err(S, l, i, "unexpected '%c' (expected ';' or ':')", b[i]);
        else
            ic_err(S, l, i, "the line ends before ':' and its value");
        return false;
    }
    p->value_at = i + 1;
    for (size_t k = p->value_at; b[k]; k++)
        if (ic_ctl((unsigned char)b[k])) {
            ic_err(S, l, k, "control character in a value");
            return false;
        }
    p->value = wb_xstrdup(b + p->value_at);
    return true;
}

static const char *ic_param_get(const struct ic_prop *p, const char *name)
{
    for (size_t i = 0; i < p->n_params; i++)
        if (!strcmp(p->params[i].name, name))
            return p->params[i].value;
    return NULL;
}

/* ---- values --------------------------------------------------------------- */

/* YYYYMMDD at s (8 digits, a real date); the caller knows what follows. */
static bool ic_date8(const char *s, int32_t *out)
{
    int v[8];
    for (int i = 0; i < 8; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v[i] = s[i] - '0';
    }
    int y = v[0] * 1000 + v[1] * 100 + v[2] * 10 + v[3], m = v[4] * 10 + v[5],
        d = v[6] * 10 + v[7];
    if (y < 1583 || m < 1 || m > 12 || d < 1 || d > 31)
        return false;
    int32_t day = wb_day_from_civil(y, m, d);
    int yy, mm, dd;
    wb_day_to_civil(day, &yy, &mm, &dd);
    if (mm != m) /* 31 April and the like */
        return false;
    *out = day;
    return true;
}

/* A VALUE parameter that leaves the property a date (absent or DATE). */
static bool ic_value_is_date(struct ic_state *S, const struct ic_line *l, const struct ic_prop *p)
{
    const char *v = ic_param_get(p, "VALUE");
    if (!v || !strcasecmp(v, "DATE"))
        return true;
    ic_err(S, l, 0, "%s;VALUE=%s: a holiday is an all-day event (%s;VALUE=DATE:YYYYMMDD)",
           p->name, v, p->name);
    return false;
}

/* One date at p->value + off, ending at a ',' or the end. */
static bool ic_one_date(struct ic_state *S, const struct ic_line *l, const struct ic_prop *p,
                        size_t off, int32_t *out)
{
    const char *s = p->value + off;
    size_t n = strcspn(s, ",");
    if (n > 8 && s[8] == 'T') {
        ic_err(S, l, p->value_at + off,
               "%s is a date-time: a holiday is an all-day event (%s;VALUE=DATE:YYYYMMDD)",
               p->name, p->name);
        return false;
    }
    if (n != 8 || !ic_date8(s, out)) {
        ic_err(S, l, p->value_at + off, "bad date \"%.*s\" in %s (use YYYYMMDD)", (int)n, s,
               p->name);
        return false;
    }
    return true;
}

static bool ic_date_prop(struct ic_state *S, const struct ic_line *l, const struct ic_prop *p,
                         int32_t *out)
{
    if (!ic_value_is_date(S, l, p))
        return false;
    if (strchr(p->value, ',')) {
        ic_err(S, l, p->value_at, "%s takes one date", p->name);
        return false;
    }
    return ic_one_date(S, l, p, 0, out);
}

/* RDATE / EXDATE: dates, comma-separated (periods are not holidays). */
static bool ic_date_list(struct ic_state *S, const struct ic_line *l, const struct ic_prop *p,
                         struct wb_dayset *out)
{
    if (!ic_value_is_date(S, l, p))
        return false;
    for (size_t off = 0;;) {
        int32_t d;
        if (!ic_one_date(S, l, p, off, &d))
            return false;
        ic_add_day(out, d);
        size_t n = strcspn(p->value + off, ",");
        if (!p->value[off + n])
            return true;
        off += n + 1;
    }
}

/* DURATION in whole days: P<n>D or P<n>W. */
static bool ic_duration(struct ic_state *S, const struct ic_line *l, const struct ic_prop *p,
                        int *days)
{
    const char *s = p->value + (p->value[0] == '+');
    char *end = NULL;
    long n = s[0] == 'P' && s[1] >= '0' && s[1] <= '9' ? strtol(s + 1, &end, 10) : -1;
    if (n > 0 && n <= 366 && end && (*end == 'D' || *end == 'W') && !end[1] &&
        (*end == 'D' || n <= 52)) {
        *days = (int)(*end == 'W' ? n * 7 : n);
        return true;
    }
    ic_err(S, l, p->value_at, "DURATION \"%s\" is not whole days (use P1D, P2D or P1W)", p->value);
    return false;
}

/* A date as libical's iterator wants it (icaltime_null_date marks the
 * time fields as absent, which the iterator does not expect). */
static struct icaltimetype ic_icaldate(int32_t day)
{
    struct icaltimetype t;
    memset(&t, 0, sizeof t);
    wb_day_to_civil(day, &t.year, &t.month, &t.day);
    t.is_date = 1;
    return t;
}

static bool ic_rrule(struct ic_state *S, const struct ic_line *l, const struct ic_prop *p,
                     struct icalrecurrencetype *r)
{
    icalerror_clear_errno();
    /* libical reports a bad rule through icalerrno and may print it on
     * stderr when errors are not set to be ignored. */
    icalerrorstate es = icalerror_get_error_state(ICAL_MALFORMEDDATA_ERROR);
    icalerror_set_error_state(ICAL_MALFORMEDDATA_ERROR, ICAL_ERROR_NONFATAL);
    *r = icalrecurrencetype_from_string(p->value);
    icalerror_set_error_state(ICAL_MALFORMEDDATA_ERROR, es);
    /* Some bad parts (BYMONTH=13) pass the parser and fail the iterator. */
    icalrecur_iterator *it = icalerrno == ICAL_NO_ERROR && r->freq != ICAL_NO_RECURRENCE
                                 ? icalrecur_iterator_new(*r, ic_icaldate(wb_day_from_civil(2001, 1, 1)))
                                 : NULL;
    if (it)
        icalrecur_iterator_free(it);
    if (!it) {
        ic_err(S, l, p->value_at, "bad RRULE \"%s\"", p->value);
        icalerror_clear_errno();
        return false;
    }
    if (r->freq != ICAL_YEARLY_RECURRENCE) {
        ic_err(S, l, p->value_at, "only FREQ=YEARLY recurrences make holidays (RRULE \"%s\")",
               p->value);
        return false;
    }
    return true;
}

/* ---- events ----------------------------------------------------------------- */

static void ic_event_reset(struct ic_state *S, int line, int col)
{
    wb_dayset_free(&S->ev.rdates);
    wb_dayset_free(&S->ev.exdates);
    memset(&S->ev, 0, sizeof S->ev);
    S->ev.span = 1;
    S->ev.line = line;
    S->ev.col = col;
}

/* A property once per event. */
static bool ic_once(struct ic_state *S, const struct ic_line *l, const struct ic_prop *p,
                    bool *seen)
{
    if (*seen) {
        ic_err(S, l, 0, "%s given twice in one VEVENT", p->name);
        return false;
    }
    *seen = true;
    return true;
}

static void ic_event_prop(struct ic_state *S, const struct ic_line *l, const struct ic_prop *p)
{
    struct ic_event *e = &S->ev;
    if (!strcmp(p->name, "DTSTART")) {
        if (ic_once(S, l, p, &e->has_start) && !ic_date_prop(S, l, p, &e->start))
            e->cancelled = true;
    } else if (!strcmp(p->name, "DTEND")) {
        if (ic_once(S, l, p, &e->has_end) && !ic_date_prop(S, l, p, &e->end))
            e->cancelled = true;
        ic_where(l, 0, &e->end_line, &e->end_col);
    } else if (!strcmp(p->name, "DURATION")) {
        if (ic_once(S, l, p, &e->has_duration) && !ic_duration(S, l, p, &e->span))
            e->cancelled = true;
    } else if (!strcmp(p->name, "RRULE")) {
        if (ic_once(S, l, p, &e->has_rrule) && !ic_rrule(S, l, p, &e->rrule))
            e->cancelled = true;
    } else if (!strcmp(p->name, "RDATE")) {
        ic_date_list(S, l, p, &e->rdates);
    } else if (!strcmp(p->name, "EXDATE")) {
        ic_date_list(S, l, p, &e->exdates);
    } else if (!strcmp(p->name, "STATUS") && !strcasecmp(p->value, "CANCELLED")) {
        e->cancelled = true; /* a cancelled holiday closes nothing */
    }
}

static bool ic_excluded(const struct ic_event *e, int32_t day)
{
    for (size_t i = 0; i < e->exdates.n; i++)
        if (e->exdates.v[i] == day)
            return true;
    return false;
}

/* One occurrence: its span of days, those inside the years asked for. */
static void ic_occurrence(struct ic_state *S, int32_t start, struct wb_dayset *out)
{
    int32_t lo = wb_day_from_civil(S->from_year, 1, 1), hi = wb_day_from_civil(S->to_year, 12, 31);
    if (ic_excluded(&S->ev, start))
        return;
    for (int i = 0; i < S->ev.span; i++)
        if (start + i >= lo && start + i <= hi)
            ic_add_day(out, start + i);
}

/* The rule's occurrences up to the last year asked for. */
static bool ic_expand_rule(struct ic_state *S, const struct ic_line *l, struct wb_dayset *out)
{
    icalrecur_iterator *it = icalrecur_iterator_new(S->ev.rrule, ic_icaldate(S->ev.start));
    if (!it) {
        ic_err(S, l, 0, "the VEVENT's RRULE cannot be expanded from its DTSTART");
        icalerror_clear_errno();
        return false;
    }
    bool ok = true;
    for (long n = 0;; n++) {
        struct icaltimetype t = icalrecur_iterator_next(it);
        if (icaltime_is_null_time(t) || t.year > S->to_year)
            break;
        if (n == IC_MAX_OCCURRENCES) {
            ic_err(S, l, 0, "the VEVENT's RRULE has more than %d occurrences",
                   IC_MAX_OCCURRENCES);
            ok = false;
            break;
        }
        ic_occurrence(S, wb_day_from_civil(t.year, t.month, t.day), out);
    }
    icalrecur_iterator_free(it);
    return ok;
}

/* END:VEVENT: the event's days join the calendar's. */
static void ic_event_end(struct ic_state *S, const struct ic_line *l)
{
    struct ic_event *e = &S->ev;
    if (!e->has_start) {
        ic_err(S, l, 0, "VEVENT (from line %d) has no DTSTART", e->line);
        return;
    }
    if (e->cancelled)
        return;
    if (e->has_end && e->has_duration) {
        ic_err(S, l, 0, "VEVENT (from line %d) has both DTEND and DURATION", e->line);
        return;
    }
    if (e->has_end) {
        if (e->end <= e->start) {
            wb_diags_add(S->diags, S->file, e->end_line, e->end_col,
                         "DTEND must be after DTSTART (DTEND is the day after the last one)");
            S->errors++;
            return;
        }
        if (e->end - e->start > 366) {
            wb_diags_add(S->diags, S->file, e->end_line, e->end_col,
                         "a holiday longer than a year is not a holiday");
            S->errors++;
            return;
        }
        e->span = (int)(e->end - e->start);
    }
    struct wb_dayset days = {0};
    if (e->has_rrule ? ic_expand_rule(S, l, &days) : true) {
        if (!e->has_rrule)
            ic_occurrence(S, e->start, &days);
        for (size_t i = 0; i < e->rdates.n; i++)
            ic_occurrence(S, e->rdates.v[i], &days);
        for (size_t i = 0; i < days.n; i++)
            ic_add_day(&S->days, days.v[i]);
    }
    wb_dayset_free(&days);
}

/* ---- components ------------------------------------------------------------- */

static bool ic_top_is(const struct ic_state *S, const char *name)
{
    return S->depth > 0 && !strcmp(S->stack[S->depth - 1], name);
}

static void ic_begin(struct ic_state *S, const struct ic_line *l, const struct ic_prop *p)
{
    char *name = wb_xstrdup(p->value);
    ic_upper(name);
    int line, col;
    ic_where(l, 0, &line, &col);
    if (S->depth == 0 && strcmp(name, "VCALENDAR")) {
        ic_err(S, l, p->value_at, "expected BEGIN:VCALENDAR, found BEGIN:%s", p->value);
    } else if (S->depth > 0 && !strcmp(name, "VCALENDAR")) {
        ic_err(S, l, p->value_at, "BEGIN:VCALENDAR inside BEGIN:%s (line %d)",
               S->stack[S->depth - 1], S->stack_line[S->depth - 1]);
    } else if (!name[0] || strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != strlen(name)) {
        ic_err(S, l, p->value_at, "bad component name \"%s\"", p->value);
    } else if (S->depth == IC_MAX_DEPTH) {
        ic_err(S, l, 0, "components nested deeper than %d", IC_MAX_DEPTH);
    } else {
        if (S->depth == 1 && !strcmp(name, "VEVENT"))
            ic_event_reset(S, line, col);
        S->stack_line[S->depth] = line;
        S->stack[S->depth++] = name;
        S->seen_calendar = true;
        return;
    }
    free(name);
}

static void ic_end(struct ic_state *S, const struct ic_line *l, const struct ic_prop *p)
{
    if (S->depth == 0) {
        ic_err(S, l, 0, "END:%s without a BEGIN", p->value);
        return;
    }
    char *top = S->stack[S->depth - 1];
    if (strcasecmp(top, p->value)) {
        ic_err(S, l, p->value_at, "END:%s does not close BEGIN:%s (line %d)", p->value, top,
               S->stack_line[S->depth - 1]);
        return;
    }
    if (S->depth == 2 && !strcmp(top, "VEVENT"))
        ic_event_end(S, l);
    free(top);
    S->depth--;
}

static void ic_property(struct ic_state *S, const struct ic_line *l, const struct ic_prop *p)
{
    if (!strcmp(p->name, "BEGIN"))
        ic_begin(S, l, p);
    else if (!strcmp(p->name, "END"))
        ic_end(S, l, p);
    else if (S->depth == 0)
        ic_err(S, l, 0, "%s outside BEGIN:VCALENDAR", p->name);
    else if (S->depth == 2 && ic_top_is(S, "VEVENT"))
        ic_event_prop(S, l, p);
    else if (S->depth == 1 && !strcmp(p->name, "VERSION") && strcmp(p->value, "2.0"))
        ic_err(S, l, p->value_at, "VERSION %s (only iCalendar 2.0 is read)", p->value);
}

/* ---- lines -------------------------------------------------------------------- */

static void ic_line_add(struct ic_line *l, const char *s, size_t n, int line, int col)
{
    l->seg = wb_xrealloc(l->seg, (l->n_seg + 1) * sizeof *l->seg);
    l->seg[l->n_seg++] = (struct ic_seg){l->len, line, col};
    l->buf = wb_xrealloc(l->buf, l->len + n + 1);
    memcpy(l->buf + l->len, s, n);
    l->len += n;
    l->buf[l->len] = '\0';
}

static void ic_line_clear(struct ic_line *l)
{
    l->len = 0;
    l->n_seg = 0;
    if (l->buf)
        l->buf[0] = '\0';
}

static void ic_line_done(struct ic_state *S, struct ic_line *l)
{
    if (l->n_seg == 0 || l->len == 0) {
        ic_line_clear(l);
        return;
    }
    struct ic_prop p;
    if (ic_split(S, l, &p))
        ic_property(S, l, &p);
    ic_prop_free(&p);
    ic_line_clear(l);
}

/* Physical lines end at LF (CRLF or LF); one that starts with a space or
 * a tab continues the line before it (unfolding, RFC 5545 3.1). */
static void ic_read_lines(struct ic_state *S, const char *text, size_t len)
{
    struct ic_line l = {0};
    size_t i = 0;
    if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3))
        i = 3; /* a UTF-8 byte order mark, as some exporters write */
    for (int line = 1; i < len; line++) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - (text + i)) : len - i;
        const char *s = text + i;
        i += n + (nl != NULL);
        if (n && s[n - 1] == '\r')
            n--;
        if (memchr(s, '\0', n)) {
            wb_diags_add(S->diags, S->file, line, (int)((const char *)memchr(s, '\0', n) - s) + 1,
                         "NUL byte: not a text file");
            S->errors++;
            break;
        }
        if (n && (s[0] == ' ' || s[0] == '\t')) {
            if (l.n_seg == 0) {
                wb_diags_add(S->diags, S->file, line, 1, "a continuation line with no line before");
                S->errors++;
                continue;
            }
            ic_line_add(&l, s + 1, n - 1, line, 2);
            continue;
        }
        ic_line_done(S, &l);
        if (n)
            ic_line_add(&l, s, n, line, 1);
        if (S->errors > 50)
            break; /* enough to go on with */
    }
    ic_line_done(S, &l);
    free(l.buf);
    free(l.seg);
}

int wb_ical_closed_days(const char *text, size_t len, const char *file, int from_year,
                        int to_year, struct wb_dayset *out, struct wb_diags *diags)
{
    struct ic_state S = {.file = file, .diags = diags, .from_year = from_year,
                         .to_year = to_year};
    ic_read_lines(&S, text, len);
    if (!S.errors && !S.seen_calendar) {
        wb_diags_add(diags, file, 1, 1, "not an iCalendar file (no BEGIN:VCALENDAR)");
        S.errors++;
    }
    if (!S.errors && S.depth > 0) {
        wb_diags_add(diags, file, S.stack_line[S.depth - 1], 1,
                     "BEGIN:%s is never closed (END:%s missing)", S.stack[S.depth - 1],
                     S.stack[S.depth - 1]);
        S.errors++;
    }
    for (int i = 0; i < S.depth; i++)
        free(S.stack[i]);
    ic_event_reset(&S, 0, 0);
    if (S.errors) {
        wb_dayset_free(&S.days);
        return -1;
    }
    for (size_t i = 0; i < S.days.n; i++)
        ic_add_day(out, S.days.v[i]);
    wb_dayset_free(&S.days);
    ic_sort_unique(out);
    return 0;
}
