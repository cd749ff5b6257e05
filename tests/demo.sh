#!/usr/bin/env bash
# `make demo`: the whole loop on this machine, on real local parts. A
# throwaway PostgreSQL, an SMTP sink that keeps every message as a file,
# Dovecot as the sender's mailbox, an ATS that verifies each handoff's
# signature; the example pool and sequences from config/ (windows opened to
# every hour, later steps 15 s apart so the demo finishes); warmbenchd
# sending; simulated people who open, click, reply, bounce, unsubscribe and
# complain through the real interfaces (tests/demo/people.py); a rejected
# finalist sent back by the ATS; then stats, pool, show, webhooks and the
# HTML report. Any step of the loop that does not happen fails the run.
# Usage: tests/demo.sh BUILD_DIR   (WB_DEMO_DIR: the output folder, default demo/)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=$(cd "${1:-build}" && pwd)
demo=$(realpath -m "${WB_DEMO_DIR:-$root/demo}")
py=/usr/bin/python3
t0=$(date +%s)
shown=${demo#"$root"/}   # demo/ when it is inside the clone
. tests/pg.sh

# What a previous run left, if it was killed before its own clean-up.
stop_all() {
    local p pid
    for p in daemon people ats mailbox smtp; do
        if [ -f "$demo/$p.pid" ]; then
            pid=$(cat "$demo/$p.pid")
            kill "$pid" 2>/dev/null && for _ in $(seq 100); do
                kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
            rm -f "$demo/$p.pid"
        fi
    done
    # A mailbox.py that was SIGKILLed could not stop its Dovecot.
    if [ -f "$demo/imap.json" ]; then
        "$py" - "$demo/imap.json" <<'PY' || true
import json, os, shutil, signal, sys
st = json.load(open(sys.argv[1]))
try:
    os.kill(st["dovecot_pid"], signal.SIGTERM)
except OSError:
    pass
shutil.rmtree(st["dir"], ignore_errors=True)
PY
        rm -f "$demo/imap.json"
    fi
    if [ -f "$demo/pg.dir" ]; then
        local old
        old=$(cat "$demo/pg.dir")
        (cd / && wb_pg_stop "$old")
        rm -rf "$old" "$demo/pg.dir"
    fi
}
stop_all
rm -rf "$demo"
mkdir -p "$demo/mail" "$demo/ats"
# The cluster lives under /tmp, not in the clone: PostgreSQL runs as the
# postgres user, who cannot enter a clone in /root (mode 0700).
pgdir=$(mktemp -d /tmp/wbdemo-pg-XXXXXX)
echo "$pgdir" > "$demo/pg.dir"
trap stop_all EXIT
trap 'exit 130' INT TERM

fail() { echo "DEMO FAILED: $*" >&2; exit 1; }
# wait_file FILE WHAT: waits up to 15 s for FILE to exist.
wait_file() {
    for _ in $(seq 150); do [ -e "$1" ] && return 0; sleep 0.1; done
    fail "$2 did not start (see $demo/*.log)"
}

echo "== starting PostgreSQL ($pgdir)"
# From /: the postgres user cannot enter a private clone, and initdb and
# pg_ctl say so when started from one.
cd /
wb_pg_start "$pgdir"
cd "$root"
psql -X -q -d "$WB_PG_URL" -c "CREATE DATABASE warmbench"
db="postgresql://postgres@127.0.0.1:$WB_PG_PORT/warmbench"
sql() { psql -X -A -t -d "$db" -c "$1"; }

echo "== starting the SMTP sink (demo/mail), Dovecot (the sender's mailbox), the ATS (demo/ats)"
smtp_port=$(wb_free_port)
"$py" tests/integration/smtpd.py --port "$smtp_port" --outdir "$demo/mail" \
    > "$demo/smtp.log" 2>&1 &
echo $! > "$demo/smtp.pid"
cp -r config "$demo/config"
head -c 32 /dev/urandom | base64 > "$demo/config/secret.key"
head -c 32 /dev/urandom | base64 > "$demo/config/ats.key"
chmod 600 "$demo/config/secret.key" "$demo/config/ats.key"
"$py" tests/demo/mailbox.py --state "$demo/imap.json" --password-file "$demo/config/imap.pw" \
    > "$demo/mailbox.log" 2>&1 &
echo $! > "$demo/mailbox.pid"
ats_port=$(wb_free_port)
# Its "handoff verified" lines go to this run's output as handoffs arrive.
"$py" tests/demo/ats.py --port "$ats_port" --secret-file "$demo/config/ats.key" \
    --dir "$demo/ats" --ready "$demo/ats.ready" 2>> "$demo/ats.log" &
echo $! > "$demo/ats.pid"
for _ in $(seq 150); do grep -q READY "$demo/smtp.log" && break; sleep 0.1; done
grep -q READY "$demo/smtp.log" || fail "the SMTP sink did not start: $(cat "$demo/smtp.log")"
wait_file "$demo/imap.json" "Dovecot"
wait_file "$demo/ats.ready" "the ATS receiver"

echo "== writing demo/config from config/ (mailbox, ATS webhook, open windows, short delays)"
http_port=$(wb_free_port)
"$py" - "$demo/config" "$db" "$smtp_port" "$http_port" "$demo/imap.json" "$ats_port" <<'PY'
import json, os, sys
d, db, smtp_port, http_port, imap_state, ats_port = sys.argv[1:]
imap = json.load(open(imap_state))
path = os.path.join(d, "warmbench.json")
cfg = json.load(open(path))
cfg["database"] = db
cfg["smtp"].update(url="smtp://127.0.0.1:%s" % smtp_port, tls="off", timeout_s=10)
cfg["http"].update(listen="127.0.0.1:%s" % http_port, public_url="http://127.0.0.1:%s" % http_port)
# The demo's Dovecot listens on loopback only, without TLS.
cfg["mailbox"] = {"url": imap["url"], "username": imap["user"], "password_file": "imap.pw",
                  "poll_s": 1, "tls": "off"}
cfg["ats"] = {"webhook_url": "http://127.0.0.1:%s/hooks/warmbench" % ats_port,
              "secret_file": "ats.key", "max_attempts": 5, "retry_base_s": 1}
# The guard judges a sender's complaint rate from min_sample mails on (50
# by default): the demo's one complaint in some 70 mails would pause ana
# before the later steps. A real sender sends far more than the demo.
cfg["senders"]["ana"]["guard"] = {"min_sample": 1000}
json.dump(cfg, open(path, "w"), indent=2)
seqdir = os.path.join(d, "sequences")
for name in os.listdir(seqdir):
    p = os.path.join(seqdir, name)
    seq = json.load(open(p))
    seq["window"] = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                     "start": "00:00", "end": "24:00", "timezone": "UTC"}
    for i, step in enumerate(seq["steps"]):
        step["after"] = "0s" if i == 0 else "15s"
    json.dump(seq, open(p, "w"), indent=2)
PY
wb="$build/warmbench --config $demo/config/warmbench.json"

echo "== warmbench check-config"
$wb check-config
echo "== warmbench migrate"
$wb migrate 2>&1 | grep -v '^NOTICE:' | grep -v '^applied [0-9]'
# The pool arrived over the past ten weeks: a copy of config/pool.csv with
# an added_at column (import's own way of dating a new person), so that the
# report's growth chart has a shape rather than one point.
"$py" - config/pool.csv "$demo/pool.csv" <<'PY'
import csv, datetime, sys
rows = list(csv.reader(open(sys.argv[1], newline="", encoding="utf-8")))
today = datetime.date.today()
with open(sys.argv[2], "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(rows[0] + ["added_at"])
    n = len(rows) - 1
    for i, row in enumerate(rows[1:]):
        # Older rows first, more people each week: 70 days ago to today.
        ago = round(70 * (1 - (i / max(n - 1, 1)) ** 0.7))
        w.writerow(row + [(today - datetime.timedelta(days=ago)).isoformat()])
PY
echo "== warmbench import $shown/pool.csv (config/pool.csv, added over the past 10 weeks)"
$wb import "$demo/pool.csv"
weeks=$(sql "SELECT count(DISTINCT date_trunc('week', created_at)) FROM candidates")
[ "$weeks" -ge 5 ] || fail "the pool spans $weeks week(s); the growth chart needs more"
echo "== warmbench enroll"
for f in "$demo"/config/sequences/*.json; do
    $wb enroll "$(basename "$f" .json)"
done

echo "== warmbenchd: step 1 goes out"
"$build/warmbenchd" --config "$demo/config/warmbench.json" 2> "$demo/warmbenchd.log" &
echo $! > "$demo/daemon.pid"
enrolled=$(sql "SELECT count(*) FROM enrollments")
for _ in $(seq 300); do
    sent=$(sql "SELECT count(*) FROM messages WHERE step = 1 AND state = 'sent'")
    [ "$sent" -ge "$enrolled" ] && break
    kill -0 "$(cat "$demo/daemon.pid")" 2>/dev/null || fail "warmbenchd exited: $(tail -5 "$demo/warmbenchd.log")"
    sleep 0.1
done
[ "$sent" -ge "$enrolled" ] || fail "step 1 reached $sent of $enrolled people in 30 s"
echo "step 1 sent to $sent people ($(ls "$demo/mail" | grep -c '\.eml$') mails in demo/mail)"

echo "== people act on their mail (tests/demo/people.py)"
"$py" tests/demo/people.py act --mail "$demo/mail" --imap-state "$demo/imap.json" \
    --config "$demo/config/warmbench.json" --warmbench "$build/warmbench" --ats-dir "$demo/ats" &
echo $! > "$demo/people.pid"
wait "$(cat "$demo/people.pid")" || fail "a step of the loop did not happen (above)"
rm -f "$demo/people.pid"

echo "== warmbenchd: the later steps go out to those still active"
for _ in $(seq 600); do
    # A step due within the minute is still to come; an out-of-office
    # pause is not waited for.
    left=$(sql "SELECT count(*) FROM enrollments WHERE state = 'active'
                AND coalesce(next_due_at, now()) < now() + interval '1 minute'")
    [ "$left" = 0 ] && break
    kill -0 "$(cat "$demo/daemon.pid")" 2>/dev/null || fail "warmbenchd exited: $(tail -5 "$demo/warmbenchd.log")"
    sleep 0.2
done
[ "$left" = 0 ] || fail "$left enrollment(s) still due after 120 s"
kill -TERM "$(cat "$demo/daemon.pid")"
wait "$(cat "$demo/daemon.pid")" || fail "warmbenchd did not exit cleanly: $(tail -5 "$demo/warmbenchd.log")"
rm -f "$demo/daemon.pid"

echo "== warmbench stats"
$wb stats
echo "== warmbench pool"
$wb pool
echo "== warmbench show jose.garcia@example.net"
$wb show jose.garcia@example.net
echo "== warmbench webhooks"
$wb webhooks
echo "== warmbench report --html $shown/report.html"
$wb report --html "$demo/report.html"
$wb stats --json > "$demo/stats.json"
"$py" tests/demo/people.py check --stats "$demo/stats.json" || fail "the stats miss a step of the loop"

echo
echo "The whole loop ran in $(( $(date +%s) - t0 )) s. The report is $shown/report.html (one"
echo "self-contained page; make demo-screenshot renders it to docs/images/demo-report.png)."
echo "Sent mail: $shown/mail (an .eml per message, its envelope in .json). Handoffs the ATS"
echo "verified: $shown/ats/NNN.json. The daemon's log: $shown/warmbenchd.log."
