/* IMAP poller (see mailbox.h). One poll is a chain of short callbacks:
 *   read mailbox_state → STATUS (UIDVALIDITY, UIDNEXT) → UID SEARCH since
 *   last_uid → per UID: header fields → [Message-ID lookup] → [first 64 KB
 *   of the body] → one statement recording the event and advancing
 *   last_uid.
 * libcurl's IMAP URL forms do the fetches (a custom FETCH would only return
 * its first line); custom requests only for STATUS and SEARCH, whose
 * untagged answers curl hands to the write callback.
 * The transfers run in the mailbox's own worker thread (curl_thread.h):
 * libcurl's imap_done waits for a FETCH's tagged OK with a blocking poll,
 * which on the loop stalled everything else for a server round trip. */
#include "warmbench/mailbox.h"
#include "warmbench/arf.h"
#include "warmbench/buf.h"
#include "warmbench/curl_thread.h"
#include "warmbench/engine.h"
#include "warmbench/ical.h"
#include "warmbench/imap_parse.h"
#include "warmbench/intent.h"
#include "warmbench/log.h"
#include "warmbench/mailparse.h"
#include "warmbench/oauth.h"
#include "warmbench/oauth_parse.h"
#include "warmbench/ooo.h"
#include "warmbench/smtp.h"
#include "warmbench/pgtext.h"
#include "warmbench/util.h"
#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define HEAD_CAP (64 * 1024)
#define TEXT_CAP (64 * 1024)
#define SEARCH_CAP (8 * 1024 * 1024)
/* Messages handled per poll; the rest right after, so that a first poll of
 * a big mailbox commits progress as it goes. */
#define MAX_PER_POLL 500
/* A UID whose handling fails this many polls in a row is skipped. */
#define MAX_FAILS 3
#define SUBJECT_MAX 100
#define DB_WAIT_MS 2000
#define DRAIN_MS 10000         /* for the statement in flight at a drain */
#define LOGOUT_WAIT_S 2

static const char HEADER_FIELDS[] =
    "FROM%20TO%20SUBJECT%20DATE%20MESSAGE-ID%20IN-REPLY-TO%20REFERENCES%20AUTO-SUBMITTED"
    "%20X-AUTOREPLY%20X-AUTORESPOND%20PRECEDENCE%20CONTENT-TYPE%20CONTENT-TRANSFER-ENCODING"
    "%20DELIVERED-TO%20X-ORIGINAL-TO%20RETURN-PATH%20ORIGINAL-RECIPIENT%20FINAL-RECIPIENT";

/* The row exists from the first poll on, so later statements can lock it. */
static const char Q_STATE[] =
    "WITH ins AS (INSERT INTO mailbox_state (mailbox) VALUES ($1) ON CONFLICT DO NOTHING "
    "RETURNING uidvalidity, last_uid) "
    "SELECT uidvalidity, last_uid FROM ins UNION ALL "
    "SELECT uidvalidity, last_uid FROM mailbox_state WHERE mailbox = $1";

static const char Q_RESET[] =
    "UPDATE mailbox_state SET uidvalidity = $2::bigint, last_uid = 0, updated_at = now() "
    "WHERE mailbox = $1";

/* The most recent of our messages the reply points at. */
static const char Q_LOOKUP[] =
    "SELECT id FROM messages WHERE message_id = ANY($1::text[]) "
    "ORDER BY array_position($1::text[], message_id) LIMIT 1";

/* Records the event (when $4 names one) and advances last_uid in one
 * statement. The row lock and the last_uid check make a second poller, or
 * a retry after a lost connection, record nothing twice; mail_seen ($7, the
 * mail's own Message-ID) does the same for one mail in two mailboxes. */
static const char Q_RECORD[] =
    "WITH st AS (SELECT uidvalidity, last_uid FROM mailbox_state WHERE mailbox = $1 FOR UPDATE), "
    "fresh AS (SELECT $4::text IS NOT NULL AND NOT EXISTS "
    "  (SELECT 1 FROM st WHERE uidvalidity = $2::bigint AND last_uid >= $3::bigint) AS f), "
    "seen AS (INSERT INTO mail_seen (mail_id, message_id) SELECT $7::text, $5::bigint "
    "  FROM fresh WHERE f AND $7::text IS NOT NULL ON CONFLICT DO NOTHING RETURNING 1), "
    "r AS (SELECT CASE WHEN (SELECT f FROM fresh) AND ($7::text IS NULL OR EXISTS (SELECT 1 FROM seen)) "
    "  THEN wb_record_events(ARRAY[$5::bigint], ARRAY[$4::text], ARRAY[false], "
    "                        ARRAY[$6::jsonb], ARRAY[now()]) ELSE 0 END AS n) "
    "INSERT INTO mailbox_state AS s (mailbox, uidvalidity, last_uid) "
    "SELECT $1, $2::bigint, $3::bigint FROM r "
    "ON CONFLICT (mailbox) DO UPDATE SET last_uid = CASE WHEN s.uidvalidity = EXCLUDED.uidvalidity "
    "  THEN greatest(s.last_uid, EXCLUDED.last_uid) ELSE EXCLUDED.last_uid END, "
    "  uidvalidity = EXCLUDED.uidvalidity, updated_at = now() "
    "RETURNING (SELECT n FROM r)";

/* What a poll needs from the configuration, copied (a reload frees it). */
struct settings {
    char *server;    /* imap://host:port/ */
    char *base;      /* imap://host:port/INBOX (no credentials) */
    char *key;       /* mailbox_state.mailbox */
    char *mailbox;   /* decoded name, for STATUS */
    char *username, *password;
    enum wb_auth auth;
    char *sender;    /* a sender's own mailbox; NULL: the top-level one */
    char *provider;  /* its OAuth provider, for auth xoauth2/oauthbearer */
    bool tls;        /* imaps://: TLS from the start */
    enum wb_tls starttls; /* imap://: mailbox.tls */
    int poll_s;
    char *bounce_domain;
    unsigned char *secret;
    size_t secret_len;
    struct wb_intent_rules *rules;
};

enum want { WANT_NOTHING, WANT_BOUNCE, WANT_REPLY, WANT_AUTO };

/* The message being handled. */
struct msg {
    uint64_t uid;
    struct wb_mail_head h;
    char *subject;
    char **refs;
    size_t n_refs;
    bool is_auto;
    bool has_bounce;
    int64_t bounce_id;
    int64_t reply_id;
    char feedback_type[32];  /* a complaint report's Feedback-Type */
    enum want want;
    bool event;      /* the statement in flight records an event */
};

struct wb_mailbox {
    struct wb_engine e;         /* a round is one poll */
    uv_loop_t *loop;
    struct wb_curl_thread *ct;  /* runs easy's transfers, one at a time */
    struct wb_pg *pg;
    struct wb_oauth *oauth;
    char *bearer;               /* the access token of the poll in flight */
    struct settings *s, *next;
    CURL *easy;                 /* kept between transfers: so is its connection */
    void (*on_xfer)(struct wb_mailbox *m, CURLcode rc);
    /* Written by on_write in the worker while a transfer runs (xfer); the
     * loop touches them only between transfers. */
    struct wb_buf in;
    size_t cap;
    bool overflow;
    bool xfer, freeing;
    int sql_pending;
    /* the poll in flight */
    uint64_t uidvalidity, last_uid, uidnext;
    uint64_t *uids;
    size_t n_uids, i;
    uint64_t done_uid;       /* highest UID handled in this poll */
    struct msg cur;
    uint64_t fail_uid;
    int fails;
};

static void mb_next_message(struct wb_mailbox *m);
static void mb_end_poll(struct wb_mailbox *m, bool ok);

/* ---- settings ------------------------------------------------------- */

static void mb_settings_free(struct settings *s)
{
    if (!s)
        return;
    free(s->server);
    free(s->base);
    free(s->key);
    free(s->mailbox);
    free(s->username);
    free(s->sender);
    free(s->provider);
    if (s->password)
        explicit_bzero(s->password, strlen(s->password));
    free(s->password);
    free(s->bounce_domain);
    if (s->secret)
        explicit_bzero(s->secret, s->secret_len);
    free(s->secret);
    wb_intent_free(s->rules);
    free(s);
}

/* Splits mailbox.url into the server URL and the mailbox, without
 * credentials (they come from username/password_file). */
static int mb_parse_url(struct settings *s, const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
    int rc = -1;
    if (curl_url_set(u, CURLUPART_URL, url, 0) || curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
        curl_url_get(u, CURLUPART_HOST, &host, 0))
        goto out;
    curl_url_get(u, CURLUPART_PORT, &port, 0);
    curl_url_get(u, CURLUPART_PATH, &path, 0);
    s->tls = !strcasecmp(scheme, "imaps");
    if (!s->tls && strcasecmp(scheme, "imap"))
        goto out;
    const char *p = path ? path : "";
    while (*p == '/')
        p++;
    size_t n = strcspn(p, ";"); /* ;UIDVALIDITY= and friends are ours to add */
    while (n && p[n - 1] == '/')
        n--;
    char *enc = n ? wb_xstrndup(p, n) : wb_xstrdup("INBOX");
    s->server = port ? wb_xasprintf("%s://%s:%s/", scheme, host, port)
                     : wb_xasprintf("%s://%s/", scheme, host);
    s->base = wb_xasprintf("%s%s", s->server, enc);
    s->key = wb_xstrdup(s->base);
    char *dec = curl_easy_unescape(NULL, enc, 0, NULL);
    s->mailbox = wb_xstrdup(dec ? dec : enc);
    curl_free(dec);
    free(enc);
    if (!s->username) {
        char *user = NULL, *pw = NULL;
        if (!curl_url_get(u, CURLUPART_USER, &user, CURLU_URLDECODE))
            s->username = wb_xstrdup(user);
        if (!s->password && !curl_url_get(u, CURLUPART_PASSWORD, &pw, CURLU_URLDECODE))
            s->password = wb_xstrdup(pw);
        curl_free(user);
        curl_free(pw);
    }
    rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_url_cleanup(u);
    return rc;
}

/* The mailbox block a poller reads: the top-level one, or a sender's own. */
static const struct wb_mailbox_cfg *mb_block(const struct wb_config *cfg, const char *sender)
{
    if (!sender)
        return &cfg->mailbox;
    const struct wb_sender *snd = wb_config_sender(cfg, sender);
    return snd && snd->own_mailbox ? &snd->mailbox : NULL;
}

static struct settings *mb_settings_new(const struct wb_config *cfg, const char *sender)
{
    const struct wb_mailbox_cfg *mc = mb_block(cfg, sender);
    if (!mc || !mc->enabled || !mc->url)
        return NULL;
    struct settings *s = wb_xcalloc(1, sizeof *s);
    s->username = mc->username ? wb_xstrdup(mc->username) : NULL;
    s->password = mc->password ? wb_xstrdup(mc->password) : NULL;
    s->auth = mc->auth;
    s->starttls = mc->tls;
    s->sender = sender ? wb_xstrdup(sender) : NULL;
    s->provider = mc->oauth ? wb_xstrdup(mc->oauth->name) : NULL;
    s->poll_s = mc->poll_s > 0 ? mc->poll_s : 60;
    s->bounce_domain = cfg->bounce_domain ? wb_xstrdup(cfg->bounce_domain) : NULL;
    if (cfg->secret_len) {
        s->secret = wb_xmalloc(cfg->secret_len);
        memcpy(s->secret, cfg->secret, cfg->secret_len);
        s->secret_len = cfg->secret_len;
    }
    if (mb_parse_url(s, mc->url) < 0) {
        char *shown = wb_url_redacted(mc->url);
        wb_error("mailbox: cannot use the URL %s", shown);
        free(shown);
        mb_settings_free(s);
        return NULL;
    }
    if (sender) {
        /* Two senders may read one server's INBOX, each as themselves: the
         * progress row is the account's (the top-level one keeps the key it
         * always had). */
        char *k = wb_xasprintf("%s#%s", s->key, s->username ? s->username : sender);
        free(s->key);
        s->key = k;
    }
    char err[512], *path = wb_intent_path(cfg->dir);
    s->rules = wb_intent_load(path, err, sizeof err);
    if (!s->rules)
        wb_error("mailbox: intent rules: %s", err);
    free(path);
    return s;
}

/* ---- transfers --------------------------------------------------------- */

/* Runs in the worker thread: touches in, cap and overflow only (no
 * logging; wb_buf's allocation failure aborts the process anyway). */
static size_t mb_on_write(char *p, size_t size, size_t n, void *ud)
{
    struct wb_mailbox *m = ud;
    size_t len = size * n;
    if (m->in.len + len > m->cap) {
        m->overflow = true; /* a huge or hostile message: stop reading it */
        return 0;
    }
    wb_buf_append(&m->in, p, len);
    return len;
}

static void mb_on_xfer_done(CURL *easy, CURLcode rc, void *ud)
{
    struct wb_mailbox *m = ud;
    (void)easy;
    m->xfer = false;
    if (wb_engine_draining(&m->e) || m->freeing)
        return;
    m->on_xfer(m, rc);
}

/* Starts one IMAP transfer on url; custom is a command or NULL. */
static int mb_transfer(struct wb_mailbox *m, const char *url, const char *custom, size_t cap,
                    bool fresh, void (*then)(struct wb_mailbox *, CURLcode))
{
    if (!m->easy)
        m->easy = curl_easy_init();
    CURL *e = m->easy;
    if (!e)
        return -1;
    curl_easy_reset(e);
    wb_buf_reset(&m->in);
    m->cap = cap;
    m->overflow = false;
    m->on_xfer = then;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, custom);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, mb_on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, m);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 120L);
    /* A fresh connection per poll: a reused one may not show new mail to
     * SEARCH until the server syncs its view of the mailbox. */
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, fresh ? 1L : 0L);
    /* The handle's own connection cache (curl_easy_perform's) keeps one
     * connection: the poll's, reused by SEARCH and the fetches. The one a
     * fresh poll replaces is logged out then, in the worker, rather than
     * kept idle until curl_easy_cleanup, which runs on the loop. */
    curl_easy_setopt(e, CURLOPT_MAXCONNECTS, 1L);
    /* imaps:// is TLS from the start; imap:// must upgrade (STARTTLS) unless
     * mailbox.tls says otherwise, so that a man in the middle cannot strip
     * it and read the password. */
    curl_easy_setopt(e, CURLOPT_USE_SSL,
                     m->s->tls ? (long)CURLUSESSL_ALL : wb_smtp_use_ssl(m->s->starttls));
    wb_curl_login(e, m->s->auth, m->s->username, m->s->password, m->bearer);
    if (wb_curl_thread_add(m->ct, e, mb_on_xfer_done, m) < 0)
        return -1;
    m->xfer = true;
    return 0;
}

/* Errors about the connection or the server as a whole: the poll stops
 * and nothing advances. Anything else is about the message at hand. */
static bool mb_server_error(CURLcode rc)
{
    return rc != CURLE_OK && rc != CURLE_REMOTE_FILE_NOT_FOUND && rc != CURLE_WRITE_ERROR &&
           rc != CURLE_FILESIZE_EXCEEDED;
}

/* ---- SQL --------------------------------------------------------------- */

static void mb_on_sql(PGresult *r, void *ud);

struct sql_req {
    struct wb_mailbox *m;
    void (*then)(struct wb_mailbox *, PGresult *);
};

static int mb_query(struct wb_mailbox *m, const char *sql, int n, const char *const *p,
                 void (*then)(struct wb_mailbox *, PGresult *))
{
    struct sql_req *q = wb_xmalloc(sizeof *q);
    q->m = m;
    q->then = then;
    if (wb_pg_query(m->pg, sql, n, p, mb_on_sql, q) < 0) {
        free(q);
        return -1;
    }
    m->sql_pending++;
    return 0;
}

static void mb_release(struct wb_mailbox *m);

static void mb_on_sql(PGresult *r, void *ud)
{
    struct sql_req *q = ud;
    struct wb_mailbox *m = q->m;
    void (*then)(struct wb_mailbox *, PGresult *) = q->then;
    free(q);
    m->sql_pending--;
    if (m->freeing) {
        if (!m->sql_pending)
            mb_release(m);
        return;
    }
    if (wb_engine_draining(&m->e)) {
        wb_engine_check(&m->e);
        return;
    }
    then(m, r);
}

/* 1: a result; 0: the connection was lost; -1: the statement failed. */
static int mb_sql_ok(PGresult *r, const char *what)
{
    if (!r) {
        wb_warn("mailbox: database connection lost while %s; polling again later", what);
        return 0;
    }
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        wb_error("mailbox: %s: %s", what, PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) ?: "?");
        return -1;
    }
    return 1;
}

/* ---- per message ------------------------------------------------------ */

static void mb_msg_clear(struct msg *c)
{
    wb_mail_head_free(&c->h);
    free(c->subject);
    wb_mail_strv_free(c->refs, c->n_refs);
    memset(c, 0, sizeof *c);
}

/* A UID that failed MAX_FAILS polls in a row is given up. */
static bool mb_give_up(struct wb_mailbox *m, uint64_t uid)
{
    if (m->fail_uid != uid) {
        m->fail_uid = uid;
        m->fails = 0;
    }
    return ++m->fails >= MAX_FAILS;
}

static void mb_message_done(struct wb_mailbox *m)
{
    m->done_uid = m->cur.uid;
    mb_msg_clear(&m->cur);
    m->i++;
    mb_next_message(m);
}

static void mb_skip(struct wb_mailbox *m, const char *why)
{
    wb_warn("mailbox: skipping UID %" PRIu64 ": %s", m->cur.uid, why);
    mb_message_done(m);
}

/* Stops the poll on a server or database failure; the message is read
 * again next poll, unless it keeps failing there (counts: the failure may
 * be the message's own doing, not an outage). */
static void mb_fail_message(struct wb_mailbox *m, const char *why, bool counts)
{
    if (counts && mb_give_up(m, m->cur.uid)) {
        wb_error("mailbox: UID %" PRIu64 " failed %d polls in a row (%s); skipping it",
                 m->cur.uid, MAX_FAILS, why);
        mb_message_done(m);
        return;
    }
    mb_msg_clear(&m->cur);
    mb_end_poll(m, false);
}

static char *mb_short_subject(const char *s)
{
    size_t n = strlen(s);
    if (n <= SUBJECT_MAX)
        return wb_xstrdup(s);
    n = SUBJECT_MAX;
    while (n && ((unsigned char)s[n] & 0xC0) == 0x80) /* not inside a UTF-8 sequence */
        n--;
    return wb_xstrndup(s, n);
}

static void mb_on_recorded(struct wb_mailbox *m, PGresult *r)
{
    int ok = mb_sql_ok(r, "recording an event");
    if (ok <= 0) {
        mb_fail_message(m, "database", ok < 0);
        return;
    }
    if (m->cur.event && atoi(PQgetvalue(r, 0, 0)) == 0)
        wb_info("mailbox: UID %" PRIu64 ": nothing new recorded (seen before, or not our message)",
                m->cur.uid);
    if (m->cur.uid > m->last_uid)
        m->last_uid = m->cur.uid;
    mb_message_done(m);
}

/* The mail's own Message-ID, as text the database takes (valid UTF-8,
 * bounded), or NULL when it has none. */
static char *mb_mail_id(const struct wb_mail_head *h)
{
    const char *v = wb_mail_head_get(h, "Message-ID");
    if (!v)
        return NULL;
    while (*v == ' ' || *v == '\t' || *v == '<')
        v++;
    size_t n = strcspn(v, "> \t\r\n");
    if (!n)
        return NULL;
    char *id = wb_xstrndup(v, n < 250 ? n : 250);
    wb_text_clean_inplace(id, strlen(id));
    return id;
}

/* Records one event about message id (type NULL: only advances). The log
 * line names the outcome (note), never the subject: subjects stay in the
 * database. */
static void mb_record(struct wb_mailbox *m, const char *type, int64_t id, json_t *detail,
                   const char *note)
{
    char uv[24], uid[24], mid[24];
    snprintf(uv, sizeof uv, "%" PRIu64, m->uidvalidity);
    snprintf(uid, sizeof uid, "%" PRIu64, m->cur.uid);
    snprintf(mid, sizeof mid, "%" PRId64, id);
    char *d = detail ? json_dumps(detail, JSON_COMPACT) : NULL;
    json_decref(detail);
    m->cur.event = type != NULL;
    char *seen = type ? mb_mail_id(&m->cur.h) : NULL;
    const char *p[] = {m->s->key, uv, uid, type, type ? mid : NULL, d ? d : "{}", seen};
    if (type)
        wb_info("mailbox: UID %" PRIu64 ": %s%s%s about message %" PRId64, m->cur.uid, type,
                note ? " " : "", note ? note : "", id);
    if (mb_query(m, Q_RECORD, 7, p, mb_on_recorded) < 0)
        mb_fail_message(m, "database unavailable", false);
    free(seen);
    free(d);
}

static json_t *mb_subject_detail(struct wb_mailbox *m)
{
    char *s = mb_short_subject(m->cur.subject ? m->cur.subject : "");
    json_t *j = json_pack("{s:I, s:s}", "uid", (json_int_t)m->cur.uid, "subject", s);
    free(s);
    return j ? j : json_object();
}

/* The mail's own day (its Date field) for reading an out-of-office return
 * date: today's when the field is missing, unreadable or in the future. */
static int32_t mb_mail_day(const struct wb_mail_head *h)
{
    int32_t today = (int32_t)(time(NULL) / 86400), day;
    if (wb_ooo_mail_day(wb_mail_head_get(h, "Date"), &day) < 0 || day > today + 1)
        return today;
    return day;
}

/* An automatic reply's detail: with back_on when it names a return date,
 * which holds its enrollment (sql/functions/051_ooo.sql). */
static json_t *mb_auto_detail(struct wb_mailbox *m)
{
    json_t *d = mb_subject_detail(m);
    char *text = wb_mail_first_text(&m->cur.h, m->in.data ? m->in.data : "", m->in.len);
    int32_t back;
    if (wb_ooo_return_day(m->cur.subject, text, mb_mail_day(&m->cur.h), &back) == 0) {
        int y, mo, dd;
        char iso[32];
        wb_day_to_civil(back, &y, &mo, &dd);
        snprintf(iso, sizeof iso, "%04d-%02d-%02d", y, mo, dd);
        json_object_set_new(d, "back_on", json_string(iso));
    }
    free(text);
    return d;
}

static void mb_record_complaint(struct wb_mailbox *m, int64_t id)
{
    json_t *d = json_pack("{s:s, s:I}", "feedback_type", m->cur.feedback_type, "uid",
                          (json_int_t)m->cur.uid);
    mb_record(m, "complaint", id, d, m->cur.feedback_type);
}

static void mb_on_complaint_lookup(struct wb_mailbox *m, PGresult *r)
{
    int ok = mb_sql_ok(r, "looking up a complaint's Message-IDs");
    if (ok <= 0) {
        mb_fail_message(m, "database", ok < 0);
        return;
    }
    if (PQntuples(r) == 0) {
        wb_debug("mailbox: UID %" PRIu64 ": a complaint about no mail of ours", m->cur.uid);
        mb_record(m, NULL, 0, NULL, NULL);
        return;
    }
    mb_record_complaint(m, strtoll(PQgetvalue(r, 0, 0), NULL, 10));
}

/* A complaint names our mail by its VERP address (found already) or, when
 * the provider returned only the headers, by its Message-ID. */
static void mb_handle_complaint(struct wb_mailbox *m, const char *body)
{
    if (!wb_arf_is_complaint(m->cur.feedback_type)) {
        wb_info("mailbox: UID %" PRIu64 ": a feedback report of type %s: not a complaint",
                m->cur.uid, m->cur.feedback_type);
        mb_record(m, NULL, 0, NULL, NULL);
        return;
    }
    if (m->cur.has_bounce) {
        mb_record_complaint(m, m->cur.bounce_id);
        return;
    }
    char *ids[WB_ARF_MAX_IDS];
    size_t n = wb_arf_message_ids(body, m->in.len, ids);
    if (!n) {
        wb_debug("mailbox: UID %" PRIu64 ": a complaint naming no mail", m->cur.uid);
        mb_record(m, NULL, 0, NULL, NULL);
        return;
    }
    char *arr = wb_pg_array_str(ids, n, 0);
    const char *p[] = {arr};
    if (mb_query(m, Q_LOOKUP, 1, p, mb_on_complaint_lookup) < 0)
        mb_fail_message(m, "database unavailable", false);
    free(arr);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
}

static void mb_handle_bounce(struct wb_mailbox *m)
{
    char status[16];
    const char *body = m->in.data ? m->in.data : "";
    struct msg *c = &m->cur;
    if (!c->has_bounce && m->s->bounce_domain &&
        wb_mail_bounce_message(&c->h, body, m->in.len, m->s->bounce_domain, m->s->secret,
                               m->s->secret_len, &c->bounce_id) == 0)
        c->has_bounce = true;
    if (wb_arf_feedback_type(&c->h, body, m->in.len, c->feedback_type,
                             sizeof c->feedback_type) == 0) {
        mb_handle_complaint(m, body);
        return;
    }
    bool st = wb_mail_dsn_status(&c->h, body, m->in.len, status) == 0;
    if (c->has_bounce && st && (status[0] == '5' || status[0] == '4')) {
        json_t *d = json_pack("{s:s, s:s, s:I}", "kind", status[0] == '5' ? "hard" : "soft",
                              "status", status, "uid", (json_int_t)c->uid);
        mb_record(m, "bounce", c->bounce_id, d, status);
    } else if (c->has_bounce && c->is_auto) { /* an autoresponder answering MAIL FROM */
        mb_record(m, "auto_reply", c->bounce_id, mb_auto_detail(m), NULL);
    } else {
        wb_debug("mailbox: UID %" PRIu64 ": a report without a failure of ours", c->uid);
        mb_record(m, NULL, 0, NULL, NULL);
    }
}

static void mb_handle_reply(struct wb_mailbox *m)
{
    char *text = wb_mail_first_text(&m->cur.h, m->in.data ? m->in.data : "", m->in.len);
    struct wb_intent_result in = {WB_INTENT_NEUTRAL, -1, false};
    if (m->s->rules)
        wb_intent_decide(m->s->rules, text ? text : "", &in);
    free(text);
    json_t *d = mb_subject_detail(m);
    json_object_set_new(d, "intent", json_string(wb_intent_name(in.intent)));
    /* The model's probability, for whoever reads the event or the handoff;
     * a phrase rule's verdict has none. */
    if (in.by_model)
        json_object_set_new(d, "confidence", json_real(round(in.confidence * 1000) / 1000));
    mb_record(m, "reply", m->cur.reply_id, d, wb_intent_name(in.intent));
}

static void mb_on_text(struct wb_mailbox *m, CURLcode rc)
{
    if (mb_server_error(rc)) {
        wb_warn("mailbox: reading UID %" PRIu64 ": %s", m->cur.uid, curl_easy_strerror(rc));
        mb_fail_message(m, curl_easy_strerror(rc), true);
        return;
    }
    /* A body cut at the cap or missing is still classified from what came. */
    if (m->cur.want == WANT_BOUNCE)
        mb_handle_bounce(m);
    else if (m->cur.want == WANT_AUTO)
        mb_record(m, "auto_reply", m->cur.reply_id, mb_auto_detail(m), NULL);
    else
        mb_handle_reply(m);
}

static void mb_fetch_text(struct wb_mailbox *m)
{
    char *url = wb_xasprintf("%s;UIDVALIDITY=%" PRIu64 "/;UID=%" PRIu64 "/;SECTION=TEXT;PARTIAL=0.%d",
                             m->s->base, m->uidvalidity, m->cur.uid, TEXT_CAP);
    if (mb_transfer(m, url, NULL, TEXT_CAP + 1024, false, mb_on_text) < 0)
        mb_fail_message(m, "curl refused the transfer", false);
    free(url);
}

static void mb_on_lookup(struct wb_mailbox *m, PGresult *r)
{
    int ok = mb_sql_ok(r, "looking up Message-IDs");
    if (ok <= 0) {
        mb_fail_message(m, "database", ok < 0);
        return;
    }
    if (PQntuples(r) == 0) {
        wb_debug("mailbox: UID %" PRIu64 ": not a reply to our mail", m->cur.uid);
        mb_message_done(m);
        return;
    }
    m->cur.reply_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    /* An automatic reply's text may name a return date: read it too. */
    m->cur.want = m->cur.is_auto ? WANT_AUTO : WANT_REPLY;
    mb_fetch_text(m);
}

static bool mb_is_report(const struct wb_mail_head *h)
{
    const char *ct = wb_mail_head_get(h, "Content-Type");
    return ct && !strncasecmp(ct, "multipart/report", 16);
}

/* Decides from the header what else the message needs. */
static void mb_classify(struct wb_mailbox *m)
{
    struct msg *c = &m->cur;
    const char *subj = wb_mail_head_get(&c->h, "Subject");
    c->subject = wb_mail_decode_words(subj ? subj : "");
    c->is_auto = wb_mail_is_auto(&c->h) ||
                 (m->s->rules && wb_intent_ooo_subject(m->s->rules, c->subject));
    c->n_refs = wb_mail_refs(&c->h, &c->refs);
    if (m->s->bounce_domain &&
        wb_mail_bounce_message(&c->h, NULL, 0, m->s->bounce_domain, m->s->secret,
                               m->s->secret_len, &c->bounce_id) == 0)
        c->has_bounce = true;
    if (c->has_bounce || mb_is_report(&c->h)) {
        c->want = WANT_BOUNCE;
        mb_fetch_text(m);
        return;
    }
    if (!c->n_refs) {
        wb_debug("mailbox: UID %" PRIu64 ": neither a reply nor a bounce", c->uid);
        mb_message_done(m);
        return;
    }
    char *arr = wb_pg_array_str(c->refs, c->n_refs, 0);
    const char *p[] = {arr};
    if (mb_query(m, Q_LOOKUP, 1, p, mb_on_lookup) < 0)
        mb_fail_message(m, "database unavailable", false);
    free(arr);
}

static void mb_on_headers(struct wb_mailbox *m, CURLcode rc)
{
    if (rc == CURLE_REMOTE_FILE_NOT_FOUND) {
        mb_skip(m, "gone from the mailbox");
        return;
    }
    if (m->overflow) {
        mb_skip(m, "header over 64 KB");
        return;
    }
    if (mb_server_error(rc)) {
        wb_warn("mailbox: reading UID %" PRIu64 ": %s", m->cur.uid, curl_easy_strerror(rc));
        mb_fail_message(m, curl_easy_strerror(rc), true);
        return;
    }
    if (wb_mail_head_parse(m->in.data ? m->in.data : "", m->in.len, &m->cur.h, NULL) < 0) {
        mb_skip(m, "malformed header");
        return;
    }
    if (!wb_mail_head_get(&m->cur.h, "From")) { /* RFC 5322 requires one */
        mb_skip(m, "no From field: not a mail message");
        return;
    }
    mb_classify(m);
}

static void mb_next_message(struct wb_mailbox *m)
{
    if (m->i >= m->n_uids || m->i >= MAX_PER_POLL) {
        if (m->n_uids > MAX_PER_POLL)
            wb_engine_kick(&m->e); /* more to read: the next poll right after */
        if (m->done_uid > m->last_uid) { /* persist the uninteresting tail */
            m->cur.uid = m->done_uid;
            m->last_uid = m->done_uid;
            m->i = m->n_uids = 0;
            mb_record(m, NULL, 0, NULL, NULL);
            return;
        }
        mb_end_poll(m, true);
        return;
    }
    memset(&m->cur, 0, sizeof m->cur);
    m->cur.uid = m->uids[m->i];
    char *url = wb_xasprintf("%s;UIDVALIDITY=%" PRIu64 "/;UID=%" PRIu64
                             "/;SECTION=HEADER.FIELDS%%20(%s)",
                             m->s->base, m->uidvalidity, m->cur.uid, HEADER_FIELDS);
    if (mb_transfer(m, url, NULL, HEAD_CAP, false, mb_on_headers) < 0)
        mb_fail_message(m, "curl refused the transfer", false);
    free(url);
}

/* ---- one poll ---------------------------------------------------------- */

/* UIDs above last_uid from the "* SEARCH n n n" lines, sorted, unique. */
static void mb_parse_search(struct wb_mailbox *m)
{
    free(m->uids);
    m->n_uids = wb_imap_search_uids(m->in.data ? m->in.data : "", m->last_uid, &m->uids);
}

static void mb_on_search(struct wb_mailbox *m, CURLcode rc)
{
    if (rc != CURLE_OK) {
        wb_warn("mailbox: UID SEARCH on %s: %s", m->s->key, curl_easy_strerror(rc));
        mb_end_poll(m, false);
        return;
    }
    mb_parse_search(m);
    if (m->n_uids)
        wb_debug("mailbox: %zu new message(s) on %s", m->n_uids, m->s->key);
    m->i = 0;
    m->done_uid = m->last_uid;
    /* Only expunged UIDs below UIDNEXT: move past them, no new mail can
     * take them. */
    if (!m->n_uids && m->uidnext > m->last_uid + 1)
        m->done_uid = m->uidnext - 1;
    mb_next_message(m);
}

static void mb_search(struct wb_mailbox *m)
{
    if (m->uidnext && m->uidnext <= m->last_uid + 1) {
        mb_end_poll(m, true); /* nothing new */
        return;
    }
    char cmd[64];
    snprintf(cmd, sizeof cmd, "UID SEARCH UID %" PRIu64 ":*", m->last_uid + 1);
    char *url = wb_xasprintf("%s;UIDVALIDITY=%" PRIu64, m->s->base, m->uidvalidity);
    if (mb_transfer(m, url, cmd, SEARCH_CAP, false, mb_on_search) < 0)
        mb_end_poll(m, false);
    free(url);
}

static void mb_on_reset(struct wb_mailbox *m, PGresult *r)
{
    if (mb_sql_ok(r, "storing UIDVALIDITY") <= 0) {
        mb_end_poll(m, false);
        return;
    }
    mb_search(m);
}

static void mb_on_status(struct wb_mailbox *m, CURLcode rc)
{
    const char *s = m->in.data ? m->in.data : "";
    uint64_t v = rc == CURLE_OK ? wb_imap_status_value(s, "UIDVALIDITY ") : 0;
    if (rc == CURLE_LOGIN_DENIED && m->s->auth != WB_AUTH_PASSWORD && m->bearer)
        wb_oauth_auth_failed(m->oauth, m->s->sender, m->s->provider, m->bearer);
    if (!v) {
        wb_warn("mailbox: STATUS on %s: %s", m->s->key,
                rc == CURLE_OK ? "no UIDVALIDITY in the answer" : curl_easy_strerror(rc));
        mb_end_poll(m, false);
        return;
    }
    m->uidnext = wb_imap_status_value(s, "UIDNEXT ");
    if (v == m->uidvalidity) {
        mb_search(m);
        return;
    }
    if (m->uidvalidity)
        wb_warn("mailbox: UIDVALIDITY of %s changed from %" PRIu64 " to %" PRIu64
                "; reading it again from the start", m->s->key, m->uidvalidity, v);
    m->uidvalidity = v;
    m->last_uid = 0;
    char vs[24];
    snprintf(vs, sizeof vs, "%" PRIu64, v);
    const char *p[] = {m->s->key, vs};
    if (mb_query(m, Q_RESET, 2, p, mb_on_reset) < 0)
        mb_end_poll(m, false);
}

/* IMAP mailbox names go as quoted strings. */
static char *mb_quoted(const char *s)
{
    struct wb_buf b;
    wb_buf_init(&b);
    wb_buf_putc(&b, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            wb_buf_putc(&b, '\\');
        if ((unsigned char)*s >= ' ')
            wb_buf_putc(&b, *s);
    }
    wb_buf_putc(&b, '"');
    return wb_buf_steal(&b);
}

static void mb_on_state(struct wb_mailbox *m, PGresult *r)
{
    if (mb_sql_ok(r, "reading mailbox_state") <= 0 || PQntuples(r) != 1) {
        mb_end_poll(m, false);
        return;
    }
    m->uidvalidity = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    m->last_uid = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
    char *q = mb_quoted(m->s->mailbox);
    char *cmd = wb_xasprintf("STATUS %s (UIDVALIDITY UIDNEXT)", q);
    if (mb_transfer(m, m->s->server, cmd, HEAD_CAP, true, mb_on_status) < 0)
        mb_end_poll(m, false);
    free(cmd);
    free(q);
}

static void mb_end_poll(struct wb_mailbox *m, bool ok)
{
    (void)ok;
    free(m->uids);
    m->uids = NULL;
    m->n_uids = m->i = 0;
    wb_engine_round_end(&m->e, (uint64_t)m->s->poll_s * 1000);
}

static void mb_drop_bearer(struct wb_mailbox *m)
{
    wb_oauth_wipe(m->bearer);
    m->bearer = NULL;
}

/* The access token this poll logs in with (kept for the poll: its
 * transfers share one connection); -1 when an OAuth mailbox has none yet. */
static int mb_take_bearer(struct wb_mailbox *m)
{
    mb_drop_bearer(m);
    if (m->s->auth == WB_AUTH_PASSWORD)
        return 0;
    const char *t = m->oauth && m->s->sender
                        ? wb_oauth_token(m->oauth, m->s->sender, m->s->provider) : NULL;
    if (!t)
        return -1;
    m->bearer = wb_xstrdup(t);
    return 0;
}

static void mb_round(void *ud)
{
    struct wb_mailbox *m = ud;
    if (m->next) { /* a reload lands between polls */
        mb_settings_free(m->s);
        m->s = m->next;
        m->next = NULL;
    }
    if (!wb_pg_ready(m->pg)) {
        wb_engine_round_end(&m->e, DB_WAIT_MS);
        return;
    }
    if (mb_take_bearer(m) < 0) { /* the keeper's change kicks us */
        wb_engine_round_end(&m->e, (uint64_t)m->s->poll_s * 1000);
        return;
    }
    const char *p[] = {m->s->key};
    if (mb_query(m, Q_STATE, 1, p, mb_on_state) < 0)
        mb_end_poll(m, false);
}

/* A statement in flight is waited for: its outcome is then known. */
static bool mb_idle(void *ud)
{
    return !((struct wb_mailbox *)ud)->sql_pending;
}

static const struct wb_engine_ops mb_ops = {
    .name = "mailbox",
    .round = mb_round,
    .idle = mb_idle,
};

/* ---- lifetime --------------------------------------------------------- */

struct wb_mailbox *wb_mailbox_new(uv_loop_t *loop, struct wb_pg *pg, const struct wb_config *cfg,
                                  const char *sender, struct wb_oauth *oauth)
{
    struct settings *s = mb_settings_new(cfg, sender);
    if (!s || !s->rules) {
        mb_settings_free(s);
        return NULL;
    }
    struct wb_curl_thread *ct = wb_curl_thread_new(loop);
    if (!ct) {
        wb_error("mailbox: cannot start its worker thread");
        mb_settings_free(s);
        return NULL;
    }
    struct wb_mailbox *m = wb_xcalloc(1, sizeof *m);
    m->loop = loop;
    m->ct = ct;
    m->pg = pg;
    m->oauth = oauth;
    m->s = s;
    wb_buf_init(&m->in);
    wb_engine_init(&m->e, loop, &mb_ops, m);
    wb_info("mailbox: polling %s every %d s", s->key, s->poll_s);
    return m;
}

void wb_mailbox_set_config(struct wb_mailbox *m, const struct wb_config *cfg)
{
    struct settings *s = mb_settings_new(cfg, m->s->sender);
    if (!s || !s->rules) { /* logged by settings_new */
        wb_error("mailbox: keeping the previous mailbox settings");
        mb_settings_free(s);
        return;
    }
    mb_settings_free(m->next);
    m->next = s;
    if (!wb_engine_in_round(&m->e))
        wb_engine_kick(&m->e);
}

void wb_mailbox_start(struct wb_mailbox *m)
{
    wb_engine_start(&m->e);
}

void wb_mailbox_poll_now(struct wb_mailbox *m)
{
    wb_engine_kick(&m->e);
}

static void mb_abandon(struct wb_mailbox *m)
{
    if (m->xfer) { /* its messages are read again next time */
        /* Waits (up to about a second) for the worker to let go of easy. */
        wb_curl_thread_cancel(m->ct, m->easy);
        m->xfer = false;
    }
    mb_msg_clear(&m->cur);
}

/* The poll in flight is abandoned where it stands: the next daemon reads
 * its messages again. */
void wb_mailbox_drain(struct wb_mailbox *m, void (*done)(void *ud), void *ud)
{
    if (wb_engine_draining(&m->e))
        return;
    mb_abandon(m);
    wb_engine_drain(&m->e, DRAIN_MS, done, ud);
    if (wb_engine_in_round(&m->e))
        wb_engine_round_idle(&m->e);
}

static void mb_closed(void *ud)
{
    struct wb_mailbox *m = ud;
    mb_drop_bearer(m);
    mb_settings_free(m->s);
    mb_settings_free(m->next);
    free(m->uids);
    wb_buf_free(&m->in);
    free(m);
}

/* The thread first: nothing runs easy after it. The cleanup then logs
 * out of the one cached connection, on the loop, once, at the end: a
 * server that never answers holds it LOGOUT_WAIT_S at most. */
static void mb_release(struct wb_mailbox *m)
{
    wb_curl_thread_free(m->ct);
    m->ct = NULL;
    if (m->easy) {
        curl_easy_setopt(m->easy, CURLOPT_SERVER_RESPONSE_TIMEOUT, (long)LOGOUT_WAIT_S);
        curl_easy_cleanup(m->easy);
    }
    m->easy = NULL;
    wb_engine_stop(&m->e, mb_closed, m);
}

void wb_mailbox_stop(struct wb_mailbox *m)
{
    if (!m || m->freeing)
        return;
    m->freeing = true;
    mb_abandon(m);
    if (!m->sql_pending) /* else the last result releases it */
        mb_release(m);
}
