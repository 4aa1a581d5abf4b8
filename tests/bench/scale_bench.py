#!/usr/bin/python3
"""scale_bench.py - deliveries/s as independent pairs are added (issue 17's
figures for a machine of 8 or more cores; docs/PERFORMANCE.md, "Threads").

For each N in BENCH_PAIRS ("1 4 8 12"): N warren-perf processes at once,
each a publisher, a queue and an autoack consumer of its own (16 B bodies,
BENCH_SECONDS (5) s), as threads_bench.py's pairs8. BENCH_REPS (3) reps;
within a rep the Ns run in turn. warrend runs with io_threads =
BENCH_IO_THREADS (auto: the cores less one, at most 16). For each N: the
median deliveries/s in all, its ratio to the first N's (issue 17: 12 pairs
at least 6x one pair, and at least 4M/s on 16 cores), and the broker's
CPU per delivered message on each kind of thread (from /proc).

The load generator shares the machine with the broker, so on a machine of
few cores the pairs take the cores the I/O threads would use: the figure
is meant for 8 or more (`nproc` is printed). WARREND and WARREN_PERF name
the binaries when the tree was carried to another machine (their shared
libraries on LD_LIBRARY_PATH).

Run after `make`:  /usr/bin/python3 tests/bench/scale_bench.py
"""
import json
import os
import shutil
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integ"))
os.environ.setdefault("BENCH_SECONDS", "5")
import harness  # noqa: E402
import threads_bench as tb  # noqa: E402

PAIRS = [int(n) for n in os.environ.get("BENCH_PAIRS", "1 4 8 12").split()]
REPS = int(os.environ.get("BENCH_REPS", "3"))
IO_THREADS = os.environ.get("BENCH_IO_THREADS", "auto")


def main():
    data = "/tmp/warren-scale-bench-%d" % os.getpid()
    shutil.rmtree(data, ignore_errors=True)
    os.makedirs(data)
    b = harness._start(["--log-level", "warning", "-s", "io_threads=%s" % IO_THREADS],
                       data_dir=data)
    rows = {}
    try:
        nio = sum(1 for t in os.listdir("/proc/%d/task" % b.proc.pid)
                  if open("/proc/%d/task/%s/comm" % (b.proc.pid, t)).read().startswith(
                      "warren-io"))
        print("nproc %d, io_threads=%s (%d I/O threads), %s s per run" % (
            os.cpu_count(), IO_THREADS, nio, tb.SECS), file=sys.stderr)
        for rep in range(REPS):
            for n in PAIRS:
                r = tb.scenario_cpu(b, n)
                rows.setdefault(n, []).append(r)
                print("pairs=%d rep %d: %s" % (n, rep + 1, json.dumps(r)), file=sys.stderr)
    finally:
        harness._stop(b)
        shutil.rmtree(data, ignore_errors=True)

    def med(n, key):
        return statistics.median(r[key] for r in rows[n])

    print("\npairs  deliveries/s  of %d pair(s)  CPU ns/msg: total  core  io  journal" % PAIRS[0])
    for n in PAIRS:
        print("%5d  %12.0f  %13.2f  %17.0f  %4.0f  %3.0f  %7.0f" % (
            n, med(n, "rate"), med(n, "rate") / med(PAIRS[0], "rate"), med(n, "ns_total"),
            med(n, "ns_core"), med(n, "ns_io"), med(n, "ns_journal")))


if __name__ == "__main__":
    main()
