/* Sends N test messages through wb_smtp with K connections and prints one
 * line per outcome: "RESULT <i> <OUTCOME>[?] <code> <seconds> <reply>"
 * ("?": uncertain, the server may have taken it).
 * Message i: To name alternates between a UTF-8 name with specials and a
 * CR/LF injection attempt (same for the subject); i % 4 == 3 is text-only;
 * odd i replies in the thread of message 0.
 * With ABORT, wb_smtp_free runs inside the first `done`: the rest must end
 * quietly (no more lines, nothing leaked).
 * usage: drv_smtp URL N K [RCPT_DOMAIN] [TIMEOUT_S] [abort] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "warmbench/smtp.h"
#include "warmbench/tokens.h"

static const unsigned char key[] = "test-secret-0123456789abcdef-0123456789";

static const char *outcome_name(enum wb_smtp_outcome o)
{
    static const char *const n[] = {"SENT", "TEMPFAIL", "PERMFAIL", "HARDBOUNCE"};
    return n[o];
}

struct slot {
    int i;
    int *left;
    struct wb_smtp **abort; /* set: free the sender from this callback */
};

static void done(const struct wb_smtp_result *r, void *ud)
{
    struct slot *s = ud;
    printf("RESULT %d %s%s %d %.3f %s\n", s->i, outcome_name(r->outcome),
           r->uncertain ? "?" : "", r->code, r->seconds, r->reply);
    fflush(stdout);
    (*s->left)--;
    if (s->abort && *s->abort) {
        wb_smtp_free(*s->abort);
        *s->abort = NULL;
    }
}

static int send_one(struct wb_smtp *smtp, int i, const char *domain, struct slot *slot)
{
    char tok[WB_TOKEN_MAX], btok[WB_TOKEN_MAX], url[128], from[128], rcpt[128];
    char msgid[64], subject[256], text[1024], html[512];
    wb_token_make(key, sizeof key - 1, WB_TOKEN_UNSUB, i, 0, tok, sizeof tok);
    wb_token_make(key, sizeof key - 1, WB_TOKEN_BOUNCE, i, 0, btok, sizeof btok);
    snprintf(url, sizeof url, "https://go.example.com/u/%s", tok);
    snprintf(from, sizeof from, "b+%s@bounces.example.com", btok);
    snprintf(rcpt, sizeof rcpt, "user%d@%s", i, domain);
    snprintf(msgid, sizeof msgid, "wb-%d@example.com", i);
    int evil = i % 2;
    if (evil)
        snprintf(subject, sizeof subject, "Hello %d\r\nX-Injected: yes", i);
    else
        snprintf(subject, sizeof subject,
                 "Café ☕ n°%d — a subject long enough to need more than one encoded word, "
                 "façade déjà vu", i);
    snprintf(text, sizeof text,
             "Hello Zoë %d,\n.a line starting with a dot\nFrom the start of a line\n"
             "trailing space \n= equals and tab\t\n%s\nBye\n", i,
             "a long line that goes on and on well beyond seventy-six characters, with ünïcödé "
             "in it, so quoted-printable must wrap it softly");
    snprintf(html, sizeof html, "<p>Hello Zoë %d,</p><p><a href=\"%s\">unsubscribe</a></p>\n", i,
             url);
    struct wb_mail m = {
        .from_name = "Ana Ruíz",
        .from_email = "ana@example.com",
        .reply_to = "ana@example.com",
        .to_name = evil ? "Evil\r\nBcc: victim@example.com" : "Zoë \"the dev\" O'Brien",
        .to_email = rcpt,
        .subject = subject,
        .text = text,
        .html = i % 4 == 3 ? NULL : html,
        .message_id = msgid,
        .in_reply_to = evil ? "wb-0@example.com" : NULL,
        .list_unsubscribe_url = url,
        .date = (time_t)1700000000 + i,
    };
    slot->i = i;
    return wb_smtp_send(smtp, from, rcpt, &m, NULL, done, slot);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s URL N K [RCPT_DOMAIN] [TIMEOUT_S]\n", argv[0]);
        return 64;
    }
    int n = atoi(argv[2]), k = atoi(argv[3]);
    const char *domain = argc > 4 ? argv[4] : "example.org";
    int timeout = argc > 5 ? atoi(argv[5]) : 10;
    int abort_early = argc > 6 && !strcmp(argv[6], "abort");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct wb_smtp_opts o = {.url = argv[1], .tls = WB_TLS_OFF, .connections = k,
                             .timeout_s = timeout};
    struct wb_smtp *smtp = wb_smtp_new(&loop, &o);
    struct slot *slots = calloc((size_t)n, sizeof *slots);
    int left = n;
    for (int i = 0; i < n; i++) {
        slots[i].left = &left;
        slots[i].abort = abort_early ? &smtp : NULL;
        if (send_one(smtp, i, domain, &slots[i]) < 0) {
            fprintf(stderr, "send %d refused\n", i);
            return 1;
        }
    }
    printf("INFLIGHT %zu\n", wb_smtp_inflight(smtp));
    uv_run(&loop, UV_RUN_DEFAULT);
    printf("DONE %d left %zu inflight\n", left, smtp ? wb_smtp_inflight(smtp) : 0);
    wb_smtp_free(smtp);
    uv_run(&loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&loop);
    free(slots);
    curl_global_cleanup();
    return (abort_early ? left == n - 1 : left == 0) && rc == 0 ? 0 : 1;
}
