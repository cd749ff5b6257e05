/* The token keeper (see oauth.h). One engine round looks at every account:
 * reads its token file again when it changed, starts a refresh_token grant
 * when one is due, publishes state changes (log, callback, sender_state)
 * and sleeps until the next renewal, retry or file look. Grants run on
 * curl_loop; their answers are read by oauth_parse.c; rotated refresh
 * tokens are written by oauth_store.c on libuv's thread pool. */
#include "warmbench/oauth.h"
#include "warmbench/engine.h"
#include "warmbench/log.h"
#include "warmbench/oauth_parse.h"
#include "warmbench/oauth_store.h"
#include "warmbench/util.h"
#include <math.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Renewed at 80% of its lifetime: a 1 h token 12 min before it ends. */
#define RENEW_FRACTION 0.8
/* Not handed out in its last 10% (at most 10 s): an SMTP session needs a
 * moment after AUTH. */
#define MARGIN_MAX_MS 10000
#define LOGIN_POLL_MS 2000
#define DB_RETRY_MS 2000
#define BACKOFF_BASE_MS 1000
#define BACKOFF_MAX_MS 120000
#define IDLE_MS 60000
#define CONNECT_TIMEOUT_S 10
#define TOTAL_TIMEOUT_S 30
#define RESP_MAX 65536

static const char state_sql[] =
    "INSERT INTO sender_state (sender, state, reason, updated_at) VALUES ($1, $2, $3, now())"
    " ON CONFLICT (sender) DO UPDATE SET state = EXCLUDED.state, reason = EXCLUDED.reason,"
    "  updated_at = now()"
    " WHERE (sender_state.state, sender_state.reason)"
    "  IS DISTINCT FROM (EXCLUDED.state, EXCLUDED.reason)";

struct oa_acct {
    struct wb_oauth *k;
    const char *sender;
    const struct wb_oauth_provider *prov;
    char *path;                     /* the token file */
    char *refresh, *access;         /* secrets: wiped when replaced */
    uint64_t obtained_ms, expires_ms, renew_ms; /* uv_now */
    bool needs_login;
    bool renew_now;                 /* a refusal dropped the token */
    bool forcing, forced;           /* the grant in flight / the token held answers a refusal */
    unsigned strikes;               /* refusals of forced tokens since the last login */
    unsigned fails;                 /* grants failed in a row */
    uint64_t retry_ms;              /* no grant before this */
    char error[256];
    /* the grant in flight */
    CURL *easy;
    struct curl_slist *hdrs;
    char *body;
    struct wb_buf resp;
    char errbuf[CURL_ERROR_SIZE];
    /* the token file */
    struct wb_oauth_file_id fid;
    bool have_fid, writing, write_pending;
    uint64_t next_look_ms;
    /* what others were told */
    enum wb_oauth_state reported;
    int persisted;                  /* state in sender_state, -1 unknown */
    bool db_inflight;
    uint64_t renewals, renew_failures, auth_failures;
};

struct wb_oauth {
    struct wb_engine e;
    uv_loop_t *loop;
    struct wb_curl_loop *cl;
    struct wb_pg *pg;
    struct oa_acct *a;
    size_t n;
    wb_oauth_change_fn on_change;
    void *ud;
    bool stopping, closed;
    size_t jobs;                    /* writes and statements in flight */
};

struct oa_write {
    uv_work_t w;
    struct oa_acct *a;
    char *refresh;
    struct wb_oauth_file_id id;
    int rc;
    char *err;
};

struct oa_dbq {
    struct oa_acct *a;
    enum wb_oauth_state state;
};

static void oa_round(void *ud);
static bool oa_idle(void *ud)
{
    (void)ud;
    return true;
}

static const struct wb_engine_ops oa_ops = {.name = "oauth", .round = oa_round, .idle = oa_idle};

const char *wb_oauth_state_name(enum wb_oauth_state s)
{
    switch (s) {
    case WB_OAUTH_OK: return "ok";
    case WB_OAUTH_WAITING: return "waiting";
    case WB_OAUTH_NEEDS_LOGIN: return "needs_login";
    }
    return "?";
}

/* --- state -------------------------------------------------------------- */

static uint64_t oa_margin(const struct oa_acct *a)
{
    uint64_t m = (a->expires_ms - a->obtained_ms) / 10;
    return m < MARGIN_MAX_MS ? m : MARGIN_MAX_MS;
}

static bool oa_usable(const struct oa_acct *a, uint64_t now)
{
    return a->access && now + oa_margin(a) < a->expires_ms;
}

static enum wb_oauth_state oa_state(const struct oa_acct *a, uint64_t now)
{
    if (a->needs_login)
        return WB_OAUTH_NEEDS_LOGIN;
    return oa_usable(a, now) ? WB_OAUTH_OK : WB_OAUTH_WAITING;
}

static void oa_drop_access(struct oa_acct *a)
{
    wb_oauth_wipe(a->access);
    a->access = NULL;
    a->forced = false;
}

static void oa_set_error(struct oa_acct *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void oa_set_error(struct oa_acct *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->error, sizeof a->error, fmt, ap);
    va_end(ap);
}

static void oa_needs_login(struct oa_acct *a, const char *why)
{
    oa_drop_access(a);
    wb_oauth_wipe(a->refresh);
    a->refresh = NULL;
    a->needs_login = true;
    a->renew_now = false;
    a->next_look_ms = uv_now(a->k->loop) + LOGIN_POLL_MS;
    oa_set_error(a, "%s", why);
}

/* --- sender_state ------------------------------------------------------- */

static void oa_maybe_free(struct wb_oauth *k);

/* What sender_state should say differs from what it says. A wait with no
 * error (the first token of a start, of a login) is not written: it lasts a
 * round trip and would hide the `ok` that `warmbench login` just wrote. */
static bool oa_want_persist(const struct oa_acct *a, enum wb_oauth_state st)
{
    return a->k->pg && a->persisted != (int)st && (st != WB_OAUTH_WAITING || a->error[0]);
}

static void oa_on_persisted(PGresult *r, void *ud)
{
    struct oa_dbq *q = ud;
    struct oa_acct *a = q->a;
    struct wb_oauth *k = a->k;
    k->jobs--;
    a->db_inflight = false;
    if (!k->stopping && wb_engine_ok(&k->e, r, "storing a sender's state"))
        a->persisted = (int)q->state;
    free(q);
    if (k->stopping)
        oa_maybe_free(k);
    else if (oa_want_persist(a, oa_state(a, uv_now(k->loop))))
        wb_engine_kick(&k->e); /* it changed again meanwhile */
}

static void oa_persist(struct oa_acct *a, enum wb_oauth_state st)
{
    struct wb_oauth *k = a->k;
    if (a->db_inflight || !oa_want_persist(a, st))
        return;
    struct oa_dbq *q = wb_xmalloc(sizeof *q);
    *q = (struct oa_dbq){.a = a, .state = st};
    const char *p[] = {a->sender, wb_oauth_state_name(st), st == WB_OAUTH_OK ? "" : a->error};
    if (wb_pg_query(k->pg, state_sql, 3, p, oa_on_persisted, q) < 0) {
        free(q); /* not connected: the next round tries again */
        return;
    }
    a->db_inflight = true;
    k->jobs++;
}

/* Log, callback and row for a state that changed since last told. */
static void oa_publish(struct oa_acct *a, uint64_t now)
{
    struct wb_oauth *k = a->k;
    enum wb_oauth_state st = oa_state(a, now);
    if (st != a->reported) {
        a->reported = st;
        if (st == WB_OAUTH_NEEDS_LOGIN)
            wb_warn("oauth: sender %s (%s): needs_login: %s; run 'warmbench login %s'",
                    a->sender, a->prov->name, a->error, a->sender);
        else
            wb_info("oauth: sender %s (%s): %s%s%s", a->sender, a->prov->name,
                    wb_oauth_state_name(st), st == WB_OAUTH_WAITING && a->error[0] ? ": " : "",
                    st == WB_OAUTH_WAITING ? a->error : "");
        if (k->on_change)
            k->on_change(k->ud, a->sender, st);
    }
    oa_persist(a, st);
}

/* --- the token file ----------------------------------------------------- */

static void oa_on_written(uv_work_t *w, int status);

static void oa_write_work(uv_work_t *w)
{
    struct oa_write *j = w->data;
    j->rc = wb_oauth_store_write(j->a->path, j->a->prov->name, j->refresh, &j->id, &j->err);
}

static void oa_start_write(struct oa_acct *a)
{
    if (a->writing || !a->refresh) {
        a->write_pending = a->writing;
        return;
    }
    struct oa_write *j = wb_xcalloc(1, sizeof *j);
    j->a = a;
    j->refresh = wb_xstrdup(a->refresh);
    j->w.data = j;
    if (uv_queue_work(a->k->loop, &j->w, oa_write_work, oa_on_written) < 0) {
        wb_oauth_wipe(j->refresh);
        free(j);
        a->write_pending = true;
        return;
    }
    a->writing = true;
    a->write_pending = false;
    a->k->jobs++;
}

static void oa_on_written(uv_work_t *w, int status)
{
    struct oa_write *j = w->data;
    struct oa_acct *a = j->a;
    struct wb_oauth *k = a->k;
    k->jobs--;
    a->writing = false;
    if (status == 0 && j->rc == 0) {
        a->fid = j->id;
        a->have_fid = true;
        wb_info("oauth: sender %s: rotated refresh token stored in %s", a->sender, a->path);
    } else {
        wb_error("oauth: sender %s: storing the rotated refresh token: %s", a->sender,
                 j->err ? j->err : "the thread pool refused the job");
        a->write_pending = true; /* the next round writes it again */
    }
    wb_oauth_wipe(j->refresh);
    free(j->err);
    free(j);
    if (k->stopping)
        oa_maybe_free(k);
    else if (a->write_pending)
        wb_engine_wake_within(&k->e, DB_RETRY_MS / 1000.0);
}

/* Reads the file again when it is not the version we know: a new login
 * (or an operator's edit). Our own write is in flight: not now. */
static void oa_look(struct oa_acct *a, uint64_t now)
{
    if (a->writing)
        return;
    a->next_look_ms = now + LOGIN_POLL_MS;
    struct wb_oauth_file_id id;
    if (!wb_oauth_store_stat(a->path, &id) || (a->have_fid && wb_oauth_file_id_eq(&id, &a->fid)))
        return;
    char *rt, *err;
    enum wb_oauth_store_rc rc = wb_oauth_store_read(a->path, &rt, &id, &err);
    a->fid = id;
    a->have_fid = true;
    if (rc != WB_OAUTH_STORE_OK) {
        if (!a->needs_login)
            wb_error("oauth: sender %s: %s", a->sender, err);
        oa_needs_login(a, err);
        free(err);
        return;
    }
    if (a->refresh && !strcmp(a->refresh, rt)) {
        wb_oauth_wipe(rt);
        return;
    }
    wb_info("oauth: sender %s: read a new refresh token from %s", a->sender, a->path);
    wb_oauth_wipe(a->refresh);
    a->refresh = rt;
    a->needs_login = false;
    a->error[0] = '\0';
    a->fails = a->strikes = 0;
    a->retry_ms = 0;
    a->renew_now = true; /* a new login: its grant now, not at the old token's 80% */
}

/* --- the grant ------------------------------------------------------------ */

static void oa_free_request(struct oa_acct *a)
{
    if (a->easy)
        curl_easy_cleanup(a->easy);
    a->easy = NULL;
    curl_slist_free_all(a->hdrs);
    a->hdrs = NULL;
    wb_oauth_wipe(a->body);
    a->body = NULL;
    if (a->resp.data)
        OPENSSL_cleanse(a->resp.data, a->resp.len);
    wb_buf_free(&a->resp);
}

static void oa_backoff(struct oa_acct *a, unsigned n, double retry_after_s)
{
    double ms = BACKOFF_BASE_MS * ldexp(1.0, n > 1 ? (int)(n < 20 ? n : 20) - 1 : 0);
    if (ms > BACKOFF_MAX_MS)
        ms = BACKOFF_MAX_MS;
    /* Jitter in [50%, 100%]: daemons that failed together retry apart. */
    ms *= 0.5 + 0.5 * (double)random() / (double)RAND_MAX;
    if (retry_after_s * 1000.0 > ms)
        ms = retry_after_s * 1000.0 < BACKOFF_MAX_MS ? retry_after_s * 1000.0 : BACKOFF_MAX_MS;
    a->retry_ms = uv_now(a->k->loop) + (uint64_t)ms;
}

static void oa_granted(struct oa_acct *a, struct wb_oauth_reply *r, bool forced)
{
    uint64_t now = uv_now(a->k->loop);
    oa_drop_access(a);
    a->access = r->access_token;
    r->access_token = NULL;
    a->obtained_ms = now;
    a->expires_ms = now + (uint64_t)r->expires_in * 1000;
    a->renew_ms = now + (uint64_t)(RENEW_FRACTION * (double)r->expires_in * 1000.0);
    a->forced = forced;
    a->fails = 0;
    a->retry_ms = 0;
    a->error[0] = '\0';
    a->renewals++;
    wb_info("oauth: sender %s: access token renewed, expires in %ld s", a->sender,
            r->expires_in);
    if (r->refresh_token && strcmp(r->refresh_token, a->refresh)) {
        wb_oauth_wipe(a->refresh);
        a->refresh = r->refresh_token;
        r->refresh_token = NULL;
        oa_start_write(a);
    }
}

static void oa_on_granted(CURL *easy, CURLcode rc, void *ud)
{
    struct oa_acct *a = ud;
    struct wb_oauth *k = a->k;
    long status = 0;
    curl_off_t retry_after = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &retry_after);
    struct wb_oauth_reply r = {0};
    if (rc == CURLE_OK)
        wb_oauth_parse_token(status, a->resp.data, a->resp.len, &r);
    char neterr[CURL_ERROR_SIZE + 64];
    snprintf(neterr, sizeof neterr, "%s", a->errbuf[0] ? a->errbuf : curl_easy_strerror(rc));
    oa_free_request(a);
    bool forcing = a->forcing;
    a->forcing = false;
    if (k->stopping) {
        wb_oauth_reply_free(&r);
        return;
    }
    if (rc == CURLE_OK && r.kind == WB_OAUTH_REPLY_TOKEN) {
        oa_granted(a, &r, forcing);
    } else {
        a->renew_failures++;
        a->fails++;
        if (rc == CURLE_OK && r.kind == WB_OAUTH_REPLY_ERROR && !strcmp(r.error, "invalid_grant")) {
            char why[300];
            snprintf(why, sizeof why, "the provider refused the refresh token (%s)", r.message);
            oa_needs_login(a, why);
        } else {
            oa_backoff(a, a->fails, (double)retry_after);
            if (rc != CURLE_OK)
                oa_set_error(a, "token request to %s failed: %s", a->prov->name, neterr);
            else
                oa_set_error(a, "token endpoint of %s: %s", a->prov->name, r.message);
            wb_warn("oauth: sender %s: %s; next try in %.1f s", a->sender, a->error,
                    (double)(a->retry_ms - uv_now(k->loop)) / 1000.0);
        }
    }
    wb_oauth_reply_free(&r);
    wb_engine_kick(&k->e);
}

static size_t oa_on_body(char *p, size_t size, size_t n, void *ud)
{
    struct oa_acct *a = ud;
    size_t len = size * n;
    if (a->resp.len + len > RESP_MAX)
        return 0; /* a token answer is small; this one is not one */
    wb_buf_append(&a->resp, p, len);
    return len;
}

static void oa_form_add(struct wb_buf *b, CURL *e, const char *key, const char *val)
{
    char *v = curl_easy_escape(e, val, 0);
    if (!v)
        abort();
    wb_buf_printf(b, "%s%s=%s", b->len ? "&" : "", key, v);
    OPENSSL_cleanse(v, strlen(v));
    curl_free(v);
}

static void oa_grant(struct oa_acct *a)
{
    const struct wb_oauth_provider *p = a->prov;
    CURL *e = a->easy = curl_easy_init();
    if (!e)
        abort();
    struct wb_buf body;
    wb_buf_init(&body);
    oa_form_add(&body, e, "grant_type", "refresh_token");
    oa_form_add(&body, e, "refresh_token", a->refresh);
    oa_form_add(&body, e, "client_id", p->client_id ? p->client_id : "");
    if (p->client_secret)
        oa_form_add(&body, e, "client_secret", p->client_secret);
    a->body = wb_buf_steal(&body);
    wb_buf_init(&a->resp);
    a->errbuf[0] = '\0';
    a->hdrs = curl_slist_append(NULL, "Accept: application/json");
    if (!a->hdrs)
        abort();
    curl_easy_setopt(e, CURLOPT_URL, p->token_url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, a->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(a->body));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, a->hdrs);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "warmbench/" WB_VERSION);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)CONNECT_TIMEOUT_S);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)TOTAL_TIMEOUT_S);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, oa_on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, a->errbuf);
    if (wb_curl_loop_add(a->k->cl, e, oa_on_granted, a) < 0) {
        oa_free_request(a);
        a->fails++;
        oa_backoff(a, a->fails, 0);
        oa_set_error(a, "could not start a token request");
    }
}

/* --- the round ------------------------------------------------------------ */

static uint64_t oa_min(uint64_t x, uint64_t y)
{
    return x < y ? x : y;
}

/* ms until this account needs the next round. */
static uint64_t oa_next(const struct oa_acct *a, uint64_t now)
{
    uint64_t next = IDLE_MS;
    if (a->write_pending || oa_want_persist(a, oa_state(a, now)))
        next = DB_RETRY_MS;
    if (a->needs_login)
        return oa_min(next, a->next_look_ms > now ? a->next_look_ms - now : 0);
    if (a->easy)
        return next; /* its answer kicks */
    if (a->retry_ms > now)
        return oa_min(next, a->retry_ms - now);
    if (!a->access || a->renew_now)
        return 0;
    uint64_t renew = a->renew_ms > now ? a->renew_ms - now : 0;
    /* and when it stops being usable, so the state is told on time */
    uint64_t end = a->expires_ms - oa_margin(a);
    return oa_min(oa_min(next, renew), end > now ? end - now : 0);
}

static bool oa_due(const struct oa_acct *a, uint64_t now)
{
    return !a->easy && !a->needs_login && a->refresh && now >= a->retry_ms &&
           (a->renew_now || !a->access || now >= a->renew_ms);
}

static void oa_round(void *ud)
{
    struct wb_oauth *k = ud;
    uint64_t now = uv_now(k->loop), next = IDLE_MS;
    for (size_t i = 0; i < k->n; i++) {
        struct oa_acct *a = &k->a[i];
        if ((a->needs_login && now >= a->next_look_ms) || oa_due(a, now))
            oa_look(a, now);
        if (a->write_pending)
            oa_start_write(a);
        if (oa_due(a, now)) {
            a->renew_now = false;
            oa_grant(a);
        }
        oa_publish(a, now);
        next = oa_min(next, oa_next(a, now));
    }
    /* at least 10 ms apart: a token that is due now is already asked for */
    wb_engine_round_end(&k->e, next < 10 ? 10 : next);
}

/* --- API ------------------------------------------------------------------ */

struct wb_oauth_account *wb_oauth_accounts_from_config(const struct wb_config *cfg, size_t *n)
{
    struct wb_oauth_account *v = wb_xcalloc(2 * cfg->n_senders + 1, sizeof *v);
    *n = 0;
    for (size_t i = 0; i < cfg->n_senders; i++) {
        const struct wb_sender *s = &cfg->senders[i];
        const struct wb_oauth_provider *p[2] = {
            s->smtp.auth != WB_AUTH_PASSWORD ? s->smtp.oauth : NULL,
            s->mailbox.enabled && s->mailbox.auth != WB_AUTH_PASSWORD ? s->mailbox.oauth : NULL};
        for (int j = 0; j < 2; j++) {
            if (!p[j] || (j == 1 && p[0] && !strcmp(p[0]->name, p[1]->name)))
                continue;
            v[(*n)++] = (struct wb_oauth_account){.sender = s->id, .provider = p[j]};
        }
    }
    return v;
}

struct wb_oauth *wb_oauth_new(uv_loop_t *loop, struct wb_curl_loop *cl, struct wb_pg *pg,
                              const struct wb_oauth_account *acc, size_t n,
                              wb_oauth_change_fn on_change, void *ud, char **err)
{
    *err = NULL;
    struct wb_oauth *k = wb_xcalloc(1, sizeof *k);
    k->loop = loop;
    k->cl = cl;
    k->pg = pg;
    k->on_change = on_change;
    k->ud = ud;
    k->a = wb_xcalloc(n ? n : 1, sizeof *k->a);
    k->n = n;
    wb_engine_init(&k->e, loop, &oa_ops, k);
    for (size_t i = 0; i < n && !*err; i++) {
        struct oa_acct *a = &k->a[i];
        a->k = k;
        a->sender = acc[i].sender;
        a->prov = acc[i].provider;
        a->persisted = -1;
        a->reported = WB_OAUTH_WAITING;
        wb_buf_init(&a->resp);
        a->path = wb_oauth_store_path(a->prov->tokens_dir, a->sender);
        if (!a->path) {
            *err = wb_xasprintf("sender \"%s\" cannot name a token file in %s", a->sender,
                                a->prov->tokens_dir ? a->prov->tokens_dir : "(no tokens_dir)");
            break;
        }
        char *why;
        enum wb_oauth_store_rc rc = wb_oauth_store_read(a->path, &a->refresh, &a->fid, &why);
        if (rc == WB_OAUTH_STORE_OK) {
            a->have_fid = true;
        } else if (rc == WB_OAUTH_STORE_MISSING) {
            oa_needs_login(a, why);
        } else {
            *err = why;
            why = NULL;
        }
        free(why);
    }
    if (*err) {
        wb_oauth_stop(k); /* the timers' close callbacks free k */
        return NULL;
    }
    return k;
}

void wb_oauth_start(struct wb_oauth *k)
{
    wb_engine_start(&k->e);
}

void wb_oauth_kick(struct wb_oauth *k)
{
    if (!k->stopping) {
        for (size_t i = 0; i < k->n; i++)
            k->a[i].next_look_ms = 0;
        wb_engine_kick(&k->e);
    }
}

static struct oa_acct *oa_find(const struct wb_oauth *k, const char *sender, const char *provider)
{
    for (size_t i = 0; i < k->n; i++)
        if (!strcmp(k->a[i].sender, sender) && (!provider || !strcmp(k->a[i].prov->name, provider)))
            return &k->a[i];
    return NULL;
}

const char *wb_oauth_token(struct wb_oauth *k, const char *sender, const char *provider)
{
    struct oa_acct *a = oa_find(k, sender, provider);
    if (!a)
        return NULL;
    if (oa_usable(a, uv_now(k->loop)))
        return a->access;
    if (!k->stopping && oa_due(a, uv_now(k->loop)))
        wb_engine_kick(&k->e);
    return NULL;
}

void wb_oauth_auth_failed(struct wb_oauth *k, const char *sender, const char *provider,
                          const char *token)
{
    struct oa_acct *a = oa_find(k, sender, provider);
    if (!a || k->stopping)
        return;
    a->auth_failures++;
    if (!a->access || !token || strcmp(a->access, token))
        return; /* an older token: the one held now is already newer */
    if (a->forced) {
        a->strikes++;
        oa_drop_access(a);
        a->fails++;
        oa_backoff(a, a->strikes, 0);
        oa_set_error(a, "the server refused a token renewed after a refusal (wrong username "
                        "or scope?)");
        wb_warn("oauth: sender %s: %s; next try in %.1f s", a->sender, a->error,
                (double)(a->retry_ms - uv_now(k->loop)) / 1000.0);
    } else {
        wb_info("oauth: sender %s: the server refused its access token; renewing it now",
                a->sender);
        oa_drop_access(a);
        a->renew_now = true;
        a->forcing = true;
    }
    wb_engine_kick(&k->e);
}

size_t wb_oauth_count(const struct wb_oauth *k)
{
    return k->n;
}

bool wb_oauth_status(const struct wb_oauth *k, size_t i, struct wb_oauth_status *st)
{
    if (i >= k->n)
        return false;
    const struct oa_acct *a = &k->a[i];
    uint64_t now = uv_now(k->loop);
    *st = (struct wb_oauth_status){
        .sender = a->sender, .provider = a->prov->name, .state = oa_state(a, now),
        .error = a->error,
        .expires_in_s = a->access && a->expires_ms > now ? (double)(a->expires_ms - now) / 1000.0 : 0,
        .renewals = a->renewals, .renew_failures = a->renew_failures,
        .auth_failures = a->auth_failures};
    return true;
}

int wb_oauth_sender_state(const struct wb_oauth *k, const char *sender)
{
    int worst = -1;
    uint64_t now = uv_now(k->loop);
    for (size_t i = 0; i < k->n; i++)
        if (!strcmp(k->a[i].sender, sender)) {
            int s = (int)oa_state(&k->a[i], now);
            if (s > worst)
                worst = s;
        }
    return worst;
}

/* A label value as the exposition format wants it. */
static void oa_label(struct wb_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            wb_buf_putc(b, '\\');
        if (*s == '\n')
            wb_buf_puts(b, "\\n");
        else
            wb_buf_putc(b, *s);
    }
}

static void oa_labels(struct wb_buf *b, const struct oa_acct *a)
{
    wb_buf_puts(b, "{sender=\"");
    oa_label(b, a->sender);
    wb_buf_puts(b, "\",provider=\"");
    oa_label(b, a->prov->name);
    wb_buf_putc(b, '"');
}

void wb_oauth_metrics(const struct wb_oauth *k, struct wb_buf *out)
{
    if (!k->n)
        return;
    uint64_t now = uv_now(k->loop);
    wb_buf_puts(out, "# HELP warmbench_sender_oauth_state OAuth state of a sender's account "
                     "(1 for the current one).\n# TYPE warmbench_sender_oauth_state gauge\n");
    for (size_t i = 0; i < k->n; i++)
        for (int s = WB_OAUTH_OK; s <= WB_OAUTH_NEEDS_LOGIN; s++) {
            wb_buf_puts(out, "warmbench_sender_oauth_state");
            oa_labels(out, &k->a[i]);
            wb_buf_printf(out, ",state=\"%s\"} %d\n", wb_oauth_state_name(s),
                          (int)oa_state(&k->a[i], now) == s);
        }
    static const struct {
        const char *name, *help;
        size_t off;
    } counters[] = {
        {"warmbench_oauth_token_renewals_total", "Access tokens obtained.",
         offsetof(struct oa_acct, renewals)},
        {"warmbench_oauth_renew_failures_total", "Token grants that failed.",
         offsetof(struct oa_acct, renew_failures)},
        {"warmbench_oauth_auth_failures_total", "Servers that refused an access token.",
         offsetof(struct oa_acct, auth_failures)},
    };
    for (size_t c = 0; c < sizeof counters / sizeof counters[0]; c++) {
        wb_buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", counters[c].name, counters[c].help,
                      counters[c].name);
        for (size_t i = 0; i < k->n; i++) {
            wb_buf_puts(out, counters[c].name);
            oa_labels(out, &k->a[i]);
            wb_buf_printf(out, "} %llu\n",
                          (unsigned long long)*(const uint64_t *)((const char *)&k->a[i] +
                                                                  counters[c].off));
        }
    }
}

static void oa_maybe_free(struct wb_oauth *k)
{
    if (!k->closed || k->jobs)
        return;
    for (size_t i = 0; i < k->n; i++) {
        struct oa_acct *a = &k->a[i];
        oa_free_request(a);
        wb_oauth_wipe(a->refresh);
        wb_oauth_wipe(a->access);
        free(a->path);
    }
    free(k->a);
    free(k);
}

static void oa_on_closed(void *ud)
{
    struct wb_oauth *k = ud;
    k->closed = true;
    oa_maybe_free(k);
}

void wb_oauth_stop(struct wb_oauth *k)
{
    k->stopping = true;
    for (size_t i = 0; i < k->n; i++) {
        struct oa_acct *a = &k->a[i];
        /* When curl_loop went first, its free already ran our done (easy is NULL). */
        if (a->easy && wb_curl_loop_cancel(k->cl, a->easy) == 0)
            oa_free_request(a);
    }
    wb_engine_stop(&k->e, oa_on_closed, k);
}
