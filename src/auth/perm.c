/*
 * perm.c - permission patterns with PCRE2; see perm.h for the semantics.
 */
#include "config.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <locale.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/perm.h"

/* Erlang's re:run default (match_limit); PCRE2's build default is the same
 * number, set here so a differently built library changes nothing. */
#define MATCH_LIMIT 10000000u
/* How much of a bad pattern the error text quotes. */
#define QUOTE_MAX 64

/*
 * Character tables. Erlang's re classifies bytes with ISO-8859-1 tables:
 * \w, [[:alpha:]], [[:upper:]] and (?i) know the Latin-1 letters, so the
 * first byte of "é" in UTF-8 (0xC3, "Ã") is a word character and an upper
 * case letter whose other case is 0xE3 (on RabbitMQ, "^\w\W$" admits a
 * queue named "é"). PCRE2's built-in tables are ASCII only. We take the
 * tables pcre2_maketables() builds in the C locale and give every byte
 * from 128 to 255 the classes of an ASCII byte of the same kind (a control
 * character, a punctuation mark, a lower or an upper case letter), which is
 * what the ISO-8859-1 tables say, and its Latin-1 case partner.
 *
 * pcre2_maketables()'s layout (PCRE2's documented binary tables, the same
 * since PCRE 1): 256 bytes to lower case, 256 bytes case flip, ten 32-byte
 * class bitmaps, 256 bytes of ctype flags. init_tables() checks a few known
 * entries before it trusts that and otherwise keeps PCRE2's own tables.
 */
#define LCC_OFF 0
#define FCC_OFF 256
#define CBITS_OFF 512
#define CBITS_MAPS 10
#define CTYPES_OFF (CBITS_OFF + 32 * CBITS_MAPS)
#define TABLES_LEN (CTYPES_OFF + 256)

static uint8_t latin1_tables[TABLES_LEN];
static const uint8_t *tables; /* latin1_tables once built, or NULL */
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static bool bit(const uint8_t *map, int c)
{
    return map[c / 8] & (1u << (c % 8));
}

/* Byte c gets donor's classes (every bitmap and the ctype flags). */
static void classify_as(uint8_t *t, int c, int donor)
{
    for (int k = 0; k < CBITS_MAPS; k++) {
        uint8_t *map = t + CBITS_OFF + 32 * k;
        if (bit(map, donor))
            map[c / 8] |= (uint8_t)(1u << (c % 8));
        else
            map[c / 8] &= (uint8_t)~(1u << (c % 8));
    }
    t[CTYPES_OFF + c] = t[CTYPES_OFF + donor];
}

static bool layout_plausible(const uint8_t *t)
{
    int cbits_set = 0;
    for (int k = 0; k < CBITS_MAPS; k++)
        cbits_set += bit(t + CBITS_OFF + 32 * k, 'g');
    /* 'g' is in [:lower:], [:word:], [:graph:], [:print:]: four maps */
    return t[LCC_OFF + 'A'] == 'a' && t[LCC_OFF + 'a'] == 'a' && t[FCC_OFF + 'A'] == 'a' &&
           t[FCC_OFF + 'a'] == 'A' && t[FCC_OFF + '!'] == '!' && cbits_set == 4 &&
           t[CTYPES_OFF + 'g'] != 0 && t[CTYPES_OFF + 0x01] == 0;
}

static void init_tables(void)
{
    locale_t c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    locale_t old = c_locale ? uselocale(c_locale) : (locale_t)0;
    const uint8_t *base = pcre2_maketables(NULL);

    if (c_locale) {
        uselocale(old);
        freelocale(c_locale);
    }
    if (!base)
        return; /* out of memory: PCRE2's ASCII tables, still safe */
    memcpy(latin1_tables, base, TABLES_LEN);
    pcre2_maketables_free(NULL, base);
    if (!layout_plausible(latin1_tables))
        return;
    for (int c = 128; c < 256; c++) {
        uint8_t *t = latin1_tables;
        int lower = c, flip = c, donor;
        if (c < 0xa0) {
            donor = 0x01; /* C1 controls */
        } else if (c == 0xaa || c == 0xb5 || c == 0xba || c == 0xdf || c == 0xff) {
            donor = 'g'; /* lower case with no upper case in Latin-1 */
        } else if (c >= 0xc0 && c <= 0xde && c != 0xd7) {
            donor = 'G';
            lower = flip = c + 32;
        } else if (c >= 0xe0 && c <= 0xfe && c != 0xf7) {
            donor = 'g';
            flip = c - 32;
        } else {
            donor = '!'; /* NBSP, the signs, multiplication and division */
        }
        classify_as(t, c, donor);
        t[LCC_OFF + c] = (uint8_t)lower;
        t[FCC_OFF + c] = (uint8_t)flip;
    }
    tables = latin1_tables;
}

struct wr_perm_re {
    pcre2_code *code;
    pcre2_match_data *md; /* one ovector pair: we never capture */
    pcre2_match_context *mctx;
    size_t src_len;
    char src[]; /* the pattern as given, then a NUL */
};

void wr_perm_re_free(struct wr_perm_re *re)
{
    if (!re)
        return;
    pcre2_match_context_free(re->mctx);
    pcre2_match_data_free(re->md);
    pcre2_code_free(re->code);
    free(re);
}

/* Compile `pat` (what PCRE sees) for a pattern whose source text is `src`.
 * One cleanup path: whatever is set in re is freed by wr_perm_re_free. */
static struct wr_perm_re *compile(const char *src, size_t src_len, const char *pat,
                                  size_t pat_len, struct wr_errbuf *err)
{
    struct wr_perm_re *re = calloc(1, sizeof(*re) + src_len + 1);
    pcre2_compile_context *cctx = NULL;
    int ecode = 0;
    PCRE2_SIZE eoff = 0;

    if (!re)
        goto nomem;
    if (src_len)
        memcpy(re->src, src, src_len);
    re->src_len = src_len;
    /* RabbitMQ's "" is "^$" (see perm.h). */
    if (pat_len == 0) {
        pat = "^$";
        pat_len = 2;
    }
    /* Erlang's re defaults: newline is LF, no UTF, no UCP, Latin-1. */
    pthread_once(&tables_once, init_tables);
    if (!(cctx = pcre2_compile_context_create(NULL)) ||
        pcre2_set_newline(cctx, PCRE2_NEWLINE_LF) != 0 ||
        (tables && pcre2_set_character_tables(cctx, tables) != 0))
        goto nomem;
    re->code = pcre2_compile((PCRE2_SPTR)pat, pat_len, 0, &ecode, &eoff, cctx);
    pcre2_compile_context_free(cctx);
    cctx = NULL;
    if (!re->code) {
        PCRE2_UCHAR msg[160];
        if (ecode == PCRE2_ERROR_NOMEMORY)
            goto nomem;
        if (pcre2_get_error_message(ecode, msg, sizeof(msg)) < 0)
            strcpy((char *)msg, "unknown error");
        wr_fail(err, WR_EPRECONDITION_FAILED,
                "regular expression '%.*s%s' is invalid: %s at offset %zu",
                (int)(pat_len > QUOTE_MAX ? QUOTE_MAX : pat_len), pat,
                pat_len > QUOTE_MAX ? "..." : "", (const char *)msg, (size_t)eoff);
        wr_perm_re_free(re);
        return NULL;
    }
    /* JIT is an optimisation: without it (no support, no executable
     * memory) pcre2_match interprets, with the same results. */
    (void)pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);
    if (!(re->md = pcre2_match_data_create(1, NULL)) ||
        !(re->mctx = pcre2_match_context_create(NULL)) ||
        pcre2_set_match_limit(re->mctx, MATCH_LIMIT) != 0)
        goto nomem;
    return re;

nomem:
    pcre2_compile_context_free(cctx);
    wr_perm_re_free(re);
    wr_fail(err, WR_ENOMEM, "out of memory compiling a permission pattern");
    return NULL;
}

struct wr_perm_re *wr_perm_re_compile(const char *pattern, size_t len, struct wr_errbuf *err)
{
    return compile(pattern, len, pattern, len, err);
}

/* Every non-overlapping occurrence of `key`, left to right, replaced by
 * rep (Erlang's binary:replace with [global]). Returns a malloc'd string
 * of *outn bytes, or NULL when out of memory. */
static char *replace_all(const char *s, size_t n, const char *key, const char *rep, size_t rn,
                         size_t *outn)
{
    size_t kn = strlen(key), count = 0, size;
    const char *p, *end = s + n;
    char *out, *o;

    for (p = s; (size_t)(end - p) >= kn && (p = memmem(p, (size_t)(end - p), key, kn)); p += kn)
        count++;
    /* size = n - count * kn + count * rn, refusing overflow */
    if (rn > kn && count > (SIZE_MAX - n - 1) / (rn - kn))
        return NULL;
    size = n - count * kn + count * rn;
    if (!(out = malloc(size + 1)))
        return NULL;
    for (o = out, p = s; p < end;) {
        const char *hit = (size_t)(end - p) >= kn ? memmem(p, (size_t)(end - p), key, kn) : NULL;
        size_t lit = (size_t)((hit ? hit : end) - p);
        memcpy(o, p, lit);
        o += lit;
        p += lit;
        if (!hit)
            break;
        if (rn)
            memcpy(o, rep, rn);
        o += rn;
        p += kn;
    }
    *o = '\0';
    *outn = size;
    return out;
}

struct wr_perm_re *wr_perm_re_compile_expanded(const char *pattern, size_t len, const char *user,
                                               size_t user_len, const char *vhost,
                                               size_t vhost_len, struct wr_errbuf *err)
{
    struct wr_perm_re *re = NULL;
    char *a = NULL, *b = NULL;
    size_t an = 0, bn = 0;

    /* RabbitMQ folds over #{<<"username">>, <<"vhost">>} in key order: the
     * user name goes in first, so a "{vhost}" inside it is expanded too. */
    if (!(a = replace_all(pattern ? pattern : "", len, "{username}", user, user_len, &an)) ||
        !(b = replace_all(a, an, "{vhost}", vhost, vhost_len, &bn)))
        wr_fail(err, WR_ENOMEM, "out of memory expanding a permission pattern");
    else
        re = compile(pattern, len, b, bn, err);
    free(a);
    free(b);
    return re;
}

bool wr_perm_re_match(const struct wr_perm_re *re, const char *s, size_t len)
{
    int rc;

    if (!s)
        s = "";
    rc = pcre2_match(re->code, (PCRE2_SPTR)s, len, 0, 0, re->md, re->mctx);
    /* A deeply backtracking pattern can outgrow the JIT's small default
     * stack where the interpreter (heap frames) would finish: retry there. */
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(re->code, (PCRE2_SPTR)s, len, 0, PCRE2_NO_JIT, re->md, re->mctx);
    /* Errors (match limit, invalid UTF under a pattern's own (*UTF)) are
     * no match, as in Erlang's re:run. */
    return rc >= 0;
}

const char *wr_perm_re_pattern(const struct wr_perm_re *re, size_t *len)
{
    *len = re->src_len;
    return re->src;
}
