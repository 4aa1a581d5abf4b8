"""test_connection - the AMQP 0-9-1 connection layer, end to end.

Covers: the protocol header (right, wrong, split across packets),
connection.start (version, server properties, capabilities, mechanisms,
locales), PLAIN and AMQPLAIN logins (raw, pika, rabbitmq-c's amqp-tools),
refused logins (403 ACCESS_REFUSED with authentication_failure_close, a
silent close without it), connection.tune (the server's proposal, lower
client values taking effect, higher ones refused), connection.open to a
missing vhost (530), client- and server-initiated close (close-ok, frames
discarded while closing, crossing closes), heartbeats (sent by the broker,
dead peer detection, kept alive by the client), the handshake timeout, and
connection.blocked under a memory alarm (warrend only).

Validated against RabbitMQ 3.10 (WARREN_TEST_PORT=5673); the surprising
things RabbitMQ does are noted next to each test.
"""
import atexit
import os
import shutil
import struct
import subprocess
import tempfile
import threading
import time

import harness
import rawamqp as r
from rawamqp import method, sstr

CAPABILITIES = ("publisher_confirms", "exchange_exchange_bindings", "basic.nack",
                "consumer_cancel_notify", "connection.blocked",
                "authentication_failure_close", "per_consumer_qos", "direct_reply_to")


class ConnectionTests(harness.BrokerTestCase):

    def peer(self, timeout=10):
        return r.Peer(self.broker.host, self.broker.port, timeout=timeout)

    def opened(self, **kw):
        return r.open_peer(self.broker.host, self.broker.port, **kw)

    def assert_works(self, p, channel=1):
        """The raw connection p serves requests: open a channel and declare
        a server-named exclusive queue on it."""
        p.open_channel(channel)
        p.send(r.queue_declare(channel, "", exclusive=True))
        m = p.recv_method()
        self.assertIsNotNone(m, "connection closed instead of queue.declare-ok")
        self.assertEqual(m[:3], (channel, 50, 11), m)

    # ---- protocol header ----------------------------------------------

    def test_wrong_protocol_header(self):
        # Each bad header is answered with the 0-9-1 header and the socket is
        # closed at once (RabbitMQ: immediately, no delay).
        for hdr in (b"HTTP/1.1", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"AMQP\x00\x00\x09\x00",    # 0-9-0
                    b"AMQP\x00\x00\x09\x02",    # 0-9-2
                    b"AMQP\x00\x00\x08\x00",
                    b"AMQP\x00\x01\x00\x00",    # AMQP 1.0
                    b"AMQP\x03\x01\x00\x00"):   # AMQP 1.0 SASL layer
            with self.subTest(header=hdr):
                p = self.peer()
                p.send(hdr)
                data, closed = p.recv_raw(timeout=10)
                p.close()
                self.assertEqual(data, r.PROTOCOL_HEADER)
                self.assertTrue(closed, "socket left open after a bad header")

    def test_legacy_0_9_header(self):
        # "AMQP\x01\x01\x00\x09" is the AMQP 0-9 header (class 1, instance 1).
        # RabbitMQ 3.10 does NOT reject it: it answers with connection.start
        # and speaks 0-9-1 (the same for 0-8, "AMQP\x01\x01\x08\x00").
        # Warren may do the same or answer with its own header and close;
        # anything else (silence, garbage, a crash) fails.
        p = self.peer()
        p.send(b"AMQP\x01\x01\x00\x09")
        data, closed = p.recv_raw(timeout=2)
        p.close()
        is_start = data[:1] == b"\x01" and data[7:11] == b"\x00\x0a\x00\x0a"
        if self.external:
            self.assertTrue(is_start, data[:40])
        else:
            self.assertTrue(is_start or (data == r.PROTOCOL_HEADER and closed), data[:40])

    def test_header_split_across_packets(self):
        p = self.peer()
        for piece in (b"AM", b"QP", b"\x00\x00", b"\x09", b"\x01"):
            p.send(piece)
            time.sleep(0.05)
        f = p.recv_frame()
        p.close()
        self.assertIsNotNone(f)
        self.assertEqual(f[:2], (r.METHOD, 0))
        self.assertEqual(f[2][:4], b"\x00\x0a\x00\x0a")

    # ---- connection.start ---------------------------------------------

    def test_start_contents(self):
        p = self.peer()
        st = p.start()
        p.close()
        self.assertEqual((st["version_major"], st["version_minor"]), (0, 9))
        props = st["server_properties"]
        for key in ("product", "version", "platform"):
            self.assertIsInstance(props.get(key), bytes, "server_properties.%s" % key)
            self.assertTrue(props[key], "server_properties.%s is empty" % key)
        caps = props.get("capabilities")
        self.assertIsInstance(caps, dict)
        for cap in CAPABILITIES:
            self.assertIs(caps.get(cap), True, "capability %s" % cap)
        self.assertIn("PLAIN", st["mechanisms"])
        self.assertIn("AMQPLAIN", st["mechanisms"])
        self.assertIn("en_US", st["locales"])

    # ---- authentication -----------------------------------------------

    def test_plain_login_raw(self):
        p = self.opened(mechanism="PLAIN")
        self.assert_works(p)
        p.close()

    def test_amqplain_login_raw(self):
        # AMQPLAIN's response is a field table without its length prefix:
        # LOGIN and PASSWORD as long strings.
        p = self.opened(mechanism="AMQPLAIN")
        self.assert_works(p)
        p.close()

    def test_pika_login(self):
        conn = self.connect()
        try:
            ch = conn.channel()
            q = ch.queue_declare(self.unique(), exclusive=True).method.queue
            ch.basic_publish("", q, b"x")
            _, _, body = ch.basic_get(q, auto_ack=True)
            self.assertEqual(body, b"x")
        finally:
            conn.close()

    def test_wrong_password(self):
        # With the authentication_failure_close capability (sent by rawamqp's
        # login) RabbitMQ answers at once with connection.close 403
        # "ACCESS_REFUSED - Login was refused using authentication mechanism
        # PLAIN. For details see the broker logfile.", class/method 0/0.
        for mech, user, pw in (("PLAIN", "guest", "wrong"), ("AMQPLAIN", "guest", "wrong"),
                               ("PLAIN", "no-such-user-xyz", "guest")):
            with self.subTest(mechanism=mech, user=user):
                p = self.peer()
                p.start()
                m = p.login(mech, user=user, password=pw)
                self.assertIsNotNone(m, "socket closed without connection.close")
                self.assertEqual(m[:3], (0, 10, 50), m)
                code, text, cid, mid = r.parse_close(m[3])
                self.assertEqual(code, r.ACCESS_REFUSED)
                self.assertTrue(text.startswith("ACCESS_REFUSED"), text)
                self.assertIn(mech, text)
                # RabbitMQ says 0/0; connection.start-ok (10/11) is as good.
                self.assertIn((cid, mid), ((0, 0), (10, 11)))
                p.send(method(0, 10, 51))
                self.assertTrue(p.closed(5), "socket left open after close-ok")
                p.close()

    def test_wrong_password_without_capability_and_bad_mechanism(self):
        # Without authentication_failure_close, and for an unknown SASL
        # mechanism, RabbitMQ sends nothing and closes the socket after a
        # deliberate 3 s delay (anti brute force). Both peers run at once to
        # pay that delay once. Accepted: a connection.close, or a bare close;
        # never a connection.tune.
        a, b = self.peer(timeout=15), self.peer(timeout=15)
        a.start()
        b.start()
        t0 = time.monotonic()
        a.send(method(0, 10, 11, r.encode_table({"product": "x"}) + sstr("PLAIN")
                      + r.lstr(b"\x00guest\x00wrong") + sstr("en_US")))
        b.send(method(0, 10, 11, r.encode_table({"product": "x"}) + sstr("NO-SUCH-MECH")
                      + r.lstr(b"whatever") + sstr("en_US")))
        for p, what in ((a, "wrong password"), (b, "unknown mechanism")):
            res = p.wait_close(timeout=12)
            self.assertIn(res[0], ("close", "eof"), "%s: %r" % (what, res))
            if res[0] == "close":
                self.assertIn(res[2], (r.ACCESS_REFUSED, r.NOT_ALLOWED, r.COMMAND_INVALID,
                                       r.SYNTAX_ERROR), res)
                self.assertTrue(p.closed(5))
            p.close()
        self.assertLess(time.monotonic() - t0, 12)

    def test_rabbitmq_c_login(self):
        # rabbitmq-c (amqp-tools) as a second, independent client.
        url = "amqp://guest:guest@%s:%d" % (self.broker.host, self.broker.port)
        bad = "amqp://guest:wrong@%s:%d" % (self.broker.host, self.broker.port)
        q = self.unique("rmqc")
        out = subprocess.run(["amqp-declare-queue", "--url", url, "-q", q],
                             capture_output=True, text=True, timeout=20)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.strip(), q)
        try:
            pub = subprocess.run(["amqp-publish", "--url", url, "-r", q, "-b", "hello"],
                                 capture_output=True, timeout=20)
            self.assertEqual(pub.returncode, 0, pub.stderr)
            deadline = time.monotonic() + 5
            while True:  # amqp-get exits 2 on an empty queue
                get = subprocess.run(["amqp-get", "--url", url, "-q", q],
                                     capture_output=True, timeout=20)
                if get.returncode != 2 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            self.assertEqual(get.returncode, 0, get.stderr)
            self.assertEqual(get.stdout, b"hello")
        finally:
            subprocess.run(["amqp-delete-queue", "--url", url, "-q", q],
                           capture_output=True, timeout=20)
        out = subprocess.run(["amqp-declare-queue", "--url", bad, "-q", q],
                             capture_output=True, text=True, timeout=20)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("403", out.stderr)
        self.assertIn("ACCESS_REFUSED", out.stderr)

    # ---- connection.tune ----------------------------------------------

    def test_tune_server_proposal(self):
        p = self.peer()
        p.start()
        m = p.login("PLAIN")
        p.close()
        self.assertEqual(m[:3], (0, 10, 30))
        self.assertEqual(r.parse_tune(m[3]), (2047, 131072, 60))

    def test_tune_lower_client_values_take_effect(self):
        # channel_max 3, frame_max 4096, heartbeat 0 from the client.
        p = self.opened(channel_max=3, frame_max=4096, heartbeat=0)
        for ch in (1, 2, 3):
            p.open_channel(ch)
        # The largest frame that fits 4096 is accepted...
        probe = r.queue_declare(1, "", exclusive=True, arguments={"x-pad": ""})
        big = r.queue_declare(1, "", exclusive=True,
                              arguments={"x-pad": "p" * (4096 - len(probe))})
        self.assertEqual(len(big), 4096)
        p.send(big)
        m = p.recv_method()
        self.assertEqual(m[:3], (1, 50, 11), m)
        # ...the channel count is limited to 3: RabbitMQ closes with 530
        # "NOT_ALLOWED - number of channels opened (3) has reached the
        # negotiated channel_max (3)"...
        p.send(method(4, 20, 10, sstr("")))
        res = p.wait_close(5)
        self.assertEqual(res[:3], ("close", 0, r.NOT_ALLOWED), res)
        p.close()
        # ...and a larger frame is a frame error (RabbitMQ: 501 "FRAME_ERROR -
        # type 1, all octets = <<>>: {frame_too_large,4097,4088}").
        # SURPRISE: RabbitMQ tolerates up to 8 bytes too many (a "fudge" for
        # old clients): a payload of 4089..4096 bytes (frame 4097..4104) is
        # NOT rejected. The spec says frame_max bounds the whole frame, so
        # the payload here exceeds frame_max itself, which both reject.
        p = self.opened(frame_max=4096)
        p.open_channel(1)
        p.send(r.frame(r.METHOD, 1, b"\x00" * (4096 + 1)))
        res = p.wait_close(5)
        self.assertEqual(res[:3], ("close", 0, r.FRAME_ERROR), res)
        p.close()

    def test_tune_pika_lower_values(self):
        conn = self.connect(frame_max=8192, channel_max=16)
        try:
            params = conn._impl.params  # pika keeps the negotiated values here
            self.assertEqual(params.frame_max, 8192)
            self.assertEqual(params.channel_max, 16)
            ch = conn.channel()
            q = ch.queue_declare(self.unique(), exclusive=True).method.queue
            body = os.urandom(50000)
            ch.basic_publish("", q, body)
            _, _, got = ch.basic_get(q, auto_ack=True)
            self.assertEqual(got, body)
        finally:
            conn.close()

    def test_tune_ok_above_server_values_refused(self):
        # A tune-ok asking for more than the server offered is refused.
        # RabbitMQ logs "failed to negotiate connection parameters: negotiated
        # channel_max = 0 (no limit) is higher than the maximum allowed value
        # (2047)" (likewise for frame_max, and frame_max < 4096) and, since
        # the connection is not open yet, closes the socket WITHOUT a
        # connection.close after its 3 s anti-DoS delay. All cases run at once.
        cases = [(0, 131072), (65535, 131072), (2048, 131072),
                 (2047, 131073), (2047, 0), (2047, 4095)]
        peers = []
        for cm, fm in cases:
            p = self.peer(timeout=15)
            p.start()
            m = p.login("PLAIN")
            self.assertEqual(m[:3], (0, 10, 30))
            p.send(method(0, 10, 31, struct.pack(">HIH", cm, fm, 0)))
            p.send(method(0, 10, 40, sstr("/") + sstr("") + b"\x00"))
            peers.append(((cm, fm), p))
        for case, p in peers:
            res = p.wait_close(timeout=12)
            p.close()
            with self.subTest(channel_max=case[0], frame_max=case[1]):
                self.assertIn(res[0], ("close", "eof"), res)
                if res[0] == "close":
                    self.assertIn(res[2], (r.NOT_ALLOWED, r.SYNTAX_ERROR, r.FRAME_ERROR,
                                           r.COMMAND_INVALID), res)

    # ---- connection.open ----------------------------------------------

    def test_open_missing_vhost(self):
        # RabbitMQ: connection.close 530 "NOT_ALLOWED - vhost /no-such-vhost
        # not found", class/method 10/40; the socket closes after close-ok.
        p = self.peer()
        p.start()
        m = p.login("PLAIN")
        rep = p.tune_open(m[3], vhost="/no-such-vhost-xyz")
        self.assertIsNotNone(rep)
        self.assertEqual(rep[:3], (0, 10, 50), rep)
        code, text, cid, mid = r.parse_close(rep[3])
        self.assertEqual(code, r.NOT_ALLOWED)
        self.assertTrue(text.startswith("NOT_ALLOWED"), text)
        self.assertIn("/no-such-vhost-xyz", text)
        self.assertEqual((cid, mid), (10, 40))
        p.send(method(0, 10, 51))
        self.assertTrue(p.closed(5))
        p.close()

    # ---- connection.close ---------------------------------------------

    def test_client_close(self):
        # connection.close from the client, with two channels open -> close-ok.
        # RabbitMQ then waits for the CLIENT to close the socket (it does not
        # close it itself within 5 s), so only close-ok is asserted.
        p = self.opened()
        p.open_channel(1)
        p.open_channel(2)
        p.send(method(0, 10, 50, r.close_method(200, "bye")))
        m = p.recv_method()
        self.assertEqual(m, (0, 10, 51, b""))
        p.close()

    def test_channel_close_then_connection_close_pika(self):
        conn = self.connect()
        chans = [conn.channel() for _ in range(3)]
        chans[1].close()
        self.assertTrue(chans[1].is_closed)
        conn.close()
        self.assertTrue(conn.is_closed)
        self.assertTrue(all(c.is_closed for c in chans))

    def test_server_close_waits_for_close_ok(self):
        # basic.publish immediate=true -> connection.close 540. Until the
        # client answers close-ok, everything else it sends is discarded
        # (no channel.open-ok, no get-empty, no channel.close-ok); close-ok
        # then makes the broker close the socket.
        p = self.opened()
        p.open_channel(1)
        q = self.unique()
        p.send(r.publish(1, "", q, b"x", immediate=True))
        m = p.recv_method()
        self.assertEqual(m[:3], (0, 10, 50), m)
        self.assertEqual(r.parse_close(m[3])[0], r.NOT_IMPLEMENTED)
        p.send(method(2, 20, 10, sstr("")) + r.basic_get(1, q)
               + method(1, 20, 40, r.close_method()))
        self.assertEqual(p.recv_frame_within(1.0), "timeout")
        p.send(method(0, 10, 51))
        self.assertTrue(p.closed(5), "socket left open after close-ok")
        p.close()

    def test_crossing_close(self):
        # Broker and client send connection.close at the same time: the
        # broker answers the client's close with close-ok (RabbitMQ does), or
        # just closes the socket; it must not hang or send anything else.
        p = self.opened()
        p.open_channel(1)
        p.send(r.publish(1, "", "x", b"x", immediate=True))
        m = p.recv_method()
        self.assertEqual(m[:3], (0, 10, 50), m)
        p.send(method(0, 10, 50, r.close_method(200, "bye")))
        f = p.recv_frame_within(5)
        if self.external:
            self.assertEqual(f, (r.METHOD, 0, b"\x00\x0a\x00\x33"))
        else:
            self.assertIn(f, ((r.METHOD, 0, b"\x00\x0a\x00\x33"), None))
        p.close()

    # ---- heartbeats ----------------------------------------------------

    def test_heartbeat_sent_and_dead_peer_detected(self):
        # heartbeat=1 negotiated, the client then sends nothing. RabbitMQ
        # sends a heartbeat every 0.5 s (half the interval) and drops the
        # socket ~3 s after open, WITHOUT a connection.close.
        p = self.opened(heartbeat=1)
        t0 = time.monotonic()
        beats, other = 0, []
        while True:
            f = p.recv_frame_within(15)
            if f is None:
                break
            self.assertNotEqual(f, "timeout", "broker still connected after 15 s of silence")
            if f == (r.HEARTBEAT, 0, b""):
                beats += 1
            else:
                other.append(f)
        elapsed = time.monotonic() - t0
        p.close()
        print("heartbeat=1: %d heartbeats, socket closed after %.2f s" % (beats, elapsed))
        self.assertGreaterEqual(beats, 2)
        self.assertGreaterEqual(elapsed, 1.5)
        self.assertLessEqual(elapsed, 10)
        for f in other:  # at most a connection.close (heartbeat timeout: 320 or 501)
            self.assertEqual(f[0], r.METHOD)
            self.assertEqual(f[2][:4], b"\x00\x0a\x00\x32", f)

    def test_heartbeat_keeps_connection_alive(self):
        # Sending heartbeats every 0.3 s keeps a heartbeat=1 connection open
        # well past the 2-interval limit.
        p = self.opened(heartbeat=1)
        t0 = time.monotonic()
        received = 0
        while time.monotonic() - t0 < 4.0:
            p.send(r.frame(r.HEARTBEAT, 0, b""))
            f = p.recv_frame_within(0.3)
            self.assertIsNotNone(f, "closed after %.2f s" % (time.monotonic() - t0))
            if f != "timeout":
                self.assertEqual(f, (r.HEARTBEAT, 0, b""))
                received += 1
        self.assertGreaterEqual(received, 2)
        self.assert_works(p)
        p.close()

    # ---- handshake timeout ---------------------------------------------

    def test_handshake_timeout(self):
        # A client that sends the header and then nothing, and one that stops
        # after start-ok (never sends tune-ok), are both disconnected.
        # RabbitMQ: exactly handshake_timeout = 10 s, without connection.close.
        a, b = self.peer(timeout=20), self.peer(timeout=20)
        t0 = time.monotonic()
        a.send(r.PROTOCOL_HEADER)
        b.start()
        m = b.login("PLAIN")
        self.assertEqual(m[:3], (0, 10, 30))
        done = {}

        def wait(name, p):
            data, closed = p.recv_raw(timeout=16)
            done[name] = (closed, time.monotonic() - t0, data)

        ts = [threading.Thread(target=wait, args=("header-only", a)),
              threading.Thread(target=wait, args=("after-start-ok", b))]
        for t in ts:
            t.start()
        for t in ts:
            t.join(20)
        a.close()
        b.close()
        for name, (closed, elapsed, data) in sorted(done.items()):
            print("handshake timeout, %s: closed=%s after %.2f s" % (name, closed, elapsed))
            self.assertTrue(closed, "%s: still open after %.1f s" % (name, elapsed))
            self.assertGreaterEqual(elapsed, 1.0, name)
            self.assertLessEqual(elapsed, 15.0, name)
        self.assertEqual(len(done), 2)


# ---- connection.blocked (warrend only) -----------------------------------
#
# DEPENDS ON THE SETTING NAME: warrend's configuration (src/conf/conf.c) has
# `vm_memory_high_watermark.relative` (a fraction of RAM, 0..1). A tiny
# fraction puts the memory alarm above the broker's own RSS at start, like
# RabbitMQ's `vm_memory_high_watermark.absolute = 1`. If the setting is
# renamed, or an `.absolute` form added, change WATERMARK_LINE.
WATERMARK_LINE = "vm_memory_high_watermark.relative = 0.000001\n"


def _watermark_conf():
    d = tempfile.mkdtemp(prefix="warren-blocked-")
    atexit.register(shutil.rmtree, d, True)
    path = os.path.join(d, "warren.conf")
    with open(path, "w") as f:
        f.write("# test_connection: memory alarm raised from the start\n" + WATERMARK_LINE)
    return path


class BlockedTests(harness.BrokerTestCase):
    broker_args = () if os.environ.get("WARREN_TEST_PORT") else ("-c", _watermark_conf())

    def test_connection_blocked(self):
        if self.external:
            self.skipTest("needs warrend started with a tiny memory watermark")
        # A client announcing the connection.blocked capability publishes;
        # the broker sends connection.blocked (10/60) with a reason and
        # stops reading that connection's publishes (the message must not
        # arrive), while a consuming-only connection keeps working.
        # RabbitMQ 3.10 (checked on a private node started with
        # vm_memory_high_watermark.absolute = 1): nothing is sent at
        # connection.open; connection.blocked "low on memory" comes right
        # after the first publish, and the message is held.
        q = self.unique()
        other = r.open_peer(self.broker.host, self.broker.port)
        other.open_channel(1)
        other.send(r.queue_declare(1, q, auto_delete=False))
        self.assertEqual(other.recv_method()[:3], (1, 50, 11))

        p = r.Peer(self.broker.host, self.broker.port)
        p.start()
        tune = p.login("PLAIN", client_properties={
            "product": "test_connection",
            "capabilities": {"connection.blocked": True,
                             "authentication_failure_close": True}})
        rep = p.tune_open(tune[3])
        self.assertEqual(rep[:3], (0, 10, 41))
        p.open_channel(1)
        p.send(r.publish(1, "", q, b"while blocked"))
        deadline = time.monotonic() + 10
        blocked = None
        while time.monotonic() < deadline and blocked is None:
            f = p.recv_frame_within(deadline - time.monotonic())
            self.assertIsNotNone(f, "socket closed instead of connection.blocked")
            if f != "timeout" and f[0] == r.METHOD and f[2][:4] == b"\x00\x0a\x00\x3c":
                blocked = f
        self.assertIsNotNone(blocked, "no connection.blocked within 10 s")
        self.assertEqual(blocked[1], 0)
        reason = blocked[2][5:5 + blocked[2][4]].decode()
        self.assertTrue(reason, "connection.blocked without a reason")
        # The publish is held, not delivered.
        other.send(r.basic_get(1, q))
        m = other.recv_method()
        self.assertEqual(m[:3], (1, 60, 72), "message got through a blocked connection")
        # connection.unblocked needs the alarm to clear at run time (RabbitMQ:
        # rabbitmqctl set_vm_memory_high_watermark); warrenctl has no such
        # command yet, so only the blocked half is tested here.
        other.send(method(1, 50, 40, struct.pack(">H", 0) + sstr(q) + b"\x00"))
        self.assertEqual(other.recv_method()[:3], (1, 50, 41))
        p.close()
        other.close()


if __name__ == "__main__":
    harness.main()
