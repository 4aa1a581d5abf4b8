#!/usr/bin/python3
"""declare_cost.py - declaring durable queues one at a time, the way an
application that starts up declares its topology: Warren against RabbitMQ
in the same run (docs/PERFORMANCE.md, "Declaring many durable queues").

One pika connection declares BENCH_QUEUES (10,000) durable queues, each
waiting for its declare-ok (which both brokers send only once the queue is
on disk), and reports the rate of each tenth of the run, so a cost that
grows with the number of queues already there shows as a falling rate.
Warren then restarts (SIGKILL) on the same data directory and the time to
its port answering is reported. RabbitMQ runs when BENCH_RMQ_PORT is set
(../shared/tools/rabbitmq-local.sh); its queues are deleted afterwards.

Run after `make`:
  BENCH_REPS=3 BENCH_RMQ_PORT=5690 /usr/bin/python3 tests/bench/declare_cost.py
"""
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import pika

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integ"))
import harness  # noqa: E402

N = int(os.environ.get("BENCH_QUEUES", "10000"))
REPS = int(os.environ.get("BENCH_REPS", "3"))
RMQ = os.environ.get("BENCH_RMQ_PORT")


def declare_run(port, prefix):
    """Declare N queues; returns (total seconds, [rate of each tenth])."""
    c = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port, heartbeat=0))
    ch = c.channel()
    tenth, rates = max(1, N // 10), []
    t0 = t = time.monotonic()
    for i in range(N):
        ch.queue_declare("%s-%06d" % (prefix, i), durable=True)
        if (i + 1) % tenth == 0:
            now = time.monotonic()
            rates.append(tenth / (now - t))
            t = now
    total = time.monotonic() - t0
    c.close()
    return total, rates


def delete_all(port, prefix):
    c = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port, heartbeat=0))
    ch = c.channel()
    for i in range(N):
        ch.queue_delete("%s-%06d" % (prefix, i))
    c.close()


def warren_rep(rep):
    d = tempfile.mkdtemp(prefix="warren-declare-")
    port = harness.free_port()
    argv = [harness.find_warrend(), "--port", str(port), "--bind", "127.0.0.1",
            "--data-dir", d, "--mgmt-port", "0", "--log-level", "warning"]
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        harness.wait_port(port, p)
        total, rates = declare_run(port, "q%d" % rep)
        size = os.path.getsize(os.path.join(d, "definitions.json")) + \
            os.path.getsize(os.path.join(d, "definitions.log"))
        p.send_signal(signal.SIGKILL)
        p.wait()
        t0 = time.monotonic()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        harness.wait_port(port, p, timeout=120)
        restart = time.monotonic() - t0
        return total, rates, restart, size
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            p.wait(30)
        shutil.rmtree(d, ignore_errors=True)


def rmq_rep(rep):
    prefix = "declare-cost-%d-%d" % (os.getpid(), rep)
    try:
        return declare_run(int(RMQ), prefix)
    finally:
        delete_all(int(RMQ), prefix)


def fmt(x):
    return "{:,.0f}".format(x)


def main():
    w, r = [], []
    for rep in range(REPS):
        w.append(warren_rep(rep))
        print("warren rep %d: %.2f s, tenths %s, restart %.2f s, files %d bytes"
              % (rep, w[-1][0], [fmt(x) for x in w[-1][1]], w[-1][2], w[-1][3]), flush=True)
        if RMQ:
            r.append(rmq_rep(rep))
            print("rabbitmq rep %d: %.2f s, tenths %s" % (rep, r[-1][0], [fmt(x) for x in r[-1][1]]),
                  flush=True)
    wt = statistics.median(x[0] for x in w)
    print()
    print("| %s durable queues, one at a time | Warren | RabbitMQ | Warren / RabbitMQ |" % fmt(N))
    print("|---|---|---|---|")
    rt = statistics.median(x[0] for x in r) if r else None
    print("| total time, median of %d | %.2f s | %s | %s |"
          % (REPS, wt, "%.2f s" % rt if rt else "-", "%.1fx faster" % (rt / wt) if rt else "-"))
    for name, k in (("declares/s, first tenth", 0), ("declares/s, last tenth", -1)):
        wv = statistics.median(x[1][k] for x in w)
        rv = statistics.median(x[1][k] for x in r) if r else None
        print("| %s | %s | %s | %s |" % (name, fmt(wv), fmt(rv) if rv else "-",
                                         "%.1fx" % (wv / rv) if rv else "-"))
    print("| restart after SIGKILL with them all | %.2f s | | |"
          % statistics.median(x[2] for x in w))


if __name__ == "__main__":
    main()
