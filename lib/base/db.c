/* Blocking libpq helpers for the command-line tool. */
#include "warmbench/db.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "warmbench/util.h"

const char *wb_db_conninfo(const char *database)
{
    if (database)
        return database;
    const char *url = getenv("DATABASE_URL");
    return url ? url : "";
}

/* JIT compilation pays off for long analytic scans; warmbench's statements
 * are either short (the daemon's, the CLI's lookups) or report queries
 * whose cost the planner overestimates on small or empty tables, so
 * compiling them cost seconds and saved nothing (README "Scale"). The
 * user's own options (conninfo, else PGOPTIONS, which libpq would ignore
 * once options is given) follow ours, so they can turn it back on. */
#define WB_DB_OPTIONS "-c jit=off"

char *wb_db_options(const char *conninfo)
{
    const char *user = NULL;
    PQconninfoOption *opts = NULL;
    if (conninfo && *conninfo) {
        char *err = NULL;
        opts = PQconninfoParse(conninfo, &err);
        PQfreemem(err); /* a bare database name, or bad: connecting reports it */
    }
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (!strcmp(o->keyword, "options") && o->val && *o->val)
            user = o->val;
    if (!user)
        user = getenv("PGOPTIONS");
    char *s = user && *user ? wb_xasprintf("%s %s", WB_DB_OPTIONS, user)
                            : wb_xstrdup(WB_DB_OPTIONS);
    PQconninfoFree(opts);
    return s;
}

PGconn *wb_db_connect(const char *database)
{
    /* dbname with expand_dbname takes a URL or key=value string whole (""
     * leaves libpq's environment); options after it replaces the string's. */
    const char *conninfo = wb_db_conninfo(database);
    char *options = wb_db_options(conninfo);
    const char *keys[] = {"dbname", "options", NULL};
    const char *vals[] = {conninfo, options, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    free(options);
    if (PQstatus(c) != CONNECTION_OK) {
        /* libpq's message names host and port, never the password. */
        fprintf(stderr, "warmbench: cannot connect to the database: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, NULL, NULL);
    return c;
}

void wb_db_report(const char *what, const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    fprintf(stderr, "warmbench: %s: %s %s\n", what, state ? state : "?",
            msg ? msg : (res ? PQresultErrorMessage(res) : "no result"));
}

PGresult *wb_db_exec(PGconn *c, ExecStatusType want, const char *what, const char *sql,
                     int nparams, const char *const *params)
{
    PGresult *r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != want) {
        if (r)
            wb_db_report(what, r);
        else
            fprintf(stderr, "warmbench: %s: %s", what, PQerrorMessage(c));
        PQclear(r);
        return NULL;
    }
    return r;
}

int wb_db_cmd(PGconn *c, const char *what, const char *sql, int nparams,
              const char *const *params)
{
    PGresult *r = wb_db_exec(c, PGRES_COMMAND_OK, what, sql, nparams, params);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

json_t *wb_db_json(PGconn *c, const char *what, const char *sql, int nparams,
                   const char *const *params)
{
    PGresult *r = wb_db_exec(c, PGRES_TUPLES_OK, what, sql, nparams, params);
    if (!r)
        return NULL;
    json_error_t err;
    json_t *doc = json_loads(PQgetvalue(r, 0, 0), 0, &err);
    PQclear(r);
    if (!doc)
        fprintf(stderr, "warmbench: %s: bad JSON from the database: %s\n", what, err.text);
    return doc;
}
