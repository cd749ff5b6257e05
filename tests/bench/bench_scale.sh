#!/usr/bin/env bash
# Scale figures (issue 12) on a throwaway PostgreSQL cluster (tests/pg.sh):
#  * `warmbench import` of CANDIDATES rows (1,000,000) beside `psql \copy`
#    of the same rows, in candidates' own format, into an empty table shaped
#    like candidates (the floor bench-import also prints);
#  * `warmbench enroll` of all of them into one sequence;
#  * the daemon's claim (wb_claim, called as lib/send/scheduler.c calls it:
#    prepared, the configured batch) at SMALL (10,000) and at CANDIDATES
#    scale, a tenth of the enrollments due, each claim rolled back so every
#    one sees the same queue: p50 and p99 over CLAIMS claims at each scale,
#    in CLAIM_ROUNDS rounds that alternate the two;
#  * `warmbench stats`, `warmbench pool` and `warmbench report --html` with
#    EVENTS (5,000,000) events in the database;
#  * the daemon's event writer (wb_record_events, as lib/engage/eventq.c sends it:
#    batches of 500 opens) in events per second.
# Seeding beyond import and enroll is set-based SQL and not timed. The CLI
# is timed whole (process start, connection, statement, output).
# Usage: tests/bench/bench_scale.sh [BUILD_DIR]
#   CANDIDATES=N SMALL=N EVENTS=N CLAIMS=N CLAIM_ROUNDS=N RUNS=N (best of RUNS for the CLI
#   reports), KEEP=1 leaves the cluster running and prints its URL.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
N=${CANDIDATES:-1000000}
SMALL=${SMALL:-10000}
EVENTS=${EVENTS:-5000000}
CLAIMS=${CLAIMS:-600}
CLAIM_ROUNDS=${CLAIM_ROUNDS:-6}
RUNS=${RUNS:-2}
WB=$PWD/$BUILD/warmbench
[ -x "$WB" ] || { echo "bench-scale: $WB not built" >&2; exit 1; }
. tests/pg.sh
PGBENCH=$WB_PGBIN/pgbench
now() { date +%s.%N; }

tmp=$(mktemp -d /tmp/wbbench-XXXXXX)
chmod 755 "$tmp"
cleanup() {
    if [ "${KEEP:-0}" = 1 ]; then
        echo "kept: $WB_PG_URL (config $tmp/big/cfg/warmbench.json); stop with:"
        echo "  runuser -u postgres -- $WB_PGBIN/pg_ctl -D $tmp/pg/data stop"
        return
    fi
    wb_pg_stop "$tmp/pg"
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# As bench-import and bench-report: the CLI's and the database's work, not
# the disk's.
WB_PG_OPTS="-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_wal_size=8GB -c shared_buffers=512MB" \
    wb_pg_start "$tmp/pg"
port=$WB_PG_PORT
base="postgresql://postgres@127.0.0.1:$port"
psql -X -q -d "$base/postgres" -c "CREATE DATABASE small" -c "CREATE DATABASE big"

# One configuration per database, each with the sequence every candidate
# is enrolled into (two steps, the second three days after the first).
setup_db() { # DIR DBNAME
    wb_bench_config "$1" "$base/$2" "$port"
    local cfg=$1/cfg
    echo "Hi {{first_name|there}}" > "$cfg/templates/t.txt"
    cat > "$cfg/sequences/scale.json" <<'JSON'
{ "id": "scale", "sender": "ana",
  "audience": { "tags_any": ["pool"] },
  "window": { "days": ["mon","tue","wed","thu","fri","sat","sun"], "start": "00:00",
              "end": "23:59", "timezone": "candidate", "fallback_timezone": "UTC" },
  "steps": [ { "after": "0d", "subject": "Hello", "text": "t.txt" },
             { "after": "3d", "subject": "Re: Hello", "text": "t.txt", "thread": true } ],
  "stop_on": ["reply", "unsubscribe"], "handoff_on": ["reply:interested"] }
JSON
    "$WB" --config "$cfg/warmbench.json" migrate >/dev/null
}

gen_csv() { # ROWS FILE: every row has consent and the tag "pool"
    awk -v n="$1" 'BEGIN {
        split("Europe/Berlin America/New_York Asia/Tokyo Australia/Sydney Europe/London", tz, " ")
        split("backend;silver-medallist data;ml frontend sre;passive backend", tags, " ")
        split("opt_in legitimate_interest opt_in", consent, " ")
        print "email,first_name,last_name,title,company,location,timezone,tags,skills,consent,source,github,years_experience"
        for (i = 1; i <= n; i++)
            printf "person%d@example.com,First%d,Last%d,Senior Engineer,Company %d,\"Berlin, Germany\",%s,pool;%s,go;postgresql;kafka,%s,linkedin,gh%d,%d\n",
                i, i, i, i % 1000, tz[i % 5 + 1], tags[i % 5 + 1], consent[i % 3 + 1], i, i % 25
    }' > "$2"
}

# After import and enroll: nine in ten enrollments had step 1 sent (their
# step 2 is days away), one in ten is due now; events up to about EVENTS in
# all (enroll wrote one per enrollment): sent, human and proxy opens,
# clicks, replies, a few bounces and unsubscribes. Scores as the events
# leave them (set-based, as bench-report does).
seed_sql() { # DB_URL EVENTS
    psql -X -q -v ON_ERROR_STOP=1 -v ev="$2" -d "$1" <<'SQL'
SET session_replication_role = replica; -- seeding: no triggers, no FK checks
SELECT setseed(0.12) \gset
UPDATE enrollments SET step = 1, next_due_at = now() + interval '3 days' + (id % 1000) * interval '1 minute',
    created_at = now() - interval '10 days' + (id % 10000) * interval '1 minute'
WHERE id % 10 <> 0;
UPDATE enrollments SET next_due_at = now() - (id % 1000) * interval '1 second'
WHERE id % 10 = 0;
INSERT INTO messages (enrollment_id, candidate_id, sequence_id, step, variant, sender, state,
                      message_id, rcpt, subject, attempts, next_attempt_at, created_at, sent_at,
                      updated_at)
SELECT e.id, e.candidate_id, e.sequence_id, 1, NULL, 'ana', 'sent',
       'wb.' || e.id || '.0000000000000000@example.com', 'x@example.com', 'Hello', 1, NULL,
       e.created_at, e.created_at + interval '1 hour', e.created_at + interval '1 hour'
FROM enrollments e WHERE e.step = 1;
SELECT count(*) AS nmsg, :ev - (SELECT count(*) FROM events) AS rest FROM messages \gset
-- Per message: 1 sent; for 3 in 5, k human opens (k about the same for
-- all, so that the total comes to about :ev); a proxy open for 1 in 5;
-- a click for 1 in 10, a reply for 1 in 50, a soft bounce for 1 in 200.
INSERT INTO events (candidate_id, message_id, enrollment_id, sequence_id, step, type, machine,
                    detail, at)
SELECT m.candidate_id, m.id, m.enrollment_id, m.sequence_id, 1, t.type, t.machine, t.detail,
       m.sent_at + t.k * interval '37 minutes'
FROM messages m
CROSS JOIN LATERAL (
    SELECT 'sent' AS type, false AS machine, '{}'::jsonb AS detail, 0 AS k
    UNION ALL
    SELECT 'open', false, '{}', k FROM generate_series(1, greatest(1,
        round((:rest::float8 / :nmsg - 1.325) / 0.6)::int + (m.id % 3)::int - 1)) k
    WHERE m.id % 5 < 3
    UNION ALL SELECT 'open', true, '{"why":"proxy"}', 1 WHERE m.id % 5 = 3
    UNION ALL SELECT 'click', false, '{"link":"apply"}', 2 WHERE m.id % 10 = 1
    UNION ALL SELECT 'reply', false, '{"intent":"neutral"}', 3 WHERE m.id % 50 = 7
    UNION ALL SELECT 'bounce', false, '{"kind":"soft"}', 1 WHERE m.id % 200 = 9
) t;
UPDATE candidates c SET last_engaged_at = e.last, score = e.n, score_at = e.last
FROM (SELECT candidate_id, max(at) AS last, count(*) AS n FROM events
      WHERE type IN ('open', 'click', 'reply') AND NOT machine GROUP BY candidate_id) e
WHERE c.id = e.candidate_id;
INSERT INTO suppressions (email, email_hash, reason)
SELECT email, wb_email_hash(email), 'unsubscribe' FROM candidates WHERE id % 500 = 11;
RESET session_replication_role;
-- The seeding ran without triggers: the stats summary the triggers keep
-- (sql/functions/092_stats.sql) is made from the seeded events in one go.
SELECT wb_stats_rebuild() \g /dev/null
SQL
    psql -X -q -d "$1" -c "VACUUM ANALYZE" >/dev/null
}

# p50 and p99 of wb_claim over CLAIMS calls, each rolled back (pgbench's
# per-transaction log: BEGIN, the prepared claim, ROLLBACK): every claim
# finds the same queue, the first batch of due steps made into messages.
# As the scheduler: batch = 32 per SMTP connection (8 by default, so 256),
# lease 60 + 2 x smtp timeout (60 s), no daily limit, no gap. The
# connection's options are the daemon's (wb_db_options: JIT off).
claim_args=(-n -M prepared -c 1 -f claim.sql -D sender=ana -D batch=256 -D daily=0 -D gap=0
            -D owner=bench -D lease=180 -D domain=example.com)
claim_setup() { # DB_URL LABEL: the script, and 30 claims not counted that
    # bring the rows and index pages the claims touch into shared buffers,
    # as in a running daemon.
    local dir=$tmp/claim-$2
    mkdir -p "$dir"
    cat > "$dir/claim.sql" <<'SQL'
BEGIN;
SELECT * FROM wb_claim(:sender, :batch, :daily, :gap, :owner, :lease, :domain);
ROLLBACK;
SQL
    (cd "$dir" && PGOPTIONS="-c jit=off" "$PGBENCH" "${claim_args[@]}" -t 30 "$1" >warmup.out 2>&1) ||
        { cat "$dir/warmup.out" >&2; return 1; }
}
claim_round() { # DB_URL LABEL ROUND COUNT
    local dir=$tmp/claim-$2/r$3
    mkdir -p "$dir"
    cp "$tmp/claim-$2/claim.sql" "$dir/"
    (cd "$dir" && PGOPTIONS="-c jit=off" "$PGBENCH" "${claim_args[@]}" -t "$4" -l "$1" >pgbench.out 2>&1) ||
        { cat "$dir/pgbench.out" >&2; return 1; }
}
claim_report() { # DB_URL LABEL
    local dir=$tmp/claim-$2 rows
    rows=$(psql -X -q -At -d "$1" -c "BEGIN" \
        -c "SELECT count(*) FROM wb_claim('ana', 256, 0, 0, 'bench', 180, 'example.com')" -c "ROLLBACK" | sed -n 1p)
    # log lines: client tx latency_us script_no epoch epoch_us
    cat "$dir"/r*/pgbench_log.* | awk '{print $3}' | sort -n | awk -v label="$2" -v rows="$rows" '
        { v[NR] = $1 }
        END { p50 = v[int(NR * 0.50 + 0.5)]; p99 = v[int(NR * 0.99 + 0.5)]
              printf "claim at %s: %d claims of %d rows, p50 %.2f ms, p99 %.2f ms\n",
                     label, NR, rows, p50 / 1000, p99 / 1000
              print p99 / 1000 > "'"$dir"'/p99" }'
}

# Best of RUNS wall-clock runs of a CLI command; prints and keeps the time.
time_cli() { # LABEL CMD...
    local label=$1 best="" a b t
    shift
    for _ in $(seq 1 "$RUNS"); do
        a=$(now)
        "$@" > "$tmp/out.txt"
        b=$(now)
        t=$(echo "$b - $a" | bc)
        if [ -z "$best" ] || [ "$(echo "$t < $best" | bc)" = 1 ]; then best=$t; fi
    done
    printf "%-28s %7.2f s (best of %d)\n" "$label:" "$best" "$RUNS"
    LAST=$best
}

echo "== $SMALL candidates (claim baseline)"
setup_db "$tmp/small" small
gen_csv "$SMALL" "$tmp/small.csv"
scfg=$tmp/small/cfg/warmbench.json
"$WB" --config "$scfg" import "$tmp/small.csv" >/dev/null
"$WB" --config "$scfg" enroll scale >/dev/null
seed_sql "$base/small" $((EVENTS / (N / SMALL)))

echo "== $N candidates"
setup_db "$tmp/big" big
bcfg=$tmp/big/cfg/warmbench.json
gen_csv "$N" "$tmp/big.csv"
cat "$tmp/big.csv" > /dev/null # in the page cache for both loads
burl=$base/big
# The \copy floor: the same rows in candidates' COPY format, into an empty
# table shaped like candidates (its indexes and defaults).
psql -X -q -d "$burl" -c "CREATE TABLE plain (email text, first_name text, last_name text,
    title text, company text, location text, timezone text, tags text, skills text,
    consent text, source text, github text, years_experience text)" \
    -c "\\copy plain FROM '$tmp/big.csv' CSV HEADER"
cols="email, first_name, last_name, title, company, location, timezone, tags, skills, consent, source, attrs"
sel="SELECT email, first_name, last_name, title, company, location, timezone, string_to_array(tags, ';'), string_to_array(skills, ';'), nullif(consent, ''), source, jsonb_build_object('github', github, 'years_experience', years_experience) FROM plain"
psql -X -q -d "$burl" -c "\\copy ($sel) TO '$tmp/cand.copy'" \
    -c "CREATE TABLE cand_floor (LIKE candidates INCLUDING ALL)" -c "CHECKPOINT"
a=$(now)
psql -X -q -d "$burl" -c "\\copy cand_floor ($cols) FROM '$tmp/cand.copy'"
b=$(now)
floor=$(echo "$b - $a" | bc)
psql -X -q -d "$burl" -c "DROP TABLE cand_floor" -c "DROP TABLE plain" -c "CHECKPOINT"
rm -f "$tmp/cand.copy"

a=$(now)
"$WB" --config "$bcfg" import "$tmp/big.csv" > "$tmp/import.txt"
b=$(now)
import_s=$(echo "$b - $a" | bc)
printf "%-28s %7.2f s (%s)\n" "import of $N:" "$import_s" "$(tail -1 "$tmp/import.txt")"
printf "%-28s %7.2f s; import / floor %.2f (goal <= 2)\n" "\\copy floor:" "$floor" \
    "$(echo "$import_s / $floor" | bc -l)"
psql -X -q -d "$burl" -c "VACUUM ANALYZE candidates" -c "CHECKPOINT"
a=$(now)
"$WB" --config "$bcfg" enroll scale > "$tmp/enroll.txt"
b=$(now)
enroll_s=$(echo "$b - $a" | bc)
printf "%-28s %7.2f s (%s)\n" "enroll of $N:" "$enroll_s" "$(cut -d';' -f1 "$tmp/enroll.txt")"
printf "%-28s %.2f (goal <= 2)\n" "enroll / import:" "$(echo "$enroll_s / $import_s" | bc -l)"
# The floor for any enroll: the same two inserts (an enrollment and its
# `enrolled` event per candidate, with their indexes, foreign keys and
# triggers) with no check, no ON CONFLICT and no window, rolled back.
efloor=$(psql -X -q -At -d "$burl" 2>/dev/null <<'SQL'
BEGIN;
SELECT clock_timestamp() AS t0 \gset
INSERT INTO sequences (id, content_hash, definition) VALUES ('floor', 'x', '{}');
WITH ins AS (
    INSERT INTO enrollments (candidate_id, sequence_id, step, next_due_at, source)
    SELECT id, 'floor', 0, now(), 'cli' FROM candidates
    RETURNING id, candidate_id)
INSERT INTO events (candidate_id, enrollment_id, sequence_id, type, detail)
SELECT candidate_id, id, 'floor', 'enrolled', '{"source": "cli"}' FROM ins;
SELECT extract(epoch FROM clock_timestamp() - :'t0'::timestamptz);
ROLLBACK;
SQL
)
printf "%-28s %7.2f s; enroll / floor %.2f\n" "enroll floor (2 inserts):" "$efloor" \
    "$(echo "$enroll_s / $efloor" | bc -l)"
psql -X -q -d "$burl" -c "VACUUM enrollments, events" -c "CHECKPOINT"

echo "seeding messages and events (not timed)"
a=$(now)
seed_sql "$burl" "$EVENTS"
b=$(now)
counts=$(psql -X -q -At -F' ' -d "$burl" -c "SELECT (SELECT count(*) FROM candidates),
    (SELECT count(*) FROM enrollments), (SELECT count(*) FROM enrollments WHERE next_due_at <= now()),
    (SELECT count(*) FROM messages), (SELECT count(*) FROM events)")
read -r nc ne nd nm nv <<<"$counts"
printf "seeded in %.0f s: %d candidates, %d enrollments (%d due), %d messages, %d events\n" \
    "$(echo "$b - $a" | bc)" "$nc" "$ne" "$nd" "$nm" "$nv"

# Both scales in alternating rounds (after a checkpoint each, which
# writes back what the seeding left dirty), so that a change of load on
# the machine meets both alike: the ratio is the point.
claim_setup "$base/small" "$SMALL"
claim_setup "$burl" "$N"
per_round=$(( (CLAIMS + CLAIM_ROUNDS - 1) / CLAIM_ROUNDS ))
for r in $(seq 1 "$CLAIM_ROUNDS"); do
    psql -X -q -d "$base/postgres" -c "CHECKPOINT"
    claim_round "$base/small" "$SMALL" "$r" "$per_round"
    claim_round "$burl" "$N" "$r" "$per_round"
done
claim_report "$base/small" "$SMALL"
claim_report "$burl" "$N"
small_p99=$(cat "$tmp/claim-$SMALL/p99")
big_p99=$(cat "$tmp/claim-$N/p99")
printf "%-28s %.2f (goal <= 1.5)\n" "claim p99 $N / $SMALL:" "$(echo "$big_p99 / $small_p99" | bc -l)"

time_cli "stats" "$WB" --config "$bcfg" stats
time_cli "stats --attribution" "$WB" --config "$bcfg" stats --attribution
time_cli "pool" "$WB" --config "$bcfg" pool
time_cli "report --html" "$WB" --config "$bcfg" report --html "$tmp/report.html"

# The event writer: batches of 500 human opens of random sent messages,
# as lib/engage/eventq.c sends them (arrays as text), one connection, committed.
ev=$tmp/events
mkdir -p "$ev"
nmsg=$(psql -X -q -At -d "$burl" -c "SELECT max(id) FROM messages")
for s in 1 2 3 4 5 6 7 8; do
    awk -v seed="$s" -v n="$nmsg" 'BEGIN { srand(seed)
        ids = ""; ty = ""; ma = ""; de = ""; at = ""
        for (i = 0; i < 500; i++) {
            sep = i ? "," : ""
            ids = ids sep int(1 + rand() * (n - 1)); ty = ty sep "\"open\""; ma = ma sep "f"
            de = de sep "\"{\\\"ua\\\": \\\"bench\\\"}\""; at = at sep "\"2026-01-01 10:00:00.000000+00\""
        }
        printf "SELECT wb_record_events(%c{%s}%c::bigint[], %c{%s}%c::text[], %c{%s}%c::boolean[], %c{%s}%c::jsonb[], %c{%s}%c::timestamptz[]);\n",
            39, ids, 39, 39, ty, 39, 39, ma, 39, 39, de, 39, 39, at, 39 }' > "$ev/b$s.sql"
done
evargs=()
for s in "$ev"/b*.sql; do evargs+=(-f "$s"); done
(cd "$ev" && "$PGBENCH" -n -c 1 -T 20 "${evargs[@]}" "$burl" > pgbench.out 2>&1) ||
    { cat "$ev/pgbench.out" >&2; exit 1; }
tps=$(awk '/^tps/ { print $3; exit }' "$ev/pgbench.out")
lat=$(awk '/latency average/ { print $4; exit }' "$ev/pgbench.out")
printf "%-28s %7.0f events/s (%s ms per batch of 500)\n" "event writer (opens):" \
    "$(echo "$tps * 500" | bc -l)" "$lat"
