/* Reading token and device endpoint answers (see oauth_parse.h). */
#include "warmbench/oauth_parse.h"
#include "warmbench/util.h"
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DESC_MAX 200
#define YEAR_S (366L * 24 * 3600)

void wb_oauth_wipe(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

bool wb_oauth_token_ok(const char *s, size_t len)
{
    if (!s || len == 0 || len > WB_OAUTH_TOKEN_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

/* Printable ASCII only, and short: it goes to a log line or a terminal,
 * where an escape sequence from a hostile server must not land. */
static char *op_clean_text(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max)
        n = max;
    char *out = wb_xstrndup(s, n);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] > 0x7e)
            out[i] = '?';
    return out;
}

static void op_bad(struct wb_oauth_reply *r, const char *fmt, long status)
{
    r->kind = WB_OAUTH_REPLY_BAD;
    free(r->message);
    r->message = wb_xasprintf(fmt, status);
}

/* expires_in is a number in the RFC; some servers send a numeric string. */
static long op_seconds(json_t *v, long dflt, long lo, long hi)
{
    long s = dflt;
    if (json_is_integer(v))
        s = (long)json_integer_value(v);
    else if (json_is_real(v)) {
        /* Bounded first: casting 1e300 to long is undefined behaviour. */
        double d = json_real_value(v);
        return !(d >= (double)lo) ? lo : d > (double)hi ? hi : (long)d;
    }
    else if (json_is_string(v)) {
        char *end;
        long x = strtol(json_string_value(v), &end, 10);
        if (end != json_string_value(v) && !*end)
            s = x;
    }
    return s < lo ? lo : s > hi ? hi : s;
}

/* An "error" object (RFC 6749 5.2). The code is kept to [a-z_] so it can
 * be compared and logged as is. */
static bool op_error_object(json_t *root, long status, struct wb_oauth_reply *r)
{
    const char *code = json_string_value(json_object_get(root, "error"));
    if (!code || !*code)
        return false;
    size_t i = 0;
    for (; code[i] && i < WB_OAUTH_ERROR_MAX - 1; i++) {
        char c = code[i];
        r->error[i] = (c >= 'a' && c <= 'z') || c == '_' ? c : '?';
    }
    r->error[i] = '\0';
    r->kind = WB_OAUTH_REPLY_ERROR;
    const char *desc = json_string_value(json_object_get(root, "error_description"));
    char *d = desc && *desc ? op_clean_text(desc, DESC_MAX) : NULL;
    free(r->message);
    r->message = d ? wb_xasprintf("HTTP %ld %s: %s", status, r->error, d)
                   : wb_xasprintf("HTTP %ld %s", status, r->error);
    free(d);
    return true;
}

/* Never Jansson's error text: "invalid token near '...'" quotes the body,
 * which may hold a token. */
static json_t *op_load(const char *body, size_t len)
{
    if (!body || !len)
        return NULL;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    if (root && !json_is_object(root)) {
        json_decref(root);
        return NULL;
    }
    return root;
}

void wb_oauth_parse_token(long status, const char *body, size_t len, struct wb_oauth_reply *out)
{
    *out = (struct wb_oauth_reply){.kind = WB_OAUTH_REPLY_BAD};
    json_t *root = op_load(body, len);
    if (!root) {
        op_bad(out, "HTTP %ld with no JSON object", status);
        return;
    }
    if (status >= 200 && status < 300) {
        json_t *at = json_object_get(root, "access_token");
        const char *tt = json_string_value(json_object_get(root, "token_type"));
        json_t *rt = json_object_get(root, "refresh_token");
        if (!json_is_string(at) || !wb_oauth_token_ok(json_string_value(at), json_string_length(at)))
            op_bad(out, "HTTP %ld without a usable access_token", status);
        else if (tt && strcasecmp(tt, "bearer"))
            op_bad(out, "HTTP %ld with a token_type other than Bearer", status);
        else if (rt && !json_is_null(rt) &&
                 (!json_is_string(rt) || !wb_oauth_token_ok(json_string_value(rt),
                                                            json_string_length(rt))))
            op_bad(out, "HTTP %ld with an unusable refresh_token", status);
        else {
            out->kind = WB_OAUTH_REPLY_TOKEN;
            out->access_token = wb_xstrdup(json_string_value(at));
            out->refresh_token = json_is_string(rt) ? wb_xstrdup(json_string_value(rt)) : NULL;
            out->expires_in = op_seconds(json_object_get(root, "expires_in"),
                                         WB_OAUTH_DEFAULT_EXPIRES_S, 1, YEAR_S);
        }
        /* Wipe Jansson's copies of the tokens before the memory goes. */
        if (json_is_string(at))
            OPENSSL_cleanse((char *)json_string_value(at), json_string_length(at));
        if (json_is_string(rt))
            OPENSSL_cleanse((char *)json_string_value(rt), json_string_length(rt));
    } else if (!op_error_object(root, status, out)) {
        op_bad(out, "HTTP %ld without an OAuth error code", status);
    }
    json_decref(root);
}

void wb_oauth_reply_free(struct wb_oauth_reply *r)
{
    wb_oauth_wipe(r->access_token);
    wb_oauth_wipe(r->refresh_token);
    free(r->message);
    *r = (struct wb_oauth_reply){0};
}

static char *op_field(json_t *root, const char *key, size_t max)
{
    json_t *v = json_object_get(root, key);
    if (!json_is_string(v) || json_string_length(v) > max ||
        !wb_oauth_token_ok(json_string_value(v), json_string_length(v)))
        return NULL;
    return wb_xstrdup(json_string_value(v));
}

bool wb_oauth_parse_device(long status, const char *body, size_t len,
                           struct wb_oauth_device *out, struct wb_oauth_reply *err)
{
    *out = (struct wb_oauth_device){0};
    *err = (struct wb_oauth_reply){.kind = WB_OAUTH_REPLY_BAD};
    json_t *root = op_load(body, len);
    if (!root) {
        op_bad(err, "HTTP %ld with no JSON object", status);
        return false;
    }
    if (status < 200 || status >= 300) {
        if (!op_error_object(root, status, err))
            op_bad(err, "HTTP %ld without an OAuth error code", status);
        json_decref(root);
        return false;
    }
    out->device_code = op_field(root, "device_code", WB_OAUTH_TOKEN_MAX);
    out->user_code = op_field(root, "user_code", 64);
    /* Google's device endpoint says verification_url. */
    out->verification_uri = op_field(root, "verification_uri", 2048);
    if (!out->verification_uri)
        out->verification_uri = op_field(root, "verification_url", 2048);
    out->verification_uri_complete = op_field(root, "verification_uri_complete", 2048);
    if (out->verification_uri_complete && !wb_url_ok(out->verification_uri_complete, "http")) {
        free(out->verification_uri_complete);
        out->verification_uri_complete = NULL;
    }
    out->expires_in = op_seconds(json_object_get(root, "expires_in"), 1800, 1, 24 * 3600);
    out->interval = op_seconds(json_object_get(root, "interval"), 5, 1, 300);
    json_decref(root);
    if (!out->device_code || !out->user_code || !out->verification_uri ||
        !wb_url_ok(out->verification_uri, "http")) {
        op_bad(err, "HTTP %ld without a usable device_code, user_code and verification_uri",
               status);
        wb_oauth_device_free(out);
        return false;
    }
    return true;
}

void wb_oauth_device_free(struct wb_oauth_device *d)
{
    wb_oauth_wipe(d->device_code);
    free(d->user_code);
    free(d->verification_uri);
    free(d->verification_uri_complete);
    *d = (struct wb_oauth_device){0};
}
