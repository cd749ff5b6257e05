/* pause / resume / unenroll: see pause_cli.h. */
#include "warmbench/pause_cli.h"
#include "warmbench/exitcodes.h"
#include "warmbench/util.h"
#include <stdlib.h>
#include <string.h>

/* Runs one of the pause functions (sql/functions/066, 068): 0 and its
 * one value in *v (malloc'd), or 69 with the database's message said. */
static int pause_call(PGconn *c, const char *sql, int n, const char *const *p, char **v,
                      FILE *err)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        fprintf(err, "warmbench: %s", PQerrorMessage(c));
        PQclear(r);
        return WB_EXIT_UNAVAILABLE;
    }
    *v = wb_xstrdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

/* 0 and whether it changed anything, or an exit code. */
static int pause_changed(PGconn *c, const char *sql, const char *a, const char *b,
                         bool *changed, FILE *err)
{
    const char *p[] = {a, b};
    char *v = NULL;
    int rc = pause_call(c, sql, 2, p, &v, err);
    *changed = !rc && !strcmp(v, "t");
    free(v);
    return rc;
}

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
    bool changed;
    int rc = pause_changed(c, "SELECT wb_sender_set_paused($1, $2)", sender, why, &changed, err);
    free(why);
    if (rc)
        return rc;
    if (pause)
        fprintf(out, changed ? "sender %s paused: nothing new is claimed for it\n"
                             : "sender %s was paused already\n", sender);
    else
        fprintf(out, changed ? "sender %s resumed: its guard counts afresh from now\n"
                             : "sender %s was not paused\n", sender);
    return 0;
}

/* What wb_pause_sequence_cli answered (sql/functions/068_pause.sql), said;
 * a resume the sequence's file overrides exits 1. */
static int pause_say_sequence(const char *v, const struct wb_sequence *s, FILE *out, FILE *err)
{
    static const struct { const char *v, *say; } says[] = {
        {"paused", "sequence %s paused: nothing new is claimed or started for it\n"},
        {"paused_in_file", "sequence %s paused (its file pauses it too)\n"},
        {"already", "sequence %s was paused already\n"},
        {"unknown", "sequence %s has never run: nothing to pause or resume\n"},
        {"resumed", "sequence %s resumed: steps due meanwhile are re-timed into its window\n"},
        {"not_paused", "sequence %s was not paused\n"}};
    if (!strcmp(v, "in_file")) {
        fprintf(err, "warmbench: sequence %s is paused in its file (%s: \"paused\": true); "
                     "remove that and reload the daemon (SIGHUP) to resume it\n", s->id, s->file);
        return WB_EXIT_FAIL;
    }
    for (size_t i = 0; i < sizeof says / sizeof *says; i++)
        if (!strcmp(v, says[i].v)) {
            fprintf(out, says[i].say, s->id);
            return 0;
        }
    fprintf(err, "warmbench: unexpected answer from the database: %s\n", v);
    return WB_EXIT_FAIL;
}

int wb_cmd_pause_sequence(PGconn *c, const struct wb_config *cfg, const char *sequence,
                          bool pause, FILE *out, FILE *err)
{
    const struct wb_sequence *s = wb_config_sequence(cfg, sequence);
    if (!s) {
        fprintf(err, "warmbench: no sequence \"%s\" in %s\n", sequence, cfg->sequences_dir);
        return WB_EXIT_USAGE;
    }
    const char *p[] = {sequence, pause ? "true" : "false"};
    char *v = NULL;
    int rc = pause_call(c, "SELECT wb_pause_sequence_cli($1, $2::boolean)", 2, p, &v, err);
    if (!rc)
        rc = pause_say_sequence(v, s, out, err);
    free(v);
    return rc;
}

/* pause/resume --email and unenroll: one function each, a count back. */
static int pause_person_sql(PGconn *c, const char *sql, const char *email, const char *sequence,
                            const char *flag, long *n, FILE *err)
{
    const char *p[] = {email, sequence, flag};
    char *v = NULL;
    int rc = pause_call(c, sql, flag ? 3 : 2, p, &v, err);
    *n = rc ? 0 : atol(v);
    free(v);
    return rc;
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
