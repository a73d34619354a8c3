/*
 * ring.h - one io_uring and what every layer above needs from it: a get_sqe that never
 * fails, a provided-buffer ring, a table of direct descriptors, the batch clock, completion
 * dispatch by operation tag, timer sources and the one wait of a loop turn.
 */
#ifndef RF_RING_H
#define RF_RING_H

#include <liburing.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ring/dq.h"
#include "ring/udata.h"

struct rf_ring;

/* Called for each completion whose user_data carries the tag it was registered for. */
typedef void (*ring_handler)(void *ctx, struct io_uring_cqe *cqe);

/*
 * A timer source: next() is the absolute time (µs, the ring clock) it is next due, or -1;
 * fire() is called once the clock has reached it. The ring's wait never sleeps past the
 * earliest source, so no layer needs a timer syscall of its own.
 */
struct ring_timer {
    int64_t (*next)(void *ctx);
    void (*fire)(void *ctx, uint64_t now);
    void *ctx;
};

#define RING_TIMERS 4
#define RING_QUEUES 12

/* A deadline queue the ring expires: each due entry is taken off and handed to fn. */
struct ring_queue {
    struct dq *q;
    void (*fn)(void *ctx, struct dq_node *n);
    void *ctx;
};

struct rf_ring {
    struct io_uring uring;
    struct io_uring_buf_ring *br; /* provided buffers for multishot recv */
    char *bufs;                   /* nbufs * buf_size bytes, one slab */
    unsigned nbufs, buf_size, br_mask;
    unsigned nfiles;              /* registered (direct) file table size */
    uint32_t *free_files;         /* direct descriptor indexes not in use, a stack */
    unsigned nfree_files;
    uint64_t now;                 /* monotonic µs, read once per batch of completions */
    struct {
        ring_handler fn;
        void *ctx;
    } handler[OP__COUNT];
    struct ring_timer timer[RING_TIMERS];
    unsigned ntimers;
    struct ring_queue queue[RING_QUEUES];
    unsigned nqueues;
};

#define RF_BGID 0

/*
 * Set up a ring of `entries` SQEs with SINGLE_ISSUER|DEFER_TASKRUN when the kernel has
 * them, a sparse registered file table of `nfiles`, and a buffer ring of `nbufs`
 * (a power of two) buffers of `buf_size` bytes. Returns 0 or -errno.
 *
 * A single-issuer ring belongs to the thread that first submits on it. The ring starts
 * disabled (R_DISABLED) when RING_LATER_THREAD is passed: the thread that will drive it
 * calls ring_adopt() before anything else, whichever thread set it up. RING_ANY_THREAD
 * gives up single-issuer (and so DEFER_TASKRUN) for a ring that threads take turns on.
 */
#define RING_LATER_THREAD 1u
#define RING_ANY_THREAD 2u /* not single-issuer: any thread may drive it, one at a time */
int ring_init(struct rf_ring *r, unsigned entries, unsigned nfiles, unsigned nbufs,
              unsigned buf_size, unsigned flags);
/* Make the calling thread the ring's submitter (see RING_LATER_THREAD). 0 or -errno. */
int ring_adopt(struct rf_ring *r);
void ring_exit(struct rf_ring *r);

/*
 * How many registered descriptors one ring may have: the kernel caps a ring's table at
 * RLIMIT_NOFILE (the soft limit; the command line raises it to the hard one, a library
 * leaves it alone), less room for the process's other files.
 */
unsigned ring_max_files(void);

/* An SQE; when the SQ is full, submits what is queued and tries again. Never NULL. */
struct io_uring_sqe *ring_sqe(struct rf_ring *r);

/* Make sure `n` SQEs fit, so a linked chain is never split across two submissions. */
void ring_reserve(struct rf_ring *r, unsigned n);

/* ---- completions, timers and the wait ---- */

/* Route completions tagged `op` to fn(ctx, cqe). */
void ring_on(struct rf_ring *r, enum rf_op op, ring_handler fn, void *ctx);
/* Stop routing completions tagged `op` (they are dropped). */
void ring_off(struct rf_ring *r, enum rf_op op);
/* Add a timer source (at most RING_TIMERS): 0, or -1 when full. */
int ring_add_timer(struct rf_ring *r, const struct ring_timer *t);
/* Remove the timer sources whose ctx is ctx. */
void ring_del_timer(struct rf_ring *r, void *ctx);
/* Expire a deadline queue (at most RING_QUEUES): fn(ctx, n) for each entry that is due,
 * taken off the queue first (fn may queue it again). 0, or -1 when full. */
int ring_add_queue(struct rf_ring *r, struct dq *q, void (*fn)(void *ctx, struct dq_node *n),
                   void *ctx);
/* The earliest time a timer source is due, or -1. */
int64_t ring_next_due(const struct rf_ring *r);

/*
 * The one syscall of a loop turn: submit everything queued and wait until `want`
 * completions are ready, at most `max_us` (-1: no bound) and never past the earliest
 * timer. Returns 0, or -errno when the ring itself failed.
 */
int ring_wait(struct rf_ring *r, unsigned want, int64_t max_us);
/*
 * Read the clock into r->now, hand the ready completions (at most max; the rest wait for
 * the next call) to their handlers, then expire the deadline queues and fire the timer
 * sources that are due. Returns how many completions there were.
 */
unsigned ring_dispatch(struct rf_ring *r, unsigned max);
/* The second half of ring_dispatch(): expire the deadline queues and fire the timer
 * sources due at r->now (tests drive it with a clock of their own). */
void ring_expire(struct rf_ring *r);

/* ---- provided buffers ---- */

/* The start of provided buffer `bid`. */
static inline char *ring_buf(struct rf_ring *r, unsigned bid)
{
    return r->bufs + (size_t)bid * r->buf_size;
}

/* Hand buffer `bid` back to the kernel (one store to the ring tail, no syscall). */
void ring_buf_return(struct rf_ring *r, unsigned bid);

/* ---- sockets on direct descriptors ---- */

#define RF_IORING_OP_BIND 56                /* in the kernel's uapi since 6.11 */
#define RF_SOCKET_URING_OP_SETSOCKOPT 3     /* since 6.7 */
#define RF_IP_BIND_ADDRESS_NO_PORT 24       /* linux/in.h */

/*
 * A free direct descriptor index, or -1 when every one is in use. An index comes back
 * only when the close of its socket (ring_close_direct) has completed, so a new socket
 * can never be closed by its predecessor's late close, however the kernel orders them.
 */
int ring_file_get(struct rf_ring *r);

/*
 * SOCKET(direct) -> [SETSOCKOPT SO_TIMESTAMPNS] -> [SETSOCKOPT, BIND src] -> CONNECT, linked,
 * on descriptor `fidx`; the extra ops' completions carry ud_socket. With `link_next` the connect is linked to the
 * next SQE the caller queues (the first send). Reserve 5 SQEs first.
 */
#define RING_SO_TIMESTAMPNS 1u /* ring_socket_connect(): receive timestamps on */
void ring_socket_connect(struct rf_ring *r, unsigned fidx, const struct sockaddr *sa,
                         socklen_t salen, const struct sockaddr *src, socklen_t srclen,
                         unsigned opts, uint64_t ud_socket, uint64_t ud_connect, int link_next);
/* Can sockets on this ring take options through io_uring (6.7)? 0 or -1. Before use. */
int ring_probe_setsockopt(struct rf_ring *r);
/* Cancel whatever runs on the descriptor (a multishot recv) and close it; the index is
 * free again when the close completes. */
void ring_close_direct(struct rf_ring *r, unsigned fidx);
/* Multishot recv into the provided-buffer ring; with msg a multishot recvmsg (its
 * control area: receive timestamps), each buffer then starting with io_uring_recvmsg_out. */
void ring_recv_multishot(struct rf_ring *r, unsigned fidx, struct msghdr *msg, uint64_t ud);
/* A send of len bytes from buf (which must live until the completion). */
void ring_send(struct rf_ring *r, unsigned fidx, const void *buf, size_t len, uint64_t ud,
               unsigned sqe_flags);

#endif
