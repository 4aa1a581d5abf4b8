"""test_dlx - dead-letter exchanges and the x-death header (issue 4), checked
against RabbitMQ 3.10.

Covers:
  * reasons: `rejected` (basic.reject and basic.nack with requeue=false,
    nack multiple in order), `expired` (queue TTL and per-message TTL),
    `maxlen`; requeue=true and a closed channel do not dead-letter;
  * routing: x-dead-letter-routing-key replaces the routing key (the x-death
    entry keeps the original ones; get-ok shows the DLX and the new key),
    without it the original key is used, a fanout DLX copies to every bound
    queue, a DLX that does not exist drops the message silently,
    x-dead-letter-routing-key without x-dead-letter-exchange -> 406; CC
    header keys route dead letters too (not with a dead-letter routing key,
    which also removes CC);
  * the x-death header exactly as RabbitMQ writes it, with its AMQP types
    read off the wire: an array ('A') of tables ('F') with count (long 'l'),
    reason, queue, exchange (long strings 'S'), time (timestamp 'T',
    seconds), routing-keys (array of 'S'), and original-expiration ('S')
    when the message had an expiration, which is removed from the
    properties; x-first-death-reason/-queue/-exchange ('S'); other headers
    and properties untouched; the same as pika decodes it (int, str,
    naive UTC datetime, list);
  * repeats: one entry per (queue, reason), count incremented, the entry of
    the latest death first, time and the other fields of an entry kept from
    its first death, x-first-death-* never change; the exact order
    RabbitMQ 3.10 leaves the older entries in (see test_entry_order_as_rabbitmq);
  * cycles: a message dead-lettered back into a queue it died in, with no
    rejection in between, is dropped for that queue (RabbitMQ's
    rabbit_dead_letter:detect_cycles), also for a queue dead-lettering to
    itself on expiry (the message never comes back); a rejection anywhere in
    the cycle lets it go round.
"""
import datetime
import time

import harness
from amqpcase import PRECONDITION_FAILED, SemanticsCase


class DlxCase(SemanticsCase):
    def get_one(self, q, ch=None, timeout=5.0):
        """Wait for a message in q and basic.get it without ack."""
        ch = ch or self.ch
        deadline = time.monotonic() + timeout
        while True:
            m, p, b = ch.basic_get(q)
            if m is not None:
                return m, p, b.decode()
            if time.monotonic() >= deadline:
                self.fail("nothing arrived in %s within %.1fs" % (q, timeout))
            self.conn.process_data_events(time_limit=0.02)

    def bounce(self, q):
        """Take the next message of q and reject it (requeue=false)."""
        m, p, b = self.get_one(q)
        self.ch.basic_reject(m.delivery_tag, requeue=False)
        return p


class TestReasons(DlxCase):
    def test_reject_and_nack(self):
        dlx, dlq = self.dead_letter_queue()
        q = self.temp_queue(arguments=dlx)
        self.send_all(q, ["r", "n"])
        ch = self.conn.channel()
        m1, _, _ = ch.basic_get(q)
        m2, _, _ = ch.basic_get(q)
        ch.basic_reject(m1.delivery_tag, requeue=False)
        ch.basic_nack(m2.delivery_tag, requeue=False)
        self.wait_ready(dlq, 2)
        dead = self.get_all(dlq)
        self.assertEqual([(m.body, self.deaths(m.props)) for m in dead],
                         [("r", [(q, "rejected", 1)]), ("n", [(q, "rejected", 1)])])
        self.assertEqual(self.ready(q), 0)

    def test_nack_multiple_in_order(self):
        dlx, dlq = self.dead_letter_queue()
        q = self.temp_queue(arguments=dlx)
        self.send_all(q, range(1, 6))
        inbox, ch, _ = self.listen(q)
        self.expect(inbox, 5)
        ch.basic_ack(inbox[1].dtag)                          # "2"
        ch.basic_nack(inbox[3].dtag, multiple=True, requeue=False)
        self.wait_ready(dlq, 3)
        self.assertEqual([m.body for m in self.get_all(dlq)], ["1", "3", "4"])

    def test_requeue_and_channel_close_do_not_dead_letter(self):
        dlx, dlq = self.dead_letter_queue()
        q = self.temp_queue(arguments=dlx)
        self.send(q, "kept")
        ch = self.conn.channel()
        m, _, _ = ch.basic_get(q)
        ch.basic_reject(m.delivery_tag, requeue=True)
        m, _, _ = self.get_one(q, ch)
        ch.close()
        self.wait_ready(q, 1)
        self.assertEqual(self.ready(dlq), 0)
        got = self.get_all(q)
        self.assertEqual([(m.body, m.redelivered, m.props.headers) for m in got],
                         [("kept", True, None)])

    def test_expired_queue_ttl(self):
        dlx, dlq = self.dead_letter_queue()
        q = self.temp_queue(arguments=dict(dlx, **{"x-message-ttl": 100}))
        self.send(q, "old")
        self.wait_ready(dlq, 1)
        m = self.get_all(dlq)[0]
        d = m.props.headers["x-death"]
        self.assertEqual(len(d), 1)
        # queue TTL: no original-expiration
        self.assertEqual(sorted(d[0]), ["count", "exchange", "queue", "reason", "routing-keys",
                                        "time"])
        self.assertEqual((d[0]["reason"], d[0]["queue"], d[0]["count"]), ("expired", q, 1))
        self.assertIsNone(m.props.expiration)

    def test_expired_per_message(self):
        dlx, dlq = self.dead_letter_queue()
        q = self.temp_queue(arguments=dlx)
        self.send(q, "old", expiration="100")
        self.wait_ready(dlq, 1)
        m = self.get_all(dlq)[0]
        d = m.props.headers["x-death"]
        self.assertEqual((d[0]["reason"], d[0]["original-expiration"]), ("expired", "100"))
        self.assertIsNone(m.props.expiration)

    def test_maxlen(self):
        dlx, dlq = self.dead_letter_queue()
        q = self.temp_queue(arguments=dict(dlx, **{"x-max-length": 1}))
        self.send_all(q, ["first", "second"])
        m = self.get_all(dlq)[0]
        self.assertEqual((m.body, self.deaths(m.props)), ("first", [(q, "maxlen", 1)]))
        self.assertEqual(m.props.headers["x-first-death-reason"], "maxlen")


class TestRouting(DlxCase):
    def test_dead_letter_routing_key(self):
        x = self.exchange("direct")
        dlq = self.temp_queue()
        self.ch.queue_bind(dlq, x, "dead")
        q = self.temp_queue(arguments={"x-dead-letter-exchange": x,
                                       "x-dead-letter-routing-key": "dead"})
        self.ch.queue_bind(q, "amq.direct", "orig-key")
        self.send("orig-key", "m", exchange="amq.direct")
        self.bounce(q)
        m, p, b = self.get_one(dlq)
        self.assertEqual((b, m.exchange, m.routing_key), ("m", x, "dead"))
        d = p.headers["x-death"][0]
        self.assertEqual((d["exchange"], d["routing-keys"]), ("amq.direct", ["orig-key"]))
        self.assertEqual(p.headers["x-first-death-exchange"], "amq.direct")

    def test_original_routing_key_without_dlrk(self):
        x = self.exchange("topic")
        dlq = self.temp_queue()
        self.ch.queue_bind(dlq, x, "orders.*")
        q = self.temp_queue(arguments={"x-dead-letter-exchange": x})
        self.ch.queue_bind(q, "amq.topic", "orders.#")
        self.send("orders.eu", "o", exchange="amq.topic")
        self.bounce(q)
        m, p, b = self.get_one(dlq)
        self.assertEqual((b, m.exchange, m.routing_key), ("o", x, "orders.eu"))
        self.assertEqual(p.headers["x-death"][0]["routing-keys"], ["orders.eu"])

    def test_fanout_dlx_copies(self):
        x = self.exchange("fanout")
        a, b = self.temp_queue(), self.temp_queue()
        self.ch.queue_bind(a, x)
        self.ch.queue_bind(b, x)
        q = self.temp_queue(arguments={"x-dead-letter-exchange": x})
        self.send(q, "copy")
        self.bounce(q)
        self.wait_ready(a, 1)
        self.wait_ready(b, 1)
        for dq in (a, b):
            self.assertEqual([(m.body, self.deaths(m.props)) for m in self.get_all(dq)],
                             [("copy", [(q, "rejected", 1)])])

    def test_missing_dlx_drops(self):
        q = self.temp_queue(arguments={"x-dead-letter-exchange": self.unique("nowhere")})
        self.send(q, "lost")
        self.bounce(q)
        self.settle()
        self.assertTrue(self.ch.is_open)
        self.assertEqual(self.ready(q), 0)

    def test_cc_keys_are_dead_letter_routing_keys(self):
        # Without x-dead-letter-routing-key a message is dead-lettered by all
        # its routing keys, CC's included, and x-death lists them; with it,
        # by that key only, and the CC header goes (RabbitMQ 3.10).
        x = self.exchange("direct")
        by_cc, by_key = self.temp_queue(), self.temp_queue()
        self.ch.queue_bind(by_cc, x, "cc-key")
        self.ch.queue_bind(by_key, x, "src-key")
        q = self.temp_queue(arguments={"x-dead-letter-exchange": x})
        self.ch.queue_bind(q, "amq.direct", "src-key")
        self.send("src-key", "m", exchange="amq.direct", headers={"CC": ["cc-key"]})
        self.bounce(q)
        for dq in (by_cc, by_key):
            m, p, b = self.get_one(dq)
            self.assertEqual((b, m.routing_key, p.headers["CC"]), ("m", "src-key", ["cc-key"]))
            self.assertEqual(p.headers["x-death"][0]["routing-keys"], ["src-key", "cc-key"])
            self.ch.basic_ack(m.delivery_tag)
        q2 = self.temp_queue(arguments={"x-dead-letter-exchange": x,
                                        "x-dead-letter-routing-key": "src-key"})
        self.ch.queue_bind(q2, "amq.direct", "src2")
        self.send("src2", "n", exchange="amq.direct", headers={"CC": ["cc-key"]})
        self.bounce(q2)
        m, p, b = self.get_one(by_key)
        self.assertNotIn("CC", p.headers)
        self.assertEqual(p.headers["x-death"][0]["routing-keys"], ["src2", "cc-key"])
        self.ch.basic_ack(m.delivery_tag)
        self.settle()
        self.assertEqual(self.ready(by_cc), 0)

    def test_dlrk_without_dlx_is_406(self):
        # RabbitMQ: 406 "invalid arg 'x-dead-letter-routing-key' for queue ...:
        # routing_key_but_no_dlx_defined"
        with self.channel_error(PRECONDITION_FAILED, text="x-dead-letter-routing-key"):
            self.ch.queue_declare(self.unique("q"), exclusive=True,
                                  arguments={"x-dead-letter-routing-key": "k"})


class TestXDeath(DlxCase):
    PROPS = dict(content_type="text/plain", content_encoding="utf-8", delivery_mode=2,
                 priority=3, correlation_id="corr", reply_to="rq", expiration="60000",
                 message_id="mid", timestamp=1700000000, type="kind", app_id="app",
                 headers={"keep": "me", "n": 7})

    def setup_reject(self):
        dlx, dlq = self.dead_letter_queue()
        q = self.queue(arguments=dlx)
        self.ch.queue_bind(q, "amq.direct", "rk-src")
        self.send("rk-src", "payload", exchange="amq.direct", **self.PROPS)
        self.bounce(q)
        self.wait_ready(dlq, 1)
        return q, dlq

    def test_types_on_the_wire(self):
        q, dlq = self.setup_reject()
        before = int(time.time())
        g = self.typed_get(dlq)
        after = int(time.time())
        self.assertEqual((g["body"], g["exchange"], g["routing_key"]), (b"payload", "", dlq))
        props = dict(g["props"])
        h = props.pop("headers")
        # every property but expiration is kept
        want = {k: v for k, v in self.PROPS.items() if k not in ("headers", "expiration")}
        self.assertEqual(props, want)
        self.assertEqual(sorted(h), ["keep", "n", "x-death", "x-first-death-exchange",
                                     "x-first-death-queue", "x-first-death-reason"])
        self.assertEqual((h["keep"], h["n"]), (("S", b"me"), ("I", 7)))
        self.assertEqual(h["x-first-death-exchange"], ("S", b"amq.direct"))
        self.assertEqual(h["x-first-death-queue"], ("S", q.encode()))
        self.assertEqual(h["x-first-death-reason"], ("S", b"rejected"))
        tag, entries = h["x-death"]
        self.assertEqual(tag, "A")
        self.assertEqual(len(entries), 1)
        etag, e = entries[0]
        self.assertEqual(etag, "F")
        ttag, t = e.pop("time")
        self.assertEqual(ttag, "T")
        self.assertTrue(before - 5 <= t <= after + 1, (t, before))
        self.assertEqual(e, {"count": ("l", 1),
                             "reason": ("S", b"rejected"),
                             "queue": ("S", q.encode()),
                             "exchange": ("S", b"amq.direct"),
                             "routing-keys": ("A", [("S", b"rk-src")]),
                             "original-expiration": ("S", b"60000")})

    def test_as_pika_sees_it(self):
        q, dlq = self.setup_reject()
        m = self.get_all(dlq)[0]
        p = m.props
        self.assertIsNone(p.expiration)
        self.assertEqual((p.content_type, p.correlation_id, p.priority, p.delivery_mode),
                         ("text/plain", "corr", 3, 2))
        h = p.headers
        d = h["x-death"]
        self.assertIsInstance(d, list)
        self.assertRecentTime(d[0].pop("time"))
        self.assertEqual(d, [{"count": 1, "reason": "rejected", "queue": q,
                              "exchange": "amq.direct", "routing-keys": ["rk-src"],
                              "original-expiration": "60000"}])
        self.assertIsInstance(h["x-death"][0]["count"], int)
        self.assertEqual({k: v for k, v in h.items() if k != "x-death"},
                         {"keep": "me", "n": 7, "x-first-death-exchange": "amq.direct",
                          "x-first-death-queue": q, "x-first-death-reason": "rejected"})

    def test_self_loop_counts_up(self):
        q = self.unique("q")
        self.queue(q, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": q})
        self.send(q, "again")
        self.assertIsNone(self.bounce(q).headers)
        for n in (1, 2, 3):
            p = self.bounce(q)
            self.assertEqual(self.deaths(p), [(q, "rejected", n)])
            self.assertEqual((p.headers["x-first-death-queue"], p.headers["x-first-death-reason"],
                              p.headers["x-first-death-exchange"]), (q, "rejected", ""))
            self.assertEqual(p.headers["x-death"][0]["routing-keys"], [q])

    def ping_pong(self):
        """Queues a and b dead-lettering into each other (through the default
        exchange); a message first expires in a, then is rejected in turn.
        Returns (a, b, [x-death list at each stage as (queue, reason, count)],
        [raw x-death lists])."""
        a, b = self.unique("a"), self.unique("b")
        self.queue(a, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": b})
        self.queue(b, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": a})
        self.ch.queue_bind(a, "amq.direct", "start")
        self.send("start", "ball", exchange="amq.direct", expiration="100",
                  headers={"keep": "me"})
        stages, raw = [], []
        for q in (b, a, b, a, b):
            m, p, body = self.get_one(q)
            self.assertEqual(body, "ball")
            self.assertEqual(p.headers["keep"], "me")
            self.assertIsNone(p.expiration)
            self.assertEqual((p.headers["x-first-death-queue"], p.headers["x-first-death-reason"],
                              p.headers["x-first-death-exchange"]), (a, "expired", "amq.direct"))
            stages.append(self.deaths(p))
            raw.append(p.headers["x-death"])
            self.ch.basic_reject(m.delivery_tag, requeue=False)
        return a, b, stages, raw

    def test_most_recent_first(self):
        a, b, stages, raw = self.ping_pong()
        # the entry of the death that just happened is first ...
        self.assertEqual([s[0] for s in stages],
                         [(a, "expired", 1), (b, "rejected", 1), (a, "rejected", 1),
                          (b, "rejected", 2), (a, "rejected", 2)])
        # ... and there is one entry per (queue, reason)
        self.assertEqual([sorted(s) for s in stages],
                         [[(a, "expired", 1)],
                          sorted([(b, "rejected", 1), (a, "expired", 1)]),
                          sorted([(a, "rejected", 1), (a, "expired", 1), (b, "rejected", 1)]),
                          sorted([(b, "rejected", 2), (a, "expired", 1), (a, "rejected", 1)]),
                          sorted([(a, "rejected", 2), (a, "expired", 1), (b, "rejected", 2)])])
        last = {(d["queue"], d["reason"]): d for d in raw[-1]}
        # each entry keeps the fields of its first death
        self.assertEqual((last[a, "expired"]["exchange"], last[a, "expired"]["routing-keys"],
                          last[a, "expired"]["original-expiration"]),
                         ("amq.direct", ["start"], "100"))
        self.assertEqual((last[a, "rejected"]["exchange"], last[a, "rejected"]["routing-keys"]),
                         ("", [a]))
        self.assertEqual((last[b, "rejected"]["exchange"], last[b, "rejected"]["routing-keys"]),
                         ("", [b]))
        self.assertNotIn("original-expiration", last[a, "rejected"])
        for d in raw[-1]:
            self.assertRecentTime(d["time"])

    def test_entry_order_as_rabbitmq(self):
        # RabbitMQ 3.10 (rabbit_dead_letter:update_x_death_header) puts the
        # new or incremented entry first and the remaining entries after it
        # in the reverse of their previous order (it regroups them with a
        # fold that reverses the list). Exactly what a RabbitMQ client sees.
        a, b, stages, _ = self.ping_pong()
        self.assertEqual(stages, [
            [(a, "expired", 1)],
            [(b, "rejected", 1), (a, "expired", 1)],
            [(a, "rejected", 1), (a, "expired", 1), (b, "rejected", 1)],
            [(b, "rejected", 2), (a, "expired", 1), (a, "rejected", 1)],
            [(a, "rejected", 2), (a, "expired", 1), (b, "rejected", 2)],
        ])

    def test_repeat_keeps_time_of_first_death(self):
        q = self.unique("q")
        self.queue(q, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": q})
        self.send(q, "t")
        self.bounce(q)
        p = self.bounce(q)
        first = p.headers["x-death"][0]["time"]
        # wait for the wall clock to pass into the next second
        epoch = first.replace(tzinfo=datetime.timezone.utc).timestamp()
        while time.time() < epoch + 1.05:
            time.sleep(0.05)
        p = self.bounce(q)
        d = p.headers["x-death"]
        self.assertEqual((d[0]["count"], d[0]["time"]), (2, first))
        self.get_one(q)


class TestCycles(DlxCase):
    def test_expiry_into_itself_is_dropped(self):
        # q's DLX is a fanout back to q itself and to a monitor queue: the
        # dead-lettered copy for q closes a cycle without rejection and is
        # dropped, the monitor gets its copy
        x = self.exchange("fanout")
        q = self.queue(arguments={"x-message-ttl": 100, "x-dead-letter-exchange": x})
        mon = self.temp_queue()
        self.ch.queue_bind(q, x)
        self.ch.queue_bind(mon, x)
        self.send(q, "loop")
        inbox, _, _ = self.listen(mon, auto_ack=True)
        self.expect(inbox, 1)
        self.settle(seconds=0.5)                    # several TTLs: nothing comes round
        self.assertEqual(len(inbox), 1)
        self.assertEqual(self.deaths(inbox[0].props), [(q, "expired", 1)])
        self.assertEqual(self.ready(q), 0)

    def test_expiry_into_itself_via_default_exchange(self):
        q = self.unique("q")
        self.queue(q, arguments={"x-message-ttl": 100, "x-dead-letter-exchange": "",
                                 "x-dead-letter-routing-key": q})
        self.send(q, "loop")
        self.wait_ready(q, 0)
        self.settle(seconds=0.5)
        self.assertEqual(self.ready(q), 0)

    def test_two_queue_expiry_cycle_is_broken(self):
        xa, xb = self.exchange("fanout"), self.exchange("fanout")
        a = self.queue(arguments={"x-message-ttl": 100, "x-dead-letter-exchange": xa})
        b = self.queue(arguments={"x-message-ttl": 100, "x-dead-letter-exchange": xb})
        mon = self.temp_queue()
        for q, x in ((b, xa), (mon, xa), (a, xb), (mon, xb)):
            self.ch.queue_bind(q, x)
        inbox, _, _ = self.listen(mon, auto_ack=True)
        self.send(a, "loop")
        self.expect(inbox, 2)
        self.settle(seconds=0.5)
        self.assertEqual([self.deaths(m.props) for m in inbox],
                         [[(a, "expired", 1)], [(b, "expired", 1), (a, "expired", 1)]])
        self.assertEqual((self.ready(a), self.ready(b)), (0, 0))

    def test_rejection_in_cycle_keeps_it_going(self):
        a, b = self.unique("a"), self.unique("b")
        self.queue(a, arguments={"x-message-ttl": 100, "x-dead-letter-exchange": "",
                                 "x-dead-letter-routing-key": b})
        self.queue(b, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": a})
        self.send(a, "round")
        p = self.bounce(b)                           # expired in a, rejected in b
        self.assertEqual(self.deaths(p), [(a, "expired", 1)])
        # back in a it expires again: a -> b -> a has a rejection, so b gets it
        m, p, _ = self.get_one(b)
        self.assertEqual(self.deaths(p), [(a, "expired", 2), (b, "rejected", 1)])
        self.ch.basic_ack(m.delivery_tag)


if __name__ == "__main__":
    harness.main()
