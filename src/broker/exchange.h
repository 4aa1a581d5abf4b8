/*
 * exchange.h - exchanges, bindings and routing.
 *
 * An exchange owns its bindings (a list, for listing and deletion) and an
 * index kept by its type (struct wr_xtype): direct keeps a hash of routing
 * keys, topic a trie of words, headers a list of parsed match rules, fanout
 * just the list. Routing asks the type for the bindings that match a
 * message and collects their destinations: queues directly, exchanges
 * (exchange-to-exchange bindings) through a worklist of exchanges, every
 * queue at most once (exchange.c says why it is not a recursion).
 *
 * Exchange types are a table of functions so a plugin can add one
 * (include/warren/plugin.h will expose the same shape).
 */
#ifndef WR_BROKER_EXCHANGE_H
#define WR_BROKER_EXCHANGE_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/stats.h"
#include "core/errbuf.h"
#include "core/hmap.h"
#include "core/list.h"
#include "wire/buf.h"

struct wr_exchange;
struct wr_msg;
struct wr_queue;
struct wr_vhost;

enum wr_dest_kind { WR_DEST_QUEUE, WR_DEST_EXCHANGE };

struct wr_binding {
    struct wr_exchange *src;
    enum wr_dest_kind kind;
    void *dest;           /* struct wr_queue * or struct wr_exchange * */
    struct wr_str key;    /* owned copy (points into this allocation) */
    struct wr_str args;   /* raw table body, owned copy */
    struct wr_list src_node; /* in src->bindings */
    struct wr_list dst_node; /* in the destination's list of bindings to it */
    struct wr_list type_node; /* free for the type's index (e.g. a bucket list) */
    struct wr_hnode index_node; /* in src->bindex: (dest, key, args) -> binding */
    void *type_data;      /* the type's per-binding data (e.g. parsed header rules) */
};

/* What routing looks at in a message. */
struct wr_route_msg {
    struct wr_str routing_key;
    struct wr_str headers; /* raw table body of the headers property (may be empty) */
    /* More routing keys (the CC and BCC headers): every exchange reached
     * routes by each of them too, each queue still collected once. */
    const struct wr_str *cc;
    uint32_t ncc;
    /* The message itself (NULL when routing only looks: tests, dry runs),
     * and whether routing_key is its own key rather than a CC/BCC one. */
    struct wr_msg *msg;
    bool first;
    /* The routing pass's result, for a type that keeps the message
     * (wr_exchange_hold). */
    struct wr_route_result *res;
};

/* emit(b) for every binding that matched; emit(NULL) when the type took
 * the message itself (a delayed exchange keeps it to route later): it
 * counts as routed, so it does not go to the alternate exchange. */
typedef void (*wr_route_emit_fn)(struct wr_binding *b, void *ctx);

/* Flags of an exchange type. */
#define WR_XTYPE_ROUTE_UNBOUND 0x1u /* route is called even with no bindings */

struct wr_xtype {
    const char *name;
    unsigned flags;
    /* Set up / tear down x->type_state. */
    int (*init)(struct wr_exchange *x);
    void (*destroy)(struct wr_exchange *x);
    /* Check a new binding's key and arguments before it is added (headers
     * exchanges refuse a bad x-match with 406). Optional. */
    int (*validate)(struct wr_str key, struct wr_str args);
    /* Index a binding (already on x->bindings) / forget it. */
    int (*add)(struct wr_exchange *x, struct wr_binding *b);
    void (*remove)(struct wr_exchange *x, struct wr_binding *b);
    /* Call emit once for every binding that matches. */
    void (*route)(struct wr_exchange *x, const struct wr_route_msg *m, wr_route_emit_fn emit,
                  void *ctx);
    /* Types from plugins (plugin/xtype.c); NULL for the built-in ones.
     * declare: check a new exchange's arguments once its flags are set
     * (406/503 with err filled refuse it). validate_binding: validate's
     * job with the exchange at hand and the refusal's own text. */
    int (*declare)(struct wr_exchange *x, struct wr_errbuf *err);
    /* A message this exchange held durably (wr_exchange_hold) before the
     * broker stopped, given back at recovery (a reference to take). */
    void (*recover)(struct wr_exchange *x, struct wr_msg *m);
    int (*validate_binding)(struct wr_exchange *x, struct wr_str key, struct wr_str args,
                            struct wr_errbuf *err);
};

extern const struct wr_xtype wr_xtype_direct;
extern const struct wr_xtype wr_xtype_fanout;
extern const struct wr_xtype wr_xtype_topic;
extern const struct wr_xtype wr_xtype_headers;

/* Type by name ("direct"...), NULL when unknown. */
const struct wr_xtype *wr_xtype_find(struct wr_str name);
/* The i-th known type, the built-in ones sorted by name, then those of
 * plugins; NULL past the last (a walk). */
const struct wr_xtype *wr_xtype_at(size_t i);
/* A durable exchange's identity in the journal, for what its type holds
 * (a delayed exchange's messages): a hash of vhost and name, with the top
 * bit set so it is never a queue's. */
uint64_t wr_exchange_holder_id(const struct wr_exchange *x);

/* Keep m for later on behalf of exchange x, from within x's route. When x
 * is durable and m persistent, m is journaled as held by x (flag
 * WR_MSG_HELD; the publisher's confirm waits for it) and comes back to x's
 * type at recovery; res->held_failed when that failed. Returns 0 or -1. */
struct wr_route_result;
int wr_exchange_hold(struct wr_exchange *x, struct wr_msg *m, struct wr_route_result *res);
/* m, held by x, is done with: the journal forgets it. */
void wr_exchange_release(struct wr_exchange *x, struct wr_msg *m);
/* The same in two steps, for routing a held message on: unhold makes m an
 * ordinary message again (returns the held record's id, 0 when m was not
 * held), and once m is routed (and journaled for its queues),
 * release_id lets the record go. A crash between the two delivers it
 * twice, never not at all. */
uint64_t wr_exchange_unhold(struct wr_msg *m);
void wr_exchange_release_id(struct wr_exchange *x, uint64_t id);

/* Add a type (a plugin's). The table is the process's, like the code it
 * points to. Returns 0, WR_EEXISTS when the name is taken, or WR_ENOMEM. */
int wr_xtype_register(const struct wr_xtype *t);
/* Remove it again (no exchange of the type may remain). */
void wr_xtype_unregister(const struct wr_xtype *t);

struct wr_dedup;

struct wr_exchange {
    struct wr_hnode node; /* in vhost->exchanges, key = name */
    struct wr_vhost *vhost;
    const struct wr_xtype *type;
    void *type_state;
    char *name; /* NUL-terminated copy; see wr_exchange_name */
    bool durable, auto_delete, internal;
    struct wr_str args;         /* raw declare arguments, owned */
    struct wr_exchange *alternate; /* resolved lazily from alternate_name */
    char *alternate_name;       /* NUL-terminated copy of alternate_len bytes */
    uint32_t alternate_len;
    struct wr_list bindings;    /* struct wr_binding.src_node: bindings from here */
    struct wr_list bound_to_me; /* struct wr_binding.dst_node: e2e bindings into here */
    struct wr_hmap bindex;      /* every binding by (dest, key, args) */
    uint32_t nbindings;
    uint32_t route_mark;        /* seen by this routing pass (= vhost->route_gen) */
    struct wr_counter publish_in, publish_out; /* see route_exchange in exchange.c */
    bool doomed;                /* on vhost->doomed: about to be auto-deleted */
    struct wr_exchange *doomed_next; /* next on vhost->doomed */
    bool dedup_on;                   /* x-message-deduplication: true */
    struct wr_dedup *dedup;          /* owned; made on first use (dedup.h) */
};

/* The name as declared, every byte of it (it may hold NUL bytes). */
static inline struct wr_str wr_exchange_name(const struct wr_exchange *x)
{
    return x->node.key;
}

/* Generic exchange operations (exchange.c). */
struct wr_exchange *wr_exchange_new(struct wr_vhost *vh, struct wr_str name,
                                    const struct wr_xtype *type, struct wr_str args);
/* Removes every binding from and to x, then frees it (caller unlinked it). */
void wr_exchange_free(struct wr_exchange *x);
/* Add a binding src -> dest; binding the same (dest, key, args) twice is a
 * no-op. dest_list is the destination's list of bindings into it. */
int wr_exchange_bind(struct wr_exchange *src, enum wr_dest_kind kind, void *dest,
                     struct wr_list *dest_list, struct wr_str key, struct wr_str args);
struct wr_binding *wr_exchange_binding_find(struct wr_exchange *src, void *dest,
                                            struct wr_str key, struct wr_str args);

#endif
