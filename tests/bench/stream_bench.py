#!/usr/bin/python3
"""stream_bench.py - streams, Warren beside RabbitMQ 3.10 in one run
(docs/PERFORMANCE.md, "Streams").

For each broker, BENCH_REPS (3) runs of each scenario, alternating which
broker goes first; medians and the Warren / RabbitMQ ratio. The load is
tests/bench/warren-perf (C, one connection per role):

  append16   one publisher, confirms (at most 500 outstanding), 100,000
             messages of 16 B into a new stream; confirmed msg/s
  append1k   the same with 1 KiB bodies, 50,000 messages
  replay1k   a stream prefilled with BENCH_REPLAY (200,000) messages of
             1 KiB; one consumer from "first" (prefetch 1000, multiple ack
             every 500) reads them all; MiB/s of bodies
  rss        the broker's RSS at the end of that prefill (the whole
             process, with the earlier streams of the run deleted)

Brokers: warrend from the build tree (its own temporary data directory),
and RabbitMQ 3.10 on BENCH_RMQ_PORT when set (a running node, guest/guest),
else started with ../shared/tools/rabbitmq-local.sh on a free port and
stopped at the end; Warren only when neither is available.

Run after `make`:  /usr/bin/python3 tests/bench/stream_bench.py
"""
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integ"))
import harness  # noqa: E402

REPS = int(os.environ.get("BENCH_REPS", "3"))
REPLAY = int(os.environ.get("BENCH_REPLAY", "200000"))
PERF = os.environ.get("WARREN_PERF", os.path.join(HERE, "warren-perf"))
RMQ_TOOL = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "tools",
                                         "rabbitmq-local.sh"))
STREAM = "x-queue-type=stream"


def perf(port, args, pid=None):
    argv = [PERF, "--host", harness.HOST, "--port", str(port), "-j", "--quiet"] + args
    if pid:
        argv += ["--broker-pid", str(pid)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError("warren-perf %s: %s" % (" ".join(args), r.stderr[-2000:]))
    return json.loads(r.stdout.strip().splitlines()[-1])


def append(port, name, size, count, pid=None, leave=False):
    args = ["-x", "1", "-y", "0", "-c", "500", "-s", str(size), "-C", str(count),
            "--no-settle", "--queue-durable", "--queue-args", STREAM, "-u", name]
    return perf(port, args + (["--leave"] if leave else []), pid)


def replay(port, name, count):
    return perf(port, ["-x", "0", "-y", "1", "-q", "1000", "-A", "500", "--consumer-args",
                       "x-stream-offset=first", "--cmessages", str(count), "--queue-durable",
                       "--queue-args", STREAM, "-u", name])


def low_free_port():
    """A free port below 45536: RabbitMQ's distribution listens on PORT+20000."""
    import random
    import socket
    for _ in range(200):
        p = random.randint(21000, 39000)
        with socket.socket() as s:
            try:
                s.bind((harness.HOST, p))
            except OSError:
                continue
        return p
    raise RuntimeError("no free port")


def rmq_pid(port):
    """The beam's pid from the tool's status line ("running NODE pid N ...")."""
    r = subprocess.run([RMQ_TOOL, "status", str(port)], capture_output=True, text=True)
    words = r.stdout.split()
    if "pid" in words and words.index("pid") + 1 < len(words):
        return int(words[words.index("pid") + 1])
    return None


def rabbitmq():
    """RabbitMQ to run beside Warren: (port, pid or None, the port to stop it
    on at the end or None), or None. BENCH_RMQ_PORT names a running node;
    else one is started with rabbitmq-local.sh on a free port."""
    port = os.environ.get("BENCH_RMQ_PORT")
    if port:
        return int(port), None, None
    if os.path.exists(RMQ_TOOL):
        p = low_free_port()
        r = subprocess.run([RMQ_TOOL, "start", str(p)], capture_output=True, text=True)
        if r.returncode == 0:
            return p, rmq_pid(p), p
        print("RabbitMQ not started: %s" % r.stderr.strip()[-300:], file=sys.stderr)
    return None


def main():
    brokers = {}
    started_rmq = None
    w = harness._start(["--log-level", "warning"])
    brokers["warren"] = (w.port, w.pid)
    try:
        rmq = rabbitmq()
        if rmq:
            brokers["rabbitmq"] = rmq[:2]
            started_rmq = rmq[2]
        res = {b: {"append16": [], "append1k": [], "replay1k": [], "rss": []} for b in brokers}
        order = list(brokers)
        for rep in range(REPS):
            for b in (order if rep % 2 == 0 else order[::-1]):
                bport, bpid = brokers[b]
                tag = "%s-%d-%d" % (b, os.getpid(), rep)
                r16 = append(bport, "sb16-" + tag, 16, 100000)
                r1k = append(bport, "sb1k-" + tag, 1024, 50000)
                fill = append(bport, "sbr-" + tag, 1024, REPLAY, pid=bpid, leave=True)
                rr = replay(bport, "sbr-" + tag, REPLAY)
                res[b]["append16"].append(r16["confirm_rate"])
                res[b]["append1k"].append(r1k["confirm_rate"])
                res[b]["replay1k"].append(rr["recv_bytes_per_s"] / (1 << 20))
                bs = fill.get("broker_stats")
                if bs:
                    res[b]["rss"].append(bs["rss_end_kib"] / 1024)
                print("%-8s run %d: append16 %.0f/s, append1k %.0f/s, replay1k %.1f MiB/s "
                      "(%.0f msg/s)" % (b, rep + 1, r16["confirm_rate"], r1k["confirm_rate"],
                                        rr["recv_bytes_per_s"] / (1 << 20), rr["recv_rate"]),
                      file=sys.stderr)
        print("| scenario | %s |%s" % (" | ".join(brokers),
                                       " Warren / RabbitMQ |" if len(brokers) > 1 else ""))
        print("|---|%s" % ("---|" * (len(brokers) + (1 if len(brokers) > 1 else 0))))
        for k, unit in (("append16", "msg/s"), ("append1k", "msg/s"), ("replay1k", "MiB/s"),
                        ("rss", "MiB")):
            meds = [statistics.median(res[b][k]) if res[b][k] else None for b in brokers]
            cells = ["%.2f %s" % (m, unit) if m is not None and m < 100 else
                     "%.0f %s" % (m, unit) if m is not None else "n/a" for m in meds]
            ratio = ""
            if len(meds) > 1 and meds[0] and meds[1]:
                ratio = " %.2f |" % (meds[0] / meds[1])
            print("| %s | %s |%s" % (k, " | ".join(cells), ratio))
    finally:
        harness._stop(w)
        shutil.rmtree(w.data_dir, ignore_errors=True)
        if started_rmq:
            subprocess.run([RMQ_TOOL, "stop", str(started_rmq)], capture_output=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    main()
