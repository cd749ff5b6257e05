/* preview and test-send: see preview_cli.h. */
#include "warmbench/preview_cli.h"
#include "warmbench/db.h"
#include "warmbench/exitcodes.h"
#include "warmbench/mime.h"
#include "warmbench/pgtext.h"
#include "warmbench/render.h"
#include "warmbench/smtp.h"
#include "warmbench/util.h"
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EXIT_CANTCREAT 73

/* The candidate as the claim reads them (wb_claim's columns). */
static const char cand_sql[] =
    "SELECT id, email, first_name, last_name, title, company, location, attrs::text, consent,"
    " source FROM candidates WHERE lower(email) = lower($1)";

/* Step 1's Message-ID, for a later step that threads on it. */
static const char thread_sql[] =
    "SELECT m.message_id FROM messages m JOIN candidates c ON c.id = m.candidate_id "
    "WHERE lower(c.email) = lower($1) AND m.sequence_id = $2 AND m.step = 1 "
    "AND m.message_id IS NOT NULL ORDER BY m.id DESC LIMIT 1";

static char *pv_col(PGresult *r, int c)
{
    return PQgetisnull(r, 0, c) ? NULL : wb_xstrdup(PQgetvalue(r, 0, c));
}

/* 0 loaded, 1 not in the pool, -1 database trouble (said). */
static int pv_load(PGconn *c, const char *email, struct wb_claimed *cl)
{
    const char *p[] = {email};
    PGresult *r = wb_db_exec(c, PGRES_TUPLES_OK, "reading the candidate", cand_sql, 1, p);
    if (!r)
        return -1;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return 1;
    }
    cl->candidate_id = atoll(PQgetvalue(r, 0, 0));
    cl->email = pv_col(r, 1);
    cl->first_name = pv_col(r, 2);
    cl->last_name = pv_col(r, 3);
    cl->title = pv_col(r, 4);
    cl->company = pv_col(r, 5);
    cl->location = pv_col(r, 6);
    cl->attrs = json_loads(PQgetvalue(r, 0, 7), 0, NULL);
    if (!json_is_object(cl->attrs)) {
        json_decref(cl->attrs);
        cl->attrs = json_object();
    }
    cl->consent = pv_col(r, 8);
    cl->source = pv_col(r, 9);
    PQclear(r);
    return 0;
}

/* Who sends step i to this candidate: the step's sender, or for an owner
 * step the sender the candidate's owner names (id or address), else the
 * fallback, as the claim decides (wb_step_sender in SQL). */
static const struct wb_sender *pv_sender(const struct wb_config *cfg,
                                         const struct wb_sequence *s, size_t i,
                                         const struct wb_claimed *cl)
{
    const char *fallback = NULL;
    const char *id = wb_step_sender(s, i, &fallback);
    if (id)
        return wb_config_sender(cfg, id);
    const char *owner = json_string_value(json_object_get(cl->attrs, "owner"));
    for (size_t k = 0; owner && k < cfg->n_senders; k++)
        if (!strcasecmp(cfg->senders[k].id, owner) || !strcasecmp(cfg->senders[k].from_email, owner))
            return &cfg->senders[k];
    return fallback ? wb_config_sender(cfg, fallback) : NULL;
}

static char *pv_message_id(const struct wb_sender *snd)
{
    unsigned char rnd[8];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        memset(rnd, 0, sizeof rnd);
    const char *at = strchr(snd->from_email, '@');
    return wb_xasprintf("wb.preview.%02x%02x%02x%02x%02x%02x%02x%02x@%s", rnd[0], rnd[1], rnd[2],
                        rnd[3], rnd[4], rnd[5], rnd[6], rnd[7], at ? at + 1 : "localhost");
}

struct pv_warn {
    FILE *err;
    const char *email;
    int n;
};

static void pv_on_empty(const char *name, const char *file, int line, int col, void *ud)
{
    struct pv_warn *w = ud;
    fprintf(w->err, "%s:%d:%d: warning: \"%s\" renders empty for %s and has no fallback\n", file,
            line, col, name, w->email);
    w->n++;
}

/* Renders step (1-based) of s for cl: 0, or an exit code (said). */
static int pv_render(PGconn *c, const struct wb_config *cfg, const struct wb_sequence *s, int step,
                     struct wb_claimed *cl, struct wb_rendered *r, struct pv_warn *w, FILE *err)
{
    const struct wb_sender *snd = pv_sender(cfg, s, (size_t)step - 1, cl);
    if (!snd) {
        fprintf(err, "warmbench: step %d of %s has no sender for %s\n", step, s->id, cl->email);
        return WB_EXIT_CONFIG;
    }
    free(cl->sender);
    cl->sender = wb_xstrdup(snd->id);
    free(cl->sequence);
    cl->sequence = wb_xstrdup(s->id);
    cl->step = step;
    cl->attempts = 1;
    free(cl->message_id);
    cl->message_id = pv_message_id(snd);
    free(cl->thread_id);
    cl->thread_id = NULL;
    if (step > 1) {
        const char *p[] = {cl->email, s->id};
        PGresult *q = wb_db_exec(c, PGRES_TUPLES_OK, "reading step 1's Message-ID", thread_sql,
                                 2, p);
        if (!q)
            return WB_EXIT_UNAVAILABLE;
        cl->thread_id = wb_xstrdup(PQntuples(q) ? PQgetvalue(q, 0, 0) : "wb.preview.step1@invalid");
        PQclear(q);
    }
    char why[256];
    if (wb_render_checked(cfg, cl, r, why, sizeof why, w ? pv_on_empty : NULL, w) < 0) {
        fprintf(err, "warmbench: %s\n", why);
        return WB_EXIT_CONFIG;
    }
    return 0;
}

static int pv_find(const struct wb_config *cfg, const char *sequence, int step,
                   const struct wb_sequence **s, FILE *err)
{
    *s = wb_config_sequence(cfg, sequence);
    if (!*s) {
        fprintf(err, "warmbench: no sequence \"%s\" in %s\n", sequence, cfg->sequences_dir);
        return WB_EXIT_USAGE;
    }
    if (step < 1 || (size_t)step > (*s)->n_steps) {
        fprintf(err, "warmbench: %s has steps 1 to %zu\n", sequence, (*s)->n_steps);
        return WB_EXIT_USAGE;
    }
    return 0;
}

int wb_cmd_preview(PGconn *c, const struct wb_config *cfg, const char *sequence,
                   const char *email, int step, const char *out_path, FILE *out, FILE *err)
{
    const struct wb_sequence *s;
    int rc = pv_find(cfg, sequence, step ? step : 1, &s, err);
    if (rc)
        return rc;
    struct wb_claimed cl = {0};
    int got = pv_load(c, email, &cl);
    if (got) {
        if (got > 0)
            fprintf(err, "warmbench: %s is not in the pool\n", email);
        wb_claimed_free(&cl);
        return got > 0 ? WB_EXIT_DATAERR : WB_EXIT_UNAVAILABLE;
    }
    struct wb_rendered r;
    struct pv_warn w = {err, email, 0};
    rc = pv_render(c, cfg, s, step ? step : 1, &cl, &r, &w, err);
    if (!rc) {
        struct wb_mail m;
        struct wb_mail_handles h = {0};
        char why[128];
        wb_rendered_mail(&r, &m);
        if (wb_mail_prepare(&m, &h, why, sizeof why) < 0) {
            fprintf(err, "warmbench: the message cannot be built: %s\n", why);
            rc = WB_EXIT_DATAERR;
        } else {
            FILE *f = out_path ? fopen(out_path, "wb") : out;
            if (!f || fwrite(h.raw, 1, h.raw_len, f) != h.raw_len ||
                (out_path && fclose(f) != 0)) {
                fprintf(err, "warmbench: cannot write %s\n", out_path ? out_path : "the message");
                rc = EXIT_CANTCREAT;
            }
            wb_mail_handles_free(&h);
        }
        wb_rendered_free(&r);
    }
    wb_claimed_free(&cl);
    return rc;
}

/* The first of the audience: the first candidate (by id) with one of its
 * tags, or the first of the pool when it names none. */
static char *pv_first_of_audience(PGconn *c, const struct wb_sequence *s)
{
    char *tags = wb_pg_array_str(s->audience.tags_any, s->audience.n_tags_any, 0);
    const char *p[] = {tags};
    PGresult *r = wb_db_exec(c, PGRES_TUPLES_OK, "finding the audience",
                             "SELECT email FROM candidates WHERE cardinality($1::text[]) = 0 "
                             "OR tags && $1::text[] ORDER BY id LIMIT 1", 1, p);
    free(tags);
    char *email = r && PQntuples(r) ? wb_xstrdup(PQgetvalue(r, 0, 0)) : NULL;
    PQclear(r);
    return email;
}

/* One blocking SMTP transaction through the sender's own block. */
static int pv_smtp(const struct wb_sender *snd, struct wb_mail *m, FILE *err)
{
    const struct wb_smtp_cfg *sc = &snd->smtp;
    CURL *e = curl_easy_init();
    struct wb_mail_handles h = {0};
    char why[CURL_ERROR_SIZE] = "";
    if (!e || wb_mail_setup(e, m, &h, why, sizeof why) < 0) {
        fprintf(err, "warmbench: the message cannot be built: %s\n", why);
        if (e)
            curl_easy_cleanup(e);
        return WB_EXIT_DATAERR;
    }
    char *from = wb_xasprintf("<%s>", snd->from_email), *to = wb_xasprintf("<%s>", m->to_email);
    struct curl_slist *rcpt = curl_slist_append(NULL, to);
    curl_easy_setopt(e, CURLOPT_URL, sc->url);
    curl_easy_setopt(e, CURLOPT_USE_SSL, wb_smtp_use_ssl(sc->tls));
    curl_easy_setopt(e, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(e, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)(sc->timeout_s > 0 ? sc->timeout_s : 30));
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, why);
    wb_curl_login(e, WB_AUTH_PASSWORD, sc->username, sc->password, NULL);
    CURLcode rc = curl_easy_perform(e);
    if (rc != CURLE_OK)
    {
        char *shown = wb_url_redacted(sc->url);
        fprintf(err, "warmbench: %s: %s\n", shown, why[0] ? why : curl_easy_strerror(rc));
        free(shown);
    }
    curl_slist_free_all(rcpt);
    free(from);
    free(to);
    curl_easy_cleanup(e);
    wb_mail_handles_free(&h);
    return rc == CURLE_OK ? 0 : WB_EXIT_UNAVAILABLE;
}

static int pv_send_step(PGconn *c, const struct wb_config *cfg, const struct wb_sequence *s,
                        int step, struct wb_claimed *cl, const char *to, FILE *out, FILE *err)
{
    struct wb_rendered r;
    int rc = pv_render(c, cfg, s, step, cl, &r, NULL, err);
    if (rc)
        return rc;
    const struct wb_sender *snd = wb_config_sender(cfg, cl->sender);
    if (snd->smtp.auth != WB_AUTH_PASSWORD) {
        fprintf(err, "warmbench: sender %s logs in with OAuth, whose token the daemon keeps: "
                     "test-send goes through password senders only\n", snd->id);
        wb_rendered_free(&r);
        return WB_EXIT_CONFIG;
    }
    char *subject = wb_xasprintf("[test] %s", r.subject ? r.subject : "");
    free(r.subject);
    r.subject = subject;
    struct wb_mail m;
    wb_rendered_mail(&r, &m);
    m.to_email = to;
    m.to_name = NULL;
    rc = pv_smtp(snd, &m, err);
    if (!rc)
        fprintf(out, "sent step %d of %s to %s through %s: %s\n", step, s->id, to, snd->id,
                r.subject);
    wb_rendered_free(&r);
    return rc;
}

int wb_cmd_test_send(PGconn *c, const struct wb_config *cfg, const char *sequence,
                     const char *to, const char *email, FILE *out, FILE *err)
{
    const struct wb_sequence *s;
    int rc = pv_find(cfg, sequence, 1, &s, err);
    if (rc)
        return rc;
    if (!wb_mime_addr_ok(to)) {
        fprintf(err, "warmbench: --to %s is not an address\n", to);
        return WB_EXIT_USAGE;
    }
    char *who = email ? wb_xstrdup(email) : pv_first_of_audience(c, s);
    struct wb_claimed cl = {0};
    int got = who ? pv_load(c, who, &cl) : 1;
    if (got) {
        if (got > 0)
            fprintf(err, "warmbench: %s\n", who ? "that address is not in the pool"
                                                : "the audience is empty: give --email");
        free(who);
        wb_claimed_free(&cl);
        return got > 0 ? WB_EXIT_DATAERR : WB_EXIT_UNAVAILABLE;
    }
    for (size_t i = 0; !rc && i < s->n_steps; i++) {
        if (s->steps[i].task) /* a manual step sends no mail (warmbench tasks) */
            fprintf(out, "step %zu of %s is a manual task: no mail\n", i + 1, s->id);
        else
            rc = pv_send_step(c, cfg, s, (int)i + 1, &cl, to, out, err);
    }
    free(who);
    wb_claimed_free(&cl);
    return rc;
}
