"""test_man_examples - the EXAMPLES of warren(7) run, as printed, against a
fresh warrend.

Each literal block of man/warren.7 is taken from the page (mdoc escapes
undone) and run:

  * a block of "$ command" lines is a shell session: every command runs
    (amqp-tools pointed at the test's broker with -u, warrenctl through
    WARREN_URL), a command ending in '&' runs in the background (the next
    one waits until its consumer is registered), and the lines under a
    command are its expected output (or, when it printed nothing, that of
    the background commands);
  * a Python block runs with /usr/bin/python3, localhost:5672 replaced by
    the test's port (and the retry ring's 5 s delay cut to 0.2 s), while
    this test publishes what the example expects and checks what it
    prints or leaves in the queues; a consumer that runs forever is
    stopped by PID once it has done its work.

The blocks are found by a phrase they contain, so reordering the page does
not break the test; a block the test does not know fails it.
"""
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.request

import harness
from warren_test import SKIP, WARRENCTL, Checks, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("top_srcdir") or os.path.join(HERE, "..", "..")
PY = "/usr/bin/python3"

t = Checks()


def literal_blocks(page):
    blocks, cur = [], None
    with open(page) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith(".Bd -literal"):
                cur = []
            elif line.startswith(".Ed") and cur is not None:
                blocks.append("\n".join(cur) + "\n")
                cur = None
            elif cur is not None:
                cur.append(line.replace("\\e", "\\").replace("\\&", ""))
    return blocks


class Env:
    def __init__(self, broker, mgmt_port, workdir):
        self.b = broker
        self.mgmt = mgmt_port
        self.dir = workdir
        self.url = broker.url()
        bindir = os.path.join(workdir, "bin")
        os.makedirs(bindir, exist_ok=True)
        os.symlink(os.path.abspath(WARRENCTL), os.path.join(bindir, "warrenctl"))
        self.env = dict(os.environ, PATH=bindir + ":" + os.environ.get("PATH", ""),
                        WARREN_URL="http://127.0.0.1:%d" % mgmt_port, PYTHONUNBUFFERED="1")
        for k in ("WARREN_USER", "WARREN_PASSWORD", "WARREN_VHOST"):
            self.env.pop(k, None)

    def api(self, path):
        req = urllib.request.Request("http://127.0.0.1:%d/api/%s" % (self.mgmt, path))
        req.add_header("Authorization", "Basic Z3Vlc3Q6Z3Vlc3Q=")  # guest:guest
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)

    def queue(self, name):
        try:
            return self.api("queues/%2F/" + name)
        except Exception:
            return None

    def wait(self, cond, what, timeout=20.0):
        return harness.wait_for(cond, timeout, what)

    def consumers(self):
        return len(self.api("consumers"))

    def pika(self):
        import pika
        return pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", self.b.port,
                                                                 heartbeat=0))


# ---- shell sessions ----

def session_commands(block):
    """[(command, [expected lines])] of a "$ ..." block."""
    out, cmd = [], None
    for line in block.splitlines():
        if line.startswith("$ "):
            cmd = line[2:]
            out.append([cmd, []])
        elif out and out[-1][0].endswith("\\"):
            out[-1][0] = out[-1][0][:-1] + " " + line.strip()
        elif out:
            out[-1][1].append(line)
    return [(c, e) for c, e in out]


def run_session(env, name, block):
    background = []
    for cmd, expected in session_commands(block):
        cmd = re.sub(r"\bamqp-(declare-queue|publish|consume|get|delete-queue)\b",
                     lambda m: "%s -u %s" % (m.group(0), env.url), cmd)
        if cmd.rstrip().endswith("&"):
            before = env.consumers()
            p = subprocess.Popen(["sh", "-c", cmd.rstrip().rstrip("&")], cwd=env.dir,
                                 env=env.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, stdin=subprocess.DEVNULL)
            background.append(p)
            env.wait(lambda: env.consumers() > before, "the background consumer of: " + cmd)
            continue
        p = subprocess.run(["sh", "-c", cmd], cwd=env.dir, env=env.env, capture_output=True,
                           text=True, timeout=60, stdin=subprocess.DEVNULL)
        got = p.stdout.splitlines()
        if not got and expected and background:
            got = []
            for bp in background:
                try:
                    o, _ = bp.communicate(timeout=15)
                except subprocess.TimeoutExpired:
                    bp.kill()
                    o, _ = bp.communicate()
                got += o.splitlines()
            background = []
        # amqp-tools print the messages; warrenctl's "declared ..." lines are
        # not shown on the page.
        if cmd.split()[0] == "warrenctl":
            got = []
        t.check(p.returncode == 0 and got == expected,
                "%s: $ %s -> %r (expected %r, exit %d%s)"
                % (name, cmd.replace(env.url, "URL"), got, expected, p.returncode,
                   ", " + p.stderr.strip() if p.stderr.strip() else ""))
    for bp in background:
        bp.kill()
        bp.wait()


# ---- Python blocks ----

class Script:
    """A Python example running in the background, its output collected."""

    def __init__(self, env, code):
        code = code.replace("localhost:5672", "127.0.0.1:%d" % env.b.port)
        self.path = os.path.join(env.dir, "example_%d.py" % id(self))
        with open(self.path, "w") as f:
            f.write(code)
        self.out = open(self.path + ".out", "w+")
        self.p = subprocess.Popen([PY, self.path], cwd=env.dir, env=env.env, stdout=self.out,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def text(self):
        self.out.flush()
        with open(self.path + ".out") as f:
            return f.read()

    def finish(self, timeout=30):
        """Wait for it to exit by itself; returns its exit status."""
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            return None

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def run_publisher(env, code):
    before = (env.queue("jobs") or {}).get("messages", 0)
    s = Script(env, code)
    rc = s.finish()
    t.check(rc == 0, "publisher example exits 0 (%s)" % s.text().strip())
    env.wait(lambda: (env.queue("jobs") or {}).get("messages", 0) == before + 1,
             "the published job in 'jobs'")
    t.check(True, "publisher example leaves its job in 'jobs'")


@contextlib.contextmanager
def running(env, code, what):
    """Run an example that consumes forever while the body of the with
    statement checks it; a wait that times out fails the check `what`,
    with the example's output. Stopped by PID at the end."""
    s = Script(env, code)
    try:
        yield s
    except AssertionError as e:
        t.check(False, "%s: %s (output: %s)" % (what, e, s.text().strip()))
    finally:
        s.stop()


def run_worker(env, code):
    with running(env, code, "worker example") as s:
        env.wait(lambda: "resizing 42.png to 128" in s.text(), "the worker's output")
        env.wait(lambda: env.queue("jobs")["messages"] == 0, "'jobs' empty")
        t.check(True, "worker example resizes the published job and acks it")


def run_idempotent(env, code):
    import pika
    conn = env.pika()
    ch = conn.channel()
    ch.confirm_delivery()
    for mid, body in (("job-1", b"resize 1.png"), ("job-1", b"resize 1.png"),
                      ("job-2", b"resize 2.png")):
        ch.basic_publish("", "jobs", body, pika.BasicProperties(delivery_mode=2, message_id=mid))
    conn.close()
    with running(env, code, "idempotent consumer example") as s:
        env.wait(lambda: env.queue("jobs")["messages"] == 0, "'jobs' empty")
        env.wait(lambda: s.text().count("resizing") >= 2, "two effects")
        lines = [l for l in s.text().splitlines() if l.startswith("resizing")]
        t.check(lines == ["resizing b'resize 1.png'", "resizing b'resize 2.png'"],
                "idempotent consumer example applies a duplicate message_id once (%r)" % lines)


def run_delivery_limit(env, code):
    import pika
    conn = env.pika()
    ch = conn.channel()
    ch.basic_publish("", "thumbs", b"resize 46.png", pika.BasicProperties(delivery_mode=2))
    with running(env, code, "delivery-limit example") as s:
        env.wait(lambda: (env.queue("thumbs.dead") or {}).get("messages") == 1,
                 "the message in thumbs.dead")
        attempts = [l for l in s.text().splitlines() if l.startswith("attempt")]
        t.check(attempts == ["attempt %d failed" % i for i in (1, 2, 3, 4)],
                "delivery-limit example: four attempts, then thumbs.dead (%r)" % attempts)
        m, p, b = ch.basic_get("thumbs.dead", auto_ack=True)
        t.check(b == b"resize 46.png" and p.headers["x-death"][0]["reason"] == "delivery_limit",
                "the dead-lettered copy says delivery_limit")
    conn.close()


def run_ring(env, code):
    import pika
    delay = '"x-message-ttl": 5000'
    if not t.check(delay in code, "the retry ring waits 5 s in work.wait"):
        return
    conn = env.pika()
    ch = conn.channel()
    with running(env, code.replace(delay, '"x-message-ttl": 200'), "retry ring example"):
        env.wait(lambda: (env.queue("work") or {}).get("consumers") == 1, "the ring's worker")
        ch.basic_publish("", "work", b"flaky", pika.BasicProperties(delivery_mode=2))
        env.wait(lambda: (env.queue("work.dead") or {}).get("messages") == 1,
                 "the message in work.dead")
        m, p, b = ch.basic_get("work.dead", auto_ack=True)
        counts = {(d["queue"], d["reason"]): d["count"] for d in p.headers["x-death"]}
        t.check(b == b"flaky" and counts.get(("work", "rejected")) == 3,
                "retry ring example: 3 failures, then work.dead (x-death %r)" % counts)
    conn.close()


def run_priority(env, code):
    pre = ("import pika\nconn = pika.BlockingConnection(pika.URLParameters("
           "\"amqp://guest:guest@localhost:5672/\"))\nch = conn.channel()\n")
    post = ("for _ in range(2):\n    m, p, b = ch.basic_get('render', auto_ack=True)\n"
            "    print(b.decode())\n")
    s = Script(env, pre + code + post)
    rc = s.finish()
    t.check(rc == 0 and s.text().splitlines() == ["thumbnail", "full size"],
            "priority example: the thumbnail comes first (%r)" % s.text())


PYTHON_BLOCKS = [
    ("ch.confirm_delivery()      # basic_publish", run_publisher),
    ("def resize(job):", run_worker),
    ("INSERT OR IGNORE", run_idempotent),
    ("class Temporary", run_delivery_limit),
    ("MAX_FAILURES", run_ring),
    ("x-max-priority", run_priority),
]


def main():
    if os.environ.get("WARREN_TEST_PORT"):
        print("skip: the examples need a fresh warrend with its management API")
        return SKIP
    try:
        import pika  # noqa: F401
    except ImportError:
        print("skip: python3-pika is not installed")
        return SKIP
    missing = [c for c in ("amqp-declare-queue", "amqp-publish", "amqp-consume")
               if not any(os.access(os.path.join(d, c), os.X_OK)
                          for d in os.environ.get("PATH", "").split(":"))]
    if missing:
        print("skip: not installed: " + " ".join(missing))
        return SKIP
    blocks = literal_blocks(os.path.join(SRCDIR, "man", "warren.7"))
    mgmt = free_port()
    with tempfile.TemporaryDirectory(prefix="warren-man-") as d, \
            harness.broker(["--mgmt-port", str(mgmt)]) as b:
        env = Env(b, mgmt, d)
        env.wait(lambda: env.api("overview"), "the management API")
        n = 0
        for block in blocks:
            if block.startswith("$ "):
                n += 1
                run_session(env, "session %d" % n, block)
                continue
            runs = [run for phrase, run in PYTHON_BLOCKS if phrase in block]
            if not t.check(len(runs) == 1, "the test knows the block starting %r"
                           % block.splitlines()[0]):
                continue
            runs[0](env, block)
        t.check(n == 3, "three shell sessions on the page (%d)" % n)
    return 1 if t.failed else 0


if __name__ == "__main__":
    sys.exit(main())
