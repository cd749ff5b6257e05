/* Checks lib/loop/curl_thread.c against a slow HTTP server of its own (a thread
 * that holds each answer for the milliseconds its path names, /slow/MS),
 * while a 10 ms uv timer measures that the loop keeps ticking:
 *   1. a transfer held 1 s: `done` runs once, from the loop (not from
 *      inside add), with the body; a second add meanwhile is refused;
 *   2. a transfer held 5 s, cancelled after 300 ms: cancel returns within
 *      ~1 s, `done` never runs, a second cancel is refused;
 *   3. the same easy handle again, answered at once: it is the caller's;
 *   4. a transfer held 5 s, then wb_curl_thread_free: its `done` runs with
 *      CURLE_ABORTED_BY_CALLBACK before free returns;
 *   5. uv_run then ends by itself (the idle async handle keeps nothing
 *      alive) and uv_loop_close succeeds.
 * Prints one line per check and "OK" at the end; exit 0 when all pass.
 * Run by tests/integration/test_slow.py. */
#include "warmbench/curl_thread.h"
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_GAP_MS 250  /* the stall looked for is a whole held answer */
#define BODY "hello from the slow server\n"

/* ---- the slow server ---------------------------------------------------- */

struct srv {
    int fd, port;
    pthread_t tid;
};

/* Holds the answer ms milliseconds, or until the client goes away. */
static void srv_answer(int c)
{
    char req[2048] = "";
    size_t n = 0;
    while (n < sizeof req - 1 && !strstr(req, "\r\n\r\n")) {
        ssize_t r = recv(c, req + n, sizeof req - 1 - n, 0);
        if (r <= 0)
            return;
        n += (size_t)r;
        req[n] = '\0';
    }
    int ms = 0;
    sscanf(req, "GET /slow/%d", &ms);
    struct pollfd p = {.fd = c, .events = POLLIN};
    if (ms > 0 && poll(&p, 1, ms) != 0)
        return; /* the client closed (cancelled) */
    char out[256];
    int len = snprintf(out, sizeof out,
                       "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                       strlen(BODY), BODY);
    send(c, out, (size_t)len, MSG_NOSIGNAL);
}

static void *srv_main(void *arg)
{
    struct srv *s = arg;
    int c;
    while ((c = accept(s->fd, NULL, NULL)) >= 0) {
        srv_answer(c);
        close(c);
    }
    return NULL;
}

static int srv_start(struct srv *s)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(s->fd, 8) < 0 ||
        getsockname(s->fd, (struct sockaddr *)&a, &len) < 0)
        return -1;
    s->port = ntohs(a.sin_port);
    return pthread_create(&s->tid, NULL, srv_main, s) == 0 ? 0 : -1;
}

/* shutdown wakes the blocked accept (Linux). */
static void srv_stop(struct srv *s)
{
    shutdown(s->fd, SHUT_RDWR);
    pthread_join(s->tid, NULL);
    close(s->fd);
}

/* ---- the checks --------------------------------------------------------- */

struct drv {
    uv_loop_t loop;
    struct wb_curl_thread *t;
    CURL *easy;
    struct srv srv;
    uv_timer_t tick, step, guard;
    uint64_t last_tick, max_gap, t0;
    bool in_add, in_free;
    int step_no, dones, failures;
    const char *label;      /* of the transfer in flight */
    CURLcode rc;
    char body[256];
    size_t body_len;        /* written by the worker during a transfer */
};

static void check(struct drv *d, bool ok, const char *what)
{
    printf("%s: %s\n", ok ? "ok" : "FAIL", what);
    fflush(stdout);
    if (!ok)
        d->failures++;
}

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

/* Runs in the worker: touches only the body buffer, which the loop reads
 * after `done`. */
static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct drv *d = ud;
    size_t len = size * n;
    if (d->body_len + len >= sizeof d->body)
        return 0;
    memcpy(d->body + d->body_len, p, len);
    d->body_len += len;
    return len;
}

static void on_tick(uv_timer_t *h)
{
    struct drv *d = h->data;
    uint64_t now = now_ms();
    if (d->last_tick && now - d->last_tick > d->max_gap)
        d->max_gap = now - d->last_tick;
    d->last_tick = now;
}

static void on_done(CURL *easy, CURLcode rc, void *ud);

static int start(struct drv *d, int hold_ms, const char *label)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/slow/%d", d->srv.port, hold_ms);
    curl_easy_reset(d->easy);
    curl_easy_setopt(d->easy, CURLOPT_URL, url);
    curl_easy_setopt(d->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(d->easy, CURLOPT_WRITEDATA, d);
    curl_easy_setopt(d->easy, CURLOPT_TIMEOUT, 20L);
    d->body_len = 0;
    d->dones = 0;
    d->label = label;
    d->t0 = now_ms();
    d->in_add = true;
    int rc = wb_curl_thread_add(d->t, d->easy, on_done, d);
    d->in_add = false;
    return rc;
}

static void next_step(struct drv *d);

static void on_step(uv_timer_t *h)
{
    next_step(h->data);
}

static void after(struct drv *d, uint64_t ms)
{
    uv_timer_start(&d->step, on_step, ms, 0);
}

static void on_done(CURL *easy, CURLcode rc, void *ud)
{
    struct drv *d = ud;
    d->dones++;
    d->rc = rc;
    check(d, !d->in_add, "done does not run from inside add");
    check(d, easy == d->easy, "done gets the easy handle");
    if (d->in_free) /* step 4: reported by step_free */
        return;
    d->body[d->body_len] = '\0';
    char what[160];
    snprintf(what, sizeof what, "%s: transfer OK (%s) after %llu ms with the body", d->label,
             curl_easy_strerror(rc), (unsigned long long)(now_ms() - d->t0));
    check(d, rc == CURLE_OK && !strcmp(d->body, BODY), what);
    after(d, 0);
}

static void step_slow(struct drv *d)
{
    d->max_gap = 0;
    check(d, start(d, 1000, "step 1") == 0, "step 1: a transfer held 1 s is added");
    check(d, wb_curl_thread_add(d->t, d->easy, on_done, d) < 0, "a second add is refused");
}

static void step_cancel_later(struct drv *d)
{
    char what[96];
    snprintf(what, sizeof what, "step 1: the loop kept ticking (largest gap %llu ms)",
             (unsigned long long)d->max_gap);
    check(d, d->max_gap < MAX_GAP_MS, what);
    check(d, start(d, 5000, "step 2") == 0, "step 2: a transfer held 5 s is added");
    after(d, 300);
}

static void step_cancel(struct drv *d)
{
    uint64_t t0 = now_ms();
    int rc = wb_curl_thread_cancel(d->t, d->easy);
    uint64_t ms = now_ms() - t0;
    char what[96];
    snprintf(what, sizeof what, "step 2: cancel returns 0 within 1.5 s (%llu ms)",
             (unsigned long long)ms);
    check(d, rc == 0 && ms < 1500, what);
    check(d, wb_curl_thread_cancel(d->t, d->easy) < 0, "step 2: a second cancel is refused");
    after(d, 1500); /* a `done` that should not come would come now */
}

static void step_reuse(struct drv *d)
{
    check(d, d->dones == 0, "step 2: done never ran for the cancelled transfer");
    check(d, start(d, 0, "step 3") == 0, "step 3: the same handle is added again");
}

static void step_free_later(struct drv *d)
{
    check(d, start(d, 5000, "step 4") == 0, "step 4: a transfer held 5 s is added");
    after(d, 300);
}

static void step_free(struct drv *d)
{
    uint64_t t0 = now_ms();
    d->in_free = true;
    wb_curl_thread_free(d->t);
    d->in_free = false;
    d->t = NULL;
    char what[128];
    snprintf(what, sizeof what, "step 4: free ran done once (%s) within 1.5 s (%llu ms)",
             curl_easy_strerror(d->rc), (unsigned long long)(now_ms() - t0));
    check(d, d->dones == 1 && d->rc == CURLE_ABORTED_BY_CALLBACK && now_ms() - t0 < 1500, what);
    /* Nothing else holds the loop: uv_run must end by itself. */
    uv_close((uv_handle_t *)&d->tick, NULL);
    uv_close((uv_handle_t *)&d->step, NULL);
    uv_close((uv_handle_t *)&d->guard, NULL);
}

static void next_step(struct drv *d)
{
    static void (*const steps[])(struct drv *) = {step_slow,  step_cancel_later, step_cancel,
                                                  step_reuse, step_free_later,   step_free};
    if (d->step_no < (int)(sizeof steps / sizeof *steps))
        steps[d->step_no++](d);
}

static void on_guard(uv_timer_t *h)
{
    struct drv *d = h->data;
    check(d, false, "the checks finished within 60 s");
    exit(1);
}

static void init_timer(struct drv *d, uv_timer_t *t)
{
    uv_timer_init(&d->loop, t);
    t->data = d;
}

int main(void)
{
    struct drv d = {0};
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (srv_start(&d.srv) < 0 || uv_loop_init(&d.loop) != 0 || !(d.easy = curl_easy_init()) ||
        !(d.t = wb_curl_thread_new(&d.loop))) {
        fprintf(stderr, "drv_curl_thread: cannot set up\n");
        return 1;
    }
    init_timer(&d, &d.tick);
    init_timer(&d, &d.step);
    init_timer(&d, &d.guard);
    uv_timer_start(&d.tick, on_tick, 10, 10);
    uv_timer_start(&d.guard, on_guard, 60000, 0);
    after(&d, 0);
    uv_run(&d.loop, UV_RUN_DEFAULT);
    check(&d, d.step_no == 6, "every step ran");
    check(&d, uv_loop_close(&d.loop) == 0, "uv_run ended by itself and the loop closes");
    curl_easy_cleanup(d.easy);
    srv_stop(&d.srv);
    curl_global_cleanup();
    printf("%s\n", d.failures ? "FAILED" : "OK");
    return d.failures ? 1 : 0;
}
