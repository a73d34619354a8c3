/* window.c - the ordered result window: admission bound, string areas and in-order delivery. */
#include "fetch/window.h"

#include <stdlib.h>
#include <string.h>

#define PAGE (1u << W_PAGE_SHIFT)

static int make_page(struct rf_window *w, uint32_t p)
{
    w->page[p] = calloc(PAGE, sizeof(**w->page));
    if (!w->page[p])
        return -RF_ERR_NOMEM;
    for (uint32_t i = 0; i < PAGE; i++) {
        request_clear(&w->page[p][i]);
        dq_node_init(&w->page[p][i].deadline);
        dq_node_init(&w->page[p][i].wait);
    }
    return 0;
}

int window_init(struct rf_window *w, uint32_t size)
{
    uint32_t n = PAGE;

    while (n < size)
        n <<= 1;
    memset(w, 0, sizeof(*w));
    w->page = calloc(n >> W_PAGE_SHIFT, sizeof(*w->page));
    if (!w->page)
        return -RF_ERR_NOMEM;
    w->size = n;
    w->mask = n - 1;
    /* The first page now, so that the first rf_step() does not fault it in. */
    if (make_page(w, 0)) {
        free(w->page);
        w->page = NULL;
        return -RF_ERR_NOMEM;
    }
    return 0;
}

void window_free(struct rf_window *w)
{
    if (!w->page)
        return;
    for (uint32_t p = 0; p < w->size >> W_PAGE_SHIFT; p++) {
        for (uint32_t i = 0; w->page[p] && i < PAGE; i++) {
            request_end(&w->page[p][i]);
            if (w->page[p][i].str != w->page[p][i].inl)
                free(w->page[p][i].str);
        }
        free(w->page[p]);
    }
    free(w->page);
    memset(w, 0, sizeof(*w));
}

int window_take(struct rf_window *w, uint64_t *index)
{
    uint32_t p = (uint32_t)((w->next & w->mask) >> W_PAGE_SHIFT);

    /* A page is made when the window first reaches it: memory follows what is in use. */
    if (!w->page[p] && make_page(w, p))
        return -RF_ERR_NOMEM;
    *index = w->next++;
    return 0;
}

/* ---- the string area ---- */

void request_clear(struct request *r)
{
    if (r->str && r->str != r->inl)
        free(r->str);
    r->str = r->inl;
    r->str_cap = REQ_INLINE;
    r->str_len = 0;
}

char *request_reserve(struct request *r, uint32_t extra)
{
    uint64_t need = (uint64_t)r->str_len + extra + 1;
    uint32_t cap = r->str_cap;
    char *p;

    if (need <= r->str_cap)
        return r->str + r->str_len;
    if (need > UINT32_MAX / 2)
        return NULL;
    while (cap < need)
        cap *= 2;
    if (r->str == r->inl) {
        p = malloc(cap);
        if (p)
            memcpy(p, r->inl, r->str_len);
    } else {
        p = realloc(r->str, cap);
    }
    if (!p)
        return NULL;
    r->str = p;
    r->str_cap = cap;
    return r->str + r->str_len;
}

uint32_t request_commit(struct request *r, uint32_t len)
{
    uint32_t off = r->str_len;

    r->str[off + len] = '\0';
    r->str_len = off + len + 1;
    return off;
}

uint32_t request_append(struct request *r, const char *s, uint32_t len)
{
    char *p = request_reserve(r, len);

    if (!p)
        return W_NONE;
    memcpy(p, s, len);
    return request_commit(r, len);
}

int request_extend(struct request *r, const char *s, uint32_t len)
{
    if (!request_reserve(r, len))
        return -1;
    /* Overwrite the terminating NUL of the last string and write a new one. */
    memcpy(r->str + r->str_len - 1, s, len);
    r->str_len += len;
    r->str[r->str_len - 1] = '\0';
    return 0;
}

void request_reset_response(struct request *r)
{
    r->status = 0;
    r->body_bytes = 0;
    r->content_length = -1;
    r->loc = r->ctype = r->server = r->ip = r->kept = r->detail = r->retry_after = W_NONE;
    r->kept_len = 0;
    r->tls_version = NULL;
    r->tls_us = 0;
    r->tls_resumed = 0;
    r->connect_us = r->ttfb_us = r->total_us = 0;
    r->addresses_tried = 0;
    r->reused = 0;
    r->err = RF_OK;
}

void request_end(struct request *r)
{
    free(r->body_copy);
    r->body_copy = NULL;
}

/* ---- delivery ---- */

/* The redirect chain, oldest hop first, into hops[] (at most max entries). */
static size_t chain_of(const struct request *e, rf_redirect *hops, size_t max)
{
    size_t n = e->redirects < max ? e->redirects : max;
    uint32_t off = e->chain;

    for (size_t i = n; i-- > 0 && off != W_NONE;) {
        uint32_t rec[2];

        memcpy(rec, e->str + off, sizeof(rec));
        hops[i].status = (int)rec[1];
        hops[i].url = e->str + off + sizeof(rec);
        off = rec[0];
    }
    return n;
}

uint64_t window_emit(struct rf_window *w, rf_result_fn fn, void *userp)
{
    uint64_t n = 0;

    while (w->head < w->next) {
        struct request *e = window_at(w, w->head);
        rf_result r;

        /* Pairs with the store in engine_request_done(): fields written before it are seen. */
        if (__atomic_load_n(&e->state, __ATOMIC_SEQ_CST) != W_DONE)
            break;
        memset(&r, 0, sizeof(r));
        r.index = w->head;
        r.url = request_str(e, e->url);
        r.error = e->err;
        r.status = e->status;
        r.body_bytes = e->body_bytes;
        r.content_length = e->content_length;
        r.location = request_str(e, e->loc);
        r.content_type = request_str(e, e->ctype);
        r.server = request_str(e, e->server);
        r.ip = request_str(e, e->ip);
        r.body = request_str(e, e->kept);
        r.body_len = e->kept_len;
        r.connect_us = e->connect_us;
        r.ttfb_us = e->ttfb_us;
        r.total_us = e->total_us;
        r.reused = e->reused;
        r.userdata = e->userdata;
        r.error_detail = request_str(e, e->detail);
        r.tls_version = e->tls_version;
        r.tls_us = e->tls_us;
        r.tls_resumed = e->tls_resumed;
        r.addresses_tried = e->addresses_tried;
        r.attempts = e->attempts ? e->attempts : 1;
        r.redirects = e->redirects;
        if (e->redirects) {
            rf_redirect small[16], *hops = e->redirects <= 16 ? small
                                          : malloc(e->redirects * sizeof(*hops));

            r.final_url = request_str(e, e->wire);
            r.chain = hops;
            r.n_chain = hops ? chain_of(e, hops, e->redirects) : 0;
            fn(userp, &r);
            if (hops != small)
                free(hops);
        } else {
            fn(userp, &r);
        }
        /* The heap part goes back now: memory follows the requests in flight. */
        request_clear(e);
        e->state = W_FREE;
        __atomic_store_n(&w->head, w->head + 1, __ATOMIC_SEQ_CST);
        n++;
    }
    return n;
}
