#!/usr/bin/env bash
# `make bench-remote`: warmbenchd against a slow SMTP server. For each delay
# in DELAYS (0.3 s, then 1.0 s) tests/integration/smtpd.py answers every
# final dot that long after it came; warmbenchd sends COUNT (400) due
# messages over CONNS (8) connections. During the send a prober asks the
# daemon's /healthz and an open pixel of a message it really sent (a valid
# token, taken from a delivered .eml) every 20 ms each, a new connection
# per request. Prints, per delay:
#   throughput in msg/s (first enroll -> the server has them all) against
#     0.9 x CONNS / delay: the connections answer concurrently (aiosmtpd is
#     asyncio), so a client that really keeps CONNS transfers in flight
#     reaches CONNS / delay;
#   /healthz and pixel p50, p99, max against p99 < 20 ms;
# Then (issue 14) two senders, each with its own smtp block and server and
# CONNS/2 connections, at the first delay: goal 0.8 x CONNS / delay, and
# the same probes (SENDERS2=0 skips it).
# Each goal PASS or MISS. Exits 0 unless the bench itself broke (a MISS is
# a figure, not a failure). A daemon that runs SMTP on its loop shows ~3
# msg/s at 0.3 s and /healthz p99 of seconds: each final dot blocks it.
#
# PostgreSQL runs with its production durability defaults, as in
# bench-send. Usage: tests/bench/bench_remote.sh [BUILD_DIR]
#   COUNT=N (400)  CONNS=N (8)  DELAYS="0.3 1.0"  KEEP=1 keeps the folder
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
BUILD=${1:-build}
COUNT=${COUNT:-400}
CONNS=${CONNS:-8}
DELAYS=${DELAYS:-0.3 1.0}
WBD=$root/$BUILD/warmbenchd
WB=$root/$BUILD/warmbench
for b in "$WB" "$WBD"; do
    [ -x "$b" ] || { echo "bench-remote: $b not built" >&2; exit 1; }
done
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null ||
    { echo "bench-remote: /usr/bin/python3 with aiosmtpd missing (Debian python3-aiosmtpd)" >&2; exit 1; }
. tests/pg.sh

tmp=$(mktemp -d /tmp/wbremote-XXXXXX)
chmod 755 "$tmp"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    wb_pg_stop "$tmp/pg"
    if [ -n "${KEEP:-}" ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
say() { echo "== $*"; }

say "PostgreSQL (throwaway cluster in $tmp/pg)"
wb_pg_start "$tmp/pg"

# --- the prober: /healthz and the pixel every 20 ms while the send runs ----
cat > "$tmp/probe.py" <<'PY'
"""probe.py HEALTHZ_URL PIXEL_URL STATS_JSON[,STATS_JSON] BASE COUNT DEADLINE_S -- ENROLL...
Probes both URLs every 20 ms (each its own thread, Connection: close), runs
the enroll command, waits until the servers' "messages" add up to BASE+COUNT
(or the deadline), stops probing, prints one line of key=value figures."""
import http.client, json, subprocess, sys, threading, time, urllib.parse

health, pixel, stats, base, count, deadline = sys.argv[1:7]
base, count, deadline = int(base), int(count), float(deadline)
enroll = sys.argv[sys.argv.index("--") + 1:]
halt = threading.Event()

def probe(url, out):
    u = urllib.parse.urlsplit(url)
    while not halt.is_set():
        t0 = time.monotonic()
        try:
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
            c.request("GET", u.path, headers={"Connection": "close"})
            r = c.getresponse()
            r.read()
            ok = r.status == 200
            c.close()
        except (OSError, http.client.HTTPException):
            ok = False
        dt = time.monotonic() - t0
        out.append((dt, ok))
        halt.wait(max(0.0, 0.02 - dt))

def delivered():
    n = 0
    for path in stats.split(","):  # one stats.json per SMTP server
        try:
            with open(path) as f:
                n += json.load(f)["messages"]
        except (OSError, ValueError, KeyError):
            pass
    return n - base

h, p = [], []
threads = [threading.Thread(target=probe, args=(health, h)),
           threading.Thread(target=probe, args=(pixel, p))]
for t in threads:
    t.start()
time.sleep(0.5)
h.clear(); p.clear()  # only what was asked during the send counts
t0 = time.monotonic()
subprocess.run(enroll, check=True, stdout=subprocess.DEVNULL)
n = 0
while time.monotonic() - t0 < deadline:
    n = delivered()
    if n >= count:
        break
    time.sleep(0.02)
t1 = time.monotonic()
halt.set()
for t in threads:
    t.join()

def q(xs, f):
    xs = sorted(x for x, _ in xs)
    return 1000 * xs[min(len(xs) - 1, int(f * len(xs)))] if xs else float("nan")

print("delivered=%d elapsed=%.3f done=%d" % (n, t1 - t0, n >= count), end=" ")
for name, xs in (("healthz", h), ("pixel", p)):
    print("%s_n=%d %s_fail=%d %s_p50=%.1f %s_p99=%.1f %s_max=%.1f" % (
        name, len(xs), name, sum(1 for _, ok in xs if not ok), name, q(xs, 0.5),
        name, q(xs, 0.99), name, q(xs, 1.0)), end=" ")
print()
PY

cp_templates() {
    mkdir -p "$1/sequences" "$1/templates"
    cp config/templates/intro.txt config/templates/intro.html "$1/templates/"
    head -c 32 /dev/urandom | base64 > "$1/secret.key"
    chmod 600 "$1/secret.key"
    cat > "$1/sequences/bench.json" <<'JSON'
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
}

# One run: SENDERS (1: the top-level smtp block with CONNS connections; 2:
# two senders, each with its own smtp block, server and CONNS/2
# connections, as recruiters sending from their own mailboxes) against
# servers that answer the final dot after DELAY s.
run_case() { # DELAY SENDERS
    local delay=$1 senders=$2 ms run cfg dbname db http_port i
    ms=$(awk -v d="$delay" 'BEGIN {printf "%d", d * 1000}')
    run=$tmp/run-$ms-$senders
    cfg=$run/cfg
    mkdir -p "$run"
    cp_templates "$cfg"
    dbname=wb_${ms}_$senders
    psql -X -q -d "$WB_PG_URL" -c "CREATE DATABASE $dbname"
    db="postgresql://postgres@127.0.0.1:$WB_PG_PORT/$dbname"
    q() { psql -X -A -t -q -d "$db" -c "$1"; }
    http_port=$(wb_free_port)
    local ports=() per=$((CONNS / senders)) sblock="" stats=""
    for ((i = 0; i < senders; i++)); do ports+=("$(wb_free_port)"); done
    if [ "$senders" = 1 ]; then
        sblock='"ana": { "from": "Ana Ruiz <ana@example.com>", "reply_to": "ana@example.com",
                        "daily_limit": 0, "min_interval_s": 0 }'
    else
        sed 's/"id": "bench", "sender": "ana"/"id": "bench-ben", "sender": "ben"/;
             s/"tags_any": \["bench"\]/"tags_any": ["bench-ben"]/' \
            "$cfg/sequences/bench.json" > "$cfg/sequences/bench-ben.json"
        sblock='"ana": { "from": "Ana Ruiz <ana@example.com>", "daily_limit": 0, "min_interval_s": 0,
                        "smtp": { "url": "smtp://127.0.0.1:'${ports[0]}'", "connections": '$per' } },
                "ben": { "from": "Ben Ode <ben@example.com>", "daily_limit": 0, "min_interval_s": 0,
                        "smtp": { "url": "smtp://127.0.0.1:'${ports[1]}'", "connections": '$per' } }'
    fi
    cat > "$cfg/warmbench.json" <<JSON
{ "database": "$db",
  "http": { "listen": "127.0.0.1:$http_port", "public_url": "http://127.0.0.1:$http_port" },
  "secret_file": "secret.key",
  "smtp": { "url": "smtp://127.0.0.1:${ports[0]}", "tls": "off", "connections": $CONNS,
            "timeout_s": 60, "retry_base_s": 60 },
  "bounce_domain": "bounces.example.com",
  "senders": { $sblock },
  "sequences_dir": "sequences", "templates_dir": "templates",
  "log": { "level": "info", "format": "text" } }
JSON
    wb() { "$WB" --config "$cfg/warmbench.json" "$@"; }
    wb check-config >/dev/null
    wb migrate >/dev/null
    awk -v n="$COUNT" -v s="$senders" 'BEGIN {
        print "email,first_name,last_name,title,company,timezone,tags,consent"
        print "sample@example.net,Sample,Person,Senior Engineer,Company,Europe/Berlin,sample,opt_in"
        for (i = 1; i <= n; i++)
            printf "person%06d@example.com,First%d,Last%d,Senior Engineer,Company %d,Europe/Berlin,%s,opt_in\n", i, i, i, i, (s == 2 && i % 2) ? "bench-ben" : "bench"
    }' > "$run/pool.csv"
    wb import "$run/pool.csv" >/dev/null

    say "delay ${delay} s, $senders sender(s): smtpd.py --delay-ms $ms, $CONNS connections in all"
    for ((i = 0; i < senders; i++)); do
        /usr/bin/python3 tests/integration/smtpd.py --port "${ports[$i]}" --outdir "$run/smtpd$i" \
            --delay-ms "$ms" > "$run/smtpd$i.log" 2>&1 &
        pids+=($!)
        for _ in $(seq 100); do grep -q READY "$run/smtpd$i.log" && break; sleep 0.1; done
        grep -q READY "$run/smtpd$i.log" || { echo "bench-remote: smtpd.py did not start" >&2; cat "$run/smtpd$i.log" >&2; KEEP=1; exit 1; }
        stats=${stats:+$stats,}$run/smtpd$i/stats.json
    done
    "$WBD" --config "$cfg/warmbench.json" 2> "$run/warmbenchd.log" &
    local wpid=$!
    pids+=($wpid)
    # One message first, to a sample candidate: its pixel URL (a valid
    # token of a sent message) is what the prober asks for.
    wb enroll bench --tag sample >/dev/null
    for _ in $(seq 300); do [ -s "$run/smtpd0/000001.eml" ] && break; sleep 0.1; done
    [ -s "$run/smtpd0/000001.eml" ] || { echo "bench-remote: the sample message never arrived; see $run/warmbenchd.log" >&2; KEEP=1; exit 1; }
    local pixel base deadline line enroll
    pixel=$(/usr/bin/python3 -c '
import email, email.policy, re, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
print(re.search(r"src=\"(http://[^\"]+/o/[^\"]+\.gif)\"", m.get_body(("html",)).get_content()).group(1))
' "$run/smtpd0/000001.eml")
    base=1
    echo "pixel: ${pixel%%/o/*}/o/…gif (message 1 of the sample run)"
    deadline=$(awk -v n="$COUNT" -v d="$delay" 'BEGIN {printf "%d", 1.3 * n * d + 60}')
    enroll="'$WB' --config '$cfg/warmbench.json' enroll bench --tag bench"
    [ "$senders" = 2 ] && enroll="$enroll && '$WB' --config '$cfg/warmbench.json' enroll bench-ben --tag bench-ben"
    line=$(/usr/bin/python3 "$tmp/probe.py" "http://127.0.0.1:$http_port/healthz" "$pixel" \
        "$stats" "$base" "$COUNT" "$deadline" -- sh -c "$enroll")
    # The database agrees: every message sent once.
    local sent=0
    for _ in $(seq 200); do
        sent=$(q "SELECT count(*) FROM messages m JOIN candidates c ON c.id = m.candidate_id
                  WHERE m.state = 'sent' AND c.email LIKE 'person%'")
        [ "$sent" -ge "$COUNT" ] && break
        sleep 0.1
    done
    kill -TERM "$wpid"; wait "$wpid" || true
    local inflight=0 got=0 dup by
    for ((i = 0; i < senders; i++)); do
        inflight=$((inflight + $(/usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get("max_in_data", 0))' "$run/smtpd$i/stats.json")))
        got=$((got + $(ls "$run"/smtpd$i/*.eml | wc -l)))
    done
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    dup=$(cat "$run"/smtpd*/*.eml | tr -d '\r' | grep -i '^Message-ID:' | sort | uniq -d | wc -l)
    by=$(for ((i = 0; i < senders; i++)); do echo -n "$(ls "$run"/smtpd$i/*.eml | wc -l) "; done)
    echo "sent in the db: $sent of $COUNT; at the server(s): $((got - 1)) (+1 sample; by server: $by), Message-IDs twice: $dup; most final dots awaiting an answer at once: $inflight"
    results+=("senders=$senders delay=$delay $line sent=$sent dup=$dup inflight=$inflight")
}

results=()
for delay in $DELAYS; do
    run_case "$delay" 1
done
# Issue 14: two senders, each on its own server, at the first delay.
[ "${SENDERS2:-1}" = 1 ] && run_case "${DELAYS%% *}" 2

echo
echo "bench-remote: $COUNT messages per delay, $CONNS connections, $(nproc) CPUs (load $(cut -d' ' -f1-3 /proc/loadavg)), $BUILD/warmbenchd of tree $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')"
for r in "${results[@]}"; do
    echo "$r" | awk -v c="$CONNS" -v n="$COUNT" '{
        for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        d = v["delay"]; f = v["senders"] == 2 ? 0.8 : 0.9; goal = f * c / d
        rate = v["delivered"] / v["elapsed"]
        printf "%s, delay %.1f s: %d/%d delivered in %.1f s = %.1f msg/s (goal >= %.1f = %.1f x %d/%.1f) %s\n",
            v["senders"] == 2 ? "two senders, own servers, " c / 2 " connections each" : "one sender",
            d, v["delivered"], n, v["elapsed"], rate, goal, f, c, d, (v["done"] == 1 && rate >= goal) ? "PASS" : "MISS"
        printf "  /healthz  p50 %6.1f ms  p99 %7.1f ms  max %7.1f ms  (%d asked, %d failed)  p99 < 20 ms %s\n",
            v["healthz_p50"], v["healthz_p99"], v["healthz_max"], v["healthz_n"], v["healthz_fail"],
            (v["healthz_p99"] < 20 && v["healthz_fail"] == 0) ? "PASS" : "MISS"
        printf "  pixel     p50 %6.1f ms  p99 %7.1f ms  max %7.1f ms  (%d asked, %d failed)  p99 < 20 ms %s\n",
            v["pixel_p50"], v["pixel_p99"], v["pixel_max"], v["pixel_n"], v["pixel_fail"],
            (v["pixel_p99"] < 20 && v["pixel_fail"] == 0) ? "PASS" : "MISS"
        printf "  in the db: %d sent; Message-IDs received twice: %d; most transfers in flight at once: %s\n",
            v["sent"], v["dup"], v["inflight"]
        if (v["dup"] > 0) printf "  DUPLICATES: a Message-ID reached the server twice\n"
    }'
done
