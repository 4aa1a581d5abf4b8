"""test_plugins - plugins loaded from warren.conf (issue 14): the loader's
refusals, /api/plugins, the x-consistent-hash and x-delayed-message
exchanges through pika.

The plugins come from the build tree (plugins/.libs and, for the ones that
must be refused, tests/plugins/.libs). RabbitMQ's consistent-hash plugin
(bundled with Debian's rabbitmq-server) gave the refusal texts held here;
the delayed-message plugin is not bundled, so its behaviour is the plugin's
documentation's. Warren-only: it configures and restarts warrend.

Run: /usr/bin/python3 tests/integ/test_plugins.py
"""
import base64
import collections
import json
import os
import shutil
import signal
import tempfile
import time
import unittest
import urllib.request

import pika

import harness

# This file configures the plugins itself: the extra arguments
# check-with-plugins gives every other test would override them.
os.environ.pop("WARREN_TEST_ARGS", None)

BUILD = os.path.dirname(os.path.dirname(harness.find_warrend()))
PLUGINS = os.path.join(BUILD, "plugins", ".libs")
TEST_PLUGINS = os.path.join(BUILD, "tests", "plugins", ".libs")


class Node:
    def __init__(self, conf, data_dir=None):
        self.dir = tempfile.mkdtemp(prefix="warren-plugins-")
        self.conf = os.path.join(self.dir, "warren.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.mgmt = harness.free_port()
        self.b = harness._start(("-c", self.conf, "--mgmt-port", str(self.mgmt)),
                                data_dir=data_dir)
        harness.wait_port(self.mgmt, self.b.proc)

    def connect(self):
        return pika.BlockingConnection(pika.ConnectionParameters(
            host=harness.HOST, port=self.b.port, heartbeat=0))

    def api(self, path):
        req = urllib.request.Request("http://%s:%d%s" % (harness.HOST, self.mgmt, path))
        req.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)

    def restart(self):
        harness.restart(self.b, signal.SIGTERM, ("-c", self.conf, "--mgmt-port", str(self.mgmt)))
        harness.wait_port(self.mgmt, self.b.proc)

    def stop(self):
        rc = harness._stop(self.b)
        text = self.b.log_text()
        shutil.rmtree(self.b.data_dir, ignore_errors=True)
        shutil.rmtree(self.dir, ignore_errors=True)
        return rc, text


def refused(ch_fn, conn):
    """(kind, code, text) of the error an operation gets."""
    ch = conn.channel()
    try:
        ch_fn(ch)
    except pika.exceptions.ChannelClosedByBroker as e:
        return "channel", e.reply_code, e.reply_text
    except pika.exceptions.ConnectionClosedByBroker as e:
        return "connection", e.reply_code, e.reply_text
    return None


class Base(unittest.TestCase):
    conf = ("plugins.directory = %s\nplugins.enabled.1 = consistent_hash\n"
            "plugins.enabled.2 = delayed_message\n"
            "plugin.delayed_message.max_delay = 3600000\n" % PLUGINS)

    @classmethod
    def setUpClass(cls):
        cls.node = Node(cls.conf)

    @classmethod
    def tearDownClass(cls):
        rc, text = cls.node.stop()
        if rc != 0 or "AddressSanitizer" in text or "runtime error:" in text:
            print(text[-8000:])
        assert rc == 0, "warrend exited %d" % rc
        assert "AddressSanitizer" not in text and "runtime error:" not in text


class LoaderTests(unittest.TestCase):
    def test_refused_plugins_leave_a_working_broker(self):
        node = Node("plugins.directory = %s\n"
                    "plugins.enabled.1 = bad_abi\nplugins.enabled.2 = bad_init\n"
                    "plugins.enabled.3 = no_desc\nplugins.enabled.4 = wrong_name\n"
                    "plugins.enabled.5 = missing\n" % TEST_PLUGINS)
        try:
            log = node.b.log_text()
            self.assertIn("plugin 'bad_abi' not loaded: built for plugin interface 2.0, "
                          "this broker has 1.0", log)
            self.assertIn("plugin 'bad_init' not loaded: its init failed", log)
            self.assertIn("failing on purpose", log)
            self.assertIn("plugin 'no_desc' not loaded", log)
            self.assertIn("exports no 'warren_plugin' descriptor", log)
            self.assertIn("plugin 'wrong_name' not loaded: its descriptor names it "
                          "'consistent_hash'", log)
            self.assertIn("plugin 'missing' not loaded", log)
            self.assertEqual(node.api("/api/plugins"), [])
            # bad_init's type was registered, then undone; its timer never fires
            c = node.connect()
            r = refused(lambda ch: ch.exchange_declare("x", "x-bad-init"), c)
            self.assertEqual(r[:2], ("connection", 503))
            c = node.connect()
            ch = c.channel()
            ch.queue_declare("still-works")
            ch.basic_publish("", "still-works", b"m")
            self.assertEqual(ch.basic_get("still-works", auto_ack=True)[2], b"m")
            time.sleep(0.1)  # the failed plugin's timer was armed for 10 ms
            c.close()
        finally:
            rc, text = node.stop()
        self.assertEqual(rc, 0, text[-3000:])

    def test_bad_setting_refuses_plugin(self):
        node = Node("plugins.directory = %s\nplugins.enabled.1 = delayed_message\n"
                    "plugin.delayed_message.max_delay = soon\n" % PLUGINS)
        try:
            self.assertIn("'soon' is not a number", node.b.log_text())
            self.assertEqual(node.api("/api/plugins"), [])
        finally:
            node.stop()


class ListingTests(Base):
    def test_api_plugins_and_exchange_types(self):
        p = {x["name"]: x for x in self.node.api("/api/plugins")}
        self.assertEqual(sorted(p), ["consistent_hash", "delayed_message"])
        self.assertEqual(p["consistent_hash"]["exchange_types"], ["x-consistent-hash"])
        self.assertEqual(p["delayed_message"]["abi"], "1.0")
        types = [t["name"] for t in self.node.api("/api/overview")["exchange_types"]]
        self.assertIn("x-consistent-hash", types)
        self.assertIn("x-delayed-message", types)


class ConsistentHashTests(Base):
    def setUp(self):
        self.c = self.node.connect()
        self.ch = self.c.channel()

    def tearDown(self):
        self.c.close()

    def placement(self, x, queues, keys, **props):
        """Publish one message per key; read where each went."""
        ch = self.ch
        for q in queues:
            ch.queue_purge(q)
        for k in keys:
            ch.basic_publish(x, k if not props else "ignored", k.encode(),
                             pika.BasicProperties(**{kk: (v(k) if callable(v) else v)
                                                     for kk, v in props.items()}))
        ch.queue_declare(queues[0], passive=True)  # a round trip: all routed
        where = {}
        for q in queues:
            while True:
                m, _, body = ch.basic_get(q, auto_ack=True)
                if m is None:
                    break
                where[body.decode()] = q
        self.assertEqual(len(where), len(keys))
        return where

    def test_refusals_as_rabbitmq(self):
        ch = self.ch
        ch.exchange_declare("chx-r", "x-consistent-hash")
        ch.queue_declare("chx-rq")
        for key, text in [("abc", 'The binding key must be an integer: <<"abc">>'),
                          ("", "The binding key must be an integer: <<>>"),
                          ("1.5", 'The binding key must be an integer: <<"1.5">>'),
                          ("0", "The binding key must be greater than 0"),
                          ("-3", "The binding key must be greater than 0")]:
            r = refused(lambda c, key=key: c.queue_bind("chx-rq", "chx-r", key), self.c)
            self.assertEqual(r, ("channel", 406, "PRECONDITION_FAILED - " + text))
        r = refused(lambda c: c.exchange_declare(
            "chx-r2", "x-consistent-hash",
            arguments={"hash-header": "h", "hash-property": "message_id"}), self.c)
        self.assertEqual(r, ("channel", 406, "PRECONDITION_FAILED - hash-header and "
                             "hash-property are mutually exclusive"))
        r = refused(lambda c: c.exchange_declare(
            "chx-r3", "x-consistent-hash", arguments={"hash-property": "app_id"}), self.c)
        self.assertEqual(r, ("channel", 406, "PRECONDITION_FAILED - Unsupported property: app_id"))
        # RabbitMQ 3.10 answers a non-string hash-header with 541; Warren with 406
        r = refused(lambda c: c.exchange_declare(
            "chx-r4", "x-consistent-hash", arguments={"hash-header": 5}), self.c)
        self.assertEqual(r[:2], ("channel", 406))
        self.ch = self.c.channel()
        self.ch.exchange_delete("chx-r")
        self.ch.queue_delete("chx-rq")

    def test_distribution_follows_weights(self):
        ch = self.ch
        ch.exchange_declare("chx-w", "x-consistent-hash")
        qs = ["chx-w1", "chx-w2", "chx-w3"]
        for q, w in zip(qs, ["1", "2", "3"]):
            ch.queue_declare(q)
            ch.queue_purge(q)
            ch.queue_bind(q, "chx-w", w)
        n = 100000
        for i in range(n):
            ch.basic_publish("chx-w", "key-%d" % i, b"")
        counts = [ch.queue_declare(q, passive=True).method.message_count for q in qs]
        self.assertEqual(sum(counts), n)
        for c, w in zip(counts, [1, 2, 3]):
            share, want = c / n, w / 6
            print("  weight %d: %.4f of the keys (want %.4f)" % (w, share, want))
            self.assertLess(abs(share - want) / want, 0.03)
        for q in qs:
            ch.queue_delete(q)
        ch.exchange_delete("chx-w")

    def test_adding_a_queue_moves_only_its_share(self):
        ch = self.ch
        ch.exchange_declare("chx-m", "x-consistent-hash")
        qs = ["chx-m%d" % i for i in range(4)]
        for q in qs:
            ch.queue_declare(q)
        for q in qs[:3]:
            ch.queue_bind(q, "chx-m", "10")
        keys = ["job-%d" % i for i in range(20000)]
        before = self.placement("chx-m", qs, keys)
        ch.queue_bind(qs[3], "chx-m", "10")
        after = self.placement("chx-m", qs, keys)
        moved = [k for k in keys if before[k] != after[k]]
        print("  a fourth equal queue took %.1f%% of the keys" % (100 * len(moved) / len(keys)))
        self.assertTrue(all(after[k] == qs[3] for k in moved), "keys moved only to the new queue")
        self.assertLess(abs(len(moved) / len(keys) - 0.25), 0.03)
        # and removing it puts them back where they were
        ch.queue_unbind(qs[3], "chx-m", "10")
        self.assertEqual(self.placement("chx-m", qs, keys), before)
        for q in qs:
            ch.queue_delete(q)
        ch.exchange_delete("chx-m")

    def test_header_and_property(self):
        ch = self.ch
        ch.exchange_declare("chx-h", "x-consistent-hash", arguments={"hash-header": "tenant"})
        ch.exchange_declare("chx-p", "x-consistent-hash",
                            arguments={"hash-property": "message_id"})
        qs = ["chx-hp%d" % i for i in range(3)]
        for q in qs:
            ch.queue_declare(q)
            ch.queue_bind(q, "chx-h", "1")
            ch.queue_bind(q, "chx-p", "1")
        keys = ["t%d" % i for i in range(300)]
        by_header = self.placement("chx-h", qs, keys, headers=lambda k: {"tenant": k})
        by_id = self.placement("chx-p", qs, keys, message_id=lambda k: k)
        self.assertEqual(len(set(by_header.values())), 3)
        # the routing key plays no part: the same tenant lands in the same place again
        self.assertEqual(self.placement("chx-h", qs, keys, headers=lambda k: {"tenant": k}),
                         by_header)
        self.assertEqual(len(set(by_id.values())), 3)
        for q in qs:
            ch.queue_delete(q)
        ch.exchange_delete("chx-h")
        ch.exchange_delete("chx-p")

    def test_placement_survives_a_restart(self):
        ch = self.ch
        ch.exchange_declare("chx-d", "x-consistent-hash", durable=True)
        qs = ["chx-d%d" % i for i in range(5)]
        for i, q in enumerate(qs):
            ch.queue_declare(q, durable=True)
            ch.queue_bind(q, "chx-d", str(i + 1))
        keys = ["order-%d" % i for i in range(2000)]
        before = self.placement("chx-d", qs, keys)
        self.c.close()
        self.node.restart()
        self.c = self.node.connect()
        self.ch = self.c.channel()
        self.assertEqual(self.placement("chx-d", qs, keys), before)
        for q in qs:
            self.ch.queue_delete(q)
        self.ch.exchange_delete("chx-d")


class DelayedTests(Base):
    def setUp(self):
        self.c = self.node.connect()
        self.ch = self.c.channel()

    def tearDown(self):
        self.c.close()

    def test_declare_refusals(self):
        r = refused(lambda c: c.exchange_declare("dx-bad", "x-delayed-message"), self.c)
        self.assertEqual(r, ("channel", 406, "PRECONDITION_FAILED - Invalid argument, "
                             "'x-delayed-type' must be an existing exchange type"))
        r = refused(lambda c: c.exchange_declare(
            "dx-bad", "x-delayed-message", arguments={"x-delayed-type": "x-delayed-message"}),
            self.c)
        self.assertEqual(r[:2], ("channel", 406))
        r = refused(lambda c: c.exchange_declare(
            "dx-bad", "x-delayed-message", arguments={"x-delayed-type": "nosuch"}), self.c)
        self.assertEqual(r[:2], ("connection", 503))
        self.c = self.node.connect()
        self.ch = self.c.channel()

    def test_due_order_timing_and_header(self):
        ch = self.ch
        ch.exchange_declare("dx-t", "x-delayed-message", arguments={"x-delayed-type": "topic"})
        ch.queue_declare("dx-tq")
        ch.queue_purge("dx-tq")
        ch.queue_bind("dx-tq", "dx-t", "jobs.#")
        ch.confirm_delivery()
        delays = [(i * 37) % 400 + 50 for i in range(60)]
        sent = {}
        for i, d in enumerate(delays):
            before = time.monotonic()
            # mandatory: not returned now (routed when due)
            ch.basic_publish("dx-t", "jobs.a", str(i).encode(),
                             pika.BasicProperties(headers={"x-delay": d}), mandatory=True)
            # the broker stamped it between these two moments
            sent[str(i)] = (before + d / 1000.0, d, time.monotonic() + d / 1000.0)
        ch.basic_publish("dx-t", "other.key", b"nowhere",
                         pika.BasicProperties(headers={"x-delay": 10}))
        ch.basic_publish("dx-t", "jobs.now", b"now", pika.BasicProperties(headers={"x-delay": 0}))
        got, early, late = [], [], []
        for m, p, body in ch.consume("dx-tq", auto_ack=True, inactivity_timeout=2):
            if m is None:
                break
            now = time.monotonic()
            b = body.decode()
            got.append(b)
            if b == "now":
                self.assertEqual(p.headers, {"x-delay": 0})
                continue
            due, d, _ = sent[b]
            self.assertEqual(p.headers, {"x-delay": -d})
            if now < due - 0.002:
                early.append(b)
            late.append(now - due)
        ch.cancel()
        self.assertEqual(len(got), 61)
        self.assertEqual(got[0], "now")
        self.assertEqual(early, [], "delivered early")
        # in due order: a message delivered after another cannot have been
        # due surely before it (each one's due time is known to lie
        # between its earliest and latest bound, whatever the load; the
        # broker counts in whole milliseconds, so a due time may fall up to
        # 1 ms before its client-side bound: 2 ms of slack, as for early)
        bounds = [(sent[b][0], sent[b][2]) for b in got[1:]]
        for i, (lo_a, hi_a) in enumerate(bounds):
            for lo_b, hi_b in bounds[i + 1:]:
                self.assertFalse(hi_b < lo_a - 0.002, "delivered out of due order: %.2f ms" %
                                 (1000 * (lo_a - hi_b)))
        late.sort()
        print("  lateness: median %.1f ms, max %.1f ms" % (1000 * late[len(late) // 2],
                                                           1000 * late[-1]))
        ch.exchange_delete("dx-t")
        ch.queue_delete("dx-tq")

    def test_above_max_delay_is_unroutable(self):
        ch = self.ch
        ch.exchange_declare("dx-m", "x-delayed-message", arguments={"x-delayed-type": "direct"})
        ch.queue_declare("dx-mq")
        ch.queue_bind("dx-mq", "dx-m", "k")
        returned = []
        ch.add_on_return_callback(lambda *a: returned.append(a[3]))
        ch.basic_publish("dx-m", "k", b"too far", pika.BasicProperties(headers={"x-delay": 3600001}),
                         mandatory=True)
        ch.queue_declare("dx-mq", passive=True)
        self.c.process_data_events(0.2)
        self.assertEqual(returned, [b"too far"])
        self.assertIn("is above max_delay", self.node.b.log_text())
        ch.exchange_delete("dx-m")
        ch.queue_delete("dx-mq")

    def test_deleting_the_exchange_drops_pending(self):
        ch = self.ch
        ch.exchange_declare("dx-d", "x-delayed-message", arguments={"x-delayed-type": "fanout"})
        ch.queue_declare("dx-dq")
        ch.queue_bind("dx-dq", "dx-d", "")
        for i in range(1000):
            ch.basic_publish("dx-d", "", b"x" * 100, pika.BasicProperties(headers={"x-delay": 60000}))
        ch.exchange_delete("dx-d")  # pending messages freed (ASan would see a leak)
        self.assertEqual(ch.queue_declare("dx-dq", passive=True).method.message_count, 0)
        ch.queue_delete("dx-dq")


def rabbit_hash(password, salt=b"\x01\x02\x03\x04"):
    """RabbitMQ's stored form: base64(salt + SHA-256(salt + password))."""
    import hashlib
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


USERS_FILE = """# users of the auth_file test
user alice plain:alice-pw management
vhost alice / ^alice\\. .* .*
topic alice / amq.topic ^alice\\. ^alice\\.
user bob sha256:%s
vhost bob / - - -
""" % rabbit_hash("bob-pw")


class AuthFileTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.users = tempfile.NamedTemporaryFile("w", suffix=".users", delete=False)
        cls.users.write(USERS_FILE)
        cls.users.close()
        cls.node = Node("plugins.directory = %s\nplugins.enabled.1 = auth_file\n"
                        "plugin.auth_file.path = %s\n"
                        "auth_backends.1 = file\nauth_backends.2 = internal\n"
                        % (PLUGINS, cls.users.name))

    @classmethod
    def tearDownClass(cls):
        rc, text = cls.node.stop()
        os.unlink(cls.users.name)
        assert rc == 0 and "AddressSanitizer" not in text, text[-5000:]

    def connect(self, user, password, vhost="/"):
        return pika.BlockingConnection(pika.ConnectionParameters(
            host=harness.HOST, port=self.node.b.port, virtual_host=vhost, heartbeat=0,
            credentials=pika.PlainCredentials(user, password)))

    def rewrite(self, text):
        with open(self.users.name + ".tmp", "w") as f:
            f.write(text)
        os.rename(self.users.name + ".tmp", self.users.name)
        mark = self.node.b.log_text().count("re-read")
        self.node.b.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while self.node.b.log_text().count("re-read") == mark:
            self.assertLess(time.monotonic(), deadline, "no reload logged")
            time.sleep(0.05)

    def test_a_file_users_and_their_permissions(self):
        c = self.connect("alice", "alice-pw")
        r = refused(lambda ch: ch.queue_declare("other.q"), c)
        self.assertEqual(r, ("channel", 403, "ACCESS_REFUSED - access to queue 'other.q' in "
                             "vhost '/' refused for user 'alice'"))
        ch = c.channel()
        ch.queue_declare("alice.q", auto_delete=True)
        ch.queue_bind("alice.q", "amq.topic", "alice.#")
        ch.basic_publish("amq.topic", "alice.one", b"mine")
        r = refused(lambda ch: ch.basic_publish("amq.topic", "bob.one", b"not mine") or
                    ch.queue_declare("alice.q", passive=True), c)
        self.assertEqual(r, ("channel", 403, "ACCESS_REFUSED - access to topic 'bob.one' in "
                             "exchange 'amq.topic' in vhost '/' refused for user 'alice'"))
        c.close()
        # bob: a RabbitMQ hash; his vhost entry grants the vhost and nothing in it
        c = self.connect("bob", "bob-pw")
        r = refused(lambda ch: ch.queue_declare("bob.q"), c)
        self.assertEqual(r[:2], ("channel", 403))
        c.close()
        with self.assertRaises(pika.exceptions.ProbableAuthenticationError):
            self.connect("bob", "wrong")
        # the internal table comes second: guest still gets in
        c = self.connect("guest", "guest")
        c.close()
        with self.assertRaises(pika.exceptions.ProbableAuthenticationError):
            self.connect("nobody", "x")

    def test_b_vhost_not_granted(self):
        with self.assertRaises(pika.exceptions.ProbableAccessDeniedError):
            self.connect("alice", "alice-pw", vhost="other")

    def test_c_reload_on_sighup(self):
        c = self.connect("alice", "alice-pw")
        ch = c.channel()
        ch.queue_declare("alice.before", auto_delete=True)
        # a bad file keeps the users read before
        self.rewrite(USERS_FILE + "frob x\n")
        self.assertIn("users not re-read, the ones read before stay", self.node.b.log_text())
        ch.queue_declare("alice.still", auto_delete=True)
        # alice narrowed to alice.only.*: the open connection follows at once
        self.rewrite(USERS_FILE.replace("^alice\\. .* .*", "^alice\\.only\\. .* .*"))
        r = refused(lambda ch: ch.queue_declare("alice.after"), c)
        self.assertEqual(r[:2], ("channel", 403))
        ch = c.channel()
        ch.queue_declare("alice.only.q", auto_delete=True)
        c.close()
        # alice removed: no more logins
        self.rewrite(USERS_FILE.split("user bob")[0].replace("alice", "carol"))
        with self.assertRaises(pika.exceptions.ProbableAuthenticationError):
            self.connect("alice", "alice-pw")
        self.rewrite(USERS_FILE)

    def test_unknown_backend_stops_the_start(self):
        import subprocess
        d = tempfile.mkdtemp(prefix="warren-plugins-")
        conf = os.path.join(d, "warren.conf")
        with open(conf, "w") as f:
            f.write("auth_backends.1 = ldap\n")
        r = subprocess.run([harness.find_warrend(), "-c", conf, "--port", str(harness.free_port()),
                            "--data-dir", os.path.join(d, "data"), "--mgmt-port", "0"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        shutil.rmtree(d, ignore_errors=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"auth_backends: no backend 'ldap'", r.stdout)


class DelayedDurableTests(unittest.TestCase):
    """Persistent messages on a durable delayed exchange survive SIGKILL and
    fire at their original due time; late ones at once."""

    def test_survive_sigkill_and_fire_on_time(self):
        node = Node(Base.conf)
        try:
            c = node.connect()
            ch = c.channel()
            ch.exchange_declare("dxd", "x-delayed-message", durable=True,
                                arguments={"x-delayed-type": "direct"})
            ch.exchange_declare("dxd-gone", "x-delayed-message", durable=True,
                                arguments={"x-delayed-type": "direct"})
            ch.queue_declare("dxd-q", durable=True)
            ch.queue_bind("dxd-q", "dxd", "k")
            ch.queue_bind("dxd-q", "dxd-gone", "k")
            ch.confirm_delivery()
            t0 = time.monotonic()
            persistent = lambda d: pika.BasicProperties(headers={"x-delay": d}, delivery_mode=2)
            ch.basic_publish("dxd", "k", b"late", persistent(300))
            ch.basic_publish("dxd", "k", b"due-4s", persistent(4000))
            ch.basic_publish("dxd", "k", b"due-5s", persistent(5000))
            ch.basic_publish("dxd", "k", b"transient", pika.BasicProperties(headers={"x-delay": 300}))
            ch.basic_publish("dxd-gone", "k", b"exchange deleted", persistent(300))
            ch.exchange_delete("dxd-gone")  # its held message goes with it
            c.close()
            # killed before "late" is due: it comes back late and goes at once
            harness._stop(node.b, signal.SIGKILL)
            time.sleep(max(0, 0.5 - (time.monotonic() - t0)))
            node.restart()
            self.assertIn("recovery: 3 messages held by exchanges", node.b.log_text())
            c = node.connect()
            ch = c.channel()
            got = []
            for m, p, body in ch.consume("dxd-q", auto_ack=True, inactivity_timeout=3):
                if m is None and time.monotonic() - t0 > 6.5:
                    break
                if m is not None:
                    got.append((body, time.monotonic() - t0, p.headers["x-delay"]))
            ch.cancel()
            self.assertEqual([g[0] for g in got], [b"late", b"due-4s", b"due-5s"])
            self.assertEqual([g[2] for g in got], [-300, -4000, -5000])
            # on time by the first run's clock (not early; late by little)
            for body, at, delay in got[1:]:
                self.assertGreaterEqual(at, -delay / 1000 - 0.05, body)
                self.assertLess(at, -delay / 1000 + 1.0, body)
            c.close()
            # all released: a restart brings nothing back
            node.restart()
            self.assertNotIn("messages held by exchanges", node.b.log_text().split("starting")[-1])
        finally:
            rc, text = node.stop()
        self.assertEqual(rc, 0, text[-3000:])


if __name__ == "__main__":
    harness.main()
