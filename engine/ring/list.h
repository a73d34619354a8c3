/* list.h - intrusive circular doubly-linked lists: O(1) unlink for pools and deadline queues. */
#ifndef RF_LIST_H
#define RF_LIST_H

#include <stddef.h>

struct list {
    struct list *next, *prev;
};

static inline void list_init(struct list *l) { l->next = l->prev = l; }
static inline int list_empty(const struct list *l) { return l->next == l; }
static inline int list_linked(const struct list *n) { return n->next != NULL && n->next != n; }

static inline void list_add_tail(struct list *head, struct list *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

/* Unlink and leave the node self-linked, so unlinking twice is harmless. */
static inline void list_del(struct list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = n;
}

#define list_entry(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

#endif
