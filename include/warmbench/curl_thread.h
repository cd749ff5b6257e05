/* One curl easy handle's transfers run in a worker thread with
 * curl_easy_perform, completion delivered on a libuv loop: the contract of
 * curl_loop.h for protocols whose libcurl code blocks even under the multi
 * interface. libcurl 7.88 waits with a blocking poll in IMAP's DONE phase
 * (imap_done waits for the tagged OK after a FETCH) as in SMTP's (the
 * reply to the final dot): on the loop that froze everything else for a
 * server round trip. A worker may block; the loop never does.
 *
 * One worker thread per wb_curl_thread and one transfer at a time: the
 * caller keeps its easy handle between transfers, and with it the
 * connections curl_easy_perform caches in that handle (an IMAP session
 * stays open from one transfer to the next).
 *
 * Threads: while a transfer runs, the worker is the only user of the easy
 * handle, and the handle's callbacks (write, read, debug...) run in the
 * worker: they must touch nothing the loop touches meanwhile, and must not
 * log or call libuv. The loop may use the handle again once `done` has run
 * or wb_curl_thread_cancel has returned.
 *
 * Ownership: wb_curl_thread sets CURLOPT_NOSIGNAL, CURLOPT_NOPROGRESS,
 * CURLOPT_XFERINFOFUNCTION and CURLOPT_XFERINFODATA of every easy handle it
 * runs (the progress callback is how a transfer is stopped); callers must
 * not set them. Knows nothing of what the transfers are for. */
#ifndef WB_CURL_THREAD_H
#define WB_CURL_THREAD_H
#include <curl/curl.h>
#include <uv.h>
#include "warmbench/curl_loop.h" /* wb_curl_done_fn: the same completion */

struct wb_curl_thread;

/* Starts the worker thread. NULL when a thread or the uv_async handle
 * cannot be made. Keeps no loop alive while idle. */
struct wb_curl_thread *wb_curl_thread_new(uv_loop_t *loop);

/* Hands `easy` (its options already set) to the worker. 0 on success:
 * `done` then runs exactly once, from the loop, never from inside this
 * call, unless the transfer is cancelled. -1 (`done` never runs) when a
 * transfer is already in flight or the thread is being freed. */
int wb_curl_thread_add(struct wb_curl_thread *t, CURL *easy, wb_curl_done_fn done, void *ud);

/* Stops the transfer of `easy` without calling its `done`; the easy
 * handle is the caller's again when this returns. A transfer on the wire
 * is aborted at curl's next progress call, and that comes at least once a
 * second even in a blocking wait, so this can block the caller (the loop)
 * up to about a second: meant for stop and free, not for the running
 * daemon. An aborted transfer's connection is closed, not kept. -1 when
 * `easy` is not in flight here. */
int wb_curl_thread_cancel(struct wb_curl_thread *t, CURL *easy);

/* Aborts a transfer in flight (its `done` runs before this returns, with
 * CURLE_ABORTED_BY_CALLBACK unless it had finished), ends the worker
 * (waiting for it, up to about a second) and starts closing the uv_async
 * handle: the memory goes from its close callback, so run the loop once
 * more before uv_loop_close. The easy handles stay the caller's. Safe to
 * call from inside a `done`: it then takes effect when that `done`
 * returns. NULL is ignored. */
void wb_curl_thread_free(struct wb_curl_thread *t);

#endif
