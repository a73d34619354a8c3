/* window.h - the ordered result window: job i lives in entry i mod W until delivered. */
#ifndef RF_WINDOW_H
#define RF_WINDOW_H

#include <stdint.h>

#include "ringfetch.h"

#define W_NONE UINT32_MAX /* an absent string offset */

enum { W_FREE = 0, W_PENDING, W_DONE };

/*
 * Everything a job needs from admission to delivery. `str` holds the URL and, after it,
 * the captured header values, the peer address and the kept body; it grows to the
 * largest job seen and is reused, so steady state allocates nothing.
 */
struct request {
    uint8_t state;
    uint8_t reused;
    rf_error err;
    int status;
    uint64_t body_bytes;
    int64_t content_length;
    uint32_t connect_us, ttfb_us, total_us;
    const char *method;
    const char *const *headers;
    size_t n_headers;
    const void *body;
    size_t body_len;
    void *userdata;
    char *str;
    uint32_t str_cap, str_len, url_len;
    uint32_t loc, ctype, server, ip, kept, detail; /* offsets into str, or W_NONE */
    uint32_t kept_len;
    const char *tls_version; /* a static string, NULL for http */
    uint32_t tls_us;
    uint8_t tls_resumed;
};

struct rf_window {
    struct request *e;
    uint32_t size, mask;
    uint64_t head; /* the next index to deliver */
    uint64_t next; /* the next index to admit */
};

int window_init(struct rf_window *w, uint32_t size);
void window_free(struct rf_window *w);

static inline int window_has_room(const struct rf_window *w) { return w->next - w->head < w->size; }
static inline struct request *window_at(struct rf_window *w, uint64_t i) { return &w->e[i & w->mask]; }

/* Take the next index for `req`, copy its URL. Returns 0 or -RF_ERR_NOMEM. */
int window_admit(struct rf_window *w, const rf_request *req, uint64_t *index);

/* Append bytes to an entry's string area; returns the offset or W_NONE when out of memory. */
uint32_t request_append(struct request *e, const char *s, uint32_t len);
/* Extend the string that ends the area (started by request_append) by more bytes. */
int request_extend(struct request *e, const char *s, uint32_t len);
/* Forget captured strings and counters (a retried job starts over). */
void request_reset_response(struct request *e);

/* Deliver every finished entry at the head, in order. Returns how many were delivered. */
uint64_t window_emit(struct rf_window *w, rf_result_fn fn, void *userp);

#endif
