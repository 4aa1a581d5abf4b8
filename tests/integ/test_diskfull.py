"""test_diskfull - a full disk: nacks or connection.blocked, never a crash, and
a clean recovery afterwards (issue 5).

warrend only, and root only: the data directory is a tmpfs mounted by the
test (mount -t tmpfs -o size=8m); when the mount fails the test is skipped
with the reason. The broker's log is kept outside the tmpfs. The tmpfs is
unmounted by path in the cleanup, after the broker the test started is
stopped by PID.

  * test_enospc: disk_free_limit.absolute = 1MB, so the journal really runs
    into ENOSPC (the disk check runs once a second; the pipelined publisher
    fills 8 MB in a few tens of ms). Persistent 64 KiB messages are
    published with confirms, at most 16 unconfirmed, until a nack arrives or
    the connection is blocked. Asserted: every publish the broker read is
    settled (acked or nacked) within 10 s -- a publisher that waits for its
    confirms must not wait forever --; a new publisher is then blocked or
    nacked; the broker stays up and exits 0 on SIGTERM; it starts again on
    the still-full directory (nothing deleted); and, after the tmpfs is
    grown, it recovers exactly the confirmed messages, bodies intact.
  * test_disk_alarm_blocks: disk_free_limit.absolute = 7MB on the 8 MB
    tmpfs. A paced publisher (one 64 KiB message at a time, 50 per second)
    gets connection.blocked once less than 7 MB is free, with no nack; the
    log says "disk alarm"; growing the tmpfs clears the alarm:
    connection.unblocked, and the publish that waited is confirmed. After a
    restart every confirmed message is recovered. The blocked reason should
    name the disk, as RabbitMQ's "low on disk" does (checked last).
  * test_definitions_on_full_disk: the tmpfs filled by another file (disk
    alarm on), a durable queue declared, a persistent message published to
    it; the file removed (the publish goes through), a clean stop and a
    restart: the queue declared with declare-ok, and the message confirmed
    on it, must still be there.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import harness
from durability import Client, Confirms, recovered_count, warrend_only

SIZE = 65536
QUEUE = "diskfull"


def body_of(mid):
    head = ("%s|" % mid).encode()
    return head + bytes((i * 7 + len(head)) & 0xFF for i in range(SIZE - len(head)))


def id_of(body):
    return body.split(b"|", 1)[0].decode(errors="replace")


class DiskFullCase(unittest.TestCase):
    def setUp(self):
        reason = warrend_only()
        if reason:
            self.skipTest(reason)
        self.root = tempfile.mkdtemp(prefix="warren-diskfull-")
        self.addCleanup(shutil.rmtree, self.root, True)
        self.mnt = os.path.join(self.root, "data")
        os.mkdir(self.mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", self.mnt],
                           capture_output=True, text=True)
        if r.returncode != 0:
            self.skipTest("cannot mount a tmpfs: %s" % (r.stderr.strip() or r.returncode))
        self.addCleanup(self.unmount)
        self.log_path = os.path.join(self.root, "warrend.log")
        self.conf = os.path.join(self.root, "warren.conf")
        self.port = harness.free_port()
        self.proc = None
        self.problems = []

    def check(self, cond, what):
        """A failure that does not stop the test: reported by report()."""
        if not cond:
            self.problems.append(what)

    def report(self):
        if self.problems:
            self.fail("\n".join(self.problems))

    def unmount(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        subprocess.run(["umount", self.mnt], capture_output=True)

    def grow(self, size="64m"):
        subprocess.run(["mount", "-o", "remount,size=%s" % size, self.mnt], check=True)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def start(self, disk_free_limit):
        """Start warrend on the tmpfs; returns the log of this start.
        Raises RuntimeError (with the log's tail) when it does not listen."""
        with open(self.conf, "w") as f:
            f.write("disk_free_limit.absolute = %s\n" % disk_free_limit)
        mark = len(self.log()) if os.path.exists(self.log_path) else 0
        argv = [harness.find_warrend(), "-c", self.conf, "--port", str(self.port),
                "--bind", harness.HOST, "--data-dir", self.mnt, "--mgmt-port", "0",
                "--log-level", "debug"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        try:
            harness.wait_port(self.port, self.proc)
        except RuntimeError as e:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            raise RuntimeError("%s:\n%s" % (e, self.log()[mark:][-2000:]))
        return self.log()[mark:]

    def stop(self):
        self.assertIsNone(self.proc.poll(), "warrend is still running")
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(20)
        self.assertEqual(rc, 0, "warrend exits 0 on SIGTERM")
        text = self.log()
        for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
            self.assertNotIn(bad, text)

    def client(self):
        c = Client(harness.HOST, self.port)
        self.addCleanup(c.close)
        c.channel(1)
        c.confirm_select(1)
        c.queue_declare(1, QUEUE, durable=True)
        return c

    def recover_and_drain(self, log, confirmed, published):
        """After a restart: the recovered messages are exactly the confirmed
        ones, in publish order, bodies intact."""
        c = Client(harness.HOST, self.port)
        c.channel(1)
        _, n, _ = c.queue_declare(1, QUEUE, passive=True)
        got = []
        while True:
            m = c.get(1, QUEUE, no_ack=True)
            if m is None:
                break
            mid = id_of(m.body)
            self.assertEqual(m.body, body_of(mid), "body of %s intact" % mid)
            got.append(mid)
        c.close()
        self.assertEqual(recovered_count(log), len(got), "the log's restored count")
        self.assertEqual(n, len(got))
        unknown = set(got) - set(published)
        self.assertFalse(unknown, "never published: %s" % sorted(unknown))
        missing = [m for m in confirmed if m not in set(got)]
        self.assertFalse(missing, "confirmed but not recovered: %s" % missing)
        self.assertEqual(len(got), len(confirmed),
                         "recovered %d messages, %d were confirmed; extra: %s"
                         % (len(got), len(confirmed), sorted(set(got) - set(confirmed))))
        self.assertEqual(got, sorted(got, key=published.index), "publish order")
        return got


class TestDiskFull(DiskFullCase):
    def test_enospc(self):
        self.start("1MB")
        c = self.client()
        conf = Confirms()
        blocked, n = None, 0
        deadline = time.monotonic() + 30
        progress = time.monotonic()
        # Publish until the broker says no (nack) or blocks us; at most 16
        # unconfirmed, never more than 3x the tmpfs in total. Stop waiting
        # when nothing settles for 10 s.
        while not conf.nacked and blocked is None and time.monotonic() < deadline:
            if len(conf.out) < 16 and n * SIZE < 3 * (8 << 20):
                mid = "m%d" % n
                n += 1
                c.send(c.publish_bytes(1, "", QUEUE, body_of(mid), delivery_mode=2,
                                       message_id=mid))
                conf.sent(mid)
                wait = 0
            elif time.monotonic() - progress > 10:
                break
            else:
                wait = 0.1
            for e in c.pump(wait):
                if e[0] == "blocked":
                    blocked = e[1]
                else:
                    self.assertIn(e[0], ("ack", "nack"), e)
                    if conf.on_event(e):
                        progress = time.monotonic()
        # What was read is settled within 10 s (unless the broker stopped
        # reading: blocked).
        t = time.monotonic()
        while conf.out and time.monotonic() - t < 10 and time.monotonic() - progress < 10:
            for e in c.pump(0.1):
                if e[0] == "blocked":
                    blocked = e[1]
                else:
                    conf.on_event(e)
        df = shutil.disk_usage(self.mnt)
        print("enospc: %d published (64 KiB), %d acked, %d nacked, %d unsettled, blocked=%r, "
              "%d bytes free" % (n, len(conf.acked), len(conf.nacked), len(conf.out), blocked,
                                 df.free), file=sys.stderr)
        self.assertTrue(self.proc.poll() is None, "warrend survives the full disk")
        self.check(conf.nacked or blocked is not None,
                   "a full disk gives nacks or connection.blocked: neither came")
        self.check(blocked is not None or not conf.out,
                   "every publish the broker read is acked or nacked: %d publishes (%s..%s) "
                   "neither acked nor nacked 10 s after the disk filled"
                   % (len(conf.out), min(conf.out.values(), default=None),
                      max(conf.out.values(), default=None)))
        if blocked is None:
            self.assertLess(df.free, 1 << 20, "the disk did fill")
        c.close()

        # A new publisher is refused too: blocked (disk alarm) or nacked.
        c2 = self.client()
        c2.send(c2.publish_bytes(1, "", QUEUE, body_of("late"), delivery_mode=2))
        e = c2.wait(lambda e: e[0] in ("blocked", "nack", "ack"), timeout=5)
        self.assertIn(e[0], ("blocked", "nack"), "a new publish on a full disk: %r" % (e,))
        c2.close()
        self.assertIn("disk alarm", self.log())
        published = ["m%d" % i for i in range(n)] + ["late"]
        self.stop()

        # Restart on the same, still full, directory: nothing deleted.
        try:
            log = self.start("1MB")
        except RuntimeError as e:
            self.check(False, "starts again on the still-full data directory: %s" % e)
            # Give it room and check the recovery all the same.
            self.grow()
            log = self.start("1MB")
        self.recover_and_drain(log, conf.acked, published)
        self.stop()
        self.report()

    def test_disk_alarm_blocks(self):
        self.start("7MB")
        c = self.client()
        conf = Confirms()
        blocked, n = None, 0
        deadline = time.monotonic() + 20
        while blocked is None and time.monotonic() < deadline:
            mid = "m%d" % n
            n += 1
            c.send(c.publish_bytes(1, "", QUEUE, body_of(mid), delivery_mode=2,
                                   message_id=mid))
            conf.sent(mid)
            try:
                e = c.wait(lambda e: e[0] in ("ack", "nack", "blocked"), timeout=5)
            except TimeoutError:
                self.fail("no confirm and no connection.blocked for %s" % mid)
            if e[0] == "blocked":
                blocked = e[1]
            else:
                conf.on_event(e)
                time.sleep(0.02)
        self.assertIsNotNone(blocked, "connection.blocked within 20 s")
        self.assertFalse(conf.nacked, "nothing nacked: the alarm came first")
        self.assertEqual(len(conf.out), 1, "only the publish that hit the alarm waits")
        self.assertGreater(shutil.disk_usage(self.mnt).free, 1 << 20,
                           "blocked before the disk was full")
        self.assertIn("disk alarm", self.log())
        print("disk alarm: blocked after %d messages (%s free), reason %r"
              % (n - 1, shutil.disk_usage(self.mnt).free, blocked),
              file=sys.stderr)
        # Room again: the alarm clears within a tick or two, the waiting
        # publish goes through.
        self.grow()
        unblocked = False
        deadline = time.monotonic() + 5
        while (conf.out or not unblocked) and time.monotonic() < deadline:
            for e in c.pump(0.1):
                unblocked |= e[0] == "unblocked"
                conf.on_event(e)
        self.assertTrue(unblocked, "connection.unblocked once there is room again")
        self.assertFalse(conf.out, "the publish that waited is confirmed")
        self.assertFalse(conf.nacked)
        self.assertIn("disk alarm cleared", self.log())
        c.close()
        self.stop()
        log = self.start("7MB")
        self.recover_and_drain(log, conf.acked, ["m%d" % i for i in range(n)])
        self.stop()
        self.check("disk" in blocked, "the blocked reason names the disk, as RabbitMQ's "
                   "'low on disk' does: %r" % blocked)
        self.report()

    def test_definitions_on_full_disk(self):
        """A durable queue declared while the disk is full (here by another
        file; the alarm is on) must not be lost once the disk has room again
        and the broker stops cleanly -- nor the message confirmed on it."""
        self.start("1MB")
        c = self.client()   # declares QUEUE
        c.send(c.publish_bytes(1, "", QUEUE, body_of("m0"), delivery_mode=2, message_id="m0"))
        self.assertEqual(c.wait(lambda e: e[0] in ("ack", "nack"))[0], "ack")
        filler = os.path.join(self.mnt, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, bytes(65536))
        except OSError:
            pass
        os.close(fd)
        deadline = time.monotonic() + 5
        while "disk alarm:" not in self.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn("disk alarm:", self.log())
        try:
            c.queue_declare(1, "declared-when-full", durable=True)
            declared = True
        except Exception as e:      # refusing it is correct too
            declared = False
            print("declare on a full disk refused: %r" % (e,), file=sys.stderr)
        if declared:
            c.send(c.publish_bytes(1, "", "declared-when-full", body_of("w0"), delivery_mode=2,
                                   message_id="w0"))
            time.sleep(0.3)
        os.unlink(filler)
        settled = None
        if declared:
            e = c.wait(lambda e: e[0] in ("ack", "nack"), timeout=10, sink=[])
            settled = e[0]
        c.close()
        print("definitions on a full disk: declare-ok %s, publish %s; log: %s" % (
            declared, settled, [ln[25:] for ln in self.log().splitlines()
                                if "definitions not saved" in ln][:1]), file=sys.stderr)
        self.stop()
        self.start("1MB")
        c = Client(harness.HOST, self.port)
        c.channel(1)
        self.assertEqual(c.queue_declare(1, QUEUE, passive=True)[1], 1)
        if declared:
            try:
                _, n, _ = c.queue_declare(1, "declared-when-full", passive=True)
            except Exception as e:
                self.fail("the durable queue declared (declare-ok) while the disk was full is "
                          "gone after a clean restart with room on the disk; the publish to it "
                          "was %sed: %s" % (settled, e))
            if settled == "ack":
                self.assertEqual(n, 1, "the message confirmed on it is there")
        c.close()
        self.stop()


if __name__ == "__main__":
    harness.main()
