/* Numbered migrations from sql/: each applied once, in its own transaction,
 * recorded in schema_migrations; an advisory lock keeps two concurrent runs
 * from both applying one. Then sql/functions/: every function, trigger and
 * view as it is now, applied in one transaction whenever its hash differs
 * from the one recorded in schema_functions (README "Schema: migrations and
 * functions"). */
#include "warmbench/db.h"
#include "warmbench/buf.h"
#include "warmbench/util.h"
#include <dirent.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIGRATE_LOCK_KEY "7426351"
#define FUNCTIONS_SUBDIR "functions"

const char *const wb_schema_check_sql =
    "SELECT (SELECT count(*) FROM schema_migrations WHERE version = ANY ($1::integer[])),"
    " coalesce((SELECT f.hash = $2 FROM schema_functions f), false)";

struct mig_migration {
    int version;
    char *name; /* file name */
};

static int mig_cmp_version(const void *a, const void *b)
{
    const struct mig_migration *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

static void mig_free(struct mig_migration *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(m[i].name);
    free(m);
}

/* Lists NNN_*.sql in dir, sorted by number. */
static int mig_list(const char *dir, struct mig_migration **out, size_t *n)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "warmbench: cannot read migrations in %s: %s\n", dir, strerror(errno));
        return -1;
    }
    struct mig_migration *v = NULL;
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
    qsort(v, cnt, sizeof *v, mig_cmp_version);
    for (size_t i = 1; i < cnt; i++)
        if (v[i].version == v[i - 1].version) {
            fprintf(stderr, "warmbench: %s/%s: duplicate migration number %d\n", dir,
                    v[i].name, v[i].version);
            mig_free(v, cnt);
            return -1;
        }
    *out = v;
    *n = cnt;
    return 0;
}

static char *mig_read_file(const char *path)
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

static int mig_applied_version(PGconn *c, int version)
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

/* Runs a file's statements (the simple protocol: multi-statement text);
 * a file of comments only is fine. 0, or -1 after reporting. */
static int mig_run_sql(PGconn *c, const char *path, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        char what[512];
        snprintf(what, sizeof what, "%s", path);
        wb_db_report(what, r);
        PQclear(r);
        return -1;
    }
    PQclear(r);
    return 0;
}

static int mig_apply_one(PGconn *c, const char *dir, const struct mig_migration *m)
{
    char *path = wb_path_join(dir, m->name);
    char *sql = mig_read_file(path);
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
    if (mig_run_sql(c, path, sql) < 0) {
        PQclear(PQexec(c, "ROLLBACK"));
        goto out;
    }
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

/* schema_migrations lists the migrations applied; schema_functions holds
 * one row, the hash of the sql/functions/ set applied last. */
static int mig_ensure_tables(PGconn *c)
{
    if (wb_db_cmd(c, "creating schema_migrations",
                  "CREATE TABLE IF NOT EXISTS schema_migrations ("
                  " version integer PRIMARY KEY, name text NOT NULL,"
                  " applied_at timestamptz NOT NULL DEFAULT now())",
                  0, NULL) < 0)
        return -1;
    return wb_db_cmd(c, "creating schema_functions",
                     "CREATE TABLE IF NOT EXISTS schema_functions ("
                     " hash text NOT NULL, files integer NOT NULL,"
                     " applied_at timestamptz NOT NULL DEFAULT now())",
                     0, NULL);
}

/* ---- sql/functions/ ---- */

struct mig_fnfiles {
    char *dir;     /* dir/functions */
    char **names;  /* NAME.sql, sorted by name */
    size_t n;
};

static int mig_cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void mig_fnfiles_free(struct mig_fnfiles *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->names[i]);
    free(f->names);
    free(f->dir);
}

/* Lists dir/functions/NAME.sql by name. The folder must exist (it may be
 * empty): without it a database would be made without its functions. */
static int mig_fnfiles_list(const char *dir, struct mig_fnfiles *f)
{
    memset(f, 0, sizeof *f);
    f->dir = wb_path_join(dir, FUNCTIONS_SUBDIR);
    DIR *d = opendir(f->dir);
    if (!d) {
        fprintf(stderr, "warmbench: cannot read functions in %s: %s\n", f->dir, strerror(errno));
        free(f->dir);
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".sql") || e->d_name[0] == '.')
            continue;
        f->names = wb_xrealloc(f->names, (f->n + 1) * sizeof *f->names);
        f->names[f->n++] = wb_xstrdup(e->d_name);
    }
    closedir(d);
    if (f->n)
        qsort(f->names, f->n, sizeof *f->names, mig_cmp_name);
    return 0;
}

/* Reads every file into texts[i] (malloc'd); -1 after reporting. */
static int mig_fnfiles_read(const struct mig_fnfiles *f, char **texts)
{
    for (size_t i = 0; i < f->n; i++) {
        char *path = wb_path_join(f->dir, f->names[i]);
        texts[i] = mig_read_file(path);
        if (!texts[i]) {
            fprintf(stderr, "warmbench: cannot read %s: %s\n", path, strerror(errno));
            free(path);
            for (size_t j = 0; j < i; j++)
                free(texts[j]);
            return -1;
        }
        free(path);
    }
    return 0;
}

/* sha256 over each file's name and text, NUL-terminated, in name order:
 * a renamed file (a changed order) changes it as a changed body does. */
static void mig_fnfiles_hash(const struct mig_fnfiles *f, char *const *texts, char hex[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (size_t i = 0; i < f->n; i++) {
        EVP_DigestUpdate(ctx, f->names[i], strlen(f->names[i]) + 1);
        EVP_DigestUpdate(ctx, texts[i], strlen(texts[i]) + 1);
    }
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    for (unsigned int i = 0; i < mdlen && i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    hex[64] = '\0';
}

int wb_functions_hash(const char *dir, char hex[65], size_t *n)
{
    struct mig_fnfiles f;
    if (mig_fnfiles_list(dir, &f) < 0)
        return -1;
    char **texts = wb_xcalloc(f.n ? f.n : 1, sizeof *texts);
    int rc = mig_fnfiles_read(&f, texts);
    if (rc == 0) {
        mig_fnfiles_hash(&f, texts, hex);
        for (size_t i = 0; i < f.n; i++)
            free(texts[i]);
    }
    if (n)
        *n = f.n;
    free(texts);
    mig_fnfiles_free(&f);
    return rc;
}

/* 1 when schema_functions records hash, 0 when not, -1 reported. */
static int mig_functions_recorded(PGconn *c, const char *hash)
{
    const char *p[] = {hash};
    PGresult *r = wb_db_exec(c, PGRES_TUPLES_OK, "reading schema_functions",
                             "SELECT 1 FROM schema_functions WHERE hash = $1", 1, p);
    if (!r)
        return -1;
    int found = PQntuples(r) > 0;
    PQclear(r);
    return found;
}

/* Every file, then the hash, in one transaction: the database never holds
 * half of one set of functions and half of another. */
static int mig_functions_apply(PGconn *c, const struct mig_fnfiles *f, char *const *texts,
                               const char *hash)
{
    char nfiles[24];
    snprintf(nfiles, sizeof nfiles, "%zu", f->n);
    const char *p[] = {hash, nfiles};
    /* Quiet: each trigger is dropped IF EXISTS before it is made again. */
    if (wb_db_cmd(c, "BEGIN", "BEGIN", 0, NULL) < 0)
        return -1;
    if (wb_db_cmd(c, "quieting notices", "SET LOCAL client_min_messages = warning", 0, NULL) < 0) {
        PQclear(PQexec(c, "ROLLBACK"));
        return -1;
    }
    for (size_t i = 0; i < f->n; i++) {
        char *path = wb_path_join(f->dir, f->names[i]);
        int rc = mig_run_sql(c, path, texts[i]);
        free(path);
        if (rc < 0) {
            PQclear(PQexec(c, "ROLLBACK"));
            return -1;
        }
    }
    if (wb_db_cmd(c, "recording functions", "DELETE FROM schema_functions", 0, NULL) < 0 ||
        wb_db_cmd(c, "recording functions",
                  "INSERT INTO schema_functions (hash, files) VALUES ($1, $2::integer)", 2,
                  p) < 0 ||
        wb_db_cmd(c, "COMMIT", "COMMIT", 0, NULL) < 0) {
        PQclear(PQexec(c, "ROLLBACK"));
        return -1;
    }
    return 0;
}

/* Applies dir/functions/ when a migration ran (it may have dropped one)
 * or the files differ from the set the database records. */
static int mig_functions_step(PGconn *c, const char *dir, int migrated)
{
    struct mig_fnfiles f;
    if (mig_fnfiles_list(dir, &f) < 0)
        return -1;
    char **texts = wb_xcalloc(f.n ? f.n : 1, sizeof *texts);
    int rc = mig_fnfiles_read(&f, texts);
    if (rc < 0)
        goto out;
    char hash[65];
    mig_fnfiles_hash(&f, texts, hash);
    int current = migrated ? 0 : mig_functions_recorded(c, hash);
    if (current < 0)
        rc = -1;
    else if (current)
        printf("functions current (%zu files in %s, sha256 %.12s)\n", f.n, f.dir, hash);
    else if ((rc = mig_functions_apply(c, &f, texts, hash)) == 0)
        printf("applied functions (%zu files in %s, sha256 %.12s)\n", f.n, f.dir, hash);
    for (size_t i = 0; i < f.n; i++)
        free(texts[i]);
out:
    free(texts);
    mig_fnfiles_free(&f);
    return rc;
}

int wb_migrate(PGconn *c, const char *dir, int *applied)
{
    struct mig_migration *m;
    size_t n;
    *applied = 0;
    if (mig_list(dir, &m, &n) < 0)
        return -1;
    int rc = -1;
    /* Session lock: a second migrate waits here, then finds nothing to do. */
    PGresult *lock = wb_db_exec(c, PGRES_TUPLES_OK, "taking the migration lock",
                                "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", 0, NULL);
    if (!lock)
        goto out;
    PQclear(lock);
    /* "DROP FUNCTION IF EXISTS ... skipping" notices are the migrations
     * working as meant: an operator should see what was applied, not them. */
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    if (mig_ensure_tables(c) < 0)
        goto unlock;
    for (size_t i = 0; i < n; i++) {
        int done = mig_applied_version(c, m[i].version);
        if (done < 0)
            goto unlock;
        if (done)
            continue;
        if (mig_apply_one(c, dir, &m[i]) < 0)
            goto unlock;
        printf("applied %s\n", m[i].name);
        (*applied)++;
    }
    rc = mig_functions_step(c, dir, *applied);
unlock:
    PQclear(PQexec(c, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")"));
out:
    mig_free(m, n);
    return rc;
}

int wb_migrations_current(PGconn *c, const char *dir)
{
    size_t n;
    char hash[65];
    char *versions = wb_migrations_versions(dir, &n);
    if (!versions || wb_functions_hash(dir, hash, NULL) < 0) {
        free(versions);
        return -1;
    }
    int rc = -1;
    PGresult *r = PQexec(c, "SELECT to_regclass('schema_migrations') IS NOT NULL"
                            " AND to_regclass('schema_functions') IS NOT NULL");
    if (PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
        rc = 0;
    } else if (PQresultStatus(r) == PGRES_TUPLES_OK) {
        const char *p[] = {versions, hash};
        PGresult *q = wb_db_exec(c, PGRES_TUPLES_OK, "checking the schema", wb_schema_check_sql,
                                 2, p);
        if (q)
            rc = strtoul(PQgetvalue(q, 0, 0), NULL, 10) == n && !strcmp(PQgetvalue(q, 0, 1), "t");
        PQclear(q);
    }
    PQclear(r);
    free(versions);
    return rc;
}

const char *wb_sql_dir(void)
{
    const char *e = getenv("WARMBENCH_SQL_DIR");
    return e && *e ? e : WB_SQL_DIR;
}

char *wb_migrations_versions(const char *dir, size_t *n)
{
    struct mig_migration *m;
    if (mig_list(dir, &m, n) < 0)
        return NULL;
    struct wb_buf b;
    wb_buf_init(&b);
    wb_buf_putc(&b, '{');
    for (size_t i = 0; i < *n; i++)
        wb_buf_printf(&b, "%s%d", i ? "," : "", m[i].version);
    wb_buf_putc(&b, '}');
    mig_free(m, *n);
    return b.data;
}
