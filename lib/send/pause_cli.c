/* pause / resume a sender: see pause_cli.h. */
#include "warmbench/pause_cli.h"
#include "warmbench/exitcodes.h"
#include "warmbench/util.h"
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
