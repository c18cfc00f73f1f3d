#!/bin/bash
# Benchmark, two parts, both with wrk -t1 and a static Authorization header
# (a wrk Lua request() callback would cap the client itself):
#   proxy     lockgate side by side with nginx proxy_pass and haproxy, all in
#             front of the same origin (nginx serving the static demo data
#             set), measured one after the other. A table with ratios.
#   frontend  the HTTP front end: lockgate answering GET /v1/facilities itself
#             (valid key: front end + auth + rate limit) against a bare nginx,
#             one worker, that returns the same JSON body bytes from a
#             `location = /v1/facilities { return 200 '...'; }`, with the same
#             request bytes. Alternated in FE_PAIRS pairs (lockgate, nginx) of
#             FE_DURATION_S each; per pair and as ranges: requests/s, p99, ratio.
# Never fails on a timing: a benchmark is not a test.
#   scripts/bench.sh [DURATION_S] [CONNECTIONS]      (proxy part; default 10 s, 32)
#   BENCH_PARTS="proxy frontend"                     which parts, in that order
#   FE_DURATION_S=6 FE_PAIRS=3                       the frontend part (same CONNECTIONS)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
dur=${1:-10}
conns=${2:-32}
parts=${BENCH_PARTS:-proxy frontend}
fe_dur=${FE_DURATION_S:-6}
fe_pairs=${FE_PAIRS:-3}
build=${LG_BUILD:-build}
work=$(mktemp -d /tmp/lockgate-bench.XXXXXX)
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])' 2>/dev/null ||
    shuf -i 20000-60000 -n 1; }
wait_url() { for _ in $(seq 100); do curl -sf -o /dev/null "$@" && return 0; sleep 0.1; done; echo "bench: $* did not answer" >&2; exit 1; }

rport=$(free_port); oport=$(free_port); nport=$(free_port); hport=$(free_port)
lport=$(free_port); tport=$(free_port); aport=$(free_port); bport=$(free_port)
fac=fac_BENCH0000000000000000
mkdir -p "$work/origin" "$work/tls"

redis-server --port "$rport" --save "" --appendonly no --dir "$work" --logfile "$work/redis.log" &
pids="$pids $!"

scripts/gen-demo-data.sh "$work/origin/demo-data" "$fac" >/dev/null
sed -e "s|@VAR@|$work/origin|g" -e "s|@PORT@|$oport|g" config/nginx-demo.conf.in > "$work/origin/origin.conf"
nginx -p "$work/origin" -e "$work/origin/nginx-error.log" -c "$work/origin/origin.conf" &
pids="$pids $!"

mkdir -p "$work/proxy"
cat > "$work/proxy/proxy.conf" <<CONF
daemon off; worker_processes 1; pid $work/proxy/nginx.pid; error_log $work/proxy/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/proxy/b; proxy_temp_path $work/proxy/p; fastcgi_temp_path $work/proxy/f;
  uwsgi_temp_path $work/proxy/u; scgi_temp_path $work/proxy/s;
  upstream origin { server 127.0.0.1:$oport; keepalive 64; }
  server { listen 127.0.0.1:$nport; keepalive_requests 1000000;
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; } }
}
CONF
nginx -p "$work/proxy" -e "$work/proxy/error.log" -c "$work/proxy/proxy.conf" &
pids="$pids $!"

cat > "$work/haproxy.cfg" <<CONF
global
  nbthread 1
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend fe
  bind 127.0.0.1:$hport
  default_backend be
backend be
  http-reuse always
  server origin 127.0.0.1:$oport
CONF
haproxy -f "$work/haproxy.cfg" -db >/dev/null 2>&1 &
pids="$pids $!"

scripts/gen-certs.sh "$work/tls" >/dev/null
printf 'bench-admin-token-0123456789abcdef\n' > "$work/admin.token"
cat > "$work/lockgate.conf" <<CONF
[server]
listen = 127.0.0.1:$lport
listen_tls = 127.0.0.1:$tport
workers = ${LG_WORKERS:-1}
[tls]
cert = tls/cert.pem
key = tls/key.pem
[admin]
listen = 127.0.0.1:$aport
token_file = admin.token
[redis]
port = $rport
[upstream]
url = http://127.0.0.1:$oport
[secrets]
pepper_file = pepper
master_key_file = master.key
CONF
"$build/lockgate" -c "$work/lockgate.conf" >"$work/lockgate.log" 2>&1 &
pids="$pids $!"

wait_url "http://127.0.0.1:$oport/v1/facilities/$fac/units/U001"
wait_url "http://127.0.0.1:$aport/healthz"
admin() { "$build/lockgate-admin" --url "http://127.0.0.1:$aport" --token-file "$work/admin.token" "$@"; }
acct=$(admin account create --name Bench | sed -n 's/^account_id: *//p')
admin facility create --account "$acct" --name Bench --id "$fac" >/dev/null
out=$(admin key create --account "$acct" --name Bench --all-facilities --rate 100000 --burst 100000 2>/dev/null)
key=$(echo "$out" | sed -n 's/^key_id: *//p')
secret=$(echo "$out" | sed -n 's/^secret: *//p')
auth="Authorization: Basic $(printf '%s:%s' "$key" "$secret" | base64 -w0)"
path="/v1/facilities/$fac/units/U001"
wait_url -H "$auth" "http://127.0.0.1:$lport$path"
wait_url --cacert "$work/tls/cert.pem" -H "$auth" "https://localhost:$tport$path"

# wrk_run NAME SECONDS URL [wrk options]: one wrk run; appends
# "NAME requests/s p99 non-2xx" to $work/results ("-" for what wrk did not say).
wrk_run() {
    local name=$1 secs=$2 url=$3; shift 3
    local out rps p99 non2xx
    out=$(wrk -t1 -c"$conns" -d"${secs}s" --latency "$@" "$url" 2>&1) || true
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {print $2}')
    non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
    printf '%s %s %s %s\n' "$name" "${rps:--}" "${p99:--}" "${non2xx:-0}" >> "$work/results"
    echo "measured $name: ${rps:-no result} requests/s, p99 ${p99:--}" >&2
}
run() { wrk_run "$1" "$dur" "${@:2}"; } # name url [wrk options]
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else printf "-" }'; }

proxy_part() {
    : > "$work/results"
    echo "wrk -t1 -c$conns -d${dur}s against each, one after the other; path $path" >&2
    run "origin(nginx-static)" "http://127.0.0.1:$oport$path"
    run "nginx-proxy_pass" "http://127.0.0.1:$nport$path"
    run "haproxy" "http://127.0.0.1:$hport$path"
    run "lockgate" "http://127.0.0.1:$lport$path" -H "$auth"
    run "lockgate-tls" "https://localhost:$tport$path" -H "$auth"
    run "lockgate-unlock-code" "http://127.0.0.1:$lport$path/unlock-code" -H "$auth"
    run "lockgate-facilities(no-upstream)" "http://127.0.0.1:$lport/v1/facilities" -H "$auth"

    local nginx_rps haproxy_rps name rps p99 non2xx
    nginx_rps=$(awk '$1=="nginx-proxy_pass" {print $2}' "$work/results")
    haproxy_rps=$(awk '$1=="haproxy" {print $2}' "$work/results")
    echo
    echo "proxy comparison (wrk -t1 -c$conns -d${dur}s, one run each):"
    printf '%-34s %12s %10s %9s %10s %10s\n' server requests/s p99 non-2xx vs-nginx vs-haproxy
    while read -r name rps p99 non2xx; do
        printf '%-34s %12s %10s %9s %10s %10s\n' "$name" "$rps" "$p99" "$non2xx" \
            "$(ratio "$rps" "$nginx_rps")" "$(ratio "$rps" "$haproxy_rps")"
    done < "$work/results"
}

# The front end alone: lockgate's own answer to GET /v1/facilities against a
# bare nginx returning the same body bytes for the same request bytes.
frontend_part() {
    local furl="http://127.0.0.1:$lport/v1/facilities" body
    body=$(curl -sf -H "$auth" "$furl") || { echo "bench: GET /v1/facilities failed; frontend part skipped" >&2; return 0; }
    case "$body" in *'$'*|*"'"*|*'\'*)
        echo "bench: the body has characters an nginx return string cannot hold; frontend part skipped" >&2
        return 0 ;;
    esac
    mkdir -p "$work/bare"
    cat > "$work/bare/bare.conf" <<CONF
daemon off; worker_processes 1; pid $work/bare/nginx.pid; error_log $work/bare/error.log warn;
events { worker_connections 4096; }
http {
  access_log off; server_tokens off; charset off; default_type application/json;
  keepalive_timeout 75s; keepalive_requests 1000000;
  client_body_temp_path $work/bare/b; proxy_temp_path $work/bare/p; fastcgi_temp_path $work/bare/f;
  uwsgi_temp_path $work/bare/u; scgi_temp_path $work/bare/s;
  server { listen 127.0.0.1:$bport backlog=4096;
    location = /v1/facilities { return 200 '$body'; } }
}
CONF
    nginx -p "$work/bare" -e "$work/bare/error.log" -c "$work/bare/bare.conf" &
    pids="$pids $!"
    wait_url "http://127.0.0.1:$bport/v1/facilities"
    local nbody
    nbody=$(curl -sf "http://127.0.0.1:$bport/v1/facilities")
    [ "$nbody" = "$body" ] || echo "bench: nginx's body differs from lockgate's" >&2

    : > "$work/results"
    echo "front end: wrk -t1 -c$conns -d${fe_dur}s, lockgate and bare nginx alternated, $fe_pairs pairs;" \
        "GET /v1/facilities, body ${#body} bytes, same Authorization header to both" >&2
    local i
    for i in $(seq "$fe_pairs"); do
        wrk_run "lockgate.$i" "$fe_dur" "$furl" -H "$auth"
        wrk_run "nginx.$i" "$fe_dur" "http://127.0.0.1:$bport/v1/facilities" -H "$auth"
    done
    echo
    echo "front-end comparison (GET /v1/facilities, valid key; wrk -t1 -c$conns -d${fe_dur}s, alternated):"
    awk -v n="$fe_pairs" '
        function lat(s) { # wrk latency ("850.00us", "1.23ms", "1.02s") in ms, -1 when missing
            if (s ~ /us$/) return s / 1000; if (s ~ /ms$/) return s + 0; if (s ~ /s$/) return s * 1000; return -1 }
        function span(a, b) { return a == "" ? "-" : (a == b ? a : a "-" b) }
        { split($1, k, "."); who = k[1]; p = k[2]; rps[who, p] = $2; p99[who, p] = $3; bad[who, p] = $4 }
        END {
            printf "%-5s %14s %10s %8s %14s %10s %8s %15s\n", "pair", "lockgate rps", "p99", "non-2xx",
                "nginx rps", "p99", "non-2xx", "lockgate/nginx"
            for (p = 1; p <= n; p++) {
                x = "-"
                if (rps["lockgate", p] + 0 > 0 && rps["nginx", p] + 0 > 0) {
                    v = rps["lockgate", p] / rps["nginx", p]; x = sprintf("%.2f", v)
                    if (xlo == "" || v < xlo) xlo = v; if (xhi == "" || v > xhi) xhi = v
                }
                printf "%-5s %14s %10s %8s %14s %10s %8s %15s\n", p, rps["lockgate", p], p99["lockgate", p],
                    bad["lockgate", p], rps["nginx", p], p99["nginx", p], bad["nginx", p], x
                for (w = 0; w < 2; w++) {
                    who = w ? "nginx" : "lockgate"
                    r = rps[who, p] + 0; l = lat(p99[who, p])
                    if (r > 0) { if (rlo[who] == "" || r < rlo[who]) rlo[who] = r; if (rhi[who] == "" || r > rhi[who]) rhi[who] = r }
                    if (l >= 0) { if (llo[who] == "" || l < llo[who]) llo[who] = l; if (lhi[who] == "" || l > lhi[who]) lhi[who] = l }
                }
            }
            for (w = 0; w < 2; w++) {
                who = w ? "nginx" : "lockgate"
                printf "%-9s %s requests/s, p99 %s ms\n", who,
                    span(rlo[who] == "" ? "" : sprintf("%.0f", rlo[who]), rhi[who] == "" ? "" : sprintf("%.0f", rhi[who])),
                    span(llo[who] == "" ? "" : sprintf("%.2f", llo[who]), lhi[who] == "" ? "" : sprintf("%.2f", lhi[who]))
            }
            printf "lockgate/nginx %s\n", span(xlo == "" ? "" : sprintf("%.2f", xlo), xhi == "" ? "" : sprintf("%.2f", xhi))
        }' "$work/results"
}

for part in $parts; do
    case "$part" in
    proxy) proxy_part ;;
    frontend) frontend_part ;;
    *) echo "bench: unknown part '$part' (proxy, frontend)" >&2 ;;
    esac
done
