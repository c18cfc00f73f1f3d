#!/bin/sh
# Installs every Debian package lockgate needs to build, test, run, scan and
# benchmark (promtool comes from Debian's prometheus package: scripts/promtool.sh).
# As root it runs apt-get; otherwise it prints the exact command and exits 1.
set -eu
pkgs="build-essential pkg-config libevent-dev libcurl4-openssl-dev libjansson-dev
libhiredis-dev libssl-dev libinih-dev zlib1g-dev libhttp-parser-dev check libsubunit-dev redis-server
nginx haproxy wrk curl openssl clang libclang-rt-14-dev valgrind
testssl.sh sslscan doona jq"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
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
for s in redis-server nginx haproxy; do
    (command -v systemctl >/dev/null && systemctl disable --now "$s" >/dev/null 2>&1) || true
    (command -v service >/dev/null && service "$s" stop >/dev/null 2>&1) || true
done
exit 0
