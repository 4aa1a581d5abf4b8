"""Management API tests: a broker with its HTTP listener on a free port, and
a small client over urllib (the standard library: no third-party HTTP
client is needed, and none of the broker's code is used).

Against RabbitMQ: WARREN_TEST_PORT=5690 WARREN_TEST_MGMT_PORT=15690 runs the
same tests against a node with the management plugin
(RMQ_MGMT_PORT=15690 ../shared/tools/rabbitmq-local.sh start 5690).
"""
import base64
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request

import harness

HOST = harness.HOST


def q(name):
    """A path segment: every reserved character percent-encoded ("/" too)."""
    return urllib.parse.quote(name, safe="")


class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def json(self):
        return json.loads(self.body) if self.body else None

    def __repr__(self):
        return "<%d %r>" % (self.status, self.body[:300])


class MgmtTestCase(harness.BrokerTestCase):
    """One broker per class with the management API on .mgmt_port."""
    broker_args = ()
    mgmt_port = None

    @classmethod
    def setUpClass(cls):
        ext = os.environ.get("WARREN_TEST_MGMT_PORT")
        if os.environ.get("WARREN_TEST_PORT"):
            cls.mgmt_port = int(ext or 15672)
            super().setUpClass()
            return
        cls.mgmt_port = harness.free_port()
        saved = cls.broker_args
        cls.broker_args = ("--mgmt-port", str(cls.mgmt_port)) + tuple(saved)
        try:
            super().setUpClass()
        finally:
            cls.broker_args = saved
        harness.wait_port(cls.mgmt_port, cls.broker.proc)

    def api(self, method, path, body=None, user=("guest", "guest"), headers=None,
            raw_body=None, timeout=30):
        """One request; returns a Reply whatever the status."""
        url = "http://%s:%d%s" % (HOST, self.mgmt_port, path)
        data = raw_body
        h = dict(headers or {})
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("content-type", "application/json")
        if user is not None:
            tok = base64.b64encode(("%s:%s" % user).encode()).decode()
            h["authorization"] = "Basic " + tok
        req = urllib.request.Request(url, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return Reply(r.status, r.headers, r.read())
        except urllib.error.HTTPError as e:
            return Reply(e.code, e.headers, e.read())

    def get(self, path, **kw):
        return self.api("GET", path, **kw)

    def get_ok(self, path, **kw):
        r = self.get(path, **kw)
        self.assertEqual(r.status, 200, r)
        return r.json

    def put(self, path, body=None, **kw):
        return self.api("PUT", path, body if body is not None else {}, **kw)

    def post(self, path, body=None, **kw):
        return self.api("POST", path, body if body is not None else {}, **kw)

    def delete(self, path, **kw):
        return self.api("DELETE", path, **kw)

    def add_user(self, name, password, tags="", vhost_perms=None):
        """Create a user (and its permissions on vhost "/" when given as a
        (configure, write, read) tuple); removed at the end of the test."""
        r = self.put("/api/users/%s" % q(name), {"password": password, "tags": tags})
        self.assertIn(r.status, (201, 204), r)
        self.addCleanup(self.delete, "/api/users/%s" % q(name))
        if vhost_perms is not None:
            c, w, rd = vhost_perms
            r = self.put("/api/permissions/%%2F/%s" % q(name),
                         {"configure": c, "write": w, "read": rd})
            self.assertIn(r.status, (201, 204), r)

    def wait_for(self, fn, timeout=15.0, what="condition"):
        """Poll fn() until it returns a true value; return it."""
        deadline = time.monotonic() + timeout
        while True:
            v = fn()
            if v:
                return v
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for " + what)
            time.sleep(0.05)
