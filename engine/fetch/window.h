/*
 * window.h - the ordered result window: request i lives in entry i mod W from admission
 * until its result is delivered, in order.
 */
#ifndef RF_WINDOW_H
#define RF_WINDOW_H

#include <stdint.h>

#include "ring/dq.h"
#include "ringfetch.h"

#define W_NONE UINT32_MAX /* an absent string offset */
#define REQ_INLINE 160    /* string bytes an entry keeps inline; more live on the heap
                             from the moment they are needed until the delivery */
#define W_PAGE_SHIFT 7    /* entries are allocated 128 at a time (~60 KB), when first used */

enum { W_FREE = 0, W_PENDING, W_DONE };

struct fconn;
struct host;

/*
 * A request from admission to delivery. `str` holds the URL as submitted (without
 * userinfo), the URL as sent, the method, the header block, the captured header values,
 * the peer address, the redirect chain and the kept body: inline up to REQ_INLINE bytes,
 * beyond that in a heap area given back at delivery, so memory follows what is in flight.
 * Offsets into str stay valid when it grows; pointers into it do not.
 */
struct request {
    uint8_t state;
    uint8_t reused;
    uint8_t tls_resumed;
    uint8_t hdr_has;          /* HTTP1_HAS_* of the caller's headers */
    rf_error err;
    int status;
    uint64_t body_bytes;
    int64_t content_length;
    uint32_t connect_us, ttfb_us, total_us, tls_us;
    uint32_t addresses_tried;
    uint32_t timeout_ms, connect_timeout_ms; /* this request's, defaults filled in */
    uint64_t max_body;
    size_t keep_body;
    const void *body;         /* the caller's (RF_REQ_STATIC) or body_copy */
    size_t body_len;
    void *body_copy;          /* freed when the request ends */
    void *userdata;
    const char *tls_version;  /* a static string, NULL for http */
    char *str;                /* inl, or the heap */
    uint32_t str_cap, str_len;
    uint32_t url, url_len;    /* as submitted, without user:password@ */
    uint32_t wire, wire_len;  /* as sent: normalised (see url_normalize) */
    uint32_t method, hdrs, hdrs_len, auth, auth_len;
    uint32_t loc, ctype, server, ip, kept, detail; /* offsets into str, or W_NONE */
    uint32_t retry_after;
    uint32_t kept_len;
    /* Its life across connections (policy.c): */
    uint64_t index;
    uint64_t t_admit;         /* the whole chain of hops and retries shares its deadline */
    struct dq_node deadline;
    struct dq_node wait;      /* a retry's back-off, parked behind its host, or ready */
    struct fconn *fc;         /* the connection serving it, or NULL */
    uint16_t attempts;        /* sends of the current URL */
    uint16_t redirects;
    uint32_t chain;           /* the hops before this one: records in str (policy.c) */
    struct host *host;        /* politeness: the host it holds or waits for, or NULL */
    uint8_t host_held;        /* it counts against its host's limits */
    uint8_t outcome;          /* a retry is waiting: the last outcome stands if time runs out */
    char inl[REQ_INLINE];
};

struct rf_window {
    struct request **page;    /* size >> W_PAGE_SHIFT pages, each NULL until used */
    uint32_t size, mask;
    uint64_t head; /* the next index to deliver */
    uint64_t next; /* the next index to admit */
};

int window_init(struct rf_window *w, uint32_t size);
void window_free(struct rf_window *w);

static inline int window_has_room(const struct rf_window *w) { return w->next - w->head < w->size; }
static inline struct request *window_at(struct rf_window *w, uint64_t i)
{
    return &w->page[(i & w->mask) >> W_PAGE_SHIFT][i & ((1u << W_PAGE_SHIFT) - 1)];
}

/* Take the next index (its entry's page allocated if new): 0 or -RF_ERR_NOMEM. */
int window_take(struct rf_window *w, uint64_t *index);

static inline const char *request_str(const struct request *r, uint32_t off)
{
    return off == W_NONE ? NULL : r->str + off;
}

/* Start an entry's string area over (empty, inline). */
void request_clear(struct request *r);
/* Append bytes (and a NUL) to the string area; returns the offset or W_NONE when out of
 * memory. */
uint32_t request_append(struct request *r, const char *s, uint32_t len);
/* Room for `extra` more bytes: a pointer to write them to (then request_commit()), or NULL. */
char *request_reserve(struct request *r, uint32_t extra);
uint32_t request_commit(struct request *r, uint32_t len);
/* Extend the string that ends the area (started by request_append) by more bytes. */
int request_extend(struct request *r, const char *s, uint32_t len);
/* Forget captured strings and counters (a retried request starts over). */
void request_reset_response(struct request *r);
/* Give back what only the request in flight needed (the body copy). */
void request_end(struct request *r);

/*
 * Deliver every finished entry at the head, in order, through fn(userp, &result); each
 * entry's heap area goes back after its callback. Returns how many were delivered.
 */
uint64_t window_emit(struct rf_window *w, rf_result_fn fn, void *userp);

#endif
