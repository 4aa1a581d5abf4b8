#!/usr/bin/python3
"""dedup_bench.py - what deduplication costs (docs/PERFORMANCE.md,
"Message deduplication").

1. Throughput: one raw pipelined publisher (confirm mode, frames encoded
   before the clock starts) sends BENCH_MSGS (200,000) transient 12-byte
   messages, each with a distinct x-deduplication-header, to a queue with
   x-message-deduplication (on) and to a plain queue (off); the time is from
   the first byte sent to the last confirm. BENCH_REPS (3) runs each,
   alternating, medians reported.
2. Memory: BENCH_KEYS (1,000,000) distinct 36-byte keys published through a
   fanout exchange with x-message-deduplication and no queue (so nothing
   but the keys stays), x-cache-size 1,000,000; warrend's RSS before and
   after, per key.

Run after `make`:  /usr/bin/python3 tests/bench/dedup_bench.py
"""
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integ"))
import harness  # noqa: E402
from durability import Client  # noqa: E402

MSGS = int(os.environ.get("BENCH_MSGS", "200000"))
REPS = int(os.environ.get("BENCH_REPS", "3"))
KEYS = int(os.environ.get("BENCH_KEYS", "1000000"))
HDR = "x-deduplication-header"


def key(i):
    return "%08x-0000-4000-8000-%012x" % (i, i)


def blast(c, exchange, rk, n, start, batch=2000):
    """Publish n messages (keys start..start+n) and wait for every confirm
    (c.seq: the publishes confirmed on channel 1 so far)."""
    if not hasattr(c, "seq"):
        c.confirm_select(1)
        c.seq = 0
    frames = [c.publish_bytes(1, exchange, rk, b"x" * 12, headers={HDR: key(start + i)})
              for i in range(n)]
    acked = [0]

    def done(e):
        if e[0] == "ack":
            acked[0] = max(acked[0], e[2])
        return acked[0] >= c.seq + n
    t0 = time.monotonic()
    for i in range(0, n, batch):
        c.send(b"".join(frames[i:i + batch]))
        for e in c.pump(0):
            done(e)
    c.wait(done, timeout=300)
    c.seq += n
    return time.monotonic() - t0


def throughput(b):
    res = {"off": [], "on": []}
    for rep in range(REPS):
        for mode in ("off", "on"):
            c = Client(harness.HOST, b.port)
            c.channel(1)
            qn = "bench-%s-%d" % (mode, rep)
            args = {"x-message-deduplication": True} if mode == "on" else None
            c.queue_declare(1, qn, durable=False, arguments=args)
            dt = blast(c, "", qn, MSGS, rep * MSGS)
            c.queue_delete(1, qn)
            c.close()
            res[mode].append(MSGS / dt)
            print("run %d %-3s %8.0f msg/s" % (rep + 1, mode, MSGS / dt), file=sys.stderr)
    for mode in ("off", "on"):
        print("dedup %-3s median %8.0f msg/s (runs: %s)" % (
            mode, statistics.median(res[mode]),
            ", ".join("%.0f" % r for r in res[mode])))
    return res


def memory(b):
    c = Client(harness.HOST, b.port)
    c.channel(1)
    c.exchange_declare(1, "bench.dedup", "fanout", durable=False,
                       arguments={"x-message-deduplication": True, "x-cache-size": KEYS})
    before = b.rss_kib()
    done = 0
    while done < KEYS:
        n = min(100000, KEYS - done)
        blast(c, "bench.dedup", "", n, 10**8 + done)
        done += n
    after = b.rss_kib()
    c.close()
    per = (after - before) * 1024 / KEYS
    print("RSS %d KiB -> %d KiB with %d keys of 36 bytes: %.1f bytes per key"
          % (before, after, KEYS, per))
    return per


def main():
    if os.environ.get("WARREN_TEST_PORT"):
        sys.exit("dedup_bench runs its own warrend (unset WARREN_TEST_PORT)")
    # Memory first, on a fresh broker: the throughput runs leave freed heap
    # behind that the keys would fill without growing the RSS.
    with harness.broker() as b:
        memory(b)
    with harness.broker() as b:
        throughput(b)


if __name__ == "__main__":
    main()
