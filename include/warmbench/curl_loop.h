/* One libcurl multi handle driven by a libuv loop (curl's multi-uv.c
 * pattern), shared by IMAP and HTTP(S) transfers (webhooks, tokens); SMTP runs
 * in worker threads (smtp.h says why).
 *
 * Ownership: wb_curl_loop uses CURLOPT_PRIVATE and CURLOPT_CLOSESOCKETFUNCTION
 * (and its data) of every easy handle it runs; callers keep their own state
 * in `ud`, never in CURLOPT_PRIVATE. */
#ifndef WB_CURL_LOOP_H
#define WB_CURL_LOOP_H
#include <stddef.h>
#include <curl/curl.h>
#include <uv.h>

struct wb_curl_loop;

/* Called exactly once per added transfer, always from the loop (never from
 * inside wb_curl_loop_add). The easy handle has already been removed from
 * the multi, so `done` may re-add it, reuse it or curl_easy_cleanup it. */
typedef void (*wb_curl_done_fn)(CURL *easy, CURLcode rc, void *ud);

/* NULL when curl or libuv refuse to set up. */
struct wb_curl_loop *wb_curl_loop_new(uv_loop_t *loop);

/* The multi handle, for curl_multi_setopt (e.g. CURLMOPT_MAX_HOST_CONNECTIONS).
 * Do not add or remove easy handles on it directly. */
CURLM *wb_curl_loop_multi(struct wb_curl_loop *cl);

/* Starts the transfer. 0 on success; -1 (and `done` is never called) when
 * curl refuses the handle or the loop is being freed. */
int wb_curl_loop_add(struct wb_curl_loop *cl, CURL *easy, wb_curl_done_fn done, void *ud);

/* Stops a transfer started with wb_curl_loop_add without calling its
 * `done`; the easy handle is the caller's again. -1 when it is not ours. */
int wb_curl_loop_cancel(struct wb_curl_loop *cl, CURL *easy);

/* Transfers added and not yet completed. */
size_t wb_curl_loop_active(const struct wb_curl_loop *cl);

/* Aborts every transfer (each `done` runs with CURLE_ABORTED_BY_CALLBACK,
 * before this returns), cleans up the multi handle and starts closing the
 * uv handles. The memory is released from the loop's close callbacks, so
 * the caller must run the loop (uv_run) once more before uv_loop_close.
 * Safe to call from inside a `done` callback: then it takes effect as soon
 * as that callback returns. */
void wb_curl_loop_free(struct wb_curl_loop *cl);

#endif
