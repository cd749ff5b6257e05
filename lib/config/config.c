/* warmbench.json: daemon settings, secrets and senders, one key table per
 * section (cfkeys.h); sequences are then loaded by sequence.c, given the
 * folders and the sender names. */
#include "warmbench/config.h"
#include "warmbench/ats_config.h"
#include "warmbench/cfkeys.h"
#include "warmbench/jsonval.h"
#include "warmbench/notice.h"
#include "warmbench/readfile.h"
#include "warmbench/util.h"
#include <stdlib.h>
#include <string.h>

/* The storage of every key, from struct wb_config. */
#define CF(f) offsetof(struct wb_config, f)
#define SND(f) offsetof(struct wb_sender, f)

static const char *const TLS_NAMES[] = {"required", "try", "off", NULL};
static const char *const AUTH_NAMES[] = {"password", "xoauth2", "oauthbearer", NULL};
static const char *const LOG_LEVELS[] = {"debug", "info", "warn", "error", NULL};
static const char *const LOG_FORMATS[] = {"text", "json", NULL};
static const char *const SCORING_KEYS[] = {"weights", "half_life_days", "ready_threshold", NULL};

/* Enums are stored as int by the loader. */
_Static_assert(sizeof(enum wb_tls) == sizeof(int), "enum wb_tls is int-sized");
_Static_assert(sizeof(enum wb_auth) == sizeof(int), "enum wb_auth is int-sized");
_Static_assert(sizeof(enum wb_log_level) == sizeof(int), "enum wb_log_level is int-sized");
_Static_assert(sizeof(enum wb_log_format) == sizeof(int), "enum wb_log_format is int-sized");

static const struct wb_cf_key HTTP[] = {
    WB_CF_STR("listen", WB_CFT_LISTEN, struct wb_config, http.listen, WB_CF_REQUIRED, NULL),
    WB_CF_STR("admin_listen", WB_CFT_LISTEN, struct wb_config, http.admin_listen, 0, NULL),
    WB_CF_STR("public_url", WB_CFT_URL, struct wb_config, http.public_url,
              WB_CF_REQUIRED | WB_CF_TRIM_SLASH, "http"),
    WB_CF_INT("machine_click_s", struct wb_config, http.machine_click_s, 0, 0, 5),
    WB_CF_END};

/* smtp and mailbox, top-level and in a sender, where the same tables load
 * as overlays (every key optional) that the top-level block fills in. */
static const struct wb_cf_key SMTP[] = {
    WB_CF_STR("url", WB_CFT_URL, struct wb_smtp_cfg, url, WB_CF_REQUIRED, "smtp"),
    WB_CF_STR("username", WB_CFT_STRING, struct wb_smtp_cfg, username, WB_CF_EMPTY_NULL, NULL),
    WB_CF_SECRET("password_file", struct wb_smtp_cfg, password_file, WB_CF_EMPTY_NULL,
                 offsetof(struct wb_smtp_cfg, password), WB_CF_NONE),
    WB_CF_ENUM("tls", struct wb_smtp_cfg, tls, WB_TLS_REQUIRED, TLS_NAMES, NULL, NULL),
    WB_CF_ENUM("auth", struct wb_smtp_cfg, auth, WB_AUTH_PASSWORD, AUTH_NAMES, NULL, NULL),
    WB_CF_STR("oauth", WB_CFT_STRING, struct wb_smtp_cfg, oauth_name, WB_CF_NONEMPTY, NULL),
    WB_CF_INT("connections", struct wb_smtp_cfg, connections, 0, 1, 8),
    WB_CF_INT("timeout_s", struct wb_smtp_cfg, timeout_s, 0, 1, 30),
    WB_CF_INT("retry_base_s", struct wb_smtp_cfg, retry_base_s, 0, 1, 60),
    WB_CF_END};

static const struct wb_cf_key MAILBOX[] = {
    WB_CF_STR("url", WB_CFT_URL, struct wb_mailbox_cfg, url, WB_CF_REQUIRED, "imap"),
    WB_CF_STR("username", WB_CFT_STRING, struct wb_mailbox_cfg, username, WB_CF_EMPTY_NULL,
              NULL),
    WB_CF_SECRET("password_file", struct wb_mailbox_cfg, password_file, WB_CF_EMPTY_NULL,
                 offsetof(struct wb_mailbox_cfg, password), WB_CF_NONE),
    WB_CF_ENUM("tls", struct wb_mailbox_cfg, tls, WB_TLS_REQUIRED, TLS_NAMES, NULL, NULL),
    WB_CF_ENUM("auth", struct wb_mailbox_cfg, auth, WB_AUTH_PASSWORD, AUTH_NAMES, NULL, NULL),
    WB_CF_STR("oauth", WB_CFT_STRING, struct wb_mailbox_cfg, oauth_name, WB_CF_NONEMPTY, NULL),
    WB_CF_INT("poll_s", struct wb_mailbox_cfg, poll_s, 0, 1, 60),
    WB_CF_END};

/* One entry of "oauth"; its name is the key it is written under. */
static const struct wb_cf_key OAUTH[] = {
    WB_CF_STR("token_url", WB_CFT_HTTPS, struct wb_oauth_provider, token_url, WB_CF_REQUIRED,
              NULL),
    WB_CF_STR("device_url", WB_CFT_HTTPS, struct wb_oauth_provider, device_url,
              WB_CF_EMPTY_NULL, NULL),
    WB_CF_STR("client_id", WB_CFT_STRING, struct wb_oauth_provider, client_id,
              WB_CF_REQUIRED | WB_CF_NONEMPTY, NULL),
    WB_CF_SECRET("client_secret_file", struct wb_oauth_provider, client_secret_file,
                 WB_CF_EMPTY_NULL | WB_CF_RESOLVE,
                 offsetof(struct wb_oauth_provider, client_secret), WB_CF_NONE),
    WB_CF_STR("scope", WB_CFT_STRING, struct wb_oauth_provider, scope, WB_CF_EMPTY_NULL, NULL),
    WB_CF_STR("tokens_dir", WB_CFT_DIR, struct wb_oauth_provider, tokens_dir, 0, "tokens"),
    WB_CF_END};

/* Days far beyond any outreach plan would only overflow timestamps. */
static const struct wb_cf_key CONTACT[] = {
    WB_CF_INTR("cooldown_days", struct wb_config, contact_policy.cooldown_days, 0, 0, 3650, 0),
    WB_CF_INT("max_per_30_days", struct wb_config, contact_policy.max_per_30_days, 0, 0, 0),
    WB_CF_END};

/* "ats" "api": which keys a kind needs is checked by wb_ats_config_check. */
static const struct wb_cf_key ATS_API[] = {
    WB_CF_STR("base_url", WB_CFT_HTTPS, struct wb_config, ats.api.base_url,
              WB_CF_EMPTY_NULL | WB_CF_TRIM_SLASH, NULL),
    WB_CF_STR("token_url", WB_CFT_HTTPS, struct wb_config, ats.api.token_url, WB_CF_EMPTY_NULL,
              NULL),
    WB_CF_STR("client_id", WB_CFT_STRING, struct wb_config, ats.api.client_id, WB_CF_EMPTY_NULL,
              NULL),
    WB_CF_STR("user_id", WB_CFT_STRING, struct wb_config, ats.api.user_id, WB_CF_EMPTY_NULL,
              NULL),
    WB_CF_SECRET("client_secret_file", struct wb_config, ats.api.client_secret_file,
                 WB_CF_EMPTY_NULL, CF(ats.api.client_secret), CF(ats.api.client_secret_len)),
    WB_CF_SECRET("api_key_file", struct wb_config, ats.api.api_key_file, WB_CF_EMPTY_NULL,
                 CF(ats.api.api_key), CF(ats.api.api_key_len)),
    WB_CF_SECRET("token_file", struct wb_config, ats.api.token_file, WB_CF_EMPTY_NULL,
                 CF(ats.api.token), CF(ats.api.token_len)),
    WB_CF_END};

static const struct wb_cf_key ATS[] = {
    WB_CF_STR("kind", WB_CFT_STRING, struct wb_config, ats.kind, WB_CF_EMPTY_NULL, NULL),
    /* Required for kind "webhook" only (wb_ats_config_check). */
    WB_CF_STR("webhook_url", WB_CFT_URL, struct wb_config, ats.webhook_url, 0, "http"),
    WB_CF_SECRET("secret_file", struct wb_config, ats.secret_file, WB_CF_EMPTY_NULL,
                 CF(ats.secret), CF(ats.secret_len)),
    WB_CF_INT("max_attempts", struct wb_config, ats.max_attempts, 0, 1, 12),
    WB_CF_INT("retry_base_s", struct wb_config, ats.retry_base_s, 0, 1, 10),
    WB_CF_SECT("api", 0, ATS_API, CF(ats.has_api)),
    WB_CF_SECRET("webhook_secret_file", struct wb_config, ats.webhook_secret_file,
                 WB_CF_EMPTY_NULL, CF(ats.webhook_secret), CF(ats.webhook_secret_len)),
    WB_CF_STR("job_id", WB_CFT_STRING, struct wb_config, ats.job_id, WB_CF_EMPTY_NULL, NULL),
    WB_CF_STR("source", WB_CFT_STRING, struct wb_config, ats.source, WB_CF_EMPTY_NULL, NULL),
    WB_CF_STR("rejected_enroll", WB_CFT_STRING, struct wb_config, ats.rejected_enroll,
              WB_CF_EMPTY_NULL, NULL),
    WB_CF_END};

static const struct wb_cf_key TASKS[] = {
    WB_CF_STR("webhook_url", WB_CFT_URL, struct wb_config, tasks.webhook_url, WB_CF_EMPTY_NULL,
              "http"),
    WB_CF_SECRET("secret_file", struct wb_config, tasks.secret_file, WB_CF_EMPTY_NULL,
                 CF(tasks.secret), CF(tasks.secret_len)),
    WB_CF_INTR("expire_days", struct wb_config, tasks.expire_days, 0, 1, 365, 7),
    WB_CF_END};

static const struct wb_cf_key WARMUP[] = {
    WB_CF_INT("start", struct wb_warmup, start, WB_CF_REQUIRED, 1, 0),
    WB_CF_INT("step", struct wb_warmup, step, 0, 0, 0),
    WB_CF_INTR("every_days", struct wb_warmup, every_days, 0, 1, 365, 1),
    WB_CF_END};

static const struct wb_cf_key GUARD[] = {
    WB_CF_NUM("max_bounce_rate", struct wb_guard, max_bounce_rate, offsetof(struct wb_guard, has_bounce)),
    WB_CF_NUM("max_complaint_rate", struct wb_guard, max_complaint_rate,
              offsetof(struct wb_guard, has_complaint)),
    WB_CF_INT("min_sample", struct wb_guard, min_sample, 0, 1, 50),
    WB_CF_INTR("window_days", struct wb_guard, window_days, 0, 1, 365, 7),
    WB_CF_END};

/* One entry of "senders"; its id is the key it is written under. */
static const struct wb_cf_key SENDER[] = {
    WB_CF_ADDR("from", struct wb_sender, from, WB_CF_REQUIRED, SND(from_name), SND(from_email),
               " (use Name <addr@domain>)"),
    WB_CF_ADDR("reply_to", struct wb_sender, reply_to, WB_CF_EMPTY_NULL, SND(reply_to_name),
               SND(reply_to_email),
               NULL),
    WB_CF_INT("daily_limit", struct wb_sender, daily_limit, 0, 0, 0),
    WB_CF_INT("min_interval_s", struct wb_sender, min_interval_s, 0, 0, 0),
    WB_CF_SECT_AT("smtp", struct wb_sender, smtp, WB_CF_OVERLAY, SMTP, SND(own_smtp)),
    WB_CF_SECT_AT("mailbox", struct wb_sender, mailbox, WB_CF_OVERLAY, MAILBOX,
                  SND(own_mailbox)),
    WB_CF_SECT_AT("warmup", struct wb_sender, warmup, 0, WARMUP, SND(warmup.enabled)),
    WB_CF_SECT_AT("guard", struct wb_sender, guard, WB_CF_OVERLAY, GUARD, WB_CF_NONE),
    WB_CF_END};

static const struct wb_cf_key LOG[] = {
    WB_CF_ENUM("level", struct wb_config, log.level, WB_LOG_INFO, LOG_LEVELS,
               wb_log_level_parse, "log level"),
    WB_CF_ENUM("format", struct wb_config, log.format, WB_LOG_TEXT, LOG_FORMATS, NULL, NULL),
    WB_CF_END};

static void cfg_load_scoring(struct wb_cf_ctx *x, json_t *obj, const char *path,
                         const struct wb_cf_key *k, void *base);
static void cfg_release_scoring(const struct wb_cf_key *k, void *base);
static void cfg_load_notice(struct wb_cf_ctx *x, json_t *obj, const char *path,
                        const struct wb_cf_key *k, void *base);
static void cfg_release_notice(const struct wb_cf_key *k, void *base);

/* warmbench.json itself, in loading order: folders before the notice,
 * which reads its templates from templates_dir. */
static const struct wb_cf_key ROOT[] = {
    WB_CF_STR("database", WB_CFT_STRING, struct wb_config, database, WB_CF_EMPTY_NULL, NULL),
    WB_CF_SECT("http", WB_CF_REQUIRED, HTTP, WB_CF_NONE),
    WB_CF_KEY("secret_file", struct wb_config, secret_file, WB_CF_REQUIRED | WB_CF_RESOLVE,
              CF(secret), CF(secret_len), WB_SECRET_MIN),
    WB_CF_SECT_AT("smtp", struct wb_config, smtp, WB_CF_REQUIRED, SMTP, WB_CF_NONE),
    WB_CF_SECT_AT("mailbox", struct wb_config, mailbox, 0, MAILBOX, CF(mailbox.enabled)),
    WB_CF_STR("bounce_domain", WB_CFT_DOMAIN, struct wb_config, bounce_domain, WB_CF_REQUIRED,
              NULL),
    WB_CF_SECT("ats", 0, ATS, CF(ats.enabled)),
    WB_CF_SECT("tasks", 0, TASKS, WB_CF_NONE),
    WB_CF_MAP("oauth", struct wb_config, oauth, 0, OAUTH, struct wb_oauth_provider, n_oauth,
              name, "oauth provider"),
    WB_CF_MAP("senders", struct wb_config, senders, WB_CF_REQUIRED | WB_CF_NONEMPTY, SENDER,
              struct wb_sender, n_senders, id, "sender"),
    WB_CF_STR("templates_dir", WB_CFT_DIR, struct wb_config, templates_dir, 0, "templates"),
    WB_CF_STR("sequences_dir", WB_CFT_DIR, struct wb_config, sequences_dir, 0, "sequences"),
    WB_CF_SECT("log", 0, LOG, WB_CF_NONE),
    WB_CF_SECT("contact_policy", 0, CONTACT, WB_CF_NONE),
    WB_CF_INT("retention_days", struct wb_config, retention_days, 0, 0, 0),
    WB_CF_HOOK("scoring", cfg_load_scoring, cfg_release_scoring),
    WB_CF_HOOK("privacy_notice", cfg_load_notice, cfg_release_notice),
    WB_CF_END};

const char *wb_config_default_path(void)
{
    const char *p = getenv("WARMBENCH_CONFIG");
    return p && p[0] ? p : "/etc/warmbench/warmbench.json";
}

/* Kept as written (a JSON value, scoring.c reads it) once it checks out. */
static void cfg_load_scoring(struct wb_cf_ctx *x, json_t *obj, const char *path,
                         const struct wb_cf_key *k, void *base)
{
    struct wb_jv *jv = x->jv;
    json_t *o = wb_jv_object(jv, obj, path, k->name, false);
    if (!o)
        return;
    wb_jv_keys(jv, o, "/scoring", SCORING_KEYS);
    json_t *w = wb_jv_object(jv, o, "/scoring", "weights", false);
    const char *ev;
    json_t *v;
    bool ok = true;
    json_object_foreach(w, ev, v) {
        if (json_is_number(v))
            continue;
        char *p = wb_jsonpos_child("/scoring/weights", ev);
        wb_jv_err_val(jv, p, "weight \"%s\" must be a number", ev);
        free(p);
        ok = false;
    }
    double d;
    if (wb_jv_number(jv, o, "/scoring", "half_life_days", false, &d) && d <= 0) {
        wb_jv_err_val(jv, "/scoring/half_life_days", "\"half_life_days\" must be above 0");
        ok = false;
    }
    wb_jv_number(jv, o, "/scoring", "ready_threshold", false, &d);
    if (ok)
        ((struct wb_config *)base)->scoring = json_incref(o);
}

static void cfg_release_scoring(const struct wb_cf_key *k, void *base)
{
    (void)k;
    json_decref(((struct wb_config *)base)->scoring);
}

static void cfg_load_notice(struct wb_cf_ctx *x, json_t *obj, const char *path,
                        const struct wb_cf_key *k, void *base)
{
    (void)path;
    (void)k;
    struct wb_config *cfg = base;
    wb_notice_load(&cfg->notice, cfg->templates_dir, x->jv, obj);
}

static void cfg_release_notice(const struct wb_cf_key *k, void *base)
{
    (void)k;
    wb_notice_free(&((struct wb_config *)base)->notice);
}

/* A folder as written in warmbench.json (for messages), else its default. */
static const char *cfg_dir_as_written(json_t *root, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(root, key));
    return s && s[0] ? s : dflt;
}

/* --- per-sender blocks and their credentials -------------------------- */

/* One smtp or mailbox block as its auth rules see it. */
struct cfg_block {
    const char *path;  /* where it is written: "/smtp", "/senders/ana/mailbox" */
    json_t *own;       /* the object written there (keys it does not hold are inherited) */
    enum wb_auth auth;
    const char *username, *password_file, *oauth_name;
    const struct wb_oauth_provider **oauth; /* resolved here */
};

const struct wb_oauth_provider *wb_config_oauth(const struct wb_config *c, const char *name)
{
    for (size_t i = 0; name && i < c->n_oauth; i++)
        if (!strcmp(c->oauth[i].name, name))
            return &c->oauth[i];
    return NULL;
}

/* The first of keys the block itself writes (malloc'd path), or NULL: a
 * problem made only of inherited keys is the top-level block's, reported
 * there once. */
static char *cfg_place(const struct cfg_block *b, const char *const *keys)
{
    for (size_t i = 0; keys[i]; i++)
        if (json_object_get(b->own, keys[i]))
            return wb_jsonpos_child(b->path, keys[i]);
    return NULL;
}

/* "google, microsoft" or a note that there are none (malloc'd). */
static char *cfg_provider_names(const struct wb_config *c)
{
    if (!c->n_oauth)
        return wb_xstrdup("there is no top-level \"oauth\" object");
    char *out = wb_xstrdup("known:");
    for (size_t i = 0; i < c->n_oauth; i++) {
        char *next = wb_xasprintf("%s%s %s", out, i ? "," : "", c->oauth[i].name);
        free(out);
        out = next;
    }
    return out;
}

static void cfg_check_password(struct wb_jv *jv, const struct cfg_block *b)
{
    char *p = cfg_place(b, (const char *const[]){"oauth", NULL});
    if (p)
        wb_jv_err_key(jv, p, "\"oauth\" applies only with auth \"xoauth2\" or \"oauthbearer\" "
                             "(auth here is \"password\")");
    free(p);
    if (!b->username || b->password_file)
        return;
    p = cfg_place(b, (const char *const[]){"username", "auth", NULL});
    if (p)
        wb_jv_err_val(jv, p, "auth \"password\" with a \"username\" needs \"password_file\"");
    free(p);
}

static void cfg_check_token(struct wb_jv *jv, const struct wb_config *c,
                            const struct cfg_block *b)
{
    const char *name = AUTH_NAMES[b->auth];
    char *p = cfg_place(b, (const char *const[]){"password_file", NULL});
    if (p)
        wb_jv_err_key(jv, p, "\"password_file\" does not apply with auth \"%s\": the access "
                             "token comes from the \"oauth\" provider (remove it, or use auth "
                             "\"password\")", name);
    free(p);
    if (!b->oauth_name) {
        p = cfg_place(b, (const char *const[]){"auth", NULL});
        if (p)
            wb_jv_err_val(jv, p, "auth \"%s\" needs \"oauth\" naming a provider of the "
                                 "top-level \"oauth\" object", name);
        free(p);
    } else if (!(*b->oauth = wb_config_oauth(c, b->oauth_name))) {
        p = cfg_place(b, (const char *const[]){"oauth", NULL});
        char *known = cfg_provider_names(c);
        if (p)
            wb_jv_err_val(jv, p, "unknown oauth provider \"%s\" (%s)", b->oauth_name, known);
        free(known);
        free(p);
    }
    if (b->username)
        return;
    p = cfg_place(b, (const char *const[]){"auth", "oauth", NULL});
    if (p)
        wb_jv_err_val(jv, p, "auth \"%s\" needs \"username\" (the account's address)", name);
    free(p);
}

/* Credentials that agree with auth; resolves the provider. An auth value
 * that is not one of the names was reported by its row: guessing on from
 * the default would only add noise. */
static void cfg_check_block(struct wb_jv *jv, const struct wb_config *c,
                            const struct cfg_block *b)
{
    *b->oauth = NULL;
    json_t *a = json_object_get(b->own, "auth");
    bool named = false;
    for (size_t i = 0; a && json_is_string(a) && AUTH_NAMES[i]; i++)
        named = named || !strcmp(json_string_value(a), AUTH_NAMES[i]);
    if (a && !named)
        return;
    if (b->auth == WB_AUTH_PASSWORD)
        cfg_check_password(jv, b);
    else
        cfg_check_token(jv, c, b);
}

static struct cfg_block cfg_smtp_block(const char *path, json_t *own, struct wb_smtp_cfg *m)
{
    return (struct cfg_block){path, own, m->auth, m->username, m->password_file, m->oauth_name,
                              &m->oauth};
}

static struct cfg_block cfg_mailbox_block(const char *path, json_t *own,
                                          struct wb_mailbox_cfg *m)
{
    return (struct cfg_block){path, own, m->auth, m->username, m->password_file, m->oauth_name,
                              &m->oauth};
}

/* Credentials of the auth that applies are inherited, the other kind not:
 * a sender's "auth": "xoauth2" over a top-level password leaves that
 * password behind instead of failing on it. */
static const char *const *cfg_skip_for(enum wb_auth auth)
{
    static const char *const no_oauth[] = {"oauth", NULL};
    static const char *const no_password[] = {"password_file", NULL};
    return auth == WB_AUTH_PASSWORD ? no_oauth : no_password;
}

static enum wb_auth cfg_auth_of(json_t *own, enum wb_auth written, enum wb_auth top)
{
    return json_object_get(own, "auth") ? written : top;
}

/* A sender on OAuth keeps its refresh token in tokens_dir/ID.json. */
static bool cfg_id_is_file_name(const char *id)
{
    return id[0] && id[0] != '.' && strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                               "0123456789._-@+") == strlen(id);
}

static void cfg_check_sender_id(struct wb_jv *jv, const struct wb_sender *s, const char *sp)
{
    if (!strcmp(s->id, "owner"))
        wb_jv_err_key(jv, sp, "a sender cannot be called \"owner\" (a sequence's \"sender\": "
                              "\"owner\" means each candidate's owner)");
    else if ((s->smtp.oauth || s->mailbox.oauth) && !cfg_id_is_file_name(s->id))
        wb_jv_err_key(jv, sp, "sender \"%s\" uses oauth, so its id names its token file: use "
                              "letters, digits, ., -, _, @ and + (not first .)", s->id);
}

/* The guard's documented defaults where a key (or the block) is absent;
 * a rate is a fraction. */
static void cfg_guard_defaults(struct wb_jv *jv, struct wb_sender *s, const char *sp)
{
    struct wb_guard *g = &s->guard;
    if (!g->has_bounce)
        g->max_bounce_rate = 0.05;
    if (!g->has_complaint)
        g->max_complaint_rate = 0.003;
    if (!g->min_sample)
        g->min_sample = 50;
    if (!g->window_days)
        g->window_days = 7;
    const char *names[] = {"max_bounce_rate", "max_complaint_rate"};
    double v[] = {g->max_bounce_rate, g->max_complaint_rate};
    for (int i = 0; i < 2; i++) {
        if (v[i] >= 0 && v[i] <= 1)
            continue;
        char *gp = wb_jsonpos_child(sp, "guard"), *p = wb_jsonpos_child(gp, names[i]);
        wb_jv_err_val(jv, p, "\"%s\" must be between 0 and 1 (a fraction of the mail sent)",
                      names[i]);
        free(p);
        free(gp);
    }
}

/* One sender's effective smtp and mailbox: its own keys, the top-level
 * block's for the rest; then the rules on what it wrote. */
static void cfg_sender_effective(struct wb_config *c, struct wb_jv *jv, struct wb_sender *s,
                                 json_t *so, const char *sp)
{
    json_t *own = s->own_smtp ? json_object_get(so, "smtp") : NULL;
    s->smtp.auth = cfg_auth_of(own, s->smtp.auth, c->smtp.auth);
    wb_cf_inherit(SMTP, &s->smtp, &c->smtp, own, cfg_skip_for(s->smtp.auth));
    char *p = wb_jsonpos_child(sp, "smtp");
    struct cfg_block b = cfg_smtp_block(p, own, &s->smtp);
    cfg_check_block(jv, c, &b);
    free(p);

    own = s->own_mailbox ? json_object_get(so, "mailbox") : NULL;
    s->mailbox.auth = cfg_auth_of(own, s->mailbox.auth, c->mailbox.auth);
    wb_cf_inherit(MAILBOX, &s->mailbox, &c->mailbox, own, cfg_skip_for(s->mailbox.auth));
    s->mailbox.enabled = s->own_mailbox || c->mailbox.enabled;
    p = wb_jsonpos_child(sp, "mailbox");
    if (s->own_mailbox && !c->mailbox.enabled && !json_object_get(own, "url"))
        wb_jv_err_val(jv, p, "missing key \"url\" (there is no top-level \"mailbox\" to "
                             "take it from)");
    b = cfg_mailbox_block(p, own, &s->mailbox);
    cfg_check_block(jv, c, &b);
    free(p);
    cfg_check_sender_id(jv, s, sp);
    cfg_guard_defaults(jv, s, sp);
}

/* The top-level blocks' rules, then every sender's effective blocks. */
static void cfg_senders_effective(struct wb_config *c, struct wb_jv *jv, json_t *root)
{
    struct cfg_block b = cfg_smtp_block("/smtp", json_object_get(root, "smtp"), &c->smtp);
    cfg_check_block(jv, c, &b);
    if (c->mailbox.enabled) {
        b = cfg_mailbox_block("/mailbox", json_object_get(root, "mailbox"), &c->mailbox);
        cfg_check_block(jv, c, &b);
    }
    json_t *senders = json_object_get(root, "senders");
    for (size_t i = 0; i < c->n_senders; i++) {
        struct wb_sender *s = &c->senders[i];
        char *sp = wb_jsonpos_child("/senders", s->id);
        cfg_sender_effective(c, jv, s, json_object_get(senders, s->id), sp);
        free(sp);
    }
}

/* Sequences get the folders and the sender names as data. "senders" that
 * is missing, not an object or empty has been reported already, so
 * sequences do not also report each sender they name. */
static void cfg_load_sequences(struct wb_config *c, struct wb_jv *jv, json_t *root)
{
    json_t *snd = json_object_get(root, "senders");
    const char **ids = wb_xcalloc(c->n_senders + 1, sizeof *ids);
    for (size_t i = 0; i < c->n_senders; i++)
        ids[i] = c->senders[i].id;
    struct wb_seq_env env = {
        .sequences_dir = c->sequences_dir,
        .templates_dir = c->templates_dir,
        .tpl_dir_name = cfg_dir_as_written(root, "templates_dir", "templates"),
        .senders = ids,
        .n_senders = c->n_senders,
        .check_senders = json_is_object(snd) && json_object_size(snd) > 0,
    };
    wb_sequences_load(&env, jv, &c->sequences, &c->n_sequences, jv->diags);
    free(ids);
}

static void cfg_load_text(struct wb_config *c, const char *text, size_t len,
                      struct wb_diags *diags)
{
    struct wb_jv jv;
    json_t *root = wb_jv_open(&jv, c->path, text, len, diags);
    if (root) {
        struct wb_cf_ctx x = {&jv, c->path, c->dir, false};
        wb_cf_load(&x, root, "", ROOT, c);
        cfg_senders_effective(c, &jv, root);
        cfg_load_sequences(c, &jv, root);
        if (c->ats.enabled)
            wb_ats_config_check(c, &jv);
        json_decref(root);
    }
    wb_jv_close(&jv);
}

struct wb_config *wb_config_load(const char *path, struct wb_diags *diags)
{
    size_t before = diags->n;
    struct wb_config *c = wb_xcalloc(1, sizeof *c);
    c->path = wb_xstrdup(path);
    c->dir = wb_dirname(path);
    wb_cf_defaults(ROOT, c);
    char *text;
    size_t len;
    int e = wb_read_file(path, &text, &len);
    if (e) {
        wb_diags_add(diags, path, 0, 0, "cannot read configuration: %s", strerror(e));
    } else {
        cfg_load_text(c, text, len, diags);
        free(text);
    }
    if (diags->n > before) {
        wb_config_free(c);
        return NULL;
    }
    return c;
}

void wb_config_free(struct wb_config *c)
{
    if (!c)
        return;
    wb_cf_free(ROOT, c);
    for (size_t i = 0; i < c->n_sequences; i++)
        wb_sequence_free(&c->sequences[i]);
    free(c->sequences);
    free(c->path);
    free(c->dir);
    free(c);
}

const struct wb_sender *wb_config_sender(const struct wb_config *c, const char *id)
{
    for (size_t i = 0; i < c->n_senders; i++)
        if (!strcmp(c->senders[i].id, id))
            return &c->senders[i];
    return NULL;
}

const struct wb_sequence *wb_config_sequence(const struct wb_config *c, const char *id)
{
    for (size_t i = 0; i < c->n_sequences; i++)
        if (!strcmp(c->sequences[i].id, id))
            return &c->sequences[i];
    return NULL;
}
