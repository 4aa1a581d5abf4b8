"""test_priority - priority queues (issue 4), checked against RabbitMQ 3.10.

Covers:
  * x-max-priority: higher priority first, FIFO among equal priorities, a
    priority above the maximum is treated as the maximum (the property is
    delivered as published), no priority is priority 0; x-max-priority 1
    (two levels) and 255; get-ok message_count;
  * order seen by a push consumer, and an urgent message overtaking the
    backlog while the consumer works (prefetch 1);
  * requeued messages go back in priority order, ahead of newer messages of
    their own priority;
  * drop-head on a full priority queue drops the message at the head, i.e.
    the highest priority one;
  * per-message TTL in a priority queue; warrend only: an expired message
    of a higher priority published after lower-priority ones is dropped (on
    RabbitMQ 3.10 it stays counted and basic.get delivers it after its TTL);
  * 1000 random priorities come out in a stable sort;
  * validation: 256, -1, a string, a bool, 2^31 -> 406 PRECONDITION_FAILED
    ("invalid arg 'x-max-priority'"); redeclare with another maximum -> 406.

RabbitMQ accepts x-max-priority 0 (and then ignores priorities: plain FIFO);
issue 4 names the range 1..255, the test checks RabbitMQ's behaviour for 0.
"""
import random

import pika

import harness
from amqpcase import PRECONDITION_FAILED, SemanticsCase

# (body, priority or None), published in this order
MIXED = [("n0", None), ("p3a", 3), ("z0", 0), ("p9", 9), ("p3b", 3), ("p1", 1),
         ("p44", 44), ("p5", 5), ("n1", None)]


class PriorityCase(SemanticsCase):
    def publish_mixed(self, q, msgs=MIXED):
        for body, prio in msgs:
            if prio is None:
                self.send(q, body)
            else:
                self.send(q, body, priority=prio)

    def order(self, q):
        return [m.body for m in self.get_all(q)]


class TestOrder(PriorityCase):
    def test_higher_first_fifo_among_equals(self):
        q = self.temp_queue(arguments={"x-max-priority": 10})
        self.publish_mixed(q)
        got = self.get_all(q)
        # 44 counts as 10; None and 0 are the same level
        self.assertEqual([m.body for m in got],
                         ["p44", "p9", "p5", "p3a", "p3b", "p1", "n0", "z0", "n1"])
        # the priority property is delivered as published
        self.assertEqual([m.props.priority for m in got], [44, 9, 5, 3, 3, 1, None, 0, None])

    def test_above_max_is_max(self):
        q = self.temp_queue(arguments={"x-max-priority": 5})
        self.publish_mixed(q)
        # 9, 44 and 5 are all at level 5, in publish order
        self.assertEqual(self.order(q), ["p9", "p44", "p5", "p3a", "p3b", "p1", "n0", "z0", "n1"])

    def test_max_priority_1(self):
        q = self.temp_queue(arguments={"x-max-priority": 1})
        self.publish_mixed(q)
        self.assertEqual(self.order(q), ["p3a", "p9", "p3b", "p1", "p44", "p5", "n0", "z0", "n1"])

    def test_max_priority_255(self):
        q = self.temp_queue(arguments={"x-max-priority": 255})
        self.publish_mixed(q, MIXED + [("p255", 255), ("p254", 254)])
        self.assertEqual(self.order(q), ["p255", "p254", "p44", "p9", "p5", "p3a", "p3b", "p1",
                                         "n0", "z0", "n1"])

    def test_max_priority_0_is_fifo(self):
        q = self.temp_queue(arguments={"x-max-priority": 0})
        self.publish_mixed(q)
        self.assertEqual(self.order(q), [b for b, _ in MIXED])

    def test_no_max_priority_is_fifo(self):
        q = self.temp_queue()
        self.publish_mixed(q)
        self.assertEqual(self.order(q), [b for b, _ in MIXED])

    def test_get_ok_message_count(self):
        q = self.temp_queue(arguments={"x-max-priority": 3})
        self.publish_mixed(q, [("a", 1), ("b", 3), ("c", 2)])
        self.assertEqual(self.ready(q), 3)
        seen = []
        for _ in range(3):
            m, _, b = self.ch.basic_get(q, auto_ack=True)
            seen.append((b.decode(), m.message_count))
        self.assertEqual(seen, [("b", 2), ("c", 1), ("a", 0)])

    def test_push_consumer_order(self):
        q = self.temp_queue(arguments={"x-max-priority": 10})
        self.publish_mixed(q)
        inbox, _, _ = self.listen(q, auto_ack=True)
        self.assertEqual([m.body for m in self.expect(inbox, len(MIXED))],
                         ["p44", "p9", "p5", "p3a", "p3b", "p1", "n0", "z0", "n1"])

    def test_urgent_overtakes_backlog(self):
        q = self.temp_queue(arguments={"x-max-priority": 10})
        self.send_all(q, ["job%d" % i for i in range(5)], priority=1)
        inbox, ch, _ = self.listen(q, prefetch=1)
        self.expect(inbox, 1)
        self.assertEqual(inbox[0].body, "job0")
        # while job0 is being worked on, an urgent job arrives
        self.send(q, "urgent", priority=8)
        for n in range(2, 7):
            ch.basic_ack(inbox[-1].dtag)
            self.expect(inbox, n)
        self.assertEqual([m.body for m in inbox],
                         ["job0", "urgent", "job1", "job2", "job3", "job4"])

    def test_requeue_keeps_priority_order(self):
        q = self.temp_queue(arguments={"x-max-priority": 10})
        self.publish_mixed(q, [("m0/1", 1), ("m1/5", 5), ("m2/5", 5), ("m3/1", 1), ("m4/9", 9)])
        ch = self.conn.channel()
        got = []
        for _ in range(5):
            m, _, b = ch.basic_get(q)
            got.append(b.decode())
        self.assertEqual(got, ["m4/9", "m1/5", "m2/5", "m0/1", "m3/1"])
        self.send(q, "late/5", priority=5)
        # requeue out of order; they return to their priority level, in their
        # original order, ahead of the newer message of the same priority
        ch.basic_nack(3, requeue=True)              # m2/5
        ch.basic_nack(5, requeue=True)              # m3/1
        ch.basic_nack(0, multiple=True, requeue=True)
        self.wait_ready(q, 6)
        self.assertEqual([(m.body, m.redelivered) for m in self.get_all(q)],
                         [("m4/9", True), ("m1/5", True), ("m2/5", True), ("late/5", False),
                          ("m0/1", True), ("m3/1", True)])

    def test_many_random_priorities(self):
        q = self.temp_queue(arguments={"x-max-priority": 10})
        rnd = random.Random(4)
        prios = [rnd.randint(0, 12) for _ in range(1000)]
        ch = self.conn.channel()
        for i, p in enumerate(prios):
            ch.basic_publish("", q, str(i).encode(), pika.BasicProperties(priority=p))
        self.wait_ready(q, 1000)
        inbox, _, _ = self.listen(q, auto_ack=True)
        self.expect(inbox, 1000)
        want = sorted(range(1000), key=lambda i: (-min(prios[i], 10), i))
        self.assertEqual([int(m.body) for m in inbox], want)


class TestInterplay(PriorityCase):
    def test_drop_head_drops_highest(self):
        dlx, dlq = self.dead_letter_queue()
        q = self.temp_queue(arguments=dict(dlx, **{"x-max-priority": 5, "x-max-length": 2}))
        self.publish_mixed(q, [("lo", 1), ("hi", 5), ("mid", 3)])
        self.assertEqual(self.order(q), ["mid", "lo"])
        dead = self.get_all(dlq)
        self.assertEqual([m.body for m in dead], ["hi"])
        self.assertEqual(self.deaths(dead[0].props), [(q, "maxlen", 1)])

    def test_per_message_ttl(self):
        q = self.temp_queue(arguments={"x-max-priority": 5})
        self.send(q, "expire-hi", priority=5, expiration="150")
        self.send(q, "keep-hi", priority=5)
        self.send(q, "keep-lo", priority=1)
        self.wait_ready(q, 2)
        self.assertEqual(self.order(q), ["keep-hi", "keep-lo"])

    def test_ttl_of_message_published_after_lower_priority(self):
        # RabbitMQ 3.10 gets this wrong: with "keep-lo" published first, the
        # expired "expire-hi" stays counted and basic.get still delivers it
        # seconds after its TTL (measured: message_count 3, then
        # ["expire-hi", "keep-hi", "keep-lo"]).
        self.warren_only("RabbitMQ 3.10 priority queues deliver this expired message")
        q = self.temp_queue(arguments={"x-max-priority": 5})
        self.send(q, "keep-lo", priority=1)
        self.send(q, "expire-hi", priority=5, expiration="150")
        self.send(q, "keep-hi", priority=5)
        self.wait_ready(q, 2)
        self.assertEqual(self.order(q), ["keep-hi", "keep-lo"])


class TestValidation(PriorityCase):
    def test_invalid_max_priority(self):
        # RabbitMQ: 406 "invalid arg 'x-max-priority' for queue ...:
        # {max_value_exceeded,256}" / {value_negative,-1} /
        # "expected integer, got longstr" / "expected integer, got bool"
        for v in (256, -1, "5", True, 2 ** 31, 1000):
            ch = self.conn.channel()
            with self.subTest(value=v), \
                    self.channel_error(PRECONDITION_FAILED, ch, text="x-max-priority"):
                ch.queue_declare(self.unique("badprio"), exclusive=True,
                                 arguments={"x-max-priority": v})

    def test_valid_bounds(self):
        for v in (1, 255):
            self.temp_queue(arguments={"x-max-priority": v})

    def test_redeclare_with_other_maximum(self):
        q = self.queue(arguments={"x-max-priority": 5})
        self.ch.queue_declare(q, arguments={"x-max-priority": 5})
        with self.channel_error(PRECONDITION_FAILED, text="x-max-priority"):
            self.ch.queue_declare(q, arguments={"x-max-priority": 6})


if __name__ == "__main__":
    harness.main()
