#!/usr/bin/env bash
# Times `warmbench report --html` on a pool of 100,000 candidates (CANDIDATES=N
# to change it) with two years of messages and events, seeded set-based with
# generate_series on a throwaway PostgreSQL cluster (seeding is not timed).
# Prints each run and the best against the 5 s target.
# Usage: tests/bench/bench_report.sh [BUILD_DIR]   (RUNS=N, default 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
N=${CANDIDATES:-100000}
RUNS=${RUNS:-3}
TARGET=5
WB=$PWD/$BUILD/warmbench
[ -x "$WB" ] || { echo "bench-report: $WB not built" >&2; exit 1; }
. tests/pg.sh
now() { date +%s.%N; }

tmp=$(mktemp -d /tmp/wbbench-XXXXXX)
chmod 755 "$tmp"
cleanup() {
    wb_pg_stop "$tmp/pg"
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

WB_PG_OPTS="-c fsync=off -c synchronous_commit=off -c full_page_writes=off" wb_pg_start "$tmp/pg"
url=$WB_PG_URL
port=$WB_PG_PORT

wb_bench_config "$tmp" "$url" "$port"
"$WB" --config "$WB_BENCH_CFG" migrate >/dev/null

echo "seeding $N candidates with messages and events (not timed)"
t0=$(now)
psql -X -q -v ON_ERROR_STOP=1 -v n="$N" -d "$url" <<'SQL'
SELECT setseed(0.42) \gset
-- Two years of arrivals; five zones and some unknown; a few tags each.
INSERT INTO candidates (email, first_name, timezone, tags, consent, created_at)
SELECT 'person' || i || '@example.com', 'First' || i,
       (ARRAY['Europe/Berlin', 'America/New_York', 'Asia/Tokyo', 'Australia/Sydney',
              'Europe/London', NULL])[1 + i % 6],
       string_to_array((ARRAY['backend;silver-medallist', 'data;ml', 'frontend', 'sre;passive',
                              'backend'])[1 + i % 5], ';'),
       'opt_in', now() - random() * interval '730 days'
FROM generate_series(1, :n) i;
INSERT INTO sequences (id, content_hash, definition)
VALUES ('backend-silver-medallists', 'x', '{}'), ('data-nurture', 'x', '{}'),
       ('frontend-q3', 'x', '{}');
-- Four in five enrolled, in one of three sequences, after they arrived.
INSERT INTO enrollments (candidate_id, sequence_id, step, state, created_at)
SELECT id, (ARRAY['backend-silver-medallists', 'data-nurture', 'frontend-q3'])[1 + id % 3],
       3, 'finished', created_at + random() * (now() - created_at)
FROM candidates WHERE id % 5 <> 0;
-- Step 1 to all (A/B variants), step 2 to 60%, step 3 to 35%, three days apart.
INSERT INTO messages (enrollment_id, candidate_id, sequence_id, step, variant, sender, state,
                      created_at, sent_at)
SELECT e.id, e.candidate_id, e.sequence_id, s, CASE WHEN s = 1 THEN e.id % 2 END, 'ana',
       CASE WHEN random() < 0.01 THEN 'failed' ELSE 'sent' END,
       least(now(), e.created_at + (s - 1) * interval '3 days'),
       least(now(), e.created_at + (s - 1) * interval '3 days')
FROM enrollments e, generate_series(1, 3) s
WHERE s = 1 OR (s = 2 AND e.id % 10 < 6) OR (s = 3 AND e.id % 20 < 7);
-- Per message: sent; 40% opened by a person (1-3 times), 15% by a proxy;
-- 10% clicked; 3% replied; 1% bounced; 0.5% unsubscribed; 1% handed off.
CREATE TEMP TABLE r AS
SELECT m.id, m.candidate_id, m.enrollment_id, m.sequence_id, m.step, m.sent_at, random() AS x
FROM messages m WHERE m.state = 'sent';
INSERT INTO events (candidate_id, message_id, enrollment_id, sequence_id, step, type, machine,
                    detail, at)
SELECT candidate_id, id, enrollment_id, sequence_id, step, 'sent', false, '{}'::jsonb, sent_at FROM r
UNION ALL
SELECT candidate_id, id, enrollment_id, sequence_id, step, 'open', false, '{}',
       sent_at + random() * interval '5 days' FROM r, generate_series(1, 3) k
WHERE x < 0.40 AND k <= 1 + id % 3
UNION ALL
SELECT candidate_id, id, enrollment_id, sequence_id, step, 'open', true, '{"why":"proxy"}',
       sent_at + interval '2 minutes' FROM r WHERE x >= 0.40 AND x < 0.55
UNION ALL
SELECT candidate_id, id, enrollment_id, sequence_id, step, 'click', false, '{"link":"apply"}',
       sent_at + random() * interval '5 days' FROM r WHERE x < 0.10
UNION ALL
SELECT candidate_id, id, enrollment_id, sequence_id, step, 'reply', false,
       '{"intent":"interested"}', sent_at + random() * interval '7 days' FROM r WHERE x < 0.03
UNION ALL
SELECT candidate_id, id, enrollment_id, sequence_id, step, 'handoff', false, '{}',
       sent_at + interval '7 days' FROM r WHERE x < 0.01
UNION ALL
SELECT candidate_id, id, enrollment_id, sequence_id, step, 'bounce', false, '{"kind":"hard"}',
       sent_at + interval '1 minute' FROM r WHERE x >= 0.98 AND x < 0.99
UNION ALL
SELECT candidate_id, id, enrollment_id, sequence_id, step, 'unsubscribe', false, '{}',
       sent_at + interval '1 day' FROM r WHERE x >= 0.99 AND x < 0.995;
-- Scores and last engagement as the events would have left them.
UPDATE candidates c SET last_engaged_at = e.last, score = e.n, score_at = e.last
FROM (SELECT candidate_id, max(at) AS last, count(*) AS n FROM events
      WHERE type IN ('open', 'click', 'reply') AND NOT machine GROUP BY candidate_id) e
WHERE c.id = e.candidate_id;
-- The bounced and unsubscribed are suppressed; 500 people were erased.
INSERT INTO suppressions (email, email_hash, reason, created_at)
SELECT c.email, wb_email_hash(c.email), min(CASE v.type WHEN 'bounce' THEN 'bounce' ELSE 'unsubscribe' END),
       min(v.at)
FROM events v JOIN candidates c ON c.id = v.candidate_id
WHERE v.type IN ('bounce', 'unsubscribe') GROUP BY c.email
ON CONFLICT (email_hash) DO NOTHING;
INSERT INTO suppressions (email, email_hash, reason, created_at)
SELECT NULL, wb_email_hash('erased' || i || '@example.com'), 'forget',
       now() - random() * interval '700 days'
FROM generate_series(1, 500) i;
SQL
psql -X -q -d "$url" -c "VACUUM ANALYZE" >/dev/null
t1=$(now)
counts=$(psql -X -q -At -F' ' -d "$url" -c "SELECT (SELECT count(*) FROM candidates),
    (SELECT count(*) FROM messages), (SELECT count(*) FROM events),
    (SELECT count(*) FROM suppressions)")
read -r nc nm ne ns <<<"$counts"
awk -v s="$(echo "$t1 - $t0" | bc)" -v c="$nc" -v m="$nm" -v e="$ne" -v x="$ns" 'BEGIN {
    printf "seeded in %.1f s: %d candidates, %d messages, %d events, %d suppressions\n", s, c, m, e, x }'

best=""
for i in $(seq 1 "$RUNS"); do
    a=$(now)
    "$WB" --config "$WB_BENCH_CFG" report --html "$tmp/report.html"
    b=$(now)
    t=$(echo "$b - $a" | bc)
    printf "run %d: %.2f s\n" "$i" "$t"
    if [ -z "$best" ] || [ "$(echo "$t < $best" | bc)" = 1 ]; then best=$t; fi
done
size=$(stat -c %s "$tmp/report.html")
awk -v t="$best" -v target="$TARGET" -v n="$nc" -v sz="$size" 'BEGIN {
    printf "warmbench report --html, %d candidates: best %.2f s (target %d s): %s; file %.0f KB\n",
        n, t, target, t < target ? "within target" : "OVER TARGET", sz / 1024
    exit t < target ? 0 : 1 }'
