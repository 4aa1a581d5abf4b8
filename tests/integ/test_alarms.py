"""test_alarms - the memory alarm end to end: connection.blocked when a
publisher publishes over the high watermark, the publish held (not
dropped, not queued), other connections unaffected, and connection.unblocked
with the held publish delivered once memory falls below the watermark again
(issue 3, flow control); a burst sent in one go across the alarm arrives
whole, once. warrend-only: it starts its own broker with a
watermark of 64 MB (vm_memory_high_watermark.absolute).
"""
import os
import shutil
import struct
import tempfile
import threading
import time
import unittest

import harness
import rawamqp as r

LIMIT = 64 << 20
BODY = 256 * 1024


def _conf():
    d = tempfile.mkdtemp(prefix="warren-alarm-")
    path = os.path.join(d, "warren.conf")
    with open(path, "w") as f:
        f.write("vm_memory_high_watermark.absolute = %d\n" % LIMIT)
    return d, path


_DIR, _CONF = _conf()


def _client_props():
    return {"product": "test_alarms",
            "capabilities": {"connection.blocked": True}}


class AlarmTests(harness.BrokerTestCase):
    broker_args = ("-c", _CONF)

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(_DIR, ignore_errors=True)

    def peer(self):
        p = r.Peer(self.broker.host, self.broker.port)
        p.start()
        tune = p.login("PLAIN", client_properties=_client_props())
        self.assertEqual(p.tune_open(tune[3], channel_max=2047)[:3], (0, 10, 41))
        p.open_channel(1)
        return p

    def wait_method(self, p, cid, mid, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            f = p.recv_frame_within(deadline - time.monotonic())
            self.assertIsNotNone(f, "socket closed while waiting for %d.%d" % (cid, mid))
            if f == "timeout":
                break
            if f[0] == 1 and struct.unpack(">HH", f[2][:4]) == (cid, mid):
                return f
        self.fail("no %d.%d within %ds" % (cid, mid, timeout))

    def ready(self, p, q):
        p.send(r.queue_declare(1, q, passive=True))
        f = self.wait_method(p, 50, 11)
        n = f[2][4]
        return struct.unpack(">I", f[2][5 + n:9 + n])[0]

    def publisher_and_queue(self):
        """A new queue, a peer to publish and another to watch the queue."""
        if self.external:
            self.skipTest("needs warrend started with a 64 MB watermark")
        q = self.unique()
        pub, other = self.peer(), self.peer()
        other.send(r.queue_declare(1, q))
        self.wait_method(other, 50, 11)
        return q, pub, other

    def test_blocked_then_unblocked(self):
        q, pub, other = self.publisher_and_queue()
        # Publish 256 KiB bodies until the broker says connection.blocked,
        # in lockstep: a passive declare after each publish is answered
        # once the broker has taken the publish, or waits behind it when
        # the broker blocks. (A publisher that runs ahead of a slow broker
        # fills the socket buffers, and its send then stalls where the
        # broker stopped reading, before it can read connection.blocked.)
        sent = 0
        blocked = None
        deadline = time.monotonic() + 30
        while blocked is None and time.monotonic() < deadline:
            pub.send(r.publish(1, "", q, b"m" * BODY) + r.queue_declare(1, q, passive=True))
            sent += 1
            while True:
                f = pub.recv_frame_within(max(0.1, deadline - time.monotonic()))
                self.assertNotIn(f, ("timeout", None), "no declare-ok or connection.blocked")
                if f[0] == 1 and f[2][:4] == b"\x00\x0a\x00\x3c":
                    blocked = f
                    break
                if f[0] == 1 and f[2][:4] == b"\x00\x32\x00\x0b":
                    break
        self.assertIsNotNone(blocked, "no connection.blocked after %d MB" % (sent * BODY >> 20))
        self.assertIn(b"memory", blocked[2])
        # Held, not dropped: the queue has fewer than we sent, and it stays so.
        time.sleep(0.3)
        queued = self.ready(other, q)
        self.assertLess(queued, sent)
        self.assertLessEqual(queued * BODY, LIMIT)
        # Another connection is served normally meanwhile.
        p3 = self.peer()
        p3.send(r.queue_declare(1, self.unique("free")))
        self.wait_method(p3, 50, 11)
        # Draining the queue frees memory: unblocked within a tick or two,
        # and every held publish arrives.
        other.send(r.method(1, 50, 30, struct.pack(">H", 0) + r.sstr(q) + b"\x00"))
        self.wait_method(other, 50, 31)
        self.wait_method(pub, 10, 61, timeout=10)
        deadline = time.monotonic() + 10
        total = queued
        while time.monotonic() < deadline:
            n = self.ready(other, q)
            if total + n >= sent:
                break
            time.sleep(0.1)
        self.assertEqual(total + self.ready(other, q), sent,
                         "a held publish was lost after the alarm cleared")
        for p in (pub, other, p3):
            p.close()

    def purge(self, p, q):
        """queue.purge; the number of messages it removed."""
        p.send(r.method(1, 50, 30, struct.pack(">H", 0) + r.sstr(q) + b"\x00"))
        return struct.unpack(">I", self.wait_method(p, 50, 31)[2][4:8])[0]

    def test_burst_held_and_resumed(self):
        """Thousands of publishes sent in one go, the alarm raised in the
        middle of them: the rest are held, and as memory is freed again
        every one arrives, once, and the publisher's connection stays
        whole. With I/O threads the alarm falls inside runs of publishes
        that share a marker (net/asm.h), which the core resumes where it
        stopped."""
        q, pub, other = self.publisher_and_queue()
        sent = 30000
        burst = b"".join(r.publish(1, "", q, b"b" * 4096) for _ in range(sent))
        pub.s.settimeout(90)  # held sends wait for the alarm to clear
        sender = threading.Thread(target=pub.s.sendall, args=(burst,), daemon=True)
        sender.start()
        blocked = self.wait_method(pub, 10, 60, timeout=30)  # connection.blocked
        self.assertIn(b"memory", blocked[2])
        # Take the messages away as they come until the burst is all in.
        taken = 0
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            taken += self.purge(other, q)
            if not sender.is_alive() and taken + self.ready(other, q) >= sent:
                break
            time.sleep(0.1)
        sender.join(1)
        self.assertFalse(sender.is_alive(), "the burst was never read in full")
        taken += self.purge(other, q)
        self.assertEqual(taken, sent, "publishes lost or repeated across the alarm")
        # The publisher's connection is whole: a declare on it is answered.
        pub.send(r.queue_declare(1, q, passive=True))
        f = pub.recv_frame_within(10)
        while f not in ("timeout", None) and f[0] == 1 and f[2][:4] in (b"\x00\x0a\x00\x3c",
                                                                         b"\x00\x0a\x00\x3d"):
            f = pub.recv_frame_within(10)  # connection.blocked / unblocked
        self.assertNotIn(f, ("timeout", None), "the publisher's connection is gone")
        self.assertEqual(f[2][:4], b"\x00\x32\x00\x0b", f)  # queue.declare-ok
        for p in (pub, other):
            p.close()


if __name__ == "__main__":
    harness.main()
