"""test_ttl - message TTL and queue expiry (issue 4), checked against RabbitMQ 3.10.

Covers:
  * x-message-ttl on the queue, the per-message `expiration` property (a
    string of milliseconds, delivered unchanged), the lower of the two wins;
  * TTL 0: delivered to a consumer that can take it right now, otherwise
    dropped (dead-lettered as `expired` when the queue has a DLX), also when
    the only consumer is at its prefetch limit;
  * expired messages are never delivered (push or get), the queue's
    message_count drops without anyone consuming, a message requeued after
    its TTL passed is not redelivered;
  * an invalid expiration ("abc", "-1", "", "1.5", " 10", "10 ", "0x10",
    "1e3", a value beyond 64 bits) closes the channel with 406
    PRECONDITION_FAILED ("invalid expiration '...'": RabbitMQ adds the
    reason, e.g. "no_integer", "{value_negative,-1}") and the message is not
    enqueued; what RabbitMQ's integer parser takes is accepted and delivered
    unchanged: leading zeros ("0060000") and a plus sign ("+60000");
  * x-expires: an unused queue is deleted (with its messages); a consumer
    keeps it, and the timer starts again when the consumer goes; a redeclare,
    a passive declare and a basic.get renew the lease, a publish does not;
  * warrend only: expired messages behind a longer-lived head are removed
    (and dead-lettered) without waiting to reach the head;
  * warrend only: persistent messages keep their expiration across a crash
    and restart, in every form publish accepts ("+1000", "01000").

RabbitMQ 3.10 differs on that last point (issue 4 asks Warren not to copy it): a classic
queue only drops an expired message when it reaches the head, so a message
with expiration "100" behind one with "60000" stays counted in message_count
(measured: 2 for as long as the head stays) until the head is consumed; it is
never delivered though (checked here on both brokers).
"""
import signal
import time

import pika

import harness
from amqpcase import PRECONDITION_FAILED, SemanticsCase


class TestMessageTTL(SemanticsCase):
    def test_queue_ttl_expires_messages(self):
        q = self.temp_queue(arguments={"x-message-ttl": 400})
        self.send_all(q, ["a", "b", "c"])
        self.assertEqual(self.ready(q), 3)          # not before their time
        self.wait_ready(q, 0)                        # nobody consumed
        self.assertEqual(self.get_all(q), [])

    def test_per_message_expiration(self):
        q = self.temp_queue()
        self.send(q, "short", expiration="200")
        self.send(q, "forever")
        self.send(q, "long", expiration="60000")
        self.assertEqual(self.ready(q), 3)
        self.wait_ready(q, 2)
        got = self.get_all(q)
        self.assertEqual([m.body for m in got], ["forever", "long"])
        # the property is delivered as it was published
        self.assertEqual([m.props.expiration for m in got], [None, "60000"])

    def test_lower_of_queue_and_message_ttl_wins(self):
        q1 = self.temp_queue(arguments={"x-message-ttl": 60000})
        self.send(q1, "message ttl is lower", expiration="200")
        q2 = self.temp_queue(arguments={"x-message-ttl": 200})
        self.send(q2, "queue ttl is lower", expiration="60000")
        self.wait_ready(q1, 0)
        self.wait_ready(q2, 0)
        # and a message TTL above the queue's does not extend it
        q3 = self.temp_queue(arguments={"x-message-ttl": 60000})
        self.send(q3, "kept", expiration="120000")
        self.assertEqual([(m.body, m.props.expiration) for m in self.get_all(q3)],
                         [("kept", "120000")])

    def test_ttl_zero_delivers_to_waiting_consumer(self):
        q = self.temp_queue()
        inbox, _, _ = self.listen(q, auto_ack=True)
        self.send(q, "now", expiration="0")
        self.expect(inbox, 1)
        self.assertEqual((inbox[0].body, inbox[0].props.expiration), ("now", "0"))
        q2 = self.temp_queue(arguments={"x-message-ttl": 0})
        inbox2, _, _ = self.listen(q2, auto_ack=True)
        self.send(q2, "now too")
        self.assertEqual([m.body for m in self.expect(inbox2, 1)], ["now too"])

    def test_ttl_zero_without_consumer_is_dropped(self):
        q = self.temp_queue()
        self.send(q, "gone", expiration="0")
        self.assertEqual(self.ready(q), 0)
        q2 = self.temp_queue(arguments={"x-message-ttl": 0})
        self.send(q2, "gone too")
        self.assertEqual(self.ready(q2), 0)
        self.assertEqual(self.get_all(q) + self.get_all(q2), [])

    def test_ttl_zero_when_consumer_is_full(self):
        dlx, dlq = self.dead_letter_queue()
        q = self.temp_queue(arguments=dlx)
        inbox, _, _ = self.listen(q, prefetch=1)
        self.send(q, "first", expiration="0")
        self.send(q, "second", expiration="0")     # the consumer has no room
        self.assertEqual([m.body for m in self.expect(inbox, 1)], ["first"])
        self.assertEqual(self.ready(q), 0)
        dead = self.get_all(dlq)
        self.assertEqual([m.body for m in dead], ["second"])
        self.assertEqual(self.deaths(dead[0].props), [(q, "expired", 1)])

    def test_expired_never_delivered_to_consumer(self):
        q = self.temp_queue()
        self.send_all(q, ["x1", "x2", "x3"], expiration="200")
        self.send(q, "live")
        self.wait_ready(q, 1)
        inbox, _, _ = self.listen(q, auto_ack=True)
        self.assertEqual([m.body for m in self.expect(inbox, 1)], ["live"])

    def test_expired_behind_head_never_delivered(self):
        # On RabbitMQ the expired message stays counted until it reaches the
        # head; it must still never be handed out.
        q = self.temp_queue()
        self.send(q, "head", expiration="60000")
        self.send(q, "behind", expiration="100")
        self.send(q, "tail")
        time.sleep(0.4)             # "behind" expires; no event to wait for on RabbitMQ
        got = self.get_all(q)
        self.assertEqual([m.body for m in got], ["head", "tail"])
        self.assertEqual(self.ready(q), 0)

    def test_requeued_after_expiry_is_not_redelivered(self):
        dlx, dlq = self.dead_letter_queue()
        q = self.temp_queue(arguments=dict(dlx, **{"x-message-ttl": 200}))
        self.send(q, "late")
        ch = self.conn.channel()
        m, _, _ = ch.basic_get(q)
        time.sleep(0.5)             # the TTL passes while the message is unacked
        ch.basic_nack(m.delivery_tag, requeue=True)
        self.pump(lambda: self.ready(dlq) == 1, what="the expired message dead-lettered")
        self.assertEqual(self.ready(q), 0)
        self.assertEqual(self.get_all(q), [])
        dead = self.get_all(dlq)
        self.assertEqual(self.deaths(dead[0].props), [(q, "expired", 1)])

    def test_invalid_expiration_is_406(self):
        # RabbitMQ: 406 "PRECONDITION_FAILED - invalid expiration 'abc': no_integer",
        # "... '-1': {value_negative,-1}", "... '1.5': {leftover_string,\".5\"}"
        q = self.temp_queue()
        for exp in ("abc", "-1", "", "1.5", " 10", "10 ", "0x10", "1e3", "99999999999999999999"):
            ch = self.conn.channel()
            with self.subTest(expiration=exp):
                with self.channel_error(PRECONDITION_FAILED, ch, text="invalid expiration"):
                    ch.basic_publish("", q, b"bad", pika.BasicProperties(expiration=exp))
        self.assertEqual(self.ready(q), 0)
        # what RabbitMQ's integer parser accepts: leading zeros, a plus sign
        self.send(q, "zeros", expiration="0060000")
        self.send(q, "plus", expiration="+60000")
        self.assertEqual([(m.body, m.props.expiration) for m in self.get_all(q)],
                         [("zeros", "0060000"), ("plus", "+60000")])

    def test_expiry_does_not_wait_for_the_head(self):
        self.warren_only("RabbitMQ 3.10 classic queues drop expired messages only at "
                         "the head (message_count stays 2 here)")
        dlx, dlq = self.dead_letter_queue()
        q = self.temp_queue(arguments=dlx)
        self.send(q, "head", expiration="60000")
        self.send_all(q, ["b1", "b2"], expiration="150")
        self.send(q, "b3", expiration="250")
        self.send(q, "tail")
        self.wait_ready(q, 2)
        self.wait_ready(dlq, 3)
        dead = self.get_all(dlq)
        self.assertEqual(sorted(m.body for m in dead), ["b1", "b2", "b3"])
        for m in dead:
            self.assertEqual(self.deaths(m.props), [(q, "expired", 1)])
        self.assertEqual([m.body for m in self.get_all(q)], ["head", "tail"])

    def test_expiry_behind_head_without_dlx(self):
        self.warren_only("RabbitMQ 3.10 classic queues drop expired messages only at the head")
        q = self.temp_queue()
        self.send(q, "head")
        self.send_all(q, range(50), expiration="200")
        self.wait_ready(q, 1)
        self.assertEqual([m.body for m in self.get_all(q)], ["head"])


class TestQueueExpires(SemanticsCase):
    """x-expires. Existence is probed with a mandatory publish (see
    SemanticsCase.exists), which does not count as a use of the queue."""

    def wait_gone(self, q, timeout=5.0):
        deadline = time.monotonic() + timeout
        while self.exists(q):
            if time.monotonic() >= deadline:
                self.fail("queue %s still exists after %.1fs" % (q, timeout))
            self.conn.process_data_events(time_limit=0.02)

    def at(self, t0, offset):
        """Sleep until t0 + offset seconds (the timer under test is the event)."""
        left = t0 + offset - time.monotonic()
        if left > 0:
            time.sleep(left)

    def test_unused_queue_is_deleted(self):
        q = self.queue(arguments={"x-expires": 500})
        t0 = time.monotonic()
        self.send(q, "a message does not keep it")
        self.assertTrue(self.exists(q))
        self.wait_gone(q)
        self.assertGreaterEqual(time.monotonic() - t0, 0.4)
        self.assertQueueMissing(q)

    def test_consumer_keeps_queue(self):
        q = self.queue(arguments={"x-expires": 300})
        ch = self.conn.channel()
        tag = ch.basic_consume(q, lambda *a: None, auto_ack=True)
        t0 = time.monotonic()
        self.at(t0, 1.0)
        self.assertTrue(self.exists(q), "a queue with a consumer expired")
        ch.basic_cancel(tag)
        t1 = time.monotonic()
        self.wait_gone(q)
        self.assertGreaterEqual(time.monotonic() - t1, 0.2)

    def test_redeclare_get_and_passive_declare_renew(self):
        args = {"x-expires": 1500}
        names = {k: self.queue(arguments=args)
                 for k in ("redeclare", "passive", "get", "publish", "untouched")}
        t0 = time.monotonic()
        self.at(t0, 0.75)
        self.ch.queue_declare(names["redeclare"], arguments=args)
        self.ch.queue_declare(names["passive"], passive=True)
        self.ch.basic_get(names["get"], auto_ack=True)
        self.send(names["publish"], "publishing is not a use")
        # original deadline t0+1.5; renewed ones t0+2.25
        self.at(t0, 1.875)
        for k in ("redeclare", "passive", "get"):
            self.assertTrue(self.exists(names[k]), "%s did not renew x-expires" % k)
        for k in ("publish", "untouched"):
            self.assertFalse(self.exists(names[k]), "%s queue not deleted in time" % k)
        for k in ("redeclare", "passive", "get"):
            self.wait_gone(names[k])


class TestTTLRestart(SemanticsCase):
    """Needs a broker this test may restart: warrend only."""

    def test_expiration_survives_restart(self):
        if self.external:
            self.skipTest("restarts the broker; only on a warrend started by the harness")
        q = self.queue(durable=True)
        # recovery reads the expiration back from the journal with the same
        # parser publish uses: the '+' and leading-zero forms must expire too
        self.send(q, "plus", expiration="+1000", delivery_mode=2)
        self.send(q, "zeros", expiration="01000", delivery_mode=2)
        self.send(q, "forever", delivery_mode=2)
        self.send(q, "long", expiration="600000", delivery_mode=2)
        self.conn.close()
        harness.restart(self.broker, signal.SIGKILL)
        self.conn = self.new_connection()
        self.ch = self.conn.channel()
        self.wait_ready(q, 2, ch=self.ch)
        got = self.get_all(q, ch=self.ch)
        self.assertEqual([(m.body, m.props.expiration) for m in got],
                         [("forever", None), ("long", "600000")])


if __name__ == "__main__":
    harness.main()
