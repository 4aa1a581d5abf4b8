"""test_basic - basic, confirm and tx class semantics, checked against RabbitMQ 3.10.

Covers:
  * publish: mandatory unroutable -> basic.return 312 NO_ROUTE (without
    confirms, and under confirms where the return precedes the ack),
    non-mandatory unroutable dropped silently, a fanout to 3 queues, every
    basic property survives a round trip, 5 MB bodies, user-id validation
    (406), immediate=true -> 540 connection error;
  * consume: push order and delivery tags, no-ack, exclusive consumers (403),
    server-generated tags ("amq.ctag-"), duplicate tag on one channel -> 530
    connection error, cancel (including an unknown tag), round robin between
    two consumers;
  * get: get-ok message_count, get-empty, 404 on a missing queue;
  * ack / nack / reject: single and multiple (also multiple with tag 0),
    requeue puts messages back at the head in their original order with
    redelivered set, reject without requeue drops, unknown or repeated tags
    -> 406, tags are per channel, unacked messages of a closed channel or
    connection are requeued, basic.recover;
  * qos: per-consumer (global=false) and per-channel (global=true) limits as
    RabbitMQ applies them, exact delivery counts before and after acks;
    prefetch_size != 0 -> 540;
  * publisher confirms: tags 1..N, acks in order, `multiple` acks cover each
    tag exactly once, no nacks;
  * tx: commit delivers, rollback discards publishes and does not apply acks,
    406 without tx.select, tx and confirm modes exclude each other;
  * interoperability with rabbitmq-c's amqp-publish / amqp-get / amqp-consume.
"""
import decimal
import os

import pika
import pika.exceptions as pex

import harness
from amqpcase import (ACCESS_REFUSED, NO_ROUTE, NOT_ALLOWED, NOT_FOUND, NOT_IMPLEMENTED,
                      PRECONDITION_FAILED, AmqpCase, ack_args, bodies, drain)
from rawamqp import method, sstr


class BasicCase(AmqpCase):
    def setUp(self):
        super().setUp()
        self.pub = self.confirm_channel()

    def fill(self, q, *msgs):
        """Publish (confirmed) one message per item; ints become their str."""
        for m in msgs:
            self.pub.basic_publish("", q, str(m).encode())

    def collector(self, ch, q, auto_ack=False, **kw):
        """Start a consumer; returns (tag, list of (tag, delivery_tag, body, redelivered))."""
        got = []

        def on_msg(_ch, m, _p, b):
            got.append((m.consumer_tag, m.delivery_tag, b.decode(), m.redelivered))
        tag = ch.basic_consume(q, on_msg, auto_ack=auto_ack, **kw)
        return tag, got

    def wait_count(self, got, n, conn=None):
        """Wait for n deliveries, then make sure no more arrive."""
        self.wait_until(lambda: len(got) >= n, conn=conn, what="%d deliveries" % n)
        self.quiet(conn)
        self.assertEqual(len(got), n, got)


class TestPublish(BasicCase):
    def test_mandatory_unroutable_is_returned(self):
        returned = []
        self.ch.add_on_return_callback(lambda ch, m, p, b: returned.append((m, p, b)))
        key = self.unique("nowhere")
        # a non-mandatory unroutable message is dropped without a return; the
        # mandatory one after it is returned, and returns keep channel order,
        # so seeing the second return proves there was none for the first
        self.ch.basic_publish("amq.direct", key, b"dropped")
        props = pika.BasicProperties(content_type="text/plain", headers={"h": "v"},
                                     message_id="m-1")
        self.ch.basic_publish("amq.direct", key, b"back", props, mandatory=True)
        self.wait_until(lambda: returned, what="basic.return")
        self.quiet()
        self.assertEqual(len(returned), 1)
        m, p, b = returned[0]
        # RabbitMQ: reply 312 "NO_ROUTE"
        self.assertEqual((m.reply_code, m.reply_text, m.exchange, m.routing_key, b),
                         (NO_ROUTE, "NO_ROUTE", "amq.direct", key, b"back"))
        self.assertEqual((p.content_type, p.headers, p.message_id), ("text/plain", {"h": "v"}, "m-1"))
        self.assertTrue(self.ch.is_open)

    def test_mandatory_under_confirms(self):
        q = self.temp_queue()
        self.pub.basic_publish("", q, b"routed", mandatory=True)
        with self.assertRaises(pex.UnroutableError) as cm:
            self.pub.basic_publish("", self.unique("nowhere"), b"x", mandatory=True)
        self.assertEqual(cm.exception.messages[0].method.reply_code, NO_ROUTE)
        # not mandatory: acked and silently dropped
        self.pub.basic_publish("", self.unique("nowhere"), b"y")
        self.assertEqual(bodies(self.ch, q), ["routed"])

    def test_return_precedes_confirm_on_the_wire(self):
        r = self.raw()
        r.open_channel(1)
        r.confirm_select(1)
        r.send(r.publish(1, "amq.direct", self.unique("nowhere"), b"z", mandatory=True))
        first = r.recv_method()
        self.assertEqual(first[1:3], (60, 50))              # basic.return
        second = r.recv_method()
        self.assertEqual(second[1:3], (60, 80))             # then basic.ack
        self.assertEqual(ack_args(second[3]), (1, False))

    def test_fanout_to_three_queues(self):
        x = self.exchange("fanout")
        qs = [self.temp_queue() for _ in range(3)]
        for q in qs:
            self.ch.queue_bind(q, x)
        self.pub.basic_publish(x, "rk", b"all")
        for q in qs:
            m, _, b = self.ch.basic_get(q, auto_ack=True)
            self.assertEqual((b, m.exchange, m.routing_key, m.message_count), (b"all", x, "rk", 0))
            self.assertEqual(self.ch.basic_get(q), (None, None, None))

    def test_properties_round_trip(self):
        q = self.temp_queue()
        props = pika.BasicProperties(
            content_type="application/json", content_encoding="utf-8",
            headers={"s": "str", "i": 42, "neg": -7, "big": 2 ** 40, "t": True, "d": decimal.Decimal("1.5"),
                     "nested": {"a": [1, "two"]}, "bytes": b"\x00\xff"},
            delivery_mode=2, priority=5, correlation_id="corr", reply_to="rq",
            expiration="60000", message_id="mid", timestamp=1700000000, type="kind",
            user_id="guest", app_id="app")
        self.pub.basic_publish("", q, b"{}", props)
        _, p, b = self.ch.basic_get(q, auto_ack=True)
        self.assertEqual(b, b"{}")
        for field in ("content_type", "content_encoding", "delivery_mode", "priority",
                      "correlation_id", "reply_to", "expiration", "message_id", "timestamp",
                      "type", "user_id", "app_id"):
            self.assertEqual(getattr(p, field), getattr(props, field), field)
        h = p.headers
        self.assertEqual((h["s"], h["i"], h["neg"], h["big"], h["t"], h["d"]),
                         ("str", 42, -7, 2 ** 40, True, decimal.Decimal("1.5")))
        self.assertEqual(h["nested"], {"a": [1, "two"]})
        self.assertEqual(bytes(h["bytes"]), b"\x00\xff")

    def test_empty_body(self):
        q = self.temp_queue()
        self.pub.basic_publish("", q, b"")
        m, _, b = self.ch.basic_get(q, auto_ack=True)
        self.assertEqual(b, b"")

    def test_big_message(self):
        q = self.temp_queue()
        body = os.urandom(5 * 1024 * 1024)
        self.pub.basic_publish("", q, body)
        _, _, got = self.ch.basic_get(q, auto_ack=True)
        self.assertEqual(len(got), len(body))
        self.assertTrue(got == body, "5 MB body corrupted")
        # and through a push consumer
        self.pub.basic_publish("", q, body[::-1])
        got = []
        self.ch.basic_consume(q, lambda _c, _m, _p, b: got.append(b), auto_ack=True)
        self.wait_until(lambda: got, timeout=15, what="the big delivery")
        self.assertTrue(got[0] == body[::-1], "5 MB pushed body corrupted")

    def test_user_id_must_match(self):
        q = self.temp_queue()
        self.pub.basic_publish("", q, b"ok", pika.BasicProperties(user_id="guest"))
        self.assertEqual(self.ch.basic_get(q, auto_ack=True)[1].user_id, "guest")
        # RabbitMQ: 406 "user_id property set to 'bob' but authenticated user was 'guest'"
        with self.channel_error(PRECONDITION_FAILED, text="user_id"):
            self.ch.basic_publish("", q, b"x", pika.BasicProperties(user_id="bob"))
        self.assertEqual(self.counts(q, self.conn.channel()), (0, 0))

    def test_immediate_not_implemented(self):
        r = self.raw()
        r.open_channel(1)
        data = r.publish(1, "amq.direct", "k", b"z")
        # set the immediate bit (2) in basic.publish's flags octet
        cut = data.index(b"\xce") - 1
        data = data[:cut] + b"\x02" + data[cut + 1:]
        r.send(data)
        # RabbitMQ: connection error 540 "NOT_IMPLEMENTED - immediate=true"
        self.assertEqual(r.expect_close()[1:], ("connection", NOT_IMPLEMENTED,
                                                "NOT_IMPLEMENTED - immediate=true", 60, 40))


class TestConsume(BasicCase):
    def test_push_order_and_tags(self):
        q = self.temp_queue()
        self.fill(q, *range(1, 6))
        tag, got = self.collector(self.ch, q)
        self.wait_count(got, 5)
        self.assertEqual(got, [(tag, i, str(i), False) for i in range(1, 6)])
        self.fill(q, 6)
        self.wait_count(got, 6)
        self.assertEqual(got[-1], (tag, 6, "6", False))

    def test_no_ack(self):
        q = self.temp_queue()
        self.fill(q, 1, 2, 3)
        cch = self.conn.channel()
        tag, got = self.collector(cch, q, auto_ack=True)
        self.wait_count(got, 3)
        self.assertEqual([b for _, _, b, _ in got], ["1", "2", "3"])
        cch.close()          # nothing was unacked: nothing comes back
        self.assertEqual(self.counts(q), (0, 0))

    def test_server_generated_tag(self):
        r = self.raw()
        r.open_channel(1)
        q = r.queue_declare(1)
        t1 = r.consume(1, q)
        t2 = r.consume(1, q)
        self.assertTrue(t1.startswith("amq.ctag-"), t1)
        self.assertTrue(t2.startswith("amq.ctag-"), t2)
        self.assertNotEqual(t1, t2)
        self.assertEqual(r.consume(1, q, tag="mine"), "mine")

    def test_duplicate_tag_is_connection_error(self):
        r = self.raw()
        r.open_channel(1)
        q = r.queue_declare(1)
        r.consume(1, q, tag="dup")
        r.send(method(1, 60, 20, b"\0\0" + sstr(q) + sstr("dup") + b"\0" + b"\0\0\0\0"))
        # RabbitMQ: connection.close 530 "NOT_ALLOWED - attempt to reuse consumer tag 'dup'"
        ch, kind, code, text, cid, mid = r.expect_close()
        self.assertEqual((kind, code, cid, mid), ("connection", NOT_ALLOWED, 60, 20))
        self.assertIn("dup", text)

    def test_same_tag_on_two_channels_is_fine(self):
        q = self.temp_queue()
        self.ch.basic_consume(q, lambda *a: None, consumer_tag="same")
        self.conn.channel().basic_consume(q, lambda *a: None, consumer_tag="same")
        self.assertEqual(self.counts(q), (0, 2))

    def test_exclusive_consumer(self):
        q = self.temp_queue()
        tag = self.ch.basic_consume(q, lambda *a: None, exclusive=True)
        ch2 = self.conn.channel()
        # RabbitMQ: 403 "queue 'q' in vhost '/' in exclusive use"
        with self.channel_error(ACCESS_REFUSED, ch2, text="exclusive use"):
            ch2.basic_consume(q, lambda *a: None)
        self.ch.basic_cancel(tag)
        ch3 = self.conn.channel()
        ch3.basic_consume(q, lambda *a: None)
        ch4 = self.conn.channel()
        # an exclusive consumer cannot join a queue that has consumers either
        with self.channel_error(ACCESS_REFUSED, ch4):
            ch4.basic_consume(q, lambda *a: None, exclusive=True)

    def test_cancel(self):
        q = self.temp_queue()
        tag, got = self.collector(self.ch, q)
        self.fill(q, 1)
        self.wait_count(got, 1)
        self.ch.basic_cancel(tag)
        self.assertEqual(self.counts(q), (0, 0))
        self.fill(q, 2)
        self.quiet()
        self.assertEqual(len(got), 1)
        self.assertEqual(self.counts(q), (1, 0))
        # the delivery made before the cancel can still be acked
        self.ch.basic_ack(got[0][1])
        self.assertEqual(bodies(self.ch, q), ["2"])

    def test_cancel_unknown_tag(self):
        # RabbitMQ answers cancel-ok for a tag it does not know (pika filters
        # unknown tags itself, so speak raw)
        r = self.raw()
        r.open_channel(1)
        args = r.call(1, 60, 30, sstr("never-used") + b"\0", (60, 31))
        self.assertEqual(args[1:1 + args[0]], b"never-used")

    def test_consume_missing_queue(self):
        with self.channel_error(NOT_FOUND, text="no queue"):
            self.ch.basic_consume(self.unique("missing"), lambda *a: None)

    def test_round_robin(self):
        q = self.temp_queue()
        got = []

        def on_msg(_ch, m, _p, b):
            got.append((m.consumer_tag, b.decode()))
        self.ch.basic_consume(q, on_msg, auto_ack=True, consumer_tag="A")
        self.ch.basic_consume(q, on_msg, auto_ack=True, consumer_tag="B")
        self.fill(q, *range(10))
        self.wait_count(got, 10)
        # RabbitMQ alternates strictly between the consumers of a queue
        self.assertEqual(got, [("A" if i % 2 == 0 else "B", str(i)) for i in range(10)])


class TestGet(BasicCase):
    def test_get_ok_fields(self):
        q = self.temp_queue()
        self.fill(q, "a", "b", "c")
        seen = []
        for _ in range(3):
            m, _, b = self.ch.basic_get(q)
            seen.append((b, m.message_count, m.delivery_tag, m.redelivered, m.exchange,
                         m.routing_key))
        self.assertEqual(seen, [(b"a", 2, 1, False, "", q), (b"b", 1, 2, False, "", q),
                                (b"c", 0, 3, False, "", q)])
        self.assertEqual(self.ch.basic_get(q), (None, None, None))   # get-empty
        self.ch.basic_ack(3, multiple=True)

    def test_get_missing_queue(self):
        with self.channel_error(NOT_FOUND):
            self.ch.basic_get(self.unique("missing"))


class TestAck(BasicCase):
    def get_all(self, ch, q):
        out = []
        while True:
            m, _, b = ch.basic_get(q)
            if m is None:
                return out
            out.append((m.delivery_tag, b.decode(), m.redelivered))

    def test_ack_multiple(self):
        q = self.temp_queue()
        self.fill(q, *range(1, 6))
        ch = self.conn.channel()
        got = self.get_all(ch, q)
        self.assertEqual([t for t, _, _ in got], [1, 2, 3, 4, 5])
        ch.basic_ack(3, multiple=True)
        ch.basic_ack(5)
        ch.close()
        # only 4 was left unacked
        self.assertEqual(drain(self.ch, q), [("4", True)])

    def test_ack_multiple_zero_acks_everything(self):
        q = self.temp_queue()
        self.fill(q, 1, 2, 3)
        ch = self.conn.channel()
        self.assertEqual(len(self.get_all(ch, q)), 3)
        ch.basic_ack(0, multiple=True)
        ch.close()
        self.assertEqual(self.counts(q), (0, 0))

    def test_nack_multiple_requeue_keeps_order(self):
        q = self.temp_queue()
        self.fill(q, *range(1, 6))
        got = self.get_all(self.ch, q)
        self.assertEqual([(b, r) for _, b, r in got], [(str(i), False) for i in range(1, 6)])
        self.ch.basic_nack(5, multiple=True, requeue=True)
        again = self.get_all(self.ch, q)
        self.assertEqual(again, [(5 + i, str(i), True) for i in range(1, 6)])

    def test_requeued_go_before_undelivered(self):
        q = self.temp_queue()
        self.fill(q, *range(1, 6))
        got = [self.ch.basic_get(q)[0] for _ in range(4)]
        # requeue 4 and then 2 (out of order): they come back in queue order,
        # ahead of 5 which was never delivered
        self.ch.basic_nack(got[3].delivery_tag, requeue=True)
        self.ch.basic_reject(got[1].delivery_tag, requeue=True)
        self.assertEqual(drain(self.ch, q), [("2", True), ("4", True), ("5", False)])

    def test_reject_without_requeue_drops(self):
        q = self.temp_queue()
        self.fill(q, 1, 2)
        ch = self.conn.channel()
        m, _, _ = ch.basic_get(q)
        ch.basic_reject(m.delivery_tag, requeue=False)
        m2, _, _ = ch.basic_get(q)
        ch.basic_nack(m2.delivery_tag, requeue=False)
        ch.close()
        self.assertEqual(self.counts(q), (0, 0))

    def test_unknown_tag(self):
        # RabbitMQ: 406 "PRECONDITION_FAILED - unknown delivery tag 5"
        with self.channel_error(PRECONDITION_FAILED, text="unknown delivery tag 5"):
            self.ch.basic_ack(5)
        for op in ("nack", "reject"):
            ch = self.conn.channel()
            with self.subTest(op=op), self.channel_error(PRECONDITION_FAILED, ch):
                getattr(ch, "basic_" + op)(7)

    def test_double_ack(self):
        q = self.temp_queue()
        self.fill(q, 1)
        m, _, _ = self.ch.basic_get(q)
        self.ch.basic_ack(m.delivery_tag)
        with self.channel_error(PRECONDITION_FAILED, text="unknown delivery tag 1"):
            self.ch.basic_ack(m.delivery_tag)

    def test_ack_on_other_channel(self):
        q = self.temp_queue()
        self.fill(q, 1)
        m, _, _ = self.ch.basic_get(q)
        ch2 = self.conn.channel()
        with self.channel_error(PRECONDITION_FAILED, ch2):
            ch2.basic_ack(m.delivery_tag)
        self.ch.basic_ack(m.delivery_tag)

    def test_channel_close_requeues(self):
        q = self.temp_queue()
        self.fill(q, *range(1, 7))
        ch = self.conn.channel()
        for _ in range(3):
            ch.basic_get(q)
        ch.close()
        self.assertEqual(drain(self.ch, q), [("1", True), ("2", True), ("3", True),
                                             ("4", False), ("5", False), ("6", False)])

    def test_consumer_channel_close_requeues(self):
        q = self.temp_queue()
        self.fill(q, *range(1, 5))
        ch = self.conn.channel()
        ch.basic_qos(prefetch_count=2)
        _, got = self.collector(ch, q)
        self.wait_count(got, 2)
        ch.close()
        self.assertEqual(drain(self.ch, q), [("1", True), ("2", True), ("3", False), ("4", False)])

    def test_connection_close_requeues(self):
        q = self.queue()
        self.fill(q, 1, 2, 3)
        c = self.new_connection()
        ch = c.channel()
        ch.basic_get(q)
        ch.basic_get(q)
        c.close()
        self.eventually(lambda: self.assertEqual(self.counts(q), (3, 0)))
        self.assertEqual(drain(self.ch, q), [("1", True), ("2", True), ("3", False)])

    def test_recover_requeue(self):
        q = self.temp_queue()
        self.fill(q, 1, 2, 3)
        tag, got = self.collector(self.ch, q)
        self.wait_count(got, 3)
        self.ch.basic_recover(requeue=True)
        self.wait_count(got, 6)
        self.assertEqual([(t, b, r) for _, t, b, r in got],
                         [(1, "1", False), (2, "2", False), (3, "3", False),
                          (4, "1", True), (5, "2", True), (6, "3", True)])
        # the old tags are gone, the new ones are valid
        self.ch.basic_ack(6, multiple=True)
        self.assertEqual(self.counts(q), (0, 1))

    def test_recover_without_requeue_not_implemented(self):
        # RabbitMQ: connection error 540 "NOT_IMPLEMENTED - requeue=false"
        with self.connection_error(NOT_IMPLEMENTED, text="requeue=false"):
            self.ch.basic_recover(requeue=False)


class TestQos(BasicCase):
    def setUp(self):
        super().setUp()
        self.queues = [self.temp_queue() for _ in range(3)]
        for q in self.queues:
            self.fill(q, *range(10))

    def consume_all(self, ch, n):
        got = []
        for i, q in enumerate(self.queues[:n]):
            ch.basic_consume(q, lambda _c, m, _p, _b, i=i: got.append((i, m.delivery_tag)))
        return got

    def per_consumer(self, got):
        return [sum(1 for i, _ in got if i == k) for k in range(3)]

    def test_per_consumer_limit(self):
        ch = self.conn.channel()
        ch.basic_qos(prefetch_count=2)                # global=false: each consumer
        got = self.consume_all(ch, 2)
        self.wait_count(got, 4)
        self.assertEqual(self.per_consumer(got), [2, 2, 0])
        ch.basic_ack(next(tag for i, tag in got if i == 0))      # one of consumer 0's
        self.wait_count(got, 5)
        self.assertEqual(self.per_consumer(got), [3, 2, 0])

    def test_global_limit_is_per_channel(self):
        ch = self.conn.channel()
        ch.basic_qos(prefetch_count=3, global_qos=True)   # shared by the channel
        got = self.consume_all(ch, 2)
        self.wait_count(got, 3)
        ch.basic_ack(got[0][1])
        self.wait_count(got, 4)
        ch.basic_ack(got[-1][1], multiple=True)
        self.wait_count(got, 7)

    def test_both_limits(self):
        ch = self.conn.channel()
        ch.basic_qos(prefetch_count=2)
        ch.basic_qos(prefetch_count=3, global_qos=True)
        got = self.consume_all(ch, 3)
        self.wait_count(got, 3)           # 3 consumers x 2 = 6, capped at 3
        self.assertTrue(all(n <= 2 for n in self.per_consumer(got)), got)

    def test_per_consumer_qos_after_global_lifts_global(self):
        # Surprising: RabbitMQ's basic.qos with global=false also removes the
        # channel-wide (global=true) limit set before it (rabbit_channel calls
        # rabbit_limiter:unlimit_prefetch), so here each consumer gets 2 and
        # the channel 6, not 3.
        ch = self.conn.channel()
        ch.basic_qos(prefetch_count=3, global_qos=True)
        ch.basic_qos(prefetch_count=2)
        got = self.consume_all(ch, 3)
        self.wait_count(got, 6)
        self.assertEqual(self.per_consumer(got), [2, 2, 2])

    def test_consumer_keeps_prefetch_it_started_with(self):
        ch = self.conn.channel()
        ch.basic_qos(prefetch_count=2)
        got = self.consume_all(ch, 1)
        self.wait_count(got, 2)
        ch.basic_qos(prefetch_count=5)      # applies to consumers started later
        self.quiet()
        self.assertEqual(len(got), 2)
        ch.basic_ack(got[0][1])
        self.wait_count(got, 3)

    def test_prefetch_ignored_by_get_and_no_ack(self):
        ch = self.conn.channel()
        ch.basic_qos(prefetch_count=1)
        q0, q1 = self.queues[:2]
        self.assertTrue(all(ch.basic_get(q0)[0] is not None for _ in range(3)))
        _, got = self.collector(ch, q1, auto_ack=True)
        self.wait_count(got, 10)

    def test_prefetch_size_not_implemented(self):
        # RabbitMQ 3.10: connection error 540 "NOT_IMPLEMENTED - prefetch_size!=0 (10)"
        with self.connection_error(NOT_IMPLEMENTED, text="prefetch_size"):
            self.ch.basic_qos(prefetch_size=10)


class TestConfirm(BasicCase):
    def test_blocking_confirms(self):
        q = self.temp_queue()
        for i in range(20):
            self.pub.basic_publish("", q, str(i).encode())
        self.assertEqual(bodies(self.ch, q), [str(i) for i in range(20)])

    def test_acks_cover_each_tag_once_in_order(self):
        n = 300
        r = self.raw()
        r.open_channel(1)
        q = self.queue()
        r.confirm_select(1)
        r.send(b"".join(r.publish(1, "", q, str(i).encode()) for i in range(n)))
        confirmed = []
        while len(confirmed) < n:
            f = r.recv_method()
            self.assertIsNotNone(f, "connection closed after %d confirms" % len(confirmed))
            self.assertEqual(f[1:3], (60, 80), "expected basic.ack, not %r" % (f[1:3],))
            tag, multiple = ack_args(f[3])
            last = confirmed[-1] if confirmed else 0
            self.assertGreater(tag, last, "acks must be in order")
            if multiple:
                confirmed.extend(range(last + 1, tag + 1))
            else:
                self.assertEqual(tag, last + 1, "single ack skipped a tag")
                confirmed.append(tag)
        self.assertEqual(confirmed, list(range(1, n + 1)))
        self.assertEqual(self.counts(q), (n, 0))

    def test_tx_and_confirm_exclusive(self):
        ch = self.conn.channel()
        ch.confirm_delivery()
        # RabbitMQ: 406 "cannot switch from confirm to tx mode"
        with self.channel_error(PRECONDITION_FAILED, ch, text="confirm to tx"):
            ch.tx_select()
        ch = self.conn.channel()
        ch.tx_select()
        with self.channel_error(PRECONDITION_FAILED, ch, text="tx to confirm"):
            ch.confirm_delivery()


class TestTx(BasicCase):
    def test_commit_and_rollback_publishes(self):
        q = self.temp_queue()
        tx = self.conn.channel()
        tx.tx_select()
        tx.basic_publish("", q, b"rolled-back")
        tx.tx_rollback()
        self.assertEqual(self.counts(q), (0, 0))
        tx.basic_publish("", q, b"c1")
        tx.basic_publish("", q, b"c2")
        self.assertEqual(self.counts(q), (0, 0))    # not before the commit
        tx.tx_commit()
        self.assertEqual(self.counts(q), (2, 0))
        tx.tx_commit()                              # an empty commit is fine
        self.assertEqual(bodies(self.ch, q), ["c1", "c2"])

    def test_rolled_back_ack_not_applied(self):
        q = self.temp_queue()
        self.fill(q, "m")
        tx = self.conn.channel()
        tx.tx_select()
        m, _, _ = tx.basic_get(q)
        tx.basic_ack(m.delivery_tag)
        tx.tx_rollback()
        tx.close()       # still unacked: requeued
        self.assertEqual(drain(self.ch, q, ack=False), [("m", True)])

    def test_ack_again_after_rollback(self):
        q = self.temp_queue()
        self.fill(q, "m")
        tx = self.conn.channel()
        tx.tx_select()
        m, _, _ = tx.basic_get(q)
        tx.basic_ack(m.delivery_tag)
        tx.tx_rollback()
        tx.basic_ack(m.delivery_tag)     # the tag is still valid
        tx.tx_commit()
        with self.channel_error(PRECONDITION_FAILED, tx, text="unknown delivery tag"):
            tx.basic_ack(m.delivery_tag)
            tx.tx_commit()
        self.assertEqual(self.counts(q), (0, 0))

    def test_commit_without_select(self):
        # RabbitMQ: 406 "channel is not transactional"
        with self.channel_error(PRECONDITION_FAILED, text="not transactional"):
            self.ch.tx_commit()
        ch = self.conn.channel()
        with self.channel_error(PRECONDITION_FAILED, ch, text="not transactional"):
            ch.tx_rollback()


class TestInterop(BasicCase):
    """rabbitmq-c (amqp-tools) on one side, pika on the other."""

    def test_amqp_publish_properties_reach_pika(self):
        q = self.temp_queue()
        self.tool("amqp-publish", "-r", q, "-b", "from rabbitmq-c", "-C", "text/plain",
                  "-E", "gzip", "-H", "k1: v1", "-H", "k2: v2", "-p", "-t", "reply-here")
        self.tool("amqp-publish", "-r", q, "-b", "transient")
        m, p, b = self.ch.basic_get(q, auto_ack=True)
        self.assertEqual((b, m.exchange, m.routing_key, m.message_count),
                         (b"from rabbitmq-c", "", q, 1))
        self.assertEqual((p.content_type, p.content_encoding, p.delivery_mode, p.reply_to),
                         ("text/plain", "gzip", 2, "reply-here"))
        self.assertEqual({k: (v.decode() if isinstance(v, bytes) else v) for k, v in p.headers.items()},
                         {"k1": "v1", "k2": "v2"})
        _, p2, b2 = self.ch.basic_get(q, auto_ack=True)
        self.assertEqual(b2, b"transient")
        self.assertNotEqual(p2.delivery_mode, 2)

    def test_amqp_publish_lines_in_order(self):
        q = self.temp_queue()
        self.tool("amqp-publish", "-r", q, "-l", input=b"one\ntwo\nthree\n")
        self.assertEqual([b.strip() for b in bodies(self.ch, q)], ["one", "two", "three"])

    def test_pika_binary_body_reaches_amqp_get(self):
        q = self.queue()
        body = os.urandom(1 << 20) + b"\x00\n\r\xff"
        self.pub.basic_publish("", q, body)
        self.pub.basic_publish("", q, b"second")
        out = self.tool("amqp-get", "-q", q).stdout
        self.assertTrue(out == body, "amqp-get got %d bytes, want %d" % (len(out), len(body)))
        self.assertEqual(self.tool("amqp-get", "-q", q).stdout, b"second")
        empty = self.tool("amqp-get", "-q", q, check=False)
        self.assertNotEqual(empty.returncode, 0)    # get-empty
        self.assertEqual(empty.stdout, b"")

    def test_amqp_get_missing_queue(self):
        p = self.tool("amqp-get", "-q", self.unique("missing"), check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"404", p.stderr)

    def test_amqp_consume_in_order(self):
        q = self.queue()
        self.fill(q, *("m%d\n" % i for i in range(5)))
        self.fill(q, "left")
        p = self.tool("amqp-consume", "-q", q, "-c", "5", "cat")
        self.assertEqual(p.stdout.decode(), "".join("m%d\n" % i for i in range(5)))
        # amqp-consume acked what it consumed; the sixth is still there
        self.eventually(lambda: self.assertEqual(self.counts(q), (1, 0)))


if __name__ == "__main__":
    harness.main()
