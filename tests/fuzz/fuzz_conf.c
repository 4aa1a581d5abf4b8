/*
 * fuzz_conf.c - libFuzzer target for the warren.conf parser.
 *
 * Besides "does not crash", it checks the parser's promises: every problem
 * reported is one non-empty line, a failure always comes with one, and
 * every value of a successful parse prints back to text that parses to the
 * same value (what wr_conf_print shows is what the broker uses).
 */
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "fuzz.h"

static void one_line(void *arg, const struct wr_conf_error *e)
{
    (void)arg;
    if (e->msg[0] == '\0' || memchr(e->msg, '\0', sizeof e->msg) == NULL ||
        strchr(e->msg, '\n') != NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wr_conf c, again;
    struct wr_conf_error err;
    struct wr_conf_report r = {.fn = one_line};
    size_t n;
    const struct wr_conf_setting *s = wr_conf_settings(&n);

    wr_conf_init(&c);
    memset(&err, 0, sizeof err);
    if (wr_conf_parse_report(&c, (const char *)data, size, "fuzz.conf", &r) < 0) {
        if (r.errors == 0 || r.first.msg[0] == '\0')
            abort();
        return 0;
    }
    (void)wr_conf_check(&c, &err);

    wr_conf_init(&again);
    for (size_t i = 0; i < n; i++) {
        char v1[2048], v2[2048];
        if (wr_conf_format(&c, &s[i], v1, sizeof v1) < 0)
            abort();
        if (wr_conf_set(&again, s[i].name, v1, &err) < 0)
            abort();
        if (wr_conf_format(&again, &s[i], v2, sizeof v2) < 0 || strcmp(v1, v2) != 0)
            abort();
    }
    return 0;
}
