/* `warmbench show EMAIL`: the candidate, enrollments and timeline, built as
 * one JSON document by PostgreSQL. */
#include "warmbench/db.h"
#include "warmbench/exitcodes.h"
#include "warmbench/show.h"
#include <jansson.h>
#include <stdlib.h>

static const char show_sql[] =
    "SELECT jsonb_build_object("
    " 'candidate', to_jsonb(c) - 'id',"
    " 'score', wb_score_now(c.score, c.score_at),"
    " 'suppressed', EXISTS (SELECT 1 FROM suppressions s WHERE s.email_hash = wb_email_hash(c.email)),"
    " 'enrollments', coalesce((SELECT jsonb_agg(jsonb_build_object('sequence', e.sequence_id,"
    "    'state', e.state, 'steps_sent', e.step, 'next_due_at', e.next_due_at,"
    "    'stop_reason', e.stop_reason, 'enrolled_at', e.created_at,"
    /* An out-of-office hold: its day in the window's zone (sql/functions/051_ooo.sql). */
    "    'ooo_until', CASE WHEN e.ooo_until > now() THEN e.ooo_until END,"
    "    'ooo_until_day', CASE WHEN e.ooo_until > now() THEN to_char(e.ooo_until AT TIME ZONE"
    "     wb_window_zone(s.definition, c.timezone), 'YYYY-MM-DD') END) ORDER BY e.created_at)"
    "   FROM enrollments e LEFT JOIN sequences s ON s.id = e.sequence_id"
    "   WHERE e.candidate_id = c.id), '[]'),"
    /* The person's own id in each native ATS (025's candidate_ats). */
    " 'ats', coalesce((SELECT jsonb_object_agg(a.kind, a.ats_id) FROM candidate_ats a"
    "   WHERE a.candidate_id = c.id), '{}'),"
    " 'timeline', coalesce((SELECT jsonb_agg(jsonb_build_object('at', v.at, 'type', v.type,"
    "    'sequence', v.sequence_id, 'step', v.step, 'machine', v.machine, 'detail', v.detail)"
    "    ORDER BY v.at, v.id)"
    "   FROM events v WHERE v.candidate_id = c.id), '[]'))"
    " FROM candidates c WHERE lower(c.email) = lower($1)";

static void show_print_text(FILE *out, json_t *doc)
{
    json_t *c = json_object_get(doc, "candidate");
    fprintf(out, "%s %s <%s>%s\n", json_string_value(json_object_get(c, "first_name")),
            json_string_value(json_object_get(c, "last_name")),
            json_string_value(json_object_get(c, "email")),
            json_is_true(json_object_get(doc, "suppressed")) ? " (suppressed)" : "");
    const char *keys[] = {"title", "company", "location", "timezone", "consent", "source"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = json_string_value(json_object_get(c, keys[i]));
        if (v && *v)
            fprintf(out, "  %-9s %s\n", keys[i], v);
    }
    char *tags = json_dumps(json_object_get(c, "tags"), JSON_COMPACT);
    fprintf(out, "  %-9s %s\n", "tags", tags ? tags : "[]");
    free(tags);
    /* The score as of now (the stored one is as of its last event). */
    fprintf(out, "  %-9s %.2f\n", "score", json_number_value(json_object_get(doc, "score")));
    const char *kind;
    json_t *e;
    json_object_foreach(json_object_get(doc, "ats"), kind, e)
        fprintf(out, "  %-9s %s id %s\n", "ats", kind, json_string_value(e));
    size_t i;
    fprintf(out, "enrollments:\n");
    json_array_foreach(json_object_get(doc, "enrollments"), i, e) {
        fprintf(out, "  %s: %s, %lld step(s) sent", json_string_value(json_object_get(e, "sequence")),
                json_string_value(json_object_get(e, "state")),
                (long long)json_integer_value(json_object_get(e, "steps_sent")));
        const char *due = json_string_value(json_object_get(e, "next_due_at"));
        if (due)
            fprintf(out, ", next due %s", due);
        const char *ooo = json_string_value(json_object_get(e, "ooo_until_day"));
        if (ooo)
            fprintf(out, ", paused until %s (out of office)", ooo);
        fputc('\n', out);
    }
    fprintf(out, "timeline:\n");
    json_array_foreach(json_object_get(doc, "timeline"), i, e) {
        char *detail = json_dumps(json_object_get(e, "detail"), JSON_COMPACT);
        const char *seq = json_string_value(json_object_get(e, "sequence"));
        fprintf(out, "  %s %-11s %s", json_string_value(json_object_get(e, "at")),
                json_string_value(json_object_get(e, "type")), seq ? seq : "-");
        if (json_is_integer(json_object_get(e, "step")))
            fprintf(out, " step %lld", (long long)json_integer_value(json_object_get(e, "step")));
        if (json_is_true(json_object_get(e, "machine")))
            fprintf(out, " (machine)");
        if (detail && json_object_size(json_object_get(e, "detail")))
            fprintf(out, " %s", detail);
        fputc('\n', out);
        free(detail);
    }
}

int wb_show(PGconn *c, const char *email, bool json, FILE *out)
{
    const char *p[] = {email};
    PGresult *r = wb_db_exec(c, PGRES_TUPLES_OK, "reading candidate", show_sql, 1, p);
    if (!r)
        return WB_EXIT_FAIL;
    if (PQntuples(r) == 0) {
        PQclear(r);
        fprintf(stderr, "warmbench: show: no candidate with address %s\n", email);
        return WB_EXIT_DATAERR;
    }
    json_t *doc = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
    PQclear(r);
    if (!doc)
        return WB_EXIT_FAIL;
    if (json) {
        json_dumpf(doc, out, JSON_INDENT(2) | JSON_SORT_KEYS);
        fputc('\n', out);
    } else {
        show_print_text(out, doc);
    }
    json_decref(doc);
    return WB_EXIT_OK;
}
