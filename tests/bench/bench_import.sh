#!/usr/bin/env bash
# Times `warmbench import` of a generated CSV (1,000,000 rows by default)
# against `psql \copy` of the same file into a plain table with the same
# columns, on a throwaway PostgreSQL cluster (tests/pg.sh).
# Usage: tests/bench/bench_import.sh [BUILD_DIR]   (ROWS=N to change the size)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
ROWS=${ROWS:-1000000}
WB=$PWD/$BUILD/warmbench
[ -x "$WB" ] || { echo "bench-import: $WB not built" >&2; exit 1; }
. tests/pg.sh

tmp=$(mktemp -d /tmp/wbbench-XXXXXX)
chmod 755 "$tmp"
pgdir=$tmp/pg
cleanup() {
    wb_pg_stop "$pgdir"
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }

echo "generating $ROWS rows"
csv=$tmp/candidates.csv
awk -v n="$ROWS" 'BEGIN {
    split("Europe/Berlin America/New_York Asia/Tokyo Australia/Sydney Europe/London", tz, " ")
    split("backend;silver-medallist data;ml frontend sre;passive backend", tags, " ")
    split("opt_in legitimate_interest opt_in ", consent, " ")
    print "email,first_name,last_name,title,company,location,timezone,tags,skills,consent,source,github,years_experience"
    for (i = 1; i <= n; i++)
        printf "person%d@example.com,First%d,Last%d,Senior Engineer,Company %d,\"Berlin, Germany\",%s,%s,go;postgresql;kafka,%s,linkedin,gh%d,%d\n",
            i, i, i, i % 1000, tz[i % 5 + 1], tags[i % 5 + 1], consent[i % 3 + 1], i, i % 25
}' > "$csv"
echo "file: $(du -h "$csv" | cut -f1)"

# The bench measures the import's own work, not the disk: no fsync.
WB_PG_OPTS="-c fsync=off -c synchronous_commit=off -c full_page_writes=off" wb_pg_start "$pgdir"
port=$WB_PG_PORT
url="postgresql://postgres@127.0.0.1:$port/postgres"

wb_bench_config "$tmp" "$url" "$port"
"$WB" --config "$WB_BENCH_CFG" migrate >/dev/null
psql -X -q -d "$url" -c "CREATE TABLE plain (email text, first_name text, last_name text,
    title text, company text, location text, timezone text, tags text, skills text,
    consent text, source text, github text, years_experience text)"
cat "$csv" > /dev/null # both runs start with the file in the page cache

t0=$(now)
psql -X -q -d "$url" -c "\\copy plain FROM '$csv' CSV HEADER"
t1=$(now)
"$WB" --config "$WB_BENCH_CFG" import "$csv"
t2=$(now)
# The floor for any importer: the same rows written into candidates (its
# heap and five indexes) straight from the plain table, without a check.
floor=$(psql -X -q -At -d "$url" 2>/dev/null <<'SQL'
BEGIN;
TRUNCATE candidates CASCADE;
SELECT clock_timestamp() AS floor_start \gset
INSERT INTO candidates (email, first_name, last_name, title, company, location, timezone,
                        tags, skills, consent, source, attrs)
SELECT email, first_name, last_name, title, company, location, timezone,
       string_to_array(tags, ';'), string_to_array(skills, ';'), nullif(consent, ''), source,
       jsonb_build_object('github', github, 'years_experience', years_experience)
FROM plain;
SELECT extract(epoch FROM clock_timestamp() - :'floor_start'::timestamptz);
ROLLBACK;
SQL
)

# A second floor: the rows already in candidates' own COPY format, loaded
# with \copy into an empty table shaped like candidates (its indexes and
# defaults): what any importer pays before checking or merging anything.
cols="email, first_name, last_name, title, company, location, timezone, tags, skills, consent, source, attrs"
sel="SELECT email, first_name, last_name, title, company, location, timezone, string_to_array(tags, ';'), string_to_array(skills, ';'), nullif(consent, ''), source, jsonb_build_object('github', github, 'years_experience', years_experience) FROM plain"
psql -X -q -d "$url" -c "\\copy ($sel) TO '$tmp/cand.copy'"
psql -X -q -d "$url" -c "CREATE TABLE cand_floor (LIKE candidates INCLUDING ALL)"
t3=$(now)
psql -X -q -d "$url" -c "\\copy cand_floor ($cols) FROM '$tmp/cand.copy'"
t4=$(now)

awk -v rows="$ROWS" -v a="$t0" -v b="$t1" -v c="$t2" -v f="$floor" -v d="$t3" -v e="$t4" 'BEGIN {
    g = e - d
    copy = b - a; imp = c - b
    printf "psql \\copy:             %7.2f s  %9.0f rows/s\n", copy, rows / copy
    printf "warmbench import:       %7.2f s  %9.0f rows/s\n", imp, rows / imp
    printf "ratio import/copy:      %.2f\n", imp / copy
    printf "floor (INSERT into candidates, no checks): %.2f s, %.2f x copy\n", f, f / copy
    printf "floor (\\copy into a table shaped like candidates): %.2f s, %.2f x copy\n", g, g / copy
}'
