#!/bin/bash
# make scan: checks of the product by tools nobody on the project wrote, run
# against a real lockgate on loopback (its own Redis, test upstream and
# self-signed certificate, in a temp folder):
#   testssl   the TLS listener (its default checks but the client simulation):
#             no finding of severity MEDIUM or worse but those of the
#             self-signed test certificate (TESTSSL_IGNORED)
#   sslscan   the TLS listener: no SSL, no TLS 1.0/1.1, every accepted suite
#             an AEAD one with forward secrecy
#   promtool  /metrics passes `promtool check metrics` (format and lint)
#   doona     2,679 cases of its HTTP module (every request-line case, every
#             overflow of 11 headers) against the plain public port, while
#             testssl runs: lockgate alive afterwards, nothing reached the
#             upstream
# Prints each tool's verdict; exits 1 on any finding, 2 when the setup fails.
#   usage: scripts/scan.sh            (LG_BUILD=build/san scans another build)
#   SCAN_ONLY="sslscan promtool"      runs only those checks
#   SCAN_KEEP=1                       keeps the temp folder (tools' reports)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=${LG_BUILD:-build}
case "$build" in /*) ;; *) build="$top/$build" ;; esac
only=${SCAN_ONLY:-testssl sslscan promtool doona}

# testssl ids that only the self-signed test certificate causes: no chain of
# trust (CRITICAL "failed (self signed)") and no CRL or OCSP URI (HIGH), which
# no self-signed certificate has. A certificate from a public CA has a chain
# of trust, and a CRL or OCSP URI.
TESTSSL_IGNORED="cert_chain_of_trust cert_revocation"

for t in redis-server curl openssl jq testssl sslscan doona; do
    command -v "$t" >/dev/null || { echo "scan: $t is missing (scripts/deps.sh)" >&2; exit 2; }
done
for b in "$build/lockgate" "$build/lockgate-admin" "$build/tests/integration/upstream_server"; do
    [ -x "$b" ] || { echo "scan: $b is missing (make all tests)" >&2; exit 2; }
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/lockgate-scan.XXXXXX")
pids=""
cleanup() {
    trap - EXIT INT TERM
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null
    if [ "${SCAN_KEEP:-0}" = 1 ]; then echo "scan: reports kept in $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 2' INT TERM

die() { echo "scan: $*" >&2; for f in "$dir"/*.log; do echo "--- $f" >&2; tail -20 "$f" >&2; done; exit 2; }

# Ports below the kernel's ephemeral range, where no outgoing connection
# takes one between its pick and its server's bind.
read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || low=32768
[ "$low" -gt 12000 ] || low=32768
used=""
free_port() {
    local p
    while :; do
        p=$((10000 + RANDOM % (low - 10000)))
        case " $used " in *" $p "*) continue ;; esac
        (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
        used="$used $p"
        echo "$p"
        return
    done
}

wait_for() { # what, command...
    local what=$1 i=0
    shift
    until "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -gt 100 ] && die "$what did not start"
        sleep 0.1
    done
}

redis_port=$(free_port)
up_port=$(free_port)
port=$(free_port)
tls_port=$(free_port)
admin_port=$(free_port)

redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
    --logfile "$dir/redis.log" &
pids="$pids $!"
wait_for Redis redis-cli -p "$redis_port" ping

"$build/tests/integration/upstream_server" --port "$up_port" --record "$dir/upstream.rec" \
    >"$dir/upstream.log" 2>&1 &
pids="$pids $!"
wait_for "the test upstream" grep -q ready "$dir/upstream.log"

scripts/gen-certs.sh "$dir/tls" >/dev/null
cat >"$dir/lockgate.conf" <<CONF
[server]
listen = 127.0.0.1:$port
listen_tls = 127.0.0.1:$tls_port
workers = 2
log_level = info
[tls]
cert = tls/cert.pem
key = tls/key.pem
[admin]
listen = 127.0.0.1:$admin_port
token_file = admin.token
[redis]
host = 127.0.0.1
port = $redis_port
timeout_ms = 250
[upstream]
url = http://127.0.0.1:$up_port
[secrets]
pepper_file = pepper
master_key_file = master.key
CONF
"$build/lockgate" -c "$dir/lockgate.conf" >"$dir/lockgate.log" 2>&1 &
lg_pid=$!
pids="$pids $lg_pid"
admin_url="http://127.0.0.1:$admin_port"
wait_for lockgate curl -sf "$admin_url/readyz"

# A key and a facility, and a little traffic so that every family of
# /metrics has samples: a proxied read, a refusal, a facility list.
export LOCKGATE_ADMIN_URL="$admin_url" LOCKGATE_ADMIN_TOKEN_FILE="$dir/admin.token"
acct=$("$build/lockgate-admin" account create --name "Scan" | sed -n 's/^account_id: *//p')
fac=$("$build/lockgate-admin" facility create --account "$acct" --name "Scanned" |
    sed -n 's/^facility_id: *//p')
out=$("$build/lockgate-admin" key create --account "$acct" --name "Scanner" --all-facilities 2>/dev/null)
key=$(echo "$out" | sed -n 's/^key_id: *//p')
secret=$(echo "$out" | sed -n 's/^secret: *//p')
[ -n "$acct" ] && [ -n "$fac" ] && [ -n "$key" ] && [ -n "$secret" ] || die "no key created"
public="https://127.0.0.1:$tls_port"
ca=(--cacert "$dir/tls/cert.pem")
code=$(curl -s -o /dev/null -w '%{http_code}' "${ca[@]}" -u "$key:$secret" "$public/v1/facilities/$fac/units/U001")
[ "$code" = 200 ] || die "a proxied read answered $code"
curl -s -o /dev/null "${ca[@]}" -u "$key:$secret" "$public/v1/facilities"
curl -s -o /dev/null "${ca[@]}" "$public/v1/facilities"

failed=""
verdict() { # tool, PASS|FAIL, what
    printf '%-9s %s  %s\n' "$1" "$2" "$3"
    [ "$2" = PASS ] || failed="$failed $1"
}
wants() { case " $only " in *" $1 "*) return 0 ;; esac; return 1; }
elapsed() { echo "$(($(date +%s) - $1)) s"; }

if wants promtool; then
    t0=$(date +%s)
    if ! curl -sf "$admin_url/metrics" >"$dir/metrics.txt"; then
        verdict promtool FAIL "GET /metrics failed"
    elif scripts/promtool.sh check metrics <"$dir/metrics.txt" >"$dir/promtool.txt" 2>&1; then
        verdict promtool PASS "$(grep -c '^# TYPE' "$dir/metrics.txt") families clean ($(elapsed "$t0"))"
    else
        verdict promtool FAIL "$(tr '\n' ' ' <"$dir/promtool.txt")"
    fi
fi

if wants sslscan; then
    t0=$(date +%s)
    sslscan --no-colour --xml="$dir/sslscan.xml" "127.0.0.1:$tls_port" >"$dir/sslscan.txt" 2>&1
    x="$dir/sslscan.xml"
    bad=""
    grep -q '<cipher ' "$x" 2>/dev/null || bad="no cipher seen (sslscan failed?)"
    # protocols: only TLS 1.2 and 1.3 may be enabled
    for v in $(sed -n 's/.*<protocol type="\([a-z]*\)" version="\([0-9.]*\)" enabled="1".*/\1\2/p' "$x"); do
        case "$v" in tls1.2 | tls1.3) ;; *) bad="$bad $v-enabled" ;; esac
    done
    # suites: TLS 1.3's are AEAD with forward secrecy by design; below it,
    # ECDHE or DHE key exchange with GCM, CCM or ChaCha20-Poly1305 only
    while read -r ver name; do
        [ "$ver" = TLSv1.3 ] && continue
        case "$name" in
        ECDHE-*GCM* | ECDHE-*CHACHA20* | ECDHE-*CCM* | DHE-*GCM* | DHE-*CHACHA20* | DHE-*CCM*) ;;
        *) bad="$bad $ver:$name" ;;
        esac
    done < <(sed -n 's/.*<cipher status="\(accepted\|preferred\)" sslversion="\([^"]*\)".* cipher="\([^"]*\)".*/\2 \3/p' "$x")
    if [ -z "$bad" ]; then
        verdict sslscan PASS "$(grep -c '<cipher ' "$x") suites, all AEAD with forward secrecy; TLS 1.2/1.3 only ($(elapsed "$t0"))"
    else
        verdict sslscan FAIL "accepted:$bad"
    fi
fi

if wants doona; then
    t0_doona=$(date +%s)
    before=$(wc -l <"$dir/upstream.rec")
    # doona runs while testssl does (most of its cases wait). Its HTTP
    # module first mangles request lines: all 2,184 of those
    # cases (39 templates x 56 strings) run in about two seconds. Its header
    # cases wait a second each (a "login" line, then a pause), so a choice of
    # the headers lockgate reads or frames by runs in parallel, every
    # overflow string (45) for each: an arbitrary name, Host, Connection,
    # Authorization (three forms), Expect, Content-Length, an obs-fold
    # continuation, Transfer-Encoding, X-Forwarded-For (their indexes in
    # doona's list).
    headers="1 3 10 16 20 21 43 47 70 73 75"
    jobs=""
    doona_run() { # name, doona options...
        local name=$1
        shift
        timeout 200 doona -m HTTP -t 127.0.0.1 -p "$port" -o 0 "$@" >"$dir/doona-$name.txt" 2>&1
        echo $? >"$dir/doona-$name.rc"
    }
    doona_run request-lines -c 100 -M 2184 &
    jobs="$jobs $!"
    for h in $headers; do
        doona_run "header-$h" -c 15 -r $((2184 + (h - 1) * 45 + 1)) -M 45 &
        jobs="$jobs $!"
    done
fi

if wants testssl; then
    t0=$(date +%s)
    # testssl's default run but its client simulation (which clients would
    # connect: information only, no severity, and a third of the time)
    testssl --quiet --color 0 --warnings off --ip one -p -s -f -E -S -P -h -U \
        --jsonfile "$dir/testssl.json" \
        "127.0.0.1:$tls_port" >"$dir/testssl.txt" 2>&1
    ignored=$(printf '%s\n' $TESTSSL_IGNORED | jq -R . | jq -s .)
    if ! jq -e 'type == "array" and length > 0' "$dir/testssl.json" >/dev/null 2>&1; then
        verdict testssl FAIL "no report (see testssl's output)"
    else
        findings=$(jq -r --argjson ign "$ignored" '.[]
            | select(.severity == "MEDIUM" or .severity == "HIGH" or .severity == "CRITICAL")
            | select(.id as $i | $ign | index($i) | not)
            | "\(.id) (\(.severity)): \(.finding)"' "$dir/testssl.json")
        scanerr=$(jq -r '.[] | select(.severity == "FATAL" or .id == "scanProblem") | "\(.id): \(.finding)"' "$dir/testssl.json")
        if [ -n "$findings$scanerr" ]; then
            verdict testssl FAIL "$(echo "$findings$scanerr" | tr '\n' ';')"
        else
            n=$(jq --argjson ign "$ignored" '[.[] | select(.id as $i | $ign | index($i))
                | select(.severity == "MEDIUM" or .severity == "HIGH" or .severity == "CRITICAL")] | length' "$dir/testssl.json")
            verdict testssl PASS "no finding MEDIUM or worse; $n of the test certificate ignored ($(elapsed "$t0"))"
        fi
    fi
fi

if wants doona; then
    for j in $jobs; do wait "$j"; done
    after=$(wc -l <"$dir/upstream.rec")
    bad="" nbad=0
    for f in "$dir"/doona-*.rc; do
        [ "$(cat "$f")" = 0 ] && continue
        nbad=$((nbad + 1))
        # the first failed run says where (its last line names the case)
        [ -z "$bad" ] && bad=" $(basename "$f" .rc) exit $(cat "$f"): $(grep -v '^ *$' "${f%.rc}.txt" | tail -1 | tr -d '\r' | sed 's/^.*\.\([A-Za-z]\)/\1/')"
    done
    [ $nbad -gt 1 ] && bad="$bad (and $((nbad - 1)) more of the 12 runs)"
    ncases=$((2184 + 45 * $(echo $headers | wc -w)))
    alive=yes
    kill -0 "$lg_pid" 2>/dev/null || alive="no (exited)"
    [ "$alive" = yes ] && ! curl -sf -o /dev/null "$admin_url/healthz" && alive="no (/healthz)"
    [ "$alive" = yes ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v1/facilities")" != 401 ] &&
        alive="no (the public port does not answer 401)"
    if [ -n "$bad" ] || [ "$alive" != yes ] || [ "$after" != "$before" ]; then
        verdict doona FAIL "alive: $alive; requests that reached the upstream: $((after - before));$bad"
        [ "${SCAN_KEEP:-0}" = 1 ] || echo "          (SCAN_KEEP=1 keeps doona's output in the temp folder)"
    else
        verdict doona PASS "$ncases cases, lockgate alive, nothing reached the upstream ($(elapsed "$t0_doona"))"
    fi
fi

kill -0 "$lg_pid" 2>/dev/null || failed="$failed lockgate-exited"
if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$dir/lockgate.log"; then
    echo "lockgate: a sanitizer report in its log:"
    grep -E -A20 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$dir/lockgate.log" | head -40
    failed="$failed sanitizer"
fi
if [ -n "$failed" ]; then
    echo "scan: FAILED:$failed"
    exit 1
fi
echo "scan: every check passed"
