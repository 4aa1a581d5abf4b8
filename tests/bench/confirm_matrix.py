#!/usr/bin/python3
"""confirm_matrix.py - scenario c (one publisher, persistent messages with
confirms, one autoack consumer, a durable queue) over confirm windows and
body sizes, Warren beside RabbitMQ 3.10 in one run (issue 18; results in
docs/PERFORMANCE.md, "Confirms: windows and sizes").

For each window in BENCH_WINDOWS (100 1000 10000) and size in BENCH_SIZES
(16 1024 65536): BENCH_REPS (3) runs of BENCH_SECONDS (6) per broker,
alternating which goes first; the median confirmed msg/s of each and the
ratio. Brokers: warrend from the build tree (its own temporary data
directory) and RabbitMQ 3.10 started with ../shared/tools/rabbitmq-local.sh
on a free port (BENCH_RMQ_PORT: one already running); Warren alone when
neither is there.

Run after `make`:  /usr/bin/python3 tests/bench/confirm_matrix.py
"""
import os
import shutil
import signal
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integ"))
sys.path.insert(0, HERE)
import harness  # noqa: E402
from stream_bench import RMQ_TOOL, perf, rabbitmq  # noqa: E402

REPS = int(os.environ.get("BENCH_REPS", "3"))
SECS = int(os.environ.get("BENCH_SECONDS", "6"))
WINDOWS = [int(x) for x in os.environ.get("BENCH_WINDOWS", "100 1000 10000").split()]
SIZES = [int(x) for x in os.environ.get("BENCH_SIZES", "16 1024 65536").split()]


def run_c(port, window, size, tag):
    return perf(port, ["-x", "1", "-y", "1", "-s", str(size), "-c", str(window), "-f",
                       "persistent", "--queue-durable", "-a", "-z", str(SECS), "-u",
                       "cm-" + tag])["confirm_rate"]


def main():
    brokers = {}
    started_rmq = None
    w = harness._start(["--log-level", "warning"])
    brokers["warren"] = w.port
    try:
        rmq = rabbitmq()
        if rmq:
            brokers["rabbitmq"] = rmq[0]
            started_rmq = rmq[2]
        print("| window | size | %s |%s" % (" | ".join(brokers),
                                            " Warren / RabbitMQ |" if len(brokers) > 1 else ""))
        print("|---|---|%s" % ("---|" * (len(brokers) + (1 if len(brokers) > 1 else 0))))
        order = list(brokers)
        for window in WINDOWS:
            for size in SIZES:
                res = {b: [] for b in brokers}
                for rep in range(REPS):
                    for b in (order if rep % 2 == 0 else order[::-1]):
                        tag = "%s-%d-%d-%d-%d" % (b, window, size, rep, os.getpid())
                        res[b].append(run_c(brokers[b], window, size, tag))
                print("  %d/%d runs: %s" % (window, size, res), file=sys.stderr)
                meds = [statistics.median(res[b]) for b in brokers]
                ratio = " %.2f |" % (meds[0] / meds[1]) if len(meds) > 1 and meds[1] else ""
                print("| %d | %d | %s |%s" % (window, size,
                                              " | ".join("%.0f" % m for m in meds), ratio))
                sys.stdout.flush()
    finally:
        harness._stop(w)
        shutil.rmtree(w.data_dir, ignore_errors=True)
        if started_rmq:
            subprocess.run([RMQ_TOOL, "stop", str(started_rmq)], capture_output=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    main()
