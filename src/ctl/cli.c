/*
 * cli.c - warrenctl's command line: the table of commands and flags (the
 * help text and the shell completion are generated from it, so the help,
 * the parser, the completion and the man page's check agree), the parser
 * (global flags, then VERB [NOUN], then the command's flags in any order),
 * the connection set-up and the dispatch.
 *
 * A flag before the verb is global; after it, the command's own flags come
 * first, then the global ones (so "declare user --password P" is the new
 * user's password, "warrenctl --password P declare user ..." the login).
 */
#include "config.h"

#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/version.h"
#include "ctl/ctl.h"

struct flagdef {
    const char *name;
    const char *meta; /* NULL: a switch */
    const char *help;
    const char *scope; /* "verb noun" it belongs to, NULL: any */
};

static const struct flagdef global_flags[] = {
    {"url", "URL", "API base URL (default http://127.0.0.1:15672)", NULL},
    {"host", "HOST", "API host, overriding the URL's", NULL},
    {"port", "PORT", "API port, overriding the URL's", NULL},
    {"vhost", "VHOST", "virtual host (default /)", NULL},
    {"username", "USER", "login user (default guest)", NULL},
    {"password", "PASS", "login password (default guest)", NULL},
    {"node", "NAME", "section of the configuration file to use", NULL},
    {"config", "FILE", "configuration file (default ~/.config/warren/warrenctl.conf)", NULL},
    {"format", "FMT", "output: table (default), tsv or json", NULL},
    {"tls", NULL, "use https (as an https:// URL does)", NULL},
    {"cacert", "FILE", "CA certificates for https (default: the system's)", NULL},
    {"help", NULL, "print help and exit", NULL},
    {"version", NULL, "print the version and exit", NULL},
    {NULL, NULL, NULL, NULL},
};

static const struct flagdef cmd_flags[] = {
    {"password", "PASS", "the new user's password", "declare user"},
    {"vhost", "VHOST", "export only this virtual host", "definitions export"},
    {"vhost", "VHOST", "import into this virtual host only", "definitions import"},
    {"name", "NAME", "the object's name", NULL},
    {"type", "TYPE", "queue type (classic, quorum, stream) or exchange type", NULL},
    {"durable", NULL, "survives a broker restart", NULL},
    {"auto-delete", NULL, "deleted when its last consumer or binding goes", NULL},
    {"internal", NULL, "no direct publishing, only through other exchanges", NULL},
    {"arg", "K=V", "an argument (integers and true/false typed), repeatable", NULL},
    {"source", "X", "source exchange", NULL},
    {"destination", "D", "destination queue or exchange", NULL},
    {"destination-type", "T", "queue (default) or exchange", NULL},
    {"routing-key", "KEY", "routing key (default empty)", NULL},
    {"tags", "T1,T2", "user tags, comma-separated", NULL},
    {"user", "USER", "user name", NULL},
    {"configure", "RE", "configure permission pattern", NULL},
    {"write", "RE", "write permission pattern", NULL},
    {"read", "RE", "read permission pattern", NULL},
    {"exchange", "X", "exchange (default: the default exchange)", NULL},
    {"if-unused", NULL, "only if it has no consumers (queue) or bindings (exchange)", NULL},
    {"if-empty", NULL, "only if it holds no messages", NULL},
    {"payload", "TEXT", "message body (else --file, else standard input)", NULL},
    {"file", "FILE", "file to read (or write, for export); - for standard input/output",
     NULL},
    {"property", "K=V", "message property (delivery_mode=2, content_type=...), repeatable",
     NULL},
    {"header", "K=V", "message header (typed as --arg), repeatable", NULL},
    {"queue", "Q", "queue name", NULL},
    {"count", "N", "how many messages (default 1)", NULL},
    {"ack", NULL, "remove the messages got", NULL},
    {"requeue", NULL, "put the messages back (the default)", NULL},
    {"reason", "TEXT", "reason given to the client", NULL},
    {"password-new", "PASS", "the new password (else read from standard input)", NULL},
    {"columns", "A,B", "columns to show (the API's field names, dotted for nested)", NULL},
    {"sort", "COL", "sort by this column (server side)", NULL},
    {"filter", "REGEX", "keep rows whose name matches (POSIX extended regex)", NULL},
    {"count", "N", "how many messages (default 1, at most 10000)", "queue peek"},
    {"count", "N", "how many messages (default: all)", "queue move"},
    {"count", "N", "how many messages (default: all; 10000 with --dry-run)", "dlq replay"},
    {"from", "Q", "the queue to take the messages from", NULL},
    {"to", "Q", "the queue to put them in (same vhost)", NULL},
    {"dry-run", NULL, "only show what would be done", NULL},
    {NULL, NULL, NULL, NULL},
};

#define LIST_FLAGS "columns sort filter"

static const struct wr_ctl_cmd commands[] = {
    {"show", "overview", "", NULL, "node totals, rates, listeners", wr_ctl_cmd_show},
    {"show", "node", "name", NULL, "the node's memory, disk and limits", wr_ctl_cmd_show},
    {"show", "whoami", "", NULL, "the login user and its tags", wr_ctl_cmd_show},
    {"show", "queue", "name!", NULL, "one queue in the vhost", wr_ctl_cmd_show},
    {"list", "queues", LIST_FLAGS, NULL, "queues of the vhost", wr_ctl_cmd_list},
    {"list", "exchanges", LIST_FLAGS, NULL, "exchanges of the vhost", wr_ctl_cmd_list},
    {"list", "bindings", LIST_FLAGS, NULL, "bindings of the vhost", wr_ctl_cmd_list},
    {"list", "consumers", LIST_FLAGS, NULL, "consumers of the vhost", wr_ctl_cmd_list},
    {"list", "connections", LIST_FLAGS, NULL, "every connection", wr_ctl_cmd_list},
    {"list", "channels", LIST_FLAGS, NULL, "every channel", wr_ctl_cmd_list},
    {"list", "users", LIST_FLAGS, NULL, "users", wr_ctl_cmd_list},
    {"list", "vhosts", LIST_FLAGS, NULL, "virtual hosts", wr_ctl_cmd_list},
    {"list", "permissions", LIST_FLAGS, NULL, "every user's permissions", wr_ctl_cmd_list},
    {"list", "topic-permissions", LIST_FLAGS, NULL, "every topic permission", wr_ctl_cmd_list},
    {"list", "plugins", LIST_FLAGS, NULL, "the plugins the broker loaded", wr_ctl_cmd_list},
    {"declare", "queue", "name! durable auto-delete type arg*", NULL, "declare a queue",
     wr_ctl_cmd_declare},
    {"declare", "exchange", "name! type! durable auto-delete internal arg*", NULL,
     "declare an exchange", wr_ctl_cmd_declare},
    {"declare", "binding", "source! destination! destination-type routing-key arg*", NULL,
     "bind a queue or exchange to an exchange", wr_ctl_cmd_declare},
    {"declare", "vhost", "name!", NULL, "create a virtual host", wr_ctl_cmd_declare},
    {"declare", "user", "name! password! tags", NULL, "create or update a user",
     wr_ctl_cmd_declare},
    {"declare", "permissions", "user! configure! write! read!", NULL,
     "set a user's permissions in the vhost", wr_ctl_cmd_declare},
    {"declare", "topic-permissions", "user! exchange! write! read!", NULL,
     "set a user's topic permissions in the vhost", wr_ctl_cmd_declare},
    {"delete", "queue", "name! if-unused if-empty", NULL, "delete a queue", wr_ctl_cmd_delete},
    {"delete", "exchange", "name! if-unused", NULL, "delete an exchange", wr_ctl_cmd_delete},
    {"delete", "binding", "source! destination! destination-type routing-key arg*", NULL,
     "delete a binding", wr_ctl_cmd_delete},
    {"delete", "vhost", "name!", NULL, "delete a virtual host and everything in it",
     wr_ctl_cmd_delete},
    {"delete", "user", "name!", NULL, "delete a user", wr_ctl_cmd_delete},
    {"delete", "permissions", "user!", NULL, "clear a user's permissions in the vhost",
     wr_ctl_cmd_delete},
    {"delete", "topic-permissions", "user!", NULL,
     "clear a user's topic permissions in the vhost", wr_ctl_cmd_delete},
    {"purge", "queue", "name!", NULL, "remove a queue's ready messages", wr_ctl_cmd_purge},
    {"publish", NULL, "exchange routing-key payload file property* header*", NULL,
     "publish one message", wr_ctl_cmd_publish},
    {"get", NULL, "queue! count ack requeue", NULL, "get messages from a queue",
     wr_ctl_cmd_get},
    {"close", "connection", "name! reason", NULL, "close a client connection",
     wr_ctl_cmd_close},
    {"close", "connections", "user! reason", NULL, "close every connection of a user",
     wr_ctl_cmd_close},
    {"definitions", "export", "file vhost", NULL, "write the definitions as JSON",
     wr_ctl_cmd_definitions},
    {"definitions", "import", "file! vhost", NULL, "load definitions from a JSON file",
     wr_ctl_cmd_definitions},
    {"health-check", "alarms", "", NULL, "fails while a memory or disk alarm is on",
     wr_ctl_cmd_health},
    {"health-check", "port-listener", "", "PORT", "fails unless PORT has a listener",
     wr_ctl_cmd_health},
    {"health-check", "virtual-hosts", "", NULL, "fails unless every vhost runs",
     wr_ctl_cmd_health},
    {"health-check", "aliveness", "", NULL, "declares, publishes to and gets from a queue",
     wr_ctl_cmd_health},
    {"change-password", NULL, "user! password-new", NULL, "set a user's password",
     wr_ctl_cmd_change_password},
    {"set", "user-tags", "user! tags!", NULL, "replace a user's tags", wr_ctl_cmd_set_tags},
    {"queue", "peek", "name! count", NULL, "show the messages at a queue's head, removing none",
     wr_ctl_cmd_queue_peek},
    {"queue", "move", "from! to! count", NULL, "move messages to another queue of the vhost",
     wr_ctl_cmd_queue_move},
    {"dlq", "replay", "queue! count dry-run", NULL,
     "republish dead-lettered messages to the queues they died in", wr_ctl_cmd_dlq_replay},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

/* ---- flags ---- */

/* The flag `name` in a command's list: its position of the word, and
 * whether it is required or repeatable. */
static bool cmd_has_flag(const struct wr_ctl_cmd *cmd, const char *name, size_t nlen,
                         bool *required, bool *multi)
{
    const char *p = cmd->flags;
    while (*p) {
        size_t n = strcspn(p, " ");
        size_t base = n;
        bool req = false, rep = false;
        if (base && (p[base - 1] == '!' || p[base - 1] == '*')) {
            req = p[base - 1] == '!';
            rep = p[base - 1] == '*';
            base--;
        }
        if (base == nlen && !memcmp(p, name, nlen)) {
            if (required)
                *required = req;
            if (multi)
                *multi = rep;
            return true;
        }
        p += n;
        while (*p == ' ')
            p++;
    }
    return false;
}

static const struct flagdef *flag_def(const struct wr_ctl_cmd *cmd, const char *name, size_t n)
{
    char scope[64] = "";
    if (cmd)
        snprintf(scope, sizeof(scope), "%s%s%s", cmd->verb, cmd->noun ? " " : "",
                 cmd->noun ? cmd->noun : "");
    if (cmd) {
        for (const struct flagdef *f = cmd_flags; f->name; f++)
            if (f->scope && !strcmp(f->scope, scope) && strlen(f->name) == n &&
                !memcmp(f->name, name, n))
                return f;
        for (const struct flagdef *f = cmd_flags; f->name; f++)
            if (!f->scope && strlen(f->name) == n && !memcmp(f->name, name, n))
                return f;
    }
    for (const struct flagdef *f = global_flags; f->name; f++)
        if (strlen(f->name) == n && !memcmp(f->name, name, n))
            return f;
    return NULL;
}

static const struct flagdef *global_def(const char *name, size_t n)
{
    return flag_def(NULL, name, n);
}

/* ---- help ---- */

static void synopsis(FILE *f, const struct wr_ctl_cmd *cmd)
{
    const char *p = cmd->flags;
    fprintf(f, "%s%s%s", cmd->verb, cmd->noun ? " " : "", cmd->noun ? cmd->noun : "");
    if (cmd->operand)
        fprintf(f, " %s", cmd->operand);
    while (*p) {
        size_t n = strcspn(p, " "), base = n;
        bool req = p[n - 1] == '!', rep = p[n - 1] == '*';
        if (req || rep)
            base--;
        const struct flagdef *d = flag_def(cmd, p, base);
        fprintf(f, " %s--%.*s%s%s%s%s", req ? "" : "[", (int)base, p, d && d->meta ? " " : "",
                d && d->meta ? d->meta : "", req ? "" : "]", rep ? "..." : "");
        p += n;
        while (*p == ' ')
            p++;
    }
}

static void print_flag(FILE *f, const struct flagdef *d)
{
    char left[48];
    snprintf(left, sizeof(left), "--%s%s%s", d->name, d->meta ? " " : "", d->meta ? d->meta : "");
    fprintf(f, "  %-22s %s\n", left, d->help);
}

static void usage_all(FILE *f)
{
    fputs("Usage: warrenctl [OPTION]... VERB [NOUN] [FLAG]...\n"
          "Administer a running Warren broker through its HTTP management API.\n"
          "\nOptions (before the verb, or after the command's own flags):\n",
          f);
    for (const struct flagdef *d = global_flags; d->name; d++)
        print_flag(f, d);
    fputs("  -h, -V                 short for --help, --version\n"
          "\nCommands:\n",
          f);
    for (const struct wr_ctl_cmd *c = commands; c->verb; c++) {
        fputs("  ", f);
        synopsis(f, c);
        fputc('\n', f);
    }
    fputs("\nwarrenctl help VERB [NOUN], or VERB [NOUN] --help, explains a command.\n"
          "Environment: WARREN_URL, WARREN_USER, WARREN_PASSWORD, WARREN_VHOST.\n"
          "Exit status: 0 success, 1 error from the broker, 2 bad usage, 3 cannot connect.\n"
          "See warrenctl(1).\n",
          f);
}

static void usage_cmd(FILE *f, const struct wr_ctl_cmd *cmd)
{
    const char *p = cmd->flags;
    fputs("Usage: warrenctl [OPTION]... ", f);
    synopsis(f, cmd);
    fprintf(f, "\n%c%s.\n", cmd->summary[0] - 32 * (cmd->summary[0] >= 'a'), cmd->summary + 1);
    if (*p)
        fputs("\n", f);
    while (*p) {
        size_t n = strcspn(p, " "), base = n;
        if (p[n - 1] == '!' || p[n - 1] == '*')
            base--;
        const struct flagdef *d = flag_def(cmd, p, base);
        if (d)
            print_flag(f, d);
        p += n;
        while (*p == ' ')
            p++;
    }
    fputs("\nSee warrenctl --help for the options, warrenctl(1) for examples.\n", f);
}

/* Commands of a verb, for "warrenctl VERB --help" and errors. */
static void usage_verb(FILE *f, const char *verb)
{
    fprintf(f, "Usage:\n");
    for (const struct wr_ctl_cmd *c = commands; c->verb; c++) {
        if (strcmp(c->verb, verb))
            continue;
        fputs("  warrenctl ", f);
        synopsis(f, c);
        fprintf(f, "\n      %s\n", c->summary);
    }
}

static bool verb_known(const char *verb)
{
    for (const struct wr_ctl_cmd *c = commands; c->verb; c++)
        if (!strcmp(c->verb, verb))
            return true;
    return false;
}

static bool verb_has_nouns(const char *verb)
{
    for (const struct wr_ctl_cmd *c = commands; c->verb; c++)
        if (!strcmp(c->verb, verb) && c->noun)
            return true;
    return false;
}

static const struct wr_ctl_cmd *find_cmd(const char *verb, const char *noun)
{
    for (const struct wr_ctl_cmd *c = commands; c->verb; c++)
        if (!strcmp(c->verb, verb) &&
            (c->noun ? noun && !strcmp(c->noun, noun) : noun == NULL))
            return c;
    return NULL;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("warrenctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'warrenctl --help' for more information.\n", stderr);
    return WR_CTL_EXIT_USAGE;
}

/* "warrenctl help [VERB [NOUN]]" */
static int help_cmd(int n, char **words)
{
    if (n == 0) {
        usage_all(stdout);
        return 0;
    }
    if (!verb_known(words[0]))
        return usage_error("help: unknown command '%s'", words[0]);
    const struct wr_ctl_cmd *cmd = find_cmd(words[0], n > 1 ? words[1] : NULL);
    if (cmd)
        usage_cmd(stdout, cmd);
    else if (n > 1 && verb_has_nouns(words[0]))
        return usage_error("help: unknown command '%s %s'", words[0], words[1]);
    else
        usage_verb(stdout, words[0]);
    return 0;
}

/* ---- completion ---- */

/* (The shell side is etc/warrenctl.bash-completion.) */

/* What the value of flag `name` is, for completion: a listing of the
 * broker (":list NOUN"), ":files", a fixed set of words, or NULL. */
static const char *value_kind(const struct wr_ctl_cmd *cmd, const char *name,
                              const char *dest_type)
{
    static const struct {
        const char *flag, *kind;
    } kinds[] = {
        {"queue", ":list queues"},    {"from", ":list queues"},
        {"to", ":list queues"},       {"source", ":list exchanges"},
        {"exchange", ":list exchanges"}, {"user", ":list users"},
        {"vhost", ":list vhosts"},    {"file", ":files"},
        {"config", ":files"},         {"cacert", ":files"},
        {"format", "table tsv json"}, {"destination-type", "queue exchange"},
    };
    const char *noun = cmd ? (cmd->noun ? cmd->noun : "") : "";
    for (size_t i = 0; i < sizeof(kinds) / sizeof(*kinds); i++)
        if (!strcmp(kinds[i].flag, name))
            return kinds[i].kind;
    if (!strcmp(name, "destination"))
        return dest_type && !strcmp(dest_type, "exchange") ? ":list exchanges" : ":list queues";
    if (!strcmp(name, "type"))
        return !strcmp(noun, "exchange") ? "direct fanout topic headers" : "classic quorum stream";
    if (!strcmp(name, "name") && cmd) {
        if (!strcmp(noun, "queue") || !strcmp(cmd->verb, "queue"))
            return ":list queues";
        if (!strcmp(noun, "exchange"))
            return ":list exchanges";
        if (!strcmp(noun, "vhost"))
            return ":list vhosts";
        if (!strcmp(noun, "user"))
            return ":list users";
    }
    return NULL;
}

static void offer(struct wr_ctl_buf *out, const char *pre, const char *word, size_t len,
                  const char *cur)
{
    struct wr_ctl_buf w = {0};
    wr_ctl_buf_adds(&w, pre);
    wr_ctl_buf_add(&w, word, len);
    if (!strncmp(wr_ctl_buf_str(&w), cur, strlen(cur))) {
        wr_ctl_buf_add(out, w.p, w.len);
        wr_ctl_buf_addc(out, '\n');
    }
    wr_ctl_buf_free(&w);
}

/* The value of a flag: words of a fixed set, or a directive for the shell
 * (a listing gets the global options to reach the same broker). pre: what
 * goes before each candidate ("--flag=" when the word has the flag). */
static void complete_value(struct wr_ctl_buf *out, const char *kind, const char *pre,
                           const char *cur, const struct wr_ctl_buf *globals)
{
    if (kind[0] == ':') {
        wr_ctl_buf_adds(out, kind);
        wr_ctl_buf_addc(out, '\n');
        if (globals->len)
            wr_ctl_buf_add(out, globals->p, globals->len);
        return;
    }
    for (const char *p = kind; *p;) {
        size_t n = strcspn(p, " ");
        offer(out, pre, p, n, cur);
        p += n;
        while (*p == ' ')
            p++;
    }
}

/* Was flag `name` given among the complete words? */
static bool word_given(int n, char **words, const char *name, size_t len)
{
    for (int i = 0; i < n; i++)
        if (!strncmp(words[i], "--", 2) && !strncmp(words[i] + 2, name, len) &&
            (words[i][2 + len] == '\0' || words[i][2 + len] == '='))
            return true;
    return false;
}

static void complete_flags(struct wr_ctl_buf *out, const struct wr_ctl_cmd *cmd, int n,
                           char **words, const char *cur)
{
    if (cmd) {
        for (const char *p = cmd->flags; *p;) {
            size_t len = strcspn(p, " "), base = len;
            bool rep = p[len - 1] == '*';
            if (p[len - 1] == '!' || rep)
                base--;
            if (rep || !word_given(n, words, p, base))
                offer(out, "--", p, base, cur);
            p += len;
            while (*p == ' ')
                p++;
        }
    }
    /* the global options only once "--" is typed: the command's own come first */
    if (cmd && strncmp(cur, "--", 2))
        return;
    for (const struct flagdef *d = global_flags; d->name; d++) {
        size_t len = strlen(d->name);
        if ((cmd && cmd_has_flag(cmd, d->name, len, NULL, NULL)) || word_given(n, words, d->name, len))
            continue;
        offer(out, "--", d->name, len, cur);
    }
}

static void complete_words(struct wr_ctl_buf *out, const char *verb, const char *cur)
{
    for (const struct wr_ctl_cmd *c = commands; c->verb; c++) {
        const char *w = verb ? c->noun : c->verb;
        bool seen = false;
        if (!w || (verb && strcmp(c->verb, verb)))
            continue;
        for (const struct wr_ctl_cmd *e = commands; e < c && !seen; e++)
            seen = !verb && !strcmp(e->verb, w);
        if (!seen)
            offer(out, "", w, strlen(w), cur);
    }
}

void wr_ctl_complete(int n, char **words, struct wr_ctl_buf *out)
{
    const char *cur = n > 0 ? words[n - 1] : "", *verb = NULL, *noun = NULL;
    const char *dest_type = NULL;
    const struct wr_ctl_cmd *cmd = NULL;
    const struct flagdef *pending = NULL;
    struct wr_ctl_buf globals = {0};
    bool help = false, pending_fwd = false;

    wr_ctl_buf_adds(out, ""); /* "" rather than NULL when nothing fits */
    for (int i = 0; i < n - 1; i++) {
        const char *w = words[i];
        if (pending) {
            if (pending_fwd)
                wr_ctl_buf_printf(&globals, "%s\n", w);
            else if (!strcmp(pending->name, "destination-type"))
                dest_type = w;
            pending = NULL;
        } else if (!strncmp(w, "--", 2) && w[2]) {
            const char *eq = strchr(w + 2, '=');
            size_t len = eq ? (size_t)(eq - w - 2) : strlen(w + 2);
            bool own = cmd && cmd_has_flag(cmd, w + 2, len, NULL, NULL);
            const struct flagdef *d = own ? flag_def(cmd, w + 2, len) : global_def(w + 2, len);
            /* the options that say where the broker is go to the listing */
            bool fwd = d && !own && strcmp(d->name, "help") && strcmp(d->name, "version") &&
                       strcmp(d->name, "format");
            if (!d)
                continue;
            if (fwd)
                wr_ctl_buf_printf(&globals, "%s\n", w);
            if (d->meta && !eq) {
                pending = d;
                pending_fwd = fwd;
            } else if (own && eq && !strcmp(d->name, "destination-type")) {
                dest_type = eq + 1;
            }
        } else if (w[0] == '-') {
            continue;
        } else if (!verb && !help && !strcmp(w, "help")) {
            help = true;
        } else if (!verb) {
            verb = w;
            if (!help && !verb_has_nouns(verb))
                cmd = find_cmd(verb, NULL);
        } else if (!noun && verb_has_nouns(verb)) {
            noun = w;
            if (!help)
                cmd = find_cmd(verb, noun);
        }
    }

    if (pending) {
        const char *kind = value_kind(cmd, pending->name, dest_type);
        if (kind)
            complete_value(out, kind, "", cur, &globals);
    } else if (!strncmp(cur, "--", 2) && strchr(cur, '=')) {
        const char *eq = strchr(cur, '=');
        size_t len = (size_t)(eq - cur - 2);
        bool own = cmd && cmd_has_flag(cmd, cur + 2, len, NULL, NULL);
        const struct flagdef *d = own ? flag_def(cmd, cur + 2, len) : global_def(cur + 2, len);
        const char *kind = d && d->meta ? value_kind(cmd, d->name, dest_type) : NULL;
        if (kind) {
            struct wr_ctl_buf pre = {0};
            wr_ctl_buf_add(&pre, cur, (size_t)(eq - cur) + 1);
            complete_value(out, kind, wr_ctl_buf_str(&pre), cur, &globals);
            wr_ctl_buf_free(&pre);
        }
    } else if (help) {
        if (!verb)
            complete_words(out, NULL, cur);
        else if (!noun && verb_has_nouns(verb))
            complete_words(out, verb, cur);
    } else if (!verb) {
        if (cur[0] == '-') {
            complete_flags(out, NULL, n - 1, words, cur);
        } else {
            complete_words(out, NULL, cur);
            offer(out, "", "help", 4, cur);
        }
    } else if (!noun && verb_has_nouns(verb)) {
        if (cur[0] != '-')
            complete_words(out, verb, cur);
    } else if (cmd && (!cur[0] || cur[0] == '-')) {
        complete_flags(out, cmd, n - 1, words, cur);
    }
    wr_ctl_buf_free(&globals);
}

/* ---- parsing ---- */

struct parsed {
    struct wr_ctl_layer conn;
    const char *node, *config, *format, *cacert;
    bool tls, help, version;
};

static void set_global(struct parsed *g, const char *name, const char *v)
{
    static const struct {
        const char *name;
        size_t off;
    } slots[] = {
        {"url", offsetof(struct parsed, conn.url)},
        {"host", offsetof(struct parsed, conn.host)},
        {"port", offsetof(struct parsed, conn.port)},
        {"vhost", offsetof(struct parsed, conn.vhost)},
        {"username", offsetof(struct parsed, conn.user)},
        {"password", offsetof(struct parsed, conn.password)},
        {"node", offsetof(struct parsed, node)},
        {"config", offsetof(struct parsed, config)},
        {"format", offsetof(struct parsed, format)},
        {"cacert", offsetof(struct parsed, cacert)},
    };
    for (size_t i = 0; i < sizeof(slots) / sizeof(*slots); i++) {
        if (!strcmp(slots[i].name, name)) {
            memcpy((char *)g + slots[i].off, &v, sizeof(v));
            return;
        }
    }
    if (!strcmp(name, "tls"))
        g->tls = true;
    else if (!strcmp(name, "help"))
        g->help = true;
    else if (!strcmp(name, "version"))
        g->version = true;
}

/* One "--name[=value]" at argv[*i]. Returns 0 or an exit status. */
static int take_flag(struct wr_ctl *c, struct parsed *g, const struct wr_ctl_cmd *cmd,
                     int argc, char **argv, int *i)
{
    const char *arg = argv[*i] + 2, *eq = strchr(arg, '=');
    size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
    const struct flagdef *d;
    bool own = cmd && cmd_has_flag(cmd, arg, n, NULL, NULL);
    const char *value = NULL;
    char name[64];

    d = own ? flag_def(cmd, arg, n) : global_def(arg, n);
    if (!d || n >= sizeof(name)) {
        fprintf(stderr, "warrenctl: unknown flag '%s'", argv[*i]);
        if (cmd)
            fprintf(stderr, " for '%s%s%s'", cmd->verb, cmd->noun ? " " : "",
                    cmd->noun ? cmd->noun : "");
        fputs("\nTry 'warrenctl --help' for more information.\n", stderr);
        return WR_CTL_EXIT_USAGE;
    }
    memcpy(name, arg, n);
    name[n] = '\0';
    if (d->meta) {
        if (eq) {
            value = eq + 1;
        } else if (*i + 1 < argc) {
            value = argv[++*i];
        } else {
            return usage_error("flag --%s needs a value (%s)", name, d->meta);
        }
    } else if (eq) {
        if (!strcmp(eq + 1, "false"))
            return 0;
        if (strcmp(eq + 1, "true"))
            return usage_error("flag --%s takes no value (or =true, =false), not '%s'", name,
                               eq + 1);
    }
    if (!own) {
        set_global(g, d->name, value);
        return 0;
    }
    struct wr_ctl_opt *o = realloc(c->opts, (c->nopts + 1) * sizeof(*o));
    if (!o)
        wr_ctl_oom();
    c->opts = o;
    o[c->nopts].name = d->name;
    o[c->nopts].value = value;
    c->nopts++;
    return 0;
}

static int check_required(struct wr_ctl *c)
{
    const char *p = c->cmd->flags;
    while (*p) {
        size_t n = strcspn(p, " ");
        if (p[n - 1] == '!') {
            char name[64];
            snprintf(name, sizeof(name), "%.*s", (int)(n - 1), p);
            if (!wr_ctl_has(c, name))
                return usage_error("'%s' needs --%s", c->cmd->noun ? c->cmd->noun : c->cmd->verb,
                                   name);
        }
        p += n;
        while (*p == ' ')
            p++;
    }
    return 0;
}

const char *wr_ctl_arg(const struct wr_ctl *c, const char *name)
{
    const char *v = NULL;
    for (size_t i = 0; i < c->nopts; i++)
        if (!strcmp(c->opts[i].name, name))
            v = c->opts[i].value ? c->opts[i].value : "true";
    return v;
}

bool wr_ctl_has(const struct wr_ctl *c, const char *name)
{
    return wr_ctl_arg(c, name) != NULL;
}

const char *wr_ctl_arg_next(const struct wr_ctl *c, const char *name, size_t *i)
{
    for (; *i < c->nopts; (*i)++)
        if (!strcmp(c->opts[*i].name, name))
            return c->opts[(*i)++].value;
    return NULL;
}

/* ---- set-up and dispatch ---- */

static int connect_setup(struct wr_ctl *c, struct parsed *g)
{
    char err[512];
    const char *nc = getenv("NO_COLOR");
    int fmt = wr_ctl_format_parse(g->format ? g->format : "table");

    if (fmt < 0)
        return usage_error("--format: table, tsv or json, not '%s'", g->format);
    c->out.fmt = (enum wr_ctl_format)fmt;
    c->out.f = stdout;
    c->out.color = isatty(STDOUT_FILENO) && !(nc && *nc);
    if (wr_ctl_conn_resolve(&g->conn, g->config, g->node, &c->conn, err, sizeof(err)) < 0)
        return wr_ctl_fail(WR_CTL_EXIT_USAGE, "%s", err);
    if (g->tls || g->cacert)
        c->conn.url.tls = true;
    c->tls_ca = g->cacert;
    struct wr_ctl_buf b = {0};
    wr_ctl_buf_printf(&b, "%s:%s", c->conn.user, c->conn.password);
    c->auth = wr_ctl_buf_take(&b);
    wr_ctl_url_format(&c->conn.url, &b);
    c->base_url = wr_ctl_buf_take(&b);
    c->http = wr_ctl_http_new(&c->conn.url, c->tls_ca);
    return 0;
}

static int run(struct wr_ctl *c, int argc, char **argv)
{
    struct parsed g = {0};
    int i = 1, rc;
    const char *verb, *noun = NULL;

    if (argc > 1 && !strcmp(argv[1], "__complete")) { /* hidden: for the shell */
        struct wr_ctl_buf out = {0};
        wr_ctl_complete(argc - 2, argv + 2, &out);
        fputs(wr_ctl_buf_str(&out), stdout);
        wr_ctl_buf_free(&out);
        return 0;
    }
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-h")) {
            g.help = true;
        } else if (!strcmp(argv[i], "-V")) {
            g.version = true;
        } else if (!strncmp(argv[i], "--", 2) && argv[i][2]) {
            if ((rc = take_flag(c, &g, NULL, argc, argv, &i)))
                return rc;
        } else {
            return usage_error("unknown option '%s'", argv[i]);
        }
    }
    if (g.version) {
        printf("warrenctl (%s) %s\n", WR_NAME, WR_VERSION);
        return 0;
    }
    if (i >= argc) {
        usage_all(g.help ? stdout : stderr);
        return g.help ? 0 : WR_CTL_EXIT_USAGE;
    }
    verb = argv[i++];
    if (!strcmp(verb, "help"))
        return help_cmd(argc - i, argv + i);
    if (!verb_known(verb))
        return usage_error("unknown command '%s'", verb);
    if (verb_has_nouns(verb)) {
        if (i >= argc || argv[i][0] == '-') {
            usage_verb(g.help || (i < argc && !strcmp(argv[i], "--help")) ? stdout : stderr,
                       verb);
            return g.help || (i < argc && !strcmp(argv[i], "--help")) ? 0 : WR_CTL_EXIT_USAGE;
        }
        noun = argv[i++];
    }
    if (!(c->cmd = find_cmd(verb, noun)))
        return usage_error("unknown command '%s %s'", verb, noun);
    for (; i < argc; i++) {
        if (!strncmp(argv[i], "--", 2) && argv[i][2]) {
            if ((rc = take_flag(c, &g, c->cmd, argc, argv, &i)))
                return rc;
        } else if (!strcmp(argv[i], "-h")) {
            g.help = true;
        } else if (c->cmd->operand && !c->operand) {
            c->operand = argv[i];
        } else {
            return usage_error("unexpected argument '%s'", argv[i]);
        }
    }
    if (g.help) {
        usage_cmd(stdout, c->cmd);
        return 0;
    }
    if ((rc = check_required(c)))
        return rc;
    if (c->cmd->operand && !c->operand)
        return usage_error("'%s' needs %s", c->cmd->noun, c->cmd->operand);
    if ((rc = connect_setup(c, &g)))
        return rc;
    rc = c->cmd->run(c);
    if (fflush(stdout) != 0 && rc == 0)
        rc = wr_ctl_fail(WR_CTL_EXIT_BROKER, "writing the output failed");
    return rc;
}

int wr_ctl_main(int argc, char **argv)
{
    struct wr_ctl c;
    int rc;

    memset(&c, 0, sizeof(c));
    signal(SIGPIPE, SIG_IGN);
    rc = run(&c, argc, argv);
    wr_ctl_http_free(c.http);
    wr_ctl_conn_free(&c.conn);
    if (c.auth)
        memset(c.auth, 0, strlen(c.auth));
    free(c.auth);
    free(c.base_url);
    free(c.opts);
    return rc;
}
