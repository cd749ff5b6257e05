#!/usr/bin/env bash
# `make demo-screenshot`: renders the demo's HTML report to a PNG with
# headless Chromium, as a reader's browser would show it (the page has no
# script and no URL; it opens offline).
# Usage: tests/demo/screenshot.sh REPORT.html OUT.png [WIDTHxHEIGHT]
set -euo pipefail
report=$(realpath "$1")
out=$2
size=${3:-1200,2850}
[ -s "$report" ] || { echo "no report at $1: run make demo first" >&2; exit 1; }
command -v chromium >/dev/null || { echo "chromium is missing: make deps installs it" >&2; exit 1; }
prof=$(mktemp -d /tmp/wbshot-XXXXXX)
trap 'rm -rf "$prof"' EXIT
mkdir -p "$(dirname "$out")"
# --no-sandbox: Chromium's sandbox refuses to run as root.
DBUS_SESSION_BUS_ADDRESS=disabled: chromium --headless --no-sandbox --disable-gpu \
    --no-first-run --disable-extensions --disable-sync --disable-background-networking \
    --hide-scrollbars --user-data-dir="$prof" --screenshot="$prof/shot.png" \
    --window-size="$size" "file://$report" > "$prof/chromium.log" 2>&1 \
    || { cat "$prof/chromium.log" >&2; exit 1; }
[ -s "$prof/shot.png" ] || { cat "$prof/chromium.log" >&2; exit 1; }
mv "$prof/shot.png" "$out"
echo "wrote $out"
