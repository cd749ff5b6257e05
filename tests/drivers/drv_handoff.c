/* Drives the handoff engine for tests/integration/test_handoff.py, wired as
 * warmbenchd wires it: curl_loop + pg_loop + wb_handoff on one loop.
 * Usage:
 *   drv_handoff --config PATH                  deliver until SIGTERM/SIGINT, exit 0
 *   drv_handoff --config PATH handoff EMAIL [SEQUENCE]
 *   drv_handoff --config PATH webhooks [--dead] [--retry ID]
 * The last two call the CLI functions (until `warmbench` has the commands).
 * Prints "ready" once connected (flushed), for the tests to wait on. */
#include "warmbench/config.h"
#include "warmbench/curl_loop.h"
#include "warmbench/db.h"
#include "warmbench/exitcodes.h"
#include "warmbench/handoff.h"
#include "warmbench/handoff_cli.h"
#include "warmbench/log.h"
#include "warmbench/pg_loop.h"
#include "warmbench/util.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct drv {
    uv_loop_t *loop;
    struct wb_config *cfg;
    struct wb_curl_loop *cl;
    struct wb_pg *pg;
    struct wb_handoff *h;
    uv_signal_t sigterm, sigint;
    bool started;
};

static void on_connect(struct wb_pg *pg, void *ud)
{
    struct drv *d = ud;
    (void)pg;
    if (!d->started) {
        d->started = true;
        wb_handoff_start(d->h);
        printf("ready\n");
        fflush(stdout);
    } else {
        wb_handoff_kick(d->h);
    }
}

static void on_notify(struct wb_pg *pg, const char *channel, const char *payload, void *ud)
{
    struct drv *d = ud;
    (void)pg, (void)payload;
    if (!strcmp(channel, "wb_handoffs"))
        wb_handoff_kick(d->h);
}

static void on_pg_closed(void *ud)
{
    (void)ud;
}

static void stopped(void *ud)
{
    struct drv *d = ud;
    wb_handoff_stop(d->h);
    wb_curl_loop_free(d->cl);
    wb_pg_close(d->pg, on_pg_closed, d);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct drv *d = s->data;
    (void)signum;
    uv_signal_stop(&d->sigterm);
    uv_signal_stop(&d->sigint);
    wb_handoff_drain(d->h, stopped, d);
}

static int run_engine(struct drv *d)
{
    d->loop = uv_default_loop();
    d->cl = wb_curl_loop_new(d->loop);
    if (!d->cl)
        return WB_EXIT_FAIL;
    static const struct wb_pg_callbacks cb = {on_connect, NULL, on_notify};
    d->pg = wb_pg_new(d->loop, wb_db_conninfo(d->cfg->database), &cb, d);
    wb_pg_listen(d->pg, "wb_handoffs");
    char host[128] = "localhost";
    gethostname(host, sizeof host - 1);
    char *owner = wb_xasprintf("drv:%s:%d", host, (int)getpid());
    d->h = wb_handoff_new(d->loop, d->cl, d->pg, d->cfg, owner);
    free(owner);
    uv_signal_init(d->loop, &d->sigterm);
    uv_signal_init(d->loop, &d->sigint);
    d->sigterm.data = d->sigint.data = d;
    uv_signal_start(&d->sigterm, on_signal, SIGTERM);
    uv_signal_start(&d->sigint, on_signal, SIGINT);
    uv_run(d->loop, UV_RUN_DEFAULT);
    return uv_loop_close(d->loop) == 0 ? WB_EXIT_OK : WB_EXIT_FAIL;
}

static int run_cli(struct drv *d, int argc, char **argv)
{
    PGconn *c = wb_db_connect(d->cfg->database);
    if (!c)
        return WB_EXIT_UNAVAILABLE;
    int rc = WB_EXIT_USAGE;
    if (!strcmp(argv[0], "handoff") && (argc == 2 || argc == 3)) {
        rc = wb_cmd_handoff(c, d->cfg, argv[1], argc == 3 ? argv[2] : NULL, stdout);
    } else if (!strcmp(argv[0], "webhooks")) {
        bool dead = false;
        const char *retry = NULL;
        rc = WB_EXIT_OK;
        for (int i = 1; i < argc; i++) {
            if (!strcmp(argv[i], "--dead"))
                dead = true;
            else if (!strcmp(argv[i], "--retry") && i + 1 < argc)
                retry = argv[++i];
            else
                rc = WB_EXIT_USAGE;
        }
        if (rc == WB_EXIT_OK)
            rc = wb_cmd_webhooks(c, dead, retry, stdout);
    }
    if (rc == WB_EXIT_USAGE)
        fprintf(stderr, "drv_handoff: bad arguments\n");
    PQfinish(c);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 3 || strcmp(argv[1], "--config")) {
        fprintf(stderr, "usage: drv_handoff --config PATH [handoff EMAIL [SEQ] | webhooks ...]\n");
        return WB_EXIT_USAGE;
    }
    struct wb_diags diags;
    wb_diags_init(&diags);
    struct drv d = {0};
    d.cfg = wb_config_load(argv[2], &diags);
    if (!d.cfg) {
        wb_diags_print(&diags, stderr);
        wb_diags_free(&diags);
        return WB_EXIT_CONFIG;
    }
    wb_diags_free(&diags);
    wb_log_setup(d.cfg->log.level, d.cfg->log.format);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc;
    if (argc > 3)
        rc = run_cli(&d, argc - 3, argv + 3);
    else if (!d.cfg->ats.enabled) {
        fprintf(stderr, "drv_handoff: no \"ats\" in %s\n", argv[2]);
        rc = WB_EXIT_CONFIG;
    } else
        rc = run_engine(&d);
    wb_config_free(d.cfg);
    curl_global_cleanup();
    return rc;
}
