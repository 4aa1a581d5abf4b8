"""test_metrics - the Prometheus endpoint: /metrics and /metrics/per-object
(issue 11), in RabbitMQ's names (its rabbitmq_prometheus plugin).

Covers:
  * the text format: `promtool check metrics` (Debian's prometheus package)
    prints nothing and exits 0 on both pages (skipped without promtool), a
    real Prometheus server (Debian's) scrapes the Prometheus port and stores
    rabbitmq_identity_info (skipped without it), and
    the same rules checked here without it: every family has # HELP and
    # TYPE once, its samples together, counters end in _total, no sample
    twice, label values escaped (a queue name with a quote, a backslash and
    non-ASCII letters comes back as declared; AMQP queue names cannot hold
    a newline, RabbitMQ and Warren strip CR and LF);
  * no login needed; the content type of format 0.0.4; the listener of
    prometheus.tcp.port serves the metrics and nothing else (/api/... is
    404 there), the management port serves them too (Warren only: RabbitMQ
    serves them on its Prometheus port only);
  * counters follow the traffic exactly (publishes with and without
    confirms, mandatory and plain unroutable ones, gets with and without
    ack, an empty get, consumers with and without ack, a redelivery, a
    dead-lettered rejection and a maxlen drop without a dead-letter
    exchange), and the churn of connections, channels and queues;
  * /metrics sums the queue figures without labels; /metrics/per-object
    gives them per queue with exactly {vhost, queue}, unacked bytes
    included;
  * Warren's own (not against RabbitMQ): the journal's size and its fsync
    histogram (cumulative buckets, +Inf = count), the recovery time, the
    age of the oldest head message.

Against RabbitMQ: WARREN_TEST_PORT=5690 WARREN_TEST_MGMT_PORT=15690
WARREN_TEST_PROM_PORT=15691 (the default); the node is shared, so there
counters are checked to have grown at least by the traffic.
"""
import json
import math
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import harness
import rawamqp
from mgmtcase import HOST, MgmtTestCase

PROMTOOL = "/usr/bin/promtool"
PROMETHEUS = "/usr/bin/prometheus"
CONTENT_TYPE = "text/plain; version=0.0.4"


def parse_labels(s, i):
    """Labels from s[i] (just after '{') to the closing '}'; returns
    (dict, index after '}')."""
    labels = {}
    while True:
        if s[i] == "}":
            return labels, i + 1
        eq = s.index("=", i)
        key = s[i:eq]
        if s[eq + 1] != '"':
            raise ValueError("label %s: no opening quote" % key)
        j = eq + 2
        val = []
        while s[j] != '"':
            if s[j] == "\\":
                nxt = s[j + 1]
                if nxt not in ('\\', '"', 'n'):
                    raise ValueError("bad escape \\%s" % nxt)
                val.append("\n" if nxt == "n" else nxt)
                j += 2
            else:
                if s[j] == "\n":
                    raise ValueError("raw newline in a label value")
                val.append(s[j])
                j += 1
        if key in labels:
            raise ValueError("label %s twice" % key)
        labels[key] = "".join(val)
        j += 1
        if s[j] == ",":
            j += 1
        i = j


class Exposition:
    """A parsed page, checked against the format's rules as it is read
    (strict=False, for RabbitMQ's pages: its erlang_* families break the
    naming rules and it does not escape label values; lines that cannot be
    read are skipped)."""

    def __init__(self, text, strict=True):
        self.types, self.helps = {}, {}
        self.samples = []  # (name, labels, value)
        seen_family_done = set()
        current = None
        keys = set()
        for line in text.split("\n"):
            if not line:
                continue
            if line.startswith("# HELP ") or line.startswith("# TYPE "):
                name, _, rest = line[7:].partition(" ")
                table = self.helps if line.startswith("# HELP ") else self.types
                if name in table:
                    raise ValueError("family %s declared twice" % name)
                if name in seen_family_done:
                    raise ValueError("family %s comes back after another" % name)
                table[name] = rest
                if current and current != name:
                    seen_family_done.add(current)
                current = name
                continue
            if line.startswith("#"):
                continue
            brace, space = line.find("{"), line.find(" ")
            if brace != -1 and brace < space:
                name = line[:brace]
                try:
                    labels, end = parse_labels(line, brace + 1)
                except (ValueError, IndexError) as e:
                    if not strict:
                        continue
                    raise ValueError("%s: %r" % (e, line[:200]))
                value = line[end:].strip()
            else:
                name, labels, value = line[:space], {}, line[space + 1:].strip()
            fam = self.family_of(name)
            if fam != current:
                raise ValueError("sample %s outside its family's block" % name)
            key = (name, tuple(sorted(labels.items())))
            if key in keys:
                raise ValueError("sample %r twice" % (key,))
            keys.add(key)
            self.samples.append((name, labels, float(value)))
        for name, t in self.types.items():
            if name not in self.helps:
                raise ValueError("family %s has no HELP" % name)
            if t == "counter" and not name.endswith("_total") and strict:
                raise ValueError("counter %s does not end in _total" % name)
        for name in self.helps:
            if name not in self.types:
                raise ValueError("family %s has no TYPE" % name)

    def family_of(self, name):
        if name in self.types:
            return name
        for suffix in ("_bucket", "_sum", "_count"):
            base = name[:-len(suffix)]
            if name.endswith(suffix) and self.types.get(base) in ("histogram", "summary"):
                return base
        raise ValueError("sample %s has no family" % name)

    def get(self, name, **labels):
        """The value of the one sample with exactly these labels (None when
        absent)."""
        for n, lb, v in self.samples:
            if n == name and lb == labels:
                return v
        return None

    def all(self, name):
        return [(lb, v) for n, lb, v in self.samples if n == name]


class MetricsCase(MgmtTestCase):
    prom_port = None
    _conf_dir = None

    @classmethod
    def setUpClass(cls):
        if os.environ.get("WARREN_TEST_PORT"):
            cls.prom_port = int(os.environ.get("WARREN_TEST_PROM_PORT", "15691"))
            super().setUpClass()
            return
        cls.prom_port = harness.free_port()
        cls.started_at = time.time()
        cls._conf_dir = tempfile.mkdtemp(prefix="warren-metrics-")
        path = os.path.join(cls._conf_dir, "warren.conf")
        with open(path, "w") as f:
            f.write("prometheus.tcp.port = %d\n" % cls.prom_port)
        cls.broker_args = ("-c", path)
        try:
            super().setUpClass()
        finally:
            cls.broker_args = ()
        harness.wait_port(cls.prom_port, cls.broker.proc)

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        if cls._conf_dir:
            shutil.rmtree(cls._conf_dir, ignore_errors=True)

    # ---- helpers ----

    def fetch(self, path, port=None):
        """GET without credentials; returns (status, content type, text)."""
        url = "http://%s:%d%s" % (HOST, port or self.prom_port, path)
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                return r.status, r.headers.get("content-type", ""), r.read().decode("utf-8")
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("content-type", ""), e.read().decode("utf-8", "replace")

    def scrape(self, path="/metrics"):
        status, ctype, text = self.fetch(path)
        self.assertEqual(status, 200, text[:300])
        self.assertTrue(ctype.startswith(CONTENT_TYPE), ctype)
        return Exposition(text, strict=not self.external)

    def raw_queue(self, name, bodies):
        """Declare a queue and publish to it with the raw peer, the name's
        bytes as given; deleted at the end of the test. (A newline cannot
        be tried this way: RabbitMQ and Warren take CR and LF out of queue
        names.)"""
        p = rawamqp.open_peer(HOST, self.broker.port)
        self.addCleanup(p.close)
        p.open_channel(1)
        p.send(rawamqp.queue_declare(1, name))
        r = p.recv_method()
        self.assertEqual(r[1:3], (50, 11), r)
        for body in bodies:
            p.send(rawamqp.publish(1, "", name, body))

        def delete():
            p.send(rawamqp.method(1, 50, 40, b"\0\0" + rawamqp.sstr(name) + b"\0"))
            r = p.recv_method()
            self.assertEqual(r[1:3], (50, 41), r)
        self.addCleanup(delete)
        # Published before anything after this (the same channel).
        p.send(rawamqp.queue_declare(1, name, passive=True))
        r = p.recv_method()
        self.assertEqual(r[1:3], (50, 11), r)

    def counter(self, page, name, **labels):
        v = page.get(name, **labels)
        self.assertIsNotNone(v, "%s%r missing" % (name, labels))
        return v

    def assert_grew(self, before, after, expected):
        """expected: {(name, labels tuple): delta}."""
        for (name, labels), delta in expected.items():
            b = self.counter(before, name, **dict(labels))
            a = self.counter(after, name, **dict(labels))
            if self.external:  # a shared node: others publish too
                self.assertGreaterEqual(a - b, delta, "%s%r" % (name, labels))
            else:
                self.assertEqual(a - b, delta, "%s%r" % (name, labels))

    # ---- the format ----

    def test_promtool_accepts_both_pages(self):
        if self.external:
            self.skipTest("RabbitMQ 3.10's pages fail promtool's lint (erlang_* names)")
        if not os.path.exists(PROMTOOL):
            self.skipTest("%s is missing (Debian's prometheus package)" % PROMTOOL)
        # Something in every family: a queue with a message, a channel.
        conn = self.connect()
        self.addCleanup(conn.close)
        conn.channel()
        self.raw_queue(self.unique("metrics-lint") + ' "q" \\ x y \u00e9', [b"body"])
        for path in ("/metrics", "/metrics/per-object"):
            status, _, text = self.fetch(path)
            self.assertEqual(status, 200)
            self.assertIn("rabbitmq_identity_info{", text)
            p = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
            self.assertEqual((p.returncode, p.stdout.decode()), (0, ""), path)

    def test_a_real_prometheus_scrapes_it(self):
        """Debian's Prometheus server, scraping the Prometheus port every
        second, sees the target up and stores rabbitmq_identity_info with
        the node's name (what RabbitMQ's Grafana dashboards join on)."""
        if not os.path.exists(PROMETHEUS):
            self.skipTest("%s is missing (Debian's prometheus package)" % PROMETHEUS)
        d = tempfile.mkdtemp(prefix="warren-prom-")
        self.addCleanup(shutil.rmtree, d, True)
        web = harness.free_port()
        with open(os.path.join(d, "prometheus.yml"), "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: warren\n    static_configs:\n"
                    "      - targets: ['%s:%d']\n" % (HOST, self.prom_port))
        with open(os.path.join(d, "prometheus.log"), "wb") as log:
            proc = subprocess.Popen(
                [PROMETHEUS, "--config.file=" + os.path.join(d, "prometheus.yml"),
                 "--storage.tsdb.path=" + os.path.join(d, "tsdb"),
                 "--web.listen-address=%s:%d" % (HOST, web)],
                stdout=log, stderr=subprocess.STDOUT, cwd=d)

        def stop():
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.addCleanup(stop)

        def query(expr):
            url = "http://%s:%d/api/v1/query?query=%s" % (
                HOST, web, urllib.parse.quote(expr))
            try:
                with urllib.request.urlopen(url, timeout=10) as r:
                    doc = json.loads(r.read().decode("utf-8"))
            except (OSError, ValueError):
                return None
            if doc.get("status") != "success" or not doc["data"]["result"]:
                return None
            return doc["data"]["result"]

        def up():
            if proc.poll() is not None:
                with open(os.path.join(d, "prometheus.log")) as f:
                    self.fail("prometheus exited: " + f.read()[-2000:])
            r = query('up{job="warren"} == 1')
            return r if r else None
        self.wait_for(up, timeout=90, what="Prometheus to scrape the target as up")
        ident = self.wait_for(lambda: query("rabbitmq_identity_info"), timeout=30,
                              what="rabbitmq_identity_info in Prometheus")
        self.assertEqual(len(ident), 1, ident)
        self.assertTrue(ident[0]["metric"]["rabbitmq_node"].startswith("rabbit@"), ident)
        self.assertIsNotNone(query("rabbitmq_connections"))
        bad = query("scrape_samples_post_metric_relabeling == 0")
        self.assertIsNone(bad, bad)

    def test_format_rules_and_escaping(self):
        if self.external:
            self.skipTest("RabbitMQ 3.10 does not escape quotes in label values")
        name = self.unique("metrics-esc") + ' q"uote \\back line \u00e9'
        self.raw_queue(name, [b"12345", b"678"])
        # Exposition() raises on a broken rule.
        agg = self.scrape("/metrics")
        self.assertEqual(agg.types["rabbitmq_global_messages_received_total"], "counter")
        self.assertEqual(agg.types["rabbitmq_queue_messages_ready"], "gauge")

        def ready():
            po = self.scrape("/metrics/per-object")
            v = po.get("rabbitmq_queue_messages_ready", vhost="/", queue=name)
            return po if v == 2 else None
        po = self.wait_for(ready, what="the queue's figures per object")
        if not self.external:
            self.assertEqual(po.get("rabbitmq_queue_messages_ready_bytes", vhost="/",
                                    queue=name), 8)
            self.assertEqual(po.get("rabbitmq_queue_messages_bytes", vhost="/", queue=name), 8)

    def test_identity_and_node(self):
        page = self.scrape()
        ident = page.all("rabbitmq_identity_info")
        self.assertEqual(len(ident), 1)
        labels, v = ident[0]
        self.assertEqual(v, 1)
        self.assertEqual(set(labels), {"rabbitmq_node", "rabbitmq_cluster",
                                       "rabbitmq_cluster_permanent_id"})
        self.assertTrue(labels["rabbitmq_node"].startswith("rabbit@"), labels)
        self.assertTrue(labels["rabbitmq_cluster_permanent_id"].startswith(
            "rabbitmq-cluster-id-"), labels)
        build = page.all("rabbitmq_build_info")
        self.assertEqual(len(build), 1)
        self.assertIn("rabbitmq_version", build[0][0])
        for name in ("rabbitmq_process_resident_memory_bytes", "rabbitmq_process_open_fds",
                     "rabbitmq_process_max_fds", "rabbitmq_resident_memory_limit_bytes",
                     "rabbitmq_disk_space_available_bytes",
                     "rabbitmq_disk_space_available_limit_bytes",
                     "rabbitmq_erlang_uptime_seconds", "process_start_time_seconds"):
            v = page.get(name)
            self.assertIsNotNone(v, name)
            self.assertGreater(v, 0, name)
        for name in ("rabbitmq_alarms_memory_used_watermark",
                     "rabbitmq_alarms_free_disk_space_watermark",
                     "rabbitmq_alarms_file_descriptor_limit"):
            self.assertEqual(page.get(name), 0, name)
        if not self.external:  # RabbitMQ's uptime is its VM's, not the process's
            start = page.get("process_start_time_seconds")
            up = page.get("rabbitmq_erlang_uptime_seconds")
            self.assertLess(abs(time.time() - start - up), 2)
            self.assertLess(up, time.time() - self.started_at + 2)

    def test_counters_survive_a_deleted_vhost(self):
        """Counters are totals since the start: deleting a vhost does not
        take its messages out of them (a counter that goes down reads as a
        restart to Prometheus)."""
        vh = self.unique("metrics-vh")
        path = "/api/vhosts/" + urllib.parse.quote(vh, safe="")
        self.assertIn(self.put(path, {}).status, (201, 204))
        self.addCleanup(self.delete, path)
        r = self.put("/api/permissions/%s/guest" % urllib.parse.quote(vh, safe=""),
                     {"configure": ".*", "write": ".*", "read": ".*"})
        self.assertIn(r.status, (201, 204))
        name = "rabbitmq_global_messages_received_total"
        labels = {"protocol": "amqp091"}
        before = self.counter(self.scrape(), name, **labels)
        conn = self.connect(virtual_host=vh)
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare("q")
        for i in range(5):
            ch.basic_publish("", "q", b"m%d" % i)
        conn.close()
        grown = self.wait_for(
            lambda: (lambda v: v >= before + 5 and v)(self.counter(self.scrape(), name, **labels)),
            what="the publishes counted")
        self.assertEqual(self.delete(path).status, 204)
        after = self.counter(self.scrape(), name, **labels)
        self.assertGreaterEqual(after, grown)

    # ---- listeners ----

    def test_no_login_and_prometheus_port_serves_metrics_only(self):
        for path in ("/metrics", "/metrics/per-object"):
            status, _, text = self.fetch(path)
            self.assertEqual(status, 200, path)
        for path in ("/api/overview", "/api/whoami", "/api/queues", "/"):
            status, _, _ = self.fetch(path)
            self.assertEqual(status, 404, path)
        if not self.external:
            # Warren: the management port serves them too, without login.
            status, ctype, text = self.fetch("/metrics", port=self.mgmt_port)
            self.assertEqual(status, 200)
            self.assertTrue(ctype.startswith(CONTENT_TYPE), ctype)
            Exposition(text)
            self.assertEqual(self.get("/api/whoami", user=None).status, 401)

    # ---- counters ----

    def test_counters_follow_traffic(self):
        P = (("protocol", "amqp091"),)
        PC = (("protocol", "amqp091"), ("queue_type", "rabbit_classic_queue"))

        def dl(strategy):
            return (("dead_letter_strategy", strategy), ("queue_type", "rabbit_classic_queue"))

        if not self.external:
            # Connections of earlier tests are gone (their close counted).
            self.wait_for(lambda: self.scrape().get("rabbitmq_connections") == 0,
                          what="earlier connections to close")
        before = self.scrape()
        conn = self.connect()
        ch = conn.channel()
        cch = conn.channel()
        cch.confirm_delivery()
        q, dead, dlq, mx = (self.unique(p) for p in ("metrics-q", "metrics-dead",
                                                     "metrics-dl", "metrics-max"))
        ch.queue_declare(q)
        ch.queue_declare(q, passive=True)  # not a declaration
        ch.queue_declare(dead)
        ch.queue_declare(dlq, arguments={"x-dead-letter-exchange": "",
                                         "x-dead-letter-routing-key": dead})
        ch.queue_declare(mx, arguments={"x-max-length": 1})
        for i in range(3):
            cch.basic_publish("", q, b"m%d" % i)  # confirmed
        ch.basic_publish("", self.unique("nowhere"), b"x", mandatory=True)  # returned
        ch.basic_publish("", self.unique("nowhere"), b"x")  # dropped
        # get with ack, get without, a consumer with ack, an empty get
        m, _, _ = ch.basic_get(q, auto_ack=False)
        ch.basic_ack(m.delivery_tag)
        m, _, _ = ch.basic_get(q, auto_ack=True)
        self.assertIsNotNone(m)
        for m, _, _ in ch.consume(q, inactivity_timeout=10):
            self.assertIsNotNone(m)
            ch.basic_ack(m.delivery_tag)
            break
        ch.cancel()
        self.assertEqual(ch.basic_get(q), (None, None, None))
        # a redelivery
        cch.basic_publish("", q, b"r")
        m, _, _ = ch.basic_get(q, auto_ack=False)
        ch.basic_nack(m.delivery_tag, requeue=True)
        m, _, _ = ch.basic_get(q, auto_ack=False)
        self.assertTrue(m.redelivered)
        ch.basic_ack(m.delivery_tag)
        # a consumer without ack
        cch.basic_publish("", q, b"a")
        for m, _, _ in ch.consume(q, auto_ack=True, inactivity_timeout=10):
            self.assertIsNotNone(m)
            break
        ch.cancel()
        # dead-lettered (rejected), and dropped by x-max-length without a DLX
        cch.basic_publish("", dlq, b"d")
        m, _, _ = ch.basic_get(dlq, auto_ack=False)
        ch.basic_reject(m.delivery_tag, requeue=False)
        cch.basic_publish("", mx, b"1")
        cch.basic_publish("", mx, b"2")
        ch.queue_declare(q, passive=True)  # everything above is done

        def settled():
            page = self.scrape()
            po = self.scrape("/metrics/per-object")
            ok = po.get("rabbitmq_queue_messages_ready", vhost="/", queue=dead) == 1 and \
                po.get("rabbitmq_queue_messages_ready", vhost="/", queue=mx) == 1
            return (page, po) if ok else None
        after, po = self.wait_for(settled, what="the dead-lettered message")
        self.assert_grew(before, after, {
            ("rabbitmq_global_messages_received_total", P): 10,
            ("rabbitmq_global_messages_received_confirm_total", P): 8,
            ("rabbitmq_global_messages_confirmed_total", P): 8,
            ("rabbitmq_global_messages_routed_total", P): 8,
            ("rabbitmq_global_messages_unroutable_returned_total", P): 1,
            ("rabbitmq_global_messages_unroutable_dropped_total", P): 1,
            ("rabbitmq_global_messages_delivered_total", PC): 7,
            ("rabbitmq_global_messages_delivered_get_manual_ack_total", PC): 4,
            ("rabbitmq_global_messages_delivered_get_auto_ack_total", PC): 1,
            ("rabbitmq_global_messages_delivered_consume_manual_ack_total", PC): 1,
            ("rabbitmq_global_messages_delivered_consume_auto_ack_total", PC): 1,
            ("rabbitmq_global_messages_get_empty_total", PC): 1,
            ("rabbitmq_global_messages_redelivered_total", PC): 1,
            ("rabbitmq_global_messages_acknowledged_total", PC): 3,
            ("rabbitmq_global_messages_dead_lettered_rejected_total", dl("at_most_once")): 1,
            ("rabbitmq_global_messages_dead_lettered_maxlen_total", dl("disabled")): 1,
            ("rabbitmq_global_messages_dead_lettered_expired_total", dl("at_most_once")): 0,
            ("rabbitmq_queues_declared_total", ()): 4,
            ("rabbitmq_queues_created_total", ()): 4,
            ("rabbitmq_connections_opened_total", ()): 1,
            ("rabbitmq_channels_opened_total", ()): 2,
        })
        if not self.external:
            # Nothing else runs here: the gauges are exact too.
            self.assertEqual(after.get("rabbitmq_connections"), 1)
            self.assertEqual(after.get("rabbitmq_channels"), 2)
            self.assertEqual(after.get("rabbitmq_queue_messages_ready") -
                             before.get("rabbitmq_queue_messages_ready"), 2)
            self.assertEqual(after.get("rabbitmq_queues") - before.get("rabbitmq_queues"), 4)
            self.assertEqual(after.get("rabbitmq_global_publishers", protocol="amqp091"), 2)
        for queue in (q, dead, dlq, mx):
            ch.queue_delete(queue)
        conn.close()

        def closed():
            page = self.scrape()
            ok = all(page.get(n) - before.get(n) == d for n, d in (
                ("rabbitmq_connections_closed_total", 1),
                ("rabbitmq_channels_closed_total", 2),
                ("rabbitmq_queues_deleted_total", 4))) or self.external
            return page if ok else None
        page = self.wait_for(closed, what="the churn counters")
        self.assert_grew(before, page, {("rabbitmq_connections_closed_total", ()): 1,
                                        ("rabbitmq_channels_closed_total", ()): 2,
                                        ("rabbitmq_queues_deleted_total", ()): 4})

    # ---- queues, aggregated and per object ----

    def test_queue_figures_aggregated_and_per_object(self):
        conn = self.connect()
        self.addCleanup(conn.close)
        ch = conn.channel()
        q = self.unique("metrics-per")
        ch.queue_declare(q)
        self.addCleanup(lambda: ch.queue_delete(q))
        ch.basic_publish("", q, b"hello")
        ch.basic_publish("", q, b"ab")
        m, _, _ = ch.basic_get(q, auto_ack=False)  # "hello" stays unacked

        def figures():
            po = self.scrape("/metrics/per-object")
            if po.get("rabbitmq_queue_messages_unacked", vhost="/", queue=q) != 1:
                return None
            return po
        po = self.wait_for(figures, what="the queue's figures")
        self.assertEqual(po.get("rabbitmq_queue_messages_ready", vhost="/", queue=q), 1)
        self.assertEqual(po.get("rabbitmq_queue_messages", vhost="/", queue=q), 2)
        self.assertEqual(po.get("rabbitmq_queue_consumers", vhost="/", queue=q), 0)
        if not self.external:
            self.assertEqual(po.get("rabbitmq_queue_messages_ready_bytes", vhost="/", queue=q), 2)
            self.assertEqual(
                po.get("rabbitmq_queue_messages_unacked_bytes", vhost="/", queue=q), 5)
            self.assertEqual(po.get("rabbitmq_queue_messages_bytes", vhost="/", queue=q), 7)
            self.assertEqual(
                po.get("rabbitmq_queue_messages_published_total", vhost="/", queue=q), 2)
            self.assertGreaterEqual(
                po.get("warren_queue_head_message_age_seconds", vhost="/", queue=q), 0)
        # Every per-queue sample has exactly {vhost, queue}.
        queue_families = ["rabbitmq_queue_messages_ready", "rabbitmq_queue_messages_unacked",
                          "rabbitmq_queue_messages", "rabbitmq_queue_consumers",
                          "rabbitmq_queue_messages_ready_bytes",
                          "rabbitmq_queue_messages_unacked_bytes",
                          "rabbitmq_queue_messages_bytes"]
        if not self.external:  # Warren's are all per queue
            queue_families = [n for n in po.types if n.startswith("rabbitmq_queue_") or
                              n.startswith("warren_queue_")]
            self.assertIn("warren_queue_head_message_age_seconds", queue_families)
        for fam in queue_families:
            for labels, _ in po.all(fam):
                self.assertEqual(set(labels), {"vhost", "queue"}, fam)
        # /metrics: the same families summed, without labels.
        agg = self.scrape("/metrics")
        for fam in ("rabbitmq_queue_messages_ready", "rabbitmq_queue_messages_unacked",
                    "rabbitmq_queue_messages", "rabbitmq_queue_consumers"):
            samples = agg.all(fam)
            self.assertEqual(len(samples), 1, fam)
            self.assertEqual(samples[0][0], {}, fam)
        if not self.external:
            total = sum(v for _, v in po.all("rabbitmq_queue_messages_unacked"))
            self.assertEqual(agg.get("rabbitmq_queue_messages_unacked"), total)
            self.assertGreaterEqual(agg.get("rabbitmq_queue_messages_unacked_bytes"), 5)
        # Channels and connections per object, labelled "channel" as RabbitMQ does.
        for fam in ("rabbitmq_channel_messages_unacked", "rabbitmq_connection_channels"):
            samples = po.all(fam)
            self.assertTrue(samples, fam)
            for labels, _ in samples:
                self.assertEqual(set(labels), {"channel"}, fam)
        self.assertIn(1, [v for _, v in po.all("rabbitmq_channel_messages_unacked")])
        ch.basic_ack(m.delivery_tag)
        ch.queue_declare(q, passive=True)
        if not self.external:
            po = self.scrape("/metrics/per-object")
            self.assertEqual(po.get("rabbitmq_queue_messages_unacked", vhost="/", queue=q), 0)
            self.assertEqual(
                po.get("rabbitmq_queue_messages_unacked_bytes", vhost="/", queue=q), 0)
            # A channel closed with a delivery unacked gives its bytes back.
            ch2 = conn.channel()
            m, _, _ = ch2.basic_get(q, auto_ack=False)
            self.assertEqual(self.scrape("/metrics/per-object").get(
                "rabbitmq_queue_messages_unacked_bytes", vhost="/", queue=q), 2)
            ch2.close()
            po = self.scrape("/metrics/per-object")
            self.assertEqual(
                po.get("rabbitmq_queue_messages_unacked_bytes", vhost="/", queue=q), 0)
            self.assertEqual(po.get("rabbitmq_queue_messages_ready_bytes", vhost="/", queue=q), 2)

    # ---- Warren's own ----

    def test_warren_consumed_before_write_not_journaled(self):
        """A persistent message that an autoack consumer takes in the loop
        turn it was published in is never written to the journal: its
        confirm waits for no fdatasync (RabbitMQ's message store also skips
        writing what was consumed before its write came due). Without the
        consumer the same publishes are written and synced."""
        if self.external:
            self.skipTest("Warren's own metrics")
        import pika
        q = self.unique("metrics-consumed")
        pub = self.connect()
        self.addCleanup(pub.close)
        pch = pub.channel()
        pch.confirm_delivery()
        pch.queue_declare(q, durable=True)
        self.addCleanup(lambda: pch.queue_delete(q))
        sub = self.connect()
        self.addCleanup(sub.close)
        sch = sub.channel()
        got = []
        tag = sch.basic_consume(q, lambda c, m, p, b: got.append(b), auto_ack=True)
        n, body = 50, b"c" * 1000
        before = self.scrape()
        for i in range(n):
            pch.basic_publish("", q, body, pika.BasicProperties(delivery_mode=2))
        deadline = time.monotonic() + 15
        while len(got) < n and time.monotonic() < deadline:
            sub.process_data_events(time_limit=0.1)
        self.assertEqual(len(got), n)
        after = self.scrape()
        self.assertLess(after.get("warren_journal_bytes") - before.get("warren_journal_bytes"),
                        1000, "no body reached the journal")
        self.assertEqual(after.get("warren_journal_fsync_seconds_count"),
                         before.get("warren_journal_fsync_seconds_count"), "no fdatasync")
        # The same without a consumer: written, synced before each confirm.
        sch.basic_cancel(tag)
        for i in range(3):
            pch.basic_publish("", q, body, pika.BasicProperties(delivery_mode=2))
        last = self.scrape()
        self.assertGreaterEqual(last.get("warren_journal_bytes") - after.get("warren_journal_bytes"),
                                3 * 1000)
        self.assertGreaterEqual(last.get("warren_journal_fsync_seconds_count") -
                                after.get("warren_journal_fsync_seconds_count"), 1)

    def test_warren_journal_and_ages(self):
        if self.external:
            self.skipTest("Warren's own metrics")
        import pika
        conn = self.connect()
        self.addCleanup(conn.close)
        ch = conn.channel()
        ch.confirm_delivery()
        q = self.unique("metrics-durable")
        ch.queue_declare(q, durable=True)
        self.addCleanup(lambda: ch.queue_delete(q))
        before = self.scrape()
        ch.basic_publish("", q, b"x" * 1000, pika.BasicProperties(delivery_mode=2))
        t0 = time.monotonic()
        page = self.scrape()
        self.assertGreaterEqual(page.get("warren_journal_bytes"),
                                before.get("warren_journal_bytes") + 1000)
        count = page.get("warren_journal_fsync_seconds_count")
        self.assertGreaterEqual(count - before.get("warren_journal_fsync_seconds_count"), 1)
        buckets = page.all("warren_journal_fsync_seconds_bucket")
        self.assertEqual(buckets[-1][0], {"le": "+Inf"})
        self.assertEqual(buckets[-1][1], count)
        les = [float(lb["le"]) for lb, _ in buckets]
        self.assertEqual(les, sorted(les))
        self.assertTrue(math.isinf(les[-1]))
        vals = [v for _, v in buckets]
        self.assertEqual(vals, sorted(vals))
        self.assertGreaterEqual(page.get("warren_journal_fsync_seconds_sum"), 0)
        self.assertGreaterEqual(page.get("warren_recovery_seconds"), 0)
        self.assertGreater(page.get("warren_mgmt_requests_total"),
                           before.get("warren_mgmt_requests_total"))

        # The head message ages; /metrics has the oldest over the queues.
        def aged():
            po = self.scrape("/metrics/per-object")
            age = po.get("warren_queue_head_message_age_seconds", vhost="/", queue=q)
            return po if age >= 0.3 else None
        po = self.wait_for(aged, what="the message to age")
        age = po.get("warren_queue_head_message_age_seconds", vhost="/", queue=q)
        self.assertLessEqual(age, time.monotonic() - t0 + 1)
        agg = self.scrape()
        self.assertGreaterEqual(agg.get("warren_queue_head_message_age_seconds"), age)
        m, _, _ = ch.basic_get(q, auto_ack=True)
        self.assertIsNotNone(m)
        po = self.scrape("/metrics/per-object")
        self.assertEqual(po.get("warren_queue_head_message_age_seconds", vhost="/", queue=q), 0)


if __name__ == "__main__":
    harness.main()
