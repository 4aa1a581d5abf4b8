"""test_dedup - message deduplication (x-message-deduplication, issue 15).

warrend only: RabbitMQ 3.10 has no deduplication (the third-party
rabbitmq-message-deduplication plugin has a different model: an exchange
type, and queues that drop a duplicate while the first copy is queued), so
every test is skipped when WARREN_TEST_PORT is set.

Checked: queue-level and exchange-level deduplication by the
x-deduplication-header header, a header named by the declare argument,
the message_id property; key expiry (x-cache-ttl, and the x-cache-ttl
message header); the LRU bound (x-cache-size); a duplicate is confirmed
(basic.ack, not nack) and not returned with mandatory; the counters in
/api/queues, /api/exchanges and /metrics; bad arguments are 406; a durable
queue's keys survive a clean restart and kill -9, and a publisher retrying
after kill -9 does not make a second message.
"""
import os
import shutil
import signal
import tempfile
import time
import unittest

import pika
import pika.exceptions as pex

import harness
from mgmtcase import MgmtTestCase, q

HDR = "x-deduplication-header"


def skip_external():
    return unittest.skipIf(os.environ.get("WARREN_TEST_PORT"),
                           "RabbitMQ has no built-in deduplication")


@skip_external()
class DedupTest(MgmtTestCase):
    def setUp(self):
        self.conn = self.connect()
        self.ch = self.conn.channel()
        self.ch.confirm_delivery()

    def tearDown(self):
        try:
            self.conn.close()
        except Exception:
            pass

    def publish(self, key, body, exchange="", headers=None, mandatory=False, **props):
        h = dict(headers or {})
        props.setdefault("delivery_mode", 2)
        self.ch.basic_publish(exchange, key, body,
                              pika.BasicProperties(headers=h or None, **props),
                              mandatory=mandatory)

    def count(self, queue):
        return self.ch.queue_declare(queue, passive=True).method.message_count

    def dedup_queue(self, durable=False, **args):
        name = self.unique("dq")
        a = {"x-message-deduplication": True}
        a.update(args)
        self.ch.queue_declare(name, durable=durable, arguments=a)
        self.addCleanup(self.cleanup_queue, name)
        return name

    def cleanup_queue(self, name):
        try:
            c = self.connect()
            c.channel().queue_delete(name)
            c.close()
        except Exception:
            pass

    def test_queue_level(self):
        qn = self.dedup_queue()
        for i in range(3):
            self.publish(qn, b"a%d" % i, headers={HDR: "job-1"})  # acked each time
        self.publish(qn, b"b", headers={HDR: "job-2"})
        self.publish(qn, b"c")  # no key: never a duplicate
        self.publish(qn, b"c")
        self.assertEqual(self.count(qn), 4)
        m, _, body = self.ch.basic_get(qn, auto_ack=True)
        self.assertEqual(body, b"a0")

    def test_queue_level_other_queues_still_get_it(self):
        qn = self.dedup_queue()
        plain = self.unique("plain")
        x = self.unique("fan")
        self.ch.exchange_declare(x, "fanout", auto_delete=True)
        self.ch.queue_declare(plain, auto_delete=True)
        self.ch.queue_bind(qn, x)
        self.ch.queue_bind(plain, x)
        self.publish("", b"1", exchange=x, headers={HDR: "k"})
        self.publish("", b"2", exchange=x, headers={HDR: "k"}, mandatory=True)
        self.assertEqual(self.count(qn), 1)
        self.assertEqual(self.count(plain), 2)

    def test_exchange_level_and_mandatory(self):
        x = self.unique("dx")
        self.ch.exchange_declare(x, "direct", auto_delete=True,
                                 arguments={"x-message-deduplication": True})
        qn = self.unique("q")
        self.ch.queue_declare(qn, auto_delete=True)
        self.ch.queue_bind(qn, x, "k")
        returned = []
        self.ch.add_on_return_callback(lambda *a: returned.append(a))
        self.publish("k", b"1", exchange=x, headers={HDR: "same"}, mandatory=True)
        # A duplicate: confirmed (no exception), not returned as unroutable.
        self.publish("k", b"2", exchange=x, headers={HDR: "same"}, mandatory=True)
        self.publish("k", b"3", exchange=x, headers={HDR: "other"}, mandatory=True)
        self.conn.process_data_events(0.2)
        self.assertEqual(returned, [])
        self.assertEqual(self.count(qn), 2)
        # Truly unroutable is still returned.
        with self.assertRaises(pex.UnroutableError):
            self.publish("nowhere", b"4", exchange=x, headers={HDR: "new"}, mandatory=True)
        xs = self.get_ok("/api/exchanges/%%2F/%s" % q(x))
        self.assertEqual(xs["messages_deduplicated"], 1)

    def test_custom_header_and_message_id(self):
        qa = self.dedup_queue(**{"x-deduplication-header": "job-id"})
        self.publish(qa, b"1", headers={"job-id": "7"})
        self.publish(qa, b"2", headers={"job-id": "7"})
        self.publish(qa, b"3", headers={HDR: "7"})  # not the header this queue reads
        self.publish(qa, b"4", headers={HDR: "7"})
        self.assertEqual(self.count(qa), 3)
        qb = self.dedup_queue(**{"x-deduplication-key": "message-id"})
        self.publish(qb, b"1", message_id="m-1")
        self.publish(qb, b"2", message_id="m-1")
        self.publish(qb, b"3", message_id="m-2")
        self.publish(qb, b"4", headers={HDR: "m-2"})  # no message_id: no key
        self.assertEqual(self.count(qb), 3)

    def test_ttl_expiry(self):
        qn = self.dedup_queue(**{"x-cache-ttl": 300})
        self.publish(qn, b"1", headers={HDR: "k"})
        self.publish(qn, b"2", headers={HDR: "k"})
        self.assertEqual(self.count(qn), 1)
        # After the TTL the key is forgotten: the next one goes in.
        n = [0]

        def through():
            n[0] += 1
            self.publish(qn, b"again", headers={HDR: "k"})
            return self.count(qn) == 2
        self.wait_for(through, what="key expiry")
        self.assertGreaterEqual(n[0], 1)

    def test_per_message_ttl_header(self):
        qn = self.dedup_queue()  # no TTL: remembered until evicted
        self.publish(qn, b"1", headers={HDR: "short", "x-cache-ttl": 200})
        self.publish(qn, b"2", headers={HDR: "long"})
        self.publish(qn, b"3", headers={HDR: "short"})
        self.assertEqual(self.count(qn), 2)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 0.3:
            self.conn.process_data_events(0.05)
        self.publish(qn, b"4", headers={HDR: "short"})
        self.publish(qn, b"5", headers={HDR: "long"})
        self.assertEqual(self.count(qn), 3)

    def test_lru_size(self):
        qn = self.dedup_queue(**{"x-cache-size": 3})
        for k in ("a", "b", "c"):
            self.publish(qn, b"x", headers={HDR: k})
        self.publish(qn, b"x", headers={HDR: "a"})  # a duplicate, and now most recent
        self.publish(qn, b"x", headers={HDR: "d"})  # evicts b, the least recently used
        self.assertEqual(self.count(qn), 4)
        self.publish(qn, b"x", headers={HDR: "a"})  # still there
        self.publish(qn, b"x", headers={HDR: "b"})  # forgotten: goes in
        self.assertEqual(self.count(qn), 5)

    def test_stats(self):
        qn = self.dedup_queue()
        for _ in range(4):
            self.publish(qn, b"x", headers={HDR: "one"})
        qs = self.get_ok("/api/queues/%%2F/%s" % q(qn))
        self.assertEqual(qs["messages_deduplicated"], 3)
        self.assertEqual(qs["deduplication_cache_size"], 1)
        rows = [r for r in self.get_ok("/api/queues") if r["name"] == qn]
        self.assertEqual(rows[0]["messages_deduplicated"], 3)
        text = self.get("/metrics").body.decode()
        line = 'warren_queue_messages_deduplicated_total{vhost="/",queue="%s"} 3' % qn
        self.assertIn(line, text)
        self.assertIn("warren_dedup_cache_keys", text)

    def test_bad_arguments(self):
        cases = [
            ({"x-cache-size": -1}, "{value_negative,-1}"),
            ({"x-cache-ttl": "10"}, "\"expected integer, got longstr\""),
            ({"x-message-deduplication": "yes"}, "{unacceptable_type,longstr}"),
            ({"x-deduplication-key": "body"}, "invalid_value"),
        ]
        for args, why in cases:
            for kind in ("queue", "exchange"):
                c = self.connect()
                ch = c.channel()
                name = self.unique(kind)
                with self.assertRaises(pex.ChannelClosedByBroker) as cm:
                    if kind == "queue":
                        ch.queue_declare(name, arguments=args)
                    else:
                        ch.exchange_declare(name, "fanout", arguments=args)
                self.assertEqual(cm.exception.reply_code, 406)
                arg = list(args)[0]
                self.assertIn("invalid arg '%s' for %s '%s' in vhost '/': %s"
                              % (arg, kind, name, why), cm.exception.reply_text)
                c.close()


@skip_external()
class DedupDurableTest(harness.BrokerTestCase):
    def publish_conn(self):
        c = self.connect()
        ch = c.channel()
        ch.confirm_delivery()
        return c, ch

    def declare(self, ch, name):
        ch.queue_declare(name, durable=True, arguments={"x-message-deduplication": True})

    def count(self, name):
        c = self.connect()
        n = c.channel().queue_declare(name, passive=True).method.message_count
        c.close()
        return n

    def pub(self, ch, name, key, body=b"x", persistent=True):
        ch.basic_publish("", name, body, pika.BasicProperties(
            delivery_mode=2 if persistent else 1, headers={HDR: key}))

    def check_restart(self, sig):
        name = self.unique("durable")
        c, ch = self.publish_conn()
        self.declare(ch, name)
        self.pub(ch, name, "k1")
        self.pub(ch, name, "k2")
        # k2's message is acked: its key must stay anyway.
        m, _, _ = ch.basic_get(name, auto_ack=False)
        ch.basic_ack(m.delivery_tag)
        c.close()
        self.assertEqual(self.count(name), 1)
        harness.restart(self.broker, sig)
        c, ch = self.publish_conn()
        self.pub(ch, name, "k1")
        self.pub(ch, name, "k2")
        self.pub(ch, name, "k3")
        self.assertEqual(self.count(name), 2)
        c.close()

    def test_clean_restart_keeps_keys(self):
        self.check_restart(signal.SIGTERM)

    def test_kill9_keeps_keys(self):
        self.check_restart(signal.SIGKILL)

    def test_retry_after_kill9(self):
        """A publisher that sent a batch, lost the connection before every
        confirm arrived (the broker died), and sends the whole batch again:
        each job is in the queue once."""
        name = self.unique("retry")
        c, ch = self.publish_conn()
        self.declare(ch, name)
        c.close()
        jobs = ["job-%d" % i for i in range(200)]
        c = self.connect()
        ch = c.channel()
        ch.confirm_delivery()
        for j in jobs[:100]:  # confirmed
            self.pub(ch, name, j)
        # The rest go out unconfirmed (pipelined) as the broker is killed.
        raw = c.channel()
        for j in jobs[100:]:
            raw.basic_publish("", name, b"x", pika.BasicProperties(
                delivery_mode=2, headers={HDR: j}))
        c.process_data_events(0.05)
        os.kill(self.broker.pid, signal.SIGKILL)
        try:
            c.close()
        except Exception:
            pass
        harness.restart(self.broker, signal.SIGKILL)
        c, ch = self.publish_conn()
        for j in jobs:  # the retry: everything again
            self.pub(ch, name, j)
        c.close()
        self.assertEqual(self.count(name), len(jobs))
        c = self.connect()
        ch = c.channel()
        seen = []
        while True:
            m, p, _ = ch.basic_get(name, auto_ack=True)
            if m is None:
                break
            seen.append(p.headers[HDR])
        c.close()
        self.assertEqual(sorted(seen), sorted(jobs))

    def test_transient_message_key_not_kept(self):
        """A non-persistent message is not journaled, nor is its key."""
        name = self.unique("transient")
        c, ch = self.publish_conn()
        self.declare(ch, name)
        self.pub(ch, name, "t", persistent=False)
        self.pub(ch, name, "t", persistent=False)
        c.close()
        self.assertEqual(self.count(name), 1)
        harness.restart(self.broker, signal.SIGTERM)
        self.assertEqual(self.count(name), 0)
        c, ch = self.publish_conn()
        self.pub(ch, name, "t", persistent=False)
        c.close()
        self.assertEqual(self.count(name), 1)

    def test_quorum_transient_key_kept(self):
        """A quorum queue journals a transient message, and its key with it."""
        name = self.unique("qq")
        c, ch = self.publish_conn()
        ch.queue_declare(name, durable=True, arguments={"x-queue-type": "quorum",
                                                         "x-message-deduplication": True})
        self.pub(ch, name, "t", persistent=False)
        self.pub(ch, name, "t", persistent=False)
        c.close()
        self.assertEqual(self.count(name), 1)
        harness.restart(self.broker, signal.SIGKILL)
        self.assertEqual(self.count(name), 1)
        c, ch = self.publish_conn()
        self.pub(ch, name, "t", persistent=False)
        self.pub(ch, name, "u", persistent=False)
        c.close()
        self.assertEqual(self.count(name), 2)


_DIR = tempfile.mkdtemp(prefix="warren-dedup-")
_CONF = os.path.join(_DIR, "warren.conf")
with open(_CONF, "w") as f:
    f.write("journal.segment_size = 256KiB\njournal.fsync_interval = 20\n")


@skip_external()
class DedupCompactionTest(harness.BrokerTestCase):
    """Keys outlive their acked messages: their segments stay until
    compaction copies the live keys forward, after which the journal
    shrinks and the keys still survive kill -9."""
    broker_args = ("-c", _CONF)

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(_DIR, ignore_errors=True)

    def files(self):
        """Segments holding records (not the next one, prepared: all zeros)."""
        d = os.path.join(self.broker.data_dir, "journal")
        out = []
        for n in os.listdir(d):
            if n.endswith(".wjl"):
                with open(os.path.join(d, n), "rb") as f:
                    if f.read().strip(b"\0"):
                        out.append(n)
        return out

    def test_keys_compacted_and_kept(self):
        name = self.unique("cq")
        c = self.connect()
        ch = c.channel()
        ch.confirm_delivery()
        ch.queue_declare(name, durable=True, arguments={"x-message-deduplication": True,
                                                        "x-cache-size": 10000})
        keys = ["job-%d" % i for i in range(3000)]
        for k in keys:
            ch.basic_publish("", name, b"w" * 1024,
                             pika.BasicProperties(delivery_mode=2, headers={HDR: k}))
        peak = len(self.files())
        while ch.basic_get(name, auto_ack=True)[0] is not None:
            pass
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(self.files()) > 3:
            ch.queue_declare(name, durable=True, passive=True)
            time.sleep(0.05)
        self.assertGreaterEqual(peak, 10)
        self.assertLessEqual(len(self.files()), 3)
        self.assertIn("dedup keys out of segment", self.broker.log_text())
        c.close()
        harness.restart(self.broker, signal.SIGKILL)
        self.assertIn("3000 live ones restored", self.broker.log_text())
        c = self.connect()
        ch = c.channel()
        ch.confirm_delivery()
        for k in keys[::10]:
            ch.basic_publish("", name, b"again",
                             pika.BasicProperties(delivery_mode=2, headers={HDR: k}))
        self.assertEqual(ch.queue_declare(name, passive=True).method.message_count, 0)
        c.close()


if __name__ == "__main__":
    harness.main()
