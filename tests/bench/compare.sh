#!/bin/bash
# compare.sh - Warren and RabbitMQ side by side, on this machine, in one run
# (issue 6; docs/PERFORMANCE.md explains the scenarios and the table).
#
# Starts warrend from the build tree and Debian's rabbitmq-server as a
# private loopback node (its own node name, data and Erlang cookie under a
# temporary directory, AMQP and distribution on free 127.0.0.1 ports; the
# package is installed with apt-get when missing), runs each scenario against
# both brokers with tests/bench/warren-perf, alternating which goes first,
# and prints the medians with the ratio Warren / RabbitMQ. Both brokers are
# stopped by PID when the script exits, whatever the reason.
#
# Environment (all optional):
#   BENCH_REPS=3            repetitions per scenario and broker
#   BENCH_SECONDS=4         length of each time-bounded scenario
#   BENCH_SCENARIOS="h g i a b c c8 d e f1 f2 f3 j"   which ones, in this order
#                           (and ta, te, hs: a and e over TLS, TLS handshakes
#                           per second; not in the default list)
#   BENCH_BROKERS="warren rabbitmq"             or just one of them
#   BENCH_PIN=auto          latency scenarios (f1, f2, f3) with the broker
#                           pinned to CPU 0 and warren-perf to CPU 1
#                           (taskset), so they measure the broker and not
#                           the scheduler; auto: when there are 2+ CPUs; no:
#                           never
#   BENCH_OUT=FILE          the table and raw results (tests/bench/bench-results.txt)
#   top_builddir, top_srcdir                    set by `make bench`
#
# Not part of `make check`: it takes minutes and measures, it does not test.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
WARREND=${WARREND:-$top_builddir/src/warrend}
PERF=${WARREN_PERF:-$top_builddir/tests/bench/warren-perf}
REPS=${BENCH_REPS:-3}
SECS=${BENCH_SECONDS:-4}
SCENARIOS=${BENCH_SCENARIOS:-"h g i a b c c8 d e f1 f2 f3 j"}
BROKERS=${BENCH_BROKERS:-"warren rabbitmq"}
OUT=${BENCH_OUT:-$top_builddir/tests/bench/bench-results.txt}
RMQ_BIN=/usr/lib/rabbitmq/bin

tmp=$(mktemp -d /tmp/warren-bench.XXXXXX)
results=$tmp/results.jsonl
: > "$results"
warren_pid=
rmq_wrapper_pid=
rmq_pid=
epmd_was_running=no

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---- ports ----

port_in_use() { [ -n "$(ss -Htan "( sport = :$1 )" 2>/dev/null)" ]; }

# A port nobody listens on or uses, away from the usual ones.
free_port() {
    local p tries=0
    while [ $tries -lt 200 ]; do
        p=$((20000 + RANDOM % 20000))
        if ! port_in_use "$p"; then
            echo "$p"
            return 0
        fi
        tries=$((tries + 1))
    done
    return 1
}

wait_port() { # PORT SECONDS
    local i=0
    while [ $i -lt $(($2 * 10)) ]; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }

# ---- TLS (scenarios ta, te, hs) ----

# Both brokers get a TLS listener with the same throw-away certificate
# (RSA 2048, signed by a throw-away CA) when a TLS scenario is asked for.
tls_wanted() { case " $SCENARIOS " in *" ta "* | *" te "* | *" hs "*) return 0 ;; esac; return 1; }

make_certs() {
    local d=$tmp/tls
    mkdir -p "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=bench CA" \
        -keyout "$d/ca.key" -out "$d/ca.pem" >/dev/null 2>&1 &&
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$d/server.key" -out "$d/server.csr" >/dev/null 2>&1 &&
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
        -days 2 -out "$d/server.pem" >/dev/null 2>&1 || die "cannot make the TLS certificates"
}

tls_conf() { # PORT: the TLS lines of a rabbitmq.conf or warren.conf
    printf '%s\n' "listeners.ssl.default = 127.0.0.1:$1" \
        "ssl_options.certfile = $tmp/tls/server.pem" "ssl_options.keyfile = $tmp/tls/server.key" \
        "ssl_options.cacertfile = $tmp/tls/ca.pem" "ssl_options.verify = verify_none" \
        "ssl_options.fail_if_no_peer_cert = false"
}

# ---- Warren ----

start_warren() {
    [ -x "$WARREND" ] || die "$WARREND is not built (run make)"
    WPORT=$(free_port) || die "no free port"
    mkdir -p "$tmp/warren"
    : > "$tmp/warren.conf"
    if tls_wanted; then
        WTPORT=$(free_port) || die "no free port"
        tls_conf "$WTPORT" > "$tmp/warren.conf"
    fi
    "$WARREND" -c "$tmp/warren.conf" --port "$WPORT" --bind 127.0.0.1 --data-dir "$tmp/warren" \
        --mgmt-port 0 --log-level warning >"$tmp/warren.log" 2>&1 &
    warren_pid=$!
    wait_port "$WPORT" 10 || { tail "$tmp/warren.log" >&2; die "warrend did not start"; }
    log "warrend pid $warren_pid on 127.0.0.1:$WPORT"
}

stop_warren() {
    [ -n "$warren_pid" ] || return 0
    kill -TERM "$warren_pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$warren_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$warren_pid" 2>/dev/null && kill -KILL "$warren_pid" 2>/dev/null
    wait "$warren_pid" 2>/dev/null
    warren_pid=
}

# ---- RabbitMQ (a private node: no systemd, nothing under /var/lib) ----

install_rabbitmq() {
    [ -x "$RMQ_BIN/rabbitmq-server" ] && return 0
    log "installing rabbitmq-server (apt-get)"
    # Keep the package's own service from starting: we run our own node.
    local policy=/usr/sbin/policy-rc.d ours=no
    if [ ! -e $policy ]; then printf '#!/bin/sh\nexit 101\n' > $policy; chmod +x $policy; ours=yes; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y rabbitmq-server >"$tmp/apt.log" 2>&1 ||
        { apt-get update >>"$tmp/apt.log" 2>&1 &&
          DEBIAN_FRONTEND=noninteractive apt-get install -y rabbitmq-server >>"$tmp/apt.log" 2>&1; }
    local rc=$?
    [ $ours = yes ] && rm -f $policy
    [ $rc = 0 ] && [ -x "$RMQ_BIN/rabbitmq-server" ] || { tail "$tmp/apt.log" >&2; die "cannot install rabbitmq-server"; }
}

rmq_env() {
    local base=$tmp/rabbitmq
    export HOME=$base                              # private ~/.erlang.cookie
    export RABBITMQ_NODENAME=$RMQ_NODE
    export RABBITMQ_USE_LONGNAME=false
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_NODE_PORT=$RPORT
    export RABBITMQ_DIST_PORT=$RDIST
    export ERL_EPMD_ADDRESS=127.0.0.1
    export RABBITMQ_CONF_ENV_FILE=$base/rabbitmq-env.conf   # empty: ignore /etc
    export RABBITMQ_CONFIG_FILE=$base/rabbitmq.conf
    export RABBITMQ_ADVANCED_CONFIG_FILE=$base/advanced.config
    export RABBITMQ_ENABLED_PLUGINS_FILE=$base/enabled_plugins
    export RABBITMQ_MNESIA_BASE=$base/mnesia
    export RABBITMQ_LOG_BASE=$base/log
    export RABBITMQ_PID_FILE=$base/rabbit.pid
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    export LC_ALL=C.UTF-8 LANG=C.UTF-8
}

# rmqctl SECONDS ARGS...: rabbitmqctl against our node, bounded in time.
rmqctl() { local t=$1; shift; ( rmq_env; timeout "$t" "$RMQ_BIN/rabbitmqctl" -q -n "$RMQ_NODE" "$@" ); }

start_rabbitmq() {
    install_rabbitmq
    RPORT=$(free_port) || die "no free port"
    RDIST=$(free_port) || die "no free port"
    RMQ_NODE=warren-bench-$$@localhost
    local base=$tmp/rabbitmq
    mkdir -p "$base/mnesia" "$base/log"
    : > "$base/rabbitmq-env.conf"
    echo '[].' > "$base/enabled_plugins"
    echo '[].' > "$base/advanced.config"
    cat > "$base/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$RPORT
loopback_users.guest = true
log.console = false
log.file.level = warning
EOF
    if tls_wanted; then
        RTPORT=$(free_port) || die "no free port"
        tls_conf "$RTPORT" >> "$base/rabbitmq.conf"
    fi
    epmd -names >/dev/null 2>&1 && epmd_was_running=yes
    ( rmq_env; exec setsid "$RMQ_BIN/rabbitmq-server" >"$base/log/startup.out" 2>&1 </dev/null ) &
    rmq_wrapper_pid=$!
    local i=0
    while [ ! -s "$base/rabbit.pid" ] && [ $i -lt 300 ]; do sleep 0.2; i=$((i + 1)); done
    if ! rmqctl 120 wait --timeout 110 "$base/rabbit.pid" >/dev/null 2>&1; then
        tail -20 "$base/log/startup.out" >&2
        die "RabbitMQ did not start (logs in $base/log)"
    fi
    rmq_pid=$(cat "$base/rabbit.pid")
    wait_port "$RPORT" 20 || die "RabbitMQ is not listening on $RPORT"
    RMQ_VERSION=$(rmqctl 30 version 2>/dev/null | head -1)
    log "RabbitMQ ${RMQ_VERSION:-?} node $RMQ_NODE beam.smp pid $rmq_pid on 127.0.0.1:$RPORT"
}

stop_rabbitmq() {
    [ -n "$rmq_wrapper_pid$rmq_pid" ] || return 0
    if [ -n "$rmq_pid" ] && kill -0 "$rmq_pid" 2>/dev/null; then
        rmqctl 60 stop "$tmp/rabbitmq/rabbit.pid" >/dev/null 2>&1
    fi
    for p in $rmq_pid $rmq_wrapper_pid; do
        kill -0 "$p" 2>/dev/null || continue
        kill -TERM "$p" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
    done
    wait "$rmq_wrapper_pid" 2>/dev/null
    # epmd was started by our node only if none ran before; ask it to go
    # when no Erlang node is registered any more.
    if [ "$epmd_was_running" = no ] && command -v epmd >/dev/null &&
        [ "$(epmd -names 2>/dev/null | grep -c '^name ')" = 0 ]; then
        epmd -kill >/dev/null 2>&1
    fi
    rmq_wrapper_pid= rmq_pid=
}

cleanup() {
    stop_warren
    stop_rabbitmq
    if [ -n "${BENCH_KEEP_TMP:-}" ]; then log "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- scenarios ----

# Scenarios whose setup dominates (10,000 queues, 100,000 bindings: tens of
# seconds on RabbitMQ) build their topology in the first repetition, keep
# it (emptied) for the next ones and delete it in the last.
# reuse REP EXTRA_BINDINGS
reuse() {
    local flags=
    [ "$1" = 1 ] && [ "$2" != 0 ] && flags="--bindings $2"
    [ "$1" != "$REPS" ] && flags="$flags --keep"
    echo "$flags"
}

# warren-perf arguments for a scenario and repetition (without host, port,
# pid).
scenario_args() {
    local q="-u bench-$1"
    case $1 in
    a) echo "$q -x 1 -y 1 -s 16 -a -z $SECS" ;;
    b) echo "$q -x 1 -y 1 -s 16 -q 100 -z $SECS" ;;
    c) echo "$q -x 1 -y 1 -s 1024 -c 100 -f persistent --queue-durable -a -z $SECS" ;;
    c8) echo "$q -x 8 -y 1 -s 1024 -c 100 -f persistent --queue-durable -a -z $SECS" ;;
    d) echo "$q --fanout-queues 4 -e bench-fanout -x 1 -y 4 -s 16 -a -z $SECS" ;;
    e) echo "$q -x 1 -y 1 -s 4096 -a -z $SECS" ;;
    f1) echo "$q -x 1 -y 1 -s 16 -a -r 1000 -z $SECS" ;;
    f2) echo "$q -x 1 -y 1 -s 16 -a -r 10000 -z $SECS" ;;
    f3) echo "$q -x 1 -y 1 -s 16 -a -r 100000 -z $SECS" ;;
    g) echo "$q -x 1 -y 0 -s 16 -C 1000000 -z 180" ;;
    h) echo "--idle-connections 1000 -z 2" ;;
    i) echo "$q --queues 10000 -y 10 -x 1 -r 10000 -s 16 -a -z $SECS $(reuse "$2" 0)" ;;
    j) echo "$q -e bench-topic -t topic -k perf.key -x 1 -y 1 -s 16 -a -z $SECS $(reuse "$2" 100000)" ;;
    ta) echo "$q -x 1 -y 1 -s 16 -a -z $SECS --tls" ;;
    te) echo "$q -x 1 -y 1 -s 4096 -a -z $SECS --tls" ;;
    hs) echo "openssl s_time -new -time $SECS" ;;
    *) return 1 ;;
    esac
}

# hs: full TLS handshakes per second against the broker's TLS port
# (openssl s_time -new: connect, handshake, close, one after another).
# s_time rounds its own wall time to whole seconds: timed here instead.
run_handshakes() { # PORT
    local out n t0 t1
    t0=$(date +%s.%N)
    out=$(timeout $((SECS + 30)) openssl s_time -connect "127.0.0.1:$1" -new -time "$SECS" 2>&1)
    t1=$(date +%s.%N)
    n=$(printf '%s\n' "$out" | sed -n 's/^\([0-9]*\) connections in [0-9.]* real seconds.*/\1/p' | head -1)
    if [ -z "$n" ]; then
        echo '{"error":"openssl s_time printed no result"}'
        return
    fi
    awk -v n="$n" -v t0="$t0" -v t1="$t1" \
        'BEGIN { printf "{\"handshakes\":%d,\"real_s\":%.3f,\"handshakes_per_s\":%.1f}\n", n, t1 - t0, n / (t1 - t0) }'
}

run_one() { # SCENARIO BROKER REP
    local s=$1 b=$2 r=$3 port pid args line
    if [ "$b" = warren ]; then port=$WPORT pid=$warren_pid; else port=$RPORT pid=$rmq_pid; fi
    args=$(scenario_args "$s" "$r") || die "unknown scenario $s"
    case "$s" in ta | te | hs) if [ "$b" = warren ]; then port=$WTPORT; else port=$RTPORT; fi ;; esac
    if [ "$s" = hs ]; then
        log "$s rep $r $b: $args -connect 127.0.0.1:$port"
        line=$(run_handshakes "$port")
        printf '%s\n' "$line" | sed "s/^{/{\"scenario\":\"$s\",\"broker\":\"$b\",\"rep\":$r,/" >>"$results"
        sleep 1
        return
    fi
    local pin=
    case "$s" in f1 | f2 | f3) pin=$PIN ;; esac
    log "$s rep $r $b: ${pin:+taskset -c 1 }warren-perf $args${pin:+ (broker on CPU 0)}"
    [ -n "$pin" ] && taskset -a -p -c 0 "$pid" >/dev/null
    # shellcheck disable=SC2086
    line=$(timeout 300 ${pin:+taskset -c 1} "$PERF" --host 127.0.0.1 --port "$port" --broker-pid "$pid" -j --quiet $args \
        2>>"$tmp/perf-$s-$b.log" | tail -1)
    [ -n "$pin" ] && taskset -a -p -c "0-$(($(nproc) - 1))" "$pid" >/dev/null
    [ -n "$line" ] || line='{"error":"warren-perf printed no result"}'
    printf '%s\n' "$line" | sed "s/^{/{\"scenario\":\"$s\",\"broker\":\"$b\",\"rep\":$r,/" >>"$results"
    printf '%s\n' "$line" | grep -q '"error"' && log "  $(printf '%s' "$line" | sed 's/.*"error":/error: /')"
    sleep 1
}

# ---- main ----

[ -x "$PERF" ] || die "$PERF is not built (run make)"
PIN=
case ${BENCH_PIN:-auto} in
auto) [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null && PIN=yes ;;
no) ;;
*) PIN=yes ;;
esac
command -v python3 >/dev/null || die "python3 is needed for the table"
start_time=$(date +%s)
if tls_wanted; then make_certs; fi
for b in $BROKERS; do
    case $b in
    warren) start_warren ;;
    rabbitmq) start_rabbitmq ;;
    *) die "unknown broker $b" ;;
    esac
done
# Idle RSS of each broker, before any load.
sleep 2
for b in $BROKERS; do
    if [ "$b" = warren ]; then pid=$warren_pid; else pid=$rmq_pid; fi
    echo "{\"scenario\":\"idle\",\"broker\":\"$b\",\"rep\":1,\"rss_kib\":$(rss_kib "$pid")}" >>"$results"
done

for s in $SCENARIOS; do
    scenario_args "$s" 1 >/dev/null || die "unknown scenario $s"
    for r in $(seq "$REPS"); do
        # Alternate which broker goes first, so neither always gets the
        # cooler (or warmer) machine.
        order=$BROKERS
        [ $((r % 2)) = 0 ] && order=$(echo "$BROKERS" | awk '{for (i = NF; i > 0; i--) printf "%s ", $i}')
        for b in $order; do run_one "$s" "$b" "$r"; done
    done
done
elapsed=$(( $(date +%s) - start_time ))
# Did Warren journal anything (scenario c's persistent messages)? Its store
# arrived with issue 5; older builds confirm without writing.
journaled=no
[ -d "$tmp/warren/journal" ] && [ -n "$(find "$tmp/warren/journal" -type f -size +0 2>/dev/null | head -1)" ] && journaled=yes

command="BENCH_REPS=$REPS BENCH_SECONDS=$SECS BENCH_SCENARIOS=\"$SCENARIOS\" BENCH_BROKERS=\"$BROKERS\" BENCH_PIN=${BENCH_PIN:-auto} tests/bench/compare.sh"
python3 - "$results" "$OUT" "$REPS" "$SECS" "$elapsed" "${RMQ_VERSION:-}" "$command" "$journaled" <<'PY'
import json, statistics, sys, platform, os
path, out, reps, secs, elapsed, rmqv, command, journaled = sys.argv[1:9]
rows = [json.loads(l) for l in open(path) if l.strip()]
def runs(s, b):
    return [r for r in rows if r.get("scenario") == s and r.get("broker") == b and "error" not in r]
def med(s, b, f):
    vals = [f(r) for r in runs(s, b)]
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None
def g(*keys):
    def f(r):
        for k in keys:
            r = r.get(k) if isinstance(r, dict) else None
        return r
    return f
def errors(s, b):
    return [r["error"] for r in rows if r.get("scenario") == s and r.get("broker") == b and "error" in r]

lines = []
def fmt(v, unit):
    if v is None: return "-"
    if unit == "msg/s": return f"{v:,.0f}"
    if unit == "us": return f"{v:,.0f}"
    if unit == "MiB": return f"{v/1024:,.1f}"
    if unit == "KiB": return f"{v:,.1f}"
    if unit == "B": return f"{v:,.0f}"
    if unit == "%": return f"{v:.1f}"
    if unit == "GiB/s": return f"{v/2**30:.2f}"
    if unit == "ns": return f"{v:,.0f}"
    return f"{v:.3g}"

# RSS deltas count from the broker's idle RSS at start, not from the RSS a
# repetition started with: the heap a first repetition grew is reused by
# the next ones, so their own deltas would read near zero.
idle = {r["broker"]: r["rss_kib"] for r in rows if r.get("scenario") == "idle"}
def per_conn(r):
    bs, n = r.get("broker_stats"), r.get("connections")
    if not bs or not n or r["broker"] not in idle: return None
    return (bs["rss_end_kib"] - idle[r["broker"]]) / n
def per_msg(r):
    bs, n = r.get("broker_stats"), r.get("sent")
    if not bs or not n or r["broker"] not in idle: return None
    return (bs["rss_end_kib"] - idle[r["broker"]]) * 1024 / n

# scenario, label, metric name, unit, extractor, higher-is-better, target text, target check(w, r, ratio)
# (targets: issue 18's raised ones)
A = med("a", "warren", g("recv_rate"))
def tgt_ratio(k, higher=True):
    return lambda w, r, q: None if q is None else (q >= k if higher else q <= k)
table = [
 ("idle", "idle broker", "RSS MiB", "MiB", g("rss_kib"), False, "<= 10 MiB", lambda w, r, q: None if w is None else w <= 10*1024),
 ("h", "1000 idle connections", "RSS/conn KiB", "KiB", per_conn, False, "<= 20 KiB", lambda w, r, q: None if w is None else w <= 20),
 ("g", "1M queued 16 B msgs", "RSS MiB", "MiB", g("broker_stats", "rss_end_kib"), False, "<= 1/20, < 90 MB", lambda w, r, q: None if q is None else (q <= 0.05 and w*1024 < 90e6)),
 ("g", "", "bytes/msg", "B", per_msg, False, "", None),
 ("i", "10k queues, 10k msg/s", "broker CPU %", "%", g("broker_stats", "cpu_pct"), False, "<= 1/5", tgt_ratio(0.2, False)),
 ("i", "", "RSS MiB", "MiB", g("broker_stats", "rss_end_kib"), False, "<= 1/5", tgt_ratio(0.2, False)),
 ("a", "1p 1c 16 B autoack", "deliveries/s", "msg/s", g("recv_rate"), True, ">= 2.5M/s, >= 15x", lambda w, r, q: None if q is None else (w >= 2.5e6 and q >= 15)),
 ("b", "manual ack, prefetch 100", "deliveries/s", "msg/s", g("recv_rate"), True, ">= 12x", tgt_ratio(12)),
 ("c", "confirms 100, persistent 1 KiB*", "confirms/s", "msg/s", g("confirm_rate"), True, ">= 4x", tgt_ratio(4)),
 ("c8", "as c, 8 publishers", "confirms/s", "msg/s", g("confirm_rate"), True, "(issue 5)", None),
 ("d", "fanout to 4 queues", "deliveries/s", "msg/s", g("recv_rate"), True, ">= 30x", tgt_ratio(30)),
 ("e", "4 KiB autoack", "deliveries/s", "msg/s", g("recv_rate"), True, ">= 6x", tgt_ratio(6)),
 ("e", "", "GiB/s", "GiB/s", g("recv_bytes_per_s"), True, ">= 1.5 GiB/s", lambda w, r, q: None if w is None else w >= 1.5 * 2**30),
 ("f1", "1,000 msg/s latency", "p99 us", "us", g("latency_us", "p99"), False, "<= 1/3", tgt_ratio(1/3, False)),
 ("f1", "", "p50 us", "us", g("latency_us", "p50"), False, "", None),
 ("f1", "", "p99.9 us", "us", g("latency_us", "p999"), False, "", None),
 ("f2", "10,000 msg/s latency", "p99 us", "us", g("latency_us", "p99"), False, "<= 1/3", tgt_ratio(1/3, False)),
 ("f2", "", "p50 us", "us", g("latency_us", "p50"), False, "", None),
 ("f2", "", "p99.9 us", "us", g("latency_us", "p999"), False, "", None),
 ("f3", "100,000 msg/s latency", "p99 us", "us", g("latency_us", "p99"), False, "", None),
 ("f3", "", "p50 us", "us", g("latency_us", "p50"), False, "", None),
 ("f3", "", "p99.9 us", "us", g("latency_us", "p999"), False, "", None),
 ("j", "topic, 100k bindings", "deliveries/s", "msg/s", g("recv_rate"), True, "W: >= 1/2 of a", lambda w, r, q: None if (w is None or A is None) else w >= A / 2),
 ("ta", "a over TLS (16 B)", "deliveries/s", "msg/s", g("recv_rate"), True, "", None),
 ("te", "e over TLS (4 KiB)", "deliveries/s", "msg/s", g("recv_rate"), True, "", None),
 ("te", "", "GiB/s", "GiB/s", g("recv_bytes_per_s"), True, "", None),
 ("hs", "TLS handshakes (s_time -new)", "conn/s", "msg/s", g("handshakes_per_s"), True, "", None),
]
present = {r.get("scenario") for r in rows}
hdr = f"{'':3} {'scenario':33} {'metric':14} {'Warren':>12} {'RabbitMQ':>12} {'W/R':>8}  {'target':18} {'met':4}"
lines.append(hdr)
lines.append("-" * len(hdr))
for s, label, metric, unit, f, higher, ttext, check in table:
    if s not in present: continue
    w, r = med(s, "warren", f), med(s, "rabbitmq", f)
    q = (w / r) if (w is not None and r not in (None, 0)) else None
    ok = check(w, r, q) if check else None
    met = "" if check is None else ("?" if ok is None else ("yes" if ok else "NO"))
    name = "" if not label else ("h*" if s == "idle" else s)
    lines.append(f"{name:3} {label:33} {metric:14} {fmt(w, unit):>12} {fmt(r, unit):>12} {('-' if q is None else f'{q:.2f}'):>8}  {ttext:18} {met:4}")
lines.append("")
lines.append("every repetition (Warren | RabbitMQ), to judge the noise:")
for s, label, metric, unit, f, higher, ttext, check in table:
    if s not in present or s == "idle": continue
    vals = {b: [f(r) for r in runs(s, b)] for b in ("warren", "rabbitmq")}
    fmtl = lambda b: " ".join(fmt(v, unit) for v in vals[b] if v is not None) or "-"
    lines.append(f"  {s:3} {metric:14} {fmtl('warren')} | {fmtl('rabbitmq')}")
lines.append("")
lines.append("warren-perf's own CPU per message handled (sent + received), median ns:")
tl = []
for s in ["a", "b", "c", "c8", "d", "e", "f1", "f2", "f3", "g", "i", "j", "ta", "te"]:
    if s in present:
        tl.append(f"{s} {fmt(med(s, 'warren', g('tool_cpu_ns_per_msg')), 'ns')}/{fmt(med(s, 'rabbitmq', g('tool_cpu_ns_per_msg')), 'ns')}")
lines.append("  (Warren/RabbitMQ) " + ", ".join(tl))
lines.append("")
if "c" in present:
    if journaled == "yes":
        lines.append("* c: both brokers confirm persistent messages on the durable queue only once")
        lines.append("  they are on disk: Warren after its journal's group fdatasync, RabbitMQ after")
        lines.append("  its own batched fsync. Data directories are on the same file system.")
    else:
        lines.append("* c: this warrend wrote no journal (no durability in this build), so its")
        lines.append("  persistent publishes were confirmed without fsync; RabbitMQ's after fsync.")
        lines.append("  The target assumes Warren's fsync-before-confirm.")
lines.append("h*: idle RSS sampled 2 s after each broker started, before any load.")
if present & {"f1", "f2", "f3"} and "BENCH_PIN=no" not in command:
    lines.append("f1-f3: the broker pinned to CPU 0 and warren-perf to CPU 1 (taskset) while")
    lines.append("  they run, on a machine of 2 or more CPUs (BENCH_PIN=no: not pinned).")
lines.append("Throughput scenarios publish as fast as the broker takes it (no -r), like")
lines.append("PerfTest, so their end-to-end latency is queueing time and is not tabled.")
lines.append("RSS figures come from one broker process per run: earlier scenarios leave")
lines.append("their heap behind, which is why h and g run first; per-connection and")
lines.append("per-message bytes count from the idle RSS.")
for s in sorted(present):
    for b in ("warren", "rabbitmq"):
        for e in errors(s, b):
            lines.append(f"error: {s} {b}: {e}")
head = [f"Warren vs RabbitMQ {rmqv or ''}: medians of {reps} run(s) per broker, {secs} s per timed scenario",
        f"command: {command}",
        f"machine: {os.cpu_count()} cores, {platform.machine()}, load average at the end {os.getloadavg()[0]:.2f}; whole run {elapsed} s",
        ""]
text = "\n".join(head + lines) + "\n"
sys.stdout.write(text)
with open(out, "w") as fh:
    fh.write(text)
    fh.write("\nraw results (JSON lines):\n")
    for r in rows:
        fh.write(json.dumps(r) + "\n")
PY
log "table and raw results written to $OUT"
