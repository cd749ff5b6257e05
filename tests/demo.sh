#!/usr/bin/env bash
# `make demo`: the whole path on this machine. A throwaway PostgreSQL, a
# local SMTP sink that keeps every message as a file, the example pool and
# sequences from config/ (windows opened to every hour and delays shortened
# to seconds so the demo finishes), warmbenchd sending, then the stats.
# Usage: tests/demo.sh BUILD_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=$root/${1:-build}
demo=$root/demo
. tests/pg.sh

for p in smtp daemon; do
    [ -f "$demo/$p.pid" ] && kill "$(cat "$demo/$p.pid")" 2>/dev/null || true
done
# The cluster lives under /tmp, not in the clone: PostgreSQL runs as the
# postgres user, who cannot enter a clone in /root (mode 0700).
if [ -f "$demo/pg.dir" ]; then
    old=$(cat "$demo/pg.dir")
    if [ -d "$old/data" ]; then wb_pg_stop "$old"; fi
    rm -rf "$old"
fi
rm -rf "$demo"
mkdir -p "$demo/mail"
pgdir=$(mktemp -d /tmp/wbdemo-pg-XXXXXX)
echo "$pgdir" > "$demo/pg.dir"
cleanup() {
    for p in daemon smtp; do
        [ -f "$demo/$p.pid" ] && kill "$(cat "$demo/$p.pid")" 2>/dev/null || true
    done
    wb_pg_stop "$pgdir"
    rm -rf "$pgdir"
}
trap cleanup EXIT

echo "== starting PostgreSQL ($pgdir)"
wb_pg_start "$pgdir"
psql -X -q -d "$WB_PG_URL" -c "CREATE DATABASE warmbench"
db="postgresql://postgres@127.0.0.1:$WB_PG_PORT/warmbench"

echo "== starting the SMTP sink (demo/mail)"
smtp_port=$(wb_free_port)
/usr/bin/python3 tests/integration/smtpd.py --port "$smtp_port" --outdir "$demo/mail" \
    > "$demo/smtp.log" 2>&1 &
echo $! > "$demo/smtp.pid"
for _ in $(seq 50); do grep -q READY "$demo/smtp.log" && break; sleep 0.1; done

echo "== writing demo/config from config/"
cp -r config "$demo/config"
head -c 32 /dev/urandom | base64 > "$demo/config/secret.key"
chmod 600 "$demo/config/secret.key"
http_port=$(wb_free_port)
/usr/bin/python3 - "$demo/config" "$db" "$smtp_port" "$http_port" <<'PY'
import json, os, sys
d, db, smtp_port, http_port = sys.argv[1:]
path = os.path.join(d, "warmbench.json")
cfg = json.load(open(path))
cfg["database"] = db
cfg["smtp"].update(url="smtp://127.0.0.1:%s" % smtp_port, tls="off", timeout_s=10)
cfg["http"].update(listen="127.0.0.1:%s" % http_port, public_url="http://127.0.0.1:%s" % http_port)
json.dump(cfg, open(path, "w"), indent=2)
seqdir = os.path.join(d, "sequences")
for name in os.listdir(seqdir):
    p = os.path.join(seqdir, name)
    seq = json.load(open(p))
    seq["window"] = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                     "start": "00:00", "end": "24:00", "timezone": "UTC"}
    for i, step in enumerate(seq["steps"]):
        step["after"] = "0s" if i == 0 else "5s"
    json.dump(seq, open(p, "w"), indent=2)
PY
wb="$build/warmbench --config $demo/config/warmbench.json"

echo "== warmbench check-config"
$wb check-config
echo "== warmbench migrate"
$wb migrate
echo "== warmbench import config/pool.csv"
$wb import config/pool.csv
echo "== warmbench enroll"
for f in "$demo"/config/sequences/*.json; do
    $wb enroll "$(basename "$f" .json)"
done

echo "== warmbenchd (until every enrolled step has gone out)"
"$build/warmbenchd" --config "$demo/config/warmbench.json" 2> "$demo/warmbenchd.log" &
echo $! > "$demo/daemon.pid"
for _ in $(seq 120); do
    left=$(psql -X -A -t -d "$db" -c "SELECT count(*) FROM enrollments WHERE state = 'active'")
    [ "$left" = 0 ] && break
    sleep 1
done
kill -TERM "$(cat "$demo/daemon.pid")"
wait "$(cat "$demo/daemon.pid")" || true
rm -f "$demo/daemon.pid"

echo "== warmbench stats"
$wb stats
echo "== warmbench pool"
$wb pool
echo "== warmbench report --html $demo/report.html"
$wb report --html "$demo/report.html"
echo
echo "The report is $demo/report.html (one self-contained page; open it in a browser)."
echo "Sent mail is in $demo/mail (one .eml per message, with its envelope in .json);"
echo "the daemon's log is $demo/warmbenchd.log."
