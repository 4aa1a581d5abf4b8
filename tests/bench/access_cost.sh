#!/bin/sh
# access_cost.sh - what the access checks cost a publisher (issue 10).
#
# One warrend loaded with tests/bench/access-defs.json (load_definitions):
# guest has ".*" everywhere; bench has narrow patterns and a topic
# permission on amq.topic. Each rep runs warren-perf for BENCH_SECONDS as
# guest, then as bench: 1 producer, 1 autoack consumer, 16-byte messages
# through amq.topic with routing key bench.x (so bench's publish passes the
# write pattern, the topic pattern and its bind the topic read pattern).
# Prints the median rate of each and bench/guest. The target: the check
# costs under 5% (ratio >= 0.95).
#
#   tests/bench/access_cost.sh            (after make)
#   BENCH_REPS=5 BENCH_SECONDS=5 tests/bench/access_cost.sh
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
b=${top_builddir:-$top}
reps=${BENCH_REPS:-3}
secs=${BENCH_SECONDS:-4}
tmp=$(mktemp -d)
port=$(/usr/bin/python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
printf 'load_definitions = %s\n' "$top/tests/bench/access-defs.json" > "$tmp/warren.conf"
"$b/src/warrend" -c "$tmp/warren.conf" -p "$port" --data-dir "$tmp/data" --mgmt-port 0 \
    > "$tmp/warrend.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
i=0
until /usr/bin/python3 -c "import socket;socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 100 ] || { cat "$tmp/warrend.log"; exit 1; }; sleep 0.1
done
run() { # user password queue
    "$b/tests/bench/warren-perf" -h "amqp://$1:$2@127.0.0.1:$port/" -x 1 -y 1 -a -s 16 \
        -e amq.topic -t topic -k bench.x -u "$3" -z "$secs" -j 2>/dev/null |
        /usr/bin/python3 -c 'import json,sys; print(int(json.loads(sys.stdin.readline())["recv_rate"]))'
}
g=""; n=""
for r in $(seq "$reps"); do
    g="$g $(run guest guest bench.g$r)"
    n="$n $(run bench benchpw bench.n$r)"
done
/usr/bin/python3 - "$g" "$n" <<'PY'
import statistics, sys
g = [int(x) for x in sys.argv[1].split()]
n = [int(x) for x in sys.argv[2].split()]
mg, mn = statistics.median(g), statistics.median(n)
print("guest (.*):            %s msg/s, median %d" % (g, mg))
print("bench (narrow, topic): %s msg/s, median %d" % (n, mn))
print("bench/guest: %.3f (target >= 0.95)" % (mn / mg))
PY
