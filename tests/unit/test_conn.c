/*
 * test_conn.c - conn/conn.c, the connection layer, one feature per function, driven two ways.
 *
 * Fake completions: a real ring (ring_init) and a conn_set over test structs that embed a
 * struct conn and record their callbacks. What the layer queues is read back from the
 * submission queue and taken away before the kernel sees it; completions are handed to the
 * handlers the set registered on the ring, and the clock is set by hand, so every case is
 * exact and nothing touches the network.
 *
 * A real peer: a TCP server on 127.0.0.1 in a thread of this process (and 127.0.0.2 on the
 * same port, bound but not listening, so it refuses), the ring submitted and waited on with
 * ring_wait() and ring_dispatch() in bounded loops.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "check.h"
#include "conn/conn.h"
#include "ring/clock.h"

#define NCONN 2
#define NFILES 8
#define NBUFS 8
#define BUF_SIZE 4096
#define T0 1000000u          /* the fake clock's start, µs */
#define TIMEOUT_US 10000000u /* the set's connect deadline */

/* ---------------------------------------------------------------- the owner */

/*
 * An owner's connection: the callbacks it heard, in order, as letters: C connected,
 * O opened, D data, S sent, X closed.
 */
struct tconn {
    struct conn c;
    char ev[64];
    size_t nev;
    rf_error err; /* closed()'s */
    char data[BUF_SIZE * 2];
    size_t ndata;
    int close_in_data; /* data() closes the connection and says so */
    struct conn_set *set;
};

static void ev(struct conn *c, char e)
{
    struct tconn *t = (struct tconn *)c;

    if (t->nev < sizeof(t->ev) - 1)
        t->ev[t->nev++] = e;
    t->ev[t->nev] = '\0';
}

static void on_connected(struct conn *c)
{
    ev(c, 'C');
}
static void on_opened(struct conn *c)
{
    ev(c, 'O');
}
static void on_sent(struct conn *c)
{
    ev(c, 'S');
}

static int on_data(struct conn *c, const char *p, size_t n)
{
    struct tconn *t = (struct tconn *)c;

    ev(c, 'D');
    if (n > sizeof(t->data) - t->ndata)
        n = sizeof(t->data) - t->ndata;
    memcpy(t->data + t->ndata, p, n);
    t->ndata += n;
    if (t->close_in_data) {
        conn_close(t->set, c);
        return 1;
    }
    return 0;
}

static void on_closed(struct conn *c, rf_error err, const char *detail)
{
    (void)detail;
    ev(c, 'X');
    ((struct tconn *)c)->err = err;
}

static const struct conn_ops ops = {on_connected, on_opened, on_data, on_sent, on_closed};

/* ---------------------------------------------------------------- the fixture */

struct fx {
    struct rf_ring ring;
    struct conn_set set;
    struct tconn t[NCONN];
};

static struct fx fx;

static int fx_init(uint64_t connect_timeout_us)
{
    memset(&fx, 0, sizeof(fx));
    if (ring_init(&fx.ring, 64, NFILES, NBUFS, BUF_SIZE, 0))
        return -1;
    for (uint32_t i = 0; i < NCONN; i++) {
        conn_init(&fx.t[i].c, i);
        fx.t[i].set = &fx.set;
    }
    if (conn_set_init(&fx.set, &fx.ring, fx.t, sizeof(fx.t[0]), NCONN, &ops, connect_timeout_us)) {
        ring_exit(&fx.ring);
        return -1;
    }
    fx.ring.now = T0;
    return 0;
}

static void fx_free(void)
{
    for (uint32_t i = 0; i < NCONN; i++)
        conn_close(&fx.set, &fx.t[i].c);
    conn_set_free(&fx.set);
    ring_exit(&fx.ring);
}

/* A list of literal addresses; the caller releases it. */
static struct rf_addrs *addrs_of(const char *const *txt, uint32_t n)
{
    struct rf_addrs *l = addrs_new(n);

    if (!l)
        abort();
    for (uint32_t i = 0; i < n; i++)
        if (addr_parse(txt[i], &l->a[l->n++]))
            abort();
    return l;
}

/* "127.0.0.1:8080", "[::1]:80" */
static const char *sa_text(const struct rf_sockaddr *a)
{
    static char buf[80];
    char ip[64];

    addr_text(a, ip, sizeof(ip));
    snprintf(buf, sizeof(buf), a->u.sa.sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip,
             ntohs(a->u.sa.sa_family == AF_INET6 ? a->u.in6.sin6_port : a->u.in.sin_port));
    return buf;
}

/* ---- the submission queue, read back and taken away ---- */

static struct io_uring_sqe sqe[64];
static unsigned nsqe;

static unsigned take_sqes(void)
{
    struct io_uring_sq *sq = &fx.ring.uring.sq;

    nsqe = 0;
    for (unsigned h = sq->sqe_head; h != sq->sqe_tail; h++)
        if (nsqe < 64)
            sqe[nsqe++] = sq->sqes[h & sq->ring_mask];
    sq->sqe_tail = sq->sqe_head;
    return nsqe;
}

/* The index of the first taken SQE with this opcode at or after `from`, or -1. */
static int find_sqe(uint8_t opcode, unsigned from)
{
    for (unsigned i = from; i < nsqe; i++)
        if (sqe[i].opcode == opcode)
            return (int)i;
    return -1;
}

/* The taken SQEs hold the teardown of descriptor fidx: a hard-linked cancel, then its close. */
static int check_close_of(int fidx)
{
    for (unsigned i = 0; i + 1 < nsqe; i++) {
        if (sqe[i].opcode != IORING_OP_ASYNC_CANCEL || sqe[i].fd != fidx)
            continue;
        return CHECK_UINT(sqe[i].cancel_flags, IORING_ASYNC_CANCEL_ALL | IORING_ASYNC_CANCEL_FD |
                                                   IORING_ASYNC_CANCEL_FD_FIXED) &
               CHECK(sqe[i].flags & IOSQE_IO_HARDLINK) &
               CHECK_UINT(sqe[i + 1].opcode, IORING_OP_CLOSE) &
               CHECK_UINT(sqe[i + 1].file_index, (unsigned)fidx + 1) &
               CHECK_UINT(sqe[i + 1].user_data, ud_pack(OP_CLOSE, 0, (uint32_t)fidx));
    }
    fprintf(stderr, "  no close of descriptor %d among %u SQEs\n", fidx, nsqe);
    return CHECK(0);
}

/* The taken SQE i is a socket -> connect chain for `lane` of c, to `to`; link_next: the
 * connect is linked to what follows. */
static void check_connect_chain(unsigned i, const struct conn *c, int lane, const char *to,
                                int link_next)
{
    const struct rf_sockaddr *a = &c->att[lane].addr;
    int fidx = c->att[lane].fidx;

    if (!CHECK(i + 1 < nsqe))
        return;
    CHECK_UINT(sqe[i].opcode, IORING_OP_SOCKET);
    CHECK_INT(sqe[i].fd, a->u.sa.sa_family); /* the domain */
    CHECK_UINT(sqe[i].off, SOCK_STREAM);
    CHECK_UINT(sqe[i].file_index, (unsigned)fidx + 1); /* a direct descriptor, fidx */
    CHECK(sqe[i].flags & IOSQE_IO_LINK);
    CHECK_UINT(sqe[i].user_data, ud_pack(OP_SOCKET, c->att[lane].gen, c->idx));
    CHECK_UINT(sqe[i + 1].opcode, IORING_OP_CONNECT);
    CHECK_INT(sqe[i + 1].fd, fidx);
    CHECK(sqe[i + 1].flags & IOSQE_FIXED_FILE);
    CHECK_INT(!!(sqe[i + 1].flags & IOSQE_IO_LINK), link_next);
    CHECK_UINT(sqe[i + 1].addr, (uint64_t)(uintptr_t)&a->u.sa); /* lives in the conn */
    CHECK_UINT(sqe[i + 1].off, a->len);
    CHECK_STR(sa_text(a), to);
    CHECK_UINT(sqe[i + 1].user_data, ud_pack(OP_CONNECT, c->att[lane].gen, c->idx));
}

/* The taken SQE i is c's multishot recv into the provided buffers. */
static void check_recv(unsigned i, const struct conn *c)
{
    if (!CHECK(i < nsqe))
        return;
    CHECK_UINT(sqe[i].opcode, IORING_OP_RECV);
    CHECK(sqe[i].ioprio & IORING_RECV_MULTISHOT);
    CHECK_INT(sqe[i].fd, c->fidx);
    CHECK_UINT(sqe[i].flags, IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT);
    CHECK_UINT(sqe[i].buf_group, RF_BGID);
    CHECK_UINT(sqe[i].user_data, ud_pack(OP_RECV, c->gen, c->idx));
}

/* The taken SQE i is a send of len bytes at p on descriptor fidx for generation gen. */
static void check_send(unsigned i, int fidx, uint32_t gen, uint32_t idx, const void *p,
                       uint32_t len, unsigned flags)
{
    if (!CHECK(i < nsqe))
        return;
    CHECK_UINT(sqe[i].opcode, IORING_OP_SEND);
    CHECK_INT(sqe[i].fd, fidx);
    CHECK_UINT(sqe[i].flags, IOSQE_FIXED_FILE | flags);
    CHECK_UINT(sqe[i].addr, (uint64_t)(uintptr_t)p);
    CHECK_UINT(sqe[i].len, len);
    CHECK_UINT(sqe[i].msg_flags, MSG_NOSIGNAL | MSG_WAITALL);
    CHECK_UINT(sqe[i].user_data, ud_pack(OP_SEND, gen, idx));
}

/* ---- completions and the clock ---- */

/* A completion, handed to the handler the ring has for its tag as ring_dispatch() would. */
static void complete(uint64_t ud, int res, uint32_t flags)
{
    struct io_uring_cqe cqe;
    enum rf_op op = ud_op(ud);

    memset(&cqe, 0, sizeof(cqe));
    cqe.user_data = ud;
    cqe.res = res;
    cqe.flags = flags;
    fx.ring.handler[op].fn(fx.ring.handler[op].ctx, &cqe);
}

/* The close completions of the taken SQEs: their descriptor indexes come back. */
static void complete_closes(void)
{
    for (unsigned i = 0; i < nsqe; i++)
        if (sqe[i].opcode == IORING_OP_CLOSE)
            complete(sqe[i].user_data, 0, 0);
}

/* n bytes of p in provided buffer bid, as a multishot recv posts them. */
static void complete_recv(const struct conn *c, uint32_t gen, unsigned bid, const char *p, int n,
                          int more)
{
    if (n > 0 && p)
        memcpy(ring_buf(&fx.ring, bid), p, (size_t)n);
    complete(ud_pack(OP_RECV, gen, c->idx), n,
             (n > 0 ? IORING_CQE_F_BUFFER | bid << IORING_CQE_BUFFER_SHIFT : 0) |
                 (more ? IORING_CQE_F_MORE : 0));
}

/* Set the clock and expire what is due, as ring_dispatch() does after the completions: the
 * registered deadline queues (each due entry taken off, then handed over), then the timers. */
static void at(uint64_t now)
{
    struct rf_ring *r = &fx.ring;

    r->now = now;
    for (unsigned i = 0; i < r->nqueues; i++) {
        struct dq_node *d;

        while ((d = dq_due(r->queue[i].q, now))) {
            dq_del(d);
            r->queue[i].fn(r->queue[i].ctx, d);
        }
    }
    for (unsigned i = 0; i < r->ntimers; i++) {
        int64_t t = r->timer[i].next(r->timer[i].ctx);

        if (t >= 0 && t <= (int64_t)now)
            r->timer[i].fire(r->timer[i].ctx, now);
    }
}

/* Did buffer bid go back to the buffer ring, as the one entry added since `tail`? */
static int check_buf_returned(uint16_t tail, unsigned bid)
{
    struct io_uring_buf_ring *br = fx.ring.br;
    const struct io_uring_buf *b = &br->bufs[tail & fx.ring.br_mask];

    return CHECK_UINT(br->tail, (uint16_t)(tail + 1)) & CHECK_UINT(b->bid, bid) &
           CHECK_UINT(b->addr, (uint64_t)(uintptr_t)ring_buf(&fx.ring, bid)) &
           CHECK_UINT(b->len, BUF_SIZE);
}

/* Open c to one address with a first send, and connect it. Returns its descriptor. */
static int open_connected(struct tconn *t, const char *addr, const char *first, uint32_t len)
{
    struct rf_addrs *l = addrs_of(&addr, 1);
    int fidx;

    if (!CHECK_INT(conn_open(&fx.set, &t->c, l, 8080, NULL, NULL, first, len, 0, 0), 0))
        abort();
    addrs_release(l);
    fidx = t->c.att[0].fidx;
    complete(ud_pack(OP_CONNECT, t->c.att[0].gen, t->c.idx), 0, 0);
    if (!CHECK_INT(t->c.state, CONN_OPEN))
        abort();
    take_sqes();
    t->nev = 0;
    t->ev[0] = '\0';
    return fidx;
}

/* ---------------------------------------------------------------- fake completions */

/*
 * One address and a first send: socket -> connect -> send as one linked chain on a direct
 * descriptor from ring_file_get(); the address list is held while connecting; nothing is
 * called back yet and the one timer is the connect deadline.
 */
static void test_open_one_address(void)
{
    static const char first[] = "GET / HTTP/1.1\r\n\r\n";
    const char *txt[] = {"127.0.0.1"};
    struct rf_addrs *l = addrs_of(txt, 1);
    struct tconn *t = &fx.t[1];
    unsigned nfree = fx.ring.nfree_files;
    int want_fidx = (int)fx.ring.free_files[nfree - 1]; /* what ring_file_get() hands out */

    CHECK_INT(conn_open(&fx.set, &t->c, l, 8080, NULL, NULL, first, sizeof(first) - 1, 0, 0), 0);
    CHECK_UINT(l->refs, 2);
    CHECK_INT(t->c.state, CONN_CONNECTING);
    CHECK_INT(t->c.att[0].fidx, want_fidx);
    CHECK_INT(t->c.att[1].fidx, -1);
    CHECK_INT(t->c.fidx, -1);
    CHECK_UINT(fx.ring.nfree_files, nfree - 1);
    CHECK_UINT(t->c.tried, 1);
    CHECK_UINT(t->c.link_first, 1);
    if (CHECK_UINT(take_sqes(), 3)) {
        check_connect_chain(0, &t->c, 0, "127.0.0.1:8080", 1);
        check_send(2, want_fidx, t->c.att[0].gen, t->c.idx, first, sizeof(first) - 1, 0);
    }
    CHECK_INT(ring_next_due(&fx.ring), T0 + TIMEOUT_US);
    CHECK_STR(t->ev, "");
    conn_close(&fx.set, &t->c);
    CHECK_UINT(l->refs, 1);
    take_sqes();
    CHECK_INT(ring_next_due(&fx.ring), -1);
    addrs_release(l);

    /* IPv6: the socket's domain and the address length follow the address. */
    txt[0] = "::1";
    l = addrs_of(txt, 1);
    CHECK_INT(conn_open(&fx.set, &t->c, l, 443, NULL, NULL, NULL, 0, 0, 0), 0);
    CHECK_UINT(t->c.link_first, 0);
    if (CHECK_UINT(take_sqes(), 2))
        check_connect_chain(0, &t->c, 0, "[::1]:443", 0);
    conn_close(&fx.set, &t->c);
    take_sqes();
    addrs_release(l);
}

/* Two addresses: one attempt starts, its connect links nothing (racing attempts must not
 * each send the request), and the next attempt is due 250 ms later. */
static void test_open_two_addresses(void)
{
    static const char first[] = "GET / HTTP/1.1\r\n\r\n";
    const char *txt[] = {"::1", "127.0.0.1"};
    struct rf_addrs *l = addrs_of(txt, 2);
    struct tconn *t = &fx.t[0];

    CHECK_INT(conn_open(&fx.set, &t->c, l, 80, NULL, NULL, first, sizeof(first) - 1, 0, 0), 0);
    CHECK_UINT(t->c.link_first, 0);
    CHECK_UINT(t->c.tried, 1);
    CHECK_INT(t->c.att[1].fidx, -1);
    if (CHECK_UINT(take_sqes(), 2))
        check_connect_chain(0, &t->c, 0, "[::1]:80", 0);
    CHECK_INT(find_sqe(IORING_OP_SEND, 0), -1);
    CHECK_INT(ring_next_due(&fx.ring), T0 + CONN_HE_DELAY_US);
    conn_close(&fx.set, &t->c);
    take_sqes();
    addrs_release(l);
}

/*
 * The connect of the attempt's generation succeeds: connected() then opened(), the multishot
 * recv is armed under the attempt's generation, the address list and the connect deadline
 * are let go, and the linked first send's completion calls sent() once.
 */
static void test_connect_success(void)
{
    static const char first[] = "GET /";
    const char *txt[] = {"127.0.0.1"};
    struct rf_addrs *l = addrs_of(txt, 1);
    struct tconn *t = &fx.t[0];
    uint32_t gen;
    int fidx;

    CHECK_INT(conn_open(&fx.set, &t->c, l, 8080, NULL, NULL, first, 5, 0, 0), 0);
    take_sqes();
    gen = t->c.att[0].gen;
    fidx = t->c.att[0].fidx;
    complete(ud_pack(OP_SOCKET, gen, t->c.idx), 0, 0); /* the socket's own success: nothing */
    CHECK_STR(t->ev, "");
    complete(ud_pack(OP_CONNECT, gen, t->c.idx), 0, 0);
    CHECK_STR(t->ev, "CO");
    CHECK_INT(t->c.state, CONN_OPEN);
    CHECK_UINT(t->c.gen, gen);
    CHECK_INT(t->c.fidx, fidx);
    CHECK_INT(t->c.att[0].fidx, -1);
    CHECK_STR(sa_text(&t->c.peer), "127.0.0.1:8080");
    CHECK(t->c.recv_armed);
    CHECK(t->c.addrs == NULL);
    CHECK_UINT(l->refs, 1);
    CHECK_INT(ring_next_due(&fx.ring), -1);
    if (CHECK_UINT(take_sqes(), 1)) /* the recv; the request rode on the connect */
        check_recv(0, &t->c);
    complete(ud_pack(OP_SEND, gen, t->c.idx), 5, 0);
    CHECK_STR(t->ev, "COS");
    CHECK_UINT(take_sqes(), 0);
    conn_close(&fx.set, &t->c);
    take_sqes();
    addrs_release(l);
}

/* With two addresses the first send was not linked: it goes out once the connect wins. */
static void test_first_send_after_connect(void)
{
    static const char first[] = "GET /";
    const char *txt[] = {"127.0.0.1", "127.0.0.2"};
    struct rf_addrs *l = addrs_of(txt, 2);
    struct tconn *t = &fx.t[0];

    CHECK_INT(conn_open(&fx.set, &t->c, l, 8080, NULL, NULL, first, 5, 0, 0), 0);
    take_sqes();
    complete(ud_pack(OP_CONNECT, t->c.att[0].gen, t->c.idx), 0, 0);
    CHECK_STR(t->ev, "CO");
    if (CHECK_UINT(take_sqes(), 2)) {
        check_recv(0, &t->c);
        check_send(1, t->c.fidx, t->c.gen, t->c.idx, first, 5, 0);
    }
    CHECK_INT(ring_next_due(&fx.ring), -1); /* no next attempt after a win */
    complete(ud_pack(OP_SEND, t->c.gen, t->c.idx), 5, 0);
    CHECK_STR(t->ev, "COS");
    conn_close(&fx.set, &t->c);
    take_sqes();
    addrs_release(l);
}

/*
 * ECONNREFUSED on the first of two addresses: its descriptor is closed and the second
 * address is tried at once, without waiting for the 250 ms; when that fails too, closed()
 * says refused, and the failure's address is c->peer.
 */
static void test_refused_falls_back(void)
{
    const char *txt[] = {"127.0.0.2", "127.0.0.1"};
    struct rf_addrs *l = addrs_of(txt, 2);
    struct tconn *t = &fx.t[0];
    int fidx0, fidx1;

    CHECK_INT(conn_open(&fx.set, &t->c, l, 8080, NULL, NULL, "x", 1, 0, 0), 0);
    take_sqes();
    fidx0 = t->c.att[0].fidx;
    complete(ud_pack(OP_CONNECT, t->c.att[0].gen, t->c.idx), -ECONNREFUSED, 0);
    CHECK_STR(t->ev, "");
    CHECK_INT(t->c.state, CONN_CONNECTING);
    CHECK_UINT(t->c.tried, 2);
    take_sqes();
    check_close_of(fidx0);
    fidx1 = t->c.att[0].fidx;            /* the lane is free again */
    CHECK(fidx1 >= 0 && fidx1 != fidx0); /* fidx0 is not back before its close completes */
    {
        int k = find_sqe(IORING_OP_SOCKET, 0);

        if (CHECK(k >= 0))
            check_connect_chain((unsigned)k, &t->c, 0, "127.0.0.1:8080", 0);
    }
    CHECK_INT(ring_next_due(&fx.ring), T0 + TIMEOUT_US); /* no third address to wait for */
    complete(ud_pack(OP_CONNECT, t->c.att[0].gen, t->c.idx), -ECONNREFUSED, 0);
    CHECK_STR(t->ev, "X");
    CHECK_INT(t->err, RF_ERR_REFUSED);
    CHECK_INT(t->c.state, CONN_DOWN);
    CHECK_UINT(t->c.failed_op, OP_CONNECT);
    CHECK_STR(sa_text(&t->c.peer), "127.0.0.1:8080");
    CHECK_UINT(l->refs, 1);
    take_sqes();
    check_close_of(fidx1);
    CHECK_INT(ring_next_due(&fx.ring), -1);
    complete_closes();
    addrs_release(l);
}

/*
 * A socket that cannot be made (no IPv6 here) fails its attempt, and the connect linked to
 * it comes back ECANCELED: that says nothing more and is dropped. The next address runs.
 */
static void test_socket_failure(void)
{
    const char *txt[] = {"::1", "127.0.0.1"};
    struct rf_addrs *l = addrs_of(txt, 2);
    struct tconn *t = &fx.t[0];
    uint32_t gen0;

    CHECK_INT(conn_open(&fx.set, &t->c, l, 80, NULL, NULL, NULL, 0, 0, 0), 0);
    take_sqes();
    gen0 = t->c.att[0].gen;
    complete(ud_pack(OP_SOCKET, gen0, t->c.idx), -EAFNOSUPPORT, 0);
    complete(ud_pack(OP_CONNECT, gen0, t->c.idx), -ECANCELED, 0);
    CHECK_STR(t->ev, "");
    CHECK_UINT(t->c.tried, 2);
    CHECK_STR(sa_text(&t->c.att[0].addr), "127.0.0.1:80");
    complete(ud_pack(OP_CONNECT, t->c.att[0].gen, t->c.idx), 0, 0);
    CHECK_STR(t->ev, "CO");
    CHECK_STR(sa_text(&t->c.peer), "127.0.0.1:80");
    conn_close(&fx.set, &t->c);
    take_sqes();
    complete_closes();
    addrs_release(l);
}

/* A local shortage (EMFILE, EADDRNOTAVAIL, ...) fails the open at once: another address
 * would not help. */
static void test_local_failure_fails_at_once(void)
{
    const char *txt[] = {"127.0.0.1", "127.0.0.2"};
    struct rf_addrs *l = addrs_of(txt, 2);
    struct tconn *t = &fx.t[0];

    CHECK_INT(conn_open(&fx.set, &t->c, l, 80, NULL, NULL, NULL, 0, 0, 0), 0);
    take_sqes();
    complete(ud_pack(OP_CONNECT, t->c.att[0].gen, t->c.idx), -EADDRNOTAVAIL, 0);
    CHECK_STR(t->ev, "X");
    CHECK_INT(t->err, RF_ERR_RESOURCE);
    CHECK_UINT(t->c.tried, 1);
    CHECK_INT(t->c.state, CONN_DOWN);
    take_sqes();
    CHECK_INT(find_sqe(IORING_OP_SOCKET, 0), -1);
    complete_closes();
    addrs_release(l);
}

/*
 * Happy Eyeballs: with no answer the second attempt starts when the 250 ms timer fires,
 * beside the first; the second connects first and wins, the first lane is closed, and the
 * first's late success is dropped.
 */
static void test_happy_eyeballs_later_wins(void)
{
    const char *txt[] = {"::1", "127.0.0.1"};
    struct rf_addrs *l = addrs_of(txt, 2);
    struct tconn *t = &fx.t[0];
    uint32_t gen0;
    int fidx0, fidx1;

    CHECK_INT(conn_open(&fx.set, &t->c, l, 80, NULL, NULL, NULL, 0, 0, 0), 0);
    take_sqes();
    gen0 = t->c.att[0].gen;
    fidx0 = t->c.att[0].fidx;
    at(T0 + CONN_HE_DELAY_US - 1);
    CHECK_UINT(take_sqes(), 0);
    CHECK_UINT(t->c.tried, 1);
    at(T0 + CONN_HE_DELAY_US);
    CHECK_UINT(t->c.tried, 2);
    CHECK_INT(t->c.att[0].fidx, fidx0); /* still in the air */
    fidx1 = t->c.att[1].fidx;
    CHECK(fidx1 >= 0 && fidx1 != fidx0);
    if (CHECK_UINT(take_sqes(), 2))
        check_connect_chain(0, &t->c, 1, "127.0.0.1:80", 0);
    CHECK_INT(ring_next_due(&fx.ring), T0 + TIMEOUT_US); /* no third attempt to time */
    CHECK_STR(t->ev, "");

    complete(ud_pack(OP_CONNECT, t->c.att[1].gen, t->c.idx), 0, 0);
    CHECK_STR(t->ev, "CO");
    CHECK_INT(t->c.fidx, fidx1);
    CHECK_STR(sa_text(&t->c.peer), "127.0.0.1:80");
    CHECK_INT(t->c.att[0].fidx, -1);
    take_sqes();
    check_close_of(fidx0);
    CHECK(find_sqe(IORING_OP_RECV, 0) >= 0);
    /* The loser's connect completes after all: stale, whatever it says. */
    complete(ud_pack(OP_CONNECT, gen0, t->c.idx), 0, 0);
    complete(ud_pack(OP_CONNECT, gen0, t->c.idx), -ECANCELED, 0);
    CHECK_STR(t->ev, "CO");
    CHECK_INT(t->c.state, CONN_OPEN);
    CHECK_INT(t->c.fidx, fidx1);
    CHECK_UINT(take_sqes(), 0);
    conn_close(&fx.set, &t->c);
    take_sqes();
    complete_closes();
    addrs_release(l);
}

/* Happy Eyeballs, the other way: both in the air, the first one connects; the second lane
 * is closed and its late failure dropped. */
static void test_happy_eyeballs_first_wins(void)
{
    const char *txt[] = {"::1", "127.0.0.1"};
    struct rf_addrs *l = addrs_of(txt, 2);
    struct tconn *t = &fx.t[0];
    uint32_t gen1;
    int fidx1;

    CHECK_INT(conn_open(&fx.set, &t->c, l, 80, NULL, NULL, NULL, 0, 0, 0), 0);
    at(T0 + CONN_HE_DELAY_US);
    take_sqes();
    gen1 = t->c.att[1].gen;
    fidx1 = t->c.att[1].fidx;
    complete(ud_pack(OP_CONNECT, t->c.att[0].gen, t->c.idx), 0, 0);
    CHECK_STR(t->ev, "CO");
    CHECK_STR(sa_text(&t->c.peer), "[::1]:80");
    CHECK_UINT(t->c.tried, 2);
    take_sqes();
    check_close_of(fidx1);
    complete(ud_pack(OP_CONNECT, gen1, t->c.idx), -ECONNREFUSED, 0);
    CHECK_STR(t->ev, "CO");
    CHECK_INT(t->c.state, CONN_OPEN);
    conn_close(&fx.set, &t->c);
    take_sqes();
    complete_closes();
    addrs_release(l);
}

/*
 * Three addresses, none answering: the second starts at 250 ms, the third at 500 ms, and
 * with two in the air already the older attempt gives way to it. The attempts that remain
 * fail one by one; only the last failure closes the connection.
 */
static void test_happy_eyeballs_third_address(void)
{
    const char *txt[] = {"::1", "127.0.0.1", "127.0.0.2"};
    struct rf_addrs *l = addrs_of(txt, 3);
    struct tconn *t = &fx.t[0];
    uint32_t gen0, gen1;
    int fidx0;

    CHECK_INT(conn_open(&fx.set, &t->c, l, 80, NULL, NULL, NULL, 0, 0, 0), 0);
    take_sqes();
    gen0 = t->c.att[0].gen;
    fidx0 = t->c.att[0].fidx;
    at(T0 + CONN_HE_DELAY_US);
    take_sqes();
    gen1 = t->c.att[1].gen;
    CHECK_INT(ring_next_due(&fx.ring), T0 + 2 * CONN_HE_DELAY_US);
    at(T0 + 2 * CONN_HE_DELAY_US);
    CHECK_UINT(t->c.tried, 3);
    take_sqes();
    check_close_of(fidx0);
    {
        int k = find_sqe(IORING_OP_SOCKET, 0);

        if (CHECK(k >= 0))
            check_connect_chain((unsigned)k, &t->c, 0, "127.0.0.2:80", 0);
    }
    CHECK_UINT(t->c.att[1].gen, gen1);
    complete(ud_pack(OP_CONNECT, gen0, t->c.idx), -ECONNREFUSED, 0); /* given way: stale */
    complete(ud_pack(OP_CONNECT, gen1, t->c.idx), -ECONNREFUSED, 0);
    CHECK_STR(t->ev, ""); /* the third is still in the air */
    complete(ud_pack(OP_CONNECT, t->c.att[0].gen, t->c.idx), -ETIMEDOUT, 0);
    CHECK_STR(t->ev, "X");
    CHECK_INT(t->err, RF_ERR_CONNECT_TIMEOUT); /* the last failure's reason */
    CHECK_STR(sa_text(&t->c.peer), "127.0.0.2:80");
    take_sqes();
    complete_closes();
    addrs_release(l);
}

/*
 * Three addresses, the first refused at once: the second starts at once, and the third
 * still follows 250 ms after the second (the attempt timer is moved, not lost).
 */
static void test_happy_eyeballs_after_refusal(void)
{
    const char *txt[] = {"::1", "127.0.0.1", "127.0.0.2"};
    struct rf_addrs *l = addrs_of(txt, 3);
    struct tconn *t = &fx.t[0];

    CHECK_INT(conn_open(&fx.set, &t->c, l, 80, NULL, NULL, NULL, 0, 0, 0), 0);
    take_sqes();
    CHECK_INT(ring_next_due(&fx.ring), T0 + CONN_HE_DELAY_US);
    at(T0 + 1000);
    complete(ud_pack(OP_CONNECT, t->c.att[0].gen, t->c.idx), -ECONNREFUSED, 0);
    CHECK_UINT(t->c.tried, 2);
    CHECK_STR(sa_text(&t->c.att[0].addr), "127.0.0.1:80");
    CHECK_INT(ring_next_due(&fx.ring), T0 + 1000 + CONN_HE_DELAY_US);
    take_sqes();
    at(T0 + 1000 + CONN_HE_DELAY_US);
    CHECK_UINT(t->c.tried, 3);
    if (CHECK_UINT(take_sqes(), 2))
        check_connect_chain(0, &t->c, 1, "127.0.0.2:80", 0);
    CHECK_STR(t->ev, "");
    conn_close(&fx.set, &t->c);
    take_sqes();
    complete_closes();
    addrs_release(l);
}

/* The connect deadline: closed(connect_timeout) when it passes, every attempt closed. */
static void test_connect_deadline(void)
{
    const char *txt[] = {"::1", "127.0.0.1"};
    struct rf_addrs *l = addrs_of(txt, 2);
    struct tconn *t = &fx.t[0];
    int fidx0, fidx1;

    CHECK_INT(conn_open(&fx.set, &t->c, l, 80, NULL, NULL, NULL, 0, 0, 0), 0);
    at(T0 + CONN_HE_DELAY_US);
    fidx0 = t->c.att[0].fidx;
    fidx1 = t->c.att[1].fidx;
    take_sqes();
    at(T0 + TIMEOUT_US - 1);
    CHECK_STR(t->ev, "");
    at(T0 + TIMEOUT_US);
    CHECK_STR(t->ev, "X");
    CHECK_INT(t->err, RF_ERR_CONNECT_TIMEOUT);
    CHECK_UINT(t->c.failed_op, OP_CONNECT);
    CHECK_INT(t->c.state, CONN_DOWN);
    take_sqes();
    check_close_of(fidx0);
    check_close_of(fidx1);
    CHECK_INT(ring_next_due(&fx.ring), -1);
    complete_closes();
    addrs_release(l);

    /* A deadline of the open's own, shorter than the set's. */
    l = addrs_of(txt + 1, 1);
    t->nev = 0;
    fx.ring.now = T0;
    CHECK_INT(conn_open(&fx.set, &t->c, l, 80, NULL, NULL, NULL, 0, 0, 1000), 0);
    CHECK_INT(ring_next_due(&fx.ring), T0 + 1000);
    at(T0 + 1000);
    CHECK_STR(t->ev, "X");
    CHECK_INT(t->err, RF_ERR_CONNECT_TIMEOUT);
    take_sqes();
    complete_closes();
    addrs_release(l);
}

/*
 * Completions of an older generation - a socket closed by its owner, the previous socket
 * of a reopened connection, an index past the set - call nobody, and a provided buffer
 * they carry goes back to the buffer ring.
 */
static void test_stale_completions(void)
{
    struct tconn *t = &fx.t[1];
    uint32_t old_gen;
    uint16_t tail;

    open_connected(t, "127.0.0.1", NULL, 0);
    old_gen = t->c.gen;
    conn_close(&fx.set, &t->c);
    CHECK_STR(t->ev, ""); /* conn_close() calls nobody back */
    CHECK(t->c.gen != old_gen);
    take_sqes();
    complete_closes();

    tail = fx.ring.br->tail;
    complete_recv(&t->c, old_gen, 3, "late bytes", 10, 1);
    CHECK_STR(t->ev, "");
    check_buf_returned(tail, 3);
    complete(ud_pack(OP_SEND, old_gen, t->c.idx), -ECONNRESET, 0);
    complete(ud_pack(OP_RECV, old_gen, t->c.idx), -ECONNRESET, 0);
    CHECK_STR(t->ev, "");
    CHECK_UINT(take_sqes(), 0);

    /* Reopened: the old socket's completions still find nobody. */
    open_connected(t, "127.0.0.1", NULL, 0);
    tail = fx.ring.br->tail;
    complete_recv(&t->c, old_gen, 5, "late bytes", 10, 0);
    complete(ud_pack(OP_CONNECT, old_gen, t->c.idx), 0, 0);
    complete(ud_pack(OP_SEND, old_gen, t->c.idx), 7, 0);
    CHECK_STR(t->ev, "");
    CHECK_UINT(t->ndata, 0);
    check_buf_returned(tail, 5);
    CHECK_INT(t->c.state, CONN_OPEN);
    CHECK_UINT(take_sqes(), 0); /* not even a re-armed recv */

    /* An index no connection has. */
    tail = fx.ring.br->tail;
    memcpy(ring_buf(&fx.ring, 6), "x", 1);
    complete(ud_pack(OP_RECV, t->c.gen, NCONN + 5), 1,
             IORING_CQE_F_BUFFER | 6u << IORING_CQE_BUFFER_SHIFT);
    check_buf_returned(tail, 6);
    conn_close(&fx.set, &t->c);
    take_sqes();
    complete_closes();
}

/* Received bytes reach data() exactly, the buffer goes back, and the multishot recv is
 * armed again only when the kernel ended it. */
static void test_recv_data(void)
{
    struct tconn *t = &fx.t[0];
    uint16_t tail;

    open_connected(t, "127.0.0.1", NULL, 0);
    tail = fx.ring.br->tail;
    complete_recv(&t->c, t->c.gen, 2, "hello", 5, 1);
    CHECK_STR(t->ev, "D");
    CHECK_MEM(t->data, t->ndata, "hello", 5);
    check_buf_returned(tail, 2);
    CHECK_UINT(take_sqes(), 0); /* still armed */
    tail = fx.ring.br->tail;
    complete_recv(&t->c, t->c.gen, 4, " world", 6, 0);
    CHECK_STR(t->ev, "DD");
    CHECK_MEM(t->data, t->ndata, "hello world", 11);
    check_buf_returned(tail, 4);
    if (CHECK_UINT(take_sqes(), 1))
        check_recv(0, &t->c);
    conn_close(&fx.set, &t->c);
    take_sqes();
    complete_closes();
}

/* An owner that closes the connection inside data(): the buffer still goes back, and
 * nothing is armed for the socket that is gone. */
static void test_recv_owner_closes(void)
{
    struct tconn *t = &fx.t[0];
    uint16_t tail;
    int fidx = open_connected(t, "127.0.0.1", NULL, 0);

    t->close_in_data = 1;
    tail = fx.ring.br->tail;
    complete_recv(&t->c, t->c.gen, 1, "bye", 3, 0);
    t->close_in_data = 0;
    CHECK_STR(t->ev, "D");
    CHECK_INT(t->c.state, CONN_DOWN);
    check_buf_returned(tail, 1);
    take_sqes();
    CHECK_INT(find_sqe(IORING_OP_RECV, 0), -1);
    check_close_of(fidx);
    complete_closes();
}

/* The peer's orderly close (a recv of 0) is closed(RF_OK), in the recv. */
static void test_recv_eof(void)
{
    struct tconn *t = &fx.t[0];
    int fidx = open_connected(t, "127.0.0.1", NULL, 0);

    complete_recv(&t->c, t->c.gen, 0, "", 0, 0);
    CHECK_STR(t->ev, "X");
    CHECK_INT(t->err, RF_OK);
    CHECK_UINT(t->c.failed_op, OP_RECV);
    CHECK_INT(t->c.state, CONN_DOWN);
    take_sqes();
    check_close_of(fidx);
    CHECK_INT(find_sqe(IORING_OP_RECV, 0), -1);
    complete_closes();
}

/* A reset (ECONNRESET, EPIPE) is closed(RF_ERR_RESET); another recv error closed(closed). */
static void test_recv_errors(void)
{
    static const struct {
        int res;
        rf_error err;
    } cases[] = {
        {-ECONNRESET, RF_ERR_RESET},
        {-EPIPE, RF_ERR_RESET},
        {-ETIMEDOUT, RF_ERR_CLOSED},
        {-EIO, RF_ERR_CLOSED},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tconn *t = &fx.t[0];
        int fidx = open_connected(t, "127.0.0.1", NULL, 0), before = check_failures();

        complete_recv(&t->c, t->c.gen, 0, "", cases[i].res, 0);
        CHECK_STR(t->ev, "X");
        CHECK_INT(t->err, cases[i].err);
        CHECK_UINT(t->c.failed_op, OP_RECV);
        take_sqes();
        check_close_of(fidx);
        complete_closes();
        if (check_failures() != before)
            fprintf(stderr, "  recv error %d\n", cases[i].res);
    }
}

/* ENOBUFS: the buffer ring ran dry for a moment; the recv is armed again, nobody hears. */
static void test_recv_enobufs(void)
{
    struct tconn *t = &fx.t[0];

    open_connected(t, "127.0.0.1", NULL, 0);
    complete_recv(&t->c, t->c.gen, 0, "", -ENOBUFS, 0);
    CHECK_STR(t->ev, "");
    CHECK_INT(t->c.state, CONN_OPEN);
    CHECK(t->c.recv_armed);
    if (CHECK_UINT(take_sqes(), 1))
        check_recv(0, &t->c);
    conn_close(&fx.set, &t->c);
    take_sqes();
    complete_closes();
}

/* A short send goes on from where it stopped; sent() comes once, at the end. */
static void test_short_send(void)
{
    static char buf[100];
    struct tconn *t = &fx.t[0];
    int fidx = open_connected(t, "127.0.0.1", NULL, 0);

    memset(buf, 'q', sizeof(buf));
    CHECK_INT(conn_send(&fx.set, &t->c, buf, 100, 0), 0);
    CHECK(t->c.sending);
    if (CHECK_UINT(take_sqes(), 1))
        check_send(0, fidx, t->c.gen, t->c.idx, buf, 100, 0);
    complete(ud_pack(OP_SEND, t->c.gen, t->c.idx), 40, 0);
    CHECK_STR(t->ev, "");
    if (CHECK_UINT(take_sqes(), 1))
        check_send(0, fidx, t->c.gen, t->c.idx, buf + 40, 60, 0);
    complete(ud_pack(OP_SEND, t->c.gen, t->c.idx), 59, 0);
    if (CHECK_UINT(take_sqes(), 1))
        check_send(0, fidx, t->c.gen, t->c.idx, buf + 99, 1, 0);
    complete(ud_pack(OP_SEND, t->c.gen, t->c.idx), 1, 0);
    CHECK_STR(t->ev, "S");
    CHECK(!t->c.sending);
    CHECK_UINT(take_sqes(), 0);
    /* A failed send closes the connection: reset. */
    CHECK_INT(conn_send(&fx.set, &t->c, buf, 10, 0), 0);
    take_sqes();
    complete(ud_pack(OP_SEND, t->c.gen, t->c.idx), -EPIPE, 0);
    CHECK_STR(t->ev, "SX");
    CHECK_INT(t->err, RF_ERR_RESET);
    CHECK_UINT(t->c.failed_op, OP_SEND);
    take_sqes();
    complete_closes();
}

/* A quiet send asks the kernel for no completion on success (CQE_SKIP_SUCCESS), so sent()
 * is never due; a failure still posts one and closes the connection. */
static void test_quiet_send(void)
{
    static const char ping[] = "ping\n";
    struct tconn *t = &fx.t[0];
    int fidx = open_connected(t, "127.0.0.1", NULL, 0);

    CHECK_INT(conn_send(&fx.set, &t->c, ping, 5, CONN_SEND_QUIET), 0);
    CHECK(!t->c.sending);
    if (CHECK_UINT(take_sqes(), 1))
        check_send(0, fidx, t->c.gen, t->c.idx, ping, 5, IOSQE_CQE_SKIP_SUCCESS);
    complete(ud_pack(OP_SEND, t->c.gen, t->c.idx), -ECONNRESET, 0);
    CHECK_STR(t->ev, "X");
    CHECK_INT(t->err, RF_ERR_RESET);
    take_sqes();
    complete_closes();

    /* Quiet on the open: the first send rides linked on the connect, quiet too. */
    {
        const char *txt[] = {"127.0.0.1"};
        struct rf_addrs *l = addrs_of(txt, 1);

        t->nev = 0;
        t->ev[0] = '\0';
        CHECK_INT(conn_open(&fx.set, &t->c, l, 80, NULL, NULL, ping, 5, CONN_SEND_QUIET, 0), 0);
        if (CHECK_UINT(take_sqes(), 3))
            check_send(2, t->c.att[0].fidx, t->c.att[0].gen, t->c.idx, ping, 5,
                       IOSQE_CQE_SKIP_SUCCESS);
        complete(ud_pack(OP_CONNECT, t->c.att[0].gen, t->c.idx), 0, 0);
        CHECK_STR(t->ev, "CO");
        CHECK(!t->c.sending);
        conn_close(&fx.set, &t->c);
        take_sqes();
        complete_closes();
        addrs_release(l);
    }
}

/* A descriptor index is free again only once its close has completed, so a new socket can
 * never be closed by its predecessor's late close. */
static void test_index_back_after_close(void)
{
    struct tconn *t = &fx.t[0];
    int fidx = open_connected(t, "127.0.0.1", NULL, 0);
    unsigned nfree = fx.ring.nfree_files;
    int found = 0;

    conn_close(&fx.set, &t->c);
    take_sqes();
    check_close_of(fidx);
    CHECK_UINT(fx.ring.nfree_files, nfree);
    for (unsigned i = 0; i < fx.ring.nfree_files; i++)
        found |= (int)fx.ring.free_files[i] == fidx;
    CHECK(!found);
    complete_closes();
    CHECK_UINT(fx.ring.nfree_files, nfree + 1);
    CHECK_INT(ring_file_get(&fx.ring), fidx);
    fx.ring.free_files[fx.ring.nfree_files++] = (uint32_t)fidx; /* give it back */
    CHECK_UINT(fx.ring.nfree_files, NFILES);
}

/* No free descriptor: the open fails with resource, queues nothing, holds nothing. */
static void test_no_descriptor(void)
{
    const char *txt[] = {"127.0.0.1"};
    struct rf_addrs *l = addrs_of(txt, 1);
    struct tconn *t = &fx.t[0];
    unsigned saved = fx.ring.nfree_files;

    fx.ring.nfree_files = 0;
    CHECK_INT(conn_open(&fx.set, &t->c, l, 80, NULL, NULL, "x", 1, 0, 0), -RF_ERR_RESOURCE);
    fx.ring.nfree_files = saved;
    CHECK_INT(t->c.state, CONN_DOWN);
    CHECK_UINT(l->refs, 1);
    CHECK_UINT(take_sqes(), 0);
    CHECK_STR(t->ev, "");
    CHECK_INT(ring_next_due(&fx.ring), -1);
    addrs_release(l);
}

/* ---------------------------------------------------------------- a real peer */

enum peer_mode { PEER_ECHO_CLOSE, PEER_RESET };

/* One connection served by a thread: read a line, then echo it and close, or reset. */
struct peer {
    int lfd;
    enum peer_mode mode;
    pthread_t th;
    char got[256];
    size_t ngot;
    int accepted;
};

static void *peer_main(void *arg)
{
    struct peer *p = arg;
    struct pollfd pfd = {.fd = p->lfd, .events = POLLIN};
    struct timeval tv = {.tv_sec = 3};
    int fd;

    if (poll(&pfd, 1, 3000) != 1)
        return NULL;
    fd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return NULL;
    p->accepted = 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (p->ngot < sizeof(p->got) && !memchr(p->got, '\n', p->ngot)) {
        ssize_t n = read(fd, p->got + p->ngot, sizeof(p->got) - p->ngot);

        if (n <= 0)
            break;
        p->ngot += (size_t)n;
    }
    if (p->mode == PEER_ECHO_CLOSE) {
        ssize_t w = write(fd, p->got, p->ngot);

        (void)w;
    } else {
        struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* close sends RST */

        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(fd);
    return NULL;
}

static int listen_fd = -1, refuse_fd = -1;
static uint16_t lb_port;
static unsigned ncqe_by_op[OP__COUNT];
static struct {
    ring_handler fn;
    void *ctx;
} real_handler[OP__COUNT];

/* Count completions by tag on their way to the handler the set (or the ring) registered. */
static void counting(void *ctx, struct io_uring_cqe *cqe)
{
    enum rf_op op = (enum rf_op)(uintptr_t)ctx;

    ncqe_by_op[op]++;
    real_handler[op].fn(real_handler[op].ctx, cqe);
}

static int lb_init(void)
{
    if (fx_init(3000000))
        return -1;
    memset(ncqe_by_op, 0, sizeof(ncqe_by_op));
    for (unsigned op = OP_CLOSE; op <= OP_RECV; op++) {
        real_handler[op].fn = fx.ring.handler[op].fn;
        real_handler[op].ctx = fx.ring.handler[op].ctx;
        ring_on(&fx.ring, (enum rf_op)op, counting, (void *)(uintptr_t)op);
    }
    ring_dispatch(&fx.ring, UINT_MAX); /* reads the clock */
    return 0;
}

/* Run the ring until t has closed and every descriptor is back, ~5 s at most. */
static int lb_run(struct tconn *t)
{
    for (int i = 0; i < 100; i++) {
        if (t->c.state == CONN_DOWN && strchr(t->ev, 'X') && fx.ring.nfree_files == NFILES)
            return 1;
        if (ring_wait(&fx.ring, 1, 50000))
            return 0;
        ring_dispatch(&fx.ring, UINT_MAX);
    }
    return 0;
}

static void peer_start(struct peer *p, enum peer_mode mode)
{
    memset(p, 0, sizeof(*p));
    p->lfd = listen_fd;
    p->mode = mode;
    if (pthread_create(&p->th, NULL, peer_main, p))
        abort();
}

static struct rf_addrs *lb_addrs(const char *a, const char *b)
{
    const char *txt[] = {a, b};

    return addrs_of(txt, b ? 2 : 1);
}

/* The request rides linked on the connect to the one address; the echo comes back; the
 * peer's close is closed(RF_OK); both descriptors' closes complete. */
static void test_loopback_echo(void)
{
    static const char req[] = "hello\n";
    struct rf_addrs *l = lb_addrs("127.0.0.1", NULL);
    struct tconn *t = &fx.t[0];
    struct peer p;

    peer_start(&p, PEER_ECHO_CLOSE);
    CHECK_INT(conn_open(&fx.set, &t->c, l, lb_port, NULL, NULL, req, 6, 0, 0), 0);
    CHECK(lb_run(t));
    pthread_join(p.th, NULL);
    CHECK_MEM(p.got, p.ngot, req, 6);
    CHECK_STR(t->ev, "COSDX");
    CHECK_MEM(t->data, t->ndata, req, 6);
    CHECK_INT(t->err, RF_OK);
    CHECK_UINT(t->c.tried, 1);
    CHECK_UINT(ncqe_by_op[OP_SEND], 1);
    CHECK_UINT(ncqe_by_op[OP_CLOSE], 1);
    addrs_release(l);
}

/* 127.0.0.2 refuses, 127.0.0.1 on the same port serves: the second address is tried at
 * once, answers, and carries the request. */
static void test_loopback_fallback(void)
{
    static const char req[] = "second\n";
    struct rf_addrs *l = lb_addrs("127.0.0.2", "127.0.0.1");
    struct tconn *t = &fx.t[1];
    struct peer p;
    char want[32];

    peer_start(&p, PEER_ECHO_CLOSE);
    CHECK_INT(conn_open(&fx.set, &t->c, l, lb_port, NULL, NULL, req, 7, 0, 0), 0);
    CHECK(lb_run(t));
    pthread_join(p.th, NULL);
    CHECK_STR(t->ev, "COSDX");
    CHECK_MEM(t->data, t->ndata, req, 7);
    CHECK_INT(t->err, RF_OK);
    CHECK_UINT(t->c.tried, 2);
    snprintf(want, sizeof(want), "127.0.0.1:%u", lb_port);
    CHECK_STR(sa_text(&t->c.peer), want);
    CHECK_UINT(ncqe_by_op[OP_CLOSE], 2); /* the refused attempt's socket, then this one */
    addrs_release(l);
}

/* Every address refuses: closed(refused), naming the last one tried. */
static void test_loopback_refused(void)
{
    struct rf_addrs *l = lb_addrs("127.0.0.2", NULL);
    struct tconn *t = &fx.t[0];
    char want[32];

    CHECK_INT(conn_open(&fx.set, &t->c, l, lb_port, NULL, NULL, "x\n", 2, 0, 0), 0);
    CHECK(lb_run(t));
    CHECK_STR(t->ev, "X");
    CHECK_INT(t->err, RF_ERR_REFUSED);
    snprintf(want, sizeof(want), "127.0.0.2:%u", lb_port);
    CHECK_STR(sa_text(&t->c.peer), want);
    addrs_release(l);
}

/* The peer resets the connection (SO_LINGER 0): closed(RF_ERR_RESET). */
static void test_loopback_reset(void)
{
    struct rf_addrs *l = lb_addrs("127.0.0.1", NULL);
    struct tconn *t = &fx.t[0];
    struct peer p;

    peer_start(&p, PEER_RESET);
    CHECK_INT(conn_open(&fx.set, &t->c, l, lb_port, NULL, NULL, "reset me\n", 9, 0, 0), 0);
    CHECK(lb_run(t));
    pthread_join(p.th, NULL);
    CHECK_MEM(p.got, p.ngot, "reset me\n", 9);
    CHECK_STR(t->ev, "COSX");
    CHECK_INT(t->err, RF_ERR_RESET);
    CHECK_UINT(t->c.failed_op, OP_RECV);
    addrs_release(l);
}

/* A quiet send on a real socket: its bytes arrive (the echo proves it) and the kernel
 * posts no send completion at all. */
static void test_loopback_quiet_send(void)
{
    struct rf_addrs *l = lb_addrs("127.0.0.1", NULL);
    struct tconn *t = &fx.t[0];
    struct peer p;
    int i;

    peer_start(&p, PEER_ECHO_CLOSE);
    CHECK_INT(conn_open(&fx.set, &t->c, l, lb_port, NULL, NULL, NULL, 0, 0, 0), 0);
    for (i = 0; i < 100 && t->c.state != CONN_OPEN && !strchr(t->ev, 'X'); i++) {
        ring_wait(&fx.ring, 1, 50000);
        ring_dispatch(&fx.ring, UINT_MAX);
    }
    if (CHECK_INT(t->c.state, CONN_OPEN))
        CHECK_INT(conn_send(&fx.set, &t->c, "quiet\n", 6, CONN_SEND_QUIET), 0);
    CHECK(lb_run(t));
    pthread_join(p.th, NULL);
    CHECK_STR(t->ev, "CODX");
    CHECK_MEM(t->data, t->ndata, "quiet\n", 6);
    CHECK_UINT(ncqe_by_op[OP_SEND], 0);
    addrs_release(l);
}

/* A TCP socket on ip:port; listening or only bound. Returns the fd or -1. */
static int tcp_socket(const char *ip, uint16_t port, int listening, uint16_t *bound)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    inet_pton(AF_INET, ip, &sin.sin_addr);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) || (listening && listen(fd, 8)) ||
        getsockname(fd, (struct sockaddr *)&sin, &len)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (bound)
        *bound = ntohs(sin.sin_port);
    return fd;
}

static int has_socket_op(void)
{
    struct io_uring_probe *probe = io_uring_get_probe();
    int ok = probe && io_uring_opcode_supported(probe, IORING_OP_SOCKET) &&
             io_uring_opcode_supported(probe, IORING_OP_SEND);

    if (probe)
        io_uring_free_probe(probe);
    return ok;
}

static void loopback_tests(void)
{
    void (*const tests[])(void) = {test_loopback_echo, test_loopback_fallback,
                                   test_loopback_refused, test_loopback_reset,
                                   test_loopback_quiet_send};

    if (!has_socket_op()) {
        fprintf(stderr, "test_conn: no IORING_OP_SOCKET here: loopback cases skipped\n");
        return;
    }
    listen_fd = tcp_socket("127.0.0.1", 0, 1, &lb_port);
    refuse_fd = listen_fd >= 0 ? tcp_socket("127.0.0.2", lb_port, 0, NULL) : -1;
    if (!CHECK(listen_fd >= 0 && refuse_fd >= 0))
        goto out;
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        if (lb_init()) {
            CHECK(0);
            break;
        }
        tests[i]();
        fx_free();
    }
out:
    if (listen_fd >= 0)
        close(listen_fd);
    if (refuse_fd >= 0)
        close(refuse_fd);
}

int main(void)
{
    void (*const tests[])(void) = {
        test_open_one_address,
        test_open_two_addresses,
        test_connect_success,
        test_first_send_after_connect,
        test_refused_falls_back,
        test_socket_failure,
        test_local_failure_fails_at_once,
        test_happy_eyeballs_later_wins,
        test_happy_eyeballs_first_wins,
        test_happy_eyeballs_third_address,
        test_happy_eyeballs_after_refusal,
        test_connect_deadline,
        test_stale_completions,
        test_recv_data,
        test_recv_owner_closes,
        test_recv_eof,
        test_recv_errors,
        test_recv_enobufs,
        test_short_send,
        test_quiet_send,
        test_index_back_after_close,
        test_no_descriptor,
    };

    if (fx_init(TIMEOUT_US))
        return check_skip("test_conn", "io_uring is not available");
    fx_free();
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        if (fx_init(TIMEOUT_US)) {
            CHECK(0);
            break;
        }
        tests[i]();
        /* Whatever a case leaves queued is taken away unseen; the ring goes with it. */
        take_sqes();
        fx_free();
    }
    loopback_tests();
    return check_finish("test_conn");
}
