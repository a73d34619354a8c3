/*
 * conn.h - the connection layer: one socket and, for https, its TLS session, driven by ring
 * operations. It knows nothing of requests, windows, pools or load loops. Its owner (a fetch
 * worker or a bench thread) embeds a struct conn in its own per-connection struct, opens it
 * with a list of addresses and hears back through four callbacks:
 *
 *   connected  TCP is up (https: the handshake starts)
 *   opened     ready for requests (http: at once; https: the handshake is done)
 *   data       response bytes, decrypted for https; the buffer is lent for the call only
 *   sent       what the last conn_send() queued has gone to the kernel
 *   closed     the connection went down by itself: err is RF_OK for an orderly close by
 *              the peer (EOF or close_notify), else why (refused, reset, tls, ...)
 *
 * The layer owns the connect chain (socket -> connect -> first send as one linked
 * submission), Happy Eyeballs over several addresses (RFC 8305: families interleaved, the
 * next attempt 250 ms after the last or at once when one fails, the first to connect
 * wins), the connect deadline (TCP and TLS handshake), generation-checked completions,
 * multishot recv with provided buffers, short sends and TLS flights, and teardown.
 */
#ifndef RF_CONN_H
#define RF_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "proto/addr.h"
#include "proto/tls.h"
#include "ring/dq.h"
#include "ring/ring.h"
#include "ringfetch.h"

enum conn_state {
    CONN_DOWN,       /* no socket */
    CONN_CONNECTING, /* connect attempts under way */
    CONN_HANDSHAKE,  /* https: connected, handshake running */
    CONN_OPEN,       /* ready: requests and responses flow */
};

#define CONN_ATTEMPTS 2    /* connect attempts in flight at once (Happy Eyeballs) */
#define CONN_HE_DELAY_US 250000 /* RFC 8305's recommended Connection Attempt Delay */

struct conn {
    uint32_t idx;            /* in its set: travels in user_data */
    uint32_t gen;            /* the live socket's generation; older completions are stale */
    uint32_t next_gen;       /* a new one per socket, so an attempt's completions are its own */
    int32_t fidx;            /* the live socket's direct descriptor, or -1 */
    uint8_t state;           /* enum conn_state */
    uint8_t recv_armed;
    uint8_t sending;         /* a send (plain) or TLS flight is in flight */
    uint8_t link_first;      /* the first send rides linked on the connect */
    uint8_t tried;           /* connect attempts started for this open */
    uint8_t next_addr;       /* the next address to try */
    uint8_t last_err;        /* rf_error of the last failed attempt */
    uint8_t quiet;           /* the plain send in flight posts no completion on success */
    uint8_t failed_op;       /* closed(): the operation that failed (OP_CONNECT/SEND/RECV) */
    uint16_t port;
    uint8_t oldest;          /* the lane whose attempt started first */
    struct {
        int32_t fidx;        /* -1: this lane is idle */
        uint32_t gen;
        struct rf_sockaddr addr; /* read by the kernel when the linked connect runs */
    } att[CONN_ATTEMPTS];
    struct rf_sockaddr peer; /* the address that answered */
    uint64_t rx_us;          /* with timestamps: when the kernel got the last recv's bytes
                                (ring clock), else 0; read it in data() */
    const struct rf_addrs *addrs; /* held while connecting */
    const struct sockaddr *src;   /* bind before connect (bench --source-addrs), or NULL */
    socklen_t srclen;
    const char *sbuf;        /* the plain send in flight: sbuf[soff..slen) still to go */
    uint32_t slen, soff;
    struct tls_conn *tls;    /* https: set by the owner before conn_open(); else NULL */
    struct dq_node connect_timer;
    struct dq_node attempt_timer; /* the next Happy Eyeballs attempt */
};

struct conn_ops {
    void (*connected)(struct conn *c); /* may be NULL */
    void (*opened)(struct conn *c);
    /* Returns 0, or nonzero when the owner closed or reopened the connection inside. */
    int (*data)(struct conn *c, const char *p, size_t n);
    void (*sent)(struct conn *c);
    void (*closed)(struct conn *c, rf_error err, const char *detail);
};

/*
 * The connections of one ring. They live inside their owners' structs: connection i is at
 * base + i * stride (owners put a struct conn first or anywhere; the set only needs this).
 */
struct conn_set {
    struct rf_ring *ring;
    char *base;
    size_t stride;
    uint32_t n;
    const struct conn_ops *ops;
    struct tls_ctx *tls;          /* https: shared trust and settings; NULL without https */
    char *plain;                  /* https: decrypted bytes on their way to data() */
    struct dq connect_q;          /* connect deadlines (the whole open, handshake included) */
    struct dq attempt_q;          /* Happy Eyeballs: when the next attempt starts */
    int timestamps;               /* receive timestamps (conn_set_timestamps) */
    struct msghdr msg;            /* the recvmsg layout that carries them */
    int64_t real_minus_mono;      /* clock offset, read once per batch (off_at) */
    uint64_t off_at;
};

/*
 * Kernel receive timestamps (SO_TIMESTAMPNS, read through multishot recvmsg), so that a
 * response's time is when its last segment reached the host, not when the loop got to
 * it. Call before any connection opens. Returns 1 when on, 0 when this kernel cannot.
 */
int conn_set_timestamps(struct conn_set *s);

/*
 * Set up the set on `ring` and register its completion handlers and timers. `n`
 * connections at base + i * stride must already have had conn_init(). Returns 0 or
 * -RF_ERR_NOMEM.
 */
int conn_set_init(struct conn_set *s, struct rf_ring *ring, void *base, size_t stride,
                  uint32_t n, const struct conn_ops *ops, uint64_t connect_timeout_us);
void conn_set_free(struct conn_set *s);

void conn_init(struct conn *c, uint32_t idx);

static inline struct conn *conn_at(const struct conn_set *s, uint32_t i)
{
    return (struct conn *)(s->base + (size_t)i * s->stride);
}

/*
 * Open the connection to `addrs` (held until connected; at least one) on `port`. For
 * https (c->tls set) the handshake for `host` starts once connected, resuming `sess` if
 * given. For http, `first` (len bytes, or NULL) is sent as soon as the socket connects
 * (flags as conn_send()): with one address it rides linked on the connect. c->peer is the
 * address that answered once connected; c->tried counts the attempts. connect_timeout_us
 * 0 means the set's. Returns 0, or -RF_ERR_RESOURCE when no
 * descriptor is free, or -RF_ERR_TLS (the session could not be set up; nothing queued).
 */
int conn_open(struct conn_set *s, struct conn *c, const struct rf_addrs *addrs, uint16_t port,
              const char *host, tls_session *sess, const char *first, uint32_t len,
              unsigned flags, uint64_t connect_timeout_us);

/*
 * Send len bytes from p, which must stay valid until sent() (or the connection's end).
 * https: encrypted now, flushed as flights. With CONN_SEND_QUIET (http only, small sends)
 * no completion comes on success, and sent() is not called. Returns 0 or -1 (https: out
 * of memory; the caller fails the connection).
 */
#define CONN_SEND_QUIET 1u
int conn_send(struct conn_set *s, struct conn *c, const void *p, uint32_t len, unsigned flags);

/* Tear down now: no callback follows, later completions of this socket are stale. */
void conn_close(struct conn_set *s, struct conn *c);


/* https: the session of an open connection, a new reference for later resumption. */
tls_session *conn_session(const struct conn *c);

#endif
