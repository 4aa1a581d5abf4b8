"""test_maxlen - queue length limits (issue 4), checked against RabbitMQ 3.10.

Covers:
  * x-max-length and x-max-length-bytes (body bytes only), alone and
    together (whichever is exceeded), limit 0, a message bigger than the
    byte limit;
  * x-overflow drop-head (the default): the oldest ready messages are
    dropped, dead-lettered with reason `maxlen` when the queue has a DLX, in
    order; a requeue that takes the queue over the limit drops from the head;
  * x-overflow reject-publish: the publish is nacked under confirms (also a
    mandatory one: a nack, no basic.return), silently dropped without
    confirms (the channel stays open), never dead-lettered even with a DLX;
    the queue keeps the oldest; room frees up as messages are consumed; a
    requeue may take the queue over the limit; a fanout where only one queue
    is full nacks but still delivers to the others;
  * x-overflow reject-publish-dlx: nacked and dead-lettered (reason maxlen),
    with or without confirms;
  * only ready messages count: unacked ones do not take room.
"""
import harness
from amqpcase import SemanticsCase


class MaxLenCase(SemanticsCase):
    def bodies(self, q):
        return [m.body for m in self.get_all(q)]


class TestDropHead(MaxLenCase):
    def test_oldest_dropped(self):
        q = self.temp_queue(arguments={"x-max-length": 3})
        self.send_all(q, range(1, 6))               # every publish is acked
        self.assertEqual(self.ready(q), 3)
        self.assertEqual(self.bodies(q), ["3", "4", "5"])

    def test_explicit_drop_head(self):
        q = self.temp_queue(arguments={"x-max-length": 2, "x-overflow": "drop-head"})
        self.send_all(q, "abcd")
        self.assertEqual(self.bodies(q), ["c", "d"])

    def test_dropped_are_dead_lettered_in_order(self):
        dlx, dlq = self.dead_letter_queue()
        q = self.temp_queue(arguments=dict(dlx, **{"x-max-length": 2}))
        self.send_all(q, range(5))
        self.assertEqual(self.bodies(q), ["3", "4"])
        dead = self.get_all(dlq)
        self.assertEqual([m.body for m in dead], ["0", "1", "2"])
        for m in dead:
            self.assertEqual(self.deaths(m.props), [(q, "maxlen", 1)])
            self.assertEqual(m.props.headers["x-first-death-reason"], "maxlen")
            self.assertEqual((m.exchange, m.routing_key), ("", dlq))

    def test_bytes_limit(self):
        q = self.temp_queue(arguments={"x-max-length-bytes": 10})
        for b in ("aaaa", "bbbb", "cccc", "dd"):    # 12 bytes > 10: "aaaa" goes
            self.send(q, b)
        self.assertEqual(self.bodies(q), ["bbbb", "cccc", "dd"])

    def test_bytes_count_only_bodies(self):
        # headers and properties do not count towards x-max-length-bytes
        q = self.temp_queue(arguments={"x-max-length-bytes": 4})
        self.send(q, "ab", headers={"big": "x" * 1000}, message_id="m" * 200)
        self.send(q, "cd", headers={"big": "y" * 1000})
        self.assertEqual(self.bodies(q), ["ab", "cd"])

    def test_message_bigger_than_byte_limit(self):
        q = self.temp_queue(arguments={"x-max-length-bytes": 3})
        self.send(q, "ok")
        self.send(q, "too big")
        self.assertEqual(self.bodies(q), [])
        self.send(q, "")                            # an empty body fits anywhere
        self.assertEqual(self.bodies(q), [""])

    def test_both_limits(self):
        q = self.temp_queue(arguments={"x-max-length": 3, "x-max-length-bytes": 5})
        for b in ("a", "bb", "cc", "d", "e"):
            self.send(q, b)
        self.assertEqual(self.bodies(q), ["cc", "d", "e"])
        for b in ("1", "2", "3", "4"):              # now the count limit bites
            self.send(q, b)
        self.assertEqual(self.bodies(q), ["2", "3", "4"])

    def test_max_length_zero(self):
        dlx, dlq = self.dead_letter_queue()
        q = self.temp_queue(arguments=dict(dlx, **{"x-max-length": 0}))
        self.send_all(q, ["x", "y"])
        self.assertEqual(self.ready(q), 0)
        self.assertEqual([m.body for m in self.get_all(dlq)], ["x", "y"])

    def test_unacked_do_not_count(self):
        dlx, dlq = self.dead_letter_queue()
        q = self.temp_queue(arguments=dict(dlx, **{"x-max-length": 2}))
        self.send_all(q, [1, 2])
        ch = self.conn.channel()
        m, _, _ = ch.basic_get(q)                   # "1" is now unacked
        self.send(q, 3)
        self.assertEqual(self.ready(q), 2)
        self.assertEqual(self.ready(dlq), 0)
        # the requeued "1" goes back to the head, the queue is over its limit
        # and drops from the head: "1" itself
        ch.basic_nack(m.delivery_tag, requeue=True)
        self.wait_ready(dlq, 1)
        self.assertEqual(self.bodies(q), ["2", "3"])
        dead = self.get_all(dlq)
        self.assertEqual([(m.body, self.deaths(m.props)) for m in dead],
                         [("1", [(q, "maxlen", 1)])])

    def test_push_consumer_sees_only_survivors(self):
        q = self.temp_queue(arguments={"x-max-length": 2})
        self.send_all(q, range(6))
        inbox, _, _ = self.listen(q, auto_ack=True)
        self.assertEqual([m.body for m in self.expect(inbox, 2)], ["4", "5"])


class TestRejectPublish(MaxLenCase):
    def test_nacked_under_confirms(self):
        q = self.temp_queue(arguments={"x-max-length": 2, "x-overflow": "reject-publish"})
        self.assertEqual([self.try_send(q, str(i)) for i in range(4)],
                         ["ack", "ack", "nack", "nack"])
        self.assertEqual(self.bodies(q), ["0", "1"])
        # room again
        self.assertEqual(self.try_send(q, "later"), "ack")
        self.assertEqual(self.bodies(q), ["later"])

    def test_mandatory_is_nacked_not_returned(self):
        q = self.temp_queue(arguments={"x-max-length": 0, "x-overflow": "reject-publish"})
        self.assertEqual(self.try_send(q, "m", mandatory=True), "nack")

    def test_dropped_silently_without_confirms(self):
        q = self.temp_queue(arguments={"x-max-length": 2, "x-overflow": "reject-publish"})
        ch = self.conn.channel()
        for i in range(5):
            ch.basic_publish("", q, str(i).encode())
        self.wait_ready(q, 2)
        self.settle()
        self.assertTrue(ch.is_open)
        self.assertEqual(self.bodies(q), ["0", "1"])

    def test_not_dead_lettered(self):
        dlx, dlq = self.dead_letter_queue()
        q = self.temp_queue(arguments=dict(dlx, **{"x-max-length": 1,
                                                  "x-overflow": "reject-publish"}))
        self.assertEqual([self.try_send(q, b) for b in "ab"], ["ack", "nack"])
        self.assertEqual(self.ready(dlq), 0)
        self.assertEqual(self.bodies(q), ["a"])

    def test_bytes_limit(self):
        q = self.temp_queue(arguments={"x-max-length-bytes": 10, "x-overflow": "reject-publish"})
        got = [(b, self.try_send(q, b)) for b in ("aaaa", "bbbb", "cccc", "dd", "e", "")]
        # a publish is refused when it would take the total over the limit
        self.assertEqual(got, [("aaaa", "ack"), ("bbbb", "ack"), ("cccc", "nack"),
                               ("dd", "ack"), ("e", "nack"), ("", "ack")])
        self.assertEqual(self.bodies(q), ["aaaa", "bbbb", "dd", ""])

    def test_unacked_do_not_count_and_requeue_may_overfill(self):
        q = self.temp_queue(arguments={"x-max-length": 2, "x-overflow": "reject-publish"})
        self.send_all(q, [1, 2])
        ch = self.conn.channel()
        m, _, _ = ch.basic_get(q)
        self.assertEqual(self.try_send(q, "3"), "ack")
        self.assertEqual(self.try_send(q, "4"), "nack")
        ch.basic_nack(m.delivery_tag, requeue=True)
        self.wait_ready(q, 3)
        self.assertEqual([(m.body, m.redelivered) for m in self.get_all(q)],
                         [("1", True), ("2", False), ("3", False)])

    def test_fanout_with_one_full_queue(self):
        x = self.exchange("fanout")
        full = self.temp_queue(arguments={"x-max-length": 0, "x-overflow": "reject-publish"})
        other = self.temp_queue()
        self.ch.queue_bind(full, x)
        self.ch.queue_bind(other, x)
        # nacked because one queue refused it, yet the other queue has it
        self.assertEqual(self.try_send("", "f", exchange=x), "nack")
        self.assertEqual(self.bodies(other), ["f"])
        self.assertEqual(self.ready(full), 0)


class TestRejectPublishDlx(MaxLenCase):
    def test_nacked_and_dead_lettered(self):
        dlx, dlq = self.dead_letter_queue()
        q = self.temp_queue(arguments=dict(dlx, **{"x-max-length": 2,
                                                  "x-overflow": "reject-publish-dlx"}))
        self.assertEqual([self.try_send(q, str(i)) for i in range(4)],
                         ["ack", "ack", "nack", "nack"])
        self.assertEqual(self.bodies(q), ["0", "1"])
        dead = self.get_all(dlq)
        self.assertEqual([m.body for m in dead], ["2", "3"])
        for m in dead:
            self.assertEqual(self.deaths(m.props), [(q, "maxlen", 1)])

    def test_without_confirms(self):
        dlx, dlq = self.dead_letter_queue()
        q = self.temp_queue(arguments=dict(dlx, **{"x-max-length": 1,
                                                  "x-overflow": "reject-publish-dlx"}))
        ch = self.conn.channel()
        for b in "abc":
            ch.basic_publish("", q, b.encode())
        self.wait_ready(dlq, 2)
        self.assertEqual(self.bodies(q), ["a"])
        self.assertEqual(self.bodies(dlq), ["b", "c"])

    def test_without_dlx_just_rejects(self):
        q = self.temp_queue(arguments={"x-max-length": 1, "x-overflow": "reject-publish-dlx"})
        self.assertEqual([self.try_send(q, b) for b in "ab"], ["ack", "nack"])
        self.assertEqual(self.bodies(q), ["a"])


if __name__ == "__main__":
    harness.main()
