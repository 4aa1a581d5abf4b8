"""test_access - RabbitMQ's access control over AMQP (issue 10), with the
users and permissions of fixtures/access-defs.json loaded at boot
(load_definitions).

Every row of RabbitMQ's access-control table, allowed and refused, and the
order of checks clients depend on: the permission check before the
existence check (403 without it, 404 or delete-ok with it) and before the
exclusive lock (403 / 405); an unknown exchange type is 503 before any
check; every operation on the default exchange is 403; publishing to ""
needs write on "amq.default"; alternate- and dead-letter-exchange checks
apply when the object is created; a user_id naming someone else is 406
unless the user is an impersonator; tags grant nothing over AMQP; topic
permissions on publish and bind; unknown vhost and a vhost without
permissions are 530; empty patterns grant the vhost and nothing in it.

Users (passwords are the user name + "pw", guest/guest):
  bob    configure ^bob\\.  write ^(bob\\..*|amq\\.default|amq\\.topic)$
         read ^(bob\\.|amq\\.topic$); topic on amq.topic: write ^bob\\.,
         read ^r\\.
  carol  .* on "/", tag impersonator
  dave   no permissions anywhere
  eve    "" "" "" on "/"
  frank  tags administrator,management, no permissions
Against RabbitMQ: import the fixture first (rabbitmqctl
import_definitions tests/integ/fixtures/access-defs.json), then run with
WARREN_TEST_PORT.
"""
import os
import shutil
import tempfile

import pika
import pika.exceptions as pex

import harness

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures",
                       "access-defs.json")
ACCESS_REFUSED, NOT_FOUND, RESOURCE_LOCKED, PRECONDITION_FAILED = 403, 404, 405, 406


def _conf():
    d = tempfile.mkdtemp(prefix="warren-access-")
    path = os.path.join(d, "warren.conf")
    with open(path, "w") as f:
        f.write("load_definitions = %s\n" % FIXTURE)
    return d, path


_DIR, _CONF = _conf()


class AccessTest(harness.BrokerTestCase):
    broker_args = ("-c", _CONF)

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(_DIR, ignore_errors=True)

    def connect_as(self, user, password=None, vhost="/"):
        return pika.BlockingConnection(pika.ConnectionParameters(
            host=self.broker.host, port=self.broker.port, virtual_host=vhost,
            credentials=pika.PlainCredentials(user, password or user + "pw"),
            heartbeat=0))

    def setUp(self):
        self.conns = []
        self.admin = self.connect_as("guest", "guest")
        self.conns.append(self.admin)
        self.bob = self.connect_as("bob")
        self.conns.append(self.bob)

    def tearDown(self):
        for c in self.conns:
            try:
                c.close()
            except Exception:
                pass

    def refused(self, conn, fn, code=ACCESS_REFUSED, text=None):
        ch = conn.channel()
        with self.assertRaises(pex.ChannelClosedByBroker) as cm:
            fn(ch)
            ch.basic_qos(prefetch_count=0)  # a synchronous round trip
        self.assertEqual(cm.exception.reply_code, code, cm.exception.reply_text)
        if text:
            self.assertIn(text, cm.exception.reply_text)
        self.assertTrue(conn.is_open)
        return cm.exception.reply_text

    def allowed(self, conn, fn):
        ch = conn.channel()
        out = fn(ch)
        ch.close()
        return out

    def name(self, prefix):
        return "%s.%s" % (prefix, self.unique("n"))

    # ---- queues ----

    def test_queue_declare_and_delete(self):
        mine, other = self.name("bob"), self.name("other")
        text = self.refused(self.bob, lambda ch: ch.queue_declare(other))
        self.assertEqual(text, "ACCESS_REFUSED - access to queue '%s' in vhost '/' refused for "
                               "user 'bob'" % other)
        self.allowed(self.bob, lambda ch: ch.queue_declare(mine, auto_delete=True))
        # the permission check comes before the existence check
        self.refused(self.bob, lambda ch: ch.queue_delete(self.name("other")))
        self.allowed(self.bob, lambda ch: ch.queue_delete(self.name("bob")))  # missing: ok
        self.allowed(self.bob, lambda ch: ch.queue_delete(mine))
        # a server-named queue is checked under its generated name
        text = self.refused(self.bob, lambda ch: ch.queue_declare(""))
        self.assertIn("access to queue 'amq.gen-", text)
        # passive declares need nothing
        q = self.allowed(self.admin, lambda ch: ch.queue_declare(self.name("other"),
                                                                 auto_delete=True)).method.queue
        self.allowed(self.bob, lambda ch: ch.queue_declare(q, passive=True))

    def test_get_consume_purge_need_read(self):
        self.refused(self.bob, lambda ch: ch.basic_get(self.name("other")), ACCESS_REFUSED)
        self.refused(self.bob, lambda ch: ch.basic_get(self.name("bob")), NOT_FOUND)
        q = self.name("bob")
        self.allowed(self.bob, lambda ch: ch.queue_declare(q, auto_delete=True))
        self.allowed(self.bob, lambda ch: ch.basic_get(q))
        self.allowed(self.bob, lambda ch: ch.queue_purge(q))
        other = self.allowed(self.admin, lambda ch: ch.queue_declare(
            self.name("other"), auto_delete=True)).method.queue
        self.refused(self.bob, lambda ch: ch.queue_purge(other))
        self.refused(self.bob, lambda ch: ch.basic_consume(other, lambda *a: None))

    def test_permission_before_exclusive_lock(self):
        ch = self.admin.channel()
        mine = ch.queue_declare(self.name("bob"), exclusive=True).method.queue
        other = ch.queue_declare(self.name("other"), exclusive=True).method.queue
        self.refused(self.bob, lambda c: c.basic_get(mine), RESOURCE_LOCKED)
        self.refused(self.bob, lambda c: c.basic_get(other), ACCESS_REFUSED)

    def test_dead_letter_exchange_checked_at_creation(self):
        # write on the DLX and read on the queue, only when it is created
        q = self.name("bob")
        self.refused(self.bob, lambda ch: ch.queue_declare(
            q, auto_delete=True, arguments={"x-dead-letter-exchange": "amq.direct"}),
            text="exchange 'amq.direct'")
        self.allowed(self.bob, lambda ch: ch.queue_declare(
            q, auto_delete=True, arguments={"x-dead-letter-exchange": "bob.dlx"}))
        # an equivalent redeclare of an existing queue needs configure only
        self.allowed(self.admin, lambda ch: ch.queue_declare(
            self.name("bob") + "x", auto_delete=True))

    # ---- exchanges ----

    def test_exchange_declare_delete(self):
        text = self.refused(self.bob, lambda ch: ch.exchange_declare(self.name("other"),
                                                                     "direct"))
        self.assertIn("access to exchange", text)
        x = self.name("bob")
        self.allowed(self.bob, lambda ch: ch.exchange_declare(x, "fanout", auto_delete=True))
        self.refused(self.bob, lambda ch: ch.exchange_delete(self.name("other")))
        self.allowed(self.bob, lambda ch: ch.exchange_delete(self.name("bob")))  # missing: ok
        self.allowed(self.bob, lambda ch: ch.exchange_delete(x))
        # alternate exchange: write on it, checked at creation
        self.refused(self.bob, lambda ch: ch.exchange_declare(
            self.name("bob"), "direct", arguments={"alternate-exchange": "amq.fanout"}),
            text="exchange 'amq.fanout'")

    def test_unknown_type_is_503_before_any_check(self):
        with self.assertRaises(pex.ConnectionClosedByBroker) as cm:
            ch = self.bob.channel()
            ch.exchange_declare(self.name("other"), "no-such-type")
        self.assertEqual(cm.exception.reply_code, 503)
        self.conns.remove(self.bob)

    def test_default_exchange_is_always_403(self):
        for fn in (lambda ch: ch.exchange_declare("", "direct"),
                   lambda ch: ch.exchange_delete(""),
                   lambda ch: ch.queue_bind("amq.gen-x", "")):
            self.refused(self.admin, fn, text="default exchange")

    # ---- bindings ----

    def test_bindings(self):
        q = self.name("bob")
        self.allowed(self.bob, lambda ch: ch.queue_declare(q, auto_delete=True))
        # write on the queue is needed: bob's write pattern wants bob.<x>
        # ending the name, which q does; read on the exchange: amq.direct no
        self.refused(self.bob, lambda ch: ch.queue_bind(q, "amq.direct", "k"),
                     text="exchange 'amq.direct'")
        # topic read permission on the binding key of a topic exchange
        self.refused(self.bob, lambda ch: ch.queue_bind(q, "amq.topic", "x.#"),
                     text="access to topic 'x.#' in exchange 'amq.topic'")
        self.allowed(self.bob, lambda ch: ch.queue_bind(q, "amq.topic", "r.#"))
        # exchange.bind: write on the destination, read on the source
        self.refused(self.bob, lambda ch: ch.exchange_bind("amq.fanout", "amq.topic", "r.x"),
                     text="exchange 'amq.fanout'")

    # ---- publishing ----

    def test_publish(self):
        q = self.name("bob")
        self.allowed(self.bob, lambda ch: ch.queue_declare(q, auto_delete=True))

        def pub(exchange, key, **props):
            def fn(ch):
                ch.confirm_delivery()
                ch.basic_publish(exchange, key, b"m", pika.BasicProperties(**props))
            return fn
        # the default exchange is checked as amq.default
        self.allowed(self.bob, pub("", q))
        self.refused(self.bob, pub("amq.direct", "k"), text="exchange 'amq.direct'")
        # permission before existence
        self.refused(self.bob, pub(self.name("nope"), "k"), ACCESS_REFUSED)
        # topic permissions on the routing key
        self.allowed(self.bob, pub("amq.topic", "bob.x"))
        self.refused(self.bob, pub("amq.topic", "other.x"),
                     text="access to topic 'other.x' in exchange 'amq.topic' in vhost '/'")
        # user_id: the user's own name, or an impersonator
        self.allowed(self.bob, pub("", q, user_id="bob"))
        text = self.refused(self.bob, pub("", q, user_id="alice"), PRECONDITION_FAILED)
        self.assertIn("user_id property set to 'alice' but authenticated user was 'bob'", text)
        carol = self.connect_as("carol")
        self.conns.append(carol)
        self.allowed(carol, pub("", q, user_id="alice"))

    # ---- vhosts and tags ----

    def test_vhost_access(self):
        with self.assertRaises(pex.ProbableAccessDeniedError):
            self.connect_as("bob", vhost="acl-other")
        with self.assertRaises(pex.ProbableAccessDeniedError):
            self.connect_as("dave")
        with self.assertRaises(pex.ProbableAccessDeniedError):
            self.connect_as("frank")  # administrator grants nothing over AMQP
        with self.assertRaises(pex.ProbableAccessDeniedError):
            self.connect_as("bob", vhost="no-such-vhost")
        c = self.connect_as("guest", "guest", vhost="acl-other")
        self.conns.append(c)
        self.allowed(c, lambda ch: ch.queue_declare(self.name("other"), auto_delete=True))

    def test_empty_patterns_grant_the_vhost_only(self):
        eve = self.connect_as("eve")
        self.conns.append(eve)
        self.refused(eve, lambda ch: ch.queue_declare(self.name("eve"), auto_delete=True))
        self.refused(eve, lambda ch: ch.basic_get(self.name("eve")))

    def test_wrong_password(self):
        with self.assertRaises(pex.ProbableAuthenticationError):
            self.connect_as("bob", "not-bobs")


if __name__ == "__main__":
    harness.main()
