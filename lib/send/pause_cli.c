/* pause / resume a sender: see pause_cli.h. */
#include "warmbench/pause_cli.h"
#include "warmbench/exitcodes.h"
#include "warmbench/util.h"
#include <stdlib.h>
#include <string.h>

int wb_cmd_pause_sender(PGconn *c, const struct wb_config *cfg, const char *sender, bool pause,
                        const char *reason, FILE *out, FILE *err)
{
    if (!wb_config_sender(cfg, sender)) {
        fprintf(err, "warmbench: no sender \"%s\" in the configuration\n", sender);
        return WB_EXIT_USAGE;
    }
    char *why = NULL;
    if (pause) {
        why = wb_xstrdup(reason && *reason ? reason : "paused by an operator");
        wb_text_clean_inplace(why, strlen(why));
    }
    const char *p[] = {sender, why};
    PGresult *r = PQexecParams(c, "SELECT wb_sender_set_paused($1, $2)", 2, NULL, p, NULL, NULL, 0);
    free(why);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(err, "warmbench: %s", PQerrorMessage(c));
        PQclear(r);
        return WB_EXIT_UNAVAILABLE;
    }
    bool changed = !strcmp(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    if (pause)
        fprintf(out, changed ? "sender %s paused: nothing new is claimed for it\n"
                             : "sender %s was paused already\n", sender);
    else
        fprintf(out, changed ? "sender %s resumed: its guard counts afresh from now\n"
                             : "sender %s was not paused\n", sender);
    return 0;
}

int wb_cmd_pause_sequence(PGconn *c, const struct wb_config *cfg, const char *sequence,
                          bool pause, FILE *out, FILE *err)
{
    if (!wb_config_sequence(cfg, sequence)) {
        fprintf(err, "warmbench: no sequence \"%s\" in %s\n", sequence, cfg->sequences_dir);
        return WB_EXIT_USAGE;
    }
    const char *p[] = {sequence, pause ? "true" : "false"};
    PGresult *r = PQexecParams(c, "SELECT wb_pause_sequence($1, $2::boolean)", 2, NULL, p, NULL,
                               NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(err, "warmbench: %s", PQerrorMessage(c));
        PQclear(r);
        return WB_EXIT_UNAVAILABLE;
    }
    bool changed = !strcmp(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    if (pause)
        fprintf(out, changed ? "sequence %s paused: nothing new is claimed or started for it\n"
                             : "sequence %s was paused already (or was never run)\n", sequence);
    else
        fprintf(out, changed ? "sequence %s resumed: steps due meanwhile are re-timed into its "
                               "window\n"
                             : "sequence %s was not paused\n", sequence);
    return 0;
}

/* pause/resume --email and unenroll: one function each, a count back. */
static int pause_person_sql(PGconn *c, const char *sql, const char *email, const char *sequence,
                            const char *flag, long *n, FILE *err)
{
    const char *p[] = {email, sequence, flag};
    PGresult *r = PQexecParams(c, sql, flag ? 3 : 2, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(err, "warmbench: %s", PQerrorMessage(c));
        PQclear(r);
        return WB_EXIT_UNAVAILABLE;
    }
    *n = atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

int wb_cmd_pause_person(PGconn *c, const char *email, const char *sequence, bool pause, FILE *out,
                        FILE *err)
{
    long n = 0;
    int rc = pause_person_sql(c, "SELECT wb_pause_person($1, $2, $3::boolean)", email, sequence,
                              pause ? "true" : "false", &n, err);
    if (rc)
        return rc;
    fprintf(out, "%s %ld enrollment(s) of %s%s%s\n", pause ? "paused" : "resumed", n, email,
            sequence ? " in " : "", sequence ? sequence : "");
    return 0;
}

int wb_cmd_unenroll(PGconn *c, const char *email, const char *sequence, FILE *out, FILE *err)
{
    long n = 0;
    int rc = pause_person_sql(c, "SELECT wb_unenroll($1, $2)", email, sequence, NULL, &n, err);
    if (rc)
        return rc;
    fprintf(out, "ended %ld enrollment(s) of %s%s%s; nothing more is sent\n", n, email,
            sequence ? " in " : "", sequence ? sequence : "");
    return 0;
}
