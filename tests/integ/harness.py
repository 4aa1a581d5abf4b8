"""harness.py - start a real warrend for an integration test, or use a broker
that is already running.

Every integration test imports this module and calls `broker()` (a context
manager) or, with unittest, subclasses `BrokerTestCase`. By default it starts
the warrend binary from the build tree on a free 127.0.0.1 port with a fresh
temporary data directory, and stops it by PID afterwards. Set
WARREN_TEST_PORT=N to point the same tests at a broker already listening on
127.0.0.1:N instead, RabbitMQ for instance: a test that passes there and
fails on Warren is a Warren bug.

Environment:
  WARREND            path of the warrend binary (default: found in the build tree)
  WARREN_TEST_PORT   use an already running broker on this port
  WARREN_TEST_ARGS   extra warrend arguments (space separated)
  WARREN_TEST_IO_THREADS  io_threads for every broker started (tests/integ/threaded.sh)
  WARREN_TEST_IO_PLACEMENT  io_threads.placement with it (threaded.sh: shuffle)
  WARREN_TEST_KEEP   keep the data directory and log after the test
"""
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
HOST = "127.0.0.1"


def find_warrend():
    env = os.environ.get("WARREND")
    if env:
        return env
    roots = [os.environ.get("abs_top_builddir"), os.environ.get("top_builddir"),
             os.path.join(HERE, "..", ".."), os.getcwd()]
    for root in roots:
        if not root:
            continue
        for rel in ("src/warrend", "warrend"):
            p = os.path.join(root, rel)
            if os.path.isfile(p) and os.access(p, os.X_OK):
                return os.path.abspath(p)
    raise RuntimeError("warrend binary not found; build it or set WARREND")


_given_ports = set()


def free_port():
    """A port free now, and not one this process was given before: the
    kernel may hand out the port just let go again, and a test that takes
    two (a broker's AMQP and management ports) got the same one twice."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind((HOST, 0))
            p = s.getsockname()[1]
        if p not in _given_ports:
            _given_ports.add(p)
            return p
    raise RuntimeError("no new free port")


def strace_path():
    """strace's path where it can trace here, else None: not installed,
    or ptrace refused (a container's seccomp): tests that need it skip."""
    path = shutil.which("strace")
    if not path:
        return None
    try:
        ok = subprocess.run([path, "-o", os.devnull, "true"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return path if ok else None


def non_loopback_address():
    """An IPv4 address of this machine that is not loopback, or None (for
    tests of loopback_users)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent: picks a route
            a = s.getsockname()[0]
            return None if a.startswith("127.") else a
    except OSError:
        return None


def wait_for(cond, timeout=10.0, what="condition"):
    """Poll cond() until it returns something true (returned), or fail
    after timeout seconds: a deadline, never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def wait_port(port, proc=None, timeout=None):
    if timeout is None:
        # A restart recovers the journal first: hundreds of MB read under
        # ThreadSanitizer, beside another test, took over 15 s.
        timeout = 60.0 if os.environ.get("WARREN_SANITIZERS") else 15.0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("warrend exited with %s before listening" % proc.returncode)
        try:
            with socket.create_connection((HOST, port), timeout=0.5) as s:
                # A port in the ephemeral range with nothing listening can
                # be connected to by a socket given that same local port
                # (TCP self-connect): not the broker.
                if s.getsockname() != s.getpeername():
                    return
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError("nothing listening on %s:%d after %.0fs" % (HOST, port, timeout))


class Broker:
    """A running broker: .port, .host, and for one we started: .proc, .log_path,
    .data_dir, .pid, .rss_kib(), .log_text(), .restart()."""

    def __init__(self, port, proc=None, data_dir=None, log_path=None, argv=None, extra=()):
        self.host = HOST
        self.port = port
        self.proc = proc
        self.data_dir = data_dir
        self.log_path = log_path
        self.argv = argv
        self.extra = tuple(extra)
        self.external = proc is None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def rss_kib(self):
        if not self.proc:
            return None
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None

    def cpu_seconds(self):
        if not self.proc:
            return None
        with open("/proc/%d/stat" % self.proc.pid) as f:
            parts = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(parts[11]) + int(parts[12])) / ticks

    def log_text(self):
        if not self.log_path:
            return ""
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def alive(self):
        return self.proc is None or self.proc.poll() is None

    def url(self, user="guest", password="guest", vhost="%2F"):
        return "amqp://%s:%s@%s:%d/%s" % (user, password, self.host, self.port, vhost)


def _start(extra_args=(), data_dir=None, port=None):
    exe = find_warrend()
    port = port or free_port()
    data_dir = data_dir or tempfile.mkdtemp(prefix="warren-test-")
    log_path = os.path.join(data_dir, "warrend.log")
    argv = [exe, "--port", str(port), "--bind", HOST, "--data-dir", data_dir,
            "--mgmt-port", "0", "--log-level", "debug"]
    if os.environ.get("WARREN_TEST_IO_THREADS"):
        argv += ["-s", "io_threads=" + os.environ["WARREN_TEST_IO_THREADS"]]
        if os.environ.get("WARREN_TEST_IO_PLACEMENT"):
            argv += ["-s", "io_threads.placement=" + os.environ["WARREN_TEST_IO_PLACEMENT"]]
    argv += list(extra_args) + os.environ.get("WARREN_TEST_ARGS", "").split()
    log = open(log_path, "ab")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    try:
        wait_port(port, proc)
    except Exception:
        proc.kill()
        proc.wait()
        sys.stderr.write(open(log_path, errors="replace").read())
        raise
    return Broker(port, proc, data_dir, log_path, argv, extra_args)


def _stop(b, sig=signal.SIGTERM, timeout=20):
    """Stop by PID. Returns the exit status."""
    if b.proc.poll() is None:
        b.proc.send_signal(sig)
        try:
            b.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            b.proc.kill()
            b.proc.wait()
            raise RuntimeError("warrend did not stop within %ds of signal %d" % (timeout, sig))
    return b.proc.returncode


def restart(b, sig=signal.SIGTERM, extra_args=()):
    """Stop a broker we started (SIGKILL for a crash) and start it again on
    the same port and data directory."""
    _stop(b, sig)
    nb = _start(extra_args or b.extra, data_dir=b.data_dir, port=b.port)
    b.proc, b.argv, b.extra = nb.proc, nb.argv, nb.extra
    return b


@contextlib.contextmanager
def broker(extra_args=()):
    """Yield a Broker. Fails the test if a broker we started crashed, exited
    non-zero, or printed a sanitizer report."""
    ext = os.environ.get("WARREN_TEST_PORT")
    if ext:
        yield Broker(int(ext))
        return
    b = _start(extra_args)
    ok = False
    try:
        yield b
        ok = True
    finally:
        crashed = b.proc.poll() is not None
        rc = _stop(b)
        text = b.log_text()
        bad = crashed or rc != 0 or "ERROR: AddressSanitizer" in text or \
            "runtime error:" in text or "LeakSanitizer" in text or \
            "WARNING: ThreadSanitizer" in text
        if bad or not ok or os.environ.get("WARREN_TEST_KEEP"):
            sys.stderr.write("---- warrend log (%s) ----\n%s\n" % (b.log_path, text[-20000:]))
        if not os.environ.get("WARREN_TEST_KEEP"):
            shutil.rmtree(b.data_dir, ignore_errors=True)
        if ok and bad:
            raise AssertionError("warrend %s (exit %s); see its log above"
                                 % ("crashed" if crashed else "failed", rc))


class BrokerTestCase(unittest.TestCase):
    """One broker per test class. Subclasses may set `broker_args`."""
    broker_args = ()

    @classmethod
    def setUpClass(cls):
        cls._cm = broker(cls.broker_args)
        cls.broker = cls._cm.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls._cm.__exit__(None, None, None)

    @property
    def external(self):
        return self.broker.external

    def pika_params(self, **kw):
        import pika
        kw.setdefault("heartbeat", 0)
        kw.setdefault("blocked_connection_timeout", 30)
        return pika.ConnectionParameters(host=HOST, port=self.broker.port, **kw)

    def connect(self, **kw):
        import pika
        return pika.BlockingConnection(self.pika_params(**kw))

    def unique(self, prefix="t"):
        return "%s-%s-%d-%d" % (prefix, self.id().rsplit(".", 1)[-1], os.getpid(),
                                int(time.monotonic_ns() % 1000000000))


def main():
    """Run the calling module's tests; print a summary line the CI reads."""
    prog = unittest.main(module="__main__", exit=False, verbosity=2)
    r = prog.result
    failed = len(r.failures) + len(r.errors) + len(r.unexpectedSuccesses)
    skipped = len(r.skipped)
    print("%d passed, %d failed, %d skipped" % (r.testsRun - failed - skipped, failed, skipped))
    sys.exit(1 if failed else 0)
