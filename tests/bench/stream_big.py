#!/usr/bin/python3
"""stream_big.py - a long stream: the broker's memory, a replay of all of
it, a restart, and publishers beside replaying consumers (docs/
PERFORMANCE.md, "Streams"). Warren only: the figures are Warren's own
targets (RabbitMQ's are in stream_bench.py).

  append   one publisher, confirms (500 outstanding), BENCH_BIG_MSGS
           (10,000,000) messages of 1 KiB (10 GiB of bodies) into one
           stream; the broker's RSS at the end and its peak while
           appending (sampled every 0.2 s from /proc)
  replay   one consumer from "first" (prefetch 1000, multiple ack every
           500) reads them all: MiB/s of bodies, and the broker's peak RSS
  restart  the broker stopped and started on the same data directory:
           the time until it takes connections, RSS then
  beside   a publisher alone for BENCH_BESIDE_S (15) seconds, then again
           with BENCH_REPLAYERS (10) consumers replaying the stream from
           "first" at the same time: confirmed msg/s both times and the
           ratio (the target is at least 0.9)

Needs disk for the stream (about 1.1x the bodies) and is bounded by
count and time. Run after `make`:
  /usr/bin/python3 tests/bench/stream_big.py
(BENCH_BIG_MSGS=1000000 for a quick look.)
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integ"))
import harness  # noqa: E402

MSGS = int(os.environ.get("BENCH_BIG_MSGS", "10000000"))
BESIDE_S = int(os.environ.get("BENCH_BESIDE_S", "15"))
REPLAYERS = int(os.environ.get("BENCH_REPLAYERS", "10"))
PERF = os.environ.get("WARREN_PERF", os.path.join(HERE, "warren-perf"))
STREAM = "x-queue-type=stream"
NAME = "big-%d" % os.getpid()


def perf_argv(port, args):
    return [PERF, "--host", harness.HOST, "--port", str(port), "-j", "--quiet"] + args


def perf(port, args, timeout=3600):
    r = subprocess.run(perf_argv(port, args), capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError("warren-perf %s: %s" % (" ".join(args), r.stderr[-2000:]))
    return json.loads(r.stdout.strip().splitlines()[-1])


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Peak:
    """The highest RSS of a process while the block runs (0.2 s samples)."""

    def __init__(self, pid):
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def __enter__(self):
        def run():
            while not self.stop.is_set():
                try:
                    self.peak = max(self.peak, rss_kib(self.pid))
                except OSError:
                    return
                self.stop.wait(0.2)
        self.t = threading.Thread(target=run, daemon=True)
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.t.join()


def append_args(count=None, seconds=None):
    a = ["-x", "1", "-y", "0", "-c", "500", "-s", "1024", "--no-settle", "--queue-durable",
         "--queue-args", STREAM, "-u", NAME, "--leave"]
    if count:
        a += ["-C", str(count)]
    if seconds:
        a += ["-z", str(seconds)]
    return a


def replay_args(count=None, seconds=None):
    a = ["-x", "0", "-y", "1", "-q", "1000", "-A", "500", "--consumer-args",
         "x-stream-offset=first", "--queue-durable", "--queue-args", STREAM, "-u", NAME,
         "--leave"]
    if count:
        a += ["--cmessages", str(count)]
    if seconds:
        a += ["-z", str(seconds)]
    return a


def main():
    w = harness._start(["--log-level", "warning"])
    data_dir = w.data_dir
    try:
        idle = rss_kib(w.pid)
        t0 = time.monotonic()
        with Peak(w.pid) as pk:
            r = perf(w.port, append_args(count=MSGS))
        secs = time.monotonic() - t0
        end = rss_kib(w.pid)
        print("append: %d x 1 KiB in %.0f s (%.0f msg/s confirmed); RSS idle %.1f MiB, peak "
              "%.1f MiB, at the end %.1f MiB" % (MSGS, secs, r["confirm_rate"], idle / 1024,
                                                 pk.peak / 1024, end / 1024))
        with Peak(w.pid) as pk:
            r = perf(w.port, replay_args(count=MSGS))
        print("replay: %d messages from first at %.0f MiB/s (%.0f msg/s); broker RSS peak "
              "%.1f MiB" % (MSGS, r["recv_bytes_per_s"] / (1 << 20), r["recv_rate"],
                            pk.peak / 1024))
        harness._stop(w)
        t0 = time.monotonic()
        w = harness._start(["--log-level", "warning"], data_dir=data_dir)
        print("restart: taking connections after %.1f s; RSS %.1f MiB" %
              (time.monotonic() - t0, rss_kib(w.pid) / 1024))

        alone = perf(w.port, append_args(seconds=BESIDE_S))["confirm_rate"]
        procs = [subprocess.Popen(perf_argv(w.port, replay_args(seconds=BESIDE_S + 5)),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(REPLAYERS)]
        try:
            time.sleep(1)  # the replayers are reading
            beside = perf(w.port, append_args(seconds=BESIDE_S))["confirm_rate"]
        finally:
            got = 0
            for p in procs:
                out, _ = p.communicate(timeout=120)
                try:
                    got += json.loads(out.strip().splitlines()[-1])["recv_bytes_per_s"]
                except (ValueError, IndexError, KeyError):
                    pass
        print("beside: a publisher alone %.0f msg/s; with %d replayers %.0f msg/s (%.2f of "
              "alone); the replayers read %.0f MiB/s in all" %
              (alone, REPLAYERS, beside, beside / alone if alone else 0, got / (1 << 20)))
    finally:
        harness._stop(w)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    main()
