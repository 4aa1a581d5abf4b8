"""test_service - warrend as a system service, end to end (issue 13).

Real warrend processes, each with its own port, data directory and
configuration file, driven the way systemd and an operator drive them:

- systemd's notify protocol: a datagram socket bound here stands for
  systemd (NOTIFY_SOCKET, a path or an abstract name). READY=1 comes once
  the AMQP port accepts; STATUS= lines while a data directory with two
  million persistent messages is recovered (a SIGHUP then does not kill
  it); STOPPING=1 at SIGTERM;
  WATCHDOG=1 every WATCHDOG_USEC/2, and none when WATCHDOG_PID is another
  process.
- SIGTERM with pika clients connected: each sees 320 CONNECTION_FORCED with
  RabbitMQ's text, warrend exits 0, persistent messages survive; a client
  that never answers is cut after shutdown_timeout.
- SIGHUP: a renamed log file is reopened; a changed log level and
  heartbeat apply, a changed data_dir is logged as needing a restart; a
  file with errors changes nothing.
- log.syslog reaches /dev/log (a socket in a private mount namespace).
- SIGUSR1 logs the status; --pidfile, --version, --check-config,
  --print-config.

warrend-only: these start and signal the broker themselves.
"""
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import harness
import rawamqp as r

HOST = harness.HOST


wait_for = harness.wait_for


class Notify:
    """systemd's end of the notify socket: collects (time, message) pairs in
    a thread. `abstract` binds in the abstract namespace."""

    def __init__(self, tmp, abstract=False):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "warren-test-%d-%d" % (os.getpid(), time.monotonic_ns())
            self.s.bind("\0" + name)
            self.env = "@" + name
        else:
            self.env = os.path.join(tmp, "notify.%d" % time.monotonic_ns())
            self.s.bind(self.env)
        self.s.settimeout(0.2)
        self.msgs = []
        self.lock = threading.Lock()
        self.stop = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop:
            try:
                m = self.s.recv(65536).decode()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.msgs.append((time.monotonic(), m))

    def all(self):
        with self.lock:
            return list(self.msgs)

    def wait(self, pred, timeout=15.0, what="a notification"):
        def find():
            for t, m in self.all():
                if pred(m):
                    return (t, m)
            return None
        return wait_for(find, timeout, what)

    def close(self):
        self.stop = True
        self.t.join()
        self.s.close()


class Warrend:
    """A warrend we start and signal ourselves. `conf` is the text of its
    configuration file; `args` more options; `env` more environment."""

    def __init__(self, tmp, conf="", args=(), env=None, port=None, data_dir=None, wait=True,
                 log_level=True):
        self.tmp = tmp
        self.port = port or harness.free_port()
        self.data_dir = data_dir or os.path.join(tmp, "data")
        self.conf_path = os.path.join(tmp, "warren.conf")
        self.out_path = os.path.join(tmp, "stdout+stderr.%d" % time.monotonic_ns())
        with open(self.conf_path, "w") as f:
            f.write(conf)
        self.argv = [harness.find_warrend(), "-c", self.conf_path, "--port", str(self.port),
                     "--bind", HOST, "--data-dir", self.data_dir, "--mgmt-port", "0"]
        if log_level:
            self.argv += ["--log-level", "debug"]
        self.argv += list(args)
        e = dict(os.environ)
        for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            e.pop(k, None)
        e.update(env or {})
        out = open(self.out_path, "wb")
        self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=e)
        out.close()
        if wait:
            harness.wait_port(self.port, self.proc, timeout=120)

    def output(self):
        with open(self.out_path, errors="replace") as f:
            return f.read()

    def send(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("warrend did not stop within %ds" % timeout)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def read_file(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def fill_queue(port, queue, n, body=b"x" * 16):
    """n persistent messages on a durable queue, published raw in batches
    (pika would take minutes for a million); returns when all are queued."""
    p = r.open_peer(HOST, port)
    p.open_channel(1)
    p.send(r.queue_declare(1, queue, durable=True))
    assert p.recv_method()[1:3] == (50, 11)
    one = (r.basic_publish(1, "", queue) + r.content_header(1, len(body), flags=0x1000,
                                                            props=b"\x02")
           + r.frame(3, 1, body))
    batch = 5000
    for _ in range(n // batch):
        p.send(one * batch)
    p.send(one * (n % batch))
    p.send(r.queue_declare(1, queue, durable=True, passive=True))
    m = p.recv_method()
    assert m[1:3] == (50, 11), m
    count = struct.unpack(">I", m[3][1 + m[3][0]:5 + m[3][0]])[0]
    p.close()
    return count


class ServiceTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="warren-service-")
        self.procs = []

    def tearDown(self):
        for w in self.procs:
            w.kill()
        if not os.environ.get("WARREN_TEST_KEEP"):
            shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, *a, **kw):
        w = Warrend(self.tmp, *a, **kw)
        self.procs.append(w)
        return w

    def dump(self, w):
        return "---- warrend output ----\n" + w.output()[-6000:]

    # ---- systemd's notify protocol ----

    def test_ready_after_listening_then_stopping(self):
        for abstract in (False, True):
            n = Notify(self.tmp, abstract=abstract)
            try:
                w = self.start(env={"NOTIFY_SOCKET": n.env}, wait=False)
                t_ready, m = n.wait(lambda m: "READY=1" in m.split("\n"), what="READY=1")
                # At READY=1 the port already accepts (listen() came first).
                with socket.create_connection((HOST, w.port), timeout=2):
                    pass
                self.assertIn("STATUS=serving AMQP on 127.0.0.1 port %d" % w.port, m)
                earlier = [x for t, x in n.all() if t <= t_ready]
                self.assertTrue(earlier[0].startswith("STATUS=recovering"), earlier)
                self.assertEqual(w.stop(), 0, self.dump(w))
                n.wait(lambda m: m.startswith("STOPPING=1"), what="STOPPING=1")
                msgs = [x for _, x in n.all()]
                self.assertLess(msgs.index(m), [i for i, x in enumerate(msgs)
                                                if x.startswith("STOPPING=1")][0])
            finally:
                n.close()

    def test_watchdog(self):
        n = Notify(self.tmp)
        try:
            w = self.start(env={"NOTIFY_SOCKET": n.env, "WATCHDOG_USEC": "200000"})
            wait_for(lambda: sum(1 for _, m in n.all() if m == "WATCHDOG=1") >= 5, 5,
                     "five WATCHDOG=1 (every 100 ms)")
            ts = [t for t, m in n.all() if m == "WATCHDOG=1"]
            gaps = [b - a for a, b in zip(ts[1:], ts[2:])]
            self.assertLess(max(gaps), 0.5, gaps)  # every 100 ms, with slack for a busy host
            self.assertEqual(w.stop(), 0)
        finally:
            n.close()
        # WATCHDOG_PID names another process: not ours to feed.
        n = Notify(self.tmp)
        try:
            w = self.start(env={"NOTIFY_SOCKET": n.env, "WATCHDOG_USEC": "100000",
                                "WATCHDOG_PID": "1"})
            n.wait(lambda m: "READY=1" in m)
            time.sleep(0.5)  # ten intervals: there would be WATCHDOG=1 by now
            self.assertFalse([m for _, m in n.all() if "WATCHDOG" in m])
            self.assertEqual(w.stop(), 0)
        finally:
            n.close()

    def test_status_during_recovery(self):
        """Two million persistent messages: STATUS lines while they are
        recovered, READY=1 only after."""
        w = self.start(log_level=False)
        count = fill_queue(w.port, "backlog", 2000000)
        self.assertEqual(count, 2000000)
        self.assertEqual(w.stop(), 0)
        n = Notify(self.tmp)
        try:
            w2 = self.start(env={"NOTIFY_SOCKET": n.env}, port=w.port, data_dir=w.data_dir,
                            wait=False, log_level=False)
            # logrotate's SIGHUP (and a SIGUSR1) during the recovery, before
            # the loop handles them, must not kill the broker.
            n.wait(lambda m: m.startswith("STATUS=recovering"))
            w2.send(signal.SIGHUP)
            w2.send(signal.SIGUSR1)
            t_ready, _ = n.wait(lambda m: "READY=1" in m.split("\n"), timeout=120)
            self.assertIsNone(w2.proc.poll())
            before = [m for t, m in n.all() if t <= t_ready]
            status = [m for m in before if m.startswith("STATUS=recovering")]
            self.assertTrue(any(re.match(r"STATUS=recovering: reading the journal, 0 of \d+ MiB\n"
                                         r"EXTEND_TIMEOUT_USEC=30000000$", m) for m in status),
                            status)
            self.assertIn("STATUS=recovering: 0 of 2,000,000 messages\n"
                          "EXTEND_TIMEOUT_USEC=30000000", status)
            # Progress comes about once a second: a recovery that took
            # longer than that shows a line with something done.
            took = float(re.search(r"data directory \S+ opened in ([0-9.]+) s",
                                   w2.output()).group(1))
            progress = [m for m in status if not re.search(r": (reading the journal, )?0 of ", m)
                        and "opening" not in m]
            if took >= 1.5:
                self.assertTrue(progress, (took, status))
            for m in progress:
                self.assertRegex(m, r"^STATUS=recovering: ((reading the journal, )?[0-9,]+ of "
                                    r"[0-9,]+ (MiB|messages))\n")
            print("recovery of 2,000,000 messages took %.2f s, %d progress lines: %s"
                  % (took, len(progress), progress[:3]))
            with socket.create_connection((HOST, w2.port), timeout=2):
                pass
            self.assertEqual(w2.stop(), 0)
        finally:
            n.close()

    # ---- SIGTERM ----

    def test_sigterm_closes_clients_with_320(self):
        import pika
        n = Notify(self.tmp)
        try:
            w = self.start(env={"NOTIFY_SOCKET": n.env})
            params = pika.ConnectionParameters(host=HOST, port=w.port, heartbeat=0)
            pub = pika.BlockingConnection(params)
            ch = pub.channel()
            ch.queue_declare("keep", durable=True)
            ch.confirm_delivery()
            for i in range(100):
                ch.basic_publish("", "keep", b"m%d" % i,
                                 pika.BasicProperties(delivery_mode=2))
            conns = [pub]
            for _ in range(3):
                c = pika.BlockingConnection(params)
                cc = c.channel()
                cc.basic_qos(prefetch_count=5)
                cc.basic_consume("keep", lambda *a: None)  # takes 5 each, never acks
                c.process_data_events(0.2)
                conns.append(c)
            t0 = time.monotonic()
            w.send(signal.SIGTERM)
            closed = []
            for c in conns:
                try:
                    deadline = time.monotonic() + 10
                    while time.monotonic() < deadline:
                        c.process_data_events(0.1)
                except pika.exceptions.ConnectionClosedByBroker as e:
                    closed.append((e.reply_code, e.reply_text))
            self.assertEqual(closed, [(320, "CONNECTION_FORCED - broker forced connection "
                                             "closure with reason 'shutdown'")] * 4)
            self.assertEqual(w.proc.wait(15), 0, self.dump(w))
            self.assertLess(time.monotonic() - t0, 5)  # every client answered: no timeout
            n.wait(lambda m: m.startswith("STOPPING=1"))
            out = w.output()
            self.assertIn("shutdown: connection.close sent to 4 connections", out)
            self.assertIn("shutdown: every connection closed in", out)
            print(re.search(r"shutdown: every connection closed in \d+ ms", out).group(0))
            self.assertIn("journal synced; stopped", out)
        finally:
            n.close()
        # The persistent messages (the unacked ones too) survive.
        w2 = self.start(port=w.port, data_dir=w.data_dir)
        c = pika.BlockingConnection(pika.ConnectionParameters(host=HOST, port=w2.port))
        q = c.channel().queue_declare("keep", durable=True, passive=True)
        self.assertEqual(q.method.message_count, 100)
        c.close()
        self.assertEqual(w2.stop(), 0)

    def test_shutdown_timeout_cuts_silent_clients(self):
        w = self.start(conf="shutdown_timeout = 1500\n")
        # A client that completed the handshake and then never reads or
        # answers: connection.close gets no close-ok.
        silent = [r.open_peer(HOST, w.port) for _ in range(3)]
        t0 = time.monotonic()
        self.assertEqual(w.stop(), 0, self.dump(w))
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 1.4)
        self.assertLess(took, 4.0)
        self.assertIn("shutdown: 3 connections cut after", w.output())
        print(re.search(r"shutdown: 3 connections cut after \d+ ms", w.output()).group(0),
              "(exit after %.2f s)" % took)
        for p in silent:
            p.close()
        # shutdown_timeout = 0: cut at once.
        w = self.start(conf="shutdown_timeout = 0\n", port=w.port, data_dir=w.data_dir)
        silent = r.open_peer(HOST, w.port)
        t0 = time.monotonic()
        self.assertEqual(w.stop(), 0)
        self.assertLess(time.monotonic() - t0, 1.5)
        silent.close()

    # ---- SIGHUP ----

    def test_sighup_reopens_renamed_log_file(self):
        log = os.path.join(self.tmp, "log", "warren.log")
        os.mkdir(os.path.dirname(log))
        w = self.start(conf="log.dir = %s\nlog.file = warren.log\nlog.console = false\n"
                            % os.path.dirname(log))
        wait_for(lambda: " ready\n" in read_file(log), what="'ready' in the log file")
        self.assertNotIn(" ready\n", w.output())  # log.console = false
        os.rename(log, log + ".1")
        with socket.create_connection((HOST, w.port)):
            pass
        wait_for(lambda: "accepted connection" in read_file(log + ".1"),
                 what="the renamed file still in use")
        w.send(signal.SIGHUP)
        wait_for(lambda: "configuration reloaded" in read_file(log), what="a new warren.log")
        with socket.create_connection((HOST, w.port)):
            pass
        wait_for(lambda: "accepted connection" in read_file(log))
        self.assertNotIn("configuration reloaded", read_file(log + ".1"))
        self.assertEqual(oct(os.stat(log).st_mode & 0o777), "0o640")
        self.assertEqual(w.stop(), 0)
        self.assertIn("journal synced; stopped", read_file(log))

    def test_sighup_applies_reloadable_and_logs_restart_keys(self):
        log = os.path.join(self.tmp, "w.log")
        base = "log.file = %s\nlog.level = info\nheartbeat = 60\n" % log
        w = self.start(conf=base, log_level=False)
        with socket.create_connection((HOST, w.port)):
            pass
        p = r.open_peer(HOST, w.port)
        self.assertEqual(p.server_tune[2], 60)
        p.close()
        with open(w.conf_path, "w") as f:
            f.write(base.replace("info", "debug").replace("60", "7")
                    + "journal.fsync_interval = 50\nmax_message_size = 1MiB\n"
                    + "num_acceptors.tcp = 10\n")
        w.send(signal.SIGHUP)
        wait_for(lambda: "configuration reloaded" in read_file(log))
        text = read_file(log)
        self.assertIn("configuration: log.level changed from 'info' to 'debug'", text)
        self.assertIn("configuration: heartbeat changed from '60' to '7'", text)
        self.assertIn("configuration: max_message_size changed from '128MiB' to '1MiB'", text)
        self.assertIn("configuration: journal.fsync_interval changed from '200' to '50', which "
                      "needs a restart: not applied", text)
        self.assertIn("num_acceptors.tcp: a RabbitMQ setting that Warren does not "
                      "implement; ignored", text)
        self.assertIn("configuration reloaded: 3 setting(s) changed, 1 need a restart", text)
        # The debug level applies: a connection is logged now; heartbeat 7
        # is offered to new connections.
        p = r.open_peer(HOST, w.port)
        self.assertEqual(p.server_tune[2], 7)
        p.close()
        wait_for(lambda: "accepted connection" in read_file(log), what="a debug line")
        # A file with errors changes nothing.
        with open(w.conf_path, "w") as f:
            f.write(base + "heartbeat = soon\nfrobnicate = 1\n")
        w.send(signal.SIGHUP)
        wait_for(lambda: "nothing reloaded" in read_file(log))
        text = read_file(log)
        self.assertIn("configuration: %s:4: heartbeat: invalid value 'soon'" % w.conf_path, text)
        self.assertIn("configuration: %s:5: frobnicate: unknown setting" % w.conf_path, text)
        self.assertIn("configuration: 2 error(s): nothing reloaded", text)
        p = r.open_peer(HOST, w.port)
        self.assertEqual(p.server_tune[2], 7)
        p.close()
        self.assertEqual(w.stop(), 0)

    # ---- syslog ----

    def test_syslog(self):
        """log.syslog = true: lines reach the local syslog socket. /dev/log
        is played by a socket bound in a private mount namespace (unshare),
        so the host's syslog is left alone."""
        if subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode != 0:
            self.skipTest("unshare -rm (a user and mount namespace) is not permitted here")
        real = os.path.join(self.tmp, "realdev")
        os.mkdir(real)
        with open(os.path.join(self.tmp, "warren.conf"), "w") as f:
            f.write("log.syslog = true\nlog.syslog.level = warning\nlog.console = false\n"
                    "mqtt.vhost = /\n")
        script = r"""
import json, os, signal, socket, subprocess, sys, time
tmp, real, warrend, port = sys.argv[1:5]
subprocess.check_call(["mount", "--rbind", "/dev", real])
subprocess.check_call(["mount", "-t", "tmpfs", "tmpfs", "/dev"])
for n in ("null", "zero", "urandom", "random"):
    open("/dev/" + n, "w").close()
    subprocess.check_call(["mount", "--bind", os.path.join(real, n), "/dev/" + n])
log = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
log.bind("/dev/log")
log.settimeout(0.2)
p = subprocess.Popen([warrend, "-c", tmp + "/warren.conf", "--port", port, "--mgmt-port", "0",
                      "--data-dir", tmp + "/data", "--bind", "127.0.0.1"],
                     stdout=subprocess.DEVNULL, stderr=open(tmp + "/stderr", "w"))
got = []
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    try:
        c = socket.create_connection(("127.0.0.1", int(port)), timeout=1)
        c.close()
        break
    except OSError:
        time.sleep(0.05)
os.kill(p.pid, signal.SIGHUP)
os.kill(p.pid, signal.SIGTERM)
rc = p.wait(20)
while True:
    try:
        got.append(log.recv(4096).decode(errors="replace"))
    except socket.timeout:
        break
print(json.dumps({"rc": rc, "pid": p.pid, "got": got}))
"""
        port = harness.free_port()
        out = subprocess.run(["unshare", "-rm", sys.executable, "-c", script, self.tmp, real,
                              harness.find_warrend(), str(port)],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out)
        import json
        res = json.loads(out.stdout.strip().splitlines()[-1])
        self.assertEqual(res["rc"], 0, read_file(os.path.join(self.tmp, "stderr")))
        # Warnings and errors only (log.syslog.level), as daemon.warning
        # (<28>) from warrend[PID]; nothing on stderr (log.console = false).
        lines = res["got"]
        self.assertTrue(lines, res)
        for m in lines:
            self.assertRegex(m, r"^<(27|28)>.*warrend\[%d\]: " % res["pid"])
        self.assertFalse([m for m in lines if "ready" in m])
        self.assertEqual(read_file(os.path.join(self.tmp, "stderr")), "")

    # ---- SIGUSR1 ----

    def test_sigusr1_logs_status(self):
        import pika
        w = self.start()
        c = pika.BlockingConnection(pika.ConnectionParameters(host=HOST, port=w.port))
        ch = c.channel()
        ch.queue_declare("status-q")
        for _ in range(7):
            ch.basic_publish("", "status-q", b"x")
        ch.basic_get("status-q", auto_ack=False)
        ch.basic_get("status-q", auto_ack=False)
        w.send(signal.SIGUSR1)
        wait_for(lambda: "status: journal:" in w.output(), what="the status")
        out = w.output()
        self.assertRegex(out, r"status: warrend \S+, pid %d, up 0d 00:00:\d\d" % w.proc.pid)
        self.assertIn("status: connections: 1 open, 0 in the handshake, 0 closing, 0 blocked; "
                      "channels: 1", out)
        self.assertIn("status: vhosts: 1, exchanges: 7, queues: 1 (0 durable), consumers: 0", out)
        self.assertIn("status: messages: 5 ready, 2 unacknowledged", out)
        self.assertIn("status: since start: 7 published, 2 delivered, 0 acknowledged", out)
        self.assertIn("status: queue 'status-q' in vhost '/': 5 ready, 2 unacknowledged", out)
        self.assertRegex(out, r"status: memory: [0-9.]+ MiB counted of a [0-9.]+ \w+ limit "
                              r"\(alarm off\), resident [0-9.]+ MiB")
        c.close()
        self.assertEqual(w.stop(), 0)

    # ---- the command line ----

    def test_pidfile(self):
        pid_path = os.path.join(self.tmp, "run", "warrend.pid")
        os.mkdir(os.path.dirname(pid_path))
        w = self.start(args=("--pidfile", pid_path))
        self.assertEqual(read_file(pid_path), "%d\n" % w.proc.pid)
        # A second warrend on the same pid file refuses to start.
        other = os.path.join(self.tmp, "other")
        os.mkdir(other)
        p = subprocess.run([harness.find_warrend(), "--port", str(harness.free_port()),
                            "--mgmt-port", "0", "--data-dir", os.path.join(other, "d"),
                            "--pidfile", pid_path], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stderr.strip(), "warrend: the pid file %s is held by a running warrend "
                                           "(pid %d)" % (pid_path, w.proc.pid))
        self.assertEqual(read_file(pid_path), "%d\n" % w.proc.pid)
        self.assertEqual(w.stop(), 0)
        self.assertFalse(os.path.exists(pid_path))
        # A pid file left by a warrend that was killed is taken over.
        w = self.start(args=("--pidfile", pid_path), port=w.port, data_dir=w.data_dir)
        w.kill()
        self.assertTrue(os.path.exists(pid_path))
        w = self.start(args=("--pidfile", pid_path), port=w.port, data_dir=w.data_dir)
        self.assertEqual(read_file(pid_path), "%d\n" % w.proc.pid)
        self.assertEqual(w.stop(), 0)

    def test_version(self):
        p = subprocess.run([harness.find_warrend(), "--version"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0)
        lines = p.stdout.splitlines()
        self.assertRegex(lines[0], r"^warrend \(warren\) \d+\.\d+\.\d+$")
        self.assertRegex(lines[1], r"^git: \S+$")
        self.assertRegex(lines[2], r"^libevent: 2\.\d+\.\d+")
        self.assertRegex(lines[3], r"^OpenSSL: OpenSSL 3\.")
        self.assertRegex(lines[4], r"^jansson: 2\.\d+")
        self.assertRegex(lines[5], r"^PCRE2: 10\.\d+")
        # The runtime libraries: the versions the loader picked.
        ldd = subprocess.run(["ldd", harness.find_warrend()], capture_output=True, text=True)
        if "libjansson" in ldd.stdout:
            self.assertNotIn("(built with)", lines[4])

    def test_check_config(self):
        conf = os.path.join(self.tmp, "rabbitmq.conf")
        with open(conf, "w") as f:
            f.write("# reused from RabbitMQ, with mistakes\n"
                    "listeners.tcp.default = 5672\n"
                    "hearbeat = 30\n"
                    "num_acceptors.ssl = 10\n"
                    "channel_max = lots\n"
                    "loopback_users.guest = false\n"
                    "cluster_formation.peer_discovery_backend = classic_config\n"
                    "frobnicate = yes\n"
                    "management.tcp.prot = 15672\n"
                    "vm_memory_high_watermark.relative = 2\n"
                    "default_permissions.read = (\n")
        p = subprocess.run([harness.find_warrend(), "-c", conf, "--check-config"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1, p)
        self.assertEqual(p.stderr.splitlines(), [
            conf + ":3: hearbeat: unknown setting; did you mean 'heartbeat'?",
            conf + ":4: num_acceptors.ssl: a RabbitMQ setting that Warren does not implement; "
                   "ignored",
            conf + ":5: channel_max: invalid value 'lots': not an integer",
            conf + ":7: cluster_formation.peer_discovery_backend: a RabbitMQ setting that Warren "
                   "does not implement; ignored",
            conf + ":8: frobnicate: unknown setting",
            conf + ":9: management.tcp.prot: unknown setting; did you mean "
                   "'management.tcp.port'?",
            conf + ":10: vm_memory_high_watermark.relative: invalid value '2': out of range "
                   "(0..1)",
            conf + ": default_permissions.read: regular expression '(' is invalid: missing "
                   "closing parenthesis at offset 1",
        ])
        self.assertEqual(p.stdout, conf + ": 6 error(s), 2 warning(s): warrend would not start\n")
        # Fixed: only the warnings stay, and the check passes.
        with open(conf, "w") as f:
            f.write("heartbeat = 30\nnum_acceptors.ssl = 10\nmqtt.vhost = /\n")
        p = subprocess.run([harness.find_warrend(), "-c", conf, "--check-config"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p)
        self.assertEqual(p.stdout, conf + ": configuration OK (2 warning(s))\n")
        self.assertEqual(len(p.stderr.splitlines()), 2)
        # Options are checked with the file.
        p = subprocess.run([harness.find_warrend(), "-c", conf, "--port", "0", "--check-config"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn("--port: listeners.tcp.default: invalid value '0': out of range", p.stderr)
        # A normal start with those RabbitMQ keys starts, one warning each.
        w = self.start(conf="heartbeat = 30\nnum_acceptors.ssl = 10\nmqtt.vhost = /\n")
        out = w.output()
        self.assertIn("warning configuration: %s:2: num_acceptors.ssl: a RabbitMQ setting that "
                      "Warren does not implement; ignored" % w.conf_path, out)
        self.assertEqual(out.count("does not implement"), 2)
        self.assertEqual(w.stop(), 0)
        # A start with errors reports them all and exits 1.
        with open(conf, "w") as f:
            f.write("hearbeat = 1\nframe_max = 1\n")
        p = subprocess.run([harness.find_warrend(), "-c", conf, "--mgmt-port", "0",
                            "--data-dir", os.path.join(self.tmp, "never")],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stderr.splitlines(), [
            "warrend: %s:1: hearbeat: unknown setting; did you mean 'heartbeat'?" % conf,
            "warrend: %s:2: frame_max: invalid value '1': out of range (4096..134217728)" % conf,
            "warrend: 2 errors in the configuration"])
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "never")))

    def test_print_config(self):
        conf = os.path.join(self.tmp, "w.conf")
        with open(conf, "w") as f:
            f.write("default_pass = s3cret#pass\nheartbeat = 9\nloopback_users.guest = false\n")
        p = subprocess.run([harness.find_warrend(), "-c", conf, "--mgmt-port", "0",
                            "--print-config"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p)
        self.assertNotIn("s3cret", p.stdout)
        self.assertIn("\ndefault_pass = ********\n", p.stdout)
        self.assertIn("\nheartbeat = 9\n", p.stdout)
        self.assertIn("\nmanagement.tcp.port = 0\n", p.stdout)
        self.assertIn("\nloopback_users = none\n", p.stdout)
        self.assertIn("\nshutdown_timeout = 10000\n", p.stdout)
        self.assertTrue(p.stdout.startswith("# effective configuration (%s)\n" % conf))
        # What it prints parses back (secrets aside) to the same.
        again = os.path.join(self.tmp, "again.conf")
        with open(again, "w") as f:
            f.write(p.stdout.replace("default_pass = ********", "default_pass = x"))
        q = subprocess.run([harness.find_warrend(), "-c", again, "--print-config"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(q.returncode, 0, q)
        self.assertEqual(q.stdout.split("\n", 1)[1], p.stdout.split("\n", 1)[1])
        with open(conf, "w") as f:
            f.write("heartbeat = x\n")
        p = subprocess.run([harness.find_warrend(), "-c", conf, "--print-config"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, "")
        self.assertIn("heartbeat: invalid value 'x'", p.stderr)


if __name__ == "__main__":
    harness.main()
