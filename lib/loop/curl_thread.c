/* curl easy handle in a worker thread (see curl_thread.h): smtp.c's pattern
 * cut down to one worker and one transfer. The loop hands the handle over
 * under a mutex and wakes the worker with a condition variable; the worker
 * runs curl_easy_perform, stores the result under the mutex and wakes the
 * loop with uv_async_send, the one libuv call that is thread-safe. */
#include "warmbench/curl_thread.h"
#include "warmbench/util.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

/* Where the one transfer is. The worker owns the easy handle from
 * CT_RUNNING until it sets CT_DONE; in every other state the loop does. */
enum ct_state {
    CT_IDLE,    /* no transfer */
    CT_QUEUED,  /* added, the worker has not taken it yet */
    CT_RUNNING, /* in curl_easy_perform */
    CT_DONE,    /* finished, `done` not yet run */
};

struct wb_curl_thread {
    uv_async_t async;
    pthread_t tid;
    pthread_mutex_t mu;     /* guards state, easy, rc, stopping */
    pthread_cond_t work;    /* loop → worker: a transfer, or stopping */
    pthread_cond_t idle;    /* worker → loop: it let go of the handle */
    enum ct_state state;
    CURL *easy;
    CURLcode rc;
    bool stopping;
    /* Read by the progress callback in the worker without the mutex: curl
     * calls it in the middle of a transfer, where waiting for the loop's
     * lock is not wanted. */
    atomic_int abort;
    /* loop only */
    wb_curl_done_fn done;
    void *ud;
    bool busy;              /* added, `done` not run, not cancelled */
    int dispatching;        /* inside a `done` */
    bool free_pending;      /* wb_curl_thread_free called from a `done` */
    bool closing;
};

/* CURLOPT_XFERINFOFUNCTION: non-zero makes curl abort the transfer with
 * CURLE_ABORTED_BY_CALLBACK. curl calls it at least once a second in every
 * state, the blocking waits of the pingpong protocols' DONE phase included
 * (Curl_pp_statemach), so it is the one way to stop a worker that waits on
 * a silent server. */
static int ct_on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a, (void)b, (void)c, (void)d;
    struct wb_curl_thread *t = ud;
    return atomic_load(&t->abort) ? 1 : 0;
}

/* ---- worker ------------------------------------------------------------ */

/* Touches nothing but the easy handle it took and the fields under the
 * mutex: no loop state, no logging. */
static void *ct_main(void *arg)
{
    struct wb_curl_thread *t = arg;
    pthread_mutex_lock(&t->mu);
    for (;;) {
        while (t->state != CT_QUEUED && !t->stopping)
            pthread_cond_wait(&t->work, &t->mu);
        if (t->state != CT_QUEUED)
            break; /* stopping with nothing to run */
        t->state = CT_RUNNING;
        CURL *e = t->easy;
        pthread_mutex_unlock(&t->mu);
        CURLcode rc = curl_easy_perform(e);
        pthread_mutex_lock(&t->mu);
        t->rc = rc;
        t->state = CT_DONE;
        pthread_cond_broadcast(&t->idle);
        uv_async_send(&t->async);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

/* ---- loop side --------------------------------------------------------- */

static void ct_free_now(struct wb_curl_thread *t);

/* An idle thread must not keep uv_run alive; one with a transfer must, or
 * the loop could end before its `done`. */
static void ct_ref(struct wb_curl_thread *t)
{
    if (t->busy)
        uv_ref((uv_handle_t *)&t->async);
    else
        uv_unref((uv_handle_t *)&t->async);
}

/* Runs the finished transfer's `done`, everything reset first so that
 * `done` may add the next transfer at once. */
static void ct_dispatch(struct wb_curl_thread *t, CURL *easy, CURLcode rc)
{
    wb_curl_done_fn done = t->done;
    void *ud = t->ud;
    t->done = NULL;
    t->ud = NULL;
    t->busy = false;
    t->dispatching++;
    done(easy, rc, ud);
    t->dispatching--;
}

/* Takes the finished transfer off the shared state (the worker is idle
 * from then on); false when there is none. */
static bool ct_take(struct wb_curl_thread *t, CURL **easy, CURLcode *rc)
{
    pthread_mutex_lock(&t->mu);
    bool got = t->state == CT_DONE;
    if (got) {
        *easy = t->easy;
        *rc = t->rc;
        t->state = CT_IDLE;
        t->easy = NULL;
    }
    pthread_mutex_unlock(&t->mu);
    return got;
}

/* uv_async_send calls coalesce, and a cancelled transfer's may arrive
 * after the cancel: the state, not the wake-up, says whether there is a
 * result. */
static void ct_on_async(uv_async_t *a)
{
    struct wb_curl_thread *t = a->data;
    CURL *easy;
    CURLcode rc;
    if (ct_take(t, &easy, &rc))
        ct_dispatch(t, easy, rc);
    if (t->free_pending)
        ct_free_now(t);
    else
        ct_ref(t); /* `done` may have added the next transfer */
}

static void ct_destroy(struct wb_curl_thread *t)
{
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->work);
    pthread_cond_destroy(&t->idle);
    free(t);
}

static void ct_on_closed(uv_handle_t *h)
{
    ct_destroy(h->data);
}

/* Wakes the worker to end, then waits for it. */
static void ct_stop_worker(struct wb_curl_thread *t)
{
    pthread_mutex_lock(&t->mu);
    t->stopping = true;
    pthread_cond_signal(&t->work);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->tid, NULL);
}

/* The thread starts first: until a transfer is added it never touches the
 * async handle, so a failed uv_async_init only has to stop it. */
struct wb_curl_thread *wb_curl_thread_new(uv_loop_t *loop)
{
    struct wb_curl_thread *t = wb_xcalloc(1, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->work, NULL);
    pthread_cond_init(&t->idle, NULL);
    atomic_init(&t->abort, 0);
    if (pthread_create(&t->tid, NULL, ct_main, t) != 0) {
        ct_destroy(t);
        return NULL;
    }
    if (uv_async_init(loop, &t->async, ct_on_async) != 0) {
        ct_stop_worker(t);
        ct_destroy(t);
        return NULL;
    }
    t->async.data = t;
    ct_ref(t);
    return t;
}

/* The options are set here, on the loop, before the handle changes hands
 * under the mutex, so the worker sees them. */
static int ct_set_options(struct wb_curl_thread *t, CURL *easy)
{
    int rc = CURLE_OK;
    /* curl's rule for threads: no signals (SIGALRM for the synchronous
     * resolver's timeouts) in a multi-threaded program. */
    rc |= (int)curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    /* Progress calls on, ours: the way to abort (ct_on_progress). */
    rc |= (int)curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
    rc |= (int)curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, ct_on_progress);
    rc |= (int)curl_easy_setopt(easy, CURLOPT_XFERINFODATA, t);
    return rc == CURLE_OK ? 0 : -1;
}

int wb_curl_thread_add(struct wb_curl_thread *t, CURL *easy, wb_curl_done_fn done, void *ud)
{
    if (t->closing || t->free_pending || t->busy || !easy || ct_set_options(t, easy) < 0)
        return -1;
    t->done = done;
    t->ud = ud;
    t->busy = true;
    /* Not busy means the worker is out of curl_easy_perform: no progress
     * call can read this now. */
    atomic_store(&t->abort, 0);
    pthread_mutex_lock(&t->mu);
    t->easy = easy;
    t->rc = CURLE_OK;
    t->state = CT_QUEUED;
    pthread_cond_signal(&t->work);
    pthread_mutex_unlock(&t->mu);
    ct_ref(t);
    return 0;
}

int wb_curl_thread_cancel(struct wb_curl_thread *t, CURL *easy)
{
    pthread_mutex_lock(&t->mu);
    if (t->state == CT_IDLE || t->easy != easy) {
        pthread_mutex_unlock(&t->mu);
        return -1;
    }
    if (t->state == CT_RUNNING) {
        atomic_store(&t->abort, 1);
        while (t->state == CT_RUNNING) /* until the worker lets go of the handle */
            pthread_cond_wait(&t->idle, &t->mu);
    }
    t->state = CT_IDLE; /* a queued transfer is simply never taken */
    t->easy = NULL;
    pthread_mutex_unlock(&t->mu);
    t->done = NULL;
    t->ud = NULL;
    t->busy = false;
    ct_ref(t);
    return 0;
}

/* A queued transfer is finished as aborted without running; a running one
 * is aborted; after the join the worker is gone, so the state is read
 * without racing anyone. */
static void ct_free_now(struct wb_curl_thread *t)
{
    t->free_pending = false;
    t->closing = true;
    pthread_mutex_lock(&t->mu);
    if (t->state == CT_QUEUED) {
        t->state = CT_DONE;
        t->rc = CURLE_ABORTED_BY_CALLBACK;
    } else if (t->state == CT_RUNNING) {
        atomic_store(&t->abort, 1);
    }
    pthread_mutex_unlock(&t->mu);
    ct_stop_worker(t);
    CURL *easy;
    CURLcode rc;
    if (ct_take(t, &easy, &rc))
        ct_dispatch(t, easy, rc); /* `done` cannot add: closing */
    uv_close((uv_handle_t *)&t->async, ct_on_closed);
}

void wb_curl_thread_free(struct wb_curl_thread *t)
{
    if (!t || t->closing)
        return;
    if (t->dispatching)
        t->free_pending = true; /* from a `done`: after it returns */
    else
        ct_free_now(t);
}
