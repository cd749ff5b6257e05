/* One outgoing message, built for libcurl's SMTP upload (SPEC.md "Mail that
 * goes out"): the whole message in one buffer that curl reads through
 * CURLOPT_READFUNCTION. Text and HTML: multipart/alternative; one part only:
 * that part alone. Bodies are quoted-printable, utf-8, with CRLF line
 * breaks.
 *
 * Headers never carry CR or LF from data: every control character in a
 * display name or subject becomes a space (a removed line break would glue
 * two words together; a kept one would let data write its own headers),
 * and addresses, ids and URLs holding any are refused. */
#ifndef WB_MIME_H
#define WB_MIME_H
#include <stddef.h>
#include <time.h>
#include <curl/curl.h>
#include "warmbench/buf.h"

struct wb_mail {
    const char *from_name;    /* may be NULL or "" */
    const char *from_email;
    const char *reply_to;     /* address or NULL */
    const char *reply_to_name; /* may be NULL or "" */
    const char *to_name;      /* may be NULL or "" */
    const char *to_email;
    const char *subject;      /* UTF-8 */
    const char *text;         /* UTF-8 or NULL */
    const char *html;         /* UTF-8 or NULL; at least one of text, html */
    const char *message_id;   /* without <> */
    const char *in_reply_to;  /* without <>, or NULL; also sent as References */
    const char *list_unsubscribe_url; /* or NULL */
    const char *feedback_id;  /* Feedback-ID (Gmail's feedback loop), or NULL */
    time_t date;
};

/* What the easy handle reads from until its transfer ends. */
struct wb_mail_handles {
    char *raw;                  /* the whole message, CRLF line breaks */
    size_t raw_len, raw_off;
};

/* Builds the message and sets CURLOPT_UPLOAD, CURLOPT_READFUNCTION/READDATA
 * and CURLOPT_INFILESIZE_LARGE on easy. h must stay at the same address
 * until the transfer ends, then go to wb_mail_handles_free. 0 on success; -1
 * with a reason in err (h left empty) for a bad address, id or URL, or
 * neither part. */
int wb_mail_setup(CURL *easy, const struct wb_mail *m, struct wb_mail_handles *h,
                  char *err, size_t errsz);
/* wb_mail_setup in two halves: checks and builds the message into h (no
 * easy handle needed yet), then points easy at it. */
int wb_mail_prepare(const struct wb_mail *m, struct wb_mail_handles *h, char *err, size_t errsz);
void wb_mail_attach(CURL *easy, struct wb_mail_handles *h);
/* wb_mail_prepare's checks, then the message built into b (emptied first):
 * for a caller that reuses its buffers from message to message, so the
 * worst-case room is allocated once, not per message. -1 with a reason in
 * err, b untouched, as wb_mail_prepare. */
int wb_mail_check_build(const struct wb_mail *m, struct wb_buf *b, char *err, size_t errsz);
/* Appends the whole message (headers, blank line, body) to b; m must have
 * passed wb_mail_setup's checks. */
void wb_mail_build(const struct wb_mail *m, struct wb_buf *b);
void wb_mail_handles_free(struct wb_mail_handles *h);

/* --- pure helpers, exposed for tests --- */

/* s with every C0 control and DEL replaced by a space; malloc'd. */
char *wb_mime_sanitize(const char *s);
/* Appends header text s: as is when it is short printable ASCII, else as
 * RFC 2047 UTF-8 B encoded-words of at most 75 chars, each on its own
 * folded line. `used`: chars already on the current line. s is sanitised. */
void wb_mime_header_text(struct wb_buf *out, size_t used, const char *s);
/* Appends a display name as an atom phrase, a quoted-string (when it holds
 * specials) or encoded-words (non-ASCII). */
void wb_mime_phrase(struct wb_buf *out, size_t used, const char *name);
/* RFC 5322 date in UTC: "Thu, 01 Jan 1970 00:00:00 +0000". */
void wb_mime_date(time_t t, char out[32]);
/* Appends s quoted-printable, line breaks (LF, CR or CRLF) as CRLF, lines of
 * at most 76 chars; a leading "." or "From " is encoded. */
void wb_mime_qp(struct wb_buf *out, const char *s);
/* 1 when s can stand in a header as an address or message id: one "@",
 * printable ASCII without spaces or <>()[],;:\" and at most 254 chars. */
int wb_mime_addr_ok(const char *s);

#endif
