/*
 * drive.h - plays the kernel for one fetch connection of a real engine: admits a request to
 * a literal-IP URL and starts it (fetch_start() -> conn_open() queues the connect chain),
 * hands the ring's OP_CONNECT handler the success of that attempt, then hands the OP_RECV
 * handler the completions a multishot recv would post, in provided buffers. Shared by
 * test_fetch and the response fuzz target.
 *
 * Nothing reaches the kernel: what the engine queues stays in the submission queue until
 * drive_drain() takes it back, completing the closes of direct descriptors (so their
 * indexes return to ring_file_get()) and dropping the rest; no socket is ever made. The
 * clock stands still: settling forces the request deadline and runs the ring's timers.
 * Setup failures abort: they are not what a caller is testing.
 */
#ifndef RF_DRIVE_H
#define RF_DRIVE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fetch/fetch.h"
#include "ring/udata.h"

#define DRIVE_SQES 64

/* What the engine queued since the last drive_drain(), in order (the first DRIVE_SQES). */
static struct io_uring_sqe drive_sqe[DRIVE_SQES] __attribute__((unused));
static unsigned drive_nsqe __attribute__((unused));
static unsigned drive_next_bid_ __attribute__((unused));

/* Hand a completion to the handler the ring registered for its tag, as ring_dispatch() does. */
static inline void drive_complete(struct worker *wk, uint64_t ud, int res, uint32_t flags)
{
    struct io_uring_cqe cqe;
    enum rf_op op = ud_op(ud);

    memset(&cqe, 0, sizeof(cqe));
    cqe.user_data = ud;
    cqe.res = res;
    cqe.flags = flags;
    if (op >= OP__COUNT)
        abort();
    wk->ring.handler[op].fn(wk->ring.handler[op].ctx, &cqe);
}

/*
 * Take back everything queued and not submitted: keep a copy in drive_sqe[], complete each
 * close of a direct descriptor with success, drop the rest. Returns how many there were.
 */
static inline unsigned drive_drain(struct worker *wk)
{
    struct io_uring_sq *sq = &wk->ring.uring.sq;
    unsigned n = 0;

    drive_nsqe = 0;
    for (unsigned h = sq->sqe_head; h != sq->sqe_tail; h++, n++)
        if (drive_nsqe < DRIVE_SQES)
            drive_sqe[drive_nsqe++] = sq->sqes[h & sq->ring_mask];
    sq->sqe_tail = sq->sqe_head;
    for (unsigned i = 0; i < drive_nsqe; i++)
        if (drive_sqe[i].opcode == IORING_OP_CLOSE && ud_op(drive_sqe[i].user_data) == OP_CLOSE)
            drive_complete(wk, drive_sqe[i].user_data, 0, 0);
    return n;
}

/* Expire what is due at the ring's (standing) clock, as ring_dispatch() does after the
 * completions. */
static inline void drive_timers(struct worker *wk) { ring_expire(&wk->ring); }

/*
 * Admit a request as admission does (window_take(), request_admit()) and begin it as
 * start_request() does: request_begin() runs it on the connection pool_take() gives.
 * Returns that connection (also when the request ended at once, e.g. too large), or NULL
 * when it failed before needing one (a bad URL, method or header).
 */
static inline struct fconn *drive_admit(struct worker *wk, const rf_request *req, uint64_t *job)
{
    struct rf_engine *eng = wk->eng;
    struct request *r;
    struct rf_url u;

    drive_drain(wk);
    if (window_take(&eng->win, job) != 0)
        abort();
    r = window_at(&eng->win, *job);
    if (request_admit(eng, r, req, sizeof(*req)) != 0)
        abort();
    r->index = *job;
    if (r->err == RF_OK && url_parse(r->str + r->wire, r->wire_len, &u) != 0)
        r->err = RF_ERR_INVALID_URL;
    if (r->err != RF_OK) {
        engine_request_done(wk, r, *job);
        return NULL;
    }
    request_begin(wk, r);
    if (r->fc)
        return r->fc;
    for (uint32_t i = 0; i < wk->nconns; i++) /* it ended already: the one it ran on */
        if (wk->fc[i].req == *job)
            return &wk->fc[i];
    abort();
}

/* The attempt in flight connects: the connection opens and arms its recv. Its generation. */
static inline uint32_t drive_connect(struct worker *wk, struct fconn *f)
{
    int lane = f->c.att[0].fidx >= 0 ? 0 : 1;

    if (f->c.state != CONN_CONNECTING || f->c.att[lane].fidx < 0)
        abort();
    drive_complete(wk, ud_pack(OP_CONNECT, f->c.att[lane].gen, f->c.idx), 0, 0);
    if (f->c.state != CONN_OPEN || !f->c.recv_armed || f->state != FC_BUSY)
        abort();
    return f->c.gen;
}

/* Admit and start a request to a free connection, and connect it; *gen is its generation. */
static inline struct fconn *drive_start(struct worker *wk, const rf_request *req, uint64_t *job,
                                        uint32_t *gen)
{
    struct fconn *f = drive_admit(wk, req, job);

    if (!f || f->reused)
        abort(); /* every caller of drive_start leaves no kept-alive connection behind */
    *gen = drive_connect(wk, f);
    return f;
}

/* One recv completion carrying n bytes (at most buf_size) in a provided buffer. */
static inline void drive_recv(struct worker *wk, struct fconn *f, uint32_t gen, const char *p,
                              size_t n)
{
    unsigned bid = drive_next_bid_++ & (wk->ring.nbufs - 1);

    if (n > wk->ring.buf_size || n == 0)
        abort();
    memcpy(ring_buf(&wk->ring, bid), p, n);
    drive_complete(wk, ud_pack(OP_RECV, gen, f->c.idx), (int)n,
                   IORING_CQE_F_BUFFER | IORING_CQE_F_MORE | bid << IORING_CQE_BUFFER_SHIFT);
}

/* The peer closed: a recv completion with res 0, the multishot recv's last. */
static inline void drive_eof(struct worker *wk, struct fconn *f, uint32_t gen)
{
    drive_complete(wk, ud_pack(OP_RECV, gen, f->c.idx), 0, 0);
}

/*
 * End the request as the loop would (its deadline, when it still waits for bytes), deliver
 * the window through fn, and free the connection. Returns the connection's state before it
 * was freed; *emitted is how many results window_emit() delivered.
 */
static inline int drive_settle(struct worker *wk, struct fconn *f, uint64_t job, rf_result_fn fn,
                               void *userp, uint64_t *emitted)
{
    struct rf_engine *eng = wk->eng;
    struct request *r = window_at(&eng->win, job);
    int state;

    if (r->state != W_DONE && dq_queued(&r->deadline)) {
        r->deadline.at = wk->ring.now; /* the only request in flight: the queue's head */
        drive_timers(wk);
    }
    *emitted = window_emit(&eng->win, fn, userp);
    state = f->state;
    if (f->state == FC_IDLE)
        fconn_close(wk, f);
    drive_drain(wk);
    return state;
}

#endif
