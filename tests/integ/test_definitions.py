"""test_definitions.py - definitions in RabbitMQ's JSON format (issue 10):
load_definitions at boot, the first-start default user, and the data
directory's definitions.json as an export.

The fixture fixtures/rabbitmq-3.10.8-definitions.json is a real export of
Debian's rabbitmq-server 3.10.8 (fixtures/README.md says how it was made):
three vhosts, users hashed with SHA-256, SHA-512 and MD5, permissions,
topic permissions, limits, a policy, parameters, durable and transient
queues and exchanges, bindings. Its users must log in to Warren with their
original passwords.

What RabbitMQ 3.10.8 does with such files (checked on a local node, and
held here where Warren behaves the same): transient queues and exchanges in
an export are not imported; a binding whose source or destination is
missing is dropped (RabbitMQ's export leaves internal exchanges out but
keeps bindings to them); a permission naming a missing user or vhost, or a
queue in a missing vhost, fails the import. Where Warren is stricter
(RabbitMQ imports an unknown hashing algorithm and keeps what it imported
before a bad entry), these tests hold Warren to all or nothing.

Warren only: every test starts warrend with its own configuration and data
directory (skipped with WARREN_TEST_PORT).

Run: cd tests/integ && /usr/bin/python3 test_definitions.py
"""
import copy
import decimal
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import pika  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixtures", "rabbitmq-3.10.8-definitions.json")
LEGACY = os.path.join(HERE, "fixtures", "data-84fe4a0")
# The fixture's users, their passwords (set with rabbitmqctl add_user) and a
# vhost each may open.
USERS = [("alice", "alice-secret", "prod"), ("bob", "pässwörd", "prod"),
         ("carol", "carol-pw", "/"), ("dave", "dave-512", "prod"),
         ("erin", "erin-md5", "/"), ("guest", "guest", "/")]


def external():
    return bool(os.environ.get("WARREN_TEST_PORT"))


class Env:
    """A data directory and a configuration file of one test."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="warren-defs-")
        self.data = os.path.join(self.dir, "data")
        os.makedirs(self.data)  # the harness keeps the log there
        self.conf = os.path.join(self.dir, "warren.conf")
        self.brokers = []

    def write_conf(self, **settings):
        with open(self.conf, "w") as f:
            for k, v in settings.items():
                f.write("%s = %s\n" % (k.replace("__", "."), v))

    def file(self, name, text):
        p = os.path.join(self.dir, name)
        with open(p, "w") as f:
            f.write(text if isinstance(text, str) else json.dumps(text))
        return p

    def start(self):
        b = harness._start(["-c", self.conf], data_dir=self.data)
        self.brokers.append(b)
        return b

    def stop(self, b):
        rc = harness._stop(b)
        text = b.log_text()
        assert rc == 0 and "Sanitizer" not in text and "runtime error:" not in text, \
            "warrend exit %s:\n%s" % (rc, text[-5000:])
        self.brokers.remove(b)
        return text

    def fail_start(self):
        """Start warrend expecting it to refuse: (exit status, stderr)."""
        argv = [harness.find_warrend(), "-c", self.conf, "--port", str(harness.free_port()),
                "--bind", "127.0.0.1", "--data-dir", self.data, "--mgmt-port", "0"]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        return p.returncode, p.stderr

    def definitions(self):
        with open(os.path.join(self.data, "definitions.json")) as f:
            return json.load(f)

    def close(self):
        for b in list(self.brokers):
            harness._stop(b)
        if not os.environ.get("WARREN_TEST_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)


def login(b, user, password, vhost="/"):
    """"ok", or the reply code that refused the connection."""
    try:
        c = pika.BlockingConnection(pika.ConnectionParameters(
            host=b.host, port=b.port, virtual_host=vhost, heartbeat=0,
            credentials=pika.PlainCredentials(user, password)))
    except pika.exceptions.ProbableAuthenticationError:
        return 403
    except pika.exceptions.ProbableAccessDeniedError:
        return 530
    except pika.exceptions.ConnectionClosedByBroker as e:
        return e.reply_code
    c.close()
    return "ok"


def channel(b, vhost="/", user="guest", password="guest"):
    c = pika.BlockingConnection(pika.ConnectionParameters(
        host=b.host, port=b.port, virtual_host=vhost, heartbeat=0,
        credentials=pika.PlainCredentials(user, password)))
    return c, c.channel()


def exists(b, vhost, kind, name):
    c, ch = channel(b, vhost)
    try:
        if kind == "queue":
            ch.queue_declare(name, passive=True)
        else:
            ch.exchange_declare(name, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker as e:
        if e.reply_code != 404:
            raise
        return False
    finally:
        if c.is_open:
            c.close()


def drain(b, vhost, queue):
    c, ch = channel(b, vhost)
    bodies = []
    while True:
        m, _, body = ch.basic_get(queue, auto_ack=True)
        if m is None:
            break
        bodies.append(body)
    c.close()
    return bodies


def normalized(defs):
    """A definitions document without what differs between two data
    directories holding the same definitions: journal identities."""
    d = copy.deepcopy(defs)
    d.pop("warren_queue_id_ranges", None)
    for v in d.get("vhosts", []):
        v.pop("warren_last_queue_id", None)
    for q in d.get("queues", []):
        q.pop("warren_id", None)
    return d


class DefsTestCase(unittest.TestCase):
    def setUp(self):
        if external():
            self.skipTest("starts warrend with its own configuration")
        self.env = Env()

    def tearDown(self):
        self.env.close()


class RabbitExportTests(DefsTestCase):
    def test_export_loads_at_boot(self):
        """A RabbitMQ 3.10.8 export loads via load_definitions: every user
        logs in with the password RabbitMQ hashed (SHA-256, SHA-512, MD5),
        every durable object of every vhost is there and routes, transient
        ones are not, and what Warren does not apply is kept and said once."""
        env = self.env
        env.write_conf(load_definitions=FIXTURE)
        b = env.start()
        for user, pw, vh in USERS:
            self.assertEqual(login(b, user, pw, vh), "ok", user)
            self.assertEqual(login(b, user, pw + "x", vh), 403, user)
        for vh, kind, name in [("/", "queue", "orders"), ("/", "queue", "unrouted"),
                               ("/", "queue", "audit"), ("/", "exchange", "main"),
                               ("/", "exchange", "ae"), ("/", "exchange", "logs"),
                               ("prod", "queue", "bob.inbox"), ("prod", "queue", "h.q"),
                               ("prod", "queue", "ttl.q"), ("prod", "exchange", "events"),
                               ("prod", "exchange", "fan-ad"), ("dev é", "queue", "q é"),
                               ("dev é", "exchange", "x é")]:
            self.assertTrue(exists(b, vh, kind, name), (vh, kind, name))
        # Transient in the export: not imported (as RabbitMQ).
        self.assertFalse(exists(b, "/", "queue", "tmp"))
        self.assertFalse(exists(b, "/", "exchange", "transient"))
        # Bindings, alternate exchange and exchange-to-exchange routing.
        c, ch = channel(b, "/")
        ch.basic_publish("main", "order.created", b"o1")
        ch.basic_publish("main", "nowhere", b"u1")
        c.close()
        c, ch = channel(b, "prod")
        ch.basic_publish("events", "bob.x", b"b1")
        ch.basic_publish("amq.topic", "public.y", b"b2")
        c.close()
        c, ch = channel(b, "dev é")
        ch.basic_publish("x é", "clé", b"e1")
        c.close()
        self.assertEqual(drain(b, "/", "orders"), [b"o1"])
        self.assertEqual(drain(b, "/", "audit"), [b"o1"])  # main -> logs -> audit
        self.assertEqual(drain(b, "/", "unrouted"), [b"u1"])
        self.assertEqual(drain(b, "prod", "bob.inbox"), [b"b1", b"b2"])
        self.assertEqual(drain(b, "dev é", "q é"), [b"e1"])
        log = env.stop(b)
        self.assertEqual(log.count("not applied"), 1, log)
        self.assertIn("1 policies, 1 parameters, 1 global parameters, limits of 1 users, "
                      "limits of 1 vhosts", log)
        self.assertIn("(source 'events', destination 'hdr', vhost 'prod') skipped: no such "
                      "destination exchange", log)
        # The data directory's file: RabbitMQ's shape, hashes as imported,
        # the parts Warren keeps.
        with open(FIXTURE) as f:
            fx = json.load(f)
        d = env.definitions()
        self.assertEqual(d["rabbit_version"], "3.10.8")
        got = {u["name"]: u for u in d["users"]}
        for u in fx["users"]:
            self.assertEqual(got[u["name"]]["password_hash"], u["password_hash"])
            self.assertEqual(got[u["name"]]["hashing_algorithm"], u["hashing_algorithm"])
            self.assertEqual(got[u["name"]]["tags"], u["tags"])
            self.assertEqual(got[u["name"]]["limits"], u["limits"])
        for key in ("policies", "parameters", "global_parameters"):
            self.assertEqual(d[key], fx[key], key)
        key = lambda p: (p["user"], p["vhost"])  # noqa: E731
        self.assertEqual(sorted(d["permissions"], key=key), sorted(fx["permissions"], key=key))
        self.assertEqual(sorted(d["topic_permissions"], key=key),
                         sorted(fx["topic_permissions"], key=key))
        vh = {v["name"]: v for v in d["vhosts"]}
        for v in fx["vhosts"]:
            self.assertEqual(vh[v["name"]]["metadata"], v["metadata"])
            self.assertEqual(vh[v["name"]]["limits"], v["limits"])

    def test_restart_keeps_everything(self):
        """Users, vhosts, permissions and the durable objects and messages
        of every vhost survive restarts, with and without load_definitions
        (journal identities are unique across vhosts: a message published
        to one vhost's queue comes back there only)."""
        env = self.env
        env.write_conf(load_definitions=FIXTURE)
        b = env.start()
        targets = [("/", "orders"), ("/", "unrouted"), ("prod", "bob.inbox"), ("prod", "h.q"),
                   ("dev é", "q é")]
        for i, (vh, q) in enumerate(targets):
            c, ch = channel(b, vh)
            ch.confirm_delivery()
            ch.basic_publish("", q, ("m%d" % i).encode(),
                             pika.BasicProperties(delivery_mode=2))
            c.close()
        env.stop(b)
        b = env.start()  # load_definitions imported again: everything kept
        for user, pw, vh in USERS:
            self.assertEqual(login(b, user, pw, vh), "ok", user)
        env.stop(b)
        env.write_conf()
        b = env.start()  # without it: all from the data directory
        for user, pw, vh in USERS:
            self.assertEqual(login(b, user, pw, vh), "ok", user)
        self.assertEqual(login(b, "bob", "pässwörd", "/"), 530)  # no permission there
        for i, (vh, q) in enumerate(targets):
            self.assertEqual(drain(b, vh, q), [("m%d" % i).encode()], (vh, q))
        env.stop(b)
        ids = [q["warren_id"] for q in env.definitions()["queues"]]
        self.assertEqual(len(ids), len(set(ids)), "journal ids repeat across vhosts")

    def test_export_imports_identically(self):
        """The data directory's definitions.json, loaded into a fresh
        Warren with load_definitions, gives identical definitions (but for
        journal identities), odd names and argument types included."""
        env = self.env
        env.write_conf(load_definitions=FIXTURE)
        b = env.start()
        c, ch = channel(b, "prod")
        ch.exchange_declare("e2e.src", "direct", durable=True)
        ch.exchange_declare("e2e.dst", "fanout", durable=True, internal=True)
        ch.exchange_bind("e2e.dst", "e2e.src", "k")
        ch.queue_declare("nul\x00name", durable=True,
                         arguments={"x-message-ttl": 5000, "x-dead-letter-exchange": "e2e.src",
                                    "custom": [1, "two", {"three": True}]})
        ch.queue_bind("nul\x00name", "e2e.dst", "", arguments={"z": decimal.Decimal("1.5")})
        c.close()
        env.stop(b)
        first = env.definitions()
        exported = env.file("export.json", json.dumps(first))

        other = Env()
        try:
            other.write_conf(load_definitions=exported)
            b2 = other.start()
            for user, pw, vh in USERS:
                self.assertEqual(login(b2, user, pw, vh), "ok", user)
            self.assertTrue(exists(b2, "prod", "queue", "nul\x00name"))
            other.stop(b2)
            second = other.definitions()
        finally:
            other.close()
        self.assertEqual(normalized(first), normalized(second))


class BadFileTests(DefsTestCase):
    def refused(self, doc, *want):
        env = self.env
        path = env.file("defs.json", doc)
        env.write_conf(load_definitions=path)
        rc, err = env.fail_start()
        self.assertEqual(rc, 1, err)
        for w in want:
            self.assertIn(w, err)
        return err

    def test_not_json(self):
        """A file that does not parse stops the start with its name, the
        line and the reason, before the data directory is touched."""
        err = self.refused('{\n "users": [\n  {"name": "x",}\n ]\n}\n')
        path = os.path.join(self.env.dir, "defs.json")
        self.assertIn("cannot load definitions: %s: line 3, column " % path, err)
        self.assertIn("expected", err)
        self.assertEqual(os.listdir(self.env.data), [])

    def test_bad_entry_changes_nothing(self):
        """A bad entry stops the start naming it; nothing of the file is
        applied, and a data directory that existed is left as it was."""
        env = self.env
        env.write_conf()
        env.stop(env.start())
        before = open(os.path.join(env.data, "definitions.json")).read()
        err = self.refused({"vhosts": [{"name": "new"}],
                            "users": [{"name": "alice", "password_hash": ""},
                                      {"name": "bob", "password_hash": "not*base64"}]},
                           "users[1] (name 'bob'): password_hash: not base64",
                           "nothing was imported")
        self.assertIn(os.path.join(env.dir, "defs.json"), err)
        self.assertEqual(open(os.path.join(env.data, "definitions.json")).read(), before)
        env.write_conf()
        b = env.start()
        self.assertEqual(login(b, "alice", ""), 403)
        self.assertEqual(login(b, "guest", "guest", "new"), 530)
        env.stop(b)

    def test_other_bad_entries(self):
        self.refused({"users": [{"name": "u", "password_hash": "",
                                 "hashing_algorithm": "rabbit_password_hashing_sha1"}]},
                     "users[0] (name 'u'): hashing_algorithm: unknown hashing algorithm "
                     "'rabbit_password_hashing_sha1'")
        self.refused({"users": [{"name": "u"}],
                      "vhosts": [{"name": "v"}],
                      "permissions": [{"user": "u", "vhost": "v", "configure": "(",
                                       "write": "", "read": ""}]},
                     "permissions[0] (user 'u', vhost 'v'): configure: regular expression "
                     "'(' is invalid")
        self.refused({"queues": [{"name": "q", "vhost": "nope", "durable": True}]},
                     "queues[0] (name 'q', vhost 'nope'): vhost: no such vhost")
        self.refused({"exchanges": [{"name": "x", "vhost": "/", "type": "direct",
                                     "durable": "yes"}], "vhosts": [{"name": "/"}]},
                     "exchanges[0] (name 'x', vhost '/'): durable: not true or false")
        self.refused([], "not a JSON object")

    def test_missing_file(self):
        self.env.write_conf(load_definitions=os.path.join(self.env.dir, "missing.json"))
        rc, err = self.env.fail_start()
        self.assertEqual(rc, 1)
        self.assertIn("missing.json: cannot open", err)

    def test_bad_default_permissions(self):
        self.env.write_conf(default_permissions__read="(")
        rc, err = self.env.fail_start()
        self.assertEqual(rc, 1)
        self.assertIn("default_permissions.read: regular expression '(' is invalid", err)


class DefaultUserTests(DefsTestCase):
    def test_first_start_defaults(self):
        """The first start creates guest/guest on "/" (hash, not password,
        in definitions.json)."""
        env = self.env
        env.write_conf()
        b = env.start()
        self.assertEqual(login(b, "guest", "guest"), "ok")
        env.stop(b)
        d = env.definitions()
        self.assertEqual([u["name"] for u in d["users"]], ["guest"])
        self.assertEqual(d["users"][0]["tags"], ["administrator"])
        self.assertEqual(d["users"][0]["hashing_algorithm"], "rabbit_password_hashing_sha256")
        self.assertNotIn('"guest"', json.dumps(d["users"][0]["password_hash"]))
        self.assertEqual(d["permissions"], [{"user": "guest", "vhost": "/", "configure": ".*",
                                             "write": ".*", "read": ".*"}])
        self.assertEqual([v["name"] for v in d["vhosts"]], ["/"])

    def test_configured_defaults(self):
        """default_user, default_pass, default_vhost, default_user_tags.*
        and default_permissions.* as in rabbitmq.conf."""
        env = self.env
        env.write_conf(default_user="admin", default_pass="s3cret#1", default_vhost="main",
                       default_user_tags__administrator="false",
                       default_user_tags__monitoring="true",
                       default_user_tags__my_tag="true",
                       default_permissions__configure="^admin-",
                       default_permissions__read="")
        b = env.start()
        self.assertEqual(login(b, "admin", "s3cret#1", "main"), "ok")
        self.assertEqual(login(b, "admin", "s3cret#1", "/"), 530)  # no vhost "/"
        self.assertEqual(login(b, "guest", "guest", "main"), 403)
        env.stop(b)
        d = env.definitions()
        self.assertEqual(d["users"][0]["tags"], ["monitoring", "my_tag"])
        self.assertEqual(d["permissions"], [{"user": "admin", "vhost": "main",
                                             "configure": "^admin-", "write": ".*",
                                             "read": ""}])

    def test_defaults_at_first_start_only(self):
        """Later starts create no default user, whatever the settings."""
        env = self.env
        env.write_conf()
        env.stop(env.start())
        env.write_conf(default_user="other", default_pass="pw", default_vhost="elsewhere")
        b = env.start()
        self.assertEqual(login(b, "other", "pw", "elsewhere"), 403)
        self.assertEqual(login(b, "other", "pw", "/"), 403)
        self.assertEqual(login(b, "guest", "guest"), "ok")
        env.stop(b)

    def test_no_defaults_with_load_definitions(self):
        """A first start with load_definitions creates neither guest nor
        "/" (they exist only if the file defines them), then or later."""
        env = self.env
        path = env.file("defs.json", {
            "vhosts": [{"name": "v"}],
            "users": [{"name": "only", "password": "only-pw-7", "tags": "administrator"}],
            "permissions": [{"user": "only", "vhost": "v", "configure": ".*", "write": ".*",
                             "read": ".*"}]})
        env.write_conf(load_definitions=path)
        b = env.start()
        self.assertEqual(login(b, "only", "only-pw-7", "v"), "ok")
        self.assertEqual(login(b, "guest", "guest", "v"), 403)
        self.assertEqual(login(b, "only", "only-pw-7", "/"), 530)
        env.stop(b)
        env.write_conf()
        b = env.start()
        self.assertEqual(login(b, "guest", "guest", "v"), 403)
        self.assertEqual(login(b, "only", "only-pw-7", "v"), "ok")
        env.stop(b)
        users = env.definitions()["users"]
        self.assertNotIn("only-pw-7", json.dumps(users))  # a hash, never the password
        self.assertNotIn("password", users[0])


class LegacyDataDirTests(DefsTestCase):
    def test_84fe4a0_data_directory(self):
        """A data directory written by 84fe4a0 (definitions.json of vhost
        "/" in the old shape, no users) still loads: its queue, exchange,
        binding and messages come back, and the default user is created
        (the data directory held no users)."""
        env = self.env
        shutil.copytree(LEGACY, env.data, dirs_exist_ok=True)
        env.write_conf()
        b = env.start()
        self.assertEqual(login(b, "guest", "guest"), "ok")
        self.assertEqual(drain(b, "/", "legacy.q"), [b"old-0", b"old-1", b"old-2"])
        c, ch = channel(b, "/")
        ch.queue_declare("new.q", durable=True)  # a new id, not legacy.gone's (2)
        c.close()
        env.stop(b)
        d = env.definitions()
        ids = {q["name"]: q["warren_id"] for q in d["queues"]}
        self.assertEqual(ids["legacy.q"], 1)
        self.assertEqual(ids["new.q"], 3)
        self.assertEqual(d["bindings"][0]["source"], "legacy.x")


if __name__ == "__main__":
    harness.main()
