/* The SMTP sender: one worker thread per configured connection, in the way
 * Postfix runs one delivery agent per connection. Each worker owns one curl
 * easy handle, and with it one SMTP connection that it reuses from message
 * to message; it takes the next built message from a FIFO shared with the
 * loop and hands the outcome back through a uv_async.
 *
 * Why threads and not the loop's curl multi: libcurl (7.88 and later) runs
 * SMTP's DONE phase in blocking mode. After the body it waits for the reply
 * to the final dot with a blocking poll, even under the multi interface, and
 * QUIT likewise. Remote providers answer the dot in 0.2 to 1 s, which on
 * the loop froze tracking, /healthz and the database for that long, one
 * message at a time. A worker may block; the loop never does.
 *
 * Workers touch nothing but their easy handle, the job they took and the
 * two queues (under one mutex): no PostgreSQL, no loop state, no logging.
 * Every `done` runs on the loop. */
#ifndef WB_SMTP_H
#define WB_SMTP_H
#include <stddef.h>
#include <uv.h>
#include "warmbench/config.h"
#include "warmbench/mime.h"

struct wb_smtp;

struct wb_smtp_opts {
    const char *url;        /* smtp://host:port or smtps://host:port */
    const char *username;   /* NULL or "": no AUTH */
    const char *password;
    enum wb_tls tls;        /* required → CURLUSESSL_ALL, try → _TRY, off → _NONE */
    int connections;        /* worker threads, one connection each, >= 1 */
    int timeout_s;          /* whole transaction, connect included */
    enum wb_auth auth;      /* password, or SASL XOAUTH2 / OAUTHBEARER with each job's token */
};

enum wb_smtp_outcome {
    WB_SMTP_SENT,       /* 2xx after the data */
    WB_SMTP_TEMPFAIL,   /* 4xx, no connection, TLS or login failure, timeout: retry later */
    WB_SMTP_PERMFAIL,   /* 5xx on the transaction: the message failed */
    WB_SMTP_HARDBOUNCE, /* 5xx with enhanced status 5.1.x on the recipient: suppress it */
};

#define WB_SMTP_REPLY_MAX 512

struct wb_smtp_result {
    enum wb_smtp_outcome outcome;
    int code;                       /* last SMTP reply code, 0 when none */
    char reply[WB_SMTP_REPLY_MAX];  /* the reply line that decided, or curl's error */
    double seconds;                 /* transfer time, queueing excluded */
    int uncertain;                  /* TEMPFAIL after DATA with no final reply: the
                                       server may have accepted it (at most once:
                                       record `unknown` rather than resend) */
    bool auth_refused;              /* the server refused our login (AUTH): with OAuth,
                                       the token is renewed and the message waits */
    const char *bearer;             /* the token it was sent with ("" none); valid
                                       only during the done callback */
    bool more;                      /* more results follow in this same wake-up: a
                                       caller may batch its work until the last */
};

typedef void (*wb_smtp_done_fn)(const struct wb_smtp_result *r, void *ud);

/* How a curl transfer logs in, for the SMTP workers, the IMAP poller and
 * test-send alike: nothing without a username; SASL XOAUTH2 or
 * OAUTHBEARER (RFC 7628) with bearer for a token auth; else the password. */
void wb_curl_login(CURL *e, enum wb_auth auth, const char *username, const char *password,
                   const char *bearer);
/* smtp.tls as CURLOPT_USE_SSL: required, try, off. */
long wb_smtp_use_ssl(enum wb_tls t);

/* Starts `connections` workers. NULL when opts are unusable (no url,
 * connections < 1) or a thread cannot be made. Copies opts. */
struct wb_smtp *wb_smtp_new(uv_loop_t *loop, const struct wb_smtp_opts *o);

/* Builds the message now (m and the strings need not outlive the call) and
 * queues it for the next free worker. bearer: the OAuth access token to log
 * in with (copied; NULL or "" for password auth). `done` runs once, from the loop,
 * never from inside this call. -1 (done never runs; the reason is logged)
 * when the message can't be built: a bad address, id or URL. */
int wb_smtp_send(struct wb_smtp *s, const char *envelope_from, const char *rcpt,
                 const struct wb_mail *m, const char *bearer, wb_smtp_done_fn done, void *ud);

/* Messages handed over whose `done` has not run: queued plus on the wire. */
size_t wb_smtp_inflight(struct wb_smtp *s);

/* Stops everything WITHOUT calling any pending `done`: a transfer on the
 * wire is aborted within a second (its outcome is unknown, the caller's to
 * record), the workers say QUIT and end, and the memory goes once the loop
 * has closed the async handle (run the loop once more). For a clean stop,
 * send nothing more and wait until wb_smtp_inflight() is 0 first. Safe to
 * call from inside a `done`. */
void wb_smtp_free(struct wb_smtp *s);

#endif
