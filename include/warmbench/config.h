/* warmbench.json, the sequence files and their templates, loaded and
 * validated as SPEC.md "Files an operator or sourcer writes" describes.
 * Sequences (sequence.h) are loaded from here, never the other way. */
#ifndef WB_CONFIG_H
#define WB_CONFIG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "warmbench/diag.h"
#include "warmbench/log.h"
#include "warmbench/notice.h"
#include "warmbench/sequence.h"
#include "warmbench/template.h"

/* The fewest bytes in secret_file, the key of every token's MAC. */
#define WB_SECRET_MIN 32

enum wb_tls { WB_TLS_REQUIRED, WB_TLS_TRY, WB_TLS_OFF };
enum wb_auth { WB_AUTH_PASSWORD, WB_AUTH_XOAUTH2, WB_AUTH_OAUTHBEARER };

/* One entry of the top-level "oauth" object: where a sender's tokens are
 * renewed (token keeper) and obtained (warmbench login). */
struct wb_oauth_provider {
    char *name;                 /* the key under "oauth" */
    char *token_url, *device_url, *client_id;
    char *client_secret_file;   /* resolved path, NULL when not set */
    char *client_secret;        /* file contents, trailing newline stripped; NULL when no file */
    char *scope;
    char *tokens_dir;           /* resolved path (relative to warmbench.json's folder) */
};

struct wb_smtp_cfg {
    char *url;
    char *username;      /* NULL when empty */
    char *password_file; /* NULL when empty */
    char *password;      /* NULL when no file */
    enum wb_tls tls;
    enum wb_auth auth;   /* default password */
    const struct wb_oauth_provider *oauth; /* NULL unless xoauth2/oauthbearer */
    char *oauth_name;    /* "oauth" as written; NULL unless xoauth2/oauthbearer */
    int connections;     /* default 8 */
    int timeout_s;       /* default 30 */
    int retry_base_s;    /* default 60 */
};

struct wb_mailbox_cfg {
    bool enabled;
    char *url, *username, *password_file, *password;
    enum wb_tls tls;     /* imap:// only (imaps:// is TLS from the start); default required */
    enum wb_auth auth;
    const struct wb_oauth_provider *oauth; /* NULL unless xoauth2/oauthbearer */
    char *oauth_name;    /* "oauth" as written; NULL unless xoauth2/oauthbearer */
    int poll_s;          /* default 60 */
};

/* SPEC "Deliverability": a sender's day limit grows while it warms up, and
 * it is paused when its hard-bounce or complaint rate passes the guard's. */
struct wb_warmup {
    bool enabled;                /* the sender wrote "warmup" */
    int start, step, every_days; /* every_days defaults to 1 */
};
struct wb_guard {
    double max_bounce_rate;      /* default 0.05 */
    double max_complaint_rate;   /* default 0.003 */
    bool has_bounce, has_complaint;
    int min_sample;              /* default 50 */
    int window_days;             /* default 7 */
};

struct wb_sender {
    char *id;
    char *from;        /* as written: "Ana Ruiz <ana@example.com>" */
    char *from_name;   /* "Ana Ruiz" (may be "") */
    char *from_email;  /* "ana@example.com" */
    char *reply_to;    /* as written, NULL when not set */
    char *reply_to_name, *reply_to_email; /* its parts ("" name when none) */
    int daily_limit;   /* 0 = no limit */
    int min_interval_s;
    /* The EFFECTIVE blocks: the top-level ones merged with the sender's
     * own, key by key; every string is the sender's own copy. */
    struct wb_smtp_cfg smtp;
    struct wb_mailbox_cfg mailbox;
    bool own_smtp, own_mailbox; /* the sender wrote that block */
    struct wb_warmup warmup;
    struct wb_guard guard;      /* always set: the defaults when not written */
};

struct wb_config {
    char *path;              /* warmbench.json as given */
    char *dir;               /* its folder; relative paths resolve here */
    char *database;          /* NULL: libpq's environment applies */
    struct {
        char *listen;        /* "127.0.0.1:8025" */
        char *public_url;    /* no trailing slash */
        char *admin_listen;  /* NULL when not set */
        int machine_click_s; /* default 5 */
    } http;
    char *secret_file;       /* resolved path */
    unsigned char *secret;   /* file contents, trailing newline stripped */
    size_t secret_len;
    struct wb_smtp_cfg smtp;
    struct wb_mailbox_cfg mailbox;
    struct wb_oauth_provider *oauth; size_t n_oauth;
    struct {
        int cooldown_days;   /* 0 = no limit */
        int max_per_30_days; /* 0 = no limit */
    } contact_policy;
    char *bounce_domain;
    struct {
        bool enabled;
        char *webhook_url;
        char *secret_file;
        unsigned char *secret;
        size_t secret_len;
        int max_attempts;    /* default 12 */
        int retry_base_s;    /* default 10 */
        /* Native adapters (SPEC "Native ATS adapters"; lib/ats/ats_config.c). */
        char *kind;          /* NULL = "webhook" */
        struct {
            char *base_url, *token_url, *client_id, *user_id;
            char *client_secret_file, *api_key_file, *token_file;
            unsigned char *client_secret, *api_key, *token;
            size_t client_secret_len, api_key_len, token_len;
        } api;
        bool has_api;
        char *webhook_secret_file;
        unsigned char *webhook_secret;
        size_t webhook_secret_len;
        char *job_id, *source, *rejected_enroll;
    } ats;
    /* Manual steps (SPEC "The sourcer's controls"): task.due webhooks go
     * through the handoff engine with ats' retry rules. */
    struct {
        char *webhook_url;       /* NULL: no webhook */
        char *secret_file;       /* NULL: ats.secret_file's key signs them */
        unsigned char *secret;
        size_t secret_len;
        int expire_days;         /* default 7 */
    } tasks;
    struct wb_sender *senders;     size_t n_senders;
    char *sequences_dir;     /* resolved */
    char *templates_dir;     /* resolved */
    struct wb_sequence *sequences; size_t n_sequences;
    struct {
        enum wb_log_level level;
        enum wb_log_format format;
    } log;
    int retention_days;      /* 0 = keep forever */
    /* Article 14 notice for legitimate_interest candidates' first mail
     * (notice.c: "privacy_notice", else the default); both parts set once
     * loaded. */
    struct wb_notice notice;
    json_t *scoring;         /* as written, NULL when absent */
};

/* Loads path and everything it names. On any problem returns NULL and adds
 * every diagnostic found (it goes on after the first). */
struct wb_config *wb_config_load(const char *path, struct wb_diags *diags);
void wb_config_free(struct wb_config *c);

const struct wb_sender *wb_config_sender(const struct wb_config *c, const char *id);
/* The provider written as "oauth": { name: ... }, or NULL. */
const struct wb_oauth_provider *wb_config_oauth(const struct wb_config *c, const char *name);
const struct wb_sequence *wb_config_sequence(const struct wb_config *c, const char *id);

/* The default config path: $WARMBENCH_CONFIG, else /etc/warmbench/warmbench.json. */
const char *wb_config_default_path(void);

#endif
