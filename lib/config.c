/* warmbench.json: daemon settings, secrets and senders; sequences are
 * loaded by sequence.c once the folders and senders are known. */
#include "warmbench/config.h"
#include "warmbench/jsonval.h"
#include "warmbench/notice.h"
#include "warmbench/readfile.h"
#include "warmbench/sequence.h"
#include "warmbench/util.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Everything one load needs to hand around. */
struct load {
    struct wb_config *c;
    struct wb_jv *jv;
    json_t *root;
};

static const char *const ROOT_KEYS[] = {
    "database", "http", "secret_file", "smtp", "mailbox", "bounce_domain", "ats",
    "senders", "sequences_dir", "templates_dir", "log", "retention_days", "scoring",
    "privacy_notice", NULL};
static const char *const HTTP_KEYS[] = {"listen", "public_url", "machine_click_s",
                                        "admin_listen", NULL};
static const char *const SMTP_KEYS[] = {"url", "username", "password_file", "tls",
                                        "connections", "timeout_s", "retry_base_s", NULL};
static const char *const MAILBOX_KEYS[] = {"url", "username", "password_file", "poll_s", NULL};
static const char *const ATS_KEYS[] = {"webhook_url", "secret_file", "max_attempts",
                                       "retry_base_s", NULL};
static const char *const SENDER_KEYS[] = {"from", "reply_to", "daily_limit",
                                          "min_interval_s", NULL};
static const char *const LOG_KEYS[] = {"level", "format", NULL};
static const char *const SCORING_KEYS[] = {"weights", "half_life_days", "ready_threshold", NULL};

const char *wb_config_default_path(void)
{
    const char *p = getenv("WARMBENCH_CONFIG");
    return p && p[0] ? p : "/etc/warmbench/warmbench.json";
}

/* Relative to the config's folder; a config named without a folder keeps
 * paths short ("sequences/a.json", not "./sequences/a.json"). */
static char *resolve(const struct wb_config *c, const char *p)
{
    if (!strchr(c->path, '/'))
        return wb_xstrdup(p);
    return wb_path_join(c->dir, p);
}

static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static bool url_ok(const char *u, const char *a, const char *b)
{
    return (has_prefix(u, a) && u[strlen(a)]) || (has_prefix(u, b) && u[strlen(b)]);
}

/* "host:port" with a port in 1..65535. */
static bool listen_ok(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || !colon[1] || strlen(colon + 1) > 5)
        return false;
    for (const char *p = colon + 1; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    long port = strtol(colon + 1, NULL, 10);
    return port >= 1 && port <= 65535;
}

/* systemd's credentials directory is private to the service whatever the
 * files' mode bits say (access may be granted by ACL, which shows as group
 * bits), so the mode check does not apply there. */
static bool in_credentials_dir(const char *file)
{
    const char *dir = getenv("CREDENTIALS_DIRECTORY");
    size_t n = dir ? strlen(dir) : 0;
    return n && !strncmp(file, dir, n) && file[n] == '/' && !strstr(file + n, "/../");
}

/* Reads a secret, refusing files others can read; the contents never
 * reach a message. Errors point at the key that names the file. */
static unsigned char *read_secret(struct load *L, const char *jpath, const char *name,
                                  size_t *len)
{
    char *file = resolve(L->c, name);
    unsigned char *out = NULL;
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0) {
        wb_jv_err_key(L->jv, jpath, "cannot read secret file \"%s\": %s", file, strerror(errno));
    } else if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        wb_jv_err_key(L->jv, jpath, "secret file \"%s\" is not a regular file", file);
    } else if ((st.st_mode & 077) && !in_credentials_dir(file)) {
        wb_jv_err_key(L->jv, jpath,
                      "secret file \"%s\" is readable by group or others (chmod 600 it)", file);
    } else {
        char *data;
        int e = wb_read_file(file, &data, len);
        if (e) {
            wb_jv_err_key(L->jv, jpath, "cannot read secret file \"%s\": %s", file, strerror(e));
        } else {
            while (*len && (data[*len - 1] == '\n' || data[*len - 1] == '\r'))
                data[--*len] = '\0';
            if (!*len) {
                wb_jv_err_key(L->jv, jpath, "secret file \"%s\" is empty", file);
                free(data);
            } else {
                out = (unsigned char *)data;
            }
        }
    }
    if (fd >= 0)
        close(fd);
    free(file);
    return out;
}

static void load_http(struct load *L)
{
    json_t *o = wb_jv_object(L->jv, L->root, "", "http", true);
    if (!o)
        return;
    wb_jv_keys(L->jv, o, "/http", HTTP_KEYS);
    const char *s;
    if (wb_jv_string(L->jv, o, "/http", "listen", true, &s)) {
        if (listen_ok(s))
            L->c->http.listen = wb_xstrdup(s);
        else
            wb_jv_err_val(L->jv, "/http/listen", "\"listen\" must be host:port, not \"%s\"", s);
    }
    if (wb_jv_string(L->jv, o, "/http", "admin_listen", false, &s)) {
        if (listen_ok(s))
            L->c->http.admin_listen = wb_xstrdup(s);
        else
            wb_jv_err_val(L->jv, "/http/admin_listen",
                          "\"admin_listen\" must be host:port, not \"%s\"", s);
    }
    if (wb_jv_string(L->jv, o, "/http", "public_url", true, &s)) {
        if (url_ok(s, "http://", "https://")) {
            char *u = wb_xstrdup(s);
            /* Links are built as public_url + "/c/TOKEN". */
            for (size_t n = strlen(u); n && u[n - 1] == '/'; n--)
                u[n - 1] = '\0';
            L->c->http.public_url = u;
        } else {
            wb_jv_err_val(L->jv, "/http/public_url", "\"public_url\" must be an http(s) URL");
        }
    }
    wb_jv_int(L->jv, o, "/http", "machine_click_s", false, 0, &L->c->http.machine_click_s);
}

/* An empty string in the file means "not set", as in SPEC.md's example. */
static char *opt_string(struct load *L, json_t *o, const char *path, const char *key)
{
    const char *s;
    if (wb_jv_string(L->jv, o, path, key, false, &s) && s[0])
        return wb_xstrdup(s);
    return NULL;
}

static void load_tls(struct load *L, json_t *o)
{
    const char *s;
    if (!wb_jv_string(L->jv, o, "/smtp", "tls", false, &s))
        return;
    if (!strcmp(s, "required"))
        L->c->smtp.tls = WB_TLS_REQUIRED;
    else if (!strcmp(s, "try"))
        L->c->smtp.tls = WB_TLS_TRY;
    else if (!strcmp(s, "off"))
        L->c->smtp.tls = WB_TLS_OFF;
    else
        wb_jv_err_val(L->jv, "/smtp/tls", "\"tls\" must be \"required\", \"try\" or \"off\"");
}

static void load_smtp(struct load *L)
{
    json_t *o = wb_jv_object(L->jv, L->root, "", "smtp", true);
    if (!o)
        return;
    struct wb_config *c = L->c;
    wb_jv_keys(L->jv, o, "/smtp", SMTP_KEYS);
    const char *s;
    if (wb_jv_string(L->jv, o, "/smtp", "url", true, &s)) {
        if (url_ok(s, "smtp://", "smtps://"))
            c->smtp.url = wb_xstrdup(s);
        else
            wb_jv_err_val(L->jv, "/smtp/url", "\"url\" must start with smtp:// or smtps://");
    }
    c->smtp.username = opt_string(L, o, "/smtp", "username");
    c->smtp.password_file = opt_string(L, o, "/smtp", "password_file");
    if (c->smtp.password_file) {
        size_t n;
        c->smtp.password = (char *)read_secret(L, "/smtp/password_file",
                                               c->smtp.password_file, &n);
    }
    load_tls(L, o);
    wb_jv_int(L->jv, o, "/smtp", "connections", false, 1, &c->smtp.connections);
    wb_jv_int(L->jv, o, "/smtp", "timeout_s", false, 1, &c->smtp.timeout_s);
    wb_jv_int(L->jv, o, "/smtp", "retry_base_s", false, 1, &c->smtp.retry_base_s);
}

static void load_mailbox(struct load *L)
{
    json_t *o = wb_jv_object(L->jv, L->root, "", "mailbox", false);
    if (!o)
        return;
    struct wb_config *c = L->c;
    c->mailbox.enabled = true;
    wb_jv_keys(L->jv, o, "/mailbox", MAILBOX_KEYS);
    const char *s;
    if (wb_jv_string(L->jv, o, "/mailbox", "url", true, &s)) {
        if (url_ok(s, "imap://", "imaps://"))
            c->mailbox.url = wb_xstrdup(s);
        else
            wb_jv_err_val(L->jv, "/mailbox/url", "\"url\" must start with imap:// or imaps://");
    }
    c->mailbox.username = opt_string(L, o, "/mailbox", "username");
    c->mailbox.password_file = opt_string(L, o, "/mailbox", "password_file");
    if (c->mailbox.password_file) {
        size_t n;
        c->mailbox.password = (char *)read_secret(L, "/mailbox/password_file",
                                                  c->mailbox.password_file, &n);
    }
    wb_jv_int(L->jv, o, "/mailbox", "poll_s", false, 1, &c->mailbox.poll_s);
}

static void load_ats(struct load *L)
{
    json_t *o = wb_jv_object(L->jv, L->root, "", "ats", false);
    if (!o)
        return;
    struct wb_config *c = L->c;
    c->ats.enabled = true;
    wb_jv_keys(L->jv, o, "/ats", ATS_KEYS);
    const char *s;
    if (wb_jv_string(L->jv, o, "/ats", "webhook_url", true, &s)) {
        if (url_ok(s, "http://", "https://"))
            c->ats.webhook_url = wb_xstrdup(s);
        else
            wb_jv_err_val(L->jv, "/ats/webhook_url", "\"webhook_url\" must be an http(s) URL");
    }
    c->ats.secret_file = opt_string(L, o, "/ats", "secret_file");
    if (c->ats.secret_file)
        c->ats.secret = read_secret(L, "/ats/secret_file", c->ats.secret_file,
                                    &c->ats.secret_len);
    wb_jv_int(L->jv, o, "/ats", "max_attempts", false, 1, &c->ats.max_attempts);
    wb_jv_int(L->jv, o, "/ats", "retry_base_s", false, 1, &c->ats.retry_base_s);
}

static bool has_crlf(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

/* A bare address: something@something, nothing that would break a header. */
static bool addr_ok(const char *a)
{
    const char *at = strchr(a, '@');
    return at && at != a && at[1] && !strchr(at + 1, '@') && !strpbrk(a, " \t<>\",;");
}

static char *trim_copy(const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    /* A quoted display name ("Ruiz, Ana") loses its quotes. */
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        s++;
        n -= 2;
    }
    return wb_xstrndup(s, n);
}

/* "Name <addr>" or a bare addr → name ("" when none) and addr. */
static bool parse_from(const char *from, char **name, char **email)
{
    const char *lt = strchr(from, '<');
    if (!lt) {
        *name = wb_xstrdup("");
        *email = trim_copy(from, strlen(from));
    } else {
        const char *gt = strchr(lt, '>');
        if (!gt || gt[1 + strspn(gt + 1, " \t")] != '\0')
            return false;
        *name = trim_copy(from, (size_t)(lt - from));
        *email = wb_xstrndup(lt + 1, (size_t)(gt - lt - 1));
    }
    if (addr_ok(*email))
        return true;
    free(*name);
    free(*email);
    return false;
}

static void load_sender(struct load *L, const char *id, json_t *o, const char *path,
                        struct wb_sender *s)
{
    s->id = wb_xstrdup(id);
    wb_jv_keys(L->jv, o, path, SENDER_KEYS);
    const char *v;
    char *p = wb_jsonpos_child(path, "from");
    if (wb_jv_string(L->jv, o, path, "from", true, &v)) {
        if (has_crlf(v))
            wb_jv_err_val(L->jv, p, "\"from\" must not contain CR or LF");
        else if (!parse_from(v, &s->from_name, &s->from_email))
            wb_jv_err_val(L->jv, p, "bad address \"%s\" in \"from\" (use Name <addr@domain>)", v);
        else
            s->from = wb_xstrdup(v);
    }
    free(p);
    p = wb_jsonpos_child(path, "reply_to");
    if (wb_jv_string(L->jv, o, path, "reply_to", false, &v) && v[0]) {
        char *n = NULL, *e = NULL;
        if (has_crlf(v))
            wb_jv_err_val(L->jv, p, "\"reply_to\" must not contain CR or LF");
        else if (!parse_from(v, &n, &e))
            wb_jv_err_val(L->jv, p, "bad address \"%s\" in \"reply_to\"", v);
        else
            s->reply_to = wb_xstrdup(v);
        free(n);
        free(e);
    }
    free(p);
    wb_jv_int(L->jv, o, path, "daily_limit", false, 0, &s->daily_limit);
    wb_jv_int(L->jv, o, path, "min_interval_s", false, 0, &s->min_interval_s);
}

/* False when "senders" is unusable, so sequences skip sender checks. */
static bool load_senders(struct load *L)
{
    json_t *o = wb_jv_object(L->jv, L->root, "", "senders", true);
    if (!o)
        return false;
    if (json_object_size(o) == 0) {
        wb_jv_err_val(L->jv, "/senders", "\"senders\" must name at least one sender");
        return false;
    }
    struct wb_config *c = L->c;
    c->senders = wb_xcalloc(json_object_size(o), sizeof *c->senders);
    const char *id;
    json_t *v;
    json_object_foreach(o, id, v) {
        char *p = wb_jsonpos_child("/senders", id);
        if (json_is_object(v))
            load_sender(L, id, v, p, &c->senders[c->n_senders++]);
        else
            wb_jv_err_val(L->jv, p, "sender \"%s\" must be an object", id);
        free(p);
    }
    return true;
}

static void load_log(struct load *L)
{
    json_t *o = wb_jv_object(L->jv, L->root, "", "log", false);
    if (!o)
        return;
    wb_jv_keys(L->jv, o, "/log", LOG_KEYS);
    const char *s;
    if (wb_jv_string(L->jv, o, "/log", "level", false, &s)) {
        int lv = wb_log_level_parse(s);
        if (lv < 0)
            wb_jv_err_val(L->jv, "/log/level",
                          "unknown log level \"%s\" (use debug, info, warn or error)", s);
        else
            L->c->log.level = (enum wb_log_level)lv;
    }
    if (wb_jv_string(L->jv, o, "/log", "format", false, &s)) {
        if (!strcmp(s, "text"))
            L->c->log.format = WB_LOG_TEXT;
        else if (!strcmp(s, "json"))
            L->c->log.format = WB_LOG_JSON;
        else
            wb_jv_err_val(L->jv, "/log/format", "\"format\" must be \"text\" or \"json\"");
    }
}

static void load_scoring(struct load *L)
{
    json_t *o = wb_jv_object(L->jv, L->root, "", "scoring", false);
    if (!o)
        return;
    wb_jv_keys(L->jv, o, "/scoring", SCORING_KEYS);
    json_t *w = wb_jv_object(L->jv, o, "/scoring", "weights", false);
    const char *ev;
    json_t *v;
    bool ok = true;
    json_object_foreach(w, ev, v) {
        if (json_is_number(v))
            continue;
        char *p = wb_jsonpos_child("/scoring/weights", ev);
        wb_jv_err_val(L->jv, p, "weight \"%s\" must be a number", ev);
        free(p);
        ok = false;
    }
    double d;
    if (wb_jv_number(L->jv, o, "/scoring", "half_life_days", false, &d) && d <= 0) {
        wb_jv_err_val(L->jv, "/scoring/half_life_days", "\"half_life_days\" must be above 0");
        ok = false;
    }
    wb_jv_number(L->jv, o, "/scoring", "ready_threshold", false, &d);
    if (ok)
        L->c->scoring = json_incref(o);
}

/* A folder key (default `dflt`), resolved; returns the name as written. */
static const char *load_dir(struct load *L, const char *key, const char *dflt, char **out)
{
    const char *s = dflt;
    char *p = wb_jsonpos_child("", key);
    if (wb_jv_string(L->jv, L->root, "", key, false, &s) && !s[0]) {
        wb_jv_err_val(L->jv, p, "\"%s\" must not be empty", key);
        s = dflt;
    }
    free(p);
    *out = resolve(L->c, s);
    return s;
}

static void load_root(struct load *L)
{
    struct wb_config *c = L->c;
    wb_jv_keys(L->jv, L->root, "", ROOT_KEYS);
    c->database = opt_string(L, L->root, "", "database");
    load_http(L);
    const char *s;
    if (wb_jv_string(L->jv, L->root, "", "secret_file", true, &s)) {
        c->secret_file = resolve(c, s);
        c->secret = read_secret(L, "/secret_file", s, &c->secret_len);
    }
    load_smtp(L);
    load_mailbox(L);
    if (wb_jv_string(L->jv, L->root, "", "bounce_domain", true, &s)) {
        if (!s[0] || strpbrk(s, "@ /\r\n\t"))
            wb_jv_err_val(L->jv, "/bounce_domain", "\"bounce_domain\" must be a domain name");
        else
            c->bounce_domain = wb_xstrdup(s);
    }
    load_ats(L);
    bool senders_ok = load_senders(L);
    const char *tpl_name = load_dir(L, "templates_dir", "templates", &c->templates_dir);
    load_dir(L, "sequences_dir", "sequences", &c->sequences_dir);
    load_log(L);
    wb_jv_int(L->jv, L->root, "", "retention_days", false, 0, &c->retention_days);
    load_scoring(L);
    wb_notice_load(c, L->jv, L->root);
    wb_sequences_load(c, L->jv, tpl_name, senders_ok, L->jv->diags);
}

static void set_defaults(struct wb_config *c)
{
    c->http.machine_click_s = 5;
    c->smtp.tls = WB_TLS_REQUIRED;
    c->smtp.connections = 8;
    c->smtp.timeout_s = 30;
    c->smtp.retry_base_s = 60;
    c->mailbox.poll_s = 60;
    c->ats.max_attempts = 12;
    c->ats.retry_base_s = 10;
    c->log.level = WB_LOG_INFO;
    c->log.format = WB_LOG_TEXT;
}

struct wb_config *wb_config_load(const char *path, struct wb_diags *diags)
{
    size_t before = diags->n;
    struct wb_config *c = wb_xcalloc(1, sizeof *c);
    c->path = wb_xstrdup(path);
    c->dir = wb_dirname(path);
    set_defaults(c);
    char *text;
    size_t len;
    int e = wb_read_file(path, &text, &len);
    if (e) {
        wb_diags_add(diags, path, 0, 0, "cannot read configuration: %s", strerror(e));
    } else {
        struct wb_jv jv;
        json_t *root = wb_jv_open(&jv, path, text, len, diags);
        if (root) {
            struct load L = {c, &jv, root};
            load_root(&L);
            json_decref(root);
        }
        wb_jv_close(&jv);
        free(text);
    }
    if (diags->n > before) {
        wb_config_free(c);
        return NULL;
    }
    return c;
}

/* Secrets are wiped before their memory goes back to the allocator. */
static void free_secret(void *p, size_t n)
{
    if (!p)
        return;
    explicit_bzero(p, n);
    free(p);
}

void wb_config_free(struct wb_config *c)
{
    if (!c)
        return;
    free(c->path);
    free(c->dir);
    free(c->database);
    free(c->http.listen);
    free(c->http.public_url);
    free(c->http.admin_listen);
    free(c->secret_file);
    free_secret(c->secret, c->secret_len);
    free(c->smtp.url);
    free(c->smtp.username);
    free(c->smtp.password_file);
    free_secret(c->smtp.password, c->smtp.password ? strlen(c->smtp.password) : 0);
    free(c->mailbox.url);
    free(c->mailbox.username);
    free(c->mailbox.password_file);
    free_secret(c->mailbox.password, c->mailbox.password ? strlen(c->mailbox.password) : 0);
    free(c->bounce_domain);
    free(c->ats.webhook_url);
    free(c->ats.secret_file);
    free_secret(c->ats.secret, c->ats.secret_len);
    for (size_t i = 0; i < c->n_senders; i++) {
        struct wb_sender *s = &c->senders[i];
        free(s->id);
        free(s->from);
        free(s->from_name);
        free(s->from_email);
        free(s->reply_to);
    }
    free(c->senders);
    free(c->sequences_dir);
    free(c->templates_dir);
    for (size_t i = 0; i < c->n_sequences; i++)
        wb_sequence_free(&c->sequences[i]);
    free(c->sequences);
    json_decref(c->scoring);
    wb_notice_free(c);
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

const char *wb_sequence_link(const struct wb_sequence *s, const char *name)
{
    for (size_t i = 0; i < s->n_links; i++)
        if (!strcmp(s->links[i].name, name))
            return s->links[i].url;
    return NULL;
}

long wb_duration_parse(const char *s)
{
    if (!s || *s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    long n = strtol(s, &end, 10);
    long unit;
    switch (*end) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    case 'w': unit = 7 * 86400; break;
    default: return -1;
    }
    if (errno || end[1] || n > 100L * 365 * 86400 / unit)
        return -1;
    return n * unit;
}
