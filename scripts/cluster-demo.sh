#!/bin/bash
# The scale-out deployment on loopback: one Redis primary and one replica,
# three Sentinels, three lockgate instances finding the primary through
# them, and haproxy in front (round robin, PROXY protocol v2). wrk sends call-center traffic
# for DEMO_SECONDS (default 60); the primary is killed in the middle. Prints
# what the clients saw: requests, errors by status, the longest run of
# errors, and whether a key disabled before the failover was ever served.
# Needs make all tests (for the test upstream), redis-sentinel, haproxy, wrk.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${LG_BUILD:-$top/build}
seconds=${DEMO_SECONDS:-60}
base=${DEMO_PORT_BASE:-27100}
dir=$(mktemp -d /tmp/lockgate-cluster-XXXXXX)
for b in "$build/lockgate" "$build/tests/integration/upstream_server"; do
    [ -x "$b" ] || { echo "cluster-demo: $b is missing: run make all tests" >&2; exit 1; }
done
for p in redis-server redis-sentinel haproxy wrk curl; do
    command -v $p >/dev/null || { echo "cluster-demo: $p is missing: run scripts/deps.sh" >&2; exit 1; }
done

primary=$base replica=$((base + 1)) lb=$((base + 2)) upstream=$((base + 3))
sentinels="$((base + 10)) $((base + 11)) $((base + 12))"
pids=""
cleanup() {
    trap - INT TERM EXIT
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup INT TERM EXIT
start() { # log, command...
    log=$1; shift
    "$@" >"$dir/$log" 2>&1 &
    pids="$pids $!"
}
wait_for() { # what, command...
    what=$1; shift
    for _ in $(seq 400); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
    echo "cluster-demo: $what did not start; logs in $dir" >&2
    trap - EXIT; cleanup_keep; exit 1
}
cleanup_keep() { for p in $pids; do kill "$p" 2>/dev/null || true; done; }

redis_opts="--bind 127.0.0.1 --save '' --appendonly no --dir $dir"
# the primary outside the shell's jobs: its death halfway is no job news
(sh -c "exec redis-server --port $primary $redis_opts --dbfilename p.rdb" >"$dir/primary.log" 2>&1 &)
start replica.log sh -c "exec redis-server --port $replica $redis_opts --dbfilename r.rdb --replicaof 127.0.0.1 $primary"
sentinel_list=""
for s in $sentinels; do
    cat >"$dir/sentinel-$s.conf" <<EOF
port $s
bind 127.0.0.1
dir $dir
sentinel resolve-hostnames no
sentinel monitor lgdemo 127.0.0.1 $primary 2
sentinel down-after-milliseconds lgdemo 1000
sentinel failover-timeout lgdemo 5000
EOF
    start "sentinel-$s.log" redis-sentinel "$dir/sentinel-$s.conf"
    sentinel_list="$sentinel_list${sentinel_list:+,}127.0.0.1:$s"
done
sentinels_ready() { # each Sentinel knows the replica and the two others; the replica is in sync
    for s in $sentinels; do
        [ "$(redis-cli -p "$s" sentinel replicas lgdemo | grep -c '^name$')" = 1 ] || return 1
        [ "$(redis-cli -p "$s" sentinel sentinels lgdemo | grep -c '^name$')" = 2 ] || return 1
    done
    redis-cli -p $replica info replication | grep -q 'master_link_status:up'
}
mkdir -p "$dir/data"
start upstream.log "$build/tests/integration/upstream_server" --port $upstream --data "$dir/data"
wait_for "redis" redis-cli -p $primary ping
primary_pid=$(redis-cli -p $primary info server | sed -n 's/^process_id:\([0-9]*\).*/\1/p' | tr -d '\r')
pids="$pids $primary_pid"
for _ in $(seq 300); do sentinels_ready && break; sleep 0.1; done
sentinels_ready || { echo "cluster-demo: the Sentinels did not see the replica" >&2; exit 1; }
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/admin.token"
chmod 600 "$dir/admin.token"

for i in 0 1 2; do
    cat >"$dir/lockgate-$i.conf" <<EOF
[server]
listen = 127.0.0.1:$((base + 20 + i))
listen_tls =
workers = 1
proxy_protocol = on
[admin]
listen = 127.0.0.1:$((base + 30 + i))
token_file = admin.token
[redis]
sentinels = $sentinel_list
master_name = lgdemo
replicas_to_wait = 1
wait_timeout_ms = 200
timeout_ms = 100
[upstream]
url = http://127.0.0.1:$upstream
[secrets]
pepper_file = pepper
master_key_file = master.key
[limits]
rate_per_sec = 100000
burst = 100000
EOF
    start "lockgate-$i.log" "$build/lockgate" -c "$dir/lockgate-$i.conf"
    # the first one creates the shared secret files
    wait_for "lockgate $i" curl -sf "http://127.0.0.1:$((base + 30 + i))/readyz"
done
cat >"$dir/haproxy.cfg" <<EOF
global
    maxconn 2000
defaults
    mode tcp
    timeout connect 1s
    timeout client 30s
    timeout server 30s
listen lockgate
    bind 127.0.0.1:$lb
    balance roundrobin
    server lg0 127.0.0.1:$((base + 20)) send-proxy-v2 check check-send-proxy
    server lg1 127.0.0.1:$((base + 21)) send-proxy-v2 check check-send-proxy
    server lg2 127.0.0.1:$((base + 22)) send-proxy-v2 check check-send-proxy
EOF
start haproxy.log haproxy -db -f "$dir/haproxy.cfg"
wait_for "haproxy" curl -s -o /dev/null "http://127.0.0.1:$lb/"

admin() { # method path [body]
    curl -sS -X "$1" -H "Authorization: Bearer $(cat "$dir/admin.token")" \
        -H 'Content-Type: application/json' ${3:+-d "$3"} "http://127.0.0.1:$((base + 30))$2"
}
field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p"; }
account=$(admin POST /admin/v1/accounts '{"name":"Call center demo"}' | field account_id)
fac=$(admin POST "/admin/v1/accounts/$account/facilities" '{"name":"Depot"}' | field facility_id)
key_json=$(admin POST "/admin/v1/accounts/$account/keys" '{"name":"agents","all_facilities":true,"rate_per_sec":100000,"burst":100000}')
off_json=$(admin POST "/admin/v1/accounts/$account/keys" '{"name":"revoked","all_facilities":true}')
auth=$(printf '%s:%s' "$(echo "$key_json" | field key_id)" "$(echo "$key_json" | field secret)" | base64 -w0)
off=$(printf '%s:%s' "$(echo "$off_json" | field key_id)" "$(echo "$off_json" | field secret)" | base64 -w0)
url="http://127.0.0.1:$lb/v1/facilities/$fac/units"
for _ in 1 2 3; do curl -s -o /dev/null -H "Authorization: Basic $off" "$url"; done # cached
disabled=$(admin POST "/admin/v1/keys/$(echo "$off_json" | field key_id)/disable")
echo "key disabled before the failover, replicated: $(echo "$disabled" | sed -n 's/.*"replicated":\([a-z]*\).*/\1/p')"

cat >"$dir/count.lua" <<'EOF'
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } lg_timespec;
int clock_gettime(int clk, lg_timespec *ts);
]]
local ts = ffi.new("lg_timespec")
local function now_ms()
    ffi.C.clock_gettime(1, ts)
    return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
    statuses, run_start, longest, last_err = {}, nil, 0, nil
end
function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
    local t = now_ms()
    if status ~= 200 then
        run_start = run_start or t
        last_err = t
        if t - run_start > longest then longest = t - run_start end
    else
        run_start = nil
    end
end
function done(summary, latency, requests)
    local all, worst = {}, 0
    for _, th in ipairs(threads) do
        for s, n in pairs(th:get("statuses")) do all[s] = (all[s] or 0) + n end
        local l = th:get("longest")
        if l > worst then worst = l end
    end
    io.write(string.format("requests: %d in %.1f s, socket errors: connect %d read %d write %d timeout %d\n",
        summary.requests, summary.duration / 1e6, summary.errors.connect, summary.errors.read,
        summary.errors.write, summary.errors.timeout))
    for s, n in pairs(all) do io.write(string.format("status %d: %d\n", s, n)) end
    io.write(string.format("longest run of non-200 answers (per connection): %.0f ms\n", worst))
end
EOF

# the disabled key, asked ten times a second throughout from another client
# address (127.0.0.5): haproxy passes it on in the PROXY header, so its
# refusals throttle that address alone, never the call center's (127.0.0.1)
(
    end=$(($(date +%s) + seconds))
    while [ "$(date +%s)" -lt $end ]; do
        curl -s -o /dev/null -w '%{http_code}\n' --interface 127.0.0.5 \
            -H "Authorization: Basic $off" "$url" || true
        sleep 0.1
    done | sort | uniq -c | awk '{ n += $1; s = s " " $2 ": " $1; if ($2 == 200) ok = $1 }
        END { printf "disabled key (from 127.0.0.5): asked %d times;%s; served %d times\n", n, s, ok + 0 }' \
        >"$dir/disabled.out"
) &
probe=$!
(sleep $((seconds / 2)); kill -9 "$primary_pid") &
killer=$!
echo "traffic for $seconds s through haproxy to 3 instances; the primary is killed at $((seconds / 2)) s"
wrk -t2 -c16 -d"${seconds}s" -s "$dir/count.lua" -H "Authorization: Basic $auth" "$url" 2>&1 |
    grep -v '^  \|^Running\|^Requests/sec\|^Transfer/sec\|requests in\|Non-2xx'
wait $killer $probe
cat "$dir/disabled.out"
for s in $sentinels; do
    echo "sentinel $s: primary now $(redis-cli -p "$s" sentinel get-master-addr-by-name lgdemo | tr '\n' ' ')"
    break
done
for i in 0 1 2; do
    echo "lockgate $i: $(grep -c 'moved from' "$dir/lockgate-$i.log") +switch-master heard, $(grep -c 'connected' "$dir/lockgate-$i.log") connects"
done
