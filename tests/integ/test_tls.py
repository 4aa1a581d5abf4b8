"""test_tls - AMQP over TLS (listeners.ssl.*, ssl_options.*), end to end.

Certificates are made at run time with the openssl command line
(tlscerts.py). Clients: pika with pika.SSLOptions, `openssl s_client`, and
raw sockets for the bad cases. What is checked:

- messages of every size round the record boundaries (16 KiB) cross
  intact, many small ones in order;
- TLS 1.2 and 1.3 handshakes succeed; TLS 1.0 and 1.1 are refused by the
  broker even when the client allows them (-cipher DEFAULT@SECLEVEL=0);
- verify_peer + fail_if_no_peer_cert: a client certificate from our CA
  logs in, none or one from another CA is refused;
- bad input, each a clean refusal with exactly one log line (not debug)
  while the broker carries on: a plain AMQP client on the TLS port, a TLS
  client on the plain port, a handshake that stops halfway (cut by
  ssl_handshake_timeout), and after hundreds of them the broker's
  descriptors come back to where they were and its RSS does not grow;
- EXTERNAL logins by certificate (ssl_cert_login_from = common_name,
  distinguished_name in RabbitMQ's form) and their refusals;
- SIGHUP: new connections get a new certificate, open ones carry on, a bad
  new file keeps the old one and the log says why.
"""
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import rawamqp  # noqa: E402
from tlscerts import Certs  # noqa: E402

import pika  # noqa: E402

HOST = harness.HOST
CERTS = Certs()
NOBODY = CERTS.make_client("nobody", "/O=Warren Test/CN=nobody")
# The client certificate's subject in RabbitMQ's form, as OpenSSL writes it.
CLIENT_DN = subprocess.run(["openssl", "x509", "-in", CERTS.client, "-noout", "-subject",
                            "-nameopt", "RFC2253"], check=True, capture_output=True,
                           text=True).stdout.strip()[len("subject="):]


def definitions(path, *users):
    """A load_definitions file: guest (password guest, administrator) and
    passwordless users, all with every permission on "/"."""
    import json
    names = ["guest"] + list(users)
    d = {"vhosts": [{"name": "/"}],
         "users": [{"name": "guest", "password": "guest", "tags": "administrator"}] +
                  [{"name": u, "password_hash": "", "tags": ""} for u in users],
         "permissions": [{"user": u, "vhost": "/", "configure": ".*", "write": ".*",
                          "read": ".*"} for u in names]}
    with open(path, "w") as f:
        json.dump(d, f)
    return path
SANITIZERS = bool(os.environ.get("WARREN_SANITIZERS"))


wait_for = harness.wait_for


def client_ctx(cert=None, key=None, ca=None):
    ctx = ssl.create_default_context(cafile=ca or CERTS.ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def tls_params(port, cert=None, key=None, credentials=None):
    kw = {}
    if credentials is not None:
        kw["credentials"] = credentials
    return pika.ConnectionParameters(host=HOST, port=port, heartbeat=0,
                                     ssl_options=pika.SSLOptions(client_ctx(cert, key),
                                                                 "localhost"),
                                     blocked_connection_timeout=30, socket_timeout=10, **kw)


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class TLSCase(unittest.TestCase):
    """One broker per class with the TLS listener on a free port."""
    conf_lines = ()
    extra_args = ()
    verify_peer = False
    fail_if_no_peer_cert = False

    @classmethod
    def setUpClass(cls):
        cls.tls_port = harness.free_port()
        conf = CERTS.conf("listeners.ssl.default = %s:%d" % (HOST, cls.tls_port),
                          "ssl_handshake_timeout = 1000", *cls.conf_lines,
                          verify_peer=cls.verify_peer,
                          fail_if_no_peer_cert=cls.fail_if_no_peer_cert)
        cls.conf_path = conf
        cls._cm = harness.broker(("-c", conf) + tuple(cls.extra_args))
        cls.broker = cls._cm.__enter__()
        if cls.broker.external:
            raise unittest.SkipTest("TLS tests start their own warrend")

    @classmethod
    def tearDownClass(cls):
        cls._cm.__exit__(None, None, None)

    def log_lines(self, port=None):
        """The log's lines, or those about connections to `port`."""
        lines = self.broker.log_text().splitlines()
        if port is None:
            return lines
        tag = "-> %s:%d]" % (HOST, port)
        return [line for line in lines if tag in line]

    def loud_lines(self, port):
        """Lines above debug about connections to `port`."""
        return [line for line in self.log_lines(port) if " debug " not in line]

    def expect_one_line(self, before, port, text, timeout=10):
        """Exactly one new non-debug line for `port` since `before`, holding text."""
        def new():
            lines = self.loud_lines(port)[before:]
            return lines if lines else None
        lines = wait_for(new, timeout, "a log line with %r" % text)
        time.sleep(0.3)  # anything else it would log comes at once
        lines = self.loud_lines(port)[before:]
        self.assertEqual(len(lines), 1, lines)
        self.assertIn(text, lines[0])
        return lines[0]

    def tls_peer(self, port=None, cert=None, key=None):
        raw = socket.create_connection((HOST, port or self.tls_port), timeout=10)
        p = rawamqp.Peer.__new__(rawamqp.Peer)
        p.s = client_ctx(cert, key).wrap_socket(raw, server_hostname="localhost")
        p.buf = b""
        return p

    def still_serves(self):
        c = pika.BlockingConnection(tls_params(self.tls_port, CERTS.client, CERTS.client_key))
        ch = c.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.basic_publish("", q, b"alive")
        m, _, body = ch.basic_get(q, auto_ack=True)
        self.assertEqual(body, b"alive")
        c.close()


class PlainTLS(TLSCase):
    """verify_none: no client certificate asked for."""
    conf_lines = ("auth_mechanisms.1 = PLAIN", "auth_mechanisms.2 = EXTERNAL")

    def test_round_trip_sizes(self):
        c = pika.BlockingConnection(tls_params(self.tls_port))
        ch = c.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        sizes = [0, 1, 100, 16383, 16384, 16385, 65535, 65536, 65537, 300000, 2 * 1024 * 1024]
        for n in sizes:
            ch.basic_publish("", q, bytes((i * 7 + n) & 0xFF for i in range(n)))
        for n in sizes:
            m, _, body = ch.basic_get(q, auto_ack=True)
            self.assertIsNotNone(m)
            self.assertEqual(len(body), n)
            self.assertEqual(body, bytes((i * 7 + n) & 0xFF for i in range(n)))
        # many small messages in one go: batched writes, pending TLS records
        for i in range(5000):
            ch.basic_publish("", q, b"%05d" % i)
        got = []
        for m, _, body in ch.consume(q, auto_ack=True, inactivity_timeout=10):
            self.assertIsNotNone(m, "stalled after %d messages" % len(got))
            got.append(body)
            if len(got) == 5000:
                break
        self.assertEqual(got, [b"%05d" % i for i in range(5000)])
        c.close()

    def test_external_needs_verify_peer(self):
        """EXTERNAL with verify_none: offered, refused (RabbitMQ: "TLS
        configuration is unsafe")."""
        p = self.tls_peer(cert=CERTS.client, key=CERTS.client_key)
        self.assertEqual(p.start()["mechanisms"], ["PLAIN", "EXTERNAL"])
        before = len(self.loud_lines(self.tls_port))
        r = p.login("EXTERNAL")
        self.assertEqual(r[1:3], (10, 50))  # connection.close
        self.assertEqual(rawamqp.parse_close(r[3])[0], 403)
        self.expect_one_line(before, self.tls_port, "TLS configuration is unsafe")

    def test_records_held_by_tls(self):
        """A burst the broker reads only in part within one callback's
        budget (64 KiB): the rest may sit decrypted or read ahead inside
        OpenSSL, where the socket will not announce it again. It must be
        served without the client sending anything more."""
        raw = socket.create_connection((HOST, self.tls_port), timeout=10)
        p = rawamqp.Peer.__new__(rawamqp.Peer)
        p.s = client_ctx().wrap_socket(raw, server_hostname="localhost")
        p.buf = b""
        p.handshake()
        p.open_channel(1)
        p.send(rawamqp.queue_declare(1, "tls-pending", exclusive=True))
        self.assertEqual(p.recv_method()[1:3], (50, 11))
        get = rawamqp.basic_get(1, "tls-pending")
        overhead = len(rawamqp.publish(1, "", "tls-pending", b"")) + len(get)
        pid = self.broker.pid
        for tail in (1, 20, 40, 100, 400, 1000, 5000, 16000):
            body = b"p" * (65536 + tail - overhead)
            # The broker is stopped while the burst goes out, so that all of
            # it waits in its socket when it reads.
            # Small records (1,000 bytes): the budget ends inside one.
            os.kill(pid, signal.SIGSTOP)
            try:
                blob = rawamqp.publish(1, "", "tls-pending", body) + get
                for i in range(0, len(blob), 1000):
                    p.s.sendall(blob[i:i + 1000])
                time.sleep(0.05)
            finally:
                os.kill(pid, signal.SIGCONT)
            r = rawamqp._peer_recv_frame_within(p, 3)
            self.assertNotEqual(r, "timeout", "no reply to a burst of 64 KiB + %d" % tail)
            self.assertEqual(r[0], 1)
            self.assertEqual(r[2][:4], b"\x00\x3c\x00\x47")  # basic.get-ok
            size = 0
            while size < len(body):
                f = rawamqp._peer_recv_frame_within(p, 3)
                self.assertNotEqual(f, "timeout")
                if f[0] == 3:
                    size += len(f[2])
            self.assertEqual(size, len(body))
        p.s.close()

    def s_client(self, *args, data=b"AMQP\x00\x00\x09\x01", want=b"en_US\xce"):
        """Run s_client; return (its output, True if `want` came back)."""
        p = subprocess.Popen(["openssl", "s_client", "-connect", "%s:%d" % (HOST, self.tls_port),
                              "-servername", "localhost", "-CAfile", CERTS.ca, "-verify_return_error",
                              "-ign_eof", *args],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        os.set_blocking(p.stdout.fileno(), False)
        out = b""
        try:
            p.stdin.write(data)
            p.stdin.flush()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and want not in out and p.poll() is None:
                try:
                    chunk = p.stdout.read()
                except BlockingIOError:
                    chunk = None
                if chunk:
                    out += chunk
                else:
                    time.sleep(0.02)
            try:
                out += p.stdout.read() or b""
            except BlockingIOError:
                pass
        finally:
            if p.poll() is None:
                p.kill()
            p.wait()
            p.stdin.close()
            p.stdout.close()
        return out, want in out

    def test_s_client_versions(self):
        def closed():
            return [x for x in self.loud_lines(self.tls_port) if "closed the socket" in x]
        closed_before = len(closed())
        for flag, name in (("-tls1_2", b"TLSv1.2"), ("-tls1_3", b"TLSv1.3")):
            out, ok = self.s_client(flag)
            self.assertTrue(ok, "%s: no connection.start through TLS: %r" % (flag, out[-800:]))
            self.assertIn(b"New, " + name + b", Cipher is ", out)
        # Each of those logs its close; wait for both lines so that a late
        # one is not counted as the refused handshake's below.
        wait_for(lambda: len(closed()) >= closed_before + 2, 10, "the two close lines")
        for flag in ("-tls1", "-tls1_1"):
            before = len(self.loud_lines(self.tls_port))
            out, ok = self.s_client(flag, "-cipher", "DEFAULT@SECLEVEL=0")
            self.assertFalse(ok, flag)
            self.assertNotIn(b"Cipher is TLS", out)
            # refused by the broker (it says so), not by the client's own policy
            self.expect_one_line(before, self.tls_port, "TLS handshake failed: unsupported protocol")
        self.still_serves()

    def test_plain_client_on_tls_port(self):
        before = len(self.loud_lines(self.tls_port))
        s = socket.create_connection((HOST, self.tls_port), timeout=10)
        s.sendall(b"AMQP\x00\x00\x09\x01")
        t0 = time.monotonic()
        data = b""
        while True:  # the broker closes (an alert may come first)
            d = s.recv(4096)
            if not d:
                break
            data += d
        s.close()
        self.assertLess(time.monotonic() - t0, 5)
        self.assertNotIn(b"AMQP", data)
        self.expect_one_line(before, self.tls_port, "TLS handshake failed")
        self.still_serves()

    def test_tls_client_on_plain_port(self):
        port = self.broker.port
        before = len(self.loud_lines(port))
        with self.assertRaises(Exception):
            pika.BlockingConnection(tls_params(port))
        line = self.expect_one_line(before, port, "bad protocol header")
        self.assertIn("TLS handshake on a plain AMQP port", line)
        self.still_serves()

    def client_hello(self):
        """The bytes of a real ClientHello (python's ssl on memory BIOs)."""
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = client_ctx().wrap_bio(inc, out, server_hostname="localhost")
        with self.assertRaises(ssl.SSLWantReadError):
            obj.do_handshake()
        return out.read()

    def test_handshake_stops_halfway(self):
        hello = self.client_hello()
        for part in (hello[:len(hello) // 2], hello, b""):
            before = len(self.loud_lines(self.tls_port))
            s = socket.create_connection((HOST, self.tls_port), timeout=10)
            s.sendall(part)
            t0 = time.monotonic()
            while s.recv(4096):
                pass
            elapsed = time.monotonic() - t0
            s.close()
            # ssl_handshake_timeout = 1000 ms (checked every 250 ms)
            self.assertGreater(elapsed, 0.8)
            self.assertLess(elapsed, 5)
            self.expect_one_line(before, self.tls_port, "TLS handshake timed out")
        self.still_serves()

    def test_no_memory_kept(self):
        """Hundreds of bad connections of every kind: descriptors come back,
        RSS stays flat."""
        pid = self.broker.pid
        hello = self.client_hello()

        def round_of_bad(n):
            for i in range(n):
                s = socket.create_connection((HOST, self.tls_port), timeout=10)
                s.sendall(b"AMQP\x00\x00\x09\x01")
                while s.recv(4096):
                    pass
                s.close()
                s = socket.create_connection((HOST, self.broker.port), timeout=10)
                s.sendall(hello)
                while s.recv(4096):
                    pass
                s.close()
                s = socket.create_connection((HOST, self.tls_port), timeout=10)
                s.sendall(hello[:40])
                s.close()  # gone halfway through
                try:  # a full handshake, then gone without a word
                    raw = socket.create_connection((HOST, self.tls_port), timeout=10)
                    t = client_ctx().wrap_socket(raw, server_hostname="localhost")
                    raw.close()
                    t.close()
                except (OSError, ssl.SSLError):
                    pass

        round_of_bad(20)
        wait_for(lambda: fd_count(pid) <= self.base_fds + 2, 10, "descriptors back")
        rss0 = self.broker.rss_kib()
        round_of_bad(150)
        wait_for(lambda: fd_count(pid) <= self.base_fds, 15,
                 "descriptors back to %d" % self.base_fds)
        rss1 = self.broker.rss_kib()
        if not SANITIZERS:
            self.assertLess(rss1 - rss0, 2048, "RSS grew from %d to %d KiB" % (rss0, rss1))
        self.still_serves()

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.base_fds = fd_count(cls.broker.pid)


class VerifyPeer(TLSCase):
    """verify_peer + fail_if_no_peer_cert."""
    verify_peer = True
    fail_if_no_peer_cert = True

    def test_client_certificate_from_our_ca(self):
        self.still_serves()

    def test_no_certificate_refused(self):
        before = len(self.loud_lines(self.tls_port))
        with self.assertRaises(Exception):
            pika.BlockingConnection(tls_params(self.tls_port))
        self.expect_one_line(before, self.tls_port, "TLS handshake failed")
        self.still_serves()

    def test_untrusted_certificate_refused(self):
        before = len(self.loud_lines(self.tls_port))
        with self.assertRaises(Exception):
            pika.BlockingConnection(tls_params(self.tls_port, CERTS.evil_client,
                                               CERTS.evil_client_key))
        line = self.expect_one_line(before, self.tls_port, "TLS handshake failed")
        self.assertIn("certificate verify failed", line)
        self.still_serves()


def _dates(path):
    """A certificate's validity in RabbitMQ's form, from `openssl x509 -dates`."""
    import datetime
    out = subprocess.run(["openssl", "x509", "-in", path, "-noout", "-dates"], check=True,
                         capture_output=True, text=True).stdout
    d = dict(line.split("=", 1) for line in out.strip().splitlines())

    def iso(v):
        t = datetime.datetime.strptime(v.replace(" GMT", ""), "%b %d %H:%M:%S %Y")
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")
    return "%s - %s" % (iso(d["notBefore"]), iso(d["notAfter"]))


class ConnectionFacts(TLSCase):
    """What /api/connections says of a connection's TLS: RabbitMQ 3.10's
    fields and values (ssl, ssl_protocol, ssl_key_exchange, ssl_cipher,
    ssl_hash, peer_cert_subject, peer_cert_issuer, peer_cert_validity;
    null where a connection has none), as RabbitMQ showed them for the
    same clients and certificates."""
    verify_peer = True  # a certificate is asked for, not required

    @classmethod
    def setUpClass(cls):
        cls.mgmt_port = harness.free_port()
        cls.extra_args = ("--mgmt-port", str(cls.mgmt_port))
        super().setUpClass()
        harness.wait_port(cls.mgmt_port, cls.broker.proc)

    def conn_named(self, name):
        import base64
        import json
        import urllib.request
        req = urllib.request.Request(
            "http://%s:%d/api/connections" % (HOST, self.mgmt_port),
            headers={"authorization": "Basic " + base64.b64encode(b"guest:guest").decode()})
        with urllib.request.urlopen(req, timeout=10) as r:
            for c in json.load(r):
                if c.get("client_properties", {}).get("connection_name") == name:
                    return c
        return None

    def open(self, port, name, ctx=None):
        kw = {"ssl_options": pika.SSLOptions(ctx, "localhost")} if ctx else {}
        c = pika.BlockingConnection(pika.ConnectionParameters(
            host=HOST, port=port, heartbeat=0, client_properties={"connection_name": name},
            **kw))
        self.addCleanup(c.close)
        return wait_for(lambda: self.conn_named(name), 10, "connection %s listed" % name)

    def test_tls13_with_a_client_certificate(self):
        c = self.open(self.tls_port, "facts-13", client_ctx(CERTS.client, CERTS.client_key))
        self.assertIs(c["ssl"], True)
        self.assertEqual(c["ssl_protocol"], "tlsv1.3")
        self.assertEqual(c["ssl_key_exchange"], "any")
        self.assertEqual(c["ssl_cipher"], "aes_256_gcm")
        self.assertEqual(c["ssl_hash"], "aead")
        self.assertEqual(c["peer_cert_subject"], CLIENT_DN)
        self.assertEqual(c["peer_cert_subject"], "CN=tls-client,OU=TLS\\, tests,O=Warren Test,C=GB")
        self.assertEqual(c["peer_cert_issuer"], "CN=Warren Test CA")
        self.assertEqual(c["peer_cert_validity"], _dates(CERTS.client))

    def test_tls12_without_a_certificate(self):
        ctx = client_ctx()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers("ECDHE-RSA-AES128-SHA256")
        c = self.open(self.tls_port, "facts-12", ctx)
        self.assertEqual((c["ssl"], c["ssl_protocol"], c["ssl_key_exchange"], c["ssl_cipher"],
                          c["ssl_hash"]), (True, "tlsv1.2", "ecdhe_rsa", "aes_128_cbc", "sha256"))
        for k in ("peer_cert_subject", "peer_cert_issuer", "peer_cert_validity"):
            self.assertIn(k, c)
            self.assertIsNone(c[k], k)

    def test_plain_connection(self):
        c = self.open(self.broker.port, "facts-plain")
        self.assertIs(c["ssl"], False)
        for k in ("ssl_protocol", "ssl_key_exchange", "ssl_cipher", "ssl_hash",
                  "peer_cert_subject", "peer_cert_issuer", "peer_cert_validity"):
            self.assertIn(k, c)
            self.assertIsNone(c[k], k)


class External(TLSCase):
    """auth_mechanisms.1 = EXTERNAL, the user the certificate's CN."""
    verify_peer = True
    login_from = "common_name"
    user = "tls-client"

    @classmethod
    def setUpClass(cls):
        defs = definitions(os.path.join(CERTS.dir, "defs-%s.json" % cls.__name__), cls.user)
        cls.conf_lines = ("auth_mechanisms.1 = EXTERNAL", "auth_mechanisms.2 = PLAIN",
                          "ssl_cert_login_from = " + cls.login_from, "load_definitions = " + defs)
        super().setUpClass()

    def test_login_by_certificate(self):
        c = pika.BlockingConnection(tls_params(self.tls_port, CERTS.client, CERTS.client_key,
                                               pika.credentials.ExternalCredentials()))
        ch = c.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.basic_publish("", q, b"by certificate")
        self.assertEqual(ch.basic_get(q, auto_ack=True)[2], b"by certificate")
        c.close()
        wait_for(lambda: any("user '%s' authenticated" % self.user in line
                             for line in self.log_lines(self.tls_port)), 5, "the login's line")

    def test_offered_on_tls_only(self):
        p = self.tls_peer(cert=CERTS.client, key=CERTS.client_key)
        self.assertEqual(p.start()["mechanisms"], ["EXTERNAL", "PLAIN"])
        p.s.close()
        p = rawamqp.Peer(HOST, self.broker.port)
        self.assertEqual(p.start()["mechanisms"], ["PLAIN"])
        # asked for anyway on the plain port: RabbitMQ's 503
        r = p.login("EXTERNAL")
        self.assertEqual(r[1:3], (10, 50))
        code, text = rawamqp.parse_close(r[3])[:2]
        self.assertEqual(code, 503)
        self.assertEqual(text, "COMMAND_INVALID - invalid authentication mechanism 'EXTERNAL'")
        p = rawamqp.Peer(HOST, self.broker.port)
        p.start()
        r = p.login("CRAM-MD5")
        self.assertEqual(rawamqp.parse_close(r[3])[:2],
                         (503, "COMMAND_INVALID - unknown authentication mechanism 'CRAM-MD5'"))

    def test_no_certificate(self):
        before = len(self.loud_lines(self.tls_port))
        with self.assertRaises(pika.exceptions.ProbableAuthenticationError):
            pika.BlockingConnection(tls_params(self.tls_port,
                                               credentials=pika.credentials.ExternalCredentials()))
        self.expect_one_line(before, self.tls_port,
                             "connection peer presented no TLS (x.509) certificate")

    def test_no_such_user(self):
        before = len(self.loud_lines(self.tls_port))
        with self.assertRaises(pika.exceptions.ProbableAuthenticationError):
            pika.BlockingConnection(tls_params(self.tls_port, *NOBODY,
                                               pika.credentials.ExternalCredentials()))
        self.expect_one_line(before, self.tls_port, "no such user")

    def test_password_still_works(self):
        c = pika.BlockingConnection(tls_params(self.tls_port))  # PLAIN guest
        c.close()


class ExternalDN(External):
    """ssl_cert_login_from = distinguished_name: RabbitMQ's form of the subject."""
    login_from = "distinguished_name"
    user = CLIENT_DN

    def test_dn_form(self):
        self.assertEqual(CLIENT_DN, "CN=tls-client,OU=TLS\\, tests,O=Warren Test,C=GB")

    test_no_such_user = None


class StartChecks(unittest.TestCase):
    """A certificate or key that does not load stops the start with one line,
    and --check-config says so too."""

    def run_warrend(self, conf_path, *extra):
        d = tempfile.mkdtemp(prefix="warren-tls-start-")
        try:
            return subprocess.run([harness.find_warrend(), "-c", conf_path, "--port",
                                   str(harness.free_port()), "--bind", HOST, "--mgmt-port", "0",
                                   "--data-dir", os.path.join(d, "data"), *extra],
                                  capture_output=True, text=True, timeout=30,
                                  stdin=subprocess.DEVNULL)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_bad_material(self):
        junk = os.path.join(CERTS.dir, "junk.pem")
        with open(junk, "w") as f:
            f.write("not a certificate\n")
        port = "listeners.ssl.default = %s:%d" % (HOST, harness.free_port())
        cases = [
            (CERTS.conf(port, server=(CERTS.server, CERTS.client_key)),
             "ssl_options.keyfile %s is not the key of ssl_options.certfile %s"
             % (CERTS.client_key, CERTS.server)),
            (CERTS.conf(port, server=(junk, CERTS.server_key)),
             "ssl_options.certfile %s: cannot load the certificate: no start line" % junk),
            (CERTS.conf(port, server=(CERTS.server + ".missing", CERTS.server_key)),
             "ssl_options.certfile %s.missing: No such file or directory" % CERTS.server),
            (CERTS.conf(port, "ssl_options.ciphers.1 = NO-SUCH-CIPHER"),
             "ssl_options.ciphers.1: OpenSSL does not know the cipher suite 'NO-SUCH-CIPHER'"),
            (CERTS.conf(port, "ssl_options.verify = verify_peer", "ssl_options.cacertfile = " + junk),
             "ssl_options.cacertfile %s: cannot load the CA certificates" % junk),
        ]
        for conf, want in cases:
            p = self.run_warrend(conf)
            self.assertEqual(p.returncode, 1, p.stderr)
            lines = [x for x in p.stderr.splitlines() if x.startswith("warrend:")]
            self.assertEqual(len(lines), 1, p.stderr)
            self.assertIn(want, lines[0])
            p = self.run_warrend(conf, "--check-config")
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.assertIn(want, p.stderr)
        p = self.run_warrend(CERTS.conf(port), "--check-config")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


def curl(*args):
    p = subprocess.run(["curl", "-sS", "--max-time", "10", *args], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


class ManagementHTTPS(TLSCase):
    """management.ssl.*: the management API over HTTPS."""

    @classmethod
    def setUpClass(cls):
        cls.https_port = harness.free_port()
        cls.conf_lines = ("management.ssl.port = %d" % cls.https_port,
                          "management.ssl.certfile = " + CERTS.server,
                          "management.ssl.keyfile = " + CERTS.server_key)
        super().setUpClass()

    def url(self, path="/api/overview"):
        return "https://localhost:%d%s" % (self.https_port, path)

    def test_curl_with_our_ca(self):
        rc, out, err = curl("--cacert", CERTS.ca, "-u", "guest:guest", self.url())
        self.assertEqual(rc, 0, err)
        import json
        o = json.loads(out)
        ctx = [x for x in o["contexts"] if x.get("port") == str(self.https_port)]
        self.assertEqual(len(ctx), 1, o["contexts"])
        self.assertEqual(ctx[0]["ssl"], "true")
        self.assertIn("amqp/ssl", [x["protocol"] for x in o["listeners"]])
        rc, out, err = curl("--cacert", CERTS.ca, "-o", "/dev/null", "-w", "%{http_code}",
                            self.url("/api/whoami"))
        self.assertEqual(out, "401")  # the same API: no login, no answer

    def test_many_requests(self):
        """A request that arrives with the client's TLS Finished is answered
        (it stalled when OpenSSL read it ahead inside libevent's bufferevent)."""
        for i in range(40):
            rc, out, err = curl("--tlsv1.3", "--cacert", CERTS.ca, "-u", "guest:guest",
                                "--max-time", "3", self.url("/api/whoami"))
            self.assertEqual(rc, 0, "request %d: %s" % (i, err))

    def test_curl_refuses_unknown_ca(self):
        rc, out, err = curl("-u", "guest:guest", self.url())
        self.assertNotEqual(rc, 0)
        self.assertIn("certificate", err)

    def test_plain_http_on_https_port(self):
        rc, out, err = curl("-u", "guest:guest", "http://127.0.0.1:%d/api/overview"
                            % self.https_port)
        self.assertNotEqual(rc, 0)
        rc, out, err = curl("--cacert", CERTS.ca, "-u", "guest:guest", self.url())
        self.assertEqual(rc, 0, err)

    def test_tls_versions(self):
        for flag in ("--tlsv1.2", "--tlsv1.3"):
            rc, out, err = curl(flag, "--cacert", CERTS.ca, "-u", "guest:guest", self.url())
            self.assertEqual(rc, 0, err)
        rc, out, err = curl("--tlsv1.1", "--tls-max", "1.1", "--ciphers", "DEFAULT@SECLEVEL=0",
                            "--cacert", CERTS.ca, self.url())
        self.assertNotEqual(rc, 0)


def served_serial(port):
    """The serial number of the certificate the listener on `port` sends."""
    p = subprocess.run(["openssl", "s_client", "-connect", "%s:%d" % (HOST, port),
                        "-servername", "localhost"], input=b"", capture_output=True, timeout=10)
    pem = p.stdout[p.stdout.index(b"-----BEGIN CERTIFICATE-----"):]
    pem = pem[:pem.index(b"-----END CERTIFICATE-----") + 25]
    q = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=pem, capture_output=True,
                       check=True)
    return q.stdout.strip().decode()


def file_serial(path):
    q = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", path],
                       capture_output=True, check=True)
    return q.stdout.strip().decode()


class Reload(TLSCase):
    """SIGHUP re-reads the certificate, key and CA files of every TLS
    listener (AMQPS and HTTPS management)."""

    @classmethod
    def setUpClass(cls):
        # Files of our own, replaced by the test.
        import shutil
        cls.cert = os.path.join(CERTS.dir, "reload.pem")
        cls.key = os.path.join(CERTS.dir, "reload.key")
        shutil.copy(CERTS.server, cls.cert)
        shutil.copy(CERTS.server_key, cls.key)
        cls.https_port = harness.free_port()
        cls.conf_lines = ("ssl_options.certfile = " + cls.cert,
                          "ssl_options.keyfile = " + cls.key,
                          "management.ssl.port = %d" % cls.https_port,
                          "management.ssl.certfile = " + cls.cert,
                          "management.ssl.keyfile = " + cls.key)
        super().setUpClass()

    def install(self, cert, key):
        for src, dst in ((cert, self.cert), (key, self.key)):
            with open(src, "rb") as f:
                data = f.read()
            with open(dst + ".tmp", "wb") as f:
                f.write(data)
            os.replace(dst + ".tmp", dst)

    def hup_and_wait(self, text, n_before):
        self.broker.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: sum(text in line for line in self.log_lines()) >= n_before + 2, 10,
                 "%r twice (AMQPS and HTTPS)" % text)

    def test_reload(self):
        old = served_serial(self.tls_port)
        self.assertEqual(old, file_serial(CERTS.server))
        # A connection opened before the reload.
        c = pika.BlockingConnection(tls_params(self.tls_port))
        ch = c.channel()
        q = ch.queue_declare("", exclusive=True).method.queue

        cert, key = CERTS.make_server("reload2")
        self.install(cert, key)
        n = sum("certificate reloaded" in line for line in self.log_lines())
        self.hup_and_wait("certificate reloaded", n)
        self.assertEqual(served_serial(self.tls_port), file_serial(cert))
        self.assertEqual(served_serial(self.https_port), file_serial(cert))
        ch.basic_publish("", q, b"after reload")  # the old connection carries on
        self.assertEqual(ch.basic_get(q, auto_ack=True)[2], b"after reload")
        self.still_serves()

        # A bad new file: the current certificate stays, and the log says why.
        with open(self.cert, "w") as f:
            f.write("not a certificate\n")
        n = sum("keeping the certificate in use" in line for line in self.log_lines())
        self.hup_and_wait("keeping the certificate in use", n)
        line = [x for x in self.log_lines() if "keeping the certificate in use" in x][-1]
        self.assertIn("no start line", line)
        self.assertEqual(served_serial(self.tls_port), file_serial(cert))
        ch.basic_publish("", q, b"still")
        self.assertEqual(ch.basic_get(q, auto_ack=True)[2], b"still")
        self.still_serves()
        # A key that is not the certificate's.
        self.install(CERTS.server, key)
        n = sum("keeping the certificate in use" in line for line in self.log_lines())
        self.hup_and_wait("keeping the certificate in use", n)
        self.assertEqual(served_serial(self.tls_port), file_serial(cert))
        c.close()
        self.assertTrue(self.broker.alive())


if __name__ == "__main__":
    harness.main()
