"""test_consumers - consumer priorities, single active consumer and direct
reply-to (issue 4), checked against RabbitMQ 3.10.

Covers:
  * consumer priorities (x-priority on basic.consume): the highest-priority
    consumer gets every message while it has prefetch room, lower ones get
    messages only while all higher ones are full, equal priorities share
    round robin, no x-priority is 0 and negative priorities rank below it,
    cancelling the high one hands over, a non-integer x-priority -> 406;
  * single active consumer (x-single-active-consumer=true): only the first
    registered consumer gets messages, even while it is at its prefetch
    limit; when it cancels or its connection dies (closed, or just the
    socket dropped) the next one in registration order takes over, and gets
    the unacked messages of a dead one redelivered; no message is ever out
    to two consumers at once; declare-ok consumer_count counts every
    registered consumer, active or waiting; false is an ordinary queue; a
    non-boolean -> 406; an exclusive consume on a SAC queue with consumers
    -> 403;
  * direct reply-to: an RPC round trip (the responder sees reply_to
    "amq.rabbitmq.reply-to.<opaque>", replies through the default exchange,
    the requester's no-ack consumer gets it with that routing key, its
    consumer tag and the correlation id), replies go to the right one of two
    requesters, a reply to a requester that cancelled (even if it consumes
    again: that is a new name) or closed its connection is dropped (returned
    312 NO_ROUTE when mandatory), so is a reply to a made-up name or one
    published through another exchange; consuming amq.rabbitmq.reply-to in
    ack mode -> 406 "reply consumer cannot acknowledge", publishing with
    reply_to=amq.rabbitmq.reply-to before consuming it -> 406 "fast reply
    consumer does not exist", a second reply consumer on the channel -> 406
    "reply consumer already set"; queue.declare of amq.rabbitmq.reply-to
    (passive or not) answers declare-ok with 0 messages and 1 consumer,
    basic.get on it -> 404;
  * warrend only: when the active consumer cancels while at its prefetch
    limit with unacked messages, the next consumer takes over. RabbitMQ 3.10
    classic queues stall there (measured: the waiting consumer got nothing,
    not even after the cancelled consumer's channel closed and its message
    was requeued, for as long as we waited); with no prefetch limit RabbitMQ
    hands over at once (test_cancel_hands_over_while_messages_unacked);
    a mandatory reply to a live requester is delivered and not returned
    (RabbitMQ 3.10 delivers it and also sends basic.return 312 NO_ROUTE).
"""
import struct

import pika

import harness
from amqpcase import (ACCESS_REFUSED, NO_ROUTE, NOT_FOUND, PRECONDITION_FAILED, RawClient,
                      SemanticsCase)
from harness import HOST

REPLY_TO = "amq.rabbitmq.reply-to"


def bodies(inbox):
    return [m.body for m in inbox]


class TestConsumerPriority(SemanticsCase):
    def test_highest_gets_all_while_it_has_room(self):
        q = self.temp_queue()
        low, _, _ = self.listen(q, auto_ack=True, arguments={"x-priority": 1})
        high, _, _ = self.listen(q, auto_ack=True, arguments={"x-priority": 10})
        plain, _, _ = self.listen(q, auto_ack=True)
        self.send_all(q, range(10))
        self.expect(high, 10)
        self.assertEqual(bodies(high), [str(i) for i in range(10)])
        self.assertEqual((low, plain), ([], []))

    def test_lower_ones_get_messages_when_higher_are_full(self):
        q = self.temp_queue()
        low, low_ch, _ = self.listen(q, prefetch=2, arguments={"x-priority": 1})
        high, high_ch, _ = self.listen(q, prefetch=2, arguments={"x-priority": 10})
        plain, _, _ = self.listen(q, prefetch=2)
        self.send_all(q, range(8))
        self.pump(lambda: len(high) + len(low) + len(plain) == 6, what="6 deliveries")
        self.settle()
        self.assertEqual((bodies(high), bodies(low), bodies(plain)),
                         (["0", "1"], ["2", "3"], ["4", "5"]))
        self.assertEqual(self.ready(q), 2)
        # the high one is still full: room at the low one takes the rest
        low_ch.basic_ack(low[-1].dtag, multiple=True)
        self.expect(low, 4)
        self.assertEqual(bodies(low)[2:], ["6", "7"])
        # room at the high one again: it is first in line for new messages
        high_ch.basic_ack(high[-1].dtag, multiple=True)
        self.send_all(q, ["8", "9"])
        self.expect(high, 4)
        self.assertEqual(bodies(high)[2:], ["8", "9"])
        self.assertEqual((len(low), len(plain)), (4, 2))

    def test_default_zero_and_negative(self):
        q = self.temp_queue()
        neg, _, _ = self.listen(q, auto_ack=True, arguments={"x-priority": -5})
        plain, _, _ = self.listen(q, auto_ack=True)
        self.send_all(q, range(4))
        self.expect(plain, 4)
        self.assertEqual(neg, [])

    def test_equal_priorities_round_robin(self):
        q = self.temp_queue()
        got = []
        ch = self.conn.channel()        # one channel: pika hands deliveries over in wire order
        for name in ("a", "b"):
            self.listen(q, ch=ch, auto_ack=True, arguments={"x-priority": 5},
                        on_message=lambda m, name=name: got.append((name, m.body)))
        low, _, _ = self.listen(q, auto_ack=True, arguments={"x-priority": 1})
        self.send_all(q, range(6))
        self.pump(lambda: len(got) == 6, what="6 deliveries")
        self.settle()
        self.assertEqual(got, [("a" if i % 2 == 0 else "b", str(i)) for i in range(6)])
        self.assertEqual(low, [])

    def test_cancel_hands_over(self):
        q = self.temp_queue()
        low, _, _ = self.listen(q, auto_ack=True, arguments={"x-priority": 1})
        high, high_ch, tag = self.listen(q, auto_ack=True, arguments={"x-priority": 10})
        self.send(q, "first")
        self.expect(high, 1)
        high_ch.basic_cancel(tag)
        self.send(q, "second")
        self.assertEqual(bodies(self.expect(low, 1)), ["second"])

    def test_invalid_x_priority(self):
        # RabbitMQ: 406 "invalid arg 'x-priority' for queue ...: "expected integer, got longstr""
        q = self.temp_queue()
        with self.channel_error(PRECONDITION_FAILED, text="x-priority"):
            self.ch.basic_consume(q, lambda *a: None, arguments={"x-priority": "high"})


class RawConsumer:
    """A consumer on its own raw connection, so a test can drop the socket
    without any AMQP goodbye (a crashed client)."""

    def __init__(self, case, q, prefetch):
        self.r = RawClient(HOST, case.broker.port)
        case.addCleanup(self.r.close)
        self.r.handshake()
        self.r.open_channel(1)
        self.r.call(1, 60, 10, struct.pack(">IHB", 0, prefetch, 0), (60, 11))
        self.tag = self.r.consume(1, q)

    def receive(self, n):
        """The bodies of the next n deliveries."""
        out = []
        while len(out) < n:
            t, _, payload = self.r.recv_frame()
            if t == 3:
                out.append(payload.decode())
        return out


class TestSingleActiveConsumer(SemanticsCase):
    SAC = {"x-single-active-consumer": True}

    def sac_queue(self):
        return self.queue(arguments=self.SAC)

    def test_only_the_first_receives(self):
        q = self.sac_queue()
        inboxes = [self.listen(q, auto_ack=True)[0] for _ in range(3)]
        self.assertEqual(self.counts(q), (0, 3))
        self.send_all(q, range(6))
        self.expect(inboxes[0], 6)
        self.assertEqual(bodies(inboxes[0]), [str(i) for i in range(6)])
        self.assertEqual(inboxes[1:], [[], []])

    def test_cancel_hands_over_in_registration_order(self):
        q = self.sac_queue()
        regs = {}
        for name in ("zeta", "alpha", "mid"):           # not alphabetical
            regs[name] = self.listen(q, auto_ack=True, tag=name)
        self.send(q, "1")
        self.expect(regs["zeta"][0], 1)
        regs["zeta"][1].basic_cancel("zeta")
        self.assertEqual(self.counts(q), (0, 2))
        self.send(q, "2")
        self.expect(regs["alpha"][0], 1)
        regs["alpha"][1].basic_cancel("alpha")
        self.send(q, "3")
        self.expect(regs["mid"][0], 1)
        self.assertEqual([bodies(regs[n][0]) for n in ("zeta", "alpha", "mid")],
                         [["1"], ["2"], ["3"]])

    def test_connection_close_hands_over_unacked(self):
        q = self.sac_queue()
        other = self.new_connection()
        first, _, _ = self.listen(q, conn=other, prefetch=2)
        second, _, _ = self.listen(q)
        conns = [self.conn, other]
        self.send_all(q, range(5))
        self.expect(first, 2, conns)
        # the active consumer is at its prefetch limit: the rest wait, the
        # second consumer gets nothing
        self.assertEqual(second, [])
        self.assertEqual(self.counts(q), (3, 2))
        other.close()
        self.expect(second, 5)
        got = [(m.body, m.redelivered) for m in second]
        if self.is_rabbitmq:
            # pika cancels the consumer before closing; RabbitMQ 3.10 stalls
            # a single-active queue whose active consumer is cancelled at
            # its prefetch limit (see test_cancel_at_prefetch_limit_hands_over),
            # so the requeued messages come back before the others.
            self.assertEqual(got, [("0", True), ("1", True), ("2", False), ("3", False),
                                   ("4", False)])
        else:
            # Warren hands over at the cancel: the waiting messages go at
            # once, the unacked ones follow when the channel closes. Each
            # exactly once, and only the returned ones marked redelivered.
            self.assertEqual(sorted(got), [("0", True), ("1", True), ("2", False),
                                           ("3", False), ("4", False)])
            self.assertEqual(got[3:], [("0", True), ("1", True)])

    def test_dropped_socket_hands_over(self):
        q = self.sac_queue()
        raw = RawConsumer(self, q, prefetch=2)
        waiting, _, _ = self.listen(q)
        self.send_all(q, range(4))
        self.assertEqual(raw.receive(2), ["0", "1"])
        self.settle()
        self.assertEqual(waiting, [])
        raw.r.close()                               # no connection.close
        self.expect(waiting, 4)
        self.assertEqual([(m.body, m.redelivered) for m in waiting],
                         [("0", True), ("1", True), ("2", False), ("3", False)])

    def test_cancel_hands_over_while_messages_unacked(self):
        # the cancelled consumer keeps its unacked messages (basic.cancel does
        # not requeue); the next consumer gets only the others, and the
        # unacked ones once the first channel closes
        q = self.sac_queue()
        first, first_ch, tag = self.listen(q)
        second, _, _ = self.listen(q)
        self.send_all(q, range(3))
        self.expect(first, 3)
        first_ch.basic_cancel(tag)
        self.send(q, "3")
        self.expect(second, 1)
        self.assertEqual(bodies(second), ["3"])
        first_ch.close()
        self.expect(second, 4)
        self.assertEqual([(m.body, m.redelivered) for m in second][1:],
                         [("0", True), ("1", True), ("2", True)])

    def test_cancel_at_prefetch_limit_hands_over(self):
        self.warren_only("RabbitMQ 3.10 classic queues stop delivering when the active "
                         "consumer is cancelled at its prefetch limit")
        q = self.sac_queue()
        first, first_ch, tag = self.listen(q, prefetch=1)
        second, _, _ = self.listen(q)
        self.send_all(q, range(3))
        self.expect(first, 1)
        first_ch.basic_cancel(tag)
        # "0" stays with the cancelled consumer until it settles it
        self.expect(second, 2)
        self.assertEqual(bodies(second), ["1", "2"])
        first_ch.basic_nack(first[0].dtag, requeue=True)
        self.expect(second, 3)
        self.assertEqual((second[2].body, second[2].redelivered), ("0", True))

    def test_never_two_at_once(self):
        # consumers on three connections; the first two ack some messages and
        # die holding the others (the multiples of 3), the last one acks
        # everything: every message is out to at most one live consumer at
        # any time, and each is acked exactly once
        q = self.sac_queue()
        conns = [self.new_connection() for _ in range(3)]
        held = {}                                   # body -> consumer holding it
        acked = []
        problems = []

        def on_msg(i, m):
            holder = held.get(m.body)
            if holder is not None and holder != i and conns[holder].is_open:
                problems.append((m.body, holder, i))
            if i < 2 and int(m.body) % 3 == 0:
                held[m.body] = i
            else:
                held.pop(m.body, None)
                m.ch.basic_ack(m.dtag)
                acked.append((i, m.body))
        for i, c in enumerate(conns):
            self.listen(q, conn=c, prefetch=4, on_message=lambda m, i=i: on_msg(i, m))
        self.send_all(q, range(12))
        for i in range(2):
            self.pump(lambda: sum(1 for n in held.values() if n == i) == 4, conns,
                      what="consumer %d full" % i)
            self.settle(conns)
            self.assertEqual(set(held.values()), {i})
            conns[i].close()
        self.pump(lambda: len(acked) == 12, conns, what="every message acked")
        self.settle(conns)
        self.assertEqual(problems, [])
        self.assertEqual(held, {})
        self.assertEqual(sorted((b for _, b in acked), key=int), [str(i) for i in range(12)])
        # the first consumer acked what it did not hold, the last one acked
        # the held ones (where 10 and 11 go depends on the redelivery order,
        # checked by test_connection_close_hands_over_unacked)
        self.assertEqual(sorted(int(b) for i, b in acked if i == 0), [1, 2, 4, 5, 7, 8])
        self.assertEqual(sorted(int(b) for i, b in acked if i == 2 and int(b) % 3 == 0),
                         [0, 3, 6, 9])
        self.assertEqual(self.counts(q), (0, 1))

    def test_false_is_round_robin(self):
        q = self.queue(arguments={"x-single-active-consumer": False})
        got = []
        ch = self.conn.channel()
        for name in ("a", "b"):
            self.listen(q, ch=ch, auto_ack=True, on_message=lambda m, name=name: got.append(name))
        self.send_all(q, range(4))
        self.pump(lambda: len(got) == 4)
        self.assertEqual(got, ["a", "b", "a", "b"])

    def test_invalid_type(self):
        # RabbitMQ: 406 "invalid arg 'x-single-active-consumer' ...: {unacceptable_type,signedint}"
        for v in (1, "true"):
            ch = self.conn.channel()
            with self.subTest(value=v), \
                    self.channel_error(PRECONDITION_FAILED, ch, text="x-single-active-consumer"):
                ch.queue_declare(self.unique("sac"), arguments={"x-single-active-consumer": v})

    def test_exclusive_consume_refused(self):
        q = self.sac_queue()
        self.listen(q)
        ch = self.conn.channel()
        with self.channel_error(ACCESS_REFUSED, ch):
            ch.basic_consume(q, lambda *a: None, exclusive=True)


class TestDirectReplyTo(SemanticsCase):
    def responder(self, reply=lambda body: body.upper()):
        """A server on its own connection: consumes a request queue and
        answers each request to its reply_to through the default exchange.
        Returns (request queue, connection, list of requests seen)."""
        srv = self.new_connection()
        ch = srv.channel()
        ch.confirm_delivery()
        q = ch.queue_declare("", exclusive=True).method.queue
        seen = []

        def on_request(c, m, p, b):
            seen.append(p)
            c.basic_publish("", p.reply_to, reply(b),
                            pika.BasicProperties(correlation_id=p.correlation_id))
            c.basic_ack(m.delivery_tag)
        ch.basic_consume(q, on_request)
        return q, srv, seen

    def requester(self, conn=None):
        ch = (conn or self.conn).channel()
        replies = []
        tag = ch.basic_consume(REPLY_TO, lambda c, m, p, b: replies.append((m, p, b)),
                               auto_ack=True)
        return ch, replies, tag

    def test_rpc_round_trip(self):
        rq, srv, seen = self.responder()
        ch, replies, tag = self.requester()
        for i in range(3):
            ch.basic_publish("", rq, b"ping %d" % i,
                             pika.BasicProperties(reply_to=REPLY_TO, correlation_id="c%d" % i))
        self.pump(lambda: len(replies) == 3, [self.conn, srv], what="3 replies")
        self.settle([self.conn, srv])
        self.assertEqual(len(replies), 3)
        reply_to = seen[0].reply_to
        self.assertTrue(reply_to.startswith(REPLY_TO + "."), reply_to)
        self.assertGreater(len(reply_to), len(REPLY_TO) + 1)
        self.assertEqual(sorted((p.correlation_id, b) for _, p, b in replies),
                         [("c0", b"PING 0"), ("c1", b"PING 1"), ("c2", b"PING 2")])
        for m, p, b in replies:
            self.assertEqual((m.consumer_tag, m.exchange, m.routing_key, m.redelivered),
                             (tag, "", reply_to, False))
        # no queue was declared for the replies
        self.assertTrue(ch.is_open)

    def test_each_requester_gets_its_own_replies(self):
        rq, srv, seen = self.responder()
        other = self.new_connection()
        a, ra, _ = self.requester()
        b, rb, _ = self.requester(other)
        a.basic_publish("", rq, b"from a", pika.BasicProperties(reply_to=REPLY_TO))
        b.basic_publish("", rq, b"from b", pika.BasicProperties(reply_to=REPLY_TO))
        conns = [self.conn, other, srv]
        self.pump(lambda: ra and rb, conns, what="both replies")
        self.settle(conns)
        self.assertEqual(([x[2] for x in ra], [x[2] for x in rb]), ([b"FROM A"], [b"FROM B"]))
        self.assertNotEqual(seen[0].reply_to, seen[1].reply_to)

    def capture_reply_to(self, ch):
        """Publish a request from ch into a plain queue and return the
        reply_to the responder would see."""
        q = self.temp_queue()
        ch.basic_publish("", q, b"req", pika.BasicProperties(reply_to=REPLY_TO))
        found = []
        self.pump(lambda: found.append(self.ch.basic_get(q, auto_ack=True)) or found[-1][0],
                  what="the request")
        return found[-1][1].reply_to

    def test_reply_after_requester_cancelled_is_dropped(self):
        ch, replies, tag = self.requester()
        name = self.capture_reply_to(ch)
        self.assertEqual(self.try_send(name, "fine"), "ack")
        self.pump(lambda: replies, what="the reply")
        ch.basic_cancel(tag)
        self.assertEqual(self.try_send(name, "after cancel"), "ack")
        # a new reply consumer, on the same channel or another, gets a new
        # name; the old one stays dead
        again = []
        ch.basic_consume(REPLY_TO, lambda c, m, p, b: again.append(b), auto_ack=True)
        self.assertNotEqual(self.capture_reply_to(ch), name)
        _, replies2, _ = self.requester()
        self.assertEqual(self.try_send(name, "old name"), "ack")
        self.settle()
        self.assertEqual(([b for _, _, b in replies], again, replies2), ([b"fine"], [], []))

    def test_reply_after_requester_connection_closed(self):
        other = self.new_connection()
        ch, replies, _ = self.requester(other)
        name = self.capture_reply_to(ch)
        other.close()
        self.assertEqual(self.try_send(name, "late"), "ack")
        self.assertEqual(self.try_send(name, "late", mandatory=True), "returned")

    def test_mandatory_reply_is_delivered_not_returned(self):
        # RabbitMQ 3.10 delivers a mandatory reply to a live requester and
        # also sends basic.return 312 NO_ROUTE for it (measured); a reply that
        # reached its consumer has been routed
        self.warren_only("RabbitMQ 3.10 returns every mandatory direct reply, delivered or not")
        ch, replies, _ = self.requester()
        name = self.capture_reply_to(ch)
        self.assertEqual(self.try_send(name, "routed", mandatory=True), "ack")
        self.pump(lambda: replies, what="the reply")
        self.assertEqual([b for _, _, b in replies], [b"routed"])

    def test_reply_to_unknown_name_is_returned(self):
        returned = []
        ch = self.conn.channel()
        ch.add_on_return_callback(lambda c, m, p, b: returned.append(m))
        ch.basic_publish("", REPLY_TO + ".made-up", b"x", mandatory=True)
        self.pump(lambda: returned, what="basic.return")
        self.assertEqual((returned[0].reply_code, returned[0].reply_text), (NO_ROUTE, "NO_ROUTE"))

    def test_only_the_default_exchange_routes_replies(self):
        ch, replies, _ = self.requester()
        name = self.capture_reply_to(ch)
        self.assertEqual(self.try_send(name, "via amq.direct", exchange="amq.direct",
                                       mandatory=True), "returned")
        self.settle()
        self.assertEqual(replies, [])

    def test_consume_in_ack_mode_is_406(self):
        with self.channel_error(PRECONDITION_FAILED, text="reply consumer cannot acknowledge"):
            self.ch.basic_consume(REPLY_TO, lambda *a: None, auto_ack=False)

    def test_publish_before_consuming_is_406(self):
        q = self.temp_queue(ch=self.conn.channel())
        with self.channel_error(PRECONDITION_FAILED, text="fast reply consumer does not exist"):
            self.ch.basic_publish("", q, b"req", pika.BasicProperties(reply_to=REPLY_TO))
        self.assertEqual(self.ready(q, self.conn.channel()), 0)

    def test_second_reply_consumer_is_406(self):
        self.ch.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True)
        with self.channel_error(PRECONDITION_FAILED, text="reply consumer already set"):
            self.ch.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True)

    def test_declare_and_get(self):
        ok = self.ch.queue_declare(REPLY_TO, passive=True).method
        self.assertEqual((ok.queue, ok.message_count, ok.consumer_count), (REPLY_TO, 0, 1))
        ok = self.ch.queue_declare(REPLY_TO).method
        self.assertEqual((ok.queue, ok.message_count, ok.consumer_count), (REPLY_TO, 0, 1))
        with self.channel_error(NOT_FOUND):
            self.ch.basic_get(REPLY_TO)


if __name__ == "__main__":
    harness.main()
