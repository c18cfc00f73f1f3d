#!/bin/bash
# The benchmark: every figure of BENCHMARKS.md in one run, side by side, then
# the goals each figure is held to. Loopback only; it starts everything it
# needs (redis-server, an origin, nginx, haproxy, several lockgates) on free
# ports, stops all of it when it ends, and never fails on a timing: a
# benchmark is not a test. Parts, in this order (BENCH_PARTS picks some):
#   proxy      Redis (redis-benchmark, lockgate's own rate-limit EVALSHA), the
#              origin (nginx serving the static demo unit JSON), nginx
#              proxy_pass (keep-alive upstream), haproxy and lockgate (key with
#              scope and rate/burst 100000: authentication, scope and rate
#              limiting all on), one worker each, plain HTTP and TLS. wrk -t1
#              -cCONNECTIONS --latency with a static Authorization header (no
#              Lua request() callback), ROUNDS rounds alternated, the order
#              rotated per round: median requests/s, p50, p99, errors
#              (non-2xx + socket errors, summed) and the ratio to nginx.
#   frontend   lockgate answering GET /v1/facilities itself against a bare
#              nginx `return 200 '<the same body>'`, same request bytes,
#              alternated in FE_PAIRS pairs of FE_DURATION_S.
#   floor      what a libcurl client alone does against the origin, one
#              thread, 32 in flight on 32 keep-alive connections, the request
#              lockgate sends upstream: CONNECT_ONLY + curl_easy_send/recv
#              with a prebuilt request and Content-Length framing, and the
#              multi interface. ROUNDS rounds alternated, median.
#   latency    added latency at a fixed moderate load: LAT_RATE requests/s,
#              evenly spaced (a timerfd), on 8 keep-alive connections, to
#              nginx proxy_pass and to lockgate, alternated; lockgate's p50
#              and p99 minus nginx's.
#   workers    lockgate workers = 1 against workers = auto, plain and TLS,
#              nothing pinned, alternated.
#   revocation two lockgates (2 workers each) on the same Redis: a fresh key
#              per trial is made known to B, disabled through A's admin API,
#              and B is polled on one keep-alive connection as fast as it
#              answers until it refuses (403): REV_TRIALS trials.
#   ratelimit  one key (RL_RATE/s, burst RL_BURST) hammered through both
#              instances on RL_CONNS connections for RL_DURATION_S: allowed
#              against the exact GCRA allowance, burst + floor(rate x elapsed)
#              (elapsed from the first request sent to the last answer read,
#              which contains the limiter's own window, so the allowance is
#              generous and an over-admission is certain).
#   rss        a fresh lockgate (one worker): RSS idle; per cached key (RSS_KEYS
#              keys made through the admin API, then one request each, RSS
#              delta / keys); per idle keep-alive connection (RSS_CONNS
#              connections from 50 source addresses 127.0.0.x, one request
#              each, then idle: RSS delta / connections).
#   feed       SSE_CLIENTS streams on /v1/feed/facilities/stream (8 per feed
#              key), then a facility excluded through the admin API: time
#              until each stream has the facility.excluded event.
#   callgrind  instructions per proxied request: lockgate by scripts/callgrind.sh
#              (scenario b), nginx proxy_pass by the same method (nginx under
#              valgrind --tool=callgrind, master_process off, zeroed after a
#              warm-up, CG_REQUESTS requests on one keep-alive connection,
#              dumped), CG_ROUNDS rounds, median.
# CPU budget: on a machine with more than one core, the server under test
# (every proxy; Redis or the origin in their own rows; the floor client) runs
# on the last core and the clients, origin and Redis on the others (taskset);
# the workers, revocation, ratelimit, rss and feed parts pin nothing.
#
#   scripts/bench.sh [DURATION_S] [CONNECTIONS]     (proxy runs; default 4 s, 32)
#   BENCH_PARTS="proxy frontend floor latency workers revocation ratelimit rss feed callgrind"
#   BENCH_ROUNDS=3  FE_DURATION_S=5 FE_PAIRS=3  FLOOR_DURATION_S=3
#   LAT_RATE=2000 LAT_DURATION_S=5  REV_TRIALS=200
#   RL_RATE=100 RL_BURST=50 RL_CONNS=64 RL_DURATION_S=4
#   RSS_KEYS=10000 RSS_CONNS=10000  SSE_CLIENTS=1000  CG_REQUESTS=2000 CG_ROUNDS=3
#   LG_BUILD=build (lockgate, lockgate-admin and bench/lgbench; `make bench` builds them)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
dur=${1:-4}
conns=${2:-32}
parts=${BENCH_PARTS:-proxy frontend floor latency workers revocation ratelimit rss feed callgrind}
rounds=${BENCH_ROUNDS:-3}
fe_dur=${FE_DURATION_S:-5}
fe_pairs=${FE_PAIRS:-3}
floor_dur=${FLOOR_DURATION_S:-3}
lat_rate=${LAT_RATE:-2000}
lat_dur=${LAT_DURATION_S:-5}
rev_trials=${REV_TRIALS:-200}
rl_rate=${RL_RATE:-100}
rl_burst=${RL_BURST:-50}
rl_conns=${RL_CONNS:-64}
rl_dur=${RL_DURATION_S:-4}
rss_keys=${RSS_KEYS:-10000}
rss_conns=${RSS_CONNS:-10000}
sse_clients=${SSE_CLIENTS:-1000}
cg_requests=${CG_REQUESTS:-2000}
cg_rounds=${CG_ROUNDS:-3}
build=${LG_BUILD:-build}
case "$build" in /*) ;; *) build="$top/$build" ;; esac
helper="$build/bench/lgbench"
for b in "$build/lockgate" "$build/lockgate-admin" "$helper"; do
    [ -x "$b" ] || { echo "bench: $b not found; run make bench (or make && make bench-tools)" >&2; exit 1; }
done
for p in redis-server redis-cli redis-benchmark nginx haproxy wrk curl taskset valgrind callgrind_control; do
    command -v "$p" >/dev/null || echo "bench: $p is not installed; the figures that need it are left out" >&2
done
export no_proxy='*' NO_PROXY='*' # loopback only, whatever the environment says
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

work=$(mktemp -d /tmp/lockgate-bench.XXXXXX)
pids=""
cleanup() {
    trap - EXIT INT TERM
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
t_start=$(date +%s)
fig() { printf '%s %s\n' "$1" "$2" >> "$work/figures"; } # NAME VALUE, for the goals at the end
figure() { awk -v k="$1" '$1 == k {v = $2} END {print (v == "" ? "-" : v)}' "$work/figures"; }
: > "$work/figures"
note() { echo "bench: $*" >&2; }

# ports N: N distinct free loopback ports.
ports() {
    python3 -c 'import socket,sys
ss=[socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1",0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1" 2>/dev/null || shuf -i 20000-30000 -n "$1" | tr '\n' ' '
}
wait_url() {
    local i
    for i in $(seq 300); do curl -sf -o /dev/null "$@" && return 0; sleep 0.1; done
    note "$* did not answer"
    return 1
}
median() { tr ' ' '\n' | awk '$1 != "" && $1 != "-" {v[++n] = $1 + 0} END {
    if (!n) {print "-"; exit} for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) {t = v[i]; v[i] = v[j]; v[j] = t}
    m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2; print m }'; }
num() { awk -v v="$1" 'BEGIN { if (v ~ /^-?[0-9.]+([eE][+-]?[0-9]+)?$/) printf "%.0f", v; else printf "-" }'; }
fmt2() { awk -v v="$1" 'BEGIN { if (v ~ /^-?[0-9.]+([eE][+-]?[0-9]+)?$/) printf "%.2f", v; else printf "-" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else printf "-" }'; }
kv() { awk -v k="$1" '$1 == k {print $2; f = 1} END {if (!f) print "-"}' "$2"; } # KEY FILE: a helper's figure

# ---- CPU placement ----
ncpu=$(nproc 2>/dev/null || echo 1)
all_cpus="0-$((ncpu - 1))"
if [ "$ncpu" -gt 1 ]; then
    sut_cpu=$((ncpu - 1))
    rest_cpus=$([ "$ncpu" -gt 2 ] && echo "0-$((ncpu - 2))" || echo 0)
    on_sut="taskset -c $sut_cpu"
    on_rest="taskset -c $rest_cpus"
    placement="servers under test on cpu $sut_cpu (taskset); clients, origin and Redis on cpu $rest_cpus"
else
    sut_cpu=0
    rest_cpus=0
    on_sut=""
    on_rest=""
    placement="one core: nothing pinned, every process shares it"
fi
client=$on_rest # how load generators are started; "" when nothing is pinned
# repin CPUS PID...: every thread of each process and of its children.
repin() {
    local cpus=$1 p c
    shift
    [ "$ncpu" -gt 1 ] || return 0
    for p in "$@"; do
        [ -n "$p" ] || continue
        taskset -a -p -c "$cpus" "$p" >/dev/null 2>&1 || true
        for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do taskset -a -p -c "$cpus" "$c" >/dev/null 2>&1 || true; done
    done
}

echo "lockgate benchmark: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo -)$(git diff --quiet HEAD 2>/dev/null || echo ' (uncommitted changes)')"
echo "machine: $ncpu cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), loopback only"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "placement: $placement"
echo "software: $(nginx -v 2>&1 | sed 's/.*: //'), haproxy $(haproxy -v 2>/dev/null | sed -n '1s/^HAProxy version \([^ ]*\).*/\1/p'), redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), $(curl --version | head -1 | cut -d' ' -f1-2), $(valgrind --version 2>/dev/null)"

# ---- the shared pieces: Redis, the origin, the certificate ----
read -r rport rtport oport otport nport ntport hport htport bport cgport <<< "$(ports 10)"
fac=fac_BENCH0000000000000000
ffac=fac_BENCHFEED000000000000
path="/v1/facilities/$fac/units/U001"
mkdir -p "$work/origin" "$work/tls" "$work/proxy"
scripts/gen-certs.sh "$work/tls" >/dev/null
cat "$work/tls/cert.pem" "$work/tls/key.pem" > "$work/tls/combined.pem"

redis_tls=1
start_redis() {
    local tls_args=()
    [ "$redis_tls" = 1 ] && tls_args=(--tls-port "$rtport" --tls-cert-file "$work/tls/cert.pem"
        --tls-key-file "$work/tls/key.pem" --tls-ca-cert-file "$work/tls/cert.pem" --tls-auth-clients no)
    $on_rest redis-server --port "$rport" --bind 127.0.0.1 "${tls_args[@]}" --save "" --appendonly no \
        --dir "$work" --logfile "$work/redis.log" &
    redis_pid=$!
    pids="$pids $redis_pid"
    local i
    for i in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
    return 1
}
if ! start_redis; then
    note "redis-server did not start with TLS; the Redis TLS row is left out"
    kill "$redis_pid" 2>/dev/null || true
    redis_tls=0
    start_redis || { note "redis-server did not start"; exit 1; }
fi

scripts/gen-demo-data.sh "$work/origin/demo-data" "$fac" "$ffac" >/dev/null
sed -e "s|@VAR@|$work/origin|g" -e "s|@PORT@|$oport|g" config/nginx-demo.conf.in |
    sed "/listen 127.0.0.1:$oport/a\\        listen 127.0.0.1:$otport ssl backlog=4096; ssl_certificate $work/tls/cert.pem; ssl_certificate_key $work/tls/key.pem;" \
        > "$work/origin/origin.conf"
$on_rest nginx -p "$work/origin" -e "$work/origin/nginx-error.log" -c "$work/origin/origin.conf" &
origin_pid=$!
pids="$pids $origin_pid"

# nginx proxy_pass, one worker, keep-alive upstream; plain and TLS.
nginx_proxy_conf() { # DIR PORT TLSPORT MASTER(on|off)
    cat <<CONF
daemon off; master_process $4; worker_processes 1; pid $1/nginx.pid; error_log $1/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path $1/b; proxy_temp_path $1/p; fastcgi_temp_path $1/f;
  uwsgi_temp_path $1/u; scgi_temp_path $1/s;
  upstream origin { server 127.0.0.1:$oport; keepalive 64; }
  server { listen 127.0.0.1:$2 backlog=4096; ${3:+listen 127.0.0.1:$3 ssl backlog=4096;}
    ssl_certificate $work/tls/cert.pem; ssl_certificate_key $work/tls/key.pem;
    keepalive_requests 1000000; keepalive_timeout 75s;
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; } }
}
CONF
}
nginx_proxy_conf "$work/proxy" "$nport" "$ntport" on > "$work/proxy/proxy.conf"
$on_sut nginx -p "$work/proxy" -e "$work/proxy/error.log" -c "$work/proxy/proxy.conf" &
pids="$pids $!"

cat > "$work/haproxy.cfg" <<CONF
global
  nbthread 1
  maxconn 8192
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend fe
  bind 127.0.0.1:$hport
  bind 127.0.0.1:$htport ssl crt $work/tls/combined.pem alpn http/1.1
  default_backend be
backend be
  http-reuse always
  server origin 127.0.0.1:$oport
CONF
$on_sut haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
pids="$pids $!"

# ---- lockgate instances, all on the same Redis, pepper, master key and token ----
printf 'bench-admin-token-0123456789abcdef\n' > "$work/admin.token"
declare -A lg_port lg_tport lg_aport lg_pid
# lg_start NAME WORKERS CPUS(or "") [SERVER_LINES [LIMITS_LINES]]: starts an
# instance and waits for its admin listener.
lg_start() {
    local name=$1 workers=$2 cpus=$3 server_extra=${4:-} limits_extra=${5:-} p1 p2 p3
    read -r p1 p2 p3 <<< "$(ports 3)"
    lg_port[$name]=$p1
    lg_tport[$name]=$p2
    lg_aport[$name]=$p3
    cat > "$work/lockgate-$name.conf" <<CONF
[server]
listen = 127.0.0.1:$p1
listen_tls = 127.0.0.1:$p2
workers = $workers
access_log = off
log_level = warn
$server_extra
[tls]
cert = tls/cert.pem
key = tls/key.pem
[admin]
listen = 127.0.0.1:$p3
token_file = admin.token
[redis]
port = $rport
[upstream]
url = http://127.0.0.1:$oport
[secrets]
pepper_file = pepper
master_key_file = master.key
[limits]
$limits_extra
CONF
    ${cpus:+taskset -c $cpus} "$build/lockgate" -c "$work/lockgate-$name.conf" >"$work/lockgate-$name.log" 2>&1 &
    lg_pid[$name]=$!
    pids="$pids $!"
    wait_url "http://127.0.0.1:$p3/healthz" || { tail -5 "$work/lockgate-$name.log" >&2; return 1; }
}
lg_stop() { kill "${lg_pid[$1]}" 2>/dev/null || true; wait "${lg_pid[$1]}" 2>/dev/null || true; }
lg_start L 1 "${on_sut#taskset -c }" || exit 1

admin() { "$build/lockgate-admin" --url "http://127.0.0.1:${lg_aport[L]}" --token-file "$work/admin.token" "$@"; }
acct=$(admin account create --name Bench | sed -n 's/^account_id: *//p')
admin facility create --account "$acct" --name Bench --id "$fac" >/dev/null
admin facility create --account "$acct" --name "Bench feed" --id "$ffac" >/dev/null
# A key with a scope (one facility) and rate/burst 100000: authentication,
# scope and rate limiting all run on every request.
keyout=$(admin key create --account "$acct" --name Bench --facility "$fac" --rate 100000 --burst 100000 2>/dev/null)
key=$(echo "$keyout" | sed -n 's/^key_id: *//p')
secret=$(echo "$keyout" | sed -n 's/^secret: *//p')
[ -n "$key" ] && [ -n "$secret" ] || { note "key creation failed"; exit 1; }
auth="Authorization: Basic $(printf '%s:%s' "$key" "$secret" | base64 -w0)"
wait_url "http://127.0.0.1:$oport$path" || exit 1
wait_url --cacert "$work/tls/cert.pem" "https://localhost:$otport$path" || exit 1
wait_url "http://127.0.0.1:$nport$path" || exit 1
wait_url -H "$auth" "http://127.0.0.1:${lg_port[L]}$path" || exit 1
wait_url --cacert "$work/tls/cert.pem" -H "$auth" "https://localhost:${lg_tport[L]}$path" || exit 1

# The Redis command lockgate sends for each request (its rate-limit EVALSHA),
# as MONITOR shows it, replayed by redis-benchmark on a key of its own.
redis-cli -p "$rport" monitor > "$work/monitor.txt" 2>/dev/null &
mon=$!
sleep 0.3
curl -sf -o /dev/null -H "$auth" "http://127.0.0.1:${lg_port[L]}$path" || true
sleep 0.3
kill "$mon" 2>/dev/null || true
wait "$mon" 2>/dev/null || true
mapfile -t redis_cmd < <(grep -v '\[0 lua\]' "$work/monitor.txt" | grep -m1 '] "EVALSHA"' |
    sed 's/^[^]]*] //' | grep -o '"[^"]*"' | tr -d '"')
if [ "${#redis_cmd[@]}" -ge 4 ]; then
    redis_cmd[3]="lg:bench:redis-row"
    redis_what="EVALSHA (lockgate's GCRA script, as sent per request)"
else
    redis_cmd=(PING)
    redis_what="PING (lockgate's command was not captured)"
fi

# layout pinned|free: where Redis, the origin and lockgate L run.
layout() {
    if [ "$1" = pinned ]; then
        repin "$rest_cpus" "$redis_pid" "$origin_pid"
        repin "$sut_cpu" "${lg_pid[L]}"
        client=$on_rest
    else
        repin "$all_cpus" "$redis_pid" "$origin_pid" "${lg_pid[L]}"
        client=""
    fi
}

# wrk_once SECONDS URL [wrk options]: "requests/s p50_ms p99_ms errors"
# ("-" for what wrk did not say); errors are non-2xx answers + socket errors.
wrk_once() {
    local secs=$1 url=$2 out
    shift 2
    out=$($client wrk -t1 -c"$conns" -d"${secs}s" --latency "$@" "$url" 2>&1) || true
    echo "$out" | grep -q 'Requests/sec' || note "wrk $url: $(echo "$out" | tail -2 | tr '\n' ' ')"
    echo "$out" | awk '
        function ms(s) { if (s ~ /us$/) return s / 1000; if (s ~ /ms$/) return s + 0; if (s ~ /s$/) return s * 1000; return -1 }
        /Requests\/sec/ {rps = $2}
        $1 == "50%" {p50 = ms($2)}
        $1 == "99%" {p99 = ms($2)}
        /Non-2xx/ {bad += $5}
        /Socket errors/ {for (i = 3; i <= NF; i++) {v = $i; gsub(/,/, "", v); if (v ~ /^[0-9]+$/) bad += v}}
        END {printf "%s %s %s %d\n", rps == "" ? "-" : rps, p50 == "" ? "-" : sprintf("%.3f", p50),
             p99 == "" ? "-" : sprintf("%.3f", p99), bad}'
}
# redis_once TLS(0|1): the same four figures from redis-benchmark (-c CONNECTIONS).
redis_once() {
    local tls=() out n=$((dur * 40000))
    [ "$1" = 1 ] && tls=(--tls --cacert "$work/tls/cert.pem")
    [ "$1" = 1 ] && n=$((dur * 15000))
    out=$($client redis-benchmark -p "$([ "$1" = 1 ] && echo "$rtport" || echo "$rport")" "${tls[@]}" \
        -c "$conns" -n "$n" --csv "${redis_cmd[@]}" 2>&1) || true
    echo "$out" | grep -q '^"test"' || note "redis-benchmark: $(echo "$out" | tail -2 | tr '\n' ' ')"
    echo "$out" | awk -F'","' 'NR > 1 && NF >= 7 {rps = $2; p50 = $5; p99 = $7}
        END {printf "%s %s %s -\n", rps == "" ? "-" : rps, p50 == "" ? "-" : p50, p99 == "" ? "-" : p99}'
}

# ---- proxy ----
proxy_row() { # MODE NAME: one run, appended to $work/proxy.results
    local mode=$1 name=$2 r s lp=${lg_port[L]}
    if [ "$mode" = tls ]; then s="https://localhost"; else s="http://127.0.0.1"; fi
    case "$name" in
    redis)
        repin "$sut_cpu" "$redis_pid"; r=$(redis_once "$([ "$mode" = tls ] && echo 1 || echo 0)"); repin "$rest_cpus" "$redis_pid" ;;
    origin)
        repin "$sut_cpu" "$origin_pid"
        r=$(wrk_once "$dur" "$s:$([ "$mode" = tls ] && echo "$otport" || echo "$oport")$path" -H "$auth")
        repin "$rest_cpus" "$origin_pid" ;;
    nginx) r=$(wrk_once "$dur" "$s:$([ "$mode" = tls ] && echo "$ntport" || echo "$nport")$path" -H "$auth") ;;
    haproxy) r=$(wrk_once "$dur" "$s:$([ "$mode" = tls ] && echo "$htport" || echo "$hport")$path" -H "$auth") ;;
    lockgate) r=$(wrk_once "$dur" "$s:$([ "$mode" = tls ] && echo "${lg_tport[L]}" || echo "$lp")$path" -H "$auth") ;;
    unlock) r=$(wrk_once "$dur" "$s:$lp$path/unlock-code" -H "$auth") ;;
    facilities) r=$(wrk_once "$dur" "$s:$lp/v1/facilities" -H "$auth") ;;
    esac
    echo "$mode $name $r" >> "$work/proxy.results"
    note "  $mode $name: $r"
}
row_title() {
    case "$1" in
    redis) echo "Redis: $redis_what" ;;
    origin) echo "origin (nginx, static unit JSON)" ;;
    nginx) echo "nginx proxy_pass (keep-alive upstream)" ;;
    haproxy) echo "haproxy" ;;
    lockgate) echo "lockgate, proxied unit" ;;
    unlock) echo "lockgate, .../unlock-code (audited)" ;;
    facilities) echo "lockgate, /v1/facilities (no upstream)" ;;
    esac
}
proxy_part() {
    layout pinned
    : > "$work/proxy.results"
    local plain=(redis origin nginx haproxy lockgate unlock facilities) tls=(redis origin nginx haproxy lockgate)
    [ "$redis_tls" = 1 ] || tls=(origin nginx haproxy lockgate)
    local r i n name
    note "proxy: $rounds rounds, wrk -t1 -c$conns -d${dur}s --latency each"
    for r in $(seq "$rounds"); do
        n=${#plain[@]}
        for i in $(seq 0 $((n - 1))); do proxy_row plain "${plain[$(((i + r - 1) % n))]}"; done
        n=${#tls[@]}
        for i in $(seq 0 $((n - 1))); do proxy_row tls "${tls[$(((i + r - 1) % n))]}"; done
    done
    local mode
    for mode in plain tls; do
        echo
        echo "proxy comparison, $([ "$mode" = tls ] && echo "TLS (client to server; plain upstream)" || echo "plain HTTP"):" \
            "wrk -t1 -c$conns -d${dur}s --latency, static Authorization header, median of $rounds alternated rounds;" \
            "one worker/thread each; $placement"
        printf '  %-48s %11s %9s %9s %7s %9s  %s\n' server requests/s "p50 ms" "p99 ms" errors vs-nginx "rounds (requests/s)"
        local nginx_rps
        nginx_rps=$(awk -v m="$mode" '$1 == m && $2 == "nginx" {print $3}' "$work/proxy.results" | median)
        for name in redis origin nginx haproxy lockgate unlock facilities; do
            grep -q "^$mode $name " "$work/proxy.results" || continue
            local rps p50 p99 err all
            rps=$(awk -v m="$mode" -v n="$name" '$1 == m && $2 == n {print $3}' "$work/proxy.results" | median)
            p50=$(awk -v m="$mode" -v n="$name" '$1 == m && $2 == n {print $4}' "$work/proxy.results" | median)
            p99=$(awk -v m="$mode" -v n="$name" '$1 == m && $2 == n {print $5}' "$work/proxy.results" | median)
            err=$(awk -v m="$mode" -v n="$name" '$1 == m && $2 == n {if ($6 == "-") d = 1; s += $6} END {print d ? "-" : s + 0}' "$work/proxy.results")
            all=$(awk -v m="$mode" -v n="$name" '$1 == m && $2 == n {printf "%s%s", (k++ ? " " : ""), ($3 == "-" ? "-" : sprintf("%.0f", $3))}' "$work/proxy.results")
            printf '  %-48s %11s %9s %9s %7s %9s  %s\n' "$(row_title "$name")" "$(num "$rps")" "$(fmt2 "$p50")" "$(fmt2 "$p99")" "$err" \
                "$(ratio "$rps" "$nginx_rps")" "$all"
            fig "proxy.$mode.$name.rps" "$rps"
            fig "proxy.$mode.$name.p99" "$p99"
            fig "proxy.$mode.$name.errors" "$err"
        done
    done
    echo "  (Redis: redis-benchmark -c$conns, one connection per client, no pipelining; it counts no errors, so '-')"
}

# ---- frontend: lockgate's own answer against a bare nginx with the same body ----
frontend_part() {
    layout pinned
    local furl="http://127.0.0.1:${lg_port[L]}/v1/facilities" body
    body=$(curl -sf -H "$auth" "$furl") || { note "GET /v1/facilities failed; frontend part skipped"; return 0; }
    case "$body" in *'$'*|*"'"*|*'\'*)
        note "the body has characters an nginx return string cannot hold; frontend part skipped"
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
    $on_sut nginx -p "$work/bare" -e "$work/bare/error.log" -c "$work/bare/bare.conf" &
    local bare=$!
    pids="$pids $bare"
    wait_url "http://127.0.0.1:$bport/v1/facilities" || return 0
    [ "$(curl -sf "http://127.0.0.1:$bport/v1/facilities")" = "$body" ] || note "nginx's body differs from lockgate's"
    : > "$work/fe.results"
    note "frontend: $fe_pairs pairs, wrk -t1 -c$conns -d${fe_dur}s"
    local i
    for i in $(seq "$fe_pairs"); do
        echo "lockgate $i $(wrk_once "$fe_dur" "$furl" -H "$auth")" >> "$work/fe.results"
        echo "nginx $i $(wrk_once "$fe_dur" "http://127.0.0.1:$bport/v1/facilities" -H "$auth")" >> "$work/fe.results"
    done
    kill "$bare" 2>/dev/null || true
    echo
    echo "front-end comparison (GET /v1/facilities, valid key, body ${#body} bytes; bare nginx returns the same body;" \
        "wrk -t1 -c$conns -d${fe_dur}s, alternated; both on the servers' core):"
    awk -v n="$fe_pairs" '
        { rps[$1, $2] = $3; p99[$1, $2] = $5; bad[$1, $2] = $6 }
        END {
            printf "  %-5s %14s %10s %7s %14s %10s %7s %15s\n", "pair", "lockgate rps", "p99 ms", "errors",
                "nginx rps", "p99 ms", "errors", "lockgate/nginx"
            for (p = 1; p <= n; p++) {
                x = "-"
                if (rps["lockgate", p] + 0 > 0 && rps["nginx", p] + 0 > 0) {
                    v = rps["lockgate", p] / rps["nginx", p]; x = sprintf("%.2f", v)
                    if (lo == "" || v < lo) lo = v; if (hi == "" || v > hi) hi = v
                }
                printf "  %-5s %14.0f %10s %7s %14.0f %10s %7s %15s\n", p, rps["lockgate", p], p99["lockgate", p],
                    bad["lockgate", p], rps["nginx", p], p99["nginx", p], bad["nginx", p], x
            }
            if (lo != "") printf "  lockgate/nginx %.2f-%.2f\n", lo, hi
        }' "$work/fe.results"
    fig fe.ratio "$(awk '{r[$1, $2] = $3} END {for (p = 1; r["lockgate", p] != ""; p++) if (r["nginx", p] > 0) print r["lockgate", p] / r["nginx", p]}' "$work/fe.results" | median)"
}

# ---- floor: libcurl alone against the origin ----
floor_part() {
    layout pinned
    : > "$work/floor.results"
    note "floor: $rounds rounds of ${floor_dur}s each"
    local r m
    for r in $(seq "$rounds"); do
        for m in floor-easy floor-multi; do
            $on_sut "$helper" "$m" --port "$oport" --path "$path" --conns 32 --seconds "$floor_dur" \
                > "$work/floor.out" 2>> "$work/floor.err" || true
            echo "$m $(kv rps "$work/floor.out") $(kv non200 "$work/floor.out")" >> "$work/floor.results"
            note "  $m: $(kv rps "$work/floor.out") requests/s"
        done
    done
    local easy multi nginx_rps
    easy=$(awk '$1 == "floor-easy" {print $2}' "$work/floor.results" | median)
    multi=$(awk '$1 == "floor-multi" {print $2}' "$work/floor.results" | median)
    nginx_rps=$(figure proxy.plain.nginx.rps)
    echo
    echo "floor: a libcurl client alone against the origin (no lockgate), one thread on the servers' core, 32 keep-alive" \
        "connections with one request in flight each, the request lockgate sends upstream (4 X- headers;" \
        "CONNECT_ONLY frames answers by Content-Length);" \
        "median of $rounds alternated rounds of ${floor_dur}s:"
    printf '  %-64s %11s %9s  %s\n' client requests/s vs-nginx "rounds"
    printf '  %-64s %11s %9s  %s\n' "libcurl CONNECT_ONLY + curl_easy_send/recv, prebuilt request" \
        "$(num "$easy")" "$(ratio "$easy" "$nginx_rps")" "$(awk '$1 == "floor-easy" {printf "%s ", $2}' "$work/floor.results")"
    printf '  %-64s %11s %9s  %s\n' "libcurl multi, curl_multi_poll loop, handle re-added per transfer" \
        "$(num "$multi")" "$(ratio "$multi" "$nginx_rps")" "$(awk '$1 == "floor-multi" {printf "%s ", $2}' "$work/floor.results")"
    echo "  (vs-nginx: against nginx proxy_pass plain, a whole proxy; non-2xx: $(awk '{s += $3} END {print s + 0}' "$work/floor.results"))"
    fig floor.easy "$easy"
    fig floor.multi "$multi"
}

# ---- latency at a fixed moderate load ----
latency_part() {
    layout pinned
    : > "$work/lat.results"
    note "latency: $rounds rounds, $lat_rate requests/s for ${lat_dur}s each"
    local r who port
    for r in $(seq "$rounds"); do
        for who in nginx lockgate; do
            port=$([ "$who" = nginx ] && echo "$nport" || echo "${lg_port[L]}")
            $client "$helper" paced --port "$port" --path "$path" --auth "$auth" --rate "$lat_rate" --conns 8 \
                --seconds "$lat_dur" --warmup 1 > "$work/lat.out" 2>> "$work/lat.err" || true
            echo "$who $r $(kv p50_us "$work/lat.out") $(kv p99_us "$work/lat.out") $(kv p999_us "$work/lat.out") $(kv max_us "$work/lat.out") $(kv skipped "$work/lat.out") $(kv non200 "$work/lat.out") $(kv sent "$work/lat.out")" >> "$work/lat.results"
            note "  $who: p50 $(kv p50_us "$work/lat.out") us, p99 $(kv p99_us "$work/lat.out") us"
        done
    done
    echo
    echo "latency at a fixed load: $lat_rate requests/s evenly spaced on 8 keep-alive connections, ${lat_dur}s after 1 s" \
        "of warm-up, per round; servers on their core, client beside the origin; microseconds:"
    printf '  %-6s %-9s %8s %8s %8s %8s %8s %8s\n' round server p50 p99 p99.9 max skipped errors
    sort -k2,2n -k1,1r "$work/lat.results" | awk '{printf "  %-6s %-9s %8s %8s %8s %8s %8s %8s\n", $2, $1, $3, $4, $5, $6, $7, $8}'
    local d50 d99
    d50=$(awk '{p[$1, $2] = $3} END {for (r = 1; p["nginx", r] != ""; r++) print p["lockgate", r] - p["nginx", r]}' "$work/lat.results" | median)
    d99=$(awk '{p[$1, $2] = $4} END {for (r = 1; p["nginx", r] != ""; r++) print p["lockgate", r] - p["nginx", r]}' "$work/lat.results" | median)
    echo "  added by lockgate (lockgate minus nginx proxy_pass, per round, median of $rounds): p50 $d50 us, p99 $d99 us"
    fig lat.added_p50 "$d50"
    fig lat.added_p99 "$d99"
}

# ---- workers = 1 against workers = auto ----
workers_part() {
    layout free
    lg_start W auto "" || { note "workers=auto instance did not start"; return 0; }
    : > "$work/workers.results"
    note "workers: $rounds rounds, nothing pinned"
    local r mode who s p
    for r in $(seq "$rounds"); do
        for mode in plain tls; do
            for who in L W; do
                if [ "$mode" = tls ]; then s="https://localhost:${lg_tport[$who]}"; else s="http://127.0.0.1:${lg_port[$who]}"; fi
                echo "$mode $who $(wrk_once "$dur" "$s$path" -H "$auth")" >> "$work/workers.results"
            done
        done
    done
    lg_stop W
    echo
    echo "lockgate workers = 1 against workers = auto ($ncpu here), proxied unit, wrk -t1 -c$conns -d${dur}s," \
        "median of $rounds alternated rounds, nothing pinned (wrk, origin and Redis share the cores):"
    printf '  %-6s %16s %9s %19s %9s %10s\n' mode "workers=1 rps" "p99 ms" "workers=auto rps" "p99 ms" "auto/1"
    for mode in plain tls; do
        local one auto p1 pa
        one=$(awk -v m="$mode" '$1 == m && $2 == "L" {print $3}' "$work/workers.results" | median)
        auto=$(awk -v m="$mode" '$1 == m && $2 == "W" {print $3}' "$work/workers.results" | median)
        p1=$(awk -v m="$mode" '$1 == m && $2 == "L" {print $5}' "$work/workers.results" | median)
        pa=$(awk -v m="$mode" '$1 == m && $2 == "W" {print $5}' "$work/workers.results" | median)
        printf '  %-6s %16s %9s %19s %9s %10s\n' "$mode" "$(num "$one")" "$(fmt2 "$p1")" "$(num "$auto")" "$(fmt2 "$pa")" "$(ratio "$auto" "$one")"
        fig "workers.$mode.ratio" "$(ratio "$auto" "$one")"
    done
}

# ---- two instances A and B (2 workers each) for revocation and rate limits ----
ab_started=0
ab_start() {
    [ "$ab_started" = 1 ] && return 0
    layout free
    # Refusals count against the client address: raised so that the trials' 403s do not turn into 429s.
    lg_start A 2 "" "" "auth_failures_per_min = 1000000" && lg_start B 2 "" "" "auth_failures_per_min = 1000000" ||
        return 1
    ab_started=1
}
revocation_part() {
    ab_start || { note "instances A and B did not start; revocation skipped"; return 0; }
    note "revocation: $rev_trials trials"
    "$helper" revoke --admin "${lg_aport[A]}" --token "$work/admin.token" --account "$acct" --b "${lg_port[B]}" \
        --trials "$rev_trials" > "$work/rev.out" 2> "$work/rev.err" || true
    echo
    echo "revocation between two instances on the same Redis (2 workers each, nothing pinned): a fresh key per trial," \
        "known to B, disabled through A's admin API; time from sending the disable to B's first 403," \
        "B polled on one keep-alive connection (GET /v1/facilities) as fast as it answers:"
    echo "  trials $(kv measured "$work/rev.out") of $(kv trials "$work/rev.out") (errors $(kv errors "$work/rev.out")):" \
        "p50 $(kv p50_ms "$work/rev.out") ms, p99 $(kv p99_ms "$work/rev.out") ms, max $(kv max_ms "$work/rev.out") ms," \
        "min $(kv min_ms "$work/rev.out") ms; A's admin answer came after $(kv admin_p50_ms "$work/rev.out") ms (p50);" \
        "$(kv polls_per_trial "$work/rev.out") polls of B per trial, $(kv poll_ms "$work/rev.out") ms each (the resolution)"
    sed 's/^/  /' "$work/rev.err" | sort | uniq -c | head -5
    fig rev.p99 "$(kv p99_ms "$work/rev.out")"
}
ratelimit_part() {
    ab_start || { note "instances A and B did not start; ratelimit skipped"; return 0; }
    local out k s
    out=$(admin key create --account "$acct" --name "Rate accuracy" --all-facilities --rate "$rl_rate" --burst "$rl_burst" 2>/dev/null) || true
    k=$(echo "$out" | sed -n 's/^key_id: *//p')
    s=$(echo "$out" | sed -n 's/^secret: *//p')
    [ -n "$k" ] || { note "rate-limit key creation failed"; return 0; }
    note "ratelimit: $rl_conns connections for ${rl_dur}s"
    "$helper" ratelimit --a "${lg_port[A]}" --b "${lg_port[B]}" \
        --auth "Authorization: Basic $(printf '%s:%s' "$k" "$s" | base64 -w0)" --rate "$rl_rate" --burst "$rl_burst" \
        --conns "$rl_conns" --seconds "$rl_dur" > "$work/rl.out" 2> "$work/rl.err" || true
    echo
    echo "rate-limit accuracy across two instances (2 workers each): one key, rate $rl_rate/s, burst $rl_burst, $rl_conns" \
        "connections (half on each) hammering GET /v1/facilities for ${rl_dur}s:"
    echo "  allowed $(kv allowed "$work/rl.out") (A $(kv allowed_a "$work/rl.out"), B $(kv allowed_b "$work/rl.out"))," \
        "refused 429 $(kv rate_limited "$work/rl.out"), other $(kv other "$work/rl.out"), over $(kv seconds "$work/rl.out") s;" \
        "exact GCRA allowance burst + floor(rate x elapsed) = $(kv allowance "$work/rl.out");" \
        "over-admissions $(kv over_admissions "$work/rl.out"), under $(kv under_admissions "$work/rl.out")"
    fig rl.over "$(kv over_admissions "$work/rl.out")"
}

# ---- RSS and feed: a fresh instance with room for many connections ----
r_started=0
r_start() {
    [ "$r_started" = 1 ] && return 0
    layout free
    lg_start R 1 "" "max_connections = 30000
max_connections_per_ip = 30000" || return 1
    r_started=1
}
rss_part() {
    r_start || { note "instance R did not start; rss skipped"; return 0; }
    sleep 1
    local idle
    idle=$(awk '/VmRSS/ {print $2}' "/proc/${lg_pid[R]}/status")
    note "rss: $rss_keys keys, then $rss_conns connections"
    "$helper" keys --admin "${lg_aport[R]}" --token "$work/admin.token" --account "$acct" --port "${lg_port[R]}" \
        --pid "${lg_pid[R]}" --count "$rss_keys" > "$work/keys.out" 2> "$work/keys.err" || true
    "$helper" idle --port "${lg_port[R]}" --auth "$auth" --pid "${lg_pid[R]}" --count "$rss_conns" --sources 50 \
        > "$work/idle.out" 2> "$work/idle.err" || true
    echo
    echo "memory (VmRSS of a fresh lockgate, one worker, nothing pinned):"
    echo "  idle, after start-up: $idle KiB"
    echo "  per cached key: $(kv bytes_per_key "$work/keys.out") bytes ($(kv keys "$work/keys.out") keys made through the admin API" \
        "in $(kv create_seconds "$work/keys.out") s, then one GET /v1/facilities each, $(kv answered_200 "$work/keys.out") answered 200;" \
        "RSS $(kv rss_before_kib "$work/keys.out") -> $(kv rss_after_kib "$work/keys.out") KiB)"
    echo "  per idle keep-alive connection: $(kv bytes_per_connection "$work/idle.out") bytes ($(kv connections "$work/idle.out")" \
        "connections from 50 addresses, one GET /v1/facilities each, $(kv answered_200 "$work/idle.out") answered 200," \
        "$(kv still_open "$work/idle.out") still open 1 s later; RSS $(kv rss_before_kib "$work/idle.out") ->" \
        "$(kv rss_after_kib "$work/idle.out") KiB)"
    cat "$work/keys.err" "$work/idle.err" | sed 's/^/  /' | sort | uniq -c | head -5
    fig rss.idle_kib "$idle"
    fig rss.per_key "$(kv bytes_per_key "$work/keys.out")"
    fig rss.per_conn "$(kv bytes_per_connection "$work/idle.out")"
}
feed_part() {
    r_start || { note "instance R did not start; feed skipped"; return 0; }
    note "feed: $sse_clients streams"
    "$helper" sse --port "${lg_port[R]}" --admin "${lg_aport[R]}" --token "$work/admin.token" --facility "$ffac" \
        --count "$sse_clients" --per-key 8 --sources 8 > "$work/sse.out" 2> "$work/sse.err" || true
    echo
    echo "feed fan-out: $(kv clients "$work/sse.out") SSE clients on /v1/feed/facilities/stream ($(kv feed_keys "$work/sse.out")" \
        "feed keys, 8 streams each, from 8 addresses; one lockgate, one worker), then PATCH included:false on a facility" \
        "through the admin API; time from sending it to each stream's facility.excluded event:"
    echo "  streams open $(kv streams "$work/sse.out") (refused $(kv refused "$work/sse.out"), in $(kv open_seconds "$work/sse.out") s);" \
        "saw the exclusion $(kv saw_exclusion "$work/sse.out"), within 100 ms $(kv within_100ms "$work/sse.out");" \
        "p50 $(kv p50_ms "$work/sse.out") ms, p99 $(kv p99_ms "$work/sse.out") ms, max $(kv max_ms "$work/sse.out") ms;" \
        "the admin answer after $(kv admin_ms "$work/sse.out") ms"
    sed 's/^/  /' "$work/sse.err" | sort | uniq -c | head -5
    fig sse.clients "$(kv clients "$work/sse.out")"
    fig sse.within "$(kv within_100ms "$work/sse.out")"
    fig sse.max "$(kv max_ms "$work/sse.out")"
}

# ---- callgrind: instructions per proxied request, lockgate and nginx ----
callgrind_part() {
    layout free
    note "callgrind: lockgate (scripts/callgrind.sh, scenario b), then nginx proxy_pass"
    CG_SCENARIOS=b CG_ROUNDS=$cg_rounds CG_REQUESTS=$cg_requests CG_WARMUP=300 CG_OUT="$work/cg-lockgate" \
        LG_BUILD="$build" scripts/callgrind.sh > "$work/cg-lockgate.txt" 2> "$work/cg-lockgate.err" || true
    local lg_total lg_fe
    lg_total=$(awk '$1 == "(b)" && /proxied/ {print $(NF - 4)}' "$work/cg-lockgate.txt" | tail -1)
    lg_fe=$(awk '$1 == "(b)" && /proxied/ {print $(NF - 2)}' "$work/cg-lockgate.txt" | tail -1)

    # nginx proxy_pass in one process under callgrind, the same method.
    local d="$work/cg-nginx" vpid i r dump totals="" ok
    mkdir -p "$d"
    nginx_proxy_conf "$d" "$cgport" "" off > "$d/proxy.conf"
    valgrind --tool=callgrind --dump-instr=no --collect-atstart=yes --callgrind-out-file="$d/callgrind.out.%p" \
        nginx -p "$d" -e "$d/error.log" -c "$d/proxy.conf" > "$d/valgrind.log" 2>&1 &
    vpid=$!
    pids="$pids $vpid"
    if wait_url "http://127.0.0.1:$cgport$path"; then
        for i in $(seq 300); do printf 'url = "http://127.0.0.1:%s%s"\noutput = "/dev/null"\n' "$cgport" "$path"; done > "$d/warm"
        for i in $(seq "$cg_requests"); do printf 'url = "http://127.0.0.1:%s%s"\noutput = "/dev/null"\n' "$cgport" "$path"; done > "$d/urls"
        curl -s -H "$auth" -K "$d/warm" -w '%{http_code}\n' > /dev/null || true
        for r in $(seq "$cg_rounds"); do
            callgrind_control --zero "$vpid" > /dev/null 2>&1 || true
            curl -s -H "$auth" -K "$d/urls" -w '%{http_code} %{num_connects}\n' > "$d/statuses" || true
            callgrind_control --dump="round-$r" "$vpid" > /dev/null 2>&1 || true
            dump="$d/callgrind.out.$vpid.$r"
            for i in $(seq 100); do grep -q '^totals:' "$dump" 2>/dev/null && break; sleep 0.1; done
            ok=$(awk '$1 == 200' "$d/statuses" | wc -l)
            [ "$ok" -eq "$cg_requests" ] || note "nginx under callgrind: only $ok of $cg_requests answered 200"
            totals="$totals $(awk -v n="$cg_requests" '/^summary:/ {printf "%.0f", $2 / n}' "$dump" 2>/dev/null)"
        done
    fi
    kill "$vpid" 2>/dev/null || true
    wait "$vpid" 2>/dev/null || true
    local ng
    ng=$(echo "$totals" | median)
    echo
    echo "instructions per proxied request (valgrind --tool=callgrind; counters zeroed after 300 warm-up requests," \
        "then $cg_requests requests on one keep-alive connection (curl), dumped; median of $cg_rounds rounds):"
    printf '  %-58s %14s  %s\n' server instructions "rounds"
    printf '  %-58s %14s  %s\n' "lockgate, proxied unit (front end $lg_fe)" "${lg_total:--}" \
        "$(sed -n 's/^ *all rounds (instructions\/request, front end): //p' "$work/cg-lockgate.txt" | tail -1)"
    printf '  %-58s %14s  %s\n' "nginx proxy_pass, keep-alive upstream" "$ng" "$totals"
    echo "  lockgate / nginx: $(ratio "${lg_total:-0}" "$ng")x; lockgate's components (median round):"
    sed -n '/^    instructions per request:/,/remainder/p' "$work/cg-lockgate.txt" | sed 's/^  //'
    [ -s "$work/cg-lockgate.err" ] && grep -i 'not valid\|failed\|not found' "$work/cg-lockgate.err" | sed 's/^/  /' || true
    fig cg.lockgate "${lg_total:--}"
    fig cg.nginx "$ng"
}

for part in $parts; do
    t0=$(date +%s)
    case "$part" in
    proxy) proxy_part ;;
    frontend) frontend_part ;;
    floor) floor_part ;;
    latency) latency_part ;;
    workers) workers_part ;;
    revocation) revocation_part ;;
    ratelimit) ratelimit_part ;;
    rss) rss_part ;;
    feed) feed_part ;;
    callgrind) callgrind_part ;;
    *) note "unknown part '$part'" ;;
    esac
    note "$part: $(($(date +%s) - t0)) s"
done

# ---- the goals ----
# goal NAME FIGURE OP TARGET UNIT: one line, "met" or "not met" (or "not measured").
goal() {
    local v=$2 shown=$2$5
    [ "$v" = "-" ] && shown="-"
    printf '  %-58s %16s  %-12s %s\n' "$1" "$shown" "$4" "$(awk -v v="$v" -v op="$3" -v t="${4#<= }" 'BEGIN {
        if (v == "-" || v == "" || v ~ /nan/) {print "not measured"; exit}
        gsub(/^[<>]= /, "", t); t += 0; v += 0
        ok = (op == "le") ? v <= t : v >= t; print ok ? "met" : "NOT MET" }')"
}
echo
echo "goals (load average now: $(cut -d' ' -f1-3 /proc/loadavg); $(($(date +%s) - t_start)) s in all):"
printf '  %-58s %16s  %-12s %s\n' goal figure target verdict
for mode in plain tls; do
    lr=$(figure "proxy.$mode.lockgate.rps"); nr=$(figure "proxy.$mode.nginx.rps")
    lp=$(figure "proxy.$mode.lockgate.p99"); np=$(figure "proxy.$mode.nginx.p99")
    goal "lockgate / nginx proxy_pass requests/s, $mode" "$(ratio "$lr" "$nr")" ge ">= 1.0" "x"
    goal "lockgate p99 minus nginx proxy_pass p99, $mode" \
        "$(awk -v a="$lp" -v b="$np" 'BEGIN {if (a == "-" || b == "-") print "-"; else printf "%.3f", a - b}')" le "<= 0" " ms"
done
goal "instructions per proxied request (callgrind)" "$(figure cg.lockgate)" le "<= 25000" ""
goal "added p99 at $lat_rate requests/s" "$(figure lat.added_p99)" le "<= 100" " us"
goal "workers=auto / workers=1 requests/s, plain" "$(figure workers.plain.ratio)" ge ">= 1.0" "x"
goal "workers=auto / workers=1 requests/s, TLS" "$(figure workers.tls.ratio)" ge ">= 1.0" "x"
goal "revocation p99" "$(figure rev.p99)" le "<= 0.5" " ms"
goal "rate-limit over-admissions" "$(figure rl.over)" le "<= 0" ""
goal "RSS per idle keep-alive connection" "$(figure rss.per_conn)" le "<= 2048" " B"
goal "RSS per cached key" "$(figure rss.per_key)" le "<= 1024" " B"
sse_all=$(awk -v c="$(figure sse.clients)" -v w="$(figure sse.within)" 'BEGIN {if (c == "-" || w == "-") print "-"; else print c - w}')
goal "SSE clients without the exclusion within 100 ms (of $(figure sse.clients))" "$sse_all" le "<= 0" ""
echo "  (SSE max: $(figure sse.max) ms; a benchmark is not a test: these verdicts never change the exit status)"
exit 0
