/* `warmbench ats check`: token (for vendors that use one), then the
 * vendor's probes for authentication, job_id and user_id, each one
 * blocking request (a command, not the daemon). */
#include "warmbench/ats_check.h"
#include "warmbench/ats_config.h"
#include "warmbench/ats_http.h"
#include "warmbench/exitcodes.h"
#include "warmbench/util.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The verdict of one check, worst first when combined. */
enum ck_result { CK_OK, CK_REFUSED, CK_UNREACHABLE };

static double ck_now(void)
{
    return (double)time(NULL);
}

/* One request; rs points into x (free it after). status 0: no answer. */
static void ck_perform(struct wb_ats_http *x, const struct wb_ats_req *rq,
                       struct wb_ats_resp *rs)
{
    if (wb_ats_http_init(x, rq) < 0) {
        memset(rs, 0, sizeof *rs);
        rs->body = "curl refused the request";
        return;
    }
    CURLcode rc = curl_easy_perform(x->easy);
    wb_ats_http_resp(x, rc, ck_now(), rs);
}

static enum ck_result ck_token(const struct wb_ats_vendor *v, const struct wb_ats_api *api,
                               char **token, FILE *out)
{
    struct wb_ats_req rq;
    char err[WB_ATS_ERR_MAX] = "";
    memset(&rq, 0, sizeof rq);
    if (v->token_build(api, &rq, err, sizeof err) < 0) {
        fprintf(out, "authentication: %s\n", err);
        return CK_REFUSED;
    }
    struct wb_ats_http x;
    struct wb_ats_resp rs;
    ck_perform(&x, &rq, &rs);
    wb_ats_req_free(&rq);
    double exp;
    enum ck_result r = CK_OK;
    if (rs.status == 0) {
        fprintf(out, "authentication: %s unreachable: %.200s\n", v->kind, rs.body);
        r = CK_UNREACHABLE;
    } else if (v->token_parse(&rs, token, &exp, err, sizeof err) == 0) {
        fprintf(out, "authentication: ok (access token from %s)\n", api->token_url);
    } else {
        bool refused = rs.status == 400 || rs.status == 401 || rs.status == 403;
        fprintf(out, "authentication: %s: %s\n", refused ? "refused" : "failed", err);
        r = refused ? CK_REFUSED : CK_UNREACHABLE;
    }
    wb_ats_http_free(&x);
    return r;
}

static const char *ck_label(enum wb_ats_check_what w)
{
    return w == WB_ATS_CHECK_AUTH ? "authentication" : w == WB_ATS_CHECK_JOB ? "job" : "user";
}

static enum ck_result ck_probe(const struct wb_ats_vendor *v, const struct wb_ats_api *api,
                               const char *token, enum wb_ats_check_what w, FILE *out)
{
    struct wb_ats_req rq;
    char err[WB_ATS_ERR_MAX] = "";
    memset(&rq, 0, sizeof rq);
    int b = v->check_build(api, token, w, &rq, err, sizeof err);
    if (b == 1)
        return CK_OK;
    if (b < 0) {
        fprintf(out, "%s: %s\n", ck_label(w), err);
        return CK_REFUSED;
    }
    struct wb_ats_http x;
    struct wb_ats_resp rs;
    ck_perform(&x, &rq, &rs);
    wb_ats_req_free(&rq);
    enum ck_result r;
    if (rs.status == 0) {
        fprintf(out, "%s: %s unreachable: %.200s\n", ck_label(w), v->kind, rs.body);
        r = CK_UNREACHABLE;
    } else {
        char msg[512];
        enum wb_ats_check_result c = v->check_parse(w, &rs, msg, sizeof msg);
        fprintf(out, "%s\n", msg);
        r = c == WB_ATS_CHECK_OK ? CK_OK : c == WB_ATS_CHECK_FAILED ? CK_UNREACHABLE : CK_REFUSED;
    }
    wb_ats_http_free(&x);
    return r;
}

int wb_cmd_ats_check(const struct wb_config *cfg, FILE *out, FILE *err)
{
    const struct wb_ats_vendor *v = wb_ats_vendor_of(cfg);
    if (!v) {
        fprintf(err, "ats check: no native ATS configured (ats.kind is \"%s\")\n",
                cfg->ats.enabled && cfg->ats.kind ? cfg->ats.kind : "webhook");
        return WB_EXIT_CONFIG;
    }
    struct wb_ats_api api;
    wb_ats_api_of(cfg, v, &api);
    char *token = NULL;
    enum ck_result worst = CK_OK;
    if (v->token_build)
        worst = ck_token(v, &api, &token, out);
    /* Without a token the other calls could only be refused. */
    bool go = worst == CK_OK;
    for (int w = WB_ATS_CHECK_AUTH; go && w <= WB_ATS_CHECK_USER; w++) {
        enum ck_result r = ck_probe(v, &api, token, (enum wb_ats_check_what)w, out);
        worst = r > worst ? r : worst;
    }
    if (token) {
        explicit_bzero(token, strlen(token));
        free(token);
    }
    return worst == CK_OK ? WB_EXIT_OK : worst == CK_REFUSED ? WB_EXIT_CONFIG
                                                             : WB_EXIT_UNAVAILABLE;
}
