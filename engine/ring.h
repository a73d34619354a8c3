/* ring.h - one io_uring with a get_sqe that never fails and a provided-buffer ring. */
#ifndef RF_RING_H
#define RF_RING_H

#include <liburing.h>
#include <stdint.h>

struct rf_ring {
    struct io_uring uring;
    struct io_uring_buf_ring *br; /* provided buffers for multishot recv */
    char *bufs;                   /* nbufs * buf_size bytes, one slab */
    unsigned nbufs, buf_size, br_mask;
    unsigned nfiles;              /* registered (direct) file table size */
};

#define RF_BGID 0

/*
 * Set up a ring of `entries` SQEs with SINGLE_ISSUER|DEFER_TASKRUN when the kernel has
 * them, a sparse registered file table of `nfiles`, and a buffer ring of `nbufs`
 * (a power of two) buffers of `buf_size` bytes. Returns 0 or -errno.
 */
int ring_init(struct rf_ring *r, unsigned entries, unsigned nfiles, unsigned nbufs,
              unsigned buf_size);
void ring_exit(struct rf_ring *r);

/* An SQE; when the SQ is full, submits what is queued and tries again. Never NULL. */
struct io_uring_sqe *ring_sqe(struct rf_ring *r);

/* The start of provided buffer `bid`. */
static inline char *ring_buf(struct rf_ring *r, unsigned bid)
{
    return r->bufs + (size_t)bid * r->buf_size;
}

/* Hand buffer `bid` back to the kernel (one store to the ring tail, no syscall). */
void ring_buf_return(struct rf_ring *r, unsigned bid);

#endif
