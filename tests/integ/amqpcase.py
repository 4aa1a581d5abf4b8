"""amqpcase.py - shared helpers for the protocol-semantics integration tests
(test_exchange.py, test_queue.py, test_basic.py).

`AmqpCase` is a `harness.BrokerTestCase` that gives every test a pika
connection and channel, a confirm-mode publisher channel, helpers to assert
the exact reply code of a channel or connection error, event-driven waits
(no blind sleeps), cleanup of the named exchanges and queues a test creates,
and a thin wrapper around rabbitmq-c's amqp-tools so that a second,
independent client implementation is exercised too.

`RawClient` extends rawamqp.Peer (without changing it) with the few methods
the tests need to see wire-level details that pika hides: server-generated
consumer tags, duplicate tags, and the `multiple` flag of publisher confirms.
"""
import contextlib
import shutil
import struct
import subprocess
import time

import pika.exceptions as pex

from harness import HOST, BrokerTestCase
from rawamqp import Peer, frame, method, sstr, table

# AMQP 0-9-1 reply codes used by the tests.
NO_ROUTE = 312
ACCESS_REFUSED = 403
NOT_FOUND = 404
RESOURCE_LOCKED = 405
PRECONDITION_FAILED = 406
COMMAND_INVALID = 503
NOT_ALLOWED = 530
NOT_IMPLEMENTED = 540

# How long a negative check ("nothing more arrives") listens. The positive
# part of each check is event driven; this only bounds the silence we accept
# as "no more deliveries".
QUIET = 0.3


class AmqpCase(BrokerTestCase):
    def setUp(self):
        self._to_delete = []          # ("exchange"|"queue", name)
        self.addCleanup(self._delete_leftovers)
        self.conn = self.new_connection()
        self.ch = self.conn.channel()

    # ---- connections and channels -------------------------------------
    def new_connection(self, **kw):
        c = self.connect(**kw)
        self.addCleanup(_close_quietly, c)
        return c

    def confirm_channel(self, conn=None):
        """A channel in confirm mode: BlockingChannel.basic_publish returns only
        once the broker acked the message, i.e. once it has been routed to and
        enqueued on every matching queue (raises UnroutableError for a
        returned mandatory message, NackError for a nack)."""
        ch = (conn or self.conn).channel()
        ch.confirm_delivery()
        return ch

    # ---- things to clean up ---------------------------------------------
    def exchange(self, type_="direct", name=None, ch=None, **kw):
        name = name or self.unique("x")
        (ch or self.ch).exchange_declare(name, type_, **kw)
        self._to_delete.append(("exchange", name))
        return name

    def queue(self, name=None, ch=None, **kw):
        """Declare a named (non-exclusive) queue, deleted after the test."""
        name = name or self.unique("q")
        ok = (ch or self.ch).queue_declare(name, **kw)
        self._to_delete.append(("queue", name))
        return ok.method.queue

    def temp_queue(self, ch=None, **kw):
        """A server-named exclusive queue (gone with the connection)."""
        return (ch or self.ch).queue_declare("", exclusive=True, **kw).method.queue

    def forget(self, kind, name):
        self._to_delete.append((kind, name))

    def _delete_leftovers(self):
        if not self._to_delete:
            return
        c = self.connect()
        try:
            ch = c.channel()
            for kind, name in reversed(self._to_delete):
                try:
                    if kind == "exchange":
                        ch.exchange_delete(name)
                    else:
                        ch.queue_delete(name)
                except pex.AMQPError:
                    ch = c.channel()
        finally:
            _close_quietly(c)

    # ---- error assertions -----------------------------------------------
    @contextlib.contextmanager
    def channel_error(self, code, ch=None, text=None):
        """The body must make the broker close the channel with `code`. An
        asynchronous method (publish, ack...) only fails at the next
        synchronous one, so the context manager sends one if needed."""
        ch = ch or self.ch
        with self.assertRaises(pex.ChannelClosedByBroker) as cm:
            yield cm
            sync(ch)
        self.assertEqual(cm.exception.reply_code, code, cm.exception.reply_text)
        if text is not None:
            self.assertIn(text, cm.exception.reply_text)
        self.assertTrue(ch.is_closed)
        self.assertTrue(ch.connection.is_open, "a channel error must not close the connection")

    @contextlib.contextmanager
    def connection_error(self, code, ch=None, text=None):
        ch = ch or self.ch
        with self.assertRaises(pex.ConnectionClosedByBroker) as cm:
            yield cm
            sync(ch)
        self.assertEqual(cm.exception.reply_code, code, cm.exception.reply_text)
        if text is not None:
            self.assertIn(text, cm.exception.reply_text)
        self.assertTrue(ch.connection.is_closed)

    def assertQueueMissing(self, name, conn=None):
        ch = (conn or self.conn).channel()
        with self.channel_error(NOT_FOUND, ch):
            ch.queue_declare(name, passive=True)

    def assertExchangeMissing(self, name, conn=None):
        ch = (conn or self.conn).channel()
        with self.channel_error(NOT_FOUND, ch):
            ch.exchange_declare(name, passive=True)

    def counts(self, q, ch=None):
        """(message_count, consumer_count) of a passive declare."""
        m = (ch or self.ch).queue_declare(q, passive=True).method
        return m.message_count, m.consumer_count

    # ---- waiting ----------------------------------------------------------
    def wait_until(self, pred, timeout=5.0, conn=None, what="condition"):
        """Process events until pred() is true; fail after timeout."""
        conn = conn or self.conn
        deadline = time.monotonic() + timeout
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0:
                self.fail("timed out waiting for %s" % what)
            conn.process_data_events(time_limit=min(0.05, left))

    def quiet(self, conn=None, seconds=QUIET):
        """Let the broker send anything it still wants to (for checks that
        nothing more arrives)."""
        (conn or self.conn).process_data_events(time_limit=seconds)

    def eventually(self, fn, timeout=5.0, what="condition"):
        """Retry fn() (which raises AssertionError while not yet true)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return fn()
            except AssertionError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.02)

    # ---- rabbitmq-c amqp-tools -------------------------------------------
    def tool(self, name, *args, input=None, check=True, timeout=30):
        exe = shutil.which(name)
        if not exe:
            self.skipTest("%s (amqp-tools) not installed" % name)
        argv = [exe, "--server", HOST, "--port", str(self.broker.port),
                "--username", "guest", "--password", "guest"] + list(args)
        p = subprocess.run(argv, input=input, capture_output=True, timeout=timeout)
        if check and p.returncode != 0:
            self.fail("%s failed (%d): %s" % (name, p.returncode, p.stderr.decode(errors="replace")))
        return p

    # ---- raw peer ---------------------------------------------------------
    def raw(self):
        r = RawClient(HOST, self.broker.port)
        self.addCleanup(r.close)
        r.handshake()
        return r


def sync(ch):
    """One synchronous round trip on ch (flushes an earlier async error)."""
    ch.exchange_declare("amq.direct", passive=True)


def _close_quietly(c):
    try:
        if c.is_open:
            c.close()
    except Exception:
        pass


def drain(ch, q, ack=True):
    """basic.get until get-empty; returns [(body, redelivered)]."""
    out = []
    while True:
        m, p, b = ch.basic_get(q, auto_ack=ack)
        if m is None:
            return out
        out.append((b.decode(), m.redelivered))


def bodies(ch, q):
    return [b for b, _ in drain(ch, q)]


class RawClient(Peer):
    """rawamqp.Peer plus the methods the semantic tests need."""

    def call(self, ch, cid, mid, args, expect):
        self.send(method(ch, cid, mid, args))
        r = self.recv_method()
        assert r is not None, "connection closed"
        assert r[1:3] == expect, "expected %r, got %r" % (expect, r[1:3])
        return r[3]

    def queue_declare(self, ch, name="", exclusive=True):
        args = self.call(ch, 50, 10, b"\0\0" + sstr(name) + bytes([4 if exclusive else 0]) + table(),
                         (50, 11))
        return args[1:1 + args[0]].decode()

    def consume(self, ch, queue, tag="", no_ack=False, exclusive=False):
        """Send basic.consume; return the tag of consume-ok (or raise)."""
        bits = (2 if no_ack else 0) | (4 if exclusive else 0)
        args = self.call(ch, 60, 20, b"\0\0" + sstr(queue) + sstr(tag) + bytes([bits]) + table(),
                         (60, 21))
        return args[1:1 + args[0]].decode()

    def publish(self, ch, exchange, key, body, mandatory=False):
        """basic.publish with empty properties, split to the negotiated frame size."""
        data = method(ch, 60, 40, b"\0\0" + sstr(exchange) + sstr(key) + bytes([1 if mandatory else 0]))
        data += frame(2, ch, struct.pack(">HHQH", 60, 0, len(body), 0))
        step = self.frame_max - 8
        for i in range(0, len(body), step):
            data += frame(3, ch, body[i:i + step])
        return data

    def confirm_select(self, ch):
        self.call(ch, 85, 10, b"\0", (85, 11))


def ack_args(args):
    """(delivery_tag, multiple) of a basic.ack / basic.nack."""
    tag, bits = struct.unpack(">QB", args[:9])
    return tag, bool(bits & 1)


# ---------------------------------------------------------------------------
# Additions for the queue-semantics tests of issue 4 (test_ttl, test_maxlen,
# test_priority, test_dlx, test_delivery_limit, test_consumers). Everything
# below is new; nothing above changes.
# ---------------------------------------------------------------------------

import collections  # noqa: E402
import datetime  # noqa: E402

import pika  # noqa: E402

# A delivery seen by a test: body is decoded text, props the pika
# BasicProperties, ch the channel it arrived on (for ack/nack).
Msg = collections.namedtuple("Msg", "ch tag dtag body redelivered exchange routing_key props")


def to_msg(ch, m, p, b):
    """A Msg from a basic.deliver or basic.get-ok as pika hands them over."""
    return Msg(ch, getattr(m, "consumer_tag", None), m.delivery_tag, b.decode(errors="replace"),
               m.redelivered, m.exchange, m.routing_key, p)


def server_product(conn):
    """The `product` server property of a pika BlockingConnection (str)."""
    v = conn._impl.server_properties.get("product", b"")
    return v.decode() if isinstance(v, bytes) else str(v)


class SemanticsCase(AmqpCase):
    """AmqpCase plus what the issue-4 tests share: a confirm-mode publisher
    (self.pub), push consumers that collect deliveries, waits on several
    connections at once, queue-existence probes that do not count as a use
    of the queue, RabbitMQ detection for the few warrend-only assertions,
    and a raw basic.get that keeps the AMQP type tag of every header value."""

    def setUp(self):
        super().setUp()
        self.pub = self.confirm_channel()

    # ---- broker identity ----------------------------------------------------
    @property
    def is_rabbitmq(self):
        return server_product(self.conn) == "RabbitMQ"

    def warren_only(self, why):
        """Skip the rest of the test on RabbitMQ, which behaves differently
        (`why` says how); the assertion is what issue 4 asks of warrend."""
        if self.is_rabbitmq:
            self.skipTest("warrend only: " + why)

    # ---- publishing -----------------------------------------------------------
    def send(self, routing_key, body, exchange="", ch=None, mandatory=False, **props):
        """Publish one message on the confirm channel (returns once acked;
        raises pika's NackError / UnroutableError). props are BasicProperties
        fields, e.g. expiration="200", priority=3, headers={...}."""
        if isinstance(body, int):
            body = str(body)
        body = body.encode() if isinstance(body, str) else body
        (ch or self.pub).basic_publish(exchange, routing_key, body,
                                       pika.BasicProperties(**props), mandatory=mandatory)

    def send_all(self, routing_key, bodies_, **props):
        for b in bodies_:
            self.send(routing_key, str(b), **props)

    def try_send(self, routing_key, body, **kw):
        """'ack', 'nack' or 'returned' for one confirmed publish."""
        try:
            self.send(routing_key, body, **kw)
            return "ack"
        except pex.NackError:
            return "nack"
        except pex.UnroutableError:
            return "returned"

    def exists(self, q):
        """Whether queue q exists, found out with a mandatory publish of an
        empty message through the default exchange: unlike a passive
        declare or a basic.get, a publish does not count as a use of the
        queue (so it does not renew x-expires). Adds that message to q."""
        return self.try_send(q, b"", mandatory=True) == "ack"

    # ---- consuming ------------------------------------------------------------
    def listen(self, q, ch=None, conn=None, auto_ack=False, prefetch=None, tag=None,
               arguments=None, on_message=None, exclusive=False):
        """Start a push consumer; returns (inbox list of Msg, channel, tag).
        on_message(msg), when given, runs for each delivery (e.g. to nack)."""
        if ch is None:
            ch = (conn or self.conn).channel()
        if prefetch is not None:
            ch.basic_qos(prefetch_count=prefetch)
        inbox = []

        def cb(c, m, p, b):
            msg = to_msg(c, m, p, b)
            inbox.append(msg)
            if on_message:
                on_message(msg)
        kw = {"consumer_tag": tag} if tag else {}
        tag = ch.basic_consume(q, cb, auto_ack=auto_ack, arguments=arguments,
                               exclusive=exclusive, **kw)
        return inbox, ch, tag

    def pump(self, pred, conns=None, timeout=5.0, what="condition"):
        """Process events of every connection in conns (default: self.conn)
        until pred() is true; fail after timeout seconds."""
        conns = conns or [self.conn]
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() >= deadline:
                self.fail("timed out after %.1fs waiting for %s" % (timeout, what))
            for c in conns:
                if c.is_open:
                    c.process_data_events(time_limit=0.01 if len(conns) > 1 else 0.03)

    def settle(self, conns=None, seconds=QUIET):
        """Let the broker send whatever it still wants to, on every connection."""
        conns = conns or [self.conn]
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for c in conns:
                if c.is_open:
                    c.process_data_events(time_limit=0.02)

    def expect(self, inbox, n, conns=None, timeout=5.0, what=None):
        """Wait for exactly n messages in inbox (n arrive, then no more)."""
        self.pump(lambda: len(inbox) >= n, conns, timeout,
                  what or "%d deliveries (have %d)" % (n, len(inbox)))
        self.settle(conns)
        self.assertEqual(len(inbox), n, [m.body for m in inbox])
        return inbox

    def wait_ready(self, q, n, timeout=5.0, ch=None):
        """Wait until a passive declare reports message_count == n."""
        ch = ch or self.ch
        last = [None]

        def ok():
            last[0] = ch.queue_declare(q, passive=True).method.message_count
            return last[0] == n
        deadline = time.monotonic() + timeout
        while not ok():
            if time.monotonic() >= deadline:
                self.fail("queue %s: message_count %s, expected %d within %.1fs"
                          % (q, last[0], n, timeout))
            self.conn.process_data_events(time_limit=0.02)

    def ready(self, q, ch=None):
        return (ch or self.ch).queue_declare(q, passive=True).method.message_count

    def get_all(self, q, ch=None):
        """basic.get (auto-ack) until empty; list of Msg."""
        ch = ch or self.ch
        out = []
        while True:
            m, p, b = ch.basic_get(q, auto_ack=True)
            if m is None:
                return out
            out.append(to_msg(ch, m, p, b))

    def dead_letter_queue(self):
        """(dlx args for a source queue, dlq name): the source dead-letters
        through the default exchange straight into a fresh queue."""
        dlq = self.queue()
        return {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq}, dlq

    # ---- x-death --------------------------------------------------------------
    def assertRecentTime(self, t, slack=10):
        """A 'T' header value as pika decodes it (a naive UTC datetime) that
        is within slack seconds of now."""
        self.assertIsInstance(t, datetime.datetime)
        now = datetime.datetime.utcnow()
        self.assertLessEqual(abs((now - t).total_seconds()), slack, t)

    def deaths(self, props):
        """x-death of a message as [(queue, reason, count), ...] in header order."""
        return [(d["queue"], d["reason"], d["count"]) for d in props.headers["x-death"]]

    # ---- raw, typed -------------------------------------------------------------
    def typed_get(self, q):
        """basic.get (no-ack) over a raw connection; returns a dict with
        delivery_tag, redelivered, exchange, routing_key, message_count, body
        and props, where props maps each present property to its value and
        'headers' is a typed table (see decode_typed_table), or None on
        get-empty."""
        r = RawClient(HOST, self.broker.port)
        try:
            r.handshake()
            r.open_channel(1)
            return r.get_typed(1, q)
        finally:
            r.close()


# Typed field-table decoding: every value is a (tag, value) pair so that a
# test can assert the exact AMQP type RabbitMQ uses ('l' long, 'S' long
# string, 'T' timestamp, 'A' array, 'F' table...). Strings stay bytes.
_FIXED = {b"t": ">B", b"b": ">b", b"B": ">B", b"s": ">h", b"u": ">H", b"I": ">i", b"i": ">I",
          b"l": ">q", b"L": ">Q", b"f": ">f", b"d": ">d", b"T": ">Q"}


def decode_typed_value(data, off):
    tag = data[off:off + 1]
    off += 1
    if tag in _FIXED:
        n = struct.calcsize(_FIXED[tag])
        (v,) = struct.unpack(_FIXED[tag], data[off:off + n])
        return (tag.decode(), v), off + n
    if tag == b"D":
        return ("D", struct.unpack(">Bi", data[off:off + 5])), off + 5
    if tag in (b"S", b"x"):
        (n,) = struct.unpack(">I", data[off:off + 4])
        return (tag.decode(), data[off + 4:off + 4 + n]), off + 4 + n
    if tag == b"F":
        t, off = decode_typed_table(data, off)
        return ("F", t), off
    if tag == b"A":
        (n,) = struct.unpack(">I", data[off:off + 4])
        off += 4
        end, items = off + n, []
        while off < end:
            v, off = decode_typed_value(data, off)
            items.append(v)
        return ("A", items), off
    if tag == b"V":
        return ("V", None), off
    raise ValueError("unknown field type %r" % tag)


def decode_typed_table(data, off=0):
    """A field table at data[off] -> ({key: (tag, value)}, offset after it)."""
    (n,) = struct.unpack(">I", data[off:off + 4])
    off += 4
    end, out = off + n, {}
    while off < end:
        k = data[off + 1:off + 1 + data[off]].decode()
        off += 1 + data[off]
        out[k], off = decode_typed_value(data, off)
    return out, off


# basic class properties in flag order (bit 15 first) and how they are coded
_BASIC_PROPS = [("content_type", "s"), ("content_encoding", "s"), ("headers", "F"),
                ("delivery_mode", "o"), ("priority", "o"), ("correlation_id", "s"),
                ("reply_to", "s"), ("expiration", "s"), ("message_id", "s"),
                ("timestamp", "L"), ("type", "s"), ("user_id", "s"), ("app_id", "s"),
                ("cluster_id", "s")]


def decode_basic_properties(flags, data, off=0):
    props = {}
    for i, (name, kind) in enumerate(_BASIC_PROPS):
        if not flags & (1 << (15 - i)):
            continue
        if kind == "s":
            n = data[off]
            props[name] = data[off + 1:off + 1 + n].decode()
            off += 1 + n
        elif kind == "o":
            props[name] = data[off]
            off += 1
        elif kind == "L":
            (props[name],) = struct.unpack(">Q", data[off:off + 8])
            off += 8
        else:
            props[name], off = decode_typed_table(data, off)
    return props


def _raw_get_typed(self, ch, queue):
    self.send(method(ch, 60, 70, b"\0\0" + sstr(queue) + b"\x01"))
    r = self.recv_method()
    assert r is not None, "connection closed"
    if r[1:3] == (60, 72):
        return None
    assert r[1:3] == (60, 71), r
    a = r[3]
    tag, bits = struct.unpack(">QB", a[:9])
    off = 9
    ex = a[off + 1:off + 1 + a[off]].decode()
    off += 1 + a[off]
    rk = a[off + 1:off + 1 + a[off]].decode()
    off += 1 + a[off]
    (count,) = struct.unpack(">I", a[off:off + 4])
    t, _, payload = self.recv_frame()
    assert t == 2, "expected a content header, got frame type %d" % t
    _, _, size, flags = struct.unpack(">HHQH", payload[:14])
    props = decode_basic_properties(flags, payload, 14)
    body = b""
    while len(body) < size:
        t, _, payload = self.recv_frame()
        assert t == 3, "expected a body frame, got frame type %d" % t
        body += payload
    return {"delivery_tag": tag, "redelivered": bool(bits & 1), "exchange": ex,
            "routing_key": rk, "message_count": count, "body": body, "props": props}


RawClient.get_typed = _raw_get_typed
