"""test_channel - the AMQP 0-9-1 channel layer, end to end.

Covers: channel.open / channel.close (and reuse of a closed channel's
number), a second channel.open on an open channel (504 connection error), a
frame on a channel that was never opened (504), a channel error closing only
its own channel while the connection's other channels keep working (raw and
pika), frames discarded between a broker's channel.close and the client's
close-ok, channel.flow from the client, channel_max enforcement, and content
framing: a 1 MB body through frame_max 4096 (raw, every frame checked against
frame_max; pika; rabbitmq-c's amqp-publish / amqp-get) and an empty body.

Validated against RabbitMQ 3.10 (WARREN_TEST_PORT=5673); the surprising
things RabbitMQ does are noted next to each test.
"""
import hashlib
import os
import struct
import subprocess
import time

import harness
import rawamqp as r
from rawamqp import method, sstr

MB = 1024 * 1024


class ChannelTests(harness.BrokerTestCase):

    def opened(self, **kw):
        return r.open_peer(self.broker.host, self.broker.port, **kw)

    def declare(self, p, ch, name, **kw):
        p.send(r.queue_declare(ch, name, **kw))
        m = p.recv_method()
        self.assertIsNotNone(m, "connection closed instead of declare-ok")
        self.assertEqual(m[:3], (ch, 50, 11), m)
        return m

    def get_retry(self, p, ch, q, timeout=5.0):
        """basic.get on a raw peer until a message comes (a publish made on
        another channel or connection may still be on its way); returns
        (get-ok args, header payload, body)."""
        deadline = time.monotonic() + timeout
        while True:
            p.send(r.basic_get(ch, q))
            m = p.recv_method()
            self.assertIsNotNone(m, "connection closed instead of get-ok")
            if m[:3] == (ch, 60, 71):
                break
            self.assertEqual(m[:3], (ch, 60, 72), m)  # get-empty
            self.assertLess(time.monotonic(), deadline, "no message in %s" % q)
            time.sleep(0.02)
        t, c, hdr = p.recv_frame()
        self.assertEqual((t, c), (r.HEADER, ch))
        size = struct.unpack(">Q", hdr[4:12])[0]
        body = b""
        while len(body) < size:
            t, c, payload = p.recv_frame()
            self.assertEqual((t, c), (r.BODY, ch))
            body += payload
        return m[3], hdr, body

    def amqp_url(self):
        return "amqp://guest:guest@%s:%d" % (self.broker.host, self.broker.port)

    # ---- open / close ---------------------------------------------------

    def test_open_close_reopen(self):
        p = self.opened()
        for ch in (1, 2, 7, 2047):
            p.send(method(ch, 20, 10, sstr("")))
            m = p.recv_method()
            # channel.open-ok carries a (deprecated) empty long string.
            self.assertEqual(m, (ch, 20, 11, b"\x00\x00\x00\x00"))
        p.send(method(7, 20, 40, r.close_method(200, "done")))
        self.assertEqual(p.recv_method(), (7, 20, 41, b""))
        # The number of a closed channel can be used again.
        p.open_channel(7)
        self.declare(p, 7, "", exclusive=True)
        p.close()

    def test_pika_many_channels(self):
        conn = self.connect()
        try:
            chans = [conn.channel() for _ in range(20)]
            nums = [c.channel_number for c in chans]
            self.assertEqual(len(set(nums)), 20)
            for c in chans[::2]:
                c.close()
            q = self.unique()
            chans[1].queue_declare(q, exclusive=True)
            for i, c in enumerate(chans[1::2]):
                c.confirm_delivery()  # publish returns once the queue has it
                c.basic_publish("", q, str(i).encode())
            got = []
            for _ in range(10):
                _, _, body = chans[3].basic_get(q, auto_ack=True)
                got.append(body)
            # Order holds per channel only; these came over ten channels.
            self.assertEqual(sorted(got), [str(i).encode() for i in range(10)])
        finally:
            conn.close()

    def test_second_open_same_channel(self):
        # RabbitMQ: connection.close 504 "CHANNEL_ERROR - second 'channel.open'
        # seen", class/method 20/10 - a connection error, not a channel one.
        p = self.opened()
        p.open_channel(1)
        p.send(method(1, 20, 10, sstr("")))
        res = p.wait_close(5)
        self.assertEqual(res[:3], ("close", 0, r.CHANNEL_ERROR), res)
        self.assertEqual(res[4:], (20, 10))
        self.assertTrue(res[3].startswith("CHANNEL_ERROR"), res[3])
        self.assertTrue(p.closed(5))
        p.close()

    def test_frame_on_unopened_channel(self):
        # RabbitMQ: 504 "CHANNEL_ERROR - expected 'channel.open'" with the
        # offending class/method, for any method on a never-opened channel
        # (channel.close and channel.close-ok included). A content header on
        # such a channel is 505 UNEXPECTED_FRAME ("expected method frame,
        # got non method frame instead").
        cases = [
            ("queue.declare", r.queue_declare(2, "x"), r.CHANNEL_ERROR, (50, 10)),
            # (a publish is judged once its content is complete)
            ("basic.publish", r.publish(3, "", "x", b"abc"), r.CHANNEL_ERROR, (60, 40)),
            ("channel.close", method(2, 20, 40, r.close_method()), r.CHANNEL_ERROR, (20, 40)),
            ("channel.close-ok", method(2, 20, 41), r.CHANNEL_ERROR, (20, 41)),
            ("content header", r.content_header(2, 3), r.UNEXPECTED_FRAME, None),
        ]
        for name, data, code, cm in cases:
            with self.subTest(frame=name):
                p = self.opened()
                p.open_channel(1)
                p.send(data)
                res = p.wait_close(5)
                self.assertEqual(res[:3], ("close", 0, code), res)
                if cm:
                    self.assertEqual(res[4:], cm)
                self.assertTrue(p.closed(5))
                p.close()

    # ---- channel errors stay on their channel --------------------------

    def test_channel_error_is_isolated_raw(self):
        # queue.declare passive on a missing queue -> channel.close 404
        # "NOT_FOUND - no queue '...' in vhost '/'", class/method 50/10, on
        # that channel only. Until the client's close-ok, frames on that
        # channel are discarded silently; the other channels work meanwhile.
        p = self.opened()
        for ch in (1, 2, 3):
            p.open_channel(ch)
        missing = self.unique("missing")
        q = self.unique()
        self.declare(p, 1, q, exclusive=True)
        p.send(r.queue_declare(2, missing, passive=True))
        m = p.recv_method()
        self.assertEqual(m[:3], (2, 20, 40), m)
        code, text, cid, mid = r.parse_close(m[3])
        self.assertEqual(code, r.NOT_FOUND)
        self.assertTrue(text.startswith("NOT_FOUND"), text)
        self.assertIn(missing, text)
        self.assertEqual((cid, mid), (50, 10))
        # Discarded: neither a reply nor a second error.
        p.send(r.basic_get(2, q) + r.queue_declare(2, missing, passive=True))
        self.assertEqual(p.recv_frame_within(1.0), "timeout")
        # Channels 1 and 3 still publish and get.
        # (Order across channels is not defined: compare as a set.)
        p.send(r.publish(1, "", q, b"one") + r.publish(3, "", q, b"three"))
        got = {self.get_retry(p, 3, q)[2], self.get_retry(p, 1, q)[2]}
        self.assertEqual(got, {b"one", b"three"})
        p.send(method(2, 20, 41))
        p.open_channel(2)  # the number is free again after close-ok
        self.declare(p, 2, q, passive=True)
        p.close()

    def test_channel_error_is_isolated_pika(self):
        import pika
        conn = self.connect()
        try:
            c1, c2, c3 = conn.channel(), conn.channel(), conn.channel()
            c1.confirm_delivery()  # publishes return once the queue has them
            c3.confirm_delivery()
            q = self.unique()
            c1.queue_declare(q, exclusive=True)
            with self.assertRaises(pika.exceptions.ChannelClosedByBroker) as cm:
                c2.queue_declare(self.unique("missing"), passive=True)
            self.assertEqual(cm.exception.reply_code, 404)
            self.assertTrue(c2.is_closed)
            self.assertTrue(c1.is_open and c3.is_open and conn.is_open)
            c1.basic_publish("", q, b"a")
            c3.basic_publish("", q, b"b")
            got = {c3.basic_get(q, auto_ack=True)[2], c1.basic_get(q, auto_ack=True)[2]}
            self.assertEqual(got, {b"a", b"b"})
            self.assertEqual(c1.queue_declare(q, passive=True).method.message_count, 0)
        finally:
            conn.close()

    # ---- channel.flow ----------------------------------------------------

    def test_channel_flow_from_client(self):
        # active=true -> channel.flow-ok active=true.
        p = self.opened()
        p.open_channel(1)
        p.send(method(1, 20, 20, b"\x01"))
        self.assertEqual(p.recv_method(), (1, 20, 21, b"\x01"))
        self.declare(p, 1, "", exclusive=True)
        p.close()
        # SURPRISE: RabbitMQ does not implement client-side flow control:
        # active=false is a CONNECTION error 540 "NOT_IMPLEMENTED -
        # active=false", class/method 20/20 (not a flow-ok).
        p = self.opened()
        p.open_channel(1)
        p.send(method(1, 20, 20, b"\x00"))
        res = p.wait_close(5)
        self.assertEqual(res[:3], ("close", 0, r.NOT_IMPLEMENTED), res)
        self.assertEqual(res[4:], (20, 20))
        self.assertIn("active=false", res[3])
        p.close()

    # ---- channel_max -------------------------------------------------------

    def test_channel_max_limits_open_channels(self):
        # RabbitMQ counts channels: with channel_max 3 the 4th open channel
        # is refused with connection.close 530 "NOT_ALLOWED - number of
        # channels opened (3) has reached the negotiated channel_max (3)",
        # class/method 0/0. A closed channel frees its slot.
        p = self.opened(channel_max=3)
        for ch in (1, 2, 3):
            p.open_channel(ch)
        for ch in (2, 3):  # close two and reopen them under other numbers
            p.send(method(ch, 20, 40, r.close_method()))
            self.assertEqual(p.recv_method(), (ch, 20, 41, b""))
        p.open_channel(5)
        p.open_channel(6)
        self.declare(p, 6, "", exclusive=True)
        # Now 1, 5 and 6 are open: one more is one too many.
        p.send(method(2, 20, 10, sstr("")))
        res = p.wait_close(5)
        self.assertEqual(res[:3], ("close", 0, r.NOT_ALLOWED), res)
        self.assertTrue(res[3].startswith("NOT_ALLOWED"), res[3])
        self.assertTrue(p.closed(5))
        p.close()

    def test_channel_max_server_default(self):
        # With the server's 2047: channels 1..2047 open, one more is 530.
        p = self.opened()
        self.assertEqual(p.channel_max, 2047)
        p.send(b"".join(method(ch, 20, 10, sstr("")) for ch in range(1, 2048)))
        # Channels are independent: their open-oks may come in any order.
        opened = set()
        for _ in range(1, 2048):
            m = p.recv_method()
            self.assertEqual(m[1:3], (20, 11), m)
            opened.add(m[0])
        self.assertEqual(opened, set(range(1, 2048)))
        p.send(method(2048, 20, 10, sstr("")))
        res = p.wait_close(5)
        self.assertEqual(res[:3], ("close", 0, r.NOT_ALLOWED), res)
        p.close()

    def test_channel_number_above_channel_max(self):
        # SURPRISE: RabbitMQ enforces channel_max only as a COUNT of open
        # channels, never as a bound on the channel NUMBER: with channel_max
        # 10 negotiated, channels 11 and 65535 open fine (channel.open-ok).
        # The spec says usable numbers are 1..channel_max; Warren follows
        # RabbitMQ (drop-in). Channel 0 is the connection's: channel.open on
        # it is 504 "CHANNEL_ERROR - unexpected method in connection state
        # running".
        p = self.opened(channel_max=10)
        for ch in (11, 65535):
            p.send(method(ch, 20, 10, sstr("")))
            self.assertEqual(p.recv_method()[:3], (ch, 20, 11))
        self.declare(p, 65535, "", exclusive=True)
        p.send(method(0, 20, 10, sstr("")))
        res = p.wait_close(5)
        self.assertEqual(res[:3], ("close", 0, r.CHANNEL_ERROR), res)
        self.assertEqual(res[4:], (20, 10))
        p.close()

    # ---- content framing -------------------------------------------------

    def test_large_message_raw_frame_max_4096(self):
        # 1 MB through frame_max 4096: the client splits it into 4088-byte
        # body frames; the broker must deliver it intact, and never send a
        # frame larger than the negotiated 4096 bytes.
        p = self.opened(frame_max=4096)
        self.assertEqual(p.frame_max, 4096)
        p.open_channel(1)
        q = self.unique()
        self.declare(p, 1, q, exclusive=True)
        body = os.urandom(MB)
        p.send(r.publish(1, "", q, body, frame_max=4096))
        p.send(r.basic_consume(1, q, tag="c1", no_ack=True))
        m = p.recv_method()
        self.assertEqual(m[:3], (1, 60, 21), m)
        m = p.recv_method()
        self.assertEqual(m[:3], (1, 60, 60), m)  # basic.deliver
        t, ch, hdr = p.recv_frame()
        self.assertEqual((t, ch), (r.HEADER, 1))
        cls, weight, size = struct.unpack(">HHQ", hdr[:12])
        self.assertEqual((cls, weight, size), (60, 0, MB))
        got, frames = [], 0
        while sum(map(len, got)) < MB:
            t, ch, payload = p.recv_frame()
            self.assertEqual((t, ch), (r.BODY, 1))
            self.assertLessEqual(len(payload) + 8, 4096, "body frame exceeds frame_max")
            self.assertGreater(len(payload), 0)
            got.append(payload)
            frames += 1
        self.assertEqual(b"".join(got), body)
        self.assertGreaterEqual(frames, -(-MB // 4088))
        self.assertEqual(p.recv_frame_within(0.3), "timeout", "extra frames after the body")
        p.close()

    def test_large_message_pika_frame_max_4096(self):
        conn = self.connect(frame_max=4096)
        try:
            self.assertEqual(conn._impl.params.frame_max, 4096)
            ch = conn.channel()
            q = self.unique()
            ch.queue_declare(q, exclusive=True)
            bodies = [os.urandom(MB), os.urandom(MB - 1), b"small"]
            for b in bodies:
                ch.basic_publish("", q, b)
            _, _, got = ch.basic_get(q, auto_ack=True)
            self.assertEqual(got, bodies[0])
            received = []
            for m, _, b in ch.consume(q, auto_ack=True, inactivity_timeout=10):
                self.assertIsNotNone(m, "timed out waiting for a delivery")
                received.append(b)
                if len(received) == 2:
                    break
            ch.cancel()
            self.assertEqual(received, bodies[1:])
        finally:
            conn.close()

    def test_large_message_rabbitmq_c(self):
        # rabbitmq-c's amqp-publish (frame_max 131072) -> pika with frame_max
        # 4096, and pika (4096) -> amqp-get.
        url = self.amqp_url()
        q = self.unique("rmqc-big")
        conn = self.connect(frame_max=4096)
        try:
            ch = conn.channel()
            ch.queue_declare(q, auto_delete=False)
            body = os.urandom(MB)
            pub = subprocess.run(["amqp-publish", "--url", url, "-r", q], input=body,
                                 capture_output=True, timeout=30)
            self.assertEqual(pub.returncode, 0, pub.stderr)
            deadline = time.monotonic() + 5
            m, _, got = ch.basic_get(q, auto_ack=True)
            while m is None and time.monotonic() < deadline:
                time.sleep(0.02)
                m, _, got = ch.basic_get(q, auto_ack=True)
            self.assertIsNotNone(m, "amqp-publish's message did not arrive")
            self.assertEqual(hashlib.sha256(got).hexdigest(), hashlib.sha256(body).hexdigest())
            body2 = os.urandom(MB + 12345)
            ch.confirm_delivery()
            ch.basic_publish("", q, body2)
            get = subprocess.run(["amqp-get", "--url", url, "-q", q], capture_output=True,
                                 timeout=30)
            self.assertEqual(get.returncode, 0, get.stderr)
            self.assertEqual(len(get.stdout), len(body2))
            self.assertEqual(get.stdout, body2)
            # The queue is empty now: amqp-get says so with exit status 2.
            get = subprocess.run(["amqp-get", "--url", url, "-q", q], capture_output=True,
                                 timeout=30)
            self.assertEqual(get.returncode, 2)
            self.assertEqual(get.stdout, b"")
        finally:
            try:
                conn.channel().queue_delete(q)
            finally:
                conn.close()

    def test_empty_body(self):
        # A zero-length body is a content header with body_size 0 and no body
        # frame at all, both ways.
        p = self.opened()
        p.open_channel(1)
        q = self.unique()
        self.declare(p, 1, q, exclusive=True)
        p.send(r.basic_publish(1, "", q) + r.content_header(1, 0))
        p.send(r.basic_get(1, q))
        m = p.recv_method()
        self.assertEqual(m[:3], (1, 60, 71), m)
        t, ch, hdr = p.recv_frame()
        self.assertEqual((t, ch), (r.HEADER, 1))
        self.assertEqual(struct.unpack(">HHQ", hdr[:12]), (60, 0, 0))
        self.assertEqual(p.recv_frame_within(0.5), "timeout", "a body frame for an empty body")
        p.close()


if __name__ == "__main__":
    harness.main()
