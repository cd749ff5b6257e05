#!/usr/bin/env bash
# `make abuse`: issue 18's HTTP abuse run at full size against warmbenchd on
# loopback: tests/integration/test_abuse.py with WB_ABUSE_LONG=1, i.e.
# slowloris from 8 addresses (2,400 connections), 10,000 keep-alive
# connections over 50 addresses, oversized and smuggling shapes, a million
# requests on one valid token (8 connections, 50 pipelined), and 512
# descriptors with a database reconnect. A one-click unsubscribe POST is
# probed every 250 ms throughout. Prints per part: unsubscribes made, their
# p50/p99/max latency, the daemon's peak RSS and descriptors, and the
# load's figures (requests/s for the flood). Fails when an unsubscribe is
# refused or takes 1 s or more, RSS passes its bound, or a descriptor error
# reaches the log. Needs 12,000 descriptors (ulimit -Hn); about 3 minutes.
# Not part of `make check`, which runs the same test at a small size.
# Usage: tests/bench/abuse.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
for p in warmbench warmbenchd tests/drv_http; do
    [ -x "$BUILD/$p" ] || { echo "abuse: $BUILD/$p not built" >&2; exit 1; }
done
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt 12000 ]; then
    echo "abuse: needs 12000 descriptors, the hard limit is $hard" >&2
    exit 1
fi
ulimit -n "$hard"
WB_ABUSE_LONG=1 WB_BUILD="$BUILD" WB_TESTS=test_abuse.py \
    exec /usr/bin/python3 tests/integration/run.py
