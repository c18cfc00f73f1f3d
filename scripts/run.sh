#!/bin/bash
# The local demo: Redis (persistent, under var/redis), a demo upstream (nginx
# serving a generated lock platform data set), a self-signed certificate,
# lockgate, and a demo account with facilities and a call-center key created
# through lockgate-admin. Prints working requests; Ctrl-C stops everything.
# Running it again reuses what the first run created (var/demo.env).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
var="$top/var"
build=${LG_BUILD:-build}
conf="$top/config/lockgate.conf"
admin="$top/$build/lockgate-admin"
export LOCKGATE_ADMIN_URL=http://127.0.0.1:9090
export LOCKGATE_ADMIN_TOKEN_FILE="$var/admin.token"
mkdir -p "$var/redis" "$var/tls" "$var/nginx" "$var/log"
chmod 700 "$var"

pids=""
cleanup() {
    trap - INT TERM EXIT
    echo
    echo "stopping lockgate, the demo upstream and Redis"
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

wait_for() { # what, command...
    what=$1; shift
    i=0
    until "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -gt 100 ]; then echo "run: $what did not start; see $var/log" >&2; exit 1; fi
        sleep 0.1
    done
}
for p in 6379 8081 8080 8443 9090; do
    if bash -c "echo > /dev/tcp/127.0.0.1/$p" 2>/dev/null; then
        echo "run: port $p is already in use (another 'make run'?); stop it first" >&2
        exit 1
    fi
done

scripts/gen-certs.sh "$var/tls"

echo "starting Redis (data in var/redis)"
redis-server "$top/config/redis.conf" --dir "$var/redis" --logfile "$var/log/redis.log" &
pids="$pids $!"
wait_for Redis redis-cli -p 6379 ping

echo "starting lockgate"
"$top/$build/lockgate" -c "$conf" >>"$var/log/lockgate.log" 2>&1 &
pids="$pids $!"
wait_for lockgate curl -sf http://127.0.0.1:9090/healthz

# The demo account, facilities and key: created once, remembered in var/demo.env.
if [ ! -s "$var/demo.env" ]; then
    echo "creating the demo account, facilities and call-center key"
    acct=$("$admin" account create --name "Demo Storage Co" | sed -n 's/^account_id: *//p')
    facs=""
    for n in "Main Street" "Harbor View" "Airport Road"; do
        f=$("$admin" facility create --account "$acct" --name "$n" | sed -n 's/^facility_id: *//p')
        facs="$facs $f"
    done
    set -- $facs
    out=$("$admin" key create --account "$acct" --name "Call Center" --all-facilities 2>/dev/null)
    key=$(echo "$out" | sed -n 's/^key_id: *//p')
    secret=$(echo "$out" | sed -n 's/^secret: *//p')
    out2=$("$admin" key create --account "$acct" --name "Night Desk" --facility "$1" --facility "$2" 2>/dev/null)
    key2=$(echo "$out2" | sed -n 's/^key_id: *//p')
    feedkey=$("$admin" feed-key create --name "OverlockRelease" 2>/dev/null | sed -n 's/^key_id: *//p')
    [ -n "$acct" ] && [ -n "$key" ] && [ -n "$secret" ] && [ -n "$feedkey" ] ||
        { echo "run: demo setup failed" >&2; exit 1; }
    umask 077
    cat > "$var/demo.env" <<ENV
acct=$acct
facs="$facs"
key=$key
key2=$key2
feedkey=$feedkey
ENV
fi
. "$var/demo.env"
if [ -z "${feedkey:-}" ]; then # demo data from before the feed key existed
    feedkey=$("$admin" feed-key create --name "OverlockRelease" 2>/dev/null | sed -n 's/^key_id: *//p')
    echo "feedkey=$feedkey" >> "$var/demo.env"
fi
if [ -z "${consolepw:-}" ]; then # the owner's console user, made once
    consolepw=$("$admin" user create --account "$acct" --email owner@demo.example 2>/dev/null |
        sed -n 's/^password: *//p')
    (umask 077; echo "consolepw=$consolepw" >> "$var/demo.env")
fi
secret=$("$admin" key show "$key" --reveal 2>/dev/null | sed -n 's/^secret: *//p')
feedsecret=$("$admin" key show "$feedkey" --reveal 2>/dev/null | sed -n 's/^secret: *//p')
set -- $facs

echo "starting the demo upstream (nginx on 127.0.0.1:8081)"
scripts/gen-demo-data.sh "$var/nginx/demo-data" $facs >/dev/null
sed -e "s|@VAR@|$var/nginx|g" -e "s|@PORT@|8081|g" config/nginx-demo.conf.in > "$var/nginx/nginx-demo.conf"
nginx -p "$var/nginx" -e "$var/nginx/nginx-error.log" -c "$var/nginx/nginx-demo.conf" &
pids="$pids $!"
wait_for nginx curl -sf "http://127.0.0.1:8081/v1/facilities/$1"

cat <<MSG

lockgate is running.
  public API   https://localhost:8443 (TLS)  http://127.0.0.1:8080 (plain)
  admin API    http://127.0.0.1:9090         token in var/admin.token
  logs         var/log/

The call center's key ("Call Center", all facilities):
  key    $key
  secret $secret

List the facilities the key may see:
  curl --cacert var/tls/cert.pem -u '$key:$secret' https://localhost:8443/v1/facilities

Read an unlock code (audited):
  curl --cacert var/tls/cert.pem -u '$key:$secret' https://localhost:8443/v1/facilities/$1/units/U001/unlock-code

Follow the facility inclusion feed as OverlockRelease does (feed key "OverlockRelease"):
  curl -N --cacert var/tls/cert.pem -u '$feedkey:$feedsecret' https://localhost:8443/v1/feed/facilities/stream
  (then, in another terminal: build/lockgate-admin facility exclude $2)

The owner's console (sign in, then Integrations):
  http://127.0.0.1:9090/console/   email owner@demo.example   password $consolepw

Owner's tasks with the CLI (build/lockgate-admin; it finds the admin token in var/):
  build/lockgate-admin key list --account $acct
  build/lockgate-admin key show $key --reveal
  build/lockgate-admin key disable $key          # lock a compromised key
  build/lockgate-admin facility exclude $2       # take a facility out of the API
  build/lockgate-admin audit --account $acct

Ctrl-C stops everything.
MSG
wait
