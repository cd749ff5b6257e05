/* SMTP sender on the shared curl_loop: a FIFO of built messages, at most
 * `connections` transactions on the wire, reply lines read through curl's
 * debug callback (CURLINFO_HEADER_IN/OUT), outcome classified per SPEC.md. */
#include "warmbench/smtp.h"
#include "warmbench/log.h"
#include "warmbench/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The command a reply answers, so a 5.1.x is blamed on the right address. */
enum stage { ST_SESSION, ST_MAIL, ST_RCPT, ST_DATA };

struct job {
    struct wb_smtp *s;
    CURL *easy;
    struct wb_mail_handles h;
    struct curl_slist *rcpts;
    char *from;
    wb_smtp_done_fn done;
    void *ud;
    enum stage stage, err_stage;
    char last[WB_SMTP_REPLY_MAX];  /* the latest reply line */
    char fail[WB_SMTP_REPLY_MAX];  /* the latest 4xx/5xx reply line */
    char errbuf[CURL_ERROR_SIZE];
    struct job *prev, *next;
};

struct wb_smtp {
    struct wb_curl_loop *cl;
    struct wb_smtp_opts o;
    struct job *qhead, *qtail;  /* waiting for a slot */
    struct job *wire;           /* on the wire */
    size_t queued, running;
    int dispatching, free_pending;
    CURL **idle;                /* finished easy handles, reset for reuse */
    size_t nidle;
};

static char *dup_or_null(const char *s)
{
    return s && *s ? wb_xstrdup(s) : NULL;
}

struct wb_smtp *wb_smtp_new(struct wb_curl_loop *cl, const struct wb_smtp_opts *o)
{
    if (!o->url || !*o->url || o->connections < 1)
        return NULL;
    struct wb_smtp *s = wb_xcalloc(1, sizeof *s);
    s->cl = cl;
    s->o = *o;
    s->o.url = wb_xstrdup(o->url);
    s->o.username = dup_or_null(o->username);
    s->o.password = dup_or_null(o->password);
    s->idle = wb_xcalloc((size_t)o->connections * 2, sizeof *s->idle);
    /* Idle connections must survive in curl's cache to be reused. */
    wb_curl_loop_reserve(cl, (size_t)o->connections);
    return s;
}

/* Easy handles are kept for the next message: creating and freeing one per
 * message showed up as a tenth of the daemon's time (large buffers). A job
 * takes one only when it goes on the wire, so `connections` of them serve
 * every message. The reset comes first, so the handle holds no pointer into
 * what is freed next. */
static void release_easy(struct wb_smtp *s, CURL *e)
{
    if (!e)
        return;
    curl_easy_reset(e);
    if (s->nidle < (size_t)s->o.connections * 2) {
        s->idle[s->nidle++] = e;
        return;
    }
    curl_easy_cleanup(e);
}

static CURL *take_easy(struct wb_smtp *s)
{
    return s->nidle ? s->idle[--s->nidle] : curl_easy_init();
}

static void job_free(struct job *j)
{
    release_easy(j->s, j->easy);
    wb_mail_handles_free(&j->h);
    curl_slist_free_all(j->rcpts);
    free(j->from);
    free(j);
}

static void keep_line(struct job *j, const char *p, size_t n)
{
    while (n && (p[n - 1] == '\r' || p[n - 1] == '\n'))
        n--;
    if (n >= WB_SMTP_REPLY_MAX)
        n = WB_SMTP_REPLY_MAX - 1;
    memcpy(j->last, p, n);
    j->last[n] = '\0';
    if (n >= 3 && (p[0] == '4' || p[0] == '5')) {
        memcpy(j->fail, j->last, n + 1);
        j->err_stage = j->stage;
    }
}

/* Only replies and commands matter; body bytes pass by untouched. */
static int on_debug(CURL *easy, curl_infotype type, char *data, size_t n, void *ud)
{
    (void)easy;
    struct job *j = ud;
    if (type == CURLINFO_HEADER_IN) {
        /* One callback may hold several lines of a multi-line reply. */
        const char *end = data + n, *line = data;
        while (line < end) {
            const char *nl = memchr(line, '\n', (size_t)(end - line));
            size_t len = nl ? (size_t)(nl - line + 1) : (size_t)(end - line);
            if (len > 2 || (len && line[0] != '\r'))
                keep_line(j, line, len);
            line += len;
        }
    } else if (type == CURLINFO_HEADER_OUT && n >= 4) {
        if (!strncasecmp(data, "MAIL", 4))
            j->stage = ST_MAIL;
        else if (!strncasecmp(data, "RCPT", 4))
            j->stage = ST_RCPT;
        else if (!strncasecmp(data, "DATA", 4))
            j->stage = ST_DATA;
    }
    return 0;
}

static int reply_code(const char *line)
{
    if (strlen(line) < 3 || line[0] < '1' || line[0] > '5')
        return 0;
    return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}

/* "550 5.1.1 ..." or "550-5.1.1 ...": 1 when the enhanced status is 5.1.x
 * about the recipient (5.1.7 and 5.1.8 are about the sender). */
static int recipient_gone(const char *line)
{
    const char *p = line + 4;
    if (strlen(line) < 9 || strncmp(p, "5.1.", 4))
        return 0;
    int x = atoi(p + 4);
    return p[4] >= '0' && p[4] <= '9' && x != 7 && x != 8;
}

static void classify(struct job *j, CURLcode rc, struct wb_smtp_result *r)
{
    long code = 0;
    if (j->easy) { /* none when the job never got onto the wire */
        curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(j->easy, CURLINFO_TOTAL_TIME, &r->seconds);
    }
    if (rc == CURLE_OK) {
        r->outcome = WB_SMTP_SENT;
        r->code = (int)code;
        snprintf(r->reply, sizeof r->reply, "%s", j->last);
        return;
    }
    if (j->fail[0]) {
        r->code = reply_code(j->fail);
        snprintf(r->reply, sizeof r->reply, "%s", j->fail);
        /* A refusal before MAIL (greeting, TLS, AUTH) is the server's or our
         * configuration's problem, not this message's: try again later. */
        if (r->code < 500 || j->err_stage == ST_SESSION)
            r->outcome = WB_SMTP_TEMPFAIL;
        else if (j->err_stage != ST_MAIL && recipient_gone(j->fail))
            r->outcome = WB_SMTP_HARDBOUNCE;
        else
            r->outcome = WB_SMTP_PERMFAIL;
        return;
    }
    /* No refusal seen: connection, TLS or timeout trouble. */
    r->outcome = WB_SMTP_TEMPFAIL;
    r->uncertain = j->stage == ST_DATA;
    r->code = code >= 400 ? (int)code : 0;
    snprintf(r->reply, sizeof r->reply, "%s", j->errbuf[0] ? j->errbuf : curl_easy_strerror(rc));
}

static void start_next(struct wb_smtp *s);
static void really_free(struct wb_smtp *s);

static void wire_unlink(struct wb_smtp *s, struct job *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        s->wire = j->next;
    if (j->next)
        j->next->prev = j->prev;
    s->running--;
}

static void finish(struct job *j, CURLcode rc)
{
    struct wb_smtp *s = j->s;
    struct wb_smtp_result r;
    memset(&r, 0, sizeof r);
    classify(j, rc, &r);
    s->dispatching++;
    j->done(&r, j->ud);
    s->dispatching--;
    job_free(j);
}

static void on_done(CURL *easy, CURLcode rc, void *ud)
{
    (void)easy;
    struct job *j = ud;
    struct wb_smtp *s = j->s;
    wire_unlink(s, j);
    finish(j, rc);
    if (s->free_pending && !s->dispatching)
        really_free(s);
    else if (!s->dispatching)
        start_next(s);
}

static void set_options(struct wb_smtp *s, struct job *j);

static int launch(struct wb_smtp *s, struct job *j)
{
    j->easy = take_easy(s);
    if (!j->easy)
        return -1;
    set_options(s, j);
    if (wb_curl_loop_add(s->cl, j->easy, on_done, j) < 0)
        return -1;
    j->prev = NULL;
    j->next = s->wire;
    if (s->wire)
        s->wire->prev = j;
    s->wire = j;
    s->running++;
    return 0;
}

/* Runs from the loop only, so a failure can report through `done`. */
static void start_next(struct wb_smtp *s)
{
    while (s->qhead && s->running < (size_t)s->o.connections) {
        struct job *j = s->qhead;
        s->qhead = j->next;
        if (!s->qhead)
            s->qtail = NULL;
        s->queued--;
        j->next = NULL;
        if (launch(s, j) < 0) {
            snprintf(j->errbuf, sizeof j->errbuf, "the transfer loop refused the message");
            finish(j, CURLE_FAILED_INIT);
        }
    }
}

static long use_ssl(enum wb_tls t)
{
    switch (t) {
    case WB_TLS_TRY: return (long)CURLUSESSL_TRY;
    case WB_TLS_OFF: return (long)CURLUSESSL_NONE;
    default: return (long)CURLUSESSL_ALL;
    }
}

static void set_options(struct wb_smtp *s, struct job *j)
{
    CURL *e = j->easy;
    wb_mail_attach(e, &j->h);
    curl_easy_setopt(e, CURLOPT_URL, s->o.url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_USE_SSL, use_ssl(s->o.tls));
    if (s->o.timeout_s > 0)
        curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)s->o.timeout_s);
    if (s->o.username) {
        curl_easy_setopt(e, CURLOPT_USERNAME, s->o.username);
        curl_easy_setopt(e, CURLOPT_PASSWORD, s->o.password ? s->o.password : "");
    }
    curl_easy_setopt(e, CURLOPT_MAIL_RCPT, j->rcpts);
    curl_easy_setopt(e, CURLOPT_MAIL_FROM, j->from);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, j->errbuf);
    /* The debug callback is where curl shows SMTP reply text. */
    curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
    curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, on_debug);
    curl_easy_setopt(e, CURLOPT_DEBUGDATA, j);
}

int wb_smtp_send(struct wb_smtp *s, const char *envelope_from, const char *rcpt,
                 const struct wb_mail *m, wb_smtp_done_fn done, void *ud)
{
    char err[128];
    if (!wb_mime_addr_ok(envelope_from) || !wb_mime_addr_ok(rcpt)) {
        wb_warn("smtp: not sending %s: bad envelope address", m->message_id);
        return -1;
    }
    struct job *j = wb_xcalloc(1, sizeof *j);
    j->s = s;
    j->done = done;
    j->ud = ud;
    j->from = wb_xasprintf("<%s>", envelope_from);
    if (wb_mail_prepare(m, &j->h, err, sizeof err) < 0) {
        wb_warn("smtp: not sending %s: %s", m->message_id, err);
        job_free(j);
        return -1;
    }
    char *angle = wb_xasprintf("<%s>", rcpt);
    j->rcpts = curl_slist_append(NULL, angle);
    free(angle);
    if (!j->rcpts) {
        job_free(j);
        return -1;
    }
    /* Straight onto the wire when a slot is free; curl_loop defers `done`. */
    if (!s->qhead && s->running < (size_t)s->o.connections && !s->free_pending) {
        if (launch(s, j) < 0) {
            job_free(j);
            return -1;
        }
        return 0;
    }
    if (s->qtail)
        s->qtail->next = j;
    else
        s->qhead = j;
    s->qtail = j;
    s->queued++;
    return 0;
}

size_t wb_smtp_inflight(struct wb_smtp *s)
{
    return s->queued + s->running;
}

static void really_free(struct wb_smtp *s)
{
    while (s->wire) {
        struct job *j = s->wire;
        wire_unlink(s, j);
        wb_curl_loop_cancel(s->cl, j->easy);
        job_free(j);
    }
    while (s->qhead) {
        struct job *j = s->qhead;
        s->qhead = j->next;
        job_free(j);
    }
    while (s->nidle)
        curl_easy_cleanup(s->idle[--s->nidle]);
    free(s->idle);
    free((char *)s->o.url);
    free((char *)s->o.username);
    free((char *)s->o.password);
    free(s);
}

void wb_smtp_free(struct wb_smtp *s)
{
    if (!s)
        return;
    if (s->dispatching)
        s->free_pending = 1; /* called from a done callback: finish that first */
    else
        really_free(s);
}
