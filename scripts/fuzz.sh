#!/bin/sh
# Runs every libFuzzer target of a fuzz build for SECONDS each, keeping a
# corpus per target under BUILD_DIR/corpus. Exit 1 when a target crashes
# (its reproducer is left in BUILD_DIR/crashes).
# usage: scripts/fuzz.sh BUILD_DIR [SECONDS]
set -u
build=${1:-build/fuzz}
secs=${2:-10}
failed=""
mkdir -p "$build/crashes"
for f in "$build"/fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f")
    corpus="$build/corpus/$name"
    mkdir -p "$corpus"
    printf '== %s (%ss) ... ' "$name" "$secs"
    if "$f" -max_total_time="$secs" -max_len=4096 -print_final_stats=1 \
        -artifact_prefix="$build/crashes/$name-" "$corpus" > "$build/$name.log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$build/$name.log")
        echo "ok, ${runs:-?} inputs"
    else
        echo "FAILED (see $build/$name.log)"
        tail -30 "$build/$name.log"
        failed="$failed $name"
    fi
done
if [ -n "$failed" ]; then
    echo "lockgate fuzz: FAILED in:$failed"
    exit 1
fi
echo "lockgate fuzz: every target ran clean"
