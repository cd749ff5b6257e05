/* A vendor request on curl: the method, headers and body of a
 * struct wb_ats_req; the answer's status, headers and first bytes. */
#include "warmbench/ats_http.h"
#include "warmbench/util.h"
#include <stdlib.h>
#include <string.h>

#define CONNECT_TIMEOUT_S 10

static size_t ah_on_body(char *p, size_t size, size_t n, void *ud)
{
    struct wb_ats_http *x = ud;
    size_t len = size * n;
    if (x->resp.len < WB_ATS_RESP_MAX) {
        size_t room = WB_ATS_RESP_MAX - x->resp.len;
        wb_buf_append(&x->resp, p, len < room ? len : room);
    }
    return len; /* the rest is read and dropped */
}

static void ah_clear_headers(struct wb_ats_http *x)
{
    for (size_t i = 0; i < x->nhdr; i++) {
        free((char *)x->hdr[i].name);
        free((char *)x->hdr[i].value);
    }
    x->nhdr = 0;
}

/* Header lines of the last response only (a 100 Continue's are dropped). */
static size_t ah_on_header(char *p, size_t size, size_t n, void *ud)
{
    struct wb_ats_http *x = ud;
    size_t len = size * n, end = len;
    if (len >= 5 && !strncmp(p, "HTTP/", 5)) {
        ah_clear_headers(x);
        return len;
    }
    while (end && (p[end - 1] == '\r' || p[end - 1] == '\n'))
        end--;
    const char *colon = memchr(p, ':', end);
    if (!colon || x->nhdr >= WB_ATS_RESP_HEADERS)
        return len;
    const char *v = colon + 1;
    while (v < p + end && (*v == ' ' || *v == '\t'))
        v++;
    x->hdr[x->nhdr].name = wb_text_clean(p, (size_t)(colon - p));
    x->hdr[x->nhdr].value = wb_text_clean(v, (size_t)(p + end - v));
    x->nhdr++;
    return len;
}

static int ah_headers(struct wb_ats_http *x, const struct wb_ats_req *rq)
{
    for (size_t i = 0; i < rq->nheaders; i++) {
        struct curl_slist *l = curl_slist_append(x->headers, rq->headers[i]);
        if (!l)
            return -1;
        x->headers = l;
    }
    /* No 100-continue round trip: bodies are small. */
    struct curl_slist *l = curl_slist_append(x->headers, "Expect:");
    if (!l)
        return -1;
    x->headers = l;
    return 0;
}

int wb_ats_http_init(struct wb_ats_http *x, const struct wb_ats_req *rq)
{
    memset(x, 0, sizeof *x);
    wb_buf_init(&x->resp);
    CURL *e = x->easy = curl_easy_init();
    if (!e || ah_headers(x, rq) < 0) {
        wb_ats_http_free(x);
        return -1;
    }
    curl_easy_setopt(e, CURLOPT_URL, rq->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, rq->method);
    if (rq->body) {
        x->body = wb_xstrdup(rq->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(x->body));
    } else if (strcmp(rq->method, "GET")) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "warmbench/" WB_VERSION);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)CONNECT_TIMEOUT_S);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)WB_ATS_HTTP_TIMEOUT_S);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, ah_on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, ah_on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    return 0;
}

void wb_ats_http_resp(struct wb_ats_http *x, CURLcode rc, double now, struct wb_ats_resp *out)
{
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    memset(out, 0, sizeof *out);
    out->now = now;
    if (!status && rc != CURLE_OK) {
        /* No answer: the body says why, for the error text. */
        wb_buf_reset(&x->resp);
        wb_buf_puts(&x->resp, x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
        ah_clear_headers(x);
    }
    out->status = status;
    out->headers = x->hdr;
    out->nheaders = x->nhdr;
    out->body = x->resp.data ? x->resp.data : "";
    out->len = x->resp.len;
}

void wb_ats_http_free(struct wb_ats_http *x)
{
    if (x->easy)
        curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->headers);
    free(x->body);
    wb_buf_free(&x->resp);
    ah_clear_headers(x);
    memset(x, 0, sizeof *x);
}
