/* Blocking database helpers for the command-line tool (never used on the
 * daemon's loop, which goes through pg_loop). */
#ifndef WB_DB_H
#define WB_DB_H
#include <jansson.h>
#include <libpq-fe.h>

/* Connects with the configured database string (the config's `database`,
 * NULL when it has none: then libpq's environment, DATABASE_URL first,
 * then PGHOST, ...). On failure returns NULL and prints why to stderr. */
PGconn *wb_db_connect(const char *database);
/* The connection string to use: database, else $DATABASE_URL, else ""
 * (libpq's PG* variables). */
const char *wb_db_conninfo(const char *database);
/* The libpq "options" every warmbench connection uses (the CLI's here,
 * the daemon's in pg_loop): "-c jit=off", then the options conninfo gives,
 * else $PGOPTIONS, so a user's own settings come later and win. malloc'd. */
char *wb_db_options(const char *conninfo);

/* Prints "what: SQLSTATE message" for a failed result to stderr. */
void wb_db_report(const char *what, const PGresult *res);
/* Runs sql with text params; returns the result when its status is
 * `want`, else reports, clears it and returns NULL. */
PGresult *wb_db_exec(PGconn *c, ExecStatusType want, const char *what, const char *sql,
                     int nparams, const char *const *params);
/* Runs a statement whose one value is a JSON document (the reports build
 * theirs in SQL) and parses it; NULL after reporting, naming what. */
json_t *wb_db_json(PGconn *c, const char *what, const char *sql, int nparams,
                   const char *const *params);
/* Runs a command that returns no rows; 0 on success, -1 reported. */
int wb_db_cmd(PGconn *c, const char *what, const char *sql, int nparams,
              const char *const *params);

/* Applies pending migrations from dir (files NNN_name.sql, in order), each
 * in its own transaction, under an advisory lock; then dir/functions/NAME.sql
 * (every function, trigger and view, in file-name order) in one
 * transaction when a migration ran or their hash differs from the one the
 * database records. Sets *applied to the number of migrations applied.
 * Returns 0, or -1 after reporting. */
int wb_migrate(PGconn *c, const char *dir, int *applied);
/* Where sql/ is: $WARMBENCH_SQL_DIR, else the build/install default. */
const char *wb_sql_dir(void);
/* 1 when every migration in dir is applied and the functions applied are
 * dir/functions/'s, 0 when not, -1 on error. */
int wb_migrations_current(PGconn *c, const char *dir);

/* The versions of the migrations in dir as a PostgreSQL int[] literal
 * ("{1,2,5}", malloc'd) and their count in *n; NULL when unreadable. */
char *wb_migrations_versions(const char *dir, size_t *n);

/* The sha256 of dir/functions/NAME.sql (each file's name and text, in name
 * order) as 64 hex digits into hex, the number of files in *n (when n).
 * -1 after reporting when the folder or a file is unreadable. */
int wb_functions_hash(const char *dir, char hex[65], size_t *n);
/* The daemon's schema check. $1: int[] of the migration versions, $2: the
 * functions hash. One row: how many of them are applied, and whether the
 * functions applied are those (t/f). Fails when the database was never
 * migrated (or only by a warmbench older than sql/functions/). */
extern const char *const wb_schema_check_sql;

#endif
