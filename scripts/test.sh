#!/bin/sh
# Runs every test binary of a build: unit suites, then integration suites
# (each starts its own redis-server, test upstream and lockgate).
# usage: scripts/test.sh [BUILD_DIR]     exit 1 when any test failed
set -u
build=${1:-build}
export LG_BUILD="$build"
export CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-120}
failed=""
total=0
for t in "$build"/tests/unit/test_* "$build"/tests/integration/test_*; do
    [ -x "$t" ] || continue
    total=$((total + 1))
    echo "== $t"
    if ! "$t"; then
        failed="$failed $(basename "$t")"
    fi
done
echo
if [ -n "$failed" ]; then
    echo "lockgate tests: FAILED in:$failed ($total suites run)"
    exit 1
fi
echo "lockgate tests: all $total suites passed"
