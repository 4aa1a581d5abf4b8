"""test_quorum - quorum-queue declarations and semantics (issue 15).

Applications declare `x-queue-type: quorum` (Celery's quorum_queues,
Spring's QueueBuilder.quorum(), kombu's queue_arguments); on one node Warren
gives them RabbitMQ 3.10's single-node quorum queue. Every test here except
the restart/kill ones passes against RabbitMQ 3.10 (WARREN_TEST_PORT=5690);
the texts asserted are the ones 3.10 sends.

Measured on RabbitMQ 3.10.8 and kept by Warren:
  * refusals of a new quorum queue, in this order: its arguments (a
    classic-only x-max-priority, x-queue-mode or x-queue-master-locator is
    "invalid arg 'A' for queue 'Q' in vhost '/' of queue type
    rabbit_quorum_queue", and the quorum-only arguments on a classic queue
    name rabbit_classic_queue), then "Cannot declare a server-named queue
    for type rabbit_quorum_queue", then "invalid property 'exclusive-owner'",
    'non-durable', 'auto-delete' (all channel 406);
  * no x-queue-type and x-queue-type classic are the same type; classic vs
    quorum is 406 "inequivalent arg 'x-queue-type' ... received the value
    'quorum' of type 'longstr' but current is none";
  * basic.get shows x-delivery-count 0 on a first delivery; a redelivery
    carries the count of earlier deliveries; message priorities are
    ignored (FIFO);
  * basic.nack / basic.reject with requeue put the message at the tail;
    a channel closing with unacked messages puts them back at the head in
    delivery order;
  * x-queue-version is a classic queue's: refused on a quorum queue; on a
    classic one 1 and 2 are accepted, anything else is "unsupported queue
    version 'N'";
  * consuming with a global prefetch (basic.qos global=true) is a
    connection error 540 "queue 'Q' in vhost '/' does not support global
    qos".
Differences (Warren stricter): a negative or non-integer x-delivery-limit
is 406 on Warren (3.10 accepts both); x-queue-type stream is 406 until
Warren has streams.

Warren's x-delivery-limit default on a quorum queue is RabbitMQ 3.13's:
unlimited (RabbitMQ 4.0 made it 20).
"""
import json
import os
import signal
import time
import unittest
import urllib.request
import base64

import pika
import pika.exceptions as pex

import harness
from amqpcase import SemanticsCase
from durability import read_definitions, warrend_only

PRECONDITION_FAILED = 406
Q = {"x-queue-type": "quorum"}


def qargs(**kw):
    a = dict(Q)
    for k, v in kw.items():
        a["x-" + k.replace("_", "-")] = v
    return a


class QuorumCase(SemanticsCase):
    def quorum(self, name=None, **kw):
        return self.queue(name or self.unique("qq"), durable=True, arguments=qargs(**kw))

    def refused(self, text, name=None, durable=True, exclusive=False, auto_delete=False,
                arguments=Q):
        ch = self.conn.channel()
        with self.channel_error(PRECONDITION_FAILED, ch) as cm:
            ch.queue_declare(self.unique("qq") if name is None else name, durable=durable,
                             exclusive=exclusive, auto_delete=auto_delete, arguments=arguments)
        self.assertEqual(cm.exception.reply_text, "PRECONDITION_FAILED - " + text)


class TestDeclare(QuorumCase):
    def test_declare_ok(self):
        q = self.quorum()
        ok = self.ch.queue_declare(q, durable=True, arguments=Q).method
        self.assertEqual((ok.queue, ok.message_count, ok.consumer_count), (q, 0, 0))
        # a passive declare does not compare arguments
        self.assertEqual(self.ch.queue_declare(q, passive=True).method.queue, q)

    def test_properties_refused(self):
        name = self.unique("qq")
        self.refused("invalid property 'non-durable' for queue '%s' in vhost '/'" % name,
                     name, durable=False)
        self.refused("invalid property 'exclusive-owner' for queue '%s' in vhost '/'" % name,
                     name, exclusive=True)
        self.refused("invalid property 'exclusive-owner' for queue '%s' in vhost '/'" % name,
                     name, exclusive=True, durable=False)
        self.refused("invalid property 'auto-delete' for queue '%s' in vhost '/'" % name,
                     name, auto_delete=True)
        for durable in (True, False):
            self.refused("Cannot declare a server-named queue for type rabbit_quorum_queue", "",
                         durable=durable)
        self.assertQueueMissing(name)

    def test_arguments_of_the_other_type(self):
        name = self.unique("qq")
        for arg, val in (("x-max-priority", 5), ("x-queue-mode", "lazy"),
                         ("x-queue-master-locator", "min-masters")):
            self.refused("invalid arg '%s' for queue '%s' in vhost '/' of queue type "
                         "rabbit_quorum_queue" % (arg, name), name,
                         arguments=dict(Q, **{arg: val}))
        # the argument is refused before the properties are looked at
        self.refused("invalid arg 'x-max-priority' for queue '%s' in vhost '/' of queue type "
                     "rabbit_quorum_queue" % name, name, durable=False,
                     arguments=dict(Q, **{"x-max-priority": 1}))
        for arg, val in (("x-quorum-initial-group-size", 3),
                         ("x-dead-letter-strategy", "at-least-once"),
                         ("x-queue-leader-locator", "balanced"),
                         ("x-max-in-memory-length", 10), ("x-max-in-memory-bytes", 10)):
            self.refused("invalid arg '%s' for queue '%s' in vhost '/' of queue type "
                         "rabbit_classic_queue" % (arg, name), name, arguments={arg: val})
        self.assertQueueMissing(name)

    def test_queue_version(self):
        """x-queue-version is a classic queue's (RabbitMQ 3.10: 1 or 2)."""
        name = self.unique("qq")
        self.refused("invalid arg 'x-queue-version' for queue '%s' in vhost '/' of queue type "
                     "rabbit_quorum_queue" % name, name, arguments=dict(Q, **{"x-queue-version": 2}))
        for v in (1, 2):
            q = self.queue(self.unique("cv"), durable=True, arguments={"x-queue-version": v})
            self.assertEqual(self.ch.queue_declare(q, passive=True).method.queue, q)
        for v, why in ((3, "\"unsupported queue version '3'\""),
                       (0, "\"unsupported queue version '0'\""),
                       ("x", "\"expected integer, got longstr\"")):
            self.refused("invalid arg 'x-queue-version' for queue '%s' in vhost '/': %s"
                         % (name, why), name, arguments={"x-queue-version": v})
        self.assertQueueMissing(name)

    def test_bad_values(self):
        name = self.unique("qq")
        cases = [
            ({"x-queue-type": "foo"}, "x-queue-type", "\"unsupported queue type 'foo'\""),
            ({"x-queue-type": 1}, "x-queue-type", "{unacceptable_type,signedint}"),
            (qargs(quorum_initial_group_size=0), "x-quorum-initial-group-size", "{value_zero,0}"),
            (qargs(quorum_initial_group_size=-1), "x-quorum-initial-group-size",
             "{value_negative,-1}"),
            (qargs(quorum_initial_group_size="x"), "x-quorum-initial-group-size",
             "\"expected integer, got longstr\""),
            (qargs(dead_letter_strategy="foo"), "x-dead-letter-strategy", "invalid_dlx_strategy"),
            (qargs(dead_letter_strategy=1), "x-dead-letter-strategy",
             "{unacceptable_type,signedint}"),
            (qargs(queue_leader_locator="foo"), "x-queue-leader-locator",
             "invalid_queue_locator_arg"),
            (qargs(overflow="foo"), "x-overflow", "invalid_overflow"),
            (qargs(max_length=-1), "x-max-length", "{value_negative,-1}"),
            (qargs(message_ttl="x"), "x-message-ttl", "\"expected integer, got longstr\""),
            (qargs(single_active_consumer="x"), "x-single-active-consumer",
             "{unacceptable_type,longstr}"),
            (qargs(max_in_memory_length=-1), "x-max-in-memory-length", "{value_negative,-1}"),
        ]
        for args, arg, why in cases:
            self.refused("invalid arg '%s' for queue '%s' in vhost '/': %s" % (arg, name, why),
                         name, arguments=args)

    def test_accepted_arguments(self):
        for kw in ({"overflow": "reject-publish-dlx"}, {"overflow": "drop-head"},
                   {"overflow": "reject-publish"}, {"quorum_initial_group_size": 3},
                   {"queue_leader_locator": "client-local"},
                   {"dead_letter_strategy": "at-least-once"}, {"dead_letter_strategy": "at-most-once"},
                   {"max_in_memory_length": 10}, {"max_in_memory_bytes": 1000},
                   {"message_ttl": 1000}, {"expires": 100000}, {"single_active_consumer": True},
                   {"delivery_limit": 3}, {"max_length": 10}):
            self.quorum(**kw)

    def test_classic_is_no_type(self):
        a = self.queue(self.unique("cl"), durable=True)
        self.ch.queue_declare(a, durable=True, arguments={"x-queue-type": "classic"})
        b = self.queue(self.unique("cl"), durable=True, arguments={"x-queue-type": "classic"})
        self.ch.queue_declare(b, durable=True)

    def test_type_equivalence(self):
        c = self.queue(self.unique("cl"), durable=True)
        q = self.quorum()
        cases = [
            (c, Q, "received the value 'quorum' of type 'longstr' but current is none"),
            (q, {"x-queue-type": "classic"}, "received 'classic' but current is 'quorum'"),
            (q, None, "received none but current is the value 'quorum' of type 'longstr'"),
        ]
        for name, args, tail in cases:
            ch = self.conn.channel()
            with self.channel_error(PRECONDITION_FAILED, ch) as cm:
                ch.queue_declare(name, durable=True, arguments=args)
            self.assertEqual(cm.exception.reply_text,
                             "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue "
                             "'%s' in vhost '/': %s" % (name, tail))

    def test_argument_equivalence(self):
        q = self.quorum(delivery_limit=3, quorum_initial_group_size=3)
        for args, arg, tail in (
                (qargs(delivery_limit=4, quorum_initial_group_size=3), "x-delivery-limit",
                 "received '4' but current is '3'"),
                (qargs(delivery_limit=3, quorum_initial_group_size=5),
                 "x-quorum-initial-group-size", "received '5' but current is '3'"),
                (qargs(delivery_limit=3, quorum_initial_group_size=3,
                       dead_letter_strategy="at-least-once"), "x-dead-letter-strategy",
                 "received the value 'at-least-once' of type 'longstr' but current is none")):
            ch = self.conn.channel()
            with self.channel_error(PRECONDITION_FAILED, ch) as cm:
                ch.queue_declare(q, durable=True, arguments=args)
            self.assertEqual(cm.exception.reply_text,
                             "PRECONDITION_FAILED - inequivalent arg '%s' for queue '%s' in "
                             "vhost '/': %s" % (arg, q, tail))
        # durable is compared before the quorum properties of a new queue
        ch = self.conn.channel()
        with self.channel_error(PRECONDITION_FAILED, ch,
                                text="inequivalent arg 'durable' for queue '%s'" % q):
            ch.queue_declare(q, durable=False, arguments=qargs(delivery_limit=3,
                                                               quorum_initial_group_size=3))


class TestSemantics(QuorumCase):
    def count(self, p):
        return (p.headers or {}).get("x-delivery-count")

    def test_get_counts_and_fifo(self):
        q = self.quorum()
        self.send(q, "p1", priority=1)
        self.send(q, "p9", priority=9)
        ch = self.conn.channel()
        m, p, b = ch.basic_get(q)
        # priorities are ignored; basic.get shows the count from 0
        self.assertEqual((b, self.count(p), m.redelivered), (b"p1", 0, False))
        ch.basic_ack(m.delivery_tag)

    def test_nack_requeues_to_the_tail(self):
        q = self.quorum()
        self.send_all(q, ["a", "b", "c"])
        seen = []

        def on_message(msg):
            seen.append((msg.body, msg.redelivered, (msg.props.headers or {}).get(
                "x-delivery-count")))
            if len(seen) == 1:
                msg.ch.basic_nack(msg.dtag, requeue=True)
            elif len(seen) == 2:
                msg.ch.basic_reject(msg.dtag, requeue=True)
            else:
                msg.ch.basic_ack(msg.dtag)
        inbox, _, _ = self.listen(q, prefetch=1, on_message=on_message)
        self.expect(inbox, 5)
        self.assertEqual(seen, [("a", False, None), ("b", False, None), ("c", False, None),
                                ("a", True, 1), ("b", True, 1)])

    def test_channel_close_requeues_to_the_head(self):
        q = self.quorum()
        self.send_all(q, ["a", "b", "c"])
        ch = self.conn.channel()
        got = []
        for _ in range(3):
            m, p, b = ch.basic_get(q)
            got.append(b)
        self.send_all(q, ["x", "y"])
        ch.close()
        self.wait_ready(q, 5)
        out = [(m.body, (m.props.headers or {}).get("x-delivery-count"), m.redelivered)
               for m in self.get_all(q)]
        self.assertEqual(out, [("a", 1, True), ("b", 1, True), ("c", 1, True),
                               ("x", 0, False), ("y", 0, False)])

    def test_delivery_limit_dead_letters(self):
        dlx, dlq = self.dead_letter_queue()
        q = self.quorum(delivery_limit=2, **{k[2:].replace("-", "_"): v for k, v in dlx.items()})
        self.send(q, "job", headers={"job-id": "j1"})
        inbox, _, _ = self.listen(q, on_message=lambda m: m.ch.basic_reject(m.dtag, requeue=True))
        self.expect(inbox, 3)
        self.assertEqual([(m.redelivered, (m.props.headers or {}).get("x-delivery-count"))
                          for m in inbox], [(False, None), (True, 1), (True, 2)])
        self.wait_ready(dlq, 1)
        dead = self.get_all(dlq)[0]
        self.assertEqual(self.deaths(dead.props), [(q, "delivery_limit", 1)])
        self.assertEqual(dead.props.headers["x-death"][0]["reason"], "delivery_limit")

    def test_delivery_limit_without_dlx_drops(self):
        q = self.quorum(delivery_limit=0)
        self.send(q, "job")
        inbox, _, _ = self.listen(q, on_message=lambda m: m.ch.basic_nack(m.dtag, requeue=True))
        self.expect(inbox, 1)
        self.wait_ready(q, 0)

    def test_global_qos_refused(self):
        q = self.quorum()
        ch = self.conn.channel()
        ch.basic_qos(prefetch_count=10, global_qos=True)
        with self.connection_error(540, ch) as cm:
            ch.basic_consume(q, lambda *a: None)
        self.assertEqual(cm.exception.reply_text,
                         "NOT_IMPLEMENTED - queue '%s' in vhost '/' does not support global qos"
                         % q)

    def test_per_consumer_qos_and_no_ack(self):
        q = self.quorum()
        self.send_all(q, ["1", "2"])
        inbox, _, _ = self.listen(q, prefetch=1, auto_ack=True)
        self.expect(inbox, 2)

    def test_overflow(self):
        q = self.quorum(max_length=2)  # drop-head
        self.send_all(q, ["1", "2", "3"])
        self.assertEqual([m.body for m in self.get_all(q)], ["2", "3"])
        # a quorum queue refuses once it is over its limit: one more fits
        r = self.quorum(max_length=2, overflow="reject-publish")
        self.assertEqual([self.try_send(r, b) for b in "1234"], ["ack", "ack", "ack", "nack"])
        self.assertEqual([m.body for m in self.get_all(r)], ["1", "2", "3"])
        self.assertEqual(self.try_send(r, "5"), "ack")

    def test_at_least_once_dead_lettering(self):
        dlq = self.quorum()
        q = self.quorum(dead_letter_exchange="", dead_letter_routing_key=dlq,
                        dead_letter_strategy="at-least-once", overflow="reject-publish")
        self.send_all(q, ["1", "2", "3"], delivery_mode=1)
        inbox, _, _ = self.listen(q, on_message=lambda m: m.ch.basic_reject(m.dtag,
                                                                            requeue=False))
        self.expect(inbox, 3)
        self.wait_ready(dlq, 3)
        self.assertEqual([m.body for m in self.get_all(dlq)], ["1", "2", "3"])


class TestWarrenOnly(QuorumCase):
    """What needs warrend (its API fields, its retry timing)."""

    def setUp(self):
        super().setUp()
        if self.is_rabbitmq:
            self.skipTest("warrend only")

    def test_at_least_once_keeps_what_goes_nowhere(self):
        x = self.unique("dlx")
        dlq = self.quorum()
        q = self.quorum(dead_letter_exchange=x, dead_letter_strategy="at-least-once",
                        overflow="reject-publish", max_length=2)
        self.send_all(q, ["1", "2", "3"])
        inbox, ch, tag = self.listen(q, on_message=lambda m: m.ch.basic_reject(m.dtag,
                                                                                requeue=False))
        self.expect(inbox, 3)
        ch.basic_cancel(tag)
        # the exchange does not exist: the dead letters wait in the source,
        # which counts them against its length limit (3 > 2: refused)
        self.assertEqual(self.try_send(q, "4"), "nack")
        self.exchange("fanout", name=x, durable=True)
        self.ch.queue_bind(dlq, x)
        self.wait_ready(dlq, 3, timeout=10)
        self.assertEqual(sorted(m.body for m in self.get_all(dlq)), ["1", "2", "3"])
        self.assertEqual(self.try_send(q, "5"), "ack")


class TestRestart(QuorumCase):
    """Kill -9 and restart: warrend only."""

    def setUp(self):
        why = warrend_only()
        if why:
            self.skipTest(why)
        super().setUp()

    def reconnect(self):
        self.conn = self.new_connection()
        self.ch = self.conn.channel()
        self.pub = self.confirm_channel()

    def test_transient_messages_survive_kill(self):
        q = self.quorum()
        c = self.queue(self.unique("cl"), durable=True)
        self.send(q, "transient", delivery_mode=1)
        self.send(q, "persistent", delivery_mode=2)
        self.send(q, "no-props")
        self.send(c, "transient", delivery_mode=1)
        harness.restart(self.broker, signal.SIGKILL)
        self.reconnect()
        got = self.get_all(q)
        self.assertEqual([m.body for m in got], ["transient", "persistent", "no-props"])
        self.assertEqual([m.props.delivery_mode for m in got], [1, 2, None])
        self.assertEqual(self.get_all(c), [])
        # the export says what it is, as RabbitMQ's does
        types = {e["name"]: e["type"] for e in read_definitions(self.broker.data_dir)["queues"]}
        self.assertEqual((types[q], types[c]), ("quorum", "classic"))

    def test_delivery_count_survives_kill(self):
        q = self.quorum(delivery_limit=5)
        self.send(q, "job")
        ch = self.conn.channel()
        m, _, _ = ch.basic_get(q)
        ch.basic_nack(m.delivery_tag, requeue=True)
        self.wait_ready(q, 1)
        harness.restart(self.broker, signal.SIGKILL)
        self.reconnect()
        ch = self.conn.channel()
        m, p, _ = ch.basic_get(q)
        self.assertTrue(m.redelivered)
        self.assertEqual(p.headers["x-delivery-count"], 1)

    def test_at_least_once_across_kill(self):
        """Messages rejected into an at-least-once dead-letter target, the
        broker killed at once: each one is in the source or the target (or
        both), none lost."""
        n = 300
        dlq = self.quorum()
        q = self.quorum(dead_letter_exchange="", dead_letter_routing_key=dlq,
                        dead_letter_strategy="at-least-once", overflow="reject-publish")
        self.send_all(q, range(n))
        seen = []

        def on_message(msg):
            seen.append(msg.body)
            msg.ch.basic_reject(msg.dtag, requeue=False)
        inbox, _, _ = self.listen(q, prefetch=50, on_message=on_message)
        self.pump(lambda: len(seen) >= n // 2, timeout=20, what="half the messages rejected")
        harness.restart(self.broker, signal.SIGKILL)
        self.reconnect()
        left = {m.body for m in self.get_all(q)}
        dead = {m.body for m in self.get_all(dlq)}
        self.assertEqual(left | dead, {str(i) for i in range(n)})
        print("at-least-once across kill: %d rejected before the kill, %d in the target, "
              "%d in the source, %d in both" % (len(seen), len(dead), len(left),
                                                len(left & dead)))


if __name__ == "__main__":
    harness.main()
