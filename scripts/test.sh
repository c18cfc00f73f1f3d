#!/bin/sh
# Runs every test binary of a build: unit suites, then integration suites
# (each starts its own redis-server, test upstream and lockgate).
# usage: scripts/test.sh [BUILD_DIR [all|unit|integration]]
#   exit 1 when any test failed
# Each suite's output is kept in BUILD_DIR/test-logs/; the failed checks are
# repeated at the end, so that the last lines say what went wrong.
# $ITEST_SLOW_FACTOR (see tests/integration/itest.h) scales Check's timeouts too.
set -u
build=${1:-build}
which=${2:-all}
export LG_BUILD="$build"
export CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-120}
export CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-${ITEST_SLOW_FACTOR:-1}}
case "$which" in
all) suites="$build/tests/unit/test_* $build/tests/integration/test_*" ;;
unit) suites="$build/tests/unit/test_*" ;;
integration) suites="$build/tests/integration/test_*" ;;
*) echo "usage: $0 [BUILD_DIR [all|unit|integration]]" >&2; exit 2 ;;
esac
logs="$build/test-logs"
rm -rf "$logs"
mkdir -p "$logs"
failed=""
total=0
for t in $suites; do
    [ -x "$t" ] || continue
    total=$((total + 1))
    name=$(basename "$t")
    echo "== $t"
    # the suite's status survives the pipe through tee in a file
    { "$t" 2>&1; echo $? > "$logs/$name.status"; } | tee "$logs/$name.log"
    if [ "$(cat "$logs/$name.status")" != 0 ]; then
        failed="$failed $name"
    fi
done
echo
if [ -n "$failed" ]; then
    for name in $failed; do
        echo "== $name failed (whole output: $logs/$name.log):"
        # Check's lines for failed checks and errors, and any itest diagnostics
        grep -E ':[FE]:|^itest:|Checks: ' "$logs/$name.log" | head -40
    done
    echo
    echo "lockgate tests: FAILED in:$failed ($total suites run)"
    exit 1
fi
echo "lockgate tests: all $total suites passed"
