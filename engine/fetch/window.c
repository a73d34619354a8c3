/* results.c - the ordered result window: admission bound, string areas and in-order delivery. */
#include "fetch/window.h"

#include <stdlib.h>
#include <string.h>

int window_init(struct rf_window *w, uint32_t size)
{
    uint32_t n = 1;

    while (n < size)
        n <<= 1;
    memset(w, 0, sizeof(*w));
    w->e = calloc(n, sizeof(*w->e));
    if (!w->e)
        return -RF_ERR_NOMEM;
    w->size = n;
    w->mask = n - 1;
    return 0;
}

void window_free(struct rf_window *w)
{
    if (!w->e)
        return;
    for (uint32_t i = 0; i < w->size; i++)
        free(w->e[i].str);
    free(w->e);
    memset(w, 0, sizeof(*w));
}

static int request_reserve(struct request *e, uint32_t extra)
{
    uint64_t need = (uint64_t)e->str_len + extra + 1;
    uint32_t cap = e->str_cap ? e->str_cap : 128;
    char *p;

    if (need <= e->str_cap)
        return 0;
    if (need > UINT32_MAX / 2)
        return -1;
    while (cap < need)
        cap *= 2;
    p = realloc(e->str, cap);
    if (!p)
        return -1;
    e->str = p;
    e->str_cap = cap;
    return 0;
}

uint32_t request_append(struct request *e, const char *s, uint32_t len)
{
    uint32_t off;

    if (request_reserve(e, len))
        return W_NONE;
    off = e->str_len;
    memcpy(e->str + off, s, len);
    e->str[off + len] = '\0';
    e->str_len = off + len + 1;
    return off;
}

int request_extend(struct request *e, const char *s, uint32_t len)
{
    if (request_reserve(e, len))
        return -1;
    /* Overwrite the terminating NUL of the last string and write a new one. */
    memcpy(e->str + e->str_len - 1, s, len);
    e->str_len += len;
    e->str[e->str_len - 1] = '\0';
    return 0;
}

void request_reset_response(struct request *e)
{
    e->str_len = e->url_len + 1;
    e->status = 0;
    e->body_bytes = 0;
    e->content_length = -1;
    e->loc = e->ctype = e->server = e->ip = e->kept = e->detail = W_NONE;
    e->kept_len = 0;
    e->tls_version = NULL;
    e->tls_us = 0;
    e->tls_resumed = 0;
    e->connect_us = e->ttfb_us = e->total_us = 0;
    e->reused = 0;
    e->err = RF_OK;
}

int window_admit(struct rf_window *w, const rf_request *req, uint64_t *index)
{
    struct request *e = window_at(w, w->next);
    size_t len = strlen(req->url);

    e->str_len = 0;
    if (len > UINT32_MAX / 4 || request_append(e, req->url, (uint32_t)len) == W_NONE)
        return -RF_ERR_NOMEM;
    e->url_len = (uint32_t)len;
    request_reset_response(e);
    e->state = W_PENDING;
    e->method = req->method ? req->method : "GET";
    e->headers = req->headers;
    e->n_headers = req->headers ? req->n_headers : 0;
    e->body = req->body;
    e->body_len = req->body ? req->body_len : 0;
    e->userdata = req->userdata;
    *index = w->next++;
    return 0;
}

static const char *str_at(const struct request *e, uint32_t off)
{
    return off == W_NONE ? NULL : e->str + off;
}

uint64_t window_emit(struct rf_window *w, rf_result_fn fn, void *userp)
{
    uint64_t n = 0;

    while (w->head < w->next) {
        struct request *e = window_at(w, w->head);
        rf_result r;

        /* Pairs with the store in engine_job_done(): fields written before it are seen. */
        if (__atomic_load_n(&e->state, __ATOMIC_SEQ_CST) != W_DONE)
            break;
        r.index = w->head;
        r.url = e->str;
        r.error = e->err;
        r.status = e->status;
        r.body_bytes = e->body_bytes;
        r.content_length = e->content_length;
        r.location = str_at(e, e->loc);
        r.content_type = str_at(e, e->ctype);
        r.server = str_at(e, e->server);
        r.ip = str_at(e, e->ip);
        r.body = str_at(e, e->kept);
        r.body_len = e->kept_len;
        r.connect_us = e->connect_us;
        r.ttfb_us = e->ttfb_us;
        r.total_us = e->total_us;
        r.reused = e->reused;
        r.userdata = e->userdata;
        r.error_detail = str_at(e, e->detail);
        r.tls_version = e->tls_version;
        r.tls_us = e->tls_us;
        r.tls_resumed = e->tls_resumed;
        /* Free the entry before the callback so a callback's view is all it gets. */
        e->state = W_FREE;
        __atomic_store_n(&w->head, w->head + 1, __ATOMIC_SEQ_CST);
        n++;
        fn(userp, &r);
    }
    return n;
}
