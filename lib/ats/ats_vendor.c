/* The vendor table and the helpers every vendor file shares (see
 * ats_vendor.h). All pure: no I/O, no clock. */
#include "warmbench/ats_vendor.h"
#include "warmbench/ats_in.h"
#include "warmbench/buf.h"
#include "warmbench/util.h"
#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

extern const struct wb_ats_vendor wb_ats_vendor_greenhouse;
extern const struct wb_ats_vendor wb_ats_vendor_ashby;
extern const struct wb_ats_vendor wb_ats_vendor_workable;
extern const struct wb_ats_vendor wb_ats_vendor_smartrecruiters;

/* One line per vendor file. */
static const struct wb_ats_vendor *const av_table[] = {
    &wb_ats_vendor_greenhouse,
    &wb_ats_vendor_ashby,
    &wb_ats_vendor_workable,
    &wb_ats_vendor_smartrecruiters,
};

const struct wb_ats_vendor *wb_ats_vendor_find(const char *kind)
{
    if (!kind)
        return NULL;
    for (size_t i = 0; i < sizeof av_table / sizeof av_table[0]; i++)
        if (strcmp(av_table[i]->kind, kind) == 0)
            return av_table[i];
    return NULL;
}

/* --- requests ----------------------------------------------------------- */

void wb_ats_req_init(struct wb_ats_req *rq, const char *method, char *url)
{
    memset(rq, 0, sizeof *rq);
    rq->method = method;
    rq->url = url;
}

int wb_ats_req_header(struct wb_ats_req *rq, const char *fmt, ...)
{
    if (rq->nheaders >= WB_ATS_MAX_HEADERS)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    char *line = wb_xvasprintf(fmt, ap);
    va_end(ap);
    /* A header value from data must never split into two headers. */
    if (strpbrk(line, "\r\n")) {
        free(line);
        return -1;
    }
    rq->headers[rq->nheaders++] = line;
    return 0;
}

void wb_ats_req_json(struct wb_ats_req *rq, json_t *obj)
{
    free(rq->body);
    rq->body = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!rq->body)
        abort(); /* allocation failure, as wb_xmalloc */
    json_decref(obj);
    wb_ats_req_header(rq, "Content-Type: application/json");
}

void wb_ats_req_free(struct wb_ats_req *rq)
{
    free(rq->url);
    for (size_t i = 0; i < rq->nheaders; i++)
        free(rq->headers[i]);
    free(rq->body);
    memset(rq, 0, sizeof *rq);
}

void wb_ats_outcome_free(struct wb_ats_outcome *o)
{
    free(o->ats_id);
    free(o->error);
    memset(o, 0, sizeof *o);
}

void wb_ats_inbound_free(struct wb_ats_inbound *ev)
{
    free(ev->event_id);
    free(ev->email);
    free(ev->first_name);
    free(ev->last_name);
    free(ev->candidate_id);
    free(ev->lookup_id);
    free(ev->reason);
    free(ev->job_id);
    memset(ev, 0, sizeof *ev);
}

/* --- responses ---------------------------------------------------------- */

const char *wb_ats_header_get(const struct wb_ats_header *h, size_t nh, const char *name)
{
    for (size_t i = 0; i < nh; i++)
        if (h[i].name && strcasecmp(h[i].name, name) == 0)
            return h[i].value ? h[i].value : "";
    return NULL;
}

/* An HTTP-date (RFC 9110 IMF-fixdate only: what servers send). */
static double av_http_date(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end)
        return -1;
    return (double)timegm(&tm);
}

double wb_ats_retry_after(const struct wb_ats_resp *rs)
{
    const char *v = wb_ats_header_get(rs->headers, rs->nheaders, "Retry-After");
    if (!v)
        return 0;
    while (*v == ' ')
        v++;
    if (isdigit((unsigned char)*v)) {
        char *end;
        double d = strtod(v, &end);
        while (*end == ' ')
            end++;
        return *end || d < 0 ? 0 : d;
    }
    double t = av_http_date(v);
    return t > rs->now ? t - rs->now : 0;
}

void wb_ats_outcome_http(const struct wb_ats_resp *rs, bool token_vendor,
                         struct wb_ats_outcome *out)
{
    long st = rs->status;
    size_t n = rs->len < 300 ? rs->len : 300;
    char *excerpt = wb_text_clean(rs->body ? rs->body : "", rs->body ? n : 0);
    /* A one-line error: newlines and tabs too become spaces. */
    for (char *p = excerpt; *p; p++)
        if (*p == '\n' || *p == '\t')
            *p = ' ';
    out->error = st ? wb_xasprintf("HTTP %ld: %s", st, excerpt)
                    : wb_xasprintf("%s", excerpt[0] ? excerpt : "no answer");
    free(excerpt);
    out->retry_after_s = 0;
    if (st == 0 || st == 408 || st == 429 || st >= 500) {
        out->verdict = WB_ATS_RETRY;
        out->retry_after_s = wb_ats_retry_after(rs);
    } else if (st == 401 && token_vendor) {
        out->verdict = WB_ATS_REAUTH;
    } else {
        out->verdict = WB_ATS_DEAD;
    }
}

/* --- text --------------------------------------------------------------- */

char *wb_ats_url_escape(const char *s)
{
    struct wb_buf b;
    wb_buf_init(&b);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || strchr("-._~", *p)) {
            wb_buf_append(&b, (const char *)p, 1);
        } else {
            wb_buf_printf(&b, "%%%02X", *p);
        }
    }
    return wb_buf_steal(&b);
}

void wb_ats_hmac_hex(const unsigned char *key, size_t keylen, const void *data, size_t len,
                     char out[65])
{
    static const unsigned char empty[1];
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    HMAC(EVP_sha256(), keylen ? key : empty, (int)keylen, data ? data : empty, len, mac, &ml);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
    out[64] = '\0';
}

bool wb_ats_hex_equal(const char *given, size_t given_len, const char expected[65])
{
    if (!given || given_len != 64)
        return false;
    char low[64];
    for (size_t i = 0; i < 64; i++)
        low[i] = (char)tolower((unsigned char)given[i]);
    return CRYPTO_memcmp(low, expected, 64) == 0;
}

const char *wb_ats_json_str(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

const char *wb_ats_cand_str(const json_t *payload, const char *key)
{
    return wb_ats_json_str(json_object_get(payload, "candidate"), key);
}

json_t *wb_ats_load_object(const char *body, size_t len, char *err, size_t errsz)
{
    json_error_t je;
    json_t *r = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (json_is_object(r))
        return r;
    snprintf(err, errsz, r ? "the body must be a JSON object" : "invalid JSON: %s", je.text);
    json_decref(r);
    return NULL;
}

int wb_ats_json_take(const json_t *obj, const char *key, const char *path, size_t max,
                     char **out, char *err, size_t errsz)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        snprintf(err, errsz, "%s: must be a string", path);
        return -1;
    }
    const char *s = json_string_value(v);
    if (wb_ats_text_ok(s, max, path, err, errsz) < 0)
        return -1;
    *out = wb_xstrdup(s);
    return 0;
}

int wb_ats_req_token(const struct wb_ats_api *api, const char *method, char *url, json_t *body,
                     const char *vendor, const char *header, struct wb_ats_req *rq, char *err,
                     size_t errsz)
{
    wb_ats_req_init(rq, method, url);
    bool ok = api->secret && api->secret_len && !memchr(api->secret, '\0', api->secret_len);
    if (!ok ||
        wb_ats_req_header(rq, "%s%.*s", header, (int)api->secret_len, api->secret) < 0 ||
        wb_ats_req_header(rq, "Accept: application/json") < 0) {
        snprintf(err, errsz, "%s: the token is empty or cannot go in a header", vendor);
        json_decref(body);
        wb_ats_req_free(rq);
        return -1;
    }
    if (body)
        wb_ats_req_json(rq, body);
    return 0;
}

char *wb_ats_json_id(const json_t *v)
{
    if (json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) <= 200) {
        /* An id goes into URLs, headers and logs: no control characters. */
        for (const char *p = json_string_value(v); *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                return NULL;
        return wb_xstrdup(json_string_value(v));
    }
    if (json_is_integer(v))
        return wb_xasprintf("%lld", (long long)json_integer_value(v));
    return NULL;
}

/* One engagement event as a line: "- 2026-03-01T10:00:00Z clicked (step 2, link calendar)". */
static void av_note_event(struct wb_buf *b, const json_t *e)
{
    static const char *const extra[] = {"link", "intent", "kind", "reason"};
    const char *at = wb_ats_json_str(e, "at"), *type = wb_ats_json_str(e, "type");
    wb_buf_printf(b, "- %s %s", at ? at : "?", type ? type : "?");
    json_t *step = json_object_get(e, "step");
    bool open = json_is_integer(step);
    if (open)
        wb_buf_printf(b, " (step %lld", (long long)json_integer_value(step));
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        const char *v = wb_ats_json_str(e, extra[i]);
        if (v) {
            wb_buf_printf(b, "%s%s %s", open ? ", " : " (", extra[i], v);
            open = true;
        }
    }
    wb_buf_puts(b, open ? ")\n" : "\n");
}

char *wb_ats_note_text(const json_t *payload)
{
    struct wb_buf b;
    wb_buf_init(&b);
    const char *reason = wb_ats_json_str(payload, "reason");
    const char *seq = wb_ats_json_str(payload, "sequence");
    wb_buf_printf(&b, "warmbench handoff: %s%s%s\n", reason ? reason : "manual",
                  seq ? ", sequence " : "", seq ? seq : "");
    json_t *eng = json_object_get(payload, "engagement"), *e;
    size_t i;
    json_array_foreach(eng, i, e) {
        if (json_is_object(e))
            av_note_event(&b, e);
    }
    /* Whatever came from the database, the note is valid UTF-8 text. */
    wb_text_clean_inplace(b.data, b.len);
    return wb_buf_steal(&b);
}

char *wb_ats_basic_auth(const char *user, const char *pass, size_t pass_len)
{
    size_t ul = strlen(user), n = ul + 1 + pass_len;
    unsigned char *plain = wb_xmalloc(n + 1);
    memcpy(plain, user, ul);
    plain[ul] = ':';
    memcpy(plain + ul + 1, pass, pass_len);
    char *out = wb_xmalloc(6 + 4 * ((n + 2) / 3) + 1);
    memcpy(out, "Basic ", 6);
    EVP_EncodeBlock((unsigned char *)out + 6, plain, (int)n);
    OPENSSL_cleanse(plain, n);
    free(plain);
    return out;
}
