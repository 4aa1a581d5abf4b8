"""test_delivery_limit - x-delivery-limit and x-delivery-count (issue 4).

RabbitMQ 3.10 has these on quorum queues only (it refuses x-delivery-limit on
a classic queue: 406 "invalid arg 'x-delivery-limit' ... of queue type
rabbit_classic_queue"); Warren has them on its classic queues. So on RabbitMQ
the queues here are declared durable with x-queue-type=quorum, on warrend as
plain classic queues with x-delivery-limit; the assertions are the same.

Semantics measured on RabbitMQ 3.10 quorum queues:
  * x-delivery-limit N: a message may be returned (nack/reject with
    requeue=true, or its channel closing while it is unacked) N times; the
    return after its (N+1)th delivery dead-letters it with reason
    `delivery_limit` (or drops it without a DLX). N=0: the first return.
  * x-delivery-count on a redelivery is the number of earlier deliveries
    (1, 2, ...), a long ('l'), next to the message's own headers. On a first
    delivery to a consumer the header is absent; basic.get carries it on the
    first delivery too, with value 0.
  * the dead-lettered copy has the usual x-death entry (count 1, reason
    delivery_limit, queue, exchange, routing-keys) and no x-delivery-count.
  * nack/reject with requeue=false dead-letters with reason `rejected`.
"""
import harness
from amqpcase import SemanticsCase


class DeliveryLimitCase(SemanticsCase):
    quorum = False  # declare quorum queues on warrend too

    def limited_queue(self, limit, dlx=None):
        name = self.unique("dl")
        args = {"x-delivery-limit": limit}
        args.update(dlx or {})
        if self.is_rabbitmq or self.quorum:
            args["x-queue-type"] = "quorum"
            return self.queue(name, durable=True, arguments=args)
        return self.queue(name, arguments=args)

    def count_of(self, msg):
        return (msg.props.headers or {}).get("x-delivery-count")

    def get_one(self, q, ch):
        """basic.get (ack mode) on ch, waiting for a message to be there (a
        requeue reaches the queue asynchronously)."""
        found = []

        def have():
            m, p, b = ch.basic_get(q)
            if m is not None:
                found.append((m, p, b.decode()))
            return found
        self.pump(have, what="a message in " + q)
        return found[0]

    def nacking_consumer(self, q, requeue=True):
        def nack(msg):
            msg.ch.basic_nack(msg.dtag, requeue=requeue)
        inbox, _, _ = self.listen(q, on_message=nack)
        return inbox


class TestDeliveryLimit(DeliveryLimitCase):
    def test_dead_lettered_after_limit(self):
        dlx, dlq = self.dead_letter_queue()
        q = self.limited_queue(2, dlx)
        self.send(q, "job", headers={"job-id": "j1"})
        inbox = self.nacking_consumer(q)
        self.expect(inbox, 3)
        self.assertEqual([(m.body, m.redelivered, m.props.headers) for m in inbox],
                         [("job", False, {"job-id": "j1"}),
                          ("job", True, {"job-id": "j1", "x-delivery-count": 1}),
                          ("job", True, {"job-id": "j1", "x-delivery-count": 2})])
        self.wait_ready(dlq, 1)
        self.assertEqual(self.ready(q), 0)
        dead = self.get_all(dlq)[0]
        h = dead.props.headers
        self.assertNotIn("x-delivery-count", h)
        self.assertEqual(h["job-id"], "j1")
        d = h["x-death"]
        self.assertRecentTime(d[0].pop("time"))
        self.assertEqual(d, [{"count": 1, "reason": "delivery_limit", "queue": q, "exchange": "",
                              "routing-keys": [q]}])
        self.assertEqual((h["x-first-death-reason"], h["x-first-death-queue"],
                          h["x-first-death-exchange"]), ("delivery_limit", q, ""))

    def test_basic_get_counts(self):
        dlx, dlq = self.dead_letter_queue()
        q = self.limited_queue(2, dlx)
        self.send(q, "job")
        ch = self.conn.channel()
        seen = []
        for _ in range(3):
            m, p, b = self.get_one(q, ch)
            seen.append((b, m.redelivered, (p.headers or {}).get("x-delivery-count")))
            ch.basic_nack(m.delivery_tag, requeue=True)
        # RabbitMQ's basic.get shows x-delivery-count 0 on the first delivery
        self.assertEqual(seen, [("job", False, 0), ("job", True, 1), ("job", True, 2)])
        self.wait_ready(dlq, 1)
        self.assertEqual(self.get_all(q), [])
        self.assertEqual(self.deaths(self.get_all(dlq)[0].props), [(q, "delivery_limit", 1)])

    def test_count_type_on_the_wire(self):
        q = self.limited_queue(5)
        self.send(q, "job", headers={"mine": "kept"})
        ch = self.conn.channel()
        m, _, _ = self.get_one(q, ch)
        ch.basic_reject(m.delivery_tag, requeue=True)
        self.wait_ready(q, 1)
        g = self.typed_get(q)
        self.assertTrue(g["redelivered"])
        self.assertEqual(g["props"]["headers"], {"mine": ("S", b"kept"),
                                                 "x-delivery-count": ("l", 1)})

    def test_reject_requeue_counts(self):
        dlx, dlq = self.dead_letter_queue()
        q = self.limited_queue(1, dlx)
        self.send(q, "job")
        ch = self.conn.channel()
        for _ in range(2):
            m, _, _ = self.get_one(q, ch)
            ch.basic_reject(m.delivery_tag, requeue=True)
        self.wait_ready(dlq, 1)
        self.assertEqual(self.ready(q), 0)

    def test_channel_close_counts(self):
        dlx, dlq = self.dead_letter_queue()
        q = self.limited_queue(1, dlx)
        self.send(q, "job", expiration="60000")
        counts = []
        for _ in range(2):
            ch = self.conn.channel()
            m, p, _ = self.get_one(q, ch)
            counts.append((p.headers or {}).get("x-delivery-count"))
            ch.close()                      # unacked: returned to the queue
        self.assertEqual(counts, [0, 1])
        self.wait_ready(dlq, 1)
        dead = self.get_all(dlq)[0]
        self.assertEqual(self.deaths(dead.props), [(q, "delivery_limit", 1)])
        self.assertEqual(dead.props.headers["x-death"][0]["original-expiration"], "60000")
        self.assertIsNone(dead.props.expiration)

    def test_limit_zero(self):
        dlx, dlq = self.dead_letter_queue()
        q = self.limited_queue(0, dlx)
        self.send(q, "once")
        inbox = self.nacking_consumer(q)
        self.expect(inbox, 1)
        self.wait_ready(dlq, 1)
        self.assertEqual(self.deaths(self.get_all(dlq)[0].props), [(q, "delivery_limit", 1)])

    def test_without_dlx_dropped(self):
        q = self.limited_queue(1)
        self.send(q, "job")
        inbox = self.nacking_consumer(q)
        self.expect(inbox, 2)
        self.assertEqual(self.ready(q), 0)

    def test_requeue_false_is_rejected(self):
        dlx, dlq = self.dead_letter_queue()
        q = self.limited_queue(5, dlx)
        self.send(q, "job")
        self.nacking_consumer(q, requeue=False)
        self.wait_ready(dlq, 1)
        self.assertEqual(self.deaths(self.get_all(dlq)[0].props), [(q, "rejected", 1)])

    def test_ack_before_limit(self):
        dlx, dlq = self.dead_letter_queue()
        q = self.limited_queue(2, dlx)
        self.send(q, "job")
        inbox, ch, _ = self.listen(q)
        self.expect(inbox, 1)
        ch.basic_nack(inbox[0].dtag, requeue=True)
        self.expect(inbox, 2)
        ch.basic_ack(inbox[1].dtag)
        self.settle()
        self.assertEqual((self.ready(q), self.ready(dlq)), (0, 0))

    def test_counts_are_per_message(self):
        dlx, dlq = self.dead_letter_queue()
        q = self.limited_queue(1, dlx)
        self.send_all(q, ["a", "b"])
        acked = []

        def on_msg(m):
            # "b" is acked on its second delivery, "a" is always nacked
            if m.body == "b" and m.redelivered:
                m.ch.basic_ack(m.dtag)
                acked.append(m)
            else:
                m.ch.basic_nack(m.dtag, requeue=True)
        inbox, _, _ = self.listen(q, on_message=on_msg)
        self.expect(inbox, 4)
        self.assertEqual(sorted((m.body, self.count_of(m) or 0) for m in inbox),
                         [("a", 0), ("a", 1), ("b", 0), ("b", 1)])
        self.assertEqual([self.count_of(m) for m in inbox if not m.redelivered], [None, None])
        self.wait_ready(dlq, 1)
        self.assertEqual([m.body for m in self.get_all(dlq)], ["a"])
        self.assertEqual(len(acked), 1)


class TestDeliveryLimitQuorum(TestDeliveryLimit):
    """The same on warrend's quorum queues (issue 15)."""
    quorum = True


if __name__ == "__main__":
    harness.main()
