/* pool.c - the slot limiter: free slots, and kept-alive connections indexed by origin. */
#include <stdlib.h>
#include <string.h>

#include "fetch/internal.h"

int pool_init(struct worker *e)
{
    uint32_t nb = 1;

    while (nb < e->nconns * 2)
        nb <<= 1;
    e->idle_buckets = malloc(nb * sizeof(*e->idle_buckets));
    if (!e->idle_buckets)
        return -RF_ERR_NOMEM;
    e->bucket_mask = nb - 1;
    for (uint32_t i = 0; i < nb; i++)
        list_init(&e->idle_buckets[i]);
    list_init(&e->free_list);
    list_init(&e->idle_lru);
    /* pool_take() takes from the front: slot 0 first, low slots, low descriptor indexes. */
    for (uint32_t i = 0; i < e->nconns; i++) {
        struct conn *c = &e->conns[i];

        list_init(&c->pool);
        list_init(&c->lru);
        list_init(&c->timer);
        list_init(&c->ctimer);
        list_add_tail(&e->free_list, &c->pool);
    }
    return 0;
}

void pool_free(struct worker *e)
{
    free(e->idle_buckets);
    e->idle_buckets = NULL;
}

/* FNV-1a over the origin; the host arrives lower-cased. */
uint32_t origin_hash(uint8_t scheme, const char *host, uint32_t len, uint16_t port)
{
    uint32_t h = 2166136261u;

    h = (h ^ scheme) * 16777619u;
    h = (h ^ (port & 0xff)) * 16777619u;
    h = (h ^ (port >> 8)) * 16777619u;
    for (uint32_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)host[i]) * 16777619u;
    return h;
}

static int same_origin(const struct conn *c, uint8_t scheme, const char *host, uint32_t len,
                       uint16_t port)
{
    return c->scheme == scheme && c->port == port && c->host_len == len &&
           memcmp(c->host, host, len) == 0;
}

/*
 * A slot for a new job: a kept-alive connection to the same origin when there is one
 * (returned in state C_IDLE), else a free slot, else the least recently used idle
 * connection of another origin, closed first. NULL only when every slot has a job.
 */
struct conn *pool_take(struct worker *e, uint8_t scheme, const char *host, uint32_t len,
                       uint16_t port, uint32_t hash)
{
    struct list *b = &e->idle_buckets[hash & e->bucket_mask];
    struct conn *c;

    for (struct list *n = b->next; n != b; n = n->next) {
        c = list_entry(n, struct conn, pool);
        if (c->origin_hash == hash && same_origin(c, scheme, host, len, port)) {
            list_del(&c->pool);
            list_del(&c->lru);
            return c;
        }
    }
    if (list_empty(&e->free_list) && !list_empty(&e->idle_lru)) {
        c = list_entry(e->idle_lru.next, struct conn, lru);
        conn_close(e, c); /* puts it on the free list */
    }
    if (list_empty(&e->free_list))
        return NULL;
    c = list_entry(e->free_list.next, struct conn, pool);
    list_del(&c->pool);
    return c;
}

void pool_put_idle(struct worker *e, struct conn *c)
{
    list_add_tail(&e->idle_buckets[c->origin_hash & e->bucket_mask], &c->pool);
    list_add_tail(&e->idle_lru, &c->lru);
}

void pool_put_free(struct worker *e, struct conn *c)
{
    list_del(&c->pool);
    list_del(&c->lru);
    list_add_tail(&e->free_list, &c->pool);
}
