#!/bin/sh
# Installs every Debian package lockgate needs to build, test, run, scan and
# benchmark (promtool comes from Debian's prometheus package: scripts/promtool.sh).
# As root it runs apt-get; otherwise it prints the exact command and exits 1.
set -eu
pkgs="build-essential pkg-config libevent-dev libcurl4-openssl-dev libjansson-dev
libhiredis-dev libssl-dev libinih-dev zlib1g-dev libhttp-parser-dev check libsubunit-dev redis-server
redis-sentinel nginx haproxy wrk curl openssl clang libclang-rt-14-dev valgrind
testssl.sh sslscan doona jq xxd chromium"
# The console's browser tests: Node.js 20 with npm (the machine's, else
# Debian's), playwright-core and axe-core from tests/browser/package-lock.json.
command -v npm >/dev/null 2>&1 || pkgs="$pkgs nodejs npm"
browser_modules() {
    lock=tests/browser/package-lock.json
    have=tests/browser/node_modules/.package-lock.json
    [ -f "$have" ] && [ ! "$lock" -nt "$have" ] && return 0
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
}
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
    browser_modules
    exit 0
fi
echo "lockgate: missing packages:$missing"
cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" -ne 0 ]; then
    echo "run as root:  apt-get update && $cmd" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || true
$cmd
# Debian starts the packaged services on install; lockgate runs its own.
for s in redis-server redis-sentinel nginx haproxy; do
    (command -v systemctl >/dev/null && systemctl disable --now "$s" >/dev/null 2>&1) || true
    (command -v service >/dev/null && service "$s" stop >/dev/null 2>&1) || true
done
browser_modules
