"""tlscerts - certificates for the TLS tests, made at run time with the
openssl command line in a temporary directory: a CA, a server certificate
for localhost / 127.0.0.1 / ::1 signed by it, a client certificate signed by
it, and an untrusted CA with a client certificate of its own. Nothing is
kept after the test.
"""
import os
import subprocess
import tempfile

_keep = []


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def _ca(d, name, subject):
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-keyout", name + ".key", "-out", name + ".pem", "-subj", subject,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)


def _signed(d, name, subject, ca, ext):
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key",
             "-out", name + ".csr", "-subj", subject, cwd=d)
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write(ext)
    _openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
             "-CAcreateserial", "-days", "2", "-out", name + ".pem",
             "-extfile", name + ".ext", cwd=d)


class Certs:
    """Paths: .ca, .server, .server_key, .client, .client_key, .evil_ca,
    .evil_client, .evil_client_key; .dir; .make_server(name) for another
    server certificate (reload tests)."""

    CLIENT_SUBJECT = "/C=GB/O=Warren Test/OU=TLS, tests/CN=tls-client"

    def __init__(self):
        t = tempfile.TemporaryDirectory(prefix="warren-tls-")
        _keep.append(t)
        d = self.dir = t.name
        _ca(d, "ca", "/CN=Warren Test CA")
        _ca(d, "evilca", "/CN=Untrusted CA")
        self.make_server("server")
        _signed(d, "client", self.CLIENT_SUBJECT, "ca",
                "extendedKeyUsage=clientAuth\n")
        _signed(d, "evilclient", "/CN=tls-client", "evilca", "extendedKeyUsage=clientAuth\n")
        p = lambda n: os.path.join(d, n)
        self.ca, self.evil_ca = p("ca.pem"), p("evilca.pem")
        self.server, self.server_key = p("server.pem"), p("server.key")
        self.client, self.client_key = p("client.pem"), p("client.key")
        self.evil_client, self.evil_client_key = p("evilclient.pem"), p("evilclient.key")

    def make_server(self, name, cn="localhost"):
        _signed(self.dir, name, "/CN=" + cn, "ca",
                "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n"
                "extendedKeyUsage=serverAuth\n")
        return os.path.join(self.dir, name + ".pem"), os.path.join(self.dir, name + ".key")

    def make_client(self, name, subject):
        _signed(self.dir, name, subject, "ca", "extendedKeyUsage=clientAuth\n")
        return os.path.join(self.dir, name + ".pem"), os.path.join(self.dir, name + ".key")

    def conf(self, *lines, verify_peer=False, fail_if_no_peer_cert=False, server=None):
        """A warren.conf with the TLS options; returns its path."""
        cert, key = server or (self.server, self.server_key)
        text = ["ssl_options.certfile = " + cert, "ssl_options.keyfile = " + key,
                "ssl_options.cacertfile = " + self.ca]
        if verify_peer:
            text.append("ssl_options.verify = verify_peer")
        if fail_if_no_peer_cert:
            text.append("ssl_options.fail_if_no_peer_cert = true")
        text += list(lines)
        fd, path = tempfile.mkstemp(prefix="warren-tls-", suffix=".conf", dir=self.dir)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(text) + "\n")
        return path
