/*
 * check_defs.c - unit tests of the definitions parser, checker, importer
 * and exporter (store/defs.c).
 *
 * Every failing import must leave the broker exactly as it was: each case
 * compares the broker's export before and after. The error must name the
 * entry and the field. Hostile input gets the usual treatment: truncations
 * of a valid document at every byte, garbage, and a file over the cap.
 * JSON in this file is written with ' for " (see J()).
 */
#include "config.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "auth/auth.h"
#include "broker/broker.h"
#include "broker/vhost.h"
#include "conf/conf.h"
#include "core/err.h"
#include "store/defs.h"

static struct wr_conf conf;
static struct wr_broker *b;
static struct wr_defs_err err;

static void setup(void)
{
    wr_conf_init(&conf);
    b = wr_broker_new(NULL, &conf);
    ck_assert_ptr_nonnull(b);
    memset(&err, 0, sizeof err);
}

static void teardown(void)
{
    wr_broker_free(b);
    b = NULL;
}

/* 'x' -> "x": JSON without backslashes in C. Returns a static buffer. */
static const char *J(const char *s)
{
    static char buf[1 << 16];
    size_t n = strlen(s);
    ck_assert_uint_lt(n, sizeof buf);
    for (size_t i = 0; i <= n; i++)
        buf[i] = s[i] == '\'' ? '"' : s[i];
    return buf;
}

static int import_mode(struct wr_broker *br, const char *text, enum wr_defs_mode mode)
{
    struct wr_defs *d = wr_defs_parse(text, strlen(text), "test.json", &err);
    int rc;
    if (!d)
        return WR_EIO;
    rc = wr_defs_import(br, d, mode, &err);
    wr_defs_free(d);
    return rc;
}

static int import(const char *text)
{
    return import_mode(b, text, WR_DEFS_IMPORT);
}

static void same_text(const char *a, const char *c);

/* The import fails with a message starting with `want`, and changes
 * nothing. */
static void refused(const char *text, const char *want)
{
    char *before = wr_defs_export(b), *after;
    int rc = import(text);
    ck_assert_msg(rc == WR_ESYNTAX, "accepted (rc %d): %s", rc, text);
    ck_assert_msg(strncmp(err.msg, want, strlen(want)) == 0, "got '%s', want '%s...'", err.msg,
                  want);
    after = wr_defs_export(b);
    ck_assert_ptr_nonnull(before);
    ck_assert_ptr_nonnull(after);
    if (strcmp(before, after) != 0)
        fprintf(stderr, "refused: %s\n", text);
    same_text(before, after);
    free(before);
    free(after);
}

static bool login(const char *user, const char *pass)
{
    struct wr_user *u;
    struct wr_errbuf e;
    return wr_users_login(b->users, wr_str_c(user), wr_str_c(pass), &u, &e) == 0;
}

/* Two exports are the same (on a difference both go to /tmp for diff:
 * Check cannot print texts this long). */
static void same_text(const char *a, const char *c)
{
    if (strcmp(a, c) != 0) {
        FILE *f = fopen("/tmp/check_defs.a.json", "w");
        if (f) {
            fputs(a, f);
            fclose(f);
        }
        f = fopen("/tmp/check_defs.b.json", "w");
        if (f) {
            fputs(c, f);
            fclose(f);
        }
        ck_abort_msg("exports differ: diff /tmp/check_defs.a.json /tmp/check_defs.b.json");
    }
}

/* ---- a good document ---- */

/* Hashes made by RabbitMQ 3.10.8 (tests/integ/fixtures): alice's password
 * is alice-secret (SHA-256), dave's dave-512 (SHA-512), erin's erin-md5. */
#define ALICE "0tVbhPj0l58JaF5oqX79eP7CJHDs2cn1Vo+VRHkfqwLo1BFc"
#define DAVE                                                                                      \
    "mB8+7PNp2VRvAI+brJ5cnAMUGZ6cvjAvfU+22dWzntWfcMm6wHnnAF8qmFIdTyKwxsW1/GGeF1/H01uVLb7BWj7fJKw="
#define ERIN "A2zdGpdg9DkEPvOOMCPDXQ/TpaQ="

static const char good[] =
    "{'rabbit_version': '3.10.8',"
    " 'users': ["
    "  {'name': 'alice', 'password_hash': '" ALICE "',"
    "   'hashing_algorithm': 'rabbit_password_hashing_sha256', 'tags': ['management'],"
    "   'limits': {'max-channels': 10}},"
    "  {'name': 'dave', 'password_hash': '" DAVE "',"
    "   'hashing_algorithm': 'rabbit_password_hashing_sha512', 'tags': 'a, b'},"
    "  {'name': 'erin', 'password_hash': '" ERIN "',"
    "   'hashing_algorithm': 'rabbit_password_hashing_md5', 'tags': []},"
    "  {'name': 'pat', 'password': 'clear-pw', 'tags': ''}],"
    " 'vhosts': [{'name': '/'}, {'name': 'prod', 'limits': [['max-connections', 100]],"
    "   'metadata': {'description': 'production', 'tags': 'blue'}}],"
    " 'permissions': [{'user': 'alice', 'vhost': 'prod', 'configure': '.*', 'write': '.*',"
    "   'read': '.*'}, {'user': 'dave', 'vhost': '/', 'configure': '', 'write': '^amq\\\\.',"
    "   'read': '^d'}],"
    " 'topic_permissions': [{'user': 'alice', 'vhost': 'prod', 'exchange': 'amq.topic',"
    "   'write': '^{username}\\\\.', 'read': '.*'}],"
    " 'policies': [{'vhost': 'prod', 'name': 'p1', 'pattern': '^ttl', 'apply-to': 'queues',"
    "   'definition': {'message-ttl': 1000}, 'priority': 0}],"
    " 'parameters': [], 'global_parameters': [{'name': 'g', 'value': 1}],"
    " 'exchanges': ["
    "  {'name': 'events', 'vhost': 'prod', 'type': 'topic', 'durable': true,"
    "   'auto_delete': false, 'internal': false, 'arguments': {}},"
    "  {'name': 'hdr', 'vhost': 'prod', 'type': 'headers', 'durable': true,"
    "   'auto_delete': false, 'internal': true, 'arguments': {'alternate-exchange': 'events'}},"
    "  {'name': 'gone', 'vhost': 'prod', 'type': 'fanout', 'durable': false,"
    "   'auto_delete': false, 'arguments': {}}],"
    " 'queues': ["
    "  {'name': 'q1', 'vhost': 'prod', 'durable': true, 'auto_delete': false,"
    "   'arguments': {'x-max-length': 10, 'x-queue-mode': 'lazy'}, 'type': 'classic'},"
    "  {'name': 'q2', 'vhost': '/', 'durable': true, 'auto_delete': true, 'arguments': {}},"
    "  {'name': 'tmp', 'vhost': '/', 'durable': false, 'auto_delete': false, 'arguments': {}}],"
    " 'bindings': ["
    "  {'source': 'events', 'vhost': 'prod', 'destination': 'q1', 'destination_type': 'queue',"
    "   'routing_key': 'a.#', 'arguments': {}},"
    "  {'source': 'events', 'vhost': 'prod', 'destination': 'hdr',"
    "   'destination_type': 'exchange', 'routing_key': '#', 'arguments': {}},"
    "  {'source': 'hdr', 'vhost': 'prod', 'destination': 'q1', 'destination_type': 'queue',"
    "   'routing_key': '', 'arguments': {'x-match': 'any', 'k': 'v'}},"
    "  {'source': 'amq.topic', 'vhost': 'prod', 'destination': 'q1',"
    "   'destination_type': 'queue', 'routing_key': 'x', 'arguments': {}},"
    "  {'source': 'nosuch', 'vhost': 'prod', 'destination': 'q1', 'destination_type': 'queue',"
    "   'routing_key': 'x', 'arguments': {}}]}";

START_TEST(imports_a_document)
{
    struct wr_vhost *prod, *root;
    struct wr_queue *q1;
    struct wr_exchange *hdr;
    struct wr_user *u;

    ck_assert_msg(import(J(good)) == 0, "%s", err.msg);
    prod = wr_broker_vhost(b, WR_STR("prod"));
    root = wr_broker_vhost(b, WR_STR("/"));
    ck_assert_ptr_nonnull(prod);
    ck_assert_ptr_nonnull(root);
    ck_assert_uint_eq(wr_users_count(b->users), 4);
    /* The passwords RabbitMQ hashed still work, in all three algorithms. */
    ck_assert(login("alice", "alice-secret"));
    ck_assert(!login("alice", "alice-secreT"));
    ck_assert(login("dave", "dave-512"));
    ck_assert(login("erin", "erin-md5"));
    ck_assert(login("pat", "clear-pw"));
    u = wr_users_get(b->users, WR_STR("dave"));
    ck_assert(wr_user_has_tag(u, "a") && wr_user_has_tag(u, "b"));
    u = wr_users_get(b->users, WR_STR("alice"));
    ck_assert(wr_user_has_tag(u, "management"));
    ck_assert_ptr_nonnull(wr_user_vperm(u, WR_STR("prod")));
    ck_assert_ptr_null(wr_user_vperm(u, WR_STR("/")));
    ck_assert(wr_user_topic_allows(u, WR_STR("prod"), WR_STR("amq.topic"), WR_PERM_WRITE,
                                   WR_STR("alice.x")));
    ck_assert(!wr_user_topic_allows(u, WR_STR("prod"), WR_STR("amq.topic"), WR_PERM_WRITE,
                                    WR_STR("bob.x")));
    /* Objects, transient ones skipped as RabbitMQ skips them. */
    q1 = wr_vhost_queue(prod, WR_STR("q1"));
    ck_assert_ptr_nonnull(q1);
    ck_assert(q1->durable);
    ck_assert_uint_ne(q1->store_id, 0);
    ck_assert_ptr_nonnull(wr_vhost_queue(root, WR_STR("q2")));
    ck_assert_ptr_null(wr_vhost_queue(root, WR_STR("tmp")));
    ck_assert_ptr_null(wr_vhost_exchange(prod, WR_STR("gone")));
    hdr = wr_vhost_exchange(prod, WR_STR("hdr"));
    ck_assert_ptr_nonnull(hdr);
    ck_assert(hdr->internal);
    ck_assert_ptr_eq(hdr->type, &wr_xtype_headers);
}
END_TEST

/* Journal identities differ across vhosts (issue 10): each vhost draws
 * from its own range. */
START_TEST(queue_ids_unique_across_vhosts)
{
    struct wr_queue *a, *c;
    ck_assert_msg(import(J("{'vhosts': [{'name': 'v1'}, {'name': 'v2'}],"
                           " 'queues': [{'name': 'q', 'vhost': 'v1', 'arguments': {}},"
                           "            {'name': 'q', 'vhost': 'v2', 'arguments': {}}]}")) == 0,
                  "%s", err.msg);
    a = wr_vhost_queue(wr_broker_vhost(b, WR_STR("v1")), WR_STR("q"));
    c = wr_vhost_queue(wr_broker_vhost(b, WR_STR("v2")), WR_STR("q"));
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_ne(a->store_id, 0);
    ck_assert_uint_ne(c->store_id, 0);
    ck_assert_uint_ne(a->store_id, c->store_id);
}
END_TEST

/* ---- refusals ---- */

/* One entry per section, each field of which the test replaces with a
 * value of the wrong type. */
static const char *const sections[][2] = {
    {"users", "{'name': 'u', 'password_hash': '', 'hashing_algorithm': "
              "'rabbit_password_hashing_sha256', 'tags': 'x', 'password': 'p'}"},
    {"vhosts", "{'name': 'v', 'warren_last_queue_id': 1}"},
    {"permissions", "{'user': 'guest', 'vhost': '/', 'configure': '', 'write': '', 'read': ''}"},
    {"topic_permissions",
     "{'user': 'guest', 'vhost': '/', 'exchange': 'x', 'write': '', 'read': ''}"},
    {"exchanges", "{'name': 'x', 'vhost': '/', 'type': 'direct', 'durable': true, "
                  "'auto_delete': false, 'internal': false, 'arguments': {}, "
                  "'arguments_raw': ''}"},
    {"queues", "{'name': 'q', 'vhost': '/', 'durable': true, 'auto_delete': false, 'arguments': "
               "{}, 'arguments_raw': '', 'type': 'classic', 'warren_id': 5}"},
    {"bindings", "{'source': 'amq.direct', 'vhost': '/', 'destination': 'q', "
                 "'destination_type': 'queue', 'routing_key': 'k', 'arguments': {}, "
                 "'arguments_raw': ''}"},
};

START_TEST(wrong_type_in_every_field)
{
    unsigned cases = 0;
    /* A user "guest" and a vhost "/" for the entries to name. */
    ck_assert_int_eq(wr_users_put_password(b->users, WR_STR("guest"), WR_STR("guest"),
                                           WR_STR(""), NULL),
                     0);
    ck_assert_ptr_nonnull(wr_broker_vhost_add(b, WR_STR("/")));

    for (size_t s = 0; s < sizeof sections / sizeof sections[0]; s++) {
        json_t *e = json_loads(J(sections[s][1]), 0, NULL), *v;
        const char *key;
        char doc[4096];
        ck_assert_ptr_nonnull(e);

        /* As given, the entry is good. */
        snprintf(doc, sizeof doc, "{\"%s\": [%s]}", sections[s][0], J(sections[s][1]));
        {
            struct wr_defs *d = wr_defs_parse(doc, strlen(doc), "t", &err);
            ck_assert_ptr_nonnull(d);
            ck_assert_msg(wr_defs_check(b, d, WR_DEFS_IMPORT, &err) == 0, "%s: %s", doc,
                          err.msg);
            wr_defs_free(d);
        }
        json_object_foreach(e, key, v)
        {
            /* A string where a string is expected becomes a number, and
             * anything else becomes a string (or, for tags, an object). */
            json_t *w = json_copy(e);
            char want[128], *ent, *text;
            json_object_set_new(w, key, json_is_string(v) ? json_integer(7)
                                                          : json_string("seven"));
            if (strcmp(key, "tags") == 0)
                json_object_set_new(w, key, json_object());
            ent = json_dumps(w, JSON_COMPACT);
            text = malloc(strlen(ent) + 64);
            sprintf(text, "{\"%s\": [%s]}", sections[s][0], ent);
            snprintf(want, sizeof want, "%s[0]", sections[s][0]);
            refused(text, want);
            snprintf(want, sizeof want, "%s: ", key);
            ck_assert_msg(strstr(err.msg, want) != NULL, "'%s' does not name %s", err.msg, key);
            free(text);
            free(ent);
            json_decref(w);
            cases++;
        }
        /* The entry itself of the wrong type, and the section. */
        snprintf(doc, sizeof doc, "{\"%s\": [[]]}", sections[s][0]);
        refused(doc, sections[s][0]);
        ck_assert_msg(strstr(err.msg, "[0]: not an object") != NULL, "%s", err.msg);
        snprintf(doc, sizeof doc, "{\"%s\": {}}", sections[s][0]);
        refused(doc, sections[s][0]);
        ck_assert_msg(strstr(err.msg, ": not an array") != NULL, "%s", err.msg);
        json_decref(e);
    }
    ck_assert_uint_ge(cases, 35);
    refused("[]", "not a JSON object");
    refused("{\"policies\": [1]}", "policies[0]: not an object");
    refused("{\"warren_queue_id_ranges\": \"x\"}", "warren_queue_id_ranges");
    /* A missing required field. */
    refused(J("{'users': [{'password_hash': ''}]}"), "users[0]: name: missing");
    refused(J("{'exchanges': [{'name': 'x', 'vhost': '/'}]}"),
            "exchanges[0] (name 'x', vhost '/'): type: missing");
}
END_TEST

START_TEST(unknown_hashing_algorithm)
{
    refused(J("{'users': [{'name': 'ok', 'password_hash': ''},"
              " {'name': 'bob', 'password_hash': '', "
              "'hashing_algorithm': 'rabbit_password_hashing_sha1'}]}"),
            "users[1] (name 'bob'): hashing_algorithm: unknown hashing algorithm "
            "'rabbit_password_hashing_sha1'");
    ck_assert_uint_eq(wr_users_count(b->users), 0);
}
END_TEST

START_TEST(hash_not_base64)
{
    refused(J("{'users': [{'name': 'a'}, {'name': 'b'}, {'name': 'c'},"
              " {'name': 'bob', 'password_hash': 'not*base64'}]}"),
            "users[3] (name 'bob'): password_hash: not base64");
    /* The wrong length, or "", is kept and matches nothing (as RabbitMQ). */
    ck_assert_int_eq(import(J("{'users': [{'name': 'x', 'password_hash': 'AAAA'},"
                              " {'name': 'y', 'password_hash': ''}]}")),
                     0);
    ck_assert(!login("x", ""));
    ck_assert(!login("y", ""));
}
END_TEST

START_TEST(pattern_that_does_not_compile)
{
    ck_assert_ptr_nonnull(wr_broker_vhost_add(b, WR_STR("/")));
    refused(J("{'users': [{'name': 'u', 'password_hash': ''}],"
              " 'permissions': [{'user': 'u', 'vhost': '/', 'configure': '.*', 'write': '(',"
              " 'read': ''}]}"),
            "permissions[0] (user 'u', vhost '/'): write: regular expression '(' is invalid");
    refused(J("{'users': [{'name': 'u', 'password_hash': ''}],"
              " 'topic_permissions': [{'user': 'u', 'vhost': '/', 'exchange': 'amq.topic',"
              " 'write': '', 'read': '[a-'}]}"),
            "topic_permissions[0] (user 'u', vhost '/', exchange 'amq.topic'): read: regular "
            "expression");
    /* Good before expansion, not after: the user's name is "(". */
    refused(J("{'users': [{'name': '(', 'password_hash': ''}],"
              " 'topic_permissions': [{'user': '(', 'vhost': '/', 'exchange': 'amq.topic',"
              " 'write': '^{username}$', 'read': ''}]}"),
            "topic_permissions[0] (user '(', vhost '/', exchange 'amq.topic'): write: regular "
            "expression '^($' is invalid");
    ck_assert_uint_eq(wr_users_count(b->users), 0);
}
END_TEST

START_TEST(vhost_or_user_missing)
{
    refused(J("{'queues': [{'name': 'q', 'vhost': 'nope', 'durable': true, 'arguments': {}}]}"),
            "queues[0] (name 'q', vhost 'nope'): vhost: no such vhost");
    refused(J("{'exchanges': [{'name': 'x', 'vhost': 'nope', 'type': 'direct'}]}"),
            "exchanges[0] (name 'x', vhost 'nope'): vhost: no such vhost");
    refused(J("{'bindings': [{'source': 'x', 'vhost': 'nope', 'destination': 'q',"
              " 'destination_type': 'queue', 'routing_key': ''}]}"),
            "bindings[0] (source 'x', destination 'q', vhost 'nope'): vhost: no such vhost");
    refused(J("{'users': [{'name': 'u'}], 'permissions': [{'user': 'u', 'vhost': 'nope',"
              " 'configure': '', 'write': '', 'read': ''}]}"),
            "permissions[0] (user 'u', vhost 'nope'): vhost: no such vhost");
    refused(J("{'vhosts': [{'name': 'v'}], 'permissions': [{'user': 'ghost', 'vhost': 'v',"
              " 'configure': '', 'write': '', 'read': ''}]}"),
            "permissions[0] (user 'ghost', vhost 'v'): user: no such user");
    ck_assert_ptr_null(wr_broker_vhost(b, WR_STR("v")));
    /* A vhost in the file, or in the broker, will do. */
    ck_assert_int_eq(import(J("{'vhosts': [{'name': 'v'}], 'queues': [{'name': 'q',"
                              " 'vhost': 'v', 'arguments': {}}]}")),
                     0);
    ck_assert_int_eq(import(J("{'queues': [{'name': 'q2', 'vhost': 'v'}]}")), 0);
}
END_TEST

START_TEST(objects_checked_as_declare_checks_them)
{
    ck_assert_ptr_nonnull(wr_broker_vhost_add(b, WR_STR("/")));
    refused(J("{'exchanges': [{'name': 'x', 'vhost': '/', 'type': 'nosuch'}]}"),
            "exchanges[0] (name 'x', vhost '/'): type: unknown exchange type 'nosuch'");
    refused(J("{'exchanges': [{'name': 'x', 'vhost': '/', 'type': 'direct',"
              " 'arguments': {'alternate-exchange': 5}}]}"),
            "exchanges[0] (name 'x', vhost '/'): arguments: alternate-exchange");
    refused(J("{'queues': [{'name': 'q', 'vhost': '/', 'arguments': {'x-max-length': 'ten'}}]}"),
            "queues[0] (name 'q', vhost '/'): arguments: invalid arg 'x-max-length'");
    refused(J("{'queues': [{'name': '', 'vhost': '/'}]}"), "queues[0] (name '', vhost '/'): name");
    refused(J("{'exchanges': [{'name': 'h', 'vhost': '/', 'type': 'headers'}],"
              " 'queues': [{'name': 'q', 'vhost': '/'}],"
              " 'bindings': [{'source': 'h', 'vhost': '/', 'destination': 'q',"
              " 'destination_type': 'queue', 'routing_key': '',"
              " 'arguments': {'x-match': 'some'}}]}"),
            "bindings[0] (source 'h', destination 'q', vhost '/'): arguments: invalid binding");
    refused(J("{'bindings': [{'source': 'amq.direct', 'vhost': '/', 'destination': 'q',"
              " 'destination_type': 'table', 'routing_key': ''}]}"),
            "bindings[0] (source 'amq.direct', destination 'q', vhost '/'): destination_type");
    refused(J("{'queues': [{'name': 'q', 'vhost': '/', 'arguments_raw': 'zz'}]}"),
            "queues[0] (name 'q', vhost '/'): arguments_raw: not hex");
    refused(J("{'queues': [{'name': 'q', 'vhost': '/', 'arguments_raw': '01'}]}"),
            "queues[0] (name 'q', vhost '/'): arguments_raw: not a field table");
    {
        char big[400];
        memset(big, 'a', 300);
        big[300] = '\0';
        char doc[600];
        snprintf(doc, sizeof doc, "{\"queues\": [{\"name\": \"%s\", \"vhost\": \"/\"}]}", big);
        refused(doc, "queues[0]: name: longer than 255 bytes");
    }
    /* Reserved and default names are skipped, not refused (as RabbitMQ). */
    ck_assert_int_eq(import(J("{'exchanges': [{'name': 'amq.mine', 'vhost': '/', 'type': "
                              "'direct'}, {'name': '', 'vhost': '/', 'type': 'direct'}]}")),
                     0);
    ck_assert_ptr_null(wr_vhost_exchange(wr_broker_vhost(b, WR_STR("/")), WR_STR("amq.mine")));
}
END_TEST

/* RabbitMQ keeps what exists; so do we (no 406 from an import). */
START_TEST(existing_objects_kept)
{
    struct wr_vhost *vh;
    struct wr_queue *q;
    ck_assert_int_eq(import(J("{'vhosts': [{'name': '/'}], 'queues': [{'name': 'q', 'vhost': "
                              "'/', 'arguments': {'x-max-length': 1}}]}")),
                     0);
    vh = wr_broker_vhost(b, WR_STR("/"));
    q = wr_vhost_queue(vh, WR_STR("q"));
    ck_assert_int_eq(import(J("{'queues': [{'name': 'q', 'vhost': '/', 'auto_delete': true,"
                              " 'arguments': {'x-max-length': 2}}]}")),
                     0);
    ck_assert_ptr_eq(wr_vhost_queue(vh, WR_STR("q")), q);
    ck_assert(!q->auto_delete);
}
END_TEST

/* A bad entry after good ones: nothing of the file is applied. */
START_TEST(all_or_nothing)
{
    ck_assert_int_eq(wr_users_put_password(b->users, WR_STR("alice"), WR_STR("old"), WR_STR(""),
                                           NULL),
                     0);
    refused(J("{'vhosts': [{'name': 'new'}],"
              " 'users': [{'name': 'alice', 'password': 'new'}, {'name': 'zed'}],"
              " 'queues': [{'name': 'q', 'vhost': 'new'}],"
              " 'bindings': [{'source': 'amq.direct', 'vhost': 'new', 'destination': 'q',"
              " 'destination_type': 'queue', 'routing_key': 'k', 'arguments': []}]}"),
            "bindings[0] (source 'amq.direct', destination 'q', vhost 'new'): arguments: not an "
            "object");
    ck_assert(login("alice", "old"));
    ck_assert_ptr_null(wr_users_get(b->users, WR_STR("zed")));
    ck_assert_ptr_null(wr_broker_vhost(b, WR_STR("new")));
}
END_TEST

START_TEST(ten_thousand_users)
{
    size_t cap = 10000 * 300 + 1000, o = 0;
    char *doc = malloc(cap);
    struct timespec t0, t1;
    double secs;

    ck_assert_ptr_nonnull(doc);
    o += (size_t)sprintf(doc + o, "{\"vhosts\": [{\"name\": \"/\"}], \"users\": [");
    for (int i = 0; i < 10000; i++)
        o += (size_t)sprintf(doc + o,
                             "%s{\"name\": \"user%05d\", \"password_hash\": \"" ALICE
                             "\", \"hashing_algorithm\": \"rabbit_password_hashing_sha256\", "
                             "\"tags\": [\"monitoring\"]}",
                             i ? "," : "", i);
    o += (size_t)sprintf(doc + o, "], \"permissions\": [");
    for (int i = 0; i < 10000; i++)
        o += (size_t)sprintf(doc + o,
                             "%s{\"user\": \"user%05d\", \"vhost\": \"/\", \"configure\": "
                             "\"^user%05d\\\\.\", \"write\": \".*\", \"read\": \".*\"}",
                             i ? "," : "", i, i);
    sprintf(doc + o, "]}");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_msg(import(doc) == 0, "%s", err.msg);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    fprintf(stderr, "check_defs: 10,000 users with a permission each imported in %.2f s\n",
            secs);
    ck_assert_uint_eq(wr_users_count(b->users), 10000);
    ck_assert(login("user09999", "alice-secret"));
    {
        struct wr_user *u = wr_users_get(b->users, WR_STR("user04242"));
        const struct wr_vperm *p = wr_user_vperm(u, WR_STR("/"));
        ck_assert_ptr_nonnull(p);
        ck_assert(wr_vperm_allows(p, WR_PERM_CONFIGURE, "queue", WR_STR("user04242.q")));
        ck_assert(!wr_vperm_allows(p, WR_PERM_CONFIGURE, "queue", WR_STR("user04243.q")));
    }
    free(doc);
    /* And the export holds them all. */
    doc = wr_defs_export(b);
    ck_assert_ptr_nonnull(doc);
    ck_assert_ptr_nonnull(strstr(doc, "\"user09999\""));
    free(doc);
}
END_TEST

/* ---- export ---- */

/* Export, then the same document recovered into an empty broker, exports
 * the same bytes; imported into another (new journal identities), the
 * same definitions. */
START_TEST(export_round_trip)
{
    char *one, *two, *three;
    struct wr_broker *b2 = wr_broker_new(NULL, &conf), *b3 = wr_broker_new(NULL, &conf);
    json_t *j1, *j3;

    ck_assert_msg(import(J(good)) == 0, "%s", err.msg);
    one = wr_defs_export(b);
    ck_assert_ptr_nonnull(one);
    ck_assert_msg(import_mode(b2, one, WR_DEFS_RECOVER) == 0, "%s", err.msg);
    two = wr_defs_export(b2);
    same_text(one, two);
    ck_assert_msg(import_mode(b3, one, WR_DEFS_IMPORT) == 0, "%s", err.msg);
    three = wr_defs_export(b3);
    j1 = json_loads(one, 0, NULL);
    j3 = json_loads(three, 0, NULL);
    ck_assert(json_equal(j1, j3)); /* same ranges drawn in the same order */

    /* What the export holds, in RabbitMQ's shape. */
    ck_assert_str_eq(json_string_value(json_object_get(j1, "rabbit_version")), "3.10.8");
    ck_assert_int_eq(json_array_size(json_object_get(j1, "users")), 4);
    ck_assert_int_eq(json_array_size(json_object_get(j1, "queues")), 2);
    ck_assert_int_eq(json_array_size(json_object_get(j1, "exchanges")), 2);
    ck_assert_int_eq(json_array_size(json_object_get(j1, "bindings")), 4);
    ck_assert_int_eq(json_array_size(json_object_get(j1, "policies")), 1);
    ck_assert_int_eq(json_array_size(json_object_get(j1, "global_parameters")), 1);
    ck_assert_ptr_nonnull(strstr(one, "\"max-channels\": 10"));   /* user limits kept */
    ck_assert_ptr_nonnull(strstr(one, "\"description\": \"production\""));
    ck_assert_ptr_nonnull(strstr(one, "\"password_hash\": \"" DAVE "\""));
    ck_assert_ptr_nonnull(strstr(one, "\"rabbit_password_hashing_md5\""));
    ck_assert_ptr_null(strstr(one, "clear-pw")); /* never a clear password */
    json_decref(j1);
    json_decref(j3);
    free(one);
    free(two);
    free(three);
    wr_broker_free(b2);
    wr_broker_free(b3);
}
END_TEST

/* Names that are not Unicode, arguments of types JSON has not: the raw
 * forms carry the exact bytes back. */
START_TEST(raw_names_and_arguments)
{
    struct wr_vhost *vh = wr_broker_vhost_add(b, WR_STR("/"));
    struct wr_broker *b2 = wr_broker_new(NULL, &conf);
    static const char qname[] = "q\xed\xa0\x80z"; /* a UTF-16 surrogate: not JSON */
    static const uint8_t args[] = {5, 'x', '-', 'a', 'b', 'c', 'I', 0, 0, 0, 7};
    struct wr_queue_decl d = {.name = {qname, 5},
                              .args = {(const char *)args, sizeof args},
                              .durable = true};
    struct wr_queue *q, *q2;
    bool created;
    struct wr_errbuf e;
    char *one, *two;

    ck_assert_int_eq(wr_vhost_queue_declare(vh, &d, &q, &created, &e), 0);
    one = wr_defs_export(b);
    ck_assert_ptr_nonnull(strstr(one, "\"name_raw\": \"71eda0807a\""));
    ck_assert_ptr_nonnull(strstr(one, "\"arguments_raw\": \"05782d61626349""00000007\""));
    ck_assert_msg(import_mode(b2, one, WR_DEFS_RECOVER) == 0, "%s", err.msg);
    q2 = wr_vhost_queue(wr_broker_vhost(b2, WR_STR("/")), (struct wr_str){qname, 5});
    ck_assert_ptr_nonnull(q2);
    ck_assert_uint_eq(q2->args.len, sizeof args);
    ck_assert_mem_eq(q2->args.ptr, args, sizeof args);
    ck_assert_uint_eq(q2->store_id, q->store_id);
    two = wr_defs_export(b2);
    same_text(one, two);
    free(one);
    free(two);
    wr_broker_free(b2);

    /* Importing, an edited "arguments" wins over a raw form that no longer
     * says the same. */
    ck_assert_int_eq(import(J("{'queues': [{'name': 'e', 'vhost': '/', 'arguments': "
                              "{'x-abc': 8}, 'arguments_raw': '05782d6162634900000007'}]}")),
                     0);
    q = wr_vhost_queue(vh, WR_STR("e"));
    ck_assert_ptr_nonnull(q);
    ck_assert_uint_eq(q->args.len, 15); /* x-abc as a 64-bit 'l' */
    ck_assert_int_eq(q->args.ptr[6], 'l');
    ck_assert_int_eq(q->args.ptr[14], 8);
}
END_TEST

/* Kept sections merge by identity on a second import. */
START_TEST(kept_sections_merge)
{
    char *t;
    ck_assert_int_eq(import(J("{'vhosts': [{'name': 'v'}], 'policies': [{'vhost': 'v', 'name': "
                              "'p', 'pattern': 'a'}, {'vhost': 'v', 'name': 'q', 'pattern': "
                              "'b'}]}")),
                     0);
    ck_assert_int_eq(import(J("{'policies': [{'vhost': 'v', 'name': 'p', 'pattern': 'c'}]}")),
                     0);
    t = wr_defs_export(b);
    ck_assert_ptr_null(strstr(t, "\"pattern\": \"a\""));
    ck_assert_ptr_nonnull(strstr(t, "\"pattern\": \"b\""));
    ck_assert_ptr_nonnull(strstr(t, "\"pattern\": \"c\""));
    free(t);
}
END_TEST

/* ---- hostile input ---- */

START_TEST(not_json)
{
    struct wr_defs *d = wr_defs_parse("{\n \"users\": [\n  {\"name\": }\n]}", 30, "f.json", &err);
    ck_assert_ptr_null(d);
    ck_assert_msg(strncmp(err.msg, "f.json: line 3, column ", 23) == 0, "%s", err.msg);
}
END_TEST

START_TEST(truncated_everywhere)
{
    const char *doc = J(good);
    size_t n = strlen(doc);
    char *copy = malloc(n);
    for (size_t len = 0; len < n; len++) {
        struct wr_defs *d;
        memcpy(copy, doc, len); /* exact size: ASan sees an overread */
        d = wr_defs_parse(copy, len, "t", &err);
        ck_assert_msg(d == NULL, "a prefix of %zu bytes parsed", len);
        ck_assert_ptr_nonnull(strstr(err.msg, "line "));
    }
    free(copy);
}
END_TEST

START_TEST(garbage)
{
    uint32_t seed = 12345;
    char buf[512];
    char *before = wr_defs_export(b);
    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(round % 512);
        struct wr_defs *d;
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            /* Mostly JSON punctuation, so some of it parses. */
            buf[i] = "{}[]\",:0aet n\\u"[(seed >> 16) % 16];
            if ((seed >> 8) % 7 == 0)
                buf[i] = (char)(seed >> 24);
        }
        d = wr_defs_parse(buf, len, "g", &err);
        if (d) {
            (void)wr_defs_import(b, d, WR_DEFS_IMPORT, &err);
            wr_defs_free(d);
        }
    }
    free(before);
}
END_TEST

START_TEST(oversized_file)
{
    char path[] = "/tmp/check_defs_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    /* Sparse: no 256 MiB written. */
    ck_assert_int_eq(ftruncate(fd, (off_t)WR_DEFS_FILE_MAX + 1), 0);
    close(fd);
    ck_assert_ptr_null(wr_defs_read(path, &err));
    ck_assert_msg(strstr(err.msg, "file too large") != NULL, "%s", err.msg);
    unlink(path);
    ck_assert_ptr_null(wr_defs_read("/nonexistent/defs.json", &err));
    ck_assert_msg(strstr(err.msg, "cannot open") != NULL, "%s", err.msg);
    ck_assert_ptr_null(wr_defs_read("/", &err));
    ck_assert_msg(strstr(err.msg, "not a regular file") != NULL, "%s", err.msg);
}
END_TEST

static Suite *defs_suite(void)
{
    Suite *s = suite_create("defs");
    TCase *tc = tcase_create("import");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, imports_a_document);
    tcase_add_test(tc, queue_ids_unique_across_vhosts);
    tcase_add_test(tc, wrong_type_in_every_field);
    tcase_add_test(tc, unknown_hashing_algorithm);
    tcase_add_test(tc, hash_not_base64);
    tcase_add_test(tc, pattern_that_does_not_compile);
    tcase_add_test(tc, vhost_or_user_missing);
    tcase_add_test(tc, objects_checked_as_declare_checks_them);
    tcase_add_test(tc, existing_objects_kept);
    tcase_add_test(tc, all_or_nothing);
    tcase_add_test(tc, ten_thousand_users);
    suite_add_tcase(s, tc);

    tc = tcase_create("export");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, export_round_trip);
    tcase_add_test(tc, raw_names_and_arguments);
    tcase_add_test(tc, kept_sections_merge);
    suite_add_tcase(s, tc);

    tc = tcase_create("hostile");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, not_json);
    tcase_add_test(tc, truncated_everywhere);
    tcase_add_test(tc, garbage);
    tcase_add_test(tc, oversized_file);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(defs_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
