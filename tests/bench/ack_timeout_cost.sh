#!/bin/sh
# ack_timeout_cost.sh - what consumer_timeout costs a manual-ack consumer
# (issue 15).
#
# Two warrends: one with the default consumer_timeout (30 min: every
# delivery records its time, its channel is on the tick's list), one with
# consumer_timeout = 0. Each rep runs warren-perf's scenario b (1 producer,
# 1 consumer, manual ack, prefetch 100, 16-byte messages) for
# BENCH_SECONDS against each, alternating which goes first. Prints the
# median delivery rate of each, and the broker's CPU time per delivered
# message (less disturbed by other load on a shared machine), and on/off.
#
# BENCH_CALLGRIND=N instead runs each under valgrind's callgrind for N
# messages (-C N) and prints the broker's instructions per message, which
# other load does not disturb; WARREND_BASE=PATH adds a third broker (a
# build without the feature) as the baseline.
#
#   tests/bench/ack_timeout_cost.sh            (after make)
#   BENCH_REPS=5 BENCH_SECONDS=5 tests/bench/ack_timeout_cost.sh
#   BENCH_CALLGRIND=1000000 WARREND_BASE=/tmp/main/src/warrend tests/bench/ack_timeout_cost.sh
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
b=${top_builddir:-$top}
reps=${BENCH_REPS:-3}
secs=${BENCH_SECONDS:-4}
tmp=$(mktemp -d)
pids=""
trap 'kill $pids 2>/dev/null; wait $pids 2>/dev/null; rm -rf "$tmp"' EXIT
freeport() {
    /usr/bin/python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
}
waitport() {
    i=0
    until /usr/bin/python3 -c "import socket;socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null; do
        i=$((i + 1)); [ $i -lt 300 ] || { cat "$tmp"/*.log; exit 1; }; sleep 0.1
    done
}
perf() { # port queue extra-args...
    port=$1; q=$2; shift 2
    "$b/tests/bench/warren-perf" -h "amqp://guest:guest@127.0.0.1:$port/" -x 1 -y 1 -s 16 -q 100 \
        -u "$q" -j "$@" 2>/dev/null
}

if [ -n "${BENCH_CALLGRIND:-}" ]; then
    n=$BENCH_CALLGRIND
    count() { # name warrend args...
        name=$1; exe=$2; shift 2
        port=$(freeport)
        valgrind --tool=callgrind --callgrind-out-file="$tmp/$name.cg" "$exe" -p "$port" \
            --data-dir "$tmp/$name" --mgmt-port 0 "$@" > "$tmp/$name.log" 2>&1 &
        pid=$!; pids="$pids $pid"
        waitport "$port"
        perf "$port" bench.cg -C "$n" -z 600 > /dev/null
        kill -TERM $pid; wait $pid || true
        ir=$(sed -n 's/^summary: //p' "$tmp/$name.cg")
        /usr/bin/python3 -c "print('%-34s %d instructions, %.1f per message' % ('$name:', $ir, $ir / $n))"
    }
    for r in $(seq "$reps"); do
        [ -z "${WARREND_BASE:-}" ] || count "base $r (WARREND_BASE)" "$WARREND_BASE"
        count "consumer_timeout = 1800000, $r" "$b/src/warrend"
        count "consumer_timeout = 0, $r" "$b/src/warrend" -s consumer_timeout=0
    done
    exit 0
fi

on=$(freeport)
off=$(freeport)
"$b/src/warrend" -p "$on" --data-dir "$tmp/on" --mgmt-port 0 > "$tmp/on.log" 2>&1 &
pon=$!
"$b/src/warrend" -p "$off" --data-dir "$tmp/off" --mgmt-port 0 -s consumer_timeout=0 \
    > "$tmp/off.log" 2>&1 &
poff=$!
pids="$pon $poff"
waitport "$on"
waitport "$off"
run() { # port pid queue
    perf "$1" "$3" --broker-pid "$2" -z "$secs" |
        /usr/bin/python3 -c 'import json,sys; j=json.loads(sys.stdin.readline())
print("%d:%.1f" % (j["recv_rate"], 1e9 * j["broker_stats"]["cpu_s"] / max(j["received"], 1)))'
}
a=""; z=""
for r in $(seq "$reps"); do
    if [ $((r % 2)) -eq 1 ]; then
        a="$a $(run "$on" "$pon" bench.on$r)"; z="$z $(run "$off" "$poff" bench.off$r)"
    else
        z="$z $(run "$off" "$poff" bench.off$r)"; a="$a $(run "$on" "$pon" bench.on$r)"
    fi
done
/usr/bin/python3 - "$a" "$z" <<'PY'
import statistics, sys
def parse(arg):
    runs = [x.split(":") for x in arg.split()]
    return [int(r) for r, _ in runs], [float(c) for _, c in runs]
ra, ca = parse(sys.argv[1])
rz, cz = parse(sys.argv[2])
for name, r, c in (("consumer_timeout = 1800000", ra, ca), ("consumer_timeout = 0", rz, cz)):
    print("%-27s %s msg/s, median %d; broker ns/msg %s, median %.1f"
          % (name + ":", r, statistics.median(r), c, statistics.median(c)))
print("on/off: rate %.3f, broker CPU per message %.3f"
      % (statistics.median(ra) / statistics.median(rz), statistics.median(ca) / statistics.median(cz)))
PY
