/* conn.c - one connection's life as ring operations and completions (see conn.h). */
#include "conn/conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ring/clock.h"

#define PLAIN_CAP 16384 /* a TLS record's plaintext at most */

static uint32_t new_gen(struct conn *c)
{
    c->next_gen = (c->next_gen + 1) & UD_GEN_MASK;
    return c->next_gen;
}

void conn_init(struct conn *c, uint32_t idx)
{
    memset(c, 0, sizeof(*c));
    c->idx = idx;
    c->fidx = -1;
    for (int l = 0; l < CONN_ATTEMPTS; l++)
        c->att[l].fidx = -1;
    dq_node_init(&c->connect_timer);
    dq_node_init(&c->attempt_timer);
}

static void drop_attempt(struct conn_set *s, struct conn *c, int l)
{
    if (c->att[l].fidx >= 0)
        ring_close_direct(s->ring, (unsigned)c->att[l].fidx);
    c->att[l].fidx = -1;
}

void conn_close(struct conn_set *s, struct conn *c)
{
    if (c->fidx >= 0)
        ring_close_direct(s->ring, (unsigned)c->fidx);
    c->fidx = -1;
    for (int l = 0; l < CONN_ATTEMPTS; l++)
        drop_attempt(s, c, l);
    if (c->tls)
        tls_reset(c->tls);
    addrs_release(c->addrs);
    c->addrs = NULL;
    dq_del(&c->connect_timer);
    dq_del(&c->attempt_timer);
    c->state = CONN_DOWN;
    c->recv_armed = c->sending = 0;
    c->gen = new_gen(c); /* completions still in flight are now stale */
}

/* Down by itself: the owner hears why (and c->failed_op says in which operation). */
static void conn_fail(struct conn_set *s, struct conn *c, rf_error err, const char *detail)
{
    conn_close(s, c);
    s->ops->closed(c, err, detail);
}

static void send_failed(struct conn_set *s, struct conn *c, int res)
{
    c->failed_op = OP_SEND;
    conn_fail(s, c, res == -ECANCELED ? RF_ERR_CLOSED : RF_ERR_RESET, NULL);
}

static void arm_recv(struct conn_set *s, struct conn *c)
{
    ring_recv_multishot(s->ring, (unsigned)c->fidx, s->timestamps ? &s->msg : NULL,
                        ud_pack(OP_RECV, c->gen, c->idx));
    c->recv_armed = 1;
}

/* https: hand what wolfSSL wrote to a send, unless a flight is still in flight. */
static void flush(struct conn_set *s, struct conn *c, int fidx, uint32_t gen)
{
    uint32_t len;
    const char *p = tls_take_flight(c->tls, &len);

    if (p) {
        ring_send(s->ring, (unsigned)fidx, p, len, ud_pack(OP_SEND, gen, c->idx), 0);
        c->sending = 1;
    }
}

static void send_plain(struct conn_set *s, struct conn *c, int fidx, uint32_t gen,
                       unsigned flags)
{
    c->quiet = (flags & CONN_SEND_QUIET) != 0;
    c->sending = !c->quiet;
    ring_send(s->ring, (unsigned)fidx, c->sbuf + c->soff, c->slen - c->soff,
              ud_pack(OP_SEND, gen, c->idx), c->quiet ? IOSQE_CQE_SKIP_SUCCESS : 0);
}

int conn_send(struct conn_set *s, struct conn *c, const void *p, uint32_t len, unsigned flags)
{
    if (c->tls) {
        if (tls_write(c->tls, p, len))
            return -1;
        flush(s, c, c->fidx, c->gen);
        return 0;
    }
    c->sbuf = p;
    c->slen = len;
    c->soff = 0;
    send_plain(s, c, c->fidx, c->gen, flags);
    return 0;
}

/* ---- connecting: attempts, Happy Eyeballs, the deadline ---- */

static int resource_error(int res)
{
    return res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM ||
           res == -EADDRNOTAVAIL || res == -EAGAIN;
}

static rf_error connect_error(int res)
{
    switch (-res) {
    case ECONNREFUSED:
        return RF_ERR_REFUSED;
    case ETIMEDOUT:
        return RF_ERR_CONNECT_TIMEOUT;
    case ECONNRESET:
        return RF_ERR_RESET;
    default:
        return RF_ERR_UNREACHABLE;
    }
}

/*
 * Start a connect to the next address in a free lane. The first send (http's request or
 * https's ClientHello) rides linked on the connect only when this is the one address:
 * racing attempts must not each send it.
 */
static int start_attempt(struct conn_set *s, struct conn *c)
{
    int l = c->att[0].fidx < 0 ? 0 : 1;
    int fidx = ring_file_get(s->ring);
    uint32_t gen;

    if (fidx < 0)
        return -1;
    gen = new_gen(c);
    c->att[l].fidx = fidx;
    c->att[l].gen = gen;
    c->att[l].addr = c->addrs->a[c->next_addr++];
    addr_set_port(&c->att[l].addr, c->port);
    if (c->att[l ^ 1].fidx < 0)
        c->oldest = (uint8_t)l;
    ring_reserve(s->ring, 6);
    ring_socket_connect(s->ring, (unsigned)fidx, &c->att[l].addr.u.sa, c->att[l].addr.len,
                        c->src, c->srclen, s->timestamps ? RING_SO_TIMESTAMPNS : 0,
                        ud_pack(OP_SOCKET, gen, c->idx),
                        ud_pack(OP_CONNECT, gen, c->idx), c->link_first);
    if (c->link_first && c->tls)
        flush(s, c, fidx, gen);
    else if (c->link_first)
        send_plain(s, c, fidx, gen, c->quiet ? CONN_SEND_QUIET : 0);
    c->tried++;
    if (c->next_addr < c->addrs->n)
        dq_add(&s->attempt_q, &c->attempt_timer, s->ring->now);
    else
        dq_del(&c->attempt_timer);
    return 0;
}

int conn_open(struct conn_set *s, struct conn *c, const struct rf_addrs *addrs, uint16_t port,
              const char *host, tls_session *sess, const char *first, uint32_t len,
              unsigned flags, uint64_t connect_timeout_us)
{
    if (c->tls && tls_start(s->tls, c->tls, host, sess))
        return -RF_ERR_TLS;
    c->addrs = addrs_hold(addrs);
    c->peer.len = 0;
    c->port = port;
    c->next_addr = c->tried = 0;
    c->last_err = RF_ERR_UNREACHABLE;
    c->sbuf = first;
    c->slen = first ? len : 0;
    c->soff = 0;
    c->quiet = (flags & CONN_SEND_QUIET) != 0;
    c->link_first = addrs->n == 1 && (c->tls || first);
    c->state = CONN_CONNECTING;
    if (connect_timeout_us) /* this connection's own, in deadline order */
        dq_add_at(&s->connect_q, &c->connect_timer, s->ring->now + connect_timeout_us);
    else if (s->connect_q.delay) /* 0: no connect deadline (bench --connect-timeout 0) */
        dq_add(&s->connect_q, &c->connect_timer, s->ring->now);
    if (start_attempt(s, c)) {
        conn_close(s, c);
        return -RF_ERR_RESOURCE;
    }
    return 0;
}

/* The attempt in lane l connected first: it becomes the connection, the others go. */
static void won(struct conn_set *s, struct conn *c, int l)
{
    drop_attempt(s, c, l ^ 1);
    c->fidx = c->att[l].fidx;
    c->gen = c->att[l].gen;
    c->peer = c->att[l].addr;
    c->att[l].fidx = -1;
    dq_del(&c->attempt_timer);
    addrs_release(c->addrs);
    c->addrs = NULL;
    arm_recv(s, c);
    if (c->tls) {
        c->state = CONN_HANDSHAKE; /* the connect deadline runs on until it is done */
        if (!c->link_first)
            flush(s, c, c->fidx, c->gen);
        if (s->ops->connected)
            s->ops->connected(c);
        return;
    }
    c->state = CONN_OPEN;
    dq_del(&c->connect_timer);
    if (c->sbuf && !c->link_first)
        send_plain(s, c, c->fidx, c->gen, c->quiet ? CONN_SEND_QUIET : 0);
    if (s->ops->connected)
        s->ops->connected(c);
    if (c->gen == c->att[l].gen && c->state == CONN_OPEN)
        s->ops->opened(c);
}

/* An attempt failed: the next address at once, else wait for the other lane, else fail. */
static void attempt_failed(struct conn_set *s, struct conn *c, int l, int res)
{
    c->peer = c->att[l].addr; /* the address a failure row names, unless another answers */
    drop_attempt(s, c, l);
    if (resource_error(res))
        return conn_fail(s, c, RF_ERR_RESOURCE, NULL); /* local: other addresses won't help */
    c->last_err = (uint8_t)connect_error(res);
    if (c->next_addr < c->addrs->n) {
        if (start_attempt(s, c) == 0)
            return;
        if (c->att[l ^ 1].fidx < 0)
            return conn_fail(s, c, RF_ERR_RESOURCE, NULL);
    }
    if (c->att[l ^ 1].fidx < 0)
        conn_fail(s, c, (rf_error)c->last_err, NULL);
}

/* Happy Eyeballs: the last attempt has had its 250 ms; the next one starts beside it. */
static void next_attempt(struct conn_set *s, struct conn *c)
{
    if (c->att[0].fidx >= 0 && c->att[1].fidx >= 0) {
        int l = c->oldest;

        drop_attempt(s, c, l); /* two in the air already: the older one gives way */
        c->oldest = (uint8_t)(l ^ 1);
    }
    if (start_attempt(s, c))
        dq_add(&s->attempt_q, &c->attempt_timer, s->ring->now); /* no descriptor yet */
}

/* The connect deadline (per connection, the TLS handshake included). */
static void connect_expired(void *ctx, struct dq_node *n)
{
    struct conn *c = (struct conn *)((char *)n - offsetof(struct conn, connect_timer));

    c->failed_op = OP_CONNECT;
    conn_fail(ctx, c, RF_ERR_CONNECT_TIMEOUT,
              c->state == CONN_HANDSHAKE ? "the TLS handshake did not finish in time" : NULL);
}

static void attempt_due(void *ctx, struct dq_node *n)
{
    next_attempt(ctx, (struct conn *)((char *)n - offsetof(struct conn, attempt_timer)));
}

/* ---- data ---- */

static void tls_failed(struct conn_set *s, struct conn *c, int r)
{
    char why[200];

    if (r == TLS_CLOSED)
        return conn_fail(s, c, RF_ERR_TLS, "the server ended the session during the handshake");
    conn_fail(s, c, r == TLS_ERR_VERIFY ? RF_ERR_TLS_VERIFY : RF_ERR_TLS,
              tls_error(c->tls, why, sizeof(why)));
}

/*
 * https: run the handshake, then decrypt record by record into data(). Every lent byte is
 * taken before returning (the buffer goes back to the ring). Returns nonzero when the
 * connection ended or was taken over inside.
 */
static int tls_data(struct conn_set *s, struct conn *c, const char *p, uint32_t n)
{
    struct tls_conn *t = c->tls;
    uint32_t gen = c->gen;
    int r;

    tls_input(t, p, n);
    if (t->state == TLS_HANDSHAKE) {
        r = tls_handshake(t);
        if (r < 0) {
            tls_failed(s, c, r);
            return 1;
        }
        if (r == TLS_AGAIN) {
            flush(s, c, c->fidx, c->gen);
            return 0;
        }
        c->state = CONN_OPEN;
        dq_del(&c->connect_timer);
        s->ops->opened(c);
        if (c->gen != gen)
            return 1;
    }
    while ((r = tls_read(t, s->plain, PLAIN_CAP)) > 0)
        if (s->ops->data(c, s->plain, (size_t)r) || c->gen != gen)
            return 1;
    if (r == TLS_CLOSED) {
        conn_fail(s, c, RF_OK, NULL); /* close_notify: an orderly end, as EOF is */
        return 1;
    }
    if (r == TLS_ERR) {
        char why[200];

        conn_fail(s, c, RF_ERR_TLS, tls_error(t, why, sizeof(why)));
        return 1;
    }
    flush(s, c, c->fidx, c->gen); /* what the session owes the server, or the request */
    return 0;
}

/*
 * A recvmsg buffer: the io_uring_recvmsg_out header, the control area, the payload. The
 * payload's place and size come back in *p and the return; the timestamp goes to c->rx_us.
 */
static int recvmsg_payload(struct conn_set *s, struct conn *c, char **p, int res)
{
    struct io_uring_recvmsg_out *o = io_uring_recvmsg_validate(*p, res, &s->msg);
    struct cmsghdr *cm;

    c->rx_us = 0;
    if (!o)
        return -1;
    for (cm = io_uring_recvmsg_cmsg_firsthdr(o, &s->msg); cm;
         cm = io_uring_recvmsg_cmsg_nexthdr(o, &s->msg, cm)) {
        struct timespec ts;

        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SO_TIMESTAMPNS)
            continue;
        memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
        if (s->off_at != s->ring->now) { /* the clocks' offset, once per batch */
            struct timespec real;

            clock_gettime(CLOCK_REALTIME, &real);
            s->real_minus_mono = (int64_t)real.tv_sec * 1000000 + real.tv_nsec / 1000 -
                                 (int64_t)now_us();
            s->off_at = s->ring->now;
        }
        c->rx_us = (uint64_t)((int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 -
                              s->real_minus_mono);
    }
    *p = io_uring_recvmsg_payload(o, &s->msg);
    return (int)io_uring_recvmsg_payload_length(o, res, &s->msg);
}

static void on_recv(struct conn_set *s, struct conn *c, const struct io_uring_cqe *cqe)
{
    int res = cqe->res;
    unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    char *p = res > 0 ? ring_buf(s->ring, bid) : NULL;

    if (!(cqe->flags & IORING_CQE_F_MORE))
        c->recv_armed = 0;
    if (res > 0 && s->timestamps) {
        /* A payload of 0 is the peer's end (recvmsg's EOF) */
        int n = recvmsg_payload(s, c, &p, res);

        if (n <= 0)
            ring_buf_return(s->ring, bid);
        res = n < 0 ? -EINVAL : n;
    }
    if (res > 0) {
        int gone = c->tls ? tls_data(s, c, p, (uint32_t)res) : s->ops->data(c, p, (size_t)res);

        ring_buf_return(s->ring, bid);
        if (gone)
            return;
    } else if (res == 0) {
        if (c->state == CONN_HANDSHAKE)
            return tls_failed(s, c, TLS_CLOSED);
        return conn_fail(s, c, RF_OK, NULL);
    } else if (res != -ENOBUFS) {
        /* (ENOBUFS: the buffer ring ran dry for a moment; buffers come back this turn.) */
        return conn_fail(s, c, res == -ECONNRESET || res == -EPIPE ? RF_ERR_RESET : RF_ERR_CLOSED,
                         NULL);
    }
    if (!c->recv_armed && c->state >= CONN_HANDSHAKE)
        arm_recv(s, c);
}

static void on_send(struct conn_set *s, struct conn *c, int res)
{
    if (res < 0)
        return send_failed(s, c, res);
    if (c->tls) {
        uint32_t len;
        const char *rest = tls_flight_sent(c->tls, (uint32_t)res, &len);

        if (rest) /* a short send */
            return ring_send(s->ring, (unsigned)c->fidx, rest, len,
                             ud_pack(OP_SEND, c->gen, c->idx), 0);
        c->sending = 0;
        flush(s, c, c->fidx, c->gen); /* written meanwhile */
        if (!c->sending && c->state == CONN_OPEN)
            s->ops->sent(c);
        return;
    }
    c->soff += (uint32_t)res;
    if (c->soff < c->slen) /* short: the socket buffer was full */
        return send_plain(s, c, c->fidx, c->gen, c->quiet ? CONN_SEND_QUIET : 0);
    c->sending = 0;
    if (!c->quiet)
        s->ops->sent(c);
}

/* ---- completions ---- */

static int lane_of(const struct conn *c, uint32_t gen)
{
    for (int l = 0; l < CONN_ATTEMPTS; l++)
        if (c->att[l].fidx >= 0 && c->att[l].gen == gen)
            return l;
    return -1;
}

static void on_cqe(void *ctx, struct io_uring_cqe *cqe)
{
    struct conn_set *s = ctx;
    uint64_t ud = io_uring_cqe_get_data64(cqe);
    enum rf_op op = ud_op(ud);
    struct conn *c = ud_idx(ud) < s->n ? conn_at(s, ud_idx(ud)) : NULL;
    int l;

    if (c && (op == OP_SOCKET || op == OP_CONNECT)) {
        c->failed_op = OP_CONNECT;
        if (c->state != CONN_CONNECTING || (l = lane_of(c, ud_gen(ud))) < 0)
            return; /* an attempt that already lost or failed */
        if (cqe->res == -ECANCELED || (op == OP_SOCKET && cqe->res >= 0))
            return; /* success of the socket, or a connect after a failed socket: it said why */
        if (cqe->res < 0)
            return attempt_failed(s, c, l, cqe->res);
        return won(s, c, l);
    }
    if (!c || ud_gen(ud) != c->gen || c->state == CONN_DOWN) {
        /* Stale: the connection moved on. A buffer it carries still goes back. */
        if (cqe->flags & IORING_CQE_F_BUFFER)
            ring_buf_return(s->ring, cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        return;
    }
    c->failed_op = (uint8_t)op;
    if (op == OP_RECV)
        on_recv(s, c, cqe);
    else
        on_send(s, c, cqe->res);
}

/* ---- the set ---- */

int conn_set_timestamps(struct conn_set *s)
{
    if (ring_probe_setsockopt(s->ring))
        return 0;
    memset(&s->msg, 0, sizeof(s->msg));
    s->msg.msg_controllen = CMSG_SPACE(sizeof(struct timespec));
    s->timestamps = 1;
    return 1;
}

int conn_set_init(struct conn_set *s, struct rf_ring *ring, void *base, size_t stride,
                  uint32_t n, const struct conn_ops *ops, uint64_t connect_timeout_us)
{
    memset(s, 0, sizeof(*s));
    s->ring = ring;
    s->base = base;
    s->stride = stride;
    s->n = n;
    s->ops = ops;
    dq_init(&s->connect_q, connect_timeout_us);
    dq_init(&s->attempt_q, CONN_HE_DELAY_US);
    s->plain = malloc(PLAIN_CAP);
    if (!s->plain)
        return -RF_ERR_NOMEM;
    ring_on(ring, OP_SOCKET, on_cqe, s);
    ring_on(ring, OP_CONNECT, on_cqe, s);
    ring_on(ring, OP_SEND, on_cqe, s);
    ring_on(ring, OP_RECV, on_cqe, s);
    ring_add_queue(ring, &s->attempt_q, attempt_due, s);
    ring_add_queue(ring, &s->connect_q, connect_expired, s);
    return 0;
}

void conn_set_free(struct conn_set *s)
{
    for (uint32_t i = 0; s->base && i < s->n; i++)
        addrs_release(conn_at(s, i)->addrs);
    free(s->plain);
    s->plain = NULL;
}

tls_session *conn_session(const struct conn *c)
{
    return c->tls && c->tls->state == TLS_OPEN ? tls_get_session(c->tls) : NULL;
}
