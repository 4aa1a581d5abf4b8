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
