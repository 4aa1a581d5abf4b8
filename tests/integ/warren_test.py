"""warren_test - helpers shared by the integration tests in tests/integ/.

An integration test is a python3 script run by `make check` (automake's
harness, see tests/local.mk) with these environment variables set:

  WARREND, WARRENCTL       absolute paths of the freshly built programs
  top_srcdir, top_builddir absolute paths of the trees

It exits 0 on success, 1 on failure and 77 to be counted as skipped. The
helpers here find free ports, make throw-away data directories, and run
warrend so that each test talks to its own broker.
"""

import os
import socket
import subprocess
import sys
import tempfile

WARREND = os.environ.get("WARREND", "src/warrend")
WARRENCTL = os.environ.get("WARRENCTL", "src/warrenctl")
SKIP = 77


from harness import free_port  # noqa: E402,F401  (one port never given twice)


def temp_dir():
    """A fresh directory removed at interpreter exit."""
    d = tempfile.TemporaryDirectory(prefix="warren-integ-")
    _keep.append(d)
    return d.name


_keep = []


def run_warrend(*args, timeout=30):
    """Run warrend to completion; returns (exit status, stdout, stderr)."""
    p = subprocess.run([WARREND, *args], capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def start_then_stop(*args, timeout=30):
    """Start warrend, wait until its AMQP port (the --port argument) accepts
    a connection, stop it with SIGTERM; returns (exit status, stdout, stderr).
    Exit status None means it never listened (it was killed)."""
    import signal
    import time
    port = int(args[list(args).index("--port") + 1])
    p = subprocess.Popen([WARREND, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    listening = False
    while time.monotonic() < deadline and p.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                listening = True
                break
        except OSError:
            time.sleep(0.05)
    if listening:
        p.send_signal(signal.SIGTERM)
    else:
        p.kill()
    out, err = p.communicate(timeout=timeout)
    return (p.returncode if listening else None), out, err


def base_args(data_dir=None):
    """Options that keep a test's warrend away from everyone else's."""
    return ["--bind", "127.0.0.1", "--port", str(free_port()),
            "--mgmt-port", str(free_port()),
            "--data-dir", data_dir or os.path.join(temp_dir(), "data")]


class Checks:
    """Collects failures so one run reports all of them."""

    def __init__(self):
        self.failed = 0

    def check(self, cond, what):
        print(("ok     " if cond else "FAILED ") + what)
        if not cond:
            self.failed += 1
        return cond

    def exit(self):
        sys.exit(1 if self.failed else 0)
