/* Pins the bytes of what goes out: wb_mime_qp against the per-byte
 * encoder it replaced (kept below as the reference), wb_mail_build and
 * wb_render against output saved from the code before the send path's CPU
 * work (commit 01253f0), and the small helpers that work used (wb_buf_cat,
 * wb_buf_put_*, wb_buf_insert, wb_buf_dup, the link id memo). Any change to
 * a byte of a sent message fails here first. */
#include <check.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "warmbench/buf.h"
#include "warmbench/config.h"
#include "warmbench/mime.h"
#include "warmbench/render.h"
#include "warmbench/tokens.h"

/* The fixture: a configuration whose step 1 has a text and an HTML part with
 * the cases the renderer treats apart (escaping, links, the notice for a
 * legitimate_interest candidate, "</BODY>" in capitals twice, a pixel). */
static const char PIN_CFG[] =
    "{\n"
    "  \"http\": {\"listen\": \"127.0.0.1:8025\", \"public_url\": \"https://go.example.com\"},\n"
    "  \"secret_file\": \"secret.key\",\n"
    "  \"smtp\": {\"url\": \"smtp://127.0.0.1:2525\", \"tls\": \"off\"},\n"
    "  \"bounce_domain\": \"bounces.example.com\",\n"
    "  \"retention_days\": 400, \"sequences_dir\": \"sequences\", \"templates_dir\": \"templates\",\n"
    "  \"senders\": {\"ana\": {\"from\": \"Ana \\\"A\\\" Ruiz <ana@example.com>\", "
    "\"reply_to\": \"Ana R <ana.r@example.com>\"}}\n"
    "}\n";
static const char PIN_SEQ[] =
    "{\n"
    "  \"id\": \"pin\",\n"
    "  \"sender\": \"ana\",\n"
    "  \"window\": {\"days\": [\"mon\"], \"start\": \"09:00\", \"end\": \"17:00\", "
    "\"timezone\": \"UTC\"},\n"
    "  \"links\": {\"apply\": \"https://example.com/apply?a=1&b=2\", \"blog\": \"https://example.com/b\"},\n"
    "  \"steps\": [\n"
    "    {\"after\": \"0d\", \"subject\": \"{{first_name|Hi}}, r\\u00e9sum\\u00e9 = {{company}}\", "
    "\"text\": \"p.txt\", \"html\": \"p.html\"}\n"
    "  ],\n"
    "  \"stop_on\": [\"reply\"],\n"
    "  \"handoff_on\": []\n"
    "}\n";
static const char PIN_TXT[] =
    ".dot\nFrom here\ntrailing space \n= {{first_name}} {{last_name}} {{title}}\n"
    "{{links.apply}} {{links.blog}} {{attrs.n}}\n{{unsubscribe_url}}";
static const char PIN_HTML[] =
    "<p>Hi {{first_name|there}} &amp; {{company}}</p>\n<a href=\"{{links.apply}}\">a</a>\n"
    "<p>{{title}}</p></BODY>\n</body>\n";

static void pin_put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        abort();
}

/* Writes the fixture into a fresh temp folder and loads it. */
static struct wb_config *pin_config(char dir[64])
{
    strcpy(dir, "/tmp/wb-pin-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    char p[128];
    snprintf(p, sizeof p, "%s/sequences", dir);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/templates", dir);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/warmbench.json", dir);
    pin_put(p, PIN_CFG);
    snprintf(p, sizeof p, "%s/secret.key", dir);
    pin_put(p, "TOPSECRET-0123456789-0123456789abcdef");
    chmod(p, 0600);
    snprintf(p, sizeof p, "%s/sequences/pin.json", dir);
    pin_put(p, PIN_SEQ);
    snprintf(p, sizeof p, "%s/templates/p.txt", dir);
    pin_put(p, PIN_TXT);
    snprintf(p, sizeof p, "%s/templates/p.html", dir);
    pin_put(p, PIN_HTML);
    snprintf(p, sizeof p, "%s/warmbench.json", dir);
    struct wb_diags d;
    wb_diags_init(&d);
    struct wb_config *cfg = wb_config_load(p, &d);
    wb_diags_print(&d, stderr);
    wb_diags_free(&d);
    return cfg;
}

static void pin_claimed(struct wb_claimed *c, int legit)
{
    memset(c, 0, sizeof *c);
    c->id = 4242;
    c->step = 1;
    c->sequence = strdup("pin");
    c->message_id = strdup("wb.4242.1@example.com");
    c->candidate_id = 77;
    c->email = strdup("zoe@example.net");
    c->first_name = strdup("Zo\xc3\xab & <Co>");
    c->last_name = strdup("O'Brien");
    c->title = strdup("\"Sr\" Engineer");
    c->company = strdup("ACME");
    c->location = strdup("Berlin");
    c->attrs = json_pack("{s:i}", "n", 42);
    c->consent = strdup(legit ? "legitimate_interest" : "opt_in");
    c->source = strdup("linkedin");
}

static void pin_rm(const char *dir)
{
    const char *files[] = {"warmbench.json", "secret.key", "sequences/pin.json",
                           "templates/p.txt", "templates/p.html", "sequences", "templates", ""};
    char p[128];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        remove(p);
    }
}

/* Saved from 01253f0's wb_render and wb_mail_build for the fixture above. */
static const char PIN_SUBJECT0[] =
    "Zo\xc3""\xab"" & <Co>, r\xc3""\xa9""sum\xc3""\xa9"" = ACME";
static const char PIN_TEXT0[] =
    ".dot\n"
    "From here\n"
    "trailing space \n"
    "= Zo\xc3""\xab"" & <Co> O'Brien \"Sr\" Engineer\n"
    "https://go.example.com/c/BQAAAAAAABCSmj8VdCzQcAtrSxKxQ_irAuudi5Fd_YLm https://go.exa"
    "mple.com/c/BQAAAAAAABCSy_F1JJiRGAU9Rb0qPbYqcIvHVAbKAX6F 42\n"
    "https://go.example.com/u/AwAAAAAAABCSL33uhekgduq-0IYR0yrr_g";
static const char PIN_HTML0[] =
    "<p>Hi Zo\xc3""\xab"" &amp; &lt;Co&gt; &amp; ACME</p>\n"
    "<a href=\"https://go.example.com/c/BQAAAAAAABCSmj8VdCzQcAtrSxKxQ_irAuudi5Fd_YLm\">a<"
    "/a>\n"
    "<p>&quot;Sr&quot; Engineer</p><img src=\"https://go.example.com/o/AQAAAAAAABCSyOZnU1"
    "7gu1dfn82kH4BUFQ.gif\" width=\"1\" height=\"1\" alt=\"\" style=\"display:none\"></BO"
    "DY>\n"
    "</body>\n";
static const char PIN_SUBJECT1[] =
    "Zo\xc3""\xab"" & <Co>, r\xc3""\xa9""sum\xc3""\xa9"" = ACME";
static const char PIN_TEXT1[] =
    ".dot\n"
    "From here\n"
    "trailing space \n"
    "= Zo\xc3""\xab"" & <Co> O'Brien \"Sr\" Engineer\n"
    "https://go.example.com/c/BQAAAAAAABCSmj8VdCzQcAtrSxKxQ_irAuudi5Fd_YLm https://go.exa"
    "mple.com/c/BQAAAAAAABCSy_F1JJiRGAU9Rb0qPbYqcIvHVAbKAX6F 42\n"
    "https://go.example.com/u/AwAAAAAAABCSL33uhekgduq-0IYR0yrr_g\n"
    "\n"
    "--\n"
    "Why you are getting this email: Ana \"A\" Ruiz found your\n"
    "professional profile (source: linkedin) and keeps\n"
    "your name, contact details and work history (ACME) to\n"
    "tell you about roles that may suit you. We do this under legitimate interest\n"
    "(GDPR Art. 6(1)(f)); we never sell your data. We keep it for\n"
    "400 days after our last contact with you.\n"
    "You may ask us at ana@example.com for a copy of what we hold, to correct it or\n"
    "to erase it, and you may complain to a data protection supervisory authority.\n"
    "To object and hear nothing more from us: https://go.example.com/u/AwAAAAAAABCSL33uhe"
    "kgduq-0IYR0yrr_g\n";
static const char PIN_HTML1[] =
    "<p>Hi Zo\xc3""\xab"" &amp; &lt;Co&gt; &amp; ACME</p>\n"
    "<a href=\"https://go.example.com/c/BQAAAAAAABCSmj8VdCzQcAtrSxKxQ_irAuudi5Fd_YLm\">a<"
    "/a>\n"
    "<p>&quot;Sr&quot; Engineer</p><hr><p style=\"font-size:12px;color:#666\">Why you are"
    " getting this email:\n"
    "Ana &quot;A&quot; Ruiz found your professional profile (source:\n"
    "linkedin) and keeps your name, contact details\n"
    "and work history (ACME) to tell you about roles that\n"
    "may suit you. We do this under legitimate interest (GDPR Art. 6(1)(f)); we\n"
    "never sell your data. We keep it for\n"
    "400 days after our last contact with you.\n"
    "You may ask us at <a href=\"mailto:ana@example.com\">ana@example.com</a> for a\n"
    "copy of what we hold, to correct it or to erase it, and you may complain to a\n"
    "data protection supervisory authority.\n"
    "<a href=\"https://go.example.com/u/AwAAAAAAABCSL33uhekgduq-0IYR0yrr_g\">Object and h"
    "ear nothing more from us</a>.</p>\n"
    "<img src=\"https://go.example.com/o/AQAAAAAAABCSyOZnU17gu1dfn82kH4BUFQ.gif\" width=\""
    "1\" height=\"1\" alt=\"\" style=\"display:none\"></BODY>\n"
    "</body>\n";
static const char PIN_ENVELOPE[] =
    "b+aqaaaaaaaaabbetscb2ljuee6xy35mkghlabxquu@bounces.example.com";
static const char PIN_MAIL[] =
    "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
    "From: \"Ana \\\"A\\\" Ruiz\" <ana@example.com>\r\n"
    "Reply-To: Ana R <ana.r@example.com>\r\n"
    "To: =?UTF-8?B?Wm/DqyAmIDxDbz4gTydCcmllbg==?= <zoe@example.net>\r\n"
    "Subject: =?UTF-8?B?Wm/DqyAmIDxDbz4sIHLDqXN1bcOpID0gQUNNRQ==?=\r\n"
    "Message-ID: <wb.4242.1@example.com>\r\n"
    "List-Unsubscribe: <https://go.example.com/u/AwAAAAAAABCSL33uhekgduq-0IYR0yrr_g>\r\n"
    "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    "Feedback-ID: 1:pin:ana:warmbench\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/alternative; boundary=\"=_wb_5f804149c92f26c0\"\r\n"
    "\r\n"
    "--=_wb_5f804149c92f26c0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "=2Edot\r\n"
    "=46rom here\r\n"
    "trailing space=20\r\n"
    "=3D Zo=C3=AB & <Co> O'Brien \"Sr\" Engineer\r\n"
    "https://go.example.com/c/BQAAAAAAABCSmj8VdCzQcAtrSxKxQ_irAuudi5Fd_YLm https=\r\n"
    "://go.example.com/c/BQAAAAAAABCSy_F1JJiRGAU9Rb0qPbYqcIvHVAbKAX6F 42\r\n"
    "https://go.example.com/u/AwAAAAAAABCSL33uhekgduq-0IYR0yrr_g\r\n"
    "\r\n"
    "--\r\n"
    "Why you are getting this email: Ana \"A\" Ruiz found your\r\n"
    "professional profile (source: linkedin) and keeps\r\n"
    "your name, contact details and work history (ACME) to\r\n"
    "tell you about roles that may suit you. We do this under legitimate interes=\r\n"
    "t\r\n"
    "(GDPR Art. 6(1)(f)); we never sell your data. We keep it for\r\n"
    "400 days after our last contact with you.\r\n"
    "You may ask us at ana@example.com for a copy of what we hold, to correct it=\r\n"
    " or\r\n"
    "to erase it, and you may complain to a data protection supervisory authorit=\r\n"
    "y.\r\n"
    "To object and hear nothing more from us: https://go.example.com/u/AwAAAAAAA=\r\n"
    "BCSL33uhekgduq-0IYR0yrr_g\r\n"
    "\r\n"
    "--=_wb_5f804149c92f26c0\r\n"
    "Content-Type: text/html; charset=utf-8\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "<p>Hi Zo=C3=AB &amp; &lt;Co&gt; &amp; ACME</p>\r\n"
    "<a href=3D\"https://go.example.com/c/BQAAAAAAABCSmj8VdCzQcAtrSxKxQ_irAuudi5F=\r\n"
    "d_YLm\">a</a>\r\n"
    "<p>&quot;Sr&quot; Engineer</p><hr><p style=3D\"font-size:12px;color:#666\">Wh=\r\n"
    "y you are getting this email:\r\n"
    "Ana &quot;A&quot; Ruiz found your professional profile (source:\r\n"
    "linkedin) and keeps your name, contact details\r\n"
    "and work history (ACME) to tell you about roles that\r\n"
    "may suit you. We do this under legitimate interest (GDPR Art. 6(1)(f)); we\r\n"
    "never sell your data. We keep it for\r\n"
    "400 days after our last contact with you.\r\n"
    "You may ask us at <a href=3D\"mailto:ana@example.com\">ana@example.com</a> fo=\r\n"
    "r a\r\n"
    "copy of what we hold, to correct it or to erase it, and you may complain to=\r\n"
    " a\r\n"
    "data protection supervisory authority.\r\n"
    "<a href=3D\"https://go.example.com/u/AwAAAAAAABCSL33uhekgduq-0IYR0yrr_g\">Obj=\r\n"
    "ect and hear nothing more from us</a>.</p>\r\n"
    "<img src=3D\"https://go.example.com/o/AQAAAAAAABCSyOZnU17gu1dfn82kH4BUFQ.gif=\r\n"
    "\" width=3D\"1\" height=3D\"1\" alt=3D\"\" style=3D\"display:none\"></BODY>\r\n"
    "</body>\r\n"
    "\r\n"
    "--=_wb_5f804149c92f26c0--\r\n";

/* The quoted-printable encoder as it was (one byte at a time, every rule
 * each time): the reference the faster one must match byte for byte. */
static int ref_at_break(const char *p)
{
    return *p == '\0' || *p == '\r' || *p == '\n';
}

static void ref_qp(struct wb_buf *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
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
        int lead = col == 0 && (c == '.' || !strncmp(p, "From ", 5));
        int lit = !lead && ((c > 32 && c < 127 && c != '=') || (ws && !ref_at_break(p + 1)));
        size_t w = lit ? 1 : 3;
        if (col + w > 75) {
            wb_buf_puts(out, "=\r\n");
            col = 0;
            lead = c == '.' || !strncmp(p, "From ", 5);
            lit = lit && !lead;
            w = lit ? 1 : 3;
        }
        if (lit) {
            wb_buf_putc(out, (char)c);
        } else {
            char e[4] = {'=', hex[c >> 4], hex[c & 15], '\0'};
            wb_buf_puts(out, e);
        }
        col += w;
    }
}

static void qp_same(const char *s)
{
    struct wb_buf a, b;
    wb_buf_init(&a);
    wb_buf_init(&b);
    wb_buf_puts(&a, "x:");
    wb_buf_puts(&b, "x:");
    wb_mime_qp(&a, s);
    ref_qp(&b, s);
    ck_assert_uint_eq(a.len, strlen(a.data));
    if (a.len != b.len || memcmp(a.data, b.data, a.len))
        ck_abort_msg("qp of [%s]:\n got [%s]\nwant [%s]", s, a.data, b.data);
    wb_buf_free(&a);
    wb_buf_free(&b);
}

START_TEST(test_qp_pinned)
{
    struct wb_buf b;
    wb_buf_init(&b);
    wb_mime_qp(&b, ".a\nFrom x\nFrom\na \nb\t\r\n=\xc3\xa9 .\r.");
    ck_assert_str_eq(b.data, "=2Ea\r\n=46rom x\r\nFrom\r\na=20\r\nb=09\r\n=3D=C3=A9 .\r\n=2E");
    wb_buf_reset(&b);
    char line[80];
    memset(line, 'a', 76);
    line[76] = '\0';
    wb_mime_qp(&b, line);
    ck_assert_uint_eq(b.len, 76 + 3);
    ck_assert(!memcmp(b.data + 75, "=\r\na", 4));
    wb_buf_free(&b);
}
END_TEST

/* Lines around the 75-column limit with each kind of byte at the edge,
 * then random text over the bytes the rules tell apart. */
START_TEST(test_qp_matches_reference)
{
    const char edge[] = "a =.\t\r\n\xc3\x80";
    char s[512];
    for (int n = 60; n <= 160; n++)
        for (size_t k = 0; k < sizeof edge - 1; k++)
            for (int at = n - 3; at < n; at++) {
                memset(s, 'a', (size_t)n);
                s[n] = '\0';
                s[at] = edge[k];
                qp_same(s);
                memcpy(s + (at >= 5 ? at - 5 : 0), "From ", 5);
                qp_same(s);
            }
    const char pick[] = " \t\r\n=.From\xc3\xa9\x01\x7f-~!<>\"'&;_";
    unsigned long long r = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < 20000; i++) {
        size_t n = (size_t)(r % 300);
        for (size_t k = 0; k < n; k++) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            unsigned v = (unsigned)(r % 100);
            s[k] = v < 55 ? (char)('a' + v % 26) : v == 99 ? (char)(0x80 | (r >> 20 & 0x7f))
                                                          : pick[v % (sizeof pick - 1)];
        }
        s[n] = '\0';
        qp_same(s);
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
    }
}
END_TEST

START_TEST(test_render_and_build_pinned)
{
    char dir[64];
    struct wb_config *cfg = pin_config(dir);
    ck_assert_ptr_nonnull(cfg);
    const char *subj[] = {PIN_SUBJECT0, PIN_SUBJECT1}, *text[] = {PIN_TEXT0, PIN_TEXT1},
               *html[] = {PIN_HTML0, PIN_HTML1};
    for (int legit = 0; legit < 2; legit++) {
        struct wb_claimed c;
        pin_claimed(&c, legit);
        struct wb_rendered r;
        char err[128];
        ck_assert_int_eq(wb_render(cfg, &c, &r, err, sizeof err), 0);
        ck_assert_str_eq(r.subject, subj[legit]);
        ck_assert_str_eq(r.text, text[legit]);
        ck_assert_str_eq(r.html, html[legit]);
        ck_assert_str_eq(r.envelope_from, PIN_ENVELOPE);
        ck_assert_str_eq(r.to_name, "Zo\xc3\xab & <Co> O'Brien");
        ck_assert_str_eq(r.feedback_id, "1:pin:ana:warmbench");
        if (legit) {
            struct wb_mail m;
            wb_rendered_mail(&r, &m);
            m.date = 1700000000;
            struct wb_mail_handles h;
            ck_assert_int_eq(wb_mail_prepare(&m, &h, err, sizeof err), 0);
            ck_assert_uint_eq(h.raw_len, strlen(PIN_MAIL));
            ck_assert_str_eq(h.raw, PIN_MAIL);
            wb_mail_handles_free(&h);
            /* The same built into a reused buffer (wb_smtp_send's way). */
            struct wb_buf scratch;
            wb_buf_init(&scratch);
            wb_buf_puts(&scratch, "left over from the message before");
            for (int k = 0; k < 2; k++) {
                ck_assert_int_eq(wb_mail_check_build(&m, &scratch, err, sizeof err), 0);
                ck_assert_uint_eq(scratch.len, strlen(PIN_MAIL));
                ck_assert_str_eq(scratch.data, PIN_MAIL);
            }
            m.to_email = "bad address";
            ck_assert_int_eq(wb_mail_check_build(&m, &scratch, err, sizeof err), -1);
            ck_assert_str_eq(err, "bad To address");
            ck_assert_str_eq(scratch.data, PIN_MAIL);
            wb_buf_free(&scratch);
        }
        wb_rendered_free(&r);
        wb_claimed_free(&c);
    }
    wb_config_free(cfg);
    pin_rm(dir);
}
END_TEST

START_TEST(test_date_digits)
{
    char out[32], want[32];
    wb_mime_date(0, out);
    ck_assert_str_eq(out, "Thu, 01 Jan 1970 00:00:00 +0000");
    wb_mime_date(1700000000, out);
    ck_assert_str_eq(out, "Tue, 14 Nov 2023 22:13:20 +0000");
    /* Year 10000 and on: four digits of year % 10000, as "%04d" of it. */
    wb_mime_date(253402300800LL, out);
    snprintf(want, sizeof want, "Sat, 01 Jan %04d 00:00:00 +0000", 10000 % 10000);
    ck_assert_str_eq(out, want);
}
END_TEST

/* The address check as it was, the reference for the one-pass version. */
static int ref_addr_ok(const char *s)
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

START_TEST(test_addr_ok_matches_reference)
{
    const char pick[] = "ab@.-_+<>()[],;:\\\" \x7f\x80\x01";
    char s[300];
    unsigned long long r = 12345;
    for (int i = 0; i < 50000; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        size_t n = i % 7 == 0 ? 250 + (size_t)(r % 8) : (size_t)(r % 12);
        for (size_t k = 0; k < n; k++) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            s[k] = r % 4 ? 'a' : pick[(r >> 8) % (sizeof pick - 1)];
        }
        s[n] = '\0';
        if (n > 3 && i % 2)
            s[n / 2] = '@';
        ck_assert_msg(wb_mime_addr_ok(s) == ref_addr_ok(s), "[%s]", s);
    }
    ck_assert(!wb_mime_addr_ok(NULL));
}
END_TEST

START_TEST(test_buf_helpers)
{
    struct wb_buf b;
    wb_buf_init(&b);
    wb_buf_cat(&b, "a", "", "bc", (char *)NULL);
    wb_buf_put_u64(&b, 0);
    wb_buf_put_i64(&b, -42);
    wb_buf_put_i64(&b, LLONG_MIN);
    wb_buf_put_u64(&b, ULLONG_MAX);
    ck_assert_str_eq(b.data, "abc0-42-922337203685477580818446744073709551615");
    ck_assert_uint_eq(b.len, strlen(b.data));
    wb_buf_insert(&b, 1, "XY", 2);
    wb_buf_insert(&b, 999, "!", 1);
    wb_buf_insert(&b, 0, "", 0);
    ck_assert(!strncmp(b.data, "aXYbc0", 6));
    ck_assert_uint_eq(b.len, strlen(b.data));
    ck_assert_int_eq(b.data[b.len - 1], '!');
    char *d = wb_buf_dup(&b);
    ck_assert_str_eq(d, b.data);
    free(d);
    for (int i = 0; i < 500; i++)
        wb_buf_putc(&b, 'z');
    ck_assert_uint_eq(b.len, strlen(b.data));
    wb_buf_free(&b);
    d = wb_buf_dup(&b);
    ck_assert_str_eq(d, "");
    free(d);
}
END_TEST

static uint64_t sha_link_id(const char *a, const char *b, const char *c)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_MD_CTX *x = EVP_MD_CTX_new();
    EVP_DigestInit_ex(x, EVP_sha256(), NULL);
    EVP_DigestUpdate(x, a, strlen(a) + 1);
    EVP_DigestUpdate(x, b, strlen(b) + 1);
    EVP_DigestUpdate(x, c, strlen(c));
    EVP_DigestFinal_ex(x, md, &n);
    EVP_MD_CTX_free(x);
    uint64_t id = 0;
    for (int i = 0; i < 8; i++)
        id = id << 8 | md[i];
    return id ? id : 1;
}

/* The memo answers what hashing answers: more links than it holds, asked
 * three times, and keys that differ only where one part ends. */
START_TEST(test_link_id_memo)
{
    char name[32], url[64];
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 70; i++) {
            snprintf(name, sizeof name, "l%d", i % 40);
            snprintf(url, sizeof url, "https://example.com/%d", i);
            ck_assert_uint_eq(wb_token_link_id("seq", name, url), sha_link_id("seq", name, url));
        }
    ck_assert_uint_ne(wb_token_link_id("ab", "c", "d"), wb_token_link_id("a", "bc", "d"));
    ck_assert_uint_eq(wb_token_link_id("a", "bc", "d"), sha_link_id("a", "bc", "d"));
    ck_assert_uint_eq(wb_token_link_id("ab", "c", "d"), sha_link_id("ab", "c", "d"));
}
END_TEST

Suite *wb_test_suite(void)
{
    Suite *s = suite_create("mime_pin");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_qp_pinned);
    tcase_add_test(tc, test_qp_matches_reference);
    tcase_add_test(tc, test_render_and_build_pinned);
    tcase_add_test(tc, test_date_digits);
    tcase_add_test(tc, test_addr_ok_matches_reference);
    tcase_add_test(tc, test_buf_helpers);
    tcase_add_test(tc, test_link_id_memo);
    suite_add_tcase(s, tc);
    return s;
}
