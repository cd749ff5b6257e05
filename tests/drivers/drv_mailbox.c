/* Runs the IMAP poller alone on one loop (pg_loop + mailbox, whose IMAP
 * transfers run in its own worker thread)
 * for tests/integration/test_mailbox.py.
 * usage: drv_mailbox --config PATH             polls until SIGTERM/SIGINT,
 *                                                then stops cleanly, exit 0
 *        drv_mailbox --config PATH token ID    prints the bounce token of
 *                                                message ID for the config's
 *                                                secret */
#include <curl/curl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "warmbench/config.h"
#include "warmbench/db.h"
#include "warmbench/log.h"
#include "warmbench/mailbox.h"
#include "warmbench/pg_loop.h"
#include "warmbench/tokens.h"

struct drv {
    struct wb_config *cfg;
    struct wb_pg *pg;
    struct wb_mailbox *mb;
    uv_signal_t sigterm, sigint;
};

static void on_pg_closed(void *ud)
{
    (void)ud;
}

static void stopped(void *ud)
{
    struct drv *d = ud;
    wb_mailbox_stop(d->mb);
    d->mb = NULL;
    wb_pg_close(d->pg, on_pg_closed, d);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct drv *d = h->data;
    (void)signum;
    uv_signal_stop(&d->sigterm);
    uv_signal_stop(&d->sigint);
    wb_mailbox_drain(d->mb, stopped, d);
}

static int print_token(const struct wb_config *cfg, const char *id)
{
    char tok[WB_TOKEN_MAX];
    if (!wb_token_make(cfg->secret, cfg->secret_len, WB_TOKEN_BOUNCE, strtoll(id, NULL, 10), 0,
                       tok, sizeof tok))
        return 1;
    printf("%s\n", tok);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3 || strcmp(argv[1], "--config")) {
        fprintf(stderr, "usage: %s --config PATH [token MESSAGE_ID]\n", argv[0]);
        return 64;
    }
    struct wb_diags diags;
    wb_diags_init(&diags);
    struct drv d = {0};
    d.cfg = wb_config_load(argv[2], &diags);
    if (!d.cfg) {
        wb_diags_print(&diags, stderr);
        wb_diags_free(&diags);
        return 78;
    }
    wb_diags_free(&diags);
    if (argc == 5 && !strcmp(argv[3], "token")) {
        int rc = print_token(d.cfg, argv[4]);
        wb_config_free(d.cfg);
        return rc;
    }
    wb_log_setup(d.cfg->log.level, d.cfg->log.format);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    uv_loop_t loop;
    uv_loop_init(&loop);
    d.pg = wb_pg_new(&loop, wb_db_conninfo(d.cfg->database), NULL, &d);
    d.mb = wb_mailbox_new(&loop, d.pg, d.cfg, NULL, NULL);
    if (d.mb)
        wb_mailbox_start(d.mb);
    int rc = 0;
    if (!d.mb) {
        wb_pg_close(d.pg, on_pg_closed, &d);
        rc = 1;
    } else {
        uv_signal_t *sigs[] = {&d.sigterm, &d.sigint};
        int nums[] = {SIGTERM, SIGINT};
        for (int i = 0; i < 2; i++) {
            uv_signal_init(&loop, sigs[i]);
            sigs[i]->data = &d;
            uv_signal_start(sigs[i], on_signal, nums[i]);
        }
        printf("READY\n");
        fflush(stdout);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0)
        rc = 1;
    wb_config_free(d.cfg);
    curl_global_cleanup();
    return rc;
}
