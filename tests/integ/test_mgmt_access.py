#!/usr/bin/python3
"""Management API: vhosts, users, permissions, topic permissions and
definitions (src/mgmt/ep_access.c), with RabbitMQ 3.10's paths, methods,
shapes and status codes; and what deleting a vhost or a user does to the
AMQP connections on it (closed with 320 CONNECTION_FORCED at once, the broker
and the other vhosts untouched, nothing back after a restart).

Run against RabbitMQ: WARREN_TEST_PORT=5690 WARREN_TEST_MGMT_PORT=15690
(Warren-only checks are skipped there: restarts, atomic imports, pagination
of /api/users, refusals of what RabbitMQ stores anyway).
"""
import base64
import hashlib
import json
import os
import time
import unittest

import harness
import mgmtcase
from mgmtcase import q

ADMIN_ONLY_GETS = (
    "/api/users", "/api/users/without-permissions", "/api/users/guest",
    "/api/users/guest/permissions", "/api/users/guest/topic-permissions",
    "/api/permissions", "/api/permissions/%2F/guest", "/api/topic-permissions",
    "/api/vhosts/%2F", "/api/vhosts/%2F/permissions", "/api/vhosts/%2F/topic-permissions",
    "/api/definitions", "/api/definitions/%2F",
)


def rabbit_hash(password, salt=b"\x01\x02\x03\x04"):
    """RabbitMQ's rabbit_password_hashing_sha256 of a password."""
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def nulls(v, path="$"):
    """Paths of the JSON nulls in v."""
    if v is None:
        return [path]
    if isinstance(v, dict):
        return [p for k, x in v.items() for p in nulls(x, "%s.%s" % (path, k))]
    if isinstance(v, list):
        return [p for i, x in enumerate(v) for p in nulls(x, "%s[%d]" % (path, i))]
    return []


def normalized(doc):
    """A definitions document comparable across brokers: Warren's own keys
    (journal identities) left out, every list sorted."""
    if isinstance(doc, dict):
        return {k: normalized(v) for k, v in doc.items() if not k.startswith("warren_")}
    if isinstance(doc, list):
        return sorted((normalized(x) for x in doc), key=lambda x: json.dumps(x, sort_keys=True))
    return doc


class AccessCase(mgmtcase.MgmtTestCase):
    def raw(self, method, path, data):
        """A request whose body is these bytes, said to be JSON."""
        return self.api(method, path, raw_body=data, headers={"content-type": "application/json"})

    def mk_vhost(self, name=None, body=None):
        name = name or self.unique("vh")
        r = self.put("/api/vhosts/" + q(name), body or {})
        self.assertEqual(r.status, 201, r)
        self.addCleanup(self.delete, "/api/vhosts/" + q(name))
        return name

    def mk_user(self, tags="", password="pw", perms_on=None, name=None):
        """A user (removed at the end), with ".*" permissions on the vhosts
        named in perms_on."""
        name = name or self.unique("u")
        self.add_user(name, password, tags)
        for vh in perms_on or ():
            r = self.put("/api/permissions/%s/%s" % (q(vh), q(name)),
                         {"configure": ".*", "write": ".*", "read": ".*"})
            self.assertIn(r.status, (201, 204), r)
        return name

    def vhost_conn(self, vh, user="guest", password="guest"):
        import pika
        return self.connect(virtual_host=vh, credentials=pika.PlainCredentials(user, password))

    def assert_forced(self, conn, text):
        """The broker closes conn with 320 CONNECTION_FORCED mentioning text."""
        import pika
        with self.assertRaises(pika.exceptions.ConnectionClosedByBroker) as cm:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                conn.process_data_events(0.05)
        self.assertEqual(cm.exception.reply_code, 320, cm.exception)
        self.assertIn("CONNECTION_FORCED", cm.exception.reply_text)
        self.assertIn(text, cm.exception.reply_text)

    def close_quietly(self, *conns):
        for c in conns:
            try:
                if c.is_open:
                    c.close()
            except Exception:
                pass


class VhostTest(AccessCase):
    def test_create_show_update_delete(self):
        vh = self.mk_vhost(body={"description": "first", "tags": "a, b"})
        v = self.get_ok("/api/vhosts/" + q(vh))
        self.assertEqual(v["name"], vh)
        self.assertEqual(v["description"], "first")
        self.assertEqual(v["tags"], ["a", "b"])
        self.assertEqual(v["metadata"], {"description": "first", "tags": ["a", "b"]})
        self.assertIs(v["tracing"], False)
        self.assertEqual(list(v["cluster_state"].values()), ["running"])
        # The creator may use it at once, as in RabbitMQ.
        p = self.get_ok("/api/permissions/%s/guest" % q(vh))
        self.assertEqual((p["configure"], p["write"], p["read"]), (".*", ".*", ".*"))
        # An update replaces description and tags (absent: none).
        r = self.put("/api/vhosts/" + q(vh), {"tags": ["x", "y"]})
        self.assertEqual(r.status, 204, r)
        v = self.get_ok("/api/vhosts/" + q(vh))
        self.assertEqual((v["description"], v["tags"]), ("", ["x", "y"]))
        r = self.put("/api/vhosts/" + q(vh), {"description": "second"})
        self.assertEqual(r.status, 204, r)
        v = self.get_ok("/api/vhosts/" + q(vh))
        self.assertEqual((v["description"], v["tags"]), ("second", []))
        # The description travels with the definitions.
        d = self.get_ok("/api/definitions")
        mine = [x for x in d["vhosts"] if x["name"] == vh]
        self.assertEqual(len(mine), 1)
        if not self.external:
            self.assertEqual(mine[0]["metadata"]["description"], "second")
        self.assertEqual(self.delete("/api/vhosts/" + q(vh)).status, 204)
        self.assertEqual(self.get("/api/vhosts/" + q(vh)).status, 404)
        self.assertEqual(self.delete("/api/vhosts/" + q(vh)).status, 404)
        self.assertNotIn(vh, [x["vhost"] for x in self.get_ok("/api/permissions")])

    def test_unknown_vhost(self):
        vh = self.unique("nosuch")
        for path in ("/api/vhosts/%s", "/api/vhosts/%s/permissions",
                     "/api/vhosts/%s/topic-permissions"):
            r = self.get(path % q(vh))
            self.assertEqual(r.status, 404, (path, r))
            self.assertEqual(r.json, {"error": "Object Not Found", "reason": "Not Found"})
        self.assertEqual(self.delete("/api/vhosts/" + q(vh)).status, 404)

    def test_bad_bodies(self):
        vh = self.mk_vhost()
        r = self.raw("PUT", "/api/vhosts/" + q(vh), b"{not json")
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json["reason"], "not_json")
        if not self.external:
            r = self.put("/api/vhosts/" + q(vh), {"tags": 5})
            self.assertEqual(r.status, 400, r)
            self.assertIn("tags", r.json["reason"])
            r = self.put("/api/vhosts/" + q(vh), {"tracing": True})
            self.assertEqual(r.status, 400, r)
            self.assertIn("tracing", r.json["reason"])
            r = self.put("/api/vhosts/" + q("a\x00b"), {})
            self.assertEqual(r.status, 400, r)
            r = self.put("/api/vhosts/" + q("v" * 256), {})
            self.assertEqual(r.status, 400, r)

    def test_listing_and_pagination(self):
        prefix = self.unique("pg")
        names = [self.mk_vhost(prefix + "-%d" % i) for i in range(3)]
        listed = self.get_ok("/api/vhosts")
        self.assertIsInstance(listed, list)
        self.assertLessEqual(set(names), {v["name"] for v in listed})
        self.assertEqual(nulls(listed), [])
        for v in listed:
            for k in ("name", "description", "tags", "tracing", "metadata"):
                self.assertIn(k, v)
        page = self.get_ok("/api/vhosts?page=1&page_size=2&name=%s" % q(prefix))
        self.assertEqual((page["filtered_count"], page["item_count"], page["page_count"]),
                         (3, 2, 2))
        self.assertEqual([v["name"] for v in page["items"]], names[:2])
        page = self.get_ok("/api/vhosts?page=2&page_size=2&name=%s" % q(prefix))
        self.assertEqual([v["name"] for v in page["items"]], names[2:])
        cols = self.get_ok("/api/vhosts?columns=name")
        self.assertTrue(all(set(v) == {"name"} for v in cols))
        r = self.get("/api/vhosts?page=0")
        self.assertEqual(r.status, 400, r)

    def test_message_counts(self):
        vh = self.mk_vhost()
        conn = self.vhost_conn(vh)
        try:
            ch = conn.channel()
            ch.queue_declare("counted")
            for i in range(3):
                ch.basic_publish("", "counted", b"m%d" % i)
            ch.basic_get("counted", auto_ack=False)

            def counts():
                v = self.get_ok("/api/vhosts/" + q(vh))
                c = (v.get("messages"), v.get("messages_ready"),
                     v.get("messages_unacknowledged"))
                return c == (3, 2, 1) and v
            v = self.wait_for(counts, timeout=30, what="vhost message counts")
            ms = v["message_stats"]
            self.assertEqual(ms["publish"], 3)
            self.assertEqual(ms["get"], 1)
            self.assertIn("rate", ms["publish_details"])
        finally:
            self.close_quietly(conn)


class TagsTest(AccessCase):
    def test_credentials(self):
        r = self.get("/api/vhosts", user=None)
        self.assertEqual(r.status, 401, r)
        self.assertIn("www-authenticate", {k.lower() for k in r.headers.keys()})
        r = self.get("/api/vhosts", user=("guest", "not-the-password"))
        self.assertEqual(r.status, 401, r)
        r = self.get("/api/users", user=(self.unique("nobody"), "x"))
        self.assertEqual(r.status, 401, r)
        plain = self.mk_user(tags="")
        r = self.get("/api/vhosts", user=(plain, "pw"))
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.json["reason"], "Not management user")

    def test_management_user_sees_its_vhosts(self):
        mine, other = self.mk_vhost(), self.mk_vhost()
        m = self.mk_user(tags="management", perms_on=[mine])
        names = [v["name"] for v in self.get_ok("/api/vhosts", user=(m, "pw"))]
        self.assertIn(mine, names)
        self.assertNotIn(other, names)
        self.assertEqual(self.get_ok("/api/whoami", user=(m, "pw")),
                         {"name": m, "tags": ["management"]})
        for path in ADMIN_ONLY_GETS + ("/api/vhosts/" + q(mine),
                                      "/api/definitions/" + q(mine)):
            r = self.get(path, user=(m, "pw"))
            self.assertEqual(r.status, 401, (path, r))
            self.assertEqual(r.json["reason"], "Not administrator user")
        self.assert_writes_refused((m, "pw"), mine)

    def test_monitoring_user(self):
        mine, other = self.mk_vhost(), self.mk_vhost()
        mon = self.mk_user(tags="monitoring")
        names = [v["name"] for v in self.get_ok("/api/vhosts", user=(mon, "pw"))]
        self.assertLessEqual({mine, other, "/"}, set(names))
        # RabbitMQ 3.10: everything else here is the administrator's.
        for path in ADMIN_ONLY_GETS:
            r = self.get(path, user=(mon, "pw"))
            self.assertEqual(r.status, 401, (path, r))
        self.assert_writes_refused((mon, "pw"), mine)

    def assert_writes_refused(self, who, vh):
        perms = {"configure": ".*", "write": ".*", "read": ".*"}
        tperms = {"exchange": "amq.topic", "write": ".*", "read": ".*"}
        u = self.unique("victim")
        for method, path, body in (
                ("PUT", "/api/vhosts/" + q(self.unique("new")), {}),
                ("DELETE", "/api/vhosts/" + q(vh), None),
                ("PUT", "/api/users/" + q(u), {"password": "x", "tags": ""}),
                ("DELETE", "/api/users/guest", None),
                ("POST", "/api/users/bulk-delete", {"users": ["guest"]}),
                ("PUT", "/api/permissions/%s/guest" % q(vh), perms),
                ("DELETE", "/api/permissions/%s/guest" % q(vh), None),
                ("PUT", "/api/topic-permissions/%s/guest" % q(vh), tperms),
                ("DELETE", "/api/topic-permissions/%s/guest" % q(vh), None),
                ("POST", "/api/definitions", {}),
                ("POST", "/api/definitions/" + q(vh), {})):
            r = self.api(method, path, body, user=who)
            self.assertEqual(r.status, 401, (method, path, r))
        self.assertEqual(self.get("/api/vhosts/" + q(vh)).status, 200)
        self.assertEqual(self.get("/api/users/" + q(u)).status, 404)
        self.assertEqual(self.get("/api/permissions/%s/guest" % q(vh)).status, 200)


class UsersTest(AccessCase):
    def test_create_show_update_delete(self):
        u = self.unique("user")
        self.addCleanup(self.delete, "/api/users/" + q(u))
        r = self.put("/api/users/" + q(u), {"password": "secret"})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json["reason"], "tags_not_present")
        self.assertEqual(self.get("/api/users/" + q(u)).status, 404)
        r = self.put("/api/users/" + q(u), {"password": "secret", "tags": "management,monitoring"})
        self.assertEqual(r.status, 201, r)
        x = self.get_ok("/api/users/" + q(u))
        self.assertEqual(set(x), {"name", "password_hash", "hashing_algorithm", "tags", "limits"})
        self.assertEqual(x["name"], u)
        self.assertEqual(x["tags"], ["management", "monitoring"])
        self.assertEqual(x["hashing_algorithm"], "rabbit_password_hashing_sha256")
        self.assertEqual(x["limits"], {})
        self.assertEqual(self.get_ok("/api/whoami", user=(u, "secret"))["name"], u)
        # tags as a list; a new password
        r = self.put("/api/users/" + q(u), {"password": "other", "tags": ["administrator"]})
        self.assertEqual(r.status, 204, r)
        self.assertEqual(self.get_ok("/api/users/" + q(u))["tags"], ["administrator"])
        self.assertEqual(self.get("/api/whoami", user=(u, "secret")).status, 401)
        self.assertEqual(self.get("/api/whoami", user=(u, "other")).status, 200)
        # a hash RabbitMQ computes the same way
        h = rabbit_hash("hashed")
        r = self.put("/api/users/" + q(u), {"password_hash": h, "tags": "administrator",
                                             "hashing_algorithm": "rabbit_password_hashing_sha256"})
        self.assertEqual(r.status, 204, r)
        self.assertEqual(self.get_ok("/api/users/" + q(u))["password_hash"], h)
        self.assertEqual(self.get("/api/whoami", user=(u, "hashed")).status, 200)
        r = self.put("/api/users/" + q(u), {"password": "a", "password_hash": h, "tags": ""})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json["reason"], "both_password_and_password_hash_are_provided")
        r = self.put("/api/users/" + q(u), {"password_hash": "not base64!", "tags": ""})
        self.assertEqual(r.status, 400, r)
        # Neither password nor hash: no usable password any more (as RabbitMQ).
        r = self.put("/api/users/" + q(u), {"tags": "administrator"})
        self.assertEqual(r.status, 204, r)
        self.assertEqual(self.get_ok("/api/users/" + q(u))["password_hash"], "")
        self.assertEqual(self.get("/api/whoami", user=(u, "hashed")).status, 401)
        self.assertEqual(self.delete("/api/users/" + q(u)).status, 204)
        self.assertEqual(self.get("/api/users/" + q(u)).status, 404)
        self.assertEqual(self.delete("/api/users/" + q(u)).status, 404)
        for path in ("/api/users/%s/permissions", "/api/users/%s/topic-permissions"):
            self.assertEqual(self.get(path % q(u)).status, 404)

    def test_bad_bodies(self):
        u = self.unique("bad")
        self.addCleanup(self.delete, "/api/users/" + q(u))
        r = self.raw("PUT", "/api/users/" + q(u), b"[1,")
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json["reason"], "not_json")
        if not self.external:  # RabbitMQ answers 500 to these, or stores them
            for body in ({"password": 5, "tags": ""}, {"password": "p", "tags": 5},
                         {"password_hash": "", "tags": "",
                          "hashing_algorithm": "rabbit_password_hashing_rot13"}):
                r = self.put("/api/users/" + q(u), body)
                self.assertEqual(r.status, 400, (body, r))
                self.assertIn("reason", r.json)
            self.assertEqual(self.get("/api/users/" + q(u)).status, 404)

    def test_listing_without_permissions_and_pagination(self):
        prefix = self.unique("lst")
        names = [self.mk_user(name="%s-%d" % (prefix, i)) for i in range(3)]
        vh = self.mk_vhost()
        r = self.put("/api/permissions/%s/%s" % (q(vh), q(names[0])),
                     {"configure": "", "write": "", "read": ""})
        self.assertEqual(r.status, 201, r)
        listed = self.get_ok("/api/users")
        self.assertLessEqual(set(names) | {"guest"}, {x["name"] for x in listed})
        self.assertEqual(nulls(listed), [])
        without = {x["name"] for x in self.get_ok("/api/users/without-permissions")}
        self.assertNotIn(names[0], without)
        self.assertLessEqual(set(names[1:]), without)
        self.assertNotIn("guest", without)
        if not self.external:  # RabbitMQ 3.10 does not paginate users
            page = self.get_ok("/api/users?page=2&page_size=2&name=%s" % q(prefix))
            self.assertEqual((page["filtered_count"], page["page_count"]), (3, 2))
            self.assertEqual([x["name"] for x in page["items"]], names[2:])

    def test_bulk_delete(self):
        names = [self.mk_user() for _ in range(3)]
        r = self.post("/api/users/bulk-delete", {"users": names[:2]})
        self.assertEqual(r.status, 204, r)
        self.assertEqual([self.get("/api/users/" + q(n)).status for n in names], [404, 404, 200])
        r = self.post("/api/users/bulk-delete", {})
        self.assertEqual(r.status, 400, r)
        r = self.raw("POST", "/api/users/bulk-delete", b"nope")
        self.assertEqual(r.status, 400, r)
        if not self.external:
            # all or nothing here (RabbitMQ deletes up to the unknown name)
            r = self.post("/api/users/bulk-delete", {"users": [names[2], self.unique("none")]})
            self.assertEqual(r.status, 400, r)
            self.assertIn("no_such_user", r.json["reason"])
            self.assertEqual(self.get("/api/users/" + q(names[2])).status, 200)

    def test_reserved_names(self):
        self.assertEqual(self.put("/api/users/without-permissions", {"tags": ""}).status, 405)
        self.assertEqual(self.delete("/api/users/bulk-delete").status, 405)
        self.assertEqual(self.get("/api/users/bulk-delete").status, 405)
        self.assertEqual(self.get("/api/users/without-permissions").status, 200)
        # The path decides before the login, as RabbitMQ's router does.
        self.assertEqual(self.put("/api/users/without-permissions", {"tags": ""},
                                  user=None).status, 405)
        self.assertEqual(self.delete("/api/users/bulk-delete", user=None).status, 405)
        self.assertEqual(self.get("/api/users/without-permissions", user=None).status, 401)

    def test_deleting_a_user_closes_its_connections(self):
        import pika
        u = self.mk_user(tags="", perms_on=["/"])
        conn = self.connect(credentials=pika.PlainCredentials(u, "pw"))
        guest = self.connect()
        try:
            ch = conn.channel()
            qn = ch.queue_declare("", exclusive=True).method.queue
            ch.basic_consume(qn, lambda *a: None)
            self.assertEqual(self.delete("/api/users/" + q(u)).status, 204)
            self.assert_forced(conn, "user '%s' is deleted" % u)
            gch = guest.channel()
            gq = gch.queue_declare("", exclusive=True).method.queue
            gch.basic_publish("", gq, b"alive")
            self.assertEqual(gch.basic_get(gq, auto_ack=True)[2], b"alive")
            self.assertEqual(self.get("/api/users/" + q(u)).status, 404)
            self.assertEqual([p for p in self.get_ok("/api/permissions") if p["user"] == u], [])
        finally:
            self.close_quietly(conn, guest)

    def test_deleting_oneself(self):
        u = self.mk_user(tags="administrator", password="me")
        r = self.delete("/api/users/" + q(u), user=(u, "me"))
        self.assertEqual(r.status, 204, r)
        self.assertEqual(self.get("/api/whoami", user=(u, "me")).status, 401)
        self.assertEqual(self.get("/api/whoami").status, 200)


class PermissionsTest(AccessCase):
    def test_permissions(self):
        vh = self.mk_vhost()
        u = self.mk_user()
        path = "/api/permissions/%s/%s" % (q(vh), q(u))
        self.assertEqual(self.get(path).status, 404)
        self.assertEqual(self.delete(path).status, 404)
        r = self.put(path, {"configure": "^c", "write": "^w"})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json["reason"], "[{key_missing,read}]")
        r = self.put(path, {"configure": "(", "write": "", "read": ""})
        self.assertEqual(r.status, 400, r)
        self.assertIn("reason", r.json)
        self.assertEqual(self.get(path).status, 404)
        r = self.raw("PUT", path, b"{")
        self.assertEqual(r.status, 400, r)
        r = self.put(path, {"configure": "^c", "write": "^w", "read": "^r"})
        self.assertEqual(r.status, 201, r)
        want = {"user": u, "vhost": vh, "configure": "^c", "write": "^w", "read": "^r"}
        self.assertEqual(self.get_ok(path), want)
        r = self.put(path, {"configure": ".*", "write": ".*", "read": "^r"})
        self.assertEqual(r.status, 204, r)
        want.update(configure=".*", write=".*")
        self.assertEqual(self.get_ok(path), want)
        self.assertIn(want, self.get_ok("/api/permissions"))
        self.assertEqual(self.get_ok("/api/users/%s/permissions" % q(u)), [want])
        self.assertIn(want, self.get_ok("/api/vhosts/%s/permissions" % q(vh)))
        self.assertNotIn(want, self.get_ok("/api/vhosts/%2F/permissions"))
        for p in ("/api/permissions/%s/%s" % (q(self.unique("novh")), q(u)),
                  "/api/permissions/%s/%s" % (q(vh), q(self.unique("nouser")))):
            r = self.put(p, {"configure": "", "write": "", "read": ""})
            self.assertEqual(r.status, 400, r)
            self.assertEqual(r.json["reason"], "vhost_or_user_not_found")
            self.assertEqual(self.get(p).status, 404)
            self.assertEqual(self.delete(p).status, 404)
        self.assertEqual(self.delete(path).status, 204)
        self.assertEqual(self.get(path).status, 404)
        self.assertEqual(self.get_ok("/api/users/%s/permissions" % q(u)), [])

    def test_topic_permissions(self):
        vh = self.mk_vhost()
        u = self.mk_user()
        path = "/api/topic-permissions/%s/%s" % (q(vh), q(u))
        self.assertEqual(self.get(path).status, 404)
        r = self.put(path, {"write": "^a", "read": "^b"})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json["reason"], "[{key_missing,exchange}]")
        r = self.put(path, {"exchange": "amq.topic", "write": "(", "read": ""})
        self.assertEqual(r.status, 400, r)
        r = self.put(path, {"exchange": "amq.topic", "write": "^a", "read": "^b"})
        self.assertEqual(r.status, 201, r)
        r = self.put(path, {"exchange": "amq.topic", "write": "^a", "read": "^c"})
        self.assertEqual(r.status, 204, r)
        r = self.put(path, {"exchange": "other", "write": "^x", "read": "^y"})
        self.assertEqual(r.status, 204, r)
        one = {"user": u, "vhost": vh, "exchange": "amq.topic", "write": "^a", "read": "^c"}
        two = {"user": u, "vhost": vh, "exchange": "other", "write": "^x", "read": "^y"}
        key = lambda x: x["exchange"]  # noqa: E731
        self.assertEqual(sorted(self.get_ok(path), key=key), [one, two])
        self.assertEqual(sorted(self.get_ok("/api/users/%s/topic-permissions" % q(u)), key=key),
                         [one, two])
        self.assertEqual(sorted(self.get_ok("/api/vhosts/%s/topic-permissions" % q(vh)),
                                key=key), [one, two])
        listed = self.get_ok("/api/topic-permissions")
        self.assertIn(one, listed)
        self.assertIn(two, listed)
        r = self.put("/api/topic-permissions/%s/%s" % (q(self.unique("novh")), q(u)),
                     {"exchange": "amq.topic", "write": "", "read": ""})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(self.delete(path).status, 204)
        self.assertEqual(self.get(path).status, 404)
        self.assertEqual(self.delete(path).status, 404)

    def test_permissions_take_effect(self):
        import pika
        vh = self.mk_vhost()
        u = self.mk_user()
        path = "/api/permissions/%s/%s" % (q(vh), q(u))
        with self.assertRaises(pika.exceptions.ProbableAccessDeniedError):
            self.vhost_conn(vh, u, "pw")
        self.assertEqual(self.put(path, {"configure": "^mine", "write": "", "read": ""}).status,
                         201)
        conn = self.vhost_conn(vh, u, "pw")
        try:
            ch = conn.channel()
            ch.queue_declare("mine-1")
            with self.assertRaises(pika.exceptions.ChannelClosedByBroker) as cm:
                ch.queue_declare("theirs")
            self.assertEqual(cm.exception.reply_code, 403)
        finally:
            self.close_quietly(conn)


class DefinitionsTest(AccessCase):
    def populate(self, vh):
        conn = self.vhost_conn(vh)
        try:
            ch = conn.channel()
            ch.exchange_declare("dx", "topic", durable=True)
            ch.queue_declare("dq", durable=True, arguments={"x-max-length": 5})
            ch.queue_bind("dq", "dx", "a.#")
        finally:
            conn.close()

    def test_vhost_round_trip(self):
        vh = self.mk_vhost()
        self.populate(vh)
        r = self.get("/api/definitions/" + q(vh))
        self.assertEqual(r.status, 200, r)
        first = r.json
        self.assertEqual(set(first), {"rabbit_version", "parameters", "policies", "queues",
                                      "exchanges", "bindings"})
        self.assertEqual([x["name"] for x in first["queues"]], ["dq"])
        self.assertEqual([x["name"] for x in first["exchanges"]], ["dx"])
        self.assertEqual(len(first["bindings"]), 1)
        for sect in ("queues", "exchanges", "bindings"):
            self.assertTrue(all("vhost" not in x for x in first[sect]), first[sect])
        # into a fresh vhost of the same name
        self.assertEqual(self.delete("/api/vhosts/" + q(vh)).status, 204)
        self.assertEqual(self.put("/api/vhosts/" + q(vh), {}).status, 201)
        self.assertEqual(self.get_ok("/api/definitions/" + q(vh))["queues"], [])
        r = self.post("/api/definitions/" + q(vh), first)
        self.assertIn(r.status, (201, 204), r)
        self.assertEqual(normalized(self.get_ok("/api/definitions/" + q(vh))), normalized(first))

    def test_vhost_import_forces_the_vhost(self):
        vh = self.mk_vhost()
        doc = {"queues": [{"name": "elsewhere", "vhost": "/", "durable": True,
                           "auto_delete": False, "arguments": {}}],
               "users": [{"name": self.unique("ignored"), "password_hash": "", "tags": ""}]}
        r = self.post("/api/definitions/" + q(vh), doc)
        self.assertIn(r.status, (201, 204), r)
        self.assertEqual([x["name"] for x in self.get_ok("/api/definitions/" + q(vh))["queues"]],
                         ["elsewhere"])
        self.assertNotIn("elsewhere", [x["name"] for x in self.get_ok("/api/definitions/%2F")
                                       ["queues"]])
        self.assertEqual(self.get("/api/users/" + q(doc["users"][0]["name"])).status, 404)

    def test_bad_documents(self):
        vh = self.mk_vhost()
        r = self.raw("POST", "/api/definitions", b"{\"vhosts\": [")
        self.assertEqual(r.status, 400, r)
        self.assertTrue(r.json["reason"])
        r = self.raw("POST", "/api/definitions/" + q(vh), b"nope")
        self.assertEqual(r.status, 400, r)
        r = self.post("/api/definitions/" + q(vh), {"queues": [
            {"name": "q", "durable": True, "auto_delete": False,
             "arguments": {"x-max-length": "many"}}]})
        self.assertEqual(r.status, 400, r)
        self.assertIn("x-max-length", r.json["reason"])
        novh = self.unique("novh")
        self.assertEqual(self.get("/api/definitions/" + q(novh)).status, 400)
        self.assertEqual(self.post("/api/definitions/" + q(novh), {}).status, 404)
        # A permission of an unknown user fails the import...
        newvh = self.unique("atomic")
        self.addCleanup(self.delete, "/api/vhosts/" + q(newvh))
        r = self.post("/api/definitions", {
            "vhosts": [{"name": newvh}],
            "permissions": [{"user": self.unique("nobody"), "vhost": newvh, "configure": "",
                             "write": "", "read": ""}]})
        self.assertEqual(r.status, 400, r)
        self.assertTrue(r.json["reason"])
        if not self.external:  # ...and changes nothing here (RabbitMQ keeps the vhost)
            self.assertEqual(self.get("/api/vhosts/" + q(newvh)).status, 404)

    def test_global_export_shape(self):
        r = self.get("/api/definitions?download=defs.json")
        self.assertEqual(r.status, 200, r)
        self.assertIn("attachment", r.headers.get("content-disposition", ""))
        d = r.json
        for k in ("rabbit_version", "users", "vhosts", "permissions", "topic_permissions",
                  "queues", "exchanges", "bindings", "policies", "parameters",
                  "global_parameters"):
            self.assertIn(k, d)
        self.assertIn("guest", [u["name"] for u in d["users"]])

    @unittest.skipIf(os.environ.get("WARREN_TEST_PORT"), "starts a second Warren")
    def test_global_round_trip_into_a_fresh_broker(self):
        vh = self.mk_vhost(body={"description": "exported", "tags": "t1"})
        self.populate(vh)
        u = self.mk_user(tags="management", perms_on=[vh])
        r = self.put("/api/topic-permissions/%s/%s" % (q(vh), q(u)),
                     {"exchange": "dx", "write": "^a", "read": "^b"})
        self.assertEqual(r.status, 201, r)
        first = self.get_ok("/api/definitions")
        port = harness.free_port()
        fresh = harness._start(("--mgmt-port", str(port)))
        saved = self.mgmt_port
        try:
            harness.wait_port(port, fresh.proc)
            self.mgmt_port = port
            r = self.post("/api/definitions", first)
            self.assertEqual(r.status, 204, r)
            second = self.get_ok("/api/definitions")
            self.assertEqual(normalized(second), normalized(first))
            self.assertEqual(self.get_ok("/api/vhosts/" + q(vh))["description"], "exported")
            self.assertEqual(self.get("/api/whoami", user=(u, "pw")).status, 200)
        finally:
            self.mgmt_port = saved
            harness._stop(fresh)
            text = fresh.log_text()
            import shutil
            shutil.rmtree(fresh.data_dir, ignore_errors=True)
        self.assertEqual(fresh.proc.returncode, 0, text[-3000:])


class VhostDeletionTest(AccessCase):
    """Deleting a vhost that is in use."""

    def test_delete_vhost_in_use(self):
        import pika
        vh = self.mk_vhost()
        persistent = pika.BasicProperties(delivery_mode=2)
        cons = self.vhost_conn(vh)
        pub = self.vhost_conn(vh)
        other = self.connect()
        try:
            # a consumer holding unacked deliveries, an exclusive queue
            cch = cons.channel()
            cch.exchange_declare("dx", "topic", durable=True)
            cch.queue_declare("dq", durable=True)
            cch.queue_declare("tq")
            cch.queue_bind("dq", "dx", "a.#")
            cch.queue_bind("tq", "dx", "#")
            cch.queue_declare("", exclusive=True)
            for i in range(20):
                cch.basic_publish("dx", "a.b", b"m%d" % i, persistent)
            cch.basic_qos(prefetch_count=5)
            got = []
            cch.basic_consume("dq", lambda ch, m, p, b: got.append(m.delivery_tag))
            deadline = time.monotonic() + 10
            while len(got) < 5 and time.monotonic() < deadline:
                cons.process_data_events(0.05)
            self.assertEqual(len(got), 5)
            # a publisher in confirm mode, and one on another vhost
            pch = pub.channel()
            pch.confirm_delivery()
            pch.basic_publish("dx", "a.c", b"confirmed", persistent)
            och = other.channel()
            oq = och.queue_declare("", exclusive=True).method.queue
            if not self.external:
                v = self.wait_for(lambda: (lambda v: v["messages"] == 42 and v)(
                    self.get_ok("/api/vhosts/" + q(vh))), what="the vhost's counts")
                self.assertEqual(v["messages_unacknowledged"], 5)

            self.assertEqual(self.delete("/api/vhosts/" + q(vh)).status, 204)
            self.assert_forced(cons, "vhost '%s'" % vh)
            self.assert_forced(pub, "vhost '%s'" % vh)
            och.basic_publish("", oq, b"still here")
            self.assertEqual(och.basic_get(oq, auto_ack=True)[2], b"still here")
            self.assertEqual(self.get("/api/vhosts/" + q(vh)).status, 404)
            self.assertNotIn(vh, [v["name"] for v in self.get_ok("/api/vhosts")])
            self.assertEqual([p for p in self.get_ok("/api/permissions") if p["vhost"] == vh], [])
            with self.assertRaises(pika.exceptions.ProbableAccessDeniedError):
                self.vhost_conn(vh)
        finally:
            self.close_quietly(cons, pub, other)
        if self.external:
            return
        # Nothing comes back after a restart, and a new vhost of that name
        # starts empty.
        harness.restart(self.broker)
        harness.wait_port(self.mgmt_port, self.broker.proc)
        self.assertEqual(self.get("/api/vhosts/" + q(vh)).status, 404)
        self.assertEqual(self.put("/api/vhosts/" + q(vh), {}).status, 201)
        self.assertEqual(self.get_ok("/api/definitions/" + q(vh))["queues"], [])
        conn = self.vhost_conn(vh)
        try:
            with self.assertRaises(pika.exceptions.ChannelClosedByBroker) as cm:
                conn.channel().queue_declare("dq", passive=True)
            self.assertEqual(cm.exception.reply_code, 404)
        finally:
            self.close_quietly(conn)
        self.assertIn("running", self.get_ok("/api/vhosts/%2F")["cluster_state"].values())

    @unittest.skipIf(os.environ.get("WARREN_TEST_PORT"), "restarts the broker")
    def test_what_the_api_set_survives_a_restart(self):
        vh = self.mk_vhost(body={"description": "kept", "tags": "x,y"})
        u = self.mk_user(tags="management", perms_on=[vh])
        gone = self.mk_user()
        r = self.put("/api/topic-permissions/%s/%s" % (q(vh), q(u)),
                     {"exchange": "amq.topic", "write": "^w", "read": "^r"})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.delete("/api/users/" + q(gone)).status, 204)
        before = self.get_ok("/api/definitions")
        harness.restart(self.broker)
        harness.wait_port(self.mgmt_port, self.broker.proc)
        v = self.get_ok("/api/vhosts/" + q(vh))
        self.assertEqual((v["description"], v["tags"]), ("kept", ["x", "y"]))
        self.assertEqual(self.get("/api/whoami", user=(u, "pw")).status, 200)
        self.assertEqual(self.get("/api/users/" + q(gone)).status, 404)
        self.assertEqual(normalized(self.get_ok("/api/definitions")), normalized(before))

    def test_delete_idle_vhost_then_reuse_name(self):
        import pika
        vh = self.mk_vhost(body={"description": "old", "tags": "t"})
        u = self.mk_user(perms_on=[vh])
        r = self.put("/api/topic-permissions/%s/%s" % (q(vh), q(u)),
                     {"exchange": "amq.topic", "write": "", "read": ""})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.delete("/api/vhosts/" + q(vh)).status, 204)
        self.assertEqual(self.put("/api/vhosts/" + q(vh), {}).status, 201)
        v = self.get_ok("/api/vhosts/" + q(vh))
        self.assertEqual((v["description"], v["tags"]), ("", []))
        self.assertEqual(self.get("/api/permissions/%s/%s" % (q(vh), q(u))).status, 404)
        self.assertEqual(self.get("/api/topic-permissions/%s/%s" % (q(vh), q(u))).status, 404)
        with self.assertRaises(pika.exceptions.ProbableAccessDeniedError):
            self.vhost_conn(vh, u, "pw")


if __name__ == "__main__":
    harness.main()
