#!/bin/sh
# A small consumer of lockgate's facility inclusion feed, the way
# OverlockRelease uses it: take a snapshot, follow the event stream from the
# snapshot's cursor applying each change to a local state, resume after a
# disconnect from the last change applied, and start over with a new
# snapshot when the gateway answers 410 (cursor_expired).
#
# usage: scripts/feed-consumer.sh URL KEY SECRET STATE_DIR
#   URL        the gateway's base URL, e.g. http://127.0.0.1:8080
#   KEY        a feed key id (lk_...)
#   SECRET     its secret, or "-" to take it from $LOCKGATE_FEED_SECRET (which
#              keeps it out of the process list; curl gets it on stdin)
#   STATE_DIR  where the state is kept (created when missing)
#
# State, plain text, each file replaced atomically (write, then mv):
#   STATE_DIR/facilities  one line per facility, sorted by facility id,
#                         fields separated by one TAB:
#                           facility_id  included (1 or 0)  account_id  name
#                         the name as the JSON carries it (escapes kept)
#   STATE_DIR/cursor      the id of the last change applied: the snapshot's
#                         cursor at first, then each event's id
# An existing state is resumed from its cursor. Progress goes to stdout, one
# line per step. Needs POSIX sh, awk and curl (no jq): the JSON is read with
# awk patterns that rely on the gateway's field order.
set -u

if [ $# -ne 4 ]; then
    echo "usage: $0 URL KEY SECRET STATE_DIR" >&2
    exit 2
fi
url=${1%/}
key=$2
secret=$3
dir=$4
if [ "$secret" = "-" ]; then
    secret=${LOCKGATE_FEED_SECRET:-}
    if [ -z "$secret" ]; then
        echo "$0: SECRET is - but LOCKGATE_FEED_SECRET is empty" >&2
        exit 2
    fi
fi
state="$dir/facilities"
cursor_file="$dir/cursor"
headers="$dir/.headers.$$"
mkdir -p "$dir" || exit 1
exec 3>&1 # progress lines, also from inside command substitutions
trap 'rm -f "$headers" "$dir"/.*.$$; exit 0' INT TERM
trap 'rm -f "$headers" "$dir"/.*.$$' EXIT

log() {
    echo "feed-consumer: $*" >&3
}

# curl reads the credentials from its config on stdin, never from argv.
creds() {
    printf 'user = "%s:%s"\n' "$key" "$secret"
}

# replace FILE with the text on stdin
replace() {
    cat > "$1.$$" && mv -f "$1.$$" "$1"
}

# The JSON string or literal value of field $1 in the JSON text on stdin
# (the first occurrence; strings keep their escapes).
json_field() {
    FIELD=$1 awk '
    {
        pat = "\"" ENVIRON["FIELD"] "\":(\"([^\"\\\\]|\\\\.)*\"|[a-z0-9]+)"
        if (match($0, pat)) {
            v = substr($0, RSTART + length(ENVIRON["FIELD"]) + 3, RLENGTH - length(ENVIRON["FIELD"]) - 3)
            if (substr(v, 1, 1) == "\"") v = substr(v, 2, length(v) - 2)
            print v
            exit
        }
    }'
}

# GET /v1/feed/facilities into a new state and cursor. 0, or 1 on failure.
snapshot() {
    tmp="$dir/.snapshot.$$"
    code=$(creds | curl -sS -K - -o "$tmp" -w '%{http_code}' "$url/v1/feed/facilities") || code=000
    if [ "$code" != 200 ]; then
        log "snapshot failed (HTTP $code)"
        rm -f "$tmp"
        return 1
    fi
    cur=$(json_field cursor < "$tmp")
    case $cur in
    [0-9]*-[0-9]*) ;;
    *)
        log "snapshot without a cursor"
        rm -f "$tmp"
        return 1
        ;;
    esac
    awk '
    {
        s = $0
        obj = "\\{\"facility_id\":\"[A-Za-z0-9_-]+\",\"account_id\":\"[^\"]*\",\"name\":\"([^\"\\\\]|\\\\.)*\",\"included\":(true|false)"
        while (match(s, obj)) {
            o = substr(s, RSTART, RLENGTH)
            s = substr(s, RSTART + RLENGTH)
            match(o, /"facility_id":"[^"]*"/); id = substr(o, RSTART + 15, RLENGTH - 16)
            match(o, /"account_id":"[^"]*"/); acct = substr(o, RSTART + 14, RLENGTH - 15)
            match(o, /"name":"([^"\\]|\\.)*"/); name = substr(o, RSTART + 8, RLENGTH - 9)
            inc = o ~ /"included":true/ ? 1 : 0
            printf "%s\t%s\t%s\t%s\n", id, inc, acct, name
        }
    }' "$tmp" | LC_ALL=C sort | replace "$state"
    echo "$cur" | replace "$cursor_file"
    rm -f "$tmp"
    log "snapshot: $(wc -l < "$state" | tr -d ' ') facilities at cursor $cur"
    return 0
}

# Applies one change: $1 id, $2 type, $3 the change JSON.
apply() {
    fac=$(printf '%s\n' "$3" | json_field facility_id)
    acct=$(printf '%s\n' "$3" | json_field account_id)
    inc=$(printf '%s\n' "$3" | json_field included)
    name=$(printf '%s\n' "$3" | json_field name)
    case $fac in
    '' | *[!A-Za-z0-9_-]*)
        log "$1: ignoring a change without a facility id"
        return
        ;;
    esac
    [ "$inc" = true ] && inc=1 || inc=0
    del=0
    [ "$2" = facility.deleted ] && del=1
    FAC=$fac INC=$inc ACCT=$acct NAME=$name DEL=$del awk -F '\t' '
    BEGIN { OFS = "\t" }
    $1 == ENVIRON["FAC"] {
        found = 1
        if (ENVIRON["DEL"] == 1) next
        name = ENVIRON["NAME"] != "" ? ENVIRON["NAME"] : $4
        print $1, ENVIRON["INC"], ENVIRON["ACCT"], name
        next
    }
    { print }
    END {
        if (!found && ENVIRON["DEL"] != 1)
            print ENVIRON["FAC"], ENVIRON["INC"], ENVIRON["ACCT"], ENVIRON["NAME"]
    }' "$state" | LC_ALL=C sort | replace "$state"
    echo "$1" | replace "$cursor_file"
    log "$1 $2 $fac included=$inc"
}

# Follows the stream after the saved cursor until it ends; prints the HTTP
# status of the stream's answer.
follow() {
    since=$(cat "$cursor_file")
    rm -f "$headers"
    creds | curl -sS -N -K - -D "$headers" -H "Last-Event-ID: $since" \
        -H 'Accept: text/event-stream' "$url/v1/feed/facilities/stream" 2>/dev/null |
        {
            cr=$(printf '\r')
            id='' type='' data=''
            while IFS= read -r line; do
                line=${line%"$cr"}
                case $line in
                'id: '*) id=${line#id: } ;;
                'event: '*) type=${line#event: } ;;
                'data: '*) data=${line#data: } ;;
                '')
                    if [ -n "$id" ] && [ -n "$data" ]; then apply "$id" "$type" "$data"; fi
                    id='' type='' data=''
                    ;;
                *) ;; # ": keep-alive" comments, or an error body
                esac
            done
        }
    code=$(sed -n '1s/^HTTP\/[0-9.]* \([0-9][0-9]*\).*/\1/p' "$headers" 2>/dev/null)
    rm -f "$headers"
    echo "${code:-000}"
}

if [ -s "$cursor_file" ] && [ -f "$state" ]; then
    log "resuming after $(cat "$cursor_file")"
else
    until snapshot; do sleep 2; done
fi
while :; do
    log "following the stream after $(cat "$cursor_file")"
    code=$(follow)
    case $code in
    200)
        log "stream ended; resuming after $(cat "$cursor_file")"
        sleep 1
        ;;
    410)
        log "cursor expired: taking a new snapshot"
        until snapshot; do sleep 2; done
        ;;
    401 | 403)
        log "refused (HTTP $code); retrying in 5 s"
        sleep 5
        ;;
    *)
        log "stream unavailable (HTTP $code); retrying in 2 s"
        sleep 2
        ;;
    esac
done
