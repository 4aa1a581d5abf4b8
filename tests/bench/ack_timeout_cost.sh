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
# The target: no measurable cost.
#
#   tests/bench/ack_timeout_cost.sh            (after make)
#   BENCH_REPS=5 BENCH_SECONDS=5 tests/bench/ack_timeout_cost.sh
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
b=${top_builddir:-$top}
reps=${BENCH_REPS:-3}
secs=${BENCH_SECONDS:-4}
tmp=$(mktemp -d)
freeport() {
    /usr/bin/python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
}
on=$(freeport)
off=$(freeport)
"$b/src/warrend" -p "$on" --data-dir "$tmp/on" --mgmt-port 0 > "$tmp/on.log" 2>&1 &
pon=$!
"$b/src/warrend" -p "$off" --data-dir "$tmp/off" --mgmt-port 0 -s consumer_timeout=0 \
    > "$tmp/off.log" 2>&1 &
poff=$!
trap 'kill $pon $poff 2>/dev/null; wait $pon $poff 2>/dev/null; rm -rf "$tmp"' EXIT
for port in $on $off; do
    i=0
    until /usr/bin/python3 -c "import socket;socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null; do
        i=$((i + 1)); [ $i -lt 100 ] || { cat "$tmp"/*.log; exit 1; }; sleep 0.1
    done
done
run() { # port pid queue
    "$b/tests/bench/warren-perf" -h "amqp://guest:guest@127.0.0.1:$1/" -x 1 -y 1 -s 16 -q 100 \
        -u "$3" --broker-pid "$2" -z "$secs" -j 2>/dev/null |
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
