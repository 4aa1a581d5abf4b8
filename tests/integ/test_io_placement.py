#!/usr/bin/python3
"""Where sockets run with I/O threads (io_threads.placement = adaptive,
net/io.h): on the broker's own thread while it is mostly idle, so that a
lightly loaded broker pays no hand-off between threads, on the I/O threads
once it is busy, and back when the load is gone; a connection keeps
working, in order, across the moves. /api/connections says where each
socket is now ("io_thread": "core" or "warren-io-N", Warren's own field).

Warren only: RabbitMQ has no such field."""
import os
import struct
import threading
import time
import unittest

import harness
import mgmtcase
import rawamqp


class TestPlacement(mgmtcase.MgmtTestCase):
    broker_args = ("-s", "io_threads=2", "-s", "io_threads.placement=adaptive")

    def setUp(self):
        if self.external:
            self.skipTest("Warren's own field")

    def places(self):
        return {c["name"]: c["io_thread"] for c in self.get_ok("/api/connections")}

    def new_queue(self, **args):
        n = self.unique("q")
        r = self.put("/api/queues/%%2F/%s" % mgmtcase.q(n), {"arguments": args})
        self.assertIn(r.status, (201, 204), r)
        self.addCleanup(self.delete, "/api/queues/%%2F/%s" % mgmtcase.q(n))
        return n

    def test_light_load_stays_on_the_core(self):
        """A publisher and a consumer at a few hundred messages a second
        (a tenth of that in a sanitizer build): both sockets stay on the
        core the whole time."""
        n = self.new_queue()
        conn = self.connect()
        self.addCleanup(conn.close)
        ch = conn.channel()
        ch.confirm_delivery()
        got = []
        ch.basic_consume(n, lambda c, m, p, b: got.append(int(b)), auto_ack=True)
        # On the core to begin with (what an earlier test did may have
        # made the core busy for a while).
        self.wait_for(lambda: list(self.places().values()) == ["core"], timeout=20,
                      what="the connection listed, on the core")
        # A sanitizer build's core is 5-20 times slower: the same load is
        # not light there, so it is a tenth.
        pace = 0.02 if os.environ.get("WARREN_SANITIZERS") else 0.002
        seen = set()
        deadline = time.monotonic() + 1.5
        i = 0
        while time.monotonic() < deadline:
            ch.basic_publish("", n, str(i).encode())
            i += 1
            time.sleep(pace)  # (process_data_events returns at the first event)
            conn.process_data_events(0)
            if i % 50 == 0:
                seen.update(self.places().values())
        self.wait_for(lambda: conn.process_data_events(0.05) or len(got) == i,
                      what="every message consumed")
        self.assertEqual(got, list(range(i)))
        seen.update(self.places().values())
        self.assertEqual(seen, {"core"}, "a socket left the core under a light load")

    def test_busy_core_moves_sockets_and_back(self):
        """A publisher flooding the broker makes the core busy: every
        socket moves to an I/O thread (an idle one too), and comes back to
        the core within seconds of the flood's end. Both connections work
        throughout and afterwards."""
        flood_q = self.new_queue(**{"x-max-length": 5000})
        idle = self.connect()
        self.addCleanup(idle.close)
        idle_ch = idle.channel()
        idle_q = idle_ch.queue_declare("", exclusive=True).method.queue
        self.wait_for(lambda: list(self.places().values()) == ["core"],
                      what="the idle connection on the core")

        pub = rawamqp.Peer(harness.HOST, self.broker.port)
        self.addCleanup(pub.close)
        pub.handshake()
        pub.open_channel(1)
        chunk = b"".join(rawamqp.publish(1, "", flood_q, struct.pack(">Q", i))
                         for i in range(20000))
        stop = threading.Event()
        sent = [0]

        def flood():
            deadline = time.monotonic() + 60
            while not stop.is_set() and time.monotonic() < deadline:
                pub.s.sendall(chunk)
                sent[0] += 20000

        sender = threading.Thread(target=flood, daemon=True)
        sender.start()
        try:
            moved = self.wait_for(
                lambda: (lambda p: len(p) == 2 and all(v.startswith("warren-io-")
                                                       for v in p.values()) and p)(
                    self.places()), timeout=30, what="both sockets on I/O threads")
        finally:
            stop.set()
            sender.join(70)
        self.assertFalse(sender.is_alive())
        self.assertEqual(len(moved), 2)
        # The flood is over: back on the core (a second below 10% busy).
        self.wait_for(lambda: set(self.places().values()) == {"core"}, timeout=20,
                      what="the sockets back on the core")
        # Both connections whole: the flooder's next reply is its own,
        # after every publish it sent; the idle one round-trips.
        pub.send(rawamqp.queue_declare(1, flood_q, passive=True))
        reply = pub.recv_method()
        self.assertEqual(reply[1:3], (50, 11), "the publisher's connection: %r" % (reply,))
        self.wait_for(lambda: self.get_ok("/api/queues/%%2F/%s" % mgmtcase.q(flood_q))
                      .get("messages") == 5000, what="the flood queue full")
        idle_ch.confirm_delivery()
        idle_ch.basic_publish("", idle_q, b"after")
        m = idle_ch.basic_get(idle_q, auto_ack=True)
        self.assertEqual(m[2], b"after")
        self.assertGreater(sent[0], 0)


if __name__ == "__main__":
    harness.main()
