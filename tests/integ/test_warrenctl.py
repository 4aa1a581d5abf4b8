#!/usr/bin/python3
"""warrenctl against a real warrend: every command, with its effect checked
through AMQP (pika) or the management API rather than by its exit status
alone; JSON output parsed; the errors (broker down: 3, bad login: 1,
unknown object: 1 with the name, bad usage: 2); the connection settings
from flags, environment and configuration file; https through a TLS
relay with a test certificate; a listing of 10,000 queues; the job-queue
commands (queue peek, queue move, dlq replay), with a broker killed by
SIGKILL in the middle of a move or a replay of 20,000 persistent messages;
the bash completion, sourced in bash and called as bash calls it.

WARRENCTL names the binary (make sets it); else src/warrenctl of the tree.
Against RabbitMQ: WARREN_TEST_PORT=5690 WARREN_TEST_MGMT_PORT=15690.
"""
import json
import os
import pty
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

import pika

import harness
import mgmtcase
from mgmtcase import q


def find_warrenctl():
    env = os.environ.get("WARRENCTL")
    if env:
        return env
    roots = [os.environ.get("abs_top_builddir"), os.environ.get("top_builddir"),
             os.path.join(harness.HERE, "..", ".."), os.getcwd()]
    for root in roots:
        if root:
            p = os.path.join(root, "src", "warrenctl")
            if os.path.isfile(p) and os.access(p, os.X_OK):
                return os.path.abspath(p)
    raise RuntimeError("warrenctl binary not found; build it or set WARRENCTL")


WARRENCTL = find_warrenctl()


class Result:
    def __init__(self, p):
        self.rc, self.out, self.err = p.returncode, p.stdout, p.stderr

    @property
    def json(self):
        return json.loads(self.out)

    def __repr__(self):
        return "<rc %d out %r err %r>" % (self.rc, self.out[-500:], self.err[-500:])


class CtlCase(mgmtcase.MgmtTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.home = tempfile.mkdtemp(prefix="warrenctl-home-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.home, ignore_errors=True)
        super().tearDownClass()

    @property
    def url(self):
        return "http://%s:%d" % (harness.HOST, self.mgmt_port)

    def env(self, extra=None):
        e = {k: v for k, v in os.environ.items() if not k.startswith("WARREN_")
             and k not in ("XDG_CONFIG_HOME", "NO_COLOR")}
        e["HOME"] = self.home
        e.update(extra or {})
        return e

    def ctl(self, *args, url=True, env=None, input=None, binary=False):
        argv = [WARRENCTL] + (["--url", self.url] if url else []) + list(args)
        p = subprocess.run(argv, capture_output=True, text=not binary, input=input,
                           env=self.env(env), timeout=60)
        return Result(p)

    def ok(self, *args, **kw):
        r = self.ctl(*args, **kw)
        self.assertEqual(r.rc, 0, r)
        return r

    def fails(self, rc, *args, **kw):
        r = self.ctl(*args, **kw)
        self.assertEqual(r.rc, rc, r)
        self.assertEqual(r.err.count("\n"), 1 if rc != 2 else r.err.count("\n"), r)
        return r

    def queue(self, name, vhost="/"):
        r = self.get("/api/queues/%s/%s" % (q(vhost), q(name)))
        return r.json if r.status == 200 else None

    def cleanup_queue(self, name, vhost="/"):
        self.addCleanup(self.delete, "/api/queues/%s/%s" % (q(vhost), q(name)))


class Usage(CtlCase):

    def test_help(self):
        r = self.ok("--help", url=False)
        for cmd in ("show overview", "list queues", "declare queue", "delete binding",
                    "purge queue", "publish", "get --queue", "close connections",
                    "definitions import", "health-check port-listener PORT",
                    "change-password", "set user-tags", "queue peek --name",
                    "queue move --from Q --to Q", "dlq replay --queue Q"):
            self.assertIn(cmd, r.out)
        r = self.ok("declare", "queue", "--help", url=False)
        self.assertIn("--durable", r.out)
        self.assertIn("--arg K=V", r.out)
        r = self.ok("help", "list", url=False)
        self.assertIn("list topic-permissions", r.out)
        r = self.ok("help", "get", url=False)
        self.assertIn("--ack", r.out)
        self.ok("list", "--help", url=False)
        self.assertIn("warrenctl", self.ok("--version", url=False).out)

    def test_bad_usage_exits_2(self):
        for args in (["frobnicate"], ["list", "widgets"], ["list", "queues", "--bogus"],
                     ["declare", "queue"], ["declare", "queue", "--name"],
                     ["--format", "xml", "list", "queues"],
                     ["declare", "queue", "--name", "x", "--type", "lazy"],
                     ["declare", "queue", "--name", "x", "--arg", "novalue"],
                     ["get", "--queue", "x", "--count", "0"],
                     ["get", "--queue", "x", "--ack", "--requeue"],
                     ["list", "queues", "--filter", "("],
                     ["health-check", "port-listener", "http"],
                     ["--url", "ftp://x", "list", "queues"],
                     ["--url", "http://u:p@host", "list", "queues"],
                     ["--port", "70000", "list", "queues"],
                     ["queue", "move", "--from", "a", "--to", "a"],
                     ["queue", "move", "--from", "a", "--to", "b", "--count", "0"],
                     ["queue", "move", "--from", "a"],
                     ["queue", "peek", "--name", "a", "--count", "10001"],
                     ["dlq", "replay", "--queue", "d", "--dry-run", "--count", "10001"],
                     ["dlq", "replay", "--queue", "d", "--count", "x"], []):
            r = self.ctl(*args, url=False)
            self.assertEqual(r.rc, 2, (args, r))
            self.assertTrue(r.err.startswith("warrenctl: ") or r.err.startswith("Usage"),
                            (args, r))
        r = self.ctl("list", "queues", "--bogus")
        self.assertIn("unknown flag '--bogus'", r.err)
        r = self.ctl("declare", "queue")
        self.assertIn("--name", r.err)


class Errors(CtlCase):

    def test_broker_down_exits_3(self):
        port = harness.free_port()
        r = self.ctl("--url", "http://127.0.0.1:%d" % port, "list", "queues", url=False)
        self.assertEqual(r.rc, 3, r)
        self.assertIn("cannot reach the broker at http://127.0.0.1:%d" % port, r.err)
        self.assertEqual(r.err.count("\n"), 1, r)

    def test_wrong_password_exits_1(self):
        r = self.fails(1, "--password", "wrong", "list", "queues")
        self.assertIn("login refused for user 'guest'", r.err)
        self.assertIn("401", r.err)

    def test_unknown_queue_404(self):
        r = self.fails(1, "show", "queue", "--name", "no-such-queue")
        self.assertIn("queue 'no-such-queue' in vhost '/': not found", r.err)
        r = self.fails(1, "--vhost", "no-such-vhost", "declare", "queue", "--name", "x")
        self.assertIn("vhost 'no-such-vhost' not found", r.err)

    def test_bad_request_gives_reason(self):
        name = self.unique("q")
        self.cleanup_queue(name)
        self.ok("declare", "queue", "--name", name, "--durable")
        # redeclared with other properties: the broker's 400 and its reason
        r = self.fails(1, "declare", "queue", "--name", name)
        self.assertIn("(400)", r.err)
        self.assertIn("durable", r.err)

    def test_not_authorised(self):
        user = self.unique("u")
        self.add_user(user, "pw", tags="")
        r = self.fails(1, "--username", user, "--password", "pw", "list", "users")
        self.assertIn("401", r.err)


class Objects(CtlCase):

    def test_declare_queue_typed_arguments(self):
        name = self.unique("q")
        self.cleanup_queue(name)
        r = self.ok("declare", "queue", "--name", name, "--durable",
                    "--arg", "x-max-length=10", "--arg", "x-overflow=reject-publish",
                    "--arg", "x-message-ttl=60000", "--arg", "x-single-active-consumer=true")
        self.assertIn("declared", r.out)
        info = self.queue(name)
        self.assertIs(info["durable"], True)
        self.assertEqual(info["arguments"], {"x-max-length": 10,
                                             "x-overflow": "reject-publish",
                                             "x-message-ttl": 60000,
                                             "x-single-active-consumer": True})
        # AMQP agrees: a passive redeclare with the same typed arguments
        conn = self.connect()
        self.addCleanup(conn.close)
        ch = conn.channel()
        ch.queue_declare(name, durable=True, arguments={
            "x-max-length": 10, "x-overflow": "reject-publish", "x-message-ttl": 60000,
            "x-single-active-consumer": True})

    def test_declare_queue_type(self):
        name = self.unique("q")
        self.cleanup_queue(name)
        self.ok("declare", "queue", "--name", name, "--type", "classic")
        self.assertEqual(self.queue(name)["arguments"], {"x-queue-type": "classic"})
        self.assertEqual(self.queue(name)["type"], "classic")
        # a quorum queue is durable without --durable, and shows its type
        qq = self.unique("qq")
        self.cleanup_queue(qq)
        self.ok("declare", "queue", "--name", qq, "--type", "quorum")
        info = self.queue(qq)
        self.assertEqual((info["type"], info["durable"], info["arguments"]),
                         ("quorum", True, {"x-queue-type": "quorum"}))
        self.assertEqual(info["members"], [info["leader"]])

    def test_exchange_binding_publish_get(self):
        x, qn = self.unique("x"), self.unique("q")
        self.addCleanup(self.delete, "/api/exchanges/%2F/" + q(x))
        self.cleanup_queue(qn)
        self.ok("declare", "exchange", "--name", x, "--type", "topic", "--durable")
        ex = self.get_ok("/api/exchanges/%2F/" + q(x))
        self.assertEqual((ex["type"], ex["durable"], ex["internal"]), ("topic", True, False))
        self.ok("declare", "queue", "--name", qn)
        self.ok("declare", "binding", "--source", x, "--destination", qn,
                "--routing-key", "a.*")
        r = self.ok("--format", "json", "list", "bindings")
        self.assertIn({"source": x, "destination": qn, "routing_key": "a.*"},
                      [{k: b[k] for k in ("source", "destination", "routing_key")}
                       for b in r.json])
        r = self.ok("publish", "--exchange", x, "--routing-key", "a.b", "--payload", "hello",
                    "--property", "delivery_mode=2", "--property", "message_id=42",
                    "--property", "content_type=text/plain", "--header", "n=7",
                    "--header", "flag=true", "--header", "s=x=y")
        self.assertIn("routed", r.out)
        self.assertNotIn("not routed", r.out)
        r = self.ok("publish", "--exchange", x, "--routing-key", "zzz", "--payload", "lost")
        self.assertIn("not routed", r.out)
        # get --requeue (the default) leaves the message; the API says so
        r = self.ok("--format", "json", "get", "--queue", qn)
        self.assertEqual(r.json[0]["payload"], "hello")
        self.assertEqual(r.json[0]["routing_key"], "a.b")
        self.wait_for(lambda: self.queue(qn)["messages"] == 1, what="requeued")
        # pika sees the properties and typed headers
        conn = self.connect()
        self.addCleanup(conn.close)
        ch = conn.channel()
        m, props, body = ch.basic_get(qn, auto_ack=False)
        self.assertEqual(body, b"hello")
        self.assertEqual(props.delivery_mode, 2)
        self.assertEqual(props.message_id, "42")
        self.assertEqual(props.content_type, "text/plain")
        self.assertEqual(props.headers, {"n": 7, "flag": True, "s": "x=y"})
        ch.basic_nack(m.delivery_tag, requeue=True)
        # get --ack takes it
        r = self.ok("--format", "tsv", "get", "--queue", qn, "--ack", "--count", "5")
        lines = r.out.splitlines()
        self.assertEqual(lines[0].split("\t")[0], "exchange")
        self.assertEqual(len(lines), 2)
        self.assertEqual(lines[1].split("\t")[-1], "hello")
        self.wait_for(lambda: self.queue(qn)["messages"] == 0, what="acked")
        self.assertEqual(ch.basic_get(qn, auto_ack=True)[0], None)
        # delete the binding, then the exchange
        self.ok("delete", "binding", "--source", x, "--destination", qn, "--routing-key", "a.*")
        r = self.ok("publish", "--exchange", x, "--routing-key", "a.b", "--payload", "x")
        self.assertIn("not routed", r.out)
        r = self.fails(1, "delete", "binding", "--source", x, "--destination", qn,
                       "--routing-key", "a.*")
        self.assertIn("not found", r.err)
        self.ok("delete", "exchange", "--name", x, "--if-unused")
        self.assertEqual(self.get("/api/exchanges/%2F/" + q(x)).status, 404)

    def test_exchange_to_exchange_binding(self):
        a, b, qn = self.unique("xa"), self.unique("xb"), self.unique("q")
        for x in (a, b):
            self.addCleanup(self.delete, "/api/exchanges/%2F/" + q(x))
            self.ok("declare", "exchange", "--name", x, "--type", "fanout")
        self.cleanup_queue(qn)
        self.ok("declare", "queue", "--name", qn)
        self.ok("declare", "binding", "--source", a, "--destination", b,
                "--destination-type", "exchange")
        self.ok("declare", "binding", "--source", b, "--destination", qn)
        self.ok("publish", "--exchange", a, "--payload", "via-e2e")
        self.wait_for(lambda: self.queue(qn)["messages"] == 1, what="routed through e2e")
        self.ok("delete", "binding", "--source", a, "--destination", b,
                "--destination-type", "exchange")
        r = self.ok("publish", "--exchange", a, "--payload", "x")
        self.assertIn("not routed", r.out)

    def test_publish_stdin_file_binary(self):
        qn = self.unique("q")
        self.cleanup_queue(qn)
        self.ok("declare", "queue", "--name", qn)
        self.ok("publish", "--routing-key", qn, input="from stdin")
        blob = bytes(range(256)) * 3
        path = os.path.join(self.home, "blob.bin")
        with open(path, "wb") as f:
            f.write(blob)
        self.ok("publish", "--routing-key", qn, "--file", path)
        conn = self.connect()
        self.addCleanup(conn.close)
        ch = conn.channel()
        self.assertEqual(ch.basic_get(qn, auto_ack=True)[2], b"from stdin")
        self.assertEqual(ch.basic_get(qn, auto_ack=True)[2], blob)
        r = self.fails(2, "publish", "--routing-key", qn, "--file", path + ".missing")
        self.assertIn("No such file", r.err)

    def test_purge_and_conditional_delete(self):
        qn = self.unique("q")
        self.cleanup_queue(qn)
        self.ok("declare", "queue", "--name", qn)
        for i in range(3):
            self.ok("publish", "--routing-key", qn, "--payload", str(i))
        self.wait_for(lambda: self.queue(qn)["messages"] == 3, what="3 messages")
        r = self.fails(1, "delete", "queue", "--name", qn, "--if-empty")
        self.assertIn(qn, r.err)
        self.assertIsNotNone(self.queue(qn))
        self.ok("purge", "queue", "--name", qn)
        self.wait_for(lambda: self.queue(qn)["messages"] == 0, what="purged")
        conn = self.connect()
        ch = conn.channel()
        ch.basic_consume(qn, lambda *a: None)
        r = self.fails(1, "delete", "queue", "--name", qn, "--if-unused")
        self.assertIsNotNone(self.queue(qn))
        conn.close()
        self.wait_for(lambda: self.queue(qn)["consumers"] == 0, what="consumer gone")
        self.ok("delete", "queue", "--name", qn, "--if-empty", "--if-unused")
        self.assertIsNone(self.queue(qn))
        r = self.fails(1, "purge", "queue", "--name", qn)
        self.assertIn("not found", r.err)


class Listings(CtlCase):

    def test_list_formats_columns_sort_filter(self):
        names = [self.unique("lst-%d" % i) for i in range(3)]
        for i, n in enumerate(names):
            self.cleanup_queue(n)
            self.ok("declare", "queue", "--name", n)
            for _ in range(i):
                self.ok("publish", "--routing-key", n, "--payload", "m")
        self.wait_for(lambda: self.queue(names[2])["messages"] == 2, what="messages")
        r = self.ok("--format", "json", "list", "queues")
        got = {x["name"]: x for x in r.json}
        self.assertTrue(set(names) <= set(got))
        self.assertEqual(got[names[2]]["messages"], 2)
        r = self.ok("--format", "json", "list", "queues", "--columns", "name,messages",
                    "--filter", "^lst-", "--sort", "messages")
        self.assertEqual([x["name"] for x in r.json][-3:], names)
        self.assertEqual(set(r.json[0]), {"name", "messages"})
        r = self.ok("--format", "tsv", "list", "queues", "--columns", "messages,name",
                    "--filter", "^lst-")
        lines = r.out.splitlines()
        self.assertEqual(lines[0], "messages\tname")
        self.assertEqual(sorted(lines[1:]), sorted("%d\t%s" % (i, n) for i, n in enumerate(names)))
        r = self.ok("list", "queues", "--filter", "^lst-")
        self.assertEqual(len(r.out.splitlines()), 4)
        self.assertTrue(r.out.splitlines()[0].startswith("name"))
        self.assertNotIn("\033", r.out)  # not a terminal: no colour
        r = self.ok("--format", "json", "list", "queues", "--filter", "^nothing-matches$")
        self.assertEqual(r.json, [])

    def test_human_numbers_in_table(self):
        qn = self.unique("many")
        self.cleanup_queue(qn)
        conn = self.connect()
        self.addCleanup(conn.close)
        ch = conn.channel()
        ch.queue_declare(qn)
        for _ in range(1500):
            ch.basic_publish("", qn, b"x" * 10)
        self.wait_for(lambda: self.queue(qn)["messages"] == 1500, what="1500 messages")
        r = self.ok("list", "queues", "--filter", "^many-", "--columns",
                    "name,messages,message_bytes")
        self.assertRegex(r.out, r"1\.5k +14\.6 KiB")
        r = self.ok("--format", "tsv", "list", "queues", "--filter", "^many-", "--columns",
                    "name,messages,message_bytes")
        self.assertEqual(r.out.splitlines()[1], "%s\t1500\t15000" % qn)

    def test_other_listings(self):
        conn = self.connect(client_properties={"connection_name": "ctl-test"})
        self.addCleanup(conn.close)
        ch = conn.channel()
        qn = ch.queue_declare("", exclusive=True).method.queue
        tag = ch.basic_consume(qn, lambda *a: None)
        self.wait_for(lambda: self.ok("--format", "json", "list", "consumers").json,
                      what="consumer listed")
        r = self.ok("--format", "json", "list", "consumers")
        self.assertIn(tag, [c["consumer_tag"] for c in r.json])
        r = self.ok("--format", "json", "list", "channels")
        self.assertTrue(r.json)
        r = self.ok("--format", "json", "list", "connections")
        self.assertTrue(any(c["user"] == "guest" for c in r.json))
        r = self.ok("--format", "json", "list", "exchanges")
        self.assertIn("amq.topic", [x["name"] for x in r.json])
        r = self.ok("--format", "json", "list", "vhosts")
        self.assertIn("/", [x["name"] for x in r.json])
        r = self.ok("--format", "json", "list", "users")
        self.assertIn("guest", [x["name"] for x in r.json])
        r = self.ok("--format", "json", "list", "permissions")
        self.assertIn(("guest", "/"), [(x["user"], x["vhost"]) for x in r.json])
        self.ok("list", "topic-permissions")
        r = self.ok("list", "consumers")
        self.assertIn(tag, r.out)

    def test_ten_thousand_queues_in_a_second(self):
        if self.external:
            self.skipTest("creates 10,000 queues")
        conn = self.connect()
        ch = conn.channel()
        names = ["page-%05d" % i for i in range(10000)]
        try:
            for n in names:
                ch.queue_declare(n)
            t0 = time.monotonic()
            r = self.ok("--format", "tsv", "list", "queues", "--columns", "name")
            took = time.monotonic() - t0
            got = [l for l in r.out.splitlines()[1:] if l.startswith("page-")]
            self.assertEqual(got, names)
            print("\n    10,000 queues listed in %.2f s" % took)
            limit = 5.0 if os.environ.get("WARREN_SANITIZERS") else 1.0
            self.assertLess(took, limit)
        finally:
            for n in names:
                ch.queue_delete(n)
            conn.close()


class Show(CtlCase):

    def test_show(self):
        r = self.ok("--format", "json", "show", "overview")
        self.assertIn("object_totals", r.json)
        r = self.ok("show", "overview")
        self.assertRegex(r.out, r"object_totals\.queues +\d")
        r = self.ok("--format", "json", "show", "whoami")
        self.assertEqual(r.json["name"], "guest")
        r = self.ok("--format", "json", "show", "node")
        self.assertIn("mem_used", r.json)
        node = r.json["name"]
        r = self.ok("--format", "tsv", "show", "node", "--name", node)
        self.assertIn("name\t%s" % node, r.out.splitlines())
        r = self.ok("show", "node")
        self.assertRegex(r.out, r"mem_used +[\d.]+ (B|KiB|MiB|GiB)")
        qn = self.unique("q")
        self.cleanup_queue(qn)
        self.ok("declare", "queue", "--name", qn, "--durable")
        r = self.ok("--format", "json", "show", "queue", "--name", qn)
        self.assertEqual((r.json["name"], r.json["durable"]), (qn, True))


class Access(CtlCase):

    def test_vhost_user_permissions(self):
        vh, user = "ctl vh/%s" % self.unique("v"), self.unique("user")
        self.addCleanup(self.delete, "/api/vhosts/" + q(vh))
        self.addCleanup(self.delete, "/api/users/" + q(user))
        self.ok("declare", "vhost", "--name", vh)
        self.assertEqual(self.get_ok("/api/vhosts/" + q(vh))["name"], vh)
        self.ok("declare", "user", "--name", user, "--password", "pw1", "--tags",
                "monitoring,management")
        self.assertEqual(sorted(self.get_ok("/api/users/" + q(user))["tags"]),
                         ["management", "monitoring"])
        self.ok("--vhost", vh, "declare", "permissions", "--user", user, "--configure", "^c",
                "--write", "^w", "--read", ".*")
        p = self.get_ok("/api/permissions/%s/%s" % (q(vh), q(user)))
        self.assertEqual((p["configure"], p["write"], p["read"]), ("^c", "^w", ".*"))
        self.ok("declare", "topic-permissions", "--vhost", vh, "--user", user,
                "--exchange", "amq.topic", "--write", "^a", "--read", "^b")
        tp = self.get_ok("/api/topic-permissions/%s/%s" % (q(vh), q(user)))
        self.assertEqual(tp[0]["exchange"], "amq.topic")
        # the user logs in over AMQP to the vhost (names with '/' and ' ')
        creds = pika.PlainCredentials(user, "pw1")
        self.connect(virtual_host=vh, credentials=creds).close()
        # a queue in that vhost, listed there only
        self.ok("--vhost", vh, "declare", "queue", "--name", "cq")
        r = self.ok("--vhost", vh, "--format", "json", "list", "queues")
        self.assertEqual([x["name"] for x in r.json], ["cq"])
        # tags replaced, password kept
        self.ok("set", "user-tags", "--user", user, "--tags", "administrator")
        self.assertEqual(self.get_ok("/api/users/" + q(user))["tags"], ["administrator"])
        self.connect(virtual_host=vh, credentials=creds).close()
        # password changed from standard input, tags kept
        self.ok("change-password", "--user", user, input="pw2\n")
        self.connect(virtual_host=vh, credentials=pika.PlainCredentials(user, "pw2")).close()
        with self.assertRaises(pika.exceptions.ProbableAuthenticationError):
            self.connect(virtual_host=vh, credentials=creds)
        self.assertEqual(self.get_ok("/api/users/" + q(user))["tags"], ["administrator"])
        self.ok("change-password", "--user", user, "--password-new", "pw3")
        self.ok("--username", user, "--password", "pw3", "show", "whoami")
        # the new login is used by warrenctl itself, through the environment
        r = self.ok("--format", "json", "show", "whoami",
                    env={"WARREN_USER": user, "WARREN_PASSWORD": "pw3"})
        self.assertEqual(r.json["name"], user)
        self.ok("--vhost", vh, "delete", "topic-permissions", "--user", user)
        self.assertEqual(self.get("/api/topic-permissions/%s/%s" % (q(vh), q(user))).status, 404)
        self.ok("--vhost", vh, "delete", "permissions", "--user", user)
        self.assertEqual(self.get("/api/permissions/%s/%s" % (q(vh), q(user))).status, 404)
        self.ok("delete", "user", "--name", user)
        self.assertEqual(self.get("/api/users/" + q(user)).status, 404)
        self.ok("delete", "vhost", "--name", vh)
        self.assertEqual(self.get("/api/vhosts/" + q(vh)).status, 404)
        r = self.fails(1, "delete", "vhost", "--name", vh)
        self.assertIn("not found", r.err)


class Admin(CtlCase):

    def conn_named(self, user="guest"):
        r = self.ok("--format", "json", "list", "connections")
        return [c["name"] for c in r.json if c["user"] == user]

    def wait_closed(self, conn):
        with self.assertRaises(pika.exceptions.ConnectionClosedByBroker) as cm:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                conn.process_data_events(0.1)
        return cm.exception

    def test_close_connection_with_reason(self):
        conn = self.connect()
        name = self.wait_for(lambda: self.conn_named(), what="connection listed")[0]
        self.ok("close", "connection", "--name", name, "--reason", "maintenance")
        e = self.wait_closed(conn)
        self.assertEqual(e.reply_code, 320)
        self.assertEqual(e.reply_text, "CONNECTION_FORCED - maintenance")
        r = self.fails(1, "close", "connection", "--name", name)
        self.assertIn("not found", r.err)

    def test_close_connections_of_user(self):
        user = self.unique("cu")
        self.add_user(user, "pw", vhost_perms=(".*", ".*", ".*"))
        creds = pika.PlainCredentials(user, "pw")
        conns = [self.connect(credentials=creds) for _ in range(2)]
        keep = self.connect()
        self.addCleanup(keep.close)
        self.wait_for(lambda: len(self.conn_named(user)) == 2, what="2 connections")
        r = self.ok("close", "connections", "--user", user, "--reason", "bye")
        self.assertIn("closed 2 connections", r.out)
        for c in conns:
            self.assertIn("bye", self.wait_closed(c).reply_text)
        self.assertTrue(keep.is_open)
        keep.process_data_events(0)

    def test_definitions_export_import(self):
        qn = self.unique("dq")
        self.cleanup_queue(qn)
        self.ok("declare", "queue", "--name", qn, "--durable", "--arg", "x-max-length=5")
        path = os.path.join(self.home, "defs.json")
        self.ok("definitions", "export", "--file", path)
        with open(path) as f:
            defs = json.load(f)
        self.assertIn(qn, [x["name"] for x in defs["queues"]])
        r = self.ok("definitions", "export")
        self.assertIn(qn, [x["name"] for x in json.loads(r.out)["queues"]])
        r = self.ok("definitions", "export", "--vhost", "/")
        self.assertNotIn("users", json.loads(r.out))
        self.ok("delete", "queue", "--name", qn)
        self.assertIsNone(self.queue(qn))
        self.ok("definitions", "import", "--file", path)
        self.assertEqual(self.queue(qn)["arguments"], {"x-max-length": 5})
        bad = os.path.join(self.home, "bad.json")
        with open(bad, "w") as f:
            f.write('{"queues": [\n  {"name": }\n]}')
        r = self.fails(2, "definitions", "import", "--file", bad)
        self.assertIn("line 2", r.err)
        with open(bad, "w") as f:
            f.write('{"queues": [{"name": "x", "vhost": "no-such-vhost", "durable": true,'
                    ' "auto_delete": false, "arguments": {}}]}')
        r = self.fails(1, "definitions", "import", "--file", bad)
        self.assertIn("import of definitions", r.err)

    def test_definitions_import_progress_on_a_terminal(self):
        # A file of about 3 MiB: three durable queues with a long argument.
        # (Few queues: every change to durable queues rewrites the data
        # directory's definitions.json whole, 3 MiB each time here.)
        pad = "p" * (1 << 20)
        names = ["big-%s-%d" % (self.unique("imp"), i) for i in range(3)]
        for n in names:
            self.cleanup_queue(n)
        defs = {"queues": [{"name": n, "vhost": "/", "durable": True, "auto_delete": False,
                            "arguments": {"x-pad": pad}} for n in names]}
        path = os.path.join(self.home, "big.json")
        with open(path, "w") as f:
            json.dump(defs, f)
        self.assertGreater(os.path.getsize(path), 2 << 20)
        master, slave = pty.openpty()
        try:
            p = subprocess.Popen([WARRENCTL, "--url", self.url, "definitions", "import", "--file",
                                  path], stdout=subprocess.PIPE, stderr=slave, text=True,
                                 env=self.env())
            os.close(slave)
            slave = None
            tty = b""
            while True:  # read while it runs: a full pty would block it
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the other end is closed
                    break
                if not chunk:
                    break
                tty += chunk
            out, _ = p.communicate(timeout=120)
        finally:
            if slave is not None:
                os.close(slave)
            os.close(master)
        self.assertEqual(p.returncode, 0, (out, tty))
        self.assertIn(b"sent 1.0 of ", tty)
        self.assertIn(b"waiting for the broker", tty)
        self.assertTrue(tty.endswith(b"\r\x1b[K"), tty[-80:])  # the line cleared at the end
        self.assertEqual(self.queue(names[-1])["arguments"], {"x-pad": pad})
        # Not a terminal: nothing on stderr.
        r = self.ok("definitions", "import", "--file", path)
        self.assertEqual(r.err, "")

    def test_health_checks(self):
        for what in ("alarms", "virtual-hosts", "aliveness"):
            r = self.ok("health-check", what)
            self.assertEqual(r.out, "ok\n")
        self.ok("health-check", "port-listener", str(self.broker.port))
        r = self.ok("--format", "json", "health-check", "port-listener", str(self.mgmt_port))
        self.assertEqual(r.json["status"], "ok")
        r = self.fails(1, "health-check", "port-listener", "1")
        self.assertIn("No active listener", r.err)


class Settings(CtlCase):

    def write_conf(self, text, path=None):
        path = path or os.path.join(self.home, "ctl.conf")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        self.addCleanup(lambda: os.path.exists(path) and os.unlink(path))
        return path

    def test_environment(self):
        r = self.ok("--format", "json", "show", "whoami", url=False,
                    env={"WARREN_URL": self.url})
        self.assertEqual(r.json["name"], "guest")
        r = self.ctl("show", "whoami", url=False,
                     env={"WARREN_URL": self.url, "WARREN_PASSWORD": "bad"})
        self.assertEqual(r.rc, 1, r)
        # a flag overrides the environment
        self.ok("--password", "guest", "show", "whoami", url=False,
                env={"WARREN_URL": self.url, "WARREN_PASSWORD": "bad"})
        r = self.ctl("show", "queue", "--name", "x", url=False,
                     env={"WARREN_URL": self.url, "WARREN_VHOST": "nope"})
        self.assertIn("vhost 'nope'", r.err)

    def test_config_file_sections(self):
        path = self.write_conf("# test\n[default]\nport = 1\n\n[here]\nurl = http://127.0.0.1:1\n"
                               "port = %d  \n; password may hold '#'\nusername = guest\n"
                               "password = guest\n" % self.mgmt_port)
        r = self.ok("--config", path, "--node", "here", "show", "whoami", url=False)
        r = self.ctl("--config", path, "show", "whoami", url=False)
        self.assertEqual(r.rc, 3, r)  # [default]: port 1
        # the environment overrides the file, a flag the environment
        self.ok("--config", path, "show", "whoami", url=False, env={"WARREN_URL": self.url})
        self.ok("--config", path, "--port", str(self.mgmt_port), "show", "whoami", url=False)
        r = self.ctl("--config", path, "--node", "missing", "show", "whoami", url=False)
        self.assertEqual(r.rc, 2, r)
        self.assertIn("no section [missing]", r.err)

    def test_default_config_path(self):
        self.write_conf("[default]\nurl = %s\n[prod]\nport = 1\n" % self.url,
                        os.path.join(self.home, ".config", "warren", "warrenctl.conf"))
        self.ok("show", "whoami", url=False)
        r = self.ctl("--node", "prod", "show", "whoami", url=False)
        self.assertEqual(r.rc, 3, r)
        xdg = os.path.join(self.home, "xdg")
        self.write_conf("[default]\nport = %d\n" % self.mgmt_port,
                        os.path.join(xdg, "warren", "warrenctl.conf"))
        self.ok("show", "whoami", url=False, env={"XDG_CONFIG_HOME": xdg})

    def test_bad_config_file(self):
        for text, msg in (("[default]\nnonsense\n", "line 2"),
                          ("[default]\ncolour = red\n", "unknown key 'colour'"),
                          ("url = http://x\n", "before any [SECTION]"),
                          ("[default\n", "line 1"),
                          ("[default]\nport = http\n", "port 'http'"),
                          ("[a]\n\0\n", "NUL")):
            path = self.write_conf(text)
            r = self.ctl("--config", path, "show", "whoami", url=False)
            self.assertEqual(r.rc, 2, (text, r))
            self.assertIn(msg, r.err, text)
        r = self.ctl("--config", "/nonexistent/ctl.conf", "show", "whoami", url=False)
        self.assertEqual(r.rc, 2, r)


class Tls(CtlCase):
    """https: a TLS terminator in front of the API (the broker's management
    listener speaks plain HTTP), with a certificate made for the test."""

    def setUp(self):
        if not shutil.which("openssl"):
            self.skipTest("openssl command not installed")
        d = tempfile.mkdtemp(prefix="warrenctl-tls-")
        self.addCleanup(shutil.rmtree, d, True)
        self.cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", key, "-out", self.cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True, timeout=60)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, key)
        self.lsock = socket.socket()
        self.lsock.bind((harness.HOST, 0))
        self.lsock.listen(8)
        self.tls_port = self.lsock.getsockname()[1]
        self.addCleanup(self.lsock.close)
        threading.Thread(target=self.serve, args=(ctx,), daemon=True).start()

    def serve(self, ctx):
        while True:
            try:
                raw, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self.relay, args=(ctx, raw), daemon=True).start()

    def relay(self, ctx, raw):
        try:
            tls = ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            return
        up = socket.create_connection((harness.HOST, self.mgmt_port))

        def pump(a, b):
            try:
                while True:
                    data = a.recv(65536)
                    if not data:
                        break
                    b.sendall(data)
            except OSError:
                pass
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        t = threading.Thread(target=pump, args=(up, tls), daemon=True)
        t.start()
        pump(tls, up)
        t.join(10)
        tls.close()
        up.close()

    def test_https_with_ca_file(self):
        url = "https://127.0.0.1:%d" % self.tls_port
        r = self.ok("--url", url, "--cacert", self.cert, "--format", "json", "show", "whoami",
                    url=False)
        self.assertEqual(r.json["name"], "guest")
        r = self.ok("--port", str(self.tls_port), "--tls", "--cacert", self.cert,
                    "--format", "json", "list", "vhosts", url=False)
        self.assertIn("/", [v["name"] for v in r.json])
        # not signed by a CA the system trusts
        r = self.ctl("--url", url, "show", "whoami", url=False)
        self.assertEqual(r.rc, 3, r)
        self.assertIn("certificate verification failed", r.err)
        # https to a plain HTTP port
        r = self.ctl("--url", "https://127.0.0.1:%d" % self.mgmt_port, "show", "whoami",
                     url=False)
        self.assertEqual(r.rc, 3, r)


class JobQueues(CtlCase):
    """queue peek, queue move, dlq replay: Warren's queue actions."""

    def setUp(self):
        if self.external:
            self.skipTest("Warren's own queue actions")

    def new_queue(self, prefix="q", durable=False, arguments=None):
        name = self.unique(prefix)
        r = self.put("/api/queues/%%2F/%s" % q(name),
                     {"durable": durable, "arguments": arguments or {}})
        self.assertEqual(r.status, 201, r)
        self.cleanup_queue(name)
        return name

    def channel(self):
        conn = self.connect()
        self.addCleanup(conn.close)
        return conn.channel()

    def publish(self, ch, queue, bodies, persistent=False, headers=None):
        props = pika.BasicProperties(delivery_mode=2 if persistent else 1, headers=headers)
        for b in bodies:
            ch.basic_publish("", queue, b if isinstance(b, bytes) else b.encode(), props)

    def count(self, queue):
        return self.queue(queue)["messages"]

    def wait_count(self, queue, n):
        self.wait_for(lambda: self.count(queue) == n, 30, "%s to hold %d messages" % (queue, n))

    def drain(self, ch, queue):
        """Every message of the queue, acknowledged: (body, redelivered, headers)."""
        got = []
        while True:
            m, props, body = ch.basic_get(queue, auto_ack=True)
            if m is None:
                return got
            got.append((body.decode(), m.redelivered, props.headers))

    def test_move_all_and_count(self):
        ch = self.channel()
        src, dst = self.new_queue("src"), self.new_queue("dst")
        self.publish(ch, src, ["m%d" % i for i in range(2500)], headers={"h": "kept"})
        self.wait_count(src, 2500)
        r = self.ok("queue", "move", "--from", src, "--to", dst, "--count", "1200")
        self.assertIn("moved 1200 messages", r.out)
        self.assertEqual((self.count(src), self.count(dst)), (1300, 1200))
        # all the rest, over two requests, totals as JSON
        r = self.ok("--format", "json", "queue", "move", "--from", src, "--to", dst)
        self.assertEqual(r.json, {"moved": 1300, "remaining": 0, "stopped": None})
        self.assertEqual(r.err, "")  # no progress line when stderr is not a terminal
        got = self.drain(ch, dst)
        self.assertEqual([g[0] for g in got], ["m%d" % i for i in range(2500)])
        self.assertEqual(got[0][2], {"h": "kept"})
        self.assertEqual(self.count(src), 0)
        # nothing left: moved 0, success
        r = self.ok("queue", "move", "--from", src, "--to", dst)
        self.assertIn("moved 0 messages", r.out)

    def test_progress_on_a_terminal(self):
        ch = self.channel()
        src, dst = self.new_queue("src"), self.new_queue("dst")
        self.publish(ch, src, ["m%d" % i for i in range(2500)])
        self.wait_count(src, 2500)
        master, slave = pty.openpty()
        try:
            p = subprocess.run([WARRENCTL, "--url", self.url, "queue", "move", "--from", src,
                                "--to", dst], stdout=subprocess.PIPE, stderr=slave, text=True,
                               env=self.env(), timeout=60)
            os.close(slave)
            slave = None
            tty = b""
            while True:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the other end is closed
                    break
                if not chunk:
                    break
                tty += chunk
        finally:
            if slave is not None:
                os.close(slave)
            os.close(master)
        self.assertEqual(p.returncode, 0, p)
        self.assertIn("moved 2500 messages", p.stdout)
        self.assertIn(b"moved 1,000 of 2,500", tty)
        self.assertIn(b"moved 2,000 of 2,500", tty)
        self.assertTrue(tty.endswith(b"\r\x1b[K"), tty)  # the line cleared at the end

    def test_move_to_missing_queue(self):
        ch = self.channel()
        src = self.new_queue("src")
        self.publish(ch, src, ["a", "b", "c"])
        self.wait_count(src, 3)
        r = self.fails(1, "queue", "move", "--from", src, "--to", "no-such-queue")
        self.assertIn("no queue 'no-such-queue'", r.err)
        self.assertEqual(r.out, "")
        self.assertEqual(self.count(src), 3)
        r = self.fails(1, "queue", "move", "--from", "no-such-source", "--to", src)
        self.assertIn("no-such-source", r.err)
        self.assertEqual(self.count(src), 3)

    def test_move_stops_when_the_destination_refuses(self):
        ch = self.channel()
        src = self.new_queue("src")
        full = self.new_queue("full", arguments={"x-max-length": 2,
                                                 "x-overflow": "reject-publish"})
        self.publish(ch, src, ["m%d" % i for i in range(5)])
        self.wait_count(src, 5)
        r = self.fails(1, "queue", "move", "--from", src, "--to", full)
        self.assertIn("moved 2 messages", r.out)
        self.assertIn("stopped after 2 messages", r.err)
        self.assertEqual([g[0] for g in self.drain(ch, src)], ["m2", "m3", "m4"])

    def test_peek_removes_nothing(self):
        ch = self.channel()
        src = self.new_queue("src")
        self.publish(ch, src, ["p0", "p1", "p2"])
        self.wait_count(src, 3)
        r = self.ok("--format", "json", "queue", "peek", "--name", src, "--count", "2")
        self.assertEqual([m["payload"] for m in r.json], ["p0", "p1"])
        self.assertFalse(any(m["redelivered"] for m in r.json))
        r = self.ok("queue", "peek", "--name", src)
        header = r.out.splitlines()[0].split()
        self.assertEqual(header, ["exchange", "routing_key", "redelivered", "message_count",
                                  "payload_bytes", "payload_encoding", "payload"])
        self.assertIn("p0", r.out)
        self.assertNotIn("p1", r.out)
        r = self.ok("--format", "tsv", "queue", "peek", "--name", src, "--count", "10")
        self.assertEqual(len(r.out.splitlines()), 4)
        self.assertEqual(self.count(src), 3)
        got = self.drain(ch, src)
        self.assertEqual([(g[0], g[1]) for g in got],
                         [("p0", False), ("p1", False), ("p2", False)])
        r = self.fails(1, "queue", "peek", "--name", "no-such-queue")
        self.assertIn("not found", r.err)

    def dead_letter(self, ch, queue, bodies):
        """Publish to queue and reject each message without requeue."""
        self.publish(ch, queue, bodies)
        for _ in bodies:
            m = None
            deadline = time.monotonic() + 15
            while m is None:
                m, _, _ = ch.basic_get(queue)
                self.assertLess(time.monotonic(), deadline)
            ch.basic_reject(m.delivery_tag, requeue=False)

    def test_dlq_replay(self):
        ch = self.channel()
        dlq = self.new_queue("dlq")
        dl = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq}
        qa = self.new_queue("qa", arguments=dl)
        qb = self.new_queue("qb", arguments=dl)
        self.dead_letter(ch, qa, ["a1"])
        self.dead_letter(ch, qb, ["b1"])
        self.publish(ch, dlq, ["orphan"])  # no x-death: never died anywhere
        self.dead_letter(ch, qa, ["a2"])
        self.wait_count(dlq, 4)

        # dry run: what would happen, nothing moved
        r = self.ok("--format", "json", "dlq", "replay", "--queue", dlq, "--dry-run")
        self.assertEqual([(m["target"], m["reason"] is None) for m in r.json["messages"]],
                         [(qa, True), (qb, True), (None, False), (qa, True)])
        r = self.ok("dlq", "replay", "--queue", dlq, "--dry-run")
        lines = r.out.splitlines()
        self.assertEqual(lines[0].split(), ["routing_key", "target", "reason"])
        self.assertIn(qa, lines[1])
        self.assertIn("no x-death", lines[3])
        self.assertEqual((self.count(dlq), self.count(qa), self.count(qb)), (4, 0, 0))

        r = self.ok("--format", "json", "dlq", "replay", "--queue", dlq)
        self.assertEqual(r.json, {"replayed": 3, "skipped": 1, "remaining": 1, "stopped": None})
        self.assertEqual([g[0] for g in self.drain(ch, qa)], ["a1", "a2"])
        self.assertEqual([g[0] for g in self.drain(ch, qb)], ["b1"])
        self.assertEqual([g[0] for g in self.drain(ch, dlq)], ["orphan"])

    def test_dlq_replay_past_skipped_messages_in_batches(self):
        """Skipped messages stay at the head: later requests look past them."""
        ch = self.channel()
        dlq, target = self.new_queue("dlq"), self.new_queue("target")
        death = {"x-first-death-queue": target}
        self.publish(ch, dlq, ["skip%d" % i for i in range(3)])
        self.publish(ch, dlq, ["r%d" % i for i in range(2500)], headers=death)
        self.publish(ch, dlq, ["skip-late"])
        self.wait_count(dlq, 2504)
        r = self.ok("dlq", "replay", "--queue", dlq, "--count", "1503")
        self.assertIn("replayed 1500 messages, skipped 3", r.out)
        r = self.ok("dlq", "replay", "--queue", dlq)
        self.assertIn("replayed 1000 messages, skipped 4 (4 left", r.out)
        self.assertEqual([g[0] for g in self.drain(ch, target)],
                         ["r%d" % i for i in range(2500)])
        self.assertEqual([g[0] for g in self.drain(ch, dlq)],
                         ["skip0", "skip1", "skip2", "skip-late"])


class Crash(CtlCase):
    """A broker killed with SIGKILL in the middle of a queue move or a
    dlq replay: after the restart every message is in the source or the
    destination; one may be in both only if its move was under way."""
    N = 20000

    def setUp(self):
        if self.external:
            self.skipTest("kills the broker")

    def durable_queue(self, prefix):
        name = self.unique(prefix)
        r = self.put("/api/queues/%%2F/%s" % q(name), {"durable": True})
        self.assertEqual(r.status, 201, r)
        return name

    def count(self, name):
        r = self.get("/api/queues/%%2F/%s" % q(name))
        self.assertEqual(r.status, 200, r)
        return r.json["messages"]

    def bodies(self, name):
        """Every body in the queue (consumed and acknowledged)."""
        conn = self.connect()
        try:
            ch = conn.channel()
            ch.basic_qos(prefetch_count=1000)
            out = []
            for m, _, body in ch.consume(name, auto_ack=True, inactivity_timeout=2):
                if m is None:
                    break
                out.append(body.decode())
            ch.cancel()
            return out
        finally:
            conn.close()

    def fill(self, name, headers=None):
        conn = self.connect()
        ch = conn.channel()
        props = pika.BasicProperties(delivery_mode=2, headers=headers)
        for i in range(self.N):
            ch.basic_publish("", name, ("body-%06d" % i).encode(), props)
        conn.close()
        self.wait_for(lambda: self.count(name) == self.N, 60, "the source filled")
        # a clean restart: every message on disk before the test starts
        harness.restart(self.broker)
        harness.wait_port(self.mgmt_port, self.broker.proc)
        self.assertEqual(self.count(name), self.N)

    def kill_midway(self, argv, dst):
        p = subprocess.Popen([WARRENCTL, "--url", self.url] + argv, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=self.env())
        try:
            deadline = time.monotonic() + 60
            seen = 0
            while not 0 < seen < self.N:
                self.assertIsNone(p.poll(), "the move ended before the kill (%d moved)" % seen)
                self.assertLess(time.monotonic(), deadline, "nothing moved")
                seen = self.count(dst)
            harness.restart(self.broker, signal.SIGKILL)
            out, err = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
        self.assertEqual(p.returncode, 3, err)  # the broker went away
        harness.wait_port(self.mgmt_port, self.broker.proc)
        return seen

    def check(self, src, dst, seen, what):
        a, b = self.bodies(src), self.bodies(dst)
        sa, sb = set(a), set(b)
        want = {"body-%06d" % i for i in range(self.N)}
        lost = want - sa - sb
        dups = len(sa & sb) + (len(a) - len(sa)) + (len(b) - len(sb))
        sys.stderr.write("\n%s: %d messages, %d moved when seen before the kill, %d in the "
                         "source and %d in the destination after the restart, %d lost, "
                         "%d duplicated\n" % (what, self.N, seen, len(a), len(b), len(lost), dups))
        self.assertEqual(lost, set())
        self.assertEqual(sa | sb, want)
        self.assertLessEqual(dups, 1000)  # at most the batch under way
        self.assertGreater(len(b), 0)

    def test_kill_during_queue_move(self):
        src, dst = self.durable_queue("src"), self.durable_queue("dst")
        self.fill(src)
        seen = self.kill_midway(["queue", "move", "--from", src, "--to", dst], dst)
        self.check(src, dst, seen, "queue move")

    def test_kill_during_dlq_replay(self):
        dlq, dst = self.durable_queue("dlq"), self.durable_queue("target")
        self.fill(dlq, headers={"x-death": [{"queue": dst, "reason": "rejected", "count": 1,
                                             "exchange": "", "routing-keys": [dst]}]})
        seen = self.kill_midway(["dlq", "replay", "--queue", dlq], dst)
        self.check(dlq, dst, seen, "dlq replay")


class Completion(CtlCase):
    """etc/warrenctl.bash-completion, sourced in bash and called as bash
    calls it: COMP_WORDS split at blanks, ':' and '=', COMP_CWORD,
    COMP_LINE and COMP_POINT set."""

    SCRIPT = os.path.join(harness.HERE, "..", "..", "etc", "warrenctl.bash-completion")

    def setUp(self):
        if not shutil.which("bash"):
            self.skipTest("bash not installed")

    def complete(self, line, env=None):
        words = re.findall(r"[^\s:=]+|[:=]", line)
        if not line or line[-1].isspace():
            words.append("")
        line = WARRENCTL + line[len(words[0]):]
        words[0] = WARRENCTL
        script = ("source %s\nCOMP_WORDS=(%s)\nCOMP_CWORD=%d\nCOMP_LINE=%s\nCOMP_POINT=%d\n"
                  "_warrenctl\nprintf '%%s\\n' \"${COMPREPLY[@]}\"\n"
                  % (shlex.quote(self.SCRIPT), " ".join(shlex.quote(w) for w in words),
                     len(words) - 1, shlex.quote(line), len(line)))
        p = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                           env=self.env(env), timeout=30)
        self.assertEqual((p.returncode, p.stderr), (0, ""))
        return [w for w in p.stdout.split("\n") if w]

    def test_commands_and_flags(self):
        self.assertEqual(self.complete("warrenctl qu"), ["queue"])
        self.assertEqual(sorted(self.complete("warrenctl queue ")), ["move", "peek"])
        self.assertEqual(self.complete("warrenctl dlq "), ["replay"])
        verbs = self.complete("warrenctl ")
        for v in ("show", "list", "declare", "queue", "dlq", "help", "health-check"):
            self.assertIn(v, verbs)
        self.assertNotIn("__complete", verbs)
        self.assertEqual(sorted(self.complete("warrenctl queue move ")),
                         ["--count", "--from", "--to"])
        self.assertEqual(sorted(self.complete("warrenctl queue move --from a --to b ")),
                         ["--count"])
        self.assertEqual(self.complete("warrenctl dlq replay --dr"), ["--dry-run"])
        self.assertIn("--vhost", self.complete("warrenctl queue move --"))
        self.assertEqual(self.complete("warrenctl --form"), ["--format"])
        self.assertEqual(sorted(self.complete("warrenctl --format ")), ["json", "table", "tsv"])
        self.assertEqual(self.complete("warrenctl --format=ts"), ["tsv"])
        self.assertEqual(self.complete("warrenctl declare exchange --type f"), ["fanout"])
        self.assertEqual(self.complete("warrenctl help dlq "), ["replay"])
        # every command of --help is reachable
        for line in self.ok("--help", url=False).out.splitlines():
            m = re.match(r"  ([a-z-]+)(?: ([a-z-]+))?(?: |$)", line)
            if m and m.group(1) not in ("-h",) and m.group(2):
                self.assertIn(m.group(2), self.complete("warrenctl %s " % m.group(1)), line)

    def test_names_from_the_broker(self):
        qn, xn = self.unique("compl-queue"), self.unique("compl-x")
        self.cleanup_queue(qn)
        self.assertEqual(self.put("/api/queues/%2F/" + q(qn), {}).status, 201)
        self.addCleanup(self.delete, "/api/exchanges/%2F/" + q(xn))
        self.assertEqual(self.put("/api/exchanges/%2F/" + q(xn), {"type": "fanout"}).status, 201)
        pre = "warrenctl --url %s " % self.url
        self.assertEqual(self.complete(pre + "queue move --from compl-queue"), [qn])
        self.assertEqual(self.complete(pre + "queue move --from a --to=compl-queue"), [qn])
        self.assertEqual(self.complete(pre + "queue peek --name compl-queue"), [qn])
        self.assertEqual(self.complete(pre + "dlq replay --queue compl-queue"), [qn])
        self.assertEqual(self.complete(pre + "publish --exchange compl-x"), [xn])
        self.assertEqual(self.complete(pre + "declare binding --source compl-x"), [xn])
        self.assertEqual(self.complete(
            pre + "declare binding --destination-type exchange --destination compl-x"), [xn])
        self.assertEqual(self.complete(pre + "declare binding --destination compl-queue"), [qn])
        # the connection options may come after the command too
        self.assertEqual(self.complete("warrenctl queue move --url %s --from compl-queue"
                                       % self.url), [qn])
        # from the environment, as warrenctl itself reads it
        self.assertEqual(self.complete("warrenctl get --queue compl-queue",
                                       env={"WARREN_URL": self.url}), [qn])

    def test_unreachable_broker_completes_nothing_quickly(self):
        s = socket.socket()
        s.bind((harness.HOST, 0))
        s.listen(1)  # accepts, never answers
        self.addCleanup(s.close)
        t0 = time.monotonic()
        self.assertEqual(self.complete(
            "warrenctl --url http://127.0.0.1:%d queue move --from x" % s.getsockname()[1]), [])
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(self.complete("warrenctl --url http://127.0.0.1:1 queue peek --name "),
                         [])


if __name__ == "__main__":
    harness.main()
