#!/usr/bin/python3
"""test_stress - many connections doing everything at once, at random, then
an accounting (issue 17's stress test: it holds the single-threaded broker
to what the threaded one must keep).

STRESS_CONNECTIONS (200) client threads, each a raw AMQP connection
(durability.Client) after another, for STRESS_SECONDS (60):

  * half the connections publish 1-200 messages (each body a unique id)
    with confirms to one of 8 queues; most wait for every confirm, some are
    cut off (RST) right after sending;
  * the others consume from one of the queues (prefetch 1, 10 or 100) for
    up to a second, acking about nine in ten deliveries, then cancel, or
    just close, or are cut off (RST) with deliveries unacked;
  * a connection ends with connection.close, or with an RST.

Then every queue is drained, and:

  * every confirmed message was delivered at least once or is still queued
    (what was unacked when its consumer went is delivered again);
  * no client saw an error it did not cause (a channel or connection
    closed by the broker, a timeout);
  * the broker's open descriptors come back to what they were before, and
    its RSS to within 30 MB (not asserted under the sanitizers). Since flow
    control stopped holding publishers behind deep queues for good (a pause
    is at most a second), the queues here get deeper (about 200,000
    messages drained at the end) and the broker ends 1-21 MB over its idle
    RSS (9-28.4 MB measured with I/O threads); what holds the rest is not
    malloc's free lists (a trim does not lower it) and is not found yet.
"""
import os
import random
import socket
import struct
import threading
import time

import harness
from durability import Client, Closed, Confirms
from rawamqp import method, sstr

QUEUES = ["stress-%d" % i for i in range(8)]
ACTORS = int(os.environ.get("STRESS_CONNECTIONS", "200"))
SECONDS = float(os.environ.get("STRESS_SECONDS", "60"))


class Ledger:
    def __init__(self):
        self.lock = threading.Lock()
        self.confirmed = set()
        self.received = set()
        self.errors = []
        self.episodes = {"publish": 0, "consume": 0, "rst": 0, "close": 0, "cancel": 0}

    def note(self, kind):
        with self.lock:
            self.episodes[kind] += 1


def rst(c):
    """Cut the connection off: an RST, no AMQP close."""
    try:
        c.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        c.s.close()


def close(c):
    c.rpc(0, 10, 50, struct.pack(">H", 200) + sstr("bye") + struct.pack(">HH", 0, 0), 51,
          timeout=30)
    c.s.close()


def publish_episode(c, rng, ledger, me, seq):
    c.confirm_select(1)
    conf = Confirms()
    q = rng.choice(QUEUES)
    n = rng.randint(1, 200)
    data = []
    for _ in range(n):
        seq[0] += 1
        mid = "%d-%d" % (me, seq[0])
        conf.sent(mid)
        data.append(c.publish_bytes(1, "", q, mid.encode()))
    c.send(b"".join(data))
    ledger.note("publish")
    if rng.random() < 0.2:
        return False  # cut off before the confirms
    c.wait(lambda e: conf.on_event(e) and not conf.out, timeout=60)
    with ledger.lock:
        ledger.confirmed.update(conf.acked)
    return True


def consume_episode(c, rng, ledger):
    c.qos(1, rng.choice([1, 10, 100]))
    tag = c.consume(1, rng.choice(QUEUES))
    ledger.note("consume")
    end = time.monotonic() + rng.uniform(0.05, 1.0)
    acks = []
    while time.monotonic() < end:
        for e in c.pump(0.05):
            if e[0] != "deliver":
                continue
            with ledger.lock:
                ledger.received.add(e[1].body.decode())
            if rng.random() < 0.9:
                acks.append(Client.ack_bytes(1, e[1].tag))
        if acks:
            c.send(b"".join(acks))
            acks = []
    r = rng.random()
    if r < 0.3:
        c.rpc(1, 60, 30, sstr(tag) + b"\x00", 31, timeout=30)
        ledger.note("cancel")
    return r >= 0.2  # else cut off with deliveries unacked


def actor(port, me, deadline, ledger):
    rng = random.Random(me)
    seq = [0]
    while time.monotonic() < deadline:
        try:
            c = Client(harness.HOST, port, timeout=60)
        except OSError as e:
            with ledger.lock:
                ledger.errors.append("connect: %s" % e)
            time.sleep(0.1)
            continue
        step = "channel.open"
        try:
            c.channel(1)
            if rng.random() < 0.5:
                step = "publish"
                polite = publish_episode(c, rng, ledger, me, seq)
            else:
                step = "consume"
                polite = consume_episode(c, rng, ledger)
            if polite and rng.random() < 0.7:
                step = "connection.close"
                close(c)
                ledger.note("close")
            else:
                rst(c)
                ledger.note("rst")
        except (OSError, Closed, TimeoutError, AssertionError) as e:
            with ledger.lock:
                ledger.errors.append("%s in %s (client %d, local port %s): %s" %
                                     (type(e).__name__, step, me, local_port(c), e))
            try:
                rst(c)
            except OSError:
                pass


def local_port(c):
    try:
        return c.s.getsockname()[1]
    except OSError:
        return "?"


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class TestStress(harness.BrokerTestCase):
    def declare_ok_count(self, c, q):
        """The message count of a passive queue.declare."""
        a = c.rpc(1, 50, 10, struct.pack(">H", 0) + sstr(q) + b"\x01" + struct.pack(">I", 0),
                  11)
        n = a[0]
        return struct.unpack(">I", a[1 + n:5 + n])[0]

    def test_random_connections_lose_nothing_and_leak_nothing(self):
        c = Client(harness.HOST, self.broker.port)
        c.channel(1)
        for q in QUEUES:
            c.queue_declare(1, q, durable=False)
        close(c)
        fd0 = None

        def settled_fds():
            nonlocal fd0
            n = fd_count(self.broker.pid)
            ok = fd0 is not None and n == fd0
            fd0 = n
            return ok
        harness.wait_for(settled_fds, 10, "the broker's descriptors to settle")
        rss0 = self.broker.rss_kib()

        ledger = Ledger()
        deadline = time.monotonic() + SECONDS
        threads = [threading.Thread(target=actor, args=(self.broker.port, i, deadline, ledger),
                                    daemon=True) for i in range(ACTORS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(SECONDS + 180)
        self.assertFalse([t for t in threads if t.is_alive()], "clients still running")
        peak = self.broker.rss_kib()

        # Drain: what is left in each queue, with a consumer that acks nothing.
        drained = set()
        c = Client(harness.HOST, self.broker.port, timeout=60)
        c.channel(1)
        for q in QUEUES:
            n = self.declare_ok_count(c, q)
            if not n:
                continue
            c.send(method(1, 60, 20, struct.pack(">H", 0) + sstr(q) + sstr("drain-" + q)
                          + b"\x02" + struct.pack(">I", 0)))  # no_ack
            got = 0
            while got < n:
                e = c.wait(lambda e: e[0] == "deliver", timeout=60)
                drained.add(e[1].body.decode())
                got += 1
        close(c)

        lost = ledger.confirmed - ledger.received - drained
        print("%d connections for %.0f s: %s; %d confirmed, %d delivered, %d drained at the "
              "end; RSS %d -> %d KiB at the peak" %
              (ACTORS, SECONDS, ledger.episodes, len(ledger.confirmed), len(ledger.received),
               len(drained), rss0, peak))
        self.assertEqual(ledger.errors, [])
        self.assertGreater(len(ledger.confirmed), 1000, "the load was too light to mean much")
        self.assertEqual(sorted(lost)[:20], [], "%d confirmed messages lost" % len(lost))

        harness.wait_for(lambda: fd_count(self.broker.pid) <= fd0, 20,
                         "the broker's descriptors to come back to %d" % fd0)
        if os.environ.get("WARREN_SANITIZERS"):
            print("  (sanitizer build: freed memory is held; RSS bound not asserted)")
            return
        rss = [self.broker.rss_kib()]

        def rss_back():
            rss.append(self.broker.rss_kib())
            return rss[-1] <= rss0 + 30 * 1024
        try:
            harness.wait_for(rss_back, 10, "RSS back within 30 MB of %d KiB" % rss0)
        except AssertionError as e:
            raise AssertionError("%s: %d KiB after the drain, %d at the end" %
                                 (e, rss[0], rss[-1])) from None
        print("RSS after: %d KiB" % self.broker.rss_kib())


if __name__ == "__main__":
    harness.main()
