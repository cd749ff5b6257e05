/* CSV import of candidates (SPEC "Commands" -> import): the file is
 * streamed into PostgreSQL with COPY, then validated, deduplicated and
 * upserted set-based in one transaction. */
#ifndef WB_IMPORT_H
#define WB_IMPORT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <libpq-fe.h>

/* The largest field accepted, in bytes; longer ones reject their row. */
#define WB_IMPORT_MAX_FIELD 65536

struct wb_import_result {
    long rows;        /* data rows read (the header excluded) */
    long imported;    /* new candidates */
    long updated;     /* existing candidates updated */
    long rejected;    /* rows reported and skipped */
    long duplicates;  /* earlier rows for an address repeated later in the file */
};

/* Imports path; tags (ntags of them) are added to every row's tags. Each
 * rejected or duplicate row is reported to `report` as "FILE:LINE: reason".
 * Returns 0; 65 (WB_EXIT_DATAERR) when the header lacks email or every data
 * row was rejected; 1 on file or database errors (reported to stderr). */
int wb_import(PGconn *c, const char *path, char *const *tags, size_t ntags,
              struct wb_import_result *res, FILE *report);

/* Prints the closing summary; the last line is
 * "imported N, updated M, rejected K". */
void wb_import_print_summary(const struct wb_import_result *res, FILE *out);
/* Whether an added_at cell (spaces trimmed) is a date the import takes:
 * YYYY-MM-DD (midnight UTC) or an RFC 3339 time with its offset
 * (YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)), a real calendar day,
 * year 1970 or later. */
bool wb_import_date_ok(const char *p, size_t n);

#endif
