#!/usr/bin/python3
"""The management listener itself: RabbitMQ's order of refusals (404 before
login, 405 with allow, 401 with the Basic challenge and an empty body when no
credentials came, 401 with a JSON reason otherwise), loopback_users, and the
limits that keep a hostile or slow HTTP client from taking memory or the
loop away from AMQP: a 100 MB body, a 100 KB path, 1,000 idle connections,
a client that sends half a request and stops.

Run against RabbitMQ: WARREN_TEST_PORT=5690 WARREN_TEST_MGMT_PORT=15690
(the limits tests are Warren's and skipped there).
"""
import base64
import os
import socket
import time
import unittest

import harness
import mgmtcase

# Under the sanitizers the broker's RSS holds freed memory (ASan's
# quarantine, TSan's shadow): memory bounds are not asserted there.
SANITIZERS = bool(os.environ.get("WARREN_SANITIZERS"))
from mgmtcase import HOST


def raw_request(port, data, read_timeout=10.0, host=HOST):
    """Send raw bytes; return the status line's code (int) or None when the
    server closed without answering."""
    s = socket.create_connection((host, port), timeout=read_timeout)
    try:
        try:
            s.sendall(data)
        except OSError:
            pass
        buf = b""
        while b"\r\n" not in buf:
            try:
                chunk = s.recv(4096)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            buf += chunk
        if not buf.startswith(b"HTTP/1."):
            return None
        return int(buf.split(b" ", 2)[1])
    finally:
        s.close()


class Refusals(mgmtcase.MgmtTestCase):

    def test_no_credentials_is_a_bare_challenge(self):
        r = self.get("/api/whoami", user=None)
        self.assertEqual(r.status, 401)
        self.assertEqual(r.headers.get("www-authenticate"), 'Basic realm="RabbitMQ Management"')
        self.assertEqual(r.body, b"")

    def test_bad_password(self):
        r = self.get("/api/whoami", user=("guest", "wrong"))
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json, {"error": "not_authorized", "reason": "Login failed"})

    def test_unknown_user(self):
        r = self.get("/api/whoami", user=("nobody-%d" % time.monotonic_ns(), "x"))
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json["reason"], "Login failed")

    def test_garbage_authorization(self):
        for h in ("Basic", "Basic !!!!", "Basic " + base64.b64encode(b"nocolon").decode(),
                  "Bearer abc", "Basic " + "A" * 5000):
            r = self.get("/api/whoami", user=None, headers={"authorization": h})
            # RabbitMQ answers a malformed Basic header with a bare 400;
            # Warren refuses it as a failed login (401, JSON reason).
            self.assertIn(r.status, (400, 401) if self.external else (401,), h)

    def test_unknown_path_is_404_before_login(self):
        for user in (None, ("guest", "wrong"), ("guest", "guest")):
            r = self.get("/api/no-such-thing", user=user)
            self.assertEqual(r.status, 404, user)
            self.assertEqual(r.json, {"error": "Object Not Found", "reason": "Not Found"})
        r = self.get("/", user=None)
        if not self.external:
            self.assertEqual(r.status, 404)

    def test_wrong_method_is_405_with_allow(self):
        r = self.api("DELETE", "/api/whoami", user=None)
        self.assertEqual(r.status, 405)
        self.assertEqual(r.headers.get("allow"), "HEAD, GET, OPTIONS")
        r = self.api("PATCH", "/api/whoami")
        self.assertEqual(r.status, 405)

    def test_options_and_head(self):
        r = self.api("OPTIONS", "/api/whoami", user=None)
        self.assertEqual(r.status, 200)
        self.assertIn("GET", r.headers.get("allow"))
        r = self.api("HEAD", "/api/whoami")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")

    def test_whoami(self):
        self.assertEqual(self.get_ok("/api/whoami"), {"name": "guest", "tags": ["administrator"]})

    def test_percent_encoded_segments(self):
        # A vhost named "/" is %2F; an unknown one is 404 after login.
        r = self.get("/api/whoami/")
        self.assertEqual(r.status, 200)


class Limits(mgmtcase.MgmtTestCase):
    def assertRssGrewLess(self, rss0, kib):
        if not SANITIZERS:
            self.assertLess(self.broker.rss_kib() - rss0, kib)


    def setUp(self):
        if self.external:
            self.skipTest("Warren's limits")

    def amqp_round_trip(self, timeout=15.0):
        """Publish and get one message: AMQP is served."""
        import pika
        deadline = time.monotonic() + timeout
        conn = self.connect(socket_timeout=timeout, blocked_connection_timeout=timeout)
        try:
            ch = conn.channel()
            qn = ch.queue_declare("", exclusive=True).method.queue
            ch.basic_publish("", qn, b"x")
            while time.monotonic() < deadline:
                m, _, body = ch.basic_get(qn, auto_ack=True)
                if m:
                    self.assertEqual(body, b"x")
                    return
            self.fail("no message back in time")
        finally:
            conn.close()
        del pika

    def test_huge_body_is_refused_unread(self):
        rss0 = self.broker.rss_kib()
        s = socket.create_connection((HOST, self.mgmt_port), timeout=15)
        tok = base64.b64encode(b"guest:guest").decode()
        s.sendall(b"PUT /api/queues/%2F/big HTTP/1.1\r\nHost: x\r\nAuthorization: Basic "
                  + tok.encode() + b"\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100000000\r\n\r\n")
        sent = 0
        chunk = b"{" + b" " * (1 << 20)
        status = None
        try:
            while sent < 100_000_000:
                s.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass  # the server stopped reading and closed: what we want
        s.settimeout(5)
        try:
            data = s.recv(4096)
            if data.startswith(b"HTTP/1."):
                status = int(data.split(b" ", 2)[1])
        except OSError:
            pass
        s.close()
        self.assertIn(status, (None, 413))
        self.assertLess(sent, 100_000_000, "the server read a 100 MB body")
        self.assertTrue(self.broker.alive())
        self.assertRssGrewLess(rss0, 64 * 1024)
        self.amqp_round_trip()

    def test_huge_chunked_body(self):
        rss0 = self.broker.rss_kib()
        s = socket.create_connection((HOST, self.mgmt_port), timeout=15)
        tok = base64.b64encode(b"guest:guest").decode()
        s.sendall(b"PUT /api/queues/%2F/big HTTP/1.1\r\nHost: x\r\nAuthorization: Basic "
                  + tok.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n")
        piece = b" " * (1 << 20)
        sent = 0
        try:
            while sent < 100_000_000:
                s.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
                sent += len(piece)
        except OSError:
            pass
        s.close()
        self.assertLess(sent, 100_000_000, "the server read a 100 MB chunked body")
        self.assertTrue(self.broker.alive())
        self.assertRssGrewLess(rss0, 64 * 1024)
        self.amqp_round_trip()

    def test_long_path(self):
        path = b"/api/queues/%2F/" + b"q" * 100_000
        status = raw_request(self.mgmt_port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(status is None or 400 <= status < 500, status)
        self.assertTrue(self.broker.alive())
        self.amqp_round_trip()

    def test_garbage_requests(self):
        for junk in (b"\x00\x01\x02\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                     b"GET /api/whoami HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                     b"BREW /api/whoami HTTP/1.1\r\nHost: x\r\n\r\n",
                     b"GET /api/%zz%00/x HTTP/1.1\r\nHost: x\r\n\r\n"):
            status = raw_request(self.mgmt_port, junk, read_timeout=5)
            self.assertTrue(status is None or 400 <= status < 600, (junk, status))
        self.assertTrue(self.broker.alive())
        self.assertEqual(self.get("/api/whoami").status, 200)

    def test_half_request_does_not_stall_amqp(self):
        s = socket.create_connection((HOST, self.mgmt_port))
        s.sendall(b"GET /api/whoami HTTP/1.1\r\nHost: x\r\nAuthor")
        try:
            t0 = time.monotonic()
            self.amqp_round_trip()
            self.assertEqual(self.get("/api/whoami").status, 200)
            self.assertLess(time.monotonic() - t0, 10)
        finally:
            s.close()

    def test_thousand_idle_connections(self):
        rss0 = self.broker.rss_kib()
        socks = []
        try:
            for i in range(1000):
                s = socket.create_connection((HOST, self.mgmt_port))
                if i % 2:
                    s.sendall(b"GET /api/whoami HTTP/1.1\r\n")  # half a request
                socks.append(s)
            self.amqp_round_trip()
            self.assertEqual(self.get("/api/whoami").status, 200)
            grew = self.broker.rss_kib() - rss0
            if not SANITIZERS:
                self.assertLess(grew, 64 * 1024,
                                "1,000 idle HTTP connections took %d KiB" % grew)
        finally:
            for s in socks:
                s.close()
        self.assertTrue(self.broker.alive())
        self.assertEqual(self.get("/api/whoami").status, 200)


class LoopbackUsers(unittest.TestCase):
    """guest (in loopback_users by default) may log in from loopback only."""

    def test_guest_refused_from_another_address(self):
        import os
        if os.environ.get("WARREN_TEST_PORT"):
            self.skipTest("needs a broker of our own")
        addr = harness.non_loopback_address()
        if not addr:
            self.skipTest("this machine has no non-loopback address")
        port = harness.free_port()
        with harness.broker(("--mgmt-port", str(port), "--bind", "0.0.0.0")) as b:
            import tempfile
            del tempfile
            harness.wait_port(port, b.proc)
            # management.tcp.ip is 127.0.0.1 by default: not reachable on addr.
            with self.assertRaises(OSError):
                socket.create_connection((addr, port), timeout=2).close()
        conf_dir = __import__("tempfile").mkdtemp(prefix="warren-mgmt-")
        conf = conf_dir + "/warren.conf"
        with open(conf, "w") as f:
            f.write("management.tcp.ip = 0.0.0.0\nmanagement.tcp.port = %d\n" % port)
        with harness.broker(("-c", conf, "--mgmt-port", str(port))) as b:
            harness.wait_port(port, b.proc)
            tok = base64.b64encode(b"guest:guest")
            req = (b"GET /api/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + tok
                   + b"\r\nConnection: close\r\n\r\n")
            s = socket.create_connection((addr, port), timeout=10)
            s.sendall(req)
            data = b""
            while True:
                c = s.recv(65536)
                if not c:
                    break
                data += c
            s.close()
            self.assertTrue(data.startswith(b"HTTP/1.1 401"), data[:200])
            self.assertIn(b"User can only log in via localhost", data)
            self.assertEqual(raw_request(port, req), 200)


if __name__ == "__main__":
    harness.main()
