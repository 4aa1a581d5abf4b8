#!/usr/bin/python3
"""mem_return.py - does the broker's memory go back after a burst? (issue 18;
docs/PERFORMANCE.md, "Memory after a burst")

For each size in MEM_SIZES ("1000000x16 1000000x1024 100000x65536": count x
body bytes) and each way a queue empties in MEM_PATHS, a fresh warrend from
the build tree (its own data directory; io_threads from BENCH_IO_THREADS,
default 0) is filled through one queue by warren-perf (one publisher with
confirms, 1,000 outstanding, transient messages), then the queue is
emptied, and the broker's RSS (VmRSS) is read:

  idle     after start, once it is steady
  peak     the highest sampled while filling and emptying
  after    5 s after the queue is empty (MEM_AFTER seconds)
  back in  how long after the queue was empty RSS first came within
           20 MB of idle (sampled every 100 ms, up to MEM_WAIT = 10 s)
  trims    the broker's malloc_trim calls (its debug log) and the longest
           one, which the loop waits for

The ways a queue empties:

  consume  one autoack consumer (warren-perf) takes every message
  purge    queue.purge
  ttl      x-message-ttl (MEM_TTL_MS, 20,000 by default, longer than a fill)
           expires them all
  dlx      the same TTL with x-dead-letter-exchange amq.fanout, which has
           no bindings: each message is dead-lettered (copied with its
           x-death) and dropped
  maxlen   x-max-length 1,000 (drop-head): the burst goes through a queue
           that keeps only its newest thousand (the peak stays low; what is
           measured is whether the churn leaves the heap grown); the
           thousand still held are counted out of `after` at body + 100
           bytes each
  delete   queue.delete

The target (issue 18): `after` within 20 MB of `idle`, for every row. Not a
test: it prints a table and exits 0; MEM_STRICT=1 makes a missed target
exit 1.

Run after `make`:  /usr/bin/python3 tests/bench/mem_return.py
"""
import json
import re
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integ"))
import harness  # noqa: E402
from durability import Client  # noqa: E402
from rawamqp import sstr  # noqa: E402
import struct  # noqa: E402

PERF = os.environ.get("WARREN_PERF", os.path.join(HERE, "warren-perf"))
SIZES = [tuple(int(x) for x in s.split("x"))
         for s in os.environ.get("MEM_SIZES",
                                 "1000000x16 1000000x1024 100000x65536").split()]
PATHS = os.environ.get("MEM_PATHS", "consume purge ttl dlx maxlen delete").split()
IO_THREADS = os.environ.get("BENCH_IO_THREADS", "0")
AFTER = float(os.environ.get("MEM_AFTER", "5"))
WAIT = float(os.environ.get("MEM_WAIT", "10"))
TTL_MS = int(os.environ.get("MEM_TTL_MS", "20000"))
BOUND_KIB = 20 * 1024
QUEUE = "mem-return"


def queue_args(path):
    if path == "ttl":
        return {"x-message-ttl": TTL_MS}
    if path == "dlx":
        return {"x-message-ttl": TTL_MS, "x-dead-letter-exchange": "amq.fanout"}
    if path == "maxlen":
        return {"x-max-length": 1000}
    return {}


def perf(port, args, watch):
    """Run warren-perf to its end, sampling the broker's RSS meanwhile."""
    p = subprocess.Popen([PERF, "--host", harness.HOST, "--port", str(port), "-j", "--quiet",
                          "-u", QUEUE, "--leave", "-z", "600"] + args,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while p.poll() is None:
        watch()
        time.sleep(0.05)
    out, err = p.communicate()
    if p.returncode != 0:
        raise RuntimeError("warren-perf %s: %s" % (" ".join(args), err[-2000:]))
    return json.loads(out.strip().splitlines()[-1])


def queue_count(c):
    return c.queue_declare(1, QUEUE, durable=False, passive=True)[1]


def one(count, size, path):
    data = "/tmp/warren-mem-bench-%d" % os.getpid()
    shutil.rmtree(data, ignore_errors=True)
    os.makedirs(data)
    b = harness._start(["-s", "io_threads=" + IO_THREADS], data_dir=data)  # debug log
    rss_kib = b.rss_kib
    try:
        last = [0]

        def steady():
            r = rss_kib()
            ok = r == last[0]
            last[0] = r
            return ok
        harness.wait_for(steady, 10, "idle RSS to settle")
        time.sleep(0.3)
        idle = rss_kib()
        peak = [idle]

        def watch():
            peak[0] = max(peak[0], rss_kib())

        c = Client(harness.HOST, b.port, timeout=120)
        c.channel(1)
        c.queue_declare(1, QUEUE, durable=False, arguments=queue_args(path))
        args = ["-x", "1", "-y", "0", "-C", str(count), "-s", str(size), "-c", "1000",
                "--no-settle"]
        t0 = time.monotonic()
        perf(b.port, args + (["--queue-args", ",".join("%s=%s" % kv for kv in
                                                        queue_args(path).items())]
                             if queue_args(path) else []), watch)
        fill_s = time.monotonic() - t0
        watch()
        held = queue_count(c)
        if path == "consume":
            perf(b.port, ["-x", "0", "-y", "1", "-a", "--cmessages", str(held), "-s",
                          str(size)], watch)
        elif path == "purge":
            c.rpc(1, 50, 30, struct.pack(">H", 0) + sstr(QUEUE) + b"\x00", 31, timeout=120)
        elif path in ("ttl", "dlx"):
            deadline = time.monotonic() + TTL_MS / 1000 + 120
            while queue_count(c) and time.monotonic() < deadline:
                watch()
                time.sleep(0.1)
        elif path == "delete":
            c.queue_delete(1, QUEUE)
        left = 0 if path == "delete" else queue_count(c)
        if path != "delete" and path != "maxlen":
            assert left == 0, "%s: %d messages left" % (path, left)
        t_empty = time.monotonic()
        back_s = None
        after = None
        while True:
            now = time.monotonic() - t_empty
            r = rss_kib()
            peak[0] = max(peak[0], r)
            if back_s is None and r <= idle + BOUND_KIB + left * (size + 100) // 1024:
                back_s = now
            if after is None and now >= AFTER:
                after = r
            if now >= max(AFTER, WAIT) or (after is not None and back_s is not None):
                break
            time.sleep(0.1)
        c.s.close()
        held_kib = left * (size + 100) // 1024
        trims = [float(m) for m in re.findall(r"returned freed memory to the system in ([0-9.]+) ms",
                                              b.log_text())]
        return {"count": count, "size": size, "path": path, "held": held, "fill_s": fill_s,
                "held_kib": held_kib, "trims": len(trims), "trim_ms_max": max(trims or [0]),
                "idle_kib": idle, "peak_kib": peak[0], "after_kib": after, "back_s": back_s}
    finally:
        harness._stop(b)
        shutil.rmtree(data, ignore_errors=True)


def main():
    rows = []
    for count, size in SIZES:
        for path in PATHS:
            r = one(count, size, path)
            rows.append(r)
            print(json.dumps(r), file=sys.stderr)
    print("\nio_threads=%s; RSS in MiB; 'after-idle' less what the queue still holds (maxlen); "
          "'back': seconds until RSS was within 20 MB of idle" % IO_THREADS)
    print("%-16s %-8s %8s %8s %8s %10s %6s %6s %8s  %s" % (
        "burst", "path", "idle", "peak", "after", "after-idle", "back", "trims", "trim ms", "met"))
    missed = 0
    for r in rows:
        ok = r["after_kib"] - r["idle_kib"] - r["held_kib"] <= BOUND_KIB
        missed += not ok
        print("%-16s %-8s %8.1f %8.1f %8.1f %10.1f %6s %6d %8.1f  %s" % (
            "%dx%d" % (r["count"], r["size"]), r["path"], r["idle_kib"] / 1024,
            r["peak_kib"] / 1024, r["after_kib"] / 1024,
            (r["after_kib"] - r["idle_kib"] - r["held_kib"]) / 1024,
            "-" if r["back_s"] is None else "%.1f" % r["back_s"], r["trims"], r["trim_ms_max"],
            "yes" if ok else "NO"))
    if missed and os.environ.get("MEM_STRICT"):
        sys.exit(1)


if __name__ == "__main__":
    main()
