"""durability.py - helpers for the persistence tests (test_crash.py,
test_corruption.py, test_diskfull.py).

* `Client`: a small raw AMQP 0-9-1 client on top of rawamqp's framing. It
  pipelines publishes on a confirm channel (many outstanding, acks and nacks
  tracked by delivery tag), consumes with manual acks, and reports
  connection.blocked/unblocked (it advertises the capability). Raw so that a
  Python publisher can keep hundreds of persistent messages in flight, and
  so that a broker killed mid-frame is just an OSError.
* `read_segment` / `crc32c`: the journal's record format, for the tests that
  cut and damage segment files on purpose.
* `read_definitions`: what the data directory holds of the definitions
  while warrend runs: definitions.json with definitions.log folded in (an
  implementation of its own, so the broker's fold is checked, not reused).
* `recovered_count`: the "messages restored" figure of the last recovery
  line in a warrend log.

These tests only make sense against warrend (they kill it and edit its data
directory): `warrend_only()` is the skip reason when WARREN_TEST_PORT is set.
"""
import os
import re
import select
import socket
import struct
import time

from rawamqp import FRAME_END, frame, lstr, method, sstr, table

# ---- field tables (just what the tests declare) ---------------------------


def encode_value(v):
    if isinstance(v, bool):
        return b"t" + bytes([v])
    if isinstance(v, int):
        if -2 ** 31 <= v < 2 ** 31:
            return b"I" + struct.pack(">i", v)
        return b"l" + struct.pack(">q", v)
    if isinstance(v, (str, bytes)):
        return b"S" + lstr(v)
    raise TypeError("cannot encode %r" % (v,))


def encode_table(d):
    return table(b"".join(sstr(k) + encode_value(v) for k, v in (d or {}).items()))


# ---- content properties ---------------------------------------------------

# Property flag bits, content-type first (bit 15).
_PROPS = [("content_type", "s"), ("content_encoding", "s"), ("headers", "F"),
          ("delivery_mode", "B"), ("priority", "B"), ("correlation_id", "s"),
          ("reply_to", "s"), ("expiration", "s"), ("message_id", "s"),
          ("timestamp", "Q"), ("type", "s"), ("user_id", "s"), ("app_id", "s"),
          ("cluster_id", "s")]


def encode_props(**kw):
    flags, out = 0, b""
    for i, (name, kind) in enumerate(_PROPS):
        v = kw.get(name)
        if v is None:
            continue
        flags |= 1 << (15 - i)
        if kind == "s":
            out += sstr(v)
        elif kind == "B":
            out += bytes([v])
        elif kind == "Q":
            out += struct.pack(">Q", v)
        else:
            out += encode_table(v)
    return flags, out


def decode_props(flags, data):
    props, off = {}, 0
    for i, (name, kind) in enumerate(_PROPS):
        if not flags & (1 << (15 - i)):
            continue
        if kind == "s":
            n = data[off]
            props[name] = data[off + 1:off + 1 + n].decode(errors="replace")
            off += 1 + n
        elif kind == "B":
            props[name] = data[off]
            off += 1
        elif kind == "Q":
            props[name] = struct.unpack(">Q", data[off:off + 8])[0]
            off += 8
        else:  # a table: kept raw
            (n,) = struct.unpack(">I", data[off:off + 4])
            props[name] = data[off + 4:off + 4 + n]
            off += 4 + n
    return props


# ---- the client -------------------------------------------------------------


class Closed(Exception):
    """The broker closed a channel or the connection: .kind ('channel' or
    'connection'), .code, .text."""

    def __init__(self, kind, code, text):
        super().__init__("%s closed: %d %s" % (kind, code, text))
        self.kind, self.code, self.text = kind, code, text


class Message:
    __slots__ = ("kind", "channel", "tag", "redelivered", "exchange", "routing_key",
                 "props", "body", "extra")

    def __repr__(self):
        return "<%s tag=%s redelivered=%s rk=%s body=%r>" % (
            self.kind, self.tag, self.redelivered, self.routing_key, self.body[:40])


class Client:
    """One AMQP connection. Not thread-safe: one thread per Client.

    Events from `pump()` and `wait()`:
      ('ack', ch, tag, multiple) ('nack', ch, tag, multiple)   publisher confirms
      ('deliver', Message) ('return', Message) ('get', Message) ('get-empty', ch)
      ('blocked', reason) ('unblocked',)
      ('method', ch, class_id, method_id, args)                 anything else
    A channel.close or connection.close raises Closed (after answering it);
    a dropped socket raises OSError (ConnectionError)."""

    def __init__(self, host, port, timeout=10, frame_max=131072):
        self.s = socket.create_connection((host, port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pending = None  # content being assembled: [Message, size, parts, got]
        self.blocked = False
        self._handshake(frame_max)

    # -- raw I/O --
    def send(self, data):
        self.s.sendall(data)

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    def _read(self, timeout):
        """Read what is there (waiting up to `timeout`); False on timeout."""
        r, _, _ = select.select([self.s], [], [], timeout)
        if not r:
            return False
        d = self.s.recv(1 << 20)
        if not d:
            raise ConnectionResetError("broker closed the connection")
        self.buf += d
        return True

    def _frames(self):
        while len(self.buf) >= 7:
            t, ch, size = struct.unpack_from(">BHI", self.buf, 0)
            if len(self.buf) < 8 + size:
                return
            payload = bytes(self.buf[7:7 + size])
            if self.buf[7 + size:8 + size] != FRAME_END:
                raise ConnectionError("bad frame end from the broker")
            del self.buf[:8 + size]
            yield t, ch, payload

    def _event(self, t, ch, p):
        """Turn one frame into an event (or None while content is pending)."""
        if t == 8:
            return None
        if t == 2:
            m, _ = self.pending
            (size,) = struct.unpack(">Q", p[4:12])
            (flags,) = struct.unpack(">H", p[12:14])
            m.props = decode_props(flags, p[14:])
            self.pending = [m, size]
            m.body = b""
            return self._content_done()
        if t == 3:
            self.pending[0].body += p
            return self._content_done()
        cid, mid = struct.unpack(">HH", p[:4])
        a = p[4:]
        if (cid, mid) == (60, 80):
            tag, bits = struct.unpack(">QB", a[:9])
            return ("ack", ch, tag, bool(bits & 1))
        if (cid, mid) == (60, 120):
            tag, bits = struct.unpack(">QB", a[:9])
            return ("nack", ch, tag, bool(bits & 1))
        if (cid, mid) in ((60, 60), (60, 71), (60, 50)):
            m = Message()
            m.channel, m.extra = ch, None
            off = 0
            if mid == 60:
                n = a[0]
                m.extra = a[1:1 + n].decode()  # consumer tag
                off = 1 + n
            if mid in (60, 71):
                m.tag, bits = struct.unpack(">QB", a[off:off + 9])
                m.redelivered = bool(bits & 1)
                off += 9
            else:
                m.tag, m.redelivered = None, False
                (code,) = struct.unpack(">H", a[:2])
                n = a[2]
                m.extra = (code, a[3:3 + n].decode())
                off = 3 + n
            n = a[off]
            m.exchange = a[off + 1:off + 1 + n].decode()
            off += 1 + n
            n = a[off]
            m.routing_key = a[off + 1:off + 1 + n].decode()
            m.kind = {60: "deliver", 71: "get", 50: "return"}[mid]
            self.pending = [m, None]
            return None
        if (cid, mid) == (60, 72):
            return ("get-empty", ch)
        if (cid, mid) == (10, 60):
            self.blocked = True
            n = a[0]
            return ("blocked", a[1:1 + n].decode(errors="replace"))
        if (cid, mid) == (10, 61):
            self.blocked = False
            return ("unblocked",)
        if (cid, mid) in ((10, 50), (20, 40)):
            (code,) = struct.unpack(">H", a[:2])
            n = a[2]
            text = a[3:3 + n].decode(errors="replace")
            if cid == 10:
                try:
                    self.send(method(0, 10, 51))
                except OSError:
                    pass
                raise Closed("connection", code, text)
            self.send(method(ch, 20, 41))
            raise Closed("channel", code, text)
        return ("method", ch, cid, mid, a)

    def _content_done(self):
        m, size = self.pending
        if size is not None and len(m.body) >= size:
            self.pending = None
            return (m.kind, m)
        return None

    def pump(self, timeout=0.0):
        """Events that are available now (waiting up to `timeout` for the first
        bytes)."""
        out = []
        if self._read(timeout):
            # take whatever else is already queued without waiting
            while self._read(0):
                pass
        for f in self._frames():
            e = self._event(*f)
            if e is not None:
                out.append(e)
        return out

    def wait(self, pred, timeout=10.0, sink=None):
        """Pump until an event satisfies pred; return it. Other events go to
        `sink` (a list) when given."""
        deadline = time.monotonic() + timeout
        while True:
            for f in self._frames():
                e = self._event(*f)
                if e is None:
                    continue
                if pred(e):
                    return e
                if sink is not None:
                    sink.append(e)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no matching event within %.1fs" % timeout)
            self._read(left)

    def rpc(self, ch, cid, mid, args, reply, timeout=10.0, sink=None):
        self.send(method(ch, cid, mid, args))
        e = self.wait(lambda e: e[0] == "method" and e[1] == ch and e[2:4] == (cid, reply),
                      timeout, sink)
        return e[4]

    # -- handshake and setup --
    def _handshake(self, frame_max):
        self.send(b"AMQP\x00\x00\x09\x01")
        e = self.wait(lambda e: e[0] == "method")
        assert e[2:4] == (10, 10), e
        props = encode_table({"product": "warren-durability-test"})
        caps = sstr("capabilities") + b"F" + encode_table(
            {"publisher_confirms": True, "connection.blocked": True,
             "basic.nack": True, "consumer_cancel_notify": True})
        props = table(props[4:] + caps)
        resp = b"\x00guest\x00guest"
        self.send(method(0, 10, 11, props + sstr("PLAIN") + lstr(resp) + sstr("en_US")))
        e = self.wait(lambda e: e[0] == "method")
        assert e[2:4] == (10, 30), e
        _, sframe, _ = struct.unpack(">HIH", e[4][:8])
        self.frame_max = min(frame_max, sframe) if sframe else frame_max
        self.send(method(0, 10, 31, struct.pack(">HIH", 2047, self.frame_max, 0)))
        self.rpc(0, 10, 40, sstr("/") + sstr("") + b"\x00", 41)

    def channel(self, ch=1):
        self.rpc(ch, 20, 10, sstr(""), 11)
        return ch

    def confirm_select(self, ch=1):
        self.rpc(ch, 85, 10, b"\x00", 11)

    def exchange_declare(self, ch, name, type_, durable=True, passive=False, arguments=None):
        bits = passive | (durable << 1)
        self.rpc(ch, 40, 10, struct.pack(">H", 0) + sstr(name) + sstr(type_) + bytes([bits])
                 + encode_table(arguments), 11)

    def queue_declare(self, ch, name, durable=True, passive=False, arguments=None):
        """Returns (queue, message_count, consumer_count)."""
        bits = passive | (durable << 1)
        a = self.rpc(ch, 50, 10, struct.pack(">H", 0) + sstr(name) + bytes([bits])
                     + encode_table(arguments), 11)
        n = a[0]
        return (a[1:1 + n].decode(),) + struct.unpack(">II", a[1 + n:9 + n])

    def queue_bind(self, ch, queue, exchange, key, arguments=None):
        self.rpc(ch, 50, 20, struct.pack(">H", 0) + sstr(queue) + sstr(exchange) + sstr(key)
                 + b"\x00" + encode_table(arguments), 21)

    def queue_delete(self, ch, queue):
        self.rpc(ch, 50, 40, struct.pack(">H", 0) + sstr(queue) + b"\x00", 41)

    def qos(self, ch, prefetch):
        self.rpc(ch, 60, 10, struct.pack(">IHB", 0, prefetch, 0), 11)

    def consume(self, ch, queue, tag="", no_ack=False):
        a = self.rpc(ch, 60, 20, struct.pack(">H", 0) + sstr(queue) + sstr(tag)
                     + bytes([no_ack << 1]) + table(), 21)
        return a[1:1 + a[0]].decode()

    # -- messages --
    def publish_bytes(self, ch, exchange, routing_key, body, mandatory=False, **props):
        """The frames of one basic.publish (to batch into one send)."""
        flags, pdata = encode_props(**props)
        out = [method(ch, 60, 40, struct.pack(">H", 0) + sstr(exchange) + sstr(routing_key)
                      + bytes([1 if mandatory else 0])),
               frame(2, ch, struct.pack(">HHQH", 60, 0, len(body), flags) + pdata)]
        chunk = self.frame_max - 8
        for i in range(0, len(body), chunk):
            out.append(frame(3, ch, body[i:i + chunk]))
        return b"".join(out)

    @staticmethod
    def ack_bytes(ch, tag, multiple=False):
        return method(ch, 60, 80, struct.pack(">QB", tag, 1 if multiple else 0))

    def get(self, ch, queue, no_ack=False, timeout=10.0):
        """basic.get: a Message, or None when the queue is empty."""
        self.send(method(ch, 60, 70, struct.pack(">H", 0) + sstr(queue)
                         + bytes([1 if no_ack else 0])))
        e = self.wait(lambda e: e[0] in ("get", "get-empty") and
                      (e[1].channel if e[0] == "get" else e[1]) == ch, timeout)
        return e[1] if e[0] == "get" else None


class Confirms:
    """Publisher-confirm bookkeeping for one confirm channel: seq -> item."""

    def __init__(self):
        self.seq = 0
        self.out = {}       # seq -> item, not yet settled
        self.acked = []
        self.nacked = []

    def sent(self, item):
        self.seq += 1
        self.out[self.seq] = item
        return self.seq

    def settle(self, tag, multiple, ok):
        seqs = [s for s in self.out if s <= tag] if multiple else ([tag] if tag in self.out
                                                                   else [])
        for s in sorted(seqs):
            (self.acked if ok else self.nacked).append(self.out.pop(s))
        return len(seqs)

    def on_event(self, e):
        if e[0] == "ack":
            return self.settle(e[2], e[3], True)
        if e[0] == "nack":
            return self.settle(e[2], e[3], False)
        return 0


# ---- the journal format -----------------------------------------------------

MAGIC = 0x574A524C  # "WJRL"
HEADER = 12


def _crc_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


_CRC = _crc_table()


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = _CRC[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


class Record:
    __slots__ = ("offset", "size", "type", "payload")

    def __init__(self, offset, size, type_, payload):
        self.offset, self.size, self.type, self.payload = offset, size, type_, payload

    @property
    def msg_id(self):
        return struct.unpack(">Q", self.payload[:8])[0]

    def body(self):
        """The body of a publish ('P') record."""
        p = self.payload
        (nq,) = struct.unpack(">H", p[16:18])
        off = 18 + 8 * nq
        off += 1 + p[off]              # exchange
        off += 1 + p[off]              # routing key
        (n,) = struct.unpack(">I", p[off:off + 4])
        off += 4 + n                   # properties
        (n,) = struct.unpack(">I", p[off:off + 4])
        return p[off + 4:off + 4 + n]


def read_segment(path):
    """Every record of a segment file, checking magic, length and CRC (an
    AssertionError for anything else: the tests read files they made)."""
    with open(path, "rb") as f:
        data = f.read()
    recs, off = [], 0
    while off < len(data):
        magic, length, crc = struct.unpack(">III", data[off:off + HEADER])
        assert magic == MAGIC, "no record magic at %s:%d" % (path, off)
        payload = data[off + HEADER:off + HEADER + length]
        assert len(payload) == length, "short record at %s:%d" % (path, off)
        assert crc32c(payload) == crc, "bad crc at %s:%d" % (path, off)
        recs.append(Record(off, HEADER + length, chr(payload[0]), payload[1:]))
        off += HEADER + length
    return recs, data


def segments(data_dir):
    d = os.path.join(data_dir, "journal")
    return sorted(os.path.join(d, n) for n in os.listdir(d) if re.fullmatch(r"\d{8}\.wjl", n))


# ---- logs -------------------------------------------------------------------

RECOVERY_RE = re.compile(r"recovery: .*?(\d+) messages restored")


def read_definitions(data_dir):
    """definitions.json with the intact lines of definitions.log applied:
    puts and deletions in order, a deleted queue or exchange taking the
    bindings written before its deletion with it."""
    import json
    with open(os.path.join(data_dir, "definitions.json")) as f:
        doc = json.load(f)
    try:
        with open(os.path.join(data_dir, "definitions.log"), "rb") as f:
            lines = f.read().split(b"\n")[:-1]
    except FileNotFoundError:
        lines = []

    def key(e, fields):
        return tuple(e.get(k + "_raw", e.get(k)) for k in fields)
    qid, bid = ("vhost", "name"), ("vhost", "source", "destination_type", "destination",
                                    "routing_key", "arguments_raw")
    objs = {"queue": {key(e, qid): (e, 0) for e in doc.get("queues", [])},
            "exchange": {key(e, qid): (e, 0) for e in doc.get("exchanges", [])},
            "binding": {key(e, bid): (e, 0) for e in doc.get("bindings", [])}}
    deleted = {"queue": {}, "exchange": {}}
    for raw in lines:
        crc, _, text = raw.partition(b" ")
        if int(crc, 16) != crc32c(text):
            break  # a torn tail
        line = json.loads(text)
        if line["seq"] <= doc.get("warren_defs_seq", 0):
            continue
        kind, e = line["kind"], line["entry"]
        k = key(e, bid if kind == "binding" else qid)
        if line["op"] == "put":
            objs[kind][k] = (e, line["seq"])
        else:
            objs[kind].pop(k, None)
            if kind != "binding":
                deleted[kind][k] = line["seq"]

    def alive(e, seq):
        dst = "exchange" if e["destination_type"] == "exchange" else "queue"
        return (deleted["exchange"].get(key(e, ("vhost", "source")), -1) < seq and
                deleted[dst].get(key(e, ("vhost", "destination")), -1) < seq)
    doc["queues"] = [e for e, _ in objs["queue"].values()]
    doc["exchanges"] = [e for e, _ in objs["exchange"].values()]
    doc["bindings"] = [e for e, s in objs["binding"].values() if alive(e, s)]
    return doc


def recovered_count(log_text):
    """'messages restored' of the last recovery line, or None."""
    m = RECOVERY_RE.findall(log_text)
    return int(m[-1]) if m else None


def warrend_only():
    if os.environ.get("WARREN_TEST_PORT"):
        return "kills and restarts warrend and edits its data directory: warrend only"
    return None
