"""test_exchange_graph - routing over deep exchange graphs and the
auto-delete cascade (issue 9), checked against RabbitMQ 3.10 behaviour.

Covers:
  * a chain of 200,000 auto-delete fanout exchanges bound one to the next
    (exchange.bind), a queue bound to the last: a message published to the
    first arrives in the queue, mandatory and not returned; deleting the
    queue makes the last exchange lose its only binding, which deletes it,
    which removes the binding into it from the one before, and so on: the
    whole chain is gone (passive declares of the first, middle and last
    exchange: 404) and the broker is still up. Warren used to recurse once
    per hop for both, and overflowed its stack (SIGSEGV) near 80,000 hops;
  * a chain of 200,000 exchanges each naming the next as its
    alternate-exchange: the message goes down the whole chain;
  * when the alternate exchange is used: only when the exchange's own
    bindings matched nothing (RabbitMQ's rabbit_exchange:route/2). A
    matching exchange-to-exchange binding counts even if the exchange it
    leads to routes nowhere, is already seen (a cycle), or the queue it
    leads to already has the message; the default exchange as an alternate
    exchange routes nothing (it routes by queue name only when published
    to). Warren used to try the alternate exchange whenever no new queue had
    been collected below the exchange;
  * the cascade deletes an auto-delete exchange when it loses its last
    binding as a source, never because it lost a binding as a destination,
    and a diamond (two auto-delete paths into one exchange) goes only when
    both paths are gone.

The chains are built with the raw peer and nowait methods, so 400,000
methods travel in a few pipelined writes and one synchronous method at the
end says they were all processed. WARREN_GRAPH_CHAIN sets the chain length
(default 200,000 against warrend, 300 against an external broker, where
RabbitMQ declares a few hundred exchanges a second).
"""
import os
import struct
import time

import pika.exceptions as pex

import harness
from amqpcase import NO_ROUTE, NOT_FOUND, AmqpCase, RawClient, bodies
from harness import HOST
from rawamqp import encode_table, method, publish, sstr, table

# Replies (class, method) the tests wait for.
EXCHANGE_DECLARE_OK = (40, 11)
QUEUE_BIND_OK, QUEUE_DELETE_OK = (50, 21), (50, 41)
BASIC_GET_OK, BASIC_GET_EMPTY = (60, 71), (60, 72)
CHANNEL_CLOSE = (20, 40)

# Generous: under ASan on a loaded machine the broker may take a while to
# chew through 400,000 methods; a broker that crashed closes the socket at
# once, so this only bounds a hang.
SOCKET_TIMEOUT = 300


def exchange_declare(ch, name, xtype, auto_delete=False, passive=False, nowait=False, args=None):
    bits = passive | (auto_delete << 2) | (nowait << 4)
    return method(ch, 40, 10, b"\0\0" + sstr(name) + sstr(xtype) + bytes([bits])
                  + (encode_table(args) if args else table()))


def exchange_bind(ch, dest, src, key="", nowait=False):
    return method(ch, 40, 30, b"\0\0" + sstr(dest) + sstr(src) + sstr(key) + bytes([nowait])
                  + table())


def exchange_delete(ch, name, nowait=False):
    return method(ch, 40, 20, b"\0\0" + sstr(name) + bytes([nowait << 1]))


def queue_bind(ch, q, x, key=""):
    return method(ch, 50, 20, b"\0\0" + sstr(q) + sstr(x) + sstr(key) + b"\0" + table())


class DeepGraphTests(AmqpCase):
    def chain_length(self):
        n = os.environ.get("WARREN_GRAPH_CHAIN")
        return int(n) if n else (300 if self.external else 200000)

    def peer(self):
        r = RawClient(HOST, self.broker.port, timeout=SOCKET_TIMEOUT)
        self.addCleanup(r.close)
        r.handshake()
        r.open_channel(1)
        return r

    def send_batched(self, r, frames):
        """Send an iterable of frames in writes of about 1 MB."""
        buf = []
        size = 0
        for f in frames:
            buf.append(f)
            size += len(f)
            if size > 1 << 20:
                r.send(b"".join(buf))
                buf, size = [], 0
        if buf:
            r.send(b"".join(buf))

    def expect(self, r, what, ch=1):
        """The next method on ch must be `what`; returns its arguments. Any
        other method (a channel.close for a failed nowait method, a
        basic.return) fails the test."""
        got = r.recv_method()
        self.assertIsNotNone(got, "the broker closed the connection (crashed?)")
        self.assertEqual((got[0],) + got[1:3], (ch,) + what, "unexpected method %r" % (got[:3],))
        return got[3]

    def get_body(self, r, q):
        """basic.get on channel 1; the body, or None for get-empty."""
        r.send(method(1, 60, 70, b"\0\0" + sstr(q) + b"\1"))
        got = r.recv_method()
        self.assertIsNotNone(got, "the broker closed the connection (crashed?)")
        if got[1:3] == BASIC_GET_EMPTY:
            return None
        self.assertEqual(got[1:3], BASIC_GET_OK, "unexpected method %r" % (got[:3],))
        t, _, p = r.recv_frame()
        self.assertEqual(t, 2)
        size = struct.unpack(">Q", p[4:12])[0]
        body = b""
        while len(body) < size:
            t, _, p = r.recv_frame()
            self.assertEqual(t, 3)
            body += p
        return body

    def assert_missing(self, r, name):
        """Passive declare on a fresh channel: 404 (the channel closes)."""
        r.open_channel(2)
        r.send(exchange_declare(2, name, "fanout", passive=True))
        got = r.recv_method()
        self.assertIsNotNone(got, "the broker closed the connection (crashed?)")
        self.assertEqual(got[1:3], CHANNEL_CLOSE, "exchange %r still exists" % name)
        self.assertEqual(struct.unpack(">H", got[3][:2])[0], NOT_FOUND)
        r.send(method(2, 20, 41))

    def assert_broker_up(self):
        c = self.new_connection()
        c.channel().exchange_declare("amq.fanout", passive=True)

    def build_chain(self, r, q):
        """A chain of auto-delete fanout exchanges, each bound to the next,
        the last one bound to q; returns their names, first to last."""
        n = self.chain_length()
        base = self.unique("chain")
        names = ["%s-%d" % (base, i) for i in range(n)]
        t0 = time.monotonic()
        self.send_batched(r, (exchange_declare(1, x, "fanout", auto_delete=True, nowait=True)
                              for x in names))
        # names[i] -> names[i + 1]: exchange.bind(destination, source)
        self.send_batched(r, (exchange_bind(1, names[i + 1], names[i], nowait=True)
                              for i in range(n - 1)))
        r.send(queue_bind(1, q, names[-1]))
        self.expect(r, QUEUE_BIND_OK)
        self.report("built", n, t0)
        return names

    def cascade(self, r, q, names):
        """Delete q: the whole chain must go, and the broker stay up."""
        t0 = time.monotonic()
        r.send(method(1, 50, 40, b"\0\0" + sstr(q) + b"\0"))
        self.expect(r, QUEUE_DELETE_OK)
        self.report("cascaded away", len(names), t0)
        for name in (names[-1], names[len(names) // 2], names[0]):
            self.assert_missing(r, name)
        self.assert_broker_up()

    def report(self, what, n, t0):
        print("\n  %d exchanges %s in %.3f s" % (n, what, time.monotonic() - t0), end=" ")

    def test_chain_routes(self):
        q = self.queue()
        r = self.peer()
        names = self.build_chain(r, q)
        t0 = time.monotonic()
        r.send(publish(1, names[0], "k", b"deep", mandatory=True))
        # Mandatory: a basic.return would come before get-ok.
        self.assertEqual(self.get_body(r, q), b"deep")
        self.assertIsNone(self.get_body(r, q))
        self.report("routed through", len(names), t0)
        self.cascade(r, q, names)

    def test_chain_cascades_away(self):
        q = self.queue()
        r = self.peer()
        self.cascade(r, q, self.build_chain(r, q))

    def test_alternate_exchange_chain(self):
        n = self.chain_length()
        base = self.unique("aechain")
        names = ["%s-%d" % (base, i) for i in range(n)]
        q = self.queue()
        r = self.peer()
        self.addCleanup(self.delete_all, names)
        # Direct exchanges with no bindings: each passes every message on
        # to the next one's alternate exchange; the last one is bound.
        self.send_batched(r, (exchange_declare(1, names[i], "direct", nowait=True,
                                               args={"alternate-exchange": names[i + 1]})
                              for i in range(n - 1)))
        r.send(exchange_declare(1, names[-1], "fanout"))
        self.expect(r, EXCHANGE_DECLARE_OK)
        r.send(queue_bind(1, q, names[-1]))
        self.expect(r, QUEUE_BIND_OK)
        r.send(publish(1, names[0], "k", b"ae", mandatory=True))
        self.assertEqual(self.get_body(r, q), b"ae")
        self.assert_broker_up()

    def delete_all(self, names):
        r = RawClient(HOST, self.broker.port, timeout=SOCKET_TIMEOUT)
        try:
            r.handshake()
            r.open_channel(1)
            self.send_batched(r, (exchange_delete(1, x, nowait=True) for x in names))
            r.send(exchange_declare(1, "amq.direct", "direct", passive=True))
            self.expect(r, EXCHANGE_DECLARE_OK)
        finally:
            r.close()


class AlternateRuleTests(AmqpCase):
    """When the alternate exchange is used (RabbitMQ 3.10, checked live)."""

    def setUp(self):
        super().setUp()
        self.pub = self.confirm_channel()

    def ae_with_queue(self):
        ae, q = self.exchange("fanout"), self.temp_queue()
        self.ch.queue_bind(q, ae)
        return ae, q

    def test_binding_to_exchange_that_routes_nowhere_counts(self):
        ae, ae_q = self.ae_with_queue()
        x = self.exchange("fanout", arguments={"alternate-exchange": ae})
        y = self.exchange("fanout")   # no bindings
        self.ch.exchange_bind(y, x)
        with self.assertRaises(pex.UnroutableError) as cm:
            self.pub.basic_publish(x, "", b"a", mandatory=True)
        self.assertEqual(cm.exception.messages[0].method.reply_code, NO_ROUTE)
        self.assertEqual(bodies(self.ch, ae_q), [])

    def test_binding_to_queue_already_collected_counts(self):
        ae, ae_q = self.ae_with_queue()
        q = self.temp_queue()
        a = self.exchange("fanout")
        x = self.exchange("fanout", arguments={"alternate-exchange": ae})
        self.ch.queue_bind(q, a)
        self.ch.exchange_bind(x, a)
        self.ch.queue_bind(q, x)
        self.pub.basic_publish(a, "", b"b")
        self.assertEqual(bodies(self.ch, q), ["b"])
        self.assertEqual(bodies(self.ch, ae_q), [])

    def test_cycle_counts(self):
        ae, ae_q = self.ae_with_queue()
        x = self.exchange("fanout", arguments={"alternate-exchange": ae})
        y = self.exchange("fanout")
        self.ch.exchange_bind(y, x)
        self.ch.exchange_bind(x, y)
        with self.assertRaises(pex.UnroutableError):
            self.pub.basic_publish(x, "", b"c", mandatory=True)
        self.assertEqual(bodies(self.ch, ae_q), [])

    def test_no_match_uses_alternate_down_a_chain(self):
        q = self.temp_queue()
        z = self.exchange("fanout")
        self.ch.queue_bind(q, z)
        y = self.exchange("direct", arguments={"alternate-exchange": z})
        x = self.exchange("direct", arguments={"alternate-exchange": y})
        self.pub.basic_publish(x, "k", b"d", mandatory=True)
        self.assertEqual(bodies(self.ch, q), ["d"])

    def test_e2e_destination_without_match_uses_its_own_alternate(self):
        ae, ae_q = self.ae_with_queue()
        x = self.exchange("fanout")
        y = self.exchange("direct", arguments={"alternate-exchange": ae})
        self.ch.exchange_bind(y, x)
        self.pub.basic_publish(x, "k", b"e", mandatory=True)
        self.assertEqual(bodies(self.ch, ae_q), ["e"])

    def test_alternate_cycle_terminates(self):
        x = self.unique("x")
        y = self.exchange("direct", arguments={"alternate-exchange": x})
        self.exchange("direct", name=x, arguments={"alternate-exchange": y})
        with self.assertRaises(pex.UnroutableError):
            self.pub.basic_publish(x, "k", b"f", mandatory=True)

    def test_default_exchange_as_alternate_routes_nothing(self):
        q = self.temp_queue()
        x = self.exchange("direct", arguments={"alternate-exchange": ""})
        with self.assertRaises(pex.UnroutableError):
            self.pub.basic_publish(x, q, b"g", mandatory=True)
        self.assertEqual(bodies(self.ch, q), [])


class CascadeTests(AmqpCase):
    def test_losing_a_binding_as_destination_does_not_delete(self):
        a = self.exchange("fanout", auto_delete=True)
        b = self.exchange("fanout", auto_delete=True)
        q = self.temp_queue()
        self.ch.exchange_bind(b, a)
        self.ch.queue_bind(q, b)
        self.ch.exchange_unbind(b, a)           # a lost its last binding: a goes
        self.assertExchangeMissing(a)
        self.conn.channel().exchange_declare(b, passive=True)   # b lost one into it: stays

    def test_unbinding_the_last_binding_deletes(self):
        x = self.exchange("fanout", auto_delete=True)
        q = self.temp_queue()
        self.ch.queue_bind(q, x)
        self.ch.queue_unbind(q, x)
        self.assertExchangeMissing(x)
        self.assert_usable()

    def test_durable_auto_delete_unbound(self):
        x = self.exchange("fanout", auto_delete=True, durable=True)
        q = self.temp_queue()
        self.ch.queue_bind(q, x)
        self.ch.queue_unbind(q, x)
        self.assertExchangeMissing(x)
        self.assert_usable()

    def test_diamond(self):
        # top -> left -> bottom, top -> right -> bottom, bottom -> q;
        # all auto-delete. Deleting q deletes bottom, then left and right
        # (their only binding was into bottom), then top.
        top, left, right, bottom = (self.exchange("fanout", auto_delete=True) for _ in range(4))
        keep = self.exchange("fanout")     # not auto-delete: stays
        q = self.queue()
        self.ch.exchange_bind(left, top)
        self.ch.exchange_bind(right, top)
        self.ch.exchange_bind(bottom, left)
        self.ch.exchange_bind(bottom, right)
        self.ch.exchange_bind(bottom, keep)
        self.ch.queue_bind(q, bottom)
        self.ch.exchange_unbind(bottom, left)   # left goes; top still has right
        self.assertExchangeMissing(left)
        for x in (top, right, bottom, keep):
            self.conn.channel().exchange_declare(x, passive=True)
        self.ch.queue_delete(q)
        for x in (bottom, right, top):
            self.assertExchangeMissing(x)
        self.conn.channel().exchange_declare(keep, passive=True)

    def assert_usable(self):
        q = self.temp_queue()
        self.ch.basic_publish("", q, b"ok")
        self.assertEqual(bodies(self.ch, q), ["ok"])


if __name__ == "__main__":
    harness.main()
