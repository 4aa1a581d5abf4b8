#!/usr/bin/python3
"""delayed_bench.py - the x-delayed-message plugin at scale
(docs/PERFORMANCE.md, "Delayed messages").

Part 1, memory: BENCH_DELAYED_N (1,000,000) messages of 16 bytes pending
on one delayed exchange (x-delay ten minutes), published pipelined over a
raw AMQP connection; the broker's RSS before, with them all pending, and
after the exchange is deleted. Memory per pending message = the growth
divided by N.

Part 2, timing: messages published at BENCH_DELAYED_RATE (10,000) per
second for BENCH_DELAYED_SECONDS (5), each delayed 1 to 2 seconds, so
10,000 fall due every second; a consumer in another process notes when
each arrives against when it was due (the due wall time is in the body):
lateness percentiles and the count of early ones (more than 1 ms early).

Warren only: RabbitMQ's delayed-message plugin is not in Debian's
rabbitmq-server. Run after `make`:
  /usr/bin/python3 tests/bench/delayed_bench.py
"""
import multiprocessing
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integ"))
import harness  # noqa: E402
from durability import Client  # noqa: E402

N = int(os.environ.get("BENCH_DELAYED_N", "1000000"))
RATE = int(os.environ.get("BENCH_DELAYED_RATE", "10000"))
SECONDS = float(os.environ.get("BENCH_DELAYED_SECONDS", "5"))
PLUGINS = os.path.join(os.path.dirname(os.path.dirname(harness.find_warrend())), "plugins",
                       ".libs")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def round_trip(c):
    c.queue_declare(1, "bench-sync", durable=False)


def part1(port, pid):
    c = Client("127.0.0.1", port)
    c.channel(1)
    c.exchange_declare(1, "bench-dx", "x-delayed-message", durable=False,
                       arguments={"x-delayed-type": "direct"})
    c.queue_declare(1, "bench-dq", durable=False)
    c.queue_bind(1, "bench-dq", "bench-dx", "k")
    round_trip(c)
    idle = rss_kib(pid)
    one = c.publish_bytes(1, "bench-dx", "k", b"x" * 16, headers={"x-delay": 600000})
    batch = one * 5000
    t0 = time.monotonic()
    for _ in range(N // 5000):
        c.send(batch)
        c.pump(0)
    round_trip(c)
    took = time.monotonic() - t0
    peak = rss_kib(pid)
    c.rpc(1, 40, 20, struct.pack(">H", 0) + bytes([len("bench-dx")]) + b"bench-dx" + b"\x00", 21)
    round_trip(c)
    after = rss_kib(pid)
    c.close()
    return idle, peak, after, took


def consumer(port, n, out):
    c = Client("127.0.0.1", port)
    c.channel(1)
    c.consume(1, "bench-tq", no_ack=True)
    late = []
    deadline = time.monotonic() + SECONDS + 15
    while len(late) < n and time.monotonic() < deadline:
        for e in c.pump(0.2):
            if e[0] == "deliver":
                now = time.time()
                due = struct.unpack(">d", e[1].body[:8])[0]
                late.append(now - due)
    out.put(late)
    c.close()


def part2(port):
    c = Client("127.0.0.1", port)
    c.channel(1)
    c.exchange_declare(1, "bench-tx", "x-delayed-message", durable=False,
                       arguments={"x-delayed-type": "fanout"})
    c.queue_declare(1, "bench-tq", durable=False)
    c.queue_bind(1, "bench-tq", "bench-tx", "")
    n = int(RATE * SECONDS)
    q = multiprocessing.Queue()
    p = multiprocessing.Process(target=consumer, args=(port, n, q))
    p.start()
    time.sleep(0.5)
    per_tick, tick = RATE // 100, 0.01
    sent, t0 = 0, time.monotonic()
    while sent < n:
        frames = []
        now = time.time()
        for k in range(per_tick):
            delay = 1000 + (sent + k) % 1000
            frames.append(c.publish_bytes(1, "bench-tx", "", struct.pack(">d", now + delay / 1000),
                                          headers={"x-delay": delay}))
        c.send(b"".join(frames))
        c.pump(0)
        sent += per_tick
        wait = t0 + (sent / RATE) - time.monotonic()
        if wait > 0:
            time.sleep(wait)
    late = q.get(timeout=SECONDS + 30)
    p.join(10)
    c.close()
    return n, sorted(late)


def main():
    d = tempfile.mkdtemp(prefix="warren-delayed-bench-")
    conf = os.path.join(d, "warren.conf")
    with open(conf, "w") as f:
        f.write("plugins.directory = %s\nplugins.enabled.1 = delayed_message\n" % PLUGINS)
    port = harness.free_port()
    argv = [harness.find_warrend(), "-c", conf, "--port", str(port), "--bind", "127.0.0.1",
            "--data-dir", os.path.join(d, "data"), "--mgmt-port", "0", "--log-level", "warning"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        harness.wait_port(port, proc)
        idle, peak, after, took = part1(port, proc.pid)
        print("| pending delayed messages (16 B) | %s |" % "{:,}".format(N))
        print("|---|---|")
        print("| RSS idle / all pending / after deleting the exchange | %.1f / %.1f / %.1f MiB |"
              % (idle / 1024, peak / 1024, after / 1024))
        print("| memory per pending message | %d bytes |" % ((peak - idle) * 1024 // N))
        print("| publishing them (pipelined, one connection) | %.1f s (%s msg/s) |"
              % (took, "{:,.0f}".format(N / took)))
        n, late = part2(port)
        pct = lambda p: 1000 * late[min(len(late) - 1, int(p * len(late)))]
        early = sum(1 for x in late if x < -0.001)
        print()
        print("| %s due per second for %g s | lateness |" % ("{:,}".format(RATE), SECONDS))
        print("|---|---|")
        print("| delivered | %s of %s |" % ("{:,}".format(len(late)), "{:,}".format(n)))
        print("| p50 / p99 / p99.9 / max | %.1f / %.1f / %.1f / %.1f ms |"
              % (pct(0.5), pct(0.99), pct(0.999), 1000 * late[-1]))
        print("| early by more than 1 ms | %d |" % early)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
