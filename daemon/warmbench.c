/* warmbench: the command-line tool for sourcers and operators. This file
 * only parses arguments and dispatches; the work lives in lib/. */
#include "warmbench/ats_check.h"
#include "warmbench/attribution.h"
#include "warmbench/check_config.h"
#include "warmbench/config.h"
#include "warmbench/db.h"
#include "warmbench/enroll.h"
#include "warmbench/exitcodes.h"
#include "warmbench/handoff_cli.h"
#include "warmbench/import.h"
#include "warmbench/login_cli.h"
#include "warmbench/pause_cli.h"
#include "warmbench/plan.h"
#include "warmbench/preview_cli.h"
#include "warmbench/send_config.h"
#include "warmbench/messages_cli.h"
#include "warmbench/pool.h"
#include "warmbench/privacy.h"
#include "warmbench/senders_cli.h"
#include "warmbench/report_html.h"
#include "warmbench/scoring.h"
#include "warmbench/show.h"
#include "warmbench/stats.h"
#include "warmbench/suppress.h"
#include "warmbench/tasks_cli.h"
#include "warmbench/util.h"
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: warmbench [--config PATH] COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  migrate                           apply pending migrations from sql/ (safe to rerun)\n"
    "  check-config                      validate warmbench.json, sequences and templates\n"
    "  import FILE.csv [--tag T]...      upsert candidates from a CSV file\n"
    "  enroll SEQUENCE [--tag T]... [--email E]...\n"
    "                                    enroll matching candidates into a sequence\n"
    "  stats [SEQUENCE] [--json]         per sequence and step counts of people\n"
    "  stats --attribution [SEQUENCE] [--json]\n"
    "                                    enrolled, replied, handed off, applied, hired\n"
    "  show EMAIL [--json]               a candidate, their enrollments and timeline\n"
    "  suppress EMAIL                    never mail this address again\n"
    "  forget EMAIL                      erase the person; keep only a one-way hash\n"
    "  export EMAIL [--json]             everything held on the person, as JSON\n"
    "  handoff EMAIL [--sequence S]      hand the candidate to the ATS now\n"
    "  webhooks [--dead] [--retry ID]    list handoff deliveries; re-queue a dead one\n"
    "  ats check                         call the configured ATS once: authentication,\n"
    "                                    job found, user found\n"
    "  messages --unknown [--requeue ID|--all]\n"
    "                                    list what a crash left unknown; resend it\n"
    "                                    deliberately (it may arrive twice)\n"
    "  pool [--json]                     pool health: size, growth, engagement, ready per tag\n"
    "  report --html FILE [--since DATE] one self-contained HTML report (DATE: YYYY-MM-DD)\n"
    "  rescore                           recompute every engagement score from the events\n"
    "  senders [--json]                  per sender: state, sent today, bounces, mailbox\n"
    "  login SENDER                      OAuth 2.0 device sign-in; stores the sender's token\n"
    "  pause SEQUENCE | --sender S [--reason TEXT] | --email E [--sequence S]\n"
    "                                    start nothing more for it (on the wire finishes)\n"
    "  resume SEQUENCE | --sender S | --email E [--sequence S]\n"
    "                                    lift the pause; due steps re-timed into the window\n"
    "  unenroll EMAIL [--sequence S]     end the person's enrollments\n"
    "  preview SEQUENCE --email E [--step N] [--out FILE]\n"
    "                                    the exact message that step would send to E\n"
    "  test-send SEQUENCE --to ADDR [--email E]\n"
    "                                    every step to ADDR, subjects [test]; records nothing\n"
    "  plan SEQUENCE [--days N] [--json] what would go out each day (N: 1-366, default 14);\n"
    "                                    writes nothing\n"
    "  tasks [--sender S] [--json]       the manual steps (\"task\") due, oldest first\n"
    "  done TASK_ID [--skip]             complete (or skip) a task; its sequence goes on\n"
    "\n"
    "options:\n"
    "  --config PATH   configuration file (default $WARMBENCH_CONFIG, else\n"
    "                  /etc/warmbench/warmbench.json)\n"
    "  --help          this text\n"
    "  --version       print the version\n"
    "\n"
    "exit codes: 0 ok, 1 runtime failure, 64 usage, 65 bad input data,\n"
    "69 service unreachable, 78 configuration error\n";

struct args {
    const char *config;
    const char *cmd;
    char **pos;     /* positional arguments after the command */
    size_t npos;
    char **tags;
    size_t ntags;
    char **emails;
    size_t nemails;
    bool json;
    bool dead;
    bool attribution;
    const char *sequence;
    const char *retry;
    const char *html;  /* report --html FILE */
    const char *since; /* report --since DATE */
    bool unknown;      /* messages --unknown */
    const char *requeue;
    bool all;
    const char *sender; /* pause/resume --sender */
    const char *step;   /* preview --step */
    const char *out;    /* preview --out */
    const char *to;     /* test-send --to */
    const char *reason; /* pause --reason */
    const char *days;   /* plan --days */
    bool skip;          /* done --skip */
};

static void push(char ***v, size_t *n, char *s)
{
    *v = wb_xrealloc(*v, (*n + 1) * sizeof **v);
    (*v)[(*n)++] = s;
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "warmbench: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nrun 'warmbench --help' for usage\n");
    return WB_EXIT_USAGE;
}

/* Returns -1 when parsed, else an exit code (help, version, usage error). */
static int parse_args(int argc, char **argv, struct args *a)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"tag", required_argument, NULL, 't'},
        {"email", required_argument, NULL, 'e'},  {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},         {"version", no_argument, NULL, 'V'},
        {"dead", no_argument, NULL, 'd'},         {"sequence", required_argument, NULL, 's'},
        {"retry", required_argument, NULL, 'r'},  {"attribution", no_argument, NULL, 'A'},
        {"html", required_argument, NULL, 'H'},   {"since", required_argument, NULL, 'S'},
        {"unknown", no_argument, NULL, 'U'},      {"requeue", required_argument, NULL, 'Q'},
        {"all", no_argument, NULL, 'a'},          {"sender", required_argument, NULL, 'P'},
        {"reason", required_argument, NULL, 'R'}, {"step", required_argument, NULL, 'N'},
        {"out", required_argument, NULL, 'O'},    {"to", required_argument, NULL, 'T'},
        {"days", required_argument, NULL, 'D'},
        {"skip", no_argument, NULL, 'K'},
        {NULL, 0, NULL, 0}};
    int ch;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+:", opts, NULL)) != -1 || optind < argc) {
        if (ch == -1) { /* a positional: command or its argument */
            if (!a->cmd)
                a->cmd = argv[optind];
            else
                push(&a->pos, &a->npos, argv[optind]);
            optind++;
            continue;
        }
        switch (ch) {
        case 'c': a->config = optarg; break;
        case 't': push(&a->tags, &a->ntags, optarg); break;
        case 'e': push(&a->emails, &a->nemails, optarg); break;
        case 'j': a->json = true; break;
        case 'd': a->dead = true; break;
        case 's': a->sequence = optarg; break;
        case 'r': a->retry = optarg; break;
        case 'A': a->attribution = true; break;
        case 'H': a->html = optarg; break;
        case 'S': a->since = optarg; break;
        case 'U': a->unknown = true; break;
        case 'Q': a->requeue = optarg; break;
        case 'a': a->all = true; break;
        case 'P': a->sender = optarg; break;
        case 'R': a->reason = optarg; break;
        case 'N': a->step = optarg; break;
        case 'O': a->out = optarg; break;
        case 'T': a->to = optarg; break;
        case 'K': a->skip = true; break;
        case 'D': a->days = optarg; break;
        case 'h': fputs(usage_text, stdout); return WB_EXIT_OK;
        case 'V': printf("warmbench %s\n", WB_VERSION); return WB_EXIT_OK;
        case ':': return usage_error("option %s needs a value", argv[optind - 1]);
        default: return usage_error("unknown option %s", argv[optind - 1]);
        }
    }
    if (!a->cmd)
        return usage_error("%s", "no command given");
    if (!a->config)
        a->config = wb_config_default_path();
    return -1;
}

static struct wb_config *load_config(const char *path)
{
    struct wb_diags d;
    wb_diags_init(&d);
    struct wb_config *cfg = wb_config_load(path, &d);
    if (!cfg) {
        wb_diags_print(&d, stderr);
        fprintf(stderr, "warmbench: %s: configuration has %zu error(s); "
                        "run 'warmbench check-config' for all of them\n", path, d.n);
    }
    wb_diags_free(&d);
    return cfg;
}

static int cmd_migrate(PGconn *c, const struct wb_config *cfg, struct args *a)
{
    (void)cfg;
    (void)a;
    int applied = 0;
    if (wb_migrate(c, wb_sql_dir(), &applied) < 0)
        return WB_EXIT_FAIL;
    printf("migrations: %d applied, schema up to date\n", applied);
    return WB_EXIT_OK;
}

static int sync_sequences(PGconn *c, const struct wb_config *cfg)
{
    for (size_t i = 0; i < cfg->n_sequences; i++) {
        const struct wb_sequence *s = &cfg->sequences[i];
        char *def = json_dumps(s->definition, JSON_COMPACT);
        const char *p[] = {s->id, s->content_hash, def};
        int rc = wb_db_cmd(c, "storing sequence", wb_sequence_sync_sql, 3, p);
        free(def);
        if (rc < 0)
            return -1;
    }
    /* The claim's senders and contact policy, as the daemon stores them. */
    char *sc_json = wb_send_config_json(cfg);
    const char *sp[] = {sc_json};
    PGresult *sr = wb_db_exec(c, PGRES_TUPLES_OK, "storing the senders and contact policy",
                              wb_q_sync_send_config, 1, sp);
    free(sc_json);
    if (!sr)
        return -1;
    PQclear(sr);
    /* Scores must be made with the configured weights before anyone reads them. */
    struct wb_scoring sc;
    wb_scoring_from_config(cfg, &sc);
    int rc = wb_scoring_sync(c, &sc);
    wb_scoring_free(&sc);
    return rc < 0 ? -1 : 0;
}

#define ENROLL_ANALYZE_MIN 1000 /* enrollments made by one `enroll` */

static int cmd_enroll(PGconn *c, const struct wb_config *cfg, struct args *a)
{
    if (a->npos != 1)
        return usage_error("%s", "enroll takes one SEQUENCE");
    const struct wb_sequence *s = wb_config_sequence(cfg, a->pos[0]);
    if (!s) {
        fprintf(stderr, "warmbench: enroll: unknown sequence \"%s\" (not in %s)\n", a->pos[0],
                cfg->sequences_dir);
        return WB_EXIT_USAGE;
    }
    if (sync_sequences(c, cfg) < 0)
        return WB_EXIT_FAIL;
    struct wb_enroll_query q;
    wb_enroll_query_build(s, a->tags, a->ntags, a->emails, a->nemails, "cli", &q);
    PGresult *r = wb_db_exec(c, PGRES_TUPLES_OK, "enrolling", q.sql, WB_ENROLL_NPARAMS,
                             (const char *const *)q.params);
    wb_enroll_query_free(&q);
    if (!r)
        return WB_EXIT_FAIL;
    struct wb_enroll_counts n = {0};
    for (int i = 0; i < PQntuples(r); i++)
        wb_enroll_count_row(&n, PQgetvalue(r, i, 0), atol(PQgetvalue(r, i, 1)));
    PQclear(r);
    /* Fresh statistics for the claim's plans: with those of before a bulk
     * enroll, the planner took the new sequence's enrollments for a few,
     * walked them all and sorted them for every claim rather than read
     * the due index in order, and probed the retry queue once per active
     * enrollment (bench-send: 9 and 11 ms per claim of 256, against under
     * 1 ms). Autovacuum would analyze it a minute later at best, and not
     * at all for a tenth of a large table. */
    if (n.enrolled >= ENROLL_ANALYZE_MIN &&
        wb_db_cmd(c, "enroll: statistics", "ANALYZE enrollments", 0, NULL) < 0)
        return WB_EXIT_FAIL;
    printf("enrolled %ld into %s; skipped %ld suppressed, %ld unsubscribed, "
           "%ld without consent, %ld already enrolled, %ld in another sequence\n",
           n.enrolled, s->id, n.suppressed, n.unsubscribed, n.no_consent, n.already, n.busy);
    return wb_contact_report(c, s->id, stdout) < 0 ? WB_EXIT_FAIL : WB_EXIT_OK;
}

static int cmd_import(PGconn *c, const struct wb_config *cfg, struct args *a)
{
    (void)cfg;
    if (a->npos != 1)
        return usage_error("%s", "import takes one FILE.csv");
    struct wb_import_result res;
    int rc = wb_import(c, a->pos[0], a->tags, a->ntags, &res, stderr);
    if (rc == WB_EXIT_OK || rc == WB_EXIT_DATAERR)
        wb_import_print_summary(&res, stdout);
    return rc;
}

static int cmd_stats(PGconn *c, const struct wb_config *cfg, struct args *a)
{
    if (a->npos > 1)
        return usage_error("%s", "stats takes at most one SEQUENCE");
    if (sync_sequences(c, cfg) < 0)
        return WB_EXIT_FAIL;
    if (a->attribution)
        return wb_attribution(c, a->npos ? a->pos[0] : NULL, a->json, stdout);
    return wb_stats(c, a->npos ? a->pos[0] : NULL, a->json, stdout);
}

static int cmd_show(PGconn *c, const struct wb_config *cfg, struct args *a)
{
    (void)cfg;
    if (a->npos != 1)
        return usage_error("%s", "show takes one EMAIL");
    return wb_show(c, a->pos[0], a->json, stdout);
}

static int cmd_suppress(PGconn *c, const struct wb_config *cfg, struct args *a)
{
    (void)cfg;
    if (a->npos != 1 || !strchr(a->pos[0], '@'))
        return usage_error("%s", "suppress takes one EMAIL");
    const char *p[] = {a->pos[0], "manual"};
    PGresult *r = wb_db_exec(c, PGRES_TUPLES_OK, "suppressing", wb_suppress_sql, 2, p);
    if (!r)
        return WB_EXIT_FAIL;
    if (!strcmp(PQgetvalue(r, 0, 1), "t"))
        printf("%s was already suppressed\n", a->pos[0]);
    else
        printf("suppressed %s; stopped %s enrollment(s)\n", a->pos[0], PQgetvalue(r, 0, 0));
    PQclear(r);
    return WB_EXIT_OK;
}

static int cmd_handoff(PGconn *c, const struct wb_config *cfg, struct args *a)
{
    if (a->npos != 1)
        return usage_error("%s", "handoff takes one EMAIL");
    return wb_cmd_handoff(c, cfg, a->pos[0], a->sequence, stdout);
}

static int cmd_webhooks(PGconn *c, const struct wb_config *cfg, struct args *a)
{
    (void)cfg;
    if (a->npos)
        return usage_error("%s", "webhooks takes no arguments");
    return wb_cmd_webhooks(c, a->dead, a->retry, stdout);
}

static int cmd_messages(PGconn *c, const struct wb_config *cfg, struct args *a)
{
    (void)cfg;
    if (a->npos || !a->unknown || (a->requeue && a->all))
        return usage_error("%s", "messages takes --unknown [--requeue ID|--all]");
    return wb_cmd_messages(c, a->requeue, a->all, stdout);
}

static int cmd_forget(PGconn *c, const struct wb_config *cfg, struct args *a)
{
    (void)cfg;
    if (a->npos != 1)
        return usage_error("%s", "forget takes one EMAIL");
    return wb_cmd_forget(c, a->pos[0], stdout);
}

static int cmd_export(PGconn *c, const struct wb_config *cfg, struct args *a)
{
    (void)cfg;
    if (a->npos != 1)
        return usage_error("%s", "export takes one EMAIL");
    return wb_cmd_export(c, a->pos[0], stdout);
}

static int cmd_pool(PGconn *c, const struct wb_config *cfg, struct args *a)
{
    if (a->npos)
        return usage_error("%s", "pool takes no arguments");
    return wb_pool(c, cfg, a->json, stdout);
}

static int cmd_report(PGconn *c, const struct wb_config *cfg, struct args *a)
{
    if (a->npos || !a->html)
        return usage_error("%s", "report takes --html FILE [--since DATE]");
    if (a->since && !wb_report_date_valid(a->since))
        return usage_error("report: --since \"%s\" is not a date (YYYY-MM-DD)", a->since);
    if (sync_sequences(c, cfg) < 0)
        return WB_EXIT_FAIL;
    return wb_report_html(c, cfg, a->html, a->since);
}

static int cmd_rescore(PGconn *c, const struct wb_config *cfg, struct args *a)
{
    if (a->npos)
        return usage_error("%s", "rescore takes no arguments");
    struct wb_scoring sc;
    wb_scoring_from_config(cfg, &sc);
    int rc = wb_scoring_sync(c, &sc);
    wb_scoring_free(&sc);
    if (rc < 0)
        return WB_EXIT_FAIL;
    if (rc == 1)
        printf("scoring weights or half-life changed since the last sync\n");
    return wb_rescore(c, stdout);
}

static int cmd_login(PGconn *c, const struct wb_config *cfg, struct args *a)
{
    if (a->npos != 1)
        return usage_error("%s", "login takes one SENDER");
    return wb_cmd_login(c, cfg, a->pos[0], stdout, stderr);
}

static int cmd_senders(PGconn *c, const struct wb_config *cfg, struct args *a)
{
    if (a->npos)
        return usage_error("%s", "senders takes no arguments");
    return wb_cmd_senders(c, cfg, a->json, stdout);
}

/* One of SEQUENCE, --sender S, --email E [--sequence S]. */
static int cmd_pause_or_resume(PGconn *c, const struct wb_config *cfg, struct args *a,
                               bool pause)
{
    int forms = (a->npos == 1) + (a->sender != NULL) + (a->nemails == 1);
    if (forms != 1 || a->npos > 1 || a->nemails > 1 || (a->reason && !a->sender) ||
        (!pause && a->reason) || (a->sequence && a->nemails != 1))
        return usage_error("%s", pause ? "pause takes SEQUENCE, --sender S [--reason TEXT] "
                                         "or --email E [--sequence S]"
                                       : "resume takes SEQUENCE, --sender S or --email E "
                                         "[--sequence S]");
    if (a->sender)
        return wb_cmd_pause_sender(c, cfg, a->sender, pause, a->reason, stdout, stderr);
    if (a->nemails)
        return wb_cmd_pause_person(c, a->emails[0], a->sequence, pause, stdout, stderr);
    return wb_cmd_pause_sequence(c, cfg, a->pos[0], pause, stdout, stderr);
}

static int cmd_preview(PGconn *c, const struct wb_config *cfg, struct args *a)
{
    char *end = NULL;
    long step = a->step ? strtol(a->step, &end, 10) : 1;
    if (a->npos != 1 || a->nemails != 1 || (a->step && (*end || step < 1 || step > 1000)))
        return usage_error("%s", "preview takes SEQUENCE --email E [--step N] [--out FILE]");
    return wb_cmd_preview(c, cfg, a->pos[0], a->emails[0], (int)step, a->out, stdout, stderr);
}

static int cmd_test_send(PGconn *c, const struct wb_config *cfg, struct args *a)
{
    if (a->npos != 1 || !a->to || a->nemails > 1)
        return usage_error("%s", "test-send takes SEQUENCE --to ADDR [--email E]");
    return wb_cmd_test_send(c, cfg, a->pos[0], a->to, a->nemails ? a->emails[0] : NULL, stdout,
                            stderr);
}

static int cmd_unenroll(PGconn *c, const struct wb_config *cfg, struct args *a)
{
    (void)cfg;
    if (a->npos != 1)
        return usage_error("%s", "unenroll takes one EMAIL [--sequence S]");
    return wb_cmd_unenroll(c, a->pos[0], a->sequence, stdout, stderr);
}

static int cmd_tasks(PGconn *c, const struct wb_config *cfg, struct args *a)
{
    if (a->npos)
        return usage_error("%s", "tasks takes [--sender S] [--json]");
    return wb_cmd_tasks(c, cfg, a->sender, a->json, stdout, stderr);
}

static int cmd_done(PGconn *c, const struct wb_config *cfg, struct args *a)
{
    (void)cfg;
    if (a->npos != 1)
        return usage_error("%s", "done takes one TASK_ID [--skip]");
    return wb_cmd_done(c, a->pos[0], a->skip, stdout, stderr);
}

static int cmd_pause(PGconn *c, const struct wb_config *cfg, struct args *a)
{
    return cmd_pause_or_resume(c, cfg, a, true);
}

static int cmd_resume(PGconn *c, const struct wb_config *cfg, struct args *a)
{
    return cmd_pause_or_resume(c, cfg, a, false);
}

static int cmd_plan(PGconn *c, const struct wb_config *cfg, struct args *a)
{
    char *end = NULL;
    long days = a->days ? strtol(a->days, &end, 10) : 14;
    if (a->npos != 1 || (a->days && (end == a->days || *end || days < 1 || days > 366)))
        return usage_error("%s", "plan takes SEQUENCE [--days N] [--json], N from 1 to 366");
    return wb_cmd_plan(c, cfg, a->pos[0], (int)days, a->json, stdout, stderr);
}

struct command {
    const char *name;
    int (*run)(PGconn *c, const struct wb_config *cfg, struct args *a);
};

static const struct command commands[] = {
    {"migrate", cmd_migrate}, {"import", cmd_import}, {"enroll", cmd_enroll},
    {"stats", cmd_stats},     {"show", cmd_show},     {"suppress", cmd_suppress},
    {"handoff", cmd_handoff}, {"webhooks", cmd_webhooks}, {"messages", cmd_messages},
    {"forget", cmd_forget},   {"export", cmd_export},
    {"pool", cmd_pool},       {"report", cmd_report},
    {"rescore", cmd_rescore}, {"senders", cmd_senders},
    {"login", cmd_login},     {"pause", cmd_pause},   {"resume", cmd_resume},
    {"unenroll", cmd_unenroll}, {"preview", cmd_preview}, {"test-send", cmd_test_send},
    {"plan", cmd_plan},       {"tasks", cmd_tasks},   {"done", cmd_done},
};

/* The files, then the OAuth senders' token files (a loose one is the
 * daemon's exit 78 too). */
static int check_config(const char *path)
{
    int rc = wb_check_config(path, stdout, stderr);
    if (rc)
        return rc;
    struct wb_config *cfg = load_config(path);
    if (!cfg)
        return WB_EXIT_CONFIG;
    size_t bad = wb_oauth_check_token_files(cfg, stdout, stderr);
    wb_config_free(cfg);
    return bad ? WB_EXIT_CONFIG : 0;
}

/* `ats check` needs the vendor, not the database. */
static int ats(struct args *a)
{
    if (a->npos != 1 || strcmp(a->pos[0], "check"))
        return usage_error("%s", "ats takes one subcommand: check");
    struct wb_config *cfg = load_config(a->config);
    if (!cfg)
        return WB_EXIT_CONFIG;
    int rc = wb_cmd_ats_check(cfg, stdout, stderr);
    wb_config_free(cfg);
    return rc;
}

static int dispatch(struct args *a)
{
    if (!strcmp(a->cmd, "check-config"))
        return check_config(a->config);
    if (!strcmp(a->cmd, "ats"))
        return ats(a);
    const struct command *cmd = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(commands[i].name, a->cmd))
            cmd = &commands[i];
    if (!cmd)
        return usage_error("unknown command \"%s\"", a->cmd);
    struct wb_config *cfg = load_config(a->config);
    if (!cfg)
        return WB_EXIT_CONFIG;
    int rc = WB_EXIT_UNAVAILABLE;
    PGconn *c = wb_db_connect(cfg->database);
    if (c) {
        rc = cmd->run(c, cfg, a);
        PQfinish(c);
    }
    wb_config_free(cfg);
    return rc;
}

int main(int argc, char **argv)
{
    struct args a = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc < 0)
        rc = dispatch(&a);
    free(a.pos);
    free(a.tags);
    free(a.emails);
    return rc;
}
