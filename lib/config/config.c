/* warmbench.json: daemon settings, secrets and senders, one key table per
 * section (cfkeys.h); sequences are then loaded by sequence.c, given the
 * folders and the sender names. */
#include "warmbench/config.h"
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
static const char *const LOG_LEVELS[] = {"debug", "info", "warn", "error", NULL};
static const char *const LOG_FORMATS[] = {"text", "json", NULL};
static const char *const SCORING_KEYS[] = {"weights", "half_life_days", "ready_threshold", NULL};

/* Enums are stored as int by the loader. */
_Static_assert(sizeof(enum wb_tls) == sizeof(int), "enum wb_tls is int-sized");
_Static_assert(sizeof(enum wb_log_level) == sizeof(int), "enum wb_log_level is int-sized");
_Static_assert(sizeof(enum wb_log_format) == sizeof(int), "enum wb_log_format is int-sized");

static const struct wb_cf_key HTTP[] = {
    WB_CF_STR("listen", WB_CFT_LISTEN, struct wb_config, http.listen, WB_CF_REQUIRED, NULL),
    WB_CF_STR("admin_listen", WB_CFT_LISTEN, struct wb_config, http.admin_listen, 0, NULL),
    WB_CF_STR("public_url", WB_CFT_URL, struct wb_config, http.public_url,
              WB_CF_REQUIRED | WB_CF_TRIM_SLASH, "http"),
    WB_CF_INT("machine_click_s", struct wb_config, http.machine_click_s, 0, 0, 5),
    WB_CF_END};

static const struct wb_cf_key SMTP[] = {
    WB_CF_STR("url", WB_CFT_URL, struct wb_config, smtp.url, WB_CF_REQUIRED, "smtp"),
    WB_CF_STR("username", WB_CFT_STRING, struct wb_config, smtp.username, WB_CF_EMPTY_NULL,
              NULL),
    WB_CF_SECRET("password_file", struct wb_config, smtp.password_file, WB_CF_EMPTY_NULL,
                 CF(smtp.password), WB_CF_NONE),
    WB_CF_ENUM("tls", struct wb_config, smtp.tls, WB_TLS_REQUIRED, TLS_NAMES, NULL, NULL),
    WB_CF_INT("connections", struct wb_config, smtp.connections, 0, 1, 8),
    WB_CF_INT("timeout_s", struct wb_config, smtp.timeout_s, 0, 1, 30),
    WB_CF_INT("retry_base_s", struct wb_config, smtp.retry_base_s, 0, 1, 60),
    WB_CF_END};

static const struct wb_cf_key MAILBOX[] = {
    WB_CF_STR("url", WB_CFT_URL, struct wb_config, mailbox.url, WB_CF_REQUIRED, "imap"),
    WB_CF_STR("username", WB_CFT_STRING, struct wb_config, mailbox.username, WB_CF_EMPTY_NULL,
              NULL),
    WB_CF_SECRET("password_file", struct wb_config, mailbox.password_file, WB_CF_EMPTY_NULL,
                 CF(mailbox.password), WB_CF_NONE),
    WB_CF_INT("poll_s", struct wb_config, mailbox.poll_s, 0, 1, 60),
    WB_CF_END};

static const struct wb_cf_key ATS[] = {
    WB_CF_STR("webhook_url", WB_CFT_URL, struct wb_config, ats.webhook_url, WB_CF_REQUIRED,
              "http"),
    WB_CF_SECRET("secret_file", struct wb_config, ats.secret_file, WB_CF_EMPTY_NULL,
                 CF(ats.secret), CF(ats.secret_len)),
    WB_CF_INT("max_attempts", struct wb_config, ats.max_attempts, 0, 1, 12),
    WB_CF_INT("retry_base_s", struct wb_config, ats.retry_base_s, 0, 1, 10),
    WB_CF_END};

/* One entry of "senders"; its id is the key it is written under. */
static const struct wb_cf_key SENDER[] = {
    WB_CF_ADDR("from", struct wb_sender, from, WB_CF_REQUIRED, SND(from_name), SND(from_email),
               " (use Name <addr@domain>)"),
    WB_CF_ADDR("reply_to", struct wb_sender, reply_to, WB_CF_EMPTY_NULL, WB_CF_NONE, WB_CF_NONE,
               NULL),
    WB_CF_INT("daily_limit", struct wb_sender, daily_limit, 0, 0, 0),
    WB_CF_INT("min_interval_s", struct wb_sender, min_interval_s, 0, 0, 0),
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
    WB_CF_SECRET("secret_file", struct wb_config, secret_file, WB_CF_REQUIRED | WB_CF_RESOLVE,
                 CF(secret), CF(secret_len)),
    WB_CF_SECT("smtp", WB_CF_REQUIRED, SMTP, WB_CF_NONE),
    WB_CF_SECT("mailbox", 0, MAILBOX, CF(mailbox.enabled)),
    WB_CF_STR("bounce_domain", WB_CFT_DOMAIN, struct wb_config, bounce_domain, WB_CF_REQUIRED,
              NULL),
    WB_CF_SECT("ats", 0, ATS, CF(ats.enabled)),
    WB_CF_MAP("senders", struct wb_config, senders, WB_CF_REQUIRED | WB_CF_NONEMPTY, SENDER,
              struct wb_sender, n_senders, id, "sender"),
    WB_CF_STR("templates_dir", WB_CFT_DIR, struct wb_config, templates_dir, 0, "templates"),
    WB_CF_STR("sequences_dir", WB_CFT_DIR, struct wb_config, sequences_dir, 0, "sequences"),
    WB_CF_SECT("log", 0, LOG, WB_CF_NONE),
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
        struct wb_cf_ctx x = {&jv, c->path, c->dir};
        wb_cf_load(&x, root, "", ROOT, c);
        cfg_load_sequences(c, &jv, root);
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
