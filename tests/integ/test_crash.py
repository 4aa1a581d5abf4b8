"""test_crash - kill -9 at random moments; nothing confirmed is ever lost (issue 5).

warrend only (skipped when WARREN_TEST_PORT is set): the test SIGKILLs the
broker and restarts it on the same data directory and port.

Topology: a durable topic exchange `crash.topic` and three durable queues,
`crash.orders` (bound "orders.#", x-max-length far above what is published),
`crash.prio` (x-max-priority 5, bound "prio.*" and "orders.urgent", so
"orders.urgent" messages go to two queues and are journaled once) and
`crash.direct` (x-max-priority 3, published through the default exchange).

Each cycle (CYCLES of them, default 30): after the restart, check the
definitions (passive declares, equivalent redeclares succeed, redeclares
with another exchange type or other queue arguments fail 406, mandatory
probe messages through every binding are routed, an unbound key is
returned), then run two raw pipelined publishers (confirm mode, up to 300
unconfirmed persistent messages each, at most 15,000 a second, unique ids,
random priorities) and
one consumer per queue (manual acks, acking a random part of what it gets
and leaving the rest unacked), and SIGKILL the broker 50-400 ms after
publishing started. At the end the queues are drained after a final
restart, and drained queues must stay empty across a clean restart.

Checked over the whole run, per (message id, queue):
  (a) every message whose confirm the client received is delivered; a
      second or later delivery always has redelivered=true, and the same
      broker process never delivers a message twice (nothing is requeued
      while it runs);
  (b) nothing that was never published is delivered, nothing lands in a
      queue its routing key does not reach, bodies are intact;
  (c) definitions are intact after every restart (above), and the number
      of ready messages after a restart is at least the number of confirmed
      messages never acked by a consumer;
  (d) within one broker process, each consumer sees every publisher's
      messages in publish order per priority level (recovered messages are
      re-queued in publish order).
The counts (confirmed, nacked, unconfirmed, delivered once / redelivered /
several times, acked-but-redelivered) are printed at the end. About 20 s;
the cycles stop after 60 s whatever CYCLES says (at least 20 must fit).

A SIGKILL leaves the page cache alone, so the kill cycles cannot tell a
confirm sent after fdatasync from one sent before. ConfirmAfterSyncTest
can: it runs warrend under strace (skipped without strace) and checks that
every basic.ack of a persistent publish is written after an fdatasync of
the journal that began after the publish record was written.

Environment: WARREN_CRASH_CYCLES (default 30), WARREN_CRASH_SEED.
"""
import collections
import hashlib
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import pika
import pika.exceptions as pex

import harness
from durability import Client, Closed, Confirms, read_definitions, recovered_count, warrend_only

EXCHANGE = "crash.topic"
QUEUES = {
    "crash.orders": {"x-max-length": 10000000},
    "crash.prio": {"x-max-priority": 5},
    "crash.direct": {"x-max-priority": 3},
}
# Arguments that must be refused as inequivalent (proof the real ones survived).
OTHER_ARGS = {
    "crash.orders": {"x-max-length": 5},
    "crash.prio": {"x-max-priority": 4},
    "crash.direct": {},
}
MAX_PRIO = {"crash.orders": 0, "crash.prio": 5, "crash.direct": 3}
BINDINGS = [("crash.orders", "orders.#"), ("crash.prio", "prio.*"),
            ("crash.prio", "orders.urgent")]
# (exchange, routing key, queues it reaches)
ROUTES = [
    (EXCHANGE, "orders.new", ("crash.orders",)),
    (EXCHANGE, "orders.urgent", ("crash.orders", "crash.prio")),
    (EXCHANGE, "prio.x", ("crash.prio",)),
    ("", "crash.direct", ("crash.direct",)),
]
PUBLISHERS = 2
WINDOW = 300          # unconfirmed publishes per publisher
RATE = 15000          # publishes per second and publisher, at most
PER_CYCLE = 8000      # publishes per publisher and cycle, at most (bounds memory)
CYCLES = int(os.environ.get("WARREN_CRASH_CYCLES", "30"))
TIME_BUDGET = 60.0    # seconds for the cycles; the drain comes after


def body_of(mid):
    """The body a message id must arrive with (length 20..700, derived
    from the id so corruption or a mix-up is caught)."""
    h = hashlib.sha256(mid.encode()).hexdigest().encode()
    n = 20 + int(h[:4], 16) % 680
    return mid.encode() + b"|" + (h * (n // len(h) + 1))[:n]


def level(queue, prio):
    return min(prio or 0, MAX_PRIO[queue])


class Publisher(threading.Thread):
    """Pipelined persistent publishes with confirms until the socket dies."""

    def __init__(self, port, name, first, rng, stop, started):
        super().__init__(daemon=True)
        self.port, self.name, self.n, self.rng = port, name, first, rng
        self.stop, self.started = stop, started
        self.conf = Confirms()
        self.published = []   # (id, route index, priority)
        self.error = None

    def run(self):
        c = None
        try:
            c = Client(harness.HOST, self.port, timeout=5)
            c.channel(1)
            c.confirm_select(1)
            self.started.set()
            t0 = time.monotonic()
            while not self.stop.is_set():
                batch = []
                # paced (RATE), so that the kill still finds publishes in
                # flight on a fast machine, and capped (PER_CYCLE)
                allowed = min(PER_CYCLE, 40 + RATE * (time.monotonic() - t0))
                while len(self.conf.out) < WINDOW and len(batch) < 40 and \
                        len(self.published) < allowed:
                    r = self.rng.randrange(len(ROUTES))
                    x, rk, qs = ROUTES[r]
                    prio = self.rng.choice([None, 0, 1, 2, 3, 4, 5, 7])
                    mid = "%s.%d" % (self.name, self.n)
                    self.n += 1
                    batch.append(c.publish_bytes(1, x, rk, body_of(mid), delivery_mode=2,
                                                 priority=prio, message_id=mid))
                    # Counted as published before it is sent: a publish the
                    # broker may have read must never be reported as unknown.
                    self.published.append((mid, r, prio))
                    self.conf.sent(mid)
                if batch:
                    c.send(b"".join(batch))
                for e in c.pump(0.002):
                    self.conf.on_event(e)
                    if e[0] not in ("ack", "nack"):
                        raise AssertionError("publisher got %r" % (e,))
        except (OSError, Closed, AssertionError) as e:
            self.error = e
        finally:
            self.started.set()
            if c:
                c.close()


class Consumer(threading.Thread):
    """Consumes one queue with manual acks; acks a random budget of what it
    gets (each with probability 0.85) and leaves the rest unacked."""

    def __init__(self, port, queue, rng, stop, incarnation):
        super().__init__(daemon=True)
        self.port, self.queue, self.rng, self.stop = port, queue, rng, stop
        self.inc = incarnation
        self.ready = threading.Event()
        self.got = []        # (id, redelivered, acked, body ok)
        self.error = None

    def run(self):
        budget = self.rng.randrange(0, 600)
        c = None
        try:
            c = Client(harness.HOST, self.port, timeout=5)
            c.channel(1)
            c.qos(1, self.rng.choice([50, 200, 1000]))
            c.consume(1, self.queue)
            self.ready.set()
            while not self.stop.is_set():
                acks = []
                for e in c.pump(0.01):
                    if e[0] != "deliver":
                        raise AssertionError("consumer got %r" % (e,))
                    m = e[1]
                    mid = m.body.split(b"|", 1)[0].decode(errors="replace")
                    ack = budget > 0 and self.rng.random() < 0.85
                    self.got.append((mid, m.redelivered, ack, m.body == body_of(mid)))
                    if ack:
                        budget -= 1
                        acks.append(Client.ack_bytes(1, m.tag))
                if acks:
                    c.send(b"".join(acks))
        except (OSError, Closed, AssertionError) as e:
            self.error = e
        finally:
            self.ready.set()
            if c:
                c.close()


class CrashTest(unittest.TestCase):
    def setUp(self):
        reason = warrend_only()
        if reason:
            self.skipTest(reason)
        self.seed = int(os.environ.get("WARREN_CRASH_SEED", random.randrange(1 << 30)))
        self.rng = random.Random(self.seed)
        print("seed %d (WARREN_CRASH_SEED to repeat)" % self.seed, file=sys.stderr)
        self.published = {}       # id -> (route index, priority, publisher, n)
        self.confirmed = set()
        self.nacked = set()
        self.unroutable = set()   # probes that must never be queued
        self.deliveries = []      # (incarnation, queue, id, redelivered, acked, body ok)
        self.acked_by_us = set()  # (id, queue)
        self.next_n = {"p%d" % i: 0 for i in range(PUBLISHERS)}
        self.next_n["probe"] = 0
        self.recovered = []

    # ---- topology and definitions ---------------------------------------
    def pika(self, b):
        return pika.BlockingConnection(pika.ConnectionParameters(
            host=harness.HOST, port=b.port, heartbeat=0, blocked_connection_timeout=30))

    def declare(self, b):
        conn = self.pika(b)
        ch = conn.channel()
        ch.exchange_declare(EXCHANGE, "topic", durable=True)
        for q, args in QUEUES.items():
            ch.queue_declare(q, durable=True, arguments=args)
        for q, key in BINDINGS:
            ch.queue_bind(q, EXCHANGE, key)
        conn.close()

    def refused(self, conn, what, fn):
        ch = conn.channel()
        with self.assertRaises(pex.ChannelClosedByBroker, msg=what) as cm:
            fn(ch)
        self.assertEqual(cm.exception.reply_code, 406, what)

    def check_definitions(self, b, cycle):
        """(c): exchange, queues with their arguments, bindings."""
        conn = self.pika(b)
        ch = conn.channel()
        ready = {}
        try:
            ch.exchange_declare(EXCHANGE, "topic", passive=True)
            ch.exchange_declare(EXCHANGE, "topic", durable=True)
            for q, args in QUEUES.items():
                ready[q] = ch.queue_declare(q, passive=True).method.message_count
                ch.queue_declare(q, durable=True, arguments=args)
        except pex.AMQPError as e:
            self.fail("cycle %d: definitions not intact after restart: %r" % (cycle, e))
        # What was confirmed and never acked by a consumer must be there.
        owed = collections.Counter(q for mid in self.confirmed
                                   for q in ROUTES[self.published[mid][0]][2]
                                   if (mid, q) not in self.acked_by_us)
        for q in QUEUES:
            self.assertGreaterEqual(ready[q], owed[q],
                                    "cycle %d: %s holds %d messages, but %d confirmed ones "
                                    "were never acked" % (cycle, q, ready[q], owed[q]))
        self.refused(conn, "exchange type kept (cycle %d)" % cycle,
                     lambda c: c.exchange_declare(EXCHANGE, "direct", durable=True))
        for q in QUEUES:
            self.refused(conn, "arguments of %s kept (cycle %d)" % (q, cycle),
                         lambda c, q=q: c.queue_declare(q, durable=True,
                                                        arguments=OTHER_ARGS[q]))
        conn.close()
        # The files themselves: every durable object, in definitions.json or
        # in the definitions log beside it.
        defs = read_definitions(b.data_dir)
        self.assertIn(EXCHANGE, [x["name"] for x in defs["exchanges"]])
        self.assertEqual({q["name"]: q["arguments"] for q in defs["queues"]}, QUEUES)
        self.assertEqual(sorted((d["destination"], d["routing_key"]) for d in defs["bindings"]
                                if d["source"] == EXCHANGE), sorted(BINDINGS))
        # Bindings: a mandatory probe through every route is routed (not
        # returned) and confirmed; an unbound key is returned.
        c = Client(harness.HOST, b.port)
        c.channel(1)
        c.confirm_select(1)
        conf = Confirms()
        data = []
        for r, (x, rk, qs) in enumerate(ROUTES):
            mid = "probe.%d" % self.next_n["probe"]
            self.next_n["probe"] += 1
            self.published[mid] = (r, None, "probe", int(mid.split(".")[1]))
            data.append(c.publish_bytes(1, x, rk, body_of(mid), mandatory=True,
                                        delivery_mode=2, message_id=mid))
            conf.sent(mid)
        mid = "unroutable.%d" % cycle
        self.unroutable.add(mid)
        data.append(c.publish_bytes(1, EXCHANGE, "nomatch.x", body_of(mid), mandatory=True,
                                    delivery_mode=2, message_id=mid))
        conf.sent(mid)
        c.send(b"".join(data))
        returned = []
        deadline = time.monotonic() + 10
        while conf.out and time.monotonic() < deadline:
            for e in c.pump(0.1):
                if e[0] == "return":
                    returned.append(e[1].body.split(b"|")[0].decode())
                else:
                    conf.on_event(e)
        c.close()
        self.assertFalse(conf.out, "cycle %d: probes not confirmed" % cycle)
        self.assertEqual(returned, ["unroutable.%d" % cycle],
                         "cycle %d: only the unbound key is returned" % cycle)
        self.assertFalse(conf.nacked, "cycle %d: probes nacked" % cycle)
        self.confirmed.update(m for m in conf.acked if m.startswith("probe."))

    # ---- one cycle ------------------------------------------------------------
    def cycle(self, b, inc):
        stop = threading.Event()
        pubs = []
        for i in range(PUBLISHERS):
            name = "p%d" % i
            pubs.append(Publisher(b.port, name, self.next_n[name],
                                  random.Random(self.rng.random()), stop, threading.Event()))
        cons = [Consumer(b.port, q, random.Random(self.rng.random()), stop, inc)
                for q in QUEUES]
        for t in cons + pubs:
            t.start()
        # every client is connected (or failed) before the clock starts, so
        # none can reach the next broker process
        for c in cons:
            c.ready.wait(10)
        for p in pubs:
            p.started.wait(10)
        time.sleep(self.rng.uniform(0.05, 0.4))
        self.assertTrue(b.alive(), "warrend died on its own in cycle %d" % inc)
        harness.restart(b, signal.SIGKILL)
        stop.set()
        for t in cons + pubs:
            t.join(10)
            self.assertFalse(t.is_alive(), "a client thread hangs")
        for p in pubs:
            self.assertIsInstance(p.error, OSError,
                                  "publisher %s ended with %r" % (p.name, p.error))
            for mid, r, prio in p.published:
                self.published[mid] = (r, prio, p.name, int(mid.split(".")[1]))
            self.next_n[p.name] = p.n
            self.confirmed.update(p.conf.acked)
            self.nacked.update(p.conf.nacked)
        for c in cons:
            self.assertTrue(c.error is None or isinstance(c.error, OSError),
                            "consumer of %s ended with %r" % (c.queue, c.error))
            for mid, red, acked, ok in c.got:
                self.deliveries.append((inc, c.queue, mid, red, acked, ok))
                if acked:
                    self.acked_by_us.add((mid, c.queue))
        self.recovered.append(recovered_count(b.log_text()))

    def drain(self, b, inc):
        c = Client(harness.HOST, b.port)
        c.channel(1)
        c.qos(1, 2000)
        for q in QUEUES:
            _, n, _ = c.queue_declare(1, q, passive=True)
            c.consume(1, q)
            got, last = 0, 0
            progress = time.monotonic()
            while got < n:
                self.assertLess(time.monotonic() - progress, 15,
                                "draining %s stalls after %d of %d messages" % (q, got, n))
                for e in c.pump(0.5):
                    progress = time.monotonic()
                    self.assertEqual(e[0], "deliver")
                    m = e[1]
                    mid = m.body.split(b"|", 1)[0].decode(errors="replace")
                    self.deliveries.append((inc, q, mid, m.redelivered, True,
                                            m.body == body_of(mid)))
                    got += 1
                    last = m.tag
                if last:
                    c.send(Client.ack_bytes(1, last, multiple=True))
            # nothing more may come
            for e in c.pump(0.3):
                self.fail("%s: more than its message_count was delivered: %r" % (q, e))
        c.close()
        c = Client(harness.HOST, b.port)
        c.channel(1)
        for q in QUEUES:
            self.assertEqual(c.queue_declare(1, q, passive=True)[1], 0, "%s drained" % q)
        c.close()

    # ---- the test ---------------------------------------------------------------
    def test_kill9_cycles(self):
        t0 = time.monotonic()
        with harness.broker() as b:
            self.declare(b)
            inc = 0
            while inc < CYCLES:
                inc += 1
                self.check_definitions(b, inc)
                self.cycle(b, inc)
                if time.monotonic() - t0 > TIME_BUDGET:
                    break
            cycles = inc
            self.check_definitions(b, inc + 1)
            self.drain(b, inc + 1)
            # acks of the drain are durable across a clean restart
            harness.restart(b, signal.SIGTERM)
            c = Client(harness.HOST, b.port)
            c.channel(1)
            for q in QUEUES:
                self.assertEqual(c.queue_declare(1, q, passive=True)[1], 0,
                                 "%s still empty after a clean restart" % q)
            c.close()
            log = b.log_text()
        self.verify(cycles, time.monotonic() - t0, log)
        self.assertGreaterEqual(cycles, min(20, CYCLES),
                                "only %d kill cycles fit in the time budget" % cycles)

    def verify(self, cycles, elapsed, log):
        problems = []

        def bad(what):
            if len(problems) < 40:
                problems.append(what)

        expected = {}   # id -> queues
        for mid, (r, prio, pub, n) in self.published.items():
            expected[mid] = ROUTES[r][2]
        by_pair = collections.defaultdict(list)
        for i, (inc, q, mid, red, acked, ok) in enumerate(self.deliveries):
            if mid in self.unroutable:
                bad("the unroutable probe %s was delivered from %s" % (mid, q))
                continue
            if mid not in expected:
                bad("never published: %r delivered from %s (cycle %d)" % (mid, q, inc))
                continue
            if q not in expected[mid]:
                bad("%s delivered from %s; its key reaches only %s" % (mid, q, expected[mid]))
            if not ok:
                bad("%s from %s: body damaged" % (mid, q))
            by_pair[(mid, q)].append((inc, red, acked))

        # (a)
        lost = []
        once_fresh = once_red = several = acked_again = 0
        for mid in self.confirmed:
            for q in expected[mid]:
                if not by_pair.get((mid, q)):
                    lost.append((mid, q))
        for (mid, q), ds in by_pair.items():
            if len(ds) == 1:
                if ds[0][1]:
                    once_red += 1
                else:
                    once_fresh += 1
                continue
            several += 1
            for k, (inc, red, acked) in enumerate(ds[1:], 1):
                if not red:
                    bad("%s in %s delivered again (delivery %d, cycle %d) with "
                        "redelivered=false" % (mid, q, k + 1, inc))
                if inc == ds[k - 1][0]:
                    bad("%s in %s delivered twice by the same broker process (cycle %d)"
                        % (mid, q, inc))
                if ds[k - 1][2]:
                    acked_again += 1
        if lost:
            bad("%d confirmed messages never delivered, e.g. %s" % (len(lost), sorted(lost)[:10]))

        # (d) per consumer (= per broker process and queue): each publisher's
        # messages in publish order per priority level.
        last = {}
        for inc, q, mid, red, acked, ok in self.deliveries:
            if mid not in self.published:
                continue
            r, prio, pub, n = self.published[mid]
            key = (inc, q, pub, level(q, prio))
            if key in last and n <= last[key][0]:
                bad("order: in %s (cycle %d) %s came after %s (same publisher, priority "
                    "level %d)" % (q, inc, mid, last[key][1], level(q, prio)))
            last[key] = (n, mid)

        pairs_published = sum(len(expected[m]) for m in self.published)
        unconfirmed = set(self.published) - self.confirmed - self.nacked
        seen_ids = {mid for (mid, q) in by_pair}
        print("crash test: %d kill -9 cycles in %.1f s; %d messages published (%d queue "
              "entries), %d confirmed, %d nacked, %d unconfirmed when killed (%d of those "
              "delivered later); %d deliveries: %d entries delivered once, %d delivered once "
              "with redelivered=true, %d delivered several times (%d after an ack that did "
              "not survive the crash); nacked but delivered: %d; messages restored per "
              "restart: %s"
              % (cycles, elapsed, len(self.published), pairs_published, len(self.confirmed),
                 len(self.nacked), len(unconfirmed), len(unconfirmed & seen_ids),
                 len(self.deliveries), once_fresh, once_red, several, acked_again,
                 len(self.nacked & seen_ids), self.recovered), file=sys.stderr)
        self.assertIn("recovery:", log)
        if problems:
            self.fail("\n".join(problems))
        self.assertGreater(len(self.confirmed), 1000, "too few confirmed messages to mean much")


# ---- confirms wait for fdatasync ------------------------------------------------

SYSCALL_RE = re.compile(r"^(\d+) +\S+ (\w+)\((\d+)")
RESUMED_RE = re.compile(r"^(\d+) +\S+ <\.\.\. (\w+) resumed>")
HEX_RE = re.compile(r'"((?:\\x[0-9a-f]{2})*)"(\.\.\.)?')
RET_RE = re.compile(r"\) += (-?\d+)")


def strace_events(path):
    """(name, fd, first line, last line, data, return value) per syscall of
    an `strace -f -xx` log. A syscall printed on one line had no traced
    event of another thread inside it; one split into <unfinished ...> and
    <... resumed> spans the lines in between. So line numbers order the
    syscalls exactly, whatever the clock does."""
    pending, out = {}, []
    with open(path, errors="replace") as f:
        lines = f.read().splitlines()
    for i, ln in enumerate(lines):
        m = RESUMED_RE.match(ln)
        if m:
            start = pending.pop((m.group(1), m.group(2)), None)
            if start is None:
                continue
            name, fd, first, text = start
            text += ln
        else:
            m = SYSCALL_RE.match(ln)
            if not m:
                continue
            name, fd, first, text = m.group(2), int(m.group(3)), i, ln
            if ln.endswith("<unfinished ...>"):
                pending[(m.group(1), name)] = (name, fd, i, ln)
                continue
        data = b""
        for hx, cut in HEX_RE.findall(text):
            if cut:
                raise AssertionError("strace cut a buffer short: raise -s")
            data += bytes.fromhex(hx.replace("\\x", ""))
        r = RET_RE.search(text)
        out.append((name, fd, first, i, data, int(r.group(1)) if r else None))
    return out


class ConfirmAfterSyncTest(unittest.TestCase):
    """Under strace: every basic.ack of a persistent publish leaves warrend
    after an fdatasync of the journal that began after the record was
    written and ended before the ack was written. (A SIGKILL keeps the page
    cache, so the crash test cannot see a confirm sent before the data is on
    disk; this one can.)"""

    def test_confirm_follows_fdatasync(self):
        reason = warrend_only()
        if reason:
            self.skipTest(reason)
        strace = harness.strace_path()
        if not strace:
            self.skipTest("strace is not installed or cannot trace here")
        d = tempfile.mkdtemp(prefix="warren-sync-")
        self.addCleanup(shutil.rmtree, d, True)
        trace = os.path.join(d, "trace")
        port = harness.free_port()
        argv = [strace, "-f", "-qq", "-tt", "-xx", "-s", "1000000", "-e",
                "trace=write,writev,pwrite64,pwritev,sendmsg,sendto,fdatasync,fsync", "-o",
                trace, harness.find_warrend(), "--port", str(port), "--bind", harness.HOST,
                "--data-dir", os.path.join(d, "data"), "--mgmt-port", "0"]
        with open(os.path.join(d, "log"), "wb") as log:
            p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL)
        try:
            harness.wait_port(port, p, timeout=30)
            c = Client(harness.HOST, port)
            c.channel(1)
            c.confirm_select(1)
            c.queue_declare(1, "sync", durable=True)
            conf = Confirms()
            for batch in range(12):
                data = []
                for k in range(1 + batch * 3):
                    mid = "s%d" % (conf.seq + 1)
                    data.append(c.publish_bytes(1, "", "sync", body_of(mid), delivery_mode=2))
                    conf.sent(mid)
                c.send(b"".join(data))
                for e in c.pump(0.01):
                    conf.on_event(e)
            deadline = time.monotonic() + 20
            while conf.out and time.monotonic() < deadline:
                for e in c.pump(0.2):
                    conf.on_event(e)
            c.close()
            self.assertFalse(conf.out, "all confirmed")
            self.assertFalse(conf.nacked)
        finally:
            # stop warrend itself (strace's child) by PID; strace then exits
            kids = []
            for t in os.listdir("/proc/%d/task" % p.pid) if p.poll() is None else []:
                with open("/proc/%d/task/%s/children" % (p.pid, t)) as f:
                    kids += [int(x) for x in f.read().split()]
            for k in kids:
                os.kill(k, signal.SIGTERM)
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                for k in kids:
                    os.kill(k, signal.SIGKILL)
                p.wait(20)

        ev = strace_events(trace)
        # The journal: files synced with fdatasync whose writes are records
        # (the definitions log is synced too; its lines start otherwise).
        synced = {fd for name, fd, _, _, _, rc in ev if name == "fdatasync"}
        journal_fds = {fd for name, fd, _, _, data, rc in ev
                       if fd in synced and name.startswith(("write", "pwrite")) and
                       data and data.startswith(b"WJRL")}
        self.assertTrue(journal_fds, "warrend calls fdatasync on the journal")
        syncs = [(a, b) for name, fd, a, b, _, rc in ev
                 if name == "fdatasync" and fd in journal_fds and rc == 0]
        # The journal byte stream: which syscall completes the k-th record.
        stream, done = b"", []
        for name, fd, a, b, data, rc in ev:
            if fd in journal_fds and name.startswith(("write", "pwrite")) and data:
                stream += data[:rc]
                while len(stream) >= 12 and len(stream) >= 12 + struct.unpack(
                        ">I", stream[4:8])[0]:
                    n = 12 + struct.unpack(">I", stream[4:8])[0]
                    self.assertEqual(stream[:4], b"WJRL")
                    if stream[12:13] == b"P":
                        done.append(b)
                    stream = stream[n:]
        self.assertEqual(len(done), conf.seq, "one publish record per message")
        # The client's socket: the connection.start it was sent identifies it.
        acks, streams = [], {}
        for name, fd, a, b, data, rc in ev:
            if fd in journal_fds or not data or rc is None or rc <= 0:
                continue
            buf = streams.get(fd, b"") + data[:rc]
            if fd not in streams and buf[7:11] != b"\x00\x0a\x00\x0a":
                continue
            while len(buf) >= 8 and len(buf) >= 8 + struct.unpack(">I", buf[3:7])[0]:
                ftype, size = buf[0], struct.unpack(">I", buf[3:7])[0]
                payload, buf = buf[7:7 + size], buf[8 + size:]
                if ftype == 1 and payload[:4] == b"\x00\x3c\x00\x50":
                    tag, bits = struct.unpack(">QB", payload[4:13])
                    acks.append((tag, a))
            streams[fd] = buf
        self.assertTrue(acks, "the client's basic.ack frames are in the trace")
        self.assertEqual(max(t for t, _ in acks), conf.seq)
        bad = []
        for tag, at in acks:
            written = done[tag - 1]
            if not any(s > written and e < at for s, e in syncs):
                bad.append(tag)
        print("confirm/fdatasync: %d publishes, %d acks, %d fdatasyncs; every ack after a "
              "covering fdatasync: %s" % (conf.seq, len(acks), len(syncs), not bad),
              file=sys.stderr)
        self.assertFalse(bad, "acks sent before an fdatasync covering the record: tags %s"
                         % bad)


if __name__ == "__main__":
    harness.main()
