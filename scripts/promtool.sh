#!/bin/sh
# Runs promtool, Prometheus's checker, with the given arguments, e.g.
#   curl -s http://127.0.0.1:9090/metrics | scripts/promtool.sh check metrics
# It is taken once from Debian's prometheus package into build/promtool/
# (apt-get download + dpkg-deb -x: the server itself is not installed).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dir="$top/build/promtool"
bin="$dir/usr/bin/promtool"
if [ ! -x "$bin" ]; then
    tmp=$(mktemp -d)
    get() { (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root prometheus >&2); }
    if ! get && ! (apt-get update -qq >&2 && get); then
        rm -rf "$tmp"
        echo "promtool: could not download Debian's prometheus package" >&2
        exit 1
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    dpkg-deb -x "$tmp"/prometheus_*.deb "$dir"
    rm -rf "$tmp"
    # only promtool is kept: the server and its web assets are not needed
    find "$dir" -type f ! -path "$bin" -delete
fi
exec "$bin" "$@"
