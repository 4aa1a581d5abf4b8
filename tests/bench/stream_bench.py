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
  beside     a stream prefilled with BENCH_BESIDE_MSGS (3,000,000)
             messages of 1 KiB; a publisher (1 KiB, confirms, 500
             outstanding) into a new stream for BENCH_BESIDE_S (6) s
             alone, then again while BENCH_REPLAYERS (10) consumers replay
             the prefilled stream from "first": the median rate beside
             them over the median rate alone (issue 16's target: at least
             0.9; a ratio of medians, as the rate alone varies from run to
             run on a VM), the replayers' MiB/s in all over their 9 s
             (1.5 s of it before the publisher starts), and how evenly
             they were served (the fewest messages a replayer got over the
             most; marked "reached the end" if a replayer read the whole
             stream: make the stream longer). BENCH_BESIDE=0 leaves it
             out.

Brokers: warrend from the build tree (its own temporary data directory),
and RabbitMQ 3.10 on BENCH_RMQ_PORT when set (a running node, guest/guest),
else started with ../shared/tools/rabbitmq-local.sh on a free port and
stopped at the end; Warren only when neither is available, or with
BENCH_RMQ=0. WARREN_TEST_IO_THREADS=N runs warrend with io_threads = N.

Run after `make`:  /usr/bin/python3 tests/bench/stream_bench.py
"""
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

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


BESIDE = os.environ.get("BENCH_BESIDE", "1") != "0"
BESIDE_MSGS = int(os.environ.get("BENCH_BESIDE_MSGS", "3000000"))
BESIDE_S = int(os.environ.get("BENCH_BESIDE_S", "6"))
REPLAYERS = int(os.environ.get("BENCH_REPLAYERS", "10"))


def beside(port, name, filled):
    """(the publisher's rate alone, its rate beside the replays, the
    replayers' MiB/s in all, the slowest replayer's messages over the
    fastest's, whether a replayer reached the stream's end)."""
    pub = ["-x", "1", "-y", "0", "-c", "500", "-s", "1024", "-z", str(BESIDE_S),
           "--no-settle", "--queue-durable", "--queue-args", STREAM]
    alone = perf(port, pub + ["-u", name + "-a"])["confirm_rate"]
    rargs = ["-x", "0", "-y", "1", "-q", "1000", "-A", "500", "--consumer-args",
             "x-stream-offset=first", "--queue-durable", "--queue-args", STREAM, "-u", filled,
             "--leave", "-z", str(BESIDE_S + 3)]
    argv = [PERF, "--host", harness.HOST, "--port", str(port), "-j", "--quiet"] + rargs
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(REPLAYERS)]
    got, ended, counts = 0.0, False, []
    try:
        time.sleep(1.5)  # the replayers are reading
        with_r = perf(port, pub + ["-u", name + "-b"])["confirm_rate"]
    finally:
        for p in procs:
            out, _ = p.communicate(timeout=120)
            try:
                r = json.loads(out.strip().splitlines()[-1])
                got += r["recv_bytes_per_s"]
                counts.append(r["received"])
                ended = ended or r["received"] >= BESIDE_MSGS
            except (ValueError, IndexError, KeyError):
                pass
    fair = min(counts) / max(counts) if counts and max(counts) else 0.0
    return alone, with_r, got / (1 << 20), fair, ended


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
    if os.environ.get("BENCH_RMQ") == "0":
        return None
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
        res = {b: {"append16": [], "append1k": [], "replay1k": [], "rss": [], "beside_alone": [],
                   "beside_with": [], "beside_replay": [], "beside_fair": []} for b in brokers}
        if BESIDE:
            for b, (bport, _) in brokers.items():
                append(bport, "sbb-%s-%d" % (b, os.getpid()), 1024, BESIDE_MSGS, leave=True)
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
                if BESIDE:
                    alone, with_r, mib, fair, ended = beside(bport, "sbp-" + tag,
                                                             "sbb-%s-%d" % (b, os.getpid()))
                    res[b]["beside_alone"].append(alone)
                    res[b]["beside_with"].append(with_r)
                    res[b]["beside_replay"].append(mib)
                    res[b]["beside_fair"].append(fair)
                    print("%-8s run %d: a publisher alone %.0f/s, beside %d replays %.0f/s "
                          "(%.2f); they read %.0f MiB/s, the slowest %.2f of the fastest%s"
                          % (b, rep + 1, alone, REPLAYERS, with_r,
                             with_r / alone if alone else 0.0, mib, fair,
                             " (reached the end)" if ended else ""), file=sys.stderr)
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
        for b in brokers:  # the ratio of the medians (the rate alone varies on a VM)
            alone, beside_r = res[b]["beside_alone"], res[b]["beside_with"]
            res[b]["beside"] = ([statistics.median(beside_r) / statistics.median(alone)]
                                if alone and beside_r else [])
        for k, unit in (("append16", "msg/s"), ("append1k", "msg/s"), ("replay1k", "MiB/s"),
                        ("rss", "MiB"), ("beside", "of alone"), ("beside_replay", "MiB/s"),
                        ("beside_fair", "slowest/fastest")):
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
