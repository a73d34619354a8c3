/*
 * drive.h - plays the kernel for one slot of a real engine: admits a job, brings its slot to
 * where a connect completion leaves it, and hands conn_handle_cqe() the recv completions a
 * multishot recv would post. Shared by test_http1 and the response fuzz target.
 *
 * Nothing is connected: the operations the engine queues (cancel, close, recv on an empty
 * descriptor slot) fail harmlessly and drive_drain() discards them. Setup failures abort:
 * they are not what a caller is testing.
 */
#ifndef RF_DRIVE_H
#define RF_DRIVE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fetch/internal.h"
#include "ring/udata.h"

static unsigned drive_next_bid_ __attribute__((unused));

/* Complete and discard whatever the engine queued on the ring. */
static inline void drive_drain(struct worker *wk)
{
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;

    io_uring_submit_and_get_events(&wk->ring.uring);
    io_uring_for_each_cqe(&wk->ring.uring, head, cqe) n++;
    io_uring_cq_advance(&wk->ring.uring, n);
}

/* Admit a request and bring a free slot to C_ACTIVE with its recv armed; *gen is its generation. */
static inline struct conn *drive_start(struct worker *wk, const rf_request *req, uint64_t *job,
                                       uint32_t *gen)
{
    struct rf_engine *eng = wk->eng;
    struct rf_url u;
    struct wentry *w;
    struct conn *c;
    char host[RF_HOST_MAX + 1];
    uint32_t hash;
    struct io_uring_cqe cqe;

    if (window_admit(&eng->win, req, job) != 0)
        abort();
    w = window_at(&eng->win, *job);
    if (url_parse(w->str, w->url_len, &u) != 0)
        abort();
    for (uint32_t i = 0; i < u.host_len; i++) {
        char ch = w->str[u.host_off + i];

        host[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
    }
    hash = origin_hash(u.scheme, host, u.host_len, u.port);
    c = pool_take(wk, u.scheme, host, u.host_len, u.port, hash);
    if (!c || c->state != C_FREE)
        abort(); /* every caller leaves its slot free */
    c->job = *job;
    c->t_admit = wk->now;
    c->deadline = wk->now + 1000000;
    c->retried = c->got_bytes = c->tries = c->extra = c->reused = 0;
    list_add_tail(&wk->deadlines, &c->timer);
    c->scheme = u.scheme;
    c->port = u.port;
    c->host_len = (uint8_t)u.host_len;
    memcpy(c->host, host, u.host_len);
    c->origin_hash = hash;
    if (http1_write_request(wk, c, w, &u, w->str) != 0)
        abort();
    c->has_socket = 1;
    http1_begin_response(wk, c);
    conn_set_state(wk, c, C_CONNECTING);
    /* The connect completes: the slot turns active and arms its multishot recv. */
    memset(&cqe, 0, sizeof(cqe));
    cqe.user_data = ud_pack(OP_CONNECT, c->gen, c->idx);
    cqe.res = 0;
    conn_handle_cqe(wk, &cqe);
    if (c->state != C_ACTIVE || !c->recv_armed)
        abort();
    *gen = c->gen;
    return c;
}

/* One recv completion carrying n bytes (at most buf_size) in a provided buffer. */
static inline void drive_recv(struct worker *wk, struct conn *c, uint32_t gen, const char *p,
                              size_t n)
{
    struct io_uring_cqe cqe;
    unsigned bid = drive_next_bid_++ & (wk->ring.nbufs - 1);

    if (n > wk->ring.buf_size)
        abort();
    memcpy(ring_buf(&wk->ring, bid), p, n);
    memset(&cqe, 0, sizeof(cqe));
    cqe.user_data = ud_pack(OP_RECV, gen, c->idx);
    cqe.res = (int)n;
    cqe.flags = IORING_CQE_F_BUFFER | IORING_CQE_F_MORE | bid << IORING_CQE_BUFFER_SHIFT;
    conn_handle_cqe(wk, &cqe);
}

/* The peer closed: a recv completion with res 0. */
static inline void drive_eof(struct worker *wk, struct conn *c, uint32_t gen)
{
    struct io_uring_cqe cqe;

    memset(&cqe, 0, sizeof(cqe));
    cqe.user_data = ud_pack(OP_RECV, gen, c->idx);
    cqe.res = 0;
    conn_handle_cqe(wk, &cqe);
}

/*
 * End the job as the loop would (its deadline, when it still waits for bytes), deliver the
 * window through fn, and free the slot. Returns the slot's state before it was freed; *emitted
 * is how many results window_emit() delivered.
 */
static inline int drive_settle(struct worker *wk, struct conn *c, uint64_t job, rf_result_fn fn,
                               void *userp, uint64_t *emitted)
{
    struct rf_engine *eng = wk->eng;
    int state;

    if (window_at(&eng->win, job)->state != W_DONE) {
        c->deadline = wk->now;
        conn_expire(wk);
    }
    *emitted = window_emit(&eng->win, fn, userp);
    state = c->state;
    if (c->state == C_IDLE)
        conn_close(wk, c);
    drive_drain(wk);
    return state;
}

#endif
