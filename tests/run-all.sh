#!/usr/bin/env bash
# Runs every suite and ends with one line totalling them: "N passed, N failed".
# Usage: tests/run-all.sh BUILD_DIR [BUILD_DIR...]
# Unit tests run for every build dir given; the integration tests run once,
# against the last one (the sanitizer build under `make check`).
set -u
cd "$(dirname "$0")/.."
passed=0 failed=0
log=$(mktemp)
trap 'rm -f "$log" "$log".*' EXIT

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
    # Every committed fuzz seed through the real parsers (tests/fuzz).
    for r in "$build"/tests/replay_fuzz_*; do
        [ -x "$r" ] || continue
        name=${r##*/replay_}
        : > "$log"
        if ! "$r" "replay:$name" "tests/fuzz/corpus/$name" > "$log" 2>&1 || ! grep -q '^RESULT ' "$log"; then
            cat "$log"
            grep -q '^RESULT ' "$log" || { echo "RESULT replay:$name 0 1" >> "$log"; }
        fi
        tally
    done
done

# The integration modules run as WB_SHARDS parallel processes (each with
# its own PostgreSQL): most of their time is spent waiting on servers.
if [ -n "$last" ]; then
    shards=${WB_SHARDS:-3}
    echo "== integration tests ($last, $shards shards)"
    for ((k = 0; k < shards; k++)); do
        WB_BUILD="$last" WB_SHARD="$k/$shards" /usr/bin/python3 tests/integration/run.py \
            > "$log.$k" 2>&1 &
    done
    wait
    : > "$log"
    for ((k = 0; k < shards; k++)); do
        grep -v '^RESULT ' "$log.$k"
        grep -q '^RESULT ' "$log.$k" || echo "RESULT integration[$k/$shards] 0 1" >> "$log.$k"
        grep '^RESULT ' "$log.$k" >> "$log"
        rm -f "$log.$k"
    done
    tally
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
