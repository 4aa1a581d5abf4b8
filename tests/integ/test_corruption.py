"""test_corruption - damaged data directories: warrend starts, says what it
dropped, and keeps the rest (issue 5).

warrend only (skipped when WARREN_TEST_PORT is set): each test publishes
persistent messages to a durable queue with confirms, stops the broker,
edits its data directory, starts it again on the same directory and port,
and reads the queue back with basic.get. The journal records are located
with durability.read_segment (magic | length | crc32c | type | payload).

  * torn tail: the last record of the last segment cut 5 bytes in (inside
    the header), at its type byte, in the middle and one byte short ->
    the log says "truncating", the file is cut back to the record boundary,
    every earlier message survives in order, and publishing continues.
  * flipped bytes: five publish records in the middle of a segment damaged
    in the body, the length, the CRC, the magic and the type, plus the
    removal record of an acked message -> each is reported as a "corrupt
    record at offset N", the five messages are gone, the acked one comes
    back (redelivered: a lost ack may only cause a redelivery), the rest
    survive in order.
  * deleted segment: deleting the only segment leaves the queues defined
    (with their arguments) and empty; a journal split by byte-copying its
    records into segments 1, 2 and 3 (checked to recover completely first)
    with segment 2 deleted keeps the messages of 1 and 3. A separate test
    asserts that the gap is reported in the log (the issue says the broker
    "reports what it dropped").
  * garbage, empty or truncated definitions.json -> warrend exits non-zero
    naming the file, without touching the journal; with the file restored it
    starts and recovers everything.
  * every start logs "recovery: ... N messages restored" with the right N.
"""
import os
import re
import signal
import struct
import subprocess
import unittest

import pika
import pika.exceptions as pex

import harness
from durability import read_segment, recovered_count, segments, warrend_only


def body_of(mid):
    return ("%s|" % mid).encode() + (b"%s-" % mid.encode()) * 20


def contents(path):
    with open(path, "rb") as f:
        return f.read()


def id_of(body):
    return body.split(b"|", 1)[0].decode(errors="replace")


class CorruptionCase(unittest.TestCase):
    def setUp(self):
        reason = warrend_only()
        if reason:
            self.skipTest(reason)

    # ---- broker and traffic helpers -----------------------------------------
    def conn(self, b):
        return pika.BlockingConnection(pika.ConnectionParameters(
            host=harness.HOST, port=b.port, heartbeat=0))

    def publish(self, b, queue, ids, arguments=None):
        c = self.conn(b)
        ch = c.channel()
        ch.queue_declare(queue, durable=True, arguments=arguments)
        ch.confirm_delivery()
        for mid in ids:
            # raises NackError if not confirmed
            ch.basic_publish("", queue, body_of(mid),
                             pika.BasicProperties(delivery_mode=2, message_id=mid))
        c.close()

    def get_all(self, b, queue, ack=True):
        """[(id, redelivered)] in queue order; checks the bodies."""
        c = self.conn(b)
        ch = c.channel()
        out = []
        while True:
            m, props, body = ch.basic_get(queue)
            if m is None:
                break
            mid = id_of(body)
            self.assertEqual(body, body_of(mid), "body of %s intact" % mid)
            self.assertEqual(props.message_id, mid)
            out.append((mid, m.redelivered))
            if ack:
                ch.basic_ack(m.delivery_tag)
        c.close()
        return out

    def count(self, b, queue):
        c = self.conn(b)
        n = c.channel().queue_declare(queue, passive=True).method.message_count
        c.close()
        return n

    def stop(self, b, sig=signal.SIGTERM):
        rc = harness._stop(b, sig)
        if sig == signal.SIGTERM:
            self.assertEqual(rc, 0, "warrend exits 0 on SIGTERM")

    def start(self, b):
        """Start the stopped broker again; returns the log of this start."""
        mark = len(b.log_text())
        harness.restart(b)
        return b.log_text()[mark:]

    def restored(self, log):
        n = recovered_count(log)
        self.assertIsNotNone(n, "the startup log reports the recovery:\n" + log[-3000:])
        return n


class TestTornTail(CorruptionCase):
    def test_truncated_last_record(self):
        q = "torn"
        with harness.broker() as b:
            expected = ["m%d" % i for i in range(20)]
            self.publish(b, q, expected)
            nxt = 20
            for where in ("header", "type byte", "middle", "last byte"):
                more = ["m%d" % i for i in range(nxt, nxt + 3)]
                nxt += 3
                self.publish(b, q, more)
                expected += more
                self.stop(b)
                seg = segments(b.data_dir)[-1]
                recs, data = read_segment(seg)
                r = recs[-1]
                self.assertEqual((r.type, id_of(r.body())), ("P", expected[-1]))
                cut = {"header": 5, "type byte": 12, "middle": r.size // 2,
                       "last byte": r.size - 1}[where]
                os.truncate(seg, r.offset + cut)
                log = self.start(b)
                line = [ln for ln in log.splitlines() if "truncating" in ln]
                self.assertTrue(line, "cut in the %s: the log says it truncates" % where)
                self.assertIn(os.path.basename(seg), line[0])
                self.assertIn("%d bytes at offset %d" % (cut, r.offset), line[0])
                self.assertEqual(os.path.getsize(seg), r.offset,
                                 "the torn record is cut off the file")
                expected.pop()   # the torn message is gone, nothing else
                self.assertEqual(self.restored(log), len(expected), where)
                self.assertIn("1 torn tails truncated", log)
                self.assertEqual(self.count(b, q), len(expected), where)
            # the journal goes on after the truncations, across a kill -9 too
            more = ["m%d" % i for i in range(nxt, nxt + 5)]
            self.publish(b, q, more)
            expected += more
            self.stop(b, signal.SIGKILL)
            log = self.start(b)
            self.assertEqual(self.restored(log), len(expected))
            self.assertNotIn("truncating", log)
            got = self.get_all(b, q)
            self.assertEqual([m for m, _ in got], expected, "survivors, in publish order")
            self.assertTrue(all(red for _, red in got), "recovered means redelivered")
            self.stop(b)
            self.assertEqual(self.restored(self.start(b)), 0, "acks of the drain are durable")


class TestFlippedBytes(CorruptionCase):
    def test_damaged_records_mid_segment(self):
        q = "flip"
        ids = ["m%d" % i for i in range(40)]
        with harness.broker() as b:
            self.publish(b, q, ids)
            # ack m0..m2: removal records follow the publishes
            c = self.conn(b)
            ch = c.channel()
            for i in range(3):
                m, _, body = ch.basic_get(q)
                self.assertEqual(id_of(body), "m%d" % i)
                ch.basic_ack(m.delivery_tag)
            c.close()
            self.stop(b)
            (seg,) = segments(b.data_dir)
            recs, data = read_segment(seg)
            pubs = {id_of(r.body()): r for r in recs if r.type == "P"}
            removals = [r for r in recs if r.type == "A"]
            self.assertEqual((len(pubs), len(removals)), (40, 3))
            raw = bytearray(data)
            damaged = {}   # offset -> what

            def flip(r, at, what, mask=0x5A):
                raw[r.offset + at] ^= mask
                damaged[r.offset] = what
            r = pubs["m10"]
            flip(r, r.size - 10, "body of m10")
            r = pubs["m15"]
            raw[r.offset + 4:r.offset + 8] = struct.pack(">I", 0x00FFFF00)
            damaged[r.offset] = "length of m15"
            flip(pubs["m20"], 9, "crc of m20")
            flip(pubs["m25"], 1, "magic of m25")
            flip(pubs["m30"], 12, "type of m30", mask=0x01)
            # the removal record of m1: the last byte of its message id
            a = [r for r in removals if r.msg_id == pubs["m1"].msg_id][0]
            flip(a, 12 + 1 + 7, "removal of m1")
            with open(seg, "wb") as f:
                f.write(raw)
            log = self.start(b)
            for off, what in sorted(damaged.items()):
                self.assertRegex(log, r"corrupt record at offset %d\b" % off,
                                 "%s reported" % what)
            self.assertIn("%d corrupt records skipped" % len(damaged), log)
            self.assertNotIn("truncating", log, "the tail is intact")
            gone = {"m0", "m2", "m10", "m15", "m20", "m25", "m30"}
            expected = [m for m in ids if m not in gone]   # m1 is back
            self.assertEqual(self.restored(log), len(expected))
            got = self.get_all(b, q)
            self.assertEqual([m for m, _ in got], expected)
            self.assertTrue(all(red for _, red in got))


class TestDeletedSegment(CorruptionCase):
    def test_only_segment_deleted(self):
        with harness.broker() as b:
            self.publish(b, "del.plain", ["a%d" % i for i in range(10)])
            self.publish(b, "del.prio", ["b%d" % i for i in range(10)],
                         arguments={"x-max-priority": 4})
            self.stop(b)
            segs = segments(b.data_dir)
            self.assertEqual(len(segs), 1)
            os.unlink(segs[0])
            log = self.start(b)
            self.assertEqual(self.restored(log), 0)
            self.assertEqual(self.count(b, "del.plain"), 0)
            self.assertEqual(self.count(b, "del.prio"), 0)
            # the definitions are whole: same arguments accepted, others refused
            c = self.conn(b)
            ch = c.channel()
            ch.queue_declare("del.prio", durable=True, arguments={"x-max-priority": 4})
            with self.assertRaises(pex.ChannelClosedByBroker) as cm:
                ch.queue_declare("del.prio", durable=True, arguments={"x-max-priority": 3})
            self.assertEqual(cm.exception.reply_code, 406)
            c.close()
            # and the journal works again
            self.publish(b, "del.plain", ["c0", "c1"])
            self.stop(b, signal.SIGKILL)
            self.assertEqual(self.restored(self.start(b)), 2)
            self.assertEqual([m for m, _ in self.get_all(b, "del.plain")], ["c0", "c1"])

    def split_journal(self, b, q, n=30):
        """Publish n messages, then cut the one segment into segments 1, 2
        and 3 by copying whole records, and check that this layout recovers
        all n. Returns (ids, [ids in segment 1, 2, 3])."""
        ids = ["m%d" % i for i in range(n)]
        self.publish(b, q, ids)
        self.stop(b)
        (seg,) = segments(b.data_dir)
        recs, data = read_segment(seg)
        self.assertEqual([id_of(r.body()) for r in recs], ids)
        parts = [recs[:10], recs[10:20], recs[20:]]
        jdir = os.path.dirname(seg)
        os.unlink(seg)
        for k, part in enumerate(parts, 1):
            with open(os.path.join(jdir, "%08d.wjl" % k), "wb") as f:
                f.write(b"".join(data[r.offset:r.offset + r.size] for r in part))
        log = self.start(b)
        self.assertEqual(self.restored(log), n, "the hand-split journal recovers whole")
        self.assertIn("recovery: 3 journal segments", log)
        self.stop(b)
        return ids, [[id_of(r.body()) for r in part] for part in parts]

    def test_middle_segment_deleted(self):
        with harness.broker() as b:
            ids, parts = self.split_journal(b, "split")
            os.unlink(os.path.join(b.data_dir, "journal", "00000002.wjl"))
            log = self.start(b)
            expected = parts[0] + parts[2]
            self.assertEqual(self.restored(log), len(expected))
            got = self.get_all(b, "split")
            self.assertEqual([m for m, _ in got], expected,
                             "segments 1 and 3 are kept, in order")

    def test_middle_segment_deleted_is_reported(self):
        # Segments are deleted oldest first, so a gap in the numbering can
        # only be damage. The issue: the broker "reports what it dropped".
        with harness.broker() as b:
            self.split_journal(b, "gap")
            os.unlink(os.path.join(b.data_dir, "journal", "00000002.wjl"))
            log = self.start(b)
            self.assertTrue(re.search(r"(warning|error).*(\b0*2\.wjl|segment 0*2\b)", log),
                            "the missing segment 00000002.wjl is reported in the log:\n"
                            + "\n".join(ln for ln in log.splitlines()
                                        if "journal" in ln or "recovery" in ln))


class TestDefinitionsFile(CorruptionCase):
    def test_garbage_definitions_refused(self):
        with harness.broker() as b:
            self.publish(b, "defs.q", ["d%d" % i for i in range(5)],
                         arguments={"x-max-priority": 2})
            self.stop(b)
            path = os.path.join(b.data_dir, "definitions.json")
            good = contents(path)
            journal = {s: contents(s) for s in segments(b.data_dir)}
            for what, text in (("garbage", b"{\"vhosts\": [ this is not JSON"),
                               ("empty", b""),
                               ("truncated", good[:len(good) // 2])):
                with open(path, "wb") as f:
                    f.write(text)
                p = subprocess.Popen(b.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL)
                try:
                    out, err = p.communicate(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.communicate()
                    self.fail("warrend started with a %s definitions.json" % what)
                err = err.decode(errors="replace")
                self.assertNotEqual(p.returncode, 0, "%s definitions.json: exit status" % what)
                lines = [ln for ln in err.splitlines() if path in ln]
                self.assertTrue(lines, "%s definitions.json: the error names %s:\n%s"
                                % (what, path, err))
                self.assertEqual({s: contents(s) for s in segments(b.data_dir)},
                                 journal, "a refused start leaves the journal alone")
            with open(path, "wb") as f:
                f.write(good)
            log = self.start(b)
            self.assertIn("definitions: 0 exchanges, 1 queues", log)
            self.assertEqual(self.restored(log), 5)
            self.assertEqual([m for m, _ in self.get_all(b, "defs.q")],
                             ["d%d" % i for i in range(5)])


if __name__ == "__main__":
    harness.main()
