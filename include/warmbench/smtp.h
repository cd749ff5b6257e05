/* The SMTP sender: messages go out over libcurl on the shared curl_loop,
 * at most `connections` SMTP transactions at once (the rest wait here in
 * FIFO order), over connections curl keeps open and reuses between
 * messages.
 *
 * Known limit of libcurl 7.88: after the body, curl's SMTP "done" step waits
 * for the final reply to the end-of-data dot synchronously (and QUIT on
 * closing a connection), so a slow server's final answer stalls the loop for
 * that long. Point `url` at a nearby relay (SPEC's smtp://127.0.0.1:2525),
 * which answers in milliseconds. */
#ifndef WB_SMTP_H
#define WB_SMTP_H
#include <stddef.h>
#include "warmbench/config.h"
#include "warmbench/curl_loop.h"
#include "warmbench/mime.h"

struct wb_smtp;

struct wb_smtp_opts {
    const char *url;        /* smtp://host:port or smtps://host:port */
    const char *username;   /* NULL or "": no AUTH */
    const char *password;
    enum wb_tls tls;        /* required → CURLUSESSL_ALL, try → _TRY, off → _NONE */
    int connections;        /* concurrent SMTP connections, >= 1 */
    int timeout_s;          /* whole transaction, connect included */
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
};

typedef void (*wb_smtp_done_fn)(const struct wb_smtp_result *r, void *ud);

/* NULL when opts are unusable (no url, connections < 1). Copies opts. */
struct wb_smtp *wb_smtp_new(struct wb_curl_loop *cl, const struct wb_smtp_opts *o);

/* Builds the message now (m and the strings need not outlive the call) and
 * sends it when a connection slot is free. `done` runs once, from the loop,
 * never from inside this call. -1 (done never runs; the reason is logged)
 * when the message can't be built: a bad address, id or URL. */
int wb_smtp_send(struct wb_smtp *s, const char *envelope_from, const char *rcpt,
                 const struct wb_mail *m, wb_smtp_done_fn done, void *ud);

/* Messages handed over and not yet done: queued plus on the wire. */
size_t wb_smtp_inflight(struct wb_smtp *s);

/* Stops everything at once WITHOUT calling any pending `done`: a message
 * that was on the wire has an unknown outcome, which is the caller's to
 * record. For a clean stop, send nothing more and wait until
 * wb_smtp_inflight() is 0 first. */
void wb_smtp_free(struct wb_smtp *s);

#endif
