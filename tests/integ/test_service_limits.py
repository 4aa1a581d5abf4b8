"""test_service_limits - the limits an operator sets in warren.conf, with
RabbitMQ's reply codes and texts, each refusal logged (issue 13).

- max_message_size: a content header announcing a larger body closes the
  channel with 406 PRECONDITION_FAILED and RabbitMQ's text at once, before
  any body is sent (RabbitMQ 3.10 waits for the whole body, then refuses
  with the same code and text); the connection goes on.
- consumer_max_per_channel (RabbitMQ 3.12.14+; 3.10 has no such limit):
  one consumer too many closes the connection with 530 NOT_ALLOWED
  "reached maximum (N) of consumers per channel"; a reused tag still gets
  its own 530.
- channel_max: one channel more than negotiated closes the connection with
  530 and RabbitMQ's text (this one also runs against RabbitMQ, with
  WARREN_TEST_PORT, since it needs no setting).
- SIGHUP changes max_message_size for the next publish.
"""
import os
import signal
import tempfile
import time
import unittest

import harness
import rawamqp as r

CONF_DIR = tempfile.mkdtemp(prefix="warren-limits-")
CONF = os.path.join(CONF_DIR, "warren.conf")
with open(CONF, "w") as f:
    f.write("max_message_size = 1MiB\nconsumer_max_per_channel = 2\n")


def wait_for(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


class Limits(harness.BrokerTestCase):
    broker_args = ("-c", CONF)

    def peer(self, **kw):
        return r.open_peer(self.broker.host, self.broker.port, **kw)

    @staticmethod
    def declare(p, ch, name="", passive=False):
        """queue.declare (exclusive, or passive) on channel ch: (name,
        message count)."""
        p.send(r.queue_declare(ch, name, exclusive=not passive, passive=passive))
        m = p.recv_method()
        assert m[1:3] == (50, 11), m
        n = m[3][0]
        return m[3][1:1 + n].decode(), int.from_bytes(m[3][1 + n:5 + n], "big")

    def test_channel_max(self):
        p = self.peer(channel_max=2)
        p.open_channel(1)
        p.open_channel(2)
        p.send(r.method(3, 20, 10, r.sstr("")))
        self.assertEqual(p.wait_close(), (
            "close", 0, 530, "NOT_ALLOWED - number of channels opened (2) has reached the "
            "negotiated channel_max (2)", 0, 0))
        if not self.external:
            self.assertTrue(wait_for(lambda: "connection error 530: NOT_ALLOWED - number of "
                                             "channels opened (2)" in self.broker.log_text()))

    def test_max_message_size_refused_on_the_header(self):
        if self.external:
            self.skipTest("needs max_message_size = 1MiB")
        p = self.peer()
        for ch in (1, 2, 3):
            p.open_channel(ch)
        # The header alone: the refusal comes before any body is sent.
        p.send(r.basic_publish(1, "", "nowhere") + r.content_header(1, 1024 * 1024 + 1))
        self.assertEqual(p.wait_close(5), (
            "channel-close", 1, 406, "PRECONDITION_FAILED - message size 1048577 is larger than "
            "configured max size 1048576", 60, 40))
        # A client that sends the body straight after the header: the body
        # is discarded, the connection and its other channels go on, and
        # exactly the limit is accepted.
        p.send(r.publish(2, "", "nowhere", b"x" * (1024 * 1024 + 1), frame_max=p.frame_max))
        self.assertEqual(p.wait_close(5)[:4], ("channel-close", 2, 406,
                         "PRECONDITION_FAILED - message size 1048577 is larger than "
                         "configured max size 1048576"))
        q, _ = self.declare(p, 3)
        p.send(r.publish(3, "", q, b"y" * (1024 * 1024), frame_max=p.frame_max))
        self.assertEqual(self.declare(p, 3, q, passive=True), (q, 1))
        p.close()
        self.assertTrue(wait_for(lambda: "channel 1 error: PRECONDITION_FAILED - message size "
                                         "1048577" in self.broker.log_text()))

    def test_consumer_max_per_channel(self):
        if self.external:
            self.skipTest("RabbitMQ 3.10 has no consumer_max_per_channel")
        p = self.peer()
        p.open_channel(1)
        q, _ = self.declare(p, 1)
        for tag in ("a", "b"):
            p.send(r.basic_consume(1, q, tag=tag))
            self.assertEqual(p.recv_method()[1:3], (60, 21))
        p.send(r.basic_consume(1, q, tag="c"))
        self.assertEqual(p.wait_close(), (
            "close", 0, 530, "NOT_ALLOWED - reached maximum (2) of consumers per channel", 60, 20))
        self.assertTrue(wait_for(lambda: "reached maximum (2) of consumers per channel"
                                 in self.broker.log_text()))
        # Another channel has its own count; a reused tag at the limit gets
        # the reuse error, as in RabbitMQ.
        p = self.peer()
        p.open_channel(1)
        p.open_channel(2)
        q, _ = self.declare(p, 1)
        for ch, tag in ((1, "a"), (1, "b"), (2, "a"), (2, "b")):
            p.send(r.basic_consume(ch, q, tag=tag))
            self.assertEqual(p.recv_method()[1:3], (60, 21))
        p.send(r.basic_consume(2, q, tag="a"))
        self.assertEqual(p.wait_close(), (
            "close", 0, 530, "NOT_ALLOWED - attempt to reuse consumer tag 'a'", 60, 20))

    def test_sighup_changes_max_message_size(self):
        if self.external:
            self.skipTest("signals the broker")
        with open(CONF, "w") as f:
            f.write("max_message_size = 100\nconsumer_max_per_channel = 2\n")
        try:
            self.broker.proc.send_signal(signal.SIGHUP)
            self.assertTrue(wait_for(lambda: "max_message_size changed from '1MiB' to '100'"
                                     in self.broker.log_text()))
            p = self.peer()
            p.open_channel(1)
            p.send(r.basic_publish(1, "", "nowhere") + r.content_header(1, 101))
            self.assertEqual(p.wait_close(5)[:4], ("channel-close", 1, 406,
                             "PRECONDITION_FAILED - message size 101 is larger than configured "
                             "max size 100"))
            p.close()
        finally:
            with open(CONF, "w") as f:
                f.write("max_message_size = 1MiB\nconsumer_max_per_channel = 2\n")
            self.broker.proc.send_signal(signal.SIGHUP)
            self.assertTrue(wait_for(lambda: "max_message_size changed from '100' to '1MiB'"
                                     in self.broker.log_text()))


if __name__ == "__main__":
    harness.main()
