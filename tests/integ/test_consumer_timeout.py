"""test_consumer_timeout - delivery acknowledgement timeout (issue 15).

A delivery that stays unacknowledged longer than its timeout gets its
channel closed with 406 PRECONDITION_FAILED and RabbitMQ's text
("delivery acknowledgement on channel N timed out. Timeout value used: T
ms. This timeout value can be configured, see consumers doc guide to learn
more", class and method 0); the channel's unacked messages go back to
their queues (redelivered, x-delivery-count counted where the queue has
x-delivery-limit). Only the channel closes. Consumer deliveries and
basic.get with manual ack count, no-ack ones do not. The timeout is
`consumer_timeout` (warren.conf, `-s consumer_timeout=N`; 0 or false: none)
or, for deliveries from a queue declared with it, `x-consumer-timeout`.

Timing: t0 is taken before the message can reach the broker (before the
publish, or before basic.get), so the broker's delivery time is after t0
and "closed after t0 + T" is a strict lower bound. Warren checks every
250 ms; the upper bound (T + 3 s) leaves room for a loaded machine.

Against RabbitMQ 3.10 (WARREN_TEST_PORT=PORT): its consumer_timeout is read
when a channel opens and checked on a channel tick of 60 s, so set both
first, e.g.
    rabbitmq-local.sh ctl PORT eval 'application:set_env(rabbit,
        consumer_timeout, 1000), application:set_env(rabbit,
        channel_tick_interval, 1000).'
(RMQ_CONF with `consumer_timeout = 1000` sets the first one only). Then the
GlobalTimeout tests pass there too, but for these RabbitMQ differences,
skipped on it:
  * x-consumer-timeout is RabbitMQ 3.12's: 3.10 accepts and ignores it.
    3.12 reads it as Warren does (not checked at declare, not compared on
    redeclare; not an integer: no timeout) but expires 0 at once, where
    Warren's 0 means no timeout as consumer_timeout's 0 does.
  * consumer_timeout = 0 (DisabledTimeout) expires everything at RabbitMQ's
    next tick; Warren's 0 or false disables.
  * the log line and warren_consumer_timeouts_total are Warren's.
"""
import decimal
import os
import shutil
import signal
import tempfile
import time

import pika.exceptions as pex

import harness
from amqpcase import PRECONDITION_FAILED, SemanticsCase

T = 1.0  # consumer_timeout of GlobalTimeout, seconds
SLACK = 3.0  # past the timeout, the close must have come within this
TEXT = ("PRECONDITION_FAILED - delivery acknowledgement on channel %d timed out. "
        "Timeout value used: %d ms. This timeout value can be configured, "
        "see consumers doc guide to learn more")


class TimeoutCase(SemanticsCase):
    def held(self, q, ch=None, conn=None, prefetch=None):
        """A consumer that never acks: (inbox, channel)."""
        inbox, ch, _ = self.listen(q, ch=ch, conn=conn, prefetch=prefetch)
        return inbox, ch

    def wait_closed(self, ch, t0, timeout, conns=None):
        """Pump until the broker closed ch; return (seconds since t0, reason)."""
        self.pump(lambda: ch.is_closed, conns, timeout,
                  "channel %d closed by the broker" % ch.channel_number)
        took = time.monotonic() - t0
        # pika keeps a broker's channel.close here (BlockingChannel has no
        # public accessor for it)
        reason = ch._closing_reason
        self.assertIsInstance(reason, pex.ChannelClosedByBroker, repr(reason))
        return took, reason

    def assertTimedOut(self, ch, t0, timeout_s, conns=None):
        """ch closed with RabbitMQ's 406 after timeout_s, within SLACK more."""
        took, reason = self.wait_closed(ch, t0, timeout_s + SLACK + 2, conns)
        self.assertEqual(reason.reply_code, PRECONDITION_FAILED)
        self.assertEqual(reason.reply_text, TEXT % (ch.channel_number, round(timeout_s * 1000)))
        self.assertGreater(took, timeout_s, "closed before the timeout")
        self.assertLess(took, timeout_s + SLACK, "closed too late")
        if os.environ.get("WARREN_TEST_VERBOSE"):
            print(" closed %.3f s after t0 (timeout %.3f s)" % (took, timeout_s), end="")
        return took

    def assertStaysOpen(self, ch, seconds, conns=None):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.settle(conns, 0.05)
            self.assertTrue(ch.is_open, "channel closed: %r" % getattr(ch, "_closing_reason", None))

    def declare(self, timeout=None, **args):
        if timeout is not None:
            args["x-consumer-timeout"] = timeout
        return self.queue(arguments=args or None)

    def log_lines(self, needle):
        return [l for l in self.broker.log_text().splitlines() if needle in l]


class GlobalTimeout(TimeoutCase):
    broker_args = ("-s", "consumer_timeout=%d" % (T * 1000))

    def test_unacked_delivery_closes_channel(self):
        q = self.declare()
        inbox, ch = self.held(q)
        other = self.conn.channel()  # same connection: must stay usable
        t0 = time.monotonic()
        self.send(q, "job")
        self.expect(inbox, 1)
        self.assertFalse(inbox[0].redelivered)
        self.assertTimedOut(ch, t0, T)
        self.assertTrue(self.conn.is_open)
        self.assertTrue(other.is_open)
        # requeued, redelivered=true, to a consumer on the other channel
        again, _, _ = self.listen(q, ch=other, auto_ack=True)
        self.expect(again, 1)
        self.assertEqual((again[0].body, again[0].redelivered), ("job", True))
        other.queue_declare(q, passive=True)
        if not self.external:  # one warning line, and no other about it
            lines = self.log_lines(q)
            self.assertEqual(len(lines), 1, lines)
            self.assertIn(" warning [", lines[0])
            self.assertIn("] channel %d: delivery tag 1 from queue '%s' in vhost '/' (consumer '"
                          % (ch.channel_number, q), lines[0])
            self.assertIn("not acknowledged within 1000 ms (consumer_timeout): closing the "
                          "channel with 406, 1 unacked messages requeued", lines[0])

    def test_every_unacked_message_requeued(self):
        q = self.declare()
        inbox, ch = self.held(q, prefetch=3)
        t0 = time.monotonic()
        self.send_all(q, ["a", "b", "c", "d"])
        self.expect(inbox, 3)
        ch.basic_ack(inbox[1].dtag)  # b is done in time, d takes its place
        self.expect(inbox, 4)
        self.assertTimedOut(ch, t0, T)
        got = self.get_all(q)
        self.assertEqual(sorted((m.body, m.redelivered) for m in got),
                         [("a", True), ("c", True), ("d", True)])

    def test_acking_in_time_keeps_channel_open(self):
        """Each message held for 60% of T, for more than three periods."""
        q = self.declare()
        inbox, ch = self.held(q, prefetch=1)
        n = 6
        self.send_all(q, [str(i) for i in range(n)])
        acked = 0
        while acked < n:
            self.pump(lambda: len(inbox) > acked, timeout=T + SLACK,
                      what="delivery %d" % acked)
            m = inbox[acked]
            self.assertFalse(m.redelivered)
            self.settle(seconds=0.6 * T)
            self.assertTrue(ch.is_open)
            ch.basic_ack(m.dtag)
            acked += 1
        self.assertStaysOpen(ch, T + 0.5)  # nothing unacked: nothing to expire
        self.assertEqual(self.ready(q), 0)

    def test_no_ack_consumer_not_counted(self):
        q = self.declare()
        inbox, ch, _ = self.listen(q, auto_ack=True)
        self.send(q, "job")
        self.expect(inbox, 1)
        self.assertStaysOpen(ch, T + 1.0)

    def test_basic_get_counted(self):
        """RabbitMQ counts a basic.get with manual ack as it counts a
        consumer delivery; auto-ack gets are not counted."""
        q = self.declare()
        self.send_all(q, ["one", "two"])
        free = self.conn.channel()
        m, _, b = free.basic_get(q, auto_ack=True)
        self.assertEqual(b, b"one")
        ch = self.conn.channel()
        t0 = time.monotonic()
        m, _, b = ch.basic_get(q, auto_ack=False)
        self.assertEqual((b, m.redelivered), (b"two", False))
        self.assertTimedOut(ch, t0, T)
        self.assertTrue(free.is_open)
        m, _, b = free.basic_get(q, auto_ack=True)
        self.assertEqual((b, m.redelivered), (b"two", True))

    def test_other_connections_and_channels_unaffected(self):
        q1, q2 = self.declare(), self.declare()
        c2 = self.new_connection()
        inbox1, ch1 = self.held(q1)
        inbox2, ch2, _ = self.listen(q2, conn=c2)
        t0 = time.monotonic()
        self.send(q1, "stuck")
        self.send(q2, "fine")
        self.expect(inbox1, 1, [self.conn, c2])
        self.expect(inbox2, 1, [self.conn, c2])
        ch2.basic_ack(inbox2[0].dtag)
        self.assertTimedOut(ch1, t0, T, [self.conn, c2])
        self.assertTrue(ch2.is_open and c2.is_open and self.conn.is_open)
        self.send(q2, "more")
        self.expect(inbox2, 2, [self.conn, c2])
        ch2.basic_ack(inbox2[1].dtag)

    def test_delivery_limit_counts_the_timed_out_delivery(self):
        args = {"x-delivery-limit": 5}
        if self.is_rabbitmq:  # 3.10: quorum queues only
            args["x-queue-type"] = "quorum"
            q = self.queue(self.unique("dl"), durable=True, arguments=args)
        else:
            q = self.queue(arguments=args)
        inbox, ch = self.held(q)
        t0 = time.monotonic()
        self.send(q, "job")
        self.expect(inbox, 1)
        self.assertTimedOut(ch, t0, T)
        again, _, _ = self.listen(q, auto_ack=True)
        self.expect(again, 1)
        self.assertTrue(again[0].redelivered)
        self.assertEqual(again[0].props.headers.get("x-delivery-count"), 1)

    # ---- x-consumer-timeout (RabbitMQ 3.12; 3.10 ignores it) ----

    def test_queue_argument_bigger(self):
        self.warren_only("RabbitMQ 3.10 ignores x-consumer-timeout")
        q = self.declare(timeout=3000)
        inbox, ch = self.held(q)
        t0 = time.monotonic()
        self.send(q, "job")
        self.expect(inbox, 1)
        self.assertStaysOpen(ch, T + 1.0 - (time.monotonic() - t0))
        self.assertTimedOut(ch, t0, 3.0)

    def test_queue_argument_smaller(self):
        self.warren_only("RabbitMQ 3.10 ignores x-consumer-timeout")
        q = self.declare(timeout=400)
        inbox, ch = self.held(q)
        t0 = time.monotonic()
        self.send(q, "job")
        self.expect(inbox, 1)
        self.assertTimedOut(ch, t0, 0.4)  # the text says 400 ms

    def test_queue_argument_zero_disables(self):
        self.warren_only("RabbitMQ 3.12 expires x-consumer-timeout 0 at its next tick")
        q = self.declare(timeout=0)
        inbox, ch = self.held(q)
        self.send(q, "job")
        self.expect(inbox, 1)
        self.assertStaysOpen(ch, T + 1.0)

    def test_queues_with_different_timeouts_on_one_channel(self):
        """The first delivery (from a queue with a long timeout) is not the
        one that expires first: the later one, under consumer_timeout, is."""
        self.warren_only("RabbitMQ 3.10 ignores x-consumer-timeout")
        slow, fast = self.declare(timeout=20000), self.declare()
        ch = self.conn.channel()
        inbox, _, _ = self.listen(slow, ch=ch)
        inbox2, _, _ = self.listen(fast, ch=ch)
        self.send(slow, "slow")
        self.expect(inbox, 1)
        self.settle(seconds=0.3)
        t0 = time.monotonic()
        self.send(fast, "fast")
        self.expect(inbox2, 1)
        self.assertTimedOut(ch, t0, T)
        self.assertEqual(self.ready(slow), 1)
        self.assertEqual(self.ready(fast), 1)

    def test_bad_values_accepted_as_rabbitmq_does(self):
        """RabbitMQ 3.12 neither checks x-consumer-timeout nor compares it on
        redeclaration; a value that is not an integer means no timeout, a
        negative one expires at the first check. 3.10 ignores the argument:
        the declares succeed there too."""
        q = self.declare(timeout="soon")
        self.ch.queue_declare(q, arguments={"x-consumer-timeout": 5})  # not compared
        self.ch.queue_declare(q)
        neg = self.declare(timeout=-5)
        self.declare(timeout=decimal.Decimal("1.5"))
        self.declare(timeout=True)
        self.warren_only("RabbitMQ 3.10 ignores x-consumer-timeout")
        inbox, ch = self.held(q)
        self.send(q, "job")
        self.expect(inbox, 1)
        self.assertStaysOpen(ch, T + 1.0)
        inbox, ch = self.held(neg)
        t0 = time.monotonic()
        self.send(neg, "job")
        self.expect(inbox, 1)
        took, reason = self.wait_closed(ch, t0, SLACK + 2)
        self.assertEqual((reason.reply_code, reason.reply_text),
                         (PRECONDITION_FAILED, TEXT % (ch.channel_number, 1)))
        self.assertLess(took, SLACK)


class DisabledTimeout(TimeoutCase):
    """consumer_timeout = false (0 is the same): no limit, but a queue's
    x-consumer-timeout still applies to its deliveries."""
    broker_args = ("-s", "consumer_timeout=false")

    def setUp(self):
        super().setUp()
        self.warren_only("RabbitMQ's consumer_timeout 0 expires at the next tick")

    def test_disabled(self):
        q = self.declare()
        inbox, ch = self.held(q)
        self.send(q, "job")
        self.expect(inbox, 1)
        self.assertStaysOpen(ch, 2.5)

    def test_queue_argument_applies(self):
        q = self.declare(timeout=1000)
        inbox, ch = self.held(q)
        t0 = time.monotonic()
        self.send(q, "job")
        self.expect(inbox, 1)
        self.assertTimedOut(ch, t0, 1.0)


class ReloadTimeout(TimeoutCase):
    """consumer_timeout reloaded by SIGHUP (warrend only: it rewrites
    warrend's configuration file). A new value applies to the deliveries
    waiting too; those made while no timeout applied count from the reload."""

    @classmethod
    def setUpClass(cls):
        cls.conf_dir = tempfile.mkdtemp(prefix="warren-ct-")
        cls.conf = cls.conf_dir + "/warren.conf"
        with open(cls.conf, "w") as f:
            f.write("consumer_timeout = 3000\n")
        cls.broker_args = ("-c", cls.conf)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.conf_dir, ignore_errors=True)

    def setUp(self):
        super().setUp()
        if self.external:
            self.skipTest("warrend only: rewrites its configuration file")

    def reload(self, value):
        """Rewrite the file, SIGHUP, and wait for the reload's log line."""
        before = len(self.log_lines("configuration reloaded"))
        with open(self.conf, "w") as f:
            f.write("consumer_timeout = %s\n" % value)
        self.broker.proc.send_signal(signal.SIGHUP)
        self.pump(lambda: len(self.log_lines("configuration reloaded")) > before,
                  what="the reload of consumer_timeout = %s" % value)

    def test_lowered_applies_to_waiting_deliveries(self):
        q = self.declare()
        inbox, ch = self.held(q)
        t0 = time.monotonic()
        self.send(q, "job")
        self.expect(inbox, 1)
        self.assertStaysOpen(ch, 1.2 - (time.monotonic() - t0))
        self.reload(1000)  # the delivery is older than that already
        took = self.assertTimedOut(ch, t0, 1.0)
        self.assertLess(took, 3.0, "closed by the old 3000 ms, not the reloaded 1000")
        self.reload(3000)

    def test_enabled_counts_from_the_reload(self):
        self.reload("false")
        q = self.declare()
        inbox, ch = self.held(q)
        self.send(q, "job")
        self.expect(inbox, 1)
        self.assertStaysOpen(ch, 1.2)
        t0 = time.monotonic()  # the reload is after this
        self.reload(1000)
        self.assertTimedOut(ch, t0, 1.0)
        self.reload(3000)


if __name__ == "__main__":
    harness.main()
