"""test_memory_return - memory goes back to the system after a burst
(broker.c's trims, net/io.c's hand-back; docs/ARCHITECTURE.md):

- A burst through a queue at its max-length never makes the messages'
  bytes fall, yet leaves free holes: once the broker goes quiet it trims
  (the "debug returned freed memory" line).
- With I/O threads the blocks they assembled are freed on them: after a
  queue of many small messages is deleted, RSS comes back near idle, which
  needs the threads to give their own heaps back after the core's trim.

warrend-only: it reads the broker's log and RSS (RSS not under sanitizers,
whose allocators replace glibc's).
"""
import os
import time

import harness
import rawamqp as r

TRIMMED = "returned freed memory to the system"


class MemoryReturn(harness.BrokerTestCase):
    broker_args = ("-s", "io_threads=2", "-s", "io_threads.placement=threads")

    def setUp(self):
        if self.external:
            self.skipTest("reads warrend's log and RSS")

    def peer(self):
        p = r.open_peer(self.broker.host, self.broker.port, channel_max=2047, timeout=60)
        p.open_channel(1)
        return p

    def sync(self, p, q):
        """A passive declare answered: every publish before it is taken."""
        p.send(r.queue_declare(1, q, passive=True))
        while True:
            f = p.recv_frame_within(60)
            self.assertNotIn(f, ("timeout", None))
            if f[0] == 1 and f[2][:4] == b"\x00\x32\x00\x0b":
                return

    def publish(self, p, q, n, size):
        one = r.publish(1, "", q, b"x" * size)
        for _ in range(0, n, 10000):
            p.send(one * 10000)
        self.sync(p, q)

    def test_maxlen_burst_trimmed_when_quiet(self):
        p = self.peer()
        q = self.unique("maxlen")
        p.send(r.queue_declare(1, q, arguments={"x-max-length": 100}))
        self.sync(p, q)
        trims = self.broker.log_text().count(TRIMMED)
        self.publish(p, q, 3000, 4096)  # 12 MB through, 400 KB kept
        harness.wait_for(lambda: self.broker.log_text().count(TRIMMED) > trims, 15,
                         "a trim after the burst through the max-length queue")
        p.close()

    def test_deleted_small_messages_give_memory_back(self):
        if os.environ.get("WARREN_SANITIZERS"):
            self.skipTest("a sanitizer's allocator replaces glibc's arenas")
        p = self.peer()
        q = self.unique("small")
        p.send(r.queue_declare(1, q))
        self.sync(p, q)
        time.sleep(1.5)
        idle = self.broker.rss_kib()
        self.publish(p, q, 400000, 16)
        full = self.broker.rss_kib()
        self.assertGreater(full - idle, 20000, "the burst should take tens of MB")
        p.send(r.method(1, 50, 40, b"\x00\x00" + r.sstr(q) + b"\x00"))  # queue.delete
        harness.wait_for(lambda: self.broker.rss_kib() < idle + 6000, 15,
                         "RSS back within 6 MB of idle (was %d KiB, %d KiB full)"
                         % (idle, full))
        p.close()


if __name__ == "__main__":
    harness.main()
