"""test_confirm_latency - after a kill -9 and restart, the first publisher
confirm comes promptly (issue 9, item 13).

warrend only (skipped when WARREN_TEST_PORT is set): the test SIGKILLs the
broker and restarts it on the same data directory and port.

The shape of the long kill -9 run that found it: three durable queues,
`lat.q0` and `lat.q1` fed through the default exchange and all three
through a durable fanout `lat.fan` (so `lat.q2` only gets fanout copies);
four raw publishers in confirm mode, up to WINDOW unconfirmed persistent
messages each. Each cycle (CYCLES, default 30):

  1. the broker is up (restarted after the previous cycle's kill); every
     second cycle a live consumer on `lat.q0` (prefetch 500) acks nine
     deliveries of ten and keeps the tenth unacked until the kill;
  2. the publishers connect, publish PER_CYCLE messages each and wait for
     their confirms; the latency of each publisher's first confirm is
     measured from the send of its first publish;
  3. the queues are drained (no-ack consumers), except every third cycle,
     when `lat.q2` is left alone: its fanout copies are then about a fifth
     of the (message, queue) pairs of that incarnation's journal segment,
     so after the restart that segment is compacted while the publishers
     of the next cycle start;
  4. SIGKILL, restart, and every queue holds at least what it held before
     the kill (nothing confirmed is lost).

Every publisher's first confirm must arrive within FIRST_CONFIRM_MAX
(500 ms) of its first publish, and every cycle's publishes must all be
confirmed. About 15 s (25 s under the sanitizers).

What went wrong (84fe4a0): compaction makes its copies durable with an
fdatasync of its own on the loop, which also covered the publishes of that
turn, but nobody was told: their confirms stayed queued, and the writer
thread, asked for a sync at the end of the same turn, found nothing left to
sync and sent no notification either. While compaction went on every
publish turn was swallowed that way, and once the publishers' windows were
full and compaction had ended, nothing was ever written again: no confirm
at all. test_confirm_covered_by_a_compaction_sync is the narrow case: one
publish in the first turn after a restart that compacts.

FlowControlConfirmTest (also against RabbitMQ): a publisher paused by flow
control for a queue whose only consumer sits at its prefetch limit is let
go once the queue delivers nothing for 250 ms, instead of never.

Environment: WARREN_LATENCY_CYCLES (default 30), WARREN_LATENCY_SEED.
"""
import os
import random
import select
import signal
import struct
import sys
import threading
import time
import unittest

import harness
from durability import Client, Confirms, warrend_only
from rawamqp import sstr

QUEUES = ["lat.q0", "lat.q1", "lat.q2"]
FANOUT = "lat.fan"
# (exchange, routing key): 30% to q0, 30% to q1, 40% through the fanout
ROUTES = [("", "lat.q0")] * 3 + [("", "lat.q1")] * 3 + [(FANOUT, "")] * 4
PUBLISHERS = 4
WINDOW = 1000          # unconfirmed publishes per publisher
PER_CYCLE = 5000       # publishes per publisher and cycle
BATCH = 100            # publishes per send
FIRST_CONFIRM_MAX = 0.5
GIVE_UP = 3.0          # no confirm at all after this long: the cycle failed
CYCLE_DEADLINE = 30.0  # everything confirmed within this
CYCLES = int(os.environ.get("WARREN_LATENCY_CYCLES", "30"))


def body_of(rng):
    return b"x" * rng.randrange(100, 500)


class Pub:
    def __init__(self, port, name):
        self.name = name
        self.c = Client(harness.HOST, port, timeout=10)
        self.c.channel(1)
        self.c.confirm_select(1)
        self.conf = Confirms()
        self.sent = 0
        self.t_first = None     # send of the first publish
        self.t_conf = None      # first confirm seen

    def fill(self, rng):
        data = []
        while self.sent < PER_CYCLE and len(self.conf.out) < WINDOW and len(data) < BATCH:
            x, rk = rng.choice(ROUTES)
            data.append(self.c.publish_bytes(1, x, rk, body_of(rng), delivery_mode=2))
            self.conf.sent(self.sent)
            self.sent += 1
        if data:
            if self.t_first is None:
                self.t_first = time.monotonic()
            self.c.send(b"".join(data))

    def done(self):
        return self.sent == PER_CYCLE and not self.conf.out


class LiveConsumer:
    """Acks nine deliveries of ten; the tenth stays unacked (prefetch 500)."""

    def __init__(self, port, queue):
        self.c = Client(harness.HOST, port, timeout=10)
        self.c.channel(1)
        self.c.qos(1, 500)
        self.c.consume(1, queue)
        self.n = 0
        self.unacked = 0

    def on_event(self, e):
        if e[0] != "deliver":
            raise AssertionError("live consumer got %r" % (e,))
        self.n += 1
        if self.n % 10:
            self.c.send(Client.ack_bytes(1, e[1].tag))
        else:
            self.unacked += 1


class ConfirmLatencyTest(unittest.TestCase):
    def setUp(self):
        reason = warrend_only()
        if reason:
            self.skipTest(reason)
        self.seed = int(os.environ.get("WARREN_LATENCY_SEED", random.randrange(1 << 30)))
        self.rng = random.Random(self.seed)
        print("seed %d (WARREN_LATENCY_SEED to repeat)" % self.seed, file=sys.stderr)

    def declare(self, b):
        c = Client(harness.HOST, b.port)
        c.channel(1)
        c.exchange_declare(1, FANOUT, "fanout")
        for q in QUEUES:
            c.queue_declare(1, q)
            c.queue_bind(1, q, FANOUT, "")
        c.close()

    def counts(self, b):
        c = Client(harness.HOST, b.port)
        c.channel(1)
        n = {q: c.queue_declare(1, q, passive=True)[1] for q in QUEUES}
        c.close()
        return n

    def publish(self, b, live):
        """Run the publishers to the end of their quota (or until they get
        no confirm at all for GIVE_UP seconds). Returns the publishers."""
        pubs = [Pub(b.port, "p%d" % i) for i in range(PUBLISHERS)]
        socks = {p.c.s: p for p in pubs}
        if live:
            socks[live.c.s] = live
        deadline = time.monotonic() + CYCLE_DEADLINE
        while not all(p.done() for p in pubs):
            now = time.monotonic()
            if now > deadline:
                break
            if any(p.t_conf is None and p.t_first is not None and now - p.t_first > GIVE_UP
                   for p in pubs):
                break
            for p in pubs:
                p.fill(self.rng)
            r, _, _ = select.select(list(socks), [], [], 0.01)
            for s in r:
                who = socks[s]
                for e in who.c.pump(0):
                    if who is live:
                        live.on_event(e)
                        continue
                    if e[0] not in ("ack", "nack"):
                        raise AssertionError("publisher got %r" % (e,))
                    if who.t_conf is None:
                        who.t_conf = time.monotonic()
                    who.conf.on_event(e)
        for p in pubs:
            p.c.close()
        return pubs

    def drain(self, b, queues):
        """Consume `queues` (no-ack) until they are empty."""
        c = Client(harness.HOST, b.port)
        c.channel(1)
        c.channel(2)
        for q in queues:
            c.consume(1, q, no_ack=True)
        deadline = time.monotonic() + CYCLE_DEADLINE
        while True:
            self.assertLess(time.monotonic(), deadline, "draining %s stalls" % queues)
            left = [c.queue_declare(2, q, passive=True)[1] for q in queues]
            while c.pump(0.05):
                pass
            if not any(left):
                break
        c.close()

    def test_first_confirm_after_restart(self):
        slow, stalled, log = [], [], []
        t0 = time.monotonic()
        with harness.broker() as b:
            self.declare(b)
            for cycle in range(1, CYCLES + 1):
                live = LiveConsumer(b.port, "lat.q0") if cycle % 2 == 0 else None
                pubs = self.publish(b, live)
                firsts = []
                for p in pubs:
                    self.assertIsNotNone(p.t_first)
                    lat = None if p.t_conf is None else p.t_conf - p.t_first
                    firsts.append(lat)
                    if lat is None or lat > FIRST_CONFIRM_MAX:
                        slow.append((cycle, p.name, lat))
                    if not p.done():
                        stalled.append((cycle, p.name, len(p.conf.out)))
                    self.assertFalse(p.conf.nacked, "cycle %d: %s got nacks" % (cycle, p.name))
                partial = cycle % 3 == 0
                self.drain(b, QUEUES[:2] if partial else QUEUES)
                before = self.counts(b)
                held = live.unacked if live else 0
                log.append("cycle %2d%s%s: first confirms %s ms; left %s" % (
                    cycle, " live consumer" if live else "", " partial drain" if partial else "",
                    ["-" if x is None else int(x * 1000) for x in firsts], before))
                self.assertTrue(b.alive(), "warrend died on its own in cycle %d" % cycle)
                harness.restart(b, signal.SIGKILL)
                if live:
                    live.c.close()
                after = self.counts(b)
                # nothing confirmed is lost (what the live consumer held is back)
                everything_confirmed = all(p.done() for p in pubs)
                if everything_confirmed:
                    self.assertGreaterEqual(after["lat.q0"], before["lat.q0"] + held,
                                            "cycle %d: lat.q0 lost messages" % cycle)
                    for q in QUEUES[1:]:
                        self.assertGreaterEqual(after[q], before[q],
                                                "cycle %d: %s lost messages" % (cycle, q))
        print("confirm latency: %d cycles in %.1f s\n  %s" % (
            CYCLES, time.monotonic() - t0, "\n  ".join(log)), file=sys.stderr)
        by_cycle = {}
        for cycle, name, lat in slow:
            by_cycle.setdefault(cycle, []).append(
                "%s: %s" % (name, "none" if lat is None else "%d ms" % (lat * 1000)))
        self.assertFalse(slow, "first confirm later than %d ms after the first publish "
                         "(none: not within %.0f s), by cycle: %s"
                         % (FIRST_CONFIRM_MAX * 1000, GIVE_UP, by_cycle))
        self.assertFalse(stalled, "publishes never confirmed (cycle, publisher, "
                                  "unconfirmed): %s" % stalled)

    def test_confirm_covered_by_a_compaction_sync(self):
        """The narrow case: after a restart, the oldest segment is mostly
        dead, so the turn of the first publish also compacts; the fdatasync
        compaction does on the loop covers the publish. Its confirm must
        come even though nothing else is ever written."""
        with harness.broker() as b:
            c = Client(harness.HOST, b.port)
            c.channel(1)
            c.confirm_select(1)
            c.queue_declare(1, "lat.work")
            c.queue_declare(1, "lat.keep")
            conf = Confirms()
            data = []
            for i in range(2000):
                q = "lat.keep" if i % 10 == 0 else "lat.work"
                data.append(c.publish_bytes(1, "", q, b"m%d" % i, delivery_mode=2))
                conf.sent(i)
            c.send(b"".join(data))
            deadline = time.monotonic() + 20
            while conf.out and time.monotonic() < deadline:
                for e in c.pump(0.1):
                    conf.on_event(e)
            self.assertFalse(conf.out, "2000 publishes confirmed")
            # consume lat.work: a tenth of the segment stays live
            for i in range(1800):
                self.assertIsNotNone(c.get(1, "lat.work", no_ack=True), "message %d" % i)
            self.assertIsNone(c.get(1, "lat.work", no_ack=True))
            c.close()
            harness.restart(b, signal.SIGKILL)

            c = Client(harness.HOST, b.port)
            c.channel(1)
            c.confirm_select(1)
            t0 = time.monotonic()
            c.send(c.publish_bytes(1, "", "lat.keep", b"after", delivery_mode=2))
            try:
                e = c.wait(lambda e: e[0] in ("ack", "nack"), GIVE_UP)
            except TimeoutError:
                e = None
            took = time.monotonic() - t0
            self.assertIn("compaction moved", b.log_text(), "the publish turn compacted")
            self.assertIsNotNone(e, "no confirm within %.0f s" % GIVE_UP)
            self.assertEqual(e[:3], ("ack", 1, 1))
            self.assertLess(took, FIRST_CONFIRM_MAX, "confirm after %.3f s" % took)
            self.assertEqual(c.queue_declare(1, "lat.keep", passive=True)[1], 201)
            c.close()


class FlowControlConfirmTest(harness.BrokerTestCase):
    """Flow control must not hold a publisher forever. A queue with over
    20,000 ready messages and consumers pauses its publishers so the
    consumers get the loop; but when every consumer is at its prefetch
    limit nothing drains, and 84fe4a0 held the publisher (and its
    confirms) until the consumer acked, which may be never: 20,501 of
    30,000 confirmed, then nothing. RabbitMQ 3.10 confirms them all."""

    def publish_confirmed(self, q, total, body, give_up, each_round=None):
        """A new connection publishes `total` messages to q with confirms,
        WINDOW outstanding, until all are confirmed or none came for
        give_up seconds; asserts they all were; returns the client."""
        p = Client(harness.HOST, self.broker.port)
        p.channel(1)
        p.confirm_select(1)
        conf = Confirms()
        sent = 0
        last = time.monotonic()
        while (sent < total or conf.out) and time.monotonic() - last < give_up:
            data = []
            while sent < total and len(conf.out) < WINDOW and len(data) < 100:
                data.append(p.publish_bytes(1, "", q, body))
                conf.sent(sent)
                sent += 1
            if data:
                p.send(b"".join(data))
            for e in p.pump(0.01):
                if conf.on_event(e):
                    last = time.monotonic()
            if each_round:
                each_round()
        self.assertEqual((sent, len(conf.out)), (total, 0),
                         "confirms stopped at %d of %d" % (len(conf.acked), total))
        return p

    def test_publisher_confirmed_while_the_consumer_is_at_its_prefetch(self):
        q = "flow-%d" % os.getpid()
        cons = Client(harness.HOST, self.broker.port)
        cons.channel(1)
        cons.queue_declare(1, q, durable=False, arguments={"x-expires": 2000})
        cons.qos(1, 500)
        cons.consume(1, q)  # never acks
        total = 30000
        p = self.publish_confirmed(q, total, b"x" * 100, GIVE_UP, lambda: cons.pump(0))
        self.assertEqual(p.queue_declare(1, q, passive=True)[1], total - 500)
        p.queue_delete(1, q)
        p.close()
        cons.close()

    def test_publisher_not_held_behind_a_slow_consumer(self):
        """A deep queue whose one consumer acks steadily but slowly (prefetch
        1, about 50 a second) drains from 20,000 to 10,000 in minutes.
        Before the pause had a limit the publisher was not read at all
        meanwhile: its later publishes unconfirmed and its connection.close
        unanswered (test_stress saw the close time out with I/O threads).
        A pause lasts at most a second, then the publisher is read for a
        while before it can be paused again, so it goes on, slowed."""
        q = "flow-slow-%d" % os.getpid()
        cons = Client(harness.HOST, self.broker.port)
        cons.channel(1)
        cons.queue_declare(1, q, durable=False, arguments={"x-expires": 2000})
        cons.qos(1, 1)
        cons.consume(1, q)
        stop = threading.Event()

        def slow_acker():
            while not stop.is_set():
                for e in cons.pump(0.02):
                    if e[0] == "deliver":
                        time.sleep(0.02)
                        cons.send(Client.ack_bytes(1, e[1].tag))
        t = threading.Thread(target=slow_acker, daemon=True)
        t.start()
        try:
            p = self.publish_confirmed(q, 24000, b"x" * 16, 30)
            t1 = time.monotonic()
            p.rpc(0, 10, 50, struct.pack(">H", 200) + sstr("bye") + struct.pack(">HH", 0, 0), 51,
                  timeout=30)
            self.assertLess(time.monotonic() - t1, 5, "connection.close answered late")
            p.close()
        finally:
            stop.set()
            t.join(5)
        cons.s.close()


if __name__ == "__main__":
    harness.main()
