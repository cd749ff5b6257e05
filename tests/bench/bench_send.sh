#!/usr/bin/env bash
# `make bench-send`: COUNT (20,000) enrollments due now, one step each, sent
# by warmbenchd into Postfix's smtp-sink on loopback over 8 connections. In
# the same run, into the same sink, with the same message and the same 8
# connections:
#   raw-curl     a bare libcurl multi loop sending pre-rendered copies of one
#                message warmbenchd sent (tests/bench/raw_curl_send.c) — the
#                floor of this stack: libcurl speaks no SMTP PIPELINING. Like
#                warmbenchd it turns glibc's heap trimming off.
#   smtp-source  Postfix's `smtp-source -d -s 8` with that same message (-F)
# Prints msg/s of all three, warmbenchd/raw-curl (target >= 0.8) and
# warmbenchd/smtp-source, warmbenchd's peak RSS (target <= 64 MB), and the
# CPU time per message of each sender, of PostgreSQL and of the sink: on a
# shared machine the rates move with the other load, these much less.
#
# PostgreSQL runs with its production durability defaults (fsync on,
# synchronous_commit on, full_page_writes on), as the daemon path would;
# the settings in effect are printed. Set WB_PG_OPTS to change them.
# The message size comes from a calibration run: a few messages of the same
# sequence sent by warmbenchd into tests/integration/smtpd.py, which keeps
# each message's bytes as received.
#
# Usage: tests/bench/bench_send.sh [BUILD_DIR]
#   COUNT=N (default 20000)   CONNS=N (default 8)   KEEP=1 keeps the folder
#   PGSTAT=1 pg_stat_statements over run 1   PGPROC=1 PostgreSQL CPU by process
#   PERF=1 or PERF=wbd (see below)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
BUILD=${1:-build}
COUNT=${COUNT:-20000}
CONNS=${CONNS:-8}
WBD=$root/$BUILD/warmbenchd
WB=$root/$BUILD/warmbench
RAW=$root/$BUILD/bench/raw_curl_send
for b in "$WB" "$WBD" "$RAW"; do
    [ -x "$b" ] || { echo "bench-send: $b not built" >&2; exit 1; }
done
SINK=$(command -v smtp-sink || echo /usr/sbin/smtp-sink)
SOURCE=$(command -v smtp-source || echo /usr/sbin/smtp-source)
for b in "$SINK" "$SOURCE"; do
    [ -x "$b" ] || { echo "bench-send: $b missing (Debian package postfix)" >&2; exit 1; }
done
. tests/pg.sh

tmp=$(mktemp -d /tmp/wbsend-XXXXXX)
chmod 755 "$tmp"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wb_pg_stop "$tmp/pg"
    if [ -n "${KEEP:-}" ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
now() { date +%s.%N; }
say() { echo "== $*"; }
# CPU seconds (user + system) used so far by a process, by the PostgreSQL
# cluster (the postmaster, its live children, and its reaped ones), and by
# the whole machine (all CPUs, idle excluded): each run's cost per message
# is the difference, which the machine's other load does not change much.
tck=$(getconf CLK_TCK)
cpu_of() { awk -v t="$tck" '{ s = 0; for (i = 14; i <= 17; i++) s += $i; printf "%.2f\n", s / t }' "/proc/$1/stat" 2>/dev/null || echo 0; }
pg_cpu() {
    local pm s=0 c
    pm=$(head -1 "$tmp/pg/data/postmaster.pid" 2>/dev/null) || { echo 0; return; }
    for c in $pm $(cat /proc/"$pm"/task/*/children 2>/dev/null); do
        s=$(awk -v a="$s" -v b="$(cpu_of "$c")" 'BEGIN {print a + b}')
    done
    echo "$s"
}
# PGPROC=1: PostgreSQL's CPU over run 1 per process (backends by pid, the
# others by title), user and system apart.
pg_procs() {
    local pm c
    pm=$(head -1 "$tmp/pg/data/postmaster.pid" 2>/dev/null) || return 0
    for c in $pm $(cat /proc/"$pm"/task/*/children 2>/dev/null); do
        awk -v t="$tck" -v c="$c" -v title="$(tr '\0' ' ' < /proc/"$c"/cmdline 2>/dev/null)" \
            '{ printf "%s %.3f %.3f %s\n", c, ($14 + $16) / t, ($15 + $17) / t, title }' \
            "/proc/$c/stat" 2>/dev/null || true
    done
}
busy_cpu() { awk -v t="$tck" '/^cpu / { printf "%.2f\n", ($2 + $3 + $4 + $7 + $8) / t }' /proc/stat; }

say "PostgreSQL (throwaway cluster in $tmp/pg)"
# PGSTAT=1: pg_stat_statements (nested statements and planning included)
# over run 1, printed at the end: where PostgreSQL's time goes.
if [ -n "${PGSTAT:-}" ]; then
    # One line: pg_ctl hands -o to /bin/sh, which drops what follows a line break.
    WB_PG_OPTS="${WB_PG_OPTS:-} -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all -c pg_stat_statements.track_planning=on"
fi
wb_pg_start "$tmp/pg"
psql -X -q -d "$WB_PG_URL" -c "CREATE DATABASE warmbench"
db="postgresql://postgres@127.0.0.1:$WB_PG_PORT/warmbench"
q() { psql -X -A -t -q -d "$db" -c "$1"; }
[ -n "${PGSTAT:-}" ] && q "CREATE EXTENSION pg_stat_statements"
pg_settings=$(q "SELECT string_agg(name || '=' || setting, ' ' ORDER BY name) FROM pg_settings
                 WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_level',
                                'shared_buffers', 'commit_delay')")
echo "settings: $pg_settings"

# --- configuration: one sequence, one step, window open all week ----------
cfg=$tmp/cfg
mkdir -p "$cfg/sequences" "$cfg/templates"
cp config/templates/intro.txt config/templates/intro.html "$cfg/templates/"
head -c 32 /dev/urandom | base64 > "$cfg/secret.key"
chmod 600 "$cfg/secret.key"
http_port=$(wb_free_port)
write_config() { # SMTP_PORT
    cat > "$cfg/warmbench.json" <<JSON
{ "database": "$db",
  "http": { "listen": "127.0.0.1:$http_port", "public_url": "https://go.example.com" },
  "secret_file": "secret.key",
  "smtp": { "url": "smtp://127.0.0.1:$1", "tls": "off", "connections": $CONNS,
            "timeout_s": 30, "retry_base_s": 60 },
  "bounce_domain": "bounces.example.com",
  "senders": { "ana": { "from": "Ana Ruiz <ana@example.com>", "reply_to": "ana@example.com",
                        "daily_limit": 0, "min_interval_s": 0 } },
  "sequences_dir": "sequences", "templates_dir": "templates",
  "log": { "level": "info", "format": "text" } }
JSON
}
cat > "$cfg/sequences/bench.json" <<'JSON'
{ "id": "bench", "sender": "ana",
  "audience": { "tags_any": ["bench"], "auto_enroll": false },
  "window": { "days": ["mon","tue","wed","thu","fri","sat","sun"], "start": "00:00",
              "end": "24:00", "timezone": "UTC" },
  "links": { "apply": "https://example.com/jobs/backend", "blog": "https://example.com/eng" },
  "steps": [ { "after": "0s", "subject": "{{first_name|Hi}}, about backend at Example",
               "text": "intro.txt", "html": "intro.html" } ],
  "stop_on": ["reply", "unsubscribe", "bounce", "click:apply"],
  "handoff_on": [] }
JSON
write_config 2525
wb() { "$WB" --config "$cfg/warmbench.json" "$@"; }
wb check-config >/dev/null
wb migrate >/dev/null

say "importing $COUNT candidates (+5 for the calibration run)"
awk -v n="$COUNT" 'BEGIN {
    print "email,first_name,last_name,title,company,location,timezone,tags,consent,source"
    for (i = 1; i <= 5; i++)
        printf "sample%d@example.net,Sample%d,Person%d,Senior Engineer,Company %d,\"Berlin, Germany\",Europe/Berlin,sample,opt_in,linkedin\n", i, i, i, i
    for (i = 1; i <= n; i++)
        printf "person%06d@example.com,First%d,Last%d,Senior Engineer,Company %d,\"Berlin, Germany\",Europe/Berlin,bench,opt_in,linkedin\n", i, i % 1000, i % 1000, i % 1000
}' > "$tmp/pool.csv"
wb import "$tmp/pool.csv"

# --- calibration: what one message warmbenchd sends looks like ------------
say "calibration: 5 messages into smtpd.py, to learn the message size"
cal_port=$(wb_free_port)
mkdir -p "$tmp/cal"
/usr/bin/python3 tests/integration/smtpd.py --port "$cal_port" --outdir "$tmp/cal" \
    > "$tmp/cal.log" 2>&1 &
pids+=($!)
cal_pid=$!
for _ in $(seq 100); do grep -q READY "$tmp/cal.log" && break; sleep 0.1; done
write_config "$cal_port"
wb enroll bench --tag sample
"$WBD" --config "$cfg/warmbench.json" 2> "$tmp/cal-warmbenchd.log" &
wpid=$!
pids+=($wpid)
for _ in $(seq 300); do
    [ "$(q "SELECT count(*) FROM messages WHERE state = 'sent'")" -ge 5 ] && break
    sleep 0.1
done
kill -TERM "$wpid"; wait "$wpid" || true
kill -TERM "$cal_pid"; wait "$cal_pid" 2>/dev/null || true
sample=$(ls "$tmp"/cal/*.eml 2>/dev/null | head -1)
[ -n "$sample" ] || { echo "bench-send: the calibration run sent nothing; see $tmp/cal-warmbenchd.log" >&2; KEEP=1; exit 1; }
msg_bytes=$(stat -c %s "$sample")
echo "one message: $msg_bytes bytes ($(grep -c '' "$sample") lines, $(grep -m1 -i '^Content-Type:' "$sample" | tr -d '\r'))"
env_from=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["mail_from"])' "${sample%.eml}.json")
rcpt=person000001@example.com

# --- the sink: one smtp-sink for all three runs ----------------------------
sink_port=$(wb_free_port)
if [ "$(id -u)" = 0 ]; then sink_user=(-u postfix); else sink_user=(); fi
"$SINK" -c "${sink_user[@]}" 127.0.0.1:"$sink_port" 256 > "$tmp/sink.out" 2> "$tmp/sink.err" &
sink_pid=$!
pids+=($sink_pid)
sleep 0.3
kill -0 "$sink_pid" || { echo "bench-send: smtp-sink did not start:" >&2; cat "$tmp/sink.err" >&2; exit 1; }
# smtp-sink -c rewrites "sess=N quit=N mesg=N\r" as it goes: the last mesg= is the count.
sink_count() { tail -c 200 "$tmp/sink.out" | tr '\r' '\n' | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -1; }
sink_at() { local c; c=$(sink_count); echo "${c:-0}"; }

# --- run 1: warmbenchd ------------------------------------------------------
write_config "$sink_port"
wb enroll bench --tag bench
due=$(q "SELECT count(*) FROM enrollments e JOIN candidates c ON c.id = e.candidate_id
         WHERE e.state = 'active' AND c.email LIKE 'person%'")
[ "$due" = "$COUNT" ] || { echo "bench-send: $due enrollments active, expected $COUNT" >&2; exit 1; }
# The database is the truth: one psql session (no process or backend started
# per poll) counts 'sent' every 0.05 s with the server's clock, less the
# calibration run's messages. It starts once the sink has every message, so
# that its count(*), a scan of the whole table, does not take CPU from the
# run itself (it did: about 10 us of PostgreSQL time per message).
cal_sent=$(q "SELECT count(*) FROM messages WHERE state = 'sent'")
sent_q="SELECT count(*) - $cal_sent FROM messages WHERE state = 'sent'"
watch_q="SELECT extract(epoch FROM clock_timestamp()), count(*) - $cal_sent
         FROM messages WHERE state = 'sent'"
say "run 1: warmbenchd, $COUNT due enrollments, $CONNS connections"
base=$(sink_at)
watch_pid=""
[ -n "${PGSTAT:-}" ] && q "SELECT pg_stat_statements_reset()" >/dev/null
b1=$(busy_cpu) p1=$(pg_cpu) s1=$(cpu_of "$sink_pid")
[ -n "${PGPROC:-}" ] && pg_procs > "$tmp/pgproc1.txt"
/usr/bin/time -v -o "$tmp/time.txt" "$WBD" --config "$cfg/warmbench.json" \
    2> "$tmp/warmbenchd.log" &
tpid=$!
pids+=($tpid)
t0=$(now)
# PERF=1: a system-wide call-graph profile of run 1 (PERF_S seconds);
# PERF=wbd: warmbenchd alone, DWARF call graphs (libcurl has no frame pointers).
if [ "${PERF:-}" = 1 ]; then
    perf record -a -g -o "$tmp/perf.data" -- sleep "${PERF_S:-20}" > "$tmp/perf.log" 2>&1 &
    pids+=($!)
fi
# One watcher process (tests/bench/watch_send.py) waits for the sink to have
# them all: a shell loop here forked enough to take CPU from the run.
/usr/bin/python3 tests/bench/watch_send.py "$tmp/sink.out" "$base" "$COUNT" "$tpid" 600 \
    > "$tmp/watch-sink.out" &
watcher=$!
pids+=($watcher)
wpid=""
for _ in $(seq 200); do
    wpid=$(awk '$1 == "wpid" {print $2}' "$tmp/watch-sink.out")
    [ -n "$wpid" ] && break
    sleep 0.05
done
if [ -n "$wpid" ] && [ "${PERF:-}" = wbd ]; then
    perf record -F 499 --call-graph dwarf,16384 -p "$wpid" -o "$tmp/perf.data" \
        > "$tmp/perf.log" 2>&1 &
    pids+=($!)
fi
if ! wait "$watcher" || [ -z "$wpid" ]; then
    echo "bench-send: run 1 did not finish ($(tail -1 "$tmp/watch-sink.out")); sink $(( $(sink_at) - base )), db $(q "$sent_q"); see $tmp/warmbenchd.log" >&2
    KEEP=1; exit 1
fi
read -r _ t_sink hwm_kb < <(grep '^done ' "$tmp/watch-sink.out")
# Then the database: one psql session counts 'sent' every 0.05 s with the
# server's clock until it has them all.
printf '%s \\watch 0.05\n' "$watch_q" | psql -X -A -t -q -F ' ' -d "$db" > "$tmp/watch.out" 2>&1 &
watch_pid=$!
pids+=($watch_pid)
t_db=""
for _ in $(seq 1200); do
    t_db=$(awk -v n="$COUNT" 'NF == 2 && $2 >= n {print $1; exit}' "$tmp/watch.out")
    [ -n "$t_db" ] && break
    sleep 0.05
done
[ -n "$t_db" ] || { echo "bench-send: the database never had $COUNT sent ($(q "$sent_q"))" >&2; KEEP=1; exit 1; }
w_cpu=$(cpu_of "$wpid")
w_busy=$(busy_cpu) w_pg=$(pg_cpu) w_sink=$(cpu_of "$sink_pid")
[ -n "${PGPROC:-}" ] && pg_procs > "$tmp/pgproc2.txt"
[ -n "$wpid" ] && kill -TERM "$wpid"
[ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null || true
wait "$tpid" || true
rss_kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$tmp/time.txt")
wbd_cpu=$(awk -F: '/User time/ {u = $2} /System time/ {s = $2} END {printf "%.2f s user, %.2f s sys", u, s}' "$tmp/time.txt")
echo "warmbenchd CPU: $wbd_cpu"
states=$(q "SELECT string_agg(state || '=' || n, ' ' ORDER BY state) FROM
            (SELECT state, count(*) n FROM messages GROUP BY state) s")
echo "messages by state: $states"
if [ -n "${PGSTAT:-}" ]; then
    psql -X -q -d "$db" -c "SELECT calls, round(total_exec_time::numeric, 0) AS exec_ms,
            round(total_plan_time::numeric, 0) AS plan_ms, rows, toplevel AS top,
            round((1000 * total_exec_time / $COUNT)::numeric, 1) AS us_per_msg,
            wal_records, round(wal_bytes / $COUNT) AS wal_b_per_msg, wal_fpi, left(regexp_replace(query, '\s+', ' ', 'g'), 90) AS query
        FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 30" > "$tmp/pgstat.txt"
fi
wbd_sink_s=$(awk -v a="$t0" -v b="$t_sink" 'BEGIN {print b - a}')
wbd_db_s=$(awk -v a="$t0" -v b="$t_db" 'BEGIN {print b - a}')

# --- run 2: the raw libcurl loop -------------------------------------------
say "run 2: raw libcurl multi loop, $COUNT copies of that message, $CONNS connections"
base=$(sink_at)
b2=$(busy_cpu) s2=$(cpu_of "$sink_pid")
raw_line=$(/usr/bin/time -f '%U %S' -o "$tmp/raw-time.txt" \
    "$RAW" "smtp://127.0.0.1:$sink_port" "$sample" "$COUNT" "$CONNS" "$env_from" "$rcpt")
r_busy=$(busy_cpu) r_sink=$(cpu_of "$sink_pid")
r_cpu=$(awk '{print $1 + $2}' "$tmp/raw-time.txt")
echo "$raw_line"
raw_s=$(echo "$raw_line" | sed -n 's/.* \([0-9.]*\) s,.*/\1/p')
sleep 0.3
echo "sink got $(( $(sink_at) - base ))"

# --- run 3: smtp-source -d --------------------------------------------------
say "run 3: smtp-source -d -s $CONNS -m $COUNT -F (that message)"
tr -d '\r' < "$sample" > "$tmp/sample.lf" # smtp-source -F appends CRLF to each line
base=$(sink_at)
b3=$(busy_cpu) s3=$(cpu_of "$sink_pid")
t0=$(now)
/usr/bin/time -f '%U %S' -o "$tmp/src-time.txt" \
    "$SOURCE" -d -s "$CONNS" -m "$COUNT" -F "$tmp/sample.lf" -f "$env_from" -t "$rcpt" \
    127.0.0.1:"$sink_port"
t1=$(now)
x_busy=$(busy_cpu) x_sink=$(cpu_of "$sink_pid")
x_cpu=$(awk '{print $1 + $2}' "$tmp/src-time.txt")
sleep 0.3
src_got=$(( $(sink_at) - base ))
echo "sink got $src_got"
src_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')

# --- figures -----------------------------------------------------------------
echo
awk -v n="$COUNT" -v c="$CONNS" -v bytes="$msg_bytes" -v wdb="$wbd_db_s" -v wsk="$wbd_sink_s" \
    -v raw="$raw_s" -v src="$src_s" -v rss="${rss_kb:-0}" -v hwm="${hwm_kb:-0}" \
    -v pg="$pg_settings" -v cpus="$(nproc)" -v load="$(cut -d' ' -f1-3 /proc/loadavg)" 'BEGIN {
    w = n / wdb; ws = n / wsk; r = n / raw; s = n / src
    printf "bench-send: %d messages of %d bytes, %d connections, smtp-sink on loopback, %d CPUs (load %s)\n", n, bytes, c, cpus, load
    printf "PostgreSQL: %s\n", pg
    printf "warmbenchd (start -> all %d sent in the db): %7.2f s  %7.0f msg/s\n", n, wdb, w
    printf "warmbenchd (start -> sink received %d):      %7.2f s  %7.0f msg/s\n", n, wsk, ws
    printf "raw libcurl multi loop:                          %7.2f s  %7.0f msg/s\n", raw, r
    printf "smtp-source -d:                                  %7.2f s  %7.0f msg/s\n", src, s
    printf "ratio warmbenchd/raw-curl:    %.2f  (target >= 0.80) %s\n", w / r, ((w / r >= 0.8) ? "ok" : "BELOW TARGET")
    printf "ratio warmbenchd/smtp-source: %.2f\n", w / s
    printf "warmbenchd peak RSS: %.1f MB (time -v; VmHWM before SIGTERM %.1f MB)  (target <= 64 MB) %s\n", rss / 1024, hwm / 1024, ((rss / 1024 <= 64) ? "ok" : "ABOVE TARGET")
}'
[ -n "${PGSTAT:-}" ] && cat "$tmp/pgstat.txt"
if [ -n "${PGPROC:-}" ]; then
    echo "PostgreSQL CPU per message over run 1, by process (us, user + system):"
    awk -v n="$COUNT" 'NR == FNR { u[$1] = $2; s[$1] = $3; next }
        { t = ""; for (i = 4; i <= NF; i++) t = t " " $i
          du = 1e6 * ($2 - u[$1]) / n; ds = 1e6 * ($3 - s[$1]) / n
          if (du + ds >= 0.5) printf "  %7.1f + %6.1f  %s\n", du, ds, t }' \
        "$tmp/pgproc1.txt" "$tmp/pgproc2.txt"
fi
# CPU time per message, in microseconds: the sender itself, PostgreSQL (all
# its processes), the sink, and the whole
# machine (which includes other work on it: compare with the load above).
awk -v n="$COUNT" -v w="$w_cpu" -v pg="$(awk -v a="$p1" -v b="$w_pg" 'BEGIN {print b - a}')" \
    -v ws="$(awk -v a="$s1" -v b="$w_sink" 'BEGIN {print b - a}')" \
    -v wb="$(awk -v a="$b1" -v b="$w_busy" 'BEGIN {print b - a}')" \
    -v r="$r_cpu" -v rs="$(awk -v a="$s2" -v b="$r_sink" 'BEGIN {print b - a}')" \
    -v rb="$(awk -v a="$b2" -v b="$r_busy" 'BEGIN {print b - a}')" \
    -v x="$x_cpu" -v xs="$(awk -v a="$s3" -v b="$x_sink" 'BEGIN {print b - a}')" \
    -v xb="$(awk -v a="$b3" -v b="$x_busy" 'BEGIN {print b - a}')" 'BEGIN {
    u = 1e6 / n
    printf "CPU per message (us):   sender  PostgreSQL    sink  machine (all processes)\n"
    printf "  warmbenchd            %6.1f      %6.1f  %6.1f  %7.1f\n", w * u, pg * u, ws * u, wb * u
    printf "  raw libcurl loop      %6.1f           -  %6.1f  %7.1f\n", r * u, rs * u, rb * u
    printf "  smtp-source -d        %6.1f           -  %6.1f  %7.1f\n", x * u, xs * u, xb * u
}'
