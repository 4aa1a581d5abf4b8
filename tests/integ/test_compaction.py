"""test_compaction - journal segments are deleted when their messages are
gone, and a mostly dead oldest segment is compacted (issue 5).

warrend runs with journal.segment_size = 256KiB. One persistent message
("pinned") is published first and never consumed, then thousands more that
are consumed and acked: without compaction the pinned message would keep
its segment and every later one on disk. The test checks that the journal
shrinks back to a few segments, that the pinned message survives a SIGKILL
and restart intact, and that a message published later does too.
warrend-only (it reads the data directory and restarts the broker).
"""
import os
import shutil
import signal
import tempfile
import time

import pika

import harness

_DIR = tempfile.mkdtemp(prefix="warren-compact-")
_CONF = os.path.join(_DIR, "warren.conf")
with open(_CONF, "w") as f:
    f.write("journal.segment_size = 256KiB\njournal.fsync_interval = 20\n")


def journal_files(b):
    d = os.path.join(b.data_dir, "journal")
    return sorted(n for n in os.listdir(d) if n.endswith(".wjl") and
                  os.path.getsize(os.path.join(d, n)) > 0)


class CompactionTests(harness.BrokerTestCase):
    broker_args = ("-c", _CONF)

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(_DIR, ignore_errors=True)

    def test_pinned_message_does_not_keep_the_journal(self):
        if self.external:
            self.skipTest("reads warrend's data directory")
        c = self.connect()
        ch = c.channel()
        pinned, work = self.unique("pinned"), self.unique("work")
        ch.queue_declare(pinned, durable=True)
        ch.queue_declare(work, durable=True)
        ch.confirm_delivery()
        props = pika.BasicProperties(delivery_mode=2)
        ch.basic_publish("", pinned, b"keep me", props)
        # ~4 MB through the work queue: 16 segments' worth of 1 KiB messages
        for i in range(4000):
            ch.basic_publish("", work, b"w" * 1024, props)
        peak = len(journal_files(self.broker))
        while True:
            m, _, _ = ch.basic_get(work, auto_ack=True)
            if m is None:
                break
        ch.basic_publish("", pinned, b"later", props)
        # compaction runs a few hundred messages per loop turn: give it turns
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(journal_files(self.broker)) > 3:
            ch.queue_declare(work, durable=True, passive=True)
            time.sleep(0.05)
        files = journal_files(self.broker)
        print("  journal segments: %d at the peak, %d after compaction" % (peak, len(files)))
        self.assertGreaterEqual(peak, 10)
        self.assertLessEqual(len(files), 3, files)
        self.assertIn("compaction moved", self.broker.log_text())
        c.close()

        harness.restart(self.broker, signal.SIGKILL)
        self.assertIn("compaction copies", self.broker.log_text())
        c = self.connect()
        ch = c.channel()
        got = []
        while True:
            m, _, b = ch.basic_get(pinned, auto_ack=True)
            if m is None:
                break
            got.append(b)
        self.assertEqual(got, [b"keep me", b"later"])
        self.assertEqual(ch.queue_declare(work, durable=True, passive=True).method.message_count, 0)
        c.close()


    def test_deleted_vhost_frees_its_journal(self):
        """Deleting a vhost (management API) drops its durable messages
        from the journal: its segments go, while a message of another
        vhost written between them survives a SIGKILL (issue 10)."""
        if self.external:
            self.skipTest("reads warrend's data directory")
        import base64
        import urllib.request
        mport = harness.free_port()
        auth = "Basic " + base64.b64encode(b"guest:guest").decode()

        def api(method, path, body=None):
            req = urllib.request.Request("http://127.0.0.1:%d%s" % (mport, path), method=method,
                                         data=body, headers={"Authorization": auth,
                                                             "Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status

        with harness.broker(("-c", _CONF, "--mgmt-port", str(mport))) as b:
            harness.wait_port(mport, b.proc)
            vh = self.unique("vh")
            self.assertEqual(api("PUT", "/api/vhosts/" + vh, b"{}"), 201)
            c = pika.BlockingConnection(pika.ConnectionParameters(
                "127.0.0.1", b.port, vh, heartbeat=0))
            ch = c.channel()
            ch.confirm_delivery()
            ch.queue_declare("q", durable=True)
            props = pika.BasicProperties(delivery_mode=2)
            home = pika.BlockingConnection(pika.ConnectionParameters(
                "127.0.0.1", b.port, heartbeat=0))
            hch = home.channel()
            hch.confirm_delivery()
            hch.queue_declare("home", durable=True)
            for i in range(4000):
                ch.basic_publish("", "q", b"v" * 1024, props)
                if i == 2000:
                    hch.basic_publish("", "home", b"kept", props)
            peak = len(journal_files(b))
            self.assertGreaterEqual(peak, 10)
            self.assertEqual(api("DELETE", "/api/vhosts/" + vh), 204)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and len(journal_files(b)) > 3:
                hch.queue_declare("home", durable=True, passive=True)
                time.sleep(0.05)
            files = journal_files(b)
            print("  journal segments: %d before deleting the vhost, %d after" % (
                peak, len(files)))
            self.assertLessEqual(len(files), 3, files)
            home.close()
            try:
                c.close()
            except pika.exceptions.AMQPError:
                pass  # closed with 320 by the deletion
            harness.restart(b, signal.SIGKILL, extra_args=("-c", _CONF, "--mgmt-port", str(mport)))
            home = pika.BlockingConnection(pika.ConnectionParameters(
                "127.0.0.1", b.port, heartbeat=0))
            m, _, body = home.channel().basic_get("home", auto_ack=True)
            self.assertEqual(body, b"kept")
            home.close()


if __name__ == "__main__":
    harness.main()
