/* The "ats" block's rules per kind (SPEC "Native ATS adapters"): the key
 * table in config.c loads every key; which ones a kind needs is here. */
#include "warmbench/ats_config.h"
#include <stdlib.h>
#include <string.h>

/* The api keys each kind needs, as SPEC lists them. */
static const struct {
    const char *kind;
    const char *const need[5];
} ac_kinds[] = {
    {"greenhouse", {"token_url", "client_id", "client_secret_file", "user_id", NULL}},
    {"ashby", {"api_key_file", NULL}},
    /* user_id: the member id Workable needs to comment and to copy to a job */
    {"workable", {"base_url", "token_file", "user_id", NULL}},
    {"smartrecruiters", {"token_file", NULL}},
    {"lever", {"api_key_file", "user_id", NULL}},
};

static const char *ac_kind(const struct wb_config *c)
{
    return c->ats.kind ? c->ats.kind : "webhook";
}

/* Whether the api key was given (a secret counts once its file was read). */
static bool ac_has(const struct wb_config *c, const char *key)
{
    const char *v = !strcmp(key, "token_url")            ? c->ats.api.token_url
                    : !strcmp(key, "client_id")          ? c->ats.api.client_id
                    : !strcmp(key, "user_id")            ? c->ats.api.user_id
                    : !strcmp(key, "base_url")           ? c->ats.api.base_url
                    : !strcmp(key, "client_secret_file") ? c->ats.api.client_secret_file
                    : !strcmp(key, "api_key_file")       ? c->ats.api.api_key_file
                                                         : c->ats.api.token_file;
    return v != NULL;
}

static void ac_check_native(const struct wb_config *c, struct wb_jv *jv, size_t i)
{
    if (!wb_ats_vendor_find(ac_kinds[i].kind)) {
        wb_jv_err_val(jv, "/ats/kind", "ats kind \"%s\" is not available in this build",
                      ac_kinds[i].kind);
        return;
    }
    for (const char *const *k = ac_kinds[i].need; *k; k++) {
        if (ac_has(c, *k))
            continue;
        if (c->ats.has_api)
            wb_jv_err_val(jv, "/ats/api", "missing key \"%s\" (kind \"%s\" needs it)", *k,
                          ac_kinds[i].kind);
        else
            wb_jv_err_val(jv, "/ats", "missing key \"api\" with \"%s\" (kind \"%s\" needs it)",
                          *k, ac_kinds[i].kind);
    }
}

void wb_ats_config_check(const struct wb_config *c, struct wb_jv *jv)
{
    const char *kind = ac_kind(c);
    if (!strcmp(kind, "webhook")) {
        if (!c->ats.webhook_url)
            wb_jv_err_val(jv, "/ats", "missing key \"webhook_url\" (kind \"webhook\" needs it)");
    } else {
        size_t i = 0, n = sizeof ac_kinds / sizeof ac_kinds[0];
        while (i < n && strcmp(ac_kinds[i].kind, kind))
            i++;
        if (i == n)
            wb_jv_err_val(jv, "/ats/kind", "unknown ats kind \"%s\" (webhook, greenhouse, "
                          "ashby, workable, smartrecruiters or lever)", kind);
        else
            ac_check_native(c, jv, i);
    }
    if (c->ats.rejected_enroll && !wb_config_sequence(c, c->ats.rejected_enroll))
        wb_jv_err_val(jv, "/ats/rejected_enroll", "unknown sequence \"%s\"",
                      c->ats.rejected_enroll);
}

const struct wb_ats_vendor *wb_ats_vendor_of(const struct wb_config *c)
{
    return c->ats.enabled ? wb_ats_vendor_find(c->ats.kind) : NULL;
}

void wb_ats_api_of(const struct wb_config *c, const struct wb_ats_vendor *v,
                   struct wb_ats_api *out)
{
    memset(out, 0, sizeof *out);
    out->kind = v->kind;
    out->base_url = c->ats.api.base_url ? c->ats.api.base_url : v->default_base_url;
    out->token_url = c->ats.api.token_url;
    out->client_id = c->ats.api.client_id;
    out->user_id = c->ats.api.user_id;
    /* A kind takes one of the three secret files. */
    if (c->ats.api.client_secret) {
        out->secret = (const char *)c->ats.api.client_secret;
        out->secret_len = c->ats.api.client_secret_len;
    } else if (c->ats.api.api_key) {
        out->secret = (const char *)c->ats.api.api_key;
        out->secret_len = c->ats.api.api_key_len;
    } else if (c->ats.api.token) {
        out->secret = (const char *)c->ats.api.token;
        out->secret_len = c->ats.api.token_len;
    }
    out->job_id = c->ats.job_id;
    out->source = c->ats.source;
}
