/* Numbered migrations from sql/: each applied once, in its own transaction,
 * recorded in schema_migrations; an advisory lock keeps two concurrent runs
 * from both applying one. */
#include "warmbench/db.h"
#include "warmbench/buf.h"
#include "warmbench/util.h"
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIGRATE_LOCK_KEY "7426351"

struct migration {
    int version;
    char *name; /* file name */
};

static int cmp_mig(const void *a, const void *b)
{
    const struct migration *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

static void free_migs(struct migration *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(m[i].name);
    free(m);
}

/* Lists NNN_*.sql in dir, sorted by number. */
static int list_migrations(const char *dir, struct migration **out, size_t *n)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "warmbench: cannot read migrations in %s: %s\n", dir, strerror(errno));
        return -1;
    }
    struct migration *v = NULL;
    size_t cnt = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        char *end;
        long ver = strtol(e->d_name, &end, 10);
        if (len < 5 || strcmp(e->d_name + len - 4, ".sql") || end == e->d_name || *end != '_')
            continue;
        v = wb_xrealloc(v, (cnt + 1) * sizeof *v);
        v[cnt].version = (int)ver;
        v[cnt].name = wb_xstrdup(e->d_name);
        cnt++;
    }
    closedir(d);
    qsort(v, cnt, sizeof *v, cmp_mig);
    for (size_t i = 1; i < cnt; i++)
        if (v[i].version == v[i - 1].version) {
            fprintf(stderr, "warmbench: %s/%s: duplicate migration number %d\n", dir,
                    v[i].name, v[i].version);
            free_migs(v, cnt);
            return -1;
        }
    *out = v;
    *n = cnt;
    return 0;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0;
    char chunk[8192];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        buf = wb_xrealloc(buf, len + got + 1);
        memcpy(buf + len, chunk, got);
        len += got;
    }
    fclose(f);
    if (!buf)
        buf = wb_xstrdup("");
    else
        buf[len] = '\0';
    return buf;
}

static int applied_version(PGconn *c, int version)
{
    char v[16];
    snprintf(v, sizeof v, "%d", version);
    const char *p[] = {v};
    PGresult *r = wb_db_exec(c, PGRES_TUPLES_OK, "reading schema_migrations",
                             "SELECT 1 FROM schema_migrations WHERE version = $1", 1, p);
    if (!r)
        return -1;
    int found = PQntuples(r) > 0;
    PQclear(r);
    return found;
}

static int apply_one(PGconn *c, const char *dir, const struct migration *m)
{
    char *path = wb_path_join(dir, m->name);
    char *sql = read_file(path);
    if (!sql) {
        fprintf(stderr, "warmbench: cannot read %s: %s\n", path, strerror(errno));
        free(path);
        return -1;
    }
    char v[16];
    snprintf(v, sizeof v, "%d", m->version);
    const char *p[] = {v, m->name};
    int rc = -1;
    if (wb_db_cmd(c, "BEGIN", "BEGIN", 0, NULL) < 0)
        goto out;
    /* Multi-statement text must go through the simple protocol. */
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        char what[512];
        snprintf(what, sizeof what, "migration %s", path);
        wb_db_report(what, r);
        PQclear(r);
        PQclear(PQexec(c, "ROLLBACK"));
        goto out;
    }
    PQclear(r);
    if (wb_db_cmd(c, "recording migration",
                  "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2, p) < 0 ||
        wb_db_cmd(c, "COMMIT", "COMMIT", 0, NULL) < 0) {
        PQclear(PQexec(c, "ROLLBACK"));
        goto out;
    }
    rc = 0;
out:
    free(sql);
    free(path);
    return rc;
}

static int ensure_table(PGconn *c)
{
    return wb_db_cmd(c, "creating schema_migrations",
                     "CREATE TABLE IF NOT EXISTS schema_migrations ("
                     " version integer PRIMARY KEY, name text NOT NULL,"
                     " applied_at timestamptz NOT NULL DEFAULT now())",
                     0, NULL);
}

int wb_migrate(PGconn *c, const char *dir, int *applied)
{
    struct migration *m;
    size_t n;
    *applied = 0;
    if (list_migrations(dir, &m, &n) < 0)
        return -1;
    int rc = -1;
    /* Session lock: a second migrate waits here, then finds nothing to do. */
    PGresult *lock = wb_db_exec(c, PGRES_TUPLES_OK, "taking the migration lock",
                                "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", 0, NULL);
    if (!lock)
        goto out;
    PQclear(lock);
    if (ensure_table(c) < 0)
        goto unlock;
    for (size_t i = 0; i < n; i++) {
        int done = applied_version(c, m[i].version);
        if (done < 0)
            goto unlock;
        if (done)
            continue;
        if (apply_one(c, dir, &m[i]) < 0)
            goto unlock;
        printf("applied %s\n", m[i].name);
        (*applied)++;
    }
    rc = 0;
unlock:
    PQclear(PQexec(c, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")"));
out:
    free_migs(m, n);
    return rc;
}

int wb_migrations_current(PGconn *c, const char *dir)
{
    struct migration *m;
    size_t n;
    if (list_migrations(dir, &m, &n) < 0)
        return -1;
    int rc = 1;
    PGresult *r = PQexec(c, "SELECT to_regclass('schema_migrations') IS NOT NULL");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = -1;
    } else if (strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
        rc = n ? 0 : 1;
    } else {
        for (size_t i = 0; i < n && rc == 1; i++) {
            int done = applied_version(c, m[i].version);
            rc = done < 0 ? -1 : done;
        }
    }
    PQclear(r);
    free_migs(m, n);
    return rc;
}

const char *wb_sql_dir(void)
{
    const char *e = getenv("WARMBENCH_SQL_DIR");
    return e && *e ? e : WB_SQL_DIR;
}

char *wb_migrations_versions(const char *dir, size_t *n)
{
    struct migration *m;
    if (list_migrations(dir, &m, n) < 0)
        return NULL;
    struct wb_buf b;
    wb_buf_init(&b);
    wb_buf_putc(&b, '{');
    for (size_t i = 0; i < *n; i++)
        wb_buf_printf(&b, "%s%d", i ? "," : "", m[i].version);
    wb_buf_putc(&b, '}');
    free_migs(m, *n);
    return b.data;
}
