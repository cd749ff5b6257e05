/* Drives the token keeper (oauth.h) for tests/integration/test_oauth.py on
 * a real loop: curl_loop (+ pg_loop with --db) + wb_oauth, against
 * tests/integration/oauthd.py.
 * Usage:
 *   drv_oauth --token-url URL --client-id ID [--client-secret-file F]
 *             --tokens-dir DIR [--db CONNINFO] --sender S [--sender S2 ...]
 * Every 200 ms, and on each state change, prints one JSON line per account:
 *   {"t": UNIX, "sender": S, "state": "ok", "token": "SHA256-PREFIX"|null,
 *    "expires_in": s, "renewals": n, "renew_failures": n, "auth_failures": n,
 *    "error": "..."}
 * (the token as the first 16 hex digits of its SHA-256: the test matches it
 * with what oauthd issued, and the real token never leaves the process).
 * Commands on stdin, one a line: "authfail SENDER" (the server refused the
 * token held now), "metrics" (prints the Prometheus text, then "end").
 * SIGTERM or the end of stdin: stops cleanly, exit 0. A token file that is
 * a configuration error: the message on stderr, exit 78. */
#include "warmbench/curl_loop.h"
#include "warmbench/exitcodes.h"
#include "warmbench/log.h"
#include "warmbench/oauth.h"
#include "warmbench/pg_loop.h"
#include "warmbench/readfile.h"
#include "warmbench/util.h"
#include <jansson.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

struct drv {
    uv_loop_t *loop;
    struct wb_curl_loop *cl;
    struct wb_pg *pg;
    struct wb_oauth *k;
    uv_signal_t sigterm;
    uv_timer_t tick;
    uv_pipe_t in;
    char line[512];
    size_t len;
    bool stopping;
};

static double drv_now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void drv_hash(const char *tok, char out[17])
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(tok, strlen(tok), md, &n, EVP_sha256(), NULL);
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void drv_print(struct drv *d)
{
    for (size_t i = 0; i < wb_oauth_count(d->k); i++) {
        struct wb_oauth_status st;
        wb_oauth_status(d->k, i, &st);
        const char *tok = wb_oauth_token(d->k, st.sender, st.provider);
        char h[17];
        if (tok)
            drv_hash(tok, h);
        json_t *o = json_pack("{s:f, s:s, s:s, s:o, s:f, s:I, s:I, s:I, s:s}", "t", drv_now(),
                              "sender", st.sender, "state", wb_oauth_state_name(st.state),
                              "token", tok ? json_string(h) : json_null(), "expires_in",
                              st.expires_in_s, "renewals", (json_int_t)st.renewals,
                              "renew_failures", (json_int_t)st.renew_failures,
                              "auth_failures", (json_int_t)st.auth_failures, "error", st.error);
        char *s = json_dumps(o, JSON_COMPACT);
        printf("%s\n", s);
        free(s);
        json_decref(o);
    }
    fflush(stdout);
}

static void drv_on_change(void *ud, const char *sender, enum wb_oauth_state state)
{
    (void)sender, (void)state;
    drv_print(ud);
}

static void drv_on_tick(uv_timer_t *t)
{
    drv_print(t->data);
}

static void drv_on_connect(struct wb_pg *pg, void *ud)
{
    (void)pg;
    struct drv *d = ud;
    wb_oauth_kick(d->k);
}

static void drv_pg_closed(void *ud)
{
    (void)ud;
}

static void drv_stop(struct drv *d)
{
    if (d->stopping)
        return;
    d->stopping = true;
    wb_oauth_stop(d->k);
    wb_curl_loop_free(d->cl);
    if (d->pg)
        wb_pg_close(d->pg, drv_pg_closed, d);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->tick, NULL);
    uv_close((uv_handle_t *)&d->in, NULL);
}

static void drv_command(struct drv *d, const char *cmd)
{
    if (!strncmp(cmd, "authfail ", 9)) {
        const char *tok = wb_oauth_token(d->k, cmd + 9, NULL);
        char *copy = tok ? wb_xstrdup(tok) : NULL;
        wb_oauth_auth_failed(d->k, cmd + 9, NULL, copy);
        free(copy);
        drv_print(d);
    } else if (!strcmp(cmd, "metrics")) {
        struct wb_buf b;
        wb_buf_init(&b);
        wb_oauth_metrics(d->k, &b);
        printf("%send\n", b.data ? b.data : "");
        fflush(stdout);
        wb_buf_free(&b);
    } else {
        fprintf(stderr, "drv_oauth: unknown command \"%s\"\n", cmd);
    }
}

static void drv_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    (void)h;
    buf->base = wb_xmalloc(size);
    buf->len = size;
}

static void drv_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct drv *d = s->data;
    for (ssize_t i = 0; i < n; i++) {
        char c = buf->base[i];
        if (c == '\n') {
            d->line[d->len] = '\0';
            drv_command(d, d->line);
            d->len = 0;
        } else if (d->len < sizeof d->line - 1) {
            d->line[d->len++] = c;
        }
    }
    free(buf->base);
    if (n < 0)
        drv_stop(d);
}

static void drv_on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    drv_stop(s->data);
}

int main(int argc, char **argv)
{
    struct wb_oauth_provider p = {.name = "test"};
    const char *db = NULL;
    const char **senders = wb_xcalloc((size_t)argc, sizeof *senders);
    size_t ns = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--token-url"))
            p.token_url = (char *)v;
        else if (!strcmp(k, "--client-id"))
            p.client_id = (char *)v;
        else if (!strcmp(k, "--tokens-dir"))
            p.tokens_dir = (char *)v;
        else if (!strcmp(k, "--db"))
            db = v;
        else if (!strcmp(k, "--sender"))
            senders[ns++] = v;
        else if (!strcmp(k, "--client-secret-file")) {
            size_t len;
            if (wb_read_file(v, &p.client_secret, &len) != 0) {
                fprintf(stderr, "drv_oauth: cannot read %s\n", v);
                return WB_EXIT_CONFIG;
            }
            p.client_secret[strcspn(p.client_secret, "\r\n")] = '\0';
        } else {
            fprintf(stderr, "drv_oauth: unknown option %s\n", k);
            return WB_EXIT_USAGE;
        }
    }
    if (!p.token_url || !p.client_id || !p.tokens_dir || !ns) {
        fprintf(stderr, "usage: drv_oauth --token-url URL --client-id ID --tokens-dir DIR "
                        "[--db CONNINFO] --sender S...\n");
        return WB_EXIT_USAGE;
    }
    wb_log_setup(WB_LOG_DEBUG, WB_LOG_TEXT);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct wb_oauth_account *acc = wb_xcalloc(ns, sizeof *acc);
    for (size_t i = 0; i < ns; i++)
        acc[i] = (struct wb_oauth_account){.sender = senders[i], .provider = &p};
    struct drv d = {.loop = uv_default_loop()};
    d.cl = wb_curl_loop_new(d.loop);
    static const struct wb_pg_callbacks cb = {.on_connect = drv_on_connect};
    char *err = NULL;
    int rc = WB_EXIT_OK;
    if (db)
        d.pg = wb_pg_new(d.loop, db, &cb, &d);
    d.k = wb_oauth_new(d.loop, d.cl, d.pg, acc, ns, drv_on_change, &d, &err);
    if (!d.k) {
        fprintf(stderr, "drv_oauth: %s\n", err);
        free(err);
        wb_curl_loop_free(d.cl);
        if (d.pg)
            wb_pg_close(d.pg, drv_pg_closed, &d);
        uv_run(d.loop, UV_RUN_DEFAULT);
        rc = WB_EXIT_CONFIG;
        goto out;
    }
    uv_signal_init(d.loop, &d.sigterm);
    d.sigterm.data = &d;
    uv_signal_start(&d.sigterm, drv_on_signal, SIGTERM);
    uv_timer_init(d.loop, &d.tick);
    d.tick.data = &d;
    uv_timer_start(&d.tick, drv_on_tick, 200, 200);
    uv_pipe_init(d.loop, &d.in, 0);
    d.in.data = &d;
    uv_pipe_open(&d.in, 0);
    uv_read_start((uv_stream_t *)&d.in, drv_alloc, drv_on_read);
    wb_oauth_start(d.k);
    uv_run(d.loop, UV_RUN_DEFAULT);
out:
    if (uv_loop_close(d.loop) != 0)
        rc = WB_EXIT_FAIL;
    free(acc);
    free(senders);
    free(p.client_secret);
    curl_global_cleanup();
    return rc;
}
