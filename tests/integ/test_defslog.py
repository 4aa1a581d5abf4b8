"""test_defslog - durable exchanges, queues and bindings survive a SIGKILL
through the definitions log (definitions.log, appended per change, folded
into definitions.json at recovery), and the log stays bounded.

Each test drives a real warrend with pika, kills it with SIGKILL right after
the last declare-ok (a declare-ok means durable), restarts it on the same
data directory and compares what the management API exports with a model
the test kept. The model follows RabbitMQ's rules: deleting a queue or an
exchange deletes its bindings, an auto-delete exchange goes with its last
binding, transient and exclusive objects do not come back.

warrend-only: it reads and damages the data directory.
Run: /usr/bin/python3 tests/integ/test_defslog.py
"""
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.request
import base64

import pika

import harness


class Node:
    """A warrend with the management API, restartable on its data dir."""

    def __init__(self):
        self.mgmt = harness.free_port()
        self.b = harness._start(("--mgmt-port", str(self.mgmt)))
        harness.wait_port(self.mgmt, self.b.proc)

    def path(self, name):
        return os.path.join(self.b.data_dir, name)

    def connect(self):
        return pika.BlockingConnection(pika.ConnectionParameters(
            host=harness.HOST, port=self.b.port, heartbeat=0))

    def kill_and_restart(self):
        harness.restart(self.b, signal.SIGKILL, ("--mgmt-port", str(self.mgmt)))
        harness.wait_port(self.mgmt, self.b.proc)

    def export(self):
        req = urllib.request.Request("http://%s:%d/api/definitions" % (harness.HOST, self.mgmt))
        req.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
        with urllib.request.urlopen(req, timeout=30) as r:
            d = json.load(r)
        queues = {q["name"] for q in d["queues"] if q["vhost"] == "/"}
        exchanges = {x["name"] for x in d["exchanges"] if x["vhost"] == "/"}
        bindings = {(b["source"], b["destination_type"], b["destination"], b["routing_key"])
                    for b in d["bindings"] if b["vhost"] == "/"}
        return queues, exchanges, bindings

    def stop(self):
        rc = harness._stop(self.b)
        text = self.b.log_text()
        shutil.rmtree(self.b.data_dir, ignore_errors=True)
        return rc, text


class Model:
    """What RabbitMQ keeps of the durable objects after the operations."""

    def __init__(self):
        self.q, self.x, self.b = set(), {}, set()  # x: name -> auto_delete

    def drop_bindings(self, pred):
        gone = {b for b in self.b if pred(b)}
        self.b -= gone
        for src in {b[0] for b in gone}:
            self.maybe_auto_delete(src)

    def maybe_auto_delete(self, src):
        if self.x.get(src) and not any(b[0] == src for b in self.b):
            self.delete_exchange(src)

    def delete_queue(self, q):
        self.q.discard(q)
        self.drop_bindings(lambda b: b[1] == "queue" and b[2] == q)

    def delete_exchange(self, x):
        if x not in self.x:
            return
        del self.x[x]
        self.drop_bindings(lambda b: b[0] == x or (b[1] == "exchange" and b[2] == x))


class DefsLogTests(unittest.TestCase):
    def setUp(self):
        self.node = Node()

    def tearDown(self):
        rc, text = self.node.stop()
        if rc != 0 or "AddressSanitizer" in text or "runtime error:" in text:
            print(text[-5000:])
        self.assertEqual(rc, 0)

    def check(self, model):
        q, x, b = self.node.export()
        self.assertEqual(q, model.q)
        self.assertEqual(x, set(model.x))
        self.assertEqual(b, model.b)

    def test_random_changes_survive_sigkill(self):
        rnd = random.Random(1234)
        m = Model()
        c = self.node.connect()
        ch = c.channel()
        qn = ["q%d" % i for i in range(12)]
        xn = ["x%d" % i for i in range(8)]
        for step in range(1500):
            op = rnd.randrange(9)
            if op == 0:
                q = rnd.choice(qn)
                ch.queue_declare(q, durable=True)
                m.q.add(q)
            elif op == 1:
                q = rnd.choice(qn)
                ch.queue_delete(q)
                m.delete_queue(q)
            elif op == 2:
                x = rnd.choice(xn)
                if x not in m.x:
                    ad = rnd.random() < 0.3
                    ch.exchange_declare(x, exchange_type=rnd.choice(["direct", "topic", "fanout"]),
                                        durable=True, auto_delete=ad)
                    m.x[x] = ad
            elif op == 3:
                x = rnd.choice(xn)
                ch.exchange_delete(x)
                m.delete_exchange(x)
            elif op in (4, 5):
                x, q, k = rnd.choice(xn), rnd.choice(qn), rnd.choice(["a", "b", "c.d"])
                if x in m.x and q in m.q:
                    ch.queue_bind(q, x, k)
                    m.b.add((x, "queue", q, k))
            elif op == 6:
                x, q, k = rnd.choice(xn), rnd.choice(qn), rnd.choice(["a", "b", "c.d"])
                if x in m.x and q in m.q:
                    ch.queue_unbind(q, x, k)
                    if (x, "queue", q, k) in m.b:
                        m.b.discard((x, "queue", q, k))
                        m.maybe_auto_delete(x)
            elif op == 7:
                s, d, k = rnd.choice(xn), rnd.choice(xn), rnd.choice(["a", "b"])
                if s in m.x and d in m.x and s != d:
                    ch.exchange_bind(d, s, k)
                    m.b.add((s, "exchange", d, k))
            else:
                # transient things never come back
                t = "t%d" % rnd.randrange(4)
                ch.queue_declare(t, durable=False)
                ch.queue_declare("", exclusive=True, durable=True)
                # (not from an auto-delete exchange: a transient binding
                # would keep it alive where the model does not)
                plain = sorted(x for x, ad in m.x.items() if not ad)
                if plain:
                    ch.queue_bind(t, rnd.choice(plain), "a")
            if step % 500 == 499 and step < 1499:
                # a restart in the middle: the log is folded and starts over
                c.close()
                self.node.kill_and_restart()
                self.check(m)
                c = self.node.connect()
                ch = c.channel()
        self.assertGreater(os.path.getsize(self.node.path("definitions.log")), 0)
        self.node.kill_and_restart()
        self.check(m)
        self.assertIn("changes from definitions.log applied", self.node.b.log_text())

    def test_log_stays_bounded(self):
        c = self.node.connect()
        ch = c.channel()
        names = ["bounded-%05d-%s" % (i, "p" * 150) for i in range(6000)]
        biggest = 0
        for i, n in enumerate(names):
            ch.queue_declare(n, durable=True, arguments={"x-message-ttl": 60000})
            if i % 250 == 0:
                biggest = max(biggest, os.path.getsize(self.node.path("definitions.log")))
        snap = os.path.getsize(self.node.path("definitions.json"))
        print("  6,000 queues: definitions.json %d bytes, largest log seen %d bytes"
              % (snap, biggest))
        # the log is cut to nothing when it outgrows max(1 MiB, the snapshot)
        self.assertGreater(snap, 1 << 20)
        self.assertLess(biggest, max(1 << 20, snap) + (64 << 10))
        self.node.kill_and_restart()
        q, _, _ = self.node.export()
        self.assertEqual(q, set(names))

    def test_torn_tail_is_cut_and_damage_refused(self):
        c = self.node.connect()
        ch = c.channel()
        for i in range(5):
            ch.queue_declare("torn-%d" % i, durable=True)
        log = self.node.path("definitions.log")
        harness._stop(self.node.b, signal.SIGKILL)
        with open(log, "rb") as f:
            lines = f.read().splitlines(keepends=True)
        self.assertEqual(len(lines), 5)
        # a write that stopped half way: a bad line, then part of another
        with open(log, "ab") as f:
            f.write(lines[-1][:-1].replace(b"torn-4", b"torn-9") + b"\n" + lines[-1][:20])
        nb = harness._start(("--mgmt-port", str(self.node.mgmt)), data_dir=self.node.b.data_dir,
                            port=self.node.b.port)
        self.node.b.proc = nb.proc
        harness.wait_port(self.node.mgmt, nb.proc)
        self.assertIn("never synced", self.node.b.log_text())
        q, _, _ = self.node.export()
        self.assertEqual(q, {"torn-%d" % i for i in range(5)})
        # The restart folded the log into a snapshot. Make new lines, then
        # damage one that has good lines after it: refuse to start.
        c = self.node.connect()
        ch = c.channel()
        for i in range(3):
            ch.queue_declare("after-%d" % i, durable=True)
        harness._stop(self.node.b, signal.SIGKILL)
        with open(log, "rb") as f:
            data = bytearray(f.read())
        self.assertEqual(data.count(b"\n"), 3)
        data[20] ^= 0x01
        with open(log, "wb") as f:
            f.write(data)
        r = subprocess.run(self.node.b.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"definitions.log: line 1", r.stdout)
        # repaired, it starts with everything
        data[20] ^= 0x01
        with open(log, "wb") as f:
            f.write(data)
        nb = harness._start(("--mgmt-port", str(self.node.mgmt)), data_dir=self.node.b.data_dir,
                            port=self.node.b.port)
        self.node.b.proc = nb.proc
        harness.wait_port(self.node.mgmt, nb.proc)
        q, _, _ = self.node.export()
        self.assertEqual(q, {"torn-%d" % i for i in range(5)} | {"after-%d" % i for i in range(3)})


if __name__ == "__main__":
    harness.main()
