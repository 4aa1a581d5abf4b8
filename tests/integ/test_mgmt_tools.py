#!/usr/bin/python3
"""Operator tools that already work against RabbitMQ's management API, run
unchanged against warrend: Debian's nagios-plugins-rabbitmq checks and the
rabbitmqadmin script (RabbitMQ's management plugin serves it at
/cli/rabbitmqadmin; Debian's rabbitmq-server package ships it). What each
tool printed is written to the test's output, so the log records it.

A tool that is not installed skips its tests, saying so. RABBITMQADMIN=PATH
names the script when it is not in a rabbitmq-server installation.
Against RabbitMQ: WARREN_TEST_PORT=5690 WARREN_TEST_MGMT_PORT=15690.
"""
import glob
import json
import os
import subprocess
import tempfile
import unittest

import harness
import mgmtcase
from mgmtcase import q

NAGIOS = "/usr/bin/check_rabbitmq_%s"


def find_rabbitmqadmin():
    p = os.environ.get("RABBITMQADMIN")
    if p:
        return p
    found = sorted(glob.glob("/usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins/"
                             "rabbitmq_management-*/priv/www/cli/rabbitmqadmin"))
    return found[-1] if found else None


class Nagios(mgmtcase.MgmtTestCase):

    def run_check(self, name, *args, expect=(0,)):
        exe = NAGIOS % name
        if not os.path.exists(exe):
            self.skipTest("%s not installed (Debian: nagios-plugins-rabbitmq)" % exe)
        argv = [exe, "-H", "localhost", "--port", str(self.mgmt_port),
                "-u", "guest", "-p", "guest"] + list(args)
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        out = (p.stdout + p.stderr).strip()
        print("\n    $ %s\n    %s (exit %d)" % (" ".join(argv[:1] + list(args)), out,
                                                 p.returncode))
        self.assertIn(p.returncode, expect if isinstance(expect, tuple) else (expect,), out)
        return out

    def test_aliveness(self):
        out = self.run_check("aliveness")
        self.assertIn("RABBITMQ_ALIVENESS OK", out)

    def test_server(self):
        # RabbitMQ 3.10 reports sockets_used only now and then (its check is
        # CRITICAL "Unable to get values for Sockets" in between); Warren
        # answers every figure every time.
        out = self.run_check("server", expect=(0, 2) if self.external else (0,))
        if self.external:
            return
        self.assertIn("RABBITMQ_SERVER OK", out)
        for k in ("Memory=", "Process=", "FD=", "Sockets="):
            self.assertIn(k, out)

    def test_overview(self):
        out = self.run_check("overview")
        self.assertIn("RABBITMQ_OVERVIEW OK", out)
        self.assertIn("messages_unacknowledged=", out)

    def test_connections(self):
        conn = self.connect()
        try:
            # RabbitMQ lists a connection once its statistics are emitted.
            out = self.wait_for(
                lambda: (lambda o: o if "connections=0;" not in o else None)(
                    self.run_check("connections")),
                what="the connection to be counted")
            self.assertIn("RABBITMQ_CONNECTIONS OK", out)
            self.assertRegex(out, r"connections=[1-9]")
        finally:
            conn.close()

    def test_objects(self):
        out = self.run_check("objects")
        self.assertIn("RABBITMQ_OBJECTS OK", out)
        self.assertRegex(out, r"exchange=[1-9]")

    def test_watermark(self):
        out = self.run_check("watermark")
        self.assertIn("RABBITMQ_WATERMARK OK", out)

    def test_partition(self):
        out = self.run_check("partition")
        self.assertIn("RABBITMQ_PARTITION OK", out)

    def test_queue(self):
        name = self.unique("nagq")
        conn = self.connect()
        try:
            ch = conn.channel()
            ch.queue_declare(name)
            for _ in range(3):
                ch.basic_publish("", name, b"m")
            out = self.wait_for(
                lambda: (lambda o: o if "messages=3;" in o else None)(
                    self.run_check("queue", "--queue", name)),
                what="the queue check to see 3 messages")
            self.assertIn("RABBITMQ_QUEUE OK", out)
            out = self.run_check("queue", "--queue", name, "--warning", "2", "--critical", "10",
                                 expect=1)
            self.assertIn("WARNING", out)
            ch.queue_delete(name)
        finally:
            conn.close()


class Rabbitmqadmin(mgmtcase.MgmtTestCase):

    def setUp(self):
        self.exe = find_rabbitmqadmin()
        if not self.exe:
            self.skipTest("rabbitmqadmin not found (Debian's rabbitmq-server ships it; "
                          "or set RABBITMQADMIN)")

    def admin(self, *args, expect=0):
        argv = ["/usr/bin/python3", self.exe, "-H", "127.0.0.1", "-P", str(self.mgmt_port),
                "-u", "guest", "-p", "guest"] + list(args)
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        out = p.stdout + p.stderr
        print("\n    $ rabbitmqadmin %s (exit %d)\n%s" % (
            " ".join(args), p.returncode,
            "\n".join("    " + line for line in out.strip().splitlines()[:12])))
        self.assertNotIn("Traceback", out)
        self.assertEqual(p.returncode, expect, out)
        return p.stdout

    def wait_queues(self, vh, want):
        """`list queues name messages` until it shows `want` (RabbitMQ's
        figures lag by its statistics interval; Warren's do not)."""
        self.wait_for(lambda: json.loads(self.admin(
            "--vhost=" + vh, "-f", "raw_json", "list", "queues", "name", "messages")) == want,
            timeout=20, what="rabbitmqadmin to list %r" % (want,))

    def test_every_list_and_show(self):
        conn = self.connect()
        try:
            ch = conn.channel()
            qn = ch.queue_declare("", exclusive=True).method.queue
            ch.basic_consume(qn, lambda *a: None)
            for what in ("queues", "exchanges", "bindings", "vhosts", "users", "connections",
                         "channels", "consumers", "nodes", "permissions"):
                self.admin("list", what)
                self.admin("-f", "raw_json", "list", what)
                self.admin("-f", "tsv", "list", what)
            self.admin("show", "overview")
            out = self.admin("-f", "raw_json", "list", "queues", "name", "messages")
            self.assertIn(qn, [x["name"] for x in json.loads(out)])
        finally:
            conn.close()

    def test_declare_publish_get_delete(self):
        vh = self.unique("adminvh")
        x, qn = "x-" + vh, "q-" + vh
        self.admin("declare", "vhost", "name=" + vh)
        self.addCleanup(self.delete, "/api/vhosts/" + q(vh))
        self.admin("declare", "permission", "vhost=" + vh, "user=guest", "configure=.*",
                   "write=.*", "read=.*")
        self.admin("--vhost=" + vh, "declare", "exchange", "name=" + x, "type=topic")
        self.admin("--vhost=" + vh, "declare", "queue", "name=" + qn, "durable=true",
                   'arguments={"x-max-length": 10}')
        self.admin("--vhost=" + vh, "declare", "binding", "source=" + x,
                   "destination=" + qn, "routing_key=a.*")
        out = self.admin("--vhost=" + vh, "publish", "exchange=" + x, "routing_key=a.b",
                         "payload=hello warren")
        self.assertIn("Message published", out)
        out = self.admin("--vhost=" + vh, "publish", "exchange=" + x, "routing_key=zzz",
                         "payload=lost")
        self.assertIn("NOT routed", out)
        self.wait_queues(vh, [{"name": qn, "messages": 1}])
        out = self.admin("--vhost=" + vh, "get", "queue=" + qn, "ackmode=ack_requeue_true")
        self.assertIn("hello warren", out)
        out = self.admin("--vhost=" + vh, "-f", "raw_json", "get", "queue=" + qn,
                         "ackmode=ack_requeue_false")
        self.assertEqual(json.loads(out)[0]["payload"], "hello warren")
        out = self.admin("--vhost=" + vh, "-f", "raw_json", "list", "bindings")
        bs = [b for b in json.loads(out) if b["source"] == x]
        self.assertEqual(len(bs), 1)
        self.admin("--vhost=" + vh, "delete", "binding", "source=" + x,
                   "destination_type=queue", "destination=" + qn,
                   "properties_key=" + bs[0]["properties_key"])
        out = self.admin("--vhost=" + vh, "-f", "raw_json", "list", "bindings")
        self.assertEqual([b for b in json.loads(out) if b["source"] == x], [])
        self.admin("--vhost=" + vh, "publish", "exchange=amq.default", "routing_key=" + qn,
                   "payload=p")
        self.admin("--vhost=" + vh, "purge", "queue", "name=" + qn)
        self.wait_queues(vh, [{"name": qn, "messages": 0}])
        self.admin("--vhost=" + vh, "delete", "queue", "name=" + qn)
        self.admin("--vhost=" + vh, "delete", "exchange", "name=" + x)
        self.admin("delete", "vhost", "name=" + vh)
        out = self.admin("-f", "raw_json", "list", "vhosts", "name")
        self.assertNotIn(vh, [v["name"] for v in json.loads(out)])

    def test_users(self):
        u = self.unique("adminuser")
        self.admin("declare", "user", "name=" + u, "password=secret", "tags=monitoring")
        self.addCleanup(self.delete, "/api/users/" + q(u))
        out = self.admin("-f", "raw_json", "list", "users")
        mine = [x for x in json.loads(out) if x["name"] == u]
        self.assertEqual(len(mine), 1)
        argv = ["/usr/bin/python3", self.exe, "-H", "127.0.0.1", "-P", str(self.mgmt_port),
                "-u", u, "-p", "secret", "show", "overview"]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.admin("delete", "user", "name=" + u)

    def test_export_import(self):
        vh = self.unique("expvh")
        self.admin("declare", "vhost", "name=" + vh)
        self.addCleanup(self.delete, "/api/vhosts/" + q(vh))
        self.admin("--vhost=" + vh, "declare", "queue", "name=kept", "durable=true")
        d = tempfile.mkdtemp(prefix="warren-admin-")
        path = os.path.join(d, "defs.json")
        out = self.admin("export", path)
        self.assertIn("Exported definitions", out)
        with open(path) as f:
            defs = json.load(f)
        self.assertIn({"name": "kept", "vhost": vh}, [
            {"name": x["name"], "vhost": x["vhost"]} for x in defs["queues"]])
        self.admin("--vhost=" + vh, "delete", "queue", "name=kept")
        out = self.admin("import", path)
        self.assertIn("Uploaded definitions", out)
        out = self.admin("--vhost=" + vh, "-f", "raw_json", "list", "queues", "name")
        self.assertEqual(json.loads(out), [{"name": "kept"}])

    def test_close_connection(self):
        import pika
        mine = self.unique("close-me")  # another test's connection may still be listed
        conn = self.connect(client_properties={"connection_name": mine})
        try:
            name = self.wait_for(lambda: [c["name"] for c in self.get_ok("/api/connections")
                                          if c.get("user_provided_name") == mine],
                                 what="the connection to be listed")[0]
            self.admin("close", "connection", "name=" + name)
            with self.assertRaises(pika.exceptions.ConnectionClosedByBroker) as cm:
                for _ in range(200):
                    conn.process_data_events(0.05)
            self.assertEqual(cm.exception.reply_code, 320)
        finally:
            if conn.is_open:
                conn.close()


if __name__ == "__main__":
    harness.main()
