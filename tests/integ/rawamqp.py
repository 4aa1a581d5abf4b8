"""rawamqp.py - a deliberately minimal AMQP 0-9-1 peer for adversarial tests.

Real clients (pika, rabbitmq-c) refuse to send malformed frames, so the
tests that check how the broker answers garbage speak the protocol by hand
with this module: open a connection, send arbitrary bytes or frames, and
read what the broker says back (decoded just enough to see a close).
"""
import socket
import struct

FRAME_END = b"\xce"


def frame(ftype, channel, payload):
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + FRAME_END


def method(channel, cid, mid, args=b""):
    return frame(1, channel, struct.pack(">HH", cid, mid) + args)


def sstr(s):
    s = s.encode() if isinstance(s, str) else s
    return bytes([len(s)]) + s


def lstr(s):
    s = s.encode() if isinstance(s, str) else s
    return struct.pack(">I", len(s)) + s


def table(body=b""):
    return struct.pack(">I", len(body)) + body


class Peer:
    def __init__(self, host, port, timeout=10):
        self.s = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def recv_frame(self):
        """Return (type, channel, payload) or None when the socket closed."""
        while True:
            if len(self.buf) >= 7:
                t, ch, size = struct.unpack(">BHI", self.buf[:7])
                if len(self.buf) >= 8 + size:
                    payload = self.buf[7:7 + size]
                    end = self.buf[7 + size:8 + size]
                    self.buf = self.buf[8 + size:]
                    assert end == FRAME_END, "bad frame end from broker"
                    return t, ch, payload
            try:
                d = self.s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                return None
            if not d:
                return None
            self.buf += d

    def recv_method(self):
        """Next method frame as (channel, class_id, method_id, args), skipping
        heartbeats and content; None when the connection closed."""
        while True:
            f = self.recv_frame()
            if f is None:
                return None
            t, ch, p = f
            if t == 1:
                cid, mid = struct.unpack(">HH", p[:4])
                return ch, cid, mid, p[4:]

    def handshake(self, user="guest", password="guest", vhost="/", frame_max=131072,
                  heartbeat=0, channel_max=2047):
        self.send(b"AMQP\x00\x00\x09\x01")
        ch, cid, mid, _ = self.recv_method()
        assert (cid, mid) == (10, 10), (cid, mid)
        resp = b"\x00" + user.encode() + b"\x00" + password.encode()
        self.send(method(0, 10, 11, table() + sstr("PLAIN") + lstr(resp) + sstr("en_US")))
        ch, cid, mid, args = self.recv_method()
        assert (cid, mid) == (10, 30), (cid, mid)
        smax, sframe, shb = struct.unpack(">HIH", args[:8])
        self.frame_max = min(frame_max, sframe) if frame_max else sframe
        self.send(method(0, 10, 31, struct.pack(">HIH", channel_max, self.frame_max, heartbeat)))
        self.send(method(0, 10, 40, sstr(vhost) + sstr("") + b"\x00"))
        ch, cid, mid, _ = self.recv_method()
        assert (cid, mid) == (10, 41), (cid, mid)

    def open_channel(self, n=1):
        self.send(method(n, 20, 10, sstr("")))
        r = self.recv_method()
        assert r and r[1:3] == (20, 11), r

    def expect_close(self):
        """Wait for connection.close or channel.close; return
        (channel, 'connection'|'channel', reply_code, reply_text, class, method)."""
        while True:
            r = self.recv_method()
            if r is None:
                return None
            ch, cid, mid, args = r
            if (cid, mid) in ((10, 50), (20, 40)):
                code = struct.unpack(">H", args[:2])[0]
                n = args[2]
                text = args[3:3 + n].decode(errors="replace")
                c, m = struct.unpack(">HH", args[3 + n:7 + n])
                kind = "connection" if cid == 10 else "channel"
                if kind == "connection":
                    self.send(method(0, 10, 51))
                else:
                    self.send(method(ch, 20, 41))
                return ch, kind, code, text, c, m

    def closed(self, timeout=5):
        """True when the broker closes the socket within timeout."""
        self.s.settimeout(timeout)
        try:
            while True:
                d = self.s.recv(65536)
                if not d:
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.s.close()
