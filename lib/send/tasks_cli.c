/* tasks / done: see tasks_cli.h. */
#include "warmbench/tasks_cli.h"
#include "warmbench/db.h"
#include "warmbench/exitcodes.h"
#include "warmbench/util.h"
#include <stdlib.h>
#include <string.h>

static const char list_sql[] =
    "SELECT coalesce(json_agg(json_build_object('id', t.id, 'sender', t.sender,"
    " 'email', t.email, 'name', t.name, 'sequence', t.sequence_id, 'step', t.step,"
    " 'text', t.text, 'due_since', t.due_since, 'expires_at', t.expires_at,"
    " 'paused', t.paused) ORDER BY t.due_since, t.id), '[]')"
    " FROM wb_task_list($1) t";

enum { NCOL = 9 };
static const char *const HEAD[NCOL] = {"ID", "SENDER", "EMAIL", "NAME", "SEQUENCE", "STEP",
                                       "DUE SINCE", "EXPIRES", "TASK"};
static const char *const KEYS[NCOL] = {"id", "sender", "email", "name", "sequence", "step",
                                       "due_since", "expires_at", "text"};

/* One cell as a line of text: numbers printed, control characters (a
 * task's text may span lines) shown as spaces. */
static char *tc_cell(json_t *row, int k)
{
    json_t *v = json_object_get(row, KEYS[k]);
    char *s = json_is_integer(v) ? wb_xasprintf("%lld", (long long)json_integer_value(v))
                                 : wb_xstrdup(json_is_string(v) ? json_string_value(v) : "");
    for (char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    if (k == NCOL - 1 && json_is_true(json_object_get(row, "paused"))) {
        char *t = wb_xasprintf("(paused) %s", s);
        free(s);
        s = t;
    }
    return s;
}

static void tc_print_table(json_t *rows, FILE *out)
{
    size_t n = json_array_size(rows);
    char **cells = wb_xcalloc(n * NCOL + 1, sizeof *cells);
    int w[NCOL];
    for (int k = 0; k < NCOL; k++) {
        w[k] = (int)strlen(HEAD[k]);
        for (size_t i = 0; i < n; i++) {
            cells[i * NCOL + k] = tc_cell(json_array_get(rows, i), k);
            int len = (int)strlen(cells[i * NCOL + k]);
            w[k] = len > w[k] ? len : w[k];
        }
    }
    /* The last column is not padded: no trailing blanks. */
    for (int k = 0; k < NCOL; k++)
        fprintf(out, k < NCOL - 1 ? "%-*s  " : "%*s\n", k < NCOL - 1 ? w[k] : 0, HEAD[k]);
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < NCOL; k++)
            fprintf(out, k < NCOL - 1 ? "%-*s  " : "%*s\n", k < NCOL - 1 ? w[k] : 0,
                    cells[i * NCOL + k]);
    for (size_t i = 0; i < n * NCOL; i++)
        free(cells[i]);
    free(cells);
}

int wb_cmd_tasks(PGconn *c, const struct wb_config *cfg, const char *sender, bool json,
                 FILE *out, FILE *err)
{
    if (sender && !wb_config_sender(cfg, sender)) {
        fprintf(err, "warmbench: tasks: no sender \"%s\" in the configuration\n", sender);
        return WB_EXIT_USAGE;
    }
    const char *p[] = {sender};
    json_t *rows = wb_db_json(c, "listing tasks", list_sql, 1, p);
    if (!rows)
        return WB_EXIT_UNAVAILABLE;
    if (json) {
        json_dumpf(rows, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', out);
    } else if (json_array_size(rows) == 0) {
        fprintf(out, "no open tasks%s%s\n", sender ? " for " : "", sender ? sender : "");
    } else {
        tc_print_table(rows, out);
    }
    json_decref(rows);
    return WB_EXIT_OK;
}

int wb_cmd_done(PGconn *c, const char *id, bool skip, FILE *out, FILE *err)
{
    if (!wb_is_row_id(id)) {
        fprintf(err, "warmbench: done: \"%s\" is not a task id (a number from "
                     "'warmbench tasks')\n", id);
        return WB_EXIT_USAGE;
    }
    const char *p[] = {id, skip ? "true" : "false"};
    PGresult *r = wb_db_exec(c, PGRES_TUPLES_OK, "closing the task",
                             "SELECT status, detail FROM wb_task_done($1::bigint, $2::boolean)",
                             2, p);
    if (!r)
        return WB_EXIT_UNAVAILABLE;
    if (PQntuples(r) != 1) { /* wb_task_done always answers one row */
        fprintf(err, "warmbench: done: the database gave no answer for task %s\n", id);
        PQclear(r);
        return WB_EXIT_FAIL;
    }
    const char *st = PQgetvalue(r, 0, 0), *why = PQgetvalue(r, 0, 1);
    int rc = WB_EXIT_DATAERR;
    if (!strcmp(st, "unknown")) {
        fprintf(err, "warmbench: done: no task %s\n", id);
    } else if (!strcmp(st, "closed")) {
        fprintf(err, "warmbench: done: task %s is closed already (%s)\n", id, why);
    } else if (!strcmp(st, "ended")) {
        fprintf(err, "warmbench: done: task %s was not needed any more: its enrollment "
                     "ended (%s); it is closed as skipped\n", id, why);
    } else {
        fprintf(out, "task %s %s: %s\n", id, st,
                strcmp(why, "finished") ? "the sequence goes on"
                                        : "that was the last step; the sequence is finished");
        rc = WB_EXIT_OK;
    }
    PQclear(r);
    return rc;
}
