/* POST /ats/events: strict validation (pure) and the one statement that
 * stores an event. See ats_in.h for the contract. */
#include "warmbench/ats_in.h"
#include "warmbench/log.h"
#include "warmbench/pgtext.h"
#include "warmbench/util.h"
#include "warmbench/webhook_sign.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One function per event type, all with the same parameters. */
static const struct {
    const char *type, *sql;
} ats_statements[] = {
    {"candidate.rejected",
     "SELECT status, enroll FROM wb_ats_rejected($1, $2::jsonb, $3::text[], $4)"},
    {"candidate.applied",
     "SELECT status, enroll FROM wb_ats_applied($1, $2::jsonb, $3::text[], $4)"},
    {"candidate.hired", "SELECT status, enroll FROM wb_ats_hired($1, $2::jsonb, $3::text[], $4)"},
};

const char *wb_ats_event_sql(const char *type)
{
    for (size_t i = 0; i < sizeof ats_statements / sizeof ats_statements[0]; i++)
        if (type && !strcmp(type, ats_statements[i].type))
            return ats_statements[i].sql;
    return NULL;
}

/* ---- validation (pure) ---- */

static void ats_fail(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void ats_fail(char *err, size_t errsz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
}

/* Characters (code points) of valid UTF-8, as Jansson guarantees. */
static size_t ats_nchars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static bool ats_has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            return true;
    return false;
}

/* The characters import's email_re excludes from both parts ('.' is
 * allowed in the local part, separates labels in the domain). */
static bool ats_email_char_ok(unsigned char c)
{
    return c > 0x20 && c != 0x7f && !strchr("@<>()[],;:\"\\", c);
}

bool wb_ats_email_ok(const char *s, size_t n)
{
    if (n == 0 || n > 254)
        return false;
    const char *at = memchr(s, '@', n);
    if (!at || at == s)
        return false;
    for (const char *p = s; p < at; p++)
        if (!ats_email_char_ok((unsigned char)*p))
            return false;
    /* Domain: at least two non-empty labels separated by dots. */
    size_t labels = 0, len = 0;
    for (const char *p = at + 1; p <= s + n; p++) {
        if (p == s + n || *p == '.') {
            if (len == 0)
                return false;
            labels++;
            len = 0;
            continue;
        }
        if (!ats_email_char_ok((unsigned char)*p))
            return false;
        len++;
    }
    return labels >= 2;
}

int wb_ats_text_ok(const char *s, size_t max, const char *path, char *err, size_t errsz)
{
    if (ats_has_control(s)) {
        ats_fail(err, errsz, "%s: control characters are not allowed", path);
        return -1;
    }
    if (ats_nchars(s) > max) {
        ats_fail(err, errsz, "%s: longer than %zu characters", path, max);
        return -1;
    }
    return 0;
}

/* A string field: present (or not when optional), a string, no control
 * characters, at most max characters. */
static int ats_str_field(json_t *obj, const char *key, const char *path, bool required, size_t max,
                         const char **out, char *err, size_t errsz)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v) {
        if (required) {
            ats_fail(err, errsz, "%s: required", path);
            return -1;
        }
        return 0;
    }
    if (!json_is_string(v)) {
        ats_fail(err, errsz, "%s: must be a string", path);
        return -1;
    }
    const char *s = json_string_value(v);
    if (wb_ats_text_ok(s, max, path, err, errsz) < 0)
        return -1;
    *out = s;
    return 0;
}

/* An optional array of non-empty strings; appended to (*v, *n) when v. */
static int ats_str_array(json_t *obj, const char *key, const char *path, char ***v, size_t *n,
                         char *err, size_t errsz)
{
    json_t *a = json_object_get(obj, key);
    if (!a)
        return 0;
    if (!json_is_array(a)) {
        ats_fail(err, errsz, "%s: must be an array of strings", path);
        return -1;
    }
    if (json_array_size(a) > 100) {
        ats_fail(err, errsz, "%s: more than 100 items", path);
        return -1;
    }
    size_t i;
    json_t *x;
    json_array_foreach(a, i, x) {
        if (!json_is_string(x)) {
            ats_fail(err, errsz, "%s[%zu]: must be a string", path, i);
            return -1;
        }
        const char *s = json_string_value(x);
        if (!*s || ats_has_control(s) || ats_nchars(s) > 200) {
            ats_fail(err, errsz, "%s[%zu]: must be 1 to 200 characters without control characters",
                     path, i);
            return -1;
        }
        if (v) {
            *v = wb_xrealloc(*v, (*n + 1) * sizeof **v);
            (*v)[(*n)++] = wb_xstrdup(s);
        }
    }
    return 0;
}

static int ats_known_keys(json_t *obj, const char *prefix, const char *const *keys, char *err,
                          size_t errsz)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        (void)v;
        bool ok = false;
        for (size_t i = 0; keys[i] && !ok; i++)
            ok = !strcmp(k, keys[i]);
        if (!ok) {
            ats_fail(err, errsz, "%s%s: unknown field", prefix, k);
            return -1;
        }
    }
    return 0;
}

static const char *const ats_top_keys[] = {"type", "id", "candidate", "tags", "enroll", NULL};
static const char *const ats_cand_keys[] = {"email", "first_name", "last_name", "title",
                                        "company", "location", "timezone", "tags",
                                        "skills", "consent", "source", NULL};
static const char *const ats_cand_strings[] = {"first_name", "last_name", "title", "company",
                                           "location", "timezone", "source", NULL};

static int ats_parse_candidate(json_t *c, struct wb_ats_event *ev, char *err, size_t errsz)
{
    if (!json_is_object(c)) {
        ats_fail(err, errsz, "candidate: %s", c ? "must be an object" : "required");
        return -1;
    }
    if (ats_known_keys(c, "candidate.", ats_cand_keys, err, errsz) < 0)
        return -1;
    const char *email;
    if (ats_str_field(c, "email", "candidate.email", true, 254 + 64, &email, err, errsz) < 0)
        return -1;
    size_t b = strspn(email, " "), n = strlen(email + b);
    while (n && email[b + n - 1] == ' ')
        n--;
    if (!wb_ats_email_ok(email + b, n)) {
        ats_fail(err, errsz, "candidate.email: invalid email address");
        return -1;
    }
    ev->email = wb_xstrndup(email + b, n);
    for (size_t i = 0; ats_cand_strings[i]; i++) {
        char path[64];
        snprintf(path, sizeof path, "candidate.%s", ats_cand_strings[i]);
        const char *s;
        if (ats_str_field(c, ats_cand_strings[i], path, false, WB_ATS_FIELD_MAX, &s, err,
                          errsz) < 0)
            return -1;
    }
    const char *consent;
    if (ats_str_field(c, "consent", "candidate.consent", false, 100, &consent, err, errsz) < 0)
        return -1;
    if (consent && strcmp(consent, "opt_in") && strcmp(consent, "legitimate_interest")) {
        ats_fail(err, errsz, "candidate.consent: must be opt_in or legitimate_interest");
        return -1;
    }
    if (ats_str_array(c, "tags", "candidate.tags", &ev->tags, &ev->ntags, err, errsz) < 0 ||
        ats_str_array(c, "skills", "candidate.skills", NULL, NULL, err, errsz) < 0)
        return -1;
    ev->candidate = c;
    return 0;
}

int wb_ats_parse(const char *body, size_t len, struct wb_ats_event *ev, char *err, size_t errsz)
{
    memset(ev, 0, sizeof *ev);
    json_error_t je;
    ev->root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!ev->root) {
        ats_fail(err, errsz, "invalid JSON: %s", je.text);
        return -1;
    }
    json_t *r = ev->root;
    if (!json_is_object(r)) {
        ats_fail(err, errsz, "the body must be a JSON object");
        goto bad;
    }
    if (ats_known_keys(r, "", ats_top_keys, err, errsz) < 0 ||
        ats_str_field(r, "type", "type", true, 100, &ev->type, err, errsz) < 0)
        goto bad;
    if (strcmp(ev->type, "candidate.rejected") && strcmp(ev->type, "candidate.applied") &&
        strcmp(ev->type, "candidate.hired")) {
        ats_fail(err, errsz,
                 "type: must be candidate.rejected, candidate.applied or candidate.hired");
        goto bad;
    }
    if (ats_str_field(r, "id", "id", true, WB_ATS_ID_MAX, &ev->id, err, errsz) < 0)
        goto bad;
    if (!*ev->id) {
        ats_fail(err, errsz, "id: must not be empty");
        goto bad;
    }
    if (ats_parse_candidate(json_object_get(r, "candidate"), ev, err, errsz) < 0 ||
        ats_str_array(r, "tags", "tags", &ev->tags, &ev->ntags, err, errsz) < 0)
        goto bad;
    bool rejected = !strcmp(ev->type, "candidate.rejected");
    if (ats_str_field(r, "enroll", "enroll", rejected, 200, &ev->sequence, err, errsz) < 0)
        goto bad;
    if (ev->sequence && !*ev->sequence) {
        ats_fail(err, errsz, "enroll: must not be empty");
        goto bad;
    }
    return 0;
bad:
    wb_ats_event_free(ev);
    return -1;
}

void wb_ats_event_free(struct wb_ats_event *ev)
{
    for (size_t i = 0; i < ev->ntags; i++)
        free(ev->tags[i]);
    free(ev->tags);
    free(ev->email);
    json_decref(ev->root);
    memset(ev, 0, sizeof *ev);
}

char *wb_ats_candidate_json(const struct wb_ats_event *ev)
{
    json_t *c = json_deep_copy(ev->candidate);
    json_object_set_new(c, "email", json_string(ev->email));
    json_object_del(c, "tags"); /* merged into p_tags */
    char *s = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    return s;
}

/* ---- the request ---- */

static char *ats_error_body(const char *msg)
{
    json_t *o = json_pack("{ss}", "error", msg);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

struct ats_pending {
    wb_ats_done_fn done;
    void *ud;
};

static void ats_on_result(PGresult *res, void *ud)
{
    struct ats_pending *p = ud;
    int status = 503;
    char *body = NULL;
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        json_t *o = json_pack("{ss}", "status", PQgetvalue(res, 0, 0));
        if (!PQgetisnull(res, 0, 1))
            json_object_set_new(o, "enroll", json_string(PQgetvalue(res, 0, 1)));
        body = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        status = 202;
    } else if (res && PQresultStatus(res) == PGRES_FATAL_ERROR) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        if (state && (!strcmp(state, "WB400") || !strcmp(state, "WB404"))) {
            status = !strcmp(state, "WB400") ? 400 : 404;
            body = ats_error_body(msg ? msg : "rejected");
        } else {
            wb_warn("ats events: storing failed: %s", PQresultErrorMessage(res));
        }
    }
    if (!body)
        body = ats_error_body("unavailable, try again");
    p->done(status, body, p->ud);
    free(body);
    free(p);
}

/* The answers given before any statement runs: 413, 401, 400.
 * Returns 0 with *ev parsed when the event is to be stored. */
static int ats_precheck(const struct wb_config *cfg, const struct wb_ats_request *rq,
                        struct wb_ats_event *ev, int *status, char **out)
{
    if (rq->too_big) {
        *status = 413;
        *out = ats_error_body("body too large");
        return -1;
    }
    if (!rq->sig || wb_webhook_verify(cfg->ats.secret, cfg->ats.secret_len, rq->sig, rq->body,
                                      rq->len, rq->now, WB_ATS_TOLERANCE_S) != WB_SIG_OK) {
        *status = 401;
        *out = ats_error_body("bad signature");
        return -1;
    }
    char err[256];
    if (wb_ats_parse(rq->body, rq->len, ev, err, sizeof err) < 0) {
        *status = 400;
        *out = ats_error_body(err);
        return -1;
    }
    return 0;
}

int wb_ats_in_store(const struct wb_config *cfg, struct wb_pg *pg, struct wb_ats_event *ev,
                    wb_ats_done_fn done, void *ud, int *status, char **out)
{
    if (cfg && ev->sequence && !wb_config_sequence(cfg, ev->sequence)) {
        char *msg = wb_xasprintf("unknown sequence \"%s\"", ev->sequence);
        *status = 404;
        *out = ats_error_body(msg);
        free(msg);
        return 0;
    }
    /* The enrollment, when the event names a sequence, is made by the
     * function from the definition the daemon stored for it. */
    char *cand = wb_ats_candidate_json(ev);
    char *tags = wb_pg_array_str(ev->tags, ev->ntags, 0);
    const char *p[] = {ev->id, cand, tags, ev->sequence};
    struct ats_pending *pd = wb_xcalloc(1, sizeof *pd);
    pd->done = done;
    pd->ud = ud;
    int rc = wb_pg_query(pg, wb_ats_event_sql(ev->type), 4, p, ats_on_result, pd);
    free(cand);
    free(tags);
    if (rc < 0) {
        free(pd);
        *status = 503;
        *out = ats_error_body("database unavailable, try again");
        return 0;
    }
    return 1;
}

int wb_ats_in_handle(const struct wb_config *cfg, struct wb_pg *pg,
                     const struct wb_ats_request *rq, int *status, char **out)
{
    struct wb_ats_event ev;
    if (ats_precheck(cfg, rq, &ev, status, out) < 0)
        return 0;
    int rc = wb_ats_in_store(cfg, pg, &ev, rq->done, rq->ud, status, out);
    wb_ats_event_free(&ev);
    return rc;
}
