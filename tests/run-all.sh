#!/usr/bin/env bash
# Runs every suite and ends with one line totalling them: "N passed, N failed".
# Usage: tests/run-all.sh BUILD_DIR [BUILD_DIR...]
# Unit tests run for every build dir given; the integration tests run once,
# against the last one (the sanitizer build under `make check`).
set -u
cd "$(dirname "$0")/.."
passed=0 failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

tally() { # reads RESULT lines from $log
    while read -r _ name p f; do
        echo "  $name: $p passed, $f failed"
        passed=$((passed + p)); failed=$((failed + f))
    done < <(grep '^RESULT ' "$log")
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
last=""
for build in "$@"; do
    last=$build
    echo "== unit tests ($build)"
    for t in "$build"/tests/test_*; do
        [ -x "$t" ] || continue
        : > "$log"
        if ! "$t" > "$log" 2>&1 || ! grep -q '^RESULT ' "$log"; then
            cat "$log"
            grep -q '^RESULT ' "$log" || { echo "RESULT $t 0 1" >> "$log"; }
        fi
        tally
    done
done

if [ -n "$last" ]; then
    echo "== integration tests ($last)"
    : > "$log"
    WB_BUILD="$last" /usr/bin/python3 tests/integration/run.py 2>&1 | tee "$log" | grep -v '^RESULT '
    grep -q '^RESULT ' "$log" || echo "RESULT integration 0 1" >> "$log"
    tally
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
