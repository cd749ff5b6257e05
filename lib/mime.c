/* Builds one outgoing message for libcurl's SMTP upload (see mime.h). */
#include "warmbench/mime.h"
#include "warmbench/util.h"
#include <openssl/evp.h>
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

static int plain_ascii(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++)
        if (*p < 0x20 || *p > 0x7e)
            return 0;
    return n <= RAW_HEADER_MAX && !strstr(s, "=?");
}

/* Cuts at most WORD_BYTES bytes without splitting a UTF-8 sequence. */
static size_t word_cut(const char *s, size_t len)
{
    if (len <= WORD_BYTES)
        return len;
    size_t n = WORD_BYTES;
    while (n > WORD_BYTES - 3 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return ((unsigned char)s[n] & 0xC0) == 0x80 ? WORD_BYTES : n;
}

static void encoded_words(struct wb_buf *out, const char *s)
{
    size_t len = strlen(s);
    int first = 1;
    while (len || first) {
        size_t n = word_cut(s, len);
        unsigned char b64[4 * (WORD_BYTES / 3) + 1];
        EVP_EncodeBlock(b64, (const unsigned char *)s, (int)n);
        wb_buf_printf(out, "%s=?UTF-8?B?%s?=", first ? "" : "\r\n ", (char *)b64);
        s += n;
        len -= n;
        first = 0;
    }
}

void wb_mime_header_text(struct wb_buf *out, size_t used, const char *s)
{
    char *clean = wb_mime_sanitize(s);
    if (plain_ascii(clean) && used + strlen(clean) <= RAW_HEADER_MAX)
        wb_buf_puts(out, clean);
    else
        encoded_words(out, clean);
    free(clean);
}

static int atom_phrase(const char *s)
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
    char *clean = wb_mime_sanitize(name);
    if (!plain_ascii(clean) || used + strlen(clean) > RAW_HEADER_MAX) {
        encoded_words(out, clean);
    } else if (atom_phrase(clean)) {
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
    free(clean);
}

void wb_mime_date(time_t t, char out[32])
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    gmtime_r(&t, &tm);
    /* Names by hand: strftime's %a and %b follow the locale. */
    snprintf(out, 32, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7],
             tm.tm_mday, months[tm.tm_mon % 12], (tm.tm_year + 1900) % 10000, tm.tm_hour,
             tm.tm_min, tm.tm_sec);
}

static int at_break(const char *p)
{
    return *p == '\0' || *p == '\r' || *p == '\n';
}

void wb_mime_qp(struct wb_buf *out, const char *s)
{
    size_t col = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '\r' || *p == '\n') {
            if (*p == '\r' && p[1] == '\n')
                p++;
            wb_buf_puts(out, "\r\n");
            col = 0;
            continue;
        }
        unsigned char c = (unsigned char)*p;
        int ws = c == ' ' || c == '\t';
        /* A leading "." or "From " is encoded so no relay stuffs or mangles it. */
        int lead = col == 0 && (c == '.' || !strncmp(p, "From ", 5));
        int lit = !lead && ((c > 32 && c < 127 && c != '=') || (ws && !at_break(p + 1)));
        size_t w = lit ? 1 : 3;
        if (col + w > 75) {
            wb_buf_puts(out, "=\r\n");
            col = 0;
            lead = c == '.' || !strncmp(p, "From ", 5);
            lit = lit && !lead;
            w = lit ? 1 : 3;
        }
        if (lit)
            wb_buf_putc(out, (char)c);
        else
            wb_buf_printf(out, "=%02X", c);
        col += w;
    }
}

int wb_mime_addr_ok(const char *s)
{
    if (!s || !*s || strlen(s) > 254)
        return 0;
    const char *at = strchr(s, '@');
    if (!at || at == s || !at[1] || strchr(at + 1, '@'))
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || strchr("<>()[],;:\\\"", *p))
            return 0;
    return 1;
}

static int url_ok(const char *s)
{
    if (!s || !*s || strlen(s) > RAW_HEADER_MAX)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || *p == '<' || *p == '>')
            return 0;
    return 1;
}

static void add(struct curl_slist **l, struct wb_buf *b)
{
    *l = curl_slist_append(*l, b->data);
    if (!*l)
        abort(); /* as wb_xmalloc: no safe way on without memory */
    wb_buf_reset(b);
}

static void mailbox(struct wb_buf *b, const char *field, const char *name, const char *email)
{
    wb_buf_printf(b, "%s: ", field);
    if (name && *name) {
        wb_mime_phrase(b, b->len, name);
        wb_buf_printf(b, " <%s>", email);
    } else {
        wb_buf_puts(b, email);
    }
}

static const char *check(const struct wb_mail *m)
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
    if (m->list_unsubscribe_url && !url_ok(m->list_unsubscribe_url))
        return "bad List-Unsubscribe URL";
    if (!m->text && !m->html)
        return "message has neither a text nor an HTML part";
    return NULL;
}

static struct curl_slist *headers(const struct wb_mail *m)
{
    struct curl_slist *l = NULL;
    struct wb_buf b;
    char date[32];
    wb_buf_init(&b);
    wb_mime_date(m->date, date);
    wb_buf_printf(&b, "Date: %s", date);
    add(&l, &b);
    mailbox(&b, "From", m->from_name, m->from_email);
    add(&l, &b);
    if (m->reply_to) {
        wb_buf_printf(&b, "Reply-To: %s", m->reply_to);
        add(&l, &b);
    }
    mailbox(&b, "To", m->to_name, m->to_email);
    add(&l, &b);
    wb_buf_puts(&b, "Subject: ");
    wb_mime_header_text(&b, b.len, m->subject);
    add(&l, &b);
    wb_buf_printf(&b, "Message-ID: <%s>", m->message_id);
    add(&l, &b);
    if (m->in_reply_to) {
        wb_buf_printf(&b, "In-Reply-To: <%s>", m->in_reply_to);
        add(&l, &b);
        wb_buf_printf(&b, "References: <%s>", m->in_reply_to);
        add(&l, &b);
    }
    if (m->list_unsubscribe_url) {
        wb_buf_printf(&b, "List-Unsubscribe: <%s>", m->list_unsubscribe_url);
        add(&l, &b);
        wb_buf_puts(&b, "List-Unsubscribe-Post: List-Unsubscribe=One-Click");
        add(&l, &b);
    }
    wb_buf_free(&b);
    return l;
}

/* Bodies go out with CRLF line breaks, as RFC 5322 requires of text. */
static char *crlf(const char *s)
{
    struct wb_buf b;
    wb_buf_init(&b);
    wb_buf_reserve(&b, strlen(s) + 16);
    for (; *s; s++) {
        if (*s == '\r' || *s == '\n') {
            if (*s == '\r' && s[1] == '\n')
                s++;
            wb_buf_puts(&b, "\r\n");
        } else {
            wb_buf_putc(&b, *s);
        }
    }
    return b.data ? wb_buf_steal(&b) : wb_xstrdup("");
}

static int add_part(curl_mime *mime, const char *body, const char *type)
{
    curl_mimepart *part = curl_mime_addpart(mime);
    char *norm = crlf(body);
    int bad = !part || curl_mime_data(part, norm, strlen(norm)) != CURLE_OK
        || curl_mime_type(part, type) != CURLE_OK
        || curl_mime_encoder(part, "quoted-printable") != CURLE_OK;
    free(norm);
    return bad ? -1 : 0;
}

static size_t read_raw(char *buf, size_t size, size_t n, void *ud)
{
    struct wb_mail_handles *h = ud;
    size_t left = h->raw_len - h->raw_off, want = size * n;
    if (want > left)
        want = left;
    memcpy(buf, h->raw + h->raw_off, want);
    h->raw_off += want;
    return want;
}

static void single_part(CURL *easy, const struct wb_mail *m, struct wb_mail_handles *h)
{
    struct wb_buf b;
    wb_buf_init(&b);
    for (struct curl_slist *l = h->headers; l; l = l->next)
        wb_buf_printf(&b, "%s\r\n", l->data);
    wb_buf_printf(&b, "MIME-Version: 1.0\r\nContent-Type: %s; charset=utf-8\r\n"
                      "Content-Transfer-Encoding: quoted-printable\r\n\r\n",
                  m->text ? "text/plain" : "text/html");
    /* curl ends the DATA with CRLF.CRLF itself, adding a CRLF only when needed. */
    wb_mime_qp(&b, m->text ? m->text : m->html);
    h->raw_len = b.len;
    h->raw = wb_buf_steal(&b);
    curl_easy_setopt(easy, CURLOPT_READFUNCTION, read_raw);
    curl_easy_setopt(easy, CURLOPT_READDATA, h);
    curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)h->raw_len);
}

int wb_mail_setup(CURL *easy, const struct wb_mail *m, struct wb_mail_handles *h,
                  char *err, size_t errsz)
{
    memset(h, 0, sizeof *h);
    const char *why = check(m);
    if (why) {
        snprintf(err, errsz, "%s", why);
        return -1;
    }
    h->headers = headers(m);
    curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
    if (!m->text || !m->html) {
        single_part(easy, m, h);
        return 0;
    }
    /* Our Content-Type on the root replaces curl's multipart/mixed; curl
     * appends the boundary and MIME-Version. */
    struct curl_slist *l = curl_slist_append(h->headers, "Content-Type: multipart/alternative");
    if (!l)
        abort(); /* as wb_xmalloc */
    h->headers = l;
    h->mime = curl_mime_init(easy);
    if (!h->mime || add_part(h->mime, m->text, "text/plain; charset=utf-8") < 0
        || add_part(h->mime, m->html, "text/html; charset=utf-8") < 0) {
        snprintf(err, errsz, "curl could not build the MIME parts");
        wb_mail_handles_free(h);
        return -1;
    }
    curl_easy_setopt(easy, CURLOPT_MIMEPOST, h->mime);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, h->headers);
    return 0;
}

void wb_mail_handles_free(struct wb_mail_handles *h)
{
    curl_mime_free(h->mime);
    curl_slist_free_all(h->headers);
    free(h->raw);
    memset(h, 0, sizeof *h);
}
