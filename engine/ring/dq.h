/*
 * dq.h - deadline queues: lists kept in deadline order, whose entries mostly wait the same
 * delay, so an insertion is O(1) at the tail, the head is always the earliest and expiring
 * never scans. One queue per kind of deadline (connect, request, back-off, ...); an entry
 * leaves in O(1) when its wait ends early.
 */
#ifndef RF_DQ_H
#define RF_DQ_H

#include <stdint.h>

#include "ring/list.h"

struct dq_node {
    struct list link;
    uint64_t at; /* absolute µs on the ring clock */
};

struct dq {
    struct list head;
    uint64_t delay; /* what every entry waits */
};

static inline void dq_init(struct dq *q, uint64_t delay)
{
    list_init(&q->head);
    q->delay = delay;
}

static inline void dq_node_init(struct dq_node *n) { list_init(&n->link); }

/*
 * Queue n to be due at `at`, which may differ from the queue's delay (a per-request
 * timeout): it goes in from the tail to its place, so a queue of equal delays still costs
 * O(1) and an odd one walks only past the entries due after it.
 */
static inline void dq_add_at(struct dq *q, struct dq_node *n, uint64_t at)
{
    struct list *pos;

    list_del(&n->link); /* first: n may be the tail itself */
    pos = q->head.prev;
    n->at = at;
    while (pos != &q->head && list_entry(pos, struct dq_node, link)->at > at)
        pos = pos->prev;
    /* insert after pos */
    n->link.prev = pos;
    n->link.next = pos->next;
    pos->next->prev = &n->link;
    pos->next = &n->link;
}

/* Queue n to be due q->delay after now (leaving whatever queue it was on). */
static inline void dq_add(struct dq *q, struct dq_node *n, uint64_t now)
{
    dq_add_at(q, n, now + q->delay);
}

static inline void dq_del(struct dq_node *n) { list_del(&n->link); }

static inline int dq_queued(const struct dq_node *n) { return list_linked(&n->link); }

/* The head when it is due at `now`, else NULL. */
static inline struct dq_node *dq_due(struct dq *q, uint64_t now)
{
    struct dq_node *n;

    if (list_empty(&q->head))
        return NULL;
    n = list_entry(q->head.next, struct dq_node, link);
    return n->at <= now ? n : NULL;
}

/* When the head is due, or -1 when the queue is empty. */
static inline int64_t dq_next(const struct dq *q)
{
    if (list_empty(&q->head))
        return -1;
    return (int64_t)list_entry(q->head.next, struct dq_node, link)->at;
}

/* The earlier of two due times where -1 means none. */
static inline int64_t dq_min(int64_t a, int64_t b)
{
    return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

#endif
