"""test_paging - a durable queue longer than memory should allow keeps its
persistent bodies on disk (issue 5: "keep the index in memory, the body on
disk").

Past WR_PAGE_AFTER (10,000) messages, the bodies of journaled messages in a
durable queue leave memory once their record is written, and are read back
from the journal when a consumer needs them; recovered messages start with
their bodies on disk. The test publishes 30,000 persistent 1 KiB messages
(30 MB of bodies), checks the broker holds far less than that, kills and
restarts it, checks again, and reads every message back intact and in
order. warrend-only (it restarts the broker and reads its RSS).
"""
import os
import signal

import pika

import harness

N = 30000
BODY = 1024


def body(i):
    return (b"%08d" % i) * (BODY // 8)


class PagingTests(harness.BrokerTestCase):

    def test_long_durable_queue_keeps_bodies_on_disk(self):
        if self.external:
            self.skipTest("restarts the broker and reads its RSS")
        rss0 = self.broker.rss_kib()
        c = self.connect()
        ch = c.channel()
        q = self.unique("paged")
        ch.queue_declare(q, durable=True)
        ch.confirm_delivery()
        props = pika.BasicProperties(delivery_mode=2)
        for i in range(N):
            ch.basic_publish("", q, body(i), props)
        self.assertEqual(ch.queue_declare(q, durable=True, passive=True).method.message_count, N)
        c.close()
        grown = self.broker.rss_kib() - rss0
        print("  RSS grew by %d KiB for %d KiB of bodies" % (grown, N * BODY // 1024))
        sanitizers = bool(os.environ.get("WARREN_SANITIZERS"))
        if not sanitizers:
            self.assertLess(grown, N * BODY // 1024 * 2 // 3, "bodies were not paged out")

        harness.restart(self.broker, signal.SIGKILL)
        after = self.broker.rss_kib()
        print("  RSS after recovery %d KiB" % after)
        if not sanitizers:
            self.assertLess(after - rss0, N * BODY // 1024 // 2, "recovery loaded every body")

        c = self.connect()
        ch = c.channel()
        self.assertEqual(ch.queue_declare(q, durable=True, passive=True).method.message_count, N)
        bad = []
        for i in range(N):
            m, _, b = ch.basic_get(q, auto_ack=True)
            self.assertIsNotNone(m, "message %d missing" % i)
            if b != body(i):
                bad.append(i)
        self.assertEqual(bad, [])
        self.assertEqual(ch.queue_declare(q, durable=True, passive=True).method.message_count, 0)
        ch.queue_delete(q)
        c.close()


if __name__ == "__main__":
    harness.main()
