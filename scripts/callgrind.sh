#!/bin/bash
# Instructions per request of lockgate, counted with valgrind's callgrind, for
#   (a) GET /v1/facilities with a valid key: answered by lockgate itself, so it
#       is the front end plus authentication and the rate limit call;
#   (b) GET /v1/facilities/{fac}/units/U001: the same, proxied to the upstream;
# and the share of each spent in the HTTP front end.
#
#   scripts/callgrind.sh [REQUESTS] [WARMUP]
#   CG_REQUESTS  measured requests per round (default 2000)
#   CG_WARMUP    warm-up requests per scenario, not counted (default 300)
#   CG_ROUNDS    measured rounds of REQUESTS per scenario; the median is reported (default 3)
#   CG_CONNS     keep-alive client connections, requests split between them (default 1)
#   CG_SCENARIOS which of the requests below to measure, in that order (default "a b")
#   CG_OUT       where the dumps and the callgrind_annotate listings are kept
#                (default $LG_BUILD/callgrind, i.e. build/callgrind)
#   LG_BUILD     build folder holding lockgate and lockgate-admin (default build);
#                nothing is built here, run `make` first.
#
# It starts its own redis-server and upstream (nginx serving the static demo
# data set, as scripts/bench.sh does) on free loopback ports, runs
# build/lockgate under callgrind with one worker and access_log off, and
# creates an account, a facility and a key through build/lockgate-admin.
# Nothing leaves the loopback interface.
#
# How the per-request figure is taken. lockgate runs under callgrind from
# the start; for each scenario the client sends WARMUP requests (caches, the
# pooled upstream connection and the Redis script get hot), then
# `callgrind_control --zero` resets the counters, REQUESTS requests are sent,
# and `callgrind_control --dump` writes a profile of exactly that phase. Start
# up, configuration, the admin calls, warm-up and shut-down are therefore not
# in the counts at all, and the result is simply total / REQUESTS. The client
# is curl with a fixed list of identical requests (exact request count, one
# connection reused for all of them: curl's %{num_connects} is checked); wrk
# is not used here because it runs for a duration, not a count. What else
# lands in a measured phase is one accept and close per client connection
# (amortised over the requests) and lockgate's timers (heartbeats); the
# latter are measured separately as an idle rate and printed with the upper
# bound they put on each figure. The measured phase is repeated ROUNDS times
# in the same process and the median is reported with the range. Counts do
# not depend on how busy the machine is, but they do depend a little on
# timing: a request answered by lockgate alone varies by about 0.1% from
# round to round, a proxied one by a few percent, because whether libcurl
# finds the upstream's answer from its timer or from a socket event (and how
# many loop iterations a request takes) depends on when that answer arrives.
# Wall time under callgrind means nothing.
#
# How the front end is separated. callgrind_annotate --inclusive=yes lists
# the inclusive cost of each front-end function (printed below, per
# request), but those figures nest: the read callback of evhttp includes the
# whole request pipeline it calls, and the answer is written later from a
# Redis or upstream callback. "Front end alone" is therefore computed from
# the call graph of the profile. Every function is put in one component:
#   front end   libevent's http, bufferevent, evbuffer and listener code
#               (evhttp_*, bufferevent_*, evbuffer_*, evconnlistener_*),
#               libevent_openssl, http_parser, every function in src/http*.c
#               and any lg_http_* function outside src/reply.c (reply.c
#               builds JSON answers: application work whatever the front end)
#   event loop  event_base_loop (what it runs itself: epoll, dispatching)
#   lockgate    the rest of lockgate: pipeline, auth, routing, rate limit,
#               upstream client, store, caches
#   hiredis, libcurl, jansson, OpenSSL, other libraries
# or is "shared": the C library, libevent's core (event_add, event_del,
# evutil_*, locks) and src/util.c. A component costs the self cost of its
# functions plus its share of the shared functions it calls; a shared
# function's cost (with its own shared callees) is split between its callers
# in proportion to the inclusive cost of their calls. A call from one
# component into another is charged to the callee's component. Every
# instruction is charged once, and the components add up to callgrind's
# total (the small remainder is printed).
# libevent is stripped: its static functions appear as addresses. Each is
# placed with the source file of the next exported symbol (the library is
# linked file by file, and the static functions met in these profiles come
# before their file's exported ones), or, at a boundary between two files,
# in the front end when a front-end function calls it (only its own file can
# call a static function directly).
# For the evhttp build the result agrees with the hand sum of inclusive
# costs: client read callback + write callback + lg_http_* called by the
# pipeline - lg_pipeline_handle.
# Limitation: evbuffer_* or bufferevent_* calls made by lockgate code outside
# the front end would be counted as front end (there are none today; the
# script says so if they appear).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
requests=${1:-${CG_REQUESTS:-2000}}
warmup=${2:-${CG_WARMUP:-300}}
rounds=${CG_ROUNDS:-3}
conns=${CG_CONNS:-1}
scenarios=${CG_SCENARIOS:-a b}
build=${LG_BUILD:-build}
out=${CG_OUT:-$build/callgrind}
case "$build" in /*) ;; *) build="$top/$build" ;; esac
case "$out" in /*) ;; *) out="$top/$out" ;; esac
for b in lockgate lockgate-admin; do
    [ -x "$build/$b" ] || { echo "callgrind: $build/$b not found; run make first" >&2; exit 1; }
done
for p in valgrind callgrind_control callgrind_annotate redis-server nginx curl perl nm; do
    command -v "$p" >/dev/null || { echo "callgrind: $p is not installed" >&2; exit 1; }
done
[ "$requests" -ge "$conns" ] 2>/dev/null || { echo "callgrind: REQUESTS must be >= CG_CONNS" >&2; exit 2; }

work=$(mktemp -d /tmp/lockgate-callgrind.XXXXXX)
pids=""
lgpid=""
cleanup() {
    if [ -n "$lgpid" ]; then kill "$lgpid" 2>/dev/null || true; fi
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
export no_proxy='*' NO_PROXY='*' # loopback only, whatever the environment says

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])' 2>/dev/null ||
    shuf -i 20000-60000 -n 1; }
wait_url() {
    for _ in $(seq 300); do curl -sf -o /dev/null "$@" && return 0; sleep 0.1; done
    echo "callgrind: $* did not answer" >&2
    [ -s "$work/lockgate.log" ] && tail -20 "$work/lockgate.log" >&2
    exit 1
}

rport=$(free_port); oport=$(free_port); lport=$(free_port); aport=$(free_port)
fac=fac_BENCH0000000000000000
mkdir -p "$work/origin" "$out"

redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
    --logfile "$work/redis.log" &
pids="$pids $!"
scripts/gen-demo-data.sh "$work/origin/demo-data" "$fac" >/dev/null
sed -e "s|@VAR@|$work/origin|g" -e "s|@PORT@|$oport|g" config/nginx-demo.conf.in > "$work/origin/origin.conf"
nginx -p "$work/origin" -e "$work/origin/nginx-error.log" -c "$work/origin/origin.conf" &
pids="$pids $!"

printf 'callgrind-admin-token-0123456789abcdef\n' > "$work/admin.token"
# Redis and upstream deadlines are raised: under callgrind lockgate runs some
# 50 times slower, and the defaults (50 ms for Redis) would fail requests.
# A deadline's value does not change the work done per request.
cat > "$work/lockgate.conf" <<CONF
[server]
listen = 127.0.0.1:$lport
listen_tls =
workers = 1
access_log = off
log_level = warn
[admin]
listen = 127.0.0.1:$aport
token_file = admin.token
[redis]
port = $rport
timeout_ms = 2000
[upstream]
url = http://127.0.0.1:$oport
timeout_ms = 5000
connect_timeout_ms = 2000
[secrets]
pepper_file = pepper
master_key_file = master.key
CONF
cd "$work"
valgrind --tool=callgrind --dump-instr=no --collect-atstart=yes --separate-threads=no \
    --callgrind-out-file="$work/callgrind.out.%p" "$build/lockgate" -c "$work/lockgate.conf" \
    >"$work/lockgate.log" 2>&1 &
lgpid=$!
cd "$top"

wait_url "http://127.0.0.1:$oport/v1/facilities/$fac/units/U001"
wait_url "http://127.0.0.1:$aport/healthz"
admin() { # retried: the first calls under callgrind are slow
    local i
    for i in 1 2 3; do
        if "$build/lockgate-admin" --url "http://127.0.0.1:$aport" --token-file "$work/admin.token" "$@" \
            > "$work/admin.out" 2> "$work/admin.err"; then
            cat "$work/admin.out"
            return 0
        fi
        sleep 1
    done
    echo "callgrind: lockgate-admin $* failed:" >&2
    cat "$work/admin.err" >&2
    exit 1
}
acct=$(admin account create --name Bench | sed -n 's/^account_id: *//p')
admin facility create --account "$acct" --name Bench --id "$fac" >/dev/null
keyout=$(admin key create --account "$acct" --name Bench --all-facilities --rate 100000 --burst 100000)
key=$(echo "$keyout" | sed -n 's/^key_id: *//p')
secret=$(echo "$keyout" | sed -n 's/^secret: *//p')
[ -n "$key" ] && [ -n "$secret" ] || { echo "callgrind: key creation failed" >&2; exit 1; }
printf 'Authorization: Basic %s\n' "$(printf '%s:%s' "$key" "$secret" | base64 -w0)" > "$work/auth.header"
url_a="http://127.0.0.1:$lport/v1/facilities"
url_b="http://127.0.0.1:$lport/v1/facilities/$fac/units/U001"
wait_url -H @"$work/auth.header" "$url_a"
wait_url -H @"$work/auth.header" "$url_b"

cg() { callgrind_control "$@" "$lgpid" >> "$work/control.log" 2>&1 ||
    { echo "callgrind: callgrind_control $* failed:" >&2; tail -5 "$work/control.log" >&2; exit 1; }; }
# The newest dump callgrind wrote (callgrind.out.PID.N, highest N), once complete.
last_dump() {
    local n f
    n=$(ls "$work" | sed -n "s/^callgrind\.out\.$lgpid\.\([0-9]*\)\$/\1/p" | sort -n | tail -1)
    f="$work/callgrind.out.$lgpid.$n"
    for _ in $(seq 100); do grep -q '^totals:' "$f" 2>/dev/null && break; sleep 0.1; done
    grep -q '^totals:' "$f" 2>/dev/null || { echo "callgrind: no complete dump in $work" >&2; exit 1; }
    echo "$f"
}

# send URL COUNT: COUNT identical GETs over CG_CONNS keep-alive connections;
# every status and connection count lands in $work/statuses.
send() {
    local url=$1 count=$2 c n clients=""
    for c in $(seq "$conns"); do
        n=$((count / conns + (c <= count % conns ? 1 : 0)))
        : > "$work/urls.$c"
        for _ in $(seq "$n"); do printf 'url = "%s"\noutput = "/dev/null"\n' "$url"; done >> "$work/urls.$c"
        curl -s --noproxy '*' -H @"$work/auth.header" -w '%{http_code} %{num_connects}\n' \
            -K "$work/urls.$c" > "$work/statuses.$c" &
        clients="$clients $!"
    done
    for c in $clients; do wait "$c" || true; done
    cat "$work"/statuses.* > "$work/statuses"
    rm -f "$work"/statuses.* "$work"/urls.*
}

# Timers and heartbeats run whatever the traffic: their rate bounds what they
# add to a measured phase.
sleep 1
cg --zero
sleep 3
cg --dump=idle-3s
idle_dump=$(last_dump)
idle_per_s=$(( $(sed -n 's/^summary: *//p' "$idle_dump") / 3 ))
cp "$idle_dump" "$out/callgrind.idle"

cat > "$work/split.pl" <<'PERL'
# split.pl DUMP REQUESTS MAIN_BINARY INCLUSIVE_LISTING: the per-request
# figures of one callgrind dump, by component (see callgrind.sh).
use strict;
use warnings;
my ($dump, $nreq, $main, $incl) = @ARGV;
my (%name, %obj, %file, %self, %arc, %callers);
my (%obname, %flname);
my ($ob, $fl, $cfile, $fn, $cob, $cfi, $cfn, $incall, $summary) = ('', '', '', '', undef, undef, undef, 0, 0);
open my $in, '<', $dump or die "$dump: $!";
sub ref_of { # (id) name, or (id): returns the id and records the name
    my ($v, $names) = @_;
    my ($id, $n) = $v =~ /^\((\d+)\)\s*(.*)$/ or return $v;
    $names->{$id} = $n if length $n;
    return $id;
}
while (<$in>) {
    chomp;
    if (/^(\d|[+*-])/) {
        my @f = split;
        my $cost = $f[1] // 0;
        if ($incall) {
            $arc{$fn}{$cfn} += $cost;
            $callers{$cfn}{$fn} = 1;
            $incall = 0;
            ($cob, $cfi, $cfn) = (undef, undef, undef);
        } else {
            $self{$fn} += $cost;
        }
    } elsif (/^ob=(.*)/)  { $ob = ref_of($1, \%obname); }
    elsif (/^fl=(.*)/)    { $fl = $cfile = ref_of($1, \%flname); }
    elsif (/^f[ie]=(.*)/) { $cfile = ref_of($1, \%flname); }
    elsif (/^fn=(.*)/) {
        my ($id, $n) = $1 =~ /^\((\d+)\)\s*(.*)$/;
        $name{$id} = $n if length $n;
        $fn = $id;
        $obj{$id} //= $ob;
        $file{$id} //= $fl;
        $cfile = $fl;
    }
    elsif (/^cob=(.*)/)         { $cob = ref_of($1, \%obname); }
    elsif (/^cf[il]=(.*)/)      { $cfi = ref_of($1, \%flname); }
    elsif (/^cfn=(.*)/) {
        my ($id, $n) = $1 =~ /^\((\d+)\)\s*(.*)$/;
        $name{$id} = $n if length $n;
        $cfn = $id;
        $obj{$id} //= $cob // $ob;
        $file{$id} //= $cfi // $cfile;
    }
    elsif (/^calls=/)           { $incall = 1; }
    elsif (/^summary:\s*(\d+)/) { $summary = $1; }
    elsif (/^totals:\s*(\d+)/)  { $summary ||= $1; }
}
close $in;

# Exported symbols of a (stripped) libevent: [address, family], sorted.
my %syms;
sub syms_of {
    my ($path) = @_;
    return $syms{$path} if $syms{$path};
    my @s;
    if (open my $nm, '-|', 'nm', '-D', '--defined-only', $path) {
        while (<$nm>) {
            my ($a, $t, $n) = split;
            next unless defined $n && $t =~ /^[TtWiI]$/;
            $n =~ s/\@.*//;
            push @s, [hex($a), $n];
        }
        close $nm;
    }
    @s = sort { $a->[0] <=> $b->[0] } @s;
    return $syms{$path} = \@s;
}
sub libevent_family {
    my ($n) = @_;
    return $n =~ /^(evhttp|evbuffer|bufferevent|evconnlistener|ev_token_bucket)/ ? 'frontend' : 'core';
}
# An address in a stripped libevent: (family of the next exported symbol,
# family of the previous one, a label naming the next one).
sub libevent_place {
    my ($path, $addr) = @_;
    my $s = syms_of($path);
    return ('core', 'core', '?') unless @$s;
    my ($lo, $hi) = (0, scalar @$s);
    while ($lo < $hi) { my $m = int(($lo + $hi) / 2); if ($s->[$m][0] <= $addr) { $lo = $m + 1 } else { $hi = $m } }
    my $prev = $lo > 0 ? $s->[$lo - 1] : undef;
    my $next = $lo < @$s ? $s->[$lo] : undef;
    my $pf = $prev ? libevent_family($prev->[1]) : undef;
    my $nf = $next ? libevent_family($next->[1]) : undef;
    my $label = $next ? "before $next->[1]" : sprintf('after %s', $prev->[1]);
    return ($nf // $pf, $pf // $nf, $label);
}

my $base_main = $main; $base_main =~ s{.*/}{};
my %gap;   # unnamed libevent functions between a front-end file and another
my %label;
sub classify {
    my ($ob, $fl, $n) = @_;
    $n =~ s/'\d+$//;
    my $o = $ob; $o =~ s{.*/}{};
    return 'frontend' if $n =~ /^http_parser_/ || $o =~ /^libhttp_parser/ || $o =~ /^libevent_openssl/;
    return 'neutral' if $o =~ /^(libc|ld-linux|libm|libpthread|libdl|librt|libgcc_s|libevent_pthreads|vgpreload_)[-.]/
        || $o eq '???' || $o eq '';
    return 'neutral' if $o eq $base_main && $fl =~ m{(^|/)src/util\.c$};
    if ($o =~ /^libevent(_core|_extra)?-/) {
        return 'loop' if $n =~ /^event_base_(loop|dispatch)$/;
        my $f = $n =~ /^0x([0-9a-f]+)$/ ? (libevent_place($ob, hex($1)))[0] : libevent_family($n);
        return $f eq 'frontend' ? 'frontend' : 'neutral';
    }
    return 'redis'  if $o =~ /^libhiredis/;
    return 'curl'   if $o =~ /^libcurl/;
    return 'json'   if $o =~ /^libjansson/;
    return 'crypto' if $o =~ /^lib(crypto|ssl)\./;
    if ($o eq $base_main) {
        return 'frontend' if $fl =~ m{(^|/)src/http[^/]*\.c$};
        return 'frontend' if $n =~ /^lg_http_/ && $fl !~ m{(^|/)src/reply\.c$};
        return 'redis' if $fl =~ m{/hiredis/adapters/};
        return 'app';
    }
    return 'other';
}
my %cat;
for my $id (keys %name) {
    my ($ob, $fl, $n) = ($obname{$obj{$id} // ''} // '', $flname{$file{$id} // ''} // '', $name{$id});
    $cat{$id} = classify($ob, $fl, $n);
    my $o = $ob; $o =~ s{.*/}{};
    if ($o =~ /^libevent(_core|_extra)?-/ && $n =~ /^0x([0-9a-f]+)/) {
        my $addr = hex($1);
        my ($nf, $pf, $l) = libevent_place($ob, $addr);
        $label{$id} = $l;
        $gap{$id} = 1 if $nf ne $pf;
    }
}
# A static function between two files belongs to the front end when a
# front-end function calls it (directly: only its own file can).
for (1 .. 3) {
    for my $id (keys %gap) {
        next if $cat{$id} eq 'frontend';
        for my $c (keys %{$callers{$id} || {}}) {
            next if $c eq $id;
            if (($cat{$c} // '') eq 'frontend') { $cat{$id} = 'frontend'; last; }
        }
    }
}

# Neutral functions (C library, libevent's core API and loop internals,
# src/util.c) are charged to their callers, in proportion to the inclusive
# cost of each caller's calls: M(g) = self(g) + the shares of its neutral
# callees; a caller f of neutral g gets M(g) * arc(f->g) / (all calls to g).
# Every instruction is charged once; what has no caller (the threads' start)
# stays unattributed.
my (%into, %mass);
for my $f (keys %arc) { $into{$_} += $arc{$f}{$_} for keys %{$arc{$f}}; }
my @neutral = grep { ($cat{$_} // 'other') eq 'neutral' } keys %name;
$mass{$_} = $self{$_} // 0 for @neutral;
for my $iter (1 .. 100) {
    my %next;
    my $delta = 0;
    for my $g (@neutral) {
        my $m = $self{$g} // 0;
        for my $h (keys %{$arc{$g} || {}}) {
            next unless ($cat{$h} // '') eq 'neutral' && $into{$h};
            $m += $mass{$h} * $arc{$g}{$h} / $into{$h};
        }
        $next{$g} = $m;
        $delta += abs($m - $mass{$g});
    }
    %mass = %next;
    last if $delta < 1;
}
my %cost;
my $fe_lib_from_app = 0;
for my $f (keys %self) {
    my $c = $cat{$f} // 'other';
    next if $c eq 'neutral';
    $cost{$c} += $self{$f};
}
for my $f (keys %arc) {
    my $c = $cat{$f} // 'other';
    next if $c eq 'neutral';
    for my $g (keys %{$arc{$f}}) {
        my $gc = $cat{$g} // 'other';
        $cost{$c} += $mass{$g} * $arc{$f}{$g} / $into{$g} if $gc eq 'neutral' && $into{$g};
        if ($c eq 'app' && $gc eq 'frontend' && ($name{$g} // '') =~ /^(evbuffer|bufferevent)_/) {
            $fe_lib_from_app += $arc{$f}{$g};
        }
    }
}
my @order = (['frontend', 'front end'], ['loop', 'event loop (event_base_loop: epoll, dispatch, timers)'],
             ['app', 'lockgate (pipeline, auth, rate limit, upstream, store)'],
             ['redis', 'hiredis'], ['curl', 'libcurl'], ['json', 'jansson'],
             ['crypto', 'OpenSSL'], ['other', 'other libraries']);
my $sum = 0;
$sum += $cost{$_->[0]} // 0 for @order;
my $pr = sub { # per request, rounded, with thousands separators
    my $v = sprintf('%.0f', $_[0] / $nreq) + 0;
    my $s = sprintf('%d', abs($v));
    1 while $s =~ s/^(\d+)(\d{3})/$1,$2/;
    ($v < 0 ? '-' : '') . $s;
};
printf "    instructions per request:  %10s\n", $pr->($summary);
for my $o (@order) {
    my $v = $cost{$o->[0]} // 0;
    next if $v == 0 && $o->[0] ne 'frontend';
    printf "      %-54s %10s  %5.1f%%\n", $o->[1], $pr->($v), $summary ? 100 * $v / $summary : 0;
}
printf "      %-54s %10s\n", 'remainder (callgrind total minus the components)', $pr->($summary - $sum);
if ($fe_lib_from_app > 0) {
    printf "    note: %s instructions/request of evbuffer/bufferevent calls from lockgate code outside\n" .
           "    the front end are counted as front end\n", $pr->($fe_lib_from_app);
}

# The inclusive listing of callgrind_annotate, front-end functions only.
my @rows;
if (open my $l, '<', $incl) {
    while (<$l>) {
        next unless /^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*):([^:\s]+)\s+\[(.*)\]\s*$/;
        my ($v, $fl, $n, $ob) = ($1, $2, $3, $4);
        $v =~ tr/,//d;
        my $c = classify($ob, $fl, $n);
        my $o = $ob; $o =~ s{.*/}{};
        if ($c ne 'frontend' && $o =~ /^libevent(_core|_extra)?-/ && $n =~ /^0x/) {
            # a gap function the call graph placed in the front end
            for my $id (keys %gap) { if ($name{$id} eq $n && $cat{$id} eq 'frontend') { $c = 'frontend'; last; } }
        }
        next unless $c eq 'frontend';
        my $show = $n;
        if ($o =~ /^libevent/ && $n =~ /^0x([0-9a-f]+)/) {
            my $addr = hex($1);
            my (undef, undef, $lbl) = libevent_place($ob, $addr);
            $show = "$n ($o static, $lbl)";
        } else {
            my $short = $fl; $short =~ s{^.*/(src/)}{$1};
            $show = ($short eq '???' ? "$o:" : "$short:") . $n;
        }
        push @rows, [$v, $show];
        last if @rows >= 12;
    }
    close $l;
}
print "    front-end functions, inclusive per request (callgrind_annotate --inclusive=yes;\n" .
      "    these nest and include what they call, e.g. the pipeline behind the read callback):\n";
printf "      %10s  %s\n", $pr->($_->[0]), $_->[1] for @rows;
printf "RESULT total=%.0f frontend=%.0f\n", $summary / $nreq, ($cost{frontend} // 0) / $nreq;
PERL

summary_rows=""
bad=0
measure() { # tag title url
    local tag=$1 title=$2 url=$3 t0 t1 ok conns_used dump r res total fe totals="" mid
    echo "== ($tag) $title: $warmup warm-up, then $rounds x $requests measured requests" >&2
    send "$url" "$warmup"
    for r in $(seq "$rounds"); do
        cg --zero
        t0=$(date +%s.%N)
        send "$url" "$requests"
        t1=$(date +%s.%N)
        cg --dump="$tag-round-$r-$requests-requests"
        dump=$(last_dump)
        ok=$(awk '$1 == "200"' "$work/statuses" | wc -l)
        conns_used=$(awk '{s += $2} END {print s + 0}' "$work/statuses")
        if [ "$ok" -ne "$requests" ]; then
            echo "callgrind: ($tag) round $r: only $ok of $requests requests were answered 200:" \
                "its figure is not valid" >&2
            bad=1
        fi
        cp "$dump" "$out/callgrind.$tag.$r"
        callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$dump" > "$out/annotate-inclusive.$tag.$r.txt"
        callgrind_annotate --inclusive=no --threshold=100 --auto=no "$dump" > "$out/annotate-self.$tag.$r.txt"
        {
            echo
            echo "($tag) $title"
            echo "    GET $url"
            echo "    round $r of $rounds: $requests requests on $conns_used keep-alive connection(s)," \
                "$ok answered 200, $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b - a}') s under callgrind"
            echo "    timers while idle: $idle_per_s instructions/s, at most" \
                "$(awk -v i="$idle_per_s" -v a="$t0" -v b="$t1" -v n="$requests" 'BEGIN{printf "%.0f", i * (b - a) / n}')" \
                "per request of this figure"
            perl "$work/split.pl" "$dump" "$requests" "$build/lockgate" "$out/annotate-inclusive.$tag.$r.txt"
        } > "$work/report.$tag.$r"
        res=$(sed -n 's/^RESULT //p' "$work/report.$tag.$r")
        total=$(echo "$res" | sed -n 's/.*total=\([0-9]*\).*/\1/p')
        fe=$(echo "$res" | sed -n 's/.*frontend=\([0-9]*\).*/\1/p')
        totals="$totals$total $fe $r"$'\n'
        echo "   round $r: $total instructions/request, front end $fe" >&2
    done
    # The round with the median total is shown in full (and kept as callgrind.TAG).
    mid=$(printf '%s' "$totals" | sort -n | sed -n "$(( (rounds + 1) / 2 ))p" | awk '{print $3}')
    cp "$out/callgrind.$tag.$mid" "$out/callgrind.$tag"
    grep -v '^RESULT' "$work/report.$tag.$mid"
    echo "    all rounds (instructions/request, front end):" \
        "$(printf '%s' "$totals" | awk '{printf "%s%s/%s", (NR == 1 ? "" : ", "), $1, $2}')"
    # median-round total and front end, then the ranges of both over the rounds
    summary_rows="$summary_rows$tag|$title|$(printf '%s' "$totals" | sort -n | awk '
        NR == 1 {flo = $2; fhi = $2}
        {t[NR] = $1; f[NR] = $2; if ($2 < flo) flo = $2; if ($2 > fhi) fhi = $2}
        END {m = int((NR + 1) / 2); printf "%s|%s|%s|%s|%s|%s", t[m], f[m], t[1], t[NR], flo, fhi}')"$'\n'
}
for s in $scenarios; do
    case "$s" in
    a) measure a "GET /v1/facilities, valid key (front end + auth + rate limit)" "$url_a" ;;
    b) measure b "GET /v1/facilities/{fac}/units/U001, valid key, proxied" "$url_b" ;;
    *) echo "callgrind: unknown scenario '$s' (a, b)" >&2; exit 2 ;;
    esac
done

echo
echo "summary: valgrind --tool=callgrind, instructions per request, median of $rounds rounds of" \
    "$requests requests (after $warmup warm-up) on $conns keep-alive connection(s), with the range over the rounds"
printf '  %-66s %9s %17s %9s %17s %6s\n' "request" "total" "range" "front end" "range" "share"
printf '%s' "$summary_rows" | while IFS='|' read -r tag title total fe tlo thi flo fhi; do
    [ -n "$tag" ] || continue
    printf '  %-66s %9s %17s %9s %17s %5s%%\n' "($tag) $title" "$total" "$tlo-$thi" "$fe" "$flo-$fhi" \
        "$(awk -v a="$fe" -v b="$total" 'BEGIN{printf "%.1f", b ? 100 * a / b : 0}')"
done
echo "profiles and listings: $out (e.g. callgrind_annotate --inclusive=yes $out/callgrind.a)"
exit "$bad"
