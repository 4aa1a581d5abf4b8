"""test_exchange - exchange semantics, checked against RabbitMQ 3.10 behaviour.

Covers:
  * routing of the four exchange types: direct (exact, case-sensitive key),
    fanout (key ignored), topic (`*` = exactly one word, `#` = zero or more
    words, empty words are words: "a..b", ".a", "a."), headers (x-match
    all / any / all-with-x / any-with-x, x- headers ignored except by the
    -with-x variants, no-argument binding matches every message, value types
    matter: 1 != "1");
  * a queue bound several ways to one exchange gets one copy;
  * the default exchange: routes by queue name, cannot be bound, unbound,
    deleted or passively declared (403);
  * the pre-declared amq.* exchanges, the reserved "amq." prefix (403);
  * declare: equivalence (406 on type/durable/auto_delete/internal/args
    mismatch), passive declare (404 when missing, other fields ignored),
    unknown type (503 connection error);
  * delete: if-unused (406 when it has bindings), missing exchange (delete-ok),
    bindings removed with the exchange, auto-delete exchanges;
  * internal exchanges (403 on publish, reachable through e2e bindings);
  * exchange-to-exchange bindings (two hops, unbind, cycles deliver once);
  * the alternate-exchange argument;
  * sender-selected distribution (CC and BCC headers; BCC stripped);
  * warrend only (skipped on an external broker, which we must not restart):
    durable exchanges and their bindings survive a restart, transient ones
    do not.

Routing is observed deterministically: messages are published on a channel
in confirm mode, and a broker acks a message only once every queue it was
routed to has it, so a basic.get after the ack sees exactly what was routed.
"""
import pika
import pika.exceptions as pex

import harness
from amqpcase import (ACCESS_REFUSED, COMMAND_INVALID, NO_ROUTE, NOT_FOUND,
                      PRECONDITION_FAILED, AmqpCase, bodies)


class ExchangeCase(AmqpCase):
    def setUp(self):
        super().setUp()
        self.pub = self.confirm_channel()

    def bind_matrix(self, xtype, bindings):
        """Declare an exchange of xtype and one exclusive queue per binding;
        bindings is {label: routing_key} or {label: (routing_key, args)}."""
        x = self.exchange(xtype)
        qs = {}
        for label, b in bindings.items():
            key, args = b if isinstance(b, tuple) else (b, None)
            q = self.temp_queue()
            self.ch.queue_bind(q, x, key, arguments=args)
            qs[label] = q
        return x, qs

    def routed(self, qs):
        """{label: sorted bodies} of what each queue received."""
        return {label: sorted(bodies(self.ch, q)) for label, q in qs.items()}


class TestRouting(ExchangeCase):
    def test_direct_exact_match(self):
        x, qs = self.bind_matrix("direct", {"k": "key", "K": "KEY", "empty": "", "k2": "key"})
        for rk in ("key", "KEY", "", "key.x", "ke", "other"):
            self.pub.basic_publish(x, rk, (rk or "<empty>").encode())
        self.assertEqual(self.routed(qs), {
            "k": ["key"], "K": ["KEY"], "empty": ["<empty>"], "k2": ["key"]})

    def test_fanout_ignores_key(self):
        x, qs = self.bind_matrix("fanout", {"a": "a", "b": "", "c": "whatever"})
        for rk in ("a", "", "zzz"):
            self.pub.basic_publish(x, rk, (rk or "<empty>").encode())
        want = sorted(["a", "<empty>", "zzz"])
        self.assertEqual(self.routed(qs), {"a": want, "b": want, "c": want})

    def test_topic_wildcards(self):
        patterns = ["a.#", "#.a", "*.*", "*..*", "#", "#.#", "*", "", "*.a", "a.*.#",
                    "#.b.#", "a.*", ".a", "a.b"]
        keys = ["a", "a.b", "a.b.c", "b.a", "ab", "", "a..b", ".a", "a.", ".", "..", "b",
                "A", "b.c.a"]
        x, qs = self.bind_matrix("topic", {p: p for p in patterns})
        for k in keys:
            self.pub.basic_publish(x, k, (k or "<empty>").encode())
        every = sorted(k or "<empty>" for k in keys)
        want = {
            # '#' matches zero words: "a.#" matches "a"; empty words count ("a." = a + "")
            "a.#": ["a", "a.", "a..b", "a.b", "a.b.c"],
            "#.a": [".a", "a", "b.a", "b.c.a"],
            # '*' is exactly one (possibly empty) word: "." is two empty words
            "*.*": [".", ".a", "a.", "a.b", "b.a"],
            "*..*": ["..", "a..b"],
            "#": every,
            "#.#": every,
            # the empty routing key has no words at all: '*' does not match it
            "*": ["A", "a", "ab", "b"],
            "": ["<empty>"],
            "*.a": [".a", "b.a"],
            "a.*.#": ["a.", "a..b", "a.b", "a.b.c"],
            "#.b.#": ["a..b", "a.b", "a.b.c", "b", "b.a", "b.c.a"],
            "a.*": ["a.", "a.b"],
            ".a": [".a"],
            "a.b": ["a.b"],
        }
        self.assertEqual(self.routed(qs), {p: sorted(v) for p, v in want.items()})

    def test_headers_match_modes(self):
        x, qs = self.bind_matrix("headers", {
            "all": ("", {"x-match": "all", "a": 1, "b": "x"}),
            "any": ("", {"x-match": "any", "a": 1, "b": "x"}),
            # x-match defaults to all
            "default": ("", {"a": 1}),
            # x- keys in the binding are ignored by all/any ...
            "all-x": ("", {"x-match": "all", "x-foo": "bar", "a": 1}),
            "any-x": ("", {"x-match": "any", "x-foo": "bar", "c": 1}),
            # ... but must match with all-with-x / any-with-x (RabbitMQ 3.10+)
            "all-with-x": ("", {"x-match": "all-with-x", "x-foo": "bar", "a": 1}),
            "any-with-x": ("", {"x-match": "any-with-x", "x-foo": "bar", "c": 1}),
            # a binding without arguments matches everything, even no headers
            "no-args": ("", None),
            "empty-args": ("", {}),
            "all-nothing": ("", {"x-match": "all"}),
            # any with no keys to compare matches nothing
            "any-nothing": ("", {"x-match": "any"}),
        })
        msgs = {
            "m1": {"a": 1, "b": "x"},
            "m2": {"a": 1},
            "m3": {"a": 1, "b": "x", "c": 3},
            "m4": {"a": 2, "b": "x"},
            "m5": {"c": 1},
            "m6": {"x-foo": "bar"},
            "m7": {"a": 1, "x-foo": "bar"},
            "m8": None,
            "m9": {"a": "1"},             # a string "1" is not the integer 1
            "m10": {"b": "x"},
        }
        for body, h in msgs.items():
            self.pub.basic_publish(x, "ignored", body.encode(), pika.BasicProperties(headers=h))
        every = sorted(msgs)
        self.assertEqual(self.routed(qs), {
            "all": sorted(["m1", "m3"]),
            "any": sorted(["m1", "m2", "m3", "m4", "m7", "m10"]),
            "default": sorted(["m1", "m2", "m3", "m7"]),
            "all-x": sorted(["m1", "m2", "m3", "m7"]),
            "any-x": ["m5"],
            "all-with-x": ["m7"],
            "any-with-x": sorted(["m5", "m6", "m7"]),
            "no-args": every,
            "empty-args": every,
            "all-nothing": every,
            "any-nothing": [],
        })

    def test_headers_invalid_x_match(self):
        x = self.exchange("headers")
        q = self.temp_queue()
        # RabbitMQ: 406 "Invalid x-match field value <<"some">>; expected all,
        # any, all-with-x, or any-with-x"
        with self.channel_error(PRECONDITION_FAILED, text="x-match"):
            self.ch.queue_bind(q, x, "", arguments={"x-match": "some"})

    def test_one_copy_per_queue(self):
        x = self.exchange("topic")
        q = self.temp_queue()
        for key in ("a.*", "#", "a.b", "a.b"):   # the last is a duplicate binding
            self.ch.queue_bind(q, x, key)
        self.pub.basic_publish(x, "a.b", b"once")
        self.assertEqual(bodies(self.ch, q), ["once"])

    def test_delivery_carries_exchange_and_key(self):
        x, qs = self.bind_matrix("topic", {"q": "k.*"})
        self.pub.basic_publish(x, "k.v", b"m")
        m, _, b = self.ch.basic_get(qs["q"], auto_ack=True)
        self.assertEqual((m.exchange, m.routing_key, b, m.redelivered), (x, "k.v", b"m", False))


class TestDefaultExchange(ExchangeCase):
    def test_routes_by_queue_name(self):
        q = self.temp_queue()
        other = self.temp_queue()
        self.pub.basic_publish("", q, b"direct")
        m, _, b = self.ch.basic_get(q, auto_ack=True)
        self.assertEqual((m.exchange, m.routing_key, b), ("", q, b"direct"))
        self.assertEqual(self.counts(other)[0], 0)
        with self.assertRaises(pex.UnroutableError):
            self.pub.basic_publish("", self.unique("no-such-queue"), b"x", mandatory=True)

    def test_cannot_bind(self):
        q = self.temp_queue()
        # RabbitMQ: 403 "operation not permitted on the default exchange"
        with self.channel_error(ACCESS_REFUSED, text="default exchange"):
            self.ch.queue_bind(q, "", "anything")

    def test_cannot_unbind(self):
        q = self.temp_queue()
        with self.channel_error(ACCESS_REFUSED):
            self.ch.queue_unbind(q, "", q)

    def test_cannot_be_e2e_source_or_destination(self):
        with self.channel_error(ACCESS_REFUSED):
            self.ch.exchange_bind("", "amq.direct", "k")
        ch = self.conn.channel()
        with self.channel_error(ACCESS_REFUSED, ch):
            ch.exchange_bind("amq.fanout", "", "k")

    def test_cannot_delete(self):
        with self.channel_error(ACCESS_REFUSED):
            self.ch.exchange_delete("")

    def test_cannot_declare_even_passively(self):
        # Surprising: RabbitMQ 3.10 refuses even a passive declare of "" with
        # 403 "operation not permitted on the default exchange".
        with self.channel_error(ACCESS_REFUSED):
            self.ch.exchange_declare("", passive=True)


class TestDeclare(ExchangeCase):
    def test_predeclared_exchanges(self):
        for name, t in (("amq.direct", "direct"), ("amq.fanout", "fanout"),
                        ("amq.topic", "topic"), ("amq.headers", "headers"),
                        ("amq.match", "headers")):
            self.ch.exchange_declare(name, passive=True)
            # an equivalent active redeclare is fine (they are durable) ...
            self.ch.exchange_declare(name, t, durable=True)
        # ... a non-equivalent one is not
        with self.channel_error(PRECONDITION_FAILED):
            self.ch.exchange_declare("amq.direct", "direct", durable=False)

    def test_predeclared_exchanges_route(self):
        q = self.temp_queue()
        self.ch.queue_bind(q, "amq.direct", q)
        self.ch.queue_bind(q, "amq.topic", q + ".#")
        self.ch.queue_bind(q, "amq.match", "", arguments={"x-match": "any", "to": q})
        self.pub.basic_publish("amq.direct", q, b"1")
        self.pub.basic_publish("amq.topic", q + ".x.y", b"2")
        self.pub.basic_publish("amq.match", "", b"3", pika.BasicProperties(headers={"to": q}))
        self.assertEqual(bodies(self.ch, q), ["1", "2", "3"])

    def test_reserved_prefix(self):
        # RabbitMQ: 403 "exchange name 'amq.foo...' contains reserved prefix 'amq.*'"
        with self.channel_error(ACCESS_REFUSED, text="amq."):
            self.ch.exchange_declare("amq.foo-" + self.unique(), "direct")

    def test_cannot_delete_system_exchange(self):
        # RabbitMQ: 403 "deletion of system exchange 'amq.direct' in vhost '/' not allowed"
        with self.channel_error(ACCESS_REFUSED):
            self.ch.exchange_delete("amq.direct")
        self.conn.channel().exchange_declare("amq.direct", passive=True)

    def test_redeclare_equivalent_ok(self):
        x = self.exchange("topic", durable=True, arguments={"alternate-exchange": "ae"})
        self.ch.exchange_declare(x, "topic", durable=True, arguments={"alternate-exchange": "ae"})

    def test_redeclare_different_type(self):
        x = self.exchange("fanout")
        # RabbitMQ: 406 "inequivalent arg 'type' for exchange ...: received 'direct' but current is 'fanout'"
        with self.channel_error(PRECONDITION_FAILED, text="type"):
            self.ch.exchange_declare(x, "direct")
        # the channel error leaves the exchange as it was
        self.conn.channel().exchange_declare(x, "fanout")

    def test_redeclare_different_durable(self):
        x = self.exchange("fanout")
        with self.channel_error(PRECONDITION_FAILED, text="durable"):
            self.ch.exchange_declare(x, "fanout", durable=True)

    def test_redeclare_different_auto_delete_internal_args(self):
        x = self.exchange("fanout")
        for kw, what in (({"auto_delete": True}, "auto_delete"), ({"internal": True}, "internal"),
                         ({"arguments": {"alternate-exchange": "zz"}}, "alternate-exchange")):
            ch = self.conn.channel()
            with self.channel_error(PRECONDITION_FAILED, ch, text=what):
                ch.exchange_declare(x, "fanout", **kw)

    def test_passive_missing(self):
        # RabbitMQ: 404 "no exchange 'x' in vhost '/'"
        with self.channel_error(NOT_FOUND, text="no exchange"):
            self.ch.exchange_declare(self.unique("missing"), passive=True)

    def test_passive_ignores_other_fields(self):
        x = self.exchange("fanout")
        self.ch.exchange_declare(x, "direct", passive=True, durable=True)

    def test_unknown_type_is_connection_error(self):
        # RabbitMQ: connection error 503 "COMMAND_INVALID - unknown exchange
        # type 'nonsense'" (not a channel error), even for an existing name.
        with self.connection_error(COMMAND_INVALID, text="unknown exchange type"):
            self.ch.exchange_declare(self.unique(), "nonsense")
        c = self.new_connection()
        ch = c.channel()
        with self.connection_error(COMMAND_INVALID, ch):
            ch.exchange_declare("amq.direct", "x-nonsense", durable=True)

    def test_publish_to_missing_exchange(self):
        # RabbitMQ: 404 "no exchange 'x' in vhost '/'" closes the channel
        with self.channel_error(NOT_FOUND):
            self.ch.basic_publish(self.unique("missing"), "k", b"x")


class TestDelete(ExchangeCase):
    def test_delete(self):
        x = self.exchange("direct")
        self.ch.exchange_delete(x)
        self.assertExchangeMissing(x)

    def test_delete_missing_is_ok(self):
        # RabbitMQ 3.10: deleting an exchange that does not exist answers
        # delete-ok (no 404).
        self.ch.exchange_delete(self.unique("missing"))
        self.ch.exchange_delete(self.unique("missing"), if_unused=True)

    def test_if_unused_with_queue_binding(self):
        x = self.exchange("fanout")
        q = self.temp_queue()
        self.ch.queue_bind(q, x)
        # RabbitMQ: 406 "exchange 'x' in vhost '/' in use"
        with self.channel_error(PRECONDITION_FAILED, text="in use"):
            self.ch.exchange_delete(x, if_unused=True)
        ch = self.conn.channel()
        ch.exchange_declare(x, passive=True)
        ch.queue_unbind(q, x)
        ch.exchange_delete(x, if_unused=True)
        self.assertExchangeMissing(x)

    def test_if_unused_with_e2e_binding(self):
        src = self.exchange("fanout")
        dst = self.exchange("fanout")
        self.ch.exchange_bind(dst, src)
        # "unused" means: no bindings with this exchange as the source
        with self.channel_error(PRECONDITION_FAILED):
            self.ch.exchange_delete(src, if_unused=True)
        ch = self.conn.channel()
        ch.exchange_delete(dst, if_unused=True)
        self.assertExchangeMissing(dst)

    def test_delete_removes_bindings(self):
        x = self.exchange("fanout")
        q = self.temp_queue()
        self.ch.queue_bind(q, x)
        self.ch.exchange_delete(x)
        self.ch.exchange_declare(x, "fanout")
        with self.assertRaises(pex.UnroutableError):
            self.pub.basic_publish(x, "", b"x", mandatory=True)
        self.assertEqual(self.counts(q), (0, 0))

    def test_auto_delete_exchange(self):
        x = self.exchange("fanout", auto_delete=True)
        # not deleted before it ever had a binding
        self.conn.channel().exchange_declare(x, passive=True)
        q1, q2 = self.temp_queue(), self.temp_queue()
        self.ch.queue_bind(q1, x)
        self.ch.queue_bind(q2, x)
        self.ch.queue_unbind(q1, x)
        self.ch.exchange_declare(x, passive=True)
        # deleted when its last binding goes (here: the queue is deleted)
        self.ch.queue_delete(q2)
        self.assertExchangeMissing(x)


class TestInternal(ExchangeCase):
    def test_publish_to_internal_refused(self):
        x = self.exchange("fanout", internal=True)
        # RabbitMQ: 403 "cannot publish to internal exchange 'x' in vhost '/'"
        with self.channel_error(ACCESS_REFUSED, text="internal"):
            self.ch.basic_publish(x, "", b"x")

    def test_firehose_exchange_is_internal(self):
        # RabbitMQ predeclares amq.rabbitmq.trace as an internal topic exchange.
        self.ch.exchange_declare("amq.rabbitmq.trace", "topic", passive=True)
        with self.channel_error(ACCESS_REFUSED, text="internal"):
            self.ch.basic_publish("amq.rabbitmq.trace", "publish.x", b"x")

    def test_internal_reachable_through_e2e(self):
        front = self.exchange("direct")
        inner = self.exchange("fanout", internal=True)
        q = self.temp_queue()
        self.ch.queue_bind(q, inner)
        self.ch.exchange_bind(inner, front, "k")
        self.pub.basic_publish(front, "k", b"via")
        self.assertEqual(bodies(self.ch, q), ["via"])


class TestExchangeToExchange(ExchangeCase):
    def test_two_hops_and_unbind(self):
        first = self.exchange("direct")
        second = self.exchange("topic")
        q = self.temp_queue()
        self.ch.queue_bind(q, second, "k.#")
        self.ch.exchange_bind(second, first, "k.a")     # destination, source, key
        self.pub.basic_publish(first, "k.a", b"1")
        self.pub.basic_publish(first, "k.b", b"2")        # first does not route k.b
        self.pub.basic_publish(second, "k.b", b"3")       # direct to the second hop
        m, _, b = self.ch.basic_get(q, auto_ack=True)
        # the delivery names the exchange the message was published to
        self.assertEqual((b, m.exchange, m.routing_key), (b"1", first, "k.a"))
        self.assertEqual(bodies(self.ch, q), ["3"])
        self.ch.exchange_unbind(second, first, "k.a")
        with self.assertRaises(pex.UnroutableError):
            self.pub.basic_publish(first, "k.a", b"4", mandatory=True)
        self.assertEqual(bodies(self.ch, q), [])

    def test_three_hops_fanout(self):
        a, b, c = self.exchange("fanout"), self.exchange("fanout"), self.exchange("direct")
        q = self.temp_queue()
        self.ch.exchange_bind(b, a)
        self.ch.exchange_bind(c, b)
        self.ch.queue_bind(q, c, "rk")
        self.pub.basic_publish(a, "rk", b"deep")
        self.pub.basic_publish(a, "other", b"no")
        self.assertEqual(bodies(self.ch, q), ["deep"])

    def test_cycle_delivers_once(self):
        a, b = self.exchange("fanout"), self.exchange("fanout")
        self.ch.exchange_bind(b, a)
        self.ch.exchange_bind(a, b)
        q = self.temp_queue()
        self.ch.queue_bind(q, a)
        self.ch.queue_bind(q, b)
        self.pub.basic_publish(a, "", b"loop")
        self.assertEqual(bodies(self.ch, q), ["loop"])

    def test_bind_missing_source(self):
        dst = self.exchange("fanout")
        with self.channel_error(NOT_FOUND):
            self.ch.exchange_bind(dst, self.unique("missing"))

    def test_unbind_missing_is_ok(self):
        # RabbitMQ 3.10: unbinding a binding that does not exist is unbind-ok
        self.ch.exchange_unbind("amq.fanout", "amq.direct", self.unique("nope"))


class TestAlternateExchange(ExchangeCase):
    def test_unroutable_goes_to_alternate(self):
        ae = self.exchange("fanout")
        ae_q = self.temp_queue()
        self.ch.queue_bind(ae_q, ae)
        x = self.exchange("direct", arguments={"alternate-exchange": ae})
        q = self.temp_queue()
        self.ch.queue_bind(q, x, "known")
        self.pub.basic_publish(x, "known", b"routed")
        # mandatory: the message is routed (to the AE's queue), so not returned
        self.pub.basic_publish(x, "unknown", b"alt", mandatory=True)
        self.assertEqual(bodies(self.ch, q), ["routed"])
        m, _, b = self.ch.basic_get(ae_q, auto_ack=True)
        # it keeps its original exchange and routing key
        self.assertEqual((b, m.exchange, m.routing_key), (b"alt", x, "unknown"))

    def test_missing_alternate_returns_mandatory(self):
        x = self.exchange("direct", arguments={"alternate-exchange": self.unique("missing-ae")})
        with self.assertRaises(pex.UnroutableError) as cm:
            self.pub.basic_publish(x, "k", b"lost", mandatory=True)
        self.assertEqual(cm.exception.messages[0].method.reply_code, NO_ROUTE)

    def test_alternate_with_no_route_returns_mandatory(self):
        ae = self.exchange("direct")
        x = self.exchange("direct", arguments={"alternate-exchange": ae})
        with self.assertRaises(pex.UnroutableError):
            self.pub.basic_publish(x, "k", b"lost", mandatory=True)


class TestSenderSelected(ExchangeCase):
    """Sender-selected distribution: the CC and BCC headers (arrays of long
    strings) are routing keys too, through the same exchange, each queue
    once; BCC is removed before delivery (the headers property stays, maybe
    empty); a CC/BCC that is not an array is 406. 84fe4a0 ignored both."""

    def props(self, **headers):
        return pika.BasicProperties(headers=headers)

    def get(self, q):
        m, p, b = self.ch.basic_get(q, auto_ack=True)
        return None if m is None else (m.routing_key, p.headers, b)

    def test_cc_and_bcc_route_and_bcc_is_stripped(self):
        x, qs = self.bind_matrix("direct", {"main": "k-main", "cc": "k-cc", "bcc": "k-bcc",
                                            "none": "k-none"})
        self.pub.basic_publish(x, "k-main", b"m",
                               self.props(CC=["k-cc"], BCC=["k-bcc"], other=1))
        want = ("k-main", {"CC": ["k-cc"], "other": 1}, b"m")
        self.assertEqual(self.get(qs["main"]), want)
        self.assertEqual(self.get(qs["cc"]), want)
        self.assertEqual(self.get(qs["bcc"]), want)
        self.assertIsNone(self.get(qs["none"]))

    def test_cc_only_route_is_not_returned_and_queues_get_one_copy(self):
        x, qs = self.bind_matrix("direct", {"a": "ka", "b": "kb"})
        # duplicates and non-string elements are ignored; mandatory is met
        self.pub.basic_publish(x, "nowhere", b"m", self.props(CC=["ka", "ka", 5, "kb"]),
                               mandatory=True)
        self.assertEqual(bodies(self.ch, qs["a"]), ["m"])
        self.assertEqual(bodies(self.ch, qs["b"]), ["m"])

    def test_topic_bcc_leaves_an_empty_headers_table(self):
        x, qs = self.bind_matrix("topic", {"t": "t.#"})
        self.pub.basic_publish(x, "zzz", b"m", self.props(BCC=["t.a"]))
        self.assertEqual(self.get(qs["t"]), ("zzz", {}, b"m"))

    def test_default_exchange_routes_cc_by_queue_name(self):
        q1, q2 = self.temp_queue(), self.temp_queue()
        self.pub.basic_publish("", q1, b"m", self.props(CC=[q2]))
        self.assertEqual(bodies(self.ch, q1), ["m"])
        self.assertEqual(bodies(self.ch, q2), ["m"])

    def test_every_exchange_reached_routes_every_key(self):
        first, second = self.exchange("direct"), self.exchange("topic")
        q = self.temp_queue()
        self.ch.exchange_bind(second, first, "k2")   # reached through the CC key
        self.ch.queue_bind(q, second, "k1")          # matched by the main key
        self.pub.basic_publish(first, "k1", b"m", self.props(CC=["k2"]))
        self.assertEqual(bodies(self.ch, q), ["m"])

    def test_cc_route_keeps_the_alternate_exchange_out(self):
        ae = self.exchange("fanout")
        qae = self.temp_queue()
        self.ch.queue_bind(qae, ae)
        x = self.exchange("direct", arguments={"alternate-exchange": ae})
        q = self.temp_queue()
        self.ch.queue_bind(q, x, "kc")
        self.pub.basic_publish(x, "unbound", b"m", self.props(CC=["kc"]))
        self.assertEqual(bodies(self.ch, q), ["m"])
        self.assertEqual(bodies(self.ch, qae), [])

    def test_lowercase_cc_is_just_a_header(self):
        x, qs = self.bind_matrix("direct", {"a": "ka", "b": "kb"})
        self.pub.basic_publish(x, "ka", b"m", self.props(cc=["kb"]))
        self.assertEqual(bodies(self.ch, qs["a"]), ["m"])
        self.assertEqual(bodies(self.ch, qs["b"]), [])

    def test_cc_that_is_not_an_array_is_406(self):
        for name, value, tname in (("CC", "str", "longstr"), ("CC", 5, "signedint"),
                                   ("BCC", {"a": 1}, "table")):
            ch = self.confirm_channel()
            with self.channel_error(PRECONDITION_FAILED, ch=ch,
                                    text='{unacceptable_type_in_header,"%s",%s}' % (name,
                                                                                  tname)):
                ch.basic_publish("amq.direct", "k", b"bad", self.props(**{name: value}))


class TestRestart(ExchangeCase):
    """Needs a broker this test may restart: warrend only."""

    def test_durable_exchanges_and_bindings_survive(self):
        if self.external:
            self.skipTest("restarts the broker; only on a warrend started by the harness")
        durable = self.exchange("topic", durable=True)
        transient = self.exchange("fanout")
        q = self.queue(durable=True)
        self.ch.queue_bind(q, durable, "k.#")
        self.conn.close()
        harness.restart(self.broker)
        c = self.new_connection()
        ch = c.channel()
        ch.exchange_declare(durable, passive=True)
        self.assertExchangeMissing(transient, c)
        pub = self.confirm_channel(c)
        pub.basic_publish(durable, "k.x", b"after restart")
        self.assertEqual(bodies(ch, q), ["after restart"])


if __name__ == "__main__":
    harness.main()
