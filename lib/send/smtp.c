/* SMTP sender: a FIFO of built messages (loop → workers), one worker thread
 * per connection running curl_easy_perform on its own easy handle, a FIFO
 * of finished jobs (workers → loop) announced with uv_async. Reply lines
 * are read through curl's debug callback (CURLINFO_HEADER_IN/OUT) and the
 * outcome is classified per SPEC.md in the worker, so the loop only stores
 * it. */
#include "warmbench/smtp.h"
#include "warmbench/oauth_parse.h"
#include "warmbench/log.h"
#include "warmbench/util.h"
#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

/* The command a reply answers, so a 5.1.x is blamed on the right address. */
enum smtp_stage { SMTP_ST_SESSION, SMTP_ST_MAIL, SMTP_ST_RCPT, SMTP_ST_DATA };

struct smtp_job {
    struct wb_mail_handles h;
    size_t raw_cap;                 /* h.raw's room, for the buffer pool */
    struct curl_slist rcpt;         /* the one recipient: a list curl only reads */
    char *from;
    char *bearer;                   /* the access token, wiped when freed */
    wb_smtp_done_fn done;
    void *ud;
    struct wb_smtp_result r;        /* filled by the worker */
    TAILQ_ENTRY(smtp_job) link;
};
TAILQ_HEAD(smtp_jobs, smtp_job);

/* A worker's state for the transfer it runs; only that thread touches it. */
struct smtp_worker {
    struct wb_smtp *s;
    pthread_t tid;
    CURL *easy;
    enum smtp_stage stage, err_stage;
    char last[WB_SMTP_REPLY_MAX];   /* the latest reply line */
    char fail[WB_SMTP_REPLY_MAX];   /* the latest 4xx/5xx reply line */
    char errbuf[CURL_ERROR_SIZE];
};

#define SMTP_POOL 64
#define SMTP_POOL_BYTES (4u << 20)

struct wb_smtp {
    struct wb_smtp_opts o;
    uv_async_t async;
    pthread_mutex_t mu;             /* guards todo, done, busy, stopping */
    pthread_cond_t cv;              /* todo gained a job, or stopping */
    struct smtp_jobs todo, done;
    size_t busy;
    bool stopping;
    atomic_int abort;               /* workers abort their transfer */
    struct smtp_worker *w;
    int nw;
    size_t inflight;                /* loop only: handed over, done not yet run */
    /* Loop only: the buffers of sent messages, each built into again with
     * its room (a message's worst case) kept, so a message costs no malloc
     * of its size, no copy and no free. */
    struct wb_buf pool[SMTP_POOL];
    size_t npool, pooled_bytes;
    int dispatching, free_pending;  /* loop only */
};

static void smtp_job_free(struct smtp_job *j)
{
    wb_mail_handles_free(&j->h);
    free(j->rcpt.data);
    free(j->from);
    wb_oauth_wipe(j->bearer);
    free(j);
}

/* --- reply reading and classification (worker side) -------------------- */

static void smtp_keep_line(struct smtp_worker *w, const char *p, size_t n)
{
    while (n && (p[n - 1] == '\r' || p[n - 1] == '\n'))
        n--;
    if (n >= WB_SMTP_REPLY_MAX)
        n = WB_SMTP_REPLY_MAX - 1;
    memcpy(w->last, p, n);
    w->last[n] = '\0';
    if (n >= 3 && (p[0] == '4' || p[0] == '5')) {
        memcpy(w->fail, w->last, n + 1);
        w->err_stage = w->stage;
    }
}

/* Only replies and commands matter; body bytes pass by untouched. */
static int smtp_on_debug(CURL *easy, curl_infotype type, char *data, size_t n, void *ud)
{
    (void)easy;
    struct smtp_worker *w = ud;
    if (type == CURLINFO_HEADER_IN) {
        /* One callback may hold several lines of a multi-line reply. */
        const char *end = data + n, *line = data;
        while (line < end) {
            const char *nl = memchr(line, '\n', (size_t)(end - line));
            size_t len = nl ? (size_t)(nl - line + 1) : (size_t)(end - line);
            if (len > 2 || (len && line[0] != '\r'))
                smtp_keep_line(w, line, len);
            line += len;
        }
    } else if (type == CURLINFO_HEADER_OUT && n >= 4) {
        if (!strncasecmp(data, "MAIL", 4))
            w->stage = SMTP_ST_MAIL;
        else if (!strncasecmp(data, "RCPT", 4))
            w->stage = SMTP_ST_RCPT;
        else if (!strncasecmp(data, "DATA", 4))
            w->stage = SMTP_ST_DATA;
    }
    return 0;
}

/* curl calls this at least once a second, blocking DONE phase included
 * (pingpong's wait loop): the way to stop a worker that waits on a server. */
static int smtp_on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a, (void)b, (void)c, (void)d;
    struct smtp_worker *w = ud;
    return atomic_load(&w->s->abort) ? 1 : 0;
}

static int smtp_reply_code(const char *line)
{
    if (strlen(line) < 3 || line[0] < '1' || line[0] > '5')
        return 0;
    return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}

/* "550 5.1.1 ..." or "550-5.1.1 ...": 1 when the enhanced status is 5.1.x
 * about the recipient (5.1.7 and 5.1.8 are about the sender). */
static int smtp_recipient_gone(const char *line)
{
    const char *p = line + 4;
    if (strlen(line) < 9 || strncmp(p, "5.1.", 4))
        return 0;
    int x = atoi(p + 4);
    return p[4] >= '0' && p[4] <= '9' && x != 7 && x != 8;
}

static void smtp_decide(struct smtp_worker *w, CURLcode rc, struct wb_smtp_result *r);

/* s into r->reply, cut to fit (as snprintf "%s" would, without the format). */
static void smtp_set_reply(struct wb_smtp_result *r, const char *s)
{
    size_t n = strnlen(s, sizeof r->reply - 1);
    memcpy(r->reply, s, n);
    r->reply[n] = '\0';
}

/* The reply is the server's bytes, stored as text: made valid UTF-8. */
static void smtp_classify(struct smtp_worker *w, CURLcode rc, struct wb_smtp_result *r)
{
    smtp_decide(w, rc, r);
    r->auth_refused = rc == CURLE_LOGIN_DENIED;
    wb_text_clean_inplace(r->reply, strlen(r->reply));
}

static void smtp_decide(struct smtp_worker *w, CURLcode rc, struct wb_smtp_result *r)
{
    long code = 0;
    curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(w->easy, CURLINFO_TOTAL_TIME, &r->seconds);
    if (rc == CURLE_OK) {
        r->outcome = WB_SMTP_SENT;
        r->code = (int)code;
        smtp_set_reply(r, w->last);
        return;
    }
    if (w->fail[0]) {
        r->code = smtp_reply_code(w->fail);
        smtp_set_reply(r, w->fail);
        /* A refusal before MAIL (greeting, TLS, AUTH) is the server's or our
         * configuration's problem, not this message's: try again later. */
        if (r->code < 500 || w->err_stage == SMTP_ST_SESSION)
            r->outcome = WB_SMTP_TEMPFAIL;
        else if (w->err_stage != SMTP_ST_MAIL && smtp_recipient_gone(w->fail))
            r->outcome = WB_SMTP_HARDBOUNCE;
        else
            r->outcome = WB_SMTP_PERMFAIL;
        return;
    }
    /* No refusal seen: connection, TLS, timeout or abort. */
    r->outcome = WB_SMTP_TEMPFAIL;
    r->uncertain = w->stage == SMTP_ST_DATA;
    r->code = code >= 400 ? (int)code : 0;
    smtp_set_reply(r, w->errbuf[0] ? w->errbuf : curl_easy_strerror(rc));
}

/* --- worker ------------------------------------------------------------- */

void wb_curl_login(CURL *e, enum wb_auth auth, const char *username, const char *password,
                   const char *bearer)
{
    if (!username)
        return;
    curl_easy_setopt(e, CURLOPT_USERNAME, username);
    if (auth == WB_AUTH_PASSWORD) {
        curl_easy_setopt(e, CURLOPT_PASSWORD, password ? password : "");
        return;
    }
    curl_easy_setopt(e, CURLOPT_XOAUTH2_BEARER, bearer ? bearer : "");
    curl_easy_setopt(e, CURLOPT_LOGIN_OPTIONS,
                     auth == WB_AUTH_XOAUTH2 ? "AUTH=XOAUTH2" : "AUTH=OAUTHBEARER");
}

long wb_smtp_use_ssl(enum wb_tls t)
{
    switch (t) {
    case WB_TLS_TRY: return (long)CURLUSESSL_TRY;
    case WB_TLS_OFF: return (long)CURLUSESSL_NONE;
    default: return (long)CURLUSESSL_ALL;
    }
}

/* 1 when the environment names a proxy curl would look at for this URL's
 * scheme (no_proxy, <scheme>_proxy and all_proxy, in either case), or the
 * URL has no scheme for us to tell. */
static int smtp_env_proxy(const char *url)
{
    const char *sep = strstr(url, "://");
    size_t n = sep ? (size_t)(sep - url) : 0;
    char lower[32], upper[32];
    if (!n || n > 16)
        return 1;
    for (size_t i = 0; i < n; i++)
        lower[i] = (char)tolower((unsigned char)url[i]);
    memcpy(lower + n, "_proxy", 7);
    for (size_t i = 0; i < n + 7; i++)
        upper[i] = (char)toupper((unsigned char)lower[i]);
    const char *names[] = {"no_proxy", "NO_PROXY", lower, upper, "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (getenv(names[i]))
            return 1;
    return 0;
}

/* What stays the same from message to message is set once per worker:
 * curl_easy_reset and a dozen setopts per message showed in the profile.
 * curl keeps options across transfers, and the handle its live connection,
 * so the next message goes over the same SMTP session (no new TCP or TLS
 * handshake). */
static void smtp_set_fixed(struct smtp_worker *w)
{
    const struct wb_smtp_opts *o = &w->s->o;
    CURL *e = w->easy;
    curl_easy_setopt(e, CURLOPT_URL, o->url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_USE_SSL, wb_smtp_use_ssl(o->tls));
    if (o->timeout_s > 0)
        curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)o->timeout_s);
    if (o->auth == WB_AUTH_PASSWORD)
        wb_curl_login(e, o->auth, o->username, o->password, NULL);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, w->errbuf);
    /* The debug callback is where curl shows SMTP reply text. */
    curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
    curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, smtp_on_debug);
    curl_easy_setopt(e, CURLOPT_DEBUGDATA, w);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, smtp_on_progress);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, w);
    /* curl reads six proxy variables from the environment for every
     * transfer. When none is set, saying "no proxy" up front is the same
     * answer without the lookups; when one is, curl goes on reading them. */
    if (!smtp_env_proxy(o->url)) {
        curl_easy_setopt(e, CURLOPT_PROXY, "");
        curl_easy_setopt(e, CURLOPT_NOPROXY, "");
    }
}

/* This message's options: its body, envelope and (OAuth) token. */
static void smtp_set_options(struct smtp_worker *w, struct smtp_job *j)
{
    const struct wb_smtp_opts *o = &w->s->o;
    CURL *e = w->easy;
    wb_mail_attach(e, &j->h);
    if (o->auth != WB_AUTH_PASSWORD)
        wb_curl_login(e, o->auth, o->username, o->password, j->bearer);
    curl_easy_setopt(e, CURLOPT_MAIL_RCPT, &j->rcpt);
    curl_easy_setopt(e, CURLOPT_MAIL_FROM, j->from);
}

static void smtp_run(struct smtp_worker *w, struct smtp_job *j)
{
    w->stage = w->err_stage = SMTP_ST_SESSION;
    w->last[0] = w->fail[0] = w->errbuf[0] = '\0';
    smtp_set_options(w, j);
    CURLcode rc = curl_easy_perform(w->easy);
    smtp_classify(w, rc, &j->r);
    /* Nothing of this job may stay in the handle past its free. */
    curl_easy_setopt(w->easy, CURLOPT_MAIL_RCPT, NULL);
    curl_easy_setopt(w->easy, CURLOPT_READDATA, NULL);
}

static void *smtp_worker_main(void *arg)
{
    struct smtp_worker *w = arg;
    struct wb_smtp *s = w->s;
    smtp_set_fixed(w);
    pthread_mutex_lock(&s->mu);
    for (;;) {
        struct smtp_job *j = TAILQ_FIRST(&s->todo);
        if (!j) {
            if (s->stopping)
                break;
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        TAILQ_REMOVE(&s->todo, j, link);
        s->busy++;
        pthread_mutex_unlock(&s->mu);
        smtp_run(w, j);
        pthread_mutex_lock(&s->mu);
        s->busy--;
        TAILQ_INSERT_TAIL(&s->done, j, link);
        /* The wake-up (a write to an eventfd) outside the lock, so neither
         * the loop nor another worker waits on the mutex behind a syscall.
         * The async handle outlives the workers (closed after the join). */
        pthread_mutex_unlock(&s->mu);
        uv_async_send(&s->async);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    /* QUIT happens here, off the loop; the loop joins this thread at
     * shutdown, so a server that never answers it holds us 2 s at most. */
    curl_easy_setopt(w->easy, CURLOPT_SERVER_RESPONSE_TIMEOUT, 2L);
    curl_easy_cleanup(w->easy);
    w->easy = NULL;
    return NULL;
}

/* --- loop side ---------------------------------------------------------- */

static void smtp_really_free(struct wb_smtp *s);

/* An idle sender must not keep uv_run alive; one with work must. */
static void smtp_ref(struct wb_smtp *s)
{
    if (s->inflight)
        uv_ref((uv_handle_t *)&s->async);
    else
        uv_unref((uv_handle_t *)&s->async);
}

/* A buffer for the next message: a pooled one, else a new one. */
static struct wb_buf smtp_take_buf(struct wb_smtp *s)
{
    struct wb_buf b;
    wb_buf_init(&b);
    if (s->npool) {
        b = s->pool[--s->npool];
        s->pooled_bytes -= b.cap;
    }
    return b;
}

static void smtp_give_buf(struct wb_smtp *s, struct wb_buf *b)
{
    if (b->data && s->npool < SMTP_POOL && s->pooled_bytes + b->cap <= SMTP_POOL_BYTES) {
        s->pooled_bytes += b->cap;
        s->pool[s->npool++] = *b;
    } else {
        wb_buf_free(b);
    }
    wb_buf_init(b);
}

/* A finished job's message buffer goes back to the pool. */
static void smtp_recycle(struct wb_smtp *s, struct smtp_job *j)
{
    struct wb_buf b = {.data = j->h.raw, .len = 0, .cap = j->raw_cap};
    j->h.raw = NULL;
    smtp_give_buf(s, &b);
}

static void smtp_on_async(uv_async_t *a)
{
    struct wb_smtp *s = a->data;
    struct smtp_jobs got = TAILQ_HEAD_INITIALIZER(got);
    pthread_mutex_lock(&s->mu);
    TAILQ_CONCAT(&got, &s->done, link);
    pthread_mutex_unlock(&s->mu);
    s->dispatching++;
    struct smtp_job *j;
    while ((j = TAILQ_FIRST(&got))) {
        TAILQ_REMOVE(&got, j, link);
        s->inflight--;
        j->r.more = !TAILQ_EMPTY(&got);
        j->r.bearer = j->bearer ? j->bearer : "";
        if (!s->free_pending) {
            j->done(&j->r, j->ud);
            smtp_recycle(s, j);
        }
        smtp_job_free(j);
    }
    s->dispatching--;
    if (s->free_pending)
        smtp_really_free(s);
    else
        smtp_ref(s);
}

static char *smtp_dup_or_null(const char *s)
{
    return s && *s ? wb_xstrdup(s) : NULL;
}

static int smtp_start_workers(struct wb_smtp *s)
{
    for (s->nw = 0; s->nw < s->o.connections; s->nw++) {
        struct smtp_worker *w = &s->w[s->nw];
        w->s = s;
        w->easy = curl_easy_init();
        if (!w->easy || pthread_create(&w->tid, NULL, smtp_worker_main, w) != 0) {
            if (w->easy)
                curl_easy_cleanup(w->easy);
            return -1;
        }
    }
    return 0;
}

struct wb_smtp *wb_smtp_new(uv_loop_t *loop, const struct wb_smtp_opts *o)
{
    if (!o->url || !*o->url || o->connections < 1)
        return NULL;
    struct wb_smtp *s = wb_xcalloc(1, sizeof *s);
    s->o = *o;
    s->o.url = wb_xstrdup(o->url);
    s->o.username = smtp_dup_or_null(o->username);
    s->o.password = smtp_dup_or_null(o->password);
    TAILQ_INIT(&s->todo);
    TAILQ_INIT(&s->done);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->w = wb_xcalloc((size_t)o->connections, sizeof *s->w);
    uv_async_init(loop, &s->async, smtp_on_async);
    s->async.data = s;
    smtp_ref(s);
    if (smtp_start_workers(s) < 0) {
        wb_error("smtp: cannot start %d worker thread(s)", o->connections);
        smtp_really_free(s);
        return NULL;
    }
    return s;
}

/* "<addr>" in one exact malloc. */
static char *smtp_angle(const char *addr)
{
    size_t n = strlen(addr);
    char *o = wb_xmalloc(n + 3);
    o[0] = '<';
    memcpy(o + 1, addr, n);
    memcpy(o + 1 + n, ">", 2);
    return o;
}

int wb_smtp_send(struct wb_smtp *s, const char *envelope_from, const char *rcpt,
                 const struct wb_mail *m, const char *bearer, wb_smtp_done_fn done, void *ud)
{
    char err[128];
    if (!wb_mime_addr_ok(envelope_from) || !wb_mime_addr_ok(rcpt)) {
        wb_warn("smtp: not sending %s: bad envelope address", m->message_id);
        return -1;
    }
    struct smtp_job *j = wb_xcalloc(1, sizeof *j);
    j->done = done;
    j->ud = ud;
    j->from = smtp_angle(envelope_from);
    j->rcpt.data = smtp_angle(rcpt);
    j->bearer = bearer && *bearer ? wb_xstrdup(bearer) : NULL;
    struct wb_buf b = smtp_take_buf(s);
    if (s->free_pending || wb_mail_check_build(m, &b, err, sizeof err) < 0) {
        if (!s->free_pending)
            wb_warn("smtp: not sending %s: %s", m->message_id, err);
        smtp_give_buf(s, &b);
        smtp_job_free(j);
        return -1;
    }
    j->h.raw = b.data;
    j->h.raw_len = b.len;
    j->raw_cap = b.cap;
    s->inflight++;
    smtp_ref(s);
    pthread_mutex_lock(&s->mu);
    TAILQ_INSERT_TAIL(&s->todo, j, link);
    pthread_mutex_unlock(&s->mu);
    /* Signalled after the unlock: a worker woken under the lock only
     * blocked again on the mutex (a futex wake and two more switches per
     * message in the profile). No wake-up is lost: a worker looks at the
     * queue under the mutex before it waits. */
    pthread_cond_signal(&s->cv);
    return 0;
}

size_t wb_smtp_inflight(struct wb_smtp *s)
{
    return s->inflight;
}

static void smtp_on_closed(uv_handle_t *h)
{
    struct wb_smtp *s = h->data;
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->w);
    while (s->npool)
        wb_buf_free(&s->pool[--s->npool]);
    free((char *)s->o.url);
    free((char *)s->o.username);
    free((char *)s->o.password);
    free(s);
}

static void smtp_drop_all(struct smtp_jobs *q)
{
    struct smtp_job *j;
    while ((j = TAILQ_FIRST(q))) {
        TAILQ_REMOVE(q, j, link);
        smtp_job_free(j);
    }
}

/* Queued jobs go first, so no worker takes another; a transfer on the wire
 * stops at its next progress call. */
static void smtp_really_free(struct wb_smtp *s)
{
    pthread_mutex_lock(&s->mu);
    smtp_drop_all(&s->todo);
    s->stopping = true;
    atomic_store(&s->abort, s->busy ? 1 : 0);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->nw; i++)
        pthread_join(s->w[i].tid, NULL);
    smtp_drop_all(&s->done);
    uv_close((uv_handle_t *)&s->async, smtp_on_closed);
}

void wb_smtp_free(struct wb_smtp *s)
{
    if (!s)
        return;
    if (s->dispatching)
        s->free_pending = 1; /* called from a done callback: finish that first */
    else
        smtp_really_free(s);
}
