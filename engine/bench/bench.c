/*
 * bench.c - HTTP/1.1 load on io_uring: closed loop, pipelined, or open loop at a rate.
 *
 * Threads share nothing: each has its ring, connections, provided buffers, counters and
 * latency histogram, merged when they have all stopped. The request is serialised once
 * (repeated `pipeline` times in one buffer) and every send points into that buffer, so
 * the hot path is: recv completion -> llhttp -> record latency -> one send for every
 * response answered in the batch, submitted with everything else in the turn's one
 * io_uring_enter().
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>

#include "bench/bench.h"
#include "ring/clock.h"
#include "proto/dns.h"
#include "proto/http1.h"
#include "ring/list.h"
#include "llhttp.h"
#include "ring/ring.h"
#include "ringfetch.h"
#include "proto/tls.h"
#include "ring/udata.h"
#include "proto/url.h"

#define SWEEP_US 100000     /* timeouts, connect timeouts and the live counters */
#define RETRY_US 10000      /* pause before reconnecting after a failed connect */
#define BATCH_WAIT_US 100   /* longest wait for a batch of completions (closed loop) */
#define PLAIN_CAP 16384     /* a TLS record's plaintext at most */

/* B_HANDSHAKE: connected, TLS handshake running (https); it counts as connecting. */
enum bstate { B_DOWN, B_CONNECTING, B_HANDSHAKE, B_OPEN, B_RETRY };

struct bworker;

struct bconn {
    struct bworker *w;
    uint32_t idx, gen;
    uint8_t state, parity, recv_armed, sending, server_closes;
    uint8_t want_session;    /* a full handshake: keep its session once a ticket came */
    uint16_t status;
    uint32_t outstanding;    /* requests sent or being sent, not yet answered */
    uint32_t ohead;          /* t_due index of the oldest outstanding request */
    const char *sbuf;
    uint32_t slen, soff;
    uint64_t reqs;           /* requests issued on this connection */
    uint64_t t_conn;         /* connect start; or when to retry */
    uint64_t *t_due;         /* per outstanding request: when it was due (its latency origin) */
    const struct sockaddr_storage *src; /* --source-addrs: the local address, or NULL */
    struct tls_conn *tls;    /* https, else NULL */
    llhttp_t parser;
    struct list ready;       /* open loop: can take a request now */
    struct list retry;
};

struct bench {
    const struct bench_config *cfg;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    /*
     * The requests, serialised once: seq holds targets 0..n-1 and then again 0.. for
     * pipeline-1 more, back to back, so k requests from target t on are the bytes
     * seq[off[t] .. off[t + k]). close_seq holds each target with Connection: close,
     * for the last request on a connection with --reqs-per-conn (pipeline 1).
     */
    char *seq, *close_seq;
    uint32_t *off, *close_off;
    uint8_t *is_head;        /* per target */
    unsigned ntargets;
    unsigned pipeline;
    unsigned refill;         /* free pipeline places before a connection is topped up */
    int quiet_sends;         /* sends post no completion unless they fail (small requests) */
    llhttp_settings_t settings;
    struct tls_ctx *tls;     /* https: shared by every worker; NULL for http */
    char host[RF_HOST_MAX + 1]; /* lower-cased: the name the certificate must carry */
    unsigned ready;          /* workers set up (or failed), before the start */
    int go;                  /* set once every worker is ready: the clock starts */
    int abort;
};

struct bworker {
    struct bench *b;
    unsigned id;
    struct rf_ring ring;
    struct bconn *conns;
    uint32_t nconns;
    uint64_t *due_slab;
    struct hist lat;
    struct bench_totals t;
    uint64_t now, t0, t_end, last_sweep;
    uint64_t last_progress;           /* a response or a connect completed */
    uint64_t stall_us;                /* -n alone: end when nothing progresses this long */
    uint64_t quota, issued, inflight; /* quota 0: no request limit */
    double interval_us;               /* open loop: time between requests; 0 = closed loop */
    uint64_t scheduled;               /* open loop: requests whose due time has been used */
    uint64_t open, peak_open;
    uint64_t live_requests, live_errors; /* published for the live line */
    struct list ready, retries;
    struct tls_conn *tls_slab;        /* https: one session per connection */
    char *plain;                      /* https: decrypted bytes on their way to llhttp */
    tls_session *sess;                /* https: the session new connections resume */
    char tls_error[200];              /* the first handshake failure, in words */
    pthread_t thread;
    int err;
    int done;
};

static unsigned file_index(const struct bconn *c) { return c->idx * 2 + c->parity; }

/* Time since a request was due; never wraps, whatever the clock reads between turns. */
static uint64_t since(uint64_t now, uint64_t due) { return now > due ? now - due : 0; }

static uint64_t errors_of(const struct bench_totals *t)
{
    return t->err_connect + t->err_read + t->err_write + t->err_timeout;
}

/* ---- requests ---- */

/* How many of `want` requests the run still allows on this connection. */
static uint32_t allowed(struct bworker *w, struct bconn *c, uint32_t want)
{
    const struct bench_config *cfg = w->b->cfg;

    if (w->quota && want > w->quota - w->issued)
        want = (uint32_t)(w->quota - w->issued);
    if (cfg->reqs_per_conn && want > cfg->reqs_per_conn - c->reqs)
        want = (uint32_t)(cfg->reqs_per_conn - c->reqs);
    if (want > w->b->pipeline - c->outstanding)
        want = w->b->pipeline - c->outstanding;
    return want;
}

/* https: hand what wolfSSL wrote to a send, unless one is in flight. */
static void tls_flush(struct bworker *w, struct bconn *c)
{
    uint32_t len;
    const char *p = tls_take_flight(c->tls, &len);

    if (p)
        ring_send(&w->ring, file_index(c), p, len, ud_pack(OP_SEND, c->gen, c->idx), 0);
    c->sending = c->tls->in_flight;
}

/* Send n requests in one send (n <= allowed()), each due at `due`. */
static void issue(struct bworker *w, struct bconn *c, uint32_t n, uint64_t due)
{
    const struct bench *b = w->b;
    int last = b->cfg->reqs_per_conn && c->reqs + n == b->cfg->reqs_per_conn;
    uint32_t t = (uint32_t)((c->idx + c->reqs) % b->ntargets);

    for (uint32_t i = 0; i < n; i++)
        c->t_due[(c->ohead + c->outstanding + i) % b->pipeline] = due;
    /* With a per-connection limit the pipeline is 1, so `last` covers the whole send. */
    c->sbuf = last ? b->close_seq + b->close_off[t] : b->seq + b->off[t];
    c->slen = last ? b->close_off[t + 1] - b->close_off[t] : b->off[t + n] - b->off[t];
    c->outstanding += n;
    c->reqs += n;
    w->issued += n;
    w->inflight += n;
    c->soff = 0;
    if (c->tls) {
        /* Encrypted per connection; a failure (out of memory) shows as a timeout. */
        tls_write(c->tls, c->sbuf, c->slen);
        tls_flush(w, c);
        return;
    }
    c->sending = !b->quiet_sends;
    ring_send(&w->ring, file_index(c), c->sbuf, c->slen, ud_pack(OP_SEND, c->gen, c->idx),
              b->quiet_sends ? IOSQE_CQE_SKIP_SUCCESS : 0);
}

static void make_ready(struct bworker *w, struct bconn *c)
{
    if (w->interval_us > 0 && c->state == B_OPEN && !c->sending &&
        c->outstanding < w->b->pipeline && !list_linked(&c->ready))
        list_add_tail(&w->ready, &c->ready);
}

/* ---- connections ---- */

static void connect_conn(struct bworker *w, struct bconn *c)
{
    uint32_t n;

    c->state = B_CONNECTING;
    c->t_conn = w->now;
    c->reqs = c->outstanding = c->ohead = 0;
    c->server_closes = 0;
    /* https: the requests wait for the handshake. */
    n = w->interval_us > 0 || c->tls ? 0 : allowed(w, c, w->b->pipeline);
    w->t.connects++;
    if (c->tls && tls_start(w->b->tls, c->tls, w->b->host,
                            w->b->cfg->no_tls_resume ? NULL : w->sess)) {
        w->t.err_connect++;
        c->state = B_RETRY;
        c->t_conn = w->now + RETRY_US;
        list_add_tail(&w->retries, &c->retry);
        return;
    }
    llhttp_init(&c->parser, HTTP_RESPONSE, &w->b->settings);
    c->parser.data = c;
    ring_reserve(&w->ring, 5);
    ring_socket_connect(&w->ring, file_index(c), (const struct sockaddr *)&w->b->addr,
                        w->b->addrlen, (const struct sockaddr *)c->src,
                        c->src ? (c->src->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                                : sizeof(struct sockaddr_in))
                               : 0,
                        ud_pack(OP_SOCKET, c->gen, c->idx), ud_pack(OP_CONNECT, c->gen, c->idx),
                        n > 0 || c->tls);
    /* Closed loop: the first requests (or the ClientHello) ride on the connect, linked. */
    if (c->tls)
        tls_flush(w, c);
    else if (n)
        issue(w, c, n, w->now);
}

static int running(const struct bworker *w)
{
    return !w->b->abort && !*w->b->cfg->stop && w->now < w->t_end &&
           (!w->quota || w->issued < w->quota);
}

/* Close the socket; reconnect unless the run is ending. Outstanding requests are gone. */
static void reconnect(struct bworker *w, struct bconn *c, int pause)
{
    if (c->state == B_OPEN)
        w->open--;
    if (c->state == B_OPEN || c->state == B_CONNECTING || c->state == B_HANDSHAKE)
        ring_close_direct(&w->ring, file_index(c));
    if (c->tls)
        tls_reset(c->tls);
    c->want_session = 0;
    c->parity ^= 1;
    c->gen = (c->gen + 1) & UD_GEN_MASK;
    c->recv_armed = c->sending = 0;
    if (c->state == B_CONNECTING)
        w->issued -= c->outstanding; /* linked to a connect that failed: never sent */
    w->inflight -= c->outstanding;
    c->outstanding = 0;
    list_del(&c->ready);
    list_del(&c->retry);
    if (!running(w)) {
        c->state = B_DOWN;
    } else if (pause) {
        c->state = B_RETRY;
        c->t_conn = w->now + RETRY_US;
        list_add_tail(&w->retries, &c->retry);
    } else {
        connect_conn(w, c);
    }
}

/* Requests that got no answer in time: counted as timeouts and kept in the latencies. */
static void time_out(struct bworker *w, struct bconn *c)
{
    for (uint32_t i = 0; i < c->outstanding; i++) {
        uint64_t due = c->t_due[(c->ohead + i) % w->b->pipeline];

        hist_record(&w->lat, since(w->now, due));
        w->t.err_timeout++;
    }
    reconnect(w, c, 0);
}

/* ---- llhttp callbacks ---- */

static int on_headers_complete(llhttp_t *p)
{
    struct bconn *c = p->data;
    const struct bench *b = c->w->b;
    /* The oldest outstanding request is the one this response answers. */
    uint64_t t = (c->idx + c->reqs - c->outstanding) % b->ntargets;

    c->status = p->status_code;
    return b->is_head[t] ? 1 : 0; /* 1: a HEAD response has no body */
}

static int on_message_complete(llhttp_t *p)
{
    struct bconn *c = p->data;
    struct bworker *w = c->w;

    if (c->status < 200 && c->status >= 100)
        return 0; /* an interim response; the final one follows */
    if (!c->outstanding)
        return -1; /* a response nobody asked for */
    hist_record(&w->lat, since(w->now, c->t_due[c->ohead]));
    w->last_progress = w->now;
    c->ohead = (c->ohead + 1) % w->b->pipeline;
    c->outstanding--;
    w->inflight--;
    w->t.requests++;
    w->t.status[c->status < BENCH_STATUS_MAX ? c->status : 0]++;
    if (c->status >= 400)
        w->t.non_2xx_3xx++;
    if (!llhttp_should_keep_alive(p))
        c->server_closes = 1;
    return 0;
}

/* ---- completions ---- */

static void after_progress(struct bworker *w, struct bconn *c)
{
    const struct bench_config *cfg = w->b->cfg;
    uint32_t n;

    if (c->server_closes) {
        /*
         * The server ends the connection after this response (not an error). Requests
         * pipelined behind it were never read by the server: they go out again on the
         * next connection.
         */
        w->issued -= c->outstanding;
        return reconnect(w, c, 0);
    }
    if (cfg->reqs_per_conn && c->reqs >= cfg->reqs_per_conn) {
        if (!c->outstanding && !c->sending)
            reconnect(w, c, 0);
        return;
    }
    if (c->sending || c->state != B_OPEN)
        return;
    if (w->interval_us > 0) {
        make_ready(w, c);
        return;
    }
    /*
     * A pipelined connection is topped up once half its depth is free: fewer, bigger
     * sends, which the server reads in one go (at -p 16: 106k -> 129k req/s on loopback
     * in one measurement, against h2load -m 16's 121k).
     */
    if (c->outstanding && w->b->pipeline - c->outstanding < w->b->refill)
        return;
    if (running(w) && (n = allowed(w, c, w->b->pipeline)) > 0)
        issue(w, c, n, w->now);
}

/* Connected (and for https, the handshake done): held open and ready for requests. */
static void opened(struct bworker *w, struct bconn *c)
{
    c->state = B_OPEN;
    if (++w->open > w->peak_open)
        w->peak_open = w->open;
    make_ready(w, c);
}

/* The connection ends with a failed handshake: a connect error, with its reason kept. */
static void handshake_failed(struct bworker *w, struct bconn *c, int r)
{
    w->t.err_connect++;
    if (!w->tls_error[0]) {
        if (r == TLS_CLOSED)
            snprintf(w->tls_error, sizeof(w->tls_error), "the server closed the connection");
        else
            tls_error(c->tls, w->tls_error, sizeof(w->tls_error));
    }
    reconnect(w, c, 1);
}

/* The handshake is done: count it, and start the requests. */
static void handshake_done(struct bworker *w, struct bconn *c)
{
    if (c->tls->resumed) {
        w->t.tls_resumed++;
    } else {
        w->t.tls_full++;
        c->want_session = !w->b->cfg->no_tls_resume;
    }
    w->last_progress = w->now;
    opened(w, c);
}

/*
 * https: take every ciphertext byte of a recv (its buffer goes back after this), run the
 * handshake, decrypt records into llhttp. Returns 0, or -1 when the connection was
 * ended (and counted) here.
 */
static int tls_recv(struct bworker *w, struct bconn *c, const char *p, uint32_t n)
{
    struct tls_conn *t = c->tls;
    int r;

    tls_input(t, p, n);
    if (t->state == TLS_HANDSHAKE) {
        r = tls_handshake(t);
        if (r < 0) {
            handshake_failed(w, c, r);
            return -1;
        }
        if (r == TLS_AGAIN) {
            tls_flush(w, c);
            return 0;
        }
        handshake_done(w, c);
    }
    while ((r = tls_read(t, w->plain, PLAIN_CAP)) > 0) {
        w->t.bytes += (uint64_t)r;
        if (llhttp_execute(&c->parser, w->plain, (size_t)r) != HPE_OK) {
            w->t.err_read++;
            reconnect(w, c, 0);
            return -1;
        }
    }
    if (c->want_session && c->reqs > c->outstanding) {
        /* A response came, so the session ticket before it did too (TLS 1.3). */
        tls_session_free(w->sess);
        w->sess = tls_get_session(t);
        c->want_session = 0;
    }
    if (r == TLS_CLOSED && c->server_closes)
        return 0; /* it said Connection: close; after_progress() resends what was behind */
    if (r != TLS_AGAIN) {
        /* close_notify or a broken record: an error only when an answer was owed. */
        if (c->outstanding)
            w->t.err_read++;
        reconnect(w, c, 0);
        return -1;
    }
    tls_flush(w, c);
    return 0;
}

static void on_recv(struct bworker *w, struct bconn *c, const struct io_uring_cqe *cqe)
{
    int res = cqe->res;

    if (!(cqe->flags & IORING_CQE_F_MORE))
        c->recv_armed = 0;
    if (res > 0) {
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        const char *p = ring_buf(&w->ring, bid);
        llhttp_errno_t err = HPE_OK;
        int ended = 0;

        if (c->tls) {
            ended = tls_recv(w, c, p, (uint32_t)res);
        } else {
            err = llhttp_execute(&c->parser, p, (size_t)res);
            w->t.bytes += (uint64_t)res;
        }
        ring_buf_return(&w->ring, bid);
        if (ended)
            return;
        if (err != HPE_OK) {
            w->t.err_read++;
            return reconnect(w, c, 0);
        }
        after_progress(w, c);
    } else if (res == 0 || (res != -ENOBUFS)) {
        if (c->state == B_HANDSHAKE)
            return handshake_failed(w, c, TLS_CLOSED);
        /* The server closed (or reset): an error only when it owed us an answer. */
        if (c->outstanding)
            w->t.err_read++;
        return reconnect(w, c, 0);
    }
    if ((c->state == B_OPEN || c->state == B_HANDSHAKE) && !c->recv_armed) {
        ring_recv_multishot(&w->ring, file_index(c), ud_pack(OP_RECV, c->gen, c->idx));
        c->recv_armed = 1;
    }
}

static void on_send(struct bworker *w, struct bconn *c, int res)
{
    if (res < 0) {
        if (c->state == B_CONNECTING && res == -ECANCELED)
            return; /* the connect it was linked to failed and says why */
        w->t.err_write++;
        return reconnect(w, c, 0);
    }
    if (c->tls) {
        uint32_t len;
        const char *rest = tls_flight_sent(c->tls, (uint32_t)res, &len);

        if (rest) /* a short send */
            return ring_send(&w->ring, file_index(c), rest, len,
                             ud_pack(OP_SEND, c->gen, c->idx), 0);
        tls_flush(w, c);
        if (!c->sending)
            after_progress(w, c);
        return;
    }
    c->soff += (uint32_t)res;
    if (c->soff < c->slen) { /* short send: the socket buffer was full */
        ring_send(&w->ring, file_index(c), c->sbuf + c->soff, c->slen - c->soff,
                  ud_pack(OP_SEND, c->gen, c->idx), 0);
        return;
    }
    c->sending = 0;
    after_progress(w, c);
}

static void handle_cqe(struct bworker *w, const struct io_uring_cqe *cqe)
{
    uint64_t ud = io_uring_cqe_get_data64(cqe);
    uint32_t idx = ud_idx(ud);
    struct bconn *c = idx < w->nconns ? &w->conns[idx] : NULL;

    if (!c || ud_gen(ud) != c->gen || ud_op(ud) == OP_IGNORE) {
        if (cqe->flags & IORING_CQE_F_BUFFER)
            ring_buf_return(&w->ring, cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        return;
    }
    switch (ud_op(ud)) {
    case OP_SOCKET:
    case OP_CONNECT:
        if (cqe->res == -ECANCELED && ud_op(ud) == OP_CONNECT)
            break; /* the socket before it failed and says why */
        if (cqe->res < 0) {
            w->t.err_connect++;
            return reconnect(w, c, 1);
        }
        if (ud_op(ud) == OP_SOCKET)
            break;
        w->t.established++;
        w->last_progress = w->now;
        ring_recv_multishot(&w->ring, file_index(c), ud_pack(OP_RECV, c->gen, c->idx));
        c->recv_armed = 1;
        if (c->tls) {
            c->state = B_HANDSHAKE;
            break;
        }
        opened(w, c);
        break;
    case OP_SEND:
        on_send(w, c, cqe->res);
        break;
    case OP_RECV:
        on_recv(w, c, cqe);
        break;
    default:
        break;
    }
}

/* ---- the loop ---- */

/* Open loop: hand every request that is due to a connection that can take it. */
static void schedule(struct bworker *w)
{
    for (;;) {
        uint64_t due = w->t0 + (uint64_t)((double)w->scheduled * w->interval_us);
        struct bconn *c;

        if (due > w->now || list_empty(&w->ready) || !running(w))
            return;
        c = list_entry(w->ready.next, struct bconn, ready);
        list_del(&c->ready);
        if (!allowed(w, c, 1))
            continue;
        issue(w, c, 1, due);
        w->scheduled++;
    }
}

static void sweep(struct bworker *w)
{
    const struct bench_config *cfg = w->b->cfg;
    uint64_t tmo = cfg->timeout_ms * 1000, ctmo = cfg->connect_timeout_ms * 1000;

    w->last_sweep = w->now;
    for (uint32_t i = 0; i < w->nconns; i++) {
        struct bconn *c = &w->conns[i];

        if (c->state == B_OPEN && c->outstanding && tmo &&
            since(w->now, c->t_due[c->ohead]) >= tmo) {
            time_out(w, c);
        } else if ((c->state == B_CONNECTING || c->state == B_HANDSHAKE) && ctmo &&
                   w->now - c->t_conn >= ctmo) {
            w->t.err_connect++;
            reconnect(w, c, 0);
        }
    }
    __atomic_store_n(&w->live_requests, w->t.requests, __ATOMIC_RELAXED);
    __atomic_store_n(&w->live_errors, errors_of(&w->t), __ATOMIC_RELAXED);
}

/*
 * How many completions to wait for. In the closed loop, waking for every response costs
 * a wake-up per request; waiting until half the busy connections have answered (for at
 * most BATCH_WAIT_US) handles them in one turn and sends their next requests together,
 * which also gives the server more work per wake-up. Measured on loopback at -c 64:
 * client CPU per request 10.7 -> 6.1 us and more requests/s, same p99 (at -p 16,
 * waiting for every busy connection: 149k -> 156k req/s). The open loop waits for one:
 * its sends are due at set times.
 */
static unsigned batch_size(const struct bworker *w, int64_t *wait)
{
    uint64_t busy = w->inflight / w->b->pipeline;

    if (w->interval_us > 0 || busy < 4)
        return 1;
    if (*wait > BATCH_WAIT_US)
        *wait = BATCH_WAIT_US;
    /* Pipelined connections each answer in bursts: wait for all of them. */
    return (unsigned)(w->b->pipeline > 1 ? busy : busy / 2);
}

static int worker_setup(struct bworker *w)
{
    unsigned nb = 256, ne = 256;
    unsigned bufsz = w->nconns > 1024 ? 4096 : 16384;

    while (nb < w->nconns * 2 && nb < 4096)
        nb <<= 1;
    while (ne < w->nconns * 2 && ne < 4096)
        ne <<= 1;
    if (ring_init(&w->ring, ne, w->nconns * 2, nb, bufsz, 0))
        return -RF_ERR_SYSTEM;
    if (w->b->tls) {
        w->tls_slab = calloc(w->nconns, sizeof(*w->tls_slab));
        w->plain = malloc(PLAIN_CAP);
        if (!w->tls_slab || !w->plain)
            return -RF_ERR_NOMEM;
        for (uint32_t i = 0; i < w->nconns; i++)
            w->conns[i].tls = &w->tls_slab[i];
    }
    hist_init(&w->lat);
    list_init(&w->ready);
    list_init(&w->retries);
    return 0;
}

static void *worker_main(void *arg)
{
    struct bworker *w = arg;
    const struct bench_config *cfg = w->b->cfg;
    struct io_uring_cqe *cqe;
    struct __kernel_timespec ts;
    unsigned head, n, nr;

    w->err = worker_setup(w);
    if (w->err)
        __atomic_store_n(&w->b->abort, 1, __ATOMIC_RELEASE);
    __atomic_add_fetch(&w->b->ready, 1, __ATOMIC_ACQ_REL);
    while (!__atomic_load_n(&w->b->go, __ATOMIC_ACQUIRE))
        nanosleep(&(struct timespec){0, 200000}, NULL);
    if (__atomic_load_n(&w->b->abort, __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
        return NULL;
    }
    w->now = w->t0 = w->last_sweep = w->last_progress = now_us();
    w->t_end = cfg->duration_ms ? w->t0 + cfg->duration_ms * 1000 : UINT64_MAX;
    if (!cfg->duration_ms)
        w->stall_us = 1000 * (cfg->timeout_ms > cfg->connect_timeout_ms
                                  ? cfg->timeout_ms : cfg->connect_timeout_ms) + SWEEP_US;
    for (uint32_t i = 0; i < w->nconns; i++)
        connect_conn(w, &w->conns[i]);
    for (;;) {
        int64_t wait = SWEEP_US;

        if (w->b->abort || *cfg->stop || w->now >= w->t_end)
            break; /* requests still out are neither answers nor errors, as in wrk */
        if (w->quota && w->issued >= w->quota && !w->inflight)
            break;
        if (w->stall_us && w->now - w->last_progress > w->stall_us)
            break; /* -n without -d against a server that never answers: not forever */
        if (w->interval_us > 0 && !list_empty(&w->ready)) {
            uint64_t due = w->t0 + (uint64_t)((double)w->scheduled * w->interval_us);

            wait = due > w->now ? (int64_t)(due - w->now) : 0;
        }
        if (w->t_end != UINT64_MAX && (int64_t)(w->t_end - w->now) < wait)
            wait = (int64_t)(w->t_end - w->now);
        nr = batch_size(w, &wait);
        ts.tv_sec = wait / 1000000;
        ts.tv_nsec = (wait % 1000000) * 1000;
        io_uring_submit_and_wait_timeout(&w->ring.uring, &cqe, nr, &ts, NULL);
        w->now = now_us();
        n = 0;
        io_uring_for_each_cqe(&w->ring.uring, head, cqe) {
            handle_cqe(w, cqe);
            n++;
        }
        io_uring_cq_advance(&w->ring.uring, n);
        while (!list_empty(&w->retries)) {
            struct bconn *c = list_entry(w->retries.next, struct bconn, retry);

            if (c->t_conn > w->now)
                break;
            list_del(&c->retry);
            connect_conn(w, c);
        }
        if (w->interval_us > 0)
            schedule(w);
        if (w->now - w->last_sweep >= SWEEP_US)
            sweep(w);
    }
    sweep(w);
    __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* ---- setup ---- */

struct lookup {
    int done, err;
    struct sockaddr_storage addr;
    socklen_t addrlen;
};

static void lookup_done(void *ctx, uint64_t cookie, int err, const struct sockaddr *sa,
                        socklen_t salen)
{
    struct lookup *l = ctx;

    (void)cookie;
    l->done = 1;
    l->err = err || salen > sizeof(l->addr);
    if (!l->err) {
        memcpy(&l->addr, sa, salen);
        l->addrlen = salen;
    }
}

/* The target's address, once, before any thread starts (the resolver on a ring of its own). */
static int resolve(struct bench *b, const char *url, const struct rf_url *u)
{
    struct rf_dns_config dc = {
        .server = b->cfg->dns_server, .resolve = b->cfg->resolve,
        .n_resolve = b->cfg->n_resolve,
    };
    struct lookup l = {0};
    struct rf_ring ring;
    struct rf_dns *dns;
    char host[RF_HOST_MAX + 1];
    int ret;

    for (uint32_t i = 0; i < u->host_len; i++) {
        char ch = url[u->host_off + i];

        host[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
    }
    host[u->host_len] = '\0';
    memcpy(b->host, host, (size_t)u->host_len + 1);
    if (ring_init(&ring, 64, 0, 0, 0, 0))
        return -RF_ERR_SYSTEM;
    ret = dns_create(&dns, &ring, &dc, lookup_done, &l);
    if (ret == 0) {
        ret = dns_lookup(dns, host, u->host_len, u->port, &l.addr, &l.addrlen, 0);
        for (int turns = 0; ret == 1 && !l.done && turns < 1000; turns++) {
            struct __kernel_timespec ts = {0, 10 * 1000 * 1000};
            struct io_uring_cqe *cqe;
            unsigned head, n = 0;

            io_uring_submit_and_wait_timeout(&ring.uring, &cqe, 1, &ts, NULL);
            io_uring_for_each_cqe(&ring.uring, head, cqe) {
                if (ud_op(io_uring_cqe_get_data64(cqe)) == OP_DNS_POLL)
                    dns_handle_cqe(dns, cqe);
                n++;
            }
            io_uring_cq_advance(&ring.uring, n);
            if (dns_timeout_ms(dns) == 0)
                dns_tick(dns);
        }
        if (ret == 1)
            ret = l.done && !l.err ? 0 : -RF_ERR_DNS;
        dns_destroy(dns);
    }
    ring_exit(&ring);
    if (ret)
        return ret;
    b->addr = l.addr;
    b->addrlen = l.addrlen;
    return 0;
}

/* Append target t's request (head and body) to *buf; returns its length or -errno. */
static int append_request(const struct bench_target *t, int close, char **buf, size_t *len)
{
    static const char ua[] = "User-Agent: ringfetch-bench/" RINGFETCH_VERSION_STR "\r\n";
    struct rf_url u;
    struct http1_req r = {
        .method = t->method ? t->method : t->body ? "POST" : "GET",
        .url = t->url, .u = &u, .headers = t->headers, .n_headers = t->n_headers,
        .has_body = t->body != NULL, .body_len = t->body_len,
        .ua_line = ua, .ua_len = sizeof(ua) - 1, .close = close,
    };
    char head[16384];
    int hlen;
    char *grown;

    if (url_parse(t->url, strlen(t->url), &u))
        return -RF_ERR_INVALID_URL;
    hlen = http1_format_request(head, sizeof(head), &r);
    if (hlen < 0 || t->body_len > UINT32_MAX - (size_t)hlen - *len)
        return -RF_ERR_INVALID_ARG;
    grown = realloc(*buf, *len + (size_t)hlen + t->body_len);
    if (!grown)
        return -RF_ERR_NOMEM;
    *buf = grown;
    memcpy(*buf + *len, head, (size_t)hlen);
    if (t->body_len)
        memcpy(*buf + *len + hlen, t->body, t->body_len);
    *len += (size_t)hlen + t->body_len;
    return 0;
}

/* seq/off and close_seq/close_off (see struct bench), and which targets are HEAD. */
static int build_templates(struct bench *b)
{
    const struct bench_config *cfg = b->cfg;
    size_t n = b->ntargets, len = 0;
    int ret;

    b->off = calloc(n + b->pipeline, sizeof(*b->off));
    b->close_off = calloc(n + 1, sizeof(*b->close_off));
    b->is_head = calloc(n, 1);
    if (!b->off || !b->close_off || !b->is_head)
        return -RF_ERR_NOMEM;
    for (size_t i = 0; i < n + b->pipeline - 1; i++) {
        b->off[i] = (uint32_t)len;
        ret = append_request(&cfg->targets[i % n], 0, &b->seq, &len);
        if (ret)
            return ret;
    }
    b->off[n + b->pipeline - 1] = (uint32_t)len;
    len = 0;
    for (size_t i = 0; i < n; i++) {
        const char *m = cfg->targets[i].method;

        b->close_off[i] = (uint32_t)len;
        ret = append_request(&cfg->targets[i], 1, &b->close_seq, &len);
        if (ret)
            return ret;
        b->is_head[i] = m && strcmp(m, "HEAD") == 0;
    }
    b->close_off[n] = (uint32_t)len;
    return 0;
}

/* Every target must go to the first one's origin: the connections are shared. */
static int same_origin(const struct bench_config *cfg, struct rf_url *first)
{
    for (size_t i = 0; i < cfg->n_targets; i++) {
        const char *s = cfg->targets[i].url;
        struct rf_url u;
        int ret = url_parse(s, strlen(s), &u);

        if (ret)
            return ret;
        if (i == 0) {
            *first = u;
        } else if (u.scheme != first->scheme || u.port != first->port ||
                   u.host_len != first->host_len ||
                   strncasecmp(s + u.host_off, cfg->targets[0].url + first->host_off,
                               u.host_len) != 0) {
            return -RF_ERR_INVALID_ARG;
        }
    }
    return 0;
}

/* Connections per ring: each needs two registered-table entries, capped by RLIMIT_NOFILE. */
static unsigned ring_capacity(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1u << 20)
        return 1u << 19;
    return rl.rlim_cur > 80 ? (unsigned)(rl.rlim_cur - 64) / 2 : 8;
}

static void merge(struct bench_report *out, const struct bworker *w)
{
    struct bench_totals *t = &out->t;

    t->requests += w->t.requests;
    t->bytes += w->t.bytes;
    t->connects += w->t.connects;
    t->established += w->t.established;
    t->err_connect += w->t.err_connect;
    t->err_read += w->t.err_read;
    t->err_write += w->t.err_write;
    t->err_timeout += w->t.err_timeout;
    t->non_2xx_3xx += w->t.non_2xx_3xx;
    t->tls_full += w->t.tls_full;
    t->tls_resumed += w->t.tls_resumed;
    if (!out->tls_error[0])
        memcpy(out->tls_error, w->tls_error, sizeof(out->tls_error));
    for (unsigned i = 0; i < BENCH_STATUS_MAX; i++)
        t->status[i] += w->t.status[i];
    hist_merge(&out->lat, &w->lat);
    out->open_at_end += w->open;
    out->peak_open += w->peak_open;
}

static void watch(const struct bench_config *cfg, struct bworker *ws, unsigned nw, uint64_t t0)
{
    uint64_t next_tick = t0 + 1000000;

    for (;;) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        unsigned done = 0;

        nanosleep(&ts, NULL);
        for (unsigned i = 0; i < nw; i++)
            done += __atomic_load_n(&ws[i].done, __ATOMIC_ACQUIRE) != 0;
        if (done == nw)
            return;
        if (cfg->tick && now_us() >= next_tick) {
            uint64_t req = 0, err = 0;

            for (unsigned i = 0; i < nw; i++) {
                req += __atomic_load_n(&ws[i].live_requests, __ATOMIC_RELAXED);
                err += __atomic_load_n(&ws[i].live_errors, __ATOMIC_RELAXED);
            }
            cfg->tick(cfg->tick_userp, (double)(now_us() - t0) / 1e6, req, err);
            next_tick += 1000000;
        }
    }
}

int bench_run(const struct bench_config *cfg, struct bench_report *out)
{
    static const volatile sig_atomic_t never;
    struct bench_config c = *cfg;
    struct bench b;
    struct bworker *ws = NULL;
    struct rf_url u;
    unsigned nw, cap = ring_capacity(), started = 0, first = 0;
    uint64_t t0;
    int ret;

    memset(out, 0, sizeof(*out));
    hist_init(&out->lat);
    memset(&b, 0, sizeof(b));
    if (!c.stop)
        c.stop = (volatile sig_atomic_t *)&never;
    if (!c.connections || (!c.duration_ms && !c.requests))
        return -RF_ERR_INVALID_ARG;
    b.cfg = &c;
    b.pipeline = c.pipeline ? c.pipeline : 1;
    b.refill = b.pipeline >= 2 ? b.pipeline / 2 : 1;
    if ((c.reqs_per_conn && b.pipeline > 1) || !c.n_targets)
        return -RF_ERR_INVALID_ARG; /* a closing request must be the last one on the wire */
    b.ntargets = (unsigned)c.n_targets;
    ret = same_origin(&c, &u);
    if (ret)
        return ret;
    ret = resolve(&b, c.targets[0].url, &u);
    if (ret == 0)
        ret = build_templates(&b);
    if (ret == 0 && u.scheme == RF_SCHEME_HTTPS) {
        struct tls_opts o = {.ca_file = c.ca_file, .insecure = c.insecure};

        if (tls_ctx_new(&b.tls, &o, out->tls_error, sizeof(out->tls_error)))
            ret = -RF_ERR_TLS;
    }
    if (ret)
        goto out;
    llhttp_settings_init(&b.settings);
    b.settings.on_headers_complete = on_headers_complete;
    b.settings.on_message_complete = on_message_complete;
    /*
     * A send of at most a few KiB completes in full (MSG_WAITALL) long before the next
     * one on its connection, which waits for a response: its completion says nothing
     * we need, so only a failed send posts one. That is one CQE less per request.
     */
    b.quiet_sends = !b.tls; /* a TLS flight's buffer is free again only at its completion */
    for (unsigned t = 0; t < b.ntargets; t++)
        b.quiet_sends &= b.off[t + b.pipeline] - b.off[t] <= 4096;

    /* Enough rings that no registered table goes over the open-file limit. */
    nw = c.threads ? c.threads : 1;
    if (nw < (c.connections + cap - 1) / cap)
        nw = (c.connections + cap - 1) / cap;
    if (nw > c.connections)
        nw = c.connections;
    ws = calloc(nw, sizeof(*ws));
    if (!ws) {
        ret = -RF_ERR_NOMEM;
        goto out;
    }
    for (unsigned i = 0; i < nw; i++) {
        struct bworker *w = &ws[i];

        w->b = &b;
        w->id = i;
        w->nconns = c.connections / nw + (i < c.connections % nw);
        if (c.requests)
            w->quota = c.requests / nw + (i < c.requests % nw);
        if (c.rate)
            w->interval_us = 1e6 * nw / (double)c.rate;
        w->conns = calloc(w->nconns, sizeof(*w->conns));
        w->due_slab = calloc((size_t)w->nconns * b.pipeline, sizeof(uint64_t));
        if (!w->conns || !w->due_slab) {
            ret = -RF_ERR_NOMEM;
            goto out;
        }
        for (uint32_t k = 0; k < w->nconns; k++) {
            w->conns[k].w = w;
            w->conns[k].idx = k;
            w->conns[k].t_due = w->due_slab + (size_t)k * b.pipeline;
            if (c.n_source)
                w->conns[k].src = &c.source[(first + k) % c.n_source];
            list_init(&w->conns[k].ready);
            list_init(&w->conns[k].retry);
        }
        first += w->nconns;
    }
    for (; started < nw; started++) {
        if (pthread_create(&ws[started].thread, NULL, worker_main, &ws[started])) {
            __atomic_store_n(&b.abort, 1, __ATOMIC_RELEASE);
            break;
        }
    }
    /* Every ring is set up before the clock starts, so setup is not part of the run. */
    while (__atomic_load_n(&b.ready, __ATOMIC_ACQUIRE) < started)
        nanosleep(&(struct timespec){0, 200000}, NULL);
    t0 = now_us();
    __atomic_store_n(&b.go, 1, __ATOMIC_RELEASE);
    if (!b.abort)
        watch(&c, ws, nw, t0);
    for (unsigned i = 0; i < started; i++)
        pthread_join(ws[i].thread, NULL);
    out->duration_s = (double)(now_us() - t0) / 1e6;
    ret = b.abort ? -RF_ERR_SYSTEM : 0;
    for (unsigned i = 0; i < nw; i++) {
        if (ws[i].err)
            ret = ws[i].err;
        merge(out, &ws[i]);
    }
    out->threads = nw;
    out->connections = c.connections;
out:
    for (unsigned i = 0; ws && i < nw; i++) {
        if (ws[i].ring.uring.ring_fd > 0)
            ring_exit(&ws[i].ring);
        for (uint32_t k = 0; ws[i].tls_slab && k < ws[i].nconns; k++)
            tls_free(&ws[i].tls_slab[k]);
        free(ws[i].tls_slab);
        free(ws[i].plain);
        tls_session_free(ws[i].sess);
        free(ws[i].conns);
        free(ws[i].due_slab);
    }
    free(ws);
    free(b.seq);
    free(b.close_seq);
    free(b.off);
    free(b.close_off);
    free(b.is_head);
    tls_ctx_free(b.tls);
    return ret;
}
