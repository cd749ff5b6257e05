/* Builds one outgoing message for libcurl's SMTP upload (see mime.h). */
#include "warmbench/mime.h"
#include "warmbench/util.h"
#include <ctype.h>
#include <stdbool.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WORD_BYTES 45      /* 60 base64 chars: "=?UTF-8?B?" + 60 + "?=" = 72 <= 75 */
#define RAW_HEADER_MAX 900 /* longer text is folded as encoded-words, below 998 */

char *wb_mime_sanitize(const char *s)
{
    char *o = wb_xstrdup(s ? s : "");
    for (char *p = o; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    return o;
}

/* A C0 control or DEL: what wb_mime_sanitize replaces. */
static int mime_has_control(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 1;
    return 0;
}

/* s itself when it holds nothing to replace (no copy made: most names and
 * subjects), else a sanitised copy to free through *own. */
static const char *mime_clean(const char *s, char **own)
{
    *own = NULL;
    if (s && !mime_has_control(s))
        return s;
    return *own = wb_mime_sanitize(s);
}

static int mime_plain_ascii(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++)
        if (*p < 0x20 || *p > 0x7e)
            return 0;
    return n <= RAW_HEADER_MAX && !strstr(s, "=?");
}

/* Cuts at most WORD_BYTES bytes without splitting a UTF-8 sequence. */
static size_t mime_word_cut(const char *s, size_t len)
{
    if (len <= WORD_BYTES)
        return len;
    size_t n = WORD_BYTES;
    while (n > WORD_BYTES - 3 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return ((unsigned char)s[n] & 0xC0) == 0x80 ? WORD_BYTES : n;
}

static void mime_encoded_words(struct wb_buf *out, const char *s)
{
    size_t len = strlen(s);
    int first = 1;
    while (len || first) {
        size_t n = mime_word_cut(s, len);
        unsigned char b64[4 * (WORD_BYTES / 3) + 1];
        EVP_EncodeBlock(b64, (const unsigned char *)s, (int)n);
        wb_buf_cat(out, first ? "" : "\r\n ", "=?UTF-8?B?", (char *)b64, "?=", (char *)NULL);
        s += n;
        len -= n;
        first = 0;
    }
}

void wb_mime_header_text(struct wb_buf *out, size_t used, const char *s)
{
    char *own;
    const char *clean = mime_clean(s, &own);
    if (mime_plain_ascii(clean) && used + strlen(clean) <= RAW_HEADER_MAX)
        wb_buf_puts(out, clean);
    else
        mime_encoded_words(out, clean);
    free(own);
}

static int mime_atom_phrase(const char *s)
{
    if (!*s || *s == ' ' || s[strlen(s) - 1] == ' ')
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')
              || strchr(" !#$%&'*+-/^_`{|}~", *s)))
            return 0;
    return 1;
}

void wb_mime_phrase(struct wb_buf *out, size_t used, const char *name)
{
    char *own;
    const char *clean = mime_clean(name, &own);
    if (!mime_plain_ascii(clean) || used + strlen(clean) > RAW_HEADER_MAX) {
        mime_encoded_words(out, clean);
    } else if (mime_atom_phrase(clean)) {
        wb_buf_puts(out, clean);
    } else {
        wb_buf_putc(out, '"');
        for (const char *p = clean; *p; p++) {
            if (*p == '"' || *p == '\\')
                wb_buf_putc(out, '\\');
            wb_buf_putc(out, *p);
        }
        wb_buf_putc(out, '"');
    }
    free(own);
}

static char *mime_2digits(char *o, int v)
{
    *o++ = (char)('0' + v / 10 % 10);
    *o++ = (char)('0' + v % 10);
    return o;
}

void wb_mime_date(time_t t, char out[32])
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    gmtime_r(&t, &tm);
    /* Names by hand: strftime's %a and %b follow the locale. Digits by
     * hand too: snprintf showed in the send path's profile. The fields
     * are in range (gmtime_r), so each fits its two (or four) digits. */
    int year = (tm.tm_year + 1900) % 10000;
    if (year < 0) { /* before year 0: as printf writes it */
        snprintf(out, 32, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7],
                 tm.tm_mday, months[tm.tm_mon % 12], year, tm.tm_hour, tm.tm_min, tm.tm_sec);
        return;
    }
    char *o = out;
    memcpy(o, days[tm.tm_wday % 7], 3);
    o += 3;
    *o++ = ',';
    *o++ = ' ';
    o = mime_2digits(o, tm.tm_mday);
    *o++ = ' ';
    memcpy(o, months[tm.tm_mon % 12], 3);
    o += 3;
    *o++ = ' ';
    o = mime_2digits(o, year / 100);
    o = mime_2digits(o, year % 100);
    *o++ = ' ';
    o = mime_2digits(o, tm.tm_hour);
    *o++ = ':';
    o = mime_2digits(o, tm.tm_min);
    *o++ = ':';
    o = mime_2digits(o, tm.tm_sec);
    memcpy(o, " +0000", 7);
}

static int mime_at_break(const char *p)
{
    return *p == '\0' || *p == '\r' || *p == '\n';
}

/* A byte that stands for itself anywhere but at a line's start: printable
 * ASCII but "=", or a space or tab with more of the line after it. */
static inline int mime_qp_plain(const char *p)
{
    unsigned char c = (unsigned char)*p;
    if ((unsigned char)(c - 33) < 94)
        return c != '=';
    return (c == ' ' || c == '\t') && !mime_at_break(p + 1);
}

/* p starts with "From " (byte tests that stop at the first difference, so
 * never past a NUL: a strncmp call per line start showed in the profile). */
static inline int mime_from_(const char *p)
{
    return p[0] == 'F' && p[1] == 'r' && p[2] == 'o' && p[3] == 'm' && p[4] == ' ';
}

/* Worst case of wb_mime_qp for len bytes: every byte escaped (3 bytes),
 * plus a soft break after every 73 output bytes or more. */
static size_t mime_qp_worst(size_t len)
{
    return len * 3 + (len / 20 + 2) * 3;
}

void wb_mime_qp(struct wb_buf *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    /* Written in place: per-byte appends were a visible share of a send. */
    size_t len = strlen(s);
    wb_buf_reserve(out, mime_qp_worst(len));
    char *o = out->data + out->len;
    size_t col = 0;
    for (const char *p = s; *p; p++) {
        /* Mid-line, most bytes are copied as they are while the line has
         * room: one test each. The rest take the full rules below. */
        if (col) {
            while (col < 75 && mime_qp_plain(p)) {
                *o++ = *p++;
                col++;
            }
            if (!*p)
                break;
        }
        if (*p == '\r' || *p == '\n') {
            if (*p == '\r' && p[1] == '\n')
                p++;
            *o++ = '\r';
            *o++ = '\n';
            col = 0;
            continue;
        }
        unsigned char c = (unsigned char)*p;
        int ws = c == ' ' || c == '\t';
        /* A leading "." or "From " is encoded so no relay stuffs or mangles it. */
        int lead = col == 0 && (c == '.' || mime_from_(p));
        int lit = !lead && ((c > 32 && c < 127 && c != '=') || (ws && !mime_at_break(p + 1)));
        size_t w = lit ? 1 : 3;
        if (col + w > 75) {
            memcpy(o, "=\r\n", 3);
            o += 3;
            col = 0;
            lead = c == '.' || mime_from_(p);
            lit = lit && !lead;
            w = lit ? 1 : 3;
        }
        if (lit) {
            *o++ = (char)c;
        } else {
            *o++ = '=';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
        col += w;
    }
    *o = '\0';
    out->len = (size_t)(o - out->data);
}

/* One of <>()[],;:\" (a switch, not strchr: every address byte asks). */
static int mime_addr_special(unsigned char c)
{
    switch (c) {
    case '<': case '>': case '(': case ')': case '[': case ']':
    case ',': case ';': case ':': case '\\': case '"':
        return 1;
    default:
        return 0;
    }
}

int wb_mime_addr_ok(const char *s)
{
    if (!s || !*s)
        return 0;
    /* One pass: the length, the "@"s and every byte. */
    const unsigned char *at = NULL, *p = (const unsigned char *)s;
    for (; *p; p++) {
        if (p - (const unsigned char *)s >= 254)
            return 0; /* longer than 254 */
        if (*p == '@') {
            if (at)
                return 0;
            at = p;
        } else if (*p <= 0x20 || *p >= 0x7f || mime_addr_special(*p)) {
            return 0;
        }
    }
    return at && at != (const unsigned char *)s && at[1];
}

static int mime_url_ok(const char *s)
{
    if (!s || !*s || strlen(s) > RAW_HEADER_MAX)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || *p == '<' || *p == '>')
            return 0;
    return 1;
}

static void mime_mailbox(struct wb_buf *b, const char *field, const char *name, const char *email)
{
    size_t line = b->len;
    wb_buf_cat(b, field, ": ", (char *)NULL);
    if (name && *name) {
        wb_mime_phrase(b, b->len - line, name);
        wb_buf_cat(b, " <", email, ">\r\n", (char *)NULL);
    } else {
        wb_buf_cat(b, email, "\r\n", (char *)NULL);
    }
}

/* Feedback-ID fields are colon-separated identifiers: nothing that could
 * end the header or start another. */
static bool mime_feedback_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > 200)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr(":._-", *s))
            return false;
    return true;
}

static const char *mime_check(const struct wb_mail *m)
{
    if (!wb_mime_addr_ok(m->from_email))
        return "bad From address";
    if (!wb_mime_addr_ok(m->to_email))
        return "bad To address";
    if (m->reply_to && !wb_mime_addr_ok(m->reply_to))
        return "bad Reply-To address";
    if (!wb_mime_addr_ok(m->message_id))
        return "bad Message-ID";
    if (m->in_reply_to && !wb_mime_addr_ok(m->in_reply_to))
        return "bad In-Reply-To id";
    if (m->list_unsubscribe_url && !mime_url_ok(m->list_unsubscribe_url))
        return "bad List-Unsubscribe URL";
    if (m->feedback_id && !mime_feedback_id_ok(m->feedback_id))
        return "bad Feedback-ID";
    if (!m->text && !m->html)
        return "message has neither a text nor an HTML part";
    return NULL;
}

static void mime_headers(struct wb_buf *b, const struct wb_mail *m)
{
    /* Fixed strings appended, not printf'd: vfprintf showed in the profile. */
    char date[32];
    wb_mime_date(m->date, date);
    wb_buf_cat(b, "Date: ", date, "\r\n", (char *)NULL);
    mime_mailbox(b, "From", m->from_name, m->from_email);
    if (m->reply_to)
        mime_mailbox(b, "Reply-To", m->reply_to_name, m->reply_to);
    mime_mailbox(b, "To", m->to_name, m->to_email);
    size_t line = b->len;
    wb_buf_puts(b, "Subject: ");
    wb_mime_header_text(b, b->len - line, m->subject);
    wb_buf_cat(b, "\r\nMessage-ID: <", m->message_id, ">\r\n", (char *)NULL);
    if (m->in_reply_to)
        wb_buf_cat(b, "In-Reply-To: <", m->in_reply_to, ">\r\nReferences: <", m->in_reply_to,
                   ">\r\n", (char *)NULL);
    if (m->list_unsubscribe_url)
        wb_buf_cat(b, "List-Unsubscribe: <", m->list_unsubscribe_url,
                   ">\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", (char *)NULL);
    if (m->feedback_id)
        wb_buf_cat(b, "Feedback-ID: ", m->feedback_id, "\r\n", (char *)NULL);
    wb_buf_puts(b, "MIME-Version: 1.0\r\n");
}

static void mime_part_head(struct wb_buf *b, const char *type)
{
    wb_buf_cat(b, "Content-Type: ", type, "; charset=utf-8\r\n"
               "Content-Transfer-Encoding: quoted-printable\r\n\r\n", (char *)NULL);
}

/* "=_" never occurs in quoted-printable text (a "=" there always starts an
 * escape or a soft break), so this boundary cannot collide with a body; the
 * hash of the Message-ID only tells messages apart. */
static void mime_boundary(const char *message_id, char out[32])
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)message_id; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "=_wb_", 5);
    for (int i = 0; i < 16; i++)
        out[5 + i] = hex[(h >> (60 - 4 * i)) & 15];
    out[21] = '\0';
}

static void mime_multipart(struct wb_buf *b, const struct wb_mail *m)
{
    char bnd[32];
    mime_boundary(m->message_id, bnd);
    wb_buf_cat(b, "Content-Type: multipart/alternative; boundary=\"", bnd, "\"\r\n\r\n--", bnd,
               "\r\n", (char *)NULL);
    mime_part_head(b, "text/plain");
    wb_mime_qp(b, m->text);
    wb_buf_cat(b, "\r\n--", bnd, "\r\n", (char *)NULL);
    mime_part_head(b, "text/html");
    wb_mime_qp(b, m->html);
    wb_buf_cat(b, "\r\n--", bnd, "--\r\n", (char *)NULL);
}

static size_t mime_read_raw(char *buf, size_t size, size_t n, void *ud)
{
    struct wb_mail_handles *h = ud;
    size_t left = h->raw_len - h->raw_off, want = size * n;
    if (want > left)
        want = left;
    memcpy(buf, h->raw + h->raw_off, want);
    h->raw_off += want;
    return want;
}

void wb_mail_build(const struct wb_mail *m, struct wb_buf *b)
{
    /* Room for the worst case at once, so the buffer never moves: headers
     * are short or folded, and each part gets its quoted-printable bound. */
    const char *texts[] = {m->subject, m->from_name, m->to_name, m->reply_to_name};
    size_t head = 2048;
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        head += texts[i] ? strlen(texts[i]) * 2 : 0;
    wb_buf_reserve(b, head + (m->text ? mime_qp_worst(strlen(m->text)) : 0) +
                          (m->html ? mime_qp_worst(strlen(m->html)) : 0));
    mime_headers(b, m);
    if (m->text && m->html) {
        mime_multipart(b, m);
        return;
    }
    mime_part_head(b, m->text ? "text/plain" : "text/html");
    /* curl ends the DATA with CRLF.CRLF itself, adding a CRLF only when needed. */
    wb_mime_qp(b, m->text ? m->text : m->html);
}

int wb_mail_prepare(const struct wb_mail *m, struct wb_mail_handles *h, char *err, size_t errsz)
{
    memset(h, 0, sizeof *h);
    const char *why = mime_check(m);
    if (why) {
        snprintf(err, errsz, "%s", why);
        return -1;
    }
    /* One buffer, one read: curl's MIME API cost a tenth of the daemon's
     * time (a reader state machine, per-part encoders, random boundaries). */
    struct wb_buf b;
    wb_buf_init(&b);
    wb_mail_build(m, &b);
    h->raw_len = b.len;
    /* Back to its size: the worst-case room is not kept while it waits. */
    h->raw = wb_xrealloc(wb_buf_steal(&b), h->raw_len + 1);
    return 0;
}

int wb_mail_check_build(const struct wb_mail *m, struct wb_buf *b, char *err, size_t errsz)
{
    const char *why = mime_check(m);
    if (why) {
        snprintf(err, errsz, "%s", why);
        return -1;
    }
    wb_buf_reset(b);
    wb_mail_build(m, b);
    return 0;
}

void wb_mail_attach(CURL *easy, struct wb_mail_handles *h)
{
    h->raw_off = 0;
    curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(easy, CURLOPT_READFUNCTION, mime_read_raw);
    curl_easy_setopt(easy, CURLOPT_READDATA, h);
    curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)h->raw_len);
}

int wb_mail_setup(CURL *easy, const struct wb_mail *m, struct wb_mail_handles *h,
                  char *err, size_t errsz)
{
    if (wb_mail_prepare(m, h, err, errsz) < 0)
        return -1;
    wb_mail_attach(easy, h);
    return 0;
}

void wb_mail_handles_free(struct wb_mail_handles *h)
{
    free(h->raw);
    memset(h, 0, sizeof *h);
}
