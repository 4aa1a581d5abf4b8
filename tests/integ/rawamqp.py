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


# ---------------------------------------------------------------------------
# Additions for the connection/channel integration tests (test_connection,
# test_channel, test_adversarial, test_many_connections). Everything below is
# new; nothing above changes behaviour.
# ---------------------------------------------------------------------------

import time  # noqa: E402

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"

# Frame types.
METHOD, HEADER, BODY, HEARTBEAT = 1, 2, 3, 8

# Reply codes (AMQP 0-9-1 constants).
REPLY_SUCCESS = 200
CONTENT_TOO_LARGE = 311
NO_ROUTE = 312
NO_CONSUMERS = 313
CONNECTION_FORCED = 320
INVALID_PATH = 402
ACCESS_REFUSED = 403
NOT_FOUND = 404
RESOURCE_LOCKED = 405
PRECONDITION_FAILED = 406
FRAME_ERROR = 501
SYNTAX_ERROR = 502
COMMAND_INVALID = 503
CHANNEL_ERROR = 504
UNEXPECTED_FRAME = 505
RESOURCE_ERROR = 506
NOT_ALLOWED = 530
NOT_IMPLEMENTED = 540
INTERNAL_ERROR = 541


class Decimal(tuple):
    """A field-table decimal: (scale, unscaled value)."""


class Timestamp(int):
    """A field-table timestamp (seconds since the epoch)."""


def _decode_value(data, off):
    """Decode one typed field value at data[off]; return (value, new offset).
    Raises ValueError on an unknown type tag or truncated data."""
    if off >= len(data):
        raise ValueError("truncated field value")
    tag = data[off:off + 1]
    off += 1

    def take(n):
        if off + n > len(data):
            raise ValueError("truncated field value of type %r" % tag)
        return data[off:off + n]

    fixed = {b"t": ">B", b"b": ">b", b"B": ">B", b"s": ">h", b"u": ">H", b"I": ">i",
             b"i": ">I", b"l": ">q", b"L": ">Q", b"f": ">f", b"d": ">d", b"T": ">Q"}
    if tag in fixed:
        fmt = fixed[tag]
        n = struct.calcsize(fmt)
        (v,) = struct.unpack(fmt, take(n))
        if tag == b"t":
            v = bool(v)
        elif tag == b"T":
            v = Timestamp(v)
        return v, off + n
    if tag == b"D":
        scale, unscaled = struct.unpack(">Bi", take(5))
        return Decimal((scale, unscaled)), off + 5
    if tag in (b"S", b"x"):
        (n,) = struct.unpack(">I", take(4))
        off += 4
        v = take(n)
        return v, off + n
    if tag == b"F":
        return decode_table(data, off)
    if tag == b"A":
        (n,) = struct.unpack(">I", take(4))
        off += 4
        end = off + n
        if end > len(data):
            raise ValueError("truncated array")
        items = []
        while off < end:
            v, off = _decode_value(data, off)
            items.append(v)
        if off != end:
            raise ValueError("array overruns its length")
        return items, off
    if tag == b"V":
        return None, off
    raise ValueError("unknown field type %r" % tag)


def decode_table(data, off=0):
    """Decode a field table (long length + entries) at data[off]. Returns
    (dict, offset after the table). Keys are str, long strings stay bytes,
    nested tables are dicts, arrays lists, booleans bool."""
    if off + 4 > len(data):
        raise ValueError("truncated table length")
    (n,) = struct.unpack(">I", data[off:off + 4])
    off += 4
    end = off + n
    if end > len(data):
        raise ValueError("truncated table")
    out = {}
    while off < end:
        klen = data[off]
        key = data[off + 1:off + 1 + klen].decode(errors="replace")
        off += 1 + klen
        out[key], off = _decode_value(data, off)
    if off != end:
        raise ValueError("table entries overrun its length")
    return out, off


def encode_value(v):
    """Encode one field value, choosing the type from the Python type:
    bool t, int I (or l when it does not fit), float d, str/bytes S,
    dict F, list A, None V."""
    if isinstance(v, bool):
        return b"t" + bytes([1 if v else 0])
    if isinstance(v, int):
        if -2 ** 31 <= v < 2 ** 31:
            return b"I" + struct.pack(">i", v)
        return b"l" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"d" + struct.pack(">d", v)
    if isinstance(v, (str, bytes)):
        return b"S" + lstr(v)
    if isinstance(v, dict):
        return b"F" + encode_table(v)
    if isinstance(v, (list, tuple)):
        body = b"".join(encode_value(x) for x in v)
        return b"A" + struct.pack(">I", len(body)) + body
    if v is None:
        return b"V"
    raise TypeError("cannot encode %r" % (v,))


def encode_table(d):
    """Encode a dict as a field table (with its long length prefix)."""
    return table(b"".join(sstr(k) + encode_value(v) for k, v in d.items()))


def parse_start(args):
    """connection.start arguments -> dict(version_major, version_minor,
    server_properties, mechanisms (list of str), locales (list of str))."""
    vmaj, vmin = args[0], args[1]
    props, off = decode_table(args, 2)
    (n,) = struct.unpack(">I", args[off:off + 4])
    mechs = args[off + 4:off + 4 + n].decode()
    off += 4 + n
    (n,) = struct.unpack(">I", args[off:off + 4])
    locales = args[off + 4:off + 4 + n].decode()
    return {"version_major": vmaj, "version_minor": vmin, "server_properties": props,
            "mechanisms": mechs.split(), "locales": locales.split()}


def parse_tune(args):
    """connection.tune / tune-ok arguments -> (channel_max, frame_max, heartbeat)."""
    return struct.unpack(">HIH", args[:8])


def parse_close(args):
    """connection.close / channel.close arguments ->
    (reply_code, reply_text, class_id, method_id)."""
    code = struct.unpack(">H", args[:2])[0]
    n = args[2]
    text = args[3:3 + n].decode(errors="replace")
    c, m = struct.unpack(">HH", args[3 + n:7 + n])
    return code, text, c, m


def amqplain_response(user, password):
    """The AMQPLAIN response: a field table *without* its length prefix,
    holding LOGIN and PASSWORD as long strings."""
    return encode_table({"LOGIN": user, "PASSWORD": password})[4:]


def queue_declare(channel, name, passive=False, durable=False, exclusive=False,
                  auto_delete=False, nowait=False, arguments=None, raw_arguments=None):
    """A queue.declare method frame. raw_arguments (bytes, with length prefix)
    overrides arguments, for hand-made malformed tables."""
    bits = (passive << 0) | (durable << 1) | (exclusive << 2) | (auto_delete << 3) | (nowait << 4)
    targs = raw_arguments if raw_arguments is not None else encode_table(arguments or {})
    return method(channel, 50, 10, struct.pack(">H", 0) + sstr(name) + bytes([bits]) + targs)


def basic_publish(channel, exchange, routing_key, mandatory=False, immediate=False):
    bits = (mandatory << 0) | (immediate << 1)
    return method(channel, 60, 40, struct.pack(">H", 0) + sstr(exchange) + sstr(routing_key)
                  + bytes([bits]))


def content_header(channel, body_size, class_id=60, flags=0, props=b""):
    return frame(HEADER, channel, struct.pack(">HHQH", class_id, 0, body_size, flags) + props)


def body_frames(channel, body, frame_max):
    """Split body into body frames that fit frame_max (0: one frame)."""
    chunk = frame_max - 8 if frame_max else max(len(body), 1)
    return b"".join(frame(BODY, channel, body[i:i + chunk])
                    for i in range(0, len(body), chunk))


def publish(channel, exchange, routing_key, body, frame_max=131072, **kw):
    """basic.publish + content header + body frames, as one byte string."""
    return (basic_publish(channel, exchange, routing_key, **kw)
            + content_header(channel, len(body)) + body_frames(channel, body, frame_max))


def basic_consume(channel, queue, tag="", no_ack=True, exclusive=False, nowait=False):
    bits = (0 << 0) | (no_ack << 1) | (exclusive << 2) | (nowait << 3)
    return method(channel, 60, 20, struct.pack(">H", 0) + sstr(queue) + sstr(tag)
                  + bytes([bits]) + table())


def basic_get(channel, queue, no_ack=True):
    return method(channel, 60, 70, struct.pack(">H", 0) + sstr(queue) + bytes([1 if no_ack else 0]))


def _peer_recv_frame_within(self, timeout):
    """Like recv_frame but with its own timeout; returns the frame, None when
    the socket closed, or 'timeout'."""
    old = self.s.gettimeout()
    self.s.settimeout(timeout)
    try:
        while True:
            if len(self.buf) >= 7:
                t, ch, size = struct.unpack(">BHI", self.buf[:7])
                if len(self.buf) >= 8 + size:
                    return self.recv_frame()
            try:
                d = self.s.recv(65536)
            except socket.timeout:
                return "timeout"
            except (ConnectionResetError, BrokenPipeError):
                return None
            if not d:
                return None
            self.buf += d
    finally:
        self.s.settimeout(old)


def _peer_recv_raw(self, timeout=5, limit=1 << 20):
    """Every byte the broker sends until it closes the socket (or timeout or
    limit bytes). Returns (bytes, closed)."""
    self.s.settimeout(timeout)
    data, self.buf = self.buf, b""
    try:
        while len(data) < limit:
            d = self.s.recv(65536)
            if not d:
                return data, True
            data += d
    except (ConnectionResetError, BrokenPipeError):
        return data, True
    except socket.timeout:
        return data, False
    return data, False


def _peer_start(self, header=PROTOCOL_HEADER):
    """Send the protocol header; return the parsed connection.start."""
    self.send(header)
    ch, cid, mid, args = self.recv_method()
    assert (ch, cid, mid) == (0, 10, 10), (ch, cid, mid)
    return parse_start(args)


def _peer_login(self, mechanism="PLAIN", response=None, user="guest", password="guest",
                client_properties=None):
    """Send connection.start-ok. Returns the next method (normally tune)
    or None when the broker dropped the socket."""
    if response is None:
        if mechanism == "PLAIN":
            response = b"\x00" + user.encode() + b"\x00" + password.encode()
        elif mechanism == "AMQPLAIN":
            response = amqplain_response(user, password)
        else:
            response = b""
    props = client_properties if client_properties is not None else {
        "product": "warren-rawamqp", "capabilities": {"authentication_failure_close": True}}
    self.send(method(0, 10, 11, encode_table(props) + sstr(mechanism) + lstr(response)
                     + sstr("en_US")))
    return self.recv_method()


def _peer_tune_open(self, tune_args, channel_max=None, frame_max=None, heartbeat=0,
                    vhost="/"):
    """Given the server's tune arguments, send tune-ok with the client's
    values (None = take the server's; 0 is sent as 0) and connection.open;
    return the reply (connection.open-ok, a connection.close, or None)."""
    smax, sframe, shb = parse_tune(tune_args)
    self.channel_max = smax if channel_max is None else channel_max
    self.frame_max = sframe if frame_max is None else frame_max
    self.heartbeat = heartbeat
    self.send(method(0, 10, 31, struct.pack(">HIH", self.channel_max, self.frame_max,
                                            heartbeat)))
    self.send(method(0, 10, 40, sstr(vhost) + sstr("") + b"\x00"))
    return self.recv_method()


def _peer_wait_close(self, timeout=10):
    """Wait for the broker to end the connection. Returns a tuple
    ('close', channel, code, text, class_id, method_id) when it sent
    connection.close (answered with close-ok, then the socket is awaited),
    ('channel-close', channel, code, text, class_id, method_id) for a
    channel.close (answered with close-ok), ('eof',) when the socket closed
    without a close method, or ('timeout',)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return ("timeout",)
        f = self.recv_frame_within(left)
        if f == "timeout":
            return ("timeout",)
        if f is None:
            return ("eof",)
        t, ch, p = f
        if t != METHOD or len(p) < 4:
            continue
        cid, mid = struct.unpack(">HH", p[:4])
        if (cid, mid) == (10, 50):
            code, text, c, m = parse_close(p[4:])
            try:
                self.send(method(0, 10, 51))
            except OSError:
                pass
            return ("close", ch, code, text, c, m)
        if (cid, mid) == (20, 40):
            code, text, c, m = parse_close(p[4:])
            try:
                self.send(method(ch, 20, 41))
            except OSError:
                pass
            return ("channel-close", ch, code, text, c, m)


Peer.recv_frame_within = _peer_recv_frame_within
Peer.recv_raw = _peer_recv_raw
Peer.start = _peer_start
Peer.login = _peer_login
Peer.tune_open = _peer_tune_open
Peer.wait_close = _peer_wait_close


def open_peer(host, port, channel_max=0, frame_max=0, heartbeat=0, vhost="/",
              mechanism="PLAIN", user="guest", password="guest", timeout=10):
    """A Peer through the whole handshake up to connection.open-ok.
    channel_max / frame_max 0 take the server's proposal (so tune-ok never
    asks for more than the server offered)."""
    p = Peer(host, port, timeout=timeout)
    p.server_start = p.start()
    tune = p.login(mechanism, user=user, password=password)
    assert tune and tune[1:3] == (10, 30), tune
    p.server_tune = parse_tune(tune[3])
    rep = p.tune_open(tune[3], channel_max=channel_max or None, frame_max=frame_max or None,
                      heartbeat=heartbeat, vhost=vhost)
    assert rep and rep[1:3] == (10, 41), rep
    return p


def close_method(code=200, text="bye", class_id=0, method_id=0):
    """The arguments of connection.close / channel.close."""
    return struct.pack(">H", code) + sstr(text) + struct.pack(">HH", class_id, method_id)


def connect_peer(host, port, rcvbuf=None, timeout=10):
    """A Peer whose socket gets SO_RCVBUF=rcvbuf before connecting (a small
    receive window, for a consumer that stops reading)."""
    p = Peer.__new__(Peer)
    p.buf = b""
    p.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        p.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    p.s.settimeout(timeout)
    p.s.connect((host, port))
    return p
