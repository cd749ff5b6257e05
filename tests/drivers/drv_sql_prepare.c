/* Prepares every SQL statement the programs use against a migrated
 * database: catches syntax and type errors in statements that a given test
 * might not reach. Usage: drv_sql_prepare CONNINFO */
#include "warmbench/ats_in.h"
#include "warmbench/db.h"
#include "warmbench/enroll.h"
#include "warmbench/queries.h"
#include "warmbench/suppress.h"
#include <libpq-fe.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 2)
        return 64;
    PGconn *c = PQconnectdb(argv[1]);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "%s", PQerrorMessage(c));
        return 69;
    }
    struct wb_enroll_query q;
    struct wb_config cfg = {0};
    struct wb_sequence s = {.id = "x"};
    (void)cfg;
    wb_enroll_query_build(&s, NULL, 0, NULL, 0, "cli", &q);
    const struct { const char *name, *sql; } all[] = {
        {"claim", wb_q_claim},                   {"send_window", wb_q_send_window},
        {"apply", wb_q_apply_outcomes},
        {"release", wb_q_release},               {"owner_lock", wb_q_owner_lock},
        {"recover", wb_q_recover},               {"next_wake", wb_q_next_wake},
        {"enroll", q.sql},
        {"sequence_sync", wb_sequence_sync_sql}, {"suppress", wb_suppress_sql},
        {"schema_check", wb_schema_check_sql},
        {"ats_rejected", wb_ats_event_sql("candidate.rejected")},
        {"ats_applied", wb_ats_event_sql("candidate.applied")},
        {"ats_hired", wb_ats_event_sql("candidate.hired")},
    };
    int failed = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        PGresult *r = PQprepare(c, all[i].name, all[i].sql, 0, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            printf("FAIL %s: %s", all[i].name, PQresultErrorMessage(r));
            failed++;
        } else {
            printf("ok %s\n", all[i].name);
        }
        PQclear(r);
    }
    wb_enroll_query_free(&q);
    PQfinish(c);
    return failed ? 1 : 0;
}
