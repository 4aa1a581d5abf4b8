/*
 * argshash.h - the hash RabbitMQ's management API puts in a binding's
 * properties key: erlang:phash2/2 (range 2^32) of the binding's arguments
 * as RabbitMQ holds them, a list of {Key, Type, Value} sorted by key.
 * rabbitmqadmin and other clients name bindings by that key, so Warren
 * computes the same value from the field-table bytes it keeps.
 */
#ifndef WR_MGMT_ARGSHASH_H
#define WR_MGMT_ARGSHASH_H

#include <stdint.h>

#include "wire/buf.h"

/* The hash of a validated field-table body (not empty). */
uint32_t wr_mgmt_args_hash(struct wr_str table);

#endif
