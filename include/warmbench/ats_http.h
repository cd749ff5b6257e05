/* One vendor request (struct wb_ats_req) as a curl easy handle, and its
 * answer as a struct wb_ats_resp: shared by the handoff engine (on the
 * curl loop) and `warmbench ats check` (curl_easy_perform). */
#ifndef WB_ATS_HTTP_H
#define WB_ATS_HTTP_H
#include <curl/curl.h>
#include "warmbench/ats_vendor.h"
#include "warmbench/buf.h"

#define WB_ATS_HTTP_TIMEOUT_S 30
#define WB_ATS_RESP_HEADERS 64

struct wb_ats_http {
    CURL *easy;
    struct curl_slist *headers;
    char *body;                     /* the request body (kept while it runs) */
    struct wb_buf resp;             /* up to WB_ATS_RESP_MAX bytes */
    struct wb_ats_header hdr[WB_ATS_RESP_HEADERS];
    size_t nhdr;
    char errbuf[CURL_ERROR_SIZE];
};

/* Sets x up for rq (copied). -1 when curl refuses; x is then clean. */
int wb_ats_http_init(struct wb_ats_http *x, const struct wb_ats_req *rq);
/* The answer once the transfer ended with rc (status 0 and curl's error
 * text as the body when there was none). Points into x. */
void wb_ats_http_resp(struct wb_ats_http *x, CURLcode rc, double now, struct wb_ats_resp *out);
void wb_ats_http_free(struct wb_ats_http *x);

#endif
