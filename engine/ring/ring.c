/* ring.c - ring setup with the best flags the kernel takes, a never-NULL get_sqe, buffer
 * ring, direct descriptors, completion dispatch and the turn's one wait. */
#include "ring/ring.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ring/clock.h"

/*
 * SINGLE_ISSUER|DEFER_TASKRUN (6.1) runs completion work only when this thread waits,
 * which avoids task-work interrupts while we are busy parsing. COOP_TASKRUN (5.19) is
 * the fallback; a plain ring is the last resort.
 */
static int ring_setup(struct io_uring *u, unsigned entries, unsigned cq_entries,
                      unsigned extra, int any_thread)
{
    static const unsigned tries[] = {
        IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN,
        0,
    };
    int ret = -EINVAL;

    for (size_t i = any_thread ? 1 : 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
        struct io_uring_params p;

        memset(&p, 0, sizeof(p));
        p.flags = tries[i] | IORING_SETUP_CQSIZE | extra;
        p.cq_entries = cq_entries;
        ret = io_uring_queue_init_params(entries, u, &p);
        if (ret != -EINVAL)
            return ret;
    }
    return ret;
}

/*
 * liburing 2.3 has no io_uring_setup_buf_ring(): map the ring memory ourselves and
 * register it with IORING_REGISTER_PBUF_RING through io_uring_register_buf_ring().
 */
static int buf_ring_setup(struct rf_ring *r, unsigned nbufs, unsigned buf_size)
{
    struct io_uring_buf_reg reg;
    size_t ring_bytes = (size_t)nbufs * sizeof(struct io_uring_buf);
    void *mem;
    int ret;

    mem = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED)
        return -errno;
    r->br = mem;
    r->bufs = malloc((size_t)nbufs * buf_size);
    if (!r->bufs) {
        ret = -ENOMEM;
        goto fail;
    }
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (unsigned long)mem;
    reg.ring_entries = nbufs;
    reg.bgid = RF_BGID;
    ret = io_uring_register_buf_ring(&r->uring, &reg, 0);
    if (ret)
        goto fail;
    r->nbufs = nbufs;
    r->buf_size = buf_size;
    r->br_mask = io_uring_buf_ring_mask(nbufs);
    io_uring_buf_ring_init(r->br);
    for (unsigned i = 0; i < nbufs; i++)
        io_uring_buf_ring_add(r->br, ring_buf(r, i), buf_size, (unsigned short)i, r->br_mask,
                              (int)i);
    io_uring_buf_ring_advance(r->br, (int)nbufs);
    return 0;
fail:
    free(r->bufs);
    r->bufs = NULL;
    munmap(mem, ring_bytes);
    r->br = NULL;
    return ret;
}

static void on_close(void *ctx, struct io_uring_cqe *cqe)
{
    struct rf_ring *r = ctx;
    uint32_t fidx = ud_idx(io_uring_cqe_get_data64(cqe));

    /* Closed (or never opened: -EBADF): either way nothing can use the index any more. */
    if (fidx < r->nfiles)
        r->free_files[r->nfree_files++] = fidx;
}

static void on_ignore(void *ctx, struct io_uring_cqe *cqe)
{
    (void)ctx;
    (void)cqe;
}

int ring_init(struct rf_ring *r, unsigned entries, unsigned nfiles, unsigned nbufs,
              unsigned buf_size, unsigned flags)
{
    int ret;

    unsigned cq = 1;

    /*
     * Room for what every connection can complete at once (a connect, a recv, a send),
     * so completions do not pile up in the kernel's overflow list when thousands of
     * connections start in the same turn. The kernel's limit is 65536.
     */
    while (cq < entries * 4 || cq < nfiles * 2)
        cq <<= 1;
    if (cq > 65536)
        cq = 65536;
    memset(r, 0, sizeof(*r));
    /* R_DISABLED: the submitter is then the thread that enables the ring, not this one. */
    ret = ring_setup(&r->uring, entries, cq,
                     flags & RING_LATER_THREAD ? IORING_SETUP_R_DISABLED : 0,
                     (flags & RING_ANY_THREAD) != 0);
    if (ret)
        return ret;
    for (unsigned op = 0; op < OP__COUNT; op++)
        ring_on(r, (enum rf_op)op, on_ignore, r);
    ring_on(r, OP_CLOSE, on_close, r);
    if (nfiles) {
        r->free_files = malloc(nfiles * sizeof(*r->free_files));
        ret = r->free_files ? io_uring_register_files_sparse(&r->uring, nfiles) : -ENOMEM;
        if (ret)
            goto fail;
        r->nfiles = nfiles;
        /* Low indexes on top: the first connections take descriptors 0, 1, 2, ... */
        for (unsigned i = 0; i < nfiles; i++)
            r->free_files[i] = nfiles - 1 - i;
        r->nfree_files = nfiles;
    }
    if (nbufs) {
        ret = buf_ring_setup(r, nbufs, buf_size);
        if (ret)
            goto fail;
    }
    return 0;
fail:
    free(r->free_files);
    r->free_files = NULL;
    io_uring_queue_exit(&r->uring);
    return ret;
}

/* liburing 2.3 declares io_uring_enable_rings() but does not export it: the register call. */
int ring_adopt(struct rf_ring *r)
{
    long ret = syscall(__NR_io_uring_register, r->uring.ring_fd, IORING_REGISTER_ENABLE_RINGS,
                       NULL, 0);

    return ret < 0 ? -errno : 0;
}

void ring_exit(struct rf_ring *r)
{
    if (r->br) {
        io_uring_unregister_buf_ring(&r->uring, RF_BGID);
        munmap(r->br, (size_t)r->nbufs * sizeof(struct io_uring_buf));
        free(r->bufs);
    }
    io_uring_queue_exit(&r->uring); /* closes every direct descriptor with it */
    free(r->free_files);
    memset(r, 0, sizeof(*r));
}

unsigned ring_max_files(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1u << 20)
        return 1u << 20;
    return rl.rlim_cur > 80 ? (unsigned)rl.rlim_cur - 64 : 16;
}

struct io_uring_sqe *ring_sqe(struct rf_ring *r)
{
    struct io_uring_sqe *sqe;

    /* SQ full: hand the queued entries to the kernel and continue, never drop work. */
    while (!(sqe = io_uring_get_sqe(&r->uring)))
        io_uring_submit(&r->uring);
    return sqe;
}

void ring_buf_return(struct rf_ring *r, unsigned bid)
{
    io_uring_buf_ring_add(r->br, ring_buf(r, bid), r->buf_size, (unsigned short)bid,
                          r->br_mask, 0);
    io_uring_buf_ring_advance(r->br, 1);
}

void ring_reserve(struct rf_ring *r, unsigned n)
{
    if (io_uring_sq_space_left(&r->uring) < n)
        io_uring_submit(&r->uring);
}

/* A socket option set on a direct descriptor: a socket uring_cmd (6.7); liburing 2.3 names
 * neither it nor the fields. `val` must live until the operation runs. */
static void prep_setsockopt(struct io_uring_sqe *sqe, unsigned fidx, int level, int name,
                            const int *val)
{
    io_uring_prep_rw(IORING_OP_URING_CMD, sqe, (int)fidx, NULL, 0, 0);
    sqe->cmd_op = RF_SOCKET_URING_OP_SETSOCKOPT;
    sqe->addr = (uint64_t)(unsigned)level | (uint64_t)(unsigned)name << 32;
    sqe->splice_fd_in = (int)sizeof(*val);
    sqe->addr3 = (uint64_t)(uintptr_t)val;
    sqe->flags |= IOSQE_FIXED_FILE | IOSQE_IO_LINK;
}

void ring_socket_connect(struct rf_ring *r, unsigned fidx, const struct sockaddr *sa,
                         socklen_t salen, const struct sockaddr *src, socklen_t srclen,
                         unsigned opts, uint64_t ud_socket, uint64_t ud_connect, int link_next)
{
    static const int one = 1;
    struct io_uring_sqe *sqe = ring_sqe(r);

    /* The socket and the options post a completion only when they fail. */
    io_uring_prep_socket_direct(sqe, sa->sa_family, SOCK_STREAM, 0, fidx, 0);
    sqe->flags |= IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, ud_socket);
    if (opts & RING_SO_TIMESTAMPNS) {
        /* Receive timestamps: each recvmsg says when the kernel got its last segment. */
        prep_setsockopt(sqe = ring_sqe(r), fidx, SOL_SOCKET, SO_TIMESTAMPNS, &one);
        sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
        io_uring_sqe_set_data64(sqe, ud_socket);
    }
    if (src) {
        /*
         * IP_BIND_ADDRESS_NO_PORT first, so the port is chosen at connect time per
         * destination (and may reuse a TIME_WAIT port), not at bind time per address.
         */
        prep_setsockopt(sqe = ring_sqe(r), fidx, IPPROTO_IP, RF_IP_BIND_ADDRESS_NO_PORT, &one);
        sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
        io_uring_sqe_set_data64(sqe, ud_socket);
        /* IORING_OP_BIND (6.11), port 0. */
        sqe = ring_sqe(r);
        io_uring_prep_rw(RF_IORING_OP_BIND, sqe, (int)fidx, src, 0, srclen);
        sqe->flags |= IOSQE_FIXED_FILE | IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;
        io_uring_sqe_set_data64(sqe, ud_socket);
    }
    sqe = ring_sqe(r);
    io_uring_prep_connect(sqe, (int)fidx, sa, salen);
    sqe->flags |= IOSQE_FIXED_FILE | (link_next ? IOSQE_IO_LINK : 0);
    io_uring_sqe_set_data64(sqe, ud_connect);
}

int ring_file_get(struct rf_ring *r)
{
    return r->nfree_files ? (int)r->free_files[--r->nfree_files] : -1;
}

void ring_close_direct(struct rf_ring *r, unsigned fidx)
{
    struct io_uring_sqe *sqe;

    ring_reserve(r, 2);
    /* A hard link keeps the close even when there was nothing to cancel. */
    sqe = ring_sqe(r);
    io_uring_prep_cancel_fd(sqe, (int)fidx, IORING_ASYNC_CANCEL_ALL | IORING_ASYNC_CANCEL_FD_FIXED);
    sqe->flags |= IOSQE_IO_HARDLINK;
    io_uring_sqe_set_data64(sqe, ud_pack(OP_IGNORE, 0, 0));
    sqe = ring_sqe(r);
    io_uring_prep_close_direct(sqe, fidx);
    io_uring_sqe_set_data64(sqe, ud_pack(OP_CLOSE, 0, fidx));
}

void ring_recv_multishot(struct rf_ring *r, unsigned fidx, struct msghdr *msg, uint64_t ud)
{
    struct io_uring_sqe *sqe = ring_sqe(r);

    if (msg)
        io_uring_prep_recvmsg_multishot(sqe, (int)fidx, msg, 0);
    else
        io_uring_prep_recv_multishot(sqe, (int)fidx, NULL, 0, 0);
    sqe->flags |= IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
    sqe->buf_group = RF_BGID;
    io_uring_sqe_set_data64(sqe, ud);
}

void ring_send(struct rf_ring *r, unsigned fidx, const void *buf, size_t len, uint64_t ud,
               unsigned sqe_flags)
{
    struct io_uring_sqe *sqe = ring_sqe(r);

    /* MSG_WAITALL: io_uring itself retries a short send on a stream socket. */
    io_uring_prep_send(sqe, (int)fidx, buf, len, MSG_NOSIGNAL | MSG_WAITALL);
    sqe->flags |= IOSQE_FIXED_FILE | sqe_flags;
    io_uring_sqe_set_data64(sqe, ud);
}

/* ---- completions, timers and the wait ---- */

void ring_on(struct rf_ring *r, enum rf_op op, ring_handler fn, void *ctx)
{
    r->handler[op].fn = fn;
    r->handler[op].ctx = ctx;
}

int ring_add_timer(struct rf_ring *r, const struct ring_timer *t)
{
    if (r->ntimers == RING_TIMERS)
        return -1;
    r->timer[r->ntimers++] = *t;
    return 0;
}

void ring_del_timer(struct rf_ring *r, void *ctx)
{
    for (unsigned i = 0; i < r->ntimers; i++)
        if (r->timer[i].ctx == ctx)
            r->timer[i--] = r->timer[--r->ntimers];
}

void ring_off(struct rf_ring *r, enum rf_op op)
{
    ring_on(r, op, on_ignore, r);
}

int ring_add_queue(struct rf_ring *r, struct dq *q, void (*fn)(void *ctx, struct dq_node *n),
                   void *ctx)
{
    if (r->nqueues == RING_QUEUES)
        return -1;
    r->queue[r->nqueues++] = (struct ring_queue){q, fn, ctx};
    return 0;
}

int64_t ring_next_due(const struct rf_ring *r)
{
    int64_t due = -1;

    for (unsigned i = 0; i < r->nqueues; i++)
        due = dq_min(due, dq_next(r->queue[i].q));
    for (unsigned i = 0; i < r->ntimers; i++) {
        int64_t t = r->timer[i].next(r->timer[i].ctx);

        if (t >= 0 && (due < 0 || t < due))
            due = t;
    }
    return due;
}

int ring_wait(struct rf_ring *r, unsigned want, int64_t max_us)
{
    struct io_uring_cqe *cqe;
    struct __kernel_timespec ts;
    int64_t due = ring_next_due(r), wait_us = max_us;
    int ret;

    if (due >= 0) {
        int64_t until = due > (int64_t)r->now ? due - (int64_t)r->now : 0;

        if (wait_us < 0 || until < wait_us)
            wait_us = until;
    }
    if (wait_us < 0) {
        ret = io_uring_submit_and_wait(&r->uring, want);
    } else {
        ts.tv_sec = wait_us / 1000000;
        ts.tv_nsec = (wait_us % 1000000) * 1000;
        ret = io_uring_submit_and_wait_timeout(&r->uring, &cqe, want, &ts, NULL);
    }
    /* A timeout, a signal or a full completion queue all end the wait normally. */
    if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
        return ret;
    return 0;
}

void ring_expire(struct rf_ring *r)
{
    for (unsigned i = 0; i < r->nqueues; i++) {
        struct dq_node *d;

        while ((d = dq_due(r->queue[i].q, r->now))) {
            dq_del(d);
            r->queue[i].fn(r->queue[i].ctx, d);
        }
    }
    for (unsigned i = 0; i < r->ntimers; i++) {
        int64_t t = r->timer[i].next(r->timer[i].ctx);

        if (t >= 0 && t <= (int64_t)r->now)
            r->timer[i].fire(r->timer[i].ctx, r->now);
    }
}

unsigned ring_dispatch(struct rf_ring *r, unsigned max)
{
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;

    r->now = now_us();
    io_uring_for_each_cqe(&r->uring, head, cqe) {
        enum rf_op op = ud_op(io_uring_cqe_get_data64(cqe));

        n++;
        if (op < OP__COUNT)
            r->handler[op].fn(r->handler[op].ctx, cqe);
        if (n == max)
            break;
    }
    io_uring_cq_advance(&r->uring, n);
    ring_expire(r);
    return n;
}

int ring_probe_setsockopt(struct rf_ring *r)
{
    static const int one = 1;
    struct io_uring_sqe *sqe;
    struct io_uring_cqe *cqe;
    int fidx = ring_file_get(r), ret = -1;

    if (fidx < 0)
        return -1;
    /* socket -> option -> cancel -> close, the last two hard-linked so they run whatever
     * the option did. Four completions, reaped here: the ring is not running yet. */
    ring_reserve(r, 4);
    sqe = ring_sqe(r);
    io_uring_prep_socket_direct(sqe, AF_INET, SOCK_STREAM, 0, (unsigned)fidx, 0);
    sqe->flags |= IOSQE_IO_LINK;
    io_uring_sqe_set_data64(sqe, ud_pack(OP_IGNORE, 0, 0));
    sqe = ring_sqe(r);
    prep_setsockopt(sqe, (unsigned)fidx, SOL_SOCKET, SO_TIMESTAMPNS, &one);
    sqe->flags = (uint8_t)((sqe->flags & ~IOSQE_IO_LINK) | IOSQE_IO_HARDLINK);
    io_uring_sqe_set_data64(sqe, ud_pack(OP_IGNORE, 0, 1));
    ring_close_direct(r, (unsigned)fidx);
    io_uring_submit(&r->uring);
    for (int seen = 0; seen < 4 && io_uring_wait_cqe(&r->uring, &cqe) == 0; seen++) {
        uint64_t ud = io_uring_cqe_get_data64(cqe);

        if (ud == ud_pack(OP_IGNORE, 0, 1))
            ret = cqe->res >= 0 ? 0 : -1;
        if (ud_op(ud) == OP_CLOSE)
            on_close(r, cqe);
        io_uring_cqe_seen(&r->uring, cqe);
    }
    return ret;
}
