/* udata.h - what travels in an SQE's user_data: op tag, slot generation, slot index. */
#ifndef RF_UDATA_H
#define RF_UDATA_H

#include <stdint.h>

/*
 * Layout: [op:8][gen:24][idx:32]. The generation lets a completion that arrives after
 * its slot was torn down and reused be recognised and dropped (its buffer returned).
 */
enum rf_op {
    OP_IGNORE = 0, /* completions nobody waits for (cancel, close) */
    OP_SOCKET,
    OP_CONNECT,
    OP_SEND,
    OP_RECV,
    OP_DNS_POLL,   /* idx = c-ares socket tracker index */
    OP_WAKE,       /* the eventfd read that rf_cancel() wakes */
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
