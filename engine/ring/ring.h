/* ring.h - one io_uring with a get_sqe that never fails and a provided-buffer ring. */
#ifndef RF_RING_H
#define RF_RING_H

#include <liburing.h>
#include <stdint.h>
#include <sys/socket.h>

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
 *
 * A single-issuer ring belongs to the thread that creates it. A ring set up in one
 * thread for another passes RING_FOR_OTHER_THREAD; that thread calls ring_adopt()
 * before anything else.
 */
#define RING_FOR_OTHER_THREAD 1u
int ring_init(struct rf_ring *r, unsigned entries, unsigned nfiles, unsigned nbufs,
              unsigned buf_size, unsigned flags);
/* Make the calling thread the ring's submitter (see RING_FOR_OTHER_THREAD). 0 or -errno. */
int ring_adopt(struct rf_ring *r);
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

/* Make sure `n` SQEs fit, so a linked chain is never split across two submissions. */
void ring_reserve(struct rf_ring *r, unsigned n);

#define RF_IORING_OP_BIND 56                /* in the kernel's uapi since 6.11 */
#define RF_SOCKET_URING_OP_SETSOCKOPT 3     /* since 6.7 */
#define RF_IP_BIND_ADDRESS_NO_PORT 24       /* linux/in.h */

/*
 * The socket ops both the fetch and the bench state machines use, on direct descriptor
 * `fidx`. ring_socket_connect() queues SOCKET(direct) -> [SETSOCKOPT, BIND src] ->
 * CONNECT linked (the extra ops' completions carry ud_socket), and links the connect to
 * the next SQE the caller queues (the first send) when `link_next` is set; reserve 5
 * SQEs first.
 * ring_close_direct() cancels whatever runs on the descriptor (a multishot recv) and
 * closes it; its completions carry OP_IGNORE.
 */
void ring_socket_connect(struct rf_ring *r, unsigned fidx, const struct sockaddr *sa,
                         socklen_t salen, const struct sockaddr *src, socklen_t srclen,
                         uint64_t ud_socket, uint64_t ud_connect, int link_next);
void ring_close_direct(struct rf_ring *r, unsigned fidx);
/* Multishot recv into the provided-buffer ring. */
void ring_recv_multishot(struct rf_ring *r, unsigned fidx, uint64_t ud);
/* A send of len bytes from buf (which must live until the completion). */
void ring_send(struct rf_ring *r, unsigned fidx, const void *buf, size_t len, uint64_t ud,
               unsigned sqe_flags);

#endif
