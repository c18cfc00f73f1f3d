#!/bin/bash
# Benchmark: lockgate side by side with nginx proxy_pass and haproxy, all in
# front of the same origin (nginx serving the static demo data set), measured
# one after the other with wrk on this machine. Prints a table with ratios.
# Never fails on a timing: a benchmark is not a test.
#   scripts/bench.sh [DURATION_S] [CONNECTIONS]
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
dur=${1:-10}
conns=${2:-32}
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
lport=$(free_port); tport=$(free_port); aport=$(free_port)
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

run() { # name url [header]
    local name=$1 url=$2; shift 2
    local out
    out=$(wrk -t1 -c"$conns" -d"${dur}s" --latency "$@" "$url")
    local rps p99 non2xx
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {print $2}')
    non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
    printf '%s %s %s %s\n' "$name" "$rps" "$p99" "${non2xx:-0}" >> "$work/results"
    echo "measured $name: $rps requests/s, p99 $p99" >&2
}
echo "wrk -t1 -c$conns -d${dur}s against each, one after the other; path $path" >&2
run "origin(nginx-static)" "http://127.0.0.1:$oport$path"
run "nginx-proxy_pass" "http://127.0.0.1:$nport$path"
run "haproxy" "http://127.0.0.1:$hport$path"
run "lockgate" "http://127.0.0.1:$lport$path" -H "$auth"
run "lockgate-tls" "https://localhost:$tport$path" -H "$auth"
run "lockgate-unlock-code" "http://127.0.0.1:$lport$path/unlock-code" -H "$auth"
run "lockgate-facilities(no-upstream)" "http://127.0.0.1:$lport/v1/facilities" -H "$auth"

nginx_rps=$(awk '$1=="nginx-proxy_pass" {print $2}' "$work/results")
haproxy_rps=$(awk '$1=="haproxy" {print $2}' "$work/results")
echo
printf '%-34s %12s %10s %9s %10s %10s\n' server requests/s p99 non-2xx vs-nginx vs-haproxy
while read -r name rps p99 non2xx; do
    printf '%-34s %12s %10s %9s %10s %10s\n' "$name" "$rps" "$p99" "$non2xx" \
        "$(awk -v a="$rps" -v b="$nginx_rps" 'BEGIN{printf "%.2f", a/b}')" \
        "$(awk -v a="$rps" -v b="$haproxy_rps" 'BEGIN{printf "%.2f", a/b}')"
done < "$work/results"
