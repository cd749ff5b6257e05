/* warmbenchd: the daemon. Wires the adapters (pg_loop, curl_loop, the SMTP
 * workers, the HTTP router) and the engines (scheduler, handoff, mailbox,
 * retention, auto-enroll) to one libuv loop, and handles signals and
 * systemd notification. No work is done here. */
#include "warmbench/autoenroll.h"
#include "warmbench/config.h"
#include "warmbench/curl_loop.h"
#include "warmbench/db.h"
#include "warmbench/enroll.h"
#include "warmbench/eventq.h"
#include "warmbench/exitcodes.h"
#include "warmbench/fd_budget.h"
#include "warmbench/handoff.h"
#include "warmbench/http_loop.h"
#include "warmbench/log.h"
#include "warmbench/mailbox.h"
#include "warmbench/metrics.h"
#include "warmbench/oauth.h"
#include "warmbench/pg_loop.h"
#include "warmbench/pg_sync_check.h"
#include "warmbench/queries.h"
#include "warmbench/retention.h"
#include "warmbench/router.h"
#include "warmbench/tracking.h"
#include "warmbench/scoring.h"
#include "warmbench/scheduler.h"
#include "warmbench/send_config.h"
#include "warmbench/smtp.h"
#include "warmbench/util.h"
#include <getopt.h>
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: warmbenchd [--config PATH]\n"
    "\n"
    "Runs the enrolled sequences: sends their mail over SMTP, at most once per\n"
    "step, within each sender's limits and each sequence's window.\n"
    "\n"
    "options:\n"
    "  --config PATH   configuration file (default $WARMBENCH_CONFIG, else\n"
    "                  /etc/warmbench/warmbench.json)\n"
    "  --help          this text\n"
    "  --version       print the version\n"
    "\n"
    "signals: SIGTERM/SIGINT stop cleanly (exit 0); SIGHUP reloads the\n"
    "configuration (an invalid one is logged and the old one kept).\n";

struct daemon {
    uv_loop_t *loop;
    const char *config_path;
    struct wb_config *cfg;
    struct wb_pg *pg;
    struct wb_pg *pg_mark;       /* the scheduler's second connection */
    struct wb_curl_loop *curl;
    struct wb_oauth *oauth;      /* NULL without OAuth senders */
    struct wb_oauth_account *oauth_acc;
    struct wb_config *oauth_cfg; /* the config the accounts point into, kept past reloads */
    struct wb_sched *sched;
    struct wb_autoenroll *autoenroll;
    struct wb_handoff *handoff;  /* NULL without ats and tasks.webhook_url */
    struct wb_mailbox **mailboxes; /* the top-level one, then senders' own */
    size_t n_mailboxes;
    struct wb_retention *retention;
    struct wb_eventq *eventq;    /* tracking events on their way to the database */
    struct wb_metrics *metrics;
    struct wb_sync_check *sync;  /* the failover warning (several database hosts) */
    struct wb_router *router;    /* the HTTP endpoint */
    uv_timer_t flush_timer;      /* bounds the event flush at shutdown */
    bool events_flushed;
    int draining;                /* engines still finishing their work */
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t watchdog, status;
    bool ready, stopping, handles;
    bool started;                /* the engines were started once */
    int syncs_pending;
    int exit_code;
    unsigned long nofile, nofile_was; /* RLIMIT_NOFILE now, and before main raised it */
    int nofile_errno;                 /* why it could not be raised, or 0 */
};

static void observe_smtp(const struct wb_smtp_result *r, void *ud)
{
    struct daemon *d = ud;
    wb_metrics_observe_smtp(d->metrics, r->seconds, (int)r->outcome);
}

static void on_status_timer(uv_timer_t *t)
{
    struct daemon *d = t->data;
    struct wb_sched_figures f;
    wb_sched_figures(d->sched, &f);
    sd_notifyf(0, "STATUS=%s; ready %zu, in flight %zu, unwritten %zu; sent %llu, retried %llu, "
                  "failed %llu, bounced %llu, unknown %llu",
               wb_pg_ready(d->pg) ? "running" : "waiting for the database", f.ready, f.inflight,
               f.unwritten, (unsigned long long)f.sent, (unsigned long long)f.retried,
               (unsigned long long)f.failed, (unsigned long long)f.bounced,
               (unsigned long long)f.unknown);
}

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    sd_notify(0, "WATCHDOG=1");
}

static void start_watchdog(struct daemon *d)
{
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
        uv_timer_start(&d->watchdog, on_watchdog, 0, usec / 2000);
}

/* Something may be due anywhere: the database is back, or a reload's
 * sequences are stored. */
static void kick_all(struct daemon *d)
{
    wb_eventq_kick(d->eventq);
    wb_sched_kick(d->sched);
    wb_autoenroll_kick(d->autoenroll);
    if (d->handoff)
        wb_handoff_kick(d->handoff);
    for (size_t i = 0; i < d->n_mailboxes; i++)
        wb_mailbox_poll_now(d->mailboxes[i]);
}

static void became_ready(struct daemon *d)
{
    if (d->ready)
        return;
    d->ready = true;
    if (d->started) { /* a reload's sequences are stored */
        kick_all(d);
        return;
    }
    d->started = true;
    wb_info("warmbenchd %s ready: %zu sequence(s), %zu sender(s), %d SMTP connection(s)",
            WB_VERSION, d->cfg->n_sequences, d->cfg->n_senders, d->cfg->smtp.connections);
    sd_notify(0, "READY=1\nSTATUS=running");
    wb_sched_start(d->sched);
    if (d->oauth)
        wb_oauth_start(d->oauth);
    wb_autoenroll_start(d->autoenroll);
    wb_retention_start(d->retention);
    if (d->handoff)
        wb_handoff_start(d->handoff);
    for (size_t i = 0; i < d->n_mailboxes; i++)
        wb_mailbox_start(d->mailboxes[i]);
}

static void on_synced(PGresult *r, void *ud)
{
    struct daemon *d = ud;
    if (r && PQresultStatus(r) != PGRES_COMMAND_OK)
        wb_error("storing a sequence: %s", PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) ?: "?");
    if (--d->syncs_pending == 0 && r)
        became_ready(d);
}

static void on_scoring_synced(PGresult *r, void *ud)
{
    struct daemon *d = ud;
    if (r && PQresultStatus(r) != PGRES_TUPLES_OK)
        wb_error("storing scoring weights: %s",
                 PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) ?: "?");
    else if (r && PQntuples(r) == 1 && !strcmp(PQgetvalue(r, 0, 0), "t"))
        wb_info("scoring weights or half-life changed: every score recomputed");
    if (--d->syncs_pending == 0 && r)
        became_ready(d);
}

/* Scores must be made with the configured weights (a change recomputes
 * them all, in the database). */
static void sync_scoring(struct daemon *d)
{
    struct wb_scoring sc;
    char *hl, *w;
    wb_scoring_from_config(d->cfg, &sc);
    wb_scoring_sync_params(&sc, &hl, &w);
    wb_scoring_free(&sc);
    const char *p[] = {hl, w};
    if (wb_pg_query(d->pg, wb_scoring_sync_sql, 2, p, on_scoring_synced, d) < 0)
        d->syncs_pending--;
    free(hl);
    free(w);
}

/* Stores the loaded sequence definitions (the scheduler's SQL reads steps
 * and windows from them) and the scoring weights. */
static void on_send_config_synced(PGresult *r, void *ud)
{
    struct daemon *d = ud;
    if (r && PQresultStatus(r) != PGRES_TUPLES_OK)
        wb_error("storing the senders and the contact policy: %s",
                 PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) ?: "?");
    if (--d->syncs_pending == 0 && r)
        became_ready(d);
}

/* The claim resolves owners and keeps the contact policy in SQL: it reads
 * both from what this stores (sql/functions/067_contact.sql). */
static void sync_send_config(struct daemon *d)
{
    char *arg = wb_send_config_json(d->cfg);
    const char *p[] = {arg};
    if (wb_pg_query(d->pg, wb_q_sync_send_config, 1, p, on_send_config_synced, d) < 0)
        d->syncs_pending--;
    free(arg);
}

static void sync_sequences(struct daemon *d)
{
    d->syncs_pending = (int)d->cfg->n_sequences + 2;
    sync_scoring(d);
    sync_send_config(d);
    for (size_t i = 0; i < d->cfg->n_sequences; i++) {
        const struct wb_sequence *s = &d->cfg->sequences[i];
        char *def = json_dumps(s->definition, JSON_COMPACT);
        const char *p[] = {s->id, s->content_hash, def};
        if (wb_pg_query(d->pg, wb_sequence_sync_sql, 3, p, on_synced, d) < 0)
            d->syncs_pending--;
        free(def);
    }
}

static void stop(struct daemon *d, int code);

static void on_schema(PGresult *r, void *ud)
{
    struct daemon *d = ud;
    if (!r)
        return; /* connection lost: checked again on reconnect */
    /* Every migration in the folder must be applied, not only the newest:
     * numbers may skip, and a later one can land before an earlier one.
     * The functions applied must be the folder's (by hash): the daemon's
     * statements are written against them. */
    size_t want = 0;
    free(wb_migrations_versions(wb_sql_dir(), &want));
    if (PQresultStatus(r) != PGRES_TUPLES_OK || strtoul(PQgetvalue(r, 0, 0), NULL, 10) < want) {
        wb_error("the database schema is not current (%zu migrations in %s); "
                 "run 'warmbench migrate'", want, wb_sql_dir());
        stop(d, WB_EXIT_CONFIG);
        return;
    }
    if (strcmp(PQgetvalue(r, 0, 1), "t") != 0) {
        wb_error("the database's functions are not those of %s/functions; "
                 "run 'warmbench migrate'", wb_sql_dir());
        stop(d, WB_EXIT_CONFIG);
        return;
    }
    sync_sequences(d);
}

static void on_connect(struct wb_pg *pg, void *ud)
{
    struct daemon *d = ud;
    (void)pg;
    if (d->stopping)
        return;
    wb_sync_check_run(d->sync, d->pg);
    if (!d->ready) {
        size_t n;
        char hash[65];
        char *versions = wb_migrations_versions(wb_sql_dir(), &n);
        if (!versions || wb_functions_hash(wb_sql_dir(), hash, NULL) < 0) {
            wb_error("cannot read the schema files in %s", wb_sql_dir());
            free(versions);
            stop(d, WB_EXIT_CONFIG);
            return;
        }
        const char *p[] = {versions, hash};
        int rc = wb_pg_query(d->pg, wb_schema_check_sql, 2, p, on_schema, d);
        free(versions);
        if (rc < 0)
            wb_warn("database connection lost again before the schema check");
        return;
    }
    wb_info("database connection restored");
    kick_all(d);
}

static void on_mark_connect(struct wb_pg *pg, void *ud)
{
    struct daemon *d = ud;
    (void)pg;
    if (d->ready && !d->stopping)
        wb_sched_kick(d->sched);
}

static void on_disconnect(struct wb_pg *pg, const char *why, void *ud)
{
    struct daemon *d = ud;
    (void)pg;
    if (!d->stopping)
        wb_warn("database unavailable (%s); retrying, nothing is claimed meanwhile", why);
}

static void on_notify(struct wb_pg *pg, const char *channel, const char *payload, void *ud)
{
    struct daemon *d = ud;
    (void)pg;
    (void)payload;
    if (!d->ready || d->stopping)
        return;
    if (!strcmp(channel, "wb_enrollments"))
        wb_sched_kick(d->sched);
    else if (!strcmp(channel, "wb_candidates"))
        wb_autoenroll_kick(d->autoenroll);
    else if (!strcmp(channel, "wb_handoffs") && d->handoff)
        wb_handoff_kick(d->handoff);
    else if (!strcmp(channel, "wb_sender_state") && d->oauth)
        wb_oauth_kick(d->oauth);
}

/* A poller per mailbox: the top-level one (password login: it has no
 * sender to hold a token) and each sender's own block. */
static bool top_mailbox(const struct wb_config *cfg)
{
    return cfg->mailbox.enabled && cfg->mailbox.url && cfg->mailbox.auth == WB_AUTH_PASSWORD;
}

static bool polls_own_mailbox(const struct wb_sender *s)
{
    return s->own_mailbox && s->mailbox.enabled;
}

static size_t count_mailboxes(const struct wb_config *cfg)
{
    size_t n = top_mailbox(cfg);
    for (size_t i = 0; i < cfg->n_senders; i++)
        n += polls_own_mailbox(&cfg->senders[i]);
    return n;
}

/* The descriptor budget (http_loop.h): what outbound work may need is kept
 * from the HTTP listeners. Logged at start and whenever a reload changes it. */
static void budget_fds(struct daemon *d, const struct wb_config *cfg, bool always)
{
    unsigned before = wb_http_conn_budget();
    wb_http_reserve_fds(wb_fd_reserve(cfg));
    unsigned n = wb_http_conn_budget();
    if (!always && n == before)
        return;
    wb_info("descriptors: %lu (limit), %u kept for outbound work, %u for HTTP connections%s",
            d->nofile, wb_fd_reserve(cfg), n, d->nofile > d->nofile_was ? " (limit raised)" : "");
    if (d->nofile_errno)
        wb_warn("descriptors: cannot raise the limit from %lu to the hard limit: %s",
                d->nofile_was, strerror(d->nofile_errno));
    if (n < 1000)
        wb_warn("descriptors: fewer than 1000 HTTP connections; raise the limit "
                "(LimitNOFILE= in the unit, ulimit -n)");
}

static void reload(struct daemon *d)
{
    struct wb_diags diags;
    wb_diags_init(&diags);
    struct wb_config *cfg = wb_config_load(d->config_path, &diags);
    if (!cfg) {
        for (size_t i = 0; i < diags.n; i++)
            wb_error("reload: %s:%d:%d: %s", diags.v[i].file, diags.v[i].line, diags.v[i].col,
                     diags.v[i].msg);
        wb_error("reload: %s is invalid; keeping the configuration in use", d->config_path);
        wb_diags_free(&diags);
        return;
    }
    wb_diags_free(&diags);
    if (strcmp(cfg->smtp.url, d->cfg->smtp.url) || cfg->smtp.connections != d->cfg->smtp.connections)
        wb_warn("reload: SMTP settings take effect at the next restart");
    if (d->oauth)
        wb_warn("reload: OAuth accounts and senders' own SMTP blocks take effect at the next "
                "restart");
    budget_fds(d, cfg, false);
    wb_sched_set_config(d->sched, cfg);
    wb_router_set_config(d->router, cfg);
    wb_autoenroll_set_config(d->autoenroll, cfg);
    wb_retention_set_config(d->retention, cfg);
    if (d->handoff)
        wb_handoff_set_config(d->handoff, cfg);
    for (size_t i = 0; i < d->n_mailboxes; i++)
        wb_mailbox_set_config(d->mailboxes[i], cfg);
    if (count_mailboxes(cfg) != d->n_mailboxes)
        wb_warn("reload: adding or removing mailboxes takes effect at the next restart");
    if ((cfg->ats.enabled || cfg->tasks.webhook_url) != (d->handoff != NULL))
        wb_warn("reload: turning ATS handoff or task webhooks on or off takes effect at the "
                "next restart");
    if (d->cfg != d->oauth_cfg)
        wb_config_free(d->cfg);
    d->cfg = cfg;
    wb_log_setup(cfg->log.level, cfg->log.format);
    wb_info("configuration reloaded: %zu sequence(s), %zu sender(s)", cfg->n_sequences,
            cfg->n_senders);
    /* The new definitions are stored, then every engine is kicked
     * (became_ready); claims queued behind them on this connection see
     * them, those already on their way the old ones. */
    if (d->started) {
        d->ready = false;
        sync_sequences(d);
    }
}

static void on_pg_closed(void *ud)
{
    (void)ud;
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Frees what setup made, in dependency order; each part may be missing
 * when setup failed half-way. The loop then runs until the handles close. */
static void teardown(struct daemon *d)
{
    if (d->router)
        wb_router_free(d->router); /* before metrics, which it reads */
    if (d->eventq)
        wb_eventq_free(d->eventq);
    if (d->metrics)
        wb_metrics_free(d->metrics);
    for (size_t i = 0; i < d->n_mailboxes; i++)
        wb_mailbox_stop(d->mailboxes[i]); /* before the connection it uses */
    free(d->mailboxes);
    d->mailboxes = NULL;
    d->n_mailboxes = 0;
    if (d->oauth)
        wb_oauth_stop(d->oauth);
    if (d->curl)
        wb_curl_loop_free(d->curl);
    if (d->pg)
        wb_pg_close(d->pg, on_pg_closed, d);
    if (d->pg_mark)
        wb_pg_close(d->pg_mark, on_pg_closed, d);
    if (d->sched)
        wb_sched_stop(d->sched);
    if (d->autoenroll)
        wb_autoenroll_stop(d->autoenroll);
    if (d->retention)
        wb_retention_stop(d->retention);
    if (d->handoff)
        wb_handoff_stop(d->handoff);
    d->router = NULL, d->eventq = NULL, d->metrics = NULL;
    d->oauth = NULL, d->curl = NULL, d->sched = NULL, d->autoenroll = NULL, d->handoff = NULL;
    d->retention = NULL;
    uv_handle_t *hs[] = {(uv_handle_t *)&d->sigterm,  (uv_handle_t *)&d->sigint,
                         (uv_handle_t *)&d->sighup,   (uv_handle_t *)&d->watchdog,
                         (uv_handle_t *)&d->status,   (uv_handle_t *)&d->flush_timer};
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
        close_handle(hs[i]);
}

static void drained(void *ud)
{
    struct daemon *d = ud;
    if (--d->draining > 0)
        return;
    wb_info("stopped");
    teardown(d);
}

static void events_flushed(void *ud)
{
    struct daemon *d = ud;
    if (d->events_flushed)
        return;
    d->events_flushed = true;
    uv_timer_stop(&d->flush_timer);
    drained(d);
}

/* The database may be away: tracking events still queued then are lost,
 * and said so. */
static void on_flush_timeout(uv_timer_t *t)
{
    struct daemon *d = t->data;
    struct wb_eventq_stats st;
    wb_eventq_stats(d->eventq, &st);
    wb_warn("shutdown: %zu tracking event(s) could not be stored", st.queued);
    events_flushed(d);
}

static void stop(struct daemon *d, int code)
{
    if (d->stopping)
        return;
    d->stopping = true;
    d->exit_code = code;
    sd_notify(0, "STOPPING=1");
    wb_info("stopping: no new claims; finishing transactions in flight");
    d->draining = 2 + (d->handoff != NULL) + (int)d->n_mailboxes;
    wb_router_quiesce(d->router);
    uv_timer_start(&d->flush_timer, on_flush_timeout, 10000, 0);
    wb_eventq_flush(d->eventq, events_flushed, d);
    wb_sched_drain(d->sched, drained, d);
    if (d->handoff)
        wb_handoff_drain(d->handoff, drained, d);
    for (size_t i = 0; i < d->n_mailboxes; i++)
        wb_mailbox_drain(d->mailboxes[i], drained, d);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct daemon *d = h->data;
    if (signum == SIGHUP)
        reload(d);
    else
        stop(d, WB_EXIT_OK);
}

static int parse_args(int argc, char **argv, struct daemon *d)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': d->config_path = optarg; break;
        case 'h': fputs(usage_text, stdout); return WB_EXIT_OK;
        case 'V': printf("warmbenchd %s\n", WB_VERSION); return WB_EXIT_OK;
        default:
            fprintf(stderr, "warmbenchd: bad option %s\nrun 'warmbenchd --help' for usage\n",
                    argv[optind - 1]);
            return WB_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "warmbenchd: unexpected argument %s\n", argv[optind]);
        return WB_EXIT_USAGE;
    }
    if (!d->config_path)
        d->config_path = wb_config_default_path();
    return -1;
}

static void init_handles(struct daemon *d)
{
    uv_signal_t *sigs[] = {&d->sigterm, &d->sigint, &d->sighup};
    int nums[] = {SIGTERM, SIGINT, SIGHUP};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(d->loop, sigs[i]);
        sigs[i]->data = d;
        uv_signal_start(sigs[i], on_signal, nums[i]);
    }
    uv_timer_init(d->loop, &d->watchdog);
    uv_timer_init(d->loop, &d->status);
    uv_timer_init(d->loop, &d->flush_timer);
    d->watchdog.data = d->status.data = d->flush_timer.data = d;
    d->handles = true;
}

/* A sender's token arrived or went: its mail may go now, or waits. */
static void on_oauth_change(void *ud, const char *sender, enum wb_oauth_state state)
{
    struct daemon *d = ud;
    (void)sender;
    if (state != WB_OAUTH_OK || !d->sched || !d->ready || d->stopping)
        return;
    wb_sched_kick(d->sched);
    for (size_t i = 0; i < d->n_mailboxes; i++)
        wb_mailbox_poll_now(d->mailboxes[i]);
}

static void render_extra_metrics(void *ud, struct wb_buf *out)
{
    struct daemon *d = ud;
    wb_sync_check_metrics(d->sync, out);
    if (d->oauth)
        wb_oauth_metrics(d->oauth, out);
}

/* The token keeper, when a sender logs in with OAuth. A token file that
 * others may read is a configuration error. */
static int setup_oauth(struct daemon *d)
{
    size_t n = 0;
    d->oauth_acc = wb_oauth_accounts_from_config(d->cfg, &n);
    if (!n)
        return 0;
    char *err = NULL;
    d->oauth = wb_oauth_new(d->loop, d->curl, d->pg, d->oauth_acc, n, on_oauth_change, d, &err);
    if (!d->oauth) {
        wb_error("%s", err ? err : "cannot start the OAuth token keeper");
        free(err);
        return -1;
    }
    d->oauth_cfg = d->cfg;
    wb_pg_listen(d->pg, "wb_sender_state");
    return 0;
}

static int add_mailbox(struct daemon *d, const char *sender)
{
    struct wb_mailbox *m = wb_mailbox_new(d->loop, d->pg, d->cfg, sender, d->oauth);
    if (!m)
        return -1;
    d->mailboxes[d->n_mailboxes++] = m;
    return 0;
}

static int setup_mailboxes(struct daemon *d)
{
    const struct wb_config *c = d->cfg;
    d->mailboxes = wb_xcalloc(count_mailboxes(c) + 1, sizeof *d->mailboxes);
    if (c->mailbox.enabled && c->mailbox.auth != WB_AUTH_PASSWORD)
        wb_warn("mailbox: the top-level mailbox logs in with OAuth, which needs a sender's "
                "token: give each sender its own mailbox block; it is not polled");
    if (top_mailbox(c) && add_mailbox(d, NULL) < 0)
        return -1;
    for (size_t i = 0; i < c->n_senders; i++)
        if (polls_own_mailbox(&c->senders[i]) &&
            add_mailbox(d, c->senders[i].id) < 0)
            return -1;
    return 0;
}

/* Returns -1 when the daemon is set up, else an exit code (and whatever was
 * made is torn down by main). */
static int setup(struct daemon *d)
{
    struct wb_diags diags;
    wb_diags_init(&diags);
    d->cfg = wb_config_load(d->config_path, &diags);
    if (!d->cfg) {
        wb_diags_print(&diags, stderr);
        wb_diags_free(&diags);
        return WB_EXIT_CONFIG;
    }
    wb_diags_free(&diags);
    wb_log_setup(d->cfg->log.level, d->cfg->log.format);
    wb_http_reserve_fds(wb_fd_reserve(d->cfg));
    init_handles(d);
    d->curl = wb_curl_loop_new(d->loop);
    static const struct wb_pg_callbacks cb = {on_connect, on_disconnect, on_notify};
    d->sync = wb_sync_check_new(wb_db_conninfo(d->cfg->database));
    d->pg = wb_pg_new(d->loop, wb_db_conninfo(d->cfg->database), &cb, d);
    wb_pg_listen(d->pg, "wb_enrollments");
    wb_pg_listen(d->pg, "wb_candidates");
    if (setup_oauth(d) < 0)
        return WB_EXIT_CONFIG;
    d->eventq = wb_eventq_new(d->loop, d->pg, NULL);
    d->metrics = wb_metrics_new(d->pg, 0);
    wb_metrics_set_eventq(d->metrics, d->eventq);
    wb_metrics_set_extra(d->metrics, render_extra_metrics, d);
    char err[256];
    struct wb_route_handlers h;
    wb_tracking_handlers(wb_tracking_new(d->cfg, d->pg, d->eventq, d->metrics), &h);
    d->router = wb_router_new(d->loop, d->cfg, d->pg, d->metrics, &h, err, sizeof err);
    if (!d->router) {
        wb_error("HTTP endpoint: %s", err);
        return WB_EXIT_UNAVAILABLE;
    }
    budget_fds(d, d->cfg, true);
    char host[128] = "localhost";
    gethostname(host, sizeof host - 1);
    /* Unique per start, even where every start has the same pid (a
     * container): the liveness lock and the leases are keyed by it. */
    char *owner = wb_xasprintf("%s:%d:%08x", host, (int)getpid(),
                               (unsigned)(uv_hrtime() ^ ((uint64_t)time(NULL) << 20)));
    static const struct wb_pg_callbacks mark_cb = {on_mark_connect, on_disconnect, NULL};
    d->pg_mark = wb_pg_new(d->loop, wb_db_conninfo(d->cfg->database), &mark_cb, d);
    char *why = NULL;
    d->sched = wb_sched_new(d->loop, d->pg, d->pg_mark, d->cfg, owner, d->oauth, &why);
    if (!d->sched) {
        wb_error("%s", why);
        free(why);
        free(owner);
        return WB_EXIT_FAIL;
    }
    wb_sched_observe(d->sched, observe_smtp, d);
    d->autoenroll = wb_autoenroll_new(d->loop, d->pg, d->cfg);
    d->retention = wb_retention_new(d->loop, d->pg, d->cfg);
    /* The one delivery engine posts task.due webhooks too (tasks.h). */
    if (d->cfg->ats.enabled || d->cfg->tasks.webhook_url) {
        d->handoff = wb_handoff_new(d->loop, d->curl, d->pg, d->cfg, owner);
        wb_pg_listen(d->pg, "wb_handoffs");
        /* Some vendors' web hooks need a lookup with the same token. */
        wb_router_set_ats(d->router, wb_handoff_ats(d->handoff));
    }
    free(owner);
    if (setup_mailboxes(d) < 0)
        return WB_EXIT_CONFIG;
    start_watchdog(d);
    uv_timer_start(&d->status, on_status_timer, 5000, 5000);
    return -1;
}

int main(int argc, char **argv)
{
    struct daemon d = {0};
    int rc = parse_args(argc, argv, &d);
    if (rc >= 0)
        return rc;
    signal(SIGPIPE, SIG_IGN);
    /* The usual soft limit (1024) is far below what the listeners and the
     * outbound connections may need; the hard one is ours to take. */
    if (wb_fd_raise_limit(&d.nofile_was, &d.nofile) < 0)
        d.nofile_errno = errno;
    /* curl frees a 64 KB upload buffer after every message; with glibc's
     * default 128 KB trim threshold the heap was shrunk and grown again each
     * time (brk calls and TLB shootdowns, a tenth of the daemon's time).
     * Setting it freezes the mmap threshold at 128 KB, which would map and
     * unmap every larger block (a claim's result): 4 MB keeps those on the
     * heap too. */
    mallopt(M_TRIM_THRESHOLD, 32 << 20);
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    d.loop = uv_default_loop();
    rc = setup(&d);
    if (rc < 0) {
        uv_run(d.loop, UV_RUN_DEFAULT);
        rc = d.exit_code;
    } else if (d.handles) {
        teardown(&d);
        uv_run(d.loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(d.loop);
    if (d.oauth_cfg && d.oauth_cfg != d.cfg)
        wb_config_free(d.oauth_cfg);
    wb_config_free(d.cfg);
    wb_sync_check_free(d.sync); /* its connection is closed: no answer can come */
    free(d.oauth_acc);
    curl_global_cleanup();
    return rc;
}
