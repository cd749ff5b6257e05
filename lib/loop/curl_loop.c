/* libcurl multi on libuv: one uv_poll per socket curl asks us to watch, one
 * non-repeating uv_timer for curl's timeout, and completion dispatch after
 * every curl_multi_socket_action (curl's docs/examples/multi-uv.c). */
#include "warmbench/curl_loop.h"
#include "warmbench/log.h"
#include "warmbench/util.h"
#include <stdbool.h>
#include <stdlib.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

/* One socket of curl's: watched from CURL_POLL_IN/OUT to CURL_POLL_REMOVE,
 * then kept, stopped ("parked"), while curl keeps the connection for the
 * next transfer, and closed when curl closes the socket. Setting up and
 * tearing down a poll handle for every SMTP message cost a twentieth of
 * the daemon's time. */
struct wb_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct wb_curl_loop *cl;
    bool parked;
    LIST_ENTRY(wb_sock) link;
};
LIST_HEAD(wb_socks, wb_sock);

/* One running transfer, found through CURLOPT_PRIVATE. */
struct wb_xfer {
    CURL *easy;
    wb_curl_done_fn done;
    void *ud;
    LIST_ENTRY(wb_xfer) link;
};
LIST_HEAD(wb_xfers, wb_xfer);

struct wb_curl_loop {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    struct wb_socks socks;
    struct wb_xfers xfers;
    size_t active;
    int open_handles;   /* uv handles not yet closed; memory goes at 0 */
    int dispatching;    /* depth of done callbacks on the stack */
    int free_pending;   /* wb_curl_loop_free called from a done callback */
    int closing;
};

/* Idle connections curl keeps for reuse (IMAP, the ATS). */
#define WB_CURL_CACHE_BASE 16L

static void cl_free_now(struct wb_curl_loop *cl);

static void cl_handle_closed(uv_handle_t *h)
{
    struct wb_curl_loop *cl = h->data;
    if (h->type == UV_POLL)
        free((struct wb_sock *)h); /* the poll is wb_sock's first member */
    if (--cl->open_handles == 0 && cl->closing)
        free(cl);
}

static void cl_sock_close(struct wb_sock *s)
{
    LIST_REMOVE(s, link);
    uv_close((uv_handle_t *)&s->poll, cl_handle_closed);
}

static void cl_xfer_unlink(struct wb_curl_loop *cl, struct wb_xfer *x)
{
    LIST_REMOVE(x, link);
    cl->active--;
}

/* Removes the easy from the multi before `done`, so done owns it again. */
static void cl_finish(struct wb_curl_loop *cl, struct wb_xfer *x, CURLcode rc)
{
    cl_xfer_unlink(cl, x);
    curl_multi_remove_handle(cl->multi, x->easy);
    cl->dispatching++;
    x->done(x->easy, rc, x->ud);
    cl->dispatching--;
    free(x);
}

/* Before a running transfer is removed: curl's SMTP "done" step would
 * otherwise send the end-of-data dot (and wait for its reply), handing the
 * server a truncated message. A shut-down socket makes that write fail; curl
 * closes such a connection anyway, and still owns the descriptor. */
static void cl_sever(CURL *easy)
{
    curl_socket_t fd = CURL_SOCKET_BAD;
    if (curl_easy_getinfo(easy, CURLINFO_ACTIVESOCKET, &fd) == CURLE_OK && fd != CURL_SOCKET_BAD)
        shutdown(fd, SHUT_RDWR);
}

static void cl_check_done(struct wb_curl_loop *cl)
{
    CURLMsg *m;
    int left;
    while (!cl->closing && (m = curl_multi_info_read(cl->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct wb_xfer *x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        cl_finish(cl, x, m->data.result);
    }
    if (cl->free_pending && !cl->dispatching)
        cl_free_now(cl);
}

static void cl_act(struct wb_curl_loop *cl, curl_socket_t fd, int flags)
{
    int running;
    curl_multi_socket_action(cl->multi, fd, flags, &running);
    cl_check_done(cl);
}

static void cl_on_poll(uv_poll_t *p, int status, int events)
{
    struct wb_sock *s = (struct wb_sock *)p;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    cl_act(s->cl, s->fd, flags);
}

static void cl_on_timer(uv_timer_t *t)
{
    cl_act(t->data, CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_TIMERFUNCTION: -1 stops; 0 runs on the next loop turn, because
 * curl forbids calling socket_action from inside its own callback. */
static int cl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct wb_curl_loop *cl = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&cl->timer);
    else
        uv_timer_start(&cl->timer, cl_on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static struct wb_sock *cl_sock_open(struct wb_curl_loop *cl, curl_socket_t fd)
{
    struct wb_sock *s = wb_xcalloc(1, sizeof *s);
    if (uv_poll_init_socket(cl->loop, &s->poll, fd) != 0) {
        free(s);
        return NULL;
    }
    s->poll.data = cl;
    s->fd = fd;
    s->cl = cl;
    LIST_INSERT_HEAD(&cl->socks, s, link);
    cl->open_handles++;
    curl_multi_assign(cl->multi, fd, s);
    return s;
}

static struct wb_sock *cl_parked_sock(struct wb_curl_loop *cl, curl_socket_t fd)
{
    struct wb_sock *s;
    LIST_FOREACH(s, &cl->socks, link)
        if (s->fd == fd && s->parked)
            return s;
    return NULL;
}

/* CURLMOPT_SOCKETFUNCTION: polling stops on REMOVE, so libuv never watches
 * a socket curl is not using; the handle waits for the socket's next
 * transfer. */
static int cl_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct wb_curl_loop *cl = userp;
    struct wb_sock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(cl->multi, fd, NULL);
            uv_poll_stop(&s->poll);
            s->parked = true;
        }
        return 0;
    }
    if (!s && (s = cl_parked_sock(cl, fd))) {
        s->parked = false;
        curl_multi_assign(cl->multi, fd, s);
    }
    if (!s && !(s = cl_sock_open(cl, fd)))
        return -1;
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    return uv_poll_start(&s->poll, events, cl_on_poll) == 0 ? 0 : -1;
}

/* CURLOPT_CLOSESOCKETFUNCTION: the poll handle goes first, so libuv never
 * watches a closed (or reused) descriptor. */
static int cl_close_cb(void *clientp, curl_socket_t fd)
{
    struct wb_curl_loop *cl = clientp;
    struct wb_sock *s;
    LIST_FOREACH(s, &cl->socks, link)
        if (s->fd == fd) {
            cl_sock_close(s);
            break;
        }
    return close(fd);
}

struct wb_curl_loop *wb_curl_loop_new(uv_loop_t *loop)
{
    struct wb_curl_loop *cl = wb_xcalloc(1, sizeof *cl);
    cl->loop = loop;
    LIST_INIT(&cl->socks);
    LIST_INIT(&cl->xfers);
    cl->multi = curl_multi_init();
    if (!cl->multi) {
        free(cl);
        return NULL;
    }
    uv_timer_init(loop, &cl->timer);
    cl->timer.data = cl;
    cl->open_handles = 1;
    curl_multi_setopt(cl->multi, CURLMOPT_SOCKETFUNCTION, cl_socket_cb);
    curl_multi_setopt(cl->multi, CURLMOPT_SOCKETDATA, cl);
    curl_multi_setopt(cl->multi, CURLMOPT_TIMERFUNCTION, cl_timer_cb);
    curl_multi_setopt(cl->multi, CURLMOPT_TIMERDATA, cl);
    curl_multi_setopt(cl->multi, CURLMOPT_MAXCONNECTS, WB_CURL_CACHE_BASE);
    return cl;
}

CURLM *wb_curl_loop_multi(struct wb_curl_loop *cl)
{
    return cl->multi;
}

int wb_curl_loop_add(struct wb_curl_loop *cl, CURL *easy, wb_curl_done_fn done, void *ud)
{
    if (cl->closing || cl->free_pending)
        return -1;
    struct wb_xfer *x = wb_xcalloc(1, sizeof *x);
    x->easy = easy;
    x->done = done;
    x->ud = ud;
    curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, cl_close_cb);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, cl);
    CURLMcode mc = curl_multi_add_handle(cl->multi, easy);
    if (mc != CURLM_OK) {
        wb_warn("curl: cannot add transfer: %s", curl_multi_strerror(mc));
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        free(x);
        return -1;
    }
    LIST_INSERT_HEAD(&cl->xfers, x, link);
    cl->active++;
    return 0;
}

int wb_curl_loop_cancel(struct wb_curl_loop *cl, CURL *easy)
{
    struct wb_xfer *x;
    LIST_FOREACH(x, &cl->xfers, link)
        if (x->easy == easy)
            break;
    if (!x)
        return -1;
    cl_xfer_unlink(cl, x);
    cl_sever(easy);
    curl_multi_remove_handle(cl->multi, easy);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
    free(x);
    return 0;
}

size_t wb_curl_loop_active(const struct wb_curl_loop *cl)
{
    return cl->active;
}

static void cl_free_now(struct wb_curl_loop *cl)
{
    cl->free_pending = 0;
    cl->closing = 1;
    struct wb_xfer *x;
    LIST_FOREACH(x, &cl->xfers, link)
        cl_sever(x->easy);
    while ((x = LIST_FIRST(&cl->xfers)))
        cl_finish(cl, x, CURLE_ABORTED_BY_CALLBACK);
    /* curl reports CURL_POLL_REMOVE for its cached connections here. */
    curl_multi_cleanup(cl->multi);
    cl->multi = NULL;
    struct wb_sock *s;
    while ((s = LIST_FIRST(&cl->socks)))
        cl_sock_close(s);
    uv_close((uv_handle_t *)&cl->timer, cl_handle_closed);
}

void wb_curl_loop_free(struct wb_curl_loop *cl)
{
    if (!cl || cl->closing)
        return;
    if (cl->dispatching)
        cl->free_pending = 1;
    else
        cl_free_now(cl);
}
