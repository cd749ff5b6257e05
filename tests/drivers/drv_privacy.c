/* Drives the GDPR code for tests/integration/test_privacy.py.
 * Usage: drv_privacy CONNINFO forget EMAIL     wb_cmd_forget; its exit code
 *        drv_privacy CONNINFO export EMAIL     wb_cmd_export; its exit code
 *        drv_privacy CONNINFO retention DAYS   the daemon's retention engine
 *            on a libuv loop, kicked once: prints "erased N" when its run
 *            ends (N = 0 when another run claimed the day); exit 0 */
#include "warmbench/config.h"
#include "warmbench/pg_loop.h"
#include "warmbench/privacy.h"
#include "warmbench/retention.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct wb_retention *ret;
static struct wb_pg *pg;
static uv_timer_t poll_timer;
static bool kicked;

static void on_closed(void *ud)
{
    (void)ud;
}

static void on_poll(uv_timer_t *t)
{
    if (!kicked || wb_retention_runs(ret) == 0)
        return;
    printf("erased %ld\n", wb_retention_erased(ret));
    fflush(stdout);
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, NULL);
    wb_retention_stop(ret);
    wb_pg_close(pg, on_closed, NULL);
}

static void on_connect(struct wb_pg *p, void *ud)
{
    (void)p;
    (void)ud;
    if (!kicked) {
        kicked = true;
        wb_retention_start(ret);
        wb_retention_kick(ret);
    }
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: drv_privacy CONNINFO forget|export EMAIL | retention DAYS\n");
        return 64;
    }
    if (!strcmp(argv[2], "retention")) {
        struct wb_config cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.retention_days = atoi(argv[3]);
        uv_loop_t *loop = uv_default_loop();
        static const struct wb_pg_callbacks cb = {on_connect, NULL, NULL};
        pg = wb_pg_new(loop, argv[1], &cb, NULL);
        ret = wb_retention_new(loop, pg, &cfg);
        uv_timer_init(loop, &poll_timer);
        uv_timer_start(&poll_timer, on_poll, 10, 10);
        uv_run(loop, UV_RUN_DEFAULT);
        uv_loop_close(loop);
        return 0;
    }
    PGconn *c = PQconnectdb(argv[1]);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "drv_privacy: %s", PQerrorMessage(c));
        PQfinish(c);
        return 69;
    }
    int rc = 64;
    if (!strcmp(argv[2], "forget"))
        rc = wb_cmd_forget(c, argv[3], stdout);
    else if (!strcmp(argv[2], "export"))
        rc = wb_cmd_export(c, argv[3], stdout);
    PQfinish(c);
    return rc;
}
