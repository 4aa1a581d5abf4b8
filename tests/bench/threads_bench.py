#!/usr/bin/python3
"""threads_bench.py - what the I/O threads change (issue 17;
docs/PERFORMANCE.md, "Threads").

Runs warrend from the build tree with io_threads = 0 (the single-threaded
mode) and with each count in BENCH_IO_THREADS ("1 2"), each in its own
temporary data directory, and for each runs BENCH_REPS (3) times, in turn
(a count N runs with io_threads.placement at its default, adaptive; "Nt"
with io_threads.placement = threads, the sockets always on the threads):

  a        one publisher, one consumer, one queue, 16 B bodies, autoack,
           BENCH_SECONDS (4) s: scenario a of `make bench`
  pairs8   8 independent pairs (8 warren-perf processes, each a publisher,
           a queue and an autoack consumer of its own), 16 B, the same time
  lat1k, lat10k   one pair at 1,000 and 10,000 msg/s: end-to-end p50/p99

BENCH_SCENARIOS ("a pairs8 lat1k lat10k") picks which run.

With BENCH_BEFORE=PATH, the warrend at PATH (a build from before the I/O
threads, which has no io_threads setting) runs the same scenarios too, as
"before". With BENCH_OTHER=PATH, the warrend at PATH (another build with
I/O threads, to compare two builds) runs each threaded mode too, as
"other:N". Every broker is started first and the reps go round all of
them in turn, so that the machine's drift over the run falls on each
alike.

For a and pairs8 it reports deliveries/s and the broker's CPU per delivered
message, in total and on each kind of thread (from /proc/PID/task/*/stat,
sampled by this script around the load): `warrend` is the main thread,
the core; `warren-io-N` the I/O threads; `warren-journal`,
`warren-prepare` the journal's. Medians of the reps. The load generator
shares the machine's cores with the broker.

Run after `make`:  /usr/bin/python3 tests/bench/threads_bench.py
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integ"))
import harness  # noqa: E402

REPS = int(os.environ.get("BENCH_REPS", "3"))
SECS = os.environ.get("BENCH_SECONDS", "4")
THREADS = [n if n.endswith("t") else int(n)
           for n in os.environ.get("BENCH_IO_THREADS", "1 2").split()]
MODES = [0] + THREADS
BEFORE = os.environ.get("BENCH_BEFORE")
OTHER = os.environ.get("BENCH_OTHER")
if BEFORE:
    MODES = ["before"] + MODES
if OTHER:
    MODES += ["other:%s" % n for n in THREADS if not str(n).endswith("t")]
PERF = os.environ.get("WARREN_PERF", os.path.join(HERE, "warren-perf"))
SCENARIOS = os.environ.get("BENCH_SCENARIOS", "a pairs8 lat1k lat10k").split()
TICK = os.sysconf("SC_CLK_TCK")


def thread_cpu(pid):
    """CPU seconds per kind of thread: {'core': s, 'io': s, 'journal': s}."""
    out = {"core": 0.0, "io": 0.0, "journal": 0.0}
    base = "/proc/%d/task" % pid
    for tid in os.listdir(base):
        try:
            with open(os.path.join(base, tid, "stat")) as f:
                text = f.read()
        except OSError:
            continue  # a thread that ended
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        cpu = (int(fields[11]) + int(fields[12])) / TICK
        kind = ("core" if int(tid) == pid else "io" if name.startswith("warren-io")
                else "journal")
        out[kind] += cpu
    return out


def perf_args(port, args):
    return [PERF, "--host", harness.HOST, "--port", str(port), "-j", "--quiet"] + args


def run_pairs(b, n, extra):
    """n warren-perf processes at once; returns (deliveries, seconds, cpu by kind, results)."""
    before = thread_cpu(b.proc.pid)
    t0 = time.monotonic()
    procs = [subprocess.Popen(perf_args(b.port, ["-x", "1", "-y", "1", "-s", "16", "-a",
                                                  "-z", SECS, "-u", "tb-%d-%d" % (os.getpid(), i)]
                                         + extra),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(n)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        if p.returncode != 0:
            raise RuntimeError("warren-perf: %s" % err[-2000:])
        results.append(json.loads(out.strip().splitlines()[-1]))
    secs = time.monotonic() - t0
    after = thread_cpu(b.proc.pid)
    got = sum(r["received"] for r in results)
    return got, secs, {k: after[k] - before[k] for k in after}, results


def scenario_cpu(b, n):
    got, secs, cpu, results = run_pairs(b, n, [])
    dur = statistics.median(r["duration_s"] for r in results)
    row = {"rate": got / dur if dur else 0}
    total = sum(cpu.values())
    row["ns_total"] = total * 1e9 / got if got else 0
    for k, v in cpu.items():
        row["ns_" + k] = v * 1e9 / got if got else 0
    return row


def scenario_lat(b, rate):
    _, _, _, results = run_pairs(b, 1, ["-r", str(rate)])
    lat = results[0]["latency_us"]
    return {"p50": lat["p50"], "p99": lat["p99"]}


def start(mode):
    """A broker for `mode`: 0..N (io_threads of this build), "before" or
    "other:N" (the builds at BENCH_BEFORE and BENCH_OTHER)."""
    data = "/tmp/warren-threads-bench-%d-%s" % (os.getpid(), str(mode).replace(":", "-"))
    shutil.rmtree(data, ignore_errors=True)
    os.makedirs(data)
    args = ["--log-level", "warning"]
    binary = None
    if mode == "before":
        binary = BEFORE
    elif str(mode).startswith("other:"):
        binary = OTHER
        args += ["-s", "io_threads=%s" % mode.split(":")[1]]
    elif isinstance(mode, str):  # "2t": two I/O threads, sockets always on them
        args += ["-s", "io_threads=%s" % mode[:-1], "-s", "io_threads.placement=threads"]
    else:
        args += ["-s", "io_threads=%d" % mode]
    own = os.environ.get("WARREND")
    if binary:
        os.environ["WARREND"] = binary
    try:
        return harness._start(args, data_dir=data), data
    finally:
        if binary and own is None:
            del os.environ["WARREND"]
        elif binary:
            os.environ["WARREND"] = own


def main():
    rows = {}
    brokers = {}
    try:
        for mode in MODES:
            brokers[mode] = start(mode)
        for rep in range(REPS):
            for mode in MODES:
                b = brokers[mode][0]
                for name, fn in (("a", lambda: scenario_cpu(b, 1)),
                                 ("pairs8", lambda: scenario_cpu(b, 8)),
                                 ("lat1k", lambda: scenario_lat(b, 1000)),
                                 ("lat10k", lambda: scenario_lat(b, 10000))):
                    if name not in SCENARIOS:
                        continue
                    r = fn()
                    rows.setdefault((mode, name), []).append(r)
                    print("io_threads=%s %s rep %d: %s" % (mode, name, rep + 1,
                                                            json.dumps(r)), file=sys.stderr)
    finally:
        for b, data in brokers.values():
            harness._stop(b)
            shutil.rmtree(data, ignore_errors=True)

    def med(mode, name, key):
        return statistics.median(r[key] for r in rows[(mode, name)])

    cpu_names = [n for n in ("a", "pairs8") if n in SCENARIOS]
    print("\nscenario  io_threads  deliveries/s  CPU ns/msg: total  core  io  journal")
    for name in cpu_names:
        for mode in MODES:
            print("%-8s  %10s  %12.0f  %17.0f  %4.0f  %3.0f  %7.0f" % (
                name, mode, med(mode, name, "rate"), med(mode, name, "ns_total"),
                med(mode, name, "ns_core"), med(mode, name, "ns_io"),
                med(mode, name, "ns_journal")))
    print("\nlatency (us)  io_threads  p50  p99")
    for name in [n for n in ("lat1k", "lat10k") if n in SCENARIOS]:
        for mode in MODES:
            print("%-12s  %10s  %5.0f  %5.0f" % (name, mode, med(mode, name, "p50"),
                                                 med(mode, name, "p99")))
    base = MODES[0]
    base_core = {n: med(base, n, "ns_total") for n in cpu_names}
    print("\ncore thread's CPU per message as a share of %s's whole-process CPU:" % (
        "the build before" if base == "before" else "io_threads=0"))
    for name in cpu_names:
        for mode in MODES[1:]:
            print("  %s io_threads=%s: %.2f (total %.2f)" % (
                name, mode, med(mode, name, "ns_core") / base_core[name],
                med(mode, name, "ns_total") / base_core[name]))


if __name__ == "__main__":
    main()
