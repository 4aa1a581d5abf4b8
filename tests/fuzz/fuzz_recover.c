/*
 * fuzz_recover.c - libFuzzer target for the payloads of the journal's
 * records as recovery parses them (store.c: 'P' publish, 'A' removal, 'R'
 * requeue, held messages, 'K' deduplication keys, 'S' stream messages, 'T'
 * stream truncations).
 *
 * fuzz_journal.c fuzzes the framing; here every record is well framed (the
 * CRC computed as journal.c does), so the input reaches the payload parsers.
 * The input is a list of chunks:
 *
 *   op u8 | len u16 (big-endian) | payload (len bytes; cut at the input's end)
 *
 * op 0x00 starts the next segment file (payload ignored), 0x01 writes the
 * payload as raw, unframed bytes (garbage between records, a torn tail),
 * any other op is a record of that type. The segments go into a data
 * directory whose definitions.json (DEFS below) declares vhost '/' with a
 * classic queue (id 1, x-max-priority 3), a deduplicating queue (id 2,
 * x-message-deduplication, x-cache-size 4), a quorum queue (id 3), two
 * streams (id 4 with 4 KiB segments and size retention, id 5 compacted by
 * the header "k"), a deduplicating direct exchange and a durable exchange
 * of a type that holds messages (registered here: its recover takes them).
 * The store is opened on an empty broker (recovery), every queue purged,
 * every held message released and each stream read from its first offset
 * by a consumer (so the bookkeeping recovery built is used: removal
 * records, segment pruning, the streams' index and reading the journal
 * back), then everything is closed. It must not crash,
 * leak or hang. make_recover_seeds.py writes the seeds and computes the
 * exchanges' holder ids.
 */
#include "config.h"

#include <dirent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/exchange.h"
#include "broker/msg.h"
#include "broker/queue.h"
#include "broker/stream.h"
#include "broker/vhost.h"
#include "conf/conf.h"
#include "core/clock.h"
#include "core/log.h"
#include "fuzz.h"
#include "store/crc32c.h"
#include "store/store.h"
#include "wire/buf.h"

#define RECOVER_MAX_INPUT 65536
#define MAGIC 0x574a524cu /* journal.c's "WJRL" */

static const char DEFS[] =
    "{\"warren_version\":\"0.1.0\",\n"
    " \"vhosts\":[{\"name\":\"/\",\"warren_last_queue_id\":5}],\n"
    " \"exchanges\":[\n"
    "  {\"name\":\"xd\",\"vhost\":\"/\",\"type\":\"direct\",\"durable\":true,"
    "\"auto_delete\":false,\"internal\":false,\"arguments\":{\"x-message-deduplication\":true}},\n"
    "  {\"name\":\"xh\",\"vhost\":\"/\",\"type\":\"x-fuzz-hold\",\"durable\":true,"
    "\"auto_delete\":false,\"internal\":false,\"arguments\":{}}],\n"
    " \"queues\":[\n"
    "  {\"name\":\"q1\",\"vhost\":\"/\",\"durable\":true,\"auto_delete\":false,"
    "\"arguments\":{\"x-max-priority\":3},\"warren_id\":1},\n"
    "  {\"name\":\"qd\",\"vhost\":\"/\",\"durable\":true,\"auto_delete\":false,"
    "\"arguments\":{\"x-message-deduplication\":true,\"x-cache-size\":4},\"warren_id\":2},\n"
    "  {\"name\":\"qq\",\"vhost\":\"/\",\"durable\":true,\"auto_delete\":false,"
    "\"arguments\":{\"x-queue-type\":\"quorum\"},\"warren_id\":3},\n"
    "  {\"name\":\"qs\",\"vhost\":\"/\",\"durable\":true,\"auto_delete\":false,"
    "\"arguments\":{\"x-queue-type\":\"stream\",\"x-stream-max-segment-size-bytes\":4096,"
    "\"x-max-length-bytes\":20000},\"warren_id\":4},\n"
    "  {\"name\":\"qk\",\"vhost\":\"/\",\"durable\":true,\"auto_delete\":false,"
    "\"arguments\":{\"x-queue-type\":\"stream\",\"x-stream-compaction\":\"key\","
    "\"x-stream-compaction-key-header\":\"k\",\"x-stream-max-segment-size-bytes\":4096},"
    "\"warren_id\":5}],\n"
    " \"bindings\":[]}\n";

/* ---- an exchange type that holds what recovery gives back ---- */

struct held {
    struct wr_msg **m;
    size_t n, cap;
};

static int hold_init(struct wr_exchange *x)
{
    x->type_state = calloc(1, sizeof(struct held));
    return x->type_state ? 0 : -1;
}

static void hold_destroy(struct wr_exchange *x)
{
    struct held *h = x->type_state;
    for (size_t i = 0; i < h->n; i++)
        wr_msg_unref(h->m[i]);
    free(h->m);
    free(h);
}

static int hold_add(struct wr_exchange *x, struct wr_binding *b)
{
    (void)x;
    b->type_data = NULL;
    return 0;
}

static void hold_remove(struct wr_exchange *x, struct wr_binding *b)
{
    (void)x;
    (void)b;
}

static void hold_route(struct wr_exchange *x, const struct wr_route_msg *m, wr_route_emit_fn emit,
                       void *ctx)
{
    (void)x;
    (void)m;
    (void)emit;
    (void)ctx;
}

static void hold_recover(struct wr_exchange *x, struct wr_msg *m)
{
    struct held *h = x->type_state;
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 8;
        struct wr_msg **a = realloc(h->m, cap * sizeof(*a));
        if (!a)
            abort();
        h->m = a;
        h->cap = cap;
    }
    h->m[h->n++] = wr_msg_ref(m);
}

static const struct wr_xtype hold_type = {
    .name = "x-fuzz-hold",
    .init = hold_init,
    .destroy = hold_destroy,
    .add = hold_add,
    .remove = hold_remove,
    .route = hold_route,
    .recover = hold_recover,
};

/* ---- the data directory ---- */

static char dir[256];

static void clear_dir(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *de;
    if (!d)
        return;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            unlinkat(dirfd(d), de->d_name, 0);
    closedir(d);
}

static void cleanup(void)
{
    char p[300];
    snprintf(p, sizeof p, "%s/journal", dir);
    clear_dir(p);
    rmdir(p);
    clear_dir(dir);
    rmdir(dir);
}

static void write_all(int fd, const void *p, size_t n)
{
    if (n && write(fd, p, n) != (ssize_t)n)
        abort();
}

static int seg_open(uint32_t seg)
{
    char p[300];
    int fd;
    snprintf(p, sizeof p, "%s/journal/%08u.wjl", dir, seg);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        abort();
    return fd;
}

/* The input as segment files (see the top of the file). */
static void write_journal(const uint8_t *data, size_t size)
{
    uint32_t seg = 1;
    int fd = seg_open(seg);
    size_t i = 0;

    while (i < size) {
        uint8_t op = data[i++];
        size_t len = 0;
        if (i + 2 <= size)
            len = (size_t)data[i] << 8 | data[i + 1];
        i = i + 2 <= size ? i + 2 : size;
        if (len > size - i)
            len = size - i;
        if (op == 0x00) {
            close(fd);
            fd = seg_open(++seg);
        } else if (op == 0x01) {
            write_all(fd, data + i, len);
        } else {
            uint8_t head[13];
            uint32_t crc = wr_crc32c(0, &op, 1);
            crc = wr_crc32c(crc, data + i, len);
            wr_store32(head, MAGIC);
            wr_store32(head + 4, (uint32_t)len + 1);
            wr_store32(head + 8, crc);
            head[12] = op;
            write_all(fd, head, sizeof head);
            write_all(fd, data + i, len);
        }
        i += len;
    }
    close(fd);
}

static void setup(void)
{
    const char *shm = "/dev/shm";
    struct stat st;
    char p[300];

    /* tmpfs when there is one: the journal's fsyncs cost nothing there */
    if (stat(shm, &st) == 0 && S_ISDIR(st.st_mode) && access(shm, W_OK) == 0)
        snprintf(dir, sizeof dir, "%s/warren-fuzz-recover.XXXXXX", shm);
    else
        snprintf(dir, sizeof dir, "%s/warren-fuzz-recover.XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir))
        abort();
    snprintf(p, sizeof p, "%s/journal", dir);
    if (mkdir(p, 0700) < 0)
        abort();
    atexit(cleanup);
    if (wr_xtype_register(&hold_type) < 0)
        abort();
}

static void reset_dir(void)
{
    char p[300];
    int fd;
    snprintf(p, sizeof p, "%s/journal", dir);
    clear_dir(p);
    snprintf(p, sizeof p, "%s/definitions.log", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/definitions.json", dir);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        abort();
    write_all(fd, DEFS, sizeof DEFS - 1);
    close(fd);
}

/* A consumer that takes everything. */
static bool fz_take(struct wr_consumer *c)
{
    (void)c;
    return true;
}

static void fz_deliver(struct wr_consumer *c, struct wr_queue *q, const struct wr_qent *e)
{
    (void)c;
    (void)q;
    wr_msg_unref(e->m);
}

static void fz_cancelled(struct wr_consumer *c)
{
    (void)c;
}

static const struct wr_consumer_ops fz_ops = {fz_take, fz_deliver, fz_cancelled};

/* Use what recovery built: every queue emptied, every held message let go
 * (removal records, the segments' counts, pruning), every stream read. */
static void drain(struct wr_broker *b, struct wr_store *s)
{
    struct wr_vhost *vh = wr_broker_vhost(b, (struct wr_str){"/", 1});
    struct wr_queue *q;
    struct wr_exchange *x;
    if (!vh)
        abort();
    for (int i = 0; i < 3; i++) {
        static const char *const names[] = {"q1", "qd", "qq"};
        q = wr_vhost_queue(vh, (struct wr_str){names[i], 2});
        if (!q)
            abort();
        wr_queue_purge(q);
    }
    for (int i = 0; i < 2; i++) {
        static const char *const names[] = {"qs", "qk"};
        struct wr_consumer c;
        q = wr_vhost_queue(vh, (struct wr_str){names[i], 2});
        if (!q || !q->stream)
            abort();
        memset(&c, 0, sizeof(c));
        c.ops = &fz_ops;
        c.stream_next = q->stream->first;
        wr_queue_consumer_add(q, &c);
        if (c.stream_next != q->stream->next)
            abort(); /* everything was read */
        wr_queue_consumer_remove(q, &c);
    }
    x = wr_vhost_exchange(vh, (struct wr_str){"xh", 2});
    if (!x)
        abort();
    {
        struct held *h = x->type_state;
        for (size_t i = 0; i < h->n; i++) {
            wr_exchange_release(x, h->m[i]);
            wr_msg_unref(h->m[i]);
        }
        h->n = 0;
    }
    wr_store_flush(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct wr_conf conf;
    static int init;
    struct event_base *base;
    struct wr_broker *b;
    struct wr_store *s;
    struct wr_errbuf err;

    if (!init) {
        wr_conf_init(&conf);
        /* Corrupt records are expected: no warnings, unless asked for
         * (WR_FUZZ_VERBOSE=1 shows what recovery says of an input). */
        wr_log_set_level(getenv("WR_FUZZ_VERBOSE") ? WR_LOG_DEBUG : WR_LOG_ERROR);
        setup();
        init = 1;
    }
    if (size > RECOVER_MAX_INPUT)
        return 0;
    reset_dir();
    write_journal(data, size);
    wr_clock_update();
    base = event_base_new();
    b = base ? wr_broker_new(base, &conf) : NULL;
    if (!b)
        abort();
    s = wr_store_open(dir, base, 0, 1u << 20, b, NULL, &err);
    if (!s) {
        /* Records never stop a start: only a directory that cannot be
         * read, or memory, can. */
        fprintf(stderr, "fuzz_recover: wr_store_open: %s\n", err.text);
        abort();
    }
    wr_broker_set_persist(b, wr_store_persist(s));
    drain(b, s);
    wr_broker_set_persist(b, NULL);
    wr_store_close(s);
    wr_broker_free(b);
    event_base_free(base);
    return 0;
}
