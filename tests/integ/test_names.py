"""test_names.py - names a client chooses, and who it says it is (issue 9,
items 5, 6 and 7).

What RabbitMQ 3.10 does, measured with the raw peer (rawamqp.py) against
Debian's rabbitmq-server, and what these tests hold Warren to:

* Malformed UTF-8 in a short string: connection.close 501 "FRAME_ERROR -
  Malformed UTF-8 in shortstr" for every short string of every method
  without content: queue and exchange names in declare/delete/bind/unbind/
  purge, routing keys of bindings, the exchange type, basic.consume's queue
  and consumer tag, basic.cancel, basic.get, channel.open, channel.close and
  connection.close reply texts (class/method 0/0 on a channel; 10/50 for
  connection.close, 10/40 for connection.open's virtual host). basic.publish
  is NOT checked (an unknown exchange is a 404 as for any name). RabbitMQ's
  rule is loose: UTF-16 surrogates and values up to U+1FFFFF pass, overlong
  forms and 5-byte sequences do not.
* NUL bytes and control characters are accepted in names (and consumer
  tags) and given back byte for byte.
* CR and LF are removed from queue and exchange names in the declare,
  delete, bind and unbind methods (not in queue.purge, basic.get,
  basic.consume, basic.publish, not from routing keys).
* PLAIN: anything but NUL user NUL password is refused, an authorization
  identity included ("admin\\0guest\\0guest", even "guest\\0guest\\0guest"):
  RabbitMQ drops the socket after its 3 s delay; Warren answers 403.

Warren only (skipped with WARREN_TEST_PORT; they restart the broker or read
its log):

* DurableNamesTest: durable queues and exchanges (and bindings between them)
  with every odd name that is accepted, persistent messages in them, then a
  SIGKILL restart and a clean restart: every object is found by the same
  bytes with its messages, and bindings still route.
* LogEscapeTest: names with control characters, NUL bytes, escape sequences
  and non-Unicode bytes come out in the log escaped (\\xNN), one line each;
  the log file holds no raw control byte and is valid UTF-8.

Run: cd tests/integ && /usr/bin/python3 test_names.py
"""
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import rawamqp as r  # noqa: E402
from durability import Client, recovered_count, warrend_only  # noqa: E402
from rawamqp import method, sstr  # noqa: E402

BAD = b"hostile.\xff\xfe\xc0"  # the name
MALFORMED = "FRAME_ERROR - Malformed UTF-8 in shortstr"
Z = struct.pack(">H", 0)
T = r.table()


def qdecl(name, passive=False, durable=False, exclusive=False, auto_delete=False, nowait=False,
          args=T):
    bits = passive | durable << 1 | exclusive << 2 | auto_delete << 3 | nowait << 4
    return method(1, 50, 10, Z + sstr(name) + bytes([bits]) + args)


def xdecl(name, typ=b"direct", passive=False, durable=False):
    return method(1, 40, 10, Z + sstr(name) + sstr(typ) + bytes([passive | durable << 1]) + T)


def qbind(q, x, rk, unbind=False):
    if unbind:
        return method(1, 50, 50, Z + sstr(q) + sstr(x) + sstr(rk) + T)
    return method(1, 50, 20, Z + sstr(q) + sstr(x) + sstr(rk) + b"\x00" + T)


def xbind(dest, src, rk, unbind=False):
    return method(1, 40, 40 if unbind else 30, Z + sstr(dest) + sstr(src) + sstr(rk) + b"\x00" + T)


def qpurge(q):
    return method(1, 50, 30, Z + sstr(q) + b"\x00")


def qdel(q):
    return method(1, 50, 40, Z + sstr(q) + b"\x00")


def xdel(x):
    return method(1, 40, 20, Z + sstr(x) + b"\x00")


def consume(q, tag=b""):
    return method(1, 60, 20, Z + sstr(q) + sstr(tag) + b"\x02" + T)


def get(q):
    return method(1, 60, 70, Z + sstr(q) + b"\x01")


def qos():
    return method(1, 60, 10, struct.pack(">IHB", 0, 0, 0))


class Peer:
    """A raw connection with one channel open, and the replies it reads."""

    def __init__(self, broker):
        self.p = r.open_peer(broker.host, broker.port)
        self.p.open_channel(1)

    def send(self, data):
        self.p.send(data)

    def reply(self, timeout=10):
        """The next method as (class, method, args), or ('close', kind,
        code, text, class, method) for a channel/connection close, or None
        when the socket closed."""
        deadline = time.monotonic() + timeout
        while True:
            f = self.p.recv_frame_within(max(deadline - time.monotonic(), 0.01))
            if f == "timeout":
                raise AssertionError("no reply within %ss" % timeout)
            if f is None:
                return None
            t, ch, pl = f
            if t != r.METHOD:
                continue
            cid, mid = struct.unpack(">HH", pl[:4])
            if (cid, mid) in ((10, 50), (20, 40)):
                code, text, c, m = r.parse_close(pl[4:])
                self.p.send(method(0, 10, 51) if cid == 10 else method(ch, 20, 41))
                return ("close", "connection" if cid == 10 else "channel", code, text, c, m)
            return (cid, mid, pl[4:])

    def ok(self, data, want):
        """Send one method and expect the reply (class, method); return its args."""
        self.send(data)
        rep = self.reply()
        assert rep and rep[:2] == want, "expected %r, got %r" % (want, rep)
        return rep[2]

    def close(self):
        self.p.close()


class NamesTests(harness.BrokerTestCase):
    """RabbitMQ's answers; these pass against RabbitMQ 3.10 too."""

    def tag(self):
        return self.unique("n").encode()

    def expect_malformed(self, frames, want_cm=(0, 0)):
        p = Peer(self.broker)
        try:
            p.send(frames)
            rep = p.reply()
            self.assertIsNotNone(rep, "socket closed without connection.close")
            self.assertEqual(rep[:4], ("close", "connection", 501, MALFORMED), rep)
            self.assertEqual(rep[4:], want_cm, rep)
        finally:
            p.close()

    def test_malformed_utf8_refused_where_rabbitmq_checks(self):
        good = b"n.good"
        cases = {
            "queue.declare": qdecl(BAD),
            "queue.declare passive": qdecl(BAD, passive=True),
            "queue.declare nowait": qdecl(BAD, nowait=True),
            "queue.bind queue": qbind(BAD, good, b"k"),
            "queue.bind exchange": qbind(good, BAD, b"k"),
            "queue.bind routing key": qbind(good, good, BAD),
            "queue.unbind queue": qbind(BAD, good, b"k", unbind=True),
            "queue.unbind exchange": qbind(good, BAD, b"k", unbind=True),
            "queue.unbind routing key": qbind(good, good, BAD, unbind=True),
            "queue.purge": qpurge(BAD),
            "queue.delete": qdel(BAD),
            "exchange.declare": xdecl(BAD),
            "exchange.declare passive": xdecl(BAD, passive=True),
            "exchange.declare type": xdecl(good, typ=b"direct\xff"),
            "exchange.delete": xdel(BAD),
            "exchange.bind destination": xbind(BAD, good, b"k"),
            "exchange.bind source": xbind(good, BAD, b"k"),
            "exchange.bind routing key": xbind(good, good, BAD),
            "exchange.unbind destination": xbind(BAD, good, b"k", unbind=True),
            "exchange.unbind source": xbind(good, BAD, b"k", unbind=True),
            "exchange.unbind routing key": xbind(good, good, BAD, unbind=True),
            "basic.consume queue": consume(BAD),
            "basic.consume consumer tag": consume(good, BAD),
            "basic.cancel": method(1, 60, 30, sstr(BAD) + b"\x00"),
            "basic.get": get(BAD),
            "channel.open": method(2, 20, 10, sstr(BAD)),
            "channel.close": method(1, 20, 40, r.close_method(200, BAD)),
            # other malformed forms, RabbitMQ's rule
            "overlong": qdecl(b"a\xc0\x80"),
            "overlong 3-byte": qdecl(b"a\xe0\x80\x80"),
            "overlong 4-byte": qdecl(b"a\xf0\x8f\xbf\xbf"),
            "truncated": qdecl(b"a\xe2\x82"),
            "lone continuation": qdecl(b"a\x80b"),
            "5-byte form": qdecl(b"a\xf8\x88\x80\x80\x80"),
        }
        for what, frames in cases.items():
            with self.subTest(what):
                self.expect_malformed(frames)
        with self.subTest("connection.close"):
            self.expect_malformed(method(0, 10, 50, r.close_method(200, BAD)), (10, 50))

    def test_malformed_utf8_in_connection_open(self):
        for vhost, caps in ((b"/\xff", b""), (b"/", b"\xfe")):
            with self.subTest(vhost=vhost, capabilities=caps):
                p = r.Peer(self.broker.host, self.broker.port)
                try:
                    p.start()
                    tune = p.login()
                    self.assertEqual(tune[1:3], (10, 30), tune)
                    p.send(method(0, 10, 31, tune[3][:8]))
                    p.send(method(0, 10, 40, sstr(vhost) + sstr(caps) + b"\x00"))
                    res = p.wait_close(10)
                    self.assertEqual(res[:2], ("close", 0), res)
                    self.assertEqual(res[2:], (501, MALFORMED, 10, 40))
                finally:
                    p.close()

    def test_publish_is_not_checked(self):
        # Neither the routing key nor the exchange of basic.publish: a
        # malformed exchange name is just a missing exchange.
        p = Peer(self.broker)
        try:
            p.send(r.publish(1, b"amq.direct", BAD, b"x"))
            p.ok(qos(), (60, 11))
            p.send(r.publish(1, BAD, b"k", b"x"))
            rep = p.reply()
            self.assertEqual(rep[:4], ("close", "channel", 404,
                                       "NOT_FOUND - no exchange 'hostile.\ufffd\ufffd\ufffd' "
                                       "in vhost '/'"), rep)
        finally:
            p.close()

    def test_rabbitmqs_loose_utf8_is_accepted(self):
        p = Peer(self.broker)
        tag = self.tag()
        try:
            for name in (b"n.surrogate\xed\xa0\x80.", b"n.above\xf4\x90\x80\x80.",
                         b"n.max\xf7\xbf\xbf\xbf.", b"n.nonchar\xef\xbf\xbf.",
                         b"n.nul\x00tail.", b"\x00n.lead.", b"n.ctl\x01\x1f\x7f\t\x1b[0m.",
                         "n.\u4e2d\U0001F407\U0010FFFF.".encode()):
                with self.subTest(name=name):
                    name += tag
                    args = p.ok(qdecl(name, exclusive=True), (50, 11))
                    self.assertEqual(args[1:1 + args[0]], name)
                    args = p.ok(qdecl(name, passive=True), (50, 11))
                    self.assertEqual(args[1:1 + args[0]], name)
                    p.ok(xdecl(name), (40, 11))
                    p.ok(qbind(name, name, name), (50, 21))
                    p.ok(xdecl(name, passive=True), (40, 11))
                    p.ok(xdel(name), (40, 21))
                    p.ok(qdel(name), (50, 41))
        finally:
            p.close()

    def test_nul_byte_is_part_of_the_name(self):
        p = Peer(self.broker)
        tag = self.tag()
        name = b"n.nul\x00tail." + tag
        try:
            args = p.ok(qdecl(name, exclusive=True), (50, 11))
            self.assertEqual(args[1:1 + args[0]], name)
            p.send(qdecl(b"n.nul", passive=True))
            rep = p.reply()
            self.assertEqual(rep[:3], ("close", "channel", 404), rep)
        finally:
            p.close()

    def test_nul_byte_in_a_consumer_tag(self):
        # consume-ok gives the whole tag back, and cancelling by it cancels
        # (RabbitMQ 3.10 fails with 541 when it delivers to such a tag, so
        # nothing is delivered here).
        p = Peer(self.broker)
        q = self.tag()
        ctag = b"ctag\x00tail"
        try:
            p.ok(qdecl(q, exclusive=True), (50, 11))
            args = p.ok(consume(q, ctag), (60, 21))
            self.assertEqual(args[1:1 + args[0]], ctag)
            args = p.ok(method(1, 60, 30, sstr(ctag) + b"\x00"), (60, 31))
            self.assertEqual(args[1:1 + args[0]], ctag)
            p.send(r.publish(1, b"", q, b"stays"))
            args = p.ok(qdecl(q, passive=True), (50, 11))
            self.assertEqual(struct.unpack(">I", args[1 + args[0]:5 + args[0]])[0], 1)
        finally:
            p.close()

    def test_cr_lf_stripped_where_rabbitmq_strips(self):
        tag = self.tag()
        raw, stripped = b"n.cr\r\nlf." + tag, b"n.crlf." + tag
        p = Peer(self.broker)
        try:
            args = p.ok(qdecl(raw, exclusive=True), (50, 11))
            self.assertEqual(args[1:1 + args[0]], stripped)
            args = p.ok(qdecl(b"\n" + raw, passive=True), (50, 11))
            self.assertEqual(args[1:1 + args[0]], stripped)
            p.ok(xdecl(b"x." + raw), (40, 11))
            p.ok(xdecl(b"x." + stripped, passive=True), (40, 11))
            p.ok(xdecl(b"x2\r." + stripped), (40, 11))
            p.ok(xbind(b"x2." + raw, b"x." + raw, b"k"), (40, 31))
            p.ok(qbind(raw, b"x." + raw, b"k\r\n"), (50, 21))
            # the routing key keeps its CR LF: only "k\r\n" routes
            p.send(r.publish(1, b"x2." + stripped, b"k", b"no", mandatory=True))
            p.send(r.publish(1, b"x." + stripped, b"k\r\n", b"yes", mandatory=True))
            rep = p.reply()
            self.assertEqual(rep[:2], (60, 50), rep)  # the first came back
            args = p.ok(qdecl(stripped, passive=True), (50, 11))
            self.assertEqual(struct.unpack(">I", args[1 + args[0]:5 + args[0]])[0], 1)
            p.ok(qbind(raw, b"x." + raw, b"k\r\n", unbind=True), (50, 51))
            p.ok(xbind(b"x2." + raw, b"x." + raw, b"k", unbind=True), (40, 51))
            p.ok(get(stripped), (60, 71))
            # purge, get, consume and publish take the name as it comes
            for frames, cm in ((qpurge(raw), (50, 30)), (get(raw), (60, 70)),
                               (consume(raw), (60, 20)),
                               (r.publish(1, b"x." + raw, b"k", b"x"), (60, 40))):
                p.send(frames)
                rep = p.reply()
                self.assertEqual(rep[:3], ("close", "channel", 404), rep)
                self.assertIn(raw.decode(), rep[3])
                self.assertEqual(rep[4:], cm)
                p.p.open_channel(1)
            p.ok(xdel(b"x\n." + raw), (40, 21))
            p.ok(xdel(b"x2." + raw), (40, 21))
            p.send(xdecl(b"x." + stripped, passive=True))
            self.assertEqual(p.reply()[:3], ("close", "channel", 404))
            p.p.open_channel(1)
            p.ok(qdel(b"\r" + raw), (50, 41))
            p.send(qdecl(stripped, passive=True))
            self.assertEqual(p.reply()[:3], ("close", "channel", 404))
            p.p.open_channel(1)
            # "\r\n" alone is the empty name: a server-named queue
            args = p.ok(qdecl(b"\r\n", exclusive=True), (50, 11))
            self.assertTrue(args[1:1 + args[0]].startswith(b"amq.gen-"), args)
            # and the reserved prefix is checked after stripping
            p.send(qdecl(b"\r\namq.n." + tag))
            rep = p.reply()
            self.assertEqual(rep[:3], ("close", "channel", 403), rep)
        finally:
            p.close()

    def test_plain_authorization_identity_refused(self):
        # RabbitMQ drops these after its 3 s delay (with or without the
        # authentication_failure_close capability); Warren answers 403.
        # Never a connection.tune. All at once, to pay the delay once.
        responses = [b"admin\x00guest\x00guest", b"guest\x00guest\x00guest",
                     b"\x00guest\x00guest\x00", b"\x00guest\x00gu\x00est"]
        peers = []
        for resp in responses:
            for cap in (True, False):
                p = r.Peer(self.broker.host, self.broker.port, timeout=15)
                p.start()
                props = {"product": "t", "capabilities": {"authentication_failure_close": cap}}
                p.send(method(0, 10, 11, r.encode_table(props) + sstr("PLAIN") + r.lstr(resp)
                              + sstr("en_US")))
                peers.append((resp, cap, p))
        t0 = time.monotonic()
        for resp, cap, p in peers:
            with self.subTest(response=resp, capability=cap):
                # the first thing back: the socket closing, or a 403
                f = p.recv_frame_within(max(12 - (time.monotonic() - t0), 0.1))
                self.assertNotEqual(f, "timeout")
                if f is not None:
                    t, ch, pl = f
                    self.assertEqual((t, pl[:4]), (r.METHOD, struct.pack(">HH", 10, 50)),
                                     "not refused: %r" % (f,))
                    self.assertEqual(r.parse_close(pl[4:])[0], r.ACCESS_REFUSED)
            p.close()
        self.assertLess(time.monotonic() - t0, 12)
        p = r.Peer(self.broker.host, self.broker.port)
        try:
            p.start()
            tune = p.login(response=b"\x00guest\x00guest")
            self.assertEqual(tune[1:3], (10, 30), tune)
        finally:
            p.close()


# ---- durable objects with odd names across restarts (warrend only) --------


def odd_names(prefix):
    """(label, name) for every kind of odd name that is accepted."""
    names = [
        ("nul", prefix + b".nul\x00tail"),
        ("leading nul", b"\x00" + prefix + b".lead"),
        ("unicode", prefix + ".\u4e2d\u00e9\U0001F407\U0010FFFF".encode()),
        ("surrogate", prefix + b".sur\xed\xa0\x80"),
        ("above U+10FFFF", prefix + b".big\xf4\x90\x80\x80"),
        ("spaces", prefix + b" with  spaces "),
        ("controls", prefix + b".ctl\x01\x1f\x7f\t\x1b[31m"),
        ("json and printf", prefix + b'."quote"\\back\\slash\\u0000%s%n%%/{}'),
        ("255 bytes", (prefix + b".255.").ljust(255, b"x")),
    ]
    assert all(len(n) <= 255 for _, n in names)
    return names


class RawClient(Client):
    """durability.Client, with replies read as bytes (names and routing
    keys here are not all UTF-8)."""

    def qdeclare(self, name, passive=False):
        """(name as given back, message count)."""
        a = self.rpc(1, 50, 10, Z + sstr(name) + bytes([passive | 1 << 1]) + T, 11)
        return a[1:1 + a[0]], struct.unpack(">I", a[1 + a[0]:5 + a[0]])[0]

    def xdeclare(self, name, passive=False):
        self.rpc(1, 40, 10, Z + sstr(name) + sstr("direct") + bytes([passive | 1 << 1]) + T, 11)

    def publish_confirmed(self, exchange, key, body):
        """A persistent, mandatory publish; fails on a return or a nack."""
        self.send(self.publish_bytes(1, exchange, key, body, mandatory=True, delivery_mode=2))
        self.seq += 1
        while True:
            for f in self._frames():
                t, ch, p = f
                if t != 1:
                    continue
                cid, mid = struct.unpack(">HH", p[:4])
                if (cid, mid) == (60, 50):
                    raise AssertionError("returned: %r to %r" % (body, key))
                if (cid, mid) == (60, 120):
                    raise AssertionError("nacked: %r" % body)
                if (cid, mid) in ((20, 40), (10, 50)):
                    raise AssertionError("closed: %r" % (r.parse_close(p[4:]),))
                if (cid, mid) == (60, 80):
                    tag, bits = struct.unpack(">QB", p[4:13])
                    if tag >= self.seq:
                        return
            if not self._read(10):
                raise AssertionError("no confirm for %r" % body)

    def get_body(self, queue):
        """basic.get with no-ack: the body, or None for get-empty."""
        self.send(method(1, 60, 70, Z + sstr(queue) + b"\x01"))
        size, body = None, b""
        while True:
            for t, ch, p in self._frames():
                if t == 1:
                    cid, mid = struct.unpack(">HH", p[:4])
                    if (cid, mid) == (60, 72):
                        return None
                    if (cid, mid) in ((20, 40), (10, 50)):
                        raise AssertionError("closed: %r" % (r.parse_close(p[4:]),))
                elif t == 2:
                    size = struct.unpack(">Q", p[4:12])[0]
                    if size == 0:
                        return b""
                elif t == 3:
                    body += p
                    if len(body) >= size:
                        return body
            if not self._read(10):
                raise AssertionError("no get-ok for %r" % queue)


class DurableNamesTest(harness.BrokerTestCase):
    """Issue 9 item 5: every accepted name round-trips through
    definitions.json and the journal, byte for byte."""

    def setUp(self):
        reason = warrend_only()
        if reason:
            self.skipTest(reason)

    def client(self):
        c = RawClient(self.broker.host, self.broker.port)
        c.channel(1)
        c.confirm_select(1)
        c.seq = 0
        return c

    def test_durable_odd_names_survive_restarts(self):
        queues = odd_names(b"q")
        exchanges = odd_names(b"x")
        keys = odd_names(b"k")
        hub = b"x.hub\x00\xf4\x90\x80\x80\n"  # LF stripped at declare and bind
        hub_name = hub.rstrip(b"\n")
        c = self.client()
        try:
            c.xdeclare(hub)
            for (label, q), (_, x), (_, k) in zip(queues, exchanges, keys):
                name, _ = c.qdeclare(q)
                self.assertEqual(name, q, label)
                c.xdeclare(x)
                c.queue_bind(1, q, x, k)
                c.rpc(1, 40, 30, Z + sstr(x) + sstr(hub) + sstr(k) + b"\x00" + T, 31)
                c.publish_confirmed(b"", q, b"direct " + label.encode())
                c.publish_confirmed(hub_name, k, b"hub " + label.encode())
        finally:
            c.close()

        def check(expect, when):
            c = self.client()
            try:
                c.xdeclare(hub_name, passive=True)
                for (label, q), (_, x), (_, k) in zip(queues, exchanges, keys):
                    with self.subTest(label, when=when):
                        name, count = c.qdeclare(q, passive=True)
                        self.assertEqual(name, q)
                        self.assertEqual(count, expect)
                        c.xdeclare(x, passive=True)
                        # the bindings route: hub -> x -> q
                        if expect == 2:
                            c.publish_confirmed(hub_name, k, b"after " + label.encode())
                            self.assertEqual(c.qdeclare(q, passive=True)[1], 3)
            finally:
                c.close()

        harness.restart(self.broker, signal.SIGKILL)
        log = self.broker.log_text()
        self.assertNotRegex(log, "definitions: .*skipped")
        self.assertIn("%d exchanges, %d queues, %d bindings recovered"
                      % (len(exchanges) + 1, len(queues), 2 * len(queues)), log)
        self.assertEqual(recovered_count(log), 2 * len(queues))
        check(2, "after SIGKILL")
        harness.restart(self.broker, signal.SIGTERM)
        check(3, "after a clean restart")

        # definitions.json: readable names where JSON can hold them, the
        # exact bytes beside the others
        with open(os.path.join(self.broker.data_dir, "definitions.json"), "rb") as f:
            defs = json.loads(f.read().decode("utf-8"))
        by_bytes = {}
        for o in defs["queues"]:
            raw = bytes.fromhex(o["name_raw"]) if "name_raw" in o else o["name"].encode()
            by_bytes[raw] = o
        self.assertEqual(sorted(by_bytes), sorted(q for _, q in queues))
        self.assertEqual(by_bytes[queues[0][1]]["name"], "q.nul\x00tail")
        self.assertIn("name_raw", by_bytes[queues[3][1]])  # the surrogate

        c = self.client()
        try:
            for label, q in queues:
                with self.subTest(label, when="draining"):
                    got = sorted(c.get_body(q) for _ in range(3))
                    self.assertEqual(got, sorted(w + b" " + label.encode()
                                                 for w in (b"after", b"direct", b"hub")))
                    self.assertIsNone(c.get_body(q))
        finally:
            c.close()


# ---- log lines (warrend only) ---------------------------------------------


class LogEscapeTest(harness.BrokerTestCase):
    """Issue 9 item 7: a name in a log line is escaped, never raw."""

    def setUp(self):
        if self.external:
            self.skipTest("reads warrend's log: warrend only")

    def log_lines(self, marker):
        return [ln for ln in self.broker.log_text().split("\n") if marker in ln]

    def wait_line(self, marker, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.log_lines(marker)
            if lines:
                return lines
            time.sleep(0.05)
        self.fail("no log line with %r:\n%s" % (marker, self.broker.log_text()[-3000:]))

    def test_names_are_escaped_in_log_lines(self):
        p = Peer(self.broker)
        try:
            # a channel error quoting a name (basic.get does not strip LF)
            p.send(get(b"log.get\nFORGED-1 error \x1b[31m\xed\xa0\x80\\x0a"))
            self.assertEqual(p.reply()[:3], ("close", "channel", 404))
            p.p.open_channel(1)
            # a queue that expires: the broker names it on its own
            p.ok(qdecl(b"log.exp\x00FORGED-2\x0b\x1b[2J\t",
                       args=r.encode_table({"x-expires": 50})), (50, 11))
            # the client's own reply text when it closes
            p.send(method(0, 10, 50, r.close_method(200, b"log.close\x00FORGED-3\x07\xc2\x9b")))
            self.assertEqual(p.reply()[:2], (10, 51))
        finally:
            p.close()
        want = {
            "FORGED-1": "channel 1 error: NOT_FOUND - no queue "
                        "'log.get\\x0aFORGED-1 error \\x1b[31m\\xed\\xa0\\x80\\\\x0a' in vhost '/'",
            "FORGED-2": "queue 'log.exp\\x00FORGED-2\\x0b\\x1b[2J\\x09' in vhost '/' expired",
            "FORGED-3": "client closed the connection (200 log.close\\x00FORGED-3\\x07\\xc2\\x9b)",
        }
        for marker, text in want.items():
            with self.subTest(marker):
                lines = self.wait_line(marker)
                self.assertEqual(len(lines), 1, lines)
                self.assertIn(text, lines[0])
        with open(self.broker.log_path, "rb") as f:
            data = f.read()
        for b in range(32):
            if b != 10:
                self.assertNotIn(bytes([b]), data, "raw control byte %#x in the log" % b)
        self.assertNotIn(b"\x7f", data)
        data.decode("utf-8")  # strict: no surrogates, nothing above U+10FFFF


if __name__ == "__main__":
    harness.main()
