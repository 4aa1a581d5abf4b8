"""Closing handshakes that real clients race (issue 9, items 8-10).

- A client that keeps writing after its connection.close (amqplib's
  callback API with a full write buffer) must still read the close-ok: the
  broker reads and discards what follows a close instead of closing the
  socket on unread data (which sends a reset that destroys the close-ok in
  the client's receive buffer).
- Duplicate connection.close frames (clients that close from several
  threads at once) each get a close-ok, as on RabbitMQ, and the broker
  waits for the client to close the socket.
- A channel the broker is closing swallows what is in flight on it: the
  client's own channel.close crossing the broker's gets a close-ok, and
  the client's close-ok for the broker's close, or an ack sent before the
  client saw the close, is not a 504 on an unopened channel.

Raw peer (rawamqp.py) throughout: real clients do not let a test choose
exactly which frames are in flight.
"""
import socket
import struct
import time

from harness import BrokerTestCase, main
import rawamqp as R


def close_frame(code=200, text="bye"):
    return R.method(0, 10, 50, struct.pack(">H", code) + R.sstr(text) + struct.pack(">HH", 0, 0))


def channel_close_frame(channel, code=200, text="bye"):
    return R.method(channel, 20, 40, struct.pack(">H", code) + R.sstr(text) +
                    struct.pack(">HH", 0, 0))


class ClosingTest(BrokerTestCase):
    def peer(self):
        p = R.Peer(self.broker.host, self.broker.port, timeout=15)
        p.handshake()
        return p

    def read_methods_until(self, p, want, deadline_s=15):
        """Read methods until one with (class, method) == want; return the
        list of (channel, class, method) seen, or None if the socket closed
        or was reset first."""
        seen = []
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            r = p.recv_method()
            if r is None:
                return None
            seen.append(r[:3])
            if r[1:3] == want:
                return seen
        return None

    def assert_broker_serves(self):
        p = self.peer()
        p.open_channel(1)
        q = self.unique("alive")
        p.send(R.method(1, 50, 10, struct.pack(">H", 0) + R.sstr(q) + b"\x08" + R.table()))
        r = p.recv_method()
        self.assertEqual(r[1:3], (50, 11), r)
        p.close()

    # -- item 8 ------------------------------------------------------------

    def test_publishes_after_close_still_get_close_ok(self):
        """connection.close followed at once by 1 MB of publishes on the same
        socket: the client must still read close-ok (no reset)."""
        p = self.peer()
        p.open_channel(1)
        # A small send buffer keeps the client writing while the broker
        # handles the close, as a client with a full write buffer is.
        p.s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        body = b"x" * 4000
        burst = R.publish(1, "", "nowhere", body) * 256  # ~1 MB
        try:
            p.send(close_frame() + burst)
        except (BrokenPipeError, ConnectionResetError) as e:
            self.fail("broker reset the connection while the client wrote: %r" % e)
        seen = self.read_methods_until(p, (10, 51))
        self.assertIsNotNone(seen, "close-ok lost: the socket was reset or closed first")
        # The broker then waits for us and sees our close.
        p.close()
        self.assert_broker_serves()

    def test_server_close_then_pipelined_publishes(self):
        """A connection error, while the client still pipelines 1 MB: the
        client reads connection.close, answers close-ok, and the socket
        then ends without a reset."""
        p = self.peer()
        p.open_channel(1)
        # immediate=true is a 540 connection error on RabbitMQ and on Warren
        bad = R.method(1, 60, 40, struct.pack(">H", 0) + R.sstr("") + R.sstr("q") + b"\x02")
        p.s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        burst = R.publish(1, "", "nowhere", b"y" * 4000) * 256
        try:
            p.send(bad + R.frame(2, 1, struct.pack(">HHQH", 60, 0, 0, 0)) + burst)
        except (BrokenPipeError, ConnectionResetError) as e:
            self.fail("broker reset the connection while the client wrote: %r" % e)
        r = p.expect_close()  # sends close-ok
        self.assertIsNotNone(r, "connection.close lost")
        self.assertEqual(r[1:3], ("connection", 540), r)
        self.assertTrue(p.closed(timeout=10), "broker did not close after close-ok")
        self.assert_broker_serves()

    # -- item 10 -----------------------------------------------------------

    def test_duplicate_connection_close_each_answered(self):
        """32 connection.close frames in one write (32 threads calling
        Close()): every one gets a close-ok, and none is a reset."""
        p = self.peer()
        p.send(close_frame() * 32)
        oks = 0
        end = time.monotonic() + 15
        while oks < 32 and time.monotonic() < end:
            r = p.recv_method()
            if r is None:
                break
            if r[1:3] == (10, 51):
                oks += 1
        self.assertEqual(oks, 32, "close-ok frames received before the socket ended")
        p.close()
        self.assert_broker_serves()

    def test_close_ok_then_broker_waits_for_the_client(self):
        """After close-ok the broker lets the client close the socket (as
        RabbitMQ does), and closes it itself if the client goes quiet."""
        p = self.peer()
        p.send(close_frame())
        self.assertIsNotNone(self.read_methods_until(p, (10, 51)))
        # A second close a moment later still gets its close-ok.
        p.send(close_frame())
        self.assertIsNotNone(self.read_methods_until(p, (10, 51)))
        if self.external:
            p.close()
            return
        # A silent client is let go after a few seconds (RabbitMQ: 30 s).
        self.assertTrue(p.closed(timeout=20), "broker kept a closed connection forever")

    # -- item 9 ------------------------------------------------------------

    def test_crossing_channel_close_swallows_in_flight_frames(self):
        """The client publishes to a missing exchange, sends an ack it had
        queued, and closes the channel, all before reading: the broker's
        channel.close 404 crosses the client's close. The client's close
        gets a close-ok; the client's close-ok for the broker's close is
        then accepted, not taken as a frame on an unopened channel."""
        p = self.peer()
        p.open_channel(1)
        x = self.unique("missing")
        ack = R.method(1, 60, 80, struct.pack(">QB", 999, 0))
        p.send(R.publish(1, x, "k", b"hello") + ack + channel_close_frame(1))
        got = []
        end = time.monotonic() + 15
        while len(got) < 2 and time.monotonic() < end:
            r = p.recv_method()
            self.assertIsNotNone(r, "connection closed: %r" % (got,))
            got.append(r)
        kinds = [(ch, cid, mid) for ch, cid, mid, _ in got]
        self.assertEqual(kinds, [(1, 20, 40), (1, 20, 41)], got)
        code = struct.unpack(">H", got[0][3][:2])[0]
        self.assertEqual(code, 404)
        # Our answer to the broker's close, and a late ack on the channel.
        p.send(R.method(1, 20, 41))
        # The channel is now free: reopening it works, and so does the
        # connection (a 504 would close it).
        p.send(R.method(1, 20, 10, R.sstr("")))
        r = p.recv_method()
        self.assertIsNotNone(r, "connection closed after the crossing close")
        self.assertEqual(r[:3], (1, 20, 11), r)
        q = self.unique("after")
        p.send(R.method(1, 50, 10, struct.pack(">H", 0) + R.sstr(q) + b"\x08" + R.table()))
        r = p.recv_method()
        self.assertEqual(r[1:3], (50, 11), r)
        p.send(close_frame())
        self.assertIsNotNone(self.read_methods_until(p, (10, 51)))
        p.close()

    def test_frames_after_broker_channel_close_are_ignored(self):
        """Between the broker's channel.close and the client's close-ok,
        acks and publishes on that channel are discarded."""
        p = self.peer()
        p.open_channel(1)
        x = self.unique("missing")
        tail = (R.method(1, 60, 80, struct.pack(">QB", 5, 0)) +
                R.publish(1, "", "nowhere", b"z" * 100) +
                R.method(1, 60, 80, struct.pack(">QB", 6, 1)))
        p.send(R.publish(1, x, "k", b"hello") + tail)
        r = p.recv_method()
        self.assertEqual(r[:3], (1, 20, 40), r)
        p.send(R.method(1, 20, 41))
        p.open_channel(1)
        p.send(close_frame())
        self.assertIsNotNone(self.read_methods_until(p, (10, 51)))
        p.close()


if __name__ == "__main__":
    main()
