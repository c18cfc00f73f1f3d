#!/bin/sh
# Writes the demo upstream's static data set (the lock platform API, SPEC
# section 6) for nginx (config/nginx-demo.conf.in) or upstream_server --data.
#
#   scripts/gen-demo-data.sh DIR FAC_ID...
#
# For each facility: DIR/v1/facilities/<fac>, .../units, .../units/<unit> and
# .../units/<unit>/unlock-code for units U001..U012. A path is both a file and
# a folder, so the JSON for path P lives in P/index.json.
# Values match tests/integration/upstream_server.c: with D = SHA-256 of
# "<fac>/<unit>", unlock_code = (big-endian uint32 of D[0..3]) mod 10000 as 4
# digits, lock_serial = D[4..11] each mod 36 as [0-9A-Z], and lock_status by
# unit number n: n%5 == 0 assigned_auction, 1 tenant_using_lock,
# 2 assigned_overlock, 3 assigned_vacant, 4 returned_to_dropbox.
set -eu

UNITS=12

usage() {
    echo "usage: $0 DIR FAC_ID..." >&2
    exit 2
}

[ $# -ge 2 ] || usage
dir=$1
shift

# pick N C0 C1 ...: sets ch to the Nth (from 0) of the following words.
pick() {
    shift "$1"
    shift
    ch=$1
}

# unit_values FAC UNIT: sets code and serial.
unit_values() {
    hex=$(printf '%s' "$1/$2" | sha256sum)
    hex=${hex%% *}
    rest=${hex#????????}
    code=$(printf '%04d' $(( 0x${hex%"$rest"} % 10000 )))
    serial=
    i=0
    while [ $i -lt 8 ]; do
        tail=${rest#??}
        byte=${rest%"$tail"}
        rest=$tail
        pick $(( 0x$byte % 36 )) 0 1 2 3 4 5 6 7 8 9 A B C D E F G H I J K L M N O P Q R S T U V W X Y Z
        serial=$serial$ch
        i=$((i + 1))
    done
}

status_of() {
    case $(( $1 % 5 )) in
    0) status=assigned_auction ;;
    1) status=tenant_using_lock ;;
    2) status=assigned_overlock ;;
    3) status=assigned_vacant ;;
    *) status=returned_to_dropbox ;;
    esac
}

for fac in "$@"; do
    case $fac in
    "" | *[!A-Za-z0-9_-]*)
        echo "$0: bad facility id '$fac' (want [A-Za-z0-9_-]{1,64})" >&2
        exit 2
        ;;
    esac
    [ ${#fac} -le 64 ] || { echo "$0: facility id too long: $fac" >&2; exit 2; }

    fdir=$dir/v1/facilities/$fac
    mkdir -p "$fdir/units"
    printf '{"facility_id":"%s","name":"Facility %s","unit_count":%d}\n' \
        "$fac" "$fac" "$UNITS" >"$fdir/index.json"

    list=
    n=1
    while [ $n -le $UNITS ]; do
        unit=$(printf 'U%03d' "$n")
        unit_values "$fac" "$unit"
        status_of "$n"
        mkdir -p "$fdir/units/$unit/unlock-code"
        obj=$(printf '{"facility_id":"%s","unit_id":"%s","lock_serial":"%s","lock_status":"%s"}' \
            "$fac" "$unit" "$serial" "$status")
        printf '%s\n' "$obj" >"$fdir/units/$unit/index.json"
        printf '{"facility_id":"%s","unit_id":"%s","unlock_code":"%s","lock_serial":"%s","lock_status":"%s"}\n' \
            "$fac" "$unit" "$code" "$serial" "$status" >"$fdir/units/$unit/unlock-code/index.json"
        list=${list:+$list,}$obj
        n=$((n + 1))
    done
    printf '{"facility_id":"%s","units":[%s],"count":%d}\n' "$fac" "$list" "$UNITS" \
        >"$fdir/units/index.json"
done
