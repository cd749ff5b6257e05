/* A small warmbenchd-like program for tests/integration/test_http.py: the
 * tracking endpoint (http_loop + router + tracking + eventq + metrics) on
 * pg_loop, all on one loop, as warmbenchd wires them.
 *
 *   drv_http --config PATH             serve; prints "READY PORT ADMIN_PORT"
 *                                      (ADMIN_PORT 0 when none); SIGTERM or
 *                                      SIGINT: stop accepting, flush the
 *                                      queued events (WB_FLUSH_S), exit 0
 *   drv_http --config PATH token KIND MESSAGE_ID [LINK]
 *                                      prints a token (KIND: open, click,
 *                                      unsub, bounce) made with the secret
 *   drv_http --config PATH token link MESSAGE_ID NAME [SEQUENCE]
 *                                      prints a version-2 click token for
 *                                      link NAME of SEQUENCE (default: the
 *                                      first) as the config has it now
 *   SIGHUP while serving: reloads the config, as warmbenchd does
 *
 * Test-only knobs (environment): WB_EVENTQ_MAX (queue bound),
 * WB_PG_MAX_PENDING (pg_loop's queue bound),
 * WB_EVENTQ_DELAY_MS (batch delay), WB_EVENTQ_BATCH, WB_FLUSH_S (longest
 * wait for the flush at SIGTERM, default 10). */
#include "warmbench/config.h"
#include "warmbench/db.h"
#include "warmbench/eventq.h"
#include "warmbench/log.h"
#include "warmbench/metrics.h"
#include "warmbench/pg_loop.h"
#include "warmbench/router.h"
#include "warmbench/tracking.h"
#include "warmbench/tokens.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uv_loop_t *loop;
static struct wb_config *cfg;
static struct wb_pg *pg;
static struct wb_eventq *q;
static struct wb_metrics *metrics;
static struct wb_router *router;
static uv_signal_t sigterm, sigint, sighup;
static const char *cfg_path;
static uv_timer_t deadline;
static bool stopping;

static size_t env_num(const char *name)
{
    const char *v = getenv(name);
    return v ? (size_t)strtoul(v, NULL, 10) : 0;
}

static int make_link_token(int argc, char **argv)
{
    const struct wb_sequence *s = argc > 3 ? wb_config_sequence(cfg, argv[3])
                                  : cfg->n_sequences ? &cfg->sequences[0] : NULL;
    const char *url = s && argc > 2 ? wb_sequence_link(s, argv[2]) : NULL;
    char tok[WB_TOKEN_MAX];
    if (!url || !wb_token_make_link(cfg->secret, cfg->secret_len, strtoll(argv[1], NULL, 10),
                                    wb_token_link_id(s->id, argv[2], url), tok, sizeof tok)) {
        fprintf(stderr, "usage: token link MESSAGE_ID NAME [SEQUENCE] (a configured link)\n");
        return 64;
    }
    puts(tok);
    return 0;
}

static int make_token(int argc, char **argv)
{
    if (argc >= 1 && !strcmp(argv[0], "link"))
        return make_link_token(argc, argv);
    if (argc < 2) {
        fprintf(stderr, "usage: token KIND MESSAGE_ID [LINK]\n");
        return 64;
    }
    static const char *const kinds[] = {NULL, "open", "click", "unsub", "bounce"};
    int kind = 0;
    for (int i = 1; i <= 4; i++)
        if (!strcmp(argv[0], kinds[i]))
            kind = i;
    char tok[WB_TOKEN_MAX];
    if (!kind || !wb_token_make(cfg->secret, cfg->secret_len, kind, strtoll(argv[1], NULL, 10),
                                argc > 2 ? atoi(argv[2]) : 0, tok, sizeof tok)) {
        fprintf(stderr, "cannot make a %s token\n", argv[0]);
        return 64;
    }
    puts(tok);
    return 0;
}

static void on_pg_closed(void *ud)
{
    (void)ud;
}

static void shut(void *ud)
{
    (void)ud;
    uv_close((uv_handle_t *)&deadline, NULL);
    wb_router_free(router);
    wb_eventq_free(q);
    wb_metrics_free(metrics);
    wb_pg_close(pg, on_pg_closed, NULL);
    uv_close((uv_handle_t *)&sigterm, NULL);
    uv_close((uv_handle_t *)&sigint, NULL);
    uv_close((uv_handle_t *)&sighup, NULL);
}

/* As warmbenchd: a new config that loads replaces the old one. */
static void on_hup(uv_signal_t *s, int signum)
{
    (void)s, (void)signum;
    struct wb_diags diags;
    wb_diags_init(&diags);
    struct wb_config *n = wb_config_load(cfg_path, &diags);
    if (!n) {
        wb_diags_print(&diags, stderr);
    } else {
        wb_router_set_config(router, n);
        wb_config_free(cfg);
        cfg = n;
        wb_info("drv_http: configuration reloaded");
    }
    wb_diags_free(&diags);
}

static void on_deadline(uv_timer_t *t)
{
    (void)t;
    wb_warn("drv_http: events still queued at the flush deadline; exiting anyway");
    shut(NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)s, (void)signum;
    if (stopping)
        return;
    stopping = true;
    wb_router_quiesce(router);
    size_t flush_s = env_num("WB_FLUSH_S");
    uv_timer_start(&deadline, on_deadline, (flush_s ? flush_s : 10) * 1000, 0);
    wb_eventq_flush(q, shut, NULL);
}

static void on_connect(struct wb_pg *p, void *ud)
{
    (void)p, (void)ud;
    if (q)
        wb_eventq_kick(q);
}

/* Frees what serve() made when a listener could not be set up. */
static void abandon(void)
{
    wb_eventq_free(q);
    wb_metrics_free(metrics);
    wb_pg_close(pg, on_pg_closed, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
}

static int serve(void)
{
    static const struct wb_pg_callbacks cb = {on_connect, NULL, NULL};
    pg = wb_pg_new(loop, wb_db_conninfo(cfg->database), &cb, NULL);
    if (env_num("WB_PG_MAX_PENDING"))
        wb_pg_set_max_pending(pg, env_num("WB_PG_MAX_PENDING"));
    struct wb_eventq_opts o = {env_num("WB_EVENTQ_MAX"), env_num("WB_EVENTQ_BATCH"),
                               (unsigned)env_num("WB_EVENTQ_DELAY_MS")};
    q = wb_eventq_new(loop, pg, &o);
    metrics = wb_metrics_new(pg, 0);
    wb_metrics_set_eventq(metrics, q);
    char err[256];
    struct wb_route_handlers h;
    wb_tracking_handlers(wb_tracking_new(cfg, pg, q, metrics), &h);
    router = wb_router_new(loop, cfg, pg, metrics, &h, err, sizeof err);
    if (!router) {
        fprintf(stderr, "drv_http: %s\n", err);
        abandon();
        return 69;
    }
    uv_signal_init(loop, &sigterm);
    uv_signal_init(loop, &sigint);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_init(loop, &sighup);
    uv_signal_start(&sighup, on_hup, SIGHUP);
    uv_timer_init(loop, &deadline);
    printf("READY %u %u\n", wb_router_port(router, false), wb_router_port(router, true));
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3 || strcmp(argv[1], "--config")) {
        fprintf(stderr, "usage: drv_http --config PATH [token KIND MESSAGE_ID [LINK]]\n");
        return 64;
    }
    struct wb_diags diags;
    wb_diags_init(&diags);
    cfg_path = argv[2];
    cfg = wb_config_load(argv[2], &diags);
    if (!cfg) {
        wb_diags_print(&diags, stderr);
        wb_diags_free(&diags);
        return 78;
    }
    wb_diags_free(&diags);
    int rc;
    if (argc > 3 && !strcmp(argv[3], "token")) {
        rc = make_token(argc - 4, argv + 4);
    } else {
        signal(SIGPIPE, SIG_IGN);
        wb_log_setup(cfg->log.level, cfg->log.format);
        loop = uv_default_loop();
        rc = serve();
        uv_loop_close(loop);
    }
    wb_config_free(cfg);
    return rc;
}
