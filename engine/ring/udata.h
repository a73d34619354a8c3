/* udata.h - what travels in an SQE's user_data: operation tag, generation, index. */
#ifndef RF_UDATA_H
#define RF_UDATA_H

#include <stdint.h>

/*
 * Layout: [op:8][gen:24][idx:32]. The tag routes a completion to the layer that queued it
 * (ring_on); the generation lets a completion that arrives after its connection was torn
 * down and reused be recognised and dropped (its buffer returned).
 */
enum rf_op {
    OP_IGNORE = 0, /* completions nobody waits for (cancels) */
    OP_CLOSE,      /* a direct descriptor's close: idx is the descriptor (ring.c) */
    OP_SOCKET,     /* the connection layer (conn.c): idx is the connection */
    OP_CONNECT,
    OP_SEND,
    OP_RECV,
    OP_DNS_POLL,   /* the resolver: idx = c-ares socket tracker index */
    OP_WAKE,       /* the fetch engine's eventfd read that rf_cancel() and new work wake */
    OP__COUNT
};

#define UD_GEN_MASK 0xffffffu

static inline uint64_t ud_pack(enum rf_op op, uint32_t gen, uint32_t idx)
{
    return (uint64_t)op << 56 | (uint64_t)(gen & UD_GEN_MASK) << 32 | idx;
}

static inline enum rf_op ud_op(uint64_t ud) { return (enum rf_op)(ud >> 56); }
static inline uint32_t ud_gen(uint64_t ud) { return (uint32_t)(ud >> 32) & UD_GEN_MASK; }
static inline uint32_t ud_idx(uint64_t ud) { return (uint32_t)ud; }

#endif
