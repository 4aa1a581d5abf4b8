"""test_stream_pace - stream replays while the broker is published to
(stream.replay_share; issue 16).

warrend runs with stream.replay_share = 1: while anything is published,
the consumers replaying streams from disk read for at most 1% of the
broker thread's time, in slices with pauses between them. A pause must
always end in a resume: a consumer replaying a stream from "first" while
another connection publishes without a break gets every message, in
order, and it gets them while that publisher is still going (the pauses
did not hold it back until publishing stopped). Whether the share keeps
publishers at their rate is a benchmark's question
(tests/bench/stream_bench.py, "beside"), not a test's.

The publisher is another process (pika), so this one's consumer is not
kept from the GIL. warrend-only (RabbitMQ has no such setting).
"""
import subprocess
import time

import pika

import harness

N = 20000  # 1 KiB messages: most of them behind the tail memory holds
BODY = b"r" * 1024

FLOODER = r"""
import sys, pika
c = pika.BlockingConnection(pika.ConnectionParameters(
    host=sys.argv[1], port=int(sys.argv[2]), heartbeat=0))
ch = c.channel()
ch.queue_declare(sys.argv[3], arguments={"x-max-length": 1000})
body = b"f" * 1024
while True:
    for _ in range(100):
        ch.basic_publish("", sys.argv[3], body)
    c.process_data_events(0)
"""


class StreamPaceTests(harness.BrokerTestCase):
    broker_args = ("-s", "stream.replay_share=1")

    def setUp(self):
        if self.external:
            self.skipTest("warrend's stream.replay_share")
        self.flooder = None
        self.conns = []

    def tearDown(self):
        if self.flooder:
            if self.flooder.poll() is None:
                self.flooder.kill()
                self.flooder.wait()
            self.flooder.stderr.close()
        for c in self.conns:
            try:
                if c.is_open:
                    c.close()
            except pika.exceptions.AMQPError:
                pass  # (a failed test's leftovers)

    def connection(self):
        c = self.connect()
        self.conns.append(c)
        return c

    def fill(self, ch, q):
        ch.queue_declare(q, durable=True, arguments={"x-queue-type": "stream"})
        for _ in range(N - 1):
            ch.basic_publish("", q, BODY)
        ch.confirm_delivery()  # the last one's confirm covers those before it
        ch.basic_publish("", q, BODY)

    def flood(self, q):
        """Start the publisher into classic queue q; return once it published."""
        self.flooder = subprocess.Popen(
            ["/usr/bin/python3", "-c", FLOODER, harness.HOST, str(self.broker.port), q],
            stderr=subprocess.PIPE)
        ch = self.connection().channel()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.flooder.poll() is not None:
                self.fail("the publisher ended: %s" % self.flooder.stderr.read()[-2000:])
            try:
                if ch.queue_declare(q, passive=True).method.message_count > 0:
                    return
            except pika.exceptions.ChannelClosedByBroker:
                ch = self.connection().channel()  # (not declared yet)
            time.sleep(0.05)
        self.fail("the publisher published nothing in 30 s")

    def replay(self, c, q, deadline_s=60):
        """Consume q from "first" (prefetch 1000, a multiple ack every 500)
        until N messages came: their x-stream-offset headers."""
        ch = c.channel()
        ch.basic_qos(prefetch_count=1000)
        got = []

        def on_msg(chan, m, p, b):
            got.append(p.headers["x-stream-offset"])
            if len(got) % 500 == 0:
                chan.basic_ack(m.delivery_tag, multiple=True)

        ch.basic_consume(q, on_msg, arguments={"x-stream-offset": "first"})
        deadline = time.monotonic() + deadline_s
        while len(got) < N and time.monotonic() < deadline:
            c.process_data_events(0.2)
        return got

    def test_replay_goes_on_while_published_to(self):
        c = self.connection()
        ch = c.channel()
        s, f = self.unique("st"), self.unique("flood")
        self.fill(ch, s)
        self.flood(f)
        got = self.replay(c, s)
        self.assertEqual(len(got), N, "a paused replay was not resumed")
        self.assertEqual(got, list(range(N)))
        self.assertIsNone(self.flooder.poll(),
                          "the publisher stopped: the replay was not tested beside it")
        ch.queue_delete(s)
        ch.queue_delete(f)

    def test_replays_take_turns(self):
        """Two consumers replaying one stream while the broker is published
        to: the reading goes round them, so when one has read it all the
        other is nearly there too."""
        c1, c2 = self.connection(), self.connection()
        ch = c1.channel()
        s, f = self.unique("st"), self.unique("flood")
        self.fill(ch, s)
        self.flood(f)
        got = [[], []]
        for i, c in enumerate((c1, c2)):
            cch = c.channel()
            cch.basic_qos(prefetch_count=1000)

            def on_msg(chan, m, p, b, box=got[i]):
                box.append(p.headers["x-stream-offset"])
                if len(box) % 500 == 0:
                    chan.basic_ack(m.delivery_tag, multiple=True)

            cch.basic_consume(s, on_msg, arguments={"x-stream-offset": "first"})
        deadline = time.monotonic() + 60
        while max(map(len, got)) < N and time.monotonic() < deadline:
            c1.process_data_events(0.01)
            c2.process_data_events(0.01)
        counts = sorted(map(len, got))
        publishing = self.flooder.poll() is None
        # (deleted first: pika's close would nack what it holds, which a
        # stream answers with 540)
        ch.queue_delete(s)
        ch.queue_delete(f)
        self.assertEqual(counts[1], N, "a replay did not finish in 60 s")
        # (measured: 19,588-19,785 of 20,000 taking turns; 8,214-10,258 as
        # before, the consumer that acked or came first reading on)
        self.assertGreater(counts[0], N * 3 // 4,
                           "one replayer got %d of %d while the other read them all"
                           % (counts[0], N))
        self.assertTrue(publishing, "the publisher stopped: the replays were not tested beside it")

    def test_replay_alone(self):
        c = self.connection()
        ch = c.channel()
        s = self.unique("st")
        self.fill(ch, s)
        self.assertEqual(self.replay(c, s), list(range(N)))
        ch.queue_delete(s)


if __name__ == "__main__":
    harness.main()
