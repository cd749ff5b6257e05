#!/usr/bin/env bash
# The tracking endpoint against nginx serving the same 43-byte GIF from a
# file on loopback: wrk with the same threads, connections and duration on
# each, requesting the pixels of MESSAGES messages in turn (each is hit many
# times a second). Prints both req/s, their ratio and the non-2xx answers
# against the goal (none, and at least 0.5 of nginx), then checks, after
# the driver's SIGTERM flush, that the events stored are one per (message,
# minute) hit: as many as the distinct (message, minute) pairs among them,
# every message present, and every pixel answered either stored or counted
# in warmbench_tracking_repeats_total. Uses tests/drivers/drv_http (the
# endpoint as wired in warmbenchd) on a throwaway PostgreSQL cluster.
# Usage: tests/bench/bench_track.sh [BUILD_DIR]
#        (THREADS=2, CONNS=64, DURATION=10, MESSAGES=2000)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
DURATION=${DURATION:-10}
MESSAGES=${MESSAGES:-2000}
WB=$PWD/$BUILD/warmbench
DRV=$PWD/$BUILD/tests/drv_http
LUA=$PWD/tests/bench/track.lua
for p in "$WB" "$DRV"; do [ -x "$p" ] || { echo "bench-track: $p not built" >&2; exit 1; }; done
for c in wrk nginx; do
    command -v $c >/dev/null || [ -x /usr/sbin/$c ] ||
        { echo "bench-track: needs $c (make bench-deps, or apt-get install wrk nginx-light)" >&2; exit 1; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
. tests/pg.sh

tmp=$(mktemp -d /tmp/wbtrack-XXXXXX)
chmod 755 "$tmp"
drv_pid= nginx_pid=
cleanup() {
    [ -n "$drv_pid" ] && kill "$drv_pid" 2>/dev/null || true
    [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
    wb_pg_stop "$tmp/pg"
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

WB_PG_OPTS="-c fsync=off -c synchronous_commit=off -c full_page_writes=off" wb_pg_start "$tmp/pg"
psql() { command psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$WB_PG_URL" "$@"; }
port=$(wb_free_port)
nport=$(wb_free_port)

cfg=$tmp/cfg
mkdir -p "$cfg/sequences" "$cfg/templates"
echo "bench-secret-0123456789abcdef-0123456789" > "$cfg/secret.key"
chmod 600 "$cfg/secret.key"
echo 'Hi {{links.apply}}' > "$cfg/templates/t.txt"
seq='{"id": "bench", "sender": "ana", "links": {"apply": "https://example.com/jobs"},
      "steps": [{"after": "0d", "subject": "Hi", "text": "t.txt"}],
      "stop_on": ["reply"], "handoff_on": ["reply"]}'
echo "$seq" > "$cfg/sequences/bench.json"
cat > "$cfg/warmbench.json" <<JSON
{ "database": "$WB_PG_URL",
  "http": { "listen": "127.0.0.1:$port", "public_url": "http://127.0.0.1:$port" },
  "secret_file": "secret.key",
  "smtp": { "url": "smtp://127.0.0.1:2525", "tls": "off" },
  "bounce_domain": "bounces.example.com",
  "senders": { "ana": { "from": "Ana <ana@example.com>" } },
  "log": { "level": "warn" } }
JSON
"$WB" --config "$cfg/warmbench.json" migrate >/dev/null
psql -c "
INSERT INTO sequences (id, content_hash, definition) VALUES ('bench', 'x', '$seq'::jsonb);
INSERT INTO candidates (email, consent)
SELECT 'bench' || i || '@example.com', 'opt_in' FROM generate_series(1, $MESSAGES) i;
INSERT INTO enrollments (candidate_id, sequence_id, step) SELECT id, 'bench', 1 FROM candidates;
INSERT INTO messages (enrollment_id, candidate_id, sequence_id, step, sender, state, sent_at)
SELECT id, candidate_id, 'bench', 1, 'ana', 'sent', now() - interval '1 hour' FROM enrollments;"

# nginx: one worker (warmbenchd is one loop), the same GIF as a file per
# token.
mkdir -p "$tmp/www/o"
gif=$tmp/pixel.gif
printf 'GIF89a\001\000\001\000\200\000\000\000\000\000\377\377\377!\371\004\001\000\000\000\000,\000\000\000\000\001\000\001\000\000\002\002D\001\000;' \
    > "$gif"
[ "$(stat -c %s "$gif")" = 43 ] || { echo "bench-track: bad GIF" >&2; exit 1; }
for mid in $(psql -c "SELECT id FROM messages ORDER BY id"); do
    tok=$("$DRV" --config "$cfg/warmbench.json" token open "$mid")
    echo "/o/$tok.gif" >> "$tmp/paths"
    cp "$gif" "$tmp/www/o/$tok.gif"
done
chmod -R a+rX "$tmp/www" "$tmp/paths"
pixel=$(head -1 "$tmp/paths")
cat > "$tmp/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/nginx.err;
events { worker_connections 4096; }
http {
    access_log off;
    types { image/gif gif; }
    client_body_temp_path $tmp/nb; proxy_temp_path $tmp/np; fastcgi_temp_path $tmp/nf;
    uwsgi_temp_path $tmp/nu; scgi_temp_path $tmp/ns;
    server {
        listen 127.0.0.1:$nport;
        root $tmp/www;
        add_header Cache-Control "no-store, private";
    }
}
CONF
"$NGINX" -c "$tmp/nginx.conf" -p "$tmp" 2>>"$tmp/nginx.err" &
nginx_pid=$!

WB_FLUSH_S=600 "$DRV" --config "$cfg/warmbench.json" > "$tmp/drv.out" 2> "$tmp/drv.err" &
drv_pid=$!
for _ in $(seq 100); do grep -q READY "$tmp/drv.out" 2>/dev/null && break; sleep 0.1; done
grep -q READY "$tmp/drv.out" || { cat "$tmp/drv.err" >&2; exit 1; }
curl -fsS -o /dev/null "http://127.0.0.1:$nport$pixel" || { cat "$tmp/nginx.err" >&2; exit 1; }
psql -c "DELETE FROM events"   # the curl check above records nothing, but be exact

run() { wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -s "$LUA" "$1" -- "$tmp/paths"; }
echo "wrk -t$THREADS -c$CONNS -d${DURATION}s, $MESSAGES messages' pixels in turn, each: nginx" \
     "(1 worker, static files), then warmbench"
run "http://127.0.0.1:$nport" > "$tmp/nginx.wrk"
wb_start=$(date +%s)
run "http://127.0.0.1:$port" > "$tmp/wb.wrk"
wb_end=$(date +%s)
repeats=$(curl -fsS "http://127.0.0.1:$port/metrics" |
          awk '$1 == "warmbench_tracking_repeats_total{type=\"open\"}" {print $2}')
flush_start=$(date +%s.%N)
kill -TERM "$drv_pid"
wait "$drv_pid" || { echo "bench-track: drv_http exited $?" >&2; cat "$tmp/drv.err" >&2; exit 1; }
drv_pid=
flush_s=$(awk -v a="$flush_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')

rps() { awk '/^Requests\/sec/ {print $2}' "$1"; }
field() { awk -v k="$2" '$1 == k {print $2}' "$1"; }
errors() { sed -n 's/^ *Socket errors: *//p' "$1"; }
n_rps=$(rps "$tmp/nginx.wrk"); w_rps=$(rps "$tmp/wb.wrk")
ratio=$(awk -v a="$w_rps" -v b="$n_rps" 'BEGIN { printf "%.2f", a / b }')
w_pixels=$(field "$tmp/wb.wrk" pixels)
w_non2xx=$(field "$tmp/wb.wrk" non2xx)
w_odd=$(field "$tmp/wb.wrk" odd)
w_done=$(awk '/requests in/ {print $1}' "$tmp/wb.wrk")
IFS='|' read -r events pairs hit <<<"$(psql -c "
SELECT count(*), count(DISTINCT (message_id, floor(extract(epoch FROM at) / 60))),
       count(DISTINCT message_id) FROM events WHERE type = 'open'")"
minutes=$(( wb_end / 60 - wb_start / 60 + 1 ))
printf 'nginx      %10s req/s  (non-2xx %s)\n' "$n_rps" "$(field "$tmp/nginx.wrk" non2xx)"
printf 'warmbench  %10s req/s  (%s of nginx)\n' "$w_rps" "$ratio"
echo "warmbench: $w_done requests completed: $w_pixels pixels, $w_non2xx non-2xx, $w_odd other 2xx"
for f in nginx wb; do
    e=$(errors "$tmp/$f.wrk")
    [ -z "$e" ] || echo "$f: socket errors: $e"
done
echo "events stored after SIGTERM flush: $events opens (the flush took $flush_s s);" \
     "distinct (message, minute) pairs among them: $pairs; messages with an open: $hit of" \
     "$MESSAGES; the run touched $minutes calendar minute(s), so at most $(( MESSAGES * minutes ))"
echo "repeats answered from memory: $repeats; stored + repeats = $(( events + repeats ))" \
     "(wrk read $w_pixels pixels; up to $CONNS more were cut off when it stopped)"
if [ "$w_non2xx" = 0 ] && awk -v r="$ratio" 'BEGIN { exit !(r >= 0.5) }'; then
    echo "GOAL MET: no non-2xx answer, $ratio >= 0.5 of nginx"
else
    echo "GOAL MISSED: $w_non2xx non-2xx answers, $ratio of nginx (goal: 0, >= 0.5)"
fi
fail=
[ "$events" = "$pairs" ] || fail="$fail; $events opens stored for $pairs (message, minute) pairs"
[ "$hit" = "$MESSAGES" ] || fail="$fail; $hit of $MESSAGES messages have an open"
[ "$events" -le $(( MESSAGES * minutes )) ] || fail="$fail; more opens than messages x minutes"
served=$(( events + repeats ))
{ [ "$served" -ge "$w_pixels" ] && [ "$served" -le $(( w_pixels + CONNS )) ]; } ||
    fail="$fail; stored + repeats $served is not the $w_pixels pixels answered (+ <= $CONNS cut off)"
if [ -z "$fail" ]; then
    echo "OK: one open per (message, minute) hit, every pixel answered stored or a repeat"
else
    echo "MISMATCH${fail}" >&2
    exit 1
fi
