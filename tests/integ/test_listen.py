"""test_listen - where warrend listens, and the limits on accepting.

- by default (no --bind, no listeners.tcp.ip) on loopback in both families,
  127.0.0.1 and ::1, so that a client given "localhost" finds it whichever
  address it tries first; where ::1 is not available (a network namespace
  with IPv6 off on lo) it says so and listens on 127.0.0.1;
- listeners.tcp.NAME = ADDR:PORT as in rabbitmq.conf, replacing the
  default listener; [::]:PORT dual-stack; listeners.tcp = none;
- connection_max: one more connection is accepted and closed at once, one
  log line for the series, and accepting goes on when one closes;
- out of descriptors (a low RLIMIT_NOFILE): the listener pauses instead of
  spinning, logs once, and accepts again when descriptors are free;
- each port listens once, when the broker is ready: the start-up check
  that a port is free binds without listen() (under strace; a socket that
  listened for a moment took connections and reset them, and a probe
  waiting for the port saw the broker up before it had recovered).
"""
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import pika  # noqa: E402

SANITIZERS = bool(os.environ.get("WARREN_SANITIZERS"))


wait_for = harness.wait_for


def port_free_both():
    """A port free on 127.0.0.1 and on ::1."""
    for _ in range(50):
        p = harness.free_port()
        try:
            with socket.socket(socket.AF_INET6) as s:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.bind(("::1", p))
            return p
        except OSError:
            continue
    raise RuntimeError("no port free on both loopbacks")


def can_connect(host, port, family=socket.AF_INET):
    try:
        with socket.socket(family) as s:
            s.settimeout(2)
            s.connect((host, port))
            return True
    except OSError:
        return False


class Warrend:
    """A warrend of our own: argv without the harness's --bind/--port."""

    def __init__(self, *args, conf=None, wrap=None, preexec=None, wait_port=None,
                 wait_host="127.0.0.1", family=socket.AF_INET):
        self.dir = tempfile.mkdtemp(prefix="warren-listen-")
        self.log_path = os.path.join(self.dir, "warrend.log")
        argv = [harness.find_warrend(), "--data-dir", os.path.join(self.dir, "data"),
                "--mgmt-port", "0", "--log-level", "debug", *args]
        if conf is not None:
            path = os.path.join(self.dir, "warren.conf")
            with open(path, "w") as f:
                f.write("\n".join(conf) + "\n")
            argv += ["-c", path]
        if wrap:
            argv = wrap(argv)
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, preexec_fn=preexec)
        log.close()
        if wait_port:
            wait_for(lambda: self.proc.poll() is not None or
                     can_connect(wait_host, wait_port, family), 15, "the listener")
        else:
            wait_for(lambda: self.proc.poll() is not None or " ready" in self.log(), 15,
                     "ready")
        if self.proc.poll() is not None:
            raise AssertionError("warrend exited: %s" % self.log())

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(20)
        rc = self.proc.returncode
        text = self.log()
        shutil.rmtree(self.dir, ignore_errors=True)
        return rc, text

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.proc.pid) as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def amqp(host, port, **kw):
    return pika.BlockingConnection(pika.ConnectionParameters(
        host=host, port=port, heartbeat=0, socket_timeout=5, **kw))


class Addresses(unittest.TestCase):

    def test_default_both_loopbacks(self):
        port = port_free_both()
        w = Warrend("--port", str(port))
        try:
            log = w.log()
            self.assertIn("AMQP 0-9-1 listener on 127.0.0.1:%d" % port, log)
            self.assertIn("AMQP 0-9-1 listener on [::1]:%d" % port, log)
            for host in ("127.0.0.1", "::1", "localhost"):
                c = amqp(host, port)
                c.channel().queue_declare("", exclusive=True)
                c.close()
            self.assertFalse(can_connect(harness.non_loopback_address() or "192.0.2.1", port))
        finally:
            rc, _ = w.stop()
        self.assertEqual(rc, 0)

    def test_named_listeners_replace_default(self):
        p1, p2 = port_free_both(), port_free_both()
        w = Warrend(conf=["listeners.tcp.local = 127.0.0.1:%d" % p1,
                          "listeners.tcp.local_v6 = ::1:%d" % p2])
        try:
            log = w.log()
            listeners = [line.split("listener on ")[1] for line in log.splitlines()
                         if "AMQP 0-9-1 listener on" in line]
            self.assertEqual(listeners, ["127.0.0.1:%d" % p1, "[::1]:%d" % p2])
            amqp("127.0.0.1", p1).close()
            amqp("::1", p2).close()
        finally:
            self.assertEqual(w.stop()[0], 0)

    def test_default_kept_when_given(self):
        p0, p1 = port_free_both(), port_free_both()
        w = Warrend(conf=["listeners.tcp.default = %d" % p0,
                          "listeners.tcp.other = 127.0.0.1:%d" % p1,
                          "listeners.tcp.same = 127.0.0.1:%d" % p0])  # said twice: once
        try:
            listeners = [line.split("listener on ")[1] for line in w.log().splitlines()
                         if "AMQP 0-9-1 listener on" in line]
            self.assertEqual(listeners, ["127.0.0.1:%d" % p0, "[::1]:%d" % p0,
                                         "127.0.0.1:%d" % p1])
        finally:
            self.assertEqual(w.stop()[0], 0)

    def test_dual_stack_any(self):
        port = port_free_both()
        w = Warrend(conf=["listeners.tcp.default = [::]:%d" % port], wait_port=port)
        try:
            self.assertIn("AMQP 0-9-1 listener on [::]:%d" % port, w.log())
            amqp("127.0.0.1", port).close()  # IPv4 through the IPv6 socket
            amqp("::1", port).close()
        finally:
            self.assertEqual(w.stop()[0], 0)

    def test_none(self):
        port = port_free_both()
        w = Warrend("--bind", "127.0.0.1", conf=["listeners.tcp = none"])
        try:
            self.assertIn("no AMQP listener", w.log())
            self.assertNotIn("AMQP 0-9-1 listener on", w.log())
        finally:
            self.assertEqual(w.stop()[0], 0)
        # --port after "none": given explicitly, so it listens
        w = Warrend("--bind", "127.0.0.1", "--port", str(port), conf=["listeners.tcp = none"],
                    wait_port=port)
        self.assertEqual(w.stop()[0], 0)

    def test_ipv6_loopback_missing(self):
        if os.geteuid() != 0 or not shutil.which("unshare"):
            self.skipTest("needs root and unshare for a network namespace without ::1")
        port = harness.free_port()

        def wrap(argv):
            script = ("ip link set lo up && sysctl -q -w net.ipv6.conf.lo.disable_ipv6=1 && "
                      'exec "$@"')
            return ["unshare", "-n", "sh", "-c", script, "sh", *argv]
        w = Warrend("--port", str(port), wrap=wrap)
        rc, log = w.stop()
        self.assertEqual(rc, 0, log)
        self.assertIn("AMQP 0-9-1 listener on 127.0.0.1:%d" % port, log)
        self.assertIn("IPv6 loopback ::1 is not available", log)
        self.assertNotIn("listener on [::1]", log)
        # an explicit ::1 there is an error, with one line
        w2 = subprocess.run(wrap([harness.find_warrend(), "--bind", "::1", "--port", str(port),
                                  "--mgmt-port", "0", "--data-dir",
                                  tempfile.mkdtemp(prefix="warren-listen-")]),
                            capture_output=True, text=True, timeout=30)
        self.assertEqual(w2.returncode, 1)
        self.assertIn("warrend: AMQP address ::1 is not an address of this host", w2.stderr)


class ListenOnce(unittest.TestCase):

    def test_each_port_listens_once(self):
        strace = harness.strace_path()
        if not strace:
            self.skipTest("strace is not installed or cannot trace here")
        port, mport = harness.free_port(), harness.free_port()
        trace = tempfile.mktemp(prefix="warren-listen-trace-")
        self.addCleanup(lambda: os.path.exists(trace) and os.unlink(trace))

        def wrap(argv):
            # LeakSanitizer cannot run under ptrace: without it here
            # (every other test checks the leaks)
            if SANITIZERS:
                opts = os.environ.get("ASAN_OPTIONS", "")
                argv = ["env", "ASAN_OPTIONS=%s%sdetect_leaks=0" % (opts, ":" if opts else ""),
                        *argv]
            return [strace, "-f", "-qq", "-e", "trace=bind,listen", "-o", trace, *argv]
        w = Warrend("--bind", "127.0.0.1", "--port", str(port), "--mgmt-port", str(mport),
                    wrap=wrap)
        try:
            c = amqp("127.0.0.1", port)
            c.close()
        finally:
            # warrend is strace's child: stop it by PID, then strace ends
            kids = []
            if w.proc.poll() is None:
                for t in os.listdir("/proc/%d/task" % w.proc.pid):
                    with open("/proc/%d/task/%s/children" % (w.proc.pid, t)) as f:
                        kids += [int(x) for x in f.read().split()]
            for k in kids:
                os.kill(k, signal.SIGTERM)
            if kids:  # strace exits with warrend's status once it has exited
                try:
                    w.proc.wait(20)
                except subprocess.TimeoutExpired:
                    pass
            rc, log = w.stop()
        bound, listens = {}, {}
        with open(trace) as f:
            text = f.read()
        for line in text.splitlines():
            m = re.match(r"(\d+)\s+bind\((\d+), .*sin6?_port=htons\((\d+)\).*= 0$", line)
            if m:
                bound[(m.group(1), m.group(2))] = int(m.group(3))
            m = re.match(r"(\d+)\s+listen\((\d+), .*= 0$", line)
            if m:
                p = bound.get((m.group(1), m.group(2)))
                listens[p] = listens.get(p, 0) + 1
        self.assertEqual(listens.get(port), 1, "AMQP port %d: %s\n%s" % (port, listens, text))
        self.assertEqual(listens.get(mport), 1, "management port %d: %s\n%s" % (mport, listens,
                                                                                text))
        self.assertEqual(rc, 0, log)


class ConnectionMax(unittest.TestCase):

    def test_accept_then_close(self):
        port = harness.free_port()
        w = Warrend("--bind", "127.0.0.1", "--port", str(port), conf=["connection_max = 3"])
        try:
            conns = [amqp("127.0.0.1", port) for _ in range(3)]
            for _ in range(5):
                t0 = time.monotonic()
                with self.assertRaises(pika.exceptions.AMQPConnectionError):
                    amqp("127.0.0.1", port)
                self.assertLess(time.monotonic() - t0, 3)  # closed at once, not left waiting
            log = w.log()
            lines = [x for x in log.splitlines() if "node connection limit" in x]
            self.assertEqual(len(lines), 1, lines)  # one line for the series
            self.assertIn("connection_max = 3", lines[0])
            for c in conns:
                c.channel().basic_qos(prefetch_count=1)  # the three still work
            conns.pop().close()
            c = wait_for(lambda: self._try(port), 5, "a connection again")
            wait_for(lambda: "5 were closed at connection_max (3)" in w.log(), 5, "the summary")
            c.close()
            for c in conns:
                c.close()
        finally:
            self.assertEqual(w.stop()[0], 0)

    @staticmethod
    def _try(port):
        try:
            return amqp("127.0.0.1", port)
        except pika.exceptions.AMQPConnectionError:
            return None


class OutOfDescriptors(unittest.TestCase):

    def test_pause_not_spin(self):
        port = harness.free_port()
        limit = 64

        def preexec():
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
        w = Warrend("--bind", "127.0.0.1", "--port", str(port), preexec=preexec)
        socks = []
        try:
            # Raw sockets that send the header: each costs the broker a descriptor.
            for _ in range(limit + 20):
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(b"AMQP\x00\x00\x09\x01")
                socks.append(s)
            wait_for(lambda: "Too many open files" in w.log(), 10, "the accept failure")
            cpu0 = w.cpu_seconds()
            time.sleep(1.5)
            cpu = w.cpu_seconds() - cpu0
            if not SANITIZERS:
                self.assertLess(cpu, 0.5, "the broker spun: %.2f s of CPU in 1.5 s" % cpu)
            lines = [x for x in w.log().splitlines() if "accept failed" in x]
            self.assertEqual(len(lines), 1, lines)  # once per episode
            for s in socks:
                s.close()
            socks = []
            wait_for(lambda: "accepting connections again after" in w.log(), 10,
                     "accepting again")
            amqp("127.0.0.1", port).close()
        finally:
            for s in socks:
                s.close()
            self.assertEqual(w.stop()[0], 0)


if __name__ == "__main__":
    harness.main()
