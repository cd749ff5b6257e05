/* `warmbench login SENDER` (see login_cli.h). */
#include "warmbench/login_cli.h"
#include "warmbench/buf.h"
#include "warmbench/db.h"
#include "warmbench/exitcodes.h"
#include "warmbench/oauth.h"
#include "warmbench/oauth_parse.h"
#include "warmbench/oauth_store.h"
#include "warmbench/util.h"
#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define RESP_MAX 65536
#define DEVICE_GRANT "urn:ietf:params:oauth:grant-type:device_code"
#define SLOW_DOWN_S 5   /* RFC 8628 3.5 */
#define TRANSIENT_MAX 10

static const char ok_sql[] =
    "WITH s AS (INSERT INTO sender_state (sender, state, reason, updated_at)"
    "  VALUES ($1, 'ok', 'logged in', now())"
    "  ON CONFLICT (sender) DO UPDATE SET state = 'ok', reason = 'logged in', updated_at = now()"
    "  RETURNING 1)"
    "SELECT pg_notify('wb_sender_state', $1) FROM s";

struct lc_resp {
    struct wb_buf body;
    bool too_big;
};

static size_t lc_on_body(char *p, size_t size, size_t n, void *ud)
{
    struct lc_resp *r = ud;
    size_t len = size * n;
    if (r->body.len + len > RESP_MAX) {
        r->too_big = true;
        return 0;
    }
    wb_buf_append(&r->body, p, len);
    return len;
}

static void lc_form_add(struct wb_buf *b, CURL *e, const char *key, const char *val)
{
    char *v = curl_easy_escape(e, val ? val : "", 0);
    if (!v)
        abort();
    wb_buf_printf(b, "%s%s=%s", b->len ? "&" : "", key, v);
    OPENSSL_cleanse(v, strlen(v));
    curl_free(v);
}

/* POSTs a form; fills *status and r. Returns the curl code; on a network
 * error `neterr` says what. The body holds secrets: wiped after. */
static CURLcode lc_post(const char *url, const char *const *kv, long *status, struct lc_resp *r,
                        char neterr[CURL_ERROR_SIZE])
{
    CURL *e = curl_easy_init();
    if (!e)
        abort();
    struct wb_buf form;
    wb_buf_init(&form);
    for (size_t i = 0; kv[i]; i += 2)
        if (kv[i + 1])
            lc_form_add(&form, e, kv[i], kv[i + 1]);
    struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
    neterr[0] = '\0';
    wb_buf_init(&r->body);
    r->too_big = false;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, form.data ? form.data : "");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "warmbench/" WB_VERSION);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, lc_on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, neterr);
    CURLcode rc = curl_easy_perform(e);
    *status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    if (rc != CURLE_OK && !neterr[0])
        snprintf(neterr, CURL_ERROR_SIZE, "%s", curl_easy_strerror(rc));
    curl_easy_cleanup(e);
    curl_slist_free_all(h);
    if (form.data)
        OPENSSL_cleanse(form.data, form.len);
    wb_buf_free(&form);
    return rc;
}

static void lc_resp_free(struct lc_resp *r)
{
    if (r->body.data)
        OPENSSL_cleanse(r->body.data, r->body.len);
    wb_buf_free(&r->body);
}

static void lc_sleep(long s)
{
    struct timespec ts = {.tv_sec = s};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* The folder holds refresh tokens: created 0700 when missing. */
static int lc_tokens_dir(const char *dir, FILE *err)
{
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        fprintf(err, "warmbench: login: creating %s: %s\n", dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* Polls until the user approved (0, *refresh set), or an exit code. */
static int lc_poll(const struct wb_oauth_provider *p, const struct wb_oauth_device *dev,
                   char **refresh, FILE *err)
{
    long interval = dev->interval;
    time_t deadline = time(NULL) + dev->expires_in;
    int transient = 0;
    const char *kv[] = {"grant_type", DEVICE_GRANT, "device_code", dev->device_code,
                        "client_id", p->client_id, "client_secret", p->client_secret, NULL};
    for (;;) {
        lc_sleep(interval);
        if (time(NULL) > deadline) {
            fprintf(err, "warmbench: login: the code expired before it was approved; "
                         "run the command again\n");
            return WB_EXIT_FAIL;
        }
        long status;
        struct lc_resp r;
        char neterr[CURL_ERROR_SIZE];
        CURLcode rc = lc_post(p->token_url, kv, &status, &r, neterr);
        struct wb_oauth_reply rep = {0};
        if (rc == CURLE_OK)
            wb_oauth_parse_token(status, r.body.data, r.body.len, &rep);
        lc_resp_free(&r);
        int out = -1;
        if (rc != CURLE_OK || rep.kind == WB_OAUTH_REPLY_BAD) {
            /* A blip (5xx, a reset) does not end a login the user is doing. */
            if (++transient > TRANSIENT_MAX) {
                fprintf(err, "warmbench: login: %s: %s\n", p->token_url,
                        rc != CURLE_OK ? neterr : rep.message);
                out = rc != CURLE_OK ? WB_EXIT_UNAVAILABLE : WB_EXIT_FAIL;
            }
        } else if (rep.kind == WB_OAUTH_REPLY_TOKEN) {
            if (!rep.refresh_token) {
                fprintf(err, "warmbench: login: %s granted no refresh token (the provider "
                             "must allow offline access for this client)\n", p->name);
                out = WB_EXIT_FAIL;
            } else {
                *refresh = rep.refresh_token;
                rep.refresh_token = NULL;
                out = WB_EXIT_OK;
            }
        } else if (!strcmp(rep.error, "authorization_pending")) {
            transient = 0;
        } else if (!strcmp(rep.error, "slow_down")) {
            interval += SLOW_DOWN_S;
        } else if (!strcmp(rep.error, "access_denied")) {
            fprintf(err, "warmbench: login: the sign-in was refused\n");
            out = WB_EXIT_FAIL;
        } else if (!strcmp(rep.error, "expired_token")) {
            fprintf(err, "warmbench: login: the code expired; run the command again\n");
            out = WB_EXIT_FAIL;
        } else {
            fprintf(err, "warmbench: login: %s: %s\n", p->token_url, rep.message);
            out = WB_EXIT_FAIL;
        }
        wb_oauth_reply_free(&rep);
        if (out >= 0)
            return out;
    }
}

static int lc_login_one(const char *sender, const struct wb_oauth_provider *p,
                        FILE *out, FILE *err)
{
    if (!p->device_url) {
        fprintf(err, "warmbench: login: oauth provider \"%s\" has no device_url\n", p->name);
        return WB_EXIT_CONFIG;
    }
    char *path = wb_oauth_store_path(p->tokens_dir, sender);
    if (!path) {
        fprintf(err, "warmbench: login: sender \"%s\" cannot name a token file\n", sender);
        return WB_EXIT_CONFIG;
    }
    const char *kv[] = {"client_id", p->client_id, "scope", p->scope, NULL};
    long status;
    struct lc_resp r;
    char neterr[CURL_ERROR_SIZE];
    CURLcode rc = lc_post(p->device_url, kv, &status, &r, neterr);
    struct wb_oauth_device dev;
    struct wb_oauth_reply rep = {0};
    bool ok = rc == CURLE_OK && wb_oauth_parse_device(status, r.body.data, r.body.len, &dev, &rep);
    lc_resp_free(&r);
    if (!ok) {
        fprintf(err, "warmbench: login: %s: %s\n", p->device_url,
                rc != CURLE_OK ? neterr : rep.message);
        wb_oauth_reply_free(&rep);
        free(path);
        return rc != CURLE_OK ? WB_EXIT_UNAVAILABLE : WB_EXIT_FAIL;
    }
    fprintf(out, "To sign in sender %s with %s, open\n  %s\nand enter the code\n  %s\n",
            sender, p->name, dev.verification_uri, dev.user_code);
    if (dev.verification_uri_complete)
        fprintf(out, "(or open %s)\n", dev.verification_uri_complete);
    fprintf(out, "Waiting for the approval (the code expires in %ld min)...\n",
            (dev.expires_in + 59) / 60);
    fflush(out);
    char *refresh = NULL;
    int code = lc_poll(p, &dev, &refresh, err);
    wb_oauth_device_free(&dev);
    if (code == WB_EXIT_OK) {
        char *why = NULL;
        if (lc_tokens_dir(p->tokens_dir, err) < 0)
            code = WB_EXIT_FAIL;
        else if (wb_oauth_store_write(path, p->name, refresh, NULL, &why) < 0) {
            fprintf(err, "warmbench: login: %s\n", why);
            code = WB_EXIT_FAIL;
        } else {
            fprintf(out, "Signed in: the refresh token is stored in %s\n", path);
        }
        free(why);
    }
    wb_oauth_wipe(refresh);
    free(path);
    return code;
}

int wb_cmd_login(PGconn *c, const struct wb_config *cfg, const char *sender, FILE *out,
                 FILE *err)
{
    if (!wb_config_sender(cfg, sender)) {
        fprintf(err, "warmbench: login: unknown sender \"%s\" (not in %s)\n", sender, cfg->path);
        return WB_EXIT_USAGE;
    }
    size_t n;
    struct wb_oauth_account *acc = wb_oauth_accounts_from_config(cfg, &n);
    int code = WB_EXIT_OK, found = 0;
    for (size_t i = 0; i < n && code == WB_EXIT_OK; i++) {
        if (strcmp(acc[i].sender, sender))
            continue;
        found++;
        code = lc_login_one(sender, acc[i].provider, out, err);
    }
    free(acc);
    if (!found) {
        fprintf(err, "warmbench: login: sender \"%s\" uses no OAuth (its smtp and mailbox "
                     "\"auth\" are password)\n", sender);
        return WB_EXIT_USAGE;
    }
    if (code != WB_EXIT_OK || !c)
        return code;
    const char *params[] = {sender};
    PGresult *r = wb_db_exec(c, PGRES_TUPLES_OK, "marking the sender ok", ok_sql, 1, params);
    if (!r)
        return WB_EXIT_FAIL;
    PQclear(r);
    fprintf(out, "Sender %s is ok; a running daemon picks the token up now.\n", sender);
    return WB_EXIT_OK;
}

size_t wb_oauth_check_token_files(const struct wb_config *cfg, FILE *out, FILE *err)
{
    (void)out; /* the notes and errors go to err: out keeps check-config's one result line */
    size_t n = 0, bad = 0;
    struct wb_oauth_account *acc = wb_oauth_accounts_from_config(cfg, &n);
    for (size_t i = 0; i < n; i++) {
        char *path = wb_oauth_store_path(acc[i].provider->tokens_dir, acc[i].sender);
        char *refresh = NULL, *why = NULL;
        enum wb_oauth_store_rc rc = path ? wb_oauth_store_read(path, &refresh, NULL, &why)
                                         : WB_OAUTH_STORE_ERROR;
        if (rc == WB_OAUTH_STORE_MISSING)
            fprintf(err, "note: sender %s has no token yet: run 'warmbench login %s'\n",
                    acc[i].sender, acc[i].sender);
        else if (rc != WB_OAUTH_STORE_OK) {
            fprintf(err, "%s\n", why ? why : "a token file cannot be named for this sender");
            bad++;
        }
        if (refresh)
            wb_oauth_wipe(refresh);
        free(why);
        free(path);
    }
    free(acc);
    return bad;
}
