/* pool.c - free fetch connections, and kept-alive ones indexed by origin. */
#include <stdlib.h>
#include <string.h>

#include "fetch/fetch.h"
#include "ring/hash.h"

int pool_init(struct worker *w)
{
    uint32_t nb = 1;

    while (nb < w->nconns * 2)
        nb <<= 1;
    w->idle_buckets = malloc(nb * sizeof(*w->idle_buckets));
    if (!w->idle_buckets)
        return -RF_ERR_NOMEM;
    w->bucket_mask = nb - 1;
    for (uint32_t i = 0; i < nb; i++)
        list_init(&w->idle_buckets[i]);
    list_init(&w->free_list);
    list_init(&w->idle_lru);
    /* pool_take() takes from the front: slot 0 first, low slots, low descriptor indexes. */
    for (uint32_t i = 0; i < w->nconns; i++) {
        struct fconn *f = &w->fc[i];

        list_init(&f->pool);
        list_init(&f->lru);
        dq_node_init(&f->backoff);
        list_add_tail(&w->free_list, &f->pool);
    }
    return 0;
}

void pool_free(struct worker *w)
{
    free(w->idle_buckets);
    w->idle_buckets = NULL;
}

/* FNV-1a over the origin; the host arrives lower-cased. */
uint32_t origin_hash(uint8_t scheme, const char *host, uint32_t len, uint16_t port)
{
    uint8_t sp[3] = {scheme, (uint8_t)(port & 0xff), (uint8_t)(port >> 8)};

    return fnv1a(fnv1a(FNV1A_INIT, sp, sizeof(sp)), host, len);
}

static int same_origin(const struct fconn *f, uint8_t scheme, const char *host, uint32_t len,
                       uint16_t port)
{
    return f->scheme == scheme && f->port == port && f->host_len == len &&
           memcmp(f->host, host, len) == 0;
}

/*
 * A slot for a new job: a kept-alive connection to the same origin when there is one
 * (returned in state C_IDLE), else a free slot, else the least recently used idle
 * connection of another origin, closed first. NULL only when every slot has a job.
 */
struct fconn *pool_take(struct worker *w, uint8_t scheme, const char *host, uint32_t len,
                       uint16_t port, uint32_t hash)
{
    struct list *b = &w->idle_buckets[hash & w->bucket_mask];
    struct fconn *f;

    for (struct list *n = b->next; n != b; n = n->next) {
        f = list_entry(n, struct fconn, pool);
        if (f->origin_hash == hash && same_origin(f, scheme, host, len, port)) {
            list_del(&f->pool);
            list_del(&f->lru);
            return f;
        }
    }
    if (list_empty(&w->free_list) && !list_empty(&w->idle_lru)) {
        f = list_entry(w->idle_lru.next, struct fconn, lru);
        fconn_close(w, f); /* puts it on the free list */
    }
    if (list_empty(&w->free_list))
        return NULL;
    f = list_entry(w->free_list.next, struct fconn, pool);
    list_del(&f->pool);
    return f;
}

void pool_put_idle(struct worker *w, struct fconn *f)
{
    list_add_tail(&w->idle_buckets[f->origin_hash & w->bucket_mask], &f->pool);
    list_add_tail(&w->idle_lru, &f->lru);
}

void pool_put_free(struct worker *w, struct fconn *f)
{
    list_del(&f->pool);
    list_del(&f->lru);
    list_add_tail(&w->free_list, &f->pool);
}
