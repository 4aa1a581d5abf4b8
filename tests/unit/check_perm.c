/*
 * check_perm.c - unit tests for permission patterns (RabbitMQ semantics).
 *
 * Every expectation here was checked against RabbitMQ 3.10.8 (Debian): by
 * `rabbitmqctl set_permissions` / `set_topic_permissions` and a pika client
 * declaring queues or publishing to amq.topic, or, for single bytes, with
 * `rabbitmqctl eval 're:run(Name, Pattern, [{capture, none}])'`, which is
 * the call rabbit_auth_backend_internal makes. The class tables at the end
 * are Erlang's answer for every byte 0-255.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/perm.h"

static struct wr_perm_re *re_c(const char *pattern)
{
    struct wr_errbuf e = {0};
    struct wr_perm_re *re = wr_perm_re_compile(pattern, strlen(pattern), &e);
    ck_assert_msg(re != NULL, "'%s' should compile: %s", pattern, e.text);
    return re;
}

/* Does pattern match name (both C strings)? */
static bool m(const char *pattern, const char *name)
{
    struct wr_perm_re *re = re_c(pattern);
    bool r = wr_perm_re_match(re, name, strlen(name));
    wr_perm_re_free(re);
    return r;
}

START_TEST(unanchored)
{
    ck_assert(m("mid", "amid.x"));
    ck_assert(m("mid", "mid"));
    ck_assert(m("mid", "xxmid"));
    ck_assert(!m("mid", "mi d"));
    ck_assert(!m("mid", "MID")); /* case-sensitive unless (?i) */
    ck_assert(m("(?i)mid", "aMiD"));
}
END_TEST

START_TEST(anchors)
{
    ck_assert(m("^amq\\.gen", "amq.gen-x"));
    ck_assert(!m("^amq\\.gen", "xamq.gen"));
    ck_assert(!m("^amq\\.gen", "amqxgen"));
    ck_assert(m("^q$", "q"));
    ck_assert(!m("^q$", "qq"));
    ck_assert(!m("^q$", "aq"));
    /* PCRE's $ also matches before a final newline (re:run: match) */
    ck_assert(m("^q$", "q\n"));
    ck_assert(!m("^q$", "q\nX"));
    /* . does not match a newline */
    ck_assert(!m("a.b", "a\nb"));
    ck_assert(m("a.b", "a\x01" "b"));
}
END_TEST

START_TEST(classes_and_groups)
{
    ck_assert(m("^\\d+$", "123"));
    ck_assert(!m("^\\d+$", "12a"));
    ck_assert(!m("^\\d+$", ""));
    ck_assert(m("^q\\d", "q1x"));
    /* negative lookahead: anything but amq.* */
    ck_assert(m("^(?!amq\\.).*", "foo"));
    ck_assert(m("^(?!amq\\.).*", "amqfoo"));
    ck_assert(!m("^(?!amq\\.).*", "amq.foo"));
    /* alternation with a group: the result is a match even though we
     * capture nothing (pcre2_match says 0: ovector too small) */
    const char *alt = "^(amq\\.gen.*|own\\..*)$";
    ck_assert(m(alt, "amq.gen-abc"));
    ck_assert(m(alt, "own.q"));
    ck_assert(!m(alt, "own"));
    ck_assert(!m(alt, "x.own.q"));
    ck_assert(m("^(a)(b)(c)(d)(e)$", "abcde"));
    /* .* matches everything, the empty name too */
    ck_assert(m(".*", "anything at all"));
    ck_assert(m(".*", ""));
    ck_assert(m("^.*$", "amq.default"));
}
END_TEST

/* RabbitMQ replaces "" with "^$": only the empty name matches. Resource
 * names never reach the check empty, but routing keys do: topic write ""
 * admitted routing key "" and refused "a". */
START_TEST(empty_pattern)
{
    struct wr_errbuf e = {0};
    struct wr_perm_re *re = wr_perm_re_compile("", 0, &e);
    size_t n;
    ck_assert_ptr_nonnull(re);
    ck_assert(wr_perm_re_match(re, "", 0));
    ck_assert(!wr_perm_re_match(re, "a", 1));
    ck_assert(!wr_perm_re_match(re, "amq.default", 11));
    ck_assert(!wr_perm_re_match(re, " ", 1));
    ck_assert(!wr_perm_re_match(re, "\0", 1));
    ck_assert(!wr_perm_re_match(re, "^$", 2));
    /* what export writes back is "", not "^$" */
    ck_assert_str_eq(wr_perm_re_pattern(re, &n), "");
    ck_assert_uint_eq(n, 0);
    wr_perm_re_free(re);
    /* a NULL pointer with length 0 is the empty pattern too */
    re = wr_perm_re_compile(NULL, 0, &e);
    ck_assert_ptr_nonnull(re);
    ck_assert(wr_perm_re_match(re, NULL, 0));
    ck_assert(!wr_perm_re_match(re, "x", 1));
    wr_perm_re_free(re);
}
END_TEST

START_TEST(compile_errors)
{
    static const struct {
        const char *pattern;
        const char *offset;
    } bad[] = {
        {"(", "at offset 1"},    {"a\\", "at offset 2"}, {"[a", "at offset 2"},
        {"*a", "at offset 0"},   {"a{2,1}", "at offset"}, {"(?<n", "at offset"},
        {"(?P<x>a)(?P<x>b)", "at offset"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct wr_errbuf e = {0};
        ck_assert_ptr_null(wr_perm_re_compile(bad[i].pattern, strlen(bad[i].pattern), &e));
        ck_assert_int_eq(e.code, WR_EPRECONDITION_FAILED);
        ck_assert_msg(strstr(e.text, "is invalid: ") != NULL, "%s", e.text);
        ck_assert_msg(strstr(e.text, bad[i].offset) != NULL, "%s", e.text);
        char quoted[64];
        snprintf(quoted, sizeof(quoted), "'%s'", bad[i].pattern);
        ck_assert_msg(strstr(e.text, quoted) != NULL, "%s", e.text);
    }
    struct wr_errbuf e = {0};
    ck_assert_ptr_null(wr_perm_re_compile("(", 1, &e));
    ck_assert_str_eq(e.text, "PRECONDITION_FAILED - regular expression '(' is invalid: missing "
                             "closing parenthesis at offset 1");
    /* a NULL errbuf is allowed */
    ck_assert_ptr_null(wr_perm_re_compile("(", 1, NULL));
    /* a long bad pattern is quoted in part; the text stays in its buffer */
    char big[2000];
    memset(big, '(', sizeof(big));
    ck_assert_ptr_null(wr_perm_re_compile(big, sizeof(big), &e));
    ck_assert(strstr(e.text, "...' is invalid") != NULL);
    ck_assert_uint_lt(strlen(e.text), sizeof(e.text));
}
END_TEST

/* Names are bytes and may hold NUL; so may patterns. */
START_TEST(nul_bytes)
{
    struct wr_perm_re *re = re_c("^a.b$");
    ck_assert(wr_perm_re_match(re, "a\0b", 3));
    ck_assert(!wr_perm_re_match(re, "a\0b", 2)); /* the length counts, not the NUL */
    ck_assert(!wr_perm_re_match(re, "a\0\0b", 4));
    wr_perm_re_free(re);

    re = re_c("^a$");
    ck_assert(wr_perm_re_match(re, "a", 1));
    ck_assert(!wr_perm_re_match(re, "a\0", 2));
    wr_perm_re_free(re);

    re = re_c("b");
    ck_assert(wr_perm_re_match(re, "\0\0b", 3)); /* found after the NULs */
    wr_perm_re_free(re);

    /* a NUL inside the pattern is a literal NUL */
    static const char p[] = "^a\0b$";
    struct wr_errbuf e = {0};
    size_t n;
    re = wr_perm_re_compile(p, sizeof(p) - 1, &e);
    ck_assert_ptr_nonnull(re);
    ck_assert(wr_perm_re_match(re, "a\0b", 3));
    ck_assert(!wr_perm_re_match(re, "ab", 2));
    ck_assert(!wr_perm_re_match(re, "a", 1));
    ck_assert(memcmp(wr_perm_re_pattern(re, &n), p, sizeof(p)) == 0);
    ck_assert_uint_eq(n, sizeof(p) - 1);
    wr_perm_re_free(re);
    ck_assert(m("^a\\x00b$", "a") == false);
}
END_TEST

/* RabbitMQ matches bytes: "^.$" refused a queue named "é" and "^..$"
 * admitted it; "^[é]$" refused it, "^é$" admitted it. */
START_TEST(utf8_is_bytes)
{
    const char *e_acute = "\xc3\xa9", *check_mark = "\xe2\x9c\x93";
    ck_assert(!m("^.$", e_acute));
    ck_assert(m("^..$", e_acute));
    ck_assert(!m("^.$", check_mark));
    ck_assert(m("^...$", check_mark));
    ck_assert(m("^.$", "a"));
    ck_assert(!m("^[\xc3\xa9]$", e_acute));
    ck_assert(m("^[\xc3\xa9]{2}$", e_acute));
    ck_assert(m("^\xc3\xa9$", e_acute));
    /* invalid UTF-8 is just bytes */
    ck_assert(m("^.$", "\xff"));
    ck_assert(m("^..$", "\xc3\x28"));
    /* a pattern may ask for UTF itself; invalid subjects then do not match
     * and nothing crashes */
    ck_assert(m("(*UTF)^.$", e_acute));
    ck_assert(!m("(*UTF)^.$", "\xff"));
    ck_assert(!m("(*UTF).*", "\xc3\x28"));
}
END_TEST

/* Erlang's tables are ISO-8859-1: on RabbitMQ "^\w\W$" and "^[[:upper:]]"
 * admitted a queue named "é" (0xC3 is "Ã"), "^\w+$" refused it. */
START_TEST(latin1_classes_on_rabbitmq)
{
    const char *e_acute = "\xc3\xa9";
    ck_assert(m("^\\w\\W$", e_acute));
    ck_assert(!m("^\\w+$", e_acute));
    ck_assert(m("^[[:upper:]]", "\xc3\x89p")); /* "Ép" */
    ck_assert(m("^[[:upper:]]", "\xc3\xa9p")); /* "ép" */
    ck_assert(!m("^\\w\\W$", "\xe2\x9c\x93"));
    ck_assert(m("(?i)^\xc3$", "\xe3"));
    ck_assert(!m("(?i)^\xdf$", "\xff"));
}
END_TEST

/* Erlang's re:run(<<B>>, <<"^", Class, "$">>) for every byte B, as 256-bit
 * maps (byte B is bit B % 8 of map byte B / 8), from `rabbitmqctl eval` on
 * RabbitMQ 3.10.8 (Erlang/OTP 25, Debian 12). */
static const struct {
    const char *cls;
    const char *map;
} erl_classes[] = {
    {"\\w", "000000000000ff03feffff87feffff070000000000042004ffff7fffffff7fff"},
    {"\\d", "000000000000ff03000000000000000000000000000000000000000000000000"},
    {"\\s", "003e000001000000000000000000000000000000000000000000000000000000"},
    {"[[:alpha:]]", "0000000000000000feffff07feffff070000000000042004ffff7fffffff7fff"},
    {"[[:upper:]]", "0000000000000000feffff07000000000000000000000000ffff7f7f00000000"},
    {"[[:lower:]]", "000000000000000000000000feffff07000000000004200400000080ffff7fff"},
    {"[[:punct:]]", "00000000feff00fc010000f80100007800000000fffbdffb0000800000008000"},
    {"[[:print:]]", "00000000ffffffffffffffffffffff7f00000000ffffffffffffffffffffffff"},
    {"[[:graph:]]", "00000000feffffffffffffffffffff7f00000000ffffffffffffffffffffffff"},
    {"[[:cntrl:]]", "ffffffff000000000000000000000080ffffffff000000000000000000000000"},
    {"[[:xdigit:]]", "000000000000ff037e0000007e00000000000000000000000000000000000000"},
    {"[[:space:]]", "003e000001000000000000000000000000000000000000000000000000000000"},
    {"[[:alnum:]]", "000000000000ff03feffff07feffff070000000000042004ffff7fffffff7fff"},
    {"\\h", "0002000001000000000000000000000000000000010000000000000000000000"},
    {"\\v", "003c000000000000000000000000000020000000000000000000000000000000"},
    {"[[:blank:]]", "0002000001000000000000000000000000000000000000000000000000000000"},
    {"[[:word:]]", "000000000000ff03feffff87feffff070000000000042004ffff7fffffff7fff"},
};

static bool map_bit(const char *hex, int b)
{
    unsigned v;
    char two[3] = {hex[2 * (b / 8)], hex[2 * (b / 8) + 1], 0};
    sscanf(two, "%x", &v);
    return v & (1u << (b % 8));
}

START_TEST(byte_classes_match_erlang)
{
    for (size_t i = 0; i < sizeof(erl_classes) / sizeof(erl_classes[0]); i++) {
        char pat[32];
        snprintf(pat, sizeof(pat), "^%s$", erl_classes[i].cls);
        struct wr_perm_re *re = re_c(pat);
        for (int b = 0; b < 256; b++) {
            char c = (char)b;
            ck_assert_msg(wr_perm_re_match(re, &c, 1) == map_bit(erl_classes[i].map, b),
                          "%s on byte 0x%02x", erl_classes[i].cls, b);
        }
        wr_perm_re_free(re);
    }
}
END_TEST

/* Erlang's (?i) pairs exactly A-Z/a-z and the Latin-1 letters 0xC0-0xDE
 * (not 0xD7) with 0xE0-0xFE (not 0xF7); every other byte matches only
 * itself. */
START_TEST(caseless_pairs_match_erlang)
{
    for (int b = 0; b < 256; b++) {
        char pat[16];
        int partner = -1;
        if ((b >= 'A' && b <= 'Z') || (b >= 0xc0 && b <= 0xde && b != 0xd7))
            partner = b + 32;
        else if ((b >= 'a' && b <= 'z') || (b >= 0xe0 && b <= 0xfe && b != 0xf7))
            partner = b - 32;
        snprintf(pat, sizeof(pat), "(?i)^\\x{%x}$", (unsigned)b);
        struct wr_perm_re *re = re_c(pat);
        for (int x = 0; x < 256; x++) {
            char c = (char)x;
            ck_assert_msg(wr_perm_re_match(re, &c, 1) == (x == b || x == partner),
                          "(?i) 0x%02x against 0x%02x", b, x);
        }
        wr_perm_re_free(re);
    }
}
END_TEST

static bool mx(const char *pattern, const char *user, const char *vhost, const char *name)
{
    struct wr_errbuf e = {0};
    struct wr_perm_re *re = wr_perm_re_compile_expanded(pattern, strlen(pattern), user,
                                                        strlen(user), vhost, strlen(vhost), &e);
    ck_assert_msg(re != NULL, "'%s' should compile: %s", pattern, e.text);
    bool r = wr_perm_re_match(re, name, strlen(name));
    size_t n;
    ck_assert_str_eq(wr_perm_re_pattern(re, &n), pattern); /* unexpanded */
    wr_perm_re_free(re);
    return r;
}

START_TEST(expansion)
{
    ck_assert(mx("^{username}$", "bob", "/", "bob"));
    ck_assert(!mx("^{username}$", "bob", "/", "bobby"));
    ck_assert(mx("^{vhost}\\.", "bob", "prod", "prod.x"));
    ck_assert(!mx("^{vhost}\\.", "bob", "prod", "dev.x"));
    ck_assert(mx("^{username}\\.{vhost}\\.{username}$", "bob", "v", "bob.v.bob"));
    ck_assert(mx("^x{username}{username}$", "ab", "/", "xabab"));
    /* an empty user name or vhost just disappears */
    ck_assert(mx("^a{username}b$", "", "/", "ab"));
    /* not placeholders: other names, unclosed, nested */
    ck_assert(mx("^{user}$", "bob", "/", "{user}"));
    ck_assert(mx("^{username$", "bob", "/", "{username"));
    ck_assert(mx("^{{username}}$", "bob", "/", "{bob}"));
    /* the empty pattern is "^$" before expansion */
    ck_assert(mx("", "bob", "/", ""));
    ck_assert(!mx("", "bob", "/", "bob"));
}
END_TEST

/* Values go in without regex escaping: on RabbitMQ user "a.b" with topic
 * write "^{username}$" published with routing keys "a.b", "axb", "a_b". */
START_TEST(expansion_is_not_escaped)
{
    ck_assert(mx("^{username}$", "a.b", "/", "a.b"));
    ck_assert(mx("^{username}$", "a.b", "/", "axb"));
    ck_assert(mx("^{username}$", "a.b", "/", "a_b"));
    ck_assert(!mx("^{username}$", "a.b", "/", "ab"));
    ck_assert(mx("^{username}$", "a+", "/", "aaa"));
    ck_assert(mx("^{vhost}$", "u", "v|w", "w"));
    /* a user name that breaks the expanded pattern: no pattern, an error
     * naming the expansion (RabbitMQ: 541 INTERNAL_ERROR on publish) */
    struct wr_errbuf e = {0};
    ck_assert_ptr_null(wr_perm_re_compile_expanded("^{username}$", 12, "(", 1, "/", 1, &e));
    ck_assert_int_eq(e.code, WR_EPRECONDITION_FAILED);
    ck_assert_msg(strstr(e.text, "'^($'") != NULL, "%s", e.text);
    /* the unexpanded pattern itself compiles */
    struct wr_perm_re *re = re_c("^{username}$");
    ck_assert(wr_perm_re_match(re, "{username}", 10));
    ck_assert(!wr_perm_re_match(re, "a.b", 3));
    wr_perm_re_free(re);
}
END_TEST

/* "{username}" is replaced first, then "{vhost}" in the result: on RabbitMQ
 * user "u{vhost}" with "^{username}$" on vhost "/" published with "u/" and
 * was refused "u{vhost}"; on vhost "v{username}", "^{vhost}$" admitted
 * "v{username}" and refused "va.b" for user "a.b". */
START_TEST(expansion_order)
{
    ck_assert(mx("^{username}$", "u{vhost}", "/", "u/"));
    ck_assert(!mx("^{username}$", "u{vhost}", "/", "u{vhost}"));
    ck_assert(mx("^{vhost}$", "a.b", "v{username}", "v{username}"));
    ck_assert(!mx("^{vhost}$", "a.b", "v{username}", "va.b"));
    /* a user named "{username}" is not expanded again */
    ck_assert(mx("^{username}$", "{username}", "/", "{username}"));
}
END_TEST

/* NUL bytes in the user name or vhost go in as bytes too. */
START_TEST(expansion_binary)
{
    struct wr_errbuf e = {0};
    struct wr_perm_re *re = wr_perm_re_compile_expanded("^{username}@{vhost}$", 20, "a\0b", 3,
                                                        "v\0", 2, &e);
    ck_assert_ptr_nonnull(re);
    ck_assert(wr_perm_re_match(re, "a\0b@v\0", 6));
    ck_assert(!wr_perm_re_match(re, "a@v", 3));
    wr_perm_re_free(re);
    /* a long name (255 bytes, a shortstr's most) repeated many times */
    char user[255], pat[500], subj[255 * 40 + 1];
    memset(user, 'u', sizeof(user));
    size_t pn = 0;
    for (int i = 0; i < 40; i++)
        pn += (size_t)sprintf(pat + pn, "{username}");
    memset(subj, 'u', sizeof(subj) - 1);
    re = wr_perm_re_compile_expanded(pat, pn, user, sizeof(user), "/", 1, &e);
    ck_assert_msg(re != NULL, "%s", e.text);
    ck_assert(wr_perm_re_match(re, subj, sizeof(subj) - 1));
    ck_assert(!wr_perm_re_match(re, subj, sizeof(subj) - 2));
    wr_perm_re_free(re);
}
END_TEST

/* Catastrophic backtracking stops at the match limit and counts as no
 * match, as Erlang's re:run answers nomatch for "^(a+)+$" on 40 a's and b. */
START_TEST(backtracking_is_bounded)
{
    char s[41];
    memset(s, 'a', 40);
    s[40] = 'b';
    struct wr_perm_re *re = re_c("^(a+)+$");
    ck_assert(!wr_perm_re_match(re, s, sizeof(s)));
    ck_assert(wr_perm_re_match(re, s, 40));
    wr_perm_re_free(re);
}
END_TEST

/* Compile/free in a loop: LeakSanitizer (make check-sanitizers) sees any
 * block that is not returned, the failing paths included. */
START_TEST(many_compiles)
{
    for (int i = 0; i < 10000; i++) {
        struct wr_errbuf e = {0};
        char pat[64];
        int n = snprintf(pat, sizeof(pat), "^(q%d|{username}\\.\\d+)$", i);
        struct wr_perm_re *re = wr_perm_re_compile(pat, (size_t)n, &e);
        ck_assert_ptr_nonnull(re);
        ck_assert(!wr_perm_re_match(re, "x", 1));
        wr_perm_re_free(re);
        re = wr_perm_re_compile_expanded(pat, (size_t)n, "bob", 3, "/", 1, &e);
        ck_assert_ptr_nonnull(re);
        ck_assert(wr_perm_re_match(re, "bob.42", 6));
        wr_perm_re_free(re);
        ck_assert_ptr_null(wr_perm_re_compile("(", 1, &e));
        ck_assert_ptr_null(wr_perm_re_compile_expanded("^{username}$", 12, "(", 1, "/", 1, &e));
    }
    wr_perm_re_free(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("perm");
    TCase *t = tcase_create("perm");
    tcase_set_timeout(t, 60); /* the loops run slowly under ASan */
    tcase_add_test(t, unanchored);
    tcase_add_test(t, anchors);
    tcase_add_test(t, classes_and_groups);
    tcase_add_test(t, empty_pattern);
    tcase_add_test(t, compile_errors);
    tcase_add_test(t, nul_bytes);
    tcase_add_test(t, utf8_is_bytes);
    tcase_add_test(t, latin1_classes_on_rabbitmq);
    tcase_add_test(t, byte_classes_match_erlang);
    tcase_add_test(t, caseless_pairs_match_erlang);
    tcase_add_test(t, expansion);
    tcase_add_test(t, expansion_is_not_escaped);
    tcase_add_test(t, expansion_order);
    tcase_add_test(t, expansion_binary);
    tcase_add_test(t, backtracking_is_bounded);
    tcase_add_test(t, many_compiles);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
