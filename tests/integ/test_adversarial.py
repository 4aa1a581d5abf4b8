"""test_adversarial - malformed and hostile AMQP input, through the raw peer.

Each case opens its own raw connection (rawamqp), sends something a correct
client never would, and checks how the broker ends that connection: the
exact connection.close reply code (501 FRAME_ERROR, 504 CHANNEL_ERROR, 505
UNEXPECTED_FRAME, 530 NOT_ALLOWED, 540 NOT_IMPLEMENTED, ...) or a dropped
socket. Covered: garbage after the protocol header, oversized frames (before
and after tune), a bad frame-end octet, an unknown frame type, truncated
method arguments, a channel method on channel 0, content frames out of
order (body without header, header without method, a method inside a
content, a header of the wrong class, content on channel 0), heartbeats on
a channel or with a payload, basic.publish immediate=true, 10,000 pipelined
channel.open, a field table nested 10,000 deep, unknown method and class
ids, an unknown field-value type, and a peer that vanishes mid-frame.

Throughout, a well-behaved pika connection (the bystander) stays open; after
EVERY case it must still declare, publish and get, which shows the broker
survived and keeps serving others.

Validated against RabbitMQ 3.10 (WARREN_TEST_PORT=5673). Where RabbitMQ
merely drops the socket (unknown method/class, unknown field type) the
general assertion is "the connection ends, with or without a close", and
against warrend the exact code Warren sends is asserted.
"""
import os
import struct
import time

import harness
import rawamqp as r
from rawamqp import frame, method, sstr


def nested_table(depth):
    """A field table nested `depth` deep ({"a": {"a": ... {}}}), built
    iteratively (a recursive encoder would hit Python's recursion limit)."""
    inner = r.table()
    for _ in range(depth):
        inner = r.table(sstr("a") + b"F" + inner)
    return inner


class AdversarialTests(harness.BrokerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        import pika
        cls.bystander = pika.BlockingConnection(pika.ConnectionParameters(
            host=cls.broker.host, port=cls.broker.port, heartbeat=0,
            blocked_connection_timeout=30))
        cls.by_ch = cls.bystander.channel()
        cls.by_ch.confirm_delivery()

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.bystander.is_open:
                cls.bystander.close()
        finally:
            super().tearDownClass()

    # ---- helpers --------------------------------------------------------

    def opened(self, **kw):
        return r.open_peer(self.broker.host, self.broker.port, **kw)

    def assert_bystander_serves(self):
        """The connection opened before all cases still works: declare a
        queue, publish to it (confirmed), get the message back, delete."""
        self.assertTrue(self.broker.alive(), "warrend died")
        self.assertTrue(self.bystander.is_open, "the bystander connection was closed")
        q = self.unique("bystander")
        ch = self.by_ch
        ch.queue_declare(q, exclusive=True)
        body = ("still here after %s" % self.id()).encode()
        ch.basic_publish("", q, body)
        m, _, got = ch.basic_get(q, auto_ack=True)
        self.assertIsNotNone(m, "bystander's message was not there")
        self.assertEqual(got, body)
        self.assertEqual(ch.queue_delete(q).method.message_count, 0)

    def case(self, data, code=None, codes=None, cm=None, eof_ok=False, channels=(1,),
             sock_close=True, ext_eof=False, warren_code=None, **tune):
        """Open a raw connection (with `channels` open), send data, and
        check how the broker ends the connection:
          code         exact connection.close reply code expected
          codes        any of these codes (or eof when eof_ok)
          cm           expected (class_id, method_id) of the close
          eof_ok       a socket closed without a close frame is accepted
          ext_eof      against RabbitMQ expect exactly that bare close
          warren_code  against warrend expect exactly this code
        Returns wait_close's result. Then checks the bystander."""
        p = self.opened(**tune)
        for ch in channels:
            p.open_channel(ch)
        t0 = time.monotonic()
        try:
            p.send(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        res = p.wait_close(timeout=10)
        if not self.external and warren_code is not None:
            code, codes, eof_ok = warren_code, None, False
        if self.external and ext_eof:
            self.assertEqual(res, ("eof",))
        elif code is not None:
            self.assertEqual(res[:3], ("close", 0, code), res)
        else:
            allowed = [("close", 0, c) for c in (codes or ())]
            if eof_ok:
                allowed.append(("eof",))
            self.assertIn(res[:3], allowed, res)
        if res[0] == "close":
            self.assertTrue(res[3].split(" ", 1)[0].isupper(),
                            "reply text should start with the code's name: %r" % res[3])
            if cm is not None:
                self.assertEqual(res[4:], cm, res)
            if sock_close:
                # RabbitMQ takes ~3 s here after some frame errors.
                self.assertTrue(p.closed(10), "socket left open after close-ok")
        print("    %s -> %r (%.2f s)" % (self.id().rsplit(".", 1)[-1], res,
                                         time.monotonic() - t0))
        p.close()
        self.assert_bystander_serves()
        return res

    # ---- framing ----------------------------------------------------------

    def test_garbage_after_header(self):
        # RabbitMQ reads the garbage as a frame header: 501 "FRAME_ERROR -
        # type 104, all octets = <<>>: {frame_too_large,1819222135,131064}".
        self.case(b"hello world, this is not AMQP at all!\r\n", code=r.FRAME_ERROR, cm=(0, 0))

    def test_frame_larger_than_frame_max(self):
        # RabbitMQ: 501 "FRAME_ERROR - type 1, all octets = <<>>:
        # {frame_too_large,5000,4088}".
        self.case(frame(r.METHOD, 1, b"\x00" * 5000), code=r.FRAME_ERROR, frame_max=4096)

    def test_huge_frame_size_before_tune(self):
        # A frame claiming 2 GiB in place of connection.start-ok: the broker
        # must refuse without trying to buffer it. RabbitMQ: no close frame,
        # socket closed after its 3 s pre-open delay.
        p = r.Peer(self.broker.host, self.broker.port, timeout=15)
        p.start()
        p.send(struct.pack(">BHI", r.METHOD, 0, 0x7FFFFFFF) + b"\x00\x0a\x00\x0b" + b"x" * 1000)
        res = p.wait_close(timeout=12)
        self.assertIn(res[:3], (("eof",), ("close", 0, r.FRAME_ERROR)), res)
        if res[0] == "close":
            self.assertTrue(p.closed(10))
        p.close()
        self.assert_bystander_serves()

    def test_bad_frame_end(self):
        # RabbitMQ: 501 "FRAME_ERROR - type 1, all octets = <<...>>:
        # {invalid_frame_end_marker,0}".
        good = r.basic_get(1, "q")
        self.case(good[:-1] + b"\x00", code=r.FRAME_ERROR, cm=(0, 0))

    def test_unknown_frame_type(self):
        # RabbitMQ: 501 "FRAME_ERROR - type 9, all octets = <<"abc">>: unknown_frame".
        self.case(frame(9, 1, b"abc"), code=r.FRAME_ERROR, cm=(0, 0))

    def test_truncated_method_arguments(self):
        # queue.declare whose arguments stop after one byte. RabbitMQ: 501
        # "FRAME_ERROR - cannot decode <<0>>", class/method 50/10.
        self.case(method(1, 50, 10, b"\x00"), code=r.FRAME_ERROR, cm=(50, 10))

    def test_truncated_short_string(self):
        # A queue name whose length octet says 200 but the frame ends first.
        self.case(method(1, 50, 10, b"\x00\x00\xc8abc"), code=r.FRAME_ERROR, cm=(50, 10))

    def test_heartbeat_with_payload(self):
        # RabbitMQ: 501 "FRAME_ERROR - type 8, all octets = <<"abc">>: unknown_frame".
        self.case(frame(r.HEARTBEAT, 0, b"abc"), code=r.FRAME_ERROR)

    # ---- frames in the wrong place ---------------------------------------

    def test_channel_method_on_channel_0(self):
        # RabbitMQ 3.10: 504 "CHANNEL_ERROR - unexpected method in connection
        # state running", class/method 50/10 (also for channel.open on 0).
        self.case(r.queue_declare(0, "x"), code=r.CHANNEL_ERROR, cm=(50, 10))
        self.case(method(0, 20, 10, sstr("")), code=r.CHANNEL_ERROR, cm=(20, 10))

    def test_connection_method_when_running(self):
        # A second connection.tune-ok after open. RabbitMQ: 504 "CHANNEL_ERROR
        # - unexpected method in connection state running", 10/31.
        self.case(method(0, 10, 31, struct.pack(">HIH", 2047, 131072, 0)),
                  code=r.CHANNEL_ERROR, cm=(10, 31))

    def test_body_without_header(self):
        # RabbitMQ: 505 "UNEXPECTED_FRAME - expected method frame, got non
        # method frame instead".
        self.case(frame(r.BODY, 1, b"abc"), code=r.UNEXPECTED_FRAME)

    def test_header_without_method(self):
        self.case(r.content_header(1, 3), code=r.UNEXPECTED_FRAME)

    def test_method_inside_content(self):
        # A new method while a 10-byte body is 3 bytes in. RabbitMQ: 505
        # "UNEXPECTED_FRAME - expected content body, got non content body
        # frame instead", 60/40.
        self.case(r.basic_publish(1, "", "x") + r.content_header(1, 10)
                  + frame(r.BODY, 1, b"abc") + r.basic_get(1, "x"),
                  code=r.UNEXPECTED_FRAME, cm=(60, 40))

    def test_header_of_wrong_class(self):
        # RabbitMQ: 505 "UNEXPECTED_FRAME - expected content header for class
        # 60, got one for class 50 instead", 60/40.
        self.case(r.basic_publish(1, "", "x") + r.content_header(1, 3, class_id=50)
                  + frame(r.BODY, 1, b"abc"), code=r.UNEXPECTED_FRAME, cm=(60, 40))

    def test_content_on_channel_0(self):
        # RabbitMQ: 505 "UNEXPECTED_FRAME - type 3, all octets = <<"abc">>".
        self.case(frame(r.BODY, 0, b"abc"), code=r.UNEXPECTED_FRAME)
        self.case(r.content_header(0, 3), code=r.UNEXPECTED_FRAME)

    def test_heartbeat_on_channel_1(self):
        # The spec says heartbeats belong on channel 0 (frame error), but
        # RabbitMQ answers 505 "UNEXPECTED_FRAME - type 8, all octets = <<>>".
        self.case(frame(r.HEARTBEAT, 1, b""), code=r.UNEXPECTED_FRAME)

    # ---- semantics ---------------------------------------------------------

    def test_publish_immediate(self):
        # RabbitMQ: 540 "NOT_IMPLEMENTED - immediate=true", 60/40, a
        # connection error.
        res = self.case(r.publish(1, "", self.unique(), b"x", immediate=True),
                        code=r.NOT_IMPLEMENTED, cm=(60, 40))
        self.assertIn("immediate", res[3])

    def test_10000_channels_pipelined(self):
        # Asking for channel_max 65535 (or 0, "no limit") in tune-ok is
        # refused: RabbitMQ caps it at 2047 and drops the socket, without a
        # close frame, 3 s after tune-ok ("negotiated channel_max = 65535 is
        # higher than the maximum allowed value (2047)"). With the 2047
        # negotiated, 10,000 pipelined channel.open get exactly 2047
        # open-oks, then connection.close 530 "NOT_ALLOWED - number of
        # channels opened (2047) has reached the negotiated channel_max
        # (2047)"; the rest is discarded.
        opens = b"".join(method(ch, 20, 10, sstr("")) for ch in range(1, 10001))
        greedy = r.Peer(self.broker.host, self.broker.port, timeout=15)
        greedy.start()
        tune = greedy.login()
        self.assertEqual(tune[:3], (0, 10, 30))
        greedy.send(method(0, 10, 31, struct.pack(">HIH", 65535, 131072, 0))
                    + method(0, 10, 40, sstr("/") + sstr("") + b"\x00") + opens)

        p = self.opened()
        self.assertEqual(p.channel_max, 2047)
        t0 = time.monotonic()
        p.send(opens)
        ok = set()
        while True:
            m = p.recv_method()
            self.assertIsNotNone(m, "socket closed after %d open-oks" % len(ok))
            if m[1:3] != (20, 11):
                break
            ok.add(m[0])
        self.assertEqual(ok, set(range(1, 2048)))
        self.assertEqual(m[:3], (0, 10, 50), m)
        code, text, _, _ = r.parse_close(m[3])
        self.assertEqual(code, r.NOT_ALLOWED, text)
        p.send(method(0, 10, 51))
        self.assertTrue(p.closed(10))
        p.close()
        print("    2047 channels opened, then 530, in %.2f s" % (time.monotonic() - t0))

        res = greedy.wait_close(timeout=12)
        greedy.close()
        self.assertIn(res[:3], (("eof",), ("close", 0, r.NOT_ALLOWED)), res)
        self.assert_bystander_serves()

    def test_deeply_nested_table(self):
        # queue.declare whose arguments nest 10,000 tables (about 60 KB).
        # SURPRISE: RabbitMQ 3.10 accepts it (queue.declare-ok; the argument
        # is unknown, so it is just stored). Warren refuses it with 502
        # SYNTAX_ERROR. In general: declare-ok, a 501/502 close, or a
        # dropped socket - and the broker survives.
        args = nested_table(10000)
        self.assertGreater(len(args), 50000)
        p = self.opened()
        p.open_channel(1)
        p.send(r.queue_declare(1, "", exclusive=True, raw_arguments=args))
        m = p.recv_method()
        if m is None:
            res = ("eof",)
        elif m[1:3] == (50, 11):
            res = ("declare-ok",)
        else:
            self.assertEqual(m[:3], (0, 10, 50), m)
            code, text, c, mm = r.parse_close(m[3])
            res = ("close", 0, code, text, c, mm)
            p.send(method(0, 10, 51))
        print("    nested 10000 -> %r" % (res,))
        if self.external:
            self.assertEqual(res, ("declare-ok",))
        else:
            self.assertEqual(res[:3], ("close", 0, r.SYNTAX_ERROR), res)
            self.assertEqual(res[4:], (50, 10))
        self.assertIn(res[:3], (("eof",), ("declare-ok",), ("close", 0, r.FRAME_ERROR),
                                ("close", 0, r.SYNTAX_ERROR)))
        p.close()
        self.assert_bystander_serves()

    def test_unknown_method_id(self):
        # RabbitMQ drops the socket at once, no close frame. Warren: 540.
        self.case(method(1, 60, 999, b""), eof_ok=True, codes=(r.NOT_IMPLEMENTED,),
                  ext_eof=True, warren_code=r.NOT_IMPLEMENTED)

    def test_unknown_class_id(self):
        # RabbitMQ drops the socket at once, no close frame. Warren: 540.
        self.case(method(1, 999, 10, b""), eof_ok=True, codes=(r.NOT_IMPLEMENTED,),
                  ext_eof=True, warren_code=r.NOT_IMPLEMENTED)

    def test_unknown_field_type(self):
        # A table entry of type 'Z'. RabbitMQ drops the socket at once, no
        # close frame. Warren: 502 SYNTAX_ERROR.
        bad = r.table(sstr("a") + b"Z\x00\x00")
        self.case(r.queue_declare(1, self.unique(), raw_arguments=bad), eof_ok=True,
                  codes=(r.SYNTAX_ERROR,), ext_eof=True, warren_code=r.SYNTAX_ERROR)

    def test_table_length_overruns_frame(self):
        # A table whose length prefix runs past the end of the frame.
        # RabbitMQ: 501 "FRAME_ERROR - cannot decode <<...>>", 50/10, like
        # any other method whose arguments are cut short.
        self.case(r.queue_declare(1, self.unique(),
                                  raw_arguments=struct.pack(">I", 1000) + b"\x01a"),
                  code=r.FRAME_ERROR, cm=(50, 10))

    # ---- peers that vanish -------------------------------------------------

    def test_disconnect_mid_frame(self):
        # Half a 100 KB body, then the socket closes; also one closed with
        # an RST (SO_LINGER 0). The broker must just drop them.
        import socket
        for rst in (False, True):
            p = self.opened()
            p.open_channel(1)
            q = self.unique()
            p.send(r.queue_declare(1, q, exclusive=True))
            self.assertEqual(p.recv_method()[:3], (1, 50, 11))
            data = r.publish(1, "", q, b"z" * 100000)
            p.send(data[:len(data) // 2])
            if rst:
                p.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            p.close()
            self.assert_bystander_serves()

    # ---- publishes assembled on an I/O thread (threaded runs) -----------

    def queue_count(self, q):
        return self.by_ch.queue_declare(q, passive=True).method.message_count

    def test_type_0_frame_after_publishes(self):
        # With I/O threads, a whole publish crosses to the core as a frame
        # of type 0 (net/asm.h). A peer's own type-0 frame, even one shaped
        # like ours and naming a queue, is an unknown frame (RabbitMQ: 501
        # "FRAME_ERROR - type 0, all octets = <<...>>: unknown_frame"):
        # the publishes before it are routed, it and what follows are not.
        q, other = self.unique("before"), self.unique("forged")
        for name in (q, other):
            self.by_ch.queue_declare(name)
        try:
            forged = frame(0, 1, b"\x00\x00" + sstr(other))
            data = b"".join(r.publish(1, "", q, b"m%d" % i) for i in range(5))
            self.case(data + forged + r.publish(1, "", other, b"after"),
                      code=r.FRAME_ERROR, cm=(0, 0))
            harness.wait_for(lambda: self.queue_count(q) == 5, 10,
                             "the 5 publishes before the type-0 frame")
            self.assertEqual(self.queue_count(other), 0)
        finally:
            for name in (q, other):
                self.by_ch.queue_delete(name)

    def test_publishes_interleaved_across_channels(self):
        # The spec lets frames of other channels come between a publish's
        # content frames. Channel 1's publish is cut by a whole publish on
        # channel 2 and by a heartbeat, its body in three frames; the
        # others are whole. Every message arrives intact, in order per
        # channel (the walker assembles what is back to back and leaves
        # the rest to the core).
        q1, q2 = self.unique("ch1"), self.unique("ch2")
        for name in (q1, q2):
            self.by_ch.queue_declare(name)
        try:
            p = self.opened()
            p.open_channel(1)
            p.open_channel(2)
            cut = (r.basic_publish(1, "", q1) + r.content_header(1, 9)
                   + frame(r.BODY, 1, b"abc") + r.publish(2, "", q2, b"two-1")
                   + frame(r.BODY, 1, b"def") + frame(r.HEARTBEAT, 0, b"")
                   + frame(r.BODY, 1, b"ghi"))
            data = (r.publish(1, "", q1, b"first") + cut + r.publish(2, "", q2, b"two-2")
                    + r.publish(1, "", q1, b"last" * 1000, frame_max=4096))
            for i in range(0, len(data), 7):  # in slices, as a slow network would
                p.send(data[i:i + 7])
            harness.wait_for(lambda: self.queue_count(q1) == 3 and self.queue_count(q2) == 2, 10,
                             "3 messages on %s and 2 on %s" % (q1, q2))
            got = [self.by_ch.basic_get(q1, auto_ack=True)[2] for _ in range(3)]
            self.assertEqual(got, [b"first", b"abcdefghi", b"last" * 1000])
            got = [self.by_ch.basic_get(q2, auto_ack=True)[2] for _ in range(2)]
            self.assertEqual(got, [b"two-1", b"two-2"])
            p.close()
        finally:
            for name in (q1, q2):
                self.by_ch.queue_delete(name)

    def test_whole_publishes_assembled_on_io_thread(self):
        # With I/O threads, each whole publish is assembled on the socket's
        # thread and one cut by another frame is left to the core; the
        # connection's last debug line counts the first kind. Fails if the
        # core never turns the assembling on (wr_sock_assemble at open).
        threads = os.environ.get("WARREN_TEST_IO_THREADS", "0")
        if self.external or threads in ("", "0"):
            self.skipTest("needs warrend with io_threads > 0")
        q = self.unique("asm")
        self.by_ch.queue_declare(q)
        try:
            p = self.opened()
            p.open_channel(1)
            name = "127.0.0.1:%d -> " % p.s.getsockname()[1]
            cut = (r.basic_publish(1, "", q) + r.content_header(1, 2)
                   + frame(r.HEARTBEAT, 0, b"") + frame(r.BODY, 1, b"cu"))
            p.send(b"".join(r.publish(1, "", q, b"w%d" % i) for i in range(3)) + cut)
            harness.wait_for(lambda: self.queue_count(q) == 4, 10, "4 messages on " + q)
            p.close()
            line = harness.wait_for(
                lambda: [l for l in self.broker.log_text().splitlines()
                         if name in l and "publishes assembled whole before reaching the core" in l], 10,
                "the connection's last line")
            self.assertIn("3 publishes assembled", line[0])
        finally:
            self.by_ch.queue_delete(q)


if __name__ == "__main__":
    harness.main()
