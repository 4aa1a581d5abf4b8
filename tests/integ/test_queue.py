"""test_queue - queue class semantics, checked against RabbitMQ 3.10 behaviour.

Covers:
  * declare: server-named queues ("amq.gen-..."), declare-ok message_count
    (ready messages only) and consumer_count, passive declare (404 when
    missing, other flags ignored), equivalence (406 on durable, auto_delete
    or x-argument mismatch, including an argument missing on redeclare),
    the reserved "amq." prefix (403), x-arguments of the wrong type or range
    (406), unknown x-arguments accepted;
  * exclusive queues: every use from another connection -> 405
    RESOURCE_LOCKED (declare, passive declare, consume, get, purge, delete,
    bind), publishing to one from elsewhere is fine, redeclaring with a
    different exclusive flag -> 405 even on the owning connection, deleted
    when the owning connection closes;
  * auto-delete queues: survive until they had a consumer, deleted when the
    last consumer is cancelled or its channel closes;
  * bind / unbind (routing starts and stops, 404 for missing queue or
    exchange on bind, unbind of a missing binding is unbind-ok);
  * purge (returns the ready count, leaves unacked messages alone);
  * delete (returns the ready count, if-unused 406 with a consumer, if-empty
    406 with messages, missing queue -> delete-ok 0, consumers get
    basic.cancel, bindings go with the queue);
  * the empty queue name as the channel's last declared queue (consume,
    get, bind/unbind with the routing key too, purge, delete; 404 without
    one);
  * rabbitmq-c's amqp-declare-queue / amqp-delete-queue against pika;
  * warrend only (skipped on an external broker, which we must not restart):
    a durable queue keeps its persistent messages across a restart, loses
    its transient ones, and a non-durable queue is gone.
"""
import pika
import pika.exceptions as pex

import harness
from amqpcase import (ACCESS_REFUSED, NOT_FOUND, PRECONDITION_FAILED, RESOURCE_LOCKED,
                      AmqpCase, bodies, drain)


class QueueCase(AmqpCase):
    def setUp(self):
        super().setUp()
        self.pub = self.confirm_channel()

    def publish(self, q, *msgs):
        for m in msgs:
            self.pub.basic_publish("", q, m.encode() if isinstance(m, str) else m)


class TestDeclare(QueueCase):
    def test_server_named(self):
        ok = self.ch.queue_declare("", exclusive=True).method
        self.assertTrue(ok.queue.startswith("amq.gen-"), ok.queue)
        self.assertGreater(len(ok.queue), len("amq.gen-"))
        self.assertEqual((ok.message_count, ok.consumer_count), (0, 0))
        other = self.temp_queue()
        self.assertNotEqual(ok.queue, other)
        # the generated name routes like any other and can be declared passively
        self.publish(ok.queue, "x")
        self.assertEqual(self.ch.queue_declare(ok.queue, passive=True).method.message_count, 1)
        self.assertEqual(bodies(self.ch, ok.queue), ["x"])
        # Surprising: RabbitMQ 3.10 checks the reserved prefix before looking
        # the queue up, so an active redeclare of an existing server-named
        # queue fails with 403 "queue name 'amq.gen-...' contains reserved
        # prefix 'amq.*'", even on the connection that owns it.
        with self.channel_error(ACCESS_REFUSED, text="amq."):
            self.ch.queue_declare(ok.queue, exclusive=True)

    def test_server_named_non_exclusive(self):
        q = self.ch.queue_declare("", auto_delete=True).method.queue
        self.forget("queue", q)
        self.assertTrue(q.startswith("amq.gen-"), q)
        other = self.new_connection().channel()
        self.assertEqual(other.queue_declare(q, passive=True).method.queue, q)

    def test_declare_ok_counts(self):
        q = self.queue()
        self.publish(q, "1", "2", "3")
        ok = self.ch.queue_declare(q).method
        self.assertEqual((ok.queue, ok.message_count, ok.consumer_count), (q, 3, 0))
        # a consumer with prefetch 1 holds one unacked message: it no longer
        # counts as a message, the consumer counts as a consumer
        cch = self.conn.channel()
        cch.basic_qos(prefetch_count=1)
        got = []
        cch.basic_consume(q, lambda c, m, p, b: got.append(b))
        self.wait_until(lambda: got, what="the first delivery")
        self.quiet()
        self.assertEqual(got, [b"1"])
        ok = self.ch.queue_declare(q).method
        self.assertEqual((ok.message_count, ok.consumer_count), (2, 1))
        ok = self.ch.queue_declare(q, passive=True).method
        self.assertEqual((ok.message_count, ok.consumer_count), (2, 1))

    def test_passive_missing(self):
        # RabbitMQ: 404 "no queue 'x' in vhost '/'"
        with self.channel_error(NOT_FOUND, text="no queue"):
            self.ch.queue_declare(self.unique("missing"), passive=True)

    def test_passive_ignores_other_fields(self):
        q = self.queue()
        ok = self.ch.queue_declare(q, passive=True, durable=True, auto_delete=True,
                                   arguments={"x-message-ttl": 5}).method
        self.assertEqual(ok.queue, q)

    def test_redeclare_equivalent(self):
        q = self.queue(durable=True, arguments={"x-message-ttl": 60000, "x-max-length": 10})
        self.ch.queue_declare(q, durable=True, arguments={"x-max-length": 10, "x-message-ttl": 60000})

    def test_durable_mismatch(self):
        q = self.queue()
        # RabbitMQ: 406 "inequivalent arg 'durable' for queue 'q' in vhost '/':
        # received 'true' but current is 'false'"
        with self.channel_error(PRECONDITION_FAILED, text="durable"):
            self.ch.queue_declare(q, durable=True)

    def test_auto_delete_mismatch(self):
        q = self.queue(auto_delete=True)
        with self.channel_error(PRECONDITION_FAILED, text="auto_delete"):
            self.ch.queue_declare(q, auto_delete=False)

    def test_argument_mismatch(self):
        q = self.queue(arguments={"x-message-ttl": 1000})
        with self.channel_error(PRECONDITION_FAILED, text="x-message-ttl"):
            self.ch.queue_declare(q, arguments={"x-message-ttl": 2000})
        # leaving the argument out is a mismatch too
        ch = self.conn.channel()
        with self.channel_error(PRECONDITION_FAILED, ch, text="x-message-ttl"):
            ch.queue_declare(q)
        # and so is adding one
        ch = self.conn.channel()
        q2 = self.queue(ch=ch)
        with self.channel_error(PRECONDITION_FAILED, ch, text="x-max-length"):
            ch.queue_declare(q2, arguments={"x-max-length": 5})

    def test_exclusive_mismatch_same_connection(self):
        q = self.ch.queue_declare(self.unique("excl"), exclusive=True).method.queue
        # Not 406: RabbitMQ answers 405 RESOURCE_LOCKED ("... or the exclusive
        # property value does not match that of the original declaration")
        with self.channel_error(RESOURCE_LOCKED):
            self.ch.queue_declare(q)
        ch = self.conn.channel()
        q2 = self.queue(ch=ch, auto_delete=True)
        with self.channel_error(RESOURCE_LOCKED, ch):
            ch.queue_declare(q2, exclusive=True, auto_delete=True)

    def test_reserved_prefix(self):
        # RabbitMQ: 403 "queue name 'amq.x' contains reserved prefix 'amq.*'"
        with self.channel_error(ACCESS_REFUSED, text="amq."):
            self.ch.queue_declare("amq.x-" + self.unique())

    def test_bad_argument_types(self):
        # RabbitMQ validates the x-arguments it knows: 406 "invalid arg
        # 'x-max-length' for queue ...: \"expected integer, got longstr\""
        cases = [
            {"x-max-length": "10"},
            {"x-max-length": -1},               # {value_negative,-1}
            {"x-message-ttl": "10"},
            {"x-max-length-bytes": "a"},
            {"x-expires": 0},                   # {value_zero,0}
            {"x-dead-letter-exchange": 5},      # invalid type 'signedint'
            {"x-overflow": "bogus"},
        ]
        for args in cases:
            ch = self.conn.channel()
            with self.subTest(args=args), self.channel_error(PRECONDITION_FAILED, ch):
                ch.queue_declare(self.unique(), exclusive=True, arguments=args)

    def test_unknown_argument_accepted(self):
        q = self.temp_queue(arguments={"x-not-a-real-argument": "whatever", "plain": 1})
        self.ch.queue_declare(q, passive=True)


class TestExclusive(QueueCase):
    def setUp(self):
        super().setUp()
        self.owner = self.new_connection()
        self.q = self.owner.channel().queue_declare(self.unique("excl"), exclusive=True).method.queue
        self.other = self.new_connection()

    def test_locked_for_other_connections(self):
        q = self.q
        ops = {
            "declare": lambda ch: ch.queue_declare(q, exclusive=True),
            "declare-non-exclusive": lambda ch: ch.queue_declare(q),
            "passive": lambda ch: ch.queue_declare(q, passive=True),
            "consume": lambda ch: ch.basic_consume(q, lambda *a: None),
            "get": lambda ch: ch.basic_get(q),
            "purge": lambda ch: ch.queue_purge(q),
            "delete": lambda ch: ch.queue_delete(q),
            "bind": lambda ch: ch.queue_bind(q, "amq.fanout"),
        }
        for name, op in ops.items():
            ch = self.other.channel()
            # RabbitMQ: 405 "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue ..."
            with self.subTest(op=name), self.channel_error(RESOURCE_LOCKED, ch, text="locked"):
                op(ch)
        # the queue is untouched and still works for its owner
        self.assertEqual(self.counts(q, self.owner.channel()), (0, 0))

    def test_other_connections_may_publish(self):
        pub = self.confirm_channel(self.other)
        pub.basic_publish("", self.q, b"hello")
        self.assertEqual(bodies(self.owner.channel(), self.q), ["hello"])

    def test_other_channels_of_owner_may_use_it(self):
        ch = self.owner.channel()
        self.owner.channel().basic_publish("", self.q, b"m")
        ch.queue_declare(self.q, exclusive=True)
        self.assertEqual(bodies(ch, self.q), ["m"])

    def test_deleted_when_owner_closes(self):
        self.other.channel().queue_declare(self.unique(), exclusive=True)  # unrelated
        self.owner.close()
        self.eventually(lambda: self.assertQueueMissing(self.q, self.other),
                        what="exclusive queue deletion")


class TestAutoDelete(QueueCase):
    def test_not_deleted_before_first_consumer(self):
        c = self.new_connection()
        q = c.channel().queue_declare(self.unique("ad"), auto_delete=True).method.queue
        self.forget("queue", q)
        c.close()
        # the declaring connection is gone, no consumer ever came: it stays
        self.assertEqual(self.counts(q), (0, 0))
        self.ch.basic_get(q)
        self.assertEqual(self.counts(q), (0, 0))

    def test_deleted_when_last_consumer_cancels(self):
        q = self.queue(auto_delete=True)
        t1 = self.ch.basic_consume(q, lambda *a: None)
        t2 = self.ch.basic_consume(q, lambda *a: None)
        self.ch.basic_cancel(t1)
        self.assertEqual(self.counts(q), (0, 1))
        self.ch.basic_cancel(t2)
        self.eventually(lambda: self.assertQueueMissing(q), what="auto-delete")

    def test_deleted_when_consumer_channel_closes(self):
        q = self.queue(auto_delete=True)
        cch = self.conn.channel()
        cch.basic_consume(q, lambda *a: None)
        self.assertEqual(self.counts(q), (0, 1))
        cch.close()
        self.eventually(lambda: self.assertQueueMissing(q), what="auto-delete")


class TestBind(QueueCase):
    def test_bind_unbind(self):
        x = self.exchange("direct")
        q = self.temp_queue()
        self.ch.queue_bind(q, x, "k1")
        self.ch.queue_bind(q, x, "k2")
        self.pub.basic_publish(x, "k1", b"a")
        self.pub.basic_publish(x, "k2", b"b")
        self.ch.queue_unbind(q, x, "k1")
        with self.assertRaises(pex.UnroutableError):
            self.pub.basic_publish(x, "k1", b"c", mandatory=True)
        self.pub.basic_publish(x, "k2", b"d")
        self.assertEqual(bodies(self.ch, q), ["a", "b", "d"])

    def test_bind_is_idempotent(self):
        q = self.temp_queue()
        self.ch.queue_bind(q, "amq.direct", q)
        self.ch.queue_bind(q, "amq.direct", q)
        self.pub.basic_publish("amq.direct", q, b"once")
        self.assertEqual(bodies(self.ch, q), ["once"])
        self.ch.queue_unbind(q, "amq.direct", q)
        with self.assertRaises(pex.UnroutableError):
            self.pub.basic_publish("amq.direct", q, b"x", mandatory=True)

    def test_bind_missing_queue(self):
        # RabbitMQ: 404 "no queue 'x' in vhost '/'"
        with self.channel_error(NOT_FOUND, text="no queue"):
            self.ch.queue_bind(self.unique("missing"), "amq.direct", "k")

    def test_bind_missing_exchange(self):
        q = self.temp_queue()
        with self.channel_error(NOT_FOUND, text="no exchange"):
            self.ch.queue_bind(q, self.unique("missing"), "k")

    def test_unbind_missing_is_ok(self):
        # RabbitMQ 3.10 answers unbind-ok when there is no such binding, and
        # even when the queue or the exchange does not exist.
        q = self.temp_queue()
        self.ch.queue_unbind(q, "amq.direct", "never-bound")
        self.ch.queue_unbind(self.unique("missing"), "amq.direct", "k")
        self.ch.queue_unbind(q, self.unique("missing"), "k")


class TestPurge(QueueCase):
    def test_purge_returns_count(self):
        q = self.temp_queue()
        self.assertEqual(self.ch.queue_purge(q).method.message_count, 0)
        self.publish(q, *"abcde")
        self.assertEqual(self.ch.queue_purge(q).method.message_count, 5)
        self.assertEqual(self.counts(q), (0, 0))
        self.assertEqual(self.ch.basic_get(q), (None, None, None))

    def test_purge_leaves_unacked(self):
        q = self.temp_queue()
        self.publish(q, "1", "2", "3")
        gch = self.conn.channel()
        m, _, b = gch.basic_get(q)
        self.assertEqual(b, b"1")
        self.assertEqual(self.ch.queue_purge(q).method.message_count, 2)
        gch.close()    # the unacked message comes back
        self.assertEqual(drain(self.ch, q), [("1", True)])

    def test_purge_missing(self):
        with self.channel_error(NOT_FOUND):
            self.ch.queue_purge(self.unique("missing"))


class TestDelete(QueueCase):
    def test_delete_returns_ready_count(self):
        q = self.queue()
        self.publish(q, *"12345")
        self.ch.basic_get(q)     # one unacked: not counted
        self.assertEqual(self.ch.queue_delete(q).method.message_count, 4)
        self.assertQueueMissing(q)

    def test_delete_missing_is_ok(self):
        # RabbitMQ 3.10: delete-ok with message_count 0, no 404
        ok = self.ch.queue_delete(self.unique("missing")).method
        self.assertEqual(ok.message_count, 0)

    def test_if_unused(self):
        q = self.queue()
        cch = self.conn.channel()
        tag = cch.basic_consume(q, lambda *a: None)
        # RabbitMQ: 406 "queue 'q' in vhost '/' in use"
        with self.channel_error(PRECONDITION_FAILED, text="in use"):
            self.ch.queue_delete(q, if_unused=True)
        cch.basic_cancel(tag)
        ch = self.conn.channel()
        self.publish(q, "m")
        self.assertEqual(ch.queue_delete(q, if_unused=True).method.message_count, 1)
        self.assertQueueMissing(q)

    def test_if_empty(self):
        q = self.queue()
        self.publish(q, "m")
        # RabbitMQ: 406 "queue 'q' in vhost '/' is not empty"
        with self.channel_error(PRECONDITION_FAILED, text="not empty"):
            self.ch.queue_delete(q, if_empty=True)
        ch = self.conn.channel()
        ch.queue_purge(q)
        ch.basic_consume(q, lambda *a: None)
        self.assertEqual(ch.queue_delete(q, if_empty=True).method.message_count, 0)
        self.assertQueueMissing(q)

    def test_delete_cancels_consumers(self):
        q = self.queue()
        cch = self.conn.channel()
        cancelled = []
        cch.add_on_cancel_callback(lambda frame: cancelled.append(frame.method))
        tag = cch.basic_consume(q, lambda *a: None)
        other_q = self.temp_queue(ch=cch)
        other_tag = cch.basic_consume(other_q, lambda *a: None)
        self.conn.channel().queue_delete(q)
        self.wait_until(lambda: cancelled, what="basic.cancel from the broker")
        self.quiet()
        self.assertEqual([m.consumer_tag for m in cancelled], [tag])
        self.assertEqual(cancelled[0].NAME, "Basic.Cancel")
        # the channel stays open and its other consumer keeps working
        self.assertTrue(cch.is_open)
        self.assertEqual(self.counts(other_q, cch), (0, 1))
        self.assertIn(other_tag, cch.consumer_tags)
        self.assertNotIn(tag, cch.consumer_tags)

    def test_delete_removes_bindings(self):
        x = self.exchange("fanout")
        q = self.queue()
        self.ch.queue_bind(q, x)
        self.ch.queue_delete(q)
        self.ch.queue_declare(q)
        with self.assertRaises(pex.UnroutableError):
            self.pub.basic_publish(x, "", b"x", mandatory=True)


class TestCommandLineClient(QueueCase):
    """rabbitmq-c's amqp-declare-queue / amqp-delete-queue against pika."""

    def test_declare_and_delete_with_amqp_tools(self):
        name = self.unique("cli")
        self.forget("queue", name)
        out = self.tool("amqp-declare-queue", "-q", name).stdout.decode().strip()
        self.assertEqual(out, name)
        self.publish(name, "1", "2", "3")
        self.assertEqual(self.counts(name), (3, 0))
        # amqp-delete-queue prints delete-ok's message count
        out = self.tool("amqp-delete-queue", "-q", name).stdout.decode().strip()
        self.assertEqual(out, "3")
        self.assertQueueMissing(name)

    def test_server_named_with_amqp_tools(self):
        out = self.tool("amqp-declare-queue", "-q", "").stdout.decode().strip()
        self.forget("queue", out)
        self.assertTrue(out.startswith("amq.gen-"), out)
        self.assertEqual(self.counts(out), (0, 0))

    def test_durable_mismatch_with_amqp_tools(self):
        q = self.queue()
        p = self.tool("amqp-declare-queue", "-q", q, "-d", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"406", p.stderr)


class TestRestart(QueueCase):
    """Needs a broker this test may restart: warrend only."""

    def test_durable_queue_keeps_persistent_messages(self):
        if self.external:
            self.skipTest("restarts the broker; only on a warrend started by the harness")
        durable = self.queue(durable=True)
        transient = self.queue()
        for body, mode in ((b"p1", 2), (b"t1", 1), (b"p2", 2)):
            self.pub.basic_publish("", durable, body, pika.BasicProperties(delivery_mode=mode))
        self.pub.basic_publish("", transient, b"x", pika.BasicProperties(delivery_mode=2))
        self.conn.close()
        harness.restart(self.broker)
        c = self.new_connection()
        ch = c.channel()
        # persistent messages in a durable queue survive, transient ones do not
        self.assertEqual(self.counts(durable, ch), (2, 0))
        self.assertEqual(bodies(ch, durable), ["p1", "p2"])
        self.assertQueueMissing(transient, c)


class TestLastDeclaredQueue(QueueCase):
    """The empty queue name means the channel's last declared queue in
    basic.consume, basic.get, queue.bind (with an empty routing key, that
    too), queue.unbind, queue.purge and queue.delete (AMQP 0-9-1; RabbitMQ
    does it). 84fe4a0 answered 404 for the first four and delete-ok 0 for
    queue.delete(""), deleting nothing."""

    def test_without_a_declared_queue_is_404(self):
        ops = [lambda ch: ch.basic_get(""),
               lambda ch: ch.basic_consume("", lambda *a: None),
               lambda ch: ch.queue_bind("", "amq.direct", "k"),
               lambda ch: ch.queue_purge(""),
               lambda ch: ch.queue_delete("")]
        for op in ops:
            ch = self.conn.channel()
            with self.channel_error(NOT_FOUND, ch=ch, text="no previously declared queue"):
                op(ch)

    def test_get_purge_consume_use_the_last_queue(self):
        q = self.temp_queue()
        self.pub.basic_publish("", q, b"one")
        self.pub.basic_publish("", q, b"two")
        self.assertEqual(self.ch.basic_get("", auto_ack=True)[2], b"one")
        self.assertEqual(self.ch.queue_purge("").method.message_count, 1)
        self.pub.basic_publish("", q, b"three")
        got = []
        tag = self.ch.basic_consume("", lambda ch, m, p, b: got.append(b), auto_ack=True)
        for _ in range(100):
            if got:
                break
            self.conn.process_data_events(time_limit=0.1)
        self.ch.basic_cancel(tag)
        self.assertEqual(got, [b"three"])

    def test_bind_with_empty_name_and_key_binds_by_queue_name(self):
        q = self.temp_queue()
        self.ch.queue_bind("", "amq.direct")  # pika sends routing_key "" too
        self.pub.basic_publish("amq.direct", q, b"by-name")
        self.assertEqual(bodies(self.ch, q), ["by-name"])
        self.ch.queue_unbind("", "amq.direct", "")
        with self.assertRaises(pex.UnroutableError):
            self.pub.basic_publish("amq.direct", q, b"x", mandatory=True)
        # An empty name with a routing key binds the last queue under that key.
        self.ch.queue_bind("", "amq.direct", "other-key")
        self.pub.basic_publish("amq.direct", "other-key", b"by-key")
        self.assertEqual(bodies(self.ch, q), ["by-key"])

    def test_delete_deletes_the_last_queue(self):
        q = self.queue()
        self.pub.basic_publish("", q, b"m")
        self.assertEqual(self.ch.queue_delete("").method.message_count, 1)
        self.assertQueueMissing(q)

    def test_the_last_queue_is_per_channel(self):
        q = self.temp_queue()
        other = self.conn.channel()
        with self.channel_error(NOT_FOUND, ch=other):
            other.queue_purge("")
        self.assertEqual(self.ch.queue_purge("").method.message_count, 0)
        # A passive declare counts as a declare.
        ch3 = self.conn.channel()
        ch3.queue_declare(q, passive=True)
        self.assertEqual(ch3.queue_purge("").method.message_count, 0)


if __name__ == "__main__":
    harness.main()
